#include "node/rtp/rtp.h"

#include <string.h>

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static inline uint32_t rd32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static inline void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

mf_err_t mf_rtp_parse(const uint8_t *data, size_t len, mf_rtp_packet_t *out) {
  if (!data || !out) return MF_ERR_INVALID_ARG;
  if (len < MF_RTP_HEADER_MIN) return MF_ERR_PARSE;
  if ((data[0] >> 6) != 2) return MF_ERR_PARSE;

  mf_rtp_packet_t p = {0};
  p.data = data;
  p.len = len;
  p.version = 2;
  p.padding = (data[0] & 0x20) != 0;
  p.extension = (data[0] & 0x10) != 0;
  p.csrc_count = data[0] & 0x0f;
  p.marker = (data[1] & 0x80) != 0;
  p.payload_type = data[1] & 0x7f;
  p.sequence = rd16(data + 2);
  p.timestamp = rd32(data + 4);
  p.ssrc = rd32(data + 8);

  size_t off = MF_RTP_HEADER_MIN;
  if ((size_t)p.csrc_count * 4 > len - off) return MF_ERR_PARSE;
  p.csrcs = data + off;
  off += (size_t)p.csrc_count * 4;

  if (p.extension) {
    if (len - off < 4) return MF_ERR_PARSE;
    p.ext_profile = rd16(data + off);
    size_t body = (size_t)rd16(data + off + 2) * 4;
    off += 4;
    if (body > len - off) return MF_ERR_PARSE;
    p.ext = data + off;
    p.ext_len = body;
    off += body;
  }
  p.header_len = off;

  size_t rest = len - off;
  if (p.padding) {
    /* The count byte is the packet's last byte and counts itself, so it can never be 0
     * and never exceed what follows the header. */
    if (rest == 0) return MF_ERR_PARSE;
    uint8_t pad = data[len - 1];
    if (pad == 0 || pad > rest) return MF_ERR_PARSE;
    p.padding_len = pad;
    rest -= pad;
  }
  p.payload = data + off;
  p.payload_len = rest;
  *out = p;
  return MF_OK;
}

uint32_t mf_rtp_csrc(const mf_rtp_packet_t *p, size_t i) {
  if (i >= p->csrc_count) return 0;
  return rd32(p->csrcs + 4 * i);
}

bool mf_rtp_ext_is_one_byte(const mf_rtp_packet_t *p) {
  return p->extension && p->ext_profile == MF_RTP_EXT_PROFILE_ONE_BYTE;
}

bool mf_rtp_ext_is_two_byte(const mf_rtp_packet_t *p) {
  return p->extension && (p->ext_profile & 0xfff0) == MF_RTP_EXT_PROFILE_TWO_BYTE;
}

/* One step of the element walk over an extension body. */
typedef enum { EXT_ELEM, EXT_PAD, EXT_END, EXT_BAD } ext_step_t;

typedef struct {
  size_t hdr; /* offset of the element's first byte */
  size_t off; /* offset of its value */
  size_t len; /* value length */
  uint8_t id;
} ext_elem_t;

/* Reads the element at *pos (one_byte selects the form) and advances *pos past it. */
static ext_step_t ext_next(const uint8_t *body, size_t body_len, bool one_byte, size_t *pos,
                           ext_elem_t *e) {
  size_t at = *pos;
  if (at >= body_len) return EXT_END;
  uint8_t b = body[at];
  if (b == 0) {
    *pos = at + 1;
    return EXT_PAD;
  }
  e->hdr = at;
  if (one_byte) {
    e->id = b >> 4;
    if (e->id == 15) return EXT_END;
    e->len = (size_t)(b & 0x0f) + 1;
    e->off = at + 1;
  } else {
    if (body_len - at < 2) return EXT_BAD;
    e->id = b;
    e->len = body[at + 1];
    e->off = at + 2;
  }
  if (e->len > body_len - e->off) return EXT_BAD;
  *pos = e->off + e->len;
  return EXT_ELEM;
}

static bool ext_find(const mf_rtp_packet_t *p, uint8_t id, ext_elem_t *found) {
  if (id == 0 || !p->extension || !p->ext) return false;
  bool one_byte;
  if (mf_rtp_ext_is_one_byte(p)) {
    if (id > 14) return false;
    one_byte = true;
  } else if (mf_rtp_ext_is_two_byte(p)) {
    one_byte = false;
  } else {
    return false;
  }
  size_t pos = 0;
  for (;;) {
    ext_step_t s = ext_next(p->ext, p->ext_len, one_byte, &pos, found);
    if (s == EXT_PAD) continue;
    if (s != EXT_ELEM) return false;
    if (found->id == id) return true;
  }
}

