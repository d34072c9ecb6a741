/* test_ns_mounts.c: OCI mount options and ns_mount_one on a temp rootfs in
 * a forked child with a private mount namespace. */
#include "ns/sandbox.h"
#include "ns_testutil.h"
#include <sys/statvfs.h>

static void test_parse_options(void **state) {
  (void)state;
  char *o[] = {"ro", "nosuid", "nodev", "noexec", "rbind", "rprivate", "mode=755", "size=65536k",
               "noatime", "atime", "strictatime", "nosymfollow", "dirsync", "rro", "rnosuid",
               "rrelatime", NULL};
  struct ns_mount_flags f;
  hv_error_t err = NULL;
  assert_int_equal(ns_mount_flags_parse(o, "mounts[0]", &f, &err), 0);
  assert_int_equal(f.flags, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_BIND | MS_REC |
                                MS_STRICTATIME | MS_NOSYMFOLLOW | MS_DIRSYNC);
  assert_true(f.clear & MS_NOATIME);
  assert_int_equal(f.n_propagation, 1);
  assert_int_equal(f.propagation[0], MS_PRIVATE | MS_REC);
  assert_string_equal(f.data, "mode=755,size=65536k");
  assert_int_equal(f.attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_RELATIME);
  ns_mount_flags_clear(&f);
  char *rw[] = {"ro", "rw", "suid", "dev", "exec", "async", "sync", "mand", "relatime",
                "norelatime", "shared", "slave", "unbindable", "remount", NULL};
  assert_int_equal(ns_mount_flags_parse(rw, "m", &f, &err), 0);
  assert_int_equal(f.flags, MS_SYNCHRONOUS | MS_MANDLOCK | MS_REMOUNT);
  assert_int_equal(f.n_propagation, 3);
  assert_null(f.data);
  ns_mount_flags_clear(&f);
  char *bad[] = {"nosuid", "idmap", NULL};
  assert_true(ns_mount_flags_parse(bad, "mounts[3]", &f, &err) < 0);
  assert_string_equal(err->msg, "mounts[3]: option \"idmap\" (idmapped mounts) is not supported");
  hv_error_release(&err);
}

struct mcase { const char *root, *host, *outside; };

