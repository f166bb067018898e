#define MF_LOG_MODULE "gateway"
#include "node/gateway_internal.h"
#include "node/gateway_metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/hashmap.h"
#include "common/id.h"
#include "common/log.h"
#include "node/router.h"

static char *gw_key(const char *id, char key[MF_ID_LEN + 1]) {
  memset(key, 0, MF_ID_LEN + 1);
  snprintf(key, MF_ID_LEN + 1, "%s", id ? id : "");
  return key;
}

/* ------------------------------------------------------------ object index (mutex held) */

static void gw_index_add(mf_gateway_t *gw, const char *id, gw_kind_t kind, gw_room_t *room,
                         mf_api_session_t *s, const char *transport_id, const char *media_kind) {
  gw_obj_t *o = calloc(1, sizeof *o);
  if (!o) return;
  snprintf(o->id, sizeof o->id, "%s", id);
  o->kind = kind;
  o->room = room;
  o->session = s;
  mf_api_session_ref(s);
  snprintf(o->transport_id, sizeof o->transport_id, "%s", transport_id ? transport_id : "");
  snprintf(o->media_kind, sizeof o->media_kind, "%s", media_kind ? media_kind : "");
  uv_mutex_lock(&gw->mu);
  if (mf_hashmap_put(gw->objs, o->id, o) != MF_OK) {
    mf_api_session_unref(s);
    free(o);
  }
  uv_mutex_unlock(&gw->mu);
}

static void gw_obj_free(gw_obj_t *o) {
  mf_api_session_unref(o->session);
  free(o);
}

static void gw_index_remove(mf_gateway_t *gw, const char *id) {
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_obj_t *o = mf_hashmap_remove(gw->objs, gw_key(id, key));
  uv_mutex_unlock(&gw->mu);
  if (o) gw_obj_free(o);
}

typedef struct {
  const char *transport_id;
  const mf_api_session_t *session;
  gw_kind_t kind;
  bool match_kind;
  char (*ids)[MF_ID_LEN + 1];
  size_t count, cap;
} gw_collect_t;

static void gw_collect_fn(const void *key, void *value, void *ud) {
  gw_collect_t *c = ud;
  gw_obj_t *o = value;
  if (c->transport_id && strcmp(o->transport_id, c->transport_id) != 0) return;
  if (c->session && o->session != c->session) return;
  if (c->match_kind && o->kind != c->kind) return;
  if (c->count == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    void *n = realloc(c->ids, cap * sizeof *c->ids);
    if (!n) return;
    c->ids = n;
    c->cap = cap;
  }
  memcpy(c->ids[c->count++], o->id, MF_ID_LEN + 1);
}

/* Ids of indexed objects matching c's filters (snapshot taken under the mutex). */
static void gw_collect(mf_gateway_t *gw, gw_collect_t *c) {
  uv_mutex_lock(&gw->mu);
  mf_hashmap_foreach(gw->objs, gw_collect_fn, c);
  uv_mutex_unlock(&gw->mu);
}

/* ------------------------------------------------------------ events from routers */

static void gw_post(mf_gateway_t *gw, gw_room_t *room, gw_op_t op, mf_api_call_t *call,
                    mf_api_session_t *session, const mf_api_request_t *req, const char *target);

static void gw_on_router_event(void *ud, const char *event, const char *target, json_t *data) {
  mf_gateway_t *gw = ud;
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_obj_t *o = mf_hashmap_get(gw->objs, gw_key(target, key));
  mf_api_session_t *s = o ? o->session : NULL;
  gw_kind_t kind = o ? o->kind : GW_TRANSPORT;
  gw_room_t *room = o ? o->room : NULL;
  if (s) mf_api_session_ref(s);
  uv_mutex_unlock(&gw->mu);
  if (!s) {
    json_decref(data);
    return;
  }
  /* DTLS closed or failed: the client's PeerConnection is gone (closed cleanly, or broken), no
   * resume can help; close the transport now (posted: we are inside its own callback). */
  const char *dtls = strcmp(event, "dtlsstatechange") == 0
                         ? json_string_value(json_object_get(data, "dtlsState"))
                         : NULL;
  if (dtls && (strcmp(dtls, "closed") == 0 || strcmp(dtls, "failed") == 0))
    gw_post(gw, room, OP_CLOSE_TRANSPORT, NULL, NULL, NULL, target);
  const char *prefix = kind == GW_TRANSPORT ? "transport" : kind == GW_PRODUCER ? "producer" : "consumer";
  char name[64];
  /* mediasoup names a transport's end caused by its router closing "routerclose" */
  snprintf(name, sizeof name, "%s.%s", prefix,
           strcmp(event, "transportclose") == 0 ? "routerclose" : event);
  mf_api_session_notify(s, name, target, data ? data : json_object());
  mf_api_session_unref(s);
  if (strcmp(event, "producerclose") == 0 || strcmp(event, "transportclose") == 0)
    gw_index_remove(gw, target);
}

