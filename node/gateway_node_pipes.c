/* Pipes between nodes, target and source sides (see gateway_nodes.c for the protocol):
 * a consumer of another node's producer waits while its worker makes (or reuses) the
 * PipeTransport to the source worker and the source node consumes the producer on its end
 * (node.PipeOpen); the copy is then made with the pipe consumer's rtpParameters and the
 * waiting consumes run. Links (the transports) are owned by the shard's worker. */
#define MF_LOG_MODULE "gateway"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/gateway_internal.h"
#include "proto/cluster.pb-c.h"

#define NODE_PIPE_OPEN "node.PipeOpen"
#define NODE_PIPE_CLOSE "node.PipeClose"
#define CTL_PLACE_PIPE "controller.PlacePipe"

struct gw_link {
  gw_link_t *next;
  char addr[GW_ADDR_MAX]; /* the other node's worker (ip:port) */
  char node_id[65];
  bool target_made; /* made here as a pipe's target: this node chose the keys */
  mf_router_transport_t *t;
  /* SRTP keys by direction seen from this node, so one link serves pipes both ways: the
   * target of a pipe chooses both when it makes the link; the source takes them. */
  mf_pipe_srtp_t key_out, key_in;
};

static bool gw_key_equal(const mf_pipe_srtp_t *a, const mf_pipe_srtp_t *b) {
  return a->enabled == b->enabled && (!a->enabled || (a->profile == b->profile &&
                                                      a->key_len == b->key_len &&
                                                      memcmp(a->key, b->key, a->key_len) == 0));
}

/* ------------------------------------------------------------ consume a remote producer */

typedef struct {
  mf_gateway_t *gw;
  gw_cmd_t *open; /* OP_NODE_PIPE_OPEN, posted once the source is chosen */
  char origin[65];
} gw_placing_t;

/* controller.PlacePipe answered: the source is the origin, or a RELAY (a node that already
 * receives the producer, when the origin's worker sends its budget of pipes of it). Without
 * an answer the origin sends. */
static void gw_pipe_placed(void *ud, mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  gw_placing_t *pl = ud;
  mf_gateway_t *gw = pl->gw;
  gw_cmd_t *open = pl->open;
  Mafalda__Cluster__PlacePipeResponse *r =
      env && env->status == MAFALDA__RPC__STATUS__STATUS_OK
          ? mafalda__cluster__place_pipe_response__unpack(NULL, env->payload.len, env->payload.data)
          : NULL;
  bool recorded = r && (strcmp(r->action, "open") == 0 || strcmp(r->action, "reuse") == 0);
  bool usable = recorded && strcmp(r->kind, "transport") == 0 && r->source_node_id[0] &&
                strlen(r->source_node_id) <= 64 && r->source_rpc_address[0] &&
                r->source_rtc_address[0] && strlen(r->source_rtc_address) < GW_ADDR_MAX;
  gw_pipe_key_t k = mf_gw_pipe_key(open->target, open->worker);
  gw_pipe_t snap;
  bool forget = false;
  uv_mutex_lock(&gw->mu);
  gw_pipe_t *pipe = mf_hashmap_get(gw->pipes, &k);
  if (pipe && pipe->remote && !pipe->ready) {
    if (usable) {
      pipe->placed = true;
      snprintf(pipe->node_id, sizeof pipe->node_id, "%s", r->source_node_id);
      snprintf(pipe->source_addr, sizeof pipe->source_addr, "%s", r->source_rtc_address);
    } else if (recorded) {
      snap = *pipe; /* the controller recorded a source we do not use (a ring here) */
      forget = true;
    }
  }
  uv_mutex_unlock(&gw->mu);
  if (usable && strcmp(r->source_node_id, pl->origin) != 0) {
    json_object_set_new(open->data, "rpc", json_string(r->source_rpc_address));
    json_object_set_new(open->data, "addr", json_string(r->source_rtc_address));
    json_object_set_new(open->data, "node", json_string(r->source_node_id));
    json_object_set_new(open->data, "sourceWorker", json_integer(r->source_worker));
    MF_LOG_INFO("room '%s': producer %s relayed from node %s (depth %u): its origin %s sends "
                "its budget of pipes", open->room->name, open->target, r->source_node_id,
                r->depth, pl->origin);
  } else if (!r) {
    MF_LOG_WARN("room '%s': controller.PlacePipe for producer %s failed (%s): piping from its "
                "origin", open->room->name, open->target, mf_gw_env_error(err, env));
  }
  if (forget) mf_gw_pipe_record(gw, &snap, false);
  if (r) mafalda__cluster__place_pipe_response__free_unpacked(r, NULL);
  free(pl);
  mf_gw_send(open);
}

