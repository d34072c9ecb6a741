/* cgroup.c: a container's cgroup across every hierarchy: create (with
 * rollback), re-open, enter, freeze, list pids, destroy.
 *
 * The stored form (hv_cg_path) is a small JSON object naming the layout
 * and, per hierarchy, the leaf directory and the highest directory we
 * created, so `hvrun delete` in another process removes exactly what
 * `create` made, even after kill -9 of the creating process. */
#include "internal.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DESTROY_TIMEOUT_MS 10000
#define FREEZE_TIMEOUT_MS 5000

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

struct cg_dir *cg_dir_for(struct hv_cgroup *cg, const char *ctrl) {
  int h = cg_layout_find(cg->L, ctrl);
  if (h >= 0) {
    for (size_t i = 0; i < cg->n; i++)
      if (cg->d[i].hier == h)
        return &cg->d[i];
    return NULL;
  }
  /* Core cgroup2 features that are not listed in cgroup.controllers. */
  if (strcmp(ctrl, "freezer") == 0 || strcmp(ctrl, "devices") == 0)
    return cg_v2_dir(cg);
  return NULL;
}

bool cg_dir_is_v2(const struct hv_cgroup *cg, const struct cg_dir *d) {
  return d->hier >= 0 && cg->L->h[d->hier].v2;
}

struct cg_dir *cg_v2_dir(struct hv_cgroup *cg) {
  for (size_t i = 0; i < cg->n; i++)
    if (cg_dir_is_v2(cg, &cg->d[i]))
      return &cg->d[i];
  return NULL;
}

/* ---- fake tree emulation (tests) ---------------------------------- */

/* The kernel fills a new cgroup with control files; the fake tree copies
 * the files of the hierarchy root, except those a new cgroup starts empty. */
static void fake_populate(const char *mount, const char *dir) {
  DIR *dh = opendir(mount);
  if (!dh)
    return;
  struct dirent *e;
  while ((e = readdir(dh))) {
    if (e->d_type != DT_REG || e->d_name[0] == '.')
      continue;
    static const char *const empty[] = {"cpuset.cpus", "cpuset.mems", "cgroup.procs", "tasks",
                                        "cgroup.subtree_control", NULL};
    bool keep_empty = false;
    for (size_t i = 0; empty[i]; i++)
      keep_empty |= strcmp(e->d_name, empty[i]) == 0;
    cleanup_free char *content = NULL;
    if (!keep_empty && cg_read(mount, e->d_name, &content) < 0)
      continue;
    cleanup_free char *p = hv_xasprintf("%s/%s", dir, e->d_name);
    hv_error_t er = NULL;
    hv_write_file_atomic(AT_FDCWD, p, content ? content : "", content ? strlen(content) : 0,
                         0644, &er);
    hv_error_release(&er);
  }
  closedir(dh);
}

/* rmdir dir and every cgroup below it, bottom-up.  0 if gone. */
static int rm_tree(const char *dir, bool fake) {
  DIR *dh = opendir(dir);
  if (!dh)
    return errno == ENOENT ? 0 : -errno;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(dh))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    cleanup_free char *p = hv_xasprintf("%s/%s", dir, e->d_name);
    if (e->d_type == DT_DIR) {
      int r = rm_tree(p, fake);
      if (r < 0)
        rc = r;
    } else if (fake) {
      unlink(p);
    }
  }
  closedir(dh);
  if (rc < 0)
    return rc;
  if (rmdir(dir) < 0 && errno != ENOENT)
    return -errno;
  return 0;
}

