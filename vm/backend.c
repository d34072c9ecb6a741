/* backend.c: the VM backend's lifecycle ops (hv_backend_vm).
 *
 * create resolves what to boot (policy_vm.c), writes the initrd and the
 * root disk into the state dir, creates the VMM's cgroup and spawns the
 * jailed VMM (vmm_process.c), which waits on exec.fifo exactly as the
 * container backend's init does: "fifo present + VMM alive" is created,
 * "fifo gone + VMM alive" is running.  The state pid is the VMM; it exits
 * with the workload's status, so `run` and the one-shot wait on it.
 *
 * kill goes into the guest over the VMM's control socket; SIGKILL kills
 * the VMM (and so the VM).  pause/resume freeze the VMM's cgroup.  Every
 * file create makes lives in the state dir, and the cgroup path is saved
 * before the VMM exists, so `delete --force` undoes a create killed at any
 * point. */
#include "vm_backend.h"
#include "../images/images.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static const char *const state_files[] = {VMB_FIFO, VMB_SOCK, VMB_INITRD, VMB_DISK,
                                          VMB_KLOG, VMB_CONFIG, NULL};

static char *state_file(struct hv_context *ctx, const char *id, const char *name) {
  cleanup_free char *dir = hv_state_dir(ctx->store, id);
  return hv_xasprintf("%s/%s", dir, name);
}

static bool vmm_alive(const struct hv_state *st) {
  if (st->pid <= 0)
    return false;
  struct hv_state copy = *st;
  copy.status = HV_RUNNING;
  hv_state_refresh(&copy);
  return copy.status != HV_STOPPED;
}

static int open_cgroup(const struct hv_state *st, struct hv_cgroup **cg, hv_error_t *err) {
  if (!st->cgroup_path || !*st->cgroup_path)
    return hv_error(err, 0, "vm `%s` has no cgroup", st->id);
  return hv_cg_open(st->cgroup_path, cg, err);
}

static void thaw(const struct hv_state *st) {
  struct hv_cgroup *cg = NULL;
  if (st->cgroup_path && hv_cg_open(st->cgroup_path, &cg, NULL) == 0 && hv_cg_is_frozen(cg))
    hv_cg_freeze(cg, false, NULL);
  hv_cg_free(cg);
}

/* Reap the VMM if it is our child (run, one-shot), waiting a little for a
 * SIGKILL to land. */
