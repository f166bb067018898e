/* Per-consumer RTP seq/ts rewriting; see rtp_rewriter.h for the contract.
 *
 * Input seqs are extended to 64 bits relative to the newest input seen, which makes "older
 * than the sync point" and the dropped-input bookkeeping plain integer comparisons. The
 * extension restarts at every sync (all state that uses it is reset then). */
#include "node/rtp_rewriter.h"

#include <stdlib.h>

#include "node/rtp/rtp.h"

struct mf_rtp_rewriter {
  mf_rtp_rewriter_config_t cfg;
  bool started;
  bool sync_pending;
  uint32_t ssrc;
  int64_t max_in;   /* extended seq of the newest input (sent or dropped) */
  int64_t sync_in;  /* extended seq of the sync packet: anything older is dropped */
  int64_t floor_in; /* inputs at or below it are dropped: forgotten dropped entries */
  uint16_t base;    /* out_seq = in_seq + base for inputs newer than every dropped one */
  uint32_t ts_offset;
  uint16_t max_out_seq;
  uint32_t max_out_ts;
  uint64_t max_out_ms;
  /* Dropped inputs, ascending (drops are only accepted above max_in), as a ring. */
  int64_t dropped[MF_RTP_REWRITER_MAX_DROPPED];
  uint32_t drop_head;
  uint32_t drop_count;
  bool has_hint;
  uint32_t hint_ssrc;
  int32_t hint_delta;
  mf_rtp_rewriter_stats_t stats;
};

mf_err_t mf_rtp_rewriter_create(const mf_rtp_rewriter_config_t *config, mf_rtp_rewriter_t **out) {
  if (!config || !out || config->clock_rate == 0) {
    return MF_ERR_INVALID_ARG;
  }
  mf_rtp_rewriter_t *rw = calloc(1, sizeof(*rw));
  if (!rw) {
    return MF_ERR_NO_MEMORY;
  }
  rw->cfg = *config;
  rw->floor_in = INT64_MIN;
  *out = rw;
  return MF_OK;
}

void mf_rtp_rewriter_destroy(mf_rtp_rewriter_t *rw) {
  free(rw);
}

static int64_t extend(const mf_rtp_rewriter_t *rw, uint16_t seq) {
  return rw->max_in + mf_rtp_seq_diff(seq, (uint16_t)(rw->max_in & 0xffff));
}

static uint64_t elapsed_ms(uint64_t now_ms, uint64_t then_ms) {
  return now_ms > then_ms ? now_ms - then_ms : 0;
}

/* Timestamp ticks to advance over a pause: wall time since the newest sent timestamp,
 * at least one tick so the sync packet is strictly newer. Capped well below 2^31 so the
 * result still compares as "newer" in modular arithmetic. */
static uint32_t advance_ticks(const mf_rtp_rewriter_t *rw, uint64_t now_ms) {
  uint64_t ticks = elapsed_ms(now_ms, rw->max_out_ms) * rw->cfg.clock_rate / 1000u;
  if (ticks < 1) {
    ticks = 1;
  }
  if (ticks > 0x3fffffffu) {
    ticks = 0x3fffffffu;
  }
  return (uint32_t)ticks;
}

static void do_sync(mf_rtp_rewriter_t *rw, uint32_t ssrc, uint16_t seq, uint32_t ts,
                    uint64_t now_ms) {
  if (!rw->started) {
    rw->base = (uint16_t)(rw->cfg.initial_seq - seq);
    rw->ts_offset = rw->cfg.initial_ts - ts;
  } else {
    rw->base = (uint16_t)(rw->max_out_seq + 1u - seq);
    uint32_t adv = advance_ticks(rw, now_ms);
    bool keep = false;
    if (ssrc == rw->ssrc) {
      /* Same source: its own clock kept running during the pause. Keep its timing unless
       * it went backwards or jumped implausibly far (source restarted its timestamps). */
      int32_t d = (int32_t)(ts + rw->ts_offset - rw->max_out_ts);
      uint64_t limit = (uint64_t)adv + rw->cfg.clock_rate;
      keep = d >= 1 && (uint64_t)d <= limit;
    } else {
      rw->stats.ssrc_changes++;
      if (rw->has_hint && rw->hint_ssrc == ssrc) {
        /* the new source's timestamp in the old source's timeline, through the old offset */
        uint32_t offset = rw->ts_offset + (uint32_t)rw->hint_delta;
        int32_t d = (int32_t)(ts + offset - rw->max_out_ts);
        uint64_t limit = (uint64_t)adv + rw->cfg.clock_rate;
        if (d >= 1 && (uint64_t)d <= limit) {
          rw->ts_offset = offset;
          keep = true;
          rw->stats.hinted_syncs++;
        }
      }
    }
    rw->has_hint = false;
    if (!keep) {
      rw->ts_offset = rw->max_out_ts + adv - ts;
    }
    rw->stats.syncs++;
  }
  rw->ssrc = ssrc;
  rw->max_in = seq;
  rw->sync_in = seq;
  rw->floor_in = INT64_MIN;
  rw->drop_head = 0;
  rw->drop_count = 0;
  rw->sync_pending = false;
}

