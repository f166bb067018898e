/* The public API gateway on real workers, over real WebSockets on loopback: the call
 * sequence mediasoup-client makes (join, transports, connect, produce, consume, resume),
 * room notifications, per-session ownership of objects, clear errors, and the cascade when
 * a client's WebSocket closes. Media itself is covered by tests/interop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "node/gateway.h"
#include "node/srtp.h"
#include "tests/support/http_client.h"
#include "tests/support/ws_client.h"

#define IO_MS 5000

typedef struct {
  mf_dtls_cert_t *cert;
  mf_worker_t *workers[2];
  mf_gateway_t *gw;
  int next_id;
} fx_t;

static int setup_with_grace(void **state, unsigned grace_ms) {
  static fx_t f;
  memset(&f, 0, sizeof f);
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  if (mf_srtp_library_init() || mf_dtls_cert_generate(&f.cert)) return -1;
  for (uint32_t i = 0; i < 2; i++) {
    mf_worker_options_t o = {.index = i, .cpu = -1, .rtc_listen_ip = "127.0.0.1",
                             .announced_ip = "127.0.0.1", .cert = f.cert};
    if (mf_worker_start(&o, &f.workers[i])) return -1;
  }
  mf_gateway_options_t go = {.listen = "127.0.0.1:0", .secret = "", .static_dir = "",
                             .grace_ms = grace_ms};
  if (mf_gateway_start(&go, f.workers, 2, &f.gw)) return -1;
  f.next_id = 1;
  *state = &f;
  return 0;
}

static int setup(void **state) { return setup_with_grace(state, 0); }
static int setup_grace(void **state) { return setup_with_grace(state, 400); }

static int teardown(void **state) {
  fx_t *f = *state;
  mf_gateway_stop(f->gw);
  for (int i = 0; i < 2; i++) mf_worker_stop(f->workers[i]);
  mf_dtls_cert_free(f->cert);
  nng_fini();
  return 0;
}

static nng_stream *client(fx_t *f) {
  nng_stream *s = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
  assert_non_null(s);
  return s;
}

/* Sends a request and returns the response with its id; notifications that arrive in
 * between are appended to `events` (if not NULL). */
static json_t *call(fx_t *f, nng_stream *s, const char *method, json_t *data, json_t *events) {
  int id = f->next_id++;
  assert_int_equal(mf_test_api_send(s, id, method, data, IO_MS), 0);
  json_t *m = mf_test_api_answer(s, id, IO_MS, events);
  assert_non_null(m);
  return m;
}

static json_t *ok_data(json_t *resp) {
  if (!json_is_true(json_object_get(resp, "ok"))) {
    char *t = json_dumps(resp, 0);
    print_error("expected ok: %s\n", t);
    free(t);
    fail();
  }
  return json_object_get(resp, "data");
}

static void expect_error(json_t *resp, const char *code, const char *text) {
  assert_true(json_is_false(json_object_get(resp, "ok")));
  json_t *e = json_object_get(resp, "error");
  assert_string_equal(json_string_value(json_object_get(e, "code")), code);
  if (!strstr(json_string_value(json_object_get(e, "message")), text)) {
    print_error("message '%s' lacks '%s'\n", json_string_value(json_object_get(e, "message")), text);
    fail();
  }
  json_decref(resp);
}

/* Waits for a notification named `event` (already collected or arriving). */
static json_t *wait_event(nng_stream *s, json_t *events, const char *event) {
  size_t i;
  json_t *m;
  json_array_foreach(events, i, m) {
    if (strcmp(json_string_value(json_object_get(m, "event")) ? json_string_value(json_object_get(m, "event")) : "", event) == 0)
      return json_incref(m);
  }
  for (int n = 0; n < 20; n++) {
    m = mf_test_ws_recv(s, IO_MS);
    if (!m) break;
    const char *ev = json_string_value(json_object_get(m, "event"));
    if (ev && strcmp(ev, event) == 0) return m;
    json_decref(m);
  }
  print_error("no '%s' notification\n", event);
  fail();
  return NULL;
}

