/* The gateway's DataChannel methods (issue 11): transport.produceData / consumeData,
 * dataProducer.* / dataConsumer.*, router.listDataProducers, and enableSctp at transport
 * creation. API handlers run on nng's threads and post to the worker owning the
 * transport; the OP_*_DATA commands run there (data_router.h).
 *
 * Across workers of this node (a room spread over shards): consumeData on worker B of a
 * data producer on worker A first asks A to relay (OP_DATA_PRODUCER "_relay_open": A
 * marks B as a relay target and hands the producer's description on), then B makes a relay
 * copy (same id) if it has none and consumes it. Each message of the producer then crosses
 * to B as one command through B's mailbox (OP_DATA_PRODUCER "_relay": a copy per target
 * worker per message, acceptable at DataChannel rates); its close crosses the same way
 * ("_relay_close") and closes the copy, whose consumers get dataproducerclose. A copy stays
 * until its origin closes (or B's shard does). Data producers of other nodes: not done. */
#define MF_LOG_MODULE "gateway"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/data_router.h"
#include "node/gateway_internal.h"

static void gw_data_post(mf_gateway_t *gw, gw_room_t *room, gw_op_t op, uint32_t worker,
                         mf_api_call_t *call, const mf_api_request_t *req, const char *target) {
  gw_cmd_t *c = mf_gw_cmd(gw, room, op, worker, call, mf_api_call_session(call), req->data, target);
  if (!c) return;
  if (strlen(req->method) < sizeof c->method) memcpy(c->method, req->method, strlen(req->method) + 1);
  mf_gw_send(c);
}

void mf_gw_produce_data(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  const char *id;
  uint32_t worker = 0;
  gw_room_t *room = mf_gw_owned(ctx, call, req, "transportId", GW_TRANSPORT, false, &id, &worker);
  if (room) gw_data_post(ctx, room, OP_PRODUCE_DATA, worker, call, req, id);
}

void mf_gw_consume_data(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  mf_gateway_t *gw = ctx;
  const char *id;
  uint32_t worker = 0;
  gw_room_t *room = mf_gw_owned(gw, call, req, "transportId", GW_TRANSPORT, false, &id, &worker);
  if (!room) return;
  const char *dpid = json_string_value(json_object_get(req->data, "dataProducerId"));
  if (!dpid || !mf_id_is_valid(dpid))
    return (void)mf_api_call_fail(call, MF_ERR_INVALID_ARG,
                                  "data.dataProducerId must be an id (UUIDv4 string)");
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_obj_t *o = mf_hashmap_get(gw->objs, mf_gw_key(dpid, key));
  bool found = o && o->kind == GW_DATA_PRODUCER && o->room == room;
  uint32_t origin = found ? o->worker : 0;
  uv_mutex_unlock(&gw->mu);
  if (!found)
    return (void)mf_api_call_fail(call, MF_ERR_NOT_FOUND, "data producer %s not found in this room",
                                  dpid);
  if (origin == worker) return gw_data_post(gw, room, OP_CONSUME_DATA, worker, call, req, id);
  /* another worker: its origin relays (see the top) */
  gw_cmd_t *c = mf_gw_cmd(gw, room, OP_DATA_PRODUCER, origin, call, mf_api_call_session(call),
                          req->data, dpid);
  if (!c) return;
  snprintf(c->method, sizeof c->method, "_relay_open");
  c->peer = worker;
  mf_gw_send(c);
}

void mf_gw_data_producer_op(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  const char *id;
  uint32_t worker = 0;
  gw_room_t *room = mf_gw_owned(ctx, call, req, "dataProducerId", GW_DATA_PRODUCER, false, &id, &worker);
  if (room) gw_data_post(ctx, room, OP_DATA_PRODUCER, worker, call, req, id);
}

void mf_gw_data_consumer_op(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  const char *id;
  uint32_t worker = 0;
  gw_room_t *room = mf_gw_owned(ctx, call, req, "dataConsumerId", GW_DATA_CONSUMER, false, &id, &worker);
  if (room) gw_data_post(ctx, room, OP_DATA_CONSUMER, worker, call, req, id);
}

typedef struct {
  gw_room_t *room;
  json_t *list;
} gw_data_list_t;

static void gw_data_list_fn(const void *key, void *value, void *ud) {
  (void)key;
  gw_data_list_t *l = ud;
  gw_obj_t *o = value;
  if (o->kind == GW_DATA_PRODUCER && o->room == l->room && o->app_data)
    json_array_append(l->list, o->app_data); /* the producer's description (see below) */
}

