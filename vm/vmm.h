/* vmm.h: internal contract inside vm/ between the VMM core (kvm.c, vcpu.c,
 * boot.c, serial.c, i8042.c, hypercall.c) and the virtio devices (virtio_*.c).
 * Not included outside vm/ (and vm/'s own unit tests). */
#ifndef HVRUN_VMM_H
#define HVRUN_VMM_H
#include "vm.h"
#include <pthread.h>

/* Guest physical layout (x86-64):
 *   0x00000000-0x0009ffff  low RAM (boot_params at 0x7000, cmdline at 0x20000,
 *                          page tables / GDT for direct entry at 0x9000..)
 *   0x000a0000-0x000fffff  hole
 *   0x00100000-...         RAM (kernel at 1 MiB or its ELF paddr)
 *   0xd0000000-0xd0ffffff  virtio-mmio windows, 0x1000 each, IRQs 5..
 *   0xfec00000 IOAPIC, 0xfee00000 LAPIC (in-kernel irqchip)
 */
#define VM_MMIO_BASE 0xd0000000ULL
#define VM_MMIO_SIZE 0x1000ULL
#define VM_MMIO_IRQ_BASE 5

/* Hypercall port: a 32-bit OUT to HV_HCALL_PORT reports to the VMM.
 * Compatible with QEMU's isa-debug-exit at the same port (iobase=0xf4).
 *   value & 0xff          exit code (or signal number with HV_HCALL_SIGNALED)
 *   HV_HCALL_SIGNALED     the workload was killed by signal (value & 0xff)
 *   HV_HCALL_PANIC        the guest panicked / init failed  */
#define HV_HCALL_PORT 0xf4
#define HV_HCALL_SIGNALED 0x100
#define HV_HCALL_PANIC 0x200

struct vm;
/* Handler for a PIO or MMIO access; addr is the offset inside the region.
 * For reads, fill data[0..len). */
typedef void (*vm_io_fn)(struct vm *vm, void *opaque, uint64_t offset, uint8_t *data,
                         uint32_t len, bool is_write);

struct vm_io_region { uint64_t base, len; vm_io_fn fn; void *opaque; };

struct vm {
  int kvm_fd, vm_fd;
  uint8_t *mem;                 /* host mapping of guest RAM */
  uint64_t mem_size;
  uint32_t nr_vcpus;
  struct vm_vcpu *vcpus;
  struct vm_io_region *pio, *mmio; size_t n_pio, n_mmio;
  char *cmdline;                /* grows as devices append */
  uint32_t next_mmio_slot;      /* virtio-mmio slots handed out */
  bool acpi;                    /* devices go in ACPI tables, not the cmdline */
  const char *kernel_name;      /* the kernel as errors name it, or NULL */
  /* stop request: set once by whoever ends the VM (hypercall, reset,
   * error); vCPU threads are kicked out of KVM_RUN. */
  pthread_mutex_t lock;
  bool stopping;
  enum hv_vm_exit exit_reason;
  int exit_status;
  char *error;                  /* message when exit_reason == HV_VM_EXIT_ERROR */
  struct vm_device *devices; size_t n_devices;
};

/* Devices register a destructor; vm_destroy stops and frees them in reverse
 * order (after the vCPUs have stopped). */
struct vm_device { const char *name; void (*destroy)(struct vm *vm, void *opaque); void *opaque; };
int vm_add_device(struct vm *vm, const char *name, void (*destroy)(struct vm *vm, void *opaque),
                  void *opaque);

/* Device constructors (virtio_*.c).  Each takes a virtio-mmio slot, registers
 * its MMIO window, binds ioeventfd/irqfd, appends
 * "virtio_mmio.device=4K@0x...:IRQ" to the command line and registers itself
 * with vm_add_device. */
int virtio_blk_create(struct vm *vm, const char *path, bool readonly, hv_error_t *err);
/* One port: guest writes go to out_fd, bytes read from in_fd (may be -1)
 * go to the guest. */
int virtio_console_create(struct vm *vm, int in_fd, int out_fd, hv_error_t *err);

