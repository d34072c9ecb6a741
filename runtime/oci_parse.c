/* oci_parse.c: config.json entry points and the top-level fields (root,
 * hostname, mounts, hooks, annotations).  process, linux, resources and
 * seccomp live in their own oci_parse_*.c files and are reused by the
 * standalone exec --process / update --resources / seccomp documents. */
#include "oci_internal.h"
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

static int parse_mount(oci_ctx *c, json_t *j, struct hv_oci_mount *m) {
  int r = oci_expect(c, j, JSON_OBJECT);
  if (r >= 0)
    r = oci_get_string(c, j, "destination", true, &m->destination);
  if (r >= 0 && m->destination[0] != '/') {
    oci_push_key(c, "destination");
    r = oci_fail(c, "must be an absolute path (got \"%s\")", m->destination);
    oci_pop(c);
  }
  if (r >= 0)
    r = oci_get_string(c, j, "type", false, &m->type);
  if (r >= 0)
    r = oci_get_string(c, j, "source", false, &m->source);
  if (r >= 0)
    r = oci_get_strv(c, j, "options", false, &m->options);
  if (r >= 0)
    r = oci_get_idmaps(c, j, "uidMappings", &m->uid_mappings, &m->n_uid_mappings);
  if (r >= 0)
    r = oci_get_idmaps(c, j, "gidMappings", &m->gid_mappings, &m->n_gid_mappings);
  return r;
}

static int parse_mounts(oci_ctx *c, json_t *root, struct hv_oci_config *cfg) {
  json_t *arr = NULL;
  int r = oci_get_member(c, root, "mounts", JSON_ARRAY, &arr);
  if (r <= 0)
    return r;
  oci_push_key(c, "mounts");
  cfg->n_mounts = json_array_size(arr);
  cfg->mounts = hv_xmalloc0(cfg->n_mounts * sizeof(*cfg->mounts));
  for (size_t i = 0; i < cfg->n_mounts && r >= 0; i++) {
    oci_push_index(c, i);
    r = parse_mount(c, json_array_get(arr, i), &cfg->mounts[i]);
    oci_pop(c);
  }
  oci_pop(c);
  return r;
}

static int parse_hook_list(oci_ctx *c, json_t *hooks, const char *key, struct hv_oci_hook **out,
                           size_t *n) {
  json_t *arr = NULL;
  int r = oci_get_member(c, hooks, key, JSON_ARRAY, &arr);
  if (r <= 0)
    return r;
  oci_push_key(c, key);
  *n = json_array_size(arr);
  *out = hv_xmalloc0(*n * sizeof(**out));
  for (size_t i = 0; i < *n && r >= 0; i++) {
    struct hv_oci_hook *h = &(*out)[i];
    json_t *e = json_array_get(arr, i);
    oci_push_index(c, i);
    r = oci_expect(c, e, JSON_OBJECT);
    if (r >= 0)
      r = oci_get_string(c, e, "path", true, &h->path);
    if (r >= 0 && h->path[0] != '/') {
      oci_push_key(c, "path");
      r = oci_fail(c, "must be an absolute path (got \"%s\")", h->path);
      oci_pop(c);
    }
    if (r >= 0)
      r = oci_get_strv(c, e, "args", false, &h->args);
    if (r >= 0)
      r = oci_get_strv(c, e, "env", false, &h->env);
    int64_t t = 0;
    if (r >= 0)
      r = oci_get_int(c, e, "timeout", false, 1, INT_MAX, &t, &h->has_timeout);
    h->timeout = (int)t;
    oci_pop(c);
  }
  oci_pop(c);
  return r;
}

