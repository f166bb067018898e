/* The load generator's traffic model: what a publisher sends and when, without any I/O.
 *
 * Video is VP8-shaped: frames at a fixed rate; a keyframe first, then every
 * keyframe_interval_ms and whenever a PLI asks (mf_gen_video_request_keyframe), of
 * MF_GEN_KEYFRAME_PACKETS full packets; the rest of the bitrate is spread evenly over the
 * delta frames, each 1 to MF_GEN_MAX_DELTA_PACKETS packets (a real encoder's frames at
 * 0.3-2 Mbit/s). Audio is Opus-shaped: one packet every 20 ms (50 packets/s).
 *
 * Every payload carries the bench_stats stamp: in VP8 right after the payload descriptor,
 * except in the first packet of a keyframe where the 10-byte VP8 keyframe header (frame
 * tag with P=0, start code, 640x360) sits between them so the SFU sees a real keyframe; in
 * Opus after the one TOC byte. The stamp's first byte ('M', 0x4d) has the low bit set, so
 * in a delta frame's first packet it reads as the VP8 frame tag of an interframe.
 *
 * Times are nanoseconds on the caller's monotonic clock; frame k is due at
 * start + k * 1e9 / fps exactly (no drift). Pure functions and caller-owned state: used by
 * ONE thread (the generator's loop), nothing allocates. */
#ifndef MF_BENCH_GEN_TRAFFIC_H
#define MF_BENCH_GEN_TRAFFIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "tests/bench/bench_stats.h"

#define MF_GEN_VIDEO_MTU 1150         /* RTP payload bytes of a full video packet */
#define MF_GEN_KEYFRAME_PACKETS 15
#define MF_GEN_MAX_DELTA_PACKETS 3
#define MF_GEN_MAX_FRAME_PACKETS MF_GEN_KEYFRAME_PACKETS
#define MF_GEN_VP8_DESC_LEN 4         /* X=1, I=1, 15-bit PictureID */
#define MF_GEN_VP8_KEY_HDR_LEN 10
/* The smallest video payload: descriptor + keyframe header + stamp (+ a filler byte). */
#define MF_GEN_MIN_VIDEO_PAYLOAD \
  (MF_GEN_VP8_DESC_LEN + MF_GEN_VP8_KEY_HDR_LEN + MF_BENCH_STAMP_LEN + 1)
#define MF_GEN_OPUS_PTIME_NS 20000000u
#define MF_GEN_OPUS_TS_STEP 960u      /* 20 ms at 48 kHz */
#define MF_GEN_VIDEO_CLOCK 90000u

typedef struct {
  uint32_t bitrate_bps;          /* video target, keyframes included; > 0 */
  uint32_t fps;                  /* 1..120 */
  uint32_t keyframe_interval_ms; /* 0: keyframes only first and on request */
} mf_gen_video_config_t;

typedef struct {
  bool keyframe;
  uint64_t due_ns;
  uint32_t rtp_timestamp; /* 90 kHz, from 0 */
  uint16_t picture_id;    /* 15-bit */
  size_t packets;         /* 1..MF_GEN_MAX_FRAME_PACKETS */
  uint16_t sizes[MF_GEN_MAX_FRAME_PACKETS]; /* RTP payload bytes of each packet */
} mf_gen_frame_t;

typedef struct {
  mf_gen_video_config_t cfg;
  uint64_t start_ns;
  uint64_t frame_no;        /* the next frame's index */
  uint64_t frames_per_key;  /* 0 = no periodic keyframes */
  int64_t last_key_no;      /* may be negative: see mf_gen_video_shift_gop */
  bool key_requested;
  uint32_t delta_bytes;     /* payload bytes of one delta frame */
} mf_gen_video_t;

/* MF_ERR_INVALID_ARG for NULL, bitrate 0, fps outside 1..120. */
mf_err_t mf_gen_video_init(mf_gen_video_t *v, const mf_gen_video_config_t *cfg,
                           uint64_t start_ns);
/* When the next frame is due. */
uint64_t mf_gen_video_due_ns(const mf_gen_video_t *v);
/* If the next frame is due at now_ns: describes it in *out, advances, returns true. A
 * caller that fell behind gets the late frames one call each (their due_ns says when). */
