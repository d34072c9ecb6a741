/* runtime.h: the shared core of hvrun, and the only runtime/ header other
 * folders include.
 *
 * It holds:
 *   1. the error idiom (functions return <0 and fill an hv_error_t),
 *   2. cleanup helpers for __attribute__((cleanup)),
 *   3. the typed OCI runtime-spec model (config.json) and its parser,
 *   4. the isolation policy that both backends consume,
 *   5. the state store (--root) and
 *   6. the backend interface that the container (ns/) and VM (vm/) backends
 *      implement.
 */
#ifndef HVRUN_RUNTIME_H
#define HVRUN_RUNTIME_H


#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>
#include <jansson.h>

/* gnu11 predefines `linux` as 1; the OCI model has a field of that name. */
#undef linux

/* ------------------------------------------------------------------ */
/* 1. Errors                                                          */
/* ------------------------------------------------------------------ */

/* One error object per failure.  `msg` is the full context ("open
 * /x/config.json"), `errno_` the errno that caused it (0 if none), and
 * `status` an exit status the CLI should use (0 = default, 1). */
struct hv_error_s {
  int errno_;
  int status;
  char *msg;
};
typedef struct hv_error_s *hv_error_t;

/* Fill *err (if err and *err is NULL; an earlier error is kept) and return
 * -1 (or -errno_ if errno_ != 0), so callers write
 *     return hv_error(err, errno, "open `%s`", path);  */
