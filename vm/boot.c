/* boot.c: long-mode CPU state shared by the test harness and the Linux
 * loader (loader.c). */
#include "vmm.h"
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#define PTE_P 0x1ULL
#define PTE_W 0x2ULL
#define PTE_PS 0x80ULL

void vm_build_identity_tables(struct vm *vm) {
  /* PML4 at 0x9000, one PDPT at 0xa000, four PDs at 0xb000..0xefff: the
   * first 4 GiB with 2 MiB pages (MMIO hole included, so a test guest can
   * poke unmapped addresses). */
  uint64_t *pml4 = vm_gpa(vm, VM_BOOT_PML4, 0x6000);
  memset(pml4, 0, 0x6000);
  uint64_t *pdpt = pml4 + 512;
  pml4[0] = (VM_BOOT_PML4 + 0x1000) | PTE_P | PTE_W;
  for (uint64_t g = 0; g < 4; g++) {
    uint64_t pd_gpa = VM_BOOT_PML4 + 0x2000 + g * 0x1000;
    uint64_t *pd = pml4 + 512 * (2 + g);
    pdpt[g] = pd_gpa | PTE_P | PTE_W;
    for (uint64_t i = 0; i < 512; i++)
      pd[i] = ((g << 30) | (i << 21)) | PTE_P | PTE_W | PTE_PS;
  }
  /* GDT: null; 0x08 and 0x10 64-bit code (0x10 is Linux's __BOOT_CS);
   * 0x18 data (__BOOT_DS); 0x20 32-bit code (PVH). */
  uint64_t *gdt = vm_gpa(vm, VM_BOOT_GDT, 5 * 8);
  gdt[0] = 0;
  gdt[1] = 0x00af9b000000ffffULL;
  gdt[2] = 0x00af9b000000ffffULL;
  gdt[3] = 0x00cf93000000ffffULL;
  gdt[4] = 0x00cf9b000000ffffULL;
}

static struct kvm_segment flat_segment(uint16_t sel, uint8_t type, bool code64) {
  return (struct kvm_segment){.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
                              .present = 1, .dpl = 0, .db = code64 ? 0 : 1, .s = 1,
                              .l = code64 ? 1 : 0, .g = 1};
}

