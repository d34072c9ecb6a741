/* oneshot.c: `hvrun container|vm [flags] ROOTFS-DIR|BUNDLE-DIR|IMAGE [CMD...]`:
 * build a config, apply the policy flags, create + start + wait + clean up
 * under a generated id.  Both backends take the same path; only the
 * backend table differs.
 *
 * `hvrun vm` also takes --engine, --kernel, --kernel-modules and --init,
 * passed to the VM backend as the annotations it reads
 * (org.hvrun.engine/kernel/kernel-modules/init).  For
 * an IMAGE it sets org.hvrun.image instead of mounting the image: the VM
 * boots from the store's cached erofs disk of the image, so no overlay
 * mount and no mkfs.erofs per run. */
#include "cli_internal.h"
#include "../images/images.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

struct oneshot {
  const char *memory, *cpus, *cpuset, *memory_swap, *pids, *blkio_weight, *workdir, *user,
      *hostname, *network, *name, *engine, *kernel, *kernel_modules, *init;
  char **read_bps, **write_bps, **cap_add, **cap_drop, **secopts, **envs;
  bool read_only, tty, interactive, rm;
};

/* ---------------- policy flags ---------------- */

static int parse_throttle(const char *flag, char **v, struct hv_oci_throttle_device **out,
                          size_t *n, hv_error_t *err) {
  size_t cnt = hv_strv_len(v);
  if (!cnt)
    return 0;
  *out = hv_xmalloc0(cnt * sizeof **out);
  for (size_t i = 0; i < cnt; i++) {
    cleanup_free char *s = hv_xstrdup(v[i]);
    char *colon = strrchr(s, ':');
    if (!colon)
      return hv_error(err, 0, "%s \"%s\": expected DEVICE:RATE (e.g. /dev/sda:1mb)", flag, v[i]);
    *colon = 0;
    struct stat sb;
    if (stat(s, &sb) < 0)
      return hv_error(err, errno, "%s \"%s\": device `%s`", flag, v[i], s);
    if (!S_ISBLK(sb.st_mode))
      return hv_error(err, 0, "%s \"%s\": `%s` is not a block device", flag, v[i], s);
    int64_t rate;
    if (cli_parse_size(flag, colon + 1, false, &rate, err) < 0)
      return -1;
    (*out)[i].major = major(sb.st_rdev);
    (*out)[i].minor = minor(sb.st_rdev);
    (*out)[i].rate = (uint64_t)rate;
    (*n)++;
  }
  return 0;
}

static char **caps_norm(char **v) {
  size_t n = hv_strv_len(v);
  if (!n)
    return NULL;
  char **out = hv_xmalloc0((n + 1) * sizeof(char *));
  for (size_t i = 0; i < n; i++) {
    const char *c = v[i];
    bool has_prefix = strncasecmp(c, "CAP_", 4) == 0 || strcasecmp(c, "ALL") == 0;
    char *s = has_prefix ? hv_xstrdup(c) : hv_xasprintf("CAP_%s", c);
    for (char *p = s; *p; p++)
      *p = (char)toupper((unsigned char)*p);
    out[i] = s;
  }
  return out;
}

static int build_policy(const struct oneshot *f, struct hv_policy *p, bool *nnp,
                        hv_error_t *err) {
  memset(p, 0, sizeof *p);
  if (f->memory && cli_parse_size("--memory", f->memory, false, &p->memory, err) < 0)
    return -1;
  if (f->memory_swap &&
      cli_parse_size("--memory-swap", f->memory_swap, true, &p->memory_swap, err) < 0)
    return -1;
  if (f->cpus) {
    char *end;
    errno = 0;
    double c = strtod(f->cpus, &end);
    if (end == f->cpus || *end || errno || c <= 0 || c > 4096)
      return hv_error(err, 0, "--cpus: invalid number of CPUs \"%s\" (e.g. 0.5, 2)", f->cpus);
    p->cpus_milli = (uint32_t)(c * 1000 + 0.5);
  }
  p->cpuset_cpus = hv_xstrdup(f->cpuset);
  if (f->pids && (cli_parse_i64("--pids-limit", f->pids, &p->pids, err) < 0))
    return -1;
  if (f->blkio_weight) {
    uint64_t w;
    if (cli_parse_u64("--blkio-weight", f->blkio_weight, &w, err) < 0)
      return -1;
    if (w < 10 || w > 1000)
      return hv_error(err, 0, "--blkio-weight: %s is outside 10..1000", f->blkio_weight);
    p->blkio_weight = (uint16_t)w;
  }
  if (parse_throttle("--device-read-bps", f->read_bps, &p->device_read_bps,
                     &p->n_device_read_bps, err) < 0 ||
      parse_throttle("--device-write-bps", f->write_bps, &p->device_write_bps,
                     &p->n_device_write_bps, err) < 0)
    return -1;
  p->read_only = f->read_only;
  p->cap_add = caps_norm(f->cap_add);
  p->cap_drop = caps_norm(f->cap_drop);
  for (size_t i = 0; f->secopts && f->secopts[i]; i++) {
    const char *o = f->secopts[i];
    if (strncmp(o, "seccomp=", 8) == 0 || strncmp(o, "seccomp:", 8) == 0) {
      free(p->seccomp);
      p->seccomp = hv_xstrdup(o + 8);
    } else if (strcmp(o, "no-new-privileges") == 0 || strcmp(o, "no-new-privileges=true") == 0 ||
               strcmp(o, "no-new-privileges:true") == 0) {
      *nnp = true;
    } else {
      return hv_error(err, 0, "--security-opt \"%s\": expected seccomp=FILE|unconfined or "
                              "no-new-privileges", o);
    }
  }
  if (!f->network || strcmp(f->network, "none") == 0)
    p->network = HV_NET_NONE;
  else if (strcmp(f->network, "host") == 0)
    p->network = HV_NET_HOST;
  else
    return hv_error(err, 0, "--network \"%s\": expected none or host", f->network);
  return 0;
}

