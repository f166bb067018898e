/* The API server's listen-address parser and its plain-HTTP side beyond the integration
 * tests: listen strings of every shape, create's refusals (dev mode off loopback, bad
 * static prefix or directory), and the static files handler on a scratch directory (the
 * redirect of the bare prefix, index.html for a directory, content types by extension,
 * query strings ignored, and 404 for traversal, hidden files, escapes, backslashes,
 * directories and missing files), /healthz, and /metrics whose application part outgrows
 * the first buffer. Requests are made with a small blocking HTTP/1.0 client. WebSocket
 * sessions with a secret: authentication first (or refused), request errors, the admit
 * hook, keepalives, a token in the URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "node/api/http_server.h"
#include "node/api/jwt.h"
#include "tests/support/ws_client.h"

static void test_listen_parse(void **state) {
  (void)state;
  static const struct {
    const char *listen;
    mf_err_t want;
    const char *host;
    uint16_t port;
    bool loopback;
  } cases[] = {
      {"127.0.0.1:8080", MF_OK, "127.0.0.1", 8080, true},
      {"127.9.9.9:1", MF_OK, "127.9.9.9", 1, true},
      {"localhost:0", MF_OK, "localhost", 0, true},
      {"[::1]:65535", MF_OK, "::1", 65535, true},
      {"[::]:80", MF_OK, "::", 80, false},
      {"0.0.0.0:80", MF_OK, "0.0.0.0", 80, false},
      {"example.org:443", MF_OK, "example.org", 443, false},
      {"::1:80", MF_ERR_INVALID_ARG, NULL, 0, false},      /* IPv6 without brackets */
      {"[::1:80", MF_ERR_INVALID_ARG, NULL, 0, false},
      {"[]:80", MF_ERR_INVALID_ARG, NULL, 0, false},
      {":80", MF_ERR_INVALID_ARG, NULL, 0, false},
      {"host", MF_ERR_INVALID_ARG, NULL, 0, false},
      {"host:", MF_ERR_INVALID_ARG, NULL, 0, false},
      {"host:123456", MF_ERR_INVALID_ARG, NULL, 0, false},
      {"host:65536", MF_ERR_INVALID_ARG, NULL, 0, false},
      {"host:8o", MF_ERR_INVALID_ARG, NULL, 0, false},
      {"ho st:80", MF_ERR_INVALID_ARG, NULL, 0, false},
      {"a/b:80", MF_ERR_INVALID_ARG, NULL, 0, false},
      {"a?b:80", MF_ERR_INVALID_ARG, NULL, 0, false},
      {"a#b:80", MF_ERR_INVALID_ARG, NULL, 0, false},
      {"user@h:80", MF_ERR_INVALID_ARG, NULL, 0, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char host[64];
    uint16_t port = 7;
    bool lb = !cases[i].loopback;
    mf_err_t e = mf_api_listen_parse(cases[i].listen, host, sizeof host, &port, &lb);
    if (e != cases[i].want) print_error("case %s: %d\n", cases[i].listen, e);
    assert_int_equal(e, cases[i].want);
    if (e != MF_OK) continue;
    assert_string_equal(host, cases[i].host);
    assert_int_equal(port, cases[i].port);
    assert_int_equal(lb, cases[i].loopback);
  }
  char small[4];
  assert_int_equal(mf_api_listen_parse("localhost:80", small, sizeof small, NULL, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_api_listen_parse(NULL, small, sizeof small, NULL, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_api_listen_parse("h:1", NULL, 4, NULL, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_api_listen_parse("h:1", small, 0, NULL, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_api_listen_parse("h:1", small, sizeof small, NULL, NULL), MF_OK);
}

static void test_create_refusals(void **state) {
  (void)state;
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_OFF, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc); /* the refusals log errors on purpose */
  mf_api_server_t *sv = NULL;
  mf_api_server_config_t c = {.listen = "127.0.0.1:0"};
  assert_int_equal(mf_api_server_create(NULL, &sv), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_api_server_create(&c, NULL), MF_ERR_INVALID_ARG);
  mf_api_server_config_t bad = c;
  bad.listen = NULL;
  assert_int_equal(mf_api_server_create(&bad, &sv), MF_ERR_INVALID_ARG);
  bad.listen = "nonsense";
  assert_int_equal(mf_api_server_create(&bad, &sv), MF_ERR_INVALID_ARG);
  bad.listen = "0.0.0.0:0"; /* no secret: loopback only */
  assert_int_equal(mf_api_server_create(&bad, &sv), MF_ERR_INVALID_ARG);
  static const char *const prefixes[] = {"app", "/", "//"};
  for (size_t i = 0; i < 3; i++) {
    bad = c;
    bad.static_prefix = prefixes[i];
    assert_int_equal(mf_api_server_create(&bad, &sv), MF_ERR_INVALID_ARG);
  }
  char long_prefix[200];
  long_prefix[0] = '/';
  memset(long_prefix + 1, 'p', sizeof long_prefix - 2);
  long_prefix[sizeof long_prefix - 1] = '\0';
  bad = c;
  bad.static_prefix = long_prefix;
  assert_int_equal(mf_api_server_create(&bad, &sv), MF_ERR_INVALID_ARG);
  bad = c;
  bad.static_dir = "";
  assert_int_equal(mf_api_server_create(&bad, &sv), MF_ERR_INVALID_ARG);
  assert_null(sv);
  lc.level = MF_LOG_LEVEL_WARN;
  mf_log_configure(&lc);
}

/* ------------------------------------------------------------ static files */

typedef struct {
  int status;
  char type[128];
  char location[256];
  char body[256];
} res_t;

/* GET path over one HTTP/1.0 connection; the whole answer is read until the server closes. */
static void get(uint16_t port, const char *path, res_t *r) {
  memset(r, 0, sizeof *r);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  char req[512];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: x\r\nConnection: close\r\n\r\n", path);
  assert_int_equal(send(fd, req, (size_t)n, 0), n);
  static char buf[1 << 20];
  size_t len = 0;
  for (;;) {
    ssize_t k = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    if (k <= 0) break;
    len += (size_t)k;
  }
  close(fd);
  buf[len] = '\0';
  assert_true(sscanf(buf, "HTTP/1.%*d %d", &r->status) == 1);
  const char *h = strcasestr(buf, "\r\nContent-Type: ");
  if (h) sscanf(h + 16, "%127[^\r]", r->type);
  h = strcasestr(buf, "\r\nLocation: ");
  if (h) sscanf(h + 12, "%255[^\r]", r->location);
  h = strstr(buf, "\r\n\r\n");
  if (h) snprintf(r->body, sizeof r->body, "%s", h + 4);
}

static void put_file(const char *dir, const char *name, const char *text) {
  char path[1100];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* An application metrics part larger than the server's first 16 KiB buffer. */
static size_t big_metrics(void *ctx, char *buf, size_t cap) {
  (void)ctx;
  size_t want = 40000;
  for (size_t i = 0; i < want && i < cap; i++) buf[i] = i % 64 == 63 ? '\n' : 'm';
  return want;
}

static void test_static_files(void **state) {
  (void)state;
  char dir[] = "/tmp/mf_static_XXXXXX";
  assert_non_null(mkdtemp(dir));
  put_file(dir, "index.html", "<p>home</p>");
  static const struct {
    const char *name, *type;
  } files[] = {
      {"a.js", "text/javascript; charset=utf-8"}, {"b.css", "text/css; charset=utf-8"},
      {"c.json", "application/json"},             {"d.map", "application/json"},
      {"e.svg", "image/svg+xml"},                 {"f.png", "image/png"},
      {"g.ico", "image/x-icon"},                  {"h.txt", "text/plain; charset=utf-8"},
      {"i.bin", "application/octet-stream"},      {"noext", "application/octet-stream"},
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) put_file(dir, files[i].name, files[i].name);
  put_file(dir, ".hidden", "secret");
  char sub[512];
  snprintf(sub, sizeof sub, "%s/sub.d", dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  put_file(sub, "index.html", "<p>sub</p>");

  char dir_slash[512];
  snprintf(dir_slash, sizeof dir_slash, "%s/", dir); /* a trailing slash is dropped */
  mf_api_server_config_t c = {.listen = "127.0.0.1:0", .static_dir = dir_slash, .static_prefix = "/web/",
                              .metrics = big_metrics};
  mf_api_server_t *sv = NULL;
  assert_int_equal(mf_api_server_create(&c, &sv), MF_OK);
  uint16_t port = mf_api_server_port(sv);
  assert_true(port > 0);
  assert_true(mf_api_server_dev_mode(sv));
  res_t r;

  get(port, "/web?room=1", &r);
  assert_int_equal(r.status, 302);
  assert_string_equal(r.location, "/web/?room=1");
  get(port, "/web/?room=1#x", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.type, "text/html; charset=utf-8");
  assert_string_equal(r.body, "<p>home</p>");
  get(port, "/web/sub.d/", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "<p>sub</p>");
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char path[128];
    snprintf(path, sizeof path, "/web/%s", files[i].name);
    get(port, path, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.type, files[i].type);
    assert_string_equal(r.body, files[i].name);
  }
  static const char *const missing[] = {"/web/../index.html", "/web/.hidden",   "/web/sub.d/../a.js",
                                        "/web/a%2ejs",        "/web/a\\b",      "/web/nothing.html",
                                        "/web/sub.d",         "/webx/a.js",     "/web/sub.d/.x"};
  for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
    get(port, missing[i], &r);
    if (r.status != 404) print_error("%s: %d\n", missing[i], r.status);
    assert_int_equal(r.status, 404);
  }
  get(port, "/healthz", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "ok\n");
  get(port, "/metrics", &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.type, "text/plain"));

  mf_api_server_destroy(sv);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------ WebSocket sessions */

static const uint8_t secret[] = "session-secret";

/* Refuses "blocked.method" and closes the session with it; lets everything else through. */
static mf_err_t admit(void *ctx, mf_api_session_t *session, const char *method, char *why, size_t whysz,
                      bool *close) {
  (void)ctx;
  (void)session;
  if (strcmp(method, "blocked.method") != 0) return MF_OK;
  snprintf(why, whysz, "blocked by the test");
  *close = true;
  return MF_ERR_RATE;
}

static json_t *next(nng_stream *s) { return mf_test_ws_recv(s, 5000); }

/* The next reply (keepalive notifications, which may come whenever the test is slow, are
 * skipped). */
static json_t *reply(nng_stream *s) {
  for (;;) {
    json_t *m = next(s);
    if (!m || !json_object_get(m, "event")) return m;
    json_decref(m);
  }
}

static const char *err_code(const json_t *m) {
  return json_string_value(json_object_get(json_object_get(m, "error"), "code"));
}

/* With a secret: the first message must authenticate (else refused and closed); then
 * ordinary requests, unparsable and unknown ones answered with errors, the admit hook
 * refusing (and closing), keepalive notifications on a quiet session. */
static void test_sessions(void **state) {
  (void)state;
  mf_api_server_config_t c = {.listen = "127.0.0.1:0", .secret = secret, .secret_len = sizeof secret - 1,
                              .admit = admit, .keepalive_ms = 100};
  mf_api_server_t *sv = NULL;
  assert_int_equal(mf_api_server_create(&c, &sv), MF_OK);
  assert_false(mf_api_server_dev_mode(sv));
  uint16_t port = mf_api_server_port(sv);
  mf_jwt_claims_t cl;
  memset(&cl, 0, sizeof cl);
  snprintf(cl.sub, sizeof cl.sub, "tester");
  snprintf(cl.room, sizeof cl.room, "r");
  cl.exp = (int64_t)time(NULL) + 3600;
  cl.grants = MF_JWT_GRANT_JOIN;
  char token[1024];
  assert_int_equal(mf_jwt_mint(&cl, secret, sizeof secret - 1, token, sizeof token, NULL), MF_OK);

  /* something else first: refused, then the connection ends */
  nng_stream *s = mf_test_ws_dial("127.0.0.1", port, "", 5000);
  assert_non_null(s);
  assert_int_equal(mf_test_ws_send(s, "{\"id\":1,\"method\":\"system.ping\"}", 32, 5000), 0);
  json_t *m = next(s);
  assert_non_null(m);
  assert_string_equal(err_code(m), "unauthorized");
  json_decref(m);
  assert_null(next(s));
  mf_test_ws_free(s);
  /* a bad token, and a message that is not JSON at all */
  s = mf_test_ws_dial("127.0.0.1", port, "", 5000);
  assert_int_equal(mf_test_api_send(s, 1, "auth", json_pack("{s:s}", "token", "a.b.c"), 5000), 0);
  m = next(s);
  assert_string_equal(err_code(m), "unauthorized");
  json_decref(m);
  mf_test_ws_free(s);
  s = mf_test_ws_dial("127.0.0.1", port, "", 5000);
  assert_int_equal(mf_test_ws_send(s, "garbage", 7, 5000), 0);
  m = next(s);
  assert_string_equal(err_code(m), "unauthorized");
  json_decref(m);
  mf_test_ws_free(s);

  /* authenticated */
  s = mf_test_ws_dial("127.0.0.1", port, "", 5000);
  assert_int_equal(mf_test_api_send(s, 1, "auth", json_pack("{s:s}", "token", token), 5000), 0);
  m = reply(s);
  assert_true(json_is_true(json_object_get(m, "ok")));
  assert_string_equal(json_string_value(json_object_get(json_object_get(m, "data"), "sub")), "tester");
  json_decref(m);
  assert_int_equal(mf_test_api_send(s, 2, "system.ping", NULL, 5000), 0);
  m = reply(s);
  assert_true(json_is_true(json_object_get(json_object_get(m, "data"), "pong")));
  json_decref(m);
  assert_int_equal(mf_test_api_send(s, 3, "no.such", NULL, 5000), 0);
  m = reply(s);
  assert_string_equal(err_code(m), "not_found");
  json_decref(m);
  assert_int_equal(mf_test_ws_send(s, "{\"id\":4}", 8, 5000), 0);
  m = reply(s);
  assert_string_equal(err_code(m), "invalid_argument");
  assert_int_equal(json_integer_value(json_object_get(m, "id")), 4);
  json_decref(m);
  assert_int_equal(mf_test_ws_send(s, "[", 1, 5000), 0);
  m = reply(s);
  assert_string_equal(err_code(m), "parse_error");
  assert_true(json_is_null(json_object_get(m, "id")));
  json_decref(m);
  /* quiet for a while: the server probes with keepalive notifications */
  m = next(s);
  assert_non_null(m);
  assert_string_equal(json_string_value(json_object_get(m, "event")), "system.keepalive");
  json_decref(m);
  /* the admit hook refuses and closes */
  assert_int_equal(mf_test_api_send(s, 5, "blocked.method", NULL, 5000), 0);
  m = reply(s);
  assert_non_null(m);
  assert_string_equal(err_code(m), "rate_limited");
  json_decref(m);
  for (m = next(s); m; m = next(s)) json_decref(m); /* until the server closes */
  mf_test_ws_free(s);

  /* a token in the URL */
  char q[1100];
  snprintf(q, sizeof q, "?token=%s", token);
  s = mf_test_ws_dial("127.0.0.1", port, q, 5000);
  assert_non_null(s);
  assert_int_equal(mf_test_api_send(s, 1, "system.ping", NULL, 5000), 0);
  m = reply(s);
  assert_true(json_is_true(json_object_get(m, "ok")));
  json_decref(m);
  mf_test_ws_free(s);
  mf_api_server_destroy(sv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_listen_parse),
      cmocka_unit_test(test_create_refusals),
      cmocka_unit_test(test_static_files),
      cmocka_unit_test(test_sessions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
