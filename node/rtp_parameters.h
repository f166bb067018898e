/* mediasoup v3's RTP parameter model (RtpCapabilities, RtpParameters and their parts) as
 * plain C structs with fixed-size arrays, plus JSON parsing/serializing with jansson in
 * mediasoup's exact shape (camelCase keys, optional fields omitted when unset).
 *
 * Everything here is plain data: structs can be copied with memcpy/assignment and hold no
 * pointers. They are large (mf_rtp_parameters_t ~110 KB, mf_rtp_capabilities_t ~100 KB,
 * from the limits below): keep them in heap objects (producer, consumer, router), not on
 * small thread stacks.
 *
 * Parse functions validate SHAPE and TYPES only (what JSON type each field has, value
 * ranges, limits). Semantic checks and mediasoup's default filling (rtcp.reducedSize=true,
 * empty arrays, ...) live in ortc.h (mf_ortc_validate_*). A parse error writes one sentence
 * naming the offending field into err, e.g.
 *   "rtpParameters.codecs[1].payloadType must be an integer 0..127"
 * where the leading name is the `what` argument given by the caller.
 *
 * Codecs always serialize `parameters` and `rtcpFeedback` (as {} / [] when empty), and
 * RtpParameters always `codecs`, `headerExtensions` and `encodings`: that is the shape
 * mediasoup emits after validation (and what mediasoup-client sends). Every other optional
 * field has a has_ flag or an "unset" value so parse -> serialize keeps the input's keys.
 *
 * Thread affinity: none; functions are pure (no globals). Each struct is used by ONE
 * worker thread at a time. */
#ifndef MF_RTP_PARAMETERS_H
#define MF_RTP_PARAMETERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* ---- limits (exceeding one is a parse error naming the field) ---- */
#define MF_RTP_MAX_CODECS 32            /* codecs in capabilities or parameters */
#define MF_RTP_MAX_HEADER_EXTENSIONS 24 /* header extensions in capabilities or parameters */
#define MF_RTP_MAX_ENCODINGS 8          /* encodings in RtpParameters */
#define MF_RTP_MAX_CODEC_PARAMS 16      /* entries of a codec's `parameters` object */
#define MF_RTP_MAX_EXT_PARAMS 2         /* entries of a header extension's `parameters` */
#define MF_RTP_MAX_RTCP_FEEDBACK 8      /* rtcpFeedback entries per codec */

/* String buffer sizes, including the NUL (longer strings are parse errors). */
#define MF_RTP_MIME_TYPE_MAX 48     /* "video/H264" */
#define MF_RTP_PARAM_NAME_MAX 32    /* "profile-level-id" */
#define MF_RTP_PARAM_VALUE_MAX 96   /* string values ("sprop-parameter-sets" fits) */
#define MF_RTP_FB_TYPE_MAX 32       /* "transport-cc", "goog-remb" */
#define MF_RTP_FB_PARAM_MAX 32      /* "pli", "fir" */
#define MF_RTP_URI_MAX 128          /* header extension URIs */
#define MF_RTP_MID_MAX 32
#define MF_RTP_RID_MAX 32
#define MF_RTP_CNAME_MAX 128
#define MF_RTP_SCALABILITY_MODE_MAX 16 /* "L3T3_KEY" */

typedef enum {
  MF_MEDIA_KIND_NONE = 0, /* unset (only valid where mediasoup makes kind optional) */
  MF_MEDIA_KIND_AUDIO,
  MF_MEDIA_KIND_VIDEO,
} mf_media_kind_t;

/* "audio" / "video"; "" for NONE. */
const char *mf_media_kind_str(mf_media_kind_t kind);
/* MF_MEDIA_KIND_NONE for anything but exactly "audio" or "video" (NULL-safe). */
mf_media_kind_t mf_media_kind_parse(const char *text);

typedef enum {
  MF_RTP_DIRECTION_NONE = 0, /* unset: omitted from JSON */
  MF_RTP_DIRECTION_SENDRECV,
  MF_RTP_DIRECTION_SENDONLY,
  MF_RTP_DIRECTION_RECVONLY,
  MF_RTP_DIRECTION_INACTIVE,
} mf_rtp_direction_t;

