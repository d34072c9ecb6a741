/* info_cmd.c: `features`, `spec`, `help`. */
#include "cli_internal.h"
#include "../cgroups/cgroups.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

void cli_usage(FILE *out) {
  fputs(
      "usage: hvrun [global flags] COMMAND [flags] [args]\n"
      "\n"
      "Global flags: --root DIR (default /run/hvrun), --store DIR (image store; default\n"
      "  $HVRUN_STORE, else /var/lib/hvrun), --log FILE, --log-format text|json,\n"
      "  --systemd-cgroup, --debug, --backend container|vm, --version, --help\n"
      "\n"
      "OCI runtime commands (as runc):\n"
      "  create [-b BUNDLE] [--console-socket S] [--pid-file F] [--no-pivot]\n"
      "         [--no-new-keyring] [--preserve-fds N] ID\n"
      "  start ID                  run [-d] [create flags] ID\n"
      "  state ID                  kill [--all] ID [SIGNAL]\n"
      "  delete [--force] ID       list [--format table|json] [-q]\n"
      "  exec [-p FILE] [-d] [-t] [--pid-file F] [--console-socket S] [--cwd DIR]\n"
      "       [-e K=V] [-u UID[:GID]] [--cap CAP] [--no-new-privs] [--preserve-fds N]\n"
      "       ID [COMMAND ARGS...]\n"
      "  ps [--format table|json] ID    pause ID    resume ID\n"
      "  update [-r FILE|-] [--memory M] [--cpu-quota N] [--cpu-period N]\n"
      "         [--cpu-shares N] [--pids-limit N] [--cpuset-cpus LIST] ID\n"
      "  events [--stats] [--interval 5s] ID\n"
      "  features                  spec [--rootless] [-b BUNDLE]\n"
      "\n"
      "One-shot (run, wait, clean up):\n"
      "  container|vm [--memory M] [--cpus N] [--cpuset-cpus L] [--memory-swap M]\n"
      "     [--pids-limit N] [--blkio-weight W] [--device-read-bps DEV:RATE]\n"
      "     [--device-write-bps DEV:RATE] [--read-only] [--cap-add C] [--cap-drop C]\n"
      "     [--security-opt seccomp=FILE|unconfined] [-e K=V] [-w DIR] [-u UID[:GID]]\n"
      "     [--hostname H] [-t] [-i] [--network none|host] [--rm]\n"
      "     ROOTFS-DIR|BUNDLE-DIR|IMAGE [COMMAND ARGS...]\n"
      "  vm also: [--engine hvrun|qemu] [--kernel PATH] [--kernel-modules DIR] [--init PATH]\n"
      "\n"
      "Images: hvrun image import|ls|inspect|rm|prune|verify    Benchmarks: hvrun bench\n",
      out);
}

static json_t *strv_json(const char *const *v) {
  json_t *a = json_array();
  for (size_t i = 0; v[i]; i++)
    json_array_append_new(a, json_string(v[i]));
  return a;
}

static const char *const hooks[] = {"prestart", "createRuntime", "createContainer",
                                    "startContainer", "poststart", "poststop", NULL};
static const char *const mount_options[] = {
    "acl", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
    "iversion", "lazytime", "loud", "mand", "noacl", "noatime", "nodev", "nodiratime",
    "noexec", "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid",
    "nosymfollow", "private", "ratime", "rbind", "rdev", "rdiratime", "relatime", "remount",
    "rexec", "rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime",
    "rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared",
    "rslave", "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent",
    "slave", "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable", "idmap",
    "ridmap", NULL};
static const char *const namespaces[] = {"cgroup", "ipc", "mount", "network", "pid",
                                         "time",   "user", "uts", NULL};
