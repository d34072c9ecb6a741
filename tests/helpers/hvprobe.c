/* hvprobe: the isolation probes `hvrun bench` runs inside every mode.  Built
 * statically into the default image's /usr/local/bin by images/module.mk.
 *
 * It reports, as "@hvb KEY VALUE" lines (strings are one word, spaces
 * replaced by '_'):
 *   - the kernel it sees: release, boot id, so the harness can compare with
 *     the host's (same boot id = the host kernel is shared);
 *   - the syscall surface: every syscall number 0..HVPROBE_NR_MAX is called
 *     once with invalid arguments in a throw-away child, and the errno is
 *     reported (the harness compares with the host's answers: a seccomp
 *     filter shows up as EPERM/ENOSYS/SIGSYS where the host kernel gave a
 *     different answer);
 *   - what /proc, /sys and the kernel log reveal;
 *   - a set of escape attempts, each "blocked" or "allowed".
 *
 * Every syscall attempt is made with arguments that the kernel rejects
 * (-1 pointers, lengths and flags), in a child that first calls setsid()
 * (so vhangup has no terminal to hang up) and is killed by an interval
 * timer if it blocks (pause). */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define HVPROBE_NR_MAX 463 /* x86-64 numbers up to Linux 6.10 or so */

static void put_str(const char *key, const char *v) {
  printf("@hvb %s ", key);
  for (const char *p = v; *p; p++)
    putchar(*p == ' ' || *p == '\n' || *p == '\t' ? '_' : *p);
  putchar('\n');
}

static void put_num(const char *key, long v) { printf("@hvb %s %ld\n", key, v); }

static void read_first_line(const char *path, char *out, size_t len) {
  FILE *f = fopen(path, "r");
  out[0] = 0;
  if (!f) {
    snprintf(out, len, "unreadable");
    return;
  }
  if (!fgets(out, (int)len, f))
    snprintf(out, len, "empty");
  out[strcspn(out, "\n")] = 0;
  fclose(f);
}

/* One syscall with rejected arguments, in a child.  Returns errno (0 on
 * success), or -signal if the child died (SIGSYS = seccomp kill/trap). */
static int try_syscall(long nr) {
  int pfd[2];
  if (pipe(pfd) < 0)
    return -1000;
  pid_t p = fork();
  if (p == 0) {
    close(pfd[0]);
    setsid();
    struct itimerval it = {.it_value = {.tv_usec = 200000}};
    setitimer(ITIMER_REAL, &it, NULL);
    long a = -1;
    errno = 0;
    long r = syscall(nr, a, a, a, a, a, a);
    int e = r < 0 ? errno : 0;
    if (write(pfd[1], &e, sizeof e) != sizeof e)
      _exit(3);
    _exit(0);
  }
  close(pfd[1]);
  if (p < 0) {
    close(pfd[0]);
    return -1000;
  }
  int e = -1001, n, st;
  n = (int)read(pfd[0], &e, sizeof e);
  close(pfd[0]);
  waitpid(p, &st, 0);
  if (n == sizeof e)
    return e;
  /* The child ended without reporting: exit/exit_group ran (reached the
   * kernel), or it died of a signal (SIGSYS from a filter, SIGALRM when the
   * call blocked, SIGSEGV from rt_sigreturn). */
  if (WIFSIGNALED(st))
    return -WTERMSIG(st);
  return 0;
}

static void probe_syscalls(void) {
  printf("@hvb syscall_errnos ");
  for (long nr = 0; nr <= HVPROBE_NR_MAX; nr++)
    printf("%s%d", nr ? "," : "", try_syscall(nr));
  putchar('\n');
  char buf[256];
  FILE *f = fopen("/proc/self/status", "r");
  if (f) {
    while (fgets(buf, sizeof buf, f))
      if (strncmp(buf, "Seccomp:", 8) == 0)
        put_num("seccomp_mode", atol(buf + 8));
    fclose(f);
  }
}

static long count_dir(const char *path, int only_digits) {
  DIR *d = opendir(path);
  if (!d)
    return -1;
  long n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.' && (!only_digits || (e->d_name[0] >= '0' && e->d_name[0] <= '9')))
      n++;
  closedir(d);
  return n;
}

static void probe_views(void) {
  struct utsname u;
  uname(&u);
  put_str("kernel_release", u.release);
  char buf[512];
  read_first_line("/proc/sys/kernel/random/boot_id", buf, sizeof buf);
  put_str("boot_id", buf);
  put_num("proc_pids", count_dir("/proc", 1));
  put_num("sys_block_devices", count_dir("/sys/block", 0));
  put_num("sys_net_ifaces", count_dir("/sys/class/net", 0));
  put_num("sys_cpus", count_dir("/sys/devices/system/cpu", 0));
  FILE *f = fopen("/proc/meminfo", "r");
  if (f) {
    if (fgets(buf, sizeof buf, f))
      put_num("meminfo_total_kib", atol(buf + strcspn(buf, "0123456789")));
    fclose(f);
  }
  f = fopen("/proc/cpuinfo", "r");
  if (f) {
    while (fgets(buf, sizeof buf, f))
      if (strncmp(buf, "model name", 10) == 0) {
        buf[strcspn(buf, "\n")] = 0;
        put_str("cpu_model", strchr(buf, ':') ? strchr(buf, ':') + 2 : buf);
        break;
      }
    fclose(f);
  }
  long mounts = 0;
  f = fopen("/proc/self/mountinfo", "r");
  if (f) {
    while (fgets(buf, sizeof buf, f))
      mounts++;
    fclose(f);
  }
  put_num("mounts", mounts);
  /* The kernel log: syslog(2) action 10 is SIZE_BUFFER; /dev/kmsg read. */
  put_num("dmesg_syslog", syscall(SYS_syslog, 10, NULL, 0) >= 0 ? 1 : 0);
  int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
  char c[256];
  put_num("dmesg_kmsg", fd >= 0 && read(fd, c, sizeof c) > 0 ? 1 : 0);
  if (fd >= 0)
    close(fd);
}

