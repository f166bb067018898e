/* Tests for node/rtp/recv_stats.h: RFC 3550 A.1 sequence tracking on tables of sequences
 * (in order, loss, reorder, duplicates, wraparound, big jumps, probation), A.3 report block
 * fields and the fraction-lost interval, A.8 jitter against a hand-computed example, LSR /
 * DLSR, the NTP <-> RTP mapping, RTT math and the score. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/rtp/recv_stats.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

enum { NEW = MF_RTP_RECV_NEW, LATE = MF_RTP_RECV_LATE, RESYNC = MF_RTP_RECV_RESYNC,
       DUP = MF_RTP_RECV_DUPLICATE, BAD = MF_RTP_RECV_BAD_SEQ,
       PROB = MF_RTP_RECV_PROBATION };

typedef struct {
  uint16_t seq;
  int expect;
} step_t;

typedef struct {
  const char *name;
  uint8_t probation;
  const step_t *steps;
  size_t count;
  uint32_t ext_max;
  uint32_t expected;
  int64_t lost;
  uint64_t packets;
  uint64_t duplicates;
  uint64_t discarded;
} seq_case_t;

#define STEPS(...) (const step_t[]){__VA_ARGS__}, N(((const step_t[]){__VA_ARGS__}))

static const seq_case_t seq_cases[] = {
    {"in order", 0, STEPS({100, NEW}, {101, NEW}, {102, NEW}, {103, NEW}, {104, NEW}), 104, 5,
     0, 5, 0, 0},
    {"loss", 0, STEPS({0, NEW}, {1, NEW}, {2, NEW}, {5, NEW}, {6, NEW}), 6, 7, 2, 5, 0, 0},
    {"reorder", 0, STEPS({0, NEW}, {1, NEW}, {3, NEW}, {2, LATE}, {4, NEW}), 4, 5, 0, 5, 0, 0},
    {"duplicates", 0, STEPS({0, NEW}, {1, NEW}, {1, DUP}, {2, NEW}, {1, DUP}, {0, DUP}), 2, 3, 0,
     3, 3, 0},
    {"late duplicate after gap", 0,
     STEPS({10, NEW}, {14, NEW}, {12, LATE}, {12, DUP}, {11, LATE}, {13, LATE}, {13, DUP}), 14,
     5, 0, 5, 2, 0},
    {"wraparound", 0,
     STEPS({65533, NEW}, {65534, NEW}, {65535, NEW}, {0, NEW}, {1, NEW}, {2, NEW}),
     65536 + 2, 6, 0, 6, 0, 0},
    {"reorder across wrap", 0,
     STEPS({65534, NEW}, {65535, NEW}, {1, NEW}, {0, LATE}, {2, NEW}), 65536 + 2, 5, 0, 5, 0,
     0},
    {"late from before the wrap", 0,
     STEPS({65535, NEW}, {0, NEW}, {1, NEW}, {65534, LATE}), 65536 + 1, 4, 0, 4, 0, 0},
    {"early packet arrives late (base moves back)", 0,
     STEPS({100, NEW}, {101, NEW}, {99, LATE}, {98, LATE}), 101, 4, 0, 4, 0, 0},
    {"loss across wrap", 0, STEPS({65530, NEW}, {3, NEW}), 65536 + 3, 10, 8, 2, 0, 0},
    {"max dropout - 1 is a gap", 0, STEPS({0, NEW}, {2999, NEW}), 2999, 3000, 2998, 2, 0, 0},
    {"big jump then restart", 0,
     STEPS({0, NEW}, {1, NEW}, {2, NEW}, {3002, BAD}, {3003, RESYNC}, {3004, NEW}), 3004, 2, 0,
     5, 0, 1},
    {"max dropout is a jump", 0, STEPS({10, NEW}, {3010, BAD}, {11, NEW}), 11, 2, 0, 2, 0, 1},
    {"big jump not confirmed", 0,
     STEPS({0, NEW}, {1, NEW}, {40000, BAD}, {2, NEW}, {40005, BAD}, {3, NEW}), 3, 4, 0, 4, 0,
     2},
    {"restart confirmed after an interleaved packet", 0,
     STEPS({0, NEW}, {40000, BAD}, {1, NEW}, {40001, RESYNC}), 40001, 1, 0, 3, 0, 1},
    {"backwards jump beyond misorder", 0,
     STEPS({5000, NEW}, {3000, BAD}, {5001, NEW}, {3501, BAD}, {3502, LATE}, {3502, DUP}),
     5001, 1500, 1497, 3, 1, 2},
    {"backwards jump restart", 0,
     STEPS({5000, NEW}, {5001, NEW}, {10, BAD}, {11, RESYNC}, {12, NEW}), 12, 2, 0, 4, 0, 1},
    {"probation rfc", MF_RTP_RECV_PROBATION_RFC,
     STEPS({10, PROB}, {11, NEW}, {12, NEW}, {14, NEW}), 14, 4, 1, 3, 0, 1},
    {"probation reset by a gap", MF_RTP_RECV_PROBATION_RFC,
     STEPS({10, PROB}, {20, PROB}, {21, NEW}, {22, NEW}), 22, 2, 0, 2, 0, 2},
    {"probation 3", 3, STEPS({7, PROB}, {8, PROB}, {9, NEW}, {10, NEW}), 10, 2, 0, 2, 0, 2},
    {"probation at wrap", MF_RTP_RECV_PROBATION_RFC,
     STEPS({65535, PROB}, {0, NEW}, {1, NEW}), 1, 2, 0, 2, 0, 1},
};

static void test_sequence_tables(void **state) {
  (void)state;
  for (size_t c = 0; c < N(seq_cases); c++) {
    const seq_case_t *tc = &seq_cases[c];
    mf_rtp_recv_stats_t s;
    mf_rtp_recv_stats_init(&s, 0x1234, 90000, tc->probation);
    for (size_t i = 0; i < tc->count; i++) {
      mf_rtp_recv_result_t r =
          mf_rtp_recv_stats_on_packet(&s, tc->steps[i].seq, 0, 100, 1000 + i, false);
      if ((int)r != tc->steps[i].expect) {
        print_error("case '%s' step %zu (seq %u): got %d want %d\n", tc->name, i,
                    tc->steps[i].seq, (int)r, tc->steps[i].expect);
        fail();
      }
    }
    if (mf_rtp_recv_stats_ext_max_seq(&s) != tc->ext_max ||
        mf_rtp_recv_stats_expected(&s) != tc->expected ||
        mf_rtp_recv_stats_lost(&s) != tc->lost || s.packets != tc->packets ||
        s.packets_duplicated != tc->duplicates || s.packets_discarded != tc->discarded) {
      print_error("case '%s': ext_max %u expected %u lost %lld packets %llu dup %llu "
                  "discarded %llu\n",
                  tc->name, mf_rtp_recv_stats_ext_max_seq(&s), mf_rtp_recv_stats_expected(&s),
                  (long long)mf_rtp_recv_stats_lost(&s), (unsigned long long)s.packets,
                  (unsigned long long)s.packets_duplicated,
                  (unsigned long long)s.packets_discarded);
      fail();
    }
    assert_int_equal(s.bytes, tc->packets * 100);
  }
}

static void test_valid_results(void **state) {
  (void)state;
  assert_true(mf_rtp_recv_result_is_valid(MF_RTP_RECV_NEW));
  assert_true(mf_rtp_recv_result_is_valid(MF_RTP_RECV_LATE));
  assert_true(mf_rtp_recv_result_is_valid(MF_RTP_RECV_RESYNC));
  assert_false(mf_rtp_recv_result_is_valid(MF_RTP_RECV_DUPLICATE));
  assert_false(mf_rtp_recv_result_is_valid(MF_RTP_RECV_BAD_SEQ));
  assert_false(mf_rtp_recv_result_is_valid(MF_RTP_RECV_PROBATION));
}

/* Many wraps: the extended sequence number keeps counting and nothing is lost. */
static void test_long_run_wraps(void **state) {
  (void)state;
  mf_rtp_recv_stats_t s;
  mf_rtp_recv_stats_init(&s, 1, 48000, 0);
  uint16_t seq = 60000;
  for (uint32_t i = 0; i < 3 * 65536u; i++, seq++) {
    assert_int_equal(mf_rtp_recv_stats_on_packet(&s, seq, i * 960, 50, i * 20, false), NEW);
  }
  assert_int_equal(mf_rtp_recv_stats_expected(&s), 3 * 65536u);
  assert_int_equal(mf_rtp_recv_stats_lost(&s), 0);
  assert_int_equal(mf_rtp_recv_stats_ext_max_seq(&s), 60000u + 3 * 65536u - 1);
  assert_int_equal(s.cycles, 3 * 65536u);
}

