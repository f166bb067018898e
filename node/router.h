/* Router, Producer and Consumer on one media worker (mediasoup's model, one worker).
 *
 * A router owns its WebRTC transports; a transport owns the producers and consumers made on
 * it. Media a producer receives is forwarded to every consumer of it: the consumer's copy
 * gets its own SSRC, payload type, sequence numbers and timestamps (continuous across
 * pause/resume), header extensions in the consumer's numbering (mid rewritten), and is
 * encrypted for its transport. RTCP: the router sends RR/NACK/PLI upstream to producers and
 * SR/SDES downstream for consumers, answers NACKs from its retransmission stores (RTX when
 * negotiated) and turns consumers' PLI/FIR into rate-limited keyframe requests.
 *
 * Thread affinity: everything here runs on the worker thread that owns the RTC server.
 * Ownership: the caller creates routers and closes them; every other object is owned by
 * its router and closed through these functions (closing cascades: transport -> its
 * producers and consumers; producer -> its consumers, which get "producerclose").
 * Pointers to closed objects are invalid at once. Events go to the router's event callback
 * as (event, target id, data): the callee takes ownership of `data` (may be NULL). */
#ifndef MF_ROUTER_H
#define MF_ROUTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "node/audio_level.h"
#include "node/ortc.h"
#include "node/pipe_hub.h"
#include "node/rtc_server.h"
#include "node/rtp_parameters.h"
#include "node/webrtc_transport.h"
#include "node/plain_transport.h"

typedef struct mf_router mf_router_t;
typedef struct mf_router_transport mf_router_transport_t;
typedef struct mf_producer mf_producer_t;
typedef struct mf_consumer mf_consumer_t;

/* Events: "icestatechange", "dtlsstatechange", "transportclose" (target: transport id);
 * "producerclose", "producerpause", "producerresume" (target: consumer id);
 * "score" (target: producer or consumer id); "pipekeyframerequest" (target: a piped
 * producer's id: its consumers need a keyframe, which only the origin can ask for). */
typedef void (*mf_router_event_fn)(void *ud, const char *event, const char *target_id,
                                   json_t *data);

#define MF_ROUTER_TICK_MS 20    /* NACK generation and keyframe retries */
#define MF_ROUTER_RTCP_MS 1000  /* RR upstream, SR + SDES downstream */

/* id NULL: a new UUID; otherwise the logical router's id (1..MF_ID_LEN bytes), so a shard
 * answers with the id the application knows. media_codecs NULL/0: the default list (opus,
 * VP8, VP9, H264, AV1). */
mf_err_t mf_router_create(mf_rtc_server_t *rtc, const char *id,
                          const mf_rtp_codec_capability_t *media_codecs, size_t codec_count,
                          mf_router_event_fn on_event, void *ud, char *err, size_t errsz,
                          mf_router_t **out);
void mf_router_close(mf_router_t *router);
const char *mf_router_id(const mf_router_t *router);
const mf_rtp_capabilities_t *mf_router_rtp_capabilities(const mf_router_t *router);

mf_err_t mf_router_create_webrtc_transport(mf_router_t *router, mf_router_transport_t **out);
mf_router_transport_t *mf_router_find_transport(mf_router_t *router, const char *id);
mf_webrtc_transport_t *mf_router_transport_webrtc(mf_router_transport_t *t);
const char *mf_router_transport_id(const mf_router_transport_t *t);
void mf_router_transport_close(mf_router_transport_t *t);

/* params are validated and normalised in place. Errors name what does not match. */
mf_err_t mf_router_produce(mf_router_transport_t *t, mf_media_kind_t kind,
                           mf_rtp_parameters_t *params, bool paused, char *err, size_t errsz,
                           mf_producer_t **out);
mf_producer_t *mf_router_find_producer(mf_router_t *router, const char *id);
bool mf_router_can_consume(mf_router_t *router, const char *producer_id,
                           const mf_rtp_capabilities_t *caps);
mf_err_t mf_router_consume(mf_router_transport_t *t, const char *producer_id,
                           const mf_rtp_capabilities_t *caps, bool paused, char *err,
                           size_t errsz, mf_consumer_t **out);
mf_consumer_t *mf_router_find_consumer(mf_router_t *router, const char *id);

/* ---- intra-node pipes (issue 8) ----
 * A logical router spans workers; each worker holds a shard (an mf_router_t with the
 * logical id). A producer whose consumers live on another worker is PIPED there: the
 * origin producer lends each forwarded packet through the node's pipe hub (no UDP, no
 * SRTP) and the target worker's PIPED producer (same id, kind and rtpParameters, fed only
 * by the pipe) forwards it to its consumers exactly as the origin does, after one copy
 * into its own pool so its retransmission stores own what they keep. A piped producer can
 * itself pipe further (a relay). Keyframe requests of its consumers come back as the
 * "pipekeyframerequest" event: the caller asks the origin (mf_producer_request_keyframe
 * through mf_router_producer_request_keyframe). Pause/resume/close do not cross by
 * themselves: the caller applies them to every piped copy (its consumers then get the
 * usual producerpause/resume/close events). */
#define MF_PRODUCER_MAX_PIPES 64

/* Once per router, before any pipe (worker thread; the hub outlives the router). */
void mf_router_set_pipe_hub(mf_router_t *router, mf_pipe_hub_t *hub, uint32_t worker);
/* A piped producer on this router: `params` are the ORIGIN producer's rtpParameters as
 * its client gave them (re-validated here like a produce); pipe_id is bound on this
 * router's worker. MF_ERR_EXISTS when the router already has a producer with that id. */
