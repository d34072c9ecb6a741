/* oci_parse_resources.c: linux.resources, also the whole document of
 * `update --resources FILE`. */
#include "oci_internal.h"
#include <string.h>

static int parse_device_cgroup(oci_ctx *c, json_t *e, struct hv_oci_device_cgroup *d) {
  int r = oci_expect(c, e, JSON_OBJECT);
  bool has_allow = false;
  if (r >= 0)
    r = oci_get_bool(c, e, "allow", &d->allow, &has_allow);
  if (r >= 0 && !has_allow) {
    oci_push_key(c, "allow");
    r = oci_fail(c, "required field is missing");
    oci_pop(c);
  }
  cleanup_free char *type = NULL;
  if (r >= 0)
    r = oci_get_string(c, e, "type", false, &type);
  if (r >= 0 && type) {
    if (strlen(type) != 1 || !strchr("acb", type[0])) {
      oci_push_key(c, "type");
      r = oci_fail(c, "unknown device type \"%s\" (expected a, c or b)", type);
      oci_pop(c);
    } else {
      d->type = type[0] == 'a' ? 0 : type[0];
    }
  }
  if (r >= 0)
    r = oci_get_int(c, e, "major", false, -1, INT64_MAX, &d->major, &d->has_major);
  if (r >= 0)
    r = oci_get_int(c, e, "minor", false, -1, INT64_MAX, &d->minor, &d->has_minor);
  if (r >= 0)
    r = oci_get_string(c, e, "access", false, &d->access);
  if (r >= 0 && d->access) {
    const char *a = d->access;
    bool ok = strlen(a) <= 3;
    for (const char *p = a; ok && *p; p++)
      ok = strchr("rwm", *p) && !strchr(p + 1, *p);
    if (!ok) {
      oci_push_key(c, "access");
      r = oci_fail(c, "\"%s\" is not a combination of r, w and m", a);
      oci_pop(c);
    }
  }
  return r;
}

/* Generic array-of-objects walker so each list is three lines. */
typedef int (*elem_parser)(oci_ctx *c, json_t *e, void *elem);

static int parse_list(oci_ctx *c, json_t *obj, const char *key, size_t elem_size,
                      elem_parser parse, void **out, size_t *n) {
  json_t *arr = NULL;
  int r = oci_get_member(c, obj, key, JSON_ARRAY, &arr);
  if (r <= 0)
    return r;
  oci_push_key(c, key);
  *n = json_array_size(arr);
  *out = hv_xmalloc0(*n * elem_size);
  for (size_t i = 0; i < *n && r >= 0; i++) {
    oci_push_index(c, i);
    r = parse(c, json_array_get(arr, i), (char *)*out + i * elem_size);
    oci_pop(c);
  }
  oci_pop(c);
  return r < 0 ? r : 0;
}

static int parse_device_cgroup_v(oci_ctx *c, json_t *e, void *d) {
  return parse_device_cgroup(c, e, d);
}

static int parse_weight_device(oci_ctx *c, json_t *e, void *elem) {
  struct hv_oci_weight_device *w = elem;
  int64_t v = 0;
  int r = oci_expect(c, e, JSON_OBJECT);
  if (r >= 0)
    r = oci_get_int(c, e, "major", true, 0, INT64_MAX, &w->major, NULL);
  if (r >= 0)
    r = oci_get_int(c, e, "minor", true, 0, INT64_MAX, &w->minor, NULL);
  if (r >= 0)
    r = oci_get_int(c, e, "weight", false, 0, UINT16_MAX, &v, &w->has_weight);
  w->weight = (uint16_t)v;
  v = 0;
  if (r >= 0)
    r = oci_get_int(c, e, "leafWeight", false, 0, UINT16_MAX, &v, &w->has_leaf_weight);
  w->leaf_weight = (uint16_t)v;
  return r;
}

static int parse_throttle_device(oci_ctx *c, json_t *e, void *elem) {
  struct hv_oci_throttle_device *t = elem;
  int r = oci_expect(c, e, JSON_OBJECT);
  if (r >= 0)
    r = oci_get_int(c, e, "major", true, 0, INT64_MAX, &t->major, NULL);
  if (r >= 0)
    r = oci_get_int(c, e, "minor", true, 0, INT64_MAX, &t->minor, NULL);
  if (r >= 0)
    r = oci_get_u64(c, e, "rate", true, &t->rate, NULL);
  return r;
}