static void test_rtx_counters(void **state) {
  (void)state;
  mf_rtp_recv_stats_t s;
  mf_rtp_recv_stats_init(&s, 1, 90000, 0);
  assert_int_equal(mf_rtp_recv_stats_on_packet(&s, 0, 0, 10, 0, false), NEW);
  assert_int_equal(mf_rtp_recv_stats_on_packet(&s, 1, 0, 10, 0, false), NEW);
  assert_int_equal(mf_rtp_recv_stats_on_packet(&s, 3, 0, 10, 0, false), NEW);
  assert_int_equal(mf_rtp_recv_stats_lost(&s), 1);
  assert_int_equal(mf_rtp_recv_stats_on_packet(&s, 2, 0, 10, 5, true), LATE);
  assert_int_equal(mf_rtp_recv_stats_lost(&s), 0);
  assert_int_equal(mf_rtp_recv_stats_on_packet(&s, 1, 0, 10, 6, true), DUP);
  /* An RTX of the newest missing packet arrives before anything newer. */
  assert_int_equal(mf_rtp_recv_stats_on_packet(&s, 4, 0, 10, 7, true), NEW);
  assert_int_equal(s.packets_retransmitted, 3);
  assert_int_equal(s.packets_repaired, 2);
  assert_int_equal(s.packets_duplicated, 1);
  assert_int_equal(s.packets, 5);
  assert_int_equal(s.bytes, 50);
  assert_int_equal(s.last_packet_ms, 7);

  /* Very old retransmissions of consecutive packets are rejected, never a restart. */
  for (uint16_t q = 5; q < 2000; q++) mf_rtp_recv_stats_on_packet(&s, q, 0, 10, 8, false);
  assert_int_equal(mf_rtp_recv_stats_on_packet(&s, 100, 0, 10, 9, true), BAD);
  assert_int_equal(mf_rtp_recv_stats_on_packet(&s, 101, 0, 10, 9, true), BAD);
  assert_int_equal(mf_rtp_recv_stats_on_packet(&s, 102, 0, 10, 9, true), BAD);
  assert_int_equal(mf_rtp_recv_stats_ext_max_seq(&s), 1999);
  assert_int_equal(mf_rtp_recv_stats_lost(&s), 0);
  assert_int_equal(s.packets_discarded, 3);
  /* ...and an RTX does not confirm a restart armed by a media packet either. */
  assert_int_equal(mf_rtp_recv_stats_on_packet(&s, 30000, 0, 10, 9, false), BAD);
  assert_int_equal(mf_rtp_recv_stats_on_packet(&s, 30001, 0, 10, 9, true), BAD);
  assert_int_equal(mf_rtp_recv_stats_ext_max_seq(&s), 1999);
}

