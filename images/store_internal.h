/* store_internal.h: private interfaces shared by the files of images/.
 *
 * Store layout (all under the store dir):
 *   gc.lock            flock: importers/mounters hold it SHARED, rm/prune EXCLUSIVE
 *   refs.lock          flock: EXCLUSIVE around read-modify-write of refs.json
 *   refs.json          {"refs": {"name:tag": "sha256:<manifest>"}}, written atomically
 *   blobs/sha256/<hex> content-addressed blobs (manifests, configs, layers)
 *   layers/<hex>/      each layer unpacked once, keyed by its diff id
 *   erofs/<hex>.erofs  flattened read-only VM root disks, keyed by chain id
 *   leases/<hex>.json  live container rootfs mounts (keep their layers alive)
 *   tmp/<id>/ + tmp/<id>.lock  per-operation scratch; the owner holds the
 *                      flock, so a free lock means the owner died (kill -9)
 *                      and the leftovers can go.
 * Everything lands in tmp/ first and is renamed into place only after it
 * has been verified, so a failed or killed import leaves the store as it was.
 */
#ifndef HVRUN_IMAGES_STORE_INTERNAL_H
#define HVRUN_IMAGES_STORE_INTERNAL_H
#include "images.h"
#include <archive.h>
/* The low-level SHA256_* calls are deprecated in OpenSSL 3 in favour of EVP,
 * but EVP drags the whole provider machinery (3.4 MB of text) into our
 * statically linked binary, and every container start copies that binary
 * (CVE-2019-5736 sealed copy).  SHA256_* is 25 KB and uses the same
 * assembly (SHA-NI/AVX2). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#define HV_DIGEST_HEX 64
#define HV_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define HV_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define HV_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define HV_MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define HV_MT_OCI_LAYER_GZ "application/vnd.oci.image.layer.v1.tar+gzip"
#define HV_MT_OCI_LAYER_ZST "application/vnd.oci.image.layer.v1.tar+zstd"
#define HV_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define HV_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define HV_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define HV_MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"

struct hv_image_store {
  char *dir;
  int dirfd, blobs_fd, layers_fd, tmp_fd;
};

/* ---- blob.c: digests and hashing ---- */
struct hv_sha256 { SHA256_CTX ctx; };
void hv_sha256_init(struct hv_sha256 *h);
void hv_sha256_update(struct hv_sha256 *h, const void *data, size_t len);
/* Finish into "sha256:<hex>" (out must hold 72 bytes); frees the context. */
void hv_sha256_final(struct hv_sha256 *h, char out[72]);
void hv_sha256_free(struct hv_sha256 *h);
void hv_sha256_buf(const void *data, size_t len, char out[72]);
/* Validate "sha256:<64 lowercase hex>"; returns the hex part or NULL. */
const char *hv_digest_hex(const char *digest);
int hv_digest_check(const char *digest, const char *what, hv_error_t *err);
/* Read a whole (small) blob from the store, verifying digest and, when
 * size >= 0, size.  max bounds the size read (metadata blobs). */
int hv_blob_read(struct hv_image_store *s, const char *digest, int64_t size, size_t max,
                 char **out, size_t *len, hv_error_t *err);
bool hv_blob_exists(struct hv_image_store *s, const char *digest);
/* Hash an open fd to the end: digest + byte count. */
int hv_hash_fd(int fd, char out[72], uint64_t *size, hv_error_t *err);

/* ---- store.c: locks, temp dirs, filesystem helpers ---- */
enum hv_lock_kind { HV_LOCK_SH, HV_LOCK_EX };
/* Take the flock on <store>/<name>; returns the fd holding it. */
int hv_store_lock(struct hv_image_store *s, const char *name, enum hv_lock_kind k, int *fd,
                  hv_error_t *err);
