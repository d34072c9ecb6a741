/* bench_modes.c: the modes `hvrun bench` compares, and how each runs one
 * command inside its sandbox.
 *
 * Every mode runs the same image: hvrun's own modes take the image
 * reference; the peers (crun, runc, bwrap) and the host get one overlay
 * mount of the same image (the store's own overlay code), so they read the
 * same files.  crun and runc get a bundle whose config.json is `hvrun spec`
 * plus hvrun's built-in seccomp profile, i.e. the policy hvrun applies.
 *
 * Each command runs in its own process group, so a terminal's SIGINT
 * reaches only the harness, which then stops the group itself. */
#include "bench_internal.h"
#include "../images/images.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* runtime/seccomp-default.json, embedded by runtime/module.mk. */
extern const char hv_seccomp_default_json[];
extern const size_t hv_seccomp_default_json_len;

struct bench_mode bench_modes[] = {
    {.name = "host", .kind = BENCH_NONE},
    {.name = "container", .kind = BENCH_CONTAINER},
    {.name = "vm", .kind = BENCH_VM},
    {.name = "crun", .kind = BENCH_CONTAINER, .peer = "crun", .env_override = "HVRUN_BENCH_CRUN"},
    {.name = "runc", .kind = BENCH_CONTAINER, .peer = "runc", .env_override = "HVRUN_BENCH_RUNC"},
    {.name = "bwrap", .kind = BENCH_CONTAINER, .peer = "bwrap", .env_override = "HVRUN_BENCH_BWRAP"},
    {.name = "qemu", .kind = BENCH_VM, .peer = "qemu-system-x86_64",
     .env_override = "HVRUN_BENCH_QEMU"},
};
const size_t bench_nmodes = sizeof bench_modes / sizeof bench_modes[0];

volatile sig_atomic_t bench_stop;

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct bench_mode *bench_mode_find(const char *name) {
  for (size_t i = 0; i < bench_nmodes; i++)
    if (strcmp(bench_modes[i].name, name) == 0)
      return &bench_modes[i];
  return NULL;
}

static char *which(const char *name) {
  const char *path = getenv("PATH");
  if (!path)
    path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  cleanup_free char *copy = hv_xstrdup(path);
  char *save = NULL;
  for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    char *p = hv_xasprintf("%s/%s", d, name);
    if (access(p, X_OK) == 0)
      return p;
    free(p);
  }
  return NULL;
}

/* First line of `bin ARG`'s output (version strings). */
static char *first_line_of(const char *bin, const char *arg) {
  cleanup_free char *cmd = hv_xasprintf("'%s' %s 2>&1", bin, arg);
  FILE *f = popen(cmd, "r");
  if (!f)
    return hv_xstrdup("unknown");
  char buf[256] = "";
  if (!fgets(buf, sizeof buf, f))
    snprintf(buf, sizeof buf, "unknown");
  pclose(f);
  buf[strcspn(buf, "\n")] = 0;
  return hv_xstrdup(buf);
}

bool bench_mode_probe(struct bench_mode *m) {
  if (!m->peer)
    return true;
  const char *forced = getenv(m->env_override);
  if (forced && *forced) {
    if (access(forced, X_OK) != 0) {
      m->reason = hv_xasprintf("%s=%s: not an executable file", m->env_override, forced);
      return false;
    }
    m->bin = hv_xstrdup(forced);
  } else if (!(m->bin = which(m->peer))) {
    m->reason = hv_xasprintf("`%s` is not installed (not found in PATH)", m->peer);
    return false;
  }
  m->version = first_line_of(m->bin, "--version");
  return true;
}

/* ---------------- environment ---------------- */

static int write_bundle(struct bench_env *e, hv_error_t *err) {
  cleanup_json json_t *spec = hv_oci_default_spec(false);
  json_object_set_new(spec, "root", json_pack("{s:s,s:b}", "path", e->rootfs, "readonly", 0));
  json_object_set_new(spec, "hostname", json_string("hvrun"));
  /* Peers of older spec versions (crun 1.8) refuse newer ociVersions. */
  json_object_set_new(spec, "ociVersion", json_string("1.0.2"));
  json_object_set_new(json_object_get(spec, "process"), "terminal", json_false());
  json_error_t je;
  json_t *sec = json_loadb(hv_seccomp_default_json, hv_seccomp_default_json_len, 0, &je);
  if (!sec)
    return hv_error(err, 0, "built-in seccomp profile: %s", je.text);
  json_object_set_new(json_object_get(spec, "linux"), "seccomp", sec);
  e->seccomp_json = json_dumps(sec, JSON_COMPACT);
  e->bundle = hv_xasprintf("%s/bundle", e->work);
  if (hv_mkdir_p(e->bundle, 0700, err) < 0)
    return -1;
  cleanup_free char *text = json_dumps(spec, JSON_INDENT(1));
  cleanup_free char *path = hv_xasprintf("%s/config.json", e->bundle);
  return hv_write_file_atomic(AT_FDCWD, path, text, strlen(text), 0600, err);
}

