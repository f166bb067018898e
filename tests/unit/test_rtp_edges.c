/* RTP helper edges beyond test_rtp.c: extension lookups with id 0, NULL packets, packets
 * without an extension block, one-byte ids above 14, set_extension with a length that is
 * not the element's, remap with missing arguments, and the writers' argument checks
 * (payload type, CSRCs or elements announced without their arrays, an extension body over
 * the 16-bit length field, NULL buffers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/rtp/rtp.h"

/* A packet with a one-byte-header extension: id 3 = {0xaa, 0xbb}. */
static size_t one_byte_packet(uint8_t *b) {
  static const uint8_t v[] = {0xaa, 0xbb};
  mf_rtp_ext_elem_t e = {3, 2, v};
  mf_rtp_header_t h = {.payload_type = 96, .sequence = 1, .ssrc = 7, .ext = &e, .ext_count = 1};
  static const uint8_t payload[] = {1, 2, 3};
  size_t n = 0;
  assert_int_equal(mf_rtp_write_packet(b, 256, &h, payload, sizeof payload, 0, &n), MF_OK);
  return n;
}

static void test_extension_lookups(void **state) {
  (void)state;
  uint8_t b[256];
  size_t n = one_byte_packet(b);
  mf_rtp_packet_t p;
  assert_int_equal(mf_rtp_parse(b, n, &p), MF_OK);
  const uint8_t *v = NULL;
  size_t len = 0;
  assert_true(mf_rtp_get_extension(&p, 3, &v, &len));
  assert_int_equal(len, 2);
  assert_int_equal(v[0], 0xaa);
  assert_true(mf_rtp_get_extension(&p, 3, NULL, NULL)); /* presence only */
  assert_false(mf_rtp_get_extension(&p, 0, &v, &len));  /* id 0 is padding */
  assert_false(mf_rtp_get_extension(&p, 15, &v, &len)); /* no such one-byte id */
  assert_false(mf_rtp_get_extension(&p, 4, &v, &len));
  assert_false(mf_rtp_get_extension(NULL, 3, &v, &len));

  static const uint8_t nv[] = {0x11, 0x22}, three[] = {1, 2, 3};
  assert_false(mf_rtp_set_extension(NULL, &p, 3, nv, 2));
  assert_false(mf_rtp_set_extension(b, NULL, 3, nv, 2));
  assert_false(mf_rtp_set_extension(b, &p, 3, three, 3)); /* not the element's length */
  assert_false(mf_rtp_set_extension(b, &p, 9, nv, 2));
  assert_true(mf_rtp_set_extension(b, &p, 3, nv, 2));
  assert_true(mf_rtp_get_extension(&p, 3, &v, &len));
  assert_int_equal(v[0], 0x11);

  uint8_t map[256];
  for (int i = 0; i < 256; i++) map[i] = (uint8_t)i;
  assert_int_equal(mf_rtp_remap_extension_ids(NULL, &p, map), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_remap_extension_ids(b, NULL, map), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_remap_extension_ids(b, &p, NULL), MF_ERR_INVALID_ARG);

  /* a packet without extensions has none to find */
  mf_rtp_header_t plain = {.payload_type = 96, .sequence = 2, .ssrc = 7};
  assert_int_equal(mf_rtp_write_header(b, sizeof b, &plain, &n), MF_OK);
  b[n++] = 0x55;
  assert_int_equal(mf_rtp_parse(b, n, &p), MF_OK);
  assert_false(mf_rtp_get_extension(&p, 3, &v, &len));
  assert_false(mf_rtp_set_extension(b, &p, 3, nv, 2));
}

static void test_writer_arguments(void **state) {
  (void)state;
  uint8_t buf[128];
  size_t n = 0;
  static const uint8_t payload[] = {9, 9};
  mf_rtp_header_t ok = {.payload_type = 100, .sequence = 5};
  mf_rtp_header_t h;

  assert_int_equal(mf_rtp_write_header(NULL, sizeof buf, &ok, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, NULL, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &ok, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_write_header(buf, 11, &ok, &n), MF_ERR_FULL);
  assert_int_equal(mf_rtp_write_packet(NULL, sizeof buf, &ok, payload, 2, 0, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_write_packet(buf, sizeof buf, NULL, payload, 2, 0, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_write_packet(buf, sizeof buf, &ok, payload, 2, 0, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_write_packet(buf, sizeof buf, &ok, NULL, 2, 0, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_write_packet(buf, sizeof buf, &ok, NULL, 0, 0, &n), MF_OK);
  assert_int_equal(n, 12);

  h = ok;
  h.payload_type = 128;
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &h, &n), MF_ERR_INVALID_ARG);
  h = ok;
  h.csrc_count = 2; /* without the array */
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &h, &n), MF_ERR_INVALID_ARG);
  h = ok;
  h.ext_count = 1; /* without the elements */
  assert_int_equal(mf_rtp_write_packet(buf, sizeof buf, &h, payload, 2, 0, &n), MF_ERR_INVALID_ARG);

  /* an extension body longer than the 16-bit word count can say */
  static mf_rtp_ext_elem_t many[1100];
  static uint8_t value[255];
  for (size_t i = 0; i < 1100; i++) many[i] = (mf_rtp_ext_elem_t){(uint8_t)(1 + i % 200), 255, value};
  h = ok;
  h.ext = many;
  h.ext_count = 1100; /* 1100 * 257 bytes > 65535 words * 4 */
  h.ext_profile = MF_RTP_EXT_PROFILE_TWO_BYTE;
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &h, &n), MF_ERR_INVALID_ARG);
  /* forced one-byte form with an element it cannot carry */
  static const uint8_t big[17] = {0};
  mf_rtp_ext_elem_t too_long = {1, 17, big};
  h = ok;
  h.ext = &too_long;
  h.ext_count = 1;
  h.ext_profile = MF_RTP_EXT_PROFILE_ONE_BYTE;
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &h, &n), MF_ERR_INVALID_ARG);
  /* automatic form: falls back to two-byte */
  h.ext_profile = 0;
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &h, &n), MF_OK);
  mf_rtp_packet_t p;
  assert_int_equal(mf_rtp_parse(buf, n, &p), MF_OK);
  assert_true(mf_rtp_ext_is_two_byte(&p));
  /* an unknown profile value */
  h.ext_profile = 0x1234;
  assert_int_equal(mf_rtp_write_header(buf, sizeof buf, &h, &n), MF_ERR_INVALID_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_extension_lookups),
      cmocka_unit_test(test_writer_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