/* ---------------- the config document ---------------- */

static void env_set(json_t *env, const char *kv) {
  const char *eq = strchr(kv, '=');
  size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
  size_t i;
  json_t *v;
  json_array_foreach(env, i, v) {
    const char *s = json_string_value(v);
    if (s && strncmp(s, kv, klen) == 0 && (s[klen] == '=' || s[klen] == 0)) {
      json_array_set_new(env, i, json_string(kv));
      return;
    }
  }
  json_array_append_new(env, json_string(kv));
}

static json_t *args_json(char **args, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, json_string(args[i]));
  return a;
}

/* image_user: the image already resolved --user (names allowed). */
static int apply_overrides(const struct oneshot *f, bool nnp, bool image_user, json_t *doc,
                           hv_error_t *err) {
  json_t *p = json_object_get(doc, "process");
  if (!json_is_object(p))
    return hv_error(err, 0, "config.json: process: missing");
  json_object_set_new(p, "terminal", json_boolean(f->tty));
  json_t *env = json_object_get(p, "env");
  if (!json_is_array(env)) {
    env = json_array();
    json_object_set_new(p, "env", env);
  }
  for (size_t i = 0; f->envs && f->envs[i]; i++)
    env_set(env, f->envs[i]);
  if (f->workdir)
    json_object_set_new(p, "cwd", json_string(f->workdir));
  if (nnp)
    json_object_set_new(p, "noNewPrivileges", json_true());
  if (f->user && !image_user) {
    char *end;
    errno = 0;
    unsigned long uid = strtoul(f->user, &end, 10);
    unsigned long gid = 0;
    if (end == f->user || errno || (*end && *end != ':'))
      return hv_error(err, 0, "--user \"%s\": expected UID[:GID] (numeric; names need an image)",
                      f->user);
    if (*end == ':') {
      const char *g = end + 1;
      gid = strtoul(g, &end, 10);
      if (end == g || *end)
        return hv_error(err, 0, "--user \"%s\": expected UID[:GID]", f->user);
    }
    json_object_set_new(p, "user", json_pack("{s:I,s:I}", "uid", (json_int_t)uid, "gid",
                                             (json_int_t)gid));
  }
  if (f->hostname) {
    json_object_set_new(doc, "hostname", json_string(f->hostname));
    json_t *lin = json_object_get(doc, "linux");
    json_t *ns = lin ? json_object_get(lin, "namespaces") : NULL;
    bool has_uts = false;
    size_t i;
    json_t *v;
    json_array_foreach(ns, i, v) {
      const char *t = json_string_value(json_object_get(v, "type"));
      if (t && strcmp(t, "uts") == 0)
        has_uts = true;
    }
    if (ns && !has_uts)
      json_array_append_new(ns, json_pack("{s:s}", "type", "uts"));
  }
  return 0;
}

struct target {
  char bundle[PATH_MAX];        /* for the state: bundle or rootfs dir */
  json_t *doc;
  struct hv_image_store *store;
  struct hv_image *img;
  char *scratch, *mnt;          /* image rootfs: overlay scratch and mount point */
  bool mounted;
};

