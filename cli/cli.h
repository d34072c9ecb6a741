/* cli.h: argument parsing and output only.  Each subcommand family lives in
 * its own file; main.c dispatches. */
#ifndef HVRUN_CLI_H
#define HVRUN_CLI_H
#include "../runtime/runtime.h"

struct hv_cli_globals {
  const char *root;             /* --root, default /run/hvrun */
  const char *log, *log_format; /* --log FILE, --log-format text|json */
  const char *backend;          /* --backend container|vm */
  bool systemd_cgroup, debug;
};

/* hvrun image import|ls|inspect|rm|prune|verify ... (cli/image_cmd.c) */
int hv_cli_image(const struct hv_cli_globals *g, int argc, char **argv);
/* hvrun bench ... (cli/bench_cmd.c) */
int hv_cli_bench(const struct hv_cli_globals *g, int argc, char **argv);
#endif
