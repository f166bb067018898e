/* WHIP ingest (RFC 9725) and WHEP playback (draft-ietf-wish-whep) on the node's API server.
 *
 *   POST   /whip/<room>               SDP offer (sendonly audio/video) -> 201 + SDP answer,
 *                                     Location: /whip/<room>/<resource>; one WebRtcTransport
 *                                     and one producer per media section, announced to the
 *                                     room like any other producer.
 *   POST   /whep/<room>               recvonly offer -> consumers of the room's producers,
 *                                     matched to the offered sections by kind, in order.
 *   POST   /whep/<room>/<producerId>  the same for one producer.
 *   DELETE /whip|whep/<room>/<resource>  ends it (200); unknown -> 404.
 *   PATCH  ... 405 (ICE-lite: the answer carries our candidates, no trickle);
 *   OPTIONS ... 204 with Accept-Post.
 * Authorization: "Bearer <JWT>" as for the WebSocket API (room-scoped), unless the node
 * runs in dev mode.
 *
 * Each resource is a virtual API session (node/api/http_server.h): the module sends the
 * same JSON methods a mediasoup-client application would (router.join,
 * router.createWebRtcTransport, transport.connect, transport.produce/consume, ...) and
 * reads the answers, so placement, room announcements and cleanup are the gateway's.
 * A resource ends on DELETE, or when its transport's DTLS closes/fails, ICE consent
 * expires, or the router closes.
 *
 * Threads: HTTP handlers run on nng's threads and only validate and queue; one thread of
 * this module runs every resource's steps. start/stop/destroy belong to the thread that
 * owns the API server (the gateway's). */
#ifndef MF_WHIP_H
#define MF_WHIP_H

#include <stddef.h>

#include "common/err.h"
#include "node/api/http_server.h"

typedef struct mf_whip mf_whip_t;

#define MF_WHIP_BODY_MAX (64u * 1024) /* nng refuses bigger bodies (400) */

/* Registers the /whip and /whep handlers on server's HTTP server. */
mf_err_t mf_whip_start(mf_api_server_t *server, mf_whip_t **out);
/* Ends every resource (their transports close) and answers pending requests with 503.
 * Call before mf_api_server_destroy. NULL is a no-op. */
void mf_whip_stop(mf_whip_t *whip);
/* Frees the module; call after mf_api_server_destroy (no handler can run any more). */
void mf_whip_destroy(mf_whip_t *whip);
/* Resources established now (WHIP + WHEP). Any thread. */
size_t mf_whip_count(mf_whip_t *whip);

#endif
