/* mediasoup v3's ortc.ts in C: router capabilities, validation of client-given RTP
 * parameters/capabilities, producer payload-type/ssrc mapping, consumable and consumer
 * parameters, and mediasoup's codec matching (incl. H264 profile and VP9 profile-id).
 *
 * All functions are control-path only (they run once per produce/consume, not per packet).
 * The results are plain data (rtp_parameters.h structs, mf_rtp_mapping_t) that the
 * forwarding code indexes directly on the hot path.
 *
 * Error texts: functions that fail write one sentence into err (errsz bytes, may be 0),
 * worded as mediasoup's errors, e.g. "media codec not supported [mimeType:video/H265]".
 *
 * Thread affinity: pure functions; safe from any thread. Random ssrcs come from OpenSSL's
 * CSPRNG. Output structs are fully overwritten (zeroed first); inputs are never modified
 * except by the mf_ortc_validate_* functions, which fill mediasoup's defaults in place. */
#ifndef MF_ORTC_H
#define MF_ORTC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "node/rtp_parameters.h"

/* ---- mediasoup's well-known header extension URIs ---- */
#define MF_RTP_EXT_MID "urn:ietf:params:rtp-hdrext:sdes:mid"
#define MF_RTP_EXT_RID "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
#define MF_RTP_EXT_RRID "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
#define MF_RTP_EXT_ABS_SEND_TIME "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
#define MF_RTP_EXT_TRANSPORT_CC \
  "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
#define MF_RTP_EXT_AUDIO_LEVEL "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
#define MF_RTP_EXT_VIDEO_ORIENTATION "urn:3gpp:video-orientation"
#define MF_RTP_EXT_TOFFSET "urn:ietf:params:rtp-hdrext:toffset"

/* ---- producer mapping: browser payload types/ssrcs -> router payload types/ssrcs ----
 * Plain arrays for the forwarding code: look up an incoming packet's payload type in
 * codecs[] and its ssrc (or rid) in encodings[] to find the mapped values. */
typedef struct {
  uint8_t payload_type;        /* the producer's (browser's) */
  uint8_t mapped_payload_type; /* the router's */
} mf_rtp_mapping_codec_t;

typedef struct {
  bool has_ssrc;
  uint32_t ssrc;            /* the producer's, when given */
  char rid[MF_RTP_RID_MAX]; /* "" = none */
  char scalability_mode[MF_RTP_SCALABILITY_MODE_MAX]; /* "" = none */
  uint32_t mapped_ssrc;     /* random, distinct within one mapping */
} mf_rtp_mapping_encoding_t;

typedef struct {
  size_t codec_count; /* media codecs and their rtx codecs */
  mf_rtp_mapping_codec_t codecs[MF_RTP_MAX_CODECS];
  size_t encoding_count;
  mf_rtp_mapping_encoding_t encodings[MF_RTP_MAX_ENCODINGS];
} mf_rtp_mapping_t;

/* ---- scalability mode (mediasoup's parseScalabilityMode) ---- */
typedef struct {
  unsigned spatial_layers;  /* 1 when absent/unparseable */
  unsigned temporal_layers; /* 1 when absent/unparseable */
  bool ksvc;                /* "_KEY" suffix */
} mf_scalability_mode_t;

/* "L3T3_KEY" -> {3,3,true}; NULL, "" or garbage -> {1,1,false}. */
mf_scalability_mode_t mf_ortc_parse_scalability_mode(const char *mode);

/* ---- H264 profile-level-id (RFC 6184 / webrtc h264_profile_level_id) ---- */
typedef enum {
  MF_H264_PROFILE_NONE = 0, /* unparseable */
  MF_H264_PROFILE_CONSTRAINED_BASELINE,
  MF_H264_PROFILE_BASELINE,
  MF_H264_PROFILE_MAIN,
  MF_H264_PROFILE_CONSTRAINED_HIGH,
  MF_H264_PROFILE_HIGH,
  MF_H264_PROFILE_PREDICTIVE_HIGH_444,
} mf_h264_profile_t;

/* Profile of a 6-hex-digit profile-level-id ("42e01f" -> CONSTRAINED_BASELINE). NONE when
 * malformed. */