/* After the leaf is gone, remove the parents we created, up to `top`. */
static void rm_parents(const char *leaf, const char *top, bool fake) {
  if (!top)
    return;
  cleanup_free char *p = hv_xstrdup(leaf);
  size_t tl = strlen(top);
  while (strlen(p) > tl) {
    char *slash = strrchr(p, '/');
    if (!slash || slash == p)
      return;
    *slash = 0;
    if (strlen(p) < tl)
      return;
    if (fake) {
      /* only the control files: a sibling cgroup keeps it busy */
      DIR *dh = opendir(p);
      bool has_subdir = false;
      struct dirent *e;
      while (dh && (e = readdir(dh)))
        if (e->d_type == DT_DIR && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
          has_subdir = true;
      if (dh)
        closedir(dh);
      if (has_subdir)
        return;
      rm_tree(p, true);
    } else if (rmdir(p) < 0 && errno != ENOENT) {
      return; /* busy: another container still lives below it */
    }
  }
}

/* ---- create / open ------------------------------------------------- */

static void cg_free_dirs(struct hv_cgroup *cg) {
  for (size_t i = 0; i < cg->n; i++) {
    free(cg->d[i].path);
    free(cg->d[i].top);
  }
  free(cg->d);
  cg->d = NULL;
  cg->n = 0;
}

void hv_cg_free(struct hv_cgroup *cg) {
  if (!cg)
    return;
  cg_free_dirs(cg);
  if (cg->bpf_prog_fd >= 0)
    close(cg->bpf_prog_fd);
  free(cg->stored);
  free(cg);
}

static struct hv_cgroup *cg_new(const struct cg_layout *L) {
  struct hv_cgroup *cg = hv_xmalloc0(sizeof(*cg));
  cg->L = L;
  cg->bpf_prog_fd = -1;
  return cg;
}

/* mkdir -p below the mount, remembering the first directory we made. */
static int make_dirs(const struct cg_layout *L, const struct cg_hier *h, struct cg_dir *d,
                     hv_error_t *err) {
  size_t ml = strlen(h->mount);
  cleanup_free char *p = hv_xstrdup(d->path);
  int restarts = 0;
  for (char *s = p + ml + 1;; s++) {
    if (*s != '/' && *s != 0)
      continue;
    char saved = *s;
    *s = 0;
    bool created = mkdir(p, 0755) == 0;
    if (!created && errno == ENOENT && restarts++ < 5) {
      /* Another container's destroy removed a shared parent (/hvrun)
       * between our mkdirs: start again from the mount. */
      *s = saved;
      s = p + ml;
      continue;
    }
    if (!created && errno != EEXIST)
      return hv_error(err, errno, "cgroups: mkdir `%s`", p);
    if (created) {
      if (!d->top)
        d->top = hv_xstrdup(p);
      if (L->fake)
        fake_populate(h->mount, p);
    }
    if (!saved)
      break;
    *s = saved;
  }
  return 0;
}

static void rollback(struct hv_cgroup *cg) {
  for (size_t i = cg->n; i-- > 0;) {
    struct cg_dir *d = &cg->d[i];
    if (!d->top)
      continue; /* it existed before us: not ours to remove */
    rm_tree(d->path, cg->L->fake);
    rm_parents(d->path, d->top, cg->L->fake);
  }
}

static void make_stored(struct hv_cgroup *cg) {
  json_t *dirs = json_array();
  for (size_t i = 0; i < cg->n; i++)
    json_array_append_new(dirs, cg->d[i].top ? json_pack("{s:s,s:s}", "path", cg->d[i].path,
                                                         "top", cg->d[i].top)
                                             : json_pack("{s:s}", "path", cg->d[i].path));
  cleanup_json json_t *j =
      json_pack("{s:s,s:o}", "layout", hv_cg_layout_name(cg->L->kind), "dirs", dirs);
  free(cg->stored);
  cg->stored = json_dumps(j, JSON_COMPACT);
}

/* "/hvrun/<name>": directly under the shared parent. */
static bool is_shared_parent_path(const char *rel) {
  return !strncmp(rel, "/hvrun/", 7) && rel[7] && !strchr(rel + 7, '/');
}

char *hv_cg_default_path(const char *id, bool systemd) {
  return systemd ? hv_xasprintf("system.slice:hvrun:%s", id) : hv_xasprintf("/hvrun/%s", id);
}

int hv_cg_create(const char *cgroups_path, const char *id, const struct hv_oci_resources *r,
                 bool systemd, struct hv_cgroup **out, hv_error_t *err) {
  const struct cg_layout *L;
  if (cg_layout_get(&L, err) < 0)
    return -1;
  if (r && cg_validate_resources(r, err) < 0)
    return -1;
  cleanup_strv char **rel = NULL;
  if (cg_resolve_paths(L, cgroups_path, id, systemd, &rel, err) < 0)
    return -1;
  struct hv_cgroup *cg = cg_new(L);
  cg->d = hv_xmalloc0(L->n * sizeof(*cg->d));
  bool is_default = !cgroups_path || !*cgroups_path;
  for (size_t i = 0; i < L->n; i++) {
    cg->d[i].hier = (int)i;
    cg->d[i].path = hv_xasprintf("%s%s", L->h[i].mount, rel[i]);
    cg->n++;
    if (make_dirs(L, &L->h[i], &cg->d[i], err) < 0)
      goto fail;
    /* /hvrun is the shared parent of the default paths (/hvrun/<id>): ours
     * to remove once empty, whoever made it.  (Only its creator would
     * otherwise try, and the last container out is rarely that one.) */
    if (is_default || is_shared_parent_path(rel[i])) {
      free(cg->d[i].top);
      cg->d[i].top = hv_xasprintf("%s/hvrun", L->h[i].mount);
    }
    if (!L->h[i].v2 && cg_layout_find(L, "cpuset") == (int)i &&
        cg_v1_cpuset_copy_down(cg->d[i].top ? cg->d[i].top : cg->d[i].path, cg->d[i].path,
                               err) < 0)
      goto fail;
    if (L->h[i].v2 && !L->fake)
      cg_v2_enable_controllers(L->h[i].mount, cg->d[i].path);
  }
  if (r && cg_apply_resources(cg, r, false, err) < 0)
    goto fail;
  make_stored(cg);
  *out = cg;
  return 0;
fail:
  rollback(cg);
  hv_cg_free(cg);
  return -1;
}

int hv_cg_create_vmm(const char *cgroups_path, const char *id, const struct hv_oci_resources *r,
                     bool systemd, struct hv_cgroup **out, hv_error_t *err) {
  static struct hv_oci_device_cgroup vmm_devices[] = {
      {.allow = true, .type = 'c', .has_major = true, .major = 10, .has_minor = true,
       .minor = 232, .access = "rwm"}, /* kvm */
      {.allow = true, .type = 'c', .has_major = true, .major = 10, .has_minor = true,
       .minor = 200, .access = "rwm"}, /* net/tun */
      {.allow = true, .type = 'c', .has_major = true, .major = 10, .has_minor = true,
       .minor = 238, .access = "rwm"}, /* vhost-net */
      {.allow = true, .type = 'c', .has_major = true, .major = 10, .has_minor = true,
       .minor = 241, .access = "rwm"}, /* vhost-vsock */
  };
  struct hv_oci_resources copy = {0};
  if (r)
    copy = *r;
  copy.devices = vmm_devices;
  copy.n_devices = sizeof vmm_devices / sizeof vmm_devices[0];
  return hv_cg_create(cgroups_path, id, &copy, systemd, out, err);
}

int hv_cg_open(const char *stored, struct hv_cgroup **out, hv_error_t *err) {
  const struct cg_layout *L;
  if (cg_layout_get(&L, err) < 0)
    return -1;
  json_error_t je;
  cleanup_json json_t *j = json_loads(stored ? stored : "", 0, &je);
  json_t *dirs = j ? json_object_get(j, "dirs") : NULL;
  if (!json_is_array(dirs))
    return hv_error(err, 0, "cgroups: stored cgroup path `%s` is not one hvrun wrote",
                    stored ? stored : "");
  struct hv_cgroup *cg = cg_new(L);
  cg->d = hv_xmalloc0((json_array_size(dirs) + 1) * sizeof(*cg->d));
  size_t i;
  json_t *v;
  json_array_foreach(dirs, i, v) {
    const char *path = json_string_value(json_object_get(v, "path"));
    const char *top = json_string_value(json_object_get(v, "top"));
    if (!path || path[0] != '/') {
      hv_cg_free(cg);
      return hv_error(err, 0, "cgroups: stored cgroup path `%s` has a bad entry", stored);
    }
    struct cg_dir *d = &cg->d[cg->n++];
    d->path = hv_xstrdup(path);
    d->top = hv_xstrdup(top);
    d->hier = -1;
    size_t best = 0;
    for (size_t h = 0; h < L->n; h++) {
      size_t ml = strlen(L->h[h].mount);
      if (ml > best && strncmp(path, L->h[h].mount, ml) == 0 && path[ml] == '/') {
        best = ml;
        d->hier = (int)h;
      }
    }
  }
  cg->stored = hv_xstrdup(stored);
  *out = cg;
  return 0;
}

const char *hv_cg_path(const struct hv_cgroup *cg) { return cg->stored; }

int hv_cg_enter(struct hv_cgroup *cg, pid_t pid, hv_error_t *err) {
  char buf[32];
  snprintf(buf, sizeof buf, "%d", (int)pid);
  for (size_t i = 0; i < cg->n; i++) {
    cleanup_free char *field = hv_xasprintf("cgroups: add pid %d", (int)pid);
    if (cg_write(cg->d[i].path, "cgroup.procs", buf, field, err) < 0)
      return -1;
  }
  return 0;
}

int hv_cg_update(struct hv_cgroup *cg, const struct hv_oci_resources *r, hv_error_t *err) {
  if (cg_validate_resources(r, err) < 0)
    return -1;
  return cg_apply_resources(cg, r, true, err);
}

/* ---- freezer ------------------------------------------------------- */

static bool v2_events_frozen(const char *dir) {
  int64_t v = 0;
  return cg_read_key(dir, "cgroup.events", "frozen", &v) == 0 && v == 1;
}

static bool v1_state_is(const char *dir, const char *want) {
  cleanup_free char *s = NULL;
  return cg_read(dir, "freezer.state", &s) == 0 && strncmp(s, want, strlen(want)) == 0;
}

int hv_cg_freeze(struct hv_cgroup *cg, bool frozen, hv_error_t *err) {
  struct cg_dir *d = cg_dir_for(cg, "freezer");
  if (!d)
    return hv_error(err, 0, "cgroups: the freezer is not available on this host");
  long deadline = now_ms() + FREEZE_TIMEOUT_MS;
  if (cg_dir_is_v2(cg, d)) {
    if (cg_write(d->path, "cgroup.freeze", frozen ? "1" : "0", "cgroups: freeze", err) < 0)
      return -1;
    if (cg->L->fake)
      return 0;
    while (v2_events_frozen(d->path) != frozen) {
      if (now_ms() > deadline)
        return hv_error(err, ETIMEDOUT, "cgroups: %s `%s`", frozen ? "freeze" : "thaw",
                        d->path);
      sleep_ms(5);
    }
    return 0;
  }
  const char *want = frozen ? "FROZEN" : "THAWED";
  for (int iter = 0;; iter++) {
    /* FREEZING can stall when a task is in an uninterruptible state; writing
     * FROZEN again retries the freeze. */
    if (iter % 50 == 0 && cg_write(d->path, "freezer.state", want, "cgroups: freeze", err) < 0)
      return -1;
    if (v1_state_is(d->path, want))
      return 0;
    if (now_ms() > deadline) {
      if (frozen) {
        hv_error_t e2 = NULL;
        cg_write(d->path, "freezer.state", "THAWED", "thaw", &e2);
        hv_error_release(&e2);
      }
      return hv_error(err, ETIMEDOUT, "cgroups: %s `%s`", frozen ? "freeze" : "thaw", d->path);
    }
    sleep_ms(2);
  }
}

bool hv_cg_is_frozen(struct hv_cgroup *cg) {
  struct cg_dir *d = cg_dir_for(cg, "freezer");
  if (!d)
    return false;
  if (cg_dir_is_v2(cg, d)) {
    if (cg->L->fake) {
      cleanup_free char *s = NULL;
      return cg_read(d->path, "cgroup.freeze", &s) == 0 && s[0] == '1';
    }
    return v2_events_frozen(d->path);
  }
  return v1_state_is(d->path, "FROZEN");
}

/* ---- pids ------------------------------------------------------------ */

static void pids_add(pid_t **pids, size_t *n, pid_t p) {
  for (size_t i = 0; i < *n; i++)
    if ((*pids)[i] == p)
      return;
  pid_t *np = realloc(*pids, (*n + 1) * sizeof(pid_t));
  if (!np)
    abort();
  *pids = np;
  (*pids)[(*n)++] = p;
}

static int collect(const char *dir, pid_t **pids, size_t *n) {
  cleanup_free char *s = NULL;
  int r = cg_read(dir, "cgroup.procs", &s);
  if (r < 0)
    return r;
  for (char *p = s; *p;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p)
      break;
    if (v > 0)
      pids_add(pids, n, (pid_t)v);
    p = end;
    while (*p == '\n' || *p == ' ')
      p++;
  }
  DIR *dh = opendir(dir);
  struct dirent *e;
  while (dh && (e = readdir(dh))) {
    if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    cleanup_free char *sub = hv_xasprintf("%s/%s", dir, e->d_name);
    collect(sub, pids, n);
  }
  if (dh)
    closedir(dh);
  return 0;
}

