/* kvm.c: the VM object on top of /dev/kvm: guest RAM, in-kernel irqchip and
 * PIT, the PIO/MMIO region registry, eventfd bindings, device list, stop
 * requests and the guest command line.  vCPU threads live in vcpu.c. */
#include "vmm.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

/* Where KVM on VMX puts its real-mode TSS (3 pages) and EPT identity map
 * (1 page): just below the BIOS area at the top of 4 GiB, far above RAM. */
#define VM_TSS_ADDR 0xfffbd000ULL
#define VM_IDENTITY_MAP_ADDR 0xfffbc000ULL

int hv_kvm_check(hv_error_t *err) {
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return hv_error(err, errno, "/dev/kvm: No such file or directory (is KVM enabled? load "
                                  "kvm_intel/kvm_amd or run on a host with virtualization)");
    return hv_error(err, errno, "open /dev/kvm (is this user allowed to use KVM?)");
  }
  int ver = ioctl(fd, KVM_GET_API_VERSION, 0);
  int irqchip = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP);
  int user_mem = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY);
  int imm_exit = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT);
  close(fd);
  if (ver != KVM_API_VERSION)
    return hv_error(err, 0, "/dev/kvm: API version %d, expected %d", ver, KVM_API_VERSION);
  if (irqchip <= 0 || user_mem <= 0 || imm_exit <= 0)
    return hv_error(err, 0, "/dev/kvm: missing a required capability (%s)",
                    irqchip <= 0 ? "KVM_CAP_IRQCHIP"
                    : user_mem <= 0 ? "KVM_CAP_USER_MEMORY"
                                    : "KVM_CAP_IMMEDIATE_EXIT");
  return 0;
}

uint64_t vm_lowmem_size(const struct vm *vm) {
  return vm->mem_size < VM_LOWMEM_LIMIT ? vm->mem_size : VM_LOWMEM_LIMIT;
}

static int map_guest_ram(struct vm *vm, uint64_t bytes, bool hugepages, hv_error_t *err) {
  uint64_t align = hugepages ? (2ULL << 20) : 4096;
  bytes = (bytes + align - 1) & ~(align - 1);
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  if (hugepages)
    flags |= MAP_HUGETLB;
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) {
    if (hugepages)
      return hv_error(err, errno,
                      "guest memory: cannot map %llu MiB of 2 MiB hugepages (reserve them "
                      "first, e.g. echo %llu > /proc/sys/vm/nr_hugepages)",
                      (unsigned long long)(bytes >> 20), (unsigned long long)(bytes >> 21));
    return hv_error(err, errno, "guest memory: cannot map %llu MiB",
                    (unsigned long long)(bytes >> 20));
  }
  /* A hugetlb mapping can succeed and still fault later when the pool is
   * short; touch one byte per page now so that failure is a clear error
   * here instead of a SIGBUS inside KVM_RUN.  (MAP_POPULATE would also work
   * but silently gives up.) */
  if (hugepages && madvise(p, bytes, MADV_POPULATE_WRITE) < 0) {
    munmap(p, bytes); /* errno is EFAULT here, which would only confuse */
    return hv_error(err, ENOMEM,
                    "guest memory: not enough free 2 MiB hugepages for %llu MiB (see "
                    "HugePages_Free in /proc/meminfo; reserve with echo %llu > "
                    "/proc/sys/vm/nr_hugepages)",
                    (unsigned long long)(bytes >> 20), (unsigned long long)(bytes >> 21));
  }
  vm->mem = p;
  vm->mem_size = bytes;
  return 0;
}

static int set_slot(struct vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, uint8_t *host,
                    hv_error_t *err) {
  struct kvm_userspace_memory_region r = {
      .slot = slot, .guest_phys_addr = gpa, .memory_size = size,
      .userspace_addr = (uint64_t)(uintptr_t)host};
  if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
    return hv_error(err, errno, "KVM_SET_USER_MEMORY_REGION slot %u", slot);
  return 0;
}

static int create_vcpu(struct vm *vm, uint32_t id, hv_error_t *err) {
  struct vm_vcpu *v = &vm->vcpus[id];
  v->vm = vm;
  v->id = id;
  v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
  if (v->fd < 0)
    return hv_error(err, errno, "KVM_CREATE_VCPU %u", id);
  int sz = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (sz < (int)sizeof(struct kvm_run))
    return hv_error(err, errno, "KVM_GET_VCPU_MMAP_SIZE");
  void *run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
  if (run == MAP_FAILED)
    return hv_error(err, errno, "mmap vCPU %u run area", id);
  v->run = run;
  v->run_size = (size_t)sz;
  if (vm_setup_cpuid(vm, v, err) < 0 || vm_setup_msrs(vm, v, err) < 0)
    return hv_error_wrap(err, "vCPU %u", id);
  return 0;
}

