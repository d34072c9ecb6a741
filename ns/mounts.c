/* mounts.c: OCI `mounts` inside the container's mount namespace.
 *
 * Every destination is resolved with openat2(RESOLVE_IN_ROOT) relative to
 * an fd of the rootfs and mounted through /proc/self/fd/N of the resolved
 * O_PATH fd, so a symlink planted in the image (say /proc -> /) can never
 * redirect a mount onto the host. */
#include "sandbox.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

const char *ns_fd_path(int fd, char buf[static 32]) {
  snprintf(buf, 32, "/proc/self/fd/%d", fd);
  return buf;
}

int ns_open_in_root(int rootfd, const char *path, int flags) {
  struct open_how how = {
      .flags = (uint64_t)(flags | O_CLOEXEC),
      .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  while (*path == '/')
    path++;
  if (!*path)
    path = ".";
  int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
  if (fd < 0 && errno == EAGAIN) /* a concurrent rename raced the lookup: retry once */
    fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
  return fd < 0 ? -errno : fd;
}

bool ns_is_dev_path(const char *p) {
  while (*p == '/')
    p++;
  if (strncmp(p, "dev", 3) != 0)
    return false;
  p += 3;
  while (*p == '/')
    p++;
  return *p == 0;
}

bool ns_config_has_namespace(const struct hv_oci_config *cfg, int flag) {
  for (size_t i = 0; cfg && i < cfg->linux.n_namespaces; i++)
    if (cfg->linux.namespaces[i].flag == flag)
      return true;
  return false;
}

/* Create one missing component `name` in the directory resolved from
 * `parent` (relative to rootfd). */
static int create_component(int rootfd, const char *parent, const char *name, bool dir,
                            const char *full, hv_error_t *err) {
  int pfd = ns_open_in_root(rootfd, parent, O_PATH | O_DIRECTORY);
  if (pfd < 0)
    return hv_error(err, -pfd, "mount point `%s`: open `%s` in the rootfs", full, parent);
  cleanup_close int parent_fd = pfd;
  int r;
  if (dir) {
    r = mkdirat(parent_fd, name, 0755);
  } else {
    r = openat(parent_fd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (r >= 0)
      close(r);
  }
  if (r < 0 && errno != EEXIST)
    return hv_error(err, errno, "mount point `%s`: create `%s`", full, name);
  return 0;
}

static int mkpath_depth(int rootfd, const char *path, bool dir, int depth, hv_error_t *err);

/* `p` exists as a dangling symlink: create its target (inside the root,
 * as the container would resolve it) so the walk can continue. */
static int follow_dangling(int rootfd, const char *p, bool dir, int depth, hv_error_t *err) {
  if (depth > 40)
    return hv_error(err, ELOOP, "mount point `%s`", p);
  char *base = strrchr(p, '/');
  cleanup_free char *parent = base ? strndup(p, (size_t)(base - p)) : hv_xstrdup("/");
  const char *name = base ? base + 1 : p;
  int pfd = ns_open_in_root(rootfd, *parent ? parent : "/", O_PATH | O_DIRECTORY);
  if (pfd < 0)
    return hv_error(err, -pfd, "mount point `%s`: open parent", p);
  cleanup_close int parent_fd = pfd;
  char target[4096];
  ssize_t n = readlinkat(parent_fd, name, target, sizeof target - 1);
  if (n < 0)
    return hv_error(err, errno, "mount point `%s`: `%s` cannot be created", p, p);
  target[n] = 0;
  cleanup_free char *next = target[0] == '/' ? hv_xstrdup(target)
                                             : hv_xasprintf("%s/%s", parent, target);
  return mkpath_depth(rootfd, next, dir, depth + 1, err);
}

int ns_mkpath_in_root(int rootfd, const char *path, bool dir, hv_error_t *err) {
  return mkpath_depth(rootfd, path, dir, 0, err);
}

static int mkpath_depth(int rootfd, const char *path, bool dir, int depth, hv_error_t *err) {
  cleanup_free char *p = hv_xstrdup(path);
  size_t len = strlen(p);
  while (len > 1 && p[len - 1] == '/')
    p[--len] = 0;
  /* Walk the components: each prefix is resolved afresh from the root so a
   * symlink in the middle is followed as the container would see it. */
  char *s = p;
  while (*s == '/')
    s++;
  while (*s) {
    char *slash = strchr(s, '/');
    bool last = slash == NULL;
    if (slash)
      *slash = 0;
    int fd = ns_open_in_root(rootfd, p, O_PATH);
    if (fd >= 0) {
      close(fd);
    } else if (fd == -ENOENT) {
      char *base = strrchr(p, '/');
      const char *name = base ? base + 1 : p;
      cleanup_free char *parent = base ? hv_xstrdup(p) : hv_xstrdup("/");
      if (base)
        parent[base - p] = 0;
      if (create_component(rootfd, *parent ? parent : "/", name, last ? dir : true, path, err) < 0)
        return -1;
      fd = ns_open_in_root(rootfd, p, O_PATH);
      if (fd == -ENOENT && follow_dangling(rootfd, p, last ? dir : true, depth, err) < 0)
        return -1;
      if (fd == -ENOENT)
        fd = ns_open_in_root(rootfd, p, O_PATH);
      if (fd < 0)
        return hv_error(err, -fd, "mount point `%s`: `%s` cannot be created", path, p);
      close(fd);
    } else {
      return hv_error(err, -fd, "mount point `%s`: resolve `%s` in the rootfs", path, p);
    }
    if (last)
      break;
    *slash = '/';
    s = slash + 1;
    while (*s == '/')
      s++;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Option parsing                                                      */
/* ------------------------------------------------------------------ */

static const struct {
  const char *name;
  bool clear;
  unsigned long flag;
} mount_opts[] = {
    {"ro", false, MS_RDONLY},         {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},     {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},       {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},     {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},  {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},   {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},     {"nomand", true, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},   {"atime", true, MS_NOATIME},
    {"nodiratime", false, MS_NODIRATIME}, {"diratime", true, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME}, {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME}, {"nostrictatime", true, MS_STRICTATIME},
    {"nosymfollow", false, MS_NOSYMFOLLOW}, {"symfollow", true, MS_NOSYMFOLLOW},
    {"silent", false, MS_SILENT},     {"loud", true, MS_SILENT},
    {"lazytime", false, MS_LAZYTIME}, {"nolazytime", true, MS_LAZYTIME},
    {"iversion", false, MS_I_VERSION}, {"noiversion", true, MS_I_VERSION},
    {"bind", false, MS_BIND},         {"rbind", false, MS_BIND | MS_REC},
};

static const struct {
  const char *name;
  unsigned long flag;
} propagation_opts[] = {
    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

/* Recursive variants (runtime-spec 1.1), applied with mount_setattr. */
static const struct {
  const char *name;
  bool clear;
  uint64_t attr;
} recursive_opts[] = {
    {"rro", false, MOUNT_ATTR_RDONLY},      {"rrw", true, MOUNT_ATTR_RDONLY},
    {"rnosuid", false, MOUNT_ATTR_NOSUID},  {"rsuid", true, MOUNT_ATTR_NOSUID},
    {"rnodev", false, MOUNT_ATTR_NODEV},    {"rdev", true, MOUNT_ATTR_NODEV},
    {"rnoexec", false, MOUNT_ATTR_NOEXEC},  {"rexec", true, MOUNT_ATTR_NOEXEC},
    {"rnodiratime", false, MOUNT_ATTR_NODIRATIME}, {"rdiratime", true, MOUNT_ATTR_NODIRATIME},
    {"rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW}, {"rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW},
    {"rrelatime", false, MOUNT_ATTR_RELATIME}, {"rnoatime", false, MOUNT_ATTR_NOATIME},
    {"rstrictatime", false, MOUNT_ATTR_STRICTATIME},
};

unsigned long ns_propagation_flag(const char *name) {
  for (size_t i = 0; name && i < sizeof propagation_opts / sizeof propagation_opts[0]; i++)
    if (strcmp(name, propagation_opts[i].name) == 0)
      return propagation_opts[i].flag;
  return 0;
}

void ns_mount_flags_clear(struct ns_mount_flags *f) {
  free(f->data);
  memset(f, 0, sizeof *f);
}

int ns_mount_flags_parse(char *const *options, const char *what, struct ns_mount_flags *out,
                         hv_error_t *err) {
  memset(out, 0, sizeof *out);
  for (size_t i = 0; options && options[i]; i++) {
    const char *o = options[i];
    bool found = false;
    for (size_t k = 0; !found && k < sizeof mount_opts / sizeof mount_opts[0]; k++) {
      if (strcmp(o, mount_opts[k].name) != 0)
        continue;
      found = true;
      if (mount_opts[k].clear) {
        out->flags &= ~mount_opts[k].flag;
        out->clear |= mount_opts[k].flag;
      } else {
        out->flags |= mount_opts[k].flag;
        out->clear &= ~mount_opts[k].flag;
      }
    }
    unsigned long prop = ns_propagation_flag(o);
    if (!found && prop) {
      if (out->n_propagation == sizeof out->propagation / sizeof out->propagation[0])
        return hv_error(err, 0, "%s: too many propagation options", what);
      out->propagation[out->n_propagation++] = prop;
      found = true;
    }
    for (size_t k = 0; !found && k < sizeof recursive_opts / sizeof recursive_opts[0]; k++) {
      if (strcmp(o, recursive_opts[k].name) != 0)
        continue;
      found = true;
      uint64_t a = recursive_opts[k].attr;
      if (a == MOUNT_ATTR_RELATIME || a == MOUNT_ATTR_NOATIME || a == MOUNT_ATTR_STRICTATIME) {
        out->attr_clr |= MOUNT_ATTR__ATIME; /* the atime mode is one field */
        out->attr_set = (out->attr_set & ~(uint64_t)MOUNT_ATTR__ATIME) | a;
      } else if (recursive_opts[k].clear) {
        out->attr_set &= ~a;
        out->attr_clr |= a;
      } else {
        out->attr_set |= a;
        out->attr_clr &= ~a;
      }
    }
    if (!found && (strcmp(o, "idmap") == 0 || strcmp(o, "ridmap") == 0)) {
      ns_mount_flags_clear(out);
      return hv_error(err, 0, "%s: option \"%s\" (idmapped mounts) is not supported", what, o);
    }
    if (!found && strcmp(o, "tmpcopyup") == 0) {
      hv_warn("%s: option \"tmpcopyup\" is not supported, ignoring it", what);
      found = true;
    }
    if (!found) { /* filesystem-specific: passed to mount(2) as data */
      if (strchr(o, '\n')) {
        ns_mount_flags_clear(out);
        return hv_error(err, 0, "%s: invalid option \"%s\"", what, o);
      }
      char *d = out->data ? hv_xasprintf("%s,%s", out->data, o) : hv_xstrdup(o);
      free(out->data);
      out->data = d;
    }
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Mounting                                                            */
/* ------------------------------------------------------------------ */

#define MS_PER_MOUNT_FLAGS                                                                   \
  (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | \
   MS_STRICTATIME | MS_NOSYMFOLLOW)

unsigned long ns_current_mount_flags(const char *path) {
  struct statvfs sv;
  unsigned long f = 0;
  if (statvfs(path, &sv) < 0)
    return 0;
  if (sv.f_flag & ST_RDONLY)
    f |= MS_RDONLY;
  if (sv.f_flag & ST_NOSUID)
    f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV)
    f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC)
    f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME)
    f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME)
    f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME)
    f |= MS_RELATIME;
  return f;
}

int ns_bind_remount(const char *target, unsigned long flags, hv_error_t *err) {
  unsigned long f = MS_BIND | MS_REMOUNT | (flags & (MS_PER_MOUNT_FLAGS | MS_SYNCHRONOUS |
                                                     MS_DIRSYNC | MS_MANDLOCK | MS_LAZYTIME));
  if (mount(NULL, target, NULL, f, NULL) == 0)
    return 0;
  int e = errno;
  /* In a user namespace the kernel locks nosuid/nodev/noexec/ro/atime of
   * mounts inherited from the parent: a remount must repeat them. */
  if (e == EPERM) {
    unsigned long locked = ns_current_mount_flags(target);
    if (!(f & (MS_NOATIME | MS_RELATIME | MS_STRICTATIME)))
      f |= locked & (MS_NOATIME | MS_RELATIME);
    f |= locked & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NODIRATIME);
    if (mount(NULL, target, NULL, f, NULL) == 0)
      return 0;
    e = errno;
  }
  return hv_error(err, e, "remount `%s`", target);
}

/* Re-resolve the destination (a fresh fd sees the mount just made on it). */
static int reopen_dest(int rootfd, const char *dest, hv_error_t *err) {
  int fd = ns_open_in_root(rootfd, dest, O_PATH);
  if (fd < 0)
    return hv_error(err, -fd, "reopen mount point `%s`", dest);
  return fd;
}

static int apply_after(int rootfd, const char *dest, const struct ns_mount_flags *f,
                       bool bind_remount, hv_error_t *err) {
  if (!bind_remount && !f->n_propagation && !f->attr_set && !f->attr_clr)
    return 0;
  cleanup_close int fd = reopen_dest(rootfd, dest, err);
  if (fd < 0)
    return -1;
  char p[32];
  ns_fd_path(fd, p);
  if (bind_remount && ns_bind_remount(p, f->flags, err) < 0)
    return hv_error_wrap(err, "mount `%s`", dest);
  for (size_t i = 0; i < f->n_propagation; i++)
    if (mount(NULL, p, NULL, f->propagation[i], NULL) < 0)
      return hv_error(err, errno, "mount `%s`: set propagation", dest);
  if (f->attr_set || f->attr_clr) {
    struct mount_attr a = {.attr_set = f->attr_set, .attr_clr = f->attr_clr};
    if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0)
      return hv_error(err, errno, "mount `%s`: set recursive attributes", dest);
  }
  return 0;
}