int vm_vcpu_set_longmode(struct vm_vcpu *v, uint64_t rip, uint64_t rsp, uint64_t rsi,
                         hv_error_t *err) {
  struct kvm_sregs s;
  if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
    return hv_error(err, errno, "KVM_GET_SREGS vCPU %u", v->id);
  s.cs = flat_segment(0x10, 0xb, true);
  s.ds = s.es = s.fs = s.gs = s.ss = flat_segment(0x18, 0x3, false);
  s.gdt.base = VM_BOOT_GDT;
  s.gdt.limit = 5 * 8 - 1;
  s.idt.base = 0;
  s.idt.limit = 0;
  s.cr3 = VM_BOOT_PML4;
  s.cr4 = 0x20;                 /* PAE */
  s.cr0 = 0x80050033;           /* PG WP AM NE ET MP PE */
  s.efer = 0x500;               /* LME LMA */
  if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
    return hv_error(err, errno, "KVM_SET_SREGS vCPU %u", v->id);
  struct kvm_regs r = {.rflags = 2, .rip = rip, .rsp = rsp, .rsi = rsi};
  if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
    return hv_error(err, errno, "KVM_SET_REGS vCPU %u", v->id);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Linux loader: vmlinux (PVH entry note, else 64-bit entry) or bzImage  */
/* (64-bit boot protocol).  Layout in low memory:                        */
/*   0x6000 hvm_start_info (PVH) + memory map + module list             */
/*   0x7000 boot_params (zero page)      0x8000 GDT   0x9000 page tables */
/*   0x20000 command line                0x9fc00 MP table (SMP, IOAPIC)  */
/*   0xe0000 ACPI tables (vm->acpi only: acpi.c)                         */
/* ------------------------------------------------------------------ */
#include <elf.h>

#define BOOT_PARAMS 0x7000ULL
#define CMDLINE_ADDR 0x20000ULL
#define CMDLINE_MAX 0x10000ULL
#define PVH_INFO 0x6000ULL
#define PVH_MEMMAP (PVH_INFO + 0x40)
#define PVH_MODLIST (PVH_INFO + 0x800)
#define MPTABLE_ADDR 0x9fc00ULL
#define EBDA_END 0xa0000ULL
#define HIMEM_START 0x100000ULL
#define BZIMAGE_LOAD 0x100000ULL
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578U

/* boot_params / setup_header offsets (Documentation/arch/x86/boot.rst,
 * zero-page.rst). */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_SETUP_SECTS 0x1f1
#define BP_BOOT_FLAG 0x1fe
#define BP_JUMP 0x200
#define BP_HEADER 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_KERNEL_ALIGNMENT 0x230
#define BP_XLOADFLAGS 0x236
#define BP_CMDLINE_SIZE 0x238
#define BP_INIT_SIZE 0x260
#define BP_E820_TABLE 0x2d0
#define E820_MAX 128
#define XLF_KERNEL_64 0x1
#define XLF_CAN_BE_LOADED_ABOVE_4G 0x2
#define LOADED_HIGH 0x1

static uint32_t get32(const uint8_t *p, size_t off) {
  uint32_t v;
  memcpy(&v, p + off, 4);
  return v;
}
static uint16_t get16(const uint8_t *p, size_t off) {
  uint16_t v;
  memcpy(&v, p + off, 2);
  return v;
}
static void put32(uint8_t *p, size_t off, uint32_t v) { memcpy(p + off, &v, 4); }
static void put16(uint8_t *p, size_t off, uint16_t v) { memcpy(p + off, &v, 2); }

struct mem_range { uint64_t addr, size; uint32_t type; }; /* type: 1 RAM, 2 reserved */

static size_t memory_map(struct vm *vm, struct mem_range *m) {
  uint64_t low = vm_lowmem_size(vm);
  size_t n = 0;
  m[n++] = (struct mem_range){0, MPTABLE_ADDR, 1};
  m[n++] = (struct mem_range){MPTABLE_ADDR, EBDA_END - MPTABLE_ADDR, 2};
  if (vm->acpi)
    m[n++] = (struct mem_range){VM_ACPI_BASE, VM_ACPI_END - VM_ACPI_BASE, 2};
  m[n++] = (struct mem_range){HIMEM_START, low - HIMEM_START, 1};
  if (vm->mem_size > low)
    m[n++] = (struct mem_range){VM_HIGHMEM_BASE, vm->mem_size - low, 1};
  return n;
}

static uint8_t checksum(const uint8_t *p, size_t n) {
  uint8_t s = 0;
  for (size_t i = 0; i < n; i++)
    s += p[i];
  return (uint8_t)-s;
}

/* Intel MultiProcessor Specification 1.4 table: the CPUs, one ISA bus and
 * the IOAPIC with ISA IRQ n on pin n.  Linux (with no ACPI) finds the APs
 * and the IOAPIC only through it. */
static int write_mptable(struct vm *vm, hv_error_t *err) {
  uint32_t ncpu = vm->nr_vcpus;
  size_t len = 16 + 44 + ncpu * 20 + 8 + 8 + 24 * 8 + 2 * 8;
  if (len > EBDA_END - MPTABLE_ADDR)
    return hv_error(err, 0, "too many vCPUs (%u) for the MP table", ncpu);
  uint8_t *base = vm_gpa(vm, MPTABLE_ADDR, len);
  memset(base, 0, len);
  uint8_t *fp = base, *cfg = base + 16, *e = cfg + 44;
  uint16_t count = 0;
  uint8_t ioapic_id = (uint8_t)ncpu;
  for (uint32_t i = 0; i < ncpu; i++, e += 20, count++) {
    e[0] = 0;                           /* processor */
    e[1] = (uint8_t)i;                  /* local APIC id */
    e[2] = 0x14;                        /* local APIC version */
    e[3] = 0x01 | (i == 0 ? 0x02 : 0);  /* enabled, BSP */
    put32(e, 4, 0x600);                 /* family 6 signature */
    put32(e, 8, 0x201);                 /* FPU, APIC */
  }
  e[0] = 1;                             /* bus 0: ISA */
  memcpy(e + 2, "ISA   ", 6);
  e += 8, count++;
  e[0] = 2, e[1] = ioapic_id, e[2] = 0x11, e[3] = 1; /* IOAPIC, enabled */
  put32(e, 4, 0xfec00000);
  e += 8, count++;
  for (uint8_t irq = 0; irq < 24; irq++, e += 8, count++) {
    e[0] = 3;                           /* I/O interrupt assignment */
    e[1] = 0;                           /* INT */
    e[4] = 0, e[5] = irq, e[6] = ioapic_id, e[7] = irq;
  }
  e[0] = 4, e[1] = 3, e[4] = 0, e[5] = 0, e[6] = 0xff, e[7] = 0; /* ExtINT -> LINT0 */
  e += 8, count++;
  e[0] = 4, e[1] = 1, e[4] = 0, e[5] = 0, e[6] = 0xff, e[7] = 1; /* NMI -> LINT1 */
  e += 8, count++;
  memcpy(cfg, "PCMP", 4);
  put16(cfg, 4, (uint16_t)(e - cfg));
  cfg[6] = 4;
  memcpy(cfg + 8, "HVRUN   ", 8);
  memcpy(cfg + 16, "MICROVM     ", 12);
  put16(cfg, 34, count);
  put32(cfg, 36, 0xfee00000);
  cfg[7] = checksum(cfg, (size_t)(e - cfg));
  memcpy(fp, "_MP_", 4);
  put32(fp, 4, (uint32_t)(MPTABLE_ADDR + 16));
  fp[8] = 1, fp[9] = 4;
  fp[10] = checksum(fp, 16);
  return 0;
}

/* Place the initrd as high as allowed, page aligned, above the kernel. */
static int load_initrd(struct vm *vm, const char *path, uint64_t kernel_end, uint64_t addr_max,
                       uint64_t *gpa, uint64_t *size, hv_error_t *err) {
  *gpa = *size = 0;
  if (!path)
    return 0;
  cleanup_free char *data = NULL;
  size_t len = 0;
  if (hv_read_file(path, &data, &len, err) < 0)
    return hv_error_wrap(err, "initrd");
  uint64_t top = vm_lowmem_size(vm);
  if (addr_max && addr_max + 1 < top)
    top = addr_max + 1;
  if (len > top || ((top - len) & ~0xfffULL) < kernel_end)
    return hv_error(err, 0, "initrd `%s` (%zu bytes) does not fit in guest memory below 0x%llx "
                    "above the kernel; give the VM more memory", path, len,
                    (unsigned long long)top);
  *gpa = (top - len) & ~0xfffULL;
  memcpy(vm_gpa(vm, *gpa, len), data, len);
  *size = len;
  return 0;
}

static int place_cmdline(struct vm *vm, uint64_t max_len, hv_error_t *err) {
  size_t n = strlen(vm->cmdline);
  if (n + 1 > max_len)
    return hv_error(err, 0, "kernel command line is %zu bytes; this kernel accepts at most %llu",
                    n, (unsigned long long)(max_len - 1));
  memcpy(vm_gpa(vm, CMDLINE_ADDR, n + 1), vm->cmdline, n + 1);
  return 0;
}

/* Zero page for the 64-bit boot protocol; `hdr` (may be NULL) is the
 * bzImage's setup header to copy. */
static uint8_t *boot_params_init(struct vm *vm, const uint8_t *image, size_t image_len) {
  uint8_t *bp = vm_gpa(vm, BOOT_PARAMS, 4096);
  memset(bp, 0, 4096);
  if (image) {
    size_t end = 0x202 + image[0x201];
    if (end > image_len)
      end = image_len;
    if (end > 4096)
      end = 4096;
    memcpy(bp + BP_SETUP_SECTS, image + BP_SETUP_SECTS, end - BP_SETUP_SECTS);
  } else {
    put16(bp, BP_BOOT_FLAG, 0xaa55);
    memcpy(bp + BP_HEADER, "HdrS", 4);
    put16(bp, BP_VERSION, 0x020f);
    put32(bp, BP_KERNEL_ALIGNMENT, 0x1000000);
    put32(bp, BP_CMDLINE_SIZE, CMDLINE_MAX - 1);
    put32(bp, BP_INITRD_ADDR_MAX, 0x7fffffff);
  }
  bp[BP_TYPE_OF_LOADER] = 0xff;
  if (vm->acpi) {
    uint64_t rsdp = VM_ACPI_BASE;
    memcpy(bp + BP_ACPI_RSDP_ADDR, &rsdp, 8);
  }
  bp[BP_LOADFLAGS] |= LOADED_HIGH;
  put32(bp, BP_CMD_LINE_PTR, (uint32_t)CMDLINE_ADDR);
  struct mem_range m[8];
  size_t n = memory_map(vm, m);
  for (size_t i = 0; i < n; i++) {
    uint8_t *e = bp + BP_E820_TABLE + i * 20;
    memcpy(e, &m[i].addr, 8);
    memcpy(e + 8, &m[i].size, 8);
    put32(e, 16, m[i].type);
  }
  bp[BP_E820_ENTRIES] = (uint8_t)n;
  return bp;
}

static void boot_params_initrd(uint8_t *bp, uint64_t gpa, uint64_t size) {
  put32(bp, BP_RAMDISK_IMAGE, (uint32_t)gpa);
  put32(bp, BP_RAMDISK_SIZE, (uint32_t)size);
  put32(bp, BP_EXT_RAMDISK_IMAGE, (uint32_t)(gpa >> 32));
  put32(bp, BP_EXT_RAMDISK_SIZE, (uint32_t)(size >> 32));
}

static int load_bzimage(struct vm *vm, const uint8_t *k, size_t len, const char *path,
                        const char *initrd, hv_error_t *err) {
  uint16_t version = get16(k, BP_VERSION);
  if (version < 0x020c || !(get16(k, BP_XLOADFLAGS) & XLF_KERNEL_64))
    return hv_error(err, 0, "kernel `%s`: bzImage boot protocol %u.%02u has no 64-bit entry "
                    "(need 2.12+ with XLF_KERNEL_64)", path, version >> 8, version & 0xff);
  size_t setup = ((size_t)(k[BP_SETUP_SECTS] ? k[BP_SETUP_SECTS] : 4) + 1) * 512;
  if (setup >= len)
    return hv_error(err, 0, "kernel `%s`: truncated bzImage", path);
  uint64_t init_size = get32(k, BP_INIT_SIZE);
  uint64_t need = init_size > len - setup ? init_size : len - setup;
  uint8_t *dst = vm_gpa(vm, BZIMAGE_LOAD, need);
  if (!dst)
    return hv_error(err, 0, "kernel `%s` needs %llu MiB of memory above 1 MiB; give the VM more",
                    path, (unsigned long long)(need >> 20) + 1);
  memcpy(dst, k + setup, len - setup);
  uint8_t *bp = boot_params_init(vm, k, len);
  uint64_t cmax = get32(k, BP_CMDLINE_SIZE) + 1;
  if (place_cmdline(vm, cmax < CMDLINE_MAX ? cmax : CMDLINE_MAX, err) < 0)
    return -1;
  uint64_t addr_max = get32(k, BP_INITRD_ADDR_MAX);
  if (get16(k, BP_XLOADFLAGS) & XLF_CAN_BE_LOADED_ABOVE_4G)
    addr_max = 0;
  uint64_t ig, is;
  /* The decompressor may move the kernel up to its preferred 16 MiB; keep
   * the initrd clear of that too. */
  uint64_t kernel_end = BZIMAGE_LOAD + need;
  if (0x1000000 + init_size > kernel_end)
    kernel_end = 0x1000000 + init_size;
  if (load_initrd(vm, initrd, kernel_end, addr_max, &ig, &is, err) < 0)
    return -1;
  boot_params_initrd(bp, ig, is);
  vm_build_identity_tables(vm);
  /* The 64-bit entry point is 0x200 past the protected-mode start. */
  return vm_vcpu_set_longmode(&vm->vcpus[0], BZIMAGE_LOAD + 0x200, 0, BOOT_PARAMS, err);
}

static int set_pvh_state(struct vm_vcpu *v, uint32_t entry, hv_error_t *err) {
  struct kvm_sregs s;
  if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
    return hv_error(err, errno, "KVM_GET_SREGS");
  /* PVH: 32-bit protected mode, paging off, flat CS/DS, ebx = start info. */
  s.cs = flat_segment(0x20, 0xb, false);
  s.ds = s.es = s.fs = s.gs = s.ss = flat_segment(0x18, 0x3, false);
  s.gdt.base = VM_BOOT_GDT;
  s.gdt.limit = 5 * 8 - 1;
  s.cr0 = 0x11; /* PE ET */
  s.cr4 = 0;
  s.cr3 = 0;
  s.efer = 0;
  if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
    return hv_error(err, errno, "KVM_SET_SREGS");
  struct kvm_regs r = {.rflags = 2, .rip = entry, .rbx = PVH_INFO};
  if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
    return hv_error(err, errno, "KVM_SET_REGS");
  return 0;
}

/* Find XEN_ELFNOTE_PHYS32_ENTRY in the PT_NOTE segments; 0 if absent. */
static uint64_t find_pvh_entry(const uint8_t *k, size_t len, const Elf64_Phdr *ph, int phnum) {
  for (int i = 0; i < phnum; i++) {
    if (ph[i].p_type != PT_NOTE || ph[i].p_offset > len || ph[i].p_filesz > len - ph[i].p_offset)
      continue;
    const uint8_t *p = k + ph[i].p_offset, *end = p + ph[i].p_filesz;
    while ((size_t)(end - p) >= sizeof(Elf64_Nhdr)) {
      Elf64_Nhdr nh;
      memcpy(&nh, p, sizeof nh);
      size_t nsz = (nh.n_namesz + 3) & ~3U, dsz = (nh.n_descsz + 3) & ~3U;
      const uint8_t *name = p + sizeof nh, *desc = name + nsz;
      if (nsz > (size_t)(end - name) || dsz > (size_t)(end - desc))
        break;
      if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
          memcmp(name, "Xen", 4) == 0 && nh.n_descsz >= 4) {
        uint64_t e = 0;
        memcpy(&e, desc, nh.n_descsz >= 8 ? 8 : 4);
        return nh.n_descsz >= 8 ? e : (uint32_t)e;
      }
      p = desc + dsz;
    }
  }
  return 0;
}

