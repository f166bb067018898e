/* Building an SFU's SDP answer to a peer's offer (WebRTC interop tests now, WHIP/WHEP
 * endpoints later): mirrors each offered section with the reversed direction, the codecs
 * and header extensions the SFU accepts, and the SFU's ICE-lite/DTLS parameters, all
 * bundled on one transport. Pure functions on mf_sdp_t (node/sdp.h); thread-safe. */
#ifndef MF_SDP_ANSWER_H
#define MF_SDP_ANSWER_H

#include "node/sdp.h"

/* Optional extra codec check for mf_sdp_make_answer: return true to keep the payload. */
typedef bool (*mf_sdp_codec_filter_fn)(const mf_sdp_media_t *offered,
                                       const mf_sdp_payload_t *payload, void *ctx);

/* What the SFU answers with. Strings are copied. */
typedef struct {
  const char *ice_ufrag;
  const char *ice_pwd;
  bool ice_lite;
  const char *fingerprint_alg; /* "sha-256" */
  const char *fingerprint;     /* "AB:CD:..." */
  /* Our DTLS role when the offer says actpass: MF_SDP_SETUP_PASSIVE or _ACTIVE. An offer
   * of active gets passive and passive gets active regardless. */
  mf_sdp_setup_t setup;
  const mf_sdp_candidate_t *candidates; /* host candidates, copied into each section */
  size_t candidate_count;
  /* Accepted encoding names, case-insensitive ("VP8", "opus", "rtx"). NULL/0 accepts all.
   * An "rtx" payload is kept only when its apt= payload is kept too. */
  const char *const *codecs;
  size_t codec_count;
  mf_sdp_codec_filter_fn filter; /* optional, applied after the name list */
  void *filter_ctx;
  /* Accepted header extension URIs; NULL/0 keeps every offered extmap. */
  const char *const *extmap_uris;
  size_t extmap_uri_count;
  /* Direction to answer a sendrecv section with; UNSET means sendrecv. */
  mf_sdp_direction_t sendrecv_answer;
  bool accept_data; /* accept an SCTP data channel section */
  uint16_t sctp_port;        /* 0: mirror the offer's */
  uint32_t max_message_size; /* 0: mirror the offer's */
  uint64_t session_id;       /* o= of the answer */
  uint64_t session_version;
} mf_sdp_local_t;

/* Builds an answer to offer: one media section per offered one, same kind, proto and
 * mid, with the reversed direction, the payload types the caller accepts (in the
 * offer's order, with their rtcp-fb and fmtp), the kept extmaps, rtcp-mux/rsize as
 * offered, rids and simulcast with send/recv swapped, and local ICE/DTLS/candidates.
 * All accepted sections are bundled on one transport:
 *  - the offer has a BUNDLE group: sections outside it are rejected;
 *  - it has none: only the first section can be accepted.
 * A section is also rejected (port 0, inactive, no transport attributes) when its port
 * is 0 without bundle-only, its proto is not DTLS-SRTP/DTLS-SCTP, no payload survives,
 * or it is a data channel and accept_data is false. The answer carries no a=ssrc or
 * a=msid: a caller that sends on a section fills those in afterwards.
 * offer is expected to come from mf_sdp_parse (NUL-terminated strings, counts in range;
 * counts are checked). MF_ERR_INVALID_ARG when a local string is missing or too long for
 * the struct, or local->setup is not ACTIVE/PASSIVE. */
mf_err_t mf_sdp_make_answer(const mf_sdp_t *offer, const mf_sdp_local_t *local,
                            mf_sdp_t *answer);

#endif
