/* unpack.c: extract a tar entry by entry into a directory, confined by the
 * kernel.
 *
 * archive_write_disk() works on path strings, so a symlink planted by one
 * entry can redirect a later one.  Instead every entry's parent directory
 * is opened with openat2(RESOLVE_BENEATH) relative to the layer root, and the
 * entry itself is created with *at() calls on that fd using only its last
 * component (with O_EXCL/O_NOFOLLOW semantics).  ".." and absolute paths are
 * rejected up front for a clear message; the kernel check is what makes
 * symlinked parents and hardlink targets safe. */
#include "store_internal.h"
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

struct dir_time { char *path; struct timespec ts[2]; };

struct unpack_ctx {
  int rootfd;
  const struct hv_unpack_opts *o;
  struct hv_unpack_stats *st;
  char cached_parent[PATH_MAX];
  int cached_fd;
  struct dir_time *dirs;
  size_t n_dirs, cap_dirs;
  bool warned_xattr;
};

int hv_clean_path(const char *in, char *out, size_t outsz, const char **why) {
  if (!in) {
    *why = "missing path";
    return -1;
  }
  if (in[0] == '/') {
    *why = "absolute path";
    return -1;
  }
  size_t n = 0;
  const char *p = in;
  while (*p) {
    while (*p == '/')
      p++;
    const char *start = p;
    while (*p && *p != '/')
      p++;
    size_t len = (size_t)(p - start);
    if (len == 0 || (len == 1 && start[0] == '.'))
      continue;
    if (len == 2 && start[0] == '.' && start[1] == '.') {
      *why = "path escapes the layer directory (`..`)";
      return -1;
    }
    if (n + len + 2 > outsz) {
      *why = "path too long";
      return -1;
    }
    if (n)
      out[n++] = '/';
    memcpy(out + n, start, len);
    n += len;
  }
  out[n] = 0;
  return 0;
}

static void invalidate_cache(struct unpack_ctx *c) {
  if (c->cached_fd >= 0)
    close(c->cached_fd);
  c->cached_fd = -1;
  c->cached_parent[0] = 1; /* matches no path */
}

static int open_dir_beneath(int rootfd, const char *path) {
  return hv_openat_beneath(rootfd, path, O_PATH | O_DIRECTORY, 0);
}

static int resolve_error(struct unpack_ctx *c, const char *path, const char *parent, int e,
                         hv_error_t *err) {
  if (e == EXDEV || e == ELOOP)
    return hv_error(err, 0, "%s: entry `%s`: parent `%s` resolves outside the layer directory",
                    c->o->what, path, parent);
  if (e == ENOTDIR)
    return hv_error(err, 0, "%s: entry `%s`: parent `%s` is not a directory", c->o->what, path,
                    parent);
  return hv_error(err, e, "%s: entry `%s`: open parent `%s`", c->o->what, path, parent);
}

/* The parent dir of an entry, created (mkdir -p) when missing.  The fd is
 * cached across entries of the same dir and owned by the context. */
static int resolve_parent(struct unpack_ctx *c, const char *parent, const char *path,
                          hv_error_t *err) {
  if (strcmp(parent, c->cached_parent) == 0 && c->cached_fd >= 0)
    return c->cached_fd;
  invalidate_cache(c);
  int fd = open_dir_beneath(c->rootfd, parent);
  if (fd < 0 && errno == ENOENT) {
    /* Walk down, creating what is missing; each prefix is re-resolved from
     * the root so symlinks are judged by the kernel at every step. */
    char prefix[PATH_MAX];
    size_t len = strlen(parent);
    for (size_t i = 0; i <= len; i++) {
      if (parent[i] != '/' && parent[i] != 0)
        continue;
      memcpy(prefix, parent, i);
      prefix[i] = 0;
      int pfd = open_dir_beneath(c->rootfd, prefix);
      if (pfd >= 0) {
        close(pfd);
        continue;
      }
      if (errno != ENOENT)
        return resolve_error(c, path, prefix, errno, err);
      const char *slash = strrchr(prefix, '/');
      char up[PATH_MAX];
      snprintf(up, sizeof up, "%.*s", slash ? (int)(slash - prefix) : 0, prefix);
      cleanup_close int ufd = open_dir_beneath(c->rootfd, up);
      if (ufd < 0)
        return resolve_error(c, path, up, errno, err);
      if (mkdirat(ufd, slash ? slash + 1 : prefix, 0755) < 0 && errno != EEXIST)
        return hv_error(err, errno, "%s: entry `%s`: create parent `%s`", c->o->what, path,
                        prefix);
    }
    fd = open_dir_beneath(c->rootfd, parent);
  }
  if (fd < 0)
    return resolve_error(c, path, parent, errno, err);
  c->cached_fd = fd;
  snprintf(c->cached_parent, sizeof c->cached_parent, "%s", parent);
  return fd;
}

