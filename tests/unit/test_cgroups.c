/* test_cgroups.c: the cgroup layer against FAKE cgroupfs trees (plain
 * files in a temp dir) for the v1, hybrid and unified layouts: the exact
 * files and values written, cgroupsPath forms, cleanup on failure, the
 * shares->weight conversion and the device eBPF instruction stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cgroups/internal.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>

static char T[256];

static void put(const char *rel, const char *content) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", T, rel);
  hv_error_t e = NULL;
  char *slash = strrchr(p, '/');
  *slash = 0;
  assert_int_equal(hv_mkdir_p(p, 0755, &e), 0);
  *slash = '/';
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(content, f);
  fclose(f);
}

/* File content with trailing newline stripped; NULL if missing. */
static char *get(const char *rel) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", T, rel);
  char *s = NULL;
  hv_error_t e = NULL;
  if (hv_read_file(p, &s, NULL, &e) < 0) {
    hv_error_release(&e);
    return NULL;
  }
  size_t l = strlen(s);
  while (l && s[l - 1] == '\n')
    s[--l] = 0;
  return s;
}

static void assert_file(const char *rel, const char *want) {
  char *s = get(rel);
  if (!s)
    fail_msg("%s: missing", rel);
  if (strcmp(s, want) != 0)
    fail_msg("%s: got \"%s\", want \"%s\"", rel, s, want);
  free(s);
}

static bool exists(const char *rel) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", T, rel);
  return access(p, F_OK) == 0;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static void mount_line(FILE *f, int id, const char *dir, bool v2, const char *opts) {
  fprintf(f, "%d 31 0:%d / %s/%s rw,relatime shared:%d - %s %s rw%s%s\n", id, id, T, dir, id,
          v2 ? "cgroup2" : "cgroup", v2 ? "cgroup2" : "cgroup", opts ? "," : "",
          opts ? opts : "");
}

