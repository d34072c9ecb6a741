/* error.c: the one error idiom, plus logging to --log (text or JSON). */
#include "runtime.h"
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

static FILE *log_file;
static bool log_json, log_debug;

static char *vfmt(const char *fmt, va_list ap) {
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0)
    abort();
  return s;
}

int hv_error(hv_error_t *err, int errno_, const char *fmt, ...) {
  if (err && !*err) {
    va_list ap;
    va_start(ap, fmt);
    hv_error_t e = hv_xmalloc0(sizeof(*e));
    e->errno_ = errno_;
    e->msg = vfmt(fmt, ap);
    va_end(ap);
    *err = e;
  }
  return errno_ > 0 ? -errno_ : -1;
}

int hv_error_wrap(hv_error_t *err, const char *fmt, ...) {
  if (!err || !*err)
    return -1;
  va_list ap;
  va_start(ap, fmt);
  char *prefix = vfmt(fmt, ap);
  va_end(ap);
  char *m = hv_xasprintf("%s: %s", prefix, (*err)->msg);
  free(prefix);
  free((*err)->msg);
  (*err)->msg = m;
  return (*err)->errno_ > 0 ? -(*err)->errno_ : -1;
}

void hv_error_release(hv_error_t *err) {
  if (!err || !*err)
    return;
  free((*err)->msg);
  free(*err);
  *err = NULL;
}

static void log_emit(int level, const char *msg) {
  static const char *names[] = {"error", "warning", "debug"};
  if (level < 0 || level > 2)
    level = 0;
  if (log_file) {
    if (log_json) {
      char ts[64];
      struct timespec t;
      clock_gettime(CLOCK_REALTIME, &t);
      struct tm tm;
      gmtime_r(&t.tv_sec, &tm);
      strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
      json_t *j = json_pack("{s:s,s:s,s:s}", "level", names[level], "msg", msg, "time", ts);
      char *s = json_dumps(j, JSON_COMPACT);
      if (s)
        fprintf(log_file, "%s\n", s);
      free(s);
      json_decref(j);
    } else {
      fprintf(log_file, "%s: %s\n", names[level], msg);
    }
    fflush(log_file);
  }
  /* stderr always carries errors and warnings; debug only with --debug. */
  if (level < 2 || log_debug)
    fprintf(stderr, "hvrun: %s%s\n", level == 1 ? "warning: " : "", msg);
}

int hv_error_print(hv_error_t *err) {
  if (!err || !*err)
    return 0;
  char *m = (*err)->errno_ ? hv_xasprintf("%s: %s", (*err)->msg, strerror((*err)->errno_))
                           : hv_xstrdup((*err)->msg);
  log_emit(0, m);
  free(m);
  int st = (*err)->status ? (*err)->status : 1;
  hv_error_release(err);
  return st;
}

void hv_log_init(const char *path, bool json, bool debug) {
  log_json = json;
  log_debug = debug;
  if (path && *path) {
    log_file = fopen(path, "ae");
    if (!log_file)
      fprintf(stderr, "hvrun: warning: cannot open log file `%s`: %s\n", path, strerror(errno));
  }
}

void hv_log(int level, const char *fmt, ...) {
  if (level >= 2 && !log_debug && !log_file)
    return;
  va_list ap;
  va_start(ap, fmt);
  char *m = vfmt(fmt, ap);
  va_end(ap);
  if (level >= 2 && !log_debug) { /* debug to the log file only */
    if (log_file) {
      bool d = log_debug;
      log_debug = false;
      log_emit(level, m);
      log_debug = d;
    }
  } else {
    log_emit(level, m);
  }
  free(m);
}