/* ------------------------------------------------------------ worker side */

static mf_media_kind_t gw_kind_of(const char *s) { return mf_media_kind_parse(s ? s : ""); }

static void gw_fail(gw_cmd_t *c, mf_err_t code, const char *msg) {
  if (c->call) mf_api_call_fail(c->call, code, "%s", msg);
}

static void gw_notify_room(mf_gateway_t *gw, gw_room_t *room, mf_api_session_t *except,
                           const char *event, const char *target, json_t *data) {
  /* Members are the sessions that own a transport in the room. */
  mf_api_session_t *list[256];
  size_t n = 0;
  gw_collect_t c = {.kind = GW_TRANSPORT, .match_kind = true};
  gw_collect(gw, &c);
  for (size_t i = 0; i < c.count && n < 256; i++) {
    char key[MF_ID_LEN + 1];
    uv_mutex_lock(&gw->mu);
    gw_obj_t *o = mf_hashmap_get(gw->objs, gw_key(c.ids[i], key));
    if (o && o->room == room && o->session != except) {
      bool seen = false;
      for (size_t k = 0; k < n; k++) seen = seen || list[k] == o->session;
      if (!seen) {
        list[n++] = o->session;
        mf_api_session_ref(o->session);
      }
    }
    uv_mutex_unlock(&gw->mu);
  }
  free(c.ids);
  for (size_t i = 0; i < n; i++) {
    mf_api_session_notify(list[i], event, target, json_deep_copy(data));
    mf_api_session_unref(list[i]);
  }
  json_decref(data);
}

/* The room's router, created on first use (worker thread). A shard placed by the
 * controller keeps the logical router's id. */
static mf_err_t gw_room_open_router(gw_cmd_t *c, mf_worker_t *w, char *err, size_t errsz) {
  gw_room_t *room = c->room;
  if (room->router) return MF_OK;
  uv_mutex_lock(&c->gw->mu);
  char shard_id[MF_ID_LEN + 1];
  memcpy(shard_id, room->shard_id, sizeof shard_id);
  uv_mutex_unlock(&c->gw->mu);
  mf_err_t e = mf_router_create(mf_worker_rtc_server(w), shard_id[0] ? shard_id : NULL,
                                room->codecs, room->codec_count, gw_on_router_event, c->gw, err,
                                errsz, &room->router);
  if (e) return e;
  uv_mutex_lock(&c->gw->mu);
  snprintf(room->router_id, sizeof room->router_id, "%s", mf_router_id(room->router));
  uv_mutex_unlock(&c->gw->mu);
  MF_LOG_INFO("room '%s': router %s on worker %u%s", room->name, room->router_id, room->worker,
              shard_id[0] ? " (placed by the controller)" : "");
  return MF_OK;
}

static void gw_run_join(gw_cmd_t *c, mf_worker_t *w) {
  gw_room_t *room = c->room;
  char err[256];
  mf_err_t e = gw_room_open_router(c, w, err, sizeof err);
  if (e) {
    gw_fail(c, e, err);
    return;
  }
  gw_session_t *gs = c->session ? mf_api_session_get_user(c->session) : NULL;
  json_t *reply = json_pack("{s:s, s:s, s:o}", "roomId", room->name, "routerId",
                            mf_router_id(room->router), "rtpCapabilities",
                            mf_rtp_capabilities_to_json(mf_router_rtp_capabilities(room->router)));
  if (gs) json_object_set_new(reply, "resumeToken", json_string(gs->token));
  mf_api_call_reply(c->call, reply);
}

static void gw_run_produce(gw_cmd_t *c, mf_router_transport_t *t) {
  char err[512];
  mf_media_kind_t kind = gw_kind_of(json_string_value(json_object_get(c->data, "kind")));
  mf_rtp_parameters_t *params = malloc(sizeof *params);
  if (!params) return gw_fail(c, MF_ERR_NO_MEMORY, "out of memory");
  mf_err_t e = mf_rtp_parameters_from_json(json_object_get(c->data, "rtpParameters"),
                                           "rtpParameters", params, err, sizeof err);
  mf_producer_t *p = NULL;
  if (!e)
    e = mf_router_produce(t, kind, params, json_is_true(json_object_get(c->data, "paused")), err,
                          sizeof err, &p);
  free(params);
  if (e) return gw_fail(c, e, err);
  gw_index_add(c->gw, mf_producer_id(p), GW_PRODUCER, c->room, c->session,
               mf_router_transport_id(t), mf_media_kind_str(kind));
  mf_api_call_reply(c->call, json_pack("{s:s}", "id", mf_producer_id(p)));
  json_t *appdata = json_object_get(c->data, "appData");
  gw_notify_room(c->gw, c->room, c->session, "router.newproducer", mf_producer_id(p),
                 json_pack("{s:s, s:s, s:o}", "id", mf_producer_id(p), "kind",
                           mf_media_kind_str(kind), "appData",
                           appdata ? json_incref(appdata) : json_object()));
}

