/* qemu.c: the `--engine qemu` path.  Boots the same kernel, initrd and root
 * disk as hvrun's own VMM under qemu-system-x86_64 -M microvm, with the same
 * guest view: 8250 kernel log, virtio-blk vda/vdb, virtio-console hvc0
 * (workload stdio) and hvc1 (control channel).
 *
 * The control channel always goes through a relay here: QEMU's
 * isa-debug-exit makes QEMU exit with ((value << 1) | 1) & 0xff, which loses
 * the signal and panic bits, so the guest's "exit <value>" line (see
 * guest_proto.h) is the status we trust; the exit code is the fallback. */
#include "guest_proto.h"
#include "vmm.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define QEMU_DEFAULT "qemu-system-x86_64"
/* Features PVM's instruction emulator cannot run for a guest kernel that is
 * not PVM-aware (see /work/shared/pvm/README.md); QEMU 7.2 also aborts on
 * the arch-capabilities MSR there. */
#define PVM_CPU "host,-arch-capabilities,-xsave,-xsaveopt,-xsavec,-xsaves,-smap,-smep,-pku," \
                "-pcid,-invpcid,-fsgsbase,-rdpid,-rdtscp,-popcnt,-rdseed,-rdrand,-cx16,-erms,-fsrm"

struct argv_builder { char **v; size_t n, cap; };

static void arg(struct argv_builder *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void arg(struct argv_builder *a, const char *fmt, ...) {
  if (a->n + 2 > a->cap) {
    a->cap = a->cap ? a->cap * 2 : 32;
    a->v = realloc(a->v, a->cap * sizeof *a->v);
    if (!a->v)
      abort();
  }
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&a->v[a->n], fmt, ap) < 0)
    abort();
  va_end(ap);
  a->v[++a->n] = NULL;
}

static bool kvm_usable(void) {
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return false;
  close(fd);
  return true;
}

/* "auto" picks KVM, except on PVM hosts: there a guest kernel that is not
 * PVM-aware runs its ring-0 code through KVM's instruction emulator and
 * boots in about a minute, against about a second under TCG. */
static const char *pick_accel(void) {
  const char *forced = getenv("HVRUN_QEMU_ACCEL");
  if (forced && (!strcmp(forced, "kvm") || !strcmp(forced, "tcg")))
    return forced;
  if (!kvm_usable() || hv_host_is_pvm())
    return "tcg";
  return "kvm";
}

/* Paths given to QEMU go into key=value option strings, where ',' is an
 * escape; refuse them rather than mis-quote. */
static int check_path(const char *what, const char *p, hv_error_t *err) {
  if (p && strchr(p, ','))
    return hv_error(err, EINVAL, "%s `%s`: paths with ',' are not supported by the qemu engine",
                    what, p);
  return 0;
}

