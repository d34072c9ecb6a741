/* internal.h: private to cgroups/ (and its unit tests).
 *
 * The layer is organised around "hierarchies": every cgroup filesystem
 * mounted under the cgroup root.  A v1 host has one per controller (or per
 * co-mounted group such as cpu,cpuacct); a hybrid host has those plus one
 * cgroup2 mount (here /sys/fs/cgroup/unified, holding hugetlb); a unified
 * host has exactly one cgroup2 mount at the root.  Each controller lives in
 * exactly one hierarchy, so resource code asks "where is controller X?" and
 * writes the v1 or v2 file accordingly; the layout name is only reported. */
#ifndef HVRUN_CGROUPS_INTERNAL_H
#define HVRUN_CGROUPS_INTERNAL_H
#include "cgroups.h"
#include <linux/bpf.h>

struct cg_hier {
  char *mount;     /* mount point, e.g. /sys/fs/cgroup/memory */
  char *mnt_root;  /* mountinfo "root" field (non-"/" inside a cgroupns) */
  bool v2;
  char **ctrls;    /* v1: mount options that are controllers; v2: cgroup.controllers */
};

struct cg_layout {
  enum hv_cg_layout kind;
  char *root;      /* /sys/fs/cgroup or the fake tree */
  struct cg_hier *h;
  size_t n;
  bool fake;       /* a test tree of plain files: emulate what the kernel does */
};

/* The detected layout (cached; reset by hv_cg_set_root_for_tests). */
int cg_layout_get(const struct cg_layout **out, hv_error_t *err);
/* Index of the hierarchy holding controller `ctrl`, or -1. */
int cg_layout_find(const struct cg_layout *L, const char *ctrl);
/* Parse mountinfo text for cgroup mounts under root (exposed for tests). */
int cg_layout_parse(const char *mountinfo, const char *root, struct cg_layout *L,
                    hv_error_t *err);
void cg_layout_clear(struct cg_layout *L);
/* Path of /proc/self/cgroup (or its fake-tree stand-in). */
const char *cg_self_cgroup_file(void);
const char *cg_systemd_dir(void);

/* cgroupsPath -> the cgroup path inside each hierarchy of L (v[i] for
 * L->h[i], each starting with '/'). */
int cg_resolve_paths(const struct cg_layout *L, const char *cgroups_path, const char *id,
                     bool systemd, char ***out, hv_error_t *err);

/* One directory of a container's cgroup in one hierarchy. */
struct cg_dir {
  char *path;      /* absolute leaf directory */
  char *top;       /* highest directory we created (== path if only the leaf) */
  int hier;        /* index in the layout, -1 if unknown after re-open */
};

struct hv_cgroup {
  const struct cg_layout *L;
  struct cg_dir *d;
  size_t n;
  char *stored;    /* hv_cg_path() */
  int bpf_prog_fd; /* our device program (v2), -1 if none */
};

/* The dir of `cg` that holds controller `ctrl`, or NULL. */
struct cg_dir *cg_dir_for(struct hv_cgroup *cg, const char *ctrl);
bool cg_dir_is_v2(const struct hv_cgroup *cg, const struct cg_dir *d);
/* The cgroup2 dir of cg (v2 or hybrid), or NULL. */
struct cg_dir *cg_v2_dir(struct hv_cgroup *cg);

/* Knob I/O.  `field` is the OCI field for error messages
 * ("linux.resources.memory.limit").  A missing file is reported as
 * "<field>: <file> is not available on this host". */
int cg_write(const char *dir, const char *file, const char *value, const char *field,
             hv_error_t *err);
