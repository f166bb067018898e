/* DataProducer and DataConsumer (mediasoup's model) on a router's WebRTC transports with
 * SCTP enabled: messages a client sends on a DataProducer's SCTP stream go to every
 * DataConsumer of it, each on its own transport's association with its own stream id
 * (chosen here: the lowest free one of that transport) and the producer's reliability
 * (ordered, maxRetransmits / maxPacketLifeTime), with the PPID as received (string,
 * binary, empty string/binary). In-band channels (DCEP OPEN on a stream no DataProducer
 * uses) are acknowledged and logged but not routed: the API path is mediasoup's
 * negotiated channels.
 *
 * Across workers of a node (a room's shard routers): the origin data producer relays its
 * messages to the workers holding RELAY COPIES of it (same id and description, made with
 * mf_router_relay_data_producer), whose consumers are served like local ones; the caller
 * (the gateway) carries the messages between workers. Not across nodes.
 *
 * Thread affinity: the router's worker thread, like router.h. Ownership: the router owns
 * them; closing the transport closes its data producers (their consumers get the
 * "dataproducerclose" event, target: the data consumer id, and are freed) and its data
 * consumers. Other events: "sctpstatechange" {sctpState} (target: transport id). */
#ifndef MF_DATA_ROUTER_H
#define MF_DATA_ROUTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "node/router.h"
#include "node/sctp_association.h"

#define MF_DATA_LABEL_MAX 1024

typedef struct mf_data_producer mf_data_producer_t;
typedef struct mf_data_consumer mf_data_consumer_t;
typedef struct mf_data_router mf_data_router_t;
typedef struct mf_data_transport mf_data_transport_t;

/* mediasoup's sctpStreamParameters. */
typedef struct {
  uint16_t stream_id;
  mf_sctp_send_params_t send; /* ordered, max_retransmits / max_packet_life_time (< 0: unset) */
} mf_sctp_stream_parameters_t;

/* {streamId, ordered?, maxPacketLifeTime?, maxRetransmits?}: ordered defaults to true
 * unless a limit is given (mediasoup); both limits together are refused. */
mf_err_t mf_sctp_stream_parameters_from_json(const json_t *j, mf_sctp_stream_parameters_t *out,
                                             char *err, size_t errsz);
json_t *mf_sctp_stream_parameters_to_json(const mf_sctp_stream_parameters_t *p);

/* Options from createWebRtcTransport's data: enableSctp (bool), numSctpStreams {OS, MIS}
 * (1..65535, default 1024 each), maxSctpMessageSize (default 262144, at most 16 MiB).
 * *enabled false: no SCTP asked for (options untouched). */
mf_err_t mf_sctp_options_from_json(const json_t *data, bool *enabled, mf_sctp_options_t *out,
                                   char *err, size_t errsz);

/* Gives the transport an SCTP association (before connect). MF_ERR_STATE if already. */
mf_err_t mf_router_transport_enable_sctp(mf_router_transport_t *t, const mf_sctp_options_t *o);
bool mf_router_transport_sctp_enabled(const mf_router_transport_t *t);

/* transport.produceData: data {sctpStreamParameters, label?, protocol?, appData?}. The
 * stream id must be below the transport's MIS and not used by another data producer of
 * the transport. */
mf_err_t mf_router_produce_data(mf_router_transport_t *t, const json_t *data, char *err,
                                size_t errsz, mf_data_producer_t **out);
mf_err_t mf_router_consume_data(mf_router_transport_t *t, const char *data_producer_id,
                                char *err, size_t errsz, mf_data_consumer_t **out);
mf_data_producer_t *mf_router_find_data_producer(mf_router_t *r, const char *id);
mf_data_consumer_t *mf_router_find_data_consumer(mf_router_t *r, const char *id);

const char *mf_data_producer_id(const mf_data_producer_t *p);
/* {id, type: "sctp", sctpStreamParameters, label, protocol} */
json_t *mf_data_producer_to_json(const mf_data_producer_t *p);
json_t *mf_data_producer_stats_json(const mf_data_producer_t *p);
void mf_data_producer_close(mf_data_producer_t *p);

const char *mf_data_consumer_id(const mf_data_consumer_t *c);
/* {id, dataProducerId, type: "sctp", sctpStreamParameters, label, protocol} */
json_t *mf_data_consumer_to_json(const mf_data_consumer_t *c);
json_t *mf_data_consumer_stats_json(const mf_data_consumer_t *c);
void mf_data_consumer_close(mf_data_consumer_t *c);

/* ---- relays between workers (see the top) ----
 * relay: on the origin's worker, for each message of a data producer with relay targets
 * (`workers`, a bitmask), and once with closed=true (data NULL) when it closes. */
typedef void (*mf_data_relay_fn)(void *ud, const char *data_producer_id, uint64_t workers,
                                 uint32_t ppid, const uint8_t *data, size_t len, bool closed);
/* Once per router; ud_free (may be NULL) runs on ud when the router's data tables go. */
void mf_router_set_data_relay(mf_router_t *r, mf_data_relay_fn fn, void *ud,
                              void (*ud_free)(void *ud));
bool mf_router_has_data_relay(const mf_router_t *r);
/* Origin side: p's messages also go to `worker` (0..63). MF_ERR_LIMIT past 63,
 * MF_ERR_STATE for a relay copy. */
mf_err_t mf_data_producer_add_relay(mf_data_producer_t *p, uint32_t worker);
/* Target side: a copy of another worker's data producer from its mf_data_producer_to_json
 * (same id). MF_ERR_EXISTS if the router has it already. */
mf_err_t mf_router_relay_data_producer(mf_router_t *r, const json_t *desc, char *err,
                                       size_t errsz, mf_data_producer_t **out);
bool mf_data_producer_is_relay(const mf_data_producer_t *p);
/* A message relayed to a copy: sent to the copy's consumers. */
void mf_data_producer_deliver(mf_data_producer_t *p, uint32_t ppid, const uint8_t *data,
                              size_t len);

/* ---- hooks for router.c ---- */
/* Closes the transport's data producers and consumers (first thing of a transport close). */
void mf_data_transport_close(mf_router_transport_t *t);
/* Frees the router's data tables (last thing of a router close). NULL is ignored. */
void mf_data_router_free(mf_data_router_t *d);

#endif