static void note_output(mf_rtp_rewriter_t *rw, uint16_t out_seq, uint32_t out_ts,
                        uint64_t now_ms) {
  if (!rw->started) {
    rw->started = true;
    rw->max_out_seq = out_seq;
    rw->max_out_ts = out_ts;
    rw->max_out_ms = now_ms;
    return;
  }
  if (mf_rtp_seq_newer(out_seq, rw->max_out_seq)) {
    rw->max_out_seq = out_seq;
  }
  if (mf_rtp_ts_newer(out_ts, rw->max_out_ts)) {
    rw->max_out_ts = out_ts;
    rw->max_out_ms = now_ms;
  }
}

mf_rtp_rewrite_result_t mf_rtp_rewriter_rewrite(mf_rtp_rewriter_t *rw, uint32_t ssrc,
                                                uint16_t seq, uint32_t ts, bool is_keyframe,
                                                uint64_t now_ms, uint16_t *out_seq,
                                                uint32_t *out_ts) {
  if (!rw->started || rw->sync_pending || ssrc != rw->ssrc) {
    if (rw->cfg.is_video && !is_keyframe) {
      rw->stats.waiting_keyframe++;
      return MF_RTP_REWRITE_NEED_KEYFRAME;
    }
    do_sync(rw, ssrc, seq, ts, now_ms);
    uint16_t os = (uint16_t)(seq + rw->base);
    uint32_t ot = ts + rw->ts_offset;
    note_output(rw, os, ot, now_ms);
    rw->stats.sent++;
    *out_seq = os;
    *out_ts = ot;
    return MF_RTP_REWRITE_SEND;
  }

  int64_t e = extend(rw, seq);
  if (e < rw->sync_in || e <= rw->floor_in) {
    rw->stats.dropped_old++;
    return MF_RTP_REWRITE_DROP_OLD;
  }
  /* Inputs older than some dropped ones were mapped before those drops shifted the base
   * down: add back one per newer dropped entry. Walk from the newest, so an in-order
   * packet costs one comparison. */
  uint16_t shift = 0;
  for (uint32_t i = rw->drop_count; i > 0; i--) {
    int64_t d = rw->dropped[(rw->drop_head + i - 1) % MF_RTP_REWRITER_MAX_DROPPED];
    if (d < e) {
      break;
    }
    if (d == e) {
      rw->stats.dropped_dropped++;
      return MF_RTP_REWRITE_DROP_DROPPED;
    }
    shift++;
  }
  if (e > rw->max_in) {
    rw->max_in = e;
  }
  uint16_t os = (uint16_t)(seq + rw->base + shift);
  uint32_t ot = ts + rw->ts_offset;
  note_output(rw, os, ot, now_ms);
  rw->stats.sent++;
  *out_seq = os;
  *out_ts = ot;
  return MF_RTP_REWRITE_SEND;
}

bool mf_rtp_rewriter_drop(mf_rtp_rewriter_t *rw, uint32_t ssrc, uint16_t seq) {
  if (!rw->started || rw->sync_pending || ssrc != rw->ssrc) {
    return false;
  }
  int64_t e = extend(rw, seq);
  if (e <= rw->max_in) {
    return false;
  }
  rw->max_in = e;
  rw->base--;
  if (rw->drop_count == MF_RTP_REWRITER_MAX_DROPPED) {
    /* The base already accounts for the forgotten drop; only inputs older than it would
     * need it, and they are refused from now on. */
    rw->floor_in = rw->dropped[rw->drop_head];
    rw->drop_head = (rw->drop_head + 1) % MF_RTP_REWRITER_MAX_DROPPED;
    rw->drop_count--;
    rw->stats.dropped_forgotten++;
  }
  rw->dropped[(rw->drop_head + rw->drop_count) % MF_RTP_REWRITER_MAX_DROPPED] = e;
  rw->drop_count++;
  rw->stats.inputs_dropped++;
  return true;
}

void mf_rtp_rewriter_hint_switch(mf_rtp_rewriter_t *rw, uint32_t ssrc, int32_t delta) {
  rw->has_hint = true;
  rw->hint_ssrc = ssrc;
  rw->hint_delta = delta;
}

void mf_rtp_rewriter_request_sync(mf_rtp_rewriter_t *rw) {
  rw->sync_pending = true;
}

bool mf_rtp_rewriter_needs_keyframe(const mf_rtp_rewriter_t *rw) {
  return rw->cfg.is_video && (!rw->started || rw->sync_pending);
}

void mf_rtp_rewriter_get_stats(const mf_rtp_rewriter_t *rw, mf_rtp_rewriter_stats_t *out) {
  *out = rw->stats;
  out->started = rw->started;
  out->sync_pending = rw->sync_pending;
  out->ssrc = rw->ssrc;
  out->max_out_seq = rw->max_out_seq;
  out->max_out_ts = rw->max_out_ts;
  out->max_out_ms = rw->max_out_ms;
}