/* Hand-computed A.8 example: clock 8000 Hz, 20 ms packets (160 ticks each), arrivals at
 * 0, 20, 45, 60, 80 ms -> arrival in RTP units 0, 160, 360, 480, 640; transit 0, 0, 40, 0, 0
 * -> |D| = 0, 40, 40, 0. Fixed point J*16: 0 -> 0 -> 40 -> 40+40-3 = 77 -> 77-5 = 72;
 * reported jitter 72 >> 4 = 4 (the float recurrence gives 4.54). */
static void test_jitter_hand_example(void **state) {
  (void)state;
  mf_rtp_recv_stats_t s;
  mf_rtp_recv_stats_init(&s, 1, 8000, 0);
  static const uint64_t arrival[] = {0, 20, 45, 60, 80};
  static const uint32_t q4[] = {0, 0, 40, 77, 72};
  for (size_t i = 0; i < N(arrival); i++) {
    mf_rtp_recv_stats_on_packet(&s, (uint16_t)(7 + i), (uint32_t)(5000 + 160 * i), 100,
                                1000000 + arrival[i], false);
    assert_int_equal(s.jitter_q4, q4[i]);
  }
  assert_int_equal(mf_rtp_recv_stats_jitter(&s), 4);

  /* Late, duplicate and RTX packets leave jitter alone. */
  mf_rtp_recv_stats_on_packet(&s, 13, 5000 + 160 * 6, 100, 1000000 + 120, false);
  uint32_t before = s.jitter_q4;
  mf_rtp_recv_stats_on_packet(&s, 12, 5000 + 160 * 5, 100, 1000000 + 500, false);
  mf_rtp_recv_stats_on_packet(&s, 12, 5000 + 160 * 5, 100, 1000000 + 900, true);
  mf_rtp_recv_stats_on_packet(&s, 13, 5000 + 160 * 6, 100, 1000000 + 999, false);
  assert_int_equal(s.jitter_q4, before);

  /* A timestamp jump of 5 s or more is not jitter. */
  mf_rtp_recv_stats_on_packet(&s, 14, 5000 + 160 * 7 + 8000 * 10, 100, 1000000 + 140, false);
  assert_int_equal(s.jitter_q4, before);
}

