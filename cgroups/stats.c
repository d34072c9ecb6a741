/* stats.c: runc's `events --stats` "data" object, from v1 or v2 files,
 * plus "oom_kill" (the number of OOM kills in the cgroup) so callers can
 * tell an OOM-killed workload from one killed otherwise. */
#include "internal.h"
#include <dirent.h>
#include <string.h>

static json_t *u64(int64_t v) { return json_integer(v < 0 ? 0 : v); }

static int64_t rd(const char *dir, const char *file) {
  int64_t v = 0;
  if (!dir || cg_read_i64(dir, file, &v) < 0)
    return 0;
  return v;
}

static int64_t key(const char *dir, const char *file, const char *k) {
  int64_t v = 0;
  if (!dir || cg_read_key(dir, file, k, &v) < 0)
    return 0;
  return v;
}

/* Every "key value" line of a flat-keyed file as a JSON object. */
static json_t *flat(const char *dir, const char *file) {
  json_t *o = json_object();
  cleanup_free char *s = NULL;
  if (!dir || cg_read(dir, file, &s) < 0)
    return o;
  char *save = NULL;
  for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *sp = strchr(line, ' ');
    if (!sp)
      continue;
    *sp = 0;
    json_object_set_new(o, line, json_integer(strtoll(sp + 1, NULL, 10)));
  }
  return o;
}

static json_t *numbers(const char *dir, const char *file, int64_t scale) {
  json_t *a = json_array();
  cleanup_free char *s = NULL;
  if (!dir || cg_read(dir, file, &s) < 0)
    return a;
  char *save = NULL;
  for (char *t = strtok_r(s, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
    json_array_append_new(a, json_integer(strtoll(t, NULL, 10) * scale));
  return a;
}

static json_t *cpu_v1(const char *acct, const char *cpu) {
  long hz = sysconf(_SC_CLK_TCK);
  int64_t ns_per_tick = 1000000000LL / (hz > 0 ? hz : 100);
  return json_pack(
      "{s:{s:o,s:o,s:o,s:o},s:{s:o,s:o,s:o}}", "usage", "total", u64(rd(acct, "cpuacct.usage")),
      "percpu", numbers(acct, "cpuacct.usage_percpu", 1), "kernel",
      u64(key(acct, "cpuacct.stat", "system") * ns_per_tick), "user",
      u64(key(acct, "cpuacct.stat", "user") * ns_per_tick), "throttling", "periods",
      u64(key(cpu, "cpu.stat", "nr_periods")), "throttled_periods",
      u64(key(cpu, "cpu.stat", "nr_throttled")), "throttled_time",
      u64(key(cpu, "cpu.stat", "throttled_time")));
}

static json_t *cpu_v2(const char *d) {
  return json_pack("{s:{s:o,s:o,s:o,s:o},s:{s:o,s:o,s:o}}", "usage", "total",
                   u64(key(d, "cpu.stat", "usage_usec") * 1000), "percpu", json_array(),
                   "kernel", u64(key(d, "cpu.stat", "system_usec") * 1000), "user",
                   u64(key(d, "cpu.stat", "user_usec") * 1000), "throttling", "periods",
                   u64(key(d, "cpu.stat", "nr_periods")), "throttled_periods",
                   u64(key(d, "cpu.stat", "nr_throttled")), "throttled_time",
                   u64(key(d, "cpu.stat", "throttled_usec") * 1000));
}

static json_t *mem_entry(const char *d, const char *pfx) {
  cleanup_free char *u = hv_xasprintf("%susage_in_bytes", pfx);
  cleanup_free char *m = hv_xasprintf("%smax_usage_in_bytes", pfx);
  cleanup_free char *l = hv_xasprintf("%slimit_in_bytes", pfx);
  cleanup_free char *f = hv_xasprintf("%sfailcnt", pfx);
  return json_pack("{s:o,s:o,s:o,s:o}", "usage", u64(rd(d, u)), "max", u64(rd(d, m)), "limit",
                   u64(rd(d, l)), "failcnt", u64(rd(d, f)));
}

static json_t *memory_v1(const char *d) {
  json_t *raw = flat(d, "memory.stat");
  int64_t cache = json_integer_value(json_object_get(raw, "total_cache"));
  return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "cache", u64(cache), "usage", mem_entry(d, "memory."),
                   "swap", mem_entry(d, "memory.memsw."), "kernel", mem_entry(d, "memory.kmem."),
                   "kernelTCP", mem_entry(d, "memory.kmem.tcp."), "raw", raw);
}

static json_t *memory_v2(const char *d) {
  json_t *raw = flat(d, "memory.stat");
  int64_t lim = rd(d, "memory.max"), slim = rd(d, "memory.swap.max");
  return json_pack(
      "{s:o,s:{s:o,s:o,s:o,s:o},s:{s:o,s:o,s:o,s:o},s:o}", "cache",
      u64(json_integer_value(json_object_get(raw, "file"))), "usage", "usage",
      u64(rd(d, "memory.current")), "max", u64(rd(d, "memory.peak")), "limit",
      json_integer(lim < 0 ? INT64_MAX : lim), "failcnt", u64(key(d, "memory.events", "max")),
      "swap", "usage", u64(rd(d, "memory.swap.current")), "max", u64(0), "limit",
      json_integer(slim < 0 ? INT64_MAX : slim), "failcnt", u64(key(d, "memory.swap.events", "max")),
      "raw", raw);
}

/* blkio.throttle.io_service_bytes: "8:0 Read 1234" lines -> entries */
static json_t *blkio_entries(const char *d, const char *file) {
  json_t *a = json_array();
  cleanup_free char *s = NULL;
  if (!d || cg_read(d, file, &s) < 0)
    return a;
  char *save = NULL;
  for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    unsigned maj, min;
    char op[32];
    long long v;
    if (sscanf(line, "%u:%u %31s %lld", &maj, &min, op, &v) == 4)
      json_array_append_new(a, json_pack("{s:i,s:i,s:s,s:I}", "major", maj, "minor", min, "op",
                                         op, "value", v));
  }
  return a;
}

