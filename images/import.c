/* import.c: `hvrun image import` — common machinery.
 *
 * Every import works in a private tmp dir: metadata and layer blobs are
 * verified (digest + size, diff id) into tmp/<id>/blobs, layers unpacked into
 * tmp/<id>/layers, and only when the whole image checked out are they
 * renamed into the store and the reference written (under refs.lock).  The
 * gc lock is held shared throughout, so prune cannot collect blobs between
 * commit and ref update.  Archives (oci-archive, docker-archive) are first
 * staged into the tmp dir with the same confined extractor, then imported
 * like a directory. */
#include "store_internal.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define META_MAX (16u << 20)

int hv_import_put_blob(struct hv_import_ctx *c, const char *text, size_t len, char digest[72],
                       hv_error_t *err) {
  hv_sha256_buf(text, len, digest);
  return hv_write_file_atomic(c->tblobs_fd, hv_digest_hex(digest), text, len, 0644, err);
}

int hv_import_meta_blob(struct hv_import_ctx *c, const char *digest, int64_t size, char **text,
                        size_t *len, hv_error_t *err) {
  if (hv_digest_check(digest, c->src_name, err) < 0)
    return -1;
  cleanup_free char *path = hv_xasprintf("blobs/sha256/%s", hv_digest_hex(digest));
  hv_error_t rerr = NULL;
  if (hv_read_at(c->srcfd, path, META_MAX, text, len, &rerr) < 0) {
    if (rerr->errno_ == ENOENT) {
      hv_error_release(&rerr);
      return hv_error(err, 0, "%s: blob %s is missing", c->src_name, digest);
    }
    *err = rerr;
    return hv_error_wrap(err, "%s", c->src_name);
  }
  char actual[72];
  hv_sha256_buf(*text, *len, actual);
  if (size >= 0 && (int64_t)*len != size)
    return hv_error(err, 0, "%s: blob %s has %zu bytes, its descriptor says %lld", c->src_name,
                    digest, *len, (long long)size);
  if (strcmp(actual, digest) != 0)
    return hv_error(err, 0, "%s: blob %s is corrupt: its content hashes to %s", c->src_name,
                    digest, actual);
  return hv_write_file_atomic(c->tblobs_fd, hv_digest_hex(digest), *text, *len, 0644, err);
}

const char *hv_layer_media_type_sniff(int fd) {
  unsigned char m[4] = {0};
  if (pread(fd, m, 4, 0) == 4) {
    if (m[0] == 0x1f && m[1] == 0x8b)
      return HV_MT_OCI_LAYER_GZ;
    if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
      return HV_MT_OCI_LAYER_ZST;
  }
  return HV_MT_OCI_LAYER;
}