int cg_collect_pids(const char *dir, pid_t **pids, size_t *n) { return collect(dir, pids, n); }

bool hv_cg_stored_is_frozen(const char *stored) {
  struct hv_cgroup *cg = NULL;
  if (!stored || hv_cg_open(stored, &cg, NULL) < 0)
    return false;
  bool f = hv_cg_is_frozen(cg);
  hv_cg_free(cg);
  return f;
}

int hv_cg_pids(struct hv_cgroup *cg, pid_t **pids, size_t *n, hv_error_t *err) {
  *pids = NULL;
  *n = 0;
  /* A controller every process of the container is certainly in. */
  static const char *const pref[] = {"pids", "memory", "freezer", "cpu", NULL};
  struct cg_dir *d = NULL;
  for (size_t i = 0; pref[i] && !d; i++)
    d = cg_dir_for(cg, pref[i]);
  if (!d)
    d = cg_v2_dir(cg);
  if (!d && cg->n)
    d = &cg->d[0];
  if (!d)
    return hv_error(err, 0, "cgroups: the cgroup has no directory");
  int r = collect(d->path, pids, n);
  if (r == -ENOENT)
    return 0; /* already removed: no processes */
  if (r < 0)
    return hv_error(err, -r, "cgroups: read `%s/cgroup.procs`", d->path);
  return 0;
}

