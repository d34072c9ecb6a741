/* test_virtio_guest.c: virtio-mmio driven by tiny ring-0 guests
 * (tests/unit/guests/virtio_*.S, built to $(BUILD)/guests/NAME.bin) on a
 * real vCPU: register probing, a block read completed by an interrupt that
 * travels irqfd -> in-kernel IOAPIC -> LAPIC, and malformed requests that
 * must leave the VMM running, and a console echo.  Also checks that queue
 * notifications arrive through ioeventfds rather than MMIO exits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <time.h>
#include "vm/virtio.h"

static char guests_dir[4096];

static void find_guests_dir(void) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  assert_true(n > 0);
  exe[n] = 0;
  snprintf(guests_dir, sizeof guests_dir, "%s/../guests", dirname(exe));
}

static void *load_guest(const char *name, size_t *len) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s.bin", guests_dir, name);
  char *data = NULL;
  hv_error_t err = NULL;
  if (hv_read_file(path, &data, len, &err) < 0)
    fail_msg("load guest %s: %s (build it with `make vm-guests`)", path, err->msg);
  return data;
}

/* A disk whose sector N is filled with the byte N. */
static void make_disk(char *path, size_t sectors) {
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  for (size_t s = 0; s < sectors; s++) {
    uint8_t buf[512];
    memset(buf, (int)(s & 0xff), sizeof buf);
    assert_int_equal(write(fd, buf, sizeof buf), 512);
  }
  close(fd);
}

/* Ends a guest that hangs (e.g. waiting for an interrupt that never
 * comes) so the test fails with a message instead of blocking forever. */
struct watchdog { struct vm *vm; pthread_mutex_t m; pthread_cond_t c; bool done; };
static void *watchdog_main(void *arg) {
  struct watchdog *w = arg;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 60;
  pthread_mutex_lock(&w->m);
  while (!w->done)
    if (pthread_cond_timedwait(&w->c, &w->m, &until) == ETIMEDOUT)
      break;
  bool fire = !w->done;
  pthread_mutex_unlock(&w->m);
  if (fire)
    vm_request_stop(w->vm, HV_VM_EXIT_ERROR, 0, "watchdog: guest did not finish");
  return NULL;
}

struct run_result {
  enum hv_vm_exit reason;
  int status;
  char error[512];
  char serial[1024];
  char console_out[1024];       /* what the console device wrote */
  uint64_t notify_exits;        /* QueueNotify writes that reached the VMM */
};

enum device { DEV_BLK, DEV_CONSOLE };

/* Run guest NAME with one virtio device in slot 0 (0xd0000000, GSI 5): a
 * read-only disk, or a console whose input holds `console_in`. */
static void run_guest(const char *name, enum device dev, const char *console_in,
                      struct run_result *r) {
  memset(r, 0, sizeof *r);
  size_t len = 0;
  cleanup_free void *bin = load_guest(name, &len);
  char disk[] = "/tmp/test_virtio_guest.XXXXXX";
  int p[2], in[2] = {-1, -1}, out[2] = {-1, -1};
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  struct vm vm;
  hv_error_t err = NULL;
  if (vm_create(&vm, 64 << 20, 1, false, &err) < 0)
    fail_msg("vm_create: %s", err->msg);
  if (vm_serial_create(&vm, p[1], &err) < 0 || vm_hypercall_create(&vm, &err) < 0)
    fail_msg("setup: %s", err->msg);
  if (dev == DEV_BLK) {
    make_disk(disk, 16);
    if (virtio_blk_create(&vm, disk, true, &err) < 0)
      fail_msg("virtio_blk_create: %s", err->msg);
  } else {
    /* Test payloads are far below the pipe size: no reader thread needed. */
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(write(in[1], console_in, strlen(console_in)), (ssize_t)strlen(console_in));
    if (virtio_console_create(&vm, in[0], out[1], &err) < 0)
      fail_msg("virtio_console_create: %s", err->msg);
  }
  if (vm_setup_test_longmode(&vm, bin, len, 0x100000, &err) < 0)
    fail_msg("setup: %s", err->msg);
  assert_non_null(strstr(vm.cmdline, "virtio_mmio.device=4K@0xd0000000:5"));
  struct watchdog w = {.vm = &vm, .m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER};
  pthread_t wt;
  assert_int_equal(pthread_create(&wt, NULL, watchdog_main, &w), 0);
  int rc = vm_run_vcpus(&vm, &err);
  pthread_mutex_lock(&w.m);
  w.done = true;
  pthread_cond_signal(&w.c);
  pthread_mutex_unlock(&w.m);
  pthread_join(wt, NULL);
  if (rc < 0)
    fail_msg("run: %s", err->msg);
  r->reason = vm.exit_reason;
  r->status = vm.exit_status;
  if (vm.error)
    snprintf(r->error, sizeof r->error, "%s", vm.error);
  for (size_t i = 0; i < vm.n_mmio; i++)
    if (vm.mmio[i].fn == virtio_mmio_access)
      r->notify_exits += ((struct virtio_mmio *)vm.mmio[i].opaque)->notify_exits;
  vm_destroy(&vm); /* also stops the device's I/O thread */
  close(p[1]);
  ssize_t n = read(p[0], r->serial, sizeof r->serial - 1);
  r->serial[n > 0 ? n : 0] = 0;
  close(p[0]);
  if (dev == DEV_BLK) {
    unlink(disk);
  } else {
    close(out[1]);
    n = read(out[0], r->console_out, sizeof r->console_out - 1);
    r->console_out[n > 0 ? n : 0] = 0;
    close(out[0]);
    close(in[0]);
    close(in[1]);
  }
}

static void expect_ok(const struct run_result *r, const char *serial) {
  if (r->reason != HV_VM_EXIT_STATUS || r->status != 0)
    fail_msg("guest ended with reason %d status %d (failing step, see the .S) error `%s` "
             "serial `%s`", r->reason, r->status, r->error, r->serial);
  assert_string_equal(r->serial, serial);
}

static void test_guest_blk_read_irq(void **state) {
  (void)state;
  struct run_result r;
  run_guest("virtio_blk_read", DEV_BLK, NULL, &r);
  expect_ok(&r, "virtio-blk read ok\n");
  /* The queue notification went through the ioeventfd, not a VM exit. */
  assert_int_equal(r.notify_exits, 0);
}

static void test_guest_blk_malformed(void **state) {
  (void)state;
  struct run_result r;
  run_guest("virtio_blk_bad", DEV_BLK, NULL, &r);
  expect_ok(&r, "virtio-blk survived malformed requests\n");
  /* Only the notify for nonexistent queue 7 missed the ioeventfds. */
  assert_int_equal(r.notify_exits, 1);
}

static void test_guest_console(void **state) {
  (void)state;
  struct run_result r;
  run_guest("virtio_console_io", DEV_CONSOLE, "ping\n", &r);
  expect_ok(&r, "");
  assert_string_equal(r.console_out, "hello from the guest\nping\n");
  assert_int_equal(r.notify_exits, 0);
}

int main(void) {
  find_guests_dir();
  hv_error_t err = NULL;
  if (hv_kvm_check(&err) < 0) {
    fprintf(stderr, "skipping virtio guest tests: %s\n", err->msg);
    return 0;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_guest_blk_read_irq),
      cmocka_unit_test(test_guest_blk_malformed),
      cmocka_unit_test(test_guest_console),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
