#define MF_LOG_MODULE "agent"
#include "node/agent.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "common/mailbox.h"
#include "common/rpc_endpoint.h"
#include "common/swim.h"
#include "common/swim_udp.h"
#include "controller/rpc_client.h"
#include "controller/rpc_server.h"
#include "node/agent_internal.h"
#include "proto/cluster.pb-c.h"
#include "proto/controller.pb-c.h"

#define AGENT_TICK_MS 250
#define AGENT_RPC_TIMEOUT_MS 3000
/* After leaving, gossip gets this long to spread LEFT before the process goes away. */
#define AGENT_LEAVE_LINGER_MS 600

/* ---- controller calls (one at a time, on libuv's thread pool) ---- */

static void job_work(uv_work_t *w) {
  agent_job_t *j = w->data;
  size_t hint = 0;
  j->err = mf_rpc_call_leader_bytes((const char *const *)j->urls, j->n_urls, &hint, j->method,
                                    j->payload, j->len, AGENT_RPC_TIMEOUT_MS, &j->reply);
}

void mf_agent_job_free(agent_job_t *j) {
  for (size_t i = 0; i < j->n_urls; i++) free(j->urls[i]);
  free(j->payload);
  mf_rpc_reply_free(&j->reply);
  free(j);
}

static void note_controller_failure(mf_agent_t *a, agent_job_t *j, const char *why) {
  if (a->controller_ok || a->failures == 0)
    MF_LOG_WARN("controller call %s failed: %s (retrying every %u ms)", j->method, why,
                AGENT_TICK_MS);
  a->controller_ok = false;
  a->failures++;
}

static void start_next_ordered(mf_agent_t *a);

/* Answers a gateway job (a batch answers each of its records). */
static void gateway_answer(agent_job_t *j, mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  if (j->members)
    mf_agent_batch_finish(j, err, env);
  else
    j->done(j->done_ud, err, env);
}

static void job_done(uv_work_t *w, int status) {
  agent_job_t *j = w->data;
  mf_agent_t *a = j->agent;
  if (j->kind == AGENT_JOB_GATEWAY) {
    bool ordered = j->ordered;
    /* reply.url answered as the leader: the next call starts there (see collect_urls). */
    if (status == 0 && j->to_controller && j->err == MF_OK && j->reply.envelope)
      snprintf(a->controller_url, sizeof a->controller_url, "%s", j->reply.url);
    if (!(j->members && status == 0 && mf_agent_batch_requeue(a, j)))
      gateway_answer(j, status != 0 ? MF_ERR_CLOSED : j->err, j->reply.envelope);
    mf_agent_job_free(j);
    if (ordered) {
      a->ordered_running = false;
      start_next_ordered(a);
    }
    return;
  }
  a->job_running = false;
  const Mafalda__Rpc__Envelope *env = j->reply.envelope;
  if (status != 0 || j->err != MF_OK || !env) {
    note_controller_failure(a, j, j->err == MF_ERR_INVALID_ARG ? "no controller address known"
                                                               : mf_strerror(j->err));
    mf_agent_job_free(j);
    return;
  }
  if (env->status != MAFALDA__RPC__STATUS__STATUS_OK) {
    note_controller_failure(a, j, env->error_message ? env->error_message : "error");
    /* A refused state change (e.g. dead -> active) means our record must be rebuilt. */
    if (j->kind == AGENT_JOB_SET_STATE) a->registered = false;
    /* Refused because the controller holds us dead or unknown: our shards are gone there. */
    if (j->kind == AGENT_JOB_SET_STATE &&
        (env->status == MAFALDA__RPC__STATUS__STATUS_NOT_FOUND ||
         env->status == MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT))
      a->fence_due = true;
    mf_agent_job_free(j);
    return;
  }
  if (!a->controller_ok)
    MF_LOG_INFO("controller reached at %s", j->reply.url);
  a->controller_ok = true;
  a->failures = 0;
  snprintf(a->controller_url, sizeof a->controller_url, "%s", j->reply.url);
  switch (j->kind) {
    case AGENT_JOB_REGISTER: {
      Mafalda__Cluster__RegisterNodeResponse *r = mafalda__cluster__register_node_response__unpack(
          NULL, env->payload.len, env->payload.data);
      a->registered = r != NULL;
      a->controller_state = r ? (int)r->state : 0;
      if (r) {
        MF_LOG_INFO("node %s registered with the controller (%u workers, state %s)",
                    a->node_id, a->worker_count,
                    mf_agent_state_name(a->controller_state));
        mafalda__cluster__register_node_response__free_unpacked(r, NULL);
      }
      break;
    }
    case AGENT_JOB_SET_STATE:
      a->controller_state = j->target_state;
      MF_LOG_INFO("node %s is %s", a->node_id, mf_agent_state_name(j->target_state));
      break;
    case AGENT_JOB_REPORT: {
      Mafalda__Cluster__LoadReportResponse *r = mafalda__cluster__load_report_response__unpack(
          NULL, env->payload.len, env->payload.data);
      if (r && (!r->known_node || r->state == MAFALDA__CLUSTER__NODE_STATE__NODE_STATE_DEAD)) {
        MF_LOG_WARN("the controller %s this node: registering again",
                    r->known_node ? "declared dead" : "does not know");
        a->registered = false;
        a->fence_due = true; /* the controller dropped our shards: close them first */
      }
      if (r) mafalda__cluster__load_report_response__free_unpacked(r, NULL);
      break;
    }
    case AGENT_JOB_EVENTS:
      mf_agent_events_consume(a, j->events_sent);
      break;
    case AGENT_JOB_GATEWAY: /* answered above */
      break;
  }
  mf_agent_job_free(j);
}

