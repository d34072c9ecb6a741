/* test_oci.c: the OCI config parser (model, error shapes and positions),
 * json_pos and the default spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "runtime/oci_internal.h"

/* ---- helpers ------------------------------------------------------ */

/* Parse `text` and return the error message (caller frees), or NULL. */
static char *parse_err(const char *text) {
  hv_error_t err = NULL;
  struct hv_oci_config *cfg = NULL;
  int r = hv_oci_parse(text, strlen(text), "config.json", &cfg, &err);
  if (r == 0) {
    hv_oci_free(cfg);
    return NULL;
  }
  assert_non_null(err);
  char *m = hv_xstrdup(err->msg);
  hv_error_release(&err);
  return m;
}

static void expect_err(const char *text, const char *want) {
  char *m = parse_err(text);
  if (!m)
    fail_msg("parse succeeded, wanted error: %s", want);
  if (strcmp(m, want) != 0)
    fail_msg("got  \"%s\"\nwant \"%s\"", m, want);
  assert_null(strchr(m, '\n')); /* one line */
  free(m);
}

#define MIN_HEAD "{\n  \"ociVersion\": \"1.2.0\",\n  \"root\": {\"path\": \"rootfs\"},\n"
/* A minimal valid config; `extra` is spliced after process. */
static char *with(const char *process_extra, const char *top_extra) {
  return hv_xasprintf(MIN_HEAD "  \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"%s}%s\n}\n",
                      process_extra, top_extra);
}

/* ---- json_pos ------------------------------------------------------ */

static void test_json_pos(void **state) {
  (void)state;
  const char *t = "{\n"
                  "  \"a\": \"x\\\"}{[\",\n"
                  "  \"b\": [1, {\"c\": true}, [2,\n   3]],\n"
                  "  \"\\u0064\": \"é\", \"e\": 5,\n"
                  "  \"a\": null\n"
                  "}";
  unsigned l, c;
  struct hv_json_step p1[] = {{"b", 0}, {NULL, 1}, {"c", 0}};
  assert_int_equal(hv_json_pos(t, strlen(t), p1, 3, &l, &c), 3);
  assert_int_equal(l, 3);
  assert_int_equal(c, 18);
  struct hv_json_step p2[] = {{"b", 0}, {NULL, 2}, {NULL, 1}};
  assert_int_equal(hv_json_pos(t, strlen(t), p2, 3, &l, &c), 3);
  assert_int_equal(l, 4);
  assert_int_equal(c, 4);
  /* escaped key "\u0064" == "d"; a multibyte value before "e" counts as one column */
  struct hv_json_step p3[] = {{"e", 0}};
  assert_int_equal(hv_json_pos(t, strlen(t), p3, 1, &l, &c), 1);
  assert_int_equal(l, 5);
  assert_int_equal(c, 23);
  struct hv_json_step p4[] = {{"d", 0}};
  assert_int_equal(hv_json_pos(t, strlen(t), p4, 1, &l, &c), 1);
  assert_int_equal(c, 13);
  /* duplicate key: the last one wins (as in jansson) */
  struct hv_json_step p5[] = {{"a", 0}};
  assert_int_equal(hv_json_pos(t, strlen(t), p5, 1, &l, &c), 1);
  assert_int_equal(l, 6);
  assert_int_equal(c, 8);
  /* missing: deepest existing value */
  struct hv_json_step p6[] = {{"b", 0}, {NULL, 7}};
  assert_int_equal(hv_json_pos(t, strlen(t), p6, 2, &l, &c), 1);
  assert_int_equal(l, 3);
  assert_int_equal(c, 8);
  /* root */
  assert_int_equal(hv_json_pos(t, strlen(t), NULL, 0, &l, &c), 0);
  assert_int_equal(l, 1);
  assert_int_equal(c, 1);
  /* truncated text does not crash */
  assert_true(hv_json_pos("{\"a\": [1, ", 10, p6, 2, &l, &c) < 0);
}

/* ---- error shapes -------------------------------------------------- */

static void test_syntax_error(void **state) {
  (void)state;
  char *m = parse_err("{\n  \"ociVersion\": \"1.2.0\",\n  \"root\": {\"path\": \"r\"\n  ,}\n");
  assert_non_null(m);
  assert_true(strncmp(m, "config.json:4:", 14) == 0);
  assert_non_null(strstr(m, "syntax error: "));
  free(m);
}

