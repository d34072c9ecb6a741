/* test_acpi.c: the ACPI tables of vm/acpi.c.  The structure is checked
 * field by field here (RSDP, checksums, pointers, MADT entries), and the
 * tables are handed to ACPICA's disassembler (iasl, Debian acpica-tools) as
 * an independent reader: its output must show the devices, windows, IRQs
 * and flags we meant, and the DSDT it prints must compile back (without
 * optimizations) to exactly our AML.  Missing iasl is a failure, not a
 * skip: `make deps` installs it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "vm/vmm.h"

#define BASE 0xe0000ULL
#define ROOM 0x20000

static char tmpdir[] = "/tmp/hvrun-test-acpi-XXXXXX";

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static uint8_t sum8(const uint8_t *p, size_t n) {
  uint8_t s = 0;
  for (size_t i = 0; i < n; i++)
    s += p[i];
  return s;
}

/* The table at guest address `gpa` inside buf[0..used): inside, aligned,
 * with the expected signature, the common header and a zero checksum. */
static const uint8_t *table_at(const uint8_t *buf, long used, uint64_t gpa, const char *sig) {
  if (gpa < BASE || gpa + 36 > BASE + (uint64_t)used)
    fail_msg("%s at 0x%llx is outside the tables (0x%llx + %ld)", sig,
             (unsigned long long)gpa, (unsigned long long)BASE, used);
  assert_int_equal(gpa % 8, 0);
  const uint8_t *t = buf + (gpa - BASE);
  if (memcmp(t, sig, 4) != 0)
    fail_msg("expected %s at 0x%llx, found %.4s", sig, (unsigned long long)gpa, (const char *)t);
  uint32_t len = get32(t + 4);
  assert_true(len >= 36 && gpa + len <= BASE + (uint64_t)used);
  if (sum8(t, len) != 0)
    fail_msg("%s checksum: bytes sum to 0x%02x", sig, sum8(t, len));
  assert_memory_equal(t + 10, "HVRUN ", 6);
  assert_memory_equal(t + 16, "HVRUNVM ", 8);
  assert_int_equal(get32(t + 24), 1);
  assert_memory_equal(t + 28, "HVRN", 4);
  assert_int_equal(get32(t + 32), 1);
  return t;
}

struct tables { uint8_t *buf; long used; const uint8_t *xsdt, *fadt, *madt, *dsdt; };

/* Build into a buffer full of junk (so missing zeroing shows) and follow
 * RSDP -> XSDT -> FADT/MADT, FADT -> DSDT. */
static void build(struct tables *t, uint32_t vcpus, uint32_t n_virtio) {
  hv_error_t err = NULL;
  t->buf = malloc(ROOM);
  assert_non_null(t->buf);
  memset(t->buf, 0xaa, ROOM);
  t->used = vm_acpi_build(t->buf, ROOM, BASE, vcpus, n_virtio, &err);
  if (t->used < 0)
    fail_msg("vm_acpi_build: %s", err->msg);
  assert_true(t->used > 36 && t->used <= ROOM);
  for (long i = t->used; i < ROOM; i++)
    if (t->buf[i] != 0xaa)
      fail_msg("byte %ld written beyond the %ld bytes reported", i, t->used);
  const uint8_t *r = t->buf;
  assert_memory_equal(r, "RSD PTR ", 8);
  assert_int_equal(sum8(r, 20), 0);
  assert_int_equal(sum8(r, 36), 0);
  assert_memory_equal(r + 9, "HVRUN ", 6);
  assert_int_equal(r[15], 2);
  assert_int_equal(get32(r + 16), 0);   /* no RSDT */
  assert_int_equal(get32(r + 20), 36);
  assert_int_equal(r[33] | r[34] | r[35], 0);
  t->xsdt = table_at(t->buf, t->used, get64(r + 24), "XSDT");
  assert_int_equal(get32(t->xsdt + 4), 36 + 2 * 8);
  t->fadt = table_at(t->buf, t->used, get64(t->xsdt + 36), "FACP");
  t->madt = table_at(t->buf, t->used, get64(t->xsdt + 44), "APIC");
  assert_int_equal(get32(t->fadt + 4), 276);
  assert_int_equal(t->fadt[8], 6);
  assert_int_equal(get32(t->fadt + 40), 0); /* 32-bit DSDT unused */
  t->dsdt = table_at(t->buf, t->used, get64(t->fadt + 140), "DSDT");
}

