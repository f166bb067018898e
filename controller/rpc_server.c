#include "controller/rpc_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/hashmap.h"
#include "common/id.h"
#include "common/rpc_endpoint.h"
#include "proto/cluster.pb-c.h"
#include "proto/rpc.pb-c.h"

#define MF_LOG_MODULE "rpc"
#include "common/log.h"

typedef Mafalda__Rpc__Envelope envelope_t;

enum {
  REPLY_COMMAND,
  REPLY_REGISTER,
  REPLY_CHANGE,
  REPLY_STATUS,
  REPLY_STATE,
  REPLY_OPEN_ROUTER,
  REPLY_PLACE,
  REPLY_PIPE,
};

typedef struct {
  char name[MF_FSM_NAME_MAX + 1];
  char id[MF_ID_LEN + 1]; /* the id this call tries to create the router with */
} open_router_t;

/* AddVoter / RemoveVoter: the row committed (or removed) once the membership changed. */
typedef struct {
  uint64_t id;
  bool add;
  char raft_address[MF_FSM_NAME_MAX + 1];
  char rpc_address[MF_FSM_NAME_MAX + 1];
} voter_t;

/* Per-request scratch (mf_rpc_request_user): what an answer given after a Raft commit
 * needs to know. */
typedef struct {
  mf_rpc_server_t *server;
  int reply_kind;
  char node_id[MF_FSM_ID_MAX + 1];
  union {
    open_router_t open;             /* REPLY_OPEN_ROUTER */
    mf_placement_transport_t place; /* REPLY_PLACE */
    mf_placement_pipe_t pipe;       /* REPLY_PIPE */
    voter_t voter;                  /* REPLY_CHANGE */
  } u;
} call_t;

struct mf_rpc_server {
  mf_raft_node_t *raft;
  mf_rpc_endpoint_t *ep;
  mf_hashmap_t *loads; /* node id (zero-padded key) -> Mafalda__Cluster__LoadReport * */
  mf_placement_t *placement;
};

#define LOAD_KEY MF_FSM_ID_MAX

static call_t *call_of(mf_rpc_request_t *req) { return mf_rpc_request_user(req); }

static void reply_not_leader(mf_rpc_request_t *req) {
  const char *addr = "";
  uint64_t leader = mf_raft_node_leader(call_of(req)->server->raft, &addr);
  mf_rpc_reply_redirect(req, leader ? addr : NULL);
}

/* ---- placement answers (the methods are below) ---- */

static void reply_open_router(mf_rpc_request_t *req, const Mafalda__Controller__Router *r,
                              bool created) {
  Mafalda__Cluster__OpenRouterResponse resp = MAFALDA__CLUSTER__OPEN_ROUTER_RESPONSE__INIT;
  resp.router_id = r->id;
  resp.codecs_json = r->codecs_json;
  resp.created = created;
  mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_OK, "", &resp.base);
}

/* After CreateRouter: ours, or (EXISTS) the name was taken meanwhile: the winner. */
static void answer_open_router(mf_rpc_request_t *req, mf_err_t code, const char *message) {
  call_t *c = call_of(req);
  const mf_fsm_t *fsm = mf_raft_node_fsm(c->server->raft);
  const Mafalda__Controller__Router *r = NULL;
  if (code == MF_OK)
    r = mf_fsm_find_router(fsm, c->u.open.id);
  else if (code == MF_ERR_EXISTS)
    r = mf_fsm_find_router_by_name(fsm, c->u.open.name);
  if (r && code == MF_OK)
    MF_LOG_INFO("router '%s' created: %s", r->name, r->id);
  else if (r)
    MF_LOG_INFO("router '%s': a concurrent open created it first (%s)", r->name, r->id);
  if (r)
    reply_open_router(req, r, code == MF_OK);
  else
    mf_rpc_reply(req, mf_rpc_status_of(code ? code : MF_ERR_INTERNAL),
                 code ? message : "router vanished", NULL);
}

static void reply_place(mf_rpc_request_t *req) {
  const mf_placement_transport_t *p = &call_of(req)->u.place;
  Mafalda__Cluster__PlaceTransportResponse resp =
      MAFALDA__CLUSTER__PLACE_TRANSPORT_RESPONSE__INIT;
  resp.node_id = (char *)p->node_id;
  resp.worker = p->worker;
  resp.rpc_address = (char *)p->rpc_address;
  resp.announced_ip = (char *)p->announced_ip;
  resp.new_shard = p->new_shard;
  resp.rule = (char *)mf_sched_rule_name(p->rule);
  mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_OK, "", &resp.base);
}

static void reply_pipe(mf_rpc_request_t *req) {
  const mf_placement_pipe_t *p = &call_of(req)->u.pipe;
  Mafalda__Cluster__PlacePipeResponse resp = MAFALDA__CLUSTER__PLACE_PIPE_RESPONSE__INIT;
  resp.action = (char *)mf_placement_pipe_action_name(p->action);
  resp.kind = (char *)mf_sched_pipe_kind_name(p->kind);
  resp.source_node_id = (char *)p->source_node_id;
  resp.source_worker = p->source_worker;
  resp.depth = p->depth;
  /* where the target reaches the source (a relay is not the producer's origin: the target
   * knows only the origin's addresses) */
  const Mafalda__Controller__Node *n =
      mf_fsm_find_node(mf_raft_node_fsm(call_of(req)->server->raft), p->source_node_id);
  char rtc[96] = "";
  for (size_t i = 0; n && i < n->n_workers; i++)
    if (n->workers[i]->index == p->source_worker && n->workers[i]->rtc_port && n->announced_ip)
      snprintf(rtc, sizeof rtc, strchr(n->announced_ip, ':') ? "[%s]:%u" : "%s:%u",
               n->announced_ip, n->workers[i]->rtc_port);
  resp.source_rpc_address = n && n->rpc_address ? n->rpc_address : "";
  resp.source_rtc_address = rtc;
  mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_OK, "", &resp.base);
}

