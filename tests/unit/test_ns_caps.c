/* test_ns_caps.c: hv_caps_apply (and the uid switch of ns_finalize_and_exec
 * keeping capabilities) in forked children, read back from /proc/self/status. */
#include "ns/sandbox.h"
#include "ns_testutil.h"
#include <sys/capability.h>
#include <sys/prctl.h>

static uint64_t status_mask(const char *field) {
  const char *v = status_field(field);
  return v ? strtoull(v, NULL, 16) : ~0ULL;
}

static void sets_child(void *arg) {
  (void)arg;
  char *bounding[] = {"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETPCAP",
                      "CAP_NOT_REAL", NULL};
  char *effective[] = {"CAP_KILL", "cap_chown", NULL};
  char *permitted[] = {"CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE", NULL};
  char *inheritable[] = {"CAP_NET_BIND_SERVICE", NULL};
  char *ambient[] = {"CAP_NET_BIND_SERVICE", NULL};
  struct hv_oci_capabilities c = {.bounding = bounding, .effective = effective,
                                  .permitted = permitted, .inheritable = inheritable,
                                  .ambient = ambient};
  hv_error_t err = NULL;
  CHECK_OK(hv_caps_apply(&c, &err), &err);
  uint64_t chown = 1ULL << CAP_CHOWN, kill = 1ULL << CAP_KILL,
           nbs = 1ULL << CAP_NET_BIND_SERVICE, setpcap = 1ULL << CAP_SETPCAP;
  CHECK(status_mask("CapBnd") == (chown | kill | nbs | setpcap));
  CHECK(status_mask("CapEff") == (chown | kill));
  CHECK(status_mask("CapPrm") == (chown | kill | nbs));
  CHECK(status_mask("CapInh") == nbs);
  CHECK(status_mask("CapAmb") == nbs);
}

static void test_five_sets(void **state) {
  (void)state;
  assert_child_ok(run_child(sets_child, NULL));
}

/* Effective not in permitted is refused with a clear error. */
static void bad_child(void *arg) {
  (void)arg;
  char *eff[] = {"CAP_SYS_ADMIN", NULL};
  char *prm[] = {"CAP_CHOWN", NULL};
  struct hv_oci_capabilities c = {.bounding = eff, .effective = eff, .permitted = prm};
  hv_error_t err = NULL;
  CHECK(hv_caps_apply(&c, &err) < 0);
  CHECK(err && strstr(err->msg, "effective must be a subset of permitted"));
}

static void test_effective_not_permitted(void **state) {
  (void)state;
  assert_child_ok(run_child(bad_child, NULL));
}

static void test_names(void **state) {
  (void)state;
  assert_int_equal(ns_cap_from_name("CAP_SYS_ADMIN"), CAP_SYS_ADMIN);
  assert_int_equal(ns_cap_from_name("cap_net_raw"), CAP_NET_RAW);
  assert_int_equal(ns_cap_from_name("SYS_ADMIN"), -1);
  assert_int_equal(ns_cap_from_name("CAP_BOGUS"), -1);
  assert_int_equal(ns_cap_from_name(NULL), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_five_sets),
      cmocka_unit_test(test_effective_not_permitted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
