/* seccomp.c: linux.seccomp with libseccomp.
 *
 * Follows runc where the spec is silent:
 *   - syscall names libseccomp does not know are skipped (debug log), so a
 *     profile listing new syscalls still loads on older kernels/libraries;
 *   - architectures the library does not know are skipped the same way;
 *   - rules whose action equals the default action are dropped (the kernel
 *     filter would be identical, and libseccomp rejects them);
 *   - args with distinct indexes form ONE rule (AND); when an index repeats,
 *     each arg becomes its own rule (OR), the only way to express "a0 == 1
 *     or a0 == 2";
 *   - libseccomp's implicit no_new_privs is disabled: process.noNewPrivileges
 *     decides that (process.c orders the load accordingly).
 * SCMP_ACT_NOTIFY with listenerPath sends the notify fd, with the container
 * process state, over the unix socket (runtime-spec "seccomp listener"). */
#include "sandbox.h"
#include <ctype.h>
#include <errno.h>
#include <seccomp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

int ns_seccomp_listener_fd = -1;
static char *listener_state; /* JSON given by ns_seccomp_listener_prepare */

struct action_name { const char *name; uint32_t action; bool takes_errno; };
static const struct action_name actions[] = {
    {"SCMP_ACT_KILL", SCMP_ACT_KILL, false},
    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, false},
    {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, false},
    {"SCMP_ACT_TRAP", SCMP_ACT_TRAP, false},
    {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0), true},
    {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0), true},
    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, false},
    {"SCMP_ACT_LOG", SCMP_ACT_LOG, false},
    {"SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY, false},
};

/* Resolve an action name; errno-taking actions default to EPERM as runc. */
static int parse_action(const char *name, bool has_ret, uint32_t ret, const char *what,
                        uint32_t *out, hv_error_t *err) {
  if (!name)
    return hv_error(err, 0, "%s: missing", what);
  for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
    if (strcmp(name, actions[i].name) != 0)
      continue;
    if (actions[i].takes_errno) {
      uint32_t v = has_ret ? ret : EPERM;
      if (v > 0xffff)
        return hv_error(err, 0, "%s: errnoRet %u is out of range", what, v);
      *out = strcmp(name, "SCMP_ACT_ERRNO") == 0 ? SCMP_ACT_ERRNO(v) : SCMP_ACT_TRACE(v);
    } else {
      *out = actions[i].action;
    }
    return 0;
  }
  return hv_error(err, 0, "%s: unknown action \"%s\"", what, name);
}

static const struct { const char *name; enum scmp_compare op; } ops[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

static int parse_arg(const struct hv_oci_seccomp_arg *a, const char *what,
                     struct scmp_arg_cmp *out, hv_error_t *err) {
  if (a->index > 5)
    return hv_error(err, 0, "%s.index: %u is out of range 0-5", what, a->index);
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    if (a->op && strcmp(a->op, ops[i].name) == 0) {
      *out = (struct scmp_arg_cmp){.arg = a->index, .op = ops[i].op, .datum_a = a->value,
                                   .datum_b = a->value_two};
      return 0;
    }
  }
  return hv_error(err, 0, "%s.op: unknown operator \"%s\"", what, a->op ? a->op : "(missing)");
}

/* "SCMP_ARCH_X86_64" -> libseccomp token, 0 if unknown to the library. */
static uint32_t parse_arch(const char *name) {
  if (!name || strncmp(name, "SCMP_ARCH_", 10) != 0)
    return 0;
  char low[32];
  size_t n = strlen(name + 10);
  if (n >= sizeof low)
    return 0;
  for (size_t i = 0; i <= n; i++)
    low[i] = (char)tolower((unsigned char)name[10 + i]);
  return seccomp_arch_resolve_name(low);
}

