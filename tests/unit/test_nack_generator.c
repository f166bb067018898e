/* Tests for node/nack_generator.h: scripted scenarios on a fake clock. Each step feeds a
 * packet (expecting on_packet's flags), asks for due NACKs (expecting the exact seqs and
 * the keyframe signal) or checks the number of missing seqs. Covers gap detection,
 * reordering tolerance, repair, retries and give-up, wraparound, RTX ahead of the stream,
 * overflow with and without keyframes, and the packet-age limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/nack_generator.h"

enum { PKT, NACK, MISSING, END };

typedef struct {
  int op;
  uint16_t seq;      /* PKT */
  bool kf, rtx;      /* PKT */
  uint64_t now;      /* PKT, NACK */
  uint32_t rtt;      /* NACK */
  unsigned flags;    /* PKT: expected flags; NACK: true = keyframe expected; MISSING: count */
  uint16_t want[8];  /* NACK: expected seqs */
  size_t n_want;
  size_t max;        /* NACK: out capacity (0 = 64) */
} step_t;

typedef struct {
  const char *name;
  mf_nack_generator_config_t cfg; /* max_entries 0 = defaults */
  step_t steps[20];
} scenario_t;

#define P(s, t, fl) {PKT, s, false, false, t, 0, fl, {0}, 0, 0}
#define PK(s, t, fl) {PKT, s, true, false, t, 0, fl, {0}, 0, 0}
#define PR(s, t, fl) {PKT, s, false, true, t, 0, fl, {0}, 0, 0}
#define N(t, r, kf, n, ...) {NACK, 0, false, false, t, r, kf, {__VA_ARGS__}, n, 0}
#define NMAX(t, r, max, n, ...) {NACK, 0, false, false, t, r, 0, {__VA_ARGS__}, n, max}
#define M(n) {MISSING, 0, false, false, 0, 0, n, {0}, 0, 0}
#define E {END, 0, false, false, 0, 0, 0, {0}, 0, 0}
#define DEF {0, 0, 0, 0}

static const scenario_t scenarios[] = {
    {"in order: nothing to NACK", DEF,
     {P(100, 0, 0), P(101, 1, 0), P(102, 2, 0), N(1000, 0, false, 0), M(0), E}},
    {"gap NACKed after the initial delay, then every rtt", DEF,
     {P(100, 0, 0), P(103, 0, 0), M(2), N(5, 50, false, 0), N(10, 50, false, 2, 101, 102),
      N(11, 50, false, 0), P(101, 20, MF_NACK_GEN_REPAIRED), M(1), N(59, 50, false, 0),
      N(60, 50, false, 1, 102), E}},
    {"reordering within the delay is never NACKed", DEF,
     {P(100, 0, 0), P(102, 0, 0), P(101, 3, MF_NACK_GEN_REPAIRED), N(20, 0, false, 0), M(0),
      E}},
    {"retries then give up with keyframe signal", {1000, 3, 0, 20},
     {P(1, 0, 0), P(3, 0, 0), N(0, 0, false, 1, 2), N(50, 0, false, 0), N(100, 0, false, 1, 2),
      N(200, 0, false, 1, 2), N(299, 0, false, 0), N(300, 0, true, 0), M(0),
      N(1000, 0, false, 0), P(2, 1000, MF_NACK_GEN_OLD), E}},
    {"small rtt is raised to the minimum retry interval", DEF,
     {P(1, 0, 0), P(3, 0, 0), N(10, 5, false, 1, 2), N(25, 5, false, 0), N(30, 5, false, 1, 2),
      N(79, 60, false, 0), N(90, 60, false, 1, 2), E}},
    {"wraparound", DEF,
     {P(65534, 0, 0), P(1, 0, 0), M(2), N(10, 0, false, 2, 65535, 0),
      P(0, 11, MF_NACK_GEN_REPAIRED), PR(65535, 12, MF_NACK_GEN_REPAIRED), M(0),
      P(2, 13, 0), N(500, 0, false, 0), E}},
    {"duplicates and the newest again are old", DEF,
     {P(10, 0, 0), P(11, 0, 0), P(10, 1, MF_NACK_GEN_OLD), P(11, 1, MF_NACK_GEN_OLD),
      PR(9, 1, MF_NACK_GEN_OLD), M(0), E}},
    {"RTX ahead of the stream: not forwarded, not NACKed later", DEF,
     {P(10, 0, 0), PR(12, 1, 0), M(0), P(13, 2, 0), M(1), N(20, 0, false, 1, 11),
      PR(11, 30, MF_NACK_GEN_REPAIRED), M(0), E}},
    {"gap larger than the list: clear and request a keyframe", {10, 10, 10, 20},
     {P(0, 0, 0), P(3, 0, 0), M(2), P(20, 1, MF_NACK_GEN_KEYFRAME), M(0), P(21, 2, 0),
      N(100, 0, false, 0), P(23, 100, 0), M(1), E}},
    {"overflow trimmed up to a keyframe", {10, 10, 10, 20},
     {P(0, 0, 0), P(5, 0, 0), PK(6, 0, 0), P(12, 0, 0), M(9), P(15, 0, 0), M(7),
      N(10, 0, false, 7, 7, 8, 9, 10, 11, 13, 14), E}},
    {"overflow with a keyframe that does not help", {10, 10, 10, 20},
     {PK(0, 0, 0), P(5, 0, 0), P(12, 0, 0), P(15, 0, MF_NACK_GEN_KEYFRAME), M(0), E}},
    {"keyframe alone keeps older missing entries", DEF,
     {P(0, 0, 0), P(2, 0, 0), PK(3, 0, 0), M(1), N(10, 0, false, 1, 1), E}},
    {"out capacity: the rest stays due", DEF,
     {P(0, 0, 0), P(6, 0, 0), NMAX(10, 0, 2, 2, 1, 2), NMAX(10, 0, 2, 2, 3, 4),
      NMAX(10, 0, 8, 1, 5), N(10, 0, false, 0), N(110, 0, false, 5, 1, 2, 3, 4, 5), E}},
    {"immediate NACKs with zero delay", {1000, 10, 0, 20},
     {P(7, 0, 0), P(9, 0, 0), N(0, 0, false, 1, 8), E}},
    {"clock stepping back makes nothing due", DEF,
     {P(7, 100, 0), P(9, 100, 0), N(50, 0, false, 0), N(110, 0, false, 1, 8),
      N(5, 0, false, 0), E}},
};

