/* wait.c: wait for a backend's workload process while forwarding the
 * signals hvrun receives to it. Both backends need exactly this loop (the
 * container's init and the VMM are both our children); only how a signal
 * is delivered differs, so that is the caller's callback. */
#include "runtime.h"
#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

int hv_wait_forwarding(pid_t pid, const struct hv_wait_forward *how, int *exit_status,
                       hv_error_t *err) {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  for (size_t i = 0; i < how->n_signals; i++)
    sigaddset(&set, how->signals[i]);
  if (sigprocmask(SIG_BLOCK, &set, &old) < 0)
    return hv_error(err, errno, "sigprocmask");
  cleanup_close int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    return hv_error(err, errno, "signalfd");
  }
  int rc = 0;
  for (;;) {
    int status;
    pid_t r;
    bool done = false;
    /* Reap everything reparented to us (we are a subreaper), not only
     * the process we wait for. */
    while ((r = waitpid(-1, &status, WNOHANG)) > 0) {
      if (r == pid) {
        *exit_status = WIFEXITED(status) ? WEXITSTATUS(status)
                       : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255;
        done = true;
      }
    }
    if (done)
      break;
    if (r < 0 && errno == ECHILD) {
      rc = hv_error(err, 0, "%s %d is not a child of hvrun", how->noun, pid);
      break;
    }
    struct signalfd_siginfo si;
    ssize_t n = read(sfd, &si, sizeof si);
    if (n < 0 && errno == EINTR)
      continue;
    if (n != sizeof si) {
      rc = hv_error(err, errno, "read signalfd");
      break;
    }
    int sig = (int)si.ssi_signo;
    if (sig == SIGCHLD)
      continue;
    if (sig == SIGWINCH && hv_console_winch_hook && hv_console_winch_hook())
      continue;
    how->forward(sig, how->opaque);
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  return rc;
}
