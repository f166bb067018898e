/* The serving side of node.ApiForward (see gateway_forward.c): another node's client
 * session runs here in a virtual API session (a LINK); what it sends goes back to that
 * node in order from one sender thread. */
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
#define FWD_JOIN_TIMEOUT_NS (10ull * 1000 * 1000 * 1000)
#define FWD_RETRY_NS (200ull * 1000 * 1000)
#define FWD_BATCH_MAX 64

void mf_gw_fwd_in_unref_locked(gw_fwd_in_t *in) {
  if (--in->refs) return;
  while (in->head) {
    fwd_msg_t *m = in->head;
    in->head = m->next;
    free(m);
  }
  uv_mutex_destroy(&in->call_mu);
  free(in);
}

typedef struct {
  gw_fwd_in_t *items[1024];
  size_t n;
} fwd_ins_t;

static void fwd_ins_fn(const void *key, void *value, void *ud) {
  (void)key;
  fwd_ins_t *p = ud;
  if (p->n < 1024) p->items[p->n++] = value;
}

void mf_gw_forward_in_stop(gw_forward_t *fw) {
  /* Serving side: every virtual session ends before the API server goes. */
  for (;;) {
    fwd_ins_t *p = calloc(1, sizeof *p);
    if (!p) break;
    uv_mutex_lock(&fw->mu);
    mf_hashmap_foreach(fw->ins, fwd_ins_fn, p);
    for (size_t i = 0; i < p->n; i++) {
      gw_fwd_in_t *in = p->items[i];
      mf_hashmap_remove(fw->ins, in->id);
      in->in_table = false;
    }
    uv_mutex_unlock(&fw->mu);
    size_t n = p->n;
    for (size_t i = 0; i < n; i++) {
      gw_fwd_in_t *in = p->items[i];
      uv_mutex_lock(&in->call_mu); /* a forwarded call still running finishes first */
      mf_api_session_t *s = in->session;
      in->session = NULL;
      uv_mutex_unlock(&in->call_mu);
      if (s) mf_api_session_end(s);
      uv_mutex_lock(&fw->mu);
      mf_gw_fwd_in_unref_locked(in);
      uv_mutex_unlock(&fw->mu);
    }
    free(p);
    if (n < 1024) break;
  }
}



/* What the link's virtual session sends (any thread, its lock held): queued for the sender.
 * The answer to our own router.join wakes the server thread waiting for it instead. */
static void fwd_sink(void *ctx, const char *text, size_t len) {
  gw_fwd_in_t *in = ctx;
  gw_forward_t *fw = in->fw;
  json_t *msg = json_loadb(text, len, 0, NULL);
  json_t *jid = json_object_get(msg, "id");
  bool join = json_is_integer(jid) && json_integer_value(jid) == GW_FWD_JOIN_ID;
  fwd_msg_t *m = join ? NULL : malloc(sizeof *m + len + 1);
  uv_mutex_lock(&fw->mu);
  if (join) {
    const char *why =
        json_string_value(json_object_get(json_object_get(msg, "error"), "message"));
    in->join_state = json_is_true(json_object_get(msg, "ok")) ? 1 : -1;
    snprintf(in->join_err, sizeof in->join_err, "%s", why ? why : "router.join refused");
  } else if (m) {
    m->next = NULL;
    memcpy(m->text, text, len);
    m->text[len] = '\0';
    if (in->tail) in->tail->next = m;
    else in->head = m;
    in->tail = m;
  } else {
    MF_LOG_ERROR("link %s: out of memory, a message for node %s is lost", in->id, in->node_id);
  }
  uv_cond_broadcast(&fw->cv);
  uv_mutex_unlock(&fw->mu);
  json_decref(msg);
}

/* Room-wide notifications: the front sends its own for the whole room. */
static bool fwd_room_event(const char *text) {
  json_t *msg = json_loads(text, 0, NULL);
  const char *ev = json_string_value(json_object_get(msg, "event"));
  bool room = ev && (strncmp(ev, "router.", 7) == 0 || strncmp(ev, "rtpObserver.", 12) == 0);
  json_decref(msg);
  return room;
}

