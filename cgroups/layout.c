/* layout.c: find the cgroup hierarchies from /proc/self/mountinfo and
 * classify the host as v1, hybrid or unified; knob I/O helpers.
 *
 * Why mountinfo and not /proc/cgroups: /proc/cgroups says which controllers
 * the kernel has, not where (or whether) they are mounted, and controllers
 * can be co-mounted (cpu,cpuacct) on one host and separate on another. */
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_ROOT "/sys/fs/cgroup"

static const char *const v1_controllers[] = {
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
    "net_cls", "net_prio", "hugetlb", "perf_event", "rdma", "misc", NULL};

static char *test_root;        /* hv_cg_set_root_for_tests */
static char *test_mountinfo, *test_self_cgroup, *test_systemd;
static struct cg_layout cached;
static bool cached_ok;

void hv_cg_set_root_for_tests(const char *root) {
  free(test_root);
  free(test_mountinfo);
  free(test_self_cgroup);
  free(test_systemd);
  test_root = hv_xstrdup(root);
  test_mountinfo = root ? hv_xasprintf("%s/.mountinfo", root) : NULL;
  test_self_cgroup = root ? hv_xasprintf("%s/.self_cgroup", root) : NULL;
  test_systemd = root ? hv_xasprintf("%s/.run_systemd_system", root) : NULL;
  if (cached_ok)
    cg_layout_clear(&cached);
  cached_ok = false;
}

const char *cg_self_cgroup_file(void) {
  return test_self_cgroup ? test_self_cgroup : "/proc/self/cgroup";
}
const char *cg_systemd_dir(void) { return test_systemd ? test_systemd : "/run/systemd/system"; }

const char *hv_cg_layout_name(enum hv_cg_layout l) {
  switch (l) {
  case HV_CG_V1: return "v1";
  case HV_CG_HYBRID: return "hybrid";
  case HV_CG_V2: return "v2";
  }
  return "?";
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s) {
  char *w = s;
  for (char *r = s; *r; r++) {
    if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
        r[3] >= '0' && r[3] <= '7') {
      *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
      r += 3;
    } else {
      *w++ = *r;
    }
  }
  *w = 0;
}

static bool under_root(const char *mnt, const char *root) {
  size_t n = strlen(root);
  while (n > 1 && root[n - 1] == '/')
    n--;
  return strncmp(mnt, root, n) == 0 && (mnt[n] == 0 || mnt[n] == '/');
}

static bool same_path(const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  while (na > 1 && a[na - 1] == '/')
    na--;
  while (nb > 1 && b[nb - 1] == '/')
    nb--;
  return na == nb && strncmp(a, b, na) == 0;
}

static char **split_words(const char *s, const char *seps) {
  size_t cap = 8, n = 0;
  char **v = hv_xmalloc0(cap * sizeof(char *));
  cleanup_free char *copy = hv_xstrdup(s);
  char *save = NULL;
  for (char *t = strtok_r(copy, seps, &save); t; t = strtok_r(NULL, seps, &save)) {
    if (n + 2 > cap) {
      cap *= 2;
      char **nv = realloc(v, cap * sizeof(char *));
      if (!nv)
        abort();
      v = nv;
    }
    v[n++] = hv_xstrdup(t);
    v[n] = NULL;
  }
  return v;
}

static bool is_v1_controller(const char *s) {
  for (size_t i = 0; v1_controllers[i]; i++)
    if (strcmp(s, v1_controllers[i]) == 0)
      return true;
  return false;
}

void cg_layout_clear(struct cg_layout *L) {
  for (size_t i = 0; i < L->n; i++) {
    free(L->h[i].mount);
    free(L->h[i].mnt_root);
    hv_strv_free(L->h[i].ctrls);
  }
  free(L->h);
  free(L->root);
  memset(L, 0, sizeof(*L));
}

static void add_hier(struct cg_layout *L, const char *mount, const char *mnt_root, bool v2,
                     char **ctrls) {
  struct cg_hier *nh = realloc(L->h, (L->n + 1) * sizeof(*nh));
  if (!nh)
    abort();
  L->h = nh;
  L->h[L->n++] = (struct cg_hier){hv_xstrdup(mount), hv_xstrdup(mnt_root), v2, ctrls};
}