/* ---- writes through Raft ---- */

static void write_done(void *ud, mf_err_t status, mf_err_t code, const char *message,
                       uint64_t index) {
  mf_rpc_request_t *req = ud;
  call_t *c = call_of(req);
  /* Whatever happens to the answer, the decision is no longer in flight. */
  if (c->reply_kind == REPLY_PLACE)
    mf_placement_landed(c->server->placement, c->u.place.flight);
  else if (c->reply_kind == REPLY_PIPE)
    mf_placement_landed(c->server->placement, c->u.pipe.flight);
  if (mf_rpc_endpoint_stopped(mf_rpc_request_endpoint(req))) return; /* nobody to answer */
  if (status == MF_ERR_STATE) {
    /* Leadership moved before the entry committed: it may still commit; the client retries
     * at the new leader (commands are validated, so a duplicate retry is refused). */
    reply_not_leader(req);
    return;
  }
  if (status != MF_OK) {
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE, message, NULL);
    return;
  }
  if (c->reply_kind == REPLY_REGISTER) {
    Mafalda__Cluster__RegisterNodeResponse resp = MAFALDA__CLUSTER__REGISTER_NODE_RESPONSE__INIT;
    const Mafalda__Controller__Node *n = mf_fsm_find_node(mf_raft_node_fsm(c->server->raft),
                                                          c->node_id);
    resp.state = n ? (Mafalda__Cluster__NodeState)n->state
                   : MAFALDA__CLUSTER__NODE_STATE__NODE_STATE_UNSPECIFIED;
    mf_rpc_reply(req, mf_rpc_status_of(code), code ? message : "", &resp.base);
    return;
  }
  if (c->reply_kind == REPLY_OPEN_ROUTER) return answer_open_router(req, code, message);
  if (c->reply_kind == REPLY_PLACE || c->reply_kind == REPLY_PIPE) {
    /* EXISTS: an earlier decision still in flight committed the same shard/pipe. */
    if (code != MF_OK && code != MF_ERR_EXISTS)
      mf_rpc_reply(req, mf_rpc_status_of(code), message, NULL);
    else if (c->reply_kind == REPLY_PLACE)
      reply_place(req);
    else
      reply_pipe(req);
    return;
  }
  Mafalda__Controller__CommandResult res = MAFALDA__CONTROLLER__COMMAND_RESULT__INIT;
  res.code = (int32_t)code;
  res.message = (char *)message;
  res.index = index;
  mf_rpc_reply(req, mf_rpc_status_of(code), code ? message : "", &res.base);
}

/* False when the command was not submitted (the request is answered already). */
static bool submit_write(mf_rpc_request_t *req, const Mafalda__Controller__Command *cmd) {
  mf_raft_node_t *raft = call_of(req)->server->raft;
  if (!mf_raft_node_is_leader(raft)) {
    reply_not_leader(req);
    return false;
  }
  mf_err_t err = mf_raft_node_submit(raft, cmd, write_done, req);
  if (err == MF_ERR_STATE)
    reply_not_leader(req);
  else if (err != MF_OK)
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE, mf_strerror(err), NULL);
  return err == MF_OK;
}

/* ---- methods ---- */

static void handle_apply(mf_rpc_request_t *req, const envelope_t *env) {
  Mafalda__Controller__Command *cmd = (Mafalda__Controller__Command *)mf_rpc_request_decode(
      req, env, &mafalda__controller__command__descriptor);
  if (!cmd) return;
  call_of(req)->reply_kind = REPLY_COMMAND;
  submit_write(req, cmd);
  protobuf_c_message_free_unpacked(&cmd->base, NULL);
}

/* controller.ApplyBatch: the commands go into the log back to back, so libraft writes and
 * replicates them together; one Apply per round trip held a node's records to the rate of
 * one commit at a time. The answer waits for the last outcome.
 * When an entry did not commit here (leadership moved, or Raft failed), the whole batch is
 * answered as a single Apply would be (NOT_LEADER / UNAVAILABLE), so the client sends all
 * of it again to the new leader: replaying the batch in order converges on the same state
 * (commands already applied are refused, or undone again by the later ones), where
 * resending only the failed entries could reorder them. */
typedef struct apply_batch apply_batch_t;
typedef struct {
  apply_batch_t *batch;
  size_t i;
} batch_item_t;
struct apply_batch {
  mf_rpc_request_t *req;
  size_t n, pending;
  mf_err_t failed;   /* MF_OK, or the first Raft-level failure of an entry */
  char why[128];
  Mafalda__Controller__CommandResult *results;
  Mafalda__Controller__CommandResult **ptrs;
  batch_item_t *items;
};

static void batch_free(apply_batch_t *b) {
  for (size_t i = 0; i < b->n; i++) free(b->results[i].message);
  free(b->results);
  free(b->ptrs);
  free(b->items);
  free(b);
}

static void batch_settle(apply_batch_t *b) {
  if (--b->pending) return;
  if (mf_rpc_endpoint_stopped(mf_rpc_request_endpoint(b->req))) {
    /* nobody to answer */
  } else if (b->failed == MF_ERR_STATE) {
    reply_not_leader(b->req);
  } else if (b->failed != MF_OK) {
    mf_rpc_reply(b->req, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE, b->why, NULL);
  } else {
    Mafalda__Controller__ApplyBatchResponse resp =
        MAFALDA__CONTROLLER__APPLY_BATCH_RESPONSE__INIT;
    resp.n_results = b->n;
    resp.results = b->ptrs;
    mf_rpc_reply(b->req, MAFALDA__RPC__STATUS__STATUS_OK, "", &resp.base);
  }
  batch_free(b);
}