/* Controller RPC URLs: configured, embedded, then every live controller gossip knows. */
static void add_url(agent_job_t *j, const char *hostport) {
  if (!hostport || !hostport[0] || j->n_urls >= AGENT_URLS_MAX) return;
  char url[176];
  snprintf(url, sizeof url, "tcp://%s", hostport);
  for (size_t i = 0; i < j->n_urls; i++)
    if (strcmp(j->urls[i], url) == 0) return;
  char *copy = strdup(url);
  if (copy) j->urls[j->n_urls++] = copy;
}

static void collect_controller(void *ud, const mf_swim_member_t *m) {
  agent_job_t *j = ud;
  if (m->status != MF_SWIM_ALIVE && m->status != MF_SWIM_SUSPECT) return;
  Mafalda__Cluster__MemberMeta *meta =
      mafalda__cluster__member_meta__unpack(NULL, m->meta_len, m->meta);
  if (!meta) return;
  add_url(j, meta->controller_rpc_address);
  mafalda__cluster__member_meta__free_unpacked(meta, NULL);
}

static void collect_urls(mf_agent_t *a, agent_job_t *j) {
  char one[160];
  /* The last leader first: starting from the first configured replica, every call after a
   * leader change paid a refused dial, a 20 ms pause and a redirect, which held the
   * gateway's ordered records to ~40/s (tests/integration/chaos_leader_api.c). */
  if (a->controller_url[0] && j->n_urls < AGENT_URLS_MAX) {
    char *copy = strdup(a->controller_url);
    if (copy) j->urls[j->n_urls++] = copy;
  }
  for (const char *p = a->controllers; mf_config_list_next(&p, one, sizeof one);)
    add_url(j, one);
  if (a->replica_rpc[0]) add_url(j, a->replica_rpc);
  if (a->gossip) mf_swim_foreach(mf_swim_udp_swim(a->gossip), collect_controller, j);
}

static void start_job(mf_agent_t *a, agent_job_t *j, const char *method,
                      const ProtobufCMessage *request) {
  j->agent = a;
  j->method = method;
  collect_urls(a, j);
  j->len = protobuf_c_message_get_packed_size(request);
  j->payload = malloc(j->len ? j->len : 1);
  if (!j->payload) {
    mf_agent_job_free(j);
    return;
  }
  protobuf_c_message_pack(request, j->payload);
  j->work.data = j;
  a->job_running = true;
  if (uv_queue_work(&a->loop, &j->work, job_work, job_done) != 0) {
    a->job_running = false;
    mf_agent_job_free(j);
  }
}

/* ---- calls for the API gateway (any thread -> agent loop -> thread pool) ---- */