int cg_writef(const char *dir, const char *file, const char *field, hv_error_t *err,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Read a knob; returns -errno (no err filled) so callers can probe. */
int cg_read(const char *dir, const char *file, char **out);
bool cg_has_file(const char *dir, const char *file);
/* Read an integer knob ("max" -> -1). */
int cg_read_i64(const char *dir, const char *file, int64_t *out);
/* "key value" line from a flat-keyed file (memory.stat, cpu.stat, ...). */
int cg_read_key(const char *dir, const char *file, const char *key, int64_t *out);

/* Resources: dispatch per controller to the v1 or v2 writer. */
int cg_apply_resources(struct hv_cgroup *cg, const struct hv_oci_resources *r, bool update,
                       hv_error_t *err);
int cg_v1_memory(const char *dir, const struct hv_oci_resources *r, bool update, hv_error_t *err);
int cg_v1_cpu(const char *dir, const struct hv_oci_resources *r, hv_error_t *err);
int cg_v1_cpuset(const char *dir, const struct hv_oci_resources *r, hv_error_t *err);
int cg_v1_blkio(const char *dir, const struct hv_oci_resources *r, hv_error_t *err);
int cg_v1_hugetlb(const char *dir, const struct hv_oci_resources *r, hv_error_t *err);
int cg_pids_limit(const char *dir, const struct hv_oci_resources *r, hv_error_t *err);
int cg_v1_net_cls(const char *dir, const struct hv_oci_resources *r, hv_error_t *err);
int cg_v1_net_prio(const char *dir, const struct hv_oci_resources *r, hv_error_t *err);
/* v1 cpuset: copy cpus/mems from parent into each of the dirs from top to
 * leaf that have them empty (a v1 cpuset with no cpus refuses tasks). */
int cg_v1_cpuset_copy_down(const char *top, const char *leaf, hv_error_t *err);

int cg_v2_memory(const char *dir, const struct hv_oci_resources *r, bool update, hv_error_t *err);
int cg_v2_cpu(const char *dir, const struct hv_oci_resources *r, hv_error_t *err);
int cg_v2_cpuset(const char *dir, const struct hv_oci_resources *r, hv_error_t *err);
int cg_v2_io(const char *dir, const struct hv_oci_resources *r, hv_error_t *err);
int cg_v2_hugetlb(const char *dir, const struct hv_oci_resources *r, hv_error_t *err);
int cg_v2_unified(struct hv_cgroup *cg, const struct hv_oci_resources *r, hv_error_t *err);
/* Enable every available controller in subtree_control from the mount root
 * down to the leaf's parent (best effort: failures surface later as
 * missing files, with the field named). */
void cg_v2_enable_controllers(const char *mount, const char *leaf);

/* runc/crun conversions. */
uint64_t cg_shares_to_weight(uint64_t shares);
uint64_t cg_blkio_weight_to_io_weight(uint64_t w);

/* Validation of values that no kernel accepts (one clear line each). */
int cg_validate_resources(const struct hv_oci_resources *r, hv_error_t *err);

/* Devices. */
struct cg_dev_rule { bool allow; char type; int64_t major, minor; char access[4]; };
/* The effective rule list: deny all, runc's default devices, then the
 * spec's rules in order.  Returns a malloc'd array. */
int cg_dev_rules(const struct hv_oci_resources *r, struct cg_dev_rule **out, size_t *n,
                 hv_error_t *err);
int cg_v1_devices(const char *dir, const struct cg_dev_rule *rules, size_t n, hv_error_t *err);
/* eBPF (BPF_PROG_TYPE_CGROUP_DEVICE): assemble, load, attach. */
int cg_bpf_build(const struct cg_dev_rule *rules, size_t n, struct bpf_insn **out,
                 size_t *n_insn);
int cg_bpf_load(const struct bpf_insn *insns, size_t n, int *prog_fd, hv_error_t *err);
/* Attach with BPF_F_ALLOW_MULTI, then detach every other device program
 * that was attached to dir before (so update replaces the rules). */
int cg_bpf_attach(const char *dir, int prog_fd, hv_error_t *err);
int cg_v2_devices(struct hv_cgroup *cg, const char *dir, const struct cg_dev_rule *rules,
                  size_t n, hv_error_t *err);

/* Read cgroup.procs of dir and of every directory below it. */
int cg_collect_pids(const char *dir, pid_t **pids, size_t *n);
#endif
