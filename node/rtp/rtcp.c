#include "node/rtp/rtcp.h"

#include <string.h>

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static inline uint32_t rd24(const uint8_t *p) {
  return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
}

static inline uint32_t rd32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static inline void wr24(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 16);
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)v;
}

static inline void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static inline int32_t sign24(uint32_t v) {
  return (v & 0x800000u) ? (int32_t)v - 0x1000000 : (int32_t)v;
}

/* Largest packet the 16-bit length field can describe. */
#define RTCP_MAX_LEN ((size_t)65536 * 4)

/* ---------------------------------------------------------------- iterator */

void mf_rtcp_iter_init(mf_rtcp_iter_t *it, const uint8_t *data, size_t len) {
  it->data = data;
  it->len = data ? len : 0;
  it->off = 0;
  it->failed = false;
}

mf_err_t mf_rtcp_iter_next(mf_rtcp_iter_t *it, mf_rtcp_header_t *out) {
  if (it->failed) return MF_ERR_PARSE;
  if (it->off == it->len) return MF_ERR_EMPTY;
  size_t rem = it->len - it->off;
  const uint8_t *b = it->data + it->off;
  size_t plen = rem >= 4 ? ((size_t)rd16(b + 2) + 1) * 4 : 0;
  if (rem < 4 || (b[0] >> 6) != 2 || plen > rem) {
    it->failed = true;
    return MF_ERR_PARSE;
  }
  size_t pad = 0;
  if (b[0] & 0x20) {
    pad = b[plen - 1];
    if (pad == 0 || pad > plen - 4) {
      it->failed = true;
      return MF_ERR_PARSE;
    }
  }
  out->version = 2;
  out->padding = pad != 0;
  out->count = b[0] & 0x1f;
  out->type = b[1];
  out->len = plen;
  out->data = b;
  out->body = b + 4;
  out->body_len = plen - 4 - pad;
  it->off += plen;
  return MF_OK;
}

mf_err_t mf_rtcp_validate(const uint8_t *data, size_t len) {
  mf_rtcp_iter_t it;
  mf_rtcp_header_t h;
  mf_rtcp_iter_init(&it, data, len);
  size_t n = 0;
  mf_err_t err;
  while ((err = mf_rtcp_iter_next(&it, &h)) == MF_OK) n++;
  if (err != MF_ERR_EMPTY) return err;
  return n ? MF_OK : MF_ERR_PARSE;
}

/* ---------------------------------------------------------------- SR / RR */

static void parse_block(const uint8_t *p, mf_rtcp_report_block_t *r) {
  r->ssrc = rd32(p);
  r->fraction_lost = p[4];
  r->cumulative_lost = sign24(rd24(p + 5));
  r->highest_seq = rd32(p + 8);
  r->jitter = rd32(p + 12);
  r->lsr = rd32(p + 16);
  r->dlsr = rd32(p + 20);
}

mf_err_t mf_rtcp_parse_sr(const mf_rtcp_header_t *h, mf_rtcp_sr_t *out) {
  if (!h || !out || h->type != MF_RTCP_SR) return MF_ERR_PARSE;
  if (h->body_len < 24 + 24u * h->count) return MF_ERR_PARSE;
  const uint8_t *b = h->body;
  out->ssrc = rd32(b);
  out->ntp = ((uint64_t)rd32(b + 4) << 32) | rd32(b + 8);
  out->rtp_ts = rd32(b + 12);
  out->packet_count = rd32(b + 16);
  out->octet_count = rd32(b + 20);
  out->report_count = h->count;
  for (size_t i = 0; i < h->count; i++) parse_block(b + 24 + 24 * i, &out->reports[i]);
  return MF_OK;
}

mf_err_t mf_rtcp_parse_rr(const mf_rtcp_header_t *h, mf_rtcp_rr_t *out) {
  if (!h || !out || h->type != MF_RTCP_RR) return MF_ERR_PARSE;
  if (h->body_len < 4 + 24u * h->count) return MF_ERR_PARSE;
  out->ssrc = rd32(h->body);
  out->report_count = h->count;
  for (size_t i = 0; i < h->count; i++) parse_block(h->body + 4 + 24 * i, &out->reports[i]);
  return MF_OK;
}

