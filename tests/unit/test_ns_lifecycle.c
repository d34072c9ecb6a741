/* test_ns_lifecycle.c: the parent-side lifecycle helpers of ns/: the sync
 * protocol carries a failed child's exit status (127/126 for exec), and the
 * seccomp listener state is the OCI "container process state". */
#include "ns/lifecycle.h"
#include "ns_testutil.h"
#include <sys/socket.h>

static void test_error_message_carries_status(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  assert_int_equal(ns_sync_send(sv[1], NS_MSG_ERROR, 126, "exec \"/etc/passwd\""), 0);
  struct ns_msg m;
  hv_error_t err = NULL;
  assert_true(ns_sync_recv(sv[0], &m, "child", &err) < 0);
  assert_non_null(err);
  assert_int_equal(err->status, 126);
  assert_string_equal(err->msg, "exec \"/etc/passwd\"");
  hv_error_release(&err);
  /* a plain message is not an error */
  assert_int_equal(ns_sync_send(sv[1], NS_MSG_READY, 0, NULL), 0);
  assert_int_equal(ns_sync_recv(sv[0], &m, "child", &err), 0);
  assert_int_equal(m.type, NS_MSG_READY);
  /* EOF names the peer */
  close(sv[1]);
  assert_true(ns_sync_recv(sv[0], &m, "container init", &err) < 0);
  assert_non_null(strstr(err->msg, "container init exited during setup"));
  hv_error_release(&err);
  close(sv[0]);
}

static void test_child_fail_exits_with_status(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    hv_error_t err = NULL;
    hv_error(&err, ENOENT, "exec \"nope\"");
    err->status = 127;
    ns_child_fail(sv[1], &err);
  }
  close(sv[1]);
  struct ns_msg m;
  hv_error_t err = NULL;
  assert_true(ns_sync_recv(sv[0], &m, "child", &err) < 0);
  assert_int_equal(err->status, 127);
  assert_non_null(strstr(err->msg, "exec \"nope\": No such file or directory"));
  hv_error_release(&err);
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 127);
  close(sv[0]);
}

static void test_listener_state_json(void **state) {
  (void)state;
  struct hv_oci_seccomp sc;
  memset(&sc, 0, sizeof sc);
  sc.listener_metadata = "meta";
  struct hv_state st;
  memset(&st, 0, sizeof st);
  st.id = "c1";
  st.pid = 42;
  st.status = HV_CREATING;
  st.bundle = "/b";
  char *s = ns_listener_state_json(&sc, &st, 43);
  assert_non_null(s);
  json_error_t je;
  json_t *j = json_loads(s, 0, &je);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "ociVersion")), "1.2.0");
  assert_string_equal(json_string_value(json_array_get(json_object_get(j, "fds"), 0)),
                      "seccompFd");
  assert_int_equal(json_integer_value(json_object_get(j, "pid")), 43);
  assert_string_equal(json_string_value(json_object_get(j, "metadata")), "meta");
  json_t *inner = json_object_get(j, "state");
  assert_string_equal(json_string_value(json_object_get(inner, "id")), "c1");
  assert_int_equal(json_integer_value(json_object_get(inner, "pid")), 42);
  assert_string_equal(json_string_value(json_object_get(inner, "status")), "creating");
  json_decref(j);
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_message_carries_status),
      cmocka_unit_test(test_child_fail_exits_with_status),
      cmocka_unit_test(test_listener_state_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