static void batch_result(apply_batch_t *b, size_t i, mf_err_t code, const char *message,
                         uint64_t index) {
  Mafalda__Controller__CommandResult *r = &b->results[i];
  r->code = (int32_t)code;
  r->index = code == MF_OK ? index : 0;
  r->message = strdup(code == MF_OK ? "" : message && message[0] ? message : mf_strerror(code));
}

/* A Raft-level failure (not a command the FSM refused): the batch is to be sent again. */
static void batch_failed(apply_batch_t *b, mf_err_t status, const char *message) {
  if (b->failed != MF_OK) return;
  b->failed = status;
  snprintf(b->why, sizeof b->why, "%s", message && message[0] ? message : mf_strerror(status));
}

static void batch_item_done(void *ud, mf_err_t status, mf_err_t code, const char *message,
                            uint64_t index) {
  batch_item_t *it = ud;
  if (status != MF_OK)
    batch_failed(it->batch, status, message);
  else
    batch_result(it->batch, it->i, code, message, index);
  batch_settle(it->batch);
}

static void handle_apply_batch(mf_rpc_request_t *req, const envelope_t *env) {
  Mafalda__Controller__ApplyBatchRequest *r = (Mafalda__Controller__ApplyBatchRequest *)
      mf_rpc_request_decode(req, env, &mafalda__controller__apply_batch_request__descriptor);
  if (!r) return;
  mf_raft_node_t *raft = call_of(req)->server->raft;
  apply_batch_t *b = NULL;
  if (r->n_commands == 0 || r->n_commands > MF_RPC_APPLY_BATCH_MAX) {
    char why[64];
    snprintf(why, sizeof why, "%zu commands (1 to %d)", r->n_commands, MF_RPC_APPLY_BATCH_MAX);
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT, why, NULL);
  } else if (!mf_raft_node_is_leader(raft)) {
    reply_not_leader(req);
  } else if (!(b = calloc(1, sizeof *b)) ||
             !(b->results = calloc(r->n_commands, sizeof *b->results)) ||
             !(b->ptrs = calloc(r->n_commands, sizeof *b->ptrs)) ||
             !(b->items = calloc(r->n_commands, sizeof *b->items))) {
    if (b) batch_free(b);
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_ERROR, "out of memory", NULL);
  } else {
    b->req = req;
    b->n = r->n_commands;
    b->pending = b->n + 1; /* + this loop: no answer before every command is submitted */
    for (size_t i = 0; i < b->n; i++) {
      Mafalda__Controller__CommandResult init = MAFALDA__CONTROLLER__COMMAND_RESULT__INIT;
      b->results[i] = init;
      b->results[i].message = NULL; /* set (strdup) with the outcome; freed by batch_free */
      b->ptrs[i] = &b->results[i];
      b->items[i] = (batch_item_t){b, i};
      Mafalda__Controller__Command *cmd = mafalda__controller__command__unpack(
          NULL, r->commands[i].len, r->commands[i].data);
      mf_err_t err = cmd ? mf_raft_node_submit(raft, cmd, batch_item_done, &b->items[i])
                         : MF_ERR_PARSE;
      if (cmd) protobuf_c_message_free_unpacked(&cmd->base, NULL);
      if (err == MF_OK) continue;
      /* This item alone can never be applied (undecodable, over the size limit): its own
       * refusal. Anything else (no memory, no longer leader): the batch goes again. */
      if (err == MF_ERR_PARSE || err == MF_ERR_LIMIT)
        batch_result(b, i, err, cmd ? "command too large" : "command does not decode", 0);
      else
        batch_failed(b, err, NULL);
      b->pending--;
    }
    batch_settle(b);
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void handle_create_router(mf_rpc_request_t *req, const envelope_t *env) {
  Mafalda__Controller__CreateRouter *cr = (Mafalda__Controller__CreateRouter *)
      mf_rpc_request_decode(req, env, &mafalda__controller__create_router__descriptor);
  if (!cr) return;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER;
  cmd.create_router = cr;
  call_of(req)->reply_kind = REPLY_COMMAND;
  submit_write(req, &cmd);
  protobuf_c_message_free_unpacked(&cr->base, NULL);
}

static void handle_register_node(mf_rpc_request_t *req, const envelope_t *env) {
  Mafalda__Cluster__RegisterNodeRequest *r = (Mafalda__Cluster__RegisterNodeRequest *)
      mf_rpc_request_decode(req, env, &mafalda__cluster__register_node_request__descriptor);
  if (!r) return;
  if (r->n_workers > MF_FSM_WORKERS_MAX) {
    protobuf_c_message_free_unpacked(&r->base, NULL);
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT, "too many workers", NULL);
    return;
  }
  Mafalda__Controller__Worker w[MF_FSM_WORKERS_MAX], *wp[MF_FSM_WORKERS_MAX];
  for (size_t i = 0; i < r->n_workers; i++) {
    Mafalda__Controller__Worker init = MAFALDA__CONTROLLER__WORKER__INIT;
    w[i] = init;
    w[i].index = r->workers[i]->index;
    w[i].rtc_port = r->workers[i]->rtc_port;
    w[i].capacity_pps = r->workers[i]->capacity_pps;
    wp[i] = &w[i];
  }
  Mafalda__Controller__Node node = MAFALDA__CONTROLLER__NODE__INIT;
  node.id = r->node_id;
  node.name = r->name;
  node.rpc_address = r->rpc_address;
  node.gossip_address = r->gossip_address;
  node.announced_ip = r->announced_ip;
  node.n_workers = r->n_workers;
  node.workers = wp;
  Mafalda__Controller__RegisterNode reg = MAFALDA__CONTROLLER__REGISTER_NODE__INIT;
  reg.node = &node;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_REGISTER_NODE;
  cmd.register_node = &reg;
  call_t *c = call_of(req);
  c->reply_kind = REPLY_REGISTER;
  snprintf(c->node_id, sizeof(c->node_id), "%s", r->node_id ? r->node_id : "");
  submit_write(req, &cmd);
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void fill_status(mf_rpc_server_t *srv, Mafalda__Controller__StatusResponse *st) {
  mf_raft_node_t *raft = srv->raft;
  const char *addr = "";
  st->id = mf_raft_node_id(raft);
  st->leader_id = mf_raft_node_leader(raft, &addr);
  st->leader_address = (char *)addr;
  st->is_leader = mf_raft_node_is_leader(raft);
  st->last_applied = mf_raft_node_last_applied(raft);
  st->load_reports = srv->loads ? (uint32_t)mf_hashmap_count(srv->loads) : 0;
  st->term = mf_raft_node_term(raft);
}

static void answer_status(mf_rpc_request_t *req) {
  mf_rpc_server_t *srv = call_of(req)->server;
  Mafalda__Controller__StatusResponse resp = MAFALDA__CONTROLLER__STATUS_RESPONSE__INIT;
  fill_status(srv, &resp);
  char *dump = mf_fsm_dump(mf_raft_node_fsm(srv->raft));
  if (!dump) {
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_ERROR, "out of memory", NULL);
    return;
  }
  resp.dump = dump;
  mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_OK, "", &resp.base);
  free(dump);
}

