/* SWIM over a libuv UDP socket: the I/O half of common/swim.h.
 *
 * Binds listen_host:port, feeds every datagram to mf_swim_receive and runs mf_swim_tick
 * from a one-shot uv_timer re-armed at mf_swim_next_deadline after every event, with time
 * from mf_clock_now_ms (monotonic). Sends with uv_udp_try_send and never queues: a datagram
 * the kernel will not take at once (EAGAIN) is dropped and counted — SWIM tolerates loss by
 * design and a stale queued probe is worse than none.
 *
 * Thread affinity: the thread running `loop`, for every call and callback (on_change runs
 * from inside the loop's callbacks). Use the core through mf_swim_udp_swim() for reads
 * (mf_swim_get, mf_swim_foreach, mf_swim_stats); change it through the wrappers below,
 * which re-arm the timer.
 * Ownership: the object owns the socket, the timer and the core; mf_swim_udp_close
 * releases all three asynchronously. */
#ifndef MF_SWIM_UDP_H
#define MF_SWIM_UDP_H

#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "common/swim.h"

typedef struct mf_swim_udp mf_swim_udp_t;

typedef struct {
  /* The core's settings: self_id, incarnation, meta, timings, on_change + ud are used as
   * given; seed 0 means a random one; self_address and send are ignored (set here). */
  mf_swim_config_t swim;
  /* IPv4 literal others reach us at; NULL = listen_host, which then must not be 0.0.0.0.
   * The announced address is announce_host:<announce_port, else the bound port>. */
  const char *announce_host;
  /* Port others reach us at, when it is not the bound one (a NAT, or a test proxy that
   * relays to the bound port); 0 = the bound port. */
  uint16_t announce_port;
} mf_swim_udp_config_t;

typedef struct {
  uint64_t send_dropped;   /* EAGAIN from the kernel: dropped */
  uint64_t send_errors;    /* other send failures (unreachable, ...) */
  uint64_t recv_errors;    /* errors reported by the receive callback */
  uint64_t recv_truncated; /* datagrams larger than the receive buffer: dropped */
} mf_swim_udp_stats_t;

/* Binds listen_host (IPv4 literal) : port (0 = any free port) and starts the protocol.
 * MF_ERR_INVALID_ARG for bad hosts or swim settings, MF_ERR_IO if the bind fails. */
mf_err_t mf_swim_udp_start(uv_loop_t *loop, const char *listen_host, uint16_t port,
                           const mf_swim_udp_config_t *config, mf_swim_udp_t **out);

uint16_t mf_swim_udp_port(const mf_swim_udp_t *u);       /* the bound port */
const char *mf_swim_udp_address(const mf_swim_udp_t *u); /* announced "a.b.c.d:port" */
mf_swim_t *mf_swim_udp_swim(mf_swim_udp_t *u);           /* the core, for reads */

/* mf_swim_join / mf_swim_set_meta / mf_swim_leave, then re-arm the timer. */
mf_err_t mf_swim_udp_join(mf_swim_udp_t *u, const char *seed_address);
/* Joins through every address of a "host:port,..." list; a bad one is logged and skipped. */
void mf_swim_udp_join_list(mf_swim_udp_t *u, const char *seeds);
mf_err_t mf_swim_udp_set_meta(mf_swim_udp_t *u, const uint8_t *meta, size_t len);
void mf_swim_udp_leave(mf_swim_udp_t *u);

void mf_swim_udp_stats(const mf_swim_udp_t *u, mf_swim_udp_stats_t *out);

/* Stops receiving and ticking at once (sends nothing: call mf_swim_udp_leave first, and
 * keep the loop running a little, for a graceful leave); on_closed(ud) runs once the
 * handles are closed and everything is freed. on_closed may be NULL. */
void mf_swim_udp_close(mf_swim_udp_t *u, void (*on_closed)(void *ud), void *ud);

#endif
