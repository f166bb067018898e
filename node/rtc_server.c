#define MF_LOG_MODULE "rtc"
#include "rtc_server.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hashmap.h"
#include "common/log.h"
#include "node/rtp/rtp.h"
#include "node/ice.h"
#include "node/webrtc_transport.h"

/* Ufrags we generate are MF_ICE_UFRAG_LEN chars; a longer one in USERNAME is never ours. */
#define MF_RTC_UFRAG_KEY 32

typedef struct {
  uint16_t family;
  uint16_t port; /* network order, as in the sockaddr */
  uint8_t addr[16];
} mf_rtc_tuple_key_t;

struct mf_rtc_server {
  uv_loop_t *loop;
  mf_udp_socket_t *socket;
  mf_bufpool_t *pool;
  const mf_dtls_cert_t *cert;
  mf_dtls_context_t *dtls;
  mf_hashmap_t *by_ufrag;
  mf_hashmap_t *by_tuple;
  uv_timer_t tick;
  char announced_ip[MF_RTC_ANNOUNCED_IP_MAX];
  char listen_ip[MF_RTC_ANNOUNCED_IP_MAX];
  mf_rtc_server_stats_t stats;
  int pending_closes;
  void (*on_closed)(void *ud);
  void *closed_ud;
};

static bool mf_rtc_tuple_key(const struct sockaddr *a, mf_rtc_tuple_key_t *k) {
  memset(k, 0, sizeof *k);
  k->family = a->sa_family;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)a;
    k->port = in->sin_port;
    memcpy(k->addr, &in->sin_addr, 4);
    return true;
  }
  if (a->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
    k->port = in6->sin6_port;
    memcpy(k->addr, &in6->sin6_addr, 16);
    return true;
  }
  return false;
}

static bool mf_rtc_ufrag_key(const char *ufrag, char key[MF_RTC_UFRAG_KEY]) {
  size_t n = strlen(ufrag);
  if (n == 0 || n > MF_RTC_UFRAG_KEY) return false;
  memset(key, 0, MF_RTC_UFRAG_KEY);
  memcpy(key, ufrag, n);
  return true;
}

static mf_webrtc_transport_t *mf_rtc_by_tuple(mf_rtc_server_t *s, const struct sockaddr *from) {
  mf_rtc_tuple_key_t k;
  if (!mf_rtc_tuple_key(from, &k)) return NULL;
  return mf_hashmap_get(s->by_tuple, &k);
}

static void mf_rtc_on_stun(mf_rtc_server_t *s, mf_udp_datagram_t *d) {
  s->stats.stun_in++;
  char ufrag[MF_ICE_CRED_MAX + 1];
  if (!mf_ice_is_stun(d->buf->data, d->buf->len) ||
      mf_ice_peek_local_ufrag(d->buf->data, d->buf->len, ufrag, sizeof ufrag) != MF_OK) {
    s->stats.dropped_malformed++;
    return;
  }
  char key[MF_RTC_UFRAG_KEY];
  mf_webrtc_transport_t *t = mf_rtc_ufrag_key(ufrag, key) ? mf_hashmap_get(s->by_ufrag, key) : NULL;
  if (!t) {
    s->stats.dropped_unknown_ufrag++;
    MF_LOG_DEBUG("STUN for unknown ufrag '%s'", ufrag);
    return;
  }
  mf_webrtc_transport_handle_stun(t, d->buf->data, d->buf->len, (struct sockaddr *)&d->from);
}

static void mf_rtc_on_datagrams(void *ud, mf_udp_datagram_t *dgrams, unsigned count) {
  mf_rtc_server_t *s = ud;
  for (unsigned i = 0; i < count; i++) {
    mf_udp_datagram_t *d = &dgrams[i];
    uint8_t first = d->buf->data[0];
    if (first <= 3) {
      mf_rtc_on_stun(s, d);
    } else if (first >= 20 && first <= 63) {
      s->stats.dtls_in++;
      mf_webrtc_transport_t *t = mf_rtc_by_tuple(s, (struct sockaddr *)&d->from);
      if (t)
        mf_webrtc_transport_handle_dtls(t, d->buf->data, d->buf->len);
      else
        s->stats.dropped_unknown_tuple++;
    } else if (first >= 128 && first <= 191) {
      if (mf_rtp_is_rtcp(d->buf->data, d->buf->len))
        s->stats.rtcp_in++;
      else
        s->stats.rtp_in++;
      mf_webrtc_transport_t *t = mf_rtc_by_tuple(s, (struct sockaddr *)&d->from);
      if (t)
        mf_webrtc_transport_handle_srtp(t, d->buf);
      else
        s->stats.dropped_unknown_tuple++;
    } else {
      s->stats.dropped_unknown_type++;
    }
    mf_buf_unref(d->buf);
  }
}