const char *mf_rtp_direction_str(mf_rtp_direction_t dir);

/* ---- codec `parameters`: a small ordered map of name -> string | integer | real ---- */
typedef enum {
  MF_RTP_PARAM_STRING = 0, /* "profile-level-id": "42e01f" */
  MF_RTP_PARAM_INT,        /* "packetization-mode": 1 (stays a JSON integer) */
  MF_RTP_PARAM_REAL,       /* a non-integral JSON number (rare; kept for exact round trips) */
} mf_rtp_param_type_t;

typedef struct {
  char name[MF_RTP_PARAM_NAME_MAX];
  mf_rtp_param_type_t type;
  int64_t int_value;                /* valid when type == INT */
  double real_value;                /* valid when type == REAL */
  char str_value[MF_RTP_PARAM_VALUE_MAX]; /* valid when type == STRING ("" otherwise) */
} mf_rtp_param_t;

typedef struct {
  size_t count;
  mf_rtp_param_t items[MF_RTP_MAX_CODEC_PARAMS];
} mf_rtp_params_t;

typedef struct {
  size_t count;
  mf_rtp_param_t items[MF_RTP_MAX_EXT_PARAMS];
} mf_rtp_ext_params_t;

/* Lookups by exact name; NULL / false when missing. */
const mf_rtp_param_t *mf_rtp_params_find(const mf_rtp_params_t *params, const char *name);
/* An INT param, or a STRING param holding a decimal integer (SDP-derived values are
 * sometimes either). false when missing or not an integer. */
bool mf_rtp_params_get_int(const mf_rtp_params_t *params, const char *name, int64_t *out);
/* Sets/replaces; MF_ERR_LIMIT when full, MF_ERR_INVALID_ARG when name/value too long. */
mf_err_t mf_rtp_params_set_int(mf_rtp_params_t *params, const char *name, int64_t value);
mf_err_t mf_rtp_params_set_str(mf_rtp_params_t *params, const char *name, const char *value);

/* ---- rtcpFeedback ---- */
typedef struct {
  char type[MF_RTP_FB_TYPE_MAX];
  bool has_parameter; /* false: omitted from JSON (validation sets it, to "" if unset) */
  char parameter[MF_RTP_FB_PARAM_MAX];
} mf_rtcp_feedback_t;

/* ---- capabilities ---- */
typedef struct {
  mf_media_kind_t kind; /* required */
  char mime_type[MF_RTP_MIME_TYPE_MAX];
  bool has_preferred_payload_type;
  uint8_t preferred_payload_type; /* 0..127 */
  uint32_t clock_rate;
  uint8_t channels; /* 0 = unset (omitted); audio only */
  mf_rtp_params_t parameters; /* always serialized (as {} when empty) */
  size_t rtcp_feedback_count;
  mf_rtcp_feedback_t rtcp_feedback[MF_RTP_MAX_RTCP_FEEDBACK];
} mf_rtp_codec_capability_t;

typedef struct {
  mf_media_kind_t kind; /* required in capabilities */
  char uri[MF_RTP_URI_MAX];
  uint8_t preferred_id; /* 1..255 (mediasoup uses 1..14) */
  bool has_preferred_encrypt; /* false: omitted (validation sets it to false) */
  bool preferred_encrypt;
  mf_rtp_direction_t direction; /* NONE = omitted */
} mf_rtp_header_extension_t;

typedef struct {
  size_t codec_count;
  mf_rtp_codec_capability_t codecs[MF_RTP_MAX_CODECS];
  size_t header_extension_count;
  mf_rtp_header_extension_t header_extensions[MF_RTP_MAX_HEADER_EXTENSIONS];
} mf_rtp_capabilities_t;

/* ---- parameters ---- */
typedef struct {
  char mime_type[MF_RTP_MIME_TYPE_MAX];
  uint8_t payload_type; /* 0..127 */
  uint32_t clock_rate;
  uint8_t channels; /* 0 = unset (omitted) */
  mf_rtp_params_t parameters; /* always serialized (as {} when empty) */
  size_t rtcp_feedback_count;
  mf_rtcp_feedback_t rtcp_feedback[MF_RTP_MAX_RTCP_FEEDBACK];
} mf_rtp_codec_parameters_t;

