/* bench_cmd.c: `hvrun bench` -- what each isolation model costs and what it
 * isolates, for hvrun's two modes and every installed peer, in one run.
 *
 *   hvrun bench [--quick] [--modes host,container,vm,crun,runc,bwrap,qemu]
 *               [--image REF|ROOTFS-DIR] [--json FILE] [--html FILE]
 *               [--runs N] [--reps N] [--timeout SECS]
 *
 * Order of work: isolation probes, start-up, the compute/IO suite, memory
 * per instance, density.  Within each workload the modes are interleaved
 * (host container crun ... host container crun ...) after one warm-up
 * each, so slow drift of the machine hits every mode alike; figures are
 * medians, and a figure whose spread is too wide is flagged.
 *
 * A mode that cannot run (missing peer, failing backend) is reported with
 * its reason and the run is marked partial; SIGINT stops the current
 * command, and what was measured so far is still written (partial,
 * interrupted).  Exit status: 0 complete, 3 partial, 130 interrupted,
 * 1/2 errors before anything ran. */
#include "bench_internal.h"
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>

#define HELPER "/usr/local/bin/hvbench"
#define PROBE "/usr/local/bin/hvprobe"

struct bench_opts {
  bool quick;
  const char *modes, *image, *json, *html;
  int runs, reps;
  const char *timeout;
};

struct bench_run {
  struct bench_env env;
  struct bench_opts o;
  struct bench_mode *sel[16];
  size_t nsel;
  json_t *doc;                  /* the report being built */
  int done_tasks, total_tasks;
  double t_start;
  bool tty;
};

static void on_signal(int sig) {
  (void)sig;
  bench_stop = 1;
}

/* ---------------- progress ---------------- */

static void progress(struct bench_run *r, struct bench_mode *m, const char *workload,
                     const char *detail) {
  double el = bench_now() - r->t_start;
  int left = r->total_tasks - r->done_tasks;
  double eta = r->done_tasks ? el / r->done_tasks * left : 0;
  fprintf(stderr, "%s[%3d/%3d] %-9s %-10s %-18s elapsed %3.0fs  ETA %s%2.0fm%02.0fs%s",
          r->tty ? "\r\033[K" : "", r->done_tasks, r->total_tasks, m ? m->name : "",
          workload, detail ? detail : "", el, r->done_tasks ? "" : "~",
          (double)(int)(eta / 60), (double)((int)eta % 60), r->tty ? "" : "\n");
  fflush(stderr);
}

static void task_done(struct bench_run *r) { r->done_tasks++; }

static json_t *mode_obj(struct bench_run *r, const char *section, struct bench_mode *m) {
  json_t *s = json_object_get(r->doc, section);
  json_t *o = json_object_get(s, m->name);
  if (!o) {
    o = json_object();
    json_object_set_new(s, m->name, o);
  }
  return o;
}

static void add_sample(struct bench_run *r, struct bench_mode *m, const char *metric, double v) {
  json_t *o = mode_obj(r, "samples", m);
  json_t *a = json_object_get(o, metric);
  if (!a) {
    a = json_array();
    json_object_set_new(o, metric, a);
  }
  json_array_append_new(a, json_real(v));
}

/* A workload failed in mode m: one clear line now, kept in the report. */
static void record_error(struct bench_run *r, struct bench_mode *m, const char *workload,
                         const char *msg, const char *output) {
  m->failures++;
  /* The last non-empty line of the output usually names the cause. */
  char last[300] = "";
  if (output) {
    const char *end = output + strlen(output);
    while (end > output && (end[-1] == '\n' || end[-1] == '\r'))
      end--;
    const char *start = end;
    while (start > output && start[-1] != '\n')
      start--;
    snprintf(last, sizeof last, "%.*s", (int)(end - start), start);
  }
  if (r->tty)
    fprintf(stderr, "\r\033[K");
  fprintf(stderr, "hvrun bench: %s: %s: %s%s%s\n", m->name, workload, msg, *last ? ": " : "",
          last);
  free(m->last_error);
  m->last_error = hv_xasprintf("%s: %s%s%s", workload, msg, *last ? ": " : "", last);
  json_array_append_new(json_object_get(r->doc, "errors"),
                        json_pack("{s:s,s:s,s:s,s:s}", "mode", m->name, "workload", workload,
                                  "message", msg, "output", last));
}

