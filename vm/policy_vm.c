/* policy_vm.c: how the VM backend honours a config.
 *
 * Three places can enforce a field: the guest (its init applies process.*,
 * hostname, root.readonly, mounts, seccomp and sysctl inside the VM), the
 * VMM's host cgroup (cpu, blkio, hugetlb: the VMM's threads do the guest's
 * computing and disk I/O), and the VM's shape (vCPUs, guest RAM, no
 * network device).  A field none of them can honour is an error naming the
 * field, never silently dropped; vmb_features() says which place does what.
 *
 * It also resolves what the VM is booted with: kernel, init, engine. */
#include "vm_backend.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/kvm.h>

/* Bind mounts podman/CRI-O/containerd add for their own housekeeping.  The
 * VM cannot share host files; these are skipped (the guest has its own
 * /dev/shm and no network), anything else bound in is an error. */
static const char *const housekeeping_binds[] = {
    "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/run/.containerenv",
    "/dev/shm",   "/run/secrets",  "/dev/termination-log", NULL};

void vmb_plan_clear(struct vmb_plan *p) {
  free(p->kernel);
  free(p->init);
  free(p->engine);
  free(p->image_ref);
  free(p->cmdline);
  free(p->kvm_dev);
  vm_kmods_free(&p->kmods);
  memset(p, 0, sizeof *p);
}

/* ---------------- where hvrun was run from ---------------- */

/* hvrun runs from a sealed memfd copy (ns/selfexe.c), so /proc/self/exe
 * names no directory; argv[0] does (fexecve keeps argv and the cwd). */
static char *exe_dir(void) {
  char path[PATH_MAX] = "";
  cleanup_free char *cmdline = NULL;
  size_t len = 0;
  if (hv_read_file("/proc/self/cmdline", &cmdline, &len, NULL) == 0 && len && cmdline[0]) {
    if (strchr(cmdline, '/')) {
      if (!realpath(cmdline, path))
        path[0] = 0;
    } else {
      const char *env = getenv("PATH");
      cleanup_free char *dirs = hv_xstrdup(env ? env : "/usr/local/bin:/usr/bin:/bin");
      char *save = NULL;
      for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        cleanup_free char *cand = hv_xasprintf("%s/%s", d, cmdline);
        if (access(cand, X_OK) == 0 && realpath(cand, path))
          break;
        path[0] = 0;
      }
    }
  }
  if (!path[0]) {
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0 || path[0] != '/')
      return NULL;
    path[n] = 0;
  }
  char *slash = strrchr(path, '/');
  if (!slash)
    return NULL;
  *slash = 0;
  return hv_xstrdup(path[0] ? path : "/");
}

static bool is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Newest <dir>/kernel/<hash>/vmlinux (make kernel's cache). */
static char *newest_cached_kernel(const char *dir) {
  cleanup_free char *cache = hv_xasprintf("%s/kernel", dir);
  DIR *d = opendir(cache);
  if (!d)
    return NULL;
  char *best = NULL;
  struct timespec best_t = {0};
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !strcmp(e->d_name, "work"))
      continue;
    cleanup_free char *cand = hv_xasprintf("%s/%s/vmlinux", cache, e->d_name);
    struct stat st;
    if (stat(cand, &st) < 0 || !S_ISREG(st.st_mode))
      continue;
    if (!best || st.st_mtim.tv_sec > best_t.tv_sec ||
        (st.st_mtim.tv_sec == best_t.tv_sec && st.st_mtim.tv_nsec > best_t.tv_nsec)) {
      free(best);
      best = hv_xstrdup(cand);
      best_t = st.st_mtim;
    }
  }
  closedir(d);
  return best;
}

