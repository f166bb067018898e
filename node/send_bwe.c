/* Downstream bandwidth control; see send_bwe.h. */
#define MF_LOG_MODULE "bwe"
#include "node/send_bwe.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "node/bwe/bitrate_allocator.h"
#include "node/bwe/send_estimator.h"
#include "node/router_internal.h"

#define MF_SEND_BWE_MAX_FEEDBACK 4096 /* packets read from one feedback message */

struct mf_send_bwe {
  mf_send_estimator_t *est;
  mf_bitrate_allocator_config_t cfg;
  bool started;
  uint64_t window_start_ms;
  uint64_t feedbacks, bad_feedbacks;
  uint32_t last_budget_bps;
  /* The feedback's packets and the allocator's inputs live on the worker's stack while
   * they are used: as members they made every subscriber transport 58 kB bigger. */
};

mf_err_t mf_send_bwe_create(mf_send_bwe_t **out) {
  mf_send_bwe_t *b = calloc(1, sizeof *b);
  if (!b) return MF_ERR_NO_MEMORY;
  mf_err_t e = mf_send_estimator_create(NULL, &b->est);
  if (e) {
    free(b);
    return e;
  }
  b->cfg = mf_bitrate_allocator_default_config();
  *out = b;
  return MF_OK;
}

void mf_send_bwe_destroy(mf_send_bwe_t *b) {
  if (!b) return;
  mf_send_estimator_destroy(b->est);
  free(b);
}

uint16_t mf_send_bwe_on_send(mf_send_bwe_t *b, uint32_t size) {
  return mf_send_estimator_on_send(b->est, size, mf_clock_now_us());
}

void mf_send_bwe_on_feedback(mf_send_bwe_t *b, const mf_rtcp_header_t *h) {
  mf_rtcp_twcc_t fb;
  mf_rtcp_twcc_packet_t pkts[MF_SEND_BWE_MAX_FEEDBACK]; /* 32 kB */
  if (mf_rtcp_parse_twcc(h, &fb, pkts, MF_SEND_BWE_MAX_FEEDBACK) != MF_OK) {
    b->bad_feedbacks++;
    return;
  }
  b->feedbacks++;
  mf_send_estimator_on_feedback(b->est, &fb, pkts, fb.written, mf_clock_now_us());
}

void mf_send_bwe_set_rtt(mf_send_bwe_t *b, uint32_t rtt_ms) { mf_send_estimator_set_rtt(b->est, rtt_ms); }

uint32_t mf_send_bwe_estimate(const mf_send_bwe_t *b) { return mf_send_estimator_bitrate(b->est); }

/* The consumer's layer bitrates over the window, cumulative as the allocator wants them:
 * simulcast layer (s, t) = stream s up to temporal layer t; SVC (s, t) = every spatial layer
 * up to s, each up to temporal layer t. */
static void fill_layers(mf_bitrate_allocator_consumer_t *a, const mf_consumer_t *c, double secs) {
  unsigned ns = c->layers.spatial_count < MF_ALLOC_MAX_SPATIAL ? c->layers.spatial_count : MF_ALLOC_MAX_SPATIAL;
  unsigned nt = c->layers.temporal_count < MF_ALLOC_MAX_TEMPORAL ? c->layers.temporal_count : MF_ALLOC_MAX_TEMPORAL;
  a->priority = 1;
  a->spatial_count = (uint8_t)ns;
  a->temporal_count = (uint8_t)nt;
  a->max_spatial = (int8_t)c->layers.preferred_spatial;
  a->max_temporal = (int8_t)c->layers.preferred_temporal;
  for (unsigned s = 0; s < ns; s++) {
    for (unsigned t = 0; t < nt; t++) {
      uint64_t bytes = 0;
      for (unsigned s2 = c->svc ? 0 : s; s2 <= s; s2++)
        for (unsigned t2 = 0; t2 <= t; t2++) bytes += c->layer_bytes[s2][t2];
      /* a layer that sent nothing in the window is unavailable (0) */
      bool any = c->layer_bytes[s][0] > 0 || c->layer_bytes[s][t] > 0;
      double bps = (double)bytes * 8.0 / secs;
      a->bitrate[s][t] = any ? (bps > 4e9 ? 4000000000u : (uint32_t)bps + 1) : 0;
    }
  }
}

void mf_send_bwe_tick(mf_router_transport_t *t, uint64_t now_ms) {
  mf_send_bwe_t *b = t->send_bwe;
  if (!b) return;
  if (!b->started) {
    b->started = true;
    b->window_start_ms = now_ms;
    return;
  }
  if (now_ms - b->window_start_ms < MF_SEND_BWE_ALLOC_MS) return;
  double secs = (double)(now_ms - b->window_start_ms) / 1000.0;
  b->window_start_ms = now_ms;
  uint64_t other_bits = 0;
  size_t n = 0;
  mf_bitrate_allocator_consumer_t alloc[MF_ALLOC_MAX_CONSUMERS]; /* 24 kB */
  mf_consumer_t *members[MF_ALLOC_MAX_CONSUMERS];
  for (size_t i = 0; i < t->consumers.count; i++) {
    mf_consumer_t *c = t->consumers.items[i];
    uint64_t sent = c->bytes + c->rtx_bytes;
    uint64_t delta = sent - c->bwe_sent_mark;
    c->bwe_sent_mark = sent;
    bool layered = (c->simulcast || c->svc) && !c->paused && !c->producer_paused;
    if (!layered || n == MF_ALLOC_MAX_CONSUMERS) {
      other_bits += delta * 8;
    } else {
      alloc[n] = c->alloc;
      fill_layers(&alloc[n], c, secs);
      members[n++] = c;
    }
    memset(c->layer_bytes, 0, sizeof c->layer_bytes);
  }
  if (n == 0) return;
  uint32_t est = mf_send_estimator_bitrate(b->est);
  uint64_t other_bps = (uint64_t)((double)other_bits / secs);
  uint32_t budget = est > other_bps ? (uint32_t)(est - other_bps) : 0;
  b->last_budget_bps = budget;
  if (mf_bitrate_allocator_run(&b->cfg, alloc, n, budget, now_ms, NULL) != MF_OK) return;
  for (size_t i = 0; i < n; i++) {
    mf_consumer_t *c = members[i];
    const mf_bitrate_allocator_consumer_t *a = &alloc[i];
    /* keep the allocator's state; the inputs are refilled every window */
    c->alloc = *a;
    unsigned ls = a->spatial < 0 ? 0 : (unsigned)a->spatial;
    unsigned lt = a->temporal < 0 ? 0 : (unsigned)a->temporal;
    if (ls != c->layers.limit_spatial || lt != c->layers.limit_temporal) {
      MF_LOG_INFO("consumer %s: bandwidth %u kbit/s (estimate %u, others %llu) allows layers %u/%u",
                  c->id, budget / 1000, est / 1000, (unsigned long long)(other_bps / 1000), ls, lt);
      if (mf_layer_selector_set_limit(&c->layers, ls, lt, now_ms) &&
          mf_layer_selector_switch_pending(&c->layers))
        mf_producer_request_keyframe(c->producer, now_ms);
    }
  }
}
