#define MF_LOG_MODULE "router"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "node/router_internal.h"
#include "node/data_router.h"

mf_err_t mf_ptr_list_add(mf_ptr_list_t *l, void *item) {
  if (l->count == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    void **items = realloc(l->items, cap * sizeof *items);
    if (!items) return MF_ERR_NO_MEMORY;
    l->items = items;
    l->cap = cap;
  }
  l->items[l->count++] = item;
  return MF_OK;
}

void mf_ptr_list_remove(mf_ptr_list_t *l, void *item) {
  for (size_t i = 0; i < l->count; i++) {
    if (l->items[i] == item) {
      memmove(&l->items[i], &l->items[i + 1], (l->count - i - 1) * sizeof *l->items);
      l->count--;
      return;
    }
  }
}

void mf_ptr_list_free(mf_ptr_list_t *l) {
  free(l->items);
  memset(l, 0, sizeof *l);
}

void mf_router_emit(mf_router_t *r, const char *event, const char *target, json_t *data) {
  if (r->on_event)
    r->on_event(r->ud, event, target, data);
  else
    json_decref(data);
}


mf_err_t mf_producer_observe_audio_level(mf_producer_t *p, bool on) {
  if (p->kind != MF_MEDIA_KIND_AUDIO) return MF_ERR_UNSUPPORTED;
  if (on) {
    p->audio_level.observers++;
  } else if (p->audio_level.observers > 0 && --p->audio_level.observers == 0) {
    mf_audio_level_summary_t drop;
    mf_audio_level_take(&p->audio_level, &drop);
  }
  return MF_OK;
}

void mf_producer_take_audio_level(mf_producer_t *p, mf_audio_level_summary_t *out) {
  mf_audio_level_take(&p->audio_level, out);
}

const char *mf_router_id(const mf_router_t *r) { return r->id; }
const mf_rtp_capabilities_t *mf_router_rtp_capabilities(const mf_router_t *r) { return &r->caps; }
mf_webrtc_transport_t *mf_router_transport_webrtc(mf_router_transport_t *t) { return t->webrtc; }
const char *mf_router_transport_id(const mf_router_transport_t *t) {
  if (!t->webrtc) return "pipe";
  return mf_webrtc_transport_id(t->webrtc);
}

static char *mf_router_key(const char *id, char key[MF_ID_LEN + 1]) {
  memset(key, 0, MF_ID_LEN + 1);
  snprintf(key, MF_ID_LEN + 1, "%s", id ? id : "");
  return key;
}

mf_router_transport_t *mf_router_find_transport(mf_router_t *r, const char *id) {
  char key[MF_ID_LEN + 1];
  return mf_hashmap_get(r->transports, mf_router_key(id, key));
}
mf_producer_t *mf_router_find_producer(mf_router_t *r, const char *id) {
  char key[MF_ID_LEN + 1];
  return mf_hashmap_get(r->producers, mf_router_key(id, key));
}
mf_consumer_t *mf_router_find_consumer(mf_router_t *r, const char *id) {
  char key[MF_ID_LEN + 1];
  return mf_hashmap_get(r->consumers, mf_router_key(id, key));
}

void mf_router_transport_send_rtcp(mf_router_transport_t *t, const uint8_t *data, size_t len) {
  if (!t->webrtc) return; /* the pipe transport: feedback crosses as events, not RTCP */
  if (mf_webrtc_transport_state(t->webrtc) != MF_TRANSPORT_STATE_CONNECTED) return;
  mf_buf_t *b = mf_bufpool_get(mf_rtc_server_pool(t->router->rtc));
  if (!b) return;
  if (len + MF_SRTP_MAX_TRAILER <= b->cap) {
    memcpy(b->data, data, len);
    b->len = (uint32_t)len;
    mf_webrtc_transport_send_rtcp(t->webrtc, b);
  }
  mf_buf_unref(b);
}

