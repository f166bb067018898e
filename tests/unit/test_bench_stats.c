/* Tests for tests/bench/bench_stats.h, the load generator's receive accounting: tables of
 * sequence arrivals (no loss, loss, 16-bit wrap-around, reordering, duplicates, packets too
 * late for the window, long runs over many wraps), latency percentiles of known
 * distributions and the histogram's precision bound, and the payload stamp (round trip,
 * exact bytes, malformed input). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tests/bench/bench_stats.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

enum { NEW = MF_BENCH_PKT_NEW, REO = MF_BENCH_PKT_REORDERED, DUP = MF_BENCH_PKT_DUPLICATE,
       LATE = MF_BENCH_PKT_TOO_LATE };

typedef struct {
  uint16_t seq;
  int kind;
} step_t;

typedef struct {
  const char *name;
  const step_t *steps;
  size_t count;
  uint64_t expected, received, lost, duplicates, reordered, too_late, max_reorder;
} seq_case_t;

#define STEPS(...) (const step_t[]){__VA_ARGS__}, N(((const step_t[]){__VA_ARGS__}))

static const seq_case_t seq_cases[] = {
    {"no loss", STEPS({0, NEW}, {1, NEW}, {2, NEW}, {3, NEW}, {4, NEW}), 5, 5, 0, 0, 0, 0, 0},
    {"single packet", STEPS({77, NEW}), 1, 1, 0, 0, 0, 0, 0},
    {"loss", STEPS({0, NEW}, {1, NEW}, {2, NEW}, {5, NEW}, {6, NEW}, {9, NEW}), 10, 6, 4, 0, 0,
     0, 0},
    {"wrap no loss", STEPS({65533, NEW}, {65534, NEW}, {65535, NEW}, {0, NEW}, {1, NEW}, {2, NEW}),
     6, 6, 0, 0, 0, 0, 0},
    {"wrap with loss", STEPS({65534, NEW}, {65535, NEW}, {2, NEW}, {3, NEW}), 6, 4, 2, 0, 0, 0, 0},
    {"loss across the wrap", STEPS({65530, NEW}, {5, NEW}), 12, 2, 10, 0, 0, 0, 0},
    {"reorder", STEPS({0, NEW}, {1, NEW}, {3, NEW}, {2, REO}, {4, NEW}), 5, 5, 0, 0, 1, 0, 1},
    {"reorder across the wrap", STEPS({65535, NEW}, {1, NEW}, {0, REO}, {2, NEW}), 4, 4, 0, 0, 1,
     0, 1},
    {"reorder far", STEPS({10, NEW}, {20, NEW}, {11, REO}, {19, REO}), 11, 4, 7, 0, 2, 0, 9},
    {"reorder before the first", STEPS({5, NEW}, {4, REO}, {3, REO}, {6, NEW}), 4, 4, 0, 0, 2, 0,
     2},
    {"reorder before the first across wrap", STEPS({1, NEW}, {65535, REO}, {0, REO}), 3, 3, 0, 0,
     2, 0, 2},
    {"duplicates", STEPS({0, NEW}, {1, NEW}, {1, DUP}, {2, NEW}, {0, DUP}), 3, 3, 0, 2, 0, 0, 0},
    {"duplicate of a reordered packet", STEPS({0, NEW}, {2, NEW}, {1, REO}, {1, DUP}), 3, 3, 0, 1,
     1, 0, 1},
    {"duplicate across the wrap", STEPS({65535, NEW}, {0, NEW}, {65535, DUP}, {0, DUP}), 2, 2, 0,
     2, 0, 0, 0},
    {"too late for the window", STEPS({0, NEW}, {5000, NEW}, {100, LATE}, {4000, REO}), 5001, 3,
     4998, 0, 1, 1, 1000},
    {"window edge", STEPS({0, NEW}, {4500, NEW}, {4500, DUP}, {404, LATE}, {405, REO}), 4501, 3,
     4498, 1, 1, 1, 4095},
    {"oldest in the window", STEPS({0, NEW}, {4095, NEW}, {0, DUP}), 4096, 2, 4094, 1, 0, 0, 0},
    /* 4096 is 0's position in the bitmap: advancing clears it, so it is no duplicate. */
    {"bitmap position reused", STEPS({0, NEW}, {4096, NEW}, {0, LATE}, {4096, DUP}), 4097, 2,
     4095, 1, 0, 1, 0},
};