int oci_parse_hooks_obj(oci_ctx *c, json_t *j, struct hv_oci_hooks *h) {
  int r = oci_expect(c, j, JSON_OBJECT);
  if (r >= 0)
    r = parse_hook_list(c, j, "prestart", &h->prestart, &h->n_prestart);
  if (r >= 0)
    r = parse_hook_list(c, j, "createRuntime", &h->create_runtime, &h->n_create_runtime);
  if (r >= 0)
    r = parse_hook_list(c, j, "createContainer", &h->create_container, &h->n_create_container);
  if (r >= 0)
    r = parse_hook_list(c, j, "startContainer", &h->start_container, &h->n_start_container);
  if (r >= 0)
    r = parse_hook_list(c, j, "poststart", &h->poststart, &h->n_poststart);
  if (r >= 0)
    r = parse_hook_list(c, j, "poststop", &h->poststop, &h->n_poststop);
  return r;
}

static int parse_config(oci_ctx *c, json_t *doc, struct hv_oci_config *cfg) {
  int r = oci_get_string(c, doc, "ociVersion", true, &cfg->oci_version);
  if (r < 0)
    return r;
  if (strncmp(cfg->oci_version, "1.", 2) != 0) {
    oci_push_key(c, "ociVersion");
    r = oci_fail(c, "unsupported version \"%s\" (expected 1.x)", cfg->oci_version);
    oci_pop(c);
    return r;
  }

  json_t *root = NULL;
  r = oci_get_member(c, doc, "root", JSON_OBJECT, &root);
  if (r < 0)
    return r;
  if (r == 0) {
    oci_push_key(c, "root");
    r = oci_fail(c, "required field is missing");
    oci_pop(c);
    return r;
  }
  oci_push_key(c, "root");
  r = oci_get_string(c, root, "path", true, &cfg->root.path);
  if (r >= 0 && !cfg->root.path[0]) {
    oci_push_key(c, "path");
    r = oci_fail(c, "must not be empty");
    oci_pop(c);
  }
  if (r >= 0)
    r = oci_get_bool(c, root, "readonly", &cfg->root.readonly, NULL);
  oci_pop(c);
  if (r < 0)
    return r;

  json_t *proc = NULL;
  r = oci_get_member(c, doc, "process", JSON_OBJECT, &proc);
  if (r < 0)
    return r;
  if (r == 0) {
    oci_push_key(c, "process");
    r = oci_fail(c, "required field is missing");
    oci_pop(c);
    return r;
  }
  cfg->process = hv_xmalloc0(sizeof(*cfg->process));
  oci_push_key(c, "process");
  r = oci_parse_process_obj(c, proc, cfg->process);
  oci_pop(c);
  if (r < 0)
    return r;

  if ((r = oci_get_string(c, doc, "hostname", false, &cfg->hostname)) < 0 ||
      (r = oci_get_string(c, doc, "domainname", false, &cfg->domainname)) < 0 ||
      (r = parse_mounts(c, doc, cfg)) < 0)
    return r;

  json_t *hooks = NULL;
  r = oci_get_member(c, doc, "hooks", JSON_OBJECT, &hooks);
  if (r < 0)
    return r;
  if (r > 0) {
    oci_push_key(c, "hooks");
    r = oci_parse_hooks_obj(c, hooks, &cfg->hooks);
    oci_pop(c);
    if (r < 0)
      return r;
  }
  r = oci_get_keyvals(c, doc, "annotations", &cfg->annotations, &cfg->n_annotations);
  if (r < 0)
    return r;

  json_t *lin = NULL;
  r = oci_get_member(c, doc, "linux", JSON_OBJECT, &lin);
  if (r < 0)
    return r;
  if (r > 0) {
    oci_push_key(c, "linux");
    r = oci_parse_linux_obj(c, lin, cfg);
    oci_pop(c);
    if (r < 0)
      return r;
  }
  return 0;
}

int hv_oci_parse(const char *text, size_t len, const char *name, struct hv_oci_config **out,
                 hv_error_t *err) {
  oci_ctx c = {.text = text, .len = len, .name = name ? name : "config.json", .err = err};
  json_t *doc = NULL;
  int r = oci_decode(&c, &doc);
  if (r < 0)
    return r;
  struct hv_oci_config *cfg = hv_xmalloc0(sizeof(*cfg));
  cfg->raw = doc;
  r = parse_config(&c, doc, cfg);
  if (r < 0) {
    hv_oci_free(cfg);
    return r;
  }
  *out = cfg;
  return 0;
}

