#include "node/rtp/keyframe.h"

#include <string.h>
#include <strings.h>

static const char *const mimes[] = {
    [MF_CODEC_VP8] = "video/VP8",   [MF_CODEC_VP9] = "video/VP9",
    [MF_CODEC_H264] = "video/H264", [MF_CODEC_AV1] = "video/AV1",
    [MF_CODEC_OPUS] = "audio/opus",
};

mf_codec_t mf_codec_from_mime(const char *mime) {
  if (!mime) return MF_CODEC_OTHER;
  for (int c = MF_CODEC_VP8; c < MF_CODEC_OTHER; c++) {
    if (strcasecmp(mime, mimes[c]) == 0) return (mf_codec_t)c;
  }
  return MF_CODEC_OTHER;
}

const char *mf_codec_mime(mf_codec_t c) {
  if ((int)c >= MF_CODEC_VP8 && c < MF_CODEC_OTHER) return mimes[c];
  return "other";
}

/* ------------------------------------------------------------------ VP8 */

/* The picture id of the VP8 (RFC 7741) and VP9 descriptors: one byte, or two when its
 * top bit (M) is set, giving a 15-bit id. Advances *off. */
static mf_err_t mf_rtp_read_picture_id(const uint8_t *p, size_t len, size_t *off, uint16_t *id,
                                       bool *is_15bit) {
  if (*off >= len) return MF_ERR_PARSE;
  uint8_t m = p[(*off)++];
  if (!(m & 0x80)) {
    *id = m & 0x7f;
    return MF_OK;
  }
  if (*off >= len) return MF_ERR_PARSE;
  *is_15bit = true;
  *id = (uint16_t)(((m & 0x7f) << 8) | p[(*off)++]);
  return MF_OK;
}

mf_err_t mf_rtp_vp8_parse_descriptor(const uint8_t *p, size_t len, mf_rtp_vp8_desc_t *out) {
  if (!p || !out) return MF_ERR_INVALID_ARG;
  memset(out, 0, sizeof *out);
  size_t off = 0;
  if (len < 1) return MF_ERR_PARSE;
  uint8_t b = p[off++];
  bool x = b & 0x80;
  out->non_reference = b & 0x20;
  out->start_of_partition = b & 0x10;
  out->partition_id = b & 0x07;
  if (x) {
    if (off >= len) return MF_ERR_PARSE;
    uint8_t e = p[off++];
    out->has_picture_id = e & 0x80;
    out->has_tl0picidx = e & 0x40;
    out->has_tid = e & 0x20;
    out->has_keyidx = e & 0x10;
    if (out->has_picture_id &&
        mf_rtp_read_picture_id(p, len, &off, &out->picture_id, &out->picture_id_15bit) != MF_OK)
      return MF_ERR_PARSE;
    if (out->has_tl0picidx) {
      if (off >= len) return MF_ERR_PARSE;
      out->tl0picidx = p[off++];
    }
    if (out->has_tid || out->has_keyidx) {
      if (off >= len) return MF_ERR_PARSE;
      uint8_t t = p[off++];
      if (out->has_tid) {
        out->tid = t >> 6;
        out->layer_sync = t & 0x20;
      }
      if (out->has_keyidx) out->keyidx = t & 0x1f;
    }
  }
  /* The descriptor must be followed by VP8 data. */
  if (off >= len) return MF_ERR_PARSE;
  out->header_len = off;
  out->is_keyframe =
      out->start_of_partition && out->partition_id == 0 && (p[off] & 0x01) == 0;
  return MF_OK;
}

mf_err_t mf_rtp_vp8_offset_ids(uint8_t *p, size_t len, uint16_t picture_id_add,
                               uint8_t tl0picidx_add) {
  mf_rtp_vp8_desc_t d;
  mf_err_t e = mf_rtp_vp8_parse_descriptor(p, len, &d);
  if (e) return e;
  uint16_t picture_id = (uint16_t)(d.picture_id + picture_id_add);
  uint8_t tl0picidx = (uint8_t)(d.tl0picidx + tl0picidx_add);
  size_t off = 2; /* descriptor byte and extension byte: parse succeeded, so both exist */
  if (d.has_picture_id) {
    if (d.picture_id_15bit) {
      p[off] = (uint8_t)(0x80 | ((picture_id >> 8) & 0x7f));
      p[off + 1] = (uint8_t)picture_id;
      off += 2;
    } else {
      p[off] = (uint8_t)(picture_id & 0x7f);
      off += 1;
    }
  }
  if (d.has_tl0picidx) p[off] = tl0picidx;
  return MF_OK;
}

/* ------------------------------------------------------------------ VP9 */

static mf_err_t vp9_parse_ss(const uint8_t *p, size_t len, size_t *off,
                             mf_rtp_vp9_desc_t *out) {
  if (*off >= len) return MF_ERR_PARSE;
  uint8_t b = p[(*off)++];
  out->ss_num_spatial = (uint8_t)((b >> 5) + 1);
  out->ss_has_resolution = b & 0x10;
  out->ss_has_pg = b & 0x08;
  if (out->ss_has_resolution) {
    for (unsigned i = 0; i < out->ss_num_spatial; i++) {
      if (len - *off < 4) return MF_ERR_PARSE;
      out->ss_width[i] = (uint16_t)((p[*off] << 8) | p[*off + 1]);
      out->ss_height[i] = (uint16_t)((p[*off + 2] << 8) | p[*off + 3]);
      *off += 4;
    }
  }
  if (out->ss_has_pg) {
    if (*off >= len) return MF_ERR_PARSE;
    out->ss_num_pictures = p[(*off)++];
    for (unsigned i = 0; i < out->ss_num_pictures; i++) {
      if (*off >= len) return MF_ERR_PARSE;
      unsigned r = (p[(*off)++] >> 2) & 0x03;
      if (len - *off < r) return MF_ERR_PARSE;
      *off += r;
    }
  }
  return MF_OK;
}

