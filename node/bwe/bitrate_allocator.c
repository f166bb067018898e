#include "node/bwe/bitrate_allocator.h"

#include <string.h>

/* Ladder position of (s,t): spatial-major. */
#define RANK(s, t) ((int)(s) * MF_ALLOC_MAX_TEMPORAL + (int)(t))

mf_bitrate_allocator_config_t mf_bitrate_allocator_default_config(void) {
  return (mf_bitrate_allocator_config_t){.up_margin = 0.12, .up_delay_ms = 2000,
                                         .keep_lowest = true};
}

void mf_bitrate_allocator_init_consumer(mf_bitrate_allocator_consumer_t *c) {
  c->spatial = c->temporal = -1;
  c->allocated_bps = 0;
  c->up_since_ms = 0;
  c->up_pending = false;
  c->started = false;
}

static bool layer_allowed(const mf_bitrate_allocator_consumer_t *c, int s, int t) {
  if (c->bitrate[s][t] == 0) return false;
  if (c->max_spatial < 0 || s < c->max_spatial) return true;
  if (s > c->max_spatial) return false;
  return c->max_temporal < 0 || t <= c->max_temporal;
}

/* The first allowed layer after rank `after` (-1: the lowest); false at the top. */
static bool next_layer(const mf_bitrate_allocator_consumer_t *c, int after, int *s_out,
                       int *t_out) {
  for (int s = 0; s < c->spatial_count; s++) {
    for (int t = 0; t < c->temporal_count; t++) {
      if (RANK(s, t) <= after || !layer_allowed(c, s, t)) continue;
      *s_out = s;
      *t_out = t;
      return true;
    }
  }
  return false;
}

typedef struct {
  int rank;         /* this run's layer so far, -1 none */
  int s, t;
  uint32_t bps;
  int prev_rank;    /* target of the previous run */
  bool blocked;     /* cannot climb further this run */
  bool up_ok;       /* the step above prev fitted with margin this run */
} work_t;

/* Tries one step for consumer c; returns true when taken. */
static bool try_step(const mf_bitrate_allocator_config_t *cfg,
                     mf_bitrate_allocator_consumer_t *c, work_t *w, uint64_t *remaining,
                     uint64_t now_ms) {
  int s, t;
  if (!next_layer(c, w->rank, &s, &t)) return false;
  uint64_t bps = c->bitrate[s][t];
  uint64_t extra = bps > w->bps ? bps - w->bps : 0;
  int rank = RANK(s, t);
  if (rank <= w->prev_rank) {
    if (extra > *remaining) return false;
  } else {
    double need = (double)bps * (1.0 + cfg->up_margin) - (double)w->bps;
    if (need > (double)*remaining) return false;
    w->up_ok = true;
    if (c->started) {
      if (!c->up_pending) {
        c->up_pending = true;
        c->up_since_ms = now_ms;
      }
      if (now_ms - c->up_since_ms < cfg->up_delay_ms) return false;
      /* One step above the previous target per stable period. */
      c->up_pending = false;
      w->up_ok = false;
      w->blocked = true;
    }
  }
  *remaining -= extra;
  w->rank = rank;
  w->s = s;
  w->t = t;
  w->bps = (uint32_t)bps;
  return true;
}

mf_err_t mf_bitrate_allocator_run(const mf_bitrate_allocator_config_t *cfg,
                                  mf_bitrate_allocator_consumer_t *consumers, size_t n,
                                  uint32_t available_bps, uint64_t now_ms,
                                  uint32_t *unused_bps) {
  if (!cfg || n > MF_ALLOC_MAX_CONSUMERS || (n > 0 && !consumers)) return MF_ERR_INVALID_ARG;
  for (size_t i = 0; i < n; i++) {
    const mf_bitrate_allocator_consumer_t *c = &consumers[i];
    if (c->spatial_count < 1 || c->spatial_count > MF_ALLOC_MAX_SPATIAL ||
        c->temporal_count < 1 || c->temporal_count > MF_ALLOC_MAX_TEMPORAL)
      return MF_ERR_INVALID_ARG;
  }
  /* Priority order, stable (insertion sort: n is small). */
  uint16_t order[MF_ALLOC_MAX_CONSUMERS];
  for (size_t i = 0; i < n; i++) {
    size_t k = i;
    while (k > 0 && consumers[order[k - 1]].priority < consumers[i].priority) {
      order[k] = order[k - 1];
      k--;
    }
    order[k] = (uint16_t)i;
  }
  work_t work[MF_ALLOC_MAX_CONSUMERS];
  for (size_t i = 0; i < n; i++) {
    const mf_bitrate_allocator_consumer_t *c = &consumers[i];
    work[i] = (work_t){.rank = -1, .s = -1, .t = -1};
    work[i].prev_rank = (c->started && c->spatial >= 0 && c->temporal >= 0)
                            ? RANK(c->spatial, c->temporal)
                            : -1;
  }
  uint64_t remaining = available_bps;
  /* 1. everyone's lowest layer */
  for (size_t k = 0; k < n; k++) {
    size_t i = order[k];
    mf_bitrate_allocator_consumer_t *c = &consumers[i];
    if (try_step(cfg, c, &work[i], &remaining, now_ms)) continue;
    work[i].blocked = true;
    int s, t;
    if (k == 0 && cfg->keep_lowest && next_layer(c, -1, &s, &t)) {
      work[i] = (work_t){.rank = RANK(s, t), .s = s, .t = t, .bps = c->bitrate[s][t],
                         .prev_rank = work[i].prev_rank, .blocked = true};
      remaining = remaining > work[i].bps ? remaining - work[i].bps : 0;
    }
  }
  /* 2. climb round-robin while the budget lasts */
  bool progress = true;
  while (progress) {
    progress = false;
    for (size_t k = 0; k < n; k++) {
      size_t i = order[k];
      if (work[i].blocked) continue;
      if (try_step(cfg, &consumers[i], &work[i], &remaining, now_ms))
        progress = true;
      else
        work[i].blocked = true;
    }
  }
  /* 3. outputs; a pending climb that did not fit this run starts over */
  for (size_t i = 0; i < n; i++) {
    mf_bitrate_allocator_consumer_t *c = &consumers[i];
    if (!work[i].up_ok) c->up_pending = false;
    c->spatial = (int8_t)work[i].s;
    c->temporal = (int8_t)work[i].t;
    c->allocated_bps = work[i].bps;
    c->started = true;
  }
  if (unused_bps) *unused_bps = (uint32_t)remaining;
  return MF_OK;
}
