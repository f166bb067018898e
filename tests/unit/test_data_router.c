/* DataProducer / DataConsumer control paths on a real RTC server (no SCTP peer): option
 * and sctpStreamParameters tables, stream id checks and allocation, the answers' shapes,
 * and the close cascade (dataproducerclose). Messages end to end: test_sctp_association
 * and tests/browser/datachannel.test.mjs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "tests/unit/router_fixture.h"
#include "common/log.h"
#include "node/data_router.h"
#include "node/router.h"

typedef struct {
  uv_loop_t loop;
  mf_bufpool_t *pool;
  mf_dtls_cert_t *cert;
  mf_rtc_server_t *server;
  mf_router_t *router;
  int dataproducerclose;
  char last_target[64];
} fx_t;

static void on_event(void *ud, const char *event, const char *target, json_t *data) {
  fx_t *f = ud;
  if (strcmp(event, "dataproducerclose") == 0) {
    f->dataproducerclose++;
    snprintf(f->last_target, sizeof f->last_target, "%s", target);
  }
  json_decref(data);
}

static int setup(void **state) {
  static fx_t f;
  memset(&f, 0, sizeof f);
  if (mf_test_router_open(&f.loop, 64, &f.pool, &f.cert, &f.server, &f.router, on_event, &f))
    return -1;
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  if (mf_test_router_close(&f->loop, f->pool, f->cert, f->server, f->router)) return -1;
  return 0;
}

static json_t *J(const char *text) {
  json_t *j = json_loads(text, 0, NULL);
  assert_non_null(j);
  return j;
}

static void test_stream_parameters_table(void **state) {
  (void)state;
  static const struct {
    const char *json;
    mf_err_t want;
    int sid, ordered, rtx, life;
  } rows[] = {
      {"{\"streamId\":0}", MF_OK, 0, 1, -1, -1},
      {"{\"streamId\":7,\"ordered\":false}", MF_OK, 7, 0, -1, -1},
      {"{\"streamId\":3,\"maxRetransmits\":0}", MF_OK, 3, 0, 0, -1},
      {"{\"streamId\":3,\"maxPacketLifeTime\":1500}", MF_OK, 3, 0, -1, 1500},
      {"{\"streamId\":3,\"ordered\":true,\"maxRetransmits\":2}", MF_OK, 3, 1, 2, -1},
      {"{\"streamId\":65534,\"maxRetransmits\":null}", MF_OK, 65534, 1, -1, -1},
      {"{}", MF_ERR_INVALID_ARG, 0, 0, 0, 0},
      {"{\"streamId\":-1}", MF_ERR_INVALID_ARG, 0, 0, 0, 0},
      {"{\"streamId\":65535}", MF_ERR_INVALID_ARG, 0, 0, 0, 0},
      {"{\"streamId\":\"1\"}", MF_ERR_INVALID_ARG, 0, 0, 0, 0},
      {"{\"streamId\":1,\"ordered\":1}", MF_ERR_INVALID_ARG, 0, 0, 0, 0},
      {"{\"streamId\":1,\"maxRetransmits\":1,\"maxPacketLifeTime\":1}", MF_ERR_INVALID_ARG, 0, 0, 0, 0},
      {"{\"streamId\":1,\"maxRetransmits\":70000}", MF_ERR_INVALID_ARG, 0, 0, 0, 0},
      {"[1]", MF_ERR_INVALID_ARG, 0, 0, 0, 0},
      {"{\"streamId\":1,\"ordered\":false,\"maxPacketLifeTime\":10}", MF_OK, 1, 0, -1, 10},
      {"{\"streamId\":1,\"maxPacketLifeTime\":null}", MF_OK, 1, 1, -1, -1},
      {"{\"streamId\":null}", MF_ERR_INVALID_ARG, 0, 0, 0, 0},
      {"{\"streamId\":1,\"ordered\":null}", MF_ERR_INVALID_ARG, 0, 0, 0, 0},
      {"{\"streamId\":1,\"maxPacketLifeTime\":-1}", MF_ERR_INVALID_ARG, 0, 0, 0, 0},
      {"{\"streamId\":1,\"maxRetransmits\":1.5}", MF_ERR_INVALID_ARG, 0, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    json_t *j = J(rows[i].json);
    mf_sctp_stream_parameters_t p;
    char err[256] = "";
    mf_err_t e = mf_sctp_stream_parameters_from_json(j, &p, err, sizeof err);
    if (e != rows[i].want) fail_msg("%s: got %s (%s)", rows[i].json, mf_strerror(e), err);
    if (e == MF_OK) {
      assert_int_equal(p.stream_id, rows[i].sid);
      assert_int_equal(p.send.ordered, rows[i].ordered);
      assert_int_equal(p.send.max_retransmits, rows[i].rtx);
      assert_int_equal(p.send.max_packet_life_time, rows[i].life);
      json_t *back = mf_sctp_stream_parameters_to_json(&p);
      mf_sctp_stream_parameters_t q;
      assert_int_equal(mf_sctp_stream_parameters_from_json(back, &q, err, sizeof err), MF_OK);
      assert_memory_equal(&p, &q, sizeof p);
      json_decref(back);
    } else {
      assert_true(err[0] != '\0');
    }
    json_decref(j);
  }
  assert_int_equal(mf_sctp_stream_parameters_from_json(NULL, &(mf_sctp_stream_parameters_t){0},
                                                       (char[64]){0}, 64),
                   MF_ERR_INVALID_ARG);
}

static void test_sctp_options_table(void **state) {
  (void)state;
  static const struct {
    const char *json;
    mf_err_t want;
    int enabled, os, mis;
    unsigned max;
  } rows[] = {
      {"{}", MF_OK, 0, 0, 0, 0},
      {"{\"enableSctp\":false,\"numSctpStreams\":\"junk\"}", MF_OK, 0, 0, 0, 0},
      {"{\"enableSctp\":true}", MF_OK, 1, 0, 0, 0},
      {"{\"enableSctp\":true,\"numSctpStreams\":{\"OS\":16,\"MIS\":2048},\"maxSctpMessageSize\":1000}",
       MF_OK, 1, 16, 2048, 1000},
      {"{\"enableSctp\":true,\"numSctpStreams\":{\"OS\":0,\"MIS\":1}}", MF_ERR_INVALID_ARG, 1, 0, 0, 0},
      {"{\"enableSctp\":true,\"numSctpStreams\":{\"OS\":1}}", MF_ERR_INVALID_ARG, 1, 0, 0, 0},
      {"{\"enableSctp\":true,\"numSctpStreams\":{\"OS\":70000,\"MIS\":1}}", MF_ERR_INVALID_ARG, 1, 0, 0, 0},
      {"{\"enableSctp\":true,\"maxSctpMessageSize\":0}", MF_ERR_INVALID_ARG, 1, 0, 0, 0},
      {"{\"enableSctp\":true,\"maxSctpMessageSize\":20000000}", MF_ERR_INVALID_ARG, 1, 0, 0, 0},
      {"{\"enableSctp\":true,\"numSctpStreams\":null,\"maxSctpMessageSize\":null}", MF_OK, 1, 0, 0, 0},
      {"{\"enableSctp\":true,\"maxSctpMessageSize\":16777216}", MF_OK, 1, 0, 0, 16777216},
      {"{\"enableSctp\":true,\"numSctpStreams\":[]}", MF_ERR_INVALID_ARG, 1, 0, 0, 0},
      {"{\"enableSctp\":true,\"numSctpStreams\":{\"OS\":\"1\",\"MIS\":1}}", MF_ERR_INVALID_ARG, 1, 0, 0, 0},
      {"{\"enableSctp\":true,\"numSctpStreams\":{\"OS\":1,\"MIS\":0}}", MF_ERR_INVALID_ARG, 1, 0, 0, 0},
      {"{\"enableSctp\":true,\"numSctpStreams\":{\"OS\":1,\"MIS\":70000}}", MF_ERR_INVALID_ARG, 1, 0, 0, 0},
      {"{\"enableSctp\":true,\"maxSctpMessageSize\":\"big\"}", MF_ERR_INVALID_ARG, 1, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    json_t *j = J(rows[i].json);
    mf_sctp_options_t o;
    memset(&o, 0, sizeof o);
    bool enabled = false;
    char err[256] = "";
    mf_err_t e = mf_sctp_options_from_json(j, &enabled, &o, err, sizeof err);
    if (e != rows[i].want) fail_msg("%s: got %s (%s)", rows[i].json, mf_strerror(e), err);
    assert_int_equal(enabled, rows[i].enabled);
    if (e == MF_OK && enabled) {
      assert_int_equal(o.os, rows[i].os);
      assert_int_equal(o.mis, rows[i].mis);
      assert_int_equal(o.max_message_size, rows[i].max);
    }
    json_decref(j);
  }
}

static mf_router_transport_t *sctp_transport(fx_t *f, uint16_t os, uint16_t mis) {
  mf_router_transport_t *t = NULL;
  assert_int_equal(mf_router_create_webrtc_transport(f->router, &t), MF_OK);
  mf_sctp_options_t o = {.os = os, .mis = mis};
  assert_int_equal(mf_router_transport_enable_sctp(t, &o), MF_OK);
  assert_true(mf_router_transport_sctp_enabled(t));
  assert_int_equal(mf_router_transport_enable_sctp(t, &o), MF_ERR_STATE);
  return t;
}

static mf_data_producer_t *produce(mf_router_transport_t *t, const char *data, mf_err_t want) {
  json_t *j = J(data);
  mf_data_producer_t *p = NULL;
  char err[256] = "";
  mf_err_t e = mf_router_produce_data(t, j, err, sizeof err, &p);
  if (e != want) fail_msg("%s: got %s (%s)", data, mf_strerror(e), err);
  json_decref(j);
  return e == MF_OK ? p : NULL;
}

static void test_produce_consume_and_cascade(void **state) {
  fx_t *f = *state;
  /* without SCTP */
  mf_router_transport_t *plain = NULL;
  assert_int_equal(mf_router_create_webrtc_transport(f->router, &plain), MF_OK);
  produce(plain, "{\"sctpStreamParameters\":{\"streamId\":0}}", MF_ERR_STATE);
  json_t *params = mf_webrtc_transport_parameters_json(mf_router_transport_webrtc(plain));
  assert_null(json_object_get(params, "sctpParameters"));
  json_decref(params);

  mf_router_transport_t *a = sctp_transport(f, 8, 4);
  mf_router_transport_t *b = sctp_transport(f, 3, 3);
  params = mf_webrtc_transport_parameters_json(mf_router_transport_webrtc(a));
  json_t *sp = json_object_get(params, "sctpParameters");
  assert_int_equal(json_integer_value(json_object_get(sp, "port")), 5000);
  assert_int_equal(json_integer_value(json_object_get(sp, "OS")), 8);
  assert_int_equal(json_integer_value(json_object_get(sp, "MIS")), 4);
  assert_int_equal(json_integer_value(json_object_get(sp, "maxMessageSize")), 262144);
  assert_string_equal(json_string_value(json_object_get(params, "sctpState")), "new");
  json_decref(params);

  produce(a, "{\"sctpStreamParameters\":{\"streamId\":4}}", MF_ERR_INVALID_ARG); /* >= MIS */
  produce(a, "{\"sctpStreamParameters\":{\"streamId\":1},\"label\":7}", MF_ERR_INVALID_ARG);
  produce(a, "{}", MF_ERR_INVALID_ARG);
  produce(a, "{\"sctpStreamParameters\":{\"streamId\":1},\"protocol\":[]}", MF_ERR_INVALID_ARG);
  {
    /* a label over MF_DATA_LABEL_MAX bytes; null label/protocol/appData read as absent */
    char big[MF_DATA_LABEL_MAX + 64];
    int n = snprintf(big, sizeof big, "{\"sctpStreamParameters\":{\"streamId\":1},\"label\":\"");
    memset(big + n, 'l', MF_DATA_LABEL_MAX + 1);
    snprintf(big + n + MF_DATA_LABEL_MAX + 1, sizeof big - (size_t)n - MF_DATA_LABEL_MAX - 1, "\"}");
    produce(a, big, MF_ERR_INVALID_ARG);
    mf_data_producer_t *nulls = produce(
        a, "{\"sctpStreamParameters\":{\"streamId\":3},\"label\":null,\"protocol\":null,\"appData\":7}",
        MF_OK);
    json_t *nj = mf_data_producer_to_json(nulls);
    assert_string_equal(json_string_value(json_object_get(nj, "label")), "");
    assert_true(json_is_object(json_object_get(nj, "appData")));
    json_decref(nj);
    mf_data_producer_close(nulls);
  }
  mf_data_producer_t *chat = produce(
      a, "{\"sctpStreamParameters\":{\"streamId\":1},\"label\":\"chat\",\"protocol\":\"p\",\"appData\":{\"x\":1}}",
      MF_OK);
  produce(a, "{\"sctpStreamParameters\":{\"streamId\":1}}", MF_ERR_EXISTS);
  mf_data_producer_t *fast = produce(
      a, "{\"sctpStreamParameters\":{\"streamId\":2,\"ordered\":false,\"maxRetransmits\":0},\"label\":\"fast\"}",
      MF_OK);
  assert_ptr_equal(mf_router_find_data_producer(f->router, mf_data_producer_id(chat)), chat);
  json_t *pj = mf_data_producer_to_json(chat);
  assert_string_equal(json_string_value(json_object_get(pj, "label")), "chat");
  assert_string_equal(json_string_value(json_object_get(pj, "protocol")), "p");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(pj, "appData"), "x")), 1);
  json_decref(pj);

  char err[256];
  mf_data_consumer_t *c1 = NULL, *c2 = NULL, *c3 = NULL, *c4 = NULL, *self = NULL;
  assert_int_equal(mf_router_consume_data(b, "00000000-0000-4000-8000-000000000000", err,
                                          sizeof err, &c1), MF_ERR_NOT_FOUND);
  assert_int_equal(mf_router_consume_data(plain, mf_data_producer_id(chat), err, sizeof err, &c1),
                   MF_ERR_STATE);
  /* b's streams: the lowest free one each time, up to its OS (3) */
  assert_int_equal(mf_router_consume_data(b, mf_data_producer_id(chat), err, sizeof err, &c1), MF_OK);
  assert_int_equal(mf_router_consume_data(b, mf_data_producer_id(fast), err, sizeof err, &c2), MF_OK);
  assert_int_equal(mf_router_consume_data(b, mf_data_producer_id(chat), err, sizeof err, &c3), MF_OK);
  assert_int_equal(mf_router_consume_data(b, mf_data_producer_id(chat), err, sizeof err, &c4),
                   MF_ERR_LIMIT);
  json_t *cj = mf_data_consumer_to_json(c2);
  json_t *csp = json_object_get(cj, "sctpStreamParameters");
  assert_int_equal(json_integer_value(json_object_get(csp, "streamId")), 1);
  assert_false(json_is_true(json_object_get(csp, "ordered")));
  assert_int_equal(json_integer_value(json_object_get(csp, "maxRetransmits")), 0);
  assert_string_equal(json_string_value(json_object_get(cj, "dataProducerId")), mf_data_producer_id(fast));
  assert_string_equal(json_string_value(json_object_get(cj, "label")), "fast");
  json_decref(cj);
  /* a freed stream is reused */
  mf_data_consumer_close(c1);
  assert_int_equal(mf_router_consume_data(b, mf_data_producer_id(chat), err, sizeof err, &c4), MF_OK);
  cj = mf_data_consumer_to_json(c4);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(cj, "sctpStreamParameters"),
                                                      "streamId")), 0);
  json_decref(cj);
  /* on the producer's own transport, the streams it produces on are skipped */
  assert_int_equal(mf_router_consume_data(a, mf_data_producer_id(fast), err, sizeof err, &self), MF_OK);
  cj = mf_data_consumer_to_json(self);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(cj, "sctpStreamParameters"),
                                                      "streamId")), 0);
  json_decref(cj);
  mf_data_consumer_t *self2 = NULL;
  assert_int_equal(mf_router_consume_data(a, mf_data_producer_id(fast), err, sizeof err, &self2), MF_OK);
  cj = mf_data_consumer_to_json(self2);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(cj, "sctpStreamParameters"),
                                                      "streamId")), 3);
  json_decref(cj);

  /* closing chat: its two consumers on b get dataproducerclose */
  char c3id[64];
  snprintf(c3id, sizeof c3id, "%s", mf_data_consumer_id(c3));
  mf_data_producer_close(chat);
  assert_int_equal(f->dataproducerclose, 2);
  assert_null(mf_router_find_data_consumer(f->router, c3id));
  /* closing transport a: fast goes, with c2 on b and the two on a itself */
  f->dataproducerclose = 0;
  char c2id[64];
  snprintf(c2id, sizeof c2id, "%s", mf_data_consumer_id(c2));
  mf_router_transport_close(a);
  assert_int_equal(f->dataproducerclose, 1);
  assert_string_equal(f->last_target, c2id);
  assert_null(mf_router_find_data_consumer(f->router, c2id));
  mf_router_transport_close(b);
  mf_router_transport_close(plain);
}

