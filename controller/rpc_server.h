/* The controller's RPC endpoint: nng req/rep over TCP carrying mafalda.rpc.Envelope
 * (proto/rpc.proto), served by the replica on the loop that runs its Raft node.
 *
 * Methods (payload -> response payload):
 *   controller.Apply        Command              -> CommandResult   (write)
 *   controller.ApplyBatch   ApplyBatchRequest    -> ApplyBatchResponse (writes, in order:
 *                                                   one Raft entry per command, one
 *                                                   CommandResult each; at most
 *                                                   MF_RPC_APPLY_BATCH_MAX commands; an
 *                                                   entry that did not commit fails the
 *                                                   whole batch, to be sent again)
 *   controller.CreateRouter CreateRouter         -> CommandResult   (write)
 *   cluster.RegisterNode    RegisterNodeRequest  -> RegisterNodeResponse (write)
 *   cluster.ReportLoad      LoadReport           -> LoadReportResponse (leader only)
 *   cluster.ReportEvents    ReportEventsRequest  -> ReportEventsResponse (leader only)
 *   controller.AddVoter     AddVoterRequest      -> CommandResult   (membership, leader)
 *   controller.RemoveVoter  RemoveVoterRequest   -> CommandResult   (membership, leader)
 *   controller.Status       StatusRequest        -> StatusResponse  (read, any replica)
 *   controller.State        StatusRequest        -> StateResponse   (read: status, term and
 *                                                   the whole state, for mafalda-ctl)
 *   controller.OpenRouter   OpenRouterRequest    -> OpenRouterResponse (leader; may write)
 *   controller.PlaceTransport PlaceTransportRequest -> PlaceTransportResponse (leader; may
 *                                                   write AddShard)
 *   controller.PlacePipe    PlacePipeRequest     -> PlacePipeResponse (leader; may write
 *                                                   AddPipe)
 *   controller.RouterNodes  RouterNodesRequest   -> RouterNodesResponse (leader; read: the
 *                                                   live nodes holding shards of a router)
 * The three placement methods (controller/placement.h) answer only after the router,
 * shard or pipe they name is committed through Raft. Their refusals carry the reason in
 * the error message, with the status of its mf_err_t (mf_rpc_status_of): NOT_FOUND
 * (unknown router, producer, node or target shard), RESOURCE_EXHAUSTED ("cluster full",
 * no pipe source with budget left), INVALID_ARGUMENT (malformed request, no active node,
 * a dead origin or target).
 * Writes on a follower answer STATUS_NOT_LEADER with the leader's RPC address (or
 * STATUS_UNAVAILABLE when no leader is known). A committed but rejected command answers
 * STATUS_NOT_FOUND / STATUS_INVALID_ARGUMENT with the CommandResult payload. Malformed
 * envelopes or payloads, unknown methods and oversize messages get an error status; the
 * server keeps serving. Load reports are not replicated: the leader keeps the latest one
 * per node in memory (a new leader starts empty and fills up within one report interval).
 * Messages above max_message + 64 KiB are dropped by nng itself
 * (the connection closes).
 *
 * Thread affinity: start/stop/destroy on the loop thread; nng's threads only receive and
 * send, every request is handled on the loop (through a mailbox). */
#ifndef MF_CONTROLLER_RPC_SERVER_H
#define MF_CONTROLLER_RPC_SERVER_H

#include <stddef.h>
#include <uv.h>

#include "common/err.h"
#include "controller/placement.h"
#include "controller/raft_node.h"
#include "proto/cluster.pb-c.h"

#define MF_RPC_METHOD_APPLY "controller.Apply"
#define MF_RPC_METHOD_CREATE_ROUTER "controller.CreateRouter"
#define MF_RPC_METHOD_REGISTER_NODE "cluster.RegisterNode"
#define MF_RPC_METHOD_STATUS "controller.Status"
#define MF_RPC_METHOD_REPORT_LOAD "cluster.ReportLoad"
#define MF_RPC_METHOD_ADD_VOTER "controller.AddVoter"
#define MF_RPC_METHOD_REMOVE_VOTER "controller.RemoveVoter"
#define MF_RPC_METHOD_STATE "controller.State"
#define MF_RPC_METHOD_REPORT_EVENTS "cluster.ReportEvents"
#define MF_RPC_METHOD_OPEN_ROUTER "controller.OpenRouter"
#define MF_RPC_METHOD_PLACE_TRANSPORT "controller.PlaceTransport"
#define MF_RPC_METHOD_PLACE_PIPE "controller.PlacePipe"
#define MF_RPC_METHOD_ROUTER_NODES "controller.RouterNodes"
#define MF_RPC_METHOD_APPLY_BATCH "controller.ApplyBatch"
#define MF_RPC_APPLY_BATCH_MAX 256

typedef struct {
  const char *listen_url;  /* e.g. "tcp://127.0.0.1:9101" */
  size_t max_message;      /* 0 = MF_PBNNG_MAX_MESSAGE */
  unsigned contexts;       /* concurrent requests; 0 = 32 */
  mf_placement_config_t placement; /* zero = defaults (controller/placement.h) */
} mf_rpc_server_config_t;

typedef struct mf_rpc_server mf_rpc_server_t;

/* raft is borrowed: it must stay open until mf_rpc_server_stop. On error (e.g. the
 * address is in use) *out is still set to a stopped server: run the loop, then
 * mf_rpc_server_destroy it; an invalid placement config (MF_ERR_INVALID_ARG) leaves *out
 * NULL. */
mf_err_t mf_rpc_server_start(uv_loop_t *loop, mf_raft_node_t *raft,
                             const mf_rpc_server_config_t *config, mf_rpc_server_t **out);

/* Latest load report of a node (leader only; NULL when none). Valid until the next request
 * is handled on the loop. */
const Mafalda__Cluster__LoadReport *mf_rpc_server_load(const mf_rpc_server_t *server,
                                                      const char *node_id);

/* Stops serving: closes the socket and drops requests in flight (clients time out or
 * retry). Writes already submitted to Raft complete without an answer. Call before
 * closing the Raft node; then run the loop so the mailbox handle closes. */
void mf_rpc_server_stop(mf_rpc_server_t *server);

/* Frees the server after mf_rpc_server_stop and after the Raft node has closed (its
 * pending callbacks refer to the server). */
void mf_rpc_server_destroy(mf_rpc_server_t *server);

#endif
