/* API calls of this node's clients on other nodes' workers, and the other direction.
 *
 * The controller may place a client's transport on another node (its workers have the
 * headroom, or already host the room). The client stays connected to its node, the FRONT;
 * the transport lives on the SERVING node, whose ICE candidates the client gets, so media
 * flows straight to it. The front forwards every call about that transport and about the
 * producers and consumers made on it (node.ApiForward), and the serving node runs them in a
 * virtual API session of its own: one per (client session, serving node), the LINK. What
 * that session sends (replies and notifications) goes back to the front in order
 * (node.ApiDeliver, one batch in flight per link, from one sender thread) and the front
 * answers its client. The serving node's room-wide notifications (router.newproducer...)
 * are not delivered: the front sends its own, for the whole room.
 *
 * Front side: links and the objects they hold are in this file's tables; a forwarded
 * transport is also in the gateway's index (worker GW_NO_WORKER) so its session is a member
 * of the room. The client's producers are known to the room like any other node's (the
 * serving node announces them with node.RoomEvent, naming the link so the front does not
 * announce a producer to its own owner). When the client session ends (after its grace) the
 * front ends the link (node.ApiForwardEnd) and the serving node closes its objects at once.
 * A resumed session takes its links over. A lost node: the front's links to it report
 * their transports closed (transport.routerclose, reason "nodelost"); the serving node ends
 * the links of a lost front.
 *
 * Threads: front calls run on nng's threads, deliveries and serving on libuv's pool (node
 * RPC), the sender on its own thread. fw->mu guards every table here; it is never held
 * while calling into the API server, the gateway's mutex or the agent. */
#define MF_LOG_MODULE "gateway"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hashmap.h"
#include "common/id.h"
#include "common/log.h"
#include "node/gateway_internal.h"
#include "proto/cluster.pb-c.h"

#define NODE_API_FORWARD "node.ApiForward"
#define NODE_API_DELIVER "node.ApiDeliver"
#define NODE_API_FORWARD_END "node.ApiForwardEnd"

typedef struct fwd_pending {
  struct fwd_pending *next;
  int64_t id;
  mf_api_call_t *call;
  char method[MF_API_METHOD_MAX + 1];
  char transport_id[MF_ID_LEN + 1]; /* produce / consume: the transport they are made on */
  char closes[MF_ID_LEN + 1];       /* producer.close / consumer.close: the object */
} fwd_pending_t;

/* Front side: one client session's objects on one other node. */
typedef struct {
  char id[MF_ID_LEN + 1];
  char node_id[65];
  char rpc[96];
  gw_room_t *room;
  mf_api_session_t *session; /* referenced; a resuming session takes it over */
  int64_t next_req;
  fwd_pending_t *pending;
} fwd_link_t;

/* Front side: an object a link holds. */
typedef struct {
  char link[MF_ID_LEN + 1];
  gw_kind_t kind;
  char transport_id[MF_ID_LEN + 1]; /* producers and consumers: their transport */
} fwd_obj_t;

/* ------------------------------------------------------------ lifetime */

mf_err_t mf_gw_forward_create(mf_gateway_t *gw, gw_forward_t **out) {
  gw_forward_t *fw = calloc(1, sizeof *fw);
  if (!fw) return MF_ERR_NO_MEMORY;
  fw->gw = gw;
  mf_err_t e = mf_hashmap_create(MF_ID_LEN + 1, 16, &fw->links);
  if (!e) e = mf_hashmap_create(MF_ID_LEN + 1, 16, &fw->objs);
  if (!e) e = mf_hashmap_create(MF_ID_LEN + 1, 16, &fw->ins);
  if (e) {
    mf_hashmap_destroy(fw->links);
    mf_hashmap_destroy(fw->objs);
    mf_hashmap_destroy(fw->ins);
    free(fw);
    return e;
  }
  uv_mutex_init(&fw->mu);
  uv_cond_init(&fw->cv);
  *out = fw;
  return MF_OK;
}

