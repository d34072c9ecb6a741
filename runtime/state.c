/* state.c: the state store under --root.
 *
 * Layout: <root>/<id>/state.json (plus backend files in <root>/<id>/) and
 * a lock file <root>/<id>.lock for hv_state_lock.  A container directory
 * only ever appears together with its state.json: hv_state_create builds
 * it under a temporary name and renames it into place with
 * RENAME_NOREPLACE, which is also what makes "exactly one of two racing
 * creates wins" hold without a lock. */
#include "runtime.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#define STATE_FILE "state.json"
/* "<id>.lock" must fit in NAME_MAX (255). */
#define ID_MAX 250

static const char *const status_names[] = {
    [HV_CREATING] = "creating", [HV_CREATED] = "created", [HV_RUNNING] = "running",
    [HV_STOPPED] = "stopped",   [HV_PAUSED] = "paused",
};

const char *hv_status_name(enum hv_status s) {
  return (unsigned)s < sizeof status_names / sizeof status_names[0] ? status_names[s] : "unknown";
}

static int status_from_name(const char *n, enum hv_status *out) {
  for (size_t i = 0; i < sizeof status_names / sizeof status_names[0]; i++)
    if (n && strcmp(n, status_names[i]) == 0) {
      *out = (enum hv_status)i;
      return 0;
    }
  return -1;
}

static int validate_id(const char *id, hv_error_t *err) {
  if (!id || !*id)
    return hv_error(err, 0, "container id must not be empty");
  size_t n = strlen(id);
  if (n > ID_MAX)
    return hv_error(err, 0, "invalid container id \"%.32s...\": longer than %d characters", id,
                    ID_MAX);
  if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0 || strstr(id, ".."))
    return hv_error(err, 0, "invalid container id \"%s\": must not contain \"..\"", id);
  if (id[0] == '.')
    return hv_error(err, 0, "invalid container id \"%s\": must not start with \".\"", id);
  for (const char *p = id; *p; p++) {
    char ch = *p;
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '+' || ch == '-';
    if (!ok)
      return hv_error(err, 0,
                      "invalid container id \"%s\": character '%c' is not allowed "
                      "(use letters, digits, '_', '.', '+', '-')",
                      id, ch);
  }
  return 0;
}

int hv_store_open(struct hv_store *s, const char *root, hv_error_t *err) {
  s->root = NULL;
  s->dirfd = -1;
  if (!root || !*root)
    root = "/run/hvrun";
  if (hv_mkdir_p(root, 0700, err) < 0)
    return hv_error_wrap(err, "state root");
  int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return hv_error(err, errno, "open state root `%s`", root);
  s->root = hv_xstrdup(root);
  s->dirfd = fd;
  return 0;
}

void hv_store_close(struct hv_store *s) {
  if (s->dirfd >= 0)
    close(s->dirfd);
  s->dirfd = -1;
  free(s->root);
  s->root = NULL;
}

int hv_state_lock(struct hv_store *s, const char *id, int *lockfd, hv_error_t *err) {
  if (validate_id(id, err) < 0)
    return -1;
  cleanup_free char *name = hv_xasprintf("%s.lock", id);
  int fd = openat(s->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return hv_error(err, errno, "open lock `%s/%s`", s->root, name);
  while (flock(fd, LOCK_EX) < 0) {
    if (errno != EINTR) {
      int e = errno;
      close(fd);
      return hv_error(err, e, "lock `%s/%s`", s->root, name);
    }
  }
  *lockfd = fd;
  return 0;
}

char *hv_state_dir(struct hv_store *s, const char *id) { return hv_xasprintf("%s/%s", s->root, id); }

static char *state_dump(const struct hv_state *st) {
  json_t *j = json_object();
  json_object_set_new(j, "id", json_string(st->id));
  json_object_set_new(j, "bundle", json_string(st->bundle ? st->bundle : ""));
  json_object_set_new(j, "backend", json_string(st->backend ? st->backend : "container"));
  json_object_set_new(j, "pid", json_integer(st->pid));
  json_object_set_new(j, "pid_start", json_integer((json_int_t)st->pid_start));
  json_object_set_new(j, "status", json_string(hv_status_name(st->status)));
  json_object_set_new(j, "created", json_string(st->created ? st->created : ""));
  if (st->cgroup_path)
    json_object_set_new(j, "cgroup_path", json_string(st->cgroup_path));
  json_object_set_new(j, "owner", json_string(st->owner ? st->owner : ""));
  if (st->annotations)
    json_object_set(j, "annotations", st->annotations);
  if (st->extra)
    json_object_set(j, "extra", st->extra);
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(j);
  if (!s)
    abort();
  return s;
}

/* Remove a directory tree without following symlinks (backends keep
 * fifos and sockets in there). */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  int r = flag == FTW_DP ? rmdir(path) : unlink(path);
  return r < 0 && errno != ENOENT ? -1 : 0;
}

static int rm_tree(const char *path) {
  if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
    return -1;
  return 0;
}

