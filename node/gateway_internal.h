/* Internals shared by the gateway's files:
 *   gateway.c         API methods on nng's threads, sessions, start/stop;
 *   gateway_worker.c  commands that run on a worker (mf_gateway_on_command);
 *   gateway_pipes.c   transport placement, pipes between workers, controller calls;
 *   gateway_shards.c  shards placed by the controller and object counts.
 * Not a public interface: only node/gateway*.c include it. Thread affinity as in
 * gateway.h: fields marked "mu" are read and written under mf_gateway.mu; "worker" fields
 * only on the worker thread that owns them. */
#ifndef MF_GATEWAY_INTERNAL_H
#define MF_GATEWAY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/hashmap.h"
#include "common/id.h"
#include "common/mailbox.h"
#include "node/api/http_server.h"
#include "node/gateway.h"
#include "node/pipe_hub.h"
#include "node/router.h"
#include "proto/cluster.pb-c.h"
#include "proto/controller.pb-c.h"

#define GW_ROOM_MAX 128
#define GW_DEFAULT_LINGER_MS 10000u

/* GW_REMOTE_PRODUCER: a producer of another node in the room (worker GW_NO_WORKER, no
 * session); GW_PIPE_OUT: a pipe consumer feeding another node (no session). */
typedef enum { GW_TRANSPORT, GW_PRODUCER, GW_CONSUMER, GW_REMOTE_PRODUCER, GW_PIPE_OUT,
               GW_DATA_PRODUCER, GW_DATA_CONSUMER /* gateway_data.c */ } gw_kind_t;
#define GW_NO_WORKER UINT32_MAX
#define GW_PEERS_MAX 64
#define GW_ADDR_MAX 64

typedef struct gw_link gw_link_t; /* gateway_nodes.c: a PipeTransport to another node */

/* One worker's part of a room: the shard router (created on first use). */
typedef struct {
  mf_router_t *router; /* worker */
  bool open;           /* mu: router exists (counts, placement bookkeeping) */
  gw_link_t *links;    /* worker: PipeTransports of this shard to other nodes */
  uint32_t idle_gen;   /* mu: bumped by each idle check; only the latest timer acts */
} gw_shard_t;

/* Another node hosting the same logical router. */
typedef struct {
  char node_id[65];
  char rpc_address[96];
} gw_peer_t;

typedef struct gw_wait gw_wait_t;

typedef enum {
  GW_ROOM_READY,   /* router_id known */
  GW_ROOM_OPENING, /* waiting for the controller's controller.OpenRouter answer */
} gw_room_state_t;

typedef struct gw_room {
  struct gw_room *next;
  char name[GW_ROOM_MAX + 1];
  uint32_t home;       /* placement fallback and grace timers */
  gw_room_state_t state;  /* mu */
  gw_wait_t *waiting;     /* mu: calls waiting for OPENING to end */
  char router_id[MF_ID_LEN + 1]; /* mu: the logical router's id (the same on every shard) */
  bool placed_by_controller;     /* mu: the controller knows this router */
  mf_rtp_codec_capability_t *codecs; /* NULL = the default list; fixed once READY */
  size_t codec_count;
  char *codecs_json;  /* the same as given by router.create (for the controller); or NULL */
  gw_shard_t *shards; /* worker_count entries */
  /* mu: grown on demand up to GW_PEERS_MAX, so a room entry (kept for the gateway's life,
   * one per distinct room name) stays small when it has no peers */
  gw_peer_t *peers;
  size_t peer_count, peer_cap;
  bool synced;                   /* mu: node.RoomSync done with the controller's list */
  bool syncing;                  /* mu: controller.RouterNodes on its way */
  struct gw_grace *graces; /* home worker */
} gw_room_t;

