/* test_virtio.c: the virtio-mmio transport, split virtqueues and the blk
 * and console devices, driven from the host side.  A VM is created (no vCPU
 * ever runs); the test plays the guest driver: it writes descriptor tables
 * and rings into guest RAM and talks to the registers through the device's
 * MMIO handler.  The devices' I/O threads are real, so completion is
 * awaited by polling the used ring (with a generous deadline, not timed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/stat.h>
#include <time.h>
#include "vm/virtio.h"

#define MEM (32ULL << 20)
#define DESC_GPA 0x10000ULL
#define AVAIL_GPA 0x11000ULL
#define USED_GPA 0x12000ULL
#define INDIRECT_GPA 0x13000ULL
#define DATA_GPA 0x20000ULL
#define QSIZE 8

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };

/* ---- a minimal "guest driver" ---- */

struct env {
  struct vm vm;
  const struct vm_io_region *dev; /* the device under test */
  char disk[64];
  uint16_t avail_idx[2], used_seen[2];
};

static void mmio(struct env *e, uint64_t off, void *data, uint32_t len, bool wr) {
  e->dev->fn(&e->vm, e->dev->opaque, off, data, len, wr);
}
static uint32_t rd(struct env *e, uint64_t off) {
  uint32_t v = 0xdeadbeef;
  mmio(e, off, &v, 4, false);
  return v;
}
static void wr(struct env *e, uint64_t off, uint32_t v) { mmio(e, off, &v, 4, true); }
static void *g(struct env *e, uint64_t gpa) { return e->vm.mem + gpa; }

static uint64_t ring_base(uint16_t q, uint64_t gpa) { return gpa + q * 0x4000ULL; }

static void env_vm(struct env *e) {
  memset(e, 0, sizeof *e);
  hv_error_t err = NULL;
  if (vm_create(&e->vm, MEM, 1, false, &err) < 0)
    fail_msg("vm_create: %s", err->msg);
}

static void env_pick_last_device(struct env *e) {
  assert_true(e->vm.n_mmio > 0);
  e->dev = &e->vm.mmio[e->vm.n_mmio - 1];
}

static void env_disk(struct env *e, size_t sectors) {
  snprintf(e->disk, sizeof e->disk, "/tmp/test_virtio.XXXXXX");
  int fd = mkstemp(e->disk);
  assert_true(fd >= 0);
  for (size_t s = 0; s < sectors; s++) {
    uint8_t buf[512];
    memset(buf, (int)(s & 0xff), sizeof buf);
    assert_int_equal(write(fd, buf, sizeof buf), 512);
  }
  close(fd);
}

static void env_blk(struct env *e, bool readonly, size_t sectors) {
  env_vm(e);
  env_disk(e, sectors);
  hv_error_t err = NULL;
  if (virtio_blk_create(&e->vm, e->disk, readonly, &err) < 0)
    fail_msg("virtio_blk_create: %s", err->msg);
  env_pick_last_device(e);
}

static void env_done(struct env *e) {
  vm_destroy(&e->vm);
  if (e->disk[0])
    unlink(e->disk);
}

