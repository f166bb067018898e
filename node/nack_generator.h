/* NACK generation on the receive side of a producer stream (mediasoup's NackGenerator).
 *
 * Fed with every RTP packet received on the stream (media and RTX-recovered, after SRTP
 * and RTX unwrapping, with the ORIGINAL media seq), it tracks the sequence numbers that are
 * missing and tells the caller which ones to NACK and when:
 *   - a packet newer than the newest seen adds the gap (newest+1 .. seq-1) to the missing
 *     list; a packet older than the newest removes its entry (it was reordered or repaired);
 *   - a NACK for a missing seq is first due initial_delay_ms after the gap was detected
 *     (tolerates reordering; mediasoup NACKs at once, i.e. 0), then again every
 *     max(rtt, min_retry_interval_ms), or MF_NACK_GENERATOR_DEFAULT_RTT_MS while the RTT is
 *     unknown (0) as mediasoup does; when a seq NACKed max_retries times falls due again
 *     it is given up (stat `gave_up`, and the caller is told a keyframe is needed);
 *   - the missing list is bounded (max_entries). When a new gap would overflow it, entries
 *     older than the newest keyframe received are removed first (mediasoup's
 *     RemoveNackItemsUntilKeyFrame); if it still does not fit (or the gap alone is larger),
 *     the list is cleared and MF_NACK_GEN_KEYFRAME is returned;
 *   - keyframes matter only on overflow, as in mediasoup: a keyframe packet does NOT by
 *     itself drop older missing entries, because with H264 every fragment of an IDR may be
 *     flagged as keyframe and that would give up lost fragments of the keyframe itself;
 *     missing seqs more than 10000 behind the newest are forgotten (mediasoup's
 *     MaxPacketAge);
 *   - an RTX (recovered) packet newer than the newest seen does not move the stream forward
 *     (mediasoup: "do not let a packet pass if it's newer than last seen seq and came via
 *     RTX"); its seq is remembered (bounded) so the later gap does not NACK it.
 * Caller's forwarding rule (mediasoup RtpStreamRecv): forward every media packet; forward an
 * RTX-recovered packet only when on_packet returned MF_NACK_GEN_REPAIRED.
 * Pack the seqs from mf_nack_generator_get_nacks with mf_rtcp_nack_pack.
 *
 * Not thread-safe: ONE worker thread owns each generator. No allocation after create, no
 * clock of its own (pass now_ms). on_packet is O(log n) plus the size of a new gap;
 * get_nacks is O(missing entries), call it from a periodic timer (e.g. every 20-40 ms) and
 * optionally right after on_packet. */
#ifndef MF_NACK_GENERATOR_H
#define MF_NACK_GENERATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define MF_NACK_GENERATOR_DEFAULT_MAX_ENTRIES 1000
#define MF_NACK_GENERATOR_DEFAULT_MAX_RETRIES 10
#define MF_NACK_GENERATOR_DEFAULT_INITIAL_DELAY_MS 10
#define MF_NACK_GENERATOR_DEFAULT_MIN_RETRY_INTERVAL_MS 20
#define MF_NACK_GENERATOR_DEFAULT_RTT_MS 100
#define MF_NACK_GENERATOR_MAX_RECOVERED 32 /* remembered RTX packets ahead of the stream */

typedef struct mf_nack_generator mf_nack_generator_t;

typedef struct {
  uint32_t max_entries;           /* missing seqs tracked at once, 1..32768 */
  uint32_t max_retries;           /* NACKs per seq before giving up, >= 1 */
  uint32_t initial_delay_ms;      /* before the first NACK of a seq; 0 = immediately */
  uint32_t min_retry_interval_ms; /* lower bound of the retry interval when rtt is known */
} mf_nack_generator_config_t;

/* Flags returned by mf_nack_generator_on_packet. */
#define MF_NACK_GEN_REPAIRED 0x1u /* the packet was in the missing list (now removed) */
#define MF_NACK_GEN_KEYFRAME 0x2u /* the missing list overflowed and was cleared: request a
                                     keyframe from the sender */
#define MF_NACK_GEN_OLD 0x4u      /* older than the newest and not missing (reordered
                                     duplicate, or an RTX nobody asked for any more) */

typedef struct {
  uint64_t packets;             /* on_packet calls */
  uint64_t missing_added;       /* seqs that entered the missing list */
  uint64_t nacks;               /* seqs returned by get_nacks (retries included) */
  uint64_t repaired;            /* missing seqs that arrived later (REPAIRED) */
  uint64_t gave_up;             /* seqs dropped after max_retries */
  uint64_t cleared_by_keyframe; /* missing seqs dropped on overflow because a newer
                                   keyframe makes them useless */
  uint64_t overflows;           /* list clears with a keyframe request */
  uint32_t missing;             /* seqs in the list now */
} mf_nack_generator_stats_t;

/* Fills *config with the defaults above. */
void mf_nack_generator_config_default(mf_nack_generator_config_t *config);

/* config NULL = defaults. MF_ERR_INVALID_ARG for values out of range, MF_ERR_NO_MEMORY. */
mf_err_t mf_nack_generator_create(const mf_nack_generator_config_t *config,
                                  mf_nack_generator_t **out);
void mf_nack_generator_destroy(mf_nack_generator_t *g); /* NULL is ignored */

/* One received packet. is_recovered: it came through RTX. Returns MF_NACK_GEN_* flags
 * (0 for an ordinary in-order packet). */
unsigned mf_nack_generator_on_packet(mf_nack_generator_t *g, uint16_t seq, bool is_keyframe,
                                     bool is_recovered, uint64_t now_ms);

/* Writes up to max seqs whose NACK is due at now_ms into out (oldest first, ascending in
 * wraparound order), marks them sent and returns how many. A seq that was already NACKed
 * max_retries times and falls due again is given up instead (removed, not returned);
 * *keyframe_needed (may be NULL) is set to true when that happened in this call, else
 * false. Due seqs beyond max stay due for the next call. */
size_t mf_nack_generator_get_nacks(mf_nack_generator_t *g, uint64_t now_ms, uint32_t rtt_ms,
                                   uint16_t *out, size_t max, bool *keyframe_needed);

/* Forgets everything (the stream restarted, e.g. a new SSRC). Stats are kept. */
void mf_nack_generator_reset(mf_nack_generator_t *g);

void mf_nack_generator_get_stats(const mf_nack_generator_t *g, mf_nack_generator_stats_t *out);

#endif