/* crun 1.8 refuses hybrid cgroups; in a private mount namespace without
 * /sys/fs/cgroup/unified every runtime sees the same pure-v1 layout. */
static void private_mountns(struct bench_env *e) {
  struct stat a, b;
  if (stat("/sys/fs/cgroup/unified", &a) < 0 || stat("/sys/fs/cgroup", &b) < 0 ||
      a.st_dev == b.st_dev)
    return;
  if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
    hv_warn("bench: private mount namespace: %s; crun may refuse hybrid cgroups",
            strerror(errno));
    return;
  }
  if (umount2("/sys/fs/cgroup/unified", MNT_DETACH) == 0)
    e->private_mountns = true;
}

int bench_env_setup(struct bench_env *e, bool want_private_ns, hv_error_t *err) {
  if (want_private_ns)
    private_mountns(e);
  char tmpl[] = "/var/tmp/hvrun-bench.XXXXXX";
  if (!mkdtemp(tmpl))
    return hv_error(err, errno, "mkdtemp `%s`", tmpl);
  e->work = hv_xstrdup(tmpl);
  e->hostio = hv_xasprintf("%s/hostio", e->work);
  if (hv_mkdir_p(e->hostio, 0700, err) < 0)
    return -1;
  if (e->image_is_dir) {
    e->rootfs = hv_xstrdup(e->image);
  } else {
    struct hv_image_store *s = NULL;
    struct hv_image *img = NULL;
    int r = hv_image_store_open(hv_image_store_dir(NULL), &s, err);
    if (r == 0)
      r = hv_image_lookup(s, e->image, &img, err);
    if (r < 0) {
      hv_error_wrap(err, "--image %s (run `make image` to build hvrun/busybox)", e->image);
    } else {
      e->rootfs = hv_xasprintf("%s/rootfs", e->work);
      cleanup_free char *scratch = hv_xasprintf("%s/overlay", e->work);
      if ((r = hv_mkdir_p(e->rootfs, 0755, err)) == 0 &&
          (r = hv_image_rootfs_mount(s, img, scratch, e->rootfs, err)) == 0)
        e->overlay_mounted = true;
    }
    if (img)
      hv_image_free(img);
    if (s)
      hv_image_store_close(s);
    if (r < 0)
      return -1;
  }
  return write_bundle(e, err);
}

static void rm_rf(const char *path) {
  /* Our own work dir only; nftw would follow nothing either. */
  cleanup_free char *cmd = hv_xasprintf("rm -rf --one-file-system '%s'", path);
  if (system(cmd) != 0)
    hv_warn("bench: could not remove %s", path);
}

/* Safety net after a runtime was killed mid-run: anything still mounted
 * under our work dir (a one-shot's overlay) is detached, deepest first, so
 * the work dir can go. */
static void unmount_under(const char *dir) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f)
    return;
  char line[4096];
  char *found[256];
  size_t n = 0, dl = strlen(dir);
  while (fgets(line, sizeof line, f) && n < 256) {
    char mnt[4096];
    if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && !strncmp(mnt, dir, dl) &&
        (mnt[dl] == '/' || mnt[dl] == 0))
      found[n++] = hv_xstrdup(mnt);
  }
  fclose(f);
  while (n--) {
    if (umount2(found[n], MNT_DETACH) < 0)
      hv_warn("bench: umount %s: %s", found[n], strerror(errno));
    free(found[n]);
  }
}

void bench_env_teardown(struct bench_env *e) {
  if (e->overlay_mounted) {
    hv_error_t err = NULL;
    cleanup_free char *scratch = hv_xasprintf("%s/overlay", e->work);
    if (hv_image_rootfs_release(scratch, e->rootfs, &err) < 0)
      hv_error_print(&err);
  }
  if (e->work) {
    unmount_under(e->work);
    rm_rf(e->work);
  }
  free(e->work);
  free(e->rootfs);
  free(e->bundle);
  free(e->hostio);
  free(e->seccomp_json);
}

