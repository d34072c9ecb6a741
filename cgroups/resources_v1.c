/* resources_v1.c: linux.resources -> cgroup v1 files. */
#include "internal.h"
#include <errno.h>
#include <string.h>

#define F(x) "linux.resources." x

/* A v1 limit file takes -1 for unlimited. */
static int write_i64(const char *dir, const char *file, const char *field, int64_t v,
                     hv_error_t *err) {
  return cg_writef(dir, file, field, err, "%lld", (long long)v);
}

static int write_limit(const char *dir, int64_t limit, hv_error_t *err) {
  hv_error_t e = NULL;
  if (write_i64(dir, "memory.limit_in_bytes", F("memory.limit"), limit, &e) == 0)
    return 0;
  /* The kernel answers EBUSY when it cannot reclaim down to the limit. */
  int64_t usage = 0;
  if (e && e->errno_ == EBUSY && cg_read_i64(dir, "memory.usage_in_bytes", &usage) == 0) {
    hv_error_release(&e);
    return hv_error(err, 0,
                    F("memory.limit") ": %lld is below the current usage (%lld bytes) of `%s`",
                    (long long)limit, (long long)usage, dir);
  }
  int64_t memsw = 0;
  if (e && e->errno_ == EINVAL && limit > 0 &&
      cg_read_i64(dir, "memory.memsw.limit_in_bytes", &memsw) == 0 && memsw >= 0 &&
      memsw < limit) {
    hv_error_release(&e);
    return hv_error(err, 0,
                    F("memory.limit") ": %lld is above the current memory+swap limit %lld of "
                                      "`%s`; give memory.swap as well",
                    (long long)limit, (long long)memsw, dir);
  }
  if (err && !*err)
    *err = e;
  else
    hv_error_release(&e);
  return -1;
}

int cg_v1_memory(const char *dir, const struct hv_oci_resources *r, bool update,
                 hv_error_t *err) {
  (void)update;
  const typeof(r->memory) *m = &r->memory;
  bool has_limit = m->has_limit && m->limit != 0, has_swap = m->has_swap && m->swap != 0;
  if (has_swap && !cg_has_file(dir, "memory.memsw.limit_in_bytes"))
    return hv_error(err, 0,
                    F("memory.swap") ": memory.memsw.limit_in_bytes is not available on this "
                                     "host (swap accounting is off)");
  if (has_limit && has_swap) {
    /* memsw must stay >= limit at every step: when the limit grows, raise
     * memsw first; when it shrinks, lower the limit first. */
    int64_t cur = 0;
    if (cg_read_i64(dir, "memory.limit_in_bytes", &cur) < 0)
      cur = -1;
    bool growing = m->limit == -1 || (cur >= 0 && m->limit > cur);
    if (growing) {
      if (write_i64(dir, "memory.memsw.limit_in_bytes", F("memory.swap"), m->swap, err) < 0 ||
          write_limit(dir, m->limit, err) < 0)
        return -1;
    } else {
      if (write_limit(dir, m->limit, err) < 0 ||
          write_i64(dir, "memory.memsw.limit_in_bytes", F("memory.swap"), m->swap, err) < 0)
        return -1;
    }
  } else if (has_limit) {
    if (write_limit(dir, m->limit, err) < 0)
      return -1;
  } else if (has_swap) {
    if (write_i64(dir, "memory.memsw.limit_in_bytes", F("memory.swap"), m->swap, err) < 0)
      return -1;
  }
  if (m->has_reservation && m->reservation != 0 &&
      write_i64(dir, "memory.soft_limit_in_bytes", F("memory.reservation"), m->reservation,
                err) < 0)
    return -1;
  if (m->has_kernel && m->kernel != 0 &&
      write_i64(dir, "memory.kmem.limit_in_bytes", F("memory.kernel"), m->kernel, err) < 0)
    return -1;
  if (m->has_kernel_tcp && m->kernel_tcp != 0 &&
      write_i64(dir, "memory.kmem.tcp.limit_in_bytes", F("memory.kernelTCP"), m->kernel_tcp,
                err) < 0)
    return -1;
  if (m->has_swappiness &&
      cg_writef(dir, "memory.swappiness", F("memory.swappiness"), err, "%llu",
                (unsigned long long)m->swappiness) < 0)
    return -1;
  if (m->has_disable_oom_killer &&
      cg_write(dir, "memory.oom_control", m->disable_oom_killer ? "1" : "0",
               F("memory.disableOOMKiller"), err) < 0)
    return -1;
  if (m->has_use_hierarchy &&
      cg_write(dir, "memory.use_hierarchy", m->use_hierarchy ? "1" : "0",
               F("memory.useHierarchy"), err) < 0)
    return -1;
  return 0;
}

