/* Tests for node/rtx_store.h with a real mf_bufpool, so every scenario also proves the
 * references taken by the store go back to zero (pool in_use returns to what the test
 * itself holds). Fake clock; windows across the 16-bit wrap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/bufpool.h"
#include "node/rtx_store.h"

static mf_bufpool_t *pool;

static int setup(void **state) {
  (void)state;
  return mf_bufpool_create(3000, 64, &pool) == MF_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  mf_bufpool_destroy(pool);
  return 0;
}

static uint32_t in_use(void) {
  mf_bufpool_stats_t st;
  mf_bufpool_get_stats(pool, &st);
  return st.in_use;
}

/* Inserts a fresh buffer (len = seq low byte, to recognise it) and drops the caller's
 * reference, so the store holds the only one. */
static bool insert_fresh(mf_rtx_store_t *s, uint16_t seq, uint32_t ts, uint64_t now) {
  mf_buf_t *b = mf_bufpool_get(pool);
  assert_non_null(b);
  b->len = seq;
  bool ok = mf_rtx_store_insert(s, b, seq, ts, 0, now);
  mf_buf_unref(b);
  return ok;
}

static void expect_present(mf_rtx_store_t *s, uint16_t seq, uint64_t now) {
  mf_buf_t *b = mf_rtx_store_get(s, seq, now);
  if (!b || b->len != seq) {
    fail_msg("seq %u not present", seq);
  }
}

static void expect_absent(mf_rtx_store_t *s, uint16_t seq, uint64_t now) {
  if (mf_rtx_store_get(s, seq, now)) {
    fail_msg("seq %u unexpectedly present", seq);
  }
}

