/* WHIP/WHEP over real HTTP on loopback, against the gateway on a real worker: the error
 * paths (no body, wrong content type, garbage or unacceptable SDP, unknown room, producer
 * or resource, methods, tokens) and the signalling of a publish + playback without media
 * (synthetic offers): 201 with an ICE-lite answer and a Location, the WHEP answer carrying
 * the consumers, DELETE (twice) and no transport left. Media itself: test_gst_whip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <time.h>

#include "common/log.h"
#include "node/api/jwt.h"
#include "node/gateway.h"
#include "node/sdp.h"
#include "node/srtp.h"
#include "tests/support/http_client.h"
#include "tests/support/ws_client.h"

#define IO_MS 5000
#define SECRET "whip-test-secret"

typedef struct {
  mf_dtls_cert_t *cert;
  mf_worker_t *worker;
  mf_gateway_t *gw;
  uint16_t port;
} fx_t;

static int setup_mode(void **state, const char *secret) {
  static fx_t f;
  memset(&f, 0, sizeof f);
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  if (mf_srtp_library_init() || mf_dtls_cert_generate(&f.cert)) return -1;
  mf_worker_options_t o = {.index = 0, .cpu = -1, .rtc_listen_ip = "127.0.0.1",
                           .announced_ip = "127.0.0.1", .cert = f.cert};
  if (mf_worker_start(&o, &f.worker)) return -1;
  mf_gateway_options_t go = {.listen = "127.0.0.1:0", .secret = secret, .static_dir = "",
                             .grace_ms = 1000};
  if (mf_gateway_start(&go, &f.worker, 1, &f.gw)) return -1;
  f.port = mf_gateway_port(f.gw);
  *state = &f;
  return 0;
}

static int setup_dev(void **state) { return setup_mode(state, ""); }
static int setup_secret(void **state) { return setup_mode(state, SECRET); }

static int teardown(void **state) {
  fx_t *f = *state;
  mf_gateway_stop(f->gw);
  mf_worker_stop(f->worker);
  mf_dtls_cert_free(f->cert);
  nng_fini();
  return 0;
}

#define FP "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99"

/* A publisher's offer (Opus + VP8 with RTX) as webrtcbin/OBS would send it. */
static const char whip_offer[] =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\n"
    "a=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:sha-256 " FP "\r\na=setup:actpass\r\n"
    "a=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=ssrc:1111 cname:pub\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\n"
    "a=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:sha-256 " FP "\r\na=setup:actpass\r\n"
    "a=mid:1\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\n"
    "a=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
    "a=rtpmap:98 H263/90000\r\na=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=ssrc-group:FID 2222 3333\r\na=ssrc:2222 cname:pub\r\na=ssrc:3333 cname:pub\r\n";

/* A player's offer: recvonly video then audio, its own payload types (webrtcbin's). */
static const char whep_offer[] =
    "v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE video0 audio1\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:wxyz\r\n"
    "a=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:sha-256 " FP "\r\na=setup:actpass\r\n"
    "a=mid:video0\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n"
    "a=rtcp-fb:96 nack pli\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:wxyz\r\n"
    "a=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:sha-256 " FP "\r\na=setup:actpass\r\n"
    "a=mid:audio1\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:111 OPUS/48000/2\r\n";

static const char *const sdp_hdr[] = {"Content-Type: application/sdp", NULL};

static int post(fx_t *f, const char *path, const char *const *hdr, const char *body,
                test_http_res_t *res) {
  return test_http(f->port, "POST", path, hdr, body, body ? strlen(body) : 0, IO_MS, res);
}

static void expect(fx_t *f, const char *method, const char *path, const char *const *hdr,
                   const char *body, int status, const char *body_has) {
  test_http_res_t res;
  assert_int_equal(test_http(f->port, method, path, hdr, body, body ? strlen(body) : 0, IO_MS, &res), 0);
  if (res.status != status || (body_has && !strstr(res.body, body_has)))
    print_error("%s %s: %d '%s' (want %d '%s')\n", method, path, res.status, res.body, status,
                body_has ? body_has : "");
  assert_int_equal(res.status, status);
  if (body_has) assert_non_null(strstr(res.body, body_has));
  test_http_res_free(&res);
}

