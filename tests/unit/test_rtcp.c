/* Tests for node/rtp/rtcp.h: compound iteration (valid and malformed), every parser on
 * hand-made packets, writer -> parser round trips for every type, TWCC decoding and its
 * malformed shapes, NACK helpers and the compound builder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/rtp/rtcp.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Parses the single packet in data (must be exactly one) into *h. */
static void one_packet(const uint8_t *data, size_t len, mf_rtcp_header_t *h) {
  mf_rtcp_iter_t it;
  mf_rtcp_iter_init(&it, data, len);
  assert_int_equal(mf_rtcp_iter_next(&it, h), MF_OK);
  mf_rtcp_header_t extra;
  assert_int_equal(mf_rtcp_iter_next(&it, &extra), MF_ERR_EMPTY);
}

/* Iterates over an exact-size heap copy (ASan catches over-reads); returns the iterator's
 * final status and the number of packets seen. */
static mf_err_t iterate_copy(const uint8_t *data, size_t len, size_t *count) {
  uint8_t *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  if (len) memcpy(copy, data, len);
  mf_rtcp_iter_t it;
  mf_rtcp_header_t h;
  mf_rtcp_iter_init(&it, copy, len);
  mf_err_t err;
  *count = 0;
  while ((err = mf_rtcp_iter_next(&it, &h)) == MF_OK) {
    assert_true(h.len >= 4 && h.body_len <= h.len - 4);
    (*count)++;
  }
  free(copy);
  return err;
}

/* A Chrome-shaped receiver compound: RR with one block, SDES CNAME, REMB. */
static const uint8_t chrome_rr_compound[] = {
    /* RR, RC=1, length 7 */
    0x81, 0xc9, 0x00, 0x07, 0x00, 0x00, 0x00, 0x01,
    0x1a, 0x2b, 0x3c, 0x4d, 0x05, 0xff, 0xff, 0xfe, 0x00, 0x01, 0x1f, 0x40,
    0x00, 0x00, 0x00, 0x10, 0x12, 0x34, 0x56, 0x78, 0x00, 0x01, 0x80, 0x00,
    /* SDES, SC=1, length 6: ssrc, CNAME "abcdefghijklmnop" (16), null, 1 pad */
    0x81, 0xca, 0x00, 0x06, 0x00, 0x00, 0x00, 0x01, 0x01, 0x10,
    'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p',
    0x00, 0x00,
    /* REMB: PSFB FMT 15, length 5, bitrate exp 2 mantissa 0x3d090 = 1,000,000, one SSRC */
    0x8f, 0xce, 0x00, 0x05, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    'R', 'E', 'M', 'B', 0x01, 0x0b, 0xd0, 0x90, 0x1a, 0x2b, 0x3c, 0x4d};

static void test_iter_chrome_compound(void **state) {
  (void)state;
  mf_rtcp_iter_t it;
  mf_rtcp_header_t h;
  mf_rtcp_iter_init(&it, chrome_rr_compound, sizeof chrome_rr_compound);

  assert_int_equal(mf_rtcp_iter_next(&it, &h), MF_OK);
  assert_int_equal(h.type, MF_RTCP_RR);
  assert_int_equal(h.count, 1);
  assert_int_equal(h.len, 32);
  mf_rtcp_rr_t rr;
  assert_int_equal(mf_rtcp_parse_rr(&h, &rr), MF_OK);
  assert_int_equal(rr.ssrc, 1);
  assert_int_equal(rr.report_count, 1);
  assert_int_equal(rr.reports[0].ssrc, 0x1a2b3c4d);
  assert_int_equal(rr.reports[0].fraction_lost, 5);
  assert_int_equal(rr.reports[0].cumulative_lost, -2);
  assert_int_equal(rr.reports[0].highest_seq, 0x11f40);
  assert_int_equal(rr.reports[0].jitter, 16);
  assert_int_equal(rr.reports[0].lsr, 0x12345678);
  assert_int_equal(rr.reports[0].dlsr, 0x18000);

  assert_int_equal(mf_rtcp_iter_next(&it, &h), MF_OK);
  assert_int_equal(h.type, MF_RTCP_SDES);
  uint32_t ssrc;
  const uint8_t *cname;
  size_t len;
  assert_int_equal(mf_rtcp_sdes_find_cname(&h, &ssrc, &cname, &len), MF_OK);
  assert_int_equal(ssrc, 1);
  assert_int_equal(len, 16);
  assert_memory_equal(cname, "abcdefghijklmnop", 16);

  assert_int_equal(mf_rtcp_iter_next(&it, &h), MF_OK);
  assert_int_equal(h.type, MF_RTCP_PSFB);
  assert_int_equal(h.count, MF_RTCP_PSFB_AFB);
  mf_rtcp_remb_t remb;
  assert_int_equal(mf_rtcp_parse_remb(&h, &remb), MF_OK);
  assert_int_equal(remb.bitrate, 1000000);
  assert_int_equal(remb.ssrc_count, 1);
  assert_int_equal(remb.ssrcs[0], 0x1a2b3c4d);
  /* Wrong parsers refuse. */
  assert_int_equal(mf_rtcp_parse_pli(&h, &(mf_rtcp_pli_t){0}), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_sr(&h, &(mf_rtcp_sr_t){0}), MF_ERR_PARSE);

  assert_int_equal(mf_rtcp_iter_next(&it, &h), MF_ERR_EMPTY);
  assert_int_equal(mf_rtcp_validate(chrome_rr_compound, sizeof chrome_rr_compound), MF_OK);
}

typedef struct {
  const char *name;
  uint8_t data[40];
  size_t len;
  size_t good_before; /* packets yielded before the error */
} bad_iter_t;