bool mf_rtp_get_extension(const mf_rtp_packet_t *p, uint8_t id, const uint8_t **value,
                          size_t *len) {
  ext_elem_t e;
  if (!p || !ext_find(p, id, &e)) return false;
  if (value) *value = p->ext + e.off;
  if (len) *len = e.len;
  return true;
}

bool mf_rtp_set_extension(uint8_t *data, const mf_rtp_packet_t *p, uint8_t id,
                          const uint8_t *value, size_t len) {
  ext_elem_t e;
  if (!data || !p || !ext_find(p, id, &e) || e.len != len) return false;
  size_t base = (size_t)(p->ext - p->data);
  if (len) memcpy(data + base + e.off, value, len);
  return true;
}

mf_err_t mf_rtp_remap_extension_ids(uint8_t *data, const mf_rtp_packet_t *p,
                                    const uint8_t map[256]) {
  if (!data || !p || !map) return MF_ERR_INVALID_ARG;
  bool one_byte;
  if (mf_rtp_ext_is_one_byte(p)) {
    one_byte = true;
  } else if (mf_rtp_ext_is_two_byte(p)) {
    one_byte = false;
  } else {
    return MF_OK;
  }
  /* Walk the parsed (possibly original) bytes; write into data at the same offsets. When
   * data is the parsed buffer itself, the walk reads bytes already rewritten, which is
   * fine: only the element's own header byte changes, after it has been read. */
  uint8_t *body = data + (p->ext - p->data);
  size_t pos = 0;
  for (;;) {
    ext_elem_t e;
    ext_step_t s = ext_next(p->ext, p->ext_len, one_byte, &pos, &e);
    if (s == EXT_PAD) continue;
    if (s == EXT_END) return MF_OK;
    if (s == EXT_BAD) return MF_ERR_PARSE;
    uint8_t to = map[e.id];
    if (to == 0 || (one_byte && to > 14)) {
      memset(body + e.hdr, 0, e.off + e.len - e.hdr);
    } else if (one_byte) {
      body[e.hdr] = (uint8_t)((to << 4) | (body[e.hdr] & 0x0f));
    } else {
      body[e.hdr] = to;
    }
  }
}

void mf_rtp_set_ssrc(uint8_t *data, uint32_t ssrc) { wr32(data + 8, ssrc); }

void mf_rtp_set_sequence(uint8_t *data, uint16_t seq) { wr16(data + 2, seq); }

void mf_rtp_set_timestamp(uint8_t *data, uint32_t ts) { wr32(data + 4, ts); }

void mf_rtp_set_payload_type(uint8_t *data, uint8_t pt) {
  data[1] = (uint8_t)((data[1] & 0x80) | (pt & 0x7f));
}

void mf_rtp_set_marker(uint8_t *data, bool marker) {
  data[1] = (uint8_t)(marker ? (data[1] | 0x80) : (data[1] & 0x7f));
}

bool mf_rtp_is_rtp_or_rtcp(const uint8_t *data, size_t len) {
  return data && len >= 2 && data[0] >= 128 && data[0] <= 191;
}

bool mf_rtp_is_rtcp(const uint8_t *data, size_t len) {
  return mf_rtp_is_rtp_or_rtcp(data, len) && data[1] >= 192 && data[1] <= 223;
}

/* Body bytes the elements need in the given form, or 0 with *ok false if one does not fit
 * that form. */
static size_t ext_body_size(const mf_rtp_header_t *h, bool one_byte, bool *ok) {
  size_t n = 0;
  *ok = true;
  for (size_t i = 0; i < h->ext_count; i++) {
    const mf_rtp_ext_elem_t *e = &h->ext[i];
    if (e->id == 0 || (e->len > 0 && !e->value)) *ok = false;
    if (one_byte && (e->id > 14 || e->len < 1 || e->len > 16)) *ok = false;
    n += (one_byte ? 1u : 2u) + e->len;
  }
  return (n + 3) & ~(size_t)3;
}

typedef struct {
  bool has_ext;
  bool one_byte;
  size_t body; /* extension body bytes, padded to 4 */
  size_t total; /* header bytes */
} hdr_layout_t;

static mf_err_t header_layout(const mf_rtp_header_t *h, hdr_layout_t *l) {
  if (h->payload_type > 127 || h->csrc_count > MF_RTP_MAX_CSRC) return MF_ERR_INVALID_ARG;
  if (h->csrc_count && !h->csrcs) return MF_ERR_INVALID_ARG;
  if (h->ext_count && !h->ext) return MF_ERR_INVALID_ARG;
  l->has_ext = h->ext_count > 0 || h->ext_profile != 0;
  l->one_byte = true;
  l->body = 0;
  if (l->has_ext) {
    bool ok = false;
    if (h->ext_profile == MF_RTP_EXT_PROFILE_ONE_BYTE) {
      l->body = ext_body_size(h, true, &ok);
    } else if ((h->ext_profile & 0xfff0) == MF_RTP_EXT_PROFILE_TWO_BYTE) {
      l->one_byte = false;
      l->body = ext_body_size(h, false, &ok);
    } else if (h->ext_profile == 0) {
      l->body = ext_body_size(h, true, &ok);
      if (!ok) {
        l->one_byte = false;
        l->body = ext_body_size(h, false, &ok);
      }
    }
    if (!ok || l->body / 4 > 0xffff) return MF_ERR_INVALID_ARG;
  }
  l->total = MF_RTP_HEADER_MIN + 4u * h->csrc_count + (l->has_ext ? 4 + l->body : 0);
  return MF_OK;
}

