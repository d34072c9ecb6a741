/* vmm_process.c: the VMM process V (see vm_backend.h for the layout).
 *
 * V is created jailed and waiting: it binds <state>/control.sock, opens
 * exec.fifo and the kernel log, sets up the workload's console, enters the
 * jail (vm/jail.c), reports "ready" to hvrun and blocks on the fifo.  After
 * `start` it loads its seccomp filter and boots the VM (hv_vm_run, or
 * hv_vm_run_qemu for --engine qemu), then exits with the workload's status.
 *
 * Its control thread (vmm_control.c) serves control.sock and the guest's
 * control channel; SIGKILL ends V and with it the VM. */
#include "vm_backend.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>

int hv_console_send(const char *socket_path, int master_fd, hv_error_t *err); /* ns/ns.h */

/* ---------------- control socket address ---------------- */

/* sun_path holds 108 bytes and state dirs can be longer (pytest's temp
 * dirs are); /proc/self/fd/<dirfd>/control.sock always fits. */
static int sock_addr(int dirfd, struct sockaddr_un *sa, hv_error_t *err) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  int n = snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/" VMB_SOCK, dirfd);
  if (n < 0 || (size_t)n >= sizeof sa->sun_path)
    return hv_error(err, ENAMETOOLONG, "control socket address");
  return 0;
}

int vmb_control_connect(const char *sock_path, hv_error_t *err) {
  cleanup_free char *dir = hv_xstrdup(sock_path);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = 0;
  cleanup_close int dirfd = open(slash ? dir : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return hv_error(err, errno, "VMM control socket `%s`", sock_path);
  struct sockaddr_un sa;
  if (sock_addr(dirfd, &sa, err) < 0)
    return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return hv_error(err, errno, "socket");
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return hv_error(err, e, "connect to the VMM's control socket `%s`", sock_path);
  }
  return fd;
}

int vmb_control_query(const char *sock_path, const char *line, char **reply, hv_error_t *err) {
  int cfd = vmb_control_connect(sock_path, err);
  if (cfd < 0)
    return -1;
  cleanup_close int fd = cfd;
  size_t len = strlen(line);
  if (write(fd, line, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
    return hv_error(err, errno, "write to the VMM's control socket");
  size_t cap = 256, used = 0;
  cleanup_free char *buf = hv_xmalloc0(cap);
  /* The VMM answers at once (the guest's stats within a second); a stuck
   * VMM must not hang `hvrun kill`. */
  for (;;) {
    if (used == cap - 1) {
      if (cap >= HV_AGENT_LINE_MAX)
        return hv_error(err, E2BIG, "over-long answer from the VMM's control socket");
      char *bigger = realloc(buf, cap * 4);
      if (!bigger)
        return hv_error(err, ENOMEM, "answer from the VMM's control socket");
      buf = bigger;
      cap *= 4;
    }
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    int r = poll(&pf, 1, 5000);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return hv_error(err, ETIMEDOUT, "no answer from the VMM's control socket");
    ssize_t n = read(fd, buf + used, cap - 1 - used);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    used += (size_t)n;
    if (memchr(buf, '\n', used))
      break;
  }
  buf[used] = 0;
  char *nl = strchr(buf, '\n');
  if (nl)
    *nl = 0;
  if (!strncmp(buf, "error ", 6))
    return hv_error(err, 0, "VMM: %s", buf + 6);
  if (!used)
    return hv_error(err, EPIPE, "the VMM closed its control socket without answering");
  *reply = buf;
  buf = NULL;
  return 0;
}

int vmb_control_request(const char *sock_path, const char *line, char *reply, size_t reply_len,
                        hv_error_t *err) {
  cleanup_free char *r = NULL;
  if (vmb_control_query(sock_path, line, &r, err) < 0)
    return -1;
  if (reply)
    snprintf(reply, reply_len, "%s", r);
  return 0;
}

/* Signals V forwards into the guest when they are sent to V itself. */
static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2,
                                SIGWINCH, SIGCONT, SIGALRM, SIGPWR};

/* ---------------- V: setup ---------------- */

struct vmm_setup {
  int dirfd;                    /* the state dir */
  int listen_fd, fifo_fd, klog_fd;
  int console_in, console_out;
};

static void noop_handler(int sig) { (void)sig; }

/* The VM failed: its kernel log is in the state dir, which the one-shot
 * removes, so show its last lines with the error. */
static void print_klog_tail(int fd) {
  char buf[1024];
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_size == 0)
    return;
  off_t off = st.st_size > (off_t)sizeof buf - 1 ? st.st_size - (off_t)sizeof buf + 1 : 0;
  ssize_t n = pread(fd, buf, sizeof buf - 1, off);
  if (n <= 0)
    return;
  buf[n] = 0;
  char *start = buf;
  int lines = 0;
  for (char *p = buf + n - 1; p > buf; p--)
    if (*p == '\n' && p != buf + n - 1 && ++lines == 6) {
      start = p + 1;
      break;
    }
  if (start == buf && off > 0) {
    char *nl = strchr(buf, '\n');
    start = nl ? nl + 1 : buf;
  }
  fprintf(stderr, "hvrun: the guest's kernel log ended with:\n");
  for (char *line = strtok(start, "\n"); line; line = strtok(NULL, "\n"))
    fprintf(stderr, "  | %s\n", line);
}

