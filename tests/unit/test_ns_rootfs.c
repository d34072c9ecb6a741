/* test_ns_rootfs.c: ns_setup_rootfs + ns_finalize_and_exec on a busybox
 * rootfs in a forked child with private mount/uts/ipc namespaces. */
#include "ns/sandbox.h"
#include "ns_testutil.h"
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>

static char *opts_proc[] = {"nosuid", "noexec", "nodev", NULL};
static char *opts_dev[] = {"nosuid", "strictatime", "mode=755", "size=65536k", NULL};
static char *opts_dev_ro[] = {"nosuid", "mode=755", "size=65536k", "ro", NULL};
static char *opts_pts[] = {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", NULL};
static char *opts_tmp[] = {"nosuid", "nodev", "mode=1777", NULL};
static char *opts_sys[] = {"nosuid", "noexec", "nodev", "ro", NULL};
static char *opts_cg[] = {"nosuid", "noexec", "nodev", "relatime", "ro", NULL};
static char *masked[] = {"/proc/kcore", "/proc/meminfo", "/proc/acpi", "/does/not/exist", NULL};
static char *readonly[] = {"/proc/sys", "/proc/missing", NULL};

struct rootfs_case {
  const char *root;
  int outfd;
  char **args;
  char **env;
  const char *cwd;
  uint32_t uid, gid;
  bool expect_exec_fail;
  const char *expect_msg;
  int expect_status;
  struct hv_oci_capabilities *caps;
  struct hv_oci_seccomp *seccomp;
  bool nnp;
};

static void fill_config(struct hv_oci_config *c, struct hv_oci_mount *m, size_t *n,
                        struct hv_oci_namespace *ns, struct hv_oci_keyval *sysctl,
                        struct hv_oci_device *dev, const char *root) {
  memset(c, 0, sizeof *c);
  c->root.path = (char *)root;
  c->root.readonly = true;
  size_t i = 0;
  m[i++] = (struct hv_oci_mount){.destination = "/proc", .type = "proc", .source = "proc",
                                 .options = opts_proc};
  m[i++] = (struct hv_oci_mount){.destination = "/dev", .type = "tmpfs", .source = "tmpfs",
                                 .options = opts_dev_ro};
  m[i++] = (struct hv_oci_mount){.destination = "/dev/pts", .type = "devpts", .source = "devpts",
                                 .options = opts_pts};
  m[i++] = (struct hv_oci_mount){.destination = "/tmp", .type = "tmpfs", .source = "tmpfs",
                                 .options = opts_tmp};
  m[i++] = (struct hv_oci_mount){.destination = "/sys", .type = "sysfs", .source = "sysfs",
                                 .options = opts_sys};
  m[i++] = (struct hv_oci_mount){.destination = "/sys/fs/cgroup", .type = "cgroup",
                                 .source = "cgroup", .options = opts_cg};
  *n = i;
  c->mounts = m;
  c->n_mounts = i;
  ns[0] = (struct hv_oci_namespace){.type = "mount", .flag = CLONE_NEWNS};
  ns[1] = (struct hv_oci_namespace){.type = "uts", .flag = CLONE_NEWUTS};
  ns[2] = (struct hv_oci_namespace){.type = "ipc", .flag = CLONE_NEWIPC};
  c->linux.namespaces = ns;
  c->linux.n_namespaces = 3;
  c->hostname = "b1-test-host";
  sysctl[0] = (struct hv_oci_keyval){.key = "kernel.shmmni", .value = "1234"};
  c->linux.sysctl = sysctl;
  c->linux.n_sysctl = 1;
  dev[0] = (struct hv_oci_device){.path = "/dev/fuse-test", .type = 'c', .major = 10,
                                  .minor = 229, .has_file_mode = true, .file_mode = 0600,
                                  .has_uid = true, .uid = 7, .has_gid = true, .gid = 8};
  dev[1] = (struct hv_oci_device){.path = "/dev/sub/fifo", .type = 'p'};
  c->linux.devices = dev;
  c->linux.n_devices = 2;
  c->linux.masked_paths = masked;
  c->linux.readonly_paths = readonly;
}

static void rootfs_child(void *arg) {
  struct rootfs_case *tc = arg;
  enter_private_mntns(CLONE_NEWUTS | CLONE_NEWIPC);
  struct hv_oci_config c;
  struct hv_oci_mount m[8];
  size_t n;
  struct hv_oci_namespace ns[3];
  struct hv_oci_keyval sysctl[1];
  struct hv_oci_device dev[2];
  fill_config(&c, m, &n, ns, sysctl, dev, tc->root);
  hv_error_t err = NULL;
  CHECK_OK(ns_setup_rootfs(&c, false, &err), &err);

  /* We are in the new root now. */
  struct stat st;
  CHECK(stat("/bin/busybox", &st) == 0);
  CHECK(access("/.hvrun-b1-marker", F_OK) == 0);
  CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
  CHECK((st.st_mode & 07777) == 0666);
  CHECK(stat("/dev/fuse-test", &st) == 0 && S_ISCHR(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600 && st.st_uid == 7 && st.st_gid == 8);
  CHECK(stat("/dev/sub/fifo", &st) == 0 && S_ISFIFO(st.st_mode));
  char l[64] = "";
  CHECK(readlink("/dev/ptmx", l, sizeof l - 1) > 0 && strcmp(l, "pts/ptmx") == 0);
  memset(l, 0, sizeof l);
  CHECK(readlink("/dev/fd", l, sizeof l - 1) > 0 && strcmp(l, "/proc/self/fd") == 0);
  CHECK(lstat("/dev/stderr", &st) == 0 && S_ISLNK(st.st_mode));
  CHECK(mkdir("/dev/new", 0755) < 0 && errno == EROFS); /* "ro" /dev, nodes made first */
  CHECK(stat("/dev/pts/ptmx", &st) == 0 && S_ISCHR(st.st_mode));
  /* root.readonly, readonly and masked paths */
  CHECK(mkdir("/newdir", 0755) < 0 && errno == EROFS);
  CHECK(open("/proc/sys/kernel/shmmni", O_WRONLY) < 0 && errno == EROFS);
  char *meminfo = read_small("/proc/meminfo");
  CHECK(meminfo && meminfo[0] == 0);
  CHECK(stat("/proc/acpi", &st) < 0 || S_ISDIR(st.st_mode));
  /* sysctl was written before /proc/sys turned read-only */
  char *v = read_small("/proc/sys/kernel/shmmni");
  CHECK(v && strncmp(v, "1234", 4) == 0);
  struct utsname u;
  CHECK(uname(&u) == 0 && strcmp(u.nodename, "b1-test-host") == 0);
  /* mount options */
  struct statvfs sv;
  CHECK(statvfs("/sys", &sv) == 0 && (sv.f_flag & ST_RDONLY));
  CHECK(statvfs("/tmp", &sv) == 0 && !(sv.f_flag & ST_RDONLY) && (sv.f_flag & ST_NODEV));
  CHECK(stat("/sys/fs/cgroup/memory", &st) == 0 && S_ISDIR(st.st_mode));
  CHECK(access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0);
  CHECK(statvfs("/sys/fs/cgroup/memory", &sv) == 0 && (sv.f_flag & ST_RDONLY));
  /* the old root is gone */
  CHECK(access("/work", F_OK) < 0);

  struct hv_oci_process p = {0};
  p.args = tc->args;
  p.env = tc->env;
  p.cwd = (char *)tc->cwd;
  p.user.uid = tc->uid;
  p.user.gid = tc->gid;
  p.user.has_umask = true;
  p.user.umask = 027;
  gid_t extra[] = {11, 12};
  p.user.additional_gids = (uint32_t *)extra;
  p.user.n_additional_gids = 2;
  p.has_oom_score_adj = true;
  p.oom_score_adj = 500;
  struct hv_oci_rlimit rl = {.type = "RLIMIT_NOFILE", .resource = RLIMIT_NOFILE, .hard = 512,
                             .soft = 256};
  p.rlimits = &rl;
  p.n_rlimits = 1;
  p.io_priority_class = "IOPRIO_CLASS_BE";
  p.io_priority = 3;
  p.exec_cpu_affinity_final = "0";
  p.capabilities = tc->caps;
  p.no_new_privileges = tc->nnp;
  CHECK(dup2(tc->outfd, 1) == 1);
  int r = ns_finalize_and_exec(&p, tc->seccomp, &err);
  /* only reached when exec failed */
  if (tc->expect_exec_fail) {
    CHECK(r < 0 && err);
    char *full = hv_xasprintf("%s: %s", err->msg, strerror(err->errno_));
    if (strcmp(full, tc->expect_msg) != 0) {
      fprintf(stderr, "got message `%s`, want `%s`\n", full, tc->expect_msg);
      _exit(92);
    }
    CHECK(err->status == tc->expect_status);
    _exit(0);
  }
  fprintf(stderr, "exec failed: %s\n", err ? err->msg : "?");
  _exit(93);
}

static char *run_case(struct rootfs_case *tc, int *status) {
  char *dir = make_tmpdir();
  char root[1024];
  snprintf(root, sizeof root, "%s/rootfs", dir);
  mkdir(root, 0755);
  make_busybox_rootfs(root);
  char marker[2048];
  snprintf(marker, sizeof marker, "%s/.hvrun-b1-marker", root);
  close(open(marker, O_CREAT | O_WRONLY, 0644));
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  tc->root = root;
  tc->outfd = pfd[1];
  *status = run_child(rootfs_child, tc);
  close(pfd[1]);
  static char out[4096];
  ssize_t n = read(pfd[0], out, sizeof out - 1);
  out[n > 0 ? n : 0] = 0;
  close(pfd[0]);
  /* nothing of the container may be left mounted on the host */
  snprintf(marker, sizeof marker, "%s/proc/self", root);
  assert_int_not_equal(access(marker, F_OK), 0);
  remove_tree(dir);
  free(dir);
  return out;
}

static void test_busybox_container(void **state) {
  (void)state;
  static char *args[] = {"sh", "-c",
                         "id -u; id -g; id -G; pwd; umask; cat /proc/self/oom_score_adj; "
                         "ulimit -n; hostname; busybox ionice; busybox nproc",
                         NULL};
  static char *env[] = {"PATH=/usr/bin:/bin", "HOME=/", NULL};
  struct rootfs_case tc = {.args = args, .env = env, .cwd = "/tmp/work", .uid = 1000,
                           .gid = 1001};
  int st;
  char *out = run_case(&tc, &st);
  assert_child_ok(st);
  assert_string_equal(out, "1000\n1001\n1001 11 12\n/tmp/work\n0027\n500\n256\nb1-test-host\n"
                           "best-effort: prio 3\n1\n");
}

static void test_exec_not_found(void **state) {
  (void)state;
  static char *args[] = {"foo", NULL};
  static char *env[] = {"PATH=/bin", NULL};
  struct rootfs_case tc = {.args = args, .env = env, .cwd = "/", .expect_exec_fail = true,
                           .expect_msg = "exec \"foo\": No such file or directory",
                           .expect_status = 127};
  int st;
  run_case(&tc, &st);
  assert_child_ok(st);
}

static void test_exec_not_executable(void **state) {
  (void)state;
  static char *args[] = {"/etc/passwd", NULL};
  struct rootfs_case tc = {.args = args, .cwd = "/", .expect_exec_fail = true,
                           .expect_msg = "exec \"/etc/passwd\": Permission denied",
                           .expect_status = 126};
  int st;
  run_case(&tc, &st);
  assert_child_ok(st);
}

/* CVE-2024-21626: a cwd through /proc/self/fd/N must never be entered. */
static void test_cwd_magic_link_refused(void **state) {
  (void)state;
  static char *args[] = {"pwd", NULL};
  struct rootfs_case tc = {.args = args, .cwd = "/proc/self/fd/1", .expect_exec_fail = true,
                           .expect_msg = "process.cwd: `/proc/self/fd/1`: Too many levels of "
                                         "symbolic links",
                           .expect_status = 0};
  int st;
  run_case(&tc, &st);
  assert_child_ok(st);
}

static void test_validate_config(void **state) {
  (void)state;
  struct hv_oci_config c;
  struct hv_oci_mount m[8];
  size_t n;
  struct hv_oci_namespace ns[3];
  struct hv_oci_keyval sysctl[1];
  struct hv_oci_device dev[2];
  fill_config(&c, m, &n, ns, sysctl, dev, "/nonexistent");
  hv_error_t err = NULL;
  assert_int_equal(ns_validate_config(&c, &err), 0);
  c.linux.n_namespaces = 1; /* no uts */
  assert_true(ns_validate_config(&c, &err) < 0);
  assert_string_equal(err->msg, "hostname: setting it requires a \"uts\" namespace in linux.namespaces");
  hv_error_release(&err);
  c.hostname = NULL;
  assert_true(ns_validate_config(&c, &err) < 0);
  assert_string_equal(err->msg, "linux.sysctl: \"kernel.shmmni\" requires a ipc namespace in linux.namespaces");
  hv_error_release(&err);
  c.linux.n_namespaces = 3;
  c.linux.rootfs_propagation = "sideways";
  assert_true(ns_validate_config(&c, &err) < 0);
  assert_string_equal(err->msg, "linux.rootfsPropagation: unknown value \"sideways\"");
  hv_error_release(&err);
  c.linux.rootfs_propagation = "rslave";
  dev[1].type = 'x';
  assert_true(ns_validate_config(&c, &err) < 0);
  assert_string_equal(err->msg, "linux.devices[1].type: invalid device type 'x' (want c, b, u or p)");
  hv_error_release(&err);
}

/* Capabilities survive the switch to uid 1000 (ambient ones even the
 * exec), and seccomp loads in both orders: before the uid switch without
 * noNewPrivileges (needs CAP_SYS_ADMIN), last with it. */
static void seccomp_caps_case(bool nnp) {
  static char *args[] = {"sh", "-c",
                         "mkdir /tmp/a; echo rc=$?; grep -e CapEff -e CapBnd -e NoNewPrivs -e "
                         "'Seccomp:' /proc/self/status",
                         NULL};
  static char *env[] = {"PATH=/bin", NULL};
  static char *kill_only[] = {"CAP_KILL", NULL};
  static char *kill_chown[] = {"CAP_KILL", "CAP_CHOWN", NULL};
  struct hv_oci_capabilities caps = {.bounding = kill_chown, .effective = kill_chown,
                                     .permitted = kill_chown, .inheritable = kill_only,
                                     .ambient = kill_only};
  static char *names[] = {"mkdir", "mkdirat", NULL};
  struct hv_oci_seccomp_syscall sc = {.names = names, .action = "SCMP_ACT_ERRNO",
                                      .has_errno_ret = true, .errno_ret = EXDEV};
  struct hv_oci_seccomp sec = {.default_action = "SCMP_ACT_ALLOW", .syscalls = &sc,
                               .n_syscalls = 1};
  struct rootfs_case tc = {.args = args, .env = env, .cwd = "/", .uid = 1000, .gid = 1000,
                           .caps = &caps, .seccomp = &sec, .nnp = nnp};
  int st;
  char *out = run_case(&tc, &st);
  assert_child_ok(st);
  char want[256];
  snprintf(want, sizeof want,
           "rc=1\nCapEff:\t0000000000000020\nCapBnd:\t0000000000000021\nNoNewPrivs:\t%d\n"
           "Seccomp:\t2\n",
           nnp ? 1 : 0);
  assert_string_equal(out, want);
}

static void test_seccomp_caps_no_nnp(void **state) {
  (void)state;
  seccomp_caps_case(false);
}

static void test_seccomp_caps_nnp(void **state) {
  (void)state;
  seccomp_caps_case(true);
}

/* In a user namespace mknod is refused: default devices are bind mounts
 * of the host nodes, sysfs falls back to a bind of /sys, and read-only
 * remounts keep the flags the kernel locked. */
static char *o_ro_bind[] = {"rbind", "ro", NULL};
static char *o_sysfs[] = {"nosuid", "noexec", "nodev", "ro", NULL};

static void userns_grandchild(const char *root, int ready_w, int go_r, int outfd) {
  CHECK(unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS) == 0);
  char c = 1;
  CHECK(write(ready_w, &c, 1) == 1);
  CHECK(read(go_r, &c, 1) == 1); /* maps written by our parent */
  CHECK(setresuid(0, 0, 0) == 0 && setresgid(0, 0, 0) == 0);
  CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
  struct hv_oci_mount m[] = {
      {.destination = "/dev", .type = "tmpfs", .source = "tmpfs", .options = opts_dev},
      {.destination = "/sys", .type = "sysfs", .source = "sysfs", .options = o_sysfs},
      {.destination = "/mnt/usr", .type = "bind", .source = "/usr", .options = o_ro_bind},
  };
  struct hv_oci_namespace ns[] = {{.type = "user", .flag = CLONE_NEWUSER},
                                  {.type = "mount", .flag = CLONE_NEWNS},
                                  {.type = "uts", .flag = CLONE_NEWUTS}};
  struct hv_oci_config c0 = {0};
  c0.root.path = (char *)root;
  c0.mounts = m;
  c0.n_mounts = 3;
  c0.linux.namespaces = ns;
  c0.linux.n_namespaces = 3;
  c0.hostname = "userns-box";
  hv_error_t err = NULL;
  CHECK_OK(ns_setup_rootfs(&c0, false, &err), &err);
  struct stat st;
  CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
  CHECK(stat("/sys/kernel", &st) == 0);
  struct statvfs sv;
  CHECK(statvfs("/mnt/usr", &sv) == 0 && (sv.f_flag & ST_RDONLY));
  static char *args[] = {"sh", "-c", "echo ok > /dev/null && id -u && hostname", NULL};
  struct hv_oci_process p = {.args = args, .cwd = "/", .user = {.uid = 1000, .gid = 1000}};
  CHECK(dup2(outfd, 1) == 1);
  ns_finalize_and_exec(&p, NULL, &err);
  fprintf(stderr, "exec failed: %s\n", err ? err->msg : "?");
  _exit(93);
}

struct userns_case { const char *root; int outfd; };

static void userns_child(void *arg) {
  struct userns_case *uc = arg;
  int ready[2], go[2];
  CHECK(pipe(ready) == 0 && pipe(go) == 0);
  pid_t gc = fork();
  CHECK(gc >= 0);
  if (gc == 0) {
    close(ready[0]);
    close(go[1]);
    userns_grandchild(uc->root, ready[1], go[0], uc->outfd);
  }
  close(ready[1]);
  close(go[0]);
  char c;
  CHECK(read(ready[0], &c, 1) == 1);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/uid_map", gc);
  CHECK(hv_write_file(path, "0 100000 65536", NULL) == 0);
  snprintf(path, sizeof path, "/proc/%d/gid_map", gc);
  CHECK(hv_write_file(path, "0 100000 65536", NULL) == 0);
  CHECK(write(go[1], &c, 1) == 1);
  int st;
  CHECK(waitpid(gc, &st, 0) == gc);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_user_namespace(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  char root[1024];
  snprintf(root, sizeof root, "%s/rootfs", dir);
  mkdir(root, 0755);
  make_busybox_rootfs(root);
  /* the image belongs to the mapped root (host uid 100000), as rootless */
  chmod(dir, 0755);
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "chown -R 100000:100000 '%s'", root);
  assert_int_equal(system(cmd), 0);
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  struct userns_case uc = {root, pfd[1]};
  int st = run_child(userns_child, &uc);
  close(pfd[1]);
  char out[256];
  ssize_t n = read(pfd[0], out, sizeof out - 1);
  out[n > 0 ? n : 0] = 0;
  close(pfd[0]);
  remove_tree(dir);
  free(dir);
  assert_child_ok(st);
  assert_string_equal(out, "1000\nuserns-box\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_validate_config),
      cmocka_unit_test(test_busybox_container),
      cmocka_unit_test(test_exec_not_found),
      cmocka_unit_test(test_exec_not_executable),
      cmocka_unit_test(test_cwd_magic_link_refused),
      cmocka_unit_test(test_user_namespace),
      cmocka_unit_test(test_seccomp_caps_no_nnp),
      cmocka_unit_test(test_seccomp_caps_nnp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
