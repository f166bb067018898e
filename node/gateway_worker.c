/* The gateway's commands as they run on a worker thread: everything that touches a
 * router, transport, producer or consumer happens here (see gateway_internal.h). */
#define MF_LOG_MODULE "gateway"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/gateway_internal.h"
#include "node/gateway_observers.h"
#include "proto/cluster.pb-c.h"

/* A pending linger timer of a pipe, on its target worker. */
typedef struct gw_linger {
  uv_timer_t timer;
  mf_gateway_t *gw;
  gw_room_t *room; /* idle shard timers */
  uint32_t worker, gen;
  char producer_id[MF_ID_LEN + 1];
} gw_linger_t;

/* ------------------------------------------------------------ events from routers */

void mf_gw_router_event(void *ud, const char *event, const char *target, json_t *data) {
  mf_gateway_t *gw = ud;
  if (strcmp(event, "pipekeyframerequest") == 0) {
    json_decref(data);
    mf_gw_pipe_keyframe(gw, target);
    return;
  }
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_obj_t *o = mf_hashmap_get(gw->objs, mf_gw_key(target, key));
  mf_api_session_t *s = o ? o->session : NULL;
  gw_kind_t kind = o ? o->kind : GW_TRANSPORT;
  gw_room_t *room = o ? o->room : NULL;
  uint32_t worker = o ? o->worker : 0;
  if (s) mf_api_session_ref(s);
  uv_mutex_unlock(&gw->mu);
  if (!s) {
    json_decref(data);
    /* a pipe consumer feeding another node ends with its producer */
    if (kind == GW_PIPE_OUT && strcmp(event, "producerclose") == 0) mf_gw_index_remove(gw, target);
    return;
  }
  /* DTLS closed or failed: the client's PeerConnection is gone (closed cleanly, or broken), no
   * resume can help; close the transport now (posted: we are inside its own callback). */
  const char *dtls = strcmp(event, "dtlsstatechange") == 0
                         ? json_string_value(json_object_get(data, "dtlsState"))
                         : NULL;
  if (dtls && (strcmp(dtls, "closed") == 0 || strcmp(dtls, "failed") == 0))
    mf_gw_post(gw, room, OP_CLOSE_TRANSPORT, worker, NULL, NULL, NULL, target);
  if (dtls && strcmp(dtls, "failed") == 0)
    mf_gw_report_event(gw, MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_TRANSPORT_FAILED, worker,
                       target, "DTLS failed");
  const char *prefix = kind == GW_TRANSPORT ? "transport" : kind == GW_PRODUCER ? "producer" : "consumer";
  if (kind == GW_DATA_PRODUCER) prefix = "dataProducer"; /* gateway_data.c */
  if (kind == GW_DATA_CONSUMER) prefix = "dataConsumer";
  char name[64];
  /* mediasoup names a transport's end caused by its router closing "routerclose" */
  snprintf(name, sizeof name, "%s.%s", prefix,
           strcmp(event, "transportclose") == 0 ? "routerclose" : event);
  mf_api_session_notify(s, name, target, data ? data : json_object());
  mf_api_session_unref(s);
  if (strcmp(event, "producerclose") == 0 || strcmp(event, "transportclose") == 0 ||
      strcmp(event, "dataproducerclose") == 0)
    mf_gw_index_remove(gw, target);
}

/* ------------------------------------------------------------ helpers */

void mf_gw_index_session_transport(gw_cmd_t *c, mf_router_transport_t *t) {
  const char *id = mf_router_transport_id(t);
  /* index first, then look: a close that collects after our index entry finds it; one
   * that collected before has marked the session ended already (see mf_api_session_ended) */
  mf_gw_index_add_counted(c->gw, id, GW_TRANSPORT, c->room, c->worker, c->session, NULL);
  if (!c->session || !mf_api_session_ended(c->session)) return;
  MF_LOG_INFO("transport %s: its session ended while it was made; closing it", id);
  mf_gw_post(c->gw, c->room, OP_CLOSE_TRANSPORT, c->worker, NULL, NULL, NULL, id);
}

