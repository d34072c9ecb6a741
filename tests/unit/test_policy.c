/* test_policy.c: hv_policy_apply for each CLI flag, and the built-in
 * seccomp profile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "runtime/oci_internal.h"

static struct hv_oci_config *base_config(void) {
  json_t *j = hv_oci_default_spec(false);
  char *s = json_dumps(j, 0);
  json_decref(j);
  struct hv_oci_config *c = NULL;
  hv_error_t err = NULL;
  assert_int_equal(hv_oci_parse(s, strlen(s), "config.json", &c, &err), 0);
  free(s);
  return c;
}

static bool has_cap(char **v, const char *name) {
  for (size_t i = 0; v && v[i]; i++)
    if (strcmp(v[i], name) == 0)
      return true;
  return false;
}

static bool has_netns(const struct hv_oci_config *c) {
  for (size_t i = 0; i < c->linux.n_namespaces; i++)
    if (c->linux.namespaces[i].flag == CLONE_NEWNET)
      return true;
  return false;
}

static char **strv(const char *a, const char *b) {
  char **v = hv_xmalloc0(3 * sizeof(char *));
  v[0] = hv_xstrdup(a);
  v[1] = hv_xstrdup(b);
  return v;
}

/* cfg->raw, dumped and parsed again, says what the typed model says. */
static struct hv_oci_config *reparse_raw(const struct hv_oci_config *c) {
  char *text = json_dumps(c->raw, 0);
  struct hv_oci_config *again = NULL;
  hv_error_t err = NULL;
  if (hv_oci_parse(text, strlen(text), "raw.json", &again, &err) < 0)
    fail_msg("%s", err->msg);
  free(text);
  return again;
}

static void test_defaults(void **state) {
  (void)state;
  struct hv_oci_config *c = base_config();
  struct hv_policy p = {0};
  hv_error_t err = NULL;
  assert_int_equal(hv_policy_apply(&p, c, &err), 0);
  /* 14 default caps in bounding/effective/permitted */
  struct hv_oci_capabilities *caps = c->process->capabilities;
  assert_int_equal(hv_strv_len(caps->bounding), 14);
  assert_int_equal(hv_strv_len(caps->effective), 14);
  assert_int_equal(hv_strv_len(caps->permitted), 14);
  assert_true(has_cap(caps->bounding, "CAP_NET_RAW"));
  assert_true(has_cap(caps->bounding, "CAP_SYS_CHROOT"));
  assert_false(has_cap(caps->bounding, "CAP_SYS_ADMIN"));
  assert_null(caps->ambient);
  /* built-in seccomp profile */
  struct hv_oci_seccomp *s = c->linux.seccomp;
  assert_non_null(s);
  assert_string_equal(s->default_action, "SCMP_ACT_ERRNO");
  assert_true(s->has_default_errno_ret);
  assert_int_equal(s->default_errno_ret, 1);
  assert_int_equal(hv_strv_len(s->architectures), 3);
  bool read = false, execve = false;
  const char *forbidden[] = {"kexec_load", "init_module", "finit_module", "delete_module", "bpf",
                             "perf_event_open", "mount", "umount2", "pivot_root", "swapon",
                             "swapoff", "reboot", "acct", "settimeofday", "clock_settime",
                             "ptrace", "keyctl", "add_key", "request_key", "open_by_handle_at",
                             "userfaultfd", "unshare", "setns"};
  for (size_t i = 0; i < s->n_syscalls; i++) {
    if (strcmp(s->syscalls[i].action, "SCMP_ACT_ALLOW") != 0)
      continue;
    for (size_t k = 0; s->syscalls[i].names[k]; k++) {
      const char *n = s->syscalls[i].names[k];
      read |= strcmp(n, "read") == 0;
      execve |= strcmp(n, "execve") == 0;
      for (size_t f = 0; f < sizeof forbidden / sizeof forbidden[0]; f++)
        if (strcmp(n, forbidden[f]) == 0)
          fail_msg("default profile allows %s", n);
    }
  }
  assert_true(read && execve);
  /* network none (the default) keeps/creates a network namespace */
  assert_true(has_netns(c));
  assert_false(c->linux.resources.cpu.has_quota);
  assert_false(c->linux.resources.memory.has_limit);
  struct hv_oci_config *again = reparse_raw(c);
  assert_int_equal(hv_strv_len(again->process->capabilities->bounding), 14);
  assert_non_null(again->linux.seccomp);
  assert_int_equal(again->linux.seccomp->n_syscalls, c->linux.seccomp->n_syscalls);
  hv_oci_free(again);
  hv_oci_free(c);
}