static void build_argv(const struct hv_vm_config *c, const char *accel, int ctl_fd,
                       struct argv_builder *a) {
  const char *qemu = getenv("HVRUN_QEMU");
  bool pvm_kvm = !strcmp(accel, "kvm") && hv_host_is_pvm();
  arg(a, "%s", qemu && *qemu ? qemu : QEMU_DEFAULT);
  arg(a, "-M");
  /* Devices on the command line for a kernel built like ours; a
   * distribution kernel (c->acpi) finds them in QEMU's ACPI tables. */
  arg(a, c->acpi ? "microvm,rtc=on,acpi=on" : "microvm,rtc=on,acpi=off");
  arg(a, "-accel");
  arg(a, "%s", accel);
  arg(a, "-cpu");
  arg(a, "%s", pvm_kvm ? PVM_CPU : !strcmp(accel, "kvm") ? "host" : "max");
  arg(a, "-m");
  arg(a, "%lluM", (unsigned long long)(c->mem_bytes ? c->mem_bytes >> 20 : 256));
  arg(a, "-smp");
  arg(a, "%u", c->vcpus ? c->vcpus : 1);
  arg(a, "-no-reboot");
  /* QEMU's own seccomp filter, on top of hvrun's jail: no obsolete
   * syscalls, no privilege changes, no fork/exec, no scheduler or
   * resource changes.  (HVRUN_QEMU_SANDBOX=0 leaves it off, for a QEMU
   * built without libseccomp.) */
  const char *sb = getenv("HVRUN_QEMU_SANDBOX");
  if (!sb || strcmp(sb, "0")) {
    arg(a, "-sandbox");
    arg(a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
  }
  arg(a, "-nographic");
  arg(a, "-nodefaults");
  arg(a, "-no-user-config");
  /* kernel log: the 8250 on ttyS0 */
  arg(a, "-chardev");
  if (c->kernel_log_fd >= 0)
    arg(a, "file,id=klog,path=/dev/fd/%d", c->kernel_log_fd);
  else
    arg(a, "null,id=klog");
  arg(a, "-serial");
  arg(a, "chardev:klog");
  arg(a, "-kernel");
  arg(a, "%s", c->kernel);
  if (c->initrd) {
    arg(a, "-initrd");
    arg(a, "%s", c->initrd);
  }
  unsigned long khz = hv_host_tsc_khz();
  cleanup_free char *tsc = khz ? hv_xasprintf(" tsc_early_khz=%lu", khz) : hv_xstrdup("");
  arg(a, "-append");
  arg(a, HV_GUEST_CMDLINE_BASE "%s%s%s%s", tsc, pvm_kvm ? " " HV_GUEST_CMDLINE_PVM : "",
      c->cmdline && *c->cmdline ? " " : "", c->cmdline ? c->cmdline : "");
  /* Disks first, consoles next: the guest numbers virtio devices in this
   * order (vda = root, vdb = scratch; hvc0 = stdio, hvc1 = control). */
  if (c->root_disk) {
    arg(a, "-drive");
    arg(a, "id=root,file=%s,format=raw,if=none,readonly=on", c->root_disk);
    arg(a, "-device");
    arg(a, "virtio-blk-device,drive=root");
  }
  if (c->scratch_disk) {
    arg(a, "-drive");
    arg(a, "id=scratch,file=%s,format=raw,if=none,cache=unsafe", c->scratch_disk);
    arg(a, "-device");
    arg(a, "virtio-blk-device,drive=scratch");
  }
  arg(a, "-chardev");
  arg(a, "stdio,id=con0,signal=off");
  arg(a, "-device");
  arg(a, "virtio-serial-device,id=vser0,max_ports=1");
  arg(a, "-device");
  arg(a, "virtconsole,chardev=con0,bus=vser0.0");
  arg(a, "-chardev");
  arg(a, "socket,id=ctl,fd=%d", ctl_fd);
  arg(a, "-device");
  arg(a, "virtio-serial-device,id=vser1,max_ports=1");
  arg(a, "-device");
  arg(a, "virtconsole,chardev=ctl,bus=vser1.0");
  arg(a, "-device");
  arg(a, "isa-debug-exit,iobase=0x%x,iosize=4", HV_HCALL_PORT);
}

/* In the child: QEMU's stdin/stdout are the workload's console (chardev
 * stdio); every other fd but the control socket and log is closed. */
static void __attribute__((noreturn)) exec_qemu(const struct hv_vm_config *c, char **argv,
                                                int ctl_fd, int err_fd) {
  /* QEMU must not outlive the process that waits for it. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  int devnull = open("/dev/null", O_RDWR);
  int in = c->console_in >= 0 ? c->console_in : devnull;
  int out = c->console_out >= 0 ? c->console_out : devnull;
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err_fd, 2) < 0)
    _exit(127);
  for (int fd = 3; fd < 1024; fd++)
    if (fd != ctl_fd && fd != c->kernel_log_fd)
      close(fd);
  int flags = fcntl(ctl_fd, F_GETFD);
  fcntl(ctl_fd, F_SETFD, flags & ~FD_CLOEXEC);
  if (c->kernel_log_fd >= 0)
    fcntl(c->kernel_log_fd, F_SETFD, fcntl(c->kernel_log_fd, F_GETFD) & ~FD_CLOEXEC);
  execvp(argv[0], argv);
  dprintf(2, "hvrun: exec `%s`: %s\n", argv[0], strerror(errno));
  _exit(127);
}

/* Guest -> host bytes wait here while the host end is full.  QEMU drops
 * what a virtconsole's chardev cannot take at once (it cannot throttle the
 * guest's hvc driver), so the guest end is always read at once; a slow
 * exec reader on the host makes this queue grow instead, up to a bound. */
#define RELAY_QUEUE_MAX (256u << 20)

struct relay {
  int qemu_err;       /* QEMU's stderr, forwarded to ours and watched */
  bool internal_error;/* KVM stopped the guest (QEMU then waits forever) */
  int guest;          /* our end of QEMU's control chardev */
  int host;           /* c->control_fd, or -1 */
  char *queue;        /* guest -> host bytes not yet sent */
  size_t queued, queue_cap;
  char line[512];
  size_t used;
  bool have_exit;
  uint32_t exit_value;
  char error[512];    /* the guest init's "error ..." line, if any */
};

/* Send what the host end takes now (all of it when `block`). */
static void relay_flush(struct relay *r, bool block) {
  while (r->host >= 0 && r->queued > 0) {
    ssize_t n = send(r->host, r->queue, r->queued, MSG_NOSIGNAL | (block ? 0 : MSG_DONTWAIT));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n <= 0) {
      r->host = -1; /* host end closed: the VM runs on */
      r->queued = 0;
      return;
    }
    memmove(r->queue, r->queue + n, r->queued - (size_t)n);
    r->queued -= (size_t)n;
  }
}

/* Guest -> host: keep "exit"/"error" for ourselves, pass every line on. */
static void relay_from_guest(struct relay *r, const char *buf, size_t n) {
  if (r->host >= 0) {
    if (r->queued + n > RELAY_QUEUE_MAX) {
      hv_warn("vm: the control channel's reader is %u MiB behind; output dropped",
              RELAY_QUEUE_MAX >> 20);
    } else {
      if (r->queued + n > r->queue_cap) {
        r->queue_cap = (r->queued + n) * 2;
        r->queue = hv_xrealloc(r->queue, r->queue_cap);
      }
      memcpy(r->queue + r->queued, buf, n);
      r->queued += n;
      relay_flush(r, false);
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (buf[i] != '\n') {
      if (r->used < sizeof r->line - 1)
        r->line[r->used++] = buf[i];
      continue;
    }
    r->line[r->used] = '\0';
    unsigned v;
    if (sscanf(r->line, "exit %u", &v) == 1) {
      r->have_exit = true;
      r->exit_value = v;
    } else if (!strncmp(r->line, "error ", 6)) {
      snprintf(r->error, sizeof r->error, "%s", r->line + 6);
    }
    r->used = 0;
  }
}

static int wait_qemu(pid_t pid, struct relay *r, int *wstatus, hv_error_t *err) {
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  char buf[4096];
  for (;;) {
    if (pidfd < 0) {
      /* Old kernel: no relay, just wait. */
      if (waitpid(pid, wstatus, 0) < 0)
        return hv_error(err, errno, "wait for qemu");
      return 0;
    }
    struct pollfd pf[4] = {{.fd = pidfd, .events = POLLIN},
                           {.fd = r->guest, .events = POLLIN},
                           {.fd = r->host, .events = POLLIN | (r->queued ? POLLOUT : 0)},
                           {.fd = r->qemu_err, .events = POLLIN}};
    if (poll(pf, 4, -1) < 0) {
      if (errno == EINTR)
        continue;
      close(pidfd);
      return hv_error(err, errno, "poll");
    }
    if (pf[3].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(r->qemu_err, buf, sizeof buf - 1);
      if (n > 0) {
        buf[n] = '\0';
        if (write(STDERR_FILENO, buf, (size_t)n) < 0) {
          /* stderr gone: keep watching anyway */
        }
        /* On a KVM internal error (e.g. PVM's emulator meets an
         * instruction it lacks) QEMU pauses the VM and never exits. */
        if (strstr(buf, "KVM internal error") || strstr(buf, "emulation failure")) {
          r->internal_error = true;
          kill(pid, SIGKILL);
        }
      } else {
        r->qemu_err = -1;
      }
    }
    if (pf[1].revents & POLLIN) {
      ssize_t n = read(r->guest, buf, sizeof buf);
      if (n > 0)
        relay_from_guest(r, buf, (size_t)n);
    }
    if (r->host >= 0 && (pf[2].revents & POLLOUT))
      relay_flush(r, false);
    if (r->host >= 0 && (pf[2].revents & (POLLIN | POLLHUP))) {
      ssize_t n = read(r->host, buf, sizeof buf);
      if (n <= 0 || write(r->guest, buf, (size_t)n) < 0)
        r->host = -1; /* host end closed: the VM runs on */
    }
    if (pf[0].revents & POLLIN) {
      /* Drain what the guest wrote before it exited. */
      ssize_t n;
      while ((n = recv(r->guest, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        relay_from_guest(r, buf, (size_t)n);
      relay_flush(r, true);
      close(pidfd);
      if (waitpid(pid, wstatus, 0) < 0)
        return hv_error(err, errno, "wait for qemu");
      return 0;
    }
  }
}

int hv_vm_run_qemu(const struct hv_vm_config *c, int *exit_status, hv_error_t *err) {
  if (!c->kernel)
    return hv_error(err, EINVAL, "vm: no guest kernel given");
  if (check_path("kernel", c->kernel, err) < 0 || check_path("initrd", c->initrd, err) < 0 ||
      check_path("root disk", c->root_disk, err) < 0 ||
      check_path("scratch disk", c->scratch_disk, err) < 0)
    return -1;
  int sv[2], ep[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return hv_error(err, errno, "socketpair for the control channel");
  if (pipe2(ep, O_CLOEXEC) < 0) {
    close(sv[0]);
    close(sv[1]);
    return hv_error(err, errno, "pipe for qemu's stderr");
  }
  const char *accel = pick_accel();
  struct argv_builder a = {0};
  build_argv(c, accel, sv[1], &a);
  cleanup_strv char **argv = a.v;
  if (getenv("HVRUN_QEMU_DEBUG"))
    for (size_t i = 0; argv[i]; i++)
      fprintf(stderr, "%s%s", argv[i], argv[i + 1] ? " " : "\n");

  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    close(ep[0]);
    close(ep[1]);
    return hv_error(err, e, "fork qemu");
  }
  if (pid == 0)
    exec_qemu(c, argv, sv[1], ep[1]);
  close(sv[1]);
  close(ep[1]);
  if (c->after_spawn && c->after_spawn(pid, err) < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(sv[0]);
    close(ep[0]);
    return -1;
  }
  struct relay r = {.guest = sv[0], .host = c->control_fd, .qemu_err = ep[0]};
  int ws = 0;
  int rc = wait_qemu(pid, &r, &ws, err);
  free(r.queue);
  close(sv[0]);
  close(ep[0]);
  if (rc < 0)
    return -1;
  if (r.internal_error)
    return hv_error(err, 0, "vm: KVM stopped the guest (internal error: an instruction the "
                            "hypervisor cannot emulate; see the messages above)");

  if (r.have_exit) {
    if (hv_hcall_decode(r.exit_value, exit_status) == HV_VM_EXIT_PANIC)
      return hv_error(err, 0, "vm: guest init failed%s%s (panic code %u)", r.error[0] ? ": " : "",
                      r.error, r.exit_value & 0xff);
    return 0;
  }
  if (WIFSIGNALED(ws))
    return hv_error(err, 0, "vm: qemu killed by signal %d", WTERMSIG(ws));
  int code = WEXITSTATUS(ws);
  if (code == 127)
    return hv_error(err, ENOENT, "vm: cannot run qemu (%s)", argv[0]);
  if (code & 1 && code > 1) {
    /* isa-debug-exit without an "exit" line: 7 bits of the value survive. */
    *exit_status = code >> 1;
    return 0;
  }
  if (code == 0)
    return hv_error(err, 0, "vm: the guest reset without reporting a status "
                            "(kernel panic or init crash; see the kernel log)");
  return hv_error(err, 0, "vm: qemu failed with status %d (accel %s)", code, accel);
}
