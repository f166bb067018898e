#include "controller/placement.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MF_LOG_MODULE "placement"
#include "common/log.h"

typedef enum { FLIGHT_SHARD = 1, FLIGHT_PIPE } flight_kind_t;

/* A decision whose AddShard / AddPipe was submitted but has not landed. */
typedef struct {
  uint64_t token;
  flight_kind_t kind;
  char object_id[MF_FSM_ID_MAX + 1]; /* shard: router id; pipe: producer id */
  char node_id[MF_FSM_ID_MAX + 1];   /* shard: its node; pipe: target node */
  uint32_t worker;                   /* shard: its worker; pipe: target worker */
  char source_node_id[MF_FSM_ID_MAX + 1]; /* pipe only */
  uint32_t source_worker;
} flight_t;

struct mf_placement {
  mf_placement_config_t cfg; /* defaults applied */
  mf_sched_pending_t pending;
  flight_t *flights;
  size_t n_flights, cap_flights;
  uint64_t next_token;
};

__attribute__((format(printf, 3, 4))) static void say(char *msg, size_t size,
                                                      const char *fmt, ...) {
  if (!msg || size == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, size, fmt, ap);
  va_end(ap);
}

/* The FSM's id rule (1..64 printable ASCII bytes, no spaces): anything else cannot name an
 * object, so it is a malformed request rather than an unknown id. */
