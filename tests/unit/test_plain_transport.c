/* PlainTransport on a real RTC server and loopback UDP: option / srtpParameters / connect
 * validation tables (valid and malformed), comedia learning the remote from the first
 * valid packet and dropping other sources afterwards, plain RTP forwarded from a plain
 * producer to a plain consumer, and the same with SRTP (both suites) where the test
 * protects and unprotects with keys exchanged through the JSON API shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/unit/router_fixture.h"
#include "tests/unit/udp_fixture.h"
#include "common/log.h"
#include "node/plain_transport.h"
#include "node/router.h"

typedef struct {
  uv_loop_t loop;
  mf_bufpool_t *pool;
  mf_dtls_cert_t *cert;
  mf_rtc_server_t *server;
  mf_router_t *router;
} fx_t;

static void on_event(void *ud, const char *event, const char *target, json_t *data) {
  json_decref(data);
}

static int setup(void **state) {
  static fx_t f;
  memset(&f, 0, sizeof f);
  if (mf_test_router_open(&f.loop, 256, &f.pool, &f.cert, &f.server, &f.router, on_event, &f))
    return -1;
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  if (mf_test_router_close(&f->loop, f->pool, f->cert, f->server, f->router)) return -1;
  return 0;
}

/* ------------------------------------------------------------ pure parsers */

