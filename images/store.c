/* store.c: opening the image store, its locks, per-operation temp dirs and
 * the confined-open helpers every other file uses. */
#include "store_internal.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>

const char *hv_image_store_dir(const char *flag) {
  if (flag && *flag)
    return flag;
  const char *env = getenv("HVRUN_STORE");
  return env && *env ? env : HV_DEFAULT_STORE;
}

/* glibc 2.36 has no openat2() wrapper, so call the syscall directly. */
static int openat2_raw(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve) {
  struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC, .mode = mode, .resolve = resolve};
  for (;;) {
    long r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (r >= 0 || errno != EAGAIN)
      return (int)r;
  }
}

int hv_openat_beneath(int dirfd, const char *path, int flags, mode_t mode) {
  return openat2_raw(dirfd, *path ? path : ".", flags, mode,
                     RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
}

int hv_openat_in_root(int dirfd, const char *path, int flags, mode_t mode) {
  return openat2_raw(dirfd, *path ? path : ".", flags, mode,
                     RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

char *hv_read_fd_exact(int fd, size_t n) {
  char *buf = hv_xmalloc0(n + 1);
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      if (r == 0)
        errno = 0; /* shrank under us: no errno to report */
      free(buf);
      return NULL;
    }
    got += (size_t)r;
  }
  return buf;
}

int hv_read_at(int dirfd, const char *path, size_t max, char **out, size_t *len,
               hv_error_t *err) {
  cleanup_close int fd = hv_openat_beneath(dirfd, path, O_RDONLY, 0);
  if (fd < 0)
    return hv_error(err, errno, "open `%s`", path);
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
    return hv_error(err, 0, "`%s` is not a regular file", path);
  if ((uint64_t)st.st_size > max)
    return hv_error(err, 0, "`%s` is too large (%lld bytes, max %zu)", path,
                    (long long)st.st_size, max);
  size_t n = (size_t)st.st_size;
  char *buf = hv_read_fd_exact(fd, n);
  if (!buf)
    return hv_error(err, errno, "read `%s`", path);
  *out = buf;
  if (len)
    *len = n;
  return 0;
}

static int open_subdir(int dirfd, const char *name, const char *store, hv_error_t *err) {
  if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
    return hv_error(err, errno, "create `%s/%s`", store, name);
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return hv_error(err, errno, "open `%s/%s`", store, name);
  return fd;
}

int hv_image_store_open(const char *dir, struct hv_image_store **out, hv_error_t *err) {
  if (!dir || !*dir)
    return hv_error(err, 0, "--store: empty path");
  if (hv_mkdir_p(dir, 0700, err) < 0)
    return hv_error_wrap(err, "image store");
  struct hv_image_store *s = hv_xmalloc0(sizeof *s);
  s->dir = hv_xstrdup(dir);
  s->blobs_fd = s->layers_fd = s->tmp_fd = -1;
  s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->dirfd < 0) {
    hv_image_store_close(s);
    return hv_error(err, errno, "open image store `%s`", dir);
  }
  cleanup_close int blobs = open_subdir(s->dirfd, "blobs", dir, err);
  if (blobs < 0 || (s->blobs_fd = open_subdir(blobs, "sha256", dir, err)) < 0 ||
      (s->layers_fd = open_subdir(s->dirfd, "layers", dir, err)) < 0 ||
      (s->tmp_fd = open_subdir(s->dirfd, "tmp", dir, err)) < 0) {
    hv_image_store_close(s);
    return -1;
  }
  *out = s;
  return 0;
}

void hv_image_store_close(struct hv_image_store *s) {
  if (!s)
    return;
  int *fds[] = {&s->dirfd, &s->blobs_fd, &s->layers_fd, &s->tmp_fd};
  for (size_t i = 0; i < 4; i++)
    if (*fds[i] >= 0)
      close(*fds[i]);
  free(s->dir);
  free(s);
}

