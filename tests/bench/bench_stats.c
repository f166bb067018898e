#include "tests/bench/bench_stats.h"

#include <string.h>

/* ---- stamp ---- */

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

mf_err_t mf_bench_stamp_write(const mf_bench_stamp_t *stamp, uint8_t *buf, size_t capacity) {
  if (!stamp || !buf || capacity < MF_BENCH_STAMP_LEN) return MF_ERR_INVALID_ARG;
  put32(buf, MF_BENCH_STAMP_MAGIC);
  put32(buf + 4, stamp->stream_id);
  buf[8] = (uint8_t)(stamp->seq >> 8);
  buf[9] = (uint8_t)stamp->seq;
  buf[10] = 0;
  buf[11] = 0;
  put32(buf + 12, (uint32_t)(stamp->send_ns >> 32));
  put32(buf + 16, (uint32_t)stamp->send_ns);
  return MF_OK;
}

mf_err_t mf_bench_stamp_read(const uint8_t *buf, size_t len, mf_bench_stamp_t *out) {
  if (!buf || !out) return MF_ERR_INVALID_ARG;
  if (len < MF_BENCH_STAMP_LEN) return MF_ERR_PARSE;
  if (get32(buf) != MF_BENCH_STAMP_MAGIC || buf[10] || buf[11]) return MF_ERR_PARSE;
  out->stream_id = get32(buf + 4);
  out->seq = (uint16_t)(buf[8] << 8 | buf[9]);
  out->send_ns = (uint64_t)get32(buf + 12) << 32 | get32(buf + 16);
  return MF_OK;
}

/* ---- histogram ---- */

static unsigned bucket_of(uint64_t us) {
  if (us < MF_BENCH_HIST_LINEAR) return (unsigned)us;
  if (us >= MF_BENCH_HIST_MAX_US) return MF_BENCH_HIST_BUCKETS - 1;
  unsigned msb = 63u - (unsigned)__builtin_clzll(us); /* 7 .. MAX_BITS - 1 */
  unsigned shift = msb - 6;
  unsigned sub = (unsigned)(us >> shift) - MF_BENCH_HIST_SUB;
  return MF_BENCH_HIST_LINEAR + (msb - 7) * MF_BENCH_HIST_SUB + sub;
}

/* The highest value that lands in bucket i (UINT64_MAX for the overflow bucket). */
static uint64_t bucket_high(unsigned i) {
  if (i < MF_BENCH_HIST_LINEAR) return i;
  if (i >= MF_BENCH_HIST_BUCKETS - 1) return UINT64_MAX;
  unsigned k = i - MF_BENCH_HIST_LINEAR;
  unsigned msb = 7 + k / MF_BENCH_HIST_SUB, sub = k % MF_BENCH_HIST_SUB;
  return ((uint64_t)(MF_BENCH_HIST_SUB + sub + 1) << (msb - 6)) - 1;
}

void mf_bench_hist_init(mf_bench_hist_t *h) {
  memset(h, 0, sizeof(*h));
  h->min_us = UINT64_MAX;
}

void mf_bench_hist_add(mf_bench_hist_t *h, uint64_t us) {
  uint32_t *c = &h->counts[bucket_of(us)];
  if (*c != UINT32_MAX) (*c)++;
  h->total++;
  h->sum_us += us;
  if (us < h->min_us) h->min_us = us;
  if (us > h->max_us) h->max_us = us;
}

void mf_bench_hist_merge(mf_bench_hist_t *into, const mf_bench_hist_t *from) {
  for (unsigned i = 0; i < MF_BENCH_HIST_BUCKETS; i++) {
    uint64_t sum = (uint64_t)into->counts[i] + from->counts[i];
    into->counts[i] = sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
  }
  into->total += from->total;
  into->sum_us += from->sum_us;
  if (from->min_us < into->min_us) into->min_us = from->min_us;
  if (from->max_us > into->max_us) into->max_us = from->max_us;
}

uint64_t mf_bench_hist_percentile(const mf_bench_hist_t *h, double p) {
  if (h->total == 0) return 0;
  if (!(p > 0)) p = 0; /* also NaN */
  if (p > 100) p = 100;
  /* rank = ceil(p% of total), at least 1: the rank-th smallest sample. */
  double r = p / 100.0 * (double)h->total;
  uint64_t rank = (uint64_t)r;
  if ((double)rank < r) rank++;
  if (rank < 1) rank = 1;
  if (rank > h->total) rank = h->total;
  uint64_t seen = 0;
  for (unsigned i = 0; i < MF_BENCH_HIST_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= rank) {
      uint64_t v = bucket_high(i);
      if (v > h->max_us) v = h->max_us;
      if (v < h->min_us) v = h->min_us;
      return v;
    }
  }
  return h->max_us; /* only reachable when saturated counts undercount */
}

double mf_bench_hist_mean(const mf_bench_hist_t *h) {
  return h->total ? (double)h->sum_us / (double)h->total : 0;
}

/* ---- stream ---- */

#define WORDS (MF_BENCH_SEQ_WINDOW / 64)

static bool seen_get(const mf_bench_stream_t *s, int64_t ext) {
  uint64_t b = (uint64_t)ext % MF_BENCH_SEQ_WINDOW;
  return s->seen[b / 64] >> (b % 64) & 1;
}

