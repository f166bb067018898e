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
const char *mf_consumer_rtp_parameters_text(const mf_consumer_t *c) { return c->params_text; }
mf_producer_t *mf_consumer_producer(const mf_consumer_t *c) { return c->producer; }

static uint8_t mf_consumer_ext_id(const mf_rtp_parameters_t *params, const char *uri) {
  for (size_t i = 0; i < params->header_extension_count; i++)
    if (strcmp(params->header_extensions[i].uri, uri) == 0) return params->header_extensions[i].id;
  return 0;
}

mf_rtp_parameters_t *mf_consumer_rtp_parameters_copy(const mf_consumer_t *c) {
  json_t *j = json_loads(c->params_text, 0, NULL);
  mf_rtp_parameters_t *out = j ? malloc(sizeof *out) : NULL;
  char err[128];
  if (out && mf_rtp_parameters_from_json(j, "consumer rtpParameters", out, err, sizeof err)) {
    MF_LOG_ERROR("consumer %s: its own rtpParameters do not parse back: %s", c->id, err);
    free(out);
    out = NULL;
  }
  json_decref(j);
  return out;
}

static void mf_consumer_free(mf_consumer_t *c) {
  free(c->params_text);
  mf_rtp_rewriter_destroy(c->rewriter);
  mf_rtx_store_destroy(c->store);
  free(c);
}

/* Copies out what the media path needs of the consumer's rtpParameters pr. */
static mf_err_t mf_consumer_setup(mf_consumer_t *c, const mf_rtp_parameters_t *pr, char *err,
                                  size_t errsz) {
  json_t *j = mf_rtp_parameters_to_json(pr);
  c->params_text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!c->params_text) {
    snprintf(err, errsz, "out of memory");
    return MF_ERR_NO_MEMORY;
  }
  snprintf(c->mid, sizeof c->mid, "%s", pr->mid);
  c->mid_len = (uint8_t)strlen(c->mid);
  snprintf(c->cname, sizeof c->cname, "%s", pr->rtcp.cname);
  snprintf(c->mime_type, sizeof c->mime_type, "%s", pr->codecs[0].mime_type);
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
  c->codec = mf_codec_from_mime(pr->codecs[0].mime_type);
  c->ext_twcc = mf_consumer_ext_id(pr, MF_RTP_EXT_TRANSPORT_CC);
  c->reported_spatial = c->reported_temporal = -1;
  const mf_rtp_parameters_t *src = &c->producer->consumable;
  if (c->kind == MF_MEDIA_KIND_VIDEO && src->encoding_count > 1) {
    c->simulcast = true;
    mf_scalability_mode_t sm = mf_ortc_parse_scalability_mode(pr->encodings[0].scalability_mode);
    mf_layer_selector_init(&c->layers, (unsigned)src->encoding_count, sm.temporal_layers);
  } else if (c->kind == MF_MEDIA_KIND_VIDEO && c->codec == MF_CODEC_VP9) {
    mf_scalability_mode_t sm = mf_ortc_parse_scalability_mode(pr->encodings[0].scalability_mode);
    if (sm.spatial_layers > 1 || sm.temporal_layers > 1) {
      c->svc = true;
      mf_layer_selector_init_svc(&c->layers, sm.spatial_layers, sm.temporal_layers);
    }
  }
  mf_bitrate_allocator_init_consumer(&c->alloc);
  uint32_t r = mf_ortc_random_ssrc();
  mf_rtp_rewriter_config_t rc = {.is_video = c->kind == MF_MEDIA_KIND_VIDEO,
                                 .clock_rate = c->clock_rate,
                                 .initial_seq = (uint16_t)r,
                                 .initial_ts = mf_ortc_random_ssrc()};
  c->rtx_seq = (uint16_t)(r >> 16);
  mf_err_t e = mf_rtp_rewriter_create(&rc, &c->rewriter);
  if (!e)
    e = c->kind == MF_MEDIA_KIND_VIDEO
            ? mf_rtx_store_create(MF_RTX_STORE_DEFAULT_CAPACITY, MF_RTX_STORE_MAX_AGE_VIDEO_MS,
                                  &c->store)
            : mf_rtx_store_create(MF_RTX_STORE_AUDIO_CAPACITY, MF_RTX_STORE_MAX_AGE_AUDIO_MS,
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
  mf_rtp_parameters_t *params = malloc(sizeof *params); /* only while the consumer is made */
  mf_err_t e = params ? mf_id_generate(c->id) : MF_ERR_NO_MEMORY;
  if (!e) e = mf_ortc_get_consumer_rtp_parameters(&p->consumable, caps, false, true, params,
                                                  err, errsz);
  if (!e) {
    snprintf(params->mid, sizeof params->mid, "%u", t->next_mid++);
    e = mf_consumer_setup(c, params, err, errsz);
  }
  if (!params) snprintf(err, errsz, "out of memory");
  free(params);
  /* transport-cc towards a browser: the transport estimates its downstream bandwidth (not on
   * pipes: the other node sends no feedback) */
  if (!e && c->ext_twcc && !t->send_bwe && t->webrtc && !mf_router_transport_is_pipe(t))
    e = mf_send_bwe_create(&t->send_bwe);
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
              mf_router_transport_id(t), c->ssrc, c->mid, paused ? ", paused" : "");
  if (!paused) mf_producer_request_keyframe(p, uv_now(t->router->timer.loop));
  *out = c;
  return MF_OK;
}

