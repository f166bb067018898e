/* Tests for node/bwe/bitrate_allocator.h: tables of (budget, preferred layers, available
 * layers) → chosen layer for one consumer; priorities and round-robin sharing between
 * consumers; hysteresis on simulated time (margin + delay before going up, immediate
 * down, no flapping when the budget oscillates around a threshold, one step up per stable
 * period); argument validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/bwe/bitrate_allocator.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Three simulcast streams of 150k / 500k / 1500k with three temporal layers each:
 * (s,t) = base[s] * (t+1) / 3. */
static void simulcast3(mf_bitrate_allocator_consumer_t *c, uint32_t priority) {
  memset(c, 0, sizeof *c);
  static const uint32_t base[3] = {150000, 500000, 1500000};
  c->priority = priority;
  c->spatial_count = 3;
  c->temporal_count = 3;
  for (int s = 0; s < 3; s++)
    for (int t = 0; t < 3; t++) c->bitrate[s][t] = base[s] * (uint32_t)(t + 1) / 3;
  c->max_spatial = c->max_temporal = -1;
  mf_bitrate_allocator_init_consumer(c);
}

/* Spatial layers only: 100k / 300k / 900k. */
static void ladder3(mf_bitrate_allocator_consumer_t *c, uint32_t priority) {
  memset(c, 0, sizeof *c);
  c->priority = priority;
  c->spatial_count = 3;
  c->temporal_count = 1;
  c->bitrate[0][0] = 100000;
  c->bitrate[1][0] = 300000;
  c->bitrate[2][0] = 900000;
  c->max_spatial = c->max_temporal = -1;
  mf_bitrate_allocator_init_consumer(c);
}

typedef struct {
  uint32_t budget;
  int8_t max_s, max_t;
  bool drop_top;    /* stream 2 inactive (bitrate 0) */
  bool keep_lowest;
  int8_t want_s, want_t;
} single_case_t;

static const single_case_t single_cases[] = {
    {0, -1, -1, false, true, 0, 0},       /* nothing fits: keep the lowest */
    {0, -1, -1, false, false, -1, -1},    /* ... or nothing */
    {40000, -1, -1, false, false, -1, -1},
    {60000, -1, -1, false, false, 0, 0},  /* 50k * 1.12 = 56k */
    {55000, -1, -1, false, false, -1, -1}, /* below the margin */
    {120000, -1, -1, false, true, 0, 1},
    {170000, -1, -1, false, true, 0, 2},  /* (1,0) 167k needs 187k */
    {190000, -1, -1, false, true, 1, 0},
    {600000, -1, -1, false, true, 2, 0},  /* (1,2) and (2,0) are both 500k: the higher */
    {2000000, -1, -1, false, true, 2, 2},
    {2000000, 1, 1, false, true, 1, 1},   /* preferred maximum */
    {2000000, 2, 0, false, true, 2, 0},
    {2000000, 0, -1, false, true, 0, 2},
    {2000000, 5, 5, false, true, 2, 2},   /* beyond the counts: no limit */
    {2000000, -1, -1, true, true, 1, 2},  /* top stream inactive */
    {300000, 1, 1, false, true, 1, 0},
};

static void test_single_table(void **state) {
  (void)state;
  for (size_t i = 0; i < N(single_cases); i++) {
    const single_case_t *k = &single_cases[i];
    mf_bitrate_allocator_config_t cfg = mf_bitrate_allocator_default_config();
    cfg.keep_lowest = k->keep_lowest;
    mf_bitrate_allocator_consumer_t c;
    simulcast3(&c, 1);
    c.max_spatial = k->max_s;
    c.max_temporal = k->max_t;
    if (k->drop_top)
      for (int t = 0; t < 3; t++) c.bitrate[2][t] = 0;
    uint32_t unused = 0;
    assert_int_equal(mf_bitrate_allocator_run(&cfg, &c, 1, k->budget, 1000, &unused), MF_OK);
    print_message("case %zu: budget %u -> (%d,%d)\n", i, k->budget, c.spatial, c.temporal);
    assert_int_equal(c.spatial, k->want_s);
    assert_int_equal(c.temporal, k->want_t);
    uint32_t want_bps = k->want_s < 0 ? 0 : c.bitrate[k->want_s][k->want_t];
    assert_int_equal(c.allocated_bps, want_bps);
    assert_int_equal(unused, k->budget > want_bps ? k->budget - want_bps : 0);
  }
}

