/* The load generator's receive accounting: what a subscriber measures per stream.
 *
 * Every packet the generator sends carries a stamp in its RTP payload (magic, stream id,
 * 16-bit sequence, send time). The SFU rewrites the RTP header's sequence number and SSRC
 * but forwards the payload untouched, so the stamp is what a receiver can correlate with
 * what was sent. Where in the payload the stamp sits is the generator's choice (after the
 * VP8 payload descriptor, which an SFU may rewrite); these functions take a pointer to it.
 *
 * From (stamp sequence, send time, arrival time) a stream counts loss (16-bit sequence
 * numbers unwrapped), duplicates, reordering and latency (a fixed-size histogram with
 * ~1.6 % relative precision above 128 us, exact below; no allocation per packet: the
 * whole state is inside mf_bench_stream_t, which the caller allocates).
 *
 * Send and arrival times must come from the same clock (CLOCK_MONOTONIC of the one
 * generator process that both sends and receives).
 *
 * Thread affinity: none inside; a stream or histogram must be used by one thread at a time
 * (the generator's receiving thread). Merge histograms after the run for totals. */
#ifndef MF_BENCH_STATS_H
#define MF_BENCH_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* ---- the payload stamp ----
 * Wire format (network byte order), MF_BENCH_STAMP_LEN bytes:
 *   0  magic "MFB1"     4 bytes
 *   4  stream id        4 bytes
 *   8  sequence         2 bytes (the generator's own, independent of the RTP header's)
 *  10  reserved         2 bytes, zero (refused otherwise, so a later format can use them)
 *  12  send time ns     8 bytes */
#define MF_BENCH_STAMP_MAGIC 0x4d464231u /* "MFB1" */
#define MF_BENCH_STAMP_LEN 20

typedef struct {
  uint32_t stream_id;
  uint16_t seq;
  uint64_t send_ns;
} mf_bench_stamp_t;

/* Writes the stamp into buf[0..MF_BENCH_STAMP_LEN). MF_ERR_INVALID_ARG for NULL pointers or
 * capacity < MF_BENCH_STAMP_LEN (nothing written then). */
mf_err_t mf_bench_stamp_write(const mf_bench_stamp_t *stamp, uint8_t *buf, size_t capacity);

/* Reads a stamp from buf[0..len). MF_ERR_PARSE if len < MF_BENCH_STAMP_LEN, the magic is
 * wrong or the reserved bytes are not zero (out untouched then); MF_ERR_INVALID_ARG for NULL
 * pointers. Bytes after the stamp are ignored. */
mf_err_t mf_bench_stamp_read(const uint8_t *buf, size_t len, mf_bench_stamp_t *out);

/* ---- latency histogram ----
 * Values in microseconds. Below MF_BENCH_HIST_LINEAR one bucket per microsecond; above,
 * each power of two is split into MF_BENCH_HIST_SUB buckets; values at or above
 * MF_BENCH_HIST_MAX_US all land in the last bucket (their exact maximum is kept). */
#define MF_BENCH_HIST_SUB 64
#define MF_BENCH_HIST_LINEAR (2 * MF_BENCH_HIST_SUB)    /* 128 us */
#define MF_BENCH_HIST_MAX_BITS 25                       /* 2^25 us = 33.5 s */
#define MF_BENCH_HIST_MAX_US (UINT64_C(1) << MF_BENCH_HIST_MAX_BITS)
#define MF_BENCH_HIST_BUCKETS \
  (MF_BENCH_HIST_LINEAR + (MF_BENCH_HIST_MAX_BITS - 7) * MF_BENCH_HIST_SUB + 1)

typedef struct {
  uint32_t counts[MF_BENCH_HIST_BUCKETS]; /* saturate at UINT32_MAX */
  uint64_t total;
  uint64_t min_us, max_us, sum_us;
} mf_bench_hist_t;