static void gw_fail(gw_cmd_t *c, mf_err_t code, const char *msg) {
  if (c->call) mf_api_call_fail(c->call, code, "%s", msg);
}

/* The room's shard router on this worker, created on first use with the logical id. */
mf_router_t *mf_gw_shard_router(gw_cmd_t *c, mf_worker_t *w, char *err, size_t errsz,
                                    mf_err_t *e) {
  gw_room_t *room = c->room;
  gw_shard_t *shard = &room->shards[c->worker];
  *e = MF_OK;
  if (shard->router) return shard->router;
  char id[MF_ID_LEN + 1];
  uv_mutex_lock(&c->gw->mu);
  memcpy(id, room->router_id, sizeof id);
  uv_mutex_unlock(&c->gw->mu);
  if (!id[0]) {
    snprintf(err, errsz, "room '%s' is not open yet", room->name);
    *e = MF_ERR_STATE;
    return NULL;
  }
  *e = mf_router_create(mf_worker_rtc_server(w), id, room->codecs, room->codec_count,
                        mf_gw_router_event, c->gw, err, errsz, &shard->router);
  if (*e) return NULL;
  mf_router_set_pipe_hub(shard->router, c->gw->hub, c->worker);
  uv_mutex_lock(&c->gw->mu);
  shard->open = true;
  uv_mutex_unlock(&c->gw->mu);
  MF_LOG_INFO("room '%s': shard of router %s opened on worker %u", room->name, id, c->worker);
  return shard->router;
}

static mf_media_kind_t gw_kind_of(const char *s) { return mf_media_kind_parse(s ? s : ""); }

/* ------------------------------------------------------------ API methods */

static void gw_run_produce(gw_cmd_t *c, mf_router_transport_t *t) {
  char err[512];
  const char *kind_s = json_string_value(json_object_get(c->data, "kind"));
  mf_media_kind_t kind = gw_kind_of(kind_s);
  json_t *jparams = json_object_get(c->data, "rtpParameters");
  mf_rtp_parameters_t *params = malloc(sizeof *params);
  if (!params) return gw_fail(c, MF_ERR_NO_MEMORY, "out of memory");
  mf_err_t e = mf_rtp_parameters_from_json(jparams, "rtpParameters", params, err, sizeof err);
  mf_producer_t *p = NULL;
  bool paused = json_is_true(json_object_get(c->data, "paused"));
  if (!e && !mf_gw_limit_take(c, GW_PRODUCER)) e = MF_ERR_LIMIT; /* issue 12 (answered) */
  else if (!e && (e = mf_router_produce(t, kind, params, paused, err, sizeof err, &p)) != MF_OK)
    mf_gw_limit_give(c->gw, c->session, GW_PRODUCER);
  free(params);
  if (e) return gw_fail(c, e, err);
  gw_obj_t *o = mf_gw_index_add_counted(c->gw, mf_producer_id(p), GW_PRODUCER, c->room,
                                        c->worker, c->session, mf_router_transport_id(t));
  if (o) {
    uv_mutex_lock(&c->gw->mu);
    snprintf(o->media_kind, sizeof o->media_kind, "%s", mf_media_kind_str(kind));
    o->rtp_parameters = json_incref(jparams);
    json_t *ad = json_object_get(c->data, "appData");
    o->app_data = json_is_object(ad) ? json_incref(ad) : NULL;
    o->paused = paused;
    uv_mutex_unlock(&c->gw->mu);
  }
  /* The controller records producers of routers it placed (others are local rooms). Told
   * before the answer: a client that closes its session on seeing it must not get the
   * RemoveProducer in ahead of this AddProducer (tests/integration/chaos_leader_api.c). */
  char node_id[65];
  bool announced = false;
  uv_mutex_lock(&c->gw->mu);
  bool placed = c->room->placed_by_controller;
  char router_id[MF_ID_LEN + 1];
  memcpy(router_id, c->room->router_id, sizeof router_id);
  uv_mutex_unlock(&c->gw->mu);
  if (placed && mf_gw_node_id(c->gw, node_id)) {
    char *text = json_dumps(jparams, JSON_COMPACT);
    Mafalda__Controller__Producer pr = MAFALDA__CONTROLLER__PRODUCER__INIT;
    pr.id = (char *)mf_producer_id(p);
    pr.router_id = router_id;
    pr.node_id = node_id;
    pr.worker = c->worker;
    pr.kind = (char *)mf_media_kind_str(kind);
    pr.rtp_parameters.data = (uint8_t *)text;
    pr.rtp_parameters.len = text ? strlen(text) : 0;
    Mafalda__Controller__AddProducer ap = MAFALDA__CONTROLLER__ADD_PRODUCER__INIT;
    ap.producer = &pr;
    Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
    cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PRODUCER;
    cmd.add_producer = &ap;
    /* the other nodes hear of it once the controller has it: their pipes of it are then
     * placed by the controller (controller.PlacePipe knows the producer) */
    announced = mf_gw_record_producer_then_announce(c->gw, &cmd, mf_producer_id(p));
    free(text);
  }
  mf_api_call_reply(c->call, json_pack("{s:s}", "id", mf_producer_id(p)));
  json_t *appdata = json_object_get(c->data, "appData");
  mf_gw_notify_room(c->gw, c->room, c->session, "router.newproducer", mf_producer_id(p),
                    json_pack("{s:s, s:s, s:o}", "id", mf_producer_id(p), "kind",
                              mf_media_kind_str(kind), "appData",
                              appdata ? json_incref(appdata) : json_object()));
  if (!announced) mf_gw_nodes_producer_event(c->gw, mf_producer_id(p), NULL, "produce");
}

