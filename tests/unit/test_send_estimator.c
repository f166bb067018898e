/* Tests for node/bwe/send_estimator.h on simulated time. A small link model (a FIFO
 * bottleneck of capacity C with a drop-tail queue and a fixed propagation delay) carries
 * packets paced at the estimator's current bitrate; the receiver side is a real
 * mf_twcc_recorder whose feedback packets are parsed with mf_rtcp_parse_twcc and fed back,
 * so the whole TWCC loop runs. Checks: the estimate converges below C with a bounded
 * queue, follows a capacity drop, recovers when capacity returns; loss > 10 % lowers it,
 * no loss raises it to max; bookkeeping of sequence numbers, unknown/duplicate/late
 * feedback entries and config clamping. No wall-clock time anywhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/bwe/send_estimator.h"
#include "node/bwe/twcc_recorder.h"
#include "node/rtp/rtcp.h"

#define PKT_BYTES 1200
#define INFLIGHT 8192

typedef struct {
  uint16_t seq;
  uint64_t arrival_us;
} flight_t;

typedef struct {
  mf_send_estimator_t *est;
  mf_twcc_recorder_t *rec;
  double capacity_bps;
  uint64_t prop_us;
  uint64_t max_queue_us;
  double loss;          /* random loss on the wire, 0..1 */
  uint32_t drop_every;  /* deterministic loss: every n-th packet (0: none) */
  uint64_t sent;
  uint32_t rng;
  uint64_t now_us;
  uint64_t link_free_us;
  uint64_t next_send_us;
  flight_t flight[INFLIGHT];
  size_t head, count;
  /* observations over the current measuring period */
  double sum_rate;
  uint64_t samples;
  uint32_t min_rate, max_rate;
  uint64_t max_queue_seen_us;
  uint64_t drops;
} sim_t;

static uint32_t rnd(sim_t *s) {
  s->rng = s->rng * 1103515245u + 12345u;
  return (s->rng >> 8) & 0xffff;
}

static sim_t *sim_new(const mf_send_estimator_config_t *cfg, double capacity_bps) {
  sim_t *s = calloc(1, sizeof *s);
  assert_non_null(s);
  assert_int_equal(mf_send_estimator_create(cfg, &s->est), MF_OK);
  s->rec = malloc(sizeof *s->rec);
  assert_non_null(s->rec);
  mf_twcc_recorder_init(s->rec);
  s->capacity_bps = capacity_bps;
  s->prop_us = 20000;
  s->max_queue_us = 1000000;
  s->rng = 42;
  s->now_us = 1000000;
  s->next_send_us = s->now_us;
  return s;
}

static void sim_free(sim_t *s) {
  mf_send_estimator_destroy(s->est);
  free(s->rec);
  free(s);
}

static void sim_reset_obs(sim_t *s) {
  s->sum_rate = 0;
  s->samples = 0;
  s->min_rate = UINT32_MAX;
  s->max_rate = 0;
  s->max_queue_seen_us = 0;
}

static void send_feedback(sim_t *s) {
  for (;;) {
    uint8_t buf[MF_TWCC_FEEDBACK_MAX_BYTES];
    size_t len = 0;
    if (mf_twcc_recorder_build(s->rec, 1, s->now_us, buf, sizeof buf, &len) != MF_OK) break;
    mf_rtcp_iter_t it;
    mf_rtcp_header_t h;
    mf_rtcp_iter_init(&it, buf, len);
    assert_int_equal(mf_rtcp_iter_next(&it, &h), MF_OK);
    static mf_rtcp_twcc_packet_t pkts[MF_TWCC_MAX_STATUSES];
    mf_rtcp_twcc_t fb;
    assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, pkts, MF_TWCC_MAX_STATUSES), MF_OK);
    mf_send_estimator_on_feedback(s->est, &fb, pkts, fb.written, s->now_us);
  }
}