void mf_bench_hist_init(mf_bench_hist_t *h);
void mf_bench_hist_add(mf_bench_hist_t *h, uint64_t us);
/* Adds from's samples into into (totals after the run: per stream, then per scenario). */
void mf_bench_hist_merge(mf_bench_hist_t *into, const mf_bench_hist_t *from);
/* The smallest bucket value v such that at least p % of the samples are <= v (bucket's
 * highest value, so never below the true percentile; clamped to the exact max and min).
 * p is clamped to [0, 100]. 0 for an empty histogram. */
uint64_t mf_bench_hist_percentile(const mf_bench_hist_t *h, double p);
/* Mean in microseconds, 0 when empty. */
double mf_bench_hist_mean(const mf_bench_hist_t *h);

/* ---- per-stream accounting ---- */

/* Sequence numbers this far behind the highest one seen are still checked for duplicates;
 * anything older is counted too_late and treated as lost (for media it is). */
#define MF_BENCH_SEQ_WINDOW 4096

typedef enum {
  MF_BENCH_PKT_NEW,       /* first arrival, at or after the highest sequence so far */
  MF_BENCH_PKT_REORDERED, /* first arrival, after a higher sequence had arrived */
  MF_BENCH_PKT_DUPLICATE, /* that sequence had already arrived */
  MF_BENCH_PKT_TOO_LATE,  /* more than MF_BENCH_SEQ_WINDOW behind: not counted received */
} mf_bench_pkt_t;

typedef struct {
  uint32_t stream_id;
  bool started;
  int64_t base_ext;  /* lowest extended sequence counted (the first, or an earlier reorder) */
  int64_t max_ext;   /* highest extended sequence seen */
  uint64_t received; /* distinct sequences received in time (NEW + REORDERED) */
  uint64_t duplicates, reordered, too_late;
  uint64_t max_reorder_distance; /* how far behind the highest a reordered packet was */
  uint64_t malformed, wrong_stream; /* payloads refused by mf_bench_stream_record_payload */
  uint64_t negative_latency;        /* arrival before send (clock misuse): recorded as 0 */
  uint64_t seen[MF_BENCH_SEQ_WINDOW / 64]; /* bit (ext % WINDOW): that sequence arrived */
  mf_bench_hist_t latency;                 /* of NEW and REORDERED packets */
} mf_bench_stream_t;

typedef struct {
  uint64_t expected; /* highest - lowest extended sequence + 1 */
  uint64_t received;
  uint64_t lost; /* expected - received */
  double loss_ratio;
  uint64_t duplicates, reordered, too_late, max_reorder_distance;
  uint64_t malformed, wrong_stream, negative_latency;
  uint64_t latency_p50_us, latency_p99_us, latency_min_us, latency_max_us;
  double latency_mean_us;
} mf_bench_summary_t;

void mf_bench_stream_init(mf_bench_stream_t *s, uint32_t stream_id);

/* One arrival. seq is the stamp's 16-bit sequence; it is unwrapped against the highest one
 * seen (nearest within +-32767: a gap of 32768 or more packets cannot be told from a
 * reorder). Times in nanoseconds on one clock. */
mf_bench_pkt_t mf_bench_stream_record(mf_bench_stream_t *s, uint16_t seq, uint64_t send_ns,
                                      uint64_t arrival_ns);

/* Reads the stamp at payload[0..len) and records it. MF_ERR_PARSE for a malformed stamp
 * (counted in malformed), MF_ERR_NOT_FOUND for another stream's id (counted in
 * wrong_stream); nothing else changes then. *kind (optional) gets the classification. */
mf_err_t mf_bench_stream_record_payload(mf_bench_stream_t *s, const uint8_t *payload,
                                        size_t len, uint64_t arrival_ns, mf_bench_pkt_t *kind);

void mf_bench_stream_summary(const mf_bench_stream_t *s, mf_bench_summary_t *out);

#endif
