/* test_agent_proto.c: the agent protocol's shared pieces (vm/agent_proto.c):
 * hex payloads round-trip and reject malformed input, the line splitter
 * drops over-long lines whole and keeps partial lines across feeds, and
 * data is cut into HV_AGENT_CHUNK-sized lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "vm/guest_proto.h"
#include <stdlib.h>
#include <string.h>

static void test_hex_roundtrip(void **state) {
  (void)state;
  unsigned char in[256], out[256];
  for (int i = 0; i < 256; i++)
    in[i] = (unsigned char)i;
  char hex[513];
  hv_agent_hex_encode(in, sizeof in, hex);
  assert_int_equal(strlen(hex), 512);
  assert_memory_equal(hex, "000102", 6);
  assert_int_equal(hv_agent_hex_decode(hex, out, sizeof out), 256);
  assert_memory_equal(in, out, 256);
  assert_int_equal(hv_agent_hex_decode("ABcd", out, 2), 2);
  assert_int_equal(out[0], 0xab);
  assert_int_equal(hv_agent_hex_decode("abc", out, 8), -1);   /* odd length */
  assert_int_equal(hv_agent_hex_decode("zz", out, 8), -1);    /* not hex */
  assert_int_equal(hv_agent_hex_decode("aabbcc", out, 2), -1); /* too long for out */
  assert_int_equal(hv_agent_hex_decode("", out, 2), 0);
}

struct seen {
  int n;
  char last[64];
  size_t last_len;
};

static void on_line(void *arg, char *line) {
  struct seen *s = arg;
  s->n++;
  s->last_len = strlen(line);
  snprintf(s->last, sizeof s->last, "%s", line);
}

static void test_lines(void **state) {
  (void)state;
  struct hv_agent_lines *l = malloc(sizeof *l);
  hv_agent_lines_init(l);
  struct seen s = {0};
  hv_agent_lines_feed(l, "signal 1", 8, on_line, &s);
  assert_int_equal(s.n, 0); /* no newline yet */
  hv_agent_lines_feed(l, "5\nin 0 ", 7, on_line, &s);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.last, "signal 15");
  /* an over-long line is dropped whole; the next one still arrives */
  char *big = malloc(HV_AGENT_LINE_MAX + 10);
  memset(big, 'a', HV_AGENT_LINE_MAX + 10);
  hv_agent_lines_feed(l, big, HV_AGENT_LINE_MAX + 10, on_line, &s);
  hv_agent_lines_feed(l, "\neof 0\n", 7, on_line, &s);
  assert_int_equal(s.n, 2);
  assert_string_equal(s.last, "eof 0");
  free(big);
  free(l);
}

static void test_send_data_chunks(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  size_t len = HV_AGENT_CHUNK * 2 + 5;
  char *data = malloc(len);
  for (size_t i = 0; i < len; i++)
    data[i] = (char)(i * 7);
  assert_int_equal(hv_agent_send_data(p[1], "out", 3, 2, data, len), 0);
  close(p[1]);
  size_t cap = 4 * len + 256, got = 0;
  char *buf = malloc(cap);
  ssize_t n;
  while ((n = read(p[0], buf + got, cap - got - 1)) > 0)
    got += (size_t)n;
  buf[got] = 0;
  close(p[0]);
  /* three lines: two full chunks and the rest, in order */
  char *back = malloc(len), *save = NULL;
  size_t off = 0;
  int lines = 0;
  for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    assert_memory_equal(line, "out 3 2 ", 8);
    ssize_t k = hv_agent_hex_decode(line + 8, back + off, len - off);
    assert_true(k > 0 && k <= HV_AGENT_CHUNK);
    off += (size_t)k;
    lines++;
  }
  assert_int_equal(lines, 3);
  assert_int_equal(off, len);
  assert_memory_equal(back, data, len);
  free(back);
  free(buf);
  free(data);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hex_roundtrip),
      cmocka_unit_test(test_lines),
      cmocka_unit_test(test_send_data_chunks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