/* Something the reader should know that is not a failure. */
static void record_note(struct bench_run *r, struct bench_mode *m, const char *note) {
  json_t *o = mode_obj(r, "facts", m), *notes = json_object_get(o, "notes");
  if (!notes)
    json_object_set_new(o, "notes", notes = json_array());
  json_array_append_new(notes, json_string(note));
}

static void fail_mode(struct bench_run *r, struct bench_mode *m, const char *why) {
  if (m->failed)
    return;
  m->failed = true;
  m->reason = m->last_error ? hv_xasprintf("%s (%s)", why, m->last_error) : hv_xstrdup(why);
  if (r->tty)
    fprintf(stderr, "\r\033[K");
  fprintf(stderr, "hvrun bench: %s: stopped running this mode: %s\n", m->name, why);
}

/* Run one command; on failure record it.  Returns status (0 ok) or -1. */
static int run_cmd(struct bench_run *r, struct bench_mode *m, const char *workload,
                   char *const argv[], double *wall, char **out) {
  hv_error_t err = NULL;
  char *o = NULL;
  int st = bench_run(&r->env, m, argv, wall, &o, &err);
  if (st != 0 && !bench_stop) {
    cleanup_free char *msg = err ? hv_xstrdup(err->msg)
                                 : hv_xasprintf("`%s` exited with status %d", argv[0], st);
    record_error(r, m, workload, msg, o);
  }
  hv_error_release(&err);
  if (out)
    *out = o;
  else
    free(o);
  return st == 0 ? 0 : -1;
}

/* ---------------- workloads ---------------- */

static bool active(struct bench_mode *m) { return !m->failed && !bench_stop; }

static void w_probe(struct bench_run *r) {
  /* The host's own answers are the reference for every mode, so they are
   * taken even when host is not among the modes. */
  struct bench_mode *host = bench_mode_find("host");
  char *argv[] = {PROBE, NULL};
  cleanup_free char *ref = NULL;
  if (run_cmd(r, host, "probe(host reference)", argv, NULL, &ref) == 0)
    bench_parse_output(ref, json_object_get(r->doc, "host_probe"));
  for (size_t i = 0; i < r->nsel && !bench_stop; i++) {
    struct bench_mode *m = r->sel[i];
    progress(r, m, "isolation", "probes");
    cleanup_free char *out = NULL;
    if (run_cmd(r, m, "isolation", argv, NULL, &out) == 0 && strstr(out, "@hvb done"))
      bench_parse_output(out, mode_obj(r, "probes", m));
    else if (!bench_stop)
      fail_mode(r, m, "the isolation probe did not run");
    task_done(r);
  }
}

static int startup_runs_for(struct bench_run *r, struct bench_mode *m) {
  if (r->o.runs > 0)
    return m->kind == BENCH_VM && r->o.runs > 10 ? 10 : r->o.runs;
  if (m->kind == BENCH_VM)
    return r->o.quick ? 2 : 10;
  return r->o.quick ? 8 : 40;
}

static void w_startup(struct bench_run *r) {
  char *argv[] = {"/bin/true", NULL};
  int max_runs = 0;
  for (size_t i = 0; i < r->nsel; i++)
    if (startup_runs_for(r, r->sel[i]) > max_runs)
      max_runs = startup_runs_for(r, r->sel[i]);
  /* A mode whose start-up is slow (a VM booting through PVM's emulator)
   * gets fewer samples rather than the whole time budget. */
  double budget = r->o.quick ? 15 : 120, spent[16] = {0};
  /* Round 0 is the warm-up (page cache, first cgroup creation...). */
  for (int round = 0; round <= max_runs && !bench_stop; round++) {
    for (size_t i = 0; i < r->nsel && !bench_stop; i++) {
      struct bench_mode *m = r->sel[i];
      if (!active(m) || round > startup_runs_for(r, m))
        continue;
      if (round >= 2 && spent[i] > budget) {
        if (round == startup_runs_for(r, m))
          record_note(r, m, "startup: fewer runs than planned (time budget)");
        continue;
      }
      char detail[48];
      snprintf(detail, sizeof detail, round ? "run %d/%d" : "warm-up", round,
               startup_runs_for(r, m));
      progress(r, m, "startup", detail);
      double wall, t0 = bench_now();
      int ok = run_cmd(r, m, "startup", argv, &wall, NULL);
      spent[i] += bench_now() - t0;
      if (ok == 0) {
        if (round)
          add_sample(r, m, "startup_ms", wall * 1e3);
      } else if (round <= 1) {
        fail_mode(r, m, "`true` did not run");
      }
      task_done(r);
    }
  }
}

