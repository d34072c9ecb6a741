/* oci_internal.h: private contract between the OCI parser files
 * (oci_parse*.c, oci_free.c, json_pos.c) and policy.c.  Not for other
 * folders: they use runtime.h only. */
#ifndef HVRUN_OCI_INTERNAL_H
#define HVRUN_OCI_INTERNAL_H
#include "runtime.h"

/* ---- json_pos.c: where is a value in the original text? ---------- */

/* One step of a path into a JSON document: an object key, or (key ==
 * NULL) an array index. */
struct hv_json_step {
  const char *key;
  size_t index;
};
#define HV_JSON_MAX_DEPTH 24

/* Walk `path` (n steps) through `text` and report the 1-based line and
 * column of the deepest value that exists along it (the whole document
 * for n == 0).  Returns how many steps matched (n when the value exists),
 * or -1 if the text cannot be scanned.  Columns count characters (UTF-8
 * continuation bytes do not advance), like jansson's.  When an object has
 * a key twice, the last one wins, as in jansson. */
int hv_json_pos(const char *text, size_t len, const struct hv_json_step *path, size_t n,
                unsigned *line, unsigned *col);
/* Line/column (1-based) of byte offset `off`. */
void hv_json_offset_to_linecol(const char *text, size_t len, size_t off, unsigned *line,
                               unsigned *col);

/* ---- parser context shared by oci_parse*.c ----------------------- */

typedef struct oci_ctx {
  const char *text;            /* original document, for positions */
  size_t len;
  const char *name;            /* file name used in messages */
  hv_error_t *err;
  struct hv_json_step path[HV_JSON_MAX_DEPTH];
  size_t depth;
} oci_ctx;

/* Decode text into a JSON object; syntax errors become
 * "<name>:<line>:<col>: syntax error: ...". */
int oci_decode(oci_ctx *c, json_t **out);
/* Report an error about the value at the current path (or, if it does not
 * exist, the deepest enclosing value):
 * "<name>:<line>:<col>: <path>: <message>". */
int oci_fail(oci_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void oci_push_key(oci_ctx *c, const char *key);
void oci_push_index(oci_ctx *c, size_t index);
void oci_pop(oci_ctx *c);
const char *oci_type_name(const json_t *j);
/* Fail unless j has type t ("expected object, got string"). */
int oci_expect(oci_ctx *c, const json_t *j, json_type t);

/* Field getters.  Each looks up `key` in object `obj` (absent or null =
 * not present: leaves *out alone, returns 0, or fails if `required`),
 * checks the type and range, and fills *out (and *has).  They return <0
 * on error with the message already in c->err. */
int oci_get_string(oci_ctx *c, json_t *obj, const char *key, bool required, char **out);
int oci_get_bool(oci_ctx *c, json_t *obj, const char *key, bool *out, bool *has);
int oci_get_int(oci_ctx *c, json_t *obj, const char *key, bool required, int64_t min, int64_t max,
                int64_t *out, bool *has);
/* Range-checked integer value of j itself (error at the current path). */
int oci_int_value(oci_ctx *c, json_t *j, int64_t min, int64_t max, int64_t *out);
int oci_get_u32(oci_ctx *c, json_t *obj, const char *key, bool required, uint32_t *out, bool *has);
int oci_get_u64(oci_ctx *c, json_t *obj, const char *key, bool required, uint64_t *out, bool *has);
int oci_get_strv(oci_ctx *c, json_t *obj, const char *key, bool required, char ***out);
/* A {"k":"v",...} object into key/value pairs. */
int oci_get_keyvals(oci_ctx *c, json_t *obj, const char *key, struct hv_oci_keyval **out,
                    size_t *n);
/* Look up an optional array/object member: returns 1 and sets *out when
 * present with the right type, 0 when absent/null, <0 on a wrong type. */
int oci_get_member(oci_ctx *c, json_t *obj, const char *key, json_type t, json_t **out);
int oci_get_idmaps(oci_ctx *c, json_t *obj, const char *key, struct hv_oci_idmap **out,
                   size_t *n);

/* Object parsers (the current path is the object's own path). */
int oci_parse_process_obj(oci_ctx *c, json_t *j, struct hv_oci_process *p);
int oci_parse_resources_obj(oci_ctx *c, json_t *j, struct hv_oci_resources *r);
int oci_parse_linux_obj(oci_ctx *c, json_t *j, struct hv_oci_config *cfg);
int oci_parse_seccomp_obj(oci_ctx *c, json_t *j, struct hv_oci_seccomp *s);
int oci_parse_hooks_obj(oci_ctx *c, json_t *j, struct hv_oci_hooks *h);

/* Capability name ("CAP_CHOWN") -> number, or -1. */
int oci_cap_from_name(const char *name);

/* Parse a standalone linux.seccomp document (policy --security-opt
 * seccomp=FILE and the built-in default profile). */
int hv_oci_parse_seccomp(const char *text, size_t len, const char *name,
                         struct hv_oci_seccomp **out, hv_error_t *err);

/* oci_free.c */
void hv_oci_seccomp_free(struct hv_oci_seccomp *s);
void hv_oci_keyvals_free(struct hv_oci_keyval *kv, size_t n);
void hv_oci_hooks_clear(struct hv_oci_hooks *h);

/* The built-in seccomp profile (runtime/seccomp-default.json, embedded
 * by runtime/module.mk). */
extern const char hv_seccomp_default_json[];
extern const size_t hv_seccomp_default_json_len;

#endif