static int find_kernel(const struct hv_oci_config *cfg, const char *bindir, char **out,
                       hv_error_t *err) {
  const char *given = hv_oci_annotation(cfg, VMB_ANN_KERNEL), *src = "annotation " VMB_ANN_KERNEL;
  if (!given) {
    given = getenv("HVRUN_KERNEL");
    src = "HVRUN_KERNEL";
  }
  if (given && *given) {
    char path[PATH_MAX];
    if (!realpath(given, path) || !is_file(path))
      return hv_error(err, errno ? errno : EINVAL, "%s: guest kernel `%s`", src, given);
    *out = hv_xstrdup(path);
    return 0;
  }
  /* build/hvrun -> build/kernel; build/asan/hvrun -> build/kernel too. */
  const char *ups[] = {"", "/.."};
  for (size_t i = 0; bindir && i < 2; i++) {
    cleanup_free char *dir = hv_xasprintf("%s%s", bindir, ups[i]);
    cleanup_free char *link = hv_xasprintf("%s/kernel/vmlinux", dir);
    char path[PATH_MAX];
    if (is_file(link) && realpath(link, path)) {
      *out = hv_xstrdup(path);
      return 0;
    }
    if ((*out = newest_cached_kernel(dir)))
      return 0;
  }
  return hv_error(err, ENOENT, "vm: no guest kernel found (looked in %s/kernel): run `make "
                               "kernel`, or set HVRUN_KERNEL or the annotation " VMB_ANN_KERNEL,
                  bindir ? bindir : "?");
}

static int find_init(const struct hv_oci_config *cfg, const char *bindir, char **out,
                     hv_error_t *err) {
  const char *given = hv_oci_annotation(cfg, VMB_ANN_INIT), *src = "annotation " VMB_ANN_INIT;
  if (!given) {
    given = getenv("HVRUN_INIT");
    src = "HVRUN_INIT";
  }
  if (given && *given) {
    if (!is_file(given))
      return hv_error(err, errno ? errno : EINVAL, "%s: guest init `%s`", src, given);
    *out = hv_xstrdup(given);
    return 0;
  }
  const char *ups[] = {"", "/.."};
  for (size_t i = 0; bindir && i < 2; i++) {
    cleanup_free char *cand = hv_xasprintf("%s%s/hvrun-init", bindir, ups[i]);
    char path[PATH_MAX];
    if (is_file(cand) && realpath(cand, path)) {
      *out = hv_xstrdup(path);
      return 0;
    }
  }
  return hv_error(err, ENOENT,
                  "vm: no guest init found (looked for %s/hvrun-init): run `make guest-init`, or "
                  "set HVRUN_INIT or the annotation " VMB_ANN_INIT, bindir ? bindir : "?");
}

int vmb_kvm_check(const char *dev, hv_error_t *err) {
  int fd = open(dev, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT || e == ENXIO || e == ENODEV)
      return hv_error(err, e, "vm: KVM device `%s` is missing: the vm backend needs KVM (enable "
                              "virtualization, load kvm_intel or kvm_amd) or --engine qemu", dev);
    return hv_error(err, e, "vm: cannot open KVM device `%s` (is this user allowed to use KVM?)",
                    dev);
  }
  int ver = ioctl(fd, KVM_GET_API_VERSION, 0);
  close(fd);
  if (ver != KVM_API_VERSION)
    return hv_error(err, 0, "vm: `%s` is not a usable KVM device (KVM_GET_API_VERSION gave %d)",
                    dev, ver);
  if (strcmp(dev, "/dev/kvm") == 0 && hv_kvm_check(err) < 0)
    return hv_error_wrap(err, "vm");
  return 0;
}

/* ---------------- fields the VM cannot honour ---------------- */

static bool mount_is_bind(const struct hv_oci_mount *m) {
  if (m->type && (!strcmp(m->type, "bind") || !strcmp(m->type, "rbind")))
    return true;
  for (size_t i = 0; m->options && m->options[i]; i++)
    if (!strcmp(m->options[i], "bind") || !strcmp(m->options[i], "rbind"))
      return true;
  return false;
}

/* linux.resources.devices in a VM: the workload reaches no host device at
 * all, only the guest's own virtual ones, so every deny rule holds by
 * construction, and so do allow rules for the default devices every
 * container gets (null, zero, full, random, urandom, tty, console, ptmx,
 * pts), which the guest has too.  An allow rule for anything else asks for
 * a host device the VM cannot give: index of the first such rule, or -1. */
static int device_rule_beyond_defaults(const struct hv_oci_resources *r) {
  static const struct { char type; int64_t major, minor; } defaults[] = {
      {'c', 1, 3}, {'c', 1, 5}, {'c', 1, 7}, {'c', 1, 8}, {'c', 1, 9},
      {'c', 5, 0}, {'c', 5, 1}, {'c', 5, 2}, {'c', 136, -1},
  };
  for (size_t i = 0; i < r->n_devices; i++) {
    const struct hv_oci_device_cgroup *d = &r->devices[i];
    if (!d->allow)
      continue;
    bool ok = false;
    for (size_t k = 0; k < sizeof defaults / sizeof defaults[0] && !ok; k++)
      ok = d->type == defaults[k].type && d->has_major && d->major == defaults[k].major &&
           (defaults[k].minor < 0 || (d->has_minor && d->minor == defaults[k].minor));
    if (!ok)
      return (int)i;
  }
  return -1;
}