/* ---- running iasl ---- */

static void require_iasl(void) {
  const char *path = getenv("PATH");
  cleanup_free char *copy = hv_xstrdup(path ? path : "/usr/bin:/bin");
  char *save = NULL;
  for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    cleanup_free char *f = hv_xasprintf("%s/iasl", d);
    if (access(f, X_OK) == 0)
      return;
  }
  fail_msg("iasl not found on PATH: install acpica-tools (apt-get install acpica-tools, "
           "or `make deps`); these tests check the tables with its disassembler");
}

static void write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  close(fd);
}

static char *read_text(const char *path) {
  char *data = NULL;
  size_t len = 0;
  hv_error_t err = NULL;
  if (hv_read_file(path, &data, &len, &err) < 0)
    fail_msg("read %s: %s", path, err->msg);
  return data;
}

/* Run iasl with args (NULL-terminated), messages to `log`; it must exit 0
 * and write `out`.  A disassembly (the default) must not report a problem,
 * neither in the messages nor in its output text, which is returned; a
 * compilation must end with no errors and no warnings (returns NULL). */
static char *iasl(const char *log, const char *out, bool compile, const char *const *args) {
  require_iasl();
  const char *argv[8] = {"iasl"};
  size_t n = 1;
  while (args[n - 1] && n < 7)
    argv[n] = args[n - 1], n++;
  argv[n] = NULL;
  unlink(out);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
      _exit(126);
    execvp("iasl", (char *const *)argv);
    _exit(127);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  cleanup_free char *msgs = read_text(log);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("iasl %s %s failed (status 0x%x):\n%s", argv[1], argv[n - 1], status, msgs);
  if (compile) {
    if (!strstr(msgs, "Compilation successful. 0 Errors, 0 Warnings"))
      fail_msg("iasl compiling %s is not clean:\n%s", argv[n - 1], msgs);
    assert_int_equal(access(out, R_OK), 0);
    return NULL;
  }
  char *text = read_text(out);
  static const char *const bad[] = {"Error", "Invalid", "Incorrect", "Warning",
                                    "terminates early", "Unknown"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    if (strstr(msgs, bad[i]))
      fail_msg("iasl reports \"%s\" for %s:\n%s", bad[i], argv[n - 1], msgs);
    if (strstr(text, bad[i]))
      fail_msg("\"%s\" in %s:\n%s", bad[i], out, text);
  }
  return text;
}

/* Disassemble one table written to dir/name.dat; returns name.dsl's text. */
static char *disassemble(const char *dir, const char *name, const uint8_t *table) {
  cleanup_free char *dat = hv_xasprintf("%s/%s.dat", dir, name);
  cleanup_free char *dsl = hv_xasprintf("%s/%s.dsl", dir, name);
  cleanup_free char *log = hv_xasprintf("%s/%s.log", dir, name);
  write_file(dat, table, get32(table + 4));
  return iasl(log, dsl, false, (const char *const[]){"-d", dat, NULL});
}

/* Compile the disassembled DSDT back with optimizations off (iasl would
 * otherwise drop our redundant root prefix in \_SB) and compare the AML
 * body: this checks every PkgLength and resource byte against ACPICA. */
static void recompile_matches(const char *dir, const uint8_t *dsdt) {
  cleanup_free char *dsl = hv_xasprintf("%s/dsdt.dsl", dir);
  cleanup_free char *prefix = hv_xasprintf("%s/recompiled", dir);
  cleanup_free char *aml_path = hv_xasprintf("%s/recompiled.aml", dir);
  cleanup_free char *log = hv_xasprintf("%s/recompile.log", dir);
  iasl(log, aml_path, true, (const char *const[]){"-oa", "-p", prefix, dsl, NULL});
  char *aml = NULL;
  size_t len = 0;
  hv_error_t err = NULL;
  if (hv_read_file(aml_path, &aml, &len, &err) < 0)
    fail_msg("%s", err->msg);
  cleanup_free char *aml_free = aml;
  assert_int_equal(len, get32(dsdt + 4));
  /* Header bytes 9 (checksum) and 28..35 (creator) are iasl's own. */
  assert_memory_equal(aml + 36, dsdt + 36, len - 36);
}

