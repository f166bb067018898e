/* The public API's refusals, table-driven, on the in-process gateway with two real workers
 * over a loopback WebSocket (as tests/integration/test_api_gateway.c, which covers the
 * successful call sequence): every method given missing, mistyped or unknown ids and
 * malformed parameters, before and after router.join, on objects of the wrong kind or in
 * the wrong state. Each row names the error code the client gets (and a word of its
 * message); the session stays usable after every refusal. Also the DataChannel objects
 * (produce/list/consume/stats/close cascade) through the API, and the success side of the
 * other methods once each (producer/consumer operations, both RTP observers, a plain
 * transport, router.close and joining again). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/gateway.h"
#include "node/srtp.h"
#include "tests/support/ws_client.h"
#include "tests/unit/api_fixture.h"

#define IO_MS 5000

typedef struct {
  mf_dtls_cert_t *cert;
  mf_worker_t *workers[2];
  mf_gateway_t *gw;
  int next_id;
} fx_t;

static int setup(void **state) {
  static fx_t f;
  memset(&f, 0, sizeof f);
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_ERROR, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  if (mf_srtp_library_init() || mf_dtls_cert_generate(&f.cert)) return -1;
  for (uint32_t i = 0; i < 2; i++) {
    mf_worker_options_t o = {.index = i, .cpu = -1, .rtc_listen_ip = "127.0.0.1",
                             .announced_ip = "127.0.0.1", .cert = f.cert};
    if (mf_worker_start(&o, &f.workers[i])) return -1;
  }
  mf_gateway_options_t go = {.listen = "127.0.0.1:0", .secret = "", .static_dir = ""};
  if (mf_gateway_start(&go, f.workers, 2, &f.gw)) return -1;
  f.next_id = 1;
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  mf_gateway_stop(f->gw);
  for (int i = 0; i < 2; i++) mf_worker_stop(f->workers[i]);
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

static const char *id_of(json_t *resp, const char *key) {
  return json_string_value(json_object_get(json_object_get(resp, "data"), key));
}

#define UNKNOWN "00000000-0000-4000-8000-000000000000"

/* %T: WebRTC transport, %P: video producer, %A: audio producer, %C: consumer,
 * %O: audio level observer, %L: plain transport (ids of the first session's objects) */
typedef struct {
  const char *t, *p, *a, *c, *o, *l;
} ids_t;

static json_t *expand(const char *tmpl, const ids_t *ids) {
  char buf[4096];
  size_t n = 0;
  for (const char *p = tmpl; *p && n < sizeof buf - 64; p++) {
    if (*p == '%' && p[1]) {
      const char *v = p[1] == 'T' ? ids->t : p[1] == 'P' ? ids->p : p[1] == 'A' ? ids->a
                    : p[1] == 'C' ? ids->c : p[1] == 'O' ? ids->o : p[1] == 'L' ? ids->l : "";
      n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", v ? v : "");
      p++;
    } else {
      buf[n++] = *p;
    }
  }
  buf[n] = '\0';
  json_error_t e;
  json_t *j = json_loads(buf, 0, &e);
  if (!j) print_error("bad row JSON %s: %s\n", buf, e.text);
  assert_non_null(j);
  return j;
}

typedef struct {
  const char *method, *data, *code, *word;
} row_t;

