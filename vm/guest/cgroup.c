/* cgroup.c: the workload's cgroup inside the guest.
 *
 * The guest kernel runs a pure cgroup v2 hierarchy, so the VM applies the
 * config's linux.resources (memory, pids, cpu, io, devices through eBPF)
 * with the same cgroups/ code the container backend uses on the host.  The
 * VM boundary itself (guest RAM, vCPUs, the VMM's host cgroup) is the outer
 * limit; this one gives the workload the limits and the accounting (OOM
 * kills, pids, cpu usage) a container would have, and keeps it off the
 * guest's own devices (the control channel, the root disk).
 *
 * PID 1 works on the cgroup in a mount namespace of its own, where it
 * mounts cgroup2 read-write on /sys/fs/cgroup (replacing what the spec put
 * there, typically a read-only cgroup mount).  Each child it starts
 * (workload, exec sessions) joins the cgroup there, then goes back to the
 * workload's mount namespace (the one the spec's mounts were made in) and
 * its root, so the workload sees exactly the spec's mounts and cannot lift
 * its own limits. */
#include "init.h"
#include "../../cgroups/cgroups.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define GUEST_CG_MOUNT "/sys/fs/cgroup"
#define GUEST_CG_PATH "/hvrun/workload"

static struct hv_cgroup *workload_cg;
static int workload_ns = -1;    /* the workload's mount namespace */
static int workload_root = -1;  /* its root directory (PID 1 is chrooted) */

static int mkdir_p(const char *path) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -1;
      *p = '/';
    }
  return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

int guest_cgroup_prepare(hv_error_t *err) {
  workload_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (workload_ns < 0)
    return hv_error(err, errno, "cgroup: open /proc/self/ns/mnt");
  return 0;
}

int guest_cgroup_setup(const struct hv_oci_config *cfg, hv_error_t *err) {
  workload_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (workload_root < 0)
    return hv_error(err, errno, "cgroup: open /");
  if (unshare(CLONE_NEWNS) < 0)
    return hv_error(err, errno, "cgroup: unshare PID 1's mount namespace");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return hv_error(err, errno, "cgroup: make PID 1's mounts private");
  /* From here on nothing PID 1 mounts is visible to the workload. */
  if (access("/proc/self/mountinfo", R_OK) < 0 &&
      (mkdir_p("/proc") < 0 || mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV, NULL) < 0))
    return hv_error(err, errno, "cgroup: mount /proc for PID 1");
  while (umount2(GUEST_CG_MOUNT, MNT_DETACH) == 0)
    ; /* the spec's cgroup mount(s), in PID 1's view only */
  if (mkdir_p(GUEST_CG_MOUNT) < 0 &&
      (mount("tmpfs", "/sys", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755") < 0 ||
       mkdir_p(GUEST_CG_MOUNT) < 0))
    return hv_error(err, errno, "cgroup: create " GUEST_CG_MOUNT);
  const unsigned long fl = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  /* cgroup2 has one superblock: a spec mount made read-only at creation
   * made it read-only too, so it is remounted read-write (the spec's own
   * mount keeps its per-mount read-only flag). */
  if (mount("cgroup2", GUEST_CG_MOUNT, "cgroup2", fl, NULL) < 0 ||
      mount("cgroup2", GUEST_CG_MOUNT, "cgroup2", MS_REMOUNT | fl, NULL) < 0)
    return hv_error(err, errno, "cgroup: mount cgroup2 on " GUEST_CG_MOUNT);
  /* What applies inside the guest: memory (no swap here), pids, cpu
   * weight/quota and device rules.  Host CPU numbers (cpuset), host disks
   * (blkio), hugetlb and realtime budgets are the VMM cgroup's business on
   * the host. */
  const struct hv_oci_resources *h = &cfg->linux.resources;
  struct hv_oci_resources r = {.devices = h->devices, .n_devices = h->n_devices,
                               .pids = h->pids, .present = h->present};
  r.memory.has_limit = h->memory.has_limit;
  r.memory.limit = h->memory.limit;
  r.memory.has_reservation = h->memory.has_reservation;
  r.memory.reservation = h->memory.reservation;
  r.cpu.has_shares = h->cpu.has_shares;
  r.cpu.shares = h->cpu.shares;
  r.cpu.has_quota = h->cpu.has_quota;
  r.cpu.quota = h->cpu.quota;
  r.cpu.has_period = h->cpu.has_period;
  r.cpu.period = h->cpu.period;
  r.cpu.has_burst = h->cpu.has_burst;
  r.cpu.burst = h->cpu.burst;
  r.cpu.has_idle = h->cpu.has_idle;
  r.cpu.idle = h->cpu.idle;
  if (hv_cg_create(GUEST_CG_PATH, "workload", &r, false, &workload_cg, err) < 0)
    return hv_error_wrap(err, "cgroup (in the guest)");
  return 0;
}

int guest_cgroup_join_child(hv_error_t *err) {
  if (!workload_cg)
    return 0;
  if (hv_cg_enter(workload_cg, getpid(), err) < 0)
    return hv_error_wrap(err, "cgroup: join the workload's cgroup");
  if (setns(workload_ns, CLONE_NEWNS) < 0)
    return hv_error(err, errno, "cgroup: back to the workload's mount namespace");
  if (fchdir(workload_root) < 0 || chroot(".") < 0)
    return hv_error(err, errno, "cgroup: back to the workload's root");
  return 0;
}

json_t *guest_cgroup_stats(void) {
  json_t *out = NULL;
  hv_error_t err = NULL;
  if (!workload_cg)
    return NULL;
  if (hv_cg_stats(workload_cg, &out, &err) < 0) {
    guest_log("cgroup stats: %s", err->msg);
    hv_error_release(&err);
    return NULL;
  }
  return out;
}
