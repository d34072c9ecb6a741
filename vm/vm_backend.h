/* vm_backend.h: private to the VM backend's lifecycle glue (backend.c,
 * vmm_process.c, jail.c, policy_vm.c).
 *
 * Process layout of one VM workload:
 *
 *   hvrun create (P) --fork--> stage (S) --fork--> VMM (V)
 *
 * P creates the VMM's cgroup and moves S into it.  S unshares the jail's
 * namespaces (mount, pid, ipc, uts, net), forks V (pid 1 of the new pid
 * namespace, so killing V ends everything it started, e.g. QEMU) and exits;
 * P is a child subreaper, so V comes back to P (or to P's own subreaper
 * when P is `create` and exits, as conmon/containerd-shim expect).
 * V binds <state>/control.sock, opens <state>/exec.fifo, builds its jail
 * (vm/jail.c: minimal tmpfs root with only /dev/kvm, the kernel, the initrd
 * and the root disk, pivot_root, no capabilities, no_new_privs) and blocks
 * on the fifo until `start`; then it loads its seccomp allow-list, boots
 * the VM and exits with the workload's status (code, or 128+signal).
 *
 * State pid = V.  State dir (<root>/<id>/) holds: config.json (as given),
 * exec.fifo, control.sock, initrd.cpio, root.erofs (only when built from a
 * directory), kernel.log (the guest's 8250 output) and jail/ (the empty
 * mount point of V's private tmpfs root).
 *
 * Knobs (annotation first, then environment, then default):
 *   org.hvrun.kernel / HVRUN_KERNEL   guest kernel (default: newest
 *                                     build/kernel next to the hvrun binary)
 *   org.hvrun.kernel-modules / HVRUN_KERNEL_MODULES
 *                                     the kernel's module tree (default:
 *                                     <root>/lib/modules/<release> beside
 *                                     <root>/boot/<kernel>, or the host's)
 *   org.hvrun.init / HVRUN_INIT       guest init (default: hvrun-init next to it)
 *   org.hvrun.engine / HVRUN_ENGINE   hvrun (own VMM, default) or qemu
 *   org.hvrun.image                   image ref: use the store's cached erofs disk
 *   HVRUN_KVM_DEV                     KVM device to check and bind (default /dev/kvm)
 *   HVRUN_VM_NOJAIL=1                 debugging only: no jail
 *   HVRUN_VM_SECCOMP_LOG=1            debugging only: log seccomp violations */
#ifndef HVRUN_VM_BACKEND_H
#define HVRUN_VM_BACKEND_H
#include "guest_proto.h"
#include "../cgroups/cgroups.h"
#include <pthread.h>
#include <stdatomic.h>

#define VMB_FIFO "exec.fifo"
#define VMB_SOCK "control.sock"
#define VMB_INITRD "initrd.cpio"
#define VMB_DISK "root.erofs"
#define VMB_KLOG "kernel.log"
#define VMB_JAIL "jail"
#define VMB_CONFIG "config.json"

#define VMB_ANN_KERNEL "org.hvrun.kernel"
#define VMB_ANN_KMODS "org.hvrun.kernel-modules"
#define VMB_ANN_ENGINE "org.hvrun.engine"
#define VMB_ANN_INIT "org.hvrun.init"
#define VMB_ANN_IMAGE "org.hvrun.image"

/* Default guest RAM when the config sets no memory limit. */
#define VMB_DEFAULT_MEM (256ULL << 20)
#define VMB_MIN_MEM (64ULL << 20)
/* Guest RAM beyond the workload's memory limit: the guest kernel, its
 * page cache and the init. */
#define VMB_GUEST_HEADROOM (32ULL << 20)
/* Host memory the VMM process needs besides guest RAM (its own heap,
 * stacks, page tables, virtio buffers; QEMU's TCG translation cache). */
#define VMB_VMM_OVERHEAD (64ULL << 20)
#define VMB_QEMU_OVERHEAD (320ULL << 20)
/* Host tasks the VMM needs: main + control thread + one per vCPU + device
 * I/O threads; QEMU adds its RCU, call_rcu and worker threads. */
