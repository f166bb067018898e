#include "node/sdp_rtp.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Copies src into dst; false (dst untouched) when it does not fit. */
static bool mf_sdp_rtp_copy(char *dst, size_t cap, const char *src) {
  size_t n = strlen(src);
  if (n >= cap) return false;
  memcpy(dst, src, n + 1);
  return true;
}

static mf_err_t mf_sdp_rtp_fail(char *err, size_t errsz, const char *msg, const char *mid) {
  if (err && errsz) snprintf(err, errsz, "m-line mid '%s': %s", mid, msg);
  return MF_ERR_INVALID_ARG;
}

/* "a=1;b=x" -> parameters; all-digit values become integers, as mediasoup-client does. */
static void mf_sdp_rtp_parse_fmtp(const char *fmtp, mf_rtp_params_t *out) {
  char buf[MF_SDP_FMTP_LEN];
  snprintf(buf, sizeof buf, "%s", fmtp);
  char *save = NULL;
  for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
    while (*kv == ' ') kv++;
    char *eq = strchr(kv, '=');
    if (!eq || eq == kv) continue;
    *eq = '\0';
    const char *v = eq + 1;
    bool digits = *v != '\0' && strlen(v) < 18;
    for (const char *c = v; *c && digits; c++) digits = isdigit((unsigned char)*c);
    if (digits)
      mf_rtp_params_set_int(out, kv, strtoll(v, NULL, 10));
    else
      mf_rtp_params_set_str(out, kv, v);
  }
}

mf_err_t mf_sdp_rtp_parameters_from_media(const mf_sdp_media_t *m, mf_rtp_parameters_t *out,
                                          char *err, size_t errsz) {
  memset(out, 0, sizeof *out);
  if (m->kind != MF_SDP_KIND_AUDIO && m->kind != MF_SDP_KIND_VIDEO)
    return mf_sdp_rtp_fail(err, errsz, "not an audio or video section", m->mid);
  const char *kind = m->kind == MF_SDP_KIND_AUDIO ? "audio" : "video";
  if (!mf_sdp_rtp_copy(out->mid, sizeof out->mid, m->mid))
    return mf_sdp_rtp_fail(err, errsz, "mid too long", "");
  for (size_t i = 0; i < m->payload_count && out->codec_count < MF_RTP_MAX_CODECS; i++) {
    const mf_sdp_payload_t *pl = &m->payloads[i];
    if (!pl->name[0]) continue;
    mf_rtp_codec_parameters_t *c = &out->codecs[out->codec_count++];
    snprintf(c->mime_type, sizeof c->mime_type, "%s/%s", kind, pl->name);
    c->payload_type = pl->pt;
    c->clock_rate = pl->clock_rate;
    if (m->kind == MF_SDP_KIND_AUDIO) c->channels = (uint8_t)(pl->channels ? pl->channels : 1);
    mf_sdp_rtp_parse_fmtp(pl->fmtp, &c->parameters);
    for (size_t k = 0; k < pl->fb_count && c->rtcp_feedback_count < MF_RTP_MAX_RTCP_FEEDBACK; k++) {
      mf_rtcp_feedback_t *fb = &c->rtcp_feedback[c->rtcp_feedback_count++];
      if (!mf_sdp_rtp_copy(fb->type, sizeof fb->type, pl->fb[k].type) ||
          !mf_sdp_rtp_copy(fb->parameter, sizeof fb->parameter, pl->fb[k].param))
        return mf_sdp_rtp_fail(err, errsz, "rtcp-fb value too long", m->mid);
      fb->has_parameter = true;
    }
  }
  if (out->codec_count == 0) return mf_sdp_rtp_fail(err, errsz, "no codec with an rtpmap", m->mid);
  for (size_t i = 0; i < m->extmap_count && i < MF_RTP_MAX_HEADER_EXTENSIONS; i++) {
    mf_rtp_header_extension_parameters_t *h = &out->header_extensions[out->header_extension_count++];
    snprintf(h->uri, sizeof h->uri, "%s", m->extmaps[i].uri);
    h->id = (uint8_t)m->extmaps[i].id;
  }
  if (m->rid_count > 0) {
    for (size_t i = 0; i < m->rid_count && out->encoding_count < MF_RTP_MAX_ENCODINGS; i++) {
      if (m->rids[i].direction != MF_SDP_RID_SEND) continue;
      snprintf(out->encodings[out->encoding_count++].rid, MF_RTP_RID_MAX, "%s", m->rids[i].id);
    }
  } else if (m->ssrc_count > 0) {
    mf_rtp_encoding_parameters_t *e = &out->encodings[out->encoding_count++];
    e->has_ssrc = true;
    e->ssrc = m->ssrcs[0].ssrc;
    for (size_t g = 0; g < m->ssrc_group_count; g++) {
      const mf_sdp_ssrc_group_t *grp = &m->ssrc_groups[g];
      if (strcmp(grp->semantics, "FID") == 0 && grp->ssrc_count == 2 && grp->ssrcs[0] == e->ssrc) {
        e->has_rtx = true;
        e->rtx_ssrc = grp->ssrcs[1];
      }
    }
  } else {
    out->encoding_count = 1; /* matched by mid at run time */
  }
  out->has_rtcp = true;
  if (m->ssrc_count > 0 && !mf_sdp_rtp_copy(out->rtcp.cname, sizeof out->rtcp.cname, m->ssrcs[0].cname))
    return mf_sdp_rtp_fail(err, errsz, "cname too long", m->mid);
  out->rtcp.has_reduced_size = true;
  out->rtcp.reduced_size = m->rtcp_rsize;
  out->rtcp.has_mux = true;
  out->rtcp.mux = true;
  return MF_OK;
}

