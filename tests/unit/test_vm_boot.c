/* test_vm_boot.c: the Linux loader, with stand-in kernels that check what
 * they were handed (tests/unit/guests/{pvh_kernel,direct64_kernel,
 * bzimage_payload}.S) and report through the hypercall port, plus the
 * loader's errors.  A real kernel boot is opt-in: HVRUN_TEST_KERNEL=path
 * (it takes seconds to minutes under PVM). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <elf.h>
#include <string.h>
#include "vm/vmm.h"
#include <archive.h>
#include <archive_entry.h>

static char guests_dir[4096];
static char tmpdir[] = "/tmp/hvrun-test-vm-boot-XXXXXX";

static char *path_in(const char *dir, const char *name) { return hv_xasprintf("%s/%s", dir, name); }

static void write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  close(fd);
}

/* Boot `kernel` with `cmdline` (and initrd) on the core devices; returns
 * the VM's exit reason and fills status / error. */
static int boot(const char *kernel, const char *initrd, const char *cmdline, int *status,
                char *error, size_t error_len, hv_error_t *load_err) {
  struct vm vm;
  hv_error_t err = NULL;
  if (vm_create(&vm, 64 << 20, 1, false, &err) < 0)
    fail_msg("vm_create: %s", err->msg);
  if (vm_serial_create(&vm, -1, &err) < 0 || vm_i8042_create(&vm, &err) < 0 ||
      vm_hypercall_create(&vm, &err) < 0)
    fail_msg("devices: %s", err->msg);
  vm_cmdline_append(&vm, "%s", cmdline);
  if (vm_load_linux(&vm, kernel, initrd, load_err) < 0) {
    vm_destroy(&vm);
    return -1;
  }
  if (vm_run_vcpus(&vm, &err) < 0)
    fail_msg("run: %s", err->msg);
  int reason = vm.exit_reason;
  *status = vm.exit_status;
  snprintf(error, error_len, "%s", vm.error ? vm.error : "");
  vm_destroy(&vm);
  return reason;
}

static void test_pvh_entry(void **state) {
  (void)state;
  cleanup_free char *k = path_in(guests_dir, "pvh_kernel.elf");
  int status;
  char error[512];
  hv_error_t err = NULL;
  int r = boot(k, NULL, "pvh-test console=ttyS0", &status, error, sizeof error, &err);
  if (r < 0)
    fail_msg("load: %s", err->msg);
  assert_int_equal(r, HV_VM_EXIT_STATUS);
  assert_int_equal(status, 42);
}

static void test_direct64_entry(void **state) {
  (void)state;
  cleanup_free char *k = path_in(guests_dir, "direct64_kernel.elf");
  int status;
  char error[512];
  hv_error_t err = NULL;
  int r = boot(k, NULL, "direct", &status, error, sizeof error, &err);
  if (r < 0)
    fail_msg("load: %s", err->msg);
  assert_int_equal(r, HV_VM_EXIT_STATUS);
  assert_int_equal(status, 43);
}

/* A bzImage: one setup sector after the boot sector, then the payload. */
static char *make_bzimage(uint16_t version, uint16_t xloadflags) {
  cleanup_free char *payload_path = path_in(guests_dir, "bzimage_payload.bin");
  cleanup_free char *payload = NULL;
  size_t plen = 0;
  hv_error_t err = NULL;
  if (hv_read_file(payload_path, &payload, &plen, &err) < 0)
    fail_msg("%s", err->msg);
  size_t len = 1024 + plen;
  cleanup_free uint8_t *img = hv_xmalloc0(len);
  img[0x1f1] = 1;
  img[0x1fe] = 0x55, img[0x1ff] = 0xaa;
  img[0x200] = 0xeb, img[0x201] = 0x6a;
  memcpy(img + 0x202, "HdrS", 4);
  memcpy(img + 0x206, &version, 2);
  img[0x211] = 1;
  uint32_t v32 = 0x7fffffff;
  memcpy(img + 0x22c, &v32, 4);
  v32 = 0x200000;
  memcpy(img + 0x230, &v32, 4);
  img[0x234] = 1;
  memcpy(img + 0x236, &xloadflags, 2);
  v32 = 2047;
  memcpy(img + 0x238, &v32, 4);
  v32 = 0x100000;
  memcpy(img + 0x260, &v32, 4);
  memcpy(img + 1024, payload, plen);
  char *path = path_in(tmpdir, "bzImage");
  write_file(path, img, len);
  return path;
}

