/* util.c: cleanup helpers and small file/string utilities. */
#include "runtime.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

bool (*hv_console_winch_hook)(void);

void hv_cleanup_freep(void *p) { free(*(void **)p); }
void hv_cleanup_closep(int *fd) {
  if (*fd >= 0) {
    int saved = errno;
    close(*fd);
    errno = saved;
  }
}
void hv_cleanup_fclosep(FILE **f) {
  if (*f)
    fclose(*f);
}
void hv_cleanup_jsonp(json_t **j) { json_decref(*j); }
void hv_cleanup_strvp(char ***v) { hv_strv_free(*v); }

void *hv_xmalloc0(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p)
    abort();
  return p;
}

void *hv_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q)
    abort();
  return q;
}

char *hv_xstrndup(const char *s, size_t n) {
  char *d = strndup(s, n);
  if (!d)
    abort();
  return d;
}

char *hv_xstrdup(const char *s) {
  if (!s)
    return NULL;
  char *d = strdup(s);
  if (!d)
    abort();
  return d;
}

char *hv_xasprintf(const char *fmt, ...) {
  va_list ap;
  char *s;
  va_start(ap, fmt);
  if (vasprintf(&s, fmt, ap) < 0)
    abort();
  va_end(ap);
  return s;
}

size_t hv_strv_len(char **v) {
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

void hv_strv_free(char **v) {
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

static int write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

static int write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                        bool durable, hv_error_t *err) {
  cleanup_free char *tmp = hv_xasprintf("%s.tmp.%d", name, getpid());
  cleanup_close int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return hv_error(err, errno, "create `%s`", tmp);
  if (write_all(fd, data, len) < 0 || (durable && fsync(fd) < 0)) {
    int e = errno;
    unlinkat(dirfd, tmp, 0);
    return hv_error(err, e, "write `%s`", tmp);
  }
  if (renameat(dirfd, tmp, dirfd, name) < 0) {
    int e = errno;
    unlinkat(dirfd, tmp, 0);
    return hv_error(err, e, "rename `%s` to `%s`", tmp, name);
  }
  return 0;
}

int hv_write_file_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                         hv_error_t *err) {
  return write_atomic(dirfd, name, data, len, mode, true, err);
}

int hv_write_runtime_file(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                          hv_error_t *err) {
  return write_atomic(dirfd, name, data, len, mode, false, err);
}

int hv_write_file(const char *path, const char *data, hv_error_t *err) {
  cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return hv_error(err, errno, "open `%s`", path);
  if (write_all(fd, data, strlen(data)) < 0)
    return hv_error(err, errno, "write `%s` to `%s`", data, path);
  return 0;
}

int hv_read_file(const char *path, char **out, size_t *len, hv_error_t *err) {
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return hv_error(err, errno, "open `%s`", path);
  size_t cap = 4096, n = 0;
  char *buf = hv_xmalloc0(cap);
  for (;;) {
    if (n + 1 >= cap) {
      cap *= 2;
      buf = hv_xrealloc(buf, cap);
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      int e = errno;
      free(buf);
      return hv_error(err, e, "read `%s`", path);
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  buf[n] = 0;
  *out = buf;
  if (len)
    *len = n;
  return 0;
}

int hv_mkdir_p(const char *path, mode_t mode, hv_error_t *err) {
  cleanup_free char *p = hv_xstrdup(path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = 0;
    if (mkdir(p, mode) < 0 && errno != EEXIST)
      return hv_error(err, errno, "mkdir `%s`", p);
    *s = '/';
  }
  if (mkdir(p, mode) < 0 && errno != EEXIST)
    return hv_error(err, errno, "mkdir `%s`", p);
  return 0;
}

static const struct { const char *name; int sig; } signals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},     {"IOT", SIGIOT},     {"BUS", SIGBUS},
    {"FPE", SIGFPE},   {"KILL", SIGKILL},     {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},   {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},   {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},   {"URG", SIGURG},
    {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},     {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH}, {"IO", SIGIO},       {"POLL", SIGPOLL},   {"PWR", SIGPWR},
    {"SYS", SIGSYS},
};

int hv_signal_parse(const char *s) {
  if (!s || !*s)
    return -1;
  char *end;
  long n = strtol(s, &end, 10);
  if (*end == 0)
    return (n > 0 && n < NSIG) ? (int)n : -1;
  const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
    if (strcasecmp(name, signals[i].name) == 0)
      return signals[i].sig;
  /* RTMIN+n / RTMAX-n */
  if (strncasecmp(name, "RTMIN", 5) == 0) {
    long off = name[5] ? strtol(name + 5, &end, 10) : 0;
    if (*end == 0 && SIGRTMIN + off <= SIGRTMAX && off >= 0)
      return SIGRTMIN + (int)off;
  }
  if (strncasecmp(name, "RTMAX", 5) == 0) {
    long off = name[5] ? strtol(name + 5, &end, 10) : 0;
    if (*end == 0 && SIGRTMAX + off >= SIGRTMIN && off <= 0)
      return SIGRTMAX + (int)off;
  }
  return -1;
}

const char *hv_signal_name(int sig) {
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
    if (signals[i].sig == sig)
      return signals[i].name;
  return NULL;
}

int hv_hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}
