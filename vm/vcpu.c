/* vcpu.c: one thread per vCPU running KVM_RUN, dispatching port and MMIO
 * exits to the registered handlers, and turning every fatal exit (triple
 * fault, internal error, failed entry) into a clear error and a stopped VM.
 *
 * Syscalls in the loop are deliberately few (ioctl, tgkill via the stop
 * path, write from devices) so a seccomp allow-list on these threads stays
 * short. */
#include "vmm.h"
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

static bool debug_flag;
void vm_set_debug(bool on) { debug_flag = on; }
bool vm_debug_enabled(void) {
  const char *e = getenv("HVRUN_VM_DEBUG");
  return debug_flag || (e && *e && strcmp(e, "0") != 0);
}

/* Unhandled accesses are logged (the first few) and otherwise ignored:
 * Linux probes absent legacy hardware (other UARTs, RTC, PCI config ports),
 * and a read from nothing returns all ones as on a real bus.  They never
 * reach memory outside guest RAM. */
#define VM_UNHANDLED_LOG_MAX 8

static const struct vm_io_region *find_region(const struct vm_io_region *r, size_t n,
                                              uint64_t addr, uint32_t len) {
  for (size_t i = 0; i < n; i++)
    if (addr >= r[i].base && addr - r[i].base + len <= r[i].len)
      return &r[i];
  return NULL;
}

static void handle_pio(struct vm_vcpu *v) {
  struct kvm_run *run = v->run;
  struct vm *vm = v->vm;
  uint32_t size = run->io.size, count = run->io.count;
  bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
  /* data_offset comes from KVM, but check it stays inside the run area. */
  if (size == 0 || size > 4 || run->io.data_offset >= v->run_size ||
      (uint64_t)size * count > v->run_size - run->io.data_offset)
    return;
  uint8_t *data = (uint8_t *)run + run->io.data_offset;
  const struct vm_io_region *r = find_region(vm->pio, vm->n_pio, run->io.port, size);
  for (uint32_t i = 0; i < count; i++, data += size) {
    if (r) {
      r->fn(vm, r->opaque, run->io.port - r->base, data, size, is_write);
    } else {
      if (!is_write)
        memset(data, 0xff, size);
      if (v->pio_unhandled++ < VM_UNHANDLED_LOG_MAX)
        hv_debug("vCPU %u: unhandled %s of %u bytes at port 0x%x (ignored)", v->id,
                 is_write ? "write" : "read", size, run->io.port);
    }
  }
}

static void handle_mmio(struct vm_vcpu *v) {
  struct kvm_run *run = v->run;
  struct vm *vm = v->vm;
  uint32_t len = run->mmio.len;
  if (len == 0 || len > sizeof(run->mmio.data))
    return;
  const struct vm_io_region *r = find_region(vm->mmio, vm->n_mmio, run->mmio.phys_addr, len);
  if (r) {
    r->fn(vm, r->opaque, run->mmio.phys_addr - r->base, run->mmio.data, len,
          run->mmio.is_write);
    return;
  }
  if (!run->mmio.is_write)
    memset(run->mmio.data, 0xff, len);
  if (v->mmio_unhandled++ < VM_UNHANDLED_LOG_MAX)
    hv_warn("vCPU %u: guest %s of %u bytes at unmapped address 0x%llx (ignored)", v->id,
            run->mmio.is_write ? "write" : "read", len,
            (unsigned long long)run->mmio.phys_addr);
}

/* Best effort: the bytes at the guest's RIP, through its page tables. */
static void describe_rip(struct vm_vcpu *v, char *buf, size_t n) {
  struct kvm_regs regs;
  struct kvm_sregs sregs;
  buf[0] = 0;
  if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
    return;
  uint64_t lin = regs.rip + ((sregs.efer & 0x400) && sregs.cs.l ? 0 : sregs.cs.base);
  int off = snprintf(buf, n, " at rip 0x%llx (cs 0x%x, cr0 0x%llx)", (unsigned long long)regs.rip,
                     sregs.cs.selector, (unsigned long long)sregs.cr0);
  struct kvm_translation t = {.linear_address = lin};
  if (ioctl(v->fd, KVM_TRANSLATE, &t) < 0 || !t.valid)
    return;
  const uint8_t *p = vm_gpa(v->vm, t.physical_address, 15);
  if (!p || off < 0 || (size_t)off >= n)
    return;
  off += snprintf(buf + off, n - (size_t)off, ", bytes");
  for (int i = 0; i < 15 && (size_t)off < n; i++)
    off += snprintf(buf + off, n - (size_t)off, " %02x", p[i]);
}

