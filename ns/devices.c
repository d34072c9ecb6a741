/* devices.c: the container's /dev: the default nodes every OCI runtime
 * provides, linux.devices, the standard symlinks and /dev/ptmx.
 *
 * Nodes are created with mknodat under a safely resolved parent.  In a user
 * namespace mknod is refused (EPERM); the host node is then bind-mounted
 * onto an empty file, as runc does. */
#include "sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static const struct hv_oci_device default_devices[] = {
    {.path = "/dev/null", .type = 'c', .major = 1, .minor = 3},
    {.path = "/dev/zero", .type = 'c', .major = 1, .minor = 5},
    {.path = "/dev/full", .type = 'c', .major = 1, .minor = 7},
    {.path = "/dev/random", .type = 'c', .major = 1, .minor = 8},
    {.path = "/dev/urandom", .type = 'c', .major = 1, .minor = 9},
    {.path = "/dev/tty", .type = 'c', .major = 5, .minor = 0},
};

/* "/dev//null/" and "/dev/null" are the same device path. */
static bool same_path(const char *a, const char *b) {
  for (;;) {
    while (*a == '/' && (a[1] == '/' || a[1] == 0))
      a++;
    while (*b == '/' && (b[1] == '/' || b[1] == 0))
      b++;
    if (*a != *b)
      return false;
    if (!*a)
      return true;
    a++, b++;
  }
}

static mode_t device_type_mode(char type) {
  switch (type) {
  case 'c':
  case 'u':
    return S_IFCHR;
  case 'b':
    return S_IFBLK;
  case 'p':
    return S_IFIFO;
  default:
    return 0;
  }
}

static int create_device(int rootfd, const struct hv_oci_device *d, const char *what,
                         hv_error_t *err) {
  mode_t type = device_type_mode(d->type);
  if (!type)
    return hv_error(err, 0, "%s.type: invalid device type '%c' (want c, b, u or p)", what,
                    d->type ? d->type : '?');
  if (!d->path || d->path[0] != '/')
    return hv_error(err, 0, "%s.path: must be an absolute path", what);
  cleanup_free char *dir = hv_xstrdup(d->path);
  char *slash = strrchr(dir, '/');
  const char *name = d->path + (slash - dir) + 1;
  *slash = 0;
  if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return hv_error(err, 0, "%s.path: `%s` is not a file path", what, d->path);
  if (*dir && ns_mkpath_in_root(rootfd, dir, true, err) < 0)
    return hv_error_wrap(err, "%s", what);
  int pfd = ns_open_in_root(rootfd, *dir ? dir : "/", O_PATH | O_DIRECTORY);
  if (pfd < 0)
    return hv_error(err, -pfd, "%s: open `%s` in the rootfs", what, *dir ? dir : "/");
  cleanup_close int parent = pfd;
  mode_t perm = d->has_file_mode ? (d->file_mode & 07777) : 0666;
  if (unlinkat(parent, name, 0) < 0 && errno != ENOENT && errno != EISDIR)
    return hv_error(err, errno, "%s: remove existing `%s`", what, d->path);
  dev_t dev = type == S_IFIFO ? 0 : makedev((unsigned)d->major, (unsigned)d->minor);
  if (mknodat(parent, name, type | perm, dev) == 0) {
    /* mknod is subject to the umask: set the exact mode afterwards. */
    if (fchmodat(parent, name, perm, 0) < 0)
      return hv_error(err, errno, "%s: chmod `%s`", what, d->path);
    uid_t uid = d->has_uid ? d->uid : 0;
    gid_t gid = d->has_gid ? d->gid : 0;
    if (fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
      return hv_error(err, errno, "%s: chown `%s`", what, d->path);
    return 0;
  }
  int e = errno;
  if (e != EPERM)
    return hv_error(err, e, "%s: mknod `%s`", what, d->path);
  /* Not allowed (user namespace): bind the host's node instead. */
  int fd = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return hv_error(err, errno, "%s: create bind target `%s`", what, d->path);
  close(fd);
  cleanup_close int tfd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (tfd < 0)
    return hv_error(err, errno, "%s: open `%s`", what, d->path);
  char p[32];
  if (mount(d->path, ns_fd_path(tfd, p), NULL, MS_BIND, NULL) < 0)
    return hv_error(err, errno, "%s: mknod not permitted, and bind of host `%s` failed", what,
                    d->path);
  return 0;
}

static bool dev_is_bind_mounted(const struct hv_oci_config *cfg) {
  for (size_t i = 0; i < cfg->n_mounts; i++) {
    const struct hv_oci_mount *m = &cfg->mounts[i];
    if (!m->destination || !same_path(m->destination, "/dev"))
      continue;
    if (m->type && strcmp(m->type, "bind") == 0)
      return true;
    for (size_t k = 0; m->options && m->options[k]; k++)
      if (strcmp(m->options[k], "bind") == 0 || strcmp(m->options[k], "rbind") == 0)
        return true;
  }
  return false;
}

static int setup_dev_links(int rootfd, hv_error_t *err) {
  static const char *links[][2] = {
      {"/proc/self/fd", "fd"},
      {"/proc/self/fd/0", "stdin"},
      {"/proc/self/fd/1", "stdout"},
      {"/proc/self/fd/2", "stderr"},
  };
  int fd = ns_open_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY);
  if (fd < 0)
    return hv_error(err, -fd, "open /dev in the rootfs");
  cleanup_close int devfd = fd;
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlinkat(links[i][0], devfd, links[i][1]) < 0 && errno != EEXIST)
      return hv_error(err, errno, "symlink /dev/%s", links[i][1]);
  /* runc adds /dev/core only when the kernel has /proc/kcore. */
  if (access("/proc/kcore", F_OK) == 0 && symlinkat("/proc/kcore", devfd, "core") < 0 &&
      errno != EEXIST)
    return hv_error(err, errno, "symlink /dev/core");
  /* /dev/ptmx must be the container's devpts instance, not the host's. */
  if (unlinkat(devfd, "ptmx", 0) < 0 && errno != ENOENT)
    return hv_error(err, errno, "remove /dev/ptmx");
  if (symlinkat("pts/ptmx", devfd, "ptmx") < 0)
    return hv_error(err, errno, "symlink /dev/ptmx");
  return 0;
}

int ns_setup_devices(int rootfd, const struct hv_oci_config *cfg, hv_error_t *err) {
  if (dev_is_bind_mounted(cfg))
    return 0;
  if (ns_mkpath_in_root(rootfd, "/dev", true, err) < 0)
    return -1;
  for (size_t i = 0; i < sizeof default_devices / sizeof default_devices[0]; i++) {
    bool overridden = false;
    for (size_t k = 0; k < cfg->linux.n_devices && !overridden; k++)
      overridden = cfg->linux.devices[k].path &&
                   same_path(cfg->linux.devices[k].path, default_devices[i].path);
    if (overridden)
      continue;
    char what[48];
    snprintf(what, sizeof what, "default device %s", default_devices[i].path);
    if (create_device(rootfd, &default_devices[i], what, err) < 0)
      return -1;
  }
  for (size_t i = 0; i < cfg->linux.n_devices; i++) {
    char what[48];
    snprintf(what, sizeof what, "linux.devices[%zu]", i);
    if (create_device(rootfd, &cfg->linux.devices[i], what, err) < 0)
      return -1;
  }
  return setup_dev_links(rootfd, err);
}
