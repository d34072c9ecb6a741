/* test_ns_console.c: ns_setup_console makes a pty the child's controlling
 * terminal and stdio, and passes the master over the console socket. */
#include "ns/sandbox.h"
#include "ns_testutil.h"
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>

static char sock_path[256];

static void console_child(void *arg) {
  (void)arg;
  struct hv_oci_process p = {.terminal = true, .has_console_size = true,
                             .console_size = {.height = 40, .width = 100}};
  hv_error_t err = NULL;
  CHECK_OK(ns_setup_console(sock_path, &p, &err), &err);
  CHECK(isatty(0) && isatty(1) && isatty(2));
  struct winsize ws;
  CHECK(ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 40 && ws.ws_col == 100);
  CHECK(getsid(0) == getpid());
  CHECK(tcgetpgrp(0) == getpgrp()); /* it is our controlling terminal */
  printf("hello-from-pty\n");
  fflush(stdout);
}

static void test_console(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  snprintf(sock_path, sizeof sock_path, "%s/console.sock", dir);
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strcpy(sa.sun_path, sock_path);
  assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(ls, 1), 0);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    console_child(NULL);
    _exit(0);
  }
  int c = accept(ls, NULL, NULL);
  assert_true(c >= 0);
  char name[128] = "";
  union {
    char b[CMSG_SPACE(sizeof(int))];
    struct cmsghdr a;
  } u;
  struct iovec iov = {.iov_base = name, .iov_len = sizeof name - 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                       .msg_controllen = sizeof u.b};
  assert_true(recvmsg(c, &msg, MSG_CMSG_CLOEXEC) > 0);
  assert_non_null(strstr(name, "/dev/pts/"));
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  assert_non_null(cm);
  int master;
  memcpy(&master, CMSG_DATA(cm), sizeof master);
  char out[256] = "";
  size_t got = 0;
  while (got < sizeof out - 1 && !strstr(out, "hello-from-pty")) {
    ssize_t n = read(master, out + got, sizeof out - 1 - got);
    if (n <= 0)
      break;
    got += (size_t)n;
    out[got] = 0;
  }
  assert_non_null(strstr(out, "hello-from-pty\r\n")); /* the tty turned \n into \r\n */
  int st;
  waitpid(pid, &st, 0);
  assert_child_ok(st);
  close(master);
  close(c);
  close(ls);
  remove_tree(dir);
  free(dir);
}

static void test_bad_socket(void **state) {
  (void)state;
  hv_error_t err = NULL;
  assert_true(hv_console_send("/nonexistent/b1.sock", 0, &err) < 0);
  assert_string_equal(err->msg, "--console-socket: connect `/nonexistent/b1.sock`");
  assert_int_equal(err->errno_, ENOENT);
  hv_error_release(&err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_console),
      cmocka_unit_test(test_bad_socket),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