/* Asks the controller where the new pipe of open->target into open->worker comes from,
 * then posts open; posts it at once outside a controller-known room. */
static void gw_place_remote_pipe(mf_gateway_t *gw, gw_room_t *room, gw_cmd_t *open,
                                 const char *origin) {
  gw_self_t me;
  uv_mutex_lock(&gw->mu);
  bool placed = room->placed_by_controller;
  uv_mutex_unlock(&gw->mu);
  gw_placing_t *pl = placed && mf_gw_self(gw, &me) ? calloc(1, sizeof *pl) : NULL;
  if (pl) {
    pl->gw = gw;
    pl->open = open;
    snprintf(pl->origin, sizeof pl->origin, "%s", origin);
    Mafalda__Cluster__PlacePipeRequest q = MAFALDA__CLUSTER__PLACE_PIPE_REQUEST__INIT;
    q.producer_id = open->target;
    q.target_node_id = me.node_id;
    q.target_worker = open->worker;
    if (mf_gw_call(gw, CTL_PLACE_PIPE, &q.base, gw_pipe_placed, pl) == MF_OK) return;
    free(pl);
  }
  mf_gw_send(open);
}

void mf_gw_consume_remote(mf_gateway_t *gw, gw_room_t *room, uint32_t worker,
                          const char *producer_id, mf_api_call_t *call, mf_api_session_t *s,
                          const mf_api_request_t *req, const char *transport_id) {
  gw_cmd_t *consume = mf_gw_cmd(gw, room, OP_CONSUME, worker, call, s, req->data, transport_id);
  if (!consume) return;
  if (strlen(req->method) < sizeof consume->method)
    memcpy(consume->method, req->method, strlen(req->method) + 1);
  gw_pipe_key_t k = mf_gw_pipe_key(producer_id, worker);
  char key[MF_ID_LEN + 1], why[160] = "";
  gw_cmd_t *open = NULL;
  bool queued = false;
  char origin[65] = "";
  uv_mutex_lock(&gw->mu);
  gw_pipe_t *pipe = mf_hashmap_get(gw->pipes, &k);
  gw_obj_t *o = mf_hashmap_get(gw->objs, mf_gw_key(producer_id, key));
  if (!pipe && o && o->kind == GW_REMOTE_PRODUCER) {
    const char *rpc = mf_gw_peer_rpc_locked(room, o->node_id);
    pipe = calloc(1, sizeof *pipe);
    open = mf_gw_cmd(gw, room, OP_NODE_PIPE_OPEN, worker, NULL, NULL, NULL, producer_id);
    if (!rpc[0]) {
      snprintf(why, sizeof why, "node %s of producer %s is not a known peer of the room",
               o->node_id, producer_id);
    } else if (pipe && open) {
      memcpy(pipe->producer_id, k.producer_id, sizeof pipe->producer_id);
      pipe->dst = worker;
      pipe->src = GW_NO_WORKER;
      pipe->room = room;
      pipe->remote = true;
      snprintf(pipe->node_id, sizeof pipe->node_id, "%s", o->node_id);
      snprintf(pipe->source_addr, sizeof pipe->source_addr, "%s", o->rtc_address);
      open->data = json_pack("{s:s, s:s, s:s, s:s}", "kind", o->media_kind, "rpc", rpc,
                             "addr", o->rtc_address, "node", o->node_id);
      snprintf(origin, sizeof origin, "%s", o->node_id);
      if (!open->data || mf_hashmap_put(gw->pipes, &k, pipe) != MF_OK) {
        snprintf(why, sizeof why, "out of memory");
      } else {
        MF_LOG_INFO("room '%s': opening a pipe of producer %s from node %s (%s) to worker %u",
                    room->name, producer_id, o->node_id, o->rtc_address, worker);
        why[0] = '\0';
      }
    } else {
      snprintf(why, sizeof why, "out of memory");
    }
    if (why[0]) {
      free(pipe);
      pipe = NULL;
      if (open) mf_gw_cmd_free(open);
      open = NULL;
    }
  } else if (!pipe) {
    snprintf(why, sizeof why, "producer %s not found", producer_id);
  }
  if (pipe) {
    pipe->users++;
    consume->pipe = pipe;
    if (!pipe->ready && pipe->remote) {
      consume->next = pipe->waiting; /* reversed; put back in order when posted */
      pipe->waiting = consume;
      queued = true;
    }
  }
  uv_mutex_unlock(&gw->mu);
  if (!pipe) {
    consume->call = NULL;
    mf_gw_cmd_free(consume);
    mf_api_call_fail(call, strstr(why, "not found") ? MF_ERR_NOT_FOUND : MF_ERR_STATE, "%s", why);
    return;
  }
  if (open) gw_place_remote_pipe(gw, room, open, origin);
  if (!queued) mf_gw_send(consume);
}

