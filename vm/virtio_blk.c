/* virtio_blk.c: virtio block device (virtio 1.x, 5.2) over an image file.
 *
 * One request queue.  The root disk is opened read-only and offered with
 * VIRTIO_BLK_F_RO (writes fail with IOERR even if the driver ignores the
 * flag); the scratch disk is writable and offers FLUSH.  Requests are served
 * with preadv/pwritev straight between the image and guest memory.
 */
#include "virtio.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define SECTOR 512
#define BLK_QUEUE_SIZE 256
#define BLK_ID_BYTES 20
/* Config space as far as the fields we offer (capacity .. blk_size), padded. */
#define BLK_CONFIG_SIZE 64

struct blk_req_hdr {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

struct virtio_blk {
  struct virtio_dev_ops ops;    /* per instance: features depend on readonly */
  int fd;
  bool readonly;
  uint64_t sectors;
  char path[256];               /* for log lines */
  char id[BLK_ID_BYTES];        /* GET_ID answer (not NUL-terminated if full) */
  bool warned_io;
  struct virtio_chain chain;    /* I/O thread scratch: too big for its stack */
  struct iovec iov[VIRTIO_CHAIN_MAX];
};

static void put_le32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_le64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void blk_config_read(void *dev, uint8_t *buf) {
  struct virtio_blk *b = dev;
  put_le64(buf + 0, b->sectors);                       /* capacity */
  put_le32(buf + 12, VIRTIO_CHAIN_MAX - 2);            /* seg_max: header+status */
  put_le32(buf + 20, SECTOR);                          /* blk_size */
}

/* Move `len` bytes between the image at byte `pos` and the chain's
 * readable (write to disk) or writable (read from disk) part at `off`.
 * Loops over short transfers; a short read at end of file is an error. */
static int blk_transfer(struct virtio_blk *b, bool to_disk, uint64_t off, uint64_t pos,
                        uint64_t len) {
  while (len > 0) {
    int n = virtio_chain_iov(&b->chain, !to_disk, off, len, b->iov, VIRTIO_CHAIN_MAX);
    if (n < 0)
      return -EINVAL;
    ssize_t r = to_disk ? pwritev(b->fd, b->iov, n, (off_t)pos)
                        : preadv(b->fd, b->iov, n, (off_t)pos);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -errno;
    if (r == 0)
      return -EIO; /* image shrank under us */
    off += (uint64_t)r;
    pos += (uint64_t)r;
    len -= (uint64_t)r;
  }
  return 0;
}

static void warn_io(struct virtio_blk *b, const char *what, uint64_t sector, int e) {
  if (b->warned_io)
    return;
  b->warned_io = true;
  hv_warn("virtio-blk `%s`: %s at sector %llu failed: %s (further errors not logged)", b->path,
          what, (unsigned long long)sector, strerror(e));
}

static bool in_bounds(const struct virtio_blk *b, uint64_t sector, uint64_t bytes) {
  return bytes % SECTOR == 0 && sector <= b->sectors && bytes / SECTOR <= b->sectors - sector;
}

/* Serve one request; returns the bytes written into the guest's buffers
 * (data + status byte), or -1 if the request was malformed (device broken). */
static int64_t blk_handle(struct virtio_mmio *t, struct virtio_blk *b) {
  struct virtio_chain *c = &b->chain;
  struct blk_req_hdr h;
  if (c->readable_bytes < sizeof h || c->writable_bytes < 1) {
    virtio_mmio_set_broken(t, "request %u has no %s", c->head,
                           c->writable_bytes < 1 ? "status byte" : "16-byte header");
    return -1;
  }
  virtio_chain_read(c, 0, &h, sizeof h);
  uint64_t data_in = c->writable_bytes - 1;            /* room for device->guest data */
  uint64_t data_out = c->readable_bytes - sizeof h;    /* guest->device data */
  uint8_t status = VIRTIO_BLK_S_OK;
  uint64_t written = 0;
  int rc;
  switch (h.type) {
  case VIRTIO_BLK_T_IN:
    if (!in_bounds(b, h.sector, data_in)) {
      status = VIRTIO_BLK_S_IOERR;
    } else if ((rc = blk_transfer(b, false, 0, h.sector * SECTOR, data_in)) < 0) {
      warn_io(b, "read", h.sector, -rc);
      status = VIRTIO_BLK_S_IOERR;
    } else {
      written = data_in;
    }
    break;
  case VIRTIO_BLK_T_OUT:
    if (b->readonly || !in_bounds(b, h.sector, data_out)) {
      status = VIRTIO_BLK_S_IOERR;
    } else if ((rc = blk_transfer(b, true, sizeof h, h.sector * SECTOR, data_out)) < 0) {
      warn_io(b, "write", h.sector, -rc);
      status = VIRTIO_BLK_S_IOERR;
    }
    break;
  case VIRTIO_BLK_T_FLUSH:
    if (!b->readonly && fdatasync(b->fd) < 0) {
      warn_io(b, "flush", 0, errno);
      status = VIRTIO_BLK_S_IOERR;
    }
    break;
  case VIRTIO_BLK_T_GET_ID:
    written = data_in < BLK_ID_BYTES ? data_in : BLK_ID_BYTES;
    virtio_chain_write(c, 0, b->id, written);
    break;
  default:
    status = VIRTIO_BLK_S_UNSUPP;
    break;
  }
  virtio_chain_write(c, c->writable_bytes - 1, &status, 1);
  return (int64_t)(written + 1);
}

static void blk_queue_notify(struct virtio_mmio *t, void *dev, uint16_t q) {
  struct virtio_blk *b = dev;
  bool any = false;
  while (virtio_queue_pop(t, q, &b->chain) == 1) {
    if (!virtio_mmio_io_begin(t, &b->chain))
      continue; /* reset since the pop: the chain is gone */
    int64_t written = blk_handle(t, b);
    virtio_mmio_io_end(t);
    if (written < 0)
      break;
    virtio_queue_push(t, q, &b->chain, (uint32_t)written);
    any = true;
  }
  if (any)
    virtio_queue_signal(t, q);
}

static void blk_destroy(void *dev) {
  struct virtio_blk *b = dev;
  if (b->fd >= 0)
    close(b->fd);
  free(b);
}

static int image_sectors(int fd, const char *path, uint64_t *sectors, hv_error_t *err) {
  struct stat st;
  if (fstat(fd, &st) < 0)
    return hv_error(err, errno, "stat disk image `%s`", path);
  uint64_t bytes;
  if (S_ISBLK(st.st_mode)) {
    if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
      return hv_error(err, errno, "size of block device `%s`", path);
  } else if (S_ISREG(st.st_mode)) {
    bytes = (uint64_t)st.st_size;
  } else {
    return hv_error(err, 0, "disk image `%s` is neither a regular file nor a block device", path);
  }
  /* A trailing partial sector is not addressable by the guest. */
  *sectors = bytes / SECTOR;
  return 0;
}

int virtio_blk_create(struct vm *vm, const char *path, bool readonly, hv_error_t *err) {
  struct virtio_blk *b = hv_xmalloc0(sizeof *b);
  b->readonly = readonly;
  snprintf(b->path, sizeof b->path, "%s", path);
  b->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (b->fd < 0) {
    int e = errno;
    free(b);
    return hv_error(err, e, "open disk image `%s`%s", path, readonly ? "" : " for writing");
  }
  if (image_sectors(b->fd, path, &b->sectors, err) < 0) {
    blk_destroy(b);
    return -1;
  }
  /* The serial tells the guest agent which disk is which. */
  strncpy(b->id, readonly ? "hvrun-root" : "hvrun-scratch", sizeof b->id);
  b->ops = (struct virtio_dev_ops){
      .name = "virtio-blk",
      .device_id = VIRTIO_ID_BLOCK,
      .features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
                  (readonly ? 1ULL << VIRTIO_BLK_F_RO : 1ULL << VIRTIO_BLK_F_FLUSH),
      .num_queues = 1,
      .queue_size_max = BLK_QUEUE_SIZE,
      .config_size = BLK_CONFIG_SIZE,
      .config_read = blk_config_read,
      .queue_notify = blk_queue_notify,
      .destroy = blk_destroy,
  };
  if (virtio_mmio_create(vm, &b->ops, b, -1, NULL, err) < 0) {
    blk_destroy(b);
    return hv_error_wrap(err, "virtio-blk `%s`", path);
  }
  return 0;
}
