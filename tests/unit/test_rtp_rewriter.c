/* Tests for node/rtp_rewriter.h: scripted scenarios on a fake clock. Each step feeds an
 * input packet (expecting the result and, when sent, the exact output seq/ts), declares a
 * dropped input, or requests a resync. Covers keyframe-gated video sync, audio sync,
 * reordering and old packets, dropped inputs (including out-of-order ones and overflow of
 * the dropped memory), pause/resume, SSRC changes and 16/32-bit wraparound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "node/rtp_rewriter.h"

enum { IN, DROP, SYNC, END };

typedef struct {
  int op;
  uint32_t ssrc;
  uint16_t seq;
  uint32_t ts;
  bool kf;
  uint64_t now;
  int want; /* IN: mf_rtp_rewrite_result_t; DROP: expected bool */
  uint16_t out_seq;
  uint32_t out_ts;
} step_t;

typedef struct {
  const char *name;
  mf_rtp_rewriter_config_t cfg;
  step_t steps[24];
} scenario_t;

#define A 0x1111u
#define B 0x2222u
#define SEND MF_RTP_REWRITE_SEND
#define OLD MF_RTP_REWRITE_DROP_OLD
#define DROPPED MF_RTP_REWRITE_DROP_DROPPED
#define NEEDKF MF_RTP_REWRITE_NEED_KEYFRAME

#define I(ss, sq, t, k, n, w, os, ot) {IN, ss, sq, t, k, n, w, os, ot}
#define D(ss, sq, w) {DROP, ss, sq, 0, false, 0, w, 0, 0}
#define RS {SYNC, 0, 0, 0, false, 0, 0, 0, 0}
#define E {END, 0, 0, 0, false, 0, 0, 0, 0}
#define VIDEO {true, 90000, 1000, 5000}
#define AUDIO {false, 48000, 1000, 5000}

