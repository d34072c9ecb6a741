/* vmm_control.c: the VMM process's control thread and stdin relay.
 *
 * The control thread owns our end of the guest's control channel
 * (/dev/hvc1, protocol in guest_proto.h) and <state>/control.sock, where
 * hvrun's own commands connect.  A client's first line says what it wants:
 *   "signal N"     forwarded to the guest as "signal N"; answered "ok"
 *   "guest-pid"    answered "pid P" (from the guest's "started P"; 0 before)
 *   "guest-stats"  answered "stats JSON": the guest's answer to "stats" (the
 *                  workload's cgroup in the guest), "stats null" before
 *                  the workload runs
 *   "exec JSON"    an `hvrun exec` session (vm_exec.c): answered
 *                  "session S", then the connection carries the session's
 *                  lines both ways ("in/eof/kill S ..." from the client,
 *                  "out/ack/exec-started/exec-error/exec-exit S ..." from
 *                  the guest) until the guest reports its end.
 *   errors are answered "error TEXT".
 * Signals sent to V itself arrive here through a signalfd and are forwarded
 * the same way.
 *
 * The stdin relay thread feeds the workload's stdin (when it has no
 * terminal) as "in 0" lines, at most HV_AGENT_STDIN_WINDOW bytes ahead of
 * the guest's "ack 0", and sends "eof 0" at the end. */
#include "vm_backend.h"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

/* One writer at a time on the guest channel: lines must not interleave. */
static int guest_send(struct vmb_control *v, const char *line, size_t len) {
  if (v->guest_fd < 0)
    return -1;
  pthread_mutex_lock(&v->write_lock);
  int r = hv_agent_write_all(v->guest_fd, line, len);
  pthread_mutex_unlock(&v->write_lock);
  return r;
}