int vm_create(struct vm *vm, uint64_t mem_bytes, uint32_t vcpus, bool hugepages, hv_error_t *err) {
  memset(vm, 0, sizeof(*vm));
  vm->kvm_fd = vm->vm_fd = -1;
  pthread_mutex_init(&vm->lock, NULL);
  vm->cmdline = hv_xstrdup("");
  if (vcpus < 1)
    return hv_error(err, 0, "vCPU count must be at least 1");
  if (mem_bytes < (16ULL << 20))
    return hv_error(err, 0, "guest memory %llu bytes is too small (minimum 16 MiB)",
                    (unsigned long long)mem_bytes);
  if (mem_bytes > (1ULL << 40))
    return hv_error(err, 0, "guest memory %llu bytes is too large (maximum 1 TiB)",
                    (unsigned long long)mem_bytes);
  if (hv_kvm_check(err) < 0)
    return -1;
  vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (vm->kvm_fd < 0)
    return hv_error(err, errno, "open /dev/kvm");
  int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
  if (max <= 0)
    max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
  if (max <= 0)
    max = 4;
  if (vcpus > (uint32_t)max)
    return hv_error(err, 0, "%u vCPUs requested but this KVM supports at most %d", vcpus, max);
  int rec = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
  if (rec > 0 && vcpus > (uint32_t)rec)
    hv_warn("%u vCPUs requested; this KVM recommends at most %d", vcpus, rec);

  vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
  if (vm->vm_fd < 0)
    return hv_error(err, errno, "KVM_CREATE_VM");
  if (fcntl(vm->vm_fd, F_SETFD, FD_CLOEXEC) < 0)
    return hv_error(err, errno, "fcntl vm fd");
  /* VMX needs these two for real mode / unrestricted-guest-less hosts; SVM
   * and PVM accept or ignore them. */
  if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VM_TSS_ADDR) < 0)
    hv_debug("KVM_SET_TSS_ADDR: %s (ignored)", strerror(errno));
  if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
    uint64_t a = VM_IDENTITY_MAP_ADDR;
    if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &a) < 0)
      hv_debug("KVM_SET_IDENTITY_MAP_ADDR: %s (ignored)", strerror(errno));
  }
  if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
    return hv_error(err, errno, "KVM_CREATE_IRQCHIP");
  struct kvm_pit_config pit = {.flags = 0};
  if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
    return hv_error(err, errno, "KVM_CREATE_PIT2");

  if (map_guest_ram(vm, mem_bytes, hugepages, err) < 0)
    return -1;
  uint64_t low = vm_lowmem_size(vm);
  if (set_slot(vm, 0, 0, low, vm->mem, err) < 0)
    return -1;
  if (vm->mem_size > low &&
      set_slot(vm, 1, VM_HIGHMEM_BASE, vm->mem_size - low, vm->mem + low, err) < 0)
    return -1;

  vm->vcpus = hv_xmalloc0(sizeof(struct vm_vcpu) * vcpus);
  for (uint32_t i = 0; i < vcpus; i++)
    vm->vcpus[i].fd = -1;
  vm->nr_vcpus = vcpus;
  for (uint32_t i = 0; i < vcpus; i++)
    if (create_vcpu(vm, i, err) < 0)
      return -1;
  return 0;
}

void vm_destroy(struct vm *vm) {
  /* vCPU threads must be gone before devices go; vm_run_vcpus joins them,
   * but a caller that failed half-way may not have run them at all. */
  for (size_t i = vm->n_devices; i-- > 0;)
    if (vm->devices[i].destroy)
      vm->devices[i].destroy(vm, vm->devices[i].opaque);
  free(vm->devices);
  vm->devices = NULL;
  vm->n_devices = 0;
  for (uint32_t i = 0; vm->vcpus && i < vm->nr_vcpus; i++) {
    struct vm_vcpu *v = &vm->vcpus[i];
    if (v->run)
      munmap(v->run, v->run_size);
    if (v->fd >= 0)
      close(v->fd);
  }
  free(vm->vcpus);
  vm->vcpus = NULL;
  if (vm->mem)
    munmap(vm->mem, vm->mem_size);
  vm->mem = NULL;
  if (vm->vm_fd >= 0)
    close(vm->vm_fd);
  if (vm->kvm_fd >= 0)
    close(vm->kvm_fd);
  vm->vm_fd = vm->kvm_fd = -1;
  free(vm->pio);
  free(vm->mmio);
  vm->pio = vm->mmio = NULL;
  vm->n_pio = vm->n_mmio = 0;
  free(vm->cmdline);
  vm->cmdline = NULL;
  free(vm->error);
  vm->error = NULL;
  pthread_mutex_destroy(&vm->lock);
}

static bool overlaps(const struct vm_io_region *r, size_t n, uint64_t base, uint64_t len) {
  for (size_t i = 0; i < n; i++)
    if (base < r[i].base + r[i].len && r[i].base < base + len)
      return true;
  return false;
}

static int add_region(struct vm_io_region **arr, size_t *n, uint64_t base, uint64_t len,
                      vm_io_fn fn, void *opaque) {
  if (len == 0 || base + len < base || overlaps(*arr, *n, base, len)) {
    errno = EEXIST;
    return -1;
  }
  struct vm_io_region *a = realloc(*arr, sizeof(**arr) * (*n + 1));
  if (!a)
    abort();
  a[*n] = (struct vm_io_region){.base = base, .len = len, .fn = fn, .opaque = opaque};
  *arr = a;
  (*n)++;
  return 0;
}