static void test_wrong_type(void **state) {
  (void)state;
  expect_err(MIN_HEAD "  \"process\": {\n    \"args\": \"sh\", \"cwd\": \"/\"}\n}",
             "config.json:5:13: process.args: expected array, got string");
  expect_err("[1]", "config.json:1:1: expected object, got array");
  expect_err("{\"ociVersion\": 1}", "config.json:1:16: ociVersion: expected string, got integer");
  char *t = with(", \"terminal\": \"yes\"", "");
  expect_err(t, "config.json:4:55: process.terminal: expected boolean, got string");
  free(t);
  t = with(", \"user\": {\"uid\": -1}", "");
  expect_err(t, "config.json:4:59: process.user.uid: must not be negative (got -1)");
  free(t);
  t = with(", \"oomScoreAdj\": 1.5", "");
  expect_err(t, "config.json:4:58: process.oomScoreAdj: expected integer, got number with a fraction");
  free(t);
  t = with("", ", \"linux\": {\"resources\": {\"memory\": {\"limit\": \"1G\"}}}");
  expect_err(t, "config.json:4:88: linux.resources.memory.limit: expected integer, got string");
  free(t);
  t = with("", ", \"annotations\": {\"a\": 1}");
  expect_err(t, "config.json:4:65: annotations.a: expected string, got integer");
  free(t);
}

static void test_unknown_rlimit(void **state) {
  (void)state;
  expect_err(MIN_HEAD "  \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\",\n"
                      "    \"rlimits\": [\n"
                      "      {\"type\": \"RLIMIT_NOFILE\", \"hard\": 1, \"soft\": 1},\n"
                      "      {\"type\": \"RLIMIT_CORE\", \"hard\": 1, \"soft\": 1},\n"
                      "      {\"type\": \"RLIMIT_FOO\", \"hard\": 1, \"soft\": 1}]}\n}",
             "config.json:8:16: process.rlimits[2].type: unknown rlimit \"RLIMIT_FOO\"");
  char *t = with(", \"rlimits\": [{\"type\": \"RLIMIT_CORE\", \"hard\": 1, \"soft\": 1},"
                 "{\"type\": \"RLIMIT_CORE\", \"hard\": 2, \"soft\": 2}]", "");
  char *m = parse_err(t);
  assert_non_null(strstr(m, "process.rlimits[1].type: duplicate rlimit \"RLIMIT_CORE\""));
  free(m);
  free(t);
  t = with(", \"rlimits\": [{\"type\": \"RLIMIT_CORE\", \"soft\": 1}]", "");
  m = parse_err(t);
  assert_non_null(strstr(m, "process.rlimits[0].hard: required field is missing"));
  free(m);
  free(t);
}

static void test_bad_namespace(void **state) {
  (void)state;
  char *t = with("", ",\n  \"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"bogus\"}]}");
  expect_err(t, "config.json:5:54: linux.namespaces[1].type: unknown namespace type \"bogus\" "
                "(expected pid, network, mount, ipc, uts, user, cgroup or time)");
  free(t);
  t = with("", ",\n  \"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"pid\"}]}");
  expect_err(t, "config.json:5:54: linux.namespaces[1].type: duplicate namespace \"pid\" (also at "
                "index 0)");
  free(t);
  t = with("", ",\n  \"linux\": {\"namespaces\": [{\"type\": \"net\", \"path\": \"x\"}]}");
  char *m = parse_err(t);
  assert_non_null(strstr(m, "linux.namespaces[0].type: unknown namespace type \"net\""));
  free(m);
  free(t);
  t = with("", ",\n  \"linux\": {\"namespaces\": [{\"type\": \"network\", \"path\": \"x\"}]}");
  m = parse_err(t);
  assert_non_null(strstr(m, "linux.namespaces[0].path: must be an absolute path"));
  free(m);
  free(t);
  t = with("", ",\n  \"linux\": {\"uidMappings\": [{\"containerID\": 0, \"hostID\": 1000, "
               "\"size\": 1}], \"gidMappings\": [{\"containerID\": 0, \"hostID\": 1000, \"size\": 1}]}");
  m = parse_err(t);
  assert_non_null(strstr(m, "linux.uidMappings: given, but linux.namespaces has no \"user\""));
  free(m);
  free(t);
  t = with("", ",\n  \"linux\": {\"namespaces\": [{\"type\": \"user\"}], \"uidMappings\": "
               "[{\"containerID\": 0, \"hostID\": 1000, \"size\": 0}]}");
  m = parse_err(t);
  assert_non_null(strstr(m, "linux.uidMappings[0].size: must be greater than 0"));
  free(m);
  free(t);
}