static void test_create_args(void **state) {
  (void)state;
  mf_rtx_store_t *s = NULL;
  assert_int_equal(mf_rtx_store_create(10, 0, &s), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtx_store_create(MF_RTX_STORE_MAX_CAPACITY + 1, 1000, &s),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtx_store_create(10, 1000, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtx_store_create(0, MF_RTX_STORE_MAX_AGE_VIDEO_MS, &s), MF_OK);
  mf_rtx_store_stats_t st;
  mf_rtx_store_get_stats(s, &st);
  assert_int_equal(st.capacity, 2500);
  assert_int_equal(st.max_age_ms, 2000);
  assert_int_equal(st.stored, 0);
  assert_null(mf_rtx_store_get(s, 0, 0));
  assert_int_equal(mf_rtx_store_resend(s, 0, 0, 0, NULL), MF_RTX_RESEND_MISSING);
  mf_rtx_store_destroy(s);
  mf_rtx_store_destroy(NULL);
}

static void test_refcounts(void **state) {
  (void)state;
  mf_rtx_store_t *s = NULL;
  assert_int_equal(mf_rtx_store_create(16, 1000, &s), MF_OK);
  mf_buf_t *b = mf_bufpool_get(pool);
  assert_int_equal(b->refs, 1);
  assert_true(mf_rtx_store_insert(s, b, 100, 9000, 0, 0));
  assert_int_equal(b->refs, 2);
  assert_ptr_equal(mf_rtx_store_get(s, 100, 10), b);
  assert_int_equal(b->refs, 2); /* get borrows */
  /* Same seq and ts: duplicate, refused, no reference taken. */
  assert_false(mf_rtx_store_insert(s, b, 100, 9000, 0, 5));
  assert_int_equal(b->refs, 2);
  mf_buf_unref(b);
  assert_int_equal(in_use(), 1);
  /* Same seq, different ts: replaces and releases the old buffer. */
  assert_true(insert_fresh(s, 100, 12000, 20));
  assert_int_equal(in_use(), 1);
  assert_int_equal(mf_rtx_store_get(s, 100, 20)->len, 100);
  mf_rtx_store_destroy(s);
  assert_int_equal(in_use(), 0);
}

/* The caller's per-packet value comes back with the resend; a replaced entry takes the new one. */
static void test_aux(void **state) {
  (void)state;
  mf_rtx_store_t *s = NULL;
  assert_int_equal(mf_rtx_store_create(16, 1000, &s), MF_OK);
  mf_buf_t *b = mf_bufpool_get(pool);
  assert_true(mf_rtx_store_insert(s, b, 7, 100, 0x80010002u, 0));
  assert_true(mf_rtx_store_insert(s, b, 8, 200, 0, 0));
  mf_rtx_item_t item;
  assert_int_equal(mf_rtx_store_resend(s, 7, 10, 0, &item), MF_RTX_RESEND_OK);
  assert_int_equal(item.aux, 0x80010002u);
  assert_int_equal(mf_rtx_store_resend(s, 8, 10, 0, &item), MF_RTX_RESEND_OK);
  assert_int_equal(item.aux, 0);
  assert_true(mf_rtx_store_insert(s, b, 7, 300, 5, 20));
  assert_int_equal(mf_rtx_store_resend(s, 7, 30, 0, &item), MF_RTX_RESEND_OK);
  assert_int_equal(item.aux, 5);
  mf_buf_unref(b);
  mf_rtx_store_destroy(s);
  assert_int_equal(in_use(), 0);
}

typedef struct {
  const char *name;
  uint32_t capacity;
  uint16_t first; /* seqs first .. first+count-1 inserted in order, all at now = 0 */
  uint32_t count;
  uint32_t stored;
  uint32_t evicted_full;
} window_case_t;

static const window_case_t window_cases[] = {
    {"fits", 8, 10, 5, 5, 0},
    {"exactly full", 8, 10, 8, 8, 0},
    {"overflow", 4, 0, 10, 4, 6},
    {"overflow across wrap", 8, 65530, 12, 8, 4},
    {"capacity one", 1, 65535, 3, 1, 2},
    {"default capacity", 2500, 64000, 3000, 2500, 500},
};

static void test_window(void **state) {
  (void)state;
  for (size_t c = 0; c < sizeof(window_cases) / sizeof(window_cases[0]); c++) {
    const window_case_t *wc = &window_cases[c];
    mf_rtx_store_t *s = NULL;
    assert_int_equal(mf_rtx_store_create(wc->capacity, 2000, &s), MF_OK);
    for (uint32_t i = 0; i < wc->count; i++) {
      assert_true(insert_fresh(s, (uint16_t)(wc->first + i), i * 3000u, 0));
    }
    mf_rtx_store_stats_t st;
    mf_rtx_store_get_stats(s, &st);
    if (st.stored != wc->stored || st.evicted_full != wc->evicted_full ||
        in_use() != wc->stored) {
      fail_msg("%s: stored %u evicted_full %llu in_use %u", wc->name, st.stored,
               (unsigned long long)st.evicted_full, in_use());
    }
    uint16_t newest = (uint16_t)(wc->first + wc->count - 1);
    for (uint32_t i = 0; i < wc->stored; i++) {
      expect_present(s, (uint16_t)(newest - i), 0);
    }
    expect_absent(s, (uint16_t)(newest - wc->stored), 0);
    expect_absent(s, (uint16_t)(newest + 1), 0);
    mf_rtx_store_clear(s);
    assert_int_equal(in_use(), 0);
    mf_rtx_store_get_stats(s, &st);
    assert_int_equal(st.stored, 0);
    assert_int_equal(st.cleared, wc->stored);
    expect_absent(s, newest, 0);
    /* Usable again after clear. */
    assert_true(insert_fresh(s, 7, 1, 0));
    expect_present(s, 7, 0);
    mf_rtx_store_destroy(s);
    assert_int_equal(in_use(), 0);
  }
}

static void test_age(void **state) {
  (void)state;
  mf_rtx_store_t *s = NULL;
  assert_int_equal(mf_rtx_store_create(100, 1000, &s), MF_OK);
  assert_true(insert_fresh(s, 1, 100, 0));
  assert_true(insert_fresh(s, 2, 200, 500));
  expect_present(s, 1, 1000); /* exactly max age: still usable */
  expect_absent(s, 1, 1001);
  assert_int_equal(mf_rtx_store_resend(s, 1, 1001, 0, NULL), MF_RTX_RESEND_MISSING);
  /* The next insert evicts what aged out. */
  assert_true(insert_fresh(s, 3, 300, 1001));
  mf_rtx_store_stats_t st;
  mf_rtx_store_get_stats(s, &st);
  assert_int_equal(st.evicted_age, 1);
  assert_int_equal(st.stored, 2);
  assert_int_equal(in_use(), 2);
  expect_present(s, 2, 1500);
  /* Everything aged: one insert much later leaves only itself. */
  assert_true(insert_fresh(s, 4, 400, 10000));
  mf_rtx_store_get_stats(s, &st);
  assert_int_equal(st.evicted_age, 3);
  assert_int_equal(st.stored, 1);
  assert_int_equal(in_use(), 1);
  /* A clock that went backwards does not make packets "old". */
  expect_present(s, 4, 5);
  mf_rtx_store_destroy(s);
  assert_int_equal(in_use(), 0);
}

typedef struct {
  uint16_t seq;
  uint32_t ts;
  bool stored;
} ins_t;

typedef struct {
  const char *name;
  uint32_t capacity;
  ins_t ins[8];
  size_t n;
  uint16_t present[8];
  size_t n_present;
  uint16_t absent[8];
  size_t n_absent;
} order_case_t;

static const order_case_t order_cases[] = {
    {"reordered within window", 8,
     {{10, 10, true}, {12, 12, true}, {11, 11, true}, {7, 7, true}}, 4,
     {7, 10, 11, 12}, 4, {8, 9, 13}, 3},
    {"too old for the window", 8,
     {{10, 10, true}, {7, 7, true}, {2, 2, false}, {3, 3, true}}, 4,
     {3, 7, 10}, 3, {2, 4}, 2},
    {"far jump ahead clears", 8,
     {{10, 10, true}, {11, 11, true}, {19, 19, true}, {20, 20, true}}, 4,
     {19, 20}, 2, {10, 11}, 2},
    {"jump of capacity-1 keeps the newest", 8,
     {{10, 10, true}, {11, 11, true}, {18, 18, true}}, 3,
     {11, 18}, 2, {10}, 1},
    {"backwards seq with newer ts restarts", 8,
     {{1000, 500, true}, {1001, 600, true}, {5, 700, true}, {6, 800, true}}, 4,
     {5, 6}, 2, {1000, 1001}, 2},
    {"reordering across the wrap", 8,
     {{1, 1, true}, {65534, 0, true}, {0, 1, true}, {65535, 0, true}}, 4,
     {65534, 65535, 0, 1}, 4, {65533, 2}, 2},
    {"eviction skips empty slots", 8,
     {{0, 0, true}, {5, 5, true}, {9, 9, true}}, 3,
     {5, 9}, 2, {0, 1, 4, 6, 8}, 5},
    {"far backwards with older ts refused", 8,
     {{40000, 9000, true}, {39000, 100, false}}, 2,
     {40000}, 1, {39000}, 1},
};

static void test_order(void **state) {
  (void)state;
  for (size_t c = 0; c < sizeof(order_cases) / sizeof(order_cases[0]); c++) {
    const order_case_t *oc = &order_cases[c];
    mf_rtx_store_t *s = NULL;
    assert_int_equal(mf_rtx_store_create(oc->capacity, 2000, &s), MF_OK);
    for (size_t i = 0; i < oc->n; i++) {
      if (insert_fresh(s, oc->ins[i].seq, oc->ins[i].ts, 0) != oc->ins[i].stored) {
        fail_msg("%s: insert %zu (seq %u)", oc->name, i, oc->ins[i].seq);
      }
    }
    for (size_t i = 0; i < oc->n_present; i++) {
      expect_present(s, oc->present[i], 0);
    }
    for (size_t i = 0; i < oc->n_absent; i++) {
      expect_absent(s, oc->absent[i], 0);
    }
    mf_rtx_store_stats_t st;
    mf_rtx_store_get_stats(s, &st);
    assert_int_equal(st.stored, oc->n_present);
    assert_int_equal(in_use(), oc->n_present);
    mf_rtx_store_destroy(s);
    assert_int_equal(in_use(), 0);
  }
}

typedef struct {
  uint64_t now;
  uint32_t rtt;
  mf_rtx_resend_result_t want;
  uint32_t resends; /* expected item.resends when OK */
} resend_step_t;

static void test_resend_throttle(void **state) {
  (void)state;
  static const resend_step_t steps[] = {
      {10, 50, MF_RTX_RESEND_OK, 1},
      {40, 50, MF_RTX_RESEND_THROTTLED, 0},
      {60, 50, MF_RTX_RESEND_THROTTLED, 0}, /* exactly one RTT: still throttled */
      {61, 50, MF_RTX_RESEND_OK, 2},
      {161, 0, MF_RTX_RESEND_THROTTLED, 0}, /* unknown RTT: 100 ms */
      {162, 0, MF_RTX_RESEND_OK, 3},
      {164, 1, MF_RTX_RESEND_OK, 4},
      {164, 1, MF_RTX_RESEND_THROTTLED, 0}, /* same instant */
      {100, 1, MF_RTX_RESEND_THROTTLED, 0}, /* clock stepped back */
      {1001, 1, MF_RTX_RESEND_MISSING, 0},  /* aged out: stored at 1000, max age 1000 */
  };
  mf_rtx_store_t *s = NULL;
  assert_int_equal(mf_rtx_store_create(32, 1000, &s), MF_OK);
  mf_buf_t *b = mf_bufpool_get(pool);
  assert_true(mf_rtx_store_insert(s, b, 65535, 0xfffffff0u, 0, 1000));
  for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
    mf_rtx_item_t item = {0};
    mf_rtx_resend_result_t r = mf_rtx_store_resend(s, 65535, steps[i].now + 1000,
                                                   steps[i].rtt, &item);
    if (r != steps[i].want) {
      fail_msg("step %zu: got %d want %d", i, r, steps[i].want);
    }
    if (r == MF_RTX_RESEND_OK) {
      assert_ptr_equal(item.buf, b);
      assert_int_equal(item.seq, 65535);
      assert_int_equal(item.ts, 0xfffffff0u);
      assert_int_equal(item.stored_ms, 1000);
      assert_int_equal(item.resends, steps[i].resends);
    }
  }
  /* Another seq is throttled independently; a missing one is a miss. */
  assert_true(mf_rtx_store_insert(s, b, 0, 0xfffffff8u, 0, 1000));
  assert_int_equal(mf_rtx_store_resend(s, 0, 1100, 50, NULL), MF_RTX_RESEND_OK);
  assert_int_equal(mf_rtx_store_resend(s, 1, 1100, 50, NULL), MF_RTX_RESEND_MISSING);
  mf_rtx_store_stats_t st;
  mf_rtx_store_get_stats(s, &st);
  assert_int_equal(st.hits, 5);
  assert_int_equal(st.throttled, 5);
  assert_int_equal(st.misses, 2);
  assert_int_equal(st.inserted, 2);
  assert_int_equal(b->refs, 3);
  mf_rtx_store_destroy(s);
  assert_int_equal(b->refs, 1);
  mf_buf_unref(b);
  assert_int_equal(in_use(), 0);
}