static void v1_files(bool comount) {
  const char *cpu = comount ? "cpu,cpuacct" : "cpu";
  char p[128];
#define CPU(f, v) (snprintf(p, sizeof p, "%s/%s", cpu, f), put(p, v))
  CPU("cpu.shares", "1024\n");
  CPU("cpu.cfs_period_us", "100000\n");
  CPU("cpu.cfs_quota_us", "-1\n");
  CPU("cpu.cfs_burst_us", "0\n");
  CPU("cpu.rt_period_us", "1000000\n");
  CPU("cpu.rt_runtime_us", "0\n");
  CPU("cpu.idle", "0\n");
  CPU("cpu.stat", "nr_periods 7\nnr_throttled 3\nthrottled_time 900\n");
  CPU("cgroup.procs", "");
  const char *acct = comount ? "cpu,cpuacct" : "cpuacct";
#define ACCT(f, v) (snprintf(p, sizeof p, "%s/%s", acct, f), put(p, v))
  ACCT("cpuacct.usage", "123456\n");
  ACCT("cpuacct.usage_percpu", "100000 23456 \n");
  ACCT("cpuacct.stat", "user 2\nsystem 1\n");
  ACCT("cgroup.procs", "");
  put("cpuset/cpuset.cpus", "0-1\n");
  put("cpuset/cpuset.mems", "0\n");
  put("cpuset/cgroup.procs", "");
  put("memory/memory.limit_in_bytes", "9223372036854771712\n");
  put("memory/memory.memsw.limit_in_bytes", "9223372036854771712\n");
  put("memory/memory.soft_limit_in_bytes", "9223372036854771712\n");
  put("memory/memory.kmem.limit_in_bytes", "9223372036854771712\n");
  put("memory/memory.swappiness", "60\n");
  put("memory/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
  put("memory/memory.usage_in_bytes", "4096\n");
  put("memory/memory.max_usage_in_bytes", "8192\n");
  put("memory/memory.failcnt", "0\n");
  put("memory/memory.stat", "cache 5\ntotal_cache 5\nrss 7\n");
  put("memory/cgroup.procs", "");
  put("devices/devices.allow", "");
  put("devices/devices.deny", "");
  put("devices/cgroup.procs", "");
  put("freezer/freezer.state", "THAWED\n");
  put("freezer/cgroup.procs", "");
  put("blkio/blkio.throttle.read_bps_device", "");
  put("blkio/blkio.throttle.write_iops_device", "");
  put("blkio/cgroup.procs", "");
  put("pids/pids.max", "max\n");
  put("pids/pids.current", "0\n");
  put("pids/cgroup.procs", "");
}

enum fake { FAKE_V1, FAKE_V1_COMOUNT, FAKE_HYBRID, FAKE_V2 };

static void make_tree(enum fake kind) {
  snprintf(T, sizeof T, "/tmp/hvrun-cgtest-XXXXXX");
  assert_non_null(mkdtemp(T));
  char mi[512];
  snprintf(mi, sizeof mi, "%s/.mountinfo", T);
  FILE *f = fopen(mi, "w");
  fprintf(f, "31 23 0:28 / %s rw,relatime - tmpfs tmpfs rw,mode=755\n", T);
  if (kind == FAKE_V2) {
    fprintf(f, "41 23 0:38 / %s rw,relatime - cgroup2 cgroup2 rw\n", T);
    put("cgroup.controllers", "cpuset cpu io memory hugetlb pids\n");
    put("cgroup.procs", "");
    put("cgroup.subtree_control", "");
    put("cgroup.freeze", "0\n");
    put("cgroup.events", "populated 0\nfrozen 0\n");
    put("memory.max", "max\n");
    put("memory.swap.max", "max\n");
    put("memory.low", "0\n");
    put("memory.high", "max\n");
    put("memory.current", "4096\n");
    put("memory.events", "low 0\nhigh 0\nmax 1\noom 1\noom_kill 2\n");
    put("memory.stat", "anon 10\nfile 20\n");
    put("cpu.weight", "100\n");
    put("cpu.max", "max 100000\n");
    put("cpu.max.burst", "0\n");
    put("cpu.idle", "0\n");
    put("cpu.stat", "usage_usec 5\nuser_usec 3\nsystem_usec 2\n");
    put("cpuset.cpus", "");
    put("cpuset.mems", "");
    put("io.weight", "default 100\n");
    put("io.max", "");
    put("io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
    put("pids.max", "max\n");
    put("pids.current", "1\n");
    put("hugetlb.2MB.max", "max\n");
    put("hugetlb.2MB.current", "0\n");
    put("devices.bpf", "");
    put(".self_cgroup", "0::/user.slice/me\n");
  } else {
    bool co = kind == FAKE_V1_COMOUNT;
    if (co) {
      mount_line(f, 32, "cpu,cpuacct", false, "cpu,cpuacct");
    } else {
      mount_line(f, 32, "cpu", false, "cpu");
      mount_line(f, 33, "cpuacct", false, "cpuacct");
    }
    mount_line(f, 34, "cpuset", false, "cpuset");
    mount_line(f, 35, "memory", false, "memory");
    mount_line(f, 36, "devices", false, "devices");
    mount_line(f, 37, "freezer", false, "freezer");
    mount_line(f, 38, "blkio", false, "blkio");
    mount_line(f, 39, "pids", false, "pids");
    mount_line(f, 40, "systemd", false, "name=systemd");
    v1_files(co);
    put("systemd/cgroup.procs", "");
    put(".self_cgroup", co ? "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n"
                             "4:memory:/user/me\n3:cpuset:/\n2:cpu,cpuacct:/\n0::/\n"
                           : "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n"
                             "4:memory:/user/me\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n");
    if (kind == FAKE_HYBRID) {
      mount_line(f, 41, "unified", true, NULL);
      put("unified/cgroup.controllers", "hugetlb\n");
      put("unified/cgroup.procs", "");
      put("unified/cgroup.subtree_control", "");
      put("unified/cgroup.freeze", "0\n");
      put("unified/hugetlb.2MB.max", "max\n");
      put("unified/hugetlb.2MB.current", "0\n");
      put("unified/hugetlb.1GB.max", "max\n");
      put("unified/hugetlb.1GB.current", "0\n");
    } else {
      put("blkio/blkio.weight", "500\n");
    }
  }
  fclose(f);
  hv_cg_set_root_for_tests(T);
}

static int teardown(void **state) {
  (void)state;
  hv_cg_set_root_for_tests(NULL);
  if (T[0])
    nftw(T, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  T[0] = 0;
  return 0;
}

static struct hv_cgroup *create_ok(const char *path, const char *id,
                                   const struct hv_oci_resources *r) {
  struct hv_cgroup *cg = NULL;
  hv_error_t err = NULL;
  int rc = hv_cg_create(path, id, r, false, &cg, &err);
  if (rc < 0)
    fail_msg("create: %s", err->msg);
  return cg;
}

static char *create_err(const char *path, const struct hv_oci_resources *r, bool systemd) {
  struct hv_cgroup *cg = NULL;
  hv_error_t err = NULL;
  int rc = hv_cg_create(path, "c1", r, systemd, &cg, &err);
  assert_true(rc < 0);
  assert_null(cg);
  assert_non_null(err);
  char *m = hv_xstrdup(err->msg);
  hv_error_release(&err);
  return m;
}

static void destroy_ok(struct hv_cgroup *cg) {
  hv_error_t err = NULL;
  if (hv_cg_destroy(cg, &err) < 0)
    fail_msg("destroy: %s", err->msg);
  hv_cg_free(cg);
}

/* ---- detection ----------------------------------------------------- */

static void test_detect(void **state) {
  (void)state;
  static const struct { enum fake k; enum hv_cg_layout want; size_t n; } cases[] = {
      {FAKE_V1, HV_CG_V1, 8}, {FAKE_V1_COMOUNT, HV_CG_V1, 7},
      {FAKE_HYBRID, HV_CG_HYBRID, 9}, {FAKE_V2, HV_CG_V2, 1}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    make_tree(cases[i].k);
    enum hv_cg_layout l;
    hv_error_t err = NULL;
    assert_int_equal(hv_cg_detect(NULL, &l, &err), 0);
    assert_int_equal(l, cases[i].want);
    const struct cg_layout *L;
    assert_int_equal(cg_layout_get(&L, &err), 0);
    assert_int_equal(L->n, cases[i].n); /* name=systemd is not a hierarchy we use */
    if (cases[i].k == FAKE_V1_COMOUNT)
      assert_int_equal(cg_layout_find(L, "cpu"), cg_layout_find(L, "cpuacct"));
    if (cases[i].k == FAKE_HYBRID)
      assert_true(L->h[cg_layout_find(L, "hugetlb")].v2);
    teardown(NULL);
  }
}

static void test_parse_host_mountinfo(void **state) {
  (void)state;
  /* The layout of the reference host, without touching files: cgroup2's
   * controllers are read from disk, so use a root that does not exist. */
  const char *mi =
      "31 23 0:28 / /nonexistent/cg rw - tmpfs tmpfs rw\n"
      "32 31 0:29 / /nonexistent/cg/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "35 31 0:32 / /nonexistent/cg/memory rw,relatime - cgroup cgroup rw,memory\n"
      "40 31 0:37 / /nonexistent/cg/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
      "41 31 0:38 / /nonexistent/cg/unified rw,relatime - cgroup2 cgroup2 rw\n"
      "50 23 0:40 / /other/cgroup rw - cgroup cgroup rw,pids\n"
      "51 31 0:41 / /nonexistent/cg/sp\\040ace rw - cgroup cgroup rw,net_cls,net_prio\n";
  struct cg_layout L;
  hv_error_t err = NULL;
  assert_int_equal(cg_layout_parse(mi, "/nonexistent/cg", &L, &err), 0);
  assert_int_equal(L.kind, HV_CG_HYBRID);
  assert_int_equal(L.n, 4);
  assert_string_equal(L.h[cg_layout_find(&L, "net_prio")].mount, "/nonexistent/cg/sp ace");
  assert_int_equal(cg_layout_find(&L, "pids"), -1);
  cg_layout_clear(&L);
  assert_true(cg_layout_parse("1 2 0:3 / /x rw - ext4 /dev/sda rw\n", "/nonexistent/cg", &L,
                              &err) < 0);
  assert_string_equal(err->msg, "cgroups: no cgroup filesystem is mounted under `/nonexistent/cg`");
  hv_error_release(&err);
}

/* ---- conversions ----------------------------------------------------- */

static void test_shares_to_weight(void **state) {
  (void)state;
  assert_int_equal(cg_shares_to_weight(2), 1);
  assert_int_equal(cg_shares_to_weight(1024), 39);
  assert_int_equal(cg_shares_to_weight(512), 20);
  assert_int_equal(cg_shares_to_weight(262144), 10000);
  assert_int_equal(cg_blkio_weight_to_io_weight(10), 1);
  assert_int_equal(cg_blkio_weight_to_io_weight(500), 4950);
  assert_int_equal(cg_blkio_weight_to_io_weight(1000), 10000);
}

/* ---- v1 ----------------------------------------------------------------- */

static void fill_common(struct hv_oci_resources *r) {
  r->memory.has_limit = true, r->memory.limit = 64 << 20;
  r->memory.has_swap = true, r->memory.swap = 128 << 20;
  r->memory.has_reservation = true, r->memory.reservation = 32 << 20;
  r->cpu.has_shares = true, r->cpu.shares = 512;
  r->cpu.has_quota = true, r->cpu.quota = 50000;
  r->cpu.has_period = true, r->cpu.period = 100000;
  r->pids.has_limit = true, r->pids.limit = 16;
}

static void test_v1_resources(void **state) {
  (void)state;
  make_tree(FAKE_V1_COMOUNT);
  struct hv_oci_resources r = {0};
  fill_common(&r);
  r.memory.has_swappiness = true, r.memory.swappiness = 10;
  r.memory.has_disable_oom_killer = true, r.memory.disable_oom_killer = true;
  r.cpu.has_burst = true, r.cpu.burst = 1000;
  r.cpu.has_idle = true, r.cpu.idle = 1;
  r.cpu.has_realtime_period = true, r.cpu.realtime_period = 500000;
  r.cpu.has_realtime_runtime = true, r.cpu.realtime_runtime = 1000;
  r.cpu.cpus = "1";
  r.block_io.has_weight = true, r.block_io.weight = 300;
  struct hv_oci_throttle_device t = {8, 0, 1048576};
  r.block_io.throttle_read_bps = &t, r.block_io.n_throttle_read_bps = 1;
  r.block_io.throttle_write_iops = &t, r.block_io.n_throttle_write_iops = 1;
  struct hv_oci_device_cgroup dev = {.allow = true, .type = 'c', .has_major = true, .major = 10,
                                     .has_minor = true, .minor = 200, .access = "rw"};
  r.devices = &dev, r.n_devices = 1;
  struct hv_cgroup *cg = create_ok(NULL, "c1", &r);
  assert_file("memory/hvrun/c1/memory.limit_in_bytes", "67108864");
  assert_file("memory/hvrun/c1/memory.memsw.limit_in_bytes", "134217728");
  assert_file("memory/hvrun/c1/memory.soft_limit_in_bytes", "33554432");
  assert_file("memory/hvrun/c1/memory.swappiness", "10");
  assert_file("memory/hvrun/c1/memory.oom_control", "1");
  /* the kernel's file reports state rather than holding what was written */
  put("memory/hvrun/c1/memory.oom_control", "oom_kill_disable 1\nunder_oom 0\noom_kill 3\n");
  assert_file("cpu,cpuacct/hvrun/c1/cpu.shares", "512");
  assert_file("cpu,cpuacct/hvrun/c1/cpu.cfs_quota_us", "50000");
  assert_file("cpu,cpuacct/hvrun/c1/cpu.cfs_period_us", "100000");
  assert_file("cpu,cpuacct/hvrun/c1/cpu.cfs_burst_us", "1000");
  assert_file("cpu,cpuacct/hvrun/c1/cpu.idle", "1");
  assert_file("cpu,cpuacct/hvrun/c1/cpu.rt_period_us", "500000");
  assert_file("cpu,cpuacct/hvrun/c1/cpu.rt_runtime_us", "1000");
  /* cpus from the spec; mems copied down from the parent (it was empty) */
  assert_file("cpuset/hvrun/c1/cpuset.cpus", "1");
  assert_file("cpuset/hvrun/c1/cpuset.mems", "0");
  assert_file("cpuset/hvrun/cpuset.cpus", "0-1");
  assert_file("blkio/hvrun/c1/blkio.weight", "300");
  assert_file("blkio/hvrun/c1/blkio.throttle.read_bps_device", "8:0 1048576");
  assert_file("blkio/hvrun/c1/blkio.throttle.write_iops_device", "8:0 1048576");
  assert_file("pids/hvrun/c1/pids.max", "16");
  assert_file("devices/hvrun/c1/devices.deny", "a *:* rwm");
  assert_file("devices/hvrun/c1/devices.allow",
              "c 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:2 rwm\n"
              "c 136:* rwm\nc 10:200 rw");
  assert_false(exists("systemd/hvrun"));
  /* stored form re-opens the same set */
  char *stored = hv_xstrdup(hv_cg_path(cg));
  assert_non_null(strstr(stored, "\"layout\":\"v1\""));
  struct hv_cgroup *again = NULL;
  hv_error_t err = NULL;
  assert_int_equal(hv_cg_open(stored, &again, &err), 0);
  assert_int_equal(again->n, cg->n);
  /* enter writes the pid everywhere */
  assert_int_equal(hv_cg_enter(again, 4242, &err), 0);
  assert_file("memory/hvrun/c1/cgroup.procs", "4242");
  assert_file("cpuset/hvrun/c1/cgroup.procs", "4242");
  pid_t *pids = NULL;
  size_t np = 0;
  assert_int_equal(hv_cg_pids(again, &pids, &np, &err), 0);
  assert_int_equal(np, 1);
  assert_int_equal(pids[0], 4242);
  free(pids);
  /* freeze */
  assert_int_equal(hv_cg_freeze(again, true, &err), 0);
  assert_true(hv_cg_is_frozen(again));
  assert_file("freezer/hvrun/c1/freezer.state", "FROZEN");
  assert_int_equal(hv_cg_freeze(again, false, &err), 0);
  assert_false(hv_cg_is_frozen(again));
  /* stats */
  json_t *st = NULL;
  assert_int_equal(hv_cg_stats(again, &st, &err), 0);
  assert_int_equal(json_integer_value(json_object_get(st, "oom_kill")), 3);
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(json_object_get(st, "cpu"), "usage"), "total")),
                   123456);
  assert_int_equal(json_array_size(json_object_get(
                       json_object_get(json_object_get(st, "cpu"), "usage"), "percpu")),
                   2);
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(json_object_get(st, "cpu"), "throttling"),
                       "throttled_periods")),
                   3);
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(json_object_get(st, "memory"), "usage"), "limit")),
                   67108864);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "pids"), "limit")), 16);
  json_decref(st);
  /* destroy: the fake cgroup.procs is not emptied by a kernel; clear it */
  static const char *const procs[] = {"memory", "cpu,cpuacct", "cpuset", "devices", "freezer",
                                      "blkio", "pids"};
  for (size_t i = 0; i < 7; i++) {
    char p[128];
    snprintf(p, sizeof p, "%s/hvrun/c1/cgroup.procs", procs[i]);
    put(p, "");
  }
  hv_cg_free(cg);
  destroy_ok(again);
  assert_false(exists("memory/hvrun"));
  assert_false(exists("cpuset/hvrun"));
  assert_true(exists("memory/memory.limit_in_bytes"));
  /* idempotent */
  assert_int_equal(hv_cg_open(stored, &again, &err), 0);
  destroy_ok(again);
  free(stored);
  teardown(NULL);
}

