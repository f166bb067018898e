/* A room over two nodes, in one process: two gateways ("node-a", "node-b"), each on its own
 * worker, "clustered" with one fake controller (OpenRouter, PlaceTransport on the asking
 * node, RouterNodes naming both, Apply and the rest accepted; PlacePipe left unanswered so
 * the origin pipes) and node -> node calls delivered straight to the other gateway's
 * mf_gateway_serve on a thread of their own. A client of node-b sees node-a's producer
 * (node.RoomSync / RoomEvent), consumes it through a PipeTransport between the nodes
 * (node.PipeOpen), which lingers and closes without consumers (node.PipeClose), hears its
 * pause, resume and close; node-b losing node-a closes what
 * came from it. And a transport the controller placed on the other node: the client's
 * calls about it (produce, consume, stats, pause, a refused connect, close) are forwarded. */
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
#include "node/srtp.h"
#include "proto/cluster.pb-c.h"
#include "proto/rpc.pb-c.h"
#include "tests/support/ws_client.h"
#include "tests/unit/api_fixture.h"

#define IO_MS 5000
#define ROUTER_ID "6f3d6c2f-8e0d-4d8f-8c4b-3e2e9f7b5d21"

typedef struct {
  mf_dtls_cert_t *cert;
  mf_worker_t *wa, *wb;
  mf_gateway_t *a, *b;
  int next_id;
} fx_t;

static fx_t g_fx;
static atomic_int g_outstanding, g_opened;
static atomic_bool g_elsewhere; /* PlaceTransport answers the OTHER node */

/* ------------------------------------------------------------ the fake cluster */

typedef struct {
  char method[64];
  char target[16];  /* node -> node: "node-a" / "node-b"; "" for the controller */
  char asker[16];   /* PlaceTransport: the node that asked */
  uint8_t *payload; /* node -> node: the request */
  size_t len;
  mf_gateway_call_done_fn done;
  void *ud;
} job_t;

static void *run_job(void *arg) {
  job_t *j = arg;
  Mafalda__Rpc__Envelope env = MAFALDA__RPC__ENVELOPE__INIT;
  env.status = MAFALDA__RPC__STATUS__STATUS_OK;
  uint8_t *buf = NULL;
  size_t len = 0;
  if (j->target[0]) {
    mf_gateway_t *gw = strcmp(j->target, "node-a") == 0 ? g_fx.a : g_fx.b;
    const ProtobufCMessageDescriptor *type = NULL;
    char err[256] = "";
    if (!gw || mf_gateway_serve(gw, j->method, j->payload, j->len, &buf, &len, &type, err, sizeof err) != MF_OK) {
      env.status = MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE;
      env.error_message = err;
      buf = NULL;
      len = 0;
    }
  } else if (strcmp(j->method, "controller.OpenRouter") == 0) {
    Mafalda__Cluster__OpenRouterResponse r = MAFALDA__CLUSTER__OPEN_ROUTER_RESPONSE__INIT;
    r.router_id = (char *)ROUTER_ID;
    r.created = atomic_fetch_add(&g_opened, 1) == 0;
    len = mafalda__cluster__open_router_response__get_packed_size(&r);
    buf = malloc(len ? len : 1);
    mafalda__cluster__open_router_response__pack(&r, buf);
  } else if (strcmp(j->method, "controller.PlaceTransport") == 0) {
    Mafalda__Cluster__PlaceTransportResponse r = MAFALDA__CLUSTER__PLACE_TRANSPORT_RESPONSE__INIT;
    const char *other = strcmp(j->asker, "node-a") == 0 ? "node-b" : "node-a";
    r.node_id = atomic_load(&g_elsewhere) ? (char *)other : j->asker;
    r.worker = 0;
    r.rpc_address = r.node_id;
    r.rule = (char *)"test";
    len = mafalda__cluster__place_transport_response__get_packed_size(&r);
    buf = malloc(len ? len : 1);
    mafalda__cluster__place_transport_response__pack(&r, buf);
  } else if (strcmp(j->method, "controller.RouterNodes") == 0) {
    Mafalda__Cluster__RouterNodesResponse r = MAFALDA__CLUSTER__ROUTER_NODES_RESPONSE__INIT;
    Mafalda__Cluster__RouterNode na = MAFALDA__CLUSTER__ROUTER_NODE__INIT, nb = MAFALDA__CLUSTER__ROUTER_NODE__INIT;
    na.node_id = (char *)"node-a";
    na.rpc_address = (char *)"node-a";
    nb.node_id = (char *)"node-b";
    nb.rpc_address = (char *)"node-b";
    Mafalda__Cluster__RouterNode *list[2] = {&na, &nb};
    r.n_nodes = 2;
    r.nodes = list;
    len = mafalda__cluster__router_nodes_response__get_packed_size(&r);
    buf = malloc(len ? len : 1);
    mafalda__cluster__router_nodes_response__pack(&r, buf);
  }
  env.payload.data = buf;
  env.payload.len = len;
  j->done(j->ud, MF_OK, &env);
  free(buf);
  free(j->payload);
  free(j);
  atomic_fetch_sub(&g_outstanding, 1);
  return NULL;
}

