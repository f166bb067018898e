#define MF_LOG_MODULE "producer"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "node/router_internal.h"

/* How far a NACK list may go in one RTCP packet (one MTU-sized compound is plenty). */
#define MF_PRODUCER_MAX_NACKS 256

const char *mf_producer_id(const mf_producer_t *p) { return p->id; }
mf_media_kind_t mf_producer_kind(const mf_producer_t *p) { return p->kind; }
bool mf_producer_paused(const mf_producer_t *p) { return p->paused; }

static uint8_t mf_producer_ext_id(const mf_rtp_parameters_t *params, const char *uri) {
  for (size_t i = 0; i < params->header_extension_count; i++)
    if (strcmp(params->header_extensions[i].uri, uri) == 0) return params->header_extensions[i].id;
  return 0;
}

static bool mf_producer_has_fb(const mf_rtp_parameters_t *params, const char *type,
                               const char *param) {
  for (size_t i = 0; i < params->codec_count; i++) {
    const mf_rtp_codec_parameters_t *c = &params->codecs[i];
    for (size_t k = 0; k < c->rtcp_feedback_count; k++)
      if (strcmp(c->rtcp_feedback[k].type, type) == 0 &&
          strcmp(c->rtcp_feedback[k].parameter, param) == 0)
        return true;
  }
  return false;
}

static void mf_producer_map_ssrc(mf_router_transport_t *t, uint32_t ssrc,
                                 mf_producer_stream_t *s) {
  if (mf_hashmap_get(t->by_ssrc, &ssrc)) return;
  mf_hashmap_put(t->by_ssrc, &ssrc, s);
}

static mf_err_t mf_producer_build_tables(mf_producer_t *p, char *err, size_t errsz) {
  memset(p->pt_map, MF_PT_NONE, sizeof p->pt_map);
  memset(p->rtx_apt, MF_PT_NONE, sizeof p->rtx_apt);
  for (size_t i = 0; i < p->params.codec_count; i++) {
    const mf_rtp_codec_parameters_t *c = &p->params.codecs[i];
    p->codec_by_pt[c->payload_type] = mf_codec_from_mime(c->mime_type);
    if (mf_ortc_is_rtx_mime(c->mime_type)) {
      int64_t apt;
      if (mf_rtp_params_get_int(&c->parameters, "apt", &apt) && apt >= 0 && apt < 128)
        p->rtx_apt[c->payload_type] = (uint8_t)apt;
      continue;
    }
    for (size_t m = 0; m < p->mapping.codec_count; m++)
      if (p->mapping.codecs[m].payload_type == c->payload_type)
        p->pt_map[c->payload_type] = p->mapping.codecs[m].mapped_payload_type;
  }
  p->ext_abs_send_time = mf_producer_ext_id(&p->params, MF_RTP_EXT_ABS_SEND_TIME);
  p->ext_audio_level = mf_producer_ext_id(&p->params, MF_RTP_EXT_AUDIO_LEVEL);
  p->ext_orientation = mf_producer_ext_id(&p->params, MF_RTP_EXT_VIDEO_ORIENTATION);
  p->ext_toffset = mf_producer_ext_id(&p->params, MF_RTP_EXT_TOFFSET);
  p->pli_supported = mf_producer_has_fb(&p->params, "nack", "pli");
  p->fir_supported = mf_producer_has_fb(&p->params, "ccm", "fir");

  mf_router_transport_t *t = p->transport;
  uint8_t mid = mf_producer_ext_id(&p->params, MF_RTP_EXT_MID);
  uint8_t rid = mf_producer_ext_id(&p->params, MF_RTP_EXT_RID);
  uint8_t rrid = mf_producer_ext_id(&p->params, MF_RTP_EXT_RRID);
  if (mid) t->mid_ext_id = mid;
  if (rid) t->rid_ext_id = rid;
  if (rrid) t->rrid_ext_id = rrid;

  p->stream_count = p->mapping.encoding_count;
  for (size_t i = 0; i < p->stream_count; i++) {
    mf_producer_stream_t *s = &p->streams[i];
    const mf_rtp_encoding_parameters_t *e = &p->params.encodings[i];
    s->producer = p;
    s->index = (unsigned)i;
    s->has_ssrc = e->has_ssrc;
    s->ssrc = e->ssrc;
    s->has_rtx_ssrc = e->has_rtx;
    s->rtx_ssrc = e->rtx_ssrc;
    snprintf(s->rid, sizeof s->rid, "%s", e->rid);
    s->mapped_ssrc = p->mapping.encodings[i].mapped_ssrc;
    if (p->kind == MF_MEDIA_KIND_VIDEO) {
      mf_nack_generator_config_t nc;
      mf_nack_generator_config_default(&nc);
      if (mf_nack_generator_create(&nc, &s->nack) != MF_OK) {
        snprintf(err, errsz, "out of memory");
        return MF_ERR_NO_MEMORY;
      }
    }
    if (s->has_ssrc) {
      if (mf_hashmap_get(t->by_ssrc, &s->ssrc)) {
        snprintf(err, errsz, "ssrc %u already used by another producer on this transport", s->ssrc);
        return MF_ERR_EXISTS;
      }
      mf_producer_map_ssrc(t, s->ssrc, s);
    }
    if (s->has_rtx_ssrc) mf_producer_map_ssrc(t, s->rtx_ssrc, s);
  }
  return MF_OK;
}