static const scenario_t scenarios[] = {
    {"video waits for a keyframe, then maps by offset", VIDEO,
     {I(A, 100, 0, false, 0, NEEDKF, 0, 0), I(A, 101, 3000, true, 10, SEND, 1000, 5000),
      I(A, 102, 3000, false, 11, SEND, 1001, 5000),
      I(A, 103, 6000, false, 40, SEND, 1002, 8000), E}},
    {"audio syncs on any packet", AUDIO,
     {I(A, 7, 960, false, 0, SEND, 1000, 5000), I(A, 8, 1920, false, 20, SEND, 1001, 5960), E}},
    {"reordering after the sync is fine, before it is old", VIDEO,
     {I(A, 100, 0, true, 0, SEND, 1000, 5000), I(A, 102, 0, false, 1, SEND, 1002, 5000),
      I(A, 101, 0, false, 2, SEND, 1001, 5000), I(A, 99, 0, false, 3, OLD, 0, 0),
      I(A, 100, 0, false, 3, SEND, 1000, 5000), E}},
    {"dropped inputs leave no hole", VIDEO,
     {I(A, 100, 0, true, 0, SEND, 1000, 5000), D(A, 101, true),
      I(A, 102, 0, false, 1, SEND, 1001, 5000), D(A, 103, true), D(A, 104, true),
      I(A, 105, 3000, false, 2, SEND, 1002, 8000), D(A, 102, false), D(A, 105, false),
      I(A, 101, 0, false, 3, DROPPED, 0, 0), I(A, 103, 0, false, 3, DROPPED, 0, 0),
      I(A, 106, 3000, false, 4, SEND, 1003, 8000), D(B, 107, false), E}},
    {"late packet older than a dropped one keeps its slot", VIDEO,
     {I(A, 100, 0, true, 0, SEND, 1000, 5000), I(A, 102, 0, false, 1, SEND, 1002, 5000),
      D(A, 103, true), I(A, 101, 0, false, 2, SEND, 1001, 5000),
      I(A, 104, 0, false, 3, SEND, 1003, 5000), E}},
    {"16-bit and 32-bit wraparound", {false, 8000, 65534, 0xfffffff0u},
     {I(A, 65530, 0, false, 0, SEND, 65534, 0xfffffff0u),
      I(A, 65531, 100, false, 1, SEND, 65535, 0x54), I(A, 65532, 200, false, 2, SEND, 0, 0xb8),
      D(A, 65533, true), I(A, 65535, 300, false, 3, SEND, 2, 0x11c),
      I(A, 0, 400, false, 4, SEND, 3, 0x180), D(A, 1, true), D(A, 2, true),
      I(A, 3, 500, false, 5, SEND, 4, 0x1e4), I(A, 65534, 0, false, 6, SEND, 1, 0xfffffff0u),
      I(A, 65533, 0, false, 6, DROPPED, 0, 0), I(A, 65529, 0, false, 6, OLD, 0, 0), E}},
    {"pause/resume on the same SSRC keeps the source timing", VIDEO,
     {I(A, 100, 90000, true, 0, SEND, 1000, 5000), I(A, 101, 93000, false, 33, SEND, 1001, 8000),
      RS, I(A, 150, 183000, false, 1033, NEEDKF, 0, 0),
      I(A, 151, 183000, true, 1033, SEND, 1002, 98000),
      I(A, 152, 186000, false, 1066, SEND, 1003, 101000), I(A, 149, 0, false, 1070, OLD, 0, 0),
      E}},
    {"same SSRC whose timestamps went back: wall clock", VIDEO,
     {I(A, 100, 90000, true, 0, SEND, 1000, 5000), RS,
      I(A, 10, 50, true, 1000, SEND, 1001, 95000), I(A, 11, 3050, false, 1033, SEND, 1002, 98000),
      E}},
    {"same SSRC jumping far ahead: wall clock", VIDEO,
     {I(A, 100, 90000, true, 0, SEND, 1000, 5000), RS,
      I(A, 101, 90000 + 900000, true, 100, SEND, 1001, 14000), E}},
    {"new SSRC: continue seq, advance ts by elapsed wall time", VIDEO,
     {I(A, 100, 90000, true, 0, SEND, 1000, 5000), I(A, 101, 93000, false, 33, SEND, 1001, 8000),
      I(B, 5000, 7777, false, 100, NEEDKF, 0, 0), D(B, 5000, false),
      I(B, 5001, 7777, true, 533, SEND, 1002, 53000),
      I(B, 5002, 7777, false, 540, SEND, 1003, 53000),
      I(B, 5003, 10777, false, 566, SEND, 1004, 56000),
      I(B, 4999, 4777, false, 570, OLD, 0, 0), E}},
    {"audio SSRC change, and zero elapsed still advances", AUDIO,
     {I(A, 1, 0, false, 0, SEND, 1000, 5000), I(B, 77, 123, false, 20, SEND, 1001, 5960),
      I(A, 9, 0, false, 20, SEND, 1002, 5961), E}},
    {"sync while the newest ts is from a reordered packet", AUDIO,
     {I(A, 1, 960, false, 0, SEND, 1000, 5000), I(A, 3, 2880, false, 40, SEND, 1002, 6920),
      I(A, 2, 1920, false, 50, SEND, 1001, 5960), I(B, 1, 0, false, 60, SEND, 1003, 7880), E}},
    {"drop ignored before start and while a sync is pending", VIDEO,
     {D(A, 1, false), I(A, 1, 0, true, 0, SEND, 1000, 5000), RS, D(A, 2, false),
      I(A, 2, 0, false, 1, NEEDKF, 0, 0), E}},
};

