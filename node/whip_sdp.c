#include "node/whip_sdp.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/ortc.h"
#include "node/sdp_answer.h"
#include "node/sdp_rtp.h"

#define MID_URI "urn:ietf:params:rtp-hdrext:sdes:mid"

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool copy_str(char *dst, size_t cap, const char *src) {
  if (!src) return false;
  size_t n = strlen(src);
  if (n >= cap) return false;
  memcpy(dst, src, n + 1);
  return true;
}

/* ---------------------------------------------------------------- HTTP details */

mf_err_t mf_whip_path_parse(const char *uri, mf_whip_path_t *out) {
  memset(out, 0, sizeof *out);
  if (!uri) return MF_ERR_NOT_FOUND;
  size_t n = strcspn(uri, "?#");
  if (n < 7 || (strncmp(uri, "/whip/", 6) != 0 && strncmp(uri, "/whep/", 6) != 0))
    return MF_ERR_NOT_FOUND;
  out->whep = uri[3] == 'e';
  const char *p = uri + 6, *end = uri + n;
  size_t r = 0;
  for (; p < end && *p != '/'; p++) {
    char c = *p;
    if (c == '%') {
      if (end - p < 3) return MF_ERR_NOT_FOUND;
      int hi = hexval(p[1]), lo = hexval(p[2]);
      if (hi < 0 || lo < 0) return MF_ERR_NOT_FOUND;
      c = (char)(hi * 16 + lo);
      p += 2;
    }
    if ((unsigned char)c < 0x20 || c == 0x7f || c == '/' || r >= MF_WHIP_ROOM_MAX)
      return MF_ERR_NOT_FOUND;
    out->room[r++] = c;
  }
  if (r == 0) return MF_ERR_NOT_FOUND;
  if (p == end) return MF_OK;
  p++; /* the '/' after the room */
  size_t idlen = (size_t)(end - p);
  if (idlen == 0) return MF_OK; /* "/whip/room/" */
  if (idlen != MF_ID_LEN || memchr(p, '/', idlen)) return MF_ERR_NOT_FOUND;
  memcpy(out->id, p, MF_ID_LEN);
  out->id[MF_ID_LEN] = '\0';
  return mf_id_is_valid(out->id) ? MF_OK : MF_ERR_NOT_FOUND;
}

bool mf_whip_is_sdp_type(const char *ct) {
  if (!ct) return false;
  while (*ct == ' ' || *ct == '\t') ct++;
  static const char want[] = "application/sdp";
  if (strncasecmp(ct, want, sizeof want - 1) != 0) return false;
  ct += sizeof want - 1;
  while (*ct == ' ' || *ct == '\t') ct++;
  return *ct == '\0' || *ct == ';';
}

bool mf_whip_bearer(const char *auth, const char **token, size_t *len) {
  if (!auth) return false;
  while (*auth == ' ') auth++;
  if (strncasecmp(auth, "Bearer", 6) != 0 || (auth[6] != ' ' && auth[6] != '\t')) return false;
  const char *t = auth + 6;
  while (*t == ' ' || *t == '\t') t++;
  size_t n = strlen(t);
  while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t')) n--;
  if (n == 0) return false;
  *token = t;
  *len = n;
  return true;
}

/* ---------------------------------------------------------------- transport */