/* ---------------- one command in a sandbox ---------------- */

static char *state_root(struct bench_env *e, struct bench_mode *m) {
  return hv_xasprintf("%s/state-%s", e->work, m->name);
}

/* crun/runc read the workload's argv from config.json: rewrite it. */
static int bundle_set_args(struct bench_env *e, char *const argv[], hv_error_t *err) {
  cleanup_free char *path = hv_xasprintf("%s/config.json", e->bundle);
  json_error_t je;
  cleanup_json json_t *doc = json_load_file(path, 0, &je);
  if (!doc)
    return hv_error(err, 0, "%s: %s", path, je.text);
  json_t *args = json_array();
  for (size_t i = 0; argv[i]; i++)
    json_array_append_new(args, json_string(argv[i]));
  json_object_set_new(json_object_get(doc, "process"), "args", args);
  cleanup_free char *text = json_dumps(doc, JSON_INDENT(1));
  return hv_write_file_atomic(AT_FDCWD, path, text, strlen(text), 0600, err);
}

static char **build_argv(struct bench_env *e, struct bench_mode *m, char *const argv[],
                         bool with_stdin, hv_error_t *err) {
  size_t n = 0;
  while (argv[n])
    n++;
  char **v = hv_xmalloc0((n + 32) * sizeof(char *));
  size_t k = 0;
  cleanup_free char *root = state_root(e, m);
  const char *name = m->name;
  if (!strcmp(name, "host")) {
    /* No isolation: the same static binaries, by their path in the rootfs. */
    v[k++] = hv_xasprintf("%s%s", e->rootfs, argv[0]);
    for (size_t i = 1; i < n; i++)
      v[k++] = hv_xstrdup(argv[i]);
    return v;
  }
  if (!strcmp(name, "container") || !strcmp(name, "vm")) {
    v[k++] = hv_xstrdup(e->self);
    v[k++] = hv_xstrdup("--root");
    v[k++] = hv_xstrdup(root);
    v[k++] = hv_xstrdup(name);
    if (with_stdin)
      v[k++] = hv_xstrdup("-i");
    v[k++] = hv_xstrdup(e->image);
  } else if (!strcmp(name, "crun") || !strcmp(name, "runc")) {
    if (bundle_set_args(e, argv, err) < 0) {
      hv_strv_free(v);
      return NULL;
    }
    v[k++] = hv_xstrdup(m->bin);
    v[k++] = hv_xstrdup("--root");
    v[k++] = hv_xstrdup(root);
    v[k++] = hv_xstrdup("run");
    v[k++] = hv_xstrdup("--bundle");
    v[k++] = hv_xstrdup(e->bundle);
    v[k++] = hv_xasprintf("bench-%s-%d-%d", name, (int)getpid(), m->seq++);
    return v;
  } else if (!strcmp(name, "bwrap")) {
    const char *fixed[] = {"--bind", e->rootfs, "/", "--proc", "/proc", "--dev", "/dev",
                           "--unshare-all", "--die-with-parent", "--hostname", "hvrun",
                           "--cap-drop", "ALL", "--cap-add", "CAP_CHOWN", NULL};
    v[k++] = hv_xstrdup(m->bin);
    for (size_t i = 0; fixed[i]; i++)
      v[k++] = hv_xstrdup(fixed[i]);
  } else if (!strcmp(name, "qemu")) {
    /* hvrun's VM backend with QEMU as the engine (same kernel, initrd,
     * root disk); HVRUN_ENGINE is read by vm/policy_vm.c. */
    v[k++] = hv_xstrdup(e->self);
    v[k++] = hv_xstrdup("--root");
    v[k++] = hv_xstrdup(root);
    v[k++] = hv_xstrdup("vm");
    if (with_stdin)
      v[k++] = hv_xstrdup("-i");
    v[k++] = hv_xstrdup(e->image);
  }
  for (size_t i = 0; i < n; i++)
    v[k++] = hv_xstrdup(argv[i]);
  return v;
}

