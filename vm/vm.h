/* vm.h: the VM backend's public face.  Its lifecycle ops are exported as
 * hv_backend_vm (runtime.h); hv_vm_run boots one microVM and waits for it. */
#ifndef HVRUN_VM_H
#define HVRUN_VM_H
#include "../runtime/runtime.h"

struct hv_vm_config {
  const char *kernel;           /* vmlinux ELF (PVH/64-bit entry) or bzImage */
  const char *kernel_name;      /* how errors name it (its host path when
                                   `kernel` is the jail's copy); NULL: kernel */
  const char *initrd;           /* optional */
  const char *cmdline;          /* base command line; devices append to it */
  uint32_t vcpus;               /* >= 1 */
  uint64_t mem_bytes;           /* guest RAM */
  bool hugepages;               /* back RAM with MAP_HUGETLB */
  const char *root_disk;        /* virtio-blk #0, read-only (NULL = none) */
  const char *scratch_disk;     /* virtio-blk #1, writable (NULL = none) */
  int console_in, console_out;  /* workload stdio (virtio-console port), -1 = none */
  int control_fd;               /* host end of the agent channel (second
                                   virtio-console device), -1 = none */
  int kernel_log_fd;            /* 8250 output, -1 = discard */
  const char *engine;           /* NULL/"hvrun" or "qemu" */
  bool acpi;                    /* declare the virtio-mmio devices through ACPI
                                   tables instead of the command line (a
                                   distribution kernel: vm/kmod.c) */
  /* QEMU engine: called in the parent once QEMU runs (the jailed
   * supervisor loads its own seccomp filter there); <0 stops the VM. */
  int (*after_spawn)(pid_t child, hv_error_t *err);
};

/* Exit reasons reported through the hypercall port. */
enum hv_vm_exit { HV_VM_EXIT_STATUS, HV_VM_EXIT_PANIC, HV_VM_EXIT_RESET, HV_VM_EXIT_ERROR };

/* Boot, run until the guest reports or resets, tear down.  *exit_status is
 * the workload's status as a shell would print it (code or 128+signal). */
int hv_vm_run(const struct hv_vm_config *c, int *exit_status, hv_error_t *err);
/* Can /dev/kvm be used?  Fills err with a clear reason if not. */
int hv_kvm_check(hv_error_t *err);
#endif
