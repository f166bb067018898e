/* Tests for node/rtp/keyframe.h: mime mapping, key-frame detection on hand-built payload
 * prefixes of every codec (key and delta frames, per RFC 7741, RFC 9628, RFC 6184 and the
 * AV1 RTP spec), every truncation of each (in exact-size heap copies, so ASan catches any
 * over-read), and the VP8/VP9 descriptor fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/rtp/keyframe.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define B(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

typedef struct {
  const char *name;
  mf_codec_t codec;
  const uint8_t *data;
  size_t len;
  bool key;        /* result on the whole payload */
  size_t min_len;  /* shortest prefix that is already a key frame (when key) */
  size_t true_at[4]; /* aggregates: the only prefix lengths that are key frames (0-ended) */
} kf_case_t;

static const kf_case_t cases[] = {
    /* ---- VP8: descriptor, then the frame tag whose bit 0 is the inverse key frame flag. */
    {"vp8 key, no extension", MF_CODEC_VP8,
     B(0x10, 0x30, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01), true, 2, {0}},
    {"vp8 key, I(15)+L+T+K", MF_CODEC_VP8,
     B(0x90, 0xF0, 0x92, 0x34, 0x56, 0xA5, 0x30, 0x01, 0x00, 0x9d, 0x01, 0x2a), true, 7, {0}},
    {"vp8 key, I(7)", MF_CODEC_VP8, B(0x90, 0x80, 0x7f, 0x50, 0x02, 0x00), true, 4, {0}},
    {"vp8 key, N bit set", MF_CODEC_VP8, B(0x30, 0x10, 0x02), true, 2, {0}},
    {"vp8 delta (P=1)", MF_CODEC_VP8, B(0x90, 0x80, 0x05, 0x31, 0x01, 0x00), false, 0, {0}},
    {"vp8 key continuation (S=0)", MF_CODEC_VP8, B(0x80, 0x80, 0x05, 0x30, 0x01), false, 0,
     {0}},
    {"vp8 second partition (PID=1)", MF_CODEC_VP8, B(0x11, 0x30, 0x01), false, 0, {0}},
    {"vp8 delta T only", MF_CODEC_VP8, B(0x90, 0x20, 0x40, 0x31), false, 0, {0}},
    /* ---- VP9 */
    {"vp9 key, non-flexible, L, SS with 2 layers + PG", MF_CODEC_VP9,
     B(0xAE, 0x81, 0x23, 0x00, 0x07, 0x38, 0x01, 0x40, 0x00, 0xB4, 0x02, 0x80, 0x01, 0x68, 0x01,
       0x04, 0x01, 0x82, 0x49, 0x83, 0x42),
     true, 18, {0}},
    {"vp9 key, flexible", MF_CODEC_VP9, B(0xB8, 0x05, 0x00, 0x82, 0x49), true, 4, {0}},
    {"vp9 key, minimal", MF_CODEC_VP9, B(0x08, 0x82), true, 2, {0}},
    {"vp9 key, SS without Y/G", MF_CODEC_VP9, B(0x0A, 0x00, 0x82, 0x49), true, 3, {0}},
    {"vp9 delta, flexible, 2 P_DIFF", MF_CODEC_VP9, B(0xF8, 0x05, 0x30, 0x03, 0x04, 0x86),
     false, 0, {0}},
    {"vp9 key picture, spatial layer 1", MF_CODEC_VP9, B(0xA8, 0x05, 0x03, 0x07, 0x82), false,
     0, {0}},
    {"vp9 key picture, not beginning (B=0)", MF_CODEC_VP9, B(0xA4, 0x05, 0x00, 0x07, 0x11),
     false, 0, {0}},
    {"vp9 delta non-flexible", MF_CODEC_VP9, B(0xEC, 0x05, 0x20, 0x07, 0x86), false, 0, {0}},
    {"vp9 4 P_DIFF (malformed)", MF_CODEC_VP9, B(0x58, 0x03, 0x03, 0x03, 0x02, 0x86), false,
     0, {0}},
    /* ---- H.264 */
    {"h264 IDR", MF_CODEC_H264, B(0x65, 0x88, 0x84, 0x00), true, 2, {0}},
    {"h264 SPS", MF_CODEC_H264, B(0x67, 0x42, 0xc0, 0x1f), true, 2, {0}},
    {"h264 PPS", MF_CODEC_H264, B(0x68, 0xce, 0x3c, 0x80), false, 0, {0}},
    {"h264 non-IDR slice", MF_CODEC_H264, B(0x41, 0x9a, 0x00), false, 0, {0}},
    {"h264 STAP-A SPS+PPS", MF_CODEC_H264,
     B(0x78, 0x00, 0x04, 0x67, 0x42, 0xc0, 0x1f, 0x00, 0x04, 0x68, 0xce, 0x3c, 0x80), true, 0,
     {7, 13, 0}},
    {"h264 STAP-A PPS+IDR", MF_CODEC_H264,
     B(0x78, 0x00, 0x02, 0x68, 0xce, 0x00, 0x03, 0x65, 0x88, 0x84), true, 0, {10, 0}},
    {"h264 STAP-A PPS+slice", MF_CODEC_H264, B(0x78, 0x00, 0x02, 0x68, 0xce, 0x00, 0x02, 0x41,
                                                0x9a),
     false, 0, {0}},
    {"h264 STAP-A unit past the end", MF_CODEC_H264, B(0x78, 0x00, 0x09, 0x67, 0x42), false, 0,
     {0}},
    {"h264 STAP-A zero-size unit", MF_CODEC_H264, B(0x78, 0x00, 0x00, 0x00, 0x02, 0x67, 0x42),
     false, 0, {0}},
    {"h264 STAP-A trailing byte", MF_CODEC_H264, B(0x78, 0x00, 0x02, 0x67, 0x42, 0x00), false,
     0, {5, 0}},
    {"h264 STAP-B IDR", MF_CODEC_H264, B(0x79, 0x00, 0x01, 0x00, 0x02, 0x65, 0x88), true, 0,
     {7, 0}},
    {"h264 FU-A start IDR", MF_CODEC_H264, B(0x7c, 0x85, 0x88, 0x84), true, 2, {0}},
    {"h264 FU-A start SPS", MF_CODEC_H264, B(0x7c, 0x87, 0x42), true, 2, {0}},
    {"h264 FU-A middle IDR", MF_CODEC_H264, B(0x7c, 0x05, 0x11, 0x22), false, 0, {0}},
    {"h264 FU-A end IDR", MF_CODEC_H264, B(0x7c, 0x45, 0x11), false, 0, {0}},
    {"h264 FU-A start slice", MF_CODEC_H264, B(0x5c, 0x81, 0x9a), false, 0, {0}},
    {"h264 FU-B start IDR", MF_CODEC_H264, B(0x7d, 0x85, 0x00, 0x01, 0x88), true, 4, {0}},
    {"h264 MTAP16", MF_CODEC_H264, B(0x7a, 0x00, 0x05, 0x00, 0x00, 0x01, 0x00, 0x00, 0x65),
     false, 0, {0}},
    /* ---- AV1 aggregation header |Z|Y|W W|N|-|-|-| */
    {"av1 new coded video sequence", MF_CODEC_AV1, B(0x18, 0x0A, 0x0B, 0x00, 0x00, 0x00),
     true, 2, {0}},
    {"av1 N=0", MF_CODEC_AV1, B(0x10, 0x32, 0x10), false, 0, {0}},
    {"av1 Z=1 N=1 (invalid)", MF_CODEC_AV1, B(0x98, 0x32, 0x10), false, 0, {0}},
    /* ---- audio and others never are */
    {"opus", MF_CODEC_OPUS, B(0xfc, 0xff, 0xfe), false, 0, {0}},
    {"other", MF_CODEC_OTHER, B(0x10, 0x30, 0x01), false, 0, {0}},
};