/* Make room for a new non-directory entry (tar semantics: later wins). */
static int clear_name(struct unpack_ctx *c, int pfd, const char *base, const char *path,
                      hv_error_t *err) {
  if (hv_rm_rf_at(pfd, base) < 0)
    return hv_error(err, errno, "%s: entry `%s`: replace existing entry", c->o->what, path);
  return 0;
}

static int apply_xattrs(struct unpack_ctx *c, struct archive_entry *e, int fd, int pfd,
                        const char *base, const char *path, hv_error_t *err) {
  const char *name;
  const void *value;
  size_t size;
  if (archive_entry_xattr_reset(e) == 0)
    return 0;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    /* trusted.overlay.* would let a layer steer overlayfs (redirects,
     * metacopy); only our own whiteout conversion may set those. */
    if (strncmp(name, "trusted.overlay.", 16) == 0 ||
        (strncmp(name, "user.", 5) && strncmp(name, "security.", 9) && strncmp(name, "trusted.", 8)))
      continue;
    int r;
    if (fd >= 0) {
      r = fsetxattr(fd, name, value, size, 0);
    } else {
      char p[PATH_MAX + 64];
      snprintf(p, sizeof p, "/proc/self/fd/%d/%s", pfd, base);
      r = lsetxattr(p, name, value, size, 0);
    }
    if (r < 0) {
      if (errno == ENOTSUP || errno == EPERM) {
        if (!c->warned_xattr)
          hv_warn("%s: entry `%s`: cannot set xattr %s (%s); skipping such xattrs", c->o->what,
                  path, name, strerror(errno));
        c->warned_xattr = true;
        continue;
      }
      return hv_error(err, errno, "%s: entry `%s`: set xattr %s", c->o->what, path, name);
    }
  }
  return 0;
}

/* Owner, mode, xattrs, times — in that order, because chown clears setuid
 * bits and file capabilities. */
