/* image_cmd.c: `hvrun image ...` — argument parsing and output for the
 * image store (images/).  The store is --store DIR, else $HVRUN_STORE, else
 * /var/lib/hvrun. */
#include "cli.h"
#include "../images/images.h"
#include <errno.h>
#include <getopt.h>
#include <string.h>

static const char usage[] =
    "usage: hvrun image [--store DIR] COMMAND\n"
    "  import [--rootfs] [--platform OS/ARCH[/VARIANT]] [--max-size N[KMG]] [--max-entries N]\n"
    "         PATH [NAME[:TAG]]     import an OCI layout dir, oci-archive, docker-archive\n"
    "                               or (--rootfs) a plain rootfs tarball\n"
    "  ls [--format table|json] [-q] list images\n"
    "  inspect REF                  image details as JSON\n"
    "  rm REF...                    remove references, then unused blobs and layers\n"
    "  prune                        remove unreferenced blobs, layers and temp leftovers\n"
    "  verify                       re-hash every blob; non-zero exit on corruption\n"
    "  config REF [--user U] [ARGS...]  runtime-spec process/annotations from the image\n"
    "  erofs REF                    build (once) and print the VM root disk path\n"
    "  mount REF SCRATCH TARGET     overlay rootfs (tests); unmount SCRATCH TARGET\n";

static int fail(const char *fmt, const char *arg) {
  hv_error_t err = NULL;
  hv_error(&err, 0, fmt, arg);
  return hv_error_print(&err);
}

static int parse_size(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(s, &end, 10);
  if (errno || end == s || *s == '-')
    return -1;
  switch (*end) {
  case 'k': case 'K': n <<= 10; end++; break;
  case 'm': case 'M': n <<= 20; end++; break;
  case 'g': case 'G': n <<= 30; end++; break;
  default: break;
  }
  if (*end || n == 0)
    return -1;
  *out = n;
  return 0;
}

static void human(uint64_t n, char *buf, size_t len) {
  const char *u[] = {"B", "KB", "MB", "GB", "TB"};
  double v = (double)n;
  int i = 0;
  while (v >= 1000 && i < 4) {
    v /= 1000;
    i++;
  }
  snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static int print_json(json_t *j) {
  char *s = json_dumps(j, JSON_INDENT(2));
  if (!s)
    return 1;
  printf("%s\n", s);
  free(s);
  return 0;
}

static int cmd_import(struct hv_image_store *s, int argc, char **argv) {
  static const struct option opts[] = {{"rootfs", no_argument, 0, 'r'},
                                       {"platform", required_argument, 0, 'p'},
                                       {"max-size", required_argument, 0, 's'},
                                       {"max-entries", required_argument, 0, 'e'},
                                       {0, 0, 0, 0}};
  struct hv_image_import_opts o = {0};
  int c;
  while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (c) {
    case 'r': o.rootfs = true; break;
    case 'p': o.platform = optarg; break;
    case 's':
      if (parse_size(optarg, &o.max_bytes) < 0)
        return fail("--max-size `%s`: want a positive size like 512M or 8G", optarg);
      break;
    case 'e':
      if (parse_size(optarg, &o.max_entries) < 0)
        return fail("--max-entries `%s`: want a positive number", optarg);
      break;
    default: return fail("%s", "image import: bad option (see `hvrun image --help`)");
    }
  }
  if (argc - optind < 1 || argc - optind > 2)
    return fail("%s", "image import: want PATH [NAME[:TAG]]");
  hv_error_t err = NULL;
  cleanup_free char *digest = NULL, *ref = NULL;
  if (hv_image_import(s, argv[optind], argc - optind == 2 ? argv[optind + 1] : NULL, &o, &digest,
                      &ref, &err) < 0)
    return hv_error_print(&err);
  printf("%s %s\n", ref, digest);
  return 0;
}