typedef struct {
  int messages, closes, frees;
  uint64_t workers;
  char id[64];
} relay_log_t;

static void relay_fn(void *ud, const char *dpid, uint64_t workers, uint32_t ppid,
                     const uint8_t *data, size_t len, bool closed) {
  relay_log_t *l = ud;
  (void)ppid;
  (void)data;
  (void)len;
  if (closed) l->closes++;
  else l->messages++;
  l->workers = workers;
  snprintf(l->id, sizeof l->id, "%s", dpid);
}

static void relay_free(void *ud) { ((relay_log_t *)ud)->frees++; }

static void test_relay_copies(void **state) {
  fx_t *f = *state;
  static relay_log_t log1;
  memset(&log1, 0, sizeof log1);
  char err[256];
  mf_router_t *other = NULL; /* another worker's shard of the room, in the test one loop */
  assert_int_equal(mf_router_create(f->server, mf_router_id(f->router), NULL, 0, on_event, f, err,
                                    sizeof err, &other), MF_OK);
  mf_router_set_data_relay(f->router, relay_fn, &log1, relay_free);
  assert_true(mf_router_has_data_relay(f->router));
  mf_router_set_data_relay(f->router, relay_fn, &log1, relay_free); /* once: the 2nd ud is freed */
  assert_int_equal(log1.frees, 1);

  mf_router_transport_t *a = sctp_transport(f, 8, 8);
  mf_data_producer_t *p = produce(
      a, "{\"sctpStreamParameters\":{\"streamId\":5,\"ordered\":false,\"maxPacketLifeTime\":300},\"label\":\"l\"}",
      MF_OK);
  assert_int_equal(mf_data_producer_add_relay(p, 64), MF_ERR_LIMIT);
  assert_int_equal(mf_data_producer_add_relay(p, 1), MF_OK);
  assert_int_equal(mf_data_producer_add_relay(p, 1), MF_OK);
  assert_int_equal(mf_data_producer_add_relay(p, 3), MF_OK);

  json_t *desc = mf_data_producer_to_json(p);
  mf_data_producer_t *copy = NULL;
  json_t *noid = json_deep_copy(desc);
  json_object_del(noid, "id");
  assert_int_equal(mf_router_relay_data_producer(other, noid, err, sizeof err, &copy), MF_ERR_INVALID_ARG);
  json_decref(noid);
  assert_int_equal(mf_router_relay_data_producer(f->router, desc, err, sizeof err, &copy), MF_ERR_EXISTS);
  assert_int_equal(mf_router_relay_data_producer(other, desc, err, sizeof err, &copy), MF_OK);
  assert_true(mf_data_producer_is_relay(copy));
  assert_false(mf_data_producer_is_relay(p));
  assert_int_equal(mf_data_producer_add_relay(copy, 2), MF_ERR_STATE);
  assert_ptr_equal(mf_router_find_data_producer(other, mf_data_producer_id(p)), copy);
  json_t *cd = mf_data_producer_to_json(copy);
  assert_true(json_equal(cd, desc));
  json_decref(cd);
  json_decref(desc);

  /* a consumer of the copy on the other shard gets the origin's reliability */
  mf_router_transport_t *b = NULL;
  assert_int_equal(mf_router_create_webrtc_transport(other, &b), MF_OK);
  mf_sctp_options_t o = {0};
  assert_int_equal(mf_router_transport_enable_sctp(b, &o), MF_OK);
  mf_data_consumer_t *c = NULL;
  assert_int_equal(mf_router_consume_data(b, mf_data_producer_id(p), err, sizeof err, &c), MF_OK);
  json_t *cj = mf_data_consumer_to_json(c);
  json_t *csp = json_object_get(cj, "sctpStreamParameters");
  assert_int_equal(json_integer_value(json_object_get(csp, "maxPacketLifeTime")), 300);
  assert_false(json_is_true(json_object_get(csp, "ordered")));
  json_decref(cj);
  /* a relayed message reaches it (dropped here: no SCTP peer connected) */
  mf_data_producer_deliver(copy, MF_SCTP_PPID_STRING, (const uint8_t *)"hi", 2);
  json_t *st = mf_data_consumer_stats_json(c);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(st, 0), "messagesDropped")), 1);
  json_decref(st);

  /* the origin's close is relayed once, to every target */
  char pid[64], cid[64];
  snprintf(pid, sizeof pid, "%s", mf_data_producer_id(p));
  snprintf(cid, sizeof cid, "%s", mf_data_consumer_id(c));
  mf_data_producer_close(p);
  assert_int_equal(log1.closes, 1);
  assert_int_equal(log1.messages, 0);
  assert_int_equal(log1.workers, (1u << 1) | (1u << 3));
  assert_string_equal(log1.id, pid);
  /* ...and the target closes its copy: the consumer gets dataproducerclose */
  f->dataproducerclose = 0;
  mf_data_producer_close(copy);
  assert_int_equal(f->dataproducerclose, 1);
  assert_string_equal(f->last_target, cid);
  assert_null(mf_router_find_data_producer(other, pid));
  assert_int_equal(log1.closes, 1); /* a copy relays nothing */

  /* a copy left when its shard closes is freed with it */
  desc = json_pack("{s:s, s:{s:i}, s:s}", "id", pid, "sctpStreamParameters", "streamId", 1, "label", "x");
  assert_int_equal(mf_router_relay_data_producer(other, desc, err, sizeof err, &copy), MF_OK);
  json_decref(desc);
  mf_router_close(other);
  mf_router_close(f->router);
  f->router = NULL;
  for (int i = 0; i < 3; i++) uv_run(&f->loop, UV_RUN_NOWAIT); /* the routers' timers close */
  assert_int_equal(log1.frees, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stream_parameters_table),
      cmocka_unit_test(test_sctp_options_table),
      cmocka_unit_test_setup_teardown(test_produce_consume_and_cascade, setup, teardown),
      cmocka_unit_test_setup_teardown(test_relay_copies, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
