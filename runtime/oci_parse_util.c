/* oci_parse_util.c: the parser context (path stack, positioned errors)
 * and the typed field getters every oci_parse*.c file uses.  Keeping the
 * type checks here is what makes every wrong type produce the same
 * "<file>:<line>:<col>: <field.path>: expected X, got Y" line. */
#include "oci_internal.h"
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>

void oci_push_key(oci_ctx *c, const char *key) {
  if (c->depth < HV_JSON_MAX_DEPTH)
    c->path[c->depth] = (struct hv_json_step){key, 0};
  c->depth++;
}

void oci_push_index(oci_ctx *c, size_t index) {
  if (c->depth < HV_JSON_MAX_DEPTH)
    c->path[c->depth] = (struct hv_json_step){NULL, index};
  c->depth++;
}

void oci_pop(oci_ctx *c) {
  if (c->depth)
    c->depth--;
}

/* "process.rlimits[2].type" */
static char *path_string(const oci_ctx *c) {
  size_t n = c->depth < HV_JSON_MAX_DEPTH ? c->depth : HV_JSON_MAX_DEPTH;
  char *buf = NULL;
  size_t sz = 0;
  FILE *f = open_memstream(&buf, &sz);
  if (!f)
    abort();
  for (size_t i = 0; i < n; i++) {
    if (c->path[i].key)
      fprintf(f, "%s%s", i ? "." : "", c->path[i].key);
    else
      fprintf(f, "[%zu]", c->path[i].index);
  }
  fclose(f);
  return buf;
}

int oci_fail(oci_ctx *c, const char *fmt, ...) {
  if (!c->err || *c->err)
    return -1;
  va_list ap;
  va_start(ap, fmt);
  cleanup_free char *what = NULL;
  if (vasprintf(&what, fmt, ap) < 0)
    abort();
  va_end(ap);
  unsigned line = 1, col = 1;
  size_t n = c->depth < HV_JSON_MAX_DEPTH ? c->depth : HV_JSON_MAX_DEPTH;
  if (c->text)
    hv_json_pos(c->text, c->len, c->path, n, &line, &col);
  cleanup_free char *path = path_string(c);
  if (*path)
    return hv_error(c->err, 0, "%s:%u:%u: %s: %s", c->name, line, col, path, what);
  return hv_error(c->err, 0, "%s:%u:%u: %s", c->name, line, col, what);
}

/* jansson keeps integers in a signed 64-bit type and rejects larger
 * literals, but the spec has uint64 fields and Go writes e.g. an unlimited
 * rlimit as 18446744073709551615.  Such literals are rewritten (in a copy
 * given to jansson only) into marker strings "\x01u64:<digits>" that the
 * integer getters understand and every other getter rejects as an
 * integer.  Positions still come from the original text.  cfg->raw keeps
 * the marker strings; dumped and parsed again they read back the same. */
#define BIG_MARK "\x01u64:"

static bool big_literal(const char *d, size_t n) {
  static const char max[] = "9223372036854775807";
  return n > 19 || (n == 19 && memcmp(d, max, 19) > 0);
}

static char *patch_big_ints(const char *t, size_t len, size_t *out_len) {
  char *buf = NULL;
  size_t sz = 0;
  FILE *f = NULL;
  size_t copied = 0;
  for (size_t i = 0; i < len;) {
    if (t[i] == '"') {
      for (i++; i < len && t[i] != '"'; i++)
        if (t[i] == '\\')
          i++;
      i++;
      continue;
    }
    bool token_start = i == 0 || strchr(":[, \t\r\n", t[i - 1]);
    if (!(t[i] >= '0' && t[i] <= '9') || !token_start) {
      i++;
      continue;
    }
    size_t start = i;
    while (i < len && t[i] >= '0' && t[i] <= '9')
      i++;
    if (i < len && strchr(".eE", t[i]))
      continue; /* a real number: jansson copes */
    if (!big_literal(t + start, i - start))
      continue;
    if (!f && !(f = open_memstream(&buf, &sz)))
      abort();
    fwrite(t + copied, 1, start - copied, f);
    fprintf(f, "\"\\u0001u64:%.*s\"", (int)(i - start), t + start);
    copied = i;
  }
  if (!f)
    return NULL;
  fwrite(t + copied, 1, len - copied, f);
  fclose(f);
  *out_len = sz;
  return buf;
}

/* The digits of a rewritten big integer, or NULL. */
static const char *big_digits(const json_t *j) {
  const char *s = json_string_value(j);
  return s && strncmp(s, BIG_MARK, strlen(BIG_MARK)) == 0 ? s + strlen(BIG_MARK) : NULL;
}

