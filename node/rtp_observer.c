#include "node/rtp_observer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char id[MF_ID_LEN + 1];
  uint64_t sum;
  uint32_t count;
} mf_rtp_observer_entry_t;

struct mf_rtp_observer {
  mf_rtp_observer_config_t cfg;
  mf_rtp_observer_entry_t entries[MF_RTP_OBSERVER_MAX_PRODUCERS];
  size_t count;
  uint64_t start_ms; /* the current interval's start */
  bool paused;
  bool silence;      /* audio level: the last thing told was silence (or nothing yet) */
  /* active speaker */
  char dominant[MF_ID_LEN + 1];
  char challenger[MF_ID_LEN + 1];
  uint32_t streak;
};

void mf_rtp_observer_config_default(mf_rtp_observer_type_t type, mf_rtp_observer_config_t *c) {
  memset(c, 0, sizeof *c);
  c->type = type;
  c->interval_ms = type == MF_RTP_OBSERVER_AUDIO_LEVEL ? 1000 : 300;
  c->max_entries = 1;
  c->threshold = -80;
  c->speaker_threshold = -50;
  c->hold_intervals = 3;
}

mf_err_t mf_rtp_observer_config_check(mf_rtp_observer_config_t *c, char *err, size_t errsz) {
  if (c->type != MF_RTP_OBSERVER_AUDIO_LEVEL && c->type != MF_RTP_OBSERVER_ACTIVE_SPEAKER) {
    snprintf(err, errsz, "unknown observer type");
    return MF_ERR_INVALID_ARG;
  }
  if (c->max_entries < 1 || c->max_entries > MF_RTP_OBSERVER_MAX_PRODUCERS) {
    snprintf(err, errsz, "maxEntries must be 1..%d", MF_RTP_OBSERVER_MAX_PRODUCERS);
    return MF_ERR_INVALID_ARG;
  }
  if (c->threshold < -127 || c->threshold > 0) {
    snprintf(err, errsz, "threshold must be -127..0 (dBov)");
    return MF_ERR_INVALID_ARG;
  }
  if (c->speaker_threshold < -127 || c->speaker_threshold > 0 || c->hold_intervals < 1) {
    snprintf(err, errsz, "speaker threshold must be -127..0 and hold at least 1 interval");
    return MF_ERR_INVALID_ARG;
  }
  /* mediasoup's worker clamps rather than refuses */
  uint32_t lo = c->type == MF_RTP_OBSERVER_AUDIO_LEVEL ? 250 : 100;
  if (c->interval_ms < lo) c->interval_ms = lo;
  if (c->interval_ms > 5000) c->interval_ms = 5000;
  return MF_OK;
}

mf_err_t mf_rtp_observer_create(const mf_rtp_observer_config_t *c, uint64_t now_ms,
                                mf_rtp_observer_t **out) {
  mf_rtp_observer_config_t cfg = *c;
  char err[128];
  mf_err_t e = mf_rtp_observer_config_check(&cfg, err, sizeof err);
  if (e) return e;
  mf_rtp_observer_t *o = calloc(1, sizeof *o);
  if (!o) return MF_ERR_NO_MEMORY;
  o->cfg = cfg;
  o->start_ms = now_ms;
  o->silence = true;
  *out = o;
  return MF_OK;
}

void mf_rtp_observer_destroy(mf_rtp_observer_t *o) { free(o); }

const mf_rtp_observer_config_t *mf_rtp_observer_config(const mf_rtp_observer_t *o) {
  return &o->cfg;
}

static mf_rtp_observer_entry_t *mf_rtp_observer_find(const mf_rtp_observer_t *o, const char *id) {
  for (size_t i = 0; i < o->count; i++)
    if (strcmp(o->entries[i].id, id) == 0) return (mf_rtp_observer_entry_t *)&o->entries[i];
  return NULL;
}

mf_err_t mf_rtp_observer_add_producer(mf_rtp_observer_t *o, const char *producer_id) {
  if (!producer_id || !producer_id[0] || strlen(producer_id) > MF_ID_LEN) return MF_ERR_INVALID_ARG;
  if (mf_rtp_observer_find(o, producer_id)) return MF_ERR_EXISTS;
  if (o->count == MF_RTP_OBSERVER_MAX_PRODUCERS) return MF_ERR_LIMIT;
  mf_rtp_observer_entry_t *e = &o->entries[o->count++];
  memset(e, 0, sizeof *e);
  memcpy(e->id, producer_id, strlen(producer_id) + 1);
  return MF_OK;
}

bool mf_rtp_observer_remove_producer(mf_rtp_observer_t *o, const char *producer_id) {
  mf_rtp_observer_entry_t *e = producer_id ? mf_rtp_observer_find(o, producer_id) : NULL;
  if (!e) return false;
  size_t i = (size_t)(e - o->entries);
  /* keep insertion order: it breaks ties between equally loud producers */
  memmove(&o->entries[i], &o->entries[i + 1], (o->count - i - 1) * sizeof *e);
  o->count--;
  if (strcmp(o->dominant, producer_id) == 0) o->dominant[0] = '\0';
  if (strcmp(o->challenger, producer_id) == 0) {
    o->challenger[0] = '\0';
    o->streak = 0;
  }
  return true;
}

bool mf_rtp_observer_has_producer(const mf_rtp_observer_t *o, const char *producer_id) {
  return producer_id && mf_rtp_observer_find(o, producer_id) != NULL;
}

size_t mf_rtp_observer_producer_count(const mf_rtp_observer_t *o) { return o->count; }