typedef struct {
  char id[MF_ID_LEN + 1];
  gw_kind_t kind;
  gw_room_t *room;
  uint32_t worker;           /* where it lives (producers: their origin) */
  mf_api_session_t *session; /* referenced */
  char transport_id[MF_ID_LEN + 1];
  char media_kind[8];
  char producer_id[MF_ID_LEN + 1]; /* consumers: what they consume */
  json_t *rtp_parameters;          /* producers: as the client gave them (pipes re-create) */
  json_t *app_data;                /* producers (local and remote): the client's appData */
  bool paused;                     /* producers: the client's last pause/resume */
  char node_id[65];                /* remote producers: origin node */
  char rtc_address[GW_ADDR_MAX];   /* remote producers: origin worker's RTC socket */
  bool counted;                    /* issue 12: holds a limits slot (mf_gw_index_add_counted) */
} gw_obj_t;

/* A pipe of producer_id from worker src to worker dst (key: producer id + dst). */
typedef struct {
  char producer_id[MF_ID_LEN + 1];
  uint32_t dst, src, pipe_id;
  gw_room_t *room;
  uint32_t consumers; /* mu: consumers of the producer on dst */
  uint32_t users;     /* mu: consume calls on their way to dst */
  uint32_t linger_gen;/* mu: bumped whenever consumers drop to 0 */
  bool dead;          /* mu: out of the table; freed when the last user is done */
  /* From another node (src = GW_NO_WORKER): OPENING until the copy exists on dst; the
   * consumes that arrive meanwhile wait in `waiting` (posted in order once it does). */
  bool remote, ready;
  bool placed; /* remote: the controller chose the source and recorded it (PlacePipe) */
  struct gw_cmd *waiting;
  char node_id[65];
  char source_addr[GW_ADDR_MAX];
  uint32_t source_worker;
} gw_pipe_t;

typedef struct {
  char producer_id[MF_ID_LEN + 1];
  uint32_t dst;
} gw_pipe_key_t;

typedef struct gw_forward gw_forward_t; /* gateway_forward*.c: calls across nodes */
typedef struct gw_fwd_in gw_fwd_in_t;   /* a link served here (another node's client) */

/* Per joined session: its room and the token that lets a new session adopt its objects. */
typedef struct {
  gw_room_t *room;
  char token[MF_ID_LEN + 1];
  gw_fwd_in_t *fwd_in; /* a link's virtual session: another node's client (no grace) */
} gw_session_t;

/* A joined session's resume token (key): while `live`, its WebSocket is open; once closed,
 * its objects wait for a resume during the grace period. A resume may arrive before the
 * old socket's close is seen (the client reconnects at once): it adopts the objects either
 * way, and the old session's close then finds nothing left. */
typedef struct {
  gw_room_t *room;
  mf_api_session_t *old; /* referenced */
  bool live;
} gw_orphan_t;

/* The timer that ends a grace period, on the room's home worker. */
typedef struct gw_grace {
  struct gw_grace *next;
  uv_timer_t timer;
  struct mf_gateway *gw;
  gw_room_t *room;
  char token[MF_ID_LEN + 1];
} gw_grace_t;

struct mf_gateway {
  mf_api_server_t *server;
  struct mf_whip *whip; /* WHIP/WHEP endpoints (node/whip.h), or NULL */
  mf_worker_t *const *workers;
  uint32_t worker_count, next_worker;
  mf_pipe_hub_t *hub;
  unsigned grace_ms, linger_ms;
  uint64_t transport_pps;
  bool pipe_srtp;
  bool local_placement; /* never forward a transport to another node */
  bool stopping;         /* mu: mf_gateway_stop runs */
  uv_mutex_t mu; /* rooms, objs, pipes, orphans, cluster */
  gw_room_t *rooms;
  mf_hashmap_t *objs;    /* id (37 bytes) -> gw_obj_t */
  mf_hashmap_t *orphans; /* resume token -> gw_orphan_t */
  mf_hashmap_t *pipes;   /* gw_pipe_key_t -> gw_pipe_t */
  bool clustered;        /* mu */
  mf_gateway_cluster_t cluster; /* mu */
  struct gw_observers *observers; /* gateway_observers.c (its own mutex) */
  mf_api_limits_t *limits; /* issue 12: API limits (node/api_limits.h, its own mutex) */
  gw_forward_t *fwd;       /* gateway_forward*.c (its own mutex) */
};