static void fwd_fail_pending(fwd_pending_t *p, mf_err_t code, const char *why) {
  while (p) {
    fwd_pending_t *next = p->next;
    mf_api_call_fail(p->call, code, "%s", why);
    free(p);
    p = next;
  }
}

static void fwd_free_value(const void *key, void *value, void *ud) {
  (void)key;
  (void)ud;
  free(value);
}

/* Links are taken out of the map in batches (a map cannot be changed while it is walked);
 * callers repeat until a batch comes back short. */
#define FWD_PICK_BATCH 1024

typedef struct {
  fwd_link_t *items[FWD_PICK_BATCH];
  size_t n;
  const char *node_id;         /* filter: links to this node */
  const mf_api_session_t *session; /* filter: links of this session */
  bool all;
} fwd_pick_t;

static void fwd_pick_fn(const void *key, void *value, void *ud) {
  (void)key;
  fwd_pick_t *p = ud;
  fwd_link_t *l = value;
  if (p->n == FWD_PICK_BATCH) return;
  if (p->all || (p->node_id && strcmp(l->node_id, p->node_id) == 0) ||
      (p->session && l->session == p->session))
    p->items[p->n++] = l;
}

static void fwd_drop(mf_gateway_t *gw, const char *link_id, const char *transport_id,
                     mf_api_session_t *tell, const char *node_id);

void mf_gw_forward_stop(gw_forward_t *fw) {
  if (!fw) return;
  uv_mutex_lock(&fw->mu);
  fw->stopping = true;
  uv_cond_broadcast(&fw->cv);
  bool started = fw->sender_started;
  uv_mutex_unlock(&fw->mu);
  if (started) uv_thread_join(&fw->sender);
  mf_gw_forward_in_stop(fw); /* the links served here end before the API server goes */
  /* Front side: calls still waiting for another node are answered now. */
  for (;;) {
    fwd_pick_t *p = calloc(1, sizeof *p);
    if (!p) break;
    p->all = true;
    uv_mutex_lock(&fw->mu);
    mf_hashmap_foreach(fw->links, fwd_pick_fn, p);
    for (size_t i = 0; i < p->n; i++) mf_hashmap_remove(fw->links, p->items[i]->id);
    uv_mutex_unlock(&fw->mu);
    size_t n = p->n;
    for (size_t i = 0; i < n; i++) {
      fwd_fail_pending(p->items[i]->pending, MF_ERR_CLOSED, "the node is shutting down");
      /* out of the index too: its entries hold sessions the API server waits for */
      fwd_drop(fw->gw, p->items[i]->id, NULL, NULL, NULL);
      mf_api_session_unref(p->items[i]->session);
      free(p->items[i]);
    }
    free(p);
    if (n < FWD_PICK_BATCH) break;
  }
}

void mf_gw_forward_destroy(gw_forward_t *fw) {
  if (!fw) return;
  mf_hashmap_foreach(fw->objs, fwd_free_value, NULL);
  mf_hashmap_destroy(fw->objs);
  mf_hashmap_destroy(fw->links);
  mf_hashmap_destroy(fw->ins);
  uv_cond_destroy(&fw->cv);
  uv_mutex_destroy(&fw->mu);
  free(fw);
}

/* ------------------------------------------------------------ front: sending calls */

typedef struct {
  mf_gateway_t *gw;
  char link[MF_ID_LEN + 1];
  int64_t req;
} fwd_sent_t;

/* Takes the pending call req of link out of the table (NULL when answered already). */
static fwd_pending_t *fwd_take_pending(gw_forward_t *fw, const char *link_id, int64_t req,
                                       fwd_link_t **link_out) {
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&fw->mu);
  fwd_link_t *l = mf_hashmap_get(fw->links, mf_gw_key(link_id, key));
  fwd_pending_t *found = NULL;
  for (fwd_pending_t **pp = l ? &l->pending : NULL; pp && *pp; pp = &(*pp)->next) {
    if ((*pp)->id != req) continue;
    found = *pp;
    *pp = found->next;
    break;
  }
  if (link_out) *link_out = l;
  uv_mutex_unlock(&fw->mu);
  return found;
}

