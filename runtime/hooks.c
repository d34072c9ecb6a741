/* hooks.c: run OCI hooks (prestart, createRuntime, ..., poststop).
 *
 * Each hook gets the container's state JSON on stdin.  The JSON goes
 * through a memfd rather than a pipe so that a hook that never reads its
 * stdin can neither block us nor kill us with SIGPIPE. */
#include "runtime.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static int state_memfd(const struct hv_state *st, hv_error_t *err) {
  cleanup_json json_t *j = hv_state_to_json(st);
  cleanup_free char *s = json_dumps(j, JSON_COMPACT);
  if (!s)
    return hv_error(err, ENOMEM, "encode state");
  int fd = memfd_create("hvrun-hook-state", MFD_CLOEXEC);
  if (fd < 0)
    return hv_error(err, errno, "memfd_create");
  size_t len = strlen(s), off = 0;
  while (off < len) {
    ssize_t w = write(fd, s + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0) {
      int e = errno;
      close(fd);
      return hv_error(err, e, "write hook state");
    }
    off += (size_t)w;
  }
  return fd;
}

/* In the child: nothing of ours but stdio (and the close-on-exec error
 * pipe at fd 3) may reach the hook. */
static void close_other_fds(void) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 4U, ~0U, 0U) == 0)
    return;
#endif
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536)
    max = 65536;
  for (int fd = 4; fd < max; fd++)
    close(fd);
}

/* exec errors travel back over a close-on-exec pipe as an errno, so the
 * message can say "exec: No such file" instead of "exit status 127". */
static void run_child(const struct hv_oci_hook *h, int stdin_fd, int errpipe) {
  /* Restore what a fresh process expects; we may have blocked/ignored
   * signals (e.g. SIGCHLD handling in the lifecycle code). */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      signal(sig, SIG_DFL);
  /* Own process group, so a timeout kills whatever the hook started. */
  setpgid(0, 0);
  if (dup2(stdin_fd, 0) < 0 || lseek(0, 0, SEEK_SET) < 0)
    _exit(127);
  if (errpipe != 3 && dup3(errpipe, 3, O_CLOEXEC) < 0)
    _exit(127);
  fcntl(3, F_SETFD, FD_CLOEXEC);
  close_other_fds();
  char *fallback[] = {h->path, NULL};
  char **argv = h->args && h->args[0] ? h->args : fallback;
  /* No env in the hook means "inherit", as runc (Go's exec) does. */
  execve(h->path, argv, h->env ? h->env : environ);
  int e = errno;
  if (write(3, &e, sizeof e) < 0)
    _exit(126);
  _exit(127);
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Wait for pid; with a timeout, poll (the hook is usually a short-lived
 * program, so 10ms granularity costs nothing) and SIGKILL it when late. */
static int wait_hook(pid_t pid, int timeout_s, int *status, bool *timed_out) {
  *timed_out = false;
  if (timeout_s <= 0) {
    while (waitpid(pid, status, 0) < 0)
      if (errno != EINTR)
        return -1;
    return 0;
  }
  long long deadline = now_ms() + (long long)timeout_s * 1000;
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid)
      return 0;
    if (r < 0 && errno != EINTR)
      return -1;
    if (now_ms() >= deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
      *timed_out = true;
      return 0;
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

int hv_hooks_run(const struct hv_oci_hook *hooks, size_t n, const char *kind,
                 const struct hv_state *st, hv_error_t *err) {
  for (size_t i = 0; i < n; i++) {
    const struct hv_oci_hook *h = &hooks[i];
    cleanup_close int fd = state_memfd(st, err);
    if (fd < 0)
      return hv_error_wrap(err, "hook %s[%zu] (%s)", kind, i, h->path);
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) < 0)
      return hv_error(err, errno, "hook %s[%zu] (%s): pipe", kind, i, h->path);
    pid_t pid = fork();
    if (pid < 0) {
      int e = errno;
      close(errpipe[0]);
      close(errpipe[1]);
      return hv_error(err, e, "hook %s[%zu] (%s): fork", kind, i, h->path);
    }
    if (pid == 0)
      run_child(h, fd, errpipe[1]);
    close(errpipe[1]);
    setpgid(pid, pid); /* also here: whichever of us runs first */
    int exec_errno = 0;
    ssize_t got;
    while ((got = read(errpipe[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR)
      ;
    close(errpipe[0]);
    if (got == (ssize_t)sizeof exec_errno) {
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
      return hv_error(err, exec_errno, "hook %s[%zu] (%s): exec", kind, i, h->path);
    }
    int status = 0;
    bool timed_out;
    if (wait_hook(pid, h->has_timeout ? h->timeout : 0, &status, &timed_out) < 0)
      return hv_error(err, errno, "hook %s[%zu] (%s): wait", kind, i, h->path);
    if (timed_out)
      return hv_error(err, 0, "hook %s[%zu] (%s): timed out after %ds", kind, i, h->path,
                      h->timeout);
    if (WIFSIGNALED(status))
      return hv_error(err, 0, "hook %s[%zu] (%s): killed by signal %d (%s)", kind, i, h->path,
                      WTERMSIG(status), strsignal(WTERMSIG(status)));
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
      return hv_error(err, 0, "hook %s[%zu] (%s): exited with status %d", kind, i, h->path,
                      WEXITSTATUS(status));
    hv_debug("hook %s[%zu] (%s) done", kind, i, h->path);
  }
  return 0;
}
