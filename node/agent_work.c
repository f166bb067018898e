#define MF_LOG_MODULE "agent"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "node/agent_internal.h"
#include "proto/controller.pb-c.h"

const char *mf_agent_state_name(int state) {
  switch (state) {
    case MAFALDA__CLUSTER__NODE_STATE__NODE_STATE_JOINING: return "joining";
    case MAFALDA__CLUSTER__NODE_STATE__NODE_STATE_ACTIVE: return "active";
    case MAFALDA__CLUSTER__NODE_STATE__NODE_STATE_DRAINING: return "draining";
    case MAFALDA__CLUSTER__NODE_STATE__NODE_STATE_DEAD: return "dead";
    default: return "unknown";
  }
}

/* ---- events ---- */

void mf_agent_event(mf_agent_t *a, int kind, uint32_t worker, const char *object_id,
                    const char *detail) {
  if (a->events_count == AGENT_EVENTS_MAX) {
    /* The controller is unreachable for long: keep the newest, count what is lost. */
    a->events_head = (a->events_head + 1) % AGENT_EVENTS_MAX;
    a->events_count--;
    if (a->events_dropped++ == 0)
      MF_LOG_WARN("event queue full: dropping the oldest events");
  }
  agent_event_t *e = &a->events[(a->events_head + a->events_count) % AGENT_EVENTS_MAX];
  e->kind = kind;
  e->worker = worker;
  snprintf(e->object_id, sizeof e->object_id, "%s", object_id ? object_id : "");
  snprintf(e->detail, sizeof e->detail, "%s", detail ? detail : "");
  e->timestamp_ms = mf_clock_wall_ms();
  a->events_count++;
}

bool mf_agent_events_pending(const mf_agent_t *a) { return a->events_count > 0; }

size_t mf_agent_events_peek(mf_agent_t *a, Mafalda__Cluster__NodeEvent *out, size_t max) {
  size_t n = a->events_count < max ? a->events_count : max;
  for (size_t i = 0; i < n; i++) {
    agent_event_t *e = &a->events[(a->events_head + i) % AGENT_EVENTS_MAX];
    Mafalda__Cluster__NodeEvent init = MAFALDA__CLUSTER__NODE_EVENT__INIT;
    out[i] = init;
    out[i].kind = (Mafalda__Cluster__EventKind)e->kind;
    out[i].worker = e->worker;
    out[i].object_id = e->object_id;
    out[i].detail = e->detail;
    out[i].timestamp_ms = e->timestamp_ms;
  }
  return n;
}

void mf_agent_events_consume(mf_agent_t *a, size_t n) {
  if (n > a->events_count) n = a->events_count;
  a->events_head = (a->events_head + n) % AGENT_EVENTS_MAX;
  a->events_count -= n;
}

/* ---- load ---- */

uint32_t mf_agent_transports(mf_agent_t *a) {
  if (!a->gateway) return 0;
  mf_gateway_counts_t counts[MF_NODE_AGENT_WORKERS_MAX];
  mf_gateway_counts(a->gateway, counts, a->worker_count);
  uint32_t total = 0;
  for (uint32_t i = 0; i < a->worker_count; i++) total += counts[i].transports;
  return total;
}

static uint64_t per_sec(uint64_t now_total, uint64_t before, uint64_t ms) {
  if (ms == 0 || now_total < before) return 0;
  return (now_total - before) * 1000u / ms;
}

void mf_agent_measure(mf_agent_t *a, uint64_t now) {
  mf_gateway_counts_t counts[MF_NODE_AGENT_WORKERS_MAX];
  if (a->gateway)
    mf_gateway_counts(a->gateway, counts, a->worker_count);
  else
    memset(counts, 0, sizeof counts[0] * a->worker_count);
  uint64_t ms = a->prev_ms ? now - a->prev_ms : 0;
  for (uint32_t i = 0; i < a->worker_count; i++) {
    mf_worker_load_t cur;
    mf_worker_get_load(a->workers[i], &cur);
    const mf_worker_load_t *old = &a->prev[i];
    Mafalda__Cluster__WorkerLoad *l = &a->loads[i];
    Mafalda__Cluster__WorkerLoad init = MAFALDA__CLUSTER__WORKER_LOAD__INIT;
    *l = init;
    l->index = i;
    if (ms > 0 && cur.cpu_ns >= old->cpu_ns)
      l->cpu = (float)((double)(cur.cpu_ns - old->cpu_ns) / ((double)ms * 1e6));
    l->packets_in_per_sec = per_sec(cur.packets_in, old->packets_in, ms);
    l->packets_out_per_sec = per_sec(cur.packets_out, old->packets_out, ms);
    l->bits_in_per_sec = per_sec(cur.bytes_in, old->bytes_in, ms) * 8u;
    l->bits_out_per_sec = per_sec(cur.bytes_out, old->bytes_out, ms) * 8u;
    l->packets_dropped_per_sec = per_sec(cur.dropped, old->dropped, ms);
    l->routers = counts[i].routers;
    l->transports = counts[i].transports;
    l->producers = counts[i].producers;
    l->consumers = counts[i].consumers;
    l->heartbeat_age_ms = mf_stall_watch_age(&a->stall_watch, cur.heartbeat_ms, now);
    l->stalled = a->stalled[i];
    a->prev[i] = cur;
  }
  a->prev_ms = now;
}