static int target_from_dir(const char *arg, char **cmd, size_t ncmd, struct target *t,
                           hv_error_t *err) {
  if (!realpath(arg, t->bundle))
    return hv_error(err, errno, "`%s`", arg);
  cleanup_free char *cfgpath = hv_xasprintf("%s/config.json", t->bundle);
  if (access(cfgpath, F_OK) == 0) {
    json_error_t je;
    t->doc = json_load_file(cfgpath, 0, &je);
    if (!t->doc) {
      /* Let the real parser word the error. */
      struct hv_oci_config *c = NULL;
      if (hv_oci_load(t->bundle, &c, err) == 0) {
        hv_oci_free(c);
        return hv_error(err, 0, "%s:%d:%d: %s", cfgpath, je.line, je.column, je.text);
      }
      return -1;
    }
    json_t *root = json_object_get(t->doc, "root");
    const char *rp = json_string_value(json_object_get(root, "path"));
    if (rp && rp[0] != '/') {
      cleanup_free char *abs = hv_xasprintf("%s/%s", t->bundle, rp);
      json_object_set_new(root, "path", json_string(abs));
    }
    if (ncmd) {
      json_t *p = json_object_get(t->doc, "process");
      if (json_is_object(p))
        json_object_set_new(p, "args", args_json(cmd, ncmd));
    }
    return 0;
  }
  /* A plain root filesystem: the default spec, writable unless --read-only. */
  t->doc = hv_oci_default_spec(false);
  json_object_set_new(t->doc, "root", json_pack("{s:s,s:b}", "path", t->bundle, "readonly", 0));
  json_t *p = json_object_get(t->doc, "process");
  static char *sh[] = {"/bin/sh"};
  json_object_set_new(p, "args", ncmd ? args_json(cmd, ncmd) : args_json(sh, 1));
  json_object_set_new(t->doc, "hostname", json_string("hvrun"));
  return 0;
}

/* Annotations the VM backend reads.  Those an image brought in as labels
 * are dropped: which kernel, init or engine boots a VM on this host is the
 * caller's choice, not the image's. */
static void drop_runtime_annotations(json_t *doc) {
  json_t *ann = json_object_get(doc, "annotations");
  const char *key;
  json_t *v;
  void *tmp;
  json_object_foreach_safe(ann, tmp, key, v) {
    if (strncmp(key, "org.hvrun.", 10) == 0)
      json_object_del(ann, key);
  }
}

static void set_annotation(json_t *doc, const char *key, const char *value) {
  json_t *ann = json_object_get(doc, "annotations");
  if (!json_is_object(ann)) {
    ann = json_object();
    json_object_set_new(doc, "annotations", ann);
  }
  json_object_set_new(ann, key, json_string(value));
}

/* --kernel/--init (a regular file) and --kernel-modules (a directory), made
 * absolute (the VMM runs elsewhere); the error names the flag. */
static int vm_path_flag(const char *flag, const char *path, bool dir, json_t *doc,
                        const char *key, hv_error_t *err) {
  char abs[PATH_MAX];
  struct stat sb;
  if (!realpath(path, abs))
    return hv_error(err, errno, "%s `%s`", flag, path);
  if (stat(abs, &sb) < 0 || (dir ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode)))
    return hv_error(err, 0, "%s `%s`: not a %s", flag, path, dir ? "directory" : "regular file");
  set_annotation(doc, key, abs);
  return 0;
}

static int apply_vm_flags(const struct oneshot *f, json_t *doc, hv_error_t *err) {
  if (f->engine) {
    if (strcmp(f->engine, "hvrun") && strcmp(f->engine, "qemu"))
      return hv_error(err, 0, "--engine \"%s\": expected hvrun or qemu", f->engine);
    set_annotation(doc, "org.hvrun.engine", f->engine);
  }
  if (f->kernel && vm_path_flag("--kernel", f->kernel, false, doc, "org.hvrun.kernel", err) < 0)
    return -1;
  if (f->kernel_modules && vm_path_flag("--kernel-modules", f->kernel_modules, true, doc,
                                        "org.hvrun.kernel-modules", err) < 0)
    return -1;
  if (f->init && vm_path_flag("--init", f->init, false, doc, "org.hvrun.init", err) < 0)
    return -1;
  return 0;
}

