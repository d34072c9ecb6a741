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

int oci_decode(oci_ctx *c, json_t **out) {
  json_error_t je;
  json_t *j = json_loadb(c->text, c->len, 0, &je);
  if (!j) {
    /* jansson's column is 1-based and points past the bad token's start;
     * line 0/-1 means it could not tell (e.g. empty input). */
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

int oci_get_int(oci_ctx *c, json_t *obj, const char *key, bool required, int64_t min, int64_t max,
                int64_t *out, bool *has) {
  json_t *v = member(obj, key);
  if (!v)
    return required ? missing(c, key) : 0;
  oci_push_key(c, key);
  int r = oci_expect(c, v, JSON_INTEGER);
  if (r == 0) {
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
      r = min == 0 && x < 0 ? oci_fail(c, "must not be negative (got %lld)", (long long)x)
                            : oci_fail(c, "%lld is out of range [%lld, %lld]", (long long)x,
                                       (long long)min, (long long)max);
    else {
      *out = x;
      if (has)
        *has = true;
    }
  }
  oci_pop(c);
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

/* jansson's integers are signed 64-bit, so this covers [0, INT64_MAX];
 * larger literals are rejected by jansson itself. */
int oci_get_u64(oci_ctx *c, json_t *obj, const char *key, bool required, uint64_t *out, bool *has) {
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