mf_err_t mf_router_pipe_produce(mf_router_t *router, const char *id, mf_media_kind_t kind,
                                mf_rtp_parameters_t *params, bool paused, uint32_t pipe_id,
                                char *err, size_t errsz, mf_producer_t **out);
/* Source side: p's packets also go to pipe_id on worker `worker` (MF_ERR_LIMIT past
 * MF_PRODUCER_MAX_PIPES, MF_ERR_STATE without a hub, MF_ERR_EXISTS for a known pipe_id). */
mf_err_t mf_producer_add_pipe(mf_producer_t *p, uint32_t worker, uint32_t pipe_id);
bool mf_producer_remove_pipe(mf_producer_t *p, uint32_t pipe_id);
size_t mf_producer_pipe_count(const mf_producer_t *p);
/* A copy of another worker's or node's producer (fed by the hub or a pipe transport). */
bool mf_producer_is_piped(const mf_producer_t *p);
void mf_router_producer_request_keyframe(mf_producer_t *p);

/* ---- pipes between nodes (issue 8) ----
 * mediasoup's PipeTransport: a router transport over UDP to one worker of another node
 * (see webrtc_transport.h for the wire: plain RTP or SRTP with keys exchanged by the
 * control plane). The origin side consumes the producer on it (mf_router_consume with
 * the router's own capabilities: the "pipe consumer"); the other side creates a producer
 * with the SAME id and the pipe consumer's rtpParameters on its pipe transport. Then
 * RTCP crosses like on any transport: the copy's NACKs are answered from the pipe
 * consumer's store (RTX), its PLI/FIR reach the origin's keyframe requester, SR/RR flow
 * both ways. One pipe transport carries every piped producer between two workers
 * (demultiplexed by SSRC). Pause/resume/close are the control plane's to cross. */
mf_err_t mf_router_create_pipe_transport(mf_router_t *router, bool srtp,
                                         mf_router_transport_t **out);
bool mf_router_transport_is_pipe(const mf_router_transport_t *t);
/* mediasoup's PlainTransport (node/plain_transport.h): producers and consumers on it work
 * as on any transport; mf_plain_transport_of(mf_router_transport_webrtc(t)) reaches it. */
mf_err_t mf_router_create_plain_transport(mf_router_t *router, const mf_plain_options_t *options,
                                          char *err, size_t errsz, mf_router_transport_t **out);
/* A piped producer on a pipe transport: id is the origin's (MF_ERR_EXISTS if taken here),
 * params the origin pipe consumer's rtpParameters, validated like a produce. */
mf_err_t mf_router_pipe_transport_produce(mf_router_transport_t *t, const char *id,
                                          mf_media_kind_t kind, mf_rtp_parameters_t *params,
                                          bool paused, char *err, size_t errsz,
                                          mf_producer_t **out);

const char *mf_producer_id(const mf_producer_t *p);
mf_media_kind_t mf_producer_kind(const mf_producer_t *p);
bool mf_producer_paused(const mf_producer_t *p);
void mf_producer_pause(mf_producer_t *p);
void mf_producer_resume(mf_producer_t *p);
void mf_producer_close(mf_producer_t *p);
json_t *mf_producer_stats_json(const mf_producer_t *p); /* mediasoup's getStats() array */
/* RtpObservers (issue 11, node/audio_level.h): counted on/off of measuring the producer's
 * ssrc-audio-level while not paused. MF_ERR_UNSUPPORTED for a video producer; an audio
 * producer without the extension is accepted but never has levels. */
mf_err_t mf_producer_observe_audio_level(mf_producer_t *p, bool on);
/* The levels since the previous take (count 0 when none). */
void mf_producer_take_audio_level(mf_producer_t *p, mf_audio_level_summary_t *out);

const char *mf_consumer_id(const mf_consumer_t *c);
bool mf_consumer_paused(const mf_consumer_t *c);
bool mf_consumer_producer_paused(const mf_consumer_t *c);
/* {id, producerId, kind, rtpParameters, type: "simple", paused, producerPaused} */
json_t *mf_consumer_to_json(const mf_consumer_t *c);
/* The consumer's rtpParameters as compact JSON text (owned by the consumer). */
const char *mf_consumer_rtp_parameters_text(const mf_consumer_t *c);
/* The same parsed, in a new malloc'd struct (109 kB: free() it), or NULL when out of
 * memory. */
mf_rtp_parameters_t *mf_consumer_rtp_parameters_copy(const mf_consumer_t *c);
mf_producer_t *mf_consumer_producer(const mf_consumer_t *c);
void mf_consumer_pause(mf_consumer_t *c);
void mf_consumer_resume(mf_consumer_t *c);
void mf_consumer_request_keyframe(mf_consumer_t *c);
/* consumer.setPreferredLayers of a simulcast consumer (temporal < 0: the highest): the
 * consumer moves to the highest active layers up to these, at the target's next keyframe
 * (one is requested). MF_ERR_UNSUPPORTED for a consumer of a single-encoding producer. */
mf_err_t mf_consumer_set_preferred_layers(mf_consumer_t *c, int spatial, int temporal,
                                          char *err, size_t errsz);
/* {spatialLayer, temporalLayer} preferred (current false) or now forwarded (current true);
 * JSON null when not simulcast or nothing forwarded yet. New reference. */
json_t *mf_consumer_layers_json(const mf_consumer_t *c, bool current);
void mf_consumer_close(mf_consumer_t *c);
json_t *mf_consumer_stats_json(const mf_consumer_t *c); /* mediasoup's getStats() array */

#endif