typedef struct {
  Mafalda__Cluster__LoadReport **items;
  size_t n;
} load_list_t;

static void collect_load(const void *key, void *value, void *ud) {
  (void)key;
  load_list_t *l = ud;
  l->items[l->n++] = value;
}

static int cmp_load(const void *a, const void *b) {
  const Mafalda__Cluster__LoadReport *x = *(Mafalda__Cluster__LoadReport *const *)a;
  const Mafalda__Cluster__LoadReport *y = *(Mafalda__Cluster__LoadReport *const *)b;
  return strcmp(x->node_id, y->node_id);
}

/* controller.State: the status fields without the text dump, the term, the state as a
 * structured Snapshot and the load reports held (mafalda-ctl renders tables and JSON from
 * them). */
static void answer_state(mf_rpc_request_t *req) {
  mf_rpc_server_t *srv = call_of(req)->server;
  Mafalda__Controller__StatusResponse st = MAFALDA__CONTROLLER__STATUS_RESPONSE__INIT;
  fill_status(srv, &st);
  uint8_t *packed = NULL;
  size_t len = 0;
  Mafalda__Controller__Snapshot *snap = NULL;
  if (mf_fsm_snapshot(mf_raft_node_fsm(srv->raft), &packed, &len) == MF_OK)
    snap = mafalda__controller__snapshot__unpack(NULL, len, packed);
  free(packed);
  if (!snap) {
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_ERROR, "out of memory", NULL);
    return;
  }
  Mafalda__Controller__StateResponse resp = MAFALDA__CONTROLLER__STATE_RESPONSE__INIT;
  resp.status = &st;
  resp.term = mf_raft_node_term(srv->raft);
  resp.state = snap;
  /* Borrowed from the map: nothing runs on the loop between here and the reply. */
  load_list_t loads = {NULL, 0};
  size_t held = srv->loads ? mf_hashmap_count(srv->loads) : 0;
  if (held && (loads.items = calloc(held, sizeof(*loads.items))) != NULL) {
    mf_hashmap_foreach(srv->loads, collect_load, &loads);
    qsort(loads.items, loads.n, sizeof(*loads.items), cmp_load);
  }
  resp.n_loads = loads.n;
  resp.loads = loads.items;
  resp.wall_clock_ms = mf_clock_wall_ms();
  mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_OK, "", &resp.base);
  free(loads.items);
  mafalda__controller__snapshot__free_unpacked(snap, NULL);
}

static void answer_read(mf_rpc_request_t *req) {
  if (call_of(req)->reply_kind == REPLY_STATE)
    answer_state(req);
  else
    answer_status(req);
}

static void status_barrier_done(void *ud, mf_err_t status) {
  mf_rpc_request_t *req = ud;
  if (mf_rpc_endpoint_stopped(mf_rpc_request_endpoint(req))) return;
  if (status == MF_ERR_STATE)
    reply_not_leader(req);
  else if (status != MF_OK)
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE, mf_strerror(status), NULL);
  else
    answer_read(req);
}

static void handle_status(mf_rpc_request_t *req, const envelope_t *env, int kind) {
  Mafalda__Controller__StatusRequest *sr = (Mafalda__Controller__StatusRequest *)
      mf_rpc_request_decode(req, env, &mafalda__controller__status_request__descriptor);
  if (!sr) return;
  bool linearizable = sr->linearizable;
  protobuf_c_message_free_unpacked(&sr->base, NULL);
  call_t *c = call_of(req);
  c->reply_kind = kind;
  if (!linearizable) return answer_read(req);
  if (!mf_raft_node_is_leader(c->server->raft)) return reply_not_leader(req);
  mf_err_t err = mf_raft_node_barrier(c->server->raft, status_barrier_done, req);
  if (err == MF_ERR_STATE)
    reply_not_leader(req);
  else if (err != MF_OK)
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE, mf_strerror(err), NULL);
}

static void free_load(const void *key, void *value, void *ud) {
  (void)key;
  (void)ud;
  protobuf_c_message_free_unpacked(value, NULL);
}