static const char *const seccomp_actions[] = {
    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP", NULL};
static const char *const seccomp_ops[] = {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
                                          "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
                                          "SCMP_CMP_NE", NULL};
static const char *const seccomp_archs[] = {
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM",
    NULL};
static const char *const caps[] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE", NULL};

int cli_cmd_features(const struct hv_cli_globals *g, int argc, char **argv) {
  (void)g;
  hv_error_t err = NULL;
  struct cli_opt opts[] = {{NULL, 0, 0, NULL}};
  cleanup_free char **pos = NULL;
  size_t npos = 0;
  if (cli_parse("features", opts, argc, argv, false, &pos, &npos, &err) < 0 ||
      cli_want_args("features", npos, 0, 0, "", &err) < 0)
    return hv_error_print(&err);
  json_t *cg = json_pack("{s:b,s:b,s:b}", "v1", true, "v2", true, "systemd", false);
  json_t *linux = json_pack(
      "{s:o,s:o,s:o,s:{s:b,s:o,s:o,s:o},s:{s:b},s:{s:b},s:{s:b}}", "namespaces",
      strv_json(namespaces), "capabilities", strv_json(caps), "cgroup", cg, "seccomp", "enabled",
      true, "actions", strv_json(seccomp_actions), "operators", strv_json(seccomp_ops), "archs",
      strv_json(seccomp_archs), "apparmor", "enabled", false, "selinux", "enabled", false,
      "intelRdt", "enabled", false);
  json_t *backends = json_object();
  json_object_set_new(backends, "container", hv_backend_container.features());
  json_object_set_new(backends, "vm", hv_backend_vm.features());
  char *bstr = json_dumps(backends, JSON_COMPACT);
  json_decref(backends);
  json_t *ann = json_pack("{s:s,s:s,s:s}", "org.hvrun.backends", bstr,
                          "org.hvrun.backend", "container|vm (per-container backend choice)",
                          "io.github.seccomp.libseccomp.version", "2.5");
  free(bstr);
  json_t *f = json_pack("{s:s,s:s,s:o,s:o,s:o,s:o}", "ociVersionMin", "1.0.0", "ociVersionMax",
                        "1.2.0", "hooks", strv_json(hooks), "mountOptions",
                        strv_json(mount_options), "linux", linux, "annotations", ann);
  char *s = json_dumps(f, JSON_INDENT(4));
  printf("%s\n", s);
  free(s);
  json_decref(f);
  return 0;
}

int cli_cmd_spec(const struct hv_cli_globals *g, int argc, char **argv) {
  (void)g;
  hv_error_t err = NULL;
  bool rootless = false;
  const char *bundle = ".";
  struct cli_opt opts[] = {{"rootless", 0, CLI_FLAG, &rootless},
                           {"bundle", 'b', CLI_STR, &bundle},
                           {NULL, 0, 0, NULL}};
  cleanup_free char **pos = NULL;
  size_t npos = 0;
  if (cli_parse("spec", opts, argc, argv, false, &pos, &npos, &err) < 0 ||
      cli_want_args("spec", npos, 0, 0, "[--rootless] [--bundle DIR]", &err) < 0)
    return hv_error_print(&err);
  cleanup_close int dfd = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    hv_error(&err, errno, "spec: bundle `%s`", bundle);
    return hv_error_print(&err);
  }
  struct stat sb;
  if (fstatat(dfd, "config.json", &sb, 0) == 0) {
    hv_error(&err, 0, "spec: `%s/config.json` exists; remove it first", bundle);
    return hv_error_print(&err);
  }
  json_t *spec = hv_oci_default_spec(rootless);
  if (!spec) {
    hv_error(&err, 0, "spec: no default spec");
    return hv_error_print(&err);
  }
  char *s = json_dumps(spec, JSON_INDENT(2));
  json_decref(spec);
  cleanup_free char *text = hv_xasprintf("%s\n", s);
  free(s);
  if (hv_write_file_atomic(dfd, "config.json", text, strlen(text), 0644, &err) < 0)
    return hv_error_print(&err);
  return 0;
}