typedef struct {
  char uri[MF_RTP_URI_MAX];
  uint8_t id; /* 1..255 */
  bool has_encrypt;
  bool encrypt;
  bool has_parameters; /* false: omitted (validation sets it, empty) */
  mf_rtp_ext_params_t parameters;
} mf_rtp_header_extension_parameters_t;

typedef struct {
  bool has_ssrc;
  uint32_t ssrc;
  char rid[MF_RTP_RID_MAX]; /* "" = unset */
  bool has_codec_payload_type;
  uint8_t codec_payload_type;
  bool has_rtx;
  uint32_t rtx_ssrc; /* rtx: {ssrc} */
  bool has_dtx;
  bool dtx;
  char scalability_mode[MF_RTP_SCALABILITY_MODE_MAX]; /* "" = unset */
  bool has_scale_resolution_down_by;
  double scale_resolution_down_by;
  bool has_max_bitrate;
  uint32_t max_bitrate;
  bool has_max_framerate;
  double max_framerate;
  bool has_adaptive_ptime;
  bool adaptive_ptime;
  char priority[16];         /* "very-low" | "low" | "medium" | "high"; "" = unset */
  char network_priority[16]; /* same values; "" = unset */
} mf_rtp_encoding_parameters_t;

typedef struct {
  char cname[MF_RTP_CNAME_MAX]; /* "" = unset */
  bool has_reduced_size;
  bool reduced_size;
  bool has_mux;
  bool mux;
} mf_rtcp_parameters_t;

typedef struct {
  char mid[MF_RTP_MID_MAX]; /* "" = unset */
  size_t codec_count;
  mf_rtp_codec_parameters_t codecs[MF_RTP_MAX_CODECS];
  size_t header_extension_count;
  mf_rtp_header_extension_parameters_t header_extensions[MF_RTP_MAX_HEADER_EXTENSIONS];
  size_t encoding_count;
  mf_rtp_encoding_parameters_t encodings[MF_RTP_MAX_ENCODINGS];
  bool has_rtcp;
  mf_rtcp_parameters_t rtcp;
} mf_rtp_parameters_t;

/* ---- JSON in ----
 * `what` names the object in error messages ("rtpParameters", "routerRtpCapabilities",
 * "mediaCodecs[2]"). On failure out is left zeroed/partial and err holds the message.
 * Returns MF_OK or MF_ERR_PARSE (wrong type/shape/range) or MF_ERR_LIMIT (too many
 * entries or a string too long). Unknown keys are ignored, as mediasoup does. */
mf_err_t mf_rtp_codec_capability_from_json(const json_t *json, const char *what,
                                           mf_rtp_codec_capability_t *out, char *err,
                                           size_t errsz);
mf_err_t mf_rtp_header_extension_from_json(const json_t *json, const char *what,
                                           mf_rtp_header_extension_t *out, char *err,
                                           size_t errsz);
mf_err_t mf_rtp_capabilities_from_json(const json_t *json, const char *what,
                                       mf_rtp_capabilities_t *out, char *err, size_t errsz);
mf_err_t mf_rtp_parameters_from_json(const json_t *json, const char *what,
                                     mf_rtp_parameters_t *out, char *err, size_t errsz);
/* A `mediaCodecs` JSON array (router creation) into out[0..*count); max entries given by
 * *count on input. */
mf_err_t mf_rtp_codec_capabilities_from_json_array(const json_t *json, const char *what,
                                                   mf_rtp_codec_capability_t *out,
                                                   size_t *count, char *err, size_t errsz);

/* ---- JSON out ----
 * New references (caller json_decref's); NULL only on allocation failure. */
json_t *mf_rtp_codec_capability_to_json(const mf_rtp_codec_capability_t *codec);
json_t *mf_rtp_header_extension_to_json(const mf_rtp_header_extension_t *ext);
json_t *mf_rtp_capabilities_to_json(const mf_rtp_capabilities_t *caps);
json_t *mf_rtp_codec_parameters_to_json(const mf_rtp_codec_parameters_t *codec);
json_t *mf_rtp_encoding_parameters_to_json(const mf_rtp_encoding_parameters_t *enc);
json_t *mf_rtp_parameters_to_json(const mf_rtp_parameters_t *params);

#endif
