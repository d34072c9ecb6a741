/* imgconfig.c: an image's config (Entrypoint, Cmd, Env, WorkingDir, User,
 * Labels) and how it becomes runtime-spec pieces, with user names resolved
 * through the image's own /etc/passwd and /etc/group. */
#include "store_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static int strv_from_json(json_t *a, const char *field, char ***out, hv_error_t *err) {
  *out = NULL;
  if (!a || json_is_null(a))
    return 0;
  if (!json_is_array(a))
    return hv_error(err, 0, "image config: %s: expected an array of strings", field);
  char **v = hv_xmalloc0((json_array_size(a) + 1) * sizeof(char *));
  for (size_t i = 0; i < json_array_size(a); i++) {
    const char *s = json_string_value(json_array_get(a, i));
    if (!s) {
      hv_strv_free(v);
      return hv_error(err, 0, "image config: %s[%zu]: expected a string", field, i);
    }
    v[i] = hv_xstrdup(s);
  }
  *out = v;
  return 0;
}

int hv_image_config_parse(json_t *config, struct hv_image_config *c, hv_error_t *err) {
  hv_image_config_clear(c);
  json_t *cc = json_object_get(config, "config");
  if (!cc || json_is_null(cc))
    return 0;
  if (!json_is_object(cc))
    return hv_error(err, 0, "image config: \"config\" is not an object");
  if (strv_from_json(json_object_get(cc, "Entrypoint"), "Entrypoint", &c->entrypoint, err) < 0 ||
      strv_from_json(json_object_get(cc, "Cmd"), "Cmd", &c->cmd, err) < 0 ||
      strv_from_json(json_object_get(cc, "Env"), "Env", &c->env, err) < 0)
    return -1;
  const char *wd = json_string_value(json_object_get(cc, "WorkingDir"));
  const char *user = json_string_value(json_object_get(cc, "User"));
  c->working_dir = wd && *wd ? hv_xstrdup(wd) : NULL;
  c->user = user && *user ? hv_xstrdup(user) : NULL;
  json_t *labels = json_object_get(cc, "Labels");
  if (json_is_object(labels) && json_object_size(labels)) {
    c->labels = hv_xmalloc0(json_object_size(labels) * sizeof *c->labels);
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v) {
      if (!json_is_string(v))
        continue;
      c->labels[c->n_labels].key = hv_xstrdup(k);
      c->labels[c->n_labels++].value = hv_xstrdup(json_string_value(v));
    }
  }
  return 0;
}

void hv_image_config_clear(struct hv_image_config *c) {
  hv_strv_free(c->entrypoint);
  hv_strv_free(c->cmd);
  hv_strv_free(c->env);
  free(c->working_dir);
  free(c->user);
  for (size_t i = 0; i < c->n_labels; i++) {
    free(c->labels[i].key);
    free(c->labels[i].value);
  }
  free(c->labels);
  memset(c, 0, sizeof *c);
}

/* Read `dir/name` as the image's merged view shows it: the topmost layer
 * that has it wins; a whiteout or an opaque `dir` above stops the search.
 * Returns 0 with *text, 1 if absent. */
static int read_image_file(struct hv_image_store *s, const struct hv_image *img, const char *dir,
                           const char *name, char **text, hv_error_t *err) {
  cleanup_free char *path = hv_xasprintf("%s/%s", dir, name);
  for (size_t i = img->n_layers; i-- > 0;) {
    cleanup_close int lfd = openat(s->layers_fd, hv_digest_hex(img->layers[i].diff_id),
                                   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lfd < 0)
      return hv_error(err, errno, "layer %s is not unpacked", img->layers[i].diff_id);
    if (hv_is_whiteout_at(lfd, dir))
      return 1;
    cleanup_close int dfd = hv_openat_in_root(lfd, dir, O_PATH | O_DIRECTORY, 0);
    if (dfd >= 0 && hv_is_whiteout_at(dfd, name))
      return 1;
    cleanup_close int fd = hv_openat_in_root(lfd, path, O_RDONLY, 0);
    if (fd >= 0) {
      struct stat st;
      if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (16 << 20))
        return 1;
      close(fd);
      fd = -1;
      /* Re-open confined to read it whole. */
      cleanup_close int again = hv_openat_in_root(lfd, path, O_RDONLY, 0);
      if (again < 0)
        return 1;
      char *buf = hv_xmalloc0((size_t)st.st_size + 1);
      ssize_t got = 0, r;
      while (got < st.st_size && (r = read(again, buf + got, (size_t)(st.st_size - got))) > 0)
        got += r;
      buf[got] = 0;
      *text = buf;
      return 0;
    }
    if (dfd >= 0 && hv_is_opaque_at(lfd, dir))
      return 1;
  }
  return 1;
}

/* Find the line of a colon-separated database (passwd, group) whose first
 * field is `name`; returns its fields. */
static bool db_lookup(const char *text, const char *name, char fields[7][256]) {
  if (!text)
    return false;
  const char *line = text;
  while (*line) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    int f = 0;
    size_t k = 0;
    memset(fields, 0, 7 * 256);
    for (size_t i = 0; i < len && f < 7; i++) {
      if (line[i] == ':') {
        f++;
        k = 0;
      } else if (k < 255) {
        fields[f][k++] = line[i];
      }
    }
    if (f >= 3 && !strcmp(fields[0], name))
      return true;
    line += len + (end ? 1 : 0);
  }
  return false;
}

static bool parse_id(const char *s, uint32_t *out) {
  if (!*s)
    return false;
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (*end || errno || v > UINT32_MAX || *s == '-' || *s == '+')
    return false;
  *out = (uint32_t)v;
  return true;
}