typedef struct {
  gw_fwd_in_t *in;
  fwd_msg_t *batch;
} fwd_batch_t;

static void fwd_delivered(void *ud, mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  fwd_batch_t *b = ud;
  gw_fwd_in_t *in = b->in;
  gw_forward_t *fw = in->fw;
  Mafalda__Cluster__ApiDeliverResponse *r =
      env && env->status == MAFALDA__RPC__STATUS__STATUS_OK
          ? mafalda__cluster__api_deliver_response__unpack(NULL, env->payload.len, env->payload.data)
          : NULL;
  uv_mutex_lock(&fw->mu);
  in->sending = false;
  if (!env) {
    /* no answer (the front unreachable for now): the batch goes again, first; a front that
     * stays away is declared lost by gossip, which ends the link */
    fwd_msg_t *last = b->batch;
    while (last && last->next) last = last->next;
    if (last) {
      last->next = in->head;
      if (!in->head) in->tail = last;
      in->head = b->batch;
      b->batch = NULL;
    }
    in->retry_at = uv_hrtime() + FWD_RETRY_NS;
  } else if (!r || !r->known) {
    in->ending = true; /* the front has no such link (any more) */
  }
  uv_cond_broadcast(&fw->cv);
  /* copied first: the link may be freed with our reference, or by the sender at once */
  char link_id[sizeof in->id], front[sizeof in->node_id];
  memcpy(link_id, in->id, sizeof link_id);
  memcpy(front, in->node_id, sizeof front);
  mf_gw_fwd_in_unref_locked(in);
  uv_mutex_unlock(&fw->mu);
  if (!env) MF_LOG_WARN("link %s: delivery to node %s failed (%s); retrying", link_id, front,
                        mf_strerror(err));
  else if (!r || !r->known)
    MF_LOG_INFO("link %s: its front no longer has it; ending it", link_id);
  if (r) mafalda__cluster__api_deliver_response__free_unpacked(r, NULL);
  while (b->batch) {
    fwd_msg_t *m = b->batch;
    b->batch = m->next;
    free(m);
  }
  free(b);
}

typedef struct {
  gw_fwd_in_t *found;
  uint64_t now, next; /* the earliest retry still ahead */
} fwd_next_t;

static void fwd_next_fn(const void *key, void *value, void *ud) {
  (void)key;
  fwd_next_t *n = ud;
  gw_fwd_in_t *in = value;
  if (n->found) return;
  if (in->ending && !in->ended) {
    n->found = in; /* even with a delivery in flight (to a lost node it may take long) */
  } else if (in->head && !in->ending && !in->sending) {
    if (in->retry_at <= n->now) n->found = in;
    else if (!n->next || in->retry_at < n->next) n->next = in->retry_at;
  }
}

/* Sends one batch of in's queue (fw->mu held on entry and exit). */
static void fwd_send_batch_locked(gw_forward_t *fw, gw_fwd_in_t *in) {
  fwd_batch_t *b = calloc(1, sizeof *b);
  if (!b) return;
  b->in = in;
  size_t n = 0;
  fwd_msg_t **tailp = &b->batch;
  while (in->head && n < FWD_BATCH_MAX) {
    fwd_msg_t *m = in->head;
    in->head = m->next;
    m->next = NULL;
    *tailp = m;
    tailp = &m->next;
    n++;
  }
  if (!in->head) in->tail = NULL;
  in->sending = true;
  in->refs++;
  char rpc[96];
  memcpy(rpc, in->rpc, sizeof rpc);
  uv_mutex_unlock(&fw->mu);
  gw_self_t me;
  mf_gw_self(fw->gw, &me);
  char **texts = calloc(n ? n : 1, sizeof *texts);
  size_t k = 0;
  for (fwd_msg_t *m = b->batch; texts && m; m = m->next)
    if (!fwd_room_event(m->text)) texts[k++] = m->text;
  Mafalda__Cluster__ApiDeliverRequest q = MAFALDA__CLUSTER__API_DELIVER_REQUEST__INIT;
  q.forward_id = in->id;
  q.node_id = me.node_id;
  q.n_messages_json = k;
  q.messages_json = texts;
  mf_err_t e = texts ? mf_gw_call_node(fw->gw, rpc, NODE_API_DELIVER, &q.base, fwd_delivered, b)
                     : MF_ERR_NO_MEMORY;
  free(texts);
  if (e) fwd_delivered(b, e, NULL); /* requeued, retried later */
  uv_mutex_lock(&fw->mu);
}

