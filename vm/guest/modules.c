/* modules.c: kernel modules from the initramfs, for a distribution kernel
 * that builds its virtio, erofs and overlayfs drivers as modules (the host
 * side is vm/kmod.c).  They are loaded in the order the host resolved,
 * dependencies first, before the init opens its consoles and disk.  With
 * hvrun's own kernel there is nothing to load. */
#include "init.h"
#include "../guest_proto.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

/* Drivers bind while their module loads, but device nodes for a probed
 * disk or console can still be on their way; wait this long for each. */
#define DEVICE_WAIT_MS 5000

static int load_one(const char *name, hv_error_t *err) {
  cleanup_free char *path = hv_xasprintf(HV_GUEST_MODULES_DIR "/%s.ko", name);
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return hv_error(err, errno, "kernel module `%s`: open `%s`", name, path);
  /* EEXIST: already there (built in, or pulled in before). */
  if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
    return hv_error(err, errno, "kernel module `%s`: finit_module", name);
  /* The initramfs stays in memory: give the module's pages back. */
  unlink(path);
  return 0;
}

int guest_modules_load(hv_error_t *err) {
  cleanup_free char *order = NULL;
  size_t len = 0;
  if (hv_read_file(HV_GUEST_MODULES_ORDER, &order, &len, NULL) < 0)
    return 0; /* a self-contained kernel */
  char *save = NULL;
  for (char *n = strtok_r(order, "\n", &save); n; n = strtok_r(NULL, "\n", &save))
    if (*n && load_one(n, err) < 0)
      return -1;
  return 1;
}

void guest_wait_device(const char *path) {
  struct timespec tick = {0, 10 * 1000 * 1000};
  for (int ms = 0; ms < DEVICE_WAIT_MS; ms += 10) {
    struct stat st;
    if (stat(path, &st) == 0)
      return;
    nanosleep(&tick, NULL);
  }
}