#define VMB_VMM_TASKS 32
#define VMB_QEMU_TASKS 64

/* ---- kmod.c: modules a modular guest kernel needs ---- */
struct vm_kmods {
  char *release;                /* the kernel's release string */
  char *dir;                    /* its module tree; NULL: none found, the
                                   kernel must have what the guest needs
                                   built in (hvrun's own kernel) */
  struct vm_kmod *mods;         /* load order: dependencies first */
  size_t n;
  bool acpi;                    /* virtio-mmio is a module: declare the
                                   devices through ACPI, not the cmdline */
};
/* Read the kernel's release, find its module tree (`dir` if given, named
 * by `src` in errors; else <root>/lib/modules/<release> beside
 * <root>/boot/<kernel>; else /lib/modules/<release>) and read the modules
 * the guest init needs (virtio_mmio, virtio_blk, virtio_console, erofs,
 * overlay) that are not built in, with their dependencies. */
int vm_kmods_resolve(const char *kernel, const char *dir, const char *src, struct vm_kmods *k,
                     hv_error_t *err);
void vm_kmods_free(struct vm_kmods *k);
/* Free the modules' contents once they are in the initrd (names stay). */
void vm_kmods_drop_data(struct vm_kmods *k);

/* ---- policy_vm.c: what the VM makes of a config ---- */
struct vmb_plan {
  char *kernel;                 /* absolute path */
  char *init;                   /* build/hvrun-init */
  char *engine;                 /* "hvrun" or "qemu" */
  char *image_ref;              /* annotation org.hvrun.image, or NULL */
  uint32_t vcpus;
  uint64_t mem_bytes;           /* guest RAM */
  char *cmdline;                /* own engine: full guest command line */
  char *kvm_dev;                /* host path bound at /dev/kvm in the jail */
  bool need_kvm;
  bool jail;                    /* false only with HVRUN_VM_NOJAIL=1 */
  struct vm_kmods kmods;        /* modules for the initrd; kmods.acpi: the
                                   devices are declared through ACPI */
};
/* Check every config field the VM backend cannot honour (one clear error
 * naming the field), then resolve kernel, init, engine, vCPUs and RAM. */
int vmb_plan_resolve(const struct hv_oci_config *cfg, struct vmb_plan *p, hv_error_t *err);
void vmb_plan_clear(struct vmb_plan *p);
/* Rewrite cfg's resources into what the VMM's cgroup gets: memory limit =
 * guest RAM + VMM overhead (swap keeps its margin over the limit), pids =
 * the VMM's own task budget unless the config asks for less. */
void vmb_vmm_resources(struct hv_oci_resources *r, const struct vmb_plan *p);
int64_t vmb_vmm_tasks(const struct vmb_plan *p);
/* Same check for `update`: resources the running VM cannot change. */
int vmb_check_update(const struct hv_oci_resources *r, hv_error_t *err);
/* For `hvrun features`. */
json_t *vmb_features(void);
/* The KVM device check (HVRUN_KVM_DEV overrides /dev/kvm). */
int vmb_kvm_check(const char *dev, hv_error_t *err);

/* ---- jail.c: the VMM's sandbox ---- */
struct vmb_jail {
  const char *root;             /* empty dir to mount the tmpfs root on */
  const char *kvm_dev;          /* host path of the KVM device, or NULL */
  const char *kernel, *initrd, *disk;
  bool qemu;                    /* also bind /usr, /lib*, /etc ro + /proc */
  bool pvm;                     /* host is PVM: mirror /sys/module/kvm_pvm */
};
/* Inside the new mount namespace: build the minimal root and pivot_root
 * into it.  Afterwards the files are at the VMB_IN_JAIL_* paths. */
