/* policy.c: the one isolation policy (CLI flags such as --cpus, --memory,
 * --cap-add, --security-opt seccomp=...) applied on top of an OCI config,
 * so both backends only ever read the typed OCI model. */
#include "oci_internal.h"
#include <ctype.h>
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/capability.h>

#define CPU_PERIOD_US 100000

/* cfg->raw must say what the typed model says: the container backend
 * saves it for exec and delete, and hooks may read it.  Get or create the
 * object at raw.k1.k2... (NULL when there is no raw document). */
static json_t *raw_obj(struct hv_oci_config *c, const char *k1, const char *k2, const char *k3) {
  const char *keys[] = {k1, k2, k3};
  json_t *o = c->raw;
  for (size_t i = 0; o && i < 3 && keys[i]; i++) {
    json_t *next = json_object_get(o, keys[i]);
    if (!json_is_object(next)) {
      next = json_object();
      json_object_set_new(o, keys[i], next);
    }
    o = next;
  }
  return o;
}

static void raw_set(json_t *obj, const char *key, json_t *v) {
  if (obj)
    json_object_set_new(obj, key, v);
  else
    json_decref(v);
}

static json_t *strv_to_json(char **v) {
  json_t *a = json_array();
  for (size_t i = 0; v && v[i]; i++)
    json_array_append_new(a, json_string(v[i]));
  return a;
}

/* The capabilities a container gets unless told otherwise: the set the
 * widely used container default grants (docker's 14). */
static const char *const default_caps[] = {
    "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",  "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",     "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",   "CAP_AUDIT_WRITE",  NULL};