static void start_gateway_job(mf_agent_t *a, agent_job_t *j) {
  if (!a->stopping) {
    j->to_controller = j->n_urls == 0; /* else a node -> node call: its one address */
    if (j->to_controller) collect_urls(a, j);
    j->work.data = j;
    if (uv_queue_work(&a->loop, &j->work, job_work, job_done) == 0) return;
  }
  if (j->ordered) a->ordered_running = false;
  gateway_answer(j, MF_ERR_CLOSED, NULL);
  mf_agent_job_free(j);
}

/* The gateway's controller.Apply records (AddProducer, RemoveProducer, RemoveShard, pipes)
 * are fire-and-forget and must land in the order they were made: run in parallel on the
 * thread pool, a RemoveProducer overtook the AddProducer it undoes and left a closed
 * session's producer in the state (tests/integration/chaos_leader_api.c). One call at a
 * time carries them, in order: all those queued (up to AGENT_BATCH_MAX) in one
 * controller.ApplyBatch. Other gateway calls (answers a client waits for) stay parallel. */
static void start_next_ordered(mf_agent_t *a) {
  while (!a->ordered_running && a->ordered_head) {
    bool several = a->ordered_head->next_ordered != NULL;
    agent_job_t *j = several && !a->batch_refused ? mf_agent_batch_take(a) : NULL;
    if (!j) {
      j = a->ordered_head;
      a->ordered_head = j->next_ordered;
      if (!a->ordered_head) a->ordered_tail = NULL;
    }
    a->ordered_running = true;
    start_gateway_job(a, j); /* clears ordered_running if it could not start */
  }
}

static void on_gateway_call(mf_mailbox_msg_t *msg, void *owner) {
  agent_job_t *j = MF_CONTAINER_OF(msg, agent_job_t, link);
  mf_agent_t *a = owner;
  j->agent = a;
  j->ordered = j->n_urls == 0 && strcmp(j->method, "controller.Apply") == 0;
  if (!j->ordered) {
    start_gateway_job(a, j);
    return;
  }
  if (a->ordered_tail)
    a->ordered_tail->next_ordered = j;
  else
    a->ordered_head = j;
  a->ordered_tail = j;
  start_next_ordered(a);
}

static mf_err_t agent_gateway_call_to(mf_agent_t *a, const char *rpc_address,
                                      const char *method, uint8_t *payload, size_t len,
                                      mf_gateway_call_done_fn done, void *ud) {
  agent_job_t *j = calloc(1, sizeof *j);
  if (!j) {
    free(payload);
    return MF_ERR_NO_MEMORY;
  }
  if (rpc_address) {
    add_url(j, rpc_address);
    if (j->n_urls == 0) {
      mf_agent_job_free(j);
      return MF_ERR_INVALID_ARG;
    }
  }
  j->kind = AGENT_JOB_GATEWAY;
  j->method = method;
  j->payload = payload;
  j->len = len;
  j->done = done;
  j->done_ud = ud;
  mf_err_t e = mf_mailbox_post(&a->mailbox, &j->link, on_gateway_call);
  if (e) mf_agent_job_free(j);
  return e;
}

/* Object events from the gateway: posted to the loop, which owns the event queue. */
typedef struct {
  mf_mailbox_msg_t link;
  int kind;
  uint32_t worker;
  char object_id[65];
  char detail[128];
} agent_gw_event_t;

static void on_gateway_event(mf_mailbox_msg_t *msg, void *owner) {
  agent_gw_event_t *e = MF_CONTAINER_OF(msg, agent_gw_event_t, link);
  mf_agent_event(owner, e->kind, e->worker, e->object_id, e->detail);
  free(e);
}

static void agent_gateway_event(void *ctx, int kind, uint32_t worker, const char *object_id,
                                const char *detail) {
  mf_agent_t *a = ctx;
  agent_gw_event_t *e = calloc(1, sizeof *e);
  if (!e) return;
  e->kind = kind;
  e->worker = worker;
  snprintf(e->object_id, sizeof e->object_id, "%s", object_id ? object_id : "");
  snprintf(e->detail, sizeof e->detail, "%s", detail ? detail : "");
  if (mf_mailbox_post(&a->mailbox, &e->link, on_gateway_event) != MF_OK) free(e);
}

static mf_err_t agent_gateway_call(void *ctx, const char *method, uint8_t *payload, size_t len,
                                   mf_gateway_call_done_fn done, void *ud) {
  return agent_gateway_call_to(ctx, NULL, method, payload, len, done, ud);
}

