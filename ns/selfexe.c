/* selfexe.c: CVE-2019-5736 protection.
 *
 * The container's first process (and every process `exec` puts into a
 * container) runs hvrun's code until it execs the workload.  In that window
 * a process of the container can open /proc/<pid>/exe, and after hvrun
 * exits, reopen it for writing and replace the host's hvrun binary.  We
 * therefore never run container-facing code from a writable path to the
 * host binary: before create/run/exec/one-shot, hvrun re-execs itself
 * through one of these, in order of preference:
 *
 *  1. a read-only, detached bind mount of its own binary: open_tree
 *     (OPEN_TREE_CLONE) of /proc/self/exe makes a private mount of just
 *     that file that no mount namespace contains, mount_setattr makes it
 *     read-only, and execveat runs it.  /proc/<pid>/exe then names the
 *     file through that mount, so opening it for writing fails with EROFS,
 *     and nobody can remount it (it is in no namespace).  Costs three
 *     syscalls and no memory: the pages are the host file's page cache.
 *  2. where that is refused (no CAP_SYS_ADMIN over our mount namespace,
 *     kernel < 5.12): a sealed memfd copy of the binary
 *     (F_SEAL_SEAL|SHRINK|GROW|WRITE): an anonymous, immutable file.
 *     Costs a copy of the binary in shmem per process still running it.
 *
 * Either way the workload's execve drops the protected image.
 *
 * HVRUN_UNSAFE_NO_EXE_SEAL=1 in hvrun's own environment skips the re-exec;
 * it exists only so the cost can be measured, and the tests check that the
 * default is protected.  HVRUN_EXE_PROTECT=memfd forces the fallback (so
 * the tests can cover it). */
#include "lifecycle.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <linux/mount.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

#define HV_REQUIRED_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

extern char **environ;

bool hv_selfexe_is_sealed(void) {
  cleanup_close int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals >= 0 && (seals & HV_REQUIRED_SEALS) == HV_REQUIRED_SEALS)
    return true;
  /* A read-only mount (ours, or a read-only /usr): writing through
   * /proc/<pid>/exe fails with EROFS, and the container cannot remount a
   * mount of the host's namespace. */
  struct statvfs sv;
  return fstatvfs(fd, &sv) == 0 && (sv.f_flag & ST_RDONLY);
}

/* 1: detached read-only bind mount of the binary; returns only on failure. */
static void reexec_readonly_mount(char **argv) {
  int fd = (int)syscall(SYS_open_tree, AT_FDCWD, "/proc/self/exe",
                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (fd < 0)
    return;
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr) == 0)
    syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
  int e = errno;
  close(fd);
  errno = e;
}

/* 2: sealed memfd copy. */
static int reexec_sealed_memfd(char **argv, hv_error_t *err) {
  cleanup_close int src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (src < 0)
    return hv_error(err, errno, "open /proc/self/exe");
  struct stat sb;
  if (fstat(src, &sb) < 0)
    return hv_error(err, errno, "stat /proc/self/exe");
  cleanup_close int mfd = memfd_create("hvrun", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0)
    return hv_error(err, errno, "memfd_create");
  off_t done = 0;
  while (done < sb.st_size) {
    ssize_t n = sendfile(mfd, src, NULL, (size_t)(sb.st_size - done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return hv_error(err, n < 0 ? errno : EIO, "copy /proc/self/exe into a memfd");
    done += n;
  }
  if (fcntl(mfd, F_ADD_SEALS, HV_REQUIRED_SEALS) < 0)
    return hv_error(err, errno, "seal the memfd copy of hvrun");
  /* fexecve of an O_CLOEXEC fd is fine for an ELF binary: the kernel holds
   * the file as the new image before closing the fd. */
  fexecve(mfd, argv, environ);
  return hv_error(err, errno, "re-exec hvrun from its sealed copy");
}

int hv_selfexe_ensure_sealed(char **argv, hv_error_t *err) {
  const char *skip = getenv("HVRUN_UNSAFE_NO_EXE_SEAL");
  if (skip && strcmp(skip, "1") == 0)
    return 0;
  if (hv_selfexe_is_sealed())
    return 0;
  const char *how = getenv("HVRUN_EXE_PROTECT");
  if (!how || strcmp(how, "memfd") != 0)
    reexec_readonly_mount(argv);
  return reexec_sealed_memfd(argv, err);
}
