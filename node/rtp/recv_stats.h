/* Receive-side statistics of one RTP stream (one producer stream, one SSRC): RFC 3550
 * Appendix A.1 sequence tracking, A.3 loss accounting, A.8 interarrival jitter, the data of
 * an RR report block (LSR/DLSR from the sender's SR), packet counters and a 0..10 quality
 * score in the style of mediasoup's RtpStreamRecv.
 *
 * Ownership and threads: the struct is plain data owned by the caller (embed it in the
 * stream object); nothing here allocates, locks, logs or reads a clock. Every function
 * takes the caller's monotonic time (now_ms / arrival_ms, e.g. mf_clock_now_ms()) so tests
 * are deterministic. A stats object belongs to ONE worker thread.
 *
 * Sequence validation (A.1), constants and the choices made for WebRTC:
 *  - MAX_DROPOUT 3000: a forward jump below it is accepted (a gap = loss).
 *  - MAX_MISORDER 1500 (mediasoup's value; the RFC example uses 100): WebRTC receivers
 *    ask for retransmissions (NACK/RTX) of packets up to about a second old, and a repaired
 *    packet must still be taken as "late" rather than as a restart.
 *  - A jump beyond those is held as "bad": the packet is rejected, and if the next packet
 *    is exactly its successor the sender restarted; the tracker resyncs (re-bases loss).
 *    Retransmitted (RTX) packets are rejected the same way but never arm or confirm a
 *    restart (a late burst of retransmissions of consecutive packets is not one).
 *  - Probation (MIN_SEQUENTIAL 2 in the RFC): mediasoup uses none, because WebRTC SSRCs are
 *    signalled in advance and dropping a stream's first packet (often the start of a key
 *    frame) is costly. Pass MF_RTP_RECV_PROBATION_NONE for that; MF_RTP_RECV_PROBATION_RFC
 *    gives the RFC behaviour (packets are rejected until 2 arrive in sequence).
 *  - Unlike the RFC, duplicates are detected (bitmap of the last 2048 sequence numbers) and
 *    are not counted as received, and a late packet older than the first one received
 *    moves the base back (it was expected too), so cumulative loss is never negative.
 *  - Jitter uses the caller's millisecond arrival times converted to the RTP clock (as
 *    libwebrtc and mediasoup do); the 1 ms granularity adds under 1 ms of noise.
 */
#ifndef MF_RTP_RECV_STATS_H
#define MF_RTP_RECV_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/rtp/rtcp.h"

#define MF_RTP_RECV_MAX_DROPOUT 3000
#define MF_RTP_RECV_MAX_MISORDER 1500
#define MF_RTP_RECV_PROBATION_NONE 0
#define MF_RTP_RECV_PROBATION_RFC 2 /* RFC 3550 MIN_SEQUENTIAL */

/* Duplicate detection window in sequence numbers (power of two, > MAX_MISORDER). */
#define MF_RTP_RECV_DUP_WINDOW 2048

/* Score samples kept for the weighted average (mediasoup: 24). */
#define MF_RTP_RECV_SCORE_HISTORY 24

/* Default time without any packet after which update_score reports 0 (mediasoup checks
 * inactivity every 1500 ms; use more, e.g. 5000, for audio with DTX). */
#define MF_RTP_RECV_INACTIVITY_MS 1500

/* What mf_rtp_recv_stats_on_packet decided about a packet. Forward the packet only when
 * mf_rtp_recv_result_is_valid() says so. */
typedef enum {
  MF_RTP_RECV_NEW = 0,    /* newest so far (in order or after a gap) */
  MF_RTP_RECV_LATE,       /* older than the newest, not seen before (reordered / repaired) */
  MF_RTP_RECV_RESYNC,     /* second packet after a big jump: sender restarted, re-based */
  MF_RTP_RECV_DUPLICATE,  /* already received: drop */
  MF_RTP_RECV_BAD_SEQ,    /* big jump (or too old): dropped until confirmed by a successor */
  MF_RTP_RECV_PROBATION,  /* still in probation: dropped */
} mf_rtp_recv_result_t;