static void test_options_parse(void **state) {
  static const struct {
    const char *json;
    mf_err_t want;
    bool comedia, srtp;
    mf_srtp_profile_t profile;
  } cases[] = {
      {"{}", MF_OK, false, false, MF_SRTP_PROFILE_AES128_CM_SHA1_80},
      {"{\"comedia\":true}", MF_OK, true, false, MF_SRTP_PROFILE_AES128_CM_SHA1_80},
      {"{\"comedia\":true,\"rtcpMux\":true,\"enableSrtp\":true}", MF_OK, true, true,
       MF_SRTP_PROFILE_AES128_CM_SHA1_80},
      {"{\"enableSrtp\":true,\"srtpCryptoSuite\":\"AEAD_AES_128_GCM\"}", MF_OK, false, true,
       MF_SRTP_PROFILE_AEAD_AES_128_GCM},
      {"{\"transportId\":\"ignored\",\"appData\":{}}", MF_OK, false, false,
       MF_SRTP_PROFILE_AES128_CM_SHA1_80},
      {"{\"rtcpMux\":false}", MF_ERR_UNSUPPORTED, false, false, 0},
      {"{\"comedia\":1}", MF_ERR_INVALID_ARG, false, false, 0},
      {"{\"enableSrtp\":\"yes\"}", MF_ERR_INVALID_ARG, false, false, 0},
      {"{\"srtpCryptoSuite\":\"AES_CM_128_HMAC_SHA1_32\"}", MF_ERR_INVALID_ARG, false, false, 0},
      {"{\"srtpCryptoSuite\":\"AEAD_AES_256_GCM\"}", MF_ERR_INVALID_ARG, false, false, 0},
      {"{\"srtpCryptoSuite\":7}", MF_ERR_INVALID_ARG, false, false, 0},
      {"[]", MF_ERR_INVALID_ARG, false, false, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *j = json_loads(cases[i].json, 0, NULL);
    assert_non_null(j);
    mf_plain_options_t o;
    char err[160] = "";
    mf_err_t e = mf_plain_options_parse(j, &o, err, sizeof err);
    if (e != cases[i].want) print_error("case %zu (%s): %s\n", i, cases[i].json, err);
    assert_int_equal(e, cases[i].want);
    if (e == MF_OK) {
      assert_int_equal(o.comedia, cases[i].comedia);
      assert_int_equal(o.enable_srtp, cases[i].srtp);
      assert_true(o.rtcp_mux);
      assert_int_equal(o.srtp_profile, cases[i].profile);
    } else {
      assert_true(strlen(err) > 0);
    }
    json_decref(j);
  }
  mf_plain_options_t o;
  assert_int_equal(mf_plain_options_parse(NULL, &o, NULL, 0), MF_OK);
  assert_false(o.comedia);
}

/* 30 bytes 0x00..0x1d and 28 bytes 0x00..0x1b in base64 */
#define KEY30 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
#define KEY28 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw=="

static void test_srtp_parse(void **state) {
  static const struct {
    const char *json;
    mf_err_t want;
    size_t len;
  } cases[] = {
      {"{\"cryptoSuite\":\"AES_CM_128_HMAC_SHA1_80\",\"keyBase64\":\"" KEY30 "\"}", MF_OK, 30},
      {"{\"cryptoSuite\":\"AEAD_AES_128_GCM\",\"keyBase64\":\"" KEY28 "\"}", MF_OK, 28},
      /* wrong length for the suite */
      {"{\"cryptoSuite\":\"AEAD_AES_128_GCM\",\"keyBase64\":\"" KEY30 "\"}", MF_ERR_INVALID_ARG, 0},
      {"{\"cryptoSuite\":\"AES_CM_128_HMAC_SHA1_80\",\"keyBase64\":\"" KEY28 "\"}", MF_ERR_INVALID_ARG, 0},
      {"{\"cryptoSuite\":\"AES_CM_128_HMAC_SHA1_80\",\"keyBase64\":\"\"}", MF_ERR_INVALID_ARG, 0},
      {"{\"cryptoSuite\":\"AES_CM_128_HMAC_SHA1_80\",\"keyBase64\":\"!!!!\"}", MF_ERR_INVALID_ARG, 0},
      {"{\"cryptoSuite\":\"AES_CM_128_HMAC_SHA1_80\",\"keyBase64\":\"AAEC AwQF\"}", MF_ERR_INVALID_ARG, 0},
      {"{\"cryptoSuite\":\"AES_CM_128_HMAC_SHA1_80\",\"keyBase64\":\"A=AA\"}", MF_ERR_INVALID_ARG, 0},
      {"{\"cryptoSuite\":\"AES_CM_128_HMAC_SHA1_80\",\"keyBase64\":\"" KEY30 KEY30 "\"}",
       MF_ERR_INVALID_ARG, 0},
      {"{\"cryptoSuite\":\"NULL\",\"keyBase64\":\"" KEY30 "\"}", MF_ERR_INVALID_ARG, 0},
      {"{\"keyBase64\":\"" KEY30 "\"}", MF_ERR_INVALID_ARG, 0},
      {"{\"cryptoSuite\":\"AES_CM_128_HMAC_SHA1_80\",\"keyBase64\":30}", MF_ERR_INVALID_ARG, 0},
      {"\"AES_CM_128_HMAC_SHA1_80\"", MF_ERR_INVALID_ARG, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *j = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    mf_pipe_srtp_t s;
    char err[160] = "";
    mf_err_t e = mf_plain_srtp_parse(j, &s, err, sizeof err);
    if (e != cases[i].want) print_error("case %zu (%s): %s\n", i, cases[i].json, err);
    assert_int_equal(e, cases[i].want);
    if (e == MF_OK) {
      assert_true(s.enabled);
      assert_int_equal(s.key_len, cases[i].len);
      for (size_t k = 0; k < s.key_len; k++) assert_int_equal(s.key[k], k);
      /* round trip through the JSON the API shows */
      json_t *back = mf_plain_srtp_json(&s);
      assert_true(json_equal(back, j));
      json_decref(back);
    } else {
      assert_false(s.enabled);
      assert_true(strlen(err) > 0);
    }
    json_decref(j);
  }
}

/* ------------------------------------------------------------ on a router */

static mf_router_transport_t *make_plain(fx_t *f, const char *options, mf_plain_transport_t **pt) {
  json_t *j = json_loads(options, 0, NULL);
  assert_non_null(j);
  mf_plain_options_t o;
  char err[160] = "";
  assert_int_equal(mf_plain_options_parse(j, &o, err, sizeof err), MF_OK);
  json_decref(j);
  mf_router_transport_t *t = NULL;
  assert_int_equal(mf_router_create_plain_transport(f->router, &o, err, sizeof err, &t), MF_OK);
  *pt = mf_plain_transport_of(mf_router_transport_webrtc(t));
  assert_non_null(*pt);
  assert_false(mf_router_transport_is_pipe(t));
  return t;
}

static mf_err_t connect_with(mf_plain_transport_t *pt, const char *text, char *err, size_t errsz) {
  json_t *j = json_loads(text, 0, NULL);
  assert_non_null(j);
  mf_err_t e = mf_plain_transport_connect_json(pt, j, err, errsz);
  json_decref(j);
  return e;
}

static void test_connect_validation(void **state) {
  fx_t *f = *state;
  static const struct {
    const char *options, *connect;
    mf_err_t want;
    const char *msg;
  } cases[] = {
      {"{}", "{\"ip\":\"127.0.0.1\",\"port\":5004}", MF_OK, NULL},
      {"{}", "{\"ip\":\"127.0.0.2\",\"port\":5004,\"rtcpPort\":5005}", MF_OK, NULL},
      /* the worker listens on 127.0.0.1: its plain sockets are IPv4 */
      {"{}", "{\"ip\":\"::1\",\"port\":5004}", MF_ERR_INVALID_ARG, "must be an IPv4"},
      {"{}", "{\"ip\":\"127.0.0.1\"}", MF_ERR_INVALID_ARG, "required"},
      {"{}", "{\"port\":5004}", MF_ERR_INVALID_ARG, "required"},
      {"{}", "{\"ip\":\"localhost\",\"port\":5004}", MF_ERR_INVALID_ARG, "not an IPv4"},
      {"{}", "{\"ip\":\"300.1.1.1\",\"port\":5004}", MF_ERR_INVALID_ARG, "not an IPv4"},
      {"{}", "{\"ip\":\"0.0.0.0\",\"port\":5004}", MF_ERR_INVALID_ARG, "0.0.0.0"},
      {"{}", "{\"ip\":\"127.0.0.1\",\"port\":0}", MF_ERR_INVALID_ARG, "1..65535"},
      {"{}", "{\"ip\":\"127.0.0.1\",\"port\":65536}", MF_ERR_INVALID_ARG, "1..65535"},
      {"{}", "{\"ip\":\"127.0.0.1\",\"port\":\"5004\"}", MF_ERR_INVALID_ARG, "1..65535"},
      {"{}", "{\"ip\":\"127.0.0.1\",\"port\":5004,\"rtcpPort\":-1}", MF_ERR_INVALID_ARG, "rtcpPort"},
      {"{}", "{\"ip\":5,\"port\":5004}", MF_ERR_INVALID_ARG, "required"},
      {"{}",
       "{\"ip\":\"127.0.0.1\",\"port\":5004,\"srtpParameters\":{\"cryptoSuite\":"
       "\"AES_CM_128_HMAC_SHA1_80\",\"keyBase64\":\"" KEY30 "\"}}",
       MF_ERR_INVALID_ARG, "no enableSrtp"},
      {"{\"comedia\":true}", "{}", MF_OK, NULL},
      {"{\"comedia\":true}", "{\"ip\":\"127.0.0.1\",\"port\":5004}", MF_ERR_INVALID_ARG, "comedia"},
      {"{\"comedia\":true}", "{\"port\":5004}", MF_ERR_INVALID_ARG, "comedia"},
      {"{\"comedia\":true,\"enableSrtp\":true}", "{}", MF_ERR_INVALID_ARG, "required"},
      {"{\"comedia\":true,\"enableSrtp\":true}",
       "{\"srtpParameters\":{\"cryptoSuite\":\"AES_CM_128_HMAC_SHA1_80\",\"keyBase64\":\"" KEY30 "\"}}",
       MF_OK, NULL},
      {"{\"comedia\":true,\"enableSrtp\":true}",
       "{\"srtpParameters\":{\"cryptoSuite\":\"AEAD_AES_128_GCM\",\"keyBase64\":\"" KEY28 "\"}}",
       MF_ERR_INVALID_ARG, "must be the transport's"},
      {"{\"comedia\":true,\"enableSrtp\":true}",
       "{\"srtpParameters\":{\"cryptoSuite\":\"AES_CM_128_HMAC_SHA1_32\",\"keyBase64\":\"" KEY30 "\"}}",
       MF_ERR_INVALID_ARG, "unsupported cryptoSuite"},
      {"{\"enableSrtp\":true,\"srtpCryptoSuite\":\"AEAD_AES_128_GCM\"}",
       "{\"ip\":\"127.0.0.1\",\"port\":5004,\"srtpParameters\":{\"cryptoSuite\":"
       "\"AEAD_AES_128_GCM\",\"keyBase64\":\"" KEY28 "\"}}",
       MF_OK, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_plain_transport_t *pt;
    mf_router_transport_t *t = make_plain(f, cases[i].options, &pt);
    json_t *desc = mf_plain_transport_to_json(pt);
    assert_string_equal(json_string_value(json_object_get(desc, "id")), mf_router_transport_id(t));
    json_t *tuple = json_object_get(desc, "tuple");
    assert_string_equal(json_string_value(json_object_get(tuple, "localIp")), "127.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(tuple, "localPort")),
                     mf_plain_transport_port(pt));
    assert_string_equal(json_string_value(json_object_get(tuple, "protocol")), "udp");
    assert_null(json_object_get(tuple, "remoteIp"));
    assert_int_equal(json_object_get(desc, "srtpParameters") != NULL,
                     strstr(cases[i].options, "enableSrtp") != NULL);
    json_decref(desc);
    char err[160] = "";
    mf_err_t e = connect_with(pt, cases[i].connect, err, sizeof err);
    if (e != cases[i].want) print_error("case %zu (%s): %s\n", i, cases[i].connect, err);
    assert_int_equal(e, cases[i].want);
    mf_webrtc_transport_t *wt = mf_router_transport_webrtc(t);
    bool comedia = strstr(cases[i].options, "comedia") != NULL;
    if (e == MF_OK) {
      assert_int_equal(mf_webrtc_transport_state(wt),
                       comedia ? MF_TRANSPORT_STATE_NEW : MF_TRANSPORT_STATE_CONNECTED);
      assert_int_equal(mf_plain_transport_remote(pt, NULL), !comedia);
      assert_int_equal(connect_with(pt, cases[i].connect, err, sizeof err), MF_ERR_STATE);
      assert_non_null(strstr(err, "already"));
    } else {
      assert_non_null(strstr(err, cases[i].msg));
      assert_int_equal(mf_webrtc_transport_state(wt), MF_TRANSPORT_STATE_NEW);
    }
    mf_router_transport_close(t);
  }
}

static void test_attach_only_to_fresh_plain_pipes(void **state) {
  fx_t *f = *state;
  mf_plain_options_t o = {.rtcp_mux = true};
  char err[160] = "";
  mf_router_transport_t *webrtc, *srtp_pipe, *t;
  assert_int_equal(mf_router_create_webrtc_transport(f->router, &webrtc), MF_OK);
  assert_null(mf_plain_transport_of(mf_router_transport_webrtc(webrtc)));
  assert_int_equal(mf_plain_transport_attach(mf_router_transport_webrtc(webrtc), f->server, &o,
                                             err, sizeof err), MF_ERR_STATE);
  assert_int_equal(mf_router_create_pipe_transport(f->router, true, &srtp_pipe), MF_OK);
  assert_int_equal(mf_plain_transport_attach(mf_router_transport_webrtc(srtp_pipe), f->server, &o,
                                             err, sizeof err), MF_ERR_STATE);
  mf_plain_transport_t *pt;
  t = make_plain(f, "{}", &pt);
  assert_int_equal(mf_plain_transport_attach(mf_router_transport_webrtc(t), f->server, &o, err,
                                             sizeof err), MF_ERR_STATE);
  assert_ptr_equal(mf_plain_transport_of(mf_router_transport_webrtc(t)), pt);
  mf_router_transport_close(t);
  mf_router_transport_close(srtp_pipe);
  mf_router_transport_close(webrtc);
}

/* ------------------------------------------------------------ media */

static const char *const plain_vp8 =
    "{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000}],"
    "\"encodings\":[{\"ssrc\":1111}]}";


/* Runs the loop until fd has a datagram (or a bounded number of iterations: the router's
 * 20 ms timer keeps each one short). Returns its length, 0 when none came. */
static size_t pump_recv(fx_t *f, int fd, uint8_t *buf, size_t cap, int rounds) {
  for (int i = 0; i < rounds; i++) {
    uv_run(&f->loop, UV_RUN_ONCE);
    for (;;) {
      ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
      if (n <= 0) break;
      if (n >= 2 && buf[1] >= 192 && buf[1] <= 223) continue; /* RTCP (SR): not what we wait for */
      return (size_t)n;
    }
  }
  return 0;
}

/* A VP8 keyframe packet (RFC 7741 descriptor S=1, P=0 and the key frame start code). */
static size_t build_rtp(uint8_t *b, uint16_t seq, uint32_t ssrc) {
  static const uint8_t payload[] = {0x10, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a,
                                    0x80, 0x02, 0xe0, 0x01, 0xaa, 0xbb, 0xcc};
  b[0] = 0x80;
  b[1] = 0x80 | 96;
  b[2] = (uint8_t)(seq >> 8);
  b[3] = (uint8_t)seq;
  uint32_t ts = 3000u * seq;
  b[4] = (uint8_t)(ts >> 24); b[5] = (uint8_t)(ts >> 16); b[6] = (uint8_t)(ts >> 8); b[7] = (uint8_t)ts;
  b[8] = (uint8_t)(ssrc >> 24); b[9] = (uint8_t)(ssrc >> 16); b[10] = (uint8_t)(ssrc >> 8); b[11] = (uint8_t)ssrc;
  memcpy(b + 12, payload, sizeof payload);
  return 12 + sizeof payload;
}

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

typedef struct {
  mf_router_transport_t *in, *out;
  mf_plain_transport_t *pin, *pout;
  mf_consumer_t *consumer;
  uint32_t consumer_ssrc;
  uint8_t consumer_pt;
} chain_t;

/* in: comedia (producer ssrc 1111), out: connected to recv_port (a consumer of it). */
static void make_chain(fx_t *f, chain_t *c, const char *in_opts, const char *out_opts,
                       const char *out_connect_extra, uint16_t recv_port) {
  memset(c, 0, sizeof *c);
  c->in = make_plain(f, in_opts, &c->pin);
  c->out = make_plain(f, out_opts, &c->pout);
  char text[512], err[256] = "";
  snprintf(text, sizeof text, "{\"ip\":\"127.0.0.1\",\"port\":%u%s}", recv_port, out_connect_extra);
  assert_int_equal(connect_with(c->pout, text, err, sizeof err), MF_OK);
  json_t *j = json_loads(plain_vp8, 0, NULL);
  static mf_rtp_parameters_t params;
  assert_int_equal(mf_rtp_parameters_from_json(j, "rtpParameters", &params, err, sizeof err), MF_OK);
  json_decref(j);
  mf_producer_t *p = NULL;
  mf_err_t e = mf_router_produce(c->in, MF_MEDIA_KIND_VIDEO, &params, false, err, sizeof err, &p);
  if (e) print_error("produce: %s\n", err);
  assert_int_equal(e, MF_OK);
  e = mf_router_consume(c->out, mf_producer_id(p), mf_router_rtp_capabilities(f->router), false,
                        err, sizeof err, &c->consumer);
  if (e) print_error("consume: %s\n", err);
  assert_int_equal(e, MF_OK);
  mf_rtp_parameters_t *cp = mf_consumer_rtp_parameters_copy(c->consumer);
  assert_non_null(cp);
  c->consumer_ssrc = cp->encodings[0].ssrc;
  c->consumer_pt = cp->codecs[0].payload_type;
  free(cp);
}

static void test_comedia_plain_forwarding(void **state) {
  fx_t *f = *state;
  uint16_t send_port, other_port, recv_port;
  int sender = mf_test_udp_open(&send_port), other = mf_test_udp_open(&other_port), receiver = mf_test_udp_open(&recv_port);
  chain_t c;
  make_chain(f, &c, "{\"comedia\":true}", "{}", "", recv_port);
  assert_int_equal(mf_webrtc_transport_state(mf_router_transport_webrtc(c.in)), MF_TRANSPORT_STATE_NEW);

  uint8_t pkt[256], got[2048];
  /* not RTP: dropped, and no remote learnt from it */
  static const uint8_t junk[] = {0x00, 0x01, 0x00, 0x00};
  mf_test_udp_send(other, mf_plain_transport_port(c.pin), junk, sizeof junk);
  size_t n = build_rtp(pkt, 1, 1111);
  mf_test_udp_send(sender, mf_plain_transport_port(c.pin), pkt, n);
  size_t m = pump_recv(f, receiver, got, sizeof got, 50);
  assert_true(m >= 12);
  assert_int_equal(rd32(got + 8), c.consumer_ssrc);
  assert_int_equal(got[1] & 0x7f, c.consumer_pt);
  /* the payload arrives unchanged (after any header extensions the consumer added) */
  assert_memory_equal(got + m - (n - 12), pkt + 12, n - 12);

  mf_plain_transport_stats_t st;
  mf_plain_transport_get_stats(c.pin, &st);
  assert_int_equal(st.dropped_not_rtp, 1);
  struct sockaddr_storage remote;
  assert_true(mf_plain_transport_remote(c.pin, &remote));
  assert_int_equal(ntohs(((struct sockaddr_in *)&remote)->sin_port), send_port);
  assert_int_equal(mf_webrtc_transport_state(mf_router_transport_webrtc(c.in)),
                   MF_TRANSPORT_STATE_CONNECTED);
  json_t *desc = mf_plain_transport_to_json(c.pin);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(desc, "tuple"), "remotePort")),
                   send_port);
  json_decref(desc);

  /* another source, once the remote is known: dropped */
  n = build_rtp(pkt, 2, 1111);
  mf_test_udp_send(other, mf_plain_transport_port(c.pin), pkt, n);
  assert_int_equal(pump_recv(f, receiver, got, sizeof got, 5), 0);
  mf_plain_transport_get_stats(c.pin, &st);
  assert_int_equal(st.dropped_unknown_source, 1);
  /* the remote keeps going */
  n = build_rtp(pkt, 3, 1111);
  mf_test_udp_send(sender, mf_plain_transport_port(c.pin), pkt, n);
  assert_true(pump_recv(f, receiver, got, sizeof got, 50) >= 12);

  mf_webrtc_transport_stats_t ws;
  mf_webrtc_transport_get_stats(mf_router_transport_webrtc(c.out), &ws);
  assert_true(ws.rtp_packets_sent >= 2);
  json_t *stats = mf_webrtc_transport_stats_json(mf_router_transport_webrtc(c.out));
  assert_string_equal(json_string_value(json_object_get(json_array_get(stats, 0), "type")),
                      "plain-rtp-transport");
  json_decref(stats);
  mf_router_transport_close(c.in);
  mf_router_transport_close(c.out);
  close(sender);
  close(other);
  close(receiver);
}

