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
