/* The gateway's cluster side: opening rooms as logical routers of the controller, placing
 * transports with the controller's scheduler, and the pipes between workers of this node.
 *
 * Pipes: the first consumer on worker B of a producer whose origin is worker A opens the
 * pipe A -> B: B gets a piped copy of the producer (same id and rtpParameters, fed by the
 * pipe hub), A lends it every packet. Three commands posted in this order: PIPE_IN to B,
 * PIPE_OUT to A, CONSUME to B; B's mailbox is FIFO, so the copy exists before the consume
 * runs, and a packet A sends before B bound the pipe is only counted as unbound. Later
 * consumers on B reuse the pipe. When B's last consumer of it leaves, the pipe lingers
 * (--pipe-linger-ms) and then closes unless a consumer came back. Within a node the origin
 * always feeds its pipes (a worker feeds at most workers-1 pipes of one producer); relay
 * trees matter across nodes, which is the controller's PlacePipe (not used here yet). */
#define MF_LOG_MODULE "gateway"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/gateway_internal.h"
#include "node/ortc.h"
#include "proto/cluster.pb-c.h"
#include "proto/controller.pb-c.h"

#define GW_METHOD_APPLY "controller.Apply"
#define GW_METHOD_OPEN_ROUTER "controller.OpenRouter"
#define GW_METHOD_PLACE_TRANSPORT "controller.PlaceTransport"

bool mf_gw_node_id(mf_gateway_t *gw, char out[65]) {
  uv_mutex_lock(&gw->mu);
  bool ok = gw->clustered && gw->cluster.node_id[0];
  memcpy(out, gw->cluster.node_id, 65);
  uv_mutex_unlock(&gw->mu);
  return ok;
}

mf_err_t mf_gw_call(mf_gateway_t *gw, const char *method, const ProtobufCMessage *msg,
                        mf_gateway_call_done_fn done, void *ud) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  uint8_t *payload = malloc(len ? len : 1);
  if (!payload) return MF_ERR_NO_MEMORY;
  protobuf_c_message_pack(msg, payload);
  /* Under the mutex: once mf_gateway_set_cluster(NULL) returns, no call is entering the
   * agent (call() only posts to its mailbox; done runs later, without the mutex). */
  uv_mutex_lock(&gw->mu);
  mf_err_t e = MF_ERR_STATE;
  if (gw->clustered && gw->cluster.call)
    e = gw->cluster.call(gw->cluster.ctx, method, payload, len, done, ud);
  else
    free(payload);
  uv_mutex_unlock(&gw->mu);
  return e;
}

void mf_gw_node_told(void *ud, mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  char *what = ud;
  if (!env || env->status != MAFALDA__RPC__STATUS__STATUS_OK)
    MF_LOG_WARN("%s failed: %s", what, mf_gw_env_error(err, env));
  free(what);
}

void mf_gw_tell_controller(mf_gateway_t *gw, const Mafalda__Controller__Command *cmd) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field(&mafalda__controller__command__descriptor,
                                              (unsigned)cmd->cmd_case);
  char *what = malloc(96);
  if (!what) return;
  snprintf(what, 96, "recording %s in the controller", f ? f->name : "a command");
  mf_err_t e = mf_gw_call(gw, GW_METHOD_APPLY, &cmd->base, mf_gw_node_told, what);
  if (e) free(what); /* not clustered (a local room) or shutting down: nothing to record */
}

void mf_gw_report_event(mf_gateway_t *gw, int kind, uint32_t worker, const char *object_id,
                        const char *detail) {
  uv_mutex_lock(&gw->mu); /* as mf_gw_call: never into a detached agent */
  if (gw->clustered && gw->cluster.event)
    gw->cluster.event(gw->cluster.ctx, kind, worker, object_id, detail);
  uv_mutex_unlock(&gw->mu);
}

/* ------------------------------------------------------------ rooms */