static void clear_loads(mf_rpc_server_t *srv) {
  if (!srv->loads || mf_hashmap_count(srv->loads) == 0) return;
  mf_hashmap_foreach(srv->loads, free_load, NULL);
  mf_hashmap_destroy(srv->loads);
  srv->loads = NULL;
  mf_hashmap_create(LOAD_KEY, 64, &srv->loads);
}

static bool load_key(const char *id, uint8_t key[LOAD_KEY]) {
  size_t n = id ? strnlen(id, LOAD_KEY + 1) : 0;
  if (n == 0 || n > LOAD_KEY) return false;
  memset(key, 0, LOAD_KEY);
  memcpy(key, id, n);
  return true;
}

const Mafalda__Cluster__LoadReport *mf_rpc_server_load(const mf_rpc_server_t *srv,
                                                      const char *node_id) {
  uint8_t key[LOAD_KEY];
  if (!srv->loads || !load_key(node_id, key)) return NULL;
  return mf_hashmap_get(srv->loads, key);
}

static void handle_report_load(mf_rpc_request_t *req, const envelope_t *env) {
  mf_rpc_server_t *srv = call_of(req)->server;
  if (!mf_raft_node_is_leader(srv->raft)) return reply_not_leader(req);
  Mafalda__Cluster__LoadReport *r = (Mafalda__Cluster__LoadReport *)mf_rpc_request_decode(
      req, env, &mafalda__cluster__load_report__descriptor);
  if (!r) return;
  Mafalda__Cluster__LoadReportResponse resp = MAFALDA__CLUSTER__LOAD_REPORT_RESPONSE__INIT;
  uint8_t key[LOAD_KEY];
  const Mafalda__Controller__Node *node =
      load_key(r->node_id, key) ? mf_fsm_find_node(mf_raft_node_fsm(srv->raft), r->node_id)
                                : NULL;
  resp.known_node = node != NULL;
  resp.state = node ? (Mafalda__Cluster__NodeState)node->state
                    : MAFALDA__CLUSTER__NODE_STATE__NODE_STATE_UNSPECIFIED;
  if (resp.known_node && srv->loads) {
    Mafalda__Cluster__LoadReport *old = mf_hashmap_get(srv->loads, key);
    if (old && old->sequence >= r->sequence) {
      protobuf_c_message_free_unpacked(&r->base, NULL); /* stale or repeated */
    } else {
      if (old) {
        mf_hashmap_remove(srv->loads, key);
        protobuf_c_message_free_unpacked(&old->base, NULL);
      }
      if (mf_hashmap_put(srv->loads, key, r) != MF_OK)
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
  } else {
    protobuf_c_message_free_unpacked(&r->base, NULL);
  }
  mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_OK, "", &resp.base);
}

static const char *event_name(Mafalda__Cluster__EventKind k) {
  switch (k) {
    case MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_WORKER_STALLED: return "worker stalled";
    case MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_WORKER_RECOVERED: return "worker recovered";
    case MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_SHARD_OPENED: return "shard opened";
    case MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_SHARD_CLOSED: return "shard closed";
    case MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_NODE_DRAINING: return "draining";
    case MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_NODE_LEAVING: return "leaving";
    case MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_PRODUCER_CLOSED: return "producer closed";
    case MAFALDA__CLUSTER__EVENT_KIND__EVENT_KIND_TRANSPORT_FAILED: return "transport failed";
    default: return "event";
  }
}

/* cluster.ReportEvents: what happened on a node (leader only). Logged for operators; a
 * stalled worker is also flagged in the node's load reports, which is what placement
 * reads. */
static void handle_report_events(mf_rpc_request_t *req, const envelope_t *env) {
  mf_rpc_server_t *srv = call_of(req)->server;
  if (!mf_raft_node_is_leader(srv->raft)) return reply_not_leader(req);
  Mafalda__Cluster__ReportEventsRequest *r = (Mafalda__Cluster__ReportEventsRequest *)
      mf_rpc_request_decode(req, env, &mafalda__cluster__report_events_request__descriptor);
  if (!r) return;
  Mafalda__Cluster__ReportEventsResponse resp = MAFALDA__CLUSTER__REPORT_EVENTS_RESPONSE__INIT;
  uint8_t key[LOAD_KEY];
  resp.known_node = load_key(r->node_id, key) &&
                    mf_fsm_find_node(mf_raft_node_fsm(srv->raft), r->node_id) != NULL;
  for (size_t i = 0; resp.known_node && i < r->n_events; i++) {
    const Mafalda__Cluster__NodeEvent *e = r->events[i];
    MF_LOG_INFO("node %s: %s (worker %u%s%s): %.128s", r->node_id, event_name(e->kind),
                e->worker, e->object_id && e->object_id[0] ? ", " : "",
                e->object_id ? e->object_id : "", e->detail ? e->detail : "");
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
  mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_OK, "", &resp.base);
}

/* After AddVoter / RemoveVoter changed the configuration: the replicated address row
 * follows (SetControllerAddress), and the answer waits for it, so a client told "ok" can
 * be redirected to that voter by every replica. Nothing to record: answered at once. */
