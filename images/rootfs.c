/* rootfs.c: container root filesystems — an overlay of the image's unpacked
 * layer dirs (shared, read-only lowerdirs) with a private upper/work under
 * the caller's scratch dir.  A lease in <store>/leases keeps the layers from
 * being pruned while the container exists. */
#include "store_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define LEASE_FILE ".hvrun-lease"

/* Mount overlayfs at target.  lowers[0] is the topmost layer.  Uses the new
 * mount API with "lowerdir+" (no page-size limit on the option string);
 * falls back to mount(2) on kernels without it. */
int hv_overlay_mount(char **lowers, size_t n, const char *upper, const char *work,
                     const char *target, hv_error_t *err);
int hv_overlay_mount(char **lowers, size_t n, const char *upper, const char *work,
                     const char *target, hv_error_t *err) {
  int fs = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fs >= 0) {
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++)
      ok = fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", lowers[i], 0) == 0;
    if (ok && upper)
      ok = fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) == 0 &&
           fsconfig(fs, FSCONFIG_SET_STRING, "workdir", work, 0) == 0;
    if (ok)
      ok = fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0;
    if (ok) {
      int mnt = fsmount(fs, FSMOUNT_CLOEXEC, upper ? 0 : MOUNT_ATTR_RDONLY);
      int e = errno;
      close(fs);
      if (mnt < 0)
        return hv_error(err, e, "mount overlay at `%s`", target);
      int r = move_mount(mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
      e = errno;
      close(mnt);
      if (r < 0)
        return hv_error(err, e, "mount overlay at `%s`", target);
      return 0;
    }
    int e = errno;
    close(fs);
    if (e != EINVAL)
      return hv_error(err, e, "mount overlay at `%s`", target);
  }
  /* Old kernel: one option string. */
  size_t len = 64 + (upper ? strlen(upper) + strlen(work) : 0);
  for (size_t i = 0; i < n; i++)
    len += strlen(lowers[i]) + 1;
  cleanup_free char *opts = hv_xmalloc0(len);
  strcpy(opts, "lowerdir=");
  for (size_t i = 0; i < n; i++) {
    if (i)
      strcat(opts, ":");
    strcat(opts, lowers[i]);
  }
  if (upper) {
    strcat(opts, ",upperdir=");
    strcat(opts, upper);
    strcat(opts, ",workdir=");
    strcat(opts, work);
  }
  if (mount("overlay", target, "overlay", upper ? 0 : MS_RDONLY, opts) < 0)
    return hv_error(err, errno, "mount overlay at `%s`", target);
  return 0;
}

static int write_lease(struct hv_image_store *s, const struct hv_image *img, const char *scratch,
                       hv_error_t *err) {
  if (mkdirat(s->dirfd, "leases", 0700) < 0 && errno != EEXIST)
    return hv_error(err, errno, "create `%s/leases`", s->dir);
  char id[72];
  hv_sha256_buf(scratch, strlen(scratch), id);
  cleanup_free char *name = hv_xasprintf("leases/%s.json", hv_digest_hex(id));
  cleanup_json json_t *j = json_pack("{s:s,s:s}", "scratch", scratch, "image", img->digest);
  cleanup_free char *text = json_dumps(j, JSON_COMPACT);
  if (hv_write_file_atomic(s->dirfd, name, text, strlen(text), 0600, err) < 0)
    return -1;
  cleanup_free char *back = hv_xasprintf("%s/%s", s->dir, name);
  cleanup_close int sfd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sfd < 0)
    return hv_error(err, errno, "open `%s`", scratch);
  return hv_write_file_atomic(sfd, LEASE_FILE, back, strlen(back), 0600, err);
}

int hv_image_rootfs_mount(struct hv_image_store *s, const struct hv_image *img,
                          const char *scratch, const char *target, hv_error_t *err) {
  cleanup_close int lock = -1;
  if (hv_store_lock(s, "gc.lock", HV_LOCK_SH, &lock, err) < 0 ||
      hv_image_ensure_layers(s, img, err) < 0 || hv_mkdir_p(scratch, 0700, err) < 0)
    return -1;
  char abs_scratch[PATH_MAX];
  if (!realpath(scratch, abs_scratch))
    return hv_error(err, errno, "resolve `%s`", scratch);
  cleanup_free char *upper = hv_xasprintf("%s/upper", abs_scratch);
  cleanup_free char *work = hv_xasprintf("%s/work", abs_scratch);
  cleanup_free char *empty = hv_xasprintf("%s/empty", abs_scratch);
  if (hv_mkdir_p(upper, 0755, err) < 0 || hv_mkdir_p(work, 0700, err) < 0)
    return -1;
  size_t n = img->n_layers;
  char **lowers = hv_xmalloc0((n + 2) * sizeof(char *));
  for (size_t i = 0; i < n; i++)
    lowers[i] = hv_xasprintf("%s/layers/%s", s->dir, hv_digest_hex(img->layers[n - 1 - i].diff_id));
  if (n == 0) { /* an image without layers: an empty root */
    if (hv_mkdir_p(empty, 0755, err) < 0) {
      hv_strv_free(lowers);
      return -1;
    }
    lowers[n++] = hv_xstrdup(empty);
  }
  int rc = write_lease(s, img, abs_scratch, err);
  if (rc == 0)
    rc = hv_overlay_mount(lowers, n, upper, work, target, err);
  hv_strv_free(lowers);
  if (rc < 0) {
    hv_error_t ignored = NULL;
    hv_image_rootfs_release(abs_scratch, NULL, &ignored);
    hv_error_release(&ignored);
  }
  return rc;
}

int hv_image_rootfs_release(const char *scratch, const char *target, hv_error_t *err) {
  if (target && umount2(target, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
    return hv_error(err, errno, "unmount `%s`", target);
  cleanup_close int sfd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (sfd < 0)
    return errno == ENOENT ? 0 : hv_error(err, errno, "open `%s`", scratch);
  cleanup_free char *back = NULL;
  size_t len = 0;
  hv_error_t ignored = NULL;
  if (hv_read_at(sfd, LEASE_FILE, PATH_MAX, &back, &len, &ignored) == 0) {
    /* Only ever a <store>/leases/<hex>.json file. */
    const char *slash = strrchr(back, '/');
    if (slash && slash - back >= 7 && !strncmp(slash - 7, "/leases", 7) &&
        strlen(slash + 1) == HV_DIGEST_HEX + 5 && !strcmp(slash + 1 + HV_DIGEST_HEX, ".json"))
      unlink(back);
  }
  hv_error_release(&ignored);
  const char *parts[] = {"upper", "work", "empty", LEASE_FILE};
  for (size_t i = 0; i < 4; i++)
    if (hv_rm_rf_at(sfd, parts[i]) < 0)
      return hv_error(err, errno, "remove `%s/%s`", scratch, parts[i]);
  rmdir(scratch); /* fine to fail if the caller keeps other files there */
  return 0;
}
