#define MF_LOG_MODULE "sdp"
#include "node/sdp_answer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

static bool copy_cstr(char *dst, size_t cap, const char *src) {
  if (!src) return false;
  size_t n = strlen(src);
  if (n >= cap) return false;
  memcpy(dst, src, n + 1);
  return true;
}

static bool name_listed(const char *name, const char *const *list, size_t count) {
  for (size_t i = 0; i < count; i++)
    if (list[i] && strcasecmp(list[i], name) == 0) return true;
  return false;
}

static bool codec_accepted(const mf_sdp_local_t *local, const mf_sdp_media_t *om,
                           const mf_sdp_payload_t *pl) {
  if (local->codec_count > 0 && !name_listed(pl->name, local->codecs, local->codec_count))
    return false;
  return local->filter == NULL || local->filter(om, pl, local->filter_ctx);
}

/* Keeps accepted payloads in offer order; RTX only when its apt= payload is kept. */
static void answer_payloads(const mf_sdp_local_t *local, const mf_sdp_media_t *om,
                            mf_sdp_media_t *am) {
  bool keep[MF_SDP_MAX_PAYLOADS] = {false};
  for (size_t i = 0; i < om->payload_count; i++) {
    const mf_sdp_payload_t *pl = &om->payloads[i];
    keep[i] = strcasecmp(pl->name, "rtx") != 0 && codec_accepted(local, om, pl);
  }
  for (size_t i = 0; i < om->payload_count; i++) {
    const mf_sdp_payload_t *pl = &om->payloads[i];
    char apt[8];
    uint64_t apt_pt;
    if (strcasecmp(pl->name, "rtx") != 0 || !codec_accepted(local, om, pl)) continue;
    if (mf_sdp_fmtp_param(pl->fmtp, "apt", apt, sizeof apt) != MF_OK) continue;
    char *end = NULL;
    apt_pt = strtoull(apt, &end, 10);
    if (apt[0] < '0' || apt[0] > '9' || *end != '\0' || apt_pt > 127) continue;
    for (size_t k = 0; k < om->payload_count; k++)
      if (om->payloads[k].pt == apt_pt && keep[k] && strcasecmp(om->payloads[k].name, "rtx") != 0)
        keep[i] = true;
  }
  for (size_t i = 0; i < om->payload_count; i++)
    if (keep[i]) am->payloads[am->payload_count++] = om->payloads[i];
}

static bool proto_is_srtp(const char *proto) {
  size_t n = strlen(proto);
  return (n >= 5 && strcmp(proto + n - 5, "SAVPF") == 0) ||
         (n >= 4 && strcmp(proto + n - 4, "SAVP") == 0);
}

static bool in_offer_bundle(const mf_sdp_t *offer, size_t index) {
  const char *mid = offer->media[index].mid;
  if (offer->bundle_count == 0) return index == 0;
  if (!mid[0]) return false;
  for (size_t i = 0; i < offer->bundle_count; i++)
    if (strcmp(offer->bundle_mids[i], mid) == 0) return true;
  return false;
}

static mf_sdp_setup_t answer_setup(mf_sdp_setup_t offered, mf_sdp_setup_t ours) {
  switch (offered) {
    case MF_SDP_SETUP_ACTPASS: return ours;
    case MF_SDP_SETUP_ACTIVE: return MF_SDP_SETUP_PASSIVE;
    case MF_SDP_SETUP_PASSIVE: return MF_SDP_SETUP_ACTIVE;
    case MF_SDP_SETUP_NONE: return MF_SDP_SETUP_PASSIVE; /* RFC 4145: offerer defaults to active */
    default: return MF_SDP_SETUP_NONE;
  }
}

/* What every answered section repeats from the offer, on a zeroed section. */
static void answer_skeleton(const mf_sdp_media_t *om, mf_sdp_media_t *am) {
  memset(am, 0, sizeof *am);
  am->kind = om->kind;
  memcpy(am->kind_name, om->kind_name, sizeof am->kind_name);
  memcpy(am->proto, om->proto, sizeof am->proto);
  memcpy(am->fmt, om->fmt, sizeof am->fmt);
  memcpy(am->mid, om->mid, sizeof am->mid);
}