static void gw_run_consume(gw_cmd_t *c, mf_router_transport_t *t, bool only_check) {
  char err[512];
  mf_rtp_capabilities_t *caps = malloc(sizeof *caps);
  if (!caps) return gw_fail(c, MF_ERR_NO_MEMORY, "out of memory");
  mf_err_t e = mf_rtp_capabilities_from_json(json_object_get(c->data, "rtpCapabilities"),
                                             "rtpCapabilities", caps, err, sizeof err);
  const char *pid = json_string_value(json_object_get(c->data, "producerId"));
  if (!e && only_check) {
    mf_api_call_reply(c->call, json_pack("{s:b}", "canConsume",
                                         mf_router_can_consume(c->room->router, pid, caps)));
    free(caps);
    return;
  }
  mf_consumer_t *con = NULL;
  if (!e)
    e = mf_router_consume(t, pid, caps, json_is_true(json_object_get(c->data, "paused")), err,
                          sizeof err, &con);
  free(caps);
  if (e) return gw_fail(c, e, err);
  gw_index_add(c->gw, mf_consumer_id(con), GW_CONSUMER, c->room, c->session,
               mf_router_transport_id(t), "");
  mf_api_call_reply(c->call, mf_consumer_to_json(con));
}

typedef struct {
  const char *transport_id; /* or NULL: every producer of room */
  gw_room_t *room;
  mf_api_session_t *sessions[64];
  char ids[64][MF_ID_LEN + 1];
  size_t count;
} gw_closing_t;

static void gw_closing_fn(const void *key, void *value, void *ud) {
  gw_closing_t *c = ud;
  gw_obj_t *o = value;
  if (o->kind != GW_PRODUCER || c->count == 64) return;
  if (c->transport_id ? strcmp(o->transport_id, c->transport_id) != 0 : o->room != c->room) return;
  mf_api_session_ref(o->session);
  c->sessions[c->count] = o->session;
  memcpy(c->ids[c->count++], o->id, MF_ID_LEN + 1);
}

/* Producers about to end without their owner asking (transport or router closed, grace
 * over): their owners get producer.close {reason} once they are gone. */
static void gw_closing_collect(mf_gateway_t *gw, gw_closing_t *c) {
  uv_mutex_lock(&gw->mu);
  mf_hashmap_foreach(gw->objs, gw_closing_fn, c);
  uv_mutex_unlock(&gw->mu);
}

static void gw_closing_release(gw_closing_t *c) {
  for (size_t i = 0; i < c->count; i++) mf_api_session_unref(c->sessions[i]);
}

static void gw_closing_notify(gw_closing_t *c, const char *reason) {
  for (size_t i = 0; i < c->count; i++) {
    mf_api_session_notify(c->sessions[i], "producer.close", c->ids[i], json_pack("{s:s}", "reason", reason));
    mf_api_session_unref(c->sessions[i]);
  }
}

static void gw_close_transport(gw_cmd_t *c, mf_router_transport_t *t) {
  char tid[MF_ID_LEN + 1];
  snprintf(tid, sizeof tid, "%s", mf_router_transport_id(t));
  gw_closing_t *closing = calloc(1, sizeof *closing);
  if (closing) {
    closing->transport_id = tid;
    gw_closing_collect(c->gw, closing);
  }
  mf_router_transport_close(t); /* producerclose events reach other sessions' consumers */
  if (closing) {
    /* a client's own transport.close needs no telling: only implicit closes notify */
    if (c->call) {
      gw_closing_release(closing);
      closing->count = 0;
    }
    gw_closing_notify(closing, "transportclose");
    free(closing);
  }
  gw_collect_t col = {.transport_id = tid};
  gw_collect(c->gw, &col);
  for (size_t i = 0; i < col.count; i++) gw_index_remove(c->gw, col.ids[i]);
  free(col.ids);
  gw_index_remove(c->gw, tid);
}

static void gw_run_producer(gw_cmd_t *c, mf_producer_t *p) {
  const char *m = c->method;
  if (strcmp(m, "producer.pause") == 0) {
    mf_producer_pause(p);
  } else if (strcmp(m, "producer.resume") == 0) {
    mf_producer_resume(p);
  } else if (strcmp(m, "producer.getStats") == 0) {
    return (void)mf_api_call_reply(c->call, json_pack("{s:o}", "stats", mf_producer_stats_json(p)));
  } else if (strcmp(m, "producer.close") == 0) {
    char id[MF_ID_LEN + 1];
    snprintf(id, sizeof id, "%s", mf_producer_id(p));
    mf_producer_close(p);
    gw_index_remove(c->gw, id);
  }
  mf_api_call_reply(c->call, json_object());
}