void mf_gw_list_data_producers(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  (void)req;
  mf_gateway_t *gw = ctx;
  gw_session_t *gs = mf_api_session_get_user(mf_api_call_session(call));
  if (!gs) return (void)mf_api_call_fail(call, MF_ERR_STATE, "call router.join first");
  gw_data_list_t l = {.room = gs->room, .list = json_array()};
  uv_mutex_lock(&gw->mu);
  mf_hashmap_foreach(gw->objs, gw_data_list_fn, &l);
  uv_mutex_unlock(&gw->mu);
  mf_api_call_reply(call, json_pack("{s:o}", "dataProducers", l.list));
}

/* ------------------------------------------------------------ on the worker */

static void gw_data_fail(gw_cmd_t *c, mf_err_t e, const char *msg) {
  if (c->call) mf_api_call_fail(c->call, e, "%s", msg);
}

bool mf_gw_data_transport_created(gw_cmd_t *c, mf_router_transport_t *t) {
  char err[256];
  bool enabled = false;
  mf_sctp_options_t o;
  mf_err_t e = c->data ? mf_sctp_options_from_json(c->data, &enabled, &o, err, sizeof err) : MF_OK;
  if (!e && enabled) {
    e = mf_router_transport_enable_sctp(t, &o);
    if (e) snprintf(err, sizeof err, "cannot enable SCTP: %s", mf_strerror(e));
  }
  if (!e) return true;
  mf_router_transport_close(t);
  gw_data_fail(c, e, err);
  return false;
}

/* ---- relays between workers ---- */

typedef struct {
  mf_gateway_t *gw;
  gw_room_t *room;
} gw_data_relay_ctx_t;

/* On the origin's worker (inside the data producer's message or close). */
static void gw_data_relay(void *ud, const char *dpid, uint64_t workers, uint32_t ppid,
                          const uint8_t *data, size_t len, bool closed) {
  gw_data_relay_ctx_t *x = ud;
  for (uint32_t w = 0; w < 64 && w < x->gw->worker_count; w++) {
    if (!(workers & ((uint64_t)1 << w))) continue;
    /* the message rides in the command's JSON (any bytes: a no-check string), so a
     * command the mailbox refuses (shutdown) frees it too */
    json_t *msg = closed ? NULL
                         : json_pack("{s:I, s:o}", "ppid", (json_int_t)ppid, "data",
                                     json_stringn_nocheck((const char *)data, len));
    if (!closed && !msg) continue;
    gw_cmd_t *c = mf_gw_cmd(x->gw, x->room, OP_DATA_PRODUCER, w, NULL, NULL, msg, dpid);
    json_decref(msg);
    if (!c) continue;
    snprintf(c->method, sizeof c->method, "%s", closed ? "_relay_close" : "_relay");
    mf_gw_send(c);
  }
}

static void gw_data_relay_setup(gw_cmd_t *c, mf_router_t *r) {
  if (mf_router_has_data_relay(r)) return;
  gw_data_relay_ctx_t *x = calloc(1, sizeof *x);
  if (!x) return;
  x->gw = c->gw;
  x->room = c->room;
  mf_router_set_data_relay(r, gw_data_relay, x, free);
}

/* On the origin's worker: B (c->peer) relays from now on; the consume continues on B with
 * the producer's description in data.relayOf. */
static void gw_data_relay_open(gw_cmd_t *c, mf_data_producer_t *p) {
  mf_err_t e = mf_data_producer_add_relay(p, c->peer);
  if (e) return gw_data_fail(c, MF_ERR_UNSUPPORTED, "cannot relay to that worker (at most 64)");
  json_t *data = json_deep_copy(c->data);
  if (!data) return gw_data_fail(c, MF_ERR_NO_MEMORY, "out of memory");
  json_object_set_new(data, "relayOf", mf_data_producer_to_json(p));
  const char *tid = json_string_value(json_object_get(c->data, "transportId"));
  gw_cmd_t *next = mf_gw_cmd(c->gw, c->room, OP_CONSUME_DATA, c->peer, c->call, c->session, data, tid);
  json_decref(data);
  c->call = NULL; /* answered by `next` now (or failed by mf_gw_cmd / mf_gw_send) */
  if (next) mf_gw_send(next);
}

static void gw_run_produce_data(gw_cmd_t *c, mf_router_t *r, mf_router_transport_t *t) {
  char err[256];
  mf_data_producer_t *p = NULL;
  gw_data_relay_setup(c, r);
  if (!mf_gw_limit_take(c, GW_DATA_PRODUCER)) return; /* issue 12: refused (answered) */
  mf_err_t e = mf_router_produce_data(t, c->data, err, sizeof err, &p);
  if (e) mf_gw_limit_give(c->gw, c->session, GW_DATA_PRODUCER);
  if (e) return gw_data_fail(c, e, err);
  json_t *desc = mf_data_producer_to_json(p);
  gw_obj_t *o = mf_gw_index_add_counted(c->gw, mf_data_producer_id(p), GW_DATA_PRODUCER,
                                        c->room, c->worker, c->session,
                                        mf_router_transport_id(t));
  if (o) {
    uv_mutex_lock(&c->gw->mu);
    o->app_data = json_incref(desc); /* listed by router.listDataProducers */
    uv_mutex_unlock(&c->gw->mu);
  }
  mf_api_call_reply(c->call, json_pack("{s:s}", "id", mf_data_producer_id(p)));
  mf_gw_notify_room(c->gw, c->room, c->session, "router.newdataproducer", mf_data_producer_id(p),
                    desc);
}