typedef struct {
  mf_webrtc_transport_t **list;
  size_t count;
} mf_rtc_collect_t;

static void mf_rtc_collect(const void *key, void *value, void *ud) {
  mf_rtc_collect_t *c = ud;
  c->list[c->count++] = value;
}

/* Snapshot of the transports, so callbacks may close transports while we walk them. */
static size_t mf_rtc_snapshot(mf_rtc_server_t *s, mf_webrtc_transport_t ***out) {
  size_t n = mf_hashmap_count(s->by_ufrag);
  *out = NULL;
  if (n == 0) return 0;
  mf_rtc_collect_t c = {.list = malloc(n * sizeof *c.list), .count = 0};
  if (!c.list) return 0;
  mf_hashmap_foreach(s->by_ufrag, mf_rtc_collect, &c);
  *out = c.list;
  return c.count;
}

void mf_rtc_server_tick(mf_rtc_server_t *s, uint64_t now_ms) {
  mf_webrtc_transport_t **list;
  size_t n = mf_rtc_snapshot(s, &list);
  for (size_t i = 0; i < n; i++) mf_webrtc_transport_tick(list[i], now_ms);
  free(list);
}

static void mf_rtc_on_tick(uv_timer_t *timer) {
  mf_rtc_server_t *s = timer->data;
  mf_rtc_server_tick(s, uv_now(s->loop));
}

mf_err_t mf_rtc_server_create(uv_loop_t *loop, const mf_rtc_server_options_t *o,
                              mf_rtc_server_t **out) {
  if (!o->announced_ip || strlen(o->announced_ip) >= MF_RTC_ANNOUNCED_IP_MAX)
    return MF_ERR_INVALID_ARG;
  mf_rtc_server_t *s = calloc(1, sizeof *s);
  if (!s) return MF_ERR_NO_MEMORY;
  s->loop = loop;
  s->pool = o->pool;
  s->cert = o->cert;
  snprintf(s->announced_ip, sizeof s->announced_ip, "%s", o->announced_ip);
  snprintf(s->listen_ip, sizeof s->listen_ip, "%s", o->listen_ip ? o->listen_ip : "0.0.0.0");
  mf_dtls_context_options_t dopts = {.initial_timeout_ms = o->dtls_initial_timeout_ms,
                                     .max_timeout_ms = o->dtls_max_timeout_ms};
  mf_err_t err = mf_dtls_context_create_ex(o->cert, &dopts, &s->dtls);
  if (!err) err = mf_hashmap_create(MF_RTC_UFRAG_KEY, 64, &s->by_ufrag);
  if (!err) err = mf_hashmap_create(sizeof(mf_rtc_tuple_key_t), 64, &s->by_tuple);
  if (!err)
    err = mf_udp_socket_open(loop, o->pool, o->listen_ip, o->port, mf_rtc_on_datagrams, s,
                             &s->socket);
  if (err) {
    mf_hashmap_destroy(s->by_tuple);
    mf_hashmap_destroy(s->by_ufrag);
    mf_dtls_context_free(s->dtls);
    free(s);
    return err;
  }
  uv_timer_init(loop, &s->tick);
  s->tick.data = s;
  uv_timer_start(&s->tick, mf_rtc_on_tick, MF_RTC_TICK_MS, MF_RTC_TICK_MS);
  *out = s;
  return MF_OK;
}

static void mf_rtc_finish_close(mf_rtc_server_t *s) {
  if (--s->pending_closes > 0) return;
  void (*cb)(void *) = s->on_closed;
  void *ud = s->closed_ud;
  mf_hashmap_destroy(s->by_tuple);
  mf_hashmap_destroy(s->by_ufrag);
  mf_dtls_context_free(s->dtls);
  free(s);
  if (cb) cb(ud);
}