static void gw_run_consumer(gw_cmd_t *c, mf_consumer_t *con) {
  const char *m = c->method;
  if (strcmp(m, "consumer.pause") == 0) {
    mf_consumer_pause(con);
  } else if (strcmp(m, "consumer.resume") == 0) {
    mf_consumer_resume(con);
  } else if (strcmp(m, "consumer.requestKeyFrame") == 0) {
    mf_consumer_request_keyframe(con);
  } else if (strcmp(m, "consumer.setPreferredLayers") == 0) {
    return (void)mf_api_call_fail(c->call, MF_ERR_UNSUPPORTED,
                                  "simulcast/SVC layer selection is not supported yet: the "
                                  "consumer forwards the producer's first encoding");
  } else if (strcmp(m, "consumer.getStats") == 0) {
    return (void)mf_api_call_reply(c->call, json_pack("{s:o}", "stats", mf_consumer_stats_json(con)));
  } else if (strcmp(m, "consumer.close") == 0) {
    char id[MF_ID_LEN + 1];
    snprintf(id, sizeof id, "%s", mf_consumer_id(con));
    mf_consumer_close(con);
    gw_index_remove(c->gw, id);
  }
  mf_api_call_reply(c->call, json_object());
}

/* Worker thread: closes the transports (with their producers and consumers) that `owner`
 * still owns in `room`. */
static void gw_close_session_objects(mf_gateway_t *gw, gw_room_t *room, mf_api_session_t *owner) {
  gw_collect_t c = {.session = owner, .kind = GW_TRANSPORT, .match_kind = true};
  gw_collect(gw, &c);
  for (size_t i = 0; i < c.count; i++) {
    mf_router_transport_t *t = room->router ? mf_router_find_transport(room->router, c.ids[i]) : NULL;
    if (t) {
      gw_cmd_t tmp = {.gw = gw, .room = room};
      gw_close_transport(&tmp, t);
    } else {
      gw_index_remove(gw, c.ids[i]);
    }
  }
  free(c.ids);
}

static void gw_grace_closed(uv_handle_t *h) { free(h->data); }

static void gw_grace_unlink(gw_grace_t *g) {
  for (gw_grace_t **p = &g->room->graces; *p; p = &(*p)->next) {
    if (*p == g) {
      *p = g->next;
      return;
    }
  }
}

/* Grace over: unless a new session adopted them, the objects close. */
static void gw_grace_fired(uv_timer_t *timer) {
  gw_grace_t *g = timer->data;
  uv_mutex_lock(&g->gw->mu);
  gw_orphan_t *o = mf_hashmap_remove(g->gw->orphans, g->token);
  uv_mutex_unlock(&g->gw->mu);
  if (o) {
    MF_LOG_INFO("room '%s': session not resumed within %u ms, closing its transports",
                g->room->name, g->gw->grace_ms);
    gw_close_session_objects(g->gw, g->room, o->old);
    mf_api_session_unref(o->old);
    free(o);
  }
  gw_grace_unlink(g);
  uv_close((uv_handle_t *)&g->timer, gw_grace_closed);
}

