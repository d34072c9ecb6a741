/* devices_bpf.c: device rules for cgroup2 as a BPF_PROG_TYPE_CGROUP_DEVICE
 * program, assembled here instruction by instruction (no libbpf, no clang
 * at build time), loaded with BPF_PROG_LOAD and attached with
 * BPF_F_ALLOW_MULTI, replacing the program we attached before.
 *
 * The kernel calls the program with struct bpf_cgroup_dev_ctx:
 *   access_type = (access << 16) | type, major, minor
 * and opens the device when it returns 1.
 *
 * Rules are evaluated LAST to first and the first match decides, which
 * gives "later rules override earlier ones" (rule 0 is "deny all").  An
 * allow rule matches when the requested access is a subset of its access
 * (the v1 kernel needs one exception to cover the whole request); a deny
 * rule matches when any requested access is one it denies. */
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>

enum { R0, R1, R2, R3, R4, R5, R6, R7 };

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  struct bpf_insn i = {.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
  return i;
}
#define LDX_W(dst, src, off) insn(BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0)
#define MOV_REG(dst, src) insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
#define MOV_IMM(dst, imm) insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define AND_IMM(dst, imm) insn(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm)
#define RSH_IMM(dst, imm) insn(BPF_ALU64 | BPF_RSH | BPF_K, dst, 0, 0, imm)
#define JNE_IMM(dst, imm, off) insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)
#define JEQ_IMM(dst, imm, off) insn(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, off, imm)
#define EXIT() insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

static int access_bits(const char *a) {
  int b = 0;
  if (strchr(a, 'r'))
    b |= BPF_DEVCG_ACC_READ;
  if (strchr(a, 'w'))
    b |= BPF_DEVCG_ACC_WRITE;
  if (strchr(a, 'm'))
    b |= BPF_DEVCG_ACC_MKNOD;
  return b;
}

int cg_bpf_build(const struct cg_dev_rule *rules, size_t n, struct bpf_insn **out,
                 size_t *n_insn) {
  /* prologue 7 + at most 8 per rule + epilogue 2 */
  struct bpf_insn *p = hv_xmalloc0((7 + 8 * n + 2) * sizeof(*p));
  size_t k = 0;
  p[k++] = LDX_W(R2, R1, offsetof(struct bpf_cgroup_dev_ctx, access_type));
  p[k++] = MOV_REG(R3, R2);
  p[k++] = AND_IMM(R3, 0xffff); /* R3 = device type */
  p[k++] = MOV_REG(R4, R2);
  p[k++] = RSH_IMM(R4, 16);     /* R4 = requested access */
  p[k++] = LDX_W(R5, R1, offsetof(struct bpf_cgroup_dev_ctx, major));
  p[k++] = LDX_W(R6, R1, offsetof(struct bpf_cgroup_dev_ctx, minor));
  for (size_t i = n; i-- > 0;) {
    const struct cg_dev_rule *r = &rules[i];
    size_t start = k;
    size_t jumps[4], nj = 0;
    if (r->type == 'c' || r->type == 'b') {
      jumps[nj++] = k;
      p[k++] = JNE_IMM(R3, r->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, 0);
    }
    int acc = access_bits(r->access), all = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE |
                                                BPF_DEVCG_ACC_MKNOD;
    if (acc != all) {
      p[k++] = MOV_REG(R7, R4);
      if (r->allow) {
        p[k++] = AND_IMM(R7, all & ~acc); /* anything requested beyond the rule? */
        jumps[nj++] = k;
        p[k++] = JNE_IMM(R7, 0, 0);
      } else {
        p[k++] = AND_IMM(R7, acc);        /* anything requested that it denies? */
        jumps[nj++] = k;
        p[k++] = JEQ_IMM(R7, 0, 0);
      }
    }
    if (r->major >= 0) {
      jumps[nj++] = k;
      p[k++] = JNE_IMM(R5, (int32_t)r->major, 0);
    }
    if (r->minor >= 0) {
      jumps[nj++] = k;
      p[k++] = JNE_IMM(R6, (int32_t)r->minor, 0);
    }
    p[k++] = MOV_IMM(R0, r->allow ? 1 : 0);
    p[k++] = EXIT();
    /* a failed test skips to the next block */
    for (size_t j = 0; j < nj; j++)
      p[jumps[j]].off = (int16_t)(k - (jumps[j] + 1));
    (void)start;
    /* An unconditional rule ("a *:* rwm") decides everything that reaches
     * it; code after it would be unreachable, which the verifier rejects. */
    if (nj == 0) {
      *out = p;
      *n_insn = k;
      return 0;
    }
  }
  p[k++] = MOV_IMM(R0, 0); /* no rule matched: deny */
  p[k++] = EXIT();
  *out = p;
  *n_insn = k;
  return 0;
}

