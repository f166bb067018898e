/* The API gateway: binds the public API's sessions (node/api/http_server.h) to routers on
 * the media workers. A room name is ONE logical router (one id, the same RTP capabilities
 * everywhere) made of shards: a router per worker that hosts any of its transports.
 * Transports are placed by the controller's scheduler (controller.PlaceTransport, only
 * this node's workers for now) when the node is in a cluster, else on the room's home
 * worker. A consumer on another worker than its producer gets the producer through an
 * intra-node pipe (node/pipe_hub.h), opened on the first such consumer and closed after
 * the linger once its last consumer left. Every method is sent to the worker owning its
 * object through the worker's mailbox, runs there, and answers the call from that thread.
 * Router events are mapped back to the session that owns the target object and sent as
 * notifications.
 *
 * Thread affinity: handlers run on nng's threads; the room registry and object index are
 * control-path state behind one mutex; everything that touches a router runs on its
 * worker. Created and destroyed by the node's main thread. */
#ifndef MF_GATEWAY_H
#define MF_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "node/api/http_server.h"
#include "node/api_limits.h"
#include "node/pipe_hub.h"
#include "node/worker.h"
#include "proto/rpc.pb-c.h"

typedef struct mf_gateway mf_gateway_t;

typedef struct {
  const char *listen;      /* "host:port" */
  const char *secret;      /* HS256 key; "" = dev mode (loopback only) */
  const char *static_dir;  /* demo page files; "" = none */
  unsigned grace_ms;       /* a closed WebSocket's objects wait this long for a resume;
                              0 = close them at once */
  unsigned pipe_linger_ms; /* a pipe without consumers closes after this; 0 = 10 s */
  unsigned keepalive_ms;   /* quiet WebSocket sessions are probed after this; 0 = never */
  uint64_t transport_pps;  /* packets/s a new transport is expected to add (placement);
                              0 = the controller's default */
  bool pipe_plain_rtp;     /* pipes between nodes without SRTP (--pipe-srtp=false) */
  bool local_placement;    /* transports on this node's workers only
                              (--forward-transports=false) */
  mf_pipe_hub_t *hub;      /* borrowed: intra-node pipes; must outlive the gateway AND the
                              workers' loops (destroy it after the workers stopped). NULL:
                              no pipes (a consumer must be on its producer's worker) */
  mf_api_limits_config_t limits; /* issue 12: per-session and per-node API limits; all
                                    zeros = unlimited */
} mf_gateway_options_t;

/* How the gateway reaches the controller (set by the node agent). call() sends an encoded
 * request to the controller leader off the caller's thread and returns at once; done then
 * runs exactly once on another thread (env NULL when no answer came; err says why). When
 * call() itself fails, done never runs. */
typedef void (*mf_gateway_call_done_fn)(void *ud, mf_err_t err,
                                        const Mafalda__Rpc__Envelope *env);
typedef struct {
  char node_id[65];
  char rpc_address[96]; /* host:port of this node's RPC endpoint (other nodes call it) */
  mf_err_t (*call)(void *ctx, const char *method, uint8_t *payload, size_t len,
                   mf_gateway_call_done_fn done, void *ud); /* payload: taken (malloc'd) */
  /* The same to another node's RPC endpoint (node -> node; no redirects). */
  mf_err_t (*call_node)(void *ctx, const char *rpc_address, const char *method,
                        uint8_t *payload, size_t len, mf_gateway_call_done_fn done, void *ud);
  /* An object event for the controller (cluster.ReportEvents): kind is a
   * Mafalda__Cluster__EventKind; any thread, never blocks (dropped when out of memory). */
  void (*event)(void *ctx, int kind, uint32_t worker, const char *object_id,
                const char *detail);
  void *ctx;
} mf_gateway_cluster_t;

/* Any thread. NULL detaches (the agent stops): placement falls back to home workers. */
void mf_gateway_set_cluster(mf_gateway_t *gw, const mf_gateway_cluster_t *cluster);