void mf_gateway_on_command(mf_mailbox_msg_t *msg, void *owner) {
  gw_cmd_t *c = MF_CONTAINER_OF(msg, gw_cmd_t, link);
  mf_worker_t *w = owner;
  mf_router_t *r = c->room ? c->room->router : NULL;
  if (c->op == OP_JOIN) {
    gw_run_join(c, w);
  } else if (c->op == OP_OPEN_SHARD) {
    *c->result = gw_room_open_router(c, w, c->err, c->errsz);
    uv_sem_post(c->done);
  } else if (c->op == OP_GRACE) {
    gw_grace_t *g = calloc(1, sizeof *g);
    if (g) {
      g->gw = c->gw;
      g->room = c->room;
      memcpy(g->token, c->target, sizeof g->token);
      uv_timer_init(mf_worker_loop(w), &g->timer);
      g->timer.data = g;
      g->next = c->room->graces;
      c->room->graces = g;
      uv_timer_start(&g->timer, gw_grace_fired, c->gw->grace_ms, 0);
    }
  } else if (c->op == OP_CLOSE_ROOM) {
    /* pending grace periods end with the room (the gateway drops its orphans) */
    while (c->room->graces) {
      gw_grace_t *g = c->room->graces;
      c->room->graces = g->next;
      uv_timer_stop(&g->timer);
      uv_close((uv_handle_t *)&g->timer, gw_grace_closed);
    }
    if (r) mf_router_close(r);
    c->room->router = NULL;
    uv_sem_post(c->done);
  } else if (c->op == OP_CLOSE_ROUTER) {
    /* Transports end with transport.routerclose to their owners; the room stays and the
     * next router.join makes a new router. */
    gw_closing_t *closing = calloc(1, sizeof *closing);
    if (closing) {
      closing->room = c->room;
      gw_closing_collect(c->gw, closing);
    }
    if (r) mf_router_close(r);
    if (closing) {
      gw_closing_notify(closing, "routerclose");
      free(closing);
    }
    c->room->router = NULL;
    gw_collect_t col = {0};
    gw_collect(c->gw, &col);
    for (size_t i = 0; i < col.count; i++) {
      char key[MF_ID_LEN + 1];
      uv_mutex_lock(&c->gw->mu);
      gw_obj_t *o = mf_hashmap_get(c->gw->objs, gw_key(col.ids[i], key));
      bool mine = o && o->room == c->room;
      uv_mutex_unlock(&c->gw->mu);
      if (mine) gw_index_remove(c->gw, col.ids[i]);
    }
    free(col.ids);
    uv_mutex_lock(&c->gw->mu);
    c->room->router_id[0] = '\0';
    uv_mutex_unlock(&c->gw->mu);
    mf_api_call_reply(c->call, json_object());
    if (c->done) uv_sem_post(c->done);
  } else if (!r) {
    gw_fail(c, MF_ERR_STATE, "the room has no router");
  } else if (c->op == OP_CREATE_TRANSPORT) {
    mf_router_transport_t *t;
    mf_err_t e = mf_router_create_webrtc_transport(r, &t);
    if (e) {
      gw_fail(c, e, "cannot create the transport");
    } else {
      gw_index_add(c->gw, mf_router_transport_id(t), GW_TRANSPORT, c->room, c->session, NULL, NULL);
      mf_api_call_reply(c->call, mf_webrtc_transport_parameters_json(mf_router_transport_webrtc(t)));
    }
  } else if (c->op == OP_PRODUCER || c->op == OP_CONSUMER) {
    void *obj = c->op == OP_PRODUCER ? (void *)mf_router_find_producer(r, c->target)
                                     : (void *)mf_router_find_consumer(r, c->target);
    if (!obj)
      gw_fail(c, MF_ERR_NOT_FOUND, "no such object");
    else if (c->op == OP_PRODUCER)
      gw_run_producer(c, obj);
    else
      gw_run_consumer(c, obj);
  } else {
    mf_router_transport_t *t = mf_router_find_transport(r, c->target);
    if (!t && c->op != OP_CAN_CONSUME) {
      gw_fail(c, MF_ERR_NOT_FOUND, "transport not found");
    } else if (c->op == OP_CONNECT) {
      char err[256];
      mf_err_t e = mf_webrtc_transport_connect_json(mf_router_transport_webrtc(t),
                                                    json_object_get(c->data, "dtlsParameters"),
                                                    err, sizeof err);
      if (e)
        gw_fail(c, e, err);
      else
        mf_api_call_reply(c->call, json_object());
    } else if (c->op == OP_PRODUCE) {
      gw_run_produce(c, t);
    } else if (c->op == OP_CONSUME || c->op == OP_CAN_CONSUME) {
      gw_run_consume(c, t, c->op == OP_CAN_CONSUME);
    } else if (c->op == OP_CLOSE_TRANSPORT) {
      gw_close_transport(c, t);
      if (c->call) mf_api_call_reply(c->call, json_object());
    }
  }
  if (c->session) mf_api_session_unref(c->session);
  json_decref(c->data);
  free(c);
}

/* ------------------------------------------------------------ nng side */

static void gw_post(mf_gateway_t *gw, gw_room_t *room, gw_op_t op, mf_api_call_t *call,
                    mf_api_session_t *session, const mf_api_request_t *req, const char *target) {
  gw_cmd_t *c = calloc(1, sizeof *c);
  if (!c) {
    if (call) mf_api_call_fail(call, MF_ERR_NO_MEMORY, "out of memory");
    return;
  }
  c->gw = gw;
  c->op = op;
  c->call = call;
  c->session = session;
  if (session) mf_api_session_ref(session);
  c->room = room;
  c->data = req ? json_incref(req->data) : NULL;
  /* target was validated as an id (or is empty); method fits MF_API_METHOD_MAX by parse */
  if (target && strlen(target) < sizeof c->target) memcpy(c->target, target, strlen(target) + 1);
  if (req && strlen(req->method) < sizeof c->method)
    memcpy(c->method, req->method, strlen(req->method) + 1);
  if (mf_worker_post(gw->workers[room->worker], &c->link, mf_gateway_on_command) != MF_OK) {
    if (call) mf_api_call_fail(call, MF_ERR_CLOSED, "the node is shutting down");
    if (session) mf_api_session_unref(session);
    json_decref(c->data);
    free(c);
  }
}

static gw_room_t *gw_session_room(mf_api_session_t *s) {
  gw_session_t *gs = mf_api_session_get_user(s);
  return gs ? gs->room : NULL;
}

/* Records the session's room and gives it a resume token; MF_ERR_NO_MEMORY if it cannot. */
static mf_err_t gw_session_join(mf_api_session_t *s, gw_room_t *room) {
  if (mf_api_session_get_user(s)) return MF_OK;
  gw_session_t *gs = calloc(1, sizeof *gs);
  if (!gs) return MF_ERR_NO_MEMORY;
  gs->room = room;
  if (mf_id_generate(gs->token) != MF_OK) {
    free(gs);
    return MF_ERR_CRYPTO;
  }
  mf_api_session_set_user(s, gs);
  return MF_OK;
}