/* The copy exists on dst (or the pipe failed): the waiting consumes run (or fail). */
static gw_cmd_t *gw_take_waiting_locked(gw_pipe_t *pipe) {
  gw_cmd_t *rev = pipe->waiting, *list = NULL;
  pipe->waiting = NULL;
  while (rev) {
    gw_cmd_t *next = rev->next;
    rev->next = list;
    list = rev;
    rev = next;
  }
  return list;
}

void mf_gw_remote_pipes_fail(mf_gateway_t *gw, const char *producer_id, uint32_t dst,
                                 const char *why) {
  gw_pipe_t *failed[64];
  gw_cmd_t *waiting[64];
  size_t n = 0;
  uv_mutex_lock(&gw->mu);
  for (uint32_t w = 0; w < gw->worker_count && n < 64; w++) {
    if (dst != GW_NO_WORKER && w != dst) continue;
    gw_pipe_key_t k = mf_gw_pipe_key(producer_id, w);
    gw_pipe_t *p = mf_hashmap_get(gw->pipes, &k);
    if (!p || !p->remote || p->ready) continue;
    mf_hashmap_remove(gw->pipes, &k);
    p->dead = true;
    waiting[n] = gw_take_waiting_locked(p);
    failed[n++] = p;
  }
  uv_mutex_unlock(&gw->mu);
  for (size_t i = 0; i < n; i++) {
    MF_LOG_WARN("pipe of producer %s from node %s to worker %u failed: %s", producer_id,
                failed[i]->node_id, failed[i]->dst, why);
    bool any = waiting[i] != NULL;
    for (gw_cmd_t *c = waiting[i], *next; c; c = next) {
      next = c->next;
      if (c->call) mf_api_call_fail(c->call, MF_ERR_STATE, "cannot pipe producer %s from node %s: %s",
                                    producer_id, failed[i]->node_id, why);
      c->call = NULL;
      gw_pipe_t *p = c->pipe;
      mf_gw_cmd_free(c);
      mf_gw_pipe_release(gw, p); /* the last reservation frees the dead pipe */
    }
    if (!any) free(failed[i]);
  }
}

/* ------------------------------------------------------------ links (worker) */

static gw_link_t *gw_link_find(gw_shard_t *shard, const char *addr) {
  for (gw_link_t *l = shard->links; l; l = l->next)
    if (strcmp(l->addr, addr) == 0) return l;
  return NULL;
}

/* Closes a link's transport (its pipe consumers and copies end) and forgets it. */
static void gw_link_drop(mf_gateway_t *gw, gw_shard_t *shard, gw_link_t *link) {
  for (gw_link_t **p = &shard->links; *p; p = &(*p)->next) {
    if (*p != link) continue;
    *p = link->next;
    break;
  }
  char tid[MF_ID_LEN + 1];
  snprintf(tid, sizeof tid, "%s", mf_router_transport_id(link->t));
  MF_LOG_INFO("pipe transport %s to node %s (%s) closed", tid, link->node_id, link->addr);
  mf_router_transport_close(link->t);
  gw_collect_t c = {.transport_id = tid};
  mf_gw_collect(gw, &c);
  for (size_t i = 0; i < c.count; i++) mf_gw_index_remove(gw, c.ids[i]);
  free(c.ids);
  memset(link, 0, sizeof *link);
  free(link);
}

/* A link to addr on this shard: the target of a pipe makes it with keys of its choosing
 * (key_out/key_in NULL), the source with the keys the target chose. */