/* Numeric uid whose passwd line gives its primary gid. */
static bool uid_primary_gid(const char *passwd, uint32_t uid, uint32_t *gid) {
  for (const char *line = passwd; line && *line;) {
    const char *end = strchr(line, '\n');
    char l[1024];
    snprintf(l, sizeof l, "%.*s", (int)(end ? end - line : (long)strlen(line)), line);
    char *fields[4] = {0};
    char *p = l;
    for (int i = 0; i < 4 && p; i++) {
      fields[i] = p;
      p = strchr(p, ':');
      if (p)
        *p++ = 0;
    }
    uint32_t u;
    if (fields[3] && parse_id(fields[2], &u) && u == uid && parse_id(fields[3], gid))
      return true;
    line = end ? end + 1 : NULL;
  }
  return false;
}

int hv_image_resolve_user(struct hv_image_store *s, const struct hv_image *img,
                          const char *user, uint32_t *uid, uint32_t *gid, hv_error_t *err) {
  *uid = *gid = 0;
  if (!user || !*user)
    return 0;
  cleanup_free char *u = hv_xstrdup(user);
  char *group = strchr(u, ':');
  if (group)
    *group++ = 0;
  uint32_t n;
  bool need_passwd = !parse_id(u, &n) || !group;
  bool need_group = group && !parse_id(group, &n);
  cleanup_free char *passwd = NULL, *grp = NULL;
  if (need_passwd || need_group) {
    cleanup_close int lock = -1;
    if (hv_store_lock(s, "gc.lock", HV_LOCK_SH, &lock, err) < 0 ||
        hv_image_ensure_layers(s, img, err) < 0)
      return -1;
    if ((need_passwd && read_image_file(s, img, "etc", "passwd", &passwd, err) < 0) ||
        (need_group && read_image_file(s, img, "etc", "group", &grp, err) < 0))
      return -1;
  }
  char f[7][256];
  if (parse_id(u, uid)) {
    if (!group && passwd)
      uid_primary_gid(passwd, *uid, gid);
  } else {
    if (!db_lookup(passwd, u, f) || !parse_id(f[2], uid) || !parse_id(f[3], gid))
      return hv_error(err, 0, "user `%s`: no such user in the image's /etc/passwd", u);
  }
  if (group && !parse_id(group, gid)) {
    if (!db_lookup(grp, group, f) || !parse_id(f[2], gid))
      return hv_error(err, 0, "user `%s`: no such group `%s` in the image's /etc/group", user,
                      group);
  }
  return 0;
}

static json_t *strv_json(char **v) {
  json_t *a = json_array();
  for (size_t i = 0; v && v[i]; i++)
    json_array_append_new(a, json_string(v[i]));
  return a;
}

int hv_image_apply_to_spec(struct hv_image_store *s, const struct hv_image *img, json_t *spec,
                           char *const *args, const char *user, hv_error_t *err) {
  const struct hv_image_config *c = &img->cfg;
  json_t *proc = json_object_get(spec, "process");
  if (!json_is_object(proc)) {
    proc = json_object();
    json_object_set_new(spec, "process", proc);
  }
  json_t *argv = strv_json(c->entrypoint);
  if (args && args[0])
    for (size_t i = 0; args[i]; i++)
      json_array_append_new(argv, json_string(args[i]));
  else {
    json_t *cmd = strv_json(c->cmd);
    json_array_extend(argv, cmd);
    json_decref(cmd);
  }
  if (!json_array_size(argv)) {
    json_decref(argv);
    return hv_error(err, 0, "image `%s` has no Entrypoint or Cmd: give a command",
                    img->ref ? img->ref : img->digest);
  }
  json_object_set_new(proc, "args", argv);

  /* Env: the image's, then the spec's defaults for keys the image lacks. */
  json_t *env = strv_json(c->env);
  json_t *old = json_object_get(proc, "env");
  size_t i;
  json_t *v;
  bool has_path = false;
  for (size_t k = 0; c->env && c->env[k]; k++)
    has_path |= !strncmp(c->env[k], "PATH=", 5);
  json_array_foreach(old, i, v) {
    const char *e = json_string_value(v);
    const char *eq = e ? strchr(e, '=') : NULL;
    if (!eq)
      continue;
    bool dup = false;
    for (size_t k = 0; c->env && c->env[k]; k++)
      dup |= !strncmp(c->env[k], e, (size_t)(eq - e + 1));
    if (!dup) {
      json_array_append(env, v);
      has_path |= !strncmp(e, "PATH=", 5);
    }
  }
  if (!has_path)
    json_array_append_new(
        env, json_string("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
  json_object_set_new(proc, "env", env);
  json_object_set_new(proc, "cwd", json_string(c->working_dir ? c->working_dir : "/"));

  uint32_t uid, gid;
  if (hv_image_resolve_user(s, img, user ? user : c->user, &uid, &gid, err) < 0)
    return -1;
  json_object_set_new(proc, "user", json_pack("{s:I,s:I}", "uid", (json_int_t)uid, "gid",
                                              (json_int_t)gid));
  json_t *ann = json_object_get(spec, "annotations");
  if (!json_is_object(ann) && c->n_labels) {
    ann = json_object();
    json_object_set_new(spec, "annotations", ann);
  }
  for (size_t k = 0; k < c->n_labels; k++)
    if (!json_object_get(ann, c->labels[k].key))
      json_object_set_new(ann, c->labels[k].key, json_string(c->labels[k].value));
  return 0;
}