static void gw_run_consume(gw_cmd_t *c, mf_router_t *r, mf_router_transport_t *t,
                           bool only_check) {
  char err[512];
  mf_rtp_capabilities_t *caps = malloc(sizeof *caps);
  if (!caps) return gw_fail(c, MF_ERR_NO_MEMORY, "out of memory");
  mf_err_t e = mf_rtp_capabilities_from_json(json_object_get(c->data, "rtpCapabilities"),
                                             "rtpCapabilities", caps, err, sizeof err);
  const char *pid = json_string_value(json_object_get(c->data, "producerId"));
  if (!e && only_check) {
    mf_api_call_reply(c->call, json_pack("{s:b}", "canConsume", mf_router_can_consume(r, pid, caps)));
    free(caps);
    return;
  }
  mf_consumer_t *con = NULL;
  if (!e && !mf_gw_limit_take(c, GW_CONSUMER)) e = MF_ERR_LIMIT; /* issue 12 (answered) */
  else if (!e && (e = mf_router_consume(t, pid, caps,
                                        json_is_true(json_object_get(c->data, "paused")), err,
                                        sizeof err, &con)) != MF_OK)
    mf_gw_limit_give(c->gw, c->session, GW_CONSUMER);
  free(caps);
  if (e) return gw_fail(c, e, err);
  gw_obj_t *o = mf_gw_index_add_counted(c->gw, mf_consumer_id(con), GW_CONSUMER, c->room,
                                        c->worker, c->session, mf_router_transport_id(t));
  if (o) {
    uv_mutex_lock(&c->gw->mu);
    snprintf(o->producer_id, sizeof o->producer_id, "%s", pid);
    uv_mutex_unlock(&c->gw->mu);
    mf_gw_pipe_consumer_added(c->gw, pid, c->worker);
  }
  mf_api_call_reply(c->call, mf_consumer_to_json(con));
}

typedef struct {
  const char *transport_id; /* or NULL: every producer of room on worker */
  gw_room_t *room;
  uint32_t worker;
  mf_api_session_t *sessions[64];
  char ids[64][MF_ID_LEN + 1];
  size_t count;
} gw_closing_t;

