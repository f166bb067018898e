/* Per-producer accumulator of the RFC 6464 client-to-mixer audio level
 * (urn:ietf:params:rtp-hdrext:ssrc-audio-level): one byte, V bit (voice activity) and a
 * 7-bit level in -dBov (0 = loudest, 127 = silence).
 *
 * The worker feeds it once per RTP packet of an audio producer that at least one
 * RtpObserver measures (O(1), no allocation, no lock), and takes a summary periodically
 * (node/rtp_observer.h consumes the summaries where the room's state lives).
 *
 * Thread affinity: an accumulator belongs to ONE worker thread (the producer's). It is a
 * plain value embedded in its owner; no resources to free. */
#ifndef MF_AUDIO_LEVEL_H
#define MF_AUDIO_LEVEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/rtp/rtp.h"

#define MF_AUDIO_LEVEL_SILENCE 127u /* -127 dBov: what RFC 6464 calls digital silence */

typedef struct {
  uint32_t observers; /* how many observers measure this producer; 0: not fed */
  uint64_t sum;       /* sum of -dBov levels since the last take */
  uint32_t count;     /* packets that carried a valid level since the last take */
  uint32_t voice;     /* of those, packets with the V bit set */
  uint64_t malformed; /* extension present but not exactly one byte (lifetime) */
} mf_audio_level_t;

/* What one period of packets said. */
typedef struct {
  uint64_t sum;   /* of -dBov values (0..127 each) */
  uint32_t count; /* 0: no packet with a level (the producer sent nothing, or no ext) */
  uint32_t voice; /* packets whose V bit was set */
} mf_audio_level_summary_t;

/* Parses one element value. False (outputs untouched) unless len is exactly 1, as
 * mediasoup does: a longer element is not this extension. */
bool mf_audio_level_parse(const uint8_t *value, size_t len, uint8_t *dbov, bool *voice);

/* Adds one level (dbov 0..127, larger values are clamped to 127). */
void mf_audio_level_add(mf_audio_level_t *a, uint8_t dbov, bool voice);

/* The per-packet hook: reads element ext_id (0: none negotiated; nothing happens) of a
 * packet that passed mf_rtp_parse. A packet without the element is not counted. */
void mf_audio_level_on_rtp(mf_audio_level_t *a, const mf_rtp_packet_t *pkt, uint8_t ext_id);

/* The levels since the previous take; the period starts over. */
void mf_audio_level_take(mf_audio_level_t *a, mf_audio_level_summary_t *out);

/* Average -dBov of a summary rounded to nearest (0..127); 127 when count is 0. */
uint8_t mf_audio_level_average(const mf_audio_level_summary_t *s);

#endif