static gw_link_t *gw_link_make(mf_gateway_t *gw, mf_router_t *r, gw_shard_t *shard,
                               const char *addr, const char *node_id,
                               const mf_pipe_srtp_t *key_out, const mf_pipe_srtp_t *key_in,
                               char *err, size_t errsz) {
  struct sockaddr_storage ss;
  if (!mf_gw_parse_addr(addr, &ss)) {
    snprintf(err, errsz, "bad pipe address '%s'", addr);
    return NULL;
  }
  gw_link_t *l = calloc(1, sizeof *l);
  if (!l || mf_router_create_pipe_transport(r, gw->pipe_srtp, &l->t) != MF_OK) {
    free(l);
    snprintf(err, errsz, "cannot create a pipe transport");
    return NULL;
  }
  mf_webrtc_transport_t *wt = mf_router_transport_webrtc(l->t);
  mf_err_t e = MF_OK;
  bool target = key_out == NULL;
  if (gw->pipe_srtp) {
    if (target) {
      mf_webrtc_transport_pipe_local_srtp(wt, &l->key_out);
      e = mf_pipe_srtp_generate(&l->key_in);
    } else {
      l->key_out = *key_out;
      l->key_in = *key_in;
    }
  }
  if (!e)
    e = mf_webrtc_transport_connect_pipe(wt, (struct sockaddr *)&ss,
                                         gw->pipe_srtp ? &l->key_in : NULL,
                                         gw->pipe_srtp ? &l->key_out : NULL, err, errsz);
  if (e) {
    if (!err[0]) snprintf(err, errsz, "%s", mf_strerror(e));
    mf_router_transport_close(l->t);
    free(l);
    return NULL;
  }
  snprintf(l->addr, sizeof l->addr, "%s", addr);
  snprintf(l->node_id, sizeof l->node_id, "%s", node_id);
  l->target_made = target;
  l->next = shard->links;
  shard->links = l;
  MF_LOG_INFO("pipe transport %s to node %s at %s (%s, %s side)", mf_router_transport_id(l->t),
              node_id, addr, gw->pipe_srtp ? "SRTP" : "plain RTP", target ? "target" : "source");
  return l;
}

typedef struct {
  gw_room_t *room;
  uint32_t dst;
  gw_pipe_t *found[256];
  size_t n;
} gw_pipe_scan_t;

static void gw_pipe_scan_fn(const void *key, void *value, void *ud) {
  (void)key;
  gw_pipe_scan_t *sc = ud;
  gw_pipe_t *p = value;
  if (p->remote && p->ready && p->room == sc->room && p->dst == sc->dst && sc->n < 256)
    sc->found[sc->n++] = p;
}

void mf_gw_node_shard_closed(mf_gateway_t *gw, gw_room_t *room, uint32_t worker) {
  gw_shard_t *shard = &room->shards[worker];
  while (shard->links) { /* the router closes the transports themselves */
    gw_link_t *l = shard->links;
    shard->links = l->next;
    memset(l, 0, sizeof *l);
    free(l);
  }
  /* remote pipes into this shard lose their copies with the router */
  gw_pipe_scan_t *sc = calloc(1, sizeof *sc);
  if (!sc) return;
  sc->room = room;
  sc->dst = worker;
  uv_mutex_lock(&gw->mu);
  mf_hashmap_foreach(gw->pipes, gw_pipe_scan_fn, sc);
  bool free_now[256];
  for (size_t i = 0; i < sc->n; i++) {
    gw_pipe_key_t k = mf_gw_pipe_key(sc->found[i]->producer_id, worker);
    mf_hashmap_remove(gw->pipes, &k);
    sc->found[i]->dead = true;
    free_now[i] = sc->found[i]->users == 0;
  }
  uv_mutex_unlock(&gw->mu);
  for (size_t i = 0; i < sc->n; i++) {
    mf_gw_pipe_record(gw, sc->found[i], false);
    if (free_now[i]) free(sc->found[i]);
  }
  free(sc);
}

/* ------------------------------------------------------------ worker commands */

static void gw_fail_pipe_cmd(gw_cmd_t *c, const char *why) {
  mf_gw_remote_pipes_fail(c->gw, c->target, c->worker, why);
}

typedef struct {
  mf_gateway_t *gw;
  gw_room_t *room;
  uint32_t worker;
  char producer_id[MF_ID_LEN + 1];
  char addr[GW_ADDR_MAX];
  char kind[8];
} gw_opening_t;

