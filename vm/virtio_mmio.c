/* virtio_mmio.c: the virtio-mmio transport (virtio 1.x, register layout
 * Version 2) and the per-device I/O thread.
 *
 * Register accesses arrive on vCPU threads through the VMM's MMIO registry.
 * Queue notifications normally never get here: each queue's QueueNotify
 * write is caught by a KVM ioeventfd (datamatch = queue index) and wakes the
 * device's I/O thread.  Interrupts leave through a KVM irqfd on the slot's
 * GSI.  The irqfd gives an edge (a pulse on the line); that is enough for
 * virtio-mmio because the driver's handler reads InterruptStatus and acks
 * exactly the bits it saw before looking at the rings, so a used entry added
 * after its read raises a new edge.  InterruptStatus itself stays set until
 * InterruptACK, as the spec requires.
 */
#include "virtio.h"
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#define TAG_STOP 0x100u
#define TAG_EXTRA 0x101u
#define CONFIG_SPACE_MAX 256

static const uint64_t transport_features = (1ULL << VIRTIO_F_VERSION_1) |
                                           (1ULL << VIRTIO_F_RING_INDIRECT_DESC) |
                                           (1ULL << VIRTIO_F_RING_EVENT_IDX);

/* What a window points at when its device could not be registered. */
static const struct virtio_dev_ops detached_ops = {
    .name = "virtio (detached)", .num_queues = 1, .queue_size_max = 1};

uint64_t virtio_mmio_base(const struct virtio_mmio *t) { return t->base; }
uint32_t virtio_mmio_gsi(const struct virtio_mmio *t) { return t->gsi; }
int virtio_mmio_stop_fd(struct virtio_mmio *t) { return t->stop_fd; }

static uint64_t offered_features(const struct virtio_mmio *t) {
  return t->ops->features | transport_features;
}

static void eventfd_kick(int fd) {
  uint64_t one = 1;
  /* EAGAIN only when the counter is about to overflow: already signalled. */
  if (fd >= 0 && write(fd, &one, sizeof one) < 0 && errno != EAGAIN)
    hv_warn("virtio: eventfd write: %s", strerror(errno));
}

void virtio_mmio_interrupt(struct virtio_mmio *t, uint32_t bits) {
  __atomic_fetch_or(&t->interrupt_status, bits, __ATOMIC_SEQ_CST);
  eventfd_kick(t->irq_fd);
}

/* Under lock. */
static void mark_broken(struct virtio_mmio *t, const char *fmt, va_list ap) {
  if (t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
    return; /* one line per breakage, not one per later request */
  char *why = NULL;
  if (vasprintf(&why, fmt, ap) < 0)
    why = NULL;
  hv_warn("%s at 0x%llx: %s; device marked DEVICE_NEEDS_RESET", t->ops->name,
          (unsigned long long)t->base, why ? why : "malformed request");
  free(why);
  t->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
  /* Spec 2.1.2: with DRIVER_OK set, tell the driver via a config change. */
  if (t->status & VIRTIO_STATUS_DRIVER_OK)
    virtio_mmio_interrupt(t, VIRTIO_INT_CONFIG);
}

void virtio_mmio_set_broken_locked(struct virtio_mmio *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  mark_broken(t, fmt, ap);
  va_end(ap);
}

void virtio_mmio_set_broken(struct virtio_mmio *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&t->lock);
  mark_broken(t, fmt, ap);
  pthread_mutex_unlock(&t->lock);
  va_end(ap);
}

bool virtio_mmio_io_begin(struct virtio_mmio *t, const struct virtio_chain *c) {
  pthread_mutex_lock(&t->lock);
  bool current = c->reset_gen == t->reset_gen;
  if (current)
    t->io_busy++;
  pthread_mutex_unlock(&t->lock);
  return current;
}

void virtio_mmio_io_end(struct virtio_mmio *t) {
  pthread_mutex_lock(&t->lock);
  if (--t->io_busy == 0)
    pthread_cond_broadcast(&t->io_idle);
  pthread_mutex_unlock(&t->lock);
}