static int parse_hugepage(oci_ctx *c, json_t *e, void *elem) {
  struct hv_oci_hugepage_limit *h = elem;
  int r = oci_expect(c, e, JSON_OBJECT);
  if (r >= 0)
    r = oci_get_string(c, e, "pageSize", true, &h->page_size);
  if (r >= 0)
    r = oci_get_u64(c, e, "limit", true, &h->limit, NULL);
  return r;
}

static int parse_net_prio(oci_ctx *c, json_t *e, void *elem) {
  struct hv_oci_net_prio *p = elem;
  int r = oci_expect(c, e, JSON_OBJECT);
  if (r >= 0)
    r = oci_get_string(c, e, "name", true, &p->name);
  if (r >= 0)
    r = oci_get_u32(c, e, "priority", true, &p->priority, NULL);
  return r;
}

static int parse_memory(oci_ctx *c, json_t *res, struct hv_oci_resources *r_) {
  json_t *m = NULL;
  int r = oci_get_member(c, res, "memory", JSON_OBJECT, &m);
  if (r <= 0)
    return r;
  typeof(r_->memory) *mem = &r_->memory;
  oci_push_key(c, "memory");
  /* -1 means "unlimited" for the byte counts. */
  if ((r = oci_get_int(c, m, "limit", false, -1, INT64_MAX, &mem->limit, &mem->has_limit)) >= 0 &&
      (r = oci_get_int(c, m, "reservation", false, -1, INT64_MAX, &mem->reservation,
                       &mem->has_reservation)) >= 0 &&
      (r = oci_get_int(c, m, "swap", false, -1, INT64_MAX, &mem->swap, &mem->has_swap)) >= 0 &&
      (r = oci_get_int(c, m, "kernel", false, -1, INT64_MAX, &mem->kernel, &mem->has_kernel)) >= 0 &&
      (r = oci_get_int(c, m, "kernelTCP", false, -1, INT64_MAX, &mem->kernel_tcp,
                       &mem->has_kernel_tcp)) >= 0) {
    int64_t sw = 0;
    r = oci_get_int(c, m, "swappiness", false, 0, 100, &sw, &mem->has_swappiness);
    mem->swappiness = (uint64_t)sw;
  }
  if (r >= 0)
    r = oci_get_bool(c, m, "disableOOMKiller", &mem->disable_oom_killer,
                     &mem->has_disable_oom_killer);
  if (r >= 0)
    r = oci_get_bool(c, m, "useHierarchy", &mem->use_hierarchy, &mem->has_use_hierarchy);
  if (r >= 0)
    r = oci_get_bool(c, m, "checkBeforeUpdate", &mem->check_before_update,
                     &mem->has_check_before_update);
  oci_pop(c);
  return r;
}

static int parse_cpu(oci_ctx *c, json_t *res, struct hv_oci_resources *r_) {
  json_t *j = NULL;
  int r = oci_get_member(c, res, "cpu", JSON_OBJECT, &j);
  if (r <= 0)
    return r;
  typeof(r_->cpu) *cpu = &r_->cpu;
  oci_push_key(c, "cpu");
  if ((r = oci_get_u64(c, j, "shares", false, &cpu->shares, &cpu->has_shares)) >= 0 &&
      (r = oci_get_int(c, j, "quota", false, -1, INT64_MAX, &cpu->quota, &cpu->has_quota)) >= 0 &&
      (r = oci_get_u64(c, j, "period", false, &cpu->period, &cpu->has_period)) >= 0 &&
      (r = oci_get_int(c, j, "realtimeRuntime", false, -1, INT64_MAX, &cpu->realtime_runtime,
                       &cpu->has_realtime_runtime)) >= 0 &&
      (r = oci_get_u64(c, j, "realtimePeriod", false, &cpu->realtime_period,
                       &cpu->has_realtime_period)) >= 0 &&
      (r = oci_get_int(c, j, "burst", false, 0, INT64_MAX, &cpu->burst, &cpu->has_burst)) >= 0 &&
      (r = oci_get_int(c, j, "idle", false, 0, 1, &cpu->idle, &cpu->has_idle)) >= 0 &&
      (r = oci_get_string(c, j, "cpus", false, &cpu->cpus)) >= 0)
    r = oci_get_string(c, j, "mems", false, &cpu->mems);
  oci_pop(c);
  return r;
}

