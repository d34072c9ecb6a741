/* whiteout.c: OCI whiteouts (".wh.NAME", ".wh..wh..opq") in their overlayfs
 * form, so a layer dir can serve directly as an overlay lowerdir:
 *   .wh.NAME      -> NAME as a character device 0/0
 *   .wh..wh..opq  -> the parent dir gets trusted.overlay.opaque=y
 * The whiteout only ever touches parentfd, which the caller resolved inside
 * the layer, and NAME is a single validated component. */
#include "store_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define OVL_OPAQUE "trusted.overlay.opaque"

int hv_whiteout_apply(int parentfd, const char *base, const char *path, const char *what,
                      hv_error_t *err) {
  if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)) != 0)
    return 0;
  if (strcmp(base, WH_OPAQUE) == 0) {
    cleanup_close int dfd = openat(parentfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsetxattr(dfd, OVL_OPAQUE, "y", 1, 0) < 0)
      return hv_error(err, errno, "%s: entry `%s`: mark directory opaque", what, path);
    return 1;
  }
  const char *name = base + strlen(WH_PREFIX);
  if (!*name || !strcmp(name, ".") || !strcmp(name, "..") ||
      strncmp(name, ".wh.", 4) == 0)
    return hv_error(err, 0, "%s: entry `%s`: invalid whiteout name", what, path);
  if (hv_rm_rf_at(parentfd, name) < 0)
    return hv_error(err, errno, "%s: entry `%s`: remove whited-out `%s`", what, path, name);
  if (mknodat(parentfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
    return hv_error(err, errno, "%s: entry `%s`: create whiteout", what, path);
  return 1;
}

bool hv_is_whiteout_at(int dirfd, const char *name) {
  struct stat st;
  return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISCHR(st.st_mode) &&
         st.st_rdev == makedev(0, 0);
}

bool hv_is_opaque_at(int dirfd, const char *name) {
  cleanup_close int fd = hv_openat_beneath(dirfd, name, O_RDONLY | O_DIRECTORY, 0);
  char v[4];
  return fd >= 0 && fgetxattr(fd, OVL_OPAQUE, v, sizeof v) == 1 && v[0] == 'y';
}
