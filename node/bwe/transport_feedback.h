/* Congestion-control feedback a router transport sends to its publisher: the glue between
 * the router (node/router.c, which only calls these hooks) and twcc_recorder.h /
 * remb_estimator.h.
 *
 *   - a producer whose rtpParameters carry the transport-wide-cc header extension turns on
 *     TWCC: every incoming RTP packet with the extension is recorded and feedback is sent
 *     every MF_TWCC_FEEDBACK_INTERVAL_US (from the router's 20 ms timer) or at once when
 *     MF_TWCC_MAX_PENDING packets wait. The publisher (GoogCC in browsers) then estimates
 *     its own send bitrate from it;
 *   - a producer with goog-remb in a codec's rtcpFeedback and no transport-cc extension
 *     turns on REMB (see remb_estimator.h), sent in the transport's RR compound (~1 s)
 *     with the SSRCs the RR reports on. TWCC wins when both are on one transport.
 *
 * Created lazily (mf_transport_feedback_attach) when a producer negotiates either; a
 * transport with neither has no object (NULL) and pays nothing. Not thread-safe: ONE
 * worker thread (the transport's) owns it. on_rtp does no allocation. */
#ifndef MF_TRANSPORT_FEEDBACK_H
#define MF_TRANSPORT_FEEDBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "node/bwe/remb_estimator.h"
#include "node/bwe/twcc_recorder.h"
#include "node/rtp/rtcp.h"
#include "node/rtp_parameters.h"

/* Sends one RTCP packet (compound or single); the data is only valid during the call. */
typedef void (*mf_transport_feedback_send_fn)(void *ud, const uint8_t *data, size_t len);

typedef struct {
  uint8_t twcc_ext_id; /* 0: TWCC off */
  bool remb;           /* REMB on (only when TWCC is off) */
  uint64_t rtp_with_seq, rtp_without_seq; /* packets with/without the extension */
  uint64_t twcc_sent, remb_sent;          /* feedback packets sent */
  uint32_t remb_bps;                      /* last REMB value */
  mf_twcc_recorder_stats_t twcc;
} mf_transport_feedback_stats_t;

typedef struct mf_transport_feedback mf_transport_feedback_t;

/* Looks at a new producer's parameters: creates *fb if they negotiate transport-cc or
 * goog-remb and it does not exist yet, and updates the extension id (the newest producer's
 * wins: one BUNDLE transport uses one id). MF_ERR_NO_MEMORY leaves *fb NULL (no feedback:
 * the publisher falls back to its own loss-based estimate). */
mf_err_t mf_transport_feedback_attach(mf_transport_feedback_t **fb,
                                      const mf_rtp_parameters_t *params);
void mf_transport_feedback_destroy(mf_transport_feedback_t *fb);

/* Every decrypted incoming RTP packet of the transport. Sends TWCC feedback through send
 * at once when many packets are pending. */
void mf_transport_feedback_on_rtp(mf_transport_feedback_t *fb, const uint8_t *data,
                                  size_t len, uint64_t now_us, uint32_t sender_ssrc,
                                  mf_transport_feedback_send_fn send, void *ud);

/* From the router's periodic timer: sends TWCC feedback when due. */
void mf_transport_feedback_tick(mf_transport_feedback_t *fb, uint32_t sender_ssrc,
                                uint64_t now_us, mf_transport_feedback_send_fn send,
                                void *ud);

/* When the transport's RR is built (~1 s): appends a REMB for the RR's SSRCs, using the
 * worst fraction lost among them, if REMB is on. */
void mf_transport_feedback_add_remb(mf_transport_feedback_t *fb, mf_rtcp_compound_t *c,
                                    const mf_rtcp_rr_t *rr, uint64_t now_ms);

void mf_transport_feedback_get_stats(const mf_transport_feedback_t *fb,
                                     mf_transport_feedback_stats_t *out);

#endif