int bench_proc_start(struct bench_env *e, struct bench_mode *m, char *const argv[],
                     bool with_stdin, struct bench_proc *p, hv_error_t *err) {
  memset(p, 0, sizeof p[0]);
  p->out_fd = p->in_fd = -1;
  cleanup_strv char **v = build_argv(e, m, argv, with_stdin, err);
  if (!v)
    return -1;
  int out[2], in[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) < 0)
    return hv_error(err, errno, "pipe");
  if (with_stdin && pipe2(in, O_CLOEXEC) < 0) {
    close(out[0]), close(out[1]);
    return hv_error(err, errno, "pipe");
  }
  p->started = bench_now();
  pid_t pid = fork();
  if (pid < 0) {
    close(out[0]), close(out[1]);
    if (in[0] >= 0)
      close(in[0]), close(in[1]);
    return hv_error(err, errno, "fork");
  }
  if (pid == 0) {
    setpgid(0, 0);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    int nul = open("/dev/null", O_RDONLY);
    dup2(with_stdin ? in[0] : nul, 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    if (!strcmp(m->name, "host"))
      if (chdir(e->hostio) < 0)
        _exit(126);
    if (!strcmp(m->name, "qemu"))
      setenv("HVRUN_ENGINE", "qemu", 1);
    execv(v[0], v);
    dprintf(2, "hvrun bench: exec %s: %s\n", v[0], strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid);
  close(out[1]);
  if (with_stdin) {
    close(in[0]);
    p->in_fd = in[1];
  }
  p->pid = pid;
  p->out_fd = out[0];
  return 0;
}

int bench_proc_read(struct bench_proc *p, const char *until, double timeout) {
  double end = bench_now() + timeout;
  for (;;) {
    if (until && p->out && strstr(p->out, until))
      return 1;
    if (p->out_fd < 0)
      return until ? 0 : 1;
    if (bench_stop)
      return -1;
    double left = end - bench_now();
    if (left <= 0)
      return 0;
    struct pollfd pfd = {.fd = p->out_fd, .events = POLLIN};
    int r = poll(&pfd, 1, left > 0.1 ? 100 : (int)(left * 1000) + 1);
    if (r <= 0)
      continue;
    char buf[8192];
    ssize_t n = read(p->out_fd, buf, sizeof buf);
    if (n <= 0) {
      close(p->out_fd);
      p->out_fd = -1;
      continue;
    }
    p->out = realloc(p->out, p->out_len + (size_t)n + 1);
    if (!p->out)
      abort();
    memcpy(p->out + p->out_len, buf, (size_t)n);
    p->out_len += (size_t)n;
    p->out[p->out_len] = 0;
  }
}

/* SIGTERM to the group (runtimes forward it and clean up), then SIGKILL. */
static int stop_group(pid_t pid) {
  int st = 0;
  kill(-pid, SIGTERM);
  for (int i = 0; i < 50; i++) {
    if (waitpid(pid, &st, WNOHANG) == pid)
      return st;
    struct timespec ts = {.tv_nsec = 100000000};
    nanosleep(&ts, NULL);
  }
  kill(-pid, SIGKILL);
  waitpid(pid, &st, 0);
  return st;
}

int bench_proc_finish(struct bench_proc *p, double timeout) {
  if (p->in_fd >= 0) {
    close(p->in_fd);
    p->in_fd = -1;
  }
  int r = bench_proc_read(p, NULL, timeout);
  int st = 0;
  if (r != 1) {
    stop_group(p->pid);
    p->pid = 0;
    return -1;
  }
  /* Output closed: the process is about to exit; wait, bounded. */
  double end = bench_now() + timeout;
  for (;;) {
    pid_t w = waitpid(p->pid, &st, WNOHANG);
    if (w == p->pid)
      break;
    if (bench_stop || bench_now() > end) {
      stop_group(p->pid);
      p->pid = 0;
      return -1;
    }
    struct timespec ts = {.tv_nsec = 2000000};
    nanosleep(&ts, NULL);
  }
  p->pid = 0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int bench_proc_end(struct bench_proc *p, double timeout) {
  if (p->in_fd >= 0) {
    close(p->in_fd);
    p->in_fd = -1;
  }
  int st;
  double end = bench_now() + 2;
  while (bench_now() < end && !bench_stop) {
    if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
      p->pid = 0;
      return 0;
    }
    struct timespec ts = {.tv_nsec = 20000000};
    nanosleep(&ts, NULL);
  }
  kill(p->pid, SIGTERM);
  end = bench_now() + timeout;
  while (bench_now() < end && !bench_stop) {
    if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
      p->pid = 0;
      return 0;
    }
    struct timespec ts = {.tv_nsec = 20000000};
    nanosleep(&ts, NULL);
  }
  stop_group(p->pid);
  p->pid = 0;
  return -1;
}