typedef enum {
  OP_CREATE_TRANSPORT, OP_CONNECT, OP_PRODUCE, OP_CONSUME, OP_CAN_CONSUME,
  OP_CLOSE_TRANSPORT, OP_PRODUCER, OP_CONSUMER, OP_CLOSE_SHARD, OP_GRACE, OP_OPEN_SHARD,
  OP_PIPE_IN, OP_PIPE_OUT, OP_PIPE_UNLINK, OP_PIPE_STATE, OP_PIPE_LINGER, OP_KEYFRAME,
  OP_HUB_ATTACH, OP_HUB_QUIESCE, OP_HUB_DETACH,
  /* between nodes (gateway_nodes.c) */
  OP_NODE_PIPE_OPEN, OP_NODE_PIPE_PRODUCE, OP_NODE_PIPE_SERVE, OP_NODE_PIPE_UNSERVE,
  OP_NODE_LINKS_DROP,
  OP_CREATE_PLAIN_TRANSPORT, /* gateway_plain.c */
  OP_AUDIO_LEVEL, /* gateway_observers.c: measure a producer (flag) or stop */
  OP_PRODUCE_DATA, OP_CONSUME_DATA, OP_DATA_PRODUCER, OP_DATA_CONSUMER, /* gateway_data.c */
  OP_SHARD_IDLE /* start the idle timer of a shard that lost its last transport */
} gw_op_t;

/* Counts down the shards of a router.close; the last one answers the call. */
typedef struct {
  uv_mutex_t mu;
  uint32_t left;
  mf_api_call_t *call; /* answered by the last one (then the fan-in, malloc'd, is freed) */
  uv_sem_t *done;      /* or posted by the last one (the fan-in lives in the waiter's frame) */
} gw_fanin_t;

typedef struct gw_cmd {
  mf_mailbox_msg_t link;
  struct gw_cmd *next;       /* a remote pipe's waiting consumes */
  mf_gateway_t *gw;
  gw_op_t op;
  mf_api_call_t *call;       /* NULL for internal commands */
  mf_api_session_t *session; /* referenced when set */
  gw_room_t *room;
  json_t *data;              /* referenced */
  void *arg;                 /* node commands: the request, in the waiting caller's frame */
  char target[MF_ID_LEN + 1];
  char method[MF_API_METHOD_MAX + 1];
  uint32_t worker;           /* the worker it runs on */
  uint32_t peer;             /* pipes: the other worker */
  uint32_t pipe_id, gen;
  bool flag;                 /* OP_PIPE_IN: paused; OP_PIPE_STATE: see method */
  gw_pipe_t *pipe;           /* OP_CONSUME through a pipe: the reservation to release */
  gw_fanin_t *fanin;         /* OP_CLOSE_SHARD from router.close / stop */
  uv_sem_t *done;            /* the caller waits (open shard, hub steps, close at stop) */
  mf_err_t *result;          /* OP_OPEN_SHARD: outcome and reason, in the caller's frame */
  char *err;
  size_t errsz;
} gw_cmd_t;

/* A call waiting for its room to finish opening (router.join / router.create). */
struct gw_wait {
  gw_wait_t *next;
  mf_api_call_t *call;
  mf_api_session_t *session; /* referenced */
  bool create;               /* router.create: refuse a router the controller already had */
};

/* ---- gateway.c: the object index and notifications (any thread) ---- */
/* Filters of mf_gw_collect (unset = any) and its result (ids: malloc'd, the caller frees). */
typedef struct {
  const char *transport_id;
  const mf_api_session_t *session;
  gw_kind_t kind;
  bool match_kind;
  const gw_room_t *room; /* with worker: objects of that room living on that worker */
  uint32_t worker;
  char (*ids)[MF_ID_LEN + 1];
  size_t count, cap;
} gw_collect_t;
/* Ids of indexed objects matching c's filters (a snapshot taken under the mutex). */
void mf_gw_collect(mf_gateway_t *gw, gw_collect_t *c);
char *mf_gw_key(const char *id, char key[MF_ID_LEN + 1]);
gw_obj_t *mf_gw_index_add(mf_gateway_t *gw, const char *id, gw_kind_t kind, gw_room_t *room,
                          uint32_t worker, mf_api_session_t *s, const char *transport_id);