static void w_suite(struct bench_run *r) {
  const char *secs = r->o.quick ? "0.25" : "1";
  /* As for start-up: a mode whose one rep takes minutes (a VM whose guest
   * kernel is emulated under PVM) gets fewer reps, not the run's budget. */
  double budget = r->o.quick ? 20 : 90, spent[16] = {0};
  for (int rep = 0; rep < r->o.reps && !bench_stop; rep++)
    for (size_t i = 0; i < r->nsel && !bench_stop; i++) {
      struct bench_mode *m = r->sel[i];
      if (!active(m))
        continue;
      if (rep >= 1 && spent[i] > budget) {
        if (rep == r->o.reps - 1)
          record_note(r, m, "cpu/mem/io: fewer reps than planned (time budget)");
        task_done(r);
        continue;
      }
      double t0 = bench_now();
      char detail[48];
      snprintf(detail, sizeof detail, "rep %d/%d", rep + 1, r->o.reps);
      progress(r, m, "cpu/mem/io", detail);
      char *argv[] = {HELPER, "suite", (char *)secs,
                      m->kind == BENCH_NONE ? r->env.hostio : "/tmp", "/dev/shm", NULL};
      cleanup_free char *out = NULL;
      double wall = 0;
      if (run_cmd(r, m, "suite", argv, &wall, &out) == 0) {
        add_sample(r, m, "suite_wall_s", wall);
        cleanup_json json_t *vals = json_object();
        bench_parse_output(out, vals);
        const char *k;
        json_t *v;
        json_object_foreach(vals, k, v) {
          if (json_is_number(v) && strcmp(k, "done") && !strstr(k, "_direct") &&
              !strstr(k, "_fstype_") && !strstr(k, "_file_mib"))
            add_sample(r, m, k, json_number_value(v));
          else if (!strcmp(k, "errors"))
            for (size_t e = 0; e < json_array_size(v); e++)
              record_error(r, m, "suite", json_string_value(json_array_get(v, e)), NULL);
          else if (strcmp(k, "done"))
            json_object_set(mode_obj(r, "facts", m), k, v);
        }
        if (!strstr(out, "@hvb done"))
          record_error(r, m, "suite", "the suite stopped before its end", out);
      }
      spent[i] += bench_now() - t0;
      task_done(r);
    }
}

/* Memory per instance: a workload that touched 16 MiB, measured as the
 * PSS of the whole process tree the mode starts (runtime or VMM +
 * workload); minus the host's figure, that is the cost of the sandbox. */
static void w_memory(struct bench_run *r) {
  char *argv[] = {HELPER, "hold", "16", "60", NULL};
  for (int rep = 0; rep < r->o.reps && !bench_stop; rep++)
    for (size_t i = 0; i < r->nsel && !bench_stop; i++) {
      struct bench_mode *m = r->sel[i];
      if (!active(m))
        continue;
      progress(r, m, "memory", "16 MiB touched");
      hv_error_t err = NULL;
      struct bench_proc p;
      if (bench_proc_start(&r->env, m, argv, true, &p, &err) < 0) {
        record_error(r, m, "memory", err->msg, NULL);
        hv_error_release(&err);
        task_done(r);
        continue;
      }
      if (bench_proc_read(&p, "@hvb ready", r->env.timeout) == 1) {
        struct timespec ts = {.tv_nsec = 200000000}; /* let the runtime settle */
        nanosleep(&ts, NULL);
        json_t *procs = json_array();
        long kib = bench_tree_pss(p.pid, procs);
        add_sample(r, m, "pss_mib", (double)kib / 1024);
        json_object_set_new(mode_obj(r, "facts", m), "process_tree", procs);
        if (bench_proc_end(&p, r->env.timeout) < 0 && !bench_stop)
          record_error(r, m, "memory", "the workload did not exit", p.out);
      } else if (!bench_stop) {
        record_error(r, m, "memory", "the workload never reported ready", p.out);
      }
      bench_proc_free(&p);
      if (bench_stop)
        bench_mode_cleanup(&r->env, m);
      task_done(r);
    }
}

static long mem_available_kib(void) {
  FILE *f = fopen("/proc/meminfo", "re");
  char line[128];
  long v = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "MemAvailable:", 13))
      v = atol(line + 13);
  if (f)
    fclose(f);
  return v;
}

/* Density: start instances (4 MiB touched each) one after another, all kept
 * running, until one fails, the cap, or the memory budget. */
