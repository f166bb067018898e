/* RTCP (RFC 3550) and the feedback messages a WebRTC SFU exchanges: generic NACK and
 * PLI/FIR (RFC 4585, RFC 5104), transport-wide congestion control feedback
 * (draft-holmer-rmcat-transport-wide-cc-extensions-01) and REMB (draft-alvestrand-rmcat-remb).
 *
 * Reading: mf_rtcp_iter_* walks a compound packet and yields each packet's common header;
 * the mf_rtcp_parse_* functions decode one packet from its header into a caller-provided
 * struct. Nothing allocates; lists too long for a fixed array are exposed as zero-copy
 * views into the packet with an accessor (NACK, FIR) or written into caller arrays with a
 * maximum (TWCC). Every read is bounds-checked; a length or count field is never trusted.
 * Views point into the caller's buffer, which must outlive them.
 *
 * Writing: mf_rtcp_write_* serialise one packet into (buf, cap) and return MF_ERR_FULL when
 * it does not fit; mf_rtcp_compound_* append packets one after another into one buffer.
 * Every writer's output parses back with the matching parser.
 *
 * All functions are stateless and reentrant; in Mafalda they run on ONE worker thread (the
 * owner of the buffers) and iterators/builders belong to that thread. */
#ifndef MF_RTCP_H
#define MF_RTCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Packet types. */
#define MF_RTCP_SR 200
#define MF_RTCP_RR 201
#define MF_RTCP_SDES 202
#define MF_RTCP_BYE 203
#define MF_RTCP_APP 204
#define MF_RTCP_RTPFB 205 /* transport-layer feedback, RFC 4585 */
#define MF_RTCP_PSFB 206  /* payload-specific feedback, RFC 4585 */
#define MF_RTCP_XR 207

/* FMT values. */
#define MF_RTCP_RTPFB_NACK 1
#define MF_RTCP_RTPFB_TWCC 15
#define MF_RTCP_PSFB_PLI 1
#define MF_RTCP_PSFB_FIR 4
#define MF_RTCP_PSFB_AFB 15 /* application layer feedback; REMB is one */

#define MF_RTCP_SDES_END 0
#define MF_RTCP_SDES_CNAME 1

#define MF_RTCP_MAX_COUNT 31 /* the 5-bit RC/SC field */

/* ---------------------------------------------------------------- compound iterator */

/* Common header of one packet inside a compound packet. */
typedef struct {
  uint8_t version;     /* always 2 when yielded */
  bool padding;
  uint8_t count;       /* RC / SC / FMT, the low 5 bits of byte 0 */
  uint8_t type;        /* packet type, e.g. MF_RTCP_SR */
  size_t len;          /* whole packet in bytes, header and padding included: 4*(length+1) */
  const uint8_t *data; /* start of the packet (its 4-byte header) */
  const uint8_t *body; /* data + 4 */
  size_t body_len;     /* len - 4 - padding */
} mf_rtcp_header_t;

typedef struct {
  const uint8_t *data;
  size_t len;
  size_t off;
  bool failed;
} mf_rtcp_iter_t;

void mf_rtcp_iter_init(mf_rtcp_iter_t *it, const uint8_t *data, size_t len);

/* MF_OK and *out filled; MF_ERR_EMPTY at the end; MF_ERR_PARSE (and then always PARSE)
 * when fewer than 4 bytes remain, version != 2, the length field runs past the buffer, or
 * padding is set with a count of 0 or beyond the packet body. A length field of 0 (a bare
 * 4-byte header) is accepted here: the typed parsers reject packets too short for them.
 * An empty buffer yields MF_ERR_EMPTY at once. */
mf_err_t mf_rtcp_iter_next(mf_rtcp_iter_t *it, mf_rtcp_header_t *out);

/* Checks a whole compound packet with the iterator: MF_OK if it holds at least one packet
 * and every header is valid. */
mf_err_t mf_rtcp_validate(const uint8_t *data, size_t len);

/* ---------------------------------------------------------------- SR / RR */

