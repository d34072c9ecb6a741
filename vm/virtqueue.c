/* virtqueue.c: split virtqueues (virtio 1.x, 2.7) as seen by the device.
 *
 * Everything here reads memory the guest controls and may change at any
 * moment, so: every guest address is translated by vm_gpa with its length;
 * each descriptor is copied once before it is checked (no double fetch);
 * every loop is bounded by the table size; and anything malformed marks the
 * device DEVICE_NEEDS_RESET with one log line instead of being trusted.
 *
 * Ring layout (little-endian, host is x86-64):
 *   desc:  { le64 addr; le32 len; le16 flags; le16 next; } [num]
 *   avail: le16 flags; le16 idx; le16 ring[num]; le16 used_event
 *   used:  le16 flags; le16 idx; { le32 id; le32 len; } ring[num]; le16 avail_event
 */
#include "virtio.h"
#include <string.h>

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vring_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags, next;
};

static uint16_t *avail_word(struct virtqueue *vq, uint32_t i) { return (uint16_t *)vq->avail + i; }
#define AVAIL_FLAGS(vq) avail_word(vq, 0)
#define AVAIL_IDX(vq) avail_word(vq, 1)
#define AVAIL_RING(vq, i) avail_word(vq, 2 + (i))
#define USED_EVENT(vq) avail_word(vq, 2 + (vq)->num)

static uint16_t *used_idx_ptr(struct virtqueue *vq) { return (uint16_t *)vq->used + 1; }
static uint16_t *avail_event_ptr(struct virtqueue *vq) {
  return (uint16_t *)((uint8_t *)vq->used + 4 + 8 * (size_t)vq->num);
}

