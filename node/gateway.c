#define MF_LOG_MODULE "gateway"
#include "node/gateway_internal.h"
#include "node/gateway_metrics.h"
#include "node/whip.h"
#include "node/gateway_observers.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/hashmap.h"
#include "common/id.h"
#include "common/log.h"
#include "node/ortc.h"
#include "node/router.h"
#include "proto/cluster.pb-c.h"
#include "proto/controller.pb-c.h"

char *mf_gw_key(const char *id, char key[MF_ID_LEN + 1]) {
  memset(key, 0, MF_ID_LEN + 1);
  snprintf(key, MF_ID_LEN + 1, "%s", id ? id : "");
  return key;
}

/* ------------------------------------------------------------ object index */

/* counted (issue 12): a limits slot was taken for it, given back when it leaves the index
 * (or now, when it cannot be indexed). */
static gw_obj_t *gw_index_put(mf_gateway_t *gw, const char *id, gw_kind_t kind, gw_room_t *room,
                              uint32_t worker, mf_api_session_t *s, const char *transport_id,
                              bool counted) {
  gw_obj_t *o = calloc(1, sizeof *o);
  if (!o) {
    if (counted) mf_gw_limit_give(gw, s, kind);
    return NULL;
  }
  o->counted = counted;
  snprintf(o->id, sizeof o->id, "%s", id);
  o->kind = kind;
  o->room = room;
  o->worker = worker;
  o->session = s;
  mf_api_session_ref(s);
  snprintf(o->transport_id, sizeof o->transport_id, "%s", transport_id ? transport_id : "");
  uv_mutex_lock(&gw->mu);
  if (mf_hashmap_put(gw->objs, o->id, o) != MF_OK) {
    uv_mutex_unlock(&gw->mu);
    if (counted) mf_gw_limit_give(gw, s, kind); /* not indexed, never closed through us */
    mf_api_session_unref(s);
    free(o);
    return NULL;
  }
  uv_mutex_unlock(&gw->mu);
  return o; /* the caller may fill kind-specific fields before anyone else needs them */
}

gw_obj_t *mf_gw_index_add(mf_gateway_t *gw, const char *id, gw_kind_t kind, gw_room_t *room,
                          uint32_t worker, mf_api_session_t *s, const char *transport_id) {
  return gw_index_put(gw, id, kind, room, worker, s, transport_id, false);
}

gw_obj_t *mf_gw_index_add_counted(mf_gateway_t *gw, const char *id, gw_kind_t kind,
                                  gw_room_t *room, uint32_t worker, mf_api_session_t *s,
                                  const char *transport_id) {
  return gw_index_put(gw, id, kind, room, worker, s, transport_id, true);
}

static void gw_obj_free(gw_obj_t *o) {
  mf_api_session_unref(o->session);
  json_decref(o->rtp_parameters);
  json_decref(o->app_data);
  free(o);
}

void mf_gw_index_remove(mf_gateway_t *gw, const char *id) {
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_obj_t *o = mf_hashmap_remove(gw->objs, mf_gw_key(id, key));
  uv_mutex_unlock(&gw->mu);
  if (!o) return;
  if (o->counted) mf_gw_limit_give(gw, o->session, o->kind); /* issue 12: a free slot */
  if (o->kind == GW_TRANSPORT) {
    mf_gw_shard_check_idle(gw, o->room, o->worker);
  } else if (o->kind == GW_CONSUMER || o->kind == GW_PIPE_OUT) {
    /* a pipe out of a relay's copy keeps the copy like a consumer (no-op on the origin) */
    mf_gw_pipe_consumer_removed(gw, o->producer_id, o->worker);
  } else if (o->kind == GW_PRODUCER) {
    /* its piped copies close with it (their consumers get producerclose) */
    mf_gw_pipe_producer_state(gw, o->id, "close");
    mf_gw_nodes_producer_event(gw, o->id, o, "close");
    mf_gw_observers_producer_closed(gw, o->id);
    mf_gw_report_event(gw, MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_PRODUCER_CLOSED, o->worker,
                       o->id, o->room->name);
    Mafalda__Controller__RemoveProducer rp = MAFALDA__CONTROLLER__REMOVE_PRODUCER__INIT;
    rp.producer_id = o->id;
    Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
    cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_REMOVE_PRODUCER;
    cmd.remove_producer = &rp;
    mf_gw_tell_controller(gw, &cmd);
  }
  gw_obj_free(o);
}

static void gw_collect_fn(const void *key, void *value, void *ud) {
  gw_collect_t *c = ud;
  gw_obj_t *o = value;
  if (c->transport_id && strcmp(o->transport_id, c->transport_id) != 0) return;
  if (c->session && o->session != c->session) return;
  if (c->match_kind && o->kind != c->kind) return;
  if (c->room && (o->room != c->room || o->worker != c->worker)) return;
  if (c->count == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    void *n = realloc(c->ids, cap * sizeof *c->ids);
    if (!n) return;
    c->ids = n;
    c->cap = cap;
  }
  memcpy(c->ids[c->count++], o->id, MF_ID_LEN + 1);
}

void mf_gw_collect(mf_gateway_t *gw, gw_collect_t *c) {
  uv_mutex_lock(&gw->mu);
  mf_hashmap_foreach(gw->objs, gw_collect_fn, c);
  uv_mutex_unlock(&gw->mu);
}

typedef struct {
  gw_room_t *room;
  mf_api_session_t *except;
  mf_api_session_t *list[256];
  size_t n;
} gw_members_t;