typedef struct {
  uint32_t ssrc;           /* source this block reports on */
  uint8_t fraction_lost;   /* fixed point, /256 */
  int32_t cumulative_lost; /* signed 24-bit */
  uint32_t highest_seq;    /* extended highest sequence number received */
  uint32_t jitter;
  uint32_t lsr;            /* middle 32 bits of the last SR's NTP time */
  uint32_t dlsr;           /* 1/65536 s */
} mf_rtcp_report_block_t;

typedef struct {
  uint32_t ssrc;
  uint64_t ntp;            /* NTP timestamp, 32.32 fixed point */
  uint32_t rtp_ts;
  uint32_t packet_count;
  uint32_t octet_count;
  uint8_t report_count;    /* 0..31 */
  mf_rtcp_report_block_t reports[MF_RTCP_MAX_COUNT];
} mf_rtcp_sr_t;

typedef struct {
  uint32_t ssrc;
  uint8_t report_count;
  mf_rtcp_report_block_t reports[MF_RTCP_MAX_COUNT];
} mf_rtcp_rr_t;

/* MF_ERR_PARSE if the type is wrong or the body is shorter than its report count needs.
 * Bytes after the report blocks (profile-specific extensions) are ignored. */
mf_err_t mf_rtcp_parse_sr(const mf_rtcp_header_t *h, mf_rtcp_sr_t *out);
mf_err_t mf_rtcp_parse_rr(const mf_rtcp_header_t *h, mf_rtcp_rr_t *out);

/* ---------------------------------------------------------------- SDES */

typedef struct {
  uint32_t ssrc;        /* SSRC/CSRC of the chunk holding the item */
  uint8_t type;         /* e.g. MF_RTCP_SDES_CNAME */
  uint8_t len;
  const uint8_t *value; /* not NUL-terminated */
} mf_rtcp_sdes_item_t;

typedef struct {
  const uint8_t *body;
  size_t len;
  size_t off;
  uint32_t chunks_left;
  uint32_t ssrc;
  bool in_chunk;
  bool failed;
} mf_rtcp_sdes_iter_t;

/* MF_ERR_PARSE if h is not SDES. */
mf_err_t mf_rtcp_sdes_iter_init(mf_rtcp_sdes_iter_t *it, const mf_rtcp_header_t *h);
/* MF_OK with the next item, MF_ERR_EMPTY after the last chunk, MF_ERR_PARSE when a chunk
 * or item runs past the packet or a chunk lacks its terminating null item. */
mf_err_t mf_rtcp_sdes_iter_next(mf_rtcp_sdes_iter_t *it, mf_rtcp_sdes_item_t *out);
/* First CNAME item in the packet (and the SSRC of its chunk). MF_ERR_NOT_FOUND if none,
 * MF_ERR_PARSE if the packet is malformed before one is found. */
mf_err_t mf_rtcp_sdes_find_cname(const mf_rtcp_header_t *h, uint32_t *ssrc,
                                 const uint8_t **cname, size_t *len);

/* ---------------------------------------------------------------- BYE */

typedef struct {
  uint8_t count; /* 0..31 */
  uint32_t ssrcs[MF_RTCP_MAX_COUNT];
  const uint8_t *reason; /* NULL if absent; not NUL-terminated */
  uint8_t reason_len;
} mf_rtcp_bye_t;

mf_err_t mf_rtcp_parse_bye(const mf_rtcp_header_t *h, mf_rtcp_bye_t *out);

/* ---------------------------------------------------------------- feedback (RFC 4585) */

/* Generic NACK FCI entry: pid lost, and bit i of blp set means pid+i+1 lost too. */
typedef struct {
  uint16_t pid;
  uint16_t blp;
} mf_rtcp_nack_item_t;

typedef struct {
  uint32_t sender_ssrc;
  uint32_t media_ssrc;
  size_t count;        /* FCI entries, >= 1 */
  const uint8_t *fci;  /* view into the packet; read with mf_rtcp_nack_get */
} mf_rtcp_nack_t;

/* RTPFB FMT 1. MF_ERR_PARSE for another type/FMT or no FCI entry. */
mf_err_t mf_rtcp_parse_nack(const mf_rtcp_header_t *h, mf_rtcp_nack_t *out);
mf_rtcp_nack_item_t mf_rtcp_nack_get(const mf_rtcp_nack_t *n, size_t i);
/* Writes the 1..17 sequence numbers an entry reports lost into out, in order (with
 * wraparound past 65535); returns how many. */