static void test_bzimage_entry(void **state) {
  (void)state;
  cleanup_free char *k = make_bzimage(0x020f, 0x3);
  cleanup_free char *initrd = path_in(tmpdir, "initrd");
  write_file(initrd, "INITRD!!", 8);
  int status;
  char error[512];
  hv_error_t err = NULL;
  int r = boot(k, initrd, "bz console=ttyS0", &status, error, sizeof error, &err);
  if (r < 0)
    fail_msg("load: %s", err->msg);
  assert_int_equal(r, HV_VM_EXIT_STATUS);
  assert_int_equal(status, 44);
}

/* pvh_kernel.elf, gzip-compressed, with the PVM patch's marker or not. */
static char *gzip_pvh_kernel(bool marker, size_t *out_len) {
  cleanup_free char *path = path_in(guests_dir, "pvh_kernel.elf");
  cleanup_free char *elf = NULL;
  size_t len = 0;
  hv_error_t err = NULL;
  if (hv_read_file(path, &elf, &len, &err) < 0)
    fail_msg("%s", err->msg);
  if (marker) {
    elf = hv_xrealloc(elf, len + 16);
    memcpy(elf + len, "hvrun.pvm", 9);
    len += 9;
  }
  size_t cap = len + 4096, used = 0;
  char *out = hv_xmalloc0(cap);
  struct archive *a = archive_write_new();
  assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
  assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
  assert_int_equal(archive_write_open_memory(a, out, cap, &used), ARCHIVE_OK);
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
  assert_int_equal(archive_write_data(a, elf, len), (la_ssize_t)len);
  archive_entry_free(e);
  assert_int_equal(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  *out_len = used;
  return out;
}

/* On PVM the host inflates a bzImage's payload and boots the ELF inside
 * (here the PVH stand-in, which reports 42); elsewhere the bzImage's own
 * 64-bit entry runs (the stand-in payload reports 44).  A kernel without
 * the PVM patch is refused on PVM before it boots. */
static void test_bzimage_payload_on_pvm(void **state) {
  (void)state;
  unsetenv("HVRUN_PVM_UNPATCHED_KERNEL");
  for (int marker = 1; marker >= 0; marker--) {
    size_t zlen = 0;
    cleanup_free char *z = gzip_pvh_kernel(marker, &zlen);
    cleanup_free char *k = make_bzimage(0x020f, 0x3);
    cleanup_free char *img = NULL;
    size_t len = 0;
    hv_error_t err = NULL;
    assert_int_equal(hv_read_file(k, &img, &len, &err), 0);
    img = hv_xrealloc(img, len + zlen);
    memcpy(img + len, z, zlen);
    uint32_t off = (uint32_t)(len - 1024), zl = (uint32_t)zlen;
    memcpy(img + 0x248, &off, 4);
    memcpy(img + 0x24c, &zl, 4);
    write_file(k, img, len + zlen);
    int status;
    char error[512];
    setenv("HVRUN_PVM", "1", 1);
    int r = boot(k, NULL, "pvh-test console=ttyS0", &status, error, sizeof error, &err);
    if (marker) {
      if (r < 0)
        fail_msg("load: %s", err->msg);
      assert_int_equal(r, HV_VM_EXIT_STATUS);
      assert_int_equal(status, 42);
    } else {
      assert_int_equal(r, -1);
      if (!strstr(err->msg, "lacks hvrun's PVM patch"))
        fail_msg("error: %s", err->msg);
      hv_error_release(&err);
      setenv("HVRUN_PVM_UNPATCHED_KERNEL", "1", 1);
      r = boot(k, NULL, "pvh-test console=ttyS0", &status, error, sizeof error, &err);
      unsetenv("HVRUN_PVM_UNPATCHED_KERNEL");
      assert_int_equal(r, HV_VM_EXIT_STATUS);
      assert_int_equal(status, 42);
    }
    /* Off PVM the bzImage's own entry runs (patched or not). */
    cleanup_free char *initrd = path_in(tmpdir, "initrd");
    write_file(initrd, "INITRD!!", 8);
    setenv("HVRUN_PVM", "0", 1);
    r = boot(k, initrd, "bz console=ttyS0", &status, error, sizeof error, &err);
    unsetenv("HVRUN_PVM");
    assert_int_equal(r, HV_VM_EXIT_STATUS);
    assert_int_equal(status, 44);
  }
}

static int restore_env(void **state) {
  (void)state;
  unsetenv("HVRUN_PVM");
  setenv("HVRUN_PVM_UNPATCHED_KERNEL", "1", 1);
  return 0;
}

static void expect_load_error(const char *kernel, const char *initrd, const char *cmdline,
                              const char *needle) {
  int status;
  char error[512];
  hv_error_t err = NULL;
  int r = boot(kernel, initrd, cmdline, &status, error, sizeof error, &err);
  assert_int_equal(r, -1);
  if (!strstr(err->msg, needle))
    fail_msg("error `%s` lacks `%s`", err->msg, needle);
  hv_error_release(&err);
}

static void test_load_errors(void **state) {
  (void)state;
  cleanup_free char *junk = path_in(tmpdir, "junk");
  write_file(junk, "this is not a kernel, just some text of a few hundred bytes......", 64);
  expect_load_error(junk, NULL, "", "neither an ELF vmlinux nor a bzImage");
  expect_load_error("/nonexistent/vmlinux", NULL, "", "kernel");
  cleanup_free char *old = make_bzimage(0x0206, 0);
  expect_load_error(old, NULL, "", "no 64-bit entry");
  cleanup_free char *k = path_in(guests_dir, "pvh_kernel.elf");
  /* A command line longer than the 64 KiB the loader reserves. */
  cleanup_free char *longcmd = hv_xmalloc0(70000);
  memset(longcmd, 'x', 69999);
  expect_load_error(k, NULL, longcmd, "command line");
  /* An initrd larger than guest memory. */
  cleanup_free char *big = path_in(tmpdir, "big-initrd");
  int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, 80 << 20), 0);
  close(fd);
  expect_load_error(k, big, "pvh-test", "does not fit");
  /* An ELF whose segment lies beyond guest RAM. */
  cleanup_free char *elf = NULL;
  size_t len = 0;
  hv_error_t err = NULL;
  assert_int_equal(hv_read_file(k, &elf, &len, &err), 0);
  Elf64_Ehdr *eh = (Elf64_Ehdr *)elf;
  Elf64_Phdr *ph = (Elf64_Phdr *)(elf + eh->e_phoff);
  for (int i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_LOAD)
      ph[i].p_paddr = 0x7ff00000;
  cleanup_free char *far = path_in(tmpdir, "far.elf");
  write_file(far, elf, len);
  expect_load_error(far, NULL, "pvh-test", "outside guest RAM");
}

