/* router.createPlainTransport through the public API on real workers and WebSockets: the
 * answer's shape (tuple, srtpParameters), clear errors for bad options and bad connect()
 * input, and media end to end: RTP sent from a test socket to a comedia transport's port
 * reaches a test socket through a consumer on a connected plain transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

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
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
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

static json_t *call_ok(fx_t *f, nng_stream *s, const char *method, json_t *data, json_t **out) {
  json_t *r = mf_test_api_ok(&f->next_id, s, method, data);
  *out = json_object_get(r, "data");
  return r;
}

static void expect_error(json_t *resp, const char *code, const char *text) {
  assert_true(json_is_false(json_object_get(resp, "ok")));
  json_t *e = json_object_get(resp, "error");
  const char *msg = json_string_value(json_object_get(e, "message"));
  if (strcmp(json_string_value(json_object_get(e, "code")), code) != 0 || !strstr(msg, text)) {
    print_error("error %s '%s', wanted %s '%s'\n", json_string_value(json_object_get(e, "code")), msg,
                code, text);
    fail();
  }
  json_decref(resp);
}

static json_t *with_id(const char *id, const char *json) {
  json_t *j = json_loads(json, 0, NULL);
  assert_non_null(j);
  json_object_set_new(j, "transportId", json_string(id));
  return j;
}

static void test_create_and_connect_errors(void **state) {
  fx_t *f = *state;
  nng_stream *s = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
  assert_non_null(s);
  json_t *d;
  expect_error(call(f, s, "router.createPlainTransport", NULL), "invalid_state", "router.join");
  json_decref(call_ok(f, s, "router.join", json_pack("{s:s}", "roomId", "plain"), &d));

  expect_error(call(f, s, "router.createPlainTransport", json_pack("{s:b}", "rtcpMux", 0)),
               "unsupported", "rtcpMux");
  expect_error(call(f, s, "router.createPlainTransport", json_pack("{s:s}", "comedia", "yes")),
               "invalid_argument", "comedia");
  expect_error(call(f, s, "router.createPlainTransport",
                    json_pack("{s:b, s:s}", "enableSrtp", 1, "srtpCryptoSuite", "AES_256_CM")),
               "invalid_argument", "srtpCryptoSuite");

  json_t *r = call_ok(f, s, "router.createPlainTransport", NULL, &d);
  char id[64];
  snprintf(id, sizeof id, "%s", json_string_value(json_object_get(d, "id")));
  json_t *tuple = json_object_get(d, "tuple");
  assert_string_equal(json_string_value(json_object_get(tuple, "localIp")), "127.0.0.1");
  assert_true(json_integer_value(json_object_get(tuple, "localPort")) > 0);
  assert_string_equal(json_string_value(json_object_get(tuple, "protocol")), "udp");
  assert_true(json_is_false(json_object_get(d, "comedia")));
  assert_true(json_is_true(json_object_get(d, "rtcpMux")));
  assert_null(json_object_get(d, "srtpParameters"));
  json_decref(r);

  expect_error(call(f, s, "transport.connect", with_id(id, "{\"port\":5004}")), "invalid_argument", "required");
  expect_error(call(f, s, "transport.connect", with_id(id, "{\"ip\":\"1.2.3\",\"port\":5004}")),
               "invalid_argument", "not an IPv4");
  expect_error(call(f, s, "transport.connect", with_id(id, "{\"ip\":\"127.0.0.1\",\"port\":70000}")),
               "invalid_argument", "1..65535");
  expect_error(call(f, s, "transport.connect",
                    with_id(id, "{\"ip\":\"127.0.0.1\",\"port\":5004,\"srtpParameters\":{}}")),
               "invalid_argument", "no enableSrtp");
  json_decref(call_ok(f, s, "transport.connect", with_id(id, "{\"ip\":\"127.0.0.1\",\"port\":5004}"), &d));
  expect_error(call(f, s, "transport.connect", with_id(id, "{\"ip\":\"127.0.0.1\",\"port\":5004}")),
               "invalid_state", "already");

  r = call_ok(f, s, "router.createPlainTransport", json_pack("{s:b}", "comedia", 1), &d);
  snprintf(id, sizeof id, "%s", json_string_value(json_object_get(d, "id")));
  json_decref(r);
  expect_error(call(f, s, "transport.connect", with_id(id, "{\"ip\":\"127.0.0.1\",\"port\":5004}")),
               "invalid_argument", "comedia");

  r = call_ok(f, s, "router.createPlainTransport",
              json_pack("{s:b, s:b, s:s}", "comedia", 1, "enableSrtp", 1, "srtpCryptoSuite",
                        "AEAD_AES_128_GCM"), &d);
  snprintf(id, sizeof id, "%s", json_string_value(json_object_get(d, "id")));
  json_t *srtp = json_object_get(d, "srtpParameters");
  assert_string_equal(json_string_value(json_object_get(srtp, "cryptoSuite")), "AEAD_AES_128_GCM");
  assert_int_equal(strlen(json_string_value(json_object_get(srtp, "keyBase64"))), 40); /* 28 bytes */
  json_decref(r);
  expect_error(call(f, s, "transport.connect", with_id(id, "{}")), "invalid_argument", "srtpParameters");
  expect_error(call(f, s, "transport.connect",
                    with_id(id, "{\"srtpParameters\":{\"cryptoSuite\":\"AES_CM_128_HMAC_SHA1_32\","
                                "\"keyBase64\":\"AAAA\"}}")),
               "invalid_argument", "unsupported cryptoSuite");
  json_decref(call_ok(f, s, "transport.connect",
                      with_id(id, "{\"srtpParameters\":{\"cryptoSuite\":\"AEAD_AES_128_GCM\","
                                  "\"keyBase64\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==\"}}"),
                      &d));
  json_decref(call_ok(f, s, "transport.close", json_pack("{s:s}", "transportId", id), &d));
  nng_stream_free(s);
}

