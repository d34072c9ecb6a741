/* oci_parse_linux.c: the "linux" object (namespaces, id mappings, time
 * offsets, devices, propagation, sysctl, masked/readonly paths,
 * personality); resources and seccomp have their own files. */
#include "oci_internal.h"
#include <sched.h>
#include <string.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const struct { const char *name; int flag; } ns_types[] = {
    {"pid", CLONE_NEWPID},   {"network", CLONE_NEWNET}, {"mount", CLONE_NEWNS},
    {"ipc", CLONE_NEWIPC},   {"uts", CLONE_NEWUTS},     {"user", CLONE_NEWUSER},
    {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
};

static int parse_namespaces(oci_ctx *c, json_t *lin, struct hv_oci_config *cfg) {
  json_t *arr = NULL;
  int r = oci_get_member(c, lin, "namespaces", JSON_ARRAY, &arr);
  if (r <= 0)
    return r;
  oci_push_key(c, "namespaces");
  size_t n = json_array_size(arr);
  cfg->linux.namespaces = hv_xmalloc0(n * sizeof(*cfg->linux.namespaces));
  cfg->linux.n_namespaces = n;
  for (size_t i = 0; i < n && r >= 0; i++) {
    struct hv_oci_namespace *ns = &cfg->linux.namespaces[i];
    json_t *e = json_array_get(arr, i);
    oci_push_index(c, i);
    r = oci_expect(c, e, JSON_OBJECT);
    if (r >= 0)
      r = oci_get_string(c, e, "type", true, &ns->type);
    if (r >= 0) {
      oci_push_key(c, "type");
      for (size_t k = 0; k < sizeof ns_types / sizeof ns_types[0]; k++)
        if (strcmp(ns->type, ns_types[k].name) == 0)
          ns->flag = ns_types[k].flag;
      if (!ns->flag)
        r = oci_fail(c, "unknown namespace type \"%s\" (expected pid, network, mount, ipc, uts, "
                        "user, cgroup or time)", ns->type);
      for (size_t k = 0; k < i && r >= 0; k++)
        if (cfg->linux.namespaces[k].flag == ns->flag)
          r = oci_fail(c, "duplicate namespace \"%s\" (also at index %zu)", ns->type, k);
      oci_pop(c);
    }
    if (r >= 0)
      r = oci_get_string(c, e, "path", false, &ns->path);
    if (r >= 0 && ns->path && ns->path[0] != '/') {
      oci_push_key(c, "path");
      r = oci_fail(c, "must be an absolute path (got \"%s\")", ns->path);
      oci_pop(c);
    }
    oci_pop(c);
  }
  oci_pop(c);
  return r;
}

static bool has_namespace(const struct hv_oci_config *cfg, int flag) {
  for (size_t i = 0; i < cfg->linux.n_namespaces; i++)
    if (cfg->linux.namespaces[i].flag == flag)
      return true;
  return false;
}

static int parse_time_offsets(oci_ctx *c, json_t *lin, struct hv_oci_config *cfg) {
  json_t *o = NULL;
  int r = oci_get_member(c, lin, "timeOffsets", JSON_OBJECT, &o);
  if (r <= 0)
    return r;
  oci_push_key(c, "timeOffsets");
  size_t n = json_object_size(o);
  cfg->linux.time_offsets = hv_xmalloc0(n * sizeof(*cfg->linux.time_offsets));
  const char *k;
  json_t *v;
  r = 0;
  json_object_foreach(o, k, v) {
    oci_push_key(c, k);
    if (strcmp(k, "monotonic") != 0 && strcmp(k, "boottime") != 0)
      r = oci_fail(c, "unknown clock (expected monotonic or boottime)");
    if (r >= 0)
      r = oci_expect(c, v, JSON_OBJECT);
    int64_t secs = 0, nsecs = 0;
    if (r >= 0)
      r = oci_get_int(c, v, "secs", false, INT64_MIN, INT64_MAX, &secs, NULL);
    if (r >= 0)
      r = oci_get_int(c, v, "nanosecs", false, 0, 999999999, &nsecs, NULL);
    oci_pop(c);
    if (r < 0)
      break;
    struct hv_oci_keyval *kv = &cfg->linux.time_offsets[cfg->linux.n_time_offsets++];
    kv->key = hv_xstrdup(k);
    kv->value = hv_xasprintf("%lld %lld", (long long)secs, (long long)nsecs);
  }
  if (r >= 0 && n && !has_namespace(cfg, CLONE_NEWTIME))
    r = oci_fail(c, "given, but linux.namespaces has no \"time\" namespace");
  oci_pop(c);
  return r;
}

