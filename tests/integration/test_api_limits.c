/* Issue 12 limits, end to end: real mafalda-node processes started with small limits
 * (--max-session-*, --max-node-transports, --max-sessions, --api-rate/--api-burst,
 * --api-flood-close), driven over WebSockets on loopback. No media: transports are created
 * and closed, producers made from RTP parameters alone.
 *   node A (no rate limit, grace 0): per-session transport, producer and consumer limits,
 *     slots freed by transport.close / producer.close / a transport's close taking its
 *     producer / consumers closed with their producer / router.close / a WebSocket close,
 *     the node-wide transport limit across two sessions, --max-sessions;
 *   node B (rate 5/s, burst 10, flood close at 40, grace 5 s): a resumed session keeps its
 *     counts, a burst beyond the rate is answered rate_limited and the session works again
 *     afterwards, a flooding session is closed with a logged reason.
 * Both nodes then stop on SIGTERM and must exit 0 (LeakSanitizer under ASan).
 * Usage: test_api_limits path/to/mafalda-node */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/support/http_client.h"
#include "tests/support/test_proc.h"
#include "tests/support/ws_client.h"

#define IO_MS 5000

typedef struct {
  pid_t wrapper, pid;
  uint16_t port;
  char log[128];
} node_t;

static const char *node_bin;
static char dir[64];
static node_t node_a, node_b;
static int next_id = 1;

static const char *const vp8_params =
    "{\"mid\":\"0\",\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000}],"
    "\"encodings\":[{\"ssrc\":%u}],\"rtcp\":{\"cname\":\"c\"}}";

/* ---------------------------------------------------------------- HTTP and the nodes */

/* GET path from the node: the body of a 200 (free it), else NULL. */
static char *http_get(uint16_t port, const char *path) {
  return test_http_get_body("127.0.0.1", port, path, 3000);
}

/* The value of the /metrics line that starts with `series` (a name, labels and a space). */
static long long metric(uint16_t port, const char *series) {
  char *m = http_get(port, "/metrics");
  assert_non_null(m);
  const char *p = strstr(m, series);
  long long v = -1;
  while (p && p > m && p[-1] != '\n') p = strstr(p + 1, series); /* a line's start */
  if (p) v = strtoll(p + strlen(series), NULL, 10);
  free(m);
  return v;
}

static int start_node(node_t *n, const char *name, char *const *limits) {
  char api[32];
  n->port = (uint16_t)mf_test_free_port();
  snprintf(api, sizeof api, "127.0.0.1:%u", n->port);
  snprintf(n->log, sizeof n->log, "%s/%s.log", dir, name);
  char *argv[48] = {"timeout", "-s", "KILL", "50", (char *)node_bin, "--workers", "2",
                    "--pin-workers=false", "--rtc-listen-ip", "127.0.0.1", "--announced-ip",
                    "127.0.0.1", "--rtc-port-base", "0", "--controller=false", "--api-listen",
                    api, "--log-level", "warn"};
  size_t k = 19;
  for (size_t i = 0; limits[i] && k < 47; i++) argv[k++] = limits[i];
  argv[k] = NULL;
  if (mf_test_spawn_logged(argv, n->log, &n->wrapper) != 0) return -1;
  n->pid = mf_test_wait_child_of(n->wrapper, 5000);
  if (n->pid <= 0) return -1;
  double deadline = mf_test_now_s() + 30;
  char *h = NULL;
  while (!(h = http_get(n->port, "/healthz")) && mf_test_now_s() < deadline) mf_test_sleep_ms(50);
  free(h);
  return h ? 0 : -1;
}

static void dump_log(const node_t *n) {
  char cmd[320];
  snprintf(cmd, sizeof cmd, "echo '--- %s'; tail -n 40 %s", n->log, n->log);
  if (system(cmd) != 0) fprintf(stderr, "(no log)\n");
}

/* ---------------------------------------------------------------- API calls */

static nng_stream *client(const node_t *n) {
  nng_stream *s = mf_test_ws_dial("127.0.0.1", n->port, "", IO_MS);
  assert_non_null(s);
  return s;
}

static int send_req(nng_stream *s, const char *method, json_t *data) {
  int id = next_id++;
  assert_int_equal(mf_test_api_send(s, id, method, data, IO_MS), 0);
  return id;
}