/* Timestamps and arrival wrapping around 2^32 in the RTP clock give the same jitter. */
static void test_jitter_wrap(void **state) {
  (void)state;
  mf_rtp_recv_stats_t s;
  mf_rtp_recv_stats_init(&s, 1, 90000, 0);
  uint32_t ts = 0xFFFFF000u;
  for (int i = 0; i < 100; i++) {
    mf_rtp_recv_stats_on_packet(&s, (uint16_t)i, ts + (uint32_t)i * 3000, 1000,
                                (uint64_t)i * 1000 / 30 + 47721858, false);
  }
  /* 1000/30 ms is 3000 ticks up to the 1 ms truncation: jitter stays below 90 ticks. */
  assert_true(mf_rtp_recv_stats_jitter(&s) < 90);
}

static void test_report_block(void **state) {
  (void)state;
  mf_rtp_recv_stats_t s;
  mf_rtcp_report_block_t rb;
  mf_rtp_recv_stats_init(&s, 0xCAFEBABE, 90000, 0);

  /* Nothing received yet: not reportable, but the SSRC is filled. */
  assert_false(mf_rtp_recv_stats_fill_report_block(&s, 0, &rb));
  assert_int_equal(rb.ssrc, 0xCAFEBABE);
  assert_int_equal(rb.highest_seq, 0);

  /* Interval 1: 65530..65539 (wrapping) with 65533 and 65534 lost. */
  for (uint32_t i = 0; i < 10; i++) {
    uint16_t seq = (uint16_t)(65530 + i);
    if (seq == 65533 || seq == 65534) continue;
    mf_rtp_recv_stats_on_packet(&s, seq, i * 3000, 1200, 1000 + i * 33, false);
  }
  mf_rtp_recv_stats_on_sr(&s, 0x12345678, 0x9ABCDEF0, 12345, 2000);
  assert_true(mf_rtp_recv_stats_fill_report_block(&s, 2500, &rb));
  assert_int_equal(rb.ssrc, 0xCAFEBABE);
  assert_int_equal(rb.fraction_lost, (2 << 8) / 10); /* 51 */
  assert_int_equal(rb.cumulative_lost, 2);
  assert_int_equal(rb.highest_seq, 65536 + 3);
  assert_int_equal(rb.lsr, 0x56789ABC);
  assert_int_equal(rb.dlsr, 32768); /* 0.5 s */
  assert_int_equal(rb.jitter, mf_rtp_recv_stats_jitter(&s));
  assert_int_equal(s.fraction_lost, 51);

  /* Interval 2: everything arrives, plus a late copy of a lost one: fraction 0 and the
   * cumulative count goes down. */
  for (uint32_t i = 10; i < 20; i++) {
    mf_rtp_recv_stats_on_packet(&s, (uint16_t)(65530 + i), i * 3000, 1200, 1000 + i * 33,
                                false);
  }
  mf_rtp_recv_stats_on_packet(&s, 65533, 3 * 3000, 1200, 1700, true);
  assert_true(mf_rtp_recv_stats_fill_report_block(&s, 3000, &rb));
  assert_int_equal(rb.fraction_lost, 0);
  assert_int_equal(rb.cumulative_lost, 1);
  assert_int_equal(rb.highest_seq, 65536 + 13);
  assert_int_equal(rb.dlsr, 65536);

  /* Interval 3: nothing new: fraction 0. Interval 4: all 4 expected lost except 1 -> 3/4. */
  assert_true(mf_rtp_recv_stats_fill_report_block(&s, 3000, &rb));
  assert_int_equal(rb.fraction_lost, 0);
  mf_rtp_recv_stats_on_packet(&s, 65530 + 24 - 65536, 0, 1200, 4000, false);
  assert_true(mf_rtp_recv_stats_fill_report_block(&s, 4000, &rb));
  assert_int_equal(rb.fraction_lost, (4 << 8) / 5); /* 204: 4 of 5 lost */
  assert_int_equal(rb.cumulative_lost, 5);

  /* Clock going backwards never gives a huge DLSR. */
  assert_true(mf_rtp_recv_stats_fill_report_block(&s, 1000, &rb));
  assert_int_equal(rb.dlsr, 0);
  /* DLSR saturates instead of wrapping. */
  assert_true(mf_rtp_recv_stats_fill_report_block(&s, 2000 + 70000000ull, &rb));
  assert_int_equal(rb.dlsr, UINT32_MAX);
}

