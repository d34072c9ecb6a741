/* oci_parse_seccomp.c: linux.seccomp, also the whole document of
 * --security-opt seccomp=FILE and of the built-in default profile.
 * Enum values are checked here so a typo in an action or an arch is
 * reported with its position rather than by libseccomp at start time. */
#include "oci_internal.h"
#include <string.h>

static const char *const actions[] = {
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
    NULL};
static const char *const ops[] = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ",
                                  "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ", NULL};
static const char *const arches[] = {
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH", "SCMP_ARCH_SHEB", NULL};
static const char *const filter_flags[] = {
    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", NULL};

static bool one_of(const char *v, const char *const *list) {
  for (size_t i = 0; list[i]; i++)
    if (strcmp(v, list[i]) == 0)
      return true;
  return false;
}

static int check_enum(oci_ctx *c, const char *key, const char *v, const char *const *list,
                      const char *what) {
  if (!v || one_of(v, list))
    return 0;
  oci_push_key(c, key);
  int r = oci_fail(c, "unknown %s \"%s\"", what, v);
  oci_pop(c);
  return r;
}

static int check_enum_list(oci_ctx *c, const char *key, char **v, const char *const *list,
                           const char *what) {
  int r = 0;
  oci_push_key(c, key);
  for (size_t i = 0; v && v[i] && r >= 0; i++) {
    if (!one_of(v[i], list)) {
      oci_push_index(c, i);
      r = oci_fail(c, "unknown %s \"%s\"", what, v[i]);
      oci_pop(c);
    }
  }
  oci_pop(c);
  return r;
}

static int parse_arg(oci_ctx *c, json_t *e, struct hv_oci_seccomp_arg *a) {
  int r = oci_expect(c, e, JSON_OBJECT);
  if (r >= 0)
    r = oci_get_u32(c, e, "index", true, &a->index, NULL);
  if (r >= 0 && a->index > 5) {
    oci_push_key(c, "index");
    r = oci_fail(c, "%u is out of range [0, 5]", a->index);
    oci_pop(c);
  }
  if (r >= 0)
    r = oci_get_u64(c, e, "value", true, &a->value, NULL);
  if (r >= 0)
    r = oci_get_u64(c, e, "valueTwo", false, &a->value_two, NULL);
  if (r >= 0)
    r = oci_get_string(c, e, "op", true, &a->op);
  if (r >= 0)
    r = check_enum(c, "op", a->op, ops, "operator");
  return r;
}

static int parse_syscall(oci_ctx *c, json_t *e, struct hv_oci_seccomp_syscall *sc) {
  int r = oci_expect(c, e, JSON_OBJECT);
  if (r >= 0)
    r = oci_get_strv(c, e, "names", true, &sc->names);
  if (r >= 0 && !sc->names[0]) {
    oci_push_key(c, "names");
    r = oci_fail(c, "must not be empty");
    oci_pop(c);
  }
  if (r >= 0)
    r = oci_get_string(c, e, "action", true, &sc->action);
  if (r >= 0)
    r = check_enum(c, "action", sc->action, actions, "seccomp action");
  if (r >= 0)
    r = oci_get_u32(c, e, "errnoRet", false, &sc->errno_ret, &sc->has_errno_ret);
  json_t *args = NULL;
  if (r >= 0 && (r = oci_get_member(c, e, "args", JSON_ARRAY, &args)) > 0) {
    oci_push_key(c, "args");
    sc->n_args = json_array_size(args);
    sc->args = hv_xmalloc0(sc->n_args * sizeof(*sc->args));
    for (size_t i = 0; i < sc->n_args && r >= 0; i++) {
      oci_push_index(c, i);
      r = parse_arg(c, json_array_get(args, i), &sc->args[i]);
      oci_pop(c);
    }
    oci_pop(c);
  }
  return r < 0 ? r : 0;
}

int oci_parse_seccomp_obj(oci_ctx *c, json_t *j, struct hv_oci_seccomp *s) {
  int r = oci_expect(c, j, JSON_OBJECT);
  if (r >= 0)
    r = oci_get_string(c, j, "defaultAction", true, &s->default_action);
  if (r >= 0)
    r = check_enum(c, "defaultAction", s->default_action, actions, "seccomp action");
  if (r >= 0)
    r = oci_get_u32(c, j, "defaultErrnoRet", false, &s->default_errno_ret,
                    &s->has_default_errno_ret);
  if (r >= 0)
    r = oci_get_strv(c, j, "architectures", false, &s->architectures);
  if (r >= 0)
    r = check_enum_list(c, "architectures", s->architectures, arches, "architecture");
  if (r >= 0)
    r = oci_get_strv(c, j, "flags", false, &s->flags);
  if (r >= 0)
    r = check_enum_list(c, "flags", s->flags, filter_flags, "seccomp flag");
  if (r >= 0)
    r = oci_get_string(c, j, "listenerPath", false, &s->listener_path);
  if (r >= 0)
    r = oci_get_string(c, j, "listenerMetadata", false, &s->listener_metadata);
  json_t *arr = NULL;
  if (r >= 0 && (r = oci_get_member(c, j, "syscalls", JSON_ARRAY, &arr)) > 0) {
    oci_push_key(c, "syscalls");
    s->n_syscalls = json_array_size(arr);
    s->syscalls = hv_xmalloc0(s->n_syscalls * sizeof(*s->syscalls));
    for (size_t i = 0; i < s->n_syscalls && r >= 0; i++) {
      oci_push_index(c, i);
      r = parse_syscall(c, json_array_get(arr, i), &s->syscalls[i]);
      oci_pop(c);
    }
    oci_pop(c);
  }
  if (r < 0)
    return r;
  /* SCMP_ACT_NOTIFY hands syscalls to an agent; without a socket to send
   * the listener fd to, the container would just hang in them. */
  bool notify = strcmp(s->default_action, "SCMP_ACT_NOTIFY") == 0;
  for (size_t i = 0; i < s->n_syscalls; i++)
    notify = notify || strcmp(s->syscalls[i].action, "SCMP_ACT_NOTIFY") == 0;
  if (notify && !s->listener_path) {
    oci_push_key(c, "listenerPath");
    r = oci_fail(c, "required when an action is SCMP_ACT_NOTIFY");
    oci_pop(c);
    return r;
  }
  return 0;
}
