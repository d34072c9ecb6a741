/* fds.c: ns_close_fds.  No runtime fd may reach the workload: a leaked
 * directory fd of the host is a container escape (CVE-2024-21626). */
#include "sandbox.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/syscall.h>

static bool is_kept(int fd, const int *keep, size_t n_keep) {
  for (size_t i = 0; i < n_keep; i++)
    if (keep[i] == fd)
      return true;
  return fd >= 0 && fd == ns_seccomp_listener_fd;
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* Fallback without close_range: walk /proc/self/fd. */
int ns_close_fds_by_proc(int first, const int *keep, size_t n_keep, hv_error_t *err) {
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return hv_error(err, errno, "close fds: open /proc/self/fd");
  int self = dirfd(d);
  struct dirent *de;
  while ((de = readdir(d))) {
    char *end;
    long fd = strtol(de->d_name, &end, 10);
    if (*end || end == de->d_name || fd < first || fd == self || is_kept((int)fd, keep, n_keep))
      continue;
    close((int)fd);
  }
  closedir(d);
  return 0;
}

int ns_close_fds(int preserve_fds, const int *keep, size_t n_keep, hv_error_t *err) {
  if (preserve_fds < 0)
    return hv_error(err, 0, "--preserve-fds: must not be negative");
  int first = 3 + preserve_fds;
  size_t n = 0;
  int sorted[n_keep + 1];
  for (size_t i = 0; i < n_keep; i++)
    if (keep[i] >= first)
      sorted[n++] = keep[i];
  if (ns_seccomp_listener_fd >= first)
    sorted[n++] = ns_seccomp_listener_fd;
  qsort(sorted, n, sizeof sorted[0], cmp_int);
  /* Close the gaps between kept fds. */
  unsigned lo = (unsigned)first;
  bool fallback = false;
  for (size_t i = 0; i <= n && !fallback; i++) {
    unsigned hi = i < n ? (unsigned)sorted[i] : UINT_MAX;
    if (i < n && (unsigned)sorted[i] < lo)
      continue;
    if (hi > lo && syscall(SYS_close_range, lo, i < n ? hi - 1 : UINT_MAX, 0) < 0) {
      if (errno != ENOSYS && errno != EINVAL)
        return hv_error(err, errno, "close_range");
      fallback = true;
    }
    if (i < n)
      lo = hi + 1;
  }
  if (fallback && ns_close_fds_by_proc(first, keep, n_keep, err) < 0)
    return -1;
  /* The kept fds belong to the runtime: make sure they go at execve. */
  for (size_t i = 0; i < n; i++) {
    int fl = fcntl(sorted[i], F_GETFD);
    if (fl >= 0 && !(fl & FD_CLOEXEC))
      fcntl(sorted[i], F_SETFD, fl | FD_CLOEXEC);
  }
  return 0;
}