static const bad_iter_t bad_iters[] = {
    {"three_bytes", {0x80, 0xc9, 0x00}, 3, 0},
    {"version_0", {0x00, 0xc9, 0x00, 0x01, 0, 0, 0, 1}, 8, 0},
    {"version_1", {0x40, 0xc9, 0x00, 0x01, 0, 0, 0, 1}, 8, 0},
    {"version_3", {0xc0, 0xc9, 0x00, 0x01, 0, 0, 0, 1}, 8, 0},
    {"length_too_big", {0x80, 0xc9, 0x00, 0x02, 0, 0, 0, 1}, 8, 0},
    {"length_ffff", {0x80, 0xc9, 0xff, 0xff, 0, 0, 0, 1}, 8, 0},
    {"misaligned_tail", {0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 1, 0x80, 0xc9}, 10, 1},
    {"misaligned_tail_3", {0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 1, 0x80, 0xc9, 0x00}, 11, 1},
    {"second_too_long", {0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 1, 0x80, 0xc9, 0x00, 0x05, 0, 0, 0, 2},
     16, 1},
    {"padding_zero", {0xa0, 0xc9, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 0}, 12, 0},
    {"padding_beyond_body", {0xa0, 0xc9, 0x00, 0x01, 0, 0, 0, 9}, 8, 0},
    {"padding_in_bare_header", {0xa0, 0xc9, 0x00, 0x00}, 4, 0},
    {"second_bad_version", {0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 1, 0x00, 0xc9, 0x00, 0x01, 0, 0, 0, 1},
     16, 1},
};

static void test_iter_malformed_table(void **state) {
  (void)state;
  for (size_t i = 0; i < N(bad_iters); i++) {
    size_t count;
    mf_err_t err = iterate_copy(bad_iters[i].data, bad_iters[i].len, &count);
    if (err != MF_ERR_PARSE || count != bad_iters[i].good_before)
      fail_msg("case %s: err %d after %zu packets", bad_iters[i].name, err, count);
    assert_int_equal(mf_rtcp_validate(bad_iters[i].data, bad_iters[i].len), MF_ERR_PARSE);
  }
  /* The error sticks. */
  mf_rtcp_iter_t it;
  mf_rtcp_header_t h;
  mf_rtcp_iter_init(&it, bad_iters[0].data, bad_iters[0].len);
  assert_int_equal(mf_rtcp_iter_next(&it, &h), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_iter_next(&it, &h), MF_ERR_PARSE);
  /* Empty input: nothing to iterate, and not a valid compound. */
  size_t count;
  assert_int_equal(iterate_copy(NULL, 0, &count), MF_ERR_EMPTY);
  assert_int_equal(mf_rtcp_validate(chrome_rr_compound, 0), MF_ERR_PARSE);
}

static void test_iter_zero_length_and_padding(void **state) {
  (void)state;
  /* A bare header (length field 0) is a valid packet for the iterator, but an RR needs
   * its sender SSRC. */
  const uint8_t zero_len[] = {0x80, 0xc9, 0x00, 0x00};
  mf_rtcp_header_t h;
  one_packet(zero_len, sizeof zero_len, &h);
  assert_int_equal(h.len, 4);
  assert_int_equal(h.body_len, 0);
  mf_rtcp_rr_t rr;
  assert_int_equal(mf_rtcp_parse_rr(&h, &rr), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_bye(&h, &(mf_rtcp_bye_t){0}), MF_ERR_PARSE); /* wrong type */
  /* RR with 4 bytes of padding: body excludes it. */
  const uint8_t padded[] = {0xa0, 0xc9, 0x00, 0x02, 0, 0, 0, 7, 0, 0, 0, 4};
  one_packet(padded, sizeof padded, &h);
  assert_true(h.padding);
  assert_int_equal(h.body_len, 4);
  assert_int_equal(mf_rtcp_parse_rr(&h, &rr), MF_OK);
  assert_int_equal(rr.ssrc, 7);
  /* Padding that eats the SSRC leaves an RR too short. */
  const uint8_t eaten[] = {0xa0, 0xc9, 0x00, 0x01, 0, 0, 0, 4};
  one_packet(eaten, sizeof eaten, &h);
  assert_int_equal(h.body_len, 0);
  assert_int_equal(mf_rtcp_parse_rr(&h, &rr), MF_ERR_PARSE);
}

/* Every prefix of a valid compound: whole packets come out, then PARSE (or EMPTY exactly
 * at a packet boundary). */
static void test_iter_truncated_everywhere(void **state) {
  (void)state;
  size_t bounds[] = {0, 32, 60, 84};
  for (size_t n = 0; n <= sizeof chrome_rr_compound; n++) {
    size_t count;
    mf_err_t err = iterate_copy(chrome_rr_compound, n, &count);
    bool at_boundary = false;
    size_t expect = 0;
    for (size_t b = 0; b < N(bounds); b++) {
      if (n == bounds[b]) at_boundary = true;
      if (n >= bounds[b] && b > 0) expect = b;
    }
    assert_int_equal(err, at_boundary ? MF_ERR_EMPTY : MF_ERR_PARSE);
    assert_int_equal(count, expect);
  }
}