static void run(const scenario_t *sc) {
  mf_nack_generator_t *g = NULL;
  const mf_nack_generator_config_t *cfg = sc->cfg.max_entries ? &sc->cfg : NULL;
  assert_int_equal(mf_nack_generator_create(cfg, &g), MF_OK);
  for (size_t i = 0; sc->steps[i].op != END; i++) {
    const step_t *st = &sc->steps[i];
    if (st->op == PKT) {
      unsigned f = mf_nack_generator_on_packet(g, st->seq, st->kf, st->rtx, st->now);
      if (f != st->flags) {
        fail_msg("%s: step %zu: seq %u flags %u, want %u", sc->name, i, st->seq, f, st->flags);
      }
    } else if (st->op == NACK) {
      uint16_t out[64];
      bool kf = !st->flags; /* poisoned: must be overwritten */
      size_t max = st->max ? st->max : 64;
      size_t n = mf_nack_generator_get_nacks(g, st->now, st->rtt, out, max, &kf);
      if (n != st->n_want || kf != (st->flags != 0)) {
        fail_msg("%s: step %zu: %zu nacks (kf %d), want %zu (kf %u)", sc->name, i, n, kf,
                 st->n_want, st->flags);
      }
      for (size_t j = 0; j < n; j++) {
        if (out[j] != st->want[j]) {
          fail_msg("%s: step %zu: nack[%zu] = %u, want %u", sc->name, i, j, out[j],
                   st->want[j]);
        }
      }
    } else if (st->op == MISSING) {
      mf_nack_generator_stats_t s;
      mf_nack_generator_get_stats(g, &s);
      if (s.missing != st->flags) {
        fail_msg("%s: step %zu: missing %u, want %u", sc->name, i, s.missing, st->flags);
      }
    }
  }
  mf_nack_generator_destroy(g);
}

static void test_scenarios(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
    run(&scenarios[i]);
  }
}