static int cmd_ls(struct hv_image_store *s, int argc, char **argv) {
  static const struct option opts[] = {{"format", required_argument, 0, 'f'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {0, 0, 0, 0}};
  const char *format = "table";
  bool quiet = false;
  int c;
  while ((c = getopt_long(argc, argv, "+q", opts, NULL)) != -1) {
    if (c == 'f')
      format = optarg;
    else if (c == 'q')
      quiet = true;
    else
      return fail("%s", "image ls: bad option");
  }
  if (optind != argc)
    return fail("image ls: unexpected argument `%s`", argv[optind]);
  if (strcmp(format, "table") && strcmp(format, "json"))
    return fail("--format `%s`: want table or json", format);
  hv_error_t err = NULL;
  cleanup_json json_t *list = NULL;
  if (hv_image_list(s, &list, &err) < 0)
    return hv_error_print(&err);
  if (!strcmp(format, "json"))
    return print_json(list);
  if (!quiet)
    printf("%-40s %-16s %-14s %-10s %s\n", "NAME", "TAG", "ID", "SIZE", "CREATED");
  size_t i;
  json_t *row;
  json_array_foreach(list, i, row) {
    const char *digest = json_string_value(json_object_get(row, "digest"));
    const char *id = digest && strlen(digest) > 19 ? digest + 7 : "?";
    if (quiet) {
      printf("%.12s\n", id);
      continue;
    }
    char size[32] = "?";
    if (json_is_integer(json_object_get(row, "size")))
      human((uint64_t)json_integer_value(json_object_get(row, "size")), size, sizeof size);
    const char *created = json_string_value(json_object_get(row, "created"));
    printf("%-40s %-16s %-14.12s %-10s %.19s\n",
           json_string_value(json_object_get(row, "name")),
           json_string_value(json_object_get(row, "tag")), id, size, created ? created : "-");
  }
  return 0;
}

static int cmd_config(struct hv_image_store *s, int argc, char **argv) {
  const char *user = NULL;
  int i = 1;
  if (argc < 2)
    return fail("%s", "image config: want REF [--user U] [ARGS...]");
  const char *ref = argv[i++];
  if (i + 1 < argc && !strcmp(argv[i], "--user")) {
    user = argv[i + 1];
    i += 2;
  }
  hv_error_t err = NULL;
  struct hv_image *img = NULL;
  if (hv_image_lookup(s, ref, &img, &err) < 0)
    return hv_error_print(&err);
  cleanup_json json_t *spec = json_object();
  int rc = hv_image_apply_to_spec(s, img, spec, argv + i, user, &err);
  hv_image_free(img);
  if (rc < 0)
    return hv_error_print(&err);
  return print_json(spec);
}

int hv_cli_image(const struct hv_cli_globals *g, int argc, char **argv) {
  (void)g;
  if (argc > 0 && !strcmp(argv[0], "image")) {
    argc--;
    argv++;
  }
  /* --store DIR may appear anywhere before `--`; take it out first. */
  const char *store_flag = NULL;
  cleanup_free char **args = hv_xmalloc0(((size_t)argc + 1) * sizeof(char *));
  int n = 0;
  bool dashdash = false;
  for (int i = 0; i < argc; i++) {
    if (!dashdash && !strcmp(argv[i], "--store")) {
      if (i + 1 >= argc)
        return fail("%s", "--store: missing DIR");
      store_flag = argv[++i];
    } else if (!dashdash && !strncmp(argv[i], "--store=", 8)) {
      store_flag = argv[i] + 8;
    } else {
      dashdash |= !strcmp(argv[i], "--");
      args[n++] = argv[i];
    }
  }
  argc = n;
  argv = args;
  while (argc > 0 && argv[0][0] == '-') {
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
      fputs(usage, stdout);
      return 0;
    } else {
      return fail("image: unknown option `%s` (see `hvrun image --help`)", argv[0]);
    }
  }
  if (argc < 1) {
    fputs(usage, stderr);
    return 1;
  }
  const char *cmd = argv[0];
  if (!strcmp(cmd, "help")) {
    fputs(usage, stdout);
    return 0;
  }
  static const char *known[] = {"import", "ls", "list", "inspect", "rm", "prune", "verify",
                                "config", "erofs", "mount", "unmount"};
  bool ok = false;
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    ok |= !strcmp(cmd, known[i]);
  if (!ok)
    return fail("image: unknown command `%s` (see `hvrun image --help`)", cmd);
  if (!strcmp(cmd, "unmount")) {
    if (argc != 3)
      return fail("%s", "image unmount: want SCRATCH TARGET");
    hv_error_t err = NULL;
    return hv_image_rootfs_release(argv[1], argv[2], &err) < 0 ? hv_error_print(&err) : 0;
  }

  hv_error_t err = NULL;
  struct hv_image_store *s = NULL;
  if (hv_image_store_open(hv_image_store_dir(store_flag), &s, &err) < 0)
    return hv_error_print(&err);
  int rc = 0;
  optind = 1;
  if (!strcmp(cmd, "import")) {
    rc = cmd_import(s, argc, argv);
  } else if (!strcmp(cmd, "ls") || !strcmp(cmd, "list")) {
    rc = cmd_ls(s, argc, argv);
  } else if (!strcmp(cmd, "inspect")) {
    cleanup_json json_t *j = NULL;
    if (argc != 2)
      rc = fail("%s", "image inspect: want REF");
    else if (hv_image_inspect(s, argv[1], &j, &err) < 0)
      rc = hv_error_print(&err);
    else
      rc = print_json(j);
  } else if (!strcmp(cmd, "rm")) {
    if (argc < 2)
      rc = fail("%s", "image rm: want REF...");
    for (int i = 1; i < argc && rc == 0; i++) {
      if (hv_image_remove(s, argv[i], &err) < 0)
        rc = hv_error_print(&err);
      else
        printf("removed %s\n", argv[i]);
    }
  } else if (!strcmp(cmd, "prune")) {
    struct hv_image_prune_report r;
    if (argc != 1)
      rc = fail("image prune: unexpected argument `%s`", argv[1]);
    else if (hv_image_prune(s, &r, &err) < 0)
      rc = hv_error_print(&err);
    else {
      char b[32];
      human(r.bytes, b, sizeof b);
      printf("removed %zu blobs, %zu layer dirs, %zu erofs disks, %zu temp leftovers, %zu stale "
             "leases (%s)\n", r.blobs, r.layers, r.erofs, r.tmp, r.leases, b);
    }
  } else if (!strcmp(cmd, "verify")) {
    size_t problems = 0;
    if (hv_image_verify(s, stdout, &problems, &err) < 0)
      rc = hv_error_print(&err);
    else if (problems) {
      hv_error(&err, 0, "store `%s`: %zu problem%s found", hv_image_store_dir(store_flag),
               problems, problems == 1 ? "" : "s");
      rc = hv_error_print(&err);
    }
  } else if (!strcmp(cmd, "config")) {
    rc = cmd_config(s, argc, argv);
  } else { /* erofs, mount */
    struct hv_image *img = NULL;
    if ((!strcmp(cmd, "erofs") && argc != 2) || (!strcmp(cmd, "mount") && argc != 4)) {
      rc = fail("image %s: wrong arguments (see `hvrun image --help`)", cmd);
    } else if (hv_image_lookup(s, argv[1], &img, &err) < 0) {
      rc = hv_error_print(&err);
    } else if (!strcmp(cmd, "erofs")) {
      cleanup_free char *path = NULL;
      if (hv_image_erofs(s, img, &path, &err) < 0)
        rc = hv_error_print(&err);
      else
        printf("%s\n", path);
    } else if (hv_image_rootfs_mount(s, img, argv[2], argv[3], &err) < 0) {
      rc = hv_error_print(&err);
    }
    hv_image_free(img);
  }
  hv_image_store_close(s);
  return rc;
}
