/* test_cgroups_host.c: the cgroup layer on the REAL host cgroupfs (root
 * only; every test skips otherwise).  Everything lives below
 * /hvrun-test-<pid> in each hierarchy and is removed by the teardown even
 * when a test fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cgroups/internal.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libcgroup.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char prefix[64]; /* /hvrun-test-<pid> */

static bool usable(void) {
  if (geteuid() != 0) {
    fprintf(stderr, "(not root: skipped)\n");
    return false;
  }
  return true;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Kill and remove whatever a failed test left under <mount><prefix>. */
static void nuke(const char *dir) {
  pid_t *pids = NULL;
  size_t n = 0;
  cg_collect_pids(dir, &pids, &n);
  for (size_t i = 0; i < n; i++)
    kill(pids[i], SIGKILL);
  free(pids);
  for (int tries = 0; tries < 200; tries++) {
    DIR *dh = opendir(dir);
    if (!dh)
      return;
    struct dirent *e;
    while ((e = readdir(dh)))
      if (e->d_type == DT_DIR && strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
        char *sub = hv_xasprintf("%s/%s", dir, e->d_name);
        nuke(sub);
        free(sub);
      }
    closedir(dh);
    if (rmdir(dir) == 0 || errno == ENOENT)
      return;
    sleep_ms(10);
  }
}

static int teardown(void **state) {
  (void)state;
  while (waitpid(-1, NULL, WNOHANG) > 0)
    ;
  const struct cg_layout *L;
  hv_error_t err = NULL;
  if (geteuid() != 0 || cg_layout_get(&L, &err) < 0) {
    hv_error_release(&err);
    return 0;
  }
  for (size_t i = 0; i < L->n; i++) {
    char *d = hv_xasprintf("%s%s", L->h[i].mount, prefix);
    nuke(d);
    free(d);
  }
  while (waitpid(-1, NULL, WNOHANG) > 0)
    ;
  return 0;
}

static void assert_nothing_left(void) {
  const struct cg_layout *L;
  hv_error_t err = NULL;
  assert_int_equal(cg_layout_get(&L, &err), 0);
  for (size_t i = 0; i < L->n; i++) {
    char *d = hv_xasprintf("%s%s", L->h[i].mount, prefix);
    if (access(d, F_OK) == 0)
      fail_msg("%s left behind", d);
    free(d);
  }
}

static struct hv_cgroup *create(const char *name, const struct hv_oci_resources *r) {
  char *path = hv_xasprintf("%s/%s", prefix, name);
  struct hv_cgroup *cg = NULL;
  hv_error_t err = NULL;
  if (hv_cg_create(path, "t", r, false, &cg, &err) < 0)
    fail_msg("create %s: %s", path, err->msg);
  free(path);
  return cg;
}

static void destroy(struct hv_cgroup *cg) {
  hv_error_t err = NULL;
  if (hv_cg_destroy(cg, &err) < 0)
    fail_msg("destroy: %s", err->msg);
  hv_cg_free(cg);
}

/* fork a child that blocks until go() and then runs fn. */
struct child { pid_t pid; int go; };
static struct child spawn(int (*fn)(void)) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1)
      _exit(100);
    _exit(fn());
  }
  close(p[0]);
  return (struct child){pid, p[1]};
}
static void go(struct child *c) {
  assert_int_equal(write(c->go, "g", 1), 1);
  close(c->go);
}
static void enter(struct hv_cgroup *cg, struct child *c) {
  hv_error_t err = NULL;
  if (hv_cg_enter(cg, c->pid, &err) < 0)
    fail_msg("enter: %s", err->msg);
}

static json_t *stats(struct hv_cgroup *cg) {
  json_t *s = NULL;
  hv_error_t err = NULL;
  assert_int_equal(hv_cg_stats(cg, &s, &err), 0);
  return s;
}

/* ------------------------------------------------------------------ */

