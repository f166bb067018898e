/* The gateway between nodes: one room (logical router) whose clients are connected to
 * several mafalda-node processes.
 *
 * Peers. A node that places a transport in a controller-known room asks the controller
 * which nodes hold shards of the router (controller.RouterNodes, after its own AddShard
 * committed, so of two nodes opening at once at least one sees the other) and calls
 * node.RoomSync on each: the callee adds the caller to the room's peers and answers with
 * the producers that originate on it. From then on each node tells its peers about its
 * producers (node.RoomEvent: produce, pause, resume, close), so every client of the room
 * sees every producer (router.newproducer, router.listProducers), wherever it lives.
 *
 * Pipes. The first consumer on worker B (this node, the TARGET) of a producer of another
 * node opens a pipe: B's worker makes (or reuses) a PipeTransport to the source worker's
 * RTC address, chooses both SRTP keys, and asks the source node (node.PipeOpen) to
 * consume the producer on a PipeTransport back to B; the answer carries the pipe
 * consumer's rtpParameters, with which B makes the copy (same producer id) on its
 * transport; the consumes that waited meanwhile then run. One transport pair per (source
 * worker, target worker) carries every producer piped between them. RTCP crosses like on
 * any transport (NACK/RTX, PLI/FIR, SR/RR). When the copy's last consumer leaves, the pipe
 * lingers, then B closes the copy and tells the source (node.PipeClose). Links (the
 * transports) stay until their shard closes or the other node is lost.
 *
 * Threads: RPC answers arrive on the agent's loop; node.* requests are served on libuv's
 * thread pool and wait for the worker that owns the objects; links are worker-owned. */
#define MF_LOG_MODULE "gateway"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/gateway_internal.h"
#include "node/ortc.h"
#include "proto/cluster.pb-c.h"

#define NODE_ROOM_SYNC "node.RoomSync"
#define NODE_ROOM_EVENT "node.RoomEvent"
#define NODE_PIPE_OPEN "node.PipeOpen"
#define NODE_PIPE_CLOSE "node.PipeClose"
#define CTL_ROUTER_NODES "controller.RouterNodes"


/* ------------------------------------------------------------ helpers */

bool mf_gw_parse_addr(const char *s, struct sockaddr_storage *out) {
  /* the API's host:port reader ([IPv6]:port); the host must be an address literal here */
  char host[GW_ADDR_MAX];
  uint16_t port = 0;
  if (!s || mf_api_listen_parse(s, host, sizeof host, &port, NULL) != MF_OK || port == 0)
    return false;
  memset(out, 0, sizeof *out);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0) return true;
  return uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0;
}

void mf_gw_worker_address(mf_gateway_t *gw, uint32_t worker, char out[GW_ADDR_MAX]) {
  mf_rtc_server_t *rtc = mf_worker_rtc_server(gw->workers[worker]);
  const char *ip = mf_rtc_server_announced_ip(rtc);
  snprintf(out, GW_ADDR_MAX, strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, mf_rtc_server_port(rtc));
}

bool mf_gw_self(mf_gateway_t *gw, gw_self_t *me) {
  uv_mutex_lock(&gw->mu);
  bool ok = gw->clustered && gw->cluster.node_id[0] && gw->cluster.call_node;
  memcpy(me->node_id, gw->cluster.node_id, sizeof me->node_id);
  memcpy(me->rpc, gw->cluster.rpc_address, sizeof me->rpc);
  uv_mutex_unlock(&gw->mu);
  return ok;
}

mf_err_t mf_gw_call_node(mf_gateway_t *gw, const char *rpc, const char *method,
                             const ProtobufCMessage *msg, mf_gateway_call_done_fn done,
                             void *ud) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  uint8_t *payload = malloc(len ? len : 1);
  if (!payload) return MF_ERR_NO_MEMORY;
  protobuf_c_message_pack(msg, payload);
  uv_mutex_lock(&gw->mu); /* see mf_gw_call: no call enters a detached agent */
  mf_err_t e = MF_ERR_STATE;
  if (gw->clustered && gw->cluster.call_node)
    e = gw->cluster.call_node(gw->cluster.ctx, rpc, method, payload, len, done, ud);
  else
    free(payload);
  uv_mutex_unlock(&gw->mu);
  return e;
}

const char *mf_gw_env_error(mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  if (!env) return mf_strerror(err);
  return env->error_message && env->error_message[0] ? env->error_message : "refused";
}


/* mu held. READY rooms only: an opening room has no router id yet. */
static gw_room_t *gw_room_by_router(mf_gateway_t *gw, const char *router_id) {
  if (!router_id || !router_id[0]) return NULL;
  for (gw_room_t *r = gw->rooms; r; r = r->next)
    if (r->state == GW_ROOM_READY && strcmp(r->router_id, router_id) == 0) return r;
  return NULL;
}

