/* gc.c: `image rm` and `image prune` — reference counting by mark and
 * sweep.  A blob, unpacked layer or erofs disk stays as long as any named
 * image (or a live container rootfs lease) uses it, so layers shared by
 * several images survive the removal of one of them.  Runs with gc.lock
 * exclusive (no import or mount in flight) and refs.lock held. */
#include "store_internal.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static void mark(json_t *set, const char *digest) {
  const char *hex = hv_digest_hex(digest);
  if (hex)
    json_object_set_new(set, hex, json_true());
}

static int mark_image(struct hv_image_store *s, const char *digest, json_t *blobs, json_t *layers,
                      json_t *erofs, hv_error_t *err) {
  struct hv_image *img = NULL;
  mark(blobs, digest);
  if (hv_image_load_digest(s, digest, &img, err) < 0)
    return hv_error_wrap(err, "image %s is damaged (see `hvrun image verify`); nothing removed",
                         digest);
  mark(blobs, img->config_digest);
  for (size_t i = 0; i < img->n_layers; i++) {
    mark(blobs, img->layers[i].digest);
    mark(layers, img->layers[i].diff_id);
  }
  mark(erofs, img->chain_id);
  hv_image_free(img);
  return 0;
}

/* Leases: leases/<hex>.json = {"scratch": dir, "image": digest}; live while
 * the scratch dir exists. */
static int mark_leases(struct hv_image_store *s, json_t *blobs, json_t *layers, json_t *erofs,
                       size_t *stale, hv_error_t *err) {
  cleanup_close int lfd = openat(s->dirfd, "leases", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lfd < 0)
    return 0;
  DIR *d = fdopendir(dup(lfd));
  if (!d)
    return 0;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)) && rc == 0) {
    if (e->d_name[0] == '.')
      continue;
    cleanup_free char *text = NULL;
    size_t len;
    hv_error_t ignored = NULL;
    if (hv_read_at(lfd, e->d_name, 65536, &text, &len, &ignored) < 0) {
      hv_error_release(&ignored);
      continue;
    }
    cleanup_json json_t *j = json_loadb(text, len, 0, NULL);
    const char *scratch = json_string_value(json_object_get(j, "scratch"));
    const char *image = json_string_value(json_object_get(j, "image"));
    struct stat st;
    if (scratch && image && stat(scratch, &st) == 0) {
      rc = mark_image(s, image, blobs, layers, erofs, err);
    } else {
      unlinkat(lfd, e->d_name, 0);
      (*stale)++;
    }
  }
  closedir(d);
  return rc;
}

/* Remove every entry of dirfd not in `keep` (keyed by name minus `suffix`). */
static void sweep(int dirfd, json_t *keep, const char *suffix, size_t *count, uint64_t *bytes) {
  DIR *d = fdopendir(dup(dirfd));
  if (!d)
    return;
  struct dirent *e;
  size_t sl = suffix ? strlen(suffix) : 0;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    char key[256];
    snprintf(key, sizeof key, "%s", e->d_name);
    size_t kl = strlen(key);
    if (sl && kl > sl && !strcmp(key + kl - sl, suffix))
      key[kl - sl] = 0;
    if (json_object_get(keep, key))
      continue;
    struct stat st;
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
      *bytes += (uint64_t)st.st_size;
    if (hv_rm_rf_at(dirfd, e->d_name) == 0)
      (*count)++;
  }
  closedir(d);
}

int hv_gc_locked(struct hv_image_store *s, struct hv_image_prune_report *r, hv_error_t *err) {
  struct hv_image_prune_report local = {0};
  if (!r)
    r = &local;
  memset(r, 0, sizeof *r);
  cleanup_json json_t *refs = NULL;
  if (hv_refs_load(s, &refs, err) < 0)
    return -1;
  cleanup_json json_t *blobs = json_object(), *layers = json_object(), *erofs = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(refs, k, v) {
    if (mark_image(s, json_string_value(v), blobs, layers, erofs, err) < 0)
      return -1;
  }
  if (mark_leases(s, blobs, layers, erofs, &r->leases, err) < 0)
    return -1;
  sweep(s->blobs_fd, blobs, NULL, &r->blobs, &r->bytes);
  sweep(s->layers_fd, layers, NULL, &r->layers, &r->bytes);
  cleanup_close int efd = openat(s->dirfd, "erofs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (efd >= 0)
    sweep(efd, erofs, ".erofs", &r->erofs, &r->bytes);
  r->tmp = (size_t)hv_tmp_clean(s);
  /* refs.json.tmp.<pid> of a writer killed mid-update (we hold refs.lock). */
  DIR *d = fdopendir(dup(s->dirfd));
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)))
      if (!strncmp(e->d_name, "refs.json.tmp.", 14) && unlinkat(s->dirfd, e->d_name, 0) == 0)
        r->tmp++;
    closedir(d);
  }
  return 0;
}

static int lock_both(struct hv_image_store *s, int *gc, int *refs, hv_error_t *err) {
  if (hv_store_lock(s, "gc.lock", HV_LOCK_EX, gc, err) < 0)
    return -1;
  return hv_store_lock(s, "refs.lock", HV_LOCK_EX, refs, err);
}

int hv_image_prune(struct hv_image_store *s, struct hv_image_prune_report *r, hv_error_t *err) {
  cleanup_close int gc = -1, refs = -1;
  if (lock_both(s, &gc, &refs, err) < 0)
    return -1;
  return hv_gc_locked(s, r, err);
}

int hv_image_remove(struct hv_image_store *s, const char *ref, hv_error_t *err) {
  cleanup_close int gc = -1, rl = -1;
  if (lock_both(s, &gc, &rl, err) < 0)
    return -1;
  cleanup_json json_t *refs = NULL;
  if (hv_refs_load(s, &refs, err) < 0)
    return -1;
  cleanup_free char *canon = NULL;
  hv_error_t nerr = NULL;
  if (hv_ref_normalize(ref, &canon, &nerr) == 0 && json_object_get(refs, canon)) {
    json_object_del(refs, canon);
  } else {
    hv_error_release(&nerr);
    cleanup_free char *digest = NULL;
    if (hv_refs_resolve(s, ref, &digest, err) < 0)
      return -1;
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(refs, tmp, k, v) {
      if (!strcmp(json_string_value(v), digest))
        json_object_del(refs, k);
    }
  }
  if (hv_refs_save(s, refs, err) < 0)
    return -1;
  return hv_gc_locked(s, NULL, err);
}