/* Keys travel to the worker in the command's JSON, as hex. */
static json_t *gw_key_hex(const ProtobufCBinaryData *b) {
  char hex[2 * MF_SRTP_MAX_MASTER_LEN + 1];
  size_t n = b->len <= MF_SRTP_MAX_MASTER_LEN ? b->len : 0;
  for (size_t i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", b->data[i]);
  hex[2 * n] = '\0';
  return json_string(hex);
}

static bool gw_key_from_hex(const char *hex, mf_pipe_srtp_t *out) {
  memset(out, 0, sizeof *out);
  size_t want = mf_srtp_profile_master_len(MF_PIPE_SRTP_PROFILE);
  if (!hex || strlen(hex) != 2 * want || want > sizeof out->key) return false;
  for (size_t i = 0; i < want; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1) return false;
    out->key[i] = (uint8_t)v;
  }
  out->enabled = true;
  out->profile = MF_PIPE_SRTP_PROFILE;
  out->key_len = want;
  return true;
}

static void gw_pipe_opened(void *ud, mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  gw_opening_t *o = ud;
  Mafalda__Cluster__PipeOpenResponse *r =
      env && env->status == MAFALDA__RPC__STATUS__STATUS_OK
          ? mafalda__cluster__pipe_open_response__unpack(NULL, env->payload.len, env->payload.data)
          : NULL;
  if (!r) {
    mf_gw_remote_pipes_fail(o->gw, o->producer_id, o->worker, mf_gw_env_error(err, env));
  } else {
    gw_cmd_t *c = mf_gw_cmd(o->gw, o->room, OP_NODE_PIPE_PRODUCE, o->worker, NULL, NULL, NULL,
                            o->producer_id);
    if (c)
      c->data = json_pack("{s:s, s:s, s:b, s:s, s:i}", "params", r->consumer_rtp_parameters_json,
                          "kind", o->kind, "paused", r->paused, "addr", o->addr,
                          "sourceWorker", (int)r->source_worker);
    if (c && c->data && r->keys_changed) {
      json_object_set_new(c->data, "s2t", gw_key_hex(&r->key_source_to_target));
      json_object_set_new(c->data, "t2s", gw_key_hex(&r->key_target_to_source));
    }
    if (c && c->data)
      mf_gw_send(c);
    else {
      if (c) mf_gw_cmd_free(c);
      mf_gw_remote_pipes_fail(o->gw, o->producer_id, o->worker, "out of memory");
    }
    mafalda__cluster__pipe_open_response__free_unpacked(r, NULL);
  }
  free(o);
}

/* Target worker: the link to the source, then node.PipeOpen to the source node. */
static void gw_run_pipe_open(gw_cmd_t *c, mf_worker_t *w) {
  mf_gateway_t *gw = c->gw;
  char err[256] = "";
  mf_err_t e = MF_OK;
  mf_router_t *r = mf_gw_shard_router(c, w, err, sizeof err, &e);
  const char *addr = json_string_value(json_object_get(c->data, "addr"));
  const char *rpc = json_string_value(json_object_get(c->data, "rpc"));
  const char *kind = json_string_value(json_object_get(c->data, "kind"));
  gw_self_t me;
  if (!r) return gw_fail_pipe_cmd(c, err);
  if (!mf_gw_self(gw, &me)) return gw_fail_pipe_cmd(c, "this node left the cluster");
  gw_shard_t *shard = &c->room->shards[c->worker];
  gw_link_t *l = gw_link_find(shard, addr);
  if (!l) {
    const char *node = json_string_value(json_object_get(c->data, "node")); /* the source */
    l = gw_link_make(gw, r, shard, addr, node ? node : "", NULL, NULL, err, sizeof err);
    if (!l) return gw_fail_pipe_cmd(c, err);
  }
  char target[GW_ADDR_MAX], router_id[MF_ID_LEN + 1];
  mf_gw_worker_address(gw, c->worker, target);
  uv_mutex_lock(&gw->mu);
  memcpy(router_id, c->room->router_id, sizeof router_id);
  uv_mutex_unlock(&gw->mu);
  Mafalda__Cluster__PipeOpenRequest q = MAFALDA__CLUSTER__PIPE_OPEN_REQUEST__INIT;
  q.router_id = router_id;
  q.producer_id = c->target;
  q.node_id = me.node_id;
  q.target_rtc_address = target;
  q.srtp = gw->pipe_srtp;
  json_t *sw = json_object_get(c->data, "sourceWorker");
  q.relay = sw != NULL;
  q.source_worker = (uint32_t)json_integer_value(sw);
  if (gw->pipe_srtp) { /* we are the target: the source sends with our key_in */
    q.key_source_to_target.data = l->key_in.key;
    q.key_source_to_target.len = l->key_in.key_len;
    q.key_target_to_source.data = l->key_out.key;
    q.key_target_to_source.len = l->key_out.key_len;
  }
  gw_opening_t *o = calloc(1, sizeof *o);
  if (!o) return gw_fail_pipe_cmd(c, "out of memory");
  o->gw = gw;
  o->room = c->room;
  o->worker = c->worker;
  snprintf(o->producer_id, sizeof o->producer_id, "%s", c->target);
  snprintf(o->addr, sizeof o->addr, "%s", addr);
  snprintf(o->kind, sizeof o->kind, "%s", kind ? kind : "");
  if (mf_gw_call_node(gw, rpc, NODE_PIPE_OPEN, &q.base, gw_pipe_opened, o) != MF_OK) {
    free(o);
    gw_fail_pipe_cmd(c, "cannot reach the source node");
  }
}