static void fatal_exit(struct vm_vcpu *v, const char *what) {
  char where[160], msg[512];
  describe_rip(v, where, sizeof where);
  snprintf(msg, sizeof msg, "vCPU %u: %s%s", v->id, what, where);
  vm_request_stop(v->vm, HV_VM_EXIT_ERROR, 0, msg);
}

/* Instructions PVM's emulator cannot execute, done by the VMM instead:
 * - int3 (Linux uses it in its boot self-test and for every static-key
 *   patch via text_poke_bp): a trap with a one-byte encoding, so step over
 *   it and inject #BP, which the guest takes through its own IDT as on
 *   hardware;
 * - fwait (a stock kernel's FPU init runs fninit; fwait): with no x87
 *   exception pending, as after fninit, it does nothing; step over it.
 * Returns true if it did one.  (Not needed on VMX/SVM, which run both
 * natively; hvrun's own kernel avoids both under PVM, a stock one cannot.) */
static bool pvm_step_over(struct vm_vcpu *v) {
  struct kvm_run *run = v->run;
  if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION ||
      !(run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) ||
      run->emulation_failure.insn_size < 1)
    return false;
  uint8_t op = run->emulation_failure.insn_bytes[0];
  if (op != 0xcc && op != 0x9b)
    return false;
  struct kvm_regs regs;
  struct kvm_vcpu_events ev;
  if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
    return false;
  if (ev.exception.injected || ev.exception.pending)
    return false;
  regs.rip += 1;
  if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
    return false;
  if (op == 0x9b)
    return true;
  ev.exception.injected = 1;
  ev.exception.nr = 3;
  ev.exception.has_error_code = 0;
  ev.exception.error_code = 0;
  ev.flags = 0;
  if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
    return false;
  v->int3_reflected++;
  return true;
}

