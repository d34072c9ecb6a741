/* virtio_console.c: single-port virtio console (virtio 1.x, 5.3), no
 * MULTIPORT.  Queue 0 (receiveq) carries host->guest bytes read from in_fd,
 * queue 1 (transmitq) guest->host bytes written to out_fd.  Used for the
 * workload's stdio and, as a second device, for the agent control channel.
 *
 * Input is only read when the guest has posted receive buffers: otherwise
 * in_fd is left unpolled, so a chatty host cannot make us buffer without
 * bound.  Output honours back-pressure from out_fd but gives up when the VM
 * is being destroyed, so a stalled reader cannot wedge teardown.
 */
#include "virtio.h"
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>

#define VIRTIO_CONSOLE_F_SIZE 0
#define CONSOLE_QUEUE_SIZE 64
#define RX_QUEUE 0
#define TX_QUEUE 1
#define CONSOLE_CONFIG_SIZE 12 /* cols, rows, max_nr_ports, emerg_wr */
/* Pipes report POLLOUT with at least a page free: a write this size then
 * does not block even on a blocking descriptor. */
#define OUT_CHUNK 4096

struct virtio_console {
  struct virtio_dev_ops ops;
  int in_fd, out_fd, tty_fd;    /* tty_fd: where the window size comes from */
  bool in_eof, out_failed;
  uint8_t rx_buf[4096];
  size_t rx_len, rx_off;        /* bytes read from in_fd, not yet delivered */
  struct virtio_chain chain;    /* I/O thread scratch */
};

static void console_config_read(void *dev, uint8_t *buf) {
  struct virtio_console *c = dev;
  struct winsize ws = {0};
  if (c->tty_fd >= 0 && ioctl(c->tty_fd, TIOCGWINSZ, &ws) == 0) {
    memcpy(buf + 0, &ws.ws_col, 2);
    memcpy(buf + 2, &ws.ws_row, 2);
  }
  uint32_t ports = 1;
  memcpy(buf + 4, &ports, 4);
}

/* Write all of [p, p+len) to out_fd; false if the device is being torn down
 * or out_fd failed (output is then discarded so the guest never stalls). */
static bool write_out(struct virtio_mmio *t, struct virtio_console *c, const uint8_t *p,
                      size_t len) {
  while (len > 0 && !c->out_failed) {
    struct pollfd pf[2] = {{.fd = c->out_fd, .events = POLLOUT},
                           {.fd = virtio_mmio_stop_fd(t), .events = POLLIN}};
    if (poll(pf, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      c->out_failed = true;
      break;
    }
    if (pf[1].revents)
      return false;
    ssize_t n = write(c->out_fd, p, len < OUT_CHUNK ? len : OUT_CHUNK);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0) {
      hv_warn("virtio-console: write to fd %d: %s; further output discarded", c->out_fd,
              n < 0 ? strerror(errno) : "wrote nothing");
      c->out_failed = true;
      break;
    }
    p += n;
    len -= (size_t)n;
  }
  return true;
}

static void console_transmit(struct virtio_mmio *t, struct virtio_console *c) {
  struct virtio_chain *ch = &c->chain;
  bool any = false;
  while (virtio_queue_pop(t, TX_QUEUE, ch) == 1) {
    bool alive = true;
    for (uint16_t i = 0; i < ch->n_readable && alive; i++)
      if (c->out_fd >= 0)
        alive = write_out(t, c, ch->segs[i].host, ch->segs[i].len);
    if (!alive)
      return; /* tearing down: the guest will never look again */
    virtio_queue_push(t, TX_QUEUE, ch, 0);
    any = true;
  }
  if (any)
    virtio_queue_signal(t, TX_QUEUE);
}

/* Refill rx_buf from in_fd.  May block only if told in_fd is readable (or
 * it cannot be polled, i.e. a regular file or /dev/null, which never
 * block).  Returns true if there is something to deliver. */
