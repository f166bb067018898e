#include "tests/bench/bench_more.h"

#include <math.h>

bool mf_bench_churn_init(mf_bench_churn_t *c, uint64_t start_ns, uint64_t end_ns, double rate,
                         uint64_t stay_ns) {
  if (!c || !isfinite(rate) || rate <= 0 || end_ns < start_ns) return false;
  *c = (mf_bench_churn_t){.start_ns = start_ns, .end_ns = end_ns, .rate = rate,
                          .stay_ns = stay_ns};
  return true;
}

uint64_t mf_bench_churn_join_at(const mf_bench_churn_t *c, uint64_t i) {
  /* in double: i / rate seconds; exact enough for any schedule a bench runs (< 2^53 ns) */
  return c->start_ns + (uint64_t)llround((double)i * 1e9 / c->rate);
}

uint64_t mf_bench_churn_leave_at(const mf_bench_churn_t *c, uint64_t i) {
  return mf_bench_churn_join_at(c, i) + c->stay_ns;
}

/* Joins scheduled at or before t (t >= start), without the end cap. */
static uint64_t joins_by(const mf_bench_churn_t *c, uint64_t t) {
  double k = floor((double)(t - c->start_ns) * c->rate / 1e9) + 1;
  uint64_t n = (uint64_t)k;
  /* rounding in join_at may put join n - 1 just after t, or join n just before it */
  while (n > 0 && mf_bench_churn_join_at(c, n - 1) > t) n--;
  while (mf_bench_churn_join_at(c, n) <= t) n++;
  return n;
}

uint64_t mf_bench_churn_total(const mf_bench_churn_t *c) {
  if (c->end_ns == c->start_ns) return 0;
  return joins_by(c, c->end_ns - 1);
}

uint64_t mf_bench_churn_due(const mf_bench_churn_t *c, uint64_t now_ns) {
  if (now_ns < c->start_ns) return 0;
  uint64_t n = joins_by(c, now_ns), total = mf_bench_churn_total(c);
  return n < total ? n : total;
}

uint64_t mf_bench_churn_max_alive(const mf_bench_churn_t *c) {
  uint64_t total = mf_bench_churn_total(c);
  if (total == 0) return 0;
  /* join j is alive at join i's time (i >= j) while join_at(i) < join_at(j) + stay: with a
   * constant rate the count is the same for every i, so join 0's window tells it */
  uint64_t n = 0;
  while (n < total && mf_bench_churn_join_at(c, n) < mf_bench_churn_leave_at(c, 0)) n++;
  return n > 0 ? n : 1;
}

double mf_bench_bound_pps(const mf_bench_bound_cost_t *c, double fanout) {
  if (!c || !isfinite(fanout)) return 0;
  if (c->recv_ns < 0 || c->unprotect_ns < 0 || c->protect_ns < 0 || c->send_ns < 0) return 0;
  double k = fanout < 1 ? 1 : fanout;
  double ns = c->recv_ns + c->unprotect_ns + k * (c->protect_ns + c->send_ns);
  return ns > 0 ? k * 1e9 / ns : 0;
}

double mf_bench_fanout_of(uint64_t sent, uint64_t forwarded) {
  if (sent == 0) return 1;
  double k = (double)forwarded / (double)sent;
  return k < 1 ? 1 : k;
}

double mf_bench_percent_of_bound(uint64_t forwarded, double sfu_cpu_s, double bound_pps) {
  if (forwarded == 0 || !(sfu_cpu_s > 0) || !(bound_pps > 0) || !isfinite(sfu_cpu_s) ||
      !isfinite(bound_pps))
    return -1;
  return 100.0 * ((double)forwarded / sfu_cpu_s) / bound_pps;
}
