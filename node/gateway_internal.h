/* Internals shared by the gateway's files (gateway.c: API methods and the worker side;
 * gateway_shards.c: rooms placed by the controller and object counts). Not a public
 * interface: only node/gateway*.c include it. Thread affinity as in gateway.h. */
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
#include "node/router.h"

#define GW_ROOM_MAX 128

typedef enum { GW_TRANSPORT, GW_PRODUCER, GW_CONSUMER } gw_kind_t;

typedef struct gw_room {
  struct gw_room *next;
  char name[GW_ROOM_MAX + 1];
  uint32_t worker;
  mf_router_t *router; /* worker thread only */
  mf_rtp_codec_capability_t *codecs; /* from router.create; NULL = the default list */
  size_t codec_count;
  struct gw_grace *graces; /* pending grace timers: worker thread only */
  char router_id[MF_ID_LEN + 1]; /* set on the worker, read under the mutex */
  char shard_id[MF_ID_LEN + 1];  /* the controller's router id when it placed this room
                                    here (mf_gateway_open_shard); "" for a local room */
} gw_room_t;

typedef struct {
  char id[MF_ID_LEN + 1];
  gw_kind_t kind;
  gw_room_t *room;
  mf_api_session_t *session; /* referenced */
  char transport_id[MF_ID_LEN + 1];
  char media_kind[8];
} gw_obj_t;

/* Per joined session: its room and the token that lets a new session adopt its objects. */
typedef struct {
  gw_room_t *room;
  char token[MF_ID_LEN + 1];
} gw_session_t;

/* A closed session whose objects wait for a resume (key: its token). */
typedef struct {
  gw_room_t *room;
  mf_api_session_t *old; /* referenced */
} gw_orphan_t;

/* The timer that ends a grace period, on the room's worker. */
typedef struct gw_grace {
  struct gw_grace *next;
  uv_timer_t timer;
  struct mf_gateway *gw;
  gw_room_t *room;
  char token[MF_ID_LEN + 1];
} gw_grace_t;

struct mf_gateway {
  mf_api_server_t *server;
  mf_worker_t *const *workers;
  uint32_t worker_count, next_worker;
  uv_mutex_t mu; /* rooms, objs, session rooms */
  gw_room_t *rooms;
  mf_hashmap_t *objs; /* id (37 bytes) -> gw_obj_t */
  mf_hashmap_t *orphans; /* resume token -> gw_orphan_t */
  unsigned grace_ms;
};

typedef enum {
  OP_JOIN, OP_CREATE_TRANSPORT, OP_CONNECT, OP_PRODUCE, OP_CONSUME, OP_CAN_CONSUME,
  OP_CLOSE_TRANSPORT, OP_PRODUCER, OP_CONSUMER, OP_CLOSE_ROOM, OP_CLOSE_ROUTER, OP_GRACE,
  OP_OPEN_SHARD
} gw_op_t;

typedef struct {
  mf_mailbox_msg_t link;
  mf_gateway_t *gw;
  gw_op_t op;
  mf_api_call_t *call;       /* NULL for internal commands */
  mf_api_session_t *session; /* referenced when set */
  gw_room_t *room;
  json_t *data;              /* referenced */
  char target[MF_ID_LEN + 1];
  char method[MF_API_METHOD_MAX + 1];
  uv_sem_t *done;            /* OP_CLOSE_ROOM, OP_OPEN_SHARD, internal OP_CLOSE_ROUTER: the
                                caller waits */
  mf_err_t *result;          /* OP_OPEN_SHARD: outcome and reason, in the caller's frame */
  char *err;
  size_t errsz;
} gw_cmd_t;

/* Runs a gw_cmd_t on the worker it was posted to (mf_worker_post). */
void mf_gateway_on_command(mf_mailbox_msg_t *msg, void *owner);

#endif
