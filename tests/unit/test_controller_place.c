/* Placement on the controller leader (controller/placement.h and the RPC methods
 * controller.OpenRouter / PlaceTransport / PlacePipe).
 *
 * Part 1 drives mf_placement_* directly on an FSM with fabricated load reports and an
 * explicit clock: how the view is built (capacity default, stalled workers, malformed
 * report values, only_node_id), the pending account (expiry, dead nodes), decisions in
 * flight. Part 2 runs a real single-voter replica (raft_uv on a temp directory, RPC over
 * nng on loopback) on a loop thread and calls it like a gateway or node would. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <uv.h>

#include "common/id.h"
#include "common/rpc_endpoint.h"
#include "controller/placement.h"
#include "controller/raft_node.h"
#include "controller/rpc_client.h"
#include "controller/rpc_server.h"
#include "proto/cluster.pb-c.h"
#include "tests/support/test_proc.h"
#include "tests/support/test_replica.h"

typedef Mafalda__Controller__Command cmd_t;
typedef Mafalda__Rpc__Status status_t;

#define ST(x) MAFALDA__RPC__STATUS__STATUS_##x
#define ACTIVE MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE
#define DEAD MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD

/* ---- commands (shared by both parts) ---- */

static cmd_t set_state_cmd(Mafalda__Controller__SetNodeState *s, const char *node,
                           Mafalda__Controller__NodeState state) {
  Mafalda__Controller__SetNodeState init = MAFALDA__CONTROLLER__SET_NODE_STATE__INIT;
  *s = init;
  s->node_id = (char *)node;
  s->state = state;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_SET_NODE_STATE;
  c.set_node_state = s;
  return c;
}

typedef struct {
  Mafalda__Controller__Shard shard;
  Mafalda__Controller__AddShard add;
  Mafalda__Controller__Producer producer;
  Mafalda__Controller__AddProducer add_producer;
} objs_t;

static cmd_t shard_cmd(objs_t *o, const char *router, const char *node, uint32_t worker) {
  Mafalda__Controller__Shard s = MAFALDA__CONTROLLER__SHARD__INIT;
  Mafalda__Controller__AddShard a = MAFALDA__CONTROLLER__ADD_SHARD__INIT;
  o->shard = s;
  o->add = a;
  o->shard.router_id = (char *)router;
  o->shard.node_id = (char *)node;
  o->shard.worker = worker;
  o->add.shard = &o->shard;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_SHARD;
  c.add_shard = &o->add;
  return c;
}

static cmd_t producer_cmd(objs_t *o, const char *id, const char *router, const char *node,
                          uint32_t worker) {
  Mafalda__Controller__Producer p = MAFALDA__CONTROLLER__PRODUCER__INIT;
  Mafalda__Controller__AddProducer a = MAFALDA__CONTROLLER__ADD_PRODUCER__INIT;
  o->producer = p;
  o->add_producer = a;
  o->producer.id = (char *)id;
  o->producer.router_id = (char *)router;
  o->producer.node_id = (char *)node;
  o->producer.worker = worker;
  o->producer.kind = (char *)"video";
  o->add_producer.producer = &o->producer;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PRODUCER;
  c.add_producer = &o->add_producer;
  return c;
}

/* =============== part 1: the view and the decisions, without RPC =============== */

static void fsm_ok(mf_fsm_t *f, const cmd_t *c) {
  char msg[MF_FSM_MESSAGE_MAX];
  mf_err_t err = mf_fsm_apply_command(f, c, msg, sizeof(msg));
  if (err != MF_OK) fail_msg("apply: %s (%s)", mf_err_name(err), msg);
}

static void fsm_node(mf_fsm_t *f, const char *id, uint64_t capacity) {
  Mafalda__Controller__Worker w[2], *wp[2];
  for (uint32_t i = 0; i < 2; i++) {
    Mafalda__Controller__Worker init = MAFALDA__CONTROLLER__WORKER__INIT;
    w[i] = init;
    w[i].index = i;
    w[i].capacity_pps = capacity;
    wp[i] = &w[i];
  }
  Mafalda__Controller__Node n = MAFALDA__CONTROLLER__NODE__INIT;
  n.id = (char *)id;
  n.rpc_address = (char *)"127.0.0.1:1";
  n.announced_ip = (char *)"192.0.2.1";
  n.state = ACTIVE;
  n.n_workers = 2;
  n.workers = wp;
  Mafalda__Controller__RegisterNode r = MAFALDA__CONTROLLER__REGISTER_NODE__INIT;
  r.node = &n;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_REGISTER_NODE;
  c.register_node = &r;
  fsm_ok(f, &c);
}

static void fsm_router(mf_fsm_t *f, const char *id) {
  Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
  r.id = (char *)id;
  Mafalda__Controller__CreateRouter cr = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
  cr.router = &r;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER;
  c.create_router = &cr;
  fsm_ok(f, &c);
}

/* Fabricated reports: n1 worker 0 stalled; n2 worker 0 busy, worker 1 with a NaN cpu and
 * a worker index the node does not have. */
typedef struct {
  Mafalda__Cluster__WorkerLoad w[3], *wp[3];
  Mafalda__Cluster__LoadReport r;
} report_t;

static report_t rep_n1, rep_n2;

static void reports_init(void) {
  for (int k = 0; k < 2; k++) {
    report_t *rp = k ? &rep_n2 : &rep_n1;
    Mafalda__Cluster__LoadReport init = MAFALDA__CLUSTER__LOAD_REPORT__INIT;
    rp->r = init;
    for (int i = 0; i < 3; i++) {
      Mafalda__Cluster__WorkerLoad wi = MAFALDA__CLUSTER__WORKER_LOAD__INIT;
      rp->w[i] = wi;
      rp->w[i].index = (uint32_t)i;
      rp->wp[i] = &rp->w[i];
    }
    rp->r.workers = rp->wp;
  }
  rep_n1.r.node_id = (char *)"n1";
  rep_n1.r.n_workers = 2;
  rep_n1.w[0].stalled = true;
  rep_n1.w[0].packets_in_per_sec = 10;
  rep_n2.r.node_id = (char *)"n2";
  rep_n2.r.n_workers = 3;
  rep_n2.w[0].packets_in_per_sec = 100;
  rep_n2.w[0].packets_out_per_sec = 200;
  rep_n2.w[0].cpu = 0.5f;
  rep_n2.w[0].transports = 3;
  rep_n2.w[1].cpu = NAN;
  rep_n2.w[2].index = 9; /* no such worker: ignored */
  rep_n2.w[2].packets_in_per_sec = 999999;
}