/* node.ApiForward answered: a refusal fails the call now (the serving node ran nothing). */
static void fwd_sent(void *ud, mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  fwd_sent_t *s = ud;
  if (!env || env->status != MAFALDA__RPC__STATUS__STATUS_OK) {
    fwd_pending_t *p = fwd_take_pending(s->gw->fwd, s->link, s->req, NULL);
    if (p) {
      MF_LOG_WARN("forwarded %s failed: %s", p->method, mf_gw_env_error(err, env));
      mf_api_call_fail(p->call, env ? MF_ERR_STATE : MF_ERR_CLOSED,
                       "the node holding this object did not take the call: %s",
                       mf_gw_env_error(err, env));
      free(p);
    }
  }
  free(s);
}

/* The producer as this node knows it (local or another node's), for the serving node to
 * consume it even before the room told it (mu held). texts: malloc'd, the caller frees. */
static bool fwd_describe_locked(mf_gateway_t *gw, const char *pid, const gw_self_t *me,
                                Mafalda__Cluster__RemoteProducer *rp, char addr[GW_ADDR_MAX],
                                char *texts[2]) {
  char key[MF_ID_LEN + 1];
  gw_obj_t *o = pid ? mf_hashmap_get(gw->objs, mf_gw_key(pid, key)) : NULL;
  if (!o) return false;
  if (o->kind == GW_PRODUCER && o->worker < gw->worker_count) {
    mf_gw_describe_locked(gw, o, me, rp, addr, texts);
    return true;
  }
  if (o->kind != GW_REMOTE_PRODUCER) return false;
  Mafalda__Cluster__RemoteProducer init = MAFALDA__CLUSTER__REMOTE_PRODUCER__INIT;
  *rp = init;
  texts[0] = o->rtp_parameters ? json_dumps(o->rtp_parameters, JSON_COMPACT) : NULL;
  texts[1] = o->app_data ? json_dumps(o->app_data, JSON_COMPACT) : NULL;
  snprintf(addr, GW_ADDR_MAX, "%s", o->rtc_address);
  rp->producer_id = o->id;
  rp->kind = o->media_kind;
  rp->rtp_parameters_json = texts[0] ? texts[0] : "";
  rp->app_data_json = texts[1] ? texts[1] : "";
  rp->paused = o->paused;
  rp->node_id = o->node_id;
  rp->rtc_address = addr;
  return true;
}