/* router.join {resumeToken}: the new session adopts a closed session's objects. */
static bool gw_resume(mf_gateway_t *gw, mf_api_session_t *s, gw_room_t *room, const char *token) {
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_orphan_t *o = mf_hashmap_get(gw->orphans, gw_key(token, key));
  if (o && o->room == room) {
    mf_hashmap_remove(gw->orphans, key);
  } else {
    o = NULL;
  }
  uv_mutex_unlock(&gw->mu);
  if (!o) return false;
  gw_collect_t c = {.session = o->old};
  gw_collect(gw, &c);
  uv_mutex_lock(&gw->mu);
  for (size_t i = 0; i < c.count; i++) {
    gw_obj_t *obj = mf_hashmap_get(gw->objs, gw_key(c.ids[i], key));
    if (!obj) continue;
    mf_api_session_ref(s);
    mf_api_session_unref(obj->session);
    obj->session = s;
  }
  uv_mutex_unlock(&gw->mu);
  MF_LOG_INFO("room '%s': a session resumed %zu objects", room->name, c.count);
  free(c.ids);
  mf_api_session_unref(o->old);
  free(o);
  return true;
}

static void gw_router_join(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  mf_gateway_t *gw = ctx;
  mf_api_session_t *s = mf_api_call_session(call);
  const char *name = json_string_value(json_object_get(req->data, "roomId"));
  if (!name || !name[0] || strlen(name) > GW_ROOM_MAX)
    return (void)mf_api_call_fail(call, MF_ERR_INVALID_ARG, "data.roomId must be a string of 1..%d bytes", GW_ROOM_MAX);
  if (!mf_jwt_allows_room(mf_api_session_claims(s), name))
    return (void)mf_api_call_fail(call, MF_ERR_AUTH, "the token does not grant room '%s'", name);
  if (gw_session_room(s) && strcmp(gw_session_room(s)->name, name) != 0)
    return (void)mf_api_call_fail(call, MF_ERR_STATE, "this session already joined room '%s'",
                                  gw_session_room(s)->name);
  uv_mutex_lock(&gw->mu);
  gw_room_t *room = gw->rooms;
  while (room && strcmp(room->name, name) != 0) room = room->next;
  if (!room && (room = calloc(1, sizeof *room)) != NULL) {
    snprintf(room->name, sizeof room->name, "%s", name);
    room->worker = gw->next_worker++ % gw->worker_count; /* placement comes with the scheduler */
    room->next = gw->rooms;
    gw->rooms = room;
  }
  uv_mutex_unlock(&gw->mu);
  if (!room || gw_session_join(s, room) != MF_OK)
    return (void)mf_api_call_fail(call, MF_ERR_NO_MEMORY, "out of memory");
  const char *token = json_string_value(json_object_get(req->data, "resumeToken"));
  if (token && !gw_resume(gw, s, room, token))
    return (void)mf_api_call_fail(call, MF_ERR_NOT_FOUND,
                                  "resumeToken unknown, expired or for another room");
  gw_post(gw, room, OP_JOIN, call, s, req, NULL);
}

/* router.create {roomId, mediaCodecs?}: a new room (refused if it exists) with the given
 * codecs, validated here so a bad list never reaches a worker; the session joins it. */
static void gw_router_create(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  mf_gateway_t *gw = ctx;
  mf_api_session_t *s = mf_api_call_session(call);
  const char *name = json_string_value(json_object_get(req->data, "roomId"));
  if (!name || !name[0] || strlen(name) > GW_ROOM_MAX)
    return (void)mf_api_call_fail(call, MF_ERR_INVALID_ARG, "data.roomId must be a string of 1..%d bytes", GW_ROOM_MAX);
  if (!mf_jwt_allows_room(mf_api_session_claims(s), name))
    return (void)mf_api_call_fail(call, MF_ERR_AUTH, "the token does not grant room '%s'", name);
  if (gw_session_room(s))
    return (void)mf_api_call_fail(call, MF_ERR_STATE, "this session already joined room '%s'",
                                  gw_session_room(s)->name);
  mf_rtp_codec_capability_t *codecs = NULL;
  size_t count = 0;
  json_t *jc = json_object_get(req->data, "mediaCodecs");
  if (jc) {
    char err[256];
    mf_err_t e = mf_ortc_parse_media_codecs(jc, "data.mediaCodecs", &codecs, &count, err, sizeof err);
    if (e) return (void)mf_api_call_fail(call, e, "%s", err);
  }
  uv_mutex_lock(&gw->mu);
  gw_room_t *room = gw->rooms;
  while (room && strcmp(room->name, name) != 0) room = room->next;
  bool exists = room != NULL;
  if (!exists && (room = calloc(1, sizeof *room)) != NULL) {
    snprintf(room->name, sizeof room->name, "%s", name);
    room->worker = gw->next_worker++ % gw->worker_count;
    room->codecs = codecs;
    room->codec_count = count;
    room->next = gw->rooms;
    gw->rooms = room;
  }
  uv_mutex_unlock(&gw->mu);
  if (exists || !room) {
    free(codecs);
    return (void)mf_api_call_fail(call, exists ? MF_ERR_EXISTS : MF_ERR_NO_MEMORY,
                                  exists ? "room '%s' already exists: use router.join" : "out of memory (%s)", name);
  }
  if (gw_session_join(s, room) != MF_OK)
    return (void)mf_api_call_fail(call, MF_ERR_NO_MEMORY, "out of memory");
  gw_post(gw, room, OP_JOIN, call, s, req, NULL);
}