bool virtio_mmio_is_broken(struct virtio_mmio *t) {
  pthread_mutex_lock(&t->lock);
  bool b = t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
  pthread_mutex_unlock(&t->lock);
  return b;
}

/* Under lock: back to the state after power-on (spec 4.2.2.1).  Waits for
 * device work that is writing into buffers of the old session, so nothing
 * lands in memory the driver has taken back once Status reads 0. */
static void device_reset(struct virtio_mmio *t) {
  t->reset_gen++; /* chains popped before this are dropped from now on */
  while (t->io_busy > 0)
    pthread_cond_wait(&t->io_idle, &t->lock);
  t->status = 0;
  t->device_features_sel = t->driver_features_sel = t->queue_sel = 0;
  t->driver_features = 0;
  memset(t->vq, 0, sizeof t->vq);
  __atomic_store_n(&t->interrupt_status, 0, __ATOMIC_SEQ_CST);
  if (t->ops->reset)
    t->ops->reset(t->dev);
}

static void warn_access(struct virtio_mmio *t, const char *what, uint64_t off, uint32_t len) {
  if (t->warned_access)
    return;
  t->warned_access = true; /* a buggy driver must not flood the log */
  hv_warn("%s at 0x%llx: ignored %s at offset 0x%llx (%u bytes); further bad accesses not logged",
          t->ops->name, (unsigned long long)t->base, what, (unsigned long long)off, len);
}

static bool is_pow2(uint32_t v) { return v && !(v & (v - 1)); }

/* Under lock: the driver set QueueReady=1 for queue q.  Validate the layout
 * and map the three areas once (guest RAM never moves while the VM lives). */
static void queue_enable(struct virtio_mmio *t, uint16_t q) {
  struct virtqueue *vq = &t->vq[q];
  uint32_t n = vq->num;
  if (!is_pow2(n) || n > t->ops->queue_size_max) {
    virtio_mmio_set_broken_locked(t, "queue %u: size %u is not a power of two <= %u", q, n,
                                  t->ops->queue_size_max);
    return;
  }
  if (vq->desc_gpa % 16 || vq->driver_gpa % 2 || vq->device_gpa % 4) {
    virtio_mmio_set_broken_locked(t, "queue %u: misaligned rings (desc 0x%llx, driver 0x%llx, "
                                  "device 0x%llx)", q, (unsigned long long)vq->desc_gpa,
                                  (unsigned long long)vq->driver_gpa,
                                  (unsigned long long)vq->device_gpa);
    return;
  }
  uint64_t event = virtio_mmio_has_feature(t, VIRTIO_F_RING_EVENT_IDX) ? 2 : 0;
  void *desc = vm_gpa(t->vm, vq->desc_gpa, 16ULL * n);
  void *avail = vm_gpa(t->vm, vq->driver_gpa, 4 + 2ULL * n + event);
  void *used = vm_gpa(t->vm, vq->device_gpa, 4 + 8ULL * n + event);
  if (!desc || !avail || !used) {
    virtio_mmio_set_broken_locked(t, "queue %u: ring outside guest RAM (desc 0x%llx, driver "
                                  "0x%llx, device 0x%llx, size %u)", q,
                                  (unsigned long long)vq->desc_gpa,
                                  (unsigned long long)vq->driver_gpa,
                                  (unsigned long long)vq->device_gpa, n);
    return;
  }
  vq->desc = desc;
  vq->avail = avail;
  vq->used = used;
  vq->last_avail = vq->used_idx = 0;
  vq->signalled_valid = false;
  vq->ready = true;
}

/* Under lock: FEATURES_OK requested.  VERSION_1 is mandatory (this is a
 * modern-only device) and the driver may not accept what we did not offer. */