/* Sends req (the client's call) over link l (fw->mu NOT held); answers the call on failure. */
static void fwd_send(mf_gateway_t *gw, const char *link_id, mf_api_call_t *call,
                     const char *method, json_t *data, bool pinned, uint32_t worker) {
  gw_forward_t *fw = gw->fwd;
  gw_self_t me;
  if (!mf_gw_self(gw, &me))
    return (void)mf_api_call_fail(call, MF_ERR_STATE, "this node left the cluster");
  fwd_pending_t *p = calloc(1, sizeof *p);
  fwd_sent_t *s = calloc(1, sizeof *s);
  if (!p || !s) {
    free(p);
    free(s);
    return (void)mf_api_call_fail(call, MF_ERR_NO_MEMORY, "out of memory");
  }
  p->call = call;
  snprintf(p->method, sizeof p->method, "%s", method);
  const char *tid = json_string_value(json_object_get(data, "transportId"));
  snprintf(p->transport_id, sizeof p->transport_id, "%s", tid ? tid : "");
  if (strcmp(method, "producer.close") == 0 || strcmp(method, "consumer.close") == 0) {
    const char *oid = json_string_value(
        json_object_get(data, method[0] == 'p' ? "producerId" : "consumerId"));
    snprintf(p->closes, sizeof p->closes, "%s", oid ? oid : "");
  }
  char key[MF_ID_LEN + 1], rpc[96], room[GW_ROOM_MAX + 1];
  uv_mutex_lock(&fw->mu);
  fwd_link_t *l = mf_hashmap_get(fw->links, mf_gw_key(link_id, key));
  if (l) {
    p->id = ++l->next_req;
    p->next = l->pending;
    l->pending = p;
    memcpy(rpc, l->rpc, sizeof rpc);
    snprintf(room, sizeof room, "%s", l->room->name);
  }
  uv_mutex_unlock(&fw->mu);
  if (!l) {
    free(p);
    free(s);
    return (void)mf_api_call_fail(call, MF_ERR_NOT_FOUND, "the object's node is gone");
  }
  json_t *msg = json_pack("{s:I, s:s, s:o}", "id", (json_int_t)p->id, "method", method, "data",
                          data ? json_incref(data) : json_object());
  char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
  json_decref(msg);
  Mafalda__Cluster__ApiForwardRequest q = MAFALDA__CLUSTER__API_FORWARD_REQUEST__INIT;
  q.forward_id = (char *)link_id;
  q.node_id = me.node_id;
  q.rpc_address = me.rpc;
  q.room = room;
  q.request_json = text;
  q.pinned = pinned;
  q.worker = worker;
  Mafalda__Cluster__RemoteProducer rp;
  char addr[GW_ADDR_MAX], *texts[2] = {NULL, NULL};
  if (strcmp(method, "transport.consume") == 0) {
    const char *pid = json_string_value(json_object_get(data, "producerId"));
    uv_mutex_lock(&gw->mu);
    if (fwd_describe_locked(gw, pid, &me, &rp, addr, texts)) q.producer = &rp;
    uv_mutex_unlock(&gw->mu);
  }
  s->gw = gw;
  memcpy(s->link, key, sizeof s->link);
  s->req = p->id;
  int64_t req_id = p->id;
  mf_err_t e = text ? mf_gw_call_node(gw, rpc, NODE_API_FORWARD, &q.base, fwd_sent, s)
                    : MF_ERR_NO_MEMORY;
  free(text);
  free(texts[0]);
  free(texts[1]);
  if (e == MF_OK) return;
  free(s);
  fwd_pending_t *mine = fwd_take_pending(fw, link_id, req_id, NULL);
  if (mine) {
    mf_api_call_fail(mine->call, e, "cannot reach the node holding this object: %s",
                     mf_strerror(e));
    free(mine);
  }
}

typedef struct {
  const mf_api_session_t *session;
  const char *node_id;
  char *link_id; /* out: MF_ID_LEN + 1 bytes */
} fwd_find_t;

static void fwd_find_fn(const void *key, void *value, void *ud) {
  (void)key;
  fwd_find_t *f = ud;
  const fwd_link_t *l = value;
  if (l->session == f->session && strcmp(l->node_id, f->node_id) == 0)
    memcpy(f->link_id, l->id, MF_ID_LEN + 1);
}

void mf_gw_forward_place(mf_gateway_t *gw, gw_room_t *room, mf_api_call_t *call,
                         mf_api_session_t *s, json_t *data, const char *node_id,
                         const char *rpc, uint32_t worker) {
  gw_forward_t *fw = gw->fwd;
  char link_id[MF_ID_LEN + 1] = "";
  fwd_find_t find = {.session = s, .node_id = node_id, .link_id = link_id};
  uv_mutex_lock(&fw->mu);
  mf_hashmap_foreach(fw->links, fwd_find_fn, &find); /* the session's link to that node */
  fwd_link_t *l = NULL;
  if (!link_id[0] && (l = calloc(1, sizeof *l)) != NULL) {
    if (mf_id_generate(l->id) != MF_OK || mf_hashmap_put(fw->links, l->id, l) != MF_OK) {
      free(l);
      l = NULL;
    } else {
      snprintf(l->node_id, sizeof l->node_id, "%s", node_id);
      snprintf(l->rpc, sizeof l->rpc, "%s", rpc);
      l->room = room;
      l->session = s;
      mf_api_session_ref(s);
      memcpy(link_id, l->id, sizeof link_id);
    }
  }
  uv_mutex_unlock(&fw->mu);
  if (!link_id[0]) return (void)mf_api_call_fail(call, MF_ERR_NO_MEMORY, "out of memory");
  if (l)
    MF_LOG_INFO("room '%s': a session's transports on node %s go through link %s", room->name,
                node_id, link_id);
  mf_gw_room_sync_peer(gw, room, node_id, rpc);
  fwd_send(gw, link_id, call, "router.createWebRtcTransport", data, true, worker);
}

