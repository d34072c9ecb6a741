/* resources_v2.c: linux.resources -> cgroup2 files (unified host, or the
 * controllers a hybrid host binds to its cgroup2 mount, e.g. hugetlb). */
#include "internal.h"
#include <dirent.h>
#include <errno.h>
#include <string.h>

#define F(x) "linux.resources." x

static int v2_unsupported(hv_error_t *err, const char *field) {
  return hv_error(err, 0, "linux.resources.%s: not supported by cgroup v2 on this host", field);
}

static int write_max(const char *dir, const char *file, const char *field, int64_t v,
                     hv_error_t *err) {
  if (v == -1)
    return cg_write(dir, file, "max", field, err);
  return cg_writef(dir, file, field, err, "%lld", (long long)v);
}

int cg_v2_memory(const char *dir, const struct hv_oci_resources *r, bool update,
                 hv_error_t *err) {
  const typeof(r->memory) *m = &r->memory;
  if (m->has_kernel && m->kernel != 0)
    return v2_unsupported(err, "memory.kernel");
  if (m->has_kernel_tcp && m->kernel_tcp != 0)
    return v2_unsupported(err, "memory.kernelTCP");
  if (m->has_swappiness)
    return v2_unsupported(err, "memory.swappiness");
  if (m->has_disable_oom_killer && m->disable_oom_killer)
    return v2_unsupported(err, "memory.disableOOMKiller");
  bool has_limit = m->has_limit && m->limit != 0, has_swap = m->has_swap && m->swap != 0;
  /* OCI swap is memory+swap (the v1 meaning); memory.swap.max is swap only. */
  int64_t swap = 0;
  if (has_swap) {
    if (m->swap == -1) {
      swap = -1;
    } else {
      if (!has_limit || m->limit == -1)
        return hv_error(err, 0,
                        F("memory.swap") ": a swap limit needs a memory.limit on cgroup v2");
      swap = m->swap - m->limit;
    }
  } else if (has_limit && m->limit == -1) {
    /* unlimited memory and no swap given: unlimited swap too (as runc) */
    has_swap = cg_has_file(dir, "memory.swap.max");
    swap = -1;
  }
  if (has_limit && update && m->limit > 0) {
    /* cgroup2 accepts any memory.max and OOM-kills to reach it; refuse
     * instead, as v1 does with EBUSY. */
    int64_t cur = 0;
    if (cg_read_i64(dir, "memory.current", &cur) == 0 && cur > m->limit)
      return hv_error(err, 0,
                      F("memory.limit") ": %lld is below the current usage (%lld bytes) of `%s`",
                      (long long)m->limit, (long long)cur, dir);
  }
  if (has_swap && write_max(dir, "memory.swap.max", F("memory.swap"), swap, err) < 0)
    return -1;
  if (has_limit && write_max(dir, "memory.max", F("memory.limit"), m->limit, err) < 0)
    return -1;
  if (m->has_reservation && m->reservation != 0 &&
      write_max(dir, "memory.low", F("memory.reservation"), m->reservation, err) < 0)
    return -1;
  return 0;
}

int cg_v2_cpu(const char *dir, const struct hv_oci_resources *r, hv_error_t *err) {
  const typeof(r->cpu) *c = &r->cpu;
  if ((c->has_realtime_runtime && c->realtime_runtime) ||
      (c->has_realtime_period && c->realtime_period))
    return v2_unsupported(err, "cpu.realtimeRuntime");
  if (c->has_shares && c->shares &&
      cg_writef(dir, "cpu.weight", F("cpu.shares"), err, "%llu",
                (unsigned long long)cg_shares_to_weight(c->shares)) < 0)
    return -1;
  bool q = c->has_quota && c->quota, p = c->has_period && c->period;
  if (q || p) {
    /* "max" when only the period is given keeps it unlimited, as runc. */
    char quota[32] = "max", buf[64];
    if (q && c->quota > 0)
      snprintf(quota, sizeof quota, "%lld", (long long)c->quota);
    if (p)
      snprintf(buf, sizeof buf, "%s %llu", quota, (unsigned long long)c->period);
    else
      snprintf(buf, sizeof buf, "%s", quota);
    if (cg_write(dir, "cpu.max", buf, q ? F("cpu.quota") : F("cpu.period"), err) < 0)
      return -1;
  }
  if (c->has_burst &&
      cg_writef(dir, "cpu.max.burst", F("cpu.burst"), err, "%lld", (long long)c->burst) < 0)
    return -1;
  if (c->has_idle &&
      cg_writef(dir, "cpu.idle", F("cpu.idle"), err, "%lld", (long long)c->idle) < 0)
    return -1;
  return 0;
}

int cg_v2_cpuset(const char *dir, const struct hv_oci_resources *r, hv_error_t *err) {
  if (r->cpu.cpus && *r->cpu.cpus &&
      cg_write(dir, "cpuset.cpus", r->cpu.cpus, F("cpu.cpus"), err) < 0)
    return -1;
  if (r->cpu.mems && *r->cpu.mems &&
      cg_write(dir, "cpuset.mems", r->cpu.mems, F("cpu.mems"), err) < 0)
    return -1;
  return 0;
}

static int io_max(const char *dir, const char *key, const char *field,
                  const struct hv_oci_throttle_device *t, size_t n, hv_error_t *err) {
  for (size_t i = 0; i < n; i++) {
    cleanup_free char *f = hv_xasprintf("%s[%zu]", field, i);
    if (cg_writef(dir, "io.max", f, err, "%lld:%lld %s=%llu", (long long)t[i].major,
                  (long long)t[i].minor, key, (unsigned long long)t[i].rate) < 0)
      return -1;
  }
  return 0;
}