#define VMB_IN_JAIL_KERNEL "/vm/kernel"
#define VMB_IN_JAIL_INITRD "/vm/initrd"
#define VMB_IN_JAIL_DISK "/vm/root.disk"
int vmb_jail_enter(const struct vmb_jail *j, hv_error_t *err);
/* Drop every capability (all five sets) and set no_new_privs. */
int vmb_jail_drop_privileges(hv_error_t *err);
/* The VMM's seccomp allow-list (own engine), on every thread (TSYNC). */
int vmb_jail_seccomp(hv_error_t *err);
/* The same for V under the QEMU engine, loaded once QEMU runs: also lets V
 * wait for and kill that child. */
int vmb_jail_seccomp_supervisor(pid_t qemu, hv_error_t *err);

/* ---- vmm_process.c: the VMM process ---- */
struct vmb_spawn {
  const struct vmb_plan *plan;
  const char *state_dir;
  const char *console_socket;   /* process.terminal: send the pty master here */
  const struct hv_oci_process *process;
  struct hv_cgroup *cg;         /* S is moved here before it runs */
  const char *root_disk;        /* host path of the erofs root, or NULL */
  bool qemu_may_use_kvm;        /* QEMU engine: bind /dev/kvm (not on PVM) */
  bool host_is_pvm;             /* hv_host_is_pvm(), asked before the jail */
  bool oom_score_adj_set;
  int oom_score_adj;            /* process.oomScoreAdj, applied to the VMM */
  pid_t pid;                    /* out: V */
};
int vmb_vmm_spawn(struct vmb_spawn *s, hv_error_t *err);
/* ---- vmm_control.c: V's control thread and stdin relay ---- */
#define VMB_MAX_CLIENTS 32
struct vmb_client {
  int fd;                       /* -1: free slot */
  unsigned session;             /* exec session, 0 before "exec" */
  bool exec_sent;               /* the guest knows the session */
  bool want_stats;              /* waits for the guest's "stats" line */
  bool closing;                 /* answered: closed after this poll round */
  char *exec_line;              /* "exec S JSON\n" waiting for "started" */
  struct hv_agent_lines *lines;
};
struct vmb_control {
  int listen_fd;                /* control.sock */
  int guest_fd;                 /* our end of the guest's control channel */
  int sig_fd;                   /* signalfd of the signals V forwards */
  bool stdin_relay;             /* feed STDIN as session 0 (no terminal) */
  int stdin_src;
  atomic_bool booting;          /* the VM has been started */
  atomic_int guest_pid;         /* from "started P" */
  int started_efd;              /* signalled once the workload runs */
  pthread_mutex_t write_lock;   /* one writer at a time on guest_fd */
  pthread_mutex_t state_lock;   /* pending, stdin_inflight, guest_fd = -1 */
  pthread_cond_t credit;        /* stdin_inflight went down */
  uint64_t pending;             /* signals sent before "started" */
  size_t stdin_inflight;        /* bytes of session 0 not yet acked */
  unsigned next_session;
  bool stats_asked;             /* "stats" sent, answer not yet back */
  struct hv_agent_lines guest_lines;
  struct vmb_client clients[VMB_MAX_CLIENTS];
};
/* Start the control thread (and the stdin relay if stdin_relay). */
int vmb_control_start(struct vmb_control *v, hv_error_t *err);
void vmb_control_forward_signal(struct vmb_control *v, int sig);

/* ---- vm_exec.c: `hvrun exec` into a VM, through its guest agent ---- */
int vmb_exec(const char *sock_path, const struct hv_exec_opts *o, int *exit_status,
             hv_error_t *err);

/* process.terminal: open a pty, make its slave raw (the guest's tty does
 * the line discipline), set process.consoleSize, send the master to
 * console_socket; *slave is ours. */
int vmb_console_pty(const char *console_socket, const struct hv_oci_process *p, int *slave,
                    hv_error_t *err);
/* Connect to a VMM's control socket (any path length). */
int vmb_control_connect(const char *sock_path, hv_error_t *err);
/* The same with the whole reply line, malloc'd. */
int vmb_control_query(const char *sock_path, const char *line, char **reply, hv_error_t *err);
/* Send one request line to a VMM's control socket; the reply line (without
 * "\n") goes to reply if given. */
int vmb_control_request(const char *sock_path, const char *line, char *reply, size_t reply_len,
                        hv_error_t *err);
#endif