/* The id of the calling session's link that holds id (of kind) into link_id, or false. */
static bool fwd_link_holding(gw_forward_t *fw, mf_api_call_t *call, const char *id,
                             gw_kind_t kind, char link_id[MF_ID_LEN + 1]) {
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&fw->mu);
  fwd_obj_t *o = mf_hashmap_get(fw->objs, mf_gw_key(id, key));
  fwd_link_t *l = o && o->kind == kind ? mf_hashmap_get(fw->links, o->link) : NULL;
  bool mine = l && l->session == mf_api_call_session(call);
  if (mine) memcpy(link_id, l->id, MF_ID_LEN + 1);
  uv_mutex_unlock(&fw->mu);
  return mine;
}

bool mf_gw_forward_owned(mf_gateway_t *gw, mf_api_call_t *call, const mf_api_request_t *req,
                         const char *id, gw_kind_t kind) {
  char link_id[MF_ID_LEN + 1];
  if (!fwd_link_holding(gw->fwd, call, id, kind, link_id)) return false;
  fwd_send(gw, link_id, call, req->method, req->data, false, 0);
  return true;
}

/* ------------------------------------------------------------ front: deliveries */

/* fw->mu held. Object id of kind, held by link l. */
static void fwd_obj_put_locked(gw_forward_t *fw, const fwd_link_t *l, const char *id,
                               gw_kind_t kind, const char *transport_id) {
  if (!id || !mf_id_is_valid(id)) return;
  fwd_obj_t *o = calloc(1, sizeof *o);
  if (!o) return;
  memcpy(o->link, l->id, sizeof o->link);
  o->kind = kind;
  snprintf(o->transport_id, sizeof o->transport_id, "%s", transport_id ? transport_id : "");
  char key[MF_ID_LEN + 1];
  free(mf_hashmap_remove(fw->objs, mf_gw_key(id, key)));
  if (mf_hashmap_put(fw->objs, key, o) != MF_OK) free(o);
}

typedef struct {
  const char *link;        /* objects of this link... */
  const char *transport_id;/* ...and (when set) only this transport and what is on it */
  char (*ids)[MF_ID_LEN + 1];
  gw_kind_t *kinds;
  size_t n, cap;
} fwd_drop_t;

static void fwd_drop_fn(const void *key, void *value, void *ud) {
  fwd_drop_t *d = ud;
  const fwd_obj_t *o = value;
  if (strcmp(o->link, d->link) != 0) return;
  if (d->transport_id && strcmp(key, d->transport_id) != 0 &&
      strcmp(o->transport_id, d->transport_id) != 0)
    return;
  if (d->n == d->cap) return;
  memcpy(d->ids[d->n], key, MF_ID_LEN + 1);
  d->kinds[d->n++] = o->kind;
}

/* Forgets the objects of a link (transport_id: only that transport and its producers and
 * consumers). tell: its session gets the closes the serving node could not send. */
static void fwd_drop(mf_gateway_t *gw, const char *link_id, const char *transport_id,
                     mf_api_session_t *tell, const char *node_id) {
  gw_forward_t *fw = gw->fwd;
  fwd_drop_t d = {.link = link_id, .transport_id = transport_id};
  uv_mutex_lock(&fw->mu);
  d.cap = mf_hashmap_count(fw->objs);
  d.ids = calloc(d.cap ? d.cap : 1, sizeof *d.ids);
  d.kinds = calloc(d.cap ? d.cap : 1, sizeof *d.kinds);
  if (d.ids && d.kinds) {
    mf_hashmap_foreach(fw->objs, fwd_drop_fn, &d);
    for (size_t i = 0; i < d.n; i++) free(mf_hashmap_remove(fw->objs, d.ids[i]));
  } else {
    d.n = 0;
  }
  uv_mutex_unlock(&fw->mu);
  for (size_t i = 0; i < d.n; i++) {
    if (d.kinds[i] == GW_TRANSPORT) mf_gw_index_remove(gw, d.ids[i]);
    if (!tell) continue;
    if (d.kinds[i] == GW_TRANSPORT)
      mf_api_session_notify(tell, "transport.routerclose", d.ids[i],
                            json_pack("{s:s, s:s}", "reason", "nodelost", "nodeId", node_id));
    else if (d.kinds[i] == GW_PRODUCER)
      mf_api_session_notify(tell, "producer.close", d.ids[i],
                            json_pack("{s:s}", "reason", "routerclose"));
  }
  free(d.ids);
  free(d.kinds);
}