void mf_gw_index_remove(mf_gateway_t *gw, const char *id);
void mf_gw_notify_room(mf_gateway_t *gw, gw_room_t *room, mf_api_session_t *except,
                       const char *event, const char *target, json_t *data);
/* A new command for `worker` (not posted yet); NULL when out of memory (call failed). */
gw_cmd_t *mf_gw_cmd(mf_gateway_t *gw, gw_room_t *room, gw_op_t op, uint32_t worker,
                    mf_api_call_t *call, mf_api_session_t *session, json_t *data,
                    const char *target);
/* Posts c to its worker; on failure answers the call and frees c. */
void mf_gw_send(gw_cmd_t *c);
/* Shorthand: build + send. */
void mf_gw_post(mf_gateway_t *gw, gw_room_t *room, gw_op_t op, uint32_t worker,
                mf_api_call_t *call, mf_api_session_t *session, json_t *data,
                const char *target);
void mf_gw_cmd_free(gw_cmd_t *c);
/* Closes the room's shard on every worker and waits (not on a worker thread). */
void mf_gw_close_shards(mf_gateway_t *gw, gw_room_t *room, bool stopping);
/* One shard of a fan-in finished (any thread). */
void mf_gw_fanin_done(gw_fanin_t *f);
/* Grace over (home worker): unless a new session adopted them, the objects close. */
void mf_gw_grace_over(mf_gateway_t *gw, gw_room_t *room, const char *token);
/* The router join/create answer: {roomId, routerId, rtpCapabilities, resumeToken?}. */
void mf_gw_reply_join(mf_gateway_t *gw, gw_room_t *room, mf_api_call_t *call,
                      mf_api_session_t *s);

/* mf_gw_index_add for an object created after mf_gw_limit_take (issue 12): its slot is
 * given back when it leaves the index, or at once when it cannot be indexed. */
gw_obj_t *mf_gw_index_add_counted(mf_gateway_t *gw, const char *id, gw_kind_t kind,
                                  gw_room_t *room, uint32_t worker, mf_api_session_t *s,
                                  const char *transport_id);

/* ---- gateway_limits.c: API limits (issue 12, node/api_limits.h) ---- */
/* The mf_api_limit_kind_t counting a session's object of this kind; -1: not counted. */
int mf_gw_limit_kind(gw_kind_t kind);
/* mf_api_admit_fn of the API server: the session's request rate, and an early refusal of
 * creates over a count limit. */
mf_err_t mf_gw_admit(void *ctx, mf_api_session_t *s, const char *method, char *why,
                     size_t whysz, bool *close);
/* router.join / router.create of a session not joined yet: within --max-sessions (a valid
 * resumeToken always is)? false: refused, and the call was failed. */
bool mf_gw_limit_join(mf_gateway_t *gw, mf_api_call_t *call, const mf_api_request_t *req);
/* On the worker, right before creating an object of `kind` for c->session: counts it
 * against the session's and the node's limits. false: refused, and c->call was failed
 * (nothing created). A creation that fails after a take gives the slot back. */
bool mf_gw_limit_take(gw_cmd_t *c, gw_kind_t kind);
/* The object is gone, or was never created (any thread; s NULL is a no-op). */
void mf_gw_limit_give(mf_gateway_t *gw, mf_api_session_t *s, gw_kind_t kind);

/* ---- gateway_worker.c ---- */
/* Runs a gw_cmd_t on the worker it was posted to (mf_worker_post). */
void mf_gateway_on_command(mf_mailbox_msg_t *msg, void *owner);
void mf_gw_router_event(void *ud, const char *event, const char *target, json_t *data);

/* ---- gateway_pipes.c ---- */
/* router.createWebRtcTransport / createPlainTransport: asks the controller where (or places
 * on the room's home worker), then posts `op` (OP_CREATE_TRANSPORT, OP_CREATE_PLAIN_TRANSPORT)
 * with the request's data to that worker. */
