/* network.c: the loopback interface of a new network namespace.
 *
 * A fresh network namespace has only `lo`, and it is DOWN: nothing can talk
 * to 127.0.0.1 (servers that bind to it fail, clients get ENETUNREACH).
 * runc and crun bring it up in the container's init; so does hvrun, so
 * `--network none` means "loopback only", not "no sockets at all".  A
 * joined namespace (linux.namespaces[].path) belongs to someone else and
 * is left as it is. */
#include "sandbox.h"
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static bool creates_network_ns(const struct hv_oci_config *cfg) {
  for (size_t i = 0; i < cfg->linux.n_namespaces; i++) {
    const struct hv_oci_namespace *n = &cfg->linux.namespaces[i];
    if (n->flag == CLONE_NEWNET && (!n->path || !*n->path))
      return true;
  }
  return false;
}

int ns_setup_loopback(const struct hv_oci_config *cfg, hv_error_t *err) {
  return creates_network_ns(cfg) ? ns_loopback_up(err) : 0;
}

int ns_loopback_up(hv_error_t *err) {
  /* SIOCSIFFLAGS on any socket of the namespace: one socket and two
   * ioctls, far cheaper than a netlink round trip. */
  cleanup_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return hv_error(err, errno, "network namespace: socket for bringing up `lo`");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
    return hv_error(err, errno, "network namespace: read the flags of `lo`");
  if (ifr.ifr_flags & IFF_UP)
    return 0;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
    return hv_error(err, errno, "network namespace: bring `lo` up");
  return 0;
}
