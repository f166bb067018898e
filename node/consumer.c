#define MF_LOG_MODULE "consumer"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "node/router_internal.h"

const char *mf_consumer_id(const mf_consumer_t *c) { return c->id; }
bool mf_consumer_paused(const mf_consumer_t *c) { return c->paused; }
bool mf_consumer_producer_paused(const mf_consumer_t *c) { return c->producer_paused; }
const mf_rtp_parameters_t *mf_consumer_rtp_parameters(const mf_consumer_t *c) { return &c->params; }
mf_producer_t *mf_consumer_producer(const mf_consumer_t *c) { return c->producer; }

static uint8_t mf_consumer_ext_id(const mf_rtp_parameters_t *params, const char *uri) {
  for (size_t i = 0; i < params->header_extension_count; i++)
    if (strcmp(params->header_extensions[i].uri, uri) == 0) return params->header_extensions[i].id;
  return 0;
}

static void mf_consumer_free(mf_consumer_t *c) {
  mf_rtp_rewriter_destroy(c->rewriter);
  mf_rtx_store_destroy(c->store);
  free(c);
}

static mf_err_t mf_consumer_setup(mf_consumer_t *c, char *err, size_t errsz) {
  const mf_rtp_parameters_t *pr = &c->params;
  memset(c->rtx_pt_for, MF_PT_NONE, sizeof c->rtx_pt_for);
  for (size_t i = 0; i < pr->codec_count; i++) {
    const mf_rtp_codec_parameters_t *codec = &pr->codecs[i];
    if (mf_ortc_is_rtx_mime(codec->mime_type)) {
      int64_t apt;
      if (mf_rtp_params_get_int(&codec->parameters, "apt", &apt) && apt >= 0 && apt < 128)
        c->rtx_pt_for[apt] = codec->payload_type;
      continue;
    }
    c->pt_ok[codec->payload_type] = true;
    if (!c->clock_rate) c->clock_rate = codec->clock_rate;
  }
  if (pr->encoding_count == 0 || !pr->encodings[0].has_ssrc || !c->clock_rate) {
    snprintf(err, errsz, "consumer rtpParameters have no media codec or encoding");
    return MF_ERR_INTERNAL;
  }
  c->ssrc = pr->encodings[0].ssrc;
  c->has_rtx = pr->encodings[0].has_rtx;
  c->rtx_ssrc = pr->encodings[0].rtx_ssrc;
  c->ext_mid = mf_consumer_ext_id(pr, MF_RTP_EXT_MID);
  c->ext_abs_send_time = mf_consumer_ext_id(pr, MF_RTP_EXT_ABS_SEND_TIME);
  c->ext_audio_level = mf_consumer_ext_id(pr, MF_RTP_EXT_AUDIO_LEVEL);
  c->ext_orientation = mf_consumer_ext_id(pr, MF_RTP_EXT_VIDEO_ORIENTATION);
  c->ext_toffset = mf_consumer_ext_id(pr, MF_RTP_EXT_TOFFSET);
  uint32_t r = mf_ortc_random_ssrc();
  mf_rtp_rewriter_config_t rc = {.is_video = c->kind == MF_MEDIA_KIND_VIDEO,
                                 .clock_rate = c->clock_rate,
                                 .initial_seq = (uint16_t)r,
                                 .initial_ts = mf_ortc_random_ssrc()};
  c->rtx_seq = (uint16_t)(r >> 16);
  mf_err_t e = mf_rtp_rewriter_create(&rc, &c->rewriter);
  if (!e)
    e = mf_rtx_store_create(MF_RTX_STORE_DEFAULT_CAPACITY,
                            c->kind == MF_MEDIA_KIND_VIDEO ? MF_RTX_STORE_MAX_AGE_VIDEO_MS
                                                           : MF_RTX_STORE_MAX_AGE_AUDIO_MS,
                            &c->store);
  return e;
}

