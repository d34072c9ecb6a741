/* acpi.c: ACPI tables for guests that find their devices only through ACPI.
 *
 * Stock distribution kernels build virtio_mmio as a module without
 * VIRTIO_MMIO_CMDLINE_DEVICES, so the "virtio_mmio.device=" arguments the
 * devices append are ignored there; such kernels bind virtio-mmio windows
 * only to ACPI devices with _HID "LNRO0005".  The tables here are the
 * smallest set Linux accepts for that on x86 (ACPI 6.x):
 *
 *   RSDP (rev 2) -> XSDT -> FADT (rev 6, HW-reduced) -> DSDT (X_DSDT)
 *                        -> MADT (local APICs, IOAPIC, LINT1 NMI)
 *
 * HW-reduced ACPI means no SCI, PM timer, PM1 blocks or GPEs: the VMM has
 * none of them, and Linux then also skips the legacy PIC and the PIT-based
 * timer setup.  Power-off and reboot go through the hypercall port and the
 * i8042 reset line as before.
 *
 * Everything is written byte by byte at explicit offsets (little-endian by
 * construction, no packed structs), each table 16-byte aligned in one
 * contiguous range starting with the RSDP, so that a kernel scanning
 * 0xe0000..0xfffff for "RSD PTR " finds it even without being told. */
#include "vmm.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACPI_OEM_ID "HVRUN "        /* 6 bytes */
#define ACPI_OEM_TABLE_ID "HVRUNVM " /* 8 bytes */
#define ACPI_CREATOR_ID "HVRN"      /* 4 bytes */
#define ACPI_ALIGN 16

/* Sizes and offsets from the ACPI 6.x specification, chapter 5.2. */
#define RSDP_LEN 36
#define SDT_HDR_LEN 36
#define SDT_LENGTH 4
#define SDT_CHECKSUM 9

#define FADT_LEN 276                /* revision 6 (ACPI 6.0 and later) */
#define FADT_REVISION 6
#define FADT_MINOR_VERSION 5
#define FADT_DSDT 40
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_MINOR 131
#define FADT_X_DSDT 140
#define FADT_HYPERVISOR_ID 268
#define IAPC_VGA_NOT_PRESENT (1u << 2)
#define IAPC_MSI_NOT_SUPPORTED (1u << 3)
#define IAPC_CMOS_RTC_NOT_PRESENT (1u << 5)
#define FADT_PWR_BUTTON (1u << 4)   /* 1 = no fixed-feature power button */
#define FADT_SLP_BUTTON (1u << 5)   /* 1 = no fixed-feature sleep button */
#define FADT_HW_REDUCED_ACPI (1u << 20)

#define MADT_REVISION 5
#define MADT_LAPIC_ADDR 36
#define MADT_FLAGS 40
#define MADT_ENTRIES 44
#define MADT_LAPIC_LEN 8
#define MADT_IOAPIC_LEN 12
#define MADT_LAPIC_NMI_LEN 6
#define LAPIC_ADDR 0xfee00000u
#define IOAPIC_ADDR 0xfec00000u

/* DSDT revision 2 makes AML integers 64-bit. */
#define DSDT_REVISION 2

/* Device names are "V" plus three hex digits, which covers every window of
 * the 16 MiB virtio-mmio range (0xd0000000-0xd0ffffff, 4 KiB each). */
#define ACPI_MAX_VIRTIO 0x1000u