/* mu held. */
static void gw_peer_add_locked(gw_room_t *room, const char *node_id, const char *rpc) {
  if (!node_id || !node_id[0] || strlen(node_id) > 64 || !rpc || !rpc[0] || strlen(rpc) > 95)
    return;
  for (size_t i = 0; i < room->peer_count; i++) {
    if (strcmp(room->peers[i].node_id, node_id) == 0) {
      snprintf(room->peers[i].rpc_address, sizeof room->peers[i].rpc_address, "%s", rpc);
      return;
    }
  }
  if (room->peer_count == GW_PEERS_MAX) {
    MF_LOG_WARN("room '%s': more than %d peer nodes; node %s is not told about producers",
                room->name, GW_PEERS_MAX, node_id);
    return;
  }
  if (room->peer_count == room->peer_cap) {
    size_t cap = room->peer_cap ? room->peer_cap * 2 : 4;
    if (cap > GW_PEERS_MAX) cap = GW_PEERS_MAX;
    gw_peer_t *grown = realloc(room->peers, cap * sizeof *grown);
    if (!grown) {
      MF_LOG_ERROR("room '%s': out of memory; node %s is not told about producers", room->name,
                   node_id);
      return;
    }
    room->peers = grown;
    room->peer_cap = cap;
  }
  gw_peer_t *p = &room->peers[room->peer_count++];
  snprintf(p->node_id, sizeof p->node_id, "%s", node_id);
  snprintf(p->rpc_address, sizeof p->rpc_address, "%s", rpc);
  MF_LOG_INFO("room '%s': node %s (%s) hosts it too", room->name, node_id, rpc);
}

/* mu held; "" when unknown. */
const char *mf_gw_peer_rpc_locked(gw_room_t *room, const char *node_id) {
  for (size_t i = 0; i < room->peer_count; i++)
    if (strcmp(room->peers[i].node_id, node_id) == 0) return room->peers[i].rpc_address;
  return "";
}


/* ------------------------------------------------------------ remote producers */

/* A producer another node described: validated, indexed (true when new). */
static bool gw_remote_producer_put(mf_gateway_t *gw, gw_room_t *room,
                                   const Mafalda__Cluster__RemoteProducer *rp) {
  if (!rp || !rp->producer_id || !mf_id_is_valid(rp->producer_id) || !rp->node_id ||
      !rp->node_id[0] || strlen(rp->node_id) > 64 || !rp->rtc_address ||
      strlen(rp->rtc_address) >= GW_ADDR_MAX || !rp->kind ||
      (strcmp(rp->kind, "audio") != 0 && strcmp(rp->kind, "video") != 0)) {
    MF_LOG_WARN("room '%s': a peer described a producer badly; ignored", room->name);
    return false;
  }
  struct sockaddr_storage ss;
  json_t *params = rp->rtp_parameters_json ? json_loads(rp->rtp_parameters_json, 0, NULL) : NULL;
  if (!json_is_object(params) || !mf_gw_parse_addr(rp->rtc_address, &ss)) {
    MF_LOG_WARN("room '%s': producer %s from node %s: bad rtpParameters or address; ignored",
                room->name, rp->producer_id, rp->node_id);
    json_decref(params);
    return false;
  }
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_obj_t *o = mf_hashmap_get(gw->objs, mf_gw_key(rp->producer_id, key));
  if (o && o->kind == GW_REMOTE_PRODUCER) o->paused = rp->paused;
  uv_mutex_unlock(&gw->mu);
  if (o) {
    json_decref(params);
    return false;
  }
  o = mf_gw_index_add(gw, rp->producer_id, GW_REMOTE_PRODUCER, room, GW_NO_WORKER, NULL, NULL);
  if (!o) {
    json_decref(params);
    return false;
  }
  uv_mutex_lock(&gw->mu);
  snprintf(o->media_kind, sizeof o->media_kind, "%s", rp->kind);
  o->rtp_parameters = params;
  o->paused = rp->paused;
  snprintf(o->node_id, sizeof o->node_id, "%s", rp->node_id);
  snprintf(o->rtc_address, sizeof o->rtc_address, "%s", rp->rtc_address);
  json_t *ad = rp->app_data_json && rp->app_data_json[0] ? json_loads(rp->app_data_json, 0, NULL)
                                                         : NULL;
  if (json_is_object(ad))
    o->app_data = ad;
  else
    json_decref(ad);
  uv_mutex_unlock(&gw->mu);
  return true;
}

/* router.newproducer for a peer's producer, with its appData (an object, else {}). */
static void gw_announce(mf_gateway_t *gw, gw_room_t *room, mf_api_session_t *except,
                        const Mafalda__Cluster__RemoteProducer *rp) {
  json_t *ad = rp->app_data_json && rp->app_data_json[0] ? json_loads(rp->app_data_json, 0, NULL)
                                                         : NULL;
  if (!json_is_object(ad)) {
    json_decref(ad);
    ad = json_object();
  }
  mf_gw_notify_room(gw, room, except, "router.newproducer", rp->producer_id,
                    json_pack("{s:s, s:s, s:o}", "id", rp->producer_id, "kind", rp->kind,
                              "appData", ad));
}

/* A peer's producer is gone (closed, or its node lost). */
static void gw_remote_producer_close(mf_gateway_t *gw, const char *producer_id, const char *why) {
  mf_gw_remote_pipes_fail(gw, producer_id, GW_NO_WORKER, why);
  mf_gw_pipe_producer_state(gw, producer_id, "close"); /* copies close: producerclose */
  mf_gw_index_remove(gw, producer_id);
}

typedef struct {
  gw_room_t *room;
  const gw_self_t *me;
  mf_gateway_t *gw;
  Mafalda__Cluster__RemoteProducer items[256];
  Mafalda__Cluster__RemoteProducer *ptrs[256];
  char addrs[256][GW_ADDR_MAX];
  char *texts[256][2];
  size_t n;
  Mafalda__Cluster__RouterNode peer_items[GW_PEERS_MAX];
  Mafalda__Cluster__RouterNode *peer_ptrs[GW_PEERS_MAX];
  gw_peer_t peers[GW_PEERS_MAX];
  size_t peer_count;
} gw_sync_list_t;