/* mu held: the remote pipe of c that is still opening, copied (NULL when it went away:
 * its producer closed or its node was lost meanwhile). */
static bool gw_opening_pipe_locked(gw_cmd_t *c, gw_pipe_t *copy) {
  gw_pipe_key_t k = mf_gw_pipe_key(c->target, c->worker);
  gw_pipe_t *pipe = mf_hashmap_get(c->gw->pipes, &k);
  if (!pipe || !pipe->remote || pipe->ready) return false;
  *copy = *pipe;
  return true;
}

/* Target worker: the copy on the link, then the waiting consumes. */
static void gw_run_pipe_produce(gw_cmd_t *c) {
  mf_gateway_t *gw = c->gw;
  char err[256] = "";
  gw_pipe_t snap;
  uv_mutex_lock(&gw->mu);
  bool wanted = gw_opening_pipe_locked(c, &snap);
  uv_mutex_unlock(&gw->mu);
  mf_router_t *r = c->room->shards[c->worker].router;
  const char *addr = json_string_value(json_object_get(c->data, "addr"));
  gw_link_t *l = r && addr ? gw_link_find(&c->room->shards[c->worker], addr) : NULL;
  mf_pipe_srtp_t s2t, t2s;
  if (wanted && r && addr && gw_key_from_hex(json_string_value(json_object_get(c->data, "s2t")), &s2t) &&
      gw_key_from_hex(json_string_value(json_object_get(c->data, "t2s")), &t2s) &&
      (!l || !gw_key_equal(&l->key_in, &s2t) || !gw_key_equal(&l->key_out, &t2s))) {
    /* the source kept the link it had made: ours takes its keys */
    char node[65];
    snprintf(node, sizeof node, "%s", l ? l->node_id : snap.node_id);
    if (l) gw_link_drop(gw, &c->room->shards[c->worker], l);
    l = gw_link_make(gw, r, &c->room->shards[c->worker], addr, node, &t2s, &s2t, err, sizeof err);
    memset(&s2t, 0, sizeof s2t);
    memset(&t2s, 0, sizeof t2s);
    if (!l) return gw_fail_pipe_cmd(c, err);
  }
  if (!wanted) {
    /* nobody waits for it any more: the source must stop sending */
    MF_LOG_INFO("pipe of producer %s into worker %u is no longer needed", c->target, c->worker);
    memset(&snap, 0, sizeof snap);
    snprintf(snap.producer_id, sizeof snap.producer_id, "%s", c->target);
    snap.room = c->room;
    char key[MF_ID_LEN + 1];
    uv_mutex_lock(&gw->mu);
    gw_obj_t *o = mf_hashmap_get(gw->objs, mf_gw_key(c->target, key));
    if (o) snprintf(snap.node_id, sizeof snap.node_id, "%s", o->node_id);
    uv_mutex_unlock(&gw->mu);
    if (snap.node_id[0]) mf_gw_node_pipe_linger_close(gw, &snap, c->worker);
    return;
  }
  if (!l) return gw_fail_pipe_cmd(c, "the pipe transport closed meanwhile");
  json_t *jp = json_loads(json_string_value(json_object_get(c->data, "params")), 0, NULL);
  mf_rtp_parameters_t *params = malloc(sizeof *params);
  mf_err_t e = params && jp ? mf_rtp_parameters_from_json(jp, "rtpParameters", params, err, sizeof err)
                            : MF_ERR_PARSE;
  json_decref(jp);
  mf_producer_t *p = NULL;
  if (!e)
    e = mf_router_pipe_transport_produce(
        l->t, c->target, mf_media_kind_parse(json_string_value(json_object_get(c->data, "kind"))),
        params, json_is_true(json_object_get(c->data, "paused")), err, sizeof err, &p);
  free(params);
  if (e && e != MF_ERR_EXISTS) {
    if (!err[0]) snprintf(err, sizeof err, "bad rtpParameters from the source");
    return gw_fail_pipe_cmd(c, err);
  }
  gw_pipe_key_t k = mf_gw_pipe_key(c->target, c->worker);
  gw_cmd_t *list = NULL;
  uv_mutex_lock(&gw->mu);
  wanted = gw_opening_pipe_locked(c, &snap);
  if (wanted) {
    gw_pipe_t *pipe = mf_hashmap_get(gw->pipes, &k);
    pipe->ready = true;
    pipe->source_worker = (uint32_t)json_integer_value(json_object_get(c->data, "sourceWorker"));
    snap.source_worker = pipe->source_worker;
    list = gw_take_waiting_locked(pipe);
  }
  uv_mutex_unlock(&gw->mu);
  if (!wanted) { /* closed while we made it */
    mf_producer_t *copy = mf_router_find_producer(r, c->target);
    if (copy && mf_producer_is_piped(copy)) mf_producer_close(copy);
    return;
  }
  MF_LOG_INFO("room '%s': producer %s piped from node %s into worker %u", c->room->name,
              c->target, snap.node_id, c->worker);
  if (!snap.placed) mf_gw_pipe_record(gw, &snap, true); /* PlacePipe recorded it already */
  /* posted to this worker: they run after this command, once the copy exists */
  for (gw_cmd_t *x = list, *next; x; x = next) {
    next = x->next;
    x->next = NULL;
    mf_gw_send(x);
  }
}