void bench_proc_free(struct bench_proc *p) {
  if (p->pid > 0)
    stop_group(p->pid);
  if (p->in_fd >= 0)
    close(p->in_fd);
  if (p->out_fd >= 0)
    close(p->out_fd);
  free(p->out);
  memset(p, 0, sizeof p[0]);
}

int bench_run(struct bench_env *e, struct bench_mode *m, char *const argv[], double *wall,
              char **out, hv_error_t *err) {
  struct bench_proc p;
  if (bench_proc_start(e, m, argv, false, &p, err) < 0)
    return -1;
  int st = bench_proc_finish(&p, e->timeout);
  if (wall)
    *wall = bench_now() - p.started;
  if (out) {
    *out = p.out ? p.out : hv_xstrdup("");
    p.out = NULL;
  }
  bench_proc_free(&p);
  if (st < 0) {
    bench_mode_cleanup(e, m);
    if (bench_stop)
      return hv_error(err, EINTR, "interrupted");
    return hv_error(err, ETIMEDOUT, "no result within %.0f s (stopped)", e->timeout);
  }
  return st;
}

/* ---------------- process trees ---------------- */

static pid_t ppid_of(pid_t pid) {
  struct hv_proc_stat ps;
  return hv_proc_stat(pid, &ps) < 0 ? -1 : ps.ppid;
}

static long status_field(pid_t pid, const char *file, const char *key) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
  FILE *f = fopen(path, "re");
  if (!f)
    return -1;
  long v = -1;
  size_t kl = strlen(key);
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, kl)) {
      v = atol(line + kl);
      break;
    }
  fclose(f);
  return v;
}

/* Does `pid` live in a nested pid namespace (a VMM's jail)?  NSpid lists
 * one pid per level. */
static bool in_nested_pidns(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "re");
  bool nested = false;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "NSpid:", 6)) {
      char *save = NULL;
      int levels = 0;
      for (char *t = strtok_r(line + 6, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save))
        levels++;
      nested = levels > 1;
      break;
    }
  if (f)
    fclose(f);
  return nested;
}

long bench_tree_pss(pid_t root, json_t *procs) {
  /* Collect descendants by repeated passes over /proc (trees are small). */
  pid_t tree[1024];
  size_t n = 0;
  tree[n++] = root;
  DIR *d = opendir("/proc");
  if (!d)
    return -1;
  struct { pid_t pid, ppid; } all[8192];
  size_t na = 0;
  struct dirent *de;
  while ((de = readdir(d)) && na < 8192)
    if (de->d_name[0] >= '1' && de->d_name[0] <= '9') {
      all[na].pid = atoi(de->d_name);
      all[na].ppid = ppid_of(all[na].pid);
      na++;
    }
  closedir(d);
  for (size_t i = 0; i < n && n < 1024; i++)
    for (size_t j = 0; j < na && n < 1024; j++)
      if (all[j].ppid == tree[i])
        tree[n++] = all[j].pid;
  long total = 0;
  for (size_t i = 0; i < n; i++) {
    long pss = status_field(tree[i], "smaps_rollup", "Pss:");
    if (pss < 0)
      continue;
    total += pss;
    if (procs) {
      char path[64], comm[64] = "?";
      snprintf(path, sizeof path, "/proc/%d/comm", (int)tree[i]);
      FILE *f = fopen(path, "re");
      if (f) {
        if (fgets(comm, sizeof comm, f))
          comm[strcspn(comm, "\n")] = 0;
        fclose(f);
      }
      json_array_append_new(procs, json_pack("{s:s,s:I,s:I,s:b}", "comm", comm, "pss_kib",
                                             (json_int_t)pss, "seccomp",
                                             (json_int_t)status_field(tree[i], "status",
                                                                      "Seccomp:"),
                                             "jailed", in_nested_pidns(tree[i])));
    }
  }
  return total;
}

void bench_mode_cleanup(struct bench_env *e, struct bench_mode *m) {
  /* After a stop: delete whatever the runtime left in our private root. */
  cleanup_free char *root = state_root(e, m);
  const char *bin = m->bin ? m->bin : e->self;
  if (m->kind == BENCH_NONE || !strcmp(m->name, "bwrap"))
    return;
  DIR *d = opendir(root);
  if (!d)
    return;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.' || strstr(de->d_name, ".lock"))
      continue;
    cleanup_free char *cmd = hv_xasprintf("'%s' --root '%s' delete -f '%s' >/dev/null 2>&1", bin,
                                          root, de->d_name);
    if (system(cmd) != 0)
      hv_debug("bench: delete %s in %s failed", de->d_name, root);
  }
  closedir(d);
}
