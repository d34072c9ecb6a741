/* cgroups.h: one interface over cgroup v1, hybrid and unified v2.
 * Owned by cgroups/; the only header other folders include from here. */
#ifndef HVRUN_CGROUPS_H
#define HVRUN_CGROUPS_H
#include "../runtime/runtime.h"

enum hv_cg_layout { HV_CG_V1, HV_CG_HYBRID, HV_CG_V2 };

/* Detect the host layout from /proc/self/mountinfo (root overridable for
 * tests: e.g. a fake tree; NULL = "/sys/fs/cgroup"). */
int hv_cg_detect(const char *root, enum hv_cg_layout *out, hv_error_t *err);
const char *hv_cg_layout_name(enum hv_cg_layout l);

/* A container's cgroup, across every hierarchy it lives in. */
struct hv_cgroup;

/* Resolve cgroupsPath (absolute, relative, or "slice:prefix:name" with
 * systemd) for container `id`, create the directories and apply `r`.
 * Nothing is left behind on failure. */
int hv_cg_create(const char *cgroups_path, const char *id, const struct hv_oci_resources *r,
                 bool systemd, struct hv_cgroup **out, hv_error_t *err);
/* The same for a VMM process (VM backend): `r` is applied except its
 * linux.resources.devices, which are the guest's business; the VMM gets the
 * default device set plus /dev/kvm, /dev/net/tun, /dev/vhost-net and
 * /dev/vhost-vsock. */
int hv_cg_create_vmm(const char *cgroups_path, const char *id, const struct hv_oci_resources *r,
                     bool systemd, struct hv_cgroup **out, hv_error_t *err);
/* The cgroupsPath a backend uses when the config gives none: /hvrun/<id>
 * (system.slice:hvrun:<id> with systemd).  Malloc'd. */
char *hv_cg_default_path(const char *id, bool systemd);
/* Re-open from the string stored in state (hv_cg_path). */
int hv_cg_open(const char *stored, struct hv_cgroup **out, hv_error_t *err);
/* The string to store in state to re-open it later. */
const char *hv_cg_path(const struct hv_cgroup *cg);
int hv_cg_enter(struct hv_cgroup *cg, pid_t pid, hv_error_t *err);
int hv_cg_update(struct hv_cgroup *cg, const struct hv_oci_resources *r, hv_error_t *err);
int hv_cg_freeze(struct hv_cgroup *cg, bool frozen, hv_error_t *err);
bool hv_cg_is_frozen(struct hv_cgroup *cg);
/* The same from the string kept in state (NULL or unopenable: false). */
bool hv_cg_stored_is_frozen(const char *stored);
int hv_cg_pids(struct hv_cgroup *cg, pid_t **pids, size_t *n, hv_error_t *err);
/* Kill every process in it (SIGKILL), then remove every directory. */
int hv_cg_destroy(struct hv_cgroup *cg, hv_error_t *err);
/* runc's `events --stats` JSON "data" object. */
int hv_cg_stats(struct hv_cgroup *cg, json_t **out, hv_error_t *err);
void hv_cg_free(struct hv_cgroup *cg);
/* For features: which controllers are usable here. */
json_t *hv_cg_features(void);

/* Tests only: use a fake cgroupfs of plain files under `root` (NULL = the
 * real host again).  The tree holds `.mountinfo` (mountinfo lines whose
 * mount points are under root) and `.self_cgroup` (as /proc/self/cgroup);
 * new directories are populated with the names of the files in their
 * hierarchy's root, as the kernel would. */
void hv_cg_set_root_for_tests(const char *root);
#endif