static void run(const scenario_t *sc) {
  mf_rtp_rewriter_t *rw = NULL;
  assert_int_equal(mf_rtp_rewriter_create(&sc->cfg, &rw), MF_OK);
  for (size_t i = 0; sc->steps[i].op != END; i++) {
    const step_t *st = &sc->steps[i];
    if (st->op == IN) {
      uint16_t os = 0xabcd;
      uint32_t ot = 0xabcdef;
      mf_rtp_rewrite_result_t r =
          mf_rtp_rewriter_rewrite(rw, st->ssrc, st->seq, st->ts, st->kf, st->now, &os, &ot);
      if ((int)r != st->want) {
        fail_msg("%s: step %zu (seq %u): result %d, want %d", sc->name, i, st->seq, r,
                 st->want);
      }
      if (r == SEND && (os != st->out_seq || ot != st->out_ts)) {
        fail_msg("%s: step %zu (seq %u): out %u/%u, want %u/%u", sc->name, i, st->seq, os, ot,
                 st->out_seq, st->out_ts);
      }
      if (r != SEND && (os != 0xabcd || ot != 0xabcdef)) {
        fail_msg("%s: step %zu: outputs written on a drop", sc->name, i);
      }
    } else if (st->op == DROP) {
      bool got = mf_rtp_rewriter_drop(rw, st->ssrc, st->seq);
      if ((int)got != st->want) {
        fail_msg("%s: step %zu: drop(%u) = %d", sc->name, i, st->seq, got);
      }
    } else if (st->op == SYNC) {
      mf_rtp_rewriter_request_sync(rw);
    }
  }
  mf_rtp_rewriter_destroy(rw);
}

static void test_scenarios(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
    run(&scenarios[i]);
  }
}

static void test_create_and_state(void **state) {
  (void)state;
  mf_rtp_rewriter_t *rw = NULL;
  mf_rtp_rewriter_config_t c = VIDEO;
  assert_int_equal(mf_rtp_rewriter_create(NULL, &rw), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_rewriter_create(&c, NULL), MF_ERR_INVALID_ARG);
  c.clock_rate = 0;
  assert_int_equal(mf_rtp_rewriter_create(&c, &rw), MF_ERR_INVALID_ARG);
  mf_rtp_rewriter_destroy(NULL);

  c.clock_rate = 90000;
  assert_int_equal(mf_rtp_rewriter_create(&c, &rw), MF_OK);
  assert_true(mf_rtp_rewriter_needs_keyframe(rw));
  uint16_t os;
  uint32_t ot;
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, A, 10, 0, false, 0, &os, &ot), NEEDKF);
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, A, 11, 0, true, 0, &os, &ot), SEND);
  assert_false(mf_rtp_rewriter_needs_keyframe(rw));
  assert_true(mf_rtp_rewriter_drop(rw, A, 12));
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, A, 13, 90, false, 7, &os, &ot), SEND);
  mf_rtp_rewriter_request_sync(rw);
  assert_true(mf_rtp_rewriter_needs_keyframe(rw));
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, B, 1, 0, true, 50, &os, &ot), SEND);
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, B, 0, 0, false, 50, &os, &ot), OLD);
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, B, 3, 0, false, 50, &os, &ot), SEND);

  mf_rtp_rewriter_stats_t s;
  mf_rtp_rewriter_get_stats(rw, &s);
  assert_true(s.started);
  assert_false(s.sync_pending);
  assert_int_equal(s.ssrc, B);
  assert_int_equal(s.max_out_seq, 1004); /* 1000, (12 dropped), 1001, sync 1002, 1004 */
  assert_int_equal(s.sent, 4);
  assert_int_equal(s.waiting_keyframe, 1);
  assert_int_equal(s.dropped_old, 1);
  assert_int_equal(s.inputs_dropped, 1);
  assert_int_equal(s.syncs, 1);
  assert_int_equal(s.ssrc_changes, 1);
  mf_rtp_rewriter_destroy(rw);

  /* Audio never needs a keyframe. */
  mf_rtp_rewriter_config_t ac = AUDIO;
  assert_int_equal(mf_rtp_rewriter_create(&ac, &rw), MF_OK);
  assert_false(mf_rtp_rewriter_needs_keyframe(rw));
  mf_rtp_rewriter_request_sync(rw);
  assert_false(mf_rtp_rewriter_needs_keyframe(rw));
  mf_rtp_rewriter_destroy(rw);
}

/* More drops than the memory holds: the oldest is forgotten, later packets stay
 * continuous, and a late packet from before the forgotten drop is refused as old. */
