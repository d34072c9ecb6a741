/* lifecycle_cmd.c: the OCI lifecycle commands as runc defines them:
 * create, start, run, state, kill, delete, list, ps, pause, resume, update,
 * events.  Argument parsing and output only; the work is the backend's. */
#include "cli_internal.h"
#include "../ns/ns.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>


/* ---------------- context ---------------- */

int cli_ctx_open(struct cli_ctx *c, const struct hv_cli_globals *g, hv_error_t *err) {
  memset(c, 0, sizeof *c);
  c->g = g;
  c->store.dirfd = -1;
  if (hv_store_open(&c->store, g->root, err) < 0)
    return -1;
  c->ctx.store = &c->store;
  c->ctx.systemd_cgroup = g->systemd_cgroup;
  c->ctx.debug = g->debug;
  return 0;
}

void cli_ctx_close(struct cli_ctx *c) {
  if (c->store.root)
    hv_store_close(&c->store);
}

const struct hv_backend *cli_backend_by_name(const char *name, hv_error_t *err) {
  if (!name)
    name = "container";
  const struct hv_backend *be = hv_backend_by_name(name);
  if (!be)
    hv_error(err, 0, "unknown backend \"%s\" (expected container or vm)", name);
  return be;
}

const struct hv_backend *cli_backend_for(const struct hv_cli_globals *g,
                                         const struct hv_oci_config *cfg, hv_error_t *err) {
  return hv_backend_select(g->backend, cfg, err);
}

int cli_load(struct cli_ctx *c, const char *id, struct hv_state *st, const struct hv_backend **be,
             hv_error_t *err) {
  memset(st, 0, sizeof *st);
  if (hv_state_load(&c->store, id, st, err) < 0)
    return -1;
  *be = cli_backend_by_name(st->backend, err);
  if (!*be)
    return -1;
  hv_state_refresh(st);
  if (st->status != HV_STOPPED && st->status != HV_CREATING && (*be)->is_paused &&
      (*be)->is_paused(&c->ctx, st))
    st->status = HV_PAUSED;
  return 0;
}

char *cli_now_rfc3339(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  /* Not gmtime_r/strftime: glibc loads /etc/localtime (tzset) on their
   * first call even for UTC.  Civil date from days since the epoch
   * (Howard Hinnant's well-known days-to-civil arithmetic). */
  long long secs = (long long)t.tv_sec, days = secs / 86400, rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
  long long doe = z - era * 146097;
  long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  long long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
  long long y = yoe + era * 400 + (m <= 2);
  return hv_xasprintf("%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%09ldZ", y, m, d, rem / 3600,
                      rem / 60 % 60, rem % 60, t.tv_nsec);
}

static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};

void cli_block_forwarded_signals(void) {
  sigset_t set;
  sigemptyset(&set);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaddset(&set, forwarded[i]);
  sigprocmask(SIG_BLOCK, &set, NULL);
}

int cli_create_container(struct cli_ctx *c, const struct hv_backend *be,
                         struct hv_oci_config *cfg, const struct hv_create_opts *o,
                         struct hv_state *st, bool create_only, hv_error_t *err) {
  /* Bad input fails before the id is reserved or anything is made. */
  if (be == &hv_backend_container && hv_container_validate(cfg, err) < 0)
    return -1;
  cleanup_close int lock = -1;
  if (hv_state_lock(&c->store, o->id, &lock, err) < 0)
    return -1;
  st->id = hv_xstrdup(o->id);
  st->bundle = hv_xstrdup(o->bundle);
  st->backend = hv_xstrdup(be->name);
  st->status = HV_CREATING;
  st->created = cli_now_rfc3339();
  st->owner = hv_xstrdup("root");
  if (cfg->n_annotations) {
    st->annotations = json_object();
    for (size_t i = 0; i < cfg->n_annotations; i++)
      json_object_set_new(st->annotations, cfg->annotations[i].key,
                          json_string(cfg->annotations[i].value));
  }
  if (hv_state_create(&c->store, st, err) < 0) {
    /* The id is someone else's: keep its lock file. */
    return -1;
  }
  /* create + start back to back: the container backend may release the
   * init without a second round trip (ns/ns.h). */
  if (be == &hv_backend_container)
    hv_container_start_on_create(!create_only);
  if (be->create(&c->ctx, cfg, o, st, err) < 0) {
    be->destroy(&c->ctx, st, true, NULL);
    hv_state_remove(&c->store, o->id, NULL);
    return -1;
  }
  if (!create_only) {
    if (be->start(&c->ctx, cfg, st, err) < 0) {
      be->destroy(&c->ctx, st, true, NULL);
      hv_state_remove(&c->store, o->id, NULL);
      return -1;
    }
    st->status = HV_RUNNING;
    hv_state_save(&c->store, st, NULL);
  }
  return 0;
}

