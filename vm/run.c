/* run.c: hv_vm_run, one microVM from start to end: create the VM, attach
 * the core devices and the virtio devices, load Linux, run the vCPUs and
 * turn the way the VM ended into an exit status or an error. */
#include "vmm.h"
#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <time.h>

static int add_devices(struct vm *vm, const struct hv_vm_config *c, hv_error_t *err) {
  if (vm_serial_create(vm, c->kernel_log_fd, err) < 0 || vm_i8042_create(vm, err) < 0 ||
      vm_hypercall_create(vm, err) < 0)
    return -1;
  /* Order fixes the guest's device names: vda root, vdb scratch, hvc0
   * console, hvc1 control channel. */
  if (c->root_disk && virtio_blk_create(vm, c->root_disk, true, err) < 0)
    return hv_error_wrap(err, "root disk");
  if (c->scratch_disk && virtio_blk_create(vm, c->scratch_disk, false, err) < 0)
    return hv_error_wrap(err, "scratch disk");
  if ((c->console_in >= 0 || c->console_out >= 0 || c->control_fd >= 0) &&
      virtio_console_create(vm, c->console_in, c->console_out, err) < 0)
    return hv_error_wrap(err, "console");
  if (c->control_fd >= 0 && virtio_console_create(vm, c->control_fd, c->control_fd, err) < 0)
    return hv_error_wrap(err, "control channel");
  return 0;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int hv_vm_run(const struct hv_vm_config *c, int *exit_status, hv_error_t *err) {
  *exit_status = -1;
  if (!c->kernel)
    return hv_error(err, 0, "VM: no kernel given");
  if (c->engine && *c->engine && strcmp(c->engine, "hvrun") != 0)
    return hv_error(err, 0, "VM engine `%s` is not handled by the built-in VMM", c->engine);
  struct vm vm;
  double t0 = now_s();
  int rc = vm_create(&vm, c->mem_bytes, c->vcpus, c->hugepages, err);
  if (rc == 0) {
    vm.acpi = c->acpi;
    vm.kernel_name = c->kernel_name;
    vm_cmdline_append(&vm, "%s", c->cmdline ? c->cmdline : "");
    if (vm_host_is_pvm())
      vm_cmdline_append(&vm, "%s", vm_pvm_kernel_args());
    /* Debugging aid: extra guest kernel arguments, last so they win (e.g.
     * "loglevel=7 printk.time=1 initcall_debug" for a boot timeline). */
    const char *extra = getenv("HVRUN_VM_CMDLINE_APPEND");
    if (extra && *extra)
      vm_cmdline_append(&vm, "%s", extra);
    rc = add_devices(&vm, c, err);
  }
  if (rc == 0)
    rc = vm_load_linux(&vm, c->kernel, c->initrd, err);
  /* The kernel and initrd were read through the heap (tens of MiB, and
   * glibc's dynamic mmap threshold keeps such blocks on the heap once one
   * was freed): give the pages back before the VM runs, or they stay in
   * the VMM's RSS (about 2 MiB of it, measured) for the VM's lifetime. */
  malloc_trim(0);
  if (rc == 0) {
    hv_debug("VM: %u vCPUs, %llu MiB, cmdline: %s", vm.nr_vcpus,
             (unsigned long long)(vm.mem_size >> 20), vm.cmdline);
    rc = vm_run_vcpus(&vm, err);
  }
  if (rc == 0) {
    hv_debug("VM: ran %.3f s", now_s() - t0);
    switch (vm.exit_reason) {
    case HV_VM_EXIT_STATUS:
      *exit_status = vm.exit_status;
      break;
    case HV_VM_EXIT_PANIC:
      rc = hv_error(err, 0, "the VM's guest kernel or init panicked (see the kernel log)");
      break;
    case HV_VM_EXIT_RESET:
      rc = hv_error(err, 0, "the VM rebooted before its workload reported an exit status");
      break;
    case HV_VM_EXIT_ERROR:
      rc = hv_error(err, 0, "VM stopped: %s", vm.error ? vm.error : "unknown error");
      break;
    }
  }
  vm_destroy(&vm);
  return rc;
}
