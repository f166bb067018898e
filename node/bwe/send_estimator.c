#include "node/bwe/send_estimator.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Constants from libwebrtc's GoogCC (trendline_estimator.cc, aimd_rate_control.cc,
 * send_side_bandwidth_estimation.cc, inter_arrival.cc). */
#define GROUP_SPAN_US 5000
#define TREND_SMOOTHING 0.9
#define TREND_GAIN 4.0
#define THRESH_INIT 12.5
#define THRESH_K_UP 0.0087
#define THRESH_K_DOWN 0.039
#define THRESH_MIN 6.0
#define THRESH_MAX 600.0
#define THRESH_MAX_OFFSET 15.0
#define OVERUSE_TIME_MS 10.0
#define BETA 0.85
#define MIN_DECREASE_GAP_US 200000
#define MULT_INCREASE_PER_S 1.08
#define LOSS_LOW 0.02
#define LOSS_HIGH 0.10
#define LOSS_MIN_PACKETS 20
#define LOSS_INCREASE_GAP_US 1000000
#define LOSS_DECREASE_GAP_US 300000
#define ACKED_WINDOW_US 250000
#define DEFAULT_RTT_MS 100

enum { REC_EMPTY = 0, REC_SENT, REC_LOST, REC_ACKED };

typedef struct {
  uint64_t send_us;
  uint32_t size;
  uint16_t seq;
  uint8_t state;
} sent_rec_t;

typedef struct {
  bool valid;
  int64_t first_send_us, last_send_us, last_recv_us;
} group_t;

struct mf_send_estimator {
  uint32_t min_bps, max_bps;
  sent_rec_t ring[MF_SEND_EST_RING];
  uint16_t next_seq;
  /* feedback reference time, unwrapped from 24 bits */
  bool have_ref;
  uint32_t last_ref_raw;
  int64_t ref_unwrapped;
  /* inter-arrival groups */
  group_t cur, prev;
  /* trendline */
  double accumulated_ms, smoothed_ms;
  double hist_x[MF_SEND_EST_TREND_WINDOW], hist_y[MF_SEND_EST_TREND_WINDOW];
  size_t hist_n, hist_head;
  uint32_t num_deltas;
  bool have_first_arrival;
  int64_t first_arrival_us;
  double threshold, prev_trend, modified_trend;
  int64_t last_threshold_us;
  bool have_threshold_time;
  double time_over_using_ms;
  int overuse_counter;
  mf_bwe_usage_t usage;
  /* acknowledged bitrate */
  bool have_acked_window;
  int64_t acked_window_start_us;
  uint64_t acked_window_bytes;
  double acked_bps;
  /* link capacity learnt at overuses (kbit/s, as libwebrtc) */
  bool have_capacity;
  double capacity_kbps, capacity_var;
  /* AIMD */
  double delay_bps;
  uint64_t last_update_us, last_decrease_us;
  bool have_update, have_decrease;
  double avg_packet_bytes;
  /* loss-based */
  double loss_bps;
  uint32_t loss_lost, loss_total;
  uint64_t last_loss_increase_us, last_loss_decrease_us;
  bool have_loss_increase, have_loss_decrease;
  double last_loss;
  uint32_t rtt_ms;
  uint32_t target_bps;
  mf_send_estimator_stats_t stats;
};

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

mf_err_t mf_send_estimator_create(const mf_send_estimator_config_t *cfg,
                                  mf_send_estimator_t **out) {
  if (!out) return MF_ERR_INVALID_ARG;
  mf_send_estimator_t *e = calloc(1, sizeof *e);
  if (!e) return MF_ERR_NO_MEMORY;
  uint32_t start = cfg && cfg->start_bps ? cfg->start_bps : 1000000;
  e->min_bps = cfg && cfg->min_bps ? cfg->min_bps : 50000;
  e->max_bps = cfg && cfg->max_bps ? cfg->max_bps : 20000000;
  if (e->max_bps < e->min_bps) e->max_bps = e->min_bps;
  start = (uint32_t)clampd(start, e->min_bps, e->max_bps);
  e->next_seq = 1;
  e->threshold = THRESH_INIT;
  e->time_over_using_ms = -1;
  e->delay_bps = e->loss_bps = start;
  e->target_bps = start;
  e->avg_packet_bytes = 1000;
  *out = e;
  return MF_OK;
}

void mf_send_estimator_destroy(mf_send_estimator_t *e) { free(e); }

void mf_send_estimator_set_rtt(mf_send_estimator_t *e, uint32_t rtt_ms) { e->rtt_ms = rtt_ms; }

uint32_t mf_send_estimator_bitrate(const mf_send_estimator_t *e) { return e->target_bps; }

