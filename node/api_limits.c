#include "node/api_limits.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/hashmap.h"

/* Bucket arithmetic is in milli-requests so that `rate` requests/s is exactly `rate`
 * milli-requests per millisecond: integers only, no drift. */
#define MILLI 1000u
/* A longer gap refills a bucket anyway; capping it keeps elapsed * rate far from overflow. */
#define ELAPSED_CAP_MS 10000000u

typedef struct {
  uint32_t count[MF_API_LIMIT__COUNT];
  uint64_t tokens;  /* milli-requests left */
  uint64_t debt;    /* milli-requests refused, draining at the rate */
  uint64_t last_ms; /* the bucket's last refill */
  uint64_t last_log_ms;
  uint64_t suppressed;
  bool logged;
  bool closed;      /* the session ended: the entry goes when it owns nothing */
  bool close_asked; /* a verdict already asked to close it for flooding */
} entry_t;

struct mf_api_limits {
  mf_api_limits_config_t cfg;
  pthread_mutex_t mu;
  mf_hashmap_t *sessions; /* uint64_t sid -> entry_t */
  uint32_t node_transports;
  mf_api_limits_stats_t stats;
};

static const char *const kind_names[MF_API_LIMIT__COUNT] = {
    "transports", "producers", "consumers", "data producers/consumers"};
static const char *const kind_options[MF_API_LIMIT__COUNT] = {
    "--max-session-transports", "--max-session-producers", "--max-session-consumers",
    "--max-session-data"};

const char *mf_api_limit_kind_name(mf_api_limit_kind_t kind) {
  return (unsigned)kind < MF_API_LIMIT__COUNT ? kind_names[kind] : "objects";
}

static uint64_t default_clock(void *ctx) {
  (void)ctx;
  return mf_clock_now_ms();
}

static uint64_t now_ms(const mf_api_limits_t *l) { return l->cfg.clock(l->cfg.clock_ctx); }

static uint64_t bucket_cap(const mf_api_limits_t *l) {
  return (uint64_t)(l->cfg.burst ? l->cfg.burst : l->cfg.rate) * MILLI;
}

mf_err_t mf_api_limits_create(const mf_api_limits_config_t *config, mf_api_limits_t **out) {
  mf_api_limits_t *l = calloc(1, sizeof *l);
  if (!l) return MF_ERR_NO_MEMORY;
  l->cfg = *config;
  if (!l->cfg.clock) l->cfg.clock = default_clock;
  if (mf_hashmap_create(sizeof(uint64_t), 64, &l->sessions) != MF_OK) {
    free(l);
    return MF_ERR_NO_MEMORY;
  }
  pthread_mutex_init(&l->mu, NULL);
  *out = l;
  return MF_OK;
}

static void free_entry(const void *key, void *value, void *ud) {
  (void)key;
  (void)ud;
  free(value);
}

void mf_api_limits_destroy(mf_api_limits_t *l) {
  if (!l) return;
  mf_hashmap_foreach(l->sessions, free_entry, NULL);
  mf_hashmap_destroy(l->sessions);
  pthread_mutex_destroy(&l->mu);
  free(l);
}

/* mu held. NULL when out of memory. A new entry starts with a full bucket. */
static entry_t *entry_get(mf_api_limits_t *l, uint64_t sid, bool create) {
  entry_t *e = mf_hashmap_get(l->sessions, &sid);
  if (e || !create) return e;
  e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->tokens = bucket_cap(l);
  e->last_ms = now_ms(l);
  if (mf_hashmap_put(l->sessions, &sid, e) != MF_OK) {
    free(e);
    return NULL;
  }
  return e;
}

/* mu held: drops the entry of an ended session that owns nothing. */
static void entry_maybe_free(mf_api_limits_t *l, uint64_t sid, entry_t *e) {
  if (!e->closed) return;
  for (int k = 0; k < MF_API_LIMIT__COUNT; k++)
    if (e->count[k]) return;
  mf_hashmap_remove(l->sessions, &sid);
  free(e);
}

static void verdict_init(mf_api_limits_verdict_t *v) {
  memset(v, 0, sizeof *v);
  v->err = MF_OK;
}

/* mu held: a refusal; says whether it is worth a log line. */
static void refused(mf_api_limits_t *l, entry_t *e, mf_api_limits_verdict_t *v, mf_err_t err) {
  v->err = err;
  if (!e) {
    v->log = true;
    return;
  }
  uint64_t now = now_ms(l);
  if (!e->logged || now - e->last_log_ms >= MF_API_LIMITS_LOG_MS) {
    v->log = true;
    v->suppressed = e->suppressed;
    e->suppressed = 0;
    e->logged = true;
    e->last_log_ms = now;
  } else {
    e->suppressed++;
  }
}