static int parse_devices(oci_ctx *c, json_t *lin, struct hv_oci_config *cfg) {
  json_t *arr = NULL;
  int r = oci_get_member(c, lin, "devices", JSON_ARRAY, &arr);
  if (r <= 0)
    return r;
  oci_push_key(c, "devices");
  size_t n = json_array_size(arr);
  cfg->linux.devices = hv_xmalloc0(n * sizeof(*cfg->linux.devices));
  cfg->linux.n_devices = n;
  for (size_t i = 0; i < n && r >= 0; i++) {
    struct hv_oci_device *d = &cfg->linux.devices[i];
    json_t *e = json_array_get(arr, i);
    cleanup_free char *type = NULL;
    oci_push_index(c, i);
    r = oci_expect(c, e, JSON_OBJECT);
    if (r >= 0)
      r = oci_get_string(c, e, "path", true, &d->path);
    if (r >= 0 && d->path[0] != '/') {
      oci_push_key(c, "path");
      r = oci_fail(c, "must be an absolute path (got \"%s\")", d->path);
      oci_pop(c);
    }
    if (r >= 0)
      r = oci_get_string(c, e, "type", true, &type);
    if (r >= 0) {
      if (strlen(type) != 1 || !strchr("cbup", type[0])) {
        oci_push_key(c, "type");
        r = oci_fail(c, "unknown device type \"%s\" (expected c, b, u or p)", type);
        oci_pop(c);
      } else {
        d->type = type[0];
      }
    }
    bool needs_numbers = r >= 0 && d->type != 'p';
    if (r >= 0)
      r = oci_get_int(c, e, "major", needs_numbers, INT64_MIN, INT64_MAX, &d->major, NULL);
    if (r >= 0)
      r = oci_get_int(c, e, "minor", needs_numbers, INT64_MIN, INT64_MAX, &d->minor, NULL);
    int64_t mode = 0;
    if (r >= 0)
      r = oci_get_int(c, e, "fileMode", false, 0, 07777, &mode, &d->has_file_mode);
    d->file_mode = (uint32_t)mode;
    if (r >= 0)
      r = oci_get_u32(c, e, "uid", false, &d->uid, &d->has_uid);
    if (r >= 0)
      r = oci_get_u32(c, e, "gid", false, &d->gid, &d->has_gid);
    oci_pop(c);
  }
  oci_pop(c);
  return r;
}

static int parse_abs_paths(oci_ctx *c, json_t *lin, const char *key, char ***out) {
  int r = oci_get_strv(c, lin, key, false, out);
  oci_push_key(c, key);
  for (size_t i = 0; r >= 0 && *out && (*out)[i]; i++) {
    if ((*out)[i][0] != '/') {
      oci_push_index(c, i);
      r = oci_fail(c, "must be an absolute path (got \"%s\")", (*out)[i]);
      oci_pop(c);
    }
  }
  oci_pop(c);
  return r;
}

static int check_one_of(oci_ctx *c, const char *key, const char *value, const char *const *ok) {
  if (!value)
    return 0;
  for (size_t i = 0; ok[i]; i++)
    if (strcmp(value, ok[i]) == 0)
      return 0;
  oci_push_key(c, key);
  int r = oci_fail(c, "unknown value \"%s\"", value);
  oci_pop(c);
  return r;
}