/* "net_admin", "NET_ADMIN" and "CAP_NET_ADMIN" all name CAP_NET_ADMIN. */
static char *cap_canonical(const char *name) {
  char *s = strncasecmp(name, "CAP_", 4) == 0 ? hv_xstrdup(name) : hv_xasprintf("CAP_%s", name);
  for (char *p = s; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  return s;
}

/* Capability numbers [0, n) known both to libcap and the kernel. */
static int cap_count(void) {
  int n = (int)cap_max_bits();
  return n > 0 && n <= 64 ? n : CAP_LAST_CAP + 1;
}

static int caps_edit(bool set[64], char **names, bool add, const char *flag, hv_error_t *err) {
  for (size_t i = 0; names && names[i]; i++) {
    if (strcasecmp(names[i], "ALL") == 0) {
      for (int c = 0; c < cap_count(); c++)
        set[c] = add;
      continue;
    }
    cleanup_free char *canon = cap_canonical(names[i]);
    int c = oci_cap_from_name(canon);
    if (c < 0 || c >= 64)
      return hv_error(err, 0, "%s: unknown capability \"%s\"", flag, names[i]);
    set[c] = add;
  }
  return 0;
}

static bool strv_has_all(char **v) {
  for (size_t i = 0; v && v[i]; i++)
    if (strcasecmp(v[i], "ALL") == 0)
      return true;
  return false;
}

static char **caps_to_strv(const bool set[64]) {
  size_t n = 0;
  char **v = hv_xmalloc0(65 * sizeof(char *));
  for (int c = 0; c < 64; c++) {
    if (!set[c])
      continue;
    char *lower = cap_to_name((cap_value_t)c);
    if (!lower)
      continue;
    char *canon = cap_canonical(lower);
    cap_free(lower);
    if (oci_cap_from_name(canon) != c) { /* libcap does not know it by name */
      free(canon);
      continue;
    }
    v[n++] = canon;
  }
  return v;
}

/* default set + add - drop, docker-style: "ALL" in drop starts from
 * nothing (then adds), "ALL" in add starts from everything (then drops). */
static int apply_caps(const struct hv_policy *p, struct hv_oci_config *c, hv_error_t *err) {
  struct hv_oci_process *proc = c->process;
  bool set[64] = {0};
  for (size_t i = 0; default_caps[i]; i++)
    set[oci_cap_from_name(default_caps[i])] = true;
  if (strv_has_all(p->cap_drop)) {
    if (caps_edit(set, p->cap_drop, false, "--cap-drop", err) < 0 ||
        caps_edit(set, p->cap_add, true, "--cap-add", err) < 0)
      return -1;
  } else {
    if (caps_edit(set, p->cap_add, true, "--cap-add", err) < 0 ||
        caps_edit(set, p->cap_drop, false, "--cap-drop", err) < 0)
      return -1;
  }
  struct hv_oci_capabilities *caps = proc->capabilities;
  if (!caps)
    caps = proc->capabilities = hv_xmalloc0(sizeof(*caps));
  hv_strv_free(caps->bounding);
  hv_strv_free(caps->effective);
  hv_strv_free(caps->permitted);
  hv_strv_free(caps->inheritable);
  hv_strv_free(caps->ambient);
  caps->bounding = caps_to_strv(set);
  caps->effective = caps_to_strv(set);
  caps->permitted = caps_to_strv(set);
  caps->inheritable = NULL;
  caps->ambient = NULL;
  json_t *rawproc = raw_obj(c, "process", NULL, NULL);
  raw_set(rawproc, "capabilities",
          json_pack("{s:o,s:o,s:o}", "bounding", strv_to_json(caps->bounding), "effective",
                    strv_to_json(caps->effective), "permitted", strv_to_json(caps->permitted)));
  return 0;
}

/* Parse a seccomp document, returning the typed profile and its JSON. */
static int load_seccomp(const char *text, size_t len, const char *name, struct hv_oci_seccomp **s,
                        json_t **doc, hv_error_t *err) {
  if (hv_oci_parse_seccomp(text, len, name, s, err) < 0)
    return -1;
  oci_ctx ctx = {.text = text, .len = len, .name = name, .err = err};
  return oci_decode(&ctx, doc);
}

static int apply_seccomp(const struct hv_policy *p, struct hv_oci_config *c, hv_error_t *err) {
  struct hv_oci_seccomp *s = NULL;
  json_t *doc = NULL;
  if (p->seccomp && strcmp(p->seccomp, "unconfined") == 0) {
    s = NULL;
  } else if (p->seccomp) {
    cleanup_free char *text = NULL;
    size_t len = 0;
    if (hv_read_file(p->seccomp, &text, &len, err) < 0)
      return hv_error_wrap(err, "--security-opt seccomp=%s", p->seccomp);
    /* The parser's message names the file and the position. */
    if (load_seccomp(text, len, p->seccomp, &s, &doc, err) < 0) {
      hv_oci_seccomp_free(s);
      return -1;
    }
  } else {
    if (load_seccomp(hv_seccomp_default_json, hv_seccomp_default_json_len,
                     "runtime/seccomp-default.json", &s, &doc, err) < 0) {
      hv_oci_seccomp_free(s);
      return hv_error_wrap(err, "built-in seccomp profile");
    }
  }
  hv_oci_seccomp_free(c->linux.seccomp);
  c->linux.seccomp = s;
  json_t *rawlinux = raw_obj(c, "linux", NULL, NULL);
  if (doc)
    raw_set(rawlinux, "seccomp", doc);
  else if (rawlinux)
    json_object_del(rawlinux, "seccomp");
  return 0;
}

static int apply_network(const struct hv_policy *p, struct hv_oci_config *c) {
  size_t w = 0;
  bool have = false;
  for (size_t i = 0; i < c->linux.n_namespaces; i++) {
    struct hv_oci_namespace *ns = &c->linux.namespaces[i];
    if (ns->flag == CLONE_NEWNET && p->network == HV_NET_HOST) {
      free(ns->type);
      free(ns->path);
      continue;
    }
    if (ns->flag == CLONE_NEWNET) {
      /* "none" means a fresh, empty namespace, not joining one. */
      free(ns->path);
      ns->path = NULL;
      have = true;
    }
    c->linux.namespaces[w++] = *ns;
  }
  c->linux.n_namespaces = w;
  if (p->network == HV_NET_NONE && !have) {
    struct hv_oci_namespace *v =
        realloc(c->linux.namespaces, (w + 1) * sizeof(struct hv_oci_namespace));
    if (!v)
      abort();
    v[w] = (struct hv_oci_namespace){hv_xstrdup("network"), CLONE_NEWNET, NULL};
    c->linux.namespaces = v;
    c->linux.n_namespaces = w + 1;
  }
  json_t *list = json_array();
  for (size_t i = 0; i < c->linux.n_namespaces; i++) {
    json_t *ns = json_pack("{s:s}", "type", c->linux.namespaces[i].type);
    if (c->linux.namespaces[i].path)
      json_object_set_new(ns, "path", json_string(c->linux.namespaces[i].path));
    json_array_append_new(list, ns);
  }
  raw_set(raw_obj(c, "linux", NULL, NULL), "namespaces", list);
  return 0;
}

static void append_throttle(json_t *raw_list_parent, const char *key,
                            struct hv_oci_throttle_device **dst, size_t *n,
                            const struct hv_oci_throttle_device *src, size_t m) {
  if (!m)
    return;
  if (raw_list_parent) {
    json_t *list = json_object_get(raw_list_parent, key);
    if (!json_is_array(list)) {
      list = json_array();
      json_object_set_new(raw_list_parent, key, list);
    }
    for (size_t i = 0; i < m; i++)
      json_array_append_new(list, json_pack("{s:I,s:I,s:I}", "major", (json_int_t)src[i].major,
                                            "minor", (json_int_t)src[i].minor, "rate",
                                            (json_int_t)src[i].rate));
  }
  struct hv_oci_throttle_device *v = realloc(*dst, (*n + m) * sizeof(*v));
  if (!v)
    abort();
  memcpy(v + *n, src, m * sizeof(*v));
  *dst = v;
  *n += m;
}

static bool valid_cpu_list(const char *s) {
  if (!*s)
    return false;
  for (const char *q = s; *q; q++)
    if (!isdigit((unsigned char)*q) && *q != ',' && *q != '-')
      return false;
  return isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[strlen(s) - 1]);
}