int oci_decode(oci_ctx *c, json_t **out) {
  json_error_t je;
  size_t plen = 0;
  cleanup_free char *patched = patch_big_ints(c->text, c->len, &plen);
  json_t *j = patched ? json_loadb(patched, plen, 0, &je) : json_loadb(c->text, c->len, 0, &je);
  if (!j) {
    /* jansson's line/column are 1-based; <= 0 means it could not tell
     * (e.g. empty input). */
    int line = je.line > 0 ? je.line : 1, col = je.column > 0 ? je.column : 1;
    return hv_error(c->err, 0, "%s:%d:%d: syntax error: %s", c->name, line, col, je.text);
  }
  *out = j;
  if (!json_is_object(j)) {
    int r = oci_expect(c, j, JSON_OBJECT);
    json_decref(j);
    *out = NULL;
    return r;
  }
  return 0;
}

const char *oci_type_name(const json_t *j) {
  if (big_digits(j))
    return "integer";
  switch (json_typeof(j)) {
  case JSON_OBJECT: return "object";
  case JSON_ARRAY: return "array";
  case JSON_STRING: return "string";
  case JSON_INTEGER: return "integer";
  case JSON_REAL: return "number with a fraction";
  case JSON_TRUE:
  case JSON_FALSE: return "boolean";
  case JSON_NULL: return "null";
  }
  return "?";
}

static const char *expected_name(json_type t) {
  switch (t) {
  case JSON_OBJECT: return "object";
  case JSON_ARRAY: return "array";
  case JSON_STRING: return "string";
  case JSON_INTEGER: return "integer";
  case JSON_REAL: return "number";
  case JSON_TRUE:
  case JSON_FALSE: return "boolean";
  case JSON_NULL: return "null";
  }
  return "?";
}

int oci_expect(oci_ctx *c, const json_t *j, json_type t) {
  if (big_digits(j))
    return t == JSON_INTEGER ? 0 : oci_fail(c, "expected %s, got integer", expected_name(t));
  bool ok = json_typeof(j) == t || (t == JSON_TRUE && json_is_boolean(j)) ||
            (t == JSON_FALSE && json_is_boolean(j));
  if (ok)
    return 0;
  return oci_fail(c, "expected %s, got %s", expected_name(t), oci_type_name(j));
}

/* Absent and null are the same ("not given"), as with Go's encoding/json
 * that produced most config.json files in the wild. */
static json_t *member(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return json_is_null(v) ? NULL : v;
}

static int missing(oci_ctx *c, const char *key) {
  oci_push_key(c, key);
  int r = oci_fail(c, "required field is missing");
  oci_pop(c);
  return r;
}

int oci_get_member(oci_ctx *c, json_t *obj, const char *key, json_type t, json_t **out) {
  json_t *v = member(obj, key);
  if (!v)
    return 0;
  oci_push_key(c, key);
  int r = oci_expect(c, v, t);
  oci_pop(c);
  if (r < 0)
    return r;
  *out = v;
  return 1;
}

int oci_get_string(oci_ctx *c, json_t *obj, const char *key, bool required, char **out) {
  json_t *v = member(obj, key);
  if (!v)
    return required ? missing(c, key) : 0;
  oci_push_key(c, key);
  int r = oci_expect(c, v, JSON_STRING);
  oci_pop(c);
  if (r < 0)
    return r;
  free(*out);
  *out = hv_xstrdup(json_string_value(v));
  return 0;
}

int oci_get_bool(oci_ctx *c, json_t *obj, const char *key, bool *out, bool *has) {
  json_t *v = member(obj, key);
  if (!v)
    return 0;
  oci_push_key(c, key);
  int r = oci_expect(c, v, JSON_TRUE);
  oci_pop(c);
  if (r < 0)
    return r;
  *out = json_is_true(v);
  if (has)
    *has = true;
  return 0;
}

int oci_int_value(oci_ctx *c, json_t *v, int64_t min, int64_t max, int64_t *out) {
  int r = oci_expect(c, v, JSON_INTEGER);
  if (r < 0)
    return r;
  const char *big = big_digits(v);
  if (big)
    return oci_fail(c, "%s is out of range [%lld, %lld]", big, (long long)min, (long long)max);
  json_int_t x = json_integer_value(v);
  if (x < min || x > max)
    return min == 0 && x < 0 ? oci_fail(c, "must not be negative (got %lld)", (long long)x)
                             : oci_fail(c, "%lld is out of range [%lld, %lld]", (long long)x,
                                        (long long)min, (long long)max);
  *out = x;
  return 0;
}

int oci_get_int(oci_ctx *c, json_t *obj, const char *key, bool required, int64_t min, int64_t max,
                int64_t *out, bool *has) {
  json_t *v = member(obj, key);
  if (!v)
    return required ? missing(c, key) : 0;
  oci_push_key(c, key);
  int r = oci_int_value(c, v, min, max, out);
  oci_pop(c);
  if (r == 0 && has)
    *has = true;
  return r;
}

int oci_get_u32(oci_ctx *c, json_t *obj, const char *key, bool required, uint32_t *out, bool *has) {
  int64_t x;
  bool h = false;
  int r = oci_get_int(c, obj, key, required, 0, UINT32_MAX, &x, &h);
  if (r == 0 && h) {
    *out = (uint32_t)x;
    if (has)
      *has = true;
  }
  return r;
}

