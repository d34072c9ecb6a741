/* test_initrd.c: the guest initrd writer (vm/initrd.c).  Archives are read
 * back with an independent newc reader, and with cpio(1) when installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "vm/guest_proto.h"
#include "vm/vmm.h"
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

struct ent { char name[64]; unsigned mode, rmaj, rmin, ino; size_t size; const char *data; };

static unsigned hex8(const char *p) {
  char b[9];
  memcpy(b, p, 8);
  b[8] = 0;
  return (unsigned)strtoul(b, NULL, 16);
}

/* Parse a newc archive; returns the number of entries before the trailer,
 * or -1 if malformed. */
static int parse(const char *buf, size_t len, struct ent *out, int max) {
  size_t off = 0;
  int n = 0;
  while (off + 110 <= len) {
    if (memcmp(buf + off, "070701", 6))
      return -1;
    const char *h = buf + off + 6;
    unsigned namesize = hex8(h + 11 * 8), filesize = hex8(h + 6 * 8);
    const char *name = buf + off + 110;
    if (off + 110 + namesize > len || name[namesize - 1] != 0)
      return -1;
    size_t data = (off + 110 + namesize + 3) & ~(size_t)3;
    if (!strcmp(name, "TRAILER!!!"))
      return n;
    if (n == max || data + filesize > len)
      return -1;
    struct ent *e = &out[n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->ino = hex8(h);
    e->mode = hex8(h + 8);
    e->rmaj = hex8(h + 9 * 8);
    e->rmin = hex8(h + 10 * 8);
    e->size = filesize;
    e->data = buf + data;
    off = (data + filesize + 3) & ~(size_t)3;
  }
  return -1;
}

static char dir[64];
static char fake_init[128], archive[128];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/test_initrd.XXXXXX");
  if (!mkdtemp(dir))
    return -1;
  snprintf(fake_init, sizeof fake_init, "%s/init", dir);
  snprintf(archive, sizeof archive, "%s/initrd.cpio", dir);
  FILE *f = fopen(fake_init, "w");
  if (!f)
    return -1;
  /* An ELF header and an odd length, to exercise padding. */
  fwrite("\177ELF\2\1\1\0abcdefg", 1, 15, f);
  fclose(f);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (de->d_name[0] != '.') {
      char p[512];
      snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
      unlink(p);
    }
  if (d)
    closedir(d);
  rmdir(dir);
  return 0;
}

static int count_files(void) {
  int n = 0;
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d)))
    n += de->d_name[0] != '.';
  if (d)
    closedir(d);
  return n;
}

static void test_contents(void **state) {
  (void)state;
  hv_error_t err = NULL;
  const char *cfg = "{\"process\":{\"args\":[\"sh\"]}}";
  assert_int_equal(hv_initrd_write(archive, fake_init, cfg, strlen(cfg), NULL, 0, &err), 0);
  assert_null(err);
  char *buf = NULL;
  size_t len = 0;
  assert_int_equal(hv_read_file(archive, &buf, &len, &err), 0);
  assert_int_equal(len % 4, 0);
  struct ent e[16];
  int n = parse(buf, len, e, 16);
  assert_int_equal(n, 9);
  bool seen_init = false, seen_cfg = false, seen_console = false, seen_seed = false;
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < i; j++)
      assert_int_not_equal(e[i].ino, e[j].ino); /* no accidental hard links */
    if (!strcmp(e[i].name, "init")) {
      seen_init = true;
      assert_int_equal(e[i].mode, S_IFREG | 0755);
      assert_int_equal(e[i].size, 15);
      assert_memory_equal(e[i].data, "\177ELF\2\1\1\0abcdefg", 15);
    } else if (!strcmp(e[i].name, "hvrun/config.json")) {
      seen_cfg = true;
      assert_int_equal(e[i].mode, S_IFREG | 0600);
      assert_int_equal(e[i].size, strlen(cfg));
      assert_memory_equal(e[i].data, cfg, strlen(cfg));
    } else if (!strcmp(e[i].name, "hvrun/seed")) {
      seen_seed = true;
      assert_int_equal(e[i].mode, S_IFREG | 0600);
      assert_int_equal(e[i].size, HV_GUEST_SEED_LEN);
    } else if (!strcmp(e[i].name, "dev/console")) {
      seen_console = true;
      assert_int_equal(e[i].mode, S_IFCHR | 0600);
      assert_int_equal(e[i].rmaj, 5);
      assert_int_equal(e[i].rmin, 1);
    }
  }
  assert_true(seen_init && seen_cfg && seen_console && seen_seed);
  free(buf);
  assert_int_equal(count_files(), 2); /* init + archive: no temp file left */
}

