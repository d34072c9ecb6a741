/* main.c: global flags and dispatch.
 *
 *   hvrun [--root DIR] [--store DIR] [--log FILE] [--log-format text|json]
 *         [--systemd-cgroup] [--debug] [--backend container|vm] COMMAND ...
 *
 * --store sets HVRUN_STORE, so every command that reads the image store
 * (image, the one-shots, the VM backend's cached image disks, bench)
 * and every process hvrun starts agree on it.
 *
 * Commands that put code into a container (create, run, exec and the
 * one-shots) first re-exec hvrun from a sealed memfd copy (CVE-2019-5736,
 * see ns/selfexe.c). */
#include "cli_internal.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define HVRUN_VERSION "0.1.0"

int hv_selfexe_ensure_sealed(char **argv, hv_error_t *err); /* ns/selfexe.c */

static const struct {
  const char *name;
  cli_cmd_fn fn;
  bool seal; /* runs container-facing code: re-exec from the sealed copy */
} commands[] = {
    {"create", cli_cmd_create, true},      {"start", cli_cmd_start, false},
    {"run", cli_cmd_run, true},            {"state", cli_cmd_state, false},
    {"kill", cli_cmd_kill, false},         {"delete", cli_cmd_delete, false},
    {"list", cli_cmd_list, false},         {"ps", cli_cmd_ps, false},
    {"pause", cli_cmd_pause, false},       {"resume", cli_cmd_resume, false},
    {"update", cli_cmd_update, false},     {"events", cli_cmd_events, false},
    {"exec", cli_cmd_exec, true},          {"features", cli_cmd_features, false},
    {"spec", cli_cmd_spec, false},         {"container", cli_cmd_oneshot_container, true},
    {"vm", cli_cmd_oneshot_vm, true},
};

/* --store DIR -> HVRUN_STORE (absolute: the VMM and other helpers may run
 * with another working directory).  The directory need not exist yet:
 * `image import` creates it. */
static int set_store(const char *dir, hv_error_t *err) {
  if (!*dir)
    return hv_error(err, 0, "--store: empty directory name");
  cleanup_free char *abs = NULL;
  if (dir[0] != '/') {
    cleanup_free char *cwd = getcwd(NULL, 0);
    if (!cwd)
      return hv_error(err, errno, "--store `%s`: current directory", dir);
    abs = hv_xasprintf("%s/%s", cwd, dir);
  }
  if (setenv("HVRUN_STORE", abs ? abs : dir, 1) < 0)
    return hv_error(err, errno, "--store `%s`", dir);
  return 0;
}

int main(int argc, char **argv) {
  static struct hv_cli_globals g = {.root = "/run/hvrun", .log_format = "text"};
  hv_error_t err = NULL;
  bool version = false, help = false;
  const char *rootless_unused = NULL;
  const char *criu_unused = NULL;
  const char *store = NULL;
  struct cli_opt opts[] = {{"root", 0, CLI_STR, &g.root},
                           {"store", 0, CLI_STR, &store},
                           {"log", 0, CLI_STR, &g.log},
                           {"log-format", 0, CLI_STR, &g.log_format},
                           {"systemd-cgroup", 0, CLI_FLAG, &g.systemd_cgroup},
                           {"debug", 0, CLI_FLAG, &g.debug},
                           {"backend", 0, CLI_STR, &g.backend},
                           {"version", 'v', CLI_FLAG, &version},
                           {"help", 'h', CLI_FLAG, &help},
                           {"rootless", 0, CLI_STR, &rootless_unused},
                           {"criu", 0, CLI_STR, &criu_unused},
                           {NULL, 0, 0, NULL}};
  (void)rootless_unused;
  /* Global flags end at the command name. */
  cleanup_free char **pos = NULL;
  size_t npos = 0;
  if (cli_parse("hvrun", opts, argc - 1, argv + 1, true, &pos, &npos, &err) < 0)
    return hv_error_print(&err);
  if (strcmp(g.log_format, "text") && strcmp(g.log_format, "json")) {
    hv_error(&err, 0, "--log-format: \"%s\" is not text or json", g.log_format);
    return hv_error_print(&err);
  }
  hv_log_init(g.log, strcmp(g.log_format, "json") == 0, g.debug);
  if (version) {
    printf("hvrun version %s\nspec: 1.2.0\n", HVRUN_VERSION);
    return 0;
  }
  if (help || npos == 0 || strcmp(pos[0], "help") == 0) {
    cli_usage(npos == 0 && !help ? stderr : stdout);
    return npos == 0 && !help ? 1 : 0;
  }
  if (g.backend && strcmp(g.backend, "container") && strcmp(g.backend, "vm")) {
    hv_error(&err, 0, "--backend: \"%s\" is not container or vm", g.backend);
    return hv_error_print(&err);
  }
  if (store && set_store(store, &err) < 0)
    return hv_error_print(&err);
  if (g.systemd_cgroup && access("/run/systemd/system", F_OK) != 0) {
    hv_error(&err, 0, "--systemd-cgroup: systemd is not running on this host "
                      "(/run/systemd/system is missing); use cgroupfs");
    return hv_error_print(&err);
  }
  /* Index of the command in argv. */
  int ci = argc - (int)npos;
  const char *cmd = argv[ci];
  if (strcmp(cmd, "image") == 0)
    return hv_cli_image(&g, argc - ci - 1, argv + ci + 1);
  if (strcmp(cmd, "bench") == 0)
    return hv_cli_bench(&g, argc - ci - 1, argv + ci + 1);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    if (strcmp(cmd, commands[i].name) != 0)
      continue;
    if (commands[i].seal && hv_selfexe_ensure_sealed(argv, &err) < 0)
      return hv_error_print(&err);
    return commands[i].fn(&g, argc - ci - 1, argv + ci + 1);
  }
  hv_error(&err, 0, "unknown command \"%s\" (see `hvrun help`)", cmd);
  return hv_error_print(&err);
}
