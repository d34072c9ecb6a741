/* test_vm_core.c: the VMM core driven by tiny ring-0 guests
 * (tests/unit/guests/NAME.S, built to $(BUILD)/guests/NAME.bin). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include "vm/vmm.h"

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
    fail_msg("load guest %s: %s", path, err->msg);
  return data;
}

struct run_result {
  enum hv_vm_exit reason;
  int status;
  char error[512];
  char serial[1024];
  uint64_t mmio_unhandled;
};

/* Build a VM with the core devices, load guest NAME, run it to the end.
 * If stop_after_ms > 0 a helper thread requests a stop after that long. */
struct stopper { struct vm *vm; int ms; };
static void *stopper_main(void *arg) {
  struct stopper *s = arg;
  struct timespec ts = {.tv_sec = s->ms / 1000, .tv_nsec = (s->ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  vm_request_stop(s->vm, HV_VM_EXIT_ERROR, 0, "stopped by the test");
  return NULL;
}

static void run_guest(const char *name, uint32_t vcpus, int stop_after_ms, struct run_result *r) {
  memset(r, 0, sizeof *r);
  size_t len = 0;
  cleanup_free void *bin = load_guest(name, &len);
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  /* The serial output of a test guest is tiny, far below the pipe size. */
  struct vm vm;
  hv_error_t err = NULL;
  if (vm_create(&vm, 64 << 20, vcpus, false, &err) < 0)
    fail_msg("vm_create: %s", err->msg);
  if (vm_serial_create(&vm, p[1], &err) < 0 || vm_i8042_create(&vm, &err) < 0 ||
      vm_hypercall_create(&vm, &err) < 0 || vm_setup_test_longmode(&vm, bin, len, 0x100000, &err) < 0)
    fail_msg("setup: %s", err->msg);
  pthread_t t;
  struct stopper s = {.vm = &vm, .ms = stop_after_ms};
  if (stop_after_ms > 0)
    assert_int_equal(pthread_create(&t, NULL, stopper_main, &s), 0);
  if (vm_run_vcpus(&vm, &err) < 0)
    fail_msg("run: %s", err->msg);
  if (stop_after_ms > 0)
    pthread_join(t, NULL);
  r->reason = vm.exit_reason;
  r->status = vm.exit_status;
  if (vm.error)
    snprintf(r->error, sizeof r->error, "%s", vm.error);
  for (uint32_t i = 0; i < vm.nr_vcpus; i++)
    r->mmio_unhandled += vm.vcpus[i].mmio_unhandled;
  vm_destroy(&vm); /* flushes the serial buffer into the pipe */
  close(p[1]);
  ssize_t n = read(p[0], r->serial, sizeof r->serial - 1);
  r->serial[n > 0 ? n : 0] = 0;
  close(p[0]);
}

static void test_serial_hello(void **state) {
  (void)state;
  struct run_result r;
  run_guest("serial_hello", 1, 0, &r);
  assert_int_equal(r.reason, HV_VM_EXIT_STATUS);
  assert_int_equal(r.status, 0);
  assert_string_equal(r.serial, "hello\n");
}

static void test_exit_status(void **state) {
  (void)state;
  struct run_result r;
  run_guest("exit7", 1, 0, &r);
  assert_int_equal(r.reason, HV_VM_EXIT_STATUS);
  assert_int_equal(r.status, 7);
}

static void test_signaled(void **state) {
  (void)state;
  struct run_result r;
  run_guest("signaled", 1, 0, &r);
  assert_int_equal(r.reason, HV_VM_EXIT_STATUS);
  assert_int_equal(r.status, 128 + 9);
}

static void test_panic(void **state) {
  (void)state;
  struct run_result r;
  run_guest("panic", 1, 0, &r);
  assert_int_equal(r.reason, HV_VM_EXIT_PANIC);
}

static void test_reset(void **state) {
  (void)state;
  struct run_result r;
  run_guest("reset", 1, 0, &r);
  assert_int_equal(r.reason, HV_VM_EXIT_RESET);
}

static void test_triple_fault(void **state) {
  (void)state;
  struct run_result r;
  run_guest("triple_fault", 1, 0, &r);
  assert_int_equal(r.reason, HV_VM_EXIT_ERROR);
  if (!strstr(r.error, "guest triple fault"))
    fail_msg("error was: %s", r.error);
}

static void test_int3(void **state) {
  (void)state;
  struct run_result r;
  run_guest("int3", 1, 0, &r);
  if (r.reason == HV_VM_EXIT_ERROR)
    fail_msg("VM error: %s", r.error);
  assert_int_equal(r.reason, HV_VM_EXIT_STATUS);
  assert_int_equal(r.status, 3);
}

static void test_fwait(void **state) {
  (void)state;
  struct run_result r;
  run_guest("fwait", 1, 0, &r);
  if (r.reason == HV_VM_EXIT_ERROR)
    fail_msg("VM error: %s", r.error);
  assert_int_equal(r.reason, HV_VM_EXIT_STATUS);
  assert_int_equal(r.status, 9);
}

/* On PVM with the int3 work-around off, the emulator's failure must come
 * out as a clear error naming the instruction, and the VM must stop. */
static void test_emulation_failure_reported(void **state) {
  (void)state;
  if (access("/sys/module/kvm_pvm", F_OK) != 0) {
    skip();
    return;
  }
  setenv("HVRUN_PVM", "0", 1);
  struct run_result r;
  run_guest("int3", 1, 0, &r);
  unsetenv("HVRUN_PVM");
  assert_int_equal(r.reason, HV_VM_EXIT_ERROR);
  if (!strstr(r.error, "emulation failure") || !strstr(r.error, "instruction cc"))
    fail_msg("unclear error: %s", r.error);
}

/* On PVM a ring-0 VMCALL never completes, so the CPUID the VMM gives must
 * not offer the KVM PV features that are hypercalls (SMP Linux hung at its
 * first PV IPI), and the PVM guest arguments must hold the boot-cost ones. */
static void test_pvm_cpuid_and_args(void **state) {
  (void)state;
  setenv("HVRUN_PVM", "1", 1);
  struct vm vm;
  hv_error_t err = NULL;
  if (vm_create(&vm, 16ULL << 20, 1, false, &err) < 0)
    fail_msg("vm_create: %s", err->msg);
  struct {
    struct kvm_cpuid2 c;
    struct kvm_cpuid_entry2 e[256];
  } c = {.c = {.nent = 256}};
  int rc = ioctl(vm.vcpus[0].fd, KVM_GET_CPUID2, &c);
  vm_destroy(&vm);
  unsetenv("HVRUN_PVM");
  assert_int_equal(rc, 0);
  const uint32_t hypercalls = (1U << 7) | (1U << 11) | (1U << 13) | (1U << 16);
  for (uint32_t i = 0; i < c.c.nent; i++)
    if (c.e[i].function == 0x40000001 && (c.e[i].eax & hypercalls))
      fail_msg("leaf 0x40000001 eax 0x%x offers a hypercall feature", c.e[i].eax);
  const char *a = vm_pvm_kernel_args();
  assert_non_null(strstr(a, "noreplace-smp"));
  assert_non_null(strstr(a, "rodata=off"));
  assert_non_null(strstr(a, "clearcpuid=xsave,"));
  assert_null(strstr(a, "noxsave"));
}

static void test_halt_then_stop(void **state) {
  (void)state;
  struct run_result r;
  /* The guest halts with interrupts off; only the VMM can end it.  The
   * in-kernel LAPIC keeps the vCPU asleep in KVM_RUN until the kick. */
  run_guest("halt", 1, 50, &r);
  assert_int_equal(r.reason, HV_VM_EXIT_ERROR);
  assert_string_equal(r.error, "stopped by the test");
  assert_string_equal(r.serial, "halting\n");
}

static void test_mmio_unmapped(void **state) {
  (void)state;
  struct run_result r;
  run_guest("mmio_unmapped", 1, 0, &r);
  assert_int_equal(r.reason, HV_VM_EXIT_STATUS);
  assert_int_equal(r.status, 0); /* the write was ignored, the read gave ~0 */
  assert_int_equal(r.mmio_unhandled, 3);
}

static void test_smp(void **state) {
  (void)state;
  struct run_result r;
  run_guest("smp", 2, 0, &r);
  assert_int_equal(r.reason, HV_VM_EXIT_STATUS);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.serial, "cpu 0\n"));
  assert_non_null(strstr(r.serial, "cpu 1\n"));
}

