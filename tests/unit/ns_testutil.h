/* ns_testutil.h: helpers for the ns/ sandbox unit tests.  Anything that
 * changes process-wide state (mount namespace, seccomp, capabilities, uid)
 * runs in a forked child; CHECK() there reports the failing line and exits
 * non-zero, and the cmocka test asserts on the child's exit status. */
#ifndef NS_TESTUTIL_H
#define NS_TESTUTIL_H
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define CHECK(c)                                                                            \
  do {                                                                                      \
    if (!(c)) {                                                                             \
      fprintf(stderr, "%s:%d: check failed: %s (errno %s)\n", __FILE__, __LINE__, #c,       \
              strerror(errno));                                                             \
      _exit(90);                                                                            \
    }                                                                                       \
  } while (0)

/* Check an hv_* call succeeded; print the error otherwise. */
#define CHECK_OK(call, errp)                                                                \
  do {                                                                                      \
    if ((call) < 0) {                                                                       \
      fprintf(stderr, "%s:%d: %s failed: %s (errno %d)\n", __FILE__, __LINE__, #call,       \
              *(errp) ? (*(errp))->msg : "?", *(errp) ? (*(errp))->errno_ : 0);             \
      _exit(91);                                                                            \
    }                                                                                       \
  } while (0)

/* Run fn in a child; return its wait status. */
static inline int run_child(void (*fn)(void *), void *arg) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    fn(arg);
    _exit(0);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  return st;
}

#define assert_child_ok(st)                                                                 \
  do {                                                                                      \
    int _st = (st);                                                                         \
    if (!(WIFEXITED(_st) && WEXITSTATUS(_st) == 0))                                         \
      fail_msg("child failed: %s %d", WIFEXITED(_st) ? "exit" : "signal",                   \
               WIFEXITED(_st) ? WEXITSTATUS(_st) : WTERMSIG(_st));                          \
  } while (0)

/* A private mount namespace where nothing propagates to the host. */
static inline void enter_private_mntns(int extra_flags) {
  CHECK(unshare(CLONE_NEWNS | extra_flags) == 0);
  CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
}

/* A temp dir `<tmp>/hvrun-b1-XXXXXX`; caller frees and removes. */
static inline char *make_tmpdir(void) {
  char *d = strdup("/tmp/hvrun-b1-XXXXXX");
  if (!d || !mkdtemp(d))
    abort();
  return d;
}

/* Minimal rootfs: /bin/busybox (static) + sh/ls/cat/echo/id/... links. */
static inline void make_busybox_rootfs(const char *root) {
  static const char *dirs[] = {"bin", "proc", "dev", "sys", "tmp", "etc", "usr", "usr/bin"};
  char p[8192];
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
    mkdir(p, 0755);
  }
  snprintf(p, sizeof p, "cp /usr/bin/busybox %s/bin/busybox", root);
  if (system(p) != 0)
    abort();
  static const char *links[] = {"sh", "ls", "cat", "echo", "id", "pwd", "readlink", "stat",
                                "touch", "mkdir", "hostname", "grep", "sleep", "true"};
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    snprintf(p, sizeof p, "%s/bin/%s", root, links[i]);
    if (symlink("busybox", p) < 0 && errno != EEXIST)
      abort();
  }
  snprintf(p, sizeof p, "%s/etc/passwd", root);
  FILE *f = fopen(p, "w");
  if (f) {
    fputs("root:x:0:0:root:/root:/bin/sh\n", f);
    fclose(f);
  }
}

static inline void remove_tree(const char *dir) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "warning: could not remove %s\n", dir);
}

static inline char *read_small(const char *path) {
  static char buf[8192];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 0)
    return NULL;
  buf[n] = 0;
  return buf;
}

static inline const char *status_field(const char *name) {
  static char val[128];
  char *s = read_small("/proc/self/status");
  if (!s)
    return NULL;
  char key[64];
  snprintf(key, sizeof key, "\n%s:\t", name);
  char *h = strstr(s, key);
  if (!h)
    return NULL;
  h += strlen(key);
  size_t n = strcspn(h, "\n");
  snprintf(val, sizeof val, "%.*s", (int)n, h);
  return val;
}
#endif
