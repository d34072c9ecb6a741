/* layer.c: ingest one layer blob in a single pass.
 *
 *   source bytes --(sha256 = digest, size, tee into the store)-->
 *   archive A (decompress: gzip/zstd/xz/bzip2/none, "raw" format) -->
 *   (sha256 = diff id, uncompressed byte limit) -->
 *   archive B (tar) --> hv_unpack_archive()
 *
 * So the blob is read once, and digest, size and diff id are all checked
 * before anything it produced is renamed into the store. */
#include "store_internal.h"
#include <archive_entry.h>
#include <errno.h>
#include <string.h>

#define BUF_SIZE (1 << 17)

struct pipe_ctx {
  struct hv_layer_src *src;
  struct hv_layer_ingest *li;
  struct archive *a; /* decompressor */
  struct hv_sha256 zhash, uhash;
  uint64_t zbytes, ubytes;
  bool src_error, too_big, over_limit;
  int src_errno;
  char zbuf[BUF_SIZE], ubuf[BUF_SIZE];
};

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static ssize_t src_read(struct pipe_ctx *p, char *buf, size_t n) {
  ssize_t r;
  if (p->src->outer) {
    r = archive_read_data(p->src->outer, buf, n);
    if (r < 0) {
      p->src_error = true;
      return -1;
    }
  } else {
    do
      r = read(p->src->fd, buf, n);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
      p->src_error = true;
      p->src_errno = errno;
      return -1;
    }
  }
  if (r == 0)
    return 0;
  hv_sha256_update(&p->zhash, buf, (size_t)r);
  p->zbytes += (uint64_t)r;
  if (p->li->size >= 0 && p->zbytes > (uint64_t)p->li->size) {
    p->too_big = true; /* more bytes than the descriptor promised */
    return -1;
  }
  if (p->li->tee_fd >= 0 && write_all(p->li->tee_fd, buf, (size_t)r) < 0) {
    p->src_error = true;
    p->src_errno = errno;
    return -1;
  }
  return r;
}

static la_ssize_t a_read_cb(struct archive *a, void *ud, const void **buf) {
  (void)a;
  struct pipe_ctx *p = ud;
  *buf = p->zbuf;
  return src_read(p, p->zbuf, sizeof p->zbuf);
}

static la_ssize_t b_read_cb(struct archive *b, void *ud, const void **buf) {
  (void)b;
  struct pipe_ctx *p = ud;
  la_ssize_t r = archive_read_data(p->a, p->ubuf, sizeof p->ubuf);
  if (r <= 0)
    return r;
  hv_sha256_update(&p->uhash, p->ubuf, (size_t)r);
  p->ubytes += (uint64_t)r;
  /* The decompressed stream bounds the work a gzip bomb can cause, whatever
   * the tar headers claim. */
  if (p->ubytes > p->li->max_bytes + (1 << 20)) {
    p->over_limit = true;
    return -1;
  }
  *buf = p->ubuf;
  return r;
}

bool hv_layer_media_type_ok(const char *mt) {
  static const char *ok[] = {
      HV_MT_OCI_LAYER, HV_MT_OCI_LAYER_GZ, HV_MT_OCI_LAYER_ZST, HV_MT_DOCKER_LAYER,
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  };
  for (size_t i = 0; mt && i < sizeof ok / sizeof ok[0]; i++)
    if (!strcmp(mt, ok[i]))
      return true;
  return false;
}

static const char *label(const struct hv_layer_ingest *li) {
  return li->digest ? li->digest : "(rootfs tarball)";
}

static int source_error(struct pipe_ctx *p, const char *stage, hv_error_t *err) {
  const char *what = label(p->li);
  if (p->too_big)
    return hv_error(err, 0, "layer %s: blob is larger than its descriptor's %lld bytes", what,
                    (long long)p->li->size);
  if (p->over_limit)
    return hv_error(err, 0,
                    "layer %s: more than %llu bytes uncompressed (limit; see --max-size)", what,
                    (unsigned long long)p->li->max_bytes);
  if (p->src_error)
    return hv_error(err, p->src_errno, "layer %s: read blob%s%s", what,
                    p->src->outer ? ": " : "",
                    p->src->outer ? archive_error_string(p->src->outer) : "");
  if (p->li->size >= 0 && p->zbytes < (uint64_t)p->li->size)
    return hv_error(err, 0, "layer %s: blob is truncated (%llu of %lld bytes)", what,
                    (unsigned long long)p->zbytes, (long long)p->li->size);
  return hv_error(err, 0, "layer %s: %s", what, stage);
}

