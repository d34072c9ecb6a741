/* i8042.c: just enough of the PC keyboard controller (ports 0x60/0x64)
 * for a guest reboot: command 0xfe on port 0x64 pulses the CPU reset line,
 * which ends the VM as HV_VM_EXIT_RESET.  The reset control register at
 * 0xcf9 (reboot=pci) does the same.  There is no keyboard behind it. */
#include "vmm.h"
#include <errno.h>
#include <string.h>

#define I8042_DATA 0x60
#define I8042_CMD 0x64
#define I8042_CMD_RESET 0xfe
#define RST_CNT 0xcf9

static void i8042_io(struct vm *vm, void *opaque, uint64_t off, uint8_t *data, uint32_t len,
                     bool is_write) {
  (void)opaque;
  if (!is_write) {
    /* Status 0: output buffer empty, input buffer empty (ready for a
     * command).  Data reads return 0. */
    memset(data, 0, len);
    return;
  }
  if (off == I8042_CMD - I8042_DATA && data[0] == I8042_CMD_RESET)
    vm_request_stop(vm, HV_VM_EXIT_RESET, 0, NULL);
}

static void rst_cnt_io(struct vm *vm, void *opaque, uint64_t off, uint8_t *data, uint32_t len,
                       bool is_write) {
  (void)opaque;
  (void)off;
  if (!is_write) {
    memset(data, 0, len);
    return;
  }
  if (data[0] & 0x04) /* RST_CPU */
    vm_request_stop(vm, HV_VM_EXIT_RESET, 0, NULL);
}

int vm_i8042_create(struct vm *vm, hv_error_t *err) {
  /* 0x60..0x64: 0x61 is the PIT's speaker port, owned by the in-kernel PIT,
   * and in-kernel devices are served before user space ever sees a port. */
  if (vm_register_pio(vm, I8042_DATA, 5, i8042_io, NULL) < 0)
    return hv_error(err, errno, "register i8042 ports");
  if (vm_register_pio(vm, RST_CNT, 1, rst_cnt_io, NULL) < 0)
    return hv_error(err, errno, "register reset control port");
  return 0;
}