/* mu held: refills the bucket and drains the flood debt for the time since the last call. */
static void refill(mf_api_limits_t *l, entry_t *e) {
  uint64_t now = now_ms(l);
  uint64_t elapsed = now > e->last_ms ? now - e->last_ms : 0; /* a clock going back: no refill */
  if (elapsed > ELAPSED_CAP_MS) elapsed = ELAPSED_CAP_MS;
  e->last_ms = now > e->last_ms ? now : e->last_ms;
  uint64_t add = elapsed * l->cfg.rate;
  uint64_t cap = bucket_cap(l);
  e->tokens = e->tokens + add > cap ? cap : e->tokens + add;
  e->debt = e->debt > add ? e->debt - add : 0;
  if (e->debt == 0) e->close_asked = false;
}

mf_err_t mf_api_limits_admit(mf_api_limits_t *l, uint64_t sid, mf_api_limits_verdict_t *v) {
  verdict_init(v);
  if (!l || l->cfg.rate == 0) return MF_OK;
  pthread_mutex_lock(&l->mu);
  entry_t *e = entry_get(l, sid, true);
  if (!e) { /* out of memory: admit rather than refuse a client for the node's trouble */
    pthread_mutex_unlock(&l->mu);
    return MF_OK;
  }
  refill(l, e);
  if (e->tokens >= MILLI) {
    e->tokens -= MILLI;
    pthread_mutex_unlock(&l->mu);
    return MF_OK;
  }
  l->stats.refused_rate++;
  e->debt += MILLI;
  snprintf(v->why, sizeof v->why,
           "rate limit: more than %u requests/s (burst %u) on this session (--api-rate, "
           "--api-burst); retry later",
           l->cfg.rate, l->cfg.burst ? l->cfg.burst : l->cfg.rate);
  refused(l, e, v, MF_ERR_RATE);
  if (l->cfg.flood_close && !e->close_asked && e->debt > (uint64_t)l->cfg.flood_close * MILLI) {
    e->close_asked = true;
    v->close = true;
    v->log = true; /* always worth a line */
    l->stats.closed_flooding++;
    snprintf(v->why, sizeof v->why,
             "flooding: more than %u requests refused beyond the rate of %u/s "
             "(--api-flood-close)",
             l->cfg.flood_close, l->cfg.rate);
  }
  pthread_mutex_unlock(&l->mu);
  return v->err;
}

/* mu held: MF_OK when one more `kind` fits sid's and the node's limits. */
static mf_err_t fits(mf_api_limits_t *l, entry_t *e, mf_api_limit_kind_t kind,
                     mf_api_limits_verdict_t *v) {
  uint32_t max = l->cfg.session_max[kind];
  if (max && e && e->count[kind] >= max) {
    l->stats.refused_count++;
    snprintf(v->why, sizeof v->why, "session limit: at most %u %s per session (%s)", max,
             kind_names[kind], kind_options[kind]);
    refused(l, e, v, MF_ERR_LIMIT);
    return v->err;
  }
  if (kind == MF_API_LIMIT_TRANSPORT && l->cfg.node_transports &&
      l->node_transports >= l->cfg.node_transports) {
    l->stats.refused_node++;
    snprintf(v->why, sizeof v->why,
             "node limit: this node holds its maximum of %u transports "
             "(--max-node-transports)",
             l->cfg.node_transports);
    refused(l, e, v, MF_ERR_LIMIT);
    return v->err;
  }
  return MF_OK;
}

mf_err_t mf_api_limits_check(mf_api_limits_t *l, uint64_t sid, mf_api_limit_kind_t kind,
                             mf_api_limits_verdict_t *v) {
  verdict_init(v);
  if (!l || (unsigned)kind >= MF_API_LIMIT__COUNT) return MF_OK;
  pthread_mutex_lock(&l->mu);
  mf_err_t err = fits(l, entry_get(l, sid, false), kind, v);
  pthread_mutex_unlock(&l->mu);
  return err;
}

