/* exec_cmd.c: `hvrun exec`.  The process to run is --process FILE, or the
 * container's own process (from the config saved at create, else the
 * bundle's) with args, env, cwd, user, caps and terminal replaced from the
 * flags, as runc does. */
#include "cli_internal.h"
#include <errno.h>
#include <signal.h>
#include <string.h>

/* The container's config document: the copy the backend keeps in the
 * state dir, else the bundle's config.json. */
static json_t *load_container_doc(struct cli_ctx *c, const struct hv_state *st) {
  cleanup_free char *dir = hv_state_dir(&c->store, st->id);
  cleanup_free char *saved = hv_xasprintf("%s/config.json", dir);
  cleanup_free char *bundle_cfg = hv_xasprintf("%s/config.json", st->bundle ? st->bundle : ".");
  json_t *j = json_load_file(saved, 0, NULL);
  if (!j)
    j = json_load_file(bundle_cfg, 0, NULL);
  return j;
}

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

static int parse_user(const char *s, json_t *user, hv_error_t *err) {
  char *end;
  errno = 0;
  unsigned long uid = strtoul(s, &end, 10);
  if (end == s || errno || (*end && *end != ':'))
    return hv_error(err, 0, "exec: --user \"%s\": expected UID[:GID] (numeric)", s);
  json_object_set_new(user, "uid", json_integer((json_int_t)uid));
  if (*end == ':') {
    const char *g = end + 1;
    unsigned long gid = strtoul(g, &end, 10);
    if (end == g || *end)
      return hv_error(err, 0, "exec: --user \"%s\": expected UID[:GID] (numeric)", s);
    json_object_set_new(user, "gid", json_integer((json_int_t)gid));
  }
  return 0;
}

static void add_cap(json_t *caps, const char *set, const char *cap) {
  json_t *a = json_object_get(caps, set);
  if (!a) {
    a = json_array();
    json_object_set_new(caps, set, a);
  }
  json_array_append_new(a, json_string(cap));
}

