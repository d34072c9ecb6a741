/* erofs.c: the VM root disk — a read-only erofs image of the flattened
 * image, built once per chain id with mkfs.erofs (erofs-utils) and cached
 * at <store>/erofs/<chain hex>.erofs.
 *
 * The flattened tree is a read-only overlay of the layer dirs, mounted in a
 * private mount namespace of the child that runs mkfs.erofs, so a kill -9
 * at any point leaves no mount behind (and the half-written disk sits in
 * our tmp dir until the next cleanup). */
#include "store_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

int hv_overlay_mount(char **lowers, size_t n, const char *upper, const char *work,
                     const char *target, hv_error_t *err);

static void uuid_from_chain(const char *chain, char out[37]) {
  const char *h = hv_digest_hex(chain);
  snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

/* In the child: private mounts, overlay, exec mkfs.erofs. Never returns. */
static void build_child(char **lowers, size_t n, const char *mnt, const char *out,
                        const char *uuid) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  hv_error_t err = NULL;
  if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
    fprintf(stderr, "hvrun: erofs: private mount namespace: %s\n", strerror(errno));
    _exit(126);
  }
  if (hv_overlay_mount(lowers, n, NULL, NULL, mnt, &err) < 0) {
    fprintf(stderr, "hvrun: erofs: %s: %s\n", err->msg, strerror(err->errno_));
    _exit(126);
  }
  cleanup_free char *uopt = hv_xasprintf("-U%s", uuid);
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (devnull >= 0)
    dup2(devnull, STDOUT_FILENO); /* mkfs.erofs prints a banner and stats */
  execlp("mkfs.erofs", "mkfs.erofs", "--quiet", uopt, "--preserve-mtime", out, mnt, (char *)NULL);
  fprintf(stderr, "hvrun: erofs: exec mkfs.erofs: %s (install erofs-utils)\n", strerror(errno));
  _exit(127);
}

int hv_image_erofs(struct hv_image_store *s, const struct hv_image *img, char **path,
                   hv_error_t *err) {
  const char *hex = hv_digest_hex(img->chain_id);
  cleanup_free char *rel = hv_xasprintf("erofs/%s.erofs", hex);
  cleanup_free char *final = hv_xasprintf("%s/%s", s->dir, rel);
  struct stat st;
  if (fstatat(s->dirfd, rel, &st, 0) == 0 && S_ISREG(st.st_mode)) {
    *path = hv_xstrdup(final);
    return 0;
  }
  cleanup_close int lock = -1;
  if (hv_store_lock(s, "gc.lock", HV_LOCK_SH, &lock, err) < 0 ||
      hv_image_ensure_layers(s, img, err) < 0)
    return -1;
  if (mkdirat(s->dirfd, "erofs", 0700) < 0 && errno != EEXIST)
    return hv_error(err, errno, "create `%s/erofs`", s->dir);
  struct hv_tmp t = {0};
  if (hv_tmp_create(s, &t, err) < 0)
    return -1;
  int rc = -1;
  cleanup_free char *tdir = hv_xasprintf("%s/tmp/%s", s->dir, t.name);
  cleanup_free char *mnt = hv_xasprintf("%s/mnt", tdir);
  cleanup_free char *empty = hv_xasprintf("%s/empty", tdir);
  cleanup_free char *out = hv_xasprintf("%s/disk.erofs", tdir);
  size_t n = img->n_layers;
  /* Overlay wants two lowers without an upper: an empty dir at the bottom. */
  char **lowers = hv_xmalloc0((n + 2) * sizeof(char *));
  for (size_t i = 0; i < n; i++)
    lowers[i] = hv_xasprintf("%s/layers/%s", s->dir, hv_digest_hex(img->layers[n - 1 - i].diff_id));
  lowers[n] = hv_xstrdup(empty);
  if (mkdir(mnt, 0755) < 0 || mkdir(empty, 0755) < 0) {
    rc = hv_error(err, errno, "create `%s`", mnt);
    goto out;
  }
  char uuid[37];
  uuid_from_chain(img->chain_id, uuid);
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    rc = hv_error(err, errno, "fork");
    goto out;
  }
  if (pid == 0)
    build_child(lowers, n + 1, mnt, out, uuid);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    rc = hv_error(err, 0, "image %s: mkfs.erofs failed (%s %d)", img->digest,
                  WIFEXITED(status) ? "exit status" : "signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    goto out;
  }
  if (rename(out, final) < 0) {
    rc = hv_error(err, errno, "move erofs disk to `%s`", final);
    goto out;
  }
  *path = hv_xstrdup(final);
  rc = 0;
out:
  hv_strv_free(lowers);
  hv_tmp_release(s, &t);
  return rc;
}