/* A reply of the serving node: the call is answered; the objects it made or closed are
 * recorded. */
static void fwd_on_reply(mf_gateway_t *gw, const char *link_id, json_t *msg) {
  gw_forward_t *fw = gw->fwd;
  json_int_t rid = json_integer_value(json_object_get(msg, "id"));
  fwd_link_t *l = NULL;
  fwd_pending_t *p = fwd_take_pending(fw, link_id, rid, &l);
  if (!p) {
    MF_LOG_WARN("link %s: a reply to no call (id %lld); ignored", link_id, (long long)rid);
    return;
  }
  if (!json_is_true(json_object_get(msg, "ok"))) {
    json_t *err = json_object_get(msg, "error");
    const char *text = json_string_value(json_object_get(err, "message"));
    mf_api_call_fail(p->call, mf_err_from_name(json_string_value(json_object_get(err, "code"))),
                     "%s", text ? text : "refused by the node holding the object");
    free(p);
    return;
  }
  json_t *data = json_object_get(msg, "data");
  const char *id = json_string_value(json_object_get(data, "id"));
  const char *m = p->method;
  if (strcmp(m, "router.createWebRtcTransport") == 0 && id && mf_id_is_valid(id)) {
    char node_id[65];
    gw_room_t *room = NULL;
    mf_api_session_t *s = NULL;
    uv_mutex_lock(&fw->mu);
    char key[MF_ID_LEN + 1];
    l = mf_hashmap_get(fw->links, mf_gw_key(link_id, key));
    if (l) {
      fwd_obj_put_locked(fw, l, id, GW_TRANSPORT, id);
      room = l->room;
      s = l->session;
      mf_api_session_ref(s);
      memcpy(node_id, l->node_id, sizeof node_id);
    }
    uv_mutex_unlock(&fw->mu);
    if (s) {
      /* in the index too: its session is a member of the room (notifications) */
      gw_obj_t *o = mf_gw_index_add(gw, id, GW_TRANSPORT, room, GW_NO_WORKER, s, id);
      if (o) {
        uv_mutex_lock(&gw->mu);
        memcpy(o->node_id, node_id, sizeof o->node_id);
        uv_mutex_unlock(&gw->mu);
      }
      mf_api_session_unref(s);
    }
  } else if ((strcmp(m, "transport.produce") == 0 || strcmp(m, "transport.consume") == 0) && id) {
    char key[MF_ID_LEN + 1];
    uv_mutex_lock(&fw->mu);
    l = mf_hashmap_get(fw->links, mf_gw_key(link_id, key));
    if (l)
      fwd_obj_put_locked(fw, l, id, m[10] == 'p' ? GW_PRODUCER : GW_CONSUMER, p->transport_id);
    uv_mutex_unlock(&fw->mu);
  } else if (strcmp(m, "transport.close") == 0) {
    fwd_drop(gw, link_id, p->transport_id, NULL, NULL);
  } else if (p->closes[0]) {
    char key[MF_ID_LEN + 1];
    uv_mutex_lock(&fw->mu);
    free(mf_hashmap_remove(fw->objs, mf_gw_key(p->closes, key)));
    uv_mutex_unlock(&fw->mu);
  }
  mf_api_call_reply(p->call, json_incref(data ? data : json_object()));
  free(p);
}

