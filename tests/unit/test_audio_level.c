/* Tests for node/audio_level.h: the RFC 6464 element parser (valid and malformed), tables
 * of levels -> averages per period, packets without the extension or with a bad element,
 * in both header-extension forms built with mf_rtp_write_header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "node/audio_level.h"

static void test_parse(void **state) {
  static const struct {
    uint8_t bytes[3];
    size_t len;
    bool ok;
    uint8_t dbov;
    bool voice;
  } cases[] = {
      {{0x00}, 1, true, 0, false},    {{0x80}, 1, true, 0, true},
      {{0x7f}, 1, true, 127, false},  {{0xff}, 1, true, 127, true},
      {{0x9e}, 1, true, 30, true},    {{0x1e}, 1, true, 30, false},
      {{0x1e, 0}, 2, false, 0, false}, /* not this extension's size */
      {{0}, 0, false, 0, false},       /* two-byte form allows empty elements */
      {{0x1e, 0, 0}, 3, false, 0, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t dbov = 200;
    bool voice = true;
    bool ok = mf_audio_level_parse(cases[i].bytes, cases[i].len, &dbov, &voice);
    assert_int_equal(ok, cases[i].ok);
    if (ok) {
      assert_int_equal(dbov, cases[i].dbov);
      assert_int_equal(voice, cases[i].voice);
    } else {
      assert_int_equal(dbov, 200); /* untouched */
      assert_true(voice);
    }
  }
  uint8_t d;
  bool v;
  assert_false(mf_audio_level_parse(NULL, 1, &d, &v));
}

static void test_averages(void **state) {
  static const struct {
    uint8_t levels[8];
    bool voice[8];
    size_t n;
    uint8_t avg;
    uint32_t voiced;
  } cases[] = {
      {{0}, {false}, 0, 127, 0},                       /* nothing: silence */
      {{30}, {true}, 1, 30, 1},
      {{10, 20, 30, 40}, {true, false, true, false}, 4, 25, 2},
      {{10, 11}, {false, false}, 2, 11, 0},            /* 10.5 rounds up */
      {{10, 10, 11}, {true, true, true}, 3, 10, 3},    /* 10.33 rounds down */
      {{127, 127, 127}, {false, false, false}, 3, 127, 0},
      {{0, 127}, {true, false}, 2, 64, 1},             /* 63.5 */
      {{200, 250}, {false, false}, 2, 127, 0},         /* clamped to 127 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_audio_level_t a = {.observers = 1};
    for (size_t k = 0; k < cases[i].n; k++) mf_audio_level_add(&a, cases[i].levels[k], cases[i].voice[k]);
    mf_audio_level_summary_t s;
    mf_audio_level_take(&a, &s);
    assert_int_equal(s.count, cases[i].n);
    assert_int_equal(s.voice, cases[i].voiced);
    assert_int_equal(mf_audio_level_average(&s), cases[i].avg);
    /* the next period starts empty */
    mf_audio_level_take(&a, &s);
    assert_int_equal(s.count, 0);
    assert_int_equal(s.sum, 0);
    assert_int_equal(mf_audio_level_average(&s), 127);
  }
}

/* An audio packet with the given extension elements (one-byte form unless forced). */
static size_t build(uint8_t *buf, size_t cap, const mf_rtp_ext_elem_t *ext, size_t n,
                    uint16_t profile) {
  mf_rtp_header_t h = {.payload_type = 111, .sequence = 1, .timestamp = 960, .ssrc = 1234,
                       .ext = ext, .ext_count = n, .ext_profile = profile};
  size_t len = 0;
  assert_int_equal(mf_rtp_write_header(buf, cap, &h, &len), MF_OK);
  for (size_t i = 0; i < 20; i++) buf[len + i] = 0xaa; /* payload */
  return len + 20;
}

static void test_packets(void **state) {
  uint8_t buf[256];
  mf_rtp_packet_t pkt;
  mf_audio_level_t a = {.observers = 1};
  const uint8_t loud = 0x80 | 20, quiet = 60, two[2] = {0x80 | 5, 0}, mid[1] = {'0'};
  const struct {
    mf_rtp_ext_elem_t ext[2];
    size_t n;
    uint16_t profile;
    bool counted;
    bool malformed;
  } cases[] = {
      {{{.id = 10, .len = 1, .value = &loud}}, 1, 0, true, false},
      {{{.id = 10, .len = 1, .value = &quiet}}, 1, MF_RTP_EXT_PROFILE_TWO_BYTE, true, false},
      {{{.id = 1, .len = 1, .value = mid}, {.id = 10, .len = 1, .value = &loud}}, 2, 0, true, false},
      {{{.id = 1, .len = 1, .value = mid}}, 1, 0, false, false},   /* no level element */
      {{{0}}, 0, 0, false, false},                                  /* no extension at all */
      {{{.id = 10, .len = 2, .value = two}}, 1, 0, false, true},    /* bad length */
      {{{.id = 10, .len = 0, .value = NULL}}, 1, MF_RTP_EXT_PROFILE_TWO_BYTE, false, true},
  };
  uint32_t counted = 0;
  uint64_t malformed = 0, sum = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len = build(buf, sizeof buf, cases[i].ext, cases[i].n, cases[i].profile);
    assert_int_equal(mf_rtp_parse(buf, len, &pkt), MF_OK);
    mf_audio_level_on_rtp(&a, &pkt, 10);
    if (cases[i].counted) {
      counted++;
      for (size_t k = 0; k < cases[i].n; k++)
        if (cases[i].ext[k].id == 10) sum += cases[i].ext[k].value[0] & 0x7f;
    }
    if (cases[i].malformed) malformed++;
    assert_int_equal(a.count, counted);
    assert_int_equal(a.sum, sum);
    assert_int_equal(a.malformed, malformed);
  }
  /* ext id 0 (not negotiated): never read */
  size_t len = build(buf, sizeof buf, cases[0].ext, 1, 0);
  assert_int_equal(mf_rtp_parse(buf, len, &pkt), MF_OK);
  mf_audio_level_on_rtp(&a, &pkt, 0);
  assert_int_equal(a.count, counted);
  /* a truncated extension body: mf_rtp_parse refuses it, nothing reaches the hook */
  assert_int_not_equal(mf_rtp_parse(buf, 14, &pkt), MF_OK);
  mf_audio_level_summary_t s;
  mf_audio_level_take(&a, &s);
  assert_int_equal(s.count, 3);
  assert_int_equal(s.voice, 2);
  assert_int_equal(mf_audio_level_average(&s), (20 + 60 + 20 + 1) / 3);
  assert_int_equal(a.malformed, 2); /* lifetime counter survives the take */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_averages),
      cmocka_unit_test(test_packets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