/* ---------------------------------------------------------------- SDES */

mf_err_t mf_rtcp_sdes_iter_init(mf_rtcp_sdes_iter_t *it, const mf_rtcp_header_t *h) {
  if (!it || !h || h->type != MF_RTCP_SDES) return MF_ERR_PARSE;
  memset(it, 0, sizeof *it);
  it->body = h->body;
  it->len = h->body_len;
  it->chunks_left = h->count;
  return MF_OK;
}

mf_err_t mf_rtcp_sdes_iter_next(mf_rtcp_sdes_iter_t *it, mf_rtcp_sdes_item_t *out) {
  if (it->failed) return MF_ERR_PARSE;
  for (;;) {
    if (!it->in_chunk) {
      if (it->chunks_left == 0) return MF_ERR_EMPTY;
      if (it->len - it->off < 4) break;
      it->ssrc = rd32(it->body + it->off);
      it->off += 4;
      it->in_chunk = true;
      it->chunks_left--;
    }
    if (it->off >= it->len) break; /* chunk without its null item */
    uint8_t type = it->body[it->off];
    if (type == MF_RTCP_SDES_END) {
      /* The null item plus zero octets up to the next 32-bit boundary end the chunk. */
      size_t next = (it->off + 1 + 3) & ~(size_t)3;
      if (next > it->len) break;
      it->off = next;
      it->in_chunk = false;
      continue;
    }
    if (it->len - it->off < 2) break;
    uint8_t len = it->body[it->off + 1];
    if ((size_t)len > it->len - it->off - 2) break;
    out->ssrc = it->ssrc;
    out->type = type;
    out->len = len;
    out->value = it->body + it->off + 2;
    it->off += 2 + (size_t)len;
    return MF_OK;
  }
  it->failed = true;
  return MF_ERR_PARSE;
}

mf_err_t mf_rtcp_sdes_find_cname(const mf_rtcp_header_t *h, uint32_t *ssrc,
                                 const uint8_t **cname, size_t *len) {
  mf_rtcp_sdes_iter_t it;
  mf_rtcp_sdes_item_t item;
  mf_err_t err = mf_rtcp_sdes_iter_init(&it, h);
  if (err != MF_OK) return err;
  while ((err = mf_rtcp_sdes_iter_next(&it, &item)) == MF_OK) {
    if (item.type != MF_RTCP_SDES_CNAME) continue;
    if (ssrc) *ssrc = item.ssrc;
    if (cname) *cname = item.value;
    if (len) *len = item.len;
    return MF_OK;
  }
  return err == MF_ERR_EMPTY ? MF_ERR_NOT_FOUND : err;
}

/* ---------------------------------------------------------------- BYE */

mf_err_t mf_rtcp_parse_bye(const mf_rtcp_header_t *h, mf_rtcp_bye_t *out) {
  if (!h || !out || h->type != MF_RTCP_BYE) return MF_ERR_PARSE;
  size_t ids = 4u * h->count;
  if (h->body_len < ids) return MF_ERR_PARSE;
  out->count = h->count;
  for (size_t i = 0; i < h->count; i++) out->ssrcs[i] = rd32(h->body + 4 * i);
  out->reason = NULL;
  out->reason_len = 0;
  if (h->body_len > ids) {
    uint8_t rlen = h->body[ids];
    if ((size_t)rlen > h->body_len - ids - 1) return MF_ERR_PARSE;
    out->reason = h->body + ids + 1;
    out->reason_len = rlen;
  }
  return MF_OK;
}

/* ---------------------------------------------------------------- NACK / PLI / FIR */

mf_err_t mf_rtcp_parse_nack(const mf_rtcp_header_t *h, mf_rtcp_nack_t *out) {
  if (!h || !out || h->type != MF_RTCP_RTPFB || h->count != MF_RTCP_RTPFB_NACK)
    return MF_ERR_PARSE;
  if (h->body_len < 12) return MF_ERR_PARSE;
  out->sender_ssrc = rd32(h->body);
  out->media_ssrc = rd32(h->body + 4);
  out->count = (h->body_len - 8) / 4;
  out->fci = h->body + 8;
  return MF_OK;
}