static void test_report_block_all_lost_and_clamp(void **state) {
  (void)state;
  mf_rtp_recv_stats_t s;
  mf_rtcp_report_block_t rb;
  mf_rtp_recv_stats_init(&s, 7, 90000, 0);
  mf_rtp_recv_stats_on_packet(&s, 0, 0, 1, 0, false);
  assert_true(mf_rtp_recv_stats_fill_report_block(&s, 0, &rb));
  assert_int_equal(rb.lsr, 0);
  assert_int_equal(rb.dlsr, 0);
  /* 2998 lost for every received packet: fraction rounds down to 255, never 256. */
  mf_rtp_recv_stats_on_packet(&s, 2999, 0, 1, 0, false);
  assert_true(mf_rtp_recv_stats_fill_report_block(&s, 0, &rb));
  assert_int_equal(rb.fraction_lost, 255);

  /* Cumulative loss beyond the 24-bit field is clamped. */
  uint16_t seq = 2999;
  for (int guard = 0; mf_rtp_recv_stats_lost(&s) <= 0x7fffff; guard++) {
    assert_true(guard < 3000); /* 2998 more lost per packet: ~2800 steps */
    seq = (uint16_t)(seq + 2999);
    assert_int_equal(mf_rtp_recv_stats_on_packet(&s, seq, 0, 1, 0, false), NEW);
  }
  assert_true(mf_rtp_recv_stats_fill_report_block(&s, 0, &rb));
  assert_int_equal(rb.cumulative_lost, 0x7fffff);
  assert_int_equal(rb.highest_seq, mf_rtp_recv_stats_ext_max_seq(&s));
  assert_true(mf_rtp_recv_stats_ext_max_seq(&s) > 65536u * 100);
}

