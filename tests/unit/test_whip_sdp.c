/* node/whip_sdp.c: WHIP/WHEP URLs and headers, the transport JSON for SDP, offer checks,
 * and the answers (codec choice against the router's capabilities, WHEP capabilities and
 * the consumers' sections). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/ortc.h"
#include "node/whip_sdp.h"

#define UUID "3b241101-e2bb-4255-8caf-4136c566a962"
#define FP "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99"

static void test_path(void **state) {
  static const struct {
    const char *uri;
    mf_err_t err;
    bool whep;
    const char *room, *id;
  } cases[] = {
      {"/whip/room", MF_OK, false, "room", ""},
      {"/whip/room/", MF_OK, false, "room", ""},
      {"/whep/room?x=1", MF_OK, true, "room", ""},
      {"/whip/room/" UUID, MF_OK, false, "room", UUID},
      {"/whep/a%20b/" UUID "#frag", MF_OK, true, "a b", UUID},
      {"/whip/%41", MF_OK, false, "A", ""},
      {"/whip/", MF_ERR_NOT_FOUND, false, "", ""},
      {"/whip", MF_ERR_NOT_FOUND, false, "", ""},
      {"/whipx/room", MF_ERR_NOT_FOUND, false, "", ""},
      {"/whap/room", MF_ERR_NOT_FOUND, false, "", ""},
      {"/whip//" UUID, MF_ERR_NOT_FOUND, false, "", ""},
      {"/whip/room/not-a-uuid", MF_ERR_NOT_FOUND, false, "", ""},
      {"/whip/room/" UUID "/x", MF_ERR_NOT_FOUND, false, "", ""},
      {"/whip/a%2fb", MF_ERR_NOT_FOUND, false, "", ""},  /* encoded '/' */
      {"/whip/a%0ab", MF_ERR_NOT_FOUND, false, "", ""},  /* control character */
      {"/whip/a%zz", MF_ERR_NOT_FOUND, false, "", ""},
      {"/whip/a%4", MF_ERR_NOT_FOUND, false, "", ""},    /* truncated escape */
      {NULL, MF_ERR_NOT_FOUND, false, "", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_whip_path_t p;
    assert_int_equal(mf_whip_path_parse(cases[i].uri, &p), cases[i].err);
    if (cases[i].err) continue;
    assert_int_equal(p.whep, cases[i].whep);
    assert_string_equal(p.room, cases[i].room);
    assert_string_equal(p.id, cases[i].id);
  }
  char long_room[300] = "/whip/";
  memset(long_room + 6, 'r', 129);
  mf_whip_path_t p;
  assert_int_equal(mf_whip_path_parse(long_room, &p), MF_ERR_NOT_FOUND);
  long_room[6 + 128] = '\0';
  assert_int_equal(mf_whip_path_parse(long_room, &p), MF_OK);
}

static void test_headers(void **state) {
  assert_true(mf_whip_is_sdp_type("application/sdp"));
  assert_true(mf_whip_is_sdp_type("Application/SDP; charset=utf-8"));
  assert_true(mf_whip_is_sdp_type(" application/sdp "));
  assert_false(mf_whip_is_sdp_type("application/sdpx"));
  assert_false(mf_whip_is_sdp_type("text/plain"));
  assert_false(mf_whip_is_sdp_type(""));
  assert_false(mf_whip_is_sdp_type(NULL));
  const char *t;
  size_t n;
  assert_true(mf_whip_bearer("Bearer abc.def", &t, &n));
  assert_int_equal(n, 7);
  assert_memory_equal(t, "abc.def", 7);
  assert_true(mf_whip_bearer("bearer   x  ", &t, &n));
  assert_int_equal(n, 1);
  assert_false(mf_whip_bearer("Bearer", &t, &n));
  assert_false(mf_whip_bearer("Bearer   ", &t, &n));
  assert_false(mf_whip_bearer("Basic eDp5", &t, &n));
  assert_false(mf_whip_bearer("Bearerx abc", &t, &n));
  assert_false(mf_whip_bearer(NULL, &t, &n));
}

