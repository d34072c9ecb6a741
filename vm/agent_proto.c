/* agent_proto.c: the pieces of the agent protocol (guest_proto.h) that the
 * guest init, the VMM process and the exec client all need: hex payloads
 * and a line splitter with a hard cap, so no peer can make another buffer
 * without bound. */
#include "guest_proto.h"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char hexdigits[] = "0123456789abcdef";

void hv_agent_hex_encode(const void *data, size_t len, char *out) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = hexdigits[p[i] >> 4];
    out[2 * i + 1] = hexdigits[p[i] & 15];
  }
  out[2 * len] = 0;
}

ssize_t hv_agent_hex_decode(const char *hex, void *out, size_t max) {
  size_t n = strlen(hex);
  if (n % 2 || n / 2 > max)
    return -1;
  unsigned char *o = out;
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hv_hex_digit(hex[2 * i]), lo = hv_hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    o[i] = (unsigned char)(hi << 4 | lo);
  }
  return (ssize_t)(n / 2);
}

void hv_agent_lines_init(struct hv_agent_lines *l) {
  l->used = 0;
  l->overflow = false;
}

/* Bytes go in; each complete line (without "\n") goes to `fn`.  A line
 * longer than HV_AGENT_LINE_MAX is dropped whole, up to its newline. */
void hv_agent_lines_feed(struct hv_agent_lines *l, const char *buf, size_t n,
                         void (*fn)(void *arg, char *line), void *arg) {
  for (size_t i = 0; i < n; i++) {
    if (buf[i] != '\n') {
      if (l->used < sizeof l->buf - 1)
        l->buf[l->used++] = buf[i];
      else
        l->overflow = true;
      continue;
    }
    l->buf[l->used] = 0;
    if (!l->overflow)
      fn(arg, l->buf);
    l->used = 0;
    l->overflow = false;
  }
}

int hv_agent_write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  bool sock = true;
  while (len > 0) {
    /* A socket whose peer is gone must give EPIPE, not SIGPIPE: the exec
     * relay may still be forwarding stdin when the session ends. */
    ssize_t n = sock ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);
    if (n < 0 && errno == ENOTSOCK) {
      sock = false;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN) {
      /* A non-blocking channel: wait for room rather than drop a line. */
      struct pollfd pf = {.fd = fd, .events = POLLOUT};
      if (poll(&pf, 1, -1) < 0 && errno != EINTR)
        return -1;
      continue;
    }
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int hv_agent_send_data(int fd, const char *verb, unsigned session, int stream, const void *data,
                       size_t len) {
  char line[64 + 2 * HV_AGENT_CHUNK];
  while (len > 0) {
    size_t k = len < HV_AGENT_CHUNK ? len : HV_AGENT_CHUNK;
    int h = stream >= 0 ? snprintf(line, 64, "%s %u %d ", verb, session, stream)
                        : snprintf(line, 64, "%s %u ", verb, session);
    hv_agent_hex_encode(data, k, line + h);
    size_t total = (size_t)h + 2 * k;
    line[total++] = '\n';
    if (hv_agent_write_all(fd, line, total) < 0)
      return -1;
    data = (const char *)data + k;
    len -= k;
  }
  return 0;
}