static const char *const vp8_params =
    "{\"mid\":\"0\",\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
    "\"rtcpFeedback\":[{\"type\":\"nack\"},{\"type\":\"nack\",\"parameter\":\"pli\"}]},"
    "{\"mimeType\":\"video/rtx\",\"payloadType\":97,\"clockRate\":90000,\"parameters\":{\"apt\":96}}],"
    "\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"id\":1}],"
    "\"encodings\":[{\"ssrc\":1111,\"rtx\":{\"ssrc\":2222}}],\"rtcp\":{\"cname\":\"c\"}}";

/* call() that must succeed; returns the response (decref it), *data points into it. */
static json_t *call_ok(fx_t *f, nng_stream *s, const char *method, json_t *data, json_t *events,
                       json_t **out) {
  json_t *r = call(f, s, method, data, events);
  *out = ok_data(r);
  return r;
}

static void test_mediasoup_client_flow(void **state) {
  fx_t *f = *state;
  nng_stream *a = client(f), *b = client(f);
  json_t *eb = json_array(), *d;

  /* before joining, room-scoped methods are refused; bad input is named */
  expect_error(call(f, a, "router.createWebRtcTransport", NULL, NULL), "invalid_state", "router.join");
  expect_error(call(f, a, "router.join", json_pack("{s:i}", "roomId", 5), NULL), "invalid_argument", "roomId");
  expect_error(call(f, a, "no.such.method", NULL, NULL), "not_found", "");

  json_t *ja = call_ok(f, a, "router.join", json_pack("{s:s}", "roomId", "room-1"), NULL, &d);
  json_t *caps = json_incref(json_object_get(d, "rtpCapabilities"));
  assert_true(json_array_size(json_object_get(caps, "codecs")) > 0);
  char router_id[64];
  snprintf(router_id, sizeof router_id, "%s", json_string_value(json_object_get(d, "routerId")));
  json_decref(ja);
  json_t *jb = call_ok(f, b, "router.join", json_pack("{s:s}", "roomId", "room-1"), eb, &d);
  assert_string_equal(json_string_value(json_object_get(d, "routerId")), router_id);
  json_decref(jb);
  expect_error(call(f, b, "router.join", json_pack("{s:s}", "roomId", "room-2"), eb), "invalid_state", "already joined");

  /* a's send transport and b's recv transport */
  char ta_id[64], tb_id[64];
  json_t *ta = call_ok(f, a, "router.createWebRtcTransport", NULL, NULL, &d);
  snprintf(ta_id, sizeof ta_id, "%s", json_string_value(json_object_get(d, "id")));
  assert_true(json_is_true(json_object_get(json_object_get(d, "iceParameters"), "iceLite")));
  assert_int_equal(json_array_size(json_object_get(d, "iceCandidates")), 1);
  json_t *fp = json_incref(json_array_get(json_object_get(json_object_get(d, "dtlsParameters"), "fingerprints"), 0));
  json_decref(ta);
  json_t *tb = call_ok(f, b, "router.createWebRtcTransport", NULL, eb, &d);
  snprintf(tb_id, sizeof tb_id, "%s", json_string_value(json_object_get(d, "id")));
  json_decref(tb);

  /* connect: malformed, someone else's transport, not an id, then right */
  expect_error(call(f, a, "transport.connect", json_pack("{s:s, s:{}}", "transportId", ta_id, "dtlsParameters"), NULL),
               "invalid_argument", "fingerprints");
  expect_error(call(f, b, "transport.connect", json_pack("{s:s}", "transportId", ta_id), eb), "not_found", "this session");
  expect_error(call(f, a, "transport.connect", json_pack("{s:s}", "transportId", "not-an-id"), NULL), "invalid_argument", "UUIDv4");
  json_decref(call_ok(f, a, "transport.connect",
                      json_pack("{s:s, s:{s:s, s:[O]}}", "transportId", ta_id, "dtlsParameters", "role",
                                "client", "fingerprints", fp), NULL, &d));
  expect_error(call(f, a, "transport.connect",
                    json_pack("{s:s, s:{s:[O]}}", "transportId", ta_id, "dtlsParameters", "fingerprints", fp), NULL),
               "invalid_state", "already called");
  json_decref(fp);

  /* produce: bad parameters name the field; good ones give an id and tell b */
  expect_error(call(f, a, "transport.produce",
                    json_pack("{s:s, s:s, s:{s:[]}}", "transportId", ta_id, "kind", "video", "rtpParameters", "codecs"), NULL),
               "invalid_argument", "");
  json_t *params = json_loads(vp8_params, 0, NULL);
  char producer_id[64];
  json_t *pr = call_ok(f, a, "transport.produce",
                       json_pack("{s:s, s:s, s:o, s:{s:s}}", "transportId", ta_id, "kind", "video",
                                 "rtpParameters", params, "appData", "name", "alice"), NULL, &d);
  snprintf(producer_id, sizeof producer_id, "%s", json_string_value(json_object_get(d, "id")));
  json_decref(pr);
  json_t *np = wait_event(b, eb, "router.newproducer");
  assert_string_equal(json_string_value(json_object_get(json_object_get(np, "data"), "id")), producer_id);
  assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(np, "data"), "appData"), "name")), "alice");
  json_decref(np);

  /* b lists and consumes it (paused, as mediasoup-client does), then resumes */
  json_t *lp = call_ok(f, b, "router.listProducers", NULL, eb, &d);
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(d, "producers"), 0), "id")), producer_id);
  json_decref(lp);
  json_t *cc = call_ok(f, b, "router.canConsume", json_pack("{s:s, s:O}", "producerId", producer_id, "rtpCapabilities", caps), eb, &d);
  assert_true(json_is_true(json_object_get(d, "canConsume")));
  json_decref(cc);
  char consumer_id[64];
  json_t *co = call_ok(f, b, "transport.consume",
                       json_pack("{s:s, s:s, s:O, s:b}", "transportId", tb_id, "producerId", producer_id,
                                 "rtpCapabilities", caps, "paused", 1), eb, &d);
  snprintf(consumer_id, sizeof consumer_id, "%s", json_string_value(json_object_get(d, "id")));
  assert_string_equal(json_string_value(json_object_get(d, "producerId")), producer_id);
  assert_string_equal(json_string_value(json_object_get(d, "kind")), "video");
  assert_true(json_is_true(json_object_get(d, "paused")));
  assert_non_null(json_object_get(json_object_get(d, "rtpParameters"), "encodings"));
  json_decref(co);
  json_decref(call_ok(f, b, "consumer.resume", json_pack("{s:s}", "consumerId", consumer_id), eb, &d));
  json_t *st = call_ok(f, b, "consumer.getStats", json_pack("{s:s}", "consumerId", consumer_id), eb, &d);
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(d, "stats"), 0), "type")), "outbound-rtp");
  json_decref(st);
  /* /metrics counts the objects per worker */
  char *m = test_http_get_body("127.0.0.1", mf_gateway_port(f->gw), "/metrics", 3000);
  assert_non_null(m);
  assert_non_null(strstr(m, "mafalda_workers 2"));
  assert_int_equal(test_metric_sum(m, "mafalda_worker_routers"), 1);
  assert_int_equal(test_metric_sum(m, "mafalda_worker_transports"), 2);
  assert_int_equal(test_metric_sum(m, "mafalda_worker_producers"), 1);
  assert_int_equal(test_metric_sum(m, "mafalda_worker_consumers"), 1);
  assert_non_null(strstr(m, "# TYPE mafalda_worker_packets_in_total counter"));
  free(m);
  /* b may not touch a's producer */
  expect_error(call(f, b, "producer.pause", json_pack("{s:s}", "producerId", producer_id), eb), "not_found", "this session");

  /* a pauses: b hears consumer.producerpause; a's WebSocket closes: b hears producerclose */
  json_decref(call_ok(f, a, "producer.pause", json_pack("{s:s}", "producerId", producer_id), NULL, &d));
  json_t *pp = wait_event(b, eb, "consumer.producerpause");
  assert_string_equal(json_string_value(json_object_get(pp, "target")), consumer_id);
  json_decref(pp);
  mf_test_ws_free(a);
  json_t *pc = wait_event(b, eb, "consumer.producerclose");
  assert_string_equal(json_string_value(json_object_get(pc, "target")), consumer_id);
  json_decref(pc);
  /* the consumer is gone with its producer */
  expect_error(call(f, b, "consumer.getStats", json_pack("{s:s}", "consumerId", consumer_id), eb), "not_found", "");
  json_decref(call_ok(f, b, "transport.close", json_pack("{s:s}", "transportId", tb_id), eb, &d));
  json_decref(caps);
  json_decref(eb);
  mf_test_ws_free(b);
}