int hv_store_lock(struct hv_image_store *s, const char *name, enum hv_lock_kind k, int *fd,
                  hv_error_t *err) {
  int l = openat(s->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (l < 0)
    return hv_error(err, errno, "open lock `%s/%s`", s->dir, name);
  while (flock(l, k == HV_LOCK_EX ? LOCK_EX : LOCK_SH) < 0) {
    if (errno == EINTR)
      continue;
    int e = errno;
    close(l);
    return hv_error(err, e, "lock `%s/%s`", s->dir, name);
  }
  *fd = l;
  return 0;
}

/* The lock file is created under a temporary name and flocked before it is
 * renamed to `<id>.lock`, so a cleaner never sees an unlocked live one. */
int hv_tmp_create(struct hv_image_store *s, struct hv_tmp *t, hv_error_t *err) {
  for (int attempt = 0; attempt < 16; attempt++) {
    unsigned char rnd[8];
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
      return hv_error(err, errno, "getrandom");
    char id[40];
    snprintf(id, sizeof id, "%d-%02x%02x%02x%02x%02x%02x%02x%02x", getpid(), rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    cleanup_free char *pending = hv_xasprintf("%s.locktmp", id);
    cleanup_free char *lockname = hv_xasprintf("%s.lock", id);
    int l = openat(s->tmp_fd, pending, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (l < 0)
      return hv_error(err, errno, "create `%s/tmp/%s`", s->dir, pending);
    if (flock(l, LOCK_EX | LOCK_NB) < 0 || renameat(s->tmp_fd, pending, s->tmp_fd, lockname) < 0) {
      close(l); /* a cleaner raced us for the pending name; try another id */
      continue;
    }
    if (mkdirat(s->tmp_fd, id, 0700) < 0) {
      int e = errno;
      unlinkat(s->tmp_fd, lockname, 0);
      close(l);
      return hv_error(err, e, "create `%s/tmp/%s`", s->dir, id);
    }
    t->fd = openat(s->tmp_fd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (t->fd < 0) {
      int e = errno;
      hv_rm_rf_at(s->tmp_fd, id);
      unlinkat(s->tmp_fd, lockname, 0);
      close(l);
      return hv_error(err, e, "open `%s/tmp/%s`", s->dir, id);
    }
    t->name = hv_xstrdup(id);
    t->lockfd = l;
    return 0;
  }
  return hv_error(err, 0, "could not create a temp dir in `%s/tmp`", s->dir);
}

void hv_tmp_release(struct hv_image_store *s, struct hv_tmp *t) {
  if (!t->name)
    return;
  if (t->fd >= 0)
    close(t->fd);
  hv_rm_rf_at(s->tmp_fd, t->name);
  cleanup_free char *lockname = hv_xasprintf("%s.lock", t->name);
  unlinkat(s->tmp_fd, lockname, 0);
  close(t->lockfd);
  free(t->name);
  t->name = NULL;
  t->fd = t->lockfd = -1;
}

int hv_tmp_clean(struct hv_image_store *s) {
  int removed = 0;
  int dfd = dup(s->tmp_fd);
  if (dfd < 0)
    return 0;
  DIR *d = fdopendir(dfd);
  if (!d) {
    close(dfd);
    return 0;
  }
  rewinddir(d);
  struct dirent *e;
  while ((e = readdir(d))) {
    const char *dot = strrchr(e->d_name, '.');
    if (!dot || (strcmp(dot, ".lock") != 0 && strcmp(dot, ".locktmp") != 0))
      continue;
    int l = openat(s->tmp_fd, e->d_name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (l < 0)
      continue;
    if (flock(l, LOCK_EX | LOCK_NB) == 0) { /* owner is gone */
      cleanup_free char *id = strndup(e->d_name, (size_t)(dot - e->d_name));
      hv_rm_rf_at(s->tmp_fd, id);
      unlinkat(s->tmp_fd, e->d_name, 0);
      removed++;
    }
    close(l);
  }
  /* Entries without any lock file (should not happen) are left alone. */
  closedir(d);
  return removed;
}

static int rm_children(int dfd) {
  int dup_fd = dup(dfd);
  if (dup_fd < 0)
    return -1;
  DIR *d = fdopendir(dup_fd);
  if (!d) {
    close(dup_fd);
    return -1;
  }
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    if (hv_rm_rf_at(dfd, e->d_name) < 0)
      rc = -1;
  }
  closedir(d);
  return rc;
}

int hv_rm_rf_at(int dirfd, const char *name) {
  if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
    return 0;
  if (errno != EISDIR && errno != EPERM)
    return -1;
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : -1;
  rm_children(fd);
  close(fd);
  if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return -1;
  return 0;
}
