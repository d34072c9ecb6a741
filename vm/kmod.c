/* kmod.c: the kernel modules a modular guest kernel needs before the guest
 * init can reach its devices.
 *
 * hvrun's own kernel builds everything in.  A distribution kernel (Debian's
 * stock kernels, for one) builds virtio-mmio, virtio-blk, virtio-console,
 * erofs and overlayfs as modules and cannot take virtio-mmio devices from
 * the command line; such a guest needs those modules in its initramfs and
 * its devices declared through ACPI.  This file finds the kernel's module
 * tree, resolves the wanted modules with their dependencies (the `depends=`
 * field of each module's .modinfo, so no depmod run is needed: a .deb's
 * tree has no modules.dep until it is installed) and reads them,
 * decompressed, for the initrd writer.  The guest init loads them in order
 * (vm/guest/modules.c). */
#include "vm_backend.h"
#include "vmm.h"
#include <elf.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* What the guest init needs, by module name: the transport, the root disk,
 * the consoles (workload stdio and control channel), the root filesystem
 * and its writable overlay. */
static const char *const wanted[] = {"virtio_mmio", "virtio_blk", "virtio_console", "erofs",
                                     "overlay", NULL};

#define KMOD_MAX 64
#define KMOD_BYTES_MAX (64u << 20)

void vm_kmods_free(struct vm_kmods *k) {
  free(k->release);
  free(k->dir);
  for (size_t i = 0; i < k->n; i++) {
    free(k->mods[i].name);
    free(k->mods[i].data);
  }
  free(k->mods);
  memset(k, 0, sizeof *k);
}

void vm_kmods_drop_data(struct vm_kmods *k) {
  for (size_t i = 0; i < k->n; i++) {
    free(k->mods[i].data);
    k->mods[i].data = NULL;
    k->mods[i].len = 0;
  }
}

/* ---------------- the kernel's release string ---------------- */

/* "6.1.0-57-cloud-amd64 (debian-kernel@...) #1 SMP ..." -> first word. */
static char *first_word(const char *s, size_t max) {
  size_t n = 0;
  while (n < max && s[n] && s[n] != ' ' && s[n] != '\n')
    n++;
  return n ? hv_xstrndup(s, n) : NULL;
}

/* bzImage: the setup header's kernel_version (boot protocol 2.00+) points
 * at the version string, 0x200 bytes into the image.  vmlinux: the banner
 * "Linux version <release> ..." in .rodata.  The file is mapped, not read:
 * this runs on every VM create, and copying a 20 MiB vmlinux cost 20-40 ms
 * of it (the mapping touches only the header, or the pages up to the
 * banner). */
static char *release_in(const char *data, size_t len) {
  if (len > 0x210 && !memcmp(data + 0x202, "HdrS", 4)) {
    uint16_t off;
    memcpy(&off, data + 0x20e, 2);
    if (off && (size_t)off + 0x200 < len)
      return first_word(data + off + 0x200, len - off - 0x200);
  } else if (len > 4 && !memcmp(data, ELFMAG, SELFMAG)) {
    static const char banner[] = "Linux version ";
    const char *p = memmem(data, len, banner, sizeof banner - 1);
    if (p) {
      p += sizeof banner - 1;
      return first_word(p, len - (size_t)(p - data));
    }
  }
  return NULL;
}

static char *kernel_release(const char *path, hv_error_t *err) {
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) {
    hv_error(err, errno, "guest kernel `%s`", path);
    return NULL;
  }
  char *rel = NULL;
  if (st.st_size > 0) {
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      hv_error(err, errno, "guest kernel `%s`: mmap", path);
      return NULL;
    }
    rel = release_in(m, (size_t)st.st_size);
    munmap(m, (size_t)st.st_size);
  }
  if (!rel)
    hv_error(err, 0, "guest kernel `%s`: no kernel release string found (neither a bzImage "
                     "header nor a \"Linux version\" banner)", path);
  return rel;
}

/* ---------------- module files ---------------- */