static const Mafalda__Cluster__LoadReport *fake_load(void *ud, const char *node_id) {
  (void)ud;
  if (strcmp(node_id, "n1") == 0) return &rep_n1.r;
  if (strcmp(node_id, "n2") == 0) return &rep_n2.r;
  return NULL;
}

static const mf_sched_worker_t *view_worker(const mf_placement_view_t *v, const char *node,
                                            uint32_t w) {
  for (size_t i = 0; i < v->view.n_nodes; i++)
    if (strcmp(v->view.nodes[i].id, node) == 0) {
      assert_true(w < v->view.nodes[i].n_workers);
      return &v->view.nodes[i].workers[w];
    }
  fail_msg("node %s not in the view", node);
  return NULL;
}

static mf_sched_node_state_t view_state(const mf_placement_view_t *v, const char *node) {
  for (size_t i = 0; i < v->view.n_nodes; i++)
    if (strcmp(v->view.nodes[i].id, node) == 0) return v->view.nodes[i].state;
  fail_msg("node %s not in the view", node);
  return MF_SCHED_NODE_UNSPECIFIED;
}

static void test_config(void **state) {
  (void)state;
  mf_placement_t *pl = NULL;
  const mf_placement_config_t bad[] = {
      {.watermark = 1.5},
      {.watermark = -0.1},
      {.default_capacity_pps = -1},
      {.default_expected_pps = NAN},
      {.default_capacity_pps = INFINITY},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(mf_placement_create(&bad[i], &pl), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_placement_create(NULL, &pl), MF_OK);
  assert_int_equal(mf_placement_pending_count(pl), 0);
  mf_placement_landed(pl, 0);  /* ignored */
  mf_placement_landed(pl, 42); /* unknown: ignored */
  mf_placement_destroy(pl);
  mf_placement_destroy(NULL);
}

static void test_view_rules(void **state) {
  (void)state;
  reports_init();
  mf_fsm_t *f;
  assert_int_equal(mf_fsm_create(&f), MF_OK);
  fsm_node(f, "n1", 0);    /* capacity unknown: the config's default */
  fsm_node(f, "n2", 1000);
  fsm_router(f, "r1");
  mf_placement_config_t cfg = {.default_capacity_pps = 1000, .default_expected_pps = 300,
                               .pending_ttl_ms = 5000};
  mf_placement_t *pl;
  assert_int_equal(mf_placement_create(&cfg, &pl), MF_OK);
  mf_placement_input_t in = {f, fake_load, NULL, 1000};

  mf_placement_view_t v;
  assert_int_equal(mf_placement_view_build(pl, &in, NULL, &v), MF_OK);
  assert_int_equal(v.view.n_nodes, 2);
  assert_int_equal(v.view.n_routers, 1);
  assert_string_equal(v.view.routers[0], "r1");
  const mf_sched_worker_t *w = view_worker(&v, "n1", 0);
  assert_true(w->capacity_pps == 1000); /* default */
  assert_true(w->load_pps == 1000);     /* stalled: load = capacity */
  w = view_worker(&v, "n1", 1);
  assert_true(w->capacity_pps == 1000 && w->load_pps == 0 && w->cpu == 0);
  w = view_worker(&v, "n2", 0);
  assert_true(w->capacity_pps == 1000 && w->load_pps == 300 && w->cpu == 0.5);
  assert_int_equal(w->transports, 3);
  w = view_worker(&v, "n2", 1);
  assert_true(w->cpu == 0 && w->load_pps == 0); /* NaN cpu counts as 0 */
  mf_placement_view_free(&v);

  /* only_node_id: the others are present but not candidates. */
  assert_int_equal(mf_placement_view_build(pl, &in, "n2", &v), MF_OK);
  assert_int_equal(view_state(&v, "n1"), MF_SCHED_NODE_DRAINING);
  assert_int_equal(view_state(&v, "n2"), MF_SCHED_NODE_ACTIVE);
  mf_placement_view_free(&v);

  /* Decisions. On n1 only: worker 1 (worker 0 is stalled), expected_pps 0 = default 300. */
  char msg[MF_FSM_MESSAGE_MAX];
  mf_placement_transport_t t;
  assert_int_equal(mf_placement_place_transport(pl, &in, "r1", 0, "n1", NULL, &t, msg, sizeof(msg)),
                   MF_OK);
  assert_string_equal(t.node_id, "n1");
  assert_int_equal(t.worker, 1);
  assert_true(t.new_shard);
  assert_true(t.expected_pps == 300);
  assert_string_equal(t.rpc_address, "127.0.0.1:1");
  assert_string_equal(t.announced_ip, "192.0.2.1");
  assert_int_not_equal(t.flight, 0); /* the shard is not committed */
  uint64_t first = t.flight;
  assert_int_equal(mf_placement_pending_count(pl), 1);
  assert_int_equal(mf_placement_flight_count(pl), 1);

  /* The in-flight shard is in the next view and is filled, not opened twice. */
  assert_int_equal(mf_placement_view_build(pl, &in, NULL, &v), MF_OK);
  assert_int_equal(v.n_committed_shards, 0);
  assert_int_equal(v.view.n_shards, 1);
  assert_true(view_worker(&v, "n1", 1)->pending_pps == 300);
  mf_placement_view_free(&v);
  assert_int_equal(mf_placement_place_transport(pl, &in, "r1", 200, "n1", NULL, &t, msg, sizeof(msg)),
                   MF_OK);
  assert_int_equal(t.worker, 1);
  assert_int_equal(t.rule, MF_SCHED_RULE_FILL_SHARD);
  assert_false(t.new_shard);
  assert_int_not_equal(t.flight, 0); /* still needs the commit before an answer */
  assert_int_not_equal(t.flight, first);
  /* 500 pending on n1/1: 400 more does not fit under 800, and the stalled worker never. */
  assert_int_equal(mf_placement_place_transport(pl, &in, "r1", 400, "n1", NULL, &t, msg, sizeof(msg)),
                   MF_ERR_LIMIT);
  assert_non_null(strstr(msg, "cluster full"));
  mf_placement_landed(pl, first);
  mf_placement_landed(pl, first + 1);
  assert_int_equal(mf_placement_flight_count(pl), 0);

  /* Once the shard is committed, a placement there needs no commit. */
  objs_t o;
  cmd_t c = shard_cmd(&o, "r1", "n1", 1);
  fsm_ok(f, &c);
  assert_int_equal(mf_placement_place_transport(pl, &in, "r1", 10, "n1", NULL, &t, msg, sizeof(msg)),
                   MF_OK);
  assert_int_equal(t.flight, 0);

  /* Refusals. */
  assert_int_equal(mf_placement_place_transport(pl, &in, "nope", 0, NULL, NULL, &t, msg, sizeof(msg)),
                   MF_ERR_NOT_FOUND);
  assert_int_equal(mf_placement_place_transport(pl, &in, "r1", 0, "ghost", NULL, &t, msg, sizeof(msg)),
                   MF_ERR_NOT_FOUND);
  assert_int_equal(mf_placement_place_transport(pl, &in, "", 0, NULL, NULL, &t, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_placement_place_transport(pl, &in, "r 1", 0, NULL, NULL, &t, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_placement_place_transport(pl, &in, "r1", 0, "n\x01", NULL, &t, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);

  /* Pending entries expire after the ttl (5 s here). */
  assert_int_equal(mf_placement_pending_count(pl), 3);
  in.now_ms = 1000 + 4999;
  assert_int_equal(mf_placement_view_build(pl, &in, NULL, &v), MF_OK);
  assert_true(view_worker(&v, "n1", 1)->pending_pps == 510); /* 300 + 200 + 10 */
  mf_placement_view_free(&v);
  in.now_ms = 1000 + 5000;
  assert_int_equal(mf_placement_view_build(pl, &in, NULL, &v), MF_OK);
  assert_true(view_worker(&v, "n1", 1)->pending_pps == 0);
  assert_int_equal(mf_placement_pending_count(pl), 0);
  mf_placement_view_free(&v);

  /* A dead node's entries are forgotten at the next view. */
  assert_int_equal(mf_placement_place_transport(pl, &in, "r1", 0, "n2", NULL, &t, msg, sizeof(msg)),
                   MF_OK);
  assert_int_equal(mf_placement_place_transport(pl, &in, "r1", 0, "n1", NULL, &t, msg, sizeof(msg)),
                   MF_OK);
  assert_int_equal(mf_placement_pending_count(pl), 2);
  Mafalda__Controller__SetNodeState s;
  c = set_state_cmd(&s, "n2", DEAD);
  fsm_ok(f, &c);
  assert_int_equal(mf_placement_view_build(pl, &in, NULL, &v), MF_OK);
  assert_int_equal(mf_placement_pending_count(pl), 1);
  assert_int_equal(view_state(&v, "n2"), MF_SCHED_NODE_DEAD);
  mf_placement_view_free(&v);
  mf_placement_reset(pl); /* leadership lost */
  assert_int_equal(mf_placement_pending_count(pl), 0);

  mf_placement_destroy(pl);
  mf_fsm_destroy(f);
}

/* Pipes decided but not committed count for the budget (max 1 pipe out per worker). */
static void test_pipes_in_flight(void **state) {
  (void)state;
  mf_fsm_t *f;
  assert_int_equal(mf_fsm_create(&f), MF_OK);
  fsm_node(f, "n1", 1000);
  fsm_node(f, "n2", 1000);
  fsm_router(f, "r1");
  objs_t o;
  const struct {
    const char *node;
    uint32_t worker;
  } shards[] = {{"n1", 0}, {"n1", 1}, {"n2", 0}, {"n2", 1}};
  for (size_t i = 0; i < 4; i++) {
    cmd_t c = shard_cmd(&o, "r1", shards[i].node, shards[i].worker);
    fsm_ok(f, &c);
  }
  cmd_t c = producer_cmd(&o, "p1", "r1", "n1", 0);
  fsm_ok(f, &c);
  mf_placement_config_t cfg = {.max_pipes_out_per_worker = 1};
  mf_placement_t *pl;
  assert_int_equal(mf_placement_create(&cfg, &pl), MF_OK);
  mf_placement_input_t in = {f, NULL, NULL, 1};
  char msg[MF_FSM_MESSAGE_MAX];
  mf_placement_pipe_t p, q;
  assert_int_equal(mf_placement_plan_pipe(pl, &in, "p1", "n2", 0, &p, msg, sizeof(msg)), MF_OK);
  assert_int_equal(p.action, MF_SCHED_PIPE_OPEN);
  assert_int_equal(p.kind, MF_SCHED_PIPE_TRANSPORT);
  assert_string_equal(p.source_node_id, "n1");
  assert_int_not_equal(p.flight, 0);
  /* The origin's budget is used by the uncommitted pipe: relay through n2/0, a ring. */
  assert_int_equal(mf_placement_plan_pipe(pl, &in, "p1", "n2", 1, &q, msg, sizeof(msg)), MF_OK);
  assert_int_equal(q.action, MF_SCHED_PIPE_OPEN);
  assert_int_equal(q.kind, MF_SCHED_PIPE_RING);
  assert_string_equal(q.source_node_id, "n2");
  assert_int_equal(q.source_worker, 0);
  assert_int_equal(q.depth, 2);
  /* Asked again while in flight: reuse, and still to be committed before answering. */
  assert_int_equal(mf_placement_plan_pipe(pl, &in, "p1", "n2", 0, &q, msg, sizeof(msg)), MF_OK);
  assert_int_equal(q.action, MF_SCHED_PIPE_REUSE);
  assert_int_not_equal(q.flight, 0);
  assert_int_equal(mf_placement_flight_count(pl), 3);
  /* Local, and refusals. */
  assert_int_equal(mf_placement_plan_pipe(pl, &in, "p1", "n1", 0, &q, msg, sizeof(msg)), MF_OK);
  assert_int_equal(q.action, MF_SCHED_PIPE_LOCAL);
  assert_int_equal(q.flight, 0);
  /* Budget 1 everywhere: the origin and n2/0 have spent theirs, n2/1 (in flight) feeds. */
  assert_int_equal(mf_placement_plan_pipe(pl, &in, "p1", "n1", 1, &q, msg, sizeof(msg)), MF_OK);
  assert_int_equal(q.action, MF_SCHED_PIPE_OPEN);
  assert_int_equal(q.kind, MF_SCHED_PIPE_TRANSPORT);
  assert_string_equal(q.source_node_id, "n2");
  assert_int_equal(q.source_worker, 1);
  assert_int_equal(q.depth, 3);
  assert_int_equal(mf_placement_plan_pipe(pl, &in, "px", "n1", 1, &q, msg, sizeof(msg)),
                   MF_ERR_NOT_FOUND);
  assert_int_equal(mf_placement_plan_pipe(pl, &in, "p1", "n9", 1, &q, msg, sizeof(msg)),
                   MF_ERR_NOT_FOUND);
  assert_int_equal(mf_placement_plan_pipe(pl, &in, "", "n1", 1, &q, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_placement_plan_pipe(pl, &in, "p1", NULL, 1, &q, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);
  mf_placement_destroy(pl);
  mf_fsm_destroy(f);
}

/* =============== part 2: the RPC methods on a real replica =============== */

#define CAPACITY 1000 /* per worker; watermark 0.8: 800 pps usable */

typedef struct {
  mf_test_replica_t rep;
  uint64_t seq;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  /* node-b registers capacity 0: it gets the default; max 2 pipes of a producer out of a
   * worker. */
  mf_rpc_server_config_t sc = {.contexts = 8,
                               .placement = {.default_capacity_pps = CAPACITY,
                                             .default_expected_pps = 300,
                                             .max_pipes_out_per_worker = 2}};
  assert_int_equal(mf_test_replica_start(&f->rep, "/tmp/mf-ctl-place", 0, &sc), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  assert_int_equal(mf_test_replica_stop(&f->rep), 0);
  free(f);
  return 0;
}

/* One call (following redirects until the single voter leads); checks the status, copies
 * the error message, returns the decoded payload (NULL when d is NULL or on error). */
static void *call(fixture_t *f, const char *method, const ProtobufCMessage *req, status_t want,
                  const ProtobufCMessageDescriptor *d, char *err, size_t err_size) {
  const char *urls[] = {f->rep.url};
  mf_rpc_reply_t reply;
  assert_int_equal(mf_rpc_call_leader(urls, 1, NULL, method, req, 10000, &reply), MF_OK);
  if (reply.envelope->status != want)
    fail_msg("%s: status %d want %d (%s)", method, reply.envelope->status, want,
             reply.envelope->error_message);
  if (err) snprintf(err, err_size, "%s", reply.envelope->error_message);
  void *out = NULL;
  if (d && want == ST(OK)) {
    out = protobuf_c_message_unpack(d, NULL, reply.envelope->payload.len,
                                    reply.envelope->payload.data);
    assert_non_null(out);
  }
  mf_rpc_reply_free(&reply);
  return out;
}

static void apply(fixture_t *f, const cmd_t *c, status_t want) {
  call(f, MF_RPC_METHOD_APPLY, &c->base, want, NULL, NULL, 0);
}

/* cluster.RegisterNode with two workers (capacity as given), then SetNodeState active. */
static void add_node(fixture_t *f, const char *id, uint64_t capacity) {
  Mafalda__Cluster__WorkerInfo w[2], *wp[2];
  for (uint32_t i = 0; i < 2; i++) {
    Mafalda__Cluster__WorkerInfo init = MAFALDA__CLUSTER__WORKER_INFO__INIT;
    w[i] = init;
    w[i].index = i;
    w[i].rtc_port = 40000 + i;
    w[i].capacity_pps = capacity;
    wp[i] = &w[i];
  }
  char rpc[64], ip[64];
  snprintf(rpc, sizeof(rpc), "127.0.0.1:%d", id[5] == 'a' ? 7401 : 7402);
  snprintf(ip, sizeof(ip), "192.0.2.%d", id[5] == 'a' ? 1 : 2);
  Mafalda__Cluster__RegisterNodeRequest reg = MAFALDA__CLUSTER__REGISTER_NODE_REQUEST__INIT;
  reg.node_id = (char *)id;
  reg.name = (char *)id;
  reg.rpc_address = rpc;
  reg.announced_ip = ip;
  reg.n_workers = 2;
  reg.workers = wp;
  call(f, MF_RPC_METHOD_REGISTER_NODE, &reg.base, ST(OK), NULL, NULL, 0);
  Mafalda__Controller__SetNodeState s;
  cmd_t c = set_state_cmd(&s, id, ACTIVE);
  apply(f, &c, ST(OK));
}

/* cluster.ReportLoad: packets in per worker, and which workers are stalled. */
static void report(fixture_t *f, const char *node, uint64_t pps0, uint64_t pps1, bool stall0) {
  Mafalda__Cluster__WorkerLoad w[2], *wp[2];
  for (uint32_t i = 0; i < 2; i++) {
    Mafalda__Cluster__WorkerLoad init = MAFALDA__CLUSTER__WORKER_LOAD__INIT;
    w[i] = init;
    w[i].index = i;
    wp[i] = &w[i];
  }
  w[0].packets_in_per_sec = pps0;
  w[0].stalled = stall0;
  w[1].packets_in_per_sec = pps1;
  Mafalda__Cluster__LoadReport r = MAFALDA__CLUSTER__LOAD_REPORT__INIT;
  r.node_id = (char *)node;
  r.sequence = ++f->seq;
  r.n_workers = 2;
  r.workers = wp;
  Mafalda__Cluster__LoadReportResponse *resp =
      call(f, MF_RPC_METHOD_REPORT_LOAD, &r.base, ST(OK),
           &mafalda__cluster__load_report_response__descriptor, NULL, 0);
  assert_true(resp->known_node);
  mafalda__cluster__load_report_response__free_unpacked(resp, NULL);
}

typedef struct {
  char id[64], codecs[64];
  bool created;
} opened_t;

static opened_t open_router(fixture_t *f, const char *name, const char *codecs) {
  Mafalda__Cluster__OpenRouterRequest r = MAFALDA__CLUSTER__OPEN_ROUTER_REQUEST__INIT;
  r.name = (char *)name;
  r.codecs_json = (char *)codecs;
  r.app_data_json = (char *)"{}";
  Mafalda__Cluster__OpenRouterResponse *resp =
      call(f, MF_RPC_METHOD_OPEN_ROUTER, &r.base, ST(OK),
           &mafalda__cluster__open_router_response__descriptor, NULL, 0);
  opened_t o;
  snprintf(o.id, sizeof(o.id), "%s", resp->router_id);
  snprintf(o.codecs, sizeof(o.codecs), "%s", resp->codecs_json);
  o.created = resp->created;
  mafalda__cluster__open_router_response__free_unpacked(resp, NULL);
  assert_true(mf_id_is_valid(o.id));
  return o;
}

typedef struct {
  char node[64], rule[32], rpc[64], ip[64];
  uint32_t worker;
  bool new_shard;
} placed_t;

static placed_t place(fixture_t *f, const char *router, uint64_t pps, const char *only) {
  Mafalda__Cluster__PlaceTransportRequest r = MAFALDA__CLUSTER__PLACE_TRANSPORT_REQUEST__INIT;
  r.router_id = (char *)router;
  r.expected_pps = pps;
  r.only_node_id = (char *)only;
  Mafalda__Cluster__PlaceTransportResponse *resp =
      call(f, MF_RPC_METHOD_PLACE_TRANSPORT, &r.base, ST(OK),
           &mafalda__cluster__place_transport_response__descriptor, NULL, 0);
  placed_t p;
  snprintf(p.node, sizeof(p.node), "%s", resp->node_id);
  snprintf(p.rule, sizeof(p.rule), "%s", resp->rule);
  snprintf(p.rpc, sizeof(p.rpc), "%s", resp->rpc_address);
  snprintf(p.ip, sizeof(p.ip), "%s", resp->announced_ip);
  p.worker = resp->worker;
  p.new_shard = resp->new_shard;
  mafalda__cluster__place_transport_response__free_unpacked(resp, NULL);
  return p;
}

static void place_refused(fixture_t *f, const char *router, uint64_t pps, const char *only,
                          status_t want, const char *why) {
  Mafalda__Cluster__PlaceTransportRequest r = MAFALDA__CLUSTER__PLACE_TRANSPORT_REQUEST__INIT;
  r.router_id = (char *)router;
  r.expected_pps = pps;
  r.only_node_id = (char *)only;
  char err[256];
  call(f, MF_RPC_METHOD_PLACE_TRANSPORT, &r.base, want, NULL, err, sizeof(err));
  if (!strstr(err, why)) fail_msg("'%s' does not say '%s'", err, why);
}

/* controller.State without a barrier: what the leader's FSM holds right now. */
static Mafalda__Controller__StateResponse *state_now(fixture_t *f) {
  Mafalda__Controller__StatusRequest req = MAFALDA__CONTROLLER__STATUS_REQUEST__INIT;
  return call(f, MF_RPC_METHOD_STATE, &req.base, ST(OK),
              &mafalda__controller__state_response__descriptor, NULL, 0);
}

static bool has_shard(fixture_t *f, const char *router, const char *node, uint32_t worker) {
  Mafalda__Controller__StateResponse *st = state_now(f);
  bool found = false;
  for (size_t i = 0; i < st->state->n_shards; i++) {
    const Mafalda__Controller__Shard *s = st->state->shards[i];
    found |= strcmp(s->router_id, router) == 0 && strcmp(s->node_id, node) == 0 &&
             s->worker == worker;
  }
  mafalda__controller__state_response__free_unpacked(st, NULL);
  return found;
}

/* Pipes of the producer, as "target/w<source/w " in the snapshot's order. */
static void pipes_of(fixture_t *f, const char *producer, char *out, size_t size) {
  Mafalda__Controller__StateResponse *st = state_now(f);
  out[0] = '\0';
  for (size_t i = 0; i < st->state->n_pipes; i++) {
    const Mafalda__Controller__Pipe *p = st->state->pipes[i];
    if (strcmp(p->producer_id, producer) != 0) continue;
    size_t n = strlen(out);
    snprintf(out + n, size - n, "%s/%u<%s/%u ", p->target_node_id, p->target_worker,
             p->source_node_id, p->source_worker);
  }
  mafalda__controller__state_response__free_unpacked(st, NULL);
}

/* ---- controller.OpenRouter ---- */

typedef struct {
  fixture_t *f;
  opened_t got;
} opener_t;

static void open_race(void *arg) {
  opener_t *o = arg;
  o->got = open_router(o->f, "race", "[\"race\"]");
}

static void test_open_router(void **state) {
  fixture_t *f = *state;
  opened_t a = open_router(f, "room-a", "[1]");
  assert_true(a.created);
  assert_string_equal(a.codecs, "[1]");
  opened_t again = open_router(f, "room-a", "[2]");
  assert_false(again.created);
  assert_string_equal(again.id, a.id);
  assert_string_equal(again.codecs, "[1]"); /* the router's own codecs */
  opened_t b = open_router(f, "room-b", "[]");
  assert_true(b.created);
  assert_string_not_equal(b.id, a.id);

  /* Bad names and payload limits are refused. */
  char long_name[300];
  memset(long_name, 'n', sizeof(long_name) - 1);
  long_name[sizeof(long_name) - 1] = '\0';
  char *big_codecs = malloc(MF_FSM_BLOB_MAX + 2);
  memset(big_codecs, ' ', MF_FSM_BLOB_MAX + 1);
  big_codecs[MF_FSM_BLOB_MAX + 1] = '\0';
  const struct {
    const char *name, *codecs;
  } bad[] = {{"", "[]"}, {NULL, "[]"}, {"tab\there", "[]"}, {long_name, "[]"},
             {"too-big", big_codecs}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    Mafalda__Cluster__OpenRouterRequest r = MAFALDA__CLUSTER__OPEN_ROUTER_REQUEST__INIT;
    r.name = (char *)bad[i].name;
    r.codecs_json = (char *)bad[i].codecs;
    bool big = bad[i].codecs == big_codecs; /* the FSM's size limit */
    call(f, MF_RPC_METHOD_OPEN_ROUTER, &r.base,
         big ? mf_rpc_status_of(MF_ERR_LIMIT) : ST(INVALID_ARGUMENT), NULL, NULL, 0);
  }
  free(big_codecs);

  /* A CreateRouter of a used name is refused and names the router that has it. */
  Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
  r.id = (char *)"manual";
  r.name = (char *)"room-a";
  Mafalda__Controller__CreateRouter cr = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
  cr.router = &r;
  char err[256];
  call(f, MF_RPC_METHOD_CREATE_ROUTER, &cr.base, ST(INVALID_ARGUMENT), NULL, err, sizeof(err));
  assert_non_null(strstr(err, a.id));

  /* Concurrent opens of one name: one router, one creator, the same id for everybody. */
  enum { RACERS = 6 };
  opener_t o[RACERS];
  uv_thread_t th[RACERS];
  for (int i = 0; i < RACERS; i++) {
    o[i].f = f;
    assert_int_equal(uv_thread_create(&th[i], open_race, &o[i]), 0);
  }
  int creators = 0;
  for (int i = 0; i < RACERS; i++) {
    uv_thread_join(&th[i]);
    creators += o[i].got.created;
    assert_string_equal(o[i].got.id, o[0].got.id);
  }
  assert_int_equal(creators, 1);

  Mafalda__Controller__StateResponse *st = state_now(f);
  assert_int_equal(st->state->n_routers, 3); /* room-a, room-b, race */
  mafalda__controller__state_response__free_unpacked(st, NULL);
}

/* ---- controller.PlaceTransport ---- */

static void test_place_transport(void **state) {
  fixture_t *f = *state;
  add_node(f, "node-a", CAPACITY);
  add_node(f, "node-b", 0); /* the configured default capacity */
  opened_t room = open_router(f, "room", "[]");

  /* No load reports: only the pending account (300 pps each, 800 usable per worker)
   * spreads a burst. Fill a worker's shard, open the next when the watermark is hit. */
  const struct {
    const char *node;
    uint32_t worker;
    const char *rule;
    bool new_shard;
  } want[] = {
      {"node-a", 0, "freest_node", true}, {"node-a", 0, "fill_shard", false},
      {"node-a", 1, "router_node", true}, {"node-a", 1, "fill_shard", false},
      {"node-b", 0, "freest_node", true}, {"node-b", 0, "fill_shard", false},
      {"node-b", 1, "router_node", true}, {"node-b", 1, "fill_shard", false},
  };
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    placed_t p = place(f, room.id, i % 2 ? 0 : 300, NULL); /* 0 = the default, 300 */
    if (strcmp(p.node, want[i].node) != 0 || p.worker != want[i].worker ||
        strcmp(p.rule, want[i].rule) != 0 || p.new_shard != want[i].new_shard)
      fail_msg("placement %zu: %s/%u %s new=%d, want %s/%u %s new=%d", i, p.node, p.worker,
               p.rule, p.new_shard, want[i].node, want[i].worker, want[i].rule,
               want[i].new_shard);
    /* Committed before the answer: the leader's state has the shard already. */
    assert_true(has_shard(f, room.id, p.node, p.worker));
    assert_string_equal(p.rpc, strcmp(p.node, "node-a") == 0 ? "127.0.0.1:7401"
                                                             : "127.0.0.1:7402");
    assert_string_equal(p.ip, strcmp(p.node, "node-a") == 0 ? "192.0.2.1" : "192.0.2.2");
  }
  place_refused(f, room.id, 300, NULL, mf_rpc_status_of(MF_ERR_LIMIT), "cluster full");
  place_refused(f, "no-such-router", 300, NULL, ST(NOT_FOUND), "unknown router");
  place_refused(f, "", 300, NULL, ST(INVALID_ARGUMENT), "malformed router id");
  place_refused(f, room.id, 300, "ghost", ST(NOT_FOUND), "unknown node");
  place_refused(f, room.id, 300, "bad id", ST(INVALID_ARGUMENT), "malformed node id");
}

typedef struct {
  fixture_t *f;
  const char *router;
  placed_t got;
} placer_t;

static void place_thread(void *arg) {
  placer_t *p = arg;
  p->got = place(p->f, p->router, 300, NULL);
}

/* A burst of concurrent placements: decided one by one on the leader's loop, each seeing
 * the pending account and the shards still being committed, so a shard is opened once
 * and filled, and the burst spreads exactly as a sequence would. */
static void test_place_burst(void **state) {
  fixture_t *f = *state;
  add_node(f, "node-a", CAPACITY);
  add_node(f, "node-b", CAPACITY);
  opened_t room = open_router(f, "burst", "[]");
  enum { N = 4 };
  placer_t p[N];
  uv_thread_t th[N];
  for (int i = 0; i < N; i++) {
    p[i] = (placer_t){.f = f, .router = room.id};
    assert_int_equal(uv_thread_create(&th[i], place_thread, &p[i]), 0);
  }
  int on[2] = {0, 0}, opened = 0;
  for (int i = 0; i < N; i++) {
    uv_thread_join(&th[i]);
    assert_string_equal(p[i].got.node, "node-a");
    assert_true(p[i].got.worker < 2);
    on[p[i].got.worker]++;
    opened += p[i].got.new_shard;
  }
  assert_int_equal(on[0], 2);
  assert_int_equal(on[1], 2);
  assert_int_equal(opened, 2);
  Mafalda__Controller__StateResponse *st = state_now(f);
  assert_int_equal(st->state->n_shards, 2);
  mafalda__controller__state_response__free_unpacked(st, NULL);
}

/* Load reports, a stalled worker, only_node_id. */
static void test_place_loads(void **state) {
  fixture_t *f = *state;
  add_node(f, "node-a", CAPACITY);
  add_node(f, "node-b", CAPACITY);
  opened_t room = open_router(f, "room", "[]");
  report(f, "node-a", 0, 0, true); /* worker 0 stalled */
  report(f, "node-b", 100, 0, false);

  /* Both nodes are in use (a stalled worker counts as full); node-b has more room below
   * the watermark (700 + 800 against 0 + 800): node-b, its worker in use first. */
  placed_t p = place(f, room.id, 300, NULL);
  assert_string_equal(p.node, "node-b");
  assert_int_equal(p.worker, 0);
  /* Restricted to node-a: never the stalled worker. */
  p = place(f, room.id, 300, "node-a");
  assert_string_equal(p.node, "node-a");
  assert_int_equal(p.worker, 1);
  p = place(f, room.id, 300, "node-a");
  assert_int_equal(p.worker, 1);
  place_refused(f, room.id, 300, "node-a", mf_rpc_status_of(MF_ERR_LIMIT), "cluster full");

  /* A report with the stall over and node-a/1 busy: 200 measured + 600 pending leave no
   * room for 150 there; worker 0 takes it. */
  report(f, "node-a", 0, 200, false);
  p = place(f, room.id, 150, "node-a");
  assert_int_equal(p.worker, 0);
  assert_true(p.new_shard);

  /* node-b only: its shard is filled, a measured load counts as much as pending. */
  report(f, "node-b", 400, 0, false);
  p = place(f, room.id, 100, "node-b");
  assert_string_equal(p.node, "node-b");
  assert_int_equal(p.worker, 0);
  assert_string_equal(p.rule, "fill_shard");
  p = place(f, room.id, 300, "node-b");
  assert_int_equal(p.worker, 1); /* 400 + 400 pending + 300 > 800 on worker 0 */

  /* A draining node takes nothing, even when asked for by name. */
  Mafalda__Controller__SetNodeState s;
  cmd_t c = set_state_cmd(&s, "node-b", MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DRAINING);
  apply(f, &c, ST(OK));
  place_refused(f, room.id, 10, "node-b", ST(INVALID_ARGUMENT), "no active node");
}

/* ---- controller.PlacePipe ---- */

typedef struct {
  char action[16], kind[16], source[64];
  uint32_t source_worker, depth;
} piped_t;

static piped_t pipe_call(fixture_t *f, const char *producer, const char *node, uint32_t w) {
  Mafalda__Cluster__PlacePipeRequest r = MAFALDA__CLUSTER__PLACE_PIPE_REQUEST__INIT;
  r.producer_id = (char *)producer;
  r.target_node_id = (char *)node;
  r.target_worker = w;
  Mafalda__Cluster__PlacePipeResponse *resp =
      call(f, MF_RPC_METHOD_PLACE_PIPE, &r.base, ST(OK),
           &mafalda__cluster__place_pipe_response__descriptor, NULL, 0);
  piped_t p;
  snprintf(p.action, sizeof(p.action), "%s", resp->action);
  snprintf(p.kind, sizeof(p.kind), "%s", resp->kind);
  snprintf(p.source, sizeof(p.source), "%s", resp->source_node_id);
  p.source_worker = resp->source_worker;
  p.depth = resp->depth;
  mafalda__cluster__place_pipe_response__free_unpacked(resp, NULL);
  return p;
}

static void pipe_refused(fixture_t *f, const char *producer, const char *node, uint32_t w,
                         status_t want) {
  Mafalda__Cluster__PlacePipeRequest r = MAFALDA__CLUSTER__PLACE_PIPE_REQUEST__INIT;
  r.producer_id = (char *)producer;
  r.target_node_id = (char *)node;
  r.target_worker = w;
  call(f, MF_RPC_METHOD_PLACE_PIPE, &r.base, want, NULL, NULL, 0);
}

static void expect_pipe(piped_t p, const char *action, const char *kind, const char *source,
                        uint32_t source_worker, uint32_t depth) {
  if (strcmp(p.action, action) != 0 || strcmp(p.kind, kind) != 0 ||
      strcmp(p.source, source) != 0 || p.source_worker != source_worker || p.depth != depth)
    fail_msg("pipe %s %s %s/%u depth %u, want %s %s %s/%u depth %u", p.action, p.kind,
             p.source, p.source_worker, p.depth, action, kind, source, source_worker, depth);
}

typedef struct {
  fixture_t *f;
  const char *node;
  uint32_t worker;
  piped_t got;
} piper_t;

static void pipe_thread(void *arg) {
  piper_t *p = arg;
  p->got = pipe_call(p->f, "p2", p->node, p->worker);
}

static void test_place_pipe(void **state) {
  fixture_t *f = *state;
  add_node(f, "node-a", CAPACITY);
  add_node(f, "node-b", CAPACITY);
  opened_t room = open_router(f, "pipes", "[]");
  objs_t o;
  const struct {
    const char *node;
    uint32_t worker;
  } shards[] = {{"node-a", 0}, {"node-a", 1}, {"node-b", 0}};
  for (size_t i = 0; i < 3; i++) {
    cmd_t c = shard_cmd(&o, room.id, shards[i].node, shards[i].worker);
    apply(f, &c, ST(OK));
  }
  cmd_t c = producer_cmd(&o, "p1", room.id, "node-a", 0);
  apply(f, &c, ST(OK));

  expect_pipe(pipe_call(f, "p1", "node-a", 0), "local", "ring", "node-a", 0, 0);
  char pipes[256];
  pipes_of(f, "p1", pipes, sizeof(pipes));
  assert_string_equal(pipes, "");
  expect_pipe(pipe_call(f, "p1", "node-a", 1), "open", "ring", "node-a", 0, 1);
  pipes_of(f, "p1", pipes, sizeof(pipes)); /* committed before the answer */
  assert_string_equal(pipes, "node-a/1<node-a/0 ");
  expect_pipe(pipe_call(f, "p1", "node-a", 1), "reuse", "ring", "node-a", 0, 1);
  expect_pipe(pipe_call(f, "p1", "node-b", 0), "open", "transport", "node-a", 0, 1);
  pipes_of(f, "p1", pipes, sizeof(pipes));
  assert_string_equal(pipes, "node-a/1<node-a/0 node-b/0<node-a/0 ");
  /* The origin has sent its 2: the next target on node-b is fed by node-b/0, a ring. */
  c = shard_cmd(&o, room.id, "node-b", 1);
  apply(f, &c, ST(OK));
  expect_pipe(pipe_call(f, "p1", "node-b", 1), "open", "ring", "node-b", 0, 2);

  pipe_refused(f, "ghost", "node-a", 1, ST(NOT_FOUND));   /* unknown producer */
  pipe_refused(f, "p1", "node-z", 0, ST(NOT_FOUND));      /* unknown node */
  pipe_refused(f, "p1", "node-a", 7, ST(NOT_FOUND));      /* no such shard */
  pipe_refused(f, "", "node-a", 1, ST(INVALID_ARGUMENT)); /* malformed */
  pipe_refused(f, "p1", "", 1, ST(INVALID_ARGUMENT));

  /* Three concurrent plans for a new producer: decided one after the other on the
   * leader's loop, each seeing the pipes still being committed, so the origin never
   * sends more than its budget of 2. */
  c = producer_cmd(&o, "p2", room.id, "node-a", 1);
  apply(f, &c, ST(OK));
  piper_t pp[3] = {{.f = f, .node = "node-a", .worker = 0},
                   {.f = f, .node = "node-b", .worker = 0},
                   {.f = f, .node = "node-b", .worker = 1}};
  uv_thread_t th[3];
  for (int i = 0; i < 3; i++) assert_int_equal(uv_thread_create(&th[i], pipe_thread, &pp[i]), 0);
  for (int i = 0; i < 3; i++) uv_thread_join(&th[i]);
  int from_origin = 0;
  for (int i = 0; i < 3; i++) {
    assert_string_equal(pp[i].got.action, "open");
    from_origin += strcmp(pp[i].got.source, "node-a") == 0 && pp[i].got.source_worker == 1;
  }
  assert_int_equal(from_origin, 2);
  pipes_of(f, "p2", pipes, sizeof(pipes));
  int n = 0;
  for (const char *s = pipes; (s = strchr(s, '<')); s++) n++;
  assert_int_equal(n, 3);

  /* The producer's node dies: its pipes are gone and planning says so. */
  Mafalda__Controller__SetNodeState s;
  c = set_state_cmd(&s, "node-a", DEAD);
  apply(f, &c, ST(OK));
  pipe_refused(f, "p1", "node-b", 0, ST(NOT_FOUND)); /* the producer went with its node */
}

/* ---- malformed requests ---- */

static Mafalda__Rpc__Envelope *raw_call(fixture_t *f, const void *data, size_t len) {
  nng_socket s;
  assert_int_equal(nng_req0_open(&s), 0);
  nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
  assert_int_equal(nng_dial(s, f->rep.url, NULL, 0), 0);
  assert_int_equal(nng_send(s, (void *)data, len, 0), 0);
  nng_msg *m;
  assert_int_equal(nng_recvmsg(s, &m, 0), 0);
  Mafalda__Rpc__Envelope *env =
      mafalda__rpc__envelope__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
  assert_non_null(env);
  nng_msg_free(m);
  nng_close(s);
  return env;
}

static void test_bad_payloads(void **state) {
  fixture_t *f = *state;
  add_node(f, "node-a", CAPACITY);
  opened_t room = open_router(f, "first", "[]");
  const struct {
    const char *method, *payload;
    size_t len;
  } table[] = {
      {MF_RPC_METHOD_OPEN_ROUTER, "\xff\xff", 2},
      {MF_RPC_METHOD_OPEN_ROUTER, "\x0a\x7f", 2},      /* name longer than the message */
      {MF_RPC_METHOD_OPEN_ROUTER, "", 0},              /* no name */
      {MF_RPC_METHOD_PLACE_TRANSPORT, "\x0a\x09", 2},  /* truncated */
      {MF_RPC_METHOD_PLACE_TRANSPORT, "", 0},          /* no router id */
      {MF_RPC_METHOD_PLACE_TRANSPORT, "\x10\xff", 2},  /* broken varint */
      {MF_RPC_METHOD_PLACE_PIPE, "\x1a\x01", 2},       /* wrong wire type */
      {MF_RPC_METHOD_PLACE_PIPE, "", 0},               /* no ids */
      {MF_RPC_METHOD_PLACE_PIPE, "\x0a\x02\x00\x01", 4}, /* id with control bytes */
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    Mafalda__Rpc__Envelope req = MAFALDA__RPC__ENVELOPE__INIT;
    req.version = 1;
    req.request_id = 500 + i;
    req.method = (char *)table[i].method;
    req.payload.data = (uint8_t *)table[i].payload;
    req.payload.len = table[i].len;
    uint8_t buf[256];
    size_t n = mafalda__rpc__envelope__pack(&req, buf);
    Mafalda__Rpc__Envelope *env = raw_call(f, buf, n);
    if (env->status != ST(INVALID_ARGUMENT))
      fail_msg("row %zu (%s): status %d (%s)", i, table[i].method, env->status,
               env->error_message);
    assert_int_equal(env->request_id, 500 + i);
    mafalda__rpc__envelope__free_unpacked(env, NULL);
  }
  /* Still serving, nothing half-done. */
  opened_t again = open_router(f, "first", "[]");
  assert_string_equal(again.id, room.id);
  placed_t p = place(f, room.id, 10, NULL);
  assert_string_equal(p.node, "node-a");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_view_rules),
      cmocka_unit_test(test_pipes_in_flight),
      cmocka_unit_test_setup_teardown(test_open_router, setup, teardown),
      cmocka_unit_test_setup_teardown(test_place_transport, setup, teardown),
      cmocka_unit_test_setup_teardown(test_place_burst, setup, teardown),
      cmocka_unit_test_setup_teardown(test_place_loads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_place_pipe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_payloads, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