static mf_err_t agent_gateway_call_node(void *ctx, const char *rpc_address, const char *method,
                                        uint8_t *payload, size_t len,
                                        mf_gateway_call_done_fn done, void *ud) {
  return agent_gateway_call_to(ctx, rpc_address, method, payload, len, done, ud);
}

static void job_register(mf_agent_t *a) {
  agent_job_t *j = calloc(1, sizeof *j);
  if (!j) return;
  j->kind = AGENT_JOB_REGISTER;
  Mafalda__Cluster__WorkerInfo wi[MF_NODE_AGENT_WORKERS_MAX], *wp[MF_NODE_AGENT_WORKERS_MAX];
  for (uint32_t i = 0; i < a->worker_count; i++) {
    Mafalda__Cluster__WorkerInfo init = MAFALDA__CLUSTER__WORKER_INFO__INIT;
    wi[i] = init;
    wi[i].index = i;
    wi[i].rtc_port = mf_worker_rtc_port(a->workers[i]);
    wi[i].cpu = mf_worker_cpu(a->workers[i]);
    wi[i].capacity_pps = a->worker_capacity_pps;
    wp[i] = &wi[i];
  }
  Mafalda__Cluster__RegisterNodeRequest r = MAFALDA__CLUSTER__REGISTER_NODE_REQUEST__INIT;
  r.node_id = a->node_id;
  r.name = a->name;
  r.rpc_address = a->rpc_address;
  r.gossip_address = a->gossip_address;
  r.announced_ip = a->announced_ip;
  r.version = (char *)MF_VERSION;
  r.n_workers = a->worker_count;
  r.workers = wp;
  start_job(a, j, MF_RPC_METHOD_REGISTER_NODE, &r.base);
}

static void job_set_state(mf_agent_t *a, int state) {
  agent_job_t *j = calloc(1, sizeof *j);
  if (!j) return;
  j->kind = AGENT_JOB_SET_STATE;
  j->target_state = state;
  Mafalda__Controller__SetNodeState s = MAFALDA__CONTROLLER__SET_NODE_STATE__INIT;
  s.node_id = a->node_id;
  s.state = (Mafalda__Controller__NodeState)state;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_SET_NODE_STATE;
  cmd.set_node_state = &s;
  start_job(a, j, MF_RPC_METHOD_APPLY, &cmd.base);
}

static void job_report(mf_agent_t *a) {
  agent_job_t *j = calloc(1, sizeof *j);
  if (!j) return;
  j->kind = AGENT_JOB_REPORT;
  Mafalda__Cluster__WorkerLoad *wp[MF_NODE_AGENT_WORKERS_MAX];
  for (uint32_t i = 0; i < a->worker_count; i++) wp[i] = &a->loads[i];
  Mafalda__Cluster__LoadReport r = MAFALDA__CLUSTER__LOAD_REPORT__INIT;
  r.node_id = a->node_id;
  r.sequence = ++a->report_seq;
  r.timestamp_ms = mf_clock_wall_ms();
  r.n_workers = a->worker_count;
  r.workers = wp;
  r.uptime_ms = mf_clock_now_ms() - a->started_ms;
  start_job(a, j, MF_RPC_METHOD_REPORT_LOAD, &r.base);
}

static void job_events(mf_agent_t *a) {
  agent_job_t *j = calloc(1, sizeof *j);
  if (!j) return;
  j->kind = AGENT_JOB_EVENTS;
  Mafalda__Cluster__NodeEvent ev[AGENT_EVENTS_MAX], *ep[AGENT_EVENTS_MAX];
  size_t n = mf_agent_events_peek(a, ev, AGENT_EVENTS_MAX);
  for (size_t i = 0; i < n; i++) ep[i] = &ev[i];
  j->events_sent = n;
  Mafalda__Cluster__ReportEventsRequest r = MAFALDA__CLUSTER__REPORT_EVENTS_REQUEST__INIT;
  r.node_id = a->node_id;
  r.sequence = ++a->events_seq;
  r.n_events = n;
  r.events = ep;
  start_job(a, j, MF_RPC_METHOD_REPORT_EVENTS, &r.base);
}

/* ---- the agent loop ---- */

