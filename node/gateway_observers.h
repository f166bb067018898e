/* The gateway's RtpObservers (AudioLevelObserver, ActiveSpeakerObserver; issue 11).
 *
 * A logical router spans workers, so the observers live where the room's state lives:
 * in the gateway, one registry per gateway (its own mutex), keyed by observer id and
 * scoped to a room (any session of the room may use them; they last until
 * rtpObserver.close or the node stops). The decisions are node/rtp_observer.h's.
 *
 * Levels: a producer in an observer is measured on its origin worker (producer.c feeds
 * its mf_audio_level_t while observers > 0). Each worker with measured producers runs a
 * timer (MF_GW_OBSERVER_REPORT_MS) that takes every measured producer's summary and
 * feeds the registry from that worker's thread; an observer ends its interval when a
 * report finds it due, and its notifications go to the room's sessions
 * (mf_gw_notify_room): "rtpObserver.volumes" [{producerId, volume}],
 * "rtpObserver.silence" {}, "rtpObserver.dominantspeaker" {producerId}; target: the
 * observer's id. Producers of other nodes are not measured (addProducer refuses them).
 *
 * Thread affinity: the API methods run on nng's threads; mf_gw_observers_run and
 * mf_gw_observers_quiesce on the worker they are posted to; the producer hook on any
 * thread. Lock order: registry mutex before the gateway's (never the other way). */
#ifndef MF_GATEWAY_OBSERVERS_H
#define MF_GATEWAY_OBSERVERS_H

#include "node/gateway_internal.h"

#define MF_GW_OBSERVER_REPORT_MS 100

typedef struct gw_observers gw_observers_t;

mf_err_t mf_gw_observers_create(mf_gateway_t *gw, gw_observers_t **out);
/* After every worker ran mf_gw_observers_quiesce. NULL is fine. */
void mf_gw_observers_destroy(gw_observers_t *o);

/* API methods (ctx: the gateway): router.createAudioLevelObserver,
 * router.createActiveSpeakerObserver; rtpObserver.addProducer / removeProducer / pause /
 * resume / close. */
void mf_gw_observer_create(void *ctx, mf_api_call_t *call, const mf_api_request_t *req);
void mf_gw_observer_method(void *ctx, mf_api_call_t *call, const mf_api_request_t *req);

/* Index hook: a producer of this node is gone (any thread). */
void mf_gw_observers_producer_closed(mf_gateway_t *gw, const char *producer_id);

/* OP_AUDIO_LEVEL on the producer's worker: c->flag on = measure c->target, off = stop. */
void mf_gw_observers_run(gw_cmd_t *c, mf_worker_t *w);
/* Stop (worker thread, once per worker): its level timer ends, none starts again. */
void mf_gw_observers_quiesce(mf_gateway_t *gw, uint32_t worker);

#endif
