/* bench_report.c: host metadata, statistics, ratios, the isolation matrix,
 * the JSON file and the terminal table of `hvrun bench`.
 *
 * Raw samples stay in the document ("samples"), next to what is derived
 * from them ("results", "isolation"), so a reader can recompute any figure. */
#include "bench_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h> /* isfinite, NAN, fabs: no libm symbols */
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>

const struct bench_metric_info bench_metrics[] = {
    {"startup_ms", "ms", "start-to-exit of true (median)", true},
    {"pss_mib", "MiB", "memory per instance (PSS, 16 MiB touched)", true},
    {"density", "instances", "instances at once (capped)", false},
    {"density_pss_mib_each", "MiB", "PSS per instance at density", true},
    {"cpu_mops", "Mops/s", "CPU: 64-bit mixing chain", false},
    {"membw_mbs", "MB/s", "memory bandwidth (triad)", false},
    {"getpid_ns", "ns", "getpid", true},
    {"openclose_ns", "ns", "open+close", true},
    {"forkexec_us", "us", "fork+exec+wait", true},
    {"disk_seqwrite_mbs", "MB/s", "root disk: sequential write", false},
    {"disk_seqread_mbs", "MB/s", "root disk: sequential read", false},
    {"disk_randread_iops", "IOPS", "root disk: 4k random read", false},
    {"disk_randwrite_iops", "IOPS", "root disk: 4k random write", false},
    {"tmpfs_seqwrite_mbs", "MB/s", "tmpfs: sequential write", false},
    {"tmpfs_seqread_mbs", "MB/s", "tmpfs: sequential read", false},
    {"tmpfs_randread_iops", "IOPS", "tmpfs: 4k random read", false},
    {"tmpfs_randwrite_iops", "IOPS", "tmpfs: 4k random write", false},
    {"net_rtt_us", "us", "loopback TCP round trip", true},
    {"net_tcp_mbs", "MB/s", "loopback TCP stream", false},
};
const size_t bench_nmetrics = sizeof bench_metrics / sizeof bench_metrics[0];

/* ---------------- metadata ---------------- */

static char *cpuinfo_field(const char *key) {
  FILE *f = fopen("/proc/cpuinfo", "re");
  char line[4096];
  char *v = NULL;
  size_t kl = strlen(key);
  while (f && !v && fgets(line, sizeof line, f))
    if (!strncmp(line, key, kl) && strchr(line, ':')) {
      char *s = strchr(line, ':') + 1;
      while (*s == ' ')
        s++;
      s[strcspn(s, "\n")] = 0;
      v = hv_xstrdup(s);
    }
  if (f)
    fclose(f);
  return v ? v : hv_xstrdup("");
}

static bool has_flag(const char *flags, const char *flag) {
  size_t l = strlen(flag);
  for (const char *p = flags; (p = strstr(p, flag)); p += l)
    if ((p == flags || p[-1] == ' ') && (p[l] == ' ' || p[l] == 0))
      return true;
  return false;
}

static const char *cgroup_layout(bool private_ns) {
  /* In the bench's private mount namespace unified is gone: say what the
   * host has, and what the runtimes saw. */
  if (private_ns)
    return "hybrid (v1 controllers + cgroup2 at /sys/fs/cgroup/unified); the bench ran in a "
           "private mount namespace without /sys/fs/cgroup/unified so crun 1.8 accepts it";
  struct statfs s;
  if (statfs("/sys/fs/cgroup", &s) == 0 && s.f_type == 0x63677270 /* CGROUP2_SUPER_MAGIC */)
    return "v2 (unified)";
  if (statfs("/sys/fs/cgroup/unified", &s) == 0 && s.f_type == 0x63677270)
    return "hybrid (v1 controllers + cgroup2 at /sys/fs/cgroup/unified)";
  return "v1";
}

/* The 1/5/15-minute load averages: a busy machine explains wide spreads. */
json_t *bench_loadavg(void) {
  double a[3] = {0, 0, 0};
  FILE *f = fopen("/proc/loadavg", "re");
  if (f) {
    if (fscanf(f, "%lf %lf %lf", &a[0], &a[1], &a[2]) != 3)
      a[0] = a[1] = a[2] = 0;
    fclose(f);
  }
  return json_pack("[f,f,f]", a[0], a[1], a[2]);
}

