#include "clock.h"

#include <time.h>

static uint64_t mf_clock_read_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t mf_clock_now_ns(void) { return mf_clock_read_ns(CLOCK_MONOTONIC); }
uint64_t mf_clock_now_us(void) { return mf_clock_now_ns() / 1000ULL; }
uint64_t mf_clock_now_ms(void) { return mf_clock_now_ns() / 1000000ULL; }
uint64_t mf_clock_wall_ms(void) { return mf_clock_read_ns(CLOCK_REALTIME) / 1000000ULL; }

uint64_t mf_clock_ms_to_ntp(uint64_t unix_ms) {
  /* NTP seconds are 32 bits: era 1 starts in 2036 and wraps to 0 (RFC 4330 section 3). */
  uint64_t secs = (unix_ms / 1000ULL + MF_NTP_UNIX_OFFSET) & 0xffffffffULL;
  uint64_t frac = ((unix_ms % 1000ULL) << 32) / 1000ULL;
  return (secs << 32) | frac;
}

uint64_t mf_clock_ntp_to_ms(uint64_t ntp) {
  uint64_t secs = ntp >> 32;
  /* RFC 4330 section 3: a clear top bit means era 1 (2036-02-07 to 2104). */
  if (!(secs & 0x80000000ULL)) secs += 1ULL << 32;
  secs -= MF_NTP_UNIX_OFFSET;
  /* Round to nearest so ms -> ntp -> ms is the identity despite the truncating division. */
  uint64_t ms = ((ntp & 0xffffffffULL) * 1000ULL + (1ULL << 31)) >> 32;
  return secs * 1000ULL + ms;
}

uint64_t mf_clock_wall_ntp(void) {
  uint64_t ns = mf_clock_read_ns(CLOCK_REALTIME);
  uint64_t secs = (ns / 1000000000ULL + MF_NTP_UNIX_OFFSET) & 0xffffffffULL;
  uint64_t frac = ((ns % 1000000000ULL) << 32) / 1000000000ULL;
  return (secs << 32) | frac;
}