/* The answer to request `id` (notifications in between are dropped). */
static json_t *answer(nng_stream *s, int id) {
  json_t *m = mf_test_api_answer(s, id, IO_MS, NULL);
  assert_non_null(m);
  return m;
}

static json_t *call(nng_stream *s, const char *method, json_t *data) {
  return answer(s, send_req(s, method, data));
}

/* A successful call's data.id (copied into out, when given). */
static void call_ok(nng_stream *s, const char *method, json_t *data, char out[64]) {
  json_t *r = call(s, method, data);
  if (!json_is_true(json_object_get(r, "ok"))) {
    char *t = json_dumps(r, 0);
    print_error("%s: expected ok, got %s\n", method, t);
    free(t);
    fail();
  }
  if (out) {
    const char *id = json_string_value(json_object_get(json_object_get(r, "data"), "id"));
    snprintf(out, 64, "%s", id ? id : "");
  }
  json_decref(r);
}

/* A failed call with this code whose message names every one of the `words`. */
static void expect_error(json_t *r, const char *code, const char *w1, const char *w2) {
  const char *got = json_string_value(json_object_get(json_object_get(r, "error"), "code"));
  const char *msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
  if (!json_is_false(json_object_get(r, "ok")) || !got || strcmp(got, code) != 0 || !msg ||
      (w1 && !strstr(msg, w1)) || (w2 && !strstr(msg, w2))) {
    char *t = json_dumps(r, 0);
    print_error("expected %s naming '%s' and '%s', got %s\n", code, w1 ? w1 : "",
                w2 ? w2 : "", t);
    free(t);
    fail();
  }
  json_decref(r);
}

static void join(nng_stream *s, const char *room) {
  call_ok(s, "router.join", json_pack("{s:s}", "roomId", room), NULL);
}

static json_t *produce_data(const char *transport_id, unsigned ssrc) {
  char text[512];
  snprintf(text, sizeof text, vp8_params, ssrc);
  return json_pack("{s:s, s:s, s:o}", "transportId", transport_id, "kind", "video",
                   "rtpParameters", json_loads(text, 0, NULL));
}

/* Retries a create until the node has applied an earlier close (closes run on the workers
 * after their answer, or after the WebSocket went): bounded, not a timing assertion. */
static void create_eventually(nng_stream *s, char out[64]) {
  for (int i = 0; i < 100; i++) {
    json_t *r = call(s, "router.createWebRtcTransport", NULL);
    if (json_is_true(json_object_get(r, "ok"))) {
      snprintf(out, 64, "%s", json_string_value(json_object_get(json_object_get(r, "data"), "id")));
      json_decref(r);
      return;
    }
    expect_error(r, "limit_exceeded", NULL, NULL);
    mf_test_sleep_ms(50);
  }
  fail_msg("the transport limit never freed a slot");
}

/* True once the server closed the connection: nng's client fails sends after the close
 * frame (a recv posted later need not fail), so probe with sends (bounded wait). */
static bool wait_closed(nng_stream *s) {
  for (int i = 0; i < 250; i++) {
    if (mf_test_ws_send(s, "{\"id\":1,\"method\":\"system.ping\"}", 31, IO_MS) != 0) return true;
    mf_test_sleep_ms(20);
  }
  return false;
}

/* ---------------------------------------------------------------- node A: counts */

static void test_session_transports(void **state) {
  (void)state;
  nng_stream *s = client(&node_a);
  join(s, "counts");
  char t1[64], t2[64], t3[64];
  call_ok(s, "router.createWebRtcTransport", NULL, t1);
  call_ok(s, "router.createPlainTransport", NULL, t2); /* plain ones count too */
  expect_error(call(s, "router.createWebRtcTransport", NULL), "limit_exceeded",
               "--max-session-transports", "at most 2 transports");
  expect_error(call(s, "router.createPlainTransport", NULL), "limit_exceeded",
               "--max-session-transports", NULL);
  /* the refusals left nothing behind: the node has exactly the 2 */
  assert_int_equal(metric(node_a.port, "mafalda_api_refused_total{limit=\"session\"} "), 2);
  /* a closed transport frees its slot (the close is done when answered) */
  call_ok(s, "transport.close", json_pack("{s:s}", "transportId", t1), NULL);
  call_ok(s, "router.createWebRtcTransport", NULL, t3);
  expect_error(call(s, "router.createWebRtcTransport", NULL), "limit_exceeded", NULL, NULL);
  /* the session is still usable after the errors */
  call_ok(s, "system.ping", NULL, NULL);
  mf_test_ws_free(s);
}