static void test_sequence_tables(void **state) {
  (void)state;
  for (size_t c = 0; c < N(seq_cases); c++) {
    const seq_case_t *tc = &seq_cases[c];
    mf_bench_stream_t s;
    mf_bench_stream_init(&s, 1);
    for (size_t i = 0; i < tc->count; i++) {
      mf_bench_pkt_t k = mf_bench_stream_record(&s, tc->steps[i].seq, 1000, 2000);
      if ((int)k != tc->steps[i].kind) fail_msg("%s: step %zu (seq %u): kind %d, want %d",
                                                tc->name, i, tc->steps[i].seq, k,
                                                tc->steps[i].kind);
    }
    mf_bench_summary_t sum;
    mf_bench_stream_summary(&s, &sum);
    if (sum.expected != tc->expected || sum.received != tc->received || sum.lost != tc->lost ||
        sum.duplicates != tc->duplicates || sum.reordered != tc->reordered ||
        sum.too_late != tc->too_late || sum.max_reorder_distance != tc->max_reorder)
      fail_msg("%s: expected %llu received %llu lost %llu dup %llu reo %llu late %llu "
               "maxreo %llu", tc->name, (unsigned long long)sum.expected,
               (unsigned long long)sum.received, (unsigned long long)sum.lost,
               (unsigned long long)sum.duplicates, (unsigned long long)sum.reordered,
               (unsigned long long)sum.too_late, (unsigned long long)sum.max_reorder_distance);
    /* Every counted packet has one latency sample (1 us here). */
    assert_int_equal(s.latency.total, tc->received);
    assert_int_equal(sum.latency_p50_us, 1);
  }
}

static void test_empty_stream(void **state) {
  (void)state;
  mf_bench_stream_t s;
  mf_bench_stream_init(&s, 9);
  mf_bench_summary_t sum;
  mf_bench_stream_summary(&s, &sum);
  assert_int_equal(sum.expected, 0);
  assert_int_equal(sum.lost, 0);
  assert_true(sum.loss_ratio == 0);
  assert_int_equal(sum.latency_p99_us, 0);
  assert_int_equal(sum.latency_min_us, 0);
}

/* Long runs over many wraps: every drop_every-th packet dropped, every dup_every-th sent
 * twice, adjacent pairs swapped every swap_every packets. */
typedef struct {
  unsigned packets, start, drop_every, dup_every, swap_every;
  uint64_t lost, duplicates, reordered;
} run_case_t;

static const run_case_t run_cases[] = {
    {200000, 0, 0, 0, 0, 0, 0, 0},
    {200000, 65000, 100, 0, 0, 2000, 0, 0},
    {200000, 12345, 0, 1000, 0, 0, 200, 0},
    {200000, 65535, 0, 0, 50, 0, 0, 4000},
    {131072, 1, 64, 128, 0, 2048, 1024, 0},
};

static void test_long_runs(void **state) {
  (void)state;
  for (size_t c = 0; c < N(run_cases); c++) {
    const run_case_t *rc = &run_cases[c];
    mf_bench_stream_t s;
    mf_bench_stream_init(&s, 1);
    for (unsigned i = 0; i < rc->packets; i++) {
      unsigned n = i;
      /* swap i and i+1 when i % swap_every == 0 */
      if (rc->swap_every && i % rc->swap_every == 0 && i + 1 < rc->packets) n = i + 1;
      else if (rc->swap_every && i % rc->swap_every == 1) n = i - 1;
      if (rc->drop_every && n % rc->drop_every == rc->drop_every - 1) continue;
      uint16_t seq = (uint16_t)(rc->start + n);
      mf_bench_stream_record(&s, seq, 0, 1000);
      if (rc->dup_every && n % rc->dup_every == 0) mf_bench_stream_record(&s, seq, 0, 1000);
    }
    mf_bench_summary_t sum;
    mf_bench_stream_summary(&s, &sum);
    unsigned last_dropped = rc->drop_every && (rc->packets - 1) % rc->drop_every ==
                                                  rc->drop_every - 1;
    assert_int_equal(sum.expected, rc->packets - last_dropped);
    assert_int_equal(sum.lost, rc->lost - last_dropped);
    assert_int_equal(sum.duplicates, rc->duplicates);
    assert_int_equal(sum.reordered, rc->reordered);
    assert_int_equal(sum.too_late, 0);
  }
}

/* ---- latency ---- */

