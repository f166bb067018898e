/* Pure arithmetic of mafalda-bench's pipe and churn scenarios and of the "% of bound"
 * figure (issue 10), apart from the processes and sockets so that it is unit-tested
 * (tests/unit/test_bench_more.c). No I/O, no allocation, no state outside the arguments;
 * usable from any thread.
 *
 * Churn schedule: joins at a fixed rate R per second from start_ns until end_ns (join i at
 * start + i / R; the last one strictly before end_ns), each subscriber leaving stay_ns after
 * its own join time (whether or not its setup was late).
 *
 * The bound (bench_bound.c) measures per packet: recv (its share of a recvmmsg batch),
 * SRTP unprotect, SRTP protect with another key, send (its share of a sendmmsg batch). At a
 * mean fan-out k (packets sent per packet received), one core at most sends
 * k * 1e9 / (recv + unprotect + k * (protect + send)) packets/s. An SFU that forwarded F
 * packets using C CPU-seconds (all its threads, all its processes) did F / C packets per
 * busy core-second: that over the bound at the same k is its "% of bound". */
#ifndef MF_BENCH_MORE_H
#define MF_BENCH_MORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- churn schedule ---- */

typedef struct {
  uint64_t start_ns, end_ns; /* joins happen in [start_ns, end_ns) */
  double rate;               /* joins per second, > 0 */
  uint64_t stay_ns;          /* each subscriber's lifetime from its scheduled join */
} mf_bench_churn_t;

/* false (c untouched) for rate <= 0 or not finite, end_ns < start_ns or NULL. */
bool mf_bench_churn_init(mf_bench_churn_t *c, uint64_t start_ns, uint64_t end_ns, double rate,
                         uint64_t stay_ns);
/* How many joins the whole schedule holds (join times strictly before end_ns). */
uint64_t mf_bench_churn_total(const mf_bench_churn_t *c);
/* Scheduled time of join i (0-based); for i >= total it is the time the rate would give. */
uint64_t mf_bench_churn_join_at(const mf_bench_churn_t *c, uint64_t i);
/* Scheduled leave of join i: join_at(i) + stay_ns. */
uint64_t mf_bench_churn_leave_at(const mf_bench_churn_t *c, uint64_t i);
/* Joins due by now_ns (scheduled at or before it), at most total: a caller that has made
 * `done` joins makes due - done more now. */
uint64_t mf_bench_churn_due(const mf_bench_churn_t *c, uint64_t now_ns);
/* The most subscribers alive at once under the schedule (what to size a table for):
 * joins within one stay of each other, at most total. */
uint64_t mf_bench_churn_max_alive(const mf_bench_churn_t *c);

/* ---- % of bound ---- */

typedef struct {
  double recv_ns, unprotect_ns, protect_ns, send_ns; /* per packet, one core */
} mf_bench_bound_cost_t;

/* Packets/s one core can send at mean fan-out k (k < 1 counts as 1: every packet received
 * is sent at least once). 0 when a cost is negative or all are 0, or k is not finite. */
double mf_bench_bound_pps(const mf_bench_bound_cost_t *c, double fanout);

/* The mean fan-out of a run: forwarded / sent, at least 1; 1 when sent is 0. */
double mf_bench_fanout_of(uint64_t sent, uint64_t forwarded);

/* 100 * (forwarded / sfu_cpu_s) / bound_pps: the SFU's packets per busy core-second as a
 * percentage of the bound. -1 when it cannot be told (no CPU measured, no bound, nothing
 * forwarded). */
double mf_bench_percent_of_bound(uint64_t forwarded, double sfu_cpu_s, double bound_pps);

#endif