mf_err_t mf_whip_transport_from_json(const json_t *reply, mf_whip_transport_t *out, char *err,
                                     size_t errsz) {
  memset(out, 0, sizeof *out);
  const json_t *ice = json_object_get(reply, "iceParameters");
  const json_t *dtls = json_object_get(reply, "dtlsParameters");
  if (!copy_str(out->id, sizeof out->id, json_string_value(json_object_get(reply, "id"))) ||
      !copy_str(out->ice_ufrag, sizeof out->ice_ufrag,
                json_string_value(json_object_get(ice, "usernameFragment"))) ||
      !copy_str(out->ice_pwd, sizeof out->ice_pwd,
                json_string_value(json_object_get(ice, "password")))) {
    snprintf(err, errsz, "transport without id or ICE parameters");
    return MF_ERR_PARSE;
  }
  size_t i;
  const json_t *fp;
  json_array_foreach(json_object_get(dtls, "fingerprints"), i, fp) {
    const char *alg = json_string_value(json_object_get(fp, "algorithm"));
    if (alg && strcmp(alg, "sha-256") == 0 &&
        copy_str(out->fingerprint, sizeof out->fingerprint,
                 json_string_value(json_object_get(fp, "value")))) {
      snprintf(out->fingerprint_alg, sizeof out->fingerprint_alg, "sha-256");
      break;
    }
  }
  if (!out->fingerprint[0]) {
    snprintf(err, errsz, "transport without a sha-256 fingerprint");
    return MF_ERR_PARSE;
  }
  const json_t *c;
  json_array_foreach(json_object_get(reply, "iceCandidates"), i, c) {
    if (out->candidate_count == MF_SDP_MAX_CANDIDATES) break;
    mf_sdp_candidate_t *sc = &out->candidates[out->candidate_count];
    const char *ip = json_string_value(json_object_get(c, "address"));
    if (!ip) ip = json_string_value(json_object_get(c, "ip"));
    json_int_t port = json_integer_value(json_object_get(c, "port"));
    json_int_t prio = json_integer_value(json_object_get(c, "priority"));
    const char *proto = json_string_value(json_object_get(c, "protocol"));
    const char *type = json_string_value(json_object_get(c, "type"));
    const char *foundation = json_string_value(json_object_get(c, "foundation"));
    if (!copy_str(sc->address, sizeof sc->address, ip) || port <= 0 || port > 65535 ||
        prio < 0 || prio > 0xffffffffLL ||
        !copy_str(sc->transport, sizeof sc->transport, proto ? proto : "udp") ||
        !copy_str(sc->type, sizeof sc->type, type ? type : "host") ||
        !copy_str(sc->foundation, sizeof sc->foundation, foundation ? foundation : "0")) {
      snprintf(err, errsz, "transport candidate %zu is malformed", i);
      return MF_ERR_PARSE;
    }
    const char *tcptype = json_string_value(json_object_get(c, "tcpType"));
    if (tcptype) copy_str(sc->tcptype, sizeof sc->tcptype, tcptype);
    sc->component = 1;
    sc->port = (uint16_t)port;
    sc->priority = (uint32_t)prio;
    out->candidate_count++;
  }
  if (out->candidate_count == 0) {
    snprintf(err, errsz, "transport without candidates");
    return MF_ERR_PARSE;
  }
  return MF_OK;
}

/* ---------------------------------------------------------------- offers */

static bool is_av(const mf_sdp_media_t *m) {
  return m->kind == MF_SDP_KIND_AUDIO || m->kind == MF_SDP_KIND_VIDEO;
}

mf_err_t mf_whip_offer_check(const mf_sdp_t *offer, bool whep, char *err, size_t errsz) {
  size_t usable = 0;
  for (size_t i = 0; i < offer->media_count; i++) {
    const mf_sdp_media_t *m = &offer->media[i];
    if (!is_av(m) || (m->port == 0 && !m->bundle_only)) continue;
    mf_sdp_direction_t want = whep ? MF_SDP_DIR_RECVONLY : MF_SDP_DIR_SENDONLY;
    if (m->direction != want && m->direction != MF_SDP_DIR_SENDRECV) {
      snprintf(err, errsz, "media section %zu (mid '%s') is %s: %s needs %s", i, m->mid,
               mf_sdp_direction_name(m->direction), whep ? "WHEP" : "WHIP",
               mf_sdp_direction_name(want));
      return MF_ERR_PARSE;
    }
    if (!m->transport.ice_ufrag[0] || !m->transport.ice_pwd[0]) {
      snprintf(err, errsz, "media section %zu has no a=ice-ufrag/a=ice-pwd", i);
      return MF_ERR_PARSE;
    }
    if (!m->transport.fingerprint[0]) {
      snprintf(err, errsz, "media section %zu has no a=fingerprint", i);
      return MF_ERR_PARSE;
    }
    usable++;
  }
  if (usable == 0) {
    snprintf(err, errsz, "the offer has no audio or video section");
    return MF_ERR_PARSE;
  }
  return MF_OK;
}

