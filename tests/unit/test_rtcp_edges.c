/* RTCP parser and writer edges the main suite (test_rtcp.c) leaves out: every typed parser
 * given NULL or a header of another type / FMT, every writer given each NULL argument, an
 * out-of-range count or a too-small buffer, and the compound builder keeping its first error
 * (a later append writes nothing and returns that error). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/rtp/rtcp.h"

/* A header as mf_rtcp_iter_next would yield it, over a body of body_len bytes. */
static mf_rtcp_header_t hdr(uint8_t type, uint8_t count, const uint8_t *body, size_t body_len) {
  mf_rtcp_header_t h = {.version = 2, .count = count, .type = type, .len = body_len + 4,
                        .data = body, .body = body, .body_len = body_len};
  return h;
}

static void test_parsers_reject_null_and_wrong_type(void **state) {
  (void)state;
  static const uint8_t body[64] = {0};
  mf_rtcp_sr_t sr;
  mf_rtcp_rr_t rr;
  mf_rtcp_bye_t bye;
  mf_rtcp_nack_t nack;
  mf_rtcp_pli_t pli;
  mf_rtcp_fir_t fir;
  mf_rtcp_remb_t remb;
  mf_rtcp_twcc_t twcc;
  mf_rtcp_twcc_packet_t pkts[4];
  mf_rtcp_sdes_iter_t it;

  mf_rtcp_header_t h_sr = hdr(MF_RTCP_SR, 0, body, 24), h_rr = hdr(MF_RTCP_RR, 0, body, 4);
  mf_rtcp_header_t h_sdes = hdr(MF_RTCP_SDES, 0, body, 4), h_bye = hdr(MF_RTCP_BYE, 0, body, 0);
  mf_rtcp_header_t h_nack = hdr(MF_RTCP_RTPFB, MF_RTCP_RTPFB_NACK, body, 12);
  mf_rtcp_header_t h_twcc = hdr(MF_RTCP_RTPFB, MF_RTCP_RTPFB_TWCC, body, 20);
  mf_rtcp_header_t h_pli = hdr(MF_RTCP_PSFB, MF_RTCP_PSFB_PLI, body, 8);
  mf_rtcp_header_t h_fir = hdr(MF_RTCP_PSFB, MF_RTCP_PSFB_FIR, body, 16);
  mf_rtcp_header_t h_afb = hdr(MF_RTCP_PSFB, MF_RTCP_PSFB_AFB, body, 16);

  /* the well-typed headers parse (a zero body is a valid minimal packet of each) */
  assert_int_equal(mf_rtcp_parse_sr(&h_sr, &sr), MF_OK);
  assert_int_equal(mf_rtcp_parse_rr(&h_rr, &rr), MF_OK);
  assert_int_equal(mf_rtcp_parse_bye(&h_bye, &bye), MF_OK);
  assert_int_equal(mf_rtcp_parse_nack(&h_nack, &nack), MF_OK);
  assert_int_equal(mf_rtcp_parse_pli(&h_pli, &pli), MF_OK);
  assert_int_equal(mf_rtcp_parse_fir(&h_fir, &fir), MF_OK);
  assert_int_equal(mf_rtcp_sdes_iter_init(&it, &h_sdes), MF_OK);
  /* an AFB that is not REMB is another kind of feedback, not a malformed one */
  assert_int_equal(mf_rtcp_parse_remb(&h_afb, &remb), MF_ERR_UNSUPPORTED);

  /* NULL header, NULL output */
  assert_int_equal(mf_rtcp_parse_sr(NULL, &sr), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_sr(&h_sr, NULL), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_rr(NULL, &rr), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_rr(&h_rr, NULL), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_sdes_iter_init(NULL, &h_sdes), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_sdes_iter_init(&it, NULL), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_bye(NULL, &bye), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_bye(&h_bye, NULL), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_nack(NULL, &nack), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_nack(&h_nack, NULL), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_pli(NULL, &pli), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_pli(&h_pli, NULL), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_fir(NULL, &fir), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_fir(&h_fir, NULL), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_remb(NULL, &remb), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_remb(&h_afb, NULL), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_twcc(NULL, &twcc, pkts, 4), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_twcc(&h_twcc, NULL, pkts, 4), MF_ERR_PARSE);

  /* right type, wrong FMT; wrong type */
  mf_rtcp_header_t fb_other = hdr(MF_RTCP_RTPFB, 31, body, 20);
  mf_rtcp_header_t ps_other = hdr(MF_RTCP_PSFB, 31, body, 20);
  assert_int_equal(mf_rtcp_parse_nack(&fb_other, &nack), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_twcc(&fb_other, &twcc, pkts, 4), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_pli(&ps_other, &pli), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_fir(&ps_other, &fir), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_remb(&ps_other, &remb), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_nack(&h_pli, &nack), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_twcc(&h_pli, &twcc, pkts, 4), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_pli(&h_nack, &pli), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_fir(&h_nack, &fir), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_remb(&h_nack, &remb), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_sr(&h_rr, &sr), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_rr(&h_sr, &rr), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_parse_bye(&h_sr, &bye), MF_ERR_PARSE);
  assert_int_equal(mf_rtcp_sdes_iter_init(&it, &h_sr), MF_ERR_PARSE);
  uint32_t ssrc;
  assert_int_equal(mf_rtcp_sdes_find_cname(&h_bye, &ssrc, NULL, NULL), MF_ERR_PARSE);

  /* a FIR entry index past its count reads as zero, not past the packet */
  assert_int_equal(mf_rtcp_parse_fir(&h_fir, &fir), MF_OK);
  assert_int_equal(fir.count, 1);
  mf_rtcp_fir_entry_t e = mf_rtcp_fir_get(&fir, 1);
  assert_int_equal(e.ssrc, 0);
  assert_int_equal(e.seq_nr, 0);

  /* an iterator over no buffer is empty, whatever length it is given */
  mf_rtcp_iter_t ri;
  mf_rtcp_header_t out;
  mf_rtcp_iter_init(&ri, NULL, 100);
  assert_int_equal(mf_rtcp_iter_next(&ri, &out), MF_ERR_EMPTY);
}