mf_rtcp_nack_item_t mf_rtcp_nack_get(const mf_rtcp_nack_t *n, size_t i) {
  mf_rtcp_nack_item_t item = {0, 0};
  if (i < n->count) {
    item.pid = rd16(n->fci + 4 * i);
    item.blp = rd16(n->fci + 4 * i + 2);
  }
  return item;
}

size_t mf_rtcp_nack_expand(mf_rtcp_nack_item_t item, uint16_t out[17]) {
  size_t n = 0;
  out[n++] = item.pid;
  for (unsigned b = 0; b < 16; b++) {
    if (item.blp & (1u << b)) out[n++] = (uint16_t)(item.pid + b + 1);
  }
  return n;
}

size_t mf_rtcp_nack_pack(const uint16_t *seqs, size_t n, mf_rtcp_nack_item_t *items,
                         size_t max, size_t *used) {
  size_t i = 0, k = 0;
  while (i < n && k < max) {
    uint16_t pid = seqs[i];
    uint16_t blp = 0;
    size_t j = i + 1;
    for (; j < n; j++) {
      uint16_t d = (uint16_t)(seqs[j] - pid);
      if (d > 16) break; /* also ends the entry on a number before pid */
      if (d > 0) blp |= (uint16_t)(1u << (d - 1));
    }
    items[k].pid = pid;
    items[k].blp = blp;
    k++;
    i = j;
  }
  if (used) *used = i;
  return k;
}

mf_err_t mf_rtcp_parse_pli(const mf_rtcp_header_t *h, mf_rtcp_pli_t *out) {
  if (!h || !out || h->type != MF_RTCP_PSFB || h->count != MF_RTCP_PSFB_PLI)
    return MF_ERR_PARSE;
  if (h->body_len < 8) return MF_ERR_PARSE;
  out->sender_ssrc = rd32(h->body);
  out->media_ssrc = rd32(h->body + 4);
  return MF_OK;
}

mf_err_t mf_rtcp_parse_fir(const mf_rtcp_header_t *h, mf_rtcp_fir_t *out) {
  if (!h || !out || h->type != MF_RTCP_PSFB || h->count != MF_RTCP_PSFB_FIR)
    return MF_ERR_PARSE;
  if (h->body_len < 16) return MF_ERR_PARSE;
  out->sender_ssrc = rd32(h->body);
  out->media_ssrc = rd32(h->body + 4);
  out->count = (h->body_len - 8) / 8;
  out->fci = h->body + 8;
  return MF_OK;
}

mf_rtcp_fir_entry_t mf_rtcp_fir_get(const mf_rtcp_fir_t *f, size_t i) {
  mf_rtcp_fir_entry_t e = {0, 0};
  if (i < f->count) {
    e.ssrc = rd32(f->fci + 8 * i);
    e.seq_nr = f->fci[8 * i + 4];
  }
  return e;
}

/* ---------------------------------------------------------------- REMB */

mf_err_t mf_rtcp_parse_remb(const mf_rtcp_header_t *h, mf_rtcp_remb_t *out) {
  if (!h || !out || h->type != MF_RTCP_PSFB || h->count != MF_RTCP_PSFB_AFB)
    return MF_ERR_PARSE;
  if (h->body_len < 12) return MF_ERR_PARSE;
  if (memcmp(h->body + 8, "REMB", 4) != 0) return MF_ERR_UNSUPPORTED;
  if (h->body_len < 16) return MF_ERR_PARSE;
  const uint8_t *b = h->body;
  uint8_t num = b[12];
  if ((size_t)num * 4 > h->body_len - 16) return MF_ERR_PARSE;
  unsigned exp = b[13] >> 2;
  uint64_t mantissa = ((uint64_t)(b[13] & 0x03) << 16) | rd16(b + 14);
  uint64_t bitrate = mantissa << exp;
  if ((bitrate >> exp) != mantissa) return MF_ERR_PARSE;
  out->sender_ssrc = rd32(b);
  out->media_ssrc = rd32(b + 4);
  out->bitrate = bitrate;
  out->ssrc_count = num;
  for (size_t i = 0; i < num; i++) out->ssrcs[i] = rd32(b + 16 + 4 * i);
  return MF_OK;
}