static json_t *transport_json(void) {
  return json_pack("{s:s, s:{s:s, s:s, s:b}, s:[{s:s, s:I, s:s, s:s, s:s, s:i, s:s}], "
                   "s:{s:s, s:[{s:s, s:s}, {s:s, s:s}]}}",
                   "id", UUID, "iceParameters", "usernameFragment", "ufrag", "password",
                   "passwordpasswordpass", "iceLite", 1, "iceCandidates", "foundation", "udp", "priority",
                   (json_int_t)2130706431, "ip", "127.0.0.1", "address", "127.0.0.1",
                   "protocol", "udp", "port", 40000, "type", "host", "dtlsParameters", "role",
                   "auto", "fingerprints", "algorithm", "sha-384", "value", "XX", "algorithm",
                   "sha-256", "value", FP);
}

static void test_transport_json(void **state) {
  mf_whip_transport_t t;
  char err[128];
  json_t *j = transport_json();
  assert_int_equal(mf_whip_transport_from_json(j, &t, err, sizeof err), MF_OK);
  assert_string_equal(t.id, UUID);
  assert_string_equal(t.ice_ufrag, "ufrag");
  assert_string_equal(t.fingerprint_alg, "sha-256");
  assert_string_equal(t.fingerprint, FP);
  assert_int_equal(t.candidate_count, 1);
  assert_int_equal(t.candidates[0].port, 40000);
  assert_string_equal(t.candidates[0].address, "127.0.0.1");
  /* malformed variants */
  static const char *const drop[] = {"id", "iceParameters", "dtlsParameters", "iceCandidates"};
  for (size_t i = 0; i < 4; i++) {
    json_t *c = json_deep_copy(j);
    json_object_del(c, drop[i]);
    assert_int_equal(mf_whip_transport_from_json(c, &t, err, sizeof err), MF_ERR_PARSE);
    json_decref(c);
  }
  json_t *c = json_deep_copy(j);
  json_object_set_new(json_array_get(json_object_get(c, "iceCandidates"), 0), "port", json_integer(70000));
  assert_int_equal(mf_whip_transport_from_json(c, &t, err, sizeof err), MF_ERR_PARSE);
  json_decref(c);
  c = json_deep_copy(j);
  json_array_remove(json_object_get(json_object_get(c, "dtlsParameters"), "fingerprints"), 1);
  assert_int_equal(mf_whip_transport_from_json(c, &t, err, sizeof err), MF_ERR_PARSE);
  assert_non_null(strstr(err, "sha-256"));
  json_decref(c);
  assert_int_equal(mf_whip_transport_from_json(NULL, &t, err, sizeof err), MF_ERR_PARSE);
  json_decref(j);
}

#define SESSION "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
#define MEDIA(kind, pts, mid, dir) \
  "m=" kind " 9 UDP/TLS/RTP/SAVPF " pts "\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\n"        \
  "a=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:sha-256 " FP "\r\na=setup:actpass\r\n"   \
  "a=mid:" mid "\r\na=" dir "\r\na=rtcp-mux\r\n"

static const char pub_offer[] =
    SESSION "a=group:BUNDLE 0 1\r\n" MEDIA("audio", "111", "0", "sendonly")
    "a=rtpmap:111 opus/48000/2\r\na=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=extmap:7 urn:example:unknown\r\na=ssrc:1111 cname:c\r\n"
    MEDIA("video", "98 96 97", "1", "sendonly")
    "a=rtpmap:98 H263/90000\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\n"
    "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=ssrc-group:FID 2222 3333\r\na=ssrc:2222 cname:c\r\na=ssrc:3333 cname:c\r\n";

static mf_sdp_t *parse(const char *text) {
  mf_sdp_t *s = calloc(1, sizeof *s);
  assert_int_equal(mf_sdp_parse(text, strlen(text), s), MF_OK);
  return s;
}

