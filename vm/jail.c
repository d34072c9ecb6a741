/* jail.c: the VMM's sandbox, in the spirit of Firecracker's jailer.
 *
 * The VMM parses guest-controlled data (virtio rings, MMIO writes, the
 * control channel), so it is treated as the most exposed process hvrun
 * runs.  By the time it touches guest data it is:
 *   - in its own mount, pid (as pid 1), ipc, uts and network namespaces
 *     (unshared by the stage process, vm/vmm_process.c), with no network
 *     device but loopback;
 *   - in a cgroup of its own (cpu quota, memory = guest RAM + overhead,
 *     pids, devices = defaults + /dev/kvm; set up by backend.c);
 *   - pivot_root'ed into a read-only tmpfs that holds only /dev/null,
 *     /dev/kvm, the kernel, the initrd and the root disk (bind mounts, the
 *     disk read-only).  The QEMU engine also gets /usr, /lib*, /bin, /sbin
 *     and /etc read-only and a /proc of its own pid namespace: QEMU is an
 *     exec'd program with shared libraries and firmware files;
 *   - without any capability (bounding set emptied, so not even an exec
 *     as uid 0 gets them back) and with no_new_privs;
 *   - (own engine) under a seccomp allow-list on every thread: the
 *     syscalls of VM setup, the vCPU loop, the virtio I/O threads, the
 *     control thread and exit.  Anything else kills the VMM. */
#include "vm_backend.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static int touch(const char *path, hv_error_t *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return hv_error(err, errno, "jail: create `%s`", path);
  close(fd);
  return 0;
}

/* Bind `src` onto `dst` inside the jail root (created as a file or a dir to
 * match), read-only if asked.  Device nodes keep working: nodev is a flag
 * of the tmpfs mount, not of this bind mount. */
static int bind(const char *root, const char *src, const char *dst, bool ro, hv_error_t *err) {
  struct stat st;
  if (stat(src, &st) < 0)
    return hv_error(err, errno, "jail: `%s`", src);
  cleanup_free char *target = hv_xasprintf("%s%s", root, dst);
  if (S_ISDIR(st.st_mode)) {
    if (mkdir(target, 0755) < 0 && errno != EEXIST)
      return hv_error(err, errno, "jail: mkdir `%s`", target);
  } else if (touch(target, err) < 0) {
    return -1;
  }
  unsigned long rec = S_ISDIR(st.st_mode) ? MS_REC : 0;
  if (mount(src, target, NULL, MS_BIND | rec, NULL) < 0)
    return hv_error(err, errno, "jail: bind `%s` to `%s`", src, target);
  if (ro && mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, NULL) < 0)
    return hv_error(err, errno, "jail: make `%s` read-only", target);
  return 0;
}

/* /lib and friends are symlinks on merged-/usr systems: copy the link,
 * bind a real directory. */
static int bind_system_dir(const char *root, const char *dir, hv_error_t *err) {
  struct stat st;
  if (lstat(dir, &st) < 0)
    return 0;
  if (S_ISLNK(st.st_mode)) {
    char to[4096];
    ssize_t n = readlink(dir, to, sizeof to - 1);
    if (n < 0)
      return hv_error(err, errno, "jail: readlink `%s`", dir);
    to[n] = 0;
    cleanup_free char *link = hv_xasprintf("%s%s", root, dir);
    if (symlink(to, link) < 0)
      return hv_error(err, errno, "jail: symlink `%s`", link);
    return 0;
  }
  return S_ISDIR(st.st_mode) ? bind(root, dir, dir, true, err) : 0;
}

int vmb_jail_enter(const struct vmb_jail *j, hv_error_t *err) {
  const char *root = j->root;
  /* Nothing we mount may propagate back to the host. */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return hv_error(err, errno, "jail: make / private");
  if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV | (j->qemu ? 0 : MS_NOEXEC),
            "mode=0755,size=1m") < 0)
    return hv_error(err, errno, "jail: mount tmpfs on `%s`", root);
  const char *dirs[] = {"/dev", "/vm", "/.old", "/proc", "/tmp", NULL};
  for (size_t i = 0; dirs[i]; i++) {
    cleanup_free char *d = hv_xasprintf("%s%s", root, dirs[i]);
    if (mkdir(d, 0755) < 0)
      return hv_error(err, errno, "jail: mkdir `%s`", d);
  }
  if (bind(root, "/dev/null", "/dev/null", false, err) < 0)
    return -1;
  if (j->kvm_dev && bind(root, j->kvm_dev, "/dev/kvm", false, err) < 0)
    return -1;
  if (bind(root, j->kernel, VMB_IN_JAIL_KERNEL, true, err) < 0 ||
      bind(root, j->initrd, VMB_IN_JAIL_INITRD, true, err) < 0 ||
      (j->disk && bind(root, j->disk, VMB_IN_JAIL_DISK, true, err) < 0))
    return -1;
  if (j->qemu) {
    const char *sys[] = {"/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/etc",
                         NULL};
    for (size_t i = 0; sys[i]; i++)
      if (bind_system_dir(root, sys[i], err) < 0)
        return -1;
    if (bind(root, "/dev/urandom", "/dev/urandom", false, err) < 0 ||
        bind(root, "/dev/zero", "/dev/zero", false, err) < 0)
      return -1;
    /* /dev/fd/N (QEMU's kernel-log chardev) goes through /proc/self. */
    cleanup_free char *fd = hv_xasprintf("%s/dev/fd", root);
    if (symlink("/proc/self/fd", fd) < 0)
      return hv_error(err, errno, "jail: symlink `%s`", fd);
    cleanup_free char *proc = hv_xasprintf("%s/proc", root);
    if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
      return hv_error(err, errno, "jail: mount proc");
  }
  if (j->pvm) {
    /* The VMM core asks "is this PVM?" by looking for kvm_pvm in sysfs
     * (vm/cpuid.c: which CPUID features to hide); the jail has no sysfs,
     * so the answer hvrun found before the jail is mirrored as an empty
     * directory instead of exposing /sys. */
    cleanup_free char *d = hv_xasprintf("%s/sys/module/kvm_pvm", root);
    if (hv_mkdir_p(d, 0755, err) < 0)
      return hv_error_wrap(err, "jail");
  }
  cleanup_free char *old = hv_xasprintf("%s/.old", root);
  if (syscall(SYS_pivot_root, root, old) < 0)
    return hv_error(err, errno, "jail: pivot_root to `%s`", root);
  if (chdir("/") < 0)
    return hv_error(err, errno, "jail: chdir /");
  if (umount2("/.old", MNT_DETACH) < 0)
    return hv_error(err, errno, "jail: detach the old root");
  rmdir("/.old");
  /* QEMU may want a writable /tmp; ours never writes a file. */
  if (j->qemu && mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=16m") < 0)
    return hv_error(err, errno, "jail: mount /tmp");
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV |
                                 (j->qemu ? 0 : MS_NOEXEC), NULL) < 0)
    return hv_error(err, errno, "jail: make the root read-only");
  if (sethostname("hvrun-vmm", 9) < 0)
    return hv_error(err, errno, "jail: sethostname");
  return 0;
}