/* Builds the consumer's copy of an original (producer-side, plaintext) packet into a new
 * pool buffer, optionally wrapped as RTX, encrypts it and queues it for sending. */
/* aux: what to change in the copy (also kept per packet for retransmissions): bit 31 the
 * VP8 id rewrite (see vp8_aux), bit 30 set the marker (SVC: end of the forwarded layers). */
#define MF_AUX_VP8 0x80000000u
#define MF_AUX_MARKER 0x40000000u

static bool mf_consumer_send_copy(mf_consumer_t *c, const mf_rtp_packet_t *pkt, uint8_t router_pt,
                                  uint16_t seq, uint32_t ts, bool as_rtx, uint32_t aux) {
  mf_producer_t *p = c->producer;
  mf_buf_t *out = mf_bufpool_get(mf_rtc_server_pool(c->router->rtc));
  if (!out) return false;
  mf_rtp_ext_elem_t ext[6];
  size_t n = 0;
  uint8_t twcc[2];
  mf_send_bwe_t *bwe = c->transport->send_bwe;
  if (c->ext_twcc && bwe) {
    /* the size is estimated before the header exists: the estimator needs the rate only */
    uint16_t tseq = mf_send_bwe_on_send(bwe, (uint32_t)pkt->payload_len + 40u);
    twcc[0] = (uint8_t)(tseq >> 8);
    twcc[1] = (uint8_t)tseq;
    ext[n++] = (mf_rtp_ext_elem_t){c->ext_twcc, 2, twcc};
  }
  if (c->ext_mid)
    ext[n++] = (mf_rtp_ext_elem_t){c->ext_mid, c->mid_len, (const uint8_t *)c->mid};
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
  mf_rtp_header_t h = {.marker = pkt->marker || (aux & MF_AUX_MARKER),
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
  if (aux & MF_AUX_VP8)
    mf_rtp_vp8_offset_ids(out->data + hl + extra, pkt->payload_len, (uint16_t)aux,
                          (uint8_t)(aux >> 16));
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

/* The VP8 id rewrite as one value for the retransmission store: offsets, flag bit 31. */
static uint32_t vp8_aux(const mf_consumer_t *c) {
  return MF_AUX_VP8 | ((uint32_t)c->vp8_tl0_offset << 16) | c->vp8_pid_offset;
}

/* Timestamps of the new layer in the old layer's timeline, from both streams' SR
 * NTP<->RTP mappings (none before both sent an SR, e.g. on a piped copy). */
static void mf_consumer_hint_switch(mf_consumer_t *c, unsigned from, unsigned to,
                                    uint32_t to_mapped_ssrc) {
  mf_producer_t *p = c->producer;
  if (from >= p->stream_count || to >= p->stream_count) return;
  const mf_rtp_recv_stats_t *a = &p->streams[from].stats, *b = &p->streams[to].stats;
  if (!p->streams[from].stats_started || !p->streams[to].stats_started || !a->sr_ntp ||
      !b->sr_ntp)
    return;
  /* (ntp_b - ntp_a) in clock ticks: NTP is 32.32 fixed point seconds */
  int64_t dntp = (int64_t)(b->sr_ntp - a->sr_ntp);
  int64_t ticks = (dntp / 65536) * (int64_t)c->clock_rate / 65536;
  int64_t delta = (int64_t)a->sr_rtp_ts - (int64_t)b->sr_rtp_ts + ticks;
  mf_rtp_rewriter_hint_switch(c->rewriter, to_mapped_ssrc, (int32_t)(uint32_t)delta);
}

static void mf_consumer_report_layers(mf_consumer_t *c) {
  int8_t sp = c->layers.current_spatial, tp = c->layers.current_temporal;
  if (sp == c->reported_spatial && tp == c->reported_temporal) return;
  c->reported_spatial = sp;
  c->reported_temporal = tp;
  mf_router_emit(c->router, "layerschange", c->id,
                 sp < 0 ? json_object()
                        : json_pack("{s:i, s:i}", "spatialLayer", sp, "temporalLayer",
                                    tp < 0 ? 0 : tp));
}

/* Simulcast: whether this packet of `layer` goes to the consumer; keeps the VP8 ids in line.
 * *aux gets the VP8 rewrite for the packet. */
static bool mf_consumer_select(mf_consumer_t *c, const mf_rtp_packet_t *pkt, bool keyframe,
                               uint32_t mapped_ssrc, unsigned layer, uint64_t now_ms,
                               uint32_t *aux) {
  mf_rtp_vp8_desc_t d;
  bool vp8 = c->codec == MF_CODEC_VP8 &&
             mf_rtp_vp8_parse_descriptor(pkt->payload, pkt->payload_len, &d) == MF_OK &&
             d.has_picture_id;
  bool start = !vp8 || (d.start_of_partition && d.partition_id == 0);
  int8_t before = c->layers.current_spatial;
  bool switched = false;
  unsigned tid = vp8 && d.has_tid && d.tid < MF_LAYER_MAX_TEMPORAL ? d.tid : 0;
  if (layer < MF_LAYER_MAX_SPATIAL) c->layer_bytes[layer][tid] += pkt->len; /* send_bwe */
  mf_layer_decision_t dec = mf_layer_selector_on_packet(
      &c->layers, layer, vp8 && d.has_tid ? d.tid : 0, keyframe, start, vp8 && d.layer_sync,
      now_ms, &switched);
  if (dec == MF_LAYER_DROP_WAIT_KEYFRAME) mf_producer_request_keyframe(c->producer, now_ms);
  if (dec == MF_LAYER_DROP_TEMPORAL) {
    c->dropped_temporal++;
    /* out of the output sequence, and one picture id less for the frames after it */
    mf_rtp_rewriter_drop(c->rewriter, mapped_ssrc, pkt->sequence);
    if (vp8 && start) c->vp8_pid_offset--;
  }
  if (switched && c->layers.current_spatial != before) {
    c->layer_switches++;
    if (before >= 0) mf_consumer_hint_switch(c, (unsigned)before, layer, mapped_ssrc);
    if (vp8 && c->vp8_started) {
      c->vp8_pid_offset = (uint16_t)(c->vp8_last_pid + 1u - d.picture_id);
      c->vp8_tl0_offset = (uint8_t)(c->vp8_last_tl0 + 1u - d.tl0picidx);
    }
    MF_LOG_DEBUG("consumer %s: spatial layer %d -> %u", c->id, before, layer);
  }
  if (switched) mf_consumer_report_layers(c);
  if (dec != MF_LAYER_FORWARD) return false;
  *aux = 0;
  if (vp8) {
    *aux = vp8_aux(c);
    uint16_t pid = (uint16_t)(d.picture_id + c->vp8_pid_offset);
    uint8_t tl0 = (uint8_t)(d.tl0picidx + c->vp8_tl0_offset);
    uint16_t mask = d.picture_id_15bit ? 0x7fff : 0x7f;
    if (!c->vp8_started || (uint16_t)((pid - c->vp8_last_pid) & mask) < mask / 2) c->vp8_last_pid = pid & mask;
    if (d.has_tl0picidx && (!c->vp8_started || (uint8_t)(tl0 - c->vp8_last_tl0) < 128)) c->vp8_last_tl0 = tl0;
    c->vp8_started = true;
  }
  return true;
}

/* SVC (VP9 layers in one stream): whether this packet goes to the consumer; *aux gets the
 * marker to set on the last packet of the highest forwarded spatial layer (the producer
 * marks only the end of the whole picture, which may be a layer we drop). */
static bool mf_consumer_select_svc(mf_consumer_t *c, const mf_rtp_packet_t *pkt, bool keyframe,
                                   uint32_t mapped_ssrc, uint64_t now_ms, uint32_t *aux) {
  mf_rtp_vp9_desc_t d;
  if (mf_rtp_vp9_parse_descriptor(pkt->payload, pkt->payload_len, &d) != MF_OK) return true;
  if (d.sid < MF_LAYER_MAX_SPATIAL && d.tid < MF_LAYER_MAX_TEMPORAL)
    c->layer_bytes[d.sid][d.tid] += pkt->len; /* send_bwe */
  bool switched = false;
  mf_layer_decision_t dec = mf_layer_selector_on_svc_packet(
      &c->layers, d.sid, d.tid, keyframe, d.begin_of_frame && d.sid == 0, d.switching_up, now_ms,
      &switched);
  if (switched) {
    c->layer_switches++;
    mf_consumer_report_layers(c);
  }
  if (dec == MF_LAYER_DROP_WAIT_KEYFRAME) mf_producer_request_keyframe(c->producer, now_ms);
  if (dec == MF_LAYER_DROP_TEMPORAL) {
    c->dropped_temporal++;
    mf_rtp_rewriter_drop(c->rewriter, mapped_ssrc, pkt->sequence);
  }
  if (dec != MF_LAYER_FORWARD) return false;
  *aux = d.end_of_frame && (int)d.sid == c->layers.current_spatial ? MF_AUX_MARKER : 0;
  return true;
}

void mf_consumer_forward(mf_consumer_t *c, mf_buf_t *orig, const mf_rtp_packet_t *pkt,
                         uint8_t router_pt, bool keyframe, uint32_t mapped_ssrc,
                         unsigned layer, uint64_t now_ms) {
  if (c->paused || c->producer_paused || !c->pt_ok[router_pt]) return;
  if (mf_webrtc_transport_state(c->transport->webrtc) != MF_TRANSPORT_STATE_CONNECTED) return;
  uint32_t aux = 0;
  if (c->simulcast && !mf_consumer_select(c, pkt, keyframe, mapped_ssrc, layer, now_ms, &aux))
    return;
  if (c->svc && !mf_consumer_select_svc(c, pkt, keyframe, mapped_ssrc, now_ms, &aux)) return;
  uint16_t seq;
  uint32_t ts;
  mf_rtp_rewrite_result_t r = mf_rtp_rewriter_rewrite(c->rewriter, mapped_ssrc, pkt->sequence,
                                                      pkt->timestamp, keyframe, now_ms, &seq, &ts);
  if (r == MF_RTP_REWRITE_NEED_KEYFRAME) {
    mf_producer_request_keyframe(c->producer, now_ms);
    return;
  }
  if (r != MF_RTP_REWRITE_SEND) return;
  if (!mf_consumer_send_copy(c, pkt, router_pt, seq, ts, false, aux)) return;
  /* The store keeps the ORIGINAL plaintext buffer, shared by every consumer of the
   * producer; a retransmission rebuilds this consumer's copy from it. */
  mf_rtx_store_insert(c->store, orig, seq, ts, aux, now_ms);
  c->last_sent_ms = now_ms;
  c->last_sent_ts = ts;
}

void mf_consumer_tick(mf_consumer_t *c, uint64_t now_ms) {
  if ((!c->simulcast && !c->svc) || now_ms - c->layers_checked_ms < MF_CONSUMER_LAYER_CHECK_MS)
    return;
  c->layers_checked_ms = now_ms;
  mf_layer_selector_tick(&c->layers, now_ms);
  /* a pending switch needs the target's keyframe (the requester rate-limits) */
  if (!c->paused && !c->producer_paused && mf_layer_selector_switch_pending(&c->layers))
    mf_producer_request_keyframe(c->producer, now_ms);
}

mf_err_t mf_consumer_set_preferred_layers(mf_consumer_t *c, int spatial, int temporal,
                                          char *err, size_t errsz) {
  if (!c->simulcast && !c->svc) {
    snprintf(err, errsz, "consumer %s is neither simulcast nor SVC (its producer has one "
             "encoding without layers): no layers to choose", c->id);
    return MF_ERR_UNSUPPORTED;
  }
  if (spatial < 0) {
    snprintf(err, errsz, "spatialLayer must be >= 0");
    return MF_ERR_INVALID_ARG;
  }
  if (temporal < 0) temporal = c->layers.temporal_count - 1; /* mediasoup: highest */
  uint64_t now = uv_now(c->router->timer.loop);
  /* The allocator's hysteresis is against bandwidth, not against the preference: start
   * afresh so the next allocation may go straight to what the budget allows. */
  mf_bitrate_allocator_init_consumer(&c->alloc);
  if (mf_layer_selector_set_preferred(&c->layers, (unsigned)spatial, (unsigned)temporal, now) &&
      mf_layer_selector_switch_pending(&c->layers) && !c->paused)
    mf_producer_request_keyframe(c->producer, now);
  MF_LOG_INFO("consumer %s: preferred layers %u/%u", c->id, c->layers.preferred_spatial,
              c->layers.preferred_temporal);
  return MF_OK;
}

json_t *mf_consumer_layers_json(const mf_consumer_t *c, bool current) {
  if (!c->simulcast && !c->svc) return json_null();
  int sp = current ? c->layers.current_spatial : c->layers.preferred_spatial;
  int tp = current ? c->layers.current_temporal : c->layers.preferred_temporal;
  if (sp < 0) return json_null();
  return json_pack("{s:i, s:i}", "spatialLayer", sp, "temporalLayer", tp < 0 ? 0 : tp);
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
      mf_consumer_send_copy(c, &pkt, router_pt, item.seq, item.ts, as_rtx, item.aux);
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
    if (rtt >= 0 && rtt < 10000 && c->transport->send_bwe)
      mf_send_bwe_set_rtt(c->transport->send_bwe, (uint32_t)rtt);
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
  const char *cname = c->cname[0] ? c->cname : "mafalda";
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
  json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:b, s:b}", "id", c->id, "producerId",
                        c->producer->id, "kind", mf_media_kind_str(c->kind), "rtpParameters",
                        json_loads(c->params_text, 0, NULL), "type",
                        c->simulcast ? "simulcast" : c->svc ? "svc" : "simple", "paused", c->paused,
                        "producerPaused", c->producer_paused);
  if (c->simulcast || c->svc) {
    json_object_set_new(o, "preferredLayers", mf_consumer_layers_json(c, false));
    json_object_set_new(o, "currentLayers", mf_consumer_layers_json(c, true));
  }
  return o;
}