/* router.close: closes the session's room's router (every transport in it ends). */
static void gw_router_close(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  gw_room_t *room = gw_session_room(mf_api_call_session(call));
  if (!room) return (void)mf_api_call_fail(call, MF_ERR_STATE, "call router.join first");
  gw_post(ctx, room, OP_CLOSE_ROUTER, call, mf_api_call_session(call), req, NULL);
}

/* Resolves data.<field> to an object of this session; fails the call otherwise. */
static gw_room_t *gw_owned(mf_gateway_t *gw, mf_api_call_t *call, const mf_api_request_t *req,
                           const char *field, gw_kind_t kind, const char **id) {
  mf_api_session_t *s = mf_api_call_session(call);
  *id = json_string_value(json_object_get(req->data, field));
  if (!*id || !mf_id_is_valid(*id)) {
    mf_api_call_fail(call, MF_ERR_INVALID_ARG, "data.%s must be an id (UUIDv4 string)", field);
    return NULL;
  }
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_obj_t *o = mf_hashmap_get(gw->objs, gw_key(*id, key));
  gw_room_t *room = o && o->kind == kind && o->session == s ? o->room : NULL;
  uv_mutex_unlock(&gw->mu);
  if (!room) mf_api_call_fail(call, MF_ERR_NOT_FOUND, "%s '%s' not found in this session", field, *id);
  return room;
}

static gw_room_t *gw_joined(mf_api_call_t *call) {
  gw_room_t *room = gw_session_room(mf_api_call_session(call));
  if (!room) mf_api_call_fail(call, MF_ERR_STATE, "call router.join first");
  return room;
}

static void gw_router_caps(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  gw_room_t *room = gw_joined(call);
  if (room) gw_post(ctx, room, OP_JOIN, call, mf_api_call_session(call), req, NULL);
}

static void gw_create_transport(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  gw_room_t *room = gw_joined(call);
  if (room) gw_post(ctx, room, OP_CREATE_TRANSPORT, call, mf_api_call_session(call), req, NULL);
}

static void gw_transport_op(void *ctx, mf_api_call_t *call, const mf_api_request_t *req, gw_op_t op) {
  const char *id;
  gw_room_t *room = gw_owned(ctx, call, req, "transportId", GW_TRANSPORT, &id);
  if (room) gw_post(ctx, room, op, call, mf_api_call_session(call), req, id);
}

static void gw_connect(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) { gw_transport_op(ctx, call, req, OP_CONNECT); }
static void gw_produce(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) { gw_transport_op(ctx, call, req, OP_PRODUCE); }
static void gw_consume(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) { gw_transport_op(ctx, call, req, OP_CONSUME); }
static void gw_transport_close(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) { gw_transport_op(ctx, call, req, OP_CLOSE_TRANSPORT); }

static void gw_can_consume(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  gw_room_t *room = gw_joined(call);
  if (room) gw_post(ctx, room, OP_CAN_CONSUME, call, mf_api_call_session(call), req, "");
}

static void gw_producer_op(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  const char *id;
  gw_room_t *room = gw_owned(ctx, call, req, "producerId", GW_PRODUCER, &id);
  if (room) gw_post(ctx, room, OP_PRODUCER, call, mf_api_call_session(call), req, id);
}

static void gw_consumer_op(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  const char *id;
  gw_room_t *room = gw_owned(ctx, call, req, "consumerId", GW_CONSUMER, &id);
  if (room) gw_post(ctx, room, OP_CONSUMER, call, mf_api_call_session(call), req, id);
}

typedef struct {
  gw_room_t *room;
  json_t *list;
} gw_list_t;

static void gw_list_fn(const void *key, void *value, void *ud) {
  gw_list_t *l = ud;
  gw_obj_t *o = value;
  if (o->kind == GW_PRODUCER && o->room == l->room)
    json_array_append_new(l->list, json_pack("{s:s, s:s}", "id", o->id, "kind", o->media_kind));
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
    {NULL, NULL},
};

/* A closed WebSocket closes the session's transports (and with them its producers and
 * consumers). Reconnection with a resume token is not supported yet. */