static void test_latency_uniform(void **state) {
  (void)state;
  mf_bench_stream_t s;
  mf_bench_stream_init(&s, 1);
  /* 1..100 us, shuffled order of arrival does not matter to the histogram. */
  for (unsigned i = 0; i < 100; i++) {
    unsigned us = (i * 37) % 100 + 1;
    mf_bench_stream_record(&s, (uint16_t)i, 5000000, 5000000 + (uint64_t)us * 1000);
  }
  mf_bench_summary_t sum;
  mf_bench_stream_summary(&s, &sum);
  assert_int_equal(sum.latency_p50_us, 50);
  assert_int_equal(sum.latency_p99_us, 99);
  assert_int_equal(sum.latency_min_us, 1);
  assert_int_equal(sum.latency_max_us, 100);
  double d = sum.latency_mean_us - 50.5;
  assert_true(d < 1e-9 && d > -1e-9);
  assert_int_equal(mf_bench_hist_percentile(&s.latency, 100), 100);
  assert_int_equal(mf_bench_hist_percentile(&s.latency, 0), 1);
  assert_int_equal(mf_bench_hist_percentile(&s.latency, 90.5), 91);
}

typedef struct {
  const char *name;
  uint64_t value_us[3];
  unsigned count[3];
  double p;
  uint64_t want_low, want_high; /* inclusive */
} pct_case_t;

static const pct_case_t pct_cases[] = {
    {"bimodal p50", {10000, 200000, 0}, {990, 10, 0}, 50, 10000, 10156},
    {"bimodal p99", {10000, 200000, 0}, {990, 10, 0}, 99, 10000, 10156},
    {"bimodal p99.5", {10000, 200000, 0}, {990, 10, 0}, 99.5, 200000, 200000},
    {"tail at 1%", {500, 80000, 0}, {980, 20, 0}, 99, 80000, 80000},
    {"three modes p50", {20, 1000, 30000}, {400, 400, 200}, 50, 1000, 1015},
    {"three modes p80", {20, 1000, 30000}, {400, 400, 200}, 80, 1000, 1015},
    {"three modes p81", {20, 1000, 30000}, {400, 400, 200}, 81, 30000, 30000},
    {"exact below 128", {127, 3, 0}, {50, 50, 0}, 60, 127, 127},
    {"overflow bucket keeps max", {1, 40000000, 0}, {1, 3, 0}, 50, 40000000, 40000000},
    {"p above 100 clamps", {7, 9, 0}, {1, 1, 0}, 250, 9, 9},
    {"negative p clamps", {7, 9, 0}, {1, 1, 0}, -3, 7, 7},
};

static void test_latency_percentiles(void **state) {
  (void)state;
  for (size_t c = 0; c < N(pct_cases); c++) {
    const pct_case_t *tc = &pct_cases[c];
    mf_bench_hist_t h;
    mf_bench_hist_init(&h);
    for (int m = 0; m < 3; m++)
      for (unsigned i = 0; i < tc->count[m]; i++) mf_bench_hist_add(&h, tc->value_us[m]);
    uint64_t v = mf_bench_hist_percentile(&h, tc->p);
    if (v < tc->want_low || v > tc->want_high)
      fail_msg("%s: p%.1f = %llu, want [%llu, %llu]", tc->name, tc->p, (unsigned long long)v,
               (unsigned long long)tc->want_low, (unsigned long long)tc->want_high);
  }
}

/* Precision bound: the percentile of a value is never below it and at most 1/64 above,
 * over the whole range (geometric steps through every power of two). */
static void test_histogram_precision(void **state) {
  (void)state;
  for (double x = 1; x < (double)MF_BENCH_HIST_MAX_US; x *= 1.07) {
    uint64_t v = (uint64_t)x;
    mf_bench_hist_t h;
    mf_bench_hist_init(&h);
    mf_bench_hist_add(&h, v);
    mf_bench_hist_add(&h, MF_BENCH_HIST_MAX_US * 2); /* so the max does not clamp v's */
    uint64_t p = mf_bench_hist_percentile(&h, 50);
    if (p < v || (double)p > (double)v * (1.0 + 1.0 / 64) + 1)
      fail_msg("value %llu: percentile %llu", (unsigned long long)v, (unsigned long long)p);
  }
  mf_bench_hist_t empty;
  mf_bench_hist_init(&empty);
  assert_int_equal(mf_bench_hist_percentile(&empty, 50), 0);
  assert_true(mf_bench_hist_mean(&empty) == 0);
}