int cg_layout_parse(const char *mountinfo, const char *root, struct cg_layout *L,
                    hv_error_t *err) {
  memset(L, 0, sizeof(*L));
  L->root = hv_xstrdup(root);
  bool root_is_v2 = false, have_v2 = false, have_v1 = false;
  cleanup_free char *text = hv_xstrdup(mountinfo);
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS */
    char *dash = strstr(line, " - ");
    if (!dash)
      continue;
    *dash = 0;
    cleanup_strv char **pre = split_words(line, " ");
    cleanup_strv char **post = split_words(dash + 3, " ");
    if (hv_strv_len(pre) < 5 || hv_strv_len(post) < 3)
      continue;
    bool v2 = strcmp(post[0], "cgroup2") == 0;
    if (!v2 && strcmp(post[0], "cgroup") != 0)
      continue;
    char *mnt = pre[4], *mroot = pre[3];
    unescape_octal(mnt);
    unescape_octal(mroot);
    if (!under_root(mnt, root))
      continue;
    /* A later mount over the same point hides the earlier one. */
    for (size_t i = 0; i < L->n; i++)
      if (strcmp(L->h[i].mount, mnt) == 0) {
        free(L->h[i].mount);
        free(L->h[i].mnt_root);
        hv_strv_free(L->h[i].ctrls);
        memmove(&L->h[i], &L->h[i + 1], (L->n - i - 1) * sizeof(L->h[0]));
        L->n--;
        break;
      }
    char **ctrls;
    if (v2) {
      cleanup_free char *c = NULL;
      ctrls = cg_read(mnt, "cgroup.controllers", &c) == 0 ? split_words(c, " \n")
                                                           : split_words("", " ");
      have_v2 = true;
      if (same_path(mnt, root))
        root_is_v2 = true;
    } else {
      cleanup_strv char **opts = split_words(post[2], ",");
      size_t k = 0;
      ctrls = hv_xmalloc0((hv_strv_len(opts) + 1) * sizeof(char *));
      for (size_t i = 0; opts[i]; i++)
        if (is_v1_controller(opts[i]))
          ctrls[k++] = hv_xstrdup(opts[i]);
      if (k == 0) { /* named hierarchy (name=systemd): holds no limits */
        hv_strv_free(ctrls);
        continue;
      }
      have_v1 = true;
    }
    add_hier(L, mnt, mroot, v2, ctrls);
  }
  if (root_is_v2) {
    /* Unified: keep only the cgroup2 mount at the root. */
    for (size_t i = 0; i < L->n;) {
      if (L->h[i].v2 && same_path(L->h[i].mount, root)) {
        i++;
        continue;
      }
      free(L->h[i].mount);
      free(L->h[i].mnt_root);
      hv_strv_free(L->h[i].ctrls);
      memmove(&L->h[i], &L->h[i + 1], (L->n - i - 1) * sizeof(L->h[0]));
      L->n--;
    }
    L->kind = HV_CG_V2;
    return 0;
  }
  if (!have_v1 && !have_v2) {
    cg_layout_clear(L);
    return hv_error(err, 0, "cgroups: no cgroup filesystem is mounted under `%s`", root);
  }
  L->kind = !have_v1 ? HV_CG_V2 : have_v2 ? HV_CG_HYBRID : HV_CG_V1;
  return 0;
}

static int layout_load(const char *root, struct cg_layout *L, hv_error_t *err) {
  const char *mi = test_mountinfo ? test_mountinfo : "/proc/self/mountinfo";
  cleanup_free char *text = NULL;
  if (hv_read_file(mi, &text, NULL, err) < 0)
    return -1;
  if (cg_layout_parse(text, root, L, err) < 0)
    return -1;
  L->fake = test_root != NULL;
  return 0;
}

int cg_layout_get(const struct cg_layout **out, hv_error_t *err) {
  if (!cached_ok) {
    if (layout_load(test_root ? test_root : DEFAULT_ROOT, &cached, err) < 0)
      return -1;
    cached_ok = true;
  }
  *out = &cached;
  return 0;
}

int hv_cg_detect(const char *root, enum hv_cg_layout *out, hv_error_t *err) {
  if (!root || (test_root && strcmp(root, test_root) == 0)) {
    const struct cg_layout *L;
    if (cg_layout_get(&L, err) < 0)
      return -1;
    *out = L->kind;
    return 0;
  }
  struct cg_layout L;
  if (layout_load(root, &L, err) < 0)
    return -1;
  *out = L.kind;
  cg_layout_clear(&L);
  return 0;
}

int cg_layout_find(const struct cg_layout *L, const char *ctrl) {
  for (size_t i = 0; i < L->n; i++)
    for (size_t j = 0; L->h[i].ctrls && L->h[i].ctrls[j]; j++)
      if (strcmp(L->h[i].ctrls[j], ctrl) == 0)
        return (int)i;
  return -1;
}

