/* Tests for node/bwe/twcc_recorder.h and remb_estimator.h: tables of arrivals are recorded,
 * the feedback packets built are parsed back with mf_rtcp_parse_twcc and every sequence
 * number's status and reconstructed arrival time (reference time + sum of deltas) is
 * compared with the table. Covers in-order, losses, wraparound, reordering, late packets
 * re-reported, duplicates, time gaps that do not fit a delta, seq jumps, ring overflow,
 * splitting at MF_TWCC_MAX_STATUSES, fb_pkt_count, reference-time wrap, EMPTY/FULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/bwe/remb_estimator.h"
#include "node/bwe/transport_feedback.h"
#include "node/bwe/twcc_recorder.h"
#include "node/ortc.h"
#include "node/rtp/rtcp.h"
#include "node/rtp/rtp.h"

#define MAXFB 8
#define MAXENT 4096

/* One reported entry, flattened over all feedback packets built in a flush. */
typedef struct {
  uint16_t seq;
  bool received;
  int64_t ticks; /* reconstructed arrival, 250 µs units (mod 2^24 * 256 for the ref wrap) */
  uint8_t status;
} entry_t;

typedef struct {
  size_t nfb;
  mf_rtcp_twcc_t fb[MAXFB];
  size_t n;
  entry_t e[MAXENT];
} flush_t;

static mf_twcc_recorder_t *rec_new(void) {
  mf_twcc_recorder_t *r = malloc(sizeof *r);
  assert_non_null(r);
  mf_twcc_recorder_init(r);
  return r;
}

/* Builds feedback until EMPTY and parses every packet back. */
static void flush(mf_twcc_recorder_t *r, uint64_t now_us, flush_t *out) {
  memset(out, 0, sizeof *out);
  for (;;) {
    uint8_t buf[MF_TWCC_FEEDBACK_MAX_BYTES];
    size_t len = 0;
    mf_err_t e = mf_twcc_recorder_build(r, 0x11223344, now_us, buf, sizeof buf, &len);
    if (e == MF_ERR_EMPTY) break;
    assert_int_equal(e, MF_OK);
    assert_true(out->nfb < MAXFB);
    mf_rtcp_iter_t it;
    mf_rtcp_header_t h;
    mf_rtcp_iter_init(&it, buf, len);
    assert_int_equal(mf_rtcp_iter_next(&it, &h), MF_OK);
    assert_int_equal(h.type, MF_RTCP_RTPFB);
    assert_int_equal(h.count, MF_RTCP_RTPFB_TWCC);
    static mf_rtcp_twcc_packet_t pkts[MAXENT];
    mf_rtcp_twcc_t *fb = &out->fb[out->nfb++];
    assert_int_equal(mf_rtcp_parse_twcc(&h, fb, pkts, MAXENT), MF_OK);
    assert_int_equal(fb->sender_ssrc, 0x11223344);
    assert_int_equal(fb->written, fb->status_count);
    assert_int_equal(mf_rtcp_iter_next(&it, &h), MF_ERR_EMPTY);
    int64_t t = (int64_t)fb->reference_time * 256;
    for (size_t i = 0; i < fb->written; i++) {
      assert_true(out->n < MAXENT);
      entry_t *en = &out->e[out->n++];
      en->seq = pkts[i].seq;
      en->status = pkts[i].status;
      en->received = pkts[i].status != MF_TWCC_NOT_RECEIVED;
      if (en->received) t += pkts[i].delta;
      en->ticks = en->received ? t : 0;
    }
  }
}

typedef struct {
  uint16_t seq;
  uint64_t at_us;
} arrival_t;

/* Expected entry: seq and arrival (0: lost). */
typedef struct {
  uint16_t seq;
  uint64_t at_us;
} want_t;

static void check(const flush_t *f, const want_t *want, size_t n) {
  assert_int_equal(f->n, n);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(f->e[i].seq, want[i].seq);
    if (want[i].at_us == 0) {
      assert_false(f->e[i].received);
    } else {
      assert_true(f->e[i].received);
      assert_int_equal(f->e[i].ticks, (int64_t)(want[i].at_us / 250));
    }
  }
}