void mf_agent_watch_workers(mf_agent_t *a, uint64_t now) {
  /* After SIGSTOP/SIGCONT every heartbeat looks seconds old; the workers were stopped too. */
  if (mf_stall_watch_check(&a->stall_watch, now, MF_WORKER_STALL_MS / 2))
    MF_LOG_WARN("the node did not run for %llu ms (stopped or starved): worker heartbeats "
                "are timed from now", (unsigned long long)a->stall_watch.last_gap_ms);
  for (uint32_t i = 0; i < a->worker_count; i++) {
    mf_worker_load_t cur;
    mf_worker_get_load(a->workers[i], &cur);
    uint64_t age = mf_stall_watch_age(&a->stall_watch, cur.heartbeat_ms, now);
    bool stalled = age >= MF_WORKER_STALL_MS;
    if (stalled == a->stalled[i]) continue;
    a->stalled[i] = stalled;
    a->loads[i].stalled = stalled;
    char detail[64];
    snprintf(detail, sizeof detail, "no heartbeat for %llu ms", (unsigned long long)age);
    if (stalled)
      MF_LOG_ERROR("worker %u stalled: %s; nothing new is placed on it", i, detail);
    else
      MF_LOG_WARN("worker %u recovered", i);
    mf_agent_event(a,
                   stalled ? MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_WORKER_STALLED
                           : MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_WORKER_RECOVERED,
                   i, NULL, stalled ? detail : "heartbeat back");
    a->report_due = true; /* tell the scheduler now, not in a second */
  }
}

/* ---- node RPC ---- */

static void reply_shard(mf_rpc_request_t *req, mf_err_t code, const char *message) {
  Mafalda__Cluster__ShardResponse r = MAFALDA__CLUSTER__SHARD_RESPONSE__INIT;
  r.code = (int32_t)code;
  r.message = (char *)(message ? message : "");
  mf_rpc_reply(req, mf_rpc_status_of(code), code ? message : "", &r.base);
}