static void run_rows(fx_t *f, nng_stream *s, const row_t *rows, size_t n, const ids_t *ids) {
  for (size_t i = 0; i < n; i++) {
    json_t *r = call(f, s, rows[i].method, expand(rows[i].data, ids));
    json_t *e = json_object_get(r, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    bool good = json_is_false(json_object_get(r, "ok")) && code && strcmp(code, rows[i].code) == 0 &&
                msg && strstr(msg, rows[i].word);
    if (!good) {
      char *t = json_dumps(r, 0);
      print_error("row %zu %s %s: %s\n", i, rows[i].method, rows[i].data, t);
      free(t);
    }
    assert_true(good);
    json_decref(r);
  }
}

static const char *const vp8_params =
    "{\"mid\":\"0\",\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000}],"
    "\"encodings\":[{\"ssrc\":1111}]}";
static const char *const opus_params =
    "{\"mid\":\"1\",\"codecs\":[{\"mimeType\":\"audio/opus\",\"payloadType\":111,\"clockRate\":48000,\"channels\":2}],"
    "\"encodings\":[{\"ssrc\":2222}]}";

static void test_refusals(void **state) {
  fx_t *f = *state;
  nng_stream *s = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
  assert_non_null(s);
  ids_t ids = {0};

  /* before joining a room */
  static const row_t early[] = {
      {"router.createWebRtcTransport", "{}", "invalid_state", "call router.join first"},
      {"transport.produce", "{\"transportId\":\"x\"}", "invalid_argument", "data.transportId must be an id (UUIDv4 string)"},
      {"transport.consume", "{}", "invalid_argument", "data.transportId must be an id (UUIDv4 string)"},
      {"router.listProducers", "{}", "invalid_state", "call router.join first"},
      {"router.getRtpCapabilities", "{}", "invalid_state", "call router.join first"},
      {"router.close", "{}", "invalid_state", "call router.join first"},
      {"producer.pause", "{\"producerId\":\"x\"}", "invalid_argument", "data.producerId must be an id (UUIDv4 string)"},
      {"consumer.pause", "{}", "invalid_argument", "data.consumerId must be an id (UUIDv4 string)"},
      {"transport.produceData", "{}", "invalid_argument", "data.transportId must be an id (UUIDv4 string)"},
      {"rtpObserver.pause", "{}", "invalid_state", "call router.join first"},
      {"router.createAudioLevelObserver", "{}", "invalid_state", "call router.join first"},
      {"router.join", "{}", "invalid_argument", "data.roomId must be a string of 1..128 bytes"},
      {"router.join", "{\"roomId\":5}", "invalid_argument", "data.roomId must be a string of 1..128 bytes"},
      {"router.join", "{\"roomId\":\"\"}", "invalid_argument", "data.roomId must be a string of 1..128 bytes"},
      {"router.create", "{\"mediaCodecs\":\"x\"}", "invalid_argument", "data.roomId must be a string of 1..128 bytes"},
      {"router.canConsume", "{}", "invalid_state", "call router.join first"},
      {"no.such.method", "{}", "not_found", "unknown method 'no.such.method'"},
  };
  run_rows(f, s, early, sizeof early / sizeof early[0], &ids);

  json_t *join = ok(f, s, "router.join", json_pack("{s:s}", "roomId", "errors"));
  json_t *caps = json_incref(json_object_get(json_object_get(join, "data"), "rtpCapabilities"));
  json_decref(join);
  json_t *t = ok(f, s, "router.createWebRtcTransport", NULL);
  char tid[64];
  snprintf(tid, sizeof tid, "%s", id_of(t, "id"));
  json_decref(t);
  ids.t = tid;
  json_t *p = ok(f, s, "transport.produce",
                 json_pack("{s:s, s:s, s:o}", "transportId", tid, "kind", "video", "rtpParameters",
                           json_loads(vp8_params, 0, NULL)));
  char pid[64];
  snprintf(pid, sizeof pid, "%s", id_of(p, "id"));
  json_decref(p);
  ids.p = pid;
  json_t *a = ok(f, s, "transport.produce",
                 json_pack("{s:s, s:s, s:o}", "transportId", tid, "kind", "audio", "rtpParameters",
                           json_loads(opus_params, 0, NULL)));
  char aid[64];
  snprintf(aid, sizeof aid, "%s", id_of(a, "id"));
  json_decref(a);
  ids.a = aid;
  json_t *c = ok(f, s, "transport.consume",
                 json_pack("{s:s, s:s, s:O}", "transportId", tid, "producerId", pid, "rtpCapabilities", caps));
  char cid[64];
  snprintf(cid, sizeof cid, "%s", id_of(c, "id"));
  json_decref(c);
  ids.c = cid;
  json_t *o = ok(f, s, "router.createAudioLevelObserver", NULL);
  char oid[64];
  snprintf(oid, sizeof oid, "%s", id_of(o, "id"));
  json_decref(o);
  ids.o = oid;
  json_decref(caps);
  json_t *pl = ok(f, s, "router.createPlainTransport", NULL);
  char lid[64];
  snprintf(lid, sizeof lid, "%s", id_of(pl, "id"));
  json_decref(pl);
  ids.l = lid;

  static const row_t joined[] = {
      {"router.join", "{\"roomId\":\"other\"}", "invalid_state", "this session already joined room 'errors'"},
      {"router.createWebRtcTransport", "{\"enableSctp\":true,\"numSctpStreams\":{\"OS\":0,\"MIS\":1}}", "invalid_argument", "numSctpStreams must be {OS, MIS} with integers 1"},
      {"router.createPlainTransport", "{\"rtcpMux\":false}", "unsupported", "rtcpMux false is not supported: RTCP shares the"},
      {"router.createPlainTransport", "{\"comedia\":1}", "invalid_argument", "data.comedia must be a boolean"},
      {"transport.connect", "{}", "invalid_argument", "data.transportId must be an id (UUIDv4 string)"},
      {"transport.connect", "{\"transportId\":\"%T\"}", "invalid_argument", "dtlsParameters must be an object"},
      {"transport.connect", "{\"transportId\":\"" UNKNOWN "\",\"dtlsParameters\":{}}", "not_found", "not found in this session"},
      {"transport.connect", "{\"transportId\":\"%T\",\"dtlsParameters\":{\"fingerprints\":[]}}", "invalid_argument", "dtlsParameters.fingerprints must be a non-empty"},
      {"transport.produce", "{\"transportId\":\"%T\"}", "parse_error", "rtpParameters must be an object"},
      {"transport.produce", "{\"transportId\":\"%T\",\"kind\":\"text\",\"rtpParameters\":{}}", "parse_error", "rtpParameters.codecs must be an array"},
      {"transport.produce", "{\"transportId\":\"%T\",\"kind\":\"video\"}", "parse_error", "rtpParameters must be an object"},
      {"transport.produce", "{\"transportId\":\"%T\",\"kind\":\"video\",\"rtpParameters\":{\"codecs\":5}}", "parse_error", "rtpParameters.codecs must be an array"},
      {"transport.produce", "{\"transportId\":\"%T\",\"kind\":\"video\",\"rtpParameters\":{\"codecs\":[{\"mimeType\":\"video/H265\",\"payloadType\":96,\"clockRate\":90000}],\"encodings\":[{\"ssrc\":9}]}}", "unsupported", "unsupported codec [mimeType:video/H265, payloadT"},
      {"transport.produce", "{\"transportId\":\"%T\",\"kind\":\"video\",\"rtpParameters\":{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000}],\"encodings\":[{\"ssrc\":1111}]}}", "already_exists", "ssrc 1111 already used by another producer on th"},
      {"transport.produce", "{\"transportId\":\"" UNKNOWN "\",\"kind\":\"video\",\"rtpParameters\":{}}", "not_found", "not found in this session"},
      {"transport.produce", "{\"transportId\":5}", "invalid_argument", "data.transportId must be an id (UUIDv4 string)"},
      {"transport.produce", "{\"transportId\":\"%T\",\"paused\":\"yes\"}", "invalid_argument", "data.paused must be a boolean"},
      {"transport.produce", "{\"transportId\":\"%T\",\"appData\":[1]}", "invalid_argument", "data.appData must be an object"},
      {"transport.consume", "{\"transportId\":\"%T\",\"paused\":1}", "invalid_argument", "data.paused must be a boolean"},
      {"transport.consume", "{\"transportId\":\"%T\"}", "invalid_argument", "data.producerId must be an id (UUIDv4 string)"},
      {"transport.consume", "{\"transportId\":\"%T\",\"producerId\":\"" UNKNOWN "\",\"rtpCapabilities\":{\"codecs\":[]}}", "not_found", "not found in this room"},
      {"transport.consume", "{\"transportId\":\"%T\",\"producerId\":\"%P\"}", "parse_error", "rtpCapabilities must be an object"},
      {"transport.consume", "{\"transportId\":\"%T\",\"producerId\":\"%P\",\"rtpCapabilities\":{\"codecs\":[]}}", "unsupported", "no codec in rtpCapabilities matches it"},
      {"transport.consume", "{\"transportId\":\"%T\",\"producerId\":\"%P\",\"rtpCapabilities\":{\"codecs\":5}}", "parse_error", "rtpCapabilities.codecs must be an array"},
      {"transport.close", "{\"transportId\":\"" UNKNOWN "\"}", "not_found", "not found in this session"},
      {"transport.close", "{}", "invalid_argument", "data.transportId must be an id (UUIDv4 string)"},
      {"producer.pause", "{}", "invalid_argument", "data.producerId must be an id (UUIDv4 string)"},
      {"producer.resume", "{\"producerId\":\"" UNKNOWN "\"}", "not_found", "not found in this session"},
      {"producer.getStats", "{\"producerId\":5}", "invalid_argument", "data.producerId must be an id (UUIDv4 string)"},
      {"consumer.setPreferredLayers", "{\"consumerId\":\"%C\",\"spatialLayer\":\"a\"}", "invalid_argument", "spatialLayer must be an integer (temporalLayer o"},
      {"consumer.setPreferredLayers", "{\"consumerId\":\"%C\",\"spatialLayer\":0}", "unsupported", "consumer"},
      {"consumer.requestKeyFrame", "{\"consumerId\":\"" UNKNOWN "\"}", "not_found", "not found in this session"},
      {"consumer.close", "{}", "invalid_argument", "data.consumerId must be an id (UUIDv4 string)"},
      {"transport.produceData", "{\"transportId\":\"%T\",\"sctpStreamParameters\":{\"streamId\":0}}", "invalid_state", "has no SCTP"},
      {"transport.produceData", "{\"transportId\":\"" UNKNOWN "\",\"sctpStreamParameters\":{\"streamId\":0}}", "not_found", "not found in this session"},
      {"transport.consumeData", "{\"transportId\":\"%T\",\"dataProducerId\":\"" UNKNOWN "\"}", "not_found", "not found in this room"},
      {"transport.consumeData", "{\"transportId\":\"%T\"}", "invalid_argument", "data.dataProducerId must be an id (UUIDv4 string"},
      {"dataProducer.close", "{\"dataProducerId\":\"" UNKNOWN "\"}", "not_found", "not found in this session"},
      {"dataConsumer.getStats", "{}", "invalid_argument", "data.dataConsumerId must be an id (UUIDv4 string"},
      {"router.createAudioLevelObserver", "{\"maxEntries\":0}", "invalid_argument", "maxEntries must be 1..64, threshold -127..0 (dBo"},
      {"router.createAudioLevelObserver", "{\"threshold\":10}", "invalid_argument", "maxEntries must be 1..64, threshold -127..0 (dBo"},
      {"router.createAudioLevelObserver", "{\"interval\":\"x\"}", "invalid_argument", "data.interval must be an integer"},
      {"router.createActiveSpeakerObserver", "{\"interval\":-1}", "invalid_argument", "maxEntries must be 1..64, threshold -127..0 (dBo"},
      {"rtpObserver.addProducer", "{\"rtpObserverId\":\"%O\",\"producerId\":\"%P\"}", "invalid_argument", "producer"},
      {"rtpObserver.addProducer", "{\"rtpObserverId\":\"%O\",\"producerId\":\"" UNKNOWN "\"}", "not_found", "not found in this room"},
      {"rtpObserver.addProducer", "{\"rtpObserverId\":\"" UNKNOWN "\",\"producerId\":\"%A\"}", "not_found", "not found in this room"},
      {"rtpObserver.addProducer", "{\"rtpObserverId\":\"%O\"}", "invalid_argument", "data.producerId must be an id (UUIDv4 string)"},
      {"rtpObserver.removeProducer", "{\"rtpObserverId\":\"%O\",\"producerId\":\"%A\"}", "not_found", "is not in rtpObserver"},
      {"rtpObserver.pause", "{}", "invalid_argument", "data.rtpObserverId must be an id (UUIDv4 string)"},
      {"router.canConsume", "{\"producerId\":\"%P\"}", "parse_error", "rtpCapabilities must be an object"},
      {"router.canConsume", "{\"producerId\":\"%P\",\"rtpCapabilities\":5}", "parse_error", "rtpCapabilities must be an object"},
      {"router.create", "{\"roomId\":\"r2\",\"mediaCodecs\":\"x\"}", "invalid_state", "already joined room"},
      {"transport.connect", "{\"transportId\":\"%L\",\"ip\":\"::1\",\"port\":5}", "invalid_argument", "must be an IPv4 address"},
      {"transport.connect", "{\"transportId\":\"%L\"}", "invalid_argument", "are required without comedia"},
      {"transport.connect", "{\"transportId\":\"%L\",\"ip\":\"127.0.0.1\",\"port\":0}", "invalid_argument", "data.port must be an integer 1..65535"},
      {"consumer.setPreferredLayers", "{}", "invalid_argument", "data.consumerId must be an id"},
      {"consumer.setPreferredLayers", "{\"consumerId\":\"%C\"}", "invalid_argument", "spatialLayer must be an integer"},
      {"rtpObserver.removeProducer", "{\"rtpObserverId\":\"%O\"}", "invalid_argument", "data.producerId must be an id"},
      {"router.createActiveSpeakerObserver", "{\"interval\":\"x\"}", "invalid_argument", "data.interval must be an integer"},
      {"dataConsumer.close", "{\"dataConsumerId\":\"" UNKNOWN "\"}", "not_found", "not found in this session"},
      {"router.createWebRtcTransport", "{\"enableSctp\":true,\"maxSctpMessageSize\":0}", "invalid_argument", "maxSctpMessageSize must be an integer"},
      {"transport.consumeData", "{\"transportId\":\"%L\",\"dataProducerId\":\"" UNKNOWN "\"}", "not_found", "not found in this room"},
      {"producer.close", "{\"producerId\":\"%C\"}", "not_found", "not found in this session"},
      {"consumer.getStats", "{\"consumerId\":\"%P\"}", "not_found", "not found in this session"},
  };
  run_rows(f, s, joined, sizeof joined / sizeof joined[0], &ids);

  /* another session in the same room owns none of the first session's objects */
  nng_stream *s2 = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
  assert_non_null(s2);
  json_decref(ok(f, s2, "router.join", json_pack("{s:s}", "roomId", "errors")));
  static const row_t other[] = {
      {"producer.pause", "{\"producerId\":\"%P\"}", "not_found", "not found in this session"},
      {"consumer.close", "{\"consumerId\":\"%C\"}", "not_found", "not found in this session"},
      {"transport.close", "{\"transportId\":\"%T\"}", "not_found", "not found in this session"},
  };
  run_rows(f, s2, other, sizeof other / sizeof other[0], &ids);
  mf_test_ws_free(s2);

  /* still usable: the objects answer */
  json_decref(ok(f, s, "producer.getStats", json_pack("{s:s}", "producerId", pid)));
  json_decref(ok(f, s, "consumer.getStats", json_pack("{s:s}", "consumerId", cid)));
  json_decref(ok(f, s, "rtpObserver.close", json_pack("{s:s}", "rtpObserverId", oid)));
  json_decref(ok(f, s, "transport.close", json_pack("{s:s}", "transportId", tid)));
  mf_test_ws_free(s);
}

/* DataChannel objects through the API on SCTP-enabled transports (several, so that the
 * room's two workers both take part and a data consumer may sit on another worker than its
 * data producer): produce, list, consume, stats, and the close cascade, with refusals for
 * an SCTP stream that is out of range or taken. */
static void test_data_channel_objects(void **state) {
  fx_t *f = *state;
  nng_stream *s = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
  assert_non_null(s);
  json_decref(ok(f, s, "router.join", json_pack("{s:s}", "roomId", "data")));
  char tids[4][64];
  for (int i = 0; i < 4; i++) {
    json_t *t = ok(f, s, "router.createWebRtcTransport",
                   json_pack("{s:b, s:{s:i, s:i}}", "enableSctp", 1, "numSctpStreams", "OS", 8, "MIS", 8));
    json_t *sp = json_object_get(json_object_get(t, "data"), "sctpParameters");
    assert_int_equal(json_integer_value(json_object_get(sp, "MIS")), 8);
    snprintf(tids[i], sizeof tids[i], "%s", id_of(t, "id"));
    json_decref(t);
  }
  json_t *dp = ok(f, s, "transport.produceData",
                  json_pack("{s:s, s:{s:i}, s:s, s:s}", "transportId", tids[0], "sctpStreamParameters",
                            "streamId", 1, "label", "chat", "protocol", "json"));
  char dpid[64];
  snprintf(dpid, sizeof dpid, "%s", id_of(dp, "id"));
  json_decref(dp);
  ids_t ids = {.t = tids[0], .p = dpid};
  static const row_t rows[] = {
      {"transport.produceData", "{\"transportId\":\"%T\",\"sctpStreamParameters\":{\"streamId\":1}}",
       "already_exists", ""},
      {"transport.produceData", "{\"transportId\":\"%T\",\"sctpStreamParameters\":{\"streamId\":8}}",
       "invalid_argument", ""},
      {"transport.produceData", "{\"transportId\":\"%T\",\"sctpStreamParameters\":{\"streamId\":2},\"label\":5}",
       "invalid_argument", "label"},
  };
  run_rows(f, s, rows, sizeof rows / sizeof rows[0], &ids);

  json_t *list = ok(f, s, "router.listDataProducers", NULL);
  json_t *arr = json_object_get(json_object_get(list, "data"), "dataProducers");
  assert_int_equal(json_array_size(arr), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "label")), "chat");
  json_decref(list);

  char dcids[3][64];
  for (int i = 0; i < 3; i++) {
    json_t *dc = ok(f, s, "transport.consumeData",
                    json_pack("{s:s, s:s}", "transportId", tids[i + 1], "dataProducerId", dpid));
    json_t *d = json_object_get(dc, "data");
    assert_string_equal(json_string_value(json_object_get(d, "dataProducerId")), dpid);
    assert_string_equal(json_string_value(json_object_get(d, "label")), "chat");
    snprintf(dcids[i], sizeof dcids[i], "%s", json_string_value(json_object_get(d, "id")));
    json_decref(dc);
  }
  json_t *st = ok(f, s, "dataProducer.getStats", json_pack("{s:s}", "dataProducerId", dpid));
  assert_non_null(json_object_get(json_object_get(st, "data"), "stats"));
  json_decref(st);
  json_decref(ok(f, s, "dataConsumer.getStats", json_pack("{s:s}", "dataConsumerId", dcids[0])));
  json_decref(ok(f, s, "dataConsumer.close", json_pack("{s:s}", "dataConsumerId", dcids[0])));
  json_t *r = call(f, s, "dataConsumer.getStats", json_pack("{s:s}", "dataConsumerId", dcids[0]));
  assert_true(json_is_false(json_object_get(r, "ok")));
  json_decref(r);
  /* closing the data producer takes its remaining consumers (on whatever worker) along */
  json_decref(ok(f, s, "dataProducer.close", json_pack("{s:s}", "dataProducerId", dpid)));
  for (int tries = 0; tries < 50; tries++) {
    r = call(f, s, "dataConsumer.getStats", json_pack("{s:s}", "dataConsumerId", dcids[2]));
    bool gone = json_is_false(json_object_get(r, "ok"));
    json_decref(r);
    if (gone) break;
  }
  r = call(f, s, "dataConsumer.getStats", json_pack("{s:s}", "dataConsumerId", dcids[1]));
  assert_true(json_is_false(json_object_get(r, "ok")));
  json_decref(r);
  list = ok(f, s, "router.listDataProducers", NULL);
  assert_int_equal(json_array_size(json_object_get(json_object_get(list, "data"), "dataProducers")), 0);
  json_decref(list);
  mf_test_ws_free(s);
}

