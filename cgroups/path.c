/* path.c: resolve linux.cgroupsPath into one directory per hierarchy.
 *
 *   ""              -> /hvrun/<id> (absolute)
 *   "/a/b"          -> /a/b below every hierarchy's mount point
 *   "a/b"           -> a/b below the caller's own cgroup in that hierarchy
 *                      (read from /proc/self/cgroup, which can differ per
 *                      hierarchy: e.g. memory:/process_api/x, cpu:/)
 *   "slice:pfx:name" -> the systemd driver's form; refused (no systemd). */
#include "internal.h"
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static bool is_systemd_form(const char *p) {
  const char *c1 = strchr(p, ':');
  if (!c1)
    return false;
  const char *c2 = strchr(c1 + 1, ':');
  return c2 && !strchr(c2 + 1, ':') && !strchr(p, '/');
}

/* Reject what mkdir would misinterpret or what escapes the hierarchy. */
static int check_path(const char *p, hv_error_t *err) {
  for (const char *s = p; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return hv_error(err, 0, "linux.cgroupsPath: `%s` contains a control character", p);
  cleanup_free char *copy = hv_xstrdup(p);
  char *save = NULL;
  size_t comps = 0;
  for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    if (strcmp(c, "..") == 0 || strcmp(c, ".") == 0)
      return hv_error(err, 0, "linux.cgroupsPath: `%s` must not contain `.` or `..` components",
                      p);
    if (strlen(c) > 255)
      return hv_error(err, 0, "linux.cgroupsPath: `%s` has a component longer than 255 bytes",
                      p);
    comps++;
  }
  if (comps == 0)
    return hv_error(err, 0,
                    "linux.cgroupsPath: `%s` names the cgroup root; a container needs its own "
                    "cgroup",
                    p);
  return 0;
}

/* Join with single slashes: "/a//b/" -> "/a/b". */
static char *normalize(const char *base, const char *rel) {
  cleanup_free char *joined = hv_xasprintf("%s/%s", base ? base : "", rel);
  char *out = hv_xmalloc0(strlen(joined) + 2);
  char *w = out;
  for (const char *r = joined; *r; r++) {
    if (*r == '/' && w > out && w[-1] == '/')
      continue;
    *w++ = *r;
  }
  if (w == out || out[0] != '/') {
    memmove(out + 1, out, (size_t)(w - out) + 1);
    out[0] = '/';
    w++;
  }
  while (w > out + 1 && w[-1] == '/')
    w--;
  *w = 0;
  return out;
}

/* The caller's cgroup in hierarchy h, relative to the hierarchy's mount. */
static int own_cgroup(const struct cg_hier *h, char **out, hv_error_t *err) {
  cleanup_free char *text = NULL;
  if (hv_read_file(cg_self_cgroup_file(), &text, NULL, err) < 0)
    return -1;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2)
      continue;
    *c2 = 0;
    const char *ctrls = c1 + 1, *path = c2 + 1;
    bool match = false;
    if (h->v2) {
      match = strncmp(line, "0:", 2) == 0 && *ctrls == 0;
    } else {
      cleanup_free char *cc = hv_xstrdup(ctrls);
      char *s2 = NULL;
      for (char *c = strtok_r(cc, ",", &s2); c && !match; c = strtok_r(NULL, ",", &s2))
        for (size_t j = 0; h->ctrls[j]; j++)
          if (strcmp(c, h->ctrls[j]) == 0)
            match = true;
    }
    if (!match)
      continue;
    /* Inside a cgroup namespace/bind mount, the mount shows mnt_root. */
    size_t rl = strlen(h->mnt_root);
    if (strcmp(h->mnt_root, "/") != 0 && strncmp(path, h->mnt_root, rl) == 0 &&
        (path[rl] == '/' || path[rl] == 0))
      path += rl;
    *out = normalize(NULL, path);
    return 0;
  }
  return hv_error(err, 0, "cgroups: %s: no entry for the hierarchy at `%s`",
                  cg_self_cgroup_file(), h->mount);
}

int cg_resolve_paths(const struct cg_layout *L, const char *cgroups_path, const char *id,
                     bool systemd, char ***out, hv_error_t *err) {
  struct stat st;
  if (systemd) {
    if (stat(cg_systemd_dir(), &st) < 0)
      return hv_error(err, 0, "--systemd-cgroup: systemd is not running on this host");
    return hv_error(err, 0,
                    "--systemd-cgroup: the systemd cgroup driver is not supported by hvrun; "
                    "give a cgroupfs linux.cgroupsPath instead");
  }
  if (cgroups_path && is_systemd_form(cgroups_path))
    return hv_error(err, 0,
                    "linux.cgroupsPath: `%s` is in the systemd form \"slice:prefix:name\", "
                    "which needs --systemd-cgroup",
                    cgroups_path);
  cleanup_free char *def = NULL;
  if (!cgroups_path || !*cgroups_path) {
    if (!id || !*id || strchr(id, '/'))
      return hv_error(err, 0, "cgroups: invalid container id `%s`", id ? id : "");
    def = hv_xasprintf("/hvrun/%s", id);
    cgroups_path = def;
  }
  if (check_path(cgroups_path, err) < 0)
    return -1;
  char **v = hv_xmalloc0((L->n + 1) * sizeof(char *));
  for (size_t i = 0; i < L->n; i++) {
    if (cgroups_path[0] == '/') {
      v[i] = normalize(NULL, cgroups_path);
    } else {
      cleanup_free char *own = NULL;
      if (own_cgroup(&L->h[i], &own, err) < 0) {
        hv_strv_free(v);
        return -1;
      }
      v[i] = normalize(own, cgroups_path);
    }
  }
  *out = v;
  return 0;
}