uint16_t mf_send_estimator_on_send(mf_send_estimator_t *e, uint32_t size, uint64_t now_us) {
  uint16_t seq = e->next_seq++;
  sent_rec_t *r = &e->ring[seq & (MF_SEND_EST_RING - 1)];
  r->send_us = now_us;
  r->size = size;
  r->seq = seq;
  r->state = REC_SENT;
  e->stats.sent++;
  return seq;
}

static uint32_t rtt_or_default(const mf_send_estimator_t *e) {
  return e->rtt_ms ? e->rtt_ms : DEFAULT_RTT_MS;
}

/* ------------------------------------------------------------- trendline detector */

static double trend_slope(const mf_send_estimator_t *e) {
  double sx = 0, sy = 0;
  for (size_t i = 0; i < e->hist_n; i++) {
    sx += e->hist_x[i];
    sy += e->hist_y[i];
  }
  double mx = sx / (double)e->hist_n, my = sy / (double)e->hist_n;
  double num = 0, den = 0;
  for (size_t i = 0; i < e->hist_n; i++) {
    num += (e->hist_x[i] - mx) * (e->hist_y[i] - my);
    den += (e->hist_x[i] - mx) * (e->hist_x[i] - mx);
  }
  return den == 0 ? 0 : num / den;
}

static void update_threshold(mf_send_estimator_t *e, double modified, int64_t now_us) {
  if (!e->have_threshold_time) {
    e->have_threshold_time = true;
    e->last_threshold_us = now_us;
  }
  double a = fabs(modified);
  if (a > e->threshold + THRESH_MAX_OFFSET) {
    /* A spike (e.g. a route change): do not let it drag the threshold up. */
    e->last_threshold_us = now_us;
    return;
  }
  double k = a < e->threshold ? THRESH_K_DOWN : THRESH_K_UP;
  double dt_ms = (double)(now_us - e->last_threshold_us) / 1000.0;
  if (dt_ms > 100) dt_ms = 100;
  if (dt_ms < 0) dt_ms = 0;
  e->threshold = clampd(e->threshold + k * (a - e->threshold) * dt_ms, THRESH_MIN, THRESH_MAX);
  e->last_threshold_us = now_us;
}

static void detect(mf_send_estimator_t *e, double trend, double send_delta_ms, int64_t now_us) {
  if (e->num_deltas < 2) {
    e->usage = MF_BWE_USAGE_NORMAL;
    return;
  }
  double modified = (e->num_deltas < 60 ? e->num_deltas : 60) * trend * TREND_GAIN;
  e->modified_trend = modified;
  if (modified > e->threshold) {
    if (e->time_over_using_ms < 0)
      e->time_over_using_ms = send_delta_ms / 2;
    else
      e->time_over_using_ms += send_delta_ms;
    e->overuse_counter++;
    if (e->time_over_using_ms > OVERUSE_TIME_MS && e->overuse_counter > 1 &&
        trend >= e->prev_trend) {
      e->time_over_using_ms = 0;
      e->overuse_counter = 0;
      e->usage = MF_BWE_USAGE_OVERUSE;
    }
  } else if (modified < -e->threshold) {
    e->time_over_using_ms = -1;
    e->overuse_counter = 0;
    e->usage = MF_BWE_USAGE_UNDERUSE;
  } else {
    e->time_over_using_ms = -1;
    e->overuse_counter = 0;
    e->usage = MF_BWE_USAGE_NORMAL;
  }
  e->prev_trend = trend;
  update_threshold(e, modified, now_us);
}

static void on_group_delta(mf_send_estimator_t *e, double recv_delta_ms, double send_delta_ms,
                           int64_t arrival_us) {
  double delta = recv_delta_ms - send_delta_ms;
  if (e->num_deltas < 1000) e->num_deltas++;
  if (!e->have_first_arrival) {
    e->have_first_arrival = true;
    e->first_arrival_us = arrival_us;
  }
  e->accumulated_ms += delta;
  e->smoothed_ms = TREND_SMOOTHING * e->smoothed_ms + (1 - TREND_SMOOTHING) * e->accumulated_ms;
  size_t slot = (e->hist_head + e->hist_n) % MF_SEND_EST_TREND_WINDOW;
  if (e->hist_n == MF_SEND_EST_TREND_WINDOW) {
    slot = e->hist_head;
    e->hist_head = (e->hist_head + 1) % MF_SEND_EST_TREND_WINDOW;
  } else {
    e->hist_n++;
  }
  e->hist_x[slot] = (double)(arrival_us - e->first_arrival_us) / 1000.0;
  e->hist_y[slot] = e->smoothed_ms;
  double trend = e->prev_trend;
  if (e->hist_n == MF_SEND_EST_TREND_WINDOW) trend = trend_slope(e);
  detect(e, trend, send_delta_ms, arrival_us);
}

