/* container.c: parent-side lifecycle of the container backend: create,
 * start, wait, kill, destroy, pause/resume, ps, update, stats.
 *
 * create leaves the container's init blocked in read() on
 * <root>/<id>/exec.fifo.  hvrun opens the fifo O_RDWR (never blocks) before
 * it forks, so the init inherits it: no path lookup from inside the
 * container's namespaces (a user namespace's root may not even be allowed
 * to traverse --root), and nothing to find after pivot_root.  `start`
 * opens the fifo O_WRONLY|O_NONBLOCK (ENXIO if nobody waits on it any
 * more), writes one byte and removes the fifo: "fifo present + init alive"
 * is "created", "fifo gone + init alive" is "running".  `run` and the
 * one-shots (hv_container_start_on_create) make no fifo: their init goes
 * on to exec as soon as it is set up.
 *
 * Everything create makes is recorded in the state before it is made
 * (cgroup path first, then the pid), so `delete --force` can undo a
 * create that was killed at any point. */
#include "lifecycle.h"
#include "sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <linux/keyctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>


#define FIFO_NAME "exec.fifo"
#define SAVED_CONFIG "config.json"

/* ---------------- helpers ---------------- */

bool ns_pid_alive(const struct hv_state *st) {
  struct hv_proc_stat ps;
  if (hv_proc_stat(st->pid, &ps) < 0)
    return false;
  if (st->pid_start && ps.starttime != st->pid_start)
    return false; /* pid reused */
  return ps.state != 'Z' && ps.state != 'X';
}

int ns_write_pid_file(const char *path, pid_t pid, hv_error_t *err) {
  if (!path || !*path)
    return 0;
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%d", pid);
  /* Runtime state (it names a live process): no fsync. */
  return hv_write_runtime_file(AT_FDCWD, path, buf, (size_t)n, 0644, err);
}

int ns_load_saved_config(struct hv_context *ctx, const struct hv_state *st,
                         struct hv_oci_config **out, hv_error_t *err) {
  cleanup_free char *dir = hv_state_dir(ctx->store, st->id);
  cleanup_free char *path = hv_xasprintf("%s/" SAVED_CONFIG, dir);
  cleanup_free char *text = NULL;
  size_t len;
  if (hv_read_file(path, &text, &len, err) < 0)
    return -1;
  if (hv_oci_parse(text, len, path, out, err) < 0)
    return -1;
  if (!(*out)->bundle && st->bundle)
    (*out)->bundle = hv_xstrdup(st->bundle);
  return 0;
}

static char *state_file(struct hv_context *ctx, const char *id, const char *name) {
  cleanup_free char *dir = hv_state_dir(ctx->store, id);
  return hv_xasprintf("%s/%s", dir, name);
}

static int open_cgroup(const struct hv_state *st, struct hv_cgroup **cg, hv_error_t *err) {
  if (!st->cgroup_path || !*st->cgroup_path)
    return hv_error(err, 0, "container `%s` has no cgroup", st->id);
  return hv_cg_open(st->cgroup_path, cg, err);
}

static int require_alive(const struct hv_state *st, hv_error_t *err) {
  if (!ns_pid_alive(st))
    return hv_error(err, 0, "container `%s` is not running", st->id);
  return 0;
}

/* ---------------- the container's init (runs in I) ---------------- */

struct init_args {
  struct hv_context *ctx;
  struct hv_oci_config *cfg;
  const struct hv_create_opts *o;
  struct hv_state *st;
  int fifo;                     /* exec.fifo, O_RDWR, inherited; -1: start at once */
};

/* The state a seccomp notify listener receives with the notify fd (OCI
 * "container process state"). */
char *ns_listener_state_json(const struct hv_oci_seccomp *sc, const struct hv_state *st,
                             pid_t pid) {
  json_t *j = json_pack("{s:s,s:[s],s:i,s:s,s:o}", "ociVersion", "1.2.0", "fds", "seccompFd",
                        "pid", (int)pid, "metadata",
                        sc && sc->listener_metadata ? sc->listener_metadata : "", "state",
                        hv_state_to_json(st));
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  return s;
}