static int apply_resources(const struct hv_policy *p, struct hv_oci_config *c, hv_error_t *err) {
  struct hv_oci_resources *r = &c->linux.resources;
  if (p->cpus_milli) {
    r->cpu.has_period = r->cpu.has_quota = true;
    r->cpu.period = CPU_PERIOD_US;
    r->cpu.quota = (int64_t)p->cpus_milli * CPU_PERIOD_US / 1000;
    r->present = true;
    json_t *cpu = raw_obj(c, "linux", "resources", "cpu");
    raw_set(cpu, "period", json_integer(CPU_PERIOD_US));
    raw_set(cpu, "quota", json_integer(r->cpu.quota));
  }
  if (p->cpuset_cpus) {
    if (!valid_cpu_list(p->cpuset_cpus))
      return hv_error(err, 0, "--cpuset-cpus: invalid CPU list \"%s\" (e.g. \"0-2,4\")",
                      p->cpuset_cpus);
    free(r->cpu.cpus);
    r->cpu.cpus = hv_xstrdup(p->cpuset_cpus);
    r->present = true;
    raw_set(raw_obj(c, "linux", "resources", "cpu"), "cpus", json_string(p->cpuset_cpus));
  }
  if (p->memory < 0)
    return hv_error(err, 0, "--memory: must be positive (got %lld)", (long long)p->memory);
  if (p->memory_swap && !p->memory)
    return hv_error(err, 0, "--memory-swap: requires --memory");
  if (p->memory_swap > 0 && p->memory_swap < p->memory)
    return hv_error(err, 0, "--memory-swap: %lld must be at least --memory (%lld): it is "
                            "memory plus swap", (long long)p->memory_swap, (long long)p->memory);
  if (p->memory_swap < -1)
    return hv_error(err, 0, "--memory-swap: must be positive or -1 (got %lld)",
                    (long long)p->memory_swap);
  if (p->memory) {
    r->memory.has_limit = true;
    r->memory.limit = p->memory;
    r->present = true;
    raw_set(raw_obj(c, "linux", "resources", "memory"), "limit", json_integer(p->memory));
  }
  if (p->memory_swap) {
    r->memory.has_swap = true;
    r->memory.swap = p->memory_swap;
    raw_set(raw_obj(c, "linux", "resources", "memory"), "swap", json_integer(p->memory_swap));
  }
  if (p->pids) {
    r->pids.has_limit = true;
    r->pids.limit = p->pids > 0 ? p->pids : -1;
    r->present = true;
    raw_set(raw_obj(c, "linux", "resources", "pids"), "limit", json_integer(r->pids.limit));
  }
  if (p->blkio_weight) {
    if (p->blkio_weight < 10 || p->blkio_weight > 1000)
      return hv_error(err, 0, "--blkio-weight: %u is out of range [10, 1000]", p->blkio_weight);
    r->block_io.has_weight = true;
    r->block_io.weight = p->blkio_weight;
    r->present = true;
    raw_set(raw_obj(c, "linux", "resources", "blockIO"), "weight", json_integer(p->blkio_weight));
  }
  if (p->n_device_read_bps || p->n_device_write_bps) {
    r->present = true;
    json_t *bio = raw_obj(c, "linux", "resources", "blockIO");
    append_throttle(bio, "throttleReadBpsDevice", &r->block_io.throttle_read_bps,
                    &r->block_io.n_throttle_read_bps, p->device_read_bps, p->n_device_read_bps);
    append_throttle(bio, "throttleWriteBpsDevice", &r->block_io.throttle_write_bps,
                    &r->block_io.n_throttle_write_bps, p->device_write_bps, p->n_device_write_bps);
  }
  return 0;
}

int hv_policy_apply(const struct hv_policy *p, struct hv_oci_config *c, hv_error_t *err) {
  if (!c->process)
    return hv_error(err, 0, "policy: the config has no process");
  if (apply_resources(p, c, err) < 0 || apply_caps(p, c, err) < 0 ||
      apply_seccomp(p, c, err) < 0 || apply_network(p, c) < 0)
    return -1;
  if (p->read_only) {
    c->root.readonly = true;
    raw_set(raw_obj(c, "root", NULL, NULL), "readonly", json_true());
  }
  return 0;
}

void hv_policy_clear(struct hv_policy *p) {
  free(p->cpuset_cpus);
  free(p->device_read_bps);
  free(p->device_write_bps);
  hv_strv_free(p->cap_add);
  hv_strv_free(p->cap_drop);
  free(p->seccomp);
  *p = (struct hv_policy){0};
}