static void srtp_forwarding(fx_t *f, const char *suite, const char *client_key_b64) {
  uint16_t send_port, recv_port;
  int sender = mf_test_udp_open(&send_port), receiver = mf_test_udp_open(&recv_port);
  char in_opts[160], out_opts[160], extra[256], conn[256], err[256] = "";
  snprintf(in_opts, sizeof in_opts, "{\"comedia\":true,\"enableSrtp\":true,\"srtpCryptoSuite\":\"%s\"}", suite);
  snprintf(out_opts, sizeof out_opts, "{\"enableSrtp\":true,\"srtpCryptoSuite\":\"%s\"}", suite);
  snprintf(extra, sizeof extra, ",\"srtpParameters\":{\"cryptoSuite\":\"%s\",\"keyBase64\":\"%s\"}",
           suite, client_key_b64);
  chain_t c;
  make_chain(f, &c, in_opts, out_opts, extra, recv_port);

  /* the client's sending session, keyed like the connect() below */
  snprintf(conn, sizeof conn, "{\"cryptoSuite\":\"%s\",\"keyBase64\":\"%s\"}", suite, client_key_b64);
  json_t *jk = json_loads(conn, 0, NULL);
  mf_pipe_srtp_t client_key, wrong_key;
  assert_int_equal(mf_plain_srtp_parse(jk, &client_key, err, sizeof err), MF_OK);
  json_decref(jk);
  wrong_key = client_key;
  wrong_key.key[0] ^= 0xff;
  mf_srtp_session_t *tx, *tx_wrong, *rx;
  assert_int_equal(mf_srtp_session_create(client_key.profile, client_key.key, client_key.key_len, false, &tx), MF_OK);
  assert_int_equal(mf_srtp_session_create(wrong_key.profile, wrong_key.key, wrong_key.key_len, false, &tx_wrong), MF_OK);
  /* the egress side's key comes from its JSON (what an application hands to GStreamer) */
  json_t *desc = mf_plain_transport_to_json(c.pout);
  mf_pipe_srtp_t server_key;
  assert_int_equal(mf_plain_srtp_parse(json_object_get(desc, "srtpParameters"), &server_key, err, sizeof err), MF_OK);
  json_decref(desc);
  assert_int_equal(mf_srtp_session_create(server_key.profile, server_key.key, server_key.key_len, true, &rx), MF_OK);

  uint8_t pkt[256], got[2048];
  size_t n = build_rtp(pkt, 1, 1111), len = n;
  assert_int_equal(mf_srtp_protect_rtp(tx, pkt, &len, sizeof pkt), MF_OK);
  /* before connect(): no key yet */
  mf_test_udp_send(sender, mf_plain_transport_port(c.pin), pkt, len);
  assert_int_equal(pump_recv(f, receiver, got, sizeof got, 5), 0);
  mf_plain_transport_stats_t st;
  mf_plain_transport_get_stats(c.pin, &st);
  assert_int_equal(st.dropped_no_key, 1);
  snprintf(conn, sizeof conn, "{\"srtpParameters\":{\"cryptoSuite\":\"%s\",\"keyBase64\":\"%s\"}}", suite,
           client_key_b64);
  assert_int_equal(connect_with(c.pin, conn, err, sizeof err), MF_OK);
  assert_false(mf_plain_transport_remote(c.pin, NULL));

  /* a wrong key does not authenticate, and names no remote */
  n = build_rtp(pkt, 2, 1111);
  len = n;
  assert_int_equal(mf_srtp_protect_rtp(tx_wrong, pkt, &len, sizeof pkt), MF_OK);
  mf_test_udp_send(sender, mf_plain_transport_port(c.pin), pkt, len);
  assert_int_equal(pump_recv(f, receiver, got, sizeof got, 5), 0);
  mf_plain_transport_get_stats(c.pin, &st);
  assert_int_equal(st.srtp_failures, 1);
  assert_false(mf_plain_transport_remote(c.pin, NULL));

  for (uint16_t seq = 3; seq < 6; seq++) {
    uint8_t clear[256];
    n = build_rtp(pkt, seq, 1111);
    memcpy(clear, pkt, n);
    len = n;
    assert_int_equal(mf_srtp_protect_rtp(tx, pkt, &len, sizeof pkt), MF_OK);
    mf_test_udp_send(sender, mf_plain_transport_port(c.pin), pkt, len);
    size_t m = pump_recv(f, receiver, got, sizeof got, 50);
    assert_true(m > 12);
    assert_int_equal(mf_srtp_unprotect_rtp(rx, got, &m), MF_OK);
    assert_int_equal(rd32(got + 8), c.consumer_ssrc);
    assert_memory_equal(got + m - (n - 12), clear + 12, n - 12);
  }
  assert_true(mf_plain_transport_remote(c.pin, NULL));
  mf_srtp_session_free(tx);
  mf_srtp_session_free(tx_wrong);
  mf_srtp_session_free(rx);
  mf_router_transport_close(c.in);
  mf_router_transport_close(c.out);
  close(sender);
  close(receiver);
}

static void test_srtp_forwarding_aes_cm(void **state) {
  srtp_forwarding(*state, "AES_CM_128_HMAC_SHA1_80", KEY30);
}

static void test_srtp_forwarding_gcm(void **state) {
  srtp_forwarding(*state, "AEAD_AES_128_GCM", KEY28);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options_parse),
      cmocka_unit_test(test_srtp_parse),
      cmocka_unit_test_setup_teardown(test_connect_validation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_attach_only_to_fresh_plain_pipes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_comedia_plain_forwarding, setup, teardown),
      cmocka_unit_test_setup_teardown(test_srtp_forwarding_aes_cm, setup, teardown),
      cmocka_unit_test_setup_teardown(test_srtp_forwarding_gcm, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