void cli_teardown(struct cli_ctx *c, const struct hv_backend *be, struct hv_state *st) {
  hv_error_t e = NULL;
  cleanup_close int lock = -1;
  hv_state_lock(&c->store, st->id, &lock, NULL);
  if (be->destroy(&c->ctx, st, true, &e) < 0)
    hv_error_print(&e);
  if (hv_state_remove(&c->store, st->id, &e) < 0)
    hv_error_print(&e);
}

/* ---------------- create / run ---------------- */

struct create_flags {
  const char *bundle, *console_socket, *pid_file;
  bool no_pivot, no_new_keyring, detach, keep, no_subreaper;
  int preserve_fds;
};

static int create_or_run(const struct hv_cli_globals *g, int argc, char **argv, bool run) {
  const char *cmd = run ? "run" : "create";
  hv_error_t err = NULL;
  struct create_flags f = {.bundle = "."};
  const char *notify = NULL;
  /* run takes create's flags plus its own. */
  struct cli_opt opts[] = {{"bundle", 'b', CLI_STR, &f.bundle},
                           {"console-socket", 0, CLI_STR, &f.console_socket},
                           {"pid-file", 0, CLI_STR, &f.pid_file},
                           {"no-pivot", 0, CLI_FLAG, &f.no_pivot},
                           {"no-new-keyring", 0, CLI_FLAG, &f.no_new_keyring},
                           {"preserve-fds", 0, CLI_INT, &f.preserve_fds},
                           {"notify-socket", 0, CLI_STR, &notify},
                           {NULL, 0, 0, NULL}, /* run only from here */
                           {"detach", 'd', CLI_FLAG, &f.detach},
                           {"keep", 0, CLI_FLAG, &f.keep},
                           {"no-subreaper", 0, CLI_FLAG, &f.no_subreaper},
                           {NULL, 0, 0, NULL}};
  if (run)
    memmove(&opts[7], &opts[8], 4 * sizeof opts[0]);
  cleanup_free char **pos = NULL;
  size_t npos = 0;
  if (cli_parse(cmd, opts, argc, argv, false, &pos, &npos, &err) < 0 ||
      cli_want_args(cmd, npos, 1, 1, "[flags] <container-id>", &err) < 0)
    return hv_error_print(&err);
  const char *id = pos[0];
  char bundle[PATH_MAX];
  if (!realpath(f.bundle, bundle)) {
    hv_error(&err, errno, "%s: bundle `%s`", cmd, f.bundle);
    return hv_error_print(&err);
  }
  struct hv_oci_config *cfg = NULL;
  if (hv_oci_load(bundle, &cfg, &err) < 0)
    return hv_error_print(&err);
  struct cli_ctx c;
  struct hv_state st;
  memset(&st, 0, sizeof st);
  const struct hv_backend *be = cli_backend_for(g, cfg, &err);
  if (!be || cli_ctx_open(&c, g, &err) < 0) {
    hv_oci_free(cfg);
    return hv_error_print(&err);
  }
  /* run without --console-socket and a terminal: we hold the terminal. */
  struct cli_console con = {.listen_fd = -1, .master = -1, .stop = {-1, -1}};
  bool own_console = run && !f.detach && cfg->process && cfg->process->terminal &&
                     !f.console_socket;
  if (run && f.detach && cfg->process && cfg->process->terminal && !f.console_socket) {
    hv_error(&err, 0, "run: cannot allocate a terminal when detached without --console-socket");
    goto fail;
  }
  if (own_console) {
    if (cli_console_listen(&con, &err) < 0 || cli_console_attach(&con, true, &err) < 0)
      goto fail;
    f.console_socket = con.path;
  }
  if (run && !f.detach)
    cli_block_forwarded_signals();
  struct hv_create_opts o = {.id = id,
                             .bundle = bundle,
                             .console_socket = f.console_socket,
                             .pid_file = f.pid_file,
                             .no_pivot = f.no_pivot,
                             .no_new_keyring = f.no_new_keyring,
                             .preserve_fds = f.preserve_fds,
                             .detach = f.detach,
                             .systemd_cgroup = g->systemd_cgroup};
  if (cli_create_container(&c, be, cfg, &o, &st, !run, &err) < 0)
    goto fail;
  int rc = 0;
  if (run && !f.detach) {
    int status = 0;
    if (be->wait(&c.ctx, &st, &status, &err) < 0)
      rc = hv_error_print(&err);
    else
      rc = status;
    cli_console_finish(&con);
    if (!f.keep)
      cli_teardown(&c, be, &st);
  }
  hv_state_clear(&st);
  hv_oci_free(cfg);
  cli_ctx_close(&c);
  return rc;
fail:
  cli_console_finish(&con);
  hv_state_clear(&st);
  hv_oci_free(cfg);
  cli_ctx_close(&c);
  return hv_error_print(&err);
}