void mf_rtp_observer_on_levels(mf_rtp_observer_t *o, const char *producer_id,
                               const mf_audio_level_summary_t *s) {
  if (o->paused || !producer_id) return;
  mf_rtp_observer_entry_t *e = mf_rtp_observer_find(o, producer_id);
  if (!e) return;
  e->sum += s->sum;
  e->count += s->count;
}

static void mf_rtp_observer_reset(mf_rtp_observer_t *o) {
  for (size_t i = 0; i < o->count; i++) {
    o->entries[i].sum = 0;
    o->entries[i].count = 0;
  }
}

/* Average level of an entry over the interval as a (negative) dBov volume. */
static int mf_rtp_observer_volume(const mf_rtp_observer_entry_t *e) {
  mf_audio_level_summary_t s = {.sum = e->sum, .count = e->count};
  return -(int)mf_audio_level_average(&s);
}

static bool mf_rtp_observer_audio_level(mf_rtp_observer_t *o, mf_rtp_observer_event_t *ev) {
  size_t n = 0;
  for (size_t i = 0; i < o->count; i++) {
    const mf_rtp_observer_entry_t *e = &o->entries[i];
    if (e->count == 0) continue;
    int v = mf_rtp_observer_volume(e);
    if (v < o->cfg.threshold) continue;
    /* insertion sort, loudest first; equal volumes keep insertion order */
    size_t k = n;
    while (k > 0 && ev->volumes[k - 1].volume < v) {
      ev->volumes[k] = ev->volumes[k - 1];
      k--;
    }
    memcpy(ev->volumes[k].producer_id, e->id, sizeof e->id);
    ev->volumes[k].volume = v;
    n++;
  }
  if (n > 0) {
    ev->kind = MF_RTP_OBSERVER_EV_VOLUMES;
    ev->count = n < o->cfg.max_entries ? n : o->cfg.max_entries;
    o->silence = false;
    return true;
  }
  if (o->silence) return false;
  o->silence = true;
  ev->kind = MF_RTP_OBSERVER_EV_SILENCE;
  return true;
}

static bool mf_rtp_observer_active_speaker(mf_rtp_observer_t *o, mf_rtp_observer_event_t *ev) {
  const mf_rtp_observer_entry_t *best = NULL;
  int best_v = 0;
  for (size_t i = 0; i < o->count; i++) {
    const mf_rtp_observer_entry_t *e = &o->entries[i];
    if (e->count == 0) continue;
    int v = mf_rtp_observer_volume(e);
    if (v < o->cfg.speaker_threshold) continue;
    /* a tie keeps the current speaker: no switch without being strictly louder */
    if (!best || v > best_v || (v == best_v && strcmp(e->id, o->dominant) == 0)) {
      best = e;
      best_v = v;
    }
  }
  if (!best) {
    o->challenger[0] = '\0';
    o->streak = 0;
    return false;
  }
  if (strcmp(best->id, o->dominant) == 0) {
    o->challenger[0] = '\0';
    o->streak = 0;
    return false;
  }
  if (strcmp(best->id, o->challenger) == 0) {
    o->streak++;
  } else {
    memcpy(o->challenger, best->id, sizeof o->challenger);
    o->streak = 1;
  }
  if (o->dominant[0] && o->streak < o->cfg.hold_intervals) return false;
  memcpy(o->dominant, best->id, sizeof o->dominant);
  o->challenger[0] = '\0';
  o->streak = 0;
  ev->kind = MF_RTP_OBSERVER_EV_DOMINANT;
  memcpy(ev->producer_id, o->dominant, sizeof ev->producer_id);
  return true;
}

bool mf_rtp_observer_tick(mf_rtp_observer_t *o, uint64_t now_ms, mf_rtp_observer_event_t *ev) {
  ev->kind = MF_RTP_OBSERVER_EV_NONE;
  ev->count = 0;
  if (o->paused || now_ms - o->start_ms < o->cfg.interval_ms) return false;
  o->start_ms = now_ms;
  bool told = o->cfg.type == MF_RTP_OBSERVER_AUDIO_LEVEL ? mf_rtp_observer_audio_level(o, ev)
                                                         : mf_rtp_observer_active_speaker(o, ev);
  mf_rtp_observer_reset(o);
  return told;
}

bool mf_rtp_observer_pause(mf_rtp_observer_t *o, mf_rtp_observer_event_t *ev) {
  ev->kind = MF_RTP_OBSERVER_EV_NONE;
  ev->count = 0;
  if (o->paused) return false;
  o->paused = true;
  mf_rtp_observer_reset(o);
  o->challenger[0] = '\0';
  o->streak = 0;
  if (o->cfg.type != MF_RTP_OBSERVER_AUDIO_LEVEL || o->silence) return false;
  o->silence = true;
  ev->kind = MF_RTP_OBSERVER_EV_SILENCE;
  return true;
}

void mf_rtp_observer_resume(mf_rtp_observer_t *o, uint64_t now_ms) {
  if (!o->paused) return;
  o->paused = false;
  o->start_ms = now_ms;
  mf_rtp_observer_reset(o);
}

bool mf_rtp_observer_paused(const mf_rtp_observer_t *o) { return o->paused; }

bool mf_rtp_observer_idle(mf_rtp_observer_t *o, mf_rtp_observer_event_t *ev) {
  ev->kind = MF_RTP_OBSERVER_EV_NONE;
  ev->count = 0;
  if (o->count > 0 || o->paused || o->cfg.type != MF_RTP_OBSERVER_AUDIO_LEVEL || o->silence)
    return false;
  o->silence = true;
  ev->kind = MF_RTP_OBSERVER_EV_SILENCE;
  return true;
}

const char *mf_rtp_observer_dominant(const mf_rtp_observer_t *o) {
  return o->dominant[0] ? o->dominant : NULL;
}
