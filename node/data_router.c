#define MF_LOG_MODULE "data"
#include "node/data_router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hashmap.h"
#include "common/id.h"
#include "common/log.h"
#include "node/dcep.h"
#include "node/router_internal.h"

struct mf_data_router {
  mf_hashmap_t *producers; /* id -> mf_data_producer_t (local ones and relay copies) */
  mf_hashmap_t *consumers; /* id -> mf_data_consumer_t */
  mf_ptr_list_t relays;    /* relay copies (they belong to no transport) */
  mf_data_relay_fn relay_fn;
  void *relay_ud;
  void (*relay_ud_free)(void *ud);
};

struct mf_data_transport {
  mf_ptr_list_t producers, consumers;
  mf_sctp_options_t opts;
  uint64_t dcep_opens; /* in-band channels acknowledged (not routed) */
};

struct mf_data_producer {
  char id[MF_ID_LEN + 1];
  mf_router_t *router;
  mf_router_transport_t *transport; /* NULL for a relay copy */
  bool relay_copy;
  uint64_t relay_workers; /* origin: workers with relay copies (bitmask) */
  mf_sctp_stream_parameters_t params;
  char *label, *protocol;
  json_t *app_data;
  mf_ptr_list_t consumers;
  uint64_t messages, bytes;
};

struct mf_data_consumer {
  char id[MF_ID_LEN + 1];
  mf_router_transport_t *transport;
  mf_data_producer_t *producer;
  mf_sctp_stream_parameters_t params;
  uint64_t messages, bytes, dropped;
};

static char *data_key(const char *id, char key[MF_ID_LEN + 1]) {
  memset(key, 0, MF_ID_LEN + 1);
  snprintf(key, MF_ID_LEN + 1, "%s", id ? id : "");
  return key;
}

static mf_data_router_t *data_router(mf_router_t *r) {
  if (r->data) return r->data;
  mf_data_router_t *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  if (mf_hashmap_create(MF_ID_LEN + 1, 8, &d->producers) != MF_OK ||
      mf_hashmap_create(MF_ID_LEN + 1, 8, &d->consumers) != MF_OK) {
    mf_hashmap_destroy(d->producers);
    free(d);
    return NULL;
  }
  r->data = d;
  return d;
}

static void data_producer_free(mf_data_producer_t *p);

void mf_data_router_free(mf_data_router_t *d) {
  if (!d) return;
  /* relay copies outlive the transports (their consumers went with those) */
  for (size_t i = 0; i < d->relays.count; i++) data_producer_free(d->relays.items[i]);
  mf_ptr_list_free(&d->relays);
  if (d->relay_ud_free) d->relay_ud_free(d->relay_ud);
  mf_hashmap_destroy(d->producers);
  mf_hashmap_destroy(d->consumers);
  free(d);
}

/* ------------------------------------------------------------ JSON */

static bool data_get_u16(const json_t *j, const char *name, int32_t *out, bool *present,
                         char *err, size_t errsz) {
  const json_t *v = json_object_get(j, name);
  *present = v != NULL && !json_is_null(v);
  if (!*present) return true;
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 65535) {
    snprintf(err, errsz, "sctpStreamParameters.%s must be an integer 0..65535", name);
    return false;
  }
  *out = (int32_t)json_integer_value(v);
  return true;
}

mf_err_t mf_sctp_stream_parameters_from_json(const json_t *j, mf_sctp_stream_parameters_t *out,
                                             char *err, size_t errsz) {
  if (!json_is_object(j)) {
    snprintf(err, errsz, "sctpStreamParameters must be an object");
    return MF_ERR_INVALID_ARG;
  }
  int32_t sid = -1, life = -1, rtx = -1;
  bool has_sid, has_life, has_rtx;
  if (!data_get_u16(j, "streamId", &sid, &has_sid, err, errsz) ||
      !data_get_u16(j, "maxPacketLifeTime", &life, &has_life, err, errsz) ||
      !data_get_u16(j, "maxRetransmits", &rtx, &has_rtx, err, errsz))
    return MF_ERR_INVALID_ARG;
  if (!has_sid || sid > 65534) {
    snprintf(err, errsz, "sctpStreamParameters.streamId must be an integer 0..65534");
    return MF_ERR_INVALID_ARG;
  }
  if (has_life && has_rtx) {
    snprintf(err, errsz, "sctpStreamParameters: maxPacketLifeTime and maxRetransmits are exclusive");
    return MF_ERR_INVALID_ARG;
  }
  const json_t *ord = json_object_get(j, "ordered");
  if (ord && !json_is_boolean(ord)) {
    snprintf(err, errsz, "sctpStreamParameters.ordered must be a boolean");
    return MF_ERR_INVALID_ARG;
  }
  memset(out, 0, sizeof *out);
  out->stream_id = (uint16_t)sid;
  out->send.ordered = ord ? json_is_true(ord) : !(has_life || has_rtx);
  out->send.max_packet_life_time = life;
  out->send.max_retransmits = rtx;
  return MF_OK;
}