int cli_cmd_create(const struct hv_cli_globals *g, int argc, char **argv) {
  return create_or_run(g, argc, argv, false);
}

int cli_cmd_run(const struct hv_cli_globals *g, int argc, char **argv) {
  return create_or_run(g, argc, argv, true);
}

/* ---------------- commands on one existing container ---------------- */

/* Parse `cmd [opts] <id> [extra]`, open the store, load the container. */
struct one {
  struct cli_ctx c;
  struct hv_state st;
  const struct hv_backend *be;
  char **pos;
  size_t npos;
  bool opened;
};

/* stop_at_positional: everything after the id is the command's own
 * arguments (ps options). */
static int one_open_args(struct one *x, const struct hv_cli_globals *g, const char *cmd,
                         const struct cli_opt *opts, int argc, char **argv, size_t max_args,
                         const char *usage, bool stop_at_positional, hv_error_t *err) {
  memset(x, 0, sizeof *x);
  if (cli_parse(cmd, opts, argc, argv, stop_at_positional, &x->pos, &x->npos, err) < 0 ||
      cli_want_args(cmd, x->npos, 1, max_args, usage, err) < 0)
    return -1;
  if (cli_ctx_open(&x->c, g, err) < 0)
    return -1;
  x->opened = true;
  return cli_load(&x->c, x->pos[0], &x->st, &x->be, err);
}

static int one_open(struct one *x, const struct hv_cli_globals *g, const char *cmd,
                    const struct cli_opt *opts, int argc, char **argv, size_t max_args,
                    const char *usage, hv_error_t *err) {
  return one_open_args(x, g, cmd, opts, argc, argv, max_args, usage, false, err);
}

static void one_close(struct one *x) {
  hv_state_clear(&x->st);
  if (x->opened)
    cli_ctx_close(&x->c);
  free(x->pos);
}

