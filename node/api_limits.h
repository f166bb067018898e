/* Per-session and per-node limits of the public API (issue 12): how many transports,
 * producers, consumers and data producers/consumers one API session may own, how many
 * transports and joined sessions the node holds, and how fast one session may send
 * requests (a token bucket: `rate` requests/s sustained, `burst` at once).
 *
 * Only objects that exist are counted: the gateway takes a slot on the worker right before
 * it creates the object (mf_api_limits_take), gives it back when the creation fails or the
 * object closes for any reason (mf_api_limits_give), and moves it when a resumed session
 * adopts it (mf_api_limits_move). Sessions are known by their API session id
 * (mf_api_session_id); their entry lives until the session ended AND owns nothing.
 *
 * A session refused for its rate accumulates a "flood debt" (one per refused request,
 * drained at `rate` per second); past `flood_close` the verdict asks the caller to close
 * the session. Refusals report `log` at most once per MF_API_LIMITS_LOG_MS per session, so
 * a flooding client cannot flood the log.
 *
 * Pure bookkeeping: no I/O; time comes from the injected clock. Thread-safe (one internal
 * mutex, never held while calling out), so any thread may call: the gateway's nng threads
 * (admit, check) and its workers (take, give). */
#ifndef MF_API_LIMITS_H
#define MF_API_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef enum {
  MF_API_LIMIT_TRANSPORT, /* WebRTC and plain transports */
  MF_API_LIMIT_PRODUCER,
  MF_API_LIMIT_CONSUMER,
  MF_API_LIMIT_DATA, /* data producers and data consumers together */
  MF_API_LIMIT__COUNT
} mf_api_limit_kind_t;

#define MF_API_LIMITS_LOG_MS 10000u /* one log line per session and this period at most */
#define MF_API_LIMITS_WHY_MAX 200

/* Monotonic milliseconds. */
typedef uint64_t (*mf_api_limits_clock_fn)(void *ctx);

/* Every limit: 0 = unlimited. */
typedef struct {
  uint32_t session_max[MF_API_LIMIT__COUNT]; /* per session, by kind */
  uint32_t rate;        /* requests per second one session may sustain */
  uint32_t burst;       /* requests one session may send at once; 0 = `rate` */
  uint32_t flood_close; /* refused-request debt past which the session is closed */
  uint32_t node_transports; /* transports of every session together */
  uint32_t node_sessions;   /* sessions joined to a room (including those in their grace) */
  mf_api_limits_clock_fn clock; /* NULL: mf_clock_now_ms */
  void *clock_ctx;
} mf_api_limits_config_t;

/* The outcome of a request or a take. why names the limit and its value (and the option
 * that sets it) for the client's error message and the log. */
typedef struct {
  mf_err_t err;        /* MF_OK, MF_ERR_LIMIT (a count), MF_ERR_RATE (the rate) */
  bool log;            /* first refusal of this session in MF_API_LIMITS_LOG_MS */
  bool close;          /* admit: the session keeps flooding (flood_close): close it */
  uint64_t suppressed; /* with log: refusals of this session not logged since the last */
  char why[MF_API_LIMITS_WHY_MAX];
} mf_api_limits_verdict_t;

typedef struct {
  uint64_t refused_rate, refused_count, refused_node, refused_sessions, closed_flooding;
  uint32_t node_transports; /* counted now */
  size_t sessions_tracked;  /* entries held (open sessions that sent a request, closed
                               sessions that still own objects) */
} mf_api_limits_stats_t;

typedef struct mf_api_limits mf_api_limits_t;

/* Copies config. MF_ERR_NO_MEMORY. */
mf_err_t mf_api_limits_create(const mf_api_limits_config_t *config, mf_api_limits_t **out);
void mf_api_limits_destroy(mf_api_limits_t *limits); /* NULL is a no-op */

/* One request of session `sid`: MF_OK (a token taken) or MF_ERR_RATE. */
mf_err_t mf_api_limits_admit(mf_api_limits_t *limits, uint64_t sid, mf_api_limits_verdict_t *v);
/* Would one more object of `kind` fit (nothing counted)? MF_OK or MF_ERR_LIMIT. An early
 * answer before any work; mf_api_limits_take is the authoritative one. */
mf_err_t mf_api_limits_check(mf_api_limits_t *limits, uint64_t sid, mf_api_limit_kind_t kind,
                             mf_api_limits_verdict_t *v);
/* Checks and counts one object of `kind` for sid (and for the node when a transport).
 * MF_OK or MF_ERR_LIMIT (nothing counted). */
mf_err_t mf_api_limits_take(mf_api_limits_t *limits, uint64_t sid, mf_api_limit_kind_t kind,
                            mf_api_limits_verdict_t *v);
/* The object a take counted is gone (or was never created). Extra gives are ignored. */
void mf_api_limits_give(mf_api_limits_t *limits, uint64_t sid, mf_api_limit_kind_t kind);
/* A resumed session `to` adopted an object of `from`: it moves without a check (a resume
 * never fails on limits; the session may then be above a limit until objects close). */
void mf_api_limits_move(mf_api_limits_t *limits, uint64_t from, uint64_t to,
                        mf_api_limit_kind_t kind);
/* The resumed session `to` continues the rate state of `from` (the lower bucket and the
 * higher flood debt), so reconnecting does not refill the bucket. */
void mf_api_limits_carry_rate(mf_api_limits_t *limits, uint64_t from, uint64_t to);
/* May session sid join when `joined` sessions are joined now? MF_OK or MF_ERR_LIMIT. */
mf_err_t mf_api_limits_check_sessions(mf_api_limits_t *limits, uint64_t sid, size_t joined,
                                      mf_api_limits_verdict_t *v);
/* Session sid ended: its entry goes once it owns nothing. */
void mf_api_limits_session_closed(mf_api_limits_t *limits, uint64_t sid);

/* What sid owns (zeros when unknown). */
void mf_api_limits_usage(mf_api_limits_t *limits, uint64_t sid,
                         uint32_t out[MF_API_LIMIT__COUNT]);
void mf_api_limits_stats(mf_api_limits_t *limits, mf_api_limits_stats_t *out);
/* "transports", "producers", "consumers", "data producers/consumers". */
const char *mf_api_limit_kind_name(mf_api_limit_kind_t kind);

#endif