static void mf_producer_free(mf_producer_t *p) {
  for (size_t i = 0; i < p->stream_count; i++) {
    mf_producer_stream_t *s = &p->streams[i];
    if (s->has_ssrc && mf_hashmap_get(p->transport->by_ssrc, &s->ssrc) == s)
      mf_hashmap_remove(p->transport->by_ssrc, &s->ssrc);
    if (s->has_rtx_ssrc && mf_hashmap_get(p->transport->by_ssrc, &s->rtx_ssrc) == s)
      mf_hashmap_remove(p->transport->by_ssrc, &s->rtx_ssrc);
    mf_nack_generator_destroy(s->nack);
  }
  mf_keyframe_requester_destroy(p->keyframes);
  mf_ptr_list_free(&p->consumers);
  free(p);
}

mf_err_t mf_producer_create(mf_router_transport_t *t, const char *id, mf_media_kind_t kind,
                            mf_rtp_parameters_t *params, bool paused, char *err, size_t errsz,
                            mf_producer_t **out) {
  mf_router_t *r = t->router;
  if (kind != MF_MEDIA_KIND_AUDIO && kind != MF_MEDIA_KIND_VIDEO) {
    snprintf(err, errsz, "kind must be audio or video");
    return MF_ERR_INVALID_ARG;
  }
  mf_err_t e = mf_ortc_validate_rtp_parameters(params, err, errsz);
  if (e) return e;
  if (params->encoding_count == 0) {
    snprintf(err, errsz, "rtpParameters.encodings must not be empty");
    return MF_ERR_INVALID_ARG;
  }
  mf_producer_t *p = calloc(1, sizeof *p);
  if (!p) return MF_ERR_NO_MEMORY;
  p->router = r;
  p->transport = t;
  p->kind = kind;
  p->paused = paused;
  p->params = *params;
  if (id) {
    snprintf(p->id, sizeof p->id, "%s", id);
  } else {
    e = mf_id_generate(p->id);
  }
  if (!e) e = mf_ortc_get_producer_rtp_parameters_mapping(&p->params, &r->caps, &p->mapping, err, errsz);
  if (!e) e = mf_ortc_get_consumable_rtp_parameters(kind, &p->params, &r->caps, &p->mapping,
                                                    &p->consumable, err, errsz);
  if (!e) e = mf_producer_build_tables(p, err, errsz);
  if (!e && kind == MF_MEDIA_KIND_VIDEO) {
    mf_keyframe_requester_config_t kc;
    mf_keyframe_requester_config_default(&kc);
    e = mf_keyframe_requester_create(&kc, &p->keyframes);
  }
  if (!e) e = mf_ptr_list_add(&t->producers, p);
  if (!e) e = mf_hashmap_put(r->producers, p->id, p);
  if (e) {
    mf_ptr_list_remove(&t->producers, p);
    mf_producer_free(p);
    return e;
  }
  MF_LOG_INFO("producer %s (%s, %zu encodings) on transport %s", p->id, mf_media_kind_str(kind),
              p->stream_count, mf_router_transport_id(t));
  *out = p;
  return MF_OK;
}