static void test_parse_malformed_types(void **state) {
  (void)state;
  mf_rtcp_header_t h;
  /* SR claiming 2 report blocks with only 1. */
  uint8_t sr[4 + 24 + 24] = {0x82, 0xc8, 0x00, 12};
  one_packet(sr, sizeof sr, &h);
  assert_int_equal(mf_rtcp_parse_sr(&h, &(mf_rtcp_sr_t){0}), MF_ERR_PARSE);
  sr[0] = 0x81;
  one_packet(sr, sizeof sr, &h);
  assert_int_equal(mf_rtcp_parse_sr(&h, &(mf_rtcp_sr_t){0}), MF_OK);
  /* RR claiming 31 blocks. */
  uint8_t rr[8] = {0x9f, 0xc9, 0x00, 0x01};
  one_packet(rr, sizeof rr, &h);
  assert_int_equal(mf_rtcp_parse_rr(&h, &(mf_rtcp_rr_t){0}), MF_ERR_PARSE);
  /* BYE: 2 SSRCs announced, 1 present; reason length beyond the packet. */
  const uint8_t bye1[] = {0x82, 0xcb, 0x00, 0x01, 0, 0, 0, 1};
  one_packet(bye1, sizeof bye1, &h);
  assert_int_equal(mf_rtcp_parse_bye(&h, &(mf_rtcp_bye_t){0}), MF_ERR_PARSE);
  const uint8_t bye2[] = {0x81, 0xcb, 0x00, 0x02, 0, 0, 0, 1, 0x04, 'a', 'b', 'c'};
  one_packet(bye2, sizeof bye2, &h);
  assert_int_equal(mf_rtcp_parse_bye(&h, &(mf_rtcp_bye_t){0}), MF_ERR_PARSE);
  /* NACK without FCI, PLI without media SSRC, FIR without entry. */
  const uint8_t nack[] = {0x81, 0xcd, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2};
  one_packet(nack, sizeof nack, &h);
  assert_int_equal(mf_rtcp_parse_nack(&h, &(mf_rtcp_nack_t){0}), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_twcc(&h, &(mf_rtcp_twcc_t){0}, NULL, 0), MF_ERR_PARSE);
  const uint8_t pli[] = {0x81, 0xce, 0x00, 0x01, 0, 0, 0, 1};
  one_packet(pli, sizeof pli, &h);
  assert_int_equal(mf_rtcp_parse_pli(&h, &(mf_rtcp_pli_t){0}), MF_ERR_PARSE);
  const uint8_t fir[] = {0x84, 0xce, 0x00, 0x03, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5};
  one_packet(fir, sizeof fir, &h);
  assert_int_equal(mf_rtcp_parse_fir(&h, &(mf_rtcp_fir_t){0}), MF_ERR_PARSE);
  /* REMB: SSRC list beyond the packet; exponent overflow; another AFB application. */
  uint8_t remb[] = {0x8f, 0xce, 0x00, 0x05, 0, 0, 0, 1, 0, 0, 0, 0,
                    'R', 'E', 'M', 'B', 0x02, 0x0b, 0xd0, 0x90, 0, 0, 0, 1};
  one_packet(remb, sizeof remb, &h);
  assert_int_equal(mf_rtcp_parse_remb(&h, &(mf_rtcp_remb_t){0}), MF_ERR_PARSE);
  remb[16] = 1;
  remb[17] = 0xff; /* exp 63, mantissa 0x3d090 */
  one_packet(remb, sizeof remb, &h);
  assert_int_equal(mf_rtcp_parse_remb(&h, &(mf_rtcp_remb_t){0}), MF_ERR_PARSE);
  remb[17] = 0x0b;
  remb[12] = 'X';
  one_packet(remb, sizeof remb, &h);
  assert_int_equal(mf_rtcp_parse_remb(&h, &(mf_rtcp_remb_t){0}), MF_ERR_UNSUPPORTED);
  /* REMB cut before its bitrate field. */
  const uint8_t remb_short[] = {0x8f, 0xce, 0x00, 0x03, 0, 0, 0, 1, 0, 0, 0, 0,
                                'R', 'E', 'M', 'B'};
  one_packet(remb_short, sizeof remb_short, &h);
  assert_int_equal(mf_rtcp_parse_remb(&h, &(mf_rtcp_remb_t){0}), MF_ERR_PARSE);
}

static void test_sdes_iter(void **state) {
  (void)state;
  /* Two chunks: ssrc 1 with CNAME "ab" and NAME "x"; ssrc 2 with no items. */
  const uint8_t sdes[] = {0x82, 0xca, 0x00, 0x05, 0, 0, 0, 1, 0x01, 0x02, 'a', 'b',
                          0x02, 0x01, 'x', 0x00, 0, 0, 0, 2, 0x00, 0x00, 0x00, 0x00};
  mf_rtcp_header_t h;
  one_packet(sdes, sizeof sdes, &h);
  mf_rtcp_sdes_iter_t it;
  mf_rtcp_sdes_item_t item;
  assert_int_equal(mf_rtcp_sdes_iter_init(&it, &h), MF_OK);
  assert_int_equal(mf_rtcp_sdes_iter_next(&it, &item), MF_OK);
  assert_int_equal(item.ssrc, 1);
  assert_int_equal(item.type, MF_RTCP_SDES_CNAME);
  assert_int_equal(item.len, 2);
  assert_memory_equal(item.value, "ab", 2);
  assert_int_equal(mf_rtcp_sdes_iter_next(&it, &item), MF_OK);
  assert_int_equal(item.type, 2);
  assert_int_equal(mf_rtcp_sdes_iter_next(&it, &item), MF_ERR_EMPTY);

  /* Malformed: item length past the end; chunk without null item; SC larger than chunks. */
  const uint8_t bad_item[] = {0x81, 0xca, 0x00, 0x02, 0, 0, 0, 1, 0x01, 0x09, 'a', 'b'};
  const uint8_t no_null[] = {0x81, 0xca, 0x00, 0x02, 0, 0, 0, 1, 0x01, 0x02, 'a', 'b'};
  const uint8_t sc_big[] = {0x83, 0xca, 0x00, 0x02, 0, 0, 0, 1, 0x00, 0x00, 0x00, 0x00};
  const uint8_t *bad[] = {bad_item, no_null, sc_big};
  for (size_t i = 0; i < N(bad); i++) {
    one_packet(bad[i], 12, &h);
    assert_int_equal(mf_rtcp_sdes_iter_init(&it, &h), MF_OK);
    mf_err_t err;
    while ((err = mf_rtcp_sdes_iter_next(&it, &item)) == MF_OK) {
    }
    assert_int_equal(err, MF_ERR_PARSE);
    assert_int_equal(mf_rtcp_sdes_iter_next(&it, &item), MF_ERR_PARSE);
  }
  /* SDES without CNAME. */
  const uint8_t no_cname[] = {0x81, 0xca, 0x00, 0x02, 0, 0, 0, 1, 0x02, 0x01, 'x', 0x00};
  one_packet(no_cname, sizeof no_cname, &h);
  assert_int_equal(mf_rtcp_sdes_find_cname(&h, NULL, NULL, NULL), MF_ERR_NOT_FOUND);
  one_packet(no_null, sizeof no_null, &h);
  /* The CNAME is found before the missing terminator is noticed. */
  assert_int_equal(mf_rtcp_sdes_find_cname(&h, NULL, NULL, NULL), MF_OK);
  one_packet(chrome_rr_compound, 32, &h);
  assert_int_equal(mf_rtcp_sdes_iter_init(&it, &h), MF_ERR_PARSE);
}