static void test_report_block_probation_and_resync(void **state) {
  (void)state;
  mf_rtp_recv_stats_t s;
  mf_rtcp_report_block_t rb;
  mf_rtp_recv_stats_init(&s, 7, 90000, MF_RTP_RECV_PROBATION_RFC);
  mf_rtp_recv_stats_on_packet(&s, 500, 0, 1, 0, false);
  assert_false(mf_rtp_recv_stats_fill_report_block(&s, 0, &rb));
  assert_int_equal(mf_rtp_recv_stats_expected(&s), 0);
  mf_rtp_recv_stats_on_packet(&s, 501, 0, 1, 0, false);
  mf_rtp_recv_stats_on_packet(&s, 503, 0, 1, 0, false);
  assert_true(mf_rtp_recv_stats_fill_report_block(&s, 0, &rb));
  assert_int_equal(rb.cumulative_lost, 1);
  assert_int_equal(rb.highest_seq, 503);
  /* Restart: loss accounting re-bases on the new sequence. */
  assert_int_equal(mf_rtp_recv_stats_on_packet(&s, 30000, 0, 1, 0, false), BAD);
  assert_int_equal(mf_rtp_recv_stats_on_packet(&s, 30001, 0, 1, 0, false), RESYNC);
  assert_true(mf_rtp_recv_stats_fill_report_block(&s, 0, &rb));
  assert_int_equal(rb.cumulative_lost, 0);
  assert_int_equal(rb.highest_seq, 30001);
  assert_int_equal(rb.fraction_lost, 0);
}

static void test_rtp_to_ntp(void **state) {
  (void)state;
  mf_rtp_recv_stats_t s;
  uint64_t ntp;
  mf_rtp_recv_stats_init(&s, 7, 90000, 0);
  assert_false(mf_rtp_recv_stats_rtp_to_ntp(&s, 0, &ntp));
  mf_rtp_recv_stats_on_sr(&s, 1000, 0, 90000, 0);
  assert_int_equal(s.sr_ntp, 1000ull << 32);
  assert_true(mf_rtp_recv_stats_rtp_to_ntp(&s, 180000, &ntp));
  assert_int_equal(ntp, 1001ull << 32);
  assert_true(mf_rtp_recv_stats_rtp_to_ntp(&s, 45000, &ntp));
  assert_int_equal(ntp, (999ull << 32) | 0x80000000ull);
  /* Across the 32-bit timestamp wrap. */
  mf_rtp_recv_stats_on_sr(&s, 1000, 0, 0xFFFFFFF0u, 0);
  assert_true(mf_rtp_recv_stats_rtp_to_ntp(&s, 0x10, &ntp));
  assert_int_equal(ntp, (1000ull << 32) + (32ull << 32) / 90000);
  mf_rtp_recv_stats_init(&s, 7, 0, 0);
  mf_rtp_recv_stats_on_sr(&s, 1000, 0, 0, 0);
  assert_false(mf_rtp_recv_stats_rtp_to_ntp(&s, 0, &ntp));
}

typedef struct {
  uint32_t lsr, dlsr;
  uint64_t now_ntp;
  int64_t rtt_ms;
} rtt_case_t;

