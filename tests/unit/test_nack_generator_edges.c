/* NACK generator edges beyond test_nack_generator.c: RTX packets that arrive AHEAD of the
 * stream (out of order, twice, more than the remembered 32) are not NACKed when the gap
 * behind them opens; keyframes older than the tracked age are forgotten; the
 * configuration's range checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/nack_generator.h"

static void test_recovered_ahead_of_the_stream(void **state) {
  (void)state;
  mf_nack_generator_config_t cfg;
  mf_nack_generator_config_default(&cfg);
  cfg.initial_delay_ms = 0;
  mf_nack_generator_t *g;
  assert_int_equal(mf_nack_generator_create(&cfg, &g), MF_OK);
  assert_int_equal(mf_nack_generator_on_packet(g, 100, true, false, 0), 0);
  /* retransmissions of 105 and 103 (in that order, 105 twice) before 101..104 */
  assert_int_equal(mf_nack_generator_on_packet(g, 105, false, true, 1), 0);
  assert_int_equal(mf_nack_generator_on_packet(g, 103, false, true, 1), 0);
  assert_int_equal(mf_nack_generator_on_packet(g, 105, false, true, 1), 0);
  /* then 108 in order: the gap 101..107 without the two already recovered */
  assert_int_equal(mf_nack_generator_on_packet(g, 108, false, false, 2), 0);
  uint16_t seqs[64];
  bool kf = true;
  size_t n = mf_nack_generator_get_nacks(g, 10, 0, seqs, 64, &kf);
  assert_false(kf);
  static const uint16_t want[] = {101, 102, 104, 106, 107};
  assert_int_equal(n, sizeof want / sizeof want[0]);
  assert_memory_equal(seqs, want, sizeof want);

  /* 40 retransmissions ahead: only the newest 32 are remembered */
  for (uint16_t s = 200; s < 240; s++) assert_int_equal(mf_nack_generator_on_packet(g, s, false, true, 20), 0);
  assert_int_equal(mf_nack_generator_on_packet(g, 240, false, false, 21), 0);
  /* missing: the five NACKed above, and 109..207 (200..207 were recovered but forgotten;
   * 208..239 are remembered and not missing) */
  mf_nack_generator_stats_t st;
  mf_nack_generator_get_stats(g, &st);
  assert_int_equal(st.missing, 5 + (207 - 109 + 1));
  mf_nack_generator_reset(g);
  mf_nack_generator_get_stats(g, &st);
  assert_int_equal(st.missing, 0);
  assert_int_equal(mf_nack_generator_get_nacks(g, 10000, 0, seqs, 64, NULL), 0);
  mf_nack_generator_destroy(g);
  mf_nack_generator_destroy(NULL);
}

/* A long stream (keyframes older than the tracked age pruned on the way), then a gap larger
 * than the whole list: cleared, and a keyframe requested. */
static void test_old_keyframes_forgotten(void **state) {
  (void)state;
  mf_nack_generator_config_t cfg;
  mf_nack_generator_config_default(&cfg);
  cfg.max_entries = 100;
  mf_nack_generator_t *g;
  assert_int_equal(mf_nack_generator_create(&cfg, &g), MF_OK);
  uint16_t s = 0;
  assert_int_equal(mf_nack_generator_on_packet(g, s, true, false, 0), 0);
  /* walk 12000 packets forward in steps of 50 (each step a gap of 49, repaired at once) */
  for (int i = 0; i < 240; i++) {
    uint16_t next = (uint16_t)(s + 50);
    assert_int_equal(mf_nack_generator_on_packet(g, next, false, false, 1), 0);
    for (uint16_t r = (uint16_t)(s + 1); r != next; r++)
      assert_int_equal(mf_nack_generator_on_packet(g, r, false, false, 1), MF_NACK_GEN_REPAIRED);
    s = next;
  }
  assert_int_equal(mf_nack_generator_on_packet(g, (uint16_t)(s + 200), false, false, 2), MF_NACK_GEN_KEYFRAME);
  mf_nack_generator_stats_t st;
  mf_nack_generator_get_stats(g, &st);
  assert_int_equal(st.overflows, 1);
  assert_int_equal(st.missing, 0);
  mf_nack_generator_destroy(g);
}

static void test_config_ranges(void **state) {
  (void)state;
  mf_nack_generator_config_t cfg;
  mf_nack_generator_t *g = NULL;
  mf_nack_generator_config_default(&cfg);
  cfg.max_entries = 0;
  assert_int_equal(mf_nack_generator_create(&cfg, &g), MF_ERR_INVALID_ARG);
  cfg.max_entries = 32769;
  assert_int_equal(mf_nack_generator_create(&cfg, &g), MF_ERR_INVALID_ARG);
  mf_nack_generator_config_default(&cfg);
  cfg.max_retries = 0;
  assert_int_equal(mf_nack_generator_create(&cfg, &g), MF_ERR_INVALID_ARG);
  assert_null(g);
  assert_int_equal(mf_nack_generator_create(NULL, &g), MF_OK);
  mf_nack_generator_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_recovered_ahead_of_the_stream),
      cmocka_unit_test(test_old_keyframes_forgotten),
      cmocka_unit_test(test_config_ranges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
