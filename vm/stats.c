/* stats.c: at the end of a run with HVRUN_VM_DEBUG=1, print how often each
 * vCPU left KVM_RUN for user space, by reason, and KVM's own counters
 * (binary stats fd: exits handled inside the kernel, instruction
 * emulations, page faults, halts...).  The second set is what explains a
 * slow guest: most exits never reach user space.
 *
 * HVRUN_VM_PROFILE=1 adds a RIP-sampling profile (see vmm.h).  On PVM it
 * sees little: KVM_RUN stays in the kernel while PVM emulates ring-0 code
 * and ignores the kick signal until the next exit to user space, so the
 * samples land on I/O and halts.  There, record the host's kvm_emulate_insn
 * trace event instead (tracefs, event pid filter on the vCPU threads): it
 * carries the guest RIP of every emulated instruction. */
#include "vmm.h"
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

static const char *exit_name(uint32_t r) {
  static const char *names[] = {
      [KVM_EXIT_UNKNOWN] = "unknown",   [KVM_EXIT_EXCEPTION] = "exception",
      [KVM_EXIT_IO] = "io",             [KVM_EXIT_HYPERCALL] = "hypercall",
      [KVM_EXIT_DEBUG] = "debug",       [KVM_EXIT_HLT] = "hlt",
      [KVM_EXIT_MMIO] = "mmio",         [KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
      [KVM_EXIT_SHUTDOWN] = "shutdown", [KVM_EXIT_FAIL_ENTRY] = "fail_entry",
      [KVM_EXIT_INTR] = "intr",         [KVM_EXIT_SET_TPR] = "set_tpr",
      [KVM_EXIT_TPR_ACCESS] = "tpr_access", [KVM_EXIT_INTERNAL_ERROR] = "internal_error",
      [KVM_EXIT_SYSTEM_EVENT] = "system_event",
  };
  if (r < sizeof names / sizeof names[0] && names[r])
    return names[r];
  return "other";
}

/* Sum KVM's binary statistics of one fd (VM or vCPU) into out (name ->
 * value pairs kept in a small array; names are at most 48 chars). */
struct kstat { char name[64]; uint64_t value; };
struct kstats { struct kstat *s; size_t n; };

static void add_kstat(struct kstats *ks, const char *name, uint64_t v) {
  for (size_t i = 0; i < ks->n; i++)
    if (strcmp(ks->s[i].name, name) == 0) {
      ks->s[i].value += v;
      return;
    }
  struct kstat *a = realloc(ks->s, sizeof(*a) * (ks->n + 1));
  if (!a)
    abort();
  ks->s = a;
  snprintf(a[ks->n].name, sizeof a[ks->n].name, "%s", name);
  a[ks->n].value = v;
  ks->n++;
}

static void read_kstats(int fd, struct kstats *ks) {
  int sfd = ioctl(fd, KVM_GET_STATS_FD, NULL);
  if (sfd < 0)
    return;
  struct kvm_stats_header h;
  if (pread(sfd, &h, sizeof h, 0) != (ssize_t)sizeof h || h.name_size > 256 ||
      h.num_desc > 4096) {
    close(sfd);
    return;
  }
  size_t dsz = sizeof(struct kvm_stats_desc) + h.name_size;
  uint8_t *descs = hv_xmalloc0(dsz * h.num_desc);
  if (pread(sfd, descs, dsz * h.num_desc, h.desc_offset) == (ssize_t)(dsz * h.num_desc)) {
    for (uint32_t i = 0; i < h.num_desc; i++) {
      struct kvm_stats_desc *d = (struct kvm_stats_desc *)(descs + i * dsz);
      uint32_t type = d->flags & KVM_STATS_TYPE_MASK;
      if (d->size != 1 || (type != KVM_STATS_TYPE_CUMULATIVE && type != KVM_STATS_TYPE_PEAK))
        continue;
      uint64_t v = 0;
      if (pread(sfd, &v, sizeof v, h.data_offset + d->offset) != (ssize_t)sizeof v || !v)
        continue;
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)h.name_size, d->name);
      add_kstat(ks, name, v);
    }
  }
  free(descs);
  close(sfd);
}