mf_err_t mf_rtp_vp9_parse_descriptor(const uint8_t *p, size_t len, mf_rtp_vp9_desc_t *out) {
  if (!p || !out) return MF_ERR_INVALID_ARG;
  memset(out, 0, sizeof *out);
  size_t off = 0;
  if (len < 1) return MF_ERR_PARSE;
  uint8_t b = p[off++];
  out->has_picture_id = b & 0x80;
  out->inter_picture_predicted = b & 0x40;
  out->has_layer_indices = b & 0x20;
  out->flexible = b & 0x10;
  out->begin_of_frame = b & 0x08;
  out->end_of_frame = b & 0x04;
  out->has_ss = b & 0x02;
  out->not_reference_upper = b & 0x01;
  if (out->has_picture_id &&
      mf_rtp_read_picture_id(p, len, &off, &out->picture_id, &out->picture_id_15bit) != MF_OK)
    return MF_ERR_PARSE;
  if (out->has_layer_indices) {
    if (off >= len) return MF_ERR_PARSE;
    uint8_t l = p[off++];
    out->tid = l >> 5;
    out->switching_up = l & 0x10;
    out->sid = (l >> 1) & 0x07;
    out->inter_layer_dependency = l & 0x01;
    if (!out->flexible) {
      if (off >= len) return MF_ERR_PARSE;
      out->has_tl0picidx = true;
      out->tl0picidx = p[off++];
    }
  }
  if (out->flexible && out->inter_picture_predicted) {
    bool more = true;
    while (more) {
      if (out->num_pdiff == MF_RTP_VP9_MAX_PDIFF || off >= len) return MF_ERR_PARSE;
      uint8_t d = p[off++];
      out->pdiff[out->num_pdiff++] = d >> 1;
      more = d & 0x01;
    }
  }
  if (out->has_ss) {
    mf_err_t err = vp9_parse_ss(p, len, &off, out);
    if (err != MF_OK) return err;
  }
  if (off >= len) return MF_ERR_PARSE;
  out->header_len = off;
  out->is_keyframe = !out->inter_picture_predicted && out->begin_of_frame && out->sid == 0;
  return MF_OK;
}

/* ------------------------------------------------------------------ H.264 */

#define H264_IDR 5
#define H264_SPS 7
#define H264_STAP_A 24
#define H264_STAP_B 25
#define H264_FU_A 28
#define H264_FU_B 29

static bool h264_key_type(unsigned t) { return t == H264_IDR || t == H264_SPS; }

int mf_rtp_h264_nal_type(const uint8_t *p, size_t len) {
  if (!p || len < 1) return -1;
  unsigned t = p[0] & 0x1f;
  if (t == H264_FU_A || t == H264_FU_B) {
    if (len < 2) return -1;
    return p[1] & 0x1f;
  }
  return (int)t;
}

/* Aggregation units from off to the end: [16-bit size][NAL unit] ... exactly filling the
 * payload. A malformed aggregate is not trusted at all, even if a key NAL came first. */
static bool h264_stap_is_key(const uint8_t *p, size_t len, size_t off) {
  bool key = false;
  if (off >= len) return false;
  while (off < len) {
    if (len - off < 2) return false;
    size_t n = (size_t)((p[off] << 8) | p[off + 1]);
    off += 2;
    if (n == 0 || n > len - off) return false;
    if (h264_key_type(p[off] & 0x1f)) key = true;
    off += n;
  }
  return key;
}

static bool h264_is_key(const uint8_t *p, size_t len) {
  if (len < 2) return false;
  unsigned t = p[0] & 0x1f;
  if (t >= 1 && t <= 23) return h264_key_type(t);
  switch (t) {
    case H264_STAP_A:
      return h264_stap_is_key(p, len, 1);
    case H264_STAP_B: /* DON before the units */
      return len >= 3 && h264_stap_is_key(p, len, 3);
    case H264_FU_A:
      return (p[1] & 0x80) && h264_key_type(p[1] & 0x1f);
    case H264_FU_B: /* DON after the FU header */
      return len >= 4 && (p[1] & 0x80) && h264_key_type(p[1] & 0x1f);
    default: /* MTAP16/24, reserved */
      return false;
  }
}

/* ------------------------------------------------------------------ AV1 */

static bool av1_is_key(const uint8_t *p, size_t len) {
  /* Aggregation header |Z|Y|W W|N|-|-|-|: N starts a coded video sequence; a packet that
   * continues an OBU from the previous packet (Z) cannot start one. */
  return len >= 2 && (p[0] & 0x08) && !(p[0] & 0x80);
}

bool mf_rtp_payload_is_keyframe(mf_codec_t c, const uint8_t *payload, size_t len) {
  if (!payload || len == 0) return false;
  switch (c) {
    case MF_CODEC_VP8: {
      mf_rtp_vp8_desc_t d;
      return mf_rtp_vp8_parse_descriptor(payload, len, &d) == MF_OK && d.is_keyframe;
    }
    case MF_CODEC_VP9: {
      mf_rtp_vp9_desc_t d;
      return mf_rtp_vp9_parse_descriptor(payload, len, &d) == MF_OK && d.is_keyframe;
    }
    case MF_CODEC_H264:
      return h264_is_key(payload, len);
    case MF_CODEC_AV1:
      return av1_is_key(payload, len);
    default:
      return false;
  }
}