static bool expected_at(const kf_case_t *c, size_t k) {
  if (c->true_at[0]) {
    for (size_t i = 0; i < N(c->true_at) && c->true_at[i]; i++) {
      if (c->true_at[i] == k) return true;
    }
    return false;
  }
  return c->key && k >= c->min_len;
}

static bool is_key_copy(mf_codec_t codec, const uint8_t *data, size_t len) {
  uint8_t *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  if (len) memcpy(copy, data, len);
  bool r = mf_rtp_payload_is_keyframe(codec, copy, len);
  free(copy);
  return r;
}

static void test_keyframe_table(void **state) {
  (void)state;
  for (size_t i = 0; i < N(cases); i++) {
    const kf_case_t *c = &cases[i];
    bool whole = is_key_copy(c->codec, c->data, c->len);
    if (whole != c->key) {
      print_error("case '%s': whole payload gives %d\n", c->name, whole);
      fail();
    }
    for (size_t k = 0; k <= c->len; k++) {
      bool got = is_key_copy(c->codec, c->data, k);
      if (got != expected_at(c, k)) {
        print_error("case '%s' truncated to %zu: got %d\n", c->name, k, got);
        fail();
      }
      /* Any codec on any prefix: no crash, and audio/other always false. */
      for (int other = MF_CODEC_VP8; other <= MF_CODEC_OTHER; other++) {
        bool r = is_key_copy((mf_codec_t)other, c->data, k);
        if (other == MF_CODEC_OPUS || other == MF_CODEC_OTHER) assert_false(r);
      }
    }
  }
  assert_false(mf_rtp_payload_is_keyframe(MF_CODEC_VP8, NULL, 10));
  assert_false(mf_rtp_payload_is_keyframe((mf_codec_t)77, cases[0].data, cases[0].len));
}