static void test_detect_matches_libcgroup(void **state) {
  (void)state;
  if (!usable())
    skip();
  enum hv_cg_layout l;
  hv_error_t err = NULL;
  assert_int_equal(hv_cg_detect(NULL, &l, &err), 0);
  const struct cg_layout *L;
  assert_int_equal(cg_layout_get(&L, &err), 0);
  printf("layout: %s, %zu hierarchies\n", hv_cg_layout_name(l), L->n);
  /* libcgroup's view of where each controller is mounted must agree */
  assert_int_equal(cgroup_init(), 0);
  for (size_t i = 0; i < L->n; i++)
    for (size_t j = 0; L->h[i].ctrls[j]; j++) {
      char *mp = NULL;
      if (cgroup_get_subsys_mount_point(L->h[i].ctrls[j], &mp) != 0)
        fail_msg("libcgroup does not know %s", L->h[i].ctrls[j]);
      if (strcmp(mp, L->h[i].mount) != 0)
        fail_msg("%s: libcgroup says %s, we say %s", L->h[i].ctrls[j], mp, L->h[i].mount);
      free(mp);
    }
  json_t *f = hv_cg_features();
  char *s = json_dumps(f, JSON_COMPACT);
  printf("features: %s\n", s);
  free(s);
  json_decref(f);
}

static int touch_200m(void) {
  size_t len = 200u << 20;
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return 2;
  for (size_t i = 0; i < len; i += 4096)
    p[i] = 1;
  return 0; /* survived: the limit did not hold */
}

static void test_memory_oom(void **state) {
  (void)state;
  if (!usable())
    skip();
  struct hv_oci_resources r = {0};
  r.memory.has_limit = true, r.memory.limit = 64 << 20;
  r.memory.has_swap = true, r.memory.swap = 64 << 20; /* no swapping out of it */
  struct hv_cgroup *cg = create("oom", &r);
  struct child c = spawn(touch_200m);
  enter(cg, &c);
  go(&c);
  int st;
  assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGKILL);
  json_t *s = stats(cg);
  json_int_t ooms = json_integer_value(json_object_get(s, "oom_kill"));
  json_int_t maxu = json_integer_value(
      json_object_get(json_object_get(json_object_get(s, "memory"), "usage"), "max"));
  printf("child killed by SIGKILL; oom_kill=%lld, max usage=%lld\n", (long long)ooms,
         (long long)maxu);
  assert_true(ooms >= 1);
  assert_true(maxu <= (64 << 20));
  json_decref(s);
  destroy(cg);
  assert_nothing_left();
}

static void test_memory_swap_ordering_and_usage(void **state) {
  (void)state;
  if (!usable())
    skip();
  struct hv_oci_resources r = {0};
  r.memory.has_limit = true, r.memory.limit = 64 << 20;
  r.memory.has_swap = true, r.memory.swap = 128 << 20;
  struct hv_cgroup *cg = create("mem", &r);
  struct cg_dir *d = cg_dir_for(cg, "memory");
  int64_t v;
  hv_error_t err = NULL;
  /* growing: memsw must go first or the kernel refuses limit > memsw */
  r.memory.limit = 256 << 20, r.memory.swap = 512 << 20;
  if (hv_cg_update(cg, &r, &err) < 0)
    fail_msg("grow: %s", err->msg);
  assert_int_equal(cg_read_i64(d->path, "memory.limit_in_bytes", &v), 0);
  assert_int_equal(v, 256 << 20);
  assert_int_equal(cg_read_i64(d->path, "memory.memsw.limit_in_bytes", &v), 0);
  assert_int_equal(v, 512 << 20);
  /* shrinking: the limit must go first */
  r.memory.limit = 32 << 20, r.memory.swap = 48 << 20;
  if (hv_cg_update(cg, &r, &err) < 0)
    fail_msg("shrink: %s", err->msg);
  assert_int_equal(cg_read_i64(d->path, "memory.memsw.limit_in_bytes", &v), 0);
  assert_int_equal(v, 48 << 20);
  assert_int_equal(cg_read_i64(d->path, "memory.limit_in_bytes", &v), 0);
  assert_int_equal(v, 32 << 20);
  /* raising only the limit above memory+swap: a clear line, not EINVAL */
  struct hv_oci_resources only = {0};
  only.memory.has_limit = true, only.memory.limit = 100 << 20;
  assert_true(hv_cg_update(cg, &only, &err) < 0);
  printf("%s\n", err->msg);
  assert_non_null(strstr(err->msg, "linux.resources.memory.limit: 104857600 is above the current "
                                   "memory+swap limit 50331648"));
  hv_error_release(&err);
  destroy(cg);
  assert_nothing_left();
}