static void test_resources(void **state) {
  (void)state;
  struct hv_oci_config *c = base_config();
  struct hv_oci_throttle_device rd = {8, 0, 1048576}, wr[2] = {{8, 16, 10}, {8, 32, 20}};
  struct hv_policy p = {.cpus_milli = 1500,
                        .cpuset_cpus = hv_xstrdup("0-1,3"),
                        .memory = 64 << 20,
                        .memory_swap = 128 << 20,
                        .pids = 100,
                        .blkio_weight = 500,
                        .read_only = true};
  p.device_read_bps = hv_xmalloc0(sizeof rd);
  *p.device_read_bps = rd;
  p.n_device_read_bps = 1;
  p.device_write_bps = hv_xmalloc0(sizeof wr);
  memcpy(p.device_write_bps, wr, sizeof wr);
  p.n_device_write_bps = 2;
  hv_error_t err = NULL;
  c->root.readonly = false;
  assert_int_equal(hv_policy_apply(&p, c, &err), 0);
  struct hv_oci_resources *r = &c->linux.resources;
  assert_true(r->present);
  assert_true(r->cpu.has_quota && r->cpu.has_period);
  assert_int_equal(r->cpu.period, 100000);
  assert_int_equal(r->cpu.quota, 150000);
  assert_string_equal(r->cpu.cpus, "0-1,3");
  assert_int_equal(r->memory.limit, 64 << 20);
  assert_int_equal(r->memory.swap, 128 << 20);
  assert_int_equal(r->pids.limit, 100);
  assert_int_equal(r->block_io.weight, 500);
  assert_int_equal(r->block_io.n_throttle_read_bps, 1);
  assert_int_equal(r->block_io.throttle_read_bps[0].rate, 1048576);
  assert_int_equal(r->block_io.n_throttle_write_bps, 2);
  assert_int_equal(r->block_io.throttle_write_bps[1].minor, 32);
  assert_true(c->root.readonly);
  /* the default devices rule from the spec is kept */
  assert_int_equal(r->n_devices, 1);
  struct hv_oci_config *again = reparse_raw(c);
  r = &again->linux.resources;
  assert_int_equal(r->cpu.period, 100000);
  assert_int_equal(r->cpu.quota, 150000);
  assert_string_equal(r->cpu.cpus, "0-1,3");
  assert_int_equal(r->memory.limit, 64 << 20);
  assert_int_equal(r->memory.swap, 128 << 20);
  assert_int_equal(r->pids.limit, 100);
  assert_int_equal(r->block_io.weight, 500);
  assert_int_equal(r->block_io.n_throttle_read_bps, 1);
  assert_int_equal(r->block_io.n_throttle_write_bps, 2);
  assert_int_equal(r->block_io.throttle_write_bps[1].rate, 20);
  assert_int_equal(r->n_devices, 1);
  assert_true(again->root.readonly);
  hv_oci_free(again);
  hv_policy_clear(&p);
  assert_null(p.cpuset_cpus);
  hv_oci_free(c);

  struct { struct hv_policy p; const char *want; } bad[] = {
      {{.cpuset_cpus = "a-b"}, "--cpuset-cpus: invalid CPU list \"a-b\""},
      {{.memory = 100, .memory_swap = 50}, "--memory-swap: 50 must be at least --memory (100)"},
      {{.memory_swap = 50}, "--memory-swap: requires --memory"},
      {{.blkio_weight = 5}, "--blkio-weight: 5 is out of range [10, 1000]"},
      {{.memory = -5}, "--memory: must be positive"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    c = base_config();
    assert_true(hv_policy_apply(&bad[i].p, c, &err) < 0);
    if (!strstr(err->msg, bad[i].want))
      fail_msg("case %zu: got \"%s\", want \"%s\"", i, err->msg, bad[i].want);
    hv_error_release(&err);
    hv_oci_free(c);
  }
  /* swap -1 = unlimited */
  c = base_config();
  struct hv_policy unl = {.memory = 1 << 20, .memory_swap = -1};
  assert_int_equal(hv_policy_apply(&unl, c, &err), 0);
  assert_int_equal(c->linux.resources.memory.swap, -1);
  hv_oci_free(c);
}

static void test_caps(void **state) {
  (void)state;
  hv_error_t err = NULL;
  struct hv_oci_config *c = base_config();
  struct hv_policy p = {.cap_add = strv("sys_admin", "CAP_NET_ADMIN"),
                        .cap_drop = strv("NET_RAW", "cap_mknod")};
  assert_int_equal(hv_policy_apply(&p, c, &err), 0);
  char **b = c->process->capabilities->bounding;
  assert_int_equal(hv_strv_len(b), 14);
  assert_true(has_cap(b, "CAP_SYS_ADMIN"));
  assert_true(has_cap(b, "CAP_NET_ADMIN"));
  assert_false(has_cap(b, "CAP_NET_RAW"));
  assert_false(has_cap(b, "CAP_MKNOD"));
  hv_policy_clear(&p);
  hv_oci_free(c);

  /* drop ALL, add one */
  c = base_config();
  p = (struct hv_policy){.cap_add = strv("KILL", "CHOWN"), .cap_drop = strv("ALL", "KILL")};
  assert_int_equal(hv_policy_apply(&p, c, &err), 0);
  b = c->process->capabilities->bounding;
  assert_int_equal(hv_strv_len(b), 2);
  assert_true(has_cap(b, "CAP_KILL"));
  hv_policy_clear(&p);
  hv_oci_free(c);

  /* add ALL, drop one */
  c = base_config();
  p = (struct hv_policy){.cap_add = strv("all", "KILL"), .cap_drop = strv("SYS_ADMIN", "KILL")};
  assert_int_equal(hv_policy_apply(&p, c, &err), 0);
  b = c->process->capabilities->bounding;
  assert_true(hv_strv_len(b) > 30);
  assert_false(has_cap(b, "CAP_SYS_ADMIN"));
  assert_false(has_cap(b, "CAP_KILL"));
  assert_true(has_cap(b, "CAP_SYS_MODULE"));
  /* the result parses back through the parser's capability check */
  for (size_t i = 0; b[i]; i++)
    assert_true(oci_cap_from_name(b[i]) >= 0);
  hv_policy_clear(&p);
  hv_oci_free(c);

  c = base_config();
  p = (struct hv_policy){.cap_add = strv("KILL", "FLY")};
  assert_true(hv_policy_apply(&p, c, &err) < 0);
  assert_string_equal(err->msg, "--cap-add: unknown capability \"FLY\"");
  hv_error_release(&err);
  hv_policy_clear(&p);
  p = (struct hv_policy){.cap_drop = strv("CAP_", "KILL")};
  assert_true(hv_policy_apply(&p, c, &err) < 0);
  assert_string_equal(err->msg, "--cap-drop: unknown capability \"CAP_\"");
  hv_error_release(&err);
  hv_policy_clear(&p);
  hv_oci_free(c);
}

static void test_seccomp_and_network(void **state) {
  (void)state;
  hv_error_t err = NULL;
  struct hv_oci_config *c = base_config();
  struct hv_policy p = {.seccomp = hv_xstrdup("unconfined"), .network = HV_NET_HOST};
  assert_int_equal(hv_policy_apply(&p, c, &err), 0);
  assert_null(c->linux.seccomp);
  assert_false(has_netns(c));
  assert_int_equal(c->linux.n_namespaces, 5);
  struct hv_oci_config *again = reparse_raw(c);
  assert_null(again->linux.seccomp);
  assert_false(has_netns(again));
  hv_oci_free(again);
  hv_policy_clear(&p);
  /* none on a config without a network namespace adds one */
  p = (struct hv_policy){.network = HV_NET_NONE};
  assert_int_equal(hv_policy_apply(&p, c, &err), 0);
  assert_true(has_netns(c));
  assert_int_equal(c->linux.n_namespaces, 6);
  assert_int_equal(hv_policy_apply(&p, c, &err), 0); /* not twice */
  assert_int_equal(c->linux.n_namespaces, 6);
  hv_oci_free(c);

  char path[] = "/tmp/test_policy.XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *good = "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
                     "[\"mount\"], \"action\": \"SCMP_ACT_ERRNO\"}]}";
  assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
  close(fd);
  c = base_config();
  p = (struct hv_policy){.seccomp = hv_xstrdup(path)};
  assert_int_equal(hv_policy_apply(&p, c, &err), 0);
  assert_string_equal(c->linux.seccomp->default_action, "SCMP_ACT_ALLOW");
  assert_string_equal(c->linux.seccomp->syscalls[0].names[0], "mount");
  again = reparse_raw(c);
  assert_string_equal(again->linux.seccomp->default_action, "SCMP_ACT_ALLOW");
  assert_true(has_netns(again));
  hv_oci_free(again);
  hv_policy_clear(&p);

  const char *bad = "{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [{\"names\": "
                    "[\"mount\"], \"action\": \"SCMP_ACT_DENY\"}]}";
  FILE *f = fopen(path, "w");
  fputs(bad, f);
  fclose(f);
  p = (struct hv_policy){.seccomp = hv_xstrdup(path)};
  assert_true(hv_policy_apply(&p, c, &err) < 0);
  char *want = hv_xasprintf("%s:2:46: syscalls[0].action: unknown seccomp action "
                            "\"SCMP_ACT_DENY\"", path);
  assert_string_equal(err->msg, want);
  free(want);
  hv_error_release(&err);
  hv_policy_clear(&p);
  unlink(path);
  p = (struct hv_policy){.seccomp = hv_xstrdup(path)};
  assert_true(hv_policy_apply(&p, c, &err) < 0);
  assert_non_null(strstr(err->msg, "--security-opt seccomp="));
  assert_int_equal(err->errno_, ENOENT);
  hv_error_release(&err);
  hv_policy_clear(&p);
  hv_oci_free(c);
}

static void test_embedded_profile_matches_file(void **state) {
  (void)state;
  char *text = NULL;
  size_t len = 0;
  hv_error_t err = NULL;
  assert_int_equal(hv_read_file("runtime/seccomp-default.json", &text, &len, &err), 0);
  assert_int_equal(len, hv_seccomp_default_json_len);
  assert_memory_equal(text, hv_seccomp_default_json, len);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_resources),
      cmocka_unit_test(test_caps),
      cmocka_unit_test(test_seccomp_and_network),
      cmocka_unit_test(test_embedded_profile_matches_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
