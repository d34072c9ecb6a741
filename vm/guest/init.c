/* init.c: hvrun's guest init, PID 1 of the microVM (static binary).
 *
 * Boot flow: mount /dev in the initramfs, read /hvrun/config.json, open the
 * consoles, build the root (rootfs.c) and chroot into it, apply hostname and
 * sysctls, then fork the workload: it gets /dev/hvc0 as stdio and goes
 * through ns_finalize_and_exec, the same code the container backend uses for
 * rlimits, user, cwd, capabilities, no_new_privs and seccomp, so both models
 * enforce one policy.  PID 1 then forwards signals from the control channel,
 * reaps zombies, and reports the workload's status through the hypercall
 * port (vm/guest_proto.h describes the protocol).  Any failure of the init
 * itself prints one "hvrun-init: ..." line on the kernel console and is
 * reported as HV_HCALL_PANIC | code. */
#include "init.h"
#include "../guest_proto.h"
#include "../vmm.h"
#include "../../ns/ns_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <linux/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>

#define WORKLOAD_TTY "/dev/hvc0"
#define CONTROL_TTY "/dev/hvc1"

/* Panic codes (low byte of HV_HCALL_PANIC reports): which stage failed. */
enum { PANIC_SETUP = 1, PANIC_CONFIG = 2, PANIC_ROOTFS = 3, PANIC_SPAWN = 4, PANIC_EXEC = 5,
       PANIC_CGROUP = 6 };

static int control_fd = -1;

void guest_log(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  dprintf(STDERR_FILENO, "hvrun-init: %s\n", buf);
}

static void control_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void control_send(const char *fmt, ...) {
  if (control_fd < 0)
    return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  /* Waits for room rather than drop a line ("started" holds up exec). */
  if (n > 0 &&
      hv_agent_write_all(control_fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1) < 0)
    guest_log("control channel write: %s", strerror(errno));
}

/* Report to the VMM and power off; never returns. */
static void __attribute__((noreturn)) report_and_halt(uint32_t value) {
  control_send("exit %u\n", value);
  sync();
  if (ioperm(HV_HCALL_PORT, 4, 1) == 0)
    outl(value, HV_HCALL_PORT);
  else
    guest_log("ioperm(0x%x): %s; powering off without a status", HV_HCALL_PORT,
              strerror(errno));
  /* Without ACPI a power-off only halts; a reset (reboot=t: triple fault)
   * ends the VM on every engine (QEMU runs with -no-reboot). */
  reboot(RB_AUTOBOOT);
  for (;;)
    pause();
}

static void __attribute__((noreturn)) fail(int stage, hv_error_t *err) {
  char *msg = (err && *err && (*err)->msg) ? (*err)->msg : "unknown error";
  int e = (err && *err) ? (*err)->errno_ : 0;
  if (e)
    guest_log("%s: %s", msg, strerror(e));
  else
    guest_log("%s", msg);
  control_send("error %s\n", msg);
  report_and_halt(HV_HCALL_PANIC | (uint32_t)stage);
}

/* Raw mode: the channel carries bytes, not a line discipline (no echo of the
 * host's commands, no \n -> \r\n). */
static void tty_raw(int fd) {
  struct termios t;
  if (tcgetattr(fd, &t) == 0) {
    cfmakeraw(&t);
    tcsetattr(fd, TCSANOW, &t);
  }
}

/* Credit the host's seed to the kernel RNG so nothing in the guest blocks on
 * entropy (see guest_proto.h); a missing seed only costs time. */
static void seed_rng(void) {
  struct {
    struct rand_pool_info info;
    uint8_t buf[HV_GUEST_SEED_LEN];
  } s;
  int fd = open(HV_GUEST_SEED_PATH, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  ssize_t n = read(fd, s.buf, sizeof s.buf);
  close(fd);
  unlink(HV_GUEST_SEED_PATH);
  if (n <= 0)
    return;
  s.info.entropy_count = (int)n * 8;
  s.info.buf_size = (int)n;
  int rnd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  if (rnd < 0 || ioctl(rnd, RNDADDENTROPY, &s.info) < 0)
    guest_log("seeding the RNG: %s", strerror(errno));
  if (rnd >= 0)
    close(rnd);
  explicit_bzero(s.buf, sizeof s.buf);
}

static int read_config(struct hv_oci_config **cfg, hv_error_t *err) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (hv_read_file(HV_GUEST_CONFIG_PATH, &text, &len, err) < 0)
    return -1;
  if (hv_oci_parse(text, len, HV_GUEST_CONFIG_PATH, cfg, err) < 0)
    return -1;
  if (!(*cfg)->process || !(*cfg)->process->args || !(*cfg)->process->args[0])
    return hv_error(err, EINVAL, HV_GUEST_CONFIG_PATH ": process.args: missing or empty");
  return 0;
}