static int check_unsupported(const struct hv_oci_config *c, hv_error_t *err) {
  bool has_net = false;
  for (size_t i = 0; i < c->linux.n_namespaces; i++) {
    const struct hv_oci_namespace *n = &c->linux.namespaces[i];
    if (n->flag == CLONE_NEWNET)
      has_net = true;
    if (n->flag == CLONE_NEWUSER && (c->linux.n_uid_mappings || c->linux.n_gid_mappings))
      return hv_error(err, 0, "linux.namespaces[%zu]: user namespaces with uid/gid mappings are "
                              "not supported by the vm backend (the VM is the isolation)", i);
  }
  if (!has_net)
    return hv_error(err, 0, "network host is not supported by the vm backend (the VM has no "
                            "network device: use --network none / a network namespace)");
  if (c->linux.n_time_offsets)
    return hv_error(err, 0, "linux.timeOffsets: not supported by the vm backend");
  if (c->linux.n_devices)
    return hv_error(err, 0, "linux.devices[0] (%s): host devices cannot be passed into the VM "
                            "by the vm backend", c->linux.devices[0].path);
  int bad = device_rule_beyond_defaults(&c->linux.resources);
  if (bad >= 0)
    return hv_error(err, 0, "linux.resources.devices[%d]: allowing a host device other than the "
                            "default set cannot be honoured by the vm backend (the guest sees "
                            "only its own virtual devices)", bad);
  for (size_t i = 0; i < c->n_mounts; i++) {
    const struct hv_oci_mount *m = &c->mounts[i];
    if (!mount_is_bind(m))
      continue;
    bool housekeeping = false;
    for (size_t k = 0; housekeeping_binds[k]; k++)
      housekeeping = housekeeping || (m->destination && !strcmp(m->destination, housekeeping_binds[k]));
    if (!housekeeping)
      return hv_error(err, 0, "mounts[%zu] (%s): bind mounts of host paths are not supported by "
                              "the vm backend", i, m->destination ? m->destination : "?");
  }
  if (c->hooks.n_create_container || c->hooks.n_start_container)
    return hv_error(err, 0, "hooks.%s: hooks that run inside the container are not supported "
                            "by the vm backend",
                    c->hooks.n_create_container ? "createContainer" : "startContainer");
  if (c->linux.seccomp && c->linux.seccomp->listener_path)
    return hv_error(err, 0, "linux.seccomp.listenerPath: seccomp notify is not supported by "
                            "the vm backend");
  const struct hv_oci_resources *r = &c->linux.resources;
  if (r->network.has_class_id || r->network.n_priorities)
    return hv_error(err, 0, "linux.resources.network: the vm backend has no network device to "
                            "classify or prioritise");
  if (r->memory.has_limit && r->memory.limit > 0 &&
      (uint64_t)r->memory.limit + VMB_GUEST_HEADROOM < VMB_MIN_MEM)
    return hv_error(err, 0, "linux.resources.memory.limit: %lld bytes is below the vm backend's "
                            "minimum of %llu MiB (guest RAM is the limit + %llu MiB for the "
                            "guest kernel, at least %llu MiB)", (long long)r->memory.limit,
                    (VMB_MIN_MEM - VMB_GUEST_HEADROOM) >> 20, VMB_GUEST_HEADROOM >> 20,
                    VMB_MIN_MEM >> 20);
  return 0;
}

int vmb_check_update(const struct hv_oci_resources *r, hv_error_t *err) {
  if (r->memory.has_limit || r->memory.has_swap || r->memory.has_reservation)
    return hv_error(err, 0, "update: memory: the vm backend cannot resize a running VM's RAM "
                            "(it is fixed at boot)");
  if (r->network.has_class_id || r->network.n_priorities)
    return hv_error(err, 0, "update: network: the vm backend has no network device");
  if (r->pids.has_limit)
    return hv_error(err, 0, "update: pids: the vm backend sets the workload's pids limit in the "
                            "guest at boot and cannot change it");
  return 0;
}