bool mf_whip_section_usable(const mf_sdp_t *offer, size_t i, bool whep) {
  if (i >= offer->media_count) return false;
  const mf_sdp_media_t *m = &offer->media[i];
  if (!is_av(m) || (m->port == 0 && !m->bundle_only)) return false;
  if (m->direction != (whep ? MF_SDP_DIR_RECVONLY : MF_SDP_DIR_SENDONLY) &&
      m->direction != MF_SDP_DIR_SENDRECV)
    return false;
  if (offer->bundle_count == 0) return i == 0;
  for (size_t k = 0; k < offer->bundle_count; k++)
    if (strcmp(offer->bundle_mids[k], m->mid) == 0) return true;
  return false;
}

static const mf_sdp_media_t *first_av(const mf_sdp_t *offer) {
  for (size_t i = 0; i < offer->media_count; i++)
    if (is_av(&offer->media[i]) && offer->media[i].transport.fingerprint[0])
      return &offer->media[i];
  return NULL;
}

json_t *mf_whip_dtls_parameters(const mf_sdp_t *offer) {
  const mf_sdp_media_t *m = first_av(offer);
  if (!m) return NULL;
  /* mediasoup's dtlsParameters.role is the REMOTE's role. */
  const char *role = m->transport.setup == MF_SDP_SETUP_PASSIVE ? "server" : "client";
  return json_pack("{s:s, s:[{s:s, s:s}]}", "role", role, "fingerprints", "algorithm",
                   m->transport.fingerprint_alg, "value", m->transport.fingerprint);
}

static void fill_local(const mf_whip_transport_t *t, const mf_sdp_t *offer,
                       mf_sdp_local_t *local) {
  memset(local, 0, sizeof *local);
  local->ice_ufrag = t->ice_ufrag;
  local->ice_pwd = t->ice_pwd;
  local->ice_lite = true;
  local->fingerprint_alg = t->fingerprint_alg;
  local->fingerprint = t->fingerprint;
  local->setup = MF_SDP_SETUP_PASSIVE;
  local->candidates = t->candidates;
  local->candidate_count = t->candidate_count;
  local->session_id = 1;
  local->session_version = 1;
  (void)offer;
}

/* ---------------------------------------------------------------- WHIP */

typedef struct {
  const mf_sdp_t *offer;
  int chosen[MF_SDP_MAX_MEDIA]; /* payload type kept per section, -1 none */
  bool video_rtx;               /* the router has video/rtx */
} choice_t;

static bool choose_filter(const mf_sdp_media_t *m, const mf_sdp_payload_t *pl, void *ctx) {
  const choice_t *ch = ctx;
  size_t idx = (size_t)(m - ch->offer->media);
  if (idx >= MF_SDP_MAX_MEDIA || ch->chosen[idx] < 0) return false;
  if (strcasecmp(pl->name, "rtx") == 0) return m->kind == MF_SDP_KIND_VIDEO && ch->video_rtx;
  return pl->pt == ch->chosen[idx];
}

/* The first payload of m the router supports (strict H264/VP9 profile checks), or -1. */
static int choose_codec(const mf_sdp_media_t *m, const mf_rtp_capabilities_t *caps,
                        mf_rtp_parameters_t *scratch) {
  char err[128];
  if (mf_sdp_rtp_parameters_from_media(m, scratch, err, sizeof err) != MF_OK) return -1;
  mf_media_kind_t kind = m->kind == MF_SDP_KIND_AUDIO ? MF_MEDIA_KIND_AUDIO : MF_MEDIA_KIND_VIDEO;
  for (size_t i = 0; i < scratch->codec_count; i++) {
    const mf_rtp_codec_parameters_t *c = &scratch->codecs[i];
    if (mf_ortc_is_rtx_mime(c->mime_type)) continue;
    for (size_t k = 0; k < caps->codec_count; k++) {
      const mf_rtp_codec_capability_t *cc = &caps->codecs[k];
      if (cc->kind != kind || mf_ortc_is_rtx_mime(cc->mime_type)) continue;
      if (mf_ortc_match_codecs(c->mime_type, c->clock_rate, c->channels, &c->parameters,
                               cc->mime_type, cc->clock_rate, cc->channels, &cc->parameters,
                               true))
        return c->payload_type;
    }
  }
  return -1;
}