/* READY with id (placed: the controller knows it); answers the waiting calls. */
static void gw_room_ready(mf_gateway_t *gw, gw_room_t *room, const char *id, bool placed,
                          bool existed) {
  uv_mutex_lock(&gw->mu);
  snprintf(room->router_id, sizeof room->router_id, "%s", id);
  room->placed_by_controller = placed;
  room->state = GW_ROOM_READY;
  gw_wait_t *w = room->waiting;
  room->waiting = NULL;
  uv_mutex_unlock(&gw->mu);
  MF_LOG_INFO("room '%s' is router %s%s", room->name, id,
              placed ? (existed ? " (known to the controller)" : " (created in the controller)")
                     : " (local to this node)");
  while (w) {
    gw_wait_t *next = w->next;
    if (w->create && existed)
      mf_api_call_fail(w->call, MF_ERR_EXISTS, "room '%s' already exists: use router.join",
                       room->name);
    else
      mf_gw_reply_join(gw, room, w->call, w->session);
    mf_api_session_unref(w->session);
    free(w);
    w = next;
  }
}

/* A room the controller does not know (no cluster, or it could not be reached). */
static void gw_room_ready_local(mf_gateway_t *gw, gw_room_t *room) {
  char id[MF_ID_LEN + 1];
  if (mf_id_generate(id) != MF_OK) snprintf(id, sizeof id, "%s", "00000000-0000-4000-8000-000000000000");
  gw_room_ready(gw, room, id, false, false);
}

typedef struct {
  mf_gateway_t *gw;
  gw_room_t *room;
} gw_open_t;

static void gw_opened(void *ud, mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  gw_open_t *o = ud;
  gw_room_t *room = o->room;
  Mafalda__Cluster__OpenRouterResponse *r =
      env && env->status == MAFALDA__RPC__STATUS__STATUS_OK
          ? mafalda__cluster__open_router_response__unpack(NULL, env->payload.len, env->payload.data)
          : NULL;
  if (r && r->router_id[0] && strlen(r->router_id) <= MF_ID_LEN) {
    /* A router made on another node brings its codecs (the room had none of its own). */
    if (!room->codecs && r->codecs_json && r->codecs_json[0]) {
      json_error_t je;
      json_t *jc = json_loads(r->codecs_json, 0, &je);
      char err2[256];
      if (!jc || mf_ortc_parse_media_codecs(jc, "codecs", &room->codecs, &room->codec_count,
                                            err2, sizeof err2) != MF_OK)
        MF_LOG_ERROR("room '%s': the controller's codecs are unusable; using the defaults",
                     room->name);
      json_decref(jc);
    }
    gw_room_ready(o->gw, room, r->router_id, true, !r->created);
  } else {
    MF_LOG_WARN("room '%s': controller.OpenRouter failed (%s): serving it as a local room",
                room->name, mf_gw_env_error(err, env));
    gw_room_ready_local(o->gw, room);
  }
  if (r) mafalda__cluster__open_router_response__free_unpacked(r, NULL);
  free(o);
}

void mf_gw_room_open(mf_gateway_t *gw, gw_room_t *room) {
  Mafalda__Cluster__OpenRouterRequest req = MAFALDA__CLUSTER__OPEN_ROUTER_REQUEST__INIT;
  req.name = room->name;
  req.codecs_json = room->codecs_json ? room->codecs_json : "";
  gw_open_t *o = calloc(1, sizeof *o);
  mf_err_t e = o ? MF_OK : MF_ERR_NO_MEMORY;
  if (o) {
    o->gw = gw;
    o->room = room;
    e = mf_gw_call(gw, GW_METHOD_OPEN_ROUTER, &req.base, gw_opened, o);
  }
  if (e == MF_OK) return;
  free(o);
  gw_room_ready_local(gw, room);
}

/* ------------------------------------------------------------ transport placement */