static void test_relative_cwd_and_required(void **state) {
  (void)state;
  expect_err(MIN_HEAD "  \"process\": {\"args\": [\"sh\"],\n    \"cwd\": \"tmp\"}\n}",
             "config.json:5:12: process.cwd: must be an absolute path (got \"tmp\")");
  expect_err("{\"ociVersion\": \"1.2.0\", \"process\": {}}",
             "config.json:1:1: root: required field is missing");
  expect_err("{\"ociVersion\": \"1.2.0\", \"root\": {}}",
             "config.json:1:33: root.path: required field is missing");
  expect_err(MIN_HEAD "\"x\": 1}", "config.json:1:1: process: required field is missing");
  expect_err(MIN_HEAD "\"process\": {\"args\": [], \"cwd\": \"/\"}}",
             "config.json:4:21: process.args: must not be empty");
  expect_err("{\"root\": {\"path\": \"r\"}}", "config.json:1:1: ociVersion: required field is missing");
  char *t = with("", ", \"mounts\": [{\"destination\": \"proc\"}]");
  char *m = parse_err(t);
  assert_non_null(strstr(m, "mounts[0].destination: must be an absolute path (got \"proc\")"));
  free(m);
  free(t);
}

static void test_enum_validation(void **state) {
  (void)state;
  struct { const char *process, *top, *want; } cases[] = {
      {", \"capabilities\": {\"bounding\": [\"CAP_KILL\", \"CAP_FLY\"]}", "",
       "process.capabilities.bounding[1]: unknown capability \"CAP_FLY\""},
      {", \"capabilities\": {\"ambient\": [\"kill\"]}", "",
       "process.capabilities.ambient[0]: unknown capability \"kill\""},
      {", \"ioPriority\": {\"class\": \"IOPRIO_CLASS_X\"}", "", "process.ioPriority.class: unknown"},
      {"", ", \"linux\": {\"devices\": [{\"path\": \"/dev/x\", \"type\": \"z\"}]}",
       "linux.devices[0].type: unknown device type \"z\""},
      {"", ", \"linux\": {\"devices\": [{\"path\": \"/dev/x\", \"type\": \"c\"}]}",
       "linux.devices[0].major: required field is missing"},
      {"", ", \"linux\": {\"rootfsPropagation\": \"sideways\"}",
       "linux.rootfsPropagation: unknown value \"sideways\""},
      {"", ", \"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_NOPE\"}}",
       "linux.seccomp.defaultAction: unknown seccomp action \"SCMP_ACT_NOPE\""},
      {"", ", \"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": "
           "[\"SCMP_ARCH_Z80\"]}}",
       "linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_Z80\""},
      {"", ", \"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": "
           "[{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, "
           "\"value\": 1, \"op\": \"SCMP_CMP_XX\"}]}]}}",
       "linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_XX\""},
      {"", ", \"linux\": {\"resources\": {\"devices\": [{\"allow\": true, \"access\": \"rwx\"}]}}",
       "linux.resources.devices[0].access: \"rwx\" is not a combination of r, w and m"},
      {"", ", \"linux\": {\"resources\": {\"devices\": [{\"access\": \"rw\"}]}}",
       "linux.resources.devices[0].allow: required field is missing"},
      {"", ", \"hooks\": {\"prestart\": [{\"path\": \"/bin/true\", \"timeout\": 0}]}",
       "hooks.prestart[0].timeout: 0 is out of range"},
      {"", ", \"linux\": {\"timeOffsets\": {\"monotonic\": {\"secs\": 1}}}",
       "linux.timeOffsets: given, but linux.namespaces has no \"time\" namespace"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *t = with(cases[i].process, cases[i].top);
    char *m = parse_err(t);
    if (!m || !strstr(m, cases[i].want))
      fail_msg("case %zu: got \"%s\", want \"...%s...\"", i, m ? m : "(success)", cases[i].want);
    assert_true(strncmp(m, "config.json:", 12) == 0);
    free(m);
    free(t);
  }
}

/* uint64 fields take the full range (Go writes unlimited as 2^64-1);
 * elsewhere such literals are range or type errors at their position. */
static void test_big_integers(void **state) {
  (void)state;
  char *t = with(", \"rlimits\": [{\"type\": \"RLIMIT_MEMLOCK\", \"hard\": 18446744073709551615, "
                 "\"soft\": 9223372036854775808}]", "");
  hv_error_t err = NULL;
  struct hv_oci_config *c = NULL;
  if (hv_oci_parse(t, strlen(t), "config.json", &c, &err) < 0)
    fail_msg("%s", err->msg);
  assert_true(c->process->rlimits[0].hard == UINT64_MAX);
  assert_true(c->process->rlimits[0].soft == 9223372036854775808ULL);
  /* cfg->raw re-serialized (ns/ saves it for exec/delete) parses the same */
  char *again = json_dumps(c->raw, 0);
  hv_oci_free(c);
  if (hv_oci_parse(again, strlen(again), "saved.json", &c, &err) < 0)
    fail_msg("%s", err->msg);
  assert_true(c->process->rlimits[0].hard == UINT64_MAX);
  hv_oci_free(c);
  free(again);
  free(t);
  t = with(", \"user\": {\"uid\": 18446744073709551615}", "");
  expect_err(t, "config.json:4:59: process.user.uid: 18446744073709551615 is out of range [0, "
                "4294967295]");
  free(t);
  t = with(", \"rlimits\": [{\"type\": \"RLIMIT_CORE\", \"hard\": 18446744073709551616, \"soft\": 1}]",
           "");
  char *m = parse_err(t);
  assert_non_null(strstr(m, "process.rlimits[0].hard: 18446744073709551616 is out of range"));
  free(m);
  free(t);
  t = with(", \"env\": [\"A=99999999999999999999\", 99999999999999999999]", "");
  m = parse_err(t);
  assert_non_null(strstr(m, "process.env[1]: expected string, got integer"));
  free(m);
  free(t);
  t = with(", \"user\": {\"additionalGids\": [1, 99999999999999999999]}", "");
  m = parse_err(t);
  assert_non_null(strstr(m, "process.user.additionalGids[1]: 99999999999999999999 is out of range"));
  free(m);
  free(t);
}

/* ---- full round trip ------------------------------------------------ */

static const char *full_config =
    "{\"ociVersion\": \"1.2.0\",\n"
    " \"root\": {\"path\": \"rootfs\", \"readonly\": true},\n"
    " \"process\": {\"terminal\": true, \"consoleSize\": {\"height\": 24, \"width\": 80},\n"
    "   \"user\": {\"uid\": 1, \"gid\": 2, \"umask\": 18, \"additionalGids\": [5, 6], \"username\": \"u\"},\n"
    "   \"args\": [\"sh\", \"-c\", \"true\"], \"commandLine\": \"x\", \"env\": [\"A=1\"], \"cwd\": \"/w\",\n"
    "   \"capabilities\": {\"bounding\": [\"CAP_KILL\"], \"effective\": [\"CAP_CHOWN\"],\n"
    "     \"inheritable\": [], \"permitted\": [\"CAP_KILL\", \"CAP_CHOWN\"], \"ambient\": [\"CAP_SYS_ADMIN\"]},\n"
    "   \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 2048, \"soft\": 1024}],\n"
    "   \"noNewPrivileges\": true, \"apparmorProfile\": \"ap\", \"oomScoreAdj\": -17,\n"
    "   \"selinuxLabel\": \"sl\", \"ioPriority\": {\"class\": \"IOPRIO_CLASS_BE\", \"priority\": 4},\n"
    "   \"execCPUAffinity\": {\"initial\": \"0\", \"final\": \"0-1\"}, \"unknownField\": [1]},\n"
    " \"hostname\": \"h\", \"domainname\": \"d\",\n"
    " \"mounts\": [{\"destination\": \"/m\", \"type\": \"bind\", \"source\": \"/s\", \"options\": [\"rbind\", \"ro\"],\n"
    "   \"uidMappings\": [{\"containerID\": 0, \"hostID\": 1000, \"size\": 10}],\n"
    "   \"gidMappings\": [{\"containerID\": 0, \"hostID\": 2000, \"size\": 20}]}],\n"
    " \"hooks\": {\"prestart\": [{\"path\": \"/p\", \"args\": [\"p\", \"1\"], \"env\": [\"E=1\"], \"timeout\": 5}],\n"
    "   \"createRuntime\": [{\"path\": \"/cr\"}], \"createContainer\": [{\"path\": \"/cc\"}],\n"
    "   \"startContainer\": [{\"path\": \"/sc\"}], \"poststart\": [{\"path\": \"/ps\"}],\n"
    "   \"poststop\": [{\"path\": \"/pst\"}, {\"path\": \"/pst2\"}]},\n"
    " \"annotations\": {\"org.hvrun.backend\": \"vm\", \"k\": \"v\"},\n"
    " \"linux\": {\n"
    "   \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"network\", \"path\": \"/proc/1/ns/net\"},\n"
    "     {\"type\": \"mount\"}, {\"type\": \"ipc\"}, {\"type\": \"uts\"}, {\"type\": \"user\"},\n"
    "     {\"type\": \"cgroup\"}, {\"type\": \"time\"}],\n"
    "   \"uidMappings\": [{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}],\n"
    "   \"gidMappings\": [{\"containerID\": 0, \"hostID\": 200000, \"size\": 65536}],\n"
    "   \"timeOffsets\": {\"monotonic\": {\"secs\": -5, \"nanosecs\": 7}},\n"
    "   \"devices\": [{\"path\": \"/dev/fuse\", \"type\": \"c\", \"major\": 10, \"minor\": 229,\n"
    "     \"fileMode\": 438, \"uid\": 0, \"gid\": 0}, {\"path\": \"/dev/p\", \"type\": \"p\"}],\n"
    "   \"cgroupsPath\": \"/hv/x\",\n"
    "   \"resources\": {\n"
    "     \"devices\": [{\"allow\": false, \"access\": \"rwm\"},\n"
    "       {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 3, \"access\": \"rw\"}],\n"
    "     \"memory\": {\"limit\": 1000, \"reservation\": 500, \"swap\": 2000, \"kernel\": -1,\n"
    "       \"kernelTCP\": 10, \"swappiness\": 60, \"disableOOMKiller\": true, \"useHierarchy\": false,\n"
    "       \"checkBeforeUpdate\": true},\n"
    "     \"cpu\": {\"shares\": 512, \"quota\": 50000, \"period\": 100000, \"realtimeRuntime\": 1,\n"
    "       \"realtimePeriod\": 2, \"cpus\": \"0-1\", \"mems\": \"0\", \"burst\": 3, \"idle\": 1},\n"
    "     \"pids\": {\"limit\": 64},\n"
    "     \"blockIO\": {\"weight\": 300, \"leafWeight\": 200,\n"
    "       \"weightDevice\": [{\"major\": 8, \"minor\": 0, \"weight\": 100}],\n"
    "       \"throttleReadBpsDevice\": [{\"major\": 8, \"minor\": 0, \"rate\": 1000}],\n"
    "       \"throttleWriteBpsDevice\": [{\"major\": 8, \"minor\": 1, \"rate\": 2000}],\n"
    "       \"throttleReadIOPSDevice\": [{\"major\": 8, \"minor\": 2, \"rate\": 30}],\n"
    "       \"throttleWriteIOPSDevice\": [{\"major\": 8, \"minor\": 3, \"rate\": 40}]},\n"
    "     \"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 4194304}],\n"
    "     \"network\": {\"classID\": 7, \"priorities\": [{\"name\": \"eth0\", \"priority\": 3}]},\n"
    "     \"unified\": {\"memory.high\": \"900\"}},\n"
    "   \"rootfsPropagation\": \"rslave\",\n"
    "   \"sysctl\": {\"net.ipv4.ip_forward\": \"1\"},\n"
    "   \"seccomp\": {\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 38,\n"
    "     \"architectures\": [\"SCMP_ARCH_X86_64\"], \"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"],\n"
    "     \"listenerPath\": \"/run/l.sock\", \"listenerMetadata\": \"md\",\n"
    "     \"syscalls\": [{\"names\": [\"read\", \"write\"], \"action\": \"SCMP_ACT_ALLOW\"},\n"
    "       {\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 1,\n"
    "        \"args\": [{\"index\": 0, \"value\": 8, \"valueTwo\": 9, \"op\": \"SCMP_CMP_MASKED_EQ\"}]}]},\n"
    "   \"maskedPaths\": [\"/proc/kcore\"], \"readonlyPaths\": [\"/proc/sys\"],\n"
    "   \"mountLabel\": \"ml\", \"personality\": {\"domain\": \"LINUX32\"}}}\n";