static void feed(mf_twcc_recorder_t *r, const arrival_t *a, size_t n) {
  for (size_t i = 0; i < n; i++) mf_twcc_recorder_on_packet(r, a[i].seq, 0xabc, a[i].at_us);
}

#define T0 1000000000ull /* 1000 s: an arbitrary monotonic origin */
#define N(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
  const char *name;
  arrival_t in[16];
  size_t n_in;
  want_t want[16];
  size_t n_want;
  size_t n_fb;
} table_case_t;

static const table_case_t cases[] = {
    {"in order",
     {{0, T0}, {1, T0 + 5000}, {2, T0 + 10250}, {3, T0 + 10250}, {4, T0 + 75000}},
     5,
     {{0, T0}, {1, T0 + 5000}, {2, T0 + 10250}, {3, T0 + 10250}, {4, T0 + 75000}},
     5,
     1},
    {"losses",
     {{10, T0}, {11, T0 + 1000}, {13, T0 + 3000}, {16, T0 + 6000}},
     4,
     {{10, T0}, {11, T0 + 1000}, {12, 0}, {13, T0 + 3000}, {14, 0}, {15, 0}, {16, T0 + 6000}},
     7,
     1},
    {"wraparound",
     {{65533, T0}, {65534, T0 + 250}, {65535, T0 + 500}, {0, T0 + 750}, {2, T0 + 1250}},
     5,
     {{65533, T0}, {65534, T0 + 250}, {65535, T0 + 500}, {0, T0 + 750}, {1, 0}, {2, T0 + 1250}},
     6,
     1},
    {"reordered within one feedback",
     {{100, T0}, {102, T0 + 2000}, {101, T0 + 4000}, {103, T0 + 4500}},
     4,
     {{100, T0}, {101, T0 + 4000}, {102, T0 + 2000}, {103, T0 + 4500}},
     4,
     1},
    {"large forward delta and gap over 8 s splits",
     {{7, T0}, {8, T0 + 500000}, {9, T0 + 9000000}, {10, T0 + 9000250}},
     4,
     {{7, T0}, {8, T0 + 500000}, {9, T0 + 9000000}, {10, T0 + 9000250}},
     4,
     2},
    {"sub-tick arrivals round down consistently",
     {{1, T0 + 249}, {2, T0 + 251}, {3, T0 + 499}, {4, T0 + 64000 * 3 + 1}},
     4,
     {{1, T0 + 249}, {2, T0 + 251}, {3, T0 + 499}, {4, T0 + 64000 * 3 + 1}},
     4,
     1},
};

static void test_tables(void **state) {
  (void)state;
  for (size_t c = 0; c < N(cases); c++) {
    mf_twcc_recorder_t *r = rec_new();
    feed(r, cases[c].in, cases[c].n_in);
    static flush_t f;
    flush(r, T0 + 20000000, &f);
    print_message("case %s\n", cases[c].name);
    check(&f, cases[c].want, cases[c].n_want);
    assert_int_equal(f.nfb, cases[c].n_fb);
    for (size_t k = 0; k < f.nfb; k++) assert_int_equal(f.fb[k].fb_pkt_count, k);
    assert_int_equal(mf_twcc_recorder_pending(r), 0);
    free(r);
  }
}

static void test_reordered_status_is_large(void **state) {
  (void)state;
  mf_twcc_recorder_t *r = rec_new();
  arrival_t in[] = {{0, T0 + 10000}, {1, T0 + 5000}, {2, T0 + 5000 + 64000 * 2}};
  feed(r, in, N(in));
  static flush_t f;
  flush(r, T0, &f);
  assert_int_equal(f.n, 3);
  assert_int_equal(f.e[0].status, MF_TWCC_SMALL_DELTA);
  assert_int_equal(f.e[1].status, MF_TWCC_LARGE_DELTA); /* negative delta */
  assert_int_equal(f.e[2].status, MF_TWCC_LARGE_DELTA); /* > 63.75 ms */
  free(r);
}