static void reap(pid_t pid) {
  for (int i = 0; i < 200; i++) {
    pid_t r = waitpid(pid, NULL, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD))
      return;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

static void remove_files(struct hv_context *ctx, const char *id) {
  for (size_t i = 0; state_files[i]; i++) {
    cleanup_free char *f = state_file(ctx, id, state_files[i]);
    unlink(f);
  }
  cleanup_free char *jail = state_file(ctx, id, VMB_JAIL);
  rmdir(jail);
}

/* ---------------- create ---------------- */

static int root_disk(struct hv_context *ctx, const struct hv_oci_config *cfg,
                     const struct vmb_plan *p, const char *id, char **out, hv_error_t *err) {
  if (p->image_ref) {
    struct hv_image_store *s = NULL;
    struct hv_image *img = NULL;
    const char *dir = hv_image_store_dir(NULL);
    int rc = hv_image_store_open(dir, &s, err);
    if (rc == 0)
      rc = hv_image_lookup(s, p->image_ref, &img, err);
    if (rc == 0)
      rc = hv_image_erofs(s, img, out, err);
    hv_image_free(img);
    hv_image_store_close(s);
    return rc < 0 ? hv_error_wrap(err, "annotation " VMB_ANN_IMAGE " `%s`", p->image_ref) : 0;
  }
  if (!cfg->root.path)
    return hv_error(err, 0, "config.json: root.path: required by the vm backend");
  cleanup_free char *root = cfg->root.path[0] == '/' || !cfg->bundle
                                ? hv_xstrdup(cfg->root.path)
                                : hv_xasprintf("%s/%s", cfg->bundle, cfg->root.path);
  *out = state_file(ctx, id, VMB_DISK);
  if (hv_rootdisk_from_dir(root, *out, err) < 0) {
    free(*out);
    *out = NULL;
    return hv_error_wrap(err, "root.path");
  }
  return 0;
}

static void undo_create(struct hv_context *ctx, struct hv_state *st, struct hv_cgroup *cg) {
  hv_error_t e = NULL;
  if (st->pid > 0 && vmm_alive(st))
    kill(st->pid, SIGKILL);
  if (st->pid > 0)
    reap(st->pid);
  if (cg && hv_cg_destroy(cg, &e) < 0)
    hv_error_print(&e);
  remove_files(ctx, st->id);
}

static int vm_create(struct hv_context *ctx, struct hv_oci_config *cfg,
                     const struct hv_create_opts *o, struct hv_state *st, hv_error_t *err) {
  if (!cfg->process)
    return hv_error(err, 0, "config.json: process: required to create a container");
  if (!cfg->process->args || !cfg->process->args[0])
    return hv_error(err, 0, "config.json: process.args: must name the program to run");
  if (cfg->process->terminal && !o->console_socket)
    return hv_error(err, 0, "config.json: process.terminal is true but no --console-socket "
                            "was given");
  struct vmb_plan plan;
  if (vmb_plan_resolve(cfg, &plan, err) < 0) {
    vmb_plan_clear(&plan);
    return -1;
  }
  struct hv_cgroup *cg = NULL;
  cleanup_free char *disk = NULL;
  cleanup_free char *dir = hv_state_dir(ctx->store, o->id);
  cleanup_free char *fifo = hv_xasprintf("%s/" VMB_FIFO, dir);
  cleanup_free char *conf = hv_xasprintf("%s/" VMB_CONFIG, dir);
  cleanup_free char *initrd = hv_xasprintf("%s/" VMB_INITRD, dir);
  cleanup_free char *jail = hv_xasprintf("%s/" VMB_JAIL, dir);
  cleanup_free char *text = json_dumps(cfg->raw, JSON_COMPACT);
  if (!text) {
    hv_error(err, 0, "serialize config.json");
    goto fail;
  }
  if (hv_mkdir_p(dir, 0711, err) < 0 ||
      hv_write_file_atomic(AT_FDCWD, conf, text, strlen(text), 0600, err) < 0)
    goto fail;
  if (mkfifo(fifo, 0600) < 0 && errno != EEXIST) {
    hv_error(err, errno, "mkfifo `%s`", fifo);
    goto fail;
  }
  if (mkdir(jail, 0700) < 0 && errno != EEXIST) {
    hv_error(err, errno, "mkdir `%s`", jail);
    goto fail;
  }
  /* The guest init reads the config as hvrun resolved it (policy applied). */
  int irc = hv_initrd_write(initrd, plan.init, text, strlen(text), plan.kmods.mods, plan.kmods.n,
                            err);
  /* The VMM process inherits the plan: it must not carry the modules. */
  vm_kmods_drop_data(&plan.kmods);
  if (irc < 0 ||
      root_disk(ctx, cfg, &plan, o->id, &disk, err) < 0)
    goto fail;

  vmb_vmm_resources(&cfg->linux.resources, &plan);
  cleanup_free char *defcg = hv_cg_default_path(o->id, ctx->systemd_cgroup);
  const char *cgpath = cfg->linux.cgroups_path ? cfg->linux.cgroups_path : defcg;
  if (hv_cg_create_vmm(cgpath, o->id, &cfg->linux.resources, ctx->systemd_cgroup, &cg, err) < 0) {
    hv_error_wrap(err, "linux.cgroupsPath `%s`", cgpath);
    goto fail;
  }
  free(st->cgroup_path);
  st->cgroup_path = hv_xstrdup(hv_cg_path(cg));
  json_decref(st->extra);
  st->extra = json_pack("{s:s,s:i,s:I,s:s,s:s,s:b}", "engine", plan.engine, "vcpus",
                        (int)plan.vcpus, "mem_bytes", (json_int_t)plan.mem_bytes, "kernel",
                        plan.kernel, "root_disk", disk, "jail", plan.jail);
  if (hv_state_save(ctx->store, st, err) < 0)
    goto fail;

  struct vmb_spawn sp = {.plan = &plan,
                         .state_dir = dir,
                         .console_socket = o->console_socket,
                         .process = cfg->process,
                         .cg = cg,
                         .root_disk = disk,
                         .qemu_may_use_kvm = !hv_host_is_pvm() || (getenv("HVRUN_QEMU_ACCEL") &&
                                             !strcmp(getenv("HVRUN_QEMU_ACCEL"), "kvm")),
                         .host_is_pvm = hv_host_is_pvm(),
                         .oom_score_adj_set = cfg->process->has_oom_score_adj,
                         .oom_score_adj = cfg->process->oom_score_adj};
  int rc = vmb_vmm_spawn(&sp, err);
  if (sp.pid > 0) {
    st->pid = sp.pid;
    st->pid_start = hv_proc_starttime(sp.pid);
  }
  if (rc < 0 || hv_state_save(ctx->store, st, err) < 0)
    goto fail;
  const struct hv_oci_hooks *h = &cfg->hooks;
  if ((h->n_prestart && hv_hooks_run(h->prestart, h->n_prestart, "prestart", st, err) < 0) ||
      (h->n_create_runtime &&
       hv_hooks_run(h->create_runtime, h->n_create_runtime, "createRuntime", st, err) < 0))
    goto fail;
  if (o->pid_file && *o->pid_file) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d", st->pid);
    if (hv_write_file_atomic(AT_FDCWD, o->pid_file, buf, (size_t)n, 0644, err) < 0)
      goto fail;
  }
  st->status = HV_CREATED;
  if (hv_state_save(ctx->store, st, err) < 0)
    goto fail;
  hv_cg_free(cg);
  vmb_plan_clear(&plan);
  return 0;
fail:
  undo_create(ctx, st, cg);
  hv_cg_free(cg);
  vmb_plan_clear(&plan);
  if (o->pid_file)
    unlink(o->pid_file);
  return -1;
}

