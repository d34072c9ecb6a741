/* image.c: manifests and configs of stored images, lookup, chain ids and
 * making sure every layer is unpacked. */
#include "store_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define META_MAX (16u << 20)

uint64_t hv_env_u64(const char *name, uint64_t def) {
  const char *v = getenv(name);
  if (!v || !*v)
    return def;
  char *end;
  unsigned long long n = strtoull(v, &end, 10);
  return *end == 0 && n > 0 ? n : def;
}

void hv_chain_id(char **diff_ids, size_t n, char out[72]) {
  /* ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)) */
  out[0] = 0;
  for (size_t i = 0; i < n; i++) {
    if (i == 0) {
      snprintf(out, 72, "%s", diff_ids[0]);
      continue;
    }
    cleanup_free char *s = hv_xasprintf("%s %s", out, diff_ids[i]);
    hv_sha256_buf(s, strlen(s), out);
  }
}

static int parse_desc(json_t *d, const char *what, char **digest, int64_t *size, char **mt,
                      hv_error_t *err) {
  if (!json_is_object(d))
    return hv_error(err, 0, "%s: not an object", what);
  const char *dg = json_string_value(json_object_get(d, "digest"));
  if (hv_digest_check(dg, what, err) < 0)
    return -1;
  json_t *sz = json_object_get(d, "size");
  if (!json_is_integer(sz) || json_integer_value(sz) < 0)
    return hv_error(err, 0, "%s: missing or invalid size", what);
  *digest = hv_xstrdup(dg);
  *size = json_integer_value(sz);
  if (mt)
    *mt = hv_xstrdup(json_string_value(json_object_get(d, "mediaType")));
  return 0;
}

int hv_manifest_parse(const char *text, size_t len, const char *what, struct hv_image *img,
                      hv_error_t *err) {
  json_error_t je;
  json_t *m = json_loadb(text, len, 0, &je);
  if (!m)
    return hv_error(err, 0, "%s: invalid JSON at line %d: %s", what, je.line, je.text);
  img->manifest = m;
  img->manifest_size = (int64_t)len;
  const char *mt = json_string_value(json_object_get(m, "mediaType"));
  if (mt && (!strcmp(mt, HV_MT_OCI_INDEX) || !strcmp(mt, HV_MT_DOCKER_LIST)))
    return hv_error(err, 0, "%s: is an image index, not a manifest", what);
  if (mt && strcmp(mt, HV_MT_OCI_MANIFEST) && strcmp(mt, HV_MT_DOCKER_MANIFEST))
    return hv_error(err, 0, "%s: unknown media type `%s`", what, mt);
  if (json_integer_value(json_object_get(m, "schemaVersion")) != 2)
    return hv_error(err, 0, "%s: schemaVersion must be 2", what);
  cleanup_free char *cwhat = hv_xasprintf("%s: config", what);
  cleanup_free char *cmt = NULL;
  if (parse_desc(json_object_get(m, "config"), cwhat, &img->config_digest, &img->config_size,
                 &cmt, err) < 0)
    return -1;
  if (!cmt || (strcmp(cmt, HV_MT_OCI_CONFIG) && strcmp(cmt, HV_MT_DOCKER_CONFIG)))
    return hv_error(err, 0, "%s: unknown media type `%s`", cwhat, cmt ? cmt : "(missing)");
  json_t *layers = json_object_get(m, "layers");
  if (!json_is_array(layers))
    return hv_error(err, 0, "%s: missing \"layers\" array", what);
  img->n_layers = json_array_size(layers);
  img->layers = hv_xmalloc0((img->n_layers + 1) * sizeof *img->layers);
  for (size_t i = 0; i < img->n_layers; i++) {
    cleanup_free char *lwhat = hv_xasprintf("%s: layers[%zu]", what, i);
    struct hv_layer_desc *l = &img->layers[i];
    if (parse_desc(json_array_get(layers, i), lwhat, &l->digest, &l->size, &l->media_type,
                   err) < 0)
      return -1;
    if (!hv_layer_media_type_ok(l->media_type))
      return hv_error(err, 0, "%s: unknown media type `%s`", lwhat,
                      l->media_type ? l->media_type : "(missing)");
  }
  return 0;
}

int hv_image_attach_config(struct hv_image *img, const char *text, size_t len, hv_error_t *err) {
  json_error_t je;
  json_t *c = json_loadb(text, len, 0, &je);
  if (!c)
    return hv_error(err, 0, "config %s: invalid JSON at line %d: %s", img->config_digest,
                    je.line, je.text);
  img->config = c;
  json_t *ids = json_object_get(json_object_get(c, "rootfs"), "diff_ids");
  if (!json_is_array(ids))
    return hv_error(err, 0, "config %s: missing rootfs.diff_ids", img->config_digest);
  if (json_array_size(ids) != img->n_layers)
    return hv_error(err, 0, "config %s: %zu diff_ids for %zu layers", img->config_digest,
                    json_array_size(ids), img->n_layers);
  cleanup_free char **v = hv_xmalloc0((img->n_layers + 1) * sizeof(char *));
  for (size_t i = 0; i < img->n_layers; i++) {
    const char *d = json_string_value(json_array_get(ids, i));
    cleanup_free char *w = hv_xasprintf("config %s: rootfs.diff_ids[%zu]", img->config_digest, i);
    if (hv_digest_check(d, w, err) < 0)
      return -1;
    free(img->layers[i].diff_id);
    img->layers[i].diff_id = hv_xstrdup(d);
    v[i] = img->layers[i].diff_id;
  }
  char chain[72];
  hv_chain_id(v, img->n_layers, chain);
  free(img->chain_id);
  img->chain_id = hv_xstrdup(chain);
  return hv_image_config_parse(c, &img->cfg, err);
}