/* Field by field: the structs have padding bytes memcmp would trip on. */
static void assert_blocks_equal(const mf_rtcp_report_block_t *a, const mf_rtcp_report_block_t *b,
                                size_t n) {
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(a[i].ssrc, b[i].ssrc);
    assert_int_equal(a[i].fraction_lost, b[i].fraction_lost);
    assert_int_equal(a[i].cumulative_lost, b[i].cumulative_lost);
    assert_int_equal(a[i].highest_seq, b[i].highest_seq);
    assert_int_equal(a[i].jitter, b[i].jitter);
    assert_int_equal(a[i].lsr, b[i].lsr);
    assert_int_equal(a[i].dlsr, b[i].dlsr);
  }
}

static void test_roundtrip_sr_rr(void **state) {
  (void)state;
  static const uint8_t counts[] = {0, 1, 2, 31};
  for (size_t c = 0; c < N(counts); c++) {
    mf_rtcp_sr_t sr = {.ssrc = 0xdeadbeef, .ntp = 0xe1234567890abcdeULL, .rtp_ts = 90000,
                       .packet_count = 1000, .octet_count = 1200000,
                       .report_count = counts[c]};
    for (size_t i = 0; i < counts[c]; i++) {
      sr.reports[i] = (mf_rtcp_report_block_t){(uint32_t)(i + 1), (uint8_t)(i * 7),
                                               (int32_t)i * 1000 - 15000, 0x10000u + (uint32_t)i,
                                               (uint32_t)i * 3, 0xabcd0000u + (uint32_t)i,
                                               (uint32_t)i << 8};
    }
    uint8_t buf[1024];
    size_t n;
    assert_int_equal(mf_rtcp_write_sr(buf, sizeof buf, &sr, &n), MF_OK);
    assert_int_equal(n, 28 + 24u * counts[c]);
    mf_rtcp_header_t h;
    one_packet(buf, n, &h);
    mf_rtcp_sr_t back;
    memset(&back, 0xee, sizeof back);
    assert_int_equal(mf_rtcp_parse_sr(&h, &back), MF_OK);
    assert_int_equal(back.ssrc, sr.ssrc);
    assert_true(back.ntp == sr.ntp);
    assert_int_equal(back.rtp_ts, sr.rtp_ts);
    assert_int_equal(back.packet_count, sr.packet_count);
    assert_int_equal(back.octet_count, sr.octet_count);
    assert_int_equal(back.report_count, sr.report_count);
    assert_blocks_equal(back.reports, sr.reports, counts[c]);
    for (size_t cap = 0; cap < n; cap++)
      assert_int_equal(mf_rtcp_write_sr(buf, cap, &sr, &n), MF_ERR_FULL);

    mf_rtcp_rr_t rr = {.ssrc = 77, .report_count = counts[c]};
    memcpy(rr.reports, sr.reports, sizeof rr.reports);
    assert_int_equal(mf_rtcp_write_rr(buf, sizeof buf, &rr, &n), MF_OK);
    one_packet(buf, n, &h);
    mf_rtcp_rr_t rback;
    assert_int_equal(mf_rtcp_parse_rr(&h, &rback), MF_OK);
    assert_int_equal(rback.ssrc, 77);
    assert_int_equal(rback.report_count, counts[c]);
    assert_blocks_equal(rback.reports, rr.reports, counts[c]);
    for (size_t cap = 0; cap < n; cap++)
      assert_int_equal(mf_rtcp_write_rr(buf, cap, &rr, &n), MF_ERR_FULL);
  }
  /* cumulative_lost is clamped to 24 bits. */
  mf_rtcp_rr_t rr = {.ssrc = 1, .report_count = 2};
  rr.reports[0].cumulative_lost = 0x7fffffff;
  rr.reports[1].cumulative_lost = -0x7fffffff;
  uint8_t buf[128];
  size_t n;
  assert_int_equal(mf_rtcp_write_rr(buf, sizeof buf, &rr, &n), MF_OK);
  mf_rtcp_header_t h;
  one_packet(buf, n, &h);
  assert_int_equal(mf_rtcp_parse_rr(&h, &rr), MF_OK);
  assert_int_equal(rr.reports[0].cumulative_lost, 0x7fffff);
  assert_int_equal(rr.reports[1].cumulative_lost, -0x800000);
  rr.report_count = 32;
  assert_int_equal(mf_rtcp_write_rr(buf, sizeof buf, &rr, &n), MF_ERR_INVALID_ARG);
}