/* ---------------- start / wait ---------------- */

static int load_saved_config(struct hv_context *ctx, const struct hv_state *st,
                             struct hv_oci_config **out) {
  cleanup_free char *path = state_file(ctx, st->id, VMB_CONFIG);
  cleanup_free char *text = NULL;
  size_t len;
  if (hv_read_file(path, &text, &len, NULL) < 0 || hv_oci_parse(text, len, path, out, NULL) < 0)
    return -1;
  return 0;
}

static int vm_start(struct hv_context *ctx, struct hv_oci_config *cfg, struct hv_state *st,
                    hv_error_t *err) {
  (void)cfg; /* the saved copy is the one the VM was created from */
  if (!vmm_alive(st))
    return hv_error(err, 0, "cannot start vm `%s`: it is stopped", st->id);
  cleanup_free char *fifo = state_file(ctx, st->id, VMB_FIFO);
  cleanup_close int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return hv_error(err, 0, "cannot start vm `%s`: it is already running", st->id);
  if (fd < 0)
    return hv_error(err, errno, "cannot start vm `%s`: open `%s`", st->id, fifo);
  if (write(fd, "0", 1) != 1)
    return hv_error(err, errno, "cannot start vm `%s`: write `%s`", st->id, fifo);
  unlink(fifo);
  st->status = HV_RUNNING;
  struct hv_oci_config *own = NULL;
  if (load_saved_config(ctx, st, &own) == 0 && own->hooks.n_poststart) {
    hv_error_t e = NULL;
    if (hv_hooks_run(own->hooks.poststart, own->hooks.n_poststart, "poststart", st, &e) < 0) {
      hv_error_wrap(&e, "warning: poststart hook");
      hv_error_print(&e);
    }
  }
  if (own)
    hv_oci_free(own);
  return 0;
}

static int send_signal(struct hv_context *ctx, const struct hv_state *st, int sig,
                       hv_error_t *err) {
  cleanup_free char *sock = state_file(ctx, st->id, VMB_SOCK);
  char line[32];
  snprintf(line, sizeof line, "signal %d", sig);
  return vmb_control_request(sock, line, NULL, 0, err);
}