static long sys_bpf(int cmd, union bpf_attr *attr) {
  return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

int cg_bpf_load(const struct bpf_insn *insns, size_t n, int *prog_fd, hv_error_t *err) {
  static char log[16384];
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  a.insns = (uint64_t)(uintptr_t)insns;
  a.insn_cnt = (uint32_t)n;
  a.license = (uint64_t)(uintptr_t) "GPL";
  int fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
  if (fd >= 0) {
    *prog_fd = fd;
    return 0;
  }
  int e = errno;
  /* Load again with the verifier log, for the error message. */
  a.log_buf = (uint64_t)(uintptr_t)log;
  a.log_size = sizeof log;
  a.log_level = 1;
  log[0] = 0;
  fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
  if (fd >= 0)
    close(fd);
  /* The verifier's complaint is the last line before its statistics. */
  const char *why = NULL;
  for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
    if (strncmp(line, "processed ", 10) && strncmp(line, "verification time", 17))
      why = line;
  return hv_error(err, e, "cgroups: load the device eBPF program (%zu instructions)%s%s", n,
                  why ? ": verifier: " : "", why ? why : "");
}

int cg_bpf_attach(const char *dir, int prog_fd, hv_error_t *err) {
  cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return hv_error(err, errno, "cgroups: open `%s`", dir);
  uint32_t ids[64], cnt = 64;
  union bpf_attr q;
  memset(&q, 0, sizeof q);
  q.query.target_fd = (uint32_t)dfd;
  q.query.attach_type = BPF_CGROUP_DEVICE;
  q.query.prog_ids = (uint64_t)(uintptr_t)ids;
  q.query.prog_cnt = cnt;
  if (sys_bpf(BPF_PROG_QUERY, &q) < 0)
    q.query.prog_cnt = 0;
  cnt = q.query.prog_cnt;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.target_fd = (uint32_t)dfd;
  a.attach_bpf_fd = (uint32_t)prog_fd;
  a.attach_type = BPF_CGROUP_DEVICE;
  a.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf(BPF_PROG_ATTACH, &a) < 0)
    return hv_error(err, errno, "cgroups: attach the device eBPF program to `%s`", dir);
  /* The new program is in place; now drop the ones it replaces (update). */
  for (uint32_t i = 0; i < cnt && i < 64; i++) {
    union bpf_attr g;
    memset(&g, 0, sizeof g);
    g.prog_id = ids[i];
    int old = (int)sys_bpf(BPF_PROG_GET_FD_BY_ID, &g);
    if (old < 0)
      continue;
    union bpf_attr d;
    memset(&d, 0, sizeof d);
    d.target_fd = (uint32_t)dfd;
    d.attach_bpf_fd = (uint32_t)old;
    d.attach_type = BPF_CGROUP_DEVICE;
    int rc = (int)sys_bpf(BPF_PROG_DETACH, &d);
    int e = errno;
    close(old);
    if (rc < 0)
      return hv_error(err, e, "cgroups: detach the previous device program from `%s`", dir);
  }
  return 0;
}

int cg_v2_devices(struct hv_cgroup *cg, const char *dir, const struct cg_dev_rule *rules,
                  size_t n, hv_error_t *err) {
  struct bpf_insn *prog = NULL;
  size_t ni = 0;
  cg_bpf_build(rules, n, &prog, &ni);
  if (cg->L->fake) {
    /* A plain directory cannot hold a program: record its size instead. */
    int rc = cg_writef(dir, "devices.bpf", "cgroups: fake device program", err, "%zu", ni);
    free(prog);
    return rc;
  }
  int fd = -1;
  int rc = cg_bpf_load(prog, ni, &fd, err);
  free(prog);
  if (rc < 0)
    return -1;
  if (cg_bpf_attach(dir, fd, err) < 0) {
    close(fd);
    return -1;
  }
  if (cg->bpf_prog_fd >= 0)
    close(cg->bpf_prog_fd);
  cg->bpf_prog_fd = fd;
  return 0;
}