/* Ends in's virtual session (its objects close at once: no grace for a link). */
static void fwd_end_in_locked(gw_forward_t *fw, gw_fwd_in_t *in) {
  in->ended = true;
  if (in->in_table) {
    mf_hashmap_remove(fw->ins, in->id);
    in->in_table = false;
  }
  uv_mutex_unlock(&fw->mu);
  uv_mutex_lock(&in->call_mu);
  mf_api_session_t *s = in->session;
  in->session = NULL;
  uv_mutex_unlock(&in->call_mu);
  if (s) mf_api_session_end(s);
  MF_LOG_INFO("link %s from node %s ended", in->id, in->node_id);
  uv_mutex_lock(&fw->mu);
  mf_gw_fwd_in_unref_locked(in);
}

static void fwd_sender_main(void *arg) {
  gw_forward_t *fw = arg;
  uv_mutex_lock(&fw->mu);
  while (!fw->stopping) {
    fwd_next_t n = {.now = uv_hrtime()};
    mf_hashmap_foreach(fw->ins, fwd_next_fn, &n);
    if (!n.found) {
      if (n.next) uv_cond_timedwait(&fw->cv, &fw->mu, n.next - n.now);
      else uv_cond_wait(&fw->cv, &fw->mu);
      continue;
    }
    if (n.found->ending) fwd_end_in_locked(fw, n.found);
    else fwd_send_batch_locked(fw, n.found);
  }
  uv_mutex_unlock(&fw->mu);
}

/* Opens in's virtual session and joins the room (call_mu held). */
static mf_err_t fwd_open(mf_gateway_t *gw, gw_fwd_in_t *in, const char *room_name, char *err,
                         size_t errsz) {
  gw_forward_t *fw = gw->fwd;
  mf_jwt_claims_t claims;
  memset(&claims, 0, sizeof claims);
  snprintf(claims.sub, sizeof claims.sub, "node:%.40s", in->node_id);
  snprintf(claims.room, sizeof claims.room, "%s", room_name);
  claims.grants = MF_JWT_GRANT_JOIN;
  claims.exp = INT64_MAX;
  mf_api_session_t *s = NULL;
  if (mf_api_session_open_virtual(gw->server, &claims, fwd_sink, in, &s) != MF_OK)
    return snprintf(err, errsz, "the node is shutting down"), MF_ERR_CLOSED;
  json_t *join = json_pack("{s:i, s:s, s:{s:s}}", "id", GW_FWD_JOIN_ID, "method", "router.join",
                           "data", "roomId", room_name);
  char *text = join ? json_dumps(join, JSON_COMPACT) : NULL;
  json_decref(join);
  if (!text) {
    mf_api_session_end(s);
    return snprintf(err, errsz, "out of memory"), MF_ERR_NO_MEMORY;
  }
  mf_api_session_submit(s, text, strlen(text));
  free(text);
  uint64_t deadline = uv_hrtime() + FWD_JOIN_TIMEOUT_NS;
  uv_mutex_lock(&fw->mu);
  while (in->join_state == 0 && !fw->stopping) {
    uint64_t now = uv_hrtime();
    if (now >= deadline || uv_cond_timedwait(&fw->cv, &fw->mu, deadline - now) == UV_ETIMEDOUT)
      break;
  }
  int state = in->join_state;
  uv_mutex_unlock(&fw->mu);
  if (state != 1) {
    mf_api_session_end(s);
    snprintf(err, errsz, "cannot join room '%s' here: %s", room_name,
             state ? in->join_err : "timed out");
    uv_mutex_lock(&fw->mu);
    in->join_state = 0;
    uv_mutex_unlock(&fw->mu);
    return state ? MF_ERR_STATE : MF_ERR_TIMEOUT;
  }
  gw_session_t *gs = mf_api_session_get_user(s);
  if (gs) {
    gs->fwd_in = in;
    /* the front is a peer of the room: it hears of this node's producers */
    mf_gw_peer_add(gw, gs->room, in->node_id, in->rpc);
  }
  in->session = s;
  MF_LOG_INFO("link %s: node %s's client runs in room '%s' here", in->id, in->node_id,
              room_name);
  return MF_OK;
}