static void mf_rtc_on_socket_closed(void *ud) { mf_rtc_finish_close(ud); }
static void mf_rtc_on_timer_closed(uv_handle_t *h) { mf_rtc_finish_close(h->data); }

void mf_rtc_server_close(mf_rtc_server_t *s, void (*on_closed)(void *ud), void *ud) {
  /* Transports belong to their creators (routers), which close them first. */
  if (mf_hashmap_count(s->by_ufrag) > 0)
    MF_LOG_ERROR("closing with %zu transports still open (their owners leaked them)",
                 mf_hashmap_count(s->by_ufrag));
  s->on_closed = on_closed;
  s->closed_ud = ud;
  s->pending_closes = 2;
  uv_timer_stop(&s->tick);
  uv_close((uv_handle_t *)&s->tick, mf_rtc_on_timer_closed);
  mf_udp_socket_close(s->socket, mf_rtc_on_socket_closed, s);
}

uint16_t mf_rtc_server_port(const mf_rtc_server_t *s) { return mf_udp_socket_port(s->socket); }
const char *mf_rtc_server_announced_ip(const mf_rtc_server_t *s) { return s->announced_ip; }
const char *mf_rtc_server_listen_ip(const mf_rtc_server_t *s) { return s->listen_ip; }

void mf_rtc_server_get_stats(const mf_rtc_server_t *s, mf_rtc_server_stats_t *out) {
  *out = s->stats;
  out->transports = (uint32_t)mf_hashmap_count(s->by_ufrag);
}

uv_loop_t *mf_rtc_server_loop(mf_rtc_server_t *s) { return s->loop; }
mf_bufpool_t *mf_rtc_server_pool(mf_rtc_server_t *s) { return s->pool; }
mf_udp_socket_t *mf_rtc_server_socket(mf_rtc_server_t *s) { return s->socket; }
mf_dtls_context_t *mf_rtc_server_dtls_context(mf_rtc_server_t *s) { return s->dtls; }
const mf_dtls_cert_t *mf_rtc_server_cert(const mf_rtc_server_t *s) { return s->cert; }

mf_err_t mf_rtc_server_add_ufrag(mf_rtc_server_t *s, const char *ufrag,
                                 mf_webrtc_transport_t *t) {
  char key[MF_RTC_UFRAG_KEY];
  if (!mf_rtc_ufrag_key(ufrag, key)) return MF_ERR_INVALID_ARG;
  return mf_hashmap_put(s->by_ufrag, key, t);
}

void mf_rtc_server_remove_ufrag(mf_rtc_server_t *s, const char *ufrag) {
  char key[MF_RTC_UFRAG_KEY];
  if (mf_rtc_ufrag_key(ufrag, key)) mf_hashmap_remove(s->by_ufrag, key);
}

mf_err_t mf_rtc_server_add_tuple(mf_rtc_server_t *s, const struct sockaddr *addr,
                                 mf_webrtc_transport_t *t) {
  mf_rtc_tuple_key_t k;
  if (!mf_rtc_tuple_key(addr, &k)) return MF_ERR_INVALID_ARG;
  mf_webrtc_transport_t *owner = mf_hashmap_get(s->by_tuple, &k);
  if (owner == t) return MF_OK;
  if (owner) {
    /* One remote address can feed one transport: the peer authenticated it for another. */
    MF_LOG_WARN("tuple already used by transport %s; transport %s may not take it",
                mf_webrtc_transport_id(owner), mf_webrtc_transport_id(t));
    return MF_ERR_EXISTS;
  }
  return mf_hashmap_put(s->by_tuple, &k, t);
}

void mf_rtc_server_remove_tuple(mf_rtc_server_t *s, const struct sockaddr *addr,
                                mf_webrtc_transport_t *t) {
  mf_rtc_tuple_key_t k;
  if (!mf_rtc_tuple_key(addr, &k)) return;
  if (mf_hashmap_get(s->by_tuple, &k) == t) mf_hashmap_remove(s->by_tuple, &k);
}