static bool exists_at(int dirfd, const char *name) {
  struct stat st;
  return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int hv_import_layer(struct hv_import_ctx *c, const char *path, struct hv_layer_desc *l,
                    hv_error_t *err) {
  const char *bhex = l->digest ? hv_digest_hex(l->digest) : NULL;
  const char *dhex = l->diff_id ? hv_digest_hex(l->diff_id) : NULL;
  bool have_blob = bhex && (exists_at(c->s->blobs_fd, bhex) || exists_at(c->tblobs_fd, bhex));
  bool have_dir = dhex && (exists_at(c->s->layers_fd, dhex) || exists_at(c->tlayers_fd, dhex));
  if (have_blob && have_dir)
    return 0; /* already in the store (or earlier in this image): shared */

  cleanup_close int fd = *path ? hv_openat_beneath(c->srcfd, path, O_RDONLY, 0) : dup(c->srcfd);
  if (fd < 0) {
    if (errno == ENOENT)
      return hv_error(err, 0, "%s: %s%s is missing", c->src_name, l->digest ? "blob " : "",
                      l->digest ? l->digest : path);
    return hv_error(err, errno, "%s: open `%s`", c->src_name, path);
  }
  struct stat st, lst;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
    return hv_error(err, 0, "%s: `%s` is not a regular file", c->src_name, path);
  if (!l->media_type)
    l->media_type = hv_xstrdup(hv_layer_media_type_sniff(fd));
  /* A staged archive member we own can be moved instead of copied. */
  bool move = !have_blob && c->src_is_stage && fstatat(c->srcfd, path, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
              S_ISREG(lst.st_mode) && lst.st_ino == st.st_ino;
  static int serial;
  char partial[32];
  snprintf(partial, sizeof partial, "partial-%d-%d", getpid(), ++serial); /* forked workers */
  cleanup_close int tee = -1, dfd = -1;
  if (!have_blob && !move &&
      (tee = openat(c->tblobs_fd, partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
    return hv_error(err, errno, "create temp blob in `%s/tmp`", c->s->dir);
  if (!have_dir && (mkdirat(c->tlayers_fd, partial, 0755) < 0 ||
                    (dfd = openat(c->tlayers_fd, partial, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0))
    return hv_error(err, errno, "create temp layer dir in `%s/tmp`", c->s->dir);

  struct hv_layer_src src = {.fd = fd};
  struct hv_layer_ingest li = {.digest = l->digest, .size = l->digest ? l->size : -1,
                               .diff_id = l->diff_id, .tee_fd = tee, .unpack_fd = dfd,
                               .max_bytes = c->max_bytes, .max_entries = c->max_entries};
  if (hv_layer_ingest(&src, &li, err) < 0)
    return -1;
  const char *out_hex = hv_digest_hex(li.out_digest);
  if (tee >= 0 && renameat(c->tblobs_fd, partial, c->tblobs_fd, out_hex) < 0)
    return hv_error(err, errno, "rename temp blob");
  if (move && !exists_at(c->tblobs_fd, out_hex) &&
      renameat(c->srcfd, path, c->tblobs_fd, out_hex) < 0)
    return hv_error(err, errno, "move staged blob `%s`", path);
  if (dfd >= 0 && renameat(c->tlayers_fd, partial, c->tlayers_fd,
                           hv_digest_hex(li.out_diff_id)) < 0 &&
      errno != EEXIST && errno != ENOTEMPTY)
    return hv_error(err, errno, "rename temp layer dir");
  if (!l->digest) {
    l->digest = hv_xstrdup(li.out_digest);
    l->size = (int64_t)li.out_size;
  }
  if (!l->diff_id)
    l->diff_id = hv_xstrdup(li.out_diff_id);
  return 0;
}

/* One forked worker per layer, at most `jobs` at a time: creating files is
 * what unpacking spends its time on, and layers are independent (each has
 * its own temp dir, renamed into place only at commit).  A worker reports
 * failure as one message line on its pipe. */
struct worker { pid_t pid; int fd; };

static int reap(struct worker *w, hv_error_t *err) {
  char msg[4096];
  ssize_t n = 0, r;
  while (n < (ssize_t)sizeof msg - 1 && (r = read(w->fd, msg + n, sizeof msg - 1 - (size_t)n)) != 0) {
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      break;
    n += r;
  }
  msg[n] = 0;
  close(w->fd);
  int status = 0;
  while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  return hv_error(err, 0, "%s", n ? msg : "layer worker died");
}

int hv_import_manifest_layers(struct hv_import_ctx *c, hv_error_t *err) {
  struct hv_image *img = c->img;
  size_t jobs = (size_t)hv_env_u64("HVRUN_IMAGE_JOBS", (uint64_t)sysconf(_SC_NPROCESSORS_ONLN));
  if (jobs > 8)
    jobs = 8;
  if (jobs <= 1 || img->n_layers <= 1) {
    for (size_t i = 0; i < img->n_layers; i++) {
      cleanup_free char *path = hv_xasprintf("blobs/sha256/%s", hv_digest_hex(img->layers[i].digest));
      if (hv_import_layer(c, path, &img->layers[i], err) < 0)
        return -1;
    }
    return 0;
  }
  struct worker *w = hv_xmalloc0(jobs * sizeof *w);
  size_t running = 0, next = 0;
  int rc = 0;
  fflush(NULL);
  while (next < img->n_layers || running) {
    if (rc == 0 && next < img->n_layers && running < jobs) {
      int p[2];
      if (pipe2(p, O_CLOEXEC) < 0) {
        rc = hv_error(err, errno, "pipe");
        continue;
      }
      pid_t pid = fork();
      if (pid < 0) {
        rc = hv_error(err, errno, "fork");
        close(p[0]);
        close(p[1]);
        continue;
      }
      if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(p[0]);
        hv_error_t werr = NULL;
        struct hv_layer_desc *l = &img->layers[next];
        cleanup_free char *path = hv_xasprintf("blobs/sha256/%s", hv_digest_hex(l->digest));
        if (hv_import_layer(c, path, l, &werr) < 0) {
          cleanup_free char *m = werr->errno_ ? hv_xasprintf("%s: %s", werr->msg,
                                                             strerror(werr->errno_))
                                              : hv_xstrdup(werr->msg);
          if (write(p[1], m, strlen(m)) < 0)
            _exit(2);
          _exit(1);
        }
        _exit(0);
      }
      close(p[1]);
      w[running++] = (struct worker){pid, p[0]};
      next++;
      continue;
    }
    if (!running)
      break;
    /* Reap the oldest; the others keep working meanwhile. */
    struct worker done = w[0];
    memmove(w, w + 1, (running - 1) * sizeof *w);
    running--;
    if (reap(&done, err) < 0)
      rc = -1;
  }
  free(w);
  return rc;
}

/* A plain rootfs tarball becomes a one-layer image with a minimal config. */
static int import_rootfs(struct hv_import_ctx *c, const char *path, hv_error_t *err) {
  c->srcfd = open(path, O_RDONLY | O_CLOEXEC);
  if (c->srcfd < 0)
    return hv_error(err, errno, "open `%s`", path);
  struct hv_layer_desc l = {0};
  struct hv_image *img = c->img = hv_xmalloc0(sizeof *img);
  img->layers = hv_xmalloc0(sizeof *img->layers);
  img->n_layers = 1;
  int rc = hv_import_layer(c, "", &l, err);
  img->layers[0] = l;
  if (rc < 0)
    return -1;
  cleanup_json json_t *cfg = json_pack(
      "{s:s,s:s,s:{s:s,s:[s]},s:{s:[s],s:[s]}}", "architecture", "amd64", "os", "linux",
      "rootfs", "type", "layers", "diff_ids", l.diff_id, "config", "Env",
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "Cmd", "/bin/sh");
  cleanup_free char *ctext = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
  char cdig[72], mdig[72];
  if (hv_import_put_blob(c, ctext, strlen(ctext), cdig, err) < 0)
    return -1;
  cleanup_json json_t *man = json_pack(
      "{s:i,s:s,s:{s:s,s:s,s:I},s:[{s:s,s:s,s:I}]}", "schemaVersion", 2, "mediaType",
      HV_MT_OCI_MANIFEST, "config", "mediaType", HV_MT_OCI_CONFIG, "digest", cdig, "size",
      (json_int_t)strlen(ctext), "layers", "mediaType", l.media_type, "digest", l.digest, "size",
      (json_int_t)l.size);
  cleanup_free char *mtext = json_dumps(man, JSON_COMPACT | JSON_SORT_KEYS);
  if (hv_import_put_blob(c, mtext, strlen(mtext), mdig, err) < 0)
    return -1;
  img->digest = hv_xstrdup(mdig);
  return 0;
}

/* Extract an archive into tmp/<id>/stage with the confined extractor. */
static int stage_archive(struct hv_import_ctx *c, const char *path, hv_error_t *err) {
  if (mkdirat(c->t.fd, "stage", 0755) < 0 ||
      (c->srcfd = openat(c->t.fd, "stage", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return hv_error(err, errno, "create staging dir in `%s/tmp`", c->s->dir);
  c->src_is_stage = true;
  struct archive *a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_filter_xz(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_format_tar(a);
  int rc;
  if (archive_read_open_filename(a, path, 1 << 17) != ARCHIVE_OK) {
    rc = hv_error(err, 0, "archive `%s`: %s", path, archive_error_string(a));
  } else {
    cleanup_free char *what = hv_xasprintf("archive `%s`", path);
    /* The archive holds every layer: allow several layers' worth. */
    struct hv_unpack_opts o = {.max_bytes = c->max_bytes > UINT64_MAX / 4 ? UINT64_MAX
                                                                          : c->max_bytes * 4,
                               .max_entries = c->max_entries, .overlay = false, .what = what};
    struct hv_unpack_stats st = {0};
    rc = hv_unpack_archive(a, c->srcfd, &o, &st, err);
    if (rc == 0 && st.entries == 0)
      rc = hv_error(err, 0, "archive `%s`: empty or not a tar archive", path);
  }
  archive_read_free(a);
  return rc;
}

static int commit(struct hv_import_ctx *c, const char *ref, hv_error_t *err) {
  int fds[2][2] = {{c->tblobs_fd, c->s->blobs_fd}, {c->tlayers_fd, c->s->layers_fd}};
  for (int k = 0; k < 2; k++) {
    int dup_fd = dup(fds[k][0]);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d)
      return hv_error(err, errno, "list `%s/tmp`", c->s->dir);
    struct dirent *e;
    while ((e = readdir(d))) {
      if (strlen(e->d_name) != HV_DIGEST_HEX || exists_at(fds[k][1], e->d_name))
        continue; /* partial leftovers, or another import got there first */
      if (renameat(fds[k][0], e->d_name, fds[k][1], e->d_name) < 0 && errno != EEXIST &&
          errno != ENOTEMPTY) {
        int en = errno;
        closedir(d);
        return hv_error(err, en, "move `%s` into the store", e->d_name);
      }
    }
    closedir(d);
  }
  cleanup_close int lock = -1;
  if (hv_store_lock(c->s, "refs.lock", HV_LOCK_EX, &lock, err) < 0)
    return -1;
  cleanup_json json_t *refs = NULL;
  if (hv_refs_load(c->s, &refs, err) < 0)
    return -1;
  json_object_set_new(refs, ref, json_string(c->img->digest));
  return hv_refs_save(c->s, refs, err);
}

static int detect_and_import(struct hv_import_ctx *c, const char *path, hv_error_t *err) {
  if (exists_at(c->srcfd, "index.json"))
    return hv_import_oci(c, err);
  if (exists_at(c->srcfd, "manifest.json"))
    return hv_import_docker(c, err);
  return hv_error(err, 0,
                  "`%s`: not an OCI image layout, oci-archive or docker-archive (no index.json "
                  "or manifest.json); use --rootfs for a plain rootfs tarball", path);
}

int hv_image_import(struct hv_image_store *s, const char *path, const char *name,
                    const struct hv_image_import_opts *opts, char **digest, char **ref_out,
                    hv_error_t *err) {
  static const struct hv_image_import_opts defaults = {0};
  if (!opts)
    opts = &defaults;
  cleanup_free char *ref = NULL;
  if (name && hv_ref_normalize(name, &ref, err) < 0)
    return -1;
  struct stat st;
  if (stat(path, &st) < 0)
    return hv_error(err, errno, "import `%s`", path);
  if (opts->rootfs && !S_ISREG(st.st_mode))
    return hv_error(err, 0, "import `%s`: --rootfs wants a tarball", path);
  if (opts->rootfs && !ref)
    return hv_error(err, 0, "import `%s`: a rootfs tarball needs a NAME[:TAG]", path);

  cleanup_close int gclock = -1;
  if (hv_store_lock(s, "gc.lock", HV_LOCK_SH, &gclock, err) < 0)
    return -1;
  hv_tmp_clean(s);
  struct hv_import_ctx c = {.s = s, .o = opts, .tblobs_fd = -1, .tlayers_fd = -1, .srcfd = -1,
                            .src_name = path};
  c.max_bytes = opts->max_bytes ? opts->max_bytes
                                : hv_env_u64("HVRUN_IMAGE_MAX_SIZE", 8ull << 30);
  c.max_entries = opts->max_entries ? opts->max_entries
                                    : hv_env_u64("HVRUN_IMAGE_MAX_ENTRIES", 1u << 20);
  int rc = -1;
  if (hv_tmp_create(s, &c.t, err) < 0)
    return -1;
  if (mkdirat(c.t.fd, "blobs", 0700) < 0 || mkdirat(c.t.fd, "layers", 0700) < 0 ||
      (c.tblobs_fd = openat(c.t.fd, "blobs", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
      (c.tlayers_fd = openat(c.t.fd, "layers", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
    rc = hv_error(err, errno, "create temp dirs in `%s/tmp`", s->dir);
    goto out;
  }
  if (opts->rootfs) {
    if (import_rootfs(&c, path, err) < 0)
      goto out;
  } else if (S_ISDIR(st.st_mode)) {
    if ((c.srcfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
      rc = hv_error(err, errno, "open `%s`", path);
      goto out;
    }
    if (detect_and_import(&c, path, err) < 0)
      goto out;
  } else {
    if (stage_archive(&c, path, err) < 0 || detect_and_import(&c, path, err) < 0)
      goto out;
  }
  if (!ref) {
    if (!c.default_name) {
      rc = hv_error(err, 0, "import `%s`: the image names no reference; give NAME[:TAG]", path);
      goto out;
    }
    if (hv_ref_normalize(c.default_name, &ref, err) < 0) {
      hv_error_wrap(err, "import `%s`: name recorded in the image", path);
      goto out;
    }
  }
  if (commit(&c, ref, err) < 0)
    goto out;
  if (digest)
    *digest = hv_xstrdup(c.img->digest);
  if (ref_out)
    *ref_out = hv_xstrdup(ref);
  rc = 0;
out:
  if (c.srcfd >= 0)
    close(c.srcfd);
  if (c.tblobs_fd >= 0)
    close(c.tblobs_fd);
  if (c.tlayers_fd >= 0)
    close(c.tlayers_fd);
  hv_tmp_release(s, &c.t);
  hv_image_free(c.img);
  free(c.default_name);
  return rc;
}
