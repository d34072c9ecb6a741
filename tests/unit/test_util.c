/* test_util.c: error idiom, file utilities, signals, backend selection
 * and hooks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/runtime.h"

static char dir[64];

static int setup(void **state) {
  (void)state;
  strcpy(dir, "/tmp/test_util.XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char *cmd = hv_xasprintf("rm -rf '%s'", dir);
  int r = system(cmd);
  free(cmd);
  return r == 0 ? 0 : -1;
}

static void test_error_idiom(void **state) {
  (void)state;
  hv_error_t err = NULL;
  assert_int_equal(hv_error(&err, ENOENT, "open `%s`", "/x"), -ENOENT);
  assert_int_equal(hv_error(&err, EPERM, "second"), -EPERM); /* first error kept */
  assert_string_equal(err->msg, "open `/x`");
  assert_int_equal(hv_error_wrap(&err, "create `%s`", "id"), -ENOENT);
  assert_string_equal(err->msg, "create `id`: open `/x`");
  hv_error_release(&err);
  assert_null(err);
  assert_int_equal(hv_error(NULL, 0, "ignored"), -1);
}

static void test_files(void **state) {
  (void)state;
  hv_error_t err = NULL;
  char *deep = hv_xasprintf("%s/a/b/c", dir);
  assert_int_equal(hv_mkdir_p(deep, 0755, &err), 0);
  assert_int_equal(hv_mkdir_p(deep, 0755, &err), 0);
  int dfd = open(deep, O_RDONLY | O_DIRECTORY);
  assert_int_equal(hv_write_file_atomic(dfd, "f", "hello", 5, 0600, &err), 0);
  assert_int_equal(hv_write_file_atomic(dfd, "f", "bye", 3, 0600, &err), 0);
  close(dfd);
  char *f = hv_xasprintf("%s/f", deep);
  char *text = NULL;
  size_t len = 0;
  assert_int_equal(hv_read_file(f, &text, &len, &err), 0);
  assert_string_equal(text, "bye");
  assert_int_equal(len, 3);
  free(text);
  assert_int_equal(hv_write_file(f, "xyz", &err), 0);
  char *missing = hv_xasprintf("%s/nope", dir);
  assert_true(hv_read_file(missing, &text, &len, &err) < 0);
  assert_int_equal(err->errno_, ENOENT);
  assert_non_null(strstr(err->msg, "nope"));
  hv_error_release(&err);
  free(missing);
  free(f);
  free(deep);
  char **v = hv_xmalloc0(3 * sizeof(char *));
  v[0] = hv_xstrdup("a");
  v[1] = hv_xasprintf("%d", 2);
  assert_int_equal(hv_strv_len(v), 2);
  hv_strv_free(v);
  assert_null(hv_xstrdup(NULL));
}

static void test_signals(void **state) {
  (void)state;
  assert_int_equal(hv_signal_parse("KILL"), SIGKILL);
  assert_int_equal(hv_signal_parse("SIGTERM"), SIGTERM);
  assert_int_equal(hv_signal_parse("hup"), SIGHUP);
  assert_int_equal(hv_signal_parse("9"), 9);
  assert_int_equal(hv_signal_parse("RTMIN+1"), SIGRTMIN + 1);
  assert_int_equal(hv_signal_parse("NOPE"), -1);
  assert_int_equal(hv_signal_parse("0"), -1);
  assert_int_equal(hv_signal_parse(""), -1);
  assert_string_equal(hv_signal_name(SIGINT), "INT");
}

static struct hv_oci_config *config_with_backend(const char *b) {
  char *t = hv_xasprintf("{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"r\"}, \"process\": "
                         "{\"args\": [\"sh\"], \"cwd\": \"/\"}, \"annotations\": "
                         "{\"org.hvrun.backend\": \"%s\"}}", b);
  struct hv_oci_config *c = NULL;
  hv_error_t err = NULL;
  assert_int_equal(hv_oci_parse(t, strlen(t), "config.json", &c, &err), 0);
  free(t);
  return c;
}

static void test_backend_select(void **state) {
  (void)state;
  hv_error_t err = NULL;
  assert_null(hv_backend_select("kvm", NULL, &err));
  assert_string_equal(err->msg, "--backend: unknown backend \"kvm\" (expected container or vm)");
  hv_error_release(&err);
  struct hv_oci_config *c = config_with_backend("xen");
  assert_null(hv_backend_select(NULL, c, &err));
  assert_string_equal(err->msg, "annotation org.hvrun.backend: unknown backend \"xen\" (expected "
                                "container or vm)");
  hv_error_release(&err);
  /* the flag wins over the annotation */
  const struct hv_backend *b = hv_backend_select("container", c, &err);
  if (b)
    assert_string_equal(b->name, "container");
  else {
    assert_string_equal(err->msg, "backend container is not built in");
    hv_error_release(&err);
  }
  hv_oci_free(c);
  c = config_with_backend("vm");
  b = hv_backend_select(NULL, c, &err);
  if (b)
    assert_string_equal(b->name, "vm");
  else {
    assert_string_equal(err->msg, "backend vm is not built in");
    hv_error_release(&err);
  }
  hv_oci_free(c);
  assert_null(hv_backend_by_name("nope"));
  b = hv_backend_select(NULL, NULL, &err); /* default */
  if (!b) {
    assert_string_equal(err->msg, "backend container is not built in");
    hv_error_release(&err);
  }
}