static uint16_t load16(uint16_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

/* Under lock: can queue q be processed at all? */
static struct virtqueue *usable_queue(struct virtio_mmio *t, uint16_t q) {
  if (q >= t->ops->num_queues)
    return NULL;
  struct virtqueue *vq = &t->vq[q];
  const uint32_t need = VIRTIO_STATUS_DRIVER_OK;
  if ((t->status & (need | VIRTIO_STATUS_DEVICE_NEEDS_RESET)) != need || !vq->ready)
    return NULL;
  return vq;
}

/* Under lock: map one descriptor's buffer into the chain. */
static int add_segment(struct virtio_mmio *t, uint16_t q, struct virtio_chain *c,
                       const struct vring_desc *d) {
  bool writable = d->flags & VRING_DESC_F_WRITE;
  if (!writable && c->n_segs > c->n_readable) {
    virtio_mmio_set_broken_locked(t, "queue %u: chain %u has a device-readable buffer after a "
                                  "device-writable one", q, c->head);
    return -1;
  }
  if (d->len == 0)
    return 0; /* nothing to map or copy */
  void *host = vm_gpa(t->vm, d->addr, d->len);
  if (!host) {
    virtio_mmio_set_broken_locked(t, "queue %u: chain %u has buffer 0x%llx+0x%x outside guest "
                                  "RAM", q, c->head, (unsigned long long)d->addr, d->len);
    return -1;
  }
  if (c->n_segs >= VIRTIO_CHAIN_MAX) {
    virtio_mmio_set_broken_locked(t, "queue %u: chain %u has more than %u buffers", q, c->head,
                                  VIRTIO_CHAIN_MAX);
    return -1;
  }
  c->segs[c->n_segs++] = (struct virtio_seg){.host = host, .len = d->len, .writable = writable};
  if (writable)
    c->writable_bytes += d->len;
  else {
    c->n_readable++;
    c->readable_bytes += d->len;
  }
  return 0;
}

/* Under lock: switch the walk to an indirect table (spec 2.7.5.3). */
static int enter_indirect(struct virtio_mmio *t, uint16_t q, const struct virtio_chain *c,
                          const struct vring_desc *d, const struct vring_desc **table,
                          uint32_t *table_len) {
  if (!virtio_mmio_has_feature(t, VIRTIO_F_RING_INDIRECT_DESC)) {
    virtio_mmio_set_broken_locked(t, "queue %u: chain %u uses INDIRECT, which was not "
                                  "negotiated", q, c->head);
    return -1;
  }
  if (d->flags & VRING_DESC_F_NEXT) {
    virtio_mmio_set_broken_locked(t, "queue %u: chain %u has a descriptor with both INDIRECT and "
                                  "NEXT", q, c->head);
    return -1;
  }
  if (d->len == 0 || d->len % sizeof(struct vring_desc) ||
      d->len / sizeof(struct vring_desc) > VIRTIO_CHAIN_MAX) {
    virtio_mmio_set_broken_locked(t, "queue %u: chain %u has an indirect table of %u bytes (must "
                                  "be a non-zero multiple of 16, at most %u entries)", q, c->head,
                                  d->len, VIRTIO_CHAIN_MAX);
    return -1;
  }
  const void *p = vm_gpa(t->vm, d->addr, d->len);
  if (!p) {
    virtio_mmio_set_broken_locked(t, "queue %u: chain %u has indirect table 0x%llx+0x%x outside "
                                  "guest RAM", q, c->head, (unsigned long long)d->addr, d->len);
    return -1;
  }
  *table = p;
  *table_len = d->len / sizeof(struct vring_desc);
  return 0;
}

/* Under lock: walk the chain starting at c->head.  The walk visits each
 * table at most table_len times, so a loop is caught as "too long". */
static int walk_chain(struct virtio_mmio *t, uint16_t q, struct virtqueue *vq,
                      struct virtio_chain *c) {
  const struct vring_desc *table = vq->desc;
  uint32_t table_len = vq->num, visited = 0, idx = c->head;
  bool indirect = false;
  for (;;) {
    if (idx >= table_len) {
      virtio_mmio_set_broken_locked(t, "queue %u: chain %u refers to descriptor %u, past the "
                                    "%s table of %u", q, c->head, idx,
                                    indirect ? "indirect" : "descriptor", table_len);
      return -1;
    }
    if (++visited > table_len) {
      virtio_mmio_set_broken_locked(t, "queue %u: chain %u loops (more than %u descriptors in "
                                    "the %s table)", q, c->head, table_len,
                                    indirect ? "indirect" : "descriptor");
      return -1;
    }
    struct vring_desc d;
    memcpy(&d, &table[idx], sizeof d); /* one fetch; the guest may rewrite it */
    if (d.flags & VRING_DESC_F_INDIRECT) {
      if (indirect) {
        virtio_mmio_set_broken_locked(t, "queue %u: chain %u nests an indirect table inside an "
                                      "indirect table", q, c->head);
        return -1;
      }
      if (enter_indirect(t, q, c, &d, &table, &table_len) < 0)
        return -1;
      indirect = true;
      visited = 0;
      idx = 0;
      continue;
    }
    if (add_segment(t, q, c, &d) < 0)
      return -1;
    if (!(d.flags & VRING_DESC_F_NEXT))
      return 0;
    idx = d.next;
  }
}

int virtio_queue_pop(struct virtio_mmio *t, uint16_t q, struct virtio_chain *c) {
  int rc = 0;
  pthread_mutex_lock(&t->lock);
  struct virtqueue *vq = usable_queue(t, q);
  if (!vq)
    goto out;
  bool event_idx = virtio_mmio_has_feature(t, VIRTIO_F_RING_EVENT_IDX);
  uint16_t avail = load16(AVAIL_IDX(vq));
  if (avail == vq->last_avail && event_idx) {
    /* Going idle: ask for a notification on the next buffer, then look
     * again in case one raced with that request. */
    __atomic_store_n(avail_event_ptr(vq), vq->last_avail, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    avail = load16(AVAIL_IDX(vq));
  }
  uint16_t pending = (uint16_t)(avail - vq->last_avail);
  if (pending == 0)
    goto out;
  if (pending > vq->num) {
    virtio_mmio_set_broken_locked(t, "queue %u: available index jumped from %u to %u (queue size "
                                  "%u)", q, vq->last_avail, avail, vq->num);
    rc = -1;
    goto out;
  }
  uint16_t head = load16(AVAIL_RING(vq, vq->last_avail & (vq->num - 1)));
  c->head = head;
  c->n_segs = c->n_readable = 0;
  c->readable_bytes = c->writable_bytes = 0;
  c->reset_gen = t->reset_gen;
  if (walk_chain(t, q, vq, c) < 0) {
    rc = -1;
    goto out;
  }
  vq->last_avail++;
  rc = 1;
out:
  pthread_mutex_unlock(&t->lock);
  return rc;
}

bool virtio_queue_has_avail(struct virtio_mmio *t, uint16_t q) {
  pthread_mutex_lock(&t->lock);
  struct virtqueue *vq = usable_queue(t, q);
  bool any = vq && load16(AVAIL_IDX(vq)) != vq->last_avail;
  if (vq && !any && virtio_mmio_has_feature(t, VIRTIO_F_RING_EVENT_IDX)) {
    /* The caller will wait for a notification: make sure one comes. */
    __atomic_store_n(avail_event_ptr(vq), vq->last_avail, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    any = load16(AVAIL_IDX(vq)) != vq->last_avail;
  }
  pthread_mutex_unlock(&t->lock);
  return any;
}

void virtio_queue_push(struct virtio_mmio *t, uint16_t q, const struct virtio_chain *c,
                       uint32_t written) {
  pthread_mutex_lock(&t->lock);
  struct virtqueue *vq = usable_queue(t, q);
  /* A reset since the pop means the driver forgot this chain. */
  if (vq && c->reset_gen == t->reset_gen) {
    if (written > c->writable_bytes)
      written = (uint32_t)c->writable_bytes;
    uint8_t *elem = (uint8_t *)vq->used + 4 + 8 * (size_t)(vq->used_idx & (vq->num - 1));
    uint32_t id = c->head;
    __atomic_store_n((uint32_t *)elem, id, __ATOMIC_RELAXED);
    __atomic_store_n((uint32_t *)(elem + 4), written, __ATOMIC_RELAXED);
    vq->used_idx++;
    /* Release: the element (and the data written into the buffers) become
     * visible before the index that publishes them. */
    __atomic_store_n(used_idx_ptr(vq), vq->used_idx, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&t->lock);
}

/* Spec 2.7.10: notify iff new_idx passed used_event since old. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old) {
  return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

void virtio_queue_signal(struct virtio_mmio *t, uint16_t q) {
  bool fire = false;
  pthread_mutex_lock(&t->lock);
  struct virtqueue *vq = usable_queue(t, q);
  if (vq) {
    /* Order our used->idx store before reading the driver's suppression
     * fields (store-load: needs a full fence). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (virtio_mmio_has_feature(t, VIRTIO_F_RING_EVENT_IDX)) {
      uint16_t event = load16(USED_EVENT(vq));
      uint16_t old = vq->signalled_used;
      fire = vq->used_idx != old &&
             (!vq->signalled_valid || need_event(event, vq->used_idx, old));
      vq->signalled_used = vq->used_idx;
      vq->signalled_valid = true;
    } else {
      fire = !(load16(AVAIL_FLAGS(vq)) & VRING_AVAIL_F_NO_INTERRUPT);
    }
  }
  pthread_mutex_unlock(&t->lock);
  if (fire)
    virtio_mmio_interrupt(t, VIRTIO_INT_USED_RING);
}

size_t virtio_chain_read(const struct virtio_chain *c, uint64_t off, void *buf, size_t len) {
  size_t done = 0;
  for (uint16_t i = 0; i < c->n_readable && done < len; i++) {
    const struct virtio_seg *s = &c->segs[i];
    if (off >= s->len) {
      off -= s->len;
      continue;
    }
    size_t n = s->len - off;
    if (n > len - done)
      n = len - done;
    memcpy((uint8_t *)buf + done, (uint8_t *)s->host + off, n);
    done += n;
    off = 0;
  }
  return done;
}

size_t virtio_chain_write(const struct virtio_chain *c, uint64_t off, const void *buf, size_t len) {
  size_t done = 0;
  for (uint16_t i = c->n_readable; i < c->n_segs && done < len; i++) {
    const struct virtio_seg *s = &c->segs[i];
    if (off >= s->len) {
      off -= s->len;
      continue;
    }
    size_t n = s->len - off;
    if (n > len - done)
      n = len - done;
    memcpy((uint8_t *)s->host + off, (const uint8_t *)buf + done, n);
    done += n;
    off = 0;
  }
  return done;
}

int virtio_chain_iov(const struct virtio_chain *c, bool writable, uint64_t off, uint64_t len,
                     struct iovec *iov, int max) {
  uint16_t first = writable ? c->n_readable : 0;
  uint16_t end = writable ? c->n_segs : c->n_readable;
  int n = 0;
  for (uint16_t i = first; i < end && len > 0; i++) {
    const struct virtio_seg *s = &c->segs[i];
    if (off >= s->len) {
      off -= s->len;
      continue;
    }
    if (n == max)
      return -1;
    uint64_t take = s->len - off;
    if (take > len)
      take = len;
    iov[n++] = (struct iovec){.iov_base = (uint8_t *)s->host + off, .iov_len = take};
    len -= take;
    off = 0;
  }
  return len == 0 ? n : -1;
}
