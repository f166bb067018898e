#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void header_value(const char *head, const char *name, char *out, size_t cap) {
  out[0] = '\0';
  size_t nl = strlen(name);
  for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
    const char *line = p + 2;
    if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
      const char *v = line + nl + 1;
      while (*v == ' ') v++;
      size_t n = strcspn(v, "\r\n");
      if (n >= cap) n = cap - 1;
      memcpy(out, v, n);
      out[n] = '\0';
      return;
    }
  }
}

/* Decodes a chunked body in place (RFC 9112 §7.1; extensions and trailers ignored): the
 * decoded length, or -1 when malformed or truncated (Janus's HTTP transport chunks). */
static long dechunk(char *b, size_t n) {
  size_t in = 0, out = 0;
  for (;;) {
    size_t sz = 0, digits = 0;
    while (in < n && digits < 16) {
      char c = b[in];
      int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (v < 0) break;
      sz = sz * 16 + (size_t)v;
      in++;
      digits++;
    }
    if (digits == 0) return -1;
    const char *eol = memchr(b + in, '\n', n - in);
    if (!eol) return -1;
    in = (size_t)(eol - b) + 1;
    if (sz == 0) return (long)out;
    if (sz > n - in || n - in - sz < 2 || b[in + sz] != '\r' || b[in + sz + 1] != '\n') return -1;
    memmove(b + out, b + in, sz);
    out += sz;
    in += sz + 2;
  }
}

int test_http(uint16_t port, const char *method, const char *path, const char *const *headers,
              const char *body, size_t body_len, unsigned timeout_ms, test_http_res_t *out) {
  return test_http_at("127.0.0.1", port, method, path, headers, body, body_len, timeout_ms, out);
}

int test_http_at(const char *ip, uint16_t port, const char *method, const char *path,
                 const char *const *headers, const char *body, size_t body_len,
                 unsigned timeout_ms, test_http_res_t *out) {
  memset(out, 0, sizeof *out);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  size_t cap = 4096 + body_len;
  char *req = malloc(cap);
  if (!req) {
    close(fd);
    return -1;
  }
  size_t n = (size_t)snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n",
                              method, path, ip, (unsigned)port);
  for (size_t i = 0; headers && headers[i] && n < cap; i++)
    n += (size_t)snprintf(req + n, cap - n, "%s\r\n", headers[i]);
  if (n < cap) n += (size_t)snprintf(req + n, cap - n, "Content-Length: %zu\r\n\r\n", body ? body_len : 0);
  if (n + body_len >= cap) {
    free(req);
    close(fd);
    return -1;
  }
  if (body && body_len) memcpy(req + n, body, body_len);
  n += body ? body_len : 0;
  for (size_t off = 0; off < n;) {
    ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);
    if (w <= 0) {
      free(req);
      close(fd);
      return -1;
    }
    off += (size_t)w;
  }
  free(req);
  size_t rcap = 65536, len = 0;
  char *buf = malloc(rcap + 1);
  int rc = 0;
  for (;;) {
    if (!buf) {
      rc = -1;
      break;
    }
    if (len == rcap) {
      char *nb = realloc(buf, rcap * 2 + 1);
      if (!nb) {
        rc = -1;
        break;
      }
      buf = nb;
      rcap *= 2;
    }
    ssize_t r = recv(fd, buf + len, rcap - len, 0);
    if (r == 0) break;
    if (r < 0) {
      rc = -1;
      break;
    }
    len += (size_t)r;
    buf[len] = '\0';
    /* stop once Content-Length bytes of body are in (nng may keep the connection open) */
    char *end = strstr(buf, "\r\n\r\n");
    if (end) {
      char cl[32];
      *end = '\0';
      header_value(buf, "Content-Length", cl, sizeof cl);
      *end = '\r';
      if (cl[0] && len - (size_t)(end + 4 - buf) >= strtoul(cl, NULL, 10)) break;
      /* a chunked body is complete at its last chunk (0 CRLF CRLF, no trailers here) */
      size_t blen = len - (size_t)(end + 4 - buf);
      if (!cl[0] && blen >= 5 && memcmp(buf + len - 5, "0\r\n\r\n", 5) == 0 &&
          (blen == 5 || buf[len - 6] == '\n'))
        break;
    }
  }
  close(fd);
  if (rc != 0 || !buf) {
    free(buf);
    return -1;
  }
  buf[len] = '\0';
  char *end = strstr(buf, "\r\n\r\n");
  if (!end || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) {
    free(buf);
    out->status = 0;
    return -1;
  }
  *end = '\0';
  header_value(buf, "Location", out->location, sizeof out->location);
  header_value(buf, "Content-Type", out->content_type, sizeof out->content_type);
  header_value(buf, "Allow", out->allow, sizeof out->allow);
  header_value(buf, "WWW-Authenticate", out->www_authenticate, sizeof out->www_authenticate);
  out->body_len = len - (size_t)(end + 4 - buf);
  char te[32];
  header_value(buf, "Transfer-Encoding", te, sizeof te);
  if (strcasecmp(te, "chunked") == 0) {
    long d = dechunk(end + 4, out->body_len);
    if (d < 0) {
      free(buf);
      out->status = 0;
      return -1;
    }
    out->body_len = (size_t)d;
  }
  out->body = malloc(out->body_len + 1);
  if (out->body) {
    memcpy(out->body, end + 4, out->body_len);
    out->body[out->body_len] = '\0';
  }
  free(buf);
  return 0;
}

void test_http_res_free(test_http_res_t *res) {
  free(res->body);
  res->body = NULL;
}

char *test_http_get_body(const char *ip, uint16_t port, const char *path, unsigned timeout_ms) {
  test_http_res_t res;
  if (test_http_at(ip, port, "GET", path, NULL, NULL, 0, timeout_ms, &res) != 0) return NULL;
  if (res.status != 200) {
    test_http_res_free(&res);
    return NULL;
  }
  return res.body;
}

long long test_metric_sum(const char *text, const char *series) {
  size_t n = strlen(series);
  long long sum = 0;
  bool found = false;
  for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    if (strncmp(line, series, n) != 0 || (line[n] != '{' && line[n] != ' ')) continue;
    const char *v = line + n;
    if (*v == '{') {
      v = strchr(v, '}'); /* label values never hold '}' in our exposition */
      if (!v) continue;
      v++;
    }
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v) continue;
    sum += x;
    found = true;
  }
  return found ? sum : -1;
}