/* Long run: output seqs wrap several times, with gaps and occasional reordering; the
 * store never holds more than capacity and always returns exactly what it should. */
static void test_long_run(void **state) {
  (void)state;
  mf_rtx_store_t *s = NULL;
  assert_int_equal(mf_rtx_store_create(300, 2000, &s), MF_OK);
  uint16_t seq = 65000;
  uint64_t now = 0;
  for (uint32_t i = 0; i < 200000; i++) {
    seq = (uint16_t)(seq + ((i % 97) == 0 ? 3 : 1)); /* occasional gaps */
    now += (i % 10) == 0 ? 1 : 0;
    assert_true(insert_fresh(s, seq, i, now));
    if ((i % 50) == 0) {
      expect_present(s, seq, now);
      expect_absent(s, (uint16_t)(seq + 1), now);
      expect_absent(s, (uint16_t)(seq - 400), now);
    }
  }
  mf_rtx_store_stats_t st;
  mf_rtx_store_get_stats(s, &st);
  assert_true(st.stored <= 300);
  assert_int_equal(in_use(), st.stored);
  mf_rtx_store_destroy(s);
  assert_int_equal(in_use(), 0);
}

/* Random walk of inserts (small jumps both ways, occasional far jumps) checked against
 * invariants: never more than capacity, the pool holds exactly what the store says, every
 * buffer returned is the one inserted for that seq, the newest stored seq is present. */