static bool has_suffix(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

/* "kernel/fs/overlayfs/overlay.ko.xz" -> "overlay"; '-' and '_' are the
 * same in module names, as modprobe treats them. */
static char *module_name(const char *path) {
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  const char *dot = strstr(b, ".ko");
  char *n = hv_xstrndup(b, dot ? (size_t)(dot - b) : strlen(b));
  for (char *c = n; *c; c++)
    if (*c == '-')
      *c = '_';
  return n;
}

/* Read a module, decompressing .ko.xz/.ko.zst/.ko.gz on the host (what the
 * guest's finit_module could only do with MODULE_DECOMPRESS). */
static int read_module(const char *path, char **out, size_t *out_len, hv_error_t *err) {
  if (has_suffix(path, ".ko"))
    return hv_read_file(path, out, out_len, err);
  cleanup_free char *packed = NULL;
  size_t len = 0;
  if (hv_read_file(path, &packed, &len, err) < 0)
    return -1;
  if (vm_decompress(packed, len, KMOD_BYTES_MAX, out, out_len, err) < 0)
    return hv_error_wrap(err, "module `%s`", path);
  return 0;
}

/* The "depends=" value of the module's .modinfo section ("" if none), or
 * NULL when the file is not a well-formed x86-64 ELF object. */
static char *modinfo_depends(const char *data, size_t len) {
  Elf64_Ehdr eh;
  if (len < sizeof eh || memcmp(data, ELFMAG, SELFMAG))
    return NULL;
  memcpy(&eh, data, sizeof eh);
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr) ||
      eh.e_shoff > len || (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr) > len - eh.e_shoff ||
      eh.e_shstrndx >= eh.e_shnum)
    return NULL;
  Elf64_Shdr strs;
  memcpy(&strs, data + eh.e_shoff + eh.e_shstrndx * sizeof(Elf64_Shdr), sizeof strs);
  if (strs.sh_offset > len || strs.sh_size > len - strs.sh_offset)
    return NULL;
  for (uint16_t i = 0; i < eh.e_shnum; i++) {
    Elf64_Shdr sh;
    memcpy(&sh, data + eh.e_shoff + i * sizeof(Elf64_Shdr), sizeof sh);
    if (sh.sh_name >= strs.sh_size || sh.sh_offset > len || sh.sh_size > len - sh.sh_offset)
      continue;
    const char *name = data + strs.sh_offset + sh.sh_name;
    if (strnlen(name, strs.sh_size - sh.sh_name) != 8 || memcmp(name, ".modinfo", 8))
      continue;
    /* NUL-separated "key=value" strings. */
    const char *p = data + sh.sh_offset, *end = p + sh.sh_size;
    while (p < end) {
      size_t n = strnlen(p, (size_t)(end - p));
      if (n > 8 && !memcmp(p, "depends=", 8))
        return hv_xstrndup(p + 8, n - 8);
      p += n + 1;
    }
    return hv_xstrdup("");
  }
  return NULL;
}

/* ---------------- the module tree ---------------- */

struct tree {
  const char *dir;
  char **builtin;   /* names */
  char **paths;     /* relative paths of loadable modules */
};

static void tree_free(struct tree *t) {
  hv_cleanup_strvp(&t->builtin);
  hv_cleanup_strvp(&t->paths);
}

/* One relative module path per line (modules.builtin, modules.order), or
 * "path: deps" (modules.dep). */
static char **read_list(const char *dir, const char *file, bool names) {
  cleanup_free char *path = hv_xasprintf("%s/%s", dir, file);
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (hv_read_file(path, &text, &len, NULL) < 0)
    return NULL;
  size_t n = 0, cap = 64;
  char **v = hv_xmalloc0(cap * sizeof *v);
  char *save = NULL;
  for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    char *colon = strchr(l, ':');
    if (colon)
      *colon = 0;
    if (!*l)
      continue;
    if (n + 2 > cap)
      v = hv_xrealloc(v, (cap *= 2) * sizeof *v);
    v[n++] = names ? module_name(l) : hv_xstrdup(l);
    v[n] = NULL;
  }
  return v;
}

static bool in_names(char **v, const char *name) {
  for (size_t i = 0; v && v[i]; i++)
    if (!strcmp(v[i], name))
      return true;
  return false;
}

static const char *module_path(struct tree *t, const char *name) {
  for (size_t i = 0; t->paths && t->paths[i]; i++) {
    cleanup_free char *n = module_name(t->paths[i]);
    if (!strcmp(n, name))
      return t->paths[i];
  }
  return NULL;
}