static void gw_members_fn(const void *key, void *value, void *ud) {
  gw_members_t *m = ud;
  gw_obj_t *o = value;
  if (o->kind != GW_TRANSPORT || o->room != m->room || o->session == m->except || m->n == 256)
    return;
  for (size_t k = 0; k < m->n; k++)
    if (m->list[k] == o->session) return;
  m->list[m->n++] = o->session;
  mf_api_session_ref(o->session);
}

/* Members are the sessions that own a transport in the room. */
void mf_gw_notify_room(mf_gateway_t *gw, gw_room_t *room, mf_api_session_t *except,
                       const char *event, const char *target, json_t *data) {
  gw_members_t *m = calloc(1, sizeof *m);
  if (m) {
    m->room = room;
    m->except = except;
    uv_mutex_lock(&gw->mu);
    mf_hashmap_foreach(gw->objs, gw_members_fn, m);
    uv_mutex_unlock(&gw->mu);
    for (size_t i = 0; i < m->n; i++) {
      mf_api_session_notify(m->list[i], event, target, json_deep_copy(data));
      mf_api_session_unref(m->list[i]);
    }
    free(m);
  }
  json_decref(data);
}

/* ------------------------------------------------------------ commands to workers */

gw_cmd_t *mf_gw_cmd(mf_gateway_t *gw, gw_room_t *room, gw_op_t op, uint32_t worker,
                    mf_api_call_t *call, mf_api_session_t *session, json_t *data,
                    const char *target) {
  gw_cmd_t *c = calloc(1, sizeof *c);
  if (!c) {
    if (call) mf_api_call_fail(call, MF_ERR_NO_MEMORY, "out of memory");
    return NULL;
  }
  c->gw = gw;
  c->op = op;
  c->worker = worker;
  c->call = call;
  c->session = session;
  if (session) mf_api_session_ref(session);
  c->room = room;
  c->data = data ? json_incref(data) : NULL;
  /* target was validated as an id (or is empty) */
  if (target && strlen(target) < sizeof c->target) memcpy(c->target, target, strlen(target) + 1);
  return c;
}

void mf_gw_cmd_free(gw_cmd_t *c) {
  if (c->session) mf_api_session_unref(c->session);
  json_decref(c->data);
  free(c);
}

void mf_gw_send(gw_cmd_t *c) {
  if (c->worker < c->gw->worker_count &&
      mf_worker_post(c->gw->workers[c->worker], &c->link, mf_gateway_on_command) == MF_OK)
    return;
  if (c->call) mf_api_call_fail(c->call, MF_ERR_CLOSED, "the node is shutting down");
  if (c->fanin) mf_gw_fanin_done(c->fanin);
  if (c->pipe) mf_gw_pipe_release(c->gw, c->pipe);
  if (c->done) uv_sem_post(c->done);
  mf_gw_cmd_free(c);
}

void mf_gw_post(mf_gateway_t *gw, gw_room_t *room, gw_op_t op, uint32_t worker,
                mf_api_call_t *call, mf_api_session_t *session, json_t *data,
                const char *target) {
  gw_cmd_t *c = mf_gw_cmd(gw, room, op, worker, call, session, data, target);
  if (c) mf_gw_send(c);
}

static void gw_post_req(mf_gateway_t *gw, gw_room_t *room, gw_op_t op, uint32_t worker,
                        mf_api_call_t *call, const mf_api_request_t *req, const char *target) {
  gw_cmd_t *c = mf_gw_cmd(gw, room, op, worker, call, mf_api_call_session(call), req->data,
                          target);
  if (!c) return;
  if (strlen(req->method) < sizeof c->method) memcpy(c->method, req->method, strlen(req->method) + 1);
  mf_gw_send(c);
}

/* ------------------------------------------------------------ sessions and rooms */

void mf_gw_reply_join(mf_gateway_t *gw, gw_room_t *room, mf_api_call_t *call,
                      mf_api_session_t *s) {
  char err[256];
  mf_rtp_capabilities_t *caps = malloc(sizeof *caps);
  size_t n = room->codec_count;
  const mf_rtp_codec_capability_t *codecs = room->codecs;
  if (!codecs || n == 0) codecs = mf_ortc_default_media_codecs(&n);
  mf_err_t e = caps ? mf_ortc_generate_router_rtp_capabilities(codecs, n, caps, err, sizeof err)
                    : MF_ERR_NO_MEMORY;
  if (e) {
    free(caps);
    mf_api_call_fail(call, e, "%s", e == MF_ERR_NO_MEMORY ? "out of memory" : err);
    return;
  }
  uv_mutex_lock(&gw->mu);
  json_t *reply = json_pack("{s:s, s:s, s:o}", "roomId", room->name, "routerId", room->router_id,
                            "rtpCapabilities", mf_rtp_capabilities_to_json(caps));
  uv_mutex_unlock(&gw->mu);
  free(caps);
  gw_session_t *gs = s ? mf_api_session_get_user(s) : NULL;
  if (gs) json_object_set_new(reply, "resumeToken", json_string(gs->token));
  mf_api_call_reply(call, reply);
}

static gw_room_t *gw_session_room(mf_api_session_t *s) {
  gw_session_t *gs = mf_api_session_get_user(s);
  return gs ? gs->room : NULL;
}

