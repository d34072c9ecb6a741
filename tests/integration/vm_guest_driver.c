/* vm_guest_driver.c: test driver for test_vm_guest.py.  Builds the root
 * disk and initrd with hvrun's own code (vm/rootdisk.c, vm/initrd.c) and
 * boots them with the QEMU engine (vm/qemu.c), so the test exercises the
 * same path as `hvrun run --engine qemu`.
 *
 *   vm_guest_driver KERNEL INIT CONFIG.json ROOTDIR WORKDIR [SIGNAL]
 *
 * The workload's console is this process's stdin/stdout, the kernel log
 * goes to WORKDIR/kernel.log.  With SIGNAL, "signal SIGNAL" is sent over the
 * control channel once the guest reports "started".  HVRUN_TEST_CMDLINE adds
 * to the kernel command line; HVRUN_TEST_MEM_MB and HVRUN_TEST_VCPUS size the VM.  Prints
 * "status N" on stderr and exits 0, or prints the error and exits 1. */
#include "vm/guest_proto.h"
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

static int host_end = -1, send_signal = 0;

static void *control_reader(void *unused) {
  (void)unused;
  char buf[512];
  ssize_t n;
  while ((n = read(host_end, buf, sizeof buf - 1)) > 0) {
    buf[n] = '\0';
    fprintf(stderr, "control: %s", buf);
    if (send_signal && strstr(buf, "started ")) {
      /* Give the workload time to install its handlers (the test does not
       * depend on how long; too short only kills it by default action). */
      const char *delay = getenv("HVRUN_TEST_SIGNAL_DELAY_MS");
      if (delay)
        usleep((useconds_t)atoi(delay) * 1000);
      dprintf(host_end, "signal %d\n", send_signal);
      send_signal = 0;
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  hv_error_t err = NULL;
  if (argc < 6) {
    fprintf(stderr, "usage: %s KERNEL INIT CONFIG ROOTDIR WORKDIR [SIGNAL]\n", argv[0]);
    return 2;
  }
  send_signal = argc > 6 ? atoi(argv[6]) : 0;
  cleanup_free char *cfg = NULL;
  size_t len = 0;
  cleanup_free char *initrd = hv_xasprintf("%s/initrd.cpio", argv[5]);
  cleanup_free char *disk = hv_xasprintf("%s/root.erofs", argv[5]);
  cleanup_free char *klog = hv_xasprintf("%s/kernel.log", argv[5]);
  if (hv_read_file(argv[3], &cfg, &len, &err) < 0 ||
      hv_initrd_write(initrd, argv[2], cfg, len, NULL, 0, &err) < 0 ||
      hv_rootdisk_from_dir(argv[4], disk, &err) < 0)
    return hv_error_print(&err) ? 1 : 1;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return 1;
  host_end = sv[0];
  pthread_t t;
  pthread_create(&t, NULL, control_reader, NULL);
  int logfd = open(klog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  struct hv_vm_config c = {.kernel = argv[1], .initrd = initrd, .root_disk = disk,
                           .vcpus = 2, .mem_bytes = 256 << 20, .console_in = 0,
                           .console_out = 1, .control_fd = sv[1], .kernel_log_fd = logfd,
                           .engine = "qemu", .cmdline = getenv("HVRUN_TEST_CMDLINE")};
  const char *mem = getenv("HVRUN_TEST_MEM_MB");
  if (mem)
    c.mem_bytes = strtoull(mem, NULL, 10) << 20;
  const char *cpus = getenv("HVRUN_TEST_VCPUS");
  if (cpus)
    c.vcpus = (uint32_t)atoi(cpus);
  int status = -1;
  if (hv_vm_run_qemu(&c, &status, &err) < 0)
    return hv_error_print(&err) ? 1 : 1;
  fprintf(stderr, "status %d\n", status);
  return 0;
}
