/* test_images.c: unit tests for the image store internals — path cleaning,
 * references, chain ids, the confined unpacker (fed tars built in memory),
 * temp-dir cleanup, import of a rootfs tarball, user resolution and the
 * image -> runtime-spec mapping. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../images/store_internal.h"
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

static char tmpdir[256];

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/hvimg-unit-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  hv_rm_rf_at(AT_FDCWD, tmpdir);
  return 0;
}

/* ---- a tiny ustar builder (libarchive's writer would drag every format,
 * and libxml2, into the statically linked test) ---- */
struct tb { char *buf; size_t cap, used; };

static void tb_init(struct tb *t) {
  t->cap = 1 << 20;
  t->buf = hv_xmalloc0(t->cap);
  t->used = 0;
}

/* width-1 octal digits and a NUL, as ustar wants */
static void octal(char *dst, int width, unsigned long v) {
  char tmp[32];
  snprintf(tmp, sizeof tmp, "%0*lo", width - 1, v);
  memcpy(dst, tmp, (size_t)width);
}

static void tb_add(struct tb *t, const char *path, mode_t type, const char *data,
                   const char *link, bool hard) {
  size_t n = data ? strlen(data) : 0;
  size_t need = 512 + (n + 511) / 512 * 512;
  assert_true(t->used + need + 1024 <= t->cap);
  char *h = t->buf + t->used;
  assert_true(strlen(path) < 100 && (!link || strlen(link) < 100));
  memcpy(h, path, strlen(path));
  octal(h + 100, 8, type == AE_IFDIR ? 0755 : 0644);
  octal(h + 108, 8, 0);
  octal(h + 116, 8, 0);
  octal(h + 124, 12, n);
  octal(h + 136, 12, 1000);
  char flag = '0';
  if (link && hard)
    flag = '1';
  else if (link || type == AE_IFLNK)
    flag = '2';
  else if (type == AE_IFDIR)
    flag = '5';
  h[156] = flag;
  if (link)
    memcpy(h + 157, link, strlen(link));
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < 512; i++)
    sum += (unsigned char)h[i];
  octal(h + 148, 7, sum);
  h[155] = ' ';
  if (n)
    memcpy(h + 512, data, n);
  t->used += need;
}

static void tb_finish(struct tb *t) { t->used += 1024; /* two zero blocks */ }

/* Unpack t into a fresh dir <tmpdir>/<name>; returns rc, fills *err. */
static int unpack_into(struct tb *t, const char *name, uint64_t max_bytes, uint64_t max_entries,
                       int *dirfd, hv_error_t *err) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  assert_int_equal(mkdir(path, 0755), 0);
  *dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct archive *a = archive_read_new();
  archive_read_support_format_tar(a);
  assert_int_equal(archive_read_open_memory(a, t->buf, t->used), ARCHIVE_OK);
  struct hv_unpack_opts o = {.max_bytes = max_bytes, .max_entries = max_entries,
                             .overlay = true, .what = "layer test"};
  struct hv_unpack_stats st = {0};
  int rc = hv_unpack_archive(a, *dirfd, &o, &st, err);
  archive_read_free(a);
  return rc;
}

static void test_clean_path(void **state) {
  (void)state;
  char out[256];
  const char *why;
  assert_int_equal(hv_clean_path("./a//b/./c/", out, sizeof out, &why), 0);
  assert_string_equal(out, "a/b/c");
  assert_int_equal(hv_clean_path("./", out, sizeof out, &why), 0);
  assert_string_equal(out, "");
  assert_int_equal(hv_clean_path("a/../b", out, sizeof out, &why), -1);
  assert_non_null(strstr(why, ".."));
  assert_int_equal(hv_clean_path("/etc/passwd", out, sizeof out, &why), -1);
  assert_string_equal(why, "absolute path");
  assert_int_equal(hv_clean_path("a/..b/c..", out, sizeof out, &why), 0);
  assert_string_equal(out, "a/..b/c..");
}

static void test_refs(void **state) {
  (void)state;
  const char *good[][2] = {{"busybox", "busybox:latest"},
                           {"hvrun/busybox:1.36", "hvrun/busybox:1.36"},
                           {"localhost/x:y", "localhost/x:y"},
                           {"reg.example.com:5000/a/b_c__d-e:v1.0-x", "reg.example.com:5000/a/b_c__d-e:v1.0-x"},
                           {"a.b--c", "a.b--c:latest"}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    char *out = NULL;
    hv_error_t err = NULL;
    assert_int_equal(hv_ref_normalize(good[i][0], &out, &err), 0);
    assert_string_equal(out, good[i][1]);
    free(out);
  }
  const char *bad[] = {"", "Upper", "a//b", "a:", "a:b:c", "-a", "a_", "a@sha256:00", "a:-x",
                       "a/B:c", "a..b"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *out = NULL;
    hv_error_t err = NULL;
    assert_true(hv_ref_normalize(bad[i], &out, &err) < 0);
    assert_non_null(strstr(err->msg, "invalid reference"));
    hv_error_release(&err);
  }
}