json_t *bench_host_metadata(struct bench_env *e) {
  struct utsname u;
  uname(&u);
  cleanup_free char *model = cpuinfo_field("model name");
  cleanup_free char *flags = cpuinfo_field("flags");
  const char *kvm = access("/dev/kvm", F_OK) != 0                ? "none (no /dev/kvm)"
                    : access("/sys/module/kvm_pvm", F_OK) == 0 ? "PVM"
                    : has_flag(flags, "vmx")                   ? "VMX"
                    : has_flag(flags, "svm")                   ? "SVM"
                                                               : "unknown";
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  long mem_kib = sysconf(_SC_PHYS_PAGES) * (sysconf(_SC_PAGESIZE) / 1024);
  cleanup_free char *boot_id = NULL;
  size_t len;
  if (hv_read_file("/proc/sys/kernel/random/boot_id", &boot_id, &len, NULL) == 0)
    boot_id[strcspn(boot_id, "\n")] = 0;
  cleanup_free char *os = NULL;
  FILE *f = fopen("/etc/os-release", "re");
  char line[256];
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "PRETTY_NAME=", 12)) {
      line[strcspn(line, "\n")] = 0;
      os = hv_xstrdup(line + 12 + (line[12] == '"'));
      if (os[0] && os[strlen(os) - 1] == '"')
        os[strlen(os) - 1] = 0;
    }
  if (f)
    fclose(f);
  json_t *versions = json_object();
  for (size_t i = 0; i < bench_nmodes; i++)
    if (bench_modes[i].version)
      json_object_set_new(versions, bench_modes[i].name, json_string(bench_modes[i].version));
  return json_pack("{s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:b,s:o,s:s}", "cpu", model, "cpus",
                   (json_int_t)cpus, "mem_kib", (json_int_t)mem_kib, "kernel", u.release,
                   "machine", u.machine, "os", os ? os : "unknown", "boot_id",
                   boot_id ? boot_id : "", "kvm", kvm, "cgroup_private_v1_view",
                   e->private_mountns, "versions", versions,
                   "cgroup_layout", cgroup_layout(e->private_mountns));
}

/* ---------------- parsing ---------------- */

void bench_parse_output(const char *out, json_t *obj) {
  for (const char *p = out; p && (p = strstr(p, "@hvb ")); ) {
    p += 5;
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    cleanup_free char *line = strndup(p, len);
    if (!line)
      abort();
    line[strcspn(line, "\r")] = 0;
    char *sp = strchr(line, ' ');
    if (sp) {
      *sp = 0;
      const char *val = sp + 1;
      char *end;
      double d = strtod(val, &end);
      if (!strcmp(line, "error")) {
        json_t *errs = json_object_get(obj, "errors");
        if (!errs)
          json_object_set_new(obj, "errors", errs = json_array());
        json_array_append_new(errs, json_string(val));
      } else if (end != val && *end == 0) {
        json_object_set_new(obj, line, json_real(d));
      } else {
        json_object_set_new(obj, line, json_string(val));
      }
    }
    p = eol;
  }
}