static bool valid_id(const char *id) {
  size_t n = id ? strnlen(id, MF_FSM_ID_MAX + 1) : 0;
  if (n == 0 || n > MF_FSM_ID_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (id[i] <= 0x20 || id[i] >= 0x7f) return false;
  return true;
}

/* Copies at most cap - 1 bytes and terminates (the sources are FSM-validated already). */
static void copy_str(char *dst, size_t cap, const char *src) {
  size_t n = src ? strnlen(src, cap - 1) : 0;
  memcpy(dst, src ? src : "", n);
  dst[n] = '\0';
}

/* Quotes a client-supplied id in messages without letting it fill them. */
#define QID(s) (int)strnlen((s) ? (s) : "", 80), (s) ? (s) : ""

mf_err_t mf_placement_create(const mf_placement_config_t *config, mf_placement_t **out) {
  mf_placement_config_t c = {0};
  if (config) c = *config;
  if (!isfinite(c.default_capacity_pps) || c.default_capacity_pps < 0 ||
      !isfinite(c.default_expected_pps) || c.default_expected_pps < 0 ||
      !isfinite(c.watermark) || c.watermark < 0 || c.watermark > 1)
    return MF_ERR_INVALID_ARG;
  if (c.default_capacity_pps == 0) c.default_capacity_pps = MF_PLACEMENT_DEFAULT_CAPACITY_PPS;
  if (c.default_expected_pps == 0) c.default_expected_pps = MF_PLACEMENT_DEFAULT_EXPECTED_PPS;
  if (c.pending_ttl_ms == 0) c.pending_ttl_ms = MF_PLACEMENT_DEFAULT_PENDING_TTL_MS;
  mf_placement_t *pl = calloc(1, sizeof(*pl));
  if (!pl) return MF_ERR_NO_MEMORY;
  pl->cfg = c;
  mf_sched_pending_init(&pl->pending);
  pl->next_token = 1;
  *out = pl;
  return MF_OK;
}

void mf_placement_destroy(mf_placement_t *pl) {
  if (!pl) return;
  mf_sched_pending_free(&pl->pending);
  free(pl->flights);
  free(pl);
}

void mf_placement_reset(mf_placement_t *pl) {
  if (pl) pl->pending.count = 0;
}

size_t mf_placement_pending_count(const mf_placement_t *pl) { return pl->pending.count; }
size_t mf_placement_flight_count(const mf_placement_t *pl) { return pl->n_flights; }

/* ---- in-flight decisions ---- */

static uint64_t flight_add(mf_placement_t *pl, flight_kind_t kind, const char *object_id,
                           const char *node_id, uint32_t worker, const char *source_node_id,
                           uint32_t source_worker) {
  if (pl->n_flights == pl->cap_flights) {
    size_t cap = pl->cap_flights ? pl->cap_flights * 2 : 16;
    flight_t *f = realloc(pl->flights, cap * sizeof(*f));
    if (!f) return 0;
    pl->flights = f;
    pl->cap_flights = cap;
  }
  flight_t *f = &pl->flights[pl->n_flights++];
  memset(f, 0, sizeof(*f));
  f->token = pl->next_token++;
  f->kind = kind;
  copy_str(f->object_id, sizeof(f->object_id), object_id);
  copy_str(f->node_id, sizeof(f->node_id), node_id);
  f->worker = worker;
  copy_str(f->source_node_id, sizeof(f->source_node_id), source_node_id);
  f->source_worker = source_worker;
  return f->token;
}

void mf_placement_landed(mf_placement_t *pl, uint64_t flight) {
  if (!pl || flight == 0) return;
  for (size_t i = 0; i < pl->n_flights; i++) {
    if (pl->flights[i].token != flight) continue;
    memmove(&pl->flights[i], &pl->flights[i + 1],
            (pl->n_flights - i - 1) * sizeof(*pl->flights));
    pl->n_flights--;
    return;
  }
}

/* ---- the view ---- */

void mf_placement_view_free(mf_placement_view_t *v) {
  if (!v) return;
  free(v->nodes);
  free(v->workers);
  free(v->routers);
  free(v->shards);
  free(v->producers);
  free(v->pipes);
  memset(v, 0, sizeof(*v));
}

/* Pending entries of nodes that died or were forgotten would keep counting against ids
 * that can come back (a node re-registering after a pause starts empty). */
static void forget_gone_nodes(mf_placement_t *pl, const mf_fsm_t *fsm) {
  for (size_t i = 0; i < pl->pending.count;) {
    const Mafalda__Controller__Node *n = mf_fsm_find_node(fsm, pl->pending.entries[i].node_id);
    if (n && n->state != MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD) {
      i++;
      continue;
    }
    char id[MF_SCHED_ID_MAX + 1];
    copy_str(id, sizeof(id), pl->pending.entries[i].node_id);
    mf_sched_pending_forget_node(&pl->pending, id); /* entries before i stay: i is kept */
  }
}

typedef struct {
  mf_placement_t *pl;
  const mf_placement_input_t *in;
  const char *only;
  mf_placement_view_t *v;
  size_t n_workers; /* first pass: total; second pass: next free slot */
} build_t;

static void count_workers(void *ud, const Mafalda__Controller__Node *node) {
  ((build_t *)ud)->n_workers += node->n_workers;
}

static void apply_report(const Mafalda__Cluster__LoadReport *r, mf_sched_worker_t *ws,
                         size_t n) {
  for (size_t i = 0; i < r->n_workers; i++) {
    const Mafalda__Cluster__WorkerLoad *wl = r->workers[i];
    if (!wl || wl->index >= n) continue; /* a report is input: ignore what does not fit */
    mf_sched_worker_t *w = &ws[wl->index];
    w->load_pps = (double)wl->packets_in_per_sec + (double)wl->packets_out_per_sec;
    w->cpu = isfinite(wl->cpu) && wl->cpu > 0 ? (double)wl->cpu : 0;
    w->transports = wl->transports;
    /* Stalled: its loop is not running; nothing fits a worker already at capacity. */
    if (wl->stalled && w->load_pps < w->capacity_pps) w->load_pps = w->capacity_pps;
  }
}

static void add_node(void *ud, const Mafalda__Controller__Node *node) {
  build_t *b = ud;
  mf_placement_view_t *v = b->v;
  mf_sched_node_t *n = &v->nodes[v->view.n_nodes++];
  n->id = node->id;
  n->state = (mf_sched_node_state_t)node->state;
  if (b->only && strcmp(node->id, b->only) != 0 && n->state == MF_SCHED_NODE_ACTIVE)
    n->state = MF_SCHED_NODE_DRAINING; /* present, but never a candidate */
  n->n_workers = node->n_workers;
  n->workers = node->n_workers ? &v->workers[b->n_workers] : NULL;
  b->n_workers += node->n_workers;
  for (size_t w = 0; w < node->n_workers; w++) {
    /* The FSM keeps workers listed as 0..n-1: position == index. */
    uint64_t cap = node->workers[w]->capacity_pps;
    n->workers[w] = (mf_sched_worker_t){
        .capacity_pps = cap ? (double)cap : b->pl->cfg.default_capacity_pps};
  }
  const Mafalda__Cluster__LoadReport *r =
      b->in->load ? b->in->load(b->in->load_ud, node->id) : NULL;
  if (r && n->workers) apply_report(r, n->workers, n->n_workers);
}

static void add_router(void *ud, const Mafalda__Controller__Router *router) {
  mf_placement_view_t *v = ((build_t *)ud)->v;
  v->routers[v->view.n_routers++] = router->id;
}

static void add_shard(void *ud, const Mafalda__Controller__Shard *shard) {
  build_t *b = ud;
  mf_placement_view_t *v = b->v;
  v->shards[v->view.n_shards++] = (mf_sched_shard_t){
      shard->router_id, shard->node_id, shard->worker, 0, b->in->now_ms};
}

static void add_producer(void *ud, const Mafalda__Controller__Producer *p) {
  mf_placement_view_t *v = ((build_t *)ud)->v;
  v->producers[v->view.n_producers++] =
      (mf_sched_producer_t){p->id, p->router_id, p->node_id, p->worker};
}

static void add_pipe(void *ud, const Mafalda__Controller__Pipe *p) {
  build_t *b = ud;
  mf_placement_view_t *v = b->v;
  v->pipes[v->view.n_pipes++] =
      (mf_sched_pipe_t){p->producer_id,   p->target_node_id, p->source_node_id,
                        p->target_worker, p->source_worker,  0, b->in->now_ms};
}

mf_err_t mf_placement_view_build(mf_placement_t *pl, const mf_placement_input_t *in,
                                 const char *only_node_id, mf_placement_view_t *out) {
  if (!out) return MF_ERR_INVALID_ARG;
  memset(out, 0, sizeof(*out));
  if (!pl || !in || !in->fsm) return MF_ERR_INVALID_ARG;
  const mf_fsm_t *fsm = in->fsm;
  mf_sched_pending_expire(&pl->pending, in->now_ms);
  forget_gone_nodes(pl, fsm);

  mf_fsm_counts_t cnt;
  mf_fsm_counts(fsm, &cnt);
  build_t b = {pl, in, only_node_id && only_node_id[0] ? only_node_id : NULL, out, 0};
  mf_fsm_foreach_node(fsm, count_workers, &b);
  size_t fl = pl->n_flights;
  out->nodes = calloc(cnt.nodes + 1, sizeof(*out->nodes));
  out->workers = calloc(b.n_workers + 1, sizeof(*out->workers));
  out->routers = calloc(cnt.routers + 1, sizeof(*out->routers));
  out->shards = calloc(cnt.shards + fl + 1, sizeof(*out->shards));
  out->producers = calloc(cnt.producers + 1, sizeof(*out->producers));
  out->pipes = calloc(cnt.pipes + fl + 1, sizeof(*out->pipes));
  if (!out->nodes || !out->workers || !out->routers || !out->shards || !out->producers ||
      !out->pipes) {
    mf_placement_view_free(out);
    return MF_ERR_NO_MEMORY;
  }
  mf_sched_view_t *v = &out->view;
  v->nodes = out->nodes;
  v->routers = out->routers;
  v->shards = out->shards;
  v->producers = out->producers;
  v->pipes = out->pipes;
  v->watermark = pl->cfg.watermark;
  v->max_pipes_out_per_worker = pl->cfg.max_pipes_out_per_worker;
  b.n_workers = 0;
  mf_fsm_foreach_node(fsm, add_node, &b);
  mf_fsm_foreach_router(fsm, add_router, &b);
  mf_fsm_foreach_shard(fsm, add_shard, &b);
  mf_fsm_foreach_producer(fsm, add_producer, &b);
  mf_fsm_foreach_pipe(fsm, add_pipe, &b);
  out->n_committed_shards = v->n_shards;
  out->n_committed_pipes = v->n_pipes;
  for (size_t i = 0; i < fl; i++) {
    const flight_t *f = &pl->flights[i];
    if (f->kind == FLIGHT_SHARD)
      out->shards[v->n_shards++] =
          (mf_sched_shard_t){f->object_id, f->node_id, f->worker, 0, in->now_ms};
    else
      out->pipes[v->n_pipes++] =
          (mf_sched_pipe_t){f->object_id, f->node_id, f->source_node_id, f->worker,
                            f->source_worker, 0, in->now_ms};
  }
  mf_sched_pending_apply(&pl->pending, v);
  return MF_OK;
}

/* ---- decisions ---- */

mf_err_t mf_placement_place_transport(mf_placement_t *pl, const mf_placement_input_t *in,
                                      const char *router_id, uint64_t expected_pps,
                                      const char *only_node_id, const char *prefer_node_id,
                                      mf_placement_transport_t *out,
                                      char *msg, size_t msg_size) {
  if (msg && msg_size) msg[0] = '\0';
  if (!pl || !in || !in->fsm || !out) {
    say(msg, msg_size, "no placement state");
    return MF_ERR_INVALID_ARG;
  }
  memset(out, 0, sizeof(*out));
  if (!valid_id(router_id)) {
    say(msg, msg_size, "malformed router id '%.*s'", QID(router_id));
    return MF_ERR_INVALID_ARG;
  }
  bool only = only_node_id && only_node_id[0];
  if (only && !valid_id(only_node_id)) {
    say(msg, msg_size, "malformed node id '%.*s'", QID(only_node_id));
    return MF_ERR_INVALID_ARG;
  }
  if (only && !mf_fsm_find_node(in->fsm, only_node_id)) {
    say(msg, msg_size, "unknown node %s", only_node_id);
    return MF_ERR_NOT_FOUND;
  }
  double pps = expected_pps ? (double)expected_pps : pl->cfg.default_expected_pps;
  mf_placement_view_t v;
  mf_err_t err = mf_placement_view_build(pl, in, only ? only_node_id : NULL, &v);
  if (err != MF_OK) {
    say(msg, msg_size, "%s", mf_strerror(err));
    return err;
  }
  mf_sched_place_request_t req = {router_id, pps, prefer_node_id};
  mf_sched_placement_t d;
  char why[MF_FSM_MESSAGE_MAX];
  err = mf_sched_place_transport(&v.view, &req, &d, why, sizeof(why));
  if (err != MF_OK) {
    mf_placement_view_free(&v);
    say(msg, msg_size, "%s", why);
    MF_LOG_INFO("place router %s%s%s: refused (%s): %s", router_id, only ? " on node " : "",
                only ? only_node_id : "", mf_err_name(err), why);
    return err;
  }
  copy_str(out->router_id, sizeof(out->router_id), router_id);
  copy_str(out->node_id, sizeof(out->node_id), d.node_id);
  out->worker = d.worker;
  out->new_shard = d.new_shard;
  out->rule = d.rule;
  out->load_pps = d.load_pps;
  out->expected_pps = pps;
  mf_placement_view_free(&v); /* d's strings are copied: the view may go */
  const Mafalda__Controller__Node *node = mf_fsm_find_node(in->fsm, out->node_id);
  if (node) {
    copy_str(out->rpc_address, sizeof(out->rpc_address), node->rpc_address);
    copy_str(out->announced_ip, sizeof(out->announced_ip), node->announced_ip);
  }
  bool committed = mf_fsm_has_shard(in->fsm, router_id, out->node_id, out->worker);
  if (!committed) {
    out->flight = flight_add(pl, FLIGHT_SHARD, router_id, out->node_id, out->worker, NULL, 0);
    if (!out->flight) {
      say(msg, msg_size, "out of memory");
      return MF_ERR_NO_MEMORY;
    }
  }
  if (mf_sched_pending_add(&pl->pending, out->node_id, out->worker, pps,
                           in->now_ms + pl->cfg.pending_ttl_ms) != MF_OK)
    MF_LOG_WARN("pending account: no memory; the next placements may pile up");
  MF_LOG_INFO("place router %s: %s -> node %s worker %u (load %.0f pps before, +%.0f)%s",
              router_id, mf_sched_rule_name(out->rule), out->node_id, out->worker,
              out->load_pps, pps,
              out->new_shard ? ", new shard" : committed ? "" : ", shard being committed");
  return MF_OK;
}

const char *mf_placement_pipe_action_name(mf_sched_pipe_action_t a) {
  switch (a) {
    case MF_SCHED_PIPE_LOCAL: return "local";
    case MF_SCHED_PIPE_REUSE: return "reuse";
    case MF_SCHED_PIPE_OPEN: return "open";
  }
  return "unknown";
}

mf_err_t mf_placement_plan_pipe(mf_placement_t *pl, const mf_placement_input_t *in,
                                const char *producer_id, const char *target_node_id,
                                uint32_t target_worker, mf_placement_pipe_t *out, char *msg,
                                size_t msg_size) {
  if (msg && msg_size) msg[0] = '\0';
  if (!pl || !in || !in->fsm || !out) {
    say(msg, msg_size, "no placement state");
    return MF_ERR_INVALID_ARG;
  }
  memset(out, 0, sizeof(*out));
  if (!valid_id(producer_id) || !valid_id(target_node_id)) {
    say(msg, msg_size, "malformed producer id '%.*s' or target node id '%.*s'",
        QID(producer_id), QID(target_node_id));
    return MF_ERR_INVALID_ARG;
  }
  mf_placement_view_t v;
  mf_err_t err = mf_placement_view_build(pl, in, NULL, &v);
  if (err != MF_OK) {
    say(msg, msg_size, "%s", mf_strerror(err));
    return err;
  }
  mf_sched_pipe_request_t req = {producer_id, target_node_id, target_worker};
  mf_sched_pipe_decision_t d;
  char why[MF_FSM_MESSAGE_MAX];
  err = mf_sched_plan_pipe(&v.view, &req, &d, why, sizeof(why));
  if (err != MF_OK) {
    mf_placement_view_free(&v);
    say(msg, msg_size, "%s", why);
    MF_LOG_INFO("pipe producer %s -> node %s worker %u: refused (%s): %s", producer_id,
                target_node_id, target_worker, mf_err_name(err), why);
    return err;
  }
  copy_str(out->producer_id, sizeof(out->producer_id), producer_id);
  copy_str(out->target_node_id, sizeof(out->target_node_id), target_node_id);
  out->target_worker = target_worker;
  out->action = d.action;
  out->kind = d.kind;
  copy_str(out->source_node_id, sizeof(out->source_node_id), d.source_node_id);
  out->source_worker = d.source_worker;
  out->depth = d.depth;
  /* A REUSE of a pipe appended from the in-flight list is not committed yet either. */
  bool pending_commit = d.action == MF_SCHED_PIPE_OPEN ||
                        (d.action == MF_SCHED_PIPE_REUSE && d.pipe_index >= v.n_committed_pipes);
  mf_placement_view_free(&v);
  if (pending_commit) {
    out->flight = flight_add(pl, FLIGHT_PIPE, producer_id, target_node_id, target_worker,
                             out->source_node_id, out->source_worker);
    if (!out->flight) {
      say(msg, msg_size, "out of memory");
      return MF_ERR_NO_MEMORY;
    }
  }
  MF_LOG_INFO("pipe producer %s: %s %s, node %s worker %u -> node %s worker %u (depth %u)%s",
              producer_id, mf_placement_pipe_action_name(out->action),
              mf_sched_pipe_kind_name(out->kind), out->source_node_id, out->source_worker,
              target_node_id, target_worker, out->depth,
              d.action == MF_SCHED_PIPE_REUSE && pending_commit ? ", being committed" : "");
  return MF_OK;
}
