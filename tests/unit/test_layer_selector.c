/* Simulcast layer selection (node/layer_selector.h), the rewriter's switch hint and the VP8
 * picture-id rewrite: the pieces a simulcast consumer is made of. Simulated time only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/layer_selector.h"
#include "node/rtp/keyframe.h"
#include "node/rtp_rewriter.h"

typedef struct {
  mf_layer_selector_t s;
  uint64_t now;
} fixture_t;

/* One frame (a single packet) on `layer`: returns the decision. */
static mf_layer_decision_t pkt(fixture_t *f, unsigned layer, unsigned tid, bool key, bool sync,
                               bool *switched) {
  bool sw = false;
  mf_layer_decision_t d = mf_layer_selector_on_packet(&f->s, layer, tid, key, true, sync, f->now, &sw);
  if (switched) *switched = sw;
  return d;
}

/* All three layers send a frame every 33 ms for `ms`; returns how many frames of each layer
 * were forwarded. */
static void run_frames(fixture_t *f, uint64_t ms, bool key_first, unsigned fwd[3]) {
  memset(fwd, 0, 3 * sizeof fwd[0]);
  for (uint64_t t = 0; t < ms; t += 33) {
    f->now += 33;
    for (unsigned l = 0; l < 3; l++)
      if (pkt(f, l, 0, key_first && t == 0, false, NULL) == MF_LAYER_FORWARD) fwd[l]++;
    mf_layer_selector_tick(&f->s, f->now);
  }
}

static void test_starts_on_highest_keyframe(void **state) {
  (void)state;
  fixture_t f = {.now = 1000};
  mf_layer_selector_init(&f.s, 3, 1);
  assert_int_equal(f.s.current_spatial, -1);
  /* nothing before a keyframe: the consumer must ask for one */
  assert_int_equal(pkt(&f, 0, 0, false, false, NULL), MF_LAYER_DROP_WAIT_KEYFRAME);
  assert_int_equal(f.s.target_spatial, 0);
  /* layer 2 appears: it becomes the target; layer 0's keyframe is not it */
  assert_int_equal(pkt(&f, 2, 0, false, false, NULL), MF_LAYER_DROP_WAIT_KEYFRAME);
  assert_int_equal(f.s.target_spatial, 2);
  assert_int_equal(pkt(&f, 0, 0, true, false, NULL), MF_LAYER_DROP);
  bool sw = false;
  assert_int_equal(pkt(&f, 2, 0, true, false, &sw), MF_LAYER_FORWARD);
  assert_true(sw);
  assert_int_equal(f.s.current_spatial, 2);
  assert_int_equal(pkt(&f, 2, 0, false, false, &sw), MF_LAYER_FORWARD);
  assert_false(sw);
  assert_int_equal(pkt(&f, 1, 0, true, false, NULL), MF_LAYER_DROP);
}

static void test_preferred_switch_waits_for_keyframe(void **state) {
  (void)state;
  fixture_t f = {.now = 0};
  mf_layer_selector_init(&f.s, 3, 1);
  unsigned fwd[3];
  run_frames(&f, 500, true, fwd);
  assert_int_equal(f.s.current_spatial, 2);
  /* the first keyframes arrive lowest layer first: each layer is taken until the next one
   * shows up, one frame each, then only layer 2 */
  assert_int_equal(fwd[0], 1);
  assert_int_equal(fwd[1], 1);
  /* prefer layer 0: layer 2 keeps flowing until layer 0's keyframe */
  assert_true(mf_layer_selector_set_preferred(&f.s, 0, 0, f.now));
  assert_true(mf_layer_selector_switch_pending(&f.s));
  run_frames(&f, 300, false, fwd);
  assert_int_equal(fwd[0], 0);
  assert_true(fwd[2] > 0);
  assert_int_equal(f.s.current_spatial, 2);
  bool sw = false;
  f.now += 33;
  assert_int_equal(pkt(&f, 0, 0, true, false, &sw), MF_LAYER_FORWARD);
  assert_true(sw);
  assert_false(mf_layer_selector_switch_pending(&f.s));
  run_frames(&f, 300, false, fwd);
  assert_true(fwd[0] > 0);
  assert_int_equal(fwd[1] + fwd[2], 0);
  /* out-of-range preferences are clamped to the highest layer */
  mf_layer_selector_set_preferred(&f.s, 9, 9, f.now);
  assert_int_equal(f.s.preferred_spatial, 2);
  assert_int_equal(f.s.target_spatial, 2);
}