/* In the workload child: stdio on the workload console, then the shared
 * finalize-and-exec path.  Failures go back to PID 1 over `errfd`. */
static void __attribute__((noreturn)) workload_child(const struct hv_oci_config *cfg, int tty_fd,
                                                     int stdin_fd, int errfd) {
  hv_error_t err = NULL;
  const struct hv_oci_process *p = cfg->process;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (int s = 1; s < NSIG; s++)
    signal(s, SIG_DFL);

  if (setsid() < 0) {
    hv_error(&err, errno, "setsid");
    goto out;
  }
  if (tty_fd >= 0) {
    if (p->terminal) {
      if (ioctl(tty_fd, TIOCSCTTY, 0) < 0) {
        hv_error(&err, errno, "make " WORKLOAD_TTY " the controlling terminal");
        goto out;
      }
      if (p->has_console_size) {
        struct winsize ws = {.ws_row = (unsigned short)p->console_size.height,
                             .ws_col = (unsigned short)p->console_size.width};
        ioctl(tty_fd, TIOCSWINSZ, &ws);
      }
    }
    for (int fd = 0; fd < 3; fd++)
      if (dup2(tty_fd, fd) < 0) {
        hv_error(&err, errno, "dup2 " WORKLOAD_TTY);
        goto out;
      }
    if (tty_fd > 2)
      close(tty_fd);
  }
  if (stdin_fd >= 0 && dup2(stdin_fd, 0) < 0) {
    hv_error(&err, errno, "dup2 stdin");
    goto out;
  }
  guest_child_exec(p, cfg, errfd);
out:
  guest_child_fail(&err, errfd);
}

void guest_child_fail(hv_error_t *err, int errfd) {
  char msg[600];
  int n = snprintf(msg, sizeof msg, "%s%s%s", (*err)->msg, (*err)->errno_ ? ": " : "",
                   (*err)->errno_ ? strerror((*err)->errno_) : "");
  if (write(errfd, msg, n > 0 ? (size_t)n : 0) < 0) {
    /* nothing more we can do: PID 1 sees the exit status */
  }
  _exit(127);
}

void guest_child_exec(const struct hv_oci_process *p, const struct hv_oci_config *cfg, int errfd) {
  hv_error_t err = NULL;
  if (guest_cgroup_join_child(&err) == 0) {
    ns_finalize_and_exec(p, cfg->linux.seccomp, &err);
    if (!err)
      hv_error(&err, 0, "exec `%s` returned", p->args[0]);
  }
  guest_child_fail(&err, errfd);
}

static uint32_t status_to_hcall(int st) {
  if (WIFSIGNALED(st))
    return HV_HCALL_SIGNALED | (uint32_t)WTERMSIG(st);
  return (uint32_t)WEXITSTATUS(st) & 0xff;
}

static void control_line(void *arg, char *line) {
  (void)arg;
  agent_control_line(line);
}

/* PID 1's loop: reap everything, serve the control channel (agent.c),
 * return the workload's wait status once it has ended. */
static int supervise(pid_t workload, int sigfd) {
  static struct hv_agent_lines lines;
  hv_agent_lines_init(&lines);
  for (;;) {
    struct pollfd pf[2 + 3 * 33];
    pf[0] = (struct pollfd){.fd = sigfd, .events = POLLIN};
    pf[1] = (struct pollfd){.fd = control_fd, .events = POLLIN};
    int na = agent_pollfds(pf + 2, (int)(sizeof pf / sizeof pf[0]) - 2);
    if (poll(pf, (nfds_t)(2 + na), -1) < 0) {
      if (errno == EINTR)
        continue;
      guest_log("poll: %s", strerror(errno));
      report_and_halt(HV_HCALL_PANIC | PANIC_SPAWN);
    }
    agent_handle_poll(pf + 2, na);
    if (pf[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sigfd, &si, sizeof si) < 0 && errno != EAGAIN)
        guest_log("signalfd read: %s", strerror(errno));
      int st;
      pid_t p;
      while ((p = waitpid(-1, &st, WNOHANG)) > 0)
        if (p == workload)
          return st;
        else
          agent_child_exited(p, st);
    }
    if (control_fd >= 0 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[4096];
      ssize_t n = read(control_fd, buf, sizeof buf);
      if (n > 0)
        hv_agent_lines_feed(&lines, buf, (size_t)n, control_line, NULL);
      else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        control_fd = -1; /* host went away; keep running the workload */
    }
  }
}

