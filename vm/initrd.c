/* initrd.c: the guest's initramfs, a cpio "newc" archive (the format the
 * kernel unpacks, Documentation/driver-api/early-userspace/buffer-format.rst)
 * holding the static init and the container's config.  It is written
 * uncompressed: it is small, and the guest then spends no time inflating. */
#include "guest_proto.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

struct cpio {
  FILE *f;
  uint32_t ino;
  hv_error_t *err;
  const char *path;
};

static int put(struct cpio *c, const void *data, size_t len) {
  static const char zeros[4];
  if (len && fwrite(data, 1, len, c->f) != len)
    return hv_error(c->err, errno, "write `%s`", c->path);
  /* Header+name and file data are each padded to 4 bytes; the offset
   * tells how much is missing. */
  long off = ftell(c->f);
  if (off < 0)
    return hv_error(c->err, errno, "ftell `%s`", c->path);
  size_t pad = (4 - (size_t)off % 4) % 4;
  if (pad && fwrite(zeros, 1, pad, c->f) != pad)
    return hv_error(c->err, errno, "write `%s`", c->path);
  return 0;
}

static int entry(struct cpio *c, const char *name, uint32_t mode, uint32_t rmaj, uint32_t rmin,
                 const void *data, size_t len) {
  if (len > UINT32_MAX)
    return hv_error(c->err, EFBIG, "initrd entry `%s`: %zu bytes is too large for cpio", name, len);
  char hdr[128];
  uint32_t namesize = (uint32_t)strlen(name) + 1;
  /* The trailer has inode 0 and nlink 1 like everything else; real entries
   * get distinct inodes so the kernel does not treat them as hard links. */
  uint32_t ino = strcmp(name, "TRAILER!!!") ? ++c->ino : 0;
  uint32_t nlink = S_ISDIR(mode) ? 2 : 1;
  snprintf(hdr, sizeof hdr, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino,
           mode, 0u, 0u, nlink, 0u, (uint32_t)len, 0u, 0u, rmaj, rmin, namesize, 0u);
  if (fwrite(hdr, 1, 110, c->f) != 110 || put(c, name, namesize) < 0)
    return hv_error(c->err, errno, "write `%s`", c->path);
  return put(c, data, len);
}

/* The modules and their load order (see guest_proto.h). */
static int put_modules(struct cpio *c, const struct vm_kmod *mods, size_t n) {
  if (!n)
    return 0;
  if (entry(c, HV_GUEST_MODULES_DIR + 1, S_IFDIR | 0700, 0, 0, NULL, 0) < 0)
    return -1;
  size_t cap = 1;
  for (size_t i = 0; i < n; i++)
    cap += strlen(mods[i].name) + 1;
  cleanup_free char *order = hv_xmalloc0(cap);
  for (size_t i = 0; i < n; i++) {
    if (strchr(mods[i].name, '/') || !mods[i].name[0])
      return hv_error(c->err, EINVAL, "initrd: bad module name `%s`", mods[i].name);
    cleanup_free char *name = hv_xasprintf("%s/%s.ko", HV_GUEST_MODULES_DIR + 1, mods[i].name);
    if (entry(c, name, S_IFREG | 0600, 0, 0, mods[i].data, mods[i].len) < 0)
      return -1;
    strcat(order, mods[i].name);
    strcat(order, "\n");
  }
  return entry(c, HV_GUEST_MODULES_ORDER + 1, S_IFREG | 0600, 0, 0, order, strlen(order));
}

int hv_initrd_write(const char *out_path, const char *init_path, const char *config_json,
                    size_t config_len, const struct vm_kmod *mods, size_t n_mods,
                    hv_error_t *err) {
  cleanup_free char *init = NULL;
  size_t init_len = 0;
  if (hv_read_file(init_path, &init, &init_len, err) < 0)
    return hv_error_wrap(err, "guest init");
  if (init_len < 4 || memcmp(init, "\177ELF", 4) != 0)
    return hv_error(err, ENOEXEC, "guest init `%s` is not an ELF executable", init_path);

  cleanup_free char *tmp = hv_xasprintf("%s.tmp.%d", out_path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return hv_error(err, errno, "create `%s`", tmp);
  cleanup_fclose FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    unlink(tmp);
    return hv_error(err, errno, "fdopen `%s`", tmp);
  }
  struct cpio c = {.f = f, .err = err, .path = out_path};
  const uint32_t dir = S_IFDIR | 0755;
  int r = 0;
  r = r ? r : entry(&c, "dev", dir, 0, 0, NULL, 0);
  /* The kernel opens /dev/console for init's stdio before init runs, so
   * the node must be in the archive (devtmpfs is mounted later). */
  r = r ? r : entry(&c, "dev/console", S_IFCHR | 0600, 5, 1, NULL, 0);
  r = r ? r : entry(&c, "proc", dir, 0, 0, NULL, 0);
  r = r ? r : entry(&c, "sys", dir, 0, 0, NULL, 0);
  r = r ? r : entry(&c, "newroot", dir, 0, 0, NULL, 0);
  r = r ? r : entry(&c, "hvrun", S_IFDIR | 0700, 0, 0, NULL, 0);
  r = r ? r : entry(&c, "hvrun/config.json", S_IFREG | 0600, 0, 0, config_json, config_len);
  /* Entropy for the guest's RNG: without it the first read of /dev/urandom
   * (jansson's hash seed, any workload's getrandom) waits seconds for the
   * kernel's jitter entropy under emulation. */
  uint8_t seed[HV_GUEST_SEED_LEN];
  if (r == 0 && getrandom(seed, sizeof seed, 0) != (ssize_t)sizeof seed)
    r = hv_error(err, errno, "getrandom for the guest's RNG seed");
  r = r ? r : entry(&c, "hvrun/seed", S_IFREG | 0600, 0, 0, seed, sizeof seed);
  r = r ? r : put_modules(&c, mods, n_mods);
  r = r ? r : entry(&c, "init", S_IFREG | 0755, 0, 0, init, init_len);
  r = r ? r : entry(&c, "TRAILER!!!", 0, 0, 0, NULL, 0);
  if (r == 0 && fflush(f) != 0)
    r = hv_error(err, errno, "write `%s`", out_path);
  if (r == 0 && rename(tmp, out_path) < 0)
    r = hv_error(err, errno, "rename `%s` to `%s`", tmp, out_path);
  if (r < 0)
    unlink(tmp);
  return r;
}