/* ---------------- shape of the VM ---------------- */

static uint32_t cpuset_count(const char *s) {
  uint32_t n = 0;
  while (s && *s) {
    char *end;
    unsigned long a = strtoul(s, &end, 10), b = a;
    if (end == s)
      break;
    if (*end == '-')
      b = strtoul(end + 1, &end, 10);
    n += b >= a ? (uint32_t)(b - a + 1) : 0;
    s = *end == ',' ? end + 1 : end;
    if (*s && *s != ',' && !(*s >= '0' && *s <= '9'))
      break;
  }
  return n;
}

static uint32_t vcpus_for(const struct hv_oci_resources *r) {
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  uint32_t n = 1;
  if (r->cpu.has_quota && r->cpu.quota > 0) {
    uint64_t period = r->cpu.has_period && r->cpu.period ? r->cpu.period : 100000;
    n = (uint32_t)(((uint64_t)r->cpu.quota + period - 1) / period);
  } else if (r->cpu.cpus && cpuset_count(r->cpu.cpus)) {
    n = cpuset_count(r->cpu.cpus);
  }
  /* More vCPUs than host CPUs only adds contention; the quota is applied
   * to the VMM's cgroup either way. */
  if (online > 0 && n > (uint32_t)online)
    n = (uint32_t)online;
  return n ? n : 1;
}

/* Host tasks the VMM needs: a fixed budget (main, control, stdin relay,
 * device I/O threads; QEMU's RCU and worker threads) plus its vCPUs. */
int64_t vmb_vmm_tasks(const struct vmb_plan *p) {
  bool qemu = p->engine && !strcmp(p->engine, "qemu");
  return (qemu ? VMB_QEMU_TASKS : VMB_VMM_TASKS) + 2 * (int64_t)p->vcpus;
}

int vmb_plan_resolve(const struct hv_oci_config *cfg, struct vmb_plan *p, hv_error_t *err) {
  memset(p, 0, sizeof *p);
  if (check_unsupported(cfg, err) < 0)
    return -1;
  const char *engine = hv_oci_annotation(cfg, VMB_ANN_ENGINE), *src = "annotation " VMB_ANN_ENGINE;
  if (!engine || !*engine) {
    engine = getenv("HVRUN_ENGINE");
    src = "HVRUN_ENGINE";
  }
  if (!engine || !*engine)
    engine = "hvrun";
  if (strcmp(engine, "hvrun") && strcmp(engine, "qemu"))
    return hv_error(err, 0, "%s: unknown VM engine \"%s\" (expected hvrun or qemu)", src, engine);
  p->engine = hv_xstrdup(engine);
  bool qemu = !strcmp(engine, "qemu");

  const struct hv_oci_resources *r = &cfg->linux.resources;
  p->vcpus = vcpus_for(r);
  /* The workload's limit is memory.max of its cgroup in the guest; guest
   * RAM adds room for the guest kernel and init on top. */
  p->mem_bytes = r->memory.has_limit && r->memory.limit > 0
                     ? (((uint64_t)r->memory.limit + (1ULL << 20) - 1) & ~((1ULL << 20) - 1)) +
                           VMB_GUEST_HEADROOM
                     : VMB_DEFAULT_MEM;

  const char *dev = getenv("HVRUN_KVM_DEV");
  p->kvm_dev = hv_xstrdup(dev && *dev ? dev : "/dev/kvm");
  p->need_kvm = !qemu;
  if (p->need_kvm && vmb_kvm_check(p->kvm_dev, err) < 0)
    return -1;
  const char *nojail = getenv("HVRUN_VM_NOJAIL");
  p->jail = !(nojail && !strcmp(nojail, "1"));

  cleanup_free char *bindir = exe_dir();
  if (find_kernel(cfg, bindir, &p->kernel, err) < 0 || find_init(cfg, bindir, &p->init, err) < 0)
    return -1;
  const char *kmods = hv_oci_annotation(cfg, VMB_ANN_KMODS), *ksrc = "annotation " VMB_ANN_KMODS;
  if (!kmods) {
    kmods = getenv("HVRUN_KERNEL_MODULES");
    ksrc = "HVRUN_KERNEL_MODULES";
  }
  if (vm_kmods_resolve(p->kernel, kmods, ksrc, &p->kmods, err) < 0)
    return -1;
  const char *img = hv_oci_annotation(cfg, VMB_ANN_IMAGE);
  p->image_ref = img && *img ? hv_xstrdup(img) : NULL;

  if (!qemu) {
    /* QEMU's engine builds its own; ours gets the same base line. */
    unsigned long khz = hv_host_tsc_khz();
    cleanup_free char *tsc = khz ? hv_xasprintf(" tsc_early_khz=%lu", khz) : hv_xstrdup("");
    p->cmdline = hv_xasprintf(HV_GUEST_CMDLINE_BASE "%s%s", tsc,
                              hv_host_is_pvm() ? " " HV_GUEST_CMDLINE_PVM : "");
  }
  return 0;
}