static void test_late_packet_rereported(void **state) {
  (void)state;
  mf_twcc_recorder_t *r = rec_new();
  arrival_t in[] = {{0, T0}, {1, T0 + 1000}, {3, T0 + 3000}};
  feed(r, in, N(in));
  static flush_t f;
  flush(r, T0 + 100000, &f);
  want_t w1[] = {{0, T0}, {1, T0 + 1000}, {2, 0}, {3, T0 + 3000}};
  check(&f, w1, N(w1));
  /* 2 arrives after it was reported lost: the next feedback starts again from it. */
  mf_twcc_recorder_on_packet(r, 2, 0xabc, T0 + 150000);
  mf_twcc_recorder_on_packet(r, 4, 0xabc, T0 + 151000);
  flush(r, T0 + 200000, &f);
  want_t w2[] = {{2, T0 + 150000}, {3, T0 + 3000}, {4, T0 + 151000}};
  check(&f, w2, N(w2));
  assert_int_equal(f.fb[0].fb_pkt_count, 1);
  /* Too far behind the next unreported number: dropped, counted. */
  for (uint16_t s = 5; s < 5 + MF_TWCC_MAX_REWIND + 10; s++)
    if (s != 6) mf_twcc_recorder_on_packet(r, s, 0xabc, T0 + 300000 + s);
  flush(r, T0 + 400000, &f);
  assert_int_equal(f.n, MF_TWCC_MAX_REWIND + 10);
  mf_twcc_recorder_on_packet(r, 6, 0xabc, T0 + 500000);
  mf_twcc_recorder_on_packet(r, 1, 0xabc, T0 + 500000); /* already received: duplicate */
  assert_int_equal(r->stats.duplicates, 1);
  assert_int_equal(r->stats.too_old, 1);
  assert_int_equal(mf_twcc_recorder_pending(r), 0);
  free(r);
}

static void test_duplicates(void **state) {
  (void)state;
  mf_twcc_recorder_t *r = rec_new();
  arrival_t in[] = {{0, T0}, {1, T0 + 1000}, {1, T0 + 9000}, {0, T0 + 9500}};
  feed(r, in, N(in));
  assert_int_equal(r->stats.duplicates, 2);
  assert_int_equal(r->stats.packets, 2);
  static flush_t f;
  flush(r, T0, &f);
  want_t w[] = {{0, T0}, {1, T0 + 1000}};
  check(&f, w, N(w));
  /* a duplicate of a reported packet within the window changes nothing */
  mf_twcc_recorder_on_packet(r, 1, 0xabc, T0 + 20000);
  assert_int_equal(r->stats.duplicates, 3);
  assert_int_equal(mf_twcc_recorder_pending(r), 0);
  free(r);
}

static void test_seq_jump_restarts(void **state) {
  (void)state;
  mf_twcc_recorder_t *r = rec_new();
  mf_twcc_recorder_on_packet(r, 10, 1, T0);
  mf_twcc_recorder_on_packet(r, 10 + MF_TWCC_RING + 5, 1, T0 + 1000);
  assert_int_equal(r->stats.overflowed, 1);
  static flush_t f;
  flush(r, T0, &f);
  want_t w[] = {{10 + MF_TWCC_RING + 5, T0 + 1000}};
  check(&f, w, N(w));
  free(r);
}

