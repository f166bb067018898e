/* Retransmission buffer of one consumer stream, indexed by OUTPUT sequence number
 * (mediasoup's RtpRetransmissionBuffer + the resend throttle of RtpStreamSend).
 *
 * The consumer inserts every packet it sends (after rewriting) and looks packets up when the
 * remote endpoint NACKs them. The store keeps a window of at most `capacity` consecutive
 * sequence numbers ending at the newest one inserted:
 *   - insert takes a reference on the buffer (mf_buf_ref); the store unrefs it when the
 *     packet is evicted (older than max_age_ms, or pushed out of the window when full),
 *     replaced, cleared or the store destroyed;
 *   - a seq far ahead (>= capacity past the newest) clears the whole buffer first, and so
 *     does a seq older than the newest whose timestamp is newer than the newest's (the
 *     sequence restarted or jumped by more than half the seq space; mediasoup does the
 *     same); any other seq older than the newest is stored if it still fits the window
 *     (reordering), otherwise refused;
 *   - age is measured with the caller's clock at insert time (now_ms), not with RTP
 *     timestamps, so it does not depend on the clock rate;
 *   - mf_rtx_store_resend applies the NACK-storm throttle: a packet already resent is not
 *     resent again until rtt_ms (MF_RTX_STORE_DEFAULT_RTT_MS when the RTT is unknown, i.e.
 *     0) has passed since its last resend. This is mediasoup's rule ("don't resend the
 *     packet if it was resent in the last RTT ms"): a second NACK within one RTT was sent
 *     before the first retransmission could have arrived.
 *
 * Buffers are borrowed by callers of get/resend: valid until the next insert/clear/destroy.
 * The stored buffer must not be modified after insert (other holders may share it); the
 * output seq/ts are kept in the entry so a caller storing a shared input buffer can rebuild
 * the header.
 *
 * Memory follows the packet rate, not the limit: the slots start at
 * MF_RTX_STORE_INITIAL_SLOTS and double (up to capacity) when the window needs more, so a
 * 600 kbit/s stream keeps ~512 slots (20 kB) of its 2,500. That is the only allocation after
 * create, at most log2(capacity / 256) times per store; without memory the store keeps its
 * slots and evicts as if full.
 *
 * Not thread-safe: ONE worker thread owns each store (the same thread that owns the buffer
 * pool). No clock of its own, O(1) per insert/get except eviction (amortised O(1)), a
 * growth and the clear of a far jump (O(capacity), rare). */
#ifndef MF_RTX_STORE_H
#define MF_RTX_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/bufpool.h"
#include "common/err.h"

#define MF_RTX_STORE_DEFAULT_CAPACITY 2500 /* video: 2 s up to 1,250 packets/s (~10 Mbit/s) */
/* Audio: 1 s up to 256 packets/s (Opus sends 50, or 100 with 10 ms frames). 2,500 slots
 * (40 B each) made an audio consumer's store 100 kB for ~50 packets. */
#define MF_RTX_STORE_AUDIO_CAPACITY 256
#define MF_RTX_STORE_MAX_CAPACITY 32768 /* so the window is unambiguous modulo 2^16 */
#define MF_RTX_STORE_INITIAL_SLOTS 256
#define MF_RTX_STORE_MAX_AGE_VIDEO_MS 2000
#define MF_RTX_STORE_MAX_AGE_AUDIO_MS 1000
#define MF_RTX_STORE_DEFAULT_RTT_MS 100 /* throttle interval when the RTT is unknown */

typedef struct mf_rtx_store mf_rtx_store_t;

typedef struct {
  mf_buf_t *buf;     /* borrowed */
  uint16_t seq;      /* output seq */
  uint32_t ts;       /* output timestamp given at insert */
  uint32_t aux;      /* the caller's per-packet value given at insert */
  uint64_t stored_ms;
  uint32_t resends;  /* times handed out by mf_rtx_store_resend, this one included */
} mf_rtx_item_t;

typedef enum {
  MF_RTX_RESEND_OK = 0,    /* *item filled: retransmit it */
  MF_RTX_RESEND_MISSING,   /* never stored, evicted or too old */
  MF_RTX_RESEND_THROTTLED, /* resent less than one RTT ago: ignore this NACK */
} mf_rtx_resend_result_t;

typedef struct {
  uint32_t capacity;
  uint32_t max_age_ms;
  uint32_t stored;        /* packets held now */
  uint64_t inserted;
  uint64_t rejected;      /* inserts refused: too old for the window, or a duplicate */
  uint64_t hits;          /* get/resend that found the packet (resend: OK results) */
  uint64_t misses;        /* get/resend that did not */
  uint64_t throttled;     /* resend refused by the RTT throttle */
  uint64_t evicted_age;   /* removed because older than max_age_ms */
  uint64_t evicted_full;  /* pushed out of the window by newer packets (or a far jump) */
  uint64_t cleared;       /* removed by mf_rtx_store_clear or a sequence restart */
  uint64_t grown;         /* times the slots were doubled */
} mf_rtx_store_stats_t;

/* capacity 1..MF_RTX_STORE_MAX_CAPACITY (0 = default 2500), max_age_ms > 0 (use the
 * VIDEO/AUDIO constants). MF_ERR_INVALID_ARG, MF_ERR_NO_MEMORY. */
mf_err_t mf_rtx_store_create(uint32_t capacity, uint32_t max_age_ms, mf_rtx_store_t **out);

/* Unrefs every stored buffer and frees the store. NULL is ignored. */
void mf_rtx_store_destroy(mf_rtx_store_t *store);

/* Stores buf under output `seq`. Evicts packets older than max_age_ms first. Returns true
 * when stored (a reference was taken); false when refused (no reference taken): seq too
 * old for the window, or a duplicate (same seq and ts already stored). The same seq with a
 * different ts replaces the old entry (the stream restarted), as mediasoup does. `aux` is
 * kept with the packet and handed back by mf_rtx_store_resend (e.g. the codec picture-id
 * rewrite applied to it, so a retransmission repeats it). */
bool mf_rtx_store_insert(mf_rtx_store_t *store, mf_buf_t *buf, uint16_t seq, uint32_t ts,
                         uint32_t aux, uint64_t now_ms);

/* Borrowed buffer for `seq` if present and not older than max_age_ms, else NULL. Does not
 * count as a resend. */
mf_buf_t *mf_rtx_store_get(mf_rtx_store_t *store, uint16_t seq, uint64_t now_ms);

/* For a NACKed seq: like get plus the throttle above. On MF_RTX_RESEND_OK fills *item
 * (may be NULL) and records the resend (count and time). rtt_ms 0 = unknown. */
mf_rtx_resend_result_t mf_rtx_store_resend(mf_rtx_store_t *store, uint16_t seq,
                                           uint64_t now_ms, uint32_t rtt_ms,
                                           mf_rtx_item_t *item);

/* Unrefs everything (e.g. when the consumer's stream restarts). */
void mf_rtx_store_clear(mf_rtx_store_t *store);

void mf_rtx_store_get_stats(const mf_rtx_store_t *store, mf_rtx_store_stats_t *out);

#endif
