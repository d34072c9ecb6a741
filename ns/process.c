/* process.c: ns_finalize_and_exec, the last steps before the workload runs.
 *
 * Order, and why:
 *   oomScoreAdj, ioPriority, rlimits, CPU affinity  (need privileges we drop later)
 *   umask, cwd                                       (resolved inside the new root)
 *   seccomp if !noNewPrivileges                      (loading it without NNP needs
 *                                                     CAP_SYS_ADMIN, about to go)
 *   setgroups/setgid/setuid (PR_SET_KEEPCAPS), capabilities
 *   PATH lookup of args[0]                           (before a filter could block stat)
 *   no_new_privs, then seccomp if noNewPrivileges    (as late as possible, as runc)
 *   signal mask/handlers reset, execve.
 * A failed exec sets the error status to 127 (not found) or 126 (found
 * but not executable), the shell convention docker also reports. */
#include "sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int hv_rlimits_apply(const struct hv_oci_rlimit *r, size_t n, hv_error_t *err) {
  for (size_t i = 0; i < n; i++) {
    struct rlimit rl = {.rlim_cur = r[i].soft, .rlim_max = r[i].hard};
    if (r[i].soft > r[i].hard)
      return hv_error(err, 0, "process.rlimits[%zu]: %s soft limit %llu exceeds hard limit %llu",
                      i, r[i].type ? r[i].type : "?", (unsigned long long)r[i].soft,
                      (unsigned long long)r[i].hard);
    if (setrlimit((__rlimit_resource_t)r[i].resource, &rl) < 0)
      return hv_error(err, errno, "process.rlimits[%zu]: set %s", i, r[i].type ? r[i].type : "?");
  }
  return 0;
}

static int apply_io_priority(const struct hv_oci_process *p, hv_error_t *err) {
  if (!p->io_priority_class)
    return 0;
  static const struct { const char *name; int cls; } classes[] = {
      {"IOPRIO_CLASS_RT", 1}, {"IOPRIO_CLASS_BE", 2}, {"IOPRIO_CLASS_IDLE", 3}};
  int cls = -1;
  for (size_t i = 0; i < 3; i++)
    if (strcmp(p->io_priority_class, classes[i].name) == 0)
      cls = classes[i].cls;
  if (cls < 0)
    return hv_error(err, 0, "process.ioPriority.class: unknown class \"%s\"", p->io_priority_class);
  if (p->io_priority < 0 || p->io_priority > 7)
    return hv_error(err, 0, "process.ioPriority.priority: %d is out of range 0-7", p->io_priority);
  /* ioprio_set(IOPRIO_WHO_PROCESS = 1, self, class << 13 | level) */
  if (syscall(SYS_ioprio_set, 1, 0, (cls << 13) | p->io_priority) < 0)
    return hv_error(err, errno, "process.ioPriority: ioprio_set");
  return 0;
}

/* "0-3,6" -> cpu set */
static int apply_cpu_affinity(const char *list, hv_error_t *err) {
  if (!list || !*list)
    return 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  const char *s = list;
  while (*s) {
    char *end;
    long a = strtol(s, &end, 10), b = a;
    if (end == s || a < 0 || a >= CPU_SETSIZE)
      return hv_error(err, 0, "process.execCPUAffinity: invalid CPU list \"%s\"", list);
    if (*end == '-') {
      s = end + 1;
      b = strtol(s, &end, 10);
      if (end == s || b < a || b >= CPU_SETSIZE)
        return hv_error(err, 0, "process.execCPUAffinity: invalid CPU list \"%s\"", list);
    }
    for (long c = a; c <= b; c++)
      CPU_SET((int)c, &set);
    s = end;
    if (*s == ',')
      s++;
    else if (*s)
      return hv_error(err, 0, "process.execCPUAffinity: invalid CPU list \"%s\"", list);
  }
  if (sched_setaffinity(0, sizeof set, &set) < 0)
    return hv_error(err, errno, "process.execCPUAffinity: set \"%s\"", list);
  return 0;
}

/* chdir to process.cwd resolved strictly inside "/" (the container root
 * after pivot_root): magic links such as /proc/self/fd/N are refused, so a
 * leaked host directory fd can never become the cwd (CVE-2024-21626). */
static int enter_cwd(const char *cwd, hv_error_t *err) {
  if (!cwd || !*cwd)
    cwd = "/";
  if (cwd[0] != '/')
    return hv_error(err, 0, "process.cwd: \"%s\" is not an absolute path", cwd);
  cleanup_close int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return hv_error(err, errno, "open `/`");
  int fd = ns_open_in_root(root, cwd, O_PATH | O_DIRECTORY);
  if (fd == -ENOENT) { /* runc and crun create a missing cwd */
    if (ns_mkpath_in_root(root, cwd, true, err) < 0)
      return hv_error_wrap(err, "process.cwd");
    fd = ns_open_in_root(root, cwd, O_PATH | O_DIRECTORY);
  }
  if (fd < 0)
    return hv_error(err, -fd, "process.cwd: `%s`", cwd);
  cleanup_close int dfd = fd;
  if (fchdir(dfd) < 0)
    return hv_error(err, errno, "process.cwd: chdir `%s`", cwd);
  char buf[PATH_MAX];
  if (!getcwd(buf, sizeof buf))
    return hv_error(err, errno, "process.cwd: getcwd after chdir `%s`", cwd);
  if (buf[0] != '/') /* "(unreachable)/...": outside our root */
    return hv_error(err, 0, "process.cwd: `%s` resolves outside the container root", cwd);
  return 0;
}

