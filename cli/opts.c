/* opts.c: option parsing as runc's CLI accepts it: "--name value",
 * "--name=value", "-n value", "-nvalue", and (as urfave/cli does) the single
 * dash long form "-name value".  Errors are one line naming the command and
 * the argument. */
#include "cli_internal.h"
#include <errno.h>
#include <string.h>
#include <strings.h>

static const struct cli_opt *find_long(const struct cli_opt *opts, const char *name, size_t len) {
  for (const struct cli_opt *o = opts; o && o->lng; o++)
    if (strlen(o->lng) == len && strncmp(o->lng, name, len) == 0)
      return o;
  return NULL;
}

static const struct cli_opt *find_short(const struct cli_opt *opts, char c) {
  for (const struct cli_opt *o = opts; o && o->lng; o++)
    if (o->shrt && o->shrt == c)
      return o;
  return NULL;
}

static int set_value(const char *cmd, const struct cli_opt *o, const char *val, bool explicit_val,
                     hv_error_t *err) {
  switch (o->kind) {
  case CLI_FLAG:
    if (!explicit_val || strcasecmp(val, "true") == 0 || strcmp(val, "1") == 0)
      *(bool *)o->ptr = true;
    else if (strcasecmp(val, "false") == 0 || strcmp(val, "0") == 0)
      *(bool *)o->ptr = false;
    else
      return hv_error(err, 0, "%s: --%s: invalid boolean \"%s\"", cmd, o->lng, val);
    return 0;
  case CLI_STR:
    *(const char **)o->ptr = val;
    return 0;
  case CLI_INT: {
    char *end;
    errno = 0;
    long n = strtol(val, &end, 10);
    if (!*val || *end || errno || n < 0 || n > 1 << 20)
      return hv_error(err, 0, "%s: --%s: invalid number \"%s\"", cmd, o->lng, val);
    *(int *)o->ptr = (int)n;
    return 0;
  }
  case CLI_STRV: {
    char ***v = o->ptr;
    size_t n = hv_strv_len(*v);
    char **nv = realloc(*v, (n + 2) * sizeof(char *));
    if (!nv)
      abort();
    nv[n] = (char *)val;
    nv[n + 1] = NULL;
    *v = nv;
    return 0;
  }
  }
  return -1;
}

int cli_parse(const char *cmd, const struct cli_opt *opts, int argc, char **argv,
              bool stop_at_positional, char ***pos, size_t *npos, hv_error_t *err) {
  char **p = hv_xmalloc0((size_t)(argc + 1) * sizeof(char *));
  size_t n = 0;
  bool only_pos = false;
  for (int i = 0; i < argc; i++) {
    char *a = argv[i];
    if (only_pos || a[0] != '-' || a[1] == 0) {
      p[n++] = a;
      if (stop_at_positional)
        only_pos = true;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_pos = true;
      continue;
    }
    const struct cli_opt *o = NULL;
    const char *val = NULL;
    bool explicit_val = false;
    const char *name = a + (a[1] == '-' ? 2 : 1);
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    if (a[1] == '-' || len > 1)
      o = find_long(opts, name, len);
    if (o && eq) {
      val = eq + 1;
      explicit_val = true;
    }
    if (!o && a[1] != '-') {
      /* -x, -xVALUE, or clustered flags -dt */
      o = find_short(opts, a[1]);
      if (o && a[2]) {
        if (o->kind == CLI_FLAG) {
          for (const char *c = a + 1; *c; c++) {
            const struct cli_opt *f = find_short(opts, *c);
            if (!f || f->kind != CLI_FLAG) {
              free(p);
              return hv_error(err, 0, "%s: unknown flag \"-%c\" in \"%s\"", cmd, *c, a);
            }
            *(bool *)f->ptr = true;
          }
          continue;
        }
        val = a + 2;
        explicit_val = true;
      }
    }
    if (!o) {
      free(p);
      return hv_error(err, 0, "%s: unknown flag \"%.*s\" (see `hvrun help`)", cmd,
                      (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
    }
    if (o->kind != CLI_FLAG && !explicit_val) {
      if (i + 1 >= argc) {
        free(p);
        return hv_error(err, 0, "%s: flag --%s needs a value", cmd, o->lng);
      }
      val = argv[++i];
    }
    if (set_value(cmd, o, val, explicit_val, err) < 0) {
      free(p);
      return -1;
    }
  }
  *pos = p;
  *npos = n;
  return 0;
}

int cli_want_args(const char *cmd, size_t npos, size_t min, size_t max, const char *usage,
                  hv_error_t *err) {
  if (npos < min)
    return hv_error(err, 0, "%s: missing argument (usage: hvrun %s %s)", cmd, cmd, usage);
  if (npos > max)
    return hv_error(err, 0, "%s: too many arguments (usage: hvrun %s %s)", cmd, cmd, usage);
  return 0;
}

int cli_parse_size(const char *what, const char *s, bool allow_minus_one, int64_t *out,
                   hv_error_t *err) {
  if (allow_minus_one && strcmp(s, "-1") == 0) {
    *out = -1;
    return 0;
  }
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno || v < 0)
    return hv_error(err, 0, "%s: invalid size \"%s\" (e.g. 64m, 1g, 512k)", what, s);
  double mul = 1;
  switch (*end) {
  case 'k': case 'K': mul = 1024.0; end++; break;
  case 'm': case 'M': mul = 1024.0 * 1024; end++; break;
  case 'g': case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
  case 't': case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
  default: break;
  }
  if (*end == 'b' || *end == 'B')
    end++;
  if (*end || v * mul > 9.2e18)
    return hv_error(err, 0, "%s: invalid size \"%s\" (e.g. 64m, 1g, 512k)", what, s);
  *out = (int64_t)(v * mul);
  return 0;
}

int cli_parse_u64(const char *what, const char *s, uint64_t *out, hv_error_t *err) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (!*s || *end || errno || s[0] == '-')
    return hv_error(err, 0, "%s: invalid number \"%s\"", what, s);
  *out = v;
  return 0;
}

int cli_parse_i64(const char *what, const char *s, int64_t *out, hv_error_t *err) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end || errno)
    return hv_error(err, 0, "%s: invalid number \"%s\"", what, s);
  *out = v;
  return 0;
}
