/* refs.c: image references (name:tag -> manifest digest) in refs.json.
 * Readers need no lock (the file is replaced atomically); writers hold
 * refs.lock around read-modify-write. */
#include "store_internal.h"
#include <ctype.h>
#include <errno.h>
#include <string.h>

static bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/* path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | -+ */
static bool component_ok(const char *s, size_t n) {
  if (!n || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
    return false;
  for (size_t i = 0; i < n; i++) {
    if (is_lower_alnum(s[i]))
      continue;
    if (s[i] == '.' || s[i] == '_') {
      size_t j = i + 1;
      if (s[i] == '_' && j < n && s[j] == '_')
        j++;
      if (j >= n || !is_lower_alnum(s[j]))
        return false;
      i = j - 1;
    } else if (s[i] == '-') {
      while (i < n && s[i] == '-')
        i++;
      if (i >= n || !is_lower_alnum(s[i]))
        return false;
    } else {
      return false;
    }
  }
  return true;
}

/* A registry host: [A-Za-z0-9.-]+ with an optional :port. */
static bool domain_ok(const char *s, size_t n) {
  size_t i = 0;
  for (; i < n && s[i] != ':'; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
      return false;
  if (i == 0)
    return false;
  if (i < n) {
    if (i + 1 == n)
      return false;
    for (size_t j = i + 1; j < n; j++)
      if (!isdigit((unsigned char)s[j]))
        return false;
  }
  return true;
}

static bool tag_ok(const char *t) {
  size_t n = strlen(t);
  if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
      return false;
  return true;
}

int hv_ref_normalize(const char *ref, char **out, hv_error_t *err) {
  if (!ref || !*ref)
    return hv_error(err, 0, "invalid reference ``: empty");
  if (strchr(ref, '@'))
    return hv_error(err, 0, "invalid reference `%s`: digests (@sha256:...) cannot name an image",
                    ref);
  const char *slash = strrchr(ref, '/');
  const char *colon = strrchr(slash ? slash : ref, ':');
  cleanup_free char *name = colon ? strndup(ref, (size_t)(colon - ref)) : hv_xstrdup(ref);
  const char *tag = colon ? colon + 1 : "latest";
  if (!tag_ok(tag))
    return hv_error(err, 0,
                    "invalid reference `%s`: bad tag `%s` (want [A-Za-z0-9_][A-Za-z0-9_.-]*, "
                    "at most 128)", ref, tag);
  if (strlen(name) > 255)
    return hv_error(err, 0, "invalid reference `%s`: name longer than 255 characters", ref);
  const char *p = name;
  bool first = true;
  while (true) {
    const char *end = strchr(p, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    bool ok = component_ok(p, n);
    /* The first of several components may be a registry host. */
    if (!ok && first && end)
      ok = domain_ok(p, n) && (memchr(p, '.', n) || memchr(p, ':', n) ||
                               (n == 9 && !strncmp(p, "localhost", 9)));
    if (!ok)
      return hv_error(err, 0,
                      "invalid reference `%s`: bad name component `%.*s` (lowercase letters, "
                      "digits and . _ __ - separators)", ref, (int)n, p);
    if (!end)
      break;
    p = end + 1;
    first = false;
  }
  *out = hv_xasprintf("%s:%s", name, tag);
  return 0;
}

int hv_refs_load(struct hv_image_store *s, json_t **refs, hv_error_t *err) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  cleanup_free char *path = hv_xasprintf("%s/refs.json", s->dir);
  hv_error_t rerr = NULL;
  if (hv_read_file(path, &text, &len, &rerr) < 0) {
    if (rerr->errno_ == ENOENT) {
      hv_error_release(&rerr);
      *refs = json_object();
      return 0;
    }
    *err = rerr;
    return -1;
  }
  json_error_t je = {0};
  cleanup_json json_t *doc = json_loadb(text, len, 0, &je);
  json_t *r = doc ? json_object_get(doc, "refs") : NULL;
  if (!json_is_object(r))
    return hv_error(err, 0, "%s:%d: corrupt refs file: %s", path, je.line,
                    doc ? "no \"refs\" object" : je.text);
  *refs = json_incref(r);
  return 0;
}

int hv_refs_save(struct hv_image_store *s, json_t *refs, hv_error_t *err) {
  cleanup_json json_t *doc = json_pack("{s:O}", "refs", refs);
  cleanup_free char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (!text)
    return hv_error(err, ENOMEM, "encode refs");
  size_t len = strlen(text);
  text[len] = 0;
  cleanup_free char *withnl = hv_xasprintf("%s\n", text);
  return hv_write_file_atomic(s->dirfd, "refs.json", withnl, len + 1, 0600, err);
}

static bool is_hex(const char *s) {
  if (!*s)
    return false;
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
      return false;
  return true;
}

int hv_refs_resolve(struct hv_image_store *s, const char *ref, char **digest, hv_error_t *err) {
  if (!ref || !*ref)
    return hv_error(err, 0, "invalid reference ``: empty");
  cleanup_json json_t *refs = NULL;
  if (hv_refs_load(s, &refs, err) < 0)
    return -1;
  if (!strncmp(ref, "sha256:", 7)) {
    if (hv_digest_check(ref, "reference", err) < 0)
      return -1;
    if (!hv_blob_exists(s, ref))
      return hv_error(err, 0, "image `%s` not found in store `%s`", ref, s->dir);
    *digest = hv_xstrdup(ref);
    return 0;
  }
  hv_error_t nerr = NULL;
  cleanup_free char *canon = NULL;
  if (hv_ref_normalize(ref, &canon, &nerr) == 0) {
    json_t *d = json_object_get(refs, canon);
    if (json_is_string(d)) {
      *digest = hv_xstrdup(json_string_value(d));
      return 0;
    }
  }
  /* A short id: a unique prefix (>= 6 hex digits) of an image digest. */
  if (strlen(ref) >= 6 && strlen(ref) <= HV_DIGEST_HEX && is_hex(ref)) {
    const char *key, *found = NULL;
    json_t *v;
    json_object_foreach(refs, key, v) {
      const char *d = json_string_value(v);
      if (d && !strncmp(d + 7, ref, strlen(ref))) {
        if (found && strcmp(found, d) != 0) {
          hv_error_release(&nerr);
          return hv_error(err, 0, "image id `%s` is ambiguous", ref);
        }
        found = d;
      }
    }
    if (found) {
      hv_error_release(&nerr);
      *digest = hv_xstrdup(found);
      return 0;
    }
  }
  if (nerr) {
    *err = nerr;
    return -1;
  }
  return hv_error(err, 0, "image `%s` not found in store `%s`", canon, s->dir);
}