/* Find the line of /proc/self/cgroup for a hierarchy whose super options
 * (from mountinfo) are `super`; returns the cgroup path (malloc'd). */
static char *own_cgroup_path(const char *cgfile, const char *fstype, const char *super) {
  cleanup_free char *dup = hv_xstrdup(cgfile);
  char *save = NULL;
  for (char *line = strtok_r(dup, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2)
      continue;
    *c2 = 0;
    const char *ctrls = c1 + 1;
    if (strcmp(fstype, "cgroup2") == 0) {
      if (*ctrls == 0 && strncmp(line, "0:", 2) == 0)
        return hv_xstrdup(c2 + 1);
      continue;
    }
    if (!*ctrls)
      continue;
    /* every controller of the line must be in the super options */
    bool all = true;
    cleanup_free char *cs = hv_xstrdup(ctrls);
    char *s2 = NULL;
    for (char *c = strtok_r(cs, ",", &s2); c && all; c = strtok_r(NULL, ",", &s2)) {
      size_t n = strlen(c);
      const char *h = super;
      bool hit = false;
      while ((h = strstr(h, c))) {
        if ((h == super || h[-1] == ',') && (h[n] == ',' || h[n] == 0)) {
          hit = true;
          break;
        }
        h += n;
      }
      all = hit;
    }
    if (all)
      return hv_xstrdup(c2 + 1);
  }
  return NULL;
}