static mf_err_t start_job(job_t *j) {
  atomic_fetch_add(&g_outstanding, 1);
  pthread_t th;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  int rc = pthread_create(&th, &at, run_job, j);
  pthread_attr_destroy(&at);
  if (rc == 0) return MF_OK;
  atomic_fetch_sub(&g_outstanding, 1);
  free(j->payload);
  free(j);
  return MF_ERR_INTERNAL;
}

static mf_err_t fake_call(void *ctx, const char *method, uint8_t *payload, size_t len,
                          mf_gateway_call_done_fn done, void *ud) {
  job_t *j = calloc(1, sizeof *j);
  if (!j) {
    free(payload);
    return MF_ERR_NO_MEMORY;
  }
  snprintf(j->method, sizeof j->method, "%s", method);
  snprintf(j->asker, sizeof j->asker, "%s", (const char *)ctx);
  j->done = done;
  j->ud = ud;
  free(payload);
  (void)len;
  return start_job(j);
}

static mf_err_t fake_call_node(void *ctx, const char *rpc_address, const char *method, uint8_t *payload,
                               size_t len, mf_gateway_call_done_fn done, void *ud) {
  (void)ctx;
  job_t *j = calloc(1, sizeof *j);
  if (!j) {
    free(payload);
    return MF_ERR_NO_MEMORY;
  }
  snprintf(j->method, sizeof j->method, "%s", method);
  snprintf(j->target, sizeof j->target, "%s", rpc_address);
  j->payload = payload;
  j->len = len;
  j->done = done;
  j->ud = ud;
  return start_job(j);
}

static void fake_event(void *ctx, int kind, uint32_t worker, const char *object_id, const char *detail) {
  (void)ctx;
  (void)kind;
  (void)worker;
  (void)object_id;
  (void)detail;
}