static int parse_block_io(oci_ctx *c, json_t *res, struct hv_oci_resources *r_) {
  json_t *j = NULL;
  int r = oci_get_member(c, res, "blockIO", JSON_OBJECT, &j);
  if (r <= 0)
    return r;
  typeof(r_->block_io) *b = &r_->block_io;
  oci_push_key(c, "blockIO");
  int64_t v = 0;
  r = oci_get_int(c, j, "weight", false, 0, UINT16_MAX, &v, &b->has_weight);
  b->weight = (uint16_t)v;
  v = 0;
  if (r >= 0)
    r = oci_get_int(c, j, "leafWeight", false, 0, UINT16_MAX, &v, &b->has_leaf_weight);
  b->leaf_weight = (uint16_t)v;
  size_t ts = sizeof(struct hv_oci_throttle_device);
  if (r >= 0)
    r = parse_list(c, j, "weightDevice", sizeof(struct hv_oci_weight_device), parse_weight_device,
                   (void **)&b->weight_device, &b->n_weight_device);
  if (r >= 0)
    r = parse_list(c, j, "throttleReadBpsDevice", ts, parse_throttle_device,
                   (void **)&b->throttle_read_bps, &b->n_throttle_read_bps);
  if (r >= 0)
    r = parse_list(c, j, "throttleWriteBpsDevice", ts, parse_throttle_device,
                   (void **)&b->throttle_write_bps, &b->n_throttle_write_bps);
  if (r >= 0)
    r = parse_list(c, j, "throttleReadIOPSDevice", ts, parse_throttle_device,
                   (void **)&b->throttle_read_iops, &b->n_throttle_read_iops);
  if (r >= 0)
    r = parse_list(c, j, "throttleWriteIOPSDevice", ts, parse_throttle_device,
                   (void **)&b->throttle_write_iops, &b->n_throttle_write_iops);
  oci_pop(c);
  return r;
}

int oci_parse_resources_obj(oci_ctx *c, json_t *j, struct hv_oci_resources *res) {
  int r = oci_expect(c, j, JSON_OBJECT);
  if (r < 0)
    return r;
  res->present = true;
  if ((r = parse_list(c, j, "devices", sizeof(struct hv_oci_device_cgroup), parse_device_cgroup_v,
                      (void **)&res->devices, &res->n_devices)) < 0 ||
      (r = parse_memory(c, j, res)) < 0 || (r = parse_cpu(c, j, res)) < 0)
    return r;
  json_t *pids = NULL;
  if ((r = oci_get_member(c, j, "pids", JSON_OBJECT, &pids)) < 0)
    return r;
  if (r > 0) {
    oci_push_key(c, "pids");
    r = oci_get_int(c, pids, "limit", false, -1, INT64_MAX, &res->pids.limit, &res->pids.has_limit);
    oci_pop(c);
    if (r < 0)
      return r;
  }
  if ((r = parse_block_io(c, j, res)) < 0 ||
      (r = parse_list(c, j, "hugepageLimits", sizeof(struct hv_oci_hugepage_limit), parse_hugepage,
                      (void **)&res->hugepage_limits, &res->n_hugepage_limits)) < 0)
    return r;
  json_t *net = NULL;
  if ((r = oci_get_member(c, j, "network", JSON_OBJECT, &net)) < 0)
    return r;
  if (r > 0) {
    oci_push_key(c, "network");
    r = oci_get_u32(c, net, "classID", false, &res->network.class_id, &res->network.has_class_id);
    if (r >= 0)
      r = parse_list(c, net, "priorities", sizeof(struct hv_oci_net_prio), parse_net_prio,
                     (void **)&res->network.priorities, &res->network.n_priorities);
    oci_pop(c);
    if (r < 0)
      return r;
  }
  return oci_get_keyvals(c, j, "unified", &res->unified, &res->n_unified);
}
