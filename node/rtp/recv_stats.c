#include "node/rtp/recv_stats.h"

#include <string.h>

#define SEQ_MOD 65536u
#define DUP_MASK ((uint64_t)MF_RTP_RECV_DUP_WINDOW - 1)

_Static_assert((MF_RTP_RECV_DUP_WINDOW & (MF_RTP_RECV_DUP_WINDOW - 1)) == 0,
               "duplicate window must be a power of two");
_Static_assert(MF_RTP_RECV_DUP_WINDOW > MF_RTP_RECV_MAX_MISORDER,
               "every accepted late packet must fall inside the duplicate window");
_Static_assert(MF_RTP_RECV_DUP_WINDOW > MF_RTP_RECV_MAX_DROPOUT / 2,
               "window sanity");

static int64_t ext_max(const mf_rtp_recv_stats_t *s) {
  return (int64_t)s->cycles + s->max_seq;
}

static void dup_set(mf_rtp_recv_stats_t *s, int64_t ext) {
  uint64_t i = (uint64_t)ext & DUP_MASK;
  s->dup_bits[i >> 6] |= (uint64_t)1 << (i & 63);
}

static void dup_clear(mf_rtp_recv_stats_t *s, int64_t ext) {
  uint64_t i = (uint64_t)ext & DUP_MASK;
  s->dup_bits[i >> 6] &= ~((uint64_t)1 << (i & 63));
}

static bool dup_test(const mf_rtp_recv_stats_t *s, int64_t ext) {
  uint64_t i = (uint64_t)ext & DUP_MASK;
  return (s->dup_bits[i >> 6] >> (i & 63)) & 1;
}

/* RFC 3550 A.1 init_seq, plus the state that depends on the sequence base. */
static void init_seq(mf_rtp_recv_stats_t *s, uint16_t seq) {
  s->max_seq = seq;
  s->cycles = 0;
  s->base_ext = seq;
  s->bad_seq = SEQ_MOD + 1;
  s->received = 0;
  s->expected_prior = 0;
  s->received_prior = 0;
  s->expected_prior_score = 0;
  s->received_prior_score = 0;
  memset(s->dup_bits, 0, sizeof s->dup_bits);
  dup_set(s, seq);
  /* A restart usually comes with a new timestamp base: the old transit means nothing. */
  s->has_transit = false;
}

void mf_rtp_recv_stats_init(mf_rtp_recv_stats_t *s, uint32_t ssrc, uint32_t clock_rate,
                            uint8_t probation) {
  memset(s, 0, sizeof *s);
  s->ssrc = ssrc;
  s->clock_rate = clock_rate;
  s->inactivity_ms = MF_RTP_RECV_INACTIVITY_MS;
  s->probation_init = probation;
  s->bad_seq = SEQ_MOD + 1;
  s->inactive = true;
  s->score = 0;
}

static void score_reset(mf_rtp_recv_stats_t *s, uint8_t score) {
  s->score = score;
  s->score_count = 0;
}

static void update_jitter(mf_rtp_recv_stats_t *s, uint32_t rtp_ts, uint64_t arrival_ms) {
  if (s->clock_rate == 0) return;
  uint32_t arrival = (uint32_t)(arrival_ms * s->clock_rate / 1000);
  uint32_t transit = arrival - rtp_ts;
  if (s->has_transit) {
    int32_t d = (int32_t)(transit - s->last_transit);
    uint32_t ad = d < 0 ? (uint32_t)0 - (uint32_t)d : (uint32_t)d;
    /* A transit change of 5 s or more is a timestamp jump, not network jitter. */
    if ((uint64_t)ad < (uint64_t)s->clock_rate * 5) {
      s->jitter_q4 += ad - ((s->jitter_q4 + 8) >> 4);
    }
  }
  s->last_transit = transit;
  s->has_transit = true;
}

/* Advances the highest sequence number to ext, clearing the duplicate bits of the
 * sequence numbers skipped (they may still arrive late). */
static void advance(mf_rtp_recv_stats_t *s, int64_t new_ext) {
  int64_t old = ext_max(s);
  if (new_ext - old >= MF_RTP_RECV_DUP_WINDOW) {
    memset(s->dup_bits, 0, sizeof s->dup_bits);
  } else {
    for (int64_t e = old + 1; e < new_ext; e++) dup_clear(s, e);
  }
  dup_set(s, new_ext);
}