static void test_rtt(void **state) {
  (void)state;
  /* 0.6 s after an SR at NTP second 1000 (frac 0.6 * 2^32), receiver held it 0.5 s. */
  static const rtt_case_t cases[] = {
      {1000u << 16, 32768, (1000ull << 32) | 2576980378ull, 100},
      {1000u << 16, 0, (1000ull << 32) | 2576980378ull, 600},
      {1000u << 16, 32768, (1000ull << 32) | 0x80000000ull, 0},  /* exactly 0 */
      {1000u << 16, 32768, (1000ull << 32) | 0x7FFF0000ull, -1}, /* negative */
      {0, 0, 1ull << 40, -1},                                     /* no SR */
      /* lsr just before the 16-bit seconds wrap of the middle 32 bits. */
      {0xFFFF8000u, 0x4000, (0x10000ull << 32) | 0x40000000ull, 500},
      {0x00010000u, 0, (1ull << 32) | 0x00010000ull, 0}, /* 1/65536 s rounds to 0 ms */
      {0x00010000u, 0, (1ull << 32) | 0x00830000ull, 2}, /* 131/65536 s = 1.998 ms */
  };
  for (size_t i = 0; i < N(cases); i++) {
    int64_t got = mf_rtp_rtt_from_report(cases[i].lsr, cases[i].dlsr, cases[i].now_ntp);
    if (got != cases[i].rtt_ms) {
      print_error("rtt case %zu: got %lld want %lld\n", i, (long long)got,
                  (long long)cases[i].rtt_ms);
      fail();
    }
  }
}

/* Feeds `count` packets from *seq on, dropping those where drop(i) is true. */
static void feed(mf_rtp_recv_stats_t *s, uint16_t *seq, uint32_t count, uint32_t lose_every,
                 uint64_t now) {
  for (uint32_t i = 0; i < count; i++, (*seq)++) {
    if (lose_every && i % lose_every == 0) continue;
    mf_rtp_recv_stats_on_packet(s, *seq, 0, 100, now, false);
  }
}