static void test_session_producers(void **state) {
  (void)state;
  nng_stream *s = client(&node_a);
  join(s, "counts");
  char t1[64], t2[64], p1[64], p2[64];
  create_eventually(s, t1); /* the previous test's transports close after its WebSocket */
  call_ok(s, "transport.produce", produce_data(t1, 1001), p1);
  expect_error(call(s, "transport.produce", produce_data(t1, 1002)), "limit_exceeded",
               "--max-session-producers", "at most 1 producers");
  call_ok(s, "producer.close", json_pack("{s:s}", "producerId", p1), NULL);
  call_ok(s, "transport.produce", produce_data(t1, 1003), p2);
  expect_error(call(s, "transport.produce", produce_data(t1, 1004)), "limit_exceeded", NULL, NULL);
  /* closing the transport closes its producer on the server's side: the slot is free */
  call_ok(s, "transport.close", json_pack("{s:s}", "transportId", t1), NULL);
  create_eventually(s, t2);
  call_ok(s, "transport.produce", produce_data(t2, 1005), NULL);
  mf_test_ws_free(s);
}

/* Consumers: the limit, and slots freed when the server closes consumers (their producer
 * closed) and when router.close ends every transport of the room. */
static void test_session_consumers(void **state) {
  (void)state;
  nng_stream *a = client(&node_a), *b = client(&node_a);
  join(a, "consumers");
  json_t *r = call(b, "router.join", json_pack("{s:s}", "roomId", "consumers"));
  json_t *caps = json_incref(json_object_get(json_object_get(r, "data"), "rtpCapabilities"));
  json_decref(r);
  assert_non_null(caps);
  char ta[64], tb[64], p1[64], p2[64];
  create_eventually(a, ta);
  create_eventually(b, tb);
  call_ok(a, "transport.produce", produce_data(ta, 2001), p1);
  for (int i = 0; i < 2; i++)
    call_ok(b, "transport.consume",
            json_pack("{s:s, s:s, s:O}", "transportId", tb, "producerId", p1, "rtpCapabilities",
                      caps), NULL);
  expect_error(call(b, "transport.consume",
                    json_pack("{s:s, s:s, s:O}", "transportId", tb, "producerId", p1,
                              "rtpCapabilities", caps)),
               "limit_exceeded", "--max-session-consumers", "at most 2 consumers");
  /* the producer closes: the server closes b's consumers, whose slots come back */
  call_ok(a, "producer.close", json_pack("{s:s}", "producerId", p1), NULL);
  call_ok(a, "transport.produce", produce_data(ta, 2002), p2);
  int made = 0;
  for (int k = 0; k < 100 && made < 2; k++) {
    r = call(b, "transport.consume", json_pack("{s:s, s:s, s:O}", "transportId", tb, "producerId",
                                               p2, "rtpCapabilities", caps));
    if (json_is_true(json_object_get(r, "ok"))) {
      made++;
      json_decref(r);
    } else {
      expect_error(r, "limit_exceeded", NULL, NULL);
      mf_test_sleep_ms(50);
    }
  }
  assert_int_equal(made, 2);
  /* router.close ends every transport of the room (and what is on them): both sessions
   * get their slots back */
  call_ok(b, "router.close", NULL, NULL);
  char ida[64], idb[64];
  create_eventually(a, ida);
  create_eventually(b, idb);
  call_ok(a, "transport.produce", produce_data(ida, 2003), NULL); /* p2 went too */
  json_decref(caps);
  mf_test_ws_free(a);
  mf_test_ws_free(b);
}

static void test_node_transports(void **state) {
  (void)state;
  /* --max-node-transports 3 with at most 2 per session: b's second create crosses the
   * node's limit (the earlier tests' WebSockets are gone and, with grace 0, their objects) */
  nng_stream *a = client(&node_a), *b = client(&node_a);
  join(a, "node");
  join(b, "node");
  char id[64];
  create_eventually(a, id); /* earlier tests' closes may still be running */
  call_ok(a, "router.createWebRtcTransport", NULL, id);
  call_ok(b, "router.createWebRtcTransport", NULL, id);
  expect_error(call(b, "router.createWebRtcTransport", NULL), "limit_exceeded",
               "--max-node-transports", "maximum of 3 transports");
  /* a's WebSocket closes: its transports close with it, b gets a slot */
  mf_test_ws_free(a);
  create_eventually(b, id);
  mf_test_ws_free(b);
}

