/* backend.c: the container backend's table, and what it honours (for
 * `hvrun features`: which OCI/policy field maps to which kernel feature).
 *
 * The "policy" keys are the same for both backends (the VM's are in
 * vm/policy_vm.c, vmb_features): the struct hv_policy fields plus
 * "devices"; tests/integration/test_oci_cli.py compares the two lists. */
#include "lifecycle.h"

static json_t *container_features(void) {
  json_t *cg = hv_cg_features();
  json_t *j = json_pack(
      "{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}}",
      "isolation", "linux namespaces + cgroups", "policy", "memory",
      "cgroup memory.limit_in_bytes / memory.max",
      "memory_swap", "cgroup memory.memsw.limit_in_bytes / memory.swap.max", "cpus",
      "cgroup cpu.cfs_quota_us+cfs_period_us / cpu.max", "cpuset_cpus", "cgroup cpuset.cpus",
      "pids", "cgroup pids.max", "blkio_weight", "cgroup blkio.weight / io.weight",
      "device_read_bps", "cgroup blkio.throttle.read_bps_device / io.max",
      "device_write_bps", "cgroup blkio.throttle.write_bps_device / io.max", "read_only",
      "read-only bind of the rootfs", "cap_add", "capability sets of the workload", "cap_drop",
      "capability sets of the workload", "seccomp", "seccomp BPF filter (libseccomp)", "network",
      "none: new network namespace (loopback only); host: no network namespace", "devices",
      "linux.devices: nodes created in the container's /dev (bind of the host node in a user "
      "namespace); linux.resources.devices: device cgroup (v1 devices.allow/deny, v2 BPF "
      "program) over runc's default allow-list");
  if (cg)
    json_object_set_new(j, "cgroups", cg);
  return j;
}

const struct hv_backend hv_backend_container = {
    .name = "container",
    .create = ns_container_create,
    .start = ns_container_start,
    .wait = ns_container_wait,
    .kill = ns_container_kill,
    .destroy = ns_container_destroy,
    .exec = ns_container_exec,
    .pause = ns_container_pause,
    .resume = ns_container_resume,
    .ps = ns_container_ps,
    .update = ns_container_update,
    .stats = ns_container_stats,
    .is_paused = ns_container_is_paused,
    .features = container_features,
};