mf_h264_profile_t mf_ortc_h264_profile(const char *profile_level_id);
/* Profile of a codec's parameters; a missing profile-level-id means "42e01f"
 * (constrained baseline level 3.1) as RFC 6184 says. NONE when present but malformed. */
mf_h264_profile_t mf_ortc_h264_profile_from_params(const mf_rtp_params_t *params);

/* ---- supported capabilities ---- */

/* mediasoup's supportedRtpCapabilities restricted to what Mafalda forwards: opus, VP8,
 * VP9, H264, AV1 and the header extensions listed in ortc.c. Static storage; never free. */
const mf_rtp_capabilities_t *mf_ortc_supported_rtp_capabilities(void);

/* The media codecs a router gets when created without mediaCodecs: opus/48000/2, VP8,
 * VP9 (profile-id 0), H264 (packetization-mode 1, profile-level-id 42e01f,
 * level-asymmetry-allowed 1), AV1. Static storage; *count set to the number of entries. */
const mf_rtp_codec_capability_t *mf_ortc_default_media_codecs(size_t *count);

/* ---- validation (mediasoup's validateRtpCapabilities / validateRtpParameters) ----
 * Check semantics beyond JSON shape and fill mediasoup's defaults in place: mimeType must
 * be "audio/<x>" or "video/<x>" ("codecs[1]: invalid codec.mimeType [VP8]"); codec kind
 * := the mimeType's; audio channels := 1 when unset, video channels dropped; `apt` must
 * be a number and rtx codecs need one 0..127; rtcpFeedback parameter := "" when unset;
 * header extension preferredEncrypt/encrypt := false, direction := sendrecv, parameters
 * := {}; encoding dtx := false; rtcp := {} and rtcp.reducedSize := true (always, like
 * mediasoup's `if (!rtcp.reducedSize)`). MF_ERR_INVALID_ARG with err text on failure.
 * Run them on every client-given capabilities/parameters after parsing. */
mf_err_t mf_ortc_validate_rtp_capabilities(mf_rtp_capabilities_t *caps, char *err,
                                           size_t errsz);
mf_err_t mf_ortc_validate_rtp_parameters(mf_rtp_parameters_t *params, char *err,
                                         size_t errsz);

/* ---- router ---- */

/* mediasoup's generateRouterRtpCapabilities: each media codec must match a supported
 * codec (MF_ERR_UNSUPPORTED "media codec not supported [mimeType:video/H265]"); a
 * requested preferredPayloadType is kept when in use by no other codec (duplicate ->
 * MF_ERR_INVALID_ARG "duplicated codec.preferredPayloadType"), otherwise the next free
 * one from mediasoup's dynamic list (100..127, then 96..99) is taken. After
 * each video codec a "video/rtx" codec {apt:<pt>} is added. Header extensions are the
 * supported ones. media_codecs may be NULL when n == 0 (gives no codecs; callers wanting
 * the default list pass mf_ortc_default_media_codecs()). */
mf_err_t mf_ortc_generate_router_rtp_capabilities(const mf_rtp_codec_capability_t *media_codecs,
                                                  size_t n, mf_rtp_capabilities_t *out,
                                                  char *err, size_t errsz);

/* A router's mediaCodecs given as JSON (router.create, or the controller's codecs text):
 * parsed and checked as mf_ortc_generate_router_rtp_capabilities would, so a bad list is
 * refused before it reaches a worker. *out is malloc'd (MF_RTP_MAX_CODECS entries, *count
 * used), owned by the caller. what names the field in errors. */
mf_err_t mf_ortc_parse_media_codecs(const json_t *json, const char *what,
                                    mf_rtp_codec_capability_t **out, size_t *count,
                                    char *err, size_t errsz);

/* ---- producer ---- */