static void test_offer_check(void **state) {
  static const struct {
    const char *sdp;
    bool whep;
    mf_err_t err;
  } cases[] = {
      {SESSION MEDIA("video", "96", "0", "sendonly") "a=rtpmap:96 VP8/90000\r\n", false, MF_OK},
      {SESSION MEDIA("video", "96", "0", "sendrecv") "a=rtpmap:96 VP8/90000\r\n", false, MF_OK},
      {SESSION MEDIA("video", "96", "0", "recvonly") "a=rtpmap:96 VP8/90000\r\n", false, MF_ERR_PARSE},
      {SESSION MEDIA("video", "96", "0", "recvonly") "a=rtpmap:96 VP8/90000\r\n", true, MF_OK},
      {SESSION MEDIA("video", "96", "0", "sendonly") "a=rtpmap:96 VP8/90000\r\n", true, MF_ERR_PARSE},
      {SESSION "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
               "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:sha-256 " FP
               "\r\na=mid:0\r\na=sctp-port:5000\r\n", false, MF_ERR_PARSE},
      {SESSION "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=fingerprint:sha-256 " FP
               "\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n", false, MF_ERR_PARSE},
      {SESSION "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\n"
               "a=ice-pwd:abcdefghijklmnopqrstuv\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n",
       false, MF_ERR_PARSE},
      {SESSION, false, MF_ERR_PARSE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_sdp_t *s = parse(cases[i].sdp);
    char err[256] = "";
    mf_err_t e = mf_whip_offer_check(s, cases[i].whep, err, sizeof err);
    if (e != cases[i].err) print_error("case %zu: %s\n", i, err);
    assert_int_equal(e, cases[i].err);
    if (e) assert_true(err[0] != '\0');
    free(s);
  }
}

static mf_rtp_capabilities_t *router_caps(void) {
  mf_rtp_capabilities_t *caps = malloc(sizeof *caps);
  size_t n;
  const mf_rtp_codec_capability_t *codecs = mf_ortc_default_media_codecs(&n);
  char err[128];
  assert_int_equal(mf_ortc_generate_router_rtp_capabilities(codecs, n, caps, err, sizeof err), MF_OK);
  return caps;
}

static mf_whip_transport_t *local_transport(void) {
  mf_whip_transport_t *t = malloc(sizeof *t);
  char err[128];
  json_t *j = transport_json();
  assert_int_equal(mf_whip_transport_from_json(j, t, err, sizeof err), MF_OK);
  json_decref(j);
  return t;
}

static void test_publish_answer(void **state) {
  mf_sdp_t *offer = parse(pub_offer), *answer = calloc(1, sizeof *answer);
  mf_rtp_capabilities_t *caps = router_caps();
  mf_whip_transport_t *t = local_transport();
  json_t *producers = NULL;
  char err[256] = "";
  assert_int_equal(mf_whip_publish_answer(offer, caps, t, answer, &producers, err, sizeof err), MF_OK);
  assert_true(answer->ice_lite);
  assert_int_equal(answer->media_count, 2);
  assert_int_equal(answer->media[0].direction, MF_SDP_DIR_RECVONLY);
  assert_int_equal(answer->media[0].transport.setup, MF_SDP_SETUP_PASSIVE);
  assert_string_equal(answer->media[0].transport.fingerprint, FP);
  assert_int_equal(answer->media[0].payload_count, 1);
  assert_int_equal(answer->media[0].extmap_count, 1); /* the unknown extension is dropped */
  /* video: H263 is offered first but unsupported: VP8 and its RTX remain */
  assert_int_equal(answer->media[1].payload_count, 2);
  assert_int_equal(answer->media[1].payloads[0].pt, 96);
  assert_int_equal(answer->media[1].payloads[1].pt, 97);
  assert_int_equal(json_array_size(producers), 2);
  json_t *video = json_array_get(producers, 1);
  assert_string_equal(json_string_value(json_object_get(video, "kind")), "video");
  json_t *codecs = json_object_get(json_object_get(video, "rtpParameters"), "codecs");
  assert_int_equal(json_array_size(codecs), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(codecs, 0), "mimeType")), "video/VP8");
  json_t *enc = json_array_get(json_object_get(json_object_get(video, "rtpParameters"), "encodings"), 0);
  assert_int_equal(json_integer_value(json_object_get(enc, "ssrc")), 2222);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(enc, "rtx"), "ssrc")), 3333);
  json_decref(producers);
  /* dtlsParameters: actpass -> the peer is the DTLS client */
  json_t *d = mf_whip_dtls_parameters(offer);
  assert_string_equal(json_string_value(json_object_get(d, "role")), "client");
  json_decref(d);

  /* nothing the router supports: MF_ERR_UNSUPPORTED (406) */
  mf_sdp_t *h263 = parse(SESSION MEDIA("video", "98", "0", "sendonly") "a=rtpmap:98 H263/90000\r\n");
  assert_int_equal(mf_whip_publish_answer(h263, caps, t, answer, &producers, err, sizeof err),
                   MF_ERR_UNSUPPORTED);
  assert_null(producers);
  free(h263);
  free(offer);
  free(answer);
  free(caps);
  free(t);
}

