/* Clock helpers. Monotonic time for timers, rates and timeouts (never goes back);
 * wall time only for timestamps shown to people and for NTP fields in RTCP.
 * Thread-safe, no allocation, usable on the packet path. */
#ifndef MF_CLOCK_H
#define MF_CLOCK_H

#include <stdint.h>

uint64_t mf_clock_now_ns(void); /* CLOCK_MONOTONIC */
uint64_t mf_clock_now_us(void);
uint64_t mf_clock_now_ms(void);

uint64_t mf_clock_wall_ms(void); /* milliseconds since the Unix epoch */

/* Seconds between the NTP epoch (1900) and the Unix epoch (1970). */
#define MF_NTP_UNIX_OFFSET 2208988800ULL

/* Wall clock as a 64-bit NTP timestamp (RFC 3550 §4: 32.32 fixed point seconds). */
uint64_t mf_clock_wall_ntp(void);

/* Unix milliseconds <-> NTP 32.32; exact to the millisecond for round trips. Valid from
 * 1968 to 2104: the 32-bit NTP seconds wrap in 2036, told apart by their top bit. */
uint64_t mf_clock_ms_to_ntp(uint64_t unix_ms);
uint64_t mf_clock_ntp_to_ms(uint64_t ntp);

#endif
