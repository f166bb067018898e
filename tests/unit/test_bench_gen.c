/* Tests for tests/bench/gen_traffic.h, the load generator's traffic model: the bitrate a
 * configuration really produces (table, including the clamped ends), the frame sequence
 * (keyframe period, packets per frame, packet sizes, RTP timestamps and due times), pacing
 * when the caller is early or late, keyframes on request, the long-run bitrate, Opus
 * pacing, a subscriber's RTP sequence tracking (NACK gaps, RR figures), and the VP8 / Opus
 * payloads (the SFU's own descriptor parser sees keyframes exactly where they are, the
 * stamp is found again; malformed payloads are refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/rtp/keyframe.h"
#include "tests/bench/gen_traffic.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define START UINT64_C(5000000000)

typedef struct {
  uint32_t bps, fps, key_ms;
  uint64_t effective;
} eff_case_t;

static void test_effective_bitrate(void **state) {
  (void)state;
  static const eff_case_t cases[] = {
      {600000, 30, 2000, 600000},  /* gop 150000 B: key 17250 + 59 x 2250 */
      {300000, 30, 0, 300000},     /* no periodic keyframes: 1250 B per frame */
      {100000, 30, 2000, 99916},   /* delta 131 B (rounded down) */
      {2000000, 30, 2000, 883200}, /* deltas clamped to 3 full packets */
      {50000, 30, 2000, 77260},    /* keyframes alone exceed it: deltas at the minimum */
      {600000, 1, 500, 138000},    /* every frame a keyframe */
      {0, 30, 2000, 0},
      {600000, 0, 2000, 0},
      {600000, 121, 2000, 0},
  };
  for (size_t i = 0; i < N(cases); i++) {
    mf_gen_video_config_t c = {cases[i].bps, cases[i].fps, cases[i].key_ms};
    assert_int_equal(mf_gen_video_effective_bps(&c), cases[i].effective);
    mf_gen_video_t v;
    assert_int_equal(mf_gen_video_init(&v, &c, START),
                     cases[i].effective ? MF_OK : MF_ERR_INVALID_ARG);
  }
  assert_int_equal(mf_gen_video_effective_bps(NULL), 0);
  assert_int_equal(mf_gen_video_init(NULL, NULL, 0), MF_ERR_INVALID_ARG);
}

typedef struct {
  uint32_t bps;
  size_t packets;
  uint16_t sizes[3];
} delta_case_t;

/* 30 fps, no periodic keyframes: frame 0 is the keyframe, frame 1 shows the delta shape */
static void test_delta_packetization(void **state) {
  (void)state;
  static const delta_case_t cases[] = {
      {200000, 1, {833}},
      {276000, 1, {1150}},            /* exactly one full packet */
      {276240, 2, {576, 575}},        /* one byte more: two packets, split evenly */
      {700000, 3, {972, 972, 972}},
      {800160, 3, {1112, 1111, 1111}}, /* 3334 B: the remainder to the first packet */
      {5000000, 3, {1150, 1150, 1150}},
      {1000, 1, {MF_GEN_MIN_VIDEO_PAYLOAD}},
  };
  for (size_t i = 0; i < N(cases); i++) {
    mf_gen_video_config_t c = {cases[i].bps, 30, 0};
    mf_gen_video_t v;
    assert_int_equal(mf_gen_video_init(&v, &c, START), MF_OK);
    mf_gen_frame_t f;
    assert_true(mf_gen_video_next(&v, START, &f));
    assert_true(f.keyframe);
    assert_int_equal(f.packets, MF_GEN_KEYFRAME_PACKETS);
    for (size_t k = 0; k < f.packets; k++) assert_int_equal(f.sizes[k], MF_GEN_VIDEO_MTU);
    assert_true(mf_gen_video_next(&v, START + 40000000, &f));
    assert_false(f.keyframe);
    assert_int_equal(f.packets, cases[i].packets);
    for (size_t k = 0; k < f.packets; k++) assert_int_equal(f.sizes[k], cases[i].sizes[k]);
  }
}

/* 600 kbit/s, 30 fps, a keyframe every second: the frames, their times and timestamps */
static void test_frame_sequence(void **state) {
  (void)state;
  mf_gen_video_config_t c = {600000, 30, 1000};
  mf_gen_video_t v;
  assert_int_equal(mf_gen_video_init(&v, &c, START), MF_OK);
  for (uint64_t k = 0; k < 95; k++) {
    mf_gen_frame_t f;
    uint64_t due = START + k * 1000000000 / 30;
    assert_int_equal(mf_gen_video_due_ns(&v), due);
    if (due > START) assert_false(mf_gen_video_next(&v, due - 1, &f));
    assert_true(mf_gen_video_next(&v, due, &f));
    assert_int_equal(f.due_ns, due);
    assert_int_equal(f.rtp_timestamp, (uint32_t)(k * 3000));
    assert_int_equal(f.picture_id, k);
    assert_int_equal(f.keyframe, k % 30 == 0);
    /* gop 75000 B: key 17250, 29 deltas of 1991 B in two packets */
    assert_int_equal(f.packets, f.keyframe ? 15 : 2);
    if (!f.keyframe) {
      assert_int_equal(f.sizes[0], 996);
      assert_int_equal(f.sizes[1], 995);
    }
  }
}