static void gw_closing_fn(const void *key, void *value, void *ud) {
  gw_closing_t *c = ud;
  gw_obj_t *o = value;
  if (o->kind != GW_PRODUCER || c->count == 64) return;
  if (c->transport_id ? strcmp(o->transport_id, c->transport_id) != 0
                      : (o->room != c->room || o->worker != c->worker))
    return;
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

static void gw_closing_notify(gw_closing_t *c, const char *reason, bool tell) {
  for (size_t i = 0; i < c->count; i++) {
    if (tell)
      mf_api_session_notify(c->sessions[i], "producer.close", c->ids[i],
                            json_pack("{s:s}", "reason", reason));
    mf_api_session_unref(c->sessions[i]);
  }
}

/* Drops the index entries an mf_gw_collect found (a closed transport's, or a shard's). */
static void gw_drop_index(mf_gateway_t *gw, gw_collect_t *c) {
  mf_gw_collect(gw, c);
  for (size_t i = 0; i < c->count; i++) mf_gw_index_remove(gw, c->ids[i]);
  free(c->ids);
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
    gw_closing_notify(closing, "transportclose", c->call == NULL);
    free(closing);
  }
  gw_collect_t d = {.transport_id = tid};
  gw_drop_index(c->gw, &d);
  mf_gw_index_remove(c->gw, tid);
}

static void gw_run_producer(gw_cmd_t *c, mf_producer_t *p) {
  const char *m = c->method;
  if (strcmp(m, "producer.pause") == 0 || strcmp(m, "producer.resume") == 0) {
    bool pause = strcmp(m, "producer.pause") == 0;
    if (pause)
      mf_producer_pause(p);
    else
      mf_producer_resume(p);
    char key[MF_ID_LEN + 1];
    uv_mutex_lock(&c->gw->mu);
    gw_obj_t *o = mf_hashmap_get(c->gw->objs, mf_gw_key(c->target, key));
    if (o) o->paused = pause;
    uv_mutex_unlock(&c->gw->mu);
    mf_gw_pipe_producer_state(c->gw, c->target, pause ? "pause" : "resume");
    mf_gw_nodes_producer_event(c->gw, c->target, NULL, pause ? "pause" : "resume");
  } else if (strcmp(m, "producer.getStats") == 0) {
    return (void)mf_api_call_reply(c->call, json_pack("{s:o}", "stats", mf_producer_stats_json(p)));
  } else if (strcmp(m, "producer.close") == 0) {
    char id[MF_ID_LEN + 1];
    snprintf(id, sizeof id, "%s", mf_producer_id(p));
    mf_producer_close(p);
    mf_gw_index_remove(c->gw, id);
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
    json_t *sp = json_object_get(c->data, "spatialLayer"), *tp = json_object_get(c->data, "temporalLayer");
    if (!json_is_integer(sp) || (tp && !json_is_null(tp) && !json_is_integer(tp)))
      return (void)mf_api_call_fail(c->call, MF_ERR_INVALID_ARG,
                                    "spatialLayer must be an integer (temporalLayer optional)");
    char err[256];
    mf_err_t e = mf_consumer_set_preferred_layers(
        con, (int)json_integer_value(sp) < 0 ? -1 : (int)json_integer_value(sp),
        json_is_integer(tp) ? (int)json_integer_value(tp) : -1, err, sizeof err);
    if (e) return (void)mf_api_call_fail(c->call, e, "%s", err);
  } else if (strcmp(m, "consumer.getStats") == 0) {
    return (void)mf_api_call_reply(c->call, json_pack("{s:o}", "stats", mf_consumer_stats_json(con)));
  } else if (strcmp(m, "consumer.close") == 0) {
    char id[MF_ID_LEN + 1];
    snprintf(id, sizeof id, "%s", mf_consumer_id(con));
    mf_consumer_close(con);
    mf_gw_index_remove(c->gw, id);
  }
  mf_api_call_reply(c->call, json_object());
}

/* ------------------------------------------------------------ timers */

static void gw_timer_closed(uv_handle_t *h) { free(h->data); }

static void gw_grace_unlink(gw_grace_t *g) {
  for (gw_grace_t **p = &g->room->graces; *p; p = &(*p)->next) {
    if (*p == g) {
      *p = g->next;
      return;
    }
  }
}

static void gw_grace_fired(uv_timer_t *timer) {
  gw_grace_t *g = timer->data;
  mf_gw_grace_over(g->gw, g->room, g->token);
  gw_grace_unlink(g);
  uv_close((uv_handle_t *)&g->timer, gw_timer_closed);
}