static void w_density(struct bench_run *r) {
  char *argv[] = {HELPER, "hold", "4", "300", NULL};
  long budget_kib = (r->o.quick ? 1L : 4L) << 20;
  for (size_t i = 0; i < r->nsel && !bench_stop; i++) {
    struct bench_mode *m = r->sel[i];
    if (!active(m))
      continue;
    int cap = r->o.quick ? (m->kind == BENCH_VM ? 1 : 4) : (m->kind == BENCH_VM ? 8 : 32);
    struct bench_proc *ps = hv_xmalloc0((size_t)cap * sizeof *ps);
    int n = 0;
    long pss = 0, avail0 = mem_available_kib();
    const char *why = "cap reached";
    double t0 = bench_now();
    double budget = r->o.quick ? 15 : 60;
    for (; n < cap && !bench_stop; n++) {
      if (n >= 1 && bench_now() - t0 > budget) {
        why = "time budget reached";
        break;
      }
      char detail[48];
      snprintf(detail, sizeof detail, "instance %d/%d", n + 1, cap);
      progress(r, m, "density", detail);
      hv_error_t err = NULL;
      if (bench_proc_start(&r->env, m, argv, true, &ps[n], &err) < 0) {
        why = "start failed";
        record_error(r, m, "density", err->msg, NULL);
        hv_error_release(&err);
        break;
      }
      if (bench_proc_read(&ps[n], "@hvb ready", r->env.timeout) != 1) {
        why = "an instance failed";
        n++; /* freed below */
        break;
      }
      pss = 0;
      for (int j = 0; j <= n; j++)
        pss += bench_tree_pss(ps[j].pid, NULL);
      if (pss > budget_kib || mem_available_kib() < avail0 / 4) {
        why = "memory budget reached";
        n++;
        break;
      }
    }
    int ok = 0;
    for (int j = 0; j < n; j++)
      if (ps[j].out && strstr(ps[j].out, "@hvb ready"))
        ok++;
    double dt = bench_now() - t0;
    for (int j = 0; j < n; j++) {
      if (ps[j].pid > 0 && bench_proc_end(&ps[j], r->env.timeout) < 0 && !bench_stop &&
          j < ok)
        record_error(r, m, "density", "an instance did not exit", ps[j].out);
      bench_proc_free(&ps[j]);
    }
    free(ps);
    bench_mode_cleanup(&r->env, m);
    if (!bench_stop) {
      add_sample(r, m, "density", ok);
      add_sample(r, m, "density_pss_mib_each", ok ? (double)pss / 1024 / ok : 0);
      add_sample(r, m, "density_start_s", dt);
      json_object_set_new(mode_obj(r, "facts", m), "density_stop", json_string(why));
      if (!strcmp(why, "an instance failed"))
        record_error(r, m, "density", "an instance failed to start", NULL);
    }
    task_done(r);
  }
}

/* ---------------- setup, report ---------------- */

static int select_modes(struct bench_run *r, hv_error_t *err) {
  bool explicit = r->o.modes != NULL;
  cleanup_free char *list =
      hv_xstrdup(explicit ? r->o.modes : "host,container,vm,crun,runc,bwrap,qemu");
  char *save = NULL;
  for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    struct bench_mode *m = bench_mode_find(t);
    if (!m) {
      cleanup_free char *known = hv_xstrdup("");
      for (size_t i = 0; i < bench_nmodes; i++) {
        char *k = hv_xasprintf("%s%s%s", known, i ? "," : "", bench_modes[i].name);
        free(known);
        known = k;
      }
      return hv_error(err, 0, "--modes: unknown mode \"%s\" (known: %s)", t, known);
    }
    for (size_t i = 0; i < r->nsel; i++)
      if (r->sel[i] == m)
        return hv_error(err, 0, "--modes: \"%s\" is given twice", t);
    if (r->nsel < 16)
      r->sel[r->nsel++] = m;
  }
  if (!r->nsel)
    return hv_error(err, 0, "--modes: no mode given");
  for (size_t i = 0; i < r->nsel; i++) {
    struct bench_mode *m = r->sel[i];
    if (!bench_mode_probe(m)) {
      m->failed = true;
      /* Named on the command line: worth a line; by default only noted. */
      if (explicit)
        fprintf(stderr, "hvrun bench: %s: %s; skipped\n", m->name, m->reason);
    }
  }
  return 0;
}