/* Records the session's room and gives it a resume token; MF_ERR_NO_MEMORY if it cannot. */
static mf_err_t gw_session_join(mf_gateway_t *gw, mf_api_session_t *s, gw_room_t *room) {
  if (mf_api_session_get_user(s)) return MF_OK;
  gw_session_t *gs = calloc(1, sizeof *gs);
  gw_orphan_t *o = calloc(1, sizeof *o);
  if (!gs || !o) {
    free(gs);
    free(o);
    return MF_ERR_NO_MEMORY;
  }
  gs->room = room;
  if (mf_id_generate(gs->token) != MF_OK) {
    free(gs);
    free(o);
    return MF_ERR_CRYPTO;
  }
  o->room = room;
  o->old = s;
  o->live = true;
  mf_api_session_ref(s);
  uv_mutex_lock(&gw->mu);
  mf_err_t e = mf_hashmap_put(gw->orphans, gs->token, o);
  uv_mutex_unlock(&gw->mu);
  if (e) {
    mf_api_session_unref(s);
    free(gs);
    free(o);
    return e;
  }
  mf_api_session_set_user(s, gs);
  return MF_OK;
}

/* router.join {resumeToken}: the new session adopts the objects of the session that token
 * was given to, closed or (its close not seen yet) still open. */
static bool gw_resume(mf_gateway_t *gw, mf_api_session_t *s, gw_room_t *room, const char *token) {
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_orphan_t *o = mf_hashmap_get(gw->orphans, mf_gw_key(token, key));
  if (o && o->room == room && o->old != s) {
    mf_hashmap_remove(gw->orphans, key);
  } else {
    o = NULL;
  }
  uv_mutex_unlock(&gw->mu);
  if (!o) return false;
  /* issue 12: before the moves below, which drop the old session's entry with its last object */
  mf_api_limits_carry_rate(gw->limits, mf_api_session_id(o->old), mf_api_session_id(s));
  gw_collect_t c = {.session = o->old};
  mf_gw_collect(gw, &c);
  uv_mutex_lock(&gw->mu);
  for (size_t i = 0; i < c.count; i++) {
    gw_obj_t *obj = mf_hashmap_get(gw->objs, mf_gw_key(c.ids[i], key));
    if (!obj) continue;
    int k = mf_gw_limit_kind(obj->kind); /* issue 12: the limits count it for s now */
    if (obj->counted && k >= 0)
      mf_api_limits_move(gw->limits, mf_api_session_id(obj->session), mf_api_session_id(s),
                         (mf_api_limit_kind_t)k);
    mf_api_session_ref(s);
    mf_api_session_unref(obj->session);
    obj->session = s;
  }
  uv_mutex_unlock(&gw->mu);
  mf_gw_forward_adopt(gw, o->old, s); /* its objects on other nodes too */
  MF_LOG_INFO("room '%s': a session resumed %zu objects", room->name, c.count);
  free(c.ids);
  mf_api_session_unref(o->old);
  free(o);
  return true;
}

/* The room called name, created (state OPENING) when absent and `create_codecs` allows.
 * *created tells which. Takes over codecs when it creates. */
static gw_room_t *gw_room_get(mf_gateway_t *gw, const char *name, mf_rtp_codec_capability_t *codecs,
                              size_t count, char *codecs_json, bool *created) {
  *created = false;
  uv_mutex_lock(&gw->mu);
  gw_room_t *room = gw->rooms;
  while (room && strcmp(room->name, name) != 0) room = room->next;
  if (!room && (room = calloc(1, sizeof *room)) != NULL) {
    room->shards = calloc(gw->worker_count, sizeof *room->shards);
    if (!room->shards) {
      free(room);
      uv_mutex_unlock(&gw->mu);
      return NULL;
    }
    snprintf(room->name, sizeof room->name, "%s", name);
    room->home = gw->next_worker++ % gw->worker_count;
    room->state = GW_ROOM_OPENING;
    room->codecs = codecs;
    room->codec_count = count;
    room->codecs_json = codecs_json;
    room->next = gw->rooms;
    gw->rooms = room;
    *created = true;
  }
  uv_mutex_unlock(&gw->mu);
  return room;
}

/* Answers at once when the room is ready, else queues the call until it is. */
static void gw_join_when_ready(mf_gateway_t *gw, gw_room_t *room, mf_api_call_t *call,
                               mf_api_session_t *s, bool create, bool opens) {
  gw_wait_t *w = calloc(1, sizeof *w);
  if (!w) return (void)mf_api_call_fail(call, MF_ERR_NO_MEMORY, "out of memory");
  w->call = call;
  w->session = s;
  w->create = create;
  mf_api_session_ref(s);
  uv_mutex_lock(&gw->mu);
  bool ready = room->state == GW_ROOM_READY;
  if (!ready) {
    w->next = room->waiting;
    room->waiting = w;
  }
  uv_mutex_unlock(&gw->mu);
  if (ready) {
    mf_gw_reply_join(gw, room, call, s);
    mf_api_session_unref(s);
    free(w);
  }
  if (opens) mf_gw_room_open(gw, room);
}

/* data.roomId, when it is a valid name the session's token grants; else fails the call. */
static const char *gw_room_name(mf_api_call_t *call, const mf_api_request_t *req) {
  const char *name = json_string_value(json_object_get(req->data, "roomId"));
  if (!name || !name[0] || strlen(name) > GW_ROOM_MAX) {
    mf_api_call_fail(call, MF_ERR_INVALID_ARG, "data.roomId must be a string of 1..%d bytes",
                     GW_ROOM_MAX);
    return NULL;
  }
  if (!mf_jwt_allows_room(mf_api_session_claims(mf_api_call_session(call)), name)) {
    mf_api_call_fail(call, MF_ERR_AUTH, "the token does not grant room '%s'", name);
    return NULL;
  }
  return name;
}