int cg_v1_cpu(const char *dir, const struct hv_oci_resources *r, hv_error_t *err) {
  const typeof(r->cpu) *c = &r->cpu;
  if (c->has_shares && c->shares &&
      cg_writef(dir, "cpu.shares", F("cpu.shares"), err, "%llu", (unsigned long long)c->shares) <
          0)
    return -1;
  /* Period first: the quota is checked against it. */
  if (c->has_period && c->period &&
      cg_writef(dir, "cpu.cfs_period_us", F("cpu.period"), err, "%llu",
                (unsigned long long)c->period) < 0)
    return -1;
  if (c->has_quota && c->quota &&
      write_i64(dir, "cpu.cfs_quota_us", F("cpu.quota"), c->quota, err) < 0)
    return -1;
  if (c->has_burst &&
      write_i64(dir, "cpu.cfs_burst_us", F("cpu.burst"), c->burst, err) < 0)
    return -1;
  /* Real-time: period before runtime, so the runtime fits the period. */
  if (c->has_realtime_period && c->realtime_period &&
      cg_writef(dir, "cpu.rt_period_us", F("cpu.realtimePeriod"), err, "%llu",
                (unsigned long long)c->realtime_period) < 0)
    return -1;
  if (c->has_realtime_runtime && c->realtime_runtime &&
      write_i64(dir, "cpu.rt_runtime_us", F("cpu.realtimeRuntime"), c->realtime_runtime, err) <
          0)
    return -1;
  if (c->has_idle && write_i64(dir, "cpu.idle", F("cpu.idle"), c->idle, err) < 0)
    return -1;
  return 0;
}

int cg_v1_cpuset(const char *dir, const struct hv_oci_resources *r, hv_error_t *err) {
  if (r->cpu.cpus && *r->cpu.cpus &&
      cg_write(dir, "cpuset.cpus", r->cpu.cpus, F("cpu.cpus"), err) < 0)
    return -1;
  if (r->cpu.mems && *r->cpu.mems &&
      cg_write(dir, "cpuset.mems", r->cpu.mems, F("cpu.mems"), err) < 0)
    return -1;
  return 0;
}

static bool blank(const char *s) {
  for (; s && *s; s++)
    if (*s != ' ' && *s != '\n')
      return false;
  return true;
}

int cg_v1_cpuset_copy_down(const char *top, const char *leaf, hv_error_t *err) {
  /* Walk from top to leaf; each level inherits its parent's value when empty. */
  size_t tl = strlen(top);
  cleanup_free char *p = hv_xstrdup(leaf);
  for (char *s = p + tl;; s++) {
    if (*s != '/' && *s != 0)
      continue;
    char saved = *s;
    *s = 0;
    cleanup_free char *parent = hv_xstrdup(p);
    *strrchr(parent, '/') = 0;
    static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
    for (size_t i = 0; i < 2; i++) {
      cleanup_free char *mine = NULL, *theirs = NULL;
      if (cg_read(p, files[i], &mine) < 0 || !blank(mine))
        continue;
      if (cg_read(parent, files[i], &theirs) < 0) {
        /* cgroup v1 cpuset in "noprefix" style or without the knob */
        continue;
      }
      theirs[strcspn(theirs, "\n")] = 0;
      if (cg_write(p, files[i], theirs, "cgroups: cpuset copy-down", err) < 0)
        return -1;
    }
    if (!saved)
      break;
    *s = saved;
  }
  return 0;
}

int cg_pids_limit(const char *dir, const struct hv_oci_resources *r, hv_error_t *err) {
  if (r->pids.limit == -1)
    return cg_write(dir, "pids.max", "max", F("pids.limit"), err);
  return write_i64(dir, "pids.max", F("pids.limit"), r->pids.limit, err);
}

/* blkio.weight exists with CFQ; with BFQ the knob is blkio.bfq.weight. */
static const char *pick(const char *dir, const char *a, const char *b) {
  if (cg_has_file(dir, a))
    return a;
  if (cg_has_file(dir, b))
    return b;
  return NULL;
}

