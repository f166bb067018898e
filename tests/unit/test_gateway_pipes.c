/* Intra-node pipes through the public API: an in-process gateway on two workers joined by a
 * pipe hub, "clustered" with a fake controller (answers on its own thread: OpenRouter
 * creates the router, PlaceTransport alternates the two workers, Apply and every other
 * call succeed). A consumer whose transport landed on the other worker than its producer
 * gets the producer through a pipe: media state (pause/resume), keyframe requests and the
 * producer's close cross it; a second consumer on that worker reuses the pipe, which
 * lingers after its last consumer and then closes; the shard, producer and pipe records
 * reach the controller as Apply commands. Also how the controller's answers (refusals,
 * another creator's codecs, a full cluster, a bad worker) shape joins and placements, and a
 * data consumer on the other worker than its data producer (relayed), and a session whose
 * WebSocket ends taking its piped consumer along. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "node/gateway.h"
#include "node/pipe_hub.h"
#include "node/srtp.h"
#include "proto/cluster.pb-c.h"
#include "proto/rpc.pb-c.h"
#include "tests/support/ws_client.h"
#include "tests/unit/api_fixture.h"

#define IO_MS 5000

/* ------------------------------------------------------------ the fake controller */

typedef struct {
  atomic_int outstanding;
  atomic_uint placements;
  atomic_int opens, applies, others, events;
  /* answers: open 0 created, 1 refused, 2 with the creator's codecs, 3 with unusable codecs;
   * place 0 alternating workers, 1 no capacity, 2 a worker this node does not have */
  atomic_int open_mode, place_mode;
} ctl_t;

static ctl_t g_ctl;

typedef struct {
  char method[64];
  mf_gateway_call_done_fn done;
  void *ud;
} job_t;

static void *answer(void *arg) {
  job_t *j = arg;
  Mafalda__Rpc__Envelope env = MAFALDA__RPC__ENVELOPE__INIT;
  env.status = MAFALDA__RPC__STATUS__STATUS_OK;
  uint8_t *buf = NULL;
  size_t len = 0;
  int open_mode = atomic_load(&g_ctl.open_mode), place_mode = atomic_load(&g_ctl.place_mode);
  if (strcmp(j->method, "controller.OpenRouter") == 0 && open_mode == 1) {
    env.status = MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE;
    env.error_message = (char *)"no leader";
    atomic_fetch_add(&g_ctl.opens, 1);
  } else if (strcmp(j->method, "controller.PlaceTransport") == 0 && place_mode == 1) {
    env.status = MAFALDA__RPC__STATUS__STATUS_RESOURCE_EXHAUSTED;
    env.error_message = (char *)"cluster full";
  } else if (strcmp(j->method, "controller.OpenRouter") == 0) {
    Mafalda__Cluster__OpenRouterResponse r = MAFALDA__CLUSTER__OPEN_ROUTER_RESPONSE__INIT;
    r.router_id = (char *)"5e2c5b1e-7d9c-4c7e-9b3a-2f1d8e6a4c10";
    r.created = open_mode < 2;
    if (open_mode == 2)
      r.codecs_json = (char *)"[{\"kind\":\"audio\",\"mimeType\":\"audio/opus\",\"clockRate\":48000,\"channels\":2}]";
    if (open_mode == 3) r.codecs_json = (char *)"[{\"kind\":\"audio\"";
    len = mafalda__cluster__open_router_response__get_packed_size(&r);
    buf = malloc(len ? len : 1);
    mafalda__cluster__open_router_response__pack(&r, buf);
    atomic_fetch_add(&g_ctl.opens, 1);
  } else if (strcmp(j->method, "controller.PlaceTransport") == 0) {
    Mafalda__Cluster__PlaceTransportResponse r = MAFALDA__CLUSTER__PLACE_TRANSPORT_RESPONSE__INIT;
    r.node_id = (char *)"node-a";
    r.worker = place_mode == 2 ? 7 : atomic_fetch_add(&g_ctl.placements, 1) % 2;
    r.rule = (char *)"test";
    r.new_shard = r.worker == 1;
    len = mafalda__cluster__place_transport_response__get_packed_size(&r);
    buf = malloc(len ? len : 1);
    mafalda__cluster__place_transport_response__pack(&r, buf);
  } else if (strcmp(j->method, "controller.Apply") == 0) {
    atomic_fetch_add(&g_ctl.applies, 1);
  } else {
    atomic_fetch_add(&g_ctl.others, 1);
  }
  env.payload.data = buf;
  env.payload.len = len;
  j->done(j->ud, MF_OK, &env);
  free(buf);
  free(j);
  atomic_fetch_sub(&g_ctl.outstanding, 1);
  return NULL;
}

