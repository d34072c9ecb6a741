/* test_ns_seccomp.c: hv_seccomp_load in forked children. */
#include "ns/sandbox.h"
#include "ns_testutil.h"
#include <seccomp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

static char *n_getcwd_mkdir[] = {"getcwd", "mkdir", "mkdirat", NULL};
static char *n_unknown[] = {"no_such_syscall_b1", "getppid", NULL};
static char *n_getpriority[] = {"getpriority", NULL};
static char *n_umask[] = {"umask", NULL};
static char *n_basic[] = {"exit_group", "exit", "write", "rt_sigreturn", NULL};
static char *archs[] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64",
                        "SCMP_ARCH_NOT_A_REAL_ONE", NULL};

static void errno_child(void *arg) {
  (void)arg;
  struct hv_oci_seccomp_arg prio_arg = {.index = 0, .value = PRIO_PGRP, .op = "SCMP_CMP_EQ"};
  /* umask: a0 masked with 0700 == 0700 -> EACCES; repeated index = OR:
   * a0 == 0 or a0 == 1 -> ENOTTY */
  struct hv_oci_seccomp_arg umask_args[] = {
      {.index = 0, .value = 0, .op = "SCMP_CMP_EQ"},
      {.index = 0, .value = 1, .op = "SCMP_CMP_EQ"},
  };
  struct hv_oci_seccomp_arg masked = {.index = 0, .value = 0700, .value_two = 0700,
                                      .op = "SCMP_CMP_MASKED_EQ"};
  struct hv_oci_seccomp_syscall sc[] = {
      {.names = n_getcwd_mkdir, .action = "SCMP_ACT_ERRNO"},
      {.names = n_unknown, .action = "SCMP_ACT_ERRNO", .has_errno_ret = true, .errno_ret = 33},
      {.names = n_getpriority, .action = "SCMP_ACT_ERRNO", .has_errno_ret = true,
       .errno_ret = ESRCH, .args = &prio_arg, .n_args = 1},
      {.names = n_umask, .action = "SCMP_ACT_ERRNO", .has_errno_ret = true, .errno_ret = ENOTTY,
       .args = umask_args, .n_args = 2},
      {.names = n_umask, .action = "SCMP_ACT_ERRNO", .has_errno_ret = true, .errno_ret = EACCES,
       .args = &masked, .n_args = 1},
      {.names = n_basic, .action = "SCMP_ACT_ALLOW"}, /* == default: dropped */
  };
  char *flags[] = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", NULL};
  struct hv_oci_seccomp s = {.default_action = "SCMP_ACT_ALLOW", .architectures = archs,
                             .flags = flags, .syscalls = sc, .n_syscalls = 6};
  hv_error_t err = NULL;
  CHECK_OK(hv_seccomp_load(&s, &err), &err);
  char buf[256];
  errno = 0;
  CHECK(syscall(SYS_getcwd, buf, sizeof buf) < 0 && errno == EPERM);
  CHECK(mkdir("/tmp/hvrun-b1-should-not-exist", 0700) < 0 && errno == EPERM);
  CHECK(syscall(SYS_getppid) < 0 && errno == 33);
  CHECK(syscall(SYS_getpriority, PRIO_PROCESS, 0) >= 0);
  CHECK(syscall(SYS_getpriority, PRIO_PGRP, 0) < 0 && errno == ESRCH);
  CHECK(syscall(SYS_umask, 0) < 0 && errno == ENOTTY);
  CHECK(syscall(SYS_umask, 1) < 0 && errno == ENOTTY);
  CHECK(syscall(SYS_umask, 022) >= 0);
  CHECK(syscall(SYS_umask, 0755) < 0 && errno == EACCES);
  CHECK(strcmp(status_field("Seccomp"), "2") == 0);
  CHECK(strcmp(status_field("NoNewPrivs"), "0") == 0); /* libseccomp's implicit NNP is off */
}

static void test_errno_rules(void **state) {
  (void)state;
  assert_child_ok(run_child(errno_child, NULL));
}