typedef struct {
  /* --- configuration (set by init; inactivity_ms may be changed afterwards) */
  uint32_t ssrc;
  uint32_t clock_rate;      /* RTP clock in Hz, e.g. 90000 or 48000 */
  uint32_t inactivity_ms;

  /* --- A.1 sequence state */
  bool started;
  uint16_t max_seq;         /* highest sequence number seen */
  uint32_t cycles;          /* shifted count of wraparounds (multiple of 65536) */
  int64_t base_ext;         /* extended base sequence number (may go below 0 when an
                               early packet arrives late) */
  uint32_t bad_seq;         /* last 'bad' seq + 1, or 65537 (never matches) */
  uint8_t probation;        /* sequential packets still needed */
  uint8_t probation_init;   /* what init/resync sets probation to */
  uint64_t dup_bits[MF_RTP_RECV_DUP_WINDOW / 64];

  /* --- A.3 loss accounting (reset on resync) */
  uint32_t received;        /* unique valid packets since base */
  uint32_t expected_prior;  /* snapshot at the last report block */
  uint32_t received_prior;
  uint8_t fraction_lost;    /* of the last report-block interval, /256 */

  /* --- A.8 jitter */
  bool has_transit;
  uint32_t last_transit;    /* arrival (RTP units) - RTP timestamp, mod 2^32 */
  uint32_t jitter_q4;       /* jitter * 16 in RTP units (RFC fixed-point form) */

  /* --- last SR from the sender of this stream */
  bool has_sr;
  uint32_t lsr;             /* middle 32 bits of its NTP timestamp */
  uint64_t sr_recv_ms;      /* when it arrived (caller's clock) */
  uint64_t sr_ntp;          /* NTP 32.32 <-> RTP mapping, for A/V sync */
  uint32_t sr_rtp_ts;

  /* --- counters (never reset; NACK/PLI/FIR are incremented by the caller) */
  uint64_t packets;         /* valid packets (media + repaired), not duplicates/rejected */
  uint64_t bytes;           /* bytes of those packets (whatever size the caller passes) */
  uint64_t packets_retransmitted; /* RTX packets received, any outcome */
  uint64_t packets_repaired;      /* RTX packets that filled a hole */
  uint64_t packets_duplicated;
  uint64_t packets_discarded;     /* BAD_SEQ or PROBATION */
  uint32_t nack_count;      /* NACK packets sent for this stream */
  uint32_t nack_packets;    /* sequence numbers requested in them */
  uint32_t pli_count;
  uint32_t fir_count;
  uint64_t last_packet_ms;  /* arrival of the last valid packet */

  /* --- score */
  uint8_t score;            /* 0..10: 0 until the first valid packet, then 10 until the
                               first update_score; 0 again while inactive */
  bool inactive;            /* no valid packet yet, or none for inactivity_ms */
  uint8_t score_history[MF_RTP_RECV_SCORE_HISTORY];
  uint8_t score_count;      /* samples in score_history (oldest first) */
  uint32_t expected_prior_score;
  uint32_t received_prior_score;
  uint64_t repaired_prior_score;
  uint64_t retransmitted_prior_score;
} mf_rtp_recv_stats_t;

/* Resets everything. probation: MF_RTP_RECV_PROBATION_NONE (mediasoup, the usual choice)
 * or MF_RTP_RECV_PROBATION_RFC (or any number of sequential packets to require, <= 255).
 * clock_rate 0 disables jitter. */
void mf_rtp_recv_stats_init(mf_rtp_recv_stats_t *s, uint32_t ssrc, uint32_t clock_rate,
                            uint8_t probation);

static inline bool mf_rtp_recv_result_is_valid(mf_rtp_recv_result_t r) {
  return r == MF_RTP_RECV_NEW || r == MF_RTP_RECV_LATE || r == MF_RTP_RECV_RESYNC;
}

/* One received packet of this stream. For a retransmission pass the ORIGINAL (decoded)
 * sequence number and timestamp with is_rtx = true: it counts as retransmitted, as
 * repaired when it fills a hole, and is left out of jitter. size: bytes to count (e.g. the
 * whole RTP packet). arrival_ms: the caller's monotonic receive time.
 * Jitter (A.8) is updated only by non-RTX packets that advance the highest sequence number
 * (as libwebrtc does: a late packet's transit says nothing new) and is skipped when the
 * transit changes by 5 s or more (a timestamp jump, not network jitter). */
mf_rtp_recv_result_t mf_rtp_recv_stats_on_packet(mf_rtp_recv_stats_t *s, uint16_t seq,
                                                 uint32_t rtp_ts, size_t size,
                                                 uint64_t arrival_ms, bool is_rtx);

