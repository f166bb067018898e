/* node/api_limits: the per-session token bucket (with a fake clock), flood closing, log
 * throttling, per-session and per-node counts, resume moves and entry lifetimes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "node/api_limits.h"
#include "node/node_config.h"

static uint64_t fake_now;
static uint64_t fake_clock(void *ctx) {
  (void)ctx;
  return fake_now;
}

static mf_api_limits_t *make(mf_api_limits_config_t c) {
  c.clock = fake_clock;
  mf_api_limits_t *l = NULL;
  assert_int_equal(mf_api_limits_create(&c, &l), MF_OK);
  return l;
}

static size_t tracked(mf_api_limits_t *l) {
  mf_api_limits_stats_t s;
  mf_api_limits_stats(l, &s);
  return s.sessions_tracked;
}

/* ---------------------------------------------------------------- token bucket */

typedef struct {
  int64_t advance_ms; /* negative: the clock goes back */
  unsigned requests;
  unsigned admitted; /* expected */
} step_t;

typedef struct {
  const char *name;
  uint32_t rate, burst;
  step_t steps[6];
} bucket_case_t;

static void test_bucket_table(void **state) {
  (void)state;
  static const bucket_case_t cases[] = {
      {"burst then refill", 10, 20, {{0, 25, 20}, {100, 3, 1}, {1000, 15, 10}, {0, 1, 0}}},
      {"unlimited rate", 0, 0, {{0, 1000, 1000}, {0, 5000, 5000}}},
      {"burst 0 means rate", 5, 0, {{0, 8, 5}, {200, 2, 1}}},
      {"sub-token refill accumulates", 1, 1, {{0, 2, 1}, {999, 1, 0}, {1, 1, 1}, {500, 1, 0}, {500, 1, 1}}},
      {"a long gap refills to the burst only", 50, 200, {{0, 200, 200}, {3600000, 500, 200}}},
      {"clock going back: no refill, no harm", 10, 10, {{0, 10, 10}, {-5000, 5, 0}, {6000, 20, 10}}},
      {"huge clock jump does not overflow", 100000000, 100000000,
       {{0, 1, 1}, {INT64_C(1) << 40, 3, 3}}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const bucket_case_t *bc = &cases[i];
    fake_now = 1000000;
    mf_api_limits_t *l = make((mf_api_limits_config_t){.rate = bc->rate, .burst = bc->burst});
    for (size_t s = 0; s < 6 && (bc->steps[s].requests || bc->steps[s].advance_ms); s++) {
      fake_now = (uint64_t)((int64_t)fake_now + bc->steps[s].advance_ms);
      unsigned ok = 0;
      for (unsigned r = 0; r < bc->steps[s].requests; r++) {
        mf_api_limits_verdict_t v;
        mf_err_t e = mf_api_limits_admit(l, 7, &v);
        assert_int_equal(e, v.err);
        if (e == MF_OK) {
          ok++;
        } else {
          assert_int_equal(e, MF_ERR_RATE);
          assert_non_null(strstr(v.why, "--api-rate"));
        }
      }
      if (ok != bc->steps[s].admitted)
        fail_msg("%s, step %zu: %u admitted, expected %u", bc->name, s, ok, bc->steps[s].admitted);
    }
    mf_api_limits_destroy(l);
  }
}

/* Sessions have buckets of their own. */
static void test_bucket_per_session(void **state) {
  (void)state;
  fake_now = 0;
  mf_api_limits_t *l = make((mf_api_limits_config_t){.rate = 1, .burst = 3});
  mf_api_limits_verdict_t v;
  for (int i = 0; i < 3; i++) assert_int_equal(mf_api_limits_admit(l, 1, &v), MF_OK);
  assert_int_equal(mf_api_limits_admit(l, 1, &v), MF_ERR_RATE);
  assert_non_null(strstr(v.why, "1 requests/s (burst 3)"));
  for (int i = 0; i < 3; i++) assert_int_equal(mf_api_limits_admit(l, 2, &v), MF_OK);
  assert_int_equal(mf_api_limits_admit(l, 2, &v), MF_ERR_RATE);
  mf_api_limits_destroy(l);
}

/* ---------------------------------------------------------------- flooding and logging */

static void test_flood_close(void **state) {
  (void)state;
  fake_now = 0;
  mf_api_limits_t *l = make((mf_api_limits_config_t){.rate = 10, .burst = 10, .flood_close = 5});
  mf_api_limits_verdict_t v;
  for (int i = 0; i < 10; i++) assert_int_equal(mf_api_limits_admit(l, 1, &v), MF_OK);
  /* refusals 1..5: debt 5 is not past the threshold */
  for (int i = 0; i < 5; i++) {
    assert_int_equal(mf_api_limits_admit(l, 1, &v), MF_ERR_RATE);
    assert_false(v.close);
  }
  assert_int_equal(mf_api_limits_admit(l, 1, &v), MF_ERR_RATE); /* 6th: past */
  assert_true(v.close);
  assert_true(v.log);
  assert_non_null(strstr(v.why, "--api-flood-close"));
  /* asked once: later refusals do not ask again */
  assert_int_equal(mf_api_limits_admit(l, 1, &v), MF_ERR_RATE);
  assert_false(v.close);
  mf_api_limits_stats_t st;
  mf_api_limits_stats(l, &st);
  assert_int_equal(st.closed_flooding, 1);
  assert_int_equal(st.refused_rate, 7);
  /* the debt drains at the rate: a client that slowed down is not closed */
  fake_now += 2000;
  for (int i = 0; i < 10; i++) assert_int_equal(mf_api_limits_admit(l, 1, &v), MF_OK);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(mf_api_limits_admit(l, 1, &v), MF_ERR_RATE);
    assert_false(v.close);
  }
  mf_api_limits_destroy(l);

  /* flood_close 0: never */
  l = make((mf_api_limits_config_t){.rate = 1, .burst = 1});
  for (int i = 0; i < 10000; i++) {
    mf_api_limits_admit(l, 1, &v);
    assert_false(v.close);
  }
  mf_api_limits_destroy(l);

  /* slightly over the rate forever: the debt never builds up */
  fake_now = 0;
  l = make((mf_api_limits_config_t){.rate = 10, .burst = 10, .flood_close = 20});
  for (int sec = 0; sec < 100; sec++) {
    for (int i = 0; i < 12; i++) {
      mf_api_limits_admit(l, 1, &v);
      assert_false(v.close);
    }
    fake_now += 1000;
  }
  mf_api_limits_destroy(l);
}