void mf_gw_place_transport(mf_gateway_t *gw, gw_room_t *room, mf_api_call_t *call,
                           mf_api_session_t *s, const mf_api_request_t *req, gw_op_t op);
/* transport.consume on `worker` of a producer living elsewhere in the room: opens or reuses
 * the pipe, then consumes. */
void mf_gw_consume(mf_gateway_t *gw, gw_room_t *room, uint32_t worker, const char *producer_id,
                   mf_api_call_t *call, mf_api_session_t *s, const mf_api_request_t *req,
                   const char *transport_id);
/* The pipes table's key of (producer, target worker). */
gw_pipe_key_t mf_gw_pipe_key(const char *producer_id, uint32_t dst);
/* A consume through the pipe is done (any thread). */
void mf_gw_pipe_release(mf_gateway_t *gw, gw_pipe_t *pipe);
/* Index hooks: a consumer of producer_id appeared on / left worker w. */
void mf_gw_pipe_consumer_added(mf_gateway_t *gw, const char *producer_id, uint32_t w);
void mf_gw_pipe_consumer_removed(mf_gateway_t *gw, const char *producer_id, uint32_t w);
/* A producer's pause/resume/close reaches its piped copies (any thread). */
void mf_gw_pipe_producer_state(mf_gateway_t *gw, const char *producer_id, const char *what);
/* A piped copy's consumers need a keyframe: ask the origin. */
void mf_gw_pipe_keyframe(mf_gateway_t *gw, const char *producer_id);
/* Linger expired on the target worker (worker thread). */
void mf_gw_pipe_linger_fired(mf_gateway_t *gw, uint32_t worker, const char *producer_id,
                             uint32_t gen);
/* room.router_id: from the controller (clustered) or a local UUID; answers the waiting
 * calls. Called on nng's thread for a new room. */
void mf_gw_room_open(mf_gateway_t *gw, gw_room_t *room);
/* Sends msg to the controller leader (done runs later on another thread); MF_ERR_STATE
 * when the node is not in a cluster. */
mf_err_t mf_gw_call(mf_gateway_t *gw, const char *method, const ProtobufCMessage *msg,
                    mf_gateway_call_done_fn done, void *ud);
/* Records (add) or forgets a pipe in the controller's state. */
void mf_gw_pipe_record(mf_gateway_t *gw, const gw_pipe_t *pipe, bool add);
/* Tells the controller (if any) without waiting: producers, pipes, shards. */
void mf_gw_tell_controller(mf_gateway_t *gw, const Mafalda__Controller__Command *cmd);
bool mf_gw_node_id(mf_gateway_t *gw, char out[65]);
/* Reports an object event to the controller through the agent (no-op outside a cluster). */
void mf_gw_report_event(mf_gateway_t *gw, int kind, uint32_t worker, const char *object_id,
                        const char *detail);

/* ---- gateway_plain.c: router.createPlainTransport ---- */
/* Validates data (the options), places the transport like a WebRTC one, posts the create. */
void mf_gw_place_plain_transport(mf_gateway_t *gw, gw_room_t *room, mf_api_call_t *call,
                                 mf_api_session_t *s, const mf_api_request_t *req);
/* OP_CREATE_PLAIN_TRANSPORT on its worker: creates, indexes, answers the call. */
void mf_gw_run_create_plain(gw_cmd_t *c, mf_worker_t *w);
/* Worker thread: indexes t, just made for c's session. A session that ended meanwhile
 * (its client went while the create ran) has already collected its transports, so t is
 * closed at once instead of living on with nobody to close it. */
void mf_gw_index_session_transport(gw_cmd_t *c, mf_router_transport_t *t);

/* ---- gateway_shards.c: idle shards ----
 * A transport of (room, worker) went away: when none is left, the shard closes after the
 * linger (--pipe-linger-ms) unless a transport comes back (any thread). */
void mf_gw_shard_check_idle(mf_gateway_t *gw, gw_room_t *room, uint32_t worker);
/* On the worker, when its idle timer fires: still idle and the latest check? Then the
 * caller closes the shard and calls mf_gw_shard_closed_idle. */