static int load_vmlinux(struct vm *vm, const uint8_t *k, size_t len, const char *path,
                        const char *initrd, hv_error_t *err) {
  Elf64_Ehdr eh;
  if (len < sizeof eh)
    return hv_error(err, 0, "kernel `%s`: truncated ELF", path);
  memcpy(&eh, k, sizeof eh);
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64)
    return hv_error(err, 0, "kernel `%s`: not an x86-64 ELF", path);
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > len ||
      (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff)
    return hv_error(err, 0, "kernel `%s`: bad ELF program headers", path);
  Elf64_Phdr *ph = hv_xmalloc0(sizeof(Elf64_Phdr) * (eh.e_phnum + 1));
  memcpy(ph, k + eh.e_phoff, sizeof(Elf64_Phdr) * eh.e_phnum);
  uint64_t kernel_end = 0;
  int rc = 0;
  for (int i = 0; i < eh.e_phnum && rc == 0; i++) {
    if (ph[i].p_type != PT_LOAD)
      continue;
    uint8_t *dst = vm_gpa(vm, ph[i].p_paddr, ph[i].p_memsz);
    if (ph[i].p_filesz > ph[i].p_memsz || ph[i].p_offset > len ||
        ph[i].p_filesz > len - ph[i].p_offset)
      rc = hv_error(err, 0, "kernel `%s`: ELF segment %d lies outside the file", path, i);
    else if (!dst || ph[i].p_paddr < HIMEM_START)
      rc = hv_error(err, 0, "kernel `%s`: segment %d at 0x%llx+0x%llx is outside guest RAM; "
                    "give the VM more memory", path, i, (unsigned long long)ph[i].p_paddr,
                    (unsigned long long)ph[i].p_memsz);
    else {
      memcpy(dst, k + ph[i].p_offset, ph[i].p_filesz);
      memset(dst + ph[i].p_filesz, 0, ph[i].p_memsz - ph[i].p_filesz);
      if (ph[i].p_paddr + ph[i].p_memsz > kernel_end)
        kernel_end = ph[i].p_paddr + ph[i].p_memsz;
    }
  }
  uint64_t pvh = rc == 0 ? find_pvh_entry(k, len, ph, eh.e_phnum) : 0;
  free(ph);
  if (rc < 0)
    return rc;
  if (place_cmdline(vm, CMDLINE_MAX, err) < 0)
    return -1;
  uint64_t ig, is;
  if (load_initrd(vm, initrd, kernel_end, 0, &ig, &is, err) < 0)
    return -1;
  vm_build_identity_tables(vm);
  if (pvh) {
    uint8_t *si = vm_gpa(vm, PVH_INFO, 0x1000);
    memset(si, 0, 0x1000);
    struct mem_range m[8];
    size_t n = memory_map(vm, m);
    put32(si, 0, HVM_START_MAGIC);
    put32(si, 4, 1); /* version 1: has the memory map */
    if (vm->acpi) {
      uint64_t rsdp = VM_ACPI_BASE;
      memcpy(si + 32, &rsdp, 8);
    }
    uint64_t v64 = CMDLINE_ADDR;
    memcpy(si + 24, &v64, 8);
    v64 = PVH_MEMMAP;
    memcpy(si + 40, &v64, 8);
    put32(si, 48, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
      uint8_t *e = si + 0x40 + i * 24;
      memcpy(e, &m[i].addr, 8);
      memcpy(e + 8, &m[i].size, 8);
      put32(e, 16, m[i].type);
    }
    if (is) {
      put32(si, 12, 1);
      v64 = PVH_MODLIST;
      memcpy(si + 16, &v64, 8);
      memcpy(si + 0x800, &ig, 8);
      memcpy(si + 0x808, &is, 8);
    }
    return set_pvh_state(&vm->vcpus[0], (uint32_t)pvh, err);
  }
  /* No PVH note: the 64-bit entry (startup_64 at the ELF entry, physical),
   * as for a bzImage's payload. */
  uint8_t *bp = boot_params_init(vm, NULL, 0);
  boot_params_initrd(bp, ig, is);
  return vm_vcpu_set_longmode(&vm->vcpus[0], eh.e_entry, 0, BOOT_PARAMS, err);
}