int cli_cmd_start(const struct hv_cli_globals *g, int argc, char **argv) {
  hv_error_t err = NULL;
  struct one x;
  struct cli_opt opts[] = {{NULL, 0, 0, NULL}};
  int rc = 0;
  if (one_open(&x, g, "start", opts, argc, argv, 1, "<container-id>", &err) < 0)
    goto out;
  cleanup_close int lock = -1;
  if (hv_state_lock(&x.c.store, x.st.id, &lock, &err) < 0)
    goto out;
  switch (x.st.status) {
  case HV_CREATED:
    break;
  case HV_STOPPED:
    hv_error(&err, 0, "cannot start a container that has stopped");
    goto out;
  case HV_CREATING:
    hv_error(&err, 0, "cannot start container \"%s\": it is still being created", x.st.id);
    goto out;
  default:
    hv_error(&err, 0, "cannot start an already running container");
    goto out;
  }
  struct hv_oci_config *cfg = NULL;
  if (x.be != &hv_backend_container)
    hv_oci_load(x.st.bundle, &cfg, NULL);
  if (x.be->start(&x.c.ctx, cfg, &x.st, &err) == 0) {
    x.st.status = HV_RUNNING;
    hv_state_save(&x.c.store, &x.st, &err);
  }
  if (cfg)
    hv_oci_free(cfg);
out:
  rc = err ? hv_error_print(&err) : 0;
  one_close(&x);
  return rc;
}

int cli_cmd_state(const struct hv_cli_globals *g, int argc, char **argv) {
  hv_error_t err = NULL;
  struct one x;
  struct cli_opt opts[] = {{NULL, 0, 0, NULL}};
  int rc = 0;
  if (one_open(&x, g, "state", opts, argc, argv, 1, "<container-id>", &err) < 0)
    goto out;
  cleanup_json json_t *j = hv_state_to_json(&x.st);
  char *s = json_dumps(j, JSON_INDENT(2));
  printf("%s\n", s);
  free(s);
out:
  rc = err ? hv_error_print(&err) : 0;
  one_close(&x);
  return rc;
}

int cli_cmd_kill(const struct hv_cli_globals *g, int argc, char **argv) {
  hv_error_t err = NULL;
  struct one x;
  bool all = false;
  struct cli_opt opts[] = {{"all", 'a', CLI_FLAG, &all}, {NULL, 0, 0, NULL}};
  int rc = 0;
  if (one_open(&x, g, "kill", opts, argc, argv, 2, "[--all] <container-id> [signal]", &err) < 0)
    goto out;
  int sig = SIGTERM;
  if (x.npos > 1 && (sig = hv_signal_parse(x.pos[1])) < 0) {
    hv_error(&err, 0, "kill: invalid signal \"%s\"", x.pos[1]);
    goto out;
  }
  if (x.st.status == HV_STOPPED) {
    hv_error(&err, 0, "container \"%s\" is not running", x.st.id);
    goto out;
  }
  x.be->kill(&x.c.ctx, &x.st, sig, all, &err);
out:
  rc = err ? hv_error_print(&err) : 0;
  one_close(&x);
  return rc;
}

int cli_cmd_delete(const struct hv_cli_globals *g, int argc, char **argv) {
  hv_error_t err = NULL;
  struct one x;
  bool force = false;
  struct cli_opt opts[] = {{"force", 'f', CLI_FLAG, &force}, {NULL, 0, 0, NULL}};
  int rc = 0;
  int r = one_open(&x, g, "delete", opts, argc, argv, 1, "[--force] <container-id>", &err);
  if (r < 0) {
    /* As runc: with --force, a container that is already gone (or whose
     * create died before writing any state) is not an error. */
    if (force && x.opened && x.npos == 1) {
      hv_error_release(&err);
      hv_state_remove(&x.c.store, x.pos[0], NULL);
    }
    goto out;
  }
  cleanup_close int lock = -1;
  if (hv_state_lock(&x.c.store, x.st.id, &lock, &err) < 0)
    goto out;
  if ((x.st.status == HV_RUNNING || x.st.status == HV_PAUSED) && !force) {
    hv_error(&err, 0, "cannot delete container \"%s\" that is not stopped: %s (use --force)",
             x.st.id, hv_status_name(x.st.status));
    goto out;
  }
  if (x.be->destroy(&x.c.ctx, &x.st, true, &err) < 0)
    goto out;
  hv_state_remove(&x.c.store, x.st.id, &err);
out:
  rc = err ? hv_error_print(&err) : 0;
  one_close(&x);
  return rc;
}