static void test_full_roundtrip(void **state) {
  (void)state;
  hv_error_t err = NULL;
  struct hv_oci_config *c = NULL;
  int r = hv_oci_parse(full_config, strlen(full_config), "full.json", &c, &err);
  if (r < 0)
    fail_msg("%s", err->msg);
  assert_string_equal(c->oci_version, "1.2.0");
  assert_string_equal(c->root.path, "rootfs");
  assert_true(c->root.readonly);
  struct hv_oci_process *p = c->process;
  assert_true(p->terminal);
  assert_true(p->has_console_size);
  assert_int_equal(p->console_size.height, 24);
  assert_int_equal(p->console_size.width, 80);
  assert_int_equal(p->user.uid, 1);
  assert_int_equal(p->user.gid, 2);
  assert_true(p->user.has_umask);
  assert_int_equal(p->user.umask, 18);
  assert_int_equal(p->user.n_additional_gids, 2);
  assert_int_equal(p->user.additional_gids[1], 6);
  assert_string_equal(p->user.username, "u");
  assert_int_equal(hv_strv_len(p->args), 3);
  assert_string_equal(p->args[2], "true");
  assert_string_equal(p->command_line, "x");
  assert_string_equal(p->env[0], "A=1");
  assert_string_equal(p->cwd, "/w");
  assert_string_equal(p->capabilities->bounding[0], "CAP_KILL");
  assert_string_equal(p->capabilities->effective[0], "CAP_CHOWN");
  assert_non_null(p->capabilities->inheritable);
  assert_null(p->capabilities->inheritable[0]);
  assert_int_equal(hv_strv_len(p->capabilities->permitted), 2);
  assert_string_equal(p->capabilities->ambient[0], "CAP_SYS_ADMIN");
  assert_int_equal(p->n_rlimits, 1);
  assert_int_equal(p->rlimits[0].resource, RLIMIT_NOFILE);
  assert_int_equal(p->rlimits[0].hard, 2048);
  assert_int_equal(p->rlimits[0].soft, 1024);
  assert_true(p->no_new_privileges);
  assert_string_equal(p->apparmor_profile, "ap");
  assert_true(p->has_oom_score_adj);
  assert_int_equal(p->oom_score_adj, -17);
  assert_string_equal(p->selinux_label, "sl");
  assert_string_equal(p->io_priority_class, "IOPRIO_CLASS_BE");
  assert_int_equal(p->io_priority, 4);
  assert_string_equal(p->exec_cpu_affinity_initial, "0");
  assert_string_equal(p->exec_cpu_affinity_final, "0-1");
  assert_string_equal(c->hostname, "h");
  assert_string_equal(c->domainname, "d");
  assert_int_equal(c->n_mounts, 1);
  assert_string_equal(c->mounts[0].destination, "/m");
  assert_string_equal(c->mounts[0].type, "bind");
  assert_string_equal(c->mounts[0].source, "/s");
  assert_string_equal(c->mounts[0].options[1], "ro");
  assert_int_equal(c->mounts[0].n_uid_mappings, 1);
  assert_int_equal(c->mounts[0].uid_mappings[0].host_id, 1000);
  assert_int_equal(c->mounts[0].gid_mappings[0].size, 20);
  assert_int_equal(c->hooks.n_prestart, 1);
  assert_string_equal(c->hooks.prestart[0].path, "/p");
  assert_string_equal(c->hooks.prestart[0].args[1], "1");
  assert_string_equal(c->hooks.prestart[0].env[0], "E=1");
  assert_true(c->hooks.prestart[0].has_timeout);
  assert_int_equal(c->hooks.prestart[0].timeout, 5);
  assert_string_equal(c->hooks.create_runtime[0].path, "/cr");
  assert_string_equal(c->hooks.create_container[0].path, "/cc");
  assert_string_equal(c->hooks.start_container[0].path, "/sc");
  assert_string_equal(c->hooks.poststart[0].path, "/ps");
  assert_int_equal(c->hooks.n_poststop, 2);
  assert_false(c->hooks.poststop[1].has_timeout);
  assert_string_equal(hv_oci_annotation(c, "org.hvrun.backend"), "vm");
  assert_string_equal(hv_oci_annotation(c, "k"), "v");
  assert_null(hv_oci_annotation(c, "nope"));
  assert_int_equal(c->linux.n_namespaces, 8);
  assert_int_equal(c->linux.namespaces[0].flag, CLONE_NEWPID);
  assert_int_equal(c->linux.namespaces[1].flag, CLONE_NEWNET);
  assert_string_equal(c->linux.namespaces[1].path, "/proc/1/ns/net");
  assert_int_equal(c->linux.namespaces[6].flag, CLONE_NEWCGROUP);
  assert_int_equal(c->linux.namespaces[7].flag, 0x80 /* CLONE_NEWTIME */);
  assert_int_equal(c->linux.uid_mappings[0].host_id, 100000);
  assert_int_equal(c->linux.gid_mappings[0].host_id, 200000);
  assert_int_equal(c->linux.n_time_offsets, 1);
  assert_string_equal(c->linux.time_offsets[0].key, "monotonic");
  assert_string_equal(c->linux.time_offsets[0].value, "-5 7");
  assert_int_equal(c->linux.n_devices, 2);
  assert_int_equal(c->linux.devices[0].type, 'c');
  assert_int_equal(c->linux.devices[0].major, 10);
  assert_int_equal(c->linux.devices[0].minor, 229);
  assert_true(c->linux.devices[0].has_file_mode);
  assert_int_equal(c->linux.devices[0].file_mode, 0666);
  assert_true(c->linux.devices[0].has_uid);
  assert_int_equal(c->linux.devices[1].type, 'p');
  assert_false(c->linux.devices[1].has_uid);
  assert_string_equal(c->linux.cgroups_path, "/hv/x");
  struct hv_oci_resources *res = &c->linux.resources;
  assert_true(res->present);
  assert_int_equal(res->n_devices, 2);
  assert_false(res->devices[0].allow);
  assert_int_equal(res->devices[0].type, 0);
  assert_false(res->devices[0].has_major);
  assert_true(res->devices[1].allow);
  assert_int_equal(res->devices[1].type, 'c');
  assert_int_equal(res->devices[1].minor, 3);
  assert_string_equal(res->devices[1].access, "rw");
  assert_int_equal(res->memory.limit, 1000);
  assert_int_equal(res->memory.reservation, 500);
  assert_int_equal(res->memory.swap, 2000);
  assert_int_equal(res->memory.kernel, -1);
  assert_int_equal(res->memory.kernel_tcp, 10);
  assert_int_equal(res->memory.swappiness, 60);
  assert_true(res->memory.has_disable_oom_killer && res->memory.disable_oom_killer);
  assert_true(res->memory.has_use_hierarchy && !res->memory.use_hierarchy);
  assert_true(res->memory.check_before_update);
  assert_int_equal(res->cpu.shares, 512);
  assert_int_equal(res->cpu.quota, 50000);
  assert_int_equal(res->cpu.period, 100000);
  assert_int_equal(res->cpu.realtime_runtime, 1);
  assert_int_equal(res->cpu.realtime_period, 2);
  assert_string_equal(res->cpu.cpus, "0-1");
  assert_string_equal(res->cpu.mems, "0");
  assert_int_equal(res->cpu.burst, 3);
  assert_int_equal(res->cpu.idle, 1);
  assert_true(res->pids.has_limit);
  assert_int_equal(res->pids.limit, 64);
  assert_int_equal(res->block_io.weight, 300);
  assert_int_equal(res->block_io.leaf_weight, 200);
  assert_int_equal(res->block_io.weight_device[0].weight, 100);
  assert_false(res->block_io.weight_device[0].has_leaf_weight);
  assert_int_equal(res->block_io.throttle_read_bps[0].rate, 1000);
  assert_int_equal(res->block_io.throttle_write_bps[0].minor, 1);
  assert_int_equal(res->block_io.throttle_read_iops[0].rate, 30);
  assert_int_equal(res->block_io.throttle_write_iops[0].rate, 40);
  assert_string_equal(res->hugepage_limits[0].page_size, "2MB");
  assert_int_equal(res->hugepage_limits[0].limit, 4194304);
  assert_int_equal(res->network.class_id, 7);
  assert_string_equal(res->network.priorities[0].name, "eth0");
  assert_int_equal(res->network.priorities[0].priority, 3);
  assert_string_equal(res->unified[0].key, "memory.high");
  assert_string_equal(res->unified[0].value, "900");
  assert_string_equal(c->linux.rootfs_propagation, "rslave");
  assert_string_equal(c->linux.sysctl[0].key, "net.ipv4.ip_forward");
  struct hv_oci_seccomp *s = c->linux.seccomp;
  assert_string_equal(s->default_action, "SCMP_ACT_ERRNO");
  assert_int_equal(s->default_errno_ret, 38);
  assert_string_equal(s->architectures[0], "SCMP_ARCH_X86_64");
  assert_string_equal(s->flags[0], "SECCOMP_FILTER_FLAG_LOG");
  assert_string_equal(s->listener_path, "/run/l.sock");
  assert_string_equal(s->listener_metadata, "md");
  assert_int_equal(s->n_syscalls, 2);
  assert_string_equal(s->syscalls[0].names[1], "write");
  assert_false(s->syscalls[0].has_errno_ret);
  assert_true(s->syscalls[1].has_errno_ret);
  assert_int_equal(s->syscalls[1].n_args, 1);
  assert_int_equal(s->syscalls[1].args[0].value, 8);
  assert_int_equal(s->syscalls[1].args[0].value_two, 9);
  assert_string_equal(s->syscalls[1].args[0].op, "SCMP_CMP_MASKED_EQ");
  assert_string_equal(c->linux.masked_paths[0], "/proc/kcore");
  assert_string_equal(c->linux.readonly_paths[0], "/proc/sys");
  assert_string_equal(c->linux.mount_label, "ml");
  assert_string_equal(c->linux.personality_domain, "LINUX32");
  assert_non_null(c->raw);
  assert_true(json_is_object(json_object_get(c->raw, "linux")));
  hv_oci_free(c);
}