static void mf_router_on_rtcp(void *ud, mf_webrtc_transport_t *wt, mf_buf_t *buf) {
  mf_router_transport_t *t = ud;
  uint64_t now = uv_now(t->router->timer.loop);
  mf_rtcp_iter_t it;
  mf_rtcp_header_t h;
  mf_rtcp_iter_init(&it, buf->data, buf->len);
  while (mf_rtcp_iter_next(&it, &h) == MF_OK) {
    if (h.type == MF_RTCP_SR) {
      mf_rtcp_sr_t sr;
      if (mf_rtcp_parse_sr(&h, &sr) != MF_OK) continue;
      mf_producer_on_sr(t, &sr, now);
      for (unsigned i = 0; i < sr.report_count; i++) {
        mf_consumer_t *c = mf_hashmap_get(t->consumer_by_ssrc, &sr.reports[i].ssrc);
        if (c) mf_consumer_on_report(c, &sr.reports[i], now);
      }
    } else if (h.type == MF_RTCP_RR) {
      mf_rtcp_rr_t rr;
      if (mf_rtcp_parse_rr(&h, &rr) != MF_OK) continue;
      for (unsigned i = 0; i < rr.report_count; i++) {
        mf_consumer_t *c = mf_hashmap_get(t->consumer_by_ssrc, &rr.reports[i].ssrc);
        if (c) mf_consumer_on_report(c, &rr.reports[i], now);
      }
    } else if (h.type == MF_RTCP_RTPFB && h.count == 1) {
      mf_rtcp_nack_t nack;
      if (mf_rtcp_parse_nack(&h, &nack) != MF_OK) continue;
      mf_consumer_t *c = mf_hashmap_get(t->consumer_by_ssrc, &nack.media_ssrc);
      if (c) mf_consumer_on_nack(c, &nack, now);
    } else if (h.type == MF_RTCP_PSFB && h.count == 1) {
      mf_rtcp_pli_t pli;
      if (mf_rtcp_parse_pli(&h, &pli) != MF_OK) continue;
      mf_consumer_t *c = mf_hashmap_get(t->consumer_by_ssrc, &pli.media_ssrc);
      if (c) mf_consumer_on_keyframe_request(c, false, now);
    } else if (h.type == MF_RTCP_PSFB && h.count == 4) {
      mf_rtcp_fir_t fir;
      if (mf_rtcp_parse_fir(&h, &fir) != MF_OK) continue;
      for (size_t i = 0; i < fir.count; i++) {
        mf_rtcp_fir_entry_t e = mf_rtcp_fir_get(&fir, i);
        mf_consumer_t *c = mf_hashmap_get(t->consumer_by_ssrc, &e.ssrc);
        if (c) mf_consumer_on_keyframe_request(c, true, now);
      }
    } else if (h.type == MF_RTCP_RTPFB && h.count == MF_RTCP_RTPFB_TWCC) {
      if (t->send_bwe) mf_send_bwe_on_feedback(t->send_bwe, &h); /* downstream estimate */
    }
    /* SDES, BYE and REMB from subscribers need no action (transport-cc drives the
     * downstream estimate). */
  }
}

/* bwe: TWCC/REMB feedback leaves through the transport's RTCP path. */
static void mf_router_bwe_send(void *ud, const uint8_t *data, size_t len) {
  mf_router_transport_send_rtcp(ud, data, len);
}

static void mf_router_on_rtp(void *ud, mf_webrtc_transport_t *wt, mf_buf_t *buf) {
  mf_router_transport_t *t = ud;
  if (t->feedback) /* bwe: record the arrival before the producer may rewrite the packet */
    mf_transport_feedback_on_rtp(t->feedback, buf->data, buf->len, mf_clock_now_us(),
                                 t->rtcp_ssrc, mf_router_bwe_send, t);
  mf_producer_on_rtp(t, buf, uv_now(t->router->timer.loop));
}

static void mf_router_on_ice(void *ud, mf_webrtc_transport_t *wt, mf_ice_state_t s) {
  mf_router_transport_t *t = ud;
  mf_router_emit(t->router, "icestatechange", mf_webrtc_transport_id(wt),
                 json_pack("{s:s}", "iceState", mf_ice_state_name(s)));
}

static void mf_router_on_dtls(void *ud, mf_webrtc_transport_t *wt, mf_dtls_state_t s) {
  mf_router_transport_t *t = ud;
  mf_router_emit(t->router, "dtlsstatechange", mf_webrtc_transport_id(wt),
                 json_pack("{s:s}", "dtlsState", mf_dtls_state_name(s)));
}

static const mf_webrtc_transport_callbacks_t mf_router_transport_cb = {
    .ice_state = mf_router_on_ice,
    .dtls_state = mf_router_on_dtls,
    .rtp = mf_router_on_rtp,
    .rtcp = mf_router_on_rtcp,
};

/* A router transport: a WebRTC one or a PipeTransport to another node (both indexed by
 * id), or the router's ring transport (webrtc NULL, holding producers piped from other
 * workers of this node; not visible to clients). */
typedef enum { TRANSPORT_WEBRTC, TRANSPORT_PIPE_PLAIN, TRANSPORT_PIPE_SRTP, TRANSPORT_RING } transport_kind_t;