/* ---------------- statistics ---------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p) {
  double idx = p / 100 * (double)(n - 1);
  size_t lo = (size_t)bench_floor(idx), hi = (size_t)bench_ceil(idx);
  return v[lo] + (v[hi] - v[lo]) * (idx - (double)lo);
}

static const struct bench_metric_info *metric_info(const char *key) {
  for (size_t i = 0; i < bench_nmetrics; i++)
    if (!strcmp(bench_metrics[i].key, key))
      return &bench_metrics[i];
  return NULL;
}

static json_t *stats_of(json_t *samples, const char *key) {
  size_t n = json_array_size(samples);
  if (!n)
    return NULL;
  double *v = hv_xmalloc0(n * sizeof *v);
  for (size_t i = 0; i < n; i++)
    v[i] = json_number_value(json_array_get(samples, i));
  qsort(v, n, sizeof *v, cmp_double);
  double med = pct(v, n, 50);
  bool is_startup = !strcmp(key, "startup_ms");
  /* Start-up has many samples and a long tail by nature: judge its spread
   * on p10..p90; the few-sample figures on min..max. */
  double spread = med > 0 ? (is_startup ? pct(v, n, 90) - pct(v, n, 10) : v[n - 1] - v[0]) / med
                          : 0;
  double limit = is_startup ? 0.5 : 0.25;
  const struct bench_metric_info *mi = metric_info(key);
  json_t *o = json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:b,s:s,s:b}", "n", (json_int_t)n,
                        "median", med, "min", v[0], "max", v[n - 1], "p50", med, "p90",
                        pct(v, n, 90), "p99", pct(v, n, 99), "spread", spread, "noisy",
                        n >= 2 && spread > limit, "unit", mi ? mi->unit : "",
                        "lower_is_better", mi ? mi->lower_better : true);
  free(v);
  return o;
}

static double median_of(json_t *results, const char *mode, const char *metric) {
  json_t *s = json_object_get(json_object_get(results, mode), metric);
  return s ? json_number_value(json_object_get(s, "median")) : NAN;
}

/* ---------------- isolation ---------------- */

static int *errno_list(json_t *probe, size_t *n) {
  const char *s = json_string_value(json_object_get(probe, "syscall_errnos"));
  *n = 0;
  if (!s)
    return NULL;
  int *v = hv_xmalloc0((strlen(s) / 2 + 2) * sizeof(int));
  for (const char *p = s; *p;) {
    char *end;
    v[(*n)++] = (int)strtol(p, &end, 10);
    p = *end == ',' ? end + 1 : end + strlen(end);
  }
  return v;
}

/* A filter shows up as EPERM or ENOSYS where the host kernel answered
 * otherwise, or as SIGSYS (kill/trap actions). */
static bool filtered(int mode_e, int host_e) {
  return (mode_e == EPERM && host_e != EPERM) || (mode_e == ENOSYS && host_e != ENOSYS) ||
         mode_e == -SIGSYS;
}