static void update_meta(mf_agent_t *a, bool force) {
  if (!a->gossip || a->left) return;
  uint32_t permille = 0;
  for (uint32_t i = 0; i < a->worker_count; i++) {
    uint32_t p = (uint32_t)(a->loads[i].cpu * 1000.0f);
    if (p > permille) permille = p > 1000 ? 1000 : p;
  }
  /* Meta changes bump the incarnation and ride on gossip: only for news worth telling. */
  uint32_t diff = permille > a->meta_permille ? permille - a->meta_permille
                                              : a->meta_permille - permille;
  if (!force && a->meta_state == a->state && diff < 100) return;
  Mafalda__Cluster__MemberMeta m = MAFALDA__CLUSTER__MEMBER_META__INIT;
  m.role = MAFALDA__CLUSTER__MEMBER_ROLE__MEMBER_ROLE_NODE;
  m.rpc_address = a->rpc_address;
  m.state = (Mafalda__Cluster__NodeState)a->state;
  m.load_permille = permille;
  m.workers = a->worker_count;
  m.controller_rpc_address = a->replica_rpc;
  uint8_t buf[MF_SWIM_META_MAX];
  size_t len = protobuf_c_message_get_packed_size(&m.base);
  if (len > sizeof buf) return;
  protobuf_c_message_pack(&m.base, buf);
  if (mf_swim_udp_set_meta(a->gossip, buf, len) == MF_OK) {
    a->meta_state = a->state;
    a->meta_permille = permille;
  }
}

static void drain_progress(mf_agent_t *a, uint64_t now) {
  if (!a->draining) return;
  if (a->left) {
    if (!a->drained && now >= a->left_at + AGENT_LEAVE_LINGER_MS) {
      a->drained = true;
      MF_LOG_INFO("drain complete: node %s left the cluster", a->node_id);
      if (a->on_drained) a->on_drained(a->ud);
    }
    return;
  }
  uint32_t transports = mf_agent_transports(a);
  if (transports > 0 && now < a->drain_deadline) return;
  if (transports > 0)
    MF_LOG_WARN("drain timeout: leaving with %u transports still open", transports);
  else
    MF_LOG_INFO("drain: no transports left");
  mf_agent_event(a, MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_NODE_LEAVING, 0, NULL,
                 transports ? "drain timeout" : "empty");
  if (a->gossip) mf_swim_udp_leave(a->gossip);
  a->left = true;
  a->left_at = now;
}

static void on_tick(uv_timer_t *t) {
  mf_agent_t *a = t->data;
  uint64_t now = mf_clock_now_ms();
  mf_agent_watch_workers(a, now);
  drain_progress(a, now);
  if (now >= a->next_load_ms) {
    mf_agent_measure(a, now);
    update_meta(a, false);
    a->next_load_ms = now + a->report_interval_ms;
    a->report_due = true;
  }
  if (a->job_running || a->left) return;
  if (!a->registered) {
    if (a->fence_due) { /* before registering, so nothing new was placed here meanwhile */
      a->fence_due = false;
      size_t rooms = a->gateway ? mf_gateway_fence(a->gateway) : 0;
      MF_LOG_WARN("fenced after being declared dead: closed the shards of %zu room(s) the "
                  "controller dropped", rooms);
    }
    job_register(a);
  } else if (a->controller_state != a->state) {
    job_set_state(a, a->state);
  } else if (mf_agent_events_pending(a)) {
    job_events(a);
  } else if (a->report_due) {
    a->report_due = false;
    job_report(a);
  }
}

static void on_member(void *ud, const mf_swim_member_t *m, mf_swim_status_t old, bool is_new) {
  mf_agent_t *a = ud;
  /* Media from a dead node stops at once: its producers close here (their consumers get
   * producerclose) without waiting for the controller. */
  if ((m->status == MF_SWIM_DEAD || m->status == MF_SWIM_LEFT) && m->status != old &&
      a->gateway)
    mf_gateway_node_lost(a->gateway, m->id);
  if (is_new)
    MF_LOG_INFO("gossip: member %s at %s joined (%s)", m->id, m->address,
                mf_swim_status_name(m->status));
  else if (m->status != old)
    MF_LOG_INFO("gossip: member %s at %s is %s (was %s)", m->id, m->address,
                mf_swim_status_name(m->status), mf_swim_status_name(old));
}