static void gw_linger_fired(uv_timer_t *timer) {
  gw_linger_t *l = timer->data;
  mf_gw_pipe_linger_fired(l->gw, l->worker, l->producer_id, l->gen);
  uv_close((uv_handle_t *)&l->timer, gw_timer_closed);
}

static void gw_close_shard(gw_cmd_t *c);

/* A shard without transports for the linger: close it (the room stays; its next
 * transport opens a new shard). */
static void gw_idle_fired(uv_timer_t *timer) {
  gw_linger_t *l = timer->data;
  if (mf_gw_shard_idle_ok(l->gw, l->room, l->worker, l->gen)) {
    gw_cmd_t c = {.gw = l->gw, .room = l->room, .worker = l->worker};
    gw_close_shard(&c);
    mf_gw_shard_closed_idle(l->gw, l->room, l->worker);
  }
  uv_close((uv_handle_t *)&l->timer, gw_timer_closed);
}

/* Stop: pending linger and idle timers on this loop end now (pipes and shards close with
 * the rooms). */
static void gw_linger_walk(uv_handle_t *h, void *arg) {
  if (h->type == UV_TIMER &&
      (((uv_timer_t *)h)->timer_cb == gw_linger_fired ||
       ((uv_timer_t *)h)->timer_cb == gw_idle_fired) &&
      !uv_is_closing(h)) {
    uv_timer_stop((uv_timer_t *)h);
    uv_close(h, gw_timer_closed);
  }
}

/* ------------------------------------------------------------ dispatch */

static void gw_close_shard(gw_cmd_t *c) {
  gw_room_t *room = c->room;
  gw_shard_t *shard = &room->shards[c->worker];
  if (c->flag && c->worker == room->home) {
    /* stopping: pending grace periods end with the room (the gateway drops its orphans) */
    while (room->graces) {
      gw_grace_t *g = room->graces;
      room->graces = g->next;
      uv_timer_stop(&g->timer);
      uv_close((uv_handle_t *)&g->timer, gw_timer_closed);
    }
  }
  mf_gw_node_shard_closed(c->gw, room, c->worker);
  if (shard->router) {
    /* Transports end with transport.routerclose to their owners; the room stays and
     * its next transport opens a new shard. */
    gw_closing_t *closing = calloc(1, sizeof *closing);
    if (closing) {
      closing->room = room;
      closing->worker = c->worker;
      gw_closing_collect(c->gw, closing);
    }
    mf_router_close(shard->router);
    shard->router = NULL;
    if (closing) {
      gw_closing_notify(closing, "routerclose", true);
      free(closing);
    }
    gw_collect_t d = {.room = room, .worker = c->worker};
    gw_drop_index(c->gw, &d);
    uv_mutex_lock(&c->gw->mu);
    shard->open = false;
    uv_mutex_unlock(&c->gw->mu);
  }
  if (c->fanin) mf_gw_fanin_done(c->fanin);
}

