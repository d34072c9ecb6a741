/* console.c: process.terminal.  A new pty pair is opened through /dev/ptmx
 * (the container's devpts once pivot_root is done), the slave becomes the
 * controlling terminal and stdio, and the master goes to the caller's
 * --console-socket with SCM_RIGHTS (the message carries the pty name, as
 * runc sends it). */
#include "sandbox.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

int ns_console_connect(const char *socket_path, hv_error_t *err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (!socket_path || !*socket_path)
    return hv_error(err, 0, "--console-socket: missing path");
  if (strlen(socket_path) >= sizeof sa.sun_path)
    return hv_error(err, 0, "--console-socket: `%s` is too long", socket_path);
  strcpy(sa.sun_path, socket_path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return hv_error(err, errno, "--console-socket: socket");
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return hv_error(err, e, "--console-socket: connect `%s`", socket_path);
  }
  return fd;
}

int ns_send_fd(int sock, int fd, const char *payload) {
  /* SCM_RIGHTS needs at least one byte of real data to travel with it. */
  struct iovec iov = {.iov_base = (void *)payload, .iov_len = strlen(payload)};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t r;
  do
    r = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -1 : 0;
}

int hv_console_send_fd(int sock, int master_fd, const char *name, hv_error_t *err) {
  const char *payload = name && *name ? name : "/dev/ptmx";
  if (ns_send_fd(sock, master_fd, payload) < 0)
    return hv_error(err, errno, "--console-socket: send pty master");
  return 0;
}

int hv_console_send(const char *socket_path, int master_fd, hv_error_t *err) {
  int fd = ns_console_connect(socket_path, err);
  if (fd < 0)
    return -1;
  cleanup_close int sock = fd;
  return hv_console_send_fd(sock, master_fd, NULL, err);
}

int ns_setup_console_fd(int sock, const struct hv_oci_process *p, hv_error_t *err) {
  cleanup_close int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0)
    return hv_error(err, errno, "process.terminal: open /dev/ptmx");
  if (unlockpt(master) < 0)
    return hv_error(err, errno, "process.terminal: unlockpt");
  char name[64] = "";
  if (ptsname_r(master, name, sizeof name) != 0)
    name[0] = 0;
  /* TIOCGPTPEER opens the peer of this very master, never a path that
   * something in the container could have replaced. */
  int s = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0 && *name)
    s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0)
    return hv_error(err, errno, "process.terminal: open the pty slave");
  cleanup_close int slave = s;
  if (p && p->has_console_size) {
    struct winsize ws = {.ws_row = (unsigned short)p->console_size.height,
                         .ws_col = (unsigned short)p->console_size.width};
    if (ioctl(slave, TIOCSWINSZ, &ws) < 0)
      return hv_error(err, errno, "process.consoleSize: TIOCSWINSZ");
  }
  /* The workload's user must own its terminal (best effort: a user ns
   * may not map that uid). */
  if (p && fchown(slave, p->user.uid, (gid_t)-1) < 0)
    hv_debug("process.terminal: chown pty to uid %u: %s", p->user.uid, strerror(errno));
  if (setsid() < 0 && errno != EPERM)
    return hv_error(err, errno, "process.terminal: setsid");
  if (ioctl(slave, TIOCSCTTY, 0) < 0)
    return hv_error(err, errno, "process.terminal: make the pty the controlling terminal");
  for (int fd = 0; fd < 3; fd++)
    if (slave != fd && dup3(slave, fd, 0) < 0)
      return hv_error(err, errno, "process.terminal: dup pty onto fd %d", fd);
  return hv_console_send_fd(sock, master, name, err);
}

int ns_setup_console(const char *console_socket, const struct hv_oci_process *p,
                     hv_error_t *err) {
  int fd = ns_console_connect(console_socket, err);
  if (fd < 0)
    return -1;
  cleanup_close int sock = fd;
  return ns_setup_console_fd(sock, p, err);
}