static void test_ring_overflow_and_split(void **state) {
  (void)state;
  mf_twcc_recorder_t *r = rec_new();
  /* More than the ring without feedback: the oldest numbers are dropped unreported. */
  size_t total = MF_TWCC_RING + 100;
  size_t first_due = 0;
  for (size_t i = 0; i < total; i++) {
    bool due = mf_twcc_recorder_on_packet(r, (uint16_t)(60000 + i), 7, T0 + i * 100);
    if (due && !first_due) first_due = i + 1;
  }
  assert_int_equal(first_due, MF_TWCC_MAX_PENDING);
  assert_int_equal(r->stats.overflowed, 100);
  assert_int_equal(mf_twcc_recorder_pending(r), MF_TWCC_RING);
  static flush_t f;
  flush(r, T0, &f);
  assert_int_equal(f.nfb, (MF_TWCC_RING + MF_TWCC_MAX_STATUSES - 1) / MF_TWCC_MAX_STATUSES);
  assert_int_equal(f.n, MF_TWCC_RING);
  for (size_t i = 0; i < f.n; i++) {
    uint16_t seq = (uint16_t)(60000 + 100 + i);
    assert_int_equal(f.e[i].seq, seq);
    assert_int_equal(f.e[i].ticks, (int64_t)((T0 + (100 + i) * 100) / 250));
  }
  for (size_t k = 0; k < f.nfb; k++) {
    assert_int_equal(f.fb[k].fb_pkt_count, k);
    assert_int_equal(f.fb[k].media_ssrc, 7);
  }
  free(r);
}

static void test_reference_time_wraps(void **state) {
  (void)state;
  mf_twcc_recorder_t *r = rec_new();
  /* Just below and above 2^23 units of 64 ms: the field is signed 24-bit. */
  uint64_t base = (uint64_t)0x800000 * 64000 - 64000;
  mf_twcc_recorder_on_packet(r, 1, 1, base);
  static flush_t f;
  flush(r, base, &f);
  assert_int_equal(f.fb[0].reference_time, 0x7fffff);
  mf_twcc_recorder_on_packet(r, 2, 1, base + 64000);
  flush(r, base, &f);
  assert_int_equal(f.fb[0].reference_time, -0x800000);
  assert_int_equal(f.fb[0].fb_pkt_count, 1);
  free(r);
}

static void test_due_empty_full(void **state) {
  (void)state;
  mf_twcc_recorder_t *r = rec_new();
  uint8_t buf[64];
  size_t len = 0;
  assert_int_equal(mf_twcc_recorder_build(r, 1, T0, buf, sizeof buf, &len), MF_ERR_EMPTY);
  assert_false(mf_twcc_recorder_due(r, T0));
  for (uint16_t s = 0; s < 40; s++) mf_twcc_recorder_on_packet(r, (uint16_t)(s * 2), 1, T0 + s * 70000u);
  assert_false(mf_twcc_recorder_due(r, T0 + 50000));
  assert_true(mf_twcc_recorder_due(r, T0 + MF_TWCC_FEEDBACK_INTERVAL_US));
  size_t pending = mf_twcc_recorder_pending(r);
  assert_int_equal(pending, 79);
  assert_int_equal(mf_twcc_recorder_build(r, 1, T0, buf, 16, &len), MF_ERR_FULL);
  assert_int_equal(mf_twcc_recorder_pending(r), pending); /* nothing marked */
  assert_int_equal(mf_twcc_recorder_build(r, 1, T0, NULL, 16, &len), MF_ERR_INVALID_ARG);
  uint8_t big[MF_TWCC_FEEDBACK_MAX_BYTES];
  assert_int_equal(mf_twcc_recorder_build(r, 1, T0 + 200000, big, sizeof big, &len), MF_OK);
  assert_int_equal(mf_twcc_recorder_pending(r), 0);
  assert_false(mf_twcc_recorder_due(r, T0 + 250000));
  free(r);
}

/* Worst case for size: alternating received/lost with large deltas. */
static void test_worst_case_fits(void **state) {
  (void)state;
  mf_twcc_recorder_t *r = rec_new();
  uint64_t t = T0;
  for (size_t i = 0; i < MF_TWCC_MAX_STATUSES * 2; i += 2) {
    t += (i % 4) ? 100000 : 0; /* large deltas, some negative */
    mf_twcc_recorder_on_packet(r, (uint16_t)i, 1, (i % 4) ? t : t - 5000);
  }
  uint8_t buf[MF_TWCC_FEEDBACK_MAX_BYTES];
  size_t len = 0;
  while (mf_twcc_recorder_pending(r) > 0)
    assert_int_equal(mf_twcc_recorder_build(r, 1, T0, buf, sizeof buf, &len), MF_OK);
  free(r);
}