static void gw_run_consume_data(gw_cmd_t *c, mf_router_t *r, mf_router_transport_t *t) {
  char err[256];
  const char *dpid = json_string_value(json_object_get(c->data, "dataProducerId"));
  const json_t *relay_of = json_object_get(c->data, "relayOf");
  mf_data_consumer_t *dc = NULL;
  mf_data_producer_t *copy = NULL;
  if (!mf_gw_limit_take(c, GW_DATA_CONSUMER)) return; /* issue 12: refused (answered) */
  if (relay_of && !mf_router_find_data_producer(r, dpid)) {
    mf_err_t ce = mf_router_relay_data_producer(r, relay_of, err, sizeof err, &copy);
    if (ce) mf_gw_limit_give(c->gw, c->session, GW_DATA_CONSUMER);
    if (ce) return gw_data_fail(c, ce, err);
  }
  mf_err_t e = mf_router_consume_data(t, dpid, err, sizeof err, &dc);
  if (e) mf_gw_limit_give(c->gw, c->session, GW_DATA_CONSUMER);
  if (e) return gw_data_fail(c, e, err);
  gw_obj_t *o = mf_gw_index_add_counted(c->gw, mf_data_consumer_id(dc), GW_DATA_CONSUMER,
                                        c->room, c->worker, c->session,
                                        mf_router_transport_id(t));
  if (o) {
    uv_mutex_lock(&c->gw->mu);
    snprintf(o->producer_id, sizeof o->producer_id, "%s", dpid);
    uv_mutex_unlock(&c->gw->mu);
  }
  mf_api_call_reply(c->call, mf_data_consumer_to_json(dc));
}

void mf_gw_run_data_cmd(gw_cmd_t *c, mf_worker_t *w) {
  (void)w;
  mf_router_t *r = c->room->shards[c->worker].router;
  if (!r) return gw_data_fail(c, MF_ERR_NOT_FOUND, "the room has no router on this worker (closed)");
  if (c->op == OP_PRODUCE_DATA || c->op == OP_CONSUME_DATA) {
    mf_router_transport_t *t = mf_router_find_transport(r, c->target);
    if (!t) return gw_data_fail(c, MF_ERR_NOT_FOUND, "transport not found");
    if (c->op == OP_PRODUCE_DATA) return gw_run_produce_data(c, r, t);
    return gw_run_consume_data(c, r, t);
  }
  const char *m = c->method;
  char id[MF_ID_LEN + 1];
  snprintf(id, sizeof id, "%s", c->target);
  if (c->op == OP_DATA_PRODUCER) {
    mf_data_producer_t *p = mf_router_find_data_producer(r, c->target);
    if (strcmp(m, "_relay") == 0) { /* a message from the origin's worker */
      const json_t *d = json_object_get(c->data, "data");
      if (p && mf_data_producer_is_relay(p) && json_is_string(d))
        mf_data_producer_deliver(p, (uint32_t)json_integer_value(json_object_get(c->data, "ppid")),
                                 (const uint8_t *)json_string_value(d), json_string_length(d));
      return;
    }
    if (strcmp(m, "_relay_close") == 0) {
      if (p && mf_data_producer_is_relay(p)) mf_data_producer_close(p);
      return;
    }
    if (!p) return gw_data_fail(c, MF_ERR_NOT_FOUND, "no such data producer");
    if (strcmp(m, "_relay_open") == 0) return gw_data_relay_open(c, p);
    if (strcmp(m, "dataProducer.getStats") == 0)
      return (void)mf_api_call_reply(c->call, json_pack("{s:o}", "stats", mf_data_producer_stats_json(p)));
    if (strcmp(m, "dataProducer.close") == 0) {
      mf_data_producer_close(p); /* its consumers get dataproducerclose */
      mf_gw_index_remove(c->gw, id);
    }
  } else {
    mf_data_consumer_t *dc = mf_router_find_data_consumer(r, c->target);
    if (!dc) return gw_data_fail(c, MF_ERR_NOT_FOUND, "no such data consumer");
    if (strcmp(m, "dataConsumer.getStats") == 0)
      return (void)mf_api_call_reply(c->call, json_pack("{s:o}", "stats", mf_data_consumer_stats_json(dc)));
    if (strcmp(m, "dataConsumer.close") == 0) {
      mf_data_consumer_close(dc);
      mf_gw_index_remove(c->gw, id);
    }
  }
  mf_api_call_reply(c->call, json_object());
}