static const char play_offer[] =
    SESSION "a=group:BUNDLE v a\r\n" MEDIA("video", "102", "v", "recvonly")
    "a=rtpmap:102 VP8/90000\r\na=rtcp-fb:102 nack pli\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    MEDIA("audio", "109", "a", "recvonly") "a=rtpmap:109 opus/48000/2\r\n"
    MEDIA("audio", "110", "x", "recvonly") "a=rtpmap:110 opus/48000/2\r\n";

static void test_play(void **state) {
  mf_sdp_t *offer = parse(play_offer), *answer = calloc(1, sizeof *answer);
  char err[256] = "";
  json_t *caps = mf_whip_section_capabilities(&offer->media[0], err, sizeof err);
  assert_non_null(caps);
  json_t *c0 = json_array_get(json_object_get(caps, "codecs"), 0);
  assert_int_equal(json_integer_value(json_object_get(c0, "preferredPayloadType")), 102);
  assert_string_equal(json_string_value(json_object_get(c0, "kind")), "video");
  assert_null(json_object_get(c0, "payloadType"));
  json_t *exts = json_object_get(caps, "headerExtensions");
  assert_int_equal(json_array_size(exts), 1); /* sdes:mid left out */
  assert_int_equal(json_integer_value(json_object_get(json_array_get(exts, 0), "preferredId")), 3);
  json_decref(caps);
  assert_true(mf_whip_section_usable(offer, 0, true));
  assert_true(mf_whip_section_usable(offer, 1, true));
  assert_false(mf_whip_section_usable(offer, 2, true)); /* not in BUNDLE */
  assert_false(mf_whip_section_usable(offer, 0, false));

  /* one consumer on the video section; audio gets none */
  json_t *consumer = json_pack(
      "{s:s, s:{s:s, s:[{s:s, s:i, s:i, s:{}, s:[]}], s:[], s:[{s:i}], s:{s:s, s:b, s:b}}}",
      "kind", "video", "rtpParameters", "mid", "0", "codecs", "mimeType", "video/VP8",
      "payloadType", 101, "clockRate", 90000, "parameters", "rtcpFeedback", "headerExtensions",
      "encodings", "ssrc", 12345678, "rtcp", "cname", "sfu", "reducedSize", 1, "mux", 1);
  json_t *consumers[MF_SDP_MAX_MEDIA] = {consumer, NULL, NULL};
  mf_whip_transport_t *t = local_transport();
  assert_int_equal(mf_whip_play_answer(offer, t, consumers, answer, err, sizeof err), MF_OK);
  assert_int_equal(answer->media_count, 3);
  assert_string_equal(answer->media[0].mid, "v");
  assert_int_equal(answer->media[0].direction, MF_SDP_DIR_SENDONLY);
  assert_int_equal(answer->media[0].ssrc_count, 1);
  assert_int_equal(answer->media[0].ssrcs[0].ssrc, 12345678);
  assert_int_equal(answer->media[1].direction, MF_SDP_DIR_INACTIVE);
  assert_int_equal(answer->media[2].port, 0); /* outside BUNDLE: rejected */
  char text[16384];
  assert_int_equal(mf_sdp_write(answer, text, sizeof text, NULL), MF_OK);
  /* a consumer whose parameters are unusable */
  json_object_set_new(json_object_get(consumer, "rtpParameters"), "codecs", json_string("x"));
  assert_int_equal(mf_whip_play_answer(offer, t, consumers, answer, err, sizeof err), MF_ERR_PARSE);
  json_decref(consumer);
  free(t);
  free(offer);
  free(answer);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_path),         cmocka_unit_test(test_headers),
      cmocka_unit_test(test_transport_json), cmocka_unit_test(test_offer_check),
      cmocka_unit_test(test_publish_answer), cmocka_unit_test(test_play),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
