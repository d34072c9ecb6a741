/* virtio.h: private contract between the virtio-mmio transport
 * (virtio_mmio.c), the split-virtqueue walker (virtqueue.c) and the virtio
 * devices (virtio_blk.c, virtio_console.c).  Not included outside vm/ and
 * vm/'s own unit tests.
 *
 * Threading model: a device's registers are accessed from vCPU threads
 * (through the MMIO handler); its queues are processed by one I/O thread per
 * device, woken by ioeventfds on QueueNotify.  Interrupts go out through an
 * irqfd.  The transport lock protects the register state and the rings'
 * bookkeeping; devices do their (possibly blocking) host I/O without it.
 */
#ifndef HVRUN_VIRTIO_H
#define HVRUN_VIRTIO_H
#include "vmm.h"
#include <sys/uio.h>

/* Device status bits (virtio 1.x, 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* Transport-level feature bits. */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* InterruptStatus bits. */
#define VIRTIO_INT_USED_RING 0x1
#define VIRTIO_INT_CONFIG 0x2

/* virtio-mmio register offsets (Version 2 layout, virtio 1.x 4.2.2). */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_SHM_SEL 0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW 0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH 0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW 0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH 0x0bc
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MMIO_MAGIC 0x74726976u /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x48565255u /* "HVRU" */

#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3

#define VIRTIO_MAX_QUEUES 4
#define VIRTIO_QUEUE_SIZE_MAX 256
/* Longest descriptor chain accepted (direct + indirect); also the most
 * segments one request can map. */
#define VIRTIO_CHAIN_MAX VIRTIO_QUEUE_SIZE_MAX

struct virtio_mmio;
struct virtio_chain;

/* What a device tells the transport about itself.  Callbacks get the
 * device's own pointer (`dev`) back. */
struct virtio_dev_ops {
  const char *name;             /* "virtio-blk", used in log lines */
  uint32_t device_id;
  uint64_t features;            /* device-specific feature bits offered */
  uint16_t num_queues;          /* <= VIRTIO_MAX_QUEUES */
  uint16_t queue_size_max;      /* power of two, <= VIRTIO_QUEUE_SIZE_MAX */
  uint32_t config_size;         /* bytes of config space at 0x100 */
  /* Fill buf[0..config_size) with the current config space (under lock). */
  void (*config_read)(void *dev, uint8_t *buf);
  /* Driver wrote config bytes (optional; NULL = config is read-only). */
  void (*config_write)(void *dev, uint32_t off, const uint8_t *data, uint32_t len);
  /* The driver notified queue q, or the device became ready (I/O thread). */
  void (*queue_notify)(struct virtio_mmio *t, void *dev, uint16_t q);
  /* The extra fd passed to virtio_mmio_create is readable (I/O thread). */
  void (*fd_ready)(struct virtio_mmio *t, void *dev, uint32_t events);
  /* Driver reset the device (under lock): forget per-session state. */
  void (*reset)(void *dev);
  /* Free the device (after the I/O thread has stopped). */
  void (*destroy)(void *dev);
};

/* Create the transport for one device: take a virtio-mmio slot, bind an
 * irqfd and one ioeventfd per queue, start the I/O thread (which also polls
 * extra_fd if >= 0), register the MMIO window, append the
 * virtio_mmio.device= command line entry and register with vm_add_device.
 * On failure nothing stays registered except an unused slot, and the device
 * is NOT destroyed (the caller still owns it). */
int virtio_mmio_create(struct vm *vm, const struct virtio_dev_ops *ops, void *dev, int extra_fd,
                       struct virtio_mmio **out, hv_error_t *err);

/* The MMIO handler (exported for unit tests, which drive it directly). */
void virtio_mmio_access(struct vm *vm, void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                        bool is_write);

/* Base address / GSI of the window (for tests and logs). */
uint64_t virtio_mmio_base(const struct virtio_mmio *t);
uint32_t virtio_mmio_gsi(const struct virtio_mmio *t);
/* Has the device been marked DEVICE_NEEDS_RESET? */
bool virtio_mmio_is_broken(struct virtio_mmio *t);

/* Mark the device broken (DEVICE_NEEDS_RESET + config interrupt) with one
 * log line naming the device and what the driver did wrong. */
