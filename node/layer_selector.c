/* Simulcast layer selection; see layer_selector.h for the rules. */
#include "node/layer_selector.h"

#include <string.h>

static unsigned clampu(unsigned v, unsigned lo, unsigned hi) { return v < lo ? lo : v > hi ? hi : v; }

static bool active(const mf_layer_selector_t *s, unsigned layer, uint64_t now_ms) {
  return s->seen[layer] && now_ms - s->last_seen_ms[layer] <= MF_LAYER_INACTIVE_MS;
}

/* Recomputes the target from preference, limit and activity. True when it changed. */
static bool retarget(mf_layer_selector_t *s, uint64_t now_ms) {
  unsigned want = s->preferred_spatial < s->limit_spatial ? s->preferred_spatial : s->limit_spatial;
  int spatial = -1;
  for (int l = (int)want; l >= 0 && spatial < 0; l--)
    if (active(s, (unsigned)l, now_ms)) spatial = l;
  /* Nothing active at or below the wanted layer: a higher one beats a frozen picture. */
  for (unsigned l = want + 1; l < s->spatial_count && spatial < 0; l++)
    if (active(s, l, now_ms)) spatial = (int)l;
  int temporal = -1;
  if (spatial >= 0) {
    unsigned t = s->preferred_temporal < s->limit_temporal ? s->preferred_temporal : s->limit_temporal;
    /* A fallback layer below the preferred one: the limit alone caps its temporal layers. */
    if ((unsigned)spatial < want) t = s->limit_temporal;
    temporal = (int)t;
  }
  bool changed = spatial != s->target_spatial || temporal != s->target_temporal;
  s->target_spatial = (int8_t)spatial;
  s->target_temporal = (int8_t)temporal;
  return changed;
}

void mf_layer_selector_init(mf_layer_selector_t *s, unsigned spatial_count,
                            unsigned temporal_count) {
  memset(s, 0, sizeof *s);
  s->spatial_count = (uint8_t)clampu(spatial_count, 1, MF_LAYER_MAX_SPATIAL);
  s->temporal_count = (uint8_t)clampu(temporal_count, 1, MF_LAYER_MAX_TEMPORAL);
  s->preferred_spatial = s->limit_spatial = (uint8_t)(s->spatial_count - 1);
  s->preferred_temporal = s->limit_temporal = (uint8_t)(s->temporal_count - 1);
  s->target_spatial = s->target_temporal = -1;
  s->current_spatial = s->current_temporal = -1;
}

bool mf_layer_selector_set_preferred(mf_layer_selector_t *s, unsigned spatial, unsigned temporal,
                                     uint64_t now_ms) {
  s->preferred_spatial = (uint8_t)clampu(spatial, 0, s->spatial_count - 1u);
  s->preferred_temporal = (uint8_t)clampu(temporal, 0, s->temporal_count - 1u);
  return retarget(s, now_ms);
}

bool mf_layer_selector_set_limit(mf_layer_selector_t *s, unsigned spatial, unsigned temporal,
                                 uint64_t now_ms) {
  s->limit_spatial = (uint8_t)clampu(spatial, 0, s->spatial_count - 1u);
  s->limit_temporal = (uint8_t)clampu(temporal, 0, s->temporal_count - 1u);
  return retarget(s, now_ms);
}

bool mf_layer_selector_tick(mf_layer_selector_t *s, uint64_t now_ms) { return retarget(s, now_ms); }

bool mf_layer_selector_switch_pending(const mf_layer_selector_t *s) {
  if (s->svc) return s->target_spatial > s->current_spatial;
  return s->target_spatial >= 0 && s->target_spatial != s->current_spatial;
}

void mf_layer_selector_init_svc(mf_layer_selector_t *s, unsigned spatial_count,
                                unsigned temporal_count) {
  mf_layer_selector_init(s, spatial_count, temporal_count);
  s->svc = true;
}

