/* test_state.c: the state store (create/load/save/remove/list/lock, id
 * validation, concurrent create, refresh, state JSON) and hooks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "runtime/runtime.h"

static char root[64];

static int setup(void **state) {
  (void)state;
  strcpy(root, "/tmp/test_state.XXXXXX");
  if (!mkdtemp(root))
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char *cmd = hv_xasprintf("rm -rf '%s'", root);
  int r = system(cmd);
  free(cmd);
  return r == 0 ? 0 : -1;
}

static struct hv_state sample(const char *id) {
  struct hv_state st = {0};
  st.id = (char *)id;
  st.bundle = (char *)"/b";
  st.backend = (char *)"container";
  st.pid = getpid();
  st.pid_start = hv_proc_starttime(getpid());
  st.status = HV_CREATED;
  st.created = (char *)"2024-01-01T00:00:00Z";
  st.owner = (char *)"";
  return st;
}

static void test_create_load_save_remove(void **state) {
  (void)state;
  struct hv_store s;
  hv_error_t err = NULL;
  char *sub = hv_xasprintf("%s/run/hv", root); /* created on demand */
  assert_int_equal(hv_store_open(&s, sub, &err), 0);
  struct hv_state st = sample("c1");
  st.cgroup_path = (char *)"/sys/fs/cgroup/x";
  st.annotations = json_pack("{s:s}", "a", "b");
  st.extra = json_pack("{s:i}", "vsock", 3);
  assert_int_equal(hv_state_create(&s, &st, &err), 0);
  assert_true(hv_state_create(&s, &st, &err) < 0);
  assert_string_equal(err->msg, "container \"c1\" already exists");
  hv_error_release(&err);

  struct hv_state got;
  assert_int_equal(hv_state_load(&s, "c1", &got, &err), 0);
  assert_string_equal(got.id, "c1");
  assert_string_equal(got.bundle, "/b");
  assert_string_equal(got.backend, "container");
  assert_int_equal(got.pid, getpid());
  assert_int_equal(got.pid_start, st.pid_start);
  assert_int_equal(got.status, HV_CREATED);
  assert_string_equal(got.created, "2024-01-01T00:00:00Z");
  assert_string_equal(got.cgroup_path, "/sys/fs/cgroup/x");
  assert_string_equal(json_string_value(json_object_get(got.annotations, "a")), "b");
  assert_int_equal(json_integer_value(json_object_get(got.extra, "vsock")), 3);
  got.status = HV_RUNNING;
  assert_int_equal(hv_state_save(&s, &got, &err), 0);
  hv_state_clear(&got);
  assert_int_equal(hv_state_load(&s, "c1", &got, &err), 0);
  assert_int_equal(got.status, HV_RUNNING);
  hv_state_clear(&got);

  char *dir = hv_state_dir(&s, "c1");
  char *expect = hv_xasprintf("%s/c1", sub);
  assert_string_equal(dir, expect);
  /* backend files in the dir go away with it */
  char *f = hv_xasprintf("%s/exec.fifo", dir);
  assert_int_equal(mkfifo(f, 0600), 0);
  int lockfd = -1;
  assert_int_equal(hv_state_lock(&s, "c1", &lockfd, &err), 0);
  close(lockfd);
  assert_int_equal(hv_state_remove(&s, "c1", &err), 0);
  struct stat sb;
  assert_true(stat(dir, &sb) < 0 && errno == ENOENT);
  char *lock = hv_xasprintf("%s/c1.lock", sub);
  assert_true(stat(lock, &sb) < 0 && errno == ENOENT);
  assert_int_equal(hv_state_remove(&s, "c1", &err), 0); /* idempotent */
  assert_true(hv_state_load(&s, "c1", &got, &err) < 0);
  assert_string_equal(err->msg, "container \"c1\" does not exist");
  hv_error_release(&err);
  assert_true(hv_state_save(&s, &st, &err) < 0);
  assert_string_equal(err->msg, "container \"c1\" does not exist");
  hv_error_release(&err);

  /* a half-written leftover (no state.json) is removed too */
  char *half = hv_xasprintf("%s/c2", sub);
  assert_int_equal(mkdir(half, 0700), 0);
  assert_true(hv_state_load(&s, "c2", &got, &err) < 0);
  hv_error_release(&err);
  assert_int_equal(hv_state_remove(&s, "c2", &err), 0);
  assert_true(stat(half, &sb) < 0);

  json_decref(st.annotations);
  json_decref(st.extra);
  free(half);
  free(lock);
  free(f);
  free(dir);
  free(expect);
  free(sub);
  hv_store_close(&s);
}