static int touch_20m_and_wait(void) {
  size_t len = 20u << 20;
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return 2;
  for (size_t i = 0; i < len; i += 4096)
    p[i] = 1;
  for (;;)
    pause();
}

static void test_memory_below_usage(void **state) {
  (void)state;
  if (!usable())
    skip();
  struct hv_oci_resources r = {0};
  r.memory.has_limit = true, r.memory.limit = 64 << 20;
  r.memory.has_swap = true, r.memory.swap = 64 << 20;
  struct hv_cgroup *cg = create("usage", &r);
  struct child c = spawn(touch_20m_and_wait);
  enter(cg, &c);
  go(&c);
  struct cg_dir *d = cg_dir_for(cg, "memory");
  int64_t usage = 0;
  for (int i = 0; i < 500 && usage < (20 << 20); i++) {
    sleep_ms(10);
    cg_read_i64(d->path, "memory.usage_in_bytes", &usage);
  }
  assert_true(usage >= (20 << 20));
  struct hv_oci_resources u = {0};
  u.memory.has_limit = true, u.memory.limit = 4 << 20;
  hv_error_t err = NULL;
  assert_true(hv_cg_update(cg, &u, &err) < 0);
  printf("%s\n", err->msg);
  assert_non_null(strstr(err->msg, "linux.resources.memory.limit: 4194304 is below the current "
                                   "usage ("));
  hv_error_release(&err);
  /* destroy kills the waiting child */
  destroy(cg);
  int st;
  assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
  assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  assert_nothing_left();
}

static int fork_bomb(void) {
  int n = 1; /* itself */
  for (int i = 0; i < 200; i++) {
    pid_t p = fork();
    if (p < 0)
      break;
    if (p == 0) {
      for (;;)
        pause();
    }
    n++;
  }
  return n; /* processes that existed in the cgroup */
}

static void test_pids_limit(void **state) {
  (void)state;
  if (!usable())
    skip();
  struct hv_oci_resources r = {0};
  r.pids.has_limit = true, r.pids.limit = 16;
  struct hv_cgroup *cg = create("pids", &r);
  struct child c = spawn(fork_bomb);
  enter(cg, &c);
  go(&c);
  int st;
  assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
  assert_true(WIFEXITED(st));
  printf("processes in the cgroup: %d (limit 16)\n", WEXITSTATUS(st));
  assert_int_equal(WEXITSTATUS(st), 16);
  pid_t *pids = NULL;
  size_t n = 0;
  hv_error_t err = NULL;
  assert_int_equal(hv_cg_pids(cg, &pids, &n, &err), 0);
  assert_int_equal(n, 15); /* the orphaned grandchildren */
  free(pids);
  json_t *s = stats(cg);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(s, "pids"), "limit")), 16);
  json_decref(s);
  destroy(cg);
  assert_nothing_left();
  /* the host is unaffected */
  pid_t p = fork();
  if (p == 0)
    _exit(0);
  assert_true(p > 0);
  waitpid(p, NULL, 0);
}

static int busy(void) {
  volatile unsigned long i = 0;
  while (i != ~0UL - 1)
    i++;
  return 0;
}

static int64_t cpu_total(struct hv_cgroup *cg) {
  json_t *s = stats(cg);
  int64_t v = json_integer_value(
      json_object_get(json_object_get(json_object_get(s, "cpu"), "usage"), "total"));
  json_decref(s);
  return v;
}