static void seen_set(mf_bench_stream_t *s, int64_t ext) {
  uint64_t b = (uint64_t)ext % MF_BENCH_SEQ_WINDOW;
  s->seen[b / 64] |= UINT64_C(1) << (b % 64);
}

static void seen_clear(mf_bench_stream_t *s, int64_t ext) {
  uint64_t b = (uint64_t)ext % MF_BENCH_SEQ_WINDOW;
  s->seen[b / 64] &= ~(UINT64_C(1) << (b % 64));
}

void mf_bench_stream_init(mf_bench_stream_t *s, uint32_t stream_id) {
  memset(s, 0, sizeof(*s));
  s->stream_id = stream_id;
  mf_bench_hist_init(&s->latency);
}

static void record_latency(mf_bench_stream_t *s, uint64_t send_ns, uint64_t arrival_ns) {
  uint64_t us = 0;
  if (arrival_ns < send_ns)
    s->negative_latency++;
  else
    us = (arrival_ns - send_ns + 500) / 1000;
  mf_bench_hist_add(&s->latency, us);
}

mf_bench_pkt_t mf_bench_stream_record(mf_bench_stream_t *s, uint16_t seq, uint64_t send_ns,
                                      uint64_t arrival_ns) {
  /* Extended sequences start at 2^32 so that reorders before the first packet stay
   * positive (the bitmap index takes them modulo the window). */
  if (!s->started) {
    s->started = true;
    s->base_ext = s->max_ext = ((int64_t)1 << 32) + seq;
    seen_set(s, s->max_ext);
    s->received = 1;
    record_latency(s, send_ns, arrival_ns);
    return MF_BENCH_PKT_NEW;
  }
  int16_t delta = (int16_t)(uint16_t)(seq - (uint16_t)s->max_ext);
  int64_t ext = s->max_ext + delta;
  if (delta > 0) {
    /* Sequences between the old and the new highest have not arrived: clear their bits
     * (they may hold marks from one window ago). */
    if (delta >= MF_BENCH_SEQ_WINDOW) {
      memset(s->seen, 0, sizeof(s->seen));
    } else {
      for (int64_t e = s->max_ext + 1; e <= ext; e++) seen_clear(s, e);
    }
    s->max_ext = ext;
    seen_set(s, ext);
    s->received++;
    record_latency(s, send_ns, arrival_ns);
    return MF_BENCH_PKT_NEW;
  }
  uint64_t behind = (uint64_t)(s->max_ext - ext);
  if (behind >= MF_BENCH_SEQ_WINDOW) {
    s->too_late++;
    return MF_BENCH_PKT_TOO_LATE;
  }
  /* The bitmap holds exactly the sequences in (max - WINDOW, max]: advancing max clears
   * the positions it takes over, so a set bit here is this sequence's own arrival. */
  if (seen_get(s, ext)) {
    s->duplicates++;
    return MF_BENCH_PKT_DUPLICATE;
  }
  if (ext < s->base_ext) {
    /* Earlier than the first packet received (reordered at the start): the stream
     * started there, so the sequences in between count as expected. */
    s->base_ext = ext;
  }
  seen_set(s, ext);
  s->received++;
  if (behind > 0) {
    s->reordered++;
    if (behind > s->max_reorder_distance) s->max_reorder_distance = behind;
  }
  record_latency(s, send_ns, arrival_ns);
  return behind > 0 ? MF_BENCH_PKT_REORDERED : MF_BENCH_PKT_NEW;
}

mf_err_t mf_bench_stream_record_payload(mf_bench_stream_t *s, const uint8_t *payload,
                                        size_t len, uint64_t arrival_ns, mf_bench_pkt_t *kind) {
  if (!s) return MF_ERR_INVALID_ARG;
  mf_bench_stamp_t st;
  if (mf_bench_stamp_read(payload, len, &st) != MF_OK) {
    s->malformed++;
    return MF_ERR_PARSE;
  }
  if (st.stream_id != s->stream_id) {
    s->wrong_stream++;
    return MF_ERR_NOT_FOUND;
  }
  mf_bench_pkt_t k = mf_bench_stream_record(s, st.seq, st.send_ns, arrival_ns);
  if (kind) *kind = k;
  return MF_OK;
}

void mf_bench_stream_summary(const mf_bench_stream_t *s, mf_bench_summary_t *out) {
  memset(out, 0, sizeof(*out));
  if (s->started) out->expected = (uint64_t)(s->max_ext - s->base_ext + 1);
  out->received = s->received;
  out->lost = out->expected > out->received ? out->expected - out->received : 0;
  out->loss_ratio = out->expected ? (double)out->lost / (double)out->expected : 0;
  out->duplicates = s->duplicates;
  out->reordered = s->reordered;
  out->too_late = s->too_late;
  out->max_reorder_distance = s->max_reorder_distance;
  out->malformed = s->malformed;
  out->wrong_stream = s->wrong_stream;
  out->negative_latency = s->negative_latency;
  out->latency_p50_us = mf_bench_hist_percentile(&s->latency, 50);
  out->latency_p99_us = mf_bench_hist_percentile(&s->latency, 99);
  out->latency_min_us = s->latency.total ? s->latency.min_us : 0;
  out->latency_max_us = s->latency.max_us;
  out->latency_mean_us = mf_bench_hist_mean(&s->latency);
}
