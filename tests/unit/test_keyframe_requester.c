/* Tests for node/keyframe_requester.h: scripted scenarios on a fake clock (each step is
 * an operation at a given now_ms and the expected "send now" answer), plus stats, config
 * validation and next_tick_ms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "node/keyframe_requester.h"

typedef enum { REQ, KF, TICK, END } op_t;

typedef struct {
  op_t op;
  uint64_t now;
  bool send; /* expected return of REQ/TICK */
} step_t;

typedef struct {
  const char *name;
  step_t steps[24];
  mf_keyframe_requester_stats_t stats; /* expected at the end */
  bool pending;                        /* expected at the end */
} scenario_t;

#define S(asked, sent, coalesced, retries, keyframes, gave_up) \
  {asked, sent, coalesced, retries, keyframes, gave_up}

static const scenario_t scenarios[] = {
    {"first request sends at once",
     {{REQ, 1000, true}, {END, 0, false}},
     S(1, 1, 0, 0, 0, 0),
     true},
    {"requests within the window coalesce into the outstanding one",
     {{REQ, 1000, true}, {REQ, 1100, false}, {REQ, 1499, false}, {TICK, 1499, false},
      {KF, 1600, false}, {TICK, 2000, false}, {END, 0, false}},
     S(3, 1, 2, 0, 1, 0),
     false},
    {"keyframe clears pending, next request after the window sends",
     {{REQ, 0, true}, {KF, 100, false}, {REQ, 500, true}, {END, 0, false}},
     S(2, 2, 0, 0, 1, 0),
     true},
    {"request after keyframe but inside the window is deferred to tick",
     {{REQ, 1000, true}, {KF, 1050, false}, {REQ, 1100, false}, {TICK, 1200, false},
      {TICK, 1499, false}, {TICK, 1500, true}, {TICK, 1600, false}, {KF, 1700, false},
      {TICK, 3000, false}, {END, 0, false}},
     S(2, 2, 1, 0, 2, 0),
     false},
    {"deferred request satisfied by a keyframe before the window ends",
     {{REQ, 1000, true}, {KF, 1050, false}, {REQ, 1100, false}, {KF, 1300, false},
      {TICK, 1500, false}, {TICK, 5000, false}, {END, 0, false}},
     S(2, 1, 1, 0, 2, 0),
     false},
    {"no keyframe: retry every 1000 ms up to max_retries, then give up",
     {{REQ, 0, true}, {TICK, 999, false}, {TICK, 1000, true}, {TICK, 1500, false},
      {TICK, 2000, true}, {TICK, 3000, true}, {TICK, 4000, false}, {TICK, 5000, false},
      {END, 0, false}},
     S(1, 1, 0, 3, 0, 1),
     false},
    {"a new request renews the retry budget",
     {{REQ, 0, true}, {TICK, 1000, true}, {TICK, 2000, true}, {REQ, 2500, false},
      {TICK, 3000, true}, {TICK, 4000, true}, {TICK, 5000, true}, {TICK, 6000, false},
      {END, 0, false}},
     S(2, 1, 1, 5, 0, 1),
     false},
    {"request after an unanswered send timed out sends at once",
     {{REQ, 0, true}, {REQ, 1000, true}, {REQ, 1200, false}, {END, 0, false}},
     S(3, 2, 1, 0, 0, 0),
     true},
    {"keyframe stops retries",
     {{REQ, 0, true}, {TICK, 1000, true}, {KF, 1100, false}, {TICK, 2100, false},
      {TICK, 9000, false}, {END, 0, false}},
     S(1, 1, 0, 1, 1, 0),
     false},
    {"unsolicited keyframe with nothing pending",
     {{KF, 10, false}, {TICK, 5000, false}, {REQ, 5000, true}, {END, 0, false}},
     S(1, 1, 0, 0, 1, 0),
     true},
    {"clock at zero and large values",
     {{REQ, 0, true}, {KF, 0, false}, {REQ, 0, false}, {TICK, 499, false},
      {TICK, 500, true}, {KF, UINT64_C(1) << 40, false},
      {REQ, (UINT64_C(1) << 40) + 1, true}, {END, 0, false}},
     S(3, 3, 1, 0, 2, 0),
     true},
};