static void handle_open_shard(mf_agent_t *a, mf_rpc_request_t *req,
                              const Mafalda__Rpc__Envelope *env) {
  Mafalda__Cluster__OpenShardRequest *r = (Mafalda__Cluster__OpenShardRequest *)
      mf_rpc_request_decode(req, env, &mafalda__cluster__open_shard_request__descriptor);
  if (!r) return;
  char err[256] = "";
  mf_err_t e;
  if (!a->gateway) {
    e = MF_ERR_UNSUPPORTED;
    snprintf(err, sizeof err, "this node runs without the API (--api-listen is empty)");
  } else if (a->draining) {
    e = MF_ERR_STATE;
    snprintf(err, sizeof err, "this node is draining");
  } else if (r->worker < a->worker_count && a->stalled[r->worker]) {
    e = MF_ERR_STATE;
    snprintf(err, sizeof err, "worker %u is stalled", r->worker);
  } else {
    e = mf_gateway_open_shard(a->gateway, r->router_id, r->name, r->codecs_json, r->worker, err,
                              sizeof err);
  }
  if (e == MF_OK) {
    MF_LOG_INFO("shard of router %s ('%s') open on worker %u", r->router_id, r->name, r->worker);
    mf_agent_event(a, MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_SHARD_OPENED, r->worker,
                   r->router_id, r->name);
  } else {
    MF_LOG_WARN("shard of router %s on worker %u refused: %s", r->router_id ? r->router_id : "",
                r->worker, err);
  }
  reply_shard(req, e, err);
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void handle_close_shard(mf_agent_t *a, mf_rpc_request_t *req,
                               const Mafalda__Rpc__Envelope *env) {
  Mafalda__Cluster__CloseShardRequest *r = (Mafalda__Cluster__CloseShardRequest *)
      mf_rpc_request_decode(req, env, &mafalda__cluster__close_shard_request__descriptor);
  if (!r) return;
  mf_err_t e = a->gateway ? mf_gateway_close_shard(a->gateway, r->router_id) : MF_ERR_NOT_FOUND;
  if (e == MF_OK) {
    MF_LOG_INFO("shard of router %s closed", r->router_id);
    mf_agent_event(a, MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_SHARD_CLOSED, 0, r->router_id,
                   "closed by the controller");
  }
  reply_shard(req, e, e == MF_ERR_NOT_FOUND ? "no shard of that router here" : mf_strerror(e));
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void count_alive(void *ud, const mf_swim_member_t *m) {
  if (m->status == MF_SWIM_ALIVE) (*(uint32_t *)ud)++;
}

static void handle_status(mf_agent_t *a, mf_rpc_request_t *req) {
  Mafalda__Cluster__WorkerLoad *wp[MF_NODE_AGENT_WORKERS_MAX];
  for (uint32_t i = 0; i < a->worker_count; i++) wp[i] = &a->loads[i];
  Mafalda__Cluster__NodeStatusResponse r = MAFALDA__CLUSTER__NODE_STATUS_RESPONSE__INIT;
  r.node_id = a->node_id;
  r.state = (Mafalda__Cluster__NodeState)a->state;
  r.uptime_ms = mf_clock_now_ms() - a->started_ms;
  r.n_workers = a->worker_count;
  r.workers = wp;
  uint32_t alive = 0;
  if (a->gossip) mf_swim_foreach(mf_swim_udp_swim(a->gossip), count_alive, &alive);
  r.members_alive = alive;
  r.controller = a->controller_url;
  mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_OK, "", &r.base);
}

/* node -> node requests for the gateway (a room over several nodes): run on libuv's thread
 * pool because they may wait for a worker; answered back on the loop. */
typedef struct {
  uv_work_t work;
  mf_agent_t *agent;
  mf_rpc_request_t *req;
  char method[MF_RPC_METHOD_MAX + 1];
  uint8_t *payload, *reply;
  size_t len, reply_len;
  const ProtobufCMessageDescriptor *reply_type;
  mf_err_t err;
  char msg[256];
} agent_serve_t;

static void serve_work(uv_work_t *w) {
  agent_serve_t *s = w->data;
  s->err = mf_gateway_serve(s->agent->gateway, s->method, s->payload, s->len, &s->reply,
                            &s->reply_len, &s->reply_type, s->msg, sizeof s->msg);
}

static void serve_done(uv_work_t *w, int status) {
  agent_serve_t *s = w->data;
  ProtobufCMessage *m = NULL;
  if (status == 0 && s->err == MF_OK && s->reply_type)
    m = protobuf_c_message_unpack(s->reply_type, NULL, s->reply_len, s->reply);
  if (m)
    mf_rpc_reply(s->req, MAFALDA__RPC__STATUS__STATUS_OK, "", m);
  else
    mf_rpc_reply(s->req, mf_rpc_status_of(s->err ? s->err : MF_ERR_INTERNAL),
                 s->msg[0] ? s->msg : "the request was not served", NULL);
  if (m) protobuf_c_message_free_unpacked(m, NULL);
  free(s->payload);
  free(s->reply);
  free(s);
}

static void serve_gateway(mf_agent_t *a, mf_rpc_request_t *req, const Mafalda__Rpc__Envelope *env) {
  if (!a->gateway || a->stopping)
    return mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE,
                        a->gateway ? "this node is stopping" : "this node runs without the API",
                        NULL);
  agent_serve_t *s = calloc(1, sizeof *s);
  size_t len = env->payload.len;
  if (s) s->payload = malloc(len ? len : 1);
  if (!s || !s->payload) {
    free(s);
    return mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_ERROR, "out of memory", NULL);
  }
  if (len) memcpy(s->payload, env->payload.data, len);
  s->len = len;
  s->agent = a;
  s->req = req;
  snprintf(s->method, sizeof s->method, "%s", mf_rpc_request_method(req));
  s->work.data = s;
  if (uv_queue_work(&a->loop, &s->work, serve_work, serve_done) != 0) {
    free(s->payload);
    free(s);
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_ERROR, "cannot queue the request", NULL);
  }
}

void mf_agent_handle_rpc(void *ud, mf_rpc_request_t *req, const Mafalda__Rpc__Envelope *env) {
  mf_agent_t *a = ud;
  const char *m = mf_rpc_request_method(req);
  if (mf_gateway_serves(m))
    serve_gateway(a, req, env);
  else if (strcmp(m, MF_RPC_METHOD_OPEN_SHARD) == 0)
    handle_open_shard(a, req, env);
  else if (strcmp(m, MF_RPC_METHOD_CLOSE_SHARD) == 0)
    handle_close_shard(a, req, env);
  else if (strcmp(m, MF_RPC_METHOD_NODE_STATUS) == 0)
    handle_status(a, req);
  else
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_UNKNOWN_METHOD, "unknown method", NULL);
}