mf_err_t mf_api_limits_take(mf_api_limits_t *l, uint64_t sid, mf_api_limit_kind_t kind,
                            mf_api_limits_verdict_t *v) {
  verdict_init(v);
  if (!l || (unsigned)kind >= MF_API_LIMIT__COUNT) return MF_OK;
  pthread_mutex_lock(&l->mu);
  entry_t *e = entry_get(l, sid, true);
  if (!e) {
    pthread_mutex_unlock(&l->mu);
    snprintf(v->why, sizeof v->why, "out of memory");
    return v->err = MF_ERR_NO_MEMORY;
  }
  mf_err_t err = fits(l, e, kind, v);
  if (!err) {
    e->count[kind]++;
    if (kind == MF_API_LIMIT_TRANSPORT) l->node_transports++;
  }
  pthread_mutex_unlock(&l->mu);
  return err;
}

/* mu held. */
static void give_locked(mf_api_limits_t *l, uint64_t sid, entry_t *e, mf_api_limit_kind_t kind) {
  if (!e || e->count[kind] == 0) return;
  e->count[kind]--;
  if (kind == MF_API_LIMIT_TRANSPORT && l->node_transports) l->node_transports--;
  entry_maybe_free(l, sid, e);
}

void mf_api_limits_give(mf_api_limits_t *l, uint64_t sid, mf_api_limit_kind_t kind) {
  if (!l || (unsigned)kind >= MF_API_LIMIT__COUNT) return;
  pthread_mutex_lock(&l->mu);
  give_locked(l, sid, entry_get(l, sid, false), kind);
  pthread_mutex_unlock(&l->mu);
}

void mf_api_limits_move(mf_api_limits_t *l, uint64_t from, uint64_t to,
                        mf_api_limit_kind_t kind) {
  if (!l || (unsigned)kind >= MF_API_LIMIT__COUNT || from == to) return;
  pthread_mutex_lock(&l->mu);
  entry_t *src = entry_get(l, from, false);
  if (src && src->count[kind]) {
    entry_t *dst = entry_get(l, to, true);
    if (dst) {
      src->count[kind]--;
      dst->count[kind]++; /* the node's count does not change */
      entry_maybe_free(l, from, src);
    } else {
      give_locked(l, from, src, kind); /* out of memory: the object goes uncounted */
    }
  }
  pthread_mutex_unlock(&l->mu);
}

void mf_api_limits_carry_rate(mf_api_limits_t *l, uint64_t from, uint64_t to) {
  if (!l || l->cfg.rate == 0 || from == to) return;
  pthread_mutex_lock(&l->mu);
  entry_t *src = entry_get(l, from, false);
  entry_t *dst = src ? entry_get(l, to, true) : NULL;
  if (src && dst) {
    refill(l, src);
    refill(l, dst);
    if (src->tokens < dst->tokens) dst->tokens = src->tokens;
    if (src->debt > dst->debt) dst->debt = src->debt;
  }
  pthread_mutex_unlock(&l->mu);
}

mf_err_t mf_api_limits_check_sessions(mf_api_limits_t *l, uint64_t sid, size_t joined,
                                      mf_api_limits_verdict_t *v) {
  verdict_init(v);
  if (!l || l->cfg.node_sessions == 0 || joined < l->cfg.node_sessions) return MF_OK;
  pthread_mutex_lock(&l->mu);
  l->stats.refused_sessions++;
  snprintf(v->why, sizeof v->why,
           "node limit: this node holds its maximum of %u sessions (--max-sessions)",
           l->cfg.node_sessions);
  refused(l, entry_get(l, sid, true), v, MF_ERR_LIMIT); /* NULL (no memory): logged */
  pthread_mutex_unlock(&l->mu);
  return v->err;
}

void mf_api_limits_session_closed(mf_api_limits_t *l, uint64_t sid) {
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  entry_t *e = entry_get(l, sid, false);
  if (e) {
    e->closed = true;
    entry_maybe_free(l, sid, e);
  }
  pthread_mutex_unlock(&l->mu);
}

void mf_api_limits_usage(mf_api_limits_t *l, uint64_t sid, uint32_t out[MF_API_LIMIT__COUNT]) {
  memset(out, 0, sizeof(uint32_t) * MF_API_LIMIT__COUNT);
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  entry_t *e = entry_get(l, sid, false);
  if (e) memcpy(out, e->count, sizeof e->count);
  pthread_mutex_unlock(&l->mu);
}

void mf_api_limits_stats(mf_api_limits_t *l, mf_api_limits_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  *out = l->stats;
  out->node_transports = l->node_transports;
  out->sessions_tracked = mf_hashmap_count(l->sessions);
  pthread_mutex_unlock(&l->mu);
}