static void mount_child(void *arg) {
  struct mcase *mc = arg;
  enter_private_mntns(0);
  int rootfd = open(mc->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  CHECK(rootfd >= 0);
  hv_error_t err = NULL;
  struct hv_oci_config cfg = {0};
  char p[4096];
  struct statvfs sv;
  struct stat st;

  /* tmpfs with flags and data, destination created on the fly */
  char *o1[] = {"nosuid", "nodev", "noexec", "mode=700", "size=1m", NULL};
  struct hv_oci_mount m1 = {.destination = "/run/deep/tmp", .type = "tmpfs", .source = "tmpfs",
                            .options = o1};
  CHECK_OK(ns_mount_one(rootfd, &m1, NULL, &cfg, 0, &err), &err);
  snprintf(p, sizeof p, "%s/run/deep/tmp", mc->root);
  CHECK(statvfs(p, &sv) == 0 && (sv.f_flag & ST_NOSUID) && (sv.f_flag & ST_NOEXEC) &&
        (sv.f_flag & ST_NODEV) && !(sv.f_flag & ST_RDONLY));
  CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0700);
  CHECK(sv.f_blocks * sv.f_frsize == 1024 * 1024);

  /* read-only bind of a host dir: needs the remount */
  char *o2[] = {"rbind", "ro", "nosuid", NULL};
  struct hv_oci_mount m2 = {.destination = "/data", .type = "bind", .source = (char *)mc->host,
                            .options = o2};
  CHECK_OK(ns_mount_one(rootfd, &m2, NULL, &cfg, 1, &err), &err);
  snprintf(p, sizeof p, "%s/data/hostfile", mc->root);
  CHECK(access(p, F_OK) == 0);
  CHECK(open(p, O_WRONLY) < 0 && errno == EROFS);
  snprintf(p, sizeof p, "%s/data", mc->root);
  CHECK(statvfs(p, &sv) == 0 && (sv.f_flag & ST_NOSUID));
  /* ... and the host copy is still writable */
  snprintf(p, sizeof p, "%s/hostfile", mc->host);
  int w = open(p, O_WRONLY);
  CHECK(w >= 0);
  close(w);

  /* bind of a file creates a file mount point (relative source: bundle) */
  struct hv_oci_mount m3 = {.destination = "/etc/hostname", .source = "hostfile",
                            .options = (char *[]){"bind", NULL}};
  CHECK_OK(ns_mount_one(rootfd, &m3, mc->host, &cfg, 2, &err), &err);
  snprintf(p, sizeof p, "%s/etc/hostname", mc->root);
  CHECK(stat(p, &st) == 0 && S_ISREG(st.st_mode));
  char *content = read_small(p);
  CHECK(content && strcmp(content, "from-host\n") == 0);

  /* Symlink escape: /escape -> outside the rootfs, and ../../ tricks.  The
   * mount must land inside the rootfs, never on the host directory. */
  snprintf(p, sizeof p, "%s/escape", mc->root);
  CHECK(symlink(mc->outside, p) == 0);
  struct hv_oci_mount m4 = {.destination = "/escape/x", .type = "tmpfs", .source = "tmpfs",
                            .options = (char *[]){"size=1m", NULL}};
  CHECK_OK(ns_mount_one(rootfd, &m4, NULL, &cfg, 3, &err), &err);
  snprintf(p, sizeof p, "%s/x", mc->outside);
  CHECK(access(p, F_OK) < 0 && errno == ENOENT); /* nothing created outside */
  snprintf(p, sizeof p, "%s%s/x", mc->root, mc->outside);
  CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode)); /* created inside instead */
  CHECK(statvfs(p, &sv) == 0 && sv.f_blocks * sv.f_frsize == 1024 * 1024);
  struct hv_oci_mount m5 = {.destination = "../../../../../tmp/dotdot", .type = "tmpfs",
                            .source = "tmpfs", .options = NULL};
  CHECK_OK(ns_mount_one(rootfd, &m5, NULL, &cfg, 4, &err), &err);
  snprintf(p, sizeof p, "%s/tmp/dotdot", mc->root);
  CHECK(access(p, F_OK) == 0);
  CHECK(access("/tmp/dotdot", F_OK) < 0);

  /* propagation + recursive read-only */
  char *o6[] = {"rbind", "rprivate", "rro", NULL};
  struct hv_oci_mount m6 = {.destination = "/rec", .type = "none", .source = (char *)mc->host,
                            .options = o6};
  CHECK_OK(ns_mount_one(rootfd, &m6, NULL, &cfg, 5, &err), &err);
  snprintf(p, sizeof p, "%s/rec", mc->root);
  CHECK(statvfs(p, &sv) == 0 && (sv.f_flag & ST_RDONLY));

  /* errors name the mount */
  struct hv_oci_mount m7 = {.destination = "/nope", .type = "bind",
                            .source = "/nonexistent/b1-src", .options = NULL};
  CHECK(ns_mount_one(rootfd, &m7, NULL, &cfg, 6, &err) < 0);
  CHECK(strcmp(err->msg, "mounts[6]: bind source `/nonexistent/b1-src`") == 0);
  hv_error_release(&err);
  struct hv_oci_mount m8 = {.destination = "/bad", .type = "nosuchfs", .source = "x",
                            .options = (char *[]){"foo=bar", NULL}};
  CHECK(ns_mount_one(rootfd, &m8, NULL, &cfg, 7, &err) < 0);
  CHECK(strcmp(err->msg, "mounts[7]: mount nosuchfs `x` on `/bad` with foo=bar") == 0);
  hv_error_release(&err);
  close(rootfd);
}

static void test_mount_one(void **state) {
  (void)state;
  char *dir = make_tmpdir();
  char root[512], host[512], outside[512], p[1024];
  snprintf(root, sizeof root, "%s/rootfs", dir);
  snprintf(host, sizeof host, "%s/host", dir);
  snprintf(outside, sizeof outside, "%s/outside", dir);
  mkdir(root, 0755);
  mkdir(host, 0755);
  mkdir(outside, 0755);
  snprintf(p, sizeof p, "%s/hostfile", host);
  FILE *f = fopen(p, "w");
  fputs("from-host\n", f);
  fclose(f);
  struct mcase mc = {root, host, outside};
  int st = run_child(mount_child, &mc);
  remove_tree(dir); /* before asserting, so a failure leaves nothing behind */
  free(dir);
  assert_child_ok(st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_options),
      cmocka_unit_test(test_mount_one),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
