/* The gateway's side of the API limits (issue 12): node/api_limits.c keeps the counts and
 * the buckets; this file maps the gateway's objects, methods and sessions onto them, logs
 * refusals and answers the refused calls. Threads: as the callers (nng's threads for admit
 * and joins, workers for takes, any thread for gives); node/api_limits.c locks. */
#define MF_LOG_MODULE "gateway"
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "node/gateway_internal.h"

/* The counted kind of a session's object; -1 for objects no session owns. */
int mf_gw_limit_kind(gw_kind_t kind) {
  switch (kind) {
    case GW_TRANSPORT: return MF_API_LIMIT_TRANSPORT;
    case GW_PRODUCER: return MF_API_LIMIT_PRODUCER;
    case GW_CONSUMER: return MF_API_LIMIT_CONSUMER;
    case GW_DATA_PRODUCER:
    case GW_DATA_CONSUMER: return MF_API_LIMIT_DATA;
    default: return -1;
  }
}

/* Refusals are logged at most once per session and MF_API_LIMITS_LOG_MS (the verdict says). */
static void gw_limit_log(mf_api_session_t *s, const mf_api_limits_verdict_t *v) {
  if (!v->log) return;
  const mf_jwt_claims_t *cl = mf_api_session_claims(s);
  char more[64] = "";
  if (v->suppressed)
    snprintf(more, sizeof more, " (%llu refusals not logged since the last line)",
             (unsigned long long)v->suppressed);
  MF_LOG_WARN("session %llu (%s): %s: %s%s", (unsigned long long)mf_api_session_id(s),
              cl ? cl->sub : "?", v->close ? "closing it" : "request refused", v->why, more);
}

bool mf_gw_limit_take(gw_cmd_t *c, gw_kind_t kind) {
  int k = mf_gw_limit_kind(kind);
  if (!c->session || k < 0) return true;
  mf_api_limits_verdict_t v;
  if (mf_api_limits_take(c->gw->limits, mf_api_session_id(c->session), (mf_api_limit_kind_t)k,
                         &v) == MF_OK)
    return true;
  gw_limit_log(c->session, &v);
  if (c->call) mf_api_call_fail(c->call, v.err, "%s", v.why);
  c->call = NULL;
  return false;
}

void mf_gw_limit_give(mf_gateway_t *gw, mf_api_session_t *s, gw_kind_t kind) {
  int k = mf_gw_limit_kind(kind);
  if (s && k >= 0) mf_api_limits_give(gw->limits, mf_api_session_id(s), (mf_api_limit_kind_t)k);
}

/* Methods that create a counted object: refused before any work when the session or the
 * node is full (the worker's take decides for requests racing each other). */
static const struct {
  const char *method;
  mf_api_limit_kind_t kind;
} gw_creating[] = {
    {"router.createWebRtcTransport", MF_API_LIMIT_TRANSPORT},
    {"router.createPlainTransport", MF_API_LIMIT_TRANSPORT},
    {"transport.produce", MF_API_LIMIT_PRODUCER},
    {"transport.consume", MF_API_LIMIT_CONSUMER},
    {"transport.produceData", MF_API_LIMIT_DATA},
    {"transport.consumeData", MF_API_LIMIT_DATA},
};

/* mf_api_admit_fn: every request of a session passes its rate limit here first. */
mf_err_t mf_gw_admit(void *ctx, mf_api_session_t *s, const char *method, char *why,
                     size_t whysz, bool *close) {
  mf_gateway_t *gw = ctx;
  uint64_t sid = mf_api_session_id(s);
  mf_api_limits_verdict_t v;
  if (mf_api_limits_admit(gw->limits, sid, &v) == MF_OK) {
    size_t i = 0, n = sizeof gw_creating / sizeof gw_creating[0];
    while (i < n && strcmp(gw_creating[i].method, method) != 0) i++;
    if (i == n || mf_api_limits_check(gw->limits, sid, gw_creating[i].kind, &v) == MF_OK)
      return MF_OK;
  }
  gw_limit_log(s, &v);
  *close = v.close; /* the server closes it after this error is sent */
  snprintf(why, whysz, "%s", v.why);
  return v.err;
}

/* router.join / router.create of a session not joined yet: within --max-sessions? A resume
 * is always let in (it frees the old session's place). Fails the call when not. */
bool mf_gw_limit_join(mf_gateway_t *gw, mf_api_call_t *call, const mf_api_request_t *req) {
  char key[MF_ID_LEN + 1];
  const char *token = json_string_value(json_object_get(req->data, "resumeToken"));
  uv_mutex_lock(&gw->mu);
  size_t joined = mf_hashmap_count(gw->orphans); /* joined sessions, live or in their grace */
  bool resume = token && mf_hashmap_get(gw->orphans, mf_gw_key(token, key));
  uv_mutex_unlock(&gw->mu);
  mf_api_limits_verdict_t v;
  if (resume || mf_api_limits_check_sessions(gw->limits,
                                             mf_api_session_id(mf_api_call_session(call)),
                                             joined, &v) == MF_OK)
    return true;
  gw_limit_log(mf_api_call_session(call), &v);
  mf_api_call_fail(call, v.err, "%s", v.why);
  return false;
}
