/* test_kmod.c: finding a modular guest kernel's modules (vm/kmod.c) in
 * fake module trees laid out as a distribution package is: <root>/boot/
 * vmlinuz-<release> and <root>/lib/modules/<release>/ with modules.builtin,
 * modules.order and ELF objects whose .modinfo names their dependencies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "vm/vm_backend.h"
#include <archive.h>
#include <archive_entry.h>
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define REL "6.1.0-99-test-amd64"

static char root[64];
static char kernel[256], moddir[256];

static void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static void mkdirs(const char *path) {
  hv_error_t err = NULL;
  assert_int_equal(hv_mkdir_p(path, 0755, &err), 0);
}

/* A minimal relocatable ELF: section headers null, .modinfo, .shstrtab. */
static size_t fake_ko(const char *modinfo, size_t modinfo_len, char *out, size_t room) {
  static const char shstr[] = "\0.modinfo\0.shstrtab";
  size_t off_info = sizeof(Elf64_Ehdr), off_str = off_info + modinfo_len;
  size_t off_sh = (off_str + sizeof shstr + 7) & ~7UL, total = off_sh + 3 * sizeof(Elf64_Shdr);
  assert_true(total <= room);
  memset(out, 0, total);
  Elf64_Ehdr eh = {.e_type = ET_REL, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
                   .e_shoff = off_sh, .e_ehsize = sizeof eh, .e_shentsize = sizeof(Elf64_Shdr),
                   .e_shnum = 3, .e_shstrndx = 2};
  memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  memcpy(out, &eh, sizeof eh);
  memcpy(out + off_info, modinfo, modinfo_len);
  memcpy(out + off_str, shstr, sizeof shstr);
  Elf64_Shdr sh[3] = {{0},
                      {.sh_name = 1, .sh_type = SHT_PROGBITS, .sh_offset = off_info,
                       .sh_size = modinfo_len},
                      {.sh_name = 10, .sh_type = SHT_STRTAB, .sh_offset = off_str,
                       .sh_size = sizeof shstr}};
  memcpy(out + off_sh, sh, sizeof sh);
  return total;
}

/* kernel/<rel> with "license=GPL\0depends=<deps>\0"; compressed with xz
 * when rel ends in .xz. */
static void add_module(const char *rel, const char *deps) {
  char info[256], ko[1024];
  int n = snprintf(info, sizeof info, "license=GPL%cdepends=%s%cname=x", 0, deps, 0);
  size_t len = fake_ko(info, (size_t)n + 1, ko, sizeof ko);
  cleanup_free char *path = hv_xasprintf("%s/%s", moddir, rel);
  cleanup_free char *dir = hv_xstrdup(path);
  *strrchr(dir, '/') = 0;
  mkdirs(dir);
  if (strstr(rel, ".xz")) {
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_add_filter_xz(a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, (la_int64_t)len);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, ko, len), (la_ssize_t)len);
    archive_entry_free(e);
    archive_write_free(a);
  } else {
    write_file(path, ko, len);
  }
}

static void write_list(const char *name, const char *text) {
  cleanup_free char *p = hv_xasprintf("%s/%s", moddir, name);
  write_file(p, text, strlen(text));
}

/* A bzImage stand-in: setup header magic and the kernel_version pointer. */
static void write_bzimage(const char *path, const char *version) {
  char img[0x800] = {0};
  memcpy(img + 0x202, "HdrS", 4);
  uint16_t off = 0x400 - 0x200;
  memcpy(img + 0x20e, &off, 2);
  snprintf(img + 0x400, 0x100, "%s", version);
  write_file(path, img, sizeof img);
}