int hv_oci_load(const char *bundle, struct hv_oci_config **out, hv_error_t *err) {
  if (!bundle || !*bundle)
    bundle = ".";
  char abs[PATH_MAX];
  if (!realpath(bundle, abs))
    return hv_error(err, errno, "bundle `%s`", bundle);
  /* Messages name the file the way the user can find it. */
  cleanup_free char *name = strcmp(bundle, ".") == 0 ? hv_xstrdup("config.json")
                            : hv_xasprintf("%s%sconfig.json", bundle,
                                           bundle[strlen(bundle) - 1] == '/' ? "" : "/");
  cleanup_free char *path = hv_xasprintf("%s/config.json", abs);
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (hv_read_file(path, &text, &len, err) < 0)
    return -1;
  struct hv_oci_config *cfg = NULL;
  if (hv_oci_parse(text, len, name, &cfg, err) < 0)
    return -1;
  cfg->bundle = hv_xstrdup(abs);
  /* The root filesystem must exist for either backend; saying so here,
   * with the position of root.path, beats a mount error later. */
  cleanup_free char *rootfs = cfg->root.path[0] == '/' ? hv_xstrdup(cfg->root.path)
                                                       : hv_xasprintf("%s/%s", abs, cfg->root.path);
  struct stat sb;
  int st = stat(rootfs, &sb), e = errno;
  if (st < 0 || !S_ISDIR(sb.st_mode)) {
    oci_ctx c = {.text = text, .len = len, .name = name, .err = err};
    oci_push_key(&c, "root");
    oci_push_key(&c, "path");
    if (st < 0)
      oci_fail(&c, "`%s`: %s", rootfs, strerror(e));
    else
      oci_fail(&c, "`%s` is not a directory", rootfs);
    hv_oci_free(cfg);
    return -1;
  }
  *out = cfg;
  return 0;
}

int hv_oci_parse_process(const char *text, size_t len, const char *name,
                         struct hv_oci_process **out, hv_error_t *err) {
  oci_ctx c = {.text = text, .len = len, .name = name ? name : "process.json", .err = err};
  cleanup_json json_t *doc = NULL;
  int r = oci_decode(&c, &doc);
  if (r < 0)
    return r;
  struct hv_oci_process *p = hv_xmalloc0(sizeof(*p));
  r = oci_parse_process_obj(&c, doc, p);
  if (r < 0) {
    hv_oci_process_free(p);
    return r;
  }
  *out = p;
  return 0;
}

int hv_oci_parse_resources(const char *text, size_t len, const char *name,
                           struct hv_oci_resources *out, hv_error_t *err) {
  oci_ctx c = {.text = text, .len = len, .name = name ? name : "resources.json", .err = err};
  cleanup_json json_t *doc = NULL;
  int r = oci_decode(&c, &doc);
  if (r < 0)
    return r;
  struct hv_oci_resources res = {0};
  r = oci_parse_resources_obj(&c, doc, &res);
  if (r < 0) {
    hv_oci_resources_clear(&res);
    return r;
  }
  *out = res;
  return 0;
}

int hv_oci_parse_seccomp(const char *text, size_t len, const char *name,
                         struct hv_oci_seccomp **out, hv_error_t *err) {
  oci_ctx c = {.text = text, .len = len, .name = name ? name : "seccomp.json", .err = err};
  cleanup_json json_t *doc = NULL;
  int r = oci_decode(&c, &doc);
  if (r < 0)
    return r;
  struct hv_oci_seccomp *s = hv_xmalloc0(sizeof(*s));
  r = oci_parse_seccomp_obj(&c, doc, s);
  if (r < 0) {
    hv_oci_seccomp_free(s);
    return r;
  }
  *out = s;
  return 0;
}

const char *hv_oci_annotation(const struct hv_oci_config *c, const char *key) {
  for (size_t i = 0; c && i < c->n_annotations; i++)
    if (strcmp(c->annotations[i].key, key) == 0)
      return c->annotations[i].value;
  return NULL;
}