json_t *mf_sctp_stream_parameters_to_json(const mf_sctp_stream_parameters_t *p) {
  json_t *o = json_pack("{s:i, s:b}", "streamId", (int)p->stream_id, "ordered", p->send.ordered);
  if (p->send.max_packet_life_time >= 0)
    json_object_set_new(o, "maxPacketLifeTime", json_integer(p->send.max_packet_life_time));
  if (p->send.max_retransmits >= 0)
    json_object_set_new(o, "maxRetransmits", json_integer(p->send.max_retransmits));
  return o;
}

mf_err_t mf_sctp_options_from_json(const json_t *data, bool *enabled, mf_sctp_options_t *out,
                                   char *err, size_t errsz) {
  *enabled = json_is_true(json_object_get(data, "enableSctp"));
  if (!*enabled) return MF_OK;
  memset(out, 0, sizeof *out);
  const json_t *ns = json_object_get(data, "numSctpStreams");
  if (ns && !json_is_null(ns)) {
    const json_t *os = json_object_get(ns, "OS"), *mis = json_object_get(ns, "MIS");
    if (!json_is_object(ns) || !json_is_integer(os) || !json_is_integer(mis) ||
        json_integer_value(os) < 1 || json_integer_value(os) > 65535 ||
        json_integer_value(mis) < 1 || json_integer_value(mis) > 65535) {
      snprintf(err, errsz, "numSctpStreams must be {OS, MIS} with integers 1..65535");
      return MF_ERR_INVALID_ARG;
    }
    out->os = (uint16_t)json_integer_value(os);
    out->mis = (uint16_t)json_integer_value(mis);
  }
  const json_t *mm = json_object_get(data, "maxSctpMessageSize");
  if (mm && !json_is_null(mm)) {
    if (!json_is_integer(mm) || json_integer_value(mm) < 1 ||
        json_integer_value(mm) > 16 * 1024 * 1024) {
      snprintf(err, errsz, "maxSctpMessageSize must be an integer 1..16777216");
      return MF_ERR_INVALID_ARG;
    }
    out->max_message_size = (uint32_t)json_integer_value(mm);
  }
  return MF_OK;
}

/* ------------------------------------------------------------ SCTP events of a transport */

static mf_sctp_association_t *data_assoc(mf_router_transport_t *t) {
  return t->webrtc ? mf_webrtc_transport_sctp(t->webrtc) : NULL;
}

static void data_on_sctp_state(void *ud, mf_webrtc_transport_t *wt, mf_sctp_state_t s) {
  mf_router_transport_t *t = ud;
  mf_router_emit(t->router, "sctpstatechange", mf_webrtc_transport_id(wt),
                 json_pack("{s:s}", "sctpState", mf_sctp_state_name(s)));
}

static mf_data_producer_t *data_producer_on_stream(mf_data_transport_t *dt, uint16_t sid) {
  for (size_t i = 0; i < dt->producers.count; i++) {
    mf_data_producer_t *p = dt->producers.items[i];
    if (p->params.stream_id == sid) return p;
  }
  return NULL;
}

/* An in-band channel (DCEP OPEN): acknowledged as RFC 8832 requires, not routed. */
static void data_on_dcep(mf_router_transport_t *t, uint16_t sid, const uint8_t *data, size_t len) {
  mf_dcep_message_t m;
  if (mf_dcep_parse(data, len, &m) != MF_OK) {
    MF_LOG_DEBUG("transport %s: malformed DCEP message on stream %u dropped",
                 mf_router_transport_id(t), sid);
    return;
  }
  if (m.type != MF_DCEP_MSG_OPEN) return;
  uint8_t ack[1];
  size_t n = 0;
  mf_sctp_send_params_t rel = {.ordered = true, .max_retransmits = -1, .max_packet_life_time = -1};
  if (mf_dcep_write_ack(ack, sizeof ack, &n) == MF_OK)
    (void)mf_sctp_association_send(data_assoc(t), sid, MF_SCTP_PPID_DCEP, &rel, ack, n);
  t->data->dcep_opens++;
  MF_LOG_INFO("transport %s: in-band DataChannel '%.*s' on stream %u acknowledged; it is not "
              "routed (use transport.produceData with negotiated channels)",
              mf_router_transport_id(t), (int)(m.open.label_len > 64 ? 64 : m.open.label_len),
              (const char *)m.open.label, sid);
}