bool mf_gen_video_next(mf_gen_video_t *v, uint64_t now_ns, mf_gen_frame_t *out);
/* Before the first frame: the first periodic keyframe comes `frames` frames earlier
 * (modulo the keyframe period), so many publishers started together do not send their
 * keyframes in the same instant as no real clients would. */
void mf_gen_video_shift_gop(mf_gen_video_t *v, uint64_t frames);
/* The next frame is a keyframe (a PLI or FIR arrived). */
void mf_gen_video_request_keyframe(mf_gen_video_t *v);
/* The bitrate the model actually produces for cfg over a long run (bits/s): the target,
 * unless the delta frames would need more than MF_GEN_MAX_DELTA_PACKETS full packets
 * (bitrate too high for the fps) or the keyframes alone exceed it (too low). 0 if invalid. */
uint64_t mf_gen_video_effective_bps(const mf_gen_video_config_t *cfg);

typedef struct {
  uint64_t start_ns;
  uint64_t packet_no;
  uint16_t payload_bytes; /* TOC + stamp + filler */
} mf_gen_audio_t;

/* bitrate_bps of Opus (e.g. 32000): payload bytes per 20 ms, at least 1 + stamp. */
void mf_gen_audio_init(mf_gen_audio_t *a, uint32_t bitrate_bps, uint64_t start_ns);
uint64_t mf_gen_audio_due_ns(const mf_gen_audio_t *a);
/* If the next packet is due: its RTP timestamp (48 kHz from 0) in *rtp_ts, true. */
bool mf_gen_audio_next(mf_gen_audio_t *a, uint64_t now_ns, uint32_t *rtp_ts);

/* A subscriber's view of one consumer's RTP sequence numbers (the SFU's, rewritten, not
 * the stamp's): what its RR reports and which gaps it NACKs. Zero-initialise. */
typedef struct {
  bool started;
  uint16_t max_seq;
  uint32_t cycles;   /* wraps of max_seq, shifted left 16 */
  uint32_t base_seq; /* the first sequence number */
  uint64_t received; /* every packet counted, duplicates included (as RFC 3550 does) */
} mf_gen_seq_t;

/* Records one arrival. Returns how many sequence numbers are missing right before it when
 * it jumps forward by 2..max_gap+1 (*first = the first missing one): the gap to NACK. 0 for
 * the first packet, in-order, late or duplicate packets, and for a larger jump (a restart
 * of the stream, not loss worth asking for; still tracked). */
size_t mf_gen_seq_update(mf_gen_seq_t *s, uint16_t seq, size_t max_gap, uint16_t *first);
/* Extended highest sequence number (cycles | max_seq) for the RR. */
uint32_t mf_gen_seq_ext_max(const mf_gen_seq_t *s);
/* Expected minus received (RFC 3550 A.3), 0 when duplicates make it negative. */
uint64_t mf_gen_seq_lost(const mf_gen_seq_t *s);

/* Writes one VP8 RTP payload of exactly size bytes into buf: descriptor (S set on a frame's
 * first packet), the keyframe header when start && keyframe, the stamp, zero filler.
 * MF_ERR_INVALID_ARG if size < MF_GEN_MIN_VIDEO_PAYLOAD or size > cap or NULL pointers. */
mf_err_t mf_gen_vp8_write(uint8_t *buf, size_t cap, size_t size, bool start, bool keyframe,
                          uint16_t picture_id, const mf_bench_stamp_t *stamp);
/* Where the stamp is in a received VP8 payload (after the SFU: its descriptor may have been
 * rewritten but keeps its length). MF_ERR_PARSE for a malformed descriptor or a payload too
 * short to hold the stamp there. */
mf_err_t mf_gen_vp8_stamp_offset(const uint8_t *payload, size_t len, size_t *off);

/* One Opus payload of exactly size bytes: TOC byte (CELT FB 20 ms), stamp, filler.
 * MF_ERR_INVALID_ARG if size < 1 + MF_BENCH_STAMP_LEN or size > cap. */
mf_err_t mf_gen_opus_write(uint8_t *buf, size_t cap, size_t size, const mf_bench_stamp_t *stamp);
#define MF_GEN_OPUS_STAMP_OFFSET 1

#endif