static int init_main(void *arg, int fd, pid_t host_pid) {
  struct init_args *a = arg;
  hv_error_t err = NULL;
  struct ns_msg m;
  int keep[] = {fd, a->fifo};
  if (ns_close_fds(a->o->preserve_fds, keep, a->fifo >= 0 ? 2 : 1, &err) < 0)
    ns_child_fail(fd, &err);
  /* Our pid as hvrun sees it (for the hooks' state). */
  a->st->pid = host_pid;
  a->st->status = HV_CREATING;

  int fifo = a->fifo;
  /* A host path: open it before pivot_root takes the host away. */
  int console = -1;
  if (a->cfg->process->terminal && a->o->console_socket) {
    console = open(a->o->console_socket, O_PATH | O_CLOEXEC);
    if (console < 0) {
      hv_error(&err, errno, "--console-socket `%s`", a->o->console_socket);
      ns_child_fail(fd, &err);
    }
  }
  /* Like runc: a session keyring of its own, so the container cannot see
   * or use the keys of whoever ran hvrun (--no-new-keyring keeps ours). */
  if (!a->o->no_new_keyring && syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 &&
      errno != ENOSYS && errno != EPERM && errno != EDQUOT) {
    hv_error(&err, errno, "create a session keyring (--no-new-keyring skips it)");
    ns_child_fail(fd, &err);
  }
  const struct hv_oci_hooks *h = &a->cfg->hooks;
  /* prestart/createRuntime run in hvrun, once our namespaces exist; the
   * round trip is only paid when there are such hooks. */
  if ((h->n_prestart || h->n_create_runtime) &&
      (ns_sync_send(fd, NS_MSG_HOOKS, 0, NULL) < 0 || ns_sync_recv(fd, &m, "hvrun", &err) < 0))
    _exit(1);
  if (h->n_create_container &&
      hv_hooks_run(h->create_container, h->n_create_container, "createContainer", a->st, &err) < 0)
    ns_child_fail(fd, &err);
  /* The listener socket is a host path: connect while it is reachable. */
  if (ns_seccomp_uses_notify(a->cfg->linux.seccomp)) {
    cleanup_free char *state = ns_listener_state_json(a->cfg->linux.seccomp, a->st, host_pid);
    if (ns_seccomp_listener_prepare(a->cfg->linux.seccomp, state, &err) < 0)
      ns_child_fail(fd, &err);
  }
  if (ns_setup_rootfs(a->cfg, a->o->no_pivot, &err) < 0)
    ns_child_fail(fd, &err);
  if (console >= 0) {
    /* connect() follows the /proc magic link to the host socket. */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", console);
    if (ns_setup_console(path, a->cfg->process, &err) < 0)
      ns_child_fail(fd, &err);
    close(console);
  }
  if (ns_sync_send(fd, NS_MSG_READY, 0, NULL) < 0)
    _exit(1);
  close(fd);

  if (fifo >= 0) { /* wait for `start` */
    char c;
    ssize_t r;
    while ((r = read(fifo, &c, 1)) < 0 && errno == EINTR)
      ;
    close(fifo);
    if (r != 1)
      _exit(1);
  }
  a->st->status = HV_RUNNING;
  if (h->n_start_container &&
      hv_hooks_run(h->start_container, h->n_start_container, "startContainer", a->st, &err) < 0)
    return hv_error_print(&err);
  ns_finalize_and_exec(a->cfg->process, a->cfg->linux.seccomp, &err);
  /* 127: not found, 126: not executable (set by ns_finalize_and_exec),
   * else 1; hvrun run/one-shot exits with it. */
  return hv_error_print(&err);
}

/* ---------------- create ---------------- */

static bool start_on_create;

/* The container this process created, and its config, for a destroy by
 * the same process (run, one-shot): the caller keeps cfg alive until then. */
static struct {
  char *id;
  struct hv_oci_config *cfg;
} created_here;

void hv_container_start_on_create(bool on) { start_on_create = on; }

static const struct hv_oci_config *validated_cfg;

int hv_container_validate(const struct hv_oci_config *cfg, hv_error_t *err) {
  if (ns_validate_config(cfg, err) < 0)
    return -1;
  validated_cfg = cfg;
  return 0;
}