static void mf_sdp_rtp_write_fmtp(const mf_rtp_params_t *p, char *out, size_t cap) {
  size_t n = 0;
  out[0] = '\0';
  for (size_t i = 0; i < p->count && n < cap; i++) {
    const mf_rtp_param_t *it = &p->items[i];
    int w = it->type == MF_RTP_PARAM_INT
                ? snprintf(out + n, cap - n, "%s%s=%lld", n ? ";" : "", it->name, (long long)it->int_value)
            : it->type == MF_RTP_PARAM_REAL
                ? snprintf(out + n, cap - n, "%s%s=%g", n ? ";" : "", it->name, it->real_value)
                : snprintf(out + n, cap - n, "%s%s=%s", n ? ";" : "", it->name, it->str_value);
    if (w < 0) break;
    n += (size_t)w;
  }
  if (n >= cap) out[cap - 1] = '\0';
}

mf_err_t mf_sdp_media_from_rtp_parameters(const mf_rtp_parameters_t *params,
                                          mf_media_kind_t kind, mf_sdp_direction_t direction,
                                          const char *stream_id, mf_sdp_media_t *m) {
  memset(m, 0, sizeof *m);
  if (kind != MF_MEDIA_KIND_AUDIO && kind != MF_MEDIA_KIND_VIDEO) return MF_ERR_INVALID_ARG;
  if (params->codec_count > MF_SDP_MAX_PAYLOADS || params->encoding_count == 0)
    return MF_ERR_INVALID_ARG;
  m->kind = kind == MF_MEDIA_KIND_AUDIO ? MF_SDP_KIND_AUDIO : MF_SDP_KIND_VIDEO;
  snprintf(m->kind_name, sizeof m->kind_name, "%s", mf_media_kind_str(kind));
  m->port = 9;
  snprintf(m->proto, sizeof m->proto, "UDP/TLS/RTP/SAVPF");
  snprintf(m->connection, sizeof m->connection, "0.0.0.0");
  snprintf(m->mid, sizeof m->mid, "%s", params->mid);
  m->direction = direction;
  m->rtcp_mux = true;
  m->rtcp_rsize = !params->has_rtcp || !params->rtcp.has_reduced_size || params->rtcp.reduced_size;
  for (size_t i = 0; i < params->codec_count; i++) {
    const mf_rtp_codec_parameters_t *c = &params->codecs[i];
    mf_sdp_payload_t *pl = &m->payloads[m->payload_count++];
    const char *slash = strchr(c->mime_type, '/');
    pl->pt = c->payload_type;
    if (!mf_sdp_rtp_copy(pl->name, sizeof pl->name, slash ? slash + 1 : c->mime_type))
      return MF_ERR_INVALID_ARG;
    pl->clock_rate = c->clock_rate;
    pl->channels = c->channels > 1 ? c->channels : 0;
    mf_sdp_rtp_write_fmtp(&c->parameters, pl->fmtp, sizeof pl->fmtp);
    for (size_t k = 0; k < c->rtcp_feedback_count && pl->fb_count < MF_SDP_MAX_RTCP_FB; k++) {
      mf_sdp_rtcp_fb_t *fb = &pl->fb[pl->fb_count++];
      if (!mf_sdp_rtp_copy(fb->type, sizeof fb->type, c->rtcp_feedback[k].type) ||
          !mf_sdp_rtp_copy(fb->param, sizeof fb->param, c->rtcp_feedback[k].parameter))
        return MF_ERR_INVALID_ARG;
    }
  }
  for (size_t i = 0; i < params->header_extension_count && m->extmap_count < MF_SDP_MAX_EXTMAPS; i++) {
    mf_sdp_extmap_t *x = &m->extmaps[m->extmap_count++];
    x->id = params->header_extensions[i].id;
    snprintf(x->uri, sizeof x->uri, "%s", params->header_extensions[i].uri);
  }
  const mf_rtp_encoding_parameters_t *e = &params->encodings[0];
  const char *cname = params->has_rtcp && params->rtcp.cname[0] ? params->rtcp.cname : "mafalda";
  uint32_t ssrcs[2] = {e->ssrc, e->rtx_ssrc};
  size_t n = e->has_rtx ? 2 : 1;
  for (size_t i = 0; i < n && e->has_ssrc; i++) {
    mf_sdp_ssrc_t *s = &m->ssrcs[m->ssrc_count++];
    s->ssrc = ssrcs[i];
    if (!mf_sdp_rtp_copy(s->cname, sizeof s->cname, cname)) return MF_ERR_INVALID_ARG;
    snprintf(s->msid, sizeof s->msid, "%s %s", stream_id ? stream_id : "-", params->mid);
  }
  if (e->has_ssrc && e->has_rtx) {
    mf_sdp_ssrc_group_t *g = &m->ssrc_groups[m->ssrc_group_count++];
    snprintf(g->semantics, sizeof g->semantics, "FID");
    g->ssrcs[0] = e->ssrc;
    g->ssrcs[1] = e->rtx_ssrc;
    g->ssrc_count = 2;
  }
  return MF_OK;
}