static gw_fwd_in_t *fwd_in_get(gw_forward_t *fw, const Mafalda__Cluster__ApiForwardRequest *q,
                               char *err, size_t errsz) {
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&fw->mu);
  gw_fwd_in_t *in = mf_hashmap_get(fw->ins, mf_gw_key(q->forward_id, key));
  if (in && strcmp(in->node_id, q->node_id) != 0) {
    uv_mutex_unlock(&fw->mu);
    snprintf(err, errsz, "link %s belongs to another node", q->forward_id);
    return NULL;
  }
  if (!in && !fw->stopping && (in = calloc(1, sizeof *in)) != NULL) {
    in->fw = fw;
    memcpy(in->id, key, sizeof in->id);
    snprintf(in->node_id, sizeof in->node_id, "%s", q->node_id);
    snprintf(in->rpc, sizeof in->rpc, "%s", q->rpc_address);
    uv_mutex_init(&in->call_mu);
    in->refs = 1;
    in->in_table = true;
    if (mf_hashmap_put(fw->ins, in->id, in) != MF_OK) {
      uv_mutex_destroy(&in->call_mu);
      free(in);
      in = NULL;
    }
  }
  if (in && !fw->sender_started && !fw->stopping) {
    fw->sender_started = uv_thread_create(&fw->sender, fwd_sender_main, fw) == 0;
    if (!fw->sender_started) MF_LOG_ERROR("cannot start the link sender thread");
  }
  if (in) in->refs++;
  uv_mutex_unlock(&fw->mu);
  if (!in) snprintf(err, errsz, fw->stopping ? "the node is shutting down" : "out of memory");
  return in;
}

static mf_err_t fwd_serve_forward(mf_gateway_t *gw, const uint8_t *payload, size_t len,
                                  char *err, size_t errsz) {
  Mafalda__Cluster__ApiForwardRequest *q =
      mafalda__cluster__api_forward_request__unpack(NULL, len, payload);
  if (!q) return snprintf(err, errsz, "malformed ApiForwardRequest"), MF_ERR_PARSE;
  mf_err_t e = MF_OK;
  if (!q->forward_id || !mf_id_is_valid(q->forward_id) || !q->node_id || !q->node_id[0] ||
      strlen(q->node_id) > 64 || !q->rpc_address || !q->rpc_address[0] ||
      strlen(q->rpc_address) > 95 || !q->room || !q->room[0] || strlen(q->room) > GW_ROOM_MAX ||
      !q->request_json || !q->request_json[0]) {
    e = MF_ERR_INVALID_ARG;
    snprintf(err, errsz, "ApiForward needs a link id, a node id, an RPC address, a room and "
                         "a request");
  }
  gw_fwd_in_t *in = e ? NULL : fwd_in_get(gw->fwd, q, err, errsz);
  if (!e && !in) e = MF_ERR_STATE;
  if (in) {
    uv_mutex_lock(&in->call_mu);
    if (!in->session && !in->ended) e = fwd_open(gw, in, q->room, err, errsz);
    if (!e && !in->session) {
      e = MF_ERR_CLOSED;
      snprintf(err, errsz, "link %s has ended", in->id);
    }
    if (!e) {
      gw_session_t *gs = mf_api_session_get_user(in->session);
      if (q->producer && gs) mf_gw_learn_producer(gw, gs->room, q->producer);
      in->pinned = q->pinned;
      in->worker = q->worker;
      mf_api_session_submit(in->session, q->request_json, strlen(q->request_json));
      in->pinned = false;
    }
    uv_mutex_unlock(&in->call_mu);
    uv_mutex_lock(&gw->fwd->mu);
    mf_gw_fwd_in_unref_locked(in);
    uv_mutex_unlock(&gw->fwd->mu);
  }
  protobuf_c_message_free_unpacked(&q->base, NULL);
  return e;
}