static void gw_run_pipe(gw_cmd_t *c, mf_worker_t *w) {
  char err[512];
  mf_err_t e = MF_OK;
  mf_router_t *r = c->op == OP_PIPE_IN ? mf_gw_shard_router(c, w, err, sizeof err, &e)
                                       : c->room->shards[c->worker].router;
  mf_producer_t *p = r ? mf_router_find_producer(r, c->target) : NULL;
  if (c->op == OP_PIPE_IN) {
    mf_rtp_parameters_t *params = r ? malloc(sizeof *params) : NULL;
    if (r && !params) e = MF_ERR_NO_MEMORY;
    if (params) {
      e = mf_rtp_parameters_from_json(c->data, "rtpParameters", params, err, sizeof err);
      if (!e)
        e = mf_router_pipe_produce(r, c->target, gw_kind_of(c->method), params, c->flag,
                                   c->pipe_id, err, sizeof err, &p);
      free(params);
    }
    if (e)
      MF_LOG_ERROR("pipe %u of producer %s into worker %u failed: %s", c->pipe_id, c->target,
                   c->worker, err);
    else
      MF_LOG_INFO("pipe %u: producer %s piped into worker %u from worker %u", c->pipe_id,
                  c->target, c->worker, c->peer);
  } else if (!p) {
    MF_LOG_DEBUG("pipe command for producer %s on worker %u: producer gone", c->target, c->worker);
  } else if (c->op == OP_PIPE_OUT) {
    e = mf_producer_add_pipe(p, c->peer, c->pipe_id);
    if (e) MF_LOG_ERROR("pipe %u of producer %s from worker %u: %s", c->pipe_id, c->target,
                        c->worker, mf_strerror(e));
  } else if (c->op == OP_PIPE_UNLINK) {
    mf_producer_remove_pipe(p, c->pipe_id);
  } else if (c->op == OP_PIPE_STATE && mf_producer_is_piped(p)) {
    if (strcmp(c->method, "pause") == 0) mf_producer_pause(p);
    else if (strcmp(c->method, "resume") == 0) mf_producer_resume(p);
    else if (strcmp(c->method, "close") == 0) mf_producer_close(p);
  } else if (c->op == OP_KEYFRAME && !mf_producer_is_piped(p)) {
    mf_router_producer_request_keyframe(p);
  }
}

static void gw_run_hub(gw_cmd_t *c, mf_worker_t *w) {
  if (c->op == OP_HUB_ATTACH) {
    mf_err_t e = mf_pipe_hub_attach(c->gw->hub, c->worker, mf_worker_loop(w));
    if (e) MF_LOG_ERROR("worker %u: pipe hub attach failed: %s", c->worker, mf_strerror(e));
  } else if (c->op == OP_HUB_QUIESCE) {
    uv_walk(mf_worker_loop(w), gw_linger_walk, NULL);
    if (c->gw->hub) mf_pipe_hub_quiesce(c->gw->hub, c->worker);
    mf_gw_observers_quiesce(c->gw, c->worker); /* its level timer ends */
  } else {
    mf_pipe_hub_detach(c->gw->hub, c->worker);
  }
}

