/* cpuid.c: the CPUID a guest sees.  Start from KVM_GET_SUPPORTED_CPUID,
 * give each vCPU its APIC id and topology, advertise the hypervisor, and
 * hide the features whose instructions fault on PVM.
 *
 * PVM (kvm_pvm, a paging-based KVM for hosts that are VMs themselves) runs
 * a non-PVM-aware guest's supervisor code entirely through KVM's
 * instruction emulator (measured: a ring-0 loop of 1M iterations costs 2M
 * insn_emulation, about 0.5-1.5 M instructions/s; the same loop in ring 3
 * runs natively).  Instructions the emulator lacks stop the guest with an
 * emulation failure: seen with Linux 6.1 are xrstor (XSAVE), clac (SMAP),
 * popcnt, lock cmpxchg16b and int3.
 *
 * Measured too: PVM's KVM_SET_CPUID2 forces the host's bits into leaves 1,
 * 7 and 0xd; only the bits KVM_GET_SUPPORTED_CPUID lists (leaf 1: CX16,
 * x2APIC, TSC-deadline, hypervisor; a few in leaf 7) obey the VMM.  So the
 * filter below is applied everywhere it has effect, and on PVM the kernel
 * is also told on its command line (vm_pvm_kernel_args) to leave the rest
 * alone.  On VMX/SVM hosts the guest runs natively and keeps everything.
 *
 * PVM detection: the kvm_pvm module is loaded (/sys/module/kvm_pvm); no
 * KVM capability tells it apart.  HVRUN_PVM=0/1 overrides the check (tests,
 * or a sandbox where /sys is not visible). */
#include "vmm.h"
#include <asm/kvm_para.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

bool vm_host_is_pvm(void) {
  const char *e = getenv("HVRUN_PVM");
  if (e && *e)
    return strcmp(e, "0") != 0;
  return access("/sys/module/kvm_pvm", F_OK) == 0;
}

/* Kernel arguments for PVM.  First, switch off inside the guest the CPU
 * features PVM forces into CPUID but cannot run (see above).  erms/fsrm are
 * not faults but cost: without them Linux clears and copies with rep
 * stosq/movsq (REP_GOOD) instead of rep stosb/movsb, and every emulated
 * store costs about 1 us, so 8x fewer stores (measured: clearing 4 MiB takes
 * 4-7 s with stosb, 0.5 s with stosq).  clearcpuid= replaces noxsave/nopku:
 * Linux 6.1 honours noxsave but also reports it as unknown and passes it to
 * init as an argument, and nopku does not exist without protection keys.
 * The last clearcpuid= on a command line wins, so this list keeps every
 * feature a guest-side list (vm/guest_proto.h) names.
 *
 * Then two that only save emulated instructions (Linux 6.1, measured with
 * kvm_emulate_insn tracing on a 64 MiB, 1-vCPU boot):
 *   noreplace-smp  a 1-CPU kernel otherwise rewrites every LOCK prefix of
 *                  its text through text_poke (a temporary mm and TLB flush
 *                  per site): 4-13 s under PVM.
 *   rodata=off     mark_rodata_ro() splits the kernel mapping into 4 KiB
 *                  pages and changes their attributes one by one: 25-30 s.
 *                  The guest kernel's text stays writable for the guest
 *                  kernel itself; the VM boundary is what isolates it from
 *                  the host, and only PVM hosts pay this.
 *   pty.legacy_count=0  CONFIG_LEGACY_PTYS registers 2 x 256 BSD pty
 *                  devices at boot: 30-40 s under PVM (`hvrun vm ROOTFS echo`
 *                  took 66 s with them, 23 s without).  A kernel built
 *                  without them reports the parameter as unknown and hands
 *                  it to init's environment, which hvrun's init ignores. */
const char *vm_pvm_kernel_args(void) {
  return "nofsgsbase noreplace-smp rodata=off pty.legacy_count=0 "
         "clearcpuid=xsave,pku,smap,smep,pcid,invpcid,popcnt,rdrand,rdseed,rdtscp,rdpid,cx16,"
         "erms,fsrm";
}

#define BIT(n) (1U << (n))

/* Leaf 1 ECX */
#define F1C_MONITOR BIT(3)
#define F1C_FMA BIT(12)
#define F1C_CX16 BIT(13)
#define F1C_PDCM BIT(15)
#define F1C_PCID BIT(17)
#define F1C_POPCNT BIT(23)
#define F1C_XSAVE BIT(26)
#define F1C_OSXSAVE BIT(27)
#define F1C_AVX BIT(28)
#define F1C_F16C BIT(29)
#define F1C_RDRAND BIT(30)
#define F1C_HYPERVISOR BIT(31)
/* Leaf 1 EDX */
#define F1D_HTT BIT(28)
/* Leaf 7.0 EBX: of everything there, PVM keeps only what is not an
 * instruction of its own (ERMS: rep movsb is emulated fine). */
