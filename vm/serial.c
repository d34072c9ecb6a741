/* serial.c: an 8250/16550A UART at 0x3f8 (COM1, IRQ 4), enough for Linux's
 * 8250 driver (autoconfig, loopback test, THRE interrupts) and for
 * earlyprintk=serial, which polls LSR.  Transmitted bytes go to out_fd in
 * line-sized writes; there is no receive path (the console is virtio). */
#include "vmm.h"
#include <errno.h>
#include <string.h>

#define COM1_PORT 0x3f8
#define COM1_IRQ 4

enum { RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define MCR_OUT2 0x08
#define IER_THRI 0x02
#define IER_RDI 0x01
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

struct serial {
  pthread_mutex_t lock;
  int out_fd;
  uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
  bool thr_ipending;            /* THR-empty interrupt not yet acknowledged */
  bool rx_full;                 /* loopback byte waiting in RBR */
  uint8_t rbr;
  int irq_level;
  char buf[256];
  size_t len;
};

static void flush_out(struct serial *s) {
  size_t off = 0;
  while (s->out_fd >= 0 && off < s->len) {
    ssize_t w = write(s->out_fd, s->buf + off, s->len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      break; /* reader gone: drop the log rather than stall the guest */
    off += (size_t)w;
  }
  s->len = 0;
}

static uint8_t iir(const struct serial *s) {
  uint8_t fifo = (s->fcr & 1) ? IIR_FIFO : 0;
  if ((s->ier & IER_RDI) && s->rx_full)
    return IIR_RDI | fifo;
  if ((s->ier & IER_THRI) && s->thr_ipending)
    return IIR_THRI | fifo;
  return IIR_NONE | fifo;
}

static void update_irq(struct vm *vm, struct serial *s) {
  /* On a PC the UART's interrupt reaches the PIC only with OUT2 set. */
  int level = (iir(s) & IIR_NONE) == 0 && (s->mcr & MCR_OUT2) ? 1 : 0;
  if (level != s->irq_level) {
    s->irq_level = level;
    vm_irq_line(vm, COM1_IRQ, level);
  }
}

static void transmit(struct serial *s, uint8_t c) {
  if (s->mcr & MCR_LOOP) {
    s->rbr = c;
    s->rx_full = true;
    return;
  }
  s->buf[s->len++] = (char)c;
  if (c == '\n' || s->len == sizeof s->buf)
    flush_out(s);
}

static uint8_t msr_value(const struct serial *s) {
  if (s->mcr & MCR_LOOP) /* DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
    return (uint8_t)(((s->mcr & 1) << 5) | ((s->mcr & 2) << 3) | ((s->mcr & 4) << 4) |
                     ((s->mcr & 8) << 4));
  return 0xb0; /* DCD, DSR, CTS: a terminal is always there */
}

static void serial_io(struct vm *vm, void *opaque, uint64_t off, uint8_t *data, uint32_t len,
                      bool is_write) {
  struct serial *s = opaque;
  if (len != 1) {
    if (!is_write)
      memset(data, 0xff, len);
    return;
  }
  pthread_mutex_lock(&s->lock);
  bool dlab = s->lcr & LCR_DLAB;
  if (is_write) {
    uint8_t v = data[0];
    switch (off) {
    case RBR_THR:
      if (dlab) {
        s->dll = v;
      } else {
        transmit(s, v);
        s->thr_ipending = true; /* sent at once, so THR is empty again */
      }
      break;
    case IER:
      if (dlab) {
        s->dlm = v;
      } else {
        /* Enabling THRI while THR is empty raises it, as a real 16550. */
        if (!(s->ier & IER_THRI) && (v & IER_THRI))
          s->thr_ipending = true;
        s->ier = v & 0x0f;
      }
      break;
    case IIR_FCR:
      s->fcr = v & 0xc9;
      if (v & 0x02)
        s->rx_full = false;
      break;
    case LCR: s->lcr = v; break;
    case MCR: s->mcr = v & 0x1f; break;
    case SCR: s->scr = v; break;
    default: break;
    }
  } else {
    uint8_t v = 0;
    switch (off) {
    case RBR_THR:
      if (dlab) {
        v = s->dll;
      } else {
        v = s->rbr;
        s->rx_full = false;
      }
      break;
    case IER: v = dlab ? s->dlm : s->ier; break;
    case IIR_FCR:
      v = iir(s);
      if ((v & 0x0f) == IIR_THRI)
        s->thr_ipending = false; /* reading IIR acknowledges THRE */
      break;
    case LCR: v = s->lcr; break;
    case MCR: v = s->mcr; break;
    case LSR: v = LSR_THRE | LSR_TEMT | (s->rx_full ? LSR_DR : 0); break;
    case MSR: v = msr_value(s); break;
    case SCR: v = s->scr; break;
    default: break;
    }
    data[0] = v;
  }
  update_irq(vm, s);
  pthread_mutex_unlock(&s->lock);
}

static void serial_destroy(struct vm *vm, void *opaque) {
  (void)vm;
  struct serial *s = opaque;
  flush_out(s);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

int vm_serial_create(struct vm *vm, int out_fd, hv_error_t *err) {
  struct serial *s = hv_xmalloc0(sizeof(*s));
  pthread_mutex_init(&s->lock, NULL);
  s->out_fd = out_fd;
  s->dll = 12; /* 9600 baud, as firmware leaves it */
  s->lcr = 0x03;
  if (vm_register_pio(vm, COM1_PORT, 8, serial_io, s) < 0) {
    int e = errno;
    serial_destroy(vm, s);
    return hv_error(err, e, "register serial port 0x%x", COM1_PORT);
  }
  return vm_add_device(vm, "serial", serial_destroy, s);
}
