/* SDP media section <-> RtpParameters (node/sdp_rtp.h), in both directions: fmtp text
 * from integer, real and string parameters (and back: digit strings become integers),
 * rtcp-rsize from rtcp.reducedSize, a=ssrc / FID from the first encoding, the msid stream
 * and cname defaults; refusals for a non-media kind, no encodings, values that do not fit
 * the SDP fields, sections without an rtpmap, a mid or cname too long; rid encodings taken
 * only for the send direction, a payload without rtpmap skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "node/sdp_rtp.h"

static mf_rtp_parameters_t *params_from(const char *text) {
  static mf_rtp_parameters_t p;
  json_t *j = json_loads(text, 0, NULL);
  assert_non_null(j);
  char err[256] = "";
  mf_err_t e = mf_rtp_parameters_from_json(j, "rtpParameters", &p, err, sizeof err);
  if (e) print_error("%s\n", err);
  assert_int_equal(e, MF_OK);
  json_decref(j);
  return &p;
}

static void test_media_from_parameters(void **state) {
  (void)state;
  mf_rtp_parameters_t *p = params_from(
      "{\"mid\":\"a1\",\"codecs\":[{\"mimeType\":\"audio/opus\",\"payloadType\":111,\"clockRate\":48000,"
      "\"channels\":2,\"parameters\":{\"useinbandfec\":1,\"x-real\":0.5,\"x-text\":\"on\"},"
      "\"rtcpFeedback\":[{\"type\":\"transport-cc\"}]},"
      "{\"mimeType\":\"audio/PCMU\",\"payloadType\":0,\"clockRate\":8000}],"
      "\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"id\":1}],"
      "\"encodings\":[{\"ssrc\":11,\"rtx\":{\"ssrc\":12}}],"
      "\"rtcp\":{\"cname\":\"cn\",\"reducedSize\":false}}");
  static mf_sdp_media_t m;
  assert_int_equal(mf_sdp_media_from_rtp_parameters(p, MF_MEDIA_KIND_AUDIO, MF_SDP_DIR_SENDONLY, "s1", &m), MF_OK);
  assert_int_equal(m.kind, MF_SDP_KIND_AUDIO);
  assert_string_equal(m.mid, "a1");
  assert_false(m.rtcp_rsize);
  assert_int_equal(m.payload_count, 2);
  assert_string_equal(m.payloads[0].name, "opus");
  assert_int_equal(m.payloads[0].channels, 2);
  assert_string_equal(m.payloads[0].fmtp, "useinbandfec=1;x-real=0.5;x-text=on");
  assert_int_equal(m.payloads[1].channels, 0); /* mono: no channel count in the rtpmap */
  assert_int_equal(m.ssrc_count, 2);
  assert_string_equal(m.ssrcs[1].cname, "cn");
  assert_string_equal(m.ssrcs[0].msid, "s1 a1");
  assert_int_equal(m.ssrc_group_count, 1);
  assert_string_equal(m.ssrc_groups[0].semantics, "FID");

  /* and back: the same codecs, digit strings as integers, the FID rtx */
  static mf_rtp_parameters_t back;
  char err[160] = "";
  assert_int_equal(mf_sdp_rtp_parameters_from_media(&m, &back, err, sizeof err), MF_OK);
  assert_int_equal(back.codec_count, 2);
  int64_t v = 0;
  assert_true(mf_rtp_params_get_int(&back.codecs[0].parameters, "useinbandfec", &v));
  assert_int_equal(v, 1);
  assert_string_equal(mf_rtp_params_find(&back.codecs[0].parameters, "x-text")->str_value, "on");
  assert_int_equal(back.codecs[1].channels, 1);
  assert_true(back.encodings[0].has_rtx);
  assert_int_equal(back.encodings[0].rtx_ssrc, 12);
  assert_string_equal(back.rtcp.cname, "cn");
  assert_false(back.rtcp.reduced_size);

  /* no rtcp, no ssrc, no stream id: defaults and no a=ssrc lines */
  p = params_from("{\"mid\":\"v\",\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000}],"
                  "\"encodings\":[{\"rid\":\"h\"}]}");
  assert_int_equal(mf_sdp_media_from_rtp_parameters(p, MF_MEDIA_KIND_VIDEO, MF_SDP_DIR_SENDRECV, NULL, &m), MF_OK);
  assert_true(m.rtcp_rsize);
  assert_int_equal(m.ssrc_count, 0);
  p->encodings[0].has_ssrc = true;
  p->encodings[0].ssrc = 5;
  assert_int_equal(mf_sdp_media_from_rtp_parameters(p, MF_MEDIA_KIND_VIDEO, MF_SDP_DIR_SENDRECV, NULL, &m), MF_OK);
  assert_string_equal(m.ssrcs[0].cname, "mafalda");
  assert_string_equal(m.ssrcs[0].msid, "- v");
  assert_int_equal(m.ssrc_group_count, 0);

  /* refusals */
  assert_int_equal(mf_sdp_media_from_rtp_parameters(p, MF_MEDIA_KIND_NONE, MF_SDP_DIR_SENDRECV, NULL, &m),
                   MF_ERR_INVALID_ARG);
  static mf_rtp_parameters_t bad;
  bad = *p;
  bad.encoding_count = 0;
  assert_int_equal(mf_sdp_media_from_rtp_parameters(&bad, MF_MEDIA_KIND_VIDEO, MF_SDP_DIR_SENDRECV, NULL, &m),
                   MF_ERR_INVALID_ARG);
  bad = *p;
  memset(bad.codecs[0].mime_type, 'x', sizeof bad.codecs[0].mime_type - 1); /* no '/', too long */
  bad.codecs[0].mime_type[sizeof bad.codecs[0].mime_type - 1] = '\0';
  assert_int_equal(mf_sdp_media_from_rtp_parameters(&bad, MF_MEDIA_KIND_VIDEO, MF_SDP_DIR_SENDRECV, NULL, &m),
                   MF_ERR_INVALID_ARG);
  /* more parameters than the fmtp line holds: cut, still terminated */
  bad = *p;
  for (int i = 0; i < 12; i++) {
    char name[16], value[MF_RTP_PARAM_VALUE_MAX];
    snprintf(name, sizeof name, "k%d", i);
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    assert_int_equal(mf_rtp_params_set_str(&bad.codecs[0].parameters, name, value), MF_OK);
  }
  assert_int_equal(mf_sdp_media_from_rtp_parameters(&bad, MF_MEDIA_KIND_VIDEO, MF_SDP_DIR_SENDRECV, NULL, &m), MF_OK);
  assert_true(strlen(m.payloads[0].fmtp) < sizeof m.payloads[0].fmtp);
}