static void test_config(void **state) {
  (void)state;
  mf_nack_generator_t *g = NULL;
  mf_nack_generator_config_t c;
  mf_nack_generator_config_default(&c);
  assert_int_equal(c.max_entries, 1000);
  assert_int_equal(c.max_retries, 10);
  assert_int_equal(c.initial_delay_ms, 10);
  assert_int_equal(mf_nack_generator_create(&c, NULL), MF_ERR_INVALID_ARG);
  c.max_entries = 0;
  assert_int_equal(mf_nack_generator_create(&c, &g), MF_ERR_INVALID_ARG);
  c.max_entries = 40000;
  assert_int_equal(mf_nack_generator_create(&c, &g), MF_ERR_INVALID_ARG);
  c.max_entries = 10;
  c.max_retries = 0;
  assert_int_equal(mf_nack_generator_create(&c, &g), MF_ERR_INVALID_ARG);
  mf_nack_generator_destroy(NULL);
  /* NULL keyframe_needed is allowed. */
  assert_int_equal(mf_nack_generator_create(NULL, &g), MF_OK);
  mf_nack_generator_on_packet(g, 1, false, false, 0);
  mf_nack_generator_on_packet(g, 3, false, false, 0);
  uint16_t out[4];
  assert_int_equal(mf_nack_generator_get_nacks(g, 100, 0, out, 4, NULL), 1);
  mf_nack_generator_destroy(g);
}

/* Default retries: ten NACKs for one seq, then give-up with the keyframe signal; stats. */
static void test_default_retries_and_stats(void **state) {
  (void)state;
  mf_nack_generator_t *g = NULL;
  assert_int_equal(mf_nack_generator_create(NULL, &g), MF_OK);
  mf_nack_generator_on_packet(g, 65535, false, false, 0);
  mf_nack_generator_on_packet(g, 1, false, false, 0); /* 0 missing */
  uint16_t out[4];
  bool kf = true;
  int sent = 0;
  for (uint64_t t = 0; t <= 5000; t += 10) {
    size_t n = mf_nack_generator_get_nacks(g, t, 30, out, 4, &kf);
    if (n == 1) {
      assert_int_equal(out[0], 0);
      sent++;
    }
    if (kf) {
      break;
    }
  }
  assert_true(kf);
  assert_int_equal(sent, 10);
  mf_nack_generator_stats_t s;
  mf_nack_generator_get_stats(g, &s);
  assert_int_equal(s.packets, 2);
  assert_int_equal(s.missing_added, 1);
  assert_int_equal(s.nacks, 10);
  assert_int_equal(s.gave_up, 1);
  assert_int_equal(s.missing, 0);
  mf_nack_generator_destroy(g);
}

/* Missing seqs more than 10000 behind the newest are forgotten; the list keeps working
 * over many wraps with compaction (repairs in the middle leave tombstones). */
static void test_age_and_long_run(void **state) {
  (void)state;
  mf_nack_generator_t *g = NULL;
  assert_int_equal(mf_nack_generator_create(NULL, &g), MF_OK);
  mf_nack_generator_on_packet(g, 0, false, false, 0);
  mf_nack_generator_on_packet(g, 2, false, false, 0); /* 1 missing */
  for (uint32_t s = 3; s <= 10001; s++) {
    assert_int_equal(mf_nack_generator_on_packet(g, (uint16_t)s, false, false, 0), 0);
  }
  mf_nack_generator_stats_t st;
  mf_nack_generator_get_stats(g, &st);
  assert_int_equal(st.missing, 1);
  mf_nack_generator_on_packet(g, 10003, false, false, 0); /* gap 10002; 1 is too old */
  mf_nack_generator_get_stats(g, &st);
  assert_int_equal(st.missing, 1);
  uint16_t out[8];
  assert_int_equal(mf_nack_generator_get_nacks(g, 100, 0, out, 8, NULL), 1);
  assert_int_equal(out[0], 10002);
  mf_nack_generator_reset(g);

  /* Long run: every 10th packet lost, half of them repaired out of order. */
  uint16_t seq = 60000;
  uint64_t now = 0;
  uint64_t lost = 0, repaired = 0;
  for (uint32_t i = 0; i < 300000; i++) {
    seq++;
    now++;
    if (i % 10 == 5) {
      lost++;
      continue;
    }
    unsigned f = mf_nack_generator_on_packet(g, seq, false, false, now);
    assert_int_equal(f & MF_NACK_GEN_KEYFRAME, 0);
    if (i % 20 == 7) {
      f = mf_nack_generator_on_packet(g, (uint16_t)(seq - 2), false, true, now);
      assert_int_equal(f, MF_NACK_GEN_REPAIRED);
      repaired++;
    }
  }
  mf_nack_generator_get_stats(g, &st);
  assert_int_equal(st.repaired, repaired + 0);
  assert_int_equal(st.missing_added, lost + 2); /* + seqs 1 and 10002 above */
  assert_true(st.missing <= 1000);
  mf_nack_generator_destroy(g);
}