static void test_roundtrip_sdes_bye(void **state) {
  (void)state;
  uint8_t name[255];
  for (size_t i = 0; i < sizeof name; i++) name[i] = (uint8_t)('a' + i % 26);
  for (size_t len = 1; len <= 255; len++) {
    uint8_t buf[300];
    size_t n;
    assert_int_equal(mf_rtcp_write_sdes_cname(buf, sizeof buf, 0x1234, name, len, &n), MF_OK);
    assert_int_equal(n % 4, 0);
    mf_rtcp_header_t h;
    one_packet(buf, n, &h);
    uint32_t ssrc;
    const uint8_t *cname;
    size_t clen;
    assert_int_equal(mf_rtcp_sdes_find_cname(&h, &ssrc, &cname, &clen), MF_OK);
    assert_int_equal(ssrc, 0x1234);
    assert_int_equal(clen, len);
    assert_memory_equal(cname, name, len);
    mf_rtcp_sdes_iter_t it;
    mf_rtcp_sdes_item_t item;
    assert_int_equal(mf_rtcp_sdes_iter_init(&it, &h), MF_OK);
    assert_int_equal(mf_rtcp_sdes_iter_next(&it, &item), MF_OK);
    assert_int_equal(mf_rtcp_sdes_iter_next(&it, &item), MF_ERR_EMPTY);
    assert_int_equal(mf_rtcp_write_sdes_cname(buf, n - 1, 1, name, len, &n), MF_ERR_FULL);
  }
  uint8_t buf[300];
  size_t n;
  assert_int_equal(mf_rtcp_write_sdes_cname(buf, sizeof buf, 1, name, 0, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_sdes_cname(buf, sizeof buf, 1, name, 256, &n),
                   MF_ERR_INVALID_ARG);

  static const char *reasons[] = {NULL, "", "x", "bye", "four", "camera switched off"};
  for (size_t r = 0; r < N(reasons); r++) {
    mf_rtcp_bye_t bye = {.count = (uint8_t)(r * 5)};
    for (size_t i = 0; i < bye.count; i++) bye.ssrcs[i] = 0x1000u + (uint32_t)i;
    bye.reason = (const uint8_t *)reasons[r];
    bye.reason_len = reasons[r] ? (uint8_t)strlen(reasons[r]) : 0;
    assert_int_equal(mf_rtcp_write_bye(buf, sizeof buf, &bye, &n), MF_OK);
    mf_rtcp_header_t h;
    one_packet(buf, n, &h);
    mf_rtcp_bye_t back;
    assert_int_equal(mf_rtcp_parse_bye(&h, &back), MF_OK);
    assert_int_equal(back.count, bye.count);
    assert_memory_equal(back.ssrcs, bye.ssrcs, 4u * bye.count);
    assert_int_equal(back.reason != NULL, reasons[r] != NULL);
    assert_int_equal(back.reason_len, bye.reason_len);
    if (bye.reason_len) assert_memory_equal(back.reason, bye.reason, bye.reason_len);
    for (size_t cap = 0; cap < n; cap++)
      assert_int_equal(mf_rtcp_write_bye(buf, cap, &bye, &n), MF_ERR_FULL);
  }
}

static void test_roundtrip_feedback(void **state) {
  (void)state;
  uint8_t buf[2048];
  size_t n;
  mf_rtcp_header_t h;
  /* NACK */
  mf_rtcp_nack_item_t items[300];
  for (size_t i = 0; i < N(items); i++)
    items[i] = (mf_rtcp_nack_item_t){(uint16_t)(65000 + 17 * i), (uint16_t)(i * 131)};
  static const size_t nack_counts[] = {1, 2, 300};
  for (size_t c = 0; c < N(nack_counts); c++) {
    assert_int_equal(mf_rtcp_write_nack(buf, sizeof buf, 1, 2, items, nack_counts[c], &n), MF_OK);
    one_packet(buf, n, &h);
    mf_rtcp_nack_t nack;
    assert_int_equal(mf_rtcp_parse_nack(&h, &nack), MF_OK);
    assert_int_equal(nack.sender_ssrc, 1);
    assert_int_equal(nack.media_ssrc, 2);
    assert_int_equal(nack.count, nack_counts[c]);
    for (size_t i = 0; i < nack.count; i++) {
      mf_rtcp_nack_item_t it = mf_rtcp_nack_get(&nack, i);
      assert_int_equal(it.pid, items[i].pid);
      assert_int_equal(it.blp, items[i].blp);
    }
    assert_int_equal(mf_rtcp_nack_get(&nack, nack.count).pid, 0);
    assert_int_equal(mf_rtcp_write_nack(buf, n - 1, 1, 2, items, nack_counts[c], &n), MF_ERR_FULL);
  }
  assert_int_equal(mf_rtcp_write_nack(buf, sizeof buf, 1, 2, items, 0, &n), MF_ERR_INVALID_ARG);
  /* PLI */
  assert_int_equal(mf_rtcp_write_pli(buf, sizeof buf, 0x11, 0x22, &n), MF_OK);
  assert_int_equal(n, 12);
  one_packet(buf, n, &h);
  mf_rtcp_pli_t pli;
  assert_int_equal(mf_rtcp_parse_pli(&h, &pli), MF_OK);
  assert_int_equal(pli.sender_ssrc, 0x11);
  assert_int_equal(pli.media_ssrc, 0x22);
  assert_int_equal(mf_rtcp_parse_fir(&h, &(mf_rtcp_fir_t){0}), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_write_pli(buf, 11, 1, 2, &n), MF_ERR_FULL);
  /* FIR */
  mf_rtcp_fir_entry_t entries[3] = {{0xa, 1}, {0xb, 255}, {0xc, 0}};
  for (size_t c = 1; c <= 3; c++) {
    assert_int_equal(mf_rtcp_write_fir(buf, sizeof buf, 0x99, entries, c, &n), MF_OK);
    one_packet(buf, n, &h);
    mf_rtcp_fir_t fir;
    assert_int_equal(mf_rtcp_parse_fir(&h, &fir), MF_OK);
    assert_int_equal(fir.sender_ssrc, 0x99);
    assert_int_equal(fir.media_ssrc, 0);
    assert_int_equal(fir.count, c);
    for (size_t i = 0; i < c; i++) {
      mf_rtcp_fir_entry_t e = mf_rtcp_fir_get(&fir, i);
      assert_int_equal(e.ssrc, entries[i].ssrc);
      assert_int_equal(e.seq_nr, entries[i].seq_nr);
    }
    assert_int_equal(mf_rtcp_parse_pli(&h, &pli), MF_ERR_PARSE);
    assert_int_equal(mf_rtcp_write_fir(buf, n - 1, 0x99, entries, c, &n), MF_ERR_FULL);
  }
  /* REMB: representable bitrates survive exactly; others round down by < 2^-17. */
  static const uint64_t rates[] = {0, 1, 30000, 262143, 262144, 1000000, 2500000,
                                   123456789, 1000000000000ULL, 0x3ffffULL << 46};
  for (size_t r = 0; r < N(rates); r++) {
    mf_rtcp_remb_t remb = {.sender_ssrc = 5, .bitrate = rates[r], .ssrc_count = (uint8_t)r};
    for (size_t i = 0; i < r; i++) remb.ssrcs[i] = 100u + (uint32_t)i;
    assert_int_equal(mf_rtcp_write_remb(buf, sizeof buf, &remb, &n), MF_OK);
    one_packet(buf, n, &h);
    mf_rtcp_remb_t back;
    assert_int_equal(mf_rtcp_parse_remb(&h, &back), MF_OK);
    assert_int_equal(back.sender_ssrc, 5);
    assert_int_equal(back.ssrc_count, r);
    assert_memory_equal(back.ssrcs, remb.ssrcs, 4 * r);
    assert_true(back.bitrate <= rates[r]);
    assert_true(rates[r] - back.bitrate <= rates[r] >> 17);
    if (rates[r] <= 0x3ffff) assert_true(back.bitrate == rates[r]);
    assert_int_equal(mf_rtcp_write_remb(buf, n - 1, &remb, &n), MF_ERR_FULL);
  }
}

static void test_nack_helpers(void **state) {
  (void)state;
  uint16_t out[17];
  size_t n = mf_rtcp_nack_expand((mf_rtcp_nack_item_t){65530, 0x8001}, out);
  assert_int_equal(n, 3);
  assert_int_equal(out[0], 65530);
  assert_int_equal(out[1], 65531);
  assert_int_equal(out[2], 10); /* 65530 + 16 wraps */
  assert_int_equal(mf_rtcp_nack_expand((mf_rtcp_nack_item_t){7, 0}, out), 1);
  assert_int_equal(mf_rtcp_nack_expand((mf_rtcp_nack_item_t){0, 0xffff}, out), 17);
  for (uint16_t i = 0; i < 17; i++) assert_int_equal(out[i], i);

  const uint16_t seqs[] = {1, 2, 3, 17, 18, 40, 40, 65535, 0, 5};
  mf_rtcp_nack_item_t items[8];
  size_t used;
  n = mf_rtcp_nack_pack(seqs, N(seqs), items, N(items), &used);
  assert_int_equal(used, N(seqs));
  assert_int_equal(n, 4);
  assert_int_equal(items[0].pid, 1);
  assert_int_equal(items[0].blp, 0x8003); /* 2, 3, 17 */
  assert_int_equal(items[1].pid, 18);
  assert_int_equal(items[1].blp, 0);
  assert_int_equal(items[2].pid, 40); /* duplicate folded */
  assert_int_equal(items[2].blp, 0);
  assert_int_equal(items[3].pid, 65535);
  assert_int_equal(items[3].blp, 0x0021); /* 0, 5 across the wrap */
  n = mf_rtcp_nack_pack(seqs, N(seqs), items, 2, &used);
  assert_int_equal(n, 2);
  assert_int_equal(used, 5);
  /* pack then expand gives the input back. */
  uint16_t lost[200];
  for (size_t i = 0; i < N(lost); i++) lost[i] = (uint16_t)(65400 + i * 3 + (i % 5 == 0));
  mf_rtcp_nack_item_t many[200];
  n = mf_rtcp_nack_pack(lost, N(lost), many, N(many), &used);
  assert_int_equal(used, N(lost));
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    size_t m = mf_rtcp_nack_expand(many[i], out);
    for (size_t j = 0; j < m; j++) assert_int_equal(out[j], lost[k++]);
  }
  assert_int_equal(k, N(lost));
}