/* A stream the client did not announce by SSRC (simulcast: rid only; or a mid-only
 * producer) is found by the MID/RID header extensions and its SSRC learnt. */
static mf_producer_stream_t *mf_producer_learn_stream(mf_router_transport_t *t,
                                                      const mf_rtp_packet_t *pkt) {
  const uint8_t *v;
  size_t n;
  char mid[MF_RTP_MID_MAX] = "", rid[MF_RTP_RID_MAX] = "";
  bool is_rtx = false;
  if (t->mid_ext_id && mf_rtp_get_extension(pkt, t->mid_ext_id, &v, &n) && n < sizeof mid) {
    memcpy(mid, v, n);
    mid[n] = '\0';
  }
  if (t->rid_ext_id && mf_rtp_get_extension(pkt, t->rid_ext_id, &v, &n) && n < sizeof rid) {
    memcpy(rid, v, n);
    rid[n] = '\0';
  } else if (t->rrid_ext_id && mf_rtp_get_extension(pkt, t->rrid_ext_id, &v, &n) &&
             n < sizeof rid) {
    memcpy(rid, v, n);
    rid[n] = '\0';
    is_rtx = true;
  }
  for (size_t i = 0; i < t->producers.count; i++) {
    mf_producer_t *p = t->producers.items[i];
    if (mid[0] && strcmp(p->params.mid, mid) != 0) continue;
    if (!mid[0] && !rid[0]) {
      /* No MID/RID extensions (e.g. an SDP peer without a=ssrc-group:FID): an RTX payload
       * type identifies the single stream of the producer that negotiated it. */
      mf_producer_stream_t *s = &p->streams[0];
      if (p->stream_count != 1 || s->has_rtx_ssrc || !s->has_ssrc ||
          p->rtx_apt[pkt->payload_type] == MF_PT_NONE)
        continue;
      s->has_rtx_ssrc = true;
      s->rtx_ssrc = pkt->ssrc;
      mf_producer_map_ssrc(t, pkt->ssrc, s);
      MF_LOG_INFO("producer %s: learnt rtx ssrc %u from payload type %u", p->id, pkt->ssrc,
                  pkt->payload_type);
      return s;
    }
    for (size_t k = 0; k < p->stream_count; k++) {
      mf_producer_stream_t *s = &p->streams[k];
      if (rid[0] ? strcmp(s->rid, rid) != 0 : (p->stream_count != 1 || s->rid[0])) continue;
      bool rtx_pt = p->rtx_apt[pkt->payload_type] != MF_PT_NONE;
      if (is_rtx || rtx_pt) {
        if (s->has_rtx_ssrc) return NULL;
        s->has_rtx_ssrc = true;
        s->rtx_ssrc = pkt->ssrc;
      } else {
        if (s->has_ssrc) return NULL;
        s->has_ssrc = true;
        s->ssrc = pkt->ssrc;
      }
      mf_producer_map_ssrc(t, pkt->ssrc, s);
      MF_LOG_INFO("producer %s: stream %u%s%s learnt %sssrc %u", p->id, s->index,
                  s->rid[0] ? " rid " : "", s->rid, (is_rtx || rtx_pt) ? "rtx " : "", pkt->ssrc);
      return s;
    }
  }
  return NULL;
}

/* RFC 4588: an RTX packet carries the original sequence number in its first two payload
 * bytes. Rebuilds the original packet in a new pool buffer. */
static mf_buf_t *mf_producer_unwrap_rtx(mf_producer_t *p, mf_producer_stream_t *s,
                                        const mf_rtp_packet_t *pkt) {
  uint8_t apt = p->rtx_apt[pkt->payload_type];
  if (apt == MF_PT_NONE || pkt->payload_len < 2 || !s->has_ssrc) return NULL;
  mf_buf_t *b = mf_bufpool_get(mf_rtc_server_pool(p->router->rtc));
  if (!b) return NULL;
  size_t hl = pkt->header_len;
  memcpy(b->data, pkt->data, hl);
  memcpy(b->data + hl, pkt->payload + 2, pkt->payload_len - 2);
  b->data[0] &= (uint8_t)~0x20; /* the original carries no padding */
  b->len = (uint32_t)(hl + pkt->payload_len - 2);
  mf_rtp_set_sequence(b->data, (uint16_t)((pkt->payload[0] << 8) | pkt->payload[1]));
  mf_rtp_set_payload_type(b->data, apt);
  mf_rtp_set_ssrc(b->data, s->ssrc);
  return b;
}

