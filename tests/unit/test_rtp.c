/* Tests for node/rtp/rtp.h: parsing tables (valid and malformed), extension lookup and
 * rewriting, in-place setters, the header writer and sequence arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/rtp/rtp.h"

/* Chrome-shaped VP8 packet: PT 96, marker, one-byte extensions mid (id 1, "0"),
 * abs-send-time (id 4, 3 bytes), transport-wide cc (id 5, 2 bytes), 3 bytes of padding
 * between/after elements, then a VP8 payload descriptor and the start of a key frame. */
static const uint8_t chrome_vp8[] = {
    0x90, 0xe0, 0x1f, 0x40, 0x00, 0x2b, 0x77, 0x10, 0x1a, 0x2b, 0x3c, 0x4d, /* fixed */
    0xbe, 0xde, 0x00, 0x03,                                                 /* 3 words */
    0x10, '0', 0x42, 0xaa, 0xbb, 0xcc, 0x51, 0x00, 0x2a, 0x00, 0x00, 0x00,  /* elems */
    0x90, 0x80, 0x12, 0x34, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, /* VP8 */
    0x68, 0x01};

/* Opus: PT 111, one-byte ssrc-audio-level (id 10, 1 byte), 4-byte payload. */
static const uint8_t opus_level[] = {
    0x90, 0x6f, 0x00, 0x01, 0x00, 0x00, 0x03, 0xc0, 0xde, 0xad, 0xbe, 0xef,
    0xbe, 0xde, 0x00, 0x01, 0xa0, 0x85, 0x00, 0x00,
    0xfc, 0xff, 0xfe, 0x01};

/* Padding-only probe (what Chrome sends for bandwidth probing, here with the transport-cc
 * extension): P set, no payload, 8 bytes of padding. */
static const uint8_t padding_probe[] = {
    0xb0, 0x60, 0x12, 0x34, 0x00, 0x00, 0x10, 0x00, 0x11, 0x22, 0x33, 0x44,
    0xbe, 0xde, 0x00, 0x01, 0x51, 0x00, 0x07, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08};

/* Payload plus 4 bytes of padding, no extension. */
static const uint8_t payload_and_padding[] = {
    0xa0, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
    0x01, 0x02, 0x03, 0x00, 0x00, 0x00, 0x04};

/* Two CSRCs, no extension, payload "hi". */
static const uint8_t two_csrcs[] = {
    0x82, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
    0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x0b, 'h', 'i'};

/* Two-byte form (appbits 3): id 20 with length 0, padding byte, id 3 with 5 bytes. */
static const uint8_t two_byte_ext[] = {
    0x90, 0x64, 0x00, 0x10, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x07,
    0x10, 0x03, 0x00, 0x03, 0x14, 0x00, 0x00, 0x03, 0x05, 'a', 'b', 'c', 'd', 'e', 0x00, 0x00,
    0x55};

/* Bare 12-byte header. */
static const uint8_t bare[] = {0x80, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
                               0x00, 0x00, 0x00, 0x03};

/* Extension header with zero-length body, then a payload byte. */
static const uint8_t empty_ext[] = {0x90, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
                                    0x00, 0x00, 0x00, 0x03, 0xbe, 0xde, 0x00, 0x00, 0x77};

typedef struct {
  const char *name;
  const uint8_t *data;
  size_t len;
  bool marker, padding, extension;
  uint8_t cc, pt;
  uint16_t seq;
  uint32_t ts, ssrc;
  uint16_t profile;
  size_t ext_len, header_len, payload_len;
  uint8_t padding_len;
} valid_case_t;

#define PKT(a) a, sizeof(a)