static int throttle(const char *dir, const char *file, const char *field,
                    const struct hv_oci_throttle_device *t, size_t n, hv_error_t *err) {
  for (size_t i = 0; i < n; i++) {
    cleanup_free char *f = hv_xasprintf("%s[%zu]", field, i);
    if (cg_writef(dir, file, f, err, "%lld:%lld %llu", (long long)t[i].major,
                  (long long)t[i].minor, (unsigned long long)t[i].rate) < 0)
      return -1;
  }
  return 0;
}

int cg_v1_blkio(const char *dir, const struct hv_oci_resources *r, hv_error_t *err) {
  const typeof(r->block_io) *b = &r->block_io;
  if (b->has_weight && b->weight) {
    const char *f = pick(dir, "blkio.weight", "blkio.bfq.weight");
    if (!f)
      return hv_error(err, 0, F("blockIO.weight") ": blkio.weight is not available on this host");
    if (cg_writef(dir, f, F("blockIO.weight"), err, "%u", b->weight) < 0)
      return -1;
  }
  if (b->has_leaf_weight && b->leaf_weight &&
      cg_writef(dir, "blkio.leaf_weight", F("blockIO.leafWeight"), err, "%u", b->leaf_weight) <
          0)
    return -1;
  for (size_t i = 0; i < b->n_weight_device; i++) {
    const struct hv_oci_weight_device *w = &b->weight_device[i];
    cleanup_free char *field = hv_xasprintf(F("blockIO.weightDevice[%zu]"), i);
    if (w->has_weight && w->weight) {
      const char *f = pick(dir, "blkio.weight_device", "blkio.bfq.weight_device");
      if (!f)
        return hv_error(err, 0, "%s: blkio.weight_device is not available on this host", field);
      if (cg_writef(dir, f, field, err, "%lld:%lld %u", (long long)w->major,
                    (long long)w->minor, w->weight) < 0)
        return -1;
    }
    if (w->has_leaf_weight && w->leaf_weight &&
        cg_writef(dir, "blkio.leaf_weight_device", field, err, "%lld:%lld %u",
                  (long long)w->major, (long long)w->minor, w->leaf_weight) < 0)
      return -1;
  }
  if (throttle(dir, "blkio.throttle.read_bps_device", F("blockIO.throttleReadBpsDevice"),
               b->throttle_read_bps, b->n_throttle_read_bps, err) < 0 ||
      throttle(dir, "blkio.throttle.write_bps_device", F("blockIO.throttleWriteBpsDevice"),
               b->throttle_write_bps, b->n_throttle_write_bps, err) < 0 ||
      throttle(dir, "blkio.throttle.read_iops_device", F("blockIO.throttleReadIOPSDevice"),
               b->throttle_read_iops, b->n_throttle_read_iops, err) < 0 ||
      throttle(dir, "blkio.throttle.write_iops_device", F("blockIO.throttleWriteIOPSDevice"),
               b->throttle_write_iops, b->n_throttle_write_iops, err) < 0)
    return -1;
  return 0;
}

int cg_v1_hugetlb(const char *dir, const struct hv_oci_resources *r, hv_error_t *err) {
  for (size_t i = 0; i < r->n_hugepage_limits; i++) {
    cleanup_free char *file =
        hv_xasprintf("hugetlb.%s.limit_in_bytes", r->hugepage_limits[i].page_size);
    cleanup_free char *field = hv_xasprintf(F("hugepageLimits[%zu]"), i);
    if (cg_writef(dir, file, field, err, "%llu",
                  (unsigned long long)r->hugepage_limits[i].limit) < 0)
      return -1;
  }
  return 0;
}

int cg_v1_net_cls(const char *dir, const struct hv_oci_resources *r, hv_error_t *err) {
  return cg_writef(dir, "net_cls.classid", F("network.classID"), err, "%u",
                   r->network.class_id);
}

int cg_v1_net_prio(const char *dir, const struct hv_oci_resources *r, hv_error_t *err) {
  for (size_t i = 0; i < r->network.n_priorities; i++) {
    cleanup_free char *field = hv_xasprintf(F("network.priorities[%zu]"), i);
    if (cg_writef(dir, "net_prio.ifpriomap", field, err, "%s %u", r->network.priorities[i].name,
                  r->network.priorities[i].priority) < 0)
      return -1;
  }
  return 0;
}
