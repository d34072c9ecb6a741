/* console.c: hvrun as the terminal holder (run/exec without
 * --console-socket, the one-shot -t).  We listen on a private unix socket
 * whose path goes to the container as --console-socket; a relay thread
 * accepts the pty master the container sends, puts our terminal in raw
 * mode, copies its size, and relays stdin -> master and master -> stdout
 * until the pty hangs up.  SIGWINCH reaches us through the wait loop
 * (ns_wait_forwarding), which calls it through hv_console_winch_hook. */
#include "cli_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

static struct cli_console *active; /* for SIGWINCH */

int cli_console_listen(struct cli_console *c, hv_error_t *err) {
  char tmpl[] = "/tmp/hvrun-console.XXXXXX";
  if (!mkdtemp(tmpl))
    return hv_error(err, errno, "create a directory for the console socket");
  c->dir = hv_xstrdup(tmpl);
  c->path = hv_xasprintf("%s/console.sock", tmpl);
  c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->listen_fd < 0)
    return hv_error(err, errno, "socket");
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", c->path);
  if (bind(c->listen_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(c->listen_fd, 1) < 0)
    return hv_error(err, errno, "listen on `%s`", c->path);
  if (pipe2(c->stop, O_CLOEXEC) < 0)
    return hv_error(err, errno, "pipe");
  return 0;
}

static int recv_master(int sock) {
  char data[256];
  struct iovec iov = {data, sizeof data};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                     .msg_controllen = sizeof u.buf};
  ssize_t r;
  do
    r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return -1;
  for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
    if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
      int fd;
      memcpy(&fd, CMSG_DATA(h), sizeof fd);
      return fd;
    }
  return -1;
}

static void copy_winsize(int master) {
  struct winsize ws;
  if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 ||
      ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
    ioctl(master, TIOCSWINSZ, &ws);
}

static bool console_winch(void) {
  if (!active || active->master < 0)
    return false;
  copy_winsize(active->master);
  return true;
}

static bool write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    p += w;
    n -= (size_t)w;
  }
  return true;
}

static void *relay(void *arg) {
  struct cli_console *c = arg;
  struct pollfd a[2] = {{c->listen_fd, POLLIN, 0}, {c->stop[0], POLLIN, 0}};
  while (poll(a, 2, -1) < 0 && errno == EINTR)
    ;
  if (a[1].revents)
    return NULL;
  int sock = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (sock < 0)
    return NULL;
  int master = recv_master(sock);
  close(sock);
  if (master < 0)
    return NULL;
  c->master = master;
  copy_winsize(master);
  if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &c->saved) == 0) {
    struct termios raw = c->saved;
    cfmakeraw(&raw);
    /* The container's pty already turns \n into \r\n. */
    if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
      c->raw = true;
  }
  bool in_open = c->forward_stdin;
  char buf[16384];
  for (;;) {
    struct pollfd p[3] = {{master, POLLIN, 0},
                          {in_open ? STDIN_FILENO : -1, POLLIN, 0},
                          {c->stop[0], POLLIN, 0}};
    if (poll(p, 3, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (p[0].revents) {
      ssize_t n = read(master, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break; /* EIO: every slave is closed, the workload is gone */
      write_all(STDOUT_FILENO, buf, (size_t)n);
    }
    if (p[1].revents) {
      ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
      if (n > 0) {
        write_all(master, buf, (size_t)n);
      } else if (n == 0 || errno != EINTR) {
        /* Our input ended: pass an end-of-file to the terminal's reader. */
        char eof = 4;
        if (!isatty(STDIN_FILENO))
          write_all(master, &eof, 1);
        in_open = false;
      }
    }
    if (p[2].revents) {
      /* Drain what the workload wrote before it went away. */
      int fl = fcntl(master, F_GETFL);
      fcntl(master, F_SETFL, fl | O_NONBLOCK);
      ssize_t n;
      while ((n = read(master, buf, sizeof buf)) > 0)
        write_all(STDOUT_FILENO, buf, (size_t)n);
      break;
    }
  }
  return NULL;
}

int cli_console_attach(struct cli_console *c, bool forward_stdin, hv_error_t *err) {
  c->forward_stdin = forward_stdin;
  active = c;
  hv_console_winch_hook = console_winch;
  /* The relay thread must not take the signals the wait loop forwards. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int r = pthread_create(&c->thread, NULL, relay, c);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (r != 0)
    return hv_error(err, r, "start the terminal relay");
  c->thread_started = true;
  return 0;
}

void cli_console_finish(struct cli_console *c) {
  if (c->thread_started) {
    /* Give the relay a moment to see the hang-up by itself, then stop it. */
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += 2;
    if (pthread_timedjoin_np(c->thread, NULL, &t) != 0) {
      if (write(c->stop[1], "x", 1) < 0) {
        /* nothing more to do */
      }
      pthread_join(c->thread, NULL);
    }
    c->thread_started = false;
  }
  if (c->raw)
    tcsetattr(STDIN_FILENO, TCSANOW, &c->saved);
  c->raw = false;
  if (active == c) {
    active = NULL;
    hv_console_winch_hook = NULL;
  }
  if (c->master >= 0)
    close(c->master);
  if (c->listen_fd >= 0)
    close(c->listen_fd);
  for (int i = 0; i < 2; i++)
    if (c->stop[i] >= 0)
      close(c->stop[i]);
  c->master = c->listen_fd = c->stop[0] = c->stop[1] = -1;
  if (c->path)
    unlink(c->path);
  if (c->dir)
    rmdir(c->dir);
  free(c->path);
  free(c->dir);
  c->path = c->dir = NULL;
}