/* Starts the API server. workers must outlive the gateway. */
mf_err_t mf_gateway_start(const mf_gateway_options_t *options, mf_worker_t *const *workers,
                          uint32_t worker_count, mf_gateway_t **out);
uint16_t mf_gateway_port(const mf_gateway_t *gw);

/* Objects per worker, as the gateway's index has them (pipes_in: piped producers fed from
 * another worker; pipes_out: pipes this worker feeds; node_pipes_in/out: the same with
 * other nodes). */
typedef struct {
  uint32_t routers, transports, producers, consumers, pipes_in, pipes_out;
  uint32_t node_pipes_in, node_pipes_out;
} mf_gateway_counts_t;

/* Any thread; fills out[0..n) (n = the node's workers). */
void mf_gateway_counts(mf_gateway_t *gw, mf_gateway_counts_t *out, uint32_t n);

/* A shard placed here by the controller (any thread but a worker's; waits for the worker):
 * the room `name` (the logical router router_id) gets its router on `worker` now, so
 * clients joining `name` on this node land in it. codecs_json: the router's mediaCodecs
 * as JSON text, "" or NULL for the defaults. Repeating the same command is MF_OK;
 * MF_ERR_EXISTS when the room exists here as another router; MF_ERR_INVALID_ARG /
 * MF_ERR_PARSE for bad input. err gets the reason. */
mf_err_t mf_gateway_open_shard(mf_gateway_t *gw, const char *router_id, const char *name,
                               const char *codecs_json, uint32_t worker, char *err,
                               size_t errsz);

/* Closes the router's shards on this node (their transports end with routerclose). The
 * room stays and opens new shards on its next transport. MF_ERR_NOT_FOUND when no room
 * has that router. */
mf_err_t mf_gateway_close_shard(mf_gateway_t *gw, const char *router_id);

/* The controller declared this node dead (or no longer knows it): the cluster state lost
 * every shard, producer and pipe of this node, and the other nodes closed its producers.
 * Before the node registers again, every room the controller placed here closes its shards
 * as mf_gateway_close_shard does (transports end with transport.routerclose, producers
 * with producer.close; the sessions and rooms stay) and syncs with its peers again on its
 * next placement. See docs/cluster.md, "After being declared dead". Returns the number of
 * rooms whose shards closed. Any thread but a worker's; waits for the workers. */
size_t mf_gateway_fence(mf_gateway_t *gw);

/* ---- a room over several nodes (gateway_nodes.c) ----
 * Nodes that host shards of one logical router are the room's PEERS: each tells the others
 * about its producers (node.RoomSync when it opens its part of the room, node.RoomEvent on
 * produce/pause/resume/close), so a client of any node sees every producer of the room.
 * A consumer of another node's producer gets it through a PipeTransport between the two
 * workers (node.PipeOpen / node.PipeClose), opened on the first such consumer and closed
 * after the linger, like the pipes between workers of one node. */

/* True for the node.* methods mf_gateway_serve answers. */
bool mf_gateway_serves(const char *method);
/* Serves one node -> node request. Runs OFF the agent's loop (it may wait for a worker):
 * on MF_OK *reply is a malloc'd packed message of type *reply_type; else err says why. */
mf_err_t mf_gateway_serve(mf_gateway_t *gw, const char *method, const uint8_t *payload,
                          size_t len, uint8_t **reply, size_t *reply_len,
                          const ProtobufCMessageDescriptor **reply_type, char *err,
                          size_t errsz);
/* Gossip declared node_id dead or gone (any thread but a worker's; does not wait): its
 * producers close here (their consumers get producerclose) and the pipes to it close. */
void mf_gateway_node_lost(mf_gateway_t *gw, const char *node_id);

/* Closes every session (their transports close on the workers) and every room's router,
 * then frees the gateway. Call while the workers still run. */
void mf_gateway_stop(mf_gateway_t *gw);

#endif