mf_rtp_recv_result_t mf_rtp_recv_stats_on_packet(mf_rtp_recv_stats_t *s, uint16_t seq,
                                                 uint32_t rtp_ts, size_t size,
                                                 uint64_t arrival_ms, bool is_rtx) {
  mf_rtp_recv_result_t res;
  if (is_rtx) s->packets_retransmitted++;

  if (!s->started) {
    s->started = true;
    init_seq(s, seq);
    if (s->probation_init > 1) {
      /* RFC: max_seq = seq - 1 so that this packet counts as the first in sequence. */
      s->max_seq = (uint16_t)(seq - 1);
      s->probation = s->probation_init;
    } else {
      res = MF_RTP_RECV_NEW;
      goto valid;
    }
  }

  if (s->probation) {
    if (seq == (uint16_t)(s->max_seq + 1)) {
      s->probation--;
      s->max_seq = seq;
      if (s->probation == 0) {
        init_seq(s, seq);
        res = MF_RTP_RECV_NEW;
        goto valid;
      }
    } else {
      s->probation = (uint8_t)(s->probation_init - 1);
      s->max_seq = seq;
    }
    s->packets_discarded++;
    return MF_RTP_RECV_PROBATION;
  }

  uint16_t udelta = (uint16_t)(seq - s->max_seq);
  if (udelta == 0) {
    s->packets_duplicated++;
    return MF_RTP_RECV_DUPLICATE;
  }
  if (udelta < MF_RTP_RECV_MAX_DROPOUT) {
    /* In order, with a permissible gap. */
    uint32_t cycles = s->cycles;
    if (seq < s->max_seq) cycles += SEQ_MOD; /* wrapped */
    advance(s, (int64_t)cycles + seq);
    s->cycles = cycles;
    s->max_seq = seq;
    res = MF_RTP_RECV_NEW;
  } else if (udelta <= SEQ_MOD - MF_RTP_RECV_MAX_MISORDER) {
    /* A very large jump: if the next packet follows this one, the sender restarted.
     * Retransmissions never signal a restart: old RTX packets of consecutive lost
     * sequence numbers (common after a burst loss) would otherwise re-base the stream. */
    if (is_rtx) {
      s->packets_discarded++;
      return MF_RTP_RECV_BAD_SEQ;
    }
    if (seq == s->bad_seq) {
      init_seq(s, seq);
      res = MF_RTP_RECV_RESYNC;
    } else {
      s->bad_seq = (uint16_t)(seq + 1);
      s->packets_discarded++;
      return MF_RTP_RECV_BAD_SEQ;
    }
  } else {
    /* Late (reordered or retransmitted), within MAX_MISORDER. */
    int64_t ext = ext_max(s) - (int64_t)(SEQ_MOD - udelta);
    if (dup_test(s, ext)) {
      s->packets_duplicated++;
      return MF_RTP_RECV_DUPLICATE;
    }
    dup_set(s, ext);
    /* An early packet arriving after the first one widens the range instead of making
     * received exceed expected. */
    if (ext < s->base_ext) s->base_ext = ext;
    res = MF_RTP_RECV_LATE;
  }

valid:
  s->received++;
  s->packets++;
  s->bytes += size;
  s->last_packet_ms = arrival_ms;
  if (s->inactive) {
    s->inactive = false;
    score_reset(s, 10);
  }
  if (is_rtx) {
    s->packets_repaired++;
  } else if (res == MF_RTP_RECV_NEW || res == MF_RTP_RECV_RESYNC) {
    update_jitter(s, rtp_ts, arrival_ms);
  }
  return res;
}

uint32_t mf_rtp_recv_stats_ext_max_seq(const mf_rtp_recv_stats_t *s) {
  return (uint32_t)ext_max(s);
}

static int64_t expected64(const mf_rtp_recv_stats_t *s) {
  if (!s->started || s->probation) return 0;
  return ext_max(s) - s->base_ext + 1;
}

uint32_t mf_rtp_recv_stats_expected(const mf_rtp_recv_stats_t *s) {
  return (uint32_t)expected64(s);
}

int64_t mf_rtp_recv_stats_lost(const mf_rtp_recv_stats_t *s) {
  if (!s->started || s->probation) return 0;
  return expected64(s) - (int64_t)s->received;
}

uint32_t mf_rtp_recv_stats_jitter(const mf_rtp_recv_stats_t *s) { return s->jitter_q4 >> 4; }

void mf_rtp_recv_stats_on_sr(mf_rtp_recv_stats_t *s, uint32_t ntp_sec, uint32_t ntp_frac,
                             uint32_t rtp_ts, uint64_t now_ms) {
  s->has_sr = true;
  s->lsr = (ntp_sec << 16) | (ntp_frac >> 16);
  s->sr_recv_ms = now_ms;
  s->sr_ntp = ((uint64_t)ntp_sec << 32) | ntp_frac;
  s->sr_rtp_ts = rtp_ts;
}