static void test_hv_vm_run(void **state) {
  (void)state;
  cleanup_free char *k = path_in(guests_dir, "pvh_kernel.elf");
  struct hv_vm_config c = {.kernel = k, .cmdline = "pvh-test", .vcpus = 1, .mem_bytes = 32 << 20,
                           .console_in = -1, .console_out = -1, .control_fd = -1,
                           .kernel_log_fd = -1};
  int status = -1;
  hv_error_t err = NULL;
  if (hv_vm_run(&c, &status, &err) < 0)
    fail_msg("hv_vm_run: %s", err->msg);
  assert_int_equal(status, 42);
  /* A kernel that fails its checks reports 1: still a plain exit status. */
  c.cmdline = "not-pvh";
  assert_int_equal(hv_vm_run(&c, &status, &err), 0);
  assert_int_equal(status, 1);
  c.engine = "firecracker";
  assert_true(hv_vm_run(&c, &status, &err) < 0);
  assert_non_null(strstr(err->msg, "firecracker"));
  hv_error_release(&err);
}

static void test_hugepages_error(void **state) {
  (void)state;
  /* Only meaningful where no hugepages are free (as on the CI hosts). */
  cleanup_free char *meminfo = NULL;
  size_t len;
  hv_error_t err = NULL;
  assert_int_equal(hv_read_file("/proc/meminfo", &meminfo, &len, &err), 0);
  char *f = strstr(meminfo, "HugePages_Free:");
  if (!f || strtoul(f + 15, NULL, 10) != 0) {
    skip();
    return;
  }
  struct vm vm;
  assert_true(vm_create(&vm, 64 << 20, 1, true, &err) < 0);
  if (!strstr(err->msg, "hugepages"))
    fail_msg("unclear error: %s", err->msg);
  vm_destroy(&vm);
  hv_error_release(&err);
}