static void test_cpu_quota(void **state) {
  (void)state;
  if (!usable())
    skip();
  struct hv_oci_resources r = {0};
  r.cpu.has_quota = true, r.cpu.quota = 50000;
  r.cpu.has_period = true, r.cpu.period = 100000;
  struct hv_cgroup *cg = create("cpu", &r);
  struct child c = spawn(busy);
  enter(cg, &c);
  go(&c);
  sleep_ms(200);
  int64_t u0 = cpu_total(cg);
  double t0 = now_s();
  sleep_ms(2000);
  int64_t u1 = cpu_total(cg);
  double t1 = now_s();
  double share = (double)(u1 - u0) / 1e9 / (t1 - t0);
  printf("busy loop under quota 50000/100000: %.1f%% of one CPU\n", share * 100);
  /* The quota caps it at 50%: that bound is the correctness check.  The
   * lower bound is loose because other load on a 2-CPU host can keep the
   * loop from even reaching its quota; throttled_periods > 0 below shows
   * the quota, not the contention, was what limited it. */
  assert_true(share < 0.65);
  assert_true(share > 0.05);
  json_t *s = stats(cg);
  json_int_t throttled = json_integer_value(json_object_get(
      json_object_get(json_object_get(s, "cpu"), "throttling"), "throttled_periods"));
  printf("throttled periods: %lld\n", (long long)throttled);
  /* near its quota, the loop must have been throttled (under heavy host
   * load it may never reach the quota, and then it is not) */
  assert_true(throttled > 0 || share < 0.45);
  json_decref(s);

  /* freeze: no CPU time while frozen; thaw: runs again */
  hv_error_t err = NULL;
  if (hv_cg_freeze(cg, true, &err) < 0)
    fail_msg("freeze: %s", err->msg);
  assert_true(hv_cg_is_frozen(cg));
  int64_t f0 = cpu_total(cg);
  sleep_ms(300);
  int64_t f1 = cpu_total(cg);
  printf("CPU time while frozen for 300ms: %lld ns\n", (long long)(f1 - f0));
  assert_true(f1 - f0 < 5000000);
  assert_int_equal(hv_cg_freeze(cg, false, &err), 0);
  assert_false(hv_cg_is_frozen(cg));
  sleep_ms(300);
  assert_true(cpu_total(cg) - f1 > 10000000);

  /* a later process (hvrun delete after kill -9 of hvrun) re-opens and
   * removes it, killing the still-running child */
  char *stored = hv_xstrdup(hv_cg_path(cg));
  hv_cg_free(cg);
  struct hv_cgroup *again = NULL;
  assert_int_equal(hv_cg_open(stored, &again, &err), 0);
  destroy(again);
  int st;
  assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
  assert_true(WIFSIGNALED(st));
  assert_nothing_left();
  /* idempotent */
  assert_int_equal(hv_cg_open(stored, &again, &err), 0);
  destroy(again);
  free(stored);
}

static int open_null_zero(void) {
  int a = open("/dev/null", O_RDONLY);
  int ea = errno;
  int b = open("/dev/zero", O_RDONLY);
  /* 0: null denied with EPERM and zero allowed; other codes say what failed */
  if (a >= 0)
    return 1;
  if (ea != EPERM)
    return 2;
  if (b < 0)
    return 3;
  return 0;
}


static int open_null(void) { return open("/dev/null", O_RDONLY) >= 0 ? 0 : 1; }

static void test_devices_v1(void **state) {
  (void)state;
  if (!usable())
    skip();
  struct hv_oci_resources r = {0};
  struct hv_oci_device_cgroup deny_null = {.allow = false, .type = 'c', .has_major = true,
                                           .major = 1, .has_minor = true, .minor = 3};
  r.devices = &deny_null, r.n_devices = 1;
  struct hv_cgroup *cg = create("dev", &r);
  struct cg_dir *d = cg_dir_for(cg, "devices");
  if (!d || cg_dir_is_v2(cg, d)) {
    destroy(cg);
    skip();
  }
  struct child c = spawn(open_null_zero);
  enter(cg, &c);
  go(&c);
  int st;
  assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  destroy(cg);
  /* runc spec's leading deny-all keeps the default devices usable */
  struct hv_oci_device_cgroup deny_all = {.allow = false, .access = "rwm"};
  r.devices = &deny_all, r.n_devices = 1;
  cg = create("dev2", &r);
  c = spawn(open_null);
  enter(cg, &c);
  go(&c);
  assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  destroy(cg);
  assert_nothing_left();
}

static int open_kvm(void) {
  int fd = open("/dev/kvm", O_RDWR);
  return fd >= 0 ? 0 : errno == ENOENT ? 0 : 1;
}

static void test_vmm_cgroup_allows_kvm(void **state) {
  (void)state;
  if (!usable())
    skip();
  /* the guest's device rules (deny everything) do not reach the VMM */
  struct hv_oci_resources r = {0};
  struct hv_oci_device_cgroup deny_all = {.allow = false, .access = "rwm"};
  r.devices = &deny_all, r.n_devices = 1;
  r.memory.has_limit = true, r.memory.limit = 256 << 20;
  char *path = hv_xasprintf("%s/vmm", prefix);
  struct hv_cgroup *cg = NULL;
  hv_error_t err = NULL;
  if (hv_cg_create_vmm(path, "t", &r, false, &cg, &err) < 0)
    fail_msg("%s", err->msg);
  free(path);
  struct child c = spawn(open_kvm);
  enter(cg, &c);
  go(&c);
  int st;
  assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  c = spawn(open_null);
  enter(cg, &c);
  go(&c);
  assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
  assert_int_equal(WEXITSTATUS(st), 0);
  destroy(cg);
  assert_nothing_left();
}