static int udp_open(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  *port = ntohs(a.sin_port);
  struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static void test_media_through_the_api(void **state) {
  fx_t *f = *state;
  nng_stream *s = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f->gw), "", IO_MS);
  assert_non_null(s);
  json_t *d, *r;
  json_t *join = call_ok(f, s, "router.join", json_pack("{s:s}", "roomId", "plain-media"), &d);
  json_t *caps = json_incref(json_object_get(d, "rtpCapabilities"));
  json_decref(join);

  r = call_ok(f, s, "router.createPlainTransport", json_pack("{s:b}", "comedia", 1), &d);
  char in_id[64];
  snprintf(in_id, sizeof in_id, "%s", json_string_value(json_object_get(d, "id")));
  uint16_t in_port = (uint16_t)json_integer_value(json_object_get(json_object_get(d, "tuple"), "localPort"));
  json_decref(r);
  r = call_ok(f, s, "transport.produce",
              with_id(in_id, "{\"kind\":\"video\",\"rtpParameters\":{\"codecs\":[{\"mimeType\":"
                             "\"video/VP8\",\"payloadType\":100,\"clockRate\":90000}],"
                             "\"encodings\":[{\"ssrc\":4242}]}}"),
              &d);
  char producer_id[64];
  snprintf(producer_id, sizeof producer_id, "%s", json_string_value(json_object_get(d, "id")));
  json_decref(r);

  uint16_t recv_port, send_port;
  int receiver = udp_open(&recv_port), sender = udp_open(&send_port);
  r = call_ok(f, s, "router.createPlainTransport", NULL, &d);
  char out_id[64];
  snprintf(out_id, sizeof out_id, "%s", json_string_value(json_object_get(d, "id")));
  json_decref(r);
  char text[128];
  snprintf(text, sizeof text, "{\"ip\":\"127.0.0.1\",\"port\":%u}", recv_port);
  json_decref(call_ok(f, s, "transport.connect", with_id(out_id, text), &d));
  json_t *cdata = with_id(out_id, "{}");
  json_object_set_new(cdata, "producerId", json_string(producer_id));
  json_object_set_new(cdata, "rtpCapabilities", caps);
  r = call_ok(f, s, "transport.consume", cdata, &d);
  json_t *enc = json_array_get(json_object_get(json_object_get(d, "rtpParameters"), "encodings"), 0);
  uint32_t consumer_ssrc = (uint32_t)json_integer_value(json_object_get(enc, "ssrc"));
  char consumer_id[64];
  snprintf(consumer_id, sizeof consumer_id, "%s", json_string_value(json_object_get(d, "id")));
  bool paused = json_is_true(json_object_get(d, "paused"));
  json_decref(r);
  if (paused) json_decref(call_ok(f, s, "consumer.resume", json_pack("{s:s}", "consumerId", consumer_id), &d));

  /* VP8 keyframes: descriptor S=1, P=0 and the start code */
  static const uint8_t payload[] = {0x10, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01};
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(in_port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int got = 0;
  for (uint16_t seq = 1; seq <= 50 && got < 5; seq++) {
    uint8_t pkt[64] = {0x80, 0x80 | 100, (uint8_t)(seq >> 8), (uint8_t)seq, 0, 0, (uint8_t)(seq >> 8),
                       (uint8_t)seq, 0, 0, 0x10, 0x92};
    memcpy(pkt + 12, payload, sizeof payload);
    sendto(sender, pkt, 12 + sizeof payload, 0, (struct sockaddr *)&to, sizeof to);
    uint8_t in[2048];
    ssize_t n;
    while ((n = recv(receiver, in, sizeof in, 0)) > 0) {
      if (n < 12 || (in[1] >= 192 && in[1] <= 223)) continue; /* our SR */
      uint32_t ssrc = (uint32_t)in[8] << 24 | (uint32_t)in[9] << 16 | (uint32_t)in[10] << 8 | in[11];
      assert_int_equal(ssrc, consumer_ssrc);
      assert_memory_equal(in + n - sizeof payload, payload, sizeof payload);
      got++;
    }
  }
  assert_true(got >= 5);
  json_decref(call_ok(f, s, "transport.close", json_pack("{s:s}", "transportId", in_id), &d));
  json_decref(call_ok(f, s, "transport.close", json_pack("{s:s}", "transportId", out_id), &d));
  close(sender);
  close(receiver);
  nng_stream_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_and_connect_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_media_through_the_api, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