#define F7B_ERMS BIT(9)
/* Leaf 7.0 EDX */
#define F7D_ARCH_CAPABILITIES BIT(29)
/* Leaf 0x80000001 ECX / EDX */
#define FX1C_ABM BIT(5)
#define FX1D_RDTSCP BIT(27)
/* KVM paravirt features (leaf 0x40000001 EAX) that are hypercalls.  On PVM
 * a ring-0 VMCALL/VMMCALL of a guest that is not PVM-aware never completes
 * (measured: KVM_RUN spins on it), so a guest must not be offered them:
 * with PV_SEND_IPI an SMP Linux hangs at its first IPI after bringing up
 * CPU 1; the others would hang the same way on first use.  The MSR-based
 * features (kvm-clock, steal time, PV EOI) work and stay. */
#define KVM_PV_HYPERCALL_FEATURES                                                         \
  (BIT(KVM_FEATURE_PV_UNHALT) | BIT(KVM_FEATURE_PV_SEND_IPI) |                            \
   BIT(KVM_FEATURE_PV_SCHED_YIELD) | BIT(KVM_FEATURE_HC_MAP_GPA_RANGE))

static struct kvm_cpuid2 *supported_cpuid(int kvm_fd, hv_error_t *err) {
  for (uint32_t n = 64; n <= 4096; n *= 2) {
    struct kvm_cpuid2 *c = hv_xmalloc0(sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
    c->nent = n;
    if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
      return c;
    int e = errno;
    free(c);
    if (e != E2BIG) {
      hv_error(err, e, "KVM_GET_SUPPORTED_CPUID");
      return NULL;
    }
  }
  hv_error(err, E2BIG, "KVM_GET_SUPPORTED_CPUID");
  return NULL;
}

static void filter_entry(struct kvm_cpuid_entry2 *e, const struct vm *vm, uint32_t id, bool pvm) {
  uint32_t n = vm->nr_vcpus;
  switch (e->function) {
  case 1:
    e->ebx = (e->ebx & 0x0000ffff) | (id << 24) | ((n > 255 ? 255 : n) << 16);
    e->ecx |= F1C_HYPERVISOR;
    e->ecx &= ~(F1C_MONITOR | F1C_PDCM);
    if (n > 1)
      e->edx |= F1D_HTT;
    else
      e->edx &= ~F1D_HTT;
    if (pvm)
      e->ecx &= ~(F1C_FMA | F1C_CX16 | F1C_PCID | F1C_POPCNT | F1C_XSAVE | F1C_OSXSAVE |
                  F1C_AVX | F1C_F16C | F1C_RDRAND);
    break;
  case 4:
    /* Cache topology: all vCPUs are cores of one package, no SMT. */
    e->eax = (e->eax & 0x03ffffff) | ((n - 1) << 26);
    e->eax &= ~(0xfffU << 14);
    break;
  case 6:
    /* Thermal and power management: nothing of it is emulated. */
    e->eax = e->ebx = e->ecx = e->edx = 0;
    break;
  case 7:
    if (pvm) {
      if (e->index == 0) {
        e->ebx &= F7B_ERMS;
        e->ecx = 0;
        e->edx = 0;
        e->eax = 0; /* no subleaf 1 */
      } else {
        e->eax = e->ebx = e->ecx = e->edx = 0;
      }
    } else if (e->index == 0) {
      /* The arch-capabilities MSR is not always settable (QEMU aborts on
       * 0x10a); the guest does not need it. */
      e->edx &= ~F7D_ARCH_CAPABILITIES;
    }
    break;
  case 0xb:
  case 0x1f: {
    /* x2APIC topology: level 0 = SMT (1 thread), level 1 = core (n). */
    uint32_t shift = 0;
    while ((1U << shift) < n)
      shift++;
    if (e->index == 0) {
      e->eax = 0;
      e->ebx = 1;
      e->ecx = 0 | (1 << 8);
    } else if (e->index == 1) {
      e->eax = shift;
      e->ebx = n;
      e->ecx = 1 | (2 << 8);
    } else {
      e->eax = e->ebx = 0;
      e->ecx = e->index;
    }
    e->edx = id;
    break;
  }
  case 0xd:
    if (pvm)
      e->eax = e->ebx = e->ecx = e->edx = 0;
    break;
  case 0x80000008: {
    /* AMD core count: NC = n-1 and the APIC-id bits it takes; without it
     * Linux puts every vCPU in a package of its own. */
    uint32_t shift = 0;
    while ((1U << shift) < n)
      shift++;
    e->ecx = (e->ecx & ~0xf0ffU) | ((n - 1) & 0xff) | (shift << 12);
    break;
  }
  case 0x40000001:
    if (pvm)
      e->eax &= ~KVM_PV_HYPERCALL_FEATURES;
    break;
  case 0x80000001:
    if (pvm) {
      e->ecx &= ~FX1C_ABM;
      e->edx &= ~FX1D_RDTSCP;
    }
    break;
  default:
    break;
  }
}

int vm_setup_cpuid(struct vm *vm, struct vm_vcpu *v, hv_error_t *err) {
  struct kvm_cpuid2 *c = supported_cpuid(vm->kvm_fd, err);
  if (!c)
    return -1;
  bool pvm = vm_host_is_pvm();
  for (uint32_t i = 0; i < c->nent; i++)
    filter_entry(&c->entries[i], vm, v->id, pvm);
  int rc = 0;
  if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
    rc = hv_error(err, errno, "KVM_SET_CPUID2");
  free(c);
  return rc;
}