static void test_inactive_layer_falls_back(void **state) {
  (void)state;
  fixture_t f = {.now = 0};
  mf_layer_selector_init(&f.s, 3, 1);
  unsigned fwd[3];
  run_frames(&f, 500, true, fwd);
  assert_int_equal(f.s.current_spatial, 2);
  /* the publisher stops layer 2 (its bandwidth fell): after the inactivity time the target
   * becomes layer 1, which switches at its keyframe */
  for (uint64_t t = 0; t < MF_LAYER_INACTIVE_MS + 200; t += 33) {
    f.now += 33;
    pkt(&f, 0, 0, false, false, NULL);
    pkt(&f, 1, 0, false, false, NULL);
    mf_layer_selector_tick(&f.s, f.now);
  }
  assert_int_equal(f.s.target_spatial, 1);
  assert_true(mf_layer_selector_switch_pending(&f.s));
  assert_int_equal(pkt(&f, 1, 0, true, false, NULL), MF_LAYER_FORWARD);
  assert_int_equal(f.s.current_spatial, 1);
  /* layer 2 comes back: it is the target again at once */
  f.now += 33;
  assert_int_equal(pkt(&f, 2, 0, false, false, NULL), MF_LAYER_DROP);
  assert_int_equal(f.s.target_spatial, 2);
  assert_int_equal(pkt(&f, 1, 0, false, false, NULL), MF_LAYER_FORWARD); /* no freeze */
  assert_int_equal(pkt(&f, 2, 0, true, false, NULL), MF_LAYER_FORWARD);
  assert_int_equal(f.s.current_spatial, 2);
}

static void test_only_higher_layer_active(void **state) {
  (void)state;
  fixture_t f = {.now = 0};
  mf_layer_selector_init(&f.s, 3, 1);
  mf_layer_selector_set_preferred(&f.s, 0, 0, f.now);
  /* only layer 1 is sent: a picture beats none */
  f.now = 10;
  assert_int_equal(pkt(&f, 1, 0, true, false, NULL), MF_LAYER_FORWARD);
  assert_int_equal(f.s.current_spatial, 1);
  /* layer 0 starts: preferred, switch at its keyframe */
  f.now = 40;
  assert_int_equal(pkt(&f, 0, 0, false, false, NULL), MF_LAYER_DROP);
  assert_int_equal(f.s.target_spatial, 0);
  assert_int_equal(pkt(&f, 0, 0, true, false, NULL), MF_LAYER_FORWARD);
  assert_int_equal(f.s.current_spatial, 0);
  /* a bad layer index is dropped, never an out-of-bounds write */
  assert_int_equal(pkt(&f, 7, 0, true, false, NULL), MF_LAYER_DROP);
  assert_int_equal(pkt(&f, MF_LAYER_MAX_SPATIAL + 3, 0, true, false, NULL), MF_LAYER_DROP);
}

static void test_limit_caps_preference(void **state) {
  (void)state;
  fixture_t f = {.now = 0};
  mf_layer_selector_init(&f.s, 3, 3);
  unsigned fwd[3];
  run_frames(&f, 300, true, fwd);
  assert_int_equal(f.s.target_spatial, 2);
  /* a bandwidth limit below the preference wins, and lifting it restores the preference */
  assert_true(mf_layer_selector_set_limit(&f.s, 1, 2, f.now));
  assert_int_equal(f.s.target_spatial, 1);
  assert_false(mf_layer_selector_set_limit(&f.s, 1, 2, f.now));
  assert_true(mf_layer_selector_set_limit(&f.s, 2, 2, f.now));
  assert_int_equal(f.s.target_spatial, 2);
}

