/* ORTC helpers beyond test_ortc.c: mediasoup's scalabilityMode regex on malformed and
 * two-digit modes, matchCodecs' parameter comparisons (multiopus stream counts, H264
 * packetization-mode and profile, VP9 profile-id; numbers, digit strings, other strings,
 * empty strings and reals as JS `params[x] || 0` compares them), and the H264 profile of
 * parameters given as a number, a real or an empty string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/ortc.h"

static void test_scalability_modes(void **state) {
  (void)state;
  static const struct {
    const char *mode;
    unsigned s, t;
    bool ksvc;
  } cases[] = {
      {NULL, 1, 1, false},     {"", 1, 1, false},        {"X3T3", 1, 1, false},
      {"L0T1", 1, 1, false},   {"L3", 1, 1, false},      {"L3X2", 1, 1, false},
      {"L3T0", 1, 1, false},   {"LAT2", 1, 1, false},    {"L3T", 1, 1, false},
      {"L1T3", 1, 3, false},   {"S3T3", 3, 3, false},    {"L12T34", 12, 34, false},
      {"L3T3_KEY", 3, 3, true}, {"L3T3_KEY_SHIFT", 3, 3, true}, {"L2T2h", 2, 2, false},
      {"L3T3_KE", 3, 3, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_scalability_mode_t m = mf_ortc_parse_scalability_mode(cases[i].mode);
    if (m.spatial_layers != cases[i].s || m.temporal_layers != cases[i].t || m.ksvc != cases[i].ksvc)
      print_error("case %s: %u %u %d\n", cases[i].mode ? cases[i].mode : "NULL", m.spatial_layers,
                  m.temporal_layers, m.ksvc);
    assert_int_equal(m.spatial_layers, cases[i].s);
    assert_int_equal(m.temporal_layers, cases[i].t);
    assert_int_equal(m.ksvc, cases[i].ksvc);
  }
}

typedef enum { NONE, INT, STR, REAL } kind_t;

typedef struct {
  kind_t kind;
  int64_t i;
  const char *s;
  double r;
} val_t;

static void set(mf_rtp_params_t *p, const char *name, val_t v) {
  switch (v.kind) {
    case NONE: break;
    case INT: assert_int_equal(mf_rtp_params_set_int(p, name, v.i), MF_OK); break;
    case STR: assert_int_equal(mf_rtp_params_set_str(p, name, v.s), MF_OK); break;
    case REAL: {
      mf_rtp_param_t *it = &p->items[p->count++];
      memset(it, 0, sizeof *it);
      snprintf(it->name, sizeof it->name, "%s", name);
      it->type = MF_RTP_PARAM_REAL;
      it->real_value = v.r;
      break;
    }
  }
}

#define N {NONE, 0, NULL, 0}
#define I(x) {INT, x, NULL, 0}
#define S(x) {STR, 0, x, 0}
#define R(x) {REAL, 0, NULL, x}

static void test_match_codec_parameters(void **state) {
  (void)state;
  static const struct {
    const char *mime;
    const char *param;
    val_t a, b;
    bool strict, want;
  } cases[] = {
      /* multiopus: stream counts compared as numbers, missing = 0 */
      {"audio/multiopus", "num_streams", I(2), I(2), false, true},
      {"audio/multiopus", "num_streams", I(2), I(3), false, false},
      {"audio/multiopus", "num_streams", N, I(0), false, true},
      {"audio/multiopus", "num_streams", S(""), N, false, true},
      {"audio/multiopus", "num_streams", S("2"), I(2), false, true},
      {"audio/multiopus", "coupled_streams", I(1), I(2), false, false},
      {"audio/multiopus", "num_streams", S("two"), S("two"), false, true},
      {"audio/multiopus", "num_streams", S("two"), S("three"), false, false},
      {"audio/multiopus", "num_streams", S("two"), I(2), false, false},
      {"audio/multiopus", "num_streams", R(1.5), R(1.5), false, true},
      {"audio/multiopus", "num_streams", R(1.5), S("1.5"), false, false},
      /* H264: packetization-mode, then the profile (missing = constrained baseline) */
      {"video/H264", "packetization-mode", I(1), I(0), true, false},
      {"video/H264", "packetization-mode", I(1), I(0), false, true},
      {"video/H264", "profile-level-id", S("42e01f"), S("42e034"), true, true},
      {"video/H264", "profile-level-id", S("42e01f"), N, true, true},
      {"video/H264", "profile-level-id", S("640032"), S("42e01f"), true, false},
      {"video/H264", "profile-level-id", S("zzzzzz"), S("zzzzzz"), true, false},
      {"video/H264", "profile-level-id", R(4.2), S("42e01f"), true, false},
      {"video/H264-SVC", "profile-level-id", I(640032), S("640032"), true, true},
      /* VP9: profile-id when strict */
      {"video/VP9", "profile-id", I(0), I(2), true, false},
      {"video/VP9", "profile-id", N, I(0), true, true},
      {"video/VP9", "profile-id", I(0), I(2), false, true},
      /* other codecs: parameters do not matter */
      {"video/VP8", "x", I(1), I(2), true, true},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_rtp_params_t a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    set(&a, cases[i].param, cases[i].a);
    set(&b, cases[i].param, cases[i].b);
    uint8_t ch = strncmp(cases[i].mime, "audio/", 6) == 0 ? 2 : 0;
    bool got = mf_ortc_match_codecs(cases[i].mime, 90000, ch, &a, cases[i].mime, 90000, ch, &b,
                                    cases[i].strict);
    if (got != cases[i].want) print_error("case %zu (%s %s)\n", i, cases[i].mime, cases[i].param);
    assert_int_equal(got, cases[i].want);
  }
  /* mime type (case-insensitive), clock rate, audio channels (missing = 1) */
  mf_rtp_params_t e;
  memset(&e, 0, sizeof e);
  assert_true(mf_ortc_match_codecs("audio/OPUS", 48000, 2, &e, "audio/opus", 48000, 2, &e, true));
  assert_false(mf_ortc_match_codecs("audio/opus", 48000, 2, &e, "audio/PCMU", 48000, 2, &e, true));
  assert_false(mf_ortc_match_codecs("audio/opus", 48000, 2, &e, "audio/opus", 8000, 2, &e, true));
  assert_true(mf_ortc_match_codecs("audio/PCMU", 8000, 0, &e, "audio/PCMU", 8000, 1, &e, true));
  assert_false(mf_ortc_match_codecs("audio/opus", 48000, 1, &e, "audio/opus", 48000, 2, &e, true));
  assert_true(mf_ortc_match_codecs("video/VP8", 90000, 2, &e, "video/VP8", 90000, 0, &e, true));
}