/* The full uint64 range, via the big-integer markers above INT64_MAX. */
int oci_get_u64(oci_ctx *c, json_t *obj, const char *key, bool required, uint64_t *out, bool *has) {
  json_t *v = member(obj, key);
  const char *big = v ? big_digits(v) : NULL;
  if (!big) {
    int64_t x;
    bool h = false;
    int r = oci_get_int(c, obj, key, required, 0, INT64_MAX, &x, &h);
    if (r == 0 && h) {
      *out = (uint64_t)x;
      if (has)
        *has = true;
    }
    return r;
  }
  errno = 0;
  char *end;
  unsigned long long x = strtoull(big, &end, 10);
  if (errno || *end) {
    oci_push_key(c, key);
    int r = oci_fail(c, "%s is out of range [0, %llu]", big, (unsigned long long)UINT64_MAX);
    oci_pop(c);
    return r;
  }
  *out = x;
  if (has)
    *has = true;
  return 0;
}

int oci_get_strv(oci_ctx *c, json_t *obj, const char *key, bool required, char ***out) {
  json_t *arr = NULL;
  int r = oci_get_member(c, obj, key, JSON_ARRAY, &arr);
  if (r < 0)
    return r;
  if (r == 0)
    return required ? missing(c, key) : 0;
  oci_push_key(c, key);
  size_t n = json_array_size(arr);
  char **v = hv_xmalloc0((n + 1) * sizeof(char *));
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(arr, i);
    oci_push_index(c, i);
    r = oci_expect(c, e, JSON_STRING);
    oci_pop(c);
    if (r < 0) {
      hv_strv_free(v);
      oci_pop(c);
      return r;
    }
    v[i] = hv_xstrdup(json_string_value(e));
  }
  oci_pop(c);
  hv_strv_free(*out);
  *out = v;
  return 0;
}

int oci_get_keyvals(oci_ctx *c, json_t *obj, const char *key, struct hv_oci_keyval **out,
                    size_t *n) {
  json_t *o = NULL;
  int r = oci_get_member(c, obj, key, JSON_OBJECT, &o);
  if (r <= 0)
    return r;
  oci_push_key(c, key);
  size_t cnt = json_object_size(o), i = 0;
  struct hv_oci_keyval *kv = hv_xmalloc0(cnt * sizeof(*kv));
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    oci_push_key(c, k);
    r = oci_expect(c, v, JSON_STRING);
    oci_pop(c);
    if (r < 0) {
      hv_oci_keyvals_free(kv, i);
      oci_pop(c);
      return r;
    }
    kv[i].key = hv_xstrdup(k);
    kv[i].value = hv_xstrdup(json_string_value(v));
    i++;
  }
  oci_pop(c);
  hv_oci_keyvals_free(*out, *n);
  *out = kv;
  *n = cnt;
  return 0;
}

int oci_get_idmaps(oci_ctx *c, json_t *obj, const char *key, struct hv_oci_idmap **out,
                   size_t *n) {
  json_t *arr = NULL;
  int r = oci_get_member(c, obj, key, JSON_ARRAY, &arr);
  if (r <= 0)
    return r;
  oci_push_key(c, key);
  size_t cnt = json_array_size(arr);
  struct hv_oci_idmap *m = hv_xmalloc0(cnt * sizeof(*m));
  for (size_t i = 0; i < cnt && r >= 0; i++) {
    json_t *e = json_array_get(arr, i);
    oci_push_index(c, i);
    r = oci_expect(c, e, JSON_OBJECT);
    if (r >= 0)
      r = oci_get_u32(c, e, "containerID", true, &m[i].container_id, NULL);
    if (r >= 0)
      r = oci_get_u32(c, e, "hostID", true, &m[i].host_id, NULL);
    if (r >= 0)
      r = oci_get_u32(c, e, "size", true, &m[i].size, NULL);
    /* A zero-sized or wrapping range is never what the author meant, and
     * the kernel would reject the whole map with a bare EINVAL. */
    if (r >= 0 && m[i].size == 0) {
      oci_push_key(c, "size");
      r = oci_fail(c, "must be greater than 0");
      oci_pop(c);
    }
    if (r >= 0 && ((uint64_t)m[i].container_id + m[i].size > (1ULL << 32) ||
                   (uint64_t)m[i].host_id + m[i].size > (1ULL << 32))) {
      oci_push_key(c, "size");
      r = oci_fail(c, "range %u+%u or %u+%u exceeds 2^32", m[i].container_id, m[i].size,
                   m[i].host_id, m[i].size);
      oci_pop(c);
    }
    oci_pop(c);
  }
  oci_pop(c);
  if (r < 0) {
    free(m);
    return r;
  }
  free(*out);
  *out = m;
  *n = cnt;
  return 0;
}