/* SDES chunks whose items or padding run past the body fail the iterator, and then stay
 * failed. */
static void test_sdes_truncations(void **state) {
  (void)state;
  static const struct {
    const char *why;
    uint8_t count;
    uint8_t body[16];
    size_t len;
    mf_err_t first;
  } cases[] = {
      /* ssrc, CNAME "ab", END at offset 8: the END's padding reaches 12 > 9 */
      {"end padding past body", 1, {0, 0, 0, 1, 1, 2, 'a', 'b', 0}, 9, MF_OK},
      /* ssrc then a lone item type byte: no room for its length */
      {"item type without length", 1, {0, 0, 0, 1, 1}, 5, MF_ERR_PARSE},
      /* ssrc then nothing: a chunk without its null item */
      {"chunk without items", 1, {0, 0, 0, 1}, 4, MF_ERR_PARSE},
      /* two chunks announced, bytes for one header only */
      {"second chunk header truncated", 2, {0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, 10, MF_ERR_PARSE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_rtcp_header_t h = hdr(MF_RTCP_SDES, cases[i].count, cases[i].body, cases[i].len);
    mf_rtcp_sdes_iter_t it;
    mf_rtcp_sdes_item_t item;
    assert_int_equal(mf_rtcp_sdes_iter_init(&it, &h), MF_OK);
    mf_err_t e = mf_rtcp_sdes_iter_next(&it, &item);
    if (e != cases[i].first) print_error("case %s: %d\n", cases[i].why, e);
    assert_int_equal(e, cases[i].first);
    if (e == MF_OK) assert_int_equal(mf_rtcp_sdes_iter_next(&it, &item), MF_ERR_PARSE);
    assert_int_equal(mf_rtcp_sdes_iter_next(&it, &item), MF_ERR_PARSE); /* sticky */
  }
}

static void test_writers_reject_bad_arguments(void **state) {
  (void)state;
  uint8_t buf[256];
  size_t n = 0;
  mf_rtcp_sr_t sr = {.ssrc = 1};
  mf_rtcp_rr_t rr = {.ssrc = 1};
  mf_rtcp_bye_t bye = {.count = 1, .ssrcs = {1}};
  mf_rtcp_nack_item_t items[1] = {{.pid = 1, .blp = 0}};
  mf_rtcp_fir_entry_t fe[1] = {{.ssrc = 1, .seq_nr = 1}};
  mf_rtcp_remb_t remb = {.bitrate = 100000, .ssrc_count = 1, .ssrcs = {1}};
  mf_rtcp_twcc_t tw = {.base_seq = 1};
  mf_rtcp_twcc_packet_t tp[1] = {{.seq = 1, .status = MF_TWCC_SMALL_DELTA, .delta = 4}};
  static const uint8_t cname[] = "abc";

  assert_int_equal(mf_rtcp_write_sr(NULL, sizeof buf, &sr, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_sr(buf, sizeof buf, NULL, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_sr(buf, sizeof buf, &sr, NULL), MF_ERR_INVALID_ARG);
  sr.report_count = MF_RTCP_MAX_COUNT + 1;
  assert_int_equal(mf_rtcp_write_sr(buf, sizeof buf, &sr, &n), MF_ERR_INVALID_ARG);
  sr.report_count = 0;
  assert_int_equal(mf_rtcp_write_sr(buf, 27, &sr, &n), MF_ERR_FULL);
  assert_int_equal(mf_rtcp_write_sr(buf, 28, &sr, &n), MF_OK);
  assert_int_equal(n, 28);

  assert_int_equal(mf_rtcp_write_rr(NULL, sizeof buf, &rr, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_rr(buf, sizeof buf, NULL, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_rr(buf, sizeof buf, &rr, NULL), MF_ERR_INVALID_ARG);
  rr.report_count = MF_RTCP_MAX_COUNT + 1;
  assert_int_equal(mf_rtcp_write_rr(buf, sizeof buf, &rr, &n), MF_ERR_INVALID_ARG);
  rr.report_count = 0;
  assert_int_equal(mf_rtcp_write_rr(buf, 7, &rr, &n), MF_ERR_FULL);

  assert_int_equal(mf_rtcp_write_sdes_cname(NULL, sizeof buf, 1, cname, 3, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_sdes_cname(buf, sizeof buf, 1, NULL, 3, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_sdes_cname(buf, sizeof buf, 1, cname, 3, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_sdes_cname(buf, sizeof buf, 1, cname, 0, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_sdes_cname(buf, sizeof buf, 1, cname, 256, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_sdes_cname(buf, 15, 1, cname, 3, &n), MF_ERR_FULL);

  assert_int_equal(mf_rtcp_write_bye(NULL, sizeof buf, &bye, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_bye(buf, sizeof buf, NULL, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_bye(buf, sizeof buf, &bye, NULL), MF_ERR_INVALID_ARG);
  bye.count = MF_RTCP_MAX_COUNT + 1;
  assert_int_equal(mf_rtcp_write_bye(buf, sizeof buf, &bye, &n), MF_ERR_INVALID_ARG);
  bye.count = 1;
  bye.reason_len = 4; /* a length without its text */
  assert_int_equal(mf_rtcp_write_bye(buf, sizeof buf, &bye, &n), MF_ERR_INVALID_ARG);
  bye.reason_len = 0;
  assert_int_equal(mf_rtcp_write_bye(buf, 7, &bye, &n), MF_ERR_FULL);

  assert_int_equal(mf_rtcp_write_nack(NULL, sizeof buf, 1, 2, items, 1, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_nack(buf, sizeof buf, 1, 2, NULL, 1, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_nack(buf, sizeof buf, 1, 2, items, 1, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_nack(buf, sizeof buf, 1, 2, items, 0, &n), MF_ERR_INVALID_ARG);
  /* more items than an RTCP length field can describe (never read: rejected first) */
  assert_int_equal(mf_rtcp_write_nack(buf, sizeof buf, 1, 2, items, 70000, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_nack(buf, 15, 1, 2, items, 1, &n), MF_ERR_FULL);

  assert_int_equal(mf_rtcp_write_pli(NULL, sizeof buf, 1, 2, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_pli(buf, sizeof buf, 1, 2, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_pli(buf, 11, 1, 2, &n), MF_ERR_FULL);

  assert_int_equal(mf_rtcp_write_fir(NULL, sizeof buf, 1, fe, 1, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_fir(buf, sizeof buf, 1, NULL, 1, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_fir(buf, sizeof buf, 1, fe, 1, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_fir(buf, sizeof buf, 1, fe, 0, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_fir(buf, sizeof buf, 1, fe, 40000, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_fir(buf, 19, 1, fe, 1, &n), MF_ERR_FULL);

  assert_int_equal(mf_rtcp_write_remb(NULL, sizeof buf, &remb, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_remb(buf, sizeof buf, NULL, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_remb(buf, sizeof buf, &remb, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_remb(buf, 23, &remb, &n), MF_ERR_FULL);

  assert_int_equal(mf_rtcp_write_twcc(NULL, sizeof buf, &tw, tp, 1, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, NULL, tp, 1, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, &tw, NULL, 1, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, &tw, tp, 1, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, &tw, tp, 0, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, &tw, tp, 0x10000, &n), MF_ERR_INVALID_ARG);
  tw.reference_time = -0x800001; /* outside signed 24 bits */
  assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, &tw, tp, 1, &n), MF_ERR_INVALID_ARG);
  tw.reference_time = 0x800000;
  assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, &tw, tp, 1, &n), MF_ERR_INVALID_ARG);
  tw.reference_time = 0;
  /* each status with a delta outside what it can encode */
  static const mf_rtcp_twcc_packet_t bad[] = {
      {1, 3, 0},
      {1, MF_TWCC_SMALL_DELTA, -1},
      {1, MF_TWCC_SMALL_DELTA, 256},
      {1, MF_TWCC_LARGE_DELTA, -32769},
      {1, MF_TWCC_LARGE_DELTA, 32768},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, &tw, &bad[i], 1, &n), MF_ERR_INVALID_ARG);
  static const mf_rtcp_twcc_packet_t edge[] = {
      {1, MF_TWCC_SMALL_DELTA, 255},
      {2, MF_TWCC_LARGE_DELTA, -32768},
      {3, MF_TWCC_LARGE_DELTA, 32767},
  };
  assert_int_equal(mf_rtcp_write_twcc(buf, sizeof buf, &tw, edge, 3, &n), MF_OK);
  assert_int_equal(mf_rtcp_write_twcc(buf, n - 1, &tw, edge, 3, &n), MF_ERR_FULL);
}

/* The first failing append sticks: every later add_* returns it and writes nothing. */
static void test_compound_first_error_sticks(void **state) {
  (void)state;
  uint8_t buf[64];
  mf_rtcp_sr_t sr = {.ssrc = 1};
  mf_rtcp_rr_t rr = {.ssrc = 1};
  mf_rtcp_bye_t bye = {.count = 1, .ssrcs = {1}};
  mf_rtcp_nack_item_t items[1] = {{.pid = 1}};
  mf_rtcp_fir_entry_t fe[1] = {{.ssrc = 1}};
  mf_rtcp_remb_t remb = {.bitrate = 1000, .ssrc_count = 0};
  mf_rtcp_twcc_t tw = {.base_seq = 1};
  mf_rtcp_twcc_packet_t tp[1] = {{.seq = 1, .status = MF_TWCC_NOT_RECEIVED}};
  static const uint8_t cname[] = "abc";

  mf_rtcp_compound_t c;
  mf_rtcp_compound_init(&c, buf, sizeof buf);
  assert_int_equal(mf_rtcp_compound_add_rr(&c, &rr), MF_OK);
  assert_int_equal(c.len, 8);
  /* 40 more bytes of SDES do not fit after 8 + a 28-byte SR */
  assert_int_equal(mf_rtcp_compound_add_sr(&c, &sr), MF_OK);
  assert_int_equal(c.len, 36);
  uint8_t long_cname[40];
  memset(long_cname, 'x', sizeof long_cname);
  assert_int_equal(mf_rtcp_compound_add_sdes_cname(&c, 1, long_cname, sizeof long_cname), MF_ERR_FULL);
  size_t len = c.len;
  /* each later append, even one that would fit, reports the first error */
  assert_int_equal(mf_rtcp_compound_add_sr(&c, &sr), MF_ERR_FULL);
  assert_int_equal(mf_rtcp_compound_add_rr(&c, &rr), MF_ERR_FULL);
  assert_int_equal(mf_rtcp_compound_add_sdes_cname(&c, 1, cname, 3), MF_ERR_FULL);
  assert_int_equal(mf_rtcp_compound_add_bye(&c, &bye), MF_ERR_FULL);
  assert_int_equal(mf_rtcp_compound_add_nack(&c, 1, 2, items, 1), MF_ERR_FULL);
  assert_int_equal(mf_rtcp_compound_add_pli(&c, 1, 2), MF_ERR_FULL);
  assert_int_equal(mf_rtcp_compound_add_fir(&c, 1, fe, 1), MF_ERR_FULL);
  assert_int_equal(mf_rtcp_compound_add_remb(&c, &remb), MF_ERR_FULL);
  assert_int_equal(mf_rtcp_compound_add_twcc(&c, &tw, tp, 1), MF_ERR_FULL);
  assert_int_equal(c.len, len);
  assert_int_equal(c.err, MF_ERR_FULL);

  /* a builder without a buffer fails from the start, with INVALID_ARG */
  mf_rtcp_compound_init(&c, NULL, 1500);
  assert_int_equal(c.cap, 0);
  assert_int_equal(mf_rtcp_compound_add_pli(&c, 1, 2), MF_ERR_INVALID_ARG);
  assert_int_equal(c.len, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parsers_reject_null_and_wrong_type),
      cmocka_unit_test(test_sdes_truncations),
      cmocka_unit_test(test_writers_reject_bad_arguments),
      cmocka_unit_test(test_compound_first_error_sticks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