static void test_cpio_tool_reads_it(void **state) {
  (void)state;
  if (system("command -v cpio >/dev/null 2>&1") != 0)
    skip();
  hv_error_t err = NULL;
  assert_int_equal(hv_initrd_write(archive, fake_init, "{}", 2, NULL, 0, &err), 0);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "cpio -it --quiet < %s 2>&1", archive);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char out[1024] = "";
  size_t got = fread(out, 1, sizeof out - 1, p);
  out[got] = 0;
  assert_int_equal(pclose(p), 0);
  assert_non_null(strstr(out, "hvrun/config.json\n"));
  assert_non_null(strstr(out, "init\n"));
  assert_non_null(strstr(out, "dev/console\n"));
}

static void test_not_elf(void **state) {
  (void)state;
  hv_error_t err = NULL;
  char notelf[160];
  snprintf(notelf, sizeof notelf, "%s/script", dir);
  FILE *f = fopen(notelf, "w");
  fputs("#!/bin/sh\n", f);
  fclose(f);
  assert_true(hv_initrd_write(archive, notelf, "{}", 2, NULL, 0, &err) < 0);
  assert_non_null(err);
  assert_non_null(strstr(err->msg, "not an ELF"));
  hv_error_release(&err);
  assert_int_equal(access(archive, F_OK), -1);
  unlink(notelf);
}

static void test_missing_init_and_bad_dir(void **state) {
  (void)state;
  hv_error_t err = NULL;
  assert_true(hv_initrd_write(archive, "/nonexistent/init", "{}", 2, NULL, 0, &err) < 0);
  assert_non_null(strstr(err->msg, "/nonexistent/init"));
  hv_error_release(&err);
  assert_true(
      hv_initrd_write("/nonexistent/dir/initrd", fake_init, "{}", 2, NULL, 0, &err) < 0);
  assert_non_null(err);
  hv_error_release(&err);
  assert_int_equal(count_files(), 1); /* only the fake init */
}

/* Modules land under hvrun/modules with their load order. */
static void test_modules(void **state) {
  (void)state;
  hv_error_t err = NULL;
  struct vm_kmod mods[] = {{.name = "virtio", .data = "\177ELFa", .len = 5},
                           {.name = "virtio_mmio", .data = "\177ELFbcd", .len = 7}};
  assert_int_equal(hv_initrd_write(archive, fake_init, "{}", 2, mods, 2, &err), 0);
  char *buf = NULL;
  size_t len = 0;
  assert_int_equal(hv_read_file(archive, &buf, &len, &err), 0);
  struct ent e[16];
  int n = parse(buf, len, e, 16);
  assert_int_equal(n, 9 + 4);
  int seen = 0;
  for (int i = 0; i < n; i++) {
    if (!strcmp(e[i].name, "hvrun/modules")) {
      assert_int_equal(e[i].mode, S_IFDIR | 0700);
      seen |= 1;
    } else if (!strcmp(e[i].name, "hvrun/modules/virtio_mmio.ko")) {
      assert_int_equal(e[i].size, 7);
      assert_memory_equal(e[i].data, "\177ELFbcd", 7);
      seen |= 2;
    } else if (!strcmp(e[i].name, "hvrun/modules/order")) {
      assert_int_equal(e[i].size, strlen("virtio\nvirtio_mmio\n"));
      assert_memory_equal(e[i].data, "virtio\nvirtio_mmio\n", e[i].size);
      seen |= 4;
    }
  }
  assert_int_equal(seen, 7);
  free(buf);
  struct vm_kmod bad = {.name = "../x", .data = "", .len = 0};
  assert_true(hv_initrd_write(archive, fake_init, "{}", 2, &bad, 1, &err) < 0);
  assert_non_null(strstr(err->msg, "bad module name"));
  hv_error_release(&err);
}

static void test_hcall_decode(void **state) {
  (void)state;
  int st = -1;
  assert_int_equal(hv_hcall_decode(7, &st), HV_VM_EXIT_STATUS);
  assert_int_equal(st, 7);
  assert_int_equal(hv_hcall_decode(HV_HCALL_SIGNALED | 15, &st), HV_VM_EXIT_STATUS);
  assert_int_equal(st, 128 + 15);
  assert_int_equal(hv_hcall_decode(HV_HCALL_PANIC | 3, &st), HV_VM_EXIT_PANIC);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_contents, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cpio_tool_reads_it, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_elf, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_init_and_bad_dir, setup, teardown),
      cmocka_unit_test_setup_teardown(test_modules, setup, teardown),
      cmocka_unit_test(test_hcall_decode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
