/* bench_internal.h: private to `hvrun bench` (cli/bench_*.c).
 *
 *   bench_cmd.c     options, the plan (which workload, which mode, in what
 *                   interleaved order), progress, SIGINT, exit status
 *   bench_modes.c   each mode's setup/teardown and how it runs one command
 *                   inside its sandbox; process-tree PSS and seccomp
 *   bench_report.c  host metadata, statistics, ratios, isolation matrix,
 *                   the JSON document and the terminal table
 *   bench_html.c    the self-contained HTML report with inline SVG charts
 *
 * Results live in one jansson document from the start, so an interrupted
 * run can always write what it has (marked partial). */
#ifndef HVRUN_BENCH_INTERNAL_H
#define HVRUN_BENCH_INTERNAL_H
#include "cli_internal.h"
#include <signal.h>

enum bench_kind { BENCH_NONE, BENCH_CONTAINER, BENCH_VM };

struct bench_mode {
  const char *name;             /* host container vm crun runc bwrap qemu */
  enum bench_kind kind;
  const char *peer;             /* binary looked up in PATH (NULL: hvrun itself) */
  const char *env_override;     /* HVRUN_BENCH_<PEER>: path of the binary */
  char *bin;                    /* resolved binary */
  char *version;
  bool failed;                  /* stop running it; reason says why */
  char *reason;
  int failures;                 /* workload failures (mode is then partial) */
  char *last_error;             /* the last failure's message, for `reason` */
  int seq;                      /* per-mode counter for container ids */
};

struct bench_env {
  const char *self;             /* absolute path of this hvrun */
  const char *image;            /* image reference or rootfs dir */
  bool image_is_dir;
  char *work;                   /* private work dir (/var/tmp/hvrun-bench.XXXXXX) */
  char *rootfs;                 /* flattened rootfs the peers and host use */
  char *bundle;                 /* OCI bundle for crun/runc (rootfs above) */
  char *hostio;                 /* host mode's disk directory */
  char *seccomp_json;           /* hvrun's default profile, given to crun/runc */
  bool overlay_mounted;
  bool private_mountns;         /* cgroup2 unified unmounted for crun */
  char *kernel, *initrd_init;   /* qemu mode: guest kernel and init */
  double timeout;               /* seconds per sandboxed command */
};

/* One sandboxed command: its output and how it ended. */
struct bench_proc {
  pid_t pid;
  int out_fd, in_fd;            /* our ends: its stdout (and stderr), its stdin */
  char *out;                    /* everything it printed */
  size_t out_len;
  double started;               /* bench_now() at fork */
};

extern volatile sig_atomic_t bench_stop;
double bench_now(void);

/* bench_modes.c */
extern struct bench_mode bench_modes[];
extern const size_t bench_nmodes;
struct bench_mode *bench_mode_find(const char *name);
/* Resolve the peer binary and its version; false + m->reason if missing. */
bool bench_mode_probe(struct bench_mode *m);
int bench_env_setup(struct bench_env *e, bool want_private_ns, hv_error_t *err);
void bench_env_teardown(struct bench_env *e);
/* Start argv (paths inside the sandbox) under mode m; with_stdin gives it a
 * pipe as stdin (kept open until bench_proc_finish). */
int bench_proc_start(struct bench_env *e, struct bench_mode *m, char *const argv[],
                     bool with_stdin, struct bench_proc *p, hv_error_t *err);
/* Read output until `until` appears (NULL: until EOF) or timeout/stop.
 * Returns 1 found/EOF, 0 timeout, -1 interrupted. */
int bench_proc_read(struct bench_proc *p, const char *until, double timeout);
/* Close stdin, read to EOF, reap (kill after timeout).  Returns the exit
 * status as a shell shows it, or -1 on timeout/interrupt. */
int bench_proc_finish(struct bench_proc *p, double timeout);
/* End a long-running workload we have measured: close its stdin (hvbench
 * hold exits on EOF), and if it is still there after a grace period (a VM
 * console does not carry EOF), SIGTERM the runtime, which forwards it.
 * Returns 0 when it ended either way, -1 if it had to be killed. */
int bench_proc_end(struct bench_proc *p, double timeout);
void bench_proc_free(struct bench_proc *p);
/* One command to completion: status, wall seconds, output. */
int bench_run(struct bench_env *e, struct bench_mode *m, char *const argv[], double *wall,
              char **out, hv_error_t *err);
/* Sum of PSS (KiB) over pid and its descendants; fills a JSON array of
 * {comm, pss_kib, seccomp} for the tree. */
long bench_tree_pss(pid_t pid, json_t *procs);
/* Remove leftover containers of crun/runc/hvrun roots (after kill/timeout). */
void bench_mode_cleanup(struct bench_env *e, struct bench_mode *m);

/* bench_report.c */
json_t *bench_host_metadata(struct bench_env *e);
json_t *bench_loadavg(void);
/* Parse "@hvb KEY VALUE" lines into obj (numbers as reals, others strings). */
void bench_parse_output(const char *out, json_t *obj);
/* Statistics, ratios and the isolation matrix, from doc.samples/doc.probes. */
void bench_finalize(json_t *doc);
void bench_print_table(json_t *doc, FILE *f);
int bench_write_json(json_t *doc, const char *path, hv_error_t *err);

/* bench_html.c */
int bench_write_html(json_t *doc, const char *path, hv_error_t *err);

/* hvrun links without libm (Makefile LIBS); the few maths the reports need
 * are here, exact enough for statistics on samples and chart axes. */
static inline double bench_floor(double x) {
  double t = (double)(long long)x;
  return t > x ? t - 1 : t;
}
static inline double bench_ceil(double x) { return -bench_floor(-x); }
static inline double bench_pow10(int e) {
  double r = 1;
  for (int i = 0; i < (e < 0 ? -e : e); i++)
    r *= 10;
  return e < 0 ? 1 / r : r;
}
/* log10 for x > 0: decimal exponent + ln(mantissa)/ln(10) by the atanh series. */
static inline double bench_log10(double x) {
  int e = 0;
  while (x >= 10)
    x /= 10, e++;
  while (x < 1)
    x *= 10, e--;
  double z = (x - 1) / (x + 1), z2 = z * z, term = z, sum = 0;
  for (int k = 1; k < 200; k += 2) {
    sum += term / k;
    term *= z2;
  }
  return e + 2 * sum / 2.302585092994046;
}

/* Metric table: name, unit, whether lower is better, human label. */
struct bench_metric_info {
  const char *key, *unit, *label;
  bool lower_better;
};
extern const struct bench_metric_info bench_metrics[];
extern const size_t bench_nmetrics;
#endif