static void test_log_throttle(void **state) {
  (void)state;
  fake_now = 0;
  mf_api_limits_t *l = make((mf_api_limits_config_t){.rate = 1, .burst = 1,
                                                      .session_max = {[MF_API_LIMIT_PRODUCER] = 1}});
  mf_api_limits_verdict_t v;
  assert_int_equal(mf_api_limits_admit(l, 1, &v), MF_OK);
  assert_false(v.log);
  assert_int_equal(mf_api_limits_admit(l, 1, &v), MF_ERR_RATE);
  assert_true(v.log);
  assert_int_equal(v.suppressed, 0);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(mf_api_limits_admit(l, 1, &v), MF_ERR_RATE);
    assert_false(v.log);
  }
  /* count refusals share the throttle */
  assert_int_equal(mf_api_limits_take(l, 1, MF_API_LIMIT_PRODUCER, &v), MF_OK);
  assert_int_equal(mf_api_limits_take(l, 1, MF_API_LIMIT_PRODUCER, &v), MF_ERR_LIMIT);
  assert_false(v.log);
  fake_now += MF_API_LIMITS_LOG_MS - 1;
  assert_int_equal(mf_api_limits_take(l, 1, MF_API_LIMIT_PRODUCER, &v), MF_ERR_LIMIT);
  assert_false(v.log);
  fake_now += 1;
  assert_int_equal(mf_api_limits_take(l, 1, MF_API_LIMIT_PRODUCER, &v), MF_ERR_LIMIT);
  assert_true(v.log);
  assert_int_equal(v.suppressed, 6);
  /* another session logs on its own */
  assert_int_equal(mf_api_limits_admit(l, 2, &v), MF_OK);
  assert_int_equal(mf_api_limits_admit(l, 2, &v), MF_ERR_RATE);
  assert_true(v.log);
  mf_api_limits_destroy(l);
}