/* hv_state_create builds a container dir as ".new-<pid>-<n>" and renames
 * it into place; if that hvrun was killed in between, the temp dir stays.
 * Is `name` such a dir whose creator is gone? */
#define NEW_PREFIX ".new-"
static bool is_dead_new_dir(int dirfd, const char *name) {
  int pid = 0;
  if (strncmp(name, NEW_PREFIX, strlen(NEW_PREFIX)) != 0 ||
      sscanf(name, NEW_PREFIX "%d-", &pid) != 1 || pid <= 0)
    return false;
  if (kill(pid, 0) == 0 || errno != ESRCH)
    return false;
  struct stat sb;
  return fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode);
}

static void remove_new_dir(struct hv_store *s, const char *name) {
  cleanup_free char *p = hv_xasprintf("%s/%s", s->root, name);
  rm_tree(p);
}

/* Remove every dead creator's temp dir.  A scan of --root, so it is only
 * done where it is cheap or needed: `list` (which scans anyway) and the
 * removal of an id that has no dir (delete --force after a killed create). */
static void sweep_dead_new_dirs(struct hv_store *s) {
  int fd = dup(s->dirfd);
  if (fd < 0)
    return;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return;
  }
  rewinddir(d);
  struct dirent *de;
  while ((de = readdir(d)))
    if (is_dead_new_dir(s->dirfd, de->d_name))
      remove_new_dir(s, de->d_name);
  closedir(d);
}

int hv_state_create(struct hv_store *s, const struct hv_state *st, hv_error_t *err) {
  if (validate_id(st->id, err) < 0)
    return -1;
  struct stat sb;
  if (fstatat(s->dirfd, st->id, &sb, AT_SYMLINK_NOFOLLOW) == 0)
    return hv_error(err, 0, "container \"%s\" already exists", st->id);
  static unsigned counter;
  cleanup_free char *tmp = hv_xasprintf(".new-%d-%u", getpid(), counter++);
  cleanup_free char *tmp_path = hv_xasprintf("%s/%s", s->root, tmp);
  if (mkdirat(s->dirfd, tmp, 0711) < 0)
    return hv_error(err, errno, "create `%s`", tmp_path);
  cleanup_free char *data = state_dump(st);
  cleanup_close int tfd = openat(s->dirfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tfd < 0 || hv_write_runtime_file(tfd, STATE_FILE, data, strlen(data), 0600, err) < 0) {
    int e = errno;
    rm_tree(tmp_path);
    return tfd < 0 ? hv_error(err, e, "open `%s`", tmp_path) : -1;
  }
  if (renameat2(s->dirfd, tmp, s->dirfd, st->id, RENAME_NOREPLACE) < 0) {
    int e = errno;
    rm_tree(tmp_path);
    if (e == EEXIST || e == ENOTEMPTY)
      return hv_error(err, 0, "container \"%s\" already exists", st->id);
    return hv_error(err, e, "rename `%s` to `%s/%s`", tmp_path, s->root, st->id);
  }
  return 0;
}

int hv_state_save(struct hv_store *s, const struct hv_state *st, hv_error_t *err) {
  if (validate_id(st->id, err) < 0)
    return -1;
  cleanup_close int fd = openat(s->dirfd, st->id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT)
      return hv_error(err, 0, "container \"%s\" does not exist", st->id);
    return hv_error(err, errno, "open `%s/%s`", s->root, st->id);
  }
  cleanup_free char *data = state_dump(st);
  return hv_write_runtime_file(fd, STATE_FILE, data, strlen(data), 0600, err);
}

static char *dup_str(json_t *j, const char *key) {
  const char *v = json_string_value(json_object_get(j, key));
  return v && *v ? hv_xstrdup(v) : NULL;
}

int hv_state_load(struct hv_store *s, const char *id, struct hv_state *st, hv_error_t *err) {
  *st = (struct hv_state){0};
  if (validate_id(id, err) < 0)
    return -1;
  cleanup_free char *path = hv_xasprintf("%s/%s/%s", s->root, id, STATE_FILE);
  cleanup_free char *rel = hv_xasprintf("%s/%s", id, STATE_FILE);
  cleanup_close int fd = openat(s->dirfd, rel, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return hv_error(err, 0, "container \"%s\" does not exist", id);
    return hv_error(err, errno, "open `%s`", path);
  }
  json_error_t je;
  cleanup_json json_t *j = json_loadfd(fd, 0, &je);
  if (!j || !json_is_object(j))
    return hv_error(err, 0, "state of container \"%s\" is corrupt (`%s`:%d: %s)", id, path,
                    j ? 1 : je.line, j ? "not an object" : je.text);
  const char *status = json_string_value(json_object_get(j, "status"));
  if (status_from_name(status, &st->status) < 0)
    return hv_error(err, 0, "state of container \"%s\" is corrupt (`%s`: bad status)", id, path);
  st->id = hv_xstrdup(id);
  st->bundle = dup_str(j, "bundle");
  st->backend = dup_str(j, "backend");
  st->pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
  st->pid_start = (unsigned long long)json_integer_value(json_object_get(j, "pid_start"));
  st->created = dup_str(j, "created");
  st->cgroup_path = dup_str(j, "cgroup_path");
  st->owner = dup_str(j, "owner");
  json_t *a = json_object_get(j, "annotations");
  st->annotations = json_is_object(a) ? json_incref(a) : NULL;
  json_t *x = json_object_get(j, "extra");
  st->extra = json_is_object(x) ? json_incref(x) : NULL;
  return 0;
}