static void undo_create(struct hv_context *ctx, struct hv_state *st, struct hv_cgroup *cg) {
  hv_error_t e = NULL;
  if (st->pid > 0 && ns_pid_alive(st))
    kill(st->pid, SIGKILL);
  if (st->pid > 0)
    waitpid(st->pid, NULL, 0);
  if (cg && hv_cg_destroy(cg, &e) < 0)
    hv_error_print(&e);
  cleanup_free char *fifo = state_file(ctx, st->id, FIFO_NAME);
  cleanup_free char *conf = state_file(ctx, st->id, SAVED_CONFIG);
  unlink(fifo);
  unlink(conf);
}

/* The cgroup layer names the field itself when the resources are wrong
 * ("linux.resources.memory.limit: ..."); only errors about the path need
 * the path as context. */
static int cgroup_error(hv_error_t *err, const char *cgpath) {
  if (err && *err && strncmp((*err)->msg, "linux.", 6) == 0)
    return -1;
  return hv_error_wrap(err, "linux.cgroupsPath `%s`", cgpath);
}

int ns_container_create(struct hv_context *ctx, struct hv_oci_config *cfg,
                        const struct hv_create_opts *o, struct hv_state *st, hv_error_t *err) {
  if (!cfg->process)
    return hv_error(err, 0, "config.json: process: required to create a container");
  if (!cfg->process->args || !cfg->process->args[0])
    return hv_error(err, 0, "config.json: process.args: must name the program to run");
  if (cfg->process->terminal && !o->console_socket)
    return hv_error(err, 0, "config.json: process.terminal is true but no --console-socket "
                            "was given");
  /* Everything the container backend alone interprets (mount options,
   * sysctls, devices, seccomp) is checked before anything is made (the
   * CLI already did, before it reserved the id). */
  if (cfg != validated_cfg && ns_validate_config(cfg, err) < 0)
    return -1;
  /* hv_state_create made it. */
  cleanup_free char *dir = hv_state_dir(ctx->store, o->id);
  cleanup_free char *fifo = hv_xasprintf("%s/" FIFO_NAME, dir);
  /* exec and delete (poststop hooks) need the config even if the bundle
   * changes or goes away, as runc keeps it in its state.  Runtime state:
   * no fsync (see hv_write_runtime_file). */
  cleanup_free char *text = json_dumps(cfg->raw, JSON_COMPACT);
  if (!text)
    return hv_error(err, 0, "serialize config.json");
  cleanup_close int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return hv_error(err, errno, "open `%s`", dir);
  if (hv_write_runtime_file(dirfd, SAVED_CONFIG, text, strlen(text), 0600, err) < 0)
    return -1;
  /* create + start (run, one-shots): nobody waits between the two, so the
   * init is told to go on at once (-1: no fifo) and no fifo is made. */
  bool run_now = start_on_create;
  if (!run_now && mkfifoat(dirfd, FIFO_NAME, 0600) < 0 && errno != EEXIST) {
    unlinkat(dirfd, SAVED_CONFIG, 0);
    return hv_error(err, errno, "mkfifo `%s`", fifo);
  }

  /* No state save between here and READY: if hvrun is killed meanwhile,
   * delete finds the cgroup again from the saved config (destroy), and
   * the init, blocked on the sync socket, exits on its EOF. */
  cleanup_free char *defcg = hv_cg_default_path(o->id, ctx->systemd_cgroup);
  const char *cgpath = cfg->linux.cgroups_path ? cfg->linux.cgroups_path : defcg;
  struct hv_cgroup *cg = NULL;
  /* Declared before the first `goto fail` so its cleanup never sees garbage. */
  cleanup_close int fd = -1;
  if (hv_cg_create(cgpath, o->id, &cfg->linux.resources, ctx->systemd_cgroup, &cg, err) < 0) {
    undo_create(ctx, st, NULL);
    return cgroup_error(err, cgpath);
  }
  free(st->cgroup_path);
  st->cgroup_path = hv_xstrdup(hv_cg_path(cg));

  struct init_args a = {ctx, cfg, o, st,
                        run_now ? -1 : openat(dirfd, FIFO_NAME, O_RDWR | O_CLOEXEC)};
  if (!run_now && a.fifo < 0) {
    hv_error(err, errno, "open `%s`", fifo);
    goto fail;
  }
  struct ns_spawn sp = {.cfg = cfg, .cg = cg, .child_main = init_main, .arg = &a};
  int spawned = ns_spawn(&sp, err);
  if (a.fifo >= 0)
    close(a.fifo); /* the init has its own copy; `start` must be its only peer */
  if (spawned < 0)
    goto fail;
  /* With run_now the init goes on to exec as soon as it has said READY,
   * while we save the state. */
  bool preloaded = run_now;
  fd = sp.sync_fd;
  st->pid = sp.pid;
  /* While the init sets itself up.  With a preloaded start, nothing may
   * fail after READY (the workload is already running), so the pid file
   * is written now. */
  st->pid_start = hv_proc_starttime(sp.pid);
  if (preloaded && ns_write_pid_file(o->pid_file, st->pid, err) < 0)
    goto fail;
  for (;;) {
    struct ns_msg m;
    if (ns_sync_recv(fd, &m, "container init", err) < 0)
      goto fail;
    if (m.type == NS_MSG_READY)
      break;
    if (m.type == NS_MSG_HOOKS) {
      /* Runtime namespace, after the container's namespaces exist. */
      const struct hv_oci_hooks *h = &cfg->hooks;
      if ((h->n_prestart && hv_hooks_run(h->prestart, h->n_prestart, "prestart", st, err) < 0) ||
          (h->n_create_runtime &&
           hv_hooks_run(h->create_runtime, h->n_create_runtime, "createRuntime", st, err) < 0)) {
        ns_sync_send(fd, NS_MSG_ERROR, 0, "hook failed");
        goto fail;
      }
      ns_sync_send(fd, NS_MSG_ACK, 0, NULL);
    }
  }
  st->status = HV_CREATED;
  free(created_here.id);
  created_here.id = hv_xstrdup(st->id);
  created_here.cfg = cfg;
  if (preloaded) {
    /* The caller starts it right away and saves the "running" state. */
    st->extra = st->extra ? st->extra : json_object();
    json_object_set_new(st->extra, "started_on_create", json_true());
    hv_cg_free(cg);
    return 0;
  }
  if (ns_write_pid_file(o->pid_file, st->pid, err) < 0)
    goto fail;
  if (hv_state_save(ctx->store, st, err) < 0)
    goto fail;
  hv_cg_free(cg);
  return 0;
fail:
  undo_create(ctx, st, cg);
  hv_cg_free(cg);
  if (o->pid_file)
    unlink(o->pid_file);
  return -1;
}