static void test_v1_update(void **state) {
  (void)state;
  make_tree(FAKE_V1);
  struct hv_oci_resources r = {0};
  struct hv_cgroup *cg = create_ok("/a/b", "c1", &r);
  assert_file("devices/a/b/devices.deny", "a *:* rwm");
  struct hv_oci_resources u = {0};
  u.memory.has_limit = true, u.memory.limit = -1;
  u.pids.has_limit = true, u.pids.limit = -1;
  u.cpu.has_shares = true, u.cpu.shares = 2048;
  hv_error_t err = NULL;
  assert_int_equal(hv_cg_update(cg, &u, &err), 0);
  assert_file("memory/a/b/memory.limit_in_bytes", "-1");
  assert_file("pids/a/b/pids.max", "max");
  assert_file("cpu/a/b/cpu.shares", "2048");
  /* update without devices does not touch the device rules */
  assert_file("devices/a/b/devices.deny", "a *:* rwm");
  u.memory.has_limit = true, u.memory.limit = -5;
  assert_true(hv_cg_update(cg, &u, &err) < 0);
  assert_string_equal(err->msg, "linux.resources.memory.limit: -5 is invalid (must be -1 for "
                                "unlimited or a positive number)");
  hv_error_release(&err);
  destroy_ok(cg);
  assert_false(exists("memory/a"));
  assert_false(exists("cpu/a"));
  teardown(NULL);
}