/* Feeds one acknowledged packet (in send order) into the group logic. Returns true when a
 * completed group produced an OVERUSE verdict. */
static bool on_acked_packet(mf_send_estimator_t *e, int64_t send_us, int64_t recv_us) {
  if (!e->cur.valid) {
    e->cur = (group_t){true, send_us, send_us, recv_us};
    return false;
  }
  if (send_us < e->cur.first_send_us) return false; /* out of order (e.g. a retransmission) */
  if (send_us - e->cur.first_send_us <= GROUP_SPAN_US) {
    if (send_us > e->cur.last_send_us) e->cur.last_send_us = send_us;
    if (recv_us > e->cur.last_recv_us) e->cur.last_recv_us = recv_us;
    return false;
  }
  bool overuse = false;
  if (e->prev.valid) {
    double send_delta = (double)(e->cur.last_send_us - e->prev.last_send_us) / 1000.0;
    double recv_delta = (double)(e->cur.last_recv_us - e->prev.last_recv_us) / 1000.0;
    /* Arrival going backwards by more than a second: the clock or path changed; start over
     * rather than feed the trendline a huge negative gradient. */
    if (recv_delta < -1000) {
      e->accumulated_ms = e->smoothed_ms = 0;
      e->hist_n = e->hist_head = 0;
      e->num_deltas = 0;
      e->have_first_arrival = false;
    } else {
      on_group_delta(e, recv_delta, send_delta, e->cur.last_recv_us);
      overuse = e->usage == MF_BWE_USAGE_OVERUSE;
    }
  }
  e->prev = e->cur;
  e->cur = (group_t){true, send_us, send_us, recv_us};
  return overuse;
}

/* ------------------------------------------------------------- acked bitrate, capacity */

static void on_acked_bytes(mf_send_estimator_t *e, int64_t recv_us, uint32_t size) {
  if (!e->have_acked_window) {
    e->have_acked_window = true;
    e->acked_window_start_us = recv_us;
    e->acked_window_bytes = 0;
    return;
  }
  if (recv_us < e->acked_window_start_us) return;
  e->acked_window_bytes += size;
  int64_t span = recv_us - e->acked_window_start_us;
  if (span < ACKED_WINDOW_US) return;
  double sample = (double)e->acked_window_bytes * 8e6 / (double)span;
  e->acked_bps = e->acked_bps == 0 ? sample : 0.6 * e->acked_bps + 0.4 * sample;
  e->acked_window_start_us = recv_us;
  e->acked_window_bytes = 0;
}

static void capacity_on_overuse(mf_send_estimator_t *e, double acked_bps) {
  double sample = acked_bps / 1000.0;
  if (!e->have_capacity) {
    e->have_capacity = true;
    e->capacity_kbps = sample;
    e->capacity_var = 0.4;
    return;
  }
  e->capacity_kbps = 0.95 * e->capacity_kbps + 0.05 * sample;
  double norm = e->capacity_kbps > 1 ? e->capacity_kbps : 1;
  double err = e->capacity_kbps - sample;
  e->capacity_var = clampd(0.95 * e->capacity_var + 0.05 * err * err / norm, 0.4, 2.5);
}

static double capacity_std_kbps(const mf_send_estimator_t *e) {
  return sqrt(e->capacity_var * e->capacity_kbps);
}

/* ------------------------------------------------------------- rate control */

static void aimd_update(mf_send_estimator_t *e, bool overuse_seen, uint64_t now_us) {
  double dt_s = e->have_update ? (double)(now_us - e->last_update_us) / 1e6 : 0;
  if (dt_s > 1) dt_s = 1;
  if (dt_s < 0) dt_s = 0;
  e->have_update = true;
  e->last_update_us = now_us;
  uint64_t gap = (uint64_t)rtt_or_default(e) * 1000;
  if (gap < MIN_DECREASE_GAP_US) gap = MIN_DECREASE_GAP_US;

  if (overuse_seen || e->usage == MF_BWE_USAGE_OVERUSE) {
    if (e->have_decrease && now_us - e->last_decrease_us < gap) return;
    double base = e->acked_bps > 0 ? e->acked_bps : e->delay_bps;
    double next = BETA * base;
    if (next > e->delay_bps) next = e->delay_bps;
    if (e->acked_bps > 0) capacity_on_overuse(e, e->acked_bps);
    e->delay_bps = next;
    e->have_decrease = true;
    e->last_decrease_us = now_us;
    e->stats.overuses++;
    return;
  }
  if (e->usage == MF_BWE_USAGE_UNDERUSE) return; /* hold while the queue drains */

  double kbps = e->delay_bps / 1000.0;
  if (e->have_capacity && kbps > e->capacity_kbps + 3 * capacity_std_kbps(e))
    e->have_capacity = false; /* above what we learnt: the link got better, forget it */
  if (e->have_capacity && kbps > e->capacity_kbps - 3 * capacity_std_kbps(e)) {
    /* Near the known capacity: about one packet more per response time. */
    double response_s = (rtt_or_default(e) + 100) / 1000.0;
    double per_s = e->avg_packet_bytes * 8 / response_s;
    if (per_s < 4000) per_s = 4000;
    e->delay_bps += per_s * dt_s;
  } else {
    e->delay_bps *= pow(MULT_INCREASE_PER_S, dt_s);
  }
}

