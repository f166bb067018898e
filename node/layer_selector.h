/* Simulcast layer selection for one consumer (mediasoup's SimulcastConsumer logic, as a pure
 * state machine so it can be table-tested).
 *
 * A simulcast producer sends one RTP stream per spatial layer (its encodings, lowest
 * resolution first); each stream may carry temporal layers (VP8 TID). A consumer receives
 * exactly one spatial stream at a time, rewritten into one continuous stream, so it may only
 * switch to another spatial stream at a keyframe of that stream (its decoder has no reference
 * for anything else). Temporal layers of the current stream can be dropped at any frame
 * start and raised at a frame flagged as a layer sync point (or a keyframe / TID 0 frame).
 *
 * Which layers:
 *   target spatial = the highest ACTIVE layer <= min(preferred, limit), else the lowest
 *   active layer above that (something rather than a frozen picture), else none;
 *   target temporal = min(preferred temporal, limit temporal) (when the target spatial is
 *   the preferred one; a lower fallback layer still gets every temporal layer allowed).
 *   A layer is active while packets of it arrived within MF_LAYER_INACTIVE_MS: browsers
 *   stop sending upper layers when their own bandwidth estimate falls.
 *   `preferred` comes from consumer.setPreferredLayers (default: the highest), `limit`
 *   from the consumer's bandwidth allocation (default: no limit).
 * The current layer keeps flowing until the target's keyframe arrives (no freeze while
 * switching either way); meanwhile the caller asks the producer for a keyframe.
 *
 * Not thread-safe: one worker thread owns a selector. No allocation, no clock of its own
 * (callers pass now_ms, a monotonic millisecond clock). */
#ifndef MF_LAYER_SELECTOR_H
#define MF_LAYER_SELECTOR_H

#include <stdbool.h>
#include <stdint.h>

#define MF_LAYER_MAX_SPATIAL 8
#define MF_LAYER_MAX_TEMPORAL 4
/* No packet of a spatial layer for this long: the layer counts as inactive. Chrome pauses
 * an upper layer without a word; a second is well above its frame interval at 1 fps. */
#define MF_LAYER_INACTIVE_MS 1500

typedef struct {
  uint8_t spatial_count;  /* 1..MF_LAYER_MAX_SPATIAL */
  uint8_t temporal_count; /* 1..MF_LAYER_MAX_TEMPORAL */
  uint8_t preferred_spatial, preferred_temporal;
  uint8_t limit_spatial, limit_temporal;
  int8_t target_spatial, target_temporal;   /* -1: none */
  int8_t current_spatial, current_temporal; /* -1: nothing forwarded yet */
  bool svc; /* layers of one stream (mf_layer_selector_on_svc_packet), not simulcast streams */
  bool seen[MF_LAYER_MAX_SPATIAL];
  uint64_t last_seen_ms[MF_LAYER_MAX_SPATIAL];
} mf_layer_selector_t;

typedef enum {
  MF_LAYER_FORWARD = 0,    /* send the packet */
  MF_LAYER_DROP,           /* not the layer(s) the consumer gets: skip silently */
  MF_LAYER_DROP_TEMPORAL,  /* current stream, but a layer above the target (temporal; for
                              SVC also spatial): the caller removes it from the output
                              sequence (rewriter drop) */
  MF_LAYER_DROP_WAIT_KEYFRAME, /* waiting for a keyframe of the target layer: request one */
} mf_layer_decision_t;

/* Counts are clamped to 1..MAX. Preferred = the highest layers, no limit. */
void mf_layer_selector_init(mf_layer_selector_t *s, unsigned spatial_count,
                            unsigned temporal_count);

/* Clamped to the counts. Returns true when the target changed. */
bool mf_layer_selector_set_preferred(mf_layer_selector_t *s, unsigned spatial, unsigned temporal,
                                     uint64_t now_ms);
bool mf_layer_selector_set_limit(mf_layer_selector_t *s, unsigned spatial, unsigned temporal,
                                 uint64_t now_ms);

/* One packet of spatial layer `spatial`. `tid`: its temporal layer (0 when the codec has
 * none); `frame_start`: first packet of a frame (temporal changes happen only there);
 * `layer_sync`: the frame may be decoded with only TID 0 frames before it (VP8 Y bit).
 * *switched is set when the current layers changed with this packet (the caller resyncs
 * its rewriter on a spatial change and emits "layerschange"). */
mf_layer_decision_t mf_layer_selector_on_packet(mf_layer_selector_t *s, unsigned spatial,
                                                unsigned tid, bool keyframe, bool frame_start,
                                                bool layer_sync, uint64_t now_ms,
                                                bool *switched);

/* SVC (VP9 L*T*, one stream carrying every layer): a packet of spatial layer `sid`, temporal
 * layer `tid`. The consumer gets every spatial layer up to the current one (upper layers
 * predict from lower ones). Layer changes happen only at a picture start (`picture_start`:
 * the first packet of spatial layer 0 of a picture): down at any picture, spatial up only at
 * a keyframe, temporal up at a switching-up point (VP9 U bit) or keyframe. Call after
 * mf_layer_selector_init_svc. */
mf_layer_decision_t mf_layer_selector_on_svc_packet(mf_layer_selector_t *s, unsigned sid,
                                                    unsigned tid, bool keyframe,
                                                    bool picture_start, bool switching_up,
                                                    uint64_t now_ms, bool *switched);
/* As mf_layer_selector_init, for an SVC stream. */
void mf_layer_selector_init_svc(mf_layer_selector_t *s, unsigned spatial_count,
                                unsigned temporal_count);

/* Re-evaluates layer activity (call a few times per second). Returns true when the target
 * changed; when the new target spatial layer differs from the current one, the caller
 * requests a keyframe. */
bool mf_layer_selector_tick(mf_layer_selector_t *s, uint64_t now_ms);

/* True while a spatial switch waits for the target's keyframe (SVC: only going up or
 * starting need one). */
bool mf_layer_selector_switch_pending(const mf_layer_selector_t *s);

#endif