/* ---- hybrid ----------------------------------------------------------- */

static void test_hybrid(void **state) {
  (void)state;
  make_tree(FAKE_HYBRID);
  struct hv_oci_resources r = {0};
  fill_common(&r);
  struct hv_oci_hugepage_limit h = {"2MB", 4 << 20};
  r.hugepage_limits = &h, r.n_hugepage_limits = 1;
  struct hv_oci_keyval kv = {"hugetlb.1GB.max", "0"};
  r.unified = &kv, r.n_unified = 1;
  struct hv_cgroup *cg = create_ok("/hvrun-t/c1", "c1", &r);
  assert_file("unified/hvrun-t/c1/hugetlb.2MB.max", "4194304");
  assert_file("unified/hvrun-t/c1/hugetlb.1GB.max", "0");
  assert_file("memory/hvrun-t/c1/memory.limit_in_bytes", "67108864");
  assert_false(exists("memory/hvrun-t/c1/hugetlb.2MB.max"));
  assert_non_null(strstr(hv_cg_path(cg), "\"layout\":\"hybrid\""));
  hv_error_t err = NULL;
  assert_int_equal(hv_cg_enter(cg, 77, &err), 0);
  assert_file("unified/hvrun-t/c1/cgroup.procs", "77");
  put("unified/hvrun-t/c1/cgroup.procs", "");
  static const char *const procs[] = {"memory", "cpu", "cpuacct", "cpuset", "devices",
                                      "freezer", "blkio", "pids"};
  for (size_t i = 0; i < 8; i++) {
    char p[128];
    snprintf(p, sizeof p, "%s/hvrun-t/c1/cgroup.procs", procs[i]);
    put(p, "");
  }
  destroy_ok(cg);
  assert_false(exists("unified/hvrun-t"));
  teardown(NULL);
}