void vmb_vmm_resources(struct hv_oci_resources *r, const struct vmb_plan *p) {
  bool qemu = p->engine && !strcmp(p->engine, "qemu");
  int64_t limit = (int64_t)(p->mem_bytes + (qemu ? VMB_QEMU_OVERHEAD : VMB_VMM_OVERHEAD));
  if (r->memory.has_swap && r->memory.swap > 0) {
    /* Keep the swap allowance the config gave on top of the limit. */
    int64_t old = r->memory.has_limit && r->memory.limit > 0 ? r->memory.limit : 0;
    int64_t extra = r->memory.swap > old ? r->memory.swap - old : 0;
    r->memory.swap = limit + extra;
  }
  r->memory.has_limit = true;
  r->memory.limit = limit;
  /* The config's pids limit is the guest workload's; the VMM gets its own
   * task budget. */
  r->pids.has_limit = true;
  r->pids.limit = vmb_vmm_tasks(p);
  r->present = true;
}

json_t *vmb_features(void) {
  return json_pack(
      "{s:s, s:[s,s], s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}, "
      "s:{s:s, s:s, s:s, s:s, s:s, s:s}}",
      "isolation", "KVM microVM; the VMM is jailed (namespaces, pivot_root, cgroup, no "
                   "capabilities, no_new_privs, seccomp allow-list)",
      "engines", "hvrun", "qemu",
      "policy",
      "memory", "the workload's cgroup memory.max in the guest (cgroup v2, OOM kills counted "
                "in events --stats .guest); guest RAM = limit + 32 MiB for the guest kernel "
                "(default 256 MiB, at least 64 MiB); the VMM cgroup's memory limit is guest RAM "
                "+ VMM overhead",
      "memory_swap", "VMM cgroup memsw limit (same margin over the limit)",
      "cpus", "vCPUs = ceil(quota/period) (at most the host's CPUs) + the VMM cgroup's CPU quota "
              "+ the same quota on the workload's cgroup in the guest",
      "cpuset_cpus", "VMM cgroup cpuset.cpus (pins the vCPU threads); vCPUs = count if no quota",
      "pids", "the workload's cgroup pids.max in the guest; the VMM cgroup gets the VMM's own "
              "task budget",
      "blkio_weight", "VMM cgroup blkio weight (the VMM does the guest's disk I/O)",
      "device_read_bps", "VMM cgroup throttle (the VMM reads the disk images)",
      "device_write_bps", "VMM cgroup throttle",
      "read_only", "guest init mounts the erofs root without its tmpfs overlay",
      "devices", "the workload's cgroup in the guest (eBPF device program): the rules apply to "
                 "the guest's devices, so the workload cannot open the guest's disks or "
                 "control channel; allowing a host device beyond the default set, or "
                 "linux.devices, is an error; the VMM cgroup allows the defaults + /dev/kvm",
      "cap_add", "guest init: the workload's capability sets", "cap_drop",
      "guest init: the workload's capability sets", "seccomp",
      "guest init: seccomp filter inside the guest (listenerPath is an error)", "network",
      "none: no network device (the VMM runs in an empty network namespace); host: error",
      "not_supported",
      "bind mounts", "error (podman/CRI housekeeping binds /etc/hosts, /etc/hostname, "
                     "/etc/resolv.conf, /run/.containerenv, /dev/shm, /run/secrets are skipped)",
      "linux.devices", "error", "user namespace mappings", "error", "timeOffsets", "error",
      "createContainer/startContainer hooks", "error", "update of memory", "error");
}