static void test_score(void **state) {
  (void)state;
  mf_rtp_recv_stats_t s;
  uint16_t seq = 1000;
  uint64_t now = 10000;
  mf_rtp_recv_stats_init(&s, 7, 90000, 0);
  assert_int_equal(s.score, 0);
  assert_int_equal(mf_rtp_recv_stats_update_score(&s, now), 0); /* nothing yet */
  feed(&s, &seq, 1, 0, now);
  assert_int_equal(s.score, 10);

  for (int i = 0; i < 5; i++) {
    now += 1000;
    feed(&s, &seq, 100, 0, now);
    assert_int_equal(mf_rtp_recv_stats_update_score(&s, now), 10);
  }
  /* Nothing new expected, still active: sample 10. */
  assert_int_equal(mf_rtp_recv_stats_update_score(&s, now + 100), 10);

  /* Inactivity: 0 and the history is cleared; the next packet resets to 10. */
  assert_int_equal(mf_rtp_recv_stats_update_score(&s, now + 1500), 0);
  assert_int_equal(s.score_count, 0);
  assert_int_equal(mf_rtp_recv_stats_update_score(&s, now + 3000), 0);
  now += 4000;
  feed(&s, &seq, 1, 0, now);
  assert_int_equal(s.score, 10);

  /* Steady 5 % loss: sample round(0.95^4 * 10) = round(8.15) = 8; the average moves there. */
  mf_rtp_recv_stats_init(&s, 7, 90000, 0);
  seq = 0;
  feed(&s, &seq, 1, 0, now);
  for (int i = 0; i < 30; i++) {
    now += 1000;
    feed(&s, &seq, 100, 20, now);
    mf_rtp_recv_stats_update_score(&s, now);
  }
  assert_int_equal(s.score, 8);
  assert_int_equal(s.score_count, MF_RTP_RECV_SCORE_HISTORY);

  /* Steady 10 %: 0.9^4 = 0.656 -> 7; 20 %: 0.4096 -> 4; 50 %: 0.625 -> 1. */
  static const struct { uint32_t lose_every; uint8_t score; } steady[] = {
      {10, 7}, {5, 4}, {2, 1}, {0, 10}};
  for (size_t k = 0; k < N(steady); k++) {
    mf_rtp_recv_stats_init(&s, 7, 90000, 0);
    seq = 0;
    feed(&s, &seq, 1, 0, now);
    mf_rtp_recv_stats_update_score(&s, now);
    s.score_count = 0;
    for (int i = 0; i < 3; i++) {
      now += 1000;
      feed(&s, &seq, 100, steady[k].lose_every, now);
      mf_rtp_recv_stats_update_score(&s, now);
    }
    assert_int_equal(s.score, steady[k].score);
  }

  /* Weighted average of samples [10, 4]: (10*1 + 4*2) / 3 = 6. */
  mf_rtp_recv_stats_init(&s, 7, 90000, 0);
  seq = 0;
  feed(&s, &seq, 1, 0, now);
  mf_rtp_recv_stats_update_score(&s, now); /* sample 10 (only the first packet) */
  now += 1000;
  feed(&s, &seq, 100, 5, now);              /* 20 % lost -> sample 4 */
  assert_int_equal(mf_rtp_recv_stats_update_score(&s, now), 6);
  assert_int_equal(s.score_history[0], 10);
  assert_int_equal(s.score_history[1], 4);

  /* Losses repaired by RTX cost a little: 100 expected, 10 lost then all 10 repaired with
   * 10 retransmissions: w = (1/1.1)^4 = 0.683, lost_eff = 3.17, 0.968^4 * 10 = 8.79 -> 9. */
  mf_rtp_recv_stats_init(&s, 7, 90000, 0);
  seq = 0;
  feed(&s, &seq, 1, 0, now);
  mf_rtp_recv_stats_update_score(&s, now);
  s.score_count = 0;
  now += 1000;
  uint16_t first = seq;
  feed(&s, &seq, 100, 10, now);
  for (uint32_t i = 0; i < 100; i += 10) {
    assert_int_equal(
        mf_rtp_recv_stats_on_packet(&s, (uint16_t)(first + i), 0, 100, now, true), LATE);
  }
  assert_int_equal(mf_rtp_recv_stats_update_score(&s, now), 9);
  /* Same with 30 retransmissions for the 10 repairs: w = 0.228, lost_eff = 7.72,
   * 0.923^4 * 10 = 7.25 -> 7. */
  now += 1000;
  s.score_count = 0;
  first = seq;
  feed(&s, &seq, 100, 10, now);
  for (uint32_t i = 0; i < 100; i += 10) {
    mf_rtp_recv_stats_on_packet(&s, (uint16_t)(first + i), 0, 100, now, true);
    mf_rtp_recv_stats_on_packet(&s, (uint16_t)(first + i), 0, 100, now, true);
    mf_rtp_recv_stats_on_packet(&s, (uint16_t)(first + i), 0, 100, now, true);
  }
  assert_int_equal(mf_rtp_recv_stats_update_score(&s, now), 7);
  /* Half the packets lost and all repaired once: w = (1/1.5)^4 = 0.198, lost_eff = 40.1,
   * 0.599^4 * 10 = 1.29 -> 1 (heavy repair still shows). */
  now += 1000;
  s.score_count = 0;
  first = seq;
  feed(&s, &seq, 100, 2, now);
  for (uint32_t i = 0; i < 100; i += 2) {
    mf_rtp_recv_stats_on_packet(&s, (uint16_t)(first + i), 0, 100, now, true);
  }
  assert_int_equal(mf_rtp_recv_stats_lost(&s), 0);
  assert_int_equal(mf_rtp_recv_stats_update_score(&s, now), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sequence_tables),
      cmocka_unit_test(test_valid_results),
      cmocka_unit_test(test_long_run_wraps),
      cmocka_unit_test(test_rtx_counters),
      cmocka_unit_test(test_jitter_hand_example),
      cmocka_unit_test(test_jitter_wrap),
      cmocka_unit_test(test_report_block),
      cmocka_unit_test(test_report_block_all_lost_and_clamp),
      cmocka_unit_test(test_report_block_probation_and_resync),
      cmocka_unit_test(test_rtp_to_ntp),
      cmocka_unit_test(test_rtt),
      cmocka_unit_test(test_score),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
