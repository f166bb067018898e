#include "node/bwe/twcc_recorder.h"

#include <string.h>

#include "node/rtp/rtcp.h"

#define RING_MASK ((int64_t)MF_TWCC_RING - 1)
#define SLOT(r, s) ((r)->arrival_us[(s) & RING_MASK])

_Static_assert((MF_TWCC_RING & (MF_TWCC_RING - 1)) == 0, "ring size must be a power of two");
_Static_assert(MF_TWCC_MAX_REWIND < MF_TWCC_RING, "rewind must stay inside the ring");

static void clear_all(mf_twcc_recorder_t *r) {
  for (size_t i = 0; i < MF_TWCC_RING; i++) r->arrival_us[i] = -1;
}

void mf_twcc_recorder_init(mf_twcc_recorder_t *r) {
  memset(r, 0, sizeof *r);
  clear_all(r);
}

size_t mf_twcc_recorder_pending(const mf_twcc_recorder_t *r) {
  if (!r->started || r->max_seq < r->next_seq) return 0;
  return (size_t)(r->max_seq - r->next_seq + 1);
}

bool mf_twcc_recorder_due(const mf_twcc_recorder_t *r, uint64_t now_us) {
  return mf_twcc_recorder_pending(r) > 0 &&
         now_us - r->last_feedback_us >= MF_TWCC_FEEDBACK_INTERVAL_US;
}

bool mf_twcc_recorder_on_packet(mf_twcc_recorder_t *r, uint16_t seq, uint32_t media_ssrc,
                                uint64_t arrival_us) {
  int64_t s = mf_rtp_seq_unwrap(&r->unwrap, seq);
  if (!r->started) {
    r->started = true;
    r->next_seq = r->max_seq = s;
    r->last_feedback_us = arrival_us; /* first feedback one interval after the first packet */
  } else if (s > r->max_seq) {
    if (s - r->max_seq >= MF_TWCC_RING) {
      /* The whole window is stale: restart at this packet. */
      r->stats.overflowed += mf_twcc_recorder_pending(r);
      clear_all(r);
      r->next_seq = s;
    } else {
      for (int64_t k = r->max_seq + 1; k < s; k++) SLOT(r, k) = -1;
    }
    r->max_seq = s;
    if (r->max_seq - r->next_seq >= MF_TWCC_RING) {
      int64_t first = r->max_seq - MF_TWCC_RING + 1;
      r->stats.overflowed += (uint64_t)(first - r->next_seq);
      r->next_seq = first;
    }
  } else {
    if (r->max_seq - s >= MF_TWCC_RING) {
      r->stats.too_old++;
      return false;
    }
    if (SLOT(r, s) >= 0) {
      r->stats.duplicates++;
      return false;
    }
    if (s < r->next_seq) {
      if (r->next_seq - s > MF_TWCC_MAX_REWIND) {
        r->stats.too_old++;
        return false;
      }
      r->next_seq = s; /* report it again, now as received */
    }
  }
  SLOT(r, s) = (int64_t)arrival_us;
  r->media_ssrc = media_ssrc;
  r->stats.packets++;
  return mf_twcc_recorder_pending(r) >= MF_TWCC_MAX_PENDING;
}

mf_err_t mf_twcc_recorder_build(mf_twcc_recorder_t *r, uint32_t sender_ssrc, uint64_t now_us,
                                uint8_t *buf, size_t cap, size_t *out_len) {
  if (!r || !buf || !out_len) return MF_ERR_INVALID_ARG;
  if (mf_twcc_recorder_pending(r) == 0) return MF_ERR_EMPTY;
  int64_t first_rx = r->next_seq;
  while (first_rx <= r->max_seq && SLOT(r, first_rx) < 0) first_rx++;
  /* max_seq is always received, so first_rx is within range. */
  int64_t ref = SLOT(r, first_rx) / 250 / 256; /* 64 ms units */
  int64_t prev_ticks = ref * 256;

  mf_rtcp_twcc_packet_t pkts[MF_TWCC_MAX_STATUSES];
  size_t n = 0;
  int64_t s = r->next_seq;
  for (; s <= r->max_seq && n < MF_TWCC_MAX_STATUSES; s++) {
    int64_t a = SLOT(r, s);
    mf_rtcp_twcc_packet_t *p = &pkts[n];
    p->seq = (uint16_t)s;
    if (a < 0) {
      p->status = MF_TWCC_NOT_RECEIVED;
      p->delta = 0;
      n++;
      continue;
    }
    int64_t ticks = a / 250;
    int64_t d = ticks - prev_ticks;
    if (d < -32768 || d > 32767) break; /* next packet, new reference time */
    p->status = (d >= 0 && d <= 255) ? MF_TWCC_SMALL_DELTA : MF_TWCC_LARGE_DELTA;
    p->delta = (int32_t)d;
    prev_ticks = ticks;
    n++;
  }
  /* The reference time is a signed 24-bit field: the sender unwraps it. */
  int32_t ref24 = (int32_t)(ref & 0xffffff);
  if (ref24 >= 0x800000) ref24 -= 0x1000000;
  mf_rtcp_twcc_t hdr = {.sender_ssrc = sender_ssrc,
                        .media_ssrc = r->media_ssrc,
                        .base_seq = (uint16_t)r->next_seq,
                        .reference_time = ref24,
                        .fb_pkt_count = r->fb_count};
  mf_err_t e = mf_rtcp_write_twcc(buf, cap, &hdr, pkts, n, out_len);
  if (e) return e;
  r->next_seq = s;
  r->fb_count++;
  r->last_feedback_us = now_us;
  r->stats.feedbacks++;
  return MF_OK;
}
