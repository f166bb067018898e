#include "node/bwe/remb_estimator.h"

#include <string.h>

void mf_remb_estimator_init(mf_remb_estimator_t *e, uint32_t min_bps, uint32_t max_bps) {
  memset(e, 0, sizeof *e);
  e->min_bps = min_bps ? min_bps : MF_REMB_DEFAULT_MIN_BPS;
  e->max_bps = max_bps ? max_bps : MF_REMB_DEFAULT_MAX_BPS;
  if (e->max_bps < e->min_bps) e->max_bps = e->min_bps;
  e->estimate_bps = e->max_bps;
}

void mf_remb_estimator_on_packet(mf_remb_estimator_t *e, uint32_t bytes, uint64_t now_ms) {
  if (!e->started) {
    e->started = true;
    e->window_start_ms = now_ms;
  }
  e->window_bytes += bytes;
}

uint32_t mf_remb_estimator_update(mf_remb_estimator_t *e, uint8_t fraction_lost,
                                  uint64_t now_ms) {
  if (!e->started || now_ms < e->window_start_ms + MF_REMB_INTERVAL_MS) return e->estimate_bps;
  uint64_t span = now_ms - e->window_start_ms;
  uint64_t rate = e->window_bytes * 8 * 1000 / span;
  e->rate_bps = rate > UINT32_MAX ? UINT32_MAX : (uint32_t)rate;
  e->window_bytes = 0;
  e->window_start_ms = now_ms;
  double loss = fraction_lost / 256.0;
  double est = loss > 0.10 ? e->rate_bps * (1.0 - 0.5 * loss) : e->rate_bps * MF_REMB_GROWTH;
  if (est < e->min_bps) est = e->min_bps;
  if (est > e->max_bps) est = e->max_bps;
  e->estimate_bps = (uint32_t)est;
  return e->estimate_bps;
}