/* ---------------------------------------------------------------- counts */

typedef struct {
  mf_api_limit_kind_t kind;
  uint32_t max;
  const char *option, *noun;
} count_case_t;

static void test_session_counts_table(void **state) {
  (void)state;
  static const count_case_t cases[] = {
      {MF_API_LIMIT_TRANSPORT, 3, "--max-session-transports", "3 transports"},
      {MF_API_LIMIT_PRODUCER, 2, "--max-session-producers", "2 producers"},
      {MF_API_LIMIT_CONSUMER, 5, "--max-session-consumers", "5 consumers"},
      {MF_API_LIMIT_DATA, 1, "--max-session-data", "1 data producers/consumers"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const count_case_t *cc = &cases[i];
    mf_api_limits_config_t c = {0};
    c.session_max[cc->kind] = cc->max;
    mf_api_limits_t *l = make(c);
    mf_api_limits_verdict_t v;
    for (uint32_t n = 0; n < cc->max; n++) {
      assert_int_equal(mf_api_limits_check(l, 1, cc->kind, &v), MF_OK);
      assert_int_equal(mf_api_limits_take(l, 1, cc->kind, &v), MF_OK);
    }
    /* full: check and take both refuse, nothing more is counted */
    assert_int_equal(mf_api_limits_check(l, 1, cc->kind, &v), MF_ERR_LIMIT);
    assert_int_equal(mf_api_limits_take(l, 1, cc->kind, &v), MF_ERR_LIMIT);
    assert_non_null(strstr(v.why, cc->option));
    assert_non_null(strstr(v.why, cc->noun));
    uint32_t use[MF_API_LIMIT__COUNT];
    mf_api_limits_usage(l, 1, use);
    assert_int_equal(use[cc->kind], cc->max);
    /* the other kinds are unlimited here, and other sessions count apart */
    for (int k = 0; k < MF_API_LIMIT__COUNT; k++)
      if (k != (int)cc->kind)
        assert_int_equal(mf_api_limits_take(l, 1, (mf_api_limit_kind_t)k, &v), MF_OK);
    assert_int_equal(mf_api_limits_take(l, 2, cc->kind, &v), MF_OK);
    /* one closes: a slot is free again, and only one */
    mf_api_limits_give(l, 1, cc->kind);
    assert_int_equal(mf_api_limits_take(l, 1, cc->kind, &v), MF_OK);
    assert_int_equal(mf_api_limits_take(l, 1, cc->kind, &v), MF_ERR_LIMIT);
    mf_api_limits_destroy(l);
  }
}

static void test_node_transports(void **state) {
  (void)state;
  mf_api_limits_t *l = make((mf_api_limits_config_t){
      .session_max = {[MF_API_LIMIT_TRANSPORT] = 2}, .node_transports = 3});
  mf_api_limits_verdict_t v;
  assert_int_equal(mf_api_limits_take(l, 1, MF_API_LIMIT_TRANSPORT, &v), MF_OK);
  assert_int_equal(mf_api_limits_take(l, 1, MF_API_LIMIT_TRANSPORT, &v), MF_OK);
  assert_int_equal(mf_api_limits_take(l, 2, MF_API_LIMIT_TRANSPORT, &v), MF_OK);
  assert_int_equal(mf_api_limits_check(l, 2, MF_API_LIMIT_TRANSPORT, &v), MF_ERR_LIMIT);
  assert_int_equal(mf_api_limits_take(l, 2, MF_API_LIMIT_TRANSPORT, &v), MF_ERR_LIMIT);
  assert_non_null(strstr(v.why, "--max-node-transports"));
  assert_non_null(strstr(v.why, "3 transports"));
  /* producers do not count against the node's transports */
  assert_int_equal(mf_api_limits_take(l, 2, MF_API_LIMIT_PRODUCER, &v), MF_OK);
  mf_api_limits_stats_t st;
  mf_api_limits_stats(l, &st);
  assert_int_equal(st.node_transports, 3);
  assert_int_equal(st.refused_node, 2);
  /* session 1 closing one frees a node slot for session 2 */
  mf_api_limits_give(l, 1, MF_API_LIMIT_TRANSPORT);
  assert_int_equal(mf_api_limits_take(l, 2, MF_API_LIMIT_TRANSPORT, &v), MF_OK);
  /* gives beyond what a session owns change nothing (the node count stays exact) */
  mf_api_limits_give(l, 3, MF_API_LIMIT_TRANSPORT);
  mf_api_limits_give(l, 1, MF_API_LIMIT_TRANSPORT);
  mf_api_limits_give(l, 1, MF_API_LIMIT_TRANSPORT);
  mf_api_limits_stats(l, &st);
  assert_int_equal(st.node_transports, 2);
  mf_api_limits_destroy(l);
}

static void test_sessions_table(void **state) {
  (void)state;
  static const struct {
    uint32_t max;
    size_t joined;
    mf_err_t want;
  } cases[] = {
      {0, 0, MF_OK}, {0, 1000000, MF_OK}, {5, 0, MF_OK}, {5, 4, MF_OK},
      {5, 5, MF_ERR_LIMIT}, {5, 6, MF_ERR_LIMIT}, {1, 1, MF_ERR_LIMIT},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_api_limits_t *l = make((mf_api_limits_config_t){.node_sessions = cases[i].max});
    mf_api_limits_verdict_t v;
    assert_int_equal(mf_api_limits_check_sessions(l, 1, cases[i].joined, &v), cases[i].want);
    if (cases[i].want) {
      assert_non_null(strstr(v.why, "--max-sessions"));
      assert_true(v.log);
      /* a session retrying is logged once per period */
      assert_int_equal(mf_api_limits_check_sessions(l, 1, cases[i].joined, &v), cases[i].want);
      assert_false(v.log);
    }
    mf_api_limits_destroy(l);
  }
}

/* Out-of-range kinds and a NULL table are harmless no-ops (a gateway without limits). */
static void test_malformed_calls(void **state) {
  (void)state;
  mf_api_limits_verdict_t v;
  assert_int_equal(mf_api_limits_admit(NULL, 1, &v), MF_OK);
  assert_int_equal(mf_api_limits_take(NULL, 1, MF_API_LIMIT_TRANSPORT, &v), MF_OK);
  assert_int_equal(mf_api_limits_check(NULL, 1, MF_API_LIMIT_TRANSPORT, &v), MF_OK);
  assert_int_equal(mf_api_limits_check_sessions(NULL, 1, 99, &v), MF_OK);
  mf_api_limits_give(NULL, 1, MF_API_LIMIT_TRANSPORT);
  mf_api_limits_move(NULL, 1, 2, MF_API_LIMIT_TRANSPORT);
  mf_api_limits_carry_rate(NULL, 1, 2);
  mf_api_limits_session_closed(NULL, 1);
  mf_api_limits_destroy(NULL);
  mf_api_limits_t *l = make((mf_api_limits_config_t){.session_max = {1, 1, 1, 1}});
  assert_int_equal(mf_api_limits_take(l, 1, MF_API_LIMIT__COUNT, &v), MF_OK);
  assert_int_equal(mf_api_limits_take(l, 1, (mf_api_limit_kind_t)-1, &v), MF_OK);
  assert_int_equal(mf_api_limits_check(l, 1, (mf_api_limit_kind_t)99, &v), MF_OK);
  mf_api_limits_give(l, 1, (mf_api_limit_kind_t)99);
  mf_api_limits_move(l, 1, 2, (mf_api_limit_kind_t)99);
  mf_api_limits_move(l, 1, 1, MF_API_LIMIT_TRANSPORT);
  assert_string_equal(mf_api_limit_kind_name((mf_api_limit_kind_t)99), "objects");
  assert_string_equal(mf_api_limit_kind_name(MF_API_LIMIT_CONSUMER), "consumers");
  mf_api_limits_destroy(l);
}

/* ---------------------------------------------------------------- lifetimes and resume */

static void test_entry_lifetime(void **state) {
  (void)state;
  mf_api_limits_t *l = make((mf_api_limits_config_t){.rate = 10, .burst = 10});
  mf_api_limits_verdict_t v;
  assert_int_equal(tracked(l), 0);
  mf_api_limits_admit(l, 1, &v);
  assert_int_equal(tracked(l), 1);
  mf_api_limits_session_closed(l, 1); /* owns nothing: gone at once */
  assert_int_equal(tracked(l), 0);
  /* a session that ends with objects keeps its entry until the last one closes */
  mf_api_limits_take(l, 2, MF_API_LIMIT_TRANSPORT, &v);
  mf_api_limits_take(l, 2, MF_API_LIMIT_CONSUMER, &v);
  mf_api_limits_session_closed(l, 2);
  assert_int_equal(tracked(l), 1);
  mf_api_limits_give(l, 2, MF_API_LIMIT_TRANSPORT);
  assert_int_equal(tracked(l), 1);
  mf_api_limits_give(l, 2, MF_API_LIMIT_CONSUMER);
  assert_int_equal(tracked(l), 0);
  mf_api_limits_session_closed(l, 99); /* unknown: nothing */
  /* a table destroyed with entries left frees them (LeakSanitizer checks) */
  mf_api_limits_take(l, 3, MF_API_LIMIT_PRODUCER, &v);
  mf_api_limits_admit(l, 4, &v);
  mf_api_limits_destroy(l);
}

static void test_resume_moves_counts(void **state) {
  (void)state;
  fake_now = 0;
  mf_api_limits_t *l = make((mf_api_limits_config_t){
      .session_max = {[MF_API_LIMIT_TRANSPORT] = 2, [MF_API_LIMIT_PRODUCER] = 2},
      .node_transports = 10, .rate = 10, .burst = 10});
  mf_api_limits_verdict_t v;
  assert_int_equal(mf_api_limits_take(l, 1, MF_API_LIMIT_TRANSPORT, &v), MF_OK);
  assert_int_equal(mf_api_limits_take(l, 1, MF_API_LIMIT_TRANSPORT, &v), MF_OK);
  assert_int_equal(mf_api_limits_take(l, 1, MF_API_LIMIT_PRODUCER, &v), MF_OK);
  for (int i = 0; i < 10; i++) mf_api_limits_admit(l, 1, &v); /* old bucket empty */
  mf_api_limits_session_closed(l, 1); /* the WebSocket went; objects wait for a resume */
  /* the new session made a transport of its own before adopting */
  assert_int_equal(mf_api_limits_take(l, 2, MF_API_LIMIT_PRODUCER, &v), MF_OK);
  mf_api_limits_carry_rate(l, 1, 2); /* first: the last move drops the old entry */
  mf_api_limits_move(l, 1, 2, MF_API_LIMIT_TRANSPORT);
  mf_api_limits_move(l, 1, 2, MF_API_LIMIT_TRANSPORT);
  mf_api_limits_move(l, 1, 2, MF_API_LIMIT_PRODUCER);
  mf_api_limits_move(l, 1, 2, MF_API_LIMIT_PRODUCER); /* nothing left to move: ignored */
  uint32_t use[MF_API_LIMIT__COUNT];
  mf_api_limits_usage(l, 2, use);
  assert_int_equal(use[MF_API_LIMIT_TRANSPORT], 2);
  assert_int_equal(use[MF_API_LIMIT_PRODUCER], 2);
  mf_api_limits_usage(l, 1, use);
  assert_int_equal(use[MF_API_LIMIT_TRANSPORT], 0);
  assert_int_equal(tracked(l), 1); /* the old entry went with its last object */
  /* the limits carry over: the resumed session is full, and its bucket is the old one's */
  assert_int_equal(mf_api_limits_take(l, 2, MF_API_LIMIT_TRANSPORT, &v), MF_ERR_LIMIT);
  assert_int_equal(mf_api_limits_take(l, 2, MF_API_LIMIT_PRODUCER, &v), MF_ERR_LIMIT);
  assert_int_equal(mf_api_limits_admit(l, 2, &v), MF_ERR_RATE);
  mf_api_limits_stats_t st;
  mf_api_limits_stats(l, &st);
  assert_int_equal(st.node_transports, 2); /* moving is not creating */
  fake_now += 1000;
  assert_int_equal(mf_api_limits_admit(l, 2, &v), MF_OK);
  /* carrying from a session never seen changes nothing */
  mf_api_limits_carry_rate(l, 77, 2);
  mf_api_limits_destroy(l);
}

/* ---------------------------------------------------------------- the node's flags */

static void test_node_flags(void **state) {
  (void)state;
  mf_node_config_t c;
  mf_config_result_t r;
  assert_int_equal(mf_node_config_parse(&c, 0, NULL, NULL, &r), MF_OK);
  const int defaults[] = {c.max_session_transports, c.max_session_producers,
                          c.max_session_consumers, c.max_session_data, c.api_rate, c.api_burst,
                          c.api_flood_close, c.max_node_transports, c.max_sessions};
  const int want[] = {32, 64, 512, 256, 50, 200, 1000, 10000, 5000};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) assert_int_equal(defaults[i], want[i]);
  /* flags, environment, 0 = unlimited */
  char *env[] = {"MAFALDA_API_RATE=7", "MAFALDA_MAX_SESSIONS=0", NULL};
  char *argv[] = {"--max-session-transports", "0", "--max-session-data=3", "--api-burst", "9",
                  "--max-node-transports", "100000000", "--api-flood-close", "0"};
  assert_int_equal(mf_node_config_parse(&c, 9, argv, env, &r), MF_OK);
  assert_int_equal(c.api_rate, 7);
  assert_int_equal(c.max_sessions, 0);
  assert_int_equal(c.max_session_transports, 0);
  assert_int_equal(c.max_session_data, 3);
  assert_int_equal(c.api_burst, 9);
  assert_int_equal(c.max_node_transports, 100000000);
  assert_int_equal(c.api_flood_close, 0);
  /* malformed values are refused, naming the flag */
  static const char *const bad[][2] = {
      {"--api-rate", "-1"},           {"--api-burst", "many"},
      {"--max-sessions", "100000001"}, {"--max-session-consumers", ""},
      {"--max-session-producers", "1.5"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *a[] = {(char *)bad[i][0], (char *)bad[i][1]};
    assert_int_equal(mf_node_config_parse(&c, 2, a, NULL, &r), MF_ERR_INVALID_ARG);
    assert_non_null(strstr(r.error, bad[i][0] + 2));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bucket_table),
      cmocka_unit_test(test_bucket_per_session),
      cmocka_unit_test(test_flood_close),
      cmocka_unit_test(test_log_throttle),
      cmocka_unit_test(test_session_counts_table),
      cmocka_unit_test(test_node_transports),
      cmocka_unit_test(test_sessions_table),
      cmocka_unit_test(test_malformed_calls),
      cmocka_unit_test(test_entry_lifetime),
      cmocka_unit_test(test_resume_moves_counts),
      cmocka_unit_test(test_node_flags),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
