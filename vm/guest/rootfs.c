/* rootfs.c: the guest's root filesystem.  The image arrives as an erofs
 * disk (/dev/vda, read-only); writes go to a tmpfs overlay so the disk can
 * be shared by several VMs.  Spec mounts that make sense without the host's
 * filesystem (proc, sysfs, tmpfs, devpts, mqueue, cgroup) are made inside
 * the guest; bind mounts of host paths cannot be, and are skipped with a
 * console line. */
#include "init.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define ROOT_DISK "/dev/vda"
#define LOWER "/hvrun/lower"
#define RW "/hvrun/rw"
#define NEWROOT "/newroot"

struct mount_flag { const char *name; unsigned long set, clear; };
static const struct mount_flag mount_flags[] = {
    {"ro", MS_RDONLY, 0},          {"rw", 0, MS_RDONLY},
    {"nosuid", MS_NOSUID, 0},      {"suid", 0, MS_NOSUID},
    {"nodev", MS_NODEV, 0},        {"dev", 0, MS_NODEV},
    {"noexec", MS_NOEXEC, 0},      {"exec", 0, MS_NOEXEC},
    {"sync", MS_SYNCHRONOUS, 0},   {"async", 0, MS_SYNCHRONOUS},
    {"noatime", MS_NOATIME, 0},    {"atime", 0, MS_NOATIME},
    {"nodiratime", MS_NODIRATIME, 0}, {"diratime", 0, MS_NODIRATIME},
    {"relatime", MS_RELATIME, 0},  {"norelatime", 0, MS_RELATIME},
    {"strictatime", MS_STRICTATIME, 0},
    /* propagation flags mean nothing in the guest's single namespace */
    {"private", 0, 0}, {"rprivate", 0, 0}, {"shared", 0, 0}, {"rshared", 0, 0},
    {"slave", 0, 0}, {"rslave", 0, 0}, {"unbindable", 0, 0}, {"runbindable", 0, 0},
};

/* Split OCI mount options into MS_* flags and the fs-specific data string. */
static void parse_options(char **opts, unsigned long *flags, char **data) {
  size_t cap = 1;
  for (size_t i = 0; opts && opts[i]; i++)
    cap += strlen(opts[i]) + 1;
  char *d = hv_xmalloc0(cap);
  *flags = 0;
  for (size_t i = 0; opts && opts[i]; i++) {
    bool known = false;
    for (size_t k = 0; k < sizeof mount_flags / sizeof mount_flags[0]; k++)
      if (!strcmp(opts[i], mount_flags[k].name)) {
        *flags = (*flags | mount_flags[k].set) & ~mount_flags[k].clear;
        known = true;
      }
    /* newinstance is implied on modern kernels and tmpcopyup is runc's own */
    if (known || !strcmp(opts[i], "newinstance") || !strcmp(opts[i], "tmpcopyup"))
      continue;
    if (*d)
      strcat(d, ",");
    strcat(d, opts[i]);
  }
  *data = d;
}

static int mount_one(const char *src, const char *target, const char *type, unsigned long flags,
                     const char *data, hv_error_t *err) {
  if (hv_mkdir_p(target, 0755, err) < 0)
    return -1;
  if (mount(src, target, type, flags, data) < 0)
    return hv_error(err, errno, "mount %s on `%s` (options \"%s\")", type, target,
                    data ? data : "");
  return 0;
}

/* Guest-side equivalent of one spec mount, or 0 after a console note when
 * it cannot be made inside the guest. */
static int spec_mount(const struct hv_oci_mount *m, hv_error_t *err) {
  const char *type = m->type ? m->type : "";
  if (!m->destination || m->destination[0] != '/')
    return hv_error(err, EINVAL, "mounts: destination `%s` is not absolute",
                    m->destination ? m->destination : "");
  cleanup_free char *target = hv_xasprintf(NEWROOT "%s", m->destination);
  unsigned long flags;
  cleanup_free char *data = NULL;
  parse_options(m->options, &flags, &data);

  if (!strcmp(m->destination, "/dev") && !strcmp(type, "tmpfs"))
    /* The guest's devices are real: devtmpfs instead of a node-less tmpfs. */
    return mount_one("devtmpfs", target, "devtmpfs", flags & ~MS_NODEV, NULL, err);
  if (!strcmp(type, "cgroup"))
    /* The guest kernel runs the unified hierarchy only. */
    return mount_one("cgroup2", target, "cgroup2", flags, NULL, err);
  if (!strcmp(type, "devpts")) {
    if (mount_one("devpts", target, "devpts", flags, data, err) < 0)
      return -1;
    /* /dev/ptmx must reach this devpts instance. */
    cleanup_free char *ptmx = hv_xasprintf(NEWROOT "%s/../ptmx", m->destination);
    unlink(ptmx);
    if (symlink("pts/ptmx", ptmx) < 0)
      guest_log("mounts: cannot link %s to pts/ptmx: %s", ptmx, strerror(errno));
    return 0;
  }
  static const char *const guest_types[] = {"proc", "sysfs", "tmpfs", "mqueue", "cgroup2",
                                            "devtmpfs"};
  for (size_t i = 0; i < sizeof guest_types / sizeof guest_types[0]; i++)
    if (!strcmp(type, guest_types[i]))
      return mount_one(m->source ? m->source : type, target, type, flags, data, err);
  guest_log("mounts: skipping %s mount of `%s` on `%s` (host paths are not visible in a VM)",
            *type ? type : "bind", m->source ? m->source : "", m->destination);
  return 0;
}

