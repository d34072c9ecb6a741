/* agent.c: the guest half of the agent protocol (vm/guest_proto.h), run by
 * PID 1 between the workload's start and its end.
 *
 * Sessions: 0 is the workload (only its stdin, when it has no terminal: its
 * output goes straight to /dev/hvc0); 1.. are `hvrun exec` processes, whose
 * stdio is multiplexed over the control channel as hex lines.  Every fd here
 * is non-blocking and polled by PID 1's loop (init.c), so one process that
 * never reads its stdin or never exits holds up nothing else: stdin is
 * buffered up to HV_AGENT_STDIN_WINDOW per session, which is all the host
 * may send before our "ack". */
#include "init.h"
#include "../guest_proto.h"
#include "../../ns/ns_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

#define MAX_SESSIONS 32
#define INBUF_MAX (HV_AGENT_STDIN_WINDOW + HV_AGENT_CHUNK)

struct session {
  bool used;
  unsigned id;
  pid_t pid;
  bool tty;                     /* out[0] is the pty master, in_fd a dup of it */
  int in_fd;                    /* stdin pipe's write end / pty master, -1 closed */
  int out[2];                   /* stdout, stderr read ends, -1 closed */
  char *inbuf;                  /* stdin not yet written */
  size_t in_len;
  bool in_eof;                  /* close in_fd once inbuf is drained */
  bool hungup;                  /* host side gone: output is dropped */
};

static struct {
  int control_fd;
  const struct hv_oci_config *cfg;
  pid_t workload;
  struct session s[MAX_SESSIONS + 1]; /* [0]: the workload */
} A = {.control_fd = -1};

static void send_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void send_line(const char *fmt, ...) {
  if (A.control_fd < 0)
    return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n > sizeof buf - 2)
    n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  if (hv_agent_write_all(A.control_fd, buf, (size_t)n) < 0)
    guest_log("control channel write: %s", strerror(errno));
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static void close_fd(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

static struct session *find(unsigned id) {
  for (int i = 0; i <= MAX_SESSIONS; i++)
    if (A.s[i].used && A.s[i].id == id)
      return &A.s[i];
  return NULL;
}

static void session_free(struct session *s) {
  close_fd(&s->in_fd);
  close_fd(&s->out[0]);
  close_fd(&s->out[1]);
  free(s->inbuf);
  memset(s, 0, sizeof *s);
  s->in_fd = s->out[0] = s->out[1] = -1;
}

void agent_init(int control_fd, const struct hv_oci_config *cfg, pid_t workload, int stdin_fd) {
  A.control_fd = control_fd;
  A.cfg = cfg;
  A.workload = workload;
  for (int i = 0; i <= MAX_SESSIONS; i++) {
    A.s[i].in_fd = A.s[i].out[0] = A.s[i].out[1] = -1;
  }
  if (stdin_fd >= 0) {
    A.s[0].used = true;
    A.s[0].id = 0;
    A.s[0].pid = workload;
    A.s[0].in_fd = stdin_fd;
    set_nonblock(stdin_fd);
  }
}

/* ---------------- stdin ---------------- */

/* Hand buffered stdin to the process; ack what it took. */
static void flush_stdin(struct session *s) {
  size_t done = 0;
  while (s->in_fd >= 0 && done < s->in_len) {
    ssize_t n = write(s->in_fd, s->inbuf + done, s->in_len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      break;
    if (n <= 0) {
      /* The process closed its stdin: what is left is dropped, but still
       * acked so the host's sender does not wait forever. */
      close_fd(&s->in_fd);
      done = s->in_len;
      break;
    }
    done += (size_t)n;
  }
  if (s->in_fd < 0)
    done = s->in_len;
  if (done) {
    memmove(s->inbuf, s->inbuf + done, s->in_len - done);
    s->in_len -= done;
    send_line("ack %u %zu", s->id, done);
  }
  if (s->in_eof && s->in_len == 0 && !s->tty)
    close_fd(&s->in_fd);
}

static void on_in(struct session *s, const char *hex) {
  if (!s->inbuf)
    s->inbuf = malloc(INBUF_MAX);
  if (!s->inbuf)
    return;
  ssize_t n = hv_agent_hex_decode(hex, s->inbuf + s->in_len, INBUF_MAX - s->in_len);
  if (n < 0) {
    guest_log("session %u: malformed or oversized stdin line dropped", s->id);
    return;
  }
  s->in_len += (size_t)n;
  flush_stdin(s);
}

/* ---------------- exec ---------------- */

static void __attribute__((noreturn)) exec_child(const struct hv_oci_process *p, int in, int out,
                                                 int errout, bool tty, int errfd) {
  hv_error_t err = NULL;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (int sig = 1; sig < NSIG; sig++)
    signal(sig, SIG_DFL);
  if (setsid() < 0) {
    hv_error(&err, errno, "setsid");
    goto out;
  }
  if (tty && ioctl(in, TIOCSCTTY, 0) < 0) {
    hv_error(&err, errno, "make the pty the controlling terminal");
    goto out;
  }
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errout, 2) < 0) {
    hv_error(&err, errno, "dup2 stdio");
    goto out;
  }
  guest_child_exec(p, A.cfg, errfd);
out:
  guest_child_fail(&err, errfd);
}