static void test_router_create_close_and_layers(void **state) {
  fx_t *f = *state;
  nng_stream *c = client(f), *d = client(f);
  json_t *ed = json_array(), *data;
  json_t *r = call(f, c, "router.create",
                   json_pack("{s:s, s:[{s:s, s:s, s:i}]}", "roomId", "room-c", "mediaCodecs", "kind",
                             "video", "mimeType", "video/H265", "clockRate", 90000), NULL);
  assert_true(json_is_false(json_object_get(r, "ok")));
  const char *why = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
  if (!why || !strstr(why, "H265")) print_error("router.create error: %s\n", why ? why : "(none)");
  assert_non_null(why);
  assert_non_null(strstr(why, "H265"));
  json_decref(r);
  r = call_ok(f, c, "router.create",
              json_pack("{s:s, s:[{s:s, s:s, s:i, s:i}, {s:s, s:s, s:i}]}", "roomId", "room-c",
                        "mediaCodecs", "kind", "audio", "mimeType", "audio/opus", "clockRate", 48000,
                        "channels", 2, "kind", "video", "mimeType", "video/VP8", "clockRate", 90000),
              NULL, &data);
  json_t *caps = json_incref(json_object_get(data, "rtpCapabilities"));
  assert_int_equal(json_array_size(json_object_get(caps, "codecs")), 3); /* opus, VP8, rtx */
  json_decref(r);
  expect_error(call(f, d, "router.create", json_pack("{s:s}", "roomId", "room-c"), ed), "already_exists", "router.join");
  json_decref(call_ok(f, d, "router.join", json_pack("{s:s}", "roomId", "room-c"), ed, &data));

  /* router.close ends every transport in the room, with transport.routerclose */
  char td[64];
  r = call_ok(f, d, "router.createWebRtcTransport", NULL, ed, &data);
  snprintf(td, sizeof td, "%s", json_string_value(json_object_get(data, "id")));
  json_decref(r);
  json_decref(call_ok(f, c, "router.close", NULL, NULL, &data));
  json_t *rc = wait_event(d, ed, "transport.routerclose");
  assert_string_equal(json_string_value(json_object_get(rc, "target")), td);
  json_decref(rc);
  expect_error(call(f, d, "transport.connect", json_pack("{s:s}", "transportId", td), ed), "not_found", "");

  /* the next join makes a new router (same codecs); layers cannot be chosen yet */
  json_decref(call_ok(f, c, "router.join", json_pack("{s:s}", "roomId", "room-c"), NULL, &data));
  char tc[64], pid[64], cid[64];
  r = call_ok(f, c, "router.createWebRtcTransport", NULL, NULL, &data);
  snprintf(tc, sizeof tc, "%s", json_string_value(json_object_get(data, "id")));
  json_decref(r);
  r = call_ok(f, c, "transport.produce",
              json_pack("{s:s, s:s, s:o}", "transportId", tc, "kind", "video", "rtpParameters",
                        json_loads(vp8_params, 0, NULL)), NULL, &data);
  snprintf(pid, sizeof pid, "%s", json_string_value(json_object_get(data, "id")));
  json_decref(r);
  r = call_ok(f, d, "router.createWebRtcTransport", NULL, ed, &data);
  snprintf(td, sizeof td, "%s", json_string_value(json_object_get(data, "id")));
  json_decref(r);
  r = call_ok(f, d, "transport.consume",
              json_pack("{s:s, s:s, s:O}", "transportId", td, "producerId", pid, "rtpCapabilities", caps), ed, &data);
  snprintf(cid, sizeof cid, "%s", json_string_value(json_object_get(data, "id")));
  json_decref(r);
  /* a single-encoding producer has no layers to choose; a bad spatialLayer is refused first */
  expect_error(call(f, d, "consumer.setPreferredLayers", json_pack("{s:s, s:i}", "consumerId", cid, "spatialLayer", 1), ed),
               "unsupported", "neither simulcast nor SVC");
  expect_error(call(f, d, "consumer.setPreferredLayers", json_pack("{s:s, s:s}", "consumerId", cid, "spatialLayer", "x"), ed),
               "invalid_argument", "spatialLayer must be an integer");
  /* closing the router ends c's producer without c asking: c hears producer.close */
  json_t *ec = json_array();
  json_decref(call_ok(f, c, "router.close", NULL, ec, &data));
  json_t *pcl = wait_event(c, ec, "producer.close");
  assert_string_equal(json_string_value(json_object_get(pcl, "target")), pid);
  assert_string_equal(json_string_value(json_object_get(json_object_get(pcl, "data"), "reason")), "routerclose");
  json_decref(pcl);
  json_decref(ec);
  json_decref(caps);
  json_decref(ed);
  mf_test_ws_free(c);
  mf_test_ws_free(d);
}

