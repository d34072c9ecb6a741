/* lifecycle.h: private to the parent-side lifecycle of the container
 * backend (container.c, exec.c, clone.c, selfexe.c, backend.c).
 *
 * Process layout.  The common case (create/run where every namespace is
 * new, as with `runc spec`), as crun does it:
 *
 *   hvrun (P) --clone(CLONE_NEW*)--> init (I)
 *
 * I's first act is to join the container's cgroup (through `tasks` files
 * P opened for it, or clone3(CLONE_INTO_CGROUP) for cgroup2: see clone.c
 * for why not P writing cgroup.procs); P writes the uid/gid maps of a new
 * user namespace, then releases I with ONE message (NS_MSG_GO, carrying
 * I's pid as P sees it).  A cgroup namespace is unshared by I after that,
 * so it is rooted at the container's cgroup.
 *
 * When a namespace is joined by path, for `exec` (joins the namespaces of
 * the container's init) and for a time namespace (its offsets must be
 * written before any process is in it), a stage process is needed:
 *
 *   hvrun (P) --fork--> stage (S) --fork--> init / exec'd process (I)
 *
 * S joins the container's cgroup before it does anything else (as I
 * above; P does it for S when that is not possible).  S joins
 * the namespaces given by path (user first, mount last), unshares the new
 * ones (P writes the uid/gid maps of a new user namespace), writes the
 * time namespace offsets, forks I (the first process of the new pid and
 * time namespaces), reports I's pid and exits; P then sends I its pid
 * (NS_MSG_PID).  Either way P is a child subreaper, so I ends up P's
 * child; when P is `create` and exits, I moves on to P's own subreaper
 * (conmon, containerd-shim) exactly as with runc.  P, S and I talk over
 * one SOCK_SEQPACKET socketpair. */
#ifndef HVRUN_NS_LIFECYCLE_H
#define HVRUN_NS_LIFECYCLE_H
#include "ns_internal.h"
#include "../cgroups/cgroups.h"

/* ---- sync protocol (clone.c) ---- */
enum ns_msg_type {
  NS_MSG_GO = 1,     /* P -> S, or P -> I (value: I's pid): you are in the cgroup, go on */
  NS_MSG_USERMAP,    /* S -> P: write my uid/gid maps */
  NS_MSG_ACK,        /* P -> S/I: done */
  NS_MSG_PID,        /* S -> P: pid of I (value); P -> I: your pid as P sees it */
  NS_MSG_HOOKS,      /* I -> P: namespaces exist, run prestart/createRuntime
                      * (only sent when the config has such hooks) */
  NS_MSG_READY,      /* I -> P: created, now waiting for `start` */
  NS_MSG_ERROR,      /* either way: text is the error, value the exit status */
};
struct ns_msg {
  int32_t type;
  int32_t value;
  char text[2048];
};
int ns_sync_send(int fd, int type, int value, const char *text);
/* Receives one message; EOF is an error ("... exited during setup"). */
int ns_sync_recv(int fd, struct ns_msg *m, const char *peer, hv_error_t *err);
/* Child side: report err (and its status) over fd and _exit(status or 1). */
__attribute__((noreturn)) void ns_child_fail(int fd, hv_error_t *err);

/* ---- spawning into namespaces (clone.c) ---- */
struct ns_spawn {
  /* New namespaces and namespaces joined by path come from cfg; when
   * join_pid > 0, every namespace of that process that differs from ours is
   * joined instead (exec) and cfg only supplies nothing. */
  const struct hv_oci_config *cfg;
  pid_t join_pid;
  struct hv_cgroup *cg;         /* S is moved here before it runs; may be NULL */
  /* Runs in S before it joins any namespace (exec: connect to host sockets
   * such as the seccomp listener while they are reachable); may be NULL. */
  int (*before_join)(void *arg, hv_error_t *err);
  /* Runs in I with the child end of the socket, once I is in the cgroup,
   * with I's pid as P sees it; its return is the exit code. */
  int (*child_main)(void *arg, int sync_fd, pid_t host_pid);
  void *arg;
  /* out */
  pid_t pid;                    /* I as seen by P */
  int sync_fd;                  /* P's end, CLOEXEC; caller closes */
};
int ns_spawn(struct ns_spawn *s, hv_error_t *err);

/* ---- CVE-2019-5736 (selfexe.c) ---- */
/* If /proc/self/exe can be written through (see selfexe.c), re-exec hvrun
 * from a read-only detached mount of itself, or else from a sealed memfd
 * copy, with the same argv/environ (does not return on success).  Returns
 * <0 only if it could not do so. */
int hv_selfexe_ensure_sealed(char **argv, hv_error_t *err);
/* True when the running binary cannot be written through /proc/self/exe. */
bool hv_selfexe_is_sealed(void);

/* ---- shared helpers (container.c) ---- */
/* Is st->pid still the process we started (pid + start time)? */
bool ns_pid_alive(const struct hv_state *st);
/* Load the copy of config.json that create saved in the state dir. */
int ns_load_saved_config(struct hv_context *ctx, const struct hv_state *st,
                         struct hv_oci_config **out, hv_error_t *err);
/* Wait for `pid` (a child of ours), forwarding signals to it; returns the
 * status as a shell would print it. */
int ns_wait_forwarding(pid_t pid, int *exit_status, hv_error_t *err);
/* The OCI "container process state" JSON a seccomp notify listener gets
 * with the notify fd: pid is the process the filter is for. */
char *ns_listener_state_json(const struct hv_oci_seccomp *sc, const struct hv_state *st,
                             pid_t pid);
/* Write a pid file atomically (relative paths are relative to cwd). */
int ns_write_pid_file(const char *path, pid_t pid, hv_error_t *err);

/* ---- backend ops (container.c, exec.c), tabled in backend.c ---- */
int ns_container_create(struct hv_context *ctx, struct hv_oci_config *cfg,
                        const struct hv_create_opts *o, struct hv_state *st, hv_error_t *err);
int ns_container_start(struct hv_context *ctx, struct hv_oci_config *cfg, struct hv_state *st,
                       hv_error_t *err);
int ns_container_wait(struct hv_context *ctx, struct hv_state *st, int *exit_status,
                      hv_error_t *err);
int ns_container_kill(struct hv_context *ctx, struct hv_state *st, int sig, bool all,
                      hv_error_t *err);
int ns_container_destroy(struct hv_context *ctx, struct hv_state *st, bool force,
                         hv_error_t *err);
int ns_container_exec(struct hv_context *ctx, struct hv_oci_config *cfg, struct hv_state *st,
                      const struct hv_exec_opts *o, int *exit_status, hv_error_t *err);
int ns_container_pause(struct hv_context *ctx, struct hv_state *st, hv_error_t *err);
int ns_container_resume(struct hv_context *ctx, struct hv_state *st, hv_error_t *err);
int ns_container_ps(struct hv_context *ctx, struct hv_state *st, pid_t **pids, size_t *n,
                    hv_error_t *err);
int ns_container_update(struct hv_context *ctx, struct hv_state *st,
                        const struct hv_oci_resources *r, hv_error_t *err);
int ns_container_stats(struct hv_context *ctx, struct hv_state *st, json_t **out,
                       hv_error_t *err);
bool ns_container_is_paused(struct hv_context *ctx, struct hv_state *st);


#endif
