/* json_pos.c: find the line:column of a value in JSON text by its path.
 *
 * jansson reports positions only for syntax errors, but a good semantic
 * error ("process.rlimits[2].type: unknown rlimit") should point at the
 * offending value too.  This is a small scanner over the original text: it
 * understands just enough JSON (strings with escapes, nesting) to walk
 * object keys and array indices; it never builds values. */
#include "oci_internal.h"
#include <string.h>

struct scanner {
  const char *t;
  size_t len, i;
};

static void skip_ws(struct scanner *s) {
  while (s->i < s->len && (s->t[s->i] == ' ' || s->t[s->i] == '\t' || s->t[s->i] == '\n' ||
                           s->t[s->i] == '\r'))
    s->i++;
}

static bool at(struct scanner *s, char c) { return s->i < s->len && s->t[s->i] == c; }

/* At an opening quote: move past the closing quote. */
static int skip_string(struct scanner *s) {
  if (!at(s, '"'))
    return -1;
  for (s->i++; s->i < s->len; s->i++) {
    if (s->t[s->i] == '\\')
      s->i++;
    else if (s->t[s->i] == '"') {
      s->i++;
      return 0;
    }
  }
  return -1;
}

static int read_hex4(struct scanner *s, size_t p, unsigned *out) {
  if (p + 4 > s->len)
    return -1;
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    int h = hv_hex_digit(s->t[p + k]);
    if (h < 0)
      return -1;
    v = v * 16 + (unsigned)h;
  }
  *out = v;
  return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* At an opening quote: decode the string (escapes resolved) into a fresh
 * buffer, so keys written as "\u0074ype" still match "type". */
static int read_string(struct scanner *s, char **out) {
  if (!at(s, '"'))
    return -1;
  size_t start = ++s->i;
  /* Decoded text is never longer than the escaped text. */
  size_t end = start;
  while (end < s->len && s->t[end] != '"')
    end += s->t[end] == '\\' ? 2 : 1;
  if (end >= s->len)
    return -1;
  char *buf = hv_xmalloc0(end - start + 1), *o = buf;
  while (s->i < end) {
    char c = s->t[s->i++];
    if (c != '\\') {
      *o++ = c;
      continue;
    }
    char e = s->t[s->i++];
    switch (e) {
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'n': *o++ = '\n'; break;
    case 'r': *o++ = '\r'; break;
    case 't': *o++ = '\t'; break;
    case 'u': {
      unsigned cp, lo;
      if (read_hex4(s, s->i, &cp) < 0)
        goto bad;
      s->i += 4;
      if (cp >= 0xD800 && cp < 0xDC00 && s->i + 6 <= end && s->t[s->i] == '\\' &&
          s->t[s->i + 1] == 'u' && read_hex4(s, s->i + 2, &lo) == 0 && lo >= 0xDC00 &&
          lo < 0xE000) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        s->i += 6;
      }
      o += put_utf8(o, cp);
      break;
    }
    default: *o++ = e; break; /* \" \\ \/ */
    }
  }
  *o = 0;
  s->i = end + 1;
  *out = buf;
  return 0;
bad:
  free(buf);
  return -1;
}

/* Skip one value of any kind (containers by bracket depth; strings are
 * skipped whole so brackets inside them do not count). */
static int skip_value(struct scanner *s) {
  skip_ws(s);
  if (s->i >= s->len)
    return -1;
  char c = s->t[s->i];
  if (c == '"')
    return skip_string(s);
  if (c == '{' || c == '[') {
    size_t depth = 0;
    while (s->i < s->len) {
      c = s->t[s->i];
      if (c == '"') {
        if (skip_string(s) < 0)
          return -1;
        continue;
      }
      if (c == '{' || c == '[')
        depth++;
      else if (c == '}' || c == ']') {
        if (--depth == 0) {
          s->i++;
          return 0;
        }
      }
      s->i++;
    }
    return -1;
  }
  /* number, true, false, null */
  size_t start = s->i;
  while (s->i < s->len && !strchr(",]} \t\r\n", s->t[s->i]))
    s->i++;
  return s->i > start ? 0 : -1;
}

/* In an object at s->i: find the value of `key` (the last occurrence). */
static int find_key(struct scanner *s, const char *key, size_t *value_off) {
  if (!at(s, '{'))
    return 0;
  s->i++;
  bool found = false;
  for (;;) {
    skip_ws(s);
    if (at(s, '}'))
      break;
    char *k = NULL;
    if (read_string(s, &k) < 0)
      return -1;
    bool match = strcmp(k, key) == 0;
    free(k);
    skip_ws(s);
    if (!at(s, ':'))
      return -1;
    s->i++;
    skip_ws(s);
    if (match) {
      found = true;
      *value_off = s->i;
    }
    if (skip_value(s) < 0)
      return -1;
    skip_ws(s);
    if (at(s, ','))
      s->i++;
    else if (at(s, '}'))
      break;
    else
      return -1;
  }
  return found ? 1 : 0;
}

static int find_index(struct scanner *s, size_t index, size_t *value_off) {
  if (!at(s, '['))
    return 0;
  s->i++;
  for (size_t k = 0;; k++) {
    skip_ws(s);
    if (at(s, ']'))
      return 0;
    if (k == index) {
      *value_off = s->i;
      return 1;
    }
    if (skip_value(s) < 0)
      return -1;
    skip_ws(s);
    if (at(s, ','))
      s->i++;
    else if (at(s, ']'))
      return 0;
    else
      return -1;
  }
}

void hv_json_offset_to_linecol(const char *text, size_t len, size_t off, unsigned *line,
                               unsigned *col) {
  unsigned l = 1, c = 1;
  for (size_t i = 0; i < off && i < len; i++) {
    unsigned char ch = (unsigned char)text[i];
    if (ch == '\n') {
      l++;
      c = 1;
    } else if ((ch & 0xC0) != 0x80) {
      c++;
    }
  }
  *line = l;
  *col = c;
}

int hv_json_pos(const char *text, size_t len, const struct hv_json_step *path, size_t n,
                unsigned *line, unsigned *col) {
  struct scanner s = {text, len, 0};
  skip_ws(&s);
  size_t value_off = s.i;
  size_t matched = 0;
  for (; matched < n; matched++) {
    s.i = value_off;
    size_t off = 0;
    int r = path[matched].key ? find_key(&s, path[matched].key, &off)
                              : find_index(&s, path[matched].index, &off);
    if (r < 0) {
      hv_json_offset_to_linecol(text, len, value_off, line, col);
      return -1;
    }
    if (r == 0)
      break;
    value_off = off;
  }
  hv_json_offset_to_linecol(text, len, value_off, line, col);
  return (int)matched;
}