static void test_pacing_late_caller(void **state) {
  (void)state;
  mf_gen_video_config_t c = {600000, 30, 2000};
  mf_gen_video_t v;
  assert_int_equal(mf_gen_video_init(&v, &c, START), MF_OK);
  mf_gen_frame_t f;
  assert_false(mf_gen_video_next(&v, START - 1, &f));
  /* one second late: frames 0..30 come out one call each, in order, then nothing */
  uint64_t now = START + 1000000000, last = 0;
  size_t n = 0;
  while (mf_gen_video_next(&v, now, &f)) {
    assert_true(n == 0 || f.due_ns > last);
    last = f.due_ns;
    n++;
  }
  assert_int_equal(n, 31);
  assert_int_equal(last, now);
}

static void test_keyframe_request(void **state) {
  (void)state;
  mf_gen_video_config_t c = {600000, 10, 1000}; /* a keyframe every 10 frames */
  mf_gen_video_t v;
  assert_int_equal(mf_gen_video_init(&v, &c, START), MF_OK);
  static const struct {
    bool request_before;
    bool key;
  } steps[] = {{false, true},  {false, false}, {false, false}, {true, true},  {false, false},
               {true, true},   {true, true},   {false, false}, {false, false}, {false, false},
               {false, false}, {false, false}, {false, false}, {false, false}, {false, false},
               {false, false}, {false, true},  {false, false}}; /* periodic again 10 after 6 */
  for (size_t i = 0; i < N(steps); i++) {
    if (steps[i].request_before) mf_gen_video_request_keyframe(&v);
    mf_gen_frame_t f;
    assert_true(mf_gen_video_next(&v, mf_gen_video_due_ns(&v), &f));
    assert_int_equal(f.keyframe, steps[i].key);
  }
}

/* keyframe period 10 frames, shifted by s: keyframes at 0, then 10 - s, 20 - s, ...; a
 * shift after the first frame or without a period changes nothing */
static void test_gop_shift(void **state) {
  (void)state;
  static const struct {
    uint32_t key_ms;
    uint64_t shift;
    bool after_first;
    uint64_t keys[4];
  } cases[] = {
      {1000, 0, false, {0, 10, 20, 30}}, {1000, 3, false, {0, 7, 17, 27}},
      {1000, 9, false, {0, 1, 11, 21}},  {1000, 13, false, {0, 7, 17, 27}},
      {1000, 10, false, {0, 10, 20, 30}}, {1000, 3, true, {0, 10, 20, 30}},
      {0, 3, false, {0, 99, 99, 99}},
  };
  for (size_t i = 0; i < N(cases); i++) {
    mf_gen_video_config_t c = {600000, 10, cases[i].key_ms};
    mf_gen_video_t v;
    assert_int_equal(mf_gen_video_init(&v, &c, START), MF_OK);
    mf_gen_frame_t f;
    if (!cases[i].after_first) mf_gen_video_shift_gop(&v, cases[i].shift);
    size_t nkeys = 0;
    uint64_t keys[4] = {99, 99, 99, 99};
    for (uint64_t k = 0; k < 35; k++) {
      assert_true(mf_gen_video_next(&v, mf_gen_video_due_ns(&v), &f));
      if (k == 0 && cases[i].after_first) mf_gen_video_shift_gop(&v, cases[i].shift);
      if (f.keyframe && nkeys < 4) keys[nkeys++] = k;
    }
    for (size_t k = 0; k < 4; k++) assert_int_equal(keys[k], cases[i].keys[k]);
  }
}

static void test_long_run_bitrate(void **state) {
  (void)state;
  static const uint32_t rates[] = {150000, 300000, 600000, 800000};
  for (size_t i = 0; i < N(rates); i++) {
    mf_gen_video_config_t c = {rates[i], 30, 2000};
    mf_gen_video_t v;
    assert_int_equal(mf_gen_video_init(&v, &c, START), MF_OK);
    uint64_t bytes = 0;
    mf_gen_frame_t f;
    /* 10 s in 1 ms steps */
    for (uint64_t ms = 0; ms < 10000; ms++)
      while (mf_gen_video_next(&v, START + ms * 1000000, &f))
        for (size_t k = 0; k < f.packets; k++) bytes += f.sizes[k];
    double bps = (double)bytes * 8 / 10;
    double want = (double)mf_gen_video_effective_bps(&c);
    assert_true(bps > want * 0.99 && bps < want * 1.01);
    assert_true(want > rates[i] * 0.99);
  }
}

