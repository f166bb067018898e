/* Fuzzes what a WHIP/WHEP request brings (node/whip_sdp.h): the first line is the request
 * path, the rest the SDP offer. A parsed offer that passes the WHIP (or WHEP) checks must
 * yield an answer that writes, and for WHEP the per-section capabilities and an answer
 * with a synthetic consumer on each usable section. Any failure must be a clean error. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/ortc.h"
#include "node/whip_sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mf_whip_transport_t *local_transport(void) {
  static mf_whip_transport_t t;
  static bool done;
  if (!done) {
    json_t *j = json_pack("{s:s, s:{s:s, s:s}, s:[{s:s, s:i, s:s, s:s, s:i, s:s}], s:{s:[{s:s, s:s}]}}",
                          "id", "3b241101-e2bb-4255-8caf-4136c566a962", "iceParameters",
                          "usernameFragment", "ufrag", "password", "passwordpasswordpass",
                          "iceCandidates", "foundation", "udp", "priority", 1000, "address",
                          "127.0.0.1", "protocol", "udp", "port", 40000, "type", "host",
                          "dtlsParameters", "fingerprints", "algorithm", "sha-256", "value", "AA:BB");
    char err[128];
    if (mf_whip_transport_from_json(j, &t, err, sizeof err) != MF_OK) abort();
    json_decref(j);
    done = true;
  }
  return &t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size);
  size_t line = nl ? (size_t)(nl - data) : size;
  char path[512];
  size_t plen = line < sizeof path ? line : sizeof path - 1;
  memcpy(path, data, plen);
  path[plen] = '\0';
  mf_whip_path_t p;
  bool whep = mf_whip_path_parse(path, &p) == MF_OK && p.whep;
  if (!nl) return 0;
  static mf_sdp_t offer, answer;
  static char text[256 * 1024];
  if (mf_sdp_parse((const char *)nl + 1, size - line - 1, &offer) != MF_OK) return 0;
  char err[256];
  if (mf_whip_offer_check(&offer, whep, err, sizeof err) != MF_OK) return 0;
  json_decref(mf_whip_dtls_parameters(&offer));
  if (!whep) {
    static mf_rtp_capabilities_t caps;
    static bool have_caps;
    if (!have_caps) {
      size_t n;
      const mf_rtp_codec_capability_t *codecs = mf_ortc_default_media_codecs(&n);
      if (mf_ortc_generate_router_rtp_capabilities(codecs, n, &caps, err, sizeof err)) abort();
      have_caps = true;
    }
    json_t *producers = NULL;
    if (mf_whip_publish_answer(&offer, &caps, local_transport(), &answer, &producers, err,
                               sizeof err) == MF_OK) {
      if (!producers || mf_sdp_write(&answer, text, sizeof text, NULL) != MF_OK) abort();
    }
    json_decref(producers);
    return 0;
  }
  json_t *consumers[MF_SDP_MAX_MEDIA] = {NULL};
  for (size_t i = 0; i < offer.media_count; i++) {
    if (!mf_whip_section_usable(&offer, i, true)) continue;
    json_t *caps = mf_whip_section_capabilities(&offer.media[i], err, sizeof err);
    json_decref(caps);
    consumers[i] = json_pack(
        "{s:s, s:{s:s, s:[{s:s, s:i, s:i, s:{}, s:[]}], s:[], s:[{s:i}], s:{s:s}}}", "kind",
        offer.media[i].kind == MF_SDP_KIND_AUDIO ? "audio" : "video", "rtpParameters", "mid",
        "0", "codecs", "mimeType",
        offer.media[i].kind == MF_SDP_KIND_AUDIO ? "audio/opus" : "video/VP8", "payloadType", 100,
        "clockRate", offer.media[i].kind == MF_SDP_KIND_AUDIO ? 48000 : 90000, "parameters",
        "rtcpFeedback", "headerExtensions", "encodings", "ssrc", 1234, "rtcp", "cname", "x");
  }
  if (mf_whip_play_answer(&offer, local_transport(), consumers, &answer, err, sizeof err) == MF_OK)
    if (mf_sdp_write(&answer, text, sizeof text, NULL) != MF_OK) abort();
  for (size_t i = 0; i < MF_SDP_MAX_MEDIA; i++) json_decref(consumers[i]);
  return 0;
}