/* The last step, shared by ordinary and piped producers: local consumers, then pipes. */
static void mf_producer_fan_out(mf_producer_t *p, mf_buf_t *buf, const mf_rtp_packet_t *pkt,
                                uint8_t router_pt, bool keyframe, uint32_t mapped_ssrc,
                                unsigned layer, uint64_t now_ms) {
  if (p->paused) return;
  for (size_t i = 0; i < p->consumers.count; i++)
    mf_consumer_forward(p->consumers.items[i], buf, pkt, router_pt, keyframe, mapped_ssrc,
                        layer, now_ms);
  if (p->pipe_count == 0) return;
  mf_pipe_packet_t out = {.buf = buf, .mapped_ssrc = mapped_ssrc, .router_pt = router_pt,
                          .keyframe = keyframe, .layer = (uint8_t)layer};
  for (size_t i = 0; i < p->pipe_count; i++) {
    out.pipe_id = p->pipes[i].pipe_id;
    if (!mf_pipe_hub_send(p->router->hub, p->router->worker, p->pipes[i].worker, &out))
      p->pipe_dropped++;
  }
}

static void mf_producer_forward(mf_producer_t *p, mf_producer_stream_t *s, mf_buf_t *buf,
                                const mf_rtp_packet_t *pkt, bool recovered, uint64_t now_ms) {
  uint8_t router_pt = p->pt_map[pkt->payload_type];
  if (router_pt == MF_PT_NONE) {
    p->dropped_unknown_pt++;
    return;
  }
  mf_codec_t codec = p->codec_by_pt[pkt->payload_type];
  bool keyframe = p->kind == MF_MEDIA_KIND_VIDEO &&
                  mf_rtp_payload_is_keyframe(codec, pkt->payload, pkt->payload_len);
  if (!s->stats_started) {
    uint32_t clock = 90000;
    for (size_t i = 0; i < p->params.codec_count; i++)
      if (p->params.codecs[i].payload_type == pkt->payload_type) clock = p->params.codecs[i].clock_rate;
    mf_rtp_recv_stats_init(&s->stats, s->ssrc, clock, MF_RTP_RECV_PROBATION_NONE);
    s->stats_started = true;
  }
  mf_rtp_recv_result_t rr = mf_rtp_recv_stats_on_packet(&s->stats, pkt->sequence, pkt->timestamp,
                                                        pkt->len, now_ms, recovered);
  if (!mf_rtp_recv_result_is_valid(rr)) return;
  if (p->audio_level.observers && !p->paused) /* RtpObservers (audio_level.h) */
    mf_audio_level_on_rtp(&p->audio_level, pkt, p->ext_audio_level);
  if (s->nack) {
    unsigned f = mf_nack_generator_on_packet(s->nack, pkt->sequence, keyframe, recovered, now_ms);
    if (f & MF_NACK_GEN_KEYFRAME) mf_producer_request_keyframe(p, now_ms);
  }
  if (keyframe && p->keyframes) mf_keyframe_requester_on_keyframe(p->keyframes, now_ms);
  mf_producer_fan_out(p, buf, pkt, router_pt, keyframe, s->mapped_ssrc, s->index, now_ms);
}

