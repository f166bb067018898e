/* mafalda-bench's churn schedule and "% of bound" arithmetic (tests/bench/bench_more.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/bench/bench_more.h"
#include "tests/bench/bench_plot.h"
#include <string.h>

#define S 1000000000ull
#define MS 1000000ull

static void test_churn_init_rejects(void **state) {
  (void)state;
  mf_bench_churn_t c = {.rate = 42};
  static const struct {
    uint64_t start, end;
    double rate;
  } bad[] = {{0, S, 0}, {0, S, -1}, {S, 0, 5}, {0, S, NAN}, {0, S, INFINITY}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_false(mf_bench_churn_init(&c, bad[i].start, bad[i].end, bad[i].rate, S));
    assert_true(c.rate == 42); /* untouched */
  }
  assert_false(mf_bench_churn_init(NULL, 0, S, 1, S));
  assert_true(mf_bench_churn_init(&c, 5, 5, 1, S)); /* empty window is valid */
  assert_int_equal(mf_bench_churn_total(&c), 0);
  assert_int_equal(mf_bench_churn_due(&c, 100 * S), 0);
  assert_int_equal(mf_bench_churn_max_alive(&c), 0);
}

static void test_churn_schedule_table(void **state) {
  (void)state;
  static const struct {
    double rate;
    uint64_t seconds_ns, stay_ns;
    uint64_t total, max_alive;
  } rows[] = {
      {5, 3 * S, 1 * S, 15, 5},    /* joins at 0, .2, ... 2.8 s */
      {5, 3 * S, 2 * S, 15, 10},
      {1, 10 * S, 2 * S, 10, 2},
      {2, S + 1, S, 3, 2},          /* 0, .5, 1.0 (1.0 < end = 1 s + 1 ns) */
      {2, S, S, 2, 2},              /* 1.0 s == end: not in the schedule */
      {3, S, 10 * S, 3, 3},         /* stay longer than the window: all alive at once */
      {0.5, 10 * S, S, 5, 1},       /* one join every 2 s, 1 s each: never two at once */
      {1000, S, 50 * MS, 1000, 50},
      {3, S, 0, 3, 1},              /* stay 0: still a table of one */
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    mf_bench_churn_t c;
    uint64_t start = 7 * S;
    assert_true(mf_bench_churn_init(&c, start, start + rows[i].seconds_ns, rows[i].rate,
                                    rows[i].stay_ns));
    assert_int_equal(mf_bench_churn_total(&c), rows[i].total);
    assert_int_equal(mf_bench_churn_max_alive(&c), rows[i].max_alive);
    /* every join time is in the window, in order, and due exactly from its time on */
    uint64_t prev = 0;
    for (uint64_t k = 0; k < rows[i].total; k++) {
      uint64_t t = mf_bench_churn_join_at(&c, k);
      assert_true(t >= start && t < start + rows[i].seconds_ns);
      if (k) assert_true(t > prev);
      prev = t;
      assert_int_equal(mf_bench_churn_due(&c, t), k + 1);
      if (t > start) assert_int_equal(mf_bench_churn_due(&c, t - 1), k);
      assert_int_equal(mf_bench_churn_leave_at(&c, k), t + rows[i].stay_ns);
    }
    assert_int_equal(mf_bench_churn_due(&c, start - 1), 0);
    assert_int_equal(mf_bench_churn_due(&c, start + 100 * rows[i].seconds_ns), rows[i].total);
  }
}

static void test_churn_join_times(void **state) {
  (void)state;
  mf_bench_churn_t c;
  assert_true(mf_bench_churn_init(&c, 1000, 1000 + 10 * S, 4, S));
  assert_int_equal(mf_bench_churn_join_at(&c, 0), 1000);
  assert_int_equal(mf_bench_churn_join_at(&c, 1), 1000 + 250 * MS);
  assert_int_equal(mf_bench_churn_join_at(&c, 39), 1000 + 9750 * MS);
  assert_int_equal(mf_bench_churn_join_at(&c, 40), 1000 + 10 * S); /* past the end */
  assert_int_equal(mf_bench_churn_total(&c), 40);
  /* a rate that does not divide a second: 3/s -> 333 333 333 ns apart, rounded */
  assert_true(mf_bench_churn_init(&c, 0, S, 3, S));
  assert_int_equal(mf_bench_churn_join_at(&c, 1), 333333333);
  assert_int_equal(mf_bench_churn_join_at(&c, 2), 666666667);
  assert_int_equal(mf_bench_churn_due(&c, 666666666), 2);
  assert_int_equal(mf_bench_churn_due(&c, 666666667), 3);
}