static bool fill_rx(struct virtio_mmio *t, struct virtio_console *c, bool *may_read) {
  if (c->rx_off < c->rx_len)
    return true;
  if (c->in_fd < 0 || c->in_eof || !*may_read)
    return false;
  *may_read = !t->extra_pollable; /* pollable: one read per readiness report */
  for (;;) {
    ssize_t n = read(c->in_fd, c->rx_buf, sizeof c->rx_buf);
    if (n > 0) {
      c->rx_len = (size_t)n;
      c->rx_off = 0;
      return true;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return false;
    /* EOF (or an error): the guest just sees no more input.  Telling the
     * workload about EOF is the agent's job over the control channel. */
    if (n < 0)
      hv_warn("virtio-console: read from fd %d: %s; input closed", c->in_fd, strerror(errno));
    c->in_eof = true;
    return false;
  }
}

/* Move host input into the guest's receive buffers as far as both allow,
 * then decide whether in_fd needs watching. */
static void console_receive(struct virtio_mmio *t, struct virtio_console *c, bool readable) {
  struct virtio_chain *ch = &c->chain;
  bool may_read = readable || !t->extra_pollable, any = false;
  for (;;) {
    if (!virtio_queue_has_avail(t, RX_QUEUE))
      break; /* wait for the guest to post buffers (rx notify) */
    if (!fill_rx(t, c, &may_read))
      break;
    if (virtio_queue_pop(t, RX_QUEUE, ch) != 1)
      break;
    if (!virtio_mmio_io_begin(t, ch))
      continue; /* reset since the pop */
    size_t n = virtio_chain_write(ch, 0, c->rx_buf + c->rx_off, c->rx_len - c->rx_off);
    virtio_mmio_io_end(t);
    c->rx_off += n;
    virtio_queue_push(t, RX_QUEUE, ch, (uint32_t)n);
    any = true;
  }
  if (any)
    virtio_queue_signal(t, RX_QUEUE);
  /* Watch in_fd only while the guest has room and we have nothing pending. */
  bool want = t->extra_pollable && !c->in_eof && c->rx_off == c->rx_len &&
              virtio_queue_has_avail(t, RX_QUEUE);
  virtio_mmio_watch_fd(t, want);
}

static void console_queue_notify(struct virtio_mmio *t, void *dev, uint16_t q) {
  struct virtio_console *c = dev;
  if (q == TX_QUEUE)
    console_transmit(t, c);
  else
    console_receive(t, c, false);
}

static void console_fd_ready(struct virtio_mmio *t, void *dev, uint32_t events) {
  (void)events; /* HUP/ERR also surface as a read returning 0 or an error */
  console_receive(t, dev, true);
}

static void console_destroy(void *dev) { free(dev); }

int virtio_console_create(struct vm *vm, int in_fd, int out_fd, hv_error_t *err) {
  struct virtio_console *c = hv_xmalloc0(sizeof *c);
  c->in_fd = in_fd;
  c->out_fd = out_fd;
  c->tty_fd = isatty(out_fd) ? out_fd : isatty(in_fd) ? in_fd : -1;
  c->ops = (struct virtio_dev_ops){
      .name = "virtio-console",
      .device_id = VIRTIO_ID_CONSOLE,
      .features = c->tty_fd >= 0 ? 1ULL << VIRTIO_CONSOLE_F_SIZE : 0,
      .num_queues = 2,
      .queue_size_max = CONSOLE_QUEUE_SIZE,
      .config_size = CONSOLE_CONFIG_SIZE,
      .config_read = console_config_read,
      .queue_notify = console_queue_notify,
      .fd_ready = console_fd_ready,
      .destroy = console_destroy,
  };
  /* The transport polls in_fd if it can; regular files and /dev/null
   * cannot be epolled (it then reports !extra_pollable) and are read
   * whenever the guest has buffers, which never blocks. */
  if (virtio_mmio_create(vm, &c->ops, c, in_fd, NULL, err) < 0) {
    free(c);
    return hv_error_wrap(err, "virtio-console");
  }
  return 0;
}