int hv_image_load_digest(struct hv_image_store *s, const char *digest, struct hv_image **out,
                         hv_error_t *err) {
  struct hv_image *img = hv_xmalloc0(sizeof *img);
  img->digest = hv_xstrdup(digest);
  cleanup_free char *mtext = NULL, *ctext = NULL;
  size_t mlen = 0, clen = 0;
  cleanup_free char *what = hv_xasprintf("manifest %s", digest);
  if (hv_blob_read(s, digest, -1, META_MAX, &mtext, &mlen, err) < 0 ||
      hv_manifest_parse(mtext, mlen, what, img, err) < 0 ||
      hv_blob_read(s, img->config_digest, img->config_size, META_MAX, &ctext, &clen, err) < 0 ||
      hv_image_attach_config(img, ctext, clen, err) < 0) {
    hv_image_free(img);
    return -1;
  }
  *out = img;
  return 0;
}

int hv_image_lookup(struct hv_image_store *s, const char *ref, struct hv_image **out,
                    hv_error_t *err) {
  cleanup_free char *digest = NULL;
  if (hv_refs_resolve(s, ref, &digest, err) < 0)
    return -1;
  if (hv_image_load_digest(s, digest, out, err) < 0)
    return hv_error_wrap(err, "image `%s`", ref);
  (*out)->ref = hv_xstrdup(ref);
  return 0;
}

const struct hv_image_config *hv_image_config(const struct hv_image *img) { return &img->cfg; }
const char *hv_image_digest(const struct hv_image *img) { return img->digest; }
const char *hv_image_chain_id(const struct hv_image *img) { return img->chain_id; }

void hv_image_free(struct hv_image *img) {
  if (!img)
    return;
  free(img->ref);
  free(img->digest);
  free(img->config_digest);
  free(img->chain_id);
  json_decref(img->manifest);
  json_decref(img->config);
  for (size_t i = 0; img->layers && i < img->n_layers; i++) {
    free(img->layers[i].digest);
    free(img->layers[i].diff_id);
    free(img->layers[i].media_type);
  }
  free(img->layers);
  hv_image_config_clear(&img->cfg);
  free(img);
}

int hv_layer_unpack_from_store(struct hv_image_store *s, const struct hv_layer_desc *l,
                               hv_error_t *err) {
  const char *dhex = hv_digest_hex(l->diff_id);
  struct stat st;
  if (fstatat(s->layers_fd, dhex, &st, AT_SYMLINK_NOFOLLOW) == 0)
    return 0;
  cleanup_close int bfd = openat(s->blobs_fd, hv_digest_hex(l->digest), O_RDONLY | O_CLOEXEC |
                                 O_NOFOLLOW);
  if (bfd < 0)
    return hv_error(err, errno, "layer %s: blob is missing from the store", l->digest);
  struct hv_tmp t = {0};
  if (hv_tmp_create(s, &t, err) < 0)
    return -1;
  int rc = -1;
  int dfd = -1;
  if (mkdirat(t.fd, "layer", 0755) < 0 ||
      (dfd = openat(t.fd, "layer", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
    rc = hv_error(err, errno, "create layer dir in `%s/tmp`", s->dir);
    goto out;
  }
  struct hv_layer_src src = {.fd = bfd};
  struct hv_layer_ingest li = {.digest = l->digest, .size = l->size, .diff_id = l->diff_id,
                               .tee_fd = -1, .unpack_fd = dfd,
                               .max_bytes = hv_env_u64("HVRUN_IMAGE_MAX_SIZE", 8ull << 30),
                               .max_entries = hv_env_u64("HVRUN_IMAGE_MAX_ENTRIES", 1u << 20)};
  if (hv_layer_ingest(&src, &li, err) < 0)
    goto out;
  if (renameat(t.fd, "layer", s->layers_fd, dhex) < 0 && errno != EEXIST && errno != ENOTEMPTY) {
    rc = hv_error(err, errno, "move layer %s into the store", l->diff_id);
    goto out;
  }
  rc = 0;
out:
  if (dfd >= 0)
    close(dfd);
  hv_tmp_release(s, &t);
  return rc;
}

int hv_image_ensure_layers(struct hv_image_store *s, const struct hv_image *img,
                           hv_error_t *err) {
  for (size_t i = 0; i < img->n_layers; i++)
    if (hv_layer_unpack_from_store(s, &img->layers[i], err) < 0)
      return -1;
  return 0;
}