static void answer_reject(const mf_sdp_media_t *om, mf_sdp_media_t *am) {
  am->port = 0;
  snprintf(am->connection, sizeof am->connection, "0.0.0.0");
  am->direction = MF_SDP_DIR_INACTIVE;
  if (om->payload_count > 0) {
    am->payloads[0] = om->payloads[0];
    am->payloads[0].fb_count = 0;
    memset(am->payloads[0].fb, 0, sizeof am->payloads[0].fb);
    memset(am->payloads[0].fmtp, 0, sizeof am->payloads[0].fmtp);
    am->payload_count = 1;
  }
}

/* Returns false when the section must be rejected. */
static bool answer_media(const mf_sdp_local_t *local, const mf_sdp_media_t *om,
                         mf_sdp_media_t *am) {
  mf_sdp_setup_t setup = answer_setup(om->transport.setup, local->setup);
  if (setup == MF_SDP_SETUP_NONE) return false;
  if (om->kind == MF_SDP_KIND_AUDIO || om->kind == MF_SDP_KIND_VIDEO) {
    if (!proto_is_srtp(om->proto)) return false;
    answer_payloads(local, om, am);
    if (am->payload_count == 0) return false;
    am->direction = mf_sdp_direction_reverse(om->direction);
    if (om->direction == MF_SDP_DIR_SENDRECV && local->sendrecv_answer != MF_SDP_DIR_UNSET)
      am->direction = local->sendrecv_answer;
    am->rtcp_mux = om->rtcp_mux;
    am->rtcp_rsize = om->rtcp_rsize;
    am->extmap_allow_mixed = om->extmap_allow_mixed;
    for (size_t i = 0; i < om->extmap_count; i++) {
      const mf_sdp_extmap_t *e = &om->extmaps[i];
      if (local->extmap_uri_count > 0 &&
          !name_listed(e->uri, local->extmap_uris, local->extmap_uri_count))
        continue;
      mf_sdp_extmap_t *ae = &am->extmaps[am->extmap_count++];
      *ae = *e;
      ae->direction = mf_sdp_direction_reverse(e->direction);
    }
    for (size_t i = 0; i < om->rid_count; i++) {
      am->rids[i] = om->rids[i];
      am->rids[i].direction =
          om->rids[i].direction == MF_SDP_RID_SEND ? MF_SDP_RID_RECV : MF_SDP_RID_SEND;
    }
    am->rid_count = om->rid_count;
    memcpy(am->simulcast_send, om->simulcast_recv, sizeof am->simulcast_send);
    memcpy(am->simulcast_recv, om->simulcast_send, sizeof am->simulcast_recv);
  } else if (om->kind == MF_SDP_KIND_APPLICATION) {
    bool sctp = strcmp(om->proto, "UDP/DTLS/SCTP") == 0 || strcmp(om->proto, "TCP/DTLS/SCTP") == 0 ||
                strcmp(om->proto, "DTLS/SCTP") == 0;
    if (!local->accept_data || !sctp || !om->fmt[0]) return false;
    am->direction = MF_SDP_DIR_SENDRECV; /* written as no attribute */
    am->sctp_port = local->sctp_port ? local->sctp_port : om->sctp_port ? om->sctp_port : 5000;
    am->max_message_size = local->max_message_size ? local->max_message_size
                                                   : om->max_message_size;
  } else {
    return false;
  }
  mf_sdp_transport_t *t = &am->transport;
  copy_cstr(t->ice_ufrag, sizeof t->ice_ufrag, local->ice_ufrag);
  copy_cstr(t->ice_pwd, sizeof t->ice_pwd, local->ice_pwd);
  copy_cstr(t->fingerprint_alg, sizeof t->fingerprint_alg, local->fingerprint_alg);
  copy_cstr(t->fingerprint, sizeof t->fingerprint, local->fingerprint);
  t->setup = setup;
  for (size_t i = 0; i < local->candidate_count; i++) am->candidates[i] = local->candidates[i];
  am->candidate_count = local->candidate_count;
  /* ice-lite knows every candidate up front. */
  am->end_of_candidates = local->candidate_count > 0;
  if (local->candidate_count > 0) {
    am->port = local->candidates[0].port;
    memcpy(am->connection, local->candidates[0].address, sizeof am->connection);
  } else {
    am->port = 9; /* JSEP's placeholder when no candidate is known */
    snprintf(am->connection, sizeof am->connection, "0.0.0.0");
  }
  return true;
}

