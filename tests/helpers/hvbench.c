/* hvbench: the static workload program `hvrun bench` runs inside every mode
 * (host, containers, microVMs).  It is built into the default image's
 * /usr/local/bin by images/module.mk.
 *
 *   hvbench hold MIB SECS          touch MIB MiB, print "ready", then wait for
 *                                  stdin EOF (when stdin is a pipe) or SECS
 *   hvbench suite SECS DISK TMPFS  run every compute/syscall/IO/network phase
 *                                  for about SECS seconds each
 *
 * Every result is one line "@hvb KEY VALUE" (errors "@hvb error KEY text"),
 * so the harness can pick them out of a stream that may also carry a guest
 * kernel's console output.  Each phase times itself inside the sandbox, so
 * start-up cost never leaks into throughput figures; phases are bounded by
 * time rather than by work, so a 15x slower emulated guest still finishes. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put(const char *key, double v) {
  printf("@hvb %s %.6g\n", key, v);
  fflush(stdout);
}

static void put_error(const char *key, const char *what) {
  printf("@hvb error %s %s: %s\n", key, what, strerror(errno));
  fflush(stdout);
}

/* ---------------- hold: memory per instance and density ---------------- */

static int cmd_hold(long mib, int secs) {
  size_t len = (size_t)mib << 20;
  if (len) {
    /* mmap + one write per page: exactly `mib` MiB become resident. */
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      put_error("hold", "mmap");
      return 1;
    }
    for (size_t i = 0; i < len; i += 4096)
      p[i] = (char)i | 1;
  }
  printf("@hvb ready 1\n");
  fflush(stdout);
  struct stat sb;
  if (fstat(0, &sb) == 0 && S_ISFIFO(sb.st_mode)) {
    /* The harness closes the pipe when it has measured us. */
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    double end = now() + secs;
    char buf[64];
    while (now() < end) {
      int r = poll(&pfd, 1, 100);
      if (r > 0 && read(0, buf, sizeof buf) <= 0)
        break;
    }
  } else {
    /* stdin is /dev/null or a console: fall back to the timeout. */
    struct timespec ts = {.tv_sec = secs};
    nanosleep(&ts, NULL);
  }
  return 0;
}

/* ---------------- CPU ---------------- */

/* A dependent chain of multiplies, xors and shifts (a 64-bit mixing
 * function): the compiler cannot vectorise it away and it touches no
 * memory, so it measures the core and nothing else. */
static void phase_cpu(double secs) {
  uint64_t x = 0x9e3779b97f4a7c15ull, iters = 0;
  double t0 = now(), t;
  do {
    for (int i = 0; i < 1000000; i++) {
      x ^= x >> 33;
      x *= 0xff51afd7ed558ccdull;
      x ^= x >> 29;
      x += (uint64_t)i;
    }
    iters += 1000000;
    t = now();
  } while (t - t0 < secs);
  if (x == 42) /* keep x alive */
    printf("#\n");
  put("cpu_mops", (double)iters / (t - t0) / 1e6);
}

/* ---------------- memory bandwidth (STREAM-like triad) ---------------- */

static void phase_membw(double secs) {
  size_t n = 4u << 20; /* 4 Mi doubles per array: 96 MiB touched, far beyond caches */
  double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
  if (!a || !b || !c) {
    put_error("membw", "malloc");
    free(a), free(b), free(c);
    return;
  }
  for (size_t i = 0; i < n; i++)
    a[i] = 0, b[i] = (double)i, c[i] = 1.0;
  double best = 1e30, t0 = now();
  int passes = 0;
  do {
    double s = now();
    for (size_t i = 0; i < n; i++)
      a[i] = b[i] + 3.0 * c[i];
    double d = now() - s;
    if (d < best)
      best = d;
    passes++;
  } while (now() - t0 < secs || passes < 2);
  put("membw_mbs", 3.0 * (double)(n * sizeof(double)) / best / 1e6);
  free(a), free(b), free(c);
}

/* ---------------- syscalls ---------------- */

