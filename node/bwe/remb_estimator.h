/* Receive-side estimate for REMB (draft-alvestrand-rmcat-remb), used for a publisher that
 * negotiated goog-remb but not transport-wide-cc (with transport-cc the publisher estimates
 * itself from our TWCC feedback and REMB is not sent).
 *
 * Deliberately simple, not libwebrtc's receive-side delay estimator: once per interval
 * (about 1 s) the incoming bitrate R of the transport's media is measured and
 *   - fraction lost > 10%:  estimate = R * (1 - 0.5 * loss)   (back off, as GoogCC does);
 *   - otherwise:            estimate = R * MF_REMB_GROWTH     (room to ramp up by 50%/s);
 * bounded to [min_bps, max_bps]. Before the first full interval the estimate is max_bps,
 * so a publisher is not throttled while it starts. The REMB carries the producers' SSRCs.
 *
 * Not thread-safe: ONE worker thread owns an estimator. No clock of its own (now_ms). */
#ifndef MF_REMB_ESTIMATOR_H
#define MF_REMB_ESTIMATOR_H

#include <stdbool.h>
#include <stdint.h>

#define MF_REMB_INTERVAL_MS 1000
#define MF_REMB_GROWTH 1.5
#define MF_REMB_DEFAULT_MIN_BPS 100000u
#define MF_REMB_DEFAULT_MAX_BPS 10000000u

typedef struct {
  uint32_t min_bps, max_bps;
  uint64_t window_start_ms;
  uint64_t window_bytes;
  bool started;
  uint32_t rate_bps;     /* incoming bitrate over the last full window (0 before) */
  uint32_t estimate_bps; /* what the next REMB says */
} mf_remb_estimator_t;

/* min_bps/max_bps 0: the defaults above. */
void mf_remb_estimator_init(mf_remb_estimator_t *e, uint32_t min_bps, uint32_t max_bps);
/* Every incoming RTP packet of the transport (whole packet size in bytes). */
void mf_remb_estimator_on_packet(mf_remb_estimator_t *e, uint32_t bytes, uint64_t now_ms);
/* Once per interval: closes the measuring window when at least MF_REMB_INTERVAL_MS long and
 * recomputes the estimate from its rate and fraction_lost (RTCP fixed point, /256, the worst
 * of the transport's streams). Returns the estimate to send. */
uint32_t mf_remb_estimator_update(mf_remb_estimator_t *e, uint8_t fraction_lost,
                                  uint64_t now_ms);

#endif
