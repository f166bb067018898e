/* The pure parts of WHIP/WHEP (node/whip.h): request paths and headers, the node's
 * transport parameters (router.createWebRtcTransport's answer) for SDP, and the SDP
 * answers with the producers' rtpParameters (WHIP) or the consumers' description (WHEP).
 * No I/O, no shared state: thread-safe. mf_sdp_t is large: callers keep it on the heap. */
#ifndef MF_WHIP_SDP_H
#define MF_WHIP_SDP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/id.h"
#include "node/rtp_parameters.h"
#include "node/sdp.h"

#define MF_WHIP_ROOM_MAX 128

typedef struct {
  bool whep;                          /* /whep/... (else /whip/...) */
  char room[MF_WHIP_ROOM_MAX + 1];    /* percent-decoded */
  char id[MF_ID_LEN + 1];             /* second segment (resource or producer id), or "" */
} mf_whip_path_t;

/* Parses "/whip/<room>[/<id>]" or "/whep/<room>[/<id>]" (query and fragment ignored).
 * The room is percent-decoded and must be 1..128 bytes without control characters or
 * '/'; id must be a UUID. MF_ERR_NOT_FOUND for any other shape. */
mf_err_t mf_whip_path_parse(const char *uri, mf_whip_path_t *out);

/* True for "application/sdp" (case-insensitive, parameters after ';' allowed). */
bool mf_whip_is_sdp_type(const char *content_type);

/* The token of "Bearer <token>" (scheme case-insensitive); false when absent/other. */
bool mf_whip_bearer(const char *authorization, const char **token, size_t *len);

/* Our side of the transport, from router.createWebRtcTransport's answer. */
typedef struct {
  char id[MF_ID_LEN + 1];
  char ice_ufrag[MF_SDP_ICE_LEN];
  char ice_pwd[MF_SDP_ICE_LEN];
  char fingerprint_alg[MF_SDP_SHORT_LEN];
  char fingerprint[MF_SDP_FINGERPRINT_LEN];
  mf_sdp_candidate_t candidates[MF_SDP_MAX_CANDIDATES];
  size_t candidate_count;
} mf_whip_transport_t;

/* MF_ERR_PARSE with err set when a field is missing or malformed (sha-256 fingerprint
 * required). */
mf_err_t mf_whip_transport_from_json(const json_t *reply, mf_whip_transport_t *out, char *err,
                                     size_t errsz);

/* Checks an offer for WHIP (audio/video sections sendonly or sendrecv) or WHEP (recvonly
 * or sendrecv): at least one such section, ICE credentials and a fingerprint, no
 * application/other-only offer. MF_ERR_PARSE with the reason. */
mf_err_t mf_whip_offer_check(const mf_sdp_t *offer, bool whep, char *err, size_t errsz);

/* Whether offer->media[i] is an audio/video section the answer can accept (bundled, not
 * rejected, direction fitting WHIP/WHEP). */
bool mf_whip_section_usable(const mf_sdp_t *offer, size_t i, bool whep);

/* transport.connect's dtlsParameters for the offer's DTLS setup (actpass/active: the peer
 * is the DTLS client and we answer setup:passive). New reference. */
json_t *mf_whip_dtls_parameters(const mf_sdp_t *offer);

/* WHIP: the answer to offer and the producers to create. Each accepted audio/video
 * section keeps the first offered codec the router supports (caps: router.join's
 * rtpCapabilities) plus its RTX (video), and the header extensions the router knows.
 * *producers: a new JSON array of {"kind", "rtpParameters"} in section order.
 * MF_ERR_UNSUPPORTED when no section has a codec the router supports; MF_ERR_PARSE when
 * the offer's sections cannot be turned into rtpParameters. err says why. */
mf_err_t mf_whip_publish_answer(const mf_sdp_t *offer, const mf_rtp_capabilities_t *caps,
                                const mf_whip_transport_t *local, mf_sdp_t *answer,
                                json_t **producers, char *err, size_t errsz);

/* WHEP: the rtpCapabilities to consume with on an offered (recvonly) section: its codecs
 * with their payload types and its header extension ids, except sdes:mid (the answer's
 * mids are the offer's, not the consumer's). New reference; NULL with err set. */
json_t *mf_whip_section_capabilities(const mf_sdp_media_t *m, char *err, size_t errsz);

/* WHEP: the answer carrying consumers[i] (transport.consume's answer, or NULL) on
 * offer->media[i] (count = offer->media_count). Sections without a consumer are answered
 * inactive. MF_ERR_PARSE when a consumer's rtpParameters cannot be described. */
mf_err_t mf_whip_play_answer(const mf_sdp_t *offer, const mf_whip_transport_t *local,
                             json_t *const *consumers, mf_sdp_t *answer, char *err,
                             size_t errsz);

#endif