static const int wait_forwarded[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1,
                                     SIGUSR2, SIGWINCH, SIGALRM, SIGCONT, SIGPWR};

/* Wait for the VMM (our child: we are its subreaper), forwarding the
 * signals hvrun gets into the guest. */
struct forward_to_guest {
  struct hv_context *ctx;
  const struct hv_state *st;
};

static void forward_to_guest(int sig, void *opaque) {
  struct forward_to_guest *f = opaque;
  hv_error_t e = NULL;
  if (send_signal(f->ctx, f->st, sig, &e) < 0) {
    hv_debug("forward signal %d: %s", sig, e->msg);
    hv_error_release(&e);
  }
}

static int vm_wait(struct hv_context *ctx, struct hv_state *st, int *exit_status,
                   hv_error_t *err) {
  struct forward_to_guest f = {.ctx = ctx, .st = st};
  const struct hv_wait_forward how = {
      .signals = wait_forwarded,
      .n_signals = sizeof wait_forwarded / sizeof wait_forwarded[0],
      .noun = "VMM",
      .forward = forward_to_guest,
      .opaque = &f,
  };
  return hv_wait_forwarding(st->pid, &how, exit_status, err);
}

/* ---------------- kill / destroy ---------------- */

static int vm_kill(struct hv_context *ctx, struct hv_state *st, int sig, bool all,
                   hv_error_t *err) {
  (void)all; /* the guest init forwards to the workload's process group */
  if (!vmm_alive(st))
    return hv_error(err, 0, "vm `%s` is not running", st->id);
  if (sig == SIGKILL) {
    if (kill(st->pid, SIGKILL) < 0)
      return hv_error(err, errno, "kill the VMM of `%s` (pid %d)", st->id, st->pid);
    thaw(st); /* frozen tasks die only once thawed */
    return 0;
  }
  if (hv_cg_stored_is_frozen(st->cgroup_path))
    return hv_error(err, 0, "vm `%s` is paused: only SIGKILL reaches it (resume it first)",
                    st->id);
  if (send_signal(ctx, st, sig, err) < 0)
    return hv_error_wrap(err, "kill vm `%s`", st->id);
  return 0;
}

static int vm_destroy(struct hv_context *ctx, struct hv_state *st, bool force, hv_error_t *err) {
  (void)force; /* the CLI decides whether a live VM may go */
  struct hv_oci_config *cfg = NULL;
  if (load_saved_config(ctx, st, &cfg) < 0)
    cfg = NULL;
  if (vmm_alive(st))
    kill(st->pid, SIGKILL);
  int rc = 0;
  if (st->cgroup_path && *st->cgroup_path) {
    struct hv_cgroup *cg = NULL;
    if (hv_cg_open(st->cgroup_path, &cg, err) == 0) {
      if (hv_cg_is_frozen(cg))
        hv_cg_freeze(cg, false, NULL);
      /* Kills what is left in it (QEMU) and removes it. */
      if (hv_cg_destroy(cg, err) < 0)
        rc = -1;
    } else {
      hv_error_release(err); /* already gone */
    }
    hv_cg_free(cg);
  }
  if (st->pid > 0)
    reap(st->pid);
  if (cfg && st->pid > 0 && cfg->hooks.n_poststop) {
    hv_error_t e = NULL;
    st->status = HV_STOPPED;
    if (hv_hooks_run(cfg->hooks.poststop, cfg->hooks.n_poststop, "poststop", st, &e) < 0) {
      hv_error_wrap(&e, "warning: poststop hook");
      hv_error_print(&e);
    }
  }
  if (cfg)
    hv_oci_free(cfg);
  remove_files(ctx, st->id);
  return rc;
}

/* ---------------- exec / pause / resume / ps / update / stats ---------------- */

