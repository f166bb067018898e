/* RtpObservers (mediasoup's AudioLevelObserver and ActiveSpeakerObserver) as pure state
 * machines over the audio levels the workers report (node/audio_level.h summaries) and a
 * millisecond clock given by the caller: no I/O, no timers, no threads, so every decision
 * is unit-testable.
 *
 * AudioLevelObserver: every interval, the producers whose average level over the interval
 * is at or above `threshold` (dBov, -127..0), loudest first, at most max_entries of them:
 * a "volumes" event; when none, one "silence" event (not repeated until volumes were
 * reported again). Producers that sent no level in the interval are not candidates.
 *
 * ActiveSpeakerObserver (a documented simplification of Volfin & Cohen, see docs/media.md):
 * every interval the loudest producer at or above speaker_threshold is the candidate. With
 * no dominant speaker yet the first candidate becomes dominant at once; afterwards a
 * challenger must be the candidate for hold_intervals consecutive intervals to take over
 * (an interval where it is not — someone else louder, or silence — resets its count).
 * Silence keeps the current speaker. Removing the dominant producer clears it.
 *
 * Thread affinity: none of its own; the caller serialises all calls on one observer (the
 * gateway holds its observer lock). Ownership: create/destroy; ids are copied. */
#ifndef MF_RTP_OBSERVER_H
#define MF_RTP_OBSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/id.h"
#include "node/audio_level.h"

#define MF_RTP_OBSERVER_MAX_PRODUCERS 64

typedef enum {
  MF_RTP_OBSERVER_AUDIO_LEVEL,
  MF_RTP_OBSERVER_ACTIVE_SPEAKER,
} mf_rtp_observer_type_t;

typedef struct {
  mf_rtp_observer_type_t type;
  uint32_t interval_ms;   /* clamped: 250..5000 (audio level), 100..5000 (active speaker) */
  /* AudioLevelObserver (mediasoup defaults: 1, -80, 1000) */
  uint32_t max_entries;   /* >= 1 */
  int threshold;          /* dBov, -127..0 */
  /* ActiveSpeakerObserver (defaults: interval 300, -50 dBov, 3 intervals) */
  int speaker_threshold;  /* dBov, -127..0 */
  uint32_t hold_intervals;/* >= 1 */
} mf_rtp_observer_config_t;

typedef enum {
  MF_RTP_OBSERVER_EV_NONE,
  MF_RTP_OBSERVER_EV_VOLUMES,  /* volumes[0..count) loudest first */
  MF_RTP_OBSERVER_EV_SILENCE,
  MF_RTP_OBSERVER_EV_DOMINANT, /* producer_id */
} mf_rtp_observer_event_kind_t;

typedef struct {
  char producer_id[MF_ID_LEN + 1];
  int volume; /* average dBov over the interval, -127..0 */
} mf_rtp_observer_volume_t;

typedef struct {
  mf_rtp_observer_event_kind_t kind;
  size_t count;
  mf_rtp_observer_volume_t volumes[MF_RTP_OBSERVER_MAX_PRODUCERS];
  char producer_id[MF_ID_LEN + 1];
} mf_rtp_observer_event_t;

typedef struct mf_rtp_observer mf_rtp_observer_t;

void mf_rtp_observer_config_default(mf_rtp_observer_type_t type, mf_rtp_observer_config_t *c);
/* Clamps the interval; MF_ERR_INVALID_ARG (message in err) for values out of range. */
mf_err_t mf_rtp_observer_config_check(mf_rtp_observer_config_t *c, char *err, size_t errsz);

/* The first interval ends interval_ms after now_ms. */
mf_err_t mf_rtp_observer_create(const mf_rtp_observer_config_t *c, uint64_t now_ms,
                                mf_rtp_observer_t **out);
void mf_rtp_observer_destroy(mf_rtp_observer_t *o);
const mf_rtp_observer_config_t *mf_rtp_observer_config(const mf_rtp_observer_t *o);

/* MF_ERR_EXISTS when already in, MF_ERR_LIMIT past MF_RTP_OBSERVER_MAX_PRODUCERS,
 * MF_ERR_INVALID_ARG for an empty or too long id. */
mf_err_t mf_rtp_observer_add_producer(mf_rtp_observer_t *o, const char *producer_id);
/* False when it was not in. */
bool mf_rtp_observer_remove_producer(mf_rtp_observer_t *o, const char *producer_id);
bool mf_rtp_observer_has_producer(const mf_rtp_observer_t *o, const char *producer_id);
size_t mf_rtp_observer_producer_count(const mf_rtp_observer_t *o);

/* Levels a worker measured for one producer (ignored when not in, or paused). */
void mf_rtp_observer_on_levels(mf_rtp_observer_t *o, const char *producer_id,
                               const mf_audio_level_summary_t *s);

/* Ends the interval when it is due (now_ms - start >= interval): true with *ev filled
 * when there is something to tell. The next interval starts at now_ms. */
bool mf_rtp_observer_tick(mf_rtp_observer_t *o, uint64_t now_ms, mf_rtp_observer_event_t *ev);

/* Pause drops what was accumulated; an AudioLevelObserver that reported volumes tells
 * "silence" (true with *ev), as mediasoup does. Resume starts a fresh interval. */
bool mf_rtp_observer_pause(mf_rtp_observer_t *o, mf_rtp_observer_event_t *ev);
void mf_rtp_observer_resume(mf_rtp_observer_t *o, uint64_t now_ms);
bool mf_rtp_observer_paused(const mf_rtp_observer_t *o);

/* An observer left without producers gets no more reports, hence no ticks: what its next
 * interval would say (an AudioLevelObserver that reported volumes: "silence", once). */
bool mf_rtp_observer_idle(mf_rtp_observer_t *o, mf_rtp_observer_event_t *ev);

/* ActiveSpeakerObserver: the current dominant producer's id, or NULL. */
const char *mf_rtp_observer_dominant(const mf_rtp_observer_t *o);

#endif