typedef struct {
  uint32_t budget;
  int8_t want_high, want_low;
} prio_case_t;

static void test_priorities(void **state) {
  (void)state;
  static const prio_case_t cases[] = {
      {150000, 0, -1}, /* only the high-priority one gets its lowest layer */
      {400000, 0, 0},  /* both lowest; 200k left is below 336k - 100k */
      {500000, 1, 0},  /* the high one climbs first */
      {700000, 1, 1},  /* round robin: then the low one */
      {1310000, 2, 1}, /* 900k * 1.12 - 300k = 708k of the 710k left */
      {1300000, 1, 1}, /* ... but not of 700k */
      {5000000, 2, 2},
  };
  mf_bitrate_allocator_config_t cfg = mf_bitrate_allocator_default_config();
  for (size_t i = 0; i < N(cases); i++) {
    mf_bitrate_allocator_consumer_t c[2];
    ladder3(&c[0], 1); /* low priority first in the array: order comes from priority */
    ladder3(&c[1], 200);
    assert_int_equal(mf_bitrate_allocator_run(&cfg, c, 2, cases[i].budget, 0, NULL), MF_OK);
    assert_int_equal(c[1].spatial, cases[i].want_high);
    assert_int_equal(c[0].spatial, cases[i].want_low);
  }
  /* equal priorities: array order */
  mf_bitrate_allocator_consumer_t c[3];
  for (int i = 0; i < 3; i++) ladder3(&c[i], 7);
  assert_int_equal(mf_bitrate_allocator_run(&cfg, c, 3, 600000, 0, NULL), MF_OK);
  assert_int_equal(c[0].spatial, 1);
  assert_int_equal(c[1].spatial, 0);
  assert_int_equal(c[2].spatial, 0);
  /* round robin: with a large budget everyone climbs evenly, not the first to the top */
  for (int i = 0; i < 3; i++) ladder3(&c[i], 7);
  assert_int_equal(mf_bitrate_allocator_run(&cfg, c, 3, 1100000, 0, NULL), MF_OK);
  assert_int_equal(c[0].spatial, 1);
  assert_int_equal(c[1].spatial, 1);
  assert_int_equal(c[2].spatial, 1);
}

static int run1(mf_bitrate_allocator_consumer_t *c, uint32_t budget, uint64_t now) {
  mf_bitrate_allocator_config_t cfg = mf_bitrate_allocator_default_config();
  assert_int_equal(mf_bitrate_allocator_run(&cfg, c, 1, budget, now, NULL), MF_OK);
  return c->spatial;
}