static void default_action_child(void *arg) {
  struct hv_oci_seccomp_syscall sc[] = {{.names = n_basic, .action = "SCMP_ACT_ALLOW"}};
  struct hv_oci_seccomp s = {.default_action = arg, .syscalls = sc, .n_syscalls = 1};
  hv_error_t err = NULL;
  CHECK_OK(hv_seccomp_load(&s, &err), &err);
  syscall(SYS_getpid); /* not allowed: SIGSYS */
  _exit(0);
}

static void test_default_trap_and_kill(void **state) {
  (void)state;
  const char *actions[] = {"SCMP_ACT_TRAP", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                           "SCMP_ACT_KILL_THREAD"};
  for (size_t i = 0; i < 4; i++) {
    int st = run_child(default_action_child, (void *)actions[i]);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS)
      fail_msg("%s: want SIGSYS, got status %#x", actions[i], st);
  }
}

static void default_errno_child(void *arg) {
  (void)arg;
  /* what libc and the sanitizer runtime may need after the load */
  static char *runtime[] = {"exit_group", "exit", "write", "rt_sigreturn", "mmap", "munmap",
                            "mprotect", "madvise", "brk", "sigaltstack", "rt_sigaction",
                            "rt_sigprocmask", "futex", "prlimit64", "getrlimit", "close",
                            "openat", "read", "readlink", "gettid", "sched_yield", "getpid",
                            NULL};
  static struct hv_oci_seccomp_arg only_a0 = {.index = 0, .value = 12345, .op = "SCMP_CMP_EQ"};
  struct hv_oci_seccomp_syscall sc[] = {{.names = runtime, .action = "SCMP_ACT_ALLOW"},
                                        {.names = (char *[]){"getppid", NULL},
                                         .action = "SCMP_ACT_ALLOW", .args = &only_a0,
                                         .n_args = 1}};
  struct hv_oci_seccomp s = {.default_action = "SCMP_ACT_ERRNO", .has_default_errno_ret = true,
                             .default_errno_ret = 77, .syscalls = sc, .n_syscalls = 2};
  hv_error_t err = NULL;
  CHECK_OK(hv_seccomp_load(&s, &err), &err);
  if (syscall(SYS_getppid, 1) < 0 && errno == 77 && syscall(SYS_getppid, 12345) > 0)
    _exit(0);
  _exit(1);
}

static void test_default_errno_ret(void **state) {
  (void)state;
  assert_child_ok(run_child(default_errno_child, NULL));
}

static void test_invalid_specs(void **state) {
  (void)state;
  hv_error_t err = NULL;
  struct hv_oci_seccomp s = {.default_action = "SCMP_ACT_BOGUS"};
  assert_true(ns_seccomp_validate(&s, &err) < 0);
  assert_string_equal(err->msg, "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_BOGUS\"");
  hv_error_release(&err);
  struct hv_oci_seccomp_arg a = {.index = 0, .op = "SCMP_CMP_SIMILAR"};
  struct hv_oci_seccomp_syscall sc = {.names = n_umask, .action = "SCMP_ACT_ERRNO", .args = &a,
                                      .n_args = 1};
  s = (struct hv_oci_seccomp){.default_action = "SCMP_ACT_ALLOW", .syscalls = &sc,
                              .n_syscalls = 1};
  assert_true(ns_seccomp_validate(&s, &err) < 0);
  assert_string_equal(err->msg,
                      "linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_SIMILAR\"");
  hv_error_release(&err);
  a = (struct hv_oci_seccomp_arg){.index = 6, .op = "SCMP_CMP_EQ"};
  assert_true(ns_seccomp_validate(&s, &err) < 0);
  assert_string_equal(err->msg, "linux.seccomp.syscalls[0].args[0].index: 6 is out of range 0-5");
  hv_error_release(&err);
  char *fl[] = {"SECCOMP_FILTER_FLAG_FAST", NULL};
  s = (struct hv_oci_seccomp){.default_action = "SCMP_ACT_ALLOW", .flags = fl};
  assert_true(ns_seccomp_validate(&s, &err) < 0);
  assert_string_equal(err->msg, "linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_FAST\"");
  hv_error_release(&err);
  struct hv_oci_seccomp_syscall nt = {.names = n_umask, .action = "SCMP_ACT_NOTIFY"};
  s = (struct hv_oci_seccomp){.default_action = "SCMP_ACT_ALLOW", .syscalls = &nt,
                              .n_syscalls = 1};
  assert_true(ns_seccomp_validate(&s, &err) < 0);
  assert_string_equal(err->msg, "linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath");
  hv_error_release(&err);
  /* valid TRACE/LOG rules build fine */
  struct hv_oci_seccomp_syscall ok[] = {{.names = n_umask, .action = "SCMP_ACT_LOG"},
                                        {.names = n_getpriority, .action = "SCMP_ACT_TRACE"}};
  s = (struct hv_oci_seccomp){.default_action = "SCMP_ACT_ALLOW", .syscalls = ok, .n_syscalls = 2};
  assert_int_equal(ns_seccomp_validate(&s, &err), 0);
}