static void test_temporal_layers(void **state) {
  (void)state;
  fixture_t f = {.now = 0};
  mf_layer_selector_init(&f.s, 2, 3);
  bool sw;
  f.now = 1;
  pkt(&f, 0, 0, false, false, NULL);
  assert_int_equal(pkt(&f, 1, 0, true, false, &sw), MF_LAYER_FORWARD);
  assert_int_equal(f.s.current_temporal, 2);
  /* L1T3 pattern: tids 0 2 1 2 */
  static const unsigned pattern[] = {0, 2, 1, 2};
  for (unsigned i = 0; i < 8; i++) assert_int_equal(pkt(&f, 1, pattern[i % 4], false, false, NULL), MF_LAYER_FORWARD);
  /* prefer temporal 0: from the next frame start, tids 1 and 2 are dropped */
  mf_layer_selector_set_preferred(&f.s, 1, 0, f.now);
  assert_int_equal(pkt(&f, 1, 2, false, false, &sw), MF_LAYER_DROP_TEMPORAL);
  assert_true(sw);
  assert_int_equal(f.s.current_temporal, 0);
  assert_int_equal(pkt(&f, 1, 0, false, false, NULL), MF_LAYER_FORWARD);
  assert_int_equal(pkt(&f, 1, 1, false, false, NULL), MF_LAYER_DROP_TEMPORAL);
  /* up again: only at a layer sync frame of the wanted layer */
  mf_layer_selector_set_preferred(&f.s, 1, 2, f.now);
  assert_int_equal(pkt(&f, 1, 2, false, false, &sw), MF_LAYER_DROP_TEMPORAL);
  assert_false(sw);
  assert_int_equal(pkt(&f, 1, 1, false, true, &sw), MF_LAYER_FORWARD);
  assert_true(sw);
  assert_int_equal(f.s.current_temporal, 1);
  assert_int_equal(pkt(&f, 1, 2, false, true, &sw), MF_LAYER_FORWARD);
  assert_int_equal(f.s.current_temporal, 2);
  /* continuation packets (not a frame start) never change the temporal layer */
  mf_layer_selector_set_preferred(&f.s, 1, 0, f.now);
  assert_int_equal(mf_layer_selector_on_packet(&f.s, 1, 2, false, false, false, f.now, &sw),
                   MF_LAYER_FORWARD);
  assert_false(sw);
  /* one temporal layer negotiated: TIDs in the payload are ignored */
  mf_layer_selector_init(&f.s, 2, 1);
  pkt(&f, 1, 0, true, false, NULL);
  assert_int_equal(pkt(&f, 1, 2, false, false, NULL), MF_LAYER_FORWARD);
}

/* One SVC picture: spatial layers 0..n-1 of temporal layer tid; returns the decisions. */
static void svc_picture(fixture_t *f, unsigned n, unsigned tid, bool key, bool up,
                        mf_layer_decision_t out[3]) {
  f->now += 33;
  for (unsigned sid = 0; sid < n; sid++) {
    bool sw;
    out[sid] = mf_layer_selector_on_svc_packet(&f->s, sid, tid, key && sid == 0, sid == 0, up,
                                               f->now, &sw);
  }
}