void mf_gateway_on_command(mf_mailbox_msg_t *msg, void *owner) {
  gw_cmd_t *c = MF_CONTAINER_OF(msg, gw_cmd_t, link);
  mf_worker_t *w = owner;
  char err[256];
  mf_err_t e = MF_OK;
  switch (c->op) {
    case OP_HUB_ATTACH:
    case OP_HUB_QUIESCE:
    case OP_HUB_DETACH:
      gw_run_hub(c, w);
      break;
    case OP_OPEN_SHARD:
      mf_gw_shard_router(c, w, c->err, c->errsz, c->result);
      break;
    case OP_CLOSE_SHARD:
      gw_close_shard(c);
      break;
    case OP_GRACE: {
      gw_grace_t *g = calloc(1, sizeof *g);
      if (!g) break;
      g->gw = c->gw;
      g->room = c->room;
      memcpy(g->token, c->target, sizeof g->token);
      uv_timer_init(mf_worker_loop(w), &g->timer);
      g->timer.data = g;
      g->next = c->room->graces;
      c->room->graces = g;
      uv_timer_start(&g->timer, gw_grace_fired, c->gw->grace_ms, 0);
      break;
    }
    case OP_PIPE_LINGER: {
      gw_linger_t *l = calloc(1, sizeof *l);
      if (!l) break;
      l->gw = c->gw;
      l->worker = c->worker;
      l->gen = c->gen;
      memcpy(l->producer_id, c->target, sizeof l->producer_id);
      uv_timer_init(mf_worker_loop(w), &l->timer);
      l->timer.data = l;
      uv_timer_start(&l->timer, gw_linger_fired, c->gw->linger_ms, 0);
      break;
    }
    case OP_AUDIO_LEVEL:
      mf_gw_observers_run(c, w);
      break;
    case OP_SHARD_IDLE: {
      gw_linger_t *l = calloc(1, sizeof *l);
      if (!l) break;
      l->gw = c->gw;
      l->room = c->room;
      l->worker = c->worker;
      l->gen = c->gen;
      uv_timer_init(mf_worker_loop(w), &l->timer);
      l->timer.data = l;
      uv_timer_start(&l->timer, gw_idle_fired, c->gw->linger_ms, 0);
      break;
    }
    case OP_NODE_PIPE_OPEN:
    case OP_NODE_PIPE_PRODUCE:
    case OP_NODE_PIPE_SERVE:
    case OP_NODE_PIPE_UNSERVE:
    case OP_NODE_LINKS_DROP:
      mf_gw_run_node_cmd(c, w);
      break;
    case OP_PIPE_IN:
    case OP_PIPE_OUT:
    case OP_PIPE_UNLINK:
    case OP_PIPE_STATE:
    case OP_KEYFRAME:
      gw_run_pipe(c, w);
      break;
    case OP_CREATE_PLAIN_TRANSPORT:
      mf_gw_run_create_plain(c, w);
      break;
    case OP_CREATE_TRANSPORT: {
      if (!mf_gw_limit_take(c, GW_TRANSPORT)) break; /* issue 12: refused (answered) */
      mf_router_t *r = mf_gw_shard_router(c, w, err, sizeof err, &e);
      mf_router_transport_t *t = NULL;
      if (r) e = mf_router_create_webrtc_transport(r, &t);
      if (e || !mf_gw_data_transport_created(c, t)) { /* enableSctp refused: answered */
        mf_gw_limit_give(c->gw, c->session, GW_TRANSPORT);
        if (e) gw_fail(c, e, r ? "cannot create the transport" : err);
        break;
      }
      mf_gw_index_session_transport(c, t);
      mf_api_call_reply(c->call, mf_webrtc_transport_parameters_json(mf_router_transport_webrtc(t)));
      break;
    }
    case OP_PRODUCE_DATA:
    case OP_CONSUME_DATA:
    case OP_DATA_PRODUCER:
    case OP_DATA_CONSUMER:
      mf_gw_run_data_cmd(c, w); /* gateway_data.c */
      break;
    default: {
      mf_router_t *r = c->room->shards[c->worker].router;
      if (!r) {
        gw_fail(c, MF_ERR_NOT_FOUND, "the room has no router on this worker (closed)");
      } else if (c->op == OP_PRODUCER || c->op == OP_CONSUMER) {
        void *obj = c->op == OP_PRODUCER ? (void *)mf_router_find_producer(r, c->target)
                                         : (void *)mf_router_find_consumer(r, c->target);
        if (!obj)
          gw_fail(c, MF_ERR_NOT_FOUND, "no such object");
        else if (c->op == OP_PRODUCER)
          gw_run_producer(c, obj);
        else
          gw_run_consumer(c, obj);
      } else if (c->op == OP_CAN_CONSUME) {
        gw_run_consume(c, r, NULL, true);
      } else {
        mf_router_transport_t *t = mf_router_find_transport(r, c->target);
        if (!t) {
          gw_fail(c, MF_ERR_NOT_FOUND, "transport not found");
        } else if (c->op == OP_CONNECT) {
          mf_plain_transport_t *plain = mf_plain_transport_of(mf_router_transport_webrtc(t));
          e = plain ? mf_plain_transport_connect_json(plain, c->data, err, sizeof err) :
          mf_webrtc_transport_connect_json(mf_router_transport_webrtc(t),
                                               json_object_get(c->data, "dtlsParameters"), err,
                                               sizeof err);
          if (e)
            gw_fail(c, e, err);
          else
            mf_api_call_reply(c->call, json_object());
        } else if (c->op == OP_PRODUCE) {
          gw_run_produce(c, t);
        } else if (c->op == OP_CONSUME) {
          gw_run_consume(c, r, t, false);
        } else if (c->op == OP_CLOSE_TRANSPORT) {
          gw_close_transport(c, t);
          if (c->call) mf_api_call_reply(c->call, json_object());
        }
      }
      break;
    }
  }
  if (c->pipe) mf_gw_pipe_release(c->gw, c->pipe); /* the pipe may linger again */
  if (c->done) uv_sem_post(c->done);
  mf_gw_cmd_free(c);
}