/* Hand-made TWCC from the draft's encoding rules (not from our writer):
 * base 100, 20 packets, reference time -2 (signed), fb count 9;
 * chunk 1: run-length, symbol 1 (small delta), run 5     = 0x2005
 * chunk 2: 1-bit vector 1,0,1,0,0,0,0,0,0,0,0,0,0,1      = 0xa801
 * chunk 3: 2-bit vector 2 (large), 0 (not received)      = 0xe000 (covers the last one) */
static const uint8_t twcc_hand[] = {
    0x8f, 0xcd, 0x00, 0x09, 0, 0, 0, 1, 0, 0, 0, 2,
    0x00, 100, 0x00, 21, 0xff, 0xff, 0xfe, 9,
    0x20, 0x05, 0xa8, 0x01, 0xe0, 0x00,
    4, 4, 4, 4, 8, 1, 2, 3, 0xff, 0x38, 0x00, 0x00, 0x00, 0x00};

static void test_twcc_hand_made(void **state) {
  (void)state;
  mf_rtcp_header_t h;
  one_packet(twcc_hand, sizeof twcc_hand, &h);
  mf_rtcp_twcc_t fb;
  mf_rtcp_twcc_packet_t pkts[32];
  assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, pkts, N(pkts)), MF_OK);
  assert_int_equal(fb.sender_ssrc, 1);
  assert_int_equal(fb.media_ssrc, 2);
  assert_int_equal(fb.base_seq, 100);
  assert_int_equal(fb.status_count, 21);
  assert_int_equal(fb.reference_time, -2);
  assert_int_equal(fb.fb_pkt_count, 9);
  assert_int_equal(fb.written, 21);
  assert_int_equal(fb.received, 9);
  static const uint8_t want_status[21] = {1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0,
                                          0, 0, 0, 0, 0, 1, 2, 0};
  static const int32_t want_delta[21] = {4, 4, 4, 4, 8, 1, 0, 2, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 3, -200, 0};
  for (size_t i = 0; i < 21; i++) {
    assert_int_equal(pkts[i].seq, 100 + i);
    assert_int_equal(pkts[i].status, want_status[i]);
    assert_int_equal(pkts[i].delta, want_delta[i]);
  }
  /* A smaller array gets the first entries; the whole packet is still validated. */
  mf_rtcp_twcc_packet_t few[3];
  assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, few, N(few)), MF_OK);
  assert_int_equal(fb.written, 3);
  assert_int_equal(fb.received, 9);
  assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, NULL, 0), MF_OK);
  assert_int_equal(fb.written, 0);
  assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, NULL, 1), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_parse_nack(&h, &(mf_rtcp_nack_t){0}), MF_ERR_PARSE);

  /* Every shorter body fails (the deltas end 4 bytes before the packet does). */
  size_t needed = 8 + 8 + 6 + 10;
  for (size_t b = 0; b < h.body_len; b++) {
    mf_rtcp_header_t cut = h;
    cut.body_len = b;
    mf_err_t err = mf_rtcp_parse_twcc(&cut, &fb, pkts, N(pkts));
    assert_int_equal(err, b >= needed ? MF_OK : MF_ERR_PARSE);
  }
}