static void assert_create_fails_clean(const struct hv_oci_resources *r, const char *want) {
  char *m = create_err("/hvrun-t/x", r, false);
  if (strcmp(m, want) != 0)
    fail_msg("got \"%s\"\nwant \"%s\"", m, want);
  free(m);
  /* nothing left behind in any hierarchy */
  static const char *const h[] = {"memory", "cpu", "cpuacct", "cpuset", "devices",
                                  "freezer", "blkio", "pids", "unified"};
  for (size_t i = 0; i < 9; i++) {
    char p[128];
    snprintf(p, sizeof p, "%s/hvrun-t", h[i]);
    if (exists(p))
      fail_msg("%s left behind", p);
  }
}

static void test_hybrid_errors(void **state) {
  (void)state;
  make_tree(FAKE_HYBRID);
  struct hv_oci_resources r = {0};
  fill_common(&r);
  r.block_io.has_weight = true, r.block_io.weight = 300;
  assert_create_fails_clean(
      &r, "linux.resources.blockIO.weight: blkio.weight is not available on this host");
  memset(&r, 0, sizeof r);
  r.network.has_class_id = true, r.network.class_id = 0x100001;
  assert_create_fails_clean(
      &r, "linux.resources.network.classID: the net_cls controller is not available on this host");
  memset(&r, 0, sizeof r);
  struct hv_oci_keyval kv = {"memory.high", "1000000"};
  r.unified = &kv, r.n_unified = 1;
  assert_create_fails_clean(&r, "linux.resources.unified.memory.high: the memory controller is "
                                "not on cgroup v2 on this host (hybrid layout)");
  memset(&r, 0, sizeof r);
  struct hv_oci_hugepage_limit h = {"64KB", 1};
  r.hugepage_limits = &h, r.n_hugepage_limits = 1;
  assert_create_fails_clean(
      &r, "linux.resources.hugepageLimits[0]: hugetlb.64KB.max is not available on this host");
  memset(&r, 0, sizeof r);
  r.cpu.has_shares = true, r.cpu.shares = 1;
  assert_create_fails_clean(
      &r, "linux.resources.cpu.shares: 1 is invalid (must be between 2 and 262144)");
  memset(&r, 0, sizeof r);
  r.cpu.has_quota = true, r.cpu.quota = -7;
  assert_create_fails_clean(
      &r, "linux.resources.cpu.quota: -7 is invalid (must be -1 for unlimited or at least 1000 "
          "(1ms))");
  memset(&r, 0, sizeof r);
  r.pids.has_limit = true, r.pids.limit = -2;
  assert_create_fails_clean(&r, "linux.resources.pids.limit: -2 is invalid (must be -1 for "
                                "unlimited or a positive number)");
  memset(&r, 0, sizeof r);
  r.memory.has_limit = true, r.memory.limit = 64 << 20;
  r.memory.has_swap = true, r.memory.swap = 32 << 20;
  assert_create_fails_clean(&r, "linux.resources.memory.swap: 33554432 is below memory.limit "
                                "67108864 (swap is the memory+swap limit)");
  memset(&r, 0, sizeof r);
  r.cpu.cpus = "0-x";
  assert_create_fails_clean(&r, "linux.resources.cpu.cpus: `0-x` is not a list like \"0-3,5\"");
  memset(&r, 0, sizeof r);
  /* a file the kernel refuses (here: a fake file that is a directory) */
  put("pids/hvrun-t/x/pids.max/blocker", "");
  r.pids.has_limit = true, r.pids.limit = 5;
  char *m = create_err("/hvrun-t/x", &r, false);
  assert_non_null(strstr(m, "linux.resources.pids.limit: open `"));
  free(m);
  /* the pre-existing pids/hvrun-t/x is not ours: kept; the others removed */
  assert_true(exists("pids/hvrun-t/x/pids.max/blocker"));
  assert_false(exists("memory/hvrun-t"));
  teardown(NULL);
}