static mf_err_t mf_router_transport_open(mf_router_t *r, transport_kind_t kind,
                                         mf_router_transport_t **out) {
  mf_router_transport_t *t = calloc(1, sizeof *t);
  if (!t) return MF_ERR_NO_MEMORY;
  t->router = r;
  t->rtcp_ssrc = mf_ortc_random_ssrc();
  mf_err_t e = mf_hashmap_create(sizeof(uint32_t), 16, &t->by_ssrc);
  if (!e) e = mf_hashmap_create(sizeof(uint32_t), 16, &t->consumer_by_ssrc);
  if (!e && kind == TRANSPORT_WEBRTC)
    e = mf_webrtc_transport_create(r->rtc, &mf_router_transport_cb, t, &t->webrtc);
  else if (!e && kind != TRANSPORT_RING)
    e = mf_webrtc_transport_create_pipe(r->rtc, kind == TRANSPORT_PIPE_SRTP,
                                        &mf_router_transport_cb, t, &t->webrtc);
  if (!e && t->webrtc) {
    char key[MF_ID_LEN + 1];
    e = mf_hashmap_put(r->transports, mf_router_key(mf_webrtc_transport_id(t->webrtc), key), t);
  }
  if (!e) e = mf_ptr_list_add(&r->transport_list, t);
  if (e) {
    if (t->webrtc) {
      char key[MF_ID_LEN + 1];
      mf_hashmap_remove(r->transports, mf_router_key(mf_webrtc_transport_id(t->webrtc), key));
      mf_webrtc_transport_close(t->webrtc);
    }
    mf_hashmap_destroy(t->by_ssrc);
    mf_hashmap_destroy(t->consumer_by_ssrc);
    free(t);
    return e;
  }
  *out = t;
  return MF_OK;
}

mf_err_t mf_router_create_webrtc_transport(mf_router_t *r, mf_router_transport_t **out) {
  return mf_router_transport_open(r, TRANSPORT_WEBRTC, out);
}

mf_err_t mf_router_create_pipe_transport(mf_router_t *r, bool srtp, mf_router_transport_t **out) {
  return mf_router_transport_open(r, srtp ? TRANSPORT_PIPE_SRTP : TRANSPORT_PIPE_PLAIN, out);
}

bool mf_router_transport_is_pipe(const mf_router_transport_t *t) {
  return t->webrtc && mf_webrtc_transport_is_pipe(t->webrtc);
}

mf_err_t mf_router_create_plain_transport(mf_router_t *r, const mf_plain_options_t *options,
                                          char *err, size_t errsz, mf_router_transport_t **out) {
  mf_err_t e = mf_router_transport_open(r, TRANSPORT_PIPE_PLAIN, out);
  if (e) return e;
  e = mf_plain_transport_attach((*out)->webrtc, r->rtc, options, err, errsz);
  if (e) {
    mf_router_transport_close(*out);
    *out = NULL;
  }
  return e;
}

void mf_router_transport_close(mf_router_transport_t *t) {
  mf_router_t *r = t->router;
  mf_data_transport_close(t); /* DataChannels (sctp helper) */
  while (t->consumers.count > 0) mf_consumer_destroy(t->consumers.items[t->consumers.count - 1], true);
  while (t->producers.count > 0) mf_producer_close(t->producers.items[t->producers.count - 1]);
  if (t->webrtc) {
    char key[MF_ID_LEN + 1];
    mf_router_key(mf_webrtc_transport_id(t->webrtc), key);
    mf_hashmap_remove(r->transports, key);
    mf_webrtc_transport_close(t->webrtc);
  }
  if (r->pipe_transport == t) r->pipe_transport = NULL;
  mf_ptr_list_remove(&r->transport_list, t);
  mf_hashmap_destroy(t->by_ssrc);
  mf_hashmap_destroy(t->consumer_by_ssrc);
  mf_transport_feedback_destroy(t->feedback); /* bwe */
  mf_send_bwe_destroy(t->send_bwe);
  mf_ptr_list_free(&t->producers);
  mf_ptr_list_free(&t->consumers);
  free(t);
}

mf_err_t mf_router_produce(mf_router_transport_t *t, mf_media_kind_t kind,
                           mf_rtp_parameters_t *params, bool paused, char *err, size_t errsz,
                           mf_producer_t **out) {
  if (!t->webrtc) {
    snprintf(err, errsz, "the pipe transport takes no client producers");
    return MF_ERR_STATE;
  }
  mf_err_t e = mf_producer_create(t, NULL, kind, params, paused, err, errsz, out);
  /* bwe: transport-cc / goog-remb negotiated → feedback to the publisher (best effort) */
  if (e == MF_OK && mf_transport_feedback_attach(&t->feedback, &(*out)->params) != MF_OK)
    MF_LOG_WARN("transport %s: no memory for congestion feedback", mf_router_transport_id(t));
  return e;
}