static void test_remb_estimator(void **state) {
  (void)state;
  mf_remb_estimator_t e;
  mf_remb_estimator_init(&e, 0, 0);
  assert_int_equal(e.min_bps, MF_REMB_DEFAULT_MIN_BPS);
  /* before a full window: max */
  assert_int_equal(mf_remb_estimator_update(&e, 0, 0), MF_REMB_DEFAULT_MAX_BPS);
  mf_remb_estimator_init(&e, 50000, 3000000);
  /* 1 Mbit/s for 1 s: 100 packets of 1250 bytes */
  for (int i = 0; i < 100; i++) mf_remb_estimator_on_packet(&e, 1250, 1000 + (uint64_t)i * 10);
  assert_int_equal(mf_remb_estimator_update(&e, 0, 1500), 3000000); /* window not over */
  assert_int_equal(mf_remb_estimator_update(&e, 0, 2000), 1500000);
  assert_int_equal(e.rate_bps, 1000000);
  /* same rate with 20 % loss (51/256): back off */
  for (int i = 0; i < 100; i++) mf_remb_estimator_on_packet(&e, 1250, 2000 + (uint64_t)i * 10);
  uint32_t est = mf_remb_estimator_update(&e, 51, 3000);
  assert_true(est < 1000000 && est > 850000);
  /* 5 % loss: still growth; bounded by max */
  for (int i = 0; i < 300; i++) mf_remb_estimator_on_packet(&e, 1250, 3000 + (uint64_t)i * 3);
  assert_int_equal(mf_remb_estimator_update(&e, 13, 4000), 3000000);
  /* nothing received: the floor */
  assert_int_equal(mf_remb_estimator_update(&e, 0, 5000), 50000);
}

/* ---- transport_feedback (the router's hooks) ---- */

typedef struct {
  size_t calls;
  flush_t got; /* entries of every TWCC packet sent */
} sent_t;

static void capture(void *ud, const uint8_t *data, size_t len) {
  sent_t *s = ud;
  s->calls++;
  mf_rtcp_iter_t it;
  mf_rtcp_header_t h;
  mf_rtcp_iter_init(&it, data, len);
  assert_int_equal(mf_rtcp_iter_next(&it, &h), MF_OK);
  static mf_rtcp_twcc_packet_t pkts[MAXENT];
  mf_rtcp_twcc_t fb;
  assert_int_equal(mf_rtcp_parse_twcc(&h, &fb, pkts, MAXENT), MF_OK);
  assert_int_equal(fb.sender_ssrc, 0x5151);
  assert_int_equal(fb.media_ssrc, 0xdeadbeef);
  for (size_t i = 0; i < fb.written; i++) {
    entry_t *en = &s->got.e[s->got.n++];
    en->seq = pkts[i].seq;
    en->received = pkts[i].status != MF_TWCC_NOT_RECEIVED;
  }
}

static size_t rtp_with_seq(uint8_t *buf, uint8_t ext_id, uint16_t tseq, bool with_ext) {
  uint8_t v[2] = {(uint8_t)(tseq >> 8), (uint8_t)tseq};
  mf_rtp_ext_elem_t el = {ext_id, 2, v};
  mf_rtp_header_t h = {.payload_type = 96, .sequence = tseq, .ssrc = 0xdeadbeef,
                       .ext = with_ext ? &el : NULL, .ext_count = with_ext ? 1 : 0};
  uint8_t payload[100] = {0};
  size_t len = 0;
  assert_int_equal(mf_rtp_write_packet(buf, 1500, &h, payload, sizeof payload, 0, &len), MF_OK);
  return len;
}