static int drain(struct pipe_ctx *p, hv_error_t *err) {
  /* The digests cover every byte, including what follows the tar's end
   * marker, so read both streams to their ends. */
  for (;;) {
    la_ssize_t r = archive_read_data(p->a, p->ubuf, sizeof p->ubuf);
    if (r == 0)
      break;
    if (r < 0) {
      cleanup_free char *m = hv_xstrdup(archive_error_string(p->a));
      return source_error(p, m ? m : "decompression failed", err);
    }
    hv_sha256_update(&p->uhash, p->ubuf, (size_t)r);
    p->ubytes += (uint64_t)r;
  }
  for (;;) {
    ssize_t r = src_read(p, p->zbuf, sizeof p->zbuf);
    if (r == 0)
      break;
    if (r < 0)
      return source_error(p, "read", err);
  }
  return 0;
}

static int check_results(struct pipe_ctx *p, hv_error_t *err) {
  struct hv_layer_ingest *li = p->li;
  const char *what = label(li);
  hv_sha256_final(&p->zhash, li->out_digest);
  hv_sha256_final(&p->uhash, li->out_diff_id);
  li->out_size = p->zbytes;
  if (li->size >= 0 && p->zbytes != (uint64_t)li->size)
    return hv_error(err, 0, "layer %s: blob is truncated (%llu of %lld bytes)", what,
                    (unsigned long long)p->zbytes, (long long)li->size);
  if (li->digest && strcmp(li->digest, li->out_digest) != 0)
    return hv_error(err, 0, "layer %s: digest mismatch: the blob hashes to %s", what,
                    li->out_digest);
  if (li->diff_id && strcmp(li->diff_id, li->out_diff_id) != 0)
    return hv_error(err, 0, "layer %s: diff id mismatch: config says %s, content is %s", what,
                    li->diff_id, li->out_diff_id);
  return 0;
}

int hv_layer_ingest(struct hv_layer_src *src, struct hv_layer_ingest *li, hv_error_t *err) {
  struct pipe_ctx *p = hv_xmalloc0(sizeof *p);
  p->src = src;
  p->li = li;
  hv_sha256_init(&p->zhash);
  hv_sha256_init(&p->uhash);
  struct archive *a = archive_read_new(), *b = NULL;
  p->a = a;
  int rc = -1;
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_filter_xz(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_format_raw(a);
  struct archive_entry *e;
  if (archive_read_open(a, p, NULL, a_read_cb, NULL) != ARCHIVE_OK ||
      archive_read_next_header(a, &e) != ARCHIVE_OK) {
    cleanup_free char *m = hv_xstrdup(archive_error_string(a));
    rc = source_error(p, m ? m : "not a tar archive", err);
    goto out;
  }
  b = archive_read_new();
  archive_read_support_format_tar(b);
  if (archive_read_open(b, p, NULL, b_read_cb, NULL) != ARCHIVE_OK) {
    cleanup_free char *m = hv_xstrdup(archive_error_string(b));
    rc = source_error(p, m ? m : "not a tar archive", err);
    goto out;
  }
  if (li->unpack_fd >= 0) {
    cleanup_free char *what = hv_xasprintf("layer %s", label(li));
    struct hv_unpack_opts o = {.max_bytes = li->max_bytes, .max_entries = li->max_entries,
                               .overlay = true, .what = what};
    struct hv_unpack_stats st = {0};
    hv_error_t uerr = NULL;
    if (hv_unpack_archive(b, li->unpack_fd, &o, &st, &uerr) < 0) {
      /* A short or oversized source explains a tar error better. */
      if (p->too_big || p->over_limit || p->src_error ||
          (li->size >= 0 && p->zbytes < (uint64_t)li->size && drain(p, NULL) == 0 &&
           p->zbytes < (uint64_t)li->size)) {
        hv_error_release(&uerr);
        rc = source_error(p, "", err);
      } else {
        *err = uerr;
        rc = -1;
      }
      goto out;
    }
  } else if (li->visit) {
    if (li->visit(b, li->visit_ctx, err) < 0) {
      rc = -1;
      goto out;
    }
  } else {
    for (;;) { /* hash only: walk the tar so it is at least well formed */
      int r = archive_read_next_header(b, &e);
      if (r == ARCHIVE_EOF)
        break;
      if (r < ARCHIVE_WARN) {
        cleanup_free char *m = hv_xstrdup(archive_error_string(b));
        rc = source_error(p, m ? m : "corrupt tar", err);
        goto out;
      }
    }
  }
  if (drain(p, err) < 0)
    goto out;
  rc = check_results(p, err);
out:
  if (b)
    archive_read_free(b);
  archive_read_free(a);
  hv_sha256_free(&p->zhash);
  hv_sha256_free(&p->uhash);
  free(p);
  return rc;
}