int cg_v2_io(const char *dir, const struct hv_oci_resources *r, hv_error_t *err) {
  const typeof(r->block_io) *b = &r->block_io;
  /* BFQ takes the v1 scale (1..1000) directly; io.weight needs conversion. */
  bool bfq = cg_has_file(dir, "io.bfq.weight");
  if (b->has_leaf_weight && b->leaf_weight)
    return v2_unsupported(err, "blockIO.leafWeight");
  if (b->has_weight && b->weight) {
    if (bfq) {
      if (cg_writef(dir, "io.bfq.weight", F("blockIO.weight"), err, "%u", b->weight) < 0)
        return -1;
    } else if (!cg_has_file(dir, "io.weight")) {
      return hv_error(err, 0, F("blockIO.weight") ": io.weight is not available on this host");
    } else if (cg_writef(dir, "io.weight", F("blockIO.weight"), err, "default %llu",
                         (unsigned long long)cg_blkio_weight_to_io_weight(b->weight)) < 0) {
      return -1;
    }
  }
  for (size_t i = 0; i < b->n_weight_device; i++) {
    const struct hv_oci_weight_device *w = &b->weight_device[i];
    cleanup_free char *field = hv_xasprintf(F("blockIO.weightDevice[%zu]"), i);
    if (w->has_leaf_weight && w->leaf_weight)
      return v2_unsupported(err, "blockIO.weightDevice.leafWeight");
    if (!w->has_weight || !w->weight)
      continue;
    int rc = bfq ? cg_writef(dir, "io.bfq.weight", field, err, "%lld:%lld %u",
                             (long long)w->major, (long long)w->minor, w->weight)
                 : cg_writef(dir, "io.weight", field, err, "%lld:%lld %llu", (long long)w->major,
                             (long long)w->minor,
                             (unsigned long long)cg_blkio_weight_to_io_weight(w->weight));
    if (rc < 0)
      return -1;
  }
  if (io_max(dir, "rbps", F("blockIO.throttleReadBpsDevice"), b->throttle_read_bps,
             b->n_throttle_read_bps, err) < 0 ||
      io_max(dir, "wbps", F("blockIO.throttleWriteBpsDevice"), b->throttle_write_bps,
             b->n_throttle_write_bps, err) < 0 ||
      io_max(dir, "riops", F("blockIO.throttleReadIOPSDevice"), b->throttle_read_iops,
             b->n_throttle_read_iops, err) < 0 ||
      io_max(dir, "wiops", F("blockIO.throttleWriteIOPSDevice"), b->throttle_write_iops,
             b->n_throttle_write_iops, err) < 0)
    return -1;
  return 0;
}

int cg_v2_hugetlb(const char *dir, const struct hv_oci_resources *r, hv_error_t *err) {
  for (size_t i = 0; i < r->n_hugepage_limits; i++) {
    cleanup_free char *file = hv_xasprintf("hugetlb.%s.max", r->hugepage_limits[i].page_size);
    cleanup_free char *field = hv_xasprintf(F("hugepageLimits[%zu]"), i);
    if (cg_writef(dir, file, field, err, "%llu",
                  (unsigned long long)r->hugepage_limits[i].limit) < 0)
      return -1;
  }
  return 0;
}

int cg_v2_unified(struct hv_cgroup *cg, const struct hv_oci_resources *r, hv_error_t *err) {
  for (size_t i = 0; i < r->n_unified; i++) {
    const char *key = r->unified[i].key;
    cleanup_free char *ctrl = strndup(key, strcspn(key, "."));
    cleanup_free char *field = hv_xasprintf(F("unified.%s"), key);
    struct cg_dir *d = strcmp(ctrl, "cgroup") == 0 ? cg_v2_dir(cg) : cg_dir_for(cg, ctrl);
    if (!d || !cg_dir_is_v2(cg, d))
      return hv_error(err, 0, "%s: the %s controller is not on cgroup v2 on this host (%s layout)",
                      field, ctrl, hv_cg_layout_name(cg->L->kind));
    if (cg_write(d->path, key, r->unified[i].value ? r->unified[i].value : "", field, err) < 0)
      return -1;
  }
  return 0;
}

void cg_v2_enable_controllers(const char *mount, const char *leaf) {
  /* Walk mount -> leaf's parent; at each level enable what the level offers. */
  size_t ml = strlen(mount);
  cleanup_free char *p = hv_xstrdup(leaf);
  for (char *s = p + ml;; s++) {
    if (*s != '/' && *s != 0)
      continue;
    if (*s == 0)
      break; /* the leaf itself: its processes forbid enabling below it */
    char saved = *s;
    *s = 0;
    cleanup_free char *avail = NULL, *on = NULL;
    if (cg_read(p, "cgroup.controllers", &avail) == 0 &&
        cg_read(p, "cgroup.subtree_control", &on) == 0) {
      char *save = NULL;
      for (char *c = strtok_r(avail, " \n", &save); c; c = strtok_r(NULL, " \n", &save)) {
        cleanup_free char *needle = hv_xasprintf(" %s ", c);
        cleanup_free char *hay = hv_xasprintf(" %s ", on);
        for (char *h = hay; *h; h++)
          if (*h == '\n')
            *h = ' ';
        if (strstr(hay, needle))
          continue;
        hv_error_t e = NULL;
        cleanup_free char *plus = hv_xasprintf("+%s", c);
        cg_write(p, "cgroup.subtree_control", plus, "enable", &e);
        hv_error_release(&e);
      }
    }
    *s = saved;
  }
}