static void test_histogram_merge(void **state) {
  (void)state;
  mf_bench_hist_t a, b, all;
  mf_bench_hist_init(&a);
  mf_bench_hist_init(&b);
  mf_bench_hist_init(&all);
  for (uint64_t i = 0; i < 1000; i++) {
    uint64_t v = i * i % 50000;
    mf_bench_hist_add(i % 2 ? &a : &b, v);
    mf_bench_hist_add(&all, v);
  }
  mf_bench_hist_merge(&a, &b);
  assert_memory_equal(&a, &all, sizeof(a));
  mf_bench_hist_t empty;
  mf_bench_hist_init(&empty);
  mf_bench_hist_merge(&a, &empty);
  assert_memory_equal(&a, &all, sizeof(a));
}

static void test_latency_clock(void **state) {
  (void)state;
  mf_bench_stream_t s;
  mf_bench_stream_init(&s, 1);
  mf_bench_stream_record(&s, 0, 10000, 10000 + 1499); /* rounds to 1 us */
  mf_bench_stream_record(&s, 1, 10000, 10000 + 1500); /* rounds to 2 us */
  mf_bench_stream_record(&s, 2, 10000, 9000);         /* arrival before send */
  assert_int_equal(s.negative_latency, 1);
  assert_int_equal(s.latency.min_us, 0);
  assert_int_equal(s.latency.max_us, 2);
  assert_int_equal(mf_bench_hist_percentile(&s.latency, 50), 1);
  /* Duplicates and too-late packets add no latency sample. */
  mf_bench_stream_record(&s, 1, 0, 99000000);
  assert_int_equal(s.latency.total, 3);
}

/* ---- stamp ---- */

static void test_stamp_roundtrip(void **state) {
  (void)state;
  const mf_bench_stamp_t cases[] = {
      {0, 0, 0},
      {1, 1, 1},
      {UINT32_MAX, UINT16_MAX, UINT64_MAX},
      {0xdeadbeef, 0x8000, UINT64_C(0x0123456789abcdef)},
  };
  for (size_t i = 0; i < N(cases); i++) {
    uint8_t buf[64];
    memset(buf, 0xaa, sizeof buf);
    assert_int_equal(mf_bench_stamp_write(&cases[i], buf, MF_BENCH_STAMP_LEN), MF_OK);
    assert_int_equal(buf[MF_BENCH_STAMP_LEN], 0xaa); /* nothing past the stamp */
    mf_bench_stamp_t out;
    assert_int_equal(mf_bench_stamp_read(buf, sizeof buf, &out), MF_OK); /* trailing ok */
    assert_int_equal(out.stream_id, cases[i].stream_id);
    assert_int_equal(out.seq, cases[i].seq);
    assert_true(out.send_ns == cases[i].send_ns);
  }
}

static void test_stamp_bytes(void **state) {
  (void)state;
  const mf_bench_stamp_t st = {0x01020304, 0x0506, UINT64_C(0x0708090a0b0c0d0e)};
  const uint8_t want[MF_BENCH_STAMP_LEN] = {'M', 'F', 'B', '1', 1, 2, 3, 4, 5, 6, 0, 0,
                                            7, 8, 9, 10, 11, 12, 13, 14};
  uint8_t buf[MF_BENCH_STAMP_LEN];
  assert_int_equal(mf_bench_stamp_write(&st, buf, sizeof buf), MF_OK);
  assert_memory_equal(buf, want, sizeof want);
}

typedef struct {
  const char *name;
  size_t len;
  int patch_at; /* -1: none */
  uint8_t patch;
} bad_stamp_t;

static const bad_stamp_t bad_stamps[] = {
    {"empty", 0, -1, 0},
    {"one byte", 1, -1, 0},
    {"one short", MF_BENCH_STAMP_LEN - 1, -1, 0},
    {"magic first byte", MF_BENCH_STAMP_LEN, 0, 'X'},
    {"magic version", MF_BENCH_STAMP_LEN, 3, '2'},
    {"reserved high", MF_BENCH_STAMP_LEN, 10, 1},
    {"reserved low", MF_BENCH_STAMP_LEN, 11, 0x80},
};