/* A client whose WebSocket drops comes back with its resumeToken and keeps its objects;
 * one that does not come back loses them when the grace period ends. */
static void test_resume_within_grace(void **state) {
  fx_t *f = *state;
  nng_stream *a = client(f), *b = client(f);
  json_t *eb = json_array(), *d;
  json_t *r = call_ok(f, a, "router.join", json_pack("{s:s}", "roomId", "room-r"), NULL, &d);
  char token[64], ta[64], pid[64];
  snprintf(token, sizeof token, "%s", json_string_value(json_object_get(d, "resumeToken")));
  assert_int_equal(strlen(token), 36);
  json_t *caps = json_incref(json_object_get(d, "rtpCapabilities"));
  json_decref(r);
  r = call_ok(f, a, "router.createWebRtcTransport", NULL, NULL, &d);
  snprintf(ta, sizeof ta, "%s", json_string_value(json_object_get(d, "id")));
  json_decref(r);
  r = call_ok(f, a, "transport.produce",
              json_pack("{s:s, s:s, s:o}", "transportId", ta, "kind", "video", "rtpParameters",
                        json_loads(vp8_params, 0, NULL)), NULL, &d);
  snprintf(pid, sizeof pid, "%s", json_string_value(json_object_get(d, "id")));
  json_decref(r);
  mf_test_ws_free(a); /* the connection drops */

  nng_stream *a2 = client(f);
  expect_error(call(f, a2, "router.join", json_pack("{s:s, s:s}", "roomId", "room-r", "resumeToken",
                                                    "8f0e7c9a-3b1d-4c2e-9f8a-1b2c3d4e5f60"), NULL),
               "not_found", "resumeToken");
  nng_stream *a3 = client(f);
  json_decref(call_ok(f, a3, "router.join", json_pack("{s:s, s:s}", "roomId", "room-r", "resumeToken", token), NULL, &d));
  /* the adopted producer answers the new session */
  json_decref(call_ok(f, a3, "producer.pause", json_pack("{s:s}", "producerId", pid), NULL, &d));
  json_decref(call_ok(f, a3, "producer.resume", json_pack("{s:s}", "producerId", pid), NULL, &d));
  mf_test_ws_free(a2);

  /* b joins and consumes, then a3 drops for good: after the grace b hears producerclose */
  json_decref(call_ok(f, b, "router.join", json_pack("{s:s}", "roomId", "room-r"), eb, &d));
  char tb[64], cid[64];
  r = call_ok(f, b, "router.createWebRtcTransport", NULL, eb, &d);
  snprintf(tb, sizeof tb, "%s", json_string_value(json_object_get(d, "id")));
  json_decref(r);
  r = call_ok(f, b, "transport.consume",
              json_pack("{s:s, s:s, s:O}", "transportId", tb, "producerId", pid, "rtpCapabilities", caps), eb, &d);
  snprintf(cid, sizeof cid, "%s", json_string_value(json_object_get(d, "id")));
  json_decref(r);
  mf_test_ws_free(a3);
  json_t *pc = wait_event(b, eb, "consumer.producerclose");
  assert_string_equal(json_string_value(json_object_get(pc, "target")), cid);
  json_decref(pc);
  json_decref(caps);
  json_decref(eb);
  mf_test_ws_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_mediasoup_client_flow, setup, teardown),
      cmocka_unit_test_setup_teardown(test_router_create_close_and_layers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resume_within_grace, setup_grace, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
