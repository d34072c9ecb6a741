/* test_ns_sysctl.c: linux.sysctl validation (namespaced keys only) and
 * application in private ipc/net/uts namespaces; hostname/domainname. */
#include "ns/sandbox.h"
#include "ns_testutil.h"
#include <sys/utsname.h>

static struct hv_oci_namespace all_ns[] = {
    {.type = "network", .flag = CLONE_NEWNET},
    {.type = "ipc", .flag = CLONE_NEWIPC},
    {.type = "uts", .flag = CLONE_NEWUTS},
};

static void expect_error(struct hv_oci_keyval *kv, size_t n_ns, const char *msg) {
  struct hv_oci_config c = {0};
  c.linux.sysctl = kv;
  c.linux.n_sysctl = 1;
  c.linux.namespaces = all_ns;
  c.linux.n_namespaces = n_ns;
  hv_error_t err = NULL;
  assert_true(ns_validate_sysctl(&c, &err) < 0);
  assert_string_equal(err->msg, msg);
  hv_error_release(&err);
}

static void test_validate(void **state) {
  (void)state;
  struct hv_oci_keyval kv = {.key = "net.ipv4.ip_forward", .value = "1"};
  expect_error(&kv, 0, "linux.sysctl: \"net.ipv4.ip_forward\" requires a network namespace in linux.namespaces");
  kv.key = "kernel.shmmax";
  expect_error(&kv, 1, "linux.sysctl: \"kernel.shmmax\" requires a ipc namespace in linux.namespaces");
  kv.key = "fs.mqueue.msg_max";
  expect_error(&kv, 1, "linux.sysctl: \"fs.mqueue.msg_max\" requires a ipc namespace in linux.namespaces");
  kv.key = "kernel.domainname";
  expect_error(&kv, 2, "linux.sysctl: \"kernel.domainname\" requires a uts namespace in linux.namespaces");
  kv.key = "vm.swappiness";
  expect_error(&kv, 3, "linux.sysctl: \"vm.swappiness\" is not namespaced and would change the host");
  kv.key = "kernel.panic";
  expect_error(&kv, 3, "linux.sysctl: \"kernel.panic\" is not namespaced and would change the host");
  kv.key = "net/../../kernel/panic";
  expect_error(&kv, 3, "linux.sysctl: invalid key \"net/../../kernel/panic\"");
  struct hv_oci_config c = {0};
  struct hv_oci_keyval ok[] = {{"net.ipv4.ip_forward", "1"}, {"kernel.msgmax", "1"},
                               {"kernel.sem", "1"}, {"kernel.hostname", "x"},
                               {"net/ipv4/conf/all/forwarding", "1"}};
  c.linux.sysctl = ok;
  c.linux.n_sysctl = 5;
  c.linux.namespaces = all_ns;
  c.linux.n_namespaces = 3;
  hv_error_t err = NULL;
  assert_int_equal(ns_validate_sysctl(&c, &err), 0);
}

static void apply_child(void *arg) {
  (void)arg;
  CHECK(unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) == 0);
  struct hv_oci_keyval kv[] = {{"net.ipv4.ip_forward", "1"},
                               {"kernel.shmmni", "2345"},
                               {"net/ipv4/conf/all/accept_redirects", "0"}};
  struct hv_oci_config c = {0};
  c.linux.sysctl = kv;
  c.linux.n_sysctl = 3;
  c.linux.namespaces = all_ns;
  c.linux.n_namespaces = 3;
  c.hostname = "b1-sysctl";
  c.domainname = "b1.example";
  hv_error_t err = NULL;
  CHECK_OK(ns_apply_sysctl(&c, &err), &err);
  CHECK_OK(ns_apply_hostname(&c, &err), &err);
  CHECK(strncmp(read_small("/proc/sys/net/ipv4/ip_forward"), "1", 1) == 0);
  CHECK(strncmp(read_small("/proc/sys/kernel/shmmni"), "2345", 4) == 0);
  CHECK(strncmp(read_small("/proc/sys/net/ipv4/conf/all/accept_redirects"), "0", 1) == 0);
  struct utsname u;
  CHECK(uname(&u) == 0 && strcmp(u.nodename, "b1-sysctl") == 0 &&
        strcmp(u.domainname, "b1.example") == 0);
  /* a missing key names itself */
  struct hv_oci_keyval bad = {"net.ipv4.no_such_knob", "1"};
  c.linux.sysctl = &bad;
  c.linux.n_sysctl = 1;
  CHECK(ns_apply_sysctl(&c, &err) < 0);
  CHECK(strcmp(err->msg,
               "linux.sysctl \"net.ipv4.no_such_knob\": open `/proc/sys/net/ipv4/no_such_knob`") == 0);
  hv_error_release(&err);
}

static void test_apply(void **state) {
  (void)state;
  char *before = strdup(read_small("/proc/sys/kernel/shmmni"));
  assert_child_ok(run_child(apply_child, NULL));
  assert_string_equal(read_small("/proc/sys/kernel/shmmni"), before); /* host untouched */
  free(before);
}

static void test_hostname_needs_uts(void **state) {
  (void)state;
  struct hv_oci_config c = {0};
  c.hostname = "nope";
  hv_error_t err = NULL;
  assert_true(ns_apply_hostname(&c, &err) < 0);
  assert_string_equal(err->msg, "hostname: setting it requires a \"uts\" namespace in linux.namespaces");
  hv_error_release(&err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_validate),
      cmocka_unit_test(test_apply),
      cmocka_unit_test(test_hostname_needs_uts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