static int switch_user(const struct hv_oci_user *u, bool keep_caps, hv_error_t *err) {
  if (keep_caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return hv_error(err, errno, "prctl(PR_SET_KEEPCAPS)");
  /* In a user namespace whose parent wrote "deny" to setgroups, the call is
   * refused; dropping supplementary groups is then impossible and moot. */
  bool deny = false;
  cleanup_free char *sg = NULL;
  hv_error_t ignore = NULL;
  if (hv_read_file("/proc/self/setgroups", &sg, NULL, &ignore) == 0)
    deny = strncmp(sg, "deny", 4) == 0;
  hv_error_release(&ignore);
  if (!deny) {
    if (setgroups(u->n_additional_gids, (const gid_t *)u->additional_gids) < 0)
      return hv_error(err, errno, "process.user.additionalGids: setgroups");
  } else if (u->n_additional_gids) {
    return hv_error(err, EPERM, "process.user.additionalGids: setgroups is denied in this user namespace");
  }
  if (setresgid(u->gid, u->gid, u->gid) < 0)
    return hv_error(err, errno, "process.user.gid: setgid %u", u->gid);
  if (setresuid(u->uid, u->uid, u->uid) < 0)
    return hv_error(err, errno, "process.user.uid: setuid %u", u->uid);
  return 0;
}

static const char *env_get(char **env, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; env && env[i]; i++)
    if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
      return env[i] + n + 1;
  return NULL;
}

static int exec_error(int e, const char *name, hv_error_t *err) {
  int r = hv_error(err, e, "exec \"%s\"", name);
  if (err && *err)
    (*err)->status = e == ENOENT ? 127 : 126;
  return r;
}

/* Find args[0] in the container's PATH (from process.env). */
static int lookup_executable(const char *name, char **env, char **out, hv_error_t *err) {
  if (strchr(name, '/')) {
    struct stat st;
    if (stat(name, &st) < 0)
      return exec_error(errno, name, err);
    if (S_ISDIR(st.st_mode))
      return exec_error(EACCES, name, err);
    *out = hv_xstrdup(name);
    return 0;
  }
  const char *path = env_get(env, "PATH");
  if (!path)
    path = DEFAULT_PATH;
  int saw = ENOENT;
  const char *s = path;
  for (;;) {
    const char *colon = strchr(s, ':');
    size_t len = colon ? (size_t)(colon - s) : strlen(s);
    cleanup_free char *cand = len ? hv_xasprintf("%.*s/%s", (int)len, s, name)
                                  : hv_xasprintf("./%s", name);
    struct stat st;
    if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
      if (access(cand, X_OK) == 0) {
        *out = cand;
        cand = NULL;
        return 0;
      }
      saw = EACCES;
    }
    if (!colon)
      break;
    s = colon + 1;
  }
  return exec_error(saw, name, err);
}

int ns_finalize_and_exec(const struct hv_oci_process *p, const struct hv_oci_seccomp *seccomp,
                         hv_error_t *err) {
  if (!p || !p->args || !p->args[0] || !*p->args[0])
    return hv_error(err, 0, "process.args: must name the program to run");
  if (p->has_oom_score_adj) {
    char v[16];
    snprintf(v, sizeof v, "%d", p->oom_score_adj);
    if (hv_write_file("/proc/self/oom_score_adj", v, err) < 0)
      return hv_error_wrap(err, "process.oomScoreAdj");
  }
  if (apply_io_priority(p, err) < 0 || hv_rlimits_apply(p->rlimits, p->n_rlimits, err) < 0 ||
      apply_cpu_affinity(p->exec_cpu_affinity_final, err) < 0)
    return -1;
  umask(p->user.has_umask ? (mode_t)(p->user.umask & 0777) : 0022);
  if (enter_cwd(p->cwd, err) < 0)
    return -1;
  if (seccomp && !p->no_new_privileges && hv_seccomp_load(seccomp, err) < 0)
    return -1;
  if (switch_user(&p->user, p->capabilities != NULL, err) < 0)
    return -1;
  if (p->capabilities && hv_caps_apply(p->capabilities, err) < 0)
    return -1;
  if (p->capabilities && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    return hv_error(err, errno, "prctl(PR_SET_KEEPCAPS, 0)");
  cleanup_free char *exe = NULL;
  if (lookup_executable(p->args[0], p->env, &exe, err) < 0)
    return -1;
  if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return hv_error(err, errno, "process.noNewPrivileges: prctl(PR_SET_NO_NEW_PRIVS)");
  /* The runtime may have blocked or caught signals; the workload starts
   * clean (execve keeps the mask and ignored dispositions). */
  sigset_t none;
  sigemptyset(&none);
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      signal(sig, SIG_DFL);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (seccomp && p->no_new_privileges && hv_seccomp_load(seccomp, err) < 0)
    return -1;
  static char *empty_env[] = {NULL};
  execve(exe, p->args, p->env ? p->env : empty_env);
  return exec_error(errno, p->args[0], err);
}