static void put16(uint8_t *p, size_t off, uint16_t v) {
  p[off] = (uint8_t)v;
  p[off + 1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, size_t off, uint32_t v) {
  put16(p, off, (uint16_t)v);
  put16(p, off + 2, (uint16_t)(v >> 16));
}
static void put64(uint8_t *p, size_t off, uint64_t v) {
  put32(p, off, (uint32_t)v);
  put32(p, off + 4, (uint32_t)(v >> 32));
}

/* The byte that makes p[0..n) sum to zero (mod 256). */
static uint8_t checksum(const uint8_t *p, size_t n) {
  uint8_t s = 0;
  for (size_t i = 0; i < n; i++)
    s += p[i];
  return (uint8_t)-s;
}

static size_t align_up(size_t v) { return (v + ACPI_ALIGN - 1) & ~(size_t)(ACPI_ALIGN - 1); }

/* The common System Description Table header; the checksum is filled in
 * by sdt_finish once the body is complete. */
static void sdt_header(uint8_t *t, const char sig[4], uint32_t len, uint8_t rev) {
  memcpy(t, sig, 4);
  put32(t, SDT_LENGTH, len);
  t[8] = rev;
  memcpy(t + 10, ACPI_OEM_ID, 6);
  memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
  put32(t, 24, 1);                      /* OEM revision */
  memcpy(t + 28, ACPI_CREATOR_ID, 4);
  put32(t, 32, 1);                      /* creator revision */
}

static void sdt_finish(uint8_t *t, uint32_t len) {
  t[SDT_CHECKSUM] = 0;
  t[SDT_CHECKSUM] = checksum(t, len);
}

/* ---- AML: a growable byte buffer with package (PkgLength) nesting ---- */

/* AML opcodes (ACPI 6.x, 20.2 "AML Grammar Definition"). */
#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_NAME 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_SCOPE 0x10
#define AML_BUFFER 0x11
#define AML_EXT_PREFIX 0x5b
#define AML_DEVICE 0x82               /* after AML_EXT_PREFIX */
#define AML_ROOT_CHAR 0x5c

/* Resource descriptors (6.4 "Resource Data Types for ACPI"). */
#define RES_MEMORY32_FIXED 0x86       /* large item, 9 data bytes */
#define RES_EXT_INTERRUPT 0x89        /* large item, 6 data bytes for one IRQ */
#define RES_END_TAG 0x79              /* small item, 1 data byte (checksum) */
#define EXT_IRQ_CONSUMER 0x01
#define EXT_IRQ_EDGE 0x02             /* active-high (bit 2) and exclusive (bit 3) are 0 */

struct aml { uint8_t *p; size_t len, cap; };

static void aml_bytes(struct aml *a, const void *d, size_t n) {
  if (a->len + n > a->cap) {
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + n)
      cap *= 2;
    a->p = hv_xrealloc(a->p, cap);
    a->cap = cap;
  }
  memcpy(a->p + a->len, d, n);
  a->len += n;
}
static void aml_byte(struct aml *a, uint8_t b) { aml_bytes(a, &b, 1); }

/* A package's PkgLength counts its own encoding bytes plus the body, and its
 * size (1..4 bytes) depends on that total, so the body is written first
 * behind a 4-byte gap and moved down when the package is closed. */
static size_t aml_pkg_open(struct aml *a) {
  size_t start = a->len;
  aml_bytes(a, "\0\0\0\0", 4);
  return start;
}

