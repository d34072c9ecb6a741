/* rootfs.c: ns_setup_rootfs, the container's filesystem view.
 *
 * Order (as runc): propagation of "/" -> bind the rootfs onto itself ->
 * mounts -> devices -> pivot_root (or MS_MOVE + chroot) -> rootfsPropagation
 * on the new "/" -> hostname -> `lo` up (new network ns) -> sysctl -> readonly paths -> masked paths ->
 * root.readonly.  Sysctls go before readonlyPaths because /proc/sys is
 * usually one of them. */
#include "sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* Make the mount that contains `path` private so the rootfs bind below
 * does not propagate back to the host when "/" was made shared. */
static int make_parent_mount_private(const char *path, hv_error_t *err) {
  cleanup_free char *mi = NULL;
  if (hv_read_file("/proc/self/mountinfo", &mi, NULL, err) < 0)
    return -1;
  char best[PATH_MAX] = "/";
  size_t best_len = 1;
  char *save = NULL;
  for (char *l = strtok_r(mi, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    char mp[PATH_MAX];
    if (sscanf(l, "%*s %*s %*s %*s %4095s", mp) != 1)
      continue;
    size_t n = strlen(mp);
    if (n > best_len && strncmp(path, mp, n) == 0 && (path[n] == '/' || path[n] == 0)) {
      memcpy(best, mp, n + 1);
      best_len = n;
    }
  }
  if (mount(NULL, best, NULL, MS_PRIVATE, NULL) < 0)
    return hv_error(err, errno, "make `%s` private", best);
  return 0;
}

static int do_pivot_root(const char *rootfs, hv_error_t *err) {
  /* pivot_root(".", ".") stacks the old root on top of the new one; it is
   * then unmounted lazily from ".", so no directory for it is needed in
   * the image. */
  cleanup_close int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  cleanup_close int newroot = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0 || newroot < 0)
    return hv_error(err, errno, "pivot_root: open `%s`", rootfs);
  if (fchdir(newroot) < 0)
    return hv_error(err, errno, "pivot_root: chdir `%s`", rootfs);
  if (syscall(SYS_pivot_root, ".", ".") < 0)
    return hv_error(err, errno, "pivot_root `%s`", rootfs);
  if (fchdir(oldroot) < 0)
    return hv_error(err, errno, "pivot_root: chdir old root");
  /* Slave first so the unmount cannot propagate to the host's mounts. */
  if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
    return hv_error(err, errno, "pivot_root: make old root rslave");
  if (umount2(".", MNT_DETACH) < 0)
    return hv_error(err, errno, "pivot_root: detach old root");
  if (chdir("/") < 0)
    return hv_error(err, errno, "chdir `/`");
  return 0;
}

/* --no-pivot: for rootfs on ramfs/initramfs where pivot_root is refused. */
static int do_move_root(const char *rootfs, hv_error_t *err) {
  if (chdir(rootfs) < 0)
    return hv_error(err, errno, "chdir `%s`", rootfs);
  if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0)
    return hv_error(err, errno, "move `%s` to `/`", rootfs);
  if (chroot(".") < 0)
    return hv_error(err, errno, "chroot `%s`", rootfs);
  if (chdir("/") < 0)
    return hv_error(err, errno, "chdir `/`");
  return 0;
}

/* After pivot_root the fd path needs the container's own /proc; without
 * one, the plain path is used (it cannot leave the new root either). */
static const char *mnt_path(int fd, const char *path, char buf[static 32]) {
  if (access("/proc/self/fd", F_OK) == 0)
    return ns_fd_path(fd, buf);
  return path;
}

int ns_readonly_paths(char *const *paths, hv_error_t *err) {
  for (size_t i = 0; paths && paths[i]; i++) {
    const char *path = paths[i];
    /* Resolved in the new root: no symlink can lead out of it. */
    cleanup_close int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int fd = ns_open_in_root(root, path, O_PATH);
    if (fd == -ENOENT)
      continue;
    if (fd < 0)
      return hv_error(err, -fd, "readonlyPaths: `%s`", path);
    cleanup_close int pfd = fd;
    char buf[32];
    const char *p = mnt_path(pfd, path, buf);
    if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
      return hv_error(err, errno, "readonlyPaths: bind `%s`", path);
    cleanup_close int mfd = ns_open_in_root(root, path, O_PATH);
    if (mfd < 0)
      return hv_error(err, -mfd, "readonlyPaths: reopen `%s`", path);
    p = mnt_path(mfd, path, buf);
    if (ns_bind_remount(p, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | ns_current_mount_flags(p),
                        err) < 0)
      return hv_error_wrap(err, "readonlyPaths: `%s`", path);
  }
  return 0;
}