static void handle_internal_error(struct vm_vcpu *v) {
  struct kvm_run *run = v->run;
  if (v->pvm && pvm_step_over(v))
    return;
  char what[256];
  const char *names[] = {"?", "emulation failure", "simultaneous exception",
                         "delivery event failure", "unexpected exit reason"};
  uint32_t sub = run->internal.suberror;
  int off = snprintf(what, sizeof what, "KVM internal error %u (%s)", sub,
                     sub < 5 ? names[sub] : "unknown");
  if (sub == KVM_INTERNAL_ERROR_EMULATION &&
      (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
    uint32_t nb = run->emulation_failure.insn_size;
    if (nb > sizeof(run->emulation_failure.insn_bytes))
      nb = sizeof(run->emulation_failure.insn_bytes);
    off += snprintf(what + off, sizeof what - (size_t)off, ", instruction");
    for (uint32_t i = 0; i < nb && off > 0 && (size_t)off < sizeof what; i++)
      off += snprintf(what + off, sizeof what - (size_t)off, " %02x",
                      run->emulation_failure.insn_bytes[i]);
  }
  fatal_exit(v, what);
}

static void handle_system_event(struct vm_vcpu *v) {
  switch (v->run->system_event.type) {
  case KVM_SYSTEM_EVENT_RESET:
    vm_request_stop(v->vm, HV_VM_EXIT_RESET, 0, NULL);
    break;
  case KVM_SYSTEM_EVENT_SHUTDOWN:
    vm_request_stop(v->vm, HV_VM_EXIT_RESET, 0, NULL);
    break;
  case KVM_SYSTEM_EVENT_CRASH:
    vm_request_stop(v->vm, HV_VM_EXIT_PANIC, 0, NULL);
    break;
  default: {
    char m[64];
    snprintf(m, sizeof m, "system event %u", v->run->system_event.type);
    fatal_exit(v, m);
  }
  }
}

static bool stopping(struct vm *vm) { return __atomic_load_n(&vm->stopping, __ATOMIC_SEQ_CST); }

static void *vcpu_thread(void *arg) {
  struct vm_vcpu *v = arg;
  struct vm *vm = v->vm;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, VM_KICK_SIGNAL);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  v->pvm = vm_host_is_pvm();
  while (!stopping(vm)) {
    if (ioctl(v->fd, KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        if (v->profile && !stopping(vm))
          vm_profile_sample(v);
        continue;
      }
      char m[128];
      snprintf(m, sizeof m, "vCPU %u: KVM_RUN: %s", v->id, strerror(errno));
      vm_request_stop(vm, HV_VM_EXIT_ERROR, 0, m);
      break;
    }
    uint32_t reason = v->run->exit_reason;
    v->exits[reason < VM_EXIT_REASONS ? reason : 0]++;
    switch (reason) {
    case KVM_EXIT_IO:
      handle_pio(v);
      break;
    case KVM_EXIT_MMIO:
      handle_mmio(v);
      break;
    case KVM_EXIT_INTR:
      break;
    case KVM_EXIT_HLT:
      /* Only reached without an in-kernel LAPIC (we always create one): a
       * halted CPU with nothing to wake it.  End rather than spin. */
      fatal_exit(v, "halted with no interrupt controller to wake it");
      break;
    case KVM_EXIT_SHUTDOWN:
      fatal_exit(v, "guest triple fault");
      break;
    case KVM_EXIT_INTERNAL_ERROR:
      handle_internal_error(v);
      break;
    case KVM_EXIT_FAIL_ENTRY: {
      char m[96];
      snprintf(m, sizeof m, "VM entry failed (hardware reason 0x%llx)",
               (unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
      fatal_exit(v, m);
      break;
    }
    case KVM_EXIT_SYSTEM_EVENT:
      handle_system_event(v);
      break;
    default: {
      char m[64];
      snprintf(m, sizeof m, "unexpected KVM exit reason %u", reason);
      fatal_exit(v, m);
    }
    }
  }
  return NULL;
}

static void kick_handler(int sig) { (void)sig; }

int vm_run_vcpus(struct vm *vm, hv_error_t *err) {
  /* The kick signal only has to interrupt KVM_RUN; the handler does
   * nothing.  KVM_RUN returns EINTR whatever SA_RESTART says, and
   * SA_RESTART spares device handlers' read/write an EINTR. */
  struct sigaction sa = {.sa_handler = kick_handler, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  if (sigaction(VM_KICK_SIGNAL, &sa, NULL) < 0)
    return hv_error(err, errno, "sigaction for the vCPU kick signal");
  /* Threads inherit this mask; each one unblocks the kick signal itself so
   * that it is never delivered to the caller's thread. */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, VM_KICK_SIGNAL);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  int rc = 0;
  uint32_t started = 0;
  pthread_t sampler;
  bool profiling = vm_profile_enabled() && vm_profile_start(vm, &sampler) == 0;
  for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
    struct vm_vcpu *v = &vm->vcpus[i];
    pthread_mutex_lock(&vm->lock);
    int e = pthread_create(&v->thread, NULL, vcpu_thread, v);
    if (e == 0)
      v->thread_started = true;
    pthread_mutex_unlock(&vm->lock);
    if (e != 0) {
      rc = hv_error(err, e, "start vCPU %u thread", i);
      vm_request_stop(vm, HV_VM_EXIT_ERROR, 0, "could not start every vCPU thread");
      break;
    }
    started++;
  }
  for (uint32_t i = 0; i < started; i++) {
    pthread_join(vm->vcpus[i].thread, NULL);
    pthread_mutex_lock(&vm->lock);
    vm->vcpus[i].thread_started = false;
    pthread_mutex_unlock(&vm->lock);
  }
  if (profiling)
    vm_profile_finish(vm, sampler, stderr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  for (uint32_t i = 0; i < vm->nr_vcpus; i++)
    if (vm->vcpus[i].run)
      vm->vcpus[i].run->immediate_exit = 0;
  if (vm_debug_enabled())
    vm_print_exit_stats(vm, stderr);
  return rc;
}
