/* SDP helpers beyond test_sdp.c: the writer refusing descriptions whose counts exceed their
 * arrays (each count, per media section and per payload / group) or a buffer too small,
 * the fmtp / mid / name helpers on missing or unknown input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/sdp.h"

static const char offer[] =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n"
    "a=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\na=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10; useinbandfec=1\r\n";

typedef void (*breaker_t)(mf_sdp_t *s);
static void many_media(mf_sdp_t *s) { s->media_count = MF_SDP_MAX_MEDIA + 1; }
static void many_bundle(mf_sdp_t *s) { s->bundle_count = MF_SDP_MAX_MEDIA + 1; }
static void many_payloads(mf_sdp_t *s) { s->media[0].payload_count = MF_SDP_MAX_PAYLOADS + 1; }
static void many_extmaps(mf_sdp_t *s) { s->media[0].extmap_count = MF_SDP_MAX_EXTMAPS + 1; }
static void many_ssrcs(mf_sdp_t *s) { s->media[0].ssrc_count = MF_SDP_MAX_SSRCS + 1; }
static void many_groups(mf_sdp_t *s) { s->media[0].ssrc_group_count = MF_SDP_MAX_SSRC_GROUPS + 1; }
static void many_rids(mf_sdp_t *s) { s->media[0].rid_count = MF_SDP_MAX_RIDS + 1; }
static void many_cands(mf_sdp_t *s) { s->media[0].candidate_count = MF_SDP_MAX_CANDIDATES + 1; }
static void many_fb(mf_sdp_t *s) { s->media[0].payloads[0].fb_count = MF_SDP_MAX_RTCP_FB + 1; }
static void many_group_ssrcs(mf_sdp_t *s) {
  s->media[0].ssrc_group_count = 1;
  s->media[0].ssrc_groups[0].ssrc_count = MF_SDP_MAX_GROUP_SSRCS + 1;
}

static void test_writer_refuses_bad_counts(void **state) {
  (void)state;
  static mf_sdp_t sdp, bad;
  assert_int_equal(mf_sdp_parse(offer, sizeof offer - 1, &sdp), MF_OK);
  static char out[8192];
  size_t len = 99;
  assert_int_equal(mf_sdp_write(&sdp, out, sizeof out, &len), MF_OK);
  assert_true(len > 0);
  size_t full = len;
  static const breaker_t breakers[] = {many_media, many_bundle, many_payloads, many_extmaps,
                                       many_ssrcs, many_groups, many_rids, many_cands, many_fb,
                                       many_group_ssrcs};
  for (size_t i = 0; i < sizeof breakers / sizeof breakers[0]; i++) {
    bad = sdp;
    breakers[i](&bad);
    len = 99;
    out[0] = 'x';
    assert_int_equal(mf_sdp_write(&bad, out, sizeof out, &len), MF_ERR_INVALID_ARG);
    assert_int_equal(len, 0);
    assert_int_equal(out[0], '\0');
  }
  assert_int_equal(mf_sdp_write(NULL, out, sizeof out, &len), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sdp_write(&sdp, NULL, sizeof out, &len), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sdp_write(&sdp, out, 0, &len), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sdp_write(&sdp, out, sizeof out, NULL), MF_OK);
  /* one byte short: refused, nothing half-written left behind */
  assert_int_not_equal(mf_sdp_write(&sdp, out, full, &len), MF_OK);
  assert_int_equal(out[0], '\0');
  assert_int_equal(mf_sdp_write(&sdp, out, full + 1, &len), MF_OK);
}

static void test_helpers(void **state) {
  (void)state;
  char v[8];
  assert_int_equal(mf_sdp_fmtp_param(NULL, "a", v, sizeof v), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sdp_fmtp_param("a=1", NULL, v, sizeof v), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sdp_fmtp_param("a=1", "a", NULL, sizeof v), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sdp_fmtp_param("a=1", "a", v, 0), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sdp_fmtp_param("flag; B = 22 ;c=3", "b", v, sizeof v), MF_OK);
  assert_string_equal(v, "22");
  assert_int_equal(mf_sdp_fmtp_param("b=123456789", "b", v, sizeof v), MF_ERR_LIMIT);
  assert_int_equal(mf_sdp_fmtp_param("flag;;", "flag", v, sizeof v), MF_ERR_NOT_FOUND);

  static mf_sdp_t sdp;
  assert_int_equal(mf_sdp_parse(offer, sizeof offer - 1, &sdp), MF_OK);
  assert_int_equal(mf_sdp_find_mid(&sdp, "0"), 0);
  assert_int_equal(mf_sdp_find_mid(&sdp, "1"), -1);
  assert_int_equal(mf_sdp_find_mid(&sdp, ""), -1);
  assert_int_equal(mf_sdp_find_mid(&sdp, NULL), -1);
  assert_int_equal(mf_sdp_find_mid(NULL, "0"), -1);

  assert_string_equal(mf_sdp_direction_name(MF_SDP_DIR_UNSET), "");
  assert_string_equal(mf_sdp_direction_name(MF_SDP_DIR_INACTIVE), "inactive");
  assert_string_equal(mf_sdp_setup_name(MF_SDP_SETUP_NONE), "");
  assert_string_equal(mf_sdp_setup_name(MF_SDP_SETUP_HOLDCONN), "holdconn");
  assert_string_equal(mf_sdp_setup_name((mf_sdp_setup_t)42), "");
  assert_int_equal(mf_sdp_direction_reverse(MF_SDP_DIR_SENDONLY), MF_SDP_DIR_RECVONLY);
  assert_int_equal(mf_sdp_direction_reverse(MF_SDP_DIR_RECVONLY), MF_SDP_DIR_SENDONLY);
  assert_int_equal(mf_sdp_direction_reverse(MF_SDP_DIR_INACTIVE), MF_SDP_DIR_INACTIVE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_writer_refuses_bad_counts),
      cmocka_unit_test(test_helpers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