static void test_digest_and_chain(void **state) {
  (void)state;
  char d[72];
  hv_sha256_buf("", 0, d);
  assert_string_equal(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert_non_null(hv_digest_hex(d));
  assert_null(hv_digest_hex("sha256:E3B0"));
  assert_null(hv_digest_hex("sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  char a[72], b[72], chain[72], expect[72];
  hv_sha256_buf("a", 1, a);
  hv_sha256_buf("b", 1, b);
  char *ids[] = {a, b};
  hv_chain_id(ids, 1, chain);
  assert_string_equal(chain, a);
  hv_chain_id(ids, 2, chain);
  char *s = hv_xasprintf("%s %s", a, b);
  hv_sha256_buf(s, strlen(s), expect);
  free(s);
  assert_string_equal(chain, expect);
}

static void test_unpack_ok_and_whiteouts(void **state) {
  (void)state;
  struct tb t;
  tb_init(&t);
  tb_add(&t, "./", AE_IFDIR, NULL, NULL, false);
  tb_add(&t, "d", AE_IFDIR, NULL, NULL, false);
  tb_add(&t, "d/f", AE_IFREG, "data", NULL, false);
  tb_add(&t, "d/h", AE_IFREG, NULL, "d/f", true);
  tb_add(&t, "d/s", AE_IFLNK, NULL, "f", false);
  tb_add(&t, "d/s/../x", AE_IFREG, "y", NULL, false); /* rejected: .. */
  tb_finish(&t);
  int fd = -1;
  hv_error_t err = NULL;
  assert_true(unpack_into(&t, "u1", 1 << 20, 100, &fd, &err) < 0);
  assert_non_null(strstr(err->msg, "escapes"));
  hv_error_release(&err);
  struct stat a, b;
  assert_int_equal(fstatat(fd, "d/f", &a, AT_SYMLINK_NOFOLLOW), 0);
  assert_int_equal(fstatat(fd, "d/h", &b, AT_SYMLINK_NOFOLLOW), 0);
  assert_int_equal(a.st_ino, b.st_ino);
  assert_int_equal(a.st_mtime, 1000);
  close(fd);
  free(t.buf);

  tb_init(&t);
  tb_add(&t, "w/.wh.gone", AE_IFREG, NULL, NULL, false);
  tb_add(&t, "o/.wh..wh..opq", AE_IFREG, NULL, NULL, false);
  tb_add(&t, "o/kept", AE_IFREG, "k", NULL, false);
  tb_finish(&t);
  assert_int_equal(unpack_into(&t, "u2", 1 << 20, 100, &fd, &err), 0);
  assert_true(hv_is_whiteout_at(fd, "w/gone"));
  assert_true(hv_is_opaque_at(fd, "o"));
  assert_int_equal(faccessat(fd, "o/kept", F_OK, 0), 0);
  close(fd);
  free(t.buf);
}

static void test_unpack_confinement(void **state) {
  (void)state;
  struct tb t;
  tb_init(&t);
  tb_add(&t, "esc", AE_IFLNK, NULL, "/", false);
  tb_add(&t, "esc/tmp/hvimg-unit-pwned", AE_IFREG, "x", NULL, false);
  tb_finish(&t);
  int fd = -1;
  hv_error_t err = NULL;
  assert_true(unpack_into(&t, "c1", 1 << 20, 100, &fd, &err) < 0);
  assert_non_null(strstr(err->msg, "resolves outside"));
  assert_int_equal(access("/tmp/hvimg-unit-pwned", F_OK), -1);
  hv_error_release(&err);
  close(fd);
  free(t.buf);

  tb_init(&t);
  tb_add(&t, "pw", AE_IFREG, NULL, "/etc/passwd", true);
  tb_finish(&t);
  assert_true(unpack_into(&t, "c2", 1 << 20, 100, &fd, &err) < 0);
  assert_non_null(strstr(err->msg, "absolute path"));
  hv_error_release(&err);
  close(fd);
  free(t.buf);

  tb_init(&t);
  tb_add(&t, "big", AE_IFREG, "0123456789abcdef0123456789abcdef", NULL, false);
  tb_finish(&t);
  assert_true(unpack_into(&t, "c3", 16, 100, &fd, &err) < 0);
  assert_non_null(strstr(err->msg, "limit"));
  hv_error_release(&err);
  close(fd);
  free(t.buf);

  tb_init(&t);
  for (int i = 0; i < 5; i++) {
    char n[16];
    snprintf(n, sizeof n, "f%d", i);
    tb_add(&t, n, AE_IFREG, NULL, NULL, false);
  }
  tb_finish(&t);
  assert_true(unpack_into(&t, "c4", 1 << 20, 3, &fd, &err) < 0);
  assert_non_null(strstr(err->msg, "entries"));
  hv_error_release(&err);
  close(fd);
  free(t.buf);
}

static void test_tmp_cleanup(void **state) {
  (void)state;
  char dir[512];
  snprintf(dir, sizeof dir, "%s/store-tmp", tmpdir);
  struct hv_image_store *s = NULL;
  hv_error_t err = NULL;
  assert_int_equal(hv_image_store_open(dir, &s, &err), 0);
  struct hv_tmp live = {0};
  assert_int_equal(hv_tmp_create(s, &live, &err), 0);
  /* A dead owner's leftovers: a lock file nobody holds. */
  assert_int_equal(mkdirat(s->tmp_fd, "dead", 0700), 0);
  int l = openat(s->tmp_fd, "dead.lock", O_CREAT | O_RDWR, 0600);
  close(l);
  assert_int_equal(hv_tmp_clean(s), 1);
  assert_int_equal(faccessat(s->tmp_fd, "dead", F_OK, 0), -1);
  assert_int_equal(faccessat(s->tmp_fd, live.name, F_OK, 0), 0); /* still locked: kept */
  hv_tmp_release(s, &live);
  hv_image_store_close(s);
}

static void test_import_rootfs_user_and_spec(void **state) {
  (void)state;
  struct tb t;
  tb_init(&t);
  tb_add(&t, "etc/passwd", AE_IFREG, "root:x:0:0::/:/bin/sh\nweb:x:33:44::/:/bin/sh\n", NULL,
         false);
  tb_add(&t, "etc/group", AE_IFREG, "root:x:0:\nwww:x:44:\nops:x:70:\n", NULL, false);
  tb_finish(&t);
  char tar[512], dir[512];
  snprintf(tar, sizeof tar, "%s/rootfs.tar", tmpdir);
  snprintf(dir, sizeof dir, "%s/store-import", tmpdir);
  hv_error_t err = NULL;
  assert_int_equal(hv_write_file_atomic(AT_FDCWD, tar, t.buf, t.used, 0644, &err), 0);
  free(t.buf);
  struct hv_image_store *s = NULL;
  assert_int_equal(hv_image_store_open(dir, &s, &err), 0);
  struct hv_image_import_opts o = {.rootfs = true};
  char *digest = NULL, *ref = NULL;
  assert_int_equal(hv_image_import(s, tar, "unit/rootfs:1", &o, &digest, &ref, &err), 0);
  assert_string_equal(ref, "unit/rootfs:1");
  struct hv_image *img = NULL;
  assert_int_equal(hv_image_lookup(s, "unit/rootfs:1", &img, &err), 0);
  assert_string_equal(hv_image_digest(img), digest);
  uint32_t uid, gid;
  assert_int_equal(hv_image_resolve_user(s, img, "web", &uid, &gid, &err), 0);
  assert_int_equal(uid, 33);
  assert_int_equal(gid, 44);
  assert_int_equal(hv_image_resolve_user(s, img, "web:ops", &uid, &gid, &err), 0);
  assert_int_equal(gid, 70);
  assert_int_equal(hv_image_resolve_user(s, img, "5:6", &uid, &gid, &err), 0);
  assert_int_equal(uid * 100 + gid, 506);
  assert_true(hv_image_resolve_user(s, img, "ghost", &uid, &gid, &err) < 0);
  hv_error_release(&err);

  json_t *spec = json_pack("{s:{s:[s,s]}}", "process", "env", "PATH=/x", "TERM=xterm");
  char *args[] = {"echo", "hi", NULL};
  assert_int_equal(hv_image_apply_to_spec(s, img, spec, args, "web", &err), 0);
  json_t *p = json_object_get(spec, "process");
  assert_string_equal(json_string_value(json_array_get(json_object_get(p, "args"), 0)), "echo");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "user"), "uid")), 33);
  json_t *env = json_object_get(p, "env");
  /* image PATH wins over the spec's default; TERM is kept */
  size_t i;
  json_t *v;
  int paths = 0, terms = 0;
  json_array_foreach(env, i, v) {
    paths += !strncmp(json_string_value(v), "PATH=", 5);
    terms += !strcmp(json_string_value(v), "TERM=xterm");
  }
  assert_int_equal(paths, 1);
  assert_int_equal(terms, 1);
  json_decref(spec);

  /* prune keeps everything referenced; rm removes it all */
  struct hv_image_prune_report r;
  assert_int_equal(hv_image_prune(s, &r, &err), 0);
  assert_int_equal(r.blobs, 0);
  assert_int_equal(hv_image_remove(s, "unit/rootfs:1", &err), 0);
  struct hv_image *gone = NULL;
  assert_true(hv_image_lookup(s, "unit/rootfs:1", &gone, &err) < 0);
  assert_non_null(strstr(err->msg, "not found"));
  hv_error_release(&err);
  hv_image_free(img);
  free(digest);
  free(ref);
  hv_image_store_close(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_clean_path),
      cmocka_unit_test(test_refs),
      cmocka_unit_test(test_digest_and_chain),
      cmocka_unit_test(test_unpack_ok_and_whiteouts),
      cmocka_unit_test(test_unpack_confinement),
      cmocka_unit_test(test_tmp_cleanup),
      cmocka_unit_test(test_import_rootfs_user_and_spec),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