int cli_cmd_exec(const struct hv_cli_globals *g, int argc, char **argv) {
  hv_error_t err = NULL;
  const char *process_file = NULL, *pid_file = NULL, *console_socket = NULL, *cwd = NULL,
             *user = NULL, *label = NULL, *apparmor = NULL;
  bool detach = false, tty = false, nnp = false, ignore_paused = false;
  int preserve_fds = 0;
  char **envs = NULL, **caps = NULL, **gids = NULL;
  struct cli_opt opts[] = {{"process", 'p', CLI_STR, &process_file},
                           {"detach", 'd', CLI_FLAG, &detach},
                           {"tty", 't', CLI_FLAG, &tty},
                           {"pid-file", 0, CLI_STR, &pid_file},
                           {"console-socket", 0, CLI_STR, &console_socket},
                           {"cwd", 0, CLI_STR, &cwd},
                           {"env", 'e', CLI_STRV, &envs},
                           {"user", 'u', CLI_STR, &user},
                           {"additional-gids", 'g', CLI_STRV, &gids},
                           {"cap", 'c', CLI_STRV, &caps},
                           {"no-new-privs", 0, CLI_FLAG, &nnp},
                           {"preserve-fds", 0, CLI_INT, &preserve_fds},
                           {"process-label", 0, CLI_STR, &label},
                           {"apparmor", 0, CLI_STR, &apparmor},
                           {"ignore-paused", 0, CLI_FLAG, &ignore_paused},
                           {NULL, 0, 0, NULL}};
  cleanup_free char **pos = NULL;
  size_t npos = 0;
  struct cli_ctx c;
  bool opened = false;
  struct hv_state st;
  memset(&st, 0, sizeof st);
  struct hv_oci_process *proc = NULL;
  struct cli_console con = {.listen_fd = -1, .master = -1, .stop = {-1, -1}};
  int rc = 0;
  const struct hv_backend *be;

  if (cli_parse("exec", opts, argc, argv, true, &pos, &npos, &err) < 0)
    goto out;
  if (npos < 1 || (!process_file && npos < 2)) {
    hv_error(&err, 0, "exec: missing argument (usage: hvrun exec [flags] <container-id> "
                      "<command> [args...] or --process FILE)");
    goto out;
  }
  if (cli_ctx_open(&c, g, &err) < 0)
    goto out;
  opened = true;
  if (cli_load(&c, pos[0], &st, &be, &err) < 0)
    goto out;
  if (st.status != HV_RUNNING && st.status != HV_CREATED) {
    hv_error(&err, 0, "cannot exec in container \"%s\": it is %s", st.id,
             hv_status_name(st.status));
    goto out;
  }

  if (process_file) {
    cleanup_free char *text = NULL;
    size_t len = 0;
    if (hv_read_file(process_file, &text, &len, &err) < 0 ||
        hv_oci_parse_process(text, len, process_file, &proc, &err) < 0)
      goto out;
  } else {
    cleanup_json json_t *doc = load_container_doc(&c, &st);
    json_t *p = doc ? json_deep_copy(json_object_get(doc, "process")) : NULL;
    if (!p)
      p = json_pack("{s:{s:i,s:i},s:s,s:[s]}", "user", "uid", 0, "gid", 0, "cwd", "/", "env",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    json_t *args = json_array();
    for (size_t i = 1; i < npos; i++)
      json_array_append_new(args, json_string(pos[i]));
    json_object_set_new(p, "args", args);
    json_object_set_new(p, "terminal", json_boolean(tty));
    json_object_del(p, "consoleSize");
    json_t *env = json_object_get(p, "env");
    if (!json_is_array(env)) {
      env = json_array();
      json_object_set_new(p, "env", env);
    }
    for (size_t i = 0; envs && envs[i]; i++)
      env_set(env, envs[i]);
    if (cwd)
      json_object_set_new(p, "cwd", json_string(cwd));
    if (user) {
      json_t *u = json_object_get(p, "user");
      if (!json_is_object(u)) {
        u = json_object();
        json_object_set_new(p, "user", u);
      }
      json_object_del(u, "additionalGids");
      json_object_set_new(u, "gid", json_integer(0));
      if (parse_user(user, u, &err) < 0) {
        json_decref(p);
        goto out;
      }
    }
    if (gids) {
      json_t *u = json_object_get(p, "user");
      json_t *a = json_array();
      for (size_t i = 0; gids[i]; i++) {
        uint64_t gv;
        if (cli_parse_u64("exec: --additional-gids", gids[i], &gv, &err) < 0) {
          json_decref(a);
          json_decref(p);
          goto out;
        }
        json_array_append_new(a, json_integer((json_int_t)gv));
      }
      if (json_is_object(u))
        json_object_set_new(u, "additionalGids", a);
      else
        json_decref(a);
    }
    if (caps) {
      json_t *cs = json_object_get(p, "capabilities");
      if (!json_is_object(cs)) {
        cs = json_object();
        json_object_set_new(p, "capabilities", cs);
      }
      for (size_t i = 0; caps[i]; i++) {
        add_cap(cs, "bounding", caps[i]);
        add_cap(cs, "effective", caps[i]);
        add_cap(cs, "permitted", caps[i]);
      }
    }
    if (nnp)
      json_object_set_new(p, "noNewPrivileges", json_true());
    if (label)
      json_object_set_new(p, "selinuxLabel", json_string(label));
    if (apparmor)
      json_object_set_new(p, "apparmorProfile", json_string(apparmor));
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    int r = hv_oci_parse_process(text, strlen(text), "exec process", &proc, &err);
    free(text);
    if (r < 0)
      goto out;
  }
  if (proc->terminal && !console_socket) {
    if (detach) {
      hv_error(&err, 0, "exec: cannot allocate a terminal when detached without "
                        "--console-socket");
      goto out;
    }
    if (cli_console_listen(&con, &err) < 0)
      goto out;
    console_socket = con.path;
  }
  if (!detach)
    cli_block_forwarded_signals();
  struct hv_exec_opts eo = {.process = proc,
                            .console_socket = console_socket,
                            .pid_file = pid_file,
                            .detach = detach,
                            .tty = proc->terminal,
                            .preserve_fds = preserve_fds};
  int status = 0;
  /* Our own terminal: the relay thread accepts the pty master while the
   * backend starts the process and waits for it. */
  if (con.path && cli_console_attach(&con, true, &err) < 0)
    goto out;
  if (be->exec(&c.ctx, NULL, &st, &eo, &status, &err) < 0)
    goto out;
  rc = detach ? 0 : status;
out:
  cli_console_finish(&con);
  if (proc)
    hv_oci_process_free(proc);
  hv_state_clear(&st);
  if (opened)
    cli_ctx_close(&c);
  free(envs);
  free(caps);
  free(gids);
  return err ? hv_error_print(&err) : rc;
}
