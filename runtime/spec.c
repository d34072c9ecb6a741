/* spec.c: the default config.json `hvrun spec` writes; field values match
 * what `runc spec` (runc 1.2) produces so bundles are interchangeable. */
#include "runtime.h"

static json_t *strv_json(const char *const *v) {
  json_t *a = json_array();
  for (size_t i = 0; v[i]; i++)
    json_array_append_new(a, json_string(v[i]));
  return a;
}

static json_t *mount_json(const char *dest, const char *type, const char *src,
                          const char *const *opts) {
  json_t *m = json_pack("{s:s,s:s,s:s}", "destination", dest, "type", type, "source", src);
  if (opts)
    json_object_set_new(m, "options", strv_json(opts));
  return m;
}

static json_t *idmap_json(unsigned host_id) {
  return json_pack("[{s:i,s:I,s:i}]", "containerID", 0, "hostID", (json_int_t)host_id, "size", 1);
}

json_t *hv_oci_default_spec(bool rootless) {
  static const char *const caps[] = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", NULL};
  static const char *const env[] = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", NULL};
  static const char *const dev_opts[] = {"nosuid", "strictatime", "mode=755", "size=65536k", NULL};
  static const char *const pts_opts[] = {"nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                         "mode=0620", "gid=5", NULL};
  /* Rootless: gid 5 (tty) is not mapped into a one-id user namespace. */
  static const char *const pts_opts_rootless[] = {"nosuid", "noexec", "newinstance",
                                                  "ptmxmode=0666", "mode=0620", NULL};
  static const char *const shm_opts[] = {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k",
                                         NULL};
  static const char *const mq_opts[] = {"nosuid", "noexec", "nodev", NULL};
  static const char *const sys_opts[] = {"nosuid", "noexec", "nodev", "ro", NULL};
  /* Rootless: sysfs cannot be mounted without owning the network
   * namespace, so the host's /sys is bind-mounted read-only instead. */
  static const char *const sys_bind_opts[] = {"rbind", "nosuid", "noexec", "nodev", "ro", NULL};
  static const char *const cg_opts[] = {"nosuid", "noexec", "nodev", "relatime", "ro", NULL};
  static const char *const masked[] = {
      "/proc/acpi",        "/proc/asound",    "/proc/kcore",       "/proc/keys",
      "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
      "/sys/firmware",     "/proc/scsi",      NULL};
  static const char *const readonly[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                         "/proc/sysrq-trigger", NULL};

  json_t *process = json_pack(
      "{s:b,s:{s:i,s:i},s:[s],s:o,s:s,s:{s:o,s:o,s:o},s:[{s:s,s:i,s:i}],s:b}", "terminal", 1,
      "user", "uid", 0, "gid", 0, "args", "sh", "env", strv_json(env), "cwd", "/", "capabilities",
      "bounding", strv_json(caps), "effective", strv_json(caps), "permitted", strv_json(caps),
      "rlimits", "type", "RLIMIT_NOFILE", "hard", 1024, "soft", 1024, "noNewPrivileges", 1);

  json_t *mounts = json_array();
  json_array_append_new(mounts, mount_json("/proc", "proc", "proc", NULL));
  json_array_append_new(mounts, mount_json("/dev", "tmpfs", "tmpfs", dev_opts));
  json_array_append_new(mounts, mount_json("/dev/pts", "devpts", "devpts",
                                           rootless ? pts_opts_rootless : pts_opts));
  json_array_append_new(mounts, mount_json("/dev/shm", "tmpfs", "shm", shm_opts));
  json_array_append_new(mounts, mount_json("/dev/mqueue", "mqueue", "mqueue", mq_opts));
  if (rootless)
    json_array_append_new(mounts, mount_json("/sys", "none", "/sys", sys_bind_opts));
  else
    json_array_append_new(mounts, mount_json("/sys", "sysfs", "sysfs", sys_opts));
  json_array_append_new(mounts, mount_json("/sys/fs/cgroup", "cgroup", "cgroup", cg_opts));

  json_t *ns = json_array();
  static const char *const ns_types[] = {"pid", "network", "ipc", "uts", "mount", "cgroup", NULL};
  for (size_t i = 0; ns_types[i]; i++) {
    if (rootless && ns_types[i][0] == 'n')
      continue; /* no network namespace: the host's network is kept */
    json_array_append_new(ns, json_pack("{s:s}", "type", ns_types[i]));
  }

  json_t *linux_ = json_object();
  if (rootless) {
    json_array_append_new(ns, json_pack("{s:s}", "type", "user"));
    json_object_set_new(linux_, "uidMappings", idmap_json(getuid()));
    json_object_set_new(linux_, "gidMappings", idmap_json(getgid()));
  } else {
    /* Deny all device access by default; the runtime adds the standard
     * /dev/null, /dev/zero, ... itself. */
    json_object_set_new(linux_, "resources",
                        json_pack("{s:[{s:b,s:s}]}", "devices", "allow", 0, "access", "rwm"));
  }
  json_object_set_new(linux_, "namespaces", ns);
  json_object_set_new(linux_, "maskedPaths", strv_json(masked));
  json_object_set_new(linux_, "readonlyPaths", strv_json(readonly));

  return json_pack("{s:s,s:o,s:{s:s,s:b},s:s,s:o,s:o}", "ociVersion", "1.2.0", "process", process,
                   "root", "path", "rootfs", "readonly", 1, "hostname", "runc", "mounts", mounts,
                   "linux", linux_);
}