mf_err_t mf_router_pipe_transport_produce(mf_router_transport_t *t, const char *id,
                                          mf_media_kind_t kind, mf_rtp_parameters_t *params,
                                          bool paused, char *err, size_t errsz,
                                          mf_producer_t **out) {
  if (!mf_router_transport_is_pipe(t)) {
    snprintf(err, errsz, "transport %s is not a pipe transport", mf_router_transport_id(t));
    return MF_ERR_STATE;
  }
  if (!id || !mf_id_is_valid(id)) {
    snprintf(err, errsz, "a piped producer needs its origin's id");
    return MF_ERR_INVALID_ARG;
  }
  if (mf_router_find_producer(t->router, id)) {
    snprintf(err, errsz, "producer %s already exists on this worker", id);
    return MF_ERR_EXISTS;
  }
  return mf_producer_create(t, id, kind, params, paused, err, errsz, out);
}

void mf_router_set_pipe_hub(mf_router_t *r, mf_pipe_hub_t *hub, uint32_t worker) {
  r->hub = hub;
  r->worker = worker;
}

mf_err_t mf_router_pipe_produce(mf_router_t *r, const char *id, mf_media_kind_t kind,
                                mf_rtp_parameters_t *params, bool paused, uint32_t pipe_id,
                                char *err, size_t errsz, mf_producer_t **out) {
  if (!r->hub || pipe_id == 0) {
    snprintf(err, errsz, "router %s has no pipe hub", r->id);
    return MF_ERR_STATE;
  }
  if (!id || !mf_id_is_valid(id)) {
    snprintf(err, errsz, "a piped producer needs its origin's id");
    return MF_ERR_INVALID_ARG;
  }
  if (mf_router_find_producer(r, id)) {
    snprintf(err, errsz, "producer %s already exists on this worker", id);
    return MF_ERR_EXISTS;
  }
  mf_err_t e = MF_OK;
  if (!r->pipe_transport) e = mf_router_transport_open(r, TRANSPORT_RING, &r->pipe_transport);
  if (e) return e;
  mf_producer_t *p = NULL;
  e = mf_producer_create(r->pipe_transport, id, kind, params, paused, err, errsz, &p);
  if (e) return e;
  p->pipe_in = pipe_id;
  e = mf_pipe_hub_bind(r->hub, r->worker, pipe_id, mf_producer_on_pipe_packet, p);
  if (e) {
    snprintf(err, errsz, "cannot bind pipe %u: %s", pipe_id, mf_strerror(e));
    p->pipe_in = 0;
    mf_producer_close(p);
    return e;
  }
  *out = p;
  return MF_OK;
}

bool mf_router_can_consume(mf_router_t *r, const char *producer_id,
                           const mf_rtp_capabilities_t *caps) {
  mf_producer_t *p = mf_router_find_producer(r, producer_id);
  return p && mf_ortc_can_consume(&p->consumable, caps);
}

mf_err_t mf_router_consume(mf_router_transport_t *t, const char *producer_id,
                           const mf_rtp_capabilities_t *caps, bool paused, char *err,
                           size_t errsz, mf_consumer_t **out) {
  mf_producer_t *p = mf_router_find_producer(t->router, producer_id);
  if (!p) {
    snprintf(err, errsz, "producer %s not found", producer_id ? producer_id : "(null)");
    return MF_ERR_NOT_FOUND;
  }
  return mf_consumer_create(t, p, caps, paused, err, errsz, out);
}

static void mf_router_send_receiver_reports(mf_router_transport_t *t, uint64_t now) {
  if (t->producers.count == 0) return;
  mf_rtcp_rr_t rr = {.ssrc = t->rtcp_ssrc};
  for (size_t i = 0; i < t->producers.count; i++)
    mf_producer_report_blocks(t->producers.items[i], now, &rr);
  if (rr.report_count == 0) return;
  uint8_t buf[1024];
  mf_rtcp_compound_t c;
  mf_rtcp_compound_init(&c, buf, sizeof buf);
  mf_rtcp_compound_add_rr(&c, &rr);
  mf_rtcp_compound_add_sdes_cname(&c, t->rtcp_ssrc, (const uint8_t *)"mafalda", 7);
  mf_transport_feedback_add_remb(t->feedback, &c, &rr, now); /* bwe: REMB if negotiated */
  if (c.err == MF_OK) mf_router_transport_send_rtcp(t, buf, c.len);
}