static void guest_sendf(struct vmb_control *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void guest_sendf(struct vmb_control *v, const char *fmt, ...) {
  char buf[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0 && (size_t)n < sizeof buf && guest_send(v, buf, (size_t)n) < 0)
    hv_debug("VMM: control channel write: %s", strerror(errno));
}

static bool default_ignored(int sig) {
  return sig == SIGCHLD || sig == SIGCONT || sig == SIGWINCH || sig == SIGURG;
}

/* Forward a signal; before `start` there is no workload yet, and a
 * signal whose default action ends a process ends V, as it would end a
 * created container's waiting init. */
void vmb_control_forward_signal(struct vmb_control *v, int sig) {
  if (!atomic_load(&v->booting)) {
    if (!default_ignored(sig))
      _exit(128 + sig);
    return;
  }
  /* While the guest boots, its init has not opened the control channel,
   * and the guest's console drops what arrives on a port nobody has open:
   * keep the signal until the init reports "started" (guest_started). */
  pthread_mutex_lock(&v->state_lock);
  bool hold = atomic_load(&v->guest_pid) == 0;
  if (hold)
    v->pending |= 1ULL << (sig - 1);
  pthread_mutex_unlock(&v->state_lock);
  if (!hold)
    guest_sendf(v, "signal %d\n", sig);
}

/* ---------------- clients ---------------- */

static void client_close(struct vmb_control *v, struct vmb_client *c) {
  if (c->session && c->exec_sent)
    guest_sendf(v, "hangup %u\n", c->session);
  close(c->fd);
  free(c->lines);
  free(c->exec_line);
  memset(c, 0, sizeof *c);
  c->fd = -1;
}

static bool client_reply(struct vmb_client *c, const char *line) {
  return hv_agent_write_all(c->fd, line, strlen(line)) == 0;
}

static struct vmb_client *session_client(struct vmb_control *v, unsigned session) {
  for (int i = 0; i < VMB_MAX_CLIENTS; i++)
    if (v->clients[i].fd >= 0 && v->clients[i].session == session)
      return &v->clients[i];
  return NULL;
}

static void send_exec(struct vmb_control *v, struct vmb_client *c) {
  if (guest_send(v, c->exec_line, strlen(c->exec_line)) < 0) {
    client_reply(c, "exec-error 0 the VM's control channel is closed\n");
    c->closing = true;
    return;
  }
  c->exec_sent = true;
  free(c->exec_line);
  c->exec_line = NULL;
}

/* The first line of a client. */
static void client_request(struct vmb_control *v, struct vmb_client *c, char *line) {
  int sig;
  char reply[64];
  if (sscanf(line, "signal %d", &sig) == 1 && sig > 0 && sig < 65) {
    client_reply(c, "ok\n"); /* a courtesy: the signal goes anyway */
    vmb_control_forward_signal(v, sig);
  } else if (!strcmp(line, "guest-pid")) {
    snprintf(reply, sizeof reply, "pid %d\n", atomic_load(&v->guest_pid));
    client_reply(c, reply);
  } else if (!strcmp(line, "guest-stats")) {
    if (atomic_load(&v->guest_pid) == 0 || v->guest_fd < 0) {
      client_reply(c, "stats null\n");
    } else {
      /* One question to the guest answers every client waiting. */
      c->want_stats = true;
      if (!v->stats_asked) {
        v->stats_asked = true;
        guest_sendf(v, "stats\n");
      }
      return;
    }
  } else if (!strncmp(line, "exec ", 5)) {
    if (!atomic_load(&v->booting) || v->guest_fd < 0) {
      client_reply(c, "error the VM is not running\n");
    } else {
      c->session = ++v->next_session;
      c->exec_line = hv_xasprintf("exec %u %s\n", c->session, line + 5);
      snprintf(reply, sizeof reply, "session %u\n", c->session);
      if (!client_reply(c, reply))
        goto close;
      /* Before "started" the init is not listening yet: the line waits. */
      if (atomic_load(&v->guest_pid) > 0)
        send_exec(v, c);
      return;
    }
  } else {
    client_reply(c, "error unknown request\n");
  }
close:
  /* Not freed here: we are inside the feed of this client's own lines. */
  c->closing = true;
}

struct client_arg {
  struct vmb_control *v;
  struct vmb_client *c;
};

/* Lines of an exec session, from its client: only its own session's
 * "in", "eof" and "kill" go through. */
static void client_line(void *arg, char *line) {
  struct client_arg *a = arg;
  struct vmb_client *c = a->c;
  if (c->fd < 0 || c->closing)
    return;
  if (!c->session) {
    client_request(a->v, c, line);
    return;
  }
  char verb[8];
  unsigned s;
  if (sscanf(line, "%7s %u", verb, &s) != 2 || s != c->session || !c->exec_sent ||
      (strcmp(verb, "in") && strcmp(verb, "eof") && strcmp(verb, "kill")))
    return;
  size_t len = strlen(line);
  line[len] = '\n';
  guest_send(a->v, line, len + 1);
  line[len] = 0;
}

static void client_readable(struct vmb_control *v, struct vmb_client *c) {
  char buf[8192];
  ssize_t n = read(c->fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n <= 0) {
    client_close(v, c);
    return;
  }
  struct client_arg a = {v, c};
  hv_agent_lines_feed(c->lines, buf, (size_t)n, client_line, &a);
}

static void accept_client(struct vmb_control *v) {
  int fd = accept4(v->listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0)
    return;
  for (int i = 0; i < VMB_MAX_CLIENTS; i++) {
    struct vmb_client *c = &v->clients[i];
    if (c->fd >= 0)
      continue;
    c->lines = malloc(sizeof *c->lines);
    if (!c->lines)
      break;
    hv_agent_lines_init(c->lines);
    c->fd = fd;
    return;
  }
  if (hv_agent_write_all(fd, "error too many clients\n", 23) < 0) {
    /* closing says enough */
  }
  close(fd);
}

/* ---------------- the guest's lines ---------------- */

static void guest_started(struct vmb_control *v, int pid) {
  pthread_mutex_lock(&v->state_lock);
  atomic_store(&v->guest_pid, pid);
  uint64_t pending = v->pending;
  v->pending = 0;
  pthread_mutex_unlock(&v->state_lock);
  for (int sig = 1; sig <= 64; sig++)
    if (pending & (1ULL << (sig - 1)))
      guest_sendf(v, "signal %d\n", sig);
  for (int i = 0; i < VMB_MAX_CLIENTS; i++)
    if (v->clients[i].fd >= 0 && v->clients[i].exec_line)
      send_exec(v, &v->clients[i]);
  uint64_t one = 1;
  if (write(v->started_efd, &one, sizeof one) < 0) {
    /* only the stdin relay waits for it */
  }
}

static void guest_line(void *arg, char *line) {
  struct vmb_control *v = arg;
  int pid;
  unsigned s;
  size_t n;
  char verb[16];
  if (sscanf(line, "started %d", &pid) == 1 && pid > 0) {
    guest_started(v, pid);
    return;
  }
  if (sscanf(line, "ack %u %zu", &s, &n) == 2 && s == 0) {
    pthread_mutex_lock(&v->state_lock);
    v->stdin_inflight = n > v->stdin_inflight ? 0 : v->stdin_inflight - n;
    pthread_cond_signal(&v->credit);
    pthread_mutex_unlock(&v->state_lock);
    return;
  }
  if (!strncmp(line, "stats ", 6)) {
    v->stats_asked = false;
    size_t len = strlen(line);
    line[len] = '\n';
    for (int i = 0; i < VMB_MAX_CLIENTS; i++)
      if (v->clients[i].fd >= 0 && v->clients[i].want_stats) {
        hv_agent_write_all(v->clients[i].fd, line, len + 1);
        client_close(v, &v->clients[i]);
      }
    line[len] = 0;
    return;
  }
  if (sscanf(line, "%15s %u", verb, &s) != 2 || s == 0)
    return;
  struct vmb_client *c = session_client(v, s);
  if (!c)
    return;
  size_t len = strlen(line);
  line[len] = '\n';
  /* Blocking: a slow reader of exec output slows the guest's channel
   * (back-pressure) rather than making us buffer without bound. */
  bool ok = hv_agent_write_all(c->fd, line, len + 1) == 0;
  line[len] = 0;
  if (!ok || !strcmp(verb, "exec-exit") || !strcmp(verb, "exec-error")) {
    if (ok)
      c->exec_sent = false; /* ended: no hangup to send */
    client_close(v, c);
  }
}

static void guest_gone(struct vmb_control *v) {
  pthread_mutex_lock(&v->state_lock);
  v->guest_fd = -1; /* the VM is gone; main is about to exit */
  pthread_cond_broadcast(&v->credit);
  pthread_mutex_unlock(&v->state_lock);
  for (int i = 0; i < VMB_MAX_CLIENTS; i++)
    if (v->clients[i].fd >= 0) {
      v->clients[i].exec_sent = false;
      client_close(v, &v->clients[i]);
    }
}

static void *control_thread(void *arg) {
  struct vmb_control *v = arg;
  char buf[8192];
  for (;;) {
    struct pollfd pf[3 + VMB_MAX_CLIENTS];
    struct vmb_client *who[3 + VMB_MAX_CLIENTS];
    pf[0] = (struct pollfd){.fd = v->listen_fd, .events = POLLIN};
    pf[1] = (struct pollfd){.fd = v->guest_fd, .events = POLLIN};
    pf[2] = (struct pollfd){.fd = v->sig_fd, .events = POLLIN};
    nfds_t n = 3;
    for (int i = 0; i < VMB_MAX_CLIENTS; i++)
      if (v->clients[i].fd >= 0) {
        who[n] = &v->clients[i];
        pf[n++] = (struct pollfd){.fd = v->clients[i].fd, .events = POLLIN};
      }
    if (poll(pf, n, -1) < 0) {
      if (errno == EINTR)
        continue;
      return NULL;
    }
    if (pf[1].revents & (POLLIN | POLLHUP)) {
      ssize_t r = read(v->guest_fd, buf, sizeof buf);
      if (r > 0)
        hv_agent_lines_feed(&v->guest_lines, buf, (size_t)r, guest_line, v);
      else if (r == 0)
        guest_gone(v);
    }
    if (pf[2].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(v->sig_fd, &si, sizeof si) == sizeof si)
        vmb_control_forward_signal(v, (int)si.ssi_signo);
    }
    for (nfds_t i = 3; i < n; i++)
      if (pf[i].revents && who[i]->fd == pf[i].fd)
        client_readable(v, who[i]);
    if (pf[0].revents & POLLIN)
      accept_client(v);
    for (int i = 0; i < VMB_MAX_CLIENTS; i++)
      if (v->clients[i].fd >= 0 && v->clients[i].closing)
        client_close(v, &v->clients[i]);
  }
}