static void plan(struct bench_run *r) {
  int t = 0;
  for (size_t i = 0; i < r->nsel; i++) {
    struct bench_mode *m = r->sel[i];
    if (m->failed)
      continue;
    t += 1 + startup_runs_for(r, m) + 1 + 2 * r->o.reps + 1;
  }
  r->total_tasks = t;
}

static void mode_status(struct bench_run *r) {
  json_t *modes = json_object_get(r->doc, "modes");
  for (size_t i = 0; i < r->nsel; i++) {
    struct bench_mode *m = r->sel[i];
    const char *status = m->failed ? (m->bin || !m->peer ? "failed" : "unavailable")
                         : m->failures ? "partial" : bench_stop ? "interrupted" : "ok";
    json_t *o = json_pack("{s:s,s:s,s:s}", "name", m->name, "kind",
                          m->kind == BENCH_NONE ? "none"
                          : m->kind == BENCH_VM ? "vm" : "container",
                          "status", status);
    if (m->reason)
      json_object_set_new(o, "reason", json_string(m->reason));
    if (m->bin)
      json_object_set_new(o, "binary", json_string(m->bin));
    json_object_set_new(o, "version", json_string(m->version ? m->version : "hvrun (this binary)"));
    json_object_set_new(o, "failures", json_integer(m->failures));
    json_array_append_new(modes, o);
  }
}

static char *rfc3339_now(void) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return hv_xstrdup(buf);
}

static int finish(struct bench_run *r) {
  hv_error_t err = NULL;
  mode_status(r);
  bool partial = bench_stop != 0;
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(r->doc, "modes"), i, v)
    if (strcmp(json_string_value(json_object_get(v, "status")), "ok"))
      partial = true;
  json_object_set_new(r->doc, "partial", json_boolean(partial));
  json_object_set_new(r->doc, "interrupted", json_boolean(bench_stop != 0));
  json_object_set_new(r->doc, "duration_s", json_real(bench_now() - r->t_start));
  json_object_set_new(json_object_get(r->doc, "host"), "loadavg_end", bench_loadavg());
  bench_finalize(r->doc);
  if (r->tty)
    fprintf(stderr, "\r\033[K");
  bench_print_table(r->doc, stdout);
  fflush(stdout);
  int rc = 0;
  if (r->o.json && bench_write_json(r->doc, r->o.json, &err) < 0)
    rc = hv_error_print(&err);
  if (r->o.html && bench_write_html(r->doc, r->o.html, &err) < 0)
    rc = hv_error_print(&err);
  if (bench_stop) {
    fprintf(stderr, "hvrun bench: interrupted; partial results %s\n",
            r->o.json ? "written (\"partial\": true)" : "shown above");
    return 130;
  }
  if (rc)
    return rc;
  if (partial)
    fprintf(stderr, "hvrun bench: partial results: some modes failed or were unavailable "
                    "(see \"modes\" and \"errors\")\n");
  return partial ? 3 : 0;
}