static void gw_router_join(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  mf_gateway_t *gw = ctx;
  mf_api_session_t *s = mf_api_call_session(call);
  const char *name = gw_room_name(call, req);
  if (!name) return;
  if (gw_session_room(s) && strcmp(gw_session_room(s)->name, name) != 0)
    return (void)mf_api_call_fail(call, MF_ERR_STATE, "this session already joined room '%s'",
                                  gw_session_room(s)->name);
  if (!gw_session_room(s) && !mf_gw_limit_join(gw, call, req)) return; /* issue 12 */
  bool created;
  gw_room_t *room = gw_room_get(gw, name, NULL, 0, NULL, &created);
  if (!room || gw_session_join(gw, s, room) != MF_OK)
    return (void)mf_api_call_fail(call, MF_ERR_NO_MEMORY, "out of memory");
  const char *token = json_string_value(json_object_get(req->data, "resumeToken"));
  if (token && !gw_resume(gw, s, room, token))
    return (void)mf_api_call_fail(call, MF_ERR_NOT_FOUND,
                                  "resumeToken unknown, expired or for another room");
  gw_join_when_ready(gw, room, call, s, false, created);
}

/* router.create {roomId, mediaCodecs?}: a new room (refused if it exists) with the given
 * codecs, validated here so a bad list never reaches a worker; the session joins it. */
static void gw_router_create(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  mf_gateway_t *gw = ctx;
  mf_api_session_t *s = mf_api_call_session(call);
  const char *name = gw_room_name(call, req);
  if (!name) return;
  if (gw_session_room(s))
    return (void)mf_api_call_fail(call, MF_ERR_STATE, "this session already joined room '%s'",
                                  gw_session_room(s)->name);
  if (!mf_gw_limit_join(gw, call, req)) return; /* issue 12 */
  mf_rtp_codec_capability_t *codecs = NULL;
  size_t count = 0;
  json_t *jc = json_object_get(req->data, "mediaCodecs");
  if (jc) {
    char err[256];
    mf_err_t e = mf_ortc_parse_media_codecs(jc, "data.mediaCodecs", &codecs, &count, err, sizeof err);
    if (e) return (void)mf_api_call_fail(call, e, "%s", err);
  }
  bool created;
  char *codecs_json = jc ? json_dumps(jc, JSON_COMPACT) : NULL;
  gw_room_t *room = gw_room_get(gw, name, codecs, count, codecs_json, &created);
  if (!created) {
    free(codecs);
    free(codecs_json);
    return (void)mf_api_call_fail(call, room ? MF_ERR_EXISTS : MF_ERR_NO_MEMORY,
                                  room ? "room '%s' already exists: use router.join" : "out of memory (%s)", name);
  }
  if (gw_session_join(gw, s, room) != MF_OK)
    return (void)mf_api_call_fail(call, MF_ERR_NO_MEMORY, "out of memory");
  gw_join_when_ready(gw, room, call, s, true, true);
}

/* Posts OP_CLOSE_SHARD to every worker; each counts f down when done. */
static void gw_close_each_shard(mf_gateway_t *gw, gw_room_t *room, gw_fanin_t *f,
                                bool stopping) {
  for (uint32_t w = 0; w < gw->worker_count; w++) {
    gw_cmd_t *c = mf_gw_cmd(gw, room, OP_CLOSE_SHARD, w, NULL, NULL, NULL, NULL);
    if (!c) {
      mf_gw_fanin_done(f);
      continue;
    }
    c->fanin = f;
    c->flag = stopping; /* stopping: also end grace timers */
    mf_gw_send(c);
  }
}

/* router.close: closes every shard of the session's room on this node (every transport
 * in it ends); the room stays and opens new shards on demand. */
static void gw_router_close(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  mf_gateway_t *gw = ctx;
  gw_room_t *room = gw_session_room(mf_api_call_session(call));
  if (!room) return (void)mf_api_call_fail(call, MF_ERR_STATE, "call router.join first");
  gw_fanin_t *f = calloc(1, sizeof *f);
  if (!f) return (void)mf_api_call_fail(call, MF_ERR_NO_MEMORY, "out of memory");
  uv_mutex_init(&f->mu);
  f->call = call;
  f->left = gw->worker_count;
  gw_close_each_shard(gw, room, f, false);
}

void mf_gw_close_shards(mf_gateway_t *gw, gw_room_t *room, bool stopping) {
  uv_sem_t done;
  uv_sem_init(&done, 0);
  gw_fanin_t *f = calloc(1, sizeof *f);
  if (!f) {
    uv_sem_destroy(&done);
    MF_LOG_ERROR("room '%s': out of memory closing its shards", room->name);
    return;
  }
  f->left = gw->worker_count;
  f->done = &done;
  uv_mutex_init(&f->mu);
  gw_close_each_shard(gw, room, f, stopping);
  uv_sem_wait(&done);
  uv_sem_destroy(&done);
  uv_mutex_destroy(&f->mu);
  free(f);
}

void mf_gw_fanin_done(gw_fanin_t *f) {
  uv_mutex_lock(&f->mu);
  bool last = --f->left == 0;
  uv_mutex_unlock(&f->mu);
  if (!last) return;
  if (f->done) {
    uv_sem_post(f->done);
    return;
  }
  mf_api_call_reply(f->call, json_object());
  uv_mutex_destroy(&f->mu);
  free(f);
}