/* ---------------- start / wait ---------------- */

int ns_container_start(struct hv_context *ctx, struct hv_oci_config *cfg, struct hv_state *st,
                           hv_error_t *err) {
  cleanup_free char *fifo = NULL;
  json_t *preloaded = st->extra ? json_object_get(st->extra, "started_on_create") : NULL;
  if (preloaded) {
    /* create told the init to go on: the workload may even be done by now. */
    json_object_del(st->extra, "started_on_create");
    if (!json_object_size(st->extra)) {
      json_decref(st->extra);
      st->extra = NULL;
    }
    st->status = HV_RUNNING;
    goto started;
  }
  fifo = state_file(ctx, st->id, FIFO_NAME);
  if (!ns_pid_alive(st))
    return hv_error(err, 0, "cannot start container `%s`: it is stopped", st->id);
  cleanup_close int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return hv_error(err, 0, "cannot start container `%s`: it is already running", st->id);
  if (fd < 0)
    return hv_error(err, errno, "cannot start container `%s`: open `%s`", st->id, fifo);
  if (write(fd, "0", 1) != 1)
    return hv_error(err, errno, "cannot start container `%s`: write `%s`", st->id, fifo);
  unlink(fifo);
  st->status = HV_RUNNING;
started:;
  struct hv_oci_config *own = NULL;
  if (!cfg && ns_load_saved_config(ctx, st, &own, NULL) == 0)
    cfg = own;
  if (cfg && cfg->hooks.n_poststart) {
    hv_error_t e = NULL;
    /* Like runc: a failing poststart hook is reported, the container runs. */
    if (hv_hooks_run(cfg->hooks.poststart, cfg->hooks.n_poststart, "poststart", st, &e) < 0) {
      hv_error_wrap(&e, "warning: poststart hook");
      hv_error_print(&e);
    }
  }
  if (own)
    hv_oci_free(own);
  return 0;
}