/* ---------------------------------------------------------------- transport-wide CC */

/* A packet status chunk decoded: either a run of one symbol or up to 14 symbols. */
typedef struct {
  bool run;
  uint32_t n;      /* statuses the chunk describes */
  uint8_t sym[14]; /* sym[0] only for a run */
} twcc_chunk_t;

static void twcc_decode_chunk(uint16_t c, twcc_chunk_t *out) {
  if ((c & 0x8000) == 0) {
    out->run = true;
    out->sym[0] = (uint8_t)((c >> 13) & 0x3);
    out->n = c & 0x1fff;
  } else if ((c & 0x4000) == 0) {
    out->run = false;
    out->n = 14;
    for (int k = 0; k < 14; k++) out->sym[k] = (uint8_t)((c >> (13 - k)) & 0x1);
  } else {
    out->run = false;
    out->n = 7;
    for (int k = 0; k < 7; k++) out->sym[k] = (uint8_t)((c >> (12 - 2 * k)) & 0x3);
  }
}

static size_t twcc_delta_size(uint8_t sym) { return sym == MF_TWCC_LARGE_DELTA ? 2 : sym; }

mf_err_t mf_rtcp_parse_twcc(const mf_rtcp_header_t *h, mf_rtcp_twcc_t *out,
                            mf_rtcp_twcc_packet_t *pkts, size_t max) {
  if (!h || !out || h->type != MF_RTCP_RTPFB || h->count != MF_RTCP_RTPFB_TWCC)
    return MF_ERR_PARSE;
  if (max && !pkts) return MF_ERR_INVALID_ARG;
  const uint8_t *b = h->body;
  size_t blen = h->body_len;
  if (blen < 16) return MF_ERR_PARSE;
  uint32_t status_count = rd16(b + 10);
  if (status_count == 0) return MF_ERR_PARSE;

  /* Pass 1: validate the chunks, find where the deltas start and how many bytes they need. */
  size_t pos = 16;
  size_t delta_bytes = 0, received = 0;
  uint32_t done = 0;
  twcc_chunk_t ch;
  while (done < status_count) {
    if (blen - pos < 2) return MF_ERR_PARSE;
    twcc_decode_chunk(rd16(b + pos), &ch);
    pos += 2;
    uint32_t take = ch.n < status_count - done ? ch.n : status_count - done;
    if (ch.run) {
      if (ch.sym[0] == 3) return MF_ERR_PARSE;
      delta_bytes += (size_t)take * twcc_delta_size(ch.sym[0]);
      if (ch.sym[0]) received += take;
    } else {
      for (uint32_t k = 0; k < take; k++) {
        if (ch.sym[k] == 3) return MF_ERR_PARSE;
        delta_bytes += twcc_delta_size(ch.sym[k]);
        if (ch.sym[k]) received++;
      }
    }
    done += take;
  }
  size_t chunks_end = pos;
  if (delta_bytes > blen - chunks_end) return MF_ERR_PARSE;

  out->sender_ssrc = rd32(b);
  out->media_ssrc = rd32(b + 4);
  out->base_seq = rd16(b + 8);
  out->status_count = (uint16_t)status_count;
  out->reference_time = sign24(rd24(b + 12));
  out->fb_pkt_count = b[15];
  out->received = received;
  out->written = status_count < max ? status_count : max;

  /* Pass 2: everything is known to be in bounds; fill the caller's array. */
  size_t dpos = chunks_end;
  size_t w = 0;
  pos = 16;
  while (w < out->written) {
    twcc_decode_chunk(rd16(b + pos), &ch);
    pos += 2;
    for (uint32_t k = 0; k < ch.n && w < out->written; k++) {
      uint8_t s = ch.run ? ch.sym[0] : ch.sym[k];
      mf_rtcp_twcc_packet_t *p = &pkts[w];
      p->seq = (uint16_t)(out->base_seq + w);
      p->status = s;
      p->delta = 0;
      if (s == MF_TWCC_SMALL_DELTA) {
        p->delta = b[dpos];
        dpos += 1;
      } else if (s == MF_TWCC_LARGE_DELTA) {
        p->delta = (int16_t)rd16(b + dpos);
        dpos += 2;
      }
      w++;
    }
  }
  return MF_OK;
}