static int setup(void **state) {
  (void)state;
  snprintf(root, sizeof root, "/tmp/test_kmod.XXXXXX");
  if (!mkdtemp(root))
    return -1;
  snprintf(kernel, sizeof kernel, "%s/boot/vmlinuz-" REL, root);
  snprintf(moddir, sizeof moddir, "%s/lib/modules/" REL, root);
  mkdirs(moddir);
  cleanup_free char *boot = hv_xasprintf("%s/boot", root);
  mkdirs(boot);
  write_bzimage(kernel, REL " (someone@example.org) #1 SMP PREEMPT_DYNAMIC");
  /* The Debian layout: overlayfs is a module here but crc32c is built in. */
  write_list("modules.builtin", "kernel/crypto/crc32c_generic.ko\nkernel/fs/ext4/ext4.ko\n");
  write_list("modules.order",
             "kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\n"
             "kernel/drivers/virtio/virtio_mmio.ko\nkernel/drivers/block/virtio_blk.ko.xz\n"
             "kernel/drivers/char/virtio_console.ko\nkernel/lib/libcrc32c.ko\n"
             "kernel/fs/erofs/erofs.ko\nkernel/fs/overlayfs/overlay.ko\n");
  add_module("kernel/drivers/virtio/virtio.ko", "");
  add_module("kernel/drivers/virtio/virtio_ring.ko", "");
  add_module("kernel/drivers/virtio/virtio_mmio.ko", "virtio,virtio_ring");
  add_module("kernel/drivers/block/virtio_blk.ko.xz", "virtio,virtio_ring");
  add_module("kernel/drivers/char/virtio_console.ko", "virtio_ring,virtio");
  add_module("kernel/lib/libcrc32c.ko", "");
  add_module("kernel/fs/erofs/erofs.ko", "libcrc32c");
  add_module("kernel/fs/overlayfs/overlay.ko", "");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cleanup_free char *cmd = hv_xasprintf("rm -rf %s", root);
  return system(cmd) == 0 ? 0 : -1;
}

static void test_package_layout(void **state) {
  (void)state;
  struct vm_kmods k;
  hv_error_t err = NULL;
  assert_int_equal(vm_kmods_resolve(kernel, NULL, "test", &k, &err), 0);
  assert_string_equal(k.release, REL);
  assert_non_null(strstr(k.dir, "/lib/modules/" REL));
  const char *order[] = {"virtio", "virtio_ring", "virtio_mmio", "virtio_blk",
                         "virtio_console", "libcrc32c", "erofs", "overlay"};
  assert_int_equal(k.n, 8);
  for (size_t i = 0; i < 8; i++) {
    assert_string_equal(k.mods[i].name, order[i]);
    /* every one readable as ELF, the xz one decompressed */
    assert_true(k.mods[i].len > sizeof(Elf64_Ehdr));
    assert_memory_equal(k.mods[i].data, ELFMAG, SELFMAG);
  }
  assert_true(k.acpi);
  vm_kmods_drop_data(&k);
  assert_null(k.mods[0].data);
  assert_string_equal(k.mods[0].name, "virtio");
  vm_kmods_free(&k);
}

/* A kernel with no module tree is self-contained (hvrun's own). */
static void test_no_tree(void **state) {
  (void)state;
  cleanup_free char *cmd = hv_xasprintf("rm -rf %s/lib", root);
  assert_int_equal(system(cmd), 0);
  struct vm_kmods k;
  hv_error_t err = NULL;
  assert_int_equal(vm_kmods_resolve(kernel, NULL, "test", &k, &err), 0);
  assert_null(k.dir);
  assert_int_equal(k.n, 0);
  assert_false(k.acpi);
  vm_kmods_free(&k);
}

/* Everything built in (a tree exists, nothing to load): command-line
 * devices, as with our own kernel. */
static void test_all_builtin(void **state) {
  (void)state;
  write_list("modules.builtin", "kernel/drivers/virtio/virtio_mmio.ko\n"
                                "kernel/drivers/block/virtio_blk.ko\n"
                                "kernel/drivers/char/virtio_console.ko\n"
                                "kernel/fs/erofs/erofs.ko\nkernel/fs/overlayfs/overlay.ko\n");
  struct vm_kmods k;
  hv_error_t err = NULL;
  assert_int_equal(vm_kmods_resolve(kernel, NULL, "test", &k, &err), 0);
  assert_non_null(k.dir);
  assert_int_equal(k.n, 0);
  assert_false(k.acpi);
  vm_kmods_free(&k);
}