/* A private scratch dir under tmp/, removed by hv_tmp_release. */
struct hv_tmp { char *name; int fd; int lockfd; };
int hv_tmp_create(struct hv_image_store *s, struct hv_tmp *t, hv_error_t *err);
void hv_tmp_release(struct hv_image_store *s, struct hv_tmp *t);
/* Remove tmp/ leftovers of dead processes; returns how many went. */
int hv_tmp_clean(struct hv_image_store *s);
/* rm -rf of `name` in dirfd, never following symlinks. */
int hv_rm_rf_at(int dirfd, const char *name);
/* openat2() with RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS (raw syscall). */
int hv_openat_beneath(int dirfd, const char *path, int flags, mode_t mode);
int hv_openat_in_root(int dirfd, const char *path, int flags, mode_t mode);
/* Read exactly n bytes from fd into a new NUL-terminated buffer; NULL with
 * errno set (0 if the file ended early) on failure. */
char *hv_read_fd_exact(int fd, size_t n);
/* Read a small file through hv_openat_beneath. */
int hv_read_at(int dirfd, const char *path, size_t max, char **out, size_t *len,
               hv_error_t *err);

/* ---- unpack.c: confined extraction ---- */
struct hv_unpack_opts {
  uint64_t max_bytes, max_entries;
  bool overlay;        /* layer mode: OCI whiteouts -> overlay, ownership, xattrs, devices */
  const char *what;    /* "layer sha256:..." for messages */
};
struct hv_unpack_stats { uint64_t entries, bytes; };
/* Extract every entry of an opened tar `a` under rootfd (a directory fd). */
int hv_unpack_archive(struct archive *a, int rootfd, const struct hv_unpack_opts *o,
                      struct hv_unpack_stats *st, hv_error_t *err);
/* Normalise a tar path: strips "./" and duplicate slashes; rejects absolute
 * paths and ".." (returns -1 with *why set).  "" means the root itself. */
int hv_clean_path(const char *in, char *out, size_t outsz, const char **why);

/* ---- whiteout.c ---- */
/* If `base` is an OCI whiteout, apply it in parentfd (overlay form) and
 * return 1; 0 if it is an ordinary name; <0 on error. */
int hv_whiteout_apply(int parentfd, const char *base, const char *path, const char *what,
                      hv_error_t *err);
/* Is `name` in dirfd an overlay whiteout (char 0/0)? */
bool hv_is_whiteout_at(int dirfd, const char *name);
bool hv_is_opaque_at(int dirfd, const char *name);

/* ---- layer.c: verified streaming ingest of one layer ---- */
struct hv_layer_src {
  int fd;                      /* read from this fd ... */
  struct archive *outer;       /* ... or from the current entry of this archive */
};
struct hv_layer_ingest {
  const char *digest;          /* expected compressed digest, or NULL to compute */
  int64_t size;                /* expected size, -1 if unknown */
  const char *diff_id;         /* expected uncompressed digest, or NULL */
  int tee_fd;                  /* copy the compressed bytes here (-1: none) */
  int unpack_fd;               /* extract into this dir (-1: only hash) */
  /* Instead of extracting: walk the tar with this (verify compares an
   * unpacked layer dir against its blob). */
  int (*visit)(struct archive *tar, void *ctx, hv_error_t *err);
  void *visit_ctx;
  uint64_t max_bytes, max_entries;
  /* results */
  char out_digest[72], out_diff_id[72];
  uint64_t out_size;
};
int hv_layer_ingest(struct hv_layer_src *src, struct hv_layer_ingest *li, hv_error_t *err);
bool hv_layer_media_type_ok(const char *mt);

/* ---- refs.c ---- */
/* Parse NAME[:TAG] into canonical "name:tag" (default tag latest). */
int hv_ref_normalize(const char *ref, char **out, hv_error_t *err);
int hv_refs_load(struct hv_image_store *s, json_t **refs, hv_error_t *err); /* object */
int hv_refs_save(struct hv_image_store *s, json_t *refs, hv_error_t *err);
/* Resolve a user reference (name[:tag], sha256:..., or >= 6 hex id prefix). */
int hv_refs_resolve(struct hv_image_store *s, const char *ref, char **digest, hv_error_t *err);