void mf_producer_on_rtp(mf_router_transport_t *t, mf_buf_t *buf, uint64_t now_ms) {
  mf_rtp_packet_t pkt;
  if (mf_rtp_parse(buf->data, buf->len, &pkt) != MF_OK) return;
  mf_producer_stream_t *s = mf_hashmap_get(t->by_ssrc, &pkt.ssrc);
  if (!s) s = mf_producer_learn_stream(t, &pkt);
  if (!s) {
    t->dropped_unknown_ssrc++;
    if (pkt.ssrc != t->last_unknown_ssrc) {
      t->last_unknown_ssrc = pkt.ssrc;
      MF_LOG_WARN("transport %s: RTP ssrc %u pt %u matches no producer stream; dropped",
                  mf_router_transport_id(t), pkt.ssrc, pkt.payload_type);
    }
    return;
  }
  mf_producer_t *p = s->producer;
  bool is_rtx = (s->has_rtx_ssrc && pkt.ssrc == s->rtx_ssrc && !(s->has_ssrc && s->ssrc == pkt.ssrc)) ||
                p->rtx_apt[pkt.payload_type] != MF_PT_NONE;
  if (!is_rtx) {
    mf_producer_forward(p, s, buf, &pkt, false, now_ms);
    return;
  }
  if (pkt.payload_len == 0) return; /* RTX padding probe: nothing to recover */
  mf_buf_t *orig = mf_producer_unwrap_rtx(p, s, &pkt);
  mf_rtp_packet_t opkt;
  if (orig && mf_rtp_parse(orig->data, orig->len, &opkt) == MF_OK)
    mf_producer_forward(p, s, orig, &opkt, true, now_ms);
  else
    p->rtx_unrecoverable++;
  if (orig) mf_buf_unref(orig);
}

void mf_producer_on_sr(mf_router_transport_t *t, const mf_rtcp_sr_t *sr, uint64_t now_ms) {
  mf_producer_stream_t *s = mf_hashmap_get(t->by_ssrc, &sr->ssrc);
  if (!s || !s->stats_started || s->ssrc != sr->ssrc) return;
  mf_rtp_recv_stats_on_sr(&s->stats, (uint32_t)(sr->ntp >> 32), (uint32_t)sr->ntp, sr->rtp_ts,
                          now_ms);
}

static void mf_producer_send_keyframe_request(mf_producer_t *p) {
  if (p->pipe_in) {
    /* no upstream here: the origin asks its client (the caller relays the event) */
    mf_router_emit(p->router, "pipekeyframerequest", p->id, NULL);
    return;
  }
  uint8_t buf[256];
  mf_rtcp_compound_t c;
  mf_rtcp_compound_init(&c, buf, sizeof buf);
  for (size_t i = 0; i < p->stream_count; i++) {
    mf_producer_stream_t *s = &p->streams[i];
    if (!s->has_ssrc) continue;
    if (p->pli_supported || !p->fir_supported) {
      mf_rtcp_compound_add_pli(&c, p->transport->rtcp_ssrc, s->ssrc);
      if (s->stats_started) s->stats.pli_count++;
    } else {
      mf_rtcp_fir_entry_t e = {.ssrc = s->ssrc, .seq_nr = ++s->fir_seq};
      mf_rtcp_compound_add_fir(&c, p->transport->rtcp_ssrc, &e, 1);
      if (s->stats_started) s->stats.fir_count++;
    }
  }
  if (c.err == MF_OK && c.len > 0) mf_router_transport_send_rtcp(p->transport, buf, c.len);
}

void mf_producer_request_keyframe(mf_producer_t *p, uint64_t now_ms) {
  if (!p->keyframes) return;
  if (mf_keyframe_requester_request(p->keyframes, now_ms)) mf_producer_send_keyframe_request(p);
}

void mf_producer_report_blocks(mf_producer_t *p, uint64_t now_ms, mf_rtcp_rr_t *rr) {
  for (size_t i = 0; i < p->stream_count && rr->report_count < MF_RTCP_MAX_COUNT; i++) {
    mf_producer_stream_t *s = &p->streams[i];
    if (!s->stats_started) continue;
    if (mf_rtp_recv_stats_fill_report_block(&s->stats, now_ms, &rr->reports[rr->report_count]))
      rr->report_count++;
  }
}

