/* caps.c: the five OCI capability sets, with libcap.
 *
 * Called after setuid with PR_SET_KEEPCAPS (permitted survives the switch,
 * effective does not), so the first step raises effective to the whole
 * permitted set to regain CAP_SETPCAP for the bounding-set drop.  Names the
 * library or the running kernel does not know are skipped with a warning,
 * as runc does, so one spec works across kernels. */
#include "sandbox.h"
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

/* Capability number from "CAP_SYS_ADMIN" (any case), or -1. */
int ns_cap_from_name(const char *name) {
  if (!name)
    return -1;
  char low[64];
  size_t n = strlen(name);
  if (n >= sizeof low)
    return -1;
  for (size_t i = 0; i <= n; i++)
    low[i] = (char)tolower((unsigned char)name[i]);
  if (strncmp(low, "cap_", 4) != 0)
    return -1;
  cap_value_t v;
  if (cap_from_name(low, &v) < 0)
    return -1;
  if (v < 0 || v > cap_max_bits() - 1)
    return -1;
  return v;
}

static const char *cap_name(int c, char buf[static 64]) {
  char *n = cap_to_name(c);
  snprintf(buf, 64, "%s", n ? n : "?");
  cap_free(n);
  return buf;
}

/* Parse one set into a bitmask of known caps. */
static void parse_set(char **names, const char *set, uint64_t *mask) {
  *mask = 0;
  for (size_t i = 0; names && names[i]; i++) {
    int c = ns_cap_from_name(names[i]);
    if (c < 0 || c >= 64) {
      hv_warn("process.capabilities.%s: unknown or unsupported capability \"%s\", ignoring", set,
              names[i]);
      continue;
    }
    *mask |= 1ULL << c;
  }
}

int hv_caps_apply(const struct hv_oci_capabilities *c, hv_error_t *err) {
  if (!c)
    return 0;
  uint64_t bnd, eff, inh, prm, amb;
  parse_set(c->bounding, "bounding", &bnd);
  parse_set(c->effective, "effective", &eff);
  parse_set(c->inheritable, "inheritable", &inh);
  parse_set(c->permitted, "permitted", &prm);
  parse_set(c->ambient, "ambient", &amb);
  int max = (int)cap_max_bits();

  /* 1. effective := permitted, to hold CAP_SETPCAP for the next step. */
  cap_t cur = cap_get_proc();
  if (!cur)
    return hv_error(err, errno, "capabilities: read current");
  for (int i = 0; i < max; i++) {
    cap_flag_value_t v;
    cap_value_t cv = i;
    if (cap_get_flag(cur, cv, CAP_PERMITTED, &v) == 0 && v == CAP_SET)
      cap_set_flag(cur, CAP_EFFECTIVE, 1, &cv, CAP_SET);
  }
  int r = cap_set_proc(cur);
  int e = errno;
  cap_free(cur);
  if (r < 0)
    return hv_error(err, e, "capabilities: raise effective set");

  /* 2. bounding set */
  for (int i = 0; i < max; i++) {
    if (bnd & (1ULL << i))
      continue;
    char nb[64];
    if (cap_drop_bound(i) < 0 && errno != EINVAL)
      return hv_error(err, errno, "capabilities: drop %s from the bounding set", cap_name(i, nb));
  }

  /* 3. effective, permitted, inheritable */
  cap_t want = cap_init();
  if (!want)
    return hv_error(err, errno, "capabilities: cap_init");
  for (int i = 0; i < max; i++) {
    cap_value_t cv = i;
    if (eff & (1ULL << i))
      cap_set_flag(want, CAP_EFFECTIVE, 1, &cv, CAP_SET);
    if (prm & (1ULL << i))
      cap_set_flag(want, CAP_PERMITTED, 1, &cv, CAP_SET);
    if (inh & (1ULL << i))
      cap_set_flag(want, CAP_INHERITABLE, 1, &cv, CAP_SET);
  }
  r = cap_set_proc(want);
  e = errno;
  cap_free(want);
  if (r < 0)
    return hv_error(err, e, "capabilities: set effective/permitted/inheritable "
                            "(effective must be a subset of permitted)");

  /* 4. ambient: each needs to be permitted and inheritable too. */
  /* One prctl (libcap's cap_reset_ambient asks about every capability
   * first: 41 system calls on the start path). */
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return hv_error(err, errno, "capabilities: clear ambient set");
  for (int i = 0; i < max; i++) {
    if (!(amb & (1ULL << i)))
      continue;
    char nb[64];
    if (cap_set_ambient(i, CAP_SET) < 0)
      hv_debug("process.capabilities.ambient: cannot raise %s (it must also be permitted and "
              "inheritable): %s",
              cap_name(i, nb), strerror(errno));
  }
  return 0;
}
