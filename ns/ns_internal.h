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
 * no_new_privs, and seccomp last.  On success it does not return if
 * do_exec is true (execvpe of process->args with process->env, looked up
 * in the container's PATH). */
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
#endif