static int parse_personality(oci_ctx *c, json_t *lin, struct hv_oci_config *cfg) {
  json_t *o = NULL;
  int r = oci_get_member(c, lin, "personality", JSON_OBJECT, &o);
  if (r <= 0)
    return r;
  oci_push_key(c, "personality");
  r = oci_get_string(c, o, "domain", true, &cfg->linux.personality_domain);
  static const char *const domains[] = {"LINUX", "LINUX32", NULL};
  if (r >= 0)
    r = check_one_of(c, "domain", cfg->linux.personality_domain, domains);
  char **flags = NULL;
  if (r >= 0)
    r = oci_get_strv(c, o, "flags", false, &flags);
  hv_strv_free(flags); /* no flags are defined by the spec yet */
  oci_pop(c);
  return r;
}

/* Mappings only mean something for a user namespace we create. */
static int check_mappings(oci_ctx *c, const struct hv_oci_config *cfg) {
  if ((cfg->linux.n_uid_mappings || cfg->linux.n_gid_mappings) &&
      !has_namespace(cfg, CLONE_NEWUSER)) {
    oci_push_key(c, cfg->linux.n_uid_mappings ? "uidMappings" : "gidMappings");
    int r = oci_fail(c, "given, but linux.namespaces has no \"user\" namespace");
    oci_pop(c);
    return r;
  }
  if (!!cfg->linux.n_uid_mappings != !!cfg->linux.n_gid_mappings) {
    oci_push_key(c, cfg->linux.n_uid_mappings ? "gidMappings" : "uidMappings");
    int r = oci_fail(c, "required when %s is given",
                     cfg->linux.n_uid_mappings ? "uidMappings" : "gidMappings");
    oci_pop(c);
    return r;
  }
  return 0;
}

int oci_parse_linux_obj(oci_ctx *c, json_t *j, struct hv_oci_config *cfg) {
  static const char *const propagations[] = {"shared",  "slave",  "private",  "unbindable",
                                             "rshared", "rslave", "rprivate", "runbindable",
                                             NULL};
  int r;
  if ((r = parse_namespaces(c, j, cfg)) < 0 ||
      (r = oci_get_idmaps(c, j, "uidMappings", &cfg->linux.uid_mappings,
                          &cfg->linux.n_uid_mappings)) < 0 ||
      (r = oci_get_idmaps(c, j, "gidMappings", &cfg->linux.gid_mappings,
                          &cfg->linux.n_gid_mappings)) < 0 ||
      (r = check_mappings(c, cfg)) < 0 || (r = parse_time_offsets(c, j, cfg)) < 0 ||
      (r = parse_devices(c, j, cfg)) < 0 ||
      (r = oci_get_string(c, j, "cgroupsPath", false, &cfg->linux.cgroups_path)) < 0)
    return r;

  json_t *res = NULL;
  if ((r = oci_get_member(c, j, "resources", JSON_OBJECT, &res)) < 0)
    return r;
  if (r > 0) {
    oci_push_key(c, "resources");
    r = oci_parse_resources_obj(c, res, &cfg->linux.resources);
    oci_pop(c);
    if (r < 0)
      return r;
  }

  if ((r = oci_get_string(c, j, "rootfsPropagation", false, &cfg->linux.rootfs_propagation)) < 0 ||
      (r = check_one_of(c, "rootfsPropagation", cfg->linux.rootfs_propagation, propagations)) < 0 ||
      (r = oci_get_keyvals(c, j, "sysctl", &cfg->linux.sysctl, &cfg->linux.n_sysctl)) < 0)
    return r;

  json_t *sec = NULL;
  if ((r = oci_get_member(c, j, "seccomp", JSON_OBJECT, &sec)) < 0)
    return r;
  if (r > 0) {
    cfg->linux.seccomp = hv_xmalloc0(sizeof(*cfg->linux.seccomp));
    oci_push_key(c, "seccomp");
    r = oci_parse_seccomp_obj(c, sec, cfg->linux.seccomp);
    oci_pop(c);
    if (r < 0)
      return r;
  }

  if ((r = parse_abs_paths(c, j, "maskedPaths", &cfg->linux.masked_paths)) < 0 ||
      (r = parse_abs_paths(c, j, "readonlyPaths", &cfg->linux.readonly_paths)) < 0 ||
      (r = oci_get_string(c, j, "mountLabel", false, &cfg->linux.mount_label)) < 0 ||
      (r = parse_personality(c, j, cfg)) < 0)
    return r;
  return 0;
}