static json_t *isolation_of(json_t *doc, const char *mode, const char *kind, json_t *probe) {
  json_t *hp = json_object_get(doc, "host_probe");
  json_t *o = json_object();
  const char *rel = json_string_value(json_object_get(probe, "kernel_release"));
  const char *bid = json_string_value(json_object_get(probe, "boot_id"));
  const char *hbid = json_string_value(json_object_get(json_object_get(doc, "host"), "boot_id"));
  bool shared = bid && hbid && !strcmp(bid, hbid);
  json_object_set_new(o, "kernel_release", json_string(rel ? rel : "?"));
  json_object_set_new(o, "kernel_shared", json_boolean(shared));
  size_t nh, nm;
  cleanup_free int *he = errno_list(hp, &nh);
  cleanup_free int *me = errno_list(probe, &nm);
  int host_impl = 0, reach = 0, guest_impl = 0;
  for (size_t i = 0; i < nh; i++) {
    if (he[i] == ENOSYS)
      continue;
    host_impl++;
    if (i < nm && !filtered(me[i], he[i]))
      reach++;
  }
  for (size_t i = 0; i < nm; i++)
    if (me[i] != ENOSYS)
      guest_impl++;
  json_object_set_new(o, "host_syscalls_implemented", json_integer(host_impl));
  if (shared) {
    json_object_set_new(o, "direct_host_syscalls", json_integer(reach));
    json_object_set_new(o, "syscalls_filtered", json_integer(host_impl - reach));
  } else {
    json_object_set_new(o, "direct_host_syscalls", json_integer(0));
    json_object_set_new(o, "guest_kernel_syscalls", json_integer(guest_impl));
  }
  json_t *sm = json_object_get(probe, "seccomp_mode");
  json_object_set_new(o, "workload_seccomp_mode", json_integer(sm ? (json_int_t)json_number_value(sm) : -1));
  /* The VMM's (or runtime's) own seccomp, seen from the host while the
   * memory workload ran. */
  json_t *tree = json_object_get(json_object_get(json_object_get(doc, "facts"), mode),
                                 "process_tree");
  if (!strcmp(kind, "vm") && tree) {
    /* The VMM is what runs in the jail (a nested pid namespace): QEMU or
     * hvrun's VMM and its supervisor.  The runtime front-end that waits on
     * it outside touches no guest data.  Without a jail, every process
     * counts. */
    bool any_unfiltered = false, any_jailed = false;
    size_t i;
    json_t *p;
    json_array_foreach(tree, i, p)
      any_jailed = any_jailed || json_is_true(json_object_get(p, "jailed"));
    json_array_foreach(tree, i, p)
      if ((!any_jailed || json_is_true(json_object_get(p, "jailed"))) &&
          json_integer_value(json_object_get(p, "seccomp")) == 0)
        any_unfiltered = true;
    json_object_set_new(o, "vmm_seccomp", json_string(any_unfiltered ? "none" : "filtered"));
    if (any_unfiltered)
      json_object_set_new(o, "vmm_reachable_host_syscalls", json_integer(host_impl));
  }
  static const char *views[] = {"proc_pids", "mounts", "sys_block_devices", "sys_net_ifaces",
                                "meminfo_total_kib", "dmesg_syslog", "dmesg_kmsg",
                                "leaked_fds", "leaked_dir_fds", "cwd_outside_root",
                                "dotdot_escape", NULL};
  json_t *view = json_object();
  for (size_t i = 0; views[i]; i++) {
    json_t *v = json_object_get(probe, views[i]);
    json_t *h = json_object_get(hp, views[i]);
    if (v)
      json_object_set_new(view, views[i],
                          json_pack("{s:O,s:O}", "seen", v, "host", h ? h : json_null()));
  }
  json_object_set_new(o, "view", view);
  bool dmesg = json_number_value(json_object_get(probe, "dmesg_syslog")) > 0 ||
               json_number_value(json_object_get(probe, "dmesg_kmsg")) > 0;
  json_object_set_new(o, "dmesg_readable", json_boolean(dmesg));
  json_object_set_new(o, "host_dmesg_readable", json_boolean(dmesg && shared));
  json_t *esc = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(probe, k, v) {
    if (strncmp(k, "escape_", 7) || !json_is_string(v))
      continue;
    bool allowed = !strncmp(json_string_value(v), "allowed", 7);
    /* Allowed inside a guest only touches the guest kernel. */
    json_object_set_new(esc, k + 7,
                        json_pack("{s:s,s:b}", "result", json_string_value(v), "reaches_host",
                                  allowed && shared));
  }
  json_object_set_new(o, "escapes", esc);
  return o;
}