/* Negotiate `features` (returns the Status read back) without queues. */
static uint32_t negotiate(struct env *e, uint64_t features) {
  wr(e, VIRTIO_MMIO_STATUS, 0);
  wr(e, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
  wr(e, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
  wr(e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  wr(e, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
  wr(e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
  wr(e, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
  wr(e, VIRTIO_MMIO_STATUS,
     VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
  return rd(e, VIRTIO_MMIO_STATUS);
}

static uint64_t device_features(struct env *e) {
  wr(e, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  uint64_t hi = rd(e, VIRTIO_MMIO_DEVICE_FEATURES);
  wr(e, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
  return hi << 32 | rd(e, VIRTIO_MMIO_DEVICE_FEATURES);
}

static void setup_queue(struct env *e, uint16_t q, uint32_t num) {
  memset(g(e, ring_base(q, DESC_GPA)), 0, 0x1000);
  memset(g(e, ring_base(q, AVAIL_GPA)), 0, 0x1000);
  memset(g(e, ring_base(q, USED_GPA)), 0, 0x1000);
  e->avail_idx[q] = e->used_seen[q] = 0;
  wr(e, VIRTIO_MMIO_QUEUE_SEL, q);
  assert_true(rd(e, VIRTIO_MMIO_QUEUE_NUM_MAX) >= num);
  assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_READY), 0);
  wr(e, VIRTIO_MMIO_QUEUE_NUM, num);
  wr(e, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)ring_base(q, DESC_GPA));
  wr(e, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
  wr(e, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)ring_base(q, AVAIL_GPA));
  wr(e, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
  wr(e, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)ring_base(q, USED_GPA));
  wr(e, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
  wr(e, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* Full driver init with `nq` queues of size QSIZE. */
static void driver_init(struct env *e, uint64_t features, uint16_t nq) {
  uint32_t st = negotiate(e, features);
  assert_true(st & VIRTIO_STATUS_FEATURES_OK);
  for (uint16_t q = 0; q < nq; q++) {
    setup_queue(e, q, QSIZE);
    wr(e, VIRTIO_MMIO_QUEUE_SEL, q);
    assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_READY), 1);
  }
  wr(e, VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
  assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), st | VIRTIO_STATUS_DRIVER_OK);
}

static struct desc *desc_table(struct env *e, uint16_t q) { return g(e, ring_base(q, DESC_GPA)); }
static uint16_t *avail(struct env *e, uint16_t q) { return g(e, ring_base(q, AVAIL_GPA)); }
static uint16_t *used16(struct env *e, uint16_t q) { return g(e, ring_base(q, USED_GPA)); }
static uint32_t *used_elem(struct env *e, uint16_t q, uint16_t i) {
  return (uint32_t *)((uint8_t *)g(e, ring_base(q, USED_GPA)) + 4 + 8 * (i % QSIZE));
}

/* Publish head `head` and notify queue q. */
static void submit(struct env *e, uint16_t q, uint16_t head) {
  uint16_t *a = avail(e, q);
  a[2 + e->avail_idx[q] % QSIZE] = head;
  e->avail_idx[q]++;
  __atomic_store_n(&a[1], e->avail_idx[q], __ATOMIC_RELEASE);
  wr(e, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static void pause_ms(int ms) {
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, NULL);
}

/* Wait until the device has returned one more chain on q; returns its
 * used element (id, len).  The deadline only guards against a hang. */
static void wait_used(struct env *e, uint16_t q, uint32_t *id, uint32_t *len) {
  for (int i = 0; i < 20000; i++) {
    uint16_t idx = __atomic_load_n(&used16(e, q)[1], __ATOMIC_ACQUIRE);
    if (idx != e->used_seen[q]) {
      uint32_t *el = used_elem(e, q, e->used_seen[q]);
      *id = el[0];
      *len = el[1];
      e->used_seen[q]++;
      return;
    }
    pause_ms(1);
  }
  fail_msg("device never returned a buffer on queue %u", q);
}

static void wait_broken(struct env *e) {
  for (int i = 0; i < 20000; i++) {
    if (rd(e, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
      return;
    pause_ms(1);
  }
  fail_msg("device was never marked DEVICE_NEEDS_RESET");
}

static const uint64_t V1 = 1ULL << VIRTIO_F_VERSION_1;
static const uint64_t INDIRECT = 1ULL << VIRTIO_F_RING_INDIRECT_DESC;
static const uint64_t EVENT_IDX = 1ULL << VIRTIO_F_RING_EVENT_IDX;

/* ---- blk helpers ---- */

struct blk_hdr { uint32_t type, reserved; uint64_t sector; };
#define HDR_GPA DATA_GPA
#define STATUS_GPA (DATA_GPA + 0x100)
#define BUF_GPA (DATA_GPA + 0x1000)

/* Header, one data buffer (len may be 0: none), status.  Returns status
 * byte; *used_len gets the used length. */
static uint8_t blk_request(struct env *e, uint32_t type, uint64_t sector, uint32_t len,
                           bool data_writable, uint32_t *used_len) {
  struct blk_hdr *h = g(e, HDR_GPA);
  *h = (struct blk_hdr){.type = type, .sector = sector};
  *(uint8_t *)g(e, STATUS_GPA) = 0xff;
  struct desc *d = desc_table(e, 0);
  d[0] = (struct desc){HDR_GPA, sizeof *h, F_NEXT, 1};
  if (len) {
    d[1] = (struct desc){BUF_GPA, len, F_NEXT | (data_writable ? F_WRITE : 0), 2};
    d[2] = (struct desc){STATUS_GPA, 1, F_WRITE, 0};
  } else {
    d[1] = (struct desc){STATUS_GPA, 1, F_WRITE, 0};
  }
  submit(e, 0, 0);
  uint32_t id = 0, ulen = 0;
  wait_used(e, 0, &id, &ulen);
  assert_int_equal(id, 0);
  if (used_len)
    *used_len = ulen;
  return *(uint8_t *)g(e, STATUS_GPA);
}

/* ---- tests ---- */

static void test_registers(void **state) {
  (void)state;
  struct env e;
  env_blk(&e, true, 64);
  assert_int_equal(rd(&e, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
  assert_int_equal(rd(&e, VIRTIO_MMIO_VERSION), 2);
  assert_int_equal(rd(&e, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
  assert_int_equal(rd(&e, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
  uint64_t f = device_features(&e);
  assert_true(f & V1);
  assert_true(f & (1ULL << 5)); /* VIRTIO_BLK_F_RO */
  assert_true(f & INDIRECT);
  /* capacity in config space, read as two 32-bit halves and bytewise */
  assert_int_equal(rd(&e, VIRTIO_MMIO_CONFIG), 64);
  assert_int_equal(rd(&e, VIRTIO_MMIO_CONFIG + 4), 0);
  uint8_t b = 0xff;
  mmio(&e, VIRTIO_MMIO_CONFIG, &b, 1, false);
  assert_int_equal(b, 64);
  uint64_t cap = 0;
  mmio(&e, VIRTIO_MMIO_CONFIG, &cap, 8, false);
  assert_int_equal(cap, 64);
  /* Out-of-range config reads give zeros; wrong-size and misaligned
   * register accesses are ignored and read as zero. */
  uint32_t v = 0xffffffff;
  mmio(&e, 0xffc, &v, 4, false);
  assert_int_equal(v, 0);
  uint16_t h = 0xffff;
  mmio(&e, VIRTIO_MMIO_MAGIC_VALUE, &h, 2, false);
  assert_int_equal(h, 0);
  v = 0xffffffff;
  mmio(&e, VIRTIO_MMIO_MAGIC_VALUE + 1, &v, 4, false);
  assert_int_equal(v, 0);
  uint64_t big = 0xffffffffffffffffULL;
  mmio(&e, VIRTIO_MMIO_STATUS, &big, 8, false);
  assert_int_equal(big, 0);
  /* Read-only registers and config ignore writes. */
  wr(&e, VIRTIO_MMIO_MAGIC_VALUE, 0);
  wr(&e, VIRTIO_MMIO_DEVICE_ID, 7);
  wr(&e, VIRTIO_MMIO_CONFIG, 0);
  assert_int_equal(rd(&e, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
  assert_int_equal(rd(&e, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
  assert_int_equal(rd(&e, VIRTIO_MMIO_CONFIG), 64);
  /* Nonexistent queue: QueueNumMax 0, writes ignored. */
  wr(&e, VIRTIO_MMIO_QUEUE_SEL, 3);
  assert_int_equal(rd(&e, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
  wr(&e, VIRTIO_MMIO_QUEUE_READY, 1);
  assert_int_equal(rd(&e, VIRTIO_MMIO_QUEUE_READY), 0);
  wr(&e, VIRTIO_MMIO_QUEUE_NOTIFY, 99);
  wr(&e, VIRTIO_MMIO_QUEUE_SEL, 0);
  assert_int_equal(rd(&e, VIRTIO_MMIO_QUEUE_NUM_MAX), 256);
  /* No shared memory regions. */
  assert_int_equal(rd(&e, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
  /* The command line names the window and its IRQ. */
  char want[80];
  snprintf(want, sizeof want, "virtio_mmio.device=4K@0x%llx:%u",
           (unsigned long long)e.dev->base, VM_MMIO_IRQ_BASE);
  assert_non_null(strstr(e.vm.cmdline, want));
  assert_int_equal(e.dev->base, VM_MMIO_BASE);
  assert_int_equal(e.dev->len, VM_MMIO_SIZE);
  env_done(&e);
}

static void test_features(void **state) {
  (void)state;
  struct env e;
  env_blk(&e, false, 64);
  /* VERSION_1 is mandatory. */
  assert_false(negotiate(&e, 0) & VIRTIO_STATUS_FEATURES_OK);
  /* Features that were not offered are refused. */
  assert_false(negotiate(&e, V1 | (1ULL << 40)) & VIRTIO_STATUS_FEATURES_OK);
  assert_false(negotiate(&e, V1 | (1ULL << 5)) & VIRTIO_STATUS_FEATURES_OK); /* RO: not offered */
  /* Status 0 resets. */
  wr(&e, VIRTIO_MMIO_STATUS, 0);
  assert_int_equal(rd(&e, VIRTIO_MMIO_STATUS), 0);
  uint32_t st = negotiate(&e, V1 | INDIRECT | EVENT_IDX | (1ULL << 9));
  assert_true(st & VIRTIO_STATUS_FEATURES_OK);
  /* Features are frozen after FEATURES_OK. */
  wr(&e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
  wr(&e, VIRTIO_MMIO_DRIVER_FEATURES, 0);
  /* Clearing a bit other than by writing 0 is ignored. */
  wr(&e, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
  assert_int_equal(rd(&e, VIRTIO_MMIO_STATUS), st);
  /* DRIVER_OK without FEATURES_OK is not accepted. */
  wr(&e, VIRTIO_MMIO_STATUS, 0);
  wr(&e, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                 VIRTIO_STATUS_DRIVER_OK);
  assert_false(rd(&e, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK);
  env_done(&e);
}

static void test_blk_read_write(void **state) {
  (void)state;
  struct env e;
  env_blk(&e, false, 64);
  driver_init(&e, V1 | (1ULL << 9), 1);
  uint32_t ulen;
  /* Read sectors 3..4 (1024 bytes), filled with 3s and 4s by env_disk. */
  memset(g(&e, BUF_GPA), 0xee, 1024);
  assert_int_equal(blk_request(&e, 0, 3, 1024, true, &ulen), 0);
  assert_int_equal(ulen, 1025);
  uint8_t *buf = g(&e, BUF_GPA);
  assert_int_equal(buf[0], 3);
  assert_int_equal(buf[511], 3);
  assert_int_equal(buf[512], 4);
  assert_int_equal(buf[1023], 4);
  /* Interrupt raised; InterruptACK clears it. */
  assert_true(rd(&e, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_USED_RING);
  wr(&e, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_USED_RING);
  assert_int_equal(rd(&e, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
  /* Write sector 10 and read it back from the file. */
  memset(g(&e, BUF_GPA), 0x5a, 512);
  assert_int_equal(blk_request(&e, 1, 10, 512, false, &ulen), 0);
  assert_int_equal(ulen, 1);
  int fd = open(e.disk, O_RDONLY);
  uint8_t sec[512];
  assert_int_equal(pread(fd, sec, 512, 10 * 512), 512);
  close(fd);
  assert_int_equal(sec[0], 0x5a);
  assert_int_equal(sec[511], 0x5a);
  /* Flush, GET_ID, unknown request type. */
  assert_int_equal(blk_request(&e, 4, 0, 0, false, NULL), 0);
  memset(g(&e, BUF_GPA), 0, 20);
  assert_int_equal(blk_request(&e, 8, 0, 20, true, &ulen), 0);
  assert_string_equal((char *)g(&e, BUF_GPA), "hvrun-scratch");
  assert_int_equal(ulen, 21);
  assert_int_equal(blk_request(&e, 77, 0, 0, false, NULL), 2); /* UNSUPP */
  /* The last sector is readable, one past it is not. */
  assert_int_equal(blk_request(&e, 0, 63, 512, true, NULL), 0);
  assert_int_equal(blk_request(&e, 0, 64, 512, true, NULL), 1);
  assert_int_equal(blk_request(&e, 0, 63, 1024, true, NULL), 1);
  assert_int_equal(blk_request(&e, 1, 64, 512, false, NULL), 1);
  /* sector * 512 overflowing 64 bits, and a partial sector. */
  assert_int_equal(blk_request(&e, 0, 1ULL << 62, 512, true, NULL), 1);
  assert_int_equal(blk_request(&e, 0, UINT64_MAX, 512, true, NULL), 1);
  assert_int_equal(blk_request(&e, 0, 0, 100, true, NULL), 1);
  assert_false(rd(&e, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
  env_done(&e);
}

static void test_blk_readonly(void **state) {
  (void)state;
  struct env e;
  env_blk(&e, true, 16);
  driver_init(&e, V1 | (1ULL << 5), 1);
  memset(g(&e, BUF_GPA), 0x77, 512);
  assert_int_equal(blk_request(&e, 1, 2, 512, false, NULL), 1); /* IOERR */
  int fd = open(e.disk, O_RDONLY);
  uint8_t sec[512];
  assert_int_equal(pread(fd, sec, 512, 2 * 512), 512);
  close(fd);
  assert_int_equal(sec[0], 2); /* unchanged */
  assert_int_equal(blk_request(&e, 0, 2, 512, true, NULL), 0);
  assert_int_equal(blk_request(&e, 4, 0, 0, false, NULL), 0); /* flush is harmless */
  memset(g(&e, BUF_GPA), 0, 20);
  assert_int_equal(blk_request(&e, 8, 0, 20, true, NULL), 0);
  assert_string_equal((char *)g(&e, BUF_GPA), "hvrun-root");
  env_done(&e);
}

/* A read whose header, data and status are spread over an indirect table,
 * with the data split in three. */
static void test_blk_indirect(void **state) {
  (void)state;
  struct env e;
  env_blk(&e, false, 16);
  driver_init(&e, V1 | INDIRECT, 1);
  struct blk_hdr *h = g(&e, HDR_GPA);
  *h = (struct blk_hdr){.type = 0, .sector = 5};
  struct desc *t = g(&e, INDIRECT_GPA);
  t[0] = (struct desc){HDR_GPA, 16, F_NEXT, 1};
  t[1] = (struct desc){BUF_GPA, 100, F_NEXT | F_WRITE, 2};
  t[2] = (struct desc){BUF_GPA + 100, 0, F_NEXT | F_WRITE, 3}; /* empty is fine */
  t[3] = (struct desc){BUF_GPA + 100, 412, F_NEXT | F_WRITE, 4};
  t[4] = (struct desc){STATUS_GPA, 1, F_WRITE, 0};
  desc_table(&e, 0)[2] = (struct desc){INDIRECT_GPA, 5 * 16, F_INDIRECT, 0};
  submit(&e, 0, 2);
  uint32_t id = 0, len = 0;
  wait_used(&e, 0, &id, &len);
  assert_int_equal(id, 2);
  assert_int_equal(len, 513);
  assert_int_equal(*(uint8_t *)g(&e, STATUS_GPA), 0);
  assert_int_equal(((uint8_t *)g(&e, BUF_GPA))[0], 5);
  assert_int_equal(((uint8_t *)g(&e, BUF_GPA))[511], 5);
  env_done(&e);
}

/* EVENT_IDX: the device publishes avail_event when it goes idle, and
 * interrupts only when used_event asks for it. */
static void test_event_idx(void **state) {
  (void)state;
  struct env e;
  env_blk(&e, false, 16);
  driver_init(&e, V1 | EVENT_IDX, 1);
  uint16_t *used_event = &avail(&e, 0)[2 + QSIZE];
  uint16_t *avail_event = (uint16_t *)((uint8_t *)used16(&e, 0) + 4 + 8 * QSIZE);
  *used_event = 0; /* interrupt after the first used entry */
  assert_int_equal(blk_request(&e, 0, 1, 512, true, NULL), 0);
  assert_true(rd(&e, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_USED_RING);
  wr(&e, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_USED_RING);
  /* avail_event is written when the queue is found empty, after the push:
   * wait for it rather than race the I/O thread. */
  for (int i = 0; i < 20000 && __atomic_load_n(avail_event, __ATOMIC_ACQUIRE) != 1; i++)
    pause_ms(1);
  assert_int_equal(*avail_event, 1);
  *used_event = 100; /* far ahead: no interrupt for the next one */
  assert_int_equal(blk_request(&e, 0, 1, 512, true, NULL), 0);
  assert_int_equal(rd(&e, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
  *used_event = 2; /* the third entry (idx 2 -> 3) crosses it */
  assert_int_equal(blk_request(&e, 0, 1, 512, true, NULL), 0);
  assert_true(rd(&e, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_USED_RING);
  env_done(&e);
}

/* ---- malformed input: each must mark the device broken, never crash ---- */

enum bad { BAD_LOOP, BAD_NEXT_RANGE, BAD_HEAD_RANGE, BAD_PAST_RAM, BAD_OVERFLOW, BAD_NESTED,
           BAD_ZERO_INDIRECT, BAD_INDIRECT_PAST_RAM, BAD_AVAIL_JUMP, BAD_INDIRECT_LOOP,
           BAD_NO_STATUS, BAD_READ_AFTER_WRITE, BAD_INDIRECT_NOT_NEGOTIATED };

static void submit_bad(struct env *e, enum bad kind) {
  struct desc *d = desc_table(e, 0);
  struct desc *t = g(e, INDIRECT_GPA);
  uint16_t head = 0;
  switch (kind) {
  case BAD_LOOP:
    d[0] = (struct desc){HDR_GPA, 16, F_NEXT, 1};
    d[1] = (struct desc){BUF_GPA, 512, F_NEXT, 0};
    break;
  case BAD_NEXT_RANGE:
    d[0] = (struct desc){HDR_GPA, 16, F_NEXT, 200};
    break;
  case BAD_HEAD_RANGE:
    head = 99;
    break;
  case BAD_PAST_RAM:
    d[0] = (struct desc){HDR_GPA, 16, F_NEXT, 1};
    d[1] = (struct desc){MEM - 8, 512, F_NEXT | F_WRITE, 2};
    d[2] = (struct desc){STATUS_GPA, 1, F_WRITE, 0};
    break;
  case BAD_OVERFLOW:
    d[0] = (struct desc){0xfffffffffffff000ULL, 0x2000, F_NEXT, 1};
    d[1] = (struct desc){STATUS_GPA, 1, F_WRITE, 0};
    break;
  case BAD_NESTED:
    t[0] = (struct desc){INDIRECT_GPA + 0x100, 32, F_INDIRECT, 0};
    d[0] = (struct desc){INDIRECT_GPA, 16, F_INDIRECT, 0};
    break;
  case BAD_ZERO_INDIRECT:
    d[0] = (struct desc){INDIRECT_GPA, 0, F_INDIRECT, 0};
    break;
  case BAD_INDIRECT_PAST_RAM:
    d[0] = (struct desc){MEM - 16, 32, F_INDIRECT, 0};
    break;
  case BAD_AVAIL_JUMP:
    break;
  case BAD_INDIRECT_LOOP:
    t[0] = (struct desc){HDR_GPA, 16, F_NEXT, 1};
    t[1] = (struct desc){BUF_GPA, 16, F_NEXT, 0};
    d[0] = (struct desc){INDIRECT_GPA, 32, F_INDIRECT, 0};
    break;
  case BAD_NO_STATUS:
    d[0] = (struct desc){HDR_GPA, 16, 0, 0};
    break;
  case BAD_READ_AFTER_WRITE:
    d[0] = (struct desc){STATUS_GPA, 1, F_NEXT | F_WRITE, 1};
    d[1] = (struct desc){HDR_GPA, 16, 0, 0};
    break;
  case BAD_INDIRECT_NOT_NEGOTIATED:
    t[0] = (struct desc){HDR_GPA, 16, F_NEXT, 1};
    t[1] = (struct desc){STATUS_GPA, 1, F_WRITE, 0};
    d[0] = (struct desc){INDIRECT_GPA, 32, F_INDIRECT, 0};
    break;
  }
  if (kind == BAD_AVAIL_JUMP) {
    __atomic_store_n(&avail(e, 0)[1], (uint16_t)(QSIZE + 5), __ATOMIC_RELEASE);
    wr(e, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
  } else {
    submit(e, 0, head);
  }
}

static void check_bad(enum bad kind) {
  struct env e;
  env_blk(&e, false, 16);
  uint64_t f = V1 | (kind == BAD_INDIRECT_NOT_NEGOTIATED ? 0 : INDIRECT);
  driver_init(&e, f, 1);
  submit_bad(&e, kind);
  wait_broken(&e);
  /* The driver hears about it through a config-change interrupt; the used
   * ring was not touched. */
  assert_true(rd(&e, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
  assert_int_equal(used16(&e, 0)[1], 0);
  /* Further notifications are ignored while broken ... */
  wr(&e, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
  /* ... and a reset brings the device back. */
  driver_init(&e, V1, 1);
  assert_false(rd(&e, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
  assert_int_equal(blk_request(&e, 0, 1, 512, true, NULL), 0);
  assert_int_equal(((uint8_t *)g(&e, BUF_GPA))[0], 1);
  env_done(&e);
}

static void test_bad_loop(void **s) { (void)s; check_bad(BAD_LOOP); }
static void test_bad_next_range(void **s) { (void)s; check_bad(BAD_NEXT_RANGE); }
static void test_bad_head_range(void **s) { (void)s; check_bad(BAD_HEAD_RANGE); }
static void test_bad_past_ram(void **s) { (void)s; check_bad(BAD_PAST_RAM); }
static void test_bad_overflow(void **s) { (void)s; check_bad(BAD_OVERFLOW); }
static void test_bad_nested(void **s) { (void)s; check_bad(BAD_NESTED); }
static void test_bad_zero_indirect(void **s) { (void)s; check_bad(BAD_ZERO_INDIRECT); }
static void test_bad_indirect_past_ram(void **s) { (void)s; check_bad(BAD_INDIRECT_PAST_RAM); }
static void test_bad_avail_jump(void **s) { (void)s; check_bad(BAD_AVAIL_JUMP); }
static void test_bad_indirect_loop(void **s) { (void)s; check_bad(BAD_INDIRECT_LOOP); }
static void test_bad_no_status(void **s) { (void)s; check_bad(BAD_NO_STATUS); }
static void test_bad_read_after_write(void **s) { (void)s; check_bad(BAD_READ_AFTER_WRITE); }
static void test_bad_indirect_not_negotiated(void **s) {
  (void)s;
  check_bad(BAD_INDIRECT_NOT_NEGOTIATED);
}

/* Queue layouts that cannot be used are refused at QueueReady. */
static void test_bad_queue_setup(void **state) {
  (void)state;
  struct env e;
  env_blk(&e, false, 16);
  struct { uint32_t num; uint64_t desc, drv, dev; } cases[] = {
      {6, DESC_GPA, AVAIL_GPA, USED_GPA},          /* not a power of two */
      {0, DESC_GPA, AVAIL_GPA, USED_GPA},          /* zero */
      {512, DESC_GPA, AVAIL_GPA, USED_GPA},        /* above QueueNumMax */
      {8, DESC_GPA + 8, AVAIL_GPA, USED_GPA},      /* misaligned */
      {8, MEM - 64, AVAIL_GPA, USED_GPA},          /* past RAM */
      {8, DESC_GPA, AVAIL_GPA, 0xfffffffffffffff0ULL}, /* wraps */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint32_t st = negotiate(&e, V1);
    assert_true(st & VIRTIO_STATUS_FEATURES_OK);
    wr(&e, VIRTIO_MMIO_QUEUE_SEL, 0);
    wr(&e, VIRTIO_MMIO_QUEUE_NUM, cases[i].num);
    wr(&e, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)cases[i].desc);
    wr(&e, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(cases[i].desc >> 32));
    wr(&e, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)cases[i].drv);
    wr(&e, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(cases[i].drv >> 32));
    wr(&e, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)cases[i].dev);
    wr(&e, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(cases[i].dev >> 32));
    wr(&e, VIRTIO_MMIO_QUEUE_READY, 1);
    assert_int_equal(rd(&e, VIRTIO_MMIO_QUEUE_READY), 0);
    assert_true(rd(&e, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
  }
  env_done(&e);
}

/* Requests racing with a reset and with VM teardown: nothing may crash. */
static void test_reset_and_teardown_busy(void **state) {
  (void)state;
  struct env e;
  env_blk(&e, false, 64);
  for (int round = 0; round < 20; round++) {
    driver_init(&e, V1, 1);
    struct blk_hdr *h = g(&e, HDR_GPA);
    *h = (struct blk_hdr){.type = 0, .sector = 1};
    struct desc *d = desc_table(&e, 0);
    for (uint16_t i = 0; i < QSIZE / 2; i++) {
      d[2 * i] = (struct desc){HDR_GPA, 16, F_NEXT, (uint16_t)(2 * i + 1)};
      d[2 * i + 1] = (struct desc){BUF_GPA, 513, F_WRITE, 0}; /* data + status */
      submit(&e, 0, 2 * i);
    }
  }
  env_done(&e); /* destroys with requests possibly in flight */
}

/* ---- console ---- */

static void env_console(struct env *e, int in_fd, int out_fd) {
  env_vm(e);
  hv_error_t err = NULL;
  if (virtio_console_create(&e->vm, in_fd, out_fd, &err) < 0)
    fail_msg("virtio_console_create: %s", err->msg);
  env_pick_last_device(e);
  assert_int_equal(rd(e, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_CONSOLE);
  driver_init(e, V1, 2);
}

#define RX_BUF_GPA (DATA_GPA + 0x4000)
#define TX_BUF_GPA (DATA_GPA + 0x8000)

static void console_send(struct env *e, const char *s, uint16_t slot) {
  memcpy(g(e, TX_BUF_GPA + slot * 0x100), s, strlen(s));
  desc_table(e, 1)[slot] = (struct desc){TX_BUF_GPA + slot * 0x100, (uint32_t)strlen(s), 0, 0};
  submit(e, 1, slot);
}

static void console_post_rx(struct env *e, uint16_t slot, uint32_t len) {
  desc_table(e, 0)[slot] = (struct desc){RX_BUF_GPA + slot * 0x100, len, F_WRITE, 0};
  submit(e, 0, slot);
}

static void test_console_tx_rx(void **state) {
  (void)state;
  int in[2], out[2];
  assert_int_equal(pipe2(in, O_CLOEXEC), 0);
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  struct env e;
  env_console(&e, in[0], out[1]);
  uint32_t id = 0, len = 0;
  console_send(&e, "hello ", 0);
  console_send(&e, "world", 1);
  wait_used(&e, 1, &id, &len);
  wait_used(&e, 1, &id, &len);
  char got[32] = {0};
  size_t n = 0;
  while (n < 11) {
    ssize_t r = read(out[0], got + n, sizeof got - 1 - n);
    assert_true(r > 0);
    n += (size_t)r;
  }
  assert_string_equal(got, "hello world");
  /* Host input waits for a receive buffer, then is split across buffers. */
  assert_int_equal(write(in[1], "abcdefgh", 8), 8);
  console_post_rx(&e, 0, 5);
  wait_used(&e, 0, &id, &len);
  assert_int_equal(id, 0);
  assert_int_equal(len, 5);
  assert_memory_equal(g(&e, RX_BUF_GPA), "abcde", 5);
  console_post_rx(&e, 1, 64);
  wait_used(&e, 0, &id, &len);
  assert_int_equal(id, 1);
  assert_int_equal(len, 3);
  assert_memory_equal(g(&e, RX_BUF_GPA + 0x100), "fgh", 3);
  /* Input arriving while a buffer is posted. */
  console_post_rx(&e, 2, 64);
  pause_ms(5);
  assert_int_equal(write(in[1], "xyz", 3), 3);
  wait_used(&e, 0, &id, &len);
  assert_int_equal(len, 3);
  assert_memory_equal(g(&e, RX_BUF_GPA + 0x200), "xyz", 3);
  /* EOF on input and a closed output pipe: the device carries on. */
  close(in[1]);
  close(out[0]);
  console_send(&e, "into the void", 3);
  wait_used(&e, 1, &id, &len);
  assert_false(rd(&e, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
  env_done(&e);
  close(in[0]);
  close(out[1]);
}

/* A regular file as input cannot be epolled: it is read whenever the guest
 * has buffers. */
static void test_console_file_input(void **state) {
  (void)state;
  char path[] = "/tmp/test_virtio_in.XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "from a file", 11), 11);
  assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
  unlink(path);
  struct env e;
  env_console(&e, fd, -1);
  uint32_t id = 0, len = 0;
  console_post_rx(&e, 0, 4);
  wait_used(&e, 0, &id, &len);
  assert_int_equal(len, 4);
  console_post_rx(&e, 1, 64);
  wait_used(&e, 0, &id, &len);
  assert_int_equal(len, 7);
  assert_memory_equal(g(&e, RX_BUF_GPA + 0x100), " a file", 7);
  /* Output with out_fd = -1 is discarded but buffers come back. */
  console_send(&e, "dropped", 2);
  wait_used(&e, 1, &id, &len);
  env_done(&e);
  close(fd);
}

/* A stalled reader must not wedge VM teardown. */
static void test_console_stalled_output(void **state) {
  (void)state;
  int out[2];
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  assert_int_equal(fcntl(out[1], F_SETPIPE_SZ, 4096), 4096);
  struct env e;
  env_console(&e, -1, out[1]);
  static char big[0x100];
  memset(big, 'x', sizeof big - 1);
  for (uint16_t i = 0; i < QSIZE; i++)
    console_send(&e, big, i); /* 8 * 255 bytes, more than fits */
  for (int i = 0; i < 100; i++) {
    int queued = 0;
    assert_int_equal(ioctl(out[0], FIONREAD, &queued), 0);
    if (queued >= 4096)
      break;
    pause_ms(1);
  }
  env_done(&e); /* must return although the pipe is full */
  close(out[0]);
  close(out[1]);
}

/* With a terminal on the output, VIRTIO_CONSOLE_F_SIZE is offered and the
 * config space carries the terminal's columns and rows. */
static void test_console_size(void **state) {
  (void)state;
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  assert_true(master >= 0);
  assert_int_equal(grantpt(master), 0);
  assert_int_equal(unlockpt(master), 0);
  int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  assert_true(slave >= 0);
  struct winsize ws = {.ws_row = 33, .ws_col = 101};
  assert_int_equal(ioctl(master, TIOCSWINSZ, &ws), 0);
  struct env e;
  env_vm(&e);
  hv_error_t err = NULL;
  if (virtio_console_create(&e.vm, -1, slave, &err) < 0)
    fail_msg("virtio_console_create: %s", err->msg);
  env_pick_last_device(&e);
  assert_true(device_features(&e) & 1); /* VIRTIO_CONSOLE_F_SIZE */
  uint16_t cols = 0, rows = 0;
  mmio(&e, VIRTIO_MMIO_CONFIG, &cols, 2, false);
  mmio(&e, VIRTIO_MMIO_CONFIG + 2, &rows, 2, false);
  assert_int_equal(cols, 101);
  assert_int_equal(rows, 33);
  env_done(&e);
  /* Without a terminal the feature is not offered. */
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  env_vm(&e);
  if (virtio_console_create(&e.vm, p[0], p[1], &err) < 0)
    fail_msg("virtio_console_create: %s", err->msg);
  env_pick_last_device(&e);
  assert_false(device_features(&e) & 1);
  env_done(&e);
  close(p[0]);
  close(p[1]);
  close(slave);
  close(master);
}

/* Bad disk images fail with one clear message and register nothing. */
static void test_blk_create_errors(void **state) {
  (void)state;
  struct env e;
  env_vm(&e);
  size_t n_mmio = e.vm.n_mmio, n_dev = e.vm.n_devices;
  hv_error_t err = NULL;
  assert_true(virtio_blk_create(&e.vm, "/nonexistent/disk.img", true, &err) < 0);
  assert_non_null(strstr(err->msg, "open disk image `/nonexistent/disk.img`"));
  hv_error_release(&err);
  assert_true(virtio_blk_create(&e.vm, "/tmp", false, &err) < 0);
  assert_non_null(strstr(err->msg, "`/tmp`"));
  hv_error_release(&err);
  assert_int_equal(e.vm.n_mmio, n_mmio);
  assert_int_equal(e.vm.n_devices, n_dev);
  assert_null(strstr(e.vm.cmdline, "virtio_mmio.device="));
  env_done(&e);
}

int main(void) {
  hv_error_t err = NULL;
  if (hv_kvm_check(&err) < 0) {
    fprintf(stderr, "skipping virtio tests: %s\n", err->msg);
    return 0;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_registers),
      cmocka_unit_test(test_features),
      cmocka_unit_test(test_blk_read_write),
      cmocka_unit_test(test_blk_readonly),
      cmocka_unit_test(test_blk_indirect),
      cmocka_unit_test(test_event_idx),
      cmocka_unit_test(test_bad_loop),
      cmocka_unit_test(test_bad_next_range),
      cmocka_unit_test(test_bad_head_range),
      cmocka_unit_test(test_bad_past_ram),
      cmocka_unit_test(test_bad_overflow),
      cmocka_unit_test(test_bad_nested),
      cmocka_unit_test(test_bad_zero_indirect),
      cmocka_unit_test(test_bad_indirect_past_ram),
      cmocka_unit_test(test_bad_avail_jump),
      cmocka_unit_test(test_bad_indirect_loop),
      cmocka_unit_test(test_bad_no_status),
      cmocka_unit_test(test_bad_read_after_write),
      cmocka_unit_test(test_bad_indirect_not_negotiated),
      cmocka_unit_test(test_bad_queue_setup),
      cmocka_unit_test(test_reset_and_teardown_busy),
      cmocka_unit_test(test_console_tx_rx),
      cmocka_unit_test(test_console_file_input),
      cmocka_unit_test(test_console_stalled_output),
      cmocka_unit_test(test_console_size),
      cmocka_unit_test(test_blk_create_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