static void on_drain_msg(mf_mailbox_msg_t *msg, void *owner) {
  mf_agent_t *a = owner;
  (void)msg;
  if (a->draining) return;
  a->draining = true;
  a->state = MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DRAINING;
  a->drain_deadline = mf_clock_now_ms() + a->drain_timeout_ms;
  MF_LOG_INFO("draining: no new placements; waiting up to %u ms for %u transports to close",
              a->drain_timeout_ms, mf_agent_transports(a));
  mf_agent_event(a, MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_NODE_DRAINING, 0, NULL, "SIGTERM");
  update_meta(a, true);
}

static void close_cb(uv_handle_t *h) { (void)h; }

static void on_replica_stopped(void *ud) { (void)ud; }

static void on_stop_msg(mf_mailbox_msg_t *msg, void *owner) {
  mf_agent_t *a = owner;
  (void)msg;
  a->stopping = true;
  uv_timer_stop(&a->tick);
  uv_close((uv_handle_t *)&a->tick, close_cb);
  mf_rpc_endpoint_stop(a->ep);
  if (a->gossip) {
    if (!a->left) mf_swim_udp_leave(a->gossip);
    mf_swim_udp_close(a->gossip, NULL, NULL);
    a->gossip = NULL;
  }
  if (a->replica) mf_replica_stop(a->replica, on_replica_stopped, a);
  mf_mailbox_close(&a->mailbox);
}

static mf_err_t agent_open(mf_agent_t *a) {
  mf_err_t err = mf_mailbox_init(&a->mailbox, &a->loop, a);
  if (err) return err;
  uv_timer_init(&a->loop, &a->tick);
  a->tick.data = a;
  mf_swim_udp_config_t gc = {.announce_host = a->announced_ip};
  char adv_host[64];
  if (a->gossip_advertise[0]) { /* validated by the node config: "a.b.c.d:port" */
    snprintf(adv_host, sizeof adv_host, "%s", a->gossip_advertise);
    char *colon = strrchr(adv_host, ':');
    if (!colon) return MF_ERR_INVALID_ARG;
    *colon = '\0';
    gc.announce_host = adv_host;
    gc.announce_port = (uint16_t)atoi(colon + 1);
  }
  gc.swim.self_id = a->node_id;
  gc.swim.on_change = on_member;
  gc.swim.ud = a;
  err = mf_swim_udp_start(&a->loop, a->listen_ip, a->gossip_port, &gc, &a->gossip);
  if (err) {
    MF_LOG_ERROR("gossip cannot bind %s:%u: %s", a->listen_ip, a->gossip_port, mf_strerror(err));
    return err;
  }
  snprintf(a->gossip_address, sizeof a->gossip_address, "%s", mf_swim_udp_address(a->gossip));
  char url[160];
  snprintf(url, sizeof url, "tcp://%s:%u", a->listen_ip, a->rpc_port);
  mf_rpc_endpoint_config_t ec = {.listen_url = url,
                                 .contexts = 8,
                                 .handler = mf_agent_handle_rpc,
                                 .ud = a,
                                 .log_name = "node rpc"};
  err = mf_rpc_endpoint_start(&a->loop, &ec, &a->ep);
  if (err) return err;
  snprintf(a->rpc_address, sizeof a->rpc_address, "%s:%u", a->announced_ip,
           mf_rpc_endpoint_port(a->ep));
  if (a->has_replica) {
    char why[512];
    err = mf_replica_start(&a->loop, &a->replica_config, why, sizeof why, &a->replica);
    if (err) {
      MF_LOG_ERROR("embedded controller failed to start: %s", why);
      return err;
    }
    mf_replica_attach_gossip(a->replica, mf_swim_udp_swim(a->gossip));
    snprintf(a->replica_rpc, sizeof a->replica_rpc, "%s", a->replica_config.rpc_listen);
  }
  update_meta(a, true);
  mf_swim_udp_join_list(a->gossip, a->join);
  a->started_ms = mf_clock_now_ms();
  a->next_load_ms = a->started_ms + a->report_interval_ms;
  mf_agent_measure(a, a->started_ms); /* baseline for the first report's rates */
  uv_timer_start(&a->tick, on_tick, 0, AGENT_TICK_MS);
  MF_LOG_INFO("agent for node %s: gossip %s, rpc %s%s%s", a->node_id, a->gossip_address,
              a->rpc_address, a->join[0] ? ", joining through " : "", a->join);
  return MF_OK;
}