typedef struct {
  mf_gateway_t *gw;
  gw_room_t *room;
  mf_api_call_t *call;
  mf_api_session_t *session; /* referenced */
  json_t *data; /* the request's data (enableSctp...: gateway_data.c), referenced */
  gw_op_t op;   /* what creates the transport on the chosen worker */
} gw_place_t;

static void gw_placed(void *ud, mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  gw_place_t *p = ud;
  char node_id[65];
  uint32_t worker = p->room->home;
  bool have_node = mf_gw_node_id(p->gw, node_id);
  Mafalda__Cluster__PlaceTransportResponse *r =
      env && env->status == MAFALDA__RPC__STATUS__STATUS_OK
          ? mafalda__cluster__place_transport_response__unpack(NULL, env->payload.len,
                                                               env->payload.data)
          : NULL;
  if (r && have_node && strcmp(r->node_id, node_id) == 0 && r->worker < p->gw->worker_count) {
    worker = r->worker;
    MF_LOG_INFO("room '%s': transport placed on worker %u (%s%s)", p->room->name, worker,
                r->rule && r->rule[0] ? r->rule : "scheduler", r->new_shard ? ", new shard" : "");
    mf_gw_room_sync(p->gw, p->room); /* our shard is committed: find the room's other nodes */
  } else if (r && have_node && p->op == OP_CREATE_TRANSPORT && r->node_id[0] &&
             r->rpc_address[0]) {
    /* another node's worker: the client's calls about it go there (gateway_forward.c) */
    MF_LOG_INFO("room '%s': transport placed on node %s worker %u (%s%s)", p->room->name,
                r->node_id, r->worker, r->rule && r->rule[0] ? r->rule : "scheduler",
                r->new_shard ? ", new shard" : "");
    mf_gw_forward_place(p->gw, p->room, p->call, p->session, p->data, r->node_id,
                        r->rpc_address, r->worker);
    mf_gw_room_sync(p->gw, p->room);
    goto out;
  } else if (env && env->status == MAFALDA__RPC__STATUS__STATUS_RESOURCE_EXHAUSTED) {
    mf_api_call_fail(p->call, MF_ERR_LIMIT, "no capacity for a new transport: %s",
                     mf_gw_env_error(err, env));
    goto out;
  } else {
    MF_LOG_WARN("room '%s': placement failed (%s): using the home worker %u", p->room->name,
                r ? "placed on another node" : mf_gw_env_error(err, env), worker);
  }
  mf_gw_post(p->gw, p->room, p->op, worker, p->call, p->session, p->data, NULL);
out:
  if (r) mafalda__cluster__place_transport_response__free_unpacked(r, NULL);
  mf_api_session_unref(p->session);
  json_decref(p->data);
  free(p);
}

void mf_gw_place_transport(mf_gateway_t *gw, gw_room_t *room, mf_api_call_t *call,
                           mf_api_session_t *s, const mf_api_request_t *req, gw_op_t op) {
  char node_id[65];
  uv_mutex_lock(&gw->mu);
  bool placed = room->placed_by_controller;
  char router_id[MF_ID_LEN + 1];
  memcpy(router_id, room->router_id, sizeof router_id);
  uv_mutex_unlock(&gw->mu);
  uint32_t pinned;
  if (mf_gw_forward_pin(s, &pinned)) {
    /* another node's client: its node asked the controller already (the shard is committed) */
    if (pinned >= gw->worker_count) pinned = room->home;
    mf_gw_post(gw, room, op, pinned, call, s, req->data, NULL);
    mf_gw_room_sync(gw, room);
    return;
  }
  if (placed && mf_gw_node_id(gw, node_id)) {
    Mafalda__Cluster__PlaceTransportRequest pr = MAFALDA__CLUSTER__PLACE_TRANSPORT_REQUEST__INIT;
    pr.router_id = router_id;
    pr.expected_pps = gw->transport_pps;
    /* A WebRTC transport may go to any node (its calls are forwarded there); PlainTransports
     * and DataChannels (relayed between this node's workers only) stay on this node. */
    if (op != OP_CREATE_TRANSPORT || gw->local_placement ||
        json_is_true(json_object_get(req->data, "enableSctp")))
      pr.only_node_id = node_id;
    else
      pr.prefer_node_id = node_id; /* a new shard: this node when others are no freer */
    gw_place_t *p = calloc(1, sizeof *p);
    if (p) {
      p->gw = gw;
      p->room = room;
      p->call = call;
      p->session = s;
      p->data = req->data ? json_incref(req->data) : NULL;
      p->op = op;
      mf_api_session_ref(s);
      if (mf_gw_call(gw, GW_METHOD_PLACE_TRANSPORT, &pr.base, gw_placed, p) == MF_OK) return;
      mf_api_session_unref(s);
      json_decref(p->data);
      free(p);
    }
  }
  mf_gw_post(gw, room, op, room->home, call, s, req->data, NULL);
}