static void test_ids(void **state) {
  (void)state;
  struct hv_store s;
  hv_error_t err = NULL;
  assert_int_equal(hv_store_open(&s, root, &err), 0);
  const char *bad[] = {"", "a/b", "..", "a..b", ".hidden", "sp ace", "tab\t", "ü"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct hv_state st = sample(bad[i]);
    assert_true(hv_state_create(&s, &st, &err) < 0);
    assert_non_null(strstr(err->msg, "container id"));
    hv_error_release(&err);
    struct hv_state got;
    assert_true(hv_state_load(&s, bad[i], &got, &err) < 0);
    hv_error_release(&err);
  }
  char longid[300];
  memset(longid, 'a', sizeof longid - 1);
  longid[sizeof longid - 1] = 0;
  struct hv_state st = sample(longid);
  assert_true(hv_state_create(&s, &st, &err) < 0);
  assert_non_null(strstr(err->msg, "longer than"));
  hv_error_release(&err);
  const char *good[] = {"a", "A-b_c.d+e", "0123"};
  for (size_t i = 0; i < 3; i++) {
    st = sample(good[i]);
    assert_int_equal(hv_state_create(&s, &st, &err), 0);
  }
  char **ids = NULL;
  assert_int_equal(hv_state_list(&s, &ids, &err), 0);
  assert_int_equal(hv_strv_len(ids), 3);
  assert_string_equal(ids[0], "0123");
  assert_string_equal(ids[1], "A-b_c.d+e");
  assert_string_equal(ids[2], "a");
  hv_strv_free(ids);
  for (size_t i = 0; i < 3; i++)
    assert_int_equal(hv_state_remove(&s, good[i], &err), 0);
  assert_int_equal(hv_state_list(&s, &ids, &err), 0);
  assert_int_equal(hv_strv_len(ids), 0);
  hv_strv_free(ids);
  hv_store_close(&s);
}

/* Two processes race to create one id: exactly one wins, many times. */
static void test_concurrent_create(void **state) {
  (void)state;
  struct hv_store s;
  hv_error_t err = NULL;
  assert_int_equal(hv_store_open(&s, root, &err), 0);
  for (int round = 0; round < 30; round++) {
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
      kids[k] = fork();
      assert_true(kids[k] >= 0);
      if (kids[k] == 0) {
        char c;
        close(pipefd[1]);
        if (read(pipefd[0], &c, 1) < 0) /* start together */
          _exit(3);
        struct hv_state st = sample("race");
        hv_error_t e = NULL;
        int r = hv_state_create(&s, &st, &e);
        if (r < 0 && !strstr(e->msg, "already exists"))
          _exit(2);
        _exit(r == 0 ? 0 : 1);
      }
    }
    close(pipefd[0]);
    close(pipefd[1]); /* releases both */
    int wins = 0, losses = 0;
    for (int k = 0; k < 2; k++) {
      int status;
      assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
      assert_true(WIFEXITED(status));
      wins += WEXITSTATUS(status) == 0;
      losses += WEXITSTATUS(status) == 1;
    }
    assert_int_equal(wins, 1);
    assert_int_equal(losses, 1);
    struct hv_state got;
    assert_int_equal(hv_state_load(&s, "race", &got, &err), 0);
    hv_state_clear(&got);
    assert_int_equal(hv_state_remove(&s, "race", &err), 0);
  }
  /* no temporary directories left behind */
  char **ids = NULL;
  assert_int_equal(hv_state_list(&s, &ids, &err), 0);
  assert_int_equal(hv_strv_len(ids), 0);
  hv_strv_free(ids);
  char *cmd = hv_xasprintf("test -z \"$(ls -A '%s')\"", root);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  hv_store_close(&s);
}