/* The GW_PIPE_OUT consumer of producer_id on a link's transport, if any. */
static mf_consumer_t *gw_pipe_out_find(mf_gateway_t *gw, mf_router_t *r, gw_link_t *l,
                                       const char *producer_id) {
  gw_collect_t c = {.transport_id = mf_router_transport_id(l->t), .kind = GW_PIPE_OUT,
                    .match_kind = true};
  mf_gw_collect(gw, &c);
  mf_consumer_t *found = NULL;
  for (size_t i = 0; i < c.count && !found; i++) {
    mf_consumer_t *con = mf_router_find_consumer(r, c.ids[i]);
    if (con && strcmp(mf_producer_id(mf_consumer_producer(con)), producer_id) == 0) found = con;
  }
  free(c.ids);
  return found;
}

/* Source worker: the link to the target (with its keys) and the pipe consumer on it. */
static void gw_run_pipe_serve(gw_cmd_t *c) {
  mf_gateway_t *gw = c->gw;
  gw_serve_t *sv = c->arg;
  mf_router_t *r = c->room->shards[c->worker].router;
  mf_producer_t *p = r ? mf_router_find_producer(r, sv->producer_id) : NULL;
  if (!p || (mf_producer_is_piped(p) && !sv->relay)) {
    sv->err = MF_ERR_NOT_FOUND;
    snprintf(sv->msg, sizeof sv->msg, "producer %s does not originate on this node",
             sv->producer_id);
    return;
  }
  gw_shard_t *shard = &c->room->shards[c->worker];
  gw_link_t *l = gw_link_find(shard, sv->addr);
  gw_self_t me;
  sv->keys_changed = false;
  if (l && (!gw_key_equal(&l->key_out, &sv->s2t) || !gw_key_equal(&l->key_in, &sv->t2s))) {
    if (l->target_made && mf_gw_self(gw, &me) && strcmp(me.node_id, sv->node_id) < 0) {
      /* both ends made a link to the other at once: the smaller node id keeps its own and
       * the caller takes its keys (as the caller sees them) */
      sv->keys_changed = true;
      sv->kept_s2t = l->key_out;
      sv->kept_t2s = l->key_in;
      MF_LOG_INFO("pipe transport to node %s (%s): both ends made one; keeping ours",
                  sv->node_id, sv->addr);
    } else {
      /* the target made a new transport (new keys): ours must follow */
      gw_link_drop(gw, shard, l);
      l = NULL;
    }
  }
  if (!l) l = gw_link_make(gw, r, shard, sv->addr, sv->node_id, &sv->s2t, &sv->t2s, sv->msg,
                           sizeof sv->msg);
  if (!l) {
    sv->err = MF_ERR_STATE;
    return;
  }
  mf_consumer_t *con = gw_pipe_out_find(gw, r, l, sv->producer_id);
  if (!con) {
    sv->err = mf_router_consume(l->t, sv->producer_id, mf_router_rtp_capabilities(r), false,
                                sv->msg, sizeof sv->msg, &con);
    if (sv->err) return;
    gw_obj_t *o = mf_gw_index_add(gw, mf_consumer_id(con), GW_PIPE_OUT, c->room, c->worker,
                                  NULL, mf_router_transport_id(l->t));
    if (o) {
      uv_mutex_lock(&gw->mu);
      snprintf(o->producer_id, sizeof o->producer_id, "%s", sv->producer_id);
      snprintf(o->node_id, sizeof o->node_id, "%s", sv->node_id);
      uv_mutex_unlock(&gw->mu);
      /* a relay's copy stays while it feeds another node (like a consumer) */
      mf_gw_pipe_consumer_added(gw, sv->producer_id, c->worker);
    }
    MF_LOG_INFO("room '%s': producer %s piped out to node %s (%s) from worker %u%s",
                c->room->name, sv->producer_id, sv->node_id, sv->addr, c->worker,
                sv->relay ? " (a relay: from its copy)" : "");
  }
  sv->params_text = strdup(mf_consumer_rtp_parameters_text(con));
  sv->paused = mf_producer_paused(p);
  if (!sv->params_text) {
    sv->err = MF_ERR_NO_MEMORY;
    snprintf(sv->msg, sizeof sv->msg, "out of memory");
  }
}