static mf_err_t fwd_serve_end(mf_gateway_t *gw, const uint8_t *payload, size_t len, char *err,
                              size_t errsz) {
  Mafalda__Cluster__ApiForwardEndRequest *q =
      mafalda__cluster__api_forward_end_request__unpack(NULL, len, payload);
  if (!q) return snprintf(err, errsz, "malformed ApiForwardEndRequest"), MF_ERR_PARSE;
  char key[MF_ID_LEN + 1];
  if (q->forward_id && mf_id_is_valid(q->forward_id)) {
    uv_mutex_lock(&gw->fwd->mu);
    gw_fwd_in_t *in = mf_hashmap_get(gw->fwd->ins, mf_gw_key(q->forward_id, key));
    if (in && q->node_id && strcmp(in->node_id, q->node_id) == 0) in->ending = true;
    uv_cond_broadcast(&gw->fwd->cv);
    uv_mutex_unlock(&gw->fwd->mu);
  }
  protobuf_c_message_free_unpacked(&q->base, NULL);
  return MF_OK; /* unknown: nothing left to end */
}

bool mf_gw_forward_pin(mf_api_session_t *s, uint32_t *worker) {
  gw_session_t *gs = mf_api_session_get_user(s);
  if (!gs || !gs->fwd_in || !gs->fwd_in->pinned) return false;
  *worker = gs->fwd_in->worker;
  return true;
}

typedef struct {
  const mf_api_session_t *session;
  char *out;
} fwd_id_of_t;

static void fwd_id_of_fn(const void *key, void *value, void *ud) {
  (void)key;
  fwd_id_of_t *f = ud;
  const gw_fwd_in_t *in = value;
  if (in->session == f->session) snprintf(f->out, MF_ID_LEN + 1, "%s", in->id);
}

bool mf_gw_forward_link_of(mf_gateway_t *gw, const mf_api_session_t *s, char out[MF_ID_LEN + 1]) {
  out[0] = '\0';
  if (!s) return false;
  fwd_id_of_t f = {.session = s, .out = out};
  uv_mutex_lock(&gw->fwd->mu);
  mf_hashmap_foreach(gw->fwd->ins, fwd_id_of_fn, &f);
  uv_mutex_unlock(&gw->fwd->mu);
  return out[0] != '\0';
}

bool mf_gw_forward_serves(const char *method) {
  return method && (strcmp(method, NODE_API_FORWARD) == 0 ||
                    strcmp(method, NODE_API_DELIVER) == 0 ||
                    strcmp(method, NODE_API_FORWARD_END) == 0);
}

mf_err_t mf_gw_forward_serve(mf_gateway_t *gw, const char *method, const uint8_t *payload,
                             size_t len, uint8_t **reply, size_t *reply_len,
                             const ProtobufCMessageDescriptor **reply_type, char *err,
                             size_t errsz) {
  mf_err_t e;
  if (strcmp(method, NODE_API_DELIVER) == 0) {
    *reply_type = &mafalda__cluster__api_deliver_response__descriptor;
    return mf_gw_forward_deliver(gw, payload, len, reply, reply_len, err, errsz);
  }
  if (strcmp(method, NODE_API_FORWARD) == 0) {
    *reply_type = &mafalda__cluster__api_forward_response__descriptor;
    e = fwd_serve_forward(gw, payload, len, err, errsz);
  } else {
    *reply_type = &mafalda__cluster__api_forward_end_response__descriptor;
    e = fwd_serve_end(gw, payload, len, err, errsz);
  }
  if (e) return e;
  *reply = malloc(1); /* empty responses: zero bytes */
  return *reply ? MF_OK : MF_ERR_NO_MEMORY;
}