gw_room_t *mf_gw_owned(mf_gateway_t *gw, mf_api_call_t *call, const mf_api_request_t *req,
                       const char *field, gw_kind_t kind, bool forward, const char **id,
                       uint32_t *worker) {
  mf_api_session_t *s = mf_api_call_session(call);
  *id = json_string_value(json_object_get(req->data, field));
  if (!*id || !mf_id_is_valid(*id)) {
    mf_api_call_fail(call, MF_ERR_INVALID_ARG, "data.%s must be an id (UUIDv4 string)", field);
    return NULL;
  }
  if (forward && mf_gw_forward_owned(gw, call, req, *id, kind)) return NULL;
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_obj_t *o = mf_hashmap_get(gw->objs, mf_gw_key(*id, key));
  gw_room_t *room = o && o->kind == kind && o->session == s ? o->room : NULL;
  if (room) *worker = o->worker;
  uv_mutex_unlock(&gw->mu);
  if (!room) {
    mf_api_call_fail(call, MF_ERR_NOT_FOUND, "%s '%s' not found in this session", field, *id);
    return NULL;
  }
  if (*worker >= gw->worker_count) { /* a forwarded transport (GW_NO_WORKER) */
    mf_api_call_fail(call, MF_ERR_UNSUPPORTED, "%s '%s' lives on another node%s", field, *id,
                     forward ? " and its link has ended"
                             : ", without DataChannels (create it with enableSctp)");
    return NULL;
  }
  return room;
}

static gw_room_t *gw_joined(mf_api_call_t *call) {
  gw_room_t *room = gw_session_room(mf_api_call_session(call));
  if (!room) mf_api_call_fail(call, MF_ERR_STATE, "call router.join first");
  return room;
}

static void gw_router_caps(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  gw_room_t *room = gw_joined(call);
  if (room) gw_join_when_ready(ctx, room, call, mf_api_call_session(call), false, false);
}

static void gw_create_transport(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  gw_room_t *room = gw_joined(call);
  if (room)
    mf_gw_place_transport(ctx, room, call, mf_api_call_session(call), req, OP_CREATE_TRANSPORT);
}

static void gw_create_plain_transport(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  gw_room_t *room = gw_joined(call);
  if (room) mf_gw_place_plain_transport(ctx, room, call, mf_api_call_session(call), req);
}

static void gw_transport_op(void *ctx, mf_api_call_t *call, const mf_api_request_t *req, gw_op_t op) {
  const char *id;
  uint32_t worker = 0;
  gw_room_t *room = mf_gw_owned(ctx, call, req, "transportId", GW_TRANSPORT, true, &id, &worker);
  if (room) gw_post_req(ctx, room, op, worker, call, req, id);
}

/* produce/consume options of a fixed type: a wrong one is refused, not read as a default
 * ("paused":"yes" would otherwise be an unpaused producer). */
static bool gw_options_typed(mf_api_call_t *call, const mf_api_request_t *req) {
  json_t *paused = json_object_get(req->data, "paused");
  if (paused && !json_is_boolean(paused)) {
    mf_api_call_fail(call, MF_ERR_INVALID_ARG, "data.paused must be a boolean");
    return false;
  }
  json_t *app = json_object_get(req->data, "appData");
  if (app && !json_is_object(app)) {
    mf_api_call_fail(call, MF_ERR_INVALID_ARG, "data.appData must be an object");
    return false;
  }
  return true;
}

static void gw_connect(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) { gw_transport_op(ctx, call, req, OP_CONNECT); }
static void gw_produce(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  if (gw_options_typed(call, req)) gw_transport_op(ctx, call, req, OP_PRODUCE);
}
static void gw_transport_close(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) { gw_transport_op(ctx, call, req, OP_CLOSE_TRANSPORT); }

/* The worker a producer of this room lives on (its origin); false when unknown. */
static bool gw_producer_worker(mf_gateway_t *gw, gw_room_t *room, const char *pid, uint32_t *w) {
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_obj_t *o = pid ? mf_hashmap_get(gw->objs, mf_gw_key(pid, key)) : NULL;
  bool found = o && o->kind == GW_PRODUCER && o->room == room;
  if (found) *w = o->worker;
  uv_mutex_unlock(&gw->mu);
  return found;
}

/* A producer of another node in this room (gateway_nodes.c). */
static bool gw_is_remote_producer(mf_gateway_t *gw, gw_room_t *room, const char *pid) {
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_obj_t *o = pid ? mf_hashmap_get(gw->objs, mf_gw_key(pid, key)) : NULL;
  bool found = o && o->kind == GW_REMOTE_PRODUCER && o->room == room;
  uv_mutex_unlock(&gw->mu);
  return found;
}

static void gw_consume(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  mf_gateway_t *gw = ctx;
  const char *id;
  uint32_t worker = 0, origin = 0;
  if (!gw_options_typed(call, req)) return;
  gw_room_t *room = mf_gw_owned(ctx, call, req, "transportId", GW_TRANSPORT, true, &id, &worker);
  if (!room) return;
  const char *pid = json_string_value(json_object_get(req->data, "producerId"));
  if (!pid || !mf_id_is_valid(pid))
    return (void)mf_api_call_fail(call, MF_ERR_INVALID_ARG, "data.producerId must be an id (UUIDv4 string)");
  if (!gw_producer_worker(gw, room, pid, &origin)) {
    if (gw_is_remote_producer(gw, room, pid))
      return mf_gw_consume_remote(gw, room, worker, pid, call, mf_api_call_session(call), req, id);
    return (void)mf_api_call_fail(call, MF_ERR_NOT_FOUND, "producer %s not found in this room", pid);
  }
  if (origin == worker) return gw_post_req(gw, room, OP_CONSUME, worker, call, req, id);
  mf_gw_consume(gw, room, worker, pid, call, mf_api_call_session(call), req, id);
}