static void test_gpa_bounds(void **state) {
  (void)state;
  struct vm vm;
  hv_error_t err = NULL;
  if (vm_create(&vm, 64 << 20, 1, false, &err) < 0)
    fail_msg("vm_create: %s", err->msg);
  assert_non_null(vm_gpa(&vm, 0, 64 << 20));
  assert_null(vm_gpa(&vm, 1, 64 << 20));
  assert_null(vm_gpa(&vm, (64 << 20) - 1, 2));
  assert_null(vm_gpa(&vm, UINT64_MAX, 2));
  assert_null(vm_gpa(&vm, 0x100000000ULL, 1));
  assert_non_null(vm_gpa(&vm, (64 << 20) - 1, 1));
  /* overlapping regions are refused */
  assert_int_equal(vm_register_pio(&vm, 0x3f8, 8, NULL, NULL), 0);
  assert_true(vm_register_pio(&vm, 0x3ff, 2, NULL, NULL) < 0);
  assert_true(vm_register_pio(&vm, 0xffff, 2, NULL, NULL) < 0);
  vm_destroy(&vm);
}

static void test_bad_config(void **state) {
  (void)state;
  struct vm vm;
  hv_error_t err = NULL;
  assert_true(vm_create(&vm, 64 << 20, 0, false, &err) < 0);
  assert_non_null(strstr(err->msg, "vCPU"));
  vm_destroy(&vm);
  hv_error_release(&err);
  assert_true(vm_create(&vm, 64 << 20, 4096, false, &err) < 0);
  assert_non_null(strstr(err->msg, "vCPUs requested"));
  vm_destroy(&vm);
  hv_error_release(&err);
}

int main(void) {
  find_guests_dir();
  hv_error_t err = NULL;
  if (hv_kvm_check(&err) < 0) {
    fprintf(stderr, "skipping VMM core tests: %s\n", err->msg);
    return 0;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_serial_hello),  cmocka_unit_test(test_exit_status),
      cmocka_unit_test(test_signaled),      cmocka_unit_test(test_panic),
      cmocka_unit_test(test_reset),         cmocka_unit_test(test_triple_fault),
      cmocka_unit_test(test_int3),          cmocka_unit_test(test_fwait),          cmocka_unit_test(test_emulation_failure_reported),
      cmocka_unit_test(test_pvm_cpuid_and_args),
               cmocka_unit_test(test_halt_then_stop), cmocka_unit_test(test_mmio_unmapped),
      cmocka_unit_test(test_smp),           cmocka_unit_test(test_gpa_bounds),
      cmocka_unit_test(test_bad_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