/* ---------------------------------------------------------------- writers */

/* Writes a common header for a packet of len bytes (a multiple of 4, >= 4). */
static void put_header(uint8_t *b, uint8_t count, uint8_t type, size_t len) {
  b[0] = (uint8_t)(0x80 | (count & 0x1f));
  b[1] = type;
  wr16(b + 2, (uint16_t)(len / 4 - 1));
}

static void put_block(uint8_t *p, const mf_rtcp_report_block_t *r) {
  int32_t lost = r->cumulative_lost;
  if (lost > 0x7fffff) lost = 0x7fffff;
  if (lost < -0x800000) lost = -0x800000;
  wr32(p, r->ssrc);
  p[4] = r->fraction_lost;
  wr24(p + 5, (uint32_t)lost & 0xffffffu);
  wr32(p + 8, r->highest_seq);
  wr32(p + 12, r->jitter);
  wr32(p + 16, r->lsr);
  wr32(p + 20, r->dlsr);
}

mf_err_t mf_rtcp_write_sr(uint8_t *buf, size_t cap, const mf_rtcp_sr_t *sr, size_t *out_len) {
  if (!buf || !sr || !out_len || sr->report_count > MF_RTCP_MAX_COUNT)
    return MF_ERR_INVALID_ARG;
  size_t len = 28 + 24u * sr->report_count;
  if (len > cap) return MF_ERR_FULL;
  put_header(buf, sr->report_count, MF_RTCP_SR, len);
  wr32(buf + 4, sr->ssrc);
  wr32(buf + 8, (uint32_t)(sr->ntp >> 32));
  wr32(buf + 12, (uint32_t)sr->ntp);
  wr32(buf + 16, sr->rtp_ts);
  wr32(buf + 20, sr->packet_count);
  wr32(buf + 24, sr->octet_count);
  for (size_t i = 0; i < sr->report_count; i++) put_block(buf + 28 + 24 * i, &sr->reports[i]);
  *out_len = len;
  return MF_OK;
}

mf_err_t mf_rtcp_write_rr(uint8_t *buf, size_t cap, const mf_rtcp_rr_t *rr, size_t *out_len) {
  if (!buf || !rr || !out_len || rr->report_count > MF_RTCP_MAX_COUNT)
    return MF_ERR_INVALID_ARG;
  size_t len = 8 + 24u * rr->report_count;
  if (len > cap) return MF_ERR_FULL;
  put_header(buf, rr->report_count, MF_RTCP_RR, len);
  wr32(buf + 4, rr->ssrc);
  for (size_t i = 0; i < rr->report_count; i++) put_block(buf + 8 + 24 * i, &rr->reports[i]);
  *out_len = len;
  return MF_OK;
}

mf_err_t mf_rtcp_write_sdes_cname(uint8_t *buf, size_t cap, uint32_t ssrc,
                                  const uint8_t *cname, size_t len, size_t *out_len) {
  if (!buf || !cname || !out_len || len == 0 || len > 255) return MF_ERR_INVALID_ARG;
  /* header, SSRC, CNAME item, then at least one null octet up to a 32-bit boundary */
  size_t total = (4 + 4 + 2 + len + 1 + 3) & ~(size_t)3;
  if (total > cap) return MF_ERR_FULL;
  put_header(buf, 1, MF_RTCP_SDES, total);
  wr32(buf + 4, ssrc);
  buf[8] = MF_RTCP_SDES_CNAME;
  buf[9] = (uint8_t)len;
  memcpy(buf + 10, cname, len);
  memset(buf + 10 + len, 0, total - 10 - len);
  *out_len = total;
  return MF_OK;
}