/* The child ends of the session's stdio: a pty slave, or three pipes. */
static int make_stdio(struct session *s, const struct hv_oci_process *p, int child[3],
                      hv_error_t *err) {
  if (p->terminal) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    char name[64];
    if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof name) != 0) {
      if (m >= 0)
        close(m);
      return hv_error(err, errno, "terminal: open a pty (is devpts mounted at /dev/pts?)");
    }
    int sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (sl < 0) {
      close(m);
      return hv_error(err, errno, "terminal: open `%s`", name);
    }
    if (p->has_console_size) {
      struct winsize ws = {.ws_row = (unsigned short)p->console_size.height,
                           .ws_col = (unsigned short)p->console_size.width};
      ioctl(sl, TIOCSWINSZ, &ws);
    }
    s->tty = true;
    s->out[0] = m;
    s->in_fd = dup(m);
    child[0] = child[1] = child[2] = sl;
    return 0;
  }
  int pin[2], pout[2], perr[2];
  if (pipe2(pin, O_CLOEXEC) < 0)
    return hv_error(err, errno, "pipe");
  if (pipe2(pout, O_CLOEXEC) < 0) {
    close(pin[0]), close(pin[1]);
    return hv_error(err, errno, "pipe");
  }
  if (pipe2(perr, O_CLOEXEC) < 0) {
    close(pin[0]), close(pin[1]), close(pout[0]), close(pout[1]);
    return hv_error(err, errno, "pipe");
  }
  s->in_fd = pin[1];
  s->out[0] = pout[0];
  s->out[1] = perr[0];
  child[0] = pin[0];
  child[1] = pout[1];
  child[2] = perr[1];
  return 0;
}

static void on_exec(unsigned id, const char *json) {
  hv_error_t err = NULL;
  struct hv_oci_process *p = NULL;
  struct session *s = NULL;
  if (id == 0 || find(id)) {
    send_line("exec-error %u session id in use", id);
    return;
  }
  for (int i = 1; i <= MAX_SESSIONS && !s; i++)
    if (!A.s[i].used)
      s = &A.s[i];
  if (!s) {
    send_line("exec-error %u too many exec sessions (at most %d)", id, MAX_SESSIONS);
    return;
  }
  if (hv_oci_parse_process(json, strlen(json), "exec process", &p, &err) < 0)
    goto fail;
  if (!p->args || !p->args[0]) {
    hv_error(&err, EINVAL, "exec process: args: missing or empty");
    goto fail;
  }
  s->used = true;
  s->id = id;
  int child[3] = {-1, -1, -1}, errpipe[2];
  if (make_stdio(s, p, child, &err) < 0)
    goto fail;
  if (pipe2(errpipe, O_CLOEXEC) < 0) {
    hv_error(&err, errno, "pipe");
    goto fail_child;
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(errpipe[0]), close(errpipe[1]);
    hv_error(&err, errno, "fork");
    goto fail_child;
  }
  if (pid == 0) {
    close(errpipe[0]);
    exec_child(p, child[0], child[1], child[2], s->tty, errpipe[1]);
  }
  close(errpipe[1]);
  for (int i = 0; i < 3; i++)
    if (i == 0 || child[i] != child[0])
      close(child[i]);
  char msg[600];
  ssize_t n = read(errpipe[0], msg, sizeof msg - 1);
  close(errpipe[0]);
  if (n > 0) {
    msg[n] = 0;
    waitpid(pid, NULL, 0);
    send_line("exec-error %u %s", id, msg);
    session_free(s);
    hv_oci_process_free(p);
    return;
  }
  s->pid = pid;
  set_nonblock(s->in_fd);
  set_nonblock(s->out[0]);
  if (s->out[1] >= 0)
    set_nonblock(s->out[1]);
  hv_oci_process_free(p);
  send_line("exec-started %u %d", id, (int)pid);
  return;
fail_child:
  for (int i = 0; i < 3; i++)
    if (child[i] >= 0 && (i == 0 || child[i] != child[0]))
      close(child[i]);
fail:
  send_line("exec-error %u %s%s%s", id, err->msg, err->errno_ ? ": " : "",
            err->errno_ ? strerror(err->errno_) : "");
  hv_error_release(&err);
  if (s && s->used)
    session_free(s);
  if (p)
    hv_oci_process_free(p);
}

/* ---------------- output and exit ---------------- */

/* Read what `fd` has now and send it; false at EOF (or EIO: a pty whose
 * slave side is all closed). */