json_t *mf_consumer_stats_json(const mf_consumer_t *c) {
  mf_rtx_store_stats_t ss;
  mf_rtx_store_get_stats(c->store, &ss);
  json_t *o = json_pack(
      "{s:s, s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "type",
      "outbound-rtp", "timestamp", (json_int_t)uv_now(c->router->timer.loop), "ssrc",
      (json_int_t)c->ssrc, "kind", mf_media_kind_str(c->kind), "mimeType",
      c->mime_type, "fractionLost", (json_int_t)c->fraction_lost, "nackCount",
      (json_int_t)c->nacks_received, "nackPacketCount", (json_int_t)c->nack_seqs_received,
      "pliCount", (json_int_t)c->plis_received, "firCount", (json_int_t)c->firs_received,
      "score", (json_int_t)c->score, "packetCount", (json_int_t)c->packets, "byteCount",
      (json_int_t)c->bytes, "packetsRetransmitted", (json_int_t)c->rtx_packets,
      "roundTripTime", (json_int_t)c->rtt_ms);
  if (c->has_rtx) json_object_set_new(o, "rtxSsrc", json_integer(c->rtx_ssrc));
  json_object_set_new(o, "retransmissionStoreHits", json_integer((json_int_t)ss.hits));
  if (c->simulcast || c->svc) {
    json_object_set_new(o, "layerSwitches", json_integer((json_int_t)c->layer_switches));
    json_object_set_new(o, "temporalLayerDrops", json_integer((json_int_t)c->dropped_temporal));
    json_object_set_new(o, "currentLayers", mf_consumer_layers_json(c, true));
  }
  return json_pack("[o]", o);
}