/* ---- destroy ----------------------------------------------------------- */

static size_t kill_all(struct hv_cgroup *cg) {
  pid_t *pids = NULL;
  size_t n = 0;
  for (size_t i = 0; i < cg->n; i++)
    collect(cg->d[i].path, &pids, &n);
  size_t killed = 0;
  for (size_t i = 0; i < n; i++)
    if (pids[i] != getpid() && kill(pids[i], SIGKILL) == 0)
      killed++;
  free(pids);
  return n;
}

int hv_cg_destroy(struct hv_cgroup *cg, hv_error_t *err) {
  bool fake = cg->L->fake;
  bool any = false;
  for (size_t i = 0; i < cg->n; i++)
    any |= access(cg->d[i].path, F_OK) == 0;
  if (any && !fake) {
    /* Fast path, the common case after a workload exits: rmdir only
     * succeeds on a cgroup with no process, so when every directory goes
     * away the freeze/kill/thaw round (several writes and polls per
     * hierarchy, paid on every container start-to-exit) is not needed.
     * A populated cgroup fails with EBUSY and takes the slow path. */
    bool all_gone = true;
    for (size_t i = 0; i < cg->n; i++)
      all_gone &= rm_tree(cg->d[i].path, false) == 0;
    any = !all_gone;
  }
  if (any && !fake) {
    /* Freeze first so nothing forks while we kill; best effort. */
    hv_error_t e2 = NULL;
    bool froze = hv_cg_freeze(cg, true, &e2) == 0;
    hv_error_release(&e2);
    struct cg_dir *v2 = cg_v2_dir(cg);
    if (v2 && cg_has_file(v2->path, "cgroup.kill")) {
      cg_write(v2->path, "cgroup.kill", "1", "kill", &e2);
      hv_error_release(&e2);
    }
    kill_all(cg);
    if (froze || cg_dir_for(cg, "freezer")) {
      hv_cg_freeze(cg, false, &e2);
      hv_error_release(&e2);
    }
  }
  long deadline = now_ms() + DESTROY_TIMEOUT_MS;
  for (;;) {
    int last = 0;
    size_t failed_at = 0;
    for (size_t i = 0; i < cg->n; i++) {
      int r = rm_tree(cg->d[i].path, fake);
      if (r < 0) {
        last = r;
        failed_at = i;
      }
    }
    if (last == 0)
      break;
    if (now_ms() > deadline || (last != -EBUSY && last != -ENOTEMPTY))
      return hv_error(err, -last, "cgroups: remove `%s`", cg->d[failed_at].path);
    if (!fake)
      kill_all(cg);
    sleep_ms(10);
  }
  for (size_t i = 0; i < cg->n; i++)
    rm_parents(cg->d[i].path, cg->d[i].top, fake);
  return 0;
}