static int count(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
    n++;
  return n;
}

static void expect(const char *text, const char *needle, const char *what) {
  if (!strstr(text, needle))
    fail_msg("%s: no \"%s\" in:\n%s", what, needle, text);
}

static char *subdir(const char *name) {
  char *d = hv_xasprintf("%s/%s", tmpdir, name);
  assert_int_equal(mkdir(d, 0755), 0);
  return d;
}

/* ---- tests ---- */

static void test_two_vcpus_four_devices(void **state) {
  (void)state;
  struct tables t;
  build(&t, 2, 4);
  cleanup_free uint8_t *buf = t.buf;

  /* FADT: HW-reduced, no fixed buttons, no VGA/MSI/CMOS, no 8042/legacy. */
  uint32_t flags = get32(t.fadt + 112);
  assert_true(flags & (1u << 20));
  assert_true(flags & (1u << 4));
  assert_true(flags & (1u << 5));
  uint16_t boot = get16(t.fadt + 109);
  assert_int_equal(boot, (1u << 2) | (1u << 3) | (1u << 5));
  assert_int_equal(t.fadt[131], 5);

  /* MADT: LAPICs 0 and 1, IOAPIC 2, LINT1 NMI; entries fill the table. */
  const uint8_t *m = t.madt;
  assert_int_equal(get32(m + 36), 0xfee00000);
  assert_int_equal(get32(m + 40), 0);
  uint32_t len = get32(m + 4), off = 44;
  int lapics = 0, ioapics = 0, nmis = 0;
  while (off < len) {
    const uint8_t *e = m + off;
    assert_true(e[1] >= 2 && off + e[1] <= len);
    if (e[0] == 0) {
      assert_int_equal(e[1], 8);
      assert_int_equal(e[2], lapics);
      assert_int_equal(e[3], lapics);
      assert_int_equal(get32(e + 4), 1);
      lapics++;
    } else if (e[0] == 1) {
      assert_int_equal(e[1], 12);
      assert_int_equal(e[2], 2);
      assert_int_equal(get32(e + 4), 0xfec00000);
      assert_int_equal(get32(e + 8), 0);
      ioapics++;
    } else if (e[0] == 4) {
      assert_int_equal(e[1], 6);
      assert_int_equal(e[2], 0xff);
      assert_int_equal(get16(e + 3), 0);
      assert_int_equal(e[5], 1);
      nmis++;
    } else {
      fail_msg("unexpected MADT entry type %u", e[0]);
    }
    off += e[1];
  }
  assert_int_equal(off, len);
  assert_int_equal(lapics, 2);
  assert_int_equal(ioapics, 1);
  assert_int_equal(nmis, 1);

  /* The same through ACPICA. */
  cleanup_free char *dir = subdir("two-four");
  cleanup_free char *dsdt = disassemble(dir, "dsdt", t.dsdt);
  assert_int_equal(count(dsdt, "Device (V00"), 4);
  assert_int_equal(count(dsdt, "Name (_HID, \"LNRO0005\")"), 4);
  assert_int_equal(count(dsdt, "Memory32Fixed (ReadWrite,"), 4);
  assert_int_equal(count(dsdt, "0x00001000,         // Address Length"), 4);
  assert_int_equal(count(dsdt, "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive"), 4);
  expect(dsdt, "Scope (\\_SB)", "DSDT");
  expect(dsdt, "Name (_UID, Zero)", "DSDT");
  expect(dsdt, "Name (_UID, 0x03)", "DSDT");
  for (int i = 0; i < 4; i++) {
    char s[64];
    snprintf(s, sizeof s, "Device (V%03X)", i);
    expect(dsdt, s, "DSDT");
    snprintf(s, sizeof s, "0x%08X,         // Address Base", 0xd0000000u + i * 0x1000u);
    expect(dsdt, s, "DSDT");
    snprintf(s, sizeof s, "0x%08X,\n", 5 + i);
    expect(dsdt, s, "DSDT");
  }
  assert_null(strstr(dsdt, "0xD0004000"));
  assert_null(strstr(dsdt, "0x00000009,"));
  recompile_matches(dir, t.dsdt);

  cleanup_free char *facp = disassemble(dir, "facp", t.fadt);
  expect(facp, "Hardware Reduced (V5) : 1", "FADT");
  expect(facp, "Control Method Power Button (V1) : 1", "FADT");
  expect(facp, "Control Method Sleep Button (V1) : 1", "FADT");
  expect(facp, "Legacy Devices Supported (V2) : 0", "FADT");
  expect(facp, "8042 Present on ports 60/64 (V2) : 0", "FADT");
  expect(facp, "VGA Not Present (V4) : 1", "FADT");
  expect(facp, "MSI Not Supported (V4) : 1", "FADT");
  expect(facp, "CMOS RTC Not Present (V5) : 1", "FADT");
  expect(facp, "FADT Minor Revision : 05", "FADT");
  char x_dsdt[64];
  snprintf(x_dsdt, sizeof x_dsdt, "DSDT Address : %016llX",
           (unsigned long long)(BASE + (uint64_t)(t.dsdt - t.buf)));
  expect(facp, x_dsdt, "FADT");

  cleanup_free char *apic = disassemble(dir, "apic", t.madt);
  assert_int_equal(count(apic, "[Processor Local APIC]"), 2);
  expect(apic, "Local Apic Address : FEE00000", "MADT");
  expect(apic, "Local Apic ID : 00", "MADT");
  expect(apic, "Local Apic ID : 01", "MADT");
  assert_null(strstr(apic, "Local Apic ID : 02"));
  expect(apic, "PC-AT Compatibility : 0", "MADT");
  expect(apic, "I/O Apic ID : 02", "MADT");
  expect(apic, "Address : FEC00000", "MADT");
  expect(apic, "[Local APIC NMI]", "MADT");
  expect(apic, "Interrupt Input LINT : 01", "MADT");
}