/* SCMP_ACT_NOTIFY: the child's filter sends its notify fd with the state
 * over the listener socket; the parent answers getppid() with 4242. */
static const char *listener_path;

static void notify_child(void *arg) {
  (void)arg;
  char *names[] = {"getppid", NULL};
  struct hv_oci_seccomp_syscall sc[] = {{.names = names, .action = "SCMP_ACT_NOTIFY"}};
  struct hv_oci_seccomp s = {.default_action = "SCMP_ACT_ALLOW", .syscalls = sc, .n_syscalls = 1,
                             .listener_path = (char *)listener_path,
                             .listener_metadata = "b1-meta"};
  hv_error_t err = NULL;
  CHECK_OK(hv_seccomp_load(&s, &err), &err);
  long r = syscall(SYS_getppid);
  if (r != 4242) {
    fprintf(stderr, "getppid returned %ld\n", r);
    _exit(1);
  }
}

static void test_notify_listener(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  char path[256];
  snprintf(path, sizeof path, "%s/listener.sock", dir);
  listener_path = path;
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strcpy(sa.sun_path, path);
  assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(ls, 1), 0);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    notify_child(NULL);
    _exit(0);
  }
  int c = accept(ls, NULL, NULL);
  assert_true(c >= 0);
  char buf[1024] = "";
  union {
    char b[CMSG_SPACE(sizeof(int))];
    struct cmsghdr a;
  } u;
  struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf - 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                       .msg_controllen = sizeof u.b};
  ssize_t n = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
  assert_true(n > 0);
  assert_non_null(strstr(buf, "\"seccompFd\""));
  assert_non_null(strstr(buf, "\"b1-meta\""));
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  assert_non_null(cm);
  int nfd;
  memcpy(&nfd, CMSG_DATA(cm), sizeof nfd);
  struct seccomp_notif *req;
  struct seccomp_notif_resp *resp;
  assert_int_equal(seccomp_notify_alloc(&req, &resp), 0);
  assert_int_equal(seccomp_notify_receive(nfd, req), 0);
  assert_int_equal(req->data.nr, seccomp_syscall_resolve_name("getppid"));
  resp->id = req->id;
  resp->val = 4242;
  resp->error = 0;
  resp->flags = 0;
  assert_int_equal(seccomp_notify_respond(nfd, resp), 0);
  seccomp_notify_free(req, resp);
  int st;
  waitpid(pid, &st, 0);
  assert_child_ok(st);
  close(nfd);
  close(c);
  close(ls);
  remove_tree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errno_rules),          cmocka_unit_test(test_default_trap_and_kill),
      cmocka_unit_test(test_default_errno_ret),    cmocka_unit_test(test_invalid_specs),
      cmocka_unit_test(test_notify_listener),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