/* Keeps the codecs and header extensions the answer section accepted. */
static void keep_negotiated(mf_rtp_parameters_t *p, const mf_sdp_media_t *am) {
  size_t n = 0;
  bool rtx = false;
  for (size_t i = 0; i < p->codec_count; i++) {
    bool kept = false;
    for (size_t k = 0; k < am->payload_count && !kept; k++)
      kept = am->payloads[k].pt == p->codecs[i].payload_type;
    if (!kept) continue;
    rtx = rtx || mf_ortc_is_rtx_mime(p->codecs[i].mime_type);
    p->codecs[n++] = p->codecs[i];
  }
  p->codec_count = n;
  if (!rtx)
    for (size_t e = 0; e < p->encoding_count; e++) p->encodings[e].has_rtx = false;
  n = 0;
  for (size_t i = 0; i < p->header_extension_count; i++) {
    bool kept = false;
    for (size_t k = 0; k < am->extmap_count && !kept; k++)
      kept = am->extmaps[k].id == p->header_extensions[i].id;
    if (kept) p->header_extensions[n++] = p->header_extensions[i];
  }
  p->header_extension_count = n;
}

mf_err_t mf_whip_publish_answer(const mf_sdp_t *offer, const mf_rtp_capabilities_t *caps,
                                const mf_whip_transport_t *local, mf_sdp_t *answer,
                                json_t **producers, char *err, size_t errsz) {
  *producers = NULL;
  choice_t *ch = calloc(1, sizeof *ch);
  mf_rtp_parameters_t *params = malloc(sizeof *params);
  const char **uris = calloc(caps->header_extension_count + 1, sizeof *uris);
  mf_err_t e = MF_ERR_NO_MEMORY;
  if (!ch || !params || !uris) goto out;
  ch->offer = offer;
  for (size_t k = 0; k < caps->codec_count; k++)
    if (caps->codecs[k].kind == MF_MEDIA_KIND_VIDEO && mf_ortc_is_rtx_mime(caps->codecs[k].mime_type))
      ch->video_rtx = true;
  size_t supported = 0;
  for (size_t i = 0; i < offer->media_count && i < MF_SDP_MAX_MEDIA; i++) {
    ch->chosen[i] = is_av(&offer->media[i]) ? choose_codec(&offer->media[i], caps, params) : -1;
    if (ch->chosen[i] >= 0) supported++;
  }
  if (supported == 0) {
    snprintf(err, errsz, "no offered codec is supported by the room (see its rtpCapabilities)");
    e = MF_ERR_UNSUPPORTED;
    goto out;
  }
  for (size_t k = 0; k < caps->header_extension_count; k++) uris[k] = caps->header_extensions[k].uri;
  mf_sdp_local_t l;
  fill_local(local, offer, &l);
  l.filter = choose_filter;
  l.filter_ctx = ch;
  l.extmap_uris = uris;
  l.extmap_uri_count = caps->header_extension_count;
  l.sendrecv_answer = MF_SDP_DIR_RECVONLY;
  e = mf_sdp_make_answer(offer, &l, answer);
  if (e) {
    snprintf(err, errsz, "cannot answer the offer (%s)", mf_strerror(e));
    e = MF_ERR_PARSE;
    goto out;
  }
  json_t *list = json_array();
  for (size_t i = 0; i < answer->media_count; i++) {
    const mf_sdp_media_t *am = &answer->media[i];
    if (!is_av(am) || am->payload_count == 0 || am->direction == MF_SDP_DIR_INACTIVE) continue;
    e = mf_sdp_rtp_parameters_from_media(&offer->media[i], params, err, errsz);
    if (e) {
      json_decref(list);
      e = MF_ERR_PARSE;
      goto out;
    }
    keep_negotiated(params, am);
    json_array_append_new(list, json_pack("{s:s, s:o}", "kind",
                                          am->kind == MF_SDP_KIND_AUDIO ? "audio" : "video",
                                          "rtpParameters", mf_rtp_parameters_to_json(params)));
  }
  if (json_array_size(list) == 0) {
    json_decref(list);
    snprintf(err, errsz, "no media section could be accepted (BUNDLE?)");
    e = MF_ERR_UNSUPPORTED;
    goto out;
  }
  *producers = list;
  e = MF_OK;
out:
  free(ch);
  free(params);
  free(uris);
  return e;
}

/* ---------------------------------------------------------------- WHEP */