/* Mount or bind one cgroup hierarchy `name` in the tmpfs at dest. */
static int mount_one_hierarchy(int tmpfs_fd, const char *dest, const char *name,
                               const char *fstype, const char *host_src, const char *ctrl_opts,
                               bool cgroupns, unsigned long flags, bool defer_flags,
                               hv_error_t *err) {
  if (mkdirat(tmpfs_fd, name, 0755) < 0 && errno != EEXIST)
    return hv_error(err, errno, "mount `%s`: mkdir `%s`", dest, name);
  int fd = openat(tmpfs_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return hv_error(err, errno, "mount `%s`: open `%s`", dest, name);
  cleanup_close int dfd = fd;
  char p[32];
  ns_fd_path(dfd, p);
  unsigned long mflags = flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME);
  if (cgroupns) {
    /* Inside a cgroup namespace a fresh mount shows the ns root: exactly
     * the container's own cgroup. */
    if (mount("cgroup", p, fstype, mflags, strcmp(fstype, "cgroup2") ? ctrl_opts : NULL) < 0)
      return hv_error(err, errno, "mount `%s/%s` (%s)", dest, name, fstype);
    return 0;
  }
  if (mount(host_src, p, NULL, MS_BIND | MS_REC, NULL) < 0)
    return hv_error(err, errno, "mount `%s/%s`: bind `%s`", dest, name, host_src);
  if (defer_flags)
    return 0; /* the caller sets them on the whole tree at once */
  cleanup_close int mfd = openat(tmpfs_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (mfd < 0)
    return hv_error(err, errno, "mount `%s`: reopen `%s`", dest, name);
  ns_fd_path(mfd, p);
  if ((mflags & ~MS_RELATIME) && ns_bind_remount(p, mflags, err) < 0)
    return -1;
  return 0;
}

/* A "cgroup" mount: on cgroup v2 one cgroup2 mount; on v1/hybrid a tmpfs
 * with one entry per hierarchy the host has mounted under /sys/fs/cgroup,
 * each showing only the container's own cgroup. */
static int mount_cgroup(int rootfd, const char *dest, const struct ns_mount_flags *f,
                        const struct hv_oci_config *cfg, hv_error_t *err) {
  bool cgroupns = ns_config_has_namespace(cfg, CLONE_NEWCGROUP);
  cleanup_free char *mountinfo = NULL, *cgfile = NULL;
  if (hv_read_file("/proc/self/mountinfo", &mountinfo, NULL, err) < 0 ||
      hv_read_file("/proc/self/cgroup", &cgfile, NULL, err) < 0)
    return hv_error_wrap(err, "mount `%s`", dest);
  cleanup_close int dfd = reopen_dest(rootfd, dest, err);
  if (dfd < 0)
    return -1;
  char p[32];
  ns_fd_path(dfd, p);

  /* v2 only: /sys/fs/cgroup itself is the cgroup2 mount. */
  bool v2 = false;
  for (char *l = mountinfo; l && *l;) {
    char *nl = strchr(l, '\n');
    if (nl)
      *nl = 0;
    char mp[4096], fstype[64];
    const char *sep = strstr(l, " - ");
    if (sep && sscanf(l, "%*s %*s %*s %*s %4095s", mp) == 1 &&
        sscanf(sep + 3, "%63s", fstype) == 1 && strcmp(mp, "/sys/fs/cgroup") == 0 &&
        strcmp(fstype, "cgroup2") == 0)
      v2 = true;
    if (nl)
      *nl = '\n';
    l = nl ? nl + 1 : NULL;
  }
  unsigned long mflags = f->flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME);
  if (v2) {
    if (cgroupns) {
      if (mount("cgroup2", p, "cgroup2", mflags, NULL) < 0)
        return hv_error(err, errno, "mount `%s` (cgroup2)", dest);
      return 0;
    }
    cleanup_free char *own = own_cgroup_path(cgfile, "cgroup2", "");
    cleanup_free char *src = hv_xasprintf("/sys/fs/cgroup%s", own ? own : "/");
    if (mount(src, p, NULL, MS_BIND | MS_REC, NULL) < 0)
      return hv_error(err, errno, "mount `%s`: bind `%s`", dest, src);
    cleanup_close int mfd = reopen_dest(rootfd, dest, err);
    if (mfd < 0)
      return -1;
    ns_fd_path(mfd, p);
    return (mflags & ~MS_RELATIME) ? ns_bind_remount(p, mflags, err) : 0;
  }

  /* v1 / hybrid: writable tmpfs first, read-only at the end if asked. */
  if (mount("tmpfs", p, "tmpfs", (mflags & ~MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "mode=755") < 0)
    return hv_error(err, errno, "mount `%s`: tmpfs", dest);
  cleanup_close int tfd = ns_open_in_root(rootfd, dest, O_PATH | O_DIRECTORY);
  if (tfd < 0)
    return hv_error(err, -tfd, "mount `%s`: reopen", dest);
  cleanup_strv char **binds = NULL; /* hierarchies bound from the host */
  size_t n_binds = 0;
  for (char *l = mountinfo; l && *l;) {
    char *nl = strchr(l, '\n');
    if (nl)
      *nl = 0;
    char root[4096], mp[4096], fstype[64], super[1024] = "";
    const char *sep = strstr(l, " - ");
    if (sep && sscanf(l, "%*s %*s %*s %4095s %4095s", root, mp) == 2 &&
        sscanf(sep + 3, "%63s %*s %1023s", fstype, super) >= 1 &&
        (strcmp(fstype, "cgroup") == 0 || strcmp(fstype, "cgroup2") == 0) &&
        strncmp(mp, "/sys/fs/cgroup/", 15) == 0 && !strchr(mp + 15, '/')) {
      const char *name = mp + 15;
      cleanup_free char *own = own_cgroup_path(cgfile, fstype, super);
      if (own) {
        /* The mount's root may itself be a sub-cgroup (nested runtimes). */
        const char *rel = own;
        size_t rl = strlen(root);
        if (strcmp(root, "/") != 0 && strncmp(own, root, rl) == 0)
          rel = own + rl;
        cleanup_free char *src = hv_xasprintf("%s%s", mp, rel);
        /* controller list for a cgroupns mount: drop rw/ro etc. */
        cleanup_free char *ctrls = NULL;
        char *s2 = NULL;
        cleanup_free char *sd = hv_xstrdup(super);
        for (char *t = strtok_r(sd, ",", &s2); t; t = strtok_r(NULL, ",", &s2)) {
          if (!strcmp(t, "rw") || !strcmp(t, "ro"))
            continue;
          char *n = ctrls ? hv_xasprintf("%s,%s", ctrls, t) : hv_xstrdup(t);
          free(ctrls);
          ctrls = n;
        }
        if (mount_one_hierarchy(tfd, dest, name, fstype, src, ctrls, cgroupns, mflags, true,
                                err) < 0)
          return -1;
        if (!cgroupns) {
          char **nv = realloc(binds, (n_binds + 2) * sizeof *binds);
          if (!nv)
            abort();
          binds = nv;
          binds[n_binds++] = hv_xstrdup(name);
          binds[n_binds] = NULL;
        }
        /* co-mounted controllers (cpu,cpuacct) get per-controller links */
        if (strchr(name, ',')) {
          cleanup_free char *nd = hv_xstrdup(name);
          char *s3 = NULL;
          for (char *t = strtok_r(nd, ",", &s3); t; t = strtok_r(NULL, ",", &s3))
            if (symlinkat(name, tfd, t) < 0 && errno != EEXIST)
              return hv_error(err, errno, "mount `%s`: symlink `%s`", dest, t);
        }
      }
    }
    if (nl)
      *nl = '\n';
    l = nl ? nl + 1 : NULL;
  }
  /* ro/nosuid/nodev/noexec on the tmpfs and every bind under it with one
   * recursive mount_setattr (two remounts per hierarchy otherwise). */
  unsigned long want = mflags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
  if (!want)
    return 0;
  cleanup_close int rfd = reopen_dest(rootfd, dest, err);
  if (rfd < 0)
    return -1;
  struct mount_attr a;
  memset(&a, 0, sizeof a);
  a.attr_set = ((want & MS_RDONLY) ? MOUNT_ATTR_RDONLY : 0) |
               ((want & MS_NOSUID) ? MOUNT_ATTR_NOSUID : 0) |
               ((want & MS_NODEV) ? MOUNT_ATTR_NODEV : 0) |
               ((want & MS_NOEXEC) ? MOUNT_ATTR_NOEXEC : 0);
  if (mount_setattr(rfd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) == 0)
    return 0;
  if (errno != ENOSYS && errno != EINVAL)
    return hv_error(err, errno, "mount `%s`: set %s", dest,
                    (want & MS_RDONLY) ? "read-only" : "mount flags");
  /* Kernel without mount_setattr: one bind remount per hierarchy. */
  for (size_t i = 0; i < n_binds; i++) {
    cleanup_close int mfd =
        openat(tfd, binds[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (mfd < 0)
      return hv_error(err, errno, "mount `%s`: reopen `%s`", dest, binds[i]);
    ns_fd_path(mfd, p);
    if (ns_bind_remount(p, mflags, err) < 0)
      return -1;
  }
  if (mflags & MS_RDONLY) {
    ns_fd_path(rfd, p);
    if (mount(NULL, p, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=755") < 0)
      return hv_error(err, errno, "mount `%s`: remount tmpfs read-only", dest);
  }
  return 0;
}

int ns_mount_one(int rootfd, const struct hv_oci_mount *m, const char *bundle,
                 const struct hv_oci_config *cfg, size_t index, hv_error_t *err) {
  cleanup_free char *what = hv_xasprintf("mounts[%zu]", index);
  if (!m->destination || !*m->destination)
    return hv_error(err, 0, "%s.destination: missing", what);
  const char *dest = m->destination;
  struct ns_mount_flags f;
  if (ns_mount_flags_parse(m->options, what, &f, err) < 0)
    return -1;
  const char *type = m->type && *m->type ? m->type : NULL;
  bool bind = (f.flags & MS_BIND) || (type && strcmp(type, "bind") == 0);
  if (bind)
    f.flags |= MS_BIND;
  cleanup_free char *data = f.data;
  f.data = NULL;
  int rc = -1;
  cleanup_free char *source = NULL;
  if (m->source && m->source[0] != '/' && bind && bundle)
    source = hv_xasprintf("%s/%s", bundle, m->source);
  else
    source = hv_xstrdup(m->source ? m->source : (type ? type : "none"));

  /* Mount point: a file for a bind of a non-directory, else a directory. */
  bool dir = true;
  struct stat st;
  if (bind) {
    if (stat(source, &st) < 0) {
      hv_error(err, errno, "%s: bind source `%s`", what, source);
      goto out;
    }
    dir = S_ISDIR(st.st_mode);
  }
  if (!(f.flags & MS_REMOUNT) && ns_mkpath_in_root(rootfd, dest, dir, err) < 0)
    goto out;
  {
    int fd0 = ns_open_in_root(rootfd, dest, O_PATH);
    if (fd0 < 0) {
      hv_error(err, -fd0, "%s: mount point `%s`", what, dest);
      goto out;
    }
    cleanup_close int dfd = fd0;
    char p[32];
    ns_fd_path(dfd, p);
    if (type && strcmp(type, "cgroup") == 0 && !bind) {
      rc = mount_cgroup(rootfd, dest, &f, cfg, err);
      if (rc == 0)
        rc = apply_after(rootfd, dest, &f, false, err);
      goto out;
    }
    if (bind) {
      if (!(f.flags & MS_REMOUNT) && mount(source, p, NULL, f.flags & (MS_BIND | MS_REC), NULL) < 0) {
        hv_error(err, errno, "%s: bind `%s` on `%s`", what, source, dest);
        goto out;
      }
      /* MS_BIND ignores every other flag: ro/nosuid/... need a remount. */
      bool remount = (f.flags & ~(MS_BIND | MS_REC)) != 0;
      rc = apply_after(rootfd, dest, &f, remount, err);
      goto out;
    }
    unsigned long mflags = f.flags & ~(MS_BIND | MS_REC);
    /* A read-only /dev still needs its device nodes: ns_setup_rootfs
     * remounts it read-only once they exist (as runc does). */
    if (ns_is_dev_path(dest))
      mflags &= ~(unsigned long)MS_RDONLY;
    if (mount(source, p, type, mflags, data) < 0) {
      int e = errno;
      /* Without a private netns (sysfs) or ipcns (mqueue) the kernel
       * refuses a fresh instance in a user ns: bind the host's instead,
       * as runc does. */
      const char *fallback = NULL;
      if (e == EPERM && type && strcmp(type, "sysfs") == 0)
        fallback = "/sys";
      else if (e == EPERM && type && strcmp(type, "mqueue") == 0)
        fallback = "/dev/mqueue";
      if (!fallback || mount(fallback, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
        hv_error(err, e, "%s: mount %s `%s` on `%s`%s%s", what, type ? type : "(none)", source,
                 dest, data ? " with " : "", data ? data : "");
        goto out;
      }
      rc = apply_after(rootfd, dest, &f, true, err);
      goto out;
    }
    rc = apply_after(rootfd, dest, &f, false, err);
  }
out:
  ns_mount_flags_clear(&f);
  return rc;
}
