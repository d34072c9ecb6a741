/* vm_exec.c: `hvrun exec` into a VM.  The process runs in the guest,
 * started by the guest init's agent (vm/guest/agent.c); this side is the
 * relay on the host that stands for it, the way runc's exec'd process does:
 * its stdio is the caller's stdio (or the pty it sends to --console-socket),
 * the signals it gets are forwarded, and it exits with the guest process's
 * status.  With --detach it forks: the relay child is what --pid-file names,
 * so an engine (conmon, containerd-shim) can wait for it as it would for a
 * container's exec'd process.
 *
 * The session runs over the VMM's control socket (vmm_control.c), in the
 * agent protocol's lines (guest_proto.h). */
#include "vm_backend.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1,
                                SIGUSR2, SIGWINCH, SIGALRM, SIGPWR};

struct relay {
  int sock;
  unsigned session;
  int in, out, errout;          /* in < 0: stdin closed */
  bool tty;
  size_t inflight;
  bool in_eof;
  int sig_fd;
  /* results */
  bool started, ended;
  int guest_pid, status;
  char *error;                  /* exec-error text */
};

static int sendf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sendf(int fd, const char *fmt, ...) {
  char buf[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return n > 0 ? hv_agent_write_all(fd, buf, (size_t)n) : -1;
}

static void relay_line(void *arg, char *line) {
  struct relay *r = arg;
  unsigned s;
  int a, off = 0;
  size_t n;
  if (sscanf(line, "session %u", &s) == 1 && !r->session) {
    r->session = s;
  } else if (!strncmp(line, "error ", 6) && !r->error) {
    r->error = hv_xstrdup(line + 6);
    r->ended = true;
  } else if (sscanf(line, "exec-started %u %d", &s, &a) == 2 && s == r->session) {
    r->started = true;
    r->guest_pid = a;
  } else if (sscanf(line, "exec-error %u %n", &s, &off) == 1 && off > 0 && !r->error) {
    r->error = hv_xstrdup(line + off);
    r->ended = true;
  } else if (sscanf(line, "exec-exit %u %d", &s, &a) == 2 && s == r->session) {
    r->status = a;
    r->ended = true;
  } else if (sscanf(line, "ack %u %zu", &s, &n) == 2 && s == r->session) {
    r->inflight = n > r->inflight ? 0 : r->inflight - n;
  } else if (sscanf(line, "out %u %d %n", &s, &a, &off) == 2 && off > 0 && s == r->session) {
    char buf[HV_AGENT_CHUNK];
    ssize_t len = hv_agent_hex_decode(line + off, buf, sizeof buf);
    int fd = a == 2 ? r->errout : r->out;
    if (len > 0 && fd >= 0 && hv_agent_write_all(fd, buf, (size_t)len) < 0 && a != 2)
      r->out = -1; /* our reader went away: the rest is dropped */
  }
}

/* Read from the control socket; false when it closed. */
static bool relay_read_sock(struct relay *r, struct hv_agent_lines *lines) {
  char buf[16384];
  ssize_t n = read(r->sock, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return true;
  if (n <= 0)
    return false;
  hv_agent_lines_feed(lines, buf, (size_t)n, relay_line, r);
  return true;
}

static void relay_stdin(struct relay *r) {
  char buf[HV_AGENT_CHUNK];
  size_t room = HV_AGENT_STDIN_WINDOW - r->inflight;
  ssize_t n = read(r->in, buf, room < sizeof buf ? room : sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n <= 0) {
    /* A terminal has no EOF to pass on: the process reads ^D itself. */
    r->in = -1;
    r->in_eof = true;
    if (!r->tty)
      sendf(r->sock, "eof %u\n", r->session);
    return;
  }
  r->inflight += (size_t)n;
  hv_agent_send_data(r->sock, "in", r->session, -1, buf, (size_t)n);
}

static void relay_signal(struct relay *r) {
  struct signalfd_siginfo si;
  if (read(r->sig_fd, &si, sizeof si) != sizeof si)
    return;
  if (si.ssi_signo == SIGWINCH && hv_console_winch_hook && hv_console_winch_hook())
    return;
  sendf(r->sock, "kill %u %u\n", r->session, si.ssi_signo);
}

/* Run until `until_started` is met (exec-started/error) or the session
 * ends.  Returns -1 if the VMM went away first. */
static int relay_loop(struct relay *r, struct hv_agent_lines *lines, bool until_started) {
  for (;;) {
    if (r->ended || (until_started && r->started))
      return 0;
    struct pollfd pf[3] = {{.fd = r->sock, .events = POLLIN},
                           {.fd = r->sig_fd, .events = POLLIN},
                           {.fd = -1}};
    if (!until_started && r->in >= 0 && r->started &&
        r->inflight + HV_AGENT_CHUNK <= HV_AGENT_STDIN_WINDOW)
      pf[2] = (struct pollfd){.fd = r->in, .events = POLLIN};
    if (poll(pf, 3, -1) < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (pf[0].revents && !relay_read_sock(r, lines))
      return r->ended ? 0 : -1;
    if (r->ended)
      return 0; /* nothing more goes to a finished session */
    if (pf[1].revents & POLLIN)
      relay_signal(r);
    if (pf[2].revents)
      relay_stdin(r);
  }
}

/* process.terminal: a pty for the process, its master sent to the
 * console socket; our end is the raw slave. */
static int open_terminal(const struct hv_exec_opts *o, struct relay *r, hv_error_t *err) {
  if (!o->process->terminal)
    return 0;
  if (!o->console_socket)
    return hv_error(err, 0, "exec: a terminal was requested but no --console-socket was given");
  int slave;
  if (vmb_console_pty(o->console_socket, o->process, &slave, err) < 0)
    return -1;
  r->tty = true;
  r->in = r->out = r->errout = slave;
  return 0;
}

/* In the detached relay: close every fd above 2 but the relay's own. */
static void close_all_but(const struct relay *r) {
  int keep[] = {r->sock, r->sig_fd, r->in, r->out, r->errout};
  unsigned lo = 3;
  for (;;) {
    unsigned next = ~0U; /* the lowest kept fd >= lo */
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
      if (keep[i] >= (int)lo && (unsigned)keep[i] < next)
        next = (unsigned)keep[i];
    if (next > lo)
      syscall(SYS_close_range, lo, next == ~0U ? ~0U : next - 1, 0);
    if (next == ~0U)
      return;
    lo = next + 1;
  }
}

int vmb_exec(const char *sock_path, const struct hv_exec_opts *o, int *exit_status,
             hv_error_t *err) {
  if (!o->process || !o->process->json)
    return hv_error(err, EINVAL, "exec: no process given");
  struct relay r = {.sock = -1, .in = STDIN_FILENO, .out = STDOUT_FILENO,
                    .errout = STDERR_FILENO, .sig_fd = -1};
  int rc = -1;
  struct hv_agent_lines *lines = hv_xmalloc0(sizeof *lines);
  hv_agent_lines_init(lines);
  sigset_t set, old;
  sigemptyset(&set);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaddset(&set, forwarded[i]);
  sigprocmask(SIG_BLOCK, &set, &old);
  r.sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
  if (r.sig_fd < 0) {
    hv_error(err, errno, "signalfd");
    goto out;
  }
  if (open_terminal(o, &r, err) < 0)
    goto out;
  r.sock = vmb_control_connect(sock_path, err);
  if (r.sock < 0)
    goto out;
  /* The process object as one line: compact JSON has no raw newlines. */
  if (hv_agent_write_all(r.sock, "exec ", 5) < 0 ||
      hv_agent_write_all(r.sock, o->process->json, strlen(o->process->json)) < 0 ||
      hv_agent_write_all(r.sock, "\n", 1) < 0) {
    hv_error(err, errno, "exec: write to the VMM's control socket");
    goto out;
  }
  if (relay_loop(&r, lines, true) < 0) {
    hv_error(err, 0, "exec: the VM ended before the process started");
    goto out;
  }
  if (r.error) {
    hv_error(err, 0, "exec in the guest: %s", r.error);
    goto out;
  }
  pid_t relay_pid = getpid();
  if (o->detach) {
    fflush(NULL);
    relay_pid = fork();
    if (relay_pid < 0) {
      hv_error(err, errno, "exec: fork the relay");
      goto out;
    }
    if (relay_pid == 0) {
      /* Keep only what the relay uses: hvrun's locks and the caller's
       * pipes to the engine must not stay open behind it. */
      int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
      if (!r.tty && devnull >= 0)
        for (int fd = 0; fd < 3; fd++)
          if (fcntl(fd, F_GETFD) < 0)
            dup2(devnull, fd);
      close_all_but(&r);
      int st = relay_loop(&r, lines, false) < 0 ? 255 : r.status;
      _exit(st);
    }
  }
  char pidbuf[32];
  int pidlen = snprintf(pidbuf, sizeof pidbuf, "%d", (int)relay_pid);
  if (o->pid_file && *o->pid_file &&
      hv_write_runtime_file(AT_FDCWD, o->pid_file, pidbuf, (size_t)pidlen, 0644, err) < 0) {
    hv_error_wrap(err, "exec: --pid-file");
    if (o->detach)
      kill(relay_pid, SIGTERM);
    goto out;
  }
  if (o->detach) {
    rc = 0;
    goto out;
  }
  if (relay_loop(&r, lines, false) < 0) {
    hv_error(err, 0, "exec: the VM ended before the process did");
    goto out;
  }
  *exit_status = r.status;
  rc = 0;
out:
  if (r.sock >= 0)
    close(r.sock);
  if (r.sig_fd >= 0)
    close(r.sig_fd);
  if (r.tty && r.in >= 0)
    close(r.in);
  free(r.error);
  free(lines);
  sigprocmask(SIG_SETMASK, &old, NULL);
  return rc;
}