static void test_transport_feedback_twcc(void **state) {
  (void)state;
  mf_rtp_parameters_t *p = calloc(1, sizeof *p);
  assert_non_null(p);
  mf_transport_feedback_t *fb = NULL;
  /* nothing negotiated: no object */
  assert_int_equal(mf_transport_feedback_attach(&fb, p), MF_OK);
  assert_null(fb);
  p->header_extension_count = 2;
  snprintf(p->header_extensions[0].uri, sizeof p->header_extensions[0].uri, "%s",
           MF_RTP_EXT_MID);
  p->header_extensions[0].id = 1;
  snprintf(p->header_extensions[1].uri, sizeof p->header_extensions[1].uri, "%s",
           MF_RTP_EXT_TRANSPORT_CC);
  p->header_extensions[1].id = 3;
  assert_int_equal(mf_transport_feedback_attach(&fb, p), MF_OK);
  assert_non_null(fb);
  mf_transport_feedback_stats_t st;
  mf_transport_feedback_get_stats(fb, &st);
  assert_int_equal(st.twcc_ext_id, 3);
  assert_false(st.remb);

  static sent_t sent;
  memset(&sent, 0, sizeof sent);
  uint8_t buf[1500];
  uint64_t t = T0;
  /* seqs 0..9 without 4; one packet without the extension; a truncated packet */
  for (uint16_t s = 0; s < 10; s++, t += 1000) {
    if (s == 4) continue;
    size_t len = rtp_with_seq(buf, 3, s, true);
    mf_transport_feedback_on_rtp(fb, buf, len, t, 0x5151, capture, &sent);
  }
  size_t len = rtp_with_seq(buf, 3, 77, false);
  mf_transport_feedback_on_rtp(fb, buf, len, t, 0x5151, capture, &sent);
  mf_transport_feedback_on_rtp(fb, buf, 5, t, 0x5151, capture, &sent);
  assert_int_equal(sent.calls, 0);
  mf_transport_feedback_tick(fb, 0x5151, T0 + 50000, capture, &sent); /* not due yet */
  assert_int_equal(sent.calls, 0);
  mf_transport_feedback_tick(fb, 0x5151, T0 + 100000, capture, &sent);
  assert_int_equal(sent.calls, 1);
  assert_int_equal(sent.got.n, 10);
  for (size_t i = 0; i < 10; i++) {
    assert_int_equal(sent.got.e[i].seq, i);
    assert_int_equal(sent.got.e[i].received, i != 4);
  }
  /* many packets at once: flushed from on_rtp without waiting for the timer */
  for (uint16_t s = 10; s < 10 + MF_TWCC_MAX_PENDING; s++) {
    len = rtp_with_seq(buf, 3, s, true);
    mf_transport_feedback_on_rtp(fb, buf, len, t + s, 0x5151, capture, &sent);
  }
  assert_int_equal(sent.calls, 2);
  mf_transport_feedback_get_stats(fb, &st);
  assert_int_equal(st.rtp_with_seq, 9 + MF_TWCC_MAX_PENDING);
  assert_int_equal(st.rtp_without_seq, 1);
  assert_int_equal(st.twcc_sent, 2);
  /* a REMB is never added while TWCC is on */
  mf_rtcp_rr_t rr = {.ssrc = 0x5151, .report_count = 1};
  rr.reports[0].ssrc = 0xdeadbeef;
  uint8_t cbuf[512];
  mf_rtcp_compound_t c;
  mf_rtcp_compound_init(&c, cbuf, sizeof cbuf);
  mf_transport_feedback_add_remb(fb, &c, &rr, 5000);
  assert_int_equal(c.len, 0);
  mf_transport_feedback_destroy(fb);
  free(p);
}