void mf_producer_tick(mf_producer_t *p, uint64_t now_ms) {
  if (p->keyframes && mf_keyframe_requester_tick(p->keyframes, now_ms))
    mf_producer_send_keyframe_request(p);
  for (size_t i = 0; i < p->stream_count; i++) {
    mf_producer_stream_t *s = &p->streams[i];
    if (!s->nack || !s->has_ssrc) continue;
    uint16_t seqs[MF_PRODUCER_MAX_NACKS];
    bool keyframe_needed = false;
    size_t n = mf_nack_generator_get_nacks(s->nack, now_ms, 0, seqs, MF_PRODUCER_MAX_NACKS,
                                           &keyframe_needed);
    if (keyframe_needed) mf_producer_request_keyframe(p, now_ms);
    if (n == 0) continue;
    mf_rtcp_nack_item_t items[MF_PRODUCER_MAX_NACKS];
    size_t count = mf_rtcp_nack_pack(seqs, n, items, MF_PRODUCER_MAX_NACKS, NULL);
    uint8_t buf[1200];
    size_t len = 0;
    if (mf_rtcp_write_nack(buf, sizeof buf, p->transport->rtcp_ssrc, s->ssrc, items, count,
                           &len) == MF_OK) {
      mf_router_transport_send_rtcp(p->transport, buf, len);
      if (s->stats_started) {
        s->stats.nack_count++;
        s->stats.nack_packets += (uint32_t)n;
      }
    }
  }
}

void mf_producer_update_scores(mf_producer_t *p, uint64_t now_ms) {
  bool changed = false;
  json_t *scores = json_array();
  for (size_t i = 0; i < p->stream_count; i++) {
    mf_producer_stream_t *s = &p->streams[i];
    if (!s->stats_started) continue;
    uint8_t before = s->stats.score;
    uint8_t score = mf_rtp_recv_stats_update_score(&s->stats, now_ms);
    changed = changed || score != before;
    json_t *o = json_pack("{s:i, s:I, s:i}", "encodingIdx", (int)i, "ssrc", (json_int_t)s->ssrc,
                          "score", (int)score);
    if (s->rid[0]) json_object_set_new(o, "rid", json_string(s->rid));
    json_array_append_new(scores, o);
  }
  if (changed)
    mf_router_emit(p->router, "score", p->id, scores); /* mediasoup's producer "score" */
  else
    json_decref(scores);
}

void mf_producer_detach_consumer(mf_producer_t *p, mf_consumer_t *c) {
  mf_ptr_list_remove(&p->consumers, c);
}

void mf_producer_pause(mf_producer_t *p) {
  if (p->paused) return;
  p->paused = true;
  for (size_t i = 0; i < p->consumers.count; i++)
    mf_consumer_set_producer_paused(p->consumers.items[i], true);
}

void mf_producer_resume(mf_producer_t *p) {
  if (!p->paused) return;
  p->paused = false;
  for (size_t i = 0; i < p->consumers.count; i++)
    mf_consumer_set_producer_paused(p->consumers.items[i], false);
  mf_producer_request_keyframe(p, uv_now(p->router->timer.loop));
}

void mf_producer_close(mf_producer_t *p) {
  MF_LOG_INFO("producer %s closed%s", p->id, p->pipe_in ? " (piped copy)" : "");
  if (p->pipe_in && p->router->hub)
    mf_pipe_hub_unbind(p->router->hub, p->router->worker, p->pipe_in);
  while (p->consumers.count > 0) {
    mf_consumer_t *c = p->consumers.items[p->consumers.count - 1];
    mf_router_emit(p->router, "producerclose", c->id, NULL);
    mf_consumer_destroy(c, true);
  }
  mf_hashmap_remove(p->router->producers, p->id);
  mf_ptr_list_remove(&p->transport->producers, p);
  mf_producer_free(p);
}

