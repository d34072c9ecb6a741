/* oci_parse_process.c: the "process" object, shared by config.json and
 * exec --process files: user, args/env/cwd, capabilities, rlimits and the
 * smaller security knobs. */
#include "oci_internal.h"
#include <string.h>
#include <sys/capability.h>
#include <sys/resource.h>

static const struct { const char *name; int resource; } rlimit_names[] = {
    {"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},     {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK},
};

static int rlimit_from_name(const char *name) {
  for (size_t i = 0; i < sizeof rlimit_names / sizeof rlimit_names[0]; i++)
    if (strcmp(name, rlimit_names[i].name) == 0)
      return rlimit_names[i].resource;
  return -1;
}

int oci_cap_from_name(const char *name) {
  /* libcap also accepts lower case and numbers; the spec spells them
   * "CAP_CHOWN", so insist on that and let libcap know the rest. */
  if (strncmp(name, "CAP_", 4) != 0 || !name[4])
    return -1;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
      return -1;
  cap_value_t v;
  if (cap_from_name(name, &v) < 0)
    return -1;
  return (int)v;
}

static int parse_cap_set(oci_ctx *c, json_t *obj, const char *key, char ***out) {
  int r = oci_get_strv(c, obj, key, false, out);
  if (r < 0 || !*out)
    return r;
  oci_push_key(c, key);
  for (size_t i = 0; (*out)[i] && r >= 0; i++) {
    if (oci_cap_from_name((*out)[i]) < 0) {
      oci_push_index(c, i);
      r = oci_fail(c, "unknown capability \"%s\"", (*out)[i]);
      oci_pop(c);
    }
  }
  oci_pop(c);
  return r;
}

static int parse_capabilities(oci_ctx *c, json_t *proc, struct hv_oci_process *p) {
  json_t *j = NULL;
  int r = oci_get_member(c, proc, "capabilities", JSON_OBJECT, &j);
  if (r <= 0)
    return r;
  p->capabilities = hv_xmalloc0(sizeof(*p->capabilities));
  struct hv_oci_capabilities *caps = p->capabilities;
  oci_push_key(c, "capabilities");
  if (r >= 0)
    r = parse_cap_set(c, j, "bounding", &caps->bounding);
  if (r >= 0)
    r = parse_cap_set(c, j, "effective", &caps->effective);
  if (r >= 0)
    r = parse_cap_set(c, j, "inheritable", &caps->inheritable);
  if (r >= 0)
    r = parse_cap_set(c, j, "permitted", &caps->permitted);
  if (r >= 0)
    r = parse_cap_set(c, j, "ambient", &caps->ambient);
  oci_pop(c);
  return r;
}

static int parse_rlimits(oci_ctx *c, json_t *proc, struct hv_oci_process *p) {
  json_t *arr = NULL;
  int r = oci_get_member(c, proc, "rlimits", JSON_ARRAY, &arr);
  if (r <= 0)
    return r;
  oci_push_key(c, "rlimits");
  p->n_rlimits = json_array_size(arr);
  p->rlimits = hv_xmalloc0(p->n_rlimits * sizeof(*p->rlimits));
  for (size_t i = 0; i < p->n_rlimits && r >= 0; i++) {
    struct hv_oci_rlimit *rl = &p->rlimits[i];
    json_t *e = json_array_get(arr, i);
    oci_push_index(c, i);
    r = oci_expect(c, e, JSON_OBJECT);
    if (r >= 0)
      r = oci_get_string(c, e, "type", true, &rl->type);
    if (r >= 0) {
      oci_push_key(c, "type");
      rl->resource = rlimit_from_name(rl->type);
      if (rl->resource < 0)
        r = oci_fail(c, "unknown rlimit \"%s\"", rl->type);
      for (size_t k = 0; k < i && r >= 0; k++)
        if (p->rlimits[k].resource == rl->resource)
          r = oci_fail(c, "duplicate rlimit \"%s\" (also at index %zu)", rl->type, k);
      oci_pop(c);
    }
    if (r >= 0)
      r = oci_get_u64(c, e, "hard", true, &rl->hard, NULL);
    if (r >= 0)
      r = oci_get_u64(c, e, "soft", true, &rl->soft, NULL);
    if (r >= 0 && rl->soft > rl->hard) {
      oci_push_key(c, "soft");
      r = oci_fail(c, "soft limit %llu exceeds hard limit %llu", (unsigned long long)rl->soft,
                   (unsigned long long)rl->hard);
      oci_pop(c);
    }
    oci_pop(c);
  }
  oci_pop(c);
  return r;
}

static int parse_user(oci_ctx *c, json_t *proc, struct hv_oci_user *u) {
  json_t *j = NULL;
  int r = oci_get_member(c, proc, "user", JSON_OBJECT, &j);
  if (r <= 0)
    return r;
  oci_push_key(c, "user");
  r = oci_get_u32(c, j, "uid", false, &u->uid, NULL);
  if (r >= 0)
    r = oci_get_u32(c, j, "gid", false, &u->gid, NULL);
  int64_t umask = 0;
  if (r >= 0)
    r = oci_get_int(c, j, "umask", false, 0, 0777, &umask, &u->has_umask);
  u->umask = (uint32_t)umask;
  if (r >= 0)
    r = oci_get_string(c, j, "username", false, &u->username);
  json_t *gids = NULL;
  if (r >= 0 && (r = oci_get_member(c, j, "additionalGids", JSON_ARRAY, &gids)) > 0) {
    oci_push_key(c, "additionalGids");
    u->n_additional_gids = json_array_size(gids);
    u->additional_gids = hv_xmalloc0(u->n_additional_gids * sizeof(uint32_t));
    for (size_t i = 0; i < u->n_additional_gids && r >= 0; i++) {
      json_t *e = json_array_get(gids, i);
      oci_push_index(c, i);
      int64_t gid = 0;
      r = oci_int_value(c, e, 0, UINT32_MAX, &gid);
      u->additional_gids[i] = (uint32_t)gid;
      oci_pop(c);
    }
    oci_pop(c);
  }
  oci_pop(c);
  return r < 0 ? r : 0;
}

static int parse_io_priority(oci_ctx *c, json_t *proc, struct hv_oci_process *p) {
  json_t *j = NULL;
  int r = oci_get_member(c, proc, "ioPriority", JSON_OBJECT, &j);
  if (r <= 0)
    return r;
  oci_push_key(c, "ioPriority");
  r = oci_get_string(c, j, "class", true, &p->io_priority_class);
  if (r >= 0 && strcmp(p->io_priority_class, "IOPRIO_CLASS_RT") != 0 &&
      strcmp(p->io_priority_class, "IOPRIO_CLASS_BE") != 0 &&
      strcmp(p->io_priority_class, "IOPRIO_CLASS_IDLE") != 0) {
    oci_push_key(c, "class");
    r = oci_fail(c, "unknown class \"%s\" (expected IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or "
                    "IOPRIO_CLASS_IDLE)", p->io_priority_class);
    oci_pop(c);
  }
  int64_t prio = 0;
  if (r >= 0)
    r = oci_get_int(c, j, "priority", false, 0, 7, &prio, NULL);
  p->io_priority = (int)prio;
  oci_pop(c);
  return r;
}

static int parse_console_size(oci_ctx *c, json_t *proc, struct hv_oci_process *p) {
  json_t *j = NULL;
  int r = oci_get_member(c, proc, "consoleSize", JSON_OBJECT, &j);
  if (r <= 0)
    return r;
  oci_push_key(c, "consoleSize");
  r = oci_get_u32(c, j, "height", true, &p->console_size.height, NULL);
  if (r >= 0)
    r = oci_get_u32(c, j, "width", true, &p->console_size.width, NULL);
  oci_pop(c);
  p->has_console_size = r >= 0;
  return r;
}

static int parse_exec_cpu_affinity(oci_ctx *c, json_t *proc, struct hv_oci_process *p) {
  json_t *j = NULL;
  int r = oci_get_member(c, proc, "execCPUAffinity", JSON_OBJECT, &j);
  if (r <= 0)
    return r;
  oci_push_key(c, "execCPUAffinity");
  r = oci_get_string(c, j, "initial", false, &p->exec_cpu_affinity_initial);
  if (r >= 0)
    r = oci_get_string(c, j, "final", false, &p->exec_cpu_affinity_final);
  oci_pop(c);
  return r;
}

int oci_parse_process_obj(oci_ctx *c, json_t *j, struct hv_oci_process *p) {
  int r = oci_expect(c, j, JSON_OBJECT);
  if (r < 0)
    return r;
  free(p->json);
  p->json = json_dumps(j, JSON_COMPACT);
  if ((r = oci_get_bool(c, j, "terminal", &p->terminal, NULL)) < 0 ||
      (r = parse_console_size(c, j, p)) < 0 || (r = parse_user(c, j, &p->user)) < 0 ||
      (r = oci_get_strv(c, j, "args", false, &p->args)) < 0 ||
      (r = oci_get_string(c, j, "commandLine", false, &p->command_line)) < 0)
    return r;
  if (!p->args || !p->args[0]) {
    oci_push_key(c, "args");
    r = oci_fail(c, p->args ? "must not be empty" : "required field is missing");
    oci_pop(c);
    return r;
  }
  if ((r = oci_get_strv(c, j, "env", false, &p->env)) < 0 ||
      (r = oci_get_string(c, j, "cwd", true, &p->cwd)) < 0)
    return r;
  if (p->cwd[0] != '/') {
    oci_push_key(c, "cwd");
    r = oci_fail(c, "must be an absolute path (got \"%s\")", p->cwd);
    oci_pop(c);
    return r;
  }
  int64_t oom = 0;
  if ((r = parse_capabilities(c, j, p)) < 0 || (r = parse_rlimits(c, j, p)) < 0 ||
      (r = oci_get_bool(c, j, "noNewPrivileges", &p->no_new_privileges, NULL)) < 0 ||
      (r = oci_get_string(c, j, "apparmorProfile", false, &p->apparmor_profile)) < 0 ||
      (r = oci_get_int(c, j, "oomScoreAdj", false, -1000, 1000, &oom, &p->has_oom_score_adj)) < 0 ||
      (r = oci_get_string(c, j, "selinuxLabel", false, &p->selinux_label)) < 0 ||
      (r = parse_io_priority(c, j, p)) < 0 || (r = parse_exec_cpu_affinity(c, j, p)) < 0)
    return r;
  p->oom_score_adj = (int)oom;
  return 0;
}
