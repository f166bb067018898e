/* Keyframe (PLI/FIR) request pacing for one producer stream (mediasoup's
 * KeyFrameRequestManager, with a minimum interval between requests).
 *
 * Consumers (new subscriber, decoder error, layer switch, NACK give-up) call request();
 * the requester decides when a PLI/FIR actually goes to the producer:
 *   - at most one request per min_interval_ms (500): a request while a previous one is
 *     still unanswered (no keyframe yet) is coalesced into it; a request shortly after a
 *     keyframe arrived but within min_interval_ms of the last send is deferred and sent by
 *     tick() once the interval has passed;
 *   - on_keyframe() satisfies everything requested so far (outstanding and deferred);
 *   - when no keyframe arrived within retry_interval_ms (1000) of the last send, tick()
 *     says to send again (mediasoup's retry on timeout), at most max_retries times in a row;
 *     each new request() renews that budget. After the last retry times out the request is
 *     abandoned (stat `gave_up`): a producer that sends nothing is not polled forever.
 * A return value of true means "send a PLI (or FIR) to the producer now".
 *
 * Not thread-safe: ONE worker thread owns each requester. No allocation after create, no
 * clock of its own (pass a monotonic now_ms), O(1). Drive tick() from a timer; the next
 * instant it can return true is mf_keyframe_requester_next_tick_ms(). */
#ifndef MF_KEYFRAME_REQUESTER_H
#define MF_KEYFRAME_REQUESTER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define MF_KEYFRAME_REQUESTER_DEFAULT_MIN_INTERVAL_MS 500
#define MF_KEYFRAME_REQUESTER_DEFAULT_RETRY_INTERVAL_MS 1000
#define MF_KEYFRAME_REQUESTER_DEFAULT_MAX_RETRIES 3

typedef struct mf_keyframe_requester mf_keyframe_requester_t;

typedef struct {
  uint32_t min_interval_ms;   /* minimum time between two sends (first sends and retries) */
  uint32_t retry_interval_ms; /* resend when no keyframe this long after a send; >= min */
  uint32_t max_retries;       /* consecutive retries without a new request; 0 = never retry */
} mf_keyframe_requester_config_t;

typedef struct {
  uint64_t asked;      /* request() calls */
  uint64_t sent;       /* sends caused by request() or a deferred request in tick() */
  uint64_t coalesced;  /* request() calls that did not send immediately */
  uint64_t retries;    /* resends on timeout from tick() */
  uint64_t keyframes;  /* on_keyframe() calls */
  uint64_t gave_up;    /* requests abandoned after max_retries */
} mf_keyframe_requester_stats_t;

void mf_keyframe_requester_config_default(mf_keyframe_requester_config_t *config);

/* config NULL = defaults. MF_ERR_INVALID_ARG when retry_interval_ms < min_interval_ms or
 * retry_interval_ms is 0; MF_ERR_NO_MEMORY. */
mf_err_t mf_keyframe_requester_create(const mf_keyframe_requester_config_t *config,
                                      mf_keyframe_requester_t **out);
void mf_keyframe_requester_destroy(mf_keyframe_requester_t *k); /* NULL is ignored */

/* A keyframe is wanted. True: send a PLI/FIR now. */
bool mf_keyframe_requester_request(mf_keyframe_requester_t *k, uint64_t now_ms);

/* A keyframe arrived from the producer: nothing is pending any more. */
void mf_keyframe_requester_on_keyframe(mf_keyframe_requester_t *k, uint64_t now_ms);

/* Periodic check. True: send a PLI/FIR now (deferred request or retry). */
bool mf_keyframe_requester_tick(mf_keyframe_requester_t *k, uint64_t now_ms);

/* True while a request is outstanding or deferred. */
bool mf_keyframe_requester_pending(const mf_keyframe_requester_t *k);

/* Earliest now_ms at which tick() may return true or give up; 0 when nothing is pending. */
uint64_t mf_keyframe_requester_next_tick_ms(const mf_keyframe_requester_t *k);

/* Forgets pending state (producer closed/restarted). Stats are kept. */
void mf_keyframe_requester_reset(mf_keyframe_requester_t *k);

void mf_keyframe_requester_get_stats(const mf_keyframe_requester_t *k,
                                     mf_keyframe_requester_stats_t *out);

#endif