/* Regions are registered before the vCPUs start and never removed, so the
 * vCPU threads read the arrays without a lock. */
int vm_register_pio(struct vm *vm, uint16_t base, uint16_t len, vm_io_fn fn, void *opaque) {
  if ((uint32_t)base + len > 0x10000) {
    errno = ERANGE;
    return -1;
  }
  return add_region(&vm->pio, &vm->n_pio, base, len, fn, opaque);
}

int vm_register_mmio(struct vm *vm, uint64_t base, uint64_t len, vm_io_fn fn, void *opaque) {
  return add_region(&vm->mmio, &vm->n_mmio, base, len, fn, opaque);
}

void *vm_gpa(struct vm *vm, uint64_t gpa, uint64_t len) {
  uint64_t low = vm_lowmem_size(vm);
  if (gpa + len < gpa)
    return NULL;
  if (gpa + len <= low)
    return vm->mem + gpa;
  if (gpa >= VM_HIGHMEM_BASE && gpa - VM_HIGHMEM_BASE + len <= vm->mem_size - low)
    return vm->mem + low + (gpa - VM_HIGHMEM_BASE);
  return NULL;
}

int vm_irq_line(struct vm *vm, uint32_t gsi, int level) {
  struct kvm_irq_level l = {.irq = gsi, .level = (uint32_t)level};
  return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
}

int vm_irqfd(struct vm *vm, uint32_t gsi, int *efd, hv_error_t *err) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0)
    return hv_error(err, errno, "eventfd for irq %u", gsi);
  struct kvm_irqfd r = {.fd = (uint32_t)fd, .gsi = gsi};
  if (ioctl(vm->vm_fd, KVM_IRQFD, &r) < 0) {
    int e = errno;
    close(fd);
    return hv_error(err, e, "KVM_IRQFD gsi %u", gsi);
  }
  *efd = fd;
  return 0;
}

int vm_ioeventfd(struct vm *vm, uint64_t mmio_addr, uint32_t len, bool match, uint64_t datamatch,
                 int *efd, hv_error_t *err) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0)
    return hv_error(err, errno, "eventfd for ioeventfd 0x%llx", (unsigned long long)mmio_addr);
  struct kvm_ioeventfd r = {.datamatch = datamatch, .addr = mmio_addr, .len = len, .fd = fd,
                            .flags = match ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0};
  if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &r) < 0) {
    int e = errno;
    close(fd);
    return hv_error(err, e, "KVM_IOEVENTFD 0x%llx", (unsigned long long)mmio_addr);
  }
  *efd = fd;
  return 0;
}

int vm_add_device(struct vm *vm, const char *name, void (*destroy)(struct vm *vm, void *opaque),
                  void *opaque) {
  struct vm_device *d = realloc(vm->devices, sizeof(*d) * (vm->n_devices + 1));
  if (!d)
    abort();
  d[vm->n_devices++] = (struct vm_device){.name = name, .destroy = destroy, .opaque = opaque};
  vm->devices = d;
  return 0;
}

void vm_request_stop(struct vm *vm, enum hv_vm_exit reason, int status, const char *error) {
  pthread_mutex_lock(&vm->lock);
  if (!vm->stopping) {
    vm->exit_reason = reason;
    vm->exit_status = status;
    vm->error = error ? hv_xstrdup(error) : NULL;
    __atomic_store_n(&vm->stopping, true, __ATOMIC_SEQ_CST);
  }
  /* Kick every vCPU: immediate_exit covers a thread that is about to enter
   * KVM_RUN, the signal one that is inside it. */
  for (uint32_t i = 0; vm->vcpus && i < vm->nr_vcpus; i++) {
    struct vm_vcpu *v = &vm->vcpus[i];
    if (v->run)
      __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (v->thread_started && !pthread_equal(v->thread, pthread_self()))
      pthread_kill(v->thread, VM_KICK_SIGNAL);
  }
  pthread_mutex_unlock(&vm->lock);
}

void vm_cmdline_append(struct vm *vm, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *add = NULL;
  if (vasprintf(&add, fmt, ap) < 0)
    abort();
  va_end(ap);
  char *n = hv_xasprintf("%s%s%s", vm->cmdline, vm->cmdline[0] ? " " : "", add);
  free(add);
  free(vm->cmdline);
  vm->cmdline = n;
}

void vm_mmio_slot(uint32_t slot, uint64_t *base, uint32_t *gsi) {
  *base = VM_MMIO_BASE + slot * VM_MMIO_SIZE;
  /* IRQs 5..23 on the IOAPIC; skip nothing below 16 that our devices use
   * (serial is 4).  Beyond 19 slots IRQs are shared, which virtio allows. */
  *gsi = VM_MMIO_IRQ_BASE + slot % (24 - VM_MMIO_IRQ_BASE);
}

void vm_alloc_mmio_slot(struct vm *vm, uint64_t *base, uint32_t *gsi) {
  vm_mmio_slot(vm->next_mmio_slot++, base, gsi);
}
