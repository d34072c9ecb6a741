/* sandbox.h: private helpers shared by the child-side sandbox files of ns/
 * (rootfs.c, mounts.c, devices.c, sysctl.c, hostname.c, process.c,
 * seccomp.c, console.c, fds.c).  The parent-side lifecycle code only needs
 * ns_internal.h. */
#ifndef HVRUN_NS_SANDBOX_H
#define HVRUN_NS_SANDBOX_H
#include "ns_internal.h"
#include <sys/stat.h>

/* ---- path resolution inside the rootfs (mounts.c) ---- */

/* openat2(rootfd, path, flags, RESOLVE_IN_ROOT): `..` and absolute symlinks
 * can never leave rootfd.  Returns the fd, or -errno (err is NOT filled so
 * callers can treat ENOENT as "missing"). */
int ns_open_in_root(int rootfd, const char *path, int flags);
/* Create `path` under rootfd (parents as directories; the last component a
 * directory when `dir`, else an empty file) without ever following a
 * symlink out of rootfd.  Existing entries are fine. */
int ns_mkpath_in_root(int rootfd, const char *path, bool dir, hv_error_t *err);
/* "/proc/self/fd/N" for an fd (buffer of at least 32 bytes). */
const char *ns_fd_path(int fd, char buf[static 32]);

/* ---- mount options (mounts.c) ---- */

struct ns_mount_flags {
  unsigned long flags;          /* MS_* to set (MS_BIND, MS_REC, MS_RDONLY ...) */
  unsigned long clear;          /* MS_* explicitly cleared ("rw", "suid", ...) */
  unsigned long propagation[8]; /* MS_PRIVATE|MS_REC ..., applied in order */
  size_t n_propagation;
  uint64_t attr_set, attr_clr;  /* recursive MOUNT_ATTR_* ("rro", "rnosuid", ...) */
  char *data;                   /* everything else, comma-joined (malloc'd) */
};
/* Parse OCI mount options; `what` names the field in errors. */
int ns_mount_flags_parse(char *const *options, const char *what, struct ns_mount_flags *out,
                         hv_error_t *err);
void ns_mount_flags_clear(struct ns_mount_flags *f);
/* "rprivate" -> MS_PRIVATE|MS_REC ...; 0 if not a propagation name. */
unsigned long ns_propagation_flag(const char *name);
/* Mount one OCI mount under rootfd (a bind of the rootfs); `bundle`
 * anchors relative bind sources. */
int ns_mount_one(int rootfd, const struct hv_oci_mount *m, const char *bundle,
                 const struct hv_oci_config *cfg, size_t index, hv_error_t *err);
/* Bind-remount the mount at fd path with MS_BIND|MS_REMOUNT|flags, adding
 * the flags the kernel locks (user ns) when a plain remount is refused. */
int ns_bind_remount(const char *target, unsigned long flags, hv_error_t *err);
/* MS_* flags (ro, nosuid, nodev, noexec, atime) of the mount at path. */
unsigned long ns_current_mount_flags(const char *path);
/* Is this path "/dev" (any number of slashes)? */
bool ns_is_dev_path(const char *p);
/* Does the config carry a namespace of this CLONE_NEW* type? */
bool ns_config_has_namespace(const struct hv_oci_config *cfg, int flag);

/* ---- devices (devices.c) ---- */

/* Default devices + linux.devices, /dev symlinks and /dev/ptmx, under
 * rootfd (before pivot_root).  Skipped when /dev is a bind mount. */
int ns_setup_devices(int rootfd, const struct hv_oci_config *cfg, hv_error_t *err);

/* ---- after pivot_root (sysctl.c, hostname.c, rootfs.c) ---- */
int ns_validate_sysctl(const struct hv_oci_config *cfg, hv_error_t *err);
int ns_apply_sysctl(const struct hv_oci_config *cfg, hv_error_t *err);
int ns_apply_hostname(const struct hv_oci_config *cfg, hv_error_t *err);
int ns_mask_paths(char *const *paths, hv_error_t *err);
int ns_readonly_paths(char *const *paths, hv_error_t *err);

/* ---- network (network.c) ---- */
/* In the container's init, when the config creates a network namespace
 * (one without a path): bring `lo` up, as runc/crun do. */
int ns_setup_loopback(const struct hv_oci_config *cfg, hv_error_t *err);

/* ---- fds (fds.c) ---- */
/* ns_close_fds' fallback when close_range is missing: walk /proc/self/fd. */
int ns_close_fds_by_proc(int first, const int *keep, size_t n_keep, hv_error_t *err);

/* ---- capabilities (caps.c) ---- */
/* "CAP_SYS_ADMIN" (any case) -> number, or -1 if unknown to libcap or the kernel. */
int ns_cap_from_name(const char *name);

/* ---- seccomp notify listener (seccomp.c) ---- */
/* The connected listener socket, set by ns_seccomp_listener_prepare (or
 * by ns_setup_rootfs before pivot_root); -1 if none.  ns_close_fds
 * keeps it. */
extern int ns_seccomp_listener_fd;
bool ns_seccomp_uses_notify(const struct hv_oci_seccomp *s);
/* Build (but do not load) the filter: reports any invalid field. */
int ns_seccomp_validate(const struct hv_oci_seccomp *s, hv_error_t *err);

#endif