/* ------------------------------------------------------------ pipes */

gw_pipe_key_t mf_gw_pipe_key(const char *producer_id, uint32_t dst) {
  gw_pipe_key_t k;
  memset(&k, 0, sizeof k);
  snprintf(k.producer_id, sizeof k.producer_id, "%s", producer_id);
  k.dst = dst;
  return k;
}

void mf_gw_pipe_record(mf_gateway_t *gw, const gw_pipe_t *pipe, bool add) {
  char node_id[65];
  uv_mutex_lock(&gw->mu);
  bool placed = pipe->room->placed_by_controller;
  uv_mutex_unlock(&gw->mu);
  if (!placed || !mf_gw_node_id(gw, node_id)) return;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  Mafalda__Controller__Pipe pp = MAFALDA__CONTROLLER__PIPE__INIT;
  Mafalda__Controller__AddPipe ap = MAFALDA__CONTROLLER__ADD_PIPE__INIT;
  Mafalda__Controller__RemovePipe rp = MAFALDA__CONTROLLER__REMOVE_PIPE__INIT;
  if (add) {
    pp.producer_id = (char *)pipe->producer_id;
    pp.target_node_id = node_id;
    pp.target_worker = pipe->dst;
    pp.source_node_id = pipe->remote ? (char *)pipe->node_id : node_id;
    pp.source_worker = pipe->remote ? pipe->source_worker : pipe->src;
    ap.pipe = &pp;
    cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PIPE;
    cmd.add_pipe = &ap;
  } else {
    rp.producer_id = (char *)pipe->producer_id;
    rp.target_node_id = node_id;
    rp.target_worker = pipe->dst;
    cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_REMOVE_PIPE;
    cmd.remove_pipe = &rp;
  }
  mf_gw_tell_controller(gw, &cmd);
}

void mf_gw_pipe_release(mf_gateway_t *gw, gw_pipe_t *pipe) {
  uv_mutex_lock(&gw->mu);
  bool free_it = --pipe->users == 0 && pipe->dead;
  uv_mutex_unlock(&gw->mu);
  if (free_it) free(pipe);
}