static int target_from_image(struct cli_ctx *c, const char *ref, const char *id, char **cmd,
                             size_t ncmd, const char *user, bool vm, struct target *t,
                             hv_error_t *err) {
  if (hv_image_store_open(hv_image_store_dir(NULL), &t->store, err) < 0 ||
      hv_image_lookup(t->store, ref, &t->img, err) < 0)
    return hv_error_wrap(err, "`%s` is not a directory or a known image", ref);
  t->doc = hv_oci_default_spec(false);
  json_object_set_new(t->doc, "hostname", json_string("hvrun"));
  cleanup_free char **args = NULL;
  if (ncmd) {
    args = hv_xmalloc0((ncmd + 1) * sizeof(char *));
    memcpy(args, cmd, ncmd * sizeof(char *));
  }
  if (hv_image_apply_to_spec(t->store, t->img, t->doc, args, user, err) < 0)
    return -1;
  drop_runtime_annotations(t->doc);
  t->scratch = hv_xasprintf("%s/.oneshot-%s", c->store.root, id);
  if (vm) {
    /* The VM backend opens the image's cached erofs disk itself; the
     * scratch dir only stands in for the bundle and root.path. */
    if (hv_mkdir_p(t->scratch, 0700, err) < 0)
      return -1;
    set_annotation(t->doc, "org.hvrun.image", ref);
    json_object_set_new(t->doc, "root", json_pack("{s:s,s:b}", "path", t->scratch, "readonly", 0));
    snprintf(t->bundle, sizeof t->bundle, "%s", t->scratch);
    return 0;
  }
  t->mnt = hv_xasprintf("%s/rootfs", t->scratch);
  if (hv_mkdir_p(t->mnt, 0700, err) < 0)
    return -1;
  cleanup_free char *upper = hv_xasprintf("%s/overlay", t->scratch);
  if (hv_image_rootfs_mount(t->store, t->img, upper, t->mnt, err) < 0)
    return -1;
  t->mounted = true;
  json_object_set_new(t->doc, "root", json_pack("{s:s,s:b}", "path", t->mnt, "readonly", 0));
  snprintf(t->bundle, sizeof t->bundle, "%s", t->scratch);
  return 0;
}

static void target_release(struct target *t) {
  if (t->mounted) {
    hv_error_t e = NULL;
    cleanup_free char *upper = hv_xasprintf("%s/overlay", t->scratch);
    if (hv_image_rootfs_release(upper, t->mnt, &e) < 0)
      hv_error_print(&e);
  }
  if (t->mnt)
    rmdir(t->mnt);
  if (t->scratch)
    rmdir(t->scratch);
  hv_image_free(t->img);
  if (t->store)
    hv_image_store_close(t->store);
  json_decref(t->doc);
  free(t->scratch);
  free(t->mnt);
}

/* ---------------- the command ---------------- */