static void test_audio_pacing(void **state) {
  (void)state;
  static const struct {
    uint32_t bps;
    uint16_t bytes;
  } sizes[] = {{32000, 80}, {64000, 160}, {1000, 21}, {1000000, 1000}};
  for (size_t i = 0; i < N(sizes); i++) {
    mf_gen_audio_t a;
    mf_gen_audio_init(&a, sizes[i].bps, START);
    assert_int_equal(a.payload_bytes, sizes[i].bytes);
  }
  mf_gen_audio_t a;
  mf_gen_audio_init(&a, 32000, START);
  uint32_t ts = 0, n = 0;
  for (uint64_t us = 0; us < 1000000; us += 500)
    while (mf_gen_audio_next(&a, START + us * 1000, &ts)) {
      assert_int_equal(ts, n * 960);
      n++;
    }
  assert_int_equal(n, 50);
  assert_int_equal(mf_gen_audio_due_ns(&a), START + 1000000000);
}

static void test_vp8_payload(void **state) {
  (void)state;
  static const struct {
    bool start, key;
    size_t size;
    bool sfu_keyframe;
    size_t offset;
  } cases[] = {
      {true, true, 1150, true, 14},  {false, true, 1150, false, 4},
      {true, false, 900, false, 4},  {false, false, 300, false, 4},
      {true, true, MF_GEN_MIN_VIDEO_PAYLOAD, true, 14},
      {true, false, MF_GEN_MIN_VIDEO_PAYLOAD, false, 4},
  };
  for (size_t i = 0; i < N(cases); i++) {
    uint8_t buf[1500];
    memset(buf, 0xee, sizeof buf);
    mf_bench_stamp_t s = {.stream_id = 7 + (uint32_t)i, .seq = (uint16_t)(65530 + i),
                          .send_ns = 123456789012345ull};
    assert_int_equal(mf_gen_vp8_write(buf, sizeof buf, cases[i].size, cases[i].start,
                                      cases[i].key, 0x1234, &s),
                     MF_OK);
    assert_int_equal(buf[cases[i].size], 0xee); /* nothing written past size */
    mf_rtp_vp8_desc_t d;
    assert_int_equal(mf_rtp_vp8_parse_descriptor(buf, cases[i].size, &d), MF_OK);
    assert_int_equal(d.is_keyframe, cases[i].sfu_keyframe);
    assert_true(d.has_picture_id && d.picture_id_15bit);
    assert_int_equal(d.picture_id, 0x1234);
    assert_int_equal(d.start_of_partition, cases[i].start);
    size_t off = 0;
    assert_int_equal(mf_gen_vp8_stamp_offset(buf, cases[i].size, &off), MF_OK);
    assert_int_equal(off, cases[i].offset);
    mf_bench_stamp_t r;
    assert_int_equal(mf_bench_stamp_read(buf + off, cases[i].size - off, &r), MF_OK);
    assert_int_equal(r.stream_id, s.stream_id);
    assert_int_equal(r.seq, s.seq);
    assert_int_equal(r.send_ns, s.send_ns);
  }
}