static void random_walk(uint32_t capacity) {
  mf_rtx_store_t *s = NULL;
  assert_int_equal(mf_rtx_store_create(capacity, 1000000, &s), MF_OK);
  uint32_t rng = 12345;
  int64_t ext_newest = 1000 + 3 * 65536; /* extended seq; ts derives from it */
  uint16_t newest = (uint16_t)ext_newest;
  for (uint32_t i = 0; i < 20000; i++) {
    rng = rng * 1103515245u + 12345u;
    uint32_t r = (rng >> 8) % 1000;
    int32_t step;
    if (r < 5) {
      step = 500 + (int32_t)(r * 37); /* far jump ahead */
    } else if (r < 300) {
      step = -(int32_t)(r % 80); /* late packet, maybe outside the window */
    } else {
      step = 1 + (int32_t)(r % 3);
    }
    int64_t ext = ext_newest + step;
    uint16_t seq = (uint16_t)ext;
    uint32_t ts = (uint32_t)(ext * 10000); /* wraps the 32-bit ts space too */
    if (step > 0) {
      ext_newest = ext;
      newest = seq;
    }
    mf_buf_t *b = mf_bufpool_get(pool);
    assert_non_null(b);
    b->len = seq;
    bool ok = mf_rtx_store_insert(s, b, seq, ts, 0, i);
    mf_buf_unref(b);
    if (step > 0) {
      assert_true(ok);
    }
    mf_buf_t *g = mf_rtx_store_get(s, newest, i);
    assert_non_null(g);
    assert_int_equal(g->len, newest);
    if (i % 997 == 0) {
      mf_rtx_store_stats_t st;
      mf_rtx_store_get_stats(s, &st);
      uint32_t present = 0;
      for (uint32_t q = 0; q < 65536; q++) {
        mf_buf_t *x = mf_rtx_store_get(s, (uint16_t)q, i);
        if (x) {
          assert_int_equal(x->len, q);
          present++;
        }
      }
      assert_int_equal(present, st.stored);
      assert_true(st.stored <= capacity);
      assert_int_equal(in_use(), st.stored);
    }
  }
  mf_rtx_store_destroy(s);
  assert_int_equal(in_use(), 0);
}