/* A notification of the serving node for the link's session. */
static void fwd_on_event(mf_gateway_t *gw, const char *link_id, json_t *msg) {
  gw_forward_t *fw = gw->fwd;
  const char *event = json_string_value(json_object_get(msg, "event"));
  const char *target = json_string_value(json_object_get(msg, "target"));
  json_t *data = json_object_get(msg, "data");
  if (!event) return;
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&fw->mu);
  fwd_link_t *l = mf_hashmap_get(fw->links, mf_gw_key(link_id, key));
  mf_api_session_t *s = l ? l->session : NULL;
  mf_api_session_ref(s);
  uv_mutex_unlock(&fw->mu);
  if (!s) return;
  const char *dtls = strcmp(event, "transport.dtlsstatechange") == 0
                         ? json_string_value(json_object_get(data, "dtlsState"))
                         : NULL;
  bool transport_gone = strcmp(event, "transport.routerclose") == 0 ||
                        (dtls && (strcmp(dtls, "closed") == 0 || strcmp(dtls, "failed") == 0));
  /* the transport's end is known after this event: the client hears it first */
  mf_api_session_notify(s, event, target, json_incref(data ? data : json_object()));
  if (target && transport_gone) {
    fwd_drop(gw, link_id, target, NULL, NULL);
  } else if (target && (strcmp(event, "producer.close") == 0 ||
                        strcmp(event, "consumer.producerclose") == 0)) {
    uv_mutex_lock(&fw->mu);
    free(mf_hashmap_remove(fw->objs, mf_gw_key(target, key)));
    uv_mutex_unlock(&fw->mu);
  }
  mf_api_session_unref(s);
}

mf_err_t mf_gw_forward_deliver(mf_gateway_t *gw, const uint8_t *payload, size_t len,
                               uint8_t **reply, size_t *reply_len, char *err, size_t errsz) {
  Mafalda__Cluster__ApiDeliverRequest *q =
      mafalda__cluster__api_deliver_request__unpack(NULL, len, payload);
  if (!q) return snprintf(err, errsz, "malformed ApiDeliverRequest"), MF_ERR_PARSE;
  char key[MF_ID_LEN + 1];
  bool known = false;
  if (q->forward_id && mf_id_is_valid(q->forward_id) && q->node_id) {
    uv_mutex_lock(&gw->fwd->mu);
    fwd_link_t *l = mf_hashmap_get(gw->fwd->links, mf_gw_key(q->forward_id, key));
    known = l && strcmp(l->node_id, q->node_id) == 0;
    uv_mutex_unlock(&gw->fwd->mu);
  }
  /* Deliveries of one link come one batch at a time: handled in order here. */
  for (size_t i = 0; known && i < q->n_messages_json; i++) {
    json_t *msg = json_loads(q->messages_json[i], 0, NULL);
    if (!json_is_object(msg)) {
      MF_LOG_WARN("link %s: node %s delivered a message that is not a JSON object; dropped",
                  q->forward_id, q->node_id);
    } else if (json_object_get(msg, "event")) {
      fwd_on_event(gw, q->forward_id, msg);
    } else {
      fwd_on_reply(gw, q->forward_id, msg);
    }
    json_decref(msg);
  }
  Mafalda__Cluster__ApiDeliverResponse r = MAFALDA__CLUSTER__API_DELIVER_RESPONSE__INIT;
  r.known = known;
  protobuf_c_message_free_unpacked(&q->base, NULL);
  *reply_len = protobuf_c_message_get_packed_size(&r.base);
  *reply = malloc(*reply_len ? *reply_len : 1);
  if (!*reply) return snprintf(err, errsz, "out of memory"), MF_ERR_NO_MEMORY;
  protobuf_c_message_pack(&r.base, *reply);
  return MF_OK;
}

/* ------------------------------------------------------------ front: session, node */