static void loss_update(mf_send_estimator_t *e, uint64_t now_us) {
  if (e->loss_total < LOSS_MIN_PACKETS) return;
  double loss = (double)e->loss_lost / (double)e->loss_total;
  e->last_loss = loss;
  e->loss_lost = e->loss_total = 0;
  double current = e->target_bps;
  if (loss < LOSS_LOW) {
    if (!e->have_loss_increase || now_us - e->last_loss_increase_us >= LOSS_INCREASE_GAP_US) {
      e->loss_bps = current * 1.08 + 1000;
      e->have_loss_increase = true;
      e->last_loss_increase_us = now_us;
    }
  } else if (loss > LOSS_HIGH) {
    uint64_t gap = LOSS_DECREASE_GAP_US + (uint64_t)rtt_or_default(e) * 1000;
    if (!e->have_loss_decrease || now_us - e->last_loss_decrease_us >= gap) {
      e->loss_bps = current * (1 - 0.5 * loss);
      e->have_loss_decrease = true;
      e->last_loss_decrease_us = now_us;
    }
  }
}

/* ------------------------------------------------------------- feedback */

void mf_send_estimator_on_feedback(mf_send_estimator_t *e, const mf_rtcp_twcc_t *fb,
                                   const mf_rtcp_twcc_packet_t *pkts, size_t n,
                                   uint64_t now_us) {
  if (!e || !fb || (n > 0 && !pkts)) return;
  e->stats.feedbacks++;
  uint32_t raw = (uint32_t)fb->reference_time & 0xffffffu;
  if (!e->have_ref) {
    e->have_ref = true;
    e->ref_unwrapped = raw;
  } else {
    int32_t d = (int32_t)((raw - e->last_ref_raw) & 0xffffffu);
    if (d >= 0x800000) d -= 0x1000000;
    e->ref_unwrapped += d;
  }
  e->last_ref_raw = raw;

  int64_t recv_us = e->ref_unwrapped * 64000;
  bool overuse_seen = false;
  for (size_t i = 0; i < n; i++) {
    const mf_rtcp_twcc_packet_t *p = &pkts[i];
    bool received = p->status != MF_TWCC_NOT_RECEIVED;
    if (received) recv_us += (int64_t)p->delta * 250;
    sent_rec_t *r = &e->ring[p->seq & (MF_SEND_EST_RING - 1)];
    if (r->state == REC_EMPTY || r->seq != p->seq) {
      e->stats.unknown++;
      continue;
    }
    if (!received) {
      if (r->state == REC_SENT) {
        r->state = REC_LOST;
        e->loss_lost++;
        e->loss_total++;
        e->stats.lost++;
      }
      continue;
    }
    if (r->state == REC_ACKED) continue;
    if (r->state == REC_LOST) {
      if (e->loss_lost > 0) e->loss_lost--;
      if (e->stats.lost > 0) e->stats.lost--;
    } else {
      e->loss_total++;
    }
    r->state = REC_ACKED;
    e->stats.acked++;
    e->avg_packet_bytes = 0.95 * e->avg_packet_bytes + 0.05 * r->size;
    on_acked_bytes(e, recv_us, r->size);
    if (on_acked_packet(e, (int64_t)r->send_us, recv_us)) overuse_seen = true;
  }
  aimd_update(e, overuse_seen, now_us);
  e->delay_bps = clampd(e->delay_bps, e->min_bps, e->max_bps);
  loss_update(e, now_us);
  e->loss_bps = clampd(e->loss_bps, e->min_bps, e->max_bps);
  double t = e->delay_bps < e->loss_bps ? e->delay_bps : e->loss_bps;
  e->target_bps = (uint32_t)clampd(t, e->min_bps, e->max_bps);
}

void mf_send_estimator_get_stats(const mf_send_estimator_t *e, mf_send_estimator_stats_t *out) {
  *out = e->stats;
  out->target_bps = e->target_bps;
  out->delay_bps = (uint32_t)e->delay_bps;
  out->loss_bps = (uint32_t)e->loss_bps;
  out->acked_bps = (uint32_t)e->acked_bps;
  out->usage = e->usage;
  out->trend = e->modified_trend;
  out->threshold = e->threshold;
  out->loss = e->last_loss;
}