static void test_random_walk(void **state) {
  (void)state;
  random_walk(64);   /* within the first slots */
  random_walk(2000); /* the slots grow on the way (far jumps need them all) */
}

/* The slots start small and double while the window needs them: what is stored is kept, in
 * order, across a growth from a ring that had wrapped; the window's limit is the capacity
 * asked for, as if every slot had been there from the start. */
static void test_growth(void **state) {
  (void)state;
  mf_rtx_store_t *s = NULL;
  assert_int_equal(mf_rtx_store_create(2500, 1000, &s), MF_OK);
  uint16_t first = 65400; /* across the 16-bit wrap too */
  /* 200 packets at t=0, then 200 more at t=600: at t=1100 the first 200 age out, so the
   * ring's start moves past its middle before it has to grow */
  for (uint16_t i = 0; i < 200; i++) assert_true(insert_fresh(s, (uint16_t)(first + i), i, 0));
  for (uint16_t i = 200; i < 400; i++) assert_true(insert_fresh(s, (uint16_t)(first + i), i, 600));
  mf_rtx_store_stats_t st;
  mf_rtx_store_get_stats(s, &st);
  assert_int_equal(st.grown, 1); /* 400 > 256 */
  for (uint16_t i = 400; i < 700; i++) assert_true(insert_fresh(s, (uint16_t)(first + i), i, 1100));
  for (uint16_t i = 0; i < 200; i++) expect_absent(s, (uint16_t)(first + i), 1100);
  for (uint16_t i = 200; i < 700; i++) expect_present(s, (uint16_t)(first + i), 1100);
  /* up to the capacity: 2,500 packets in the window, none pushed out */
  for (uint16_t i = 700; i < 2700; i++)
    assert_true(insert_fresh(s, (uint16_t)(first + i), i, 1100));
  mf_rtx_store_get_stats(s, &st);
  assert_int_equal(st.stored, 2500);
  assert_int_equal(st.evicted_full, 0);
  assert_true(st.grown <= 4); /* 256 -> 512 -> 1024 -> 2048 -> 2500 */
  for (uint16_t i = 200; i < 2700; i++) expect_present(s, (uint16_t)(first + i), 1100);
  /* one more pushes the oldest out: the limit is the capacity */
  assert_true(insert_fresh(s, (uint16_t)(first + 2700), 2700, 1100));
  expect_absent(s, (uint16_t)(first + 200), 1100);
  expect_present(s, (uint16_t)(first + 201), 1100);
  mf_rtx_store_get_stats(s, &st);
  assert_int_equal(st.evicted_full, 1);
  assert_int_equal(in_use(), st.stored);
  /* a late packet extending the window backwards makes the slots grow too */
  mf_rtx_store_clear(s);
  assert_true(insert_fresh(s, 1000, 1000, 2000));
  assert_true(insert_fresh(s, 700, 700, 2000)); /* 301 slots: grows backwards */
  expect_present(s, 700, 2000);
  expect_present(s, 1000, 2000);
  mf_rtx_store_destroy(s);
  assert_int_equal(in_use(), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create_args),   cmocka_unit_test(test_refcounts),
      cmocka_unit_test(test_aux),
      cmocka_unit_test(test_window),        cmocka_unit_test(test_age),
      cmocka_unit_test(test_order),         cmocka_unit_test(test_resend_throttle),
      cmocka_unit_test(test_long_run),      cmocka_unit_test(test_random_walk),
      cmocka_unit_test(test_growth),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