static void test_bound_pps(void **state) {
  (void)state;
  /* the docs' GCM row: 502 + 927 + 932 + 2490 = 4851 ns */
  mf_bench_bound_cost_t gcm = {502, 927, 932, 2490};
  assert_true(fabs(mf_bench_bound_pps(&gcm, 1) - 1e9 / 4851) < 0.01);
  /* fan-out 10: 10 * 1e9 / (1429 + 10 * 3422) = 280 ... packets/s */
  assert_true(fabs(mf_bench_bound_pps(&gcm, 10) - 1e10 / 35649) < 0.01);
  /* below 1 counts as 1 */
  assert_true(mf_bench_bound_pps(&gcm, 0.5) == mf_bench_bound_pps(&gcm, 1));
  /* larger fan-out approaches 1e9 / (protect + send) from below */
  assert_true(mf_bench_bound_pps(&gcm, 1000) < 1e9 / 3422);
  assert_true(mf_bench_bound_pps(&gcm, 1000) > 0.99 * 1e9 / 3422);
  static const mf_bench_bound_cost_t bad[] = {{0, 0, 0, 0}, {-1, 1, 1, 1}, {1, 1, -1, 1}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_true(mf_bench_bound_pps(&bad[i], 1) == 0);
  assert_true(mf_bench_bound_pps(&gcm, NAN) == 0);
  assert_true(mf_bench_bound_pps(&gcm, INFINITY) == 0);
  assert_true(mf_bench_bound_pps(NULL, 1) == 0);
}

static void test_fanout_of(void **state) {
  (void)state;
  static const struct {
    uint64_t sent, fwd;
    double k;
  } rows[] = {{0, 0, 1}, {0, 100, 1}, {100, 0, 1}, {100, 50, 1}, {100, 100, 1},
              {115, 1150, 10}, {1000, 9000, 9}};
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    assert_true(fabs(mf_bench_fanout_of(rows[i].sent, rows[i].fwd) - rows[i].k) < 1e-9);
}

static void test_percent_of_bound(void **state) {
  (void)state;
  /* 1 M packets on 10 CPU-seconds = 100 000 per core-second; bound 200 000 -> 50 % */
  assert_true(fabs(mf_bench_percent_of_bound(1000000, 10, 200000) - 50) < 1e-9);
  /* two busy cores' worth: the same per-core figure whatever the wall time */
  assert_true(fabs(mf_bench_percent_of_bound(2000000, 20, 200000) - 50) < 1e-9);
  /* better than the bound is printed as such (> 100), not clamped */
  assert_true(fabs(mf_bench_percent_of_bound(1000000, 1, 500000) - 200) < 1e-9);
  static const struct {
    uint64_t fwd;
    double cpu, bound;
  } na[] = {{0, 1, 1}, {1, 0, 1}, {1, -1, 1}, {1, 1, 0}, {1, NAN, 1}, {1, 1, NAN},
            {1, INFINITY, 1}, {1, 1, INFINITY}};
  for (size_t i = 0; i < sizeof na / sizeof na[0]; i++)
    assert_true(mf_bench_percent_of_bound(na[i].fwd, na[i].cpu, na[i].bound) == -1);
}

static void test_plot_script(void **state) {
  (void)state;
  const mf_bench_plot_point_t m[] = {{10, 0, 15.6}, {20, 0, 12.2}, {40, 44.6, 6.0}};
  const mf_bench_plot_point_t j[] = {{10, 0, 30.5}};
  mf_bench_plot_series_t two[] = {{"mafalda", m, 3}, {"janus", j, 1}};
  char buf[4096];
  size_t n = mf_bench_plot_script(buf, sizeof buf, "/tmp/out.png", "fanout", two, 2);
  assert_true(n > 0 && n < sizeof buf);
  assert_int_equal(strlen(buf), n);
  /* the data inline, one block per series, rows "N loss cpu" */
  assert_non_null(strstr(buf, "$d0 << EOD\n10 0.0000 15.600\n20 0.0000 12.200\n40 44.6000 6.000\nEOD\n"));
  assert_non_null(strstr(buf, "$d1 << EOD\n10 0.0000 30.500\nEOD\n"));
  assert_non_null(strstr(buf, "set output \"/tmp/out.png\""));
  assert_non_null(strstr(buf, "$d0 using 1:2 with linespoints title \"mafalda\", "
                              "$d1 using 1:2 with linespoints title \"janus\""));
  assert_non_null(strstr(buf, "$d1 using 1:3 with linespoints title \"janus\""));
  assert_non_null(strstr(buf, "set yrange [0:*]\nset ylabel \"loss")); /* 44.6 % > 1 */
  assert_non_null(strstr(buf, "unset multiplot"));
  /* a flat 0 % loss line gets a -0.05..1 axis */
  mf_bench_plot_series_t flat[] = {{"mafalda", m, 2}};
  assert_true(mf_bench_plot_script(buf, sizeof buf, "a.png", "t", flat, 1) > 0);
  assert_non_null(strstr(buf, "set yrange [-0.05:1]\nset ylabel \"loss"));
  /* the size needed is returned whatever the buffer; a short buffer is cut, terminated */
  size_t need = mf_bench_plot_script(NULL, 0, "/tmp/out.png", "fanout", two, 2);
  assert_int_equal(need, n);
  char small[16];
  memset(small, 'x', sizeof small);
  assert_int_equal(mf_bench_plot_script(small, sizeof small, "/tmp/out.png", "fanout", two, 2), n);
  assert_int_equal(strlen(small), sizeof small - 1);
  assert_memory_equal(small, "$d0 << EOD\n10 0", 15);
}

static void test_plot_script_rejects(void **state) {
  (void)state;
  const mf_bench_plot_point_t ok[] = {{10, 0, 15.6}};
  const mf_bench_plot_point_t nan_pt[] = {{10, NAN, 15.6}};
  const mf_bench_plot_point_t inf_pt[] = {{INFINITY, 0, 1}};
  mf_bench_plot_series_t good = {"mafalda", ok, 1};
  mf_bench_plot_series_t bad_series[] = {{"ma\"falda", ok, 1}, {"a\nb", ok, 1}, {NULL, ok, 1},
                                         {"x", NULL, 1}, {"x", nan_pt, 1}, {"x", inf_pt, 1}};
  char buf[1024];
  for (size_t i = 0; i < sizeof bad_series / sizeof bad_series[0]; i++)
    assert_int_equal(mf_bench_plot_script(buf, sizeof buf, "a.png", "t", &bad_series[i], 1), 0);
  static const char *bad_text[] = {"a\".png", "a\\b.png", "a\n.png", NULL};
  for (size_t i = 0; i < sizeof bad_text / sizeof bad_text[0]; i++) {
    assert_int_equal(mf_bench_plot_script(buf, sizeof buf, bad_text[i], "t", &good, 1), 0);
    assert_int_equal(mf_bench_plot_script(buf, sizeof buf, "a.png", bad_text[i], &good, 1), 0);
  }
  assert_int_equal(mf_bench_plot_script(buf, sizeof buf, "a.png", "t", &good, 0), 0);
  assert_int_equal(mf_bench_plot_script(buf, sizeof buf, "a.png", "t", NULL, 1), 0);
  assert_int_equal(mf_bench_plot_script(NULL, 8, "a.png", "t", &good, 1), 0);
  /* an empty series is drawn as nothing, not refused */
  mf_bench_plot_series_t empty = {"x", NULL, 0};
  assert_true(mf_bench_plot_script(buf, sizeof buf, "a.png", "t", &empty, 1) > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_churn_init_rejects), cmocka_unit_test(test_churn_schedule_table),
      cmocka_unit_test(test_churn_join_times),   cmocka_unit_test(test_bound_pps),
      cmocka_unit_test(test_fanout_of),          cmocka_unit_test(test_percent_of_bound),
      cmocka_unit_test(test_plot_script),        cmocka_unit_test(test_plot_script_rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