size_t mf_rtcp_nack_expand(mf_rtcp_nack_item_t item, uint16_t out[17]);
/* Packs lost sequence numbers (ascending in wraparound order, duplicates allowed) into as
 * few entries as possible; returns the entries written (stops at max). *used, if not
 * NULL, receives how many input numbers those entries cover. */
size_t mf_rtcp_nack_pack(const uint16_t *seqs, size_t n, mf_rtcp_nack_item_t *items,
                         size_t max, size_t *used);

typedef struct {
  uint32_t sender_ssrc;
  uint32_t media_ssrc;
} mf_rtcp_pli_t;

/* PSFB FMT 1. */
mf_err_t mf_rtcp_parse_pli(const mf_rtcp_header_t *h, mf_rtcp_pli_t *out);

typedef struct {
  uint32_t ssrc;   /* the media sender asked for a key frame */
  uint8_t seq_nr;  /* command sequence number */
} mf_rtcp_fir_entry_t;

typedef struct {
  uint32_t sender_ssrc;
  uint32_t media_ssrc; /* 0 per RFC 5104 */
  size_t count;        /* >= 1 */
  const uint8_t *fci;
} mf_rtcp_fir_t;

/* PSFB FMT 4. */
mf_err_t mf_rtcp_parse_fir(const mf_rtcp_header_t *h, mf_rtcp_fir_t *out);
mf_rtcp_fir_entry_t mf_rtcp_fir_get(const mf_rtcp_fir_t *f, size_t i);

#define MF_RTCP_REMB_MAX_SSRCS 255

typedef struct {
  uint32_t sender_ssrc;
  uint32_t media_ssrc; /* 0 */
  uint64_t bitrate;    /* bits per second: mantissa << exponent */
  uint8_t ssrc_count;
  uint32_t ssrcs[MF_RTCP_REMB_MAX_SSRCS];
} mf_rtcp_remb_t;

/* PSFB FMT 15 with identifier "REMB". MF_ERR_UNSUPPORTED for another AFB message,
 * MF_ERR_PARSE when short, the SSRC list runs past the packet or the bitrate overflows
 * 64 bits. */
mf_err_t mf_rtcp_parse_remb(const mf_rtcp_header_t *h, mf_rtcp_remb_t *out);

/* ---------------------------------------------------------------- transport-wide CC */

#define MF_TWCC_NOT_RECEIVED 0
#define MF_TWCC_SMALL_DELTA 1 /* 1-byte delta, 0..63.75 ms */
#define MF_TWCC_LARGE_DELTA 2 /* 2-byte signed delta */

typedef struct {
  uint16_t seq;    /* transport-wide sequence number */
  uint8_t status;  /* MF_TWCC_* */
  int32_t delta;   /* receive delta in 250 µs ticks; 0 when not received */
} mf_rtcp_twcc_packet_t;

typedef struct {
  uint32_t sender_ssrc;
  uint32_t media_ssrc;
  uint16_t base_seq;
  uint16_t status_count;  /* packets the feedback covers, >= 1 */
  int32_t reference_time; /* signed 24-bit, units of 64 ms */
  uint8_t fb_pkt_count;
  size_t written;         /* entries written to the caller's array: min(status_count, max) */
  size_t received;        /* packets with a receive delta (among all status_count) */
} mf_rtcp_twcc_t;

/* RTPFB FMT 15. Decodes every chunk and delta (the whole packet is always validated) and
 * writes the first `max` packets into pkts (may be NULL when max is 0). MF_ERR_PARSE for a
 * status count of 0, chunks or deltas beyond the packet, or a reserved status symbol (3).
 * The receive time of packet k is reference_time*64 ms + the sum of deltas up to k. */
mf_err_t mf_rtcp_parse_twcc(const mf_rtcp_header_t *h, mf_rtcp_twcc_t *out,
                            mf_rtcp_twcc_packet_t *pkts, size_t max);

/* ---------------------------------------------------------------- writers */

