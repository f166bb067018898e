#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/clock.h"

static void test_monotonic_never_goes_back(void **state) {
  uint64_t prev = mf_clock_now_ns();
  for (int i = 0; i < 10000; i++) {
    uint64_t now = mf_clock_now_ns();
    assert_true(now >= prev);
    prev = now;
  }
  assert_true(mf_clock_now_ms() <= mf_clock_now_us() / 1000 + 1);
}

static void test_wall_clock_is_after_2020(void **state) {
  assert_true(mf_clock_wall_ms() > 1577836800000ULL);
}

static void test_ntp_conversions(void **state) {
  /* 1970-01-01 is NTP second 2208988800 */
  assert_int_equal(mf_clock_ms_to_ntp(0) >> 32, MF_NTP_UNIX_OFFSET);
  /* 2036-02-07T06:28:16Z is where NTP era 1 begins: seconds wrap to 0 */
  assert_int_equal(mf_clock_ms_to_ntp(2085978496000ULL) >> 32, 0);
  /* half a second is 0x80000000 in the fraction */
  assert_int_equal(mf_clock_ms_to_ntp(500) & 0xffffffffULL, 0x80000000ULL);
  uint64_t samples[] = {0, 1, 999, 1000, 1700000000123ULL, 4102444799999ULL};
  for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
    assert_int_equal(mf_clock_ntp_to_ms(mf_clock_ms_to_ntp(samples[i])), samples[i]);
  uint64_t ntp = mf_clock_wall_ntp();
  uint64_t ms = mf_clock_wall_ms();
  uint64_t back = mf_clock_ntp_to_ms(ntp);
  assert_true(back <= ms + 1000 && back + 1000 >= ms);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_monotonic_never_goes_back),
      cmocka_unit_test(test_wall_clock_is_after_2020),
      cmocka_unit_test(test_ntp_conversions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