static void fwd_end_links(mf_gateway_t *gw, fwd_pick_t *p, bool tell_node, const char *why) {
  gw_self_t me;
  bool clustered = mf_gw_self(gw, &me);
  for (size_t i = 0; i < p->n; i++) {
    fwd_link_t *l = p->items[i];
    fwd_fail_pending(l->pending, MF_ERR_CLOSED, why);
    fwd_drop(gw, l->id, NULL, tell_node ? NULL : l->session, l->node_id);
    if (tell_node && clustered) {
      Mafalda__Cluster__ApiForwardEndRequest q = MAFALDA__CLUSTER__API_FORWARD_END_REQUEST__INIT;
      q.forward_id = l->id;
      q.node_id = me.node_id;
      char *what = malloc(160);
      if (what) {
        snprintf(what, 160, "node.ApiForwardEnd of link %s to node %.64s", l->id, l->node_id);
        if (mf_gw_call_node(gw, l->rpc, NODE_API_FORWARD_END, &q.base, mf_gw_node_told, what))
          free(what);
      }
    }
    MF_LOG_INFO("link %s to node %s ended: %s", l->id, l->node_id, why);
    mf_api_session_unref(l->session);
    free(l);
  }
}

static void fwd_end_matching(mf_gateway_t *gw, const mf_api_session_t *s, const char *node_id,
                             bool tell_node, const char *why) {
  for (;;) {
    fwd_pick_t *p = calloc(1, sizeof *p);
    if (!p) {
      MF_LOG_ERROR("out of memory: links %s%s not ended (%s)", node_id ? "to node " : "of a session",
                   node_id ? node_id : "", why);
      return;
    }
    p->session = s;
    p->node_id = node_id;
    uv_mutex_lock(&gw->fwd->mu);
    mf_hashmap_foreach(gw->fwd->links, fwd_pick_fn, p);
    for (size_t i = 0; i < p->n; i++) mf_hashmap_remove(gw->fwd->links, p->items[i]->id);
    uv_mutex_unlock(&gw->fwd->mu);
    size_t n = p->n;
    fwd_end_links(gw, p, tell_node, why);
    free(p);
    if (n < FWD_PICK_BATCH) return;
  }
}

void mf_gw_forward_session_over(mf_gateway_t *gw, mf_api_session_t *s) {
  fwd_end_matching(gw, s, NULL, true, "its session ended");
}

typedef struct {
  mf_api_session_t *from, *to;
} fwd_adopt_t;

static void fwd_adopt_fn(const void *key, void *value, void *ud) {
  (void)key;
  fwd_adopt_t *a = ud;
  fwd_link_t *l = value;
  if (l->session != a->from) return;
  mf_api_session_ref(a->to);
  mf_api_session_unref(l->session);
  l->session = a->to;
}

void mf_gw_forward_adopt(mf_gateway_t *gw, mf_api_session_t *from, mf_api_session_t *to) {
  fwd_adopt_t a = {.from = from, .to = to};
  uv_mutex_lock(&gw->fwd->mu);
  mf_hashmap_foreach(gw->fwd->links, fwd_adopt_fn, &a);
  uv_mutex_unlock(&gw->fwd->mu);
}

mf_api_session_t *mf_gw_forward_session(mf_gateway_t *gw, const char *link_id) {
  if (!link_id || !mf_id_is_valid(link_id)) return NULL;
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->fwd->mu);
  fwd_link_t *l = mf_hashmap_get(gw->fwd->links, mf_gw_key(link_id, key));
  mf_api_session_t *s = l ? l->session : NULL;
  mf_api_session_ref(s);
  uv_mutex_unlock(&gw->fwd->mu);
  return s;
}

static void fwd_ins_of_node_fn(const void *key, void *value, void *ud) {
  (void)key;
  fwd_pick_t *p = ud;
  gw_fwd_in_t *in = value;
  if (strcmp(in->node_id, p->node_id) == 0) in->ending = true;
}

void mf_gw_forward_node_lost(mf_gateway_t *gw, const char *node_id) {
  fwd_end_matching(gw, NULL, node_id, false, "its node was lost");
  fwd_pick_t p = {.node_id = node_id};
  uv_mutex_lock(&gw->fwd->mu);
  mf_hashmap_foreach(gw->fwd->ins, fwd_ins_of_node_fn, &p);
  uv_cond_broadcast(&gw->fwd->cv);
  uv_mutex_unlock(&gw->fwd->mu);
}