static void test_lock(void **state) {
  (void)state;
  struct hv_store s;
  hv_error_t err = NULL;
  assert_int_equal(hv_store_open(&s, root, &err), 0);
  int fd = -1;
  assert_int_equal(hv_state_lock(&s, "locked", &fd, &err), 0);
  pid_t kid = fork();
  if (kid == 0) {
    char *path = hv_xasprintf("%s/locked.lock", root);
    int f = open(path, O_RDWR);
    /* held by the parent: a non-blocking attempt must fail */
    _exit(flock(f, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK ? 0 : 1);
  }
  int status;
  waitpid(kid, &status, 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(fd);
  kid = fork();
  if (kid == 0) {
    struct hv_store s2;
    hv_error_t e = NULL;
    int f = -1;
    if (hv_store_open(&s2, root, &e) < 0 || hv_state_lock(&s2, "locked", &f, &e) < 0)
      _exit(1);
    _exit(0);
  }
  waitpid(kid, &status, 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_true(hv_state_lock(&s, "../x", &fd, &err) < 0);
  hv_error_release(&err);
  assert_int_equal(hv_state_remove(&s, "locked", &err), 0);
  hv_store_close(&s);
}

static void test_refresh_and_json(void **state) {
  (void)state;
  struct hv_state st = sample("j");
  st.status = HV_RUNNING;
  hv_state_refresh(&st);
  assert_int_equal(st.status, HV_RUNNING);
  st.pid_start += 1; /* pid reused by another process */
  hv_state_refresh(&st);
  assert_int_equal(st.status, HV_STOPPED);

  pid_t kid = fork();
  if (kid == 0)
    _exit(0);
  st.status = HV_RUNNING;
  st.pid = kid;
  st.pid_start = hv_proc_starttime(kid);
  int status;
  waitpid(kid, &status, 0);
  hv_state_refresh(&st);
  assert_int_equal(st.status, HV_STOPPED);
  assert_int_equal(hv_proc_starttime(kid), 0);

  st.annotations = json_pack("{s:s}", "k", "v");
  json_t *j = hv_state_to_json(&st);
  assert_string_equal(json_string_value(json_object_get(j, "ociVersion")), "1.2.0");
  assert_string_equal(json_string_value(json_object_get(j, "id")), "j");
  assert_string_equal(json_string_value(json_object_get(j, "status")), "stopped");
  assert_int_equal(json_integer_value(json_object_get(j, "pid")), 0);
  assert_string_equal(json_string_value(json_object_get(j, "bundle")), "/b");
  assert_string_equal(json_string_value(json_object_get(j, "created")), "2024-01-01T00:00:00Z");
  assert_non_null(json_object_get(j, "owner"));
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "annotations"), "k")),
                      "v");
  json_decref(j);
  json_decref(st.annotations);

  st = sample("j2");
  st.status = HV_CREATED;
  j = hv_state_to_json(&st);
  assert_int_equal(json_integer_value(json_object_get(j, "pid")), getpid());
  assert_null(json_object_get(j, "annotations"));
  json_decref(j);
  assert_string_equal(hv_status_name(HV_PAUSED), "paused");
  assert_string_equal(hv_status_name(HV_CREATING), "creating");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_load_save_remove, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ids, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_create, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
      cmocka_unit_test(test_refresh_and_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