static void phase_syscalls(double secs, const char *dir) {
  long n = 0;
  double t0 = now(), t;
  do {
    for (int i = 0; i < 10000; i++)
      syscall(SYS_getpid);
    n += 10000;
    t = now();
  } while (t - t0 < secs / 3);
  put("getpid_ns", (t - t0) / (double)n * 1e9);

  char path[512];
  snprintf(path, sizeof path, "%s/hvbench-open", dir);
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  if (fd < 0) {
    put_error("openclose", path);
  } else {
    close(fd);
    n = 0;
    t0 = now();
    do {
      for (int i = 0; i < 1000; i++) {
        fd = open(path, O_RDONLY);
        if (fd >= 0)
          close(fd);
      }
      n += 1000;
      t = now();
    } while (t - t0 < secs / 3);
    put("openclose_ns", (t - t0) / (double)n * 1e9);
    unlink(path);
  }

  n = 0;
  t0 = now();
  do {
    pid_t p = fork();
    if (p == 0) {
      char *argv[] = {"true", NULL}, *envp[] = {NULL};
      execve("/bin/true", argv, envp);
      _exit(127);
    }
    if (p < 0) {
      put_error("forkexec", "fork");
      return;
    }
    int st;
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      errno = ENOEXEC;
      put_error("forkexec", "/bin/true");
      return;
    }
    n++;
    t = now();
  } while (t - t0 < secs / 3 || n < 3);
  put("forkexec_us", (t - t0) / (double)n * 1e6);
}

/* ---------------- file I/O ---------------- */

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void fs_type_name(const char *dir, char *out, size_t len) {
  struct statfs s;
  if (statfs(dir, &s) < 0) {
    snprintf(out, len, "unknown");
    return;
  }
  switch ((unsigned long)s.f_type) {
  case 0x01021994: snprintf(out, len, "tmpfs"); break;
  case 0x794c7630: snprintf(out, len, "overlay"); break;
  case 0xef53: snprintf(out, len, "ext4"); break;
  case 0xe0f5e1e2: snprintf(out, len, "erofs"); break;
  case 0x58465342: snprintf(out, len, "xfs"); break;
  case 0x9123683e: snprintf(out, len, "btrfs"); break;
  default: snprintf(out, len, "0x%lx", (unsigned long)s.f_type);
  }
}

/* Sequential write/read (1 MiB blocks) and 4 KiB random read/write IOPS on
 * one file.  O_DIRECT is used where the filesystem takes it (disks), so the
 * random figures are the device path (virtio-blk for VMs, overlay/ext4 for
 * containers) rather than the guest's page cache; tmpfs has no O_DIRECT and
 * is measured through its page cache, which is what tmpfs is. */
static void phase_fileio(double secs, const char *dir, const char *tag, size_t file_mib) {
  char path[512], key[64], fst[32];
  snprintf(path, sizeof path, "%s/hvbench-io", dir);
  fs_type_name(dir, fst, sizeof fst);
  printf("@hvb %s_fstype_%s 1\n", tag, fst);
  size_t blk = 1 << 20, len = file_mib << 20;
  void *buf;
  if (posix_memalign(&buf, 4096, blk)) {
    put_error(tag, "posix_memalign");
    return;
  }
  memset(buf, 0x5a, blk);
  int direct = O_DIRECT;
  int fd = open(path, O_CREAT | O_RDWR | O_TRUNC | direct, 0600);
  if (fd < 0 && errno == EINVAL) {
    direct = 0;
    fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
  }
  if (fd < 0) {
    put_error(tag, path);
    free(buf);
    return;
  }
  snprintf(key, sizeof key, "%s_direct", tag);
  put(key, direct ? 1 : 0);
  double t0 = now();
  /* Bounded by time too: where the sandbox's kernel copies through an
   * emulator (a guest under PVM) 64 MiB can take minutes; then the file
   * is what was written by 4 x SECS (at least 4 MiB), and the phases below
   * use that size. */
  for (size_t off = 0; off < len; off += blk) {
    if (pwrite(fd, buf, blk, (off_t)off) != (ssize_t)blk) {
      put_error(tag, "write");
      goto out;
    }
    if (off + blk >= (4u << 20) && now() - t0 > 4 * secs) {
      len = off + blk;
      snprintf(key, sizeof key, "%s_file_mib", tag);
      put(key, (double)(len >> 20));
      break;
    }
  }
  fsync(fd);
  snprintf(key, sizeof key, "%s_seqwrite_mbs", tag);
  put(key, (double)len / (now() - t0) / 1e6);

  t0 = now();
  for (size_t off = 0; off < len; off += blk)
    if (pread(fd, buf, blk, (off_t)off) != (ssize_t)blk) {
      put_error(tag, "read");
      goto out;
    }
  snprintf(key, sizeof key, "%s_seqread_mbs", tag);
  put(key, (double)len / (now() - t0) / 1e6);

  size_t pages = len / 4096;
  long n = 0;
  double t;
  t0 = now();
  do {
    for (int i = 0; i < 64; i++)
      if (pread(fd, buf, 4096, (off_t)(rnd() % pages) * 4096) != 4096) {
        put_error(tag, "random read");
        goto out;
      }
    n += 64;
    t = now();
  } while (t - t0 < secs / 2);
  snprintf(key, sizeof key, "%s_randread_iops", tag);
  put(key, (double)n / (t - t0));

  n = 0;
  t0 = now();
  do {
    for (int i = 0; i < 64; i++)
      if (pwrite(fd, buf, 4096, (off_t)(rnd() % pages) * 4096) != 4096) {
        put_error(tag, "random write");
        goto out;
      }
    n += 64;
    t = now();
  } while (t - t0 < secs / 2);
  fsync(fd);
  t = now();
  snprintf(key, sizeof key, "%s_randwrite_iops", tag);
  put(key, (double)n / (t - t0));
out:
  close(fd);
  unlink(path);
  free(buf);
}

