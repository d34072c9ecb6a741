/* guest_proto.h: the contract between the host side of hvrun's VM mode and
 * its guest init (vm/guest/init.c), plus the guest-side helpers the host uses:
 * the initrd writer (vm/initrd.c) and the QEMU engine (vm/qemu.c).
 * Private to vm/ and its tests.
 *
 * Boot: the guest kernel (vm/kernel/, built by `make kernel`) is started with
 *   HV_GUEST_CMDLINE_BASE [HV_GUEST_CMDLINE_PVM on PVM hosts] + devices
 * and an initrd holding
 *   /init                 the static guest init (build/hvrun-init)
 *   /hvrun/config.json    an OCI runtime-spec config document (see below)
 *   /hvrun/seed           HV_GUEST_SEED_LEN random bytes from the host: init
 *                         credits them to the kernel RNG (RNDADDENTROPY) and
 *                         deletes the file, so getrandom never stalls
 *   /dev/console, /dev, /proc, /sys, /newroot   empty nodes init needs.
 *
 * Devices the init expects:
 *   /dev/vda   virtio-blk #0: the root filesystem (erofs), read-only.  Init
 *              mounts it and puts a tmpfs overlay on top (unless
 *              root.readonly), then moves it to / and chroots.
 *   /dev/vdb   virtio-blk #1 (optional): scratch disk, not touched by init.
 *   /dev/hvc0  virtio-console #0: the workload's stdin/stdout/stderr (its
 *              controlling tty when process.terminal is true, raw otherwise).
 *   /dev/hvc1  virtio-console #1: the control channel (optional), set raw.
 *
 * /hvrun/config.json: the bundle's config.json as hvrun resolved it (policy
 * applied).  The init reads: process (args, env, cwd, terminal, user,
 * capabilities, rlimits, noNewPrivileges), hostname, root.readonly, mounts
 * (proc/sysfs/tmpfs/devpts/mqueue/cgroup2 ones are honoured inside the guest;
 * bind mounts cannot be, and are reported on the kernel console and skipped),
 * linux.seccomp and linux.sysctl.
 *
 * Control channel protocol (/dev/hvc1): text lines, "\n"-terminated, at
 * most HV_AGENT_LINE_MAX bytes.  <s> is a session: 0 is the workload, 1.. are
 * `hvrun exec` processes.  Byte payloads are hex, at most HV_AGENT_CHUNK
 * bytes per line.
 *   host -> guest   "signal <n>"       send signal n to the workload (its
 *                                      process group when it has one)
 *                   "in <s> <hex>"     stdin bytes for session s (s = 0 only
 *                                      when process.terminal is false; a
 *                                      terminal workload reads /dev/hvc0)
 *                   "eof <s>"          close session s's stdin
 *                   "exec <s> <json>"  start an OCI process object (one line,
 *                                      compact JSON) as session s, with the
 *                                      config's linux.seccomp, in the root
 *                   "kill <s> <n>"     signal n to exec session s's group
 *                   "hangup <s>"       the host side of s is gone: SIGHUP its
 *                                      group, drop its output
 *                   "stats"            ask for the workload cgroup's stats
 *   guest -> host   "started <pid>"    the workload was exec'd as guest pid
 *                   "exit <value>"     the workload ended; value is the
 *                                      hypercall value below, in decimal.
 *                                      Sent before the hypercall, because
 *                                      QEMU's isa-debug-exit status only
 *                                      keeps 7 bits of it.
 *                   "ack <s> <n>"      n stdin bytes of s were handed to the
 *                                      process: the sender may send n more.
 *                                      Senders keep at most
 *                                      HV_AGENT_STDIN_WINDOW bytes unacked,
 *                                      so a process that does not read its
 *                                      stdin never stalls the channel.
 *                   "exec-started <s> <pid>"
 *                   "exec-error <s> <text>"   session s could not start
 *                   "out <s> <1|2> <hex>"     session s's stdout/stderr (a
 *                                             terminal session sends all as 1)
 *                   "exec-exit <s> <status>"  s ended; status as a shell
 *                                             prints it (code or 128+sig)
 *                   "stats <json>"     runc's events "data" object for the
 *                                      workload's cgroup in the guest (v2),
 *                                      or "null"
 *   Unknown lines are ignored (forward compatible).
 *
 * Exit: a 32-bit OUT to HV_HCALL_PORT (vmm.h) with the exit code, or the
 * signal number | HV_HCALL_SIGNALED, or HV_HCALL_PANIC | code when the init
 * itself failed (it prints one "hvrun-init: ..." line to the kernel console
 * first).  Then a reset (reboot(RB_AUTOBOOT) with reboot=t) as the fallback
 * for VMMs without the port; without ACPI a power-off would only halt.
 */
#ifndef HVRUN_GUEST_PROTO_H
#define HVRUN_GUEST_PROTO_H
#include "vm.h"

/* Kernel command line the guest kernel needs on every engine.
 *  console=ttyS0          kernel log on the 8250 (kernel_log_fd)
 *  reboot=t               triple-fault reboot: no BIOS/ACPI paths
 *  panic=-1               reboot at once on panic (the VMM sees a reset)
 *  tsc_early_khz / lpj    are added by the engine (skip calibration)
 *  no_timer_check         skip the IO-APIC timer sanity check
 *  mitigations=off        no speculation-barrier setup (privileged writes)
 *  cryptomgr.notests      no crypto self-tests
 *  i8042.* / noreplace-smp  nothing to probe, no text patching at SMP boot */
