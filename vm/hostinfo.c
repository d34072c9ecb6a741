/* hostinfo.c: facts about the host that decide how the guest is booted,
 * shared by hvrun's VMM and the QEMU engine, and the decoding of the
 * hypercall value the guest init reports (vm/guest_proto.h). */
#include "guest_proto.h"
#include "vmm.h"
#include <string.h>
#include <sys/stat.h>

bool hv_host_is_pvm(void) {
  /* kvm_pvm provides /dev/kvm on hosts that are themselves VMs; its guests
   * need hvrun.pvm=1 (SYSCALL via #UD) and fewer CPU features. */
  struct stat st;
  return stat("/sys/module/kvm_pvm", &st) == 0;
}

unsigned long hv_host_tsc_khz(void) {
  /* Without cpufreq (the usual case on VMs and servers with constant_tsc)
   * "cpu MHz" is the TSC rate; passing it as tsc_early_khz spares the guest
   * its PIT calibration (slow, and racy under TCG). */
  cleanup_fclose FILE *f = fopen("/proc/cpuinfo", "re");
  if (!f)
    return 0;
  char line[256];
  double mhz = 0;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "cpu MHz", 7)) {
      char *colon = strchr(line, ':');
      if (colon && sscanf(colon + 1, "%lf", &mhz) == 1)
        break;
    }
  return mhz > 0 ? (unsigned long)(mhz * 1000.0 + 0.5) : 0;
}

enum hv_vm_exit hv_hcall_decode(uint32_t value, int *exit_status) {
  if (value & HV_HCALL_PANIC) {
    *exit_status = 255;
    return HV_VM_EXIT_PANIC;
  }
  if (value & HV_HCALL_SIGNALED)
    *exit_status = 128 + (int)(value & 0xff);
  else
    *exit_status = (int)(value & 0xff);
  return HV_VM_EXIT_STATUS;
}