int cli_cmd_pause(const struct hv_cli_globals *g, int argc, char **argv) {
  hv_error_t err = NULL;
  struct one x;
  struct cli_opt opts[] = {{NULL, 0, 0, NULL}};
  int rc = 0;
  if (one_open(&x, g, "pause", opts, argc, argv, 1, "<container-id>", &err) < 0)
    goto out;
  if (x.st.status != HV_RUNNING && x.st.status != HV_CREATED) {
    hv_error(&err, 0, "container \"%s\" is not running (%s)", x.st.id,
             hv_status_name(x.st.status));
    goto out;
  }
  x.be->pause(&x.c.ctx, &x.st, &err);
out:
  rc = err ? hv_error_print(&err) : 0;
  one_close(&x);
  return rc;
}

int cli_cmd_resume(const struct hv_cli_globals *g, int argc, char **argv) {
  hv_error_t err = NULL;
  struct one x;
  struct cli_opt opts[] = {{NULL, 0, 0, NULL}};
  int rc = 0;
  if (one_open(&x, g, "resume", opts, argc, argv, 1, "<container-id>", &err) < 0)
    goto out;
  if (x.st.status != HV_PAUSED) {
    hv_error(&err, 0, "container \"%s\" is not paused", x.st.id);
    goto out;
  }
  x.be->resume(&x.c.ctx, &x.st, &err);
out:
  rc = err ? hv_error_print(&err) : 0;
  one_close(&x);
  return rc;
}

/* Run `ps <args>` (runc's default: -ef) and keep the header and the lines
 * whose PID column is one of the container's pids, as `runc ps` does. */
static bool pid_in(pid_t p, const pid_t *pids, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (pids[i] == p)
      return true;
  return false;
}

static int ps_table(char **ps_args, size_t n_args, const pid_t *pids, size_t n,
                    hv_error_t *err) {
  char *argv[n_args + 3];
  static char ps_name[] = "ps", def_args[] = "-ef";
  argv[0] = ps_name;
  size_t k = 1;
  if (!n_args)
    argv[k++] = def_args;
  for (size_t i = 0; i < n_args; i++)
    argv[k++] = ps_args[i];
  argv[k] = NULL;
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0)
    return hv_error(err, errno, "ps: pipe");
  fflush(NULL);
  pid_t child = fork();
  if (child < 0) {
    close(pfd[0]);
    close(pfd[1]);
    return hv_error(err, errno, "ps: fork");
  }
  if (child == 0) {
    dup2(pfd[1], STDOUT_FILENO);
    execvp(argv[0], argv);
    fprintf(stderr, "hvrun: ps: exec `ps`: %s\n", strerror(errno));
    _exit(127);
  }
  close(pfd[1]);
  FILE *f = fdopen(pfd[0], "r");
  if (!f) {
    close(pfd[0]);
    waitpid(child, NULL, 0);
    return hv_error(err, errno, "ps: read output");
  }
  char *line = NULL;
  size_t cap = 0;
  int pid_col = -1;
  bool header = true;
  while (getline(&line, &cap, f) > 0) {
    if (header) {
      header = false;
      /* Which whitespace-separated column is PID? */
      cleanup_free char *copy = hv_xstrdup(line);
      char *save = NULL;
      int col = 0;
      for (char *t = strtok_r(copy, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save), col++)
        if (strcmp(t, "PID") == 0) {
          pid_col = col;
          break;
        }
      fputs(line, stdout);
      continue;
    }
    if (pid_col < 0)
      continue;
    cleanup_free char *copy = hv_xstrdup(line);
    char *save = NULL, *t = strtok_r(copy, " \t\n", &save);
    for (int col = 0; t && col < pid_col; col++)
      t = strtok_r(NULL, " \t\n", &save);
    char *end;
    long v = t ? strtol(t, &end, 10) : -1;
    if (t && !*end && pid_in((pid_t)v, pids, n))
      fputs(line, stdout);
  }
  free(line);
  fclose(f);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return hv_error(err, 0, "ps: `ps` failed (exit status %d)",
                    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  if (pid_col < 0)
    return hv_error(err, 0, "ps: no PID column in the output of `ps`");
  return 0;
}