static const int forwarded_signals[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2,
                                        SIGWINCH, SIGALRM, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU,
                                        SIGVTALRM, SIGPROF, SIGPWR,  SIGXCPU, SIGXFSZ};

/* A container's pid 1 ignores signals it has no handler for, so a second
 * Ctrl-C (SIGINT) means "stop it anyway". */
struct forward_to_pid {
  pid_t pid;
  int interrupts;
};

static void forward_to_pid(int sig, void *opaque) {
  struct forward_to_pid *f = opaque;
  if (sig == SIGINT && ++f->interrupts >= 2)
    sig = SIGKILL;
  kill(f->pid, sig);
}

int ns_wait_forwarding(pid_t pid, int *exit_status, hv_error_t *err) {
  struct forward_to_pid f = {.pid = pid};
  const struct hv_wait_forward how = {
      .signals = forwarded_signals,
      .n_signals = sizeof forwarded_signals / sizeof forwarded_signals[0],
      .noun = "process",
      .forward = forward_to_pid,
      .opaque = &f,
  };
  return hv_wait_forwarding(pid, &how, exit_status, err);
}

int ns_container_wait(struct hv_context *ctx, struct hv_state *st, int *exit_status,
                          hv_error_t *err) {
  (void)ctx;
  return ns_wait_forwarding(st->pid, exit_status, err);
}

/* ---------------- kill / destroy ---------------- */

int ns_container_kill(struct hv_context *ctx, struct hv_state *st, int sig, bool all,
                          hv_error_t *err) {
  (void)ctx;
  if (!ns_pid_alive(st))
    return hv_error(err, 0, "container `%s` is not running", st->id);
  if (all) {
    struct hv_cgroup *cg = NULL;
    pid_t *pids = NULL;
    size_t n = 0;
    if (open_cgroup(st, &cg, err) < 0 || hv_cg_pids(cg, &pids, &n, err) < 0) {
      hv_cg_free(cg);
      return -1;
    }
    for (size_t i = 0; i < n; i++)
      kill(pids[i], sig);
    free(pids);
    /* Frozen tasks only act on SIGKILL once thawed. */
    if (sig == SIGKILL && hv_cg_is_frozen(cg))
      hv_cg_freeze(cg, false, NULL);
    hv_cg_free(cg);
    return 0;
  }
  if (kill(st->pid, sig) < 0)
    return hv_error(err, errno, "kill container `%s` (pid %d)", st->id, st->pid);
  if (sig == SIGKILL && hv_cg_stored_is_frozen(st->cgroup_path)) {
    struct hv_cgroup *cg = NULL;
    if (hv_cg_open(st->cgroup_path, &cg, NULL) == 0)
      hv_cg_freeze(cg, false, NULL);
    hv_cg_free(cg);
  }
  return 0;
}