int vm_create(struct vm *vm, uint64_t mem_bytes, uint32_t vcpus, bool hugepages, hv_error_t *err);
void vm_destroy(struct vm *vm);
int vm_register_pio(struct vm *vm, uint16_t base, uint16_t len, vm_io_fn fn, void *opaque);
int vm_register_mmio(struct vm *vm, uint64_t base, uint64_t len, vm_io_fn fn, void *opaque);
/* Bounds-checked translation; NULL when [gpa, gpa+len) is not all RAM
 * (or overflows).  Every device access to guest memory goes through it. */
void *vm_gpa(struct vm *vm, uint64_t gpa, uint64_t len);
int vm_irq_line(struct vm *vm, uint32_t gsi, int level);
/* KVM_IRQFD / KVM_IOEVENTFD wrappers: create an eventfd and bind it. */
int vm_irqfd(struct vm *vm, uint32_t gsi, int *efd, hv_error_t *err);
int vm_ioeventfd(struct vm *vm, uint64_t mmio_addr, uint32_t len, bool match, uint64_t datamatch,
                 int *efd, hv_error_t *err);
/* Ask every vCPU to stop; first caller's reason wins. */
void vm_request_stop(struct vm *vm, enum hv_vm_exit reason, int status, const char *error);
void vm_cmdline_append(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Next free virtio-mmio window: base address and GSI. */
void vm_alloc_mmio_slot(struct vm *vm, uint64_t *base, uint32_t *gsi);
/* Base address and GSI of virtio-mmio slot `slot` (the same for every VM). */
void vm_mmio_slot(uint32_t slot, uint64_t *base, uint32_t *gsi);

/* ACPI tables (acpi.c), for guest kernels that find virtio-mmio devices only
 * through ACPI (stock distribution kernels: virtio_mmio as a module, no
 * VIRTIO_MMIO_CMDLINE_DEVICES).  RSDP at VM_ACPI_BASE, the other tables
 * after it, all below VM_ACPI_END (the e820 map marks the range reserved).
 * Tables: RSDP (rev 2) -> XSDT -> FADT (rev 6, HW-reduced ACPI) -> DSDT,
 * and MADT.  The DSDT holds one LNRO0005 device per virtio-mmio slot
 * 0..n_virtio-1 (Memory32Fixed window + edge/active-high interrupt, from
 * vm_mmio_slot); the MADT one enabled local APIC per vCPU (APIC id = vCPU
 * index) and the IOAPIC (id = nr_vcpus, 0xfec00000, GSI base 0), as the MP
 * table does. */
#define VM_ACPI_BASE 0xe0000ULL
#define VM_ACPI_END 0x100000ULL
/* Build the tables into `buf`, which the guest sees at `base_gpa`; room is
 * the bytes available.  Pure (no KVM), for tests.  Returns the bytes used,
 * or <0 with err filled. */
long vm_acpi_build(uint8_t *buf, size_t room, uint64_t base_gpa, uint32_t nr_vcpus,
                   uint32_t n_virtio, hv_error_t *err);
/* Write the tables for this VM's vCPUs and virtio-mmio slots into guest
 * memory at VM_ACPI_BASE; *rsdp gets the RSDP's guest address. */
int vm_acpi_write(struct vm *vm, uint64_t *rsdp, hv_error_t *err);

/* decompress.c: inflate `in` (any format libarchive detects: lz4 incl. the
 * kernel's legacy frames, xz, zstd, gzip, bzip2, lzma) into a malloc'd
 * *out of at most `max` bytes.  Fails on data that is not compressed. */
int vm_decompress(const void *in, size_t in_len, size_t max, char **out, size_t *out_len,
                  hv_error_t *err);

/* Run all vCPUs until a stop; returns when every vCPU thread has ended. */
int vm_run_vcpus(struct vm *vm, hv_error_t *err);

/* Test harness for tiny ring-0 guests: copy a flat binary to gpa 0x100000,
 * build identity-mapped long-mode page tables for the first 1 GiB and a GDT,
 * and point vCPU 0 at `entry` in 64-bit ring 0 (rsp = 0x80000).
 * Guests are tests/unit/guests/NAME.S, assembled to build/guests/NAME.bin. */
int vm_setup_test_longmode(struct vm *vm, const void *bin, size_t len, uint64_t entry,
                           hv_error_t *err);

/* ---- VMM core internals (kvm.c, vcpu.c, cpuid.c, msr.c, boot.c, serial.c,
 * i8042.c, hypercall.c).  Added by the core; nothing above changed. ---- */
#include <linux/kvm.h>
#include <signal.h>

/* Signal used to kick a vCPU thread out of KVM_RUN (together with
 * kvm_run.immediate_exit).  The VM backend process must not use it. */
#define VM_KICK_SIGNAL (SIGRTMIN + 4)

/* Exit reasons counted per vCPU (KVM_EXIT_* numbers are < 64). */
#define VM_EXIT_REASONS 64
struct vm_vcpu {
  struct vm *vm;
  uint32_t id;
  int fd;
  struct kvm_run *run;          /* mmap of the vCPU fd */
  size_t run_size;
  pthread_t thread;
  bool thread_started;
  uint64_t exits[VM_EXIT_REASONS];
  uint64_t pio_unhandled, mmio_unhandled;
  struct vm_profile *profile;   /* RIP samples, HVRUN_VM_PROFILE=1 only */
  bool pvm;                     /* host is PVM: work around its emulator */
  uint64_t int3_reflected;      /* int3s the VMM executed for PVM */
};

/* Guest RAM is split around the 32-bit MMIO hole: [0, low) at gpa 0 and the
 * rest at 4 GiB.  Host side it is one mapping, vm->mem. */
#define VM_LOWMEM_LIMIT 0xc0000000ULL
#define VM_HIGHMEM_BASE 0x100000000ULL
uint64_t vm_lowmem_size(const struct vm *vm);

/* Debug: print exit histograms and KVM statistics at the end of a run when
 * the environment has HVRUN_VM_DEBUG=1 (or vm_set_debug was called). */
void vm_set_debug(bool on);
bool vm_debug_enabled(void);
void vm_print_exit_stats(struct vm *vm, FILE *out);
/* Profiling: with HVRUN_VM_PROFILE=1 a sampler thread kicks each vCPU out
 * of KVM_RUN every millisecond and its guest RIP is counted; the top RIPs
 * are printed at the end (map them with `nm vmlinux`). */
bool vm_profile_enabled(void);
void vm_profile_sample(struct vm_vcpu *v);
int vm_profile_start(struct vm *vm, pthread_t *thread);
void vm_profile_finish(struct vm *vm, pthread_t thread, FILE *out);

/* Is this KVM the paging-based nested one (PVM)?  See cpuid.c. */
bool vm_host_is_pvm(void);
/* Guest kernel arguments hv_vm_run appends on PVM (CPUID cannot hide
 * everything there). */
const char *vm_pvm_kernel_args(void);
int vm_setup_cpuid(struct vm *vm, struct vm_vcpu *v, hv_error_t *err);
int vm_setup_msrs(struct vm *vm, struct vm_vcpu *v, hv_error_t *err);

/* Devices of the core. */
int vm_serial_create(struct vm *vm, int out_fd, hv_error_t *err);
int vm_i8042_create(struct vm *vm, hv_error_t *err);
int vm_hypercall_create(struct vm *vm, hv_error_t *err);

/* Linux loader (boot.c): detects vmlinux (PVH note, else 64-bit entry) or
 * bzImage and sets up vCPU 0.  Call after devices (the command line is
 * final then). */
int vm_load_linux(struct vm *vm, const char *kernel, const char *initrd, hv_error_t *err);

/* Shared by boot.c and test_harness.c: identity page tables for the first
 * 4 GiB (2 MiB pages) at 0x9000..0xefff, a GDT at 0x8000 with 64-bit code
 * at selectors 0x08 and 0x10 and data at 0x18, and a vCPU in long mode. */
#define VM_BOOT_GDT 0x8000ULL
#define VM_BOOT_PML4 0x9000ULL
void vm_build_identity_tables(struct vm *vm);
int vm_vcpu_set_longmode(struct vm_vcpu *v, uint64_t rip, uint64_t rsp, uint64_t rsi,
                         hv_error_t *err);
#endif