void mf_gw_consume(mf_gateway_t *gw, gw_room_t *room, uint32_t worker, const char *producer_id,
                   mf_api_call_t *call, mf_api_session_t *s, const mf_api_request_t *req,
                   const char *transport_id) {
  if (!gw->hub)
    return (void)mf_api_call_fail(call, MF_ERR_UNSUPPORTED,
                                  "producer %s is on another worker and this gateway has no "
                                  "pipes", producer_id);
  gw_pipe_key_t k = mf_gw_pipe_key(producer_id, worker);
  char key[MF_ID_LEN + 1];
  gw_cmd_t *in = NULL, *out = NULL;
  gw_cmd_t *consume = mf_gw_cmd(gw, room, OP_CONSUME, worker, call, s, req->data, transport_id);
  if (!consume) return;
  uv_mutex_lock(&gw->mu);
  gw_pipe_t *pipe = mf_hashmap_get(gw->pipes, &k);
  gw_obj_t *o = mf_hashmap_get(gw->objs, mf_gw_key(producer_id, key));
  bool opened = false;
  if (!pipe && o && o->kind == GW_PRODUCER && o->rtp_parameters) {
    pipe = calloc(1, sizeof *pipe);
    in = mf_gw_cmd(gw, room, OP_PIPE_IN, worker, NULL, NULL, o->rtp_parameters, producer_id);
    out = mf_gw_cmd(gw, room, OP_PIPE_OUT, o->worker, NULL, NULL, NULL, producer_id);
    if (pipe && in && out) {
      memcpy(pipe->producer_id, k.producer_id, sizeof pipe->producer_id);
      pipe->dst = worker;
      pipe->src = o->worker;
      pipe->room = room;
      pipe->pipe_id = mf_pipe_hub_new_id(gw->hub);
      if (mf_hashmap_put(gw->pipes, &k, pipe) == MF_OK) {
        opened = true;
        snprintf(in->method, sizeof in->method, "%s", o->media_kind);
        in->flag = o->paused;
        in->pipe_id = out->pipe_id = pipe->pipe_id;
        in->peer = o->worker;
        out->peer = worker;
      }
    }
    if (!opened) {
      free(pipe);
      pipe = NULL;
    }
  }
  if (pipe) pipe->users++;
  uv_mutex_unlock(&gw->mu);
  if (!opened) {
    if (in) mf_gw_cmd_free(in);
    if (out) mf_gw_cmd_free(out);
  }
  if (!pipe) {
    consume->call = NULL;
    mf_gw_cmd_free(consume);
    mf_api_call_fail(call, o ? MF_ERR_NO_MEMORY : MF_ERR_NOT_FOUND,
                     o ? "cannot open a pipe: out of memory" : "producer %s not found",
                     producer_id);
    return;
  }
  consume->pipe = pipe;
  if (strlen(req->method) < sizeof consume->method)
    memcpy(consume->method, req->method, strlen(req->method) + 1);
  if (opened) {
    MF_LOG_INFO("room '%s': opening pipe %u of producer %s, worker %u -> %u", room->name,
                pipe->pipe_id, producer_id, pipe->src, worker);
    mf_gw_send(in);
    mf_gw_send(out);
    mf_gw_pipe_record(gw, pipe, true);
  }
  mf_gw_send(consume);
}

void mf_gw_pipe_consumer_added(mf_gateway_t *gw, const char *producer_id, uint32_t w) {
  gw_pipe_key_t k = mf_gw_pipe_key(producer_id, w);
  uv_mutex_lock(&gw->mu);
  gw_pipe_t *pipe = mf_hashmap_get(gw->pipes, &k);
  if (pipe) pipe->consumers++;
  uv_mutex_unlock(&gw->mu);
}

void mf_gw_pipe_consumer_removed(mf_gateway_t *gw, const char *producer_id, uint32_t w) {
  gw_pipe_key_t k = mf_gw_pipe_key(producer_id, w);
  uv_mutex_lock(&gw->mu);
  gw_pipe_t *pipe = mf_hashmap_get(gw->pipes, &k);
  gw_cmd_t *c = NULL;
  if (pipe && pipe->consumers > 0 && --pipe->consumers == 0) {
    pipe->linger_gen++;
    c = mf_gw_cmd(gw, pipe->room, OP_PIPE_LINGER, w, NULL, NULL, NULL, producer_id);
    if (c) c->gen = pipe->linger_gen;
  }
  uv_mutex_unlock(&gw->mu);
  if (c) mf_gw_send(c);
}