/* The eBPF device program on a real cgroup2 directory: the hybrid host's
 * /sys/fs/cgroup/unified has no devices controller (it is bound to v1),
 * but device programs are core cgroup2 and need none. */
static void test_devices_bpf(void **state) {
  (void)state;
  if (!usable())
    skip();
  const struct cg_layout *L;
  hv_error_t err = NULL;
  assert_int_equal(cg_layout_get(&L, &err), 0);
  const char *v2 = NULL;
  for (size_t i = 0; i < L->n; i++)
    if (L->h[i].v2)
      v2 = L->h[i].mount;
  if (!v2)
    skip();
  struct hv_oci_resources r = {0};
  struct hv_oci_device_cgroup deny_null = {.allow = false, .type = 'c', .has_major = true,
                                           .major = 1, .has_minor = true, .minor = 3,
                                           .access = "rwm"};
  r.devices = &deny_null, r.n_devices = 1;
  struct cg_dev_rule *rules = NULL;
  size_t n = 0;
  assert_int_equal(cg_dev_rules(&r, &rules, &n, &err), 0);
  struct bpf_insn *prog = NULL;
  size_t ni = 0;
  cg_bpf_build(rules, n, &prog, &ni);
  int fd = -1;
  if (cg_bpf_load(prog, ni, &fd, &err) < 0)
    fail_msg("%s", err->msg);
  printf("BPF_PROG_LOAD accepted %zu instructions\n", ni);
  free(prog);
  free(rules);
  char *top = hv_xasprintf("%s%s", v2, prefix);
  char *dir = hv_xasprintf("%s/bpf", top);
  assert_int_equal(hv_mkdir_p(dir, 0755, &err), 0);
  if (cg_bpf_attach(dir, fd, &err) < 0)
    fail_msg("%s", err->msg);
  close(fd);
  struct child c = spawn(open_null_zero);
  char pid[16];
  snprintf(pid, sizeof pid, "%d", c.pid);
  assert_int_equal(cg_write(dir, "cgroup.procs", pid, "move", &err), 0);
  go(&c);
  int st;
  assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);

  /* replace with the default set (what update does): /dev/null allowed */
  assert_int_equal(cg_dev_rules(NULL, &rules, &n, &err), 0);
  cg_bpf_build(rules, n, &prog, &ni);
  assert_int_equal(cg_bpf_load(prog, ni, &fd, &err), 0);
  assert_int_equal(cg_bpf_attach(dir, fd, &err), 0);
  close(fd);
  free(prog);
  free(rules);
  c = spawn(open_null);
  snprintf(pid, sizeof pid, "%d", c.pid);
  assert_int_equal(cg_write(dir, "cgroup.procs", pid, "move", &err), 0);
  go(&c);
  assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  assert_int_equal(rmdir(dir), 0);
  assert_int_equal(rmdir(top), 0);
  free(dir);
  free(top);
}

static void test_hugetlb_on_v2(void **state) {
  (void)state;
  if (!usable())
    skip();
  const struct cg_layout *L;
  hv_error_t err = NULL;
  assert_int_equal(cg_layout_get(&L, &err), 0);
  int h = cg_layout_find(L, "hugetlb");
  if (h < 0 || access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK) != 0)
    skip();
  struct hv_oci_resources r = {0};
  struct hv_oci_hugepage_limit lim = {"2MB", 4 << 20};
  r.hugepage_limits = &lim, r.n_hugepage_limits = 1;
  struct hv_cgroup *cg = create("huge", &r);
  struct cg_dir *d = cg_dir_for(cg, "hugetlb");
  assert_non_null(d);
  int64_t v = 0;
  assert_int_equal(
      cg_read_i64(d->path, L->h[h].v2 ? "hugetlb.2MB.max" : "hugetlb.2MB.limit_in_bytes", &v),
      0);
  assert_int_equal(v, 4 << 20);
  printf("hugetlb limit in %s\n", d->path);
  json_t *s = stats(cg);
  assert_non_null(json_object_get(json_object_get(s, "hugetlb"), "2MB"));
  json_decref(s);
  destroy(cg);
  assert_nothing_left();
}

