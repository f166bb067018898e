/* Distributes a transport's available send bitrate (from the send estimator) over its
 * consumers by choosing a target (spatial, temporal) layer per consumer.
 *
 * Each consumer describes its layers as a table of measured bitrates bitrate[s][t]: the
 * rate the consumer sends when forwarding spatial layer s up to temporal layer t (for
 * simulcast: stream s's rate up to temporal layer t; for SVC: the cumulative rate). 0 means
 * the layer is not available now (stream inactive, not measured). The consumer's ladder is
 * its available layers within its preferred maximum, ordered spatial-major:
 * (0,0) < (0,1) < ... < (1,0) < (1,1) < ...; a layer's cost is its bitrate.
 *
 * mf_bitrate_allocator_run:
 *   1. in priority order (higher first; equal priorities in array order) every consumer gets
 *      the first step of its ladder if the budget covers it (else it gets no layer, -1; with
 *      cfg.keep_lowest the first consumer in that order gets its lowest layer anyway, so a
 *      lone subscriber on a weak link degrades rather than freezes);
 *   2. then, round after round in priority order, each consumer climbs one step if the
 *      remaining budget covers the step's extra cost, until no consumer can climb;
 *   3. hysteresis against flapping: a step to a layer ABOVE the consumer's previous target
 *      (the result of the last run, kept in the struct) needs the budget to cover the new
 *      layer's bitrate × (1 + up_margin), and that condition must have held continuously for
 *      up_delay_ms (now_ms is passed by the caller) before the step is taken; only one such
 *      step per consumer per stable period. Steps up to the previous target need just their
 *      cost, so going down happens at once and there is a dead band of up_margin above each
 *      layer's bitrate where nothing moves.
 *
 * Pure data structures (no router types): the caller fills the tables from its consumers'
 * measured layer rates and applies the chosen layers. Not thread-safe: ONE worker thread
 * owns the consumer array (the thread of the transport). No allocation. */
#ifndef MF_BITRATE_ALLOCATOR_H
#define MF_BITRATE_ALLOCATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define MF_ALLOC_MAX_SPATIAL 4
#define MF_ALLOC_MAX_TEMPORAL 4
#define MF_ALLOC_MAX_CONSUMERS 256 /* per run */

typedef struct {
  double up_margin;     /* e.g. 0.12: 12 % headroom before going up */
  uint32_t up_delay_ms; /* e.g. 2000: the headroom must last this long */
  bool keep_lowest;     /* see above */
} mf_bitrate_allocator_config_t;

typedef struct {
  /* input, set by the caller */
  uint32_t priority;      /* higher is served first */
  uint8_t spatial_count;  /* 1..MF_ALLOC_MAX_SPATIAL */
  uint8_t temporal_count; /* 1..MF_ALLOC_MAX_TEMPORAL */
  uint32_t bitrate[MF_ALLOC_MAX_SPATIAL][MF_ALLOC_MAX_TEMPORAL]; /* bit/s, 0: unavailable */
  int8_t max_spatial, max_temporal; /* preferred maximum layers (-1 or >= counts: no limit) */
  /* output (and state between runs: zero-initialise with mf_bitrate_allocator_init_consumer) */
  int8_t spatial, temporal; /* target layer, -1/-1 when none fits */
  uint32_t allocated_bps;   /* bitrate of the target layer (0 when none) */
  /* private */
  uint64_t up_since_ms;
  bool up_pending;
  bool started;
} mf_bitrate_allocator_consumer_t;

/* Default config: margin 12 %, delay 2000 ms, keep_lowest true. */
mf_bitrate_allocator_config_t mf_bitrate_allocator_default_config(void);

/* Sets the outputs to "no layer" and clears the hysteresis state; inputs untouched. */
void mf_bitrate_allocator_init_consumer(mf_bitrate_allocator_consumer_t *c);

/* Chooses the layers (see above). *unused_bps (optional) receives the budget left over.
 * MF_ERR_INVALID_ARG (and nothing changed) for n > MF_ALLOC_MAX_CONSUMERS, NULL consumers
 * with n > 0, or a consumer whose spatial/temporal count is outside its range.
 * A consumer's first run (after init_consumer) applies the margin but not the delay, so a
 * new consumer starts at once at the layer the budget allows. Layer (s,t) is within the
 * preferred maximum when max_spatial < 0, s < max_spatial, or s == max_spatial and
 * (max_temporal < 0 or t <= max_temporal) (mediasoup's preferred layers). */
mf_err_t mf_bitrate_allocator_run(const mf_bitrate_allocator_config_t *cfg,
                                  mf_bitrate_allocator_consumer_t *consumers, size_t n,
                                  uint32_t available_bps, uint64_t now_ms,
                                  uint32_t *unused_bps);

#endif
