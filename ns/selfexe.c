/* selfexe.c: CVE-2019-5736 protection.
 *
 * The container's first process (and every process `exec` puts into a
 * container) runs hvrun's code until it execs the workload.  In that window
 * a process of the container can open /proc/<pid>/exe, and after hvrun
 * exits, reopen it for writing and replace the host's hvrun binary.  We
 * therefore never run container-facing code from the host binary: before
 * create/run/exec/one-shot, hvrun copies itself into a memfd, seals it
 * against every change (F_SEAL_SEAL|SHRINK|GROW|WRITE) and re-execs that
 * copy.  /proc/<pid>/exe then names an anonymous, immutable file; writing
 * through it fails with EPERM whatever the container does.
 *
 * Cost: one copy of the binary in shmem per live hvrun/init process that
 * still runs the copy (measured figures are in the report and in
 * tests/integration/test_faults.py).  The workload's execve drops it.
 *
 * HVRUN_UNSAFE_NO_EXE_SEAL=1 in hvrun's own environment skips the copy;
 * it exists only so the cost can be measured, and the tests check that the
 * default is protected. */
#include "lifecycle.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define HV_REQUIRED_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

bool hv_selfexe_is_sealed(void) {
  cleanup_close int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  int seals = fcntl(fd, F_GET_SEALS);
  return seals >= 0 && (seals & HV_REQUIRED_SEALS) == HV_REQUIRED_SEALS;
}

int hv_selfexe_ensure_sealed(char **argv, hv_error_t *err) {
  const char *skip = getenv("HVRUN_UNSAFE_NO_EXE_SEAL");
  if (skip && strcmp(skip, "1") == 0)
    return 0;
  if (hv_selfexe_is_sealed())
    return 0;
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