bool mf_rtp_recv_stats_fill_report_block(mf_rtp_recv_stats_t *s, uint64_t now_ms,
                                         mf_rtcp_report_block_t *out) {
  memset(out, 0, sizeof *out);
  out->ssrc = s->ssrc;
  if (s->has_sr) {
    out->lsr = s->lsr;
    uint64_t delay = now_ms > s->sr_recv_ms ? now_ms - s->sr_recv_ms : 0;
    uint64_t dlsr = delay * 65536 / 1000;
    out->dlsr = dlsr > UINT32_MAX ? UINT32_MAX : (uint32_t)dlsr;
  }
  out->jitter = mf_rtp_recv_stats_jitter(s);
  if (!s->started || s->probation) return false;

  int64_t expected = expected64(s);
  int64_t lost = expected - (int64_t)s->received;
  if (lost > 0x7fffff) lost = 0x7fffff;
  if (lost < -0x800000) lost = -0x800000;
  out->cumulative_lost = (int32_t)lost;
  out->highest_seq = (uint32_t)ext_max(s);

  uint32_t expected_interval = (uint32_t)expected - s->expected_prior;
  uint32_t received_interval = s->received - s->received_prior;
  s->expected_prior = (uint32_t)expected;
  s->received_prior = s->received;
  int64_t lost_interval = (int64_t)expected_interval - (int64_t)received_interval;
  uint32_t fraction = 0;
  if (expected_interval != 0 && lost_interval > 0) {
    fraction = (uint32_t)(((uint64_t)lost_interval << 8) / expected_interval);
    if (fraction > 255) fraction = 255;
  }
  s->fraction_lost = (uint8_t)fraction;
  out->fraction_lost = (uint8_t)fraction;
  return true;
}

bool mf_rtp_recv_stats_rtp_to_ntp(const mf_rtp_recv_stats_t *s, uint32_t rtp_ts,
                                  uint64_t *ntp) {
  if (!s->has_sr || s->clock_rate == 0) return false;
  int32_t diff = (int32_t)(rtp_ts - s->sr_rtp_ts);
  uint64_t mag = diff < 0 ? (uint64_t)0 - (uint64_t)(int64_t)diff : (uint64_t)diff;
  uint64_t secs = mag / s->clock_rate;
  uint64_t rem = mag % s->clock_rate;
  uint64_t delta = (secs << 32) + (rem << 32) / s->clock_rate;
  *ntp = diff < 0 ? s->sr_ntp - delta : s->sr_ntp + delta;
  return true;
}

static uint8_t score_sample(uint32_t expected, uint32_t received, uint32_t repaired,
                            uint32_t retransmitted) {
  if (expected == 0) return 10;
  uint32_t lost = expected > received ? expected - received : 0;
  if (repaired > received) repaired = received;
  if (retransmitted < repaired) retransmitted = repaired;
  double w = 0.0;
  if (retransmitted > 0 && received > 0) {
    double base = 1.0 / (1.0 + (double)repaired / (double)received);
    w = base * base * base * base * ((double)repaired / (double)retransmitted);
  }
  double lost_eff = (double)lost + (double)repaired * (1.0 - w);
  double ratio = ((double)expected - lost_eff) / (double)expected;
  if (ratio < 0.0) ratio = 0.0;
  if (ratio > 1.0) ratio = 1.0;
  double v = ratio * ratio * ratio * ratio * 10.0 + 0.5;
  return (uint8_t)(v > 10.0 ? 10 : (unsigned)v);
}

uint8_t mf_rtp_recv_stats_update_score(mf_rtp_recv_stats_t *s, uint64_t now_ms) {
  uint32_t total_expected = (uint32_t)expected64(s);
  uint32_t expected = total_expected - s->expected_prior_score;
  uint32_t received = s->received - s->received_prior_score;
  uint32_t repaired = (uint32_t)(s->packets_repaired - s->repaired_prior_score);
  uint32_t retransmitted = (uint32_t)(s->packets_retransmitted - s->retransmitted_prior_score);
  s->expected_prior_score = total_expected;
  s->received_prior_score = s->received;
  s->repaired_prior_score = s->packets_repaired;
  s->retransmitted_prior_score = s->packets_retransmitted;

  if (s->inactive) return s->score;
  if (now_ms >= s->last_packet_ms && now_ms - s->last_packet_ms >= s->inactivity_ms) {
    s->inactive = true;
    score_reset(s, 0);
    return 0;
  }

  /* A resync can make the interval's expected smaller than its received. */
  if ((int32_t)expected < 0) expected = 0;
  uint8_t sample = score_sample(expected, received, repaired, retransmitted);

  if (s->score_count == MF_RTP_RECV_SCORE_HISTORY) {
    memmove(s->score_history, s->score_history + 1, MF_RTP_RECV_SCORE_HISTORY - 1);
    s->score_count--;
  }
  s->score_history[s->score_count++] = sample;
  /* Weighted average: the i-th oldest sample weighs i. */
  uint32_t weights = 0, total = 0;
  for (uint32_t i = 0; i < s->score_count; i++) {
    weights += i + 1;
    total += (i + 1) * s->score_history[i];
  }
  s->score = (uint8_t)((2 * total + weights) / (2 * weights));
  return s->score;
}

int64_t mf_rtp_rtt_from_report(uint32_t lsr, uint32_t dlsr, uint64_t now_ntp) {
  if (lsr == 0) return -1;
  uint32_t now_mid = (uint32_t)(now_ntp >> 16);
  int32_t rtt = (int32_t)(now_mid - lsr - dlsr);
  if (rtt < 0) return -1;
  return ((int64_t)rtt * 1000 + 32768) / 65536;
}