/* Runs the loop for dur_us in 1 ms steps. */
static void sim_run(sim_t *s, uint64_t dur_us) {
  uint64_t end = s->now_us + dur_us;
  for (; s->now_us < end; s->now_us += 1000) {
    uint32_t rate = mf_send_estimator_bitrate(s->est);
    while (s->next_send_us <= s->now_us) {
      uint16_t seq = mf_send_estimator_on_send(s->est, PKT_BYTES, s->next_send_us);
      uint64_t start = s->link_free_us > s->next_send_us ? s->link_free_us : s->next_send_us;
      uint64_t queue = start - s->next_send_us;
      if (queue > s->max_queue_seen_us) s->max_queue_seen_us = queue;
      bool lost = s->loss > 0 && rnd(s) < (uint32_t)(s->loss * 65536);
      if (s->drop_every && ++s->sent % s->drop_every == 0) lost = true;
      if (queue > s->max_queue_us || lost) {
        s->drops++;
      } else {
        uint64_t depart = start + (uint64_t)(PKT_BYTES * 8 * 1e6 / s->capacity_bps);
        s->link_free_us = depart;
        assert_true(s->count < INFLIGHT);
        s->flight[(s->head + s->count++) % INFLIGHT] = (flight_t){seq, depart + s->prop_us};
      }
      s->next_send_us += (uint64_t)(PKT_BYTES * 8 * 1e6 / rate);
    }
    bool due_now = false;
    while (s->count > 0 && s->flight[s->head].arrival_us <= s->now_us) {
      flight_t f = s->flight[s->head];
      s->head = (s->head + 1) % INFLIGHT;
      s->count--;
      if (mf_twcc_recorder_on_packet(s->rec, f.seq, 1, f.arrival_us)) due_now = true;
    }
    if (due_now || mf_twcc_recorder_due(s->rec, s->now_us)) send_feedback(s);
    rate = mf_send_estimator_bitrate(s->est);
    s->sum_rate += rate;
    s->samples++;
    if (rate < s->min_rate) s->min_rate = rate;
    if (rate > s->max_rate) s->max_rate = rate;
  }
}

static double avg_rate(const sim_t *s) { return s->sum_rate / (double)s->samples; }

static void report(const sim_t *s, const char *what) {
  mf_send_estimator_stats_t st;
  mf_send_estimator_get_stats(s->est, &st);
  print_message("%-28s cap %7.0f avg %8.0f min %8u max %8u queue %4llu ms overuses %llu "
                "loss_bps %u delay_bps %u acked %u\n",
                what, s->capacity_bps, avg_rate(s), s->min_rate, s->max_rate,
                (unsigned long long)(s->max_queue_seen_us / 1000),
                (unsigned long long)st.overuses, st.loss_bps, st.delay_bps, st.acked_bps);
}

static void test_converges_below_capacity_and_recovers(void **state) {
  (void)state;
  mf_send_estimator_config_t cfg = {.start_bps = 300000, .min_bps = 50000,
                                    .max_bps = 10000000};
  sim_t *s = sim_new(&cfg, 2000000);
  sim_run(s, 20000000); /* ramp up */
  sim_reset_obs(s);
  sim_run(s, 30000000);
  report(s, "C=2M steady");
  assert_true(avg_rate(s) < 2000000);
  assert_true(avg_rate(s) > 0.6 * 2000000);
  assert_true(s->max_rate < 1.3 * 2000000);
  assert_true(s->max_queue_seen_us < 400000);
  mf_send_estimator_stats_t st;
  mf_send_estimator_get_stats(s->est, &st);
  assert_true(st.overuses > 0);
  assert_true(st.acked_bps > 0.5 * 2000000 && st.acked_bps < 2000000);

  /* capacity drops: the estimate follows within seconds */
  s->capacity_bps = 500000;
  sim_reset_obs(s);
  sim_run(s, 5000000);
  report(s, "C=500k first 5 s");
  assert_true(mf_send_estimator_bitrate(s->est) < 500000);
  sim_reset_obs(s);
  sim_run(s, 20000000);
  report(s, "C=500k steady");
  assert_true(avg_rate(s) < 500000);
  assert_true(avg_rate(s) > 0.5 * 500000);
  assert_true(s->max_queue_seen_us < 600000);

  /* capacity returns */
  s->capacity_bps = 3000000;
  sim_reset_obs(s);
  sim_run(s, 40000000);
  report(s, "C=3M after 40 s");
  assert_true(mf_send_estimator_bitrate(s->est) > 1500000);
  assert_true(s->max_rate < 1.3 * 3000000);
  sim_free(s);
}

static void test_loss_based(void **state) {
  (void)state;
  mf_send_estimator_config_t cfg = {.start_bps = 1000000, .min_bps = 100000,
                                    .max_bps = 4000000};
  sim_t *s = sim_new(&cfg, 1e9); /* no bottleneck: delay is flat */
  s->loss = 0.25;
  sim_reset_obs(s);
  sim_run(s, 20000000);
  report(s, "25 % loss");
  mf_send_estimator_stats_t st;
  mf_send_estimator_get_stats(s->est, &st);
  assert_true(st.loss > 0.15 && st.loss < 0.35);
  assert_true(mf_send_estimator_bitrate(s->est) < 200000); /* pushed towards the floor */
  assert_true(st.delay_bps > 1000000);                   /* the delay side saw no problem */
  /* 5 % loss (exactly one packet in 20, so every loss window of 20..39 packets sees
   * 2.6..10 %): hold */
  s->loss = 0;
  s->drop_every = 20;
  sim_run(s, 3000000);
  uint32_t held = mf_send_estimator_bitrate(s->est);
  sim_reset_obs(s);
  sim_run(s, 5000000);
  report(s, "5 % loss");
  assert_int_equal(s->min_rate, held);
  assert_int_equal(s->max_rate, held);
  /* no loss: back up to max */
  s->drop_every = 0;
  sim_reset_obs(s);
  sim_run(s, 70000000);
  report(s, "no loss");
  assert_int_equal(mf_send_estimator_bitrate(s->est), 4000000);
  sim_free(s);
}