/* ---- standalone documents, load, default spec ---------------------- */

static void test_process_and_resources(void **state) {
  (void)state;
  hv_error_t err = NULL;
  struct hv_oci_process *p = NULL;
  const char *pj = "{\"args\": [\"ls\"], \"cwd\": \"/tmp\", \"env\": [\"X=1\"], \"terminal\": false}";
  assert_int_equal(hv_oci_parse_process(pj, strlen(pj), "p.json", &p, &err), 0);
  assert_string_equal(p->args[0], "ls");
  assert_string_equal(p->cwd, "/tmp");
  hv_oci_process_free(p);
  const char *bad = "{\"args\": [\"ls\"],\n \"cwd\": \"/\", \"rlimits\": 3}";
  assert_true(hv_oci_parse_process(bad, strlen(bad), "p.json", &p, &err) < 0);
  assert_string_equal(err->msg, "p.json:2:25: rlimits: expected array, got integer");
  hv_error_release(&err);

  struct hv_oci_resources r = {0};
  const char *rj = "{\"memory\": {\"limit\": 1048576}, \"pids\": {\"limit\": 10}, \"cpu\": "
                   "{\"quota\": 1000}}";
  assert_int_equal(hv_oci_parse_resources(rj, strlen(rj), "r.json", &r, &err), 0);
  assert_true(r.present && r.memory.has_limit && r.pids.has_limit && r.cpu.has_quota);
  assert_false(r.cpu.has_period);
  assert_int_equal(r.memory.limit, 1048576);
  hv_oci_resources_clear(&r);
  const char *rbad = "{\"memory\": {\"swappiness\": 101}}";
  assert_true(hv_oci_parse_resources(rbad, strlen(rbad), "r.json", &r, &err) < 0);
  assert_string_equal(err->msg, "r.json:1:27: memory.swappiness: 101 is out of range [0, 100]");
  hv_error_release(&err);
  const char *rsyn = "{\"memory\": ";
  assert_true(hv_oci_parse_resources(rsyn, strlen(rsyn), "r.json", &r, &err) < 0);
  assert_non_null(strstr(err->msg, "r.json:1:"));
  assert_non_null(strstr(err->msg, "syntax error"));
  hv_error_release(&err);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void test_load(void **state) {
  (void)state;
  char dir[] = "/tmp/test_oci.XXXXXX";
  assert_non_null(mkdtemp(dir));
  char *cfgpath = hv_xasprintf("%s/config.json", dir);
  char *rootfs = hv_xasprintf("%s/rootfs", dir);
  char *t = with("", "");
  write_text(cfgpath, t);
  free(t);
  hv_error_t err = NULL;
  struct hv_oci_config *c = NULL;
  /* rootfs missing: named with the position of root.path */
  assert_true(hv_oci_load(dir, &c, &err) < 0);
  assert_non_null(strstr(err->msg, "config.json:3:20: root.path: `"));
  assert_non_null(strstr(err->msg, "No such file or directory"));
  hv_error_release(&err);
  assert_int_equal(mkdir(rootfs, 0755), 0);
  assert_int_equal(hv_oci_load(dir, &c, &err), 0);
  assert_string_equal(c->bundle, dir);
  assert_string_equal(c->root.path, "rootfs");
  hv_oci_free(c);
  /* missing config.json */
  unlink(cfgpath);
  assert_true(hv_oci_load(dir, &c, &err) < 0);
  assert_non_null(strstr(err->msg, "config.json"));
  hv_error_release(&err);
  rmdir(rootfs);
  rmdir(dir);
  free(cfgpath);
  free(rootfs);
}

static void test_default_spec(void **state) {
  (void)state;
  for (int rootless = 0; rootless < 2; rootless++) {
    json_t *j = hv_oci_default_spec(rootless);
    assert_non_null(j);
    char *s = json_dumps(j, JSON_INDENT(2));
    hv_error_t err = NULL;
    struct hv_oci_config *c = NULL;
    if (hv_oci_parse(s, strlen(s), "spec.json", &c, &err) < 0)
      fail_msg("%s", err->msg);
    assert_string_equal(c->oci_version, "1.2.0");
    assert_string_equal(c->process->args[0], "sh");
    assert_true(c->process->terminal);
    assert_int_equal(hv_strv_len(c->process->capabilities->bounding), 3);
    assert_int_equal(c->process->rlimits[0].resource, RLIMIT_NOFILE);
    assert_int_equal(c->n_mounts, 7);
    bool has_user = false, has_net = false;
    for (size_t i = 0; i < c->linux.n_namespaces; i++) {
      has_user |= c->linux.namespaces[i].flag == CLONE_NEWUSER;
      has_net |= c->linux.namespaces[i].flag == CLONE_NEWNET;
    }
    assert_int_equal(has_user, rootless);
    assert_int_equal(has_net, !rootless);
    if (rootless) {
      assert_int_equal(c->linux.uid_mappings[0].host_id, getuid());
      assert_int_equal(c->linux.gid_mappings[0].host_id, getgid());
      assert_string_equal(c->mounts[5].source, "/sys");
    }
    assert_true(hv_strv_len(c->linux.masked_paths) > 5);
    assert_true(hv_strv_len(c->linux.readonly_paths) > 3);
    hv_oci_free(c);
    free(s);
    json_decref(j);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_pos),
      cmocka_unit_test(test_syntax_error),
      cmocka_unit_test(test_wrong_type),
      cmocka_unit_test(test_unknown_rlimit),
      cmocka_unit_test(test_bad_namespace),
      cmocka_unit_test(test_relative_cwd_and_required),
      cmocka_unit_test(test_enum_validation),
      cmocka_unit_test(test_big_integers),
      cmocka_unit_test(test_full_roundtrip),
      cmocka_unit_test(test_process_and_resources),
      cmocka_unit_test(test_load),
      cmocka_unit_test(test_default_spec),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