int ns_mask_paths(char *const *paths, hv_error_t *err) {
  for (size_t i = 0; paths && paths[i]; i++) {
    const char *path = paths[i];
    cleanup_close int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int fd = ns_open_in_root(root, path, O_PATH);
    if (fd == -ENOENT)
      continue;
    if (fd < 0)
      return hv_error(err, -fd, "maskedPaths: `%s`", path);
    cleanup_close int pfd = fd;
    struct stat st;
    if (fstat(pfd, &st) < 0)
      return hv_error(err, errno, "maskedPaths: stat `%s`", path);
    char buf[32];
    const char *p = mnt_path(pfd, path, buf);
    int r;
    if (S_ISDIR(st.st_mode))
      r = mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0k");
    else
      r = mount("/dev/null", p, NULL, MS_BIND, NULL);
    if (r < 0)
      return hv_error(err, errno, "maskedPaths: mask `%s`", path);
  }
  return 0;
}

/* A /dev tmpfs asked to be "ro" was mounted rw for the device nodes. */
static int remount_dev_readonly(int rootfd, const struct hv_oci_config *cfg, hv_error_t *err) {
  for (size_t i = 0; i < cfg->n_mounts; i++) {
    const struct hv_oci_mount *m = &cfg->mounts[i];
    if (!m->destination || !ns_is_dev_path(m->destination))
      continue;
    struct ns_mount_flags f;
    if (ns_mount_flags_parse(m->options, "mounts", &f, err) < 0)
      return -1;
    unsigned long flags = f.flags;
    ns_mount_flags_clear(&f);
    if (!(flags & MS_RDONLY) || (flags & MS_BIND))
      continue;
    cleanup_close int fd = ns_open_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY);
    if (fd < 0)
      return hv_error(err, -fd, "mounts[%zu]: reopen /dev", i);
    char p[32];
    if (mount(NULL, ns_fd_path(fd, p), NULL,
              MS_REMOUNT | MS_RDONLY | (flags & (MS_NOSUID | MS_NOEXEC | MS_NODEV)), NULL) < 0)
      return hv_error(err, errno, "mounts[%zu]: remount /dev read-only", i);
  }
  return 0;
}