json_t *mf_whip_section_capabilities(const mf_sdp_media_t *m, char *err, size_t errsz) {
  mf_rtp_parameters_t *p = malloc(sizeof *p);
  if (!p) {
    snprintf(err, errsz, "out of memory");
    return NULL;
  }
  if (mf_sdp_rtp_parameters_from_media(m, p, err, errsz) != MF_OK) {
    free(p);
    return NULL;
  }
  const char *kind = m->kind == MF_SDP_KIND_AUDIO ? "audio" : "video";
  json_t *codecs = json_array(), *exts = json_array();
  for (size_t i = 0; i < p->codec_count; i++) {
    const mf_rtp_codec_parameters_t *c = &p->codecs[i];
    json_t *cj = mf_rtp_codec_parameters_to_json(c);
    if (!cj) continue;
    /* parameters -> capability: payloadType becomes preferredPayloadType */
    json_object_set_new(cj, "preferredPayloadType", json_integer(c->payload_type));
    json_object_del(cj, "payloadType");
    json_object_set_new(cj, "kind", json_string(kind));
    json_array_append_new(codecs, cj);
  }
  for (size_t i = 0; i < p->header_extension_count; i++) {
    if (strcmp(p->header_extensions[i].uri, MID_URI) == 0) continue;
    json_array_append_new(exts, json_pack("{s:s, s:s, s:i, s:b, s:s}", "kind", kind, "uri",
                                          p->header_extensions[i].uri, "preferredId",
                                          (int)p->header_extensions[i].id, "preferredEncrypt", 0,
                                          "direction", "sendrecv"));
  }
  free(p);
  return json_pack("{s:o, s:o}", "codecs", codecs, "headerExtensions", exts);
}

mf_err_t mf_whip_play_answer(const mf_sdp_t *offer, const mf_whip_transport_t *local,
                             json_t *const *consumers, mf_sdp_t *answer, char *err,
                             size_t errsz) {
  mf_sdp_local_t l;
  fill_local(local, offer, &l);
  l.sendrecv_answer = MF_SDP_DIR_SENDONLY;
  mf_err_t e = mf_sdp_make_answer(offer, &l, answer);
  if (e) {
    snprintf(err, errsz, "cannot answer the offer (%s)", mf_strerror(e));
    return MF_ERR_PARSE;
  }
  mf_rtp_parameters_t *p = malloc(sizeof *p);
  mf_sdp_media_t *tmp = malloc(sizeof *tmp);
  e = p && tmp ? MF_OK : MF_ERR_NO_MEMORY;
  for (size_t i = 0; !e && i < answer->media_count && i < offer->media_count; i++) {
    mf_sdp_media_t *am = &answer->media[i];
    if (!is_av(am)) continue;
    const json_t *c = consumers[i];
    if (!c || am->port == 0) {
      if (am->port != 0) am->direction = MF_SDP_DIR_INACTIVE;
      continue;
    }
    const char *kind = json_string_value(json_object_get(c, "kind"));
    if (mf_rtp_parameters_from_json(json_object_get(c, "rtpParameters"), "rtpParameters", p, err,
                                    errsz) != MF_OK ||
        mf_sdp_media_from_rtp_parameters(p, mf_media_kind_parse(kind), MF_SDP_DIR_SENDONLY,
                                         "mafalda", tmp) != MF_OK) {
      if (!err[0]) snprintf(err, errsz, "consumer of section %zu cannot be described", i);
      e = MF_ERR_PARSE;
      break;
    }
    memcpy(am->payloads, tmp->payloads, sizeof am->payloads);
    am->payload_count = tmp->payload_count;
    memcpy(am->extmaps, tmp->extmaps, sizeof am->extmaps);
    am->extmap_count = tmp->extmap_count;
    memcpy(am->ssrcs, tmp->ssrcs, sizeof am->ssrcs);
    am->ssrc_count = tmp->ssrc_count;
    memcpy(am->ssrc_groups, tmp->ssrc_groups, sizeof am->ssrc_groups);
    am->ssrc_group_count = tmp->ssrc_group_count;
    memcpy(am->msid, tmp->msid, sizeof am->msid);
    am->direction = MF_SDP_DIR_SENDONLY;
  }
  free(p);
  free(tmp);
  if (e == MF_ERR_NO_MEMORY) snprintf(err, errsz, "out of memory");
  return e;
}
