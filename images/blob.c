/* blob.c: sha256 digests (OpenSSL libcrypto) and verified reads of store blobs. */
#include "store_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

void hv_sha256_init(struct hv_sha256 *h) {
  if (SHA256_Init(&h->ctx) != 1)
    abort();
}

void hv_sha256_update(struct hv_sha256 *h, const void *data, size_t len) {
  if (len && SHA256_Update(&h->ctx, data, len) != 1)
    abort();
}

void hv_sha256_final(struct hv_sha256 *h, char out[72]) {
  unsigned char md[32];
  if (SHA256_Final(md, &h->ctx) != 1)
    abort();
  static const char hex[] = "0123456789abcdef";
  memcpy(out, "sha256:", 7);
  for (int i = 0; i < 32; i++) {
    out[7 + 2 * i] = hex[md[i] >> 4];
    out[8 + 2 * i] = hex[md[i] & 15];
  }
  out[71] = 0;
  hv_sha256_free(h);
}

void hv_sha256_free(struct hv_sha256 *h) {
  memset(&h->ctx, 0, sizeof h->ctx);
}

void hv_sha256_buf(const void *data, size_t len, char out[72]) {
  struct hv_sha256 h;
  hv_sha256_init(&h);
  hv_sha256_update(&h, data, len);
  hv_sha256_final(&h, out);
}

const char *hv_digest_hex(const char *digest) {
  if (!digest || strncmp(digest, "sha256:", 7) != 0)
    return NULL;
  const char *hex = digest + 7;
  for (int i = 0; i < HV_DIGEST_HEX; i++)
    if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
      return NULL;
  return hex[HV_DIGEST_HEX] ? NULL : hex;
}

int hv_digest_check(const char *digest, const char *what, hv_error_t *err) {
  if (hv_digest_hex(digest))
    return 0;
  if (digest && strchr(digest, ':') && strncmp(digest, "sha256:", 7) != 0)
    return hv_error(err, 0, "%s: unsupported digest algorithm in `%s` (only sha256)", what, digest);
  return hv_error(err, 0, "%s: invalid digest `%s` (want sha256:<64 hex digits>)", what,
                  digest ? digest : "(missing)");
}

bool hv_blob_exists(struct hv_image_store *s, const char *digest) {
  const char *hex = hv_digest_hex(digest);
  struct stat st;
  return hex && fstatat(s->blobs_fd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

int hv_hash_fd(int fd, char out[72], uint64_t *size, hv_error_t *err) {
  /* On the heap, not a __thread array: static TLS is zero-filled in every
   * thread of every hvrun process (128 KiB of RSS per VMM thread). */
  const size_t bufsz = 1 << 17;
  cleanup_free char *buf = hv_xmalloc0(bufsz);
  struct hv_sha256 h;
  uint64_t n = 0;
  hv_sha256_init(&h);
  for (;;) {
    ssize_t r = read(fd, buf, bufsz);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int e = errno;
      hv_sha256_free(&h);
      return hv_error(err, e, "read blob");
    }
    if (r == 0)
      break;
    hv_sha256_update(&h, buf, (size_t)r);
    n += (uint64_t)r;
  }
  hv_sha256_final(&h, out);
  if (size)
    *size = n;
  return 0;
}

int hv_blob_read(struct hv_image_store *s, const char *digest, int64_t size, size_t max,
                 char **out, size_t *len, hv_error_t *err) {
  if (hv_digest_check(digest, "blob", err) < 0)
    return -1;
  const char *hex = hv_digest_hex(digest);
  cleanup_close int fd = openat(s->blobs_fd, hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return hv_error(err, errno, "blob %s is missing from the store", digest);
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
    return hv_error(err, 0, "blob %s: not a regular file", digest);
  if (size >= 0 && st.st_size != size)
    return hv_error(err, 0, "blob %s: size %lld does not match the descriptor's %lld", digest,
                    (long long)st.st_size, (long long)size);
  if ((size_t)st.st_size > max)
    return hv_error(err, 0, "blob %s: %lld bytes is too large for metadata (max %zu)", digest,
                    (long long)st.st_size, max);
  size_t n = (size_t)st.st_size;
  char *buf = hv_read_fd_exact(fd, n);
  if (!buf)
    return hv_error(err, errno, "read blob %s", digest);
  char actual[72];
  hv_sha256_buf(buf, n, actual);
  if (strcmp(actual, digest) != 0) {
    free(buf);
    return hv_error(err, 0, "blob %s is corrupt: its content hashes to %s", digest, actual);
  }
  *out = buf;
  if (len)
    *len = n;
  return 0;
}