static void gw_sync_list_fn(const void *key, void *value, void *ud) {
  (void)key;
  gw_sync_list_t *l = ud;
  gw_obj_t *o = value;
  if (o->kind != GW_PRODUCER || o->room != l->room || l->n == 256) return;
  mf_gw_describe_locked(l->gw, o, l->me, &l->items[l->n], l->addrs[l->n], l->texts[l->n]);
  l->ptrs[l->n] = &l->items[l->n];
  l->n++;
}

static void gw_sync_list_free(gw_sync_list_t *l) {
  for (size_t i = 0; l && i < l->n; i++) {
    free(l->texts[i][0]);
    free(l->texts[i][1]);
  }
  free(l);
}

/* The room's own producers (and its peers but `except`), for a RoomSync either way. */
static gw_sync_list_t *gw_sync_list(mf_gateway_t *gw, gw_room_t *room, const gw_self_t *me,
                                    const char *except) {
  gw_sync_list_t *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  l->gw = gw;
  l->me = me;
  l->room = room;
  uv_mutex_lock(&gw->mu);
  mf_hashmap_foreach(gw->objs, gw_sync_list_fn, l);
  for (size_t i = 0; i < room->peer_count; i++) {
    if (except && strcmp(room->peers[i].node_id, except) == 0) continue;
    l->peers[l->peer_count] = room->peers[i];
    Mafalda__Cluster__RouterNode init = MAFALDA__CLUSTER__ROUTER_NODE__INIT;
    l->peer_items[l->peer_count] = init;
    l->peer_items[l->peer_count].node_id = l->peers[l->peer_count].node_id;
    l->peer_items[l->peer_count].rpc_address = l->peers[l->peer_count].rpc_address;
    l->peer_ptrs[l->peer_count] = &l->peer_items[l->peer_count];
    l->peer_count++;
  }
  uv_mutex_unlock(&gw->mu);
  return l;
}

/* ------------------------------------------------------------ room sync (target side) */

typedef struct {
  mf_gateway_t *gw;
  gw_room_t *room;
  char node_id[65];
} gw_sync_t;

static void gw_sync_with(mf_gateway_t *gw, gw_room_t *room, const char *node_id,
                         const char *rpc);

static void gw_room_synced(void *ud, mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  gw_sync_t *s = ud;
  Mafalda__Cluster__RoomSyncResponse *r =
      env && env->status == MAFALDA__RPC__STATUS__STATUS_OK
          ? mafalda__cluster__room_sync_response__unpack(NULL, env->payload.len, env->payload.data)
          : NULL;
  if (!r) {
    MF_LOG_WARN("room '%s': node.RoomSync with node %s failed: %s", s->room->name, s->node_id,
                mf_gw_env_error(err, env));
  } else {
    size_t added = 0;
    for (size_t i = 0; i < r->n_producers; i++) {
      if (!gw_remote_producer_put(s->gw, s->room, r->producers[i])) continue;
      gw_announce(s->gw, s->room, NULL, r->producers[i]);
      added++;
    }
    MF_LOG_INFO("room '%s': synced with node %s (%zu producers there)", s->room->name, s->node_id,
                added);
    /* its peers that are not ours yet (nodes whose clients' transports all live elsewhere
     * hold no shard: the controller does not list them) */
    for (size_t i = 0; i < r->n_peers; i++)
      if (r->peers[i] && r->peers[i]->node_id && r->peers[i]->rpc_address)
        mf_gw_room_sync_peer(s->gw, s->room, r->peers[i]->node_id, r->peers[i]->rpc_address);
    mafalda__cluster__room_sync_response__free_unpacked(r, NULL);
  }
  free(s);
}