static bool features_acceptable(struct virtio_mmio *t) {
  uint64_t extra = t->driver_features & ~offered_features(t);
  if (!virtio_mmio_has_feature(t, VIRTIO_F_VERSION_1)) {
    hv_warn("%s at 0x%llx: driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are not "
            "supported); FEATURES_OK refused", t->ops->name, (unsigned long long)t->base);
    return false;
  }
  if (extra) {
    hv_warn("%s at 0x%llx: driver accepted features 0x%llx that were not offered; FEATURES_OK "
            "refused", t->ops->name, (unsigned long long)t->base, (unsigned long long)extra);
    return false;
  }
  return true;
}

static void status_write(struct virtio_mmio *t, uint32_t val) {
  if (val == 0) {
    device_reset(t);
    return;
  }
  const uint32_t driver_bits = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                               VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK |
                               VIRTIO_STATUS_FAILED;
  uint32_t old = t->status, want = val & driver_bits;
  if ((old & driver_bits) & ~want) {
    warn_access(t, "status write clearing bits (only 0 resets)", VIRTIO_MMIO_STATUS, 4);
    return;
  }
  uint32_t added = want & ~old;
  if ((added & VIRTIO_STATUS_FEATURES_OK) && !features_acceptable(t))
    want &= ~VIRTIO_STATUS_FEATURES_OK; /* driver re-reads Status and gives up */
  if ((added & VIRTIO_STATUS_DRIVER_OK) && !(want & VIRTIO_STATUS_FEATURES_OK)) {
    warn_access(t, "DRIVER_OK without FEATURES_OK", VIRTIO_MMIO_STATUS, 4);
    want &= ~VIRTIO_STATUS_DRIVER_OK;
  }
  t->status = want | (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
  if ((added & VIRTIO_STATUS_DRIVER_OK) && (want & VIRTIO_STATUS_DRIVER_OK)) {
    /* Buffers may have been queued before DRIVER_OK (and notifications
     * swallowed): look at every queue once now. */
    for (uint16_t q = 0; q < t->ops->num_queues; q++)
      eventfd_kick(t->notify_fd[q]);
  }
}

static void set_half(uint64_t *v, uint32_t sel, uint32_t val) {
  if (sel == 0)
    *v = (*v & 0xffffffff00000000ULL) | val;
  else if (sel == 1)
    *v = (*v & 0xffffffffULL) | ((uint64_t)val << 32);
}

static uint32_t register_read(struct virtio_mmio *t, uint64_t off) {
  struct virtqueue *vq = t->queue_sel < t->ops->num_queues ? &t->vq[t->queue_sel] : NULL;
  switch (off) {
  case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
  case VIRTIO_MMIO_VERSION: return 2;
  case VIRTIO_MMIO_DEVICE_ID: return t->ops->device_id;
  case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
  case VIRTIO_MMIO_DEVICE_FEATURES:
    if (t->device_features_sel > 1)
      return 0;
    return (uint32_t)(offered_features(t) >> (32 * t->device_features_sel));
  case VIRTIO_MMIO_QUEUE_NUM_MAX: return vq ? t->ops->queue_size_max : 0;
  case VIRTIO_MMIO_QUEUE_READY: return vq ? vq->ready : 0;
  case VIRTIO_MMIO_INTERRUPT_STATUS:
    return __atomic_load_n(&t->interrupt_status, __ATOMIC_SEQ_CST);
  case VIRTIO_MMIO_STATUS: return t->status;
  case VIRTIO_MMIO_CONFIG_GENERATION: return t->config_generation;
  /* No shared memory regions: their length and base read as all ones. */
  case VIRTIO_MMIO_SHM_LEN_LOW: case VIRTIO_MMIO_SHM_LEN_HIGH:
  case VIRTIO_MMIO_SHM_BASE_LOW: case VIRTIO_MMIO_SHM_BASE_HIGH:
    return 0xffffffffu;
  default:
    warn_access(t, "read of a write-only or unknown register", off, 4);
    return 0;
  }
}

/* Queue-layout registers may only change while the queue is not ready. */
static uint64_t *queue_addr_reg(struct virtqueue *vq, uint64_t off) {
  switch (off) {
  case VIRTIO_MMIO_QUEUE_DESC_LOW: case VIRTIO_MMIO_QUEUE_DESC_HIGH: return &vq->desc_gpa;
  case VIRTIO_MMIO_QUEUE_DRIVER_LOW: case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: return &vq->driver_gpa;
  case VIRTIO_MMIO_QUEUE_DEVICE_LOW: case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: return &vq->device_gpa;
  default: return NULL;
  }
}

static void register_write(struct virtio_mmio *t, uint64_t off, uint32_t val) {
  struct virtqueue *vq = t->queue_sel < t->ops->num_queues ? &t->vq[t->queue_sel] : NULL;
  switch (off) {
  case VIRTIO_MMIO_DEVICE_FEATURES_SEL: t->device_features_sel = val; return;
  case VIRTIO_MMIO_DRIVER_FEATURES_SEL: t->driver_features_sel = val; return;
  case VIRTIO_MMIO_DRIVER_FEATURES:
    if (t->status & VIRTIO_STATUS_FEATURES_OK)
      warn_access(t, "DriverFeatures write after FEATURES_OK", off, 4);
    else
      set_half(&t->driver_features, t->driver_features_sel, val);
    return;
  case VIRTIO_MMIO_QUEUE_SEL: t->queue_sel = val; return;
  case VIRTIO_MMIO_QUEUE_NUM:
    if (vq && !vq->ready)
      vq->num = val > 0xffff ? 0 : (uint16_t)val; /* validated on QueueReady */
    else
      warn_access(t, "QueueNum write to a ready or nonexistent queue", off, 4);
    return;
  case VIRTIO_MMIO_QUEUE_READY:
    if (!vq)
      warn_access(t, "QueueReady write to a nonexistent queue", off, 4);
    else if (val == 1 && !vq->ready)
      queue_enable(t, (uint16_t)t->queue_sel);
    else if (val == 0)
      vq->ready = false;
    return;
  case VIRTIO_MMIO_QUEUE_NOTIFY:
    /* Normally swallowed by the ioeventfd; reaches us only without one
     * (or for a queue index no ioeventfd matches). */
    t->notify_exits++;
    if (val < t->ops->num_queues)
      eventfd_kick(t->notify_fd[val]);
    else
      warn_access(t, "QueueNotify for a nonexistent queue", off, 4);
    return;
  case VIRTIO_MMIO_INTERRUPT_ACK:
    __atomic_fetch_and(&t->interrupt_status, ~val, __ATOMIC_SEQ_CST);
    return;
  case VIRTIO_MMIO_STATUS: status_write(t, val); return;
  case VIRTIO_MMIO_SHM_SEL: return;
  default: break;
  }
  uint64_t *reg = vq ? queue_addr_reg(vq, off) : NULL;
  if (reg && !vq->ready) {
    set_half(reg, (off & 4) ? 1 : 0, val);
    return;
  }
  warn_access(t, reg ? "queue address write to a ready queue"
                     : "write to a read-only or unknown register", off, 4);
}

static void config_access(struct virtio_mmio *t, uint64_t off, uint8_t *data, uint32_t len,
                          bool is_write) {
  uint32_t size = t->ops->config_size;
  bool ok = (len == 1 || len == 2 || len == 4 || len == 8) && off <= size && len <= size - off;
  if (!ok) {
    warn_access(t, "config space access out of range", VIRTIO_MMIO_CONFIG + off, len);
    if (!is_write)
      memset(data, 0, len);
    return;
  }
  if (is_write) {
    if (t->ops->config_write)
      t->ops->config_write(t->dev, (uint32_t)off, data, len);
    else
      warn_access(t, "write to read-only config space", VIRTIO_MMIO_CONFIG + off, len);
    return;
  }
  uint8_t buf[CONFIG_SPACE_MAX] = {0};
  if (t->ops->config_read)
    t->ops->config_read(t->dev, buf);
  memcpy(data, buf + off, len);
}

void virtio_mmio_access(struct vm *vm, void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                        bool is_write) {
  (void)vm;
  struct virtio_mmio *t = opaque;
  pthread_mutex_lock(&t->lock);
  if (offset >= VIRTIO_MMIO_CONFIG) {
    config_access(t, offset - VIRTIO_MMIO_CONFIG, data, len, is_write);
  } else if (len != 4 || offset % 4) {
    /* Registers are 32-bit only (spec 4.2.2.2). */
    warn_access(t, "register access with wrong size or alignment", offset, len);
    if (!is_write)
      memset(data, 0, len);
  } else if (is_write) {
    uint32_t val;
    memcpy(&val, data, 4);
    register_write(t, offset, val);
  } else {
    uint32_t val = register_read(t, offset);
    memcpy(data, &val, 4);
  }
  pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_watch_fd(struct virtio_mmio *t, bool on) {
  /* Regular files and /dev/null cannot be epolled; devices read them
   * whenever they like, since such reads never block. */
  if (t->extra_fd < 0 || !t->extra_pollable || t->extra_watched == on)
    return;
  t->extra_watched = on;
  /* Add/remove rather than modify: epoll reports HUP/ERR even with an
   * empty event mask, which would spin the thread on a closed pipe. */
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = TAG_EXTRA};
  if (epoll_ctl(t->epoll_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, t->extra_fd, &ev) < 0)
    hv_warn("%s: epoll_ctl: %s", t->ops->name, strerror(errno));
}

static void drain_eventfd(int fd) {
  uint64_t v;
  if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
    hv_warn("virtio: eventfd read: %s", strerror(errno));
}

static void *io_thread(void *arg) {
  struct virtio_mmio *t = arg;
  for (;;) {
    struct epoll_event evs[8];
    int n = epoll_wait(t->epoll_fd, evs, 8, -1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      hv_warn("%s: epoll_wait: %s; I/O thread ends", t->ops->name, strerror(errno));
      return NULL;
    }
    for (int i = 0; i < n; i++) {
      uint32_t tag = evs[i].data.u32;
      if (tag == TAG_STOP)
        return NULL;
      if (tag == TAG_EXTRA) {
        if (t->extra_watched && t->ops->fd_ready)
          t->ops->fd_ready(t, t->dev, evs[i].events);
      } else if (tag < t->ops->num_queues) {
        drain_eventfd(t->notify_fd[tag]);
        if (t->ops->queue_notify)
          t->ops->queue_notify(t, t->dev, (uint16_t)tag);
      }
    }
  }
}

static void close_fd(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

/* Stop the thread and free everything the transport owns (not the device). */
static void transport_free(struct virtio_mmio *t) {
  if (t->thread_started) {
    eventfd_kick(t->stop_fd);
    pthread_join(t->thread, NULL);
  }
  close_fd(&t->epoll_fd);
  close_fd(&t->stop_fd);
  close_fd(&t->irq_fd);
  for (int q = 0; q < VIRTIO_MAX_QUEUES; q++)
    close_fd(&t->notify_fd[q]);
  pthread_cond_destroy(&t->io_idle);
  pthread_mutex_destroy(&t->lock);
  free(t);
}

static void transport_destroy(struct vm *vm, void *opaque) {
  (void)vm;
  struct virtio_mmio *t = opaque;
  const struct virtio_dev_ops *ops = t->ops;
  void *dev = t->dev;
  transport_free(t);
  if (ops->destroy)
    ops->destroy(dev);
}

static int epoll_add(struct virtio_mmio *t, int fd, uint32_t events, uint32_t tag) {
  struct epoll_event ev = {.events = events, .data.u32 = tag};
  return epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

static int transport_start(struct virtio_mmio *t, hv_error_t *err) {
  const char *name = t->ops->name;
  if (vm_irqfd(t->vm, t->gsi, &t->irq_fd, err) < 0)
    return hv_error_wrap(err, "%s: irqfd on GSI %u", name, t->gsi);
  for (uint16_t q = 0; q < t->ops->num_queues; q++)
    if (vm_ioeventfd(t->vm, t->base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, true, q, &t->notify_fd[q],
                     err) < 0)
      return hv_error_wrap(err, "%s: ioeventfd for queue %u", name, q);
  t->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  t->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (t->stop_fd < 0 || t->epoll_fd < 0)
    return hv_error(err, errno, "%s: eventfd/epoll", name);
  if (epoll_add(t, t->stop_fd, EPOLLIN, TAG_STOP) < 0)
    return hv_error(err, errno, "%s: epoll_ctl", name);
  for (uint16_t q = 0; q < t->ops->num_queues; q++)
    if (epoll_add(t, t->notify_fd[q], EPOLLIN, q) < 0)
      return hv_error(err, errno, "%s: epoll_ctl", name);
  if (t->extra_fd >= 0) {
    /* Only probed here; the device adds it once the guest has buffers. */
    if (epoll_add(t, t->extra_fd, EPOLLIN, TAG_EXTRA) == 0) {
      t->extra_pollable = true;
      epoll_ctl(t->epoll_fd, EPOLL_CTL_DEL, t->extra_fd, NULL);
    } else if (errno != EPERM)
      return hv_error(err, errno, "%s: epoll_ctl on fd %d", name, t->extra_fd);
  }
  /* The I/O thread takes no signals: SIGPIPE from a closed output pipe
   * then becomes EPIPE instead of killing the runtime. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = pthread_create(&t->thread, NULL, io_thread, t);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0)
    return hv_error(err, rc, "%s: start I/O thread", name);
  t->thread_started = true;
  return 0;
}

int virtio_mmio_create(struct vm *vm, const struct virtio_dev_ops *ops, void *dev, int extra_fd,
                       struct virtio_mmio **out, hv_error_t *err) {
  if (ops->num_queues == 0 || ops->num_queues > VIRTIO_MAX_QUEUES ||
      !is_pow2(ops->queue_size_max) || ops->queue_size_max > VIRTIO_QUEUE_SIZE_MAX ||
      ops->config_size > CONFIG_SPACE_MAX)
    return hv_error(err, EINVAL, "%s: invalid device description", ops->name);
  struct virtio_mmio *t = hv_xmalloc0(sizeof *t);
  t->vm = vm;
  t->ops = ops;
  t->dev = dev;
  t->extra_fd = extra_fd;
  t->irq_fd = t->stop_fd = t->epoll_fd = -1;
  for (int q = 0; q < VIRTIO_MAX_QUEUES; q++)
    t->notify_fd[q] = -1;
  pthread_mutex_init(&t->lock, NULL);
  pthread_cond_init(&t->io_idle, NULL);
  vm_alloc_mmio_slot(vm, &t->base, &t->gsi);
  if (transport_start(t, err) < 0) {
    transport_free(t);
    return -1;
  }
  if (vm_register_mmio(vm, t->base, VM_MMIO_SIZE, virtio_mmio_access, t) < 0) {
    transport_free(t);
    return hv_error(err, 0, "%s: cannot register MMIO window at 0x%llx", ops->name,
                    (unsigned long long)t->base);
  }
  if (vm_add_device(vm, ops->name, transport_destroy, t) < 0) {
    /* The MMIO registry already points at t, so t must outlive the VM:
     * stop its thread and detach it from the device (which the caller
     * frees); the window then reads as a device without features. */
    eventfd_kick(t->stop_fd);
    pthread_join(t->thread, NULL);
    t->thread_started = false;
    pthread_mutex_lock(&t->lock);
    t->ops = &detached_ops;
    t->dev = NULL;
    pthread_mutex_unlock(&t->lock);
    return hv_error(err, 0, "%s: cannot register device", ops->name);
  }
  /* A kernel that reads ACPI finds the device in the DSDT (acpi.c); giving
   * it on the command line too would declare it twice. */
  if (!vm->acpi)
    vm_cmdline_append(vm, "virtio_mmio.device=4K@0x%llx:%u", (unsigned long long)t->base,
                      t->gsi);
  if (out)
    *out = t;
  return 0;
}
