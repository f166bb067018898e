/* Fuzz target for node/rtp/rtcp.h: iterate the compound packet and run every parser on
 * every packet (each must refuse what is not its type without reading out of bounds).
 * Whatever parses is written back with the matching writer and parsed again: the two
 * parses must agree, so writer and parser stay consistent on arbitrary field values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/rtp/rtcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
  if (!cond) abort();
}

static uint8_t out[1 << 19];
static mf_rtcp_twcc_packet_t twcc_a[65536];
static mf_rtcp_twcc_packet_t twcc_b[65536];
static mf_rtcp_nack_item_t nack_items[65536];
static mf_rtcp_fir_entry_t fir_entries[32768];

static void reparse(size_t len, mf_rtcp_header_t *h) {
  mf_rtcp_iter_t it;
  mf_rtcp_iter_init(&it, out, len);
  check(mf_rtcp_iter_next(&it, h) == MF_OK);
  check(h->len == len);
}

static void fuzz_one(const mf_rtcp_header_t *h) {
  size_t n;
  mf_rtcp_header_t h2;

  mf_rtcp_sr_t sr, sr2;
  if (mf_rtcp_parse_sr(h, &sr) == MF_OK) {
    check(mf_rtcp_write_sr(out, sizeof out, &sr, &n) == MF_OK);
    reparse(n, &h2);
    check(mf_rtcp_parse_sr(&h2, &sr2) == MF_OK);
    check(sr2.ntp == sr.ntp && sr2.report_count == sr.report_count);
    for (size_t i = 0; i < sr.report_count; i++)
      check(sr2.reports[i].cumulative_lost == sr.reports[i].cumulative_lost &&
            sr2.reports[i].dlsr == sr.reports[i].dlsr);
  }
  mf_rtcp_rr_t rr, rr2;
  if (mf_rtcp_parse_rr(h, &rr) == MF_OK) {
    check(mf_rtcp_write_rr(out, sizeof out, &rr, &n) == MF_OK);
    reparse(n, &h2);
    check(mf_rtcp_parse_rr(&h2, &rr2) == MF_OK && rr2.report_count == rr.report_count);
  }

  mf_rtcp_sdes_iter_t sit;
  if (mf_rtcp_sdes_iter_init(&sit, h) == MF_OK) {
    mf_rtcp_sdes_item_t item;
    while (mf_rtcp_sdes_iter_next(&sit, &item) == MF_OK) {
      check(item.value >= h->body && item.value + item.len <= h->body + h->body_len);
    }
    uint32_t ssrc;
    const uint8_t *cname;
    size_t clen;
    if (mf_rtcp_sdes_find_cname(h, &ssrc, &cname, &clen) == MF_OK && clen > 0) {
      check(mf_rtcp_write_sdes_cname(out, sizeof out, ssrc, cname, clen, &n) == MF_OK);
      reparse(n, &h2);
      const uint8_t *c2;
      size_t l2;
      check(mf_rtcp_sdes_find_cname(&h2, NULL, &c2, &l2) == MF_OK);
      check(l2 == clen && memcmp(c2, cname, clen) == 0);
    }
  }

  mf_rtcp_bye_t bye, bye2;
  if (mf_rtcp_parse_bye(h, &bye) == MF_OK) {
    check(mf_rtcp_write_bye(out, sizeof out, &bye, &n) == MF_OK);
    reparse(n, &h2);
    check(mf_rtcp_parse_bye(&h2, &bye2) == MF_OK);
    check(bye2.count == bye.count && bye2.reason_len == bye.reason_len);
    check((bye2.reason == NULL) == (bye.reason == NULL));
  }

  mf_rtcp_nack_t nack, nack2;
  if (mf_rtcp_parse_nack(h, &nack) == MF_OK) {
    uint16_t lost[17];
    for (size_t i = 0; i < nack.count; i++) {
      nack_items[i] = mf_rtcp_nack_get(&nack, i);
      size_t k = mf_rtcp_nack_expand(nack_items[i], lost);
      check(k >= 1 && k <= 17 && lost[0] == nack_items[i].pid);
    }
    if (mf_rtcp_write_nack(out, sizeof out, nack.sender_ssrc, nack.media_ssrc, nack_items,
                           nack.count, &n) == MF_OK) {
      reparse(n, &h2);
      check(mf_rtcp_parse_nack(&h2, &nack2) == MF_OK && nack2.count == nack.count);
      check(memcmp(nack2.fci, nack.fci, 4 * nack.count) == 0);
    }
  }

  mf_rtcp_pli_t pli;
  (void)mf_rtcp_parse_pli(h, &pli);

  mf_rtcp_fir_t fir, fir2;
  if (mf_rtcp_parse_fir(h, &fir) == MF_OK) {
    for (size_t i = 0; i < fir.count; i++) fir_entries[i] = mf_rtcp_fir_get(&fir, i);
    if (mf_rtcp_write_fir(out, sizeof out, fir.sender_ssrc, fir_entries, fir.count, &n) ==
        MF_OK) {
      reparse(n, &h2);
      check(mf_rtcp_parse_fir(&h2, &fir2) == MF_OK && fir2.count == fir.count);
      for (size_t i = 0; i < fir.count; i++) {
        mf_rtcp_fir_entry_t e = mf_rtcp_fir_get(&fir2, i);
        check(e.ssrc == fir_entries[i].ssrc && e.seq_nr == fir_entries[i].seq_nr);
      }
    }
  }

  static mf_rtcp_remb_t remb, remb2;
  if (mf_rtcp_parse_remb(h, &remb) == MF_OK) {
    check(mf_rtcp_write_remb(out, sizeof out, &remb, &n) == MF_OK);
    reparse(n, &h2);
    check(mf_rtcp_parse_remb(&h2, &remb2) == MF_OK);
    check(remb2.bitrate == remb.bitrate && remb2.ssrc_count == remb.ssrc_count);
  }

  /* TWCC both with a small array (partial fill) and a full one. */
  mf_rtcp_twcc_t tw, tw2;
  mf_rtcp_twcc_packet_t few[4];
  if (mf_rtcp_parse_twcc(h, &tw, few, 4) == MF_OK) {
    check(tw.written <= 4);
    check(mf_rtcp_parse_twcc(h, &tw, twcc_a, 65536) == MF_OK);
    check(tw.written == tw.status_count);
    check(mf_rtcp_write_twcc(out, sizeof out, &tw, twcc_a, tw.written, &n) == MF_OK);
    reparse(n, &h2);
    check(mf_rtcp_parse_twcc(&h2, &tw2, twcc_b, 65536) == MF_OK);
    check(tw2.status_count == tw.status_count && tw2.received == tw.received);
    check(tw2.reference_time == tw.reference_time && tw2.base_seq == tw.base_seq);
    for (size_t i = 0; i < tw.written; i++)
      check(twcc_b[i].status == twcc_a[i].status && twcc_b[i].delta == twcc_a[i].delta &&
            twcc_b[i].seq == twcc_a[i].seq);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)mf_rtcp_validate(data, size);
  mf_rtcp_iter_t it;
  mf_rtcp_header_t h;
  mf_rtcp_iter_init(&it, data, size);
  size_t total = 0;
  while (mf_rtcp_iter_next(&it, &h) == MF_OK) {
    check(h.data >= data && h.data + h.len <= data + size);
    check(h.body_len <= h.len - 4);
    total += h.len;
    fuzz_one(&h);
  }
  check(total <= size);
  return 0;
}