static void settle(void) {
  for (int i = 0; i < 500 && atomic_load(&g_outstanding) > 0; i++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* ------------------------------------------------------------ fixture */

static mf_err_t start_node(mf_worker_t **w, mf_gateway_t **gw, const char *name) {
  mf_worker_options_t o = {.index = 0, .cpu = -1, .rtc_listen_ip = "127.0.0.1", .announced_ip = "127.0.0.1",
                           .cert = g_fx.cert};
  mf_err_t e = mf_worker_start(&o, w);
  if (e) return e;
  mf_gateway_options_t go = {.listen = "127.0.0.1:0", .secret = "", .static_dir = "", .pipe_linger_ms = 50,
                             .pipe_plain_rtp = true};
  e = mf_gateway_start(&go, w, 1, gw);
  if (e) return e;
  mf_gateway_cluster_t cl = {.call = fake_call, .call_node = fake_call_node, .event = fake_event,
                             .ctx = (void *)name};
  snprintf(cl.node_id, sizeof cl.node_id, "%s", name);
  snprintf(cl.rpc_address, sizeof cl.rpc_address, "%s", name);
  mf_gateway_set_cluster(*gw, &cl);
  return MF_OK;
}

static int setup(void **state) {
  memset(&g_fx, 0, sizeof g_fx);
  atomic_store(&g_opened, 0);
  atomic_store(&g_elsewhere, false);
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_ERROR, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  if (mf_srtp_library_init() || mf_dtls_cert_generate(&g_fx.cert)) return -1;
  if (start_node(&g_fx.wa, &g_fx.a, "node-a") || start_node(&g_fx.wb, &g_fx.b, "node-b")) return -1;
  g_fx.next_id = 1;
  *state = &g_fx;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  mf_gateway_set_cluster(f->a, NULL);
  mf_gateway_set_cluster(f->b, NULL);
  settle();
  mf_gateway_t *a = f->a, *b = f->b;
  f->a = f->b = NULL; /* late node -> node jobs find no gateway */
  mf_gateway_stop(a);
  mf_gateway_stop(b);
  mf_worker_stop(f->wa);
  mf_worker_stop(f->wb);
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

static void test_room_over_two_nodes(void **state) {
  fx_t *f = *state;
  nng_stream *ca = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->a), "", IO_MS);
  nng_stream *cb = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->b), "", IO_MS);
  assert_non_null(ca);
  assert_non_null(cb);
  json_decref(ok(f, ca, "router.join", json_pack("{s:s}", "roomId", "wide")));
  char ta[64], tb[64], pid[64], cid[64];
  id_into(ok(f, ca, "router.createWebRtcTransport", NULL), ta);
  id_into(ok(f, ca, "transport.produce", json_pack("{s:s, s:s, s:o}", "transportId", ta, "kind", "video",
                                                   "rtpParameters", json_loads(vp8_params, 0, NULL))),
          pid);
  settle();
  json_t *jb = ok(f, cb, "router.join", json_pack("{s:s}", "roomId", "wide"));
  json_t *caps = json_incref(json_object_get(json_object_get(jb, "data"), "rtpCapabilities"));
  json_decref(jb);
  id_into(ok(f, cb, "router.createWebRtcTransport", NULL), tb);
  /* node-b learns node-a's producer once it syncs with its peer (until then: not found);
   * a consumer on node-b of it comes through a pipe between the nodes */
  bool consumed = false;
  for (int i = 0; i < 150 && !consumed; i++) {
    settle();
    json_t *r = call(f, cb, "transport.consume", json_pack("{s:s, s:s, s:O}", "transportId", tb, "producerId",
                                                          pid, "rtpCapabilities", caps));
    consumed = json_is_true(json_object_get(r, "ok"));
    if (consumed) {
      id_into(r, cid);
    } else {
      json_decref(r);
      struct timespec ts = {0, 20 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  assert_true(consumed);
  mf_gateway_counts_t na, nb;
  mf_gateway_counts(f->a, &na, 1);
  mf_gateway_counts(f->b, &nb, 1);
  assert_int_equal(nb.node_pipes_in, 1);
  assert_int_equal(na.node_pipes_out, 1);
  json_decref(ok(f, ca, "producer.pause", json_pack("{s:s}", "producerId", pid)));
  assert_true(wait_event(cb, "consumer.producerpause", cid));
  json_decref(ok(f, ca, "producer.resume", json_pack("{s:s}", "producerId", pid)));
  assert_true(wait_event(cb, "consumer.producerresume", cid));
  json_decref(ok(f, cb, "consumer.requestKeyFrame", json_pack("{s:s}", "consumerId", cid)));
  /* the pipe's only consumer leaves: after the linger the pipe between the nodes closes on
   * both sides (node.PipeClose); a new consumer opens it again */
  json_decref(ok(f, cb, "consumer.close", json_pack("{s:s}", "consumerId", cid)));
  for (int i = 0; i < 150; i++) {
    settle();
    mf_gateway_counts(f->a, &na, 1);
    mf_gateway_counts(f->b, &nb, 1);
    if (nb.node_pipes_in == 0 && na.node_pipes_out == 0) break;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  assert_int_equal(nb.node_pipes_in, 0);
  assert_int_equal(na.node_pipes_out, 0);
  id_into(ok(f, cb, "transport.consume", json_pack("{s:s, s:s, s:O}", "transportId", tb, "producerId", pid,
                                                   "rtpCapabilities", caps)), cid);
  json_decref(ok(f, ca, "producer.close", json_pack("{s:s}", "producerId", pid)));
  assert_true(wait_event(cb, "consumer.producerclose", cid));
  /* a second producer, consumed on node-b; then gossip says node-a is gone: node-b closes
   * what came from it */
  char pid2[64], cid2[64];
  id_into(ok(f, ca, "transport.produce", json_pack("{s:s, s:s, s:o}", "transportId", ta, "kind", "video",
                                                   "rtpParameters", json_loads(vp8_params, 0, NULL))),
          pid2);
  bool consumed2 = false;
  for (int i = 0; i < 150 && !consumed2; i++) {
    settle();
    json_t *r = call(f, cb, "transport.consume", json_pack("{s:s, s:s, s:O}", "transportId", tb, "producerId",
                                                          pid2, "rtpCapabilities", caps));
    consumed2 = json_is_true(json_object_get(r, "ok"));
    if (consumed2) {
      id_into(r, cid2);
    } else {
      json_decref(r);
      struct timespec ts = {0, 20 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  assert_true(consumed2);
  mf_gateway_node_lost(f->b, "node-a");
  assert_true(wait_event(cb, "consumer.producerclose", cid2));
  settle();
  json_decref(caps);
  mf_test_ws_free(ca);
  mf_test_ws_free(cb);
}

/* node-a's client gets its transport on node-b (the controller placed it there): its calls
 * about that transport and what is made on it are forwarded, their answers and events come
 * back; a consumer of node-a's producer on it; closing it ends its objects. */
static void test_forwarded_transport(void **state) {
  fx_t *f = *state;
  nng_stream *ca = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->a), "", IO_MS);
  assert_non_null(ca);
  json_t *j = ok(f, ca, "router.join", json_pack("{s:s}", "roomId", "fwd"));
  json_t *caps = json_incref(json_object_get(json_object_get(j, "data"), "rtpCapabilities"));
  json_decref(j);
  char local[64], remote[64], pid[64], rpid[64], cid[64];
  id_into(ok(f, ca, "router.createWebRtcTransport", NULL), local);
  atomic_store(&g_elsewhere, true);
  json_t *t = ok(f, ca, "router.createWebRtcTransport", NULL);
  assert_non_null(json_object_get(json_object_get(t, "data"), "iceParameters"));
  id_into(t, remote);
  atomic_store(&g_elsewhere, false);
  id_into(ok(f, ca, "transport.produce", json_pack("{s:s, s:s, s:o}", "transportId", local, "kind", "video",
                                                   "rtpParameters", json_loads(vp8_params, 0, NULL))),
          pid);
  /* made on node-b through node-a */
  static const char *const opus =
      "{\"mid\":\"1\",\"codecs\":[{\"mimeType\":\"audio/opus\",\"payloadType\":111,\"clockRate\":48000,\"channels\":2}],"
      "\"encodings\":[{\"ssrc\":2222}]}";
  id_into(ok(f, ca, "transport.produce", json_pack("{s:s, s:s, s:o}", "transportId", remote, "kind", "audio",
                                                   "rtpParameters", json_loads(opus, 0, NULL))),
          rpid);
  json_decref(ok(f, ca, "producer.pause", json_pack("{s:s}", "producerId", rpid)));
  json_decref(ok(f, ca, "producer.getStats", json_pack("{s:s}", "producerId", rpid)));
  bool consumed = false;
  for (int i = 0; i < 150 && !consumed; i++) {
    settle();
    json_t *r = call(f, ca, "transport.consume", json_pack("{s:s, s:s, s:O}", "transportId", remote, "producerId",
                                                          pid, "rtpCapabilities", caps));
    consumed = json_is_true(json_object_get(r, "ok"));
    if (consumed) {
      id_into(r, cid);
    } else {
      json_decref(r);
      struct timespec ts = {0, 20 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  assert_true(consumed);
  json_decref(ok(f, ca, "consumer.getStats", json_pack("{s:s}", "consumerId", cid)));
  json_decref(ok(f, ca, "consumer.pause", json_pack("{s:s}", "consumerId", cid)));
  json_t *bad = call(f, ca, "transport.connect", json_pack("{s:s, s:{s:[]}}", "transportId", remote,
                                                          "dtlsParameters", "fingerprints"));
  assert_true(json_is_false(json_object_get(bad, "ok"))); /* node-b's refusal, relayed */
  json_decref(bad);
  json_decref(ok(f, ca, "transport.close", json_pack("{s:s}", "transportId", remote)));
  json_t *gone = call(f, ca, "producer.getStats", json_pack("{s:s}", "producerId", rpid));
  assert_true(json_is_false(json_object_get(gone, "ok")));
  json_decref(gone);
  settle();
  json_decref(caps);
  mf_test_ws_free(ca);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_room_over_two_nodes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_forwarded_transport, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