/* One vCPU and no devices: an empty \_SB scope is still a valid DSDT. */
static void test_one_vcpu_no_devices(void **state) {
  (void)state;
  struct tables t;
  build(&t, 1, 0);
  cleanup_free uint8_t *buf = t.buf;
  cleanup_free char *dir = subdir("one-none");
  cleanup_free char *dsdt = disassemble(dir, "dsdt", t.dsdt);
  expect(dsdt, "Scope (\\_SB)", "DSDT");
  assert_null(strstr(dsdt, "Device"));
  recompile_matches(dir, t.dsdt);
  cleanup_free char *facp = disassemble(dir, "facp", t.fadt);
  expect(facp, "Hardware Reduced (V5) : 1", "FADT");
  cleanup_free char *apic = disassemble(dir, "apic", t.madt);
  assert_int_equal(count(apic, "[Processor Local APIC]"), 1);
  expect(apic, "I/O Apic ID : 01", "MADT");
}

/* 100 devices: the \_SB scope outgrows 4095 bytes, so its PkgLength takes
 * the 3-byte form; IRQs wrap around after 19 slots (vm_mmio_slot). */
static void test_many_devices(void **state) {
  (void)state;
  struct tables t;
  build(&t, 4, 100);
  cleanup_free uint8_t *buf = t.buf;
  assert_true(get32(t.dsdt + 4) > 0x1000);
  assert_int_equal(t.dsdt[37] >> 6, 2);  /* Scope's PkgLength: 1 + 2 bytes */
  cleanup_free char *dir = subdir("many");
  cleanup_free char *dsdt = disassemble(dir, "dsdt", t.dsdt);
  assert_int_equal(count(dsdt, "\"LNRO0005\""), 100);
  expect(dsdt, "Device (V063)", "DSDT");
  expect(dsdt, "Name (_UID, 0x63)", "DSDT");
  expect(dsdt, "0xD0063000,", "DSDT");
  recompile_matches(dir, t.dsdt);
}