int hv_cli_bench(const struct hv_cli_globals *g, int argc, char **argv) {
  hv_error_t err = NULL;
  (void)g;
  struct bench_run r;
  memset(&r, 0, sizeof r);
  const char *runs = NULL, *reps = NULL;
  bool help = false;
  struct cli_opt opts[] = {{"quick", 0, CLI_FLAG, &r.o.quick},
                           {"modes", 0, CLI_STR, &r.o.modes},
                           {"image", 0, CLI_STR, &r.o.image},
                           {"json", 0, CLI_STR, &r.o.json},
                           {"html", 0, CLI_STR, &r.o.html},
                           {"runs", 0, CLI_STR, &runs},
                           {"reps", 0, CLI_STR, &reps},
                           {"timeout", 0, CLI_STR, &r.o.timeout},
                           {"help", 'h', CLI_FLAG, &help},
                           {NULL, 0, 0, NULL}};
  cleanup_free char **pos = NULL;
  size_t npos = 0;
  if (cli_parse("bench", opts, argc, argv, false, &pos, &npos, &err) < 0)
    return hv_error_print(&err);
  if (help) {
    printf("usage: hvrun bench [--quick] [--modes host,container,vm,crun,runc,bwrap,qemu]\n"
           "                   [--image REF|ROOTFS-DIR] [--json FILE] [--html FILE]\n"
           "                   [--runs N] [--reps N] [--timeout SECS]\n");
    return 0;
  }
  if (npos) {
    hv_error(&err, 0, "bench: unexpected argument \"%s\" (see `hvrun bench --help`)", pos[0]);
    return hv_error_print(&err);
  }
  uint64_t u;
  r.o.reps = r.o.quick ? 1 : 3;
  if (runs) {
    if (cli_parse_u64("--runs", runs, &u, &err) < 0)
      return hv_error_print(&err);
    if (u < 1 || u > 1000) {
      hv_error(&err, 0, "--runs: %s is outside 1..1000", runs);
      return hv_error_print(&err);
    }
    r.o.runs = (int)u;
  }
  if (reps) {
    if (cli_parse_u64("--reps", reps, &u, &err) < 0)
      return hv_error_print(&err);
    if (u < 1 || u > 20) {
      hv_error(&err, 0, "--reps: %s is outside 1..20", reps);
      return hv_error_print(&err);
    }
    r.o.reps = (int)u;
  }
  /* A full suite in a guest whose kernel is emulated (PVM) takes 3 minutes. */
  r.env.timeout = r.o.quick ? 20 : 300;
  if (r.o.timeout) {
    char *end;
    double t = strtod(r.o.timeout, &end);
    if (end == r.o.timeout || *end || t < 1 || t > 3600) {
      hv_error(&err, 0, "--timeout: \"%s\" is not a number of seconds in 1..3600", r.o.timeout);
      return hv_error_print(&err);
    }
    r.env.timeout = t;
  }
  /* Output files are checked before anything runs: a typo in the path
   * must not cost a 15-minute run. */
  const char *outs[] = {r.o.json, r.o.html};
  for (int i = 0; i < 2; i++) {
    if (!outs[i])
      continue;
    cleanup_free char *dir = hv_xstrdup(outs[i]);
    char *slash = strrchr(dir, '/');
    const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
    struct stat sb;
    if (stat(d, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
      hv_error(&err, 0, "--%s %s: directory `%s` does not exist", i ? "html" : "json", outs[i], d);
      return hv_error_print(&err);
    }
  }
  r.o.image = r.o.image ? r.o.image : "hvrun/busybox";
  struct stat sb;
  if (stat(r.o.image, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    r.env.image_is_dir = true;
  } else if (r.o.image[0] == '/' || r.o.image[0] == '.') {
    hv_error(&err, 0, "--image %s: not a directory (give a rootfs dir or an image name)",
             r.o.image);
    return hv_error_print(&err);
  }
  if (select_modes(&r, &err) < 0)
    return hv_error_print(&err);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    hv_error(&err, errno, "readlink /proc/self/exe");
    return hv_error_print(&err);
  }
  self[n] = 0;
  r.env.self = self; /* bench is not sealed (main.c): this is the file on disk */
  if (r.env.image_is_dir) {
    static char abs[4096];
    r.env.image = realpath(r.o.image, abs) ? abs : r.o.image;
  } else {
    r.env.image = r.o.image;
  }

  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  bool want_ns = false;
  for (size_t i = 0; i < r.nsel; i++)
    if (!strcmp(r.sel[i]->name, "crun") && !r.sel[i]->failed)
      want_ns = true;
  if (bench_env_setup(&r.env, want_ns, &err) < 0) {
    bench_env_teardown(&r.env);
    return hv_error_print(&err);
  }
  r.tty = isatty(STDERR_FILENO);
  r.t_start = bench_now();
  cleanup_free char *started = rfc3339_now();
  r.doc = json_pack("{s:s,s:s,s:b,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "schema", "hvrun-bench/1",
                    "started", started, "quick", r.o.quick, "host", bench_host_metadata(&r.env),
                    "modes", json_array(), "samples", json_object(), "probes", json_object(),
                    "host_probe", json_object(), "facts", json_object(), "errors",
                    json_array());
  json_object_set_new(r.doc, "config",
                      json_pack("{s:s,s:i,s:f,s:b}", "image", r.o.image, "reps", r.o.reps,
                                "timeout_s", r.env.timeout, "private_mount_ns_for_crun",
                                r.env.private_mountns));
  json_object_set_new(json_object_get(r.doc, "host"), "loadavg_start", bench_loadavg());
  plan(&r);
  if (!bench_stop)
    w_probe(&r);
  if (!bench_stop)
    w_startup(&r);
  if (!bench_stop)
    w_suite(&r);
  if (!bench_stop)
    w_memory(&r);
  if (!bench_stop)
    w_density(&r);
  int rc = finish(&r);
  json_decref(r.doc);
  bench_env_teardown(&r.env);
  return rc;
}