static void data_on_sctp_message(void *ud, mf_webrtc_transport_t *wt, uint16_t sid, uint32_t ppid,
                                 const uint8_t *data, size_t len) {
  mf_router_transport_t *t = ud;
  if (!t->data) return;
  if (ppid == MF_SCTP_PPID_DCEP) return data_on_dcep(t, sid, data, len);
  mf_data_producer_t *p = data_producer_on_stream(t->data, sid);
  if (!p) {
    MF_LOG_DEBUG("transport %s: message on stream %u without a data producer dropped",
                 mf_webrtc_transport_id(wt), sid);
    return;
  }
  mf_data_producer_deliver(p, ppid, data, len);
  mf_data_router_t *dr = t->router->data;
  if (p->relay_workers && dr && dr->relay_fn)
    dr->relay_fn(dr->relay_ud, p->id, p->relay_workers, ppid, data, len, false);
}

void mf_data_producer_deliver(mf_data_producer_t *p, uint32_t ppid, const uint8_t *data,
                              size_t len) {
  p->messages++;
  p->bytes += len;
  for (size_t i = 0; i < p->consumers.count; i++) {
    mf_data_consumer_t *c = p->consumers.items[i];
    mf_sctp_association_t *a = data_assoc(c->transport);
    if (a && mf_sctp_association_send(a, c->params.stream_id, ppid, &c->params.send, data, len) == MF_OK) {
      c->messages++;
      c->bytes += len;
    } else {
      c->dropped++;
    }
  }
}

static void data_on_sctp_reset(void *ud, mf_webrtc_transport_t *wt, uint16_t sid) {
  mf_router_transport_t *t = ud;
  mf_data_producer_t *p = t->data ? data_producer_on_stream(t->data, sid) : NULL;
  MF_LOG_INFO("transport %s: the peer closed SCTP stream %u%s%s", mf_webrtc_transport_id(wt), sid,
              p ? " of data producer " : "", p ? p->id : "");
}

static const mf_webrtc_transport_sctp_callbacks_t data_sctp_cb = {
    .state = data_on_sctp_state, .message = data_on_sctp_message, .stream_reset = data_on_sctp_reset};

mf_err_t mf_router_transport_enable_sctp(mf_router_transport_t *t, const mf_sctp_options_t *o) {
  if (!t->webrtc || t->data) return MF_ERR_STATE;
  mf_data_transport_t *dt = calloc(1, sizeof *dt);
  if (!dt) return MF_ERR_NO_MEMORY;
  mf_err_t e = mf_webrtc_transport_enable_sctp(t->webrtc, o, &data_sctp_cb);
  if (e) {
    free(dt);
    return e;
  }
  mf_sctp_association_options(mf_webrtc_transport_sctp(t->webrtc), &dt->opts);
  t->data = dt;
  return MF_OK;
}

bool mf_router_transport_sctp_enabled(const mf_router_transport_t *t) { return t->data != NULL; }

/* ------------------------------------------------------------ producers */

static char *data_strdup_field(const json_t *data, const char *name, bool *bad) {
  const json_t *v = json_object_get(data, name);
  const char *s = "";
  if (v && !json_is_null(v)) {
    s = json_string_value(v);
    if (!s || strlen(s) > MF_DATA_LABEL_MAX) *bad = true;
    if (!s) s = "";
  }
  return strdup(s);
}