int ns_container_destroy(struct hv_context *ctx, struct hv_state *st, bool force,
                             hv_error_t *err) {
  (void)force; /* the CLI decides whether a live container may go */
  /* `run` destroys what it created: its config is still in memory. */
  struct hv_oci_config *cfg = NULL;
  bool own_cfg = false;
  if (created_here.cfg && created_here.id && st->id && strcmp(created_here.id, st->id) == 0)
    cfg = created_here.cfg;
  else
    own_cfg = ns_load_saved_config(ctx, st, &cfg, NULL) == 0;
  free(created_here.id);
  created_here.id = NULL;
  created_here.cfg = NULL;
  if (ns_pid_alive(st))
    kill(st->pid, SIGKILL);
  int rc = 0;
  if (st->cgroup_path && *st->cgroup_path) {
    struct hv_cgroup *cg = NULL;
    if (hv_cg_open(st->cgroup_path, &cg, err) == 0) {
      if (hv_cg_is_frozen(cg))
        hv_cg_freeze(cg, false, NULL);
      if (hv_cg_destroy(cg, err) < 0)
        rc = -1;
    } else {
      /* Already gone (an earlier delete was interrupted): fine. */
      hv_error_release(err);
    }
    hv_cg_free(cg);
  } else if (cfg) {
    /* create was killed between making the cgroup and recording it: find
     * it again from the saved config (re-creating it if it never was). */
    cleanup_free char *defcg = hv_cg_default_path(st->id, ctx->systemd_cgroup);
    const char *cgpath = cfg->linux.cgroups_path ? cfg->linux.cgroups_path : defcg;
    struct hv_oci_resources none;
    memset(&none, 0, sizeof none);
    struct hv_cgroup *cg = NULL;
    if (hv_cg_create(cgpath, st->id, &none, ctx->systemd_cgroup, &cg, NULL) == 0)
      hv_cg_destroy(cg, NULL);
    hv_cg_free(cg);
  }
  /* Our own child (run): reap it so nothing is left as a zombie. */
  if (st->pid > 0)
    waitpid(st->pid, NULL, WNOHANG);
  if (cfg && st->pid > 0 && cfg->hooks.n_poststop) {
    hv_error_t e = NULL;
    st->status = HV_STOPPED;
    if (hv_hooks_run(cfg->hooks.poststop, cfg->hooks.n_poststop, "poststop", st, &e) < 0) {
      hv_error_wrap(&e, "warning: poststop hook");
      hv_error_print(&e);
    }
  }
  if (own_cfg)
    hv_oci_free(cfg);
  cleanup_free char *fifo = state_file(ctx, st->id, FIFO_NAME);
  cleanup_free char *conf = state_file(ctx, st->id, SAVED_CONFIG);
  unlink(fifo);
  unlink(conf);
  return rc;
}

/* ---------------- pause / resume / ps / update / stats ---------------- */

static int freeze(struct hv_state *st, bool frozen, hv_error_t *err) {
  if (require_alive(st, err) < 0)
    return -1;
  struct hv_cgroup *cg = NULL;
  int rc = open_cgroup(st, &cg, err);
  if (rc == 0)
    rc = hv_cg_freeze(cg, frozen, err);
  hv_cg_free(cg);
  return rc;
}

int ns_container_pause(struct hv_context *ctx, struct hv_state *st, hv_error_t *err) {
  (void)ctx;
  return freeze(st, true, err);
}

int ns_container_resume(struct hv_context *ctx, struct hv_state *st, hv_error_t *err) {
  (void)ctx;
  return freeze(st, false, err);
}

int ns_container_ps(struct hv_context *ctx, struct hv_state *st, pid_t **pids, size_t *n,
                        hv_error_t *err) {
  (void)ctx;
  *pids = NULL;
  *n = 0;
  if (!st->cgroup_path)
    return 0;
  struct hv_cgroup *cg = NULL;
  int rc = open_cgroup(st, &cg, err);
  if (rc == 0)
    rc = hv_cg_pids(cg, pids, n, err);
  hv_cg_free(cg);
  return rc;
}

int ns_container_update(struct hv_context *ctx, struct hv_state *st,
                            const struct hv_oci_resources *r, hv_error_t *err) {
  (void)ctx;
  if (require_alive(st, err) < 0)
    return -1;
  struct hv_cgroup *cg = NULL;
  int rc = open_cgroup(st, &cg, err);
  if (rc == 0)
    rc = hv_cg_update(cg, r, err);
  hv_cg_free(cg);
  return rc;
}

int ns_container_stats(struct hv_context *ctx, struct hv_state *st, json_t **out,
                           hv_error_t *err) {
  (void)ctx;
  if (require_alive(st, err) < 0)
    return -1;
  struct hv_cgroup *cg = NULL;
  int rc = open_cgroup(st, &cg, err);
  if (rc == 0)
    rc = hv_cg_stats(cg, out, err);
  hv_cg_free(cg);
  return rc;
}

bool ns_container_is_paused(struct hv_context *ctx, struct hv_state *st) {
  (void)ctx;
  return ns_pid_alive(st) && hv_cg_stored_is_frozen(st->cgroup_path);
}
