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
static int apply_caps(const struct hv_policy *p, struct hv_oci_process *proc, hv_error_t *err) {
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
  return 0;
}

static int apply_seccomp(const struct hv_policy *p, struct hv_oci_config *c, hv_error_t *err) {
  struct hv_oci_seccomp *s = NULL;
  if (p->seccomp && strcmp(p->seccomp, "unconfined") == 0) {
    s = NULL;
  } else if (p->seccomp) {
    cleanup_free char *text = NULL;
    size_t len = 0;
    if (hv_read_file(p->seccomp, &text, &len, err) < 0)
      return hv_error_wrap(err, "--security-opt seccomp=%s", p->seccomp);
    /* The parser's message names the file and the position. */
    if (hv_oci_parse_seccomp(text, len, p->seccomp, &s, err) < 0)
      return -1;
  } else {
    if (hv_oci_parse_seccomp(hv_seccomp_default_json, hv_seccomp_default_json_len,
                             "runtime/seccomp-default.json", &s, err) < 0)
      return hv_error_wrap(err, "built-in seccomp profile");
  }
  hv_oci_seccomp_free(c->linux.seccomp);
  c->linux.seccomp = s;
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
  return 0;
}

static void append_throttle(struct hv_oci_throttle_device **dst, size_t *n,
                            const struct hv_oci_throttle_device *src, size_t m) {
  if (!m)
    return;
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
  }
  if (p->cpuset_cpus) {
    if (!valid_cpu_list(p->cpuset_cpus))
      return hv_error(err, 0, "--cpuset-cpus: invalid CPU list \"%s\" (e.g. \"0-2,4\")",
                      p->cpuset_cpus);
    free(r->cpu.cpus);
    r->cpu.cpus = hv_xstrdup(p->cpuset_cpus);
    r->present = true;
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
  }
  if (p->memory_swap) {
    r->memory.has_swap = true;
    r->memory.swap = p->memory_swap;
  }
  if (p->pids) {
    r->pids.has_limit = true;
    r->pids.limit = p->pids > 0 ? p->pids : -1;
    r->present = true;
  }
  if (p->blkio_weight) {
    if (p->blkio_weight < 10 || p->blkio_weight > 1000)
      return hv_error(err, 0, "--blkio-weight: %u is out of range [10, 1000]", p->blkio_weight);
    r->block_io.has_weight = true;
    r->block_io.weight = p->blkio_weight;
    r->present = true;
  }
  if (p->n_device_read_bps || p->n_device_write_bps)
    r->present = true;
  append_throttle(&r->block_io.throttle_read_bps, &r->block_io.n_throttle_read_bps,
                  p->device_read_bps, p->n_device_read_bps);
  append_throttle(&r->block_io.throttle_write_bps, &r->block_io.n_throttle_write_bps,
                  p->device_write_bps, p->n_device_write_bps);
  return 0;
}

int hv_policy_apply(const struct hv_policy *p, struct hv_oci_config *c, hv_error_t *err) {
  if (!c->process)
    return hv_error(err, 0, "policy: the config has no process");
  if (apply_resources(p, c, err) < 0 || apply_caps(p, c->process, err) < 0 ||
      apply_seccomp(p, c, err) < 0 || apply_network(p, c) < 0)
    return -1;
  if (p->read_only)
    c->root.readonly = true;
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