/* ---- v2 ---------------------------------------------------------------- */

static void test_v2_resources(void **state) {
  (void)state;
  make_tree(FAKE_V2);
  struct hv_oci_resources r = {0};
  fill_common(&r);
  r.cpu.cpus = "0", r.cpu.mems = "0";
  r.cpu.has_burst = true, r.cpu.burst = 2000;
  r.block_io.has_weight = true, r.block_io.weight = 500;
  struct hv_oci_throttle_device t = {8, 16, 4096};
  r.block_io.throttle_write_bps = &t, r.block_io.n_throttle_write_bps = 1;
  struct hv_oci_hugepage_limit h = {"2MB", 2 << 20};
  r.hugepage_limits = &h, r.n_hugepage_limits = 1;
  struct hv_oci_keyval kv = {"memory.high", "50000000"};
  r.unified = &kv, r.n_unified = 1;
  struct hv_cgroup *cg = create_ok("", "c2", &r);
  assert_file("hvrun/c2/memory.max", "67108864");
  assert_file("hvrun/c2/memory.swap.max", "67108864"); /* 128M memory+swap - 64M */
  assert_file("hvrun/c2/memory.low", "33554432");
  assert_file("hvrun/c2/memory.high", "50000000");
  assert_file("hvrun/c2/cpu.weight", "20");
  assert_file("hvrun/c2/cpu.max", "50000 100000");
  assert_file("hvrun/c2/cpu.max.burst", "2000");
  assert_file("hvrun/c2/cpuset.cpus", "0");
  assert_file("hvrun/c2/io.weight", "default 100\ndefault 4950");
  assert_file("hvrun/c2/io.max", "8:16 wbps=4096");
  assert_file("hvrun/c2/pids.max", "16");
  assert_file("hvrun/c2/hugetlb.2MB.max", "2097152");
  /* the default device program: 7 + 7*5 + 4 (pts) + 2 (deny all) */
  assert_file("hvrun/c2/devices.bpf", "48");
  assert_non_null(strstr(hv_cg_path(cg), "\"layout\":\"v2\""));
  hv_error_t err = NULL;
  assert_int_equal(hv_cg_freeze(cg, true, &err), 0);
  assert_file("hvrun/c2/cgroup.freeze", "1");
  assert_true(hv_cg_is_frozen(cg));
  assert_int_equal(hv_cg_freeze(cg, false, &err), 0);
  json_t *st = NULL;
  assert_int_equal(hv_cg_stats(cg, &st, &err), 0);
  assert_int_equal(json_integer_value(json_object_get(st, "oom_kill")), 2);
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(json_object_get(st, "cpu"), "usage"), "total")),
                   5000);
  assert_int_equal(json_array_size(json_object_get(json_object_get(st, "blkio"),
                                                   "ioServiceBytesRecursive")),
                   2);
  json_decref(st);
  /* update below usage is refused on v2 (the kernel would OOM-kill) */
  struct hv_oci_resources u = {0};
  u.memory.has_limit = true, u.memory.limit = 1024;
  assert_true(hv_cg_update(cg, &u, &err) < 0);
  assert_non_null(strstr(err->msg, "linux.resources.memory.limit: 1024 is below the current "
                                   "usage (4096 bytes)"));
  hv_error_release(&err);
  /* v1-only knobs are errors, not silently dropped */
  memset(&u, 0, sizeof u);
  u.memory.has_swappiness = true, u.memory.swappiness = 5;
  assert_true(hv_cg_update(cg, &u, &err) < 0);
  assert_string_equal(err->msg,
                      "linux.resources.memory.swappiness: not supported by cgroup v2 on this host");
  hv_error_release(&err);
  destroy_ok(cg);
  assert_false(exists("hvrun"));
  teardown(NULL);
}