int main(void) {
  hv_error_t err = NULL;
  struct hv_oci_config *cfg = NULL;

  /* The kernel opened /dev/console from the initramfs for fds 0-2; /dev
   * itself we mount now to reach the disks and consoles. */
  if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, NULL) < 0 && errno != EBUSY) {
    hv_error(&err, errno, "mount devtmpfs on /dev (initramfs)");
    fail(PANIC_SETUP, &err);
  }
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
    hv_error(&err, errno, "mount /proc (initramfs)");
    fail(PANIC_SETUP, &err);
  }
  seed_rng();
  /* A distribution kernel's virtio, erofs and overlayfs drivers come as
   * modules in the initramfs; the consoles and disk exist once they load. */
  int mods = guest_modules_load(&err);
  if (mods < 0)
    fail(PANIC_SETUP, &err);
  if (mods > 0) {
    guest_wait_device(CONTROL_TTY);
    guest_wait_device(WORKLOAD_TTY);
    guest_wait_device("/dev/vda");
  }
  /* The guest is sized to the workload's memory limit, which its cgroup
   * enforces: like on a big host, a large allocation is granted and only
   * touching it counts, instead of the heuristic refusing anything near
   * guest RAM.  linux.sysctl can set it back. */
  hv_write_file("/proc/sys/vm/overcommit_memory", "1", NULL);
  /* Consoles are opened before the root switch, so they work whatever the
   * spec does to /dev. */
  control_fd = open(CONTROL_TTY, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (control_fd >= 0)
    tty_raw(control_fd);
  if (read_config(&cfg, &err) < 0)
    fail(PANIC_CONFIG, &err);
  int tty_fd = open(WORKLOAD_TTY, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (tty_fd < 0)
    guest_log("open " WORKLOAD_TTY ": %s; the workload runs with the kernel console",
              strerror(errno));
  else if (!cfg->process->terminal)
    tty_raw(tty_fd);

  if (guest_cgroup_prepare(&err) < 0)
    fail(PANIC_CGROUP, &err);
  if (guest_rootfs_setup(cfg, &err) < 0)
    fail(PANIC_ROOTFS, &err);
  if (cfg->hostname && sethostname(cfg->hostname, strlen(cfg->hostname)) < 0) {
    hv_error(&err, errno, "hostname: sethostname `%s`", cfg->hostname);
    fail(PANIC_ROOTFS, &err);
  }
  if (cfg->domainname && setdomainname(cfg->domainname, strlen(cfg->domainname)) < 0) {
    hv_error(&err, errno, "domainname: setdomainname `%s`", cfg->domainname);
    fail(PANIC_ROOTFS, &err);
  }
  if (guest_sysctl_apply(cfg, &err) < 0)
    fail(PANIC_ROOTFS, &err);
  /* The guest has no network device, only `lo`, which starts down: bring
   * it up as a container runtime does in a new network namespace. */
  if (ns_loopback_up(&err) < 0) {
    guest_log("%s: %s", err->msg, strerror(err->errno_));
    hv_error_release(&err);
  }
  if (guest_cgroup_setup(cfg, &err) < 0)
    fail(PANIC_CGROUP, &err);

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  /* Without a terminal, stdin is a pipe fed by "in 0" lines, so the
   * host's EOF reaches the workload ("eof 0"); a tty has no EOF. */
  int errpipe[2], inpipe[2] = {-1, -1};
  if (control_fd >= 0 && !cfg->process->terminal && pipe2(inpipe, O_CLOEXEC) < 0) {
    hv_error(&err, errno, "stdin pipe");
    fail(PANIC_SPAWN, &err);
  }
  if (sigfd < 0 || pipe2(errpipe, O_CLOEXEC) < 0) {
    hv_error(&err, errno, "signalfd/pipe");
    fail(PANIC_SPAWN, &err);
  }
  pid_t pid = fork();
  if (pid < 0) {
    hv_error(&err, errno, "fork the workload");
    fail(PANIC_SPAWN, &err);
  }
  if (pid == 0) {
    close(errpipe[0]);
    workload_child(cfg, tty_fd, inpipe[0], errpipe[1]);
  }
  close(errpipe[1]);
  if (inpipe[0] >= 0)
    close(inpipe[0]);
  if (tty_fd >= 0)
    close(tty_fd);
  /* The pipe closes on a successful exec (O_CLOEXEC) and carries the
   * error otherwise. */
  char msg[600];
  ssize_t n = read(errpipe[0], msg, sizeof msg - 1);
  close(errpipe[0]);
  if (n > 0) {
    msg[n] = '\0';
    hv_error(&err, 0, "process: %s", msg);
    waitpid(pid, NULL, 0);
    fail(PANIC_EXEC, &err);
  }
  agent_init(control_fd, cfg, pid, inpipe[1]);
  control_send("started %d\n", (int)pid);

  int st = supervise(pid, sigfd);
  /* The VM ends with its workload, like a container's PID namespace. */
  kill(-1, SIGKILL);
  while (waitpid(-1, NULL, 0) > 0)
    ;
  hv_oci_free(cfg);
  report_and_halt(status_to_hcall(st));
}