static void record_address(mf_rpc_request_t *req, const char *message) {
  call_t *c = call_of(req);
  const voter_t *v = &c->u.voter;
  bool has_row = mf_fsm_find_controller(mf_raft_node_fsm(c->server->raft), v->id) != NULL;
  if (v->add ? !v->rpc_address[0] : !has_row) {
    Mafalda__Controller__CommandResult res = MAFALDA__CONTROLLER__COMMAND_RESULT__INIT;
    res.message = (char *)message;
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_OK, "", &res.base);
    return;
  }
  Mafalda__Controller__SetControllerAddress set =
      MAFALDA__CONTROLLER__SET_CONTROLLER_ADDRESS__INIT;
  set.raft_id = v->id;
  set.raft_address = v->add ? (char *)v->raft_address : (char *)"";
  set.rpc_address = v->add ? (char *)v->rpc_address : (char *)"";
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_SET_CONTROLLER_ADDRESS;
  cmd.set_controller_address = &set;
  c->reply_kind = REPLY_COMMAND; /* write_done answers with the row's CommandResult */
  submit_write(req, &cmd);
}

static void change_reply(void *ud, mf_err_t status, const char *message) {
  mf_rpc_request_t *req = ud;
  if (mf_rpc_endpoint_stopped(mf_rpc_request_endpoint(req))) return;
  if (status == MF_ERR_STATE) return reply_not_leader(req);
  if (status == MF_OK) return record_address(req, message);
  Mafalda__Controller__CommandResult res = MAFALDA__CONTROLLER__COMMAND_RESULT__INIT;
  res.code = (int32_t)status;
  res.message = (char *)message;
  mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_ERROR, message, &res.base);
}

/* Bounded like the FSM's addresses and the local peer table (128 bytes). */
static bool valid_address(const char *a, bool required) {
  size_t n = a ? strnlen(a, sizeof(((mf_raft_peer_t *)0)->rpc_address)) : 0;
  if (n == 0) return !required;
  if (n >= sizeof(((mf_raft_peer_t *)0)->rpc_address)) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)a[i] <= 0x20 || a[i] == 0x7f) return false;
  return true;
}

/* A client retrying after a redirect (leadership moved between the membership change and
 * its address row) completes the row: AddVoter with an rpc address of a member at the
 * same Raft address, or RemoveVoter of a non-member that still has a row, only records
 * the row. Without an rpc address, adding a member again is still refused. */
static void handle_membership(mf_rpc_request_t *req, const envelope_t *env, bool add) {
  mf_rpc_server_t *srv = call_of(req)->server;
  if (!mf_raft_node_is_leader(srv->raft)) return reply_not_leader(req);
  mf_err_t err;
  call_t *c = call_of(req);
  c->reply_kind = REPLY_CHANGE;
  voter_t *v = &c->u.voter;
  memset(v, 0, sizeof(*v));
  v->add = add;
  const char *member_address = "";
  if (add) {
    Mafalda__Controller__AddVoterRequest *a = (Mafalda__Controller__AddVoterRequest *)
        mf_rpc_request_decode(req, env, &mafalda__controller__add_voter_request__descriptor);
    if (!a) return;
    if (!valid_address(a->raft_address, true) || !valid_address(a->rpc_address, false)) {
      protobuf_c_message_free_unpacked(&a->base, NULL);
      return mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT,
                          "addresses must be host:port, at most 127 bytes", NULL);
    }
    v->id = a->id;
    snprintf(v->raft_address, sizeof(v->raft_address), "%s", a->raft_address);
    snprintf(v->rpc_address, sizeof(v->rpc_address), "%s", a->rpc_address ? a->rpc_address : "");
    protobuf_c_message_free_unpacked(&a->base, NULL);
    if (v->rpc_address[0] && mf_raft_node_member(srv->raft, v->id, &member_address) &&
        strcmp(member_address, v->raft_address) == 0)
      return record_address(req, "already a member");
    err = mf_raft_node_add_voter(srv->raft, v->id, v->raft_address, v->rpc_address,
                                 change_reply, req);
  } else {
    Mafalda__Controller__RemoveVoterRequest *r = (Mafalda__Controller__RemoveVoterRequest *)
        mf_rpc_request_decode(req, env, &mafalda__controller__remove_voter_request__descriptor);
    if (!r) return;
    v->id = r->id;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    if (v->id && !mf_raft_node_member(srv->raft, v->id, NULL) &&
        mf_fsm_find_controller(mf_raft_node_fsm(srv->raft), v->id))
      return record_address(req, "not a member");
    err = mf_raft_node_remove_server(srv->raft, v->id, change_reply, req);
  }
  if (err == MF_ERR_STATE) {
    reply_not_leader(req);
  } else if (err == MF_ERR_INVALID_ARG) {
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT,
                 "bad id or address, or already a member", NULL);
  } else if (err != MF_OK) {
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE,
                 err == MF_ERR_FULL ? "another membership change is in progress"
                                    : mf_strerror(err), NULL);
  }
}

/* ---- placement (leader only) ---- */

static const Mafalda__Cluster__LoadReport *load_of(void *ud, const char *node_id) {
  return mf_rpc_server_load(ud, node_id);
}

static mf_placement_input_t placement_input(mf_rpc_server_t *srv) {
  return (mf_placement_input_t){mf_raft_node_fsm(srv->raft), load_of, srv, mf_clock_now_ms()};
}