static int set_flag(scmp_filter_ctx ctx, const char *flag, size_t i, hv_error_t *err) {
  enum scmp_filter_attr attr;
  if (strcmp(flag, "SECCOMP_FILTER_FLAG_TSYNC") == 0)
    attr = SCMP_FLTATR_CTL_TSYNC;
  else if (strcmp(flag, "SECCOMP_FILTER_FLAG_LOG") == 0)
    attr = SCMP_FLTATR_CTL_LOG;
  else if (strcmp(flag, "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
    attr = SCMP_FLTATR_CTL_SSB;
  else if (strcmp(flag, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") == 0) {
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 6)
    attr = SCMP_FLTATR_CTL_WAITKILL;
#else
    hv_warn("linux.seccomp.flags[%zu]: %s needs libseccomp >= 2.6, ignoring it", i, flag);
    return 0;
#endif
  } else
    return hv_error(err, 0, "linux.seccomp.flags[%zu]: unknown flag \"%s\"", i, flag);
  int r = seccomp_attr_set(ctx, attr, 1);
  if (r < 0)
    return hv_error(err, -r, "linux.seccomp.flags[%zu]: %s not supported", i, flag);
  return 0;
}

static bool index_repeats(const struct hv_oci_seccomp_syscall *sc) {
  for (size_t i = 0; i < sc->n_args; i++)
    for (size_t k = i + 1; k < sc->n_args; k++)
      if (sc->args[i].index == sc->args[k].index)
        return true;
  return false;
}

static int add_rules(scmp_filter_ctx ctx, const struct hv_oci_seccomp *s, uint32_t def,
                     bool *uses_notify, hv_error_t *err) {
  for (size_t g = 0; g < s->n_syscalls; g++) {
    const struct hv_oci_seccomp_syscall *sc = &s->syscalls[g];
    char what[64];
    snprintf(what, sizeof what, "linux.seccomp.syscalls[%zu]", g);
    uint32_t act;
    char awhat[80];
    snprintf(awhat, sizeof awhat, "%s.action", what);
    if (parse_action(sc->action, sc->has_errno_ret, sc->errno_ret, awhat, &act, err) < 0)
      return -1;
    if (act == SCMP_ACT_NOTIFY)
      *uses_notify = true;
    struct scmp_arg_cmp cmps[6];
    if (sc->n_args > 6 && !index_repeats(sc))
      return hv_error(err, 0, "%s.args: more than 6 arguments", what);
    struct scmp_arg_cmp all[sc->n_args ? sc->n_args : 1];
    for (size_t a = 0; a < sc->n_args; a++) {
      char argwhat[96];
      snprintf(argwhat, sizeof argwhat, "%s.args[%zu]", what, a);
      if (parse_arg(&sc->args[a], argwhat, &all[a], err) < 0)
        return -1;
    }
    if (act == def)
      continue;
    bool separate = index_repeats(sc);
    for (size_t n = 0; sc->names && sc->names[n]; n++) {
      int nr = seccomp_syscall_resolve_name(sc->names[n]);
      if (nr == __NR_SCMP_ERROR) {
        hv_debug("seccomp: unknown syscall \"%s\", skipping it", sc->names[n]);
        continue;
      }
      int r;
      if (!separate) {
        memcpy(cmps, all, sizeof all[0] * sc->n_args);
        r = seccomp_rule_add_array(ctx, act, nr, (unsigned)sc->n_args, cmps);
      } else {
        r = 0;
        for (size_t a = 0; a < sc->n_args && r == 0; a++)
          r = seccomp_rule_add_array(ctx, act, nr, 1, &all[a]);
      }
      if (r < 0)
        return hv_error(err, -r, "%s: add rule for \"%s\"", what, sc->names[n]);
    }
  }
  return 0;
}

/* Send the notify fd and the process state to the listener socket. */
static int send_to_listener(const struct hv_oci_seccomp *s, int notify_fd, hv_error_t *err) {
  if (ns_seccomp_listener_fd < 0)
    return hv_error(err, 0, "linux.seccomp.listenerPath `%s`: not connected",
                    s->listener_path ? s->listener_path : "");
  cleanup_free char *fallback = NULL;
  const char *state = listener_state;
  if (!state) {
    json_t *j = json_pack("{s:s,s:[s],s:i,s:s}", "ociVersion", "1.2.0", "fds", "seccompFd", "pid",
                          (int)getpid(), "metadata",
                          s->listener_metadata ? s->listener_metadata : "");
    fallback = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    state = fallback ? fallback : "{}";
  }
  if (ns_send_fd(ns_seccomp_listener_fd, notify_fd, state) < 0)
    return hv_error(err, errno, "linux.seccomp.listenerPath: send notify fd");
  close(ns_seccomp_listener_fd);
  ns_seccomp_listener_fd = -1;
  return 0;
}

int ns_seccomp_listener_prepare(const struct hv_oci_seccomp *s, const char *state_json,
                                hv_error_t *err) {
  if (!s || !s->listener_path || !*s->listener_path)
    return 0;
  if (ns_seccomp_listener_fd >= 0) {
    /* Connected earlier (exec: before setns); now the state is known. */
    if (state_json) {
      free(listener_state);
      listener_state = hv_xstrdup(state_json);
    }
    return 0;
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(s->listener_path) >= sizeof sa.sun_path)
    return hv_error(err, 0, "linux.seccomp.listenerPath: `%s` is too long", s->listener_path);
  strcpy(sa.sun_path, s->listener_path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return hv_error(err, errno, "linux.seccomp.listenerPath: socket");
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return hv_error(err, e, "linux.seccomp.listenerPath: connect `%s`", s->listener_path);
  }
  ns_seccomp_listener_fd = fd;
  free(listener_state);
  listener_state = hv_xstrdup(state_json);
  return 0;
}

bool ns_seccomp_uses_notify(const struct hv_oci_seccomp *s) {
  if (!s)
    return false;
  if (s->default_action && strcmp(s->default_action, "SCMP_ACT_NOTIFY") == 0)
    return true;
  for (size_t i = 0; i < s->n_syscalls; i++)
    if (s->syscalls[i].action && strcmp(s->syscalls[i].action, "SCMP_ACT_NOTIFY") == 0)
      return true;
  return false;
}

/* Build the filter; load it only when `load` (else this is validation). */
static int build_filter(const struct hv_oci_seccomp *s, bool load, hv_error_t *err) {
  if (!s)
    return 0;
  uint32_t def;
  if (parse_action(s->default_action, s->has_default_errno_ret, s->default_errno_ret,
                   "linux.seccomp.defaultAction", &def, err) < 0)
    return -1;
  scmp_filter_ctx ctx = seccomp_init(def);
  if (!ctx)
    return hv_error(err, ENOMEM, "linux.seccomp: seccomp_init");
  int rc = -1, r;
  bool uses_notify = def == SCMP_ACT_NOTIFY;
  if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0) {
    hv_error(err, -r, "linux.seccomp: disable implicit no_new_privs");
    goto out;
  }
  /* A binary tree of syscall numbers instead of a linear list: the default
   * profile allows ~350 syscalls, and every syscall the workload makes runs
   * the filter.  Under PVM, where a guest's ring-0 code is emulated, the
   * linear filter was 12% of a whole microVM boot.  Older libseccomp lacks
   * the attribute; the filter is the same either way. */
  if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) < 0)
    hv_debug("seccomp: binary-tree optimisation not available, using a linear filter");
  for (size_t i = 0; s->architectures && s->architectures[i]; i++) {
    uint32_t arch = parse_arch(s->architectures[i]);
    if (!arch) {
      hv_debug("seccomp: architecture \"%s\" unknown to libseccomp, skipping it",
               s->architectures[i]);
      continue;
    }
    r = seccomp_arch_add(ctx, arch);
    if (r < 0 && r != -EEXIST) {
      hv_debug("seccomp: architecture \"%s\" not supported here, skipping it",
               s->architectures[i]);
      continue;
    }
  }
  for (size_t i = 0; s->flags && s->flags[i]; i++)
    if (set_flag(ctx, s->flags[i], i, err) < 0)
      goto out;
  if (add_rules(ctx, s, def, &uses_notify, err) < 0)
    goto out;
  if (uses_notify && (!s->listener_path || !*s->listener_path)) {
    hv_error(err, 0, "linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath");
    goto out;
  }
  if (!load) {
    rc = 0;
    goto out;
  }
  /* Connect before loading: the filter may not allow socket/connect. */
  if (uses_notify && ns_seccomp_listener_prepare(s, NULL, err) < 0)
    goto out;
  if ((r = seccomp_load(ctx)) < 0) {
    hv_error(err, -r, "linux.seccomp: load filter");
    goto out;
  }
  if (uses_notify) {
    int nfd = seccomp_notify_fd(ctx);
    if (nfd < 0) {
      hv_error(err, -nfd, "linux.seccomp: get notify fd");
      goto out;
    }
    if (send_to_listener(s, nfd, err) < 0)
      goto out;
  }
  rc = 0;
out:
  seccomp_release(ctx); /* also closes the notify fd: the listener holds its copy */
  return rc;
}

int hv_seccomp_load(const struct hv_oci_seccomp *s, hv_error_t *err) {
  return build_filter(s, true, err);
}

int ns_seccomp_validate(const struct hv_oci_seccomp *s, hv_error_t *err) {
  return build_filter(s, false, err);
}