int hv_error(hv_error_t *err, int errno_, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix an existing error's message with more context ("create `id`: ..."). */
int hv_error_wrap(hv_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void hv_error_release(hv_error_t *err);
/* "hvrun: <msg>[: strerror]" to stderr (and to the --log file, as text or
 * JSON per --log-format).  Returns the exit status to use. */
int hv_error_print(hv_error_t *err);

/* Logging to --log / stderr; level 0 = error, 1 = warning, 2 = debug. */
void hv_log_init(const char *path, bool json, bool debug);
void hv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define hv_debug(...) hv_log(2, __VA_ARGS__)
#define hv_warn(...) hv_log(1, __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* 2. Cleanup helpers                                                 */
/* ------------------------------------------------------------------ */

void hv_cleanup_freep(void *p);
void hv_cleanup_closep(int *fd);
void hv_cleanup_fclosep(FILE **f);
void hv_cleanup_jsonp(json_t **j);
void hv_cleanup_strvp(char ***v); /* NULL-terminated vector of malloc'd strings */

#define cleanup_free __attribute__((cleanup(hv_cleanup_freep)))
#define cleanup_close __attribute__((cleanup(hv_cleanup_closep)))
#define cleanup_fclose __attribute__((cleanup(hv_cleanup_fclosep)))
#define cleanup_json __attribute__((cleanup(hv_cleanup_jsonp)))
#define cleanup_strv __attribute__((cleanup(hv_cleanup_strvp)))

/* Small utilities used everywhere. */
void *hv_xmalloc0(size_t n);              /* aborts on OOM */
char *hv_xstrdup(const char *s);          /* NULL -> NULL; aborts on OOM */
char *hv_xstrndup(const char *s, size_t n); /* aborts on OOM */
void *hv_xrealloc(void *p, size_t n);     /* aborts on OOM */
char *hv_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Write a whole file atomically (tmp + fsync + rename) in dirfd (AT_FDCWD ok). */
int hv_write_file_atomic(int dirfd, const char *name, const void *data, size_t len,
                         mode_t mode, hv_error_t *err);
/* The same without fsync, for runtime state (--root, pid files): it lives
 * on tmpfs and means nothing after a reboot, so only the rename's atomicity
 * matters, and an fsync per write was a visible share of container start. */
int hv_write_runtime_file(int dirfd, const char *name, const void *data, size_t len,
                          mode_t mode, hv_error_t *err);
/* Write `data` to an existing file (cgroup/proc knobs). */
int hv_write_file(const char *path, const char *data, hv_error_t *err);
/* Read a whole file; *out is NUL-terminated, *len excludes the NUL. */
int hv_read_file(const char *path, char **out, size_t *len, hv_error_t *err);
int hv_mkdir_p(const char *path, mode_t mode, hv_error_t *err);
size_t hv_strv_len(char **v);
/* The value of one hex digit (either case), or -1. */
int hv_hex_digit(char c);
void hv_strv_free(char **v);
/* Set by the CLI while it holds a workload's terminal: backends forwarding
 * signals call it on SIGWINCH (it resizes the pty and returns true) instead
 * of calling into cli/, which the library must not depend on. */
extern bool (*hv_console_winch_hook)(void);
/* wait.c: wait for `pid` (a child of hvrun), reaping every other child
 * too, and hand each of how->signals that hvrun receives meanwhile to
 * how->forward (SIGWINCH goes to hv_console_winch_hook first). Fills
 * *exit_status shell-style (128+signal if killed). `noun` names the
 * process in the error if it is not our child ("process", "VMM"). */
struct hv_wait_forward {
  const int *signals;
  size_t n_signals;
  const char *noun;
  void (*forward)(int sig, void *opaque);
  void *opaque;
};
int hv_wait_forwarding(pid_t pid, const struct hv_wait_forward *how, int *exit_status,
                       hv_error_t *err);
/* Signal name ("KILL", "SIGKILL", "9") -> number, or -1. */
int hv_signal_parse(const char *s);
const char *hv_signal_name(int sig);

/* ------------------------------------------------------------------ */
/* 3. OCI runtime-spec model (1.0 - 1.2, Linux)                        */
/* ------------------------------------------------------------------ */

/* Optional integers: `has_x` tells whether the field was present. */
#define HV_OPT(type, name) bool has_##name; type name

struct hv_oci_rlimit { char *type; int resource; uint64_t hard, soft; };
struct hv_oci_idmap { uint32_t container_id, host_id, size; };
struct hv_oci_mount {
  char *destination, *type, *source;
  char **options;              /* NULL-terminated, as given */
  struct hv_oci_idmap *uid_mappings, *gid_mappings; /* idmapped mounts (1.1) */
  size_t n_uid_mappings, n_gid_mappings;
};
struct hv_oci_capabilities { char **bounding, **effective, **inheritable, **permitted, **ambient; };
struct hv_oci_user {
  uint32_t uid, gid;
  HV_OPT(uint32_t, umask);
  uint32_t *additional_gids; size_t n_additional_gids;
  char *username;              /* Windows-only in the spec; kept for images */
};
struct hv_oci_console_size { uint32_t height, width; };
struct hv_oci_process {
  bool terminal;
  HV_OPT(struct hv_oci_console_size, console_size);
  struct hv_oci_user user;
  char **args;                 /* NULL-terminated */
  char *command_line;          /* ignored on Linux */
  char **env;
  char *cwd;
  struct hv_oci_capabilities *capabilities; /* NULL = absent */
  struct hv_oci_rlimit *rlimits; size_t n_rlimits;
  bool no_new_privileges;
  char *apparmor_profile;
  HV_OPT(int, oom_score_adj);
  char *selinux_label;
  /* 1.2: scheduler, ioPriority, execCPUAffinity */
  char *io_priority_class; int io_priority;
  char *exec_cpu_affinity_initial, *exec_cpu_affinity_final;
  char *json;                  /* the object as parsed, compact JSON (the VM
                                * backend hands it to its guest agent) */
};
struct hv_oci_namespace { char *type; int flag; /* CLONE_NEW* */ char *path; };
struct hv_oci_device {
  char *path; char type; /* 'c','b','u','p' */
  int64_t major, minor;
  HV_OPT(uint32_t, file_mode); HV_OPT(uint32_t, uid); HV_OPT(uint32_t, gid);
};
struct hv_oci_device_cgroup {
  bool allow; char type; /* 'a','c','b' (0 = all) */
  HV_OPT(int64_t, major); HV_OPT(int64_t, minor);
  char *access;                /* "rwm" subset, NULL = all */
};
struct hv_oci_weight_device { int64_t major, minor; HV_OPT(uint16_t, weight); HV_OPT(uint16_t, leaf_weight); };
struct hv_oci_throttle_device { int64_t major, minor; uint64_t rate; };
struct hv_oci_hugepage_limit { char *page_size; uint64_t limit; };
struct hv_oci_net_prio { char *name; uint32_t priority; };
struct hv_oci_keyval { char *key, *value; };

struct hv_oci_resources {
  struct hv_oci_device_cgroup *devices; size_t n_devices;
  struct {
    HV_OPT(int64_t, limit); HV_OPT(int64_t, reservation); HV_OPT(int64_t, swap);
    HV_OPT(int64_t, kernel); HV_OPT(int64_t, kernel_tcp); HV_OPT(uint64_t, swappiness);
    HV_OPT(bool, disable_oom_killer); HV_OPT(bool, use_hierarchy);
    HV_OPT(bool, check_before_update);
  } memory;
  struct {
    HV_OPT(uint64_t, shares); HV_OPT(int64_t, quota); HV_OPT(uint64_t, period);
    HV_OPT(int64_t, realtime_runtime); HV_OPT(uint64_t, realtime_period);
    HV_OPT(int64_t, burst); HV_OPT(int64_t, idle);
    char *cpus, *mems;
  } cpu;
  struct { HV_OPT(int64_t, limit); } pids;
  struct {
    HV_OPT(uint16_t, weight); HV_OPT(uint16_t, leaf_weight);
    struct hv_oci_weight_device *weight_device; size_t n_weight_device;
    struct hv_oci_throttle_device *throttle_read_bps, *throttle_write_bps,
        *throttle_read_iops, *throttle_write_iops;
    size_t n_throttle_read_bps, n_throttle_write_bps, n_throttle_read_iops, n_throttle_write_iops;
  } block_io;
  struct hv_oci_hugepage_limit *hugepage_limits; size_t n_hugepage_limits;
  struct { HV_OPT(uint32_t, class_id); struct hv_oci_net_prio *priorities; size_t n_priorities; } network;
  struct hv_oci_keyval *unified; size_t n_unified;  /* v2 "unified" map */
  bool present;                 /* linux.resources was given */
};

struct hv_oci_seccomp_arg { uint32_t index; uint64_t value, value_two; char *op; };
struct hv_oci_seccomp_syscall {
  char **names; char *action; HV_OPT(uint32_t, errno_ret);
  struct hv_oci_seccomp_arg *args; size_t n_args;
};
struct hv_oci_seccomp {
  char *default_action; HV_OPT(uint32_t, default_errno_ret);
  char **architectures; char **flags;
  char *listener_path, *listener_metadata;
  struct hv_oci_seccomp_syscall *syscalls; size_t n_syscalls;
};

struct hv_oci_hook { char *path; char **args, **env; HV_OPT(int, timeout); };
struct hv_oci_hooks {
  struct hv_oci_hook *prestart, *create_runtime, *create_container, *start_container,
      *poststart, *poststop;
  size_t n_prestart, n_create_runtime, n_create_container, n_start_container,
      n_poststart, n_poststop;
};

struct hv_oci_config {
  char *oci_version;
  struct { char *path; bool readonly; } root;
  struct hv_oci_process *process;  /* NULL if absent (allowed for create? no: validated) */
  char *hostname, *domainname;
  struct hv_oci_mount *mounts; size_t n_mounts;
  struct hv_oci_hooks hooks;
  struct hv_oci_keyval *annotations; size_t n_annotations;
  struct {
    struct hv_oci_namespace *namespaces; size_t n_namespaces;
    struct hv_oci_idmap *uid_mappings, *gid_mappings; size_t n_uid_mappings, n_gid_mappings;
    struct hv_oci_keyval *time_offsets; size_t n_time_offsets; /* "monotonic"/"boottime" -> "secs nanosecs" */
    struct hv_oci_device *devices; size_t n_devices;
    char *cgroups_path;
    struct hv_oci_resources resources;
    char *rootfs_propagation;
    struct hv_oci_keyval *sysctl; size_t n_sysctl;
    struct hv_oci_seccomp *seccomp;  /* NULL = none */
    char **masked_paths, **readonly_paths;
    char *mount_label;
    struct { char **flags; } intel_rdt_unused;
    char *personality_domain;
  } linux;
  json_t *raw;                  /* the parsed document, kept for hooks/exec */
  char *bundle;                 /* absolute bundle dir (for relative root.path) */
};

/* Parse `bundle`/config.json.  Errors read
 *   "<file>:<line>:<col>: <field.path>: <what is wrong>"
 * e.g. "config.json:12:7: process.rlimits[2].type: unknown rlimit \"RLIMIT_FOO\"". */
int hv_oci_load(const char *bundle, struct hv_oci_config **out, hv_error_t *err);
/* Parse from a string (name is used in messages). */
int hv_oci_parse(const char *text, size_t len, const char *name,
                 struct hv_oci_config **out, hv_error_t *err);
/* Parse a standalone process.json (exec --process). */
int hv_oci_parse_process(const char *text, size_t len, const char *name,
                         struct hv_oci_process **out, hv_error_t *err);
/* Parse a standalone resources JSON (update --resources). */
int hv_oci_parse_resources(const char *text, size_t len, const char *name,
                           struct hv_oci_resources *out, hv_error_t *err);
void hv_oci_free(struct hv_oci_config *c);
void hv_oci_process_free(struct hv_oci_process *p);
void hv_oci_resources_clear(struct hv_oci_resources *r);
/* Default config as `runc spec` writes it (rootless variant adds a user ns). */
json_t *hv_oci_default_spec(bool rootless);
const char *hv_oci_annotation(const struct hv_oci_config *c, const char *key);

/* ------------------------------------------------------------------ */
/* 4. Policy: the one isolation policy both backends consume           */
/* ------------------------------------------------------------------ */

enum hv_network { HV_NET_NONE = 0, HV_NET_HOST };

struct hv_policy {
  /* cpu: cpus is in units of 1/1000 CPU (1500 = 1.5 CPUs), 0 = unlimited */
  uint32_t cpus_milli;
  char *cpuset_cpus;
  int64_t memory;               /* bytes, 0 = unlimited */
  int64_t memory_swap;          /* bytes, 0 = unset, -1 = unlimited */
  int64_t pids;                 /* 0 = unlimited */
  uint16_t blkio_weight;        /* 0 = unset */
  struct hv_oci_throttle_device *device_read_bps, *device_write_bps;
  size_t n_device_read_bps, n_device_write_bps;
  bool read_only;
  char **cap_add, **cap_drop;   /* applied to the default set */
  char *seccomp;                /* NULL = built-in default; "unconfined"; or a file */
  enum hv_network network;
};

/* Apply a policy on top of an OCI config (CLI one-shot path): fills
 * linux.resources, process.capabilities, linux.seccomp, root.readonly and
 * the network namespace. */
int hv_policy_apply(const struct hv_policy *p, struct hv_oci_config *c, hv_error_t *err);
void hv_policy_clear(struct hv_policy *p);

/* ------------------------------------------------------------------ */
/* 5. State store                                                     */
/* ------------------------------------------------------------------ */

enum hv_status { HV_CREATING, HV_CREATED, HV_RUNNING, HV_STOPPED, HV_PAUSED };
const char *hv_status_name(enum hv_status s);

struct hv_state {
  char *id;
  char *bundle;
  char *backend;                /* "container" or "vm" */
  pid_t pid;                    /* container init (or VMM) pid, 0 if none */
  unsigned long long pid_start; /* /proc/pid/stat starttime, guards pid reuse */
  enum hv_status status;        /* as stored; hv_state_refresh() derives live status */
  char *created;                /* RFC 3339 */
  char *cgroup_path;            /* what the cgroup layer needs to find/remove it */
  char *owner;
  json_t *annotations;          /* object, may be NULL */
  json_t *extra;                /* backend-private data (object), may be NULL */
};

/* The store root (--root, default /run/hvrun). */
struct hv_store { char *root; int dirfd; };
int hv_store_open(struct hv_store *s, const char *root, hv_error_t *err);
void hv_store_close(struct hv_store *s);
/* Exclusive per-id lock (flock on <root>/<id>.lock); *lockfd closed by caller. */
int hv_state_lock(struct hv_store *s, const char *id, int *lockfd, hv_error_t *err);
/* Reserve a new id: fails with "container `id` already exists". */
int hv_state_create(struct hv_store *s, const struct hv_state *st, hv_error_t *err);
int hv_state_save(struct hv_store *s, const struct hv_state *st, hv_error_t *err);
/* Fails with "container `id` does not exist". */
int hv_state_load(struct hv_store *s, const char *id, struct hv_state *st, hv_error_t *err);
int hv_state_remove(struct hv_store *s, const char *id, hv_error_t *err);
/* Directory for backend files (<root>/<id>), e.g. exec.fifo. */
char *hv_state_dir(struct hv_store *s, const char *id);
/* List ids. */
int hv_state_list(struct hv_store *s, char ***ids, hv_error_t *err);
/* Update st->status from the live process (stopped when the pid is gone or
 * reused; paused when the freezer says so is left to the backend). */
void hv_state_refresh(struct hv_state *st);
/* The spec's state JSON: ociVersion, id, status, pid, bundle, annotations. */
json_t *hv_state_to_json(const struct hv_state *st);
void hv_state_clear(struct hv_state *st);
/* Fields of /proc/<pid>/stat: 3 (state), 4 (ppid), 22 (starttime, guards
 * against pid reuse). Returns -1 if the process is gone. */
struct hv_proc_stat {
  char state;
  pid_t ppid;
  unsigned long long starttime;
};
int hv_proc_stat(pid_t pid, struct hv_proc_stat *out);
unsigned long long hv_proc_starttime(pid_t pid); /* 0 if gone */

/* ------------------------------------------------------------------ */
/* 6. Backend interface                                               */
/* ------------------------------------------------------------------ */

/* Options of create/run, as the OCI CLI gives them. */
struct hv_create_opts {
  const char *id;
  const char *bundle;           /* absolute */
  const char *console_socket;   /* --console-socket, or NULL */
  const char *pid_file;         /* --pid-file, or NULL */
  bool no_pivot, no_new_keyring;
  int preserve_fds;             /* --preserve-fds N */
  bool detach;                  /* run --detach */
  bool systemd_cgroup;
};

struct hv_exec_opts {
  struct hv_oci_process *process; /* the process to run (owned by caller) */
  const char *console_socket;
  const char *pid_file;
  bool detach;
  bool tty;
  int preserve_fds;
};

struct hv_context {
  struct hv_store *store;
  bool systemd_cgroup;
  bool debug;
};

/* Both backends implement this.  Every op returns <0 and fills err on
 * failure.  `create` must leave the workload created but not started (its
 * process waiting) and fill st (pid, cgroup_path, extra); `start` releases it.
 * For `run`, the lifecycle code calls create then start then waits via
 * `wait`. */
struct hv_backend {
  const char *name;             /* "container" or "vm" */
  int (*create)(struct hv_context *ctx, struct hv_oci_config *cfg,
                const struct hv_create_opts *o, struct hv_state *st, hv_error_t *err);
  int (*start)(struct hv_context *ctx, struct hv_oci_config *cfg, struct hv_state *st,
               hv_error_t *err);
  /* Wait for the workload of a container this process created; returns the
   * exit status as a shell would (code, or 128+signal). */
  int (*wait)(struct hv_context *ctx, struct hv_state *st, int *exit_status, hv_error_t *err);
  int (*kill)(struct hv_context *ctx, struct hv_state *st, int sig, bool all, hv_error_t *err);
  /* Remove everything the container owns (processes if force, cgroups,
   * mounts, files).  Must be idempotent and succeed after kill -9 of hvrun. */
  int (*destroy)(struct hv_context *ctx, struct hv_state *st, bool force, hv_error_t *err);
  int (*exec)(struct hv_context *ctx, struct hv_oci_config *cfg, struct hv_state *st,
              const struct hv_exec_opts *o, int *exit_status, hv_error_t *err);
  int (*pause)(struct hv_context *ctx, struct hv_state *st, hv_error_t *err);
  int (*resume)(struct hv_context *ctx, struct hv_state *st, hv_error_t *err);
  int (*ps)(struct hv_context *ctx, struct hv_state *st, pid_t **pids, size_t *n, hv_error_t *err);
  int (*update)(struct hv_context *ctx, struct hv_state *st,
                const struct hv_oci_resources *r, hv_error_t *err);
  int (*stats)(struct hv_context *ctx, struct hv_state *st, json_t **out, hv_error_t *err);
  /* Is the workload paused? (freezer) */
  bool (*is_paused)(struct hv_context *ctx, struct hv_state *st);
  /* What this backend honours, for `hvrun features`. */
  json_t *(*features)(void);
};

extern const struct hv_backend hv_backend_container; /* ns/ */
extern const struct hv_backend hv_backend_vm;        /* vm/ */

/* Pick the backend: --backend flag, else annotation org.hvrun.backend. */
const struct hv_backend *hv_backend_select(const char *flag, const struct hv_oci_config *cfg,
                                           hv_error_t *err);
const struct hv_backend *hv_backend_by_name(const char *name);

/* Hooks (runtime/hooks.c): run each hook with the state JSON on stdin. */
int hv_hooks_run(const struct hv_oci_hook *hooks, size_t n, const char *kind,
                 const struct hv_state *st, hv_error_t *err);

#endif
