/* hypercall.c: the guest-to-VMM report port HV_HCALL_PORT (see vmm.h).
 * The guest init writes its workload's exit status (or signal, or a panic
 * flag) there; the first report ends the VM. */
#include "vmm.h"
#include <errno.h>
#include <string.h>

static void hcall_io(struct vm *vm, void *opaque, uint64_t off, uint8_t *data, uint32_t len,
                     bool is_write) {
  (void)opaque;
  (void)off;
  if (!is_write) {
    memset(data, 0xff, len);
    return;
  }
  uint32_t v = 0;
  memcpy(&v, data, len > 4 ? 4 : len);
  if (v & HV_HCALL_PANIC)
    vm_request_stop(vm, HV_VM_EXIT_PANIC, (int)(v & 0xff), NULL);
  else if (v & HV_HCALL_SIGNALED)
    vm_request_stop(vm, HV_VM_EXIT_STATUS, 128 + (int)(v & 0xff), NULL);
  else
    vm_request_stop(vm, HV_VM_EXIT_STATUS, (int)(v & 0xff), NULL);
}

int vm_hypercall_create(struct vm *vm, hv_error_t *err) {
  if (vm_register_pio(vm, HV_HCALL_PORT, 4, hcall_io, NULL) < 0)
    return hv_error(err, errno, "register hypercall port 0x%x", HV_HCALL_PORT);
  return 0;
}