/* Descriptor parsers: MF_OK exactly when the prefix holds the descriptor and a data byte. */
static void test_descriptor_truncations(void **state) {
  (void)state;
  for (size_t i = 0; i < N(cases); i++) {
    const kf_case_t *c = &cases[i];
    if (c->codec != MF_CODEC_VP8 && c->codec != MF_CODEC_VP9) continue;
    size_t hlen = 0;
    mf_err_t whole;
    if (c->codec == MF_CODEC_VP8) {
      mf_rtp_vp8_desc_t d;
      whole = mf_rtp_vp8_parse_descriptor(c->data, c->len, &d);
      hlen = d.header_len;
    } else {
      mf_rtp_vp9_desc_t d;
      whole = mf_rtp_vp9_parse_descriptor(c->data, c->len, &d);
      hlen = d.header_len;
    }
    bool malformed = strstr(c->name, "malformed") != NULL;
    assert_int_equal(whole, malformed ? MF_ERR_PARSE : MF_OK);
    for (size_t k = 0; k <= c->len; k++) {
      uint8_t *copy = malloc(k ? k : 1);
      assert_non_null(copy);
      memcpy(copy, c->data, k);
      mf_err_t err;
      if (c->codec == MF_CODEC_VP8) {
        mf_rtp_vp8_desc_t d;
        err = mf_rtp_vp8_parse_descriptor(copy, k, &d);
      } else {
        mf_rtp_vp9_desc_t d;
        err = mf_rtp_vp9_parse_descriptor(copy, k, &d);
      }
      free(copy);
      mf_err_t want = (!malformed && k > hlen) ? MF_OK : MF_ERR_PARSE;
      if (err != want) {
        print_error("case '%s' truncated to %zu: err %d\n", c->name, k, (int)err);
        fail();
      }
    }
  }
  mf_rtp_vp8_desc_t d8;
  mf_rtp_vp9_desc_t d9;
  assert_int_equal(mf_rtp_vp8_parse_descriptor(NULL, 3, &d8), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_vp9_parse_descriptor(NULL, 3, &d9), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_vp8_parse_descriptor(cases[0].data, 3, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_vp9_parse_descriptor(cases[0].data, 3, NULL), MF_ERR_INVALID_ARG);
}

static void test_vp8_fields(void **state) {
  (void)state;
  mf_rtp_vp8_desc_t d;
  static const uint8_t full[] = {0xB0, 0xF0, 0x92, 0x34, 0x56, 0xA5, 0x30};
  assert_int_equal(mf_rtp_vp8_parse_descriptor(full, sizeof full, &d), MF_OK);
  assert_true(d.non_reference && d.start_of_partition);
  assert_int_equal(d.partition_id, 0);
  assert_true(d.has_picture_id && d.picture_id_15bit);
  assert_int_equal(d.picture_id, 0x1234);
  assert_true(d.has_tl0picidx);
  assert_int_equal(d.tl0picidx, 0x56);
  assert_true(d.has_tid && d.layer_sync);
  assert_int_equal(d.tid, 2);
  assert_true(d.has_keyidx);
  assert_int_equal(d.keyidx, 5);
  assert_int_equal(d.header_len, 6);
  assert_true(d.is_keyframe);

  static const uint8_t seven[] = {0x87, 0x80, 0x7f, 0x31};
  assert_int_equal(mf_rtp_vp8_parse_descriptor(seven, sizeof seven, &d), MF_OK);
  assert_false(d.start_of_partition || d.picture_id_15bit || d.has_tid || d.is_keyframe);
  assert_int_equal(d.partition_id, 7);
  assert_int_equal(d.picture_id, 0x7f);
  assert_int_equal(d.header_len, 3);

  /* K without T: the TID/Y bits are not read. */
  static const uint8_t konly[] = {0x90, 0x10, 0xFF, 0x30};
  assert_int_equal(mf_rtp_vp8_parse_descriptor(konly, sizeof konly, &d), MF_OK);
  assert_false(d.has_tid || d.layer_sync);
  assert_int_equal(d.tid, 0);
  assert_int_equal(d.keyidx, 31);
  /* T without K. */
  static const uint8_t tonly[] = {0x90, 0x20, 0x40, 0x31};
  assert_int_equal(mf_rtp_vp8_parse_descriptor(tonly, sizeof tonly, &d), MF_OK);
  assert_true(d.has_tid && !d.layer_sync && !d.has_keyidx);
  assert_int_equal(d.tid, 1);
  assert_int_equal(d.header_len, 3);
  /* X with no extension bits: just the X byte. */
  static const uint8_t xnone[] = {0x90, 0x00, 0x30};
  assert_int_equal(mf_rtp_vp8_parse_descriptor(xnone, sizeof xnone, &d), MF_OK);
  assert_int_equal(d.header_len, 2);
  assert_true(d.is_keyframe);
}

static void test_vp9_fields(void **state) {
  (void)state;
  mf_rtp_vp9_desc_t d;
  const kf_case_t *ss = &cases[8];
  assert_int_equal(mf_rtp_vp9_parse_descriptor(ss->data, ss->len, &d), MF_OK);
  assert_true(d.has_picture_id && d.picture_id_15bit && d.has_layer_indices && !d.flexible);
  assert_int_equal(d.picture_id, 0x0123);
  assert_true(d.begin_of_frame && d.end_of_frame && d.has_ss && !d.not_reference_upper);
  assert_false(d.inter_picture_predicted);
  assert_int_equal(d.tid, 0);
  assert_int_equal(d.sid, 0);
  assert_true(d.has_tl0picidx);
  assert_int_equal(d.tl0picidx, 7);
  assert_int_equal(d.ss_num_spatial, 2);
  assert_true(d.ss_has_resolution && d.ss_has_pg);
  assert_int_equal(d.ss_width[0], 320);
  assert_int_equal(d.ss_height[0], 180);
  assert_int_equal(d.ss_width[1], 640);
  assert_int_equal(d.ss_height[1], 360);
  assert_int_equal(d.ss_num_pictures, 1);
  assert_int_equal(d.header_len, 17);
  assert_true(d.is_keyframe);

  static const uint8_t flex[] = {0xF9, 0x05, 0x31, 0x03, 0x05, 0x06, 0x86};
  assert_int_equal(mf_rtp_vp9_parse_descriptor(flex, sizeof flex, &d), MF_OK);
  assert_true(d.flexible && d.inter_picture_predicted && d.not_reference_upper);
  assert_false(d.has_tl0picidx || d.picture_id_15bit);
  assert_int_equal(d.picture_id, 5);
  assert_int_equal(d.tid, 1);
  assert_true(d.switching_up);
  assert_int_equal(d.sid, 0);
  assert_true(d.inter_layer_dependency);
  assert_int_equal(d.num_pdiff, 3);
  assert_int_equal(d.pdiff[0], 1);
  assert_int_equal(d.pdiff[1], 2);
  assert_int_equal(d.pdiff[2], 3);
  assert_int_equal(d.header_len, 6);
  assert_false(d.is_keyframe);

  /* Spatial layer 2 with inter-layer dependency, non-flexible. */
  static const uint8_t sl2[] = {0x28, 0x45, 0x09, 0x82};
  assert_int_equal(mf_rtp_vp9_parse_descriptor(sl2, sizeof sl2, &d), MF_OK);
  assert_int_equal(d.tid, 2);
  assert_int_equal(d.sid, 2);
  assert_true(d.inter_layer_dependency);
  assert_int_equal(d.tl0picidx, 9);
  assert_false(d.is_keyframe);

  /* SS with 8 spatial layers and resolutions: 1 + 32 bytes, then a PG entry with R=3. */
  uint8_t big[64];
  size_t n = 0;
  big[n++] = 0x0A;              /* B, V */
  big[n++] = (7 << 5) | 0x18;   /* N_S=7, Y, G */
  for (int i = 0; i < 8; i++) {
    big[n++] = 0;
    big[n++] = (uint8_t)(10 + i);
    big[n++] = 0;
    big[n++] = (uint8_t)(20 + i);
  }
  big[n++] = 1;                 /* N_G */
  big[n++] = (1 << 5) | (3 << 2); /* TID 1, R=3 */
  big[n++] = 1;
  big[n++] = 2;
  big[n++] = 3;
  big[n++] = 0x82;
  assert_int_equal(mf_rtp_vp9_parse_descriptor(big, n, &d), MF_OK);
  assert_int_equal(d.ss_num_spatial, 8);
  assert_int_equal(d.ss_width[7], 17);
  assert_int_equal(d.ss_height[7], 27);
  assert_int_equal(d.header_len, n - 1);
  assert_true(d.is_keyframe);
  for (size_t k = 0; k < n; k++) {
    uint8_t *copy = malloc(k ? k : 1);
    memcpy(copy, big, k);
    assert_int_equal(mf_rtp_vp9_parse_descriptor(copy, k, &d), MF_ERR_PARSE);
    free(copy);
  }
}

static void test_h264_nal_type(void **state) {
  (void)state;
  static const uint8_t idr[] = {0x65, 0x88};
  static const uint8_t fua[] = {0x7c, 0x85};
  static const uint8_t fub[] = {0x7d, 0x07};
  static const uint8_t stap[] = {0x78, 0x00};
  assert_int_equal(mf_rtp_h264_nal_type(idr, 2), 5);
  assert_int_equal(mf_rtp_h264_nal_type(idr, 1), 5);
  assert_int_equal(mf_rtp_h264_nal_type(fua, 2), 5);
  assert_int_equal(mf_rtp_h264_nal_type(fua, 1), -1);
  assert_int_equal(mf_rtp_h264_nal_type(fub, 2), 7);
  assert_int_equal(mf_rtp_h264_nal_type(stap, 2), 24);
  assert_int_equal(mf_rtp_h264_nal_type(idr, 0), -1);
  assert_int_equal(mf_rtp_h264_nal_type(NULL, 4), -1);
}

static void test_mime(void **state) {
  (void)state;
  static const struct {
    const char *mime;
    mf_codec_t codec;
  } t[] = {
      {"video/VP8", MF_CODEC_VP8},   {"VIDEO/vp8", MF_CODEC_VP8},
      {"video/vp9", MF_CODEC_VP9},   {"video/h264", MF_CODEC_H264},
      {"Video/Av1", MF_CODEC_AV1},   {"audio/OPUS", MF_CODEC_OPUS},
      {"audio/opus", MF_CODEC_OPUS}, {"audio/opus ", MF_CODEC_OTHER},
      {"video/VP8;x", MF_CODEC_OTHER}, {"video/H264-SVC", MF_CODEC_OTHER},
      {"video/rtx", MF_CODEC_OTHER}, {"VP8", MF_CODEC_OTHER},
      {"audio/VP8", MF_CODEC_OTHER}, {"", MF_CODEC_OTHER},
      {NULL, MF_CODEC_OTHER},
  };
  for (size_t i = 0; i < N(t); i++) {
    assert_int_equal(mf_codec_from_mime(t[i].mime), t[i].codec);
  }
  for (int c = MF_CODEC_VP8; c < MF_CODEC_OTHER; c++) {
    assert_int_equal(mf_codec_from_mime(mf_codec_mime((mf_codec_t)c)), c);
  }
  assert_string_equal(mf_codec_mime(MF_CODEC_OTHER), "other");
  assert_string_equal(mf_codec_mime((mf_codec_t)99), "other");
  assert_string_equal(mf_codec_mime(MF_CODEC_H264), "video/H264");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keyframe_table),
      cmocka_unit_test(test_descriptor_truncations),
      cmocka_unit_test(test_vp8_fields),
      cmocka_unit_test(test_vp9_fields),
      cmocka_unit_test(test_h264_nal_type),
      cmocka_unit_test(test_mime),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