static void test_max_sessions(void **state) {
  (void)state;
  /* --max-sessions 3: joined sessions are counted, not connections */
  nng_stream *s[4];
  for (int i = 0; i < 4; i++) s[i] = client(&node_a);
  for (int k = 0; k < 100; k++) { /* the previous tests' sessions leave on their close */
    json_t *r = call(s[0], "router.join", json_pack("{s:s}", "roomId", "sessions"));
    bool ok = json_is_true(json_object_get(r, "ok"));
    if (!ok) expect_error(r, "limit_exceeded", "--max-sessions", NULL);
    else json_decref(r);
    if (ok) break;
    assert_true(k < 99);
    mf_test_sleep_ms(50);
  }
  join(s[1], "sessions");
  join(s[2], "other-room");
  expect_error(call(s[3], "router.join", json_pack("{s:s}", "roomId", "sessions")),
               "limit_exceeded", "--max-sessions", "maximum of 3 sessions");
  expect_error(call(s[3], "router.create", json_pack("{s:s}", "roomId", "new-room")),
               "limit_exceeded", "--max-sessions", NULL);
  call_ok(s[3], "system.ping", NULL, NULL); /* not joined, still connected */
  mf_test_ws_free(s[0]);
  for (int k = 0; k < 100; k++) {
    json_t *r = call(s[3], "router.join", json_pack("{s:s}", "roomId", "sessions"));
    bool ok = json_is_true(json_object_get(r, "ok"));
    json_decref(r);
    if (ok) break;
    assert_true(k < 99);
    mf_test_sleep_ms(50);
  }
  for (int i = 1; i < 4; i++) mf_test_ws_free(s[i]);
}

/* ---------------------------------------------------------------- node B: resume, rate */

static void test_resume_carries_counts(void **state) {
  (void)state;
  nng_stream *s = client(&node_b);
  json_t *r = call(s, "router.join", json_pack("{s:s}", "roomId", "resume"));
  char token[64];
  snprintf(token, sizeof token, "%s",
           json_string_value(json_object_get(json_object_get(r, "data"), "resumeToken")));
  json_decref(r);
  assert_true(token[0]);
  char t1[64], t2[64];
  call_ok(s, "router.createWebRtcTransport", NULL, t1);
  call_ok(s, "router.createWebRtcTransport", NULL, t2);
  mf_test_ws_free(s); /* the objects wait --api-grace-ms for a resume */
  nng_stream *n = client(&node_b);
  call_ok(n, "router.join", json_pack("{s:s, s:s}", "roomId", "resume", "resumeToken", token),
          NULL);
  /* the adopted transports still count: the resumed session is full */
  expect_error(call(n, "router.createWebRtcTransport", NULL), "limit_exceeded",
               "--max-session-transports", NULL);
  call_ok(n, "transport.close", json_pack("{s:s}", "transportId", t1), NULL);
  call_ok(n, "router.createWebRtcTransport", NULL, t1);
  call_ok(n, "transport.close", json_pack("{s:s}", "transportId", t1), NULL);
  call_ok(n, "transport.close", json_pack("{s:s}", "transportId", t2), NULL);
  mf_test_ws_free(n);
}

static void test_rate_limited_then_works(void **state) {
  (void)state;
  /* --api-rate 5 --api-burst 10: 30 requests at once, answered in order of arrival */
  nng_stream *s = client(&node_b);
  int first = next_id;
  for (int i = 0; i < 30; i++) send_req(s, "system.ping", NULL);
  int ok = 0, limited = 0;
  for (int i = 0; i < 30; i++) {
    json_t *m = answer(s, first + i);
    if (json_is_true(json_object_get(m, "ok"))) {
      ok++;
      json_decref(m);
    } else {
      limited++;
      expect_error(m, "rate_limited", "--api-rate", "5 requests/s (burst 10)");
    }
  }
  /* the burst, plus whatever the rate refilled while they were read */
  assert_true(ok >= 10);
  assert_true(limited >= 10);
  assert_int_equal(ok + limited, 30);
  /* the session is still there and works once the bucket refilled */
  bool back = false;
  for (int k = 0; k < 50 && !back; k++) {
    mf_test_sleep_ms(100);
    json_t *m = call(s, "system.ping", NULL);
    back = json_is_true(json_object_get(m, "ok"));
    json_decref(m);
  }
  assert_true(back);
  mf_test_sleep_ms(400); /* two more tokens at 5/s */
  join(s, "rate");
  mf_test_ws_free(s);
}

