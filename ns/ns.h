/* ns.h: the container backend (namespaces, rootfs, mounts, devices,
 * capabilities, seccomp, user, rlimits, console, exec).  Its lifecycle ops
 * are exported as hv_backend_container (runtime.h); these are the lower
 * pieces other folders may reuse (the VM backend runs its VMM inside this
 * sandbox, as Firecracker's jailer does). */
#ifndef HVRUN_NS_H
#define HVRUN_NS_H
#include "../runtime/runtime.h"

/* Build a seccomp filter from the OCI model and load it (libseccomp). */
int hv_seccomp_load(const struct hv_oci_seccomp *s, hv_error_t *err);
/* Apply the five capability sets (libcap). */
int hv_caps_apply(const struct hv_oci_capabilities *c, hv_error_t *err);
/* Apply rlimits. */
int hv_rlimits_apply(const struct hv_oci_rlimit *r, size_t n, hv_error_t *err);
/* Send a pty master over a unix socket (SCM_RIGHTS). */
int hv_console_send(const char *socket_path, int master_fd, hv_error_t *err);

/* `run` and the one-shots call create and then start with nothing in
 * between.  Saying so (before create) lets the container backend release
 * the init as soon as it is set up instead of after a second round trip
 * through exec.fifo: create pre-loads the fifo and skips the "created"
 * state save, start only removes the fifo.  (A create option in
 * hv_create_opts would be the proper home for this.) */
void hv_container_start_on_create(bool on);

/* What only this backend interprets (mount options, sysctls, devices,
 * seccomp), checked before anything is made: the CLI calls it before it
 * reserves the id (create also checks, for other callers). */
int hv_container_validate(const struct hv_oci_config *cfg, hv_error_t *err);

#endif
