/* A tiny blocking HTTP/1.1 client for tests (one request per connection, IPv4 only):
 * enough to drive the node's WHIP/WHEP endpoints and /metrics without curl. */
#ifndef MF_TEST_HTTP_CLIENT_H
#define MF_TEST_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int status;          /* 0 when no valid answer arrived */
  char location[512];  /* Location header, or "" */
  char content_type[128];
  char allow[128];
  char www_authenticate[128];
  char *body;          /* malloc'd, NUL-terminated (the caller frees) */
  size_t body_len;
} test_http_res_t;

/* Sends method path to 127.0.0.1:port with the given headers (each "Name: value", NULL or
 * a NULL-terminated array) and body (NULL = none), waits up to timeout_ms for the whole
 * answer. 0 on success, -1 on a socket error or timeout. */
int test_http(uint16_t port, const char *method, const char *path, const char *const *headers,
              const char *body, size_t body_len, unsigned timeout_ms, test_http_res_t *out);
void test_http_res_free(test_http_res_t *res);
/* test_http to ip (an IPv4 literal) instead of 127.0.0.1. */
int test_http_at(const char *ip, uint16_t port, const char *method, const char *path,
                 const char *const *headers, const char *body, size_t body_len,
                 unsigned timeout_ms, test_http_res_t *out);
/* GET path from ip:port: the body (NUL-terminated, the caller frees) when the answer is a
 * 200, else NULL. */
char *test_http_get_body(const char *ip, uint16_t port, const char *path, unsigned timeout_ms);
/* The sum of every sample of a Prometheus series in an exposition text, whatever its
 * labels ("series{...} v" and "series v" lines); -1 when it has none. */
long long test_metric_sum(const char *text, const char *series);

#endif