static void agent_main(void *arg) {
  mf_agent_t *a = arg;
  mf_log_set_thread_name("agent");
  a->start_err = agent_open(a);
  if (a->start_err) {
    /* Close what did open; the loop then runs dry. */
    on_stop_msg(NULL, a);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    uv_sem_post(&a->started);
    return;
  }
  uv_sem_post(&a->started);
  uv_run(&a->loop, UV_RUN_DEFAULT);
}

static void copy_str(char *dst, size_t size, const char *src) {
  snprintf(dst, size, "%s", src ? src : "");
}

mf_err_t mf_agent_start(const mf_agent_config_t *c, mf_agent_t **out) {
  if (!c || !c->node_id || c->worker_count == 0 || c->worker_count > MF_NODE_AGENT_WORKERS_MAX)
    return MF_ERR_INVALID_ARG;
  mf_agent_t *a = calloc(1, sizeof *a);
  if (!a) return MF_ERR_NO_MEMORY;
  copy_str(a->node_id, sizeof a->node_id, c->node_id);
  copy_str(a->name, sizeof a->name, c->name);
  copy_str(a->announced_ip, sizeof a->announced_ip, c->announced_ip);
  copy_str(a->listen_ip, sizeof a->listen_ip, c->listen_ip);
  copy_str(a->join, sizeof a->join, c->join);
  copy_str(a->controllers, sizeof a->controllers, c->controllers);
  a->gossip_port = c->gossip_port;
  copy_str(a->gossip_advertise, sizeof a->gossip_advertise, c->gossip_advertise);
  a->rpc_port = c->rpc_port;
  a->report_interval_ms = c->report_interval_ms ? c->report_interval_ms : 1000;
  a->worker_capacity_pps = c->worker_capacity_pps;
  a->workers = c->workers;
  a->worker_count = c->worker_count;
  a->gateway = c->gateway;
  a->on_drained = c->on_drained;
  a->ud = c->ud;
  a->state = MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE;
  if (c->replica) {
    a->has_replica = true;
    a->replica_config = *c->replica;
  }
  if (uv_loop_init(&a->loop) != 0) {
    free(a);
    return MF_ERR_IO;
  }
  uv_sem_init(&a->started, 0);
  if (uv_thread_create(&a->thread, agent_main, a) != 0) {
    uv_sem_destroy(&a->started);
    uv_loop_close(&a->loop);
    free(a);
    return MF_ERR_IO;
  }
  uv_sem_wait(&a->started);
  if (a->start_err) {
    mf_err_t err = a->start_err;
    uv_thread_join(&a->thread);
    uv_sem_destroy(&a->started);
    uv_loop_close(&a->loop);
    mf_replica_free(a->replica);
    mf_rpc_endpoint_free(a->ep);
    free(a);
    return err;
  }
  if (a->gateway) {
    mf_gateway_cluster_t cl = {.call = agent_gateway_call, .call_node = agent_gateway_call_node,
                               .event = agent_gateway_event, .ctx = a};
    copy_str(cl.node_id, sizeof cl.node_id, a->node_id);
    copy_str(cl.rpc_address, sizeof cl.rpc_address, a->rpc_address);
    mf_gateway_set_cluster(a->gateway, &cl);
  }
  *out = a;
  return MF_OK;
}

void mf_agent_drain(mf_agent_t *a, uint32_t timeout_ms) {
  if (!a) return;
  a->drain_timeout_ms = timeout_ms;
  (void)mf_mailbox_post(&a->mailbox, &a->drain_msg, on_drain_msg);
}

void mf_agent_stop(mf_agent_t *a) {
  if (!a) return;
  /* no new gateway calls; those in flight are answered before the loop ends */
  if (a->gateway) mf_gateway_set_cluster(a->gateway, NULL);
  (void)mf_mailbox_post(&a->mailbox, &a->stop_msg, on_stop_msg);
  uv_thread_join(&a->thread);
  uv_sem_destroy(&a->started);
  int rc = uv_loop_close(&a->loop);
  if (rc != 0) MF_LOG_ERROR("agent loop closed with %s", uv_strerror(rc));
  mf_replica_free(a->replica);
  mf_rpc_endpoint_free(a->ep);
  free(a);
}