static void test_stamp_malformed(void **state) {
  (void)state;
  const mf_bench_stamp_t st = {42, 7, 123456789};
  for (size_t i = 0; i < N(bad_stamps); i++) {
    uint8_t buf[MF_BENCH_STAMP_LEN];
    assert_int_equal(mf_bench_stamp_write(&st, buf, sizeof buf), MF_OK);
    if (bad_stamps[i].patch_at >= 0) buf[bad_stamps[i].patch_at] = bad_stamps[i].patch;
    mf_bench_stamp_t out = {99, 99, 99};
    if (mf_bench_stamp_read(buf, bad_stamps[i].len, &out) != MF_ERR_PARSE)
      fail_msg("%s: accepted", bad_stamps[i].name);
    assert_int_equal(out.stream_id, 99); /* untouched */

    /* Through the stream: counted as malformed, nothing else changes. */
    mf_bench_stream_t s;
    mf_bench_stream_init(&s, 42);
    mf_bench_pkt_t kind = (mf_bench_pkt_t)-1;
    assert_int_equal(mf_bench_stream_record_payload(&s, buf, bad_stamps[i].len, 0, &kind),
                     MF_ERR_PARSE);
    assert_int_equal(s.malformed, 1);
    assert_int_equal(s.received, 0);
    assert_false(s.started);
    assert_int_equal(kind, (mf_bench_pkt_t)-1);
  }
  uint8_t small[MF_BENCH_STAMP_LEN - 1];
  memset(small, 0x55, sizeof small);
  assert_int_equal(mf_bench_stamp_write(&st, small, sizeof small), MF_ERR_INVALID_ARG);
  assert_int_equal(small[0], 0x55);
  assert_int_equal(mf_bench_stamp_write(NULL, small, 64), MF_ERR_INVALID_ARG);
  mf_bench_stamp_t out;
  assert_int_equal(mf_bench_stamp_read(NULL, 64, &out), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_bench_stamp_read(small, sizeof small, NULL), MF_ERR_INVALID_ARG);
}

static void test_record_payload(void **state) {
  (void)state;
  mf_bench_stream_t s;
  mf_bench_stream_init(&s, 42);
  uint8_t pkt[100];
  memset(pkt, 0, sizeof pkt);
  mf_bench_stamp_t st = {42, 65535, 1000000};
  assert_int_equal(mf_bench_stamp_write(&st, pkt, sizeof pkt), MF_OK);
  mf_bench_pkt_t kind;
  assert_int_equal(mf_bench_stream_record_payload(&s, pkt, sizeof pkt, 1250000, &kind), MF_OK);
  assert_int_equal(kind, MF_BENCH_PKT_NEW);
  st.seq = 0;
  assert_int_equal(mf_bench_stamp_write(&st, pkt, sizeof pkt), MF_OK);
  assert_int_equal(mf_bench_stream_record_payload(&s, pkt, sizeof pkt, 1250000, NULL), MF_OK);
  assert_int_equal(mf_bench_stream_record_payload(&s, pkt, sizeof pkt, 1250000, &kind), MF_OK);
  assert_int_equal(kind, MF_BENCH_PKT_DUPLICATE);
  st.stream_id = 43;
  st.seq = 1;
  assert_int_equal(mf_bench_stamp_write(&st, pkt, sizeof pkt), MF_OK);
  assert_int_equal(mf_bench_stream_record_payload(&s, pkt, sizeof pkt, 1250000, &kind),
                   MF_ERR_NOT_FOUND);
  assert_int_equal(mf_bench_stream_record_payload(NULL, pkt, sizeof pkt, 0, NULL),
                   MF_ERR_INVALID_ARG);
  mf_bench_summary_t sum;
  mf_bench_stream_summary(&s, &sum);
  assert_int_equal(sum.expected, 2);
  assert_int_equal(sum.received, 2);
  assert_int_equal(sum.duplicates, 1);
  assert_int_equal(sum.wrong_stream, 1);
  assert_int_equal(sum.latency_p50_us, 250);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sequence_tables),  cmocka_unit_test(test_empty_stream),
      cmocka_unit_test(test_long_runs),        cmocka_unit_test(test_latency_uniform),
      cmocka_unit_test(test_latency_percentiles), cmocka_unit_test(test_histogram_precision),
      cmocka_unit_test(test_histogram_merge),  cmocka_unit_test(test_latency_clock),
      cmocka_unit_test(test_stamp_roundtrip),  cmocka_unit_test(test_stamp_bytes),
      cmocka_unit_test(test_stamp_malformed),  cmocka_unit_test(test_record_payload),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
