/* msr.c: MSR values a freshly reset x86 CPU has after firmware, which a
 * Linux loaded directly (no BIOS) expects: fast strings on, MTRRs enabled
 * with write-back default (otherwise Linux maps all RAM uncached), and the
 * syscall/sysenter MSRs cleared. */
#include "vmm.h"
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_IA32_TSC 0x10

int vm_setup_msrs(struct vm *vm, struct vm_vcpu *v, hv_error_t *err) {
  (void)vm;
  (void)err;
  static const struct { uint32_t index; uint64_t value; } init[] = {
      {MSR_IA32_SYSENTER_CS, 0}, {MSR_IA32_SYSENTER_ESP, 0}, {MSR_IA32_SYSENTER_EIP, 0},
      {MSR_STAR, 0},             {MSR_LSTAR, 0},             {MSR_CSTAR, 0},
      {MSR_SYSCALL_MASK, 0},     {MSR_KERNEL_GS_BASE, 0},    {MSR_IA32_TSC, 0},
      {MSR_IA32_MISC_ENABLE, 1 /* fast strings */},
      {MSR_MTRR_DEF_TYPE, (1 << 11) | 6 /* enabled, write-back */},
  };
  size_t n = sizeof init / sizeof init[0];
  struct {
    struct kvm_msrs hdr;
    struct kvm_msr_entry e[sizeof init / sizeof init[0]];
  } m;
  /* KVM_SET_MSRS stops at the first MSR it refuses; a host that lacks one
   * of these (PVM may) just skips it: none is essential. */
  size_t i = 0;
  while (i < n) {
    memset(&m, 0, sizeof m);
    size_t k = 0;
    for (size_t j = i; j < n; j++, k++) {
      m.e[k].index = init[j].index;
      m.e[k].data = init[j].value;
    }
    m.hdr.nmsrs = (uint32_t)k;
    int done = ioctl(v->fd, KVM_SET_MSRS, &m);
    if (done < 0)
      done = 0;
    if ((size_t)done < k)
      hv_debug("vCPU %u: MSR 0x%x not settable (skipped)", v->id, init[i + (size_t)done].index);
    i += (size_t)done + 1;
  }
  return 0;
}