mf_err_t mf_sdp_make_answer(const mf_sdp_t *offer, const mf_sdp_local_t *local,
                            mf_sdp_t *answer) {
  if (!offer || !local || !answer || offer == answer) return MF_ERR_INVALID_ARG;
  mf_sdp_transport_t probe;
  if (!copy_cstr(probe.ice_ufrag, sizeof probe.ice_ufrag, local->ice_ufrag) ||
      !copy_cstr(probe.ice_pwd, sizeof probe.ice_pwd, local->ice_pwd) ||
      !copy_cstr(probe.fingerprint_alg, sizeof probe.fingerprint_alg, local->fingerprint_alg) ||
      !copy_cstr(probe.fingerprint, sizeof probe.fingerprint, local->fingerprint) ||
      !local->ice_ufrag[0] || !local->ice_pwd[0] || !local->fingerprint[0])
    return MF_ERR_INVALID_ARG;
  if (local->setup != MF_SDP_SETUP_ACTIVE && local->setup != MF_SDP_SETUP_PASSIVE)
    return MF_ERR_INVALID_ARG;
  if (local->candidate_count > MF_SDP_MAX_CANDIDATES ||
      (local->candidate_count > 0 && !local->candidates))
    return MF_ERR_INVALID_ARG;
  if (offer->media_count > MF_SDP_MAX_MEDIA || offer->bundle_count > MF_SDP_MAX_MEDIA)
    return MF_ERR_INVALID_ARG;
  for (size_t i = 0; i < offer->media_count; i++)
    if (!mf_sdp_media_counts_valid(&offer->media[i])) return MF_ERR_INVALID_ARG;

  memset(answer, 0, sizeof *answer);
  snprintf(answer->origin_user, sizeof answer->origin_user, "-");
  snprintf(answer->session_id, sizeof answer->session_id, "%" PRIu64, local->session_id);
  answer->session_version = local->session_version;
  answer->ice_lite = local->ice_lite;
  answer->extmap_allow_mixed = offer->extmap_allow_mixed;
  snprintf(answer->msid_semantic, sizeof answer->msid_semantic, "WMS *");

  bool accepted[MF_SDP_MAX_MEDIA] = {false};
  for (size_t i = 0; i < offer->media_count; i++) {
    const mf_sdp_media_t *om = &offer->media[i];
    mf_sdp_media_t *am = &answer->media[i];
    answer_skeleton(om, am);
    bool wanted = in_offer_bundle(offer, i) && (om->port != 0 || om->bundle_only);
    accepted[i] = wanted && answer_media(local, om, am);
    if (!accepted[i]) {
      answer_skeleton(om, am); /* start over: a half-built section leaves nothing behind */
      answer_reject(om, am);
    }
  }
  answer->media_count = offer->media_count;

  /* The offerer's BUNDLE-tag (first mid) stays first when accepted (RFC 8843 7.3.1);
   * each accepted section is listed once even if the offer repeats a mid. */
  for (size_t b = 0; b < offer->bundle_count; b++) {
    int idx = mf_sdp_find_mid(offer, offer->bundle_mids[b]);
    if (idx < 0 || !accepted[idx]) continue;
    accepted[idx] = false;
    memcpy(answer->bundle_mids[answer->bundle_count++], offer->bundle_mids[b], MF_SDP_TOKEN_LEN);
  }
  MF_LOG_DEBUG("answer: %zu sections, %zu bundled", answer->media_count, answer->bundle_count);
  return MF_OK;
}