mf_err_t mf_consumer_create(mf_router_transport_t *t, mf_producer_t *p,
                            const mf_rtp_capabilities_t *caps, bool paused, char *err,
                            size_t errsz, mf_consumer_t **out) {
  if (!mf_ortc_can_consume(&p->consumable, caps)) {
    snprintf(err, errsz, "cannot consume producer %s: no codec in rtpCapabilities matches it",
             p->id);
    return MF_ERR_UNSUPPORTED;
  }
  mf_consumer_t *c = calloc(1, sizeof *c);
  if (!c) return MF_ERR_NO_MEMORY;
  c->router = t->router;
  c->transport = t;
  c->producer = p;
  c->kind = p->kind;
  c->paused = paused;
  c->producer_paused = p->paused;
  c->score = 10;
  mf_err_t e = mf_id_generate(c->id);
  if (!e) e = mf_ortc_get_consumer_rtp_parameters(&p->consumable, caps, false, true, &c->params,
                                                  err, errsz);
  if (!e) {
    snprintf(c->params.mid, sizeof c->params.mid, "%u", t->next_mid++);
    e = mf_consumer_setup(c, err, errsz);
  }
  if (!e) e = mf_hashmap_put(t->consumer_by_ssrc, &c->ssrc, c);
  if (!e && c->has_rtx) e = mf_hashmap_put(t->consumer_by_ssrc, &c->rtx_ssrc, c);
  if (!e) e = mf_ptr_list_add(&t->consumers, c);
  if (!e) e = mf_ptr_list_add(&p->consumers, c);
  if (!e) e = mf_hashmap_put(c->router->consumers, c->id, c);
  if (e) {
    mf_ptr_list_remove(&p->consumers, c);
    mf_ptr_list_remove(&t->consumers, c);
    if (mf_hashmap_get(t->consumer_by_ssrc, &c->ssrc) == c) mf_hashmap_remove(t->consumer_by_ssrc, &c->ssrc);
    if (c->has_rtx && mf_hashmap_get(t->consumer_by_ssrc, &c->rtx_ssrc) == c)
      mf_hashmap_remove(t->consumer_by_ssrc, &c->rtx_ssrc);
    mf_consumer_free(c);
    return e;
  }
  MF_LOG_INFO("consumer %s of producer %s on transport %s (ssrc %u, mid %s%s)", c->id, p->id,
              mf_router_transport_id(t), c->ssrc, c->params.mid, paused ? ", paused" : "");
  if (!paused) mf_producer_request_keyframe(p, uv_now(t->router->timer.loop));
  *out = c;
  return MF_OK;
}

/* Builds the consumer's copy of an original (producer-side, plaintext) packet into a new
 * pool buffer, optionally wrapped as RTX, encrypts it and queues it for sending. */
static bool mf_consumer_send_copy(mf_consumer_t *c, const mf_rtp_packet_t *pkt, uint8_t router_pt,
                                  uint16_t seq, uint32_t ts, bool as_rtx) {
  mf_producer_t *p = c->producer;
  mf_buf_t *out = mf_bufpool_get(mf_rtc_server_pool(c->router->rtc));
  if (!out) return false;
  mf_rtp_ext_elem_t ext[5];
  size_t n = 0;
  if (c->ext_mid)
    ext[n++] = (mf_rtp_ext_elem_t){c->ext_mid, (uint8_t)strlen(c->params.mid),
                                   (const uint8_t *)c->params.mid};
  const struct {
    uint8_t from, to;
  } copies[] = {{p->ext_abs_send_time, c->ext_abs_send_time},
                {p->ext_audio_level, c->ext_audio_level},
                {p->ext_orientation, c->ext_orientation},
                {p->ext_toffset, c->ext_toffset}};
  for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++) {
    const uint8_t *v;
    size_t len;
    if (copies[i].from && copies[i].to && mf_rtp_get_extension(pkt, copies[i].from, &v, &len) &&
        len > 0 && len <= 16)
      ext[n++] = (mf_rtp_ext_elem_t){copies[i].to, (uint8_t)len, v};
  }
  mf_rtp_header_t h = {.marker = pkt->marker,
                       .payload_type = as_rtx ? c->rtx_pt_for[router_pt] : router_pt,
                       .sequence = as_rtx ? c->rtx_seq++ : seq,
                       .timestamp = ts,
                       .ssrc = as_rtx ? c->rtx_ssrc : c->ssrc,
                       .ext = ext,
                       .ext_count = n};
  size_t hl = 0;
  mf_err_t e = mf_rtp_write_header(out->data, out->cap, &h, &hl);
  size_t extra = as_rtx ? 2 : 0;
  if (e || hl + extra + pkt->payload_len + MF_SRTP_MAX_TRAILER > out->cap) {
    mf_buf_unref(out);
    return false;
  }
  if (as_rtx) {
    out->data[hl] = (uint8_t)(seq >> 8);
    out->data[hl + 1] = (uint8_t)seq;
  }
  memcpy(out->data + hl + extra, pkt->payload, pkt->payload_len);
  out->len = (uint32_t)(hl + extra + pkt->payload_len);
  uint32_t len = out->len;
  e = mf_webrtc_transport_send_rtp(c->transport->webrtc, out);
  mf_buf_unref(out);
  if (e) return false;
  if (as_rtx) {
    c->rtx_packets++;
    c->rtx_bytes += len;
  } else {
    c->packets++;
    c->bytes += len;
  }
  return true;
}

