/* Send-side bandwidth estimation for one consumer transport, in the spirit of GoogCC
 * (libwebrtc's GoogCcNetworkController: TrendlineEstimator + AimdRateControl +
 * SendSideBandwidthEstimation), driven by transport-wide congestion control feedback.
 *
 * Use:
 *   - for every RTP packet sent on the transport, call mf_send_estimator_on_send: it returns
 *     the transport-wide sequence number to write into the transport-wide-cc header
 *     extension and remembers (send time, size) in a fixed ring (no allocation);
 *   - for every RTCP RTPFB FMT 15 from the receiver, parse it with mf_rtcp_parse_twcc and
 *     pass the result to mf_send_estimator_on_feedback;
 *   - optionally pass the RTT from receiver reports (mf_send_estimator_set_rtt);
 *   - read the estimate with mf_send_estimator_bitrate and hand it to the bitrate allocator.
 *
 * The estimate is min(delay-based, loss-based), clamped to [min_bps, max_bps]:
 *
 * Delay-based. Acknowledged packets are grouped by send time (a group: packets sent within
 * 5 ms of its first). For consecutive groups the one-way delay gradient is
 *   d = (arrival(last of group i) - arrival(last of group i-1))
 *     - (send(last of group i) - send(last of group i-1)).
 * d is accumulated, smoothed (EWMA 0.9) and a least-squares slope ("trend") is fitted over
 * the last 20 (arrival time, smoothed delay) points. The trend, scaled by
 * min(groups, 60) * 4, is compared with an adaptive threshold (initially 12.5 ms, adapting
 * up at 0.0087 and down at 0.039 per ms towards the signal, within 6..600): above it for
 * more than 10 ms and two groups while still rising → OVERUSE; below minus it → UNDERUSE;
 * else NORMAL. Then AIMD: OVERUSE → the rate drops to 0.85 × the acknowledged bitrate (the
 * receive rate measured from feedback; never above the current rate), at most once per
 * max(RTT, 200 ms); UNDERUSE → hold (the queue is draining); NORMAL → increase:
 * multiplicatively by 8 % per second while far from the link capacity learnt at past
 * overuses, additively (about one packet per RTT + 100 ms) near it.
 *
 * Loss-based. Over windows of at least 20 reported packets: loss > 10 % → rate × (1 - 0.5 ×
 * loss), at most once per 300 ms + RTT; loss < 2 % → +8 % from the current estimate, at most
 * once per second; in between hold.
 *
 * The estimate is not capped by the acknowledged bitrate: when the transport sends less
 * than the estimate (application limited), the estimate keeps growing to max_bps, so the
 * allocator may try a higher layer; an overuse then brings it back to what was delivered.
 * (No probing is done; the caller could send RTX/padding probes to confirm headroom.)
 *
 * Pure function of its inputs: no clock of its own (now_us from one monotonic clock, e.g.
 * mf_clock_now_us), no I/O. Not thread-safe: ONE worker thread owns an estimator (the
 * thread of its transport). on_send is O(1); on_feedback is O(packets in the feedback). */
#ifndef MF_SEND_ESTIMATOR_H
#define MF_SEND_ESTIMATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "node/rtp/rtcp.h"

/* Sent packets remembered (a power of two, dividing 65536): 1.1 s at max_bps's default of
 * 20 Mbit/s (~1,800 packets/s), where feedback comes every 100 ms, one RTT after the send.
 * 16 B each, per subscriber transport. */
#define MF_SEND_EST_RING 2048
#define MF_SEND_EST_TREND_WINDOW 20

typedef struct {
  uint32_t start_bps; /* 0: 1 Mbit/s */
  uint32_t min_bps;   /* 0: 50 kbit/s */
  uint32_t max_bps;   /* 0: 20 Mbit/s */
} mf_send_estimator_config_t;

typedef enum {
  MF_BWE_USAGE_NORMAL = 0,
  MF_BWE_USAGE_UNDERUSE,
  MF_BWE_USAGE_OVERUSE,
} mf_bwe_usage_t;

typedef struct {
  uint32_t target_bps;   /* mf_send_estimator_bitrate */
  uint32_t delay_bps;    /* delay-based estimate */
  uint32_t loss_bps;     /* loss-based estimate */
  uint32_t acked_bps;    /* receive rate measured from feedback (0 until known) */
  mf_bwe_usage_t usage;  /* last detector state */
  double trend;          /* last modified trend (ms) */
  double threshold;      /* adaptive threshold (ms) */
  double loss;           /* last loss fraction used (0..1) */
  uint64_t sent, acked, lost, unknown; /* packets: stamped, reported received, reported
                                          lost, feedback entries we have no record of */
  uint64_t overuses, feedbacks;
} mf_send_estimator_stats_t;

typedef struct mf_send_estimator mf_send_estimator_t;

/* cfg may be NULL (all defaults). min > max or start outside [min,max] are clamped. */
mf_err_t mf_send_estimator_create(const mf_send_estimator_config_t *cfg,
                                  mf_send_estimator_t **out);
void mf_send_estimator_destroy(mf_send_estimator_t *e);

/* Records a packet about to be sent (size: whole RTP packet in bytes) and returns its
 * transport-wide sequence number (consecutive from 1, wrapping at 65536). */
uint16_t mf_send_estimator_on_send(mf_send_estimator_t *e, uint32_t size, uint64_t now_us);

/* Processes one parsed feedback; pkts/n: the entries mf_rtcp_parse_twcc wrote (n may be
 * less than fb->status_count when the caller's array was short). Entries for numbers never
 * sent (or older than the ring) are ignored; a packet reported twice counts once (reported
 * lost then received counts as received). */
void mf_send_estimator_on_feedback(mf_send_estimator_t *e, const mf_rtcp_twcc_t *fb,
                                   const mf_rtcp_twcc_packet_t *pkts, size_t n,
                                   uint64_t now_us);

/* Round-trip time from RTCP receiver reports (0: unknown, 100 ms assumed). */
void mf_send_estimator_set_rtt(mf_send_estimator_t *e, uint32_t rtt_ms);

uint32_t mf_send_estimator_bitrate(const mf_send_estimator_t *e);
void mf_send_estimator_get_stats(const mf_send_estimator_t *e, mf_send_estimator_stats_t *out);

#endif