/* canConsume is answered where the producer lives (its origin shard knows its params). */
static void gw_can_consume(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  mf_gateway_t *gw = ctx;
  gw_room_t *room = gw_joined(call);
  if (!room) return;
  uint32_t origin = 0;
  const char *pid = json_string_value(json_object_get(req->data, "producerId"));
  if (!gw_producer_worker(gw, room, pid, &origin))
    return (void)mf_api_call_reply(
        call, json_pack("{s:b}", "canConsume",
                        gw_is_remote_producer(gw, room, pid) &&
                            mf_gw_remote_can_consume(gw, room, pid,
                                                     json_object_get(req->data, "rtpCapabilities"))));
  gw_post_req(gw, room, OP_CAN_CONSUME, origin, call, req, "");
}

static void gw_producer_op(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  const char *id;
  uint32_t worker = 0;
  gw_room_t *room = mf_gw_owned(ctx, call, req, "producerId", GW_PRODUCER, true, &id, &worker);
  if (room) gw_post_req(ctx, room, OP_PRODUCER, worker, call, req, id);
}

static void gw_consumer_op(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  const char *id;
  uint32_t worker = 0;
  gw_room_t *room = mf_gw_owned(ctx, call, req, "consumerId", GW_CONSUMER, true, &id, &worker);
  if (room) gw_post_req(ctx, room, OP_CONSUMER, worker, call, req, id);
}

typedef struct {
  gw_room_t *room;
  json_t *list;
} gw_list_t;

static void gw_list_fn(const void *key, void *value, void *ud) {
  gw_list_t *l = ud;
  gw_obj_t *o = value;
  if ((o->kind == GW_PRODUCER || o->kind == GW_REMOTE_PRODUCER) && o->room == l->room)
    json_array_append_new(l->list, json_pack("{s:s, s:s, s:o}", "id", o->id, "kind",
                                             o->media_kind, "appData",
                                             o->app_data ? json_incref(o->app_data) : json_object()));
}

static void gw_list_producers(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  mf_gateway_t *gw = ctx;
  gw_room_t *room = gw_joined(call);
  if (!room) return;
  gw_list_t l = {.room = room, .list = json_array()};
  uv_mutex_lock(&gw->mu);
  mf_hashmap_foreach(gw->objs, gw_list_fn, &l);
  uv_mutex_unlock(&gw->mu);
  mf_api_call_reply(call, json_pack("{s:o}", "producers", l.list));
}

static const mf_api_method_t gw_methods[] = {
    {"router.create", gw_router_create},
    {"router.join", gw_router_join},
    {"router.close", gw_router_close},
    {"router.getRtpCapabilities", gw_router_caps},
    {"router.canConsume", gw_can_consume},
    {"router.createWebRtcTransport", gw_create_transport},
    {"router.createPlainTransport", gw_create_plain_transport},
    {"router.listProducers", gw_list_producers},
    {"transport.connect", gw_connect},
    {"transport.produce", gw_produce},
    {"transport.consume", gw_consume},
    {"transport.close", gw_transport_close},
    {"producer.pause", gw_producer_op},
    {"producer.resume", gw_producer_op},
    {"producer.close", gw_producer_op},
    {"producer.getStats", gw_producer_op},
    {"consumer.pause", gw_consumer_op},
    {"consumer.resume", gw_consumer_op},
    {"consumer.close", gw_consumer_op},
    {"consumer.getStats", gw_consumer_op},
    {"consumer.requestKeyFrame", gw_consumer_op},
    {"consumer.setPreferredLayers", gw_consumer_op},
    {"transport.produceData", mf_gw_produce_data}, /* gateway_data.c: DataChannels */
    {"transport.consumeData", mf_gw_consume_data},
    {"dataProducer.close", mf_gw_data_producer_op},
    {"dataProducer.getStats", mf_gw_data_producer_op},
    {"dataConsumer.close", mf_gw_data_consumer_op},
    {"dataConsumer.getStats", mf_gw_data_consumer_op},
    {"router.listDataProducers", mf_gw_list_data_producers},
    {"router.createAudioLevelObserver", mf_gw_observer_create},
    {"router.createActiveSpeakerObserver", mf_gw_observer_create},
    {"rtpObserver.addProducer", mf_gw_observer_method},
    {"rtpObserver.removeProducer", mf_gw_observer_method},
    {"rtpObserver.pause", mf_gw_observer_method},
    {"rtpObserver.resume", mf_gw_observer_method},
    {"rtpObserver.close", mf_gw_observer_method},
    {NULL, NULL},
};

/* Each transport of the session closes on its own worker. */
static void gw_close_transports_of(mf_gateway_t *gw, mf_api_session_t *s) {
  mf_gw_forward_session_over(gw, s); /* those on other nodes (out of the index after this) */
  gw_collect_t c = {.session = s, .kind = GW_TRANSPORT, .match_kind = true};
  mf_gw_collect(gw, &c);
  for (size_t i = 0; i < c.count; i++) {
    char key[MF_ID_LEN + 1];
    uv_mutex_lock(&gw->mu);
    gw_obj_t *o = mf_hashmap_get(gw->objs, mf_gw_key(c.ids[i], key));
    gw_room_t *room = o ? o->room : NULL;
    uint32_t worker = o ? o->worker : 0;
    uv_mutex_unlock(&gw->mu);
    if (room && worker < gw->worker_count)
      mf_gw_post(gw, room, OP_CLOSE_TRANSPORT, worker, NULL, NULL, NULL, c.ids[i]);
  }
  free(c.ids);
}