static void test_missing_module(void **state) {
  (void)state;
  write_list("modules.order", "kernel/drivers/virtio/virtio.ko\n"
                              "kernel/drivers/virtio/virtio_ring.ko\n"
                              "kernel/drivers/virtio/virtio_mmio.ko\n"
                              "kernel/drivers/block/virtio_blk.ko.xz\n"
                              "kernel/drivers/char/virtio_console.ko\n"
                              "kernel/fs/erofs/erofs.ko\n");
  struct vm_kmods k;
  hv_error_t err = NULL;
  assert_true(vm_kmods_resolve(kernel, NULL, "test", &k, &err) < 0);
  /* erofs needs libcrc32c, which is gone from the tree */
  assert_non_null(strstr(err->msg, "`libcrc32c` (needed by `erofs`) is neither built in"));
  assert_non_null(strstr(err->msg, REL));
  hv_error_release(&err);
  vm_kmods_free(&k);
}

static void test_dependency_loop(void **state) {
  (void)state;
  add_module("kernel/drivers/virtio/virtio.ko", "virtio_mmio");
  struct vm_kmods k;
  hv_error_t err = NULL;
  assert_true(vm_kmods_resolve(kernel, NULL, "test", &k, &err) < 0);
  assert_non_null(strstr(err->msg, "dependency loop"));
  hv_error_release(&err);
  vm_kmods_free(&k);
}

static void test_bad_module_file(void **state) {
  (void)state;
  cleanup_free char *p = hv_xasprintf("%s/kernel/fs/erofs/erofs.ko", moddir);
  write_file(p, "not an elf", 10);
  struct vm_kmods k;
  hv_error_t err = NULL;
  assert_true(vm_kmods_resolve(kernel, NULL, "test", &k, &err) < 0);
  assert_non_null(strstr(err->msg, "erofs.ko`: not an ELF kernel module"));
  hv_error_release(&err);
  vm_kmods_free(&k);
}

/* An explicit directory wins, and a wrong one is named with its source. */
static void test_explicit_dir(void **state) {
  (void)state;
  cleanup_free char *other = hv_xasprintf("%s/elsewhere", root);
  cleanup_free char *cmd = hv_xasprintf("mv %s %s", moddir, other);
  assert_int_equal(system(cmd), 0);
  struct vm_kmods k;
  hv_error_t err = NULL;
  assert_int_equal(vm_kmods_resolve(kernel, other, "--kernel-modules", &k, &err), 0);
  assert_int_equal(k.n, 8);
  vm_kmods_free(&k);
  assert_true(vm_kmods_resolve(kernel, "/nonexistent/mods", "annotation x", &k, &err) < 0);
  assert_non_null(strstr(err->msg, "annotation x: kernel module directory `/nonexistent/mods`"));
  hv_error_release(&err);
  vm_kmods_free(&k);
  /* a directory that is no module tree */
  assert_true(vm_kmods_resolve(kernel, root, "--kernel-modules", &k, &err) < 0);
  assert_non_null(strstr(err->msg, "neither modules.builtin nor"));
  hv_error_release(&err);
  vm_kmods_free(&k);
}

/* A vmlinux ELF: the release comes from its "Linux version" banner. */
static void test_vmlinux_release(void **state) {
  (void)state;
  char img[4096] = {0};
  memcpy(img, ELFMAG, SELFMAG);
  snprintf(img + 1000, 200, "Linux version " REL " (gcc) #1 SMP");
  cleanup_free char *vmlinux = hv_xasprintf("%s/boot/vmlinux-x", root);
  write_file(vmlinux, img, sizeof img);
  struct vm_kmods k;
  hv_error_t err = NULL;
  assert_int_equal(vm_kmods_resolve(vmlinux, NULL, "test", &k, &err), 0);
  assert_string_equal(k.release, REL);
  assert_int_equal(k.n, 8);
  vm_kmods_free(&k);
  /* neither a bzImage nor a banner */
  write_file(vmlinux, "garbage", 7);
  assert_true(vm_kmods_resolve(vmlinux, NULL, "test", &k, &err) < 0);
  assert_non_null(strstr(err->msg, "no kernel release string"));
  hv_error_release(&err);
  vm_kmods_free(&k);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_package_layout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_tree, setup, teardown),
      cmocka_unit_test_setup_teardown(test_all_builtin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_module, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dependency_loop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_module_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_explicit_dir, setup, teardown),
      cmocka_unit_test_setup_teardown(test_vmlinux_release, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