/* ---- cgroupsPath ------------------------------------------------------ */

static void test_paths(void **state) {
  (void)state;
  make_tree(FAKE_V1);
  struct hv_cgroup *cg = create_ok("rel/c1", "c1", NULL);
  /* relative: below the caller's cgroup, which differs per hierarchy */
  assert_true(exists("memory/user/me/rel/c1"));
  assert_true(exists("cpu/rel/c1"));
  destroy_ok(cg);
  assert_false(exists("memory/user/me/rel"));
  assert_false(exists("cpu/rel"));
  cg = create_ok("//abs///x/", "c1", NULL);
  assert_true(exists("memory/abs/x"));
  destroy_ok(cg);
  assert_false(exists("memory/abs"));
  char *m = create_err("system.slice:hvrun:c1", NULL, false);
  assert_string_equal(m, "linux.cgroupsPath: `system.slice:hvrun:c1` is in the systemd form "
                         "\"slice:prefix:name\", which needs --systemd-cgroup");
  free(m);
  m = create_err("system.slice:hvrun:c1", NULL, true);
  assert_string_equal(m, "--systemd-cgroup: systemd is not running on this host");
  free(m);
  m = create_err("/a/../b", NULL, false);
  assert_string_equal(m, "linux.cgroupsPath: `/a/../b` must not contain `.` or `..` components");
  free(m);
  m = create_err("/", NULL, false);
  assert_string_equal(m, "linux.cgroupsPath: `/` names the cgroup root; a container needs its "
                         "own cgroup");
  free(m);
  assert_false(exists("memory/hvrun"));
  /* a pre-existing cgroup is joined and, on failure, kept */
  put("memory/pre/memory.limit_in_bytes", "1\n");
  struct hv_oci_resources r = {0};
  r.network.has_class_id = true, r.network.class_id = 1;
  m = create_err("/pre", &r, false);
  free(m);
  assert_true(exists("memory/pre/memory.limit_in_bytes"));
  assert_false(exists("cpu/pre"));
  teardown(NULL);
}

/* ---- eBPF program ------------------------------------------------------ */

static void expect(const struct bpf_insn *i, uint8_t code, uint8_t dst, uint8_t src, int16_t off,
                   int32_t imm) {
  assert_int_equal(i->code, code);
  assert_int_equal(i->dst_reg, dst);
  assert_int_equal(i->src_reg, src);
  assert_int_equal(i->off, off);
  assert_int_equal(i->imm, imm);
}