/* io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ..." -> runc's v1-shaped lists */
static json_t *io_v2(const char *d) {
  json_t *bytes = json_array(), *ios = json_array();
  cleanup_free char *s = NULL;
  if (d && cg_read(d, "io.stat", &s) == 0) {
    char *save = NULL;
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
      unsigned maj, min;
      long long rb = 0, wb = 0, ri = 0, wi = 0;
      if (sscanf(line, "%u:%u", &maj, &min) != 2)
        continue;
      char *p;
      if ((p = strstr(line, "rbytes=")))
        rb = strtoll(p + 7, NULL, 10);
      if ((p = strstr(line, "wbytes=")))
        wb = strtoll(p + 7, NULL, 10);
      if ((p = strstr(line, "rios=")))
        ri = strtoll(p + 5, NULL, 10);
      if ((p = strstr(line, "wios=")))
        wi = strtoll(p + 5, NULL, 10);
      json_array_append_new(bytes, json_pack("{s:i,s:i,s:s,s:I}", "major", maj, "minor", min,
                                             "op", "Read", "value", rb));
      json_array_append_new(bytes, json_pack("{s:i,s:i,s:s,s:I}", "major", maj, "minor", min,
                                             "op", "Write", "value", wb));
      json_array_append_new(ios, json_pack("{s:i,s:i,s:s,s:I}", "major", maj, "minor", min, "op",
                                           "Read", "value", ri));
      json_array_append_new(ios, json_pack("{s:i,s:i,s:s,s:I}", "major", maj, "minor", min, "op",
                                           "Write", "value", wi));
    }
  }
  return json_pack("{s:o,s:o}", "ioServiceBytesRecursive", bytes, "ioServicedRecursive", ios);
}

static json_t *hugetlb(const char *d, bool v2) {
  json_t *o = json_object();
  DIR *dh = d ? opendir(d) : NULL;
  struct dirent *e;
  while (dh && (e = readdir(dh))) {
    /* v1 hugetlb.2MB.usage_in_bytes; v2 hugetlb.2MB.current */
    const char *suffix = v2 ? ".current" : ".usage_in_bytes";
    size_t l = strlen(e->d_name), sl = strlen(suffix);
    if (strncmp(e->d_name, "hugetlb.", 8) || l <= 8 + sl || strcmp(e->d_name + l - sl, suffix))
      continue;
    cleanup_free char *size = strndup(e->d_name + 8, l - 8 - sl);
    if (strchr(size, '.'))
      continue; /* hugetlb.2MB.rsvd.current */
    cleanup_free char *maxf = hv_xasprintf("hugetlb.%s.%s", size,
                                           v2 ? "max" : "max_usage_in_bytes");
    cleanup_free char *failf = hv_xasprintf("hugetlb.%s.%s", size, v2 ? "events" : "failcnt");
    json_object_set_new(o, size,
                        json_pack("{s:o,s:o,s:o}", "usage", u64(rd(d, e->d_name)), "max",
                                  u64(v2 ? 0 : rd(d, maxf)), "failcnt",
                                  u64(v2 ? key(d, failf, "max") : rd(d, failf))));
  }
  if (dh)
    closedir(dh);
  return o;
}

int hv_cg_stats(struct hv_cgroup *cg, json_t **out, hv_error_t *err) {
  (void)err;
  json_t *o = json_object();
  struct cg_dir *d;
  const char *acct = (d = cg_dir_for(cg, "cpuacct")) ? d->path : NULL;
  struct cg_dir *cpu = cg_dir_for(cg, "cpu");
  if (cpu && cg_dir_is_v2(cg, cpu))
    json_object_set_new(o, "cpu", cpu_v2(cpu->path));
  else if (cpu || acct)
    json_object_set_new(o, "cpu", cpu_v1(acct, cpu ? cpu->path : NULL));
  int64_t oom_kill = 0;
  if ((d = cg_dir_for(cg, "memory"))) {
    bool v2 = cg_dir_is_v2(cg, d);
    json_object_set_new(o, "memory", v2 ? memory_v2(d->path) : memory_v1(d->path));
    oom_kill = v2 ? key(d->path, "memory.events", "oom_kill")
                  : key(d->path, "memory.oom_control", "oom_kill");
  }
  json_object_set_new(o, "oom_kill", json_integer(oom_kill));
  if ((d = cg_dir_for(cg, "pids"))) {
    int64_t lim = rd(d->path, "pids.max");
    json_object_set_new(o, "pids", json_pack("{s:o,s:o}", "current", u64(rd(d->path, "pids.current")),
                                             "limit", u64(lim)));
  }
  if ((d = cg_dir_for(cg, "blkio")))
    json_object_set_new(
        o, "blkio",
        json_pack("{s:o,s:o}", "ioServiceBytesRecursive",
                  blkio_entries(d->path, "blkio.throttle.io_service_bytes_recursive"),
                  "ioServicedRecursive",
                  blkio_entries(d->path, "blkio.throttle.io_serviced_recursive")));
  else if ((d = cg_dir_for(cg, "io")))
    json_object_set_new(o, "blkio", io_v2(d->path));
  if ((d = cg_dir_for(cg, "hugetlb")))
    json_object_set_new(o, "hugetlb", hugetlb(d->path, cg_dir_is_v2(cg, d)));
  *out = o;
  return 0;
}