static void test_dropped_overflow(void **state) {
  (void)state;
  mf_rtp_rewriter_t *rw = NULL;
  mf_rtp_rewriter_config_t c = AUDIO;
  assert_int_equal(mf_rtp_rewriter_create(&c, &rw), MF_OK);
  uint16_t os;
  uint32_t ot;
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, A, 65500, 0, false, 0, &os, &ot), SEND);
  assert_int_equal(os, 1000);
  for (uint32_t i = 1; i <= MF_RTP_REWRITER_MAX_DROPPED + 1; i++) {
    assert_true(mf_rtp_rewriter_drop(rw, A, (uint16_t)(65500 + i)));
  }
  uint16_t next = (uint16_t)(65500 + MF_RTP_REWRITER_MAX_DROPPED + 2);
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, A, next, 0, false, 1, &os, &ot), SEND);
  assert_int_equal(os, 1001);
  /* Forgotten: refused as old rather than risking a duplicate output seq. */
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, A, 65501, 0, false, 2, &os, &ot), OLD);
  /* Still remembered: recognised as dropped. */
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, A, 65502, 0, false, 2, &os, &ot), DROPPED);
  mf_rtp_rewriter_stats_t s;
  mf_rtp_rewriter_get_stats(rw, &s);
  assert_int_equal(s.dropped_forgotten, 1);
  assert_int_equal(s.inputs_dropped, MF_RTP_REWRITER_MAX_DROPPED + 1);
  mf_rtp_rewriter_destroy(rw);
}

/* Long run over many input and output wraps: every 7th input is dropped (padding),
 * adjacent packets are sometimes swapped; the output must be exactly consecutive in
 * input order with a constant timestamp offset, and never repeat. */
static void test_long_run(void **state) {
  (void)state;
  mf_rtp_rewriter_t *rw = NULL;
  mf_rtp_rewriter_config_t c = {true, 90000, 65000, 0xffff0000u};
  assert_int_equal(mf_rtp_rewriter_create(&c, &rw), MF_OK);
  uint16_t in_seq = 30000;
  uint32_t in_ts = 0xfff00000u;
  uint16_t expect = 65000;
  uint16_t os;
  uint32_t ot;
  assert_int_equal(mf_rtp_rewriter_rewrite(rw, A, in_seq, in_ts, true, 0, &os, &ot), SEND);
  assert_int_equal(os, expect);
  uint32_t ts_offset = ot - in_ts;
  for (uint32_t i = 1; i < 300000; i++) {
    uint16_t s1 = (uint16_t)(in_seq + 1);
    uint16_t s2 = (uint16_t)(in_seq + 2);
    uint32_t t1 = in_ts + 3000u * i;
    if (i % 7 == 0) {
      assert_true(mf_rtp_rewriter_drop(rw, A, s1));
      in_seq = s1;
      continue;
    }
    if (i % 11 == 0 && (i + 1) % 7 != 0) {
      /* Swap s1 and s2: s2 first, then s1. */
      assert_int_equal(mf_rtp_rewriter_rewrite(rw, A, s2, t1, false, i, &os, &ot), SEND);
      assert_int_equal(os, (uint16_t)(expect + 2));
      assert_int_equal(mf_rtp_rewriter_rewrite(rw, A, s1, t1, false, i, &os, &ot), SEND);
      assert_int_equal(os, (uint16_t)(expect + 1));
      assert_int_equal(ot - t1, ts_offset);
      expect = (uint16_t)(expect + 2);
      in_seq = s2;
      i++;
      continue;
    }
    assert_int_equal(mf_rtp_rewriter_rewrite(rw, A, s1, t1, false, i, &os, &ot), SEND);
    expect = (uint16_t)(expect + 1);
    if (os != expect || ot - t1 != ts_offset) {
      fail_msg("i %u: out %u want %u", i, os, expect);
    }
    in_seq = s1;
  }
  mf_rtp_rewriter_destroy(rw);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scenarios),
      cmocka_unit_test(test_create_and_state),
      cmocka_unit_test(test_dropped_overflow),
      cmocka_unit_test(test_long_run),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
