/* hostname.c: hostname and domainname, only in a private UTS namespace
 * (setting them otherwise would rename the host). */
#include "sandbox.h"
#include <errno.h>
#include <sched.h>
#include <string.h>

int ns_apply_hostname(const struct hv_oci_config *cfg, hv_error_t *err) {
  bool uts = ns_config_has_namespace(cfg, CLONE_NEWUTS);
  if (cfg->hostname && *cfg->hostname) {
    if (!uts)
      return hv_error(err, 0, "hostname: setting it requires a \"uts\" namespace in linux.namespaces");
    if (sethostname(cfg->hostname, strlen(cfg->hostname)) < 0)
      return hv_error(err, errno, "hostname: sethostname \"%s\"", cfg->hostname);
  }
  if (cfg->domainname && *cfg->domainname) {
    if (!uts)
      return hv_error(err, 0,
                      "domainname: setting it requires a \"uts\" namespace in linux.namespaces");
    if (setdomainname(cfg->domainname, strlen(cfg->domainname)) < 0)
      return hv_error(err, errno, "domainname: setdomainname \"%s\"", cfg->domainname);
  }
  return 0;
}
