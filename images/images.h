/* images.h: the content-addressed OCI image store. */
#ifndef HVRUN_IMAGES_H
#define HVRUN_IMAGES_H
#include "../runtime/runtime.h"

#define HV_DEFAULT_STORE "/var/lib/hvrun"

struct hv_image_store;
int hv_image_store_open(const char *dir, struct hv_image_store **out, hv_error_t *err);
void hv_image_store_close(struct hv_image_store *s);

/* The parts of an image's config a runtime config needs. */
struct hv_image_config {
  char **entrypoint, **cmd, **env; /* NULL-terminated */
  char *working_dir, *user;
  struct hv_oci_keyval *labels; size_t n_labels;
};

/* Resolve NAME[:TAG] or a digest to an image; NULL-safe free. */
struct hv_image;
int hv_image_lookup(struct hv_image_store *s, const char *ref, struct hv_image **out, hv_error_t *err);
const struct hv_image_config *hv_image_config(const struct hv_image *img);
void hv_image_free(struct hv_image *img);

/* Container rootfs: mount an overlay of the image's layers at `target`
 * with upper/work under `scratch` (removed by hv_image_rootfs_release). */
int hv_image_rootfs_mount(struct hv_image_store *s, const struct hv_image *img,
                          const char *scratch, const char *target, hv_error_t *err);
int hv_image_rootfs_release(const char *scratch, const char *target, hv_error_t *err);
/* VM root disk: path of the cached read-only erofs image (built on demand). */
int hv_image_erofs(struct hv_image_store *s, const struct hv_image *img, char **path,
                   hv_error_t *err);
/* Resolve a user string ("name", "uid:gid", "name:group") via the image's
 * /etc/passwd and /etc/group. */
int hv_image_resolve_user(struct hv_image_store *s, const struct hv_image *img,
                          const char *user, uint32_t *uid, uint32_t *gid, hv_error_t *err);

/* ---- Additions (engineer F): store management used by `hvrun image`. ---- */

/* The store dir: explicit value, else $HVRUN_STORE, else HV_DEFAULT_STORE. */
const char *hv_image_store_dir(const char *flag);

struct hv_image_import_opts {
  bool rootfs;                  /* PATH is a plain rootfs tarball */
  const char *platform;         /* "os/arch[/variant]", NULL = linux/amd64 */
  uint64_t max_bytes;           /* per-layer uncompressed limit, 0 = default 8 GiB */
  uint64_t max_entries;         /* per-layer entry limit, 0 = default 1M */
};
/* Import an OCI layout dir, oci-archive, docker-archive or (opts->rootfs) a
 * rootfs tarball as `name` (NULL: the name recorded in the archive).  Fills
 * *digest (manifest digest, malloc'd) and *ref_out (canonical name:tag). */
int hv_image_import(struct hv_image_store *s, const char *path, const char *name,
                    const struct hv_image_import_opts *opts, char **digest, char **ref_out,
                    hv_error_t *err);
/* Array of {"name","tag","digest","size","created"} sorted by name. */
int hv_image_list(struct hv_image_store *s, json_t **out, hv_error_t *err);
/* {"references","digest","mediaType","configDigest","config","layers","size","chainId"} */
int hv_image_inspect(struct hv_image_store *s, const char *ref, json_t **out, hv_error_t *err);
/* Drop a reference (a digest drops every name pointing at it), then gc. */
int hv_image_remove(struct hv_image_store *s, const char *ref, hv_error_t *err);
struct hv_image_prune_report { size_t blobs, layers, erofs, tmp, leases; uint64_t bytes; };
int hv_image_prune(struct hv_image_store *s, struct hv_image_prune_report *r, hv_error_t *err);
/* fsck: re-hash every blob, check every image's blobs are present; prints
 * one line per problem to `out`, sets *problems. */
int hv_image_verify(struct hv_image_store *s, FILE *out, size_t *problems, hv_error_t *err);

const char *hv_image_digest(const struct hv_image *img);   /* manifest digest */
const char *hv_image_chain_id(const struct hv_image *img);
/* Fill a runtime-spec JSON (e.g. from hv_oci_default_spec) from the image:
 * process.args = Entrypoint + (args if non-empty else Cmd), process.env
 * (image Env, PATH defaulted), process.cwd, process.user (resolved through
 * the image's /etc/passwd and /etc/group; `user` overrides the image's
 * User if non-NULL), annotations from labels (existing keys win). */
int hv_image_apply_to_spec(struct hv_image_store *s, const struct hv_image *img, json_t *spec,
                           char *const *args, const char *user, hv_error_t *err);
#endif