mf_err_t mf_rtcp_write_bye(uint8_t *buf, size_t cap, const mf_rtcp_bye_t *bye,
                           size_t *out_len) {
  if (!buf || !bye || !out_len || bye->count > MF_RTCP_MAX_COUNT) return MF_ERR_INVALID_ARG;
  if (bye->reason_len && !bye->reason) return MF_ERR_INVALID_ARG;
  bool has_reason = bye->reason != NULL;
  size_t ids = 4u * bye->count;
  size_t len = 4 + ids + (has_reason ? (1 + (size_t)bye->reason_len + 3) & ~(size_t)3 : 0);
  if (len > cap) return MF_ERR_FULL;
  put_header(buf, bye->count, MF_RTCP_BYE, len);
  for (size_t i = 0; i < bye->count; i++) wr32(buf + 4 + 4 * i, bye->ssrcs[i]);
  if (has_reason) {
    uint8_t *r = buf + 4 + ids;
    r[0] = bye->reason_len;
    if (bye->reason_len) memcpy(r + 1, bye->reason, bye->reason_len);
    memset(r + 1 + bye->reason_len, 0, len - (4 + ids + 1 + bye->reason_len));
  }
  *out_len = len;
  return MF_OK;
}

static void put_fb(uint8_t *buf, uint8_t fmt, uint8_t type, size_t len, uint32_t sender,
                   uint32_t media) {
  put_header(buf, fmt, type, len);
  wr32(buf + 4, sender);
  wr32(buf + 8, media);
}

mf_err_t mf_rtcp_write_nack(uint8_t *buf, size_t cap, uint32_t sender_ssrc,
                            uint32_t media_ssrc, const mf_rtcp_nack_item_t *items,
                            size_t count, size_t *out_len) {
  if (!buf || !items || !out_len || count == 0) return MF_ERR_INVALID_ARG;
  if (count > (RTCP_MAX_LEN - 12) / 4) return MF_ERR_INVALID_ARG;
  size_t len = 12 + 4 * count;
  if (len > cap) return MF_ERR_FULL;
  put_fb(buf, MF_RTCP_RTPFB_NACK, MF_RTCP_RTPFB, len, sender_ssrc, media_ssrc);
  for (size_t i = 0; i < count; i++) {
    wr16(buf + 12 + 4 * i, items[i].pid);
    wr16(buf + 14 + 4 * i, items[i].blp);
  }
  *out_len = len;
  return MF_OK;
}

mf_err_t mf_rtcp_write_pli(uint8_t *buf, size_t cap, uint32_t sender_ssrc,
                           uint32_t media_ssrc, size_t *out_len) {
  if (!buf || !out_len) return MF_ERR_INVALID_ARG;
  if (cap < 12) return MF_ERR_FULL;
  put_fb(buf, MF_RTCP_PSFB_PLI, MF_RTCP_PSFB, 12, sender_ssrc, media_ssrc);
  *out_len = 12;
  return MF_OK;
}

mf_err_t mf_rtcp_write_fir(uint8_t *buf, size_t cap, uint32_t sender_ssrc,
                           const mf_rtcp_fir_entry_t *entries, size_t count, size_t *out_len) {
  if (!buf || !entries || !out_len || count == 0) return MF_ERR_INVALID_ARG;
  if (count > (RTCP_MAX_LEN - 12) / 8) return MF_ERR_INVALID_ARG;
  size_t len = 12 + 8 * count;
  if (len > cap) return MF_ERR_FULL;
  put_fb(buf, MF_RTCP_PSFB_FIR, MF_RTCP_PSFB, len, sender_ssrc, 0);
  for (size_t i = 0; i < count; i++) {
    uint8_t *e = buf + 12 + 8 * i;
    wr32(e, entries[i].ssrc);
    e[4] = entries[i].seq_nr;
    e[5] = e[6] = e[7] = 0;
  }
  *out_len = len;
  return MF_OK;
}

mf_err_t mf_rtcp_write_remb(uint8_t *buf, size_t cap, const mf_rtcp_remb_t *remb,
                            size_t *out_len) {
  if (!buf || !remb || !out_len) return MF_ERR_INVALID_ARG;
  size_t len = 20 + 4u * remb->ssrc_count;
  if (len > cap) return MF_ERR_FULL;
  uint64_t mantissa = remb->bitrate;
  unsigned exp = 0;
  while (mantissa > 0x3ffff) {
    mantissa >>= 1;
    exp++;
  }
  put_fb(buf, MF_RTCP_PSFB_AFB, MF_RTCP_PSFB, len, remb->sender_ssrc, remb->media_ssrc);
  memcpy(buf + 12, "REMB", 4);
  buf[16] = remb->ssrc_count;
  buf[17] = (uint8_t)((exp << 2) | (mantissa >> 16));
  wr16(buf + 18, (uint16_t)mantissa);
  for (size_t i = 0; i < remb->ssrc_count; i++) wr32(buf + 20 + 4 * i, remb->ssrcs[i]);
  *out_len = len;
  return MF_OK;
}