void mf_consumer_forward(mf_consumer_t *c, mf_buf_t *orig, const mf_rtp_packet_t *pkt,
                         uint8_t router_pt, bool keyframe, uint32_t mapped_ssrc,
                         uint64_t now_ms) {
  if (c->paused || c->producer_paused || !c->pt_ok[router_pt]) return;
  if (mf_webrtc_transport_state(c->transport->webrtc) != MF_TRANSPORT_STATE_CONNECTED) return;
  uint16_t seq;
  uint32_t ts;
  mf_rtp_rewrite_result_t r = mf_rtp_rewriter_rewrite(c->rewriter, mapped_ssrc, pkt->sequence,
                                                      pkt->timestamp, keyframe, now_ms, &seq, &ts);
  if (r == MF_RTP_REWRITE_NEED_KEYFRAME) {
    mf_producer_request_keyframe(c->producer, now_ms);
    return;
  }
  if (r != MF_RTP_REWRITE_SEND) return;
  if (!mf_consumer_send_copy(c, pkt, router_pt, seq, ts, false)) return;
  /* The store keeps the ORIGINAL plaintext buffer, shared by every consumer of the
   * producer; a retransmission rebuilds this consumer's copy from it. */
  mf_rtx_store_insert(c->store, orig, seq, ts, now_ms);
  c->last_sent_ms = now_ms;
  c->last_sent_ts = ts;
}

void mf_consumer_on_nack(mf_consumer_t *c, const mf_rtcp_nack_t *nack, uint64_t now_ms) {
  c->nacks_received++;
  for (size_t i = 0; i < nack->count; i++) {
    uint16_t seqs[17];
    size_t n = mf_rtcp_nack_expand(mf_rtcp_nack_get(nack, i), seqs);
    for (size_t k = 0; k < n; k++) {
      c->nack_seqs_received++;
      mf_rtx_item_t item;
      if (mf_rtx_store_resend(c->store, seqs[k], now_ms, c->rtt_ms, &item) != MF_RTX_RESEND_OK)
        continue;
      mf_rtp_packet_t pkt;
      if (mf_rtp_parse(item.buf->data, item.buf->len, &pkt) != MF_OK) continue;
      uint8_t router_pt = c->producer->pt_map[pkt.payload_type];
      if (router_pt == MF_PT_NONE) continue;
      bool as_rtx = c->has_rtx && c->rtx_pt_for[router_pt] != MF_PT_NONE;
      mf_consumer_send_copy(c, &pkt, router_pt, item.seq, item.ts, as_rtx);
    }
  }
}

void mf_consumer_on_keyframe_request(mf_consumer_t *c, bool fir, uint64_t now_ms) {
  if (fir)
    c->firs_received++;
  else
    c->plis_received++;
  if (c->kind == MF_MEDIA_KIND_VIDEO) mf_producer_request_keyframe(c->producer, now_ms);
}

void mf_consumer_on_report(mf_consumer_t *c, const mf_rtcp_report_block_t *rb, uint64_t now_ms) {
  c->fraction_lost = rb->fraction_lost;
  if (rb->lsr) {
    int64_t rtt = mf_rtp_rtt_from_report(rb->lsr, rb->dlsr, mf_clock_wall_ntp());
    if (rtt >= 0 && rtt < 10000) c->rtt_ms = (uint32_t)rtt;
  }
  /* Loss reported by the receiver maps linearly onto mediasoup's 0..10 score. */
  uint8_t score = (uint8_t)(10 - (rb->fraction_lost * 10 + 255) / 256);
  if (score != c->score) {
    c->score = score;
    mf_router_emit(c->router, "score", c->id,
                   json_pack("{s:i, s:i}", "score", score, "producerScore", 10));
  }
}

void mf_consumer_send_sr(mf_consumer_t *c, uint64_t now_ms) {
  if (c->packets == 0) return;
  mf_rtcp_sr_t sr = {.ssrc = c->ssrc,
                     .ntp = mf_clock_wall_ntp(),
                     .rtp_ts = c->last_sent_ts +
                               (uint32_t)((now_ms - c->last_sent_ms) * c->clock_rate / 1000),
                     .packet_count = (uint32_t)c->packets,
                     .octet_count = (uint32_t)c->bytes};
  uint8_t buf[512];
  mf_rtcp_compound_t cp;
  mf_rtcp_compound_init(&cp, buf, sizeof buf);
  mf_rtcp_compound_add_sr(&cp, &sr);
  const char *cname = c->params.rtcp.cname[0] ? c->params.rtcp.cname : "mafalda";
  mf_rtcp_compound_add_sdes_cname(&cp, c->ssrc, (const uint8_t *)cname, strlen(cname));
  if (cp.err == MF_OK) mf_router_transport_send_rtcp(c->transport, buf, cp.len);
}

