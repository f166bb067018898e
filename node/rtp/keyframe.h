/* Codec identification and key-frame detection on RTP payloads, plus the VP8/VP9 payload
 * descriptors (picture id, TL0PICIDX, temporal/spatial layer, layer sync) needed later for
 * simulcast/SVC layer selection and picture-id rewriting.
 *
 * Pure functions on the caller's bytes (the RTP payload, i.e. mf_rtp_packet_t.payload /
 * payload_len after padding removal): no state, no allocation, no logging; reentrant. In
 * Mafalda they run on ONE worker thread per packet. Every read is bounds-checked against
 * len: truncated or malformed input gives false / MF_ERR_PARSE, never a read past len.
 *
 * Specifications: VP8 RFC 7741, VP9 RFC 9628 (draft-ietf-payload-vp9), H.264 RFC 6184,
 * AV1 "RTP Payload Format for AV1" (AOMedia) section 4.4. */
#ifndef MF_RTP_KEYFRAME_H
#define MF_RTP_KEYFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef enum {
  MF_CODEC_VP8,
  MF_CODEC_VP9,
  MF_CODEC_H264,
  MF_CODEC_AV1,
  MF_CODEC_OPUS,
  MF_CODEC_OTHER
} mf_codec_t;

/* "video/VP8", "video/VP9", "video/H264", "video/AV1", "audio/opus", case-insensitive,
 * exact match (no parameters). Anything else, or NULL, is MF_CODEC_OTHER. */
mf_codec_t mf_codec_from_mime(const char *mime);

/* Canonical mime type ("video/VP8", ...), "other" for MF_CODEC_OTHER. Static string. */
const char *mf_codec_mime(mf_codec_t c);

/* True when the payload begins a key frame (a picture decodable without earlier ones):
 *  VP8:  descriptor S=1 and PID=0, then the VP8 frame header's inverse key frame bit P=0.
 *  VP9:  P (inter-picture predicted) = 0, B (beginning of frame) = 1 and spatial layer 0
 *        when layer indices are present.
 *  H264: single NAL unit (at least 2 bytes) of type 5 (IDR) or 7 (SPS); STAP-A / STAP-B
 *        with such a NAL unit
 *        (the aggregate must be well formed: every unit in bounds, non-empty); FU-A / FU-B
 *        start fragment (S=1) of type 5 or 7.
 *  AV1:  aggregation header N=1 (first packet of a coded video sequence) with Z=0, and at
 *        least one byte of OBU data.
 *  OPUS, OTHER: always false (audio has no key frames; callers must not gate audio on
 *  this). */
bool mf_rtp_payload_is_keyframe(mf_codec_t c, const uint8_t *payload, size_t len);

/* ------------------------------------------------------------------ VP8 (RFC 7741) */

typedef struct {
  bool non_reference;       /* N */
  bool start_of_partition;  /* S */
  uint8_t partition_id;     /* PID, 0..7 */
  bool has_picture_id;      /* I */
  bool picture_id_15bit;    /* M: 15-bit picture id (else 7-bit) */
  uint16_t picture_id;
  bool has_tl0picidx;       /* L */
  uint8_t tl0picidx;
  bool has_tid;             /* T */
  uint8_t tid;              /* temporal layer, 0..3 (0 when !has_tid) */
  bool layer_sync;          /* Y */
  bool has_keyidx;          /* K */
  uint8_t keyidx;           /* 0..31 */
  size_t header_len;        /* descriptor bytes: the VP8 data starts at payload + header_len */
  bool is_keyframe;         /* S=1, PID=0 and VP8 payload header P bit = 0 */
} mf_rtp_vp8_desc_t;

/* MF_ERR_PARSE when the descriptor is truncated or no VP8 data byte follows it;
 * MF_ERR_INVALID_ARG for NULL pointers. */
mf_err_t mf_rtp_vp8_parse_descriptor(const uint8_t *payload, size_t len,
                                     mf_rtp_vp8_desc_t *out);

/* Adds the offsets in place to the picture id (modulo its 7- or 15-bit width, which it
 * keeps) and to the TL0PICIDX of a VP8 payload, each only when the descriptor carries it (an
 * SFU switching streams or dropping temporal layers keeps them continuous for the receiver's
 * frame reference tracking). MF_ERR_PARSE as mf_rtp_vp8_parse_descriptor (nothing written). */
mf_err_t mf_rtp_vp8_offset_ids(uint8_t *payload, size_t len, uint16_t picture_id_add,
                               uint8_t tl0picidx_add);

/* ------------------------------------------------------------------ VP9 (RFC 9628) */

#define MF_RTP_VP9_MAX_SPATIAL 8
#define MF_RTP_VP9_MAX_PDIFF 3

typedef struct {
  bool has_picture_id;        /* I */
  bool picture_id_15bit;      /* M */
  uint16_t picture_id;
  bool inter_picture_predicted; /* P */
  bool has_layer_indices;     /* L */
  bool flexible;              /* F */
  bool begin_of_frame;        /* B */
  bool end_of_frame;          /* E */
  bool has_ss;                /* V: a scalability structure follows */
  bool not_reference_upper;   /* Z: not used as reference by upper spatial layers */
  uint8_t tid;                /* temporal layer (0 without L) */
  bool switching_up;          /* U: temporal layer switching point */
  uint8_t sid;                /* spatial layer (0 without L) */
  bool inter_layer_dependency; /* D */
  bool has_tl0picidx;         /* non-flexible mode with L */
  uint8_t tl0picidx;
  uint8_t num_pdiff;          /* flexible mode with P: reference indices, 1..3 */
  uint8_t pdiff[MF_RTP_VP9_MAX_PDIFF];
  /* Scalability structure (V=1) */
  uint8_t ss_num_spatial;     /* N_S + 1 */
  bool ss_has_resolution;     /* Y */
  uint16_t ss_width[MF_RTP_VP9_MAX_SPATIAL];
  uint16_t ss_height[MF_RTP_VP9_MAX_SPATIAL];
  bool ss_has_pg;             /* G */
  uint8_t ss_num_pictures;    /* N_G (picture group entries are validated, not stored) */
  size_t header_len;          /* descriptor bytes: the VP9 data starts at payload + header_len */
  bool is_keyframe;           /* P=0, B=1, sid 0 */
} mf_rtp_vp9_desc_t;

/* MF_ERR_PARSE when any part (picture id, layer indices, P_DIFF list, SS) is truncated or
 * no VP9 data byte follows the descriptor; MF_ERR_INVALID_ARG for NULL pointers. */
mf_err_t mf_rtp_vp9_parse_descriptor(const uint8_t *payload, size_t len,
                                     mf_rtp_vp9_desc_t *out);

/* ------------------------------------------------------------------ H.264 (RFC 6184) */

/* NAL unit type (low 5 bits of the first byte); for FU-A/FU-B (28/29) the type of the
 * fragmented NAL unit from the FU header (present in every fragment). -1 when len is too
 * short. STAP/MTAP types (24..27) are returned as such. For logging and telling SPS/PPS/IDR
 * apart. */
int mf_rtp_h264_nal_type(const uint8_t *payload, size_t len);

#endif