static void test_bpf_program(void **state) {
  (void)state;
  struct cg_dev_rule rules[] = {
      {false, 'a', -1, -1, "rwm"},
      {true, 'c', 1, 3, "rwm"},
      {true, 'b', 8, -1, "r"},
      {false, 'c', 1, 3, "w"},
  };
  struct bpf_insn *p = NULL;
  size_t n = 0;
  cg_bpf_build(rules, 4, &p, &n);
  /* prologue */
  expect(&p[0], BPF_LDX | BPF_W | BPF_MEM, 2, 1, 0, 0);
  expect(&p[2], BPF_ALU64 | BPF_AND | BPF_K, 3, 0, 0, 0xffff);
  expect(&p[4], BPF_ALU64 | BPF_RSH | BPF_K, 4, 0, 0, 16);
  expect(&p[5], BPF_LDX | BPF_W | BPF_MEM, 5, 1, 4, 0);
  expect(&p[6], BPF_LDX | BPF_W | BPF_MEM, 6, 1, 8, 0);
  /* rule 3 first (last wins): deny c 1:3 w: type, access(3), major, minor, verdict(2) */
  expect(&p[7], BPF_JMP | BPF_JNE | BPF_K, 3, 0, 7, BPF_DEVCG_DEV_CHAR);
  expect(&p[8], BPF_ALU64 | BPF_MOV | BPF_X, 7, 4, 0, 0);
  expect(&p[9], BPF_ALU64 | BPF_AND | BPF_K, 7, 0, 0, BPF_DEVCG_ACC_WRITE);
  expect(&p[10], BPF_JMP | BPF_JEQ | BPF_K, 7, 0, 4, 0);
  expect(&p[11], BPF_JMP | BPF_JNE | BPF_K, 5, 0, 3, 1);
  expect(&p[12], BPF_JMP | BPF_JNE | BPF_K, 6, 0, 2, 3);
  expect(&p[13], BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);
  expect(&p[14], BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  /* rule 2: allow b 8:* r -> requesting anything but read skips */
  expect(&p[15], BPF_JMP | BPF_JNE | BPF_K, 3, 0, 6, BPF_DEVCG_DEV_BLOCK);
  expect(&p[17], BPF_ALU64 | BPF_AND | BPF_K, 7, 0, 0,
         BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD);
  expect(&p[18], BPF_JMP | BPF_JNE | BPF_K, 7, 0, 3, 0);
  expect(&p[19], BPF_JMP | BPF_JNE | BPF_K, 5, 0, 2, 8);
  expect(&p[20], BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1);
  /* rule 1: allow c 1:3 rwm */
  expect(&p[22], BPF_JMP | BPF_JNE | BPF_K, 3, 0, 4, BPF_DEVCG_DEV_CHAR);
  expect(&p[23], BPF_JMP | BPF_JNE | BPF_K, 5, 0, 3, 1);
  expect(&p[24], BPF_JMP | BPF_JNE | BPF_K, 6, 0, 2, 3);
  expect(&p[25], BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1);
  /* rule 0: deny all: unconditional */
  expect(&p[27], BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);
  expect(&p[28], BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  /* nothing after an unconditional rule (the verifier rejects dead code) */
  assert_int_equal(n, 29);
  free(p);
  /* without a catch-all, the epilogue denies */
  cg_bpf_build(&rules[1], 1, &p, &n);
  assert_int_equal(n, 7 + 5 + 2);
  expect(&p[12], BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);
  expect(&p[13], BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  free(p);

  /* default set as cg_dev_rules builds it */
  struct cg_dev_rule *dr = NULL;
  size_t nd = 0;
  hv_error_t err = NULL;
  assert_int_equal(cg_dev_rules(NULL, &dr, &nd, &err), 0);
  assert_int_equal(nd, 9);
  assert_false(dr[0].allow);
  assert_int_equal(dr[8].major, 136);
  assert_int_equal(dr[8].minor, -1);
  cg_bpf_build(dr, nd, &p, &n);
  assert_int_equal(n, 48);
  free(p);
  free(dr);

  /* a leading {"allow": false, "access": "rwm"} (runc spec) keeps the defaults */
  struct hv_oci_device_cgroup spec[2] = {{.allow = false, .access = "rwm"},
                                         {.allow = true, .type = 'c', .has_major = true,
                                          .major = 10, .has_minor = true, .minor = 200}};
  struct hv_oci_resources r = {.devices = spec, .n_devices = 2};
  assert_int_equal(cg_dev_rules(&r, &dr, &nd, &err), 0);
  assert_int_equal(nd, 9 + 9 + 1);
  assert_false(dr[9].allow);
  assert_int_equal(dr[9].type, 'a');
  assert_true(dr[17].allow);
  assert_int_equal(dr[17].major, 136);
  assert_int_equal(dr[18].major, 10);
  assert_string_equal(dr[18].access, "rwm");
  free(dr);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_detect, teardown),
      cmocka_unit_test(test_parse_host_mountinfo),
      cmocka_unit_test(test_shares_to_weight),
      cmocka_unit_test_teardown(test_v1_resources, teardown),
      cmocka_unit_test_teardown(test_v1_update, teardown),
      cmocka_unit_test_teardown(test_hybrid, teardown),
      cmocka_unit_test_teardown(test_hybrid_errors, teardown),
      cmocka_unit_test_teardown(test_v2_resources, teardown),
      cmocka_unit_test_teardown(test_paths, teardown),
      cmocka_unit_test(test_bpf_program),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