static void test_vp8_malformed(void **state) {
  (void)state;
  uint8_t buf[64];
  mf_bench_stamp_t s = {.stream_id = 1, .seq = 2, .send_ns = 3};
  assert_int_equal(mf_gen_vp8_write(buf, sizeof buf, MF_GEN_MIN_VIDEO_PAYLOAD - 1, true, true, 1,
                                    &s),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_gen_vp8_write(buf, 40, 41, false, false, 1, &s), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_gen_vp8_write(NULL, 40, 40, false, false, 1, &s), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_gen_vp8_write(buf, 40, 40, false, false, 1, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_gen_vp8_write(buf, sizeof buf, 40, true, true, 1, &s), MF_OK);
  size_t off = 99;
  /* truncations of a keyframe's first packet: every length below descriptor + header +
   * stamp is refused, and off is left alone */
  for (size_t len = 0; len < 14 + MF_BENCH_STAMP_LEN; len++) {
    assert_int_equal(mf_gen_vp8_stamp_offset(buf, len, &off), MF_ERR_PARSE);
    assert_int_equal(off, 99);
  }
  assert_int_equal(mf_gen_vp8_stamp_offset(buf, 14 + MF_BENCH_STAMP_LEN, &off), MF_OK);
  assert_int_equal(off, 14);
  static const uint8_t bad[][3] = {
      {0x80, 0x80, 0x80}, /* 15-bit picture id cut short */
      {0x90, 0x00, 0x00}, /* X with no field: descriptor ends, stamp missing */
  };
  for (size_t i = 0; i < N(bad); i++)
    assert_int_equal(mf_gen_vp8_stamp_offset(bad[i], sizeof bad[i], &off), MF_ERR_PARSE);
  assert_int_equal(mf_gen_vp8_stamp_offset(NULL, 10, &off), MF_ERR_INVALID_ARG);
}

typedef struct {
  uint16_t seq;
  size_t gap;
  uint16_t first;
} seq_step_t;

typedef struct {
  const char *name;
  const seq_step_t *steps;
  size_t count;
  uint32_t ext_max;
  uint64_t lost;
} seq_case_t;

#define SEQ(...) (const seq_step_t[]){__VA_ARGS__}, N(((const seq_step_t[]){__VA_ARGS__}))

static const seq_case_t seq_cases[] = {
    {"in order", SEQ({10, 0, 0}, {11, 0, 0}, {12, 0, 0}), 12, 0},
    {"one lost", SEQ({10, 0, 0}, {12, 1, 11}, {13, 0, 0}), 13, 1},
    {"three lost", SEQ({10, 0, 0}, {14, 3, 11}), 14, 3},
    {"lost then recovered", SEQ({10, 0, 0}, {13, 2, 11}, {11, 0, 0}, {12, 0, 0}), 13, 0},
    {"duplicate", SEQ({10, 0, 0}, {11, 0, 0}, {11, 0, 0}), 11, 0},
    {"late", SEQ({10, 0, 0}, {11, 0, 0}, {5, 0, 0}), 11, 0},
    {"wrap", SEQ({65534, 0, 0}, {65535, 0, 0}, {0, 0, 0}, {1, 0, 0}), 65536 + 1, 0},
    {"gap across the wrap", SEQ({65534, 0, 0}, {2, 3, 65535}), 65536 + 2, 3},
    {"gap of exactly 64", SEQ({100, 0, 0}, {165, 64, 101}), 165, 64},
    {"jump of 65: a restart", SEQ({100, 0, 0}, {166, 0, 0}, {167, 0, 0}), 167, 65},
    {"first packet only", SEQ({40000, 0, 0}), 40000, 0},
};

/* the RTP sequence a subscriber tracks for its RR and NACKs (max gap 64 here) */
static void test_seq_tracking(void **state) {
  (void)state;
  const seq_case_t *cases = seq_cases;
  for (size_t i = 0; i < N(seq_cases); i++) {
    mf_gen_seq_t s = {0};
    for (size_t k = 0; k < cases[i].count; k++) {
      uint16_t first = 7;
      size_t gap = mf_gen_seq_update(&s, cases[i].steps[k].seq, 64, &first);
      if (gap != cases[i].steps[k].gap) fail_msg("%s: step %zu gap %zu", cases[i].name, k, gap);
      if (gap) assert_int_equal(first, cases[i].steps[k].first);
      else assert_int_equal(first, 7);
    }
    if (mf_gen_seq_ext_max(&s) != cases[i].ext_max || mf_gen_seq_lost(&s) != cases[i].lost)
      fail_msg("%s: ext max %u lost %llu", cases[i].name, mf_gen_seq_ext_max(&s),
               (unsigned long long)mf_gen_seq_lost(&s));
  }
  mf_gen_seq_t empty = {0};
  assert_int_equal(mf_gen_seq_lost(&empty), 0);
}

static void test_opus_payload(void **state) {
  (void)state;
  uint8_t buf[200];
  mf_bench_stamp_t s = {.stream_id = 2, .seq = 9, .send_ns = 77};
  assert_int_equal(mf_gen_opus_write(buf, sizeof buf, 80, &s), MF_OK);
  assert_int_equal(buf[0], 0x78);
  mf_bench_stamp_t r;
  assert_int_equal(mf_bench_stamp_read(buf + MF_GEN_OPUS_STAMP_OFFSET, 79, &r), MF_OK);
  assert_int_equal(r.seq, 9);
  assert_int_equal(buf[79], 0);
  assert_int_equal(mf_gen_opus_write(buf, sizeof buf, 20, &s), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_gen_opus_write(buf, sizeof buf, 21, &s), MF_OK);
  assert_int_equal(mf_gen_opus_write(buf, 50, 51, &s), MF_ERR_INVALID_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_effective_bitrate), cmocka_unit_test(test_delta_packetization),
      cmocka_unit_test(test_frame_sequence),    cmocka_unit_test(test_pacing_late_caller),
      cmocka_unit_test(test_keyframe_request),  cmocka_unit_test(test_gop_shift),
      cmocka_unit_test(test_long_run_bitrate),
      cmocka_unit_test(test_audio_pacing),      cmocka_unit_test(test_vp8_payload),
      cmocka_unit_test(test_vp8_malformed),     cmocka_unit_test(test_opus_payload),
      cmocka_unit_test(test_seq_tracking),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