bool mf_gw_shard_idle_ok(mf_gateway_t *gw, gw_room_t *room, uint32_t worker, uint32_t gen);
/* Tells the controller the shard is gone (RemoveShard). */
void mf_gw_shard_closed_idle(mf_gateway_t *gw, gw_room_t *room, uint32_t worker);

/* ---- gateway_nodes.c / gateway_node_pipes.c: a room over several nodes ---- */
typedef struct {
  char node_id[65];
  char rpc[96];
} gw_self_t;
/* What a node.PipeOpen / node.PipeClose asks of the source worker (in the server's frame). */
typedef struct {
  const char *producer_id, *addr, *node_id;
  mf_pipe_srtp_t s2t, t2s;
  bool keys_changed; /* the source kept its own link: the caller takes these keys */
  mf_pipe_srtp_t kept_s2t, kept_t2s;
  mf_err_t err;
  char msg[256];
  char *params_text; /* malloc'd */
  bool paused;
  uint32_t worker;   /* the producer's worker (the source), set by the server */
  bool relay;        /* send from a copy of the producer (this node is a relay) */
} gw_serve_t;

/* This node's id and RPC address; false when not in a cluster (or detached). */
bool mf_gw_self(mf_gateway_t *gw, gw_self_t *me);
/* "ip:port" (IPv4, or [IPv6]:port) -> address; false when malformed. */
bool mf_gw_parse_addr(const char *s, struct sockaddr_storage *out);
/* msg to another node's RPC endpoint (done later, on another thread). */
mf_err_t mf_gw_call_node(mf_gateway_t *gw, const char *rpc, const char *method,
                         const ProtobufCMessage *msg, mf_gateway_call_done_fn done, void *ud);
const char *mf_gw_env_error(mf_err_t err, const Mafalda__Rpc__Envelope *env);
/* A call's done callback that logs a failure; ud: malloc'd text naming the call (freed). */
void mf_gw_node_told(void *ud, mf_err_t err, const Mafalda__Rpc__Envelope *env);
/* mu held: a peer's node RPC address, "" when unknown. */
const char *mf_gw_peer_rpc_locked(gw_room_t *room, const char *node_id);
/* Fails the consumes waiting for remote pipes of producer_id (dst GW_NO_WORKER: every
 * target worker) and drops those pipes. */
void mf_gw_remote_pipes_fail(mf_gateway_t *gw, const char *producer_id, uint32_t dst,
                             const char *why);
/* After a placement in a controller-known room: find the other nodes hosting it (once). */
void mf_gw_room_sync(mf_gateway_t *gw, gw_room_t *room);
/* A local producer appeared / paused / resumed / closed: tell the room's peers (any
 * thread). gone: its index entry when already out of the index (close), else NULL. */
void mf_gw_nodes_producer_event(mf_gateway_t *gw, const char *producer_id, const gw_obj_t *gone,
                                const char *event);
/* transport.consume of another node's producer (on this node's worker `worker`). */
void mf_gw_consume_remote(mf_gateway_t *gw, gw_room_t *room, uint32_t worker,
                          const char *producer_id, mf_api_call_t *call, mf_api_session_t *s,
                          const mf_api_request_t *req, const char *transport_id);
/* router.canConsume for another node's producer (no worker needed: pure ortc). */
bool mf_gw_remote_can_consume(mf_gateway_t *gw, gw_room_t *room, const char *producer_id,
                              const json_t *caps);
/* The node commands above, on their worker. */
void mf_gw_run_node_cmd(gw_cmd_t *c, mf_worker_t *w);
/* A remote pipe lingered out on its target worker (worker thread): close the copy, tell
 * the source. */
void mf_gw_node_pipe_linger_close(mf_gateway_t *gw, gw_pipe_t *pipe, uint32_t worker);
/* The shard on `worker` closes: its links and the remote pipes into it go (worker). */
void mf_gw_node_shard_closed(mf_gateway_t *gw, gw_room_t *room, uint32_t worker);
/* "ip:port" of a worker's RTC socket. */
void mf_gw_worker_address(mf_gateway_t *gw, uint32_t worker, char out[GW_ADDR_MAX]);
/* The shard router of c->room on c's worker, created on first use (gateway_worker.c). */
mf_router_t *mf_gw_shard_router(gw_cmd_t *c, mf_worker_t *w, char *err, size_t errsz,
                                mf_err_t *e);

