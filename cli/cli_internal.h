/* cli_internal.h: private to cli/ (main.c, opts.c, lifecycle_cmd.c,
 * exec_cmd.c, info_cmd.c, oneshot.c, console.c). */
#ifndef HVRUN_CLI_INTERNAL_H
#define HVRUN_CLI_INTERNAL_H
#include "cli.h"
#include <pthread.h>
#include <termios.h>

/* ---- option parsing (opts.c) ---- */
enum cli_opt_kind {
  CLI_FLAG,   /* bool; also --x=true|false */
  CLI_STR,    /* const char * */
  CLI_INT,    /* int */
  CLI_STRV,   /* repeatable: char ** (NULL-terminated, malloc'd vector of borrowed strings) */
};
struct cli_opt {
  const char *lng;  /* without dashes */
  char shrt;        /* 0 = none */
  enum cli_opt_kind kind;
  void *ptr;
};
/* Parse the options of `cmd` from argv[0..argc).  Options may come before
 * or between positional arguments unless `stop_at_positional` (exec, the
 * one-shot: what follows the first positional belongs to the workload);
 * "--" ends the options.  Positional arguments are returned in *pos
 * (borrowed strings, vector to free).  Unknown options fail with one line. */
int cli_parse(const char *cmd, const struct cli_opt *opts, int argc, char **argv,
              bool stop_at_positional, char ***pos, size_t *npos, hv_error_t *err);
/* "64m", "1g", "512k", "1024" -> bytes; "-1" allowed when allow_minus_one. */
int cli_parse_size(const char *what, const char *s, bool allow_minus_one, int64_t *out,
                   hv_error_t *err);
int cli_parse_u64(const char *what, const char *s, uint64_t *out, hv_error_t *err);
int cli_parse_i64(const char *what, const char *s, int64_t *out, hv_error_t *err);
/* Exactly `n` positional args (names them in the error). */
int cli_want_args(const char *cmd, size_t npos, size_t min, size_t max, const char *usage,
                  hv_error_t *err);

/* ---- shared command context (lifecycle_cmd.c) ---- */
struct cli_ctx {
  const struct hv_cli_globals *g;
  struct hv_store store;
  struct hv_context ctx;
};
int cli_ctx_open(struct cli_ctx *c, const struct hv_cli_globals *g, hv_error_t *err);
void cli_ctx_close(struct cli_ctx *c);
/* Backend by name ("container", "vm"); NULL + err if unknown. */
const struct hv_backend *cli_backend_by_name(const char *name, hv_error_t *err);
/* --backend flag, else annotation org.hvrun.backend, else container. */
const struct hv_backend *cli_backend_for(const struct hv_cli_globals *g,
                                         const struct hv_oci_config *cfg, hv_error_t *err);
/* Load a container's state and derive its live status. */
int cli_load(struct cli_ctx *c, const char *id, struct hv_state *st,
             const struct hv_backend **be, hv_error_t *err);
/* "2024-01-02T03:04:05.123456789Z" (malloc'd). */
char *cli_now_rfc3339(void);
/* The shared path of create/run and the one-shot: reserve the id, create,
 * and (unless create_only) start.  On failure nothing is left behind. */
int cli_create_container(struct cli_ctx *c, const struct hv_backend *be,
                         struct hv_oci_config *cfg, const struct hv_create_opts *o,
                         struct hv_state *st, bool create_only, hv_error_t *err);
/* Remove everything of a container we created (run, one-shot). */
void cli_teardown(struct cli_ctx *c, const struct hv_backend *be, struct hv_state *st);
/* Block the signals run forwards, so they queue until the wait loop. */
void cli_block_forwarded_signals(void);

/* ---- the commands ---- */
typedef int (*cli_cmd_fn)(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_create(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_start(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_run(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_state(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_kill(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_delete(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_list(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_ps(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_pause(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_resume(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_update(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_events(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_exec(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_features(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_spec(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_oneshot_container(const struct hv_cli_globals *g, int argc, char **argv);
int cli_cmd_oneshot_vm(const struct hv_cli_globals *g, int argc, char **argv);
void cli_usage(FILE *out);

/* ---- terminal relay (console.c) ---- */
/* When hvrun itself holds the terminal (run without --console-socket, the
 * one-shot -t, exec -t without --console-socket): a listening socket whose
 * path is passed as --console-socket, then a relay between our stdio and
 * the pty master, with raw mode and SIGWINCH forwarding. */
struct cli_console {
  char *dir, *path;
  int listen_fd, master;
  int stop[2];
  bool raw, thread_started, forward_stdin;
  struct termios saved;
  pthread_t thread;
};
int cli_console_listen(struct cli_console *c, hv_error_t *err);
int cli_console_attach(struct cli_console *c, bool forward_stdin, hv_error_t *err);
void cli_console_finish(struct cli_console *c);
#endif