/* ---- image.c ---- */
struct hv_layer_desc { char *digest, *diff_id, *media_type; int64_t size; };
struct hv_image {
  char *ref, *digest, *config_digest, *chain_id;
  int64_t config_size, manifest_size;
  json_t *manifest, *config;
  struct hv_layer_desc *layers; size_t n_layers;
  struct hv_image_config cfg;
};
/* Parse a manifest (validating schema and media types) into img, then its
 * config (diff ids must match the layers); both set img->manifest/config. */
int hv_manifest_parse(const char *text, size_t len, const char *what, struct hv_image *img,
                      hv_error_t *err);
int hv_image_attach_config(struct hv_image *img, const char *text, size_t len, hv_error_t *err);
/* Unpack one layer from its store blob into layers/<diff hex>. */
int hv_layer_unpack_from_store(struct hv_image_store *s, const struct hv_layer_desc *l,
                               hv_error_t *err);
/* Load a manifest already in the store. */
int hv_image_load_digest(struct hv_image_store *s, const char *digest, struct hv_image **out,
                         hv_error_t *err);
/* Make sure every layer of img is unpacked under layers/ (caller holds gc.lock SH). */
int hv_image_ensure_layers(struct hv_image_store *s, const struct hv_image *img, hv_error_t *err);
void hv_chain_id(char **diff_ids, size_t n, char out[72]);
uint64_t hv_env_u64(const char *name, uint64_t def);

/* ---- imgconfig.c ---- */
int hv_image_config_parse(json_t *config, struct hv_image_config *c, hv_error_t *err);
void hv_image_config_clear(struct hv_image_config *c);

/* ---- import.c / import_oci.c / import_docker.c ---- */
struct hv_import_ctx {
  struct hv_image_store *s;
  const struct hv_image_import_opts *o;
  struct hv_tmp t;            /* t/blobs/<hex>, t/layers/<diff hex> wait for commit */
  int tblobs_fd, tlayers_fd;
  uint64_t max_bytes, max_entries;
  int srcfd;                  /* the layout or staged archive dir */
  const char *src_name;       /* for messages */
  bool src_is_stage;          /* staged copy of an archive: blobs may be moved */
  char *default_name;         /* name recorded in the source, if any */
  struct hv_image *img;       /* the manifest being imported */
};
/* Read a metadata blob `blobs/sha256/<hex>` of the source, verify digest and
 * size, and keep a copy for commit. */
int hv_import_meta_blob(struct hv_import_ctx *c, const char *digest, int64_t size, char **text,
                        size_t *len, hv_error_t *err);
/* Keep generated metadata (manifest/config) for commit; fills digest. */
int hv_import_put_blob(struct hv_import_ctx *c, const char *text, size_t len, char digest[72],
                       hv_error_t *err);
/* Ingest a layer from the source path `path` (relative to srcfd).  l->digest
 * may be NULL (computed, then set); l->diff_id is the expected diff id. */
int hv_import_layer(struct hv_import_ctx *c, const char *path, struct hv_layer_desc *l,
                    hv_error_t *err);
/* After the manifest is parsed from the source: import config + layers. */
int hv_import_manifest_layers(struct hv_import_ctx *c, hv_error_t *err);
int hv_import_oci(struct hv_import_ctx *c, hv_error_t *err);
int hv_import_docker(struct hv_import_ctx *c, hv_error_t *err);
/* Media type of a layer from its first bytes (gzip/zstd/plain tar). */
const char *hv_layer_media_type_sniff(int fd);

/* ---- gc.c ---- */
/* Mark-and-sweep with gc.lock already held EXCLUSIVE. */
int hv_gc_locked(struct hv_image_store *s, struct hv_image_prune_report *r, hv_error_t *err);
#endif
