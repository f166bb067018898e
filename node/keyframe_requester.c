/* Keyframe request pacing; see keyframe_requester.h for the contract.
 *
 * Two pending states: `outstanding` (a PLI/FIR went out and no keyframe came back yet) and
 * `deferred` (a request arrived after the last keyframe but too soon after the last send).
 * They are exclusive: a request while outstanding is satisfied by the keyframe already
 * asked for. */
#include "node/keyframe_requester.h"

#include <stdlib.h>

struct mf_keyframe_requester {
  mf_keyframe_requester_config_t cfg;
  bool outstanding;
  bool deferred;
  bool ever_sent;
  uint64_t last_sent_ms;
  uint32_t retries_left;
  mf_keyframe_requester_stats_t stats;
};

void mf_keyframe_requester_config_default(mf_keyframe_requester_config_t *c) {
  c->min_interval_ms = MF_KEYFRAME_REQUESTER_DEFAULT_MIN_INTERVAL_MS;
  c->retry_interval_ms = MF_KEYFRAME_REQUESTER_DEFAULT_RETRY_INTERVAL_MS;
  c->max_retries = MF_KEYFRAME_REQUESTER_DEFAULT_MAX_RETRIES;
}

mf_err_t mf_keyframe_requester_create(const mf_keyframe_requester_config_t *config,
                                      mf_keyframe_requester_t **out) {
  mf_keyframe_requester_config_t cfg;
  if (!out) {
    return MF_ERR_INVALID_ARG;
  }
  if (config) {
    cfg = *config;
  } else {
    mf_keyframe_requester_config_default(&cfg);
  }
  if (cfg.retry_interval_ms == 0 || cfg.retry_interval_ms < cfg.min_interval_ms) {
    return MF_ERR_INVALID_ARG;
  }
  mf_keyframe_requester_t *k = calloc(1, sizeof(*k));
  if (!k) {
    return MF_ERR_NO_MEMORY;
  }
  k->cfg = cfg;
  *out = k;
  return MF_OK;
}

void mf_keyframe_requester_destroy(mf_keyframe_requester_t *k) {
  free(k);
}

static uint64_t since_send(const mf_keyframe_requester_t *k, uint64_t now_ms) {
  return now_ms > k->last_sent_ms ? now_ms - k->last_sent_ms : 0;
}

static void mark_sent(mf_keyframe_requester_t *k, uint64_t now_ms) {
  k->outstanding = true;
  k->deferred = false;
  k->ever_sent = true;
  k->last_sent_ms = now_ms;
}

bool mf_keyframe_requester_request(mf_keyframe_requester_t *k, uint64_t now_ms) {
  k->stats.asked++;
  k->retries_left = k->cfg.max_retries;
  if (k->outstanding && since_send(k, now_ms) >= k->cfg.retry_interval_ms) {
    /* The last send timed out and tick() has not run yet: this request starts over. */
    k->outstanding = false;
  }
  if (k->outstanding) {
    k->stats.coalesced++;
    return false;
  }
  if (k->ever_sent && since_send(k, now_ms) < k->cfg.min_interval_ms) {
    k->deferred = true;
    k->stats.coalesced++;
    return false;
  }
  k->stats.sent++;
  mark_sent(k, now_ms);
  return true;
}

void mf_keyframe_requester_on_keyframe(mf_keyframe_requester_t *k, uint64_t now_ms) {
  (void)now_ms;
  k->stats.keyframes++;
  k->outstanding = false;
  k->deferred = false;
}

bool mf_keyframe_requester_tick(mf_keyframe_requester_t *k, uint64_t now_ms) {
  if (k->deferred) {
    if (since_send(k, now_ms) < k->cfg.min_interval_ms) {
      return false;
    }
    k->stats.sent++;
    mark_sent(k, now_ms);
    return true;
  }
  if (!k->outstanding || since_send(k, now_ms) < k->cfg.retry_interval_ms) {
    return false;
  }
  if (k->retries_left == 0) {
    k->outstanding = false;
    k->stats.gave_up++;
    return false;
  }
  k->retries_left--;
  k->stats.retries++;
  mark_sent(k, now_ms);
  return true;
}

bool mf_keyframe_requester_pending(const mf_keyframe_requester_t *k) {
  return k->outstanding || k->deferred;
}

uint64_t mf_keyframe_requester_next_tick_ms(const mf_keyframe_requester_t *k) {
  if (k->deferred) {
    return k->last_sent_ms + k->cfg.min_interval_ms;
  }
  if (k->outstanding) {
    return k->last_sent_ms + k->cfg.retry_interval_ms;
  }
  return 0;
}

void mf_keyframe_requester_reset(mf_keyframe_requester_t *k) {
  k->outstanding = false;
  k->deferred = false;
  k->retries_left = 0;
}

void mf_keyframe_requester_get_stats(const mf_keyframe_requester_t *k,
                                     mf_keyframe_requester_stats_t *out) {
  *out = k->stats;
}