static void test_errors(void **state) {
  (void)state;
  struct tables t;
  build(&t, 2, 4);
  cleanup_free uint8_t *buf = t.buf;
  size_t need = (size_t)t.used;
  hv_error_t err = NULL;

  /* Exactly enough room works; one byte less names the sizes. */
  assert_int_equal(vm_acpi_build(buf, need, BASE, 2, 4, &err), (long)need);
  assert_null(err);
  memset(buf, 0xaa, ROOM);
  assert_true(vm_acpi_build(buf, need - 1, BASE, 2, 4, &err) < 0);
  assert_non_null(err);
  char want[64];
  snprintf(want, sizeof want, "need %zu bytes", need);
  expect(err->msg, want, "room error");
  snprintf(want, sizeof want, "only %zu", need - 1);
  expect(err->msg, want, "room error");
  for (size_t i = 0; i < ROOM; i++)
    if (buf[i] != 0xaa)
      fail_msg("failed build wrote byte %zu", i);
  hv_error_release(&err);

  assert_true(vm_acpi_build(buf, 0, BASE, 1, 0, &err) < 0);
  expect(err->msg, "need", "room error");
  hv_error_release(&err);

  assert_true(vm_acpi_build(buf, ROOM, BASE, 0, 4, &err) < 0);
  expect(err->msg, "vCPUs", "0 vCPUs");
  hv_error_release(&err);
  assert_true(vm_acpi_build(buf, ROOM, BASE, 256, 4, &err) < 0);
  expect(err->msg, "256 vCPUs", "256 vCPUs");
  hv_error_release(&err);
  assert_true(vm_acpi_build(buf, ROOM, BASE + 8, 1, 0, &err) < 0);
  expect(err->msg, "aligned", "unaligned base");
  hv_error_release(&err);
  /* 255 vCPUs is the most the MADT's 8-bit ids describe. */
  assert_true(vm_acpi_build(buf, ROOM, BASE, 255, 0, &err) > 0);
  assert_null(err);
}

/* vm_acpi_write on a VM whose RAM is a plain buffer (vm_gpa only needs
 * mem and mem_size): tables at VM_ACPI_BASE for its vCPUs and slots. */
static void test_write(void **state) {
  (void)state;
  struct vm vm = {0};
  vm.mem_size = 2 << 20;
  vm.mem = calloc(1, vm.mem_size);
  assert_non_null(vm.mem);
  cleanup_free uint8_t *mem = vm.mem;
  vm.nr_vcpus = 3;
  vm.next_mmio_slot = 2;
  uint64_t rsdp = 0;
  hv_error_t err = NULL;
  if (vm_acpi_write(&vm, &rsdp, &err) < 0)
    fail_msg("vm_acpi_write: %s", err->msg);
  assert_int_equal(rsdp, VM_ACPI_BASE);
  const uint8_t *r = vm.mem + VM_ACPI_BASE;
  assert_memory_equal(r, "RSD PTR ", 8);
  assert_int_equal(sum8(r, 36), 0);
  const uint8_t *x = vm.mem + get64(r + 24);
  const uint8_t *madt = vm.mem + get64(x + 44);
  assert_memory_equal(madt, "APIC", 4);
  assert_int_equal(get32(madt + 4), 44 + 3 * 8 + 12 + 6);
  const uint8_t *fadt = vm.mem + get64(x + 36);
  const uint8_t *dsdt = vm.mem + get64(fadt + 140);
  assert_memory_equal(dsdt, "DSDT", 4);
  assert_true(get64(fadt + 140) + get32(dsdt + 4) <= VM_ACPI_END);
  assert_non_null(memmem(dsdt, get32(dsdt + 4), "V001", 4));
  assert_null(memmem(dsdt, get32(dsdt + 4), "V002", 4));

  /* Guest RAM ending below the ACPI range. */
  vm.mem_size = 0xf0000;
  assert_true(vm_acpi_write(&vm, &rsdp, &err) < 0);
  expect(err->msg, "too small", "small guest");
  hv_error_release(&err);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static int setup(void **state) {
  (void)state;
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_two_vcpus_four_devices),
      cmocka_unit_test(test_one_vcpu_no_devices),
      cmocka_unit_test(test_many_devices),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_write),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
