/* init.h: pieces of hvrun's guest init (PID 1 inside the microVM), shared
 * between init.c (boot flow, supervision, exit reporting) and rootfs.c
 * (root filesystem and mounts).  See vm/guest_proto.h for the contract with
 * the host. */
#ifndef HVRUN_GUEST_INIT_H
#define HVRUN_GUEST_INIT_H
#include "../../runtime/runtime.h"

/* Mount /dev/vda (erofs) with a tmpfs overlay (none if root.readonly) at
 * /newroot, the spec's guest-side mounts inside it (devtmpfs at /dev when
 * the spec has none), then move it onto / and chroot into it. */
int guest_rootfs_setup(const struct hv_oci_config *cfg, hv_error_t *err);

/* modules.c: load the initramfs's kernel modules (HV_GUEST_MODULES_ORDER)
 * in order; 0 when there are none, 1 when some were loaded. */
int guest_modules_load(hv_error_t *err);
/* Wait (a few seconds at most) for a device node a module's driver adds. */
void guest_wait_device(const char *path);

/* Write linux.sysctl entries to /proc/sys. */
int guest_sysctl_apply(const struct hv_oci_config *cfg, hv_error_t *err);

/* One line "hvrun-init: <msg>" on the kernel console (stderr of PID 1). */
void guest_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* cgroup.c: the workload's cgroup v2 in the guest (linux.resources).
 * setup runs in PID 1 after the root switch; join_child in each child PID 1
 * starts, before it execs; stats is runc's `events --stats` "data" object
 * for it (NULL if there is none). */
int guest_cgroup_prepare(hv_error_t *err); /* before the root switch */
int guest_cgroup_setup(const struct hv_oci_config *cfg, hv_error_t *err);
int guest_cgroup_join_child(hv_error_t *err);
#include <jansson.h>
json_t *guest_cgroup_stats(void);

/* init.c: the end of every child PID 1 starts (workload, exec sessions):
 * join the workload's cgroup, then the shared finalize-and-exec path;
 * failures go back to PID 1 as one line on errfd and the child exits 127. */
void guest_child_exec(const struct hv_oci_process *p, const struct hv_oci_config *cfg, int errfd)
    __attribute__((noreturn));
void guest_child_fail(hv_error_t *err, int errfd) __attribute__((noreturn));

/* agent.c: sessions of the agent protocol (vm/guest_proto.h).  stdin_fd is
 * the write end of the workload's stdin pipe (session 0), or -1. */
struct pollfd;
void agent_init(int control_fd, const struct hv_oci_config *cfg, pid_t workload, int stdin_fd);
/* One line from the host (without "\n"). */
void agent_control_line(char *line);
/* The session fds to poll (at most max entries), and what they reported. */
int agent_pollfds(struct pollfd *pf, int max);
void agent_handle_poll(const struct pollfd *pf, int n);
/* A reaped child: true if it was an exec session (it is reported and freed). */
bool agent_child_exited(pid_t pid, int status);
#endif
