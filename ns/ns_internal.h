/* ns_internal.h: contract inside ns/ between the parent-side lifecycle
 * (container.c, exec.c: clone, sync, fifo, kill, delete, ps) and the
 * child-side sandbox setup (rootfs.c, mounts.c, devices.c, caps.c,
 * seccomp.c, rlimits.c, user.c, console.c, sysctl.c). */
#ifndef HVRUN_NS_INTERNAL_H
#define HVRUN_NS_INTERNAL_H
#include "ns.h"

/* Called in the container's init after clone() into the new namespaces
 * (and after uid/gid maps are written by the parent, when a user ns is
 * used), before pivot_root: sets up the mount namespace (rootfsPropagation,
 * bind of root.path, mounts, default devices + linux.devices, /dev
 * symlinks, /dev/ptmx), then pivot_root (or chroot if no_pivot), masked and
 * readonly paths, root.readonly, hostname/domainname, sysctl. */
int ns_setup_rootfs(const struct hv_oci_config *cfg, bool no_pivot, hv_error_t *err);

/* Called last, right before execve, in init or in an exec'd process
 * (which has already joined the namespaces with setns): oomScoreAdj,
 * rlimits, setgroups/setgid/setuid (keeping caps across the switch),
 * umask, cwd (resolved inside the rootfs; never outside it), capabilities,
 * no_new_privs, and seccomp last.  On success it does not return: it
 * execve()s process->args with process->env, args[0] looked up in the
 * container's PATH.  On failure it returns <0 with err filled; err->status
 * is 127 when the program was not found and 126 when it was found but
 * could not be executed (the shell's convention), 0 for any other error. */
int ns_finalize_and_exec(const struct hv_oci_process *p, const struct hv_oci_seccomp *seccomp,
                         hv_error_t *err);

/* Terminal: open a new pty pair (in the container's devpts when called
 * inside it), make the slave the controlling terminal and stdio of the
 * calling process, and send the master to `console_socket`. */
int ns_setup_console(const char *console_socket, const struct hv_oci_process *p,
                     hv_error_t *err);

/* Close every fd >= 3 + preserve_fds except `keep` (set O_CLOEXEC on the
 * rest as a second line of defence): no host fd leaks in (CVE-2024-21626). */
int ns_close_fds(int preserve_fds, const int *keep, size_t n_keep, hv_error_t *err);

/* ---- additions by the sandbox side (B1) ---- */

/* Check, before anything is created, the parts of the config only the
 * container backend interprets: mount options, linux.sysctl keys against
 * the namespaces in use, hostname/domainname without a uts namespace,
 * device types, rootfsPropagation, seccomp actions/operators/flags.  One
 * clear error naming the field. */
int ns_validate_config(const struct hv_oci_config *cfg, hv_error_t *err);

/* Console, for a socket path the container cannot see after pivot_root:
 * connect first (in the parent, or in the child before pivot_root/setns),
 * then hand the connected socket over. */
int ns_console_connect(const char *socket_path, hv_error_t *err);
int ns_setup_console_fd(int console_sock, const struct hv_oci_process *p, hv_error_t *err);
/* Send master_fd with `name` as payload over an already connected socket. */
int hv_console_send_fd(int sock, int master_fd, const char *name, hv_error_t *err);
/* Send `fd` (SCM_RIGHTS) with the non-empty text `payload` over a connected
 * unix socket; -1 with errno set on failure (callers name what was sent). */
int ns_send_fd(int sock, int fd, const char *payload);

/* Seccomp notify: connect to linux.seccomp.listenerPath while the host
 * path is still reachable (before pivot_root or setns into the mount ns)
 * and remember the state JSON (ociVersion, fds, pid, metadata, state) to
 * send with the notify fd.  ns_setup_rootfs calls it itself (with a
 * minimal state) when nobody did; ns_close_fds keeps this socket. */
int ns_seccomp_listener_prepare(const struct hv_oci_seccomp *s, const char *state_json,
                                hv_error_t *err);
/* network.c: bring `lo` of the current network namespace up (the guest
 * init uses it too: a guest's loopback starts down as well). */
int ns_loopback_up(hv_error_t *err);
#endif