static mf_err_t fake_call(void *ctx, const char *method, uint8_t *payload, size_t len,
                          mf_gateway_call_done_fn done, void *ud) {
  (void)ctx;
  (void)len;
  free(payload);
  job_t *j = calloc(1, sizeof *j);
  if (!j) return MF_ERR_NO_MEMORY;
  snprintf(j->method, sizeof j->method, "%s", method);
  j->done = done;
  j->ud = ud;
  atomic_fetch_add(&g_ctl.outstanding, 1);
  pthread_t th;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  int rc = pthread_create(&th, &at, answer, j);
  pthread_attr_destroy(&at);
  if (rc != 0) {
    atomic_fetch_sub(&g_ctl.outstanding, 1);
    free(j);
    return MF_ERR_INTERNAL;
  }
  return MF_OK;
}

static void fake_event(void *ctx, int kind, uint32_t worker, const char *object_id, const char *detail) {
  (void)ctx;
  (void)kind;
  (void)worker;
  (void)object_id;
  (void)detail;
  atomic_fetch_add(&g_ctl.events, 1);
}

static void settle(void) {
  for (int i = 0; i < 500 && atomic_load(&g_ctl.outstanding) > 0; i++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* ------------------------------------------------------------ fixture */

typedef struct {
  mf_dtls_cert_t *cert;
  mf_worker_t *workers[2];
  mf_pipe_hub_t *hub;
  mf_gateway_t *gw;
  int next_id;
} fx_t;

static int setup(void **state) {
  static fx_t f;
  memset(&f, 0, sizeof f);
  memset(&g_ctl, 0, sizeof g_ctl);
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_ERROR, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  if (mf_srtp_library_init() || mf_dtls_cert_generate(&f.cert)) return -1;
  if (mf_pipe_hub_create(2, 0, &f.hub)) return -1;
  for (uint32_t i = 0; i < 2; i++) {
    mf_worker_options_t o = {.index = i, .cpu = -1, .rtc_listen_ip = "127.0.0.1",
                             .announced_ip = "127.0.0.1", .cert = f.cert};
    if (mf_worker_start(&o, &f.workers[i])) return -1;
  }
  mf_gateway_options_t go = {.listen = "127.0.0.1:0", .secret = "", .static_dir = "", .hub = f.hub,
                             .pipe_linger_ms = 50};
  if (mf_gateway_start(&go, f.workers, 2, &f.gw)) return -1;
  mf_gateway_cluster_t cl = {.node_id = "node-a", .rpc_address = "127.0.0.1:1", .call = fake_call,
                             .event = fake_event};
  mf_gateway_set_cluster(f.gw, &cl);
  f.next_id = 1;
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  mf_gateway_set_cluster(f->gw, NULL);
  settle();
  mf_gateway_stop(f->gw);
  for (int i = 0; i < 2; i++) mf_worker_stop(f->workers[i]);
  mf_pipe_hub_destroy(f->hub);
  mf_dtls_cert_free(f->cert);
  nng_fini();
  return 0;
}

static json_t *call(fx_t *f, nng_stream *s, const char *method, json_t *data) {
  return mf_test_api_call_or_fail(&f->next_id, s, method, data);
}

static json_t *ok(fx_t *f, nng_stream *s, const char *method, json_t *data) {
  return mf_test_api_ok(&f->next_id, s, method, data);
}

static void id_into(json_t *resp, char out[64]) {
  snprintf(out, 64, "%s", json_string_value(json_object_get(json_object_get(resp, "data"), "id")));
  json_decref(resp);
}

static bool wait_event(nng_stream *s, const char *event, const char *target) {
  return mf_test_api_wait_event(s, event, target);
}

static const char *const vp8_params =
    "{\"mid\":\"0\",\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
    "\"rtcpFeedback\":[{\"type\":\"nack\",\"parameter\":\"pli\"}]}],\"encodings\":[{\"ssrc\":1111}]}";

static void test_consumer_on_the_other_worker(void **state) {
  fx_t *f = *state;
  nng_stream *a = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
  nng_stream *b = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
  assert_non_null(a);
  assert_non_null(b);
  json_decref(ok(f, a, "router.join", json_pack("{s:s}", "roomId", "piped")));
  json_t *jb = ok(f, b, "router.join", json_pack("{s:s}", "roomId", "piped"));
  json_t *caps = json_incref(json_object_get(json_object_get(jb, "data"), "rtpCapabilities"));
  json_decref(jb);
  assert_int_equal(atomic_load(&g_ctl.opens), 1); /* the room's router, opened once */

  /* placements alternate: a's transport on worker 0, b's two on worker 1 and 0 */
  char ta[64], tb1[64], tb0[64], pid[64], c1[64], c2[64], c0[64];
  id_into(ok(f, a, "router.createWebRtcTransport", NULL), ta);
  id_into(ok(f, b, "router.createWebRtcTransport", NULL), tb1);
  id_into(ok(f, b, "router.createWebRtcTransport", NULL), tb0);
  id_into(ok(f, a, "transport.produce", json_pack("{s:s, s:s, s:o}", "transportId", ta, "kind", "video",
                                                  "rtpParameters", json_loads(vp8_params, 0, NULL))),
          pid);
  assert_true(wait_event(b, "router.newproducer", pid));
  /* worker 1: through a pipe; a second consumer there reuses it; worker 0: direct */
  id_into(ok(f, b, "transport.consume", json_pack("{s:s, s:s, s:O}", "transportId", tb1, "producerId", pid,
                                                  "rtpCapabilities", caps)), c1);
  id_into(ok(f, b, "transport.consume", json_pack("{s:s, s:s, s:O}", "transportId", tb1, "producerId", pid,
                                                  "rtpCapabilities", caps)), c2);
  id_into(ok(f, b, "transport.consume", json_pack("{s:s, s:s, s:O}", "transportId", tb0, "producerId", pid,
                                                  "rtpCapabilities", caps)), c0);
  mf_gateway_counts_t counts[2];
  mf_gateway_counts(f->gw, counts, 2);
  assert_int_equal(counts[0].pipes_out, 1);
  assert_int_equal(counts[1].pipes_in, 1);
  assert_int_equal(counts[1].consumers, 2);

  /* the producer's state crosses the pipe to the consumers on worker 1 */
  json_decref(ok(f, a, "producer.pause", json_pack("{s:s}", "producerId", pid)));
  assert_true(wait_event(b, "consumer.producerpause", c1));
  json_decref(ok(f, a, "producer.resume", json_pack("{s:s}", "producerId", pid)));
  assert_true(wait_event(b, "consumer.producerresume", c1));
  /* a keyframe request from a piped consumer reaches the origin without an error */
  json_decref(ok(f, b, "consumer.requestKeyFrame", json_pack("{s:s}", "consumerId", c2)));
  json_decref(ok(f, b, "consumer.getStats", json_pack("{s:s}", "consumerId", c1)));
  /* one consumer of the pipe leaves; the other keeps it */
  json_decref(ok(f, b, "consumer.close", json_pack("{s:s}", "consumerId", c2)));
  mf_gateway_counts(f->gw, counts, 2);
  assert_int_equal(counts[1].pipes_in, 1);
  /* the last consumer on worker 1 leaves: the pipe lingers, then closes; a new consumer
   * there opens it again */
  json_decref(ok(f, b, "consumer.close", json_pack("{s:s}", "consumerId", c1)));
  for (int i = 0; i < 100; i++) {
    mf_gateway_counts(f->gw, counts, 2);
    if (counts[1].pipes_in == 0) break;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  assert_int_equal(counts[1].pipes_in, 0);
  assert_int_equal(counts[0].pipes_out, 0);
  id_into(ok(f, b, "transport.consume", json_pack("{s:s, s:s, s:O}", "transportId", tb1, "producerId", pid,
                                                  "rtpCapabilities", caps)), c1);
  mf_gateway_counts(f->gw, counts, 2);
  assert_int_equal(counts[1].pipes_in, 1);
  /* the producer closes: every consumer hears it, on both workers */
  json_decref(ok(f, a, "producer.close", json_pack("{s:s}", "producerId", pid)));
  assert_true(wait_event(b, "consumer.producerclose", NULL));
  for (int i = 0; i < 100; i++) {
    mf_gateway_counts(f->gw, counts, 2);
    if (counts[0].pipes_out == 0 && counts[1].pipes_in == 0 && counts[1].consumers == 0) break;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  assert_int_equal(counts[1].consumers, 0);
  assert_int_equal(counts[0].consumers, 0);
  assert_int_equal(counts[1].pipes_in, 0);
  settle();
  assert_true(atomic_load(&g_ctl.applies) >= 2); /* at least the shard and the producer */
  (void)c0;
  json_decref(caps);
  mf_test_ws_free(a);
  mf_test_ws_free(b);
}

/* What the controller answers decides: a room it cannot open is served locally; one made
 * elsewhere brings the creator's codecs (or the defaults when they are unusable); a full
 * cluster refuses the transport with a clear error; a placement on a worker this node
 * does not have falls back to the room's home worker. */
static void test_controller_answers(void **state) {
  fx_t *f = *state;
  static const struct {
    int open_mode;
    const char *room;
    int codecs; /* -1: more than one (the defaults) */
  } joins[] = {{1, "local", -1}, {2, "theirs", 1}, {3, "broken", -1}};
  for (size_t i = 0; i < 3; i++) {
    nng_stream *s = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
    assert_non_null(s);
    atomic_store(&g_ctl.open_mode, joins[i].open_mode);
    json_t *j = ok(f, s, "router.join", json_pack("{s:s}", "roomId", joins[i].room));
    size_t n = json_array_size(
        json_object_get(json_object_get(json_object_get(j, "data"), "rtpCapabilities"), "codecs"));
    if (joins[i].codecs < 0)
      assert_true(n > 1);
    else
      assert_int_equal(n, (size_t)joins[i].codecs); /* opus only: the creator's list */
    json_decref(j);
    mf_test_ws_free(s);
  }
  atomic_store(&g_ctl.open_mode, 0);
  nng_stream *s = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
  assert_non_null(s);
  json_decref(ok(f, s, "router.join", json_pack("{s:s}", "roomId", "placed")));
  atomic_store(&g_ctl.place_mode, 1);
  json_t *r = call(f, s, "router.createWebRtcTransport", NULL);
  assert_true(json_is_false(json_object_get(r, "ok")));
  assert_non_null(strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
                         "no capacity"));
  json_decref(r);
  atomic_store(&g_ctl.place_mode, 2);
  json_decref(ok(f, s, "router.createWebRtcTransport", NULL));
  atomic_store(&g_ctl.place_mode, 0);
  mf_test_ws_free(s);
}

/* A data consumer on the other worker than its data producer: the producer's worker relays
 * (a relay copy of the data producer is made there); the data producer's close reaches the
 * copy and its consumer; a session's closed WebSocket takes its piped consumer along. */
static void test_data_relay_and_session_end(void **state) {
  fx_t *f = *state;
  nng_stream *a = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
  nng_stream *b = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
  json_decref(ok(f, a, "router.join", json_pack("{s:s}", "roomId", "relay")));
  json_t *jb = ok(f, b, "router.join", json_pack("{s:s}", "roomId", "relay"));
  json_t *caps = json_incref(json_object_get(json_object_get(jb, "data"), "rtpCapabilities"));
  json_decref(jb);
  char ta[64], tb[64], dpid[64], pid[64], cid[64];
  atomic_store(&g_ctl.placements, 0);
  id_into(ok(f, a, "router.createWebRtcTransport", json_pack("{s:b}", "enableSctp", 1)), ta); /* worker 0 */
  id_into(ok(f, b, "router.createWebRtcTransport", json_pack("{s:b}", "enableSctp", 1)), tb); /* worker 1 */
  id_into(ok(f, a, "transport.produceData", json_pack("{s:s, s:{s:i}, s:s}", "transportId", ta,
                                                      "sctpStreamParameters", "streamId", 0, "label", "l")),
          dpid);
  json_t *dc = ok(f, b, "transport.consumeData", json_pack("{s:s, s:s}", "transportId", tb, "dataProducerId", dpid));
  assert_string_equal(json_string_value(json_object_get(json_object_get(dc, "data"), "label")), "l");
  char dcid[64];
  snprintf(dcid, sizeof dcid, "%s", json_string_value(json_object_get(json_object_get(dc, "data"), "id")));
  json_decref(dc);
  json_decref(ok(f, b, "dataConsumer.getStats", json_pack("{s:s}", "dataConsumerId", dcid)));
  json_decref(ok(f, a, "dataProducer.close", json_pack("{s:s}", "dataProducerId", dpid)));
  assert_true(wait_event(b, "dataConsumer.dataproducerclose", dcid));

  /* b consumes a's producer from worker 1, then b's WebSocket goes away */
  id_into(ok(f, a, "transport.produce", json_pack("{s:s, s:s, s:o}", "transportId", ta, "kind", "video",
                                                  "rtpParameters", json_loads(vp8_params, 0, NULL))),
          pid);
  id_into(ok(f, b, "transport.consume", json_pack("{s:s, s:s, s:O}", "transportId", tb, "producerId", pid,
                                                  "rtpCapabilities", caps)), cid);
  mf_gateway_counts_t counts[2];
  mf_gateway_counts(f->gw, counts, 2);
  assert_int_equal(counts[1].pipes_in, 1);
  mf_test_ws_free(b);
  for (int i = 0; i < 200; i++) {
    mf_gateway_counts(f->gw, counts, 2);
    if (counts[1].consumers == 0 && counts[1].pipes_in == 0) break;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  assert_int_equal(counts[1].consumers, 0);
  assert_int_equal(counts[1].pipes_in, 0); /* lingered, then closed */
  json_decref(ok(f, a, "producer.getStats", json_pack("{s:s}", "producerId", pid)));
  json_decref(caps);
  mf_test_ws_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_consumer_on_the_other_worker, setup, teardown),
      cmocka_unit_test_setup_teardown(test_controller_answers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_relay_and_session_end, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