void mf_gw_grace_over(mf_gateway_t *gw, gw_room_t *room, const char *token) {
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_orphan_t *o = mf_hashmap_get(gw->orphans, mf_gw_key(token, key));
  if (o && !o->live) mf_hashmap_remove(gw->orphans, key);
  else o = NULL;
  uv_mutex_unlock(&gw->mu);
  if (!o) return;
  MF_LOG_INFO("room '%s': session not resumed within %u ms, closing its transports",
              room->name, gw->grace_ms);
  gw_close_transports_of(gw, o->old);
  mf_api_session_unref(o->old);
  free(o);
}

/* A closed WebSocket closes the session's transports (and with them its producers and
 * consumers), after the grace period when one is configured. */
static void gw_on_session_close(void *ctx, mf_api_session_t *s) {
  mf_gateway_t *gw = ctx;
  mf_api_limits_session_closed(gw->limits, mf_api_session_id(s)); /* issue 12 */
  gw_session_t *gs = mf_api_session_get_user(s);
  mf_api_session_set_user(s, NULL);
  if (gs) {
    char key[MF_ID_LEN + 1];
    uv_mutex_lock(&gw->mu);
    gw_orphan_t *o = mf_hashmap_get(gw->orphans, mf_gw_key(gs->token, key));
    /* a link's session: its front already waited for its client */
    bool wait = o && gw->grace_ms > 0 && !gs->fwd_in;
    if (wait) {
      o->live = false; /* the home worker ends the grace (mf_gw_grace_over) */
    } else if (o) {
      mf_hashmap_remove(gw->orphans, key);
    }
    uv_mutex_unlock(&gw->mu);
    if (o && !wait) {
      mf_api_session_unref(o->old);
      free(o);
    }
    if (wait) mf_gw_post(gw, gs->room, OP_GRACE, gs->room->home, NULL, NULL, NULL, gs->token);
    free(gs);
    /* no entry: a new session resumed (adopted) everything already */
    if (wait || !o) return;
  }
  gw_close_transports_of(gw, s);
}

static size_t gw_metrics(void *ctx, char *buf, size_t cap) {
  mf_gateway_t *gw = ctx;
  mf_gateway_counts_t *counts = calloc(gw->worker_count, sizeof *counts);
  if (!counts) return (size_t)snprintf(buf, cap, "# metrics unavailable: out of memory\n");
  mf_gateway_counts(gw, counts, gw->worker_count);
  size_t used = mf_gateway_metrics_render(gw->workers, gw->worker_count, counts, buf, cap);
  free(counts);
  uv_mutex_lock(&gw->mu); /* set by mf_gateway_start after the server started */
  mf_whip_t *whip = gw->whip;
  uv_mutex_unlock(&gw->mu);
  int wn = snprintf(buf + (used < cap ? used : cap), used < cap ? cap - used : 0,
                    "# TYPE mafalda_whip_resources gauge\nmafalda_whip_resources %zu\n",
                    mf_whip_count(whip)); /* WHIP + WHEP resources (node/whip.h) */
  if (wn > 0) used += (size_t)wn;
  mf_api_limits_stats_t ls; /* issue 12 */
  mf_api_limits_stats(gw->limits, &ls);
  wn = snprintf(buf + (used < cap ? used : cap), used < cap ? cap - used : 0,
                "# TYPE mafalda_api_refused_total counter\n"
                "mafalda_api_refused_total{limit=\"rate\"} %llu\n"
                "mafalda_api_refused_total{limit=\"session\"} %llu\n"
                "mafalda_api_refused_total{limit=\"node_transports\"} %llu\n"
                "mafalda_api_refused_total{limit=\"node_sessions\"} %llu\n"
                "# TYPE mafalda_api_flood_closed_total counter\n"
                "mafalda_api_flood_closed_total %llu\n",
                (unsigned long long)ls.refused_rate, (unsigned long long)ls.refused_count,
                (unsigned long long)ls.refused_node, (unsigned long long)ls.refused_sessions,
                (unsigned long long)ls.closed_flooding);
  if (wn > 0) used += (size_t)wn;
  return used;
}

void mf_gateway_set_cluster(mf_gateway_t *gw, const mf_gateway_cluster_t *cluster) {
  uv_mutex_lock(&gw->mu);
  gw->clustered = cluster != NULL;
  if (cluster) gw->cluster = *cluster;
  else memset(&gw->cluster, 0, sizeof gw->cluster);
  uv_mutex_unlock(&gw->mu);
}

/* Runs one hub step on every worker and waits for each. */
static void gw_hub_step(mf_gateway_t *gw, gw_op_t op) {
  for (uint32_t w = 0; w < gw->worker_count; w++) {
    uv_sem_t done;
    uv_sem_init(&done, 0);
    gw_cmd_t *c = mf_gw_cmd(gw, NULL, op, w, NULL, NULL, NULL, NULL);
    if (c) {
      c->done = &done;
      mf_gw_send(c); /* posts done itself when the worker is gone */
      uv_sem_wait(&done);
    }
    uv_sem_destroy(&done);
  }
}