/* Random stream: 3% loss, some packets delayed (reordered) by a few positions, NACKed
 * packets retransmitted (RTX) 30 ms later with 50% success. Invariants: a NACKed seq was
 * never received; a repair is reported exactly for packets that were missing and
 * NACK-able; the list never exceeds max_entries. Seqs wrap several times. */
#define RW_COUNT 200000
static void test_random_stream(void **state) {
  (void)state;
  static bool received[RW_COUNT];
  static int64_t pending_rtx[RW_COUNT]; /* ext seq retransmitted at index i (-1 none) */
  static bool was_nacked[RW_COUNT];
  memset(received, 0, sizeof(received));
  memset(was_nacked, 0, sizeof(was_nacked));
  for (size_t i = 0; i < RW_COUNT; i++) {
    pending_rtx[i] = -1;
  }
  mf_nack_generator_t *g = NULL;
  assert_int_equal(mf_nack_generator_create(NULL, &g), MF_OK);
  const int64_t base = 65000; /* ext seq of index 0 */
  uint32_t rng = 777;
  int64_t delayed = -1; /* one packet held back, delivered a few packets later */
  int delay_left = 0;
  uint64_t nacked = 0, repaired = 0;
  for (int64_t i = 0; i < RW_COUNT; i++) {
    uint64_t now = (uint64_t)i; /* 1 packet per ms */
    rng = rng * 1103515245u + 12345u;
    uint32_t r = (rng >> 8) % 100;
    if (r < 3 && i > 0) {
      /* lost */
    } else if (r < 6 && delayed < 0 && i > 0) {
      delayed = i;
      delay_left = 1 + (int)(r % 4);
    } else {
      unsigned f = mf_nack_generator_on_packet(g, (uint16_t)(base + i), false, false, now);
      assert_int_equal(f & MF_NACK_GEN_REPAIRED, 0);
      received[i] = true;
    }
    if (delayed >= 0 && delay_left-- == 0) {
      unsigned f = mf_nack_generator_on_packet(g, (uint16_t)(base + delayed), false, false, now);
      /* 0 when everything after it was lost: then it is simply the newest. Held back for
       * less than the initial delay, so never NACKed (reordering tolerance). */
      assert_true(f == 0 || f == MF_NACK_GEN_REPAIRED);
      assert_false(was_nacked[delayed]);
      if (f == MF_NACK_GEN_REPAIRED) {
        repaired++;
      }
      received[delayed] = true;
      delayed = -1;
    }
    if (pending_rtx[i] >= 0) {
      int64_t idx = pending_rtx[i];
      unsigned f = mf_nack_generator_on_packet(g, (uint16_t)(base + idx), false, true, now);
      if (received[idx]) {
        assert_int_equal(f, MF_NACK_GEN_OLD);
      } else {
        assert_true(f == MF_NACK_GEN_REPAIRED || f == MF_NACK_GEN_OLD);
        if (f == MF_NACK_GEN_REPAIRED) {
          repaired++;
          received[idx] = true;
        }
      }
    }
    if (i % 20 == 0) {
      uint16_t out[256];
      size_t n = mf_nack_generator_get_nacks(g, now, 30, out, 256, NULL);
      for (size_t j = 0; j < n; j++) {
        /* The ext seq just behind the current position with these low 16 bits. */
        int64_t cur = base + i;
        int64_t ext = cur - (uint16_t)((uint16_t)cur - out[j]);
        int64_t idx = ext - base;
        assert_true(idx >= 0 && idx < i);
        if (received[idx]) {
          fail_msg("NACK for received seq %u (index %lld)", out[j], (long long)idx);
        }
        nacked++;
        was_nacked[idx] = true;
        rng = rng * 1103515245u + 12345u;
        if (((rng >> 8) & 1) && i + 30 < RW_COUNT && pending_rtx[i + 30] < 0) {
          pending_rtx[i + 30] = idx;
        }
      }
    }
    mf_nack_generator_stats_t st;
    mf_nack_generator_get_stats(g, &st);
    assert_true(st.missing <= 1000);
  }
  mf_nack_generator_stats_t st;
  mf_nack_generator_get_stats(g, &st);
  assert_int_equal(st.repaired, repaired);
  assert_int_equal(st.nacks, nacked);
  assert_true(repaired > 1000);
  assert_int_equal(st.overflows, 0);
  mf_nack_generator_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scenarios),
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_default_retries_and_stats),
      cmocka_unit_test(test_age_and_long_run),
      cmocka_unit_test(test_random_stream),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