int cli_cmd_ps(const struct hv_cli_globals *g, int argc, char **argv) {
  hv_error_t err = NULL;
  struct one x;
  const char *format = "table";
  struct cli_opt opts[] = {{"format", 'f', CLI_STR, &format}, {NULL, 0, 0, NULL}};
  int rc = 0;
  if (one_open_args(&x, g, "ps", opts, argc, argv, 64,
                    "[--format table|json] <container-id> [ps options]", true, &err) < 0)
    goto out;
  if (strcmp(format, "table") && strcmp(format, "json")) {
    hv_error(&err, 0, "ps: invalid --format \"%s\" (table or json)", format);
    goto out;
  }
  if (strcmp(format, "json") == 0 && x.npos > 1) {
    hv_error(&err, 0, "ps: ps options (\"%s\") cannot be used with --format json", x.pos[1]);
    goto out;
  }
  pid_t *pids = NULL;
  size_t n = 0;
  if (x.st.status != HV_STOPPED && x.be->ps(&x.c.ctx, &x.st, &pids, &n, &err) < 0)
    goto out;
  if (strcmp(format, "json") == 0) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append_new(a, json_integer(pids[i]));
    char *s = json_dumps(a, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(a);
  } else {
    ps_table(x.pos + 1, x.npos - 1, pids, n, &err);
  }
  free(pids);
out:
  rc = err ? hv_error_print(&err) : 0;
  one_close(&x);
  return rc;
}