/* ---- gateway_nodes.c, used by gateway_forward*.c ---- */
/* rp describes the local producer o (mu held); texts[0] (rtpParameters) and texts[1]
 * (appData) are malloc'd, the caller frees both. */
void mf_gw_describe_locked(mf_gateway_t *gw, const gw_obj_t *o, const gw_self_t *me,
                           Mafalda__Cluster__RemoteProducer *rp, char addr[GW_ADDR_MAX],
                           char *texts[2]);
/* node_id (at rpc) hosts clients of the room too: it hears of this node's producers. */
void mf_gw_peer_add(mf_gateway_t *gw, gw_room_t *room, const char *node_id, const char *rpc);
/* A producer another node described, learnt now (and announced to the room if new). */
void mf_gw_learn_producer(mf_gateway_t *gw, gw_room_t *room,
                          const Mafalda__Cluster__RemoteProducer *rp);
/* Records a local producer in the controller (cmd: its AddProducer), then tells the room's
 * peers (node.RoomEvent produce), even when the record failed. false: not sent (no
 * cluster): the caller tells the peers itself. */
bool mf_gw_record_producer_then_announce(mf_gateway_t *gw, const Mafalda__Controller__Command *cmd,
                                         const char *producer_id);
/* Syncs the room with node_id (node.RoomSync) unless it is a peer already. */
void mf_gw_room_sync_peer(mf_gateway_t *gw, gw_room_t *room, const char *node_id,
                          const char *rpc);

/* ---- gateway_forward.c (front) and gateway_forward_in.c (serving): API calls of a client
 * of one node on another node's workers (node.ApiForward / ApiDeliver / ApiForwardEnd) ---- */
mf_err_t mf_gw_forward_create(mf_gateway_t *gw, gw_forward_t **out);
/* Ends the links served here (before the API server goes) and answers the calls waiting
 * for other nodes; call after the cluster was detached. */
void mf_gw_forward_stop(gw_forward_t *fw);
void mf_gw_forward_destroy(gw_forward_t *fw);
/* Front: the controller placed session s's new WebRTC transport on another node's worker:
 * forwards the create through the session's link to that node (made on first use). */
void mf_gw_forward_place(mf_gateway_t *gw, gw_room_t *room, mf_api_call_t *call,
                         mf_api_session_t *s, json_t *data, const char *node_id,
                         const char *rpc, uint32_t worker);
/* Front: when id (data.<field> of req) is an object of kind that one of the calling
 * session's links holds, forwards the call there and returns true (the call is taken). */
bool mf_gw_forward_owned(mf_gateway_t *gw, mf_api_call_t *call, const mf_api_request_t *req,
                         const char *id, gw_kind_t kind);
/* Resolves data.<field> of req to an object of kind of the calling session, on one of this
 * node's workers (*worker); fails the call and returns NULL otherwise. An object of the
 * session on another node: with forward, the call goes there (NULL returned, call taken);
 * without (DataChannel calls: SCTP transports are never forwarded), it fails unsupported. */
gw_room_t *mf_gw_owned(mf_gateway_t *gw, mf_api_call_t *call, const mf_api_request_t *req,
                       const char *field, gw_kind_t kind, bool forward, const char **id,
                       uint32_t *worker);