/* node.RoomSync with node_id: both sides learn each other's producers and peers. */
static void gw_sync_with(mf_gateway_t *gw, gw_room_t *room, const char *node_id,
                         const char *rpc) {
  gw_self_t me;
  if (!mf_gw_self(gw, &me) || strcmp(node_id, me.node_id) == 0) return;
  char router_id[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  memcpy(router_id, room->router_id, sizeof router_id);
  uv_mutex_unlock(&gw->mu);
  gw_sync_list_t *l = gw_sync_list(gw, room, &me, node_id);
  gw_sync_t *c = calloc(1, sizeof *c);
  if (!l || !c) {
    gw_sync_list_free(l);
    free(c);
    return;
  }
  Mafalda__Cluster__RoomSyncRequest q = MAFALDA__CLUSTER__ROOM_SYNC_REQUEST__INIT;
  q.router_id = router_id;
  q.node_id = me.node_id;
  q.rpc_address = me.rpc;
  q.n_producers = l->n;
  q.producers = l->ptrs;
  c->gw = gw;
  c->room = room;
  snprintf(c->node_id, sizeof c->node_id, "%s", node_id);
  if (mf_gw_call_node(gw, rpc, NODE_ROOM_SYNC, &q.base, gw_room_synced, c)) free(c);
  gw_sync_list_free(l);
}

void mf_gw_room_sync_peer(mf_gateway_t *gw, gw_room_t *room, const char *node_id,
                          const char *rpc) {
  gw_self_t me;
  if (!node_id || !rpc || !mf_gw_self(gw, &me) || strcmp(node_id, me.node_id) == 0) return;
  uv_mutex_lock(&gw->mu);
  bool known = mf_gw_peer_rpc_locked(room, node_id)[0] != '\0';
  if (!known) gw_peer_add_locked(room, node_id, rpc);
  uv_mutex_unlock(&gw->mu);
  if (!known) gw_sync_with(gw, room, node_id, rpc);
}

typedef struct {
  mf_gateway_t *gw;
  char producer_id[MF_ID_LEN + 1];
} gw_recording_t;

static void gw_producer_recorded(void *ud, mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  gw_recording_t *r = ud;
  if (!env || env->status != MAFALDA__RPC__STATUS__STATUS_OK)
    MF_LOG_WARN("recording producer %s in the controller failed: %s", r->producer_id,
                mf_gw_env_error(err, env));
  mf_gw_nodes_producer_event(r->gw, r->producer_id, NULL, "produce"); /* gone: no-op */
  free(r);
}

bool mf_gw_record_producer_then_announce(mf_gateway_t *gw, const Mafalda__Controller__Command *cmd,
                                         const char *producer_id) {
  gw_recording_t *r = calloc(1, sizeof *r);
  if (!r) return false;
  r->gw = gw;
  snprintf(r->producer_id, sizeof r->producer_id, "%s", producer_id);
  if (mf_gw_call(gw, "controller.Apply", &cmd->base, gw_producer_recorded, r) == MF_OK)
    return true;
  free(r);
  return false;
}

void mf_gw_peer_add(mf_gateway_t *gw, gw_room_t *room, const char *node_id, const char *rpc) {
  uv_mutex_lock(&gw->mu);
  gw_peer_add_locked(room, node_id, rpc);
  uv_mutex_unlock(&gw->mu);
}

void mf_gw_learn_producer(mf_gateway_t *gw, gw_room_t *room,
                          const Mafalda__Cluster__RemoteProducer *rp) {
  if (gw_remote_producer_put(gw, room, rp)) gw_announce(gw, room, NULL, rp);
}

static void gw_router_nodes(void *ud, mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  gw_sync_t *s = ud;
  mf_gateway_t *gw = s->gw;
  gw_room_t *room = s->room;
  Mafalda__Cluster__RouterNodesResponse *r =
      env && env->status == MAFALDA__RPC__STATUS__STATUS_OK
          ? mafalda__cluster__router_nodes_response__unpack(NULL, env->payload.len,
                                                            env->payload.data)
          : NULL;
  gw_self_t me;
  bool clustered = mf_gw_self(gw, &me);
  uv_mutex_lock(&gw->mu);
  room->syncing = false;
  room->synced = r != NULL;
  if (r)
    for (size_t i = 0; i < r->n_nodes; i++)
      if (strcmp(r->nodes[i]->node_id, me.node_id) != 0)
        gw_peer_add_locked(room, r->nodes[i]->node_id, r->nodes[i]->rpc_address);
  uv_mutex_unlock(&gw->mu);
  if (!r) {
    MF_LOG_WARN("room '%s': controller.RouterNodes failed (%s): other nodes' producers stay "
                "unknown until the next placement", room->name, mf_gw_env_error(err, env));
  } else if (clustered) {
    for (size_t i = 0; i < r->n_nodes; i++)
      gw_sync_with(gw, room, r->nodes[i]->node_id, r->nodes[i]->rpc_address);
  }
  if (r) mafalda__cluster__router_nodes_response__free_unpacked(r, NULL);
  free(s);
}

void mf_gw_room_sync(mf_gateway_t *gw, gw_room_t *room) {
  uv_mutex_lock(&gw->mu);
  bool go = room->placed_by_controller && !room->synced && !room->syncing;
  if (go) room->syncing = true;
  char router_id[MF_ID_LEN + 1];
  memcpy(router_id, room->router_id, sizeof router_id);
  uv_mutex_unlock(&gw->mu);
  if (!go) return;
  Mafalda__Cluster__RouterNodesRequest q = MAFALDA__CLUSTER__ROUTER_NODES_REQUEST__INIT;
  q.router_id = router_id;
  gw_sync_t *s = calloc(1, sizeof *s);
  if (s) {
    s->gw = gw;
    s->room = room;
    if (mf_gw_call(gw, CTL_ROUTER_NODES, &q.base, gw_router_nodes, s) == MF_OK) return;
    free(s);
  }
  uv_mutex_lock(&gw->mu);
  room->syncing = false;
  uv_mutex_unlock(&gw->mu);
}

/* ------------------------------------------------------------ producer events (source side) */

/* rp from an index entry (mu held); texts[0] (rtpParameters) and texts[1] (appData) are
 * malloc'd (the caller frees both). */
void mf_gw_describe_locked(mf_gateway_t *gw, const gw_obj_t *o, const gw_self_t *me,
                           Mafalda__Cluster__RemoteProducer *rp, char addr[GW_ADDR_MAX],
                           char *texts[2]) {
  Mafalda__Cluster__RemoteProducer init = MAFALDA__CLUSTER__REMOTE_PRODUCER__INIT;
  *rp = init;
  char **params_text = &texts[0];
  *params_text = o->rtp_parameters ? json_dumps(o->rtp_parameters, JSON_COMPACT) : NULL;
  texts[1] = o->app_data ? json_dumps(o->app_data, JSON_COMPACT) : NULL;
  rp->app_data_json = texts[1] ? texts[1] : "";
  mf_gw_worker_address(gw, o->worker, addr);
  rp->producer_id = (char *)o->id;
  rp->kind = (char *)o->media_kind;
  rp->rtp_parameters_json = *params_text ? *params_text : "";
  rp->paused = o->paused;
  rp->node_id = (char *)me->node_id;
  rp->worker = o->worker;
  rp->rtc_address = addr;
}

void mf_gw_nodes_producer_event(mf_gateway_t *gw, const char *producer_id, const gw_obj_t *gone,
                                const char *event) {
  gw_self_t me;
  if (!mf_gw_self(gw, &me)) return;
  gw_peer_t peers[GW_PEERS_MAX];
  size_t n = 0;
  char router_id[MF_ID_LEN + 1], addr[GW_ADDR_MAX], *text[2] = {NULL, NULL};
  Mafalda__Cluster__RemoteProducer rp;
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  const gw_obj_t *o = gone ? gone : mf_hashmap_get(gw->objs, mf_gw_key(producer_id, key));
  if (!o || o->kind != GW_PRODUCER || o->worker >= gw->worker_count || !o->room->peer_count) {
    uv_mutex_unlock(&gw->mu);
    return;
  }
  n = o->room->peer_count;
  memcpy(peers, o->room->peers, n * sizeof peers[0]);
  memcpy(router_id, o->room->router_id, sizeof router_id);
  mf_gw_describe_locked(gw, o, &me, &rp, addr, text);
  char id[MF_ID_LEN + 1];
  memcpy(id, o->id, sizeof id);
  rp.producer_id = id; /* o may go once the mutex is released */
  char kind[8];
  memcpy(kind, o->media_kind, sizeof kind);
  rp.kind = kind;
  mf_api_session_t *owner = o->session;
  mf_api_session_ref(owner);
  uv_mutex_unlock(&gw->mu);
  char link[MF_ID_LEN + 1];
  mf_gw_forward_link_of(gw, owner, link); /* the owner may be another node's client */
  mf_api_session_unref(owner);
  Mafalda__Cluster__RoomEventRequest q = MAFALDA__CLUSTER__ROOM_EVENT_REQUEST__INIT;
  q.forward_id = link;
  q.router_id = router_id;
  q.node_id = me.node_id;
  q.rpc_address = me.rpc;
  q.event = (char *)event;
  q.producer = &rp;
  for (size_t i = 0; i < n; i++) {
    char *what = malloc(160);
    if (!what) break;
    snprintf(what, 160, "node.RoomEvent %s of producer %s to node %.64s", event, id,
             peers[i].node_id);
    if (mf_gw_call_node(gw, peers[i].rpc_address, NODE_ROOM_EVENT, &q.base, mf_gw_node_told, what))
      free(what);
  }
  free(text[0]);
  free(text[1]);
}

/* ------------------------------------------------------------ serving other nodes */

bool mf_gateway_serves(const char *method) {
  return method && (strcmp(method, NODE_ROOM_SYNC) == 0 || strcmp(method, NODE_ROOM_EVENT) == 0 ||
                    strcmp(method, NODE_PIPE_OPEN) == 0 || strcmp(method, NODE_PIPE_CLOSE) == 0 ||
                    mf_gw_forward_serves(method));
}

static mf_err_t gw_pack(const ProtobufCMessage *m, uint8_t **reply, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  *reply = malloc(*len ? *len : 1);
  if (!*reply) return MF_ERR_NO_MEMORY;
  protobuf_c_message_pack(m, *reply);
  return MF_OK;
}

static mf_err_t gw_serve_room_sync(mf_gateway_t *gw, const uint8_t *payload, size_t len,
                                   uint8_t **reply, size_t *reply_len, char *err, size_t errsz) {
  Mafalda__Cluster__RoomSyncRequest *q =
      mafalda__cluster__room_sync_request__unpack(NULL, len, payload);
  if (!q) return snprintf(err, errsz, "malformed RoomSyncRequest"), MF_ERR_PARSE;
  gw_self_t me;
  mf_gw_self(gw, &me);
  uv_mutex_lock(&gw->mu);
  gw_room_t *room = gw_room_by_router(gw, q->router_id);
  if (room) gw_peer_add_locked(room, q->node_id, q->rpc_address);
  uv_mutex_unlock(&gw->mu);
  /* the caller's producers: a sync goes both ways */
  for (size_t i = 0; room && i < q->n_producers; i++)
    mf_gw_learn_producer(gw, room, q->producers[i]);
  Mafalda__Cluster__RoomSyncResponse r = MAFALDA__CLUSTER__ROOM_SYNC_RESPONSE__INIT;
  gw_sync_list_t *l = room ? gw_sync_list(gw, room, &me, q->node_id) : NULL;
  mf_err_t e = MF_OK;
  if (room && !l) {
    e = MF_ERR_NO_MEMORY;
  } else {
    r.has_room = room != NULL;
    r.n_producers = l ? l->n : 0;
    r.producers = l ? l->ptrs : NULL;
    r.n_peers = l ? l->peer_count : 0;
    r.peers = l ? l->peer_ptrs : NULL;
    e = gw_pack(&r.base, reply, reply_len);
  }
  gw_sync_list_free(l);
  protobuf_c_message_free_unpacked(&q->base, NULL);
  if (e) snprintf(err, errsz, "out of memory");
  return e;
}

static mf_err_t gw_serve_room_event(mf_gateway_t *gw, const uint8_t *payload, size_t len,
                                    char *err, size_t errsz) {
  Mafalda__Cluster__RoomEventRequest *q =
      mafalda__cluster__room_event_request__unpack(NULL, len, payload);
  if (!q) return snprintf(err, errsz, "malformed RoomEventRequest"), MF_ERR_PARSE;
  mf_err_t e = MF_OK;
  uv_mutex_lock(&gw->mu);
  gw_room_t *room = gw_room_by_router(gw, q->router_id);
  if (room) gw_peer_add_locked(room, q->node_id, q->rpc_address);
  uv_mutex_unlock(&gw->mu);
  const char *pid = q->producer ? q->producer->producer_id : NULL;
  if (!room) {
    e = MF_ERR_NOT_FOUND;
    snprintf(err, errsz, "no room for router %s here", q->router_id ? q->router_id : "");
  } else if (!pid || !mf_id_is_valid(pid) || !q->event) {
    e = MF_ERR_INVALID_ARG;
    snprintf(err, errsz, "RoomEvent needs an event and a producer id");
  } else if (strcmp(q->event, "produce") == 0) {
    /* a producer of this node's client made on the caller (a link): not announced to its
     * owner, who made it */
    mf_api_session_t *owner = mf_gw_forward_session(gw, q->forward_id);
    if (gw_remote_producer_put(gw, room, q->producer)) gw_announce(gw, room, owner, q->producer);
    mf_api_session_unref(owner);
  } else if (strcmp(q->event, "pause") == 0 || strcmp(q->event, "resume") == 0) {
    char key[MF_ID_LEN + 1];
    uv_mutex_lock(&gw->mu);
    gw_obj_t *o = mf_hashmap_get(gw->objs, mf_gw_key(pid, key));
    bool known = o && o->kind == GW_REMOTE_PRODUCER;
    if (known) o->paused = strcmp(q->event, "pause") == 0;
    uv_mutex_unlock(&gw->mu);
    if (known) mf_gw_pipe_producer_state(gw, pid, q->event);
  } else if (strcmp(q->event, "close") == 0) {
    char key[MF_ID_LEN + 1];
    uv_mutex_lock(&gw->mu);
    gw_obj_t *o = mf_hashmap_get(gw->objs, mf_gw_key(pid, key));
    bool known = o && o->kind == GW_REMOTE_PRODUCER;
    uv_mutex_unlock(&gw->mu);
    if (known) gw_remote_producer_close(gw, pid, "the producer closed");
  } else {
    e = MF_ERR_INVALID_ARG;
    snprintf(err, errsz, "unknown RoomEvent '%s'", q->event);
  }
  protobuf_c_message_free_unpacked(&q->base, NULL);
  return e;
}

/* mu held. A worker of this node holding a copy of producer_id (through a ready pipe from
 * another node, or a ring from such a worker), `hint` first: a relay sends from there. */
static bool gw_copy_worker_locked(mf_gateway_t *gw, const char *producer_id, uint32_t hint,
                                  uint32_t *out, bool *coming) {
  *coming = false;
  for (uint32_t i = 0; i <= gw->worker_count; i++) {
    uint32_t w = i == 0 ? hint : i - 1;
    if (w >= gw->worker_count || (i > 0 && w == hint)) continue;
    gw_pipe_key_t k = mf_gw_pipe_key(producer_id, w);
    gw_pipe_t *p = mf_hashmap_get(gw->pipes, &k);
    if (p && !p->dead && (!p->remote || p->ready)) {
      *out = w;
      return true;
    }
    if (p && !p->dead) *coming = true;
  }
  return false;
}

#define GW_RELAY_WAIT_MS 5000 /* a relay's own pipe may still be opening (chosen at once) */

/* Posts a node command for the source worker of producer_id and waits for it: the
 * producer's own worker, or (a relay) a worker with a copy of it. */
static mf_err_t gw_serve_on_worker(mf_gateway_t *gw, const char *router_id, gw_op_t op,
                                   gw_serve_t *sv, char *err, size_t errsz) {
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_room_t *room = NULL;
  bool ok = false, coming = false;
  uint32_t worker = 0;
  /* Served on the RPC pool: waiting here for a relay's copy blocks no event loop. */
  for (int waited = 0;; waited += 20) {
    room = gw_room_by_router(gw, router_id);
    gw_obj_t *o = room ? mf_hashmap_get(gw->objs, mf_gw_key(sv->producer_id, key)) : NULL;
    ok = o && o->kind == GW_PRODUCER && o->room == room;
    worker = ok ? o->worker : 0;
    sv->relay = false;
    if (!ok && o && o->kind == GW_REMOTE_PRODUCER && o->room == room &&
        gw_copy_worker_locked(gw, sv->producer_id, sv->worker, &worker, &coming))
      ok = sv->relay = true;
    if (ok || !coming || op != OP_NODE_PIPE_SERVE || waited >= GW_RELAY_WAIT_MS) break;
    uv_mutex_unlock(&gw->mu);
    uv_sleep(20);
    uv_mutex_lock(&gw->mu);
  }
  sv->worker = worker;
  uv_mutex_unlock(&gw->mu);
  if (!ok) {
    snprintf(err, errsz, "producer %s neither originates on this node nor is piped here",
             sv->producer_id);
    return MF_ERR_NOT_FOUND;
  }
  uv_sem_t done;
  if (uv_sem_init(&done, 0) != 0) return MF_ERR_IO;
  gw_cmd_t *c = mf_gw_cmd(gw, room, op, worker, NULL, NULL, NULL, sv->producer_id);
  if (!c) {
    uv_sem_destroy(&done);
    return MF_ERR_NO_MEMORY;
  }
  c->arg = sv;
  c->done = &done;
  sv->err = MF_ERR_CLOSED;
  snprintf(sv->msg, sizeof sv->msg, "the node is shutting down");
  mf_gw_send(c);
  uv_sem_wait(&done);
  uv_sem_destroy(&done);
  if (op == OP_NODE_PIPE_UNSERVE) return MF_OK;
  if (sv->err) snprintf(err, errsz, "%s", sv->msg);
  return sv->err;
}

static bool gw_key_from(const ProtobufCBinaryData *b, mf_pipe_srtp_t *out) {
  memset(out, 0, sizeof *out);
  size_t want = mf_srtp_profile_master_len(MF_PIPE_SRTP_PROFILE);
  if (b->len != want) return false;
  out->enabled = true;
  out->profile = MF_PIPE_SRTP_PROFILE;
  out->key_len = want;
  memcpy(out->key, b->data, want);
  return true;
}

static mf_err_t gw_serve_pipe_open(mf_gateway_t *gw, const uint8_t *payload, size_t len,
                                   uint8_t **reply, size_t *reply_len, char *err, size_t errsz) {
  Mafalda__Cluster__PipeOpenRequest *q =
      mafalda__cluster__pipe_open_request__unpack(NULL, len, payload);
  if (!q) return snprintf(err, errsz, "malformed PipeOpenRequest"), MF_ERR_PARSE;
  gw_serve_t sv = {.producer_id = q->producer_id, .addr = q->target_rtc_address,
                   .node_id = q->node_id, .worker = q->source_worker};
  struct sockaddr_storage ss;
  mf_err_t e = MF_OK;
  if (!q->producer_id || !mf_id_is_valid(q->producer_id) || !q->node_id || !q->node_id[0] ||
      strlen(q->node_id) > 64 || !q->target_rtc_address ||
      strlen(q->target_rtc_address) >= GW_ADDR_MAX || !mf_gw_parse_addr(q->target_rtc_address, &ss)) {
    e = MF_ERR_INVALID_ARG;
    snprintf(err, errsz, "PipeOpen needs a producer id, a node id and an ip:port");
  } else if (q->srtp != gw->pipe_srtp) {
    e = MF_ERR_INVALID_ARG;
    snprintf(err, errsz, "--pipe-srtp is %s on node %s and %s here: set it alike on every node",
             q->srtp ? "on" : "off", q->node_id, gw->pipe_srtp ? "on" : "off");
  } else if (q->srtp && (!gw_key_from(&q->key_source_to_target, &sv.s2t) ||
                         !gw_key_from(&q->key_target_to_source, &sv.t2s))) {
    e = MF_ERR_INVALID_ARG;
    snprintf(err, errsz, "SRTP keys must be %zu bytes (%s)",
             mf_srtp_profile_master_len(MF_PIPE_SRTP_PROFILE),
             mf_srtp_profile_name(MF_PIPE_SRTP_PROFILE));
  }
  if (!e) e = gw_serve_on_worker(gw, q->router_id, OP_NODE_PIPE_SERVE, &sv, err, errsz);
  if (!e) {
    char source[GW_ADDR_MAX];
    mf_gw_worker_address(gw, sv.worker, source);
    Mafalda__Cluster__PipeOpenResponse r = MAFALDA__CLUSTER__PIPE_OPEN_RESPONSE__INIT;
    r.consumer_rtp_parameters_json = sv.params_text;
    r.paused = sv.paused;
    r.source_rtc_address = source;
    r.source_worker = sv.worker;
    r.keys_changed = sv.keys_changed;
    if (sv.keys_changed) {
      r.key_source_to_target.data = sv.kept_s2t.key;
      r.key_source_to_target.len = sv.kept_s2t.key_len;
      r.key_target_to_source.data = sv.kept_t2s.key;
      r.key_target_to_source.len = sv.kept_t2s.key_len;
    }
    e = gw_pack(&r.base, reply, reply_len);
  }
  free(sv.params_text);
  memset(&sv.s2t, 0, sizeof sv.s2t);
  memset(&sv.t2s, 0, sizeof sv.t2s);
  memset(&sv.kept_s2t, 0, sizeof sv.kept_s2t);
  memset(&sv.kept_t2s, 0, sizeof sv.kept_t2s);
  protobuf_c_message_free_unpacked(&q->base, NULL);
  return e;
}

static mf_err_t gw_serve_pipe_close(mf_gateway_t *gw, const uint8_t *payload, size_t len,
                                    char *err, size_t errsz) {
  Mafalda__Cluster__PipeCloseRequest *q =
      mafalda__cluster__pipe_close_request__unpack(NULL, len, payload);
  if (!q) return snprintf(err, errsz, "malformed PipeCloseRequest"), MF_ERR_PARSE;
  mf_err_t e = MF_OK;
  if (!q->producer_id || !mf_id_is_valid(q->producer_id) || !q->target_rtc_address ||
      strlen(q->target_rtc_address) >= GW_ADDR_MAX) {
    e = MF_ERR_INVALID_ARG;
    snprintf(err, errsz, "PipeClose needs a producer id and an ip:port");
  } else {
    gw_serve_t sv = {.producer_id = q->producer_id, .addr = q->target_rtc_address};
    /* a producer already gone has no pipe left: that is success */
    if (gw_serve_on_worker(gw, q->router_id, OP_NODE_PIPE_UNSERVE, &sv, err, errsz) ==
        MF_ERR_NOT_FOUND)
      err[0] = '\0';
  }
  protobuf_c_message_free_unpacked(&q->base, NULL);
  return e;
}

mf_err_t mf_gateway_serve(mf_gateway_t *gw, const char *method, const uint8_t *payload,
                          size_t len, uint8_t **reply, size_t *reply_len,
                          const ProtobufCMessageDescriptor **reply_type, char *err,
                          size_t errsz) {
  *reply = NULL;
  *reply_len = 0;
  *reply_type = NULL;
  err[0] = '\0';
  mf_err_t e;
  if (mf_gw_forward_serves(method))
    return mf_gw_forward_serve(gw, method, payload, len, reply, reply_len, reply_type, err, errsz);
  if (strcmp(method, NODE_ROOM_SYNC) == 0) {
    *reply_type = &mafalda__cluster__room_sync_response__descriptor;
    return gw_serve_room_sync(gw, payload, len, reply, reply_len, err, errsz);
  }
  if (strcmp(method, NODE_PIPE_OPEN) == 0) {
    *reply_type = &mafalda__cluster__pipe_open_response__descriptor;
    return gw_serve_pipe_open(gw, payload, len, reply, reply_len, err, errsz);
  }
  if (strcmp(method, NODE_ROOM_EVENT) == 0) {
    *reply_type = &mafalda__cluster__room_event_response__descriptor;
    e = gw_serve_room_event(gw, payload, len, err, errsz);
  } else if (strcmp(method, NODE_PIPE_CLOSE) == 0) {
    *reply_type = &mafalda__cluster__pipe_close_response__descriptor;
    e = gw_serve_pipe_close(gw, payload, len, err, errsz);
  } else {
    snprintf(err, errsz, "unknown method %s", method);
    return MF_ERR_UNSUPPORTED;
  }
  if (e) return e;
  /* empty responses: zero bytes */
  *reply = malloc(1);
  return *reply ? MF_OK : MF_ERR_NO_MEMORY;
}

/* ------------------------------------------------------------ node lost */

typedef struct {
  const char *node_id;
  char ids[256][MF_ID_LEN + 1];
  size_t n;
} gw_lost_t;

static void gw_lost_fn(const void *key, void *value, void *ud) {
  (void)key;
  gw_lost_t *l = ud;
  gw_obj_t *o = value;
  if (o->kind == GW_REMOTE_PRODUCER && strcmp(o->node_id, l->node_id) == 0 && l->n < 256)
    memcpy(l->ids[l->n++], o->id, MF_ID_LEN + 1);
}

void mf_gateway_node_lost(mf_gateway_t *gw, const char *node_id) {
  if (!gw || !node_id || !node_id[0]) return;
  gw_lost_t *l = calloc(1, sizeof *l);
  if (!l) return;
  l->node_id = node_id;
  gw_cmd_t *drops[1024];
  size_t nd = 0;
  uv_mutex_lock(&gw->mu);
  for (gw_room_t *r = gw->rooms; r; r = r->next) {
    for (size_t i = 0; i < r->peer_count; i++) {
      if (strcmp(r->peers[i].node_id, node_id) != 0) continue;
      r->peers[i] = r->peers[--r->peer_count];
      MF_LOG_INFO("room '%s': node %s is gone", r->name, node_id);
      break;
    }
    for (uint32_t w = 0; w < gw->worker_count && nd < 1024; w++) {
      if (!r->shards[w].open) continue;
      gw_cmd_t *c = mf_gw_cmd(gw, r, OP_NODE_LINKS_DROP, w, NULL, NULL, NULL, NULL);
      if (!c) continue;
      snprintf(c->method, sizeof c->method, "%s", node_id);
      drops[nd++] = c;
    }
  }
  mf_hashmap_foreach(gw->objs, gw_lost_fn, l);
  uv_mutex_unlock(&gw->mu);
  if (l->n) MF_LOG_WARN("node %s lost: closing its %zu producers here", node_id, l->n);
  mf_gw_forward_node_lost(gw, node_id); /* links to it and from it */
  for (size_t i = 0; i < l->n; i++) gw_remote_producer_close(gw, l->ids[i], "its node was lost");
  for (size_t i = 0; i < nd; i++) mf_gw_send(drops[i]);
  free(l);
}

/* ------------------------------------------------------------ canConsume */

bool mf_gw_remote_can_consume(mf_gateway_t *gw, gw_room_t *room, const char *producer_id,
                              const json_t *caps_json) {
  char key[MF_ID_LEN + 1], err[256];
  uv_mutex_lock(&gw->mu);
  gw_obj_t *o = mf_hashmap_get(gw->objs, mf_gw_key(producer_id, key));
  json_t *jp = o && o->kind == GW_REMOTE_PRODUCER && o->room == room
                   ? json_incref(o->rtp_parameters) : NULL;
  mf_media_kind_t kind = o ? mf_media_kind_parse(o->media_kind) : MF_MEDIA_KIND_AUDIO;
  uv_mutex_unlock(&gw->mu);
  if (!jp) return false;
  struct {
    mf_rtp_parameters_t params, consumable;
    mf_rtp_capabilities_t router, remote;
    mf_rtp_mapping_t mapping;
  } *x = calloc(1, sizeof *x);
  bool ok = false;
  size_t n = room->codec_count;
  const mf_rtp_codec_capability_t *codecs = room->codecs ? room->codecs
                                                         : mf_ortc_default_media_codecs(&n);
  if (x && mf_rtp_parameters_from_json(jp, "rtpParameters", &x->params, err, sizeof err) == MF_OK &&
      mf_ortc_validate_rtp_parameters(&x->params, err, sizeof err) == MF_OK &&
      mf_ortc_generate_router_rtp_capabilities(codecs, n, &x->router, err, sizeof err) == MF_OK &&
      mf_ortc_get_producer_rtp_parameters_mapping(&x->params, &x->router, &x->mapping, err,
                                                  sizeof err) == MF_OK &&
      mf_ortc_get_consumable_rtp_parameters(kind, &x->params, &x->router, &x->mapping,
                                            &x->consumable, err, sizeof err) == MF_OK &&
      mf_rtp_capabilities_from_json(caps_json, "rtpCapabilities", &x->remote, err, sizeof err) ==
          MF_OK)
    ok = mf_ortc_can_consume(&x->consumable, &x->remote);
  free(x);
  json_decref(jp);
  return ok;
}