static void header_emit(uint8_t *buf, const mf_rtp_header_t *h, const hdr_layout_t *l) {
  buf[0] = (uint8_t)(0x80 | (l->has_ext ? 0x10 : 0) | h->csrc_count);
  buf[1] = (uint8_t)((h->marker ? 0x80 : 0) | h->payload_type);
  wr16(buf + 2, h->sequence);
  wr32(buf + 4, h->timestamp);
  wr32(buf + 8, h->ssrc);
  size_t off = MF_RTP_HEADER_MIN;
  for (size_t i = 0; i < h->csrc_count; i++, off += 4) wr32(buf + off, h->csrcs[i]);
  if (!l->has_ext) return;
  uint16_t profile = h->ext_profile;
  if (profile == 0)
    profile = l->one_byte ? MF_RTP_EXT_PROFILE_ONE_BYTE : MF_RTP_EXT_PROFILE_TWO_BYTE;
  wr16(buf + off, profile);
  wr16(buf + off + 2, (uint16_t)(l->body / 4));
  off += 4;
  size_t end = off + l->body;
  for (size_t i = 0; i < h->ext_count; i++) {
    const mf_rtp_ext_elem_t *e = &h->ext[i];
    if (l->one_byte) {
      buf[off++] = (uint8_t)((e->id << 4) | (e->len - 1));
    } else {
      buf[off++] = e->id;
      buf[off++] = e->len;
    }
    if (e->len) memcpy(buf + off, e->value, e->len);
    off += e->len;
  }
  memset(buf + off, 0, end - off);
}

mf_err_t mf_rtp_write_header(uint8_t *buf, size_t cap, const mf_rtp_header_t *h,
                             size_t *out_len) {
  if (!buf || !h || !out_len) return MF_ERR_INVALID_ARG;
  hdr_layout_t l;
  mf_err_t err = header_layout(h, &l);
  if (err != MF_OK) return err;
  if (l.total > cap) return MF_ERR_FULL;
  header_emit(buf, h, &l);
  *out_len = l.total;
  return MF_OK;
}

mf_err_t mf_rtp_write_packet(uint8_t *buf, size_t cap, const mf_rtp_header_t *h,
                             const uint8_t *payload, size_t payload_len, uint8_t padding_len,
                             size_t *out_len) {
  if (!buf || !h || !out_len || (payload_len && !payload)) return MF_ERR_INVALID_ARG;
  hdr_layout_t l;
  mf_err_t err = header_layout(h, &l);
  if (err != MF_OK) return err;
  if (l.total > cap || payload_len > cap - l.total || padding_len > cap - l.total - payload_len)
    return MF_ERR_FULL;
  /* Payload first: it may sit inside buf (e.g. right where the header goes). */
  if (payload_len) memmove(buf + l.total, payload, payload_len);
  header_emit(buf, h, &l);
  size_t off = l.total + payload_len;
  if (padding_len) {
    buf[0] |= 0x20;
    memset(buf + off, 0, padding_len);
    off += padding_len;
    buf[off - 1] = padding_len;
  }
  *out_len = off;
  return MF_OK;
}

int32_t mf_rtp_seq_diff(uint16_t a, uint16_t b) {
  uint16_t d = (uint16_t)(a - b);
  return d < 0x8000 ? (int32_t)d : (int32_t)d - 0x10000;
}

bool mf_rtp_seq_newer(uint16_t a, uint16_t b) {
  uint16_t d = (uint16_t)(a - b);
  if (d == 0x8000) return a > b;
  return d != 0 && d < 0x8000;
}

bool mf_rtp_ts_newer(uint32_t a, uint32_t b) {
  uint32_t d = a - b;
  if (d == 0x80000000u) return a > b;
  return d != 0 && d < 0x80000000u;
}

int64_t mf_rtp_seq_unwrap(mf_rtp_seq_unwrapper_t *u, uint16_t seq) {
  if (!u->started) {
    u->started = true;
    u->last = seq;
    return u->last;
  }
  uint16_t last16 = (uint16_t)(u->last & 0xffff);
  u->last += mf_rtp_seq_diff(seq, last16);
  return u->last;
}