/* Polls the gateway's counts until no transport/producer/consumer is left (bounded). */
static bool all_closed(fx_t *f) {
  for (int i = 0; i < 200; i++) {
    mf_gateway_counts_t c;
    mf_gateway_counts(f->gw, &c, 1);
    if (c.transports == 0 && c.producers == 0 && c.consumers == 0) return true;
    usleep(10000);
  }
  return false;
}

static void test_errors(void **state) {
  fx_t *f = *state;
  expect(f, "POST", "/whip/r1", sdp_hdr, NULL, 400, "no SDP offer");
  static const char *const text_hdr[] = {"Content-Type: text/plain", NULL};
  expect(f, "POST", "/whip/r1", text_hdr, whip_offer, 415, "application/sdp");
  expect(f, "POST", "/whip/r1", NULL, whip_offer, 415, NULL);
  expect(f, "POST", "/whip/r1", sdp_hdr, "hello", 400, "bad SDP offer");
  /* nng refuses bodies over MF_WHIP_BODY_MAX before the handler runs */
  char *big = malloc(70000);
  memset(big, 'a', 69999);
  big[69999] = '\0';
  test_http_res_t res;
  assert_int_equal(post(f, "/whip/r1", sdp_hdr, big, &res), 0);
  assert_int_equal(res.status, 400);
  test_http_res_free(&res);
  free(big);
  expect(f, "POST", "/whip/r1", sdp_hdr, "v=0\r\nm=audio x\r\n", 400, "bad SDP offer");
  /* WHIP needs sendonly media; WHEP recvonly */
  expect(f, "POST", "/whip/r1", sdp_hdr, whep_offer, 400, "recvonly");
  expect(f, "POST", "/whep/r1", sdp_hdr, whip_offer, 400, "sendonly");
  /* only codecs the router lacks: 406 */
  char *h263 = strdup(whip_offer);
  char *m = strstr(h263, "m=audio");
  *m = '\0'; /* keep the session part, then one video section with H263 only */
  char buf[2048];
  snprintf(buf, sizeof buf, "%s%s", h263,
           "m=video 9 UDP/TLS/RTP/SAVPF 98\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\n"
           "a=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:sha-256 " FP "\r\n"
           "a=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:98 H263/90000\r\n");
  free(h263);
  expect(f, "POST", "/whip/r1", sdp_hdr, buf, 406, "codec");
  /* URLs and methods */
  expect(f, "POST", "/whip/", sdp_hdr, whip_offer, 404, NULL);
  expect(f, "POST", "/whip/r1/not-an-id", sdp_hdr, whip_offer, 404, NULL);
  expect(f, "POST", "/whip/r1/3b241101-e2bb-4255-8caf-4136c566a962", sdp_hdr, whip_offer, 405, NULL);
  expect(f, "PATCH", "/whip/r1/3b241101-e2bb-4255-8caf-4136c566a962", NULL, "a=x", 405, "ICE-lite");
  expect(f, "GET", "/whip/r1", NULL, NULL, 405, NULL);
  expect(f, "DELETE", "/whip/r1", NULL, NULL, 405, NULL);
  expect(f, "DELETE", "/whip/r1/3b241101-e2bb-4255-8caf-4136c566a962", NULL, NULL, 404, NULL);
  expect(f, "OPTIONS", "/whip/r1", NULL, NULL, 204, NULL);
  /* WHEP of an empty room or an unknown producer */
  expect(f, "POST", "/whep/empty", sdp_hdr, whep_offer, 404, "no producer");
  expect(f, "POST", "/whep/empty/3b241101-e2bb-4255-8caf-4136c566a962", sdp_hdr, whep_offer, 404,
         "no such producer");
  assert_true(all_closed(f)); /* the refused requests left nothing behind */
}