static bool valid_name(const char *name) {
  size_t n = name ? strnlen(name, MF_FSM_NAME_MAX + 1) : 0;
  if (n == 0 || n > MF_FSM_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return false;
  return true;
}

/* controller.OpenRouter: the router named so, created when absent. A concurrent open of
 * the same name loses at the FSM (names are unique) and answers with the winner. */
static void handle_open_router(mf_rpc_request_t *req, const envelope_t *env) {
  mf_rpc_server_t *srv = call_of(req)->server;
  if (!mf_raft_node_is_leader(srv->raft)) return reply_not_leader(req);
  Mafalda__Cluster__OpenRouterRequest *o = (Mafalda__Cluster__OpenRouterRequest *)
      mf_rpc_request_decode(req, env, &mafalda__cluster__open_router_request__descriptor);
  if (!o) return;
  call_t *c = call_of(req);
  const Mafalda__Controller__Router *existing = NULL;
  if (!valid_name(o->name)) {
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT,
                 "router name must be 1..256 bytes without control characters", NULL);
  } else if ((existing = mf_fsm_find_router_by_name(mf_raft_node_fsm(srv->raft), o->name))) {
    reply_open_router(req, existing, false);
  } else if (mf_id_generate(c->u.open.id) != MF_OK) {
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_ERROR, "cannot generate an id", NULL);
  } else {
    snprintf(c->u.open.name, sizeof(c->u.open.name), "%s", o->name);
    Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
    r.id = c->u.open.id;
    r.name = c->u.open.name;
    r.codecs_json = o->codecs_json;
    r.app_data_json = o->app_data_json;
    Mafalda__Controller__CreateRouter cr = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
    cr.router = &r;
    Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
    cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER;
    cmd.create_router = &cr;
    c->reply_kind = REPLY_OPEN_ROUTER;
    submit_write(req, &cmd);
  }
  protobuf_c_message_free_unpacked(&o->base, NULL);
}

/* controller.PlaceTransport: the scheduler's choice; a shard not in the state yet is
 * committed (AddShard) before the answer. */
static void handle_place_transport(mf_rpc_request_t *req, const envelope_t *env) {
  mf_rpc_server_t *srv = call_of(req)->server;
  if (!mf_raft_node_is_leader(srv->raft)) return reply_not_leader(req);
  Mafalda__Cluster__PlaceTransportRequest *r = (Mafalda__Cluster__PlaceTransportRequest *)
      mf_rpc_request_decode(req, env, &mafalda__cluster__place_transport_request__descriptor);
  if (!r) return;
  call_t *c = call_of(req);
  mf_placement_input_t in = placement_input(srv);
  char msg[MF_FSM_MESSAGE_MAX];
  mf_err_t err = mf_placement_place_transport(srv->placement, &in, r->router_id,
                                              r->expected_pps, r->only_node_id,
                                              r->prefer_node_id, &c->u.place,
                                              msg, sizeof(msg));
  protobuf_c_message_free_unpacked(&r->base, NULL);
  if (err != MF_OK) return mf_rpc_reply(req, mf_rpc_status_of(err), msg, NULL);
  if (!c->u.place.flight) return reply_place(req);
  Mafalda__Controller__Shard sh = MAFALDA__CONTROLLER__SHARD__INIT;
  sh.router_id = c->u.place.router_id;
  sh.node_id = c->u.place.node_id;
  sh.worker = c->u.place.worker;
  Mafalda__Controller__AddShard as = MAFALDA__CONTROLLER__ADD_SHARD__INIT;
  as.shard = &sh;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_SHARD;
  cmd.add_shard = &as;
  c->reply_kind = REPLY_PLACE;
  if (!submit_write(req, &cmd)) mf_placement_landed(srv->placement, c->u.place.flight);
}

/* controller.PlacePipe: the scheduler's pipe plan; a pipe to open is committed (AddPipe)
 * before the answer. */
static void handle_place_pipe(mf_rpc_request_t *req, const envelope_t *env) {
  mf_rpc_server_t *srv = call_of(req)->server;
  if (!mf_raft_node_is_leader(srv->raft)) return reply_not_leader(req);
  Mafalda__Cluster__PlacePipeRequest *r = (Mafalda__Cluster__PlacePipeRequest *)
      mf_rpc_request_decode(req, env, &mafalda__cluster__place_pipe_request__descriptor);
  if (!r) return;
  call_t *c = call_of(req);
  mf_placement_input_t in = placement_input(srv);
  char msg[MF_FSM_MESSAGE_MAX];
  mf_err_t err = mf_placement_plan_pipe(srv->placement, &in, r->producer_id, r->target_node_id,
                                        r->target_worker, &c->u.pipe, msg, sizeof(msg));
  protobuf_c_message_free_unpacked(&r->base, NULL);
  if (err != MF_OK) return mf_rpc_reply(req, mf_rpc_status_of(err), msg, NULL);
  if (!c->u.pipe.flight) return reply_pipe(req);
  Mafalda__Controller__Pipe p = MAFALDA__CONTROLLER__PIPE__INIT;
  p.producer_id = c->u.pipe.producer_id;
  p.target_node_id = c->u.pipe.target_node_id;
  p.target_worker = c->u.pipe.target_worker;
  p.source_node_id = c->u.pipe.source_node_id;
  p.source_worker = c->u.pipe.source_worker;
  Mafalda__Controller__AddPipe ap = MAFALDA__CONTROLLER__ADD_PIPE__INIT;
  ap.pipe = &p;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PIPE;
  cmd.add_pipe = &ap;
  c->reply_kind = REPLY_PIPE;
  if (!submit_write(req, &cmd)) mf_placement_landed(srv->placement, c->u.pipe.flight);
}

/* controller.RouterNodes: the nodes holding shards of a router (with their node RPC
 * addresses), so a node that opens a shard finds the others. Leader only (linearizable:
 * a node that got its AddShard committed before asking sees every shard committed before). */
typedef struct {
  const char *router_id;
  const mf_fsm_t *fsm;
  Mafalda__Cluster__RouterNode items[64];
  Mafalda__Cluster__RouterNode *ptrs[64];
  size_t n;
} router_nodes_t;

