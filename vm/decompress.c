/* decompress.c: one in-memory decompressor for the VMM's inputs that come
 * compressed: a bzImage's kernel payload (lz4, xz, zstd, gzip, ...) and
 * distribution kernel modules (.ko.xz, .ko.zst, .ko.gz).  libarchive's raw
 * format with every filter detects the format by its magic. */
#include "vmm.h"
#include <archive.h>
#include <errno.h>
#include <string.h>

int vm_decompress(const void *in, size_t in_len, size_t max, char **out, size_t *out_len,
                  hv_error_t *err) {
  struct archive *a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_raw(a);
  struct archive_entry *e;
  int rc = -1;
  size_t cap = in_len * 4 < (1u << 20) ? (1u << 20) : in_len * 4, len = 0;
  if (cap > max)
    cap = max;
  char *buf = NULL;
  if (archive_read_open_memory(a, in, in_len) != ARCHIVE_OK ||
      archive_read_next_header(a, &e) != ARCHIVE_OK) {
    hv_error(err, archive_errno(a) > 0 ? archive_errno(a) : 0, "%s", archive_error_string(a));
    goto out;
  }
  buf = hv_xmalloc0(cap);
  for (;;) {
    if (len == cap) {
      if (cap >= max) {
        hv_error(err, EFBIG, "more than %zu MiB decompressed", max >> 20);
        goto out;
      }
      cap = cap * 2 > max ? max : cap * 2;
      buf = hv_xrealloc(buf, cap);
    }
    la_ssize_t n = archive_read_data(a, buf + len, cap - len);
    if (n < 0) {
      hv_error(err, archive_errno(a) > 0 ? archive_errno(a) : 0, "%s",
               archive_error_string(a));
      goto out;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  if (archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE) {
    hv_error(err, EINVAL, "not compressed in a known format");
    goto out;
  }
  *out = buf;
  *out_len = len;
  buf = NULL;
  rc = 0;
out:
  free(buf);
  archive_read_free(a);
  return rc;
}