mf_err_t mf_router_produce_data(mf_router_transport_t *t, const json_t *data, char *err,
                                size_t errsz, mf_data_producer_t **out) {
  if (!t->data) {
    snprintf(err, errsz, "transport %s has no SCTP: create it with enableSctp: true",
             mf_router_transport_id(t));
    return MF_ERR_STATE;
  }
  mf_sctp_stream_parameters_t params;
  mf_err_t e = mf_sctp_stream_parameters_from_json(json_object_get(data, "sctpStreamParameters"),
                                                   &params, err, errsz);
  if (e) return e;
  if (params.stream_id >= t->data->opts.mis) {
    snprintf(err, errsz, "streamId %u is not below the transport's MIS (%u)", params.stream_id,
             t->data->opts.mis);
    return MF_ERR_INVALID_ARG;
  }
  if (data_producer_on_stream(t->data, params.stream_id)) {
    snprintf(err, errsz, "streamId %u is already used by a data producer of this transport",
             params.stream_id);
    return MF_ERR_EXISTS;
  }
  mf_data_router_t *dr = data_router(t->router);
  mf_data_producer_t *p = calloc(1, sizeof *p);
  if (!dr || !p) {
    free(p);
    return MF_ERR_NO_MEMORY;
  }
  bool bad = false;
  p->router = t->router;
  p->transport = t;
  p->params = params;
  p->label = data_strdup_field(data, "label", &bad);
  p->protocol = data_strdup_field(data, "protocol", &bad);
  const json_t *ad = json_object_get(data, "appData");
  p->app_data = json_is_object(ad) ? json_deep_copy(ad) : json_object();
  e = bad ? MF_ERR_INVALID_ARG : (!p->label || !p->protocol) ? MF_ERR_NO_MEMORY : mf_id_generate(p->id);
  if (bad) snprintf(err, errsz, "label and protocol must be strings of at most %d bytes", MF_DATA_LABEL_MAX);
  char key[MF_ID_LEN + 1];
  if (!e) e = mf_hashmap_put(dr->producers, data_key(p->id, key), p);
  if (!e) {
    e = mf_ptr_list_add(&t->data->producers, p);
    if (e) mf_hashmap_remove(dr->producers, key);
  }
  if (e) {
    free(p->label);
    free(p->protocol);
    json_decref(p->app_data);
    free(p);
    return e;
  }
  MF_LOG_INFO("data producer %s on transport %s (stream %u, label '%s')", p->id,
              mf_router_transport_id(t), params.stream_id, p->label);
  *out = p;
  return MF_OK;
}

mf_data_producer_t *mf_router_find_data_producer(mf_router_t *r, const char *id) {
  char key[MF_ID_LEN + 1];
  return r->data ? mf_hashmap_get(r->data->producers, data_key(id, key)) : NULL;
}

mf_data_consumer_t *mf_router_find_data_consumer(mf_router_t *r, const char *id) {
  char key[MF_ID_LEN + 1];
  return r->data ? mf_hashmap_get(r->data->consumers, data_key(id, key)) : NULL;
}

const char *mf_data_producer_id(const mf_data_producer_t *p) { return p->id; }

json_t *mf_data_producer_to_json(const mf_data_producer_t *p) {
  return json_pack("{s:s, s:s, s:o, s:s, s:s, s:O}", "id", p->id, "type", "sctp",
                   "sctpStreamParameters", mf_sctp_stream_parameters_to_json(&p->params), "label",
                   p->label, "protocol", p->protocol, "appData", p->app_data);
}

json_t *mf_data_producer_stats_json(const mf_data_producer_t *p) {
  return json_pack("[{s:s, s:I, s:s, s:s, s:I, s:I}]", "type", "data-producer", "timestamp",
                   (json_int_t)uv_now(p->router->timer.loop), "label", p->label,
                   "protocol", p->protocol, "messagesReceived", (json_int_t)p->messages,
                   "bytesReceived", (json_int_t)p->bytes);
}

/* ------------------------------------------------------------ consumers */

static bool data_stream_taken(const mf_data_transport_t *dt, uint16_t sid) {
  for (size_t i = 0; i < dt->consumers.count; i++)
    if (((mf_data_consumer_t *)dt->consumers.items[i])->params.stream_id == sid) return true;
  /* a channel id is bidirectional: never send on a stream the client produces on */
  for (size_t i = 0; i < dt->producers.count; i++)
    if (((mf_data_producer_t *)dt->producers.items[i])->params.stream_id == sid) return true;
  return false;
}