/* Add `name` after its dependencies (depth-first); `depth` stops cycles. */
static int add_module(struct tree *t, struct vm_kmods *k, const char *name, const char *needed_by,
                      int depth, hv_error_t *err) {
  for (size_t i = 0; i < k->n; i++)
    if (!strcmp(k->mods[i].name, name))
      return 0;
  if (in_names(t->builtin, name))
    return 0;
  if (depth > 16)
    return hv_error(err, ELOOP, "kernel modules under `%s`: dependency loop at `%s`", t->dir,
                    name);
  const char *rel = module_path(t, name);
  if (!rel)
    return hv_error(err, ENOENT, "guest kernel %s: `%s`%s%s%s is neither built in nor a module "
                    "under `%s`", k->release, name, needed_by ? " (needed by `" : "",
                    needed_by ? needed_by : "", needed_by ? "`)" : "", t->dir);
  if (k->n >= KMOD_MAX)
    return hv_error(err, E2BIG, "kernel modules under `%s`: more than %d needed", t->dir,
                    KMOD_MAX);
  cleanup_free char *path = hv_xasprintf("%s/%s", t->dir, rel);
  char *data = NULL;
  size_t len = 0;
  if (read_module(path, &data, &len, err) < 0)
    return -1;
  cleanup_free char *deps = modinfo_depends(data, len);
  if (!deps) {
    free(data);
    return hv_error(err, ENOEXEC, "module `%s`: not an ELF kernel module with .modinfo", path);
  }
  char *save = NULL;
  for (char *d = strtok_r(deps, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
    cleanup_free char *dn = module_name(d);
    if (add_module(t, k, dn, name, depth + 1, err) < 0) {
      free(data);
      return -1;
    }
  }
  k->mods = hv_xrealloc(k->mods, (k->n + 1) * sizeof *k->mods);
  k->mods[k->n++] = (struct vm_kmod){.name = hv_xstrdup(name), .data = data, .len = len};
  return 0;
}

static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Where the kernel's modules are: the given directory, else the tree that
 * sits beside the kernel as a package lays it out (<root>/boot/vmlinuz-R
 * and <root>/lib/modules/R), else the host's /lib/modules/R. */
static char *find_dir(const char *kernel, const char *release) {
  cleanup_free char *copy = hv_xstrdup(kernel);
  const char *kdir = dirname(copy);
  const char *cands[] = {"%s/../lib/modules/%s", "%s/../usr/lib/modules/%s"};
  for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
    cleanup_free char *d = hv_xasprintf(cands[i], kdir, release);
    char real[PATH_MAX];
    if (is_dir(d) && realpath(d, real))
      return hv_xstrdup(real);
  }
  cleanup_free char *host = hv_xasprintf("/lib/modules/%s", release);
  return is_dir(host) ? hv_xstrdup(host) : NULL;
}

int vm_kmods_resolve(const char *kernel, const char *dir, const char *src, struct vm_kmods *k,
                     hv_error_t *err) {
  memset(k, 0, sizeof *k);
  k->release = kernel_release(kernel, err);
  if (!k->release)
    return -1;
  if (dir && *dir) {
    char real[PATH_MAX];
    if (!realpath(dir, real) || !is_dir(real))
      return hv_error(err, errno ? errno : ENOTDIR, "%s: kernel module directory `%s`", src,
                      dir);
    k->dir = hv_xstrdup(real);
  } else {
    k->dir = find_dir(kernel, k->release);
    if (!k->dir)
      return 0; /* a self-contained kernel, like hvrun's own */
  }
  struct tree t = {.dir = k->dir};
  t.builtin = read_list(k->dir, "modules.builtin", true);
  t.paths = read_list(k->dir, "modules.order", false);
  if (!t.paths)
    t.paths = read_list(k->dir, "modules.dep", false);
  int rc = 0;
  if (!t.builtin && !t.paths)
    rc = hv_error(err, ENOENT, "kernel module directory `%s` has neither modules.builtin nor "
                  "modules.order/modules.dep", k->dir);
  for (size_t i = 0; rc == 0 && wanted[i]; i++)
    rc = add_module(&t, k, wanted[i], NULL, 0, err);
  /* A modular virtio-mmio driver is the distribution layout: its devices
   * are found through ACPI, not the command line (Debian builds it without
   * VIRTIO_MMIO_CMDLINE_DEVICES). */
  for (size_t i = 0; rc == 0 && i < k->n; i++)
    if (!strcmp(k->mods[i].name, "virtio_mmio"))
      k->acpi = true;
  tree_free(&t);
  return rc;
}