void vm_print_exit_stats(struct vm *vm, FILE *out) {
  fprintf(out, "hvrun: VM exit histogram (exits to user space)\n");
  for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
    struct vm_vcpu *v = &vm->vcpus[i];
    fprintf(out, "  vCPU %u:", v->id);
    for (uint32_t r = 0; r < VM_EXIT_REASONS; r++)
      if (v->exits[r])
        fprintf(out, " %s=%llu", exit_name(r), (unsigned long long)v->exits[r]);
    fprintf(out, " (unhandled pio=%llu mmio=%llu, int3 reflected=%llu)\n",
            (unsigned long long)v->pio_unhandled, (unsigned long long)v->mmio_unhandled,
            (unsigned long long)v->int3_reflected);
  }
  struct kstats ks = {0};
  read_kstats(vm->vm_fd, &ks);
  for (uint32_t i = 0; i < vm->nr_vcpus; i++)
    read_kstats(vm->vcpus[i].fd, &ks);
  if (ks.n) {
    fprintf(out, "hvrun: KVM statistics (VM + all vCPUs, non-zero)\n");
    for (size_t i = 0; i < ks.n; i++)
      fprintf(out, "  %-28s %llu\n", ks.s[i].name, (unsigned long long)ks.s[i].value);
  }
  free(ks.s);
}

/* ---- RIP sampling profiler ---- */
#define PROFILE_SLOTS 8192            /* open addressing, power of two */
struct vm_profile { uint64_t rip[PROFILE_SLOTS], count[PROFILE_SLOTS], samples, dropped; };

bool vm_profile_enabled(void) {
  const char *e = getenv("HVRUN_VM_PROFILE");
  return e && *e && strcmp(e, "0") != 0;
}

void vm_profile_sample(struct vm_vcpu *v) {
  struct kvm_regs r;
  if (!v->profile || ioctl(v->fd, KVM_GET_REGS, &r) < 0)
    return;
  struct vm_profile *p = v->profile;
  p->samples++;
  uint64_t h = (r.rip * 0x9e3779b97f4a7c15ULL) >> 51;
  for (uint32_t i = 0; i < PROFILE_SLOTS; i++) {
    uint64_t s = (h + i) & (PROFILE_SLOTS - 1);
    if (p->count[s] == 0 || p->rip[s] == r.rip) {
      p->rip[s] = r.rip;
      p->count[s]++;
      return;
    }
  }
  p->dropped++;
}

static void *sampler_main(void *arg) {
  struct vm *vm = arg;
  struct timespec ts = {0, 1000000};
  /* HVRUN_VM_PROFILE_DELAY=S: start sampling S seconds into the run, to
   * look at one phase of a boot. */
  /* One sleep per second, not per millisecond: on a loaded host a 1 ms
   * sleep takes several, and the delay would stretch without bound. */
  const char *d = getenv("HVRUN_VM_PROFILE_DELAY");
  long delay_s = d ? strtol(d, NULL, 10) : 0;
  struct timespec second = {1, 0};
  for (; delay_s > 0 && !__atomic_load_n(&vm->stopping, __ATOMIC_SEQ_CST); delay_s--)
    nanosleep(&second, NULL);
  while (!__atomic_load_n(&vm->stopping, __ATOMIC_SEQ_CST)) {
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&vm->lock);
    for (uint32_t i = 0; i < vm->nr_vcpus; i++)
      if (vm->vcpus[i].thread_started && !vm->stopping)
        pthread_kill(vm->vcpus[i].thread, VM_KICK_SIGNAL);
    pthread_mutex_unlock(&vm->lock);
  }
  return NULL;
}

int vm_profile_start(struct vm *vm, pthread_t *thread) {
  for (uint32_t i = 0; i < vm->nr_vcpus; i++)
    vm->vcpus[i].profile = hv_xmalloc0(sizeof(struct vm_profile));
  return pthread_create(thread, NULL, sampler_main, vm);
}

static int by_count_desc(const void *a, const void *b) {
  const uint64_t *x = a, *y = b;
  return x[1] < y[1] ? 1 : x[1] > y[1] ? -1 : 0;
}

void vm_profile_finish(struct vm *vm, pthread_t thread, FILE *out) {
  pthread_join(thread, NULL);
  for (uint32_t i = 0; i < vm->nr_vcpus; i++) {
    struct vm_profile *p = vm->vcpus[i].profile;
    if (!p)
      continue;
    uint64_t(*top)[2] = hv_xmalloc0(sizeof(*top) * PROFILE_SLOTS);
    size_t n = 0;
    for (size_t s = 0; s < PROFILE_SLOTS; s++)
      if (p->count[s])
        top[n][0] = p->rip[s], top[n][1] = p->count[s], n++;
    qsort(top, n, sizeof(*top), by_count_desc);
    fprintf(out, "hvrun: vCPU %u profile: %llu samples (1 ms), top guest RIPs:\n", i,
            (unsigned long long)p->samples);
    for (size_t k = 0; k < n && k < 200; k++)
      fprintf(out, "  %016llx %6llu %5.1f%%\n", (unsigned long long)top[k][0],
              (unsigned long long)top[k][1], 100.0 * (double)top[k][1] / (double)p->samples);
    free(top);
    free(p);
    vm->vcpus[i].profile = NULL;
  }
}