static void aml_pkg_close(struct aml *a, size_t start) {
  size_t body = a->len - start - 4, n;
  /* 1 byte: 6 bits of length; n bytes: 4 bits + 8 per following byte. */
  if (body + 1 <= 0x3f)
    n = 1;
  else if (body + 2 <= 0xfff)
    n = 2;
  else if (body + 3 <= 0xfffff)
    n = 3;
  else
    n = 4;                              /* callers stay far below 2^28 */
  size_t total = body + n;
  memmove(a->p + start + n, a->p + start + 4, body);
  if (n == 1) {
    a->p[start] = (uint8_t)total;
  } else {
    a->p[start] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
    for (size_t i = 1; i < n; i++)
      a->p[start + i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
  }
  a->len = start + total;
}

/* The shortest integer encoding (ZeroOp, OneOp or a prefixed constant). */
static void aml_integer(struct aml *a, uint32_t v) {
  uint8_t b[5];
  if (v <= 1) {
    aml_byte(a, v ? AML_ONE : AML_ZERO);
    return;
  }
  size_t n = v <= 0xff ? 1 : v <= 0xffff ? 2 : 4;
  b[0] = n == 1 ? AML_BYTE_PREFIX : n == 2 ? AML_WORD_PREFIX : AML_DWORD_PREFIX;
  for (size_t i = 0; i < n; i++)
    b[1 + i] = (uint8_t)(v >> (8 * i));
  aml_bytes(a, b, 1 + n);
}

static void aml_name_string(struct aml *a, const char seg[4], const char *s) {
  aml_byte(a, AML_NAME);
  aml_bytes(a, seg, 4);
  aml_byte(a, AML_STRING_PREFIX);
  aml_bytes(a, s, strlen(s) + 1);
}

static void aml_name_integer(struct aml *a, const char seg[4], uint32_t v) {
  aml_byte(a, AML_NAME);
  aml_bytes(a, seg, 4);
  aml_integer(a, v);
}

/* Name(_CRS, ResourceTemplate() {
 *   Memory32Fixed(ReadWrite, base, len)
 *   Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi } })
 * Edge/active-high matches how the IOAPIC pins are driven (irqfd pulses)
 * and what the MP table claims for them. */
static void aml_virtio_crs(struct aml *a, uint32_t base, uint32_t len, uint32_t gsi) {
  uint8_t r[12 + 9 + 2] = {0};
  r[0] = RES_MEMORY32_FIXED;
  put16(r, 1, 9);
  r[3] = 0x01;                          /* read/write */
  put32(r, 4, base);
  put32(r, 8, len);
  r[12] = RES_EXT_INTERRUPT;
  put16(r, 13, 6);
  r[15] = EXT_IRQ_CONSUMER | EXT_IRQ_EDGE;
  r[16] = 1;                            /* one interrupt number follows */
  put32(r, 17, gsi);
  r[21] = RES_END_TAG;
  r[22] = 0;                            /* 0: treat the template as checksummed */

  aml_byte(a, AML_NAME);
  aml_bytes(a, "_CRS", 4);
  aml_byte(a, AML_BUFFER);
  size_t pkg = aml_pkg_open(a);
  aml_integer(a, sizeof r);             /* BufferSize */
  aml_bytes(a, r, sizeof r);
  aml_pkg_close(a, pkg);
}

/* The whole DSDT (header included, checksum not yet) into `a`. */
static void build_dsdt(struct aml *a, uint32_t n_virtio) {
  uint8_t hdr[SDT_HDR_LEN] = {0};
  aml_bytes(a, hdr, sizeof hdr);
  /* Scope(\_SB) { Device(Vnnn) { _HID, _UID, _CRS } ... } */
  aml_byte(a, AML_SCOPE);
  size_t scope = aml_pkg_open(a);
  aml_byte(a, AML_ROOT_CHAR);
  aml_bytes(a, "_SB_", 4);
  for (uint32_t i = 0; i < n_virtio; i++) {
    uint64_t base;
    uint32_t gsi;
    vm_mmio_slot(i, &base, &gsi);
    char name[5];
    snprintf(name, sizeof name, "V%03X", (unsigned)i);
    aml_byte(a, AML_EXT_PREFIX);
    aml_byte(a, AML_DEVICE);
    size_t dev = aml_pkg_open(a);
    aml_bytes(a, name, 4);
    aml_name_string(a, "_HID", "LNRO0005");
    aml_name_integer(a, "_UID", i);
    aml_virtio_crs(a, (uint32_t)base, (uint32_t)VM_MMIO_SIZE, gsi);
    aml_pkg_close(a, dev);
  }
  aml_pkg_close(a, scope);
  sdt_header(a->p, "DSDT", (uint32_t)a->len, DSDT_REVISION);
}

/* ---- the fixed-layout tables ---- */

static void build_fadt(uint8_t *t, uint64_t dsdt_gpa) {
  sdt_header(t, "FACP", FADT_LEN, FADT_REVISION);
  /* DSDT (32-bit) stays 0: X_DSDT is authoritative and a mismatch between
   * the two is an error for ACPICA.  Every PM block, SCI and reset register
   * stays 0: HW-reduced ACPI has none. */
  put16(t, FADT_IAPC_BOOT_ARCH,
        IAPC_VGA_NOT_PRESENT | IAPC_MSI_NOT_SUPPORTED | IAPC_CMOS_RTC_NOT_PRESENT);
  put32(t, FADT_FLAGS, FADT_HW_REDUCED_ACPI | FADT_PWR_BUTTON | FADT_SLP_BUTTON);
  t[FADT_MINOR] = FADT_MINOR_VERSION;
  put64(t, FADT_X_DSDT, dsdt_gpa);
  memcpy(t + FADT_HYPERVISOR_ID, "HVRUN", 5);
  sdt_finish(t, FADT_LEN);
}

static size_t madt_len(uint32_t nr_vcpus) {
  return MADT_ENTRIES + nr_vcpus * MADT_LAPIC_LEN + MADT_IOAPIC_LEN + MADT_LAPIC_NMI_LEN;
}

/* The same CPUs and IOAPIC as the MP table (boot.c), which Linux ignores
 * once it has a MADT.  Flags 0: no PC-AT dual 8259 is claimed, matching the
 * HW-reduced FADT. */
static void build_madt(uint8_t *t, uint32_t nr_vcpus) {
  uint32_t len = (uint32_t)madt_len(nr_vcpus);
  sdt_header(t, "APIC", len, MADT_REVISION);
  put32(t, MADT_LAPIC_ADDR, LAPIC_ADDR);
  put32(t, MADT_FLAGS, 0);
  uint8_t *e = t + MADT_ENTRIES;
  for (uint32_t i = 0; i < nr_vcpus; i++, e += MADT_LAPIC_LEN) {
    e[0] = 0;                           /* Processor Local APIC */
    e[1] = MADT_LAPIC_LEN;
    e[2] = (uint8_t)i;                  /* ACPI processor UID */
    e[3] = (uint8_t)i;                  /* APIC id */
    put32(e, 4, 1);                     /* enabled */
  }
  e[0] = 1;                             /* I/O APIC */
  e[1] = MADT_IOAPIC_LEN;
  e[2] = (uint8_t)nr_vcpus;             /* id after the CPUs', as in the MP table */
  put32(e, 4, IOAPIC_ADDR);
  put32(e, 8, 0);                       /* GSI base */
  e += MADT_IOAPIC_LEN;
  e[0] = 4;                             /* Local APIC NMI */
  e[1] = MADT_LAPIC_NMI_LEN;
  e[2] = 0xff;                          /* all processors */
  put16(e, 3, 0);                       /* polarity/trigger: bus default */
  e[5] = 1;                             /* LINT1 */
  sdt_finish(t, len);
}

long vm_acpi_build(uint8_t *buf, size_t room, uint64_t base_gpa, uint32_t nr_vcpus,
                   uint32_t n_virtio, hv_error_t *err) {
  /* APIC ids and processor UIDs are 8-bit in the MADT entries we write. */
  if (nr_vcpus == 0 || nr_vcpus > 255)
    return hv_error(err, 0, "ACPI tables: %u vCPUs; the MADT describes 1 to 255", nr_vcpus);
  if (n_virtio > ACPI_MAX_VIRTIO)
    return hv_error(err, 0, "ACPI tables: %u virtio-mmio slots; the DSDT describes at most %u",
                    n_virtio, ACPI_MAX_VIRTIO);
  /* The RSDP must sit on a 16-byte boundary to be found by a scan. */
  if (base_gpa % ACPI_ALIGN)
    return hv_error(err, 0, "ACPI tables: base 0x%llx is not 16-byte aligned",
                    (unsigned long long)base_gpa);

  /* The DSDT's size depends on its AML, so build it first (in a scratch
   * buffer) and lay out the rest around it. */
  struct aml dsdt = {0};
  build_dsdt(&dsdt, n_virtio);
  cleanup_free uint8_t *dsdt_bytes = dsdt.p;

  size_t xsdt_len = SDT_HDR_LEN + 2 * 8;
  size_t off_xsdt = align_up(RSDP_LEN);
  size_t off_fadt = align_up(off_xsdt + xsdt_len);
  size_t off_madt = align_up(off_fadt + FADT_LEN);
  size_t off_dsdt = align_up(off_madt + madt_len(nr_vcpus));
  size_t total = off_dsdt + dsdt.len;
  if (total > room)
    return hv_error(err, 0, "ACPI tables for %u vCPUs and %u virtio-mmio devices need %zu "
                    "bytes; only %zu fit between 0x%llx and 0x%llx", nr_vcpus, n_virtio,
                    total, room, (unsigned long long)base_gpa,
                    (unsigned long long)(base_gpa + room));
  memset(buf, 0, total);

  /* DSDT, then the tables that point at it, then the RSDP over them all. */
  memcpy(buf + off_dsdt, dsdt.p, dsdt.len);
  sdt_finish(buf + off_dsdt, (uint32_t)dsdt.len);
  build_fadt(buf + off_fadt, base_gpa + off_dsdt);
  build_madt(buf + off_madt, nr_vcpus);

  uint8_t *x = buf + off_xsdt;
  sdt_header(x, "XSDT", (uint32_t)xsdt_len, 1);
  put64(x, SDT_HDR_LEN, base_gpa + off_fadt);
  put64(x, SDT_HDR_LEN + 8, base_gpa + off_madt);
  sdt_finish(x, (uint32_t)xsdt_len);

  uint8_t *r = buf;
  memcpy(r, "RSD PTR ", 8);
  memcpy(r + 9, ACPI_OEM_ID, 6);
  r[15] = 2;                            /* revision 2: XSDT, extended checksum */
  put32(r, 16, 0);                      /* no RSDT: 64-bit pointers only */
  put32(r, 20, RSDP_LEN);
  put64(r, 24, base_gpa + off_xsdt);
  r[8] = checksum(r, 20);               /* ACPI 1.0 part */
  r[32] = checksum(r, RSDP_LEN);        /* whole structure, r[8] included */
  return (long)total;
}

int vm_acpi_write(struct vm *vm, uint64_t *rsdp, hv_error_t *err) {
  uint64_t room = VM_ACPI_END - VM_ACPI_BASE;
  uint8_t *buf = vm_gpa(vm, VM_ACPI_BASE, room);
  if (!buf)
    return hv_error(err, 0, "guest memory (%llu bytes) too small for the ACPI tables at "
                    "0x%llx-0x%llx", (unsigned long long)vm->mem_size,
                    (unsigned long long)VM_ACPI_BASE, (unsigned long long)VM_ACPI_END);
  if (vm_acpi_build(buf, room, VM_ACPI_BASE, vm->nr_vcpus, vm->next_mmio_slot, err) < 0)
    return -1;
  *rsdp = VM_ACPI_BASE;
  return 0;
}