#define HV_GUEST_CMDLINE_BASE                                                          \
  "console=ttyS0 reboot=t panic=-1 no_timer_check mitigations=off "                    \
  "cryptomgr.notests quiet loglevel=4 rdinit=/init"
/* Added on PVM hosts (kvm_pvm loaded): SYSCALL is emulated from #UD and
 * the ring-0 INT3 self-test is skipped (our kernel patch), and features
 * whose instructions PVM's emulator lacks (xrstor, clac/stac, wrfsbase,
 * invpcid, popcnt, cmpxchg16b...) are hidden, and so are erms/fsrm: with
 * them the kernel clears and copies one byte per emulated store.  The VMM should also not offer them in CPUID;
 * clearcpuid= covers VMMs that pass the host's CPUID through. */
#define HV_GUEST_CMDLINE_PVM                                                           \
  "hvrun.pvm=1 nofsgsbase clearcpuid=xsave,pku,smap,smep,pcid,invpcid,popcnt,rdrand,"     \
  "rdseed,rdtscp,rdpid,cx16,erms,fsrm"

#define HV_GUEST_CONFIG_PATH "/hvrun/config.json"
#define HV_GUEST_SEED_PATH "/hvrun/seed"
#define HV_GUEST_SEED_LEN 64
#define HV_GUEST_INIT_PATH "/init"

#define HV_AGENT_LINE_MAX 65536
#define HV_AGENT_CHUNK 2048
#define HV_AGENT_STDIN_WINDOW 65536

/* agent_proto.c: shared by the guest init, the VMM and the exec client. */
void hv_agent_hex_encode(const void *data, size_t len, char *out); /* out: 2*len+1 */
/* Decode a whole hex string into at most `max` bytes; -1 if malformed. */
ssize_t hv_agent_hex_decode(const char *hex, void *out, size_t max);
struct hv_agent_lines {
  char buf[HV_AGENT_LINE_MAX];
  size_t used;
  bool overflow;                /* dropping an over-long line */
};
void hv_agent_lines_init(struct hv_agent_lines *l);
void hv_agent_lines_feed(struct hv_agent_lines *l, const char *buf, size_t n,
                         void (*fn)(void *arg, char *line), void *arg);
/* write() all of buf, waiting on POLLOUT for a non-blocking fd. */
int hv_agent_write_all(int fd, const void *buf, size_t len);
/* Send data as "<verb> <session> [<stream>] <hex>" lines of at most
 * HV_AGENT_CHUNK bytes each (stream < 0: no stream field). */
int hv_agent_send_data(int fd, const char *verb, unsigned session, int stream, const void *data,
                       size_t len);

/* Is /dev/kvm provided by PVM (kvm_pvm)? */
bool hv_host_is_pvm(void);
/* Host TSC frequency in kHz from /proc/cpuinfo or sysfs, 0 if unknown. */
unsigned long hv_host_tsc_khz(void);

/* A kernel module for the guest's initramfs (vm/kmod.c finds them). */
struct vm_kmod {
  char *name;                   /* "virtio_mmio" */
  char *data;                   /* the ELF object, decompressed */
  size_t len;
};
/* Modules go to HV_GUEST_MODULES_DIR/<name>.ko, and their names, one per
 * line in load order (dependencies first), to HV_GUEST_MODULES_ORDER; the
 * init loads them before it looks for its disks and consoles. */
#define HV_GUEST_MODULES_DIR "/hvrun/modules"
#define HV_GUEST_MODULES_ORDER HV_GUEST_MODULES_DIR "/order"

/* Write a cpio "newc" archive to `out_path` holding /init (a copy of the
 * file `init_path`, mode 0755), /hvrun/config.json (`config_json`, mode
 * 0600), the `n_mods` kernel modules (may be 0) and the directories and
 * /dev/console node the init needs.  It is written to a temp file next to
 * out_path and renamed into place. */
int hv_initrd_write(const char *out_path, const char *init_path, const char *config_json,
                    size_t config_len, const struct vm_kmod *mods, size_t n_mods,
                    hv_error_t *err);

/* Build the erofs image `out_path` from directory `dir` (mkfs.erofs). */
int hv_rootdisk_from_dir(const char *dir, const char *out_path, hv_error_t *err);

/* The `--engine qemu` path: boot c->kernel/c->initrd/c->root_disk under
 * qemu-system-x86_64 -M microvm (KVM when usable, TCG otherwise) with the same
 * consoles and control channel as hv_vm_run.  *exit_status is the workload
 * status as a shell would print it.  HVRUN_QEMU (env) overrides the binary,
 * HVRUN_QEMU_ACCEL=tcg|kvm forces the accelerator. */
int hv_vm_run_qemu(const struct hv_vm_config *c, int *exit_status, hv_error_t *err);

/* Decode a hypercall value into a shell status (code, or 128+signal).
 * Returns HV_VM_EXIT_STATUS or HV_VM_EXIT_PANIC. */
enum hv_vm_exit hv_hcall_decode(uint32_t value, int *exit_status);
#endif