mf_err_t mf_gateway_start(const mf_gateway_options_t *o, mf_worker_t *const *workers,
                          uint32_t worker_count, mf_gateway_t **out) {
  if (worker_count == 0) return MF_ERR_INVALID_ARG;
  mf_gateway_t *gw = calloc(1, sizeof *gw);
  if (!gw) return MF_ERR_NO_MEMORY;
  gw->workers = workers;
  gw->worker_count = worker_count;
  uv_mutex_init(&gw->mu);
  gw->grace_ms = o->grace_ms;
  gw->linger_ms = o->pipe_linger_ms ? o->pipe_linger_ms : GW_DEFAULT_LINGER_MS;
  gw->transport_pps = o->transport_pps;
  gw->pipe_srtp = !o->pipe_plain_rtp;
  gw->local_placement = o->local_placement;
  mf_err_t e = mf_hashmap_create(MF_ID_LEN + 1, 64, &gw->objs);
  if (!e) e = mf_hashmap_create(MF_ID_LEN + 1, 16, &gw->orphans);
  if (!e) e = mf_hashmap_create(sizeof(gw_pipe_key_t), 16, &gw->pipes);
  if (!e) e = mf_gw_observers_create(gw, &gw->observers);
  if (!e) e = mf_gw_forward_create(gw, &gw->fwd);
  if (!e) e = mf_api_limits_create(&o->limits, &gw->limits); /* issue 12 */
  gw->hub = o->hub;
  mf_api_server_config_t sc = {.listen = o->listen,
                               .secret = (const uint8_t *)o->secret,
                               .secret_len = strlen(o->secret),
                               .static_dir = o->static_dir[0] ? o->static_dir : NULL,
                               .methods = gw_methods,
                               .ctx = gw,
                               .on_close = gw_on_session_close,
                               .keepalive_ms = o->keepalive_ms,
                               .metrics = gw_metrics,
                               .admit = mf_gw_admit};
  if (!e && gw->hub) gw_hub_step(gw, OP_HUB_ATTACH);
  if (!e) e = mf_api_server_create(&sc, &gw->server);
  if (e) {
    if (gw->hub) {
      gw_hub_step(gw, OP_HUB_QUIESCE);
      gw_hub_step(gw, OP_HUB_DETACH);
    }
    mf_hashmap_destroy(gw->objs);
    mf_hashmap_destroy(gw->orphans);
    mf_hashmap_destroy(gw->pipes);
    mf_gw_observers_destroy(gw->observers);
    mf_gw_forward_destroy(gw->fwd);
    mf_api_limits_destroy(gw->limits);
    uv_mutex_destroy(&gw->mu);
    free(gw);
    return e;
  }
  /* Published under mu: the API server already serves, and /metrics (an nng thread) reads
   * gw->whip (a data race under TSan otherwise). */
  mf_whip_t *whip = NULL;
  if (mf_whip_start(gw->server, &whip) != MF_OK)
    MF_LOG_WARN("WHIP/WHEP endpoints unavailable");
  uv_mutex_lock(&gw->mu);
  gw->whip = whip;
  uv_mutex_unlock(&gw->mu);
  MF_LOG_INFO("API on %s (port %u)%s", o->listen, mf_api_server_port(gw->server),
              mf_api_server_dev_mode(gw->server) ? ": DEV MODE, no token needed (loopback only)" : "");
  *out = gw;
  return MF_OK;
}

uint16_t mf_gateway_port(const mf_gateway_t *gw) { return mf_api_server_port(gw->server); }

static void gw_free_obj(const void *key, void *value, void *ud) { gw_obj_free(value); }
static void gw_free_value(const void *key, void *value, void *ud) { free(value); }

static void gw_free_orphan(const void *key, void *value, void *ud) {
  gw_orphan_t *o = value;
  mf_api_session_unref(o->old);
  free(o);
}

void mf_gateway_stop(mf_gateway_t *gw) {
  if (!gw) return;
  /* Sessions close first (their transports are closed on the workers), then every shard,
   * waiting for each worker so no router outlives its worker; then the pipe hub hands
   * every lent buffer back (no producer feeds a pipe anymore). */
  mf_gateway_set_cluster(gw, NULL);
  uv_mutex_lock(&gw->mu);
  gw->stopping = true; /* closing shards start no idle timers */
  uv_mutex_unlock(&gw->mu);
  mf_whip_stop(gw->whip); /* its sessions end before the server waits for them */
  mf_gw_forward_stop(gw->fwd); /* so do the links' */
  mf_api_server_destroy(gw->server);
  mf_whip_destroy(gw->whip);
  for (gw_room_t *room = gw->rooms; room; room = room->next) {
    mf_gw_close_shards(gw, room, true);
  }
  /* pending linger and idle timers end (and the hub, if any, takes its buffers back) */
  gw_hub_step(gw, OP_HUB_QUIESCE);
  if (gw->hub) gw_hub_step(gw, OP_HUB_DETACH);
  for (gw_room_t *room = gw->rooms; room;) {
    gw_room_t *next = room->next;
    while (room->waiting) { /* calls of sessions already closed: nobody to answer */
      gw_wait_t *w = room->waiting;
      room->waiting = w->next;
      mf_api_session_unref(w->session);
      free(w);
    }
    free(room->codecs);
    free(room->codecs_json);
    free(room->shards);
    free(room->peers);
    free(room);
    room = next;
  }
  mf_hashmap_foreach(gw->orphans, gw_free_orphan, NULL);
  mf_hashmap_destroy(gw->orphans);
  mf_hashmap_foreach(gw->objs, gw_free_obj, NULL);
  mf_hashmap_destroy(gw->objs);
  mf_hashmap_foreach(gw->pipes, gw_free_value, NULL);
  mf_hashmap_destroy(gw->pipes);
  mf_gw_observers_destroy(gw->observers); /* after QUIESCE ended the level timers */
  mf_gw_forward_destroy(gw->fwd);
  mf_api_limits_destroy(gw->limits);
  uv_mutex_destroy(&gw->mu);
  free(gw);
}