static int apply_meta(struct unpack_ctx *c, struct archive_entry *e, int fd, int pfd,
                      const char *base, const char *path, bool is_link, hv_error_t *err) {
  if (!c->o->overlay)
    return 0;
  uid_t uid = (uid_t)archive_entry_uid(e);
  gid_t gid = (gid_t)archive_entry_gid(e);
  int r = fd >= 0 ? fchown(fd, uid, gid) : fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW);
  if (r < 0 && !(errno == EPERM && geteuid() != 0))
    return hv_error(err, errno, "%s: entry `%s`: chown %u:%u", c->o->what, path, uid, gid);
  if (!is_link) {
    mode_t mode = archive_entry_perm(e) & 07777;
    r = fd >= 0 ? fchmod(fd, mode) : fchmodat(pfd, base, mode, 0);
    if (r < 0)
      return hv_error(err, errno, "%s: entry `%s`: chmod %o", c->o->what, path, mode);
  }
  if (apply_xattrs(c, e, fd, pfd, base, path, err) < 0)
    return -1;
  struct timespec ts[2] = {{archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
                           {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
  if (archive_entry_atime_is_set(e))
    ts[0] = (struct timespec){archive_entry_atime(e), archive_entry_atime_nsec(e)};
  r = fd >= 0 ? futimens(fd, ts) : utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
  if (r < 0)
    return hv_error(err, errno, "%s: entry `%s`: set times", c->o->what, path);
  return 0;
}

static int write_data(struct unpack_ctx *c, struct archive *a, int fd, const char *path,
                      int64_t size, hv_error_t *err) {
  const void *buf;
  size_t len;
  la_int64_t off;
  int64_t end = 0;
  for (;;) {
    int r = archive_read_data_block(a, &buf, &len, &off);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN)
      return hv_error(err, 0, "%s: entry `%s`: %s", c->o->what, path, archive_error_string(a));
    c->st->bytes += len;
    if (c->st->bytes > c->o->max_bytes)
      return hv_error(err, 0, "%s: more than %llu bytes unpacked (limit; see --max-size)",
                      c->o->what, (unsigned long long)c->o->max_bytes);
    const char *p = buf;
    while (len) {
      ssize_t w = pwrite(fd, p, len, off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return hv_error(err, errno, "%s: entry `%s`: write", c->o->what, path);
      p += w;
      off += w;
      len -= (size_t)w;
    }
    if (off > end)
      end = off;
  }
  if (size > end && ftruncate(fd, size) < 0) /* trailing hole of a sparse file */
    return hv_error(err, errno, "%s: entry `%s`: truncate", c->o->what, path);
  return 0;
}

static int extract_hardlink(struct unpack_ctx *c, struct archive_entry *e, int pfd,
                            const char *base, const char *path, hv_error_t *err) {
  const char *why;
  char target[PATH_MAX];
  if (hv_clean_path(archive_entry_hardlink(e), target, sizeof target, &why) < 0)
    return hv_error(err, 0, "%s: entry `%s`: hardlink target `%s`: %s", c->o->what, path,
                    archive_entry_hardlink(e), why);
  if (!*target)
    return hv_error(err, 0, "%s: entry `%s`: hardlink to the layer root", c->o->what, path);
  char *slash = strrchr(target, '/');
  const char *tbase = slash ? slash + 1 : target;
  if (slash)
    *slash = 0;
  cleanup_close int tfd = open_dir_beneath(c->rootfd, slash ? target : "");
  if (tfd < 0 && errno == ENOENT)
    return hv_error(err, 0, "%s: entry `%s`: hardlink target `%s` is not in this layer",
                    c->o->what, path, archive_entry_hardlink(e));
  if (tfd < 0)
    return resolve_error(c, path, slash ? target : ".", errno, err);
  if (clear_name(c, pfd, base, path, err) < 0)
    return -1;
  if (linkat(tfd, tbase, pfd, base, 0) < 0) {
    if (errno == ENOENT)
      return hv_error(err, 0, "%s: entry `%s`: hardlink target `%s` is not in this layer",
                      c->o->what, path, archive_entry_hardlink(e));
    return hv_error(err, errno, "%s: entry `%s`: hardlink to `%s`", c->o->what, path,
                    archive_entry_hardlink(e));
  }
  return 0;
}

static int extract_dir(struct unpack_ctx *c, struct archive_entry *e, int pfd, const char *base,
                       const char *path, hv_error_t *err) {
  int dfd;
  if (!*path) {
    dfd = dup(c->rootfd);
  } else {
    struct stat st;
    if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
        clear_name(c, pfd, base, path, err) < 0)
      return -1;
    if (mkdirat(pfd, base, 0755) < 0 && errno != EEXIST)
      return hv_error(err, errno, "%s: entry `%s`: mkdir", c->o->what, path);
    dfd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (dfd < 0)
    return hv_error(err, errno, "%s: entry `%s`: open directory", c->o->what, path);
  cleanup_close int fd = dfd;
  if (apply_meta(c, e, fd, -1, NULL, path, false, err) < 0)
    return -1;
  if (c->o->overlay) { /* children change the mtime; set it again at the end */
    if (c->n_dirs == c->cap_dirs) {
      c->cap_dirs = c->cap_dirs ? 2 * c->cap_dirs : 64;
      c->dirs = realloc(c->dirs, c->cap_dirs * sizeof *c->dirs);
      if (!c->dirs)
        abort();
    }
    struct timespec m = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
    c->dirs[c->n_dirs++] = (struct dir_time){hv_xstrdup(path), {m, m}};
  }
  return 0;
}

static int extract_entry(struct unpack_ctx *c, struct archive *a, struct archive_entry *e,
                         hv_error_t *err) {
  char path[PATH_MAX];
  const char *why;
  const char *raw = archive_entry_pathname(e);
  if (hv_clean_path(raw, path, sizeof path, &why) < 0)
    return hv_error(err, 0, "%s: entry `%s`: %s", c->o->what, raw ? raw : "?", why);
  mode_t type = archive_entry_filetype(e);
  if (!*path) {
    if (type != AE_IFDIR)
      return hv_error(err, 0, "%s: entry `%s`: the layer root must be a directory", c->o->what,
                      raw);
    return extract_dir(c, e, -1, "", "", err);
  }
  char parent[PATH_MAX];
  char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  snprintf(parent, sizeof parent, "%.*s", slash ? (int)(slash - path) : 0, path);
  int pfd = resolve_parent(c, parent, path, err);
  if (pfd < 0)
    return -1;

  if (c->o->overlay) {
    int w = hv_whiteout_apply(pfd, base, path, c->o->what, err);
    if (w != 0)
      return w < 0 ? -1 : 0;
  }
  if (archive_entry_hardlink(e))
    return extract_hardlink(c, e, pfd, base, path, err);

  switch (type) {
  case AE_IFDIR: {
    int r = extract_dir(c, e, pfd, base, path, err);
    invalidate_cache(c); /* may have replaced a non-dir that a cached path named */
    return r;
  }
  case AE_IFREG: {
    /* Create first; only an existing name (rare) costs a remove + retry. */
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    cleanup_close int fd = openat(pfd, base, flags, 0644);
    if (fd < 0 && errno == EEXIST) {
      if (clear_name(c, pfd, base, path, err) < 0)
        return -1;
      fd = openat(pfd, base, flags, 0644);
    }
    if (fd < 0)
      return hv_error(err, errno, "%s: entry `%s`: create", c->o->what, path);
    if (write_data(c, a, fd, path, archive_entry_size(e), err) < 0)
      return -1;
    return apply_meta(c, e, fd, pfd, base, path, false, err);
  }
  case AE_IFLNK: {
    const char *target = archive_entry_symlink(e);
    if (!target)
      return hv_error(err, 0, "%s: entry `%s`: symlink without a target", c->o->what, path);
    if (clear_name(c, pfd, base, path, err) < 0)
      return -1;
    /* The target text is stored, never followed here. */
    if (symlinkat(target, pfd, base) < 0)
      return hv_error(err, errno, "%s: entry `%s`: symlink", c->o->what, path);
    int r = apply_meta(c, e, -1, pfd, base, path, true, err);
    invalidate_cache(c);
    return r;
  }
  case AE_IFCHR:
  case AE_IFBLK:
  case AE_IFIFO: {
    if (!c->o->overlay)
      return 0; /* staging an archive: device nodes mean nothing there */
    if (clear_name(c, pfd, base, path, err) < 0)
      return -1;
    if (mknodat(pfd, base, type | 0600, archive_entry_rdev(e)) < 0)
      return hv_error(err, errno, "%s: entry `%s`: mknod", c->o->what, path);
    return apply_meta(c, e, -1, pfd, base, path, false, err);
  }
  default:
    hv_debug("%s: entry `%s`: skipping unsupported type %o", c->o->what, path, type);
    return 0;
  }
}

static void restore_dir_times(struct unpack_ctx *c) {
  for (size_t i = c->n_dirs; i-- > 0;) {
    cleanup_close int fd =
        hv_openat_beneath(c->rootfd, c->dirs[i].path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
    if (fd >= 0)
      futimens(fd, c->dirs[i].ts);
  }
}

int hv_unpack_archive(struct archive *a, int rootfd, const struct hv_unpack_opts *o,
                      struct hv_unpack_stats *st, hv_error_t *err) {
  struct unpack_ctx c = {.rootfd = rootfd, .o = o, .st = st, .cached_fd = -1};
  invalidate_cache(&c);
  int rc = 0;
  for (;;) {
    struct archive_entry *e;
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN) {
      rc = hv_error(err, 0, "%s: %s", o->what, archive_error_string(a));
      break;
    }
    if (++st->entries > o->max_entries) {
      rc = hv_error(err, 0, "%s: more than %llu entries (limit; see --max-entries)", o->what,
                    (unsigned long long)o->max_entries);
      break;
    }
    if (archive_entry_size(e) > 0 &&
        st->bytes + (uint64_t)archive_entry_size(e) > o->max_bytes) {
      rc = hv_error(err, 0, "%s: more than %llu bytes unpacked (limit; see --max-size)", o->what,
                    (unsigned long long)o->max_bytes);
      break;
    }
    if ((rc = extract_entry(&c, a, e, err)) < 0)
      break;
  }
  if (rc == 0)
    restore_dir_times(&c);
  invalidate_cache(&c);
  for (size_t i = 0; i < c.n_dirs; i++)
    free(c.dirs[i].path);
  free(c.dirs);
  return rc;
}
