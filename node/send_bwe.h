/* Downstream bandwidth control of one consumer transport: the send-side estimate from the
 * subscriber's transport-wide-cc feedback (node/bwe/send_estimator.h) distributed over the
 * transport's simulcast/SVC consumers by the bitrate allocator (node/bwe/bitrate_allocator.h),
 * which caps each consumer's layers (mf_layer_selector_set_limit). So a subscriber on a weak
 * link gets a lower layer instead of a frozen or lossy top layer.
 *
 * - Consumers stamp every RTP packet they send (media and RTX) with a transport-wide
 *   sequence number from mf_send_bwe_on_send when their rtpParameters carry the
 *   transport-wide-cc extension (the browser then answers with TWCC feedback).
 * - Every MF_SEND_BWE_ALLOC_MS the allocator runs: the budget is the estimate minus what the
 *   transport's other consumers (audio, single-layer video) sent in the last window; each
 *   layered consumer's layer bitrates are what it saw arrive per (spatial, temporal) layer in
 *   that window (measured by the consumer itself, so piped copies work too); the preferred
 *   layers are the maximum; priorities are equal (no consumer.setPriority yet).
 *
 * Owned by the router transport (created with its first consumer that negotiated
 * transport-cc, destroyed with the transport). ONE worker thread; nothing here runs per
 * packet except mf_send_bwe_on_send (O(1), no allocation). */
#ifndef MF_SEND_BWE_H
#define MF_SEND_BWE_H

#include <stdint.h>

#include "common/err.h"
#include "node/rtp/rtcp.h"

#define MF_SEND_BWE_ALLOC_MS 1000

typedef struct mf_send_bwe mf_send_bwe_t;
struct mf_router_transport;

mf_err_t mf_send_bwe_create(mf_send_bwe_t **out);
void mf_send_bwe_destroy(mf_send_bwe_t *b); /* NULL is ignored */

/* The transport-wide sequence number for a packet of `size` bytes sent now. */
uint16_t mf_send_bwe_on_send(mf_send_bwe_t *b, uint32_t size);

/* An RTCP RTPFB FMT 15 from the subscriber (malformed ones are counted and ignored). */
void mf_send_bwe_on_feedback(mf_send_bwe_t *b, const mf_rtcp_header_t *h);

/* RTT from the subscriber's receiver reports. */
void mf_send_bwe_set_rtt(mf_send_bwe_t *b, uint32_t rtt_ms);

/* Every router tick: runs the allocation over t's consumers when due. */
void mf_send_bwe_tick(struct mf_router_transport *t, uint64_t now_ms);

uint32_t mf_send_bwe_estimate(const mf_send_bwe_t *b);

#endif