static bool spec_mounts(const struct hv_oci_config *cfg, const char *dest) {
  for (size_t i = 0; i < cfg->n_mounts; i++)
    if (cfg->mounts[i].destination && !strcmp(cfg->mounts[i].destination, dest))
      return true;
  return false;
}

/* The root disk, read-only; a missing disk means the kernel found no
 * virtio-mmio devices, which is the kernel's configuration, not the image. */
static int mount_root_disk(const char *target, hv_error_t *err) {
  if (mount(ROOT_DISK, target, "erofs", MS_RDONLY, NULL) == 0)
    return 0;
  if (errno == ENOENT)
    return hv_error(err, errno, "mount root disk " ROOT_DISK " (erofs) on `%s`: the guest "
                    "kernel found no virtio-mmio disk (it needs VIRTIO_MMIO_CMDLINE_DEVICES, "
                    "or ACPI with virtio_mmio as a module)", target);
  return hv_error(err, errno, "mount root disk " ROOT_DISK " (erofs) on `%s`", target);
}

int guest_rootfs_setup(const struct hv_oci_config *cfg, hv_error_t *err) {
  if (hv_mkdir_p(LOWER, 0755, err) < 0 || hv_mkdir_p(NEWROOT, 0755, err) < 0)
    return -1;
  if (cfg->root.readonly) {
    if (mount_root_disk(NEWROOT, err) < 0)
      return -1;
  } else {
    if (mount_root_disk(LOWER, err) < 0)
      return -1;
    if (mount_one("tmpfs", RW, "tmpfs", 0, "mode=0755", err) < 0 ||
        hv_mkdir_p(RW "/upper", 0755, err) < 0 || hv_mkdir_p(RW "/work", 0755, err) < 0)
      return -1;
    if (mount("overlay", NEWROOT, "overlay", 0,
              "lowerdir=" LOWER ",upperdir=" RW "/upper,workdir=" RW "/work") < 0)
      return hv_error(err, errno, "mount overlay (tmpfs over " ROOT_DISK ") on " NEWROOT);
  }

  /* A read-only erofs root cannot get new mount points: only mount on
   * directories the image already has there. */
  for (size_t i = 0; i < cfg->n_mounts; i++) {
    const struct hv_oci_mount *m = &cfg->mounts[i];
    if (cfg->root.readonly && m->destination) {
      cleanup_free char *t = hv_xasprintf(NEWROOT "%s", m->destination);
      struct stat st;
      if (stat(t, &st) < 0) {
        guest_log("mounts: skipping `%s`: missing in the read-only root", m->destination);
        continue;
      }
    }
    if (spec_mount(m, err) < 0)
      return hv_error_wrap(err, "mounts[%zu]", i);
  }
  /* What the init and most workloads need even when the spec is bare. */
  if (!spec_mounts(cfg, "/dev") &&
      mount_one("devtmpfs", NEWROOT "/dev", "devtmpfs", MS_NOSUID, NULL, err) < 0)
    return -1;
  if (!spec_mounts(cfg, "/proc") &&
      mount_one("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0)
    return -1;

  if (chdir(NEWROOT) < 0)
    return hv_error(err, errno, "chdir " NEWROOT);
  /* The initramfs cannot be pivot_root'ed away: move the new root over it
   * and chroot, as switch_root does. */
  if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
    return hv_error(err, errno, "move " NEWROOT " to /");
  if (chroot(".") < 0 || chdir("/") < 0)
    return hv_error(err, errno, "chroot into the new root");
  return 0;
}

int guest_sysctl_apply(const struct hv_oci_config *cfg, hv_error_t *err) {
  for (size_t i = 0; i < cfg->linux.n_sysctl; i++) {
    const struct hv_oci_keyval *kv = &cfg->linux.sysctl[i];
    if (!kv->key || strstr(kv->key, ".."))
      return hv_error(err, EINVAL, "linux.sysctl: bad key `%s`", kv->key ? kv->key : "");
    cleanup_free char *path = hv_xasprintf("/proc/sys/%s", kv->key);
    for (char *p = path + strlen("/proc/sys/"); *p; p++)
      if (*p == '.')
        *p = '/';
    if (hv_write_file(path, kv->value ? kv->value : "", err) < 0)
      return hv_error_wrap(err, "linux.sysctl `%s`", kv->key);
  }
  return 0;
}