/* ---------------- stdin relay (session 0) ---------------- */

static void *stdin_thread(void *arg) {
  struct vmb_control *v = arg;
  uint64_t one;
  while (read(v->started_efd, &one, sizeof one) < 0 && errno == EINTR)
    ;
  char buf[HV_AGENT_CHUNK];
  for (;;) {
    pthread_mutex_lock(&v->state_lock);
    while (v->guest_fd >= 0 && v->stdin_inflight + sizeof buf > HV_AGENT_STDIN_WINDOW)
      pthread_cond_wait(&v->credit, &v->state_lock);
    bool gone = v->guest_fd < 0;
    pthread_mutex_unlock(&v->state_lock);
    if (gone)
      return NULL;
    ssize_t r = v->stdin_src >= 0 ? read(v->stdin_src, buf, sizeof buf) : 0;
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    pthread_mutex_lock(&v->state_lock);
    v->stdin_inflight += (size_t)r;
    pthread_mutex_unlock(&v->state_lock);
    pthread_mutex_lock(&v->write_lock);
    int w = v->guest_fd >= 0 ? hv_agent_send_data(v->guest_fd, "in", 0, -1, buf, (size_t)r) : -1;
    pthread_mutex_unlock(&v->write_lock);
    if (w < 0)
      return NULL;
  }
  guest_sendf(v, "eof 0\n");
  return NULL;
}

int vmb_control_start(struct vmb_control *v, hv_error_t *err) {
  for (int i = 0; i < VMB_MAX_CLIENTS; i++)
    v->clients[i].fd = -1;
  hv_agent_lines_init(&v->guest_lines);
  pthread_mutex_init(&v->write_lock, NULL);
  pthread_mutex_init(&v->state_lock, NULL);
  pthread_cond_init(&v->credit, NULL);
  v->started_efd = eventfd(0, EFD_CLOEXEC);
  if (v->started_efd < 0)
    return hv_error(err, errno, "eventfd");
  pthread_t th;
  if (pthread_create(&th, NULL, control_thread, v) != 0)
    return hv_error(err, errno, "start the VMM's control thread");
  if (v->stdin_relay && pthread_create(&th, NULL, stdin_thread, v) != 0)
    return hv_error(err, errno, "start the VMM's stdin relay");
  return 0;
}
