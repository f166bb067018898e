#include "tests/bench/gen_traffic.h"

#include <string.h>

#include "node/rtp/keyframe.h"
#include "node/rtp/rtp.h"

#define KEY_BYTES ((uint64_t)MF_GEN_KEYFRAME_PACKETS * MF_GEN_VIDEO_MTU)
#define MAX_DELTA_BYTES ((uint64_t)MF_GEN_MAX_DELTA_PACKETS * MF_GEN_VIDEO_MTU)

static bool config_ok(const mf_gen_video_config_t *cfg) {
  return cfg && cfg->bitrate_bps > 0 && cfg->fps >= 1 && cfg->fps <= 120;
}

static uint64_t frames_per_key(const mf_gen_video_config_t *cfg) {
  if (cfg->keyframe_interval_ms == 0) return 0;
  uint64_t f = (uint64_t)cfg->keyframe_interval_ms * cfg->fps / 1000;
  return f ? f : 1;
}

/* Delta frame bytes: what the bitrate leaves after the keyframes, clamped to what a frame
 * of 1..MF_GEN_MAX_DELTA_PACKETS packets can be. */
static uint64_t delta_bytes(const mf_gen_video_config_t *cfg) {
  uint64_t fpk = frames_per_key(cfg);
  uint64_t d;
  if (fpk == 0) {
    d = (uint64_t)cfg->bitrate_bps / 8 / cfg->fps;
  } else if (fpk == 1) {
    d = MF_GEN_MIN_VIDEO_PAYLOAD; /* every frame is a keyframe: unused */
  } else {
    uint64_t gop = (uint64_t)cfg->bitrate_bps * fpk / 8 / cfg->fps;
    d = gop > KEY_BYTES ? (gop - KEY_BYTES) / (fpk - 1) : 0;
  }
  if (d < MF_GEN_MIN_VIDEO_PAYLOAD) d = MF_GEN_MIN_VIDEO_PAYLOAD;
  if (d > MAX_DELTA_BYTES) d = MAX_DELTA_BYTES;
  return d;
}

uint64_t mf_gen_video_effective_bps(const mf_gen_video_config_t *cfg) {
  if (!config_ok(cfg)) return 0;
  uint64_t fpk = frames_per_key(cfg), d = delta_bytes(cfg);
  if (fpk == 0) return d * 8 * cfg->fps;
  return (KEY_BYTES + (fpk - 1) * d) * 8 * cfg->fps / fpk;
}

mf_err_t mf_gen_video_init(mf_gen_video_t *v, const mf_gen_video_config_t *cfg,
                           uint64_t start_ns) {
  if (!v || !config_ok(cfg)) return MF_ERR_INVALID_ARG;
  memset(v, 0, sizeof *v);
  v->cfg = *cfg;
  v->start_ns = start_ns;
  v->frames_per_key = frames_per_key(cfg);
  v->delta_bytes = (uint32_t)delta_bytes(cfg);
  v->key_requested = true; /* the first frame */
  return MF_OK;
}

uint64_t mf_gen_video_due_ns(const mf_gen_video_t *v) {
  return v->start_ns + v->frame_no * UINT64_C(1000000000) / v->cfg.fps;
}

void mf_gen_video_request_keyframe(mf_gen_video_t *v) { v->key_requested = true; }

void mf_gen_video_shift_gop(mf_gen_video_t *v, uint64_t frames) {
  if (v->frames_per_key == 0 || v->frame_no != 0) return;
  v->last_key_no = -(int64_t)(frames % v->frames_per_key);
}

bool mf_gen_video_next(mf_gen_video_t *v, uint64_t now_ns, mf_gen_frame_t *out) {
  uint64_t due = mf_gen_video_due_ns(v);
  if (now_ns < due) return false;
  uint64_t k = v->frame_no;
  bool key = v->key_requested ||
             (v->frames_per_key && (int64_t)k - v->last_key_no >= (int64_t)v->frames_per_key);
  memset(out, 0, sizeof *out);
  out->keyframe = key;
  out->due_ns = due;
  out->rtp_timestamp = (uint32_t)(k * MF_GEN_VIDEO_CLOCK / v->cfg.fps);
  out->picture_id = (uint16_t)(k & 0x7fff);
  if (key) {
    /* the GOP restarts here, so a PLI does not make the next periodic keyframe early */
    v->last_key_no = k == 0 ? v->last_key_no : (int64_t)k; /* frame 0 keeps the shift */
    v->key_requested = false;
    out->packets = MF_GEN_KEYFRAME_PACKETS;
    for (size_t i = 0; i < out->packets; i++) out->sizes[i] = MF_GEN_VIDEO_MTU;
  } else {
    uint32_t bytes = v->delta_bytes;
    size_t n = (bytes + MF_GEN_VIDEO_MTU - 1) / MF_GEN_VIDEO_MTU;
    out->packets = n;
    for (size_t i = 0; i < n; i++)
      out->sizes[i] = (uint16_t)(bytes / n + (i < bytes % n ? 1 : 0));
  }
  v->frame_no++;
  return true;
}