static bool pump_out(struct session *s, int stream) {
  char buf[HV_AGENT_CHUNK];
  ssize_t n = read(s->out[stream], buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return true;
  if (n <= 0)
    return false;
  if (!s->hungup && A.control_fd >= 0)
    hv_agent_send_data(A.control_fd, "out", s->id, stream + 1, buf, (size_t)n);
  return true;
}

static void signal_session(struct session *s, int sig) {
  if (s->pid > 0 && kill(-s->pid, sig) < 0 && kill(s->pid, sig) < 0)
    guest_log("signal %d to pid %d: %s", sig, (int)s->pid, strerror(errno));
}

bool agent_child_exited(pid_t pid, int status) {
  for (int i = 1; i <= MAX_SESSIONS; i++) {
    struct session *s = &A.s[i];
    if (!s->used || s->pid != pid)
      continue;
    /* What the process wrote before it ended is in the pipes now; a
     * background child that keeps them open does not hold up the exit. */
    for (int k = 0; k < 2; k++)
      for (int guard = 0; s->out[k] >= 0 && guard < 4096; guard++) {
        char buf[HV_AGENT_CHUNK];
        ssize_t n = read(s->out[k], buf, sizeof buf);
        if (n <= 0)
          break;
        if (!s->hungup && A.control_fd >= 0)
          hv_agent_send_data(A.control_fd, "out", s->id, k + 1, buf, (size_t)n);
      }
    int code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    if (!s->hungup)
      send_line("exec-exit %u %d", s->id, code);
    session_free(s);
    return true;
  }
  return false;
}

/* ---------------- control lines and polling ---------------- */

void agent_control_line(char *line) {
  unsigned id;
  int sig, off = 0;
  if (sscanf(line, "signal %d", &sig) == 1) {
    if (sig > 0 && sig < NSIG && A.workload > 0 && kill(-A.workload, sig) < 0 &&
        kill(A.workload, sig) < 0)
      guest_log("signal %d to pid %d: %s", sig, (int)A.workload, strerror(errno));
    return;
  }
  if (sscanf(line, "in %u %n", &id, &off) == 1 && off > 0) {
    struct session *s = find(id);
    if (s)
      on_in(s, line + off);
    else
      send_line("ack %u %zu", id, strlen(line + off) / 2); /* session gone */
    return;
  }
  if (sscanf(line, "eof %u", &id) == 1) {
    struct session *s = find(id);
    if (s) {
      s->in_eof = true;
      flush_stdin(s);
    }
    return;
  }
  if (sscanf(line, "exec %u %n", &id, &off) == 1 && off > 0) {
    on_exec(id, line + off);
    return;
  }
  if (sscanf(line, "kill %u %d", &id, &sig) == 2) {
    struct session *s = find(id);
    if (s && id > 0 && sig > 0 && sig < NSIG)
      signal_session(s, sig);
    return;
  }
  if (!strcmp(line, "stats")) {
    json_t *st = guest_cgroup_stats();
    char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
    json_decref(st);
    if (A.control_fd >= 0 &&
        (hv_agent_write_all(A.control_fd, "stats ", 6) < 0 ||
         hv_agent_write_all(A.control_fd, text ? text : "null", text ? strlen(text) : 4) < 0 ||
         hv_agent_write_all(A.control_fd, "\n", 1) < 0))
      guest_log("control channel write: %s", strerror(errno));
    free(text);
    return;
  }
  if (sscanf(line, "hangup %u", &id) == 1) {
    struct session *s = find(id);
    if (s && id > 0) {
      s->hungup = true;
      close_fd(&s->in_fd);
      signal_session(s, SIGHUP);
    }
  }
}

int agent_pollfds(struct pollfd *pf, int max) {
  int n = 0;
  for (int i = 0; i <= MAX_SESSIONS && n + 3 <= max; i++) {
    struct session *s = &A.s[i];
    if (!s->used)
      continue;
    if (s->in_fd >= 0 && s->in_len > 0)
      pf[n++] = (struct pollfd){.fd = s->in_fd, .events = POLLOUT};
    for (int k = 0; k < 2; k++)
      if (s->out[k] >= 0)
        pf[n++] = (struct pollfd){.fd = s->out[k], .events = POLLIN};
  }
  return n;
}

void agent_handle_poll(const struct pollfd *pf, int n) {
  for (int j = 0; j < n; j++) {
    if (!pf[j].revents)
      continue;
    for (int i = 0; i <= MAX_SESSIONS; i++) {
      struct session *s = &A.s[i];
      if (!s->used)
        continue;
      if (pf[j].fd == s->in_fd && (pf[j].events & POLLOUT))
        flush_stdin(s);
      for (int k = 0; k < 2; k++)
        if (pf[j].fd == s->out[k] && (pf[j].events & POLLIN) && !pump_out(s, k)) {
          if (s->tty && k == 0 && s->in_fd >= 0)
            close_fd(&s->in_fd);
          close_fd(&s->out[k]);
        }
    }
  }
}