json_t *mf_producer_stats_json(const mf_producer_t *p) {
  json_t *arr = json_array();
  const char *mime = p->consumable.codec_count ? p->consumable.codecs[0].mime_type : "";
  for (size_t i = 0; i < p->stream_count; i++) {
    const mf_producer_stream_t *s = &p->streams[i];
    if (!s->stats_started) continue;
    const mf_rtp_recv_stats_t *st = &s->stats;
    json_t *o = json_pack(
        "{s:s, s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
        "type", "inbound-rtp", "timestamp", (json_int_t)uv_now(p->router->timer.loop), "ssrc",
        (json_int_t)s->ssrc, "kind", mf_media_kind_str(p->kind), "mimeType", mime,
        "packetsLost", (json_int_t)mf_rtp_recv_stats_lost(st), "fractionLost",
        (json_int_t)st->fraction_lost, "packetsDiscarded", (json_int_t)st->packets_discarded,
        "packetsRetransmitted", (json_int_t)st->packets_retransmitted, "packetsRepaired",
        (json_int_t)st->packets_repaired, "nackCount", (json_int_t)st->nack_count,
        "nackPacketCount", (json_int_t)st->nack_packets, "pliCount", (json_int_t)st->pli_count,
        "firCount", (json_int_t)st->fir_count, "score", (json_int_t)st->score, "packetCount",
        (json_int_t)st->packets, "byteCount", (json_int_t)st->bytes);
    json_object_set_new(o, "jitter", json_integer(mf_rtp_recv_stats_jitter(st)));
    json_object_set_new(o, "packetsDuplicated", json_integer((json_int_t)st->packets_duplicated));
    json_object_set_new(o, "droppedUnknownPayloadType", json_integer((json_int_t)p->dropped_unknown_pt));
    if (s->rid[0]) json_object_set_new(o, "rid", json_string(s->rid));
    if (s->has_rtx_ssrc) json_object_set_new(o, "rtxSsrc", json_integer(s->rtx_ssrc));
    json_array_append_new(arr, o);
  }
  return arr;
}

/* ------------------------------------------------------------ intra-node pipes */

mf_err_t mf_producer_add_pipe(mf_producer_t *p, uint32_t worker, uint32_t pipe_id) {
  if (!p->router->hub || pipe_id == 0 || worker == p->router->worker) return MF_ERR_STATE;
  for (size_t i = 0; i < p->pipe_count; i++)
    if (p->pipes[i].pipe_id == pipe_id) return MF_ERR_EXISTS;
  if (p->pipe_count == MF_PRODUCER_MAX_PIPES) return MF_ERR_LIMIT;
  p->pipes[p->pipe_count].worker = worker;
  p->pipes[p->pipe_count].pipe_id = pipe_id;
  p->pipe_count++;
  MF_LOG_INFO("producer %s: pipe %u to worker %u (%zu pipes out)", p->id, pipe_id, worker,
              p->pipe_count);
  /* the new target's consumers start with a keyframe */
  mf_producer_request_keyframe(p, uv_now(p->router->timer.loop));
  return MF_OK;
}

bool mf_producer_remove_pipe(mf_producer_t *p, uint32_t pipe_id) {
  for (size_t i = 0; i < p->pipe_count; i++) {
    if (p->pipes[i].pipe_id != pipe_id) continue;
    p->pipes[i] = p->pipes[--p->pipe_count];
    MF_LOG_INFO("producer %s: pipe %u removed (%zu pipes out)", p->id, pipe_id, p->pipe_count);
    return true;
  }
  return false;
}

size_t mf_producer_pipe_count(const mf_producer_t *p) { return p->pipe_count; }
bool mf_producer_is_piped(const mf_producer_t *p) {
  return p->pipe_in != 0 || mf_router_transport_is_pipe(p->transport);
}

void mf_router_producer_request_keyframe(mf_producer_t *p) {
  mf_producer_request_keyframe(p, uv_now(p->router->timer.loop));
}

void mf_producer_on_pipe_packet(void *ud, const mf_pipe_packet_t *in) {
  mf_producer_t *p = ud;
  /* The lent buffer goes back when this returns: take one copy into this worker's pool so
   * consumers' retransmission stores hold buffers this thread owns. */
  mf_buf_t *b = mf_bufpool_get(mf_rtc_server_pool(p->router->rtc));
  if (!b) {
    p->pipe_dropped++;
    return;
  }
  mf_rtp_packet_t pkt;
  if (in->buf->len > b->cap || in->router_pt >= 128) {
    mf_buf_unref(b);
    p->pipe_dropped++;
    return;
  }
  memcpy(b->data, in->buf->data, in->buf->len);
  b->len = in->buf->len;
  if (mf_rtp_parse(b->data, b->len, &pkt) == MF_OK) {
    uint64_t now = uv_now(p->router->timer.loop);
    p->pipe_packets++;
    if (in->keyframe && p->keyframes) mf_keyframe_requester_on_keyframe(p->keyframes, now);
    mf_producer_fan_out(p, b, &pkt, in->router_pt, in->keyframe, in->mapped_ssrc, in->layer,
                        now);
  } else {
    p->pipe_dropped++;
  }
  mf_buf_unref(b);
}