void mf_gen_audio_init(mf_gen_audio_t *a, uint32_t bitrate_bps, uint64_t start_ns) {
  memset(a, 0, sizeof *a);
  a->start_ns = start_ns;
  uint64_t bytes = (uint64_t)bitrate_bps / 8 / 50;
  if (bytes < 1 + MF_BENCH_STAMP_LEN) bytes = 1 + MF_BENCH_STAMP_LEN;
  if (bytes > 1000) bytes = 1000;
  a->payload_bytes = (uint16_t)bytes;
}

uint64_t mf_gen_audio_due_ns(const mf_gen_audio_t *a) {
  return a->start_ns + a->packet_no * MF_GEN_OPUS_PTIME_NS;
}

bool mf_gen_audio_next(mf_gen_audio_t *a, uint64_t now_ns, uint32_t *rtp_ts) {
  if (now_ns < mf_gen_audio_due_ns(a)) return false;
  *rtp_ts = (uint32_t)(a->packet_no * MF_GEN_OPUS_TS_STEP);
  a->packet_no++;
  return true;
}

mf_err_t mf_gen_vp8_write(uint8_t *buf, size_t cap, size_t size, bool start, bool keyframe,
                          uint16_t picture_id, const mf_bench_stamp_t *stamp) {
  if (!buf || !stamp || size < MF_GEN_MIN_VIDEO_PAYLOAD || size > cap) return MF_ERR_INVALID_ARG;
  size_t off = 0;
  buf[off++] = (uint8_t)(0x80 | (start ? 0x10 : 0)); /* X, S, partition 0 */
  buf[off++] = 0x80;                                  /* I: PictureID present */
  buf[off++] = (uint8_t)(0x80 | ((picture_id >> 8) & 0x7f));
  buf[off++] = (uint8_t)(picture_id & 0xff);
  if (start && keyframe) {
    /* frame tag: P=0 (key), version 0, show_frame, first partition size; start code;
     * 640x360, no scaling */
    static const uint8_t key_hdr[MF_GEN_VP8_KEY_HDR_LEN] = {0x10, 0x02, 0x00, 0x9d, 0x01,
                                                            0x2a, 0x80, 0x02, 0x68, 0x01};
    memcpy(buf + off, key_hdr, sizeof key_hdr);
    off += sizeof key_hdr;
  }
  mf_err_t e = mf_bench_stamp_write(stamp, buf + off, size - off);
  if (e != MF_OK) return e;
  off += MF_BENCH_STAMP_LEN;
  memset(buf + off, 0, size - off);
  return MF_OK;
}

mf_err_t mf_gen_vp8_stamp_offset(const uint8_t *payload, size_t len, size_t *off) {
  if (!payload || !off) return MF_ERR_INVALID_ARG;
  mf_rtp_vp8_desc_t d;
  if (mf_rtp_vp8_parse_descriptor(payload, len, &d) != MF_OK) return MF_ERR_PARSE;
  size_t o = d.header_len + (d.is_keyframe ? MF_GEN_VP8_KEY_HDR_LEN : 0);
  if (o > len || len - o < MF_BENCH_STAMP_LEN) return MF_ERR_PARSE;
  *off = o;
  return MF_OK;
}

mf_err_t mf_gen_opus_write(uint8_t *buf, size_t cap, size_t size, const mf_bench_stamp_t *stamp) {
  if (!buf || !stamp || size < 1 + MF_BENCH_STAMP_LEN || size > cap) return MF_ERR_INVALID_ARG;
  buf[0] = 0x78; /* config 15 (CELT FB 20 ms), mono, one frame */
  mf_err_t e = mf_bench_stamp_write(stamp, buf + 1, size - 1);
  if (e != MF_OK) return e;
  memset(buf + 1 + MF_BENCH_STAMP_LEN, 0, size - 1 - MF_BENCH_STAMP_LEN);
  return MF_OK;
}

size_t mf_gen_seq_update(mf_gen_seq_t *s, uint16_t seq, size_t max_gap, uint16_t *first) {
  s->received++;
  if (!s->started) {
    s->started = true;
    s->max_seq = seq;
    s->base_seq = seq;
    return 0;
  }
  if (!mf_rtp_seq_newer(seq, s->max_seq)) return 0;
  size_t gap = (size_t)(mf_rtp_seq_diff(seq, s->max_seq) - 1);
  uint16_t from = (uint16_t)(s->max_seq + 1);
  if (seq < s->max_seq) s->cycles += 1u << 16;
  s->max_seq = seq;
  if (gap == 0 || gap > max_gap) return 0;
  if (first) *first = from;
  return gap;
}

uint32_t mf_gen_seq_ext_max(const mf_gen_seq_t *s) { return s->cycles | s->max_seq; }

uint64_t mf_gen_seq_lost(const mf_gen_seq_t *s) {
  if (!s->started) return 0;
  int64_t expected = (int64_t)mf_gen_seq_ext_max(s) - (int64_t)s->base_seq + 1;
  int64_t lost = expected - (int64_t)s->received;
  return lost > 0 ? (uint64_t)lost : 0;
}