static void test_h264_profile_of_parameters(void **state) {
  (void)state;
  static const struct {
    val_t v;
    mf_h264_profile_t want;
  } cases[] = {
      {N, MF_H264_PROFILE_CONSTRAINED_BASELINE},
      {S(""), MF_H264_PROFILE_CONSTRAINED_BASELINE},
      {I(0), MF_H264_PROFILE_CONSTRAINED_BASELINE},
      {S("640032"), MF_H264_PROFILE_HIGH},
      {I(640032), MF_H264_PROFILE_HIGH},   /* a number is read as its digits */
      {I(4200010), MF_H264_PROFILE_NONE},  /* seven digits: not a profile-level-id */
      {R(4.2), MF_H264_PROFILE_NONE},      /* a real never parses */
      {S("nothex"), MF_H264_PROFILE_NONE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_rtp_params_t p;
    memset(&p, 0, sizeof p);
    set(&p, "profile-level-id", cases[i].v);
    mf_h264_profile_t got = mf_ortc_h264_profile_from_params(&p);
    if (got != cases[i].want) print_error("case %zu: %d\n", i, got);
    assert_int_equal(got, cases[i].want);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scalability_modes),
      cmocka_unit_test(test_match_codec_parameters),
      cmocka_unit_test(test_h264_profile_of_parameters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