static void test_transport_feedback_remb(void **state) {
  (void)state;
  mf_rtp_parameters_t *p = calloc(1, sizeof *p);
  assert_non_null(p);
  p->codec_count = 1;
  p->codecs[0].rtcp_feedback_count = 2;
  snprintf(p->codecs[0].rtcp_feedback[0].type, MF_RTP_FB_TYPE_MAX, "nack");
  snprintf(p->codecs[0].rtcp_feedback[1].type, MF_RTP_FB_TYPE_MAX, "goog-remb");
  mf_transport_feedback_t *fb = NULL;
  assert_int_equal(mf_transport_feedback_attach(&fb, p), MF_OK);
  assert_non_null(fb);
  mf_transport_feedback_stats_t st;
  mf_transport_feedback_get_stats(fb, &st);
  assert_true(st.remb);
  assert_int_equal(st.twcc_ext_id, 0);
  uint8_t buf[1500];
  static sent_t sent;
  memset(&sent, 0, sizeof sent);
  /* 1250-byte-ish packets: measure whatever rtp_with_seq writes */
  size_t len = rtp_with_seq(buf, 3, 1, false);
  for (int i = 0; i < 100; i++)
    mf_transport_feedback_on_rtp(fb, buf, len, (uint64_t)(1000 + i * 10) * 1000, 1, capture,
                                 &sent);
  assert_int_equal(sent.calls, 0);
  mf_rtcp_rr_t rr = {.ssrc = 0x5151, .report_count = 2};
  rr.reports[0].ssrc = 111;
  rr.reports[1].ssrc = 222;
  uint8_t cbuf[512];
  mf_rtcp_compound_t c;
  mf_rtcp_compound_init(&c, cbuf, sizeof cbuf);
  mf_rtcp_compound_add_rr(&c, &rr);
  size_t rr_len = c.len;
  mf_transport_feedback_add_remb(fb, &c, &rr, 2000);
  assert_int_equal(c.err, MF_OK);
  assert_true(c.len > rr_len);
  mf_rtcp_iter_t it;
  mf_rtcp_header_t h;
  mf_rtcp_iter_init(&it, cbuf, c.len);
  assert_int_equal(mf_rtcp_iter_next(&it, &h), MF_OK);
  assert_int_equal(mf_rtcp_iter_next(&it, &h), MF_OK);
  static mf_rtcp_remb_t remb;
  assert_int_equal(mf_rtcp_parse_remb(&h, &remb), MF_OK);
  assert_int_equal(remb.ssrc_count, 2);
  assert_int_equal(remb.ssrcs[0], 111);
  assert_int_equal(remb.ssrcs[1], 222);
  uint64_t want = (uint64_t)len * 100 * 8 * 3 / 2; /* 1 s of traffic × 1.5 */
  assert_true(remb.bitrate <= want && remb.bitrate > want * 99 / 100);
  /* a later producer with transport-cc switches the transport to TWCC */
  p->header_extension_count = 1;
  snprintf(p->header_extensions[0].uri, sizeof p->header_extensions[0].uri, "%s",
           MF_RTP_EXT_TRANSPORT_CC);
  p->header_extensions[0].id = 5;
  assert_int_equal(mf_transport_feedback_attach(&fb, p), MF_OK);
  mf_transport_feedback_get_stats(fb, &st);
  assert_false(st.remb);
  assert_int_equal(st.twcc_ext_id, 5);
  assert_int_equal(st.remb_sent, 1);
  mf_transport_feedback_destroy(fb);
  free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tables),
      cmocka_unit_test(test_reordered_status_is_large),
      cmocka_unit_test(test_late_packet_rereported),
      cmocka_unit_test(test_duplicates),
      cmocka_unit_test(test_seq_jump_restarts),
      cmocka_unit_test(test_ring_overflow_and_split),
      cmocka_unit_test(test_reference_time_wraps),
      cmocka_unit_test(test_due_empty_full),
      cmocka_unit_test(test_worst_case_fits),
      cmocka_unit_test(test_remb_estimator),
      cmocka_unit_test(test_transport_feedback_twcc),
      cmocka_unit_test(test_transport_feedback_remb),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