/* Front: the session's objects on other nodes close (its grace is over, or it closed). */
void mf_gw_forward_session_over(mf_gateway_t *gw, mf_api_session_t *s);
/* Front: a resuming session takes the old one's links over. */
void mf_gw_forward_adopt(mf_gateway_t *gw, mf_api_session_t *from, mf_api_session_t *to);
/* Front: the client session of a link (referenced), NULL when unknown. */
mf_api_session_t *mf_gw_forward_session(mf_gateway_t *gw, const char *link_id);
/* Both sides: node_id is lost: links to it report their objects closed, links from it end. */
void mf_gw_forward_node_lost(mf_gateway_t *gw, const char *node_id);
/* Serving: during a forwarded create, the worker the front's placement chose. */
bool mf_gw_forward_pin(mf_api_session_t *s, uint32_t *worker);
/* Serving: the link that virtual session s runs (false: s is not a link's). */
bool mf_gw_forward_link_of(mf_gateway_t *gw, const mf_api_session_t *s, char out[MF_ID_LEN + 1]);
bool mf_gw_forward_serves(const char *method);
mf_err_t mf_gw_forward_serve(mf_gateway_t *gw, const char *method, const uint8_t *payload,
                             size_t len, uint8_t **reply, size_t *reply_len,
                             const ProtobufCMessageDescriptor **reply_type, char *err,
                             size_t errsz);

/* Shared by gateway_forward.c and gateway_forward_in.c only. */
#define GW_FWD_JOIN_ID 0 /* the serving side's own router.join; the front's ids start at 1 */
typedef struct fwd_msg {
  struct fwd_msg *next;
  char text[];
} fwd_msg_t;

/* Serving side: the virtual session that runs a front's link. */
struct gw_fwd_in {
  gw_forward_t *fw;
  char id[MF_ID_LEN + 1];
  char node_id[65];
  char rpc[96];
  mf_api_session_t *session; /* virtual; NULL until opened (under call_mu) */
  unsigned refs;             /* fw->mu: the table's, plus one per user */
  uv_mutex_t call_mu;        /* one forwarded call at a time: the pin belongs to the call */
  bool pinned;               /* during a pinned create's submit (read by mf_gw_forward_pin) */
  uint32_t worker;
  int join_state; /* fw->mu: 0 waiting, 1 joined, -1 refused (join_err says why) */
  char join_err[MF_API_ERROR_MAX];
  fwd_msg_t *head, *tail; /* fw->mu: for the front, oldest first */
  bool sending, ending, ended, in_table;
  uint64_t retry_at; /* uv_hrtime(): a failed delivery waits until then */
};

struct gw_forward {
  uv_mutex_t mu;
  uv_cond_t cv;
  mf_hashmap_t *links; /* front: id -> fwd_link_t */
  mf_hashmap_t *objs;  /* front: object id -> fwd_obj_t */
  mf_hashmap_t *ins;   /* serving: link id -> gw_fwd_in_t */
  uv_thread_t sender;
  bool sender_started, stopping;
  mf_gateway_t *gw;
};

/* fw->mu held: drops a reference to in (freed with the last). */
void mf_gw_fwd_in_unref_locked(gw_fwd_in_t *in);
/* Ends every link served here (their virtual sessions end). */
void mf_gw_forward_in_stop(gw_forward_t *fw);
/* node.ApiDeliver on the front. */
mf_err_t mf_gw_forward_deliver(mf_gateway_t *gw, const uint8_t *payload, size_t len,
                               uint8_t **reply, size_t *reply_len, char *err, size_t errsz);

/* ---- gateway_data.c: DataChannels (transport.produceData / consumeData, issue 11) ---- */
void mf_gw_produce_data(void *ctx, mf_api_call_t *call, const mf_api_request_t *req);
void mf_gw_consume_data(void *ctx, mf_api_call_t *call, const mf_api_request_t *req);
void mf_gw_data_producer_op(void *ctx, mf_api_call_t *call, const mf_api_request_t *req);
void mf_gw_data_consumer_op(void *ctx, mf_api_call_t *call, const mf_api_request_t *req);
void mf_gw_list_data_producers(void *ctx, mf_api_call_t *call, const mf_api_request_t *req);
/* The OP_*_DATA commands, on their worker. */
void mf_gw_run_data_cmd(gw_cmd_t *c, mf_worker_t *w);
/* OP_CREATE_TRANSPORT made t: enables SCTP when c->data asks (enableSctp). false: the call
 * failed (answered) and t was closed. */
bool mf_gw_data_transport_created(gw_cmd_t *c, mf_router_transport_t *t);

#endif