static void test_svc_layers(void **state) {
  (void)state;
  fixture_t f = {.now = 0};
  mf_layer_selector_init_svc(&f.s, 3, 3);
  mf_layer_decision_t d[3];
  /* nothing before a keyframe */
  svc_picture(&f, 3, 0, false, false, d);
  assert_int_equal(d[0], MF_LAYER_DROP_WAIT_KEYFRAME);
  assert_true(mf_layer_selector_switch_pending(&f.s));
  /* the keyframe starts all three spatial layers */
  svc_picture(&f, 3, 0, true, false, d);
  for (int i = 0; i < 3; i++) assert_int_equal(d[i], MF_LAYER_FORWARD);
  assert_int_equal(f.s.current_spatial, 2);
  assert_false(mf_layer_selector_switch_pending(&f.s));
  /* prefer spatial 1: down at the next picture, layer 2 leaves the sequence */
  mf_layer_selector_set_preferred(&f.s, 1, 2, f.now);
  assert_false(mf_layer_selector_switch_pending(&f.s)); /* going down needs no keyframe */
  svc_picture(&f, 3, 1, false, false, d);
  assert_int_equal(d[0], MF_LAYER_FORWARD);
  assert_int_equal(d[1], MF_LAYER_FORWARD);
  assert_int_equal(d[2], MF_LAYER_DROP_TEMPORAL);
  assert_int_equal(f.s.current_spatial, 1);
  /* back up to 2: only at a keyframe */
  mf_layer_selector_set_preferred(&f.s, 2, 2, f.now);
  assert_true(mf_layer_selector_switch_pending(&f.s));
  svc_picture(&f, 3, 0, false, true, d);
  assert_int_equal(d[2], MF_LAYER_DROP_TEMPORAL);
  svc_picture(&f, 3, 0, true, false, d);
  assert_int_equal(d[2], MF_LAYER_FORWARD);
  assert_int_equal(f.s.current_spatial, 2);
  /* temporal 0 only: tid 1/2 pictures are dropped in every spatial layer */
  mf_layer_selector_set_preferred(&f.s, 2, 0, f.now);
  svc_picture(&f, 3, 2, false, false, d);
  for (int i = 0; i < 3; i++) assert_int_equal(d[i], MF_LAYER_DROP_TEMPORAL);
  svc_picture(&f, 3, 0, false, false, d);
  for (int i = 0; i < 3; i++) assert_int_equal(d[i], MF_LAYER_FORWARD);
  /* up again at a switching-up point */
  mf_layer_selector_set_preferred(&f.s, 2, 2, f.now);
  svc_picture(&f, 3, 1, false, false, d);
  assert_int_equal(d[0], MF_LAYER_DROP_TEMPORAL);
  svc_picture(&f, 3, 1, false, true, d);
  assert_int_equal(d[0], MF_LAYER_FORWARD);
  assert_int_equal(f.s.current_temporal, 1);
  /* the encoder stops spatial layer 2 (bandwidth): after the inactivity time the target is
   * 1 and the switch needs no keyframe */
  for (uint64_t t = 0; t < MF_LAYER_INACTIVE_MS + 100; t += 33) {
    svc_picture(&f, 2, 0, false, false, d);
    mf_layer_selector_tick(&f.s, f.now);
  }
  assert_int_equal(f.s.current_spatial, 1);
  /* a bad spatial index never forwards */
  bool sw;
  assert_int_equal(mf_layer_selector_on_svc_packet(&f.s, 9, 0, false, false, false, f.now, &sw),
                   MF_LAYER_DROP_TEMPORAL);
}

