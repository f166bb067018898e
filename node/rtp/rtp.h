/* RTP packets (RFC 3550) and header extensions (RFC 8285): parse, inspect, rewrite, build.
 *
 * Parsing is zero-copy: mf_rtp_packet_t points into the caller's buffer, which must stay
 * alive and unchanged while the view is used. Nothing here allocates, locks or logs, so
 * every function is safe on the per-packet path. The functions keep no state; in Mafalda
 * they run on ONE worker thread (the owner of the buffers) and need no synchronisation.
 *
 * Every read of packet bytes is bounds-checked against the length given to mf_rtp_parse:
 * a packet that passed mf_rtp_parse can be inspected with any accessor below safely.
 *
 * In-place writers (mf_rtp_set_*, mf_rtp_remap_extension_ids, mf_rtp_set_extension) take
 * the mutable buffer `data` separately from the view: `data` must hold the same bytes the
 * view was parsed from (the same buffer, or a copy of it, e.g. a consumer's output buffer).
 * Offsets come from the view; the view itself is not updated. */
#ifndef MF_RTP_H
#define MF_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define MF_RTP_HEADER_MIN 12     /* fixed header, no CSRC, no extension */
#define MF_RTP_MAX_CSRC 15

/* "defined by profile" values of the header extension (RFC 8285 section 4). */
#define MF_RTP_EXT_PROFILE_ONE_BYTE 0xBEDE
#define MF_RTP_EXT_PROFILE_TWO_BYTE 0x1000 /* low 4 bits are "appbits": 0x1000..0x100F */

/* Parsed view of one RTP packet. All pointers point into the buffer given to mf_rtp_parse. */
typedef struct {
  const uint8_t *data;  /* start of the packet */
  size_t len;           /* whole packet, header + payload + padding */
  uint8_t version;      /* always 2 after a successful parse */
  bool padding;         /* P bit */
  bool extension;       /* X bit */
  uint8_t csrc_count;   /* CC, 0..15 */
  bool marker;
  uint8_t payload_type; /* 0..127 */
  uint16_t sequence;
  uint32_t timestamp;
  uint32_t ssrc;
  const uint8_t *csrcs; /* csrc_count big-endian 32-bit values; use mf_rtp_csrc() */
  uint16_t ext_profile; /* 0 when extension is false */
  const uint8_t *ext;   /* extension body after the 4-byte profile/length word; NULL if none */
  size_t ext_len;       /* body length in bytes (a multiple of 4, may be 0) */
  size_t header_len;    /* offset of the payload: 12 + 4*CC + (X ? 4 + ext_len : 0) */
  const uint8_t *payload;
  size_t payload_len;   /* excludes padding; 0 for a padding-only packet */
  uint8_t padding_len;  /* trailing padding bytes including the count byte; 0 if P unset */
} mf_rtp_packet_t;

/* Validates and parses an RTP packet. MF_ERR_PARSE (and *out undefined) for: len < 12,
 * version != 2, CSRC list or extension header/body beyond len, P set with no byte after
 * the header or with a padding count of 0 or larger than what follows the header.
 * MF_ERR_INVALID_ARG for NULL pointers. Does not check the extension elements themselves:
 * the lookup functions below handle malformed elements safely. Does not reject payload
 * types 64..95 (RTCP range): demultiplex with mf_rtp_is_rtcp first. */
mf_err_t mf_rtp_parse(const uint8_t *data, size_t len, mf_rtp_packet_t *out);

/* The i-th CSRC (i < p->csrc_count). */
uint32_t mf_rtp_csrc(const mf_rtp_packet_t *p, size_t i);

/* True when the extension uses the one-byte (0xBEDE) or two-byte (0x100X) form. */
bool mf_rtp_ext_is_one_byte(const mf_rtp_packet_t *p);
bool mf_rtp_ext_is_two_byte(const mf_rtp_packet_t *p);

/* Finds extension element `id` (1..14 in the one-byte form, 1..255 in the two-byte form).
 * On success *value points to the element's data inside the packet and *len is its length
 * (1..16 one-byte; 0..255 two-byte). Zero bytes between elements are padding; in the
 * one-byte form id 15 ends the walk (RFC 8285 4.2). An element running past the extension
 * body ends the walk too. Returns false when absent, on an unknown profile, or id 0. */
bool mf_rtp_get_extension(const mf_rtp_packet_t *p, uint8_t id, const uint8_t **value,
                          size_t *len);

/* Overwrites the value of element `id` in place; the new value must have exactly the
 * element's current length (e.g. a transport-wide sequence number, abs-send-time).
 * False when the element is absent or the lengths differ (nothing written). */
bool mf_rtp_set_extension(uint8_t *data, const mf_rtp_packet_t *p, uint8_t id,
                          const uint8_t *value, size_t len);