static json_t *J(const char *text) {
  json_t *j = json_loads(text, 0, NULL);
  assert_non_null(j);
  return j;
}

/* The success side of the same methods, once each, on a session that then closes its
 * room: producer and consumer operations, both RTP observers through their whole life, a
 * plain transport connected and used, capabilities queries, and router.close after which
 * the session must join again. */
static void test_object_lifecycle(void **state) {
  fx_t *f = *state;
  nng_stream *s = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
  assert_non_null(s);
  json_t *join = ok(f, s, "router.join", json_pack("{s:s}", "roomId", "life"));
  json_t *caps = json_incref(json_object_get(json_object_get(join, "data"), "rtpCapabilities"));
  json_decref(join);
  json_t *rc = ok(f, s, "router.getRtpCapabilities", NULL);
  assert_true(json_equal(json_object_get(rc, "data"), caps) ||
              json_equal(json_object_get(json_object_get(rc, "data"), "rtpCapabilities"), caps));
  json_decref(rc);
  json_t *t = ok(f, s, "router.createWebRtcTransport", NULL);
  char tid[64];
  snprintf(tid, sizeof tid, "%s", id_of(t, "id"));
  json_decref(t);
  json_t *a = ok(f, s, "transport.produce", json_pack("{s:s, s:s, s:o, s:{s:s}}", "transportId", tid, "kind", "audio",
                                                      "rtpParameters", J(opus_params), "appData", "who", "me"));
  char aid[64];
  snprintf(aid, sizeof aid, "%s", id_of(a, "id"));
  json_decref(a);
  json_t *v = ok(f, s, "transport.produce", json_pack("{s:s, s:s, s:o, s:b}", "transportId", tid, "kind", "video",
                                                      "rtpParameters", J(vp8_params), "paused", 1));
  char vid[64];
  snprintf(vid, sizeof vid, "%s", id_of(v, "id"));
  json_decref(v);
  /* both producers listed, with their appData ({} for the one made without any) */
  json_t *lp = ok(f, s, "router.listProducers", json_object());
  json_t *list = json_object_get(json_object_get(lp, "data"), "producers");
  assert_int_equal(json_array_size(list), 2);
  for (size_t i = 0; i < 2; i++) {
    json_t *e = json_array_get(list, i);
    const char *pid = json_string_value(json_object_get(e, "id"));
    assert_non_null(pid);
    json_t *app = json_object_get(e, "appData");
    assert_true(json_is_object(app));
    if (strcmp(pid, aid) == 0) assert_string_equal(json_string_value(json_object_get(app, "who")), "me");
    else assert_int_equal(json_object_size(app), 0);
  }
  json_decref(lp);
  json_t *cc = ok(f, s, "router.canConsume", json_pack("{s:s, s:O}", "producerId", vid, "rtpCapabilities", caps));
  json_decref(cc);
  json_t *c = ok(f, s, "transport.consume", json_pack("{s:s, s:s, s:O, s:b}", "transportId", tid, "producerId", vid,
                                                      "rtpCapabilities", caps, "paused", 1));
  char cid[64];
  snprintf(cid, sizeof cid, "%s", id_of(c, "id"));
  assert_true(json_is_true(json_object_get(json_object_get(c, "data"), "producerPaused")));
  json_decref(c);
  static const char *const pops[] = {"producer.pause", "producer.resume", "producer.getStats"};
  for (size_t i = 0; i < 3; i++) json_decref(ok(f, s, pops[i], json_pack("{s:s}", "producerId", vid)));
  static const char *const cops[] = {"consumer.resume", "consumer.pause", "consumer.requestKeyFrame",
                                     "consumer.getStats"};
  for (size_t i = 0; i < 4; i++) json_decref(ok(f, s, cops[i], json_pack("{s:s}", "consumerId", cid)));

  /* observers: audio producers only, each method once */
  static const char *const kinds[] = {"router.createAudioLevelObserver", "router.createActiveSpeakerObserver"};
  for (size_t k = 0; k < 2; k++) {
    json_t *o = ok(f, s, kinds[k], k == 0 ? json_pack("{s:i, s:i, s:i}", "maxEntries", 2, "threshold", -60,
                                                      "interval", 500)
                                          : json_pack("{s:i}", "interval", 300));
    char oid[64];
    snprintf(oid, sizeof oid, "%s", id_of(o, "id"));
    json_decref(o);
    json_decref(ok(f, s, "rtpObserver.addProducer", json_pack("{s:s, s:s}", "rtpObserverId", oid, "producerId", aid)));
    json_decref(ok(f, s, "rtpObserver.pause", json_pack("{s:s}", "rtpObserverId", oid)));
    json_decref(ok(f, s, "rtpObserver.resume", json_pack("{s:s}", "rtpObserverId", oid)));
    json_decref(ok(f, s, "rtpObserver.removeProducer", json_pack("{s:s, s:s}", "rtpObserverId", oid, "producerId", aid)));
    json_decref(ok(f, s, "rtpObserver.close", json_pack("{s:s}", "rtpObserverId", oid)));
    json_t *r = call(f, s, "rtpObserver.pause", json_pack("{s:s}", "rtpObserverId", oid));
    assert_true(json_is_false(json_object_get(r, "ok")));
    json_decref(r);
  }

  /* a plain transport: connected to a remote, a producer on it, closed */
  json_t *pl = ok(f, s, "router.createPlainTransport", json_pack("{s:b}", "comedia", 0));
  char lid[64];
  snprintf(lid, sizeof lid, "%s", id_of(pl, "id"));
  assert_non_null(json_object_get(json_object_get(pl, "data"), "tuple"));
  json_decref(pl);
  json_decref(ok(f, s, "transport.connect", json_pack("{s:s, s:s, s:i}", "transportId", lid, "ip", "127.0.0.1",
                                                      "port", 40999)));
  static const char *const plain_opus =
      "{\"codecs\":[{\"mimeType\":\"audio/opus\",\"payloadType\":100,\"clockRate\":48000,\"channels\":2}],"
      "\"encodings\":[{\"ssrc\":5555}]}";
  json_decref(ok(f, s, "transport.produce", json_pack("{s:s, s:s, s:o}", "transportId", lid, "kind", "audio",
                                                      "rtpParameters", J(plain_opus))));
  json_decref(ok(f, s, "transport.close", json_pack("{s:s}", "transportId", lid)));

  json_decref(ok(f, s, "consumer.close", json_pack("{s:s}", "consumerId", cid)));
  json_decref(ok(f, s, "producer.close", json_pack("{s:s}", "producerId", aid)));
  /* router.close: every object of the session goes, and the session may join again */
  json_decref(ok(f, s, "router.close", NULL));
  json_t *r = call(f, s, "producer.getStats", json_pack("{s:s}", "producerId", vid));
  assert_true(json_is_false(json_object_get(r, "ok")));
  json_decref(r);
  json_decref(ok(f, s, "router.join", json_pack("{s:s}", "roomId", "life")));
  json_decref(caps);
  mf_test_ws_free(s);
}