static struct hv_state hook_state(void) {
  struct hv_state st = {0};
  st.id = (char *)"hooked";
  st.bundle = (char *)"/bundle";
  st.pid = 42;
  st.status = HV_CREATED;
  return st;
}

static char *slurp(const char *path) {
  char *t = NULL;
  hv_error_t err = NULL;
  if (hv_read_file(path, &t, NULL, &err) < 0) {
    hv_error_release(&err);
    return NULL;
  }
  return t;
}

static void test_hooks(void **state) {
  (void)state;
  hv_error_t err = NULL;
  struct hv_state st = hook_state();
  char *out = hv_xasprintf("%s/out", dir);
  char *script = hv_xasprintf("cat > %s; ls /proc/self/fd > %s.fds; echo \"$HOOKVAR:$(head -c 6 /proc/$$/cmdline):$0:$1\" > "
                              "%s.env", out, out, out);
  char *args[] = {"myhook", "-c", script, "zero", "one", NULL};
  char *env[] = {"HOOKVAR=yes", NULL};
  struct hv_oci_hook h[2] = {{.path = "/bin/sh", .args = args, .env = env},
                             {.path = "/bin/true"}};
  /* a descriptor without CLOEXEC must not leak into the hook */
  int leak = dup2(open("/dev/null", O_RDONLY), 57);
  assert_int_equal(leak, 57);
  assert_int_equal(hv_hooks_run(h, 2, "prestart", &st, &err), 0);
  close(57);
  char *got = slurp(out);
  assert_non_null(got);
  json_error_t je;
  json_t *j = json_loads(got, 0, &je);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "id")), "hooked");
  assert_string_equal(json_string_value(json_object_get(j, "status")), "created");
  assert_int_equal(json_integer_value(json_object_get(j, "pid")), 42);
  assert_string_equal(json_string_value(json_object_get(j, "bundle")), "/bundle");
  json_decref(j);
  free(got);
  char *fdf = hv_xasprintf("%s.fds", out), *envf = hv_xasprintf("%s.env", out);
  got = slurp(fdf);
  assert_non_null(got);
  assert_null(strstr(got, "57"));
  free(got);
  got = slurp(envf);
  assert_string_equal(got, "yes:myhook:zero:one\n");
  free(got);
  free(fdf);
  free(envf);

  /* non-zero exit names the hook and its status */
  char *fail_args[] = {"sh", "-c", "exit 3", NULL};
  struct hv_oci_hook bad = {.path = "/bin/sh", .args = fail_args};
  assert_true(hv_hooks_run(&bad, 1, "poststop", &st, &err) < 0);
  assert_string_equal(err->msg, "hook poststop[0] (/bin/sh): exited with status 3");
  hv_error_release(&err);

  /* timeout: killed, and so is what it started */
  char *slow_args[] = {"sh", "-c", "sleep 30 & sleep 30", NULL};
  struct hv_oci_hook slow[2] = {{.path = "/bin/true"},
                                {.path = "/bin/sh", .args = slow_args, .has_timeout = true,
                                 .timeout = 1}};
  assert_true(hv_hooks_run(slow, 2, "createRuntime", &st, &err) < 0);
  assert_string_equal(err->msg, "hook createRuntime[1] (/bin/sh): timed out after 1s");
  hv_error_release(&err);

  /* missing binary */
  struct hv_oci_hook missing = {.path = "/nonexistent/hook"};
  assert_true(hv_hooks_run(&missing, 1, "prestart", &st, &err) < 0);
  assert_string_equal(err->msg, "hook prestart[0] (/nonexistent/hook): exec");
  assert_int_equal(err->errno_, ENOENT);
  hv_error_release(&err);

  /* a hook that ignores stdin does not block or kill us */
  char *big = hv_xmalloc0(200000);
  memset(big, 'x', 199999);
  struct hv_state st2 = hook_state();
  st2.annotations = json_pack("{s:s}", "big", big);
  struct hv_oci_hook quiet = {.path = "/bin/true"};
  assert_int_equal(hv_hooks_run(&quiet, 1, "poststart", &st2, &err), 0);
  json_decref(st2.annotations);
  free(big);
  assert_int_equal(hv_hooks_run(NULL, 0, "prestart", &st, &err), 0);
  free(script);
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_idiom),
      cmocka_unit_test_setup_teardown(test_files, setup, teardown),
      cmocka_unit_test(test_signals),
      cmocka_unit_test(test_backend_select),
      cmocka_unit_test_setup_teardown(test_hooks, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
