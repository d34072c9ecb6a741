/* verify.c: `image verify` (fsck) plus `image ls` / `image inspect`.
 * verify re-hashes every blob in the store against its name, and checks
 * that each named image's manifest, config and layer blobs are present with
 * the sizes their descriptors give.  Missing unpacked layer dirs are only
 * noted: they are rebuilt from the blobs on next use. */
#include "store_internal.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static int64_t blob_size(struct hv_image_store *s, const char *digest) {
  struct stat st;
  const char *hex = hv_digest_hex(digest);
  if (!hex || fstatat(s->blobs_fd, hex, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
    return -1;
  return st.st_size;
}

int hv_image_verify(struct hv_image_store *s, FILE *out, size_t *problems, hv_error_t *err) {
  cleanup_close int lock = -1;
  if (hv_store_lock(s, "gc.lock", HV_LOCK_SH, &lock, err) < 0)
    return -1;
  size_t bad = 0, nblobs = 0;
  cleanup_json json_t *corrupt = json_object();
  DIR *d = fdopendir(dup(s->blobs_fd));
  if (!d)
    return hv_error(err, errno, "list `%s/blobs/sha256`", s->dir);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    nblobs++;
    cleanup_free char *name = hv_xasprintf("sha256:%s", e->d_name);
    if (!hv_digest_hex(name)) {
      fprintf(out, "stray file blobs/sha256/%s (not a digest)\n", e->d_name);
      bad++;
      continue;
    }
    cleanup_close int fd = openat(s->blobs_fd, e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    char actual[72];
    hv_error_t herr = NULL;
    if (fd < 0 || hv_hash_fd(fd, actual, NULL, &herr) < 0) {
      hv_error_release(&herr);
      fprintf(out, "unreadable blob %s\n", name);
      bad++;
      json_object_set_new(corrupt, name, json_true());
    } else if (strcmp(actual, name) != 0) {
      fprintf(out, "corrupt blob %s: content hashes to %s\n", name, actual);
      bad++;
      json_object_set_new(corrupt, name, json_true());
    }
  }
  closedir(d);

  cleanup_json json_t *refs = NULL;
  if (hv_refs_load(s, &refs, err) < 0)
    return -1;
  const char *ref;
  json_t *v;
  size_t nimages = 0;
  json_object_foreach(refs, ref, v) {
    nimages++;
    const char *digest = json_string_value(v);
    if (json_object_get(corrupt, digest ? digest : ""))
      continue; /* already reported */
    struct hv_image *img = NULL;
    hv_error_t lerr = NULL;
    if (hv_image_load_digest(s, digest ? digest : "", &img, &lerr) < 0) {
      fprintf(out, "image %s: %s\n", ref, lerr->msg);
      hv_error_release(&lerr);
      bad++;
      continue;
    }
    for (size_t i = 0; i < img->n_layers; i++) {
      const struct hv_layer_desc *l = &img->layers[i];
      int64_t sz = blob_size(s, l->digest);
      if (sz < 0) {
        fprintf(out, "image %s: layer blob %s is missing\n", ref, l->digest);
        bad++;
      } else if (sz != l->size) {
        fprintf(out, "image %s: layer blob %s has %lld bytes, the manifest says %lld\n", ref,
                l->digest, (long long)sz, (long long)l->size);
        bad++;
      }
      struct stat st;
      if (fstatat(s->layers_fd, hv_digest_hex(l->diff_id), &st, AT_SYMLINK_NOFOLLOW) < 0)
        fprintf(out, "note: image %s: layer %s is not unpacked (rebuilt on use)\n", ref,
                l->diff_id);
    }
    hv_image_free(img);
  }
  fprintf(out, "checked %zu blobs, %zu images: %zu problem%s\n", nblobs, nimages, bad,
          bad == 1 ? "" : "s");
  *problems = bad;
  return 0;
}

static int64_t image_size(const struct hv_image *img) {
  int64_t n = img->config_size + img->manifest_size;
  for (size_t i = 0; i < img->n_layers; i++)
    n += img->layers[i].size;
  return n;
}

int hv_image_list(struct hv_image_store *s, json_t **out, hv_error_t *err) {
  cleanup_json json_t *refs = NULL;
  if (hv_refs_load(s, &refs, err) < 0)
    return -1;
  json_t *arr = json_array();
  const char *ref;
  json_t *v;
  json_object_foreach(refs, ref, v) { /* jansson keeps insertion order; refs are sorted on save */
    const char *colon = strrchr(ref, ':');
    cleanup_free char *name = strndup(ref, colon ? (size_t)(colon - ref) : strlen(ref));
    json_t *row = json_pack("{s:s,s:s,s:s}", "name", name, "tag", colon ? colon + 1 : "",
                            "digest", json_string_value(v) ? json_string_value(v) : "");
    struct hv_image *img = NULL;
    hv_error_t lerr = NULL;
    if (hv_image_load_digest(s, json_string_value(v) ?: "", &img, &lerr) == 0) {
      json_object_set_new(row, "size", json_integer(image_size(img)));
      const char *created = json_string_value(json_object_get(img->config, "created"));
      json_object_set_new(row, "created", created ? json_string(created) : json_null());
      json_object_set_new(row, "layers", json_integer((json_int_t)img->n_layers));
    } else {
      json_object_set_new(row, "error", json_string(lerr->msg));
      hv_error_release(&lerr);
    }
    hv_image_free(img);
    json_array_append_new(arr, row);
  }
  *out = arr;
  return 0;
}

int hv_image_inspect(struct hv_image_store *s, const char *ref, json_t **out, hv_error_t *err) {
  struct hv_image *img = NULL;
  if (hv_image_lookup(s, ref, &img, err) < 0)
    return -1;
  cleanup_json json_t *refs = NULL;
  if (hv_refs_load(s, &refs, err) < 0) {
    hv_image_free(img);
    return -1;
  }
  json_t *names = json_array(), *layers = json_array();
  const char *k;
  json_t *v;
  json_object_foreach(refs, k, v)
    if (!strcmp(json_string_value(v) ?: "", img->digest))
      json_array_append_new(names, json_string(k));
  for (size_t i = 0; i < img->n_layers; i++) {
    const struct hv_layer_desc *l = &img->layers[i];
    struct stat st;
    bool unpacked = fstatat(s->layers_fd, hv_digest_hex(l->diff_id), &st, 0) == 0;
    json_array_append_new(layers, json_pack("{s:s,s:s,s:I,s:s,s:b}", "digest", l->digest,
                                            "mediaType", l->media_type, "size",
                                            (json_int_t)l->size, "diffId", l->diff_id,
                                            "unpacked", unpacked));
  }
  *out = json_pack("{s:o,s:s,s:s,s:s,s:O,s:o,s:I,s:s}", "references", names, "digest",
                   img->digest, "mediaType",
                   json_string_value(json_object_get(img->manifest, "mediaType"))
                       ?: HV_MT_OCI_MANIFEST,
                   "configDigest", img->config_digest, "config", img->config, "layers", layers,
                   "size", (json_int_t)image_size(img), "chainId", img->chain_id);
  hv_image_free(img);
  return *out ? 0 : hv_error(err, 0, "inspect `%s`: encode", ref);
}
