/* devices.c: the device access rules (runc's default set plus the spec's
 * linux.resources.devices) and their cgroup v1 form (devices.allow/deny).
 * The cgroup2 form is an eBPF program: devices_bpf.c. */
#include "internal.h"
#include <string.h>

/* What every container may use: null, zero, full, random, urandom, tty,
 * ptmx and the pty slaves (major 136).  Order: deny all, these, then the
 * spec's rules, so a spec rule can still deny one of them. */
static const struct cg_dev_rule default_rules[] = {
    {true, 'c', 1, 3, "rwm"}, {true, 'c', 1, 5, "rwm"}, {true, 'c', 1, 7, "rwm"},
    {true, 'c', 1, 8, "rwm"}, {true, 'c', 1, 9, "rwm"}, {true, 'c', 5, 0, "rwm"},
    {true, 'c', 5, 2, "rwm"}, {true, 'c', 136, -1, "rwm"},
};

int cg_dev_rules(const struct hv_oci_resources *r, struct cg_dev_rule **out, size_t *n,
                 hv_error_t *err) {
  size_t nd = sizeof default_rules / sizeof default_rules[0];
  size_t total = (1 + nd) * (1 + (r ? r->n_devices : 0));
  struct cg_dev_rule *v = hv_xmalloc0(total * sizeof(*v));
  size_t k = 0;
  v[k++] = (struct cg_dev_rule){false, 'a', -1, -1, "rwm"}; /* deny everything first */
  for (size_t i = 0; i < nd; i++)
    v[k++] = default_rules[i];
  for (size_t i = 0; r && i < r->n_devices; i++) {
    const struct hv_oci_device_cgroup *d = &r->devices[i];
    /* Configs from runc spec, podman and containerd begin with
     * {"allow": false, "access": "rwm"}: read it as "reset to the base"
     * (deny all, then the defaults), or it would take away /dev/null and
     * friends, which runc keeps by appending its defaults after the spec. */
    bool all_type = !d->type || d->type == 'a';
    bool all_acc = !d->access || !*d->access ||
                   (strchr(d->access, 'r') && strchr(d->access, 'w') && strchr(d->access, 'm'));
    if (!d->allow && all_type && all_acc && (!d->has_major || d->major == -1) &&
        (!d->has_minor || d->minor == -1)) {
      v[k++] = v[0];
      for (size_t j = 0; j < nd; j++)
        v[k++] = default_rules[j];
      continue;
    }
    struct cg_dev_rule *x = &v[k++];
    x->allow = d->allow;
    x->type = d->type ? d->type : 'a';
    x->major = d->has_major ? d->major : -1;
    x->minor = d->has_minor ? d->minor : -1;
    if (x->major > 0x7fffffff || x->minor > 0x7fffffff) {
      free(v);
      return hv_error(err, 0, "linux.resources.devices[%zu]: major/minor out of range", i);
    }
    /* keep "rwm" order and drop duplicates: the kernel's canonical form */
    const char *acc = d->access && *d->access ? d->access : "rwm";
    size_t a = 0;
    for (const char *c = "rwm"; *c; c++)
      if (strchr(acc, *c))
        x->access[a++] = *c;
    x->access[a] = 0;
  }
  *out = v;
  *n = k;
  return 0;
}

static void num(char *buf, size_t len, int64_t v) {
  if (v < 0)
    snprintf(buf, len, "*");
  else
    snprintf(buf, len, "%lld", (long long)v);
}

int cg_v1_devices(const char *dir, const struct cg_dev_rule *rules, size_t n, hv_error_t *err) {
  for (size_t i = 0; i < n; i++) {
    char maj[24], min[24], line[96];
    num(maj, sizeof maj, rules[i].major);
    num(min, sizeof min, rules[i].minor);
    snprintf(line, sizeof line, "%c %s:%s %s", rules[i].type, maj, min, rules[i].access);
    cleanup_free char *field = hv_xasprintf("linux.resources.devices (rule `%s`)", line);
    if (cg_write(dir, rules[i].allow ? "devices.allow" : "devices.deny", line, field, err) < 0)
      return -1;
  }
  return 0;
}
