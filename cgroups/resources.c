/* resources.c: validate linux.resources, then hand each group to the v1 or
 * v2 writer of the hierarchy that holds its controller.  On a hybrid host
 * that means e.g. memory goes to v1 files and hugetlb to cgroup2 files.
 *
 * Zero means "unset" for the integer limits whose zero no kernel accepts
 * (memory.limit, cpu.shares, pids.limit, ...), as runc treats them: configs
 * written by Go tools carry zeros for absent fields. */
#include "internal.h"
#include <errno.h>
#include <string.h>

uint64_t cg_shares_to_weight(uint64_t shares) {
  /* runc/crun: map [2, 262144] linearly onto [1, 10000]. */
  if (shares == 0)
    return 0;
  if (shares < 2)
    shares = 2;
  return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t cg_blkio_weight_to_io_weight(uint64_t w) {
  /* [10, 1000] onto [1, 10000], as runc does for io.weight. */
  if (w == 0)
    return 0;
  if (w < 10)
    w = 10;
  return 1 + (w - 10) * 9999 / 990;
}

static int bad(hv_error_t *err, const char *field, long long v, const char *why) {
  return hv_error(err, 0, "linux.resources.%s: %lld is invalid (%s)", field, v, why);
}

static int check_limit(hv_error_t *err, const char *field, bool has, int64_t v) {
  if (has && v < -1)
    return bad(err, field, v, "must be -1 for unlimited or a positive number");
  return 0;
}

/* "0-3,5,7-8" */
static int check_cpulist(hv_error_t *err, const char *field, const char *s) {
  if (!s || !*s)
    return 0;
  bool digit = false;
  for (const char *p = s; *p; p++) {
    if (*p >= '0' && *p <= '9') {
      digit = true;
      continue;
    }
    if ((*p == ',' || *p == '-') && digit) {
      digit = false;
      continue;
    }
    return hv_error(err, 0, "linux.resources.%s: `%s` is not a list like \"0-3,5\"", field, s);
  }
  if (!digit)
    return hv_error(err, 0, "linux.resources.%s: `%s` is not a list like \"0-3,5\"", field, s);
  return 0;
}

static int check_weight(hv_error_t *err, const char *field, bool has, uint64_t w) {
  if (has && w != 0 && (w < 10 || w > 1000))
    return bad(err, field, (long long)w, "must be between 10 and 1000");
  return 0;
}

int cg_validate_resources(const struct hv_oci_resources *r, hv_error_t *err) {
  const typeof(r->memory) *m = &r->memory;
  if (check_limit(err, "memory.limit", m->has_limit, m->limit) < 0 ||
      check_limit(err, "memory.reservation", m->has_reservation, m->reservation) < 0 ||
      check_limit(err, "memory.swap", m->has_swap, m->swap) < 0 ||
      check_limit(err, "memory.kernel", m->has_kernel, m->kernel) < 0 ||
      check_limit(err, "memory.kernelTCP", m->has_kernel_tcp, m->kernel_tcp) < 0)
    return -1;
  if (m->has_swappiness && m->swappiness > 100)
    return bad(err, "memory.swappiness", (long long)m->swappiness, "must be between 0 and 100");
  if (m->has_swap && m->swap > 0 && m->has_limit && m->limit > 0 && m->swap < m->limit)
    return hv_error(err, 0,
                    "linux.resources.memory.swap: %lld is below memory.limit %lld (swap is the "
                    "memory+swap limit)",
                    (long long)m->swap, (long long)m->limit);
  const typeof(r->cpu) *c = &r->cpu;
  if (c->has_shares && c->shares != 0 && (c->shares < 2 || c->shares > 262144))
    return bad(err, "cpu.shares", (long long)c->shares, "must be between 2 and 262144");
  if (c->has_quota && (c->quota < -1 || (c->quota > 0 && c->quota < 1000)))
    return bad(err, "cpu.quota", c->quota, "must be -1 for unlimited or at least 1000 (1ms)");
  if (c->has_period && c->period != 0 && (c->period < 1000 || c->period > 1000000))
    return bad(err, "cpu.period", (long long)c->period,
               "must be between 1000 and 1000000 microseconds");
  if (check_limit(err, "cpu.realtimeRuntime", c->has_realtime_runtime, c->realtime_runtime) < 0)
    return -1;
  if (c->has_burst && c->burst < 0)
    return bad(err, "cpu.burst", c->burst, "must not be negative");
  if (c->has_idle && c->idle != 0 && c->idle != 1)
    return bad(err, "cpu.idle", c->idle, "must be 0 or 1");
  if (check_cpulist(err, "cpu.cpus", c->cpus) < 0 || check_cpulist(err, "cpu.mems", c->mems) < 0)
    return -1;
  if (check_limit(err, "pids.limit", r->pids.has_limit, r->pids.limit) < 0)
    return -1;
  const typeof(r->block_io) *b = &r->block_io;
  if (check_weight(err, "blockIO.weight", b->has_weight, b->weight) < 0 ||
      check_weight(err, "blockIO.leafWeight", b->has_leaf_weight, b->leaf_weight) < 0)
    return -1;
  for (size_t i = 0; i < b->n_weight_device; i++) {
    char f[64];
    snprintf(f, sizeof f, "blockIO.weightDevice[%zu].weight", i);
    if (check_weight(err, f, b->weight_device[i].has_weight, b->weight_device[i].weight) < 0)
      return -1;
    if (b->weight_device[i].major < 0 || b->weight_device[i].minor < 0)
      return hv_error(err, 0, "linux.resources.blockIO.weightDevice[%zu]: negative major/minor",
                      i);
  }
  for (size_t i = 0; i < r->n_hugepage_limits; i++) {
    const char *ps = r->hugepage_limits[i].page_size;
    size_t k = 0;
    while (ps && ps[k] >= '0' && ps[k] <= '9')
      k++;
    if (!ps || k == 0 || (strcmp(ps + k, "KB") && strcmp(ps + k, "MB") && strcmp(ps + k, "GB")))
      return hv_error(err, 0,
                      "linux.resources.hugepageLimits[%zu].pageSize: `%s` is not a size like "
                      "\"2MB\" or \"1GB\"",
                      i, ps ? ps : "");
  }
  for (size_t i = 0; i < r->n_unified; i++) {
    const char *k = r->unified[i].key;
    if (!k || !*k || strchr(k, '/') || !strchr(k, '.') || k[0] == '.')
      return hv_error(err, 0, "linux.resources.unified: `%s` is not a cgroup v2 file name",
                      k ? k : "");
  }
  for (size_t i = 0; i < r->n_devices; i++) {
    const struct hv_oci_device_cgroup *d = &r->devices[i];
    if (d->type && d->type != 'a' && d->type != 'c' && d->type != 'b')
      return hv_error(err, 0,
                      "linux.resources.devices[%zu].type: `%c` is not one of \"a\", \"c\", \"b\"",
                      i, d->type);
    if (d->access && (!*d->access || strspn(d->access, "rwm") != strlen(d->access)))
      return hv_error(err, 0,
                      "linux.resources.devices[%zu].access: `%s` is not a subset of \"rwm\"", i,
                      d->access);
    if ((d->has_major && d->major < -1) || (d->has_minor && d->minor < -1))
      return hv_error(err, 0, "linux.resources.devices[%zu]: negative major/minor", i);
  }
  return 0;
}

static bool mem_present(const struct hv_oci_resources *r) {
  const typeof(r->memory) *m = &r->memory;
  return (m->has_limit && m->limit) || (m->has_reservation && m->reservation) ||
         (m->has_swap && m->swap) || (m->has_kernel && m->kernel) ||
         (m->has_kernel_tcp && m->kernel_tcp) || m->has_swappiness ||
         m->has_disable_oom_killer || m->has_use_hierarchy;
}

static bool cpu_present(const struct hv_oci_resources *r) {
  const typeof(r->cpu) *c = &r->cpu;
  return (c->has_shares && c->shares) || (c->has_quota && c->quota) ||
         (c->has_period && c->period) || (c->has_realtime_runtime && c->realtime_runtime) ||
         (c->has_realtime_period && c->realtime_period) || c->has_burst || c->has_idle;
}

static bool blkio_present(const struct hv_oci_resources *r) {
  const typeof(r->block_io) *b = &r->block_io;
  return (b->has_weight && b->weight) || (b->has_leaf_weight && b->leaf_weight) ||
         b->n_weight_device || b->n_throttle_read_bps || b->n_throttle_write_bps ||
         b->n_throttle_read_iops || b->n_throttle_write_iops;
}

static int missing(hv_error_t *err, const char *field, const char *ctrl) {
  return hv_error(err, 0, "linux.resources.%s: the %s controller is not available on this host",
                  field, ctrl);
}

int cg_apply_resources(struct hv_cgroup *cg, const struct hv_oci_resources *r, bool update,
                       hv_error_t *err) {
  struct cg_dir *d;
  if (mem_present(r)) {
    if (!(d = cg_dir_for(cg, "memory")))
      return missing(err, "memory", "memory");
    if ((cg_dir_is_v2(cg, d) ? cg_v2_memory : cg_v1_memory)(d->path, r, update, err) < 0)
      return -1;
  }
  if (cpu_present(r)) {
    if (!(d = cg_dir_for(cg, "cpu")))
      return missing(err, "cpu", "cpu");
    if ((cg_dir_is_v2(cg, d) ? cg_v2_cpu : cg_v1_cpu)(d->path, r, err) < 0)
      return -1;
  }
  if ((r->cpu.cpus && *r->cpu.cpus) || (r->cpu.mems && *r->cpu.mems)) {
    if (!(d = cg_dir_for(cg, "cpuset")))
      return missing(err, r->cpu.cpus && *r->cpu.cpus ? "cpu.cpus" : "cpu.mems", "cpuset");
    if ((cg_dir_is_v2(cg, d) ? cg_v2_cpuset : cg_v1_cpuset)(d->path, r, err) < 0)
      return -1;
  }
  if (r->pids.has_limit && r->pids.limit) {
    if (!(d = cg_dir_for(cg, "pids")))
      return missing(err, "pids.limit", "pids");
    if (cg_pids_limit(d->path, r, err) < 0)
      return -1;
  }
  if (blkio_present(r)) {
    if ((d = cg_dir_for(cg, "blkio"))) {
      if (cg_v1_blkio(d->path, r, err) < 0)
        return -1;
    } else if ((d = cg_dir_for(cg, "io"))) {
      if (cg_v2_io(d->path, r, err) < 0)
        return -1;
    } else {
      return missing(err, "blockIO", "blkio/io");
    }
  }
  if (r->n_hugepage_limits) {
    if (!(d = cg_dir_for(cg, "hugetlb")))
      return missing(err, "hugepageLimits", "hugetlb");
    if ((cg_dir_is_v2(cg, d) ? cg_v2_hugetlb : cg_v1_hugetlb)(d->path, r, err) < 0)
      return -1;
  }
  if (r->network.has_class_id) {
    if (!(d = cg_dir_for(cg, "net_cls")))
      return missing(err, "network.classID", "net_cls");
    if (cg_v1_net_cls(d->path, r, err) < 0)
      return -1;
  }
  if (r->network.n_priorities) {
    if (!(d = cg_dir_for(cg, "net_prio")))
      return missing(err, "network.priorities", "net_prio");
    if (cg_v1_net_prio(d->path, r, err) < 0)
      return -1;
  }
  /* Devices: the default rule set always applies at create; update only
   * replaces it when new rules are given. */
  if (!update || r->n_devices) {
    d = cg_dir_for(cg, "devices");
    if (!d && r->n_devices)
      return missing(err, "devices", "devices");
    if (d) {
      struct cg_dev_rule *rules = NULL;
      size_t n = 0;
      if (cg_dev_rules(r, &rules, &n, err) < 0)
        return -1;
      int rc = cg_dir_is_v2(cg, d) ? cg_v2_devices(cg, d->path, rules, n, err)
                                   : cg_v1_devices(d->path, rules, n, err);
      free(rules);
      if (rc < 0)
        return -1;
    }
  }
  if (r->n_unified && cg_v2_unified(cg, r, err) < 0)
    return -1;
  return 0;
}