void mf_gw_pipe_linger_fired(mf_gateway_t *gw, uint32_t worker, const char *producer_id,
                             uint32_t gen) {
  gw_pipe_key_t k = mf_gw_pipe_key(producer_id, worker);
  uv_mutex_lock(&gw->mu);
  gw_pipe_t *pipe = mf_hashmap_get(gw->pipes, &k);
  if (!pipe || pipe->linger_gen != gen || pipe->consumers > 0 || pipe->users > 0) {
    uv_mutex_unlock(&gw->mu);
    return; /* a consumer came back (or the pipe is gone already) */
  }
  mf_hashmap_remove(gw->pipes, &k);
  uv_mutex_unlock(&gw->mu);
  MF_LOG_INFO("room '%s': pipe %u of producer %s (worker %u -> %u) closed after %u ms without "
              "consumers", pipe->room->name, pipe->pipe_id, producer_id, pipe->src, worker,
              gw->linger_ms);
  if (pipe->remote) {
    mf_gw_node_pipe_linger_close(gw, pipe, worker);
    mf_gw_pipe_record(gw, pipe, false);
    free(pipe);
    return;
  }
  /* we are on the target worker: drop the piped copy here, then stop the source */
  mf_router_t *r = pipe->room->shards[worker].router;
  mf_producer_t *p = r ? mf_router_find_producer(r, producer_id) : NULL;
  if (p && mf_producer_is_piped(p)) mf_producer_close(p);
  gw_cmd_t *c = mf_gw_cmd(gw, pipe->room, OP_PIPE_UNLINK, pipe->src, NULL, NULL, NULL, producer_id);
  if (c) {
    c->pipe_id = pipe->pipe_id;
    mf_gw_send(c);
  }
  mf_gw_pipe_record(gw, pipe, false);
  free(pipe);
}

typedef struct {
  const char *producer_id;
  gw_pipe_t *found[256];
  bool free_now[256];
  size_t n;
} gw_pipe_find_t;

static void gw_pipe_find_fn(const void *key, void *value, void *ud) {
  gw_pipe_find_t *f = ud;
  gw_pipe_t *p = value;
  if (f->n < 256 && strcmp(p->producer_id, f->producer_id) == 0) f->found[f->n++] = p;
}

void mf_gw_pipe_producer_state(mf_gateway_t *gw, const char *producer_id, const char *what) {
  bool closing = strcmp(what, "close") == 0;
  gw_pipe_find_t *f = calloc(1, sizeof *f);
  if (!f) return;
  f->producer_id = producer_id;
  uv_mutex_lock(&gw->mu);
  mf_hashmap_foreach(gw->pipes, gw_pipe_find_fn, f);
  gw_cmd_t *cmds[256];
  size_t n = 0;
  for (size_t i = 0; i < f->n; i++) {
    gw_pipe_t *p = f->found[i];
    gw_cmd_t *c = mf_gw_cmd(gw, p->room, OP_PIPE_STATE, p->dst, NULL, NULL, NULL, producer_id);
    if (c) {
      snprintf(c->method, sizeof c->method, "%s", what);
      cmds[n++] = c;
    }
    if (closing) {
      gw_pipe_key_t k = mf_gw_pipe_key(producer_id, p->dst);
      mf_hashmap_remove(gw->pipes, &k);
      p->dead = true; /* a consume on its way frees it (mf_gw_pipe_release) */
      f->free_now[i] = p->users == 0;
    }
  }
  uv_mutex_unlock(&gw->mu);
  for (size_t i = 0; i < n; i++) mf_gw_send(cmds[i]);
  /* the controller drops pipes with their producer (RemoveProducer cascades) */
  for (size_t i = 0; i < f->n; i++)
    if (f->free_now[i]) free(f->found[i]);
  free(f);
}

void mf_gw_pipe_keyframe(mf_gateway_t *gw, const char *producer_id) {
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_obj_t *o = mf_hashmap_get(gw->objs, mf_gw_key(producer_id, key));
  gw_room_t *room = o && o->kind == GW_PRODUCER ? o->room : NULL;
  uint32_t origin = o ? o->worker : 0;
  uv_mutex_unlock(&gw->mu);
  if (room) mf_gw_post(gw, room, OP_KEYFRAME, origin, NULL, NULL, NULL, producer_id);
}