static void gw_on_session_close(void *ctx, mf_api_session_t *s) {
  mf_gateway_t *gw = ctx;
  gw_session_t *gs = mf_api_session_get_user(s);
  mf_api_session_set_user(s, NULL);
  if (gs && gw->grace_ms > 0) {
    /* Objects wait for a resume; the room's worker closes them when the grace ends. */
    gw_orphan_t *o = calloc(1, sizeof *o);
    bool kept = false;
    if (o) {
      o->room = gs->room;
      o->old = s;
      mf_api_session_ref(s);
      uv_mutex_lock(&gw->mu);
      kept = mf_hashmap_put(gw->orphans, gs->token, o) == MF_OK;
      uv_mutex_unlock(&gw->mu);
      if (kept) {
        gw_post(gw, gs->room, OP_GRACE, NULL, NULL, NULL, gs->token);
      } else {
        mf_api_session_unref(s);
        free(o);
      }
    }
    free(gs);
    if (kept) return;
  } else {
    free(gs);
  }
  gw_collect_t c = {.session = s, .kind = GW_TRANSPORT, .match_kind = true};
  gw_collect(gw, &c);
  for (size_t i = 0; i < c.count; i++) {
    char key[MF_ID_LEN + 1];
    uv_mutex_lock(&gw->mu);
    gw_obj_t *o = mf_hashmap_get(gw->objs, gw_key(c.ids[i], key));
    gw_room_t *room = o ? o->room : NULL;
    uv_mutex_unlock(&gw->mu);
    if (room) gw_post(gw, room, OP_CLOSE_TRANSPORT, NULL, NULL, NULL, c.ids[i]);
  }
  free(c.ids);
}

static size_t gw_metrics(void *ctx, char *buf, size_t cap) {
  mf_gateway_t *gw = ctx;
  mf_gateway_counts_t *counts = calloc(gw->worker_count, sizeof *counts);
  if (!counts) return (size_t)snprintf(buf, cap, "# metrics unavailable: out of memory\n");
  mf_gateway_counts(gw, counts, gw->worker_count);
  size_t used = mf_gateway_metrics_render(gw->workers, gw->worker_count, counts, buf, cap);
  free(counts);
  return used;
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
  mf_err_t e = mf_hashmap_create(MF_ID_LEN + 1, 64, &gw->objs);
  if (!e) e = mf_hashmap_create(MF_ID_LEN + 1, 16, &gw->orphans);
  mf_api_server_config_t sc = {.listen = o->listen,
                               .secret = (const uint8_t *)o->secret,
                               .secret_len = strlen(o->secret),
                               .static_dir = o->static_dir[0] ? o->static_dir : NULL,
                               .methods = gw_methods,
                               .ctx = gw,
                               .on_close = gw_on_session_close,
                               .metrics = gw_metrics};
  if (!e) e = mf_api_server_create(&sc, &gw->server);
  if (e) {
    mf_hashmap_destroy(gw->objs);
    mf_hashmap_destroy(gw->orphans);
    uv_mutex_destroy(&gw->mu);
    free(gw);
    return e;
  }
  MF_LOG_INFO("API on %s (port %u)%s", o->listen, mf_api_server_port(gw->server),
              mf_api_server_dev_mode(gw->server) ? ": DEV MODE, no token needed (loopback only)" : "");
  *out = gw;
  return MF_OK;
}

uint16_t mf_gateway_port(const mf_gateway_t *gw) { return mf_api_server_port(gw->server); }

static void gw_free_obj(const void *key, void *value, void *ud) { gw_obj_free(value); }

static void gw_free_orphan(const void *key, void *value, void *ud) {
  gw_orphan_t *o = value;
  mf_api_session_unref(o->old);
  free(o);
}

void mf_gateway_stop(mf_gateway_t *gw) {
  if (!gw) return;
  /* Sessions close first (their transports are closed on the workers), then each room's
   * router, waiting for the worker so no router outlives its worker. */
  mf_api_server_destroy(gw->server);
  for (gw_room_t *room = gw->rooms; room;) {
    gw_room_t *next = room->next;
    uv_sem_t done;
    uv_sem_init(&done, 0);
    gw_cmd_t *c = calloc(1, sizeof *c);
    if (c) {
      c->gw = gw;
      c->op = OP_CLOSE_ROOM;
      c->room = room;
      c->done = &done;
      if (mf_worker_post(gw->workers[room->worker], &c->link, mf_gateway_on_command) == MF_OK)
        uv_sem_wait(&done);
      else
        free(c);
    }
    uv_sem_destroy(&done);
    free(room->codecs);
    free(room);
    room = next;
  }
  mf_hashmap_foreach(gw->orphans, gw_free_orphan, NULL);
  mf_hashmap_destroy(gw->orphans);
  mf_hashmap_foreach(gw->objs, gw_free_obj, NULL);
  mf_hashmap_destroy(gw->objs);
  uv_mutex_destroy(&gw->mu);
  free(gw);
}