/* Opt-in: boot a real kernel until its banner comes out of the 8250. */
struct banner_reader { int fd; struct vm *vm; bool seen; };
static void *banner_reader_main(void *arg) {
  struct banner_reader *r = arg;
  char buf[8192];
  size_t have = 0;
  for (;;) {
    if (have == sizeof buf - 1) /* keep the tail: the banner may straddle */
      memmove(buf, buf + 4096, have -= 4096);
    ssize_t n = read(r->fd, buf + have, sizeof buf - 1 - have);
    if (n <= 0)
      return NULL;
    have += (size_t)n;
    buf[have] = 0;
    if (!r->seen && strstr(buf, "Linux version")) {
      r->seen = true;
      vm_request_stop(r->vm, HV_VM_EXIT_STATUS, 0, NULL);
    }
  }
}

static void test_real_kernel_banner(void **state) {
  (void)state;
  const char *kernel = getenv("HVRUN_TEST_KERNEL");
  if (!kernel || !*kernel) {
    skip();
    return;
  }
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  struct vm vm;
  hv_error_t err = NULL;
  if (vm_create(&vm, 128 << 20, 1, false, &err) < 0 || vm_serial_create(&vm, p[1], &err) < 0 ||
      vm_i8042_create(&vm, &err) < 0 || vm_hypercall_create(&vm, &err) < 0)
    fail_msg("%s", err->msg);
  vm_cmdline_append(&vm, "console=ttyS0 earlyprintk=serial panic=-1");
  if (vm_load_linux(&vm, kernel, NULL, &err) < 0)
    fail_msg("%s", err->msg);
  struct banner_reader rd = {p[0], &vm, false};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, banner_reader_main, &rd), 0);
  if (vm_run_vcpus(&vm, &err) < 0)
    fail_msg("%s", err->msg);
  if (vm.exit_reason == HV_VM_EXIT_ERROR)
    fail_msg("VM stopped before the banner: %s", vm.error);
  vm_destroy(&vm);
  close(p[1]);
  pthread_join(t, NULL);
  close(p[0]);
  assert_true(rd.seen);
}

static void remove_tmpdir(void) {
  static const char *files[] = {"bzImage", "initrd", "junk", "big-initrd", "far.elf"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    cleanup_free char *f = path_in(tmpdir, files[i]);
    unlink(f);
  }
  rmdir(tmpdir);
}

int main(void) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    return 1;
  exe[n] = 0;
  snprintf(guests_dir, sizeof guests_dir, "%s/../guests", dirname(exe));
  hv_error_t err = NULL;
  if (hv_kvm_check(&err) < 0) {
    fprintf(stderr, "skipping VM boot tests: %s\n", err->msg);
    return 0;
  }
  if (!mkdtemp(tmpdir))
    return 1;
  /* The stand-in kernels lack the PVM patch's marker (a check the PVM
   * test below makes for real). */
  setenv("HVRUN_PVM_UNPATCHED_KERNEL", "1", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pvh_entry),
      cmocka_unit_test(test_direct64_entry),
      cmocka_unit_test(test_bzimage_entry),
      cmocka_unit_test_teardown(test_bzimage_payload_on_pvm, restore_env),
      cmocka_unit_test(test_load_errors),
      cmocka_unit_test(test_hv_vm_run),
      cmocka_unit_test(test_hugepages_error),
      cmocka_unit_test(test_real_kernel_banner),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  remove_tmpdir();
  return rc;
}