static void test_twcc_malformed(void **state) {
  (void)state;
  mf_rtcp_header_t h;
  mf_rtcp_twcc_t fb;
  mf_rtcp_twcc_packet_t pkts[64];
  uint8_t p[sizeof twcc_hand];
  /* status count 0 */
  memcpy(p, twcc_hand, sizeof p);
  p[14] = 0;
  p[15] = 0;
  one_packet(p, sizeof p, &h);
  assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, pkts, N(pkts)), MF_ERR_PARSE);
  /* status count larger than the chunks can describe within the packet */
  memcpy(p, twcc_hand, sizeof p);
  p[14] = 0xff;
  p[15] = 0xff;
  one_packet(p, sizeof p, &h);
  assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, pkts, N(pkts)), MF_ERR_PARSE);
  /* run of 8191 small deltas: the deltas cannot fit */
  memcpy(p, twcc_hand, sizeof p);
  p[14] = 0x1f;
  p[15] = 0xff;
  p[20] = 0x3f;
  p[21] = 0xff;
  one_packet(p, sizeof p, &h);
  assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, pkts, N(pkts)), MF_ERR_PARSE);
  /* reserved symbol 3 in a run-length chunk and in a 2-bit vector */
  memcpy(p, twcc_hand, sizeof p);
  p[20] = 0x60;
  one_packet(p, sizeof p, &h);
  assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, pkts, N(pkts)), MF_ERR_PARSE);
  memcpy(p, twcc_hand, sizeof p);
  p[24] = 0xf0;
  one_packet(p, sizeof p, &h);
  assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, pkts, N(pkts)), MF_ERR_PARSE);
  /* too short for the fixed fields */
  const uint8_t tiny[] = {0x8f, 0xcd, 0x00, 0x03, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1, 0, 1};
  one_packet(tiny, sizeof tiny, &h);
  assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, pkts, N(pkts)), MF_ERR_PARSE);
  /* status count 1 but no chunk */
  const uint8_t no_chunk[] = {0x8f, 0xcd, 0x00, 0x04, 0, 0, 0, 1, 0, 0, 0, 2,
                              0, 1, 0, 1, 0, 0, 0, 0};
  one_packet(no_chunk, sizeof no_chunk, &h);
  assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, pkts, N(pkts)), MF_ERR_PARSE);
  /* zero-run chunks until the packet ends */
  const uint8_t zero_runs[] = {0x8f, 0xcd, 0x00, 0x05, 0, 0, 0, 1, 0, 0, 0, 2,
                               0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  one_packet(zero_runs, sizeof zero_runs, &h);
  assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, pkts, N(pkts)), MF_ERR_PARSE);
}

static void twcc_roundtrip(const mf_rtcp_twcc_packet_t *in, size_t count, uint16_t base) {
  static uint8_t buf[1 << 18];
  static mf_rtcp_twcc_packet_t out[65536];
  mf_rtcp_twcc_t hdr = {.sender_ssrc = 3, .media_ssrc = 4, .base_seq = base,
                        .reference_time = -0x800000, .fb_pkt_count = 255};
  size_t n;
  assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, &hdr, in, count, &n), MF_OK);
  assert_int_equal(n % 4, 0);
  mf_rtcp_header_t h;
  one_packet(buf, n, &h);
  mf_rtcp_twcc_t fb;
  assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, out, N(out)), MF_OK);
  assert_int_equal(fb.base_seq, base);
  assert_int_equal(fb.status_count, count);
  assert_int_equal(fb.reference_time, -0x800000);
  assert_int_equal(fb.fb_pkt_count, 255);
  assert_int_equal(fb.written, count);
  size_t received = 0;
  for (size_t i = 0; i < count; i++) {
    assert_int_equal(out[i].seq, (uint16_t)(base + i));
    assert_int_equal(out[i].status, in[i].status);
    assert_int_equal(out[i].delta, in[i].status ? in[i].delta : 0);
    received += in[i].status != 0;
  }
  assert_int_equal(fb.received, received);
  if (n <= 4096) {
    for (size_t cap = 0; cap < n; cap++)
      assert_int_equal(mf_rtcp_write_twcc(buf, cap, &hdr, in, count, &n), MF_ERR_FULL);
  }
}

static void test_twcc_roundtrip(void **state) {
  (void)state;
  static mf_rtcp_twcc_packet_t in[65535];
  /* single packet of each status */
  for (uint8_t s = 0; s <= 2; s++) {
    in[0] = (mf_rtcp_twcc_packet_t){0, s, s == 1 ? 255 : (s == 2 ? -32768 : 0)};
    twcc_roundtrip(in, 1, 65535);
  }
  /* all small deltas (one long run), then a run longer than 8191 */
  for (size_t i = 0; i < 20000; i++) in[i] = (mf_rtcp_twcc_packet_t){0, 1, (int32_t)(i % 256)};
  twcc_roundtrip(in, 20, 1);
  twcc_roundtrip(in, 20000, 65000);
  /* a pseudo-random mix of losses, small and large (negative) deltas */
  uint32_t x = 12345;
  for (size_t i = 0; i < 5000; i++) {
    x = x * 1103515245u + 12345u;
    uint8_t s = (uint8_t)((x >> 16) % 3);
    int32_t d = s == 1 ? (int32_t)((x >> 8) & 0xff) : (s == 2 ? (int32_t)((x >> 4) & 0xffff) - 32768 : 0);
    in[i] = (mf_rtcp_twcc_packet_t){0, s, d};
  }
  for (size_t count = 1; count < 40; count++) twcc_roundtrip(in, count, (uint16_t)(count * 1000));
  twcc_roundtrip(in, 5000, 0);
  /* only 0/1 statuses (1-bit vectors), with short runs */
  for (size_t i = 0; i < 100; i++) in[i] = (mf_rtcp_twcc_packet_t){0, (uint8_t)((i / 3) % 2), 10};
  twcc_roundtrip(in, 100, 500);
  /* the maximum count, all lost */
  memset(in, 0, sizeof in);
  twcc_roundtrip(in, 65535, 0);
  /* invalid inputs */
  uint8_t buf[64];
  size_t n;
  mf_rtcp_twcc_t hdr = {0};
  in[0] = (mf_rtcp_twcc_packet_t){0, 3, 0};
  assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, &hdr, in, 1, &n), MF_ERR_INVALID_ARG);
  in[0] = (mf_rtcp_twcc_packet_t){0, 1, 256};
  assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, &hdr, in, 1, &n), MF_ERR_INVALID_ARG);
  in[0] = (mf_rtcp_twcc_packet_t){0, 2, 40000};
  assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, &hdr, in, 1, &n), MF_ERR_INVALID_ARG);
  in[0] = (mf_rtcp_twcc_packet_t){0, 0, 0};
  assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, &hdr, in, 0, &n), MF_ERR_INVALID_ARG);
  hdr.reference_time = 0x800000;
  assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, &hdr, in, 1, &n), MF_ERR_INVALID_ARG);
}