static void test_rewriter_switch_hint(void **state) {
  (void)state;
  mf_rtp_rewriter_config_t cfg = {.is_video = true, .clock_rate = 90000, .initial_seq = 100,
                                  .initial_ts = 5000};
  mf_rtp_rewriter_t *rw = NULL;
  assert_int_equal(mf_rtp_rewriter_create(&cfg, &rw), MF_OK);
  uint16_t seq;
  uint32_t ts;
  /* stream A: ts 1000, 4000 (33 ms frames) */
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, 1, 10, 1000, true, 0, &seq, &ts), MF_RTP_REWRITE_SEND);
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, 1, 11, 4000, false, 33, &seq, &ts), MF_RTP_REWRITE_SEND);
  assert_int_equal(ts, 8000);
  /* stream B's ts 70000 is A's 7000 (the next frame): the output is exactly one frame on,
   * whatever the wall-clock time of the switch */
  mf_rtp_rewriter_hint_switch(rw, 2, 7000 - 70000);
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, 2, 500, 70000, true, 90, &seq, &ts), MF_RTP_REWRITE_SEND);
  assert_int_equal(seq, 102);
  assert_int_equal(ts, 11000);
  mf_rtp_rewriter_stats_t st;
  mf_rtp_rewriter_get_stats(rw, &st);
  assert_int_equal(st.hinted_syncs, 1);
  /* an implausible hint (backwards) falls back to the wall-clock rule */
  mf_rtp_rewriter_hint_switch(rw, 1, -900000);
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, 1, 12, 10000, true, 123, &seq, &ts), MF_RTP_REWRITE_SEND);
  assert_int_equal(ts, 11000 + 33 * 90);
  mf_rtp_rewriter_get_stats(rw, &st);
  assert_int_equal(st.hinted_syncs, 1);
  /* a hint for another ssrc is ignored (and consumed by the sync) */
  mf_rtp_rewriter_hint_switch(rw, 9, 5);
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, 2, 501, 73000, true, 156, &seq, &ts), MF_RTP_REWRITE_SEND);
  mf_rtp_rewriter_get_stats(rw, &st);
  assert_int_equal(st.hinted_syncs, 1);
  mf_rtp_rewriter_destroy(rw);
}

static void test_vp8_offset_ids(void **state) {
  (void)state;
  /* X=1 S=1 PID=0; I L T; 15-bit picture id 0x1234; TL0PICIDX 7; TID 2 Y; VP8 data */
  uint8_t p15[] = {0x90, 0xe0, 0x80 | 0x12, 0x34, 0x07, 0xa0, 0x00, 0xaa};
  assert_int_equal(mf_rtp_vp8_offset_ids(p15, sizeof p15, 0x7abc - 0x1234, 200 - 7), MF_OK);
  mf_rtp_vp8_desc_t d;
  assert_int_equal(mf_rtp_vp8_parse_descriptor(p15, sizeof p15, &d), MF_OK);
  assert_int_equal(d.picture_id, 0x7abc);
  assert_true(d.picture_id_15bit);
  assert_int_equal(d.tl0picidx, 200);
  assert_int_equal(d.tid, 2);
  assert_true(d.layer_sync);
  assert_int_equal(p15[7], 0xaa);
  /* 7-bit picture id keeps its width (masked) and nothing else moves */
  uint8_t p7[] = {0x90, 0x80, 0x05, 0x00, 0xbb};
  assert_int_equal(mf_rtp_vp8_offset_ids(p7, sizeof p7, 0x1ff - 5, 9), MF_OK);
  assert_int_equal(mf_rtp_vp8_parse_descriptor(p7, sizeof p7, &d), MF_OK);
  assert_int_equal(d.picture_id, 0x7f);
  assert_false(d.has_tl0picidx);
  assert_int_equal(p7[4], 0xbb);
  /* no descriptor extension: nothing to write, payload untouched */
  uint8_t plain[] = {0x10, 0x00, 0x01};
  assert_int_equal(mf_rtp_vp8_offset_ids(plain, sizeof plain, 5, 5), MF_OK);
  assert_int_equal(plain[0], 0x10);
  assert_int_equal(plain[1], 0x00);
  /* truncated: parse error, nothing written */
  uint8_t cut[] = {0x90, 0xe0, 0x80};
  assert_int_equal(mf_rtp_vp8_offset_ids(cut, sizeof cut, 1, 1), MF_ERR_PARSE);
  assert_int_equal(cut[2], 0x80);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_starts_on_highest_keyframe),
      cmocka_unit_test(test_preferred_switch_waits_for_keyframe),
      cmocka_unit_test(test_inactive_layer_falls_back),
      cmocka_unit_test(test_only_higher_layer_active),
      cmocka_unit_test(test_limit_caps_preference),
      cmocka_unit_test(test_temporal_layers),
      cmocka_unit_test(test_svc_layers),
      cmocka_unit_test(test_rewriter_switch_hint),
      cmocka_unit_test(test_vp8_offset_ids),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