void virtio_mmio_set_broken(struct virtio_mmio *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Bracket device work that writes guest memory for a popped chain.  begin
 * returns false (drop the chain) if the driver reset the device since the
 * pop; a reset waits until every bracket has ended, so no late write lands
 * in buffers the driver has taken back.  Keep brackets short and bounded:
 * never around a wait on a host fd that may stall. */
bool virtio_mmio_io_begin(struct virtio_mmio *t, const struct virtio_chain *c);
void virtio_mmio_io_end(struct virtio_mmio *t);
/* Poll or stop polling the extra fd (I/O thread only; no-op for fds that
 * cannot be epolled, which devices may read at any time). */
void virtio_mmio_watch_fd(struct virtio_mmio *t, bool on);
/* An eventfd that becomes readable when the device is being destroyed; for
 * devices that must wait on a host fd (poll it together with their fd). */
int virtio_mmio_stop_fd(struct virtio_mmio *t);

/* ---- split virtqueues (virtqueue.c) ---- */

/* One mapped segment of a descriptor chain. */
struct virtio_seg { void *host; uint32_t len; bool writable; };

/* A popped descriptor chain: readable segments come first, then writable. */
struct virtio_chain {
  uint16_t head;                /* descriptor index to return in used ring */
  uint16_t n_segs, n_readable;
  uint64_t readable_bytes, writable_bytes;
  uint32_t reset_gen;           /* transport generation when popped */
  struct virtio_seg segs[VIRTIO_CHAIN_MAX];
};

/* Ring state of one queue, owned by the transport. */
struct virtqueue {
  uint16_t num;                 /* negotiated size (power of two) */
  bool ready;                   /* QueueReady */
  uint64_t desc_gpa, driver_gpa, device_gpa;
  /* Host pointers, valid while ready (guest RAM never moves). */
  void *desc, *avail, *used;
  uint16_t last_avail;          /* next avail ring entry to consume */
  uint16_t used_idx;            /* our copy of used->idx */
  uint16_t signalled_used;      /* used idx at our last interrupt (EVENT_IDX) */
  bool signalled_valid;
};

/* Pop the next available chain of queue q.  Returns 1 with *c filled, 0 when
 * the queue is empty (or not ready / device broken), -1 when the chain was
 * malformed (the device has been marked broken). */
int virtio_queue_pop(struct virtio_mmio *t, uint16_t q, struct virtio_chain *c);
/* Return a chain to the guest with `written` bytes written into its writable
 * segments.  Dropped silently if the device was reset since the pop. */
void virtio_queue_push(struct virtio_mmio *t, uint16_t q, const struct virtio_chain *c,
                       uint32_t written);
/* Interrupt the guest if it wants to hear about new used entries in q
 * (honours NO_INTERRUPT / EVENT_IDX).  Call after a batch of pushes. */
void virtio_queue_signal(struct virtio_mmio *t, uint16_t q);
/* Is anything available in queue q?  (Does not consume.) */
bool virtio_queue_has_avail(struct virtio_mmio *t, uint16_t q);

/* Chain payload helpers: copy out of the readable part starting at byte
 * `off`, copy into the writable part starting at byte `off`.  Return bytes
 * copied. */
size_t virtio_chain_read(const struct virtio_chain *c, uint64_t off, void *buf, size_t len);
size_t virtio_chain_write(const struct virtio_chain *c, uint64_t off, const void *buf, size_t len);
/* Build an iovec over [off, off+len) of the readable (writable=false) or
 * writable part.  Returns the number of iovecs (<= max), or -1 if the range
 * does not fit. */
int virtio_chain_iov(const struct virtio_chain *c, bool writable, uint64_t off, uint64_t len,
                     struct iovec *iov, int max);

/* ---- transport internals shared by virtio_mmio.c and virtqueue.c ---- */

struct virtio_mmio {
  struct vm *vm;
  const struct virtio_dev_ops *ops;
  void *dev;
  uint64_t base;
  uint32_t gsi;
  pthread_mutex_t lock;         /* everything below except interrupt_status */
  uint32_t status;
  uint32_t device_features_sel, driver_features_sel, queue_sel;
  uint64_t driver_features;     /* accepted once FEATURES_OK is set */
  uint32_t config_generation;
  uint32_t reset_gen;           /* bumped on every reset: stale pushes drop */
  uint32_t io_busy;             /* device work between io_begin and io_end */
  pthread_cond_t io_idle;       /* io_busy dropped to 0 */
  uint32_t interrupt_status;    /* __atomic: read/acked without the lock */
  bool warned_access;           /* one log line per device for bad accesses */
  uint64_t notify_exits;        /* QueueNotify writes that missed the ioeventfd */
  struct virtqueue vq[VIRTIO_MAX_QUEUES];
  int irq_fd, notify_fd[VIRTIO_MAX_QUEUES], stop_fd, epoll_fd, extra_fd;
  bool extra_pollable, extra_watched;
  bool thread_started;
  pthread_t thread;
};

/* With t->lock held. */
void virtio_mmio_set_broken_locked(struct virtio_mmio *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void virtio_mmio_interrupt(struct virtio_mmio *t, uint32_t bits);
static inline bool virtio_mmio_has_feature(const struct virtio_mmio *t, unsigned bit) {
  return (t->driver_features >> bit) & 1;
}
#endif