static const valid_case_t valid_cases[] = {
    {"chrome_vp8", PKT(chrome_vp8), true, false, true, 0, 96, 0x1f40, 0x002b7710, 0x1a2b3c4d,
     0xbede, 12, 28, 14, 0},
    {"opus_level", PKT(opus_level), false, false, true, 0, 111, 1, 0x3c0, 0xdeadbeef, 0xbede,
     4, 20, 4, 0},
    {"padding_probe", PKT(padding_probe), false, true, true, 0, 96, 0x1234, 0x1000,
     0x11223344, 0xbede, 4, 20, 0, 8},
    {"payload_and_padding", PKT(payload_and_padding), false, true, false, 0, 8, 0xffff,
     0xffffffff, 1, 0, 0, 12, 3, 4},
    {"two_csrcs", PKT(two_csrcs), false, false, false, 2, 0, 0, 0, 5, 0, 0, 20, 2, 0},
    {"two_byte_ext", PKT(two_byte_ext), false, false, true, 0, 100, 16, 32, 7, 0x1003, 12, 28,
     1, 0},
    {"bare", PKT(bare), false, false, false, 0, 0, 1, 2, 3, 0, 0, 12, 0, 0},
    {"empty_ext", PKT(empty_ext), false, false, true, 0, 0, 1, 2, 3, 0xbede, 0, 16, 1, 0},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Parses from an exact-size heap copy so ASan sees any read past the end. */
static mf_err_t parse_copy(const uint8_t *data, size_t len, mf_rtp_packet_t *p, uint8_t **copy) {
  *copy = malloc(len ? len : 1);
  assert_non_null(*copy);
  if (len) memcpy(*copy, data, len);
  return mf_rtp_parse(*copy, len, p);
}

static void test_parse_valid_table(void **state) {
  (void)state;
  for (size_t i = 0; i < N(valid_cases); i++) {
    const valid_case_t *c = &valid_cases[i];
    mf_rtp_packet_t p;
    uint8_t *copy;
    assert_int_equal(parse_copy(c->data, c->len, &p, &copy), MF_OK);
    assert_int_equal(p.version, 2);
    assert_int_equal(p.marker, c->marker);
    assert_int_equal(p.padding, c->padding);
    assert_int_equal(p.extension, c->extension);
    assert_int_equal(p.csrc_count, c->cc);
    assert_int_equal(p.payload_type, c->pt);
    assert_int_equal(p.sequence, c->seq);
    assert_int_equal(p.timestamp, c->ts);
    assert_int_equal(p.ssrc, c->ssrc);
    assert_int_equal(p.ext_profile, c->profile);
    assert_int_equal(p.ext_len, c->ext_len);
    assert_int_equal(p.header_len, c->header_len);
    assert_int_equal(p.payload_len, c->payload_len);
    assert_int_equal(p.padding_len, c->padding_len);
    assert_ptr_equal(p.payload, copy + c->header_len);
    assert_int_equal(p.header_len + p.payload_len + p.padding_len, c->len);
    free(copy);
  }
}

static void test_parse_csrcs(void **state) {
  (void)state;
  mf_rtp_packet_t p;
  assert_int_equal(mf_rtp_parse(two_csrcs, sizeof two_csrcs, &p), MF_OK);
  assert_int_equal(mf_rtp_csrc(&p, 0), 10);
  assert_int_equal(mf_rtp_csrc(&p, 1), 11);
  assert_int_equal(mf_rtp_csrc(&p, 2), 0); /* out of range reads nothing */
  assert_memory_equal(p.payload, "hi", 2);
}

typedef struct {
  const char *name;
  uint8_t data[40];
  size_t len;
} bad_case_t;

static const bad_case_t bad_cases[] = {
    {"empty", {0}, 0},
    {"eleven_bytes", {0x80, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0}, 11},
    {"version_0", {0x00, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}, 12},
    {"version_1", {0x40, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}, 12},
    {"version_3", {0xc0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}, 12},
    {"csrc_beyond_data", {0x82, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 9}, 16},
    {"csrc_15_short", {0x8f, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8}, 20},
    {"ext_header_missing", {0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}, 12},
    {"ext_header_short", {0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0}, 15},
    {"ext_len_overflow",
     {0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0x00, 0x02, 0x10, 0, 0, 0}, 20},
    {"ext_len_ffff",
     {0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0xff, 0xff, 0x10, 0, 0, 0}, 20},
    {"ext_after_csrc_overflow",
     {0x91, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 7, 0xbe, 0xde, 0x00, 0x01}, 20},
    {"padding_no_bytes", {0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}, 12},
    {"padding_zero", {0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 0}, 15},
    {"padding_gt_payload", {0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 4}, 15},
    {"padding_255", {0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xff}, 13},
    {"padding_into_ext",
     {0xb0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0, 1, 0x10, 1, 0, 0, 9, 3}, 22},
};

static void test_parse_malformed_table(void **state) {
  (void)state;
  for (size_t i = 0; i < N(bad_cases); i++) {
    mf_rtp_packet_t p;
    uint8_t *copy;
    mf_err_t err = parse_copy(bad_cases[i].data, bad_cases[i].len, &p, &copy);
    if (err != MF_ERR_PARSE) fail_msg("case %s: expected parse error, got %d", bad_cases[i].name, err);
    free(copy);
  }
  mf_rtp_packet_t p;
  assert_int_equal(mf_rtp_parse(NULL, 12, &p), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_parse(bare, sizeof bare, NULL), MF_ERR_INVALID_ARG);
}

/* Every prefix of every valid packet: shorter than the header must fail; otherwise the
 * result must be self-consistent (a prefix of a packet without padding is itself valid). */
static void test_parse_truncated_everywhere(void **state) {
  (void)state;
  for (size_t i = 0; i < N(valid_cases); i++) {
    const valid_case_t *c = &valid_cases[i];
    for (size_t n = 0; n < c->len; n++) {
      mf_rtp_packet_t p;
      uint8_t *copy;
      mf_err_t err = parse_copy(c->data, n, &p, &copy);
      if (n < c->header_len) {
        if (err != MF_ERR_PARSE) fail_msg("%s cut at %zu: parsed", c->name, n);
      } else if (!c->padding) {
        assert_int_equal(err, MF_OK);
        assert_int_equal(p.payload_len, n - c->header_len);
      } else if (err == MF_OK) {
        assert_int_equal(p.header_len + p.payload_len + p.padding_len, n);
      }
      free(copy);
    }
  }
}

static void test_get_extension_one_byte(void **state) {
  (void)state;
  mf_rtp_packet_t p;
  assert_int_equal(mf_rtp_parse(chrome_vp8, sizeof chrome_vp8, &p), MF_OK);
  assert_true(mf_rtp_ext_is_one_byte(&p));
  assert_false(mf_rtp_ext_is_two_byte(&p));
  const uint8_t *v;
  size_t len;
  assert_true(mf_rtp_get_extension(&p, 1, &v, &len));
  assert_int_equal(len, 1);
  assert_int_equal(v[0], '0');
  assert_true(mf_rtp_get_extension(&p, 4, &v, &len));
  assert_int_equal(len, 3);
  assert_int_equal((v[0] << 16) | (v[1] << 8) | v[2], 0xaabbcc);
  assert_true(mf_rtp_get_extension(&p, 5, &v, &len));
  assert_int_equal(len, 2);
  assert_int_equal((v[0] << 8) | v[1], 42);
  for (unsigned id = 0; id < 256; id++) {
    if (id == 1 || id == 4 || id == 5) continue;
    assert_false(mf_rtp_get_extension(&p, (uint8_t)id, &v, &len));
  }
  /* No extension at all. */
  assert_int_equal(mf_rtp_parse(bare, sizeof bare, &p), MF_OK);
  assert_false(mf_rtp_get_extension(&p, 1, &v, &len));
}

static void test_get_extension_edge_cases(void **state) {
  (void)state;
  mf_rtp_packet_t p;
  const uint8_t *v;
  size_t len;
  /* id 15 ends the walk: id 2 after it is not seen. */
  const uint8_t stop15[] = {0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0, 2,
                            0x10, 0xaa, 0xf0, 0x20, 0xbb, 0, 0, 0};
  assert_int_equal(mf_rtp_parse(stop15, sizeof stop15, &p), MF_OK);
  assert_true(mf_rtp_get_extension(&p, 1, &v, &len));
  assert_false(mf_rtp_get_extension(&p, 2, &v, &len));
  assert_false(mf_rtp_get_extension(&p, 15, &v, &len));
  /* Element overrunning the body: earlier ones found, the broken one not. */
  const uint8_t overrun[] = {0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0, 1,
                             0x10, 0xaa, 0x2f, 0xbb, 0xcc, 0xdd, 0xee};
  assert_int_equal(mf_rtp_parse(overrun, sizeof overrun, &p), MF_OK);
  assert_true(mf_rtp_get_extension(&p, 1, &v, &len));
  assert_false(mf_rtp_get_extension(&p, 2, &v, &len));
  /* Two-byte form: zero-length element, padding byte, then id 3. */
  assert_int_equal(mf_rtp_parse(two_byte_ext, sizeof two_byte_ext, &p), MF_OK);
  assert_true(mf_rtp_ext_is_two_byte(&p));
  assert_true(mf_rtp_get_extension(&p, 20, &v, &len));
  assert_int_equal(len, 0);
  assert_true(mf_rtp_get_extension(&p, 3, &v, &len));
  assert_int_equal(len, 5);
  assert_memory_equal(v, "abcde", 5);
  assert_false(mf_rtp_get_extension(&p, 4, &v, &len));
  /* Two-byte element header cut by the end of the body. */
  const uint8_t two_cut[] = {0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0x10, 0x00, 0, 1,
                             0x00, 0x00, 0x00, 0x07};
  assert_int_equal(mf_rtp_parse(two_cut, sizeof two_cut, &p), MF_OK);
  assert_false(mf_rtp_get_extension(&p, 7, &v, &len));
  /* Unknown profile: nothing is found. */
  const uint8_t other[] = {0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0x12, 0x34, 0, 1,
                           0x10, 0xaa, 0, 0};
  assert_int_equal(mf_rtp_parse(other, sizeof other, &p), MF_OK);
  assert_false(mf_rtp_get_extension(&p, 1, &v, &len));
  uint8_t map[256] = {0};
  uint8_t copy[sizeof other];
  memcpy(copy, other, sizeof other);
  assert_int_equal(mf_rtp_remap_extension_ids(copy, &p, map), MF_OK);
  assert_memory_equal(copy, other, sizeof other);
}

static void test_set_extension(void **state) {
  (void)state;
  uint8_t buf[sizeof chrome_vp8];
  memcpy(buf, chrome_vp8, sizeof buf);
  mf_rtp_packet_t p;
  assert_int_equal(mf_rtp_parse(buf, sizeof buf, &p), MF_OK);
  const uint8_t seq[2] = {0xbe, 0xef};
  assert_true(mf_rtp_set_extension(buf, &p, 5, seq, 2));
  assert_false(mf_rtp_set_extension(buf, &p, 5, seq, 1));  /* wrong length */
  assert_false(mf_rtp_set_extension(buf, &p, 9, seq, 2));  /* absent */
  const uint8_t *v;
  size_t len;
  assert_true(mf_rtp_get_extension(&p, 5, &v, &len));
  assert_memory_equal(v, seq, 2);
  assert_true(mf_rtp_get_extension(&p, 4, &v, &len));
  assert_int_equal(v[0], 0xaa);
}

static void test_remap_extension_ids(void **state) {
  (void)state;
  uint8_t map[256] = {0};
  map[1] = 3;  /* mid -> 3 */
  map[4] = 2;  /* abs-send-time -> 2 */
  map[5] = 0;  /* transport-cc dropped */
  /* Into a copy (as a consumer's output buffer), with the view on the original. */
  mf_rtp_packet_t orig;
  assert_int_equal(mf_rtp_parse(chrome_vp8, sizeof chrome_vp8, &orig), MF_OK);
  uint8_t out[sizeof chrome_vp8];
  memcpy(out, chrome_vp8, sizeof out);
  assert_int_equal(mf_rtp_remap_extension_ids(out, &orig, map), MF_OK);
  mf_rtp_packet_t p;
  assert_int_equal(mf_rtp_parse(out, sizeof out, &p), MF_OK);
  assert_int_equal(p.payload_len, orig.payload_len);
  assert_memory_equal(p.payload, orig.payload, p.payload_len);
  const uint8_t *v;
  size_t len;
  assert_true(mf_rtp_get_extension(&p, 3, &v, &len));
  assert_int_equal(v[0], '0');
  assert_true(mf_rtp_get_extension(&p, 2, &v, &len));
  assert_int_equal(len, 3);
  assert_int_equal(v[2], 0xcc);
  assert_false(mf_rtp_get_extension(&p, 1, &v, &len));
  assert_false(mf_rtp_get_extension(&p, 4, &v, &len));
  assert_false(mf_rtp_get_extension(&p, 5, &v, &len));
  /* In place on the parsed buffer; an id above 14 cannot be one-byte: becomes padding. */
  uint8_t map2[256] = {0};
  map2[1] = 14;
  map2[4] = 200;
  map2[5] = 5;
  uint8_t buf[sizeof chrome_vp8];
  memcpy(buf, chrome_vp8, sizeof buf);
  assert_int_equal(mf_rtp_parse(buf, sizeof buf, &p), MF_OK);
  assert_int_equal(mf_rtp_remap_extension_ids(buf, &p, map2), MF_OK);
  assert_int_equal(mf_rtp_parse(buf, sizeof buf, &p), MF_OK);
  assert_true(mf_rtp_get_extension(&p, 14, &v, &len));
  assert_true(mf_rtp_get_extension(&p, 5, &v, &len));
  assert_int_equal((v[0] << 8) | v[1], 42);
  assert_false(mf_rtp_get_extension(&p, 4, &v, &len));
  /* Two-byte form: ids up to 255 survive. */
  uint8_t map3[256] = {0};
  map3[20] = 200;
  map3[3] = 0;
  uint8_t tb[sizeof two_byte_ext];
  memcpy(tb, two_byte_ext, sizeof tb);
  assert_int_equal(mf_rtp_parse(tb, sizeof tb, &p), MF_OK);
  assert_int_equal(mf_rtp_remap_extension_ids(tb, &p, map3), MF_OK);
  assert_int_equal(mf_rtp_parse(tb, sizeof tb, &p), MF_OK);
  assert_true(mf_rtp_get_extension(&p, 200, &v, &len));
  assert_int_equal(len, 0);
  assert_false(mf_rtp_get_extension(&p, 3, &v, &len));
  assert_int_equal(tb[sizeof tb - 1], 0x55);
  /* An overrunning element is reported. */
  const uint8_t overrun[] = {0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0, 1,
                             0x10, 0xaa, 0x2f, 0xbb};
  uint8_t ob[sizeof overrun];
  memcpy(ob, overrun, sizeof ob);
  assert_int_equal(mf_rtp_parse(ob, sizeof ob, &p), MF_OK);
  map3[1] = 9;
  assert_int_equal(mf_rtp_remap_extension_ids(ob, &p, map3), MF_ERR_PARSE);
  assert_int_equal(ob[16], 0x90); /* the element before it was rewritten */
}

static void test_setters(void **state) {
  (void)state;
  uint8_t buf[sizeof chrome_vp8];
  memcpy(buf, chrome_vp8, sizeof buf);
  mf_rtp_set_ssrc(buf, 0xcafebabe);
  mf_rtp_set_sequence(buf, 65535);
  mf_rtp_set_timestamp(buf, 0x80000001);
  mf_rtp_set_payload_type(buf, 0xff); /* masked to 127 */
  mf_rtp_packet_t p;
  assert_int_equal(mf_rtp_parse(buf, sizeof buf, &p), MF_OK);
  assert_int_equal(p.ssrc, 0xcafebabe);
  assert_int_equal(p.sequence, 65535);
  assert_int_equal(p.timestamp, 0x80000001);
  assert_int_equal(p.payload_type, 127);
  assert_true(p.marker);
  mf_rtp_set_marker(buf, false);
  mf_rtp_set_payload_type(buf, 100);
  assert_int_equal(mf_rtp_parse(buf, sizeof buf, &p), MF_OK);
  assert_false(p.marker);
  assert_int_equal(p.payload_type, 100);
  mf_rtp_set_marker(buf, true);
  assert_int_equal(mf_rtp_parse(buf, sizeof buf, &p), MF_OK);
  assert_true(p.marker);
  assert_int_equal(p.payload_type, 100);
  /* Nothing else moved. */
  assert_memory_equal(buf + 12, chrome_vp8 + 12, sizeof buf - 12);
  assert_int_equal(buf[0], chrome_vp8[0]);
}

static void test_demux(void **state) {
  (void)state;
  static const struct {
    uint8_t b0, b1;
    size_t len;
    bool rtp_or_rtcp, rtcp;
  } cases[] = {
      {0x80, 200, 8, true, true},   /* SR */
      {0x81, 201, 8, true, true},   /* RR */
      {0x8f, 206, 12, true, true},  /* PSFB */
      {0x80, 192, 8, true, true},   /* lowest RTCP type */
      {0x80, 223, 8, true, true},   /* highest */
      {0x80, 191, 12, true, false}, /* marker + PT 63 */
      {0x80, 224, 12, true, false}, /* marker + PT 96 */
      {0x90, 0x60, 12, true, false},
      {0x80, 200, 1, false, false}, /* too short */
      {0x16, 0xfe, 13, false, false}, /* DTLS */
      {0x00, 0x01, 20, false, false}, /* STUN */
      {0xc0, 200, 8, false, false},   /* version 3 */
  };
  for (size_t i = 0; i < N(cases); i++) {
    uint8_t b[2] = {cases[i].b0, cases[i].b1};
    assert_int_equal(mf_rtp_is_rtp_or_rtcp(b, cases[i].len), cases[i].rtp_or_rtcp);
    assert_int_equal(mf_rtp_is_rtcp(b, cases[i].len), cases[i].rtcp);
  }
  assert_false(mf_rtp_is_rtcp(NULL, 8));
}

static void test_write_roundtrip(void **state) {
  (void)state;
  const uint8_t mid[] = {'a', 'b'};
  const uint8_t abs[] = {1, 2, 3};
  const uint8_t big[20] = {9};
  const uint32_t csrcs[] = {0x01020304, 0x05060708, 0x0a0b0c0d};
  const uint8_t payload[] = {0xde, 0xad, 0xbe, 0xef, 0x01};
  struct {
    mf_rtp_ext_elem_t ext[3];
    size_t ext_count;
    uint16_t profile_in, profile_out;
    uint8_t cc;
    uint8_t padding;
  } cases[] = {
      {{{0}}, 0, 0, 0, 0, 0},
      {{{1, 2, mid}, {4, 3, abs}}, 2, 0, 0xbede, 0, 0},
      {{{1, 2, mid}, {4, 3, abs}}, 2, 0, 0xbede, 3, 7},
      {{{1, 2, mid}, {30, 3, abs}}, 2, 0, 0x1000, 1, 0},  /* id > 14 forces two-byte */
      {{{1, 20, big}}, 1, 0, 0x1000, 0, 1},               /* len > 16 forces two-byte */
      {{{1, 0, NULL}, {2, 2, mid}}, 2, 0, 0x1000, 0, 0},  /* len 0 forces two-byte */
      {{{1, 2, mid}}, 1, 0x1000, 0x1000, 0, 0},           /* forced two-byte */
      {{{0}}, 0, 0xbede, 0xbede, 2, 0},                   /* empty extension */
  };
  for (size_t i = 0; i < N(cases); i++) {
    mf_rtp_header_t h = {.marker = i & 1, .payload_type = (uint8_t)(96 + i),
                         .sequence = (uint16_t)(65530 + i), .timestamp = 0xfffffff0u + (uint32_t)i,
                         .ssrc = 0x11111111u * (uint32_t)i, .csrc_count = cases[i].cc,
                         .csrcs = csrcs, .ext = cases[i].ext, .ext_count = cases[i].ext_count,
                         .ext_profile = cases[i].profile_in};
    uint8_t buf[256];
    size_t n;
    assert_int_equal(mf_rtp_write_packet(buf, sizeof buf, &h, payload, sizeof payload,
                                         cases[i].padding, &n), MF_OK);
    mf_rtp_packet_t p;
    assert_int_equal(mf_rtp_parse(buf, n, &p), MF_OK);
    assert_int_equal(p.marker, h.marker);
    assert_int_equal(p.payload_type, h.payload_type);
    assert_int_equal(p.sequence, h.sequence);
    assert_int_equal(p.timestamp, h.timestamp);
    assert_int_equal(p.ssrc, h.ssrc);
    assert_int_equal(p.csrc_count, h.csrc_count);
    for (size_t k = 0; k < h.csrc_count; k++) assert_int_equal(mf_rtp_csrc(&p, k), csrcs[k]);
    assert_int_equal(p.ext_profile, cases[i].profile_out);
    assert_int_equal(p.ext_len % 4, 0);
    for (size_t k = 0; k < h.ext_count; k++) {
      const uint8_t *v;
      size_t len;
      assert_true(mf_rtp_get_extension(&p, h.ext[k].id, &v, &len));
      assert_int_equal(len, h.ext[k].len);
      if (len) assert_memory_equal(v, h.ext[k].value, len);
    }
    assert_int_equal(p.payload_len, sizeof payload);
    assert_memory_equal(p.payload, payload, sizeof payload);
    assert_int_equal(p.padding_len, cases[i].padding);
    /* mf_rtp_write_header writes the same header bytes. */
    uint8_t hb[256];
    size_t hn;
    assert_int_equal(mf_rtp_write_header(hb, sizeof hb, &h, &hn), MF_OK);
    assert_int_equal(hn, p.header_len);
    hb[0] |= (uint8_t)(cases[i].padding ? 0x20 : 0);
    assert_memory_equal(hb, buf, hn);
    /* Every capacity below the size is refused. */
    for (size_t cap = 0; cap < n; cap++) {
      assert_int_equal(mf_rtp_write_packet(buf, cap, &h, payload, sizeof payload,
                                           cases[i].padding, &n), MF_ERR_FULL);
    }
  }
}

static void test_write_padding_only_and_in_place(void **state) {
  (void)state;
  mf_rtp_header_t h = {.payload_type = 96, .sequence = 7, .ssrc = 9};
  uint8_t buf[300];
  size_t n;
  assert_int_equal(mf_rtp_write_packet(buf, sizeof buf, &h, NULL, 0, 255, &n), MF_OK);
  assert_int_equal(n, 12 + 255);
  mf_rtp_packet_t p;
  assert_int_equal(mf_rtp_parse(buf, n, &p), MF_OK);
  assert_true(p.padding);
  assert_int_equal(p.payload_len, 0);
  assert_int_equal(p.padding_len, 255);
  /* Payload already at the start of buf (e.g. RTX building around a copied payload). */
  memcpy(buf, "payload!", 8);
  const uint8_t one[] = {7};
  mf_rtp_ext_elem_t e = {3, 1, one};
  h.ext = &e;
  h.ext_count = 1;
  assert_int_equal(mf_rtp_write_packet(buf, sizeof buf, &h, buf, 8, 0, &n), MF_OK);
  assert_int_equal(mf_rtp_parse(buf, n, &p), MF_OK);
  assert_int_equal(p.payload_len, 8);
  assert_memory_equal(p.payload, "payload!", 8);
}

static void test_write_invalid(void **state) {
  (void)state;
  uint8_t buf[64];
  size_t n;
  const uint8_t v[20] = {0};
  mf_rtp_header_t h = {.payload_type = 128};
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &h, &n), MF_ERR_INVALID_ARG);
  h.payload_type = 0;
  h.csrc_count = 16;
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &h, &n), MF_ERR_INVALID_ARG);
  h.csrc_count = 1; /* csrcs NULL */
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &h, &n), MF_ERR_INVALID_ARG);
  h.csrc_count = 0;
  mf_rtp_ext_elem_t bad_id = {0, 1, v};
  h.ext = &bad_id;
  h.ext_count = 1;
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &h, &n), MF_ERR_INVALID_ARG);
  mf_rtp_ext_elem_t id15 = {15, 1, v};
  h.ext = &id15;
  h.ext_profile = MF_RTP_EXT_PROFILE_ONE_BYTE;
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &h, &n), MF_ERR_INVALID_ARG);
  mf_rtp_ext_elem_t long1 = {2, 17, v};
  h.ext = &long1;
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &h, &n), MF_ERR_INVALID_ARG);
  h.ext_profile = 0x1234; /* not a profile the writer knows */
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &h, &n), MF_ERR_INVALID_ARG);
  h.ext_profile = 0;
  mf_rtp_ext_elem_t null_value = {2, 3, NULL};
  h.ext = &null_value;
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &h, &n), MF_ERR_INVALID_ARG);
}

