/* exec.c: run another process in a running container.
 *
 * The stage process (clone.c) is moved into the container's cgroup, joins
 * every namespace of the container's init that differs from ours (user
 * first, mount last; pid and time apply to its child) and forks the new
 * process, which then does what the init does right before its exec:
 * console, fd hygiene, ns_finalize_and_exec.  The sync socket is CLOEXEC,
 * so hvrun learns that the execve succeeded from EOF, and any earlier
 * failure arrives as an error message (e.g. "executable not found"). */
#include "lifecycle.h"
#include "sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

struct exec_args {
  const struct hv_exec_opts *o;
  const struct hv_oci_seccomp *seccomp;
  const struct hv_state *st;
  int console;                  /* O_PATH fd of --console-socket, or -1 */
};

/* In the stage, before setns into the container's mount namespace: the
 * seccomp listener socket is a host path. */
static int exec_before_join(void *arg, hv_error_t *err) {
  struct exec_args *a = arg;
  if (!ns_seccomp_uses_notify(a->seccomp))
    return 0;
  return ns_seccomp_listener_prepare(a->seccomp, NULL, err);
}

static int exec_main(void *arg, int fd, pid_t host_pid) {
  struct exec_args *a = arg;
  hv_error_t err = NULL;
  if (ns_seccomp_uses_notify(a->seccomp)) {
    cleanup_free char *state = ns_listener_state_json(a->seccomp, a->st, host_pid);
    if (ns_seccomp_listener_prepare(a->seccomp, state, &err) < 0)
      ns_child_fail(fd, &err);
  }
  int keep[] = {fd, a->console};
  if (ns_close_fds(a->o->preserve_fds, keep, a->console >= 0 ? 2 : 1, &err) < 0)
    ns_child_fail(fd, &err);
  if (a->console >= 0) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", a->console);
    if (ns_setup_console(path, a->o->process, &err) < 0)
      ns_child_fail(fd, &err);
    close(a->console);
  }
  ns_finalize_and_exec(a->o->process, a->seccomp, &err);
  ns_child_fail(fd, &err);
}

int ns_container_exec(struct hv_context *ctx, struct hv_oci_config *cfg, struct hv_state *st,
                      const struct hv_exec_opts *o, int *exit_status, hv_error_t *err) {
  *exit_status = 0;
  if (!ns_pid_alive(st))
    return hv_error(err, 0, "cannot exec in container `%s`: it is not running", st->id);
  if (ns_container_is_paused(ctx, st))
    return hv_error(err, 0, "cannot exec in container `%s`: it is paused", st->id);
  if (!o->process || !o->process->args || !o->process->args[0])
    return hv_error(err, 0, "exec: no command given");
  if (o->process->terminal && !o->console_socket)
    return hv_error(err, 0, "exec: a terminal was requested but no --console-socket was given");

  struct hv_oci_config *own = NULL;
  if (!cfg) {
    if (ns_load_saved_config(ctx, st, &own, err) < 0)
      return -1;
    cfg = own;
  }
  struct hv_cgroup *cg = NULL;
  if (st->cgroup_path && hv_cg_open(st->cgroup_path, &cg, err) < 0) {
    if (own)
      hv_oci_free(own);
    return -1;
  }
  struct exec_args a = {o, cfg->linux.seccomp, st, -1};
  int rc = 0;
  if (o->process->terminal) {
    a.console = open(o->console_socket, O_PATH | O_CLOEXEC);
    if (a.console < 0) {
      rc = hv_error(err, errno, "--console-socket `%s`", o->console_socket);
      goto out;
    }
  }
  struct ns_spawn sp = {.join_pid = st->pid, .cg = cg, .before_join = exec_before_join,
                        .child_main = exec_main, .arg = &a};
  if (ns_spawn(&sp, err) < 0) {
    rc = -1;
    goto out;
  }
  /* EOF: execve happened (the socket is CLOEXEC).  A message: it failed. */
  struct ns_msg m;
  ssize_t r;
  do
    r = recv(sp.sync_fd, &m, sizeof m, 0);
  while (r < 0 && errno == EINTR);
  close(sp.sync_fd);
  if (r > 0) {
    m.text[sizeof m.text - 1] = 0;
    waitpid(sp.pid, NULL, 0);
    rc = hv_error(err, 0, "exec in container `%s`: %s", st->id, m.text);
    /* 127 (not found) / 126 (not executable), as a shell and runc. */
    if (err && *err && m.type == NS_MSG_ERROR && m.value > 0 && m.value < 256)
      (*err)->status = m.value;
    goto out;
  }
  if (ns_write_pid_file(o->pid_file, sp.pid, err) < 0) {
    kill(sp.pid, SIGKILL);
    waitpid(sp.pid, NULL, 0);
    rc = -1;
    goto out;
  }
  if (!o->detach)
    rc = ns_wait_forwarding(sp.pid, exit_status, err);
out:
  if (a.console >= 0)
    close(a.console);
  hv_cg_free(cg);
  if (own)
    hv_oci_free(own);
  return rc;
}
