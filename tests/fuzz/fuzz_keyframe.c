/* Fuzz target for node/rtp/keyframe.h (and, from the same bytes, node/rtp/recv_stats.h):
 * - every codec's key-frame check and both descriptor parsers on the input, checking the
 *   parsed fields stay in their ranges and agree with mf_rtp_payload_is_keyframe;
 * - the input read as a series of 7-byte packet records (seq, timestamp, flags) driven
 *   through a receive-statistics tracker, checking that loss never goes negative (every
 *   counted packet is unique and inside the expected range) and the score stays 0..10. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/rtp/keyframe.h"
#include "node/rtp/recv_stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
  if (!cond) abort();
}

static void fuzz_payload(const uint8_t *data, size_t size) {
  for (int c = MF_CODEC_VP8; c <= MF_CODEC_OTHER; c++) {
    bool key = mf_rtp_payload_is_keyframe((mf_codec_t)c, data, size);
    if (c == MF_CODEC_OPUS || c == MF_CODEC_OTHER) check(!key);
    if (key) check(size >= 2);
  }

  mf_rtp_vp8_desc_t d8;
  mf_err_t e8 = mf_rtp_vp8_parse_descriptor(data, size, &d8);
  if (e8 == MF_OK) {
    check(d8.header_len >= 1 && d8.header_len <= 6 && d8.header_len < size);
    check(d8.partition_id <= 7 && d8.tid <= 3 && d8.keyidx <= 31);
    check(d8.picture_id <= (d8.picture_id_15bit ? 0x7fff : 0x7f));
  }
  check(mf_rtp_payload_is_keyframe(MF_CODEC_VP8, data, size) ==
        (e8 == MF_OK && d8.is_keyframe));

  mf_rtp_vp9_desc_t d9;
  mf_err_t e9 = mf_rtp_vp9_parse_descriptor(data, size, &d9);
  if (e9 == MF_OK) {
    check(d9.header_len >= 1 && d9.header_len < size);
    check(d9.tid <= 7 && d9.sid <= 7 && d9.num_pdiff <= MF_RTP_VP9_MAX_PDIFF);
    check(!d9.flexible || !d9.has_tl0picidx);
    check(!d9.has_ss || (d9.ss_num_spatial >= 1 && d9.ss_num_spatial <= 8));
  }
  check(mf_rtp_payload_is_keyframe(MF_CODEC_VP9, data, size) ==
        (e9 == MF_OK && d9.is_keyframe));

  int t = mf_rtp_h264_nal_type(data, size);
  check(t >= -1 && t <= 31);
  check((t == -1) == (size == 0 || (size == 1 && ((data[0] & 0x1f) == 28 ||
                                                  (data[0] & 0x1f) == 29))));
}

static void fuzz_stats(const uint8_t *data, size_t size) {
  if (size < 1) return;
  mf_rtp_recv_stats_t s;
  mf_rtp_recv_stats_init(&s, 0x11223344, (data[0] & 1) ? 90000 : 48000, data[0] >> 5);
  uint64_t now = 1000;
  mf_rtcp_report_block_t rb;
  for (size_t off = 1; off + 7 <= size; off += 7) {
    const uint8_t *r = data + off;
    uint16_t seq = (uint16_t)((r[0] << 8) | r[1]);
    uint32_t ts = ((uint32_t)r[2] << 24) | ((uint32_t)r[3] << 16) | ((uint32_t)r[4] << 8) | r[5];
    uint8_t f = r[6];
    now += f >> 4;
    mf_rtp_recv_result_t res = mf_rtp_recv_stats_on_packet(&s, seq, ts, 100, now, f & 1);
    check((int)res >= MF_RTP_RECV_NEW && res <= MF_RTP_RECV_PROBATION);
    check(mf_rtp_recv_stats_lost(&s) >= 0);
    check(s.packets_repaired <= s.packets_retransmitted);
    if (f & 2) {
      if (mf_rtp_recv_stats_fill_report_block(&s, now, &rb)) {
        check(rb.cumulative_lost >= 0 && rb.cumulative_lost <= 0x7fffff);
        check(rb.highest_seq == mf_rtp_recv_stats_ext_max_seq(&s));
      }
    }
    if (f & 4) check(mf_rtp_recv_stats_update_score(&s, now) <= 10);
    if (f & 8) mf_rtp_recv_stats_on_sr(&s, ts, ts ^ 0x5a5a5a5a, ts, now);
  }
  uint64_t ntp;
  if (mf_rtp_recv_stats_rtp_to_ntp(&s, 12345, &ntp)) check(s.has_sr);
  if (size >= 9) {
    uint32_t lsr = ((uint32_t)data[1] << 24) | ((uint32_t)data[2] << 16) | data[3];
    int64_t rtt = mf_rtp_rtt_from_report(lsr, data[4], ((uint64_t)data[5] << 40) | data[6]);
    check(rtt >= -1 && rtt <= 65536000);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Exact-size copy so any over-read is caught by ASan even when the harness hands us a
   * larger buffer. */
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) return 0;
  if (size) memcpy(copy, data, size);
  fuzz_payload(copy, size);
  fuzz_stats(copy, size);
  free(copy);
  return 0;
}