/* Encodes the chunk starting at pkts[i]; returns the statuses it covers (>= 1). */
static size_t twcc_encode_chunk(const mf_rtcp_twcc_packet_t *pkts, size_t i, size_t count,
                                uint16_t *chunk) {
  size_t run = 1;
  while (i + run < count && run < 0x1fff && pkts[i + run].status == pkts[i].status) run++;
  if (run >= 7 || i + run == count) {
    *chunk = (uint16_t)((pkts[i].status << 13) | run);
    return run;
  }
  size_t left = count - i;
  bool one_bit = true;
  for (size_t k = 0; k < 14 && k < left; k++) {
    if (pkts[i + k].status > 1) one_bit = false;
  }
  uint16_t c;
  size_t n;
  if (one_bit) {
    c = 0x8000;
    n = left < 14 ? left : 14;
    for (size_t k = 0; k < n; k++) c |= (uint16_t)(pkts[i + k].status << (13 - k));
  } else {
    c = 0xc000;
    n = left < 7 ? left : 7;
    for (size_t k = 0; k < n; k++) c |= (uint16_t)(pkts[i + k].status << (12 - 2 * k));
  }
  *chunk = c;
  return n;
}

mf_err_t mf_rtcp_write_twcc(uint8_t *buf, size_t cap, const mf_rtcp_twcc_t *hdr,
                            const mf_rtcp_twcc_packet_t *pkts, size_t count, size_t *out_len) {
  if (!buf || !hdr || !pkts || !out_len || count == 0 || count > 0xffff)
    return MF_ERR_INVALID_ARG;
  if (hdr->reference_time < -0x800000 || hdr->reference_time > 0x7fffff)
    return MF_ERR_INVALID_ARG;
  size_t delta_bytes = 0;
  for (size_t i = 0; i < count; i++) {
    const mf_rtcp_twcc_packet_t *p = &pkts[i];
    if (p->status > MF_TWCC_LARGE_DELTA) return MF_ERR_INVALID_ARG;
    if (p->status == MF_TWCC_SMALL_DELTA && (p->delta < 0 || p->delta > 255))
      return MF_ERR_INVALID_ARG;
    if (p->status == MF_TWCC_LARGE_DELTA && (p->delta < -32768 || p->delta > 32767))
      return MF_ERR_INVALID_ARG;
    delta_bytes += twcc_delta_size(p->status);
  }
  size_t chunks = 0;
  uint16_t chunk;
  for (size_t i = 0; i < count; chunks++) i += twcc_encode_chunk(pkts, i, count, &chunk);
  size_t len = (20 + 2 * chunks + delta_bytes + 3) & ~(size_t)3;
  if (len > RTCP_MAX_LEN) return MF_ERR_INVALID_ARG;
  if (len > cap) return MF_ERR_FULL;

  put_fb(buf, MF_RTCP_RTPFB_TWCC, MF_RTCP_RTPFB, len, hdr->sender_ssrc, hdr->media_ssrc);
  wr16(buf + 12, hdr->base_seq);
  wr16(buf + 14, (uint16_t)count);
  wr24(buf + 16, (uint32_t)hdr->reference_time & 0xffffffu);
  buf[19] = hdr->fb_pkt_count;
  size_t pos = 20;
  for (size_t i = 0; i < count; pos += 2) {
    i += twcc_encode_chunk(pkts, i, count, &chunk);
    wr16(buf + pos, chunk);
  }
  for (size_t i = 0; i < count; i++) {
    if (pkts[i].status == MF_TWCC_SMALL_DELTA) {
      buf[pos++] = (uint8_t)pkts[i].delta;
    } else if (pkts[i].status == MF_TWCC_LARGE_DELTA) {
      wr16(buf + pos, (uint16_t)(int16_t)pkts[i].delta);
      pos += 2;
    }
  }
  /* Zero fill to the 32-bit boundary (no P bit: the parser ignores bytes after deltas). */
  memset(buf + pos, 0, len - pos);
  *out_len = len;
  return MF_OK;
}

