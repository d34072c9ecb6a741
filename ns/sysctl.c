/* sysctl.c: linux.sysctl.  Only namespaced keys are accepted, with the
 * namespace that scopes them (the rule runc applies), so a container can
 * never change a host-wide setting:
 *   net.*                                        -> network namespace
 *   kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* -> ipc namespace
 *   kernel.hostname, kernel.domainname           -> uts namespace */
#include "sandbox.h"
#include <errno.h>
#include <sched.h>
#include <string.h>

static bool starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Keys may be written with dots or slashes (net/ipv4/ip_forward). */
static char *normalize_key(const char *key) {
  char *k = hv_xstrdup(key);
  for (char *c = k; *c; c++)
    if (*c == '/')
      *c = '.';
  return k;
}

static int check_key(const struct hv_oci_config *cfg, const char *key, hv_error_t *err) {
  cleanup_free char *k = normalize_key(key);
  if (!*k || strstr(k, "..") || k[0] == '.')
    return hv_error(err, 0, "linux.sysctl: invalid key \"%s\"", key);
  int need = 0;
  const char *nsname = NULL;
  if (starts(k, "net.")) {
    need = CLONE_NEWNET, nsname = "network";
  } else if (starts(k, "fs.mqueue.") || starts(k, "kernel.msg") || strcmp(k, "kernel.sem") == 0 ||
             starts(k, "kernel.shm")) {
    need = CLONE_NEWIPC, nsname = "ipc";
  } else if (strcmp(k, "kernel.hostname") == 0 || strcmp(k, "kernel.domainname") == 0) {
    need = CLONE_NEWUTS, nsname = "uts";
  } else {
    return hv_error(err, 0, "linux.sysctl: \"%s\" is not namespaced and would change the host",
                    key);
  }
  if (!ns_config_has_namespace(cfg, need))
    return hv_error(err, 0, "linux.sysctl: \"%s\" requires a %s namespace in linux.namespaces",
                    key, nsname);
  return 0;
}

int ns_validate_sysctl(const struct hv_oci_config *cfg, hv_error_t *err) {
  for (size_t i = 0; i < cfg->linux.n_sysctl; i++)
    if (check_key(cfg, cfg->linux.sysctl[i].key ? cfg->linux.sysctl[i].key : "", err) < 0)
      return -1;
  return 0;
}

int ns_apply_sysctl(const struct hv_oci_config *cfg, hv_error_t *err) {
  if (ns_validate_sysctl(cfg, err) < 0)
    return -1;
  for (size_t i = 0; i < cfg->linux.n_sysctl; i++) {
    const struct hv_oci_keyval *kv = &cfg->linux.sysctl[i];
    /* Slash form is taken literally (dots may be part of an interface
     * name such as eth0.100); dot form maps dots to slashes. */
    cleanup_free char *k = hv_xstrdup(kv->key);
    if (!strchr(k, '/'))
      for (char *c = k; *c; c++)
        if (*c == '.')
          *c = '/';
    cleanup_free char *path = hv_xasprintf("/proc/sys/%s", k);
    if (hv_write_file(path, kv->value ? kv->value : "", err) < 0)
      return hv_error_wrap(err, "linux.sysctl \"%s\"", kv->key);
  }
  return 0;
}