static int open_files(const struct vmb_spawn *s, struct vmm_setup *o, hv_error_t *err) {
  o->dirfd = open(s->state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (o->dirfd < 0)
    return hv_error(err, errno, "open state dir `%s`", s->state_dir);
  struct sockaddr_un sa;
  if (sock_addr(o->dirfd, &sa, err) < 0)
    return -1;
  cleanup_free char *sock = hv_xasprintf("%s/" VMB_SOCK, s->state_dir);
  unlink(sock);
  o->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (o->listen_fd < 0 || bind(o->listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
      listen(o->listen_fd, 16) < 0)
    return hv_error(err, errno, "control socket `%s`", sock);
  chmod(sock, 0600);
  cleanup_free char *fifo = hv_xasprintf("%s/" VMB_FIFO, s->state_dir);
  /* O_RDWR: never blocks, and stays readable after the jail hides it. */
  o->fifo_fd = open(fifo, O_RDWR | O_CLOEXEC);
  if (o->fifo_fd < 0)
    return hv_error(err, errno, "open `%s`", fifo);
  cleanup_free char *klog = hv_xasprintf("%s/" VMB_KLOG, s->state_dir);
  /* Read back (pread) for the error message when the VM fails. */
  o->klog_fd = open(klog, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (o->klog_fd < 0)
    return hv_error(err, errno, "open `%s`", klog);
  return 0;
}

int vmb_console_pty(const char *console_socket, const struct hv_oci_process *p, int *slave_out,
                    hv_error_t *err) {
  cleanup_close int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
    return hv_error(err, errno, "process.terminal: open a pty");
  char name[64];
  if (ptsname_r(master, name, sizeof name) != 0)
    return hv_error(err, errno, "process.terminal: ptsname");
  int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0)
    return hv_error(err, errno, "process.terminal: open `%s`", name);
  struct termios t;
  if (tcgetattr(slave, &t) == 0) {
    cfmakeraw(&t);
    tcsetattr(slave, TCSANOW, &t);
  }
  if (p->has_console_size) {
    struct winsize ws = {.ws_row = (unsigned short)p->console_size.height,
                         .ws_col = (unsigned short)p->console_size.width};
    ioctl(slave, TIOCSWINSZ, &ws);
  }
  if (hv_console_send(console_socket, master, err) < 0) {
    close(slave);
    return -1;
  }
  *slave_out = slave;
  return 0;
}

/* process.terminal: the VM's console is a pty (vmb_console_pty). */
static int setup_console(const struct vmb_spawn *s, struct vmm_setup *o, hv_error_t *err) {
  if (!s->process->terminal) {
    o->console_in = STDIN_FILENO;
    o->console_out = STDOUT_FILENO;
    return 0;
  }
  int slave;
  if (vmb_console_pty(s->console_socket, s->process, &slave, err) < 0)
    return -1;
  o->console_in = o->console_out = slave;
  return 0;
}

/* Everything but stdio and `keep` is hvrun's (state lock, store dir ...). */
static void close_other_fds(int keep) {
  if (keep > 3)
    syscall(SYS_close_range, 3, keep - 1, 0);
  syscall(SYS_close_range, keep + 1, ~0U, 0);
  if (keep != 3)
    close(3);
}

static void report(int sync_fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(int sync_fd, const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (send(sync_fd, buf, strlen(buf), MSG_NOSIGNAL) < 0) {
    /* hvrun is gone; nothing to tell. */
  }
}

static __attribute__((noreturn)) void fail(int sync_fd, hv_error_t *err) {
  report(sync_fd, "error %s%s%s", (*err)->msg, (*err)->errno_ ? ": " : "",
         (*err)->errno_ ? strerror((*err)->errno_) : "");
  _exit(1);
}

static __attribute__((noreturn)) void vmm_main(const struct vmb_spawn *s, int sync_fd) {
  hv_error_t err = NULL;
  const struct vmb_plan *p = s->plan;
  bool qemu = !strcmp(p->engine, "qemu");
  close_other_fds(sync_fd);
  /* No controlling terminal: ^C on hvrun's terminal is hvrun's to forward. */
  setsid();
  struct vmm_setup o = {.dirfd = -1, .listen_fd = -1, .fifo_fd = -1, .klog_fd = -1};
  if (open_files(s, &o, &err) < 0 || setup_console(s, &o, &err) < 0)
    fail(sync_fd, &err);
  if (s->oom_score_adj_set) {
    char v[16];
    snprintf(v, sizeof v, "%d", s->oom_score_adj);
    hv_write_file("/proc/self/oom_score_adj", v, NULL);
  }

  cleanup_free char *jail_root = hv_xasprintf("%s/" VMB_JAIL, s->state_dir);
  cleanup_free char *initrd = hv_xasprintf("%s/" VMB_INITRD, s->state_dir);
  const char *kernel = p->kernel, *initrd_path = initrd, *disk = s->root_disk;
  if (p->jail) {
    /* QEMU on a PVM host must not find /dev/kvm: a guest that is not
     * PVM-aware boots in a minute there instead of a second under TCG. */
    bool give_kvm = p->need_kvm || (qemu && s->qemu_may_use_kvm);
    struct vmb_jail j = {.root = jail_root,
                         .kvm_dev = give_kvm ? p->kvm_dev : NULL,
                         .kernel = p->kernel,
                         .initrd = initrd,
                         .disk = s->root_disk,
                         .qemu = qemu,
                         .pvm = s->host_is_pvm};
    if (vmb_jail_enter(&j, &err) < 0 || vmb_jail_drop_privileges(&err) < 0)
      fail(sync_fd, &err);
    kernel = VMB_IN_JAIL_KERNEL;
    initrd_path = VMB_IN_JAIL_INITRD;
    disk = s->root_disk ? VMB_IN_JAIL_DISK : NULL;
  }
  close(o.dirfd);

  /* Signals to V: a handler so they reach pid 1 at all, blocked so only
   * the control thread's signalfd sees them. */
  sigset_t set;
  sigemptyset(&set);
  struct sigaction sa = {.sa_handler = noop_handler};
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) {
    sigaddset(&set, forwarded[i]);
    sigaction(forwarded[i], &sa, NULL);
  }
  sigprocmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  int ctl[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0) {
    hv_error(&err, errno, "socketpair for the control channel");
    fail(sync_fd, &err);
  }
  /* Without a terminal the workload's stdin goes over the control channel
   * (so EOF reaches it) and the console only carries its output. */
  static struct vmb_control v;
  v.listen_fd = o.listen_fd;
  v.guest_fd = ctl[0];
  v.sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
  v.stdin_relay = !s->process->terminal;
  v.stdin_src = STDIN_FILENO;
  if (v.stdin_relay)
    o.console_in = -1;
  if (v.sig_fd < 0) {
    hv_error(&err, errno, "signalfd");
    fail(sync_fd, &err);
  }
  if (vmb_control_start(&v, &err) < 0)
    fail(sync_fd, &err);
  report(sync_fd, "ready");
  close(sync_fd);

  char c;
  ssize_t r;
  while ((r = read(o.fifo_fd, &c, 1)) < 0 && errno == EINTR)
    ;
  close(o.fifo_fd);
  if (r != 1)
    _exit(1);
  if (p->jail && !qemu && vmb_jail_seccomp(&err) < 0) {
    hv_error_print(&err);
    _exit(255);
  }
  atomic_store(&v.booting, true);
  struct hv_vm_config vc = {.kernel = kernel,
                            .kernel_name = p->kernel,
                            .initrd = initrd_path,
                            .cmdline = qemu ? NULL : p->cmdline,
                            .vcpus = p->vcpus,
                            .mem_bytes = p->mem_bytes,
                            .root_disk = disk,
                            .scratch_disk = NULL,
                            .console_in = o.console_in,
                            .console_out = o.console_out,
                            .control_fd = ctl[1],
                            .kernel_log_fd = o.klog_fd,
                            .engine = p->engine,
                            .acpi = p->kmods.acpi,
                            .after_spawn = qemu && p->jail ? vmb_jail_seccomp_supervisor : NULL};
  int status = 0;
  int rc = qemu ? hv_vm_run_qemu(&vc, &status, &err) : hv_vm_run(&vc, &status, &err);
  if (rc < 0) {
    hv_error_print(&err);
    print_klog_tail(o.klog_fd);
    _exit(255);
  }
  _exit(status);
}

/* ---------------- P: spawn ---------------- */

#define JAIL_NS (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET)

static __attribute__((noreturn)) void stage_main(struct vmb_spawn *s, int sync_fd) {
  hv_error_t err = NULL;
  /* If hvrun dies before V exists, the stage must not linger. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (s->cg && hv_cg_enter(s->cg, getpid(), &err) < 0)
    fail(sync_fd, &err);
  if (s->plan->jail && unshare(JAIL_NS) < 0) {
    hv_error(&err, errno, "jail: create namespaces");
    fail(sync_fd, &err);
  }
  pid_t pid = fork();
  if (pid < 0) {
    hv_error(&err, errno, "fork the VMM");
    fail(sync_fd, &err);
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, 0);
    vmm_main(s, sync_fd);
  }
  report(sync_fd, "pid %d", pid);
  _exit(0);
}

static int recv_msg(int fd, char *buf, size_t len, const char *peer, hv_error_t *err) {
  ssize_t n;
  do
    n = recv(fd, buf, len - 1, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return hv_error(err, errno, "read from the %s", peer);
  if (n == 0)
    return hv_error(err, 0, "the %s exited during setup", peer);
  buf[n] = 0;
  if (!strncmp(buf, "error ", 6))
    return hv_error(err, 0, "%s", buf + 6);
  return 0;
}

int vmb_vmm_spawn(struct vmb_spawn *s, hv_error_t *err) {
  s->pid = 0;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return hv_error(err, errno, "socketpair");
  /* V is the stage's child; when the stage exits V comes back to us. */
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
    close(sv[0]);
    close(sv[1]);
    return hv_error(err, errno, "prctl(PR_SET_CHILD_SUBREAPER)");
  }
  fflush(NULL);
  pid_t stage = fork();
  if (stage < 0) {
    close(sv[0]);
    close(sv[1]);
    return hv_error(err, errno, "fork");
  }
  if (stage == 0) {
    close(sv[0]);
    stage_main(s, sv[1]);
  }
  close(sv[1]);
  cleanup_close int fd = sv[0];
  char msg[2048];
  int rc = recv_msg(fd, msg, sizeof msg, "VMM stage", err);
  int pid = 0;
  if (rc == 0 && sscanf(msg, "pid %d", &pid) != 1)
    rc = hv_error(err, 0, "VMM stage: unexpected message `%s`", msg);
  while (waitpid(stage, NULL, 0) < 0 && errno == EINTR)
    ;
  if (rc < 0)
    return -1;
  s->pid = pid;
  if (recv_msg(fd, msg, sizeof msg, "VMM", err) < 0)
    return -1;
  if (strcmp(msg, "ready"))
    return hv_error(err, 0, "VMM: unexpected message `%s`", msg);
  return 0;
}