/* Under PVM the bzImage's real-mode-free 64-bit entry still runs the
 * decompressor, every instruction of it through KVM's emulator (over a
 * minute for a distribution kernel).  The host inflates the payload
 * instead, and the ELF inside boots like a vmlinux (PVH entry when it has
 * the note).  *elf stays NULL when the payload is not usable that way. */
#define BP_PAYLOAD_OFFSET 0x248
#define BP_PAYLOAD_LENGTH 0x24c
#define PAYLOAD_MAX (512u << 20)
static void bzimage_payload(const uint8_t *k, size_t len, const char *path, char **elf,
                            size_t *elf_len) {
  *elf = NULL;
  if (get16(k, BP_VERSION) < 0x0208)
    return;
  size_t setup = ((size_t)(k[BP_SETUP_SECTS] ? k[BP_SETUP_SECTS] : 4) + 1) * 512;
  size_t off = get32(k, BP_PAYLOAD_OFFSET), plen = get32(k, BP_PAYLOAD_LENGTH);
  if (setup > len || off > len - setup || plen > len - setup - off)
    return;
  hv_error_t err = NULL;
  if (vm_decompress(k + setup + off, plen, PAYLOAD_MAX, elf, elf_len, &err) < 0 ||
      *elf_len < SELFMAG || memcmp(*elf, ELFMAG, SELFMAG)) {
    hv_debug("kernel `%s`: payload not inflated on the host (%s); the guest decompresses it",
             path, err ? err->msg : "not an ELF");
    hv_error_release(&err);
    free(*elf);
    *elf = NULL;
  }
}