static void test_flooding_session_is_closed(void **state) {
  (void)state;
  /* --api-flood-close 40: 10 admitted, then the 41st refusal past the rate closes it */
  nng_stream *s = client(&node_b);
  nng_stream *other = client(&node_b);
  /* one at a time: requests still unread when the server closes would make its kernel
   * reset the connection, and the client would lose the answers already sent */
  int answers = 0, limited = 0;
  for (int i = 0; i < 120; i++) {
    if (mf_test_ws_send(s, "{\"id\":1,\"method\":\"system.ping\"}", 31, IO_MS) != 0) break;
    json_t *m = mf_test_ws_recv(s, 2000);
    if (!m) break;
    answers++;
    const char *code = json_string_value(json_object_get(json_object_get(m, "error"), "code"));
    if (code && strcmp(code, "rate_limited") == 0) limited++;
    json_decref(m);
  }
  if (limited <= 40 || answers >= 120) fail_msg("%d answers, %d rate_limited", answers, limited);
  assert_true(answers < 120); /* the server stopped reading it */
  assert_true(wait_closed(s));
  mf_test_ws_free(s);
  assert_int_equal(metric(node_b.port, "mafalda_api_flood_closed_total "), 1);
  /* the reason is in the node's log; other sessions are unaffected */
  char cmd[256];
  snprintf(cmd, sizeof cmd, "grep -q 'closing it: flooding' %s", node_b.log);
  assert_int_equal(system(cmd), 0);
  call_ok(other, "system.ping", NULL, NULL);
  mf_test_ws_free(other);
}

/* ---------------------------------------------------------------- setup */

static int stop_node(node_t *n) {
  if (n->pid <= 0) return 0;
  kill(n->pid, SIGTERM);
  int status = mf_test_wait_status(n->wrapper);
  n->pid = 0;
  n->wrapper = 0;
  return status;
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/mf_limits_XXXXXX");
  if (!mkdtemp(dir)) return -1;
  char *a[] = {"--api-grace-ms", "0", "--api-rate", "0", "--max-session-transports", "2",
               "--max-session-producers", "1", "--max-session-consumers", "2",
               "--max-node-transports", "3",
               "--max-sessions", "3", NULL};
  char *b[] = {"--api-grace-ms", "5000", "--api-rate", "5", "--api-burst", "10",
               "--api-flood-close", "40", "--max-session-transports", "2", NULL};
  if (start_node(&node_a, "node_a", a) != 0 || start_node(&node_b, "node_b", b) != 0) {
    dump_log(&node_a);
    dump_log(&node_b);
    mf_test_stop_wrapped(&node_a.wrapper, 1);
    mf_test_stop_wrapped(&node_b.wrapper, 1);
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  /* SIGTERM: both exit 0 (under ASan, LeakSanitizer runs at exit and fails the status) */
  int sa = stop_node(&node_a), sb = stop_node(&node_b);
  if (sa != 0 || sb != 0) {
    fprintf(stderr, "node exit status: A %d, B %d\n", sa, sb);
    dump_log(&node_a);
    dump_log(&node_b);
  }
  if (!getenv("MF_TEST_KEEP")) mf_test_remove_dir(dir);
  nng_fini();
  return sa == 0 && sb == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s path/to/mafalda-node\n", argv[0]);
    return 2;
  }
  node_bin = argv[1];
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_session_transports),
      cmocka_unit_test(test_session_producers),
      cmocka_unit_test(test_session_consumers),
      cmocka_unit_test(test_node_transports),
      cmocka_unit_test(test_max_sessions),
      cmocka_unit_test(test_resume_carries_counts),
      cmocka_unit_test(test_rate_limited_then_works),
      cmocka_unit_test(test_flooding_session_is_closed),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