static void test_publish_play_delete(void **state) {
  fx_t *f = *state;
  test_http_res_t pub, play;
  assert_int_equal(post(f, "/whip/room%20one", sdp_hdr, whip_offer, &pub), 0);
  if (pub.status != 201) print_error("WHIP: %d %s\n", pub.status, pub.body);
  assert_int_equal(pub.status, 201);
  assert_string_equal(pub.content_type, "application/sdp");
  assert_true(strncmp(pub.location, "/whip/room%20one/", 17) == 0);
  mf_sdp_t *a = calloc(1, sizeof *a);
  assert_int_equal(mf_sdp_parse(pub.body, pub.body_len, a), MF_OK);
  assert_true(a->ice_lite);
  assert_int_equal(a->media_count, 2);
  for (size_t i = 0; i < 2; i++) {
    assert_int_equal(a->media[i].direction, MF_SDP_DIR_RECVONLY);
    assert_int_equal(a->media[i].transport.setup, MF_SDP_SETUP_PASSIVE);
    assert_true(a->media[i].candidate_count >= 1);
    assert_string_equal(a->media[i].candidates[0].address, "127.0.0.1");
  }
  /* video keeps VP8 + its RTX, not the H263 the router lacks */
  assert_int_equal(a->media[1].payload_count, 2);
  assert_int_equal(a->media[1].payloads[0].pt, 96);
  assert_int_equal(a->media[1].payloads[1].pt, 97);

  mf_gateway_counts_t c;
  mf_gateway_counts(f->gw, &c, 1);
  assert_int_equal(c.producers, 2);

  assert_int_equal(post(f, "/whep/room%20one", sdp_hdr, whep_offer, &play), 0);
  if (play.status != 201) print_error("WHEP: %d %s\n", play.status, play.body);
  assert_int_equal(play.status, 201);
  assert_true(strncmp(play.location, "/whep/room%20one/", 17) == 0);
  assert_int_equal(mf_sdp_parse(play.body, play.body_len, a), MF_OK);
  assert_int_equal(a->media_count, 2);
  assert_string_equal(a->media[0].mid, "video0");
  assert_int_equal(a->media[0].direction, MF_SDP_DIR_SENDONLY);
  /* The answer describes what the consumers send: the router's payload types (a consumer
   * does not rename them yet), with the codecs the player offered. */
  assert_string_equal(a->media[0].payloads[0].name, "VP8");
  assert_true(a->media[0].ssrc_count >= 1);
  assert_string_equal(a->media[1].payloads[0].name, "opus");
  assert_int_equal(a->media[1].direction, MF_SDP_DIR_SENDONLY);
  assert_true(a->media[1].ssrc_count >= 1);
  free(a);
  mf_gateway_counts(f->gw, &c, 1);
  assert_int_equal(c.consumers, 2);
  assert_int_equal(c.transports, 2);

  expect(f, "DELETE", play.location, NULL, NULL, 200, NULL);
  expect(f, "DELETE", play.location, NULL, NULL, 404, NULL);
  /* the resource id is bound to its room and protocol */
  char wrong[600];
  snprintf(wrong, sizeof wrong, "/whep/other%s", strrchr(pub.location, '/'));
  expect(f, "DELETE", wrong, NULL, NULL, 404, NULL);
  expect(f, "DELETE", pub.location, NULL, NULL, 200, NULL);
  expect(f, "DELETE", pub.location, NULL, NULL, 404, NULL);
  assert_true(all_closed(f));
  test_http_res_free(&pub);
  test_http_res_free(&play);
}

static void test_tokens(void **state) {
  fx_t *f = *state;
  expect(f, "POST", "/whip/r2", sdp_hdr, whip_offer, 401, "token");
  static const char *const bad[] = {"Content-Type: application/sdp", "Authorization: Bearer abc.def.ghi", NULL};
  expect(f, "POST", "/whip/r2", bad, whip_offer, 401, "token");
  static const char *const basic[] = {"Content-Type: application/sdp", "Authorization: Basic eDp5", NULL};
  expect(f, "POST", "/whip/r2", basic, whip_offer, 401, NULL);
  mf_jwt_claims_t cl = {.sub = "obs", .room = "r2", .grants = MF_JWT_GRANT_JOIN,
                        .exp = (int64_t)time(NULL) + 600};
  char tok[1024], auth[1100];
  assert_int_equal(mf_jwt_mint(&cl, (const uint8_t *)SECRET, strlen(SECRET), tok, sizeof tok, NULL), MF_OK);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
  const char *const ok[] = {"Content-Type: application/sdp", auth, NULL};
  expect(f, "POST", "/whip/other-room", ok, whip_offer, 403, "grant");
  test_http_res_t pub;
  assert_int_equal(post(f, "/whip/r2", ok, whip_offer, &pub), 0);
  assert_int_equal(pub.status, 201);
  expect(f, "DELETE", pub.location, NULL, NULL, 401, NULL);
  const char *const del[] = {auth, NULL};
  expect(f, "DELETE", pub.location, del, NULL, 200, NULL);
  expect(f, "DELETE", pub.location, del, NULL, 404, NULL);
  test_http_res_free(&pub);
  assert_true(all_closed(f));
}