int ns_setup_rootfs(const struct hv_oci_config *cfg, bool no_pivot, hv_error_t *err) {
  if (!cfg->root.path || !*cfg->root.path)
    return hv_error(err, 0, "root.path: missing");
  cleanup_free char *joined = cfg->root.path[0] == '/' || !cfg->bundle
                                  ? hv_xstrdup(cfg->root.path)
                                  : hv_xasprintf("%s/%s", cfg->bundle, cfg->root.path);
  char rootfs[PATH_MAX];
  if (!realpath(joined, rootfs))
    return hv_error(err, errno, "root.path `%s`", joined);
  struct stat st;
  if (stat(rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
    return hv_error(err, errno ? errno : ENOTDIR, "root.path `%s` is not a directory", rootfs);

  unsigned long prop = MS_PRIVATE | MS_REC;
  if (cfg->linux.rootfs_propagation && *cfg->linux.rootfs_propagation) {
    prop = ns_propagation_flag(cfg->linux.rootfs_propagation);
    if (!prop)
      return hv_error(err, 0, "linux.rootfsPropagation: unknown value \"%s\"",
                      cfg->linux.rootfs_propagation);
  }
  if (mount(NULL, "/", NULL, prop, NULL) < 0)
    return hv_error(err, errno, "set propagation of `/`");
  if ((prop & MS_SHARED) && make_parent_mount_private(rootfs, err) < 0)
    return -1;
  /* pivot_root needs the new root to be a mount point. */
  if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    return hv_error(err, errno, "bind rootfs `%s`", rootfs);
  {
    cleanup_close int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
      return hv_error(err, errno, "open rootfs `%s`", rootfs);
    for (size_t i = 0; i < cfg->n_mounts; i++)
      if (ns_mount_one(rootfd, &cfg->mounts[i], cfg->bundle, cfg, i, err) < 0)
        return -1;
    if (ns_setup_devices(rootfd, cfg, err) < 0)
      return -1;
    if (remount_dev_readonly(rootfd, cfg, err) < 0)
      return -1;
  }
  /* The listener socket is a host path: connect while it is visible. */
  if (ns_seccomp_uses_notify(cfg->linux.seccomp) &&
      ns_seccomp_listener_prepare(cfg->linux.seccomp, NULL, err) < 0)
    return -1;
  if ((no_pivot ? do_move_root(rootfs, err) : do_pivot_root(rootfs, err)) < 0)
    return -1;
  if (cfg->linux.rootfs_propagation && *cfg->linux.rootfs_propagation &&
      mount(NULL, "/", NULL, prop, NULL) < 0)
    return hv_error(err, errno, "linux.rootfsPropagation: set `%s` on the container root",
                    cfg->linux.rootfs_propagation);
  if (ns_apply_hostname(cfg, err) < 0 || ns_setup_loopback(cfg, err) < 0 ||
      ns_apply_sysctl(cfg, err) < 0)
    return -1;
  if (ns_readonly_paths(cfg->linux.readonly_paths, err) < 0 ||
      ns_mask_paths(cfg->linux.masked_paths, err) < 0)
    return -1;
  /* Add ro to what the root mount already has (a nosuid image dir stays
   * nosuid: a bind remount otherwise resets every flag not given). */
  if (cfg->root.readonly &&
      ns_bind_remount("/", MS_RDONLY | ns_current_mount_flags("/"), err) < 0)
    return hv_error_wrap(err, "root.readonly");
  return 0;
}

int ns_validate_config(const struct hv_oci_config *cfg, hv_error_t *err) {
  if (!cfg->root.path || !*cfg->root.path)
    return hv_error(err, 0, "root.path: missing");
  if (cfg->linux.rootfs_propagation && *cfg->linux.rootfs_propagation &&
      !ns_propagation_flag(cfg->linux.rootfs_propagation))
    return hv_error(err, 0, "linux.rootfsPropagation: unknown value \"%s\"",
                    cfg->linux.rootfs_propagation);
  bool uts = ns_config_has_namespace(cfg, CLONE_NEWUTS);
  if (cfg->hostname && *cfg->hostname && !uts)
    return hv_error(err, 0, "hostname: setting it requires a \"uts\" namespace in linux.namespaces");
  if (cfg->domainname && *cfg->domainname && !uts)
    return hv_error(err, 0,
                    "domainname: setting it requires a \"uts\" namespace in linux.namespaces");
  if (ns_validate_sysctl(cfg, err) < 0)
    return -1;
  for (size_t i = 0; i < cfg->n_mounts; i++) {
    const struct hv_oci_mount *m = &cfg->mounts[i];
    char what[40];
    snprintf(what, sizeof what, "mounts[%zu]", i);
    if (!m->destination || !*m->destination)
      return hv_error(err, 0, "%s.destination: missing", what);
    struct ns_mount_flags f;
    if (ns_mount_flags_parse(m->options, what, &f, err) < 0)
      return -1;
    ns_mount_flags_clear(&f);
  }
  for (size_t i = 0; i < cfg->linux.n_devices; i++) {
    const struct hv_oci_device *d = &cfg->linux.devices[i];
    if (!d->path || d->path[0] != '/')
      return hv_error(err, 0, "linux.devices[%zu].path: must be an absolute path", i);
    if (!strchr("cbup", d->type ? d->type : 'x'))
      return hv_error(err, 0, "linux.devices[%zu].type: invalid device type '%c' (want c, b, u or p)",
                      i, d->type ? d->type : '?');
  }
  return ns_seccomp_validate(cfg->linux.seccomp, err);
}