mf_err_t mf_rtcp_write_sr(uint8_t *buf, size_t cap, const mf_rtcp_sr_t *sr, size_t *out_len);
mf_err_t mf_rtcp_write_rr(uint8_t *buf, size_t cap, const mf_rtcp_rr_t *rr, size_t *out_len);
/* One chunk with one CNAME item (len 1..255). */
mf_err_t mf_rtcp_write_sdes_cname(uint8_t *buf, size_t cap, uint32_t ssrc,
                                  const uint8_t *cname, size_t len, size_t *out_len);
mf_err_t mf_rtcp_write_bye(uint8_t *buf, size_t cap, const mf_rtcp_bye_t *bye,
                           size_t *out_len);
/* count 1..(what fits in a 16-bit length). */
mf_err_t mf_rtcp_write_nack(uint8_t *buf, size_t cap, uint32_t sender_ssrc,
                            uint32_t media_ssrc, const mf_rtcp_nack_item_t *items,
                            size_t count, size_t *out_len);
mf_err_t mf_rtcp_write_pli(uint8_t *buf, size_t cap, uint32_t sender_ssrc,
                           uint32_t media_ssrc, size_t *out_len);
mf_err_t mf_rtcp_write_fir(uint8_t *buf, size_t cap, uint32_t sender_ssrc,
                           const mf_rtcp_fir_entry_t *entries, size_t count, size_t *out_len);
/* The bitrate is rounded down to what 18-bit mantissa and 6-bit exponent can carry. */
mf_err_t mf_rtcp_write_remb(uint8_t *buf, size_t cap, const mf_rtcp_remb_t *remb,
                            size_t *out_len);
/* Transport-wide feedback for `count` consecutive sequence numbers starting at
 * hdr->base_seq (pkts[i].seq is ignored; status and delta are used; a small delta must be
 * 0..255, a large one -32768..32767). Uses run-length chunks for runs of 7 or more equal
 * statuses and status vectors otherwise. hdr's status_count/written/received are ignored. */
mf_err_t mf_rtcp_write_twcc(uint8_t *buf, size_t cap, const mf_rtcp_twcc_t *hdr,
                            const mf_rtcp_twcc_packet_t *pkts, size_t count, size_t *out_len);

/* ---------------------------------------------------------------- compound builder */

/* Appends packets into one buffer. The first error sticks: later appends do nothing and
 * return it, so a caller can append several packets and check once. len is the compound
 * length so far (always whole packets). */
typedef struct {
  uint8_t *buf;
  size_t cap;
  size_t len;
  mf_err_t err;
} mf_rtcp_compound_t;

void mf_rtcp_compound_init(mf_rtcp_compound_t *c, uint8_t *buf, size_t cap);
mf_err_t mf_rtcp_compound_add_sr(mf_rtcp_compound_t *c, const mf_rtcp_sr_t *sr);
mf_err_t mf_rtcp_compound_add_rr(mf_rtcp_compound_t *c, const mf_rtcp_rr_t *rr);
mf_err_t mf_rtcp_compound_add_sdes_cname(mf_rtcp_compound_t *c, uint32_t ssrc,
                                         const uint8_t *cname, size_t len);
mf_err_t mf_rtcp_compound_add_bye(mf_rtcp_compound_t *c, const mf_rtcp_bye_t *bye);
mf_err_t mf_rtcp_compound_add_nack(mf_rtcp_compound_t *c, uint32_t sender_ssrc,
                                   uint32_t media_ssrc, const mf_rtcp_nack_item_t *items,
                                   size_t count);
mf_err_t mf_rtcp_compound_add_pli(mf_rtcp_compound_t *c, uint32_t sender_ssrc,
                                  uint32_t media_ssrc);
mf_err_t mf_rtcp_compound_add_fir(mf_rtcp_compound_t *c, uint32_t sender_ssrc,
                                  const mf_rtcp_fir_entry_t *entries, size_t count);
mf_err_t mf_rtcp_compound_add_remb(mf_rtcp_compound_t *c, const mf_rtcp_remb_t *remb);
mf_err_t mf_rtcp_compound_add_twcc(mf_rtcp_compound_t *c, const mf_rtcp_twcc_t *hdr,
                                   const mf_rtcp_twcc_packet_t *pkts, size_t count);

#endif