/* mafalda_whip_resources from /metrics, polled until it equals want (bounded). */
static long whip_resources(fx_t *f, long want) {
  long n = -1;
  for (int i = 0; i < 200 && n != want; i++) {
    test_http_res_t res;
    if (test_http(f->port, "GET", "/metrics", NULL, NULL, 0, IO_MS, &res) == 0) {
      const char *p = strstr(res.body, "\nmafalda_whip_resources ");
      n = p ? strtol(p + 24, NULL, 10) : -1;
      test_http_res_free(&res);
    }
    if (n != want) usleep(10000);
  }
  return n;
}

/* Sends one API call on the WebSocket and waits for its answer (events skipped). */
static void ws_call(nng_stream *ws, int id, const char *method, json_t *data) {
  json_t *req = json_pack("{s:i, s:s, s:o}", "id", id, "method", method, "data", data);
  char *text = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  assert_int_equal(mf_test_ws_send(ws, text, strlen(text), IO_MS), 0);
  free(text);
  for (;;) {
    json_t *m = mf_test_ws_recv(ws, IO_MS);
    assert_non_null(m);
    bool mine = json_integer_value(json_object_get(m, "id")) == id && !json_object_get(m, "event");
    if (mine) assert_true(json_is_true(json_object_get(m, "ok")));
    json_decref(m);
    if (mine) return;
  }
}

/* A WebSocket member of the room hears the WHIP producers (router.newproducer); closing
 * the router ends the transport (transport.routerclose) and the resource with it. */
static void test_resource_ends_with_transport(void **state) {
  fx_t *f = *state;
  nng_stream *ws = mf_test_ws_dial("127.0.0.1", f->port, NULL, IO_MS);
  assert_non_null(ws);
  ws_call(ws, 1, "router.join", json_pack("{s:s}", "roomId", "rc"));
  ws_call(ws, 2, "router.createWebRtcTransport", json_object());
  test_http_res_t pub;
  assert_int_equal(post(f, "/whip/rc", sdp_hdr, whip_offer, &pub), 0);
  assert_int_equal(pub.status, 201);
  assert_int_equal(whip_resources(f, 1), 1);
  int announced = 0;
  while (announced < 2) {
    json_t *m = mf_test_ws_recv(ws, IO_MS);
    assert_non_null(m);
    const char *ev = json_string_value(json_object_get(m, "event"));
    if (ev && strcmp(ev, "router.newproducer") == 0) {
      const char *res_id = json_string_value(
          json_object_get(json_object_get(json_object_get(m, "data"), "appData"), "whip"));
      assert_non_null(res_id);
      assert_non_null(strstr(pub.location, res_id));
      announced++;
    }
    json_decref(m);
  }
  ws_call(ws, 3, "router.close", json_object());
  mf_test_ws_free(ws);
  assert_int_equal(whip_resources(f, 0), 0);
  expect(f, "DELETE", pub.location, NULL, NULL, 404, NULL);
  assert_true(all_closed(f));
  test_http_res_free(&pub);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_errors, setup_dev, teardown),
      cmocka_unit_test_setup_teardown(test_publish_play_delete, setup_dev, teardown),
      cmocka_unit_test_setup_teardown(test_resource_ends_with_transport, setup_dev, teardown),
      cmocka_unit_test_setup_teardown(test_tokens, setup_secret, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
