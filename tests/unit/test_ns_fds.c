/* test_ns_fds.c: ns_close_fds closes everything past 3+preserve_fds but
 * the kept fds, which end up close-on-exec. */
#include "ns/sandbox.h"
#include "ns_testutil.h"

static bool is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static void close_child(void *arg) {
  (void)arg;
  int fds[8];
  for (int i = 0; i < 8; i++)
    CHECK((fds[i] = open("/dev/null", O_RDONLY)) >= 0);
  CHECK(dup2(fds[0], 3) == 3 && dup2(fds[0], 4) == 4);
  int high = dup2(fds[0], 200);
  CHECK(high == 200);
  int keep[] = {fds[5], 200};
  hv_error_t err = NULL;
  CHECK_OK(ns_close_fds(2, keep, 2, &err), &err); /* fds 3 and 4 are preserved */
  CHECK(is_open(0) && is_open(1) && is_open(2) && is_open(3) && is_open(4));
  for (int i = 0; i < 8; i++)
    if (fds[i] > 4)
      CHECK(is_open(fds[i]) == (fds[i] == fds[5]));
  CHECK(is_open(200));
  CHECK(fcntl(200, F_GETFD) & FD_CLOEXEC);
  CHECK(fcntl(fds[5], F_GETFD) & FD_CLOEXEC);
  CHECK(!(fcntl(3, F_GETFD) & FD_CLOEXEC));
  /* no keep list: everything >= 3 goes */
  CHECK_OK(ns_close_fds(0, NULL, 0, &err), &err);
  CHECK(!is_open(3) && !is_open(4) && !is_open(200) && is_open(2));
}

static void test_close_fds(void **state) {
  (void)state;
  assert_child_ok(run_child(close_child, NULL));
}

static void proc_child(void *arg) {
  (void)arg;
  int a = open("/dev/null", O_RDONLY), b = open("/dev/null", O_RDONLY);
  int c = open("/dev/null", O_RDONLY);
  CHECK(a >= 3 && b > a && c > b);
  int keep[] = {b};
  hv_error_t err = NULL;
  CHECK_OK(ns_close_fds_by_proc(a, keep, 1, &err), &err);
  CHECK(!is_open(a) && is_open(b) && !is_open(c) && is_open(2));
}

static void test_close_fds_procfs_fallback(void **state) {
  (void)state;
  assert_child_ok(run_child(proc_child, NULL));
}

static void test_negative(void **state) {
  (void)state;
  hv_error_t err = NULL;
  assert_true(ns_close_fds(-1, NULL, 0, &err) < 0);
  assert_string_equal(err->msg, "--preserve-fds: must not be negative");
  hv_error_release(&err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_close_fds),
      cmocka_unit_test(test_close_fds_procfs_fallback),
      cmocka_unit_test(test_negative),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