/* mediasoup's getProducerRtpParametersMapping: every media codec in params must match a
 * router codec (strict matching); like mediasoup (matchCodecs modify:true) an H264
 * codec's profile-level-id in params is rewritten to the answer's value, so params is
 * not const. No match: MF_ERR_UNSUPPORTED "unsupported codec [mimeType:video/H265,
 * payloadType:102]". Each rtx codec maps to the router's rtx whose apt is the mapped media
 * codec (rtx whose apt names no media codec: MF_ERR_INVALID_ARG "missing media codec found
 * for RTX PT 97"; no router rtx: MF_ERR_UNSUPPORTED "no RTX codec for capability codec PT
 * 101"). Also MF_ERR_INVALID_ARG for empty codecs/encodings or duplicated payload types.
 * Mapping order: media codecs, then rtx codecs (mediasoup's). Encodings get consecutive
 * mapped ssrcs from one random base (distinct) and keep ssrc/rid/scalabilityMode.
 * params should have passed mf_ortc_validate_rtp_parameters. */
mf_err_t mf_ortc_get_producer_rtp_parameters_mapping(mf_rtp_parameters_t *params,
                                                     const mf_rtp_capabilities_t *caps,
                                                     mf_rtp_mapping_t *out, char *err,
                                                     size_t errsz);

/* mediasoup's getConsumableRtpParameters: the producer's stream as the router sees it.
 * Codecs: each media codec with the router's mimeType/payloadType/clockRate/channels/
 * rtcpFeedback but the PRODUCER's parameters, followed by the router's rtx codec for it.
 * Header extensions: the router's for `kind` with direction sendrecv/sendonly (router
 * ids). Encodings: the producer's without rid/rtx/codecPayloadType, ssrc = mapped ssrc.
 * rtcp {cname: producer's, reducedSize:true, mux:true}. */
mf_err_t mf_ortc_get_consumable_rtp_parameters(mf_media_kind_t kind,
                                               const mf_rtp_parameters_t *params,
                                               const mf_rtp_capabilities_t *caps,
                                               const mf_rtp_mapping_t *mapping,
                                               mf_rtp_parameters_t *out, char *err,
                                               size_t errsz);

/* ---- consumer ---- */

/* mediasoup's canConsume: true when the first consumable codec that the remote
 * capabilities match (strictly) is a media codec. remote_caps need not be validated
 * (audio codecs without channels count as 1 channel, as validation would make them). */
bool mf_ortc_can_consume(const mf_rtp_parameters_t *consumable,
                         const mf_rtp_capabilities_t *remote_caps);

/* mediasoup's getConsumerRtpParameters: codecs the remote supports in the consumable's
 * order (router payload types and parameters, the REMOTE's rtcpFeedback; without
 * enable_rtx, rtx codecs and plain "nack" are dropped) plus their rtx when the remote has
 * rtx; header extensions of the consumable the remote lists with the same id and uri
 * (kind is not compared: mediasoup-client lists extensions for video only); fb
 * filtering (transport-cc ext kept: drop goog-remb; else abs-send-time kept: drop
 * transport-cc; else drop both). Not pipe: one encoding {ssrc: random, rtx:{ssrc+1} when
 * rtx kept, scalabilityMode (the consumable's, or L<encodings>T<temporal> for simulcast),
 * maxBitrate: the highest}. Pipe: the consumable's encodings with consecutive random
 * ssrcs (and rtx ssrcs when rtx kept). rtcp from the consumable. mid is left "" for the
 * caller. MF_ERR_UNSUPPORTED "no compatible media codecs" when nothing matches (out is
 * then zeroed). */
mf_err_t mf_ortc_get_consumer_rtp_parameters(const mf_rtp_parameters_t *consumable,
                                             const mf_rtp_capabilities_t *remote_caps,
                                             bool pipe, bool enable_rtx,
                                             mf_rtp_parameters_t *out, char *err,
                                             size_t errsz);

/* ---- helpers shared with forwarding setup ---- */

/* mediasoup's matchCodecs for capability/parameter codecs. strict: H264/VP9 profile
 * checks (as mediasoup's `strict` flag). mime type compared case-insensitively. */
bool mf_ortc_match_codecs(const char *mime_a, uint32_t clock_a, uint8_t channels_a,
                          const mf_rtp_params_t *params_a, const char *mime_b,
                          uint32_t clock_b, uint8_t channels_b,
                          const mf_rtp_params_t *params_b, bool strict);

/* True for "audio/rtx" / "video/rtx" (case-insensitive). */
bool mf_ortc_is_rtx_mime(const char *mime_type);

/* A random ssrc in mediasoup's range (100000000..999999999). */
uint32_t mf_ortc_random_ssrc(void);

#endif