void bench_finalize(json_t *doc) {
  json_t *results = json_object(), *samples = json_object_get(doc, "samples");
  const char *mode;
  json_t *ms;
  json_object_foreach(samples, mode, ms) {
    json_t *r = json_object();
    const char *metric;
    json_t *arr;
    json_object_foreach(ms, metric, arr) {
      json_t *s = stats_of(arr, metric);
      if (s)
        json_object_set_new(r, metric, s);
    }
    json_object_set_new(results, mode, r);
  }
  /* Ratios against host and against hvrun container, from medians. */
  json_object_foreach(results, mode, ms) {
    const char *metric;
    json_t *s;
    json_object_foreach(ms, metric, s) {
      double m = json_number_value(json_object_get(s, "median"));
      double h = median_of(results, "host", metric), c = median_of(results, "container", metric);
      if (isfinite(h) && h > 0)
        json_object_set_new(s, "vs_host", json_real(m / h));
      if (isfinite(c) && c > 0)
        json_object_set_new(s, "vs_container", json_real(m / c));
    }
  }
  /* Sandbox cost in memory: tree PSS minus the same workload on the host. */
  json_object_foreach(results, mode, ms) {
    double p = median_of(results, mode, "pss_mib"), h = median_of(results, "host", "pss_mib");
    if (isfinite(p) && isfinite(h))
      json_object_set_new(ms, "overhead_mib",
                          json_pack("{s:f,s:s,s:b,s:I}", "median", p - h, "unit", "MiB",
                                    "lower_is_better", 1, "n", (json_int_t)1));
  }
  /* Clock check: the suite's duration by the sandbox's clock against ours
   * (minus one start-up).  A guest clock that drifts inflates or deflates
   * every rate the guest measured; the ratio says by how much. */
  json_object_foreach(results, mode, ms) {
    double g = median_of(results, mode, "suite_elapsed_s");
    double w = median_of(results, mode, "suite_wall_s");
    double su = median_of(results, mode, "startup_ms") / 1000;
    if (isfinite(g) && isfinite(w) && isfinite(su) && w - su > 0)
      json_object_set_new(ms, "clock_ratio",
                          json_pack("{s:f,s:s,s:b,s:I,s:b}", "median", g / (w - su), "unit",
                                    "sandbox s / host s", "lower_is_better", 0, "n",
                                    (json_int_t)1, "noisy", g / (w - su) < 0.8 ||
                                                                g / (w - su) > 1.2));
  }
  /* A drifting sandbox clock makes every rate it measured suspect. */
  json_object_foreach(results, mode, ms) {
    json_t *cr = json_object_get(ms, "clock_ratio");
    if (!cr || !json_is_true(json_object_get(cr, "noisy")))
      continue;
    const char *metric;
    json_t *st;
    json_object_foreach(ms, metric, st) {
      const struct bench_metric_info *mi = metric_info(metric);
      if (mi && strcmp(metric, "startup_ms") && strncmp(metric, "pss", 3) &&
          strncmp(metric, "density", 7)) {
        json_object_set_new(st, "noisy", json_true());
        json_object_set_new(st, "clock_suspect", json_true());
      }
    }
  }
  json_object_set_new(doc, "results", results);
  json_t *iso = json_object();
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(doc, "modes"), i, m) {
    const char *name = json_string_value(json_object_get(m, "name"));
    json_t *probe = json_object_get(json_object_get(doc, "probes"), name);
    if (probe)
      json_object_set_new(iso, name,
                          isolation_of(doc, name,
                                       json_string_value(json_object_get(m, "kind")), probe));
  }
  json_object_set_new(doc, "isolation", iso);
  json_object_set_new(doc, "noise_rule",
                      json_string("noisy when (max-min)/median > 0.25, or for startup_ms "
                                  "(p90-p10)/median > 0.5, or (clock_suspect) when the "
                                  "sandbox's clock ran outside 0.8..1.2x the host's during "
                                  "the suite"));
}

/* ---------------- output ---------------- */

static void fmt_num(char *buf, size_t len, double v) {
  if (!isfinite(v))
    snprintf(buf, len, "-");
  else if (fabs(v) >= 1e6)
    snprintf(buf, len, "%.2fM", v / 1e6);
  else if (fabs(v) >= 1e5)
    snprintf(buf, len, "%.0fk", v / 1e3);
  else if (fabs(v) >= 100)
    snprintf(buf, len, "%.0f", v);
  else if (fabs(v) >= 10)
    snprintf(buf, len, "%.1f", v);
  else
    snprintf(buf, len, "%.2f", v);
}