void mf_consumer_set_producer_paused(mf_consumer_t *c, bool paused) {
  if (c->producer_paused == paused) return;
  c->producer_paused = paused;
  if (!paused) mf_rtp_rewriter_request_sync(c->rewriter);
  mf_router_emit(c->router, paused ? "producerpause" : "producerresume", c->id, NULL);
}

void mf_consumer_pause(mf_consumer_t *c) { c->paused = true; }

void mf_consumer_resume(mf_consumer_t *c) {
  if (!c->paused) return;
  c->paused = false;
  mf_rtp_rewriter_request_sync(c->rewriter);
  if (!c->producer_paused) mf_producer_request_keyframe(c->producer, uv_now(c->router->timer.loop));
}

void mf_consumer_request_keyframe(mf_consumer_t *c) {
  mf_producer_request_keyframe(c->producer, uv_now(c->router->timer.loop));
}

void mf_consumer_destroy(mf_consumer_t *c, bool send_bye) {
  mf_router_transport_t *t = c->transport;
  if (send_bye && c->packets > 0 &&
      mf_webrtc_transport_state(t->webrtc) == MF_TRANSPORT_STATE_CONNECTED) {
    uint32_t ssrcs[2] = {c->ssrc, c->rtx_ssrc};
    mf_rtcp_bye_t bye = {0};
    bye.count = c->has_rtx ? 2 : 1;
    for (size_t i = 0; i < bye.count; i++) bye.ssrcs[i] = ssrcs[i];
    uint8_t buf[64];
    size_t len = 0;
    if (mf_rtcp_write_bye(buf, sizeof buf, &bye, &len) == MF_OK)
      mf_router_transport_send_rtcp(t, buf, len);
  }
  mf_producer_detach_consumer(c->producer, c);
  mf_ptr_list_remove(&t->consumers, c);
  if (mf_hashmap_get(t->consumer_by_ssrc, &c->ssrc) == c) mf_hashmap_remove(t->consumer_by_ssrc, &c->ssrc);
  if (c->has_rtx && mf_hashmap_get(t->consumer_by_ssrc, &c->rtx_ssrc) == c)
    mf_hashmap_remove(t->consumer_by_ssrc, &c->rtx_ssrc);
  mf_hashmap_remove(c->router->consumers, c->id);
  MF_LOG_INFO("consumer %s closed", c->id);
  mf_consumer_free(c);
}

void mf_consumer_close(mf_consumer_t *c) { mf_consumer_destroy(c, true); }

json_t *mf_consumer_to_json(const mf_consumer_t *c) {
  return json_pack("{s:s, s:s, s:s, s:o, s:s, s:b, s:b}", "id", c->id, "producerId",
                   c->producer->id, "kind", mf_media_kind_str(c->kind), "rtpParameters",
                   mf_rtp_parameters_to_json(&c->params), "type", "simple", "paused", c->paused,
                   "producerPaused", c->producer_paused);
}

json_t *mf_consumer_stats_json(const mf_consumer_t *c) {
  mf_rtx_store_stats_t ss;
  mf_rtx_store_get_stats(c->store, &ss);
  json_t *o = json_pack(
      "{s:s, s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "type",
      "outbound-rtp", "timestamp", (json_int_t)uv_now(c->router->timer.loop), "ssrc",
      (json_int_t)c->ssrc, "kind", mf_media_kind_str(c->kind), "mimeType",
      c->params.codecs[0].mime_type, "fractionLost", (json_int_t)c->fraction_lost, "nackCount",
      (json_int_t)c->nacks_received, "nackPacketCount", (json_int_t)c->nack_seqs_received,
      "pliCount", (json_int_t)c->plis_received, "firCount", (json_int_t)c->firs_received,
      "score", (json_int_t)c->score, "packetCount", (json_int_t)c->packets, "byteCount",
      (json_int_t)c->bytes, "packetsRetransmitted", (json_int_t)c->rtx_packets,
      "roundTripTime", (json_int_t)c->rtt_ms);
  if (c->has_rtx) json_object_set_new(o, "rtxSsrc", json_integer(c->rtx_ssrc));
  json_object_set_new(o, "retransmissionStoreHits", json_integer((json_int_t)ss.hits));
  return json_pack("[o]", o);
}