json_t *hv_cg_features(void) {
  hv_error_t err = NULL;
  const struct cg_layout *L;
  if (cg_layout_get(&L, &err) < 0) {
    hv_error_release(&err);
    return json_pack("{s:b,s:b,s:b,s:b,s:b}", "v1", 0, "v2", 0, "systemd", 0, "systemdUser", 0,
                     "rdma", 0);
  }
  bool v1 = false, v2 = false;
  json_t *ctrls = json_array();
  for (size_t i = 0; i < L->n; i++) {
    if (L->h[i].v2)
      v2 = true;
    else
      v1 = true;
    for (size_t j = 0; L->h[i].ctrls[j]; j++)
      json_array_append_new(ctrls, json_string(L->h[i].ctrls[j]));
  }
  struct stat st;
  bool systemd = stat(cg_systemd_dir(), &st) == 0;
  (void)systemd; /* the systemd driver is not implemented: never advertise it */
  return json_pack("{s:b,s:b,s:b,s:b,s:b,s:s,s:o}", "v1", v1, "v2", v2, "systemd", 0,
                   "systemdUser", 0, "rdma", cg_layout_find(L, "rdma") >= 0, "layout",
                   hv_cg_layout_name(L->kind), "controllers", ctrls);
}

/* ---- knob I/O ---------------------------------------------------- */

int cg_write(const char *dir, const char *file, const char *value, const char *field,
             hv_error_t *err) {
  cleanup_free char *path = hv_xasprintf("%s/%s", dir, file);
  /* O_TRUNC: a no-op on cgroupfs, and what makes the fake test tree hold
   * exactly the last value written. */
  /* In the fake tree, command-style knobs append (the test reads the whole
   * sequence written) and value knobs truncate (the test reads the value). */
  static const char *const cmd_files[] = {
      "devices.allow", "devices.deny", "io.max", "io.weight", "io.bfq.weight",
      "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
      "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device",
      "blkio.weight_device", "blkio.bfq.weight_device", "net_prio.ifpriomap", "cgroup.procs",
      "cgroup.subtree_control", NULL};
  bool append = false;
  for (size_t i = 0; test_root && cmd_files[i]; i++)
    append |= strcmp(file, cmd_files[i]) == 0;
  cleanup_close int fd =
      open(path, O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_TRUNC));
  if (fd < 0) {
    if (errno == ENOENT)
      return hv_error(err, 0, "%s: %s is not available on this host", field, file);
    return hv_error(err, errno, "%s: open `%s`", field, path);
  }
  size_t len = strlen(value);
  ssize_t w;
  do
    w = write(fd, value, len);
  while (w < 0 && errno == EINTR);
  if (w < 0)
    return hv_error(err, errno, "%s: write `%s` to `%s`", field, value, path);
  if ((size_t)w != len)
    return hv_error(err, EIO, "%s: short write of `%s` to `%s`", field, value, path);
  if (append && write(fd, "\n", 1) < 0)
    return hv_error(err, errno, "%s: write to `%s`", field, path);
  return 0;
}

int cg_writef(const char *dir, const char *file, const char *field, hv_error_t *err,
              const char *fmt, ...) {
  va_list ap;
  char *v;
  va_start(ap, fmt);
  if (vasprintf(&v, fmt, ap) < 0)
    abort();
  va_end(ap);
  int r = cg_write(dir, file, v, field, err);
  free(v);
  return r;
}

int cg_read(const char *dir, const char *file, char **out) {
  cleanup_free char *path = hv_xasprintf("%s/%s", dir, file);
  hv_error_t e = NULL;
  int r = hv_read_file(path, out, NULL, &e);
  hv_error_release(&e);
  return r < 0 ? r : 0;
}

bool cg_has_file(const char *dir, const char *file) {
  cleanup_free char *path = hv_xasprintf("%s/%s", dir, file);
  return access(path, F_OK) == 0;
}

int cg_read_i64(const char *dir, const char *file, int64_t *out) {
  cleanup_free char *s = NULL;
  int r = cg_read(dir, file, &s);
  if (r < 0)
    return r;
  if (strncmp(s, "max", 3) == 0) {
    *out = -1;
    return 0;
  }
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s)
    return -EINVAL;
  *out = v;
  return 0;
}

int cg_read_key(const char *dir, const char *file, const char *key, int64_t *out) {
  cleanup_free char *s = NULL;
  int r = cg_read(dir, file, &s);
  if (r < 0)
    return r;
  size_t kl = strlen(key);
  for (char *line = s; line && *line;) {
    char *nl = strchr(line, '\n');
    if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
      *out = strtoll(line + kl + 1, NULL, 10);
      return 0;
    }
    line = nl ? nl + 1 : NULL;
  }
  return -ENOENT;
}