int hv_state_remove(struct hv_store *s, const char *id, hv_error_t *err) {
  if (validate_id(id, err) < 0)
    return -1;
  cleanup_free char *dir = hv_state_dir(s, id);
  struct stat sb;
  if (fstatat(s->dirfd, id, &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
    sweep_dead_new_dirs(s); /* the create of `id` may have died half-way */
  else if (rm_tree(dir) < 0)
    return hv_error(err, errno, "remove `%s`", dir);
  cleanup_free char *lock = hv_xasprintf("%s.lock", id);
  if (unlinkat(s->dirfd, lock, 0) < 0 && errno != ENOENT)
    return hv_error(err, errno, "remove `%s/%s`", s->root, lock);
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int hv_state_list(struct hv_store *s, char ***ids, hv_error_t *err) {
  int fd = dup(s->dirfd);
  if (fd < 0)
    return hv_error(err, errno, "dup");
  DIR *d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    return hv_error(err, e, "read `%s`", s->root);
  }
  rewinddir(d);
  size_t n = 0, cap = 8;
  char **v = hv_xmalloc0(cap * sizeof(char *));
  struct dirent *de;
  while ((de = readdir(d))) {
    /* Dot entries are "." / ".." and half-built ".new-*" directories. */
    if (de->d_name[0] == '.') {
      if (is_dead_new_dir(s->dirfd, de->d_name))
        remove_new_dir(s, de->d_name);
      continue;
    }
    struct stat sb;
    cleanup_free char *rel = hv_xasprintf("%s/%s", de->d_name, STATE_FILE);
    if (fstatat(s->dirfd, rel, &sb, 0) < 0)
      continue;
    if (n + 1 >= cap) {
      cap *= 2;
      char **nv = realloc(v, cap * sizeof(char *));
      if (!nv)
        abort();
      v = nv;
    }
    v[n++] = hv_xstrdup(de->d_name);
    v[n] = NULL;
  }
  closedir(d);
  qsort(v, n, sizeof(char *), cmp_str);
  *ids = v;
  return 0;
}

/* The command name (field 2) may contain spaces and ')' so parse after
 * the last ')'. */
int hv_proc_stat(pid_t pid, struct hv_proc_stat *out) {
  char path[64], buf[1024];
  if (pid <= 0)
    return -1;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n <= 0)
    return -1;
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p || p[1] != ' ')
    return -1;
  p += 2; /* field 3: state, then 4: ppid */
  int ppid;
  if (sscanf(p, "%c %d", &out->state, &ppid) != 2)
    return -1;
  out->ppid = ppid;
  for (int field = 3; field < 22; field++) {
    p = strchr(p, ' ');
    if (!p)
      return -1;
    p++;
  }
  out->starttime = strtoull(p, NULL, 10);
  return 0;
}

unsigned long long hv_proc_starttime(pid_t pid) {
  struct hv_proc_stat ps;
  if (hv_proc_stat(pid, &ps) < 0)
    return 0;
  return ps.starttime;
}

void hv_state_refresh(struct hv_state *st) {
  if (st->status == HV_STOPPED)
    return;
  if (st->pid <= 0) {
    if (st->status != HV_CREATING)
      st->status = HV_STOPPED;
    return;
  }
  struct hv_proc_stat ps;
  /* A zombie has exited: only its parent has not reaped it yet. */
  if (hv_proc_stat(st->pid, &ps) < 0 || ps.state == 'Z' || ps.state == 'X' ||
      (st->pid_start && ps.starttime != st->pid_start))
    st->status = HV_STOPPED;
}

json_t *hv_state_to_json(const struct hv_state *st) {
  json_t *j = json_object();
  json_object_set_new(j, "ociVersion", json_string("1.2.0"));
  json_object_set_new(j, "id", json_string(st->id ? st->id : ""));
  json_object_set_new(j, "pid", json_integer(st->status == HV_STOPPED ? 0 : st->pid));
  json_object_set_new(j, "status", json_string(hv_status_name(st->status)));
  json_object_set_new(j, "bundle", json_string(st->bundle ? st->bundle : ""));
  json_object_set_new(j, "created", json_string(st->created ? st->created : ""));
  json_object_set_new(j, "owner", json_string(st->owner ? st->owner : ""));
  if (st->annotations && json_object_size(st->annotations))
    json_object_set(j, "annotations", st->annotations);
  return j;
}

void hv_state_clear(struct hv_state *st) {
  free(st->id);
  free(st->bundle);
  free(st->backend);
  free(st->created);
  free(st->cgroup_path);
  free(st->owner);
  json_decref(st->annotations);
  json_decref(st->extra);
  *st = (struct hv_state){0};
}