/* Reads notifications until one named `event` about `target` (NULL: any) arrives. */
static bool wait_event(nng_stream *s, const char *event, const char *target) {
  return mf_test_api_wait_event(s, event, target);
}

/* What the other members of a room hear: a new producer, its pause and resume through
 * their consumer, its end when its owner closes the transport, and when the owner's
 * WebSocket goes away (the session's objects are cleaned up). */
static void test_room_events(void **state) {
  fx_t *f = *state;
  nng_stream *a = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
  nng_stream *b = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
  assert_non_null(a);
  assert_non_null(b);
  json_decref(ok(f, a, "router.join", json_pack("{s:s}", "roomId", "ev")));
  json_t *jb = ok(f, b, "router.join", json_pack("{s:s}", "roomId", "ev"));
  json_t *caps = json_incref(json_object_get(json_object_get(jb, "data"), "rtpCapabilities"));
  json_decref(jb);
  json_t *tb = ok(f, b, "router.createWebRtcTransport", NULL);
  char tbid[64];
  snprintf(tbid, sizeof tbid, "%s", id_of(tb, "id"));
  json_decref(tb);

  for (int round = 0; round < 2; round++) {
    json_t *ta = ok(f, a, "router.createWebRtcTransport", NULL);
    char taid[64];
    snprintf(taid, sizeof taid, "%s", id_of(ta, "id"));
    json_decref(ta);
    json_t *pa = ok(f, a, "transport.produce", json_pack("{s:s, s:s, s:o}", "transportId", taid, "kind", "video",
                                                         "rtpParameters", J(vp8_params)));
    char pid[64];
    snprintf(pid, sizeof pid, "%s", id_of(pa, "id"));
    json_decref(pa);
    assert_true(wait_event(b, "router.newproducer", pid));
    json_t *cb = ok(f, b, "transport.consume", json_pack("{s:s, s:s, s:O}", "transportId", tbid, "producerId", pid,
                                                         "rtpCapabilities", caps));
    char cid[64];
    snprintf(cid, sizeof cid, "%s", id_of(cb, "id"));
    json_decref(cb);
    if (round == 0) {
      json_decref(ok(f, a, "producer.pause", json_pack("{s:s}", "producerId", pid)));
      assert_true(wait_event(b, "consumer.producerpause", cid));
      json_decref(ok(f, a, "producer.resume", json_pack("{s:s}", "producerId", pid)));
      assert_true(wait_event(b, "consumer.producerresume", cid));
      /* the owner closes the transport: the producer ends, the consumer with it */
      json_decref(ok(f, a, "transport.close", json_pack("{s:s}", "transportId", taid)));
      assert_true(wait_event(b, "consumer.producerclose", cid));
    } else {
      /* the owner's WebSocket goes away: same end for the other member's consumer */
      mf_test_ws_free(a);
      a = NULL;
      assert_true(wait_event(b, "consumer.producerclose", cid));
    }
    json_t *r = call(f, b, "consumer.getStats", json_pack("{s:s}", "consumerId", cid));
    assert_true(json_is_false(json_object_get(r, "ok")));
    json_decref(r);
  }
  json_decref(caps);
  mf_test_ws_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_channel_objects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_object_lifecycle, setup, teardown),
      cmocka_unit_test_setup_teardown(test_room_events, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