static void test_parameters_from_media(void **state) {
  (void)state;
  static mf_sdp_media_t m;
  static mf_rtp_parameters_t out;
  char err[160] = "";
  memset(&m, 0, sizeof m);
  m.kind = MF_SDP_KIND_APPLICATION;
  snprintf(m.mid, sizeof m.mid, "d");
  assert_int_equal(mf_sdp_rtp_parameters_from_media(&m, &out, err, sizeof err), MF_ERR_INVALID_ARG);
  assert_non_null(strstr(err, "not an audio or video section"));
  assert_int_equal(mf_sdp_rtp_parameters_from_media(&m, &out, NULL, 0), MF_ERR_INVALID_ARG);

  m.kind = MF_SDP_KIND_VIDEO;
  m.payload_count = 1;
  m.payloads[0].pt = 96; /* no rtpmap: skipped, and then no codec at all */
  assert_int_equal(mf_sdp_rtp_parameters_from_media(&m, &out, err, sizeof err), MF_ERR_INVALID_ARG);
  assert_non_null(strstr(err, "no codec with an rtpmap"));

  m.payload_count = 2;
  m.payloads[1].pt = 97;
  snprintf(m.payloads[1].name, sizeof m.payloads[1].name, "VP8");
  m.payloads[1].clock_rate = 90000;
  snprintf(m.payloads[1].fmtp, sizeof m.payloads[1].fmtp, " a=12; =x;noeq; b=1a;c=");
  m.rid_count = 2;
  snprintf(m.rids[0].id, sizeof m.rids[0].id, "lo");
  m.rids[0].direction = MF_SDP_RID_SEND;
  snprintf(m.rids[1].id, sizeof m.rids[1].id, "in");
  m.rids[1].direction = MF_SDP_RID_RECV;
  assert_int_equal(mf_sdp_rtp_parameters_from_media(&m, &out, err, sizeof err), MF_OK);
  assert_int_equal(out.codec_count, 1);
  assert_string_equal(out.codecs[0].mime_type, "video/VP8");
  assert_int_equal(out.codecs[0].channels, 0);
  int64_t v;
  assert_true(mf_rtp_params_get_int(&out.codecs[0].parameters, "a", &v));
  assert_int_equal(v, 12);
  assert_string_equal(mf_rtp_params_find(&out.codecs[0].parameters, "b")->str_value, "1a");
  assert_null(mf_rtp_params_find(&out.codecs[0].parameters, "noeq"));
  assert_int_equal(out.encoding_count, 1); /* the send rid only */
  assert_string_equal(out.encodings[0].rid, "lo");

  /* neither rids nor ssrcs: one encoding, matched by mid later */
  m.rid_count = 0;
  assert_int_equal(mf_sdp_rtp_parameters_from_media(&m, &out, err, sizeof err), MF_OK);
  assert_int_equal(out.encoding_count, 1);
  assert_false(out.encodings[0].has_ssrc);

  /* an FID group naming another ssrc is not this encoding's rtx */
  m.ssrc_count = 1;
  m.ssrcs[0].ssrc = 100;
  m.ssrc_group_count = 2;
  snprintf(m.ssrc_groups[0].semantics, sizeof m.ssrc_groups[0].semantics, "FID");
  m.ssrc_groups[0].ssrc_count = 2;
  m.ssrc_groups[0].ssrcs[0] = 300;
  m.ssrc_groups[0].ssrcs[1] = 301;
  snprintf(m.ssrc_groups[1].semantics, sizeof m.ssrc_groups[1].semantics, "SIM");
  m.ssrc_groups[1].ssrc_count = 2;
  m.ssrc_groups[1].ssrcs[0] = 100;
  m.ssrc_groups[1].ssrcs[1] = 101;
  assert_int_equal(mf_sdp_rtp_parameters_from_media(&m, &out, err, sizeof err), MF_OK);
  assert_int_equal(out.encodings[0].ssrc, 100);
  assert_false(out.encodings[0].has_rtx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_media_from_parameters),
      cmocka_unit_test(test_parameters_from_media),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