/* ---------------- network (loopback inside the sandbox) ---------------- */

static void loopback_up(void) {
  /* Best effort: runtimes differ in whether they bring lo up in a new
   * network namespace; without CAP_NET_ADMIN this fails and the phase
   * reports what connect() says. */
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  close(s);
}

static void phase_net(double secs) {
  loopback_up();
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 1) < 0 ||
      getsockname(ls, (struct sockaddr *)&sa, &sl) < 0) {
    put_error("net", "listen on 127.0.0.1");
    if (ls >= 0)
      close(ls);
    return;
  }
  pid_t srv = fork();
  if (srv == 0) {
    /* Echo one byte per ping, then sink everything until EOF. */
    int c = accept(ls, NULL, NULL);
    if (c < 0)
      _exit(1);
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static char b[65536];
    for (;;) {
      ssize_t r = read(c, b, 1);
      if (r <= 0)
        _exit(0);
      if (b[0] == 'E')
        break;
      if (write(c, b, 1) != 1)
        _exit(1);
    }
    while (read(c, b, sizeof b) > 0)
      ;
    if (write(c, "k", 1) != 1)
      _exit(1);
    _exit(0);
  }
  close(ls);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa) < 0) {
    put_error("net", "connect to 127.0.0.1");
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    if (c >= 0)
      close(c);
    return;
  }
  int one = 1;
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char b = 'p';
  long n = 0;
  double t0 = now(), t;
  do {
    for (int i = 0; i < 100; i++)
      if (write(c, &b, 1) != 1 || read(c, &b, 1) != 1) {
        put_error("net", "ping-pong");
        goto out;
      }
    n += 100;
    t = now();
  } while (t - t0 < secs / 2);
  put("net_rtt_us", (t - t0) / (double)n * 1e6);
  b = 'E';
  if (write(c, &b, 1) != 1) {
    put_error("net", "write");
    goto out;
  }
  static char big[65536];
  double bytes = 0;
  t0 = now();
  do {
    for (int i = 0; i < 16; i++) {
      ssize_t w = write(c, big, sizeof big);
      if (w <= 0) {
        put_error("net", "stream");
        goto out;
      }
      bytes += (double)w;
    }
    t = now();
  } while (t - t0 < secs / 2);
  shutdown(c, SHUT_WR);
  if (read(c, &b, 1) == 1) /* the server has read everything */
    t = now();
  put("net_tcp_mbs", bytes / (t - t0) / 1e6);
out:
  close(c);
  kill(srv, SIGKILL);
  waitpid(srv, NULL, 0);
}

static int cmd_suite(double secs, const char *disk, const char *tmpfs) {
  size_t file_mib = secs < 0.5 ? 16 : 64;
  double t0 = now();
  phase_cpu(secs);
  phase_membw(secs);
  phase_syscalls(secs, tmpfs);
  phase_fileio(secs, disk, "disk", file_mib);
  phase_fileio(secs, tmpfs, "tmpfs", file_mib);
  phase_net(secs);
  /* By this sandbox's clock: the harness compares it with its own, which
   * catches a guest clock that drifts (jiffies under emulation). */
  put("suite_elapsed_s", now() - t0);
  printf("@hvb done 1\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "hold") == 0)
    return cmd_hold(atol(argv[2]), atoi(argv[3]));
  if (argc == 5 && strcmp(argv[1], "suite") == 0) {
    double secs = atof(argv[2]);
    if (secs <= 0 || secs > 60) {
      fprintf(stderr, "hvbench: suite SECS must be in (0, 60], got \"%s\"\n", argv[2]);
      return 2;
    }
    return cmd_suite(secs, argv[3], argv[4]);
  }
  fprintf(stderr, "usage: hvbench hold MIB SECS | hvbench suite SECS DISK-DIR TMPFS-DIR\n");
  return 2;
}