static int vm_exec(struct hv_context *ctx, struct hv_oci_config *cfg, struct hv_state *st,
                   const struct hv_exec_opts *o, int *exit_status, hv_error_t *err) {
  (void)cfg;
  if (!vmm_alive(st))
    return hv_error(err, 0, "exec into vm `%s`: it is not running", st->id);
  cleanup_free char *sock = state_file(ctx, st->id, VMB_SOCK);
  if (vmb_exec(sock, o, exit_status, err) < 0)
    return hv_error_wrap(err, "exec into vm `%s`", st->id);
  return 0;
}

static int freeze(struct hv_state *st, bool frozen, hv_error_t *err) {
  if (!vmm_alive(st))
    return hv_error(err, 0, "vm `%s` is not running", st->id);
  struct hv_cgroup *cg = NULL;
  int rc = open_cgroup(st, &cg, err);
  if (rc == 0)
    rc = hv_cg_freeze(cg, frozen, err);
  hv_cg_free(cg);
  return rc;
}

static int vm_pause(struct hv_context *ctx, struct hv_state *st, hv_error_t *err) {
  (void)ctx;
  return freeze(st, true, err);
}

static int vm_resume(struct hv_context *ctx, struct hv_state *st, hv_error_t *err) {
  (void)ctx;
  return freeze(st, false, err);
}

static bool vm_is_paused(struct hv_context *ctx, struct hv_state *st) {
  (void)ctx;
  return vmm_alive(st) && hv_cg_stored_is_frozen(st->cgroup_path);
}

/* Host pids: the VMM (and QEMU with that engine).  The guest's own pids
 * are another kernel's; stats reports the workload's as guest_pid. */
static int vm_ps(struct hv_context *ctx, struct hv_state *st, pid_t **pids, size_t *n,
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

static int vm_update(struct hv_context *ctx, struct hv_state *st, const struct hv_oci_resources *r,
                     hv_error_t *err) {
  (void)ctx;
  if (!vmm_alive(st))
    return hv_error(err, 0, "vm `%s` is not running", st->id);
  if (vmb_check_update(r, err) < 0)
    return -1;
  struct hv_cgroup *cg = NULL;
  int rc = open_cgroup(st, &cg, err);
  if (rc == 0)
    rc = hv_cg_update(cg, r, err);
  hv_cg_free(cg);
  return rc;
}

static int vm_stats(struct hv_context *ctx, struct hv_state *st, json_t **out, hv_error_t *err) {
  if (!vmm_alive(st))
    return hv_error(err, 0, "vm `%s` is not running", st->id);
  struct hv_cgroup *cg = NULL;
  int rc = open_cgroup(st, &cg, err);
  if (rc == 0)
    rc = hv_cg_stats(cg, out, err);
  hv_cg_free(cg);
  if (rc < 0)
    return -1;
  cleanup_free char *sock = state_file(ctx, st->id, VMB_SOCK);
  char reply[64];
  int gpid = 0;
  if (vmb_control_request(sock, "guest-pid", reply, sizeof reply, NULL) == 0)
    sscanf(reply, "pid %d", &gpid);
  json_t *vm = json_pack("{s:i}", "guest_pid", gpid);
  if (st->extra)
    json_object_update(vm, st->extra);
  json_object_set_new(*out, "vm", vm);
  /* The workload's own cgroup in the guest (v2): its memory, pids, cpu and
   * OOM kills, in the same shape as a container's. */
  cleanup_free char *gs = NULL;
  json_t *guest = NULL;
  if (gpid > 0 && vmb_control_query(sock, "guest-stats", &gs, NULL) == 0 &&
      !strncmp(gs, "stats ", 6))
    guest = json_loads(gs + 6, JSON_DECODE_ANY, NULL);
  json_object_set_new(*out, "guest", guest ? guest : json_null());
  return 0;
}

const struct hv_backend hv_backend_vm = {
    .name = "vm",
    .create = vm_create,
    .start = vm_start,
    .wait = vm_wait,
    .kill = vm_kill,
    .destroy = vm_destroy,
    .exec = vm_exec,
    .pause = vm_pause,
    .resume = vm_resume,
    .ps = vm_ps,
    .update = vm_update,
    .stats = vm_stats,
    .is_paused = vm_is_paused,
    .features = vmb_features,
};