static int oneshot(const struct hv_cli_globals *g, const char *backend, int argc, char **argv) {
  hv_error_t err = NULL;
  struct oneshot f;
  memset(&f, 0, sizeof f);
  struct cli_opt opts[] = {{"memory", 'm', CLI_STR, &f.memory},
                           {"cpus", 0, CLI_STR, &f.cpus},
                           {"cpuset-cpus", 0, CLI_STR, &f.cpuset},
                           {"memory-swap", 0, CLI_STR, &f.memory_swap},
                           {"pids-limit", 0, CLI_STR, &f.pids},
                           {"blkio-weight", 0, CLI_STR, &f.blkio_weight},
                           {"device-read-bps", 0, CLI_STRV, &f.read_bps},
                           {"device-write-bps", 0, CLI_STRV, &f.write_bps},
                           {"read-only", 0, CLI_FLAG, &f.read_only},
                           {"cap-add", 0, CLI_STRV, &f.cap_add},
                           {"cap-drop", 0, CLI_STRV, &f.cap_drop},
                           {"security-opt", 0, CLI_STRV, &f.secopts},
                           {"env", 'e', CLI_STRV, &f.envs},
                           {"workdir", 'w', CLI_STR, &f.workdir},
                           {"user", 'u', CLI_STR, &f.user},
                           {"hostname", 0, CLI_STR, &f.hostname},
                           {"tty", 't', CLI_FLAG, &f.tty},
                           {"interactive", 'i', CLI_FLAG, &f.interactive},
                           {"network", 0, CLI_STR, &f.network},
                           {"rm", 0, CLI_FLAG, &f.rm},
                           {"name", 0, CLI_STR, &f.name},
                           {"engine", 0, CLI_STR, &f.engine},
                           {"kernel", 0, CLI_STR, &f.kernel},
                           {"kernel-modules", 0, CLI_STR, &f.kernel_modules},
                           {"init", 0, CLI_STR, &f.init},
                           {NULL, 0, 0, NULL}};
  cleanup_free char **pos = NULL;
  size_t npos = 0;
  struct hv_policy pol;
  memset(&pol, 0, sizeof pol);
  struct target t;
  memset(&t, 0, sizeof t);
  struct hv_oci_config *cfg = NULL;
  struct cli_ctx c;
  bool opened = false, created = false;
  struct hv_state st;
  memset(&st, 0, sizeof st);
  struct cli_console con = {.listen_fd = -1, .master = -1, .stop = {-1, -1}};
  const struct hv_backend *be = NULL;
  int rc = 0;
  bool nnp = false;

  if (cli_parse(backend, opts, argc, argv, true, &pos, &npos, &err) < 0 ||
      cli_want_args(backend, npos, 1, (size_t)argc, "[flags] ROOTFS-DIR|BUNDLE-DIR|IMAGE [CMD...]",
                    &err) < 0 ||
      build_policy(&f, &pol, &nnp, &err) < 0)
    goto out;
  bool vm = strcmp(backend, "vm") == 0;
  if (!vm && (f.engine || f.kernel || f.kernel_modules || f.init)) {
    hv_error(&err, 0, "%s: only `hvrun vm` takes it (a container boots no kernel)",
             f.engine          ? "--engine"
             : f.kernel        ? "--kernel"
             : f.kernel_modules ? "--kernel-modules"
                               : "--init");
    goto out;
  }
  if (!(be = cli_backend_by_name(backend, &err)))
    goto out;
  if (cli_ctx_open(&c, g, &err) < 0)
    goto out;
  opened = true;
  uint32_t rnd = 0;
  if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
    rnd = (uint32_t)getpid() * 2654435761u;
  cleanup_free char *id = f.name ? hv_xstrdup(f.name) : hv_xasprintf("oneshot-%08x", rnd);

  struct stat sb;
  if (stat(pos[0], &sb) == 0 && S_ISDIR(sb.st_mode)) {
    if (target_from_dir(pos[0], pos + 1, npos - 1, &t, &err) < 0)
      goto out;
  } else if (pos[0][0] == '/' || pos[0][0] == '.' || access(pos[0], F_OK) == 0) {
    hv_error(&err, 0, "`%s` is not a root filesystem or bundle directory", pos[0]);
    goto out;
  } else if (target_from_image(&c, pos[0], id, pos + 1, npos - 1, f.user, vm, &t, &err) < 0) {
    goto out;
  }
  if (apply_overrides(&f, nnp, t.img != NULL, t.doc, &err) < 0 ||
      (vm && apply_vm_flags(&f, t.doc, &err) < 0))
    goto out;
  {
    char *text = json_dumps(t.doc, JSON_COMPACT);
    int r = hv_oci_parse(text, strlen(text), "config", &cfg, &err);
    free(text);
    if (r < 0)
      goto out;
  }
  if (!cfg->bundle)
    cfg->bundle = hv_xstrdup(t.bundle);
  if (hv_policy_apply(&pol, cfg, &err) < 0)
    goto out;

  if (f.tty) {
    if (cli_console_listen(&con, &err) < 0 || cli_console_attach(&con, f.interactive, &err) < 0)
      goto out;
  }
  if (!f.interactive) {
    /* Like `docker run` without -i: the workload reads nothing. */
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      dup2(fd, STDIN_FILENO);
      close(fd);
    }
  }
  cli_block_forwarded_signals();
  struct hv_create_opts o = {.id = id,
                             .bundle = t.bundle,
                             .console_socket = con.path,
                             .detach = false,
                             .systemd_cgroup = g->systemd_cgroup};
  if (cli_create_container(&c, be, cfg, &o, &st, false, &err) < 0)
    goto out;
  created = true;
  int status = 0;
  if (be->wait(&c.ctx, &st, &status, &err) < 0)
    goto out;
  rc = status;
out:
  cli_console_finish(&con);
  if (created)
    cli_teardown(&c, be, &st);
  hv_state_clear(&st);
  if (cfg)
    hv_oci_free(cfg);
  target_release(&t);
  hv_policy_clear(&pol);
  if (opened)
    cli_ctx_close(&c);
  free(f.read_bps);
  free(f.write_bps);
  free(f.cap_add);
  free(f.cap_drop);
  free(f.secopts);
  free(f.envs);
  return err ? hv_error_print(&err) : rc;
}

int cli_cmd_oneshot_container(const struct hv_cli_globals *g, int argc, char **argv) {
  return oneshot(g, "container", argc, argv);
}

int cli_cmd_oneshot_vm(const struct hv_cli_globals *g, int argc, char **argv) {
  return oneshot(g, "vm", argc, argv);
}