static void verdict(const char *name, int allowed, int err) {
  printf("@hvb escape_%s %s%s%s\n", name, allowed ? "allowed" : "blocked", allowed ? "" : ":",
         allowed ? "" : strerrorname_np(err) ? strerrorname_np(err) : "error");
}

static int in_child_errno;

/* Run fn in a child; returns 1 if fn succeeded there (in_child_errno holds
 * its errno otherwise). */
static int in_child(int (*fn)(void)) {
  int pfd[2];
  if (pipe(pfd) < 0)
    return 0;
  pid_t p = fork();
  if (p == 0) {
    int r = fn(), e = r == 0 ? 0 : errno;
    if (write(pfd[1], &e, sizeof e) != sizeof e)
      _exit(1);
    _exit(0);
  }
  close(pfd[1]);
  int e = EIO;
  if (p < 0 || read(pfd[0], &e, sizeof e) != sizeof e)
    e = EIO;
  close(pfd[0]);
  if (p > 0)
    waitpid(p, NULL, 0);
  in_child_errno = e;
  return e == 0;
}

static int try_unshare_userns(void) { return (int)syscall(SYS_unshare, 0x10000000 /* CLONE_NEWUSER */); }

/* PTRACE_SEIZE does not stop the tracee; the child's exit detaches it. */
static int try_ptrace_pid1(void) { return (int)syscall(SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, 1, 0, 0); }

static void probe_escapes(void) {
  /* CVE-2019-5736 class: write to the binary behind /proc/self/exe (in a
   * runtime that execs the workload through itself, that is the runtime). */
  int fd = open("/proc/self/exe", O_WRONLY);
  verdict("proc_self_exe_write", fd >= 0, errno);
  if (fd >= 0)
    close(fd);
  /* Kernel tunables: /proc/sys must be read-only in a sandbox (opened for
   * writing only; nothing is written). */
  fd = open("/proc/sys/kernel/domainname", O_WRONLY);
  verdict("proc_sys_open_for_write", fd >= 0, errno);
  if (fd >= 0)
    close(fd);
  /* Leaked descriptors: anything open beyond stdio that points at a
   * directory can be fchdir'd out of the root. */
  long leaked = 0, leaked_dirs = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      int n = atoi(e->d_name);
      if (e->d_name[0] == '.' || n <= 2 || n == dirfd(d))
        continue;
      leaked++;
      struct stat sb;
      if (fstat(n, &sb) == 0 && S_ISDIR(sb.st_mode))
        leaked_dirs++;
    }
    closedir(d);
  }
  put_num("leaked_fds", leaked);
  put_num("leaked_dir_fds", leaked_dirs);
  char cwd[4096];
  put_num("cwd_outside_root",
          getcwd(cwd, sizeof cwd) && strncmp(cwd, "(unreachable)", 13) == 0 ? 1 : 0);
  /* Root escape via chdir("..") past the root: compare inodes. */
  struct stat r1, r2;
  int up = stat("/", &r1) == 0 && stat("/../../../..", &r2) == 0 &&
           (r1.st_ino != r2.st_ino || r1.st_dev != r2.st_dev);
  put_num("dotdot_escape", up);
  mkdir("/tmp", 0777);
  mkdir("/tmp/hvprobe-mnt", 0700);
  int r = mount("hvprobe", "/tmp/hvprobe-mnt", "tmpfs", 0, "size=1m");
  verdict("mount_tmpfs", r == 0, errno);
  if (r == 0)
    umount2("/tmp/hvprobe-mnt", MNT_DETACH);
  rmdir("/tmp/hvprobe-mnt");
  /* finit_module(-1): EBADF means the call got past the privilege check. */
  r = (int)syscall(SYS_finit_module, -1, "", 0);
  verdict("kernel_module_load", r == 0 || errno == EBADF, errno);
  fd = open("/proc/kcore", O_RDONLY);
  char b[16];
  int got = fd >= 0 && read(fd, b, sizeof b) > 0;
  verdict("read_proc_kcore", got, fd < 0 ? errno : EIO);
  if (fd >= 0)
    close(fd);
  /* keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, create=1) */
  long k = syscall(SYS_keyctl, 0, -3, 1);
  verdict("keyctl", k >= 0, errno);
  /* A block device node for the first disk: raw access to host storage. */
  r = mknod("/tmp/hvprobe-blk", S_IFBLK | 0600, makedev(8, 0));
  verdict("mknod_block_device", r == 0, errno);
  if (r == 0)
    unlink("/tmp/hvprobe-blk");
  /* These two change the caller, so they run in a child. */
  int ok = in_child(try_unshare_userns);
  verdict("unshare_userns", ok, in_child_errno);
  ok = in_child(try_ptrace_pid1);
  verdict("ptrace_pid1", ok, in_child_errno);
}

int main(void) {
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  probe_views();
  probe_escapes();
  fflush(stdout);
  probe_syscalls();
  printf("@hvb done 1\n");
  return 0;
}