static void collect_router_node(void *ud, const Mafalda__Controller__Shard *s) {
  router_nodes_t *rn = ud;
  if (strcmp(s->router_id, rn->router_id) != 0 || rn->n == 64) return;
  for (size_t i = 0; i < rn->n; i++)
    if (strcmp(rn->items[i].node_id, s->node_id) == 0) return;
  const Mafalda__Controller__Node *node = mf_fsm_find_node(rn->fsm, s->node_id);
  if (!node || node->state == MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD) return;
  Mafalda__Cluster__RouterNode init = MAFALDA__CLUSTER__ROUTER_NODE__INIT;
  rn->items[rn->n] = init;
  rn->items[rn->n].node_id = s->node_id;
  rn->items[rn->n].rpc_address = node->rpc_address;
  rn->ptrs[rn->n] = &rn->items[rn->n];
  rn->n++;
}

static void handle_router_nodes(mf_rpc_request_t *req, const envelope_t *env) {
  mf_rpc_server_t *srv = call_of(req)->server;
  if (!mf_raft_node_is_leader(srv->raft)) return reply_not_leader(req);
  Mafalda__Cluster__RouterNodesRequest *r = (Mafalda__Cluster__RouterNodesRequest *)
      mf_rpc_request_decode(req, env, &mafalda__cluster__router_nodes_request__descriptor);
  if (!r) return;
  router_nodes_t *rn = calloc(1, sizeof *rn);
  if (!rn) {
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_ERROR, "out of memory", NULL);
  }
  rn->router_id = r->router_id;
  rn->fsm = mf_raft_node_fsm(srv->raft);
  mf_fsm_foreach_shard(rn->fsm, collect_router_node, rn);
  Mafalda__Cluster__RouterNodesResponse resp = MAFALDA__CLUSTER__ROUTER_NODES_RESPONSE__INIT;
  resp.n_nodes = rn->n;
  resp.nodes = rn->ptrs;
  mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_OK, "", &resp.base);
  free(rn);
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void handle_request(void *ud, mf_rpc_request_t *req, const envelope_t *env) {
  mf_rpc_server_t *srv = ud;
  call_of(req)->server = srv;
  const char *m = mf_rpc_request_method(req);
  /* Loads and pending placements held from an earlier term would be stale when
   * leadership comes back. */
  if (!mf_raft_node_is_leader(srv->raft)) {
    clear_loads(srv);
    mf_placement_reset(srv->placement);
  }
  if (strcmp(m, MF_RPC_METHOD_APPLY) == 0) {
    handle_apply(req, env);
  } else if (strcmp(m, MF_RPC_METHOD_APPLY_BATCH) == 0) {
    handle_apply_batch(req, env);
  } else if (strcmp(m, MF_RPC_METHOD_CREATE_ROUTER) == 0) {
    handle_create_router(req, env);
  } else if (strcmp(m, MF_RPC_METHOD_REGISTER_NODE) == 0) {
    handle_register_node(req, env);
  } else if (strcmp(m, MF_RPC_METHOD_STATUS) == 0) {
    handle_status(req, env, REPLY_STATUS);
  } else if (strcmp(m, MF_RPC_METHOD_STATE) == 0) {
    handle_status(req, env, REPLY_STATE);
  } else if (strcmp(m, MF_RPC_METHOD_REPORT_LOAD) == 0) {
    handle_report_load(req, env);
  } else if (strcmp(m, MF_RPC_METHOD_REPORT_EVENTS) == 0) {
    handle_report_events(req, env);
  } else if (strcmp(m, MF_RPC_METHOD_ADD_VOTER) == 0) {
    handle_membership(req, env, true);
  } else if (strcmp(m, MF_RPC_METHOD_REMOVE_VOTER) == 0) {
    handle_membership(req, env, false);
  } else if (strcmp(m, MF_RPC_METHOD_OPEN_ROUTER) == 0) {
    handle_open_router(req, env);
  } else if (strcmp(m, MF_RPC_METHOD_PLACE_TRANSPORT) == 0) {
    handle_place_transport(req, env);
  } else if (strcmp(m, MF_RPC_METHOD_PLACE_PIPE) == 0) {
    handle_place_pipe(req, env);
  } else if (strcmp(m, MF_RPC_METHOD_ROUTER_NODES) == 0) {
    handle_router_nodes(req, env);
  } else {
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_UNKNOWN_METHOD, "unknown method", NULL);
  }
}

mf_err_t mf_rpc_server_start(uv_loop_t *loop, mf_raft_node_t *raft,
                             const mf_rpc_server_config_t *config, mf_rpc_server_t **out) {
  mf_rpc_server_t *srv = calloc(1, sizeof(*srv));
  if (!srv) return MF_ERR_NO_MEMORY;
  srv->raft = raft;
  mf_err_t err = mf_placement_create(&config->placement, &srv->placement);
  if (!err) err = mf_hashmap_create(LOAD_KEY, 64, &srv->loads);
  if (err) {
    mf_placement_destroy(srv->placement);
    free(srv);
    *out = NULL;
    return err;
  }
  mf_rpc_endpoint_config_t ec = {.listen_url = config->listen_url,
                                 .max_message = config->max_message,
                                 .contexts = config->contexts,
                                 .user_size = sizeof(call_t),
                                 .handler = handle_request,
                                 .ud = srv,
                                 .log_name = "controller rpc"};
  err = mf_rpc_endpoint_start(loop, &ec, &srv->ep);
  *out = srv;
  return err;
}

void mf_rpc_server_stop(mf_rpc_server_t *srv) {
  if (srv) mf_rpc_endpoint_stop(srv->ep);
}

void mf_rpc_server_destroy(mf_rpc_server_t *srv) {
  if (!srv) return;
  mf_rpc_endpoint_free(srv->ep);
  if (srv->loads) {
    mf_hashmap_foreach(srv->loads, free_load, NULL);
    mf_hashmap_destroy(srv->loads);
  }
  mf_placement_destroy(srv->placement);
  free(srv);
}
