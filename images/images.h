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
#endif
