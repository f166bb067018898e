/* SRTP wrapper argument checks beyond test_srtp.c: NULL sessions, buffers and lengths for
 * each direction, lengths past INT_MAX, capacity without room for the tag, removing the
 * stream state of a known and of an unknown SSRC, and names / key lengths of profiles
 * that do not exist. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/srtp.h"

static void test_arguments(void **state) {
  (void)state;
  assert_int_equal(mf_srtp_library_init(), MF_OK);
  uint8_t key[MF_SRTP_MAX_MASTER_LEN];
  for (size_t i = 0; i < sizeof key; i++) key[i] = (uint8_t)i;
  size_t klen = mf_srtp_profile_master_len(MF_SRTP_PROFILE_AES128_CM_SHA1_80);
  mf_srtp_session_t *tx, *rx;
  assert_int_equal(mf_srtp_session_create(MF_SRTP_PROFILE_AES128_CM_SHA1_80, key, klen, false, &tx), MF_OK);
  assert_int_equal(mf_srtp_session_create(MF_SRTP_PROFILE_AES128_CM_SHA1_80, key, klen, true, &rx), MF_OK);
  uint8_t buf[128] = {0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0x30, 0x39, 0xaa, 0xbb};
  size_t len = 14, big = (size_t)INT_MAX + 1;

  assert_int_equal(mf_srtp_protect_rtp(NULL, buf, &len, sizeof buf), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_srtp_protect_rtp(tx, NULL, &len, sizeof buf), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_srtp_protect_rtp(tx, buf, NULL, sizeof buf), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_srtp_protect_rtp(tx, buf, &big, SIZE_MAX), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_srtp_protect_rtp(tx, buf, &len, len + 1), MF_ERR_INVALID_ARG); /* no room for the tag */
  assert_int_equal(mf_srtp_protect_rtp(rx, buf, &len, sizeof buf), MF_ERR_STATE);     /* wrong direction */
  assert_int_equal(mf_srtp_protect_rtcp(NULL, buf, &len, sizeof buf), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_srtp_unprotect_rtp(NULL, buf, &len), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_srtp_unprotect_rtp(rx, NULL, &len), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_srtp_unprotect_rtp(rx, buf, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_srtp_unprotect_rtp(rx, buf, &big), MF_ERR_PARSE);
  assert_int_equal(mf_srtp_unprotect_rtp(tx, buf, &len), MF_ERR_STATE);
  assert_int_equal(mf_srtp_unprotect_rtcp(NULL, buf, &len), MF_ERR_INVALID_ARG);
  assert_int_equal(len, 14);

  /* a stream exists once a packet of its SSRC went through */
  assert_int_equal(mf_srtp_protect_rtp(tx, buf, &len, sizeof buf), MF_OK);
  assert_int_equal(len, 14 + 10);
  assert_int_equal(mf_srtp_remove_stream(tx, 12345), MF_OK);
  assert_int_equal(mf_srtp_remove_stream(tx, 12345), MF_ERR_NOT_FOUND);
  assert_int_equal(mf_srtp_remove_stream(rx, 777), MF_ERR_NOT_FOUND);
  assert_int_equal(mf_srtp_remove_stream(NULL, 1), MF_ERR_INVALID_ARG);
  mf_srtp_session_free(tx);
  mf_srtp_session_free(rx);
  mf_srtp_session_free(NULL);

  assert_int_equal(mf_srtp_profile_master_len((mf_srtp_profile_t)99), 0);
  assert_int_equal(mf_srtp_session_create((mf_srtp_profile_t)99, key, 30, false, &tx), MF_ERR_INVALID_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