int cli_cmd_list(const struct hv_cli_globals *g, int argc, char **argv) {
  hv_error_t err = NULL;
  const char *format = "table";
  bool quiet = false;
  struct cli_opt opts[] = {{"format", 'f', CLI_STR, &format},
                           {"quiet", 'q', CLI_FLAG, &quiet},
                           {NULL, 0, 0, NULL}};
  cleanup_free char **pos = NULL;
  size_t npos = 0;
  if (cli_parse("list", opts, argc, argv, false, &pos, &npos, &err) < 0 ||
      cli_want_args("list", npos, 0, 0, "[--format table|json] [-q]", &err) < 0)
    return hv_error_print(&err);
  if (strcmp(format, "table") && strcmp(format, "json")) {
    hv_error(&err, 0, "list: invalid --format \"%s\" (table or json)", format);
    return hv_error_print(&err);
  }
  struct cli_ctx c;
  if (cli_ctx_open(&c, g, &err) < 0)
    return hv_error_print(&err);
  cleanup_strv char **ids = NULL;
  if (hv_state_list(&c.store, &ids, &err) < 0) {
    cli_ctx_close(&c);
    return hv_error_print(&err);
  }
  json_t *arr = json_array();
  if (!quiet && strcmp(format, "table") == 0)
    printf("%-24s %-8s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
           "OWNER");
  for (size_t i = 0; ids && ids[i]; i++) {
    struct hv_state st;
    const struct hv_backend *be;
    if (cli_load(&c, ids[i], &st, &be, NULL) < 0) {
      hv_state_clear(&st);
      continue;
    }
    if (quiet)
      printf("%s\n", st.id);
    else if (strcmp(format, "json") == 0)
      json_array_append_new(arr, hv_state_to_json(&st));
    else
      printf("%-24s %-8d %-10s %-40s %-32s %s\n", st.id,
             st.status == HV_STOPPED ? 0 : st.pid, hv_status_name(st.status),
             st.bundle ? st.bundle : "", st.created ? st.created : "", st.owner ? st.owner : "");
    hv_state_clear(&st);
  }
  if (!quiet && strcmp(format, "json") == 0) {
    char *s = json_dumps(arr, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
  }
  json_decref(arr);
  cli_ctx_close(&c);
  return 0;
}

/* ---------------- update ---------------- */

int cli_cmd_update(const struct hv_cli_globals *g, int argc, char **argv) {
  hv_error_t err = NULL;
  const char *resources = NULL, *memory = NULL, *memory_swap = NULL, *memory_res = NULL,
             *kmem = NULL, *kmem_tcp = NULL, *cpu_quota = NULL, *cpu_period = NULL,
             *cpu_shares = NULL, *rt_period = NULL, *rt_runtime = NULL, *cpuset_cpus = NULL,
             *cpuset_mems = NULL, *pids_limit = NULL, *blkio_weight = NULL, *l3 = NULL,
             *membw = NULL;
  struct cli_opt opts[] = {{"resources", 'r', CLI_STR, &resources},
                           {"memory", 'm', CLI_STR, &memory},
                           {"memory-swap", 0, CLI_STR, &memory_swap},
                           {"memory-reservation", 0, CLI_STR, &memory_res},
                           {"kernel-memory", 0, CLI_STR, &kmem},
                           {"kernel-memory-tcp", 0, CLI_STR, &kmem_tcp},
                           {"cpu-quota", 0, CLI_STR, &cpu_quota},
                           {"cpu-period", 0, CLI_STR, &cpu_period},
                           {"cpu-shares", 0, CLI_STR, &cpu_shares},
                           {"cpu-rt-period", 0, CLI_STR, &rt_period},
                           {"cpu-rt-runtime", 0, CLI_STR, &rt_runtime},
                           {"cpuset-cpus", 0, CLI_STR, &cpuset_cpus},
                           {"cpuset-mems", 0, CLI_STR, &cpuset_mems},
                           {"pids-limit", 0, CLI_STR, &pids_limit},
                           {"blkio-weight", 0, CLI_STR, &blkio_weight},
                           {"l3-cache-schema", 0, CLI_STR, &l3},
                           {"mem-bw-schema", 0, CLI_STR, &membw},
                           {NULL, 0, 0, NULL}};
  struct one x;
  struct hv_oci_resources r;
  memset(&r, 0, sizeof r);
  int rc = 0;
  if (one_open(&x, g, "update", opts, argc, argv, 1, "[flags] <container-id>", &err) < 0)
    goto out;
  if (resources) {
    cleanup_free char *text = NULL;
    size_t len = 0;
    const char *name = strcmp(resources, "-") == 0 ? "/dev/stdin" : resources;
    if (hv_read_file(name, &text, &len, &err) < 0 ||
        hv_oci_parse_resources(text, len, resources, &r, &err) < 0)
      goto out;
  }
  int64_t v;
  uint64_t u;
#define SIZE_OPT(s, field)                                                                     \
  if (s) {                                                                                     \
    if (cli_parse_size("update: --" #field, s, true, &v, &err) < 0)                            \
      goto out;                                                                                \
  }
  if (memory) {
    SIZE_OPT(memory, memory);
    r.memory.has_limit = true;
    r.memory.limit = v;
  }
  if (memory_swap) {
    SIZE_OPT(memory_swap, memory - swap);
    r.memory.has_swap = true;
    r.memory.swap = v;
  }
  if (memory_res) {
    SIZE_OPT(memory_res, memory - reservation);
    r.memory.has_reservation = true;
    r.memory.reservation = v;
  }
  if (kmem) {
    SIZE_OPT(kmem, kernel - memory);
    r.memory.has_kernel = true;
    r.memory.kernel = v;
  }
  if (kmem_tcp) {
    SIZE_OPT(kmem_tcp, kernel - memory - tcp);
    r.memory.has_kernel_tcp = true;
    r.memory.kernel_tcp = v;
  }
  if (cpu_quota) {
    if (cli_parse_i64("update: --cpu-quota", cpu_quota, &v, &err) < 0)
      goto out;
    r.cpu.has_quota = true;
    r.cpu.quota = v;
  }
  if (cpu_period) {
    if (cli_parse_u64("update: --cpu-period", cpu_period, &u, &err) < 0)
      goto out;
    r.cpu.has_period = true;
    r.cpu.period = u;
  }
  if (cpu_shares) {
    if (cli_parse_u64("update: --cpu-shares", cpu_shares, &u, &err) < 0)
      goto out;
    r.cpu.has_shares = true;
    r.cpu.shares = u;
  }
  if (rt_period) {
    if (cli_parse_u64("update: --cpu-rt-period", rt_period, &u, &err) < 0)
      goto out;
    r.cpu.has_realtime_period = true;
    r.cpu.realtime_period = u;
  }
  if (rt_runtime) {
    if (cli_parse_i64("update: --cpu-rt-runtime", rt_runtime, &v, &err) < 0)
      goto out;
    r.cpu.has_realtime_runtime = true;
    r.cpu.realtime_runtime = v;
  }
  if (cpuset_cpus) {
    free(r.cpu.cpus);
    r.cpu.cpus = hv_xstrdup(cpuset_cpus);
  }
  if (cpuset_mems) {
    free(r.cpu.mems);
    r.cpu.mems = hv_xstrdup(cpuset_mems);
  }
  if (pids_limit) {
    if (cli_parse_i64("update: --pids-limit", pids_limit, &v, &err) < 0)
      goto out;
    r.pids.has_limit = true;
    r.pids.limit = v;
  }
  if (blkio_weight) {
    if (cli_parse_u64("update: --blkio-weight", blkio_weight, &u, &err) < 0 || u > 1000) {
      if (!err)
        hv_error(&err, 0, "update: --blkio-weight: must be 10..1000");
      goto out;
    }
    r.block_io.has_weight = true;
    r.block_io.weight = (uint16_t)u;
  }
  r.present = true;
  if (x.st.status == HV_STOPPED) {
    hv_error(&err, 0, "container \"%s\" is not running", x.st.id);
    goto out;
  }
  x.be->update(&x.c.ctx, &x.st, &r, &err);
out:
  hv_oci_resources_clear(&r);
  rc = err ? hv_error_print(&err) : 0;
  one_close(&x);
  return rc;
}

/* ---------------- events ---------------- */

static int print_stats(struct one *x, hv_error_t *err) {
  json_t *data = NULL;
  if (x->be->stats(&x->c.ctx, &x->st, &data, err) < 0)
    return -1;
  json_t *ev = json_pack("{s:s,s:s,s:o}", "type", "stats", "id", x->st.id, "data",
                         data ? data : json_object());
  char *s = json_dumps(ev, JSON_COMPACT);
  printf("%s\n", s);
  fflush(stdout);
  free(s);
  json_decref(ev);
  return 0;
}

int cli_cmd_events(const struct hv_cli_globals *g, int argc, char **argv) {
  hv_error_t err = NULL;
  bool stats = false;
  const char *interval = "5s";
  struct cli_opt opts[] = {{"stats", 0, CLI_FLAG, &stats},
                           {"interval", 0, CLI_STR, &interval},
                           {NULL, 0, 0, NULL}};
  struct one x;
  int rc = 0;
  if (one_open(&x, g, "events", opts, argc, argv, 1, "[--stats] [--interval 5s] <container-id>",
               &err) < 0)
    goto out;
  char *end;
  double secs = strtod(interval, &end);
  if (end == interval || secs <= 0 || (*end && strcmp(end, "s") && strcmp(end, "ms"))) {
    hv_error(&err, 0, "events: invalid --interval \"%s\" (e.g. 5s, 500ms)", interval);
    goto out;
  }
  if (strcmp(end, "ms") == 0)
    secs /= 1000;
  if (x.st.status == HV_STOPPED) {
    hv_error(&err, 0, "container \"%s\" is not running", x.st.id);
    goto out;
  }
  if (stats) {
    print_stats(&x, &err);
    goto out;
  }
  for (;;) {
    if (print_stats(&x, &err) < 0)
      goto out;
    poll(NULL, 0, (int)(secs * 1000));
    hv_state_refresh(&x.st);
    if (x.st.status == HV_STOPPED)
      break;
  }
out:
  rc = err ? hv_error_print(&err) : 0;
  one_close(&x);
  return rc;
}