void bench_print_table(json_t *doc, FILE *f) {
  json_t *results = json_object_get(doc, "results"), *modes = json_object_get(doc, "modes");
  size_t i;
  json_t *m;
  fprintf(f, "\nhvrun bench%s: median (x host / x container); ~ = noisy\n",
          json_is_true(json_object_get(doc, "partial")) ? " (PARTIAL)" : "");
  fprintf(f, "%-38s", "metric");
  json_array_foreach(modes, i, m)
    fprintf(f, " %19s", json_string_value(json_object_get(m, "name")));
  fprintf(f, "\n");
  static const struct bench_metric_info derived[] = {
      {"overhead_mib", "MiB", "sandbox memory (PSS - host)", true},
      {"clock_ratio", "x", "sandbox clock / host clock", false},
  };
  for (size_t k = 0; k < bench_nmetrics + 2; k++) {
    const struct bench_metric_info *mi =
        k < bench_nmetrics ? &bench_metrics[k] : &derived[k - bench_nmetrics];
    const char *key = mi->key;
    char label[64];
    snprintf(label, sizeof label, "%s [%s]", mi->label, mi->unit);
    bool any = false;
    json_array_foreach(modes, i, m)
      if (json_object_get(json_object_get(results, json_string_value(json_object_get(m, "name"))), key))
        any = true;
    if (!any)
      continue;
    fprintf(f, "%-38.38s", label);
    json_array_foreach(modes, i, m) {
      json_t *s = json_object_get(
          json_object_get(results, json_string_value(json_object_get(m, "name"))), key);
      char cell[64] = "-", a[16], b[16], c[16];
      if (s) {
        fmt_num(a, sizeof a, json_number_value(json_object_get(s, "median")));
        json_t *vh = json_object_get(s, "vs_host"), *vc = json_object_get(s, "vs_container");
        fmt_num(b, sizeof b, vh ? json_number_value(vh) : NAN);
        fmt_num(c, sizeof c, vc ? json_number_value(vc) : NAN);
        snprintf(cell, sizeof cell, "%s%s (%s/%s)", a,
                 json_is_true(json_object_get(s, "noisy")) ? "~" : "", b, c);
      }
      fprintf(f, " %19s", cell);
    }
    fprintf(f, "\n");
  }
  json_t *iso = json_object_get(doc, "isolation");
  fprintf(f, "\nisolation%-29s", "");
  json_array_foreach(modes, i, m)
    fprintf(f, " %19s", json_string_value(json_object_get(m, "name")));
  fprintf(f, "\n");
  static const char *rows[] = {"kernel_shared", "direct_host_syscalls", "host_dmesg_readable",
                               NULL};
  for (size_t r = 0; rows[r]; r++) {
    fprintf(f, "%-38s", rows[r]);
    json_array_foreach(modes, i, m) {
      json_t *v = json_object_get(
          json_object_get(iso, json_string_value(json_object_get(m, "name"))), rows[r]);
      char cell[32] = "-";
      if (json_is_boolean(v))
        snprintf(cell, sizeof cell, "%s", json_is_true(v) ? "yes" : "no");
      else if (json_is_integer(v))
        snprintf(cell, sizeof cell, "%lld", (long long)json_integer_value(v));
      fprintf(f, " %19s", cell);
    }
    fprintf(f, "\n");
  }
  fprintf(f, "%-38s", "escape probes reaching the host");
  json_array_foreach(modes, i, m) {
    json_t *esc = json_object_get(
        json_object_get(iso, json_string_value(json_object_get(m, "name"))), "escapes");
    int tot = 0, bad = 0;
    const char *k;
    json_t *v;
    json_object_foreach(esc, k, v) {
      tot++;
      bad += json_is_true(json_object_get(v, "reaches_host"));
    }
    char cell[32] = "-";
    if (tot)
      snprintf(cell, sizeof cell, "%d of %d", bad, tot);
    fprintf(f, " %19s", cell);
  }
  fprintf(f, "\n\nmodes:");
  json_array_foreach(modes, i, m) {
    json_t *reason = json_object_get(m, "reason");
    fprintf(f, " %s=%s%s%s%s", json_string_value(json_object_get(m, "name")),
            json_string_value(json_object_get(m, "status")), reason ? " (" : "",
            reason ? json_string_value(reason) : "", reason ? ")" : "");
  }
  fprintf(f, "\n");
}

int bench_write_json(json_t *doc, const char *path, hv_error_t *err) {
  cleanup_free char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (!text)
    return hv_error(err, ENOMEM, "--json %s: serialising the report", path);
  size_t len = strlen(text);
  cleanup_free char *withnl = hv_xasprintf("%s\n", text);
  if (hv_write_file_atomic(AT_FDCWD, path, withnl, len + 1, 0644, err) < 0)
    return hv_error_wrap(err, "--json %s", path);
  return 0;
}