/* Rewrites every element's id to map[id] in place. Elements whose new id is 0, or not
 * representable in the packet's form (above 14 in the one-byte form), become padding:
 * all their bytes are zeroed, which parsers skip byte by byte (RFC 8285 allows zero
 * padding between elements), so the packet stays valid and keeps its length. Padding
 * bytes stay padding. MF_ERR_PARSE if an element runs past the body: elements before it
 * are already rewritten and the rest is left untouched, so the caller should drop the
 * packet. MF_OK without changes when the packet has no extension or an unknown profile. */
mf_err_t mf_rtp_remap_extension_ids(uint8_t *data, const mf_rtp_packet_t *p,
                                    const uint8_t map[256]);

/* In-place field writers for the forwarding path. `data` is a packet that passed
 * mf_rtp_parse (so it has at least 12 bytes); they touch only the named field. */
void mf_rtp_set_ssrc(uint8_t *data, uint32_t ssrc);
void mf_rtp_set_sequence(uint8_t *data, uint16_t seq);
void mf_rtp_set_timestamp(uint8_t *data, uint32_t ts);
void mf_rtp_set_payload_type(uint8_t *data, uint8_t pt); /* pt & 0x7f; keeps the marker */
void mf_rtp_set_marker(uint8_t *data, bool marker);

/* RFC 7983 demultiplexing of a datagram on a WebRTC 5-tuple: first byte 128..191 means
 * RTP or RTCP. Then RFC 5761: second byte 192..223 means RTCP (which is why RTP payload
 * types 64..95 are not used with rtcp-mux). Both need len >= 2; mf_rtp_is_rtcp also checks
 * the first byte. */
bool mf_rtp_is_rtp_or_rtcp(const uint8_t *data, size_t len);
bool mf_rtp_is_rtcp(const uint8_t *data, size_t len);

/* One header extension element to write. */
typedef struct {
  uint8_t id;           /* 1..14 one-byte form, 1..255 two-byte form */
  uint8_t len;          /* value bytes: 1..16 one-byte form, 0..255 two-byte form */
  const uint8_t *value; /* may be NULL when len == 0 */
} mf_rtp_ext_elem_t;

/* Fields of a header to write. Zero-initialise and set what you need. */
typedef struct {
  bool marker;
  uint8_t payload_type; /* 0..127 */
  uint16_t sequence;
  uint32_t timestamp;
  uint32_t ssrc;
  uint8_t csrc_count;   /* 0..15 */
  const uint32_t *csrcs;
  const mf_rtp_ext_elem_t *ext; /* elements, written in order, body zero-padded to 4 bytes */
  size_t ext_count;
  /* 0: one-byte form if every element fits it, else two-byte. MF_RTP_EXT_PROFILE_ONE_BYTE
   * or MF_RTP_EXT_PROFILE_TWO_BYTE force a form. With ext_count 0 and a non-zero profile an
   * empty extension (X set, length 0) is written. */
  uint16_t ext_profile;
} mf_rtp_header_t;

/* Writes the header (padding bit clear) into buf. *out_len = header bytes written.
 * MF_ERR_INVALID_ARG for values outside the ranges above, MF_ERR_FULL if cap is too small
 * (buf may then be partly written). */
mf_err_t mf_rtp_write_header(uint8_t *buf, size_t cap, const mf_rtp_header_t *h,
                             size_t *out_len);

/* Writes a whole packet: header, payload (memmove: it may already sit in buf) and
 * padding_len bytes of padding (0 = none; otherwise P is set, the padding is zeros and its
 * last byte is padding_len). A padding-only probe is payload_len 0, padding_len > 0. */
mf_err_t mf_rtp_write_packet(uint8_t *buf, size_t cap, const mf_rtp_header_t *h,
                             const uint8_t *payload, size_t payload_len, uint8_t padding_len,
                             size_t *out_len);

/* Sequence number arithmetic modulo 2^16 (RFC 3550 A.1).
 * mf_rtp_seq_diff(a, b): the signed distance from b to a in [-32768, 32767].
 * mf_rtp_seq_newer(a, b): a comes after b. When they are exactly 32768 apart the larger
 * value counts as newer, so for a != b exactly one of newer(a,b), newer(b,a) holds. */
int32_t mf_rtp_seq_diff(uint16_t a, uint16_t b);
bool mf_rtp_seq_newer(uint16_t a, uint16_t b);
/* Same for 32-bit RTP timestamps. */
bool mf_rtp_ts_newer(uint32_t a, uint32_t b);

/* Extends 16-bit sequence numbers to a monotonic 64-bit count, following wraparounds in
 * both directions. Zero-initialise; the first value unwraps to itself. */
typedef struct {
  int64_t last;
  bool started;
} mf_rtp_seq_unwrapper_t;

int64_t mf_rtp_seq_unwrap(mf_rtp_seq_unwrapper_t *u, uint16_t seq);

#endif