int vmb_jail_drop_privileges(hv_error_t *err) {
  /* Bounding set first (needs CAP_SETPCAP, still held), then the rest. */
  for (int c = 0; c <= CAP_LAST_CAP; c++)
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
      return hv_error(err, errno, "jail: drop capability %d from the bounding set", c);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return hv_error(err, errno, "jail: clear ambient capabilities");
  cap_t none = cap_init();
  if (!none)
    return hv_error(err, errno, "jail: cap_init");
  int r = cap_set_proc(none);
  int e = errno;
  cap_free(none);
  if (r < 0)
    return hv_error(err, e, "jail: drop capabilities");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return hv_error(err, errno, "jail: no_new_privs");
  return 0;
}

/* The allow-list.  Found by running the VMM under `strace -f -c` through
 * a boot and with HVRUN_VM_SECCOMP_LOG=1 (violations go to the audit log
 * instead of killing: `dmesg | grep type=1326`), then reasoned about:
 * setup (open the files and /dev/kvm, map RAM, create threads), the vCPU
 * loop (ioctl KVM_RUN, signals that kick vCPUs out of it), virtio I/O
 * (pread/pwrite/fsync on the disks, read/write on the consoles, eventfds
 * and epoll), the control thread (accept4, poll, read/write, signalfd) and
 * exit. */
static const char *const allowed[] = {
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "lseek",
    "openat", "open", "close", "access", "faccessat", "faccessat2", "fstat", "newfstatat", "statx", "stat", "lstat", "readlink",
    "fsync", "fdatasync", "ioctl", "fcntl", "dup", "dup3", "pipe2",
    "mmap", "munmap", "mprotect", "madvise", "mremap", "brk",
    "futex", "set_robust_list", "get_robust_list", "rseq", "sched_yield", "sched_getaffinity",
    "sched_setaffinity", "gettid", "getpid", "getppid",
    "exit", "exit_group", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait",
    "sigaltstack", "signalfd4", "restart_syscall",
    "poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait",
    "epoll_pwait", "epoll_pwait2", "eventfd2", "timerfd_create", "timerfd_settime",
    "timerfd_gettime",
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
    "getrandom", "prlimit64", "getrlimit",
    "accept4", "accept", "recvmsg", "sendmsg", "recvfrom", "sendto", "shutdown",
    "uname", "getuid", "geteuid", "getgid", "getegid",
    NULL};

/* The QEMU engine's supervisor (V once QEMU runs): the VMM's list plus
 * waiting for and killing that one child. */
static const char *const supervisor_extra[] = {"wait4", "waitid", "pidfd_open", NULL};

static int jail_seccomp(pid_t child, hv_error_t *err) {
  /* HVRUN_VM_SECCOMP_LOG=1 (debugging the list): log, do not kill. */
  const char *log = getenv("HVRUN_VM_SECCOMP_LOG");
  bool log_only = log && !strcmp(log, "1");
  scmp_filter_ctx ctx = seccomp_init(log_only ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
  if (!ctx)
    return hv_error(err, ENOMEM, "jail: seccomp_init");
  int rc = 0;
  for (size_t i = 0; allowed[i] && rc == 0; i++) {
    int nr = seccomp_syscall_resolve_name(allowed[i]);
    if (nr == __NR_SCMP_ERROR)
      continue; /* not on this architecture */
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
  }
  for (size_t i = 0; child > 0 && supervisor_extra[i] && rc == 0; i++) {
    int nr = seccomp_syscall_resolve_name(supervisor_extra[i]);
    if (nr != __NR_SCMP_ERROR)
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
  }
  if (rc == 0 && child > 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
                          SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)child));
  /* Threads only: clone with CLONE_THREAD.  clone3 hides its flags in
   * memory a filter cannot read, so it fails with ENOSYS and glibc falls
   * back to clone. */
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  /* Signals only to our own threads (vCPU kicks, raise/abort). */
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                          SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
                          SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
  /* Every thread, including the control thread already running. */
  if (rc == 0)
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
  if (rc == 0)
    rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc < 0)
    return hv_error(err, -rc, "jail: load the VMM's seccomp filter");
  return 0;
}

int vmb_jail_seccomp(hv_error_t *err) { return jail_seccomp(0, err); }

int vmb_jail_seccomp_supervisor(pid_t qemu, hv_error_t *err) { return jail_seccomp(qemu, err); }