static void test_compound_builder(void **state) {
  (void)state;
  uint8_t buf[512];
  mf_rtcp_compound_t c;
  mf_rtcp_compound_init(&c, buf, sizeof buf);
  mf_rtcp_sr_t sr = {.ssrc = 1, .ntp = 42, .report_count = 1};
  sr.reports[0].ssrc = 9;
  mf_rtcp_nack_item_t nack = {100, 3};
  mf_rtcp_fir_entry_t fir = {9, 4};
  mf_rtcp_remb_t remb = {.sender_ssrc = 1, .bitrate = 500000, .ssrc_count = 1, .ssrcs = {9}};
  mf_rtcp_bye_t bye = {.count = 1, .ssrcs = {1}};
  mf_rtcp_rr_t rr = {.ssrc = 1};
  mf_rtcp_twcc_packet_t tw[2] = {{0, 1, 4}, {0, 0, 0}};
  mf_rtcp_twcc_t twh = {.sender_ssrc = 1, .media_ssrc = 9, .base_seq = 7};
  assert_int_equal(mf_rtcp_compound_add_sr(&c, &sr), MF_OK);
  assert_int_equal(mf_rtcp_compound_add_rr(&c, &rr), MF_OK);
  assert_int_equal(mf_rtcp_compound_add_sdes_cname(&c, 1, (const uint8_t *)"cname", 5), MF_OK);
  assert_int_equal(mf_rtcp_compound_add_nack(&c, 1, 9, &nack, 1), MF_OK);
  assert_int_equal(mf_rtcp_compound_add_pli(&c, 1, 9), MF_OK);
  assert_int_equal(mf_rtcp_compound_add_fir(&c, 1, &fir, 1), MF_OK);
  assert_int_equal(mf_rtcp_compound_add_remb(&c, &remb), MF_OK);
  assert_int_equal(mf_rtcp_compound_add_twcc(&c, &twh, tw, 2), MF_OK);
  assert_int_equal(mf_rtcp_compound_add_bye(&c, &bye), MF_OK);
  assert_int_equal(c.err, MF_OK);

  static const uint8_t types[] = {MF_RTCP_SR,    MF_RTCP_RR,   MF_RTCP_SDES,
                                  MF_RTCP_RTPFB, MF_RTCP_PSFB, MF_RTCP_PSFB,
                                  MF_RTCP_PSFB,  MF_RTCP_RTPFB, MF_RTCP_BYE};
  mf_rtcp_iter_t it;
  mf_rtcp_header_t h;
  mf_rtcp_iter_init(&it, buf, c.len);
  for (size_t i = 0; i < N(types); i++) {
    assert_int_equal(mf_rtcp_iter_next(&it, &h), MF_OK);
    assert_int_equal(h.type, types[i]);
  }
  assert_int_equal(mf_rtcp_iter_next(&it, &h), MF_ERR_EMPTY);
  assert_int_equal(mf_rtcp_validate(buf, c.len), MF_OK);

  /* A full buffer: the failed append leaves len alone and the error sticks. */
  mf_rtcp_compound_init(&c, buf, 40);
  assert_int_equal(mf_rtcp_compound_add_sr(&c, &sr), MF_ERR_FULL);
  assert_int_equal(c.len, 0);
  mf_rtcp_compound_init(&c, buf, 40);
  assert_int_equal(mf_rtcp_compound_add_pli(&c, 1, 2), MF_OK);
  assert_int_equal(mf_rtcp_compound_add_pli(&c, 1, 2), MF_OK);
  assert_int_equal(mf_rtcp_compound_add_pli(&c, 1, 2), MF_OK);
  assert_int_equal(mf_rtcp_compound_add_pli(&c, 1, 2), MF_ERR_FULL);
  assert_int_equal(c.len, 36);
  assert_int_equal(mf_rtcp_compound_add_bye(&c, &(mf_rtcp_bye_t){0}), MF_ERR_FULL);
  assert_int_equal(c.len, 36);
  assert_int_equal(c.err, MF_ERR_FULL);
  assert_int_equal(mf_rtcp_validate(buf, c.len), MF_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_iter_chrome_compound),
      cmocka_unit_test(test_iter_malformed_table),
      cmocka_unit_test(test_iter_zero_length_and_padding),
      cmocka_unit_test(test_iter_truncated_everywhere),
      cmocka_unit_test(test_parse_malformed_types),
      cmocka_unit_test(test_sdes_iter),
      cmocka_unit_test(test_roundtrip_sr_rr),
      cmocka_unit_test(test_roundtrip_sdes_bye),
      cmocka_unit_test(test_roundtrip_feedback),
      cmocka_unit_test(test_nack_helpers),
      cmocka_unit_test(test_twcc_hand_made),
      cmocka_unit_test(test_twcc_malformed),
      cmocka_unit_test(test_twcc_roundtrip),
      cmocka_unit_test(test_compound_builder),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
