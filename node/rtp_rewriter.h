/* Per-consumer RTP sequence number and timestamp rewriting (mediasoup's SeqManager plus the
 * sync logic of SimpleConsumer/SimulcastConsumer).
 *
 * One rewriter per consumer stream. It maps each input packet that the SFU forwards to an
 * output sequence number and timestamp, so the consumer sees one continuous stream whatever
 * happens upstream (pause/resume, producer restart with a new SSRC, simulcast layer switch):
 *   - the first output seq/ts come from the config (pass random values);
 *   - while the input source is stable: out_seq = in_seq + offset, out_ts = in_ts + offset;
 *   - on a (re)sync the first output seq is (newest output seq + 1) and the output timestamp
 *     advances from the newest output timestamp by the wall-clock time elapsed since that
 *     packet was sent (converted with the clock rate, at least 1 tick), so players see
 *     neither a jump back nor a long gap. Exception: when the SSRC did not change (plain
 *     pause/resume) and the source's own timestamps still advance plausibly (by 1 tick up
 *     to elapsed time + 1 s), the old timestamp offset is kept, which preserves the
 *     producer's timing (lip sync with RTCP SR mapping), as mediasoup's SimpleConsumer does;
 *   - a sync happens on the first packet, after mf_rtp_rewriter_request_sync (resume, layer
 *     switch), and automatically when the input SSRC changes (so feed only packets of the
 *     source currently selected for this consumer: a late packet of the previous source
 *     would count as another switch; for video it just returns NEED_KEYFRAME, for audio
 *     it would resync). Video syncs only on a keyframe: packets before it return
 *     MF_RTP_REWRITE_NEED_KEYFRAME (drop it and ask the producer for a keyframe); audio
 *     syncs on any packet;
 *   - packets older than the last sync point are dropped (MF_RTP_REWRITE_DROP_OLD);
 *   - mf_rtp_rewriter_drop declares an input packet that will not be forwarded (e.g.
 *     padding-only) so the output has no hole: later inputs shift down by one. The memory
 *     of dropped inputs is bounded (MF_RTP_REWRITER_MAX_DROPPED); when it overflows, the
 *     oldest entry is forgotten and a late packet older than it is dropped as old rather
 *     than risk a duplicate output seq.
 * 16-bit seq and 32-bit ts wraparound are handled (input seqs are extended to 64 bits
 * internally; timestamps use modular arithmetic).
 *
 * Not thread-safe: ONE worker thread owns each rewriter and calls every function. No
 * allocation after mf_rtp_rewriter_create, no clock of its own (callers pass now_ms,
 * a monotonic millisecond clock), O(1) per in-order packet, O(MAX_DROPPED) worst case. */
#ifndef MF_RTP_REWRITER_H
#define MF_RTP_REWRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define MF_RTP_REWRITER_MAX_DROPPED 128

typedef struct mf_rtp_rewriter mf_rtp_rewriter_t;

typedef struct {
  bool is_video;        /* true: resync only on a keyframe; false (audio): on any packet */
  uint32_t clock_rate;  /* RTP clock of the consumer's codec in Hz (> 0), e.g. 90000, 48000 */
  uint16_t initial_seq; /* first output seq: pass a random value */
  uint32_t initial_ts;  /* first output timestamp: pass a random value */
} mf_rtp_rewriter_config_t;

typedef enum {
  MF_RTP_REWRITE_SEND = 0,       /* *out_seq / *out_ts are valid: send the packet */
  MF_RTP_REWRITE_DROP_OLD,       /* from before the last sync (or beyond dropped-input memory) */
  MF_RTP_REWRITE_DROP_DROPPED,   /* this input seq was declared dropped earlier */
  MF_RTP_REWRITE_NEED_KEYFRAME,  /* video waiting for a keyframe to sync: drop, request one */
} mf_rtp_rewrite_result_t;

typedef struct {
  bool started;          /* at least one packet was sent */
  bool sync_pending;     /* the next accepted packet will resync */
  uint32_t ssrc;         /* current input SSRC (valid when started) */
  uint16_t max_out_seq;  /* newest output seq sent (valid when started) */
  uint32_t max_out_ts;   /* newest output timestamp sent (valid when started) */
  uint64_t max_out_ms;   /* now_ms when max_out_ts was first sent */
  uint64_t sent;         /* MF_RTP_REWRITE_SEND results */
  uint64_t dropped_old;
  uint64_t dropped_dropped;    /* packets that had been declared dropped */
  uint64_t waiting_keyframe;   /* NEED_KEYFRAME results */
  uint64_t inputs_dropped;     /* successful mf_rtp_rewriter_drop calls */
  uint64_t syncs;              /* resyncs performed (not counting the first packet) */
  uint64_t ssrc_changes;
  uint64_t dropped_forgotten;  /* dropped-input entries forgotten on overflow */
  uint64_t hinted_syncs;       /* switches timed by mf_rtp_rewriter_hint_switch */
} mf_rtp_rewriter_stats_t;

/* MF_ERR_INVALID_ARG for NULL or clock_rate 0, MF_ERR_NO_MEMORY. */
mf_err_t mf_rtp_rewriter_create(const mf_rtp_rewriter_config_t *config, mf_rtp_rewriter_t **out);
void mf_rtp_rewriter_destroy(mf_rtp_rewriter_t *rw); /* NULL is ignored */

/* Maps one input packet. On MF_RTP_REWRITE_SEND writes *out_seq and *out_ts (otherwise
 * they are untouched). Call only for packets that will actually be sent; for packets the
 * SFU decides not to forward call mf_rtp_rewriter_drop instead. */
mf_rtp_rewrite_result_t mf_rtp_rewriter_rewrite(mf_rtp_rewriter_t *rw, uint32_t ssrc,
                                                uint16_t seq, uint32_t ts, bool is_keyframe,
                                                uint64_t now_ms, uint16_t *out_seq,
                                                uint32_t *out_ts);

/* Declares that input `seq` of `ssrc` will not be forwarded, so it takes no output seq.
 * Only inputs newer than every input seen so far on the current SSRC can be removed
 * (returns true); for older ones (their output slot is already implied by later packets),
 * another SSRC, or while a sync is pending, returns false and changes nothing. */
bool mf_rtp_rewriter_drop(mf_rtp_rewriter_t *rw, uint32_t ssrc, uint16_t seq);

/* The next packet resyncs (call on consumer resume and on a simulcast/SVC layer switch).
 * A change of input SSRC triggers it by itself. */
void mf_rtp_rewriter_request_sync(mf_rtp_rewriter_t *rw);

/* Timestamp alignment for the next switch onto `ssrc` (a simulcast layer switch): input
 * timestamp t of `ssrc` equals t + delta in the timeline of the current source (computed by
 * the caller from both sources' RTCP SR NTP<->RTP mappings). The sync keeps the output
 * timing of the new source exact instead of estimating it from wall-clock time, as long as
 * the result is plausible (strictly newer than the newest output timestamp and at most the
 * elapsed time + 1 s ahead); otherwise the wall-clock rule applies. Consumed by that sync. */
void mf_rtp_rewriter_hint_switch(mf_rtp_rewriter_t *rw, uint32_t ssrc, int32_t delta);

/* True when a video rewriter is waiting for a keyframe (sync pending). */
bool mf_rtp_rewriter_needs_keyframe(const mf_rtp_rewriter_t *rw);

void mf_rtp_rewriter_get_stats(const mf_rtp_rewriter_t *rw, mf_rtp_rewriter_stats_t *out);

#endif