/* Hand-built feedback: bookkeeping rules. */
static void fb_one(mf_send_estimator_t *e, uint16_t base, int32_t ref,
                   const mf_rtcp_twcc_packet_t *pkts, size_t n, uint64_t now) {
  mf_rtcp_twcc_t fb = {.base_seq = base, .status_count = (uint16_t)n, .reference_time = ref,
                       .written = n};
  mf_send_estimator_on_feedback(e, &fb, pkts, n, now);
}

static void test_bookkeeping(void **state) {
  (void)state;
  mf_send_estimator_t *e = NULL;
  assert_int_equal(mf_send_estimator_create(NULL, &e), MF_OK);
  assert_int_equal(mf_send_estimator_bitrate(e), 1000000);
  assert_int_equal(mf_send_estimator_on_send(e, 100, 1000), 1);
  assert_int_equal(mf_send_estimator_on_send(e, 100, 2000), 2);
  assert_int_equal(mf_send_estimator_on_send(e, 100, 3000), 3);
  mf_rtcp_twcc_packet_t p[4] = {{1, MF_TWCC_SMALL_DELTA, 4},
                                {2, MF_TWCC_NOT_RECEIVED, 0},
                                {3, MF_TWCC_SMALL_DELTA, 8},
                                {4, MF_TWCC_SMALL_DELTA, 4}}; /* 4 was never sent */
  fb_one(e, 1, 100, p, 4, 10000);
  mf_send_estimator_stats_t st;
  mf_send_estimator_get_stats(e, &st);
  assert_int_equal(st.sent, 3);
  assert_int_equal(st.acked, 2);
  assert_int_equal(st.lost, 1);
  assert_int_equal(st.unknown, 1);
  assert_int_equal(st.feedbacks, 1);
  /* the same report again changes nothing; 2 now received turns the loss into an ack */
  fb_one(e, 1, 100, p, 3, 20000);
  mf_rtcp_twcc_packet_t late = {2, MF_TWCC_SMALL_DELTA, 20};
  fb_one(e, 2, 100, &late, 1, 30000);
  mf_send_estimator_get_stats(e, &st);
  assert_int_equal(st.acked, 3);
  assert_int_equal(st.lost, 0);
  /* NULL-safe and empty feedback */
  mf_send_estimator_on_feedback(e, NULL, NULL, 0, 40000);
  fb_one(e, 5, 100, NULL, 0, 40000);
  mf_send_estimator_destroy(e);

  /* sequence numbers wrap after 65535 and stale ring slots are not matched */
  assert_int_equal(mf_send_estimator_create(NULL, &e), MF_OK);
  uint16_t last = 0;
  for (uint32_t i = 0; i < 65536; i++) last = mf_send_estimator_on_send(e, 100, i);
  assert_int_equal(last, 0);
  assert_int_equal(mf_send_estimator_on_send(e, 100, 70000), 1);
  mf_rtcp_twcc_packet_t old = {(uint16_t)(1 + MF_SEND_EST_RING), MF_TWCC_SMALL_DELTA, 1};
  fb_one(e, old.seq, 0, &old, 1, 80000);
  mf_send_estimator_get_stats(e, &st);
  assert_int_equal(st.unknown, 1);
  mf_send_estimator_destroy(e);
}

static void test_config_clamped(void **state) {
  (void)state;
  mf_send_estimator_t *e = NULL;
  mf_send_estimator_config_t cfg = {.start_bps = 5000000, .min_bps = 200000,
                                    .max_bps = 1000000};
  assert_int_equal(mf_send_estimator_create(&cfg, &e), MF_OK);
  assert_int_equal(mf_send_estimator_bitrate(e), 1000000);
  mf_send_estimator_destroy(e);
  cfg = (mf_send_estimator_config_t){.start_bps = 10, .min_bps = 300000, .max_bps = 100};
  assert_int_equal(mf_send_estimator_create(&cfg, &e), MF_OK);
  assert_int_equal(mf_send_estimator_bitrate(e), 300000); /* max raised to min */
  mf_send_estimator_destroy(e);
  assert_int_equal(mf_send_estimator_create(&cfg, NULL), MF_ERR_INVALID_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_converges_below_capacity_and_recovers),
      cmocka_unit_test(test_loss_based),
      cmocka_unit_test(test_bookkeeping),
      cmocka_unit_test(test_config_clamped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