/* On PVM a kernel without hvrun's patch (vm/kernel/patches) cannot run
 * user space: SYSCALL lands at LSTAR still in ring 3, so its init dies at
 * the first system call, a minute or more into the boot; and its ring-0
 * code uses instructions PVM's emulator lacks.  Say so before booting.
 * The patch's boot parameter name is in every kernel that has it.
 * HVRUN_PVM_UNPATCHED_KERNEL=1 boots it anyway (to test how far the VMM
 * takes a stock kernel: ACPI tables, devices). */
static int check_pvm_patch(const uint8_t *elf, size_t len, const char *path, hv_error_t *err) {
  static const char marker[] = "hvrun.pvm";
  const char *force = getenv("HVRUN_PVM_UNPATCHED_KERNEL");
  if (memmem(elf, len, marker, sizeof marker - 1) || (force && !strcmp(force, "1")))
    return 0;
  return hv_error(err, 0, "kernel `%s` lacks hvrun's PVM patch: on this PVM host (kvm_pvm) its "
                  "user space cannot make system calls; use hvrun's kernel (make kernel), or "
                  "--engine qemu, or a VMX/SVM host", path);
}

int vm_load_linux(struct vm *vm, const char *kernel, const char *initrd, hv_error_t *err) {
  cleanup_free char *data = NULL;
  size_t len = 0;
  if (hv_read_file(kernel, &data, &len, err) < 0)
    return hv_error_wrap(err, "kernel");
  const uint8_t *k = (const uint8_t *)data;
  const char *name = vm->kernel_name ? vm->kernel_name : kernel;
  if (write_mptable(vm, err) < 0)
    return -1;
  /* The MP table stays for kernels without ACPI; one with ACPI prefers the
   * MADT, which describes the same CPUs and IOAPIC. */
  uint64_t rsdp;
  if (vm->acpi && vm_acpi_write(vm, &rsdp, err) < 0)
    return -1;
  bool pvm = vm_host_is_pvm();
  if (len >= SELFMAG && memcmp(k, ELFMAG, SELFMAG) == 0) {
    if (pvm && check_pvm_patch(k, len, name, err) < 0)
      return -1;
    return load_vmlinux(vm, k, len, name, initrd, err);
  }
  if (len > 0x300 && memcmp(k + BP_HEADER, "HdrS", 4) == 0) {
    cleanup_free char *elf = NULL;
    size_t elf_len = 0;
    if (pvm)
      bzimage_payload(k, len, name, &elf, &elf_len);
    if (elf && check_pvm_patch((const uint8_t *)elf, elf_len, name, err) < 0)
      return -1;
    if (elf)
      return load_vmlinux(vm, (const uint8_t *)elf, elf_len, name, initrd, err);
    return load_bzimage(vm, k, len, name, initrd, err);
  }
  return hv_error(err, 0, "kernel `%s`: neither an ELF vmlinux nor a bzImage", name);
}
