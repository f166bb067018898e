/* The clock of the worker watchdog (node/agent_work.c): how old a worker's heartbeat is,
 * discounting time during which the whole process was not running.
 *
 * Heartbeats and checks use CLOCK_MONOTONIC, which keeps counting while a process is
 * stopped (SIGSTOP, a frozen VM or container, a debugger): after SIGCONT the first check
 * would see every worker's last heartbeat seconds old and call it stalled, although no
 * worker thread could run any more than the watchdog itself (CLOCK_BOOTTIME does not help:
 * it differs from MONOTONIC only across suspend). So the watchdog times itself: a check that
 * comes `late_ms` or more after the previous one means its own thread was not running
 * either, and heartbeats from before it count as if given at that check. A worker that
 * truly stalled is then reported `stall_ms` after the resume instead of at once.
 *
 * Plain state, no allocation, no clock reads (times come in): one thread (the agent's)
 * owns an instance. */
#ifndef MF_STALL_WATCH_H
#define MF_STALL_WATCH_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  uint64_t last_check_ms; /* 0 = no check yet */
  uint64_t resumed_ms;    /* heartbeats older than this count from here */
  uint64_t last_gap_ms;   /* the gap that set resumed_ms, for the log */
} mf_stall_watch_t;

/* Call once per watchdog round, before mf_stall_watch_age. True when this round comes
 * late_ms or more after the previous one (the process was not running in between); the
 * gap is then in w->last_gap_ms. now_ms must not go backwards. */
bool mf_stall_watch_check(mf_stall_watch_t *w, uint64_t now_ms, uint64_t late_ms);

/* Milliseconds without a heartbeat (last one at heartbeat_ms) that the worker had the
 * chance to fill: now_ms - max(heartbeat_ms, resume point); 0 if the heartbeat is newer. */
uint64_t mf_stall_watch_age(const mf_stall_watch_t *w, uint64_t heartbeat_ms, uint64_t now_ms);

#endif