/* Two creators sharing a parent that each may create and remove: a
 * destroy removing the parent between another create's mkdirs must not
 * make that create fail. */
static int churn(int worker) {
  for (int i = 0; i < 40; i++) {
    char *path = hv_xasprintf("%s/shared/w%d-%d", prefix, worker, i);
    struct hv_cgroup *cg = NULL;
    hv_error_t err = NULL;
    if (hv_cg_create(path, "t", NULL, false, &cg, &err) < 0) {
      fprintf(stderr, "worker %d: %s\n", worker, err->msg);
      return 1;
    }
    free(path);
    if (hv_cg_destroy(cg, &err) < 0) {
      fprintf(stderr, "worker %d: %s\n", worker, err->msg);
      return 1;
    }
    hv_cg_free(cg);
  }
  return 0;
}

static void test_concurrent_create_destroy(void **state) {
  (void)state;
  if (!usable())
    skip();
  pid_t w[2];
  for (int k = 0; k < 2; k++) {
    w[k] = fork();
    assert_true(w[k] >= 0);
    if (w[k] == 0)
      _exit(churn(k));
  }
  for (int k = 0; k < 2; k++) {
    int st;
    assert_int_equal(waitpid(w[k], &st, 0), w[k]);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
  }
  /* Every container cgroup is gone.  An empty shared parent may stay when
   * the creator that made it was not the last to leave (as with runc); the
   * teardown removes it. */
  const struct cg_layout *L;
  hv_error_t err = NULL;
  assert_int_equal(cg_layout_get(&L, &err), 0);
  for (size_t i = 0; i < L->n; i++) {
    char *d = hv_xasprintf("%s%s/shared", L->h[i].mount, prefix);
    DIR *dh = opendir(d);
    struct dirent *e;
    while (dh && (e = readdir(dh)))
      if (e->d_type == DT_DIR && e->d_name[0] == 'w')
        fail_msg("%s/%s left behind", d, e->d_name);
    if (dh)
      closedir(dh);
    free(d);
  }
}

static void test_unavailable_is_an_error(void **state) {
  (void)state;
  if (!usable())
    skip();
  struct hv_oci_resources r = {0};
  r.network.has_class_id = true, r.network.class_id = 0x100001;
  char *path = hv_xasprintf("%s/bad", prefix);
  struct hv_cgroup *cg = NULL;
  hv_error_t err = NULL;
  int rc = hv_cg_create(path, "t", &r, false, &cg, &err);
  free(path);
  if (rc == 0) { /* a host with net_cls mounted */
    destroy(cg);
    skip();
  }
  printf("%s\n", err->msg);
  assert_string_equal(
      err->msg,
      "linux.resources.network.classID: the net_cls controller is not available on this host");
  hv_error_release(&err);
  assert_nothing_left();
  rc = hv_cg_create("system.slice:hvrun:t", "t", NULL, true, &cg, &err);
  assert_true(rc < 0);
  printf("%s\n", err->msg);
  hv_error_release(&err);
}

int main(void) {
  snprintf(prefix, sizeof prefix, "/hvrun-test-%d", (int)getpid());
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_detect_matches_libcgroup, teardown),
      cmocka_unit_test_teardown(test_memory_oom, teardown),
      cmocka_unit_test_teardown(test_memory_swap_ordering_and_usage, teardown),
      cmocka_unit_test_teardown(test_memory_below_usage, teardown),
      cmocka_unit_test_teardown(test_pids_limit, teardown),
      cmocka_unit_test_teardown(test_cpu_quota, teardown),
      cmocka_unit_test_teardown(test_devices_v1, teardown),
      cmocka_unit_test_teardown(test_vmm_cgroup_allows_kvm, teardown),
      cmocka_unit_test_teardown(test_devices_bpf, teardown),
      cmocka_unit_test_teardown(test_hugetlb_on_v2, teardown),
      cmocka_unit_test_teardown(test_concurrent_create_destroy, teardown),
      cmocka_unit_test_teardown(test_unavailable_is_an_error, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