/* A.3 values. Extended highest sequence number: cycles + max_seq. expected: ext_max -
 * base + 1 (0 before the first valid packet). lost: expected - received (may be negative
 * only in odd resync cases; not clamped here). */
uint32_t mf_rtp_recv_stats_ext_max_seq(const mf_rtp_recv_stats_t *s);
uint32_t mf_rtp_recv_stats_expected(const mf_rtp_recv_stats_t *s);
int64_t mf_rtp_recv_stats_lost(const mf_rtp_recv_stats_t *s);
/* Current jitter in RTP timestamp units (the value for the report block). */
uint32_t mf_rtp_recv_stats_jitter(const mf_rtp_recv_stats_t *s);

/* The sender's SR for this stream arrived at now_ms: remembers LSR (middle 32 bits of the
 * NTP time) and its arrival, and the NTP <-> RTP mapping. */
void mf_rtp_recv_stats_on_sr(mf_rtp_recv_stats_t *s, uint32_t ntp_sec, uint32_t ntp_frac,
                             uint32_t rtp_ts, uint64_t now_ms);

/* Fills a report block for our RR/SR about this stream and starts a new fraction-lost
 * interval (A.3 expected_prior/received_prior snapshot), so call it once per report sent.
 * cumulative_lost is clamped to the signed 24-bit range; LSR and DLSR are 0 before the
 * first SR; DLSR = (now_ms - SR arrival) in 1/65536 s, 0 if now_ms is earlier, saturated
 * at UINT32_MAX. Returns false (the block then has zero loss fields and sequence number,
 * and no interval is started) when no valid packet has been received yet, e.g. during
 * probation; RFC 3550 says not to report on such a source, so the caller should skip it. */
bool mf_rtp_recv_stats_fill_report_block(mf_rtp_recv_stats_t *s, uint64_t now_ms,
                                         mf_rtcp_report_block_t *out);

/* Maps an RTP timestamp of this stream to NTP 32.32 time using the last SR (timestamps
 * within +-2^31 ticks of the SR's, i.e. wrap-aware). False before the first SR or with
 * clock_rate 0. */
bool mf_rtp_recv_stats_rtp_to_ntp(const mf_rtp_recv_stats_t *s, uint32_t rtp_ts,
                                  uint64_t *ntp);

/* Score 0..10 from the loss since the previous call (call once per interval, e.g. every
 * RR or every 2.5 s; its snapshot is separate from the report block's). Returns the new
 * score (also in s->score). Like mediasoup, the first valid packet (and the first after a
 * period of inactivity) resets the score to 10 with an empty history, and inactivity
 * resets it to 0. Formula, per interval (mediasoup RtpStreamRecv::UpdateScore,
 * adapted to counters where repaired packets are already counted as received):
 *   no valid packet for inactivity_ms            -> score 0, history cleared
 *   expected == 0 (nothing new expected)          -> sample 10
 *   lost      = max(0, expected - received)       (still missing)
 *   repaired  = min(repaired, received); rtx = max(retransmitted, repaired)
 *   w         = (1 / (1 + repaired/received))^4 * (repaired / rtx)   (0 if rtx == 0)
 *   lost_eff  = lost + repaired * (1 - w)         (a repair costs a little: latency)
 *   sample    = round(((expected - lost_eff) / expected)^4 * 10), clamped to 0..10
 * The score is then the weighted average of the last 24 samples, newer samples weighing
 * more (weights 1, 2, 3, ... oldest to newest), rounded (mediasoup RtpStream::UpdateScore).
 * E.g. steady 5 % loss without RTX gives 8, 10 % gives 7, 20 % gives 4. */
uint8_t mf_rtp_recv_stats_update_score(mf_rtp_recv_stats_t *s, uint64_t now_ms);

/* Round-trip time from a report block that a remote receiver sent about OUR stream:
 * now_ntp is our wall clock as NTP 32.32 when the RR arrived (mf_clock_wall_ntp()).
 * RTT = middle32(now_ntp) - lsr - dlsr, in 1/65536 s, converted to ms (rounded).
 * Returns -1 when lsr is 0 (the receiver has no SR of ours) or the result is negative
 * (clock trouble). */
int64_t mf_rtp_rtt_from_report(uint32_t lsr, uint32_t dlsr, uint64_t now_ntp);

#endif