static void test_seq_helpers(void **state) {
  (void)state;
  static const struct {
    uint16_t a, b;
    int32_t diff;
    bool newer;
  } cases[] = {
      {1, 0, 1, true},          {0, 1, -1, false},        {0, 65535, 1, true},
      {65535, 0, -1, false},    {5, 5, 0, false},         {100, 65500, 136, true},
      {65500, 100, -136, false}, {32767, 0, 32767, true},  {0, 32767, -32767, false},
      {32768, 0, -32768, true}, {0, 32768, -32768, false}, {40000, 7232, -32768, true},
  };
  for (size_t i = 0; i < N(cases); i++) {
    assert_int_equal(mf_rtp_seq_diff(cases[i].a, cases[i].b), cases[i].diff);
    assert_int_equal(mf_rtp_seq_newer(cases[i].a, cases[i].b), cases[i].newer);
  }
  /* Antisymmetry over a sweep. */
  for (uint32_t a = 0; a < 65536; a += 97) {
    for (uint32_t b = 0; b < 65536; b += 89) {
      if (a == b) continue;
      assert_true(mf_rtp_seq_newer((uint16_t)a, (uint16_t)b) !=
                  mf_rtp_seq_newer((uint16_t)b, (uint16_t)a));
    }
  }
  assert_true(mf_rtp_ts_newer(0, 0xffffffffu));
  assert_false(mf_rtp_ts_newer(0xffffffffu, 0));
  assert_true(mf_rtp_ts_newer(0x80000000u, 0));
  assert_false(mf_rtp_ts_newer(7, 7));

  mf_rtp_seq_unwrapper_t u = {0};
  static const uint16_t in[] = {65534, 65535, 0, 1, 65535, 2, 20000, 40000, 60000, 10000};
  static const int64_t want[] = {65534,  65535,  65536,  65537,  65535,
                                 65538,  85536,  105536, 125536, 141072};
  for (size_t i = 0; i < N(in); i++) assert_int_equal(mf_rtp_seq_unwrap(&u, in[i]), want[i]);
  mf_rtp_seq_unwrapper_t back = {0};
  assert_int_equal(mf_rtp_seq_unwrap(&back, 0), 0);
  assert_int_equal(mf_rtp_seq_unwrap(&back, 65535), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_valid_table),
      cmocka_unit_test(test_parse_csrcs),
      cmocka_unit_test(test_parse_malformed_table),
      cmocka_unit_test(test_parse_truncated_everywhere),
      cmocka_unit_test(test_get_extension_one_byte),
      cmocka_unit_test(test_get_extension_edge_cases),
      cmocka_unit_test(test_set_extension),
      cmocka_unit_test(test_remap_extension_ids),
      cmocka_unit_test(test_setters),
      cmocka_unit_test(test_demux),
      cmocka_unit_test(test_write_roundtrip),
      cmocka_unit_test(test_write_padding_only_and_in_place),
      cmocka_unit_test(test_write_invalid),
      cmocka_unit_test(test_seq_helpers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