static void gw_run_pipe_unserve(gw_cmd_t *c) {
  gw_serve_t *sv = c->arg;
  mf_router_t *r = c->room->shards[c->worker].router;
  gw_link_t *l = r ? gw_link_find(&c->room->shards[c->worker], sv->addr) : NULL;
  mf_consumer_t *con = l ? gw_pipe_out_find(c->gw, r, l, sv->producer_id) : NULL;
  if (!con) return; /* gone already (producer closed, link dropped): nothing to do */
  char id[MF_ID_LEN + 1];
  snprintf(id, sizeof id, "%s", mf_consumer_id(con));
  mf_consumer_close(con);
  mf_gw_index_remove(c->gw, id);
  MF_LOG_INFO("room '%s': pipe of producer %s to %s closed (no consumers there)",
              c->room->name, sv->producer_id, sv->addr);
}

void mf_gw_run_node_cmd(gw_cmd_t *c, mf_worker_t *w) {
  switch (c->op) {
    case OP_NODE_PIPE_OPEN:
      gw_run_pipe_open(c, w);
      break;
    case OP_NODE_PIPE_PRODUCE:
      gw_run_pipe_produce(c);
      break;
    case OP_NODE_PIPE_SERVE:
      gw_run_pipe_serve(c);
      break;
    case OP_NODE_PIPE_UNSERVE:
      gw_run_pipe_unserve(c);
      break;
    case OP_NODE_LINKS_DROP: {
      gw_shard_t *shard = &c->room->shards[c->worker];
      for (gw_link_t *l = shard->links, *next; l; l = next) {
        next = l->next;
        if (strcmp(l->node_id, c->method) == 0) gw_link_drop(c->gw, shard, l);
      }
      break;
    }
    default:
      break;
  }
}

void mf_gw_node_pipe_linger_close(mf_gateway_t *gw, gw_pipe_t *pipe, uint32_t worker) {
  mf_router_t *r = pipe->room->shards[worker].router;
  mf_producer_t *p = r ? mf_router_find_producer(r, pipe->producer_id) : NULL;
  if (p && mf_producer_is_piped(p)) mf_producer_close(p);
  char router_id[MF_ID_LEN + 1], rpc[96], target[GW_ADDR_MAX];
  uv_mutex_lock(&gw->mu);
  memcpy(router_id, pipe->room->router_id, sizeof router_id);
  snprintf(rpc, sizeof rpc, "%s", mf_gw_peer_rpc_locked(pipe->room, pipe->node_id));
  uv_mutex_unlock(&gw->mu);
  mf_gw_worker_address(gw, worker, target);
  Mafalda__Cluster__PipeCloseRequest q = MAFALDA__CLUSTER__PIPE_CLOSE_REQUEST__INIT;
  q.router_id = router_id;
  q.producer_id = pipe->producer_id;
  q.target_rtc_address = target;
  char *what = malloc(160);
  if (!rpc[0] || !what) {
    free(what);
    return;
  }
  snprintf(what, 160, "node.PipeClose of producer %s to node %.64s", pipe->producer_id,
           pipe->node_id);
  if (mf_gw_call_node(gw, rpc, NODE_PIPE_CLOSE, &q.base, mf_gw_node_told, what)) free(what);
}
