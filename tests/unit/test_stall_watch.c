/* The worker watchdog's clock (node/stall_watch.h): a stopped process (SIGSTOP) must not
 * make every worker look stalled on resume, and a real stall must still be seen. Times are
 * given, never read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "node/stall_watch.h"
#include "node/worker.h"

#define TICK 250 /* the agent's check interval */
#define LATE (MF_WORKER_STALL_MS / 2)

/* Steady checks: ages are plain now - heartbeat, and a worker that stops beating is seen
 * stalled once its age reaches MF_WORKER_STALL_MS. */
static void test_steady_ticks(void **state) {
  (void)state;
  mf_stall_watch_t w = {0};
  uint64_t now = 10000, hb = 10000;
  assert_false(mf_stall_watch_check(&w, now, LATE)); /* the first check is never late */
  for (int i = 0; i < 8; i++) {
    now += TICK;
    hb = now - 10;
    assert_false(mf_stall_watch_check(&w, now, LATE));
    assert_int_equal(mf_stall_watch_age(&w, hb, now), 10);
  }
  uint64_t frozen_hb = hb; /* the worker stops beating; the watchdog keeps running */
  int ticks = 0;
  while (mf_stall_watch_age(&w, frozen_hb, now) < MF_WORKER_STALL_MS) {
    now += TICK;
    assert_false(mf_stall_watch_check(&w, now, LATE));
    ticks++;
  }
  assert_int_equal(ticks, (MF_WORKER_STALL_MS - 10 + TICK - 1) / TICK);
  /* A heartbeat newer than the check (another thread) is age 0, never negative. */
  assert_int_equal(mf_stall_watch_age(&w, now + 5, now), 0);
}

/* The node_pause finding: the whole process stopped for 5 s. The first check after
 * SIGCONT comes 5 s late, so the workers' 5 s old heartbeats are not a stall; a worker
 * that beats again is fine; one that does not is stalled MF_WORKER_STALL_MS later. */
static void test_process_stopped(void **state) {
  (void)state;
  static const struct {
    uint64_t gap;   /* between the last check before the stop and the first after */
    bool late;      /* the check sees the process was not running */
  } cases[] = {
      {TICK, false},     {LATE - 1, false}, {LATE, true},
      {5000, true},      {60000, true},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    mf_stall_watch_t w = {0};
    uint64_t now = 50000;
    assert_false(mf_stall_watch_check(&w, now, LATE));
    uint64_t hb_a = now - 100, hb_b = now - 100; /* two workers, last beat before the stop */
    now += cases[c].gap;
    assert_int_equal(mf_stall_watch_check(&w, now, LATE), cases[c].late);
    uint64_t age_a = mf_stall_watch_age(&w, hb_a, now);
    if (cases[c].late) {
      assert_int_equal(w.last_gap_ms, cases[c].gap);
      assert_int_equal(age_a, 0); /* timed from the resume */
    } else {
      assert_int_equal(age_a, cases[c].gap + 100);
    }
    assert_true(age_a < MF_WORKER_STALL_MS); /* no false stall in any case */
    uint64_t resumed = now;
    /* Worker a beats again after resume; worker b never does. */
    bool b_stalled = false;
    for (int i = 0; i < 20 && !b_stalled; i++) {
      now += TICK;
      assert_false(mf_stall_watch_check(&w, now, LATE));
      hb_a = now - 20;
      assert_true(mf_stall_watch_age(&w, hb_a, now) < MF_WORKER_STALL_MS);
      b_stalled = mf_stall_watch_age(&w, hb_b, now) >= MF_WORKER_STALL_MS;
    }
    assert_true(b_stalled);
    if (cases[c].late)
      assert_true(now - resumed >= MF_WORKER_STALL_MS && now - resumed < MF_WORKER_STALL_MS + TICK);
  }
}

/* Two stops in a row: each late check moves the resume point; a non-late check keeps it. */
static void test_repeated_stops(void **state) {
  (void)state;
  mf_stall_watch_t w = {0};
  uint64_t now = 1000;
  assert_false(mf_stall_watch_check(&w, now, LATE));
  now += 3000;
  assert_true(mf_stall_watch_check(&w, now, LATE));
  uint64_t first = w.resumed_ms;
  now += TICK;
  assert_false(mf_stall_watch_check(&w, now, LATE));
  assert_int_equal(w.resumed_ms, first);
  now += 7000;
  assert_true(mf_stall_watch_check(&w, now, LATE));
  assert_int_equal(w.resumed_ms, now);
  assert_int_equal(w.last_gap_ms, 7000);
  /* A clock that went backwards (never with CLOCK_MONOTONIC) is not a stop. */
  assert_false(mf_stall_watch_check(&w, now - 10, LATE));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_steady_ticks),
      cmocka_unit_test(test_process_stopped),
      cmocka_unit_test(test_repeated_stops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
