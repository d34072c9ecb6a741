/* rootdisk.c: turn a root filesystem directory into the guest's root disk,
 * an erofs image (read-only, compact, mountable by the guest kernel without
 * a journal).  The image store (images/) will hand out ready disks later;
 * this is the path for plain bundles and tests. */
#include "guest_proto.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

int hv_rootdisk_from_dir(const char *dir, const char *out_path, hv_error_t *err) {
  struct stat st;
  if (stat(dir, &st) < 0)
    return hv_error(err, errno, "root filesystem `%s`", dir);
  if (!S_ISDIR(st.st_mode))
    return hv_error(err, ENOTDIR, "root filesystem `%s` is not a directory", dir);
  cleanup_free char *tmp = hv_xasprintf("%s.tmp.%d", out_path, (int)getpid());
  pid_t pid = fork();
  if (pid < 0)
    return hv_error(err, errno, "fork mkfs.erofs");
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0)
      dup2(devnull, STDOUT_FILENO);
    /* Uncompressed: the guest reads it straight from the page cache. */
    execlp("mkfs.erofs", "mkfs.erofs", "--quiet", tmp, dir, (char *)NULL);
    dprintf(STDERR_FILENO, "hvrun: exec mkfs.erofs: %s (install erofs-utils)\n", strerror(errno));
    _exit(127);
  }
  int ws;
  while (waitpid(pid, &ws, 0) < 0)
    if (errno != EINTR)
      return hv_error(err, errno, "wait for mkfs.erofs");
  if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
    unlink(tmp);
    return hv_error(err, 0, "mkfs.erofs of `%s` failed (status %d)", dir,
                    WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
  }
  if (rename(tmp, out_path) < 0) {
    int e = errno;
    unlink(tmp);
    return hv_error(err, e, "rename `%s` to `%s`", tmp, out_path);
  }
  return 0;
}
