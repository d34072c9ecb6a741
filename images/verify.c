/* verify.c: `image verify` (fsck) plus `image ls` / `image inspect`.
 * verify re-hashes every blob in the store against its name, and checks
 * that each named image's manifest, config and layer blobs are present with
 * the sizes their descriptors give, and compares every unpacked layer dir
 * with its blob entry by entry (type, mode, owner, size, content, link
 * targets, whiteouts).  Missing layer dirs are only noted: they are
 * rebuilt from the blobs on next use; a damaged one can be removed
 * (rm -rf <store>/layers/<hex>) to have it rebuilt. */
#include "store_internal.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <archive_entry.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static int64_t blob_size(struct hv_image_store *s, const char *digest) {
  struct stat st;
  const char *hex = hv_digest_hex(digest);
  if (!hex || fstatat(s->blobs_fd, hex, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
    return -1;
  return st.st_size;
}


struct cmp_ctx {
  int rootfd;
  FILE *out;
  const char *diff_id;
  size_t bad, reported;
  char buf[1 << 16];
};

static void differs(struct cmp_ctx *c, const char *path, const char *what) {
  c->bad++;
  if (c->reported++ < 10)
    fprintf(c->out, "layer dir %s: `%s`: %s\n", c->diff_id, path, what);
}

static bool same_content(struct cmp_ctx *c, struct archive *a, int fd) {
  const void *blk;
  size_t len;
  la_int64_t off;
  bool same = true;
  int r;
  while ((r = archive_read_data_block(a, &blk, &len, &off)) == ARCHIVE_OK) {
    for (size_t done = 0; same && done < len;) {
      size_t n = len - done < sizeof c->buf ? len - done : sizeof c->buf;
      ssize_t got = pread(fd, c->buf, n, off + (off_t)done);
      same = got == (ssize_t)n && !memcmp(c->buf, (const char *)blk + done, n);
      done += n;
    }
  }
  return same && r == ARCHIVE_EOF;
}

static void compare_entry(struct cmp_ctx *c, struct archive *a, struct archive_entry *e,
                          const char *path) {
  char parent[PATH_MAX];
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  snprintf(parent, sizeof parent, "%.*s", slash ? (int)(slash - path) : 0, path);
  cleanup_close int pfd = hv_openat_beneath(c->rootfd, parent, O_PATH | O_DIRECTORY, 0);
  if (pfd < 0)
    return differs(c, path, "parent directory missing");
  if (!strcmp(base, ".wh..wh..opq")) {
    if (!hv_is_opaque_at(c->rootfd, *parent ? parent : "."))
      differs(c, path, "directory is not marked opaque");
    return;
  }
  if (!strncmp(base, ".wh.", 4)) {
    if (!hv_is_whiteout_at(pfd, base + 4))
      differs(c, path, "whiteout missing");
    return;
  }
  struct stat st;
  if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return differs(c, path, "missing");
  if (archive_entry_hardlink(e)) {
    char target[PATH_MAX];
    const char *why;
    struct stat ts;
    cleanup_close int tfd = -1;
    if (hv_clean_path(archive_entry_hardlink(e), target, sizeof target, &why) < 0 ||
        (tfd = hv_openat_beneath(c->rootfd, target, O_PATH | O_NOFOLLOW, 0)) < 0 ||
        fstat(tfd, &ts) < 0 || ts.st_ino != st.st_ino)
      differs(c, path, "hardlink does not point at its target");
    return;
  }
  mode_t type = archive_entry_filetype(e);
  if ((st.st_mode & S_IFMT) != type)
    return differs(c, path, "file type differs");
  if (type != AE_IFLNK && (st.st_mode & 07777) != (archive_entry_perm(e) & 07777))
    differs(c, path, "mode differs");
  if (geteuid() == 0 && (st.st_uid != (uid_t)archive_entry_uid(e) ||
                         st.st_gid != (gid_t)archive_entry_gid(e)))
    differs(c, path, "owner differs");
  if (type == AE_IFLNK) {
    ssize_t n = readlinkat(pfd, base, c->buf, sizeof c->buf - 1);
    const char *want = archive_entry_symlink(e);
    if (n < 0 || !want || (size_t)n != strlen(want) || memcmp(c->buf, want, (size_t)n))
      differs(c, path, "symlink target differs");
  } else if (type == AE_IFREG) {
    cleanup_close int fd = openat(pfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (st.st_size != archive_entry_size(e))
      differs(c, path, "size differs");
    else if (fd < 0 || !same_content(c, a, fd))
      differs(c, path, "content differs");
  } else if ((type == AE_IFCHR || type == AE_IFBLK) && st.st_rdev != archive_entry_rdev(e)) {
    differs(c, path, "device number differs");
  }
}

static int compare_visit(struct archive *a, void *ud, hv_error_t *err) {
  struct cmp_ctx *c = ud;
  for (;;) {
    struct archive_entry *e;
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF)
      return 0;
    if (r < ARCHIVE_WARN)
      return hv_error(err, 0, "layer %s: %s", c->diff_id, archive_error_string(a));
    char path[PATH_MAX];
    const char *why;
    if (hv_clean_path(archive_entry_pathname(e), path, sizeof path, &why) < 0)
      return hv_error(err, 0, "layer %s: entry `%s`: %s", c->diff_id, archive_entry_pathname(e),
                      why);
    if (*path)
      compare_entry(c, a, e, path);
  }
}

/* Compare layers/<diff hex> with the tar in its blob; returns the number of
 * differences (or 1 if the blob cannot be read). */
static size_t check_layer_dir(struct hv_image_store *s, const struct hv_layer_desc *l, FILE *out) {
  cleanup_close int rootfd = openat(s->layers_fd, hv_digest_hex(l->diff_id),
                                    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  cleanup_close int bfd = openat(s->blobs_fd, hv_digest_hex(l->digest), O_RDONLY | O_CLOEXEC);
  if (rootfd < 0 || bfd < 0)
    return 0; /* missing dir: rebuilt on use; missing blob: reported already */
  struct cmp_ctx *c = hv_xmalloc0(sizeof *c);
  c->rootfd = rootfd;
  c->out = out;
  c->diff_id = l->diff_id;
  struct hv_layer_src src = {.fd = bfd};
  struct hv_layer_ingest li = {.digest = l->digest, .size = l->size, .diff_id = l->diff_id,
                               .tee_fd = -1, .unpack_fd = -1, .max_bytes = UINT64_MAX >> 2,
                               .max_entries = UINT64_MAX, .visit = compare_visit,
                               .visit_ctx = c};
  hv_error_t err = NULL;
  if (hv_layer_ingest(&src, &li, &err) < 0) {
    fprintf(out, "layer %s: %s\n", l->diff_id, err->msg);
    hv_error_release(&err);
    c->bad++;
  }
  if (c->reported > 10)
    fprintf(out, "layer dir %s: ... %zu differences in all\n", l->diff_id, c->bad);
  size_t bad = c->bad;
  free(c);
  return bad;
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
  size_t nimages = 0, ndirs = 0;
  cleanup_json json_t *dirs_checked = json_object();
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
      else if (!json_object_get(dirs_checked, l->diff_id) && sz == l->size) {
        json_object_set_new(dirs_checked, l->diff_id, json_true());
        bad += check_layer_dir(s, l, out);
        ndirs++;
      }
    }
    hv_image_free(img);
  }
  fprintf(out, "checked %zu blobs, %zu images, %zu layer dirs: %zu problem%s\n", nblobs, nimages,
          ndirs, bad,
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