/* ---------------------------------------------------------------- compound builder */

void mf_rtcp_compound_init(mf_rtcp_compound_t *c, uint8_t *buf, size_t cap) {
  c->buf = buf;
  c->cap = buf ? cap : 0;
  c->len = 0;
  c->err = buf ? MF_OK : MF_ERR_INVALID_ARG;
}

/* Records the result of one append: advances on success, sticks the first error. */
static mf_err_t compound_done(mf_rtcp_compound_t *c, mf_err_t err, size_t n) {
  if (err == MF_OK) {
    c->len += n;
  } else {
    c->err = err;
  }
  return err;
}

#define COMPOUND_APPEND(c, write_call)                                        \
  do {                                                                        \
    if ((c)->err != MF_OK) return (c)->err;                                   \
    uint8_t *buf_ = (c)->buf + (c)->len;                                      \
    size_t cap_ = (c)->cap - (c)->len, n_ = 0;                                \
    mf_err_t err_ = (write_call);                                             \
    return compound_done((c), err_, n_);                                      \
  } while (0)

mf_err_t mf_rtcp_compound_add_sr(mf_rtcp_compound_t *c, const mf_rtcp_sr_t *sr) {
  COMPOUND_APPEND(c, mf_rtcp_write_sr(buf_, cap_, sr, &n_));
}

mf_err_t mf_rtcp_compound_add_rr(mf_rtcp_compound_t *c, const mf_rtcp_rr_t *rr) {
  COMPOUND_APPEND(c, mf_rtcp_write_rr(buf_, cap_, rr, &n_));
}

mf_err_t mf_rtcp_compound_add_sdes_cname(mf_rtcp_compound_t *c, uint32_t ssrc,
                                         const uint8_t *cname, size_t len) {
  COMPOUND_APPEND(c, mf_rtcp_write_sdes_cname(buf_, cap_, ssrc, cname, len, &n_));
}

mf_err_t mf_rtcp_compound_add_bye(mf_rtcp_compound_t *c, const mf_rtcp_bye_t *bye) {
  COMPOUND_APPEND(c, mf_rtcp_write_bye(buf_, cap_, bye, &n_));
}

mf_err_t mf_rtcp_compound_add_nack(mf_rtcp_compound_t *c, uint32_t sender_ssrc,
                                   uint32_t media_ssrc, const mf_rtcp_nack_item_t *items,
                                   size_t count) {
  COMPOUND_APPEND(c, mf_rtcp_write_nack(buf_, cap_, sender_ssrc, media_ssrc, items, count, &n_));
}

mf_err_t mf_rtcp_compound_add_pli(mf_rtcp_compound_t *c, uint32_t sender_ssrc,
                                  uint32_t media_ssrc) {
  COMPOUND_APPEND(c, mf_rtcp_write_pli(buf_, cap_, sender_ssrc, media_ssrc, &n_));
}

mf_err_t mf_rtcp_compound_add_fir(mf_rtcp_compound_t *c, uint32_t sender_ssrc,
                                  const mf_rtcp_fir_entry_t *entries, size_t count) {
  COMPOUND_APPEND(c, mf_rtcp_write_fir(buf_, cap_, sender_ssrc, entries, count, &n_));
}

mf_err_t mf_rtcp_compound_add_remb(mf_rtcp_compound_t *c, const mf_rtcp_remb_t *remb) {
  COMPOUND_APPEND(c, mf_rtcp_write_remb(buf_, cap_, remb, &n_));
}

mf_err_t mf_rtcp_compound_add_twcc(mf_rtcp_compound_t *c, const mf_rtcp_twcc_t *hdr,
                                   const mf_rtcp_twcc_packet_t *pkts, size_t count) {
  COMPOUND_APPEND(c, mf_rtcp_write_twcc(buf_, cap_, hdr, pkts, count, &n_));
}