static void run_scenario(const scenario_t *sc) {
  mf_keyframe_requester_t *k = NULL;
  assert_int_equal(mf_keyframe_requester_create(NULL, &k), MF_OK);
  for (size_t i = 0; sc->steps[i].op != END; i++) {
    const step_t *st = &sc->steps[i];
    bool got = false;
    switch (st->op) {
      case REQ:
        got = mf_keyframe_requester_request(k, st->now);
        break;
      case TICK:
        got = mf_keyframe_requester_tick(k, st->now);
        break;
      case KF:
        mf_keyframe_requester_on_keyframe(k, st->now);
        break;
      case END:
        break;
    }
    if (got != st->send) {
      fail_msg("%s: step %zu (op %d at %llu): got %d, want %d", sc->name, i, st->op,
               (unsigned long long)st->now, got, st->send);
    }
  }
  mf_keyframe_requester_stats_t s;
  mf_keyframe_requester_get_stats(k, &s);
  if (s.asked != sc->stats.asked || s.sent != sc->stats.sent ||
      s.coalesced != sc->stats.coalesced || s.retries != sc->stats.retries ||
      s.keyframes != sc->stats.keyframes || s.gave_up != sc->stats.gave_up) {
    fail_msg("%s: stats asked %llu sent %llu coalesced %llu retries %llu kf %llu gave_up %llu",
             sc->name, (unsigned long long)s.asked, (unsigned long long)s.sent,
             (unsigned long long)s.coalesced, (unsigned long long)s.retries,
             (unsigned long long)s.keyframes, (unsigned long long)s.gave_up);
  }
  assert_int_equal(mf_keyframe_requester_pending(k), sc->pending);
  mf_keyframe_requester_destroy(k);
}

static void test_scenarios(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
    run_scenario(&scenarios[i]);
  }
}

static void test_config(void **state) {
  (void)state;
  mf_keyframe_requester_t *k = NULL;
  mf_keyframe_requester_config_t c;
  mf_keyframe_requester_config_default(&c);
  assert_int_equal(c.min_interval_ms, 500);
  assert_int_equal(c.retry_interval_ms, 1000);
  assert_int_equal(mf_keyframe_requester_create(&c, NULL), MF_ERR_INVALID_ARG);
  c.retry_interval_ms = 0;
  c.min_interval_ms = 0;
  assert_int_equal(mf_keyframe_requester_create(&c, &k), MF_ERR_INVALID_ARG);
  c.retry_interval_ms = 400;
  c.min_interval_ms = 500;
  assert_int_equal(mf_keyframe_requester_create(&c, &k), MF_ERR_INVALID_ARG);
  mf_keyframe_requester_destroy(NULL);

  /* max_retries 0: never retry, give up at the first timeout. */
  mf_keyframe_requester_config_default(&c);
  c.max_retries = 0;
  assert_int_equal(mf_keyframe_requester_create(&c, &k), MF_OK);
  assert_true(mf_keyframe_requester_request(k, 100));
  assert_false(mf_keyframe_requester_tick(k, 1100));
  assert_false(mf_keyframe_requester_pending(k));
  assert_true(mf_keyframe_requester_request(k, 1200));
  mf_keyframe_requester_destroy(k);

  /* min_interval 0: back-to-back requests after keyframes all go out. */
  c.min_interval_ms = 0;
  c.max_retries = 1;
  assert_int_equal(mf_keyframe_requester_create(&c, &k), MF_OK);
  for (uint64_t t = 0; t < 10; t++) {
    assert_true(mf_keyframe_requester_request(k, t));
    mf_keyframe_requester_on_keyframe(k, t);
  }
  mf_keyframe_requester_destroy(k);
}

static void test_next_tick_and_reset(void **state) {
  (void)state;
  mf_keyframe_requester_t *k = NULL;
  assert_int_equal(mf_keyframe_requester_create(NULL, &k), MF_OK);
  assert_int_equal(mf_keyframe_requester_next_tick_ms(k), 0);
  assert_true(mf_keyframe_requester_request(k, 7000));
  assert_int_equal(mf_keyframe_requester_next_tick_ms(k), 8000);
  mf_keyframe_requester_on_keyframe(k, 7100);
  assert_int_equal(mf_keyframe_requester_next_tick_ms(k), 0);
  assert_false(mf_keyframe_requester_request(k, 7200)); /* deferred */
  assert_int_equal(mf_keyframe_requester_next_tick_ms(k), 7500);
  mf_keyframe_requester_reset(k);
  assert_false(mf_keyframe_requester_pending(k));
  assert_int_equal(mf_keyframe_requester_next_tick_ms(k), 0);
  assert_false(mf_keyframe_requester_tick(k, 9000));
  /* A clock that steps back does not make a send due. */
  assert_true(mf_keyframe_requester_request(k, 9000));
  assert_false(mf_keyframe_requester_tick(k, 100));
  mf_keyframe_requester_destroy(k);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scenarios),
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_next_tick_and_reset),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