static void test_hysteresis(void **state) {
  (void)state;
  mf_bitrate_allocator_consumer_t c;
  ladder3(&c, 1);
  /* first run: no delay */
  assert_int_equal(run1(&c, 400000, 0), 1);
  /* enough for layer 2 with margin (900k * 1.12 = 1008k): only after 2 s of it */
  assert_int_equal(run1(&c, 1100000, 1000), 1);
  assert_int_equal(run1(&c, 1100000, 2000), 1);
  assert_int_equal(run1(&c, 1100000, 2999), 1);
  assert_int_equal(run1(&c, 1100000, 3000), 2);
  /* down at once, but not inside the dead band */
  assert_int_equal(run1(&c, 950000, 3100), 2);
  assert_int_equal(run1(&c, 900000, 3200), 2);
  assert_int_equal(run1(&c, 899999, 3300), 1);
  /* budget oscillating around the up threshold: never goes up (no flapping) */
  uint64_t t = 4000;
  for (int i = 0; i < 40; i++, t += 500)
    assert_int_equal(run1(&c, (i % 2) ? 1010000 : 950000, t), 1);
  /* ... and oscillating around the down threshold (inside the dead band) never goes down */
  for (int i = 0; i < 40; i++, t += 500)
    assert_int_equal(run1(&c, (i % 2) ? 300000 : 330000, t), 1);
  /* steady above the threshold for the delay: up */
  uint64_t start = t;
  while (run1(&c, 1010000, t) == 1) t += 100;
  assert_int_equal(t - start, 2000);
  /* a big budget from the lowest layer: one step per stable period */
  ladder3(&c, 1);
  assert_int_equal(run1(&c, 150000, 0), 0);
  assert_int_equal(run1(&c, 5000000, 100), 0);
  assert_int_equal(run1(&c, 5000000, 2100), 1);
  assert_int_equal(run1(&c, 5000000, 3000), 1);
  assert_int_equal(run1(&c, 5000000, 4999), 1);
  assert_int_equal(run1(&c, 5000000, 5000), 2);
  /* dropped to nothing (keep_lowest does not apply: two consumers), comes back only after
   * the delay */
  mf_bitrate_allocator_consumer_t two[2];
  ladder3(&two[0], 2);
  ladder3(&two[1], 1);
  mf_bitrate_allocator_config_t cfg = mf_bitrate_allocator_default_config();
  assert_int_equal(mf_bitrate_allocator_run(&cfg, two, 2, 250000, 0, NULL), MF_OK);
  assert_int_equal(two[1].spatial, 0);
  assert_int_equal(mf_bitrate_allocator_run(&cfg, two, 2, 150000, 100, NULL), MF_OK);
  assert_int_equal(two[1].spatial, -1);
  assert_int_equal(mf_bitrate_allocator_run(&cfg, two, 2, 250000, 200, NULL), MF_OK);
  assert_int_equal(two[1].spatial, -1);
  assert_int_equal(mf_bitrate_allocator_run(&cfg, two, 2, 250000, 2200, NULL), MF_OK);
  assert_int_equal(two[1].spatial, 0);
}

static void test_invalid(void **state) {
  (void)state;
  mf_bitrate_allocator_config_t cfg = mf_bitrate_allocator_default_config();
  mf_bitrate_allocator_consumer_t c[2];
  ladder3(&c[0], 1);
  ladder3(&c[1], 1);
  c[1].temporal_count = 0;
  assert_int_equal(mf_bitrate_allocator_run(&cfg, c, 2, 1000000, 0, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(c[0].spatial, -1); /* nothing changed */
  c[1].temporal_count = MF_ALLOC_MAX_TEMPORAL + 1;
  assert_int_equal(mf_bitrate_allocator_run(&cfg, c, 2, 1000000, 0, NULL), MF_ERR_INVALID_ARG);
  c[1].temporal_count = 1;
  c[1].spatial_count = MF_ALLOC_MAX_SPATIAL + 1;
  assert_int_equal(mf_bitrate_allocator_run(&cfg, c, 2, 1000000, 0, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_bitrate_allocator_run(&cfg, NULL, 1, 1000000, 0, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_bitrate_allocator_run(NULL, c, 1, 1000000, 0, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_bitrate_allocator_run(&cfg, c, MF_ALLOC_MAX_CONSUMERS + 1, 1, 0, NULL),
                   MF_ERR_INVALID_ARG);
  uint32_t unused = 0;
  assert_int_equal(mf_bitrate_allocator_run(&cfg, NULL, 0, 12345, 0, &unused), MF_OK);
  assert_int_equal(unused, 12345);
  /* a consumer with no layer available at all gets none */
  ladder3(&c[0], 1);
  memset(c[0].bitrate, 0, sizeof c[0].bitrate);
  assert_int_equal(mf_bitrate_allocator_run(&cfg, c, 1, 1000000, 0, &unused), MF_OK);
  assert_int_equal(c[0].spatial, -1);
  assert_int_equal(unused, 1000000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_single_table),
      cmocka_unit_test(test_priorities),
      cmocka_unit_test(test_hysteresis),
      cmocka_unit_test(test_invalid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