/* Temporal filtering of the current stream. */
static mf_layer_decision_t temporal_step(mf_layer_selector_t *s, unsigned tid, bool keyframe,
                                         bool frame_start, bool layer_sync, bool *switched) {
  if (s->temporal_count == 1) return MF_LAYER_FORWARD; /* no temporal layers negotiated */
  if (frame_start) {
    if (s->current_temporal > s->target_temporal) {
      s->current_temporal = s->target_temporal; /* going down: any frame start will do */
      *switched = true;
    } else if ((int)tid > s->current_temporal && (int)tid <= s->target_temporal &&
               (layer_sync || keyframe)) {
      s->current_temporal = (int8_t)tid; /* going up only where the layer can start */
      *switched = true;
    }
  }
  return (int)tid <= s->current_temporal ? MF_LAYER_FORWARD : MF_LAYER_DROP_TEMPORAL;
}

mf_layer_decision_t mf_layer_selector_on_packet(mf_layer_selector_t *s, unsigned spatial,
                                                unsigned tid, bool keyframe, bool frame_start,
                                                bool layer_sync, uint64_t now_ms,
                                                bool *switched) {
  *switched = false;
  if (spatial >= s->spatial_count) return MF_LAYER_DROP;
  bool was_active = active(s, spatial, now_ms);
  s->seen[spatial] = true;
  s->last_seen_ms[spatial] = now_ms;
  if (!was_active) retarget(s, now_ms); /* a layer (re)appeared: it may be the better one */
  if ((int)spatial == s->target_spatial && s->target_spatial != s->current_spatial) {
    if (!keyframe) {
      /* Until the target can start, the current layer keeps flowing. */
      return s->current_spatial >= 0 ? MF_LAYER_DROP : MF_LAYER_DROP_WAIT_KEYFRAME;
    }
    s->current_spatial = (int8_t)spatial;
    s->current_temporal = s->target_temporal; /* everything after a keyframe may follow */
    *switched = true;
    return MF_LAYER_FORWARD;
  }
  if ((int)spatial != s->current_spatial) return MF_LAYER_DROP;
  /* The current layer while a switch is pending: keep it, the caller keeps asking for the
   * target's keyframe. A current layer that is no longer the target nor active anymore is
   * replaced by the tick's retarget. */
  return temporal_step(s, s->temporal_count > 1 ? tid : 0, keyframe, frame_start, layer_sync,
                       switched);
}

mf_layer_decision_t mf_layer_selector_on_svc_packet(mf_layer_selector_t *s, unsigned sid,
                                                    unsigned tid, bool keyframe,
                                                    bool picture_start, bool switching_up,
                                                    uint64_t now_ms, bool *switched) {
  *switched = false;
  if (sid >= s->spatial_count) return MF_LAYER_DROP_TEMPORAL;
  bool was_active = active(s, sid, now_ms);
  s->seen[sid] = true;
  s->last_seen_ms[sid] = now_ms;
  if (!was_active) retarget(s, now_ms);
  if (s->temporal_count == 1) tid = 0;
  if (picture_start) {
    if (s->current_spatial < 0) {
      if (!keyframe || s->target_spatial < 0) return MF_LAYER_DROP_WAIT_KEYFRAME;
      s->current_spatial = s->target_spatial;
      s->current_temporal = s->target_temporal;
      *switched = true;
    } else if (s->target_spatial >= 0 && s->target_spatial != s->current_spatial &&
               (s->target_spatial < s->current_spatial || keyframe)) {
      s->current_spatial = s->target_spatial; /* down at once: lower layers never stopped */
      if (keyframe) s->current_temporal = s->target_temporal;
      *switched = true;
    }
  } else if (s->current_spatial < 0) {
    return MF_LAYER_DROP_WAIT_KEYFRAME;
  }
  if ((int)sid > s->current_spatial) return MF_LAYER_DROP_TEMPORAL;
  /* temporal changes only at the picture start (sid 0); upper spatial packets follow it */
  bool sw = false;
  mf_layer_decision_t d = temporal_step(s, tid, keyframe, picture_start, switching_up, &sw);
  *switched = *switched || sw;
  return d;
}