static void mf_router_on_timer(uv_timer_t *timer) {
  mf_router_t *r = timer->data;
  uint64_t now = uv_now(timer->loop);
  bool rtcp_due = now - r->last_rtcp_ms >= MF_ROUTER_RTCP_MS;
  if (rtcp_due) r->last_rtcp_ms = now;
  for (size_t i = 0; i < r->transport_list.count; i++) {
    mf_router_transport_t *t = r->transport_list.items[i];
    for (size_t k = 0; k < t->producers.count; k++) mf_producer_tick(t->producers.items[k], now);
    for (size_t k = 0; k < t->consumers.count; k++) mf_consumer_tick(t->consumers.items[k], now);
    mf_send_bwe_tick(t, now);
    if (t->feedback) /* bwe: TWCC feedback every ~100 ms */
      mf_transport_feedback_tick(t->feedback, t->rtcp_ssrc, mf_clock_now_us(), mf_router_bwe_send, t);
    if (!rtcp_due) continue;
    for (size_t k = 0; k < t->producers.count; k++) mf_producer_update_scores(t->producers.items[k], now);
    mf_router_send_receiver_reports(t, now);
    for (size_t k = 0; k < t->consumers.count; k++) mf_consumer_send_sr(t->consumers.items[k], now);
  }
}

mf_err_t mf_router_create(mf_rtc_server_t *rtc, const char *id,
                          const mf_rtp_codec_capability_t *media_codecs, size_t codec_count,
                          mf_router_event_fn on_event, void *ud, char *err, size_t errsz,
                          mf_router_t **out) {
  if (id && (!id[0] || strlen(id) > MF_ID_LEN)) {
    snprintf(err, errsz, "router id must be 1..%d bytes", MF_ID_LEN);
    return MF_ERR_INVALID_ARG;
  }
  if (!media_codecs || codec_count == 0) media_codecs = mf_ortc_default_media_codecs(&codec_count);
  mf_router_t *r = calloc(1, sizeof *r);
  if (!r) return MF_ERR_NO_MEMORY;
  r->rtc = rtc;
  r->on_event = on_event;
  r->ud = ud;
  mf_err_t e = mf_ortc_generate_router_rtp_capabilities(media_codecs, codec_count, &r->caps, err, errsz);
  if (!e && id)
    snprintf(r->id, sizeof r->id, "%s", id); /* a shard of a logical router keeps its id */
  else if (!e)
    e = mf_id_generate(r->id);
  if (!e) e = mf_hashmap_create(MF_ID_LEN + 1, 16, &r->transports);
  if (!e) e = mf_hashmap_create(MF_ID_LEN + 1, 16, &r->producers);
  if (!e) e = mf_hashmap_create(MF_ID_LEN + 1, 16, &r->consumers);
  if (e) {
    mf_hashmap_destroy(r->transports);
    mf_hashmap_destroy(r->producers);
    mf_hashmap_destroy(r->consumers);
    free(r);
    return e;
  }
  uv_timer_init(mf_rtc_server_loop(rtc), &r->timer);
  r->timer.data = r;
  r->last_rtcp_ms = uv_now(r->timer.loop);
  uv_timer_start(&r->timer, mf_router_on_timer, MF_ROUTER_TICK_MS, MF_ROUTER_TICK_MS);
  MF_LOG_INFO("router %s created (%zu codecs)", r->id, r->caps.codec_count);
  *out = r;
  return MF_OK;
}

static void mf_router_on_timer_closed(uv_handle_t *h) {
  mf_router_t *r = h->data;
  mf_data_router_free(r->data); /* DataChannels (sctp helper) */
  mf_hashmap_destroy(r->transports);
  mf_hashmap_destroy(r->producers);
  mf_hashmap_destroy(r->consumers);
  mf_ptr_list_free(&r->transport_list);
  free(r);
}

void mf_router_close(mf_router_t *r) {
  MF_LOG_INFO("router %s closing (%zu transports)", r->id, r->transport_list.count);
  while (r->transport_list.count > 0) {
    mf_router_transport_t *t = r->transport_list.items[r->transport_list.count - 1];
    if (t->webrtc) mf_router_emit(r, "transportclose", mf_webrtc_transport_id(t->webrtc), NULL);
    mf_router_transport_close(t);
  }
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, mf_router_on_timer_closed);
}