mf_err_t mf_router_consume_data(mf_router_transport_t *t, const char *data_producer_id,
                                char *err, size_t errsz, mf_data_consumer_t **out) {
  if (!t->data) {
    snprintf(err, errsz, "transport %s has no SCTP: create it with enableSctp: true",
             mf_router_transport_id(t));
    return MF_ERR_STATE;
  }
  mf_data_producer_t *p = mf_router_find_data_producer(t->router, data_producer_id);
  if (!p) {
    snprintf(err, errsz, "data producer %s not found", data_producer_id ? data_producer_id : "(null)");
    return MF_ERR_NOT_FOUND;
  }
  uint32_t limit = t->data->opts.os;
  uint32_t sid = 0;
  while (sid < limit && data_stream_taken(t->data, (uint16_t)sid)) sid++;
  if (sid >= limit) {
    snprintf(err, errsz, "no free SCTP stream on transport %s (OS %u)", mf_router_transport_id(t),
             t->data->opts.os);
    return MF_ERR_LIMIT;
  }
  mf_data_consumer_t *c = calloc(1, sizeof *c);
  if (!c) return MF_ERR_NO_MEMORY;
  c->transport = t;
  c->producer = p;
  c->params = p->params;
  c->params.stream_id = (uint16_t)sid;
  char key[MF_ID_LEN + 1];
  mf_err_t e = mf_id_generate(c->id);
  if (!e) e = mf_hashmap_put(t->router->data->consumers, data_key(c->id, key), c);
  if (!e) {
    e = mf_ptr_list_add(&t->data->consumers, c);
    if (!e) {
      e = mf_ptr_list_add(&p->consumers, c);
      if (e) mf_ptr_list_remove(&t->data->consumers, c);
    }
    if (e) mf_hashmap_remove(t->router->data->consumers, key);
  }
  if (e) {
    free(c);
    return e;
  }
  MF_LOG_INFO("data consumer %s of data producer %s on transport %s (stream %u)", c->id, p->id,
              mf_router_transport_id(t), c->params.stream_id);
  *out = c;
  return MF_OK;
}

const char *mf_data_consumer_id(const mf_data_consumer_t *c) { return c->id; }

json_t *mf_data_consumer_to_json(const mf_data_consumer_t *c) {
  return json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "id", c->id, "dataProducerId",
                   c->producer->id, "type", "sctp", "sctpStreamParameters",
                   mf_sctp_stream_parameters_to_json(&c->params), "label", c->producer->label,
                   "protocol", c->producer->protocol);
}

json_t *mf_data_consumer_stats_json(const mf_data_consumer_t *c) {
  return json_pack("[{s:s, s:I, s:s, s:s, s:I, s:I, s:I}]", "type", "data-consumer", "timestamp",
                   (json_int_t)uv_now(c->transport->router->timer.loop), "label", c->producer->label,
                   "protocol", c->producer->protocol, "messagesSent", (json_int_t)c->messages,
                   "bytesSent", (json_int_t)c->bytes, "messagesDropped", (json_int_t)c->dropped);
}

/* Unlinks and frees; the client's channel is closed by resetting our stream (RFC 8831 6.7). */
static void data_consumer_destroy(mf_data_consumer_t *c, bool detach_producer) {
  char key[MF_ID_LEN + 1];
  mf_router_transport_t *t = c->transport;
  mf_sctp_association_t *a = data_assoc(t);
  if (a && mf_sctp_association_state(a) == MF_SCTP_STATE_CONNECTED)
    (void)mf_sctp_association_reset_stream(a, c->params.stream_id);
  if (detach_producer) mf_ptr_list_remove(&c->producer->consumers, c);
  mf_ptr_list_remove(&t->data->consumers, c);
  mf_hashmap_remove(t->router->data->consumers, data_key(c->id, key));
  MF_LOG_INFO("data consumer %s closed", c->id);
  free(c);
}

void mf_data_consumer_close(mf_data_consumer_t *c) { data_consumer_destroy(c, true); }

static void data_producer_free(mf_data_producer_t *p) {
  mf_ptr_list_free(&p->consumers);
  free(p->label);
  free(p->protocol);
  json_decref(p->app_data);
  free(p);
}

