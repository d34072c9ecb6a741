/* test_harness.c: set up a VM to run a tiny flat 64-bit ring-0 test guest
 * (tests/unit/guests/NAME.S).  Every vCPU starts at `entry` in long mode with
 * the identity map of boot.c; vCPU n gets rsp = 0x80000 - n * 0x4000 and
 * the APs are made runnable at once (no INIT/SIPI), so SMP tests need no
 * startup code. */
#include "vmm.h"
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#define TEST_LOAD_ADDR 0x100000ULL
#define TEST_STACK_TOP 0x80000ULL
#define TEST_STACK_PER_CPU 0x4000ULL

int vm_setup_test_longmode(struct vm *vm, const void *bin, size_t len, uint64_t entry,
                           hv_error_t *err) {
  void *dst = vm_gpa(vm, TEST_LOAD_ADDR, len);
  if (!dst)
    return hv_error(err, 0, "test guest of %zu bytes does not fit in guest RAM", len);
  memcpy(dst, bin, len);
  vm_build_identity_tables(vm);
  for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
    struct vm_vcpu *v = &vm->vcpus[i];
    if (vm_vcpu_set_longmode(v, entry, TEST_STACK_TOP - i * TEST_STACK_PER_CPU, 0, err) < 0)
      return -1;
    struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};
    if (i > 0 && ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
      return hv_error(err, errno, "KVM_SET_MP_STATE vCPU %u", i);
  }
  return 0;
}
