/* Receive side of transport-wide congestion control
 * (draft-holmer-rmcat-transport-wide-cc-extensions-01): what libwebrtc's
 * RemoteEstimatorProxy and mediasoup's TransportCongestionControlServer do.
 *
 * One recorder per transport whose producers negotiated the transport-wide-cc header
 * extension. Every incoming RTP packet carrying the extension is recorded as (transport-wide
 * sequence number, arrival time in µs); periodically (every MF_TWCC_FEEDBACK_INTERVAL_US, or
 * at once when MF_TWCC_MAX_PENDING packets wait) the caller builds feedback packets (RTCP
 * RTPFB FMT 15, written with mf_rtcp_write_twcc) and sends them to the publisher, whose
 * send-side estimator (GoogCC in browsers) adapts its bitrate to them.
 *
 * Sequence numbers are unwrapped to 64 bits; the arrival times live in a fixed ring of
 * MF_TWCC_RING slots indexed by the unwrapped number, so recording never allocates.
 *   - duplicates (a number already recorded) are ignored and counted;
 *   - reordering: a packet older than the newest is recorded in its slot; if its number was
 *     already reported (as lost) and it is at most MF_TWCC_MAX_REWIND behind the next
 *     unreported number, the next feedback starts again from it (libwebrtc does the same),
 *     otherwise it is counted as too old and dropped;
 *   - a jump forward by more than the ring restarts the window at the new packet (the packets
 *     in between are never reported: the sender times them out);
 *   - more than MF_TWCC_RING unreported packets: the oldest are dropped from the window.
 * Feedback covers [next unreported, newest received]; the reference time is the first
 * received packet's arrival in 64 ms units; each packet's delta is its arrival in 250 µs
 * ticks minus the previous received one (the first relative to the reference time), so the
 * sum of deltas reproduces the arrival ticks exactly. A packet is split when a delta does
 * not fit in 16 bits (a gap > 8 s) or after MF_TWCC_MAX_STATUSES statuses; fb_pkt_count
 * increments by one per packet built (mod 256).
 *
 * Not thread-safe: ONE worker thread owns a recorder. No clock of its own: the caller passes
 * arrival/now times in µs from one monotonic clock (mf_clock_now_us). on_packet is O(1)
 * amortised, build is O(statuses in the packet). */
#ifndef MF_TWCC_RECORDER_H
#define MF_TWCC_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "node/rtp/rtp.h"

#define MF_TWCC_RING 2048                 /* packets remembered (power of two) */
#define MF_TWCC_MAX_REWIND 256            /* how far a late packet may pull the window back */
#define MF_TWCC_MAX_STATUSES 512          /* statuses per feedback packet */
#define MF_TWCC_MAX_PENDING 100           /* build feedback at once beyond this */
#define MF_TWCC_FEEDBACK_INTERVAL_US 100000
/* Worst-case feedback packet size for MF_TWCC_MAX_STATUSES statuses (every delta large and
 * status vectors of 7): a buffer of this size never gets MF_ERR_FULL from build. */
#define MF_TWCC_FEEDBACK_MAX_BYTES (20 + 2 * (MF_TWCC_MAX_STATUSES / 7 + 1) + 2 * MF_TWCC_MAX_STATUSES + 4)

typedef struct {
  uint64_t packets;    /* recorded (first arrivals) */
  uint64_t duplicates; /* arrivals of an already recorded number */
  uint64_t too_old;    /* late arrivals outside the window, dropped */
  uint64_t overflowed; /* numbers dropped unreported because the ring filled */
  uint64_t feedbacks;  /* feedback packets built */
} mf_twcc_recorder_stats_t;

typedef struct {
  int64_t arrival_us[MF_TWCC_RING]; /* -1: not received; slot = unwrapped seq & (RING-1) */
  mf_rtp_seq_unwrapper_t unwrap;
  bool started;
  int64_t next_seq;   /* first number not yet reported (base of the next feedback) */
  int64_t max_seq;    /* newest number received */
  uint8_t fb_count;
  uint32_t media_ssrc; /* SSRC of the last recorded packet, put in the feedback */
  uint64_t last_feedback_us;
  mf_twcc_recorder_stats_t stats;
} mf_twcc_recorder_t;

/* The struct is large (~16 KiB): allocate it with the transport, not on the stack. */
void mf_twcc_recorder_init(mf_twcc_recorder_t *r);

/* Records one arrival. media_ssrc: the packet's SSRC. Returns true when enough packets are
 * pending that feedback should be built now rather than at the next interval. */
bool mf_twcc_recorder_on_packet(mf_twcc_recorder_t *r, uint16_t seq, uint32_t media_ssrc,
                                uint64_t arrival_us);

/* Packets received or lost that the next feedback would report (0 when nothing is due). */
size_t mf_twcc_recorder_pending(const mf_twcc_recorder_t *r);

/* True when feedback is pending and the interval since the last build has passed. */
bool mf_twcc_recorder_due(const mf_twcc_recorder_t *r, uint64_t now_us);

/* Builds ONE feedback packet (sender SSRC sender_ssrc) into buf and marks its numbers
 * reported. MF_ERR_EMPTY when nothing is pending; MF_ERR_FULL when cap is too small (nothing
 * is marked). Call repeatedly until MF_ERR_EMPTY to flush everything pending. */
mf_err_t mf_twcc_recorder_build(mf_twcc_recorder_t *r, uint32_t sender_ssrc, uint64_t now_us,
                                uint8_t *buf, size_t cap, size_t *out_len);

#endif