void mf_data_producer_close(mf_data_producer_t *p) {
  mf_router_t *r = p->router;
  while (p->consumers.count > 0) {
    mf_data_consumer_t *c = p->consumers.items[--p->consumers.count];
    char id[MF_ID_LEN + 1];
    memcpy(id, c->id, sizeof id);
    data_consumer_destroy(c, false);
    mf_router_emit(r, "dataproducerclose", id, NULL);
  }
  char key[MF_ID_LEN + 1];
  if (p->relay_copy)
    mf_ptr_list_remove(&r->data->relays, p);
  else
    mf_ptr_list_remove(&p->transport->data->producers, p);
  mf_hashmap_remove(r->data->producers, data_key(p->id, key));
  if (p->relay_workers && r->data->relay_fn)
    r->data->relay_fn(r->data->relay_ud, p->id, p->relay_workers, 0, NULL, 0, true);
  MF_LOG_INFO("data producer %s%s closed", p->relay_copy ? "relay copy " : "", p->id);
  data_producer_free(p);
}

/* ------------------------------------------------------------ relays between workers */

void mf_router_set_data_relay(mf_router_t *r, mf_data_relay_fn fn, void *ud,
                              void (*ud_free)(void *ud)) {
  mf_data_router_t *dr = data_router(r);
  if (!dr || dr->relay_fn) {
    if (ud_free) ud_free(ud);
    return;
  }
  dr->relay_fn = fn;
  dr->relay_ud = ud;
  dr->relay_ud_free = ud_free;
}

bool mf_router_has_data_relay(const mf_router_t *r) { return r->data && r->data->relay_fn; }

mf_err_t mf_data_producer_add_relay(mf_data_producer_t *p, uint32_t worker) {
  if (p->relay_copy) return MF_ERR_STATE;
  if (worker >= 64) return MF_ERR_LIMIT;
  p->relay_workers |= (uint64_t)1 << worker;
  return MF_OK;
}

bool mf_data_producer_is_relay(const mf_data_producer_t *p) { return p->relay_copy; }

mf_err_t mf_router_relay_data_producer(mf_router_t *r, const json_t *desc, char *err,
                                       size_t errsz, mf_data_producer_t **out) {
  const char *id = json_string_value(json_object_get(desc, "id"));
  if (!id || !mf_id_is_valid(id)) {
    snprintf(err, errsz, "a relay copy needs its origin's id");
    return MF_ERR_INVALID_ARG;
  }
  if (mf_router_find_data_producer(r, id)) {
    snprintf(err, errsz, "data producer %s already exists on this worker", id);
    return MF_ERR_EXISTS;
  }
  mf_sctp_stream_parameters_t params;
  mf_err_t e = mf_sctp_stream_parameters_from_json(json_object_get(desc, "sctpStreamParameters"),
                                                   &params, err, errsz);
  if (e) return e;
  mf_data_router_t *dr = data_router(r);
  mf_data_producer_t *p = calloc(1, sizeof *p);
  if (!dr || !p) {
    free(p);
    return MF_ERR_NO_MEMORY;
  }
  bool bad = false;
  snprintf(p->id, sizeof p->id, "%s", id);
  p->router = r;
  p->relay_copy = true;
  p->params = params;
  p->label = data_strdup_field(desc, "label", &bad);
  p->protocol = data_strdup_field(desc, "protocol", &bad);
  const json_t *ad = json_object_get(desc, "appData");
  p->app_data = json_is_object(ad) ? json_deep_copy(ad) : json_object();
  e = bad ? MF_ERR_INVALID_ARG : (!p->label || !p->protocol || !p->app_data) ? MF_ERR_NO_MEMORY : MF_OK;
  if (bad) snprintf(err, errsz, "label and protocol must be strings of at most %d bytes", MF_DATA_LABEL_MAX);
  char key[MF_ID_LEN + 1];
  if (!e) e = mf_hashmap_put(dr->producers, data_key(p->id, key), p);
  if (!e) {
    e = mf_ptr_list_add(&dr->relays, p);
    if (e) mf_hashmap_remove(dr->producers, key);
  }
  if (e) {
    data_producer_free(p);
    return e;
  }
  MF_LOG_INFO("relay copy of data producer %s (label '%s')", p->id, p->label);
  *out = p;
  return MF_OK;
}

void mf_data_transport_close(mf_router_transport_t *t) {
  mf_data_transport_t *dt = t->data;
  if (!dt) return;
  while (dt->consumers.count > 0) mf_data_consumer_close(dt->consumers.items[dt->consumers.count - 1]);
  while (dt->producers.count > 0) mf_data_producer_close(dt->producers.items[dt->producers.count - 1]);
  mf_ptr_list_free(&dt->producers);
  mf_ptr_list_free(&dt->consumers);
  free(dt);
  t->data = NULL;
}
