/* Fuzz target for node/rtp/rtp.h: parse, look up every extension id, rewrite ids and
 * fields in a copy, then check the rewritten packet still parses to the same layout, and
 * that a header rebuilt from the parsed fields parses back to them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/rtp/rtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
  if (!cond) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)mf_rtp_is_rtcp(data, size);
  (void)mf_rtp_is_rtp_or_rtcp(data, size);
  if (size >= 4) {
    uint16_t a = (uint16_t)((data[0] << 8) | data[1]);
    uint16_t b = (uint16_t)((data[2] << 8) | data[3]);
    check(a == b || mf_rtp_seq_newer(a, b) != mf_rtp_seq_newer(b, a));
    check((uint16_t)(b + mf_rtp_seq_diff(a, b)) == a);
  }

  mf_rtp_packet_t p;
  if (mf_rtp_parse(data, size, &p) != MF_OK) return 0;
  check(p.header_len + p.payload_len + p.padding_len == size);
  for (size_t i = 0; i < p.csrc_count; i++) (void)mf_rtp_csrc(&p, i);

  size_t found = 0;
  for (unsigned id = 0; id < 256; id++) {
    const uint8_t *v;
    size_t len;
    if (mf_rtp_get_extension(&p, (uint8_t)id, &v, &len)) {
      check(v >= p.ext && v + len <= p.ext + p.ext_len);
      found++;
    }
  }

  /* Rewrite into an exact-size copy, as the forwarding path does. */
  uint8_t *copy = malloc(size);
  if (!copy) return 0;
  memcpy(copy, data, size);
  uint8_t map[256];
  for (unsigned i = 0; i < 256; i++) map[i] = (uint8_t)((i * 7 + size) & 0xff);
  map[size & 0xff] = 0;
  (void)mf_rtp_remap_extension_ids(copy, &p, map);
  mf_rtp_set_ssrc(copy, 0x01020304);
  mf_rtp_set_sequence(copy, (uint16_t)size);
  mf_rtp_set_timestamp(copy, (uint32_t)size * 90);
  mf_rtp_set_payload_type(copy, (uint8_t)size);
  mf_rtp_set_marker(copy, size & 1);
  mf_rtp_packet_t q;
  check(mf_rtp_parse(copy, size, &q) == MF_OK);
  check(q.header_len == p.header_len && q.payload_len == p.payload_len);
  check(q.ssrc == 0x01020304 && q.sequence == (uint16_t)size);
  check(memcmp(q.payload, p.payload, p.payload_len) == 0);
  for (unsigned id = 1; id < 256; id++) {
    const uint8_t *v;
    size_t len;
    if (mf_rtp_get_extension(&q, (uint8_t)id, &v, &len)) {
      uint8_t zero[255] = {0};
      (void)mf_rtp_set_extension(copy, &q, (uint8_t)id, zero, len);
    }
  }
  free(copy);

  /* Rebuild the header from the parsed fields (extension elements re-encoded). */
  mf_rtp_ext_elem_t elems[64];
  size_t n = 0;
  for (unsigned id = 1; id < 256 && n < 64; id++) {
    const uint8_t *v;
    size_t len;
    if (mf_rtp_get_extension(&p, (uint8_t)id, &v, &len)) {
      elems[n++] = (mf_rtp_ext_elem_t){(uint8_t)id, (uint8_t)len, v};
    }
  }
  uint32_t csrcs[MF_RTP_MAX_CSRC];
  for (size_t i = 0; i < p.csrc_count; i++) csrcs[i] = mf_rtp_csrc(&p, i);
  mf_rtp_header_t h = {.marker = p.marker, .payload_type = p.payload_type,
                       .sequence = p.sequence, .timestamp = p.timestamp, .ssrc = p.ssrc,
                       .csrc_count = p.csrc_count, .csrcs = csrcs, .ext = elems,
                       .ext_count = n};
  static uint8_t out[1 << 17];
  size_t out_len;
  if (mf_rtp_write_packet(out, sizeof out, &h, p.payload, p.payload_len, p.padding_len,
                          &out_len) == MF_OK) {
    mf_rtp_packet_t r;
    check(mf_rtp_parse(out, out_len, &r) == MF_OK);
    check(r.ssrc == p.ssrc && r.sequence == p.sequence && r.timestamp == p.timestamp);
    check(r.payload_len == p.payload_len && r.padding_len == p.padding_len);
    for (size_t i = 0; i < n; i++) {
      const uint8_t *v;
      size_t len;
      check(mf_rtp_get_extension(&r, elems[i].id, &v, &len));
      check(len == elems[i].len && memcmp(v, elems[i].value, len) == 0);
    }
  }
  (void)found;
  return 0;
}
