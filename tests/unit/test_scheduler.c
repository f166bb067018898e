#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller/scheduler.h"

/* ---- a simulated cluster: plain arrays the view points into ---- */

typedef struct {
  size_t n_nodes, n_workers; /* every node has n_workers */
  char (*ids)[24];           /* "n00", "n01", ...: id order = index order */
  mf_sched_node_t *nodes;
  mf_sched_worker_t *workers; /* flat: node i's workers at i * n_workers */
  const char *routers[8];
  size_t n_routers;
  mf_sched_shard_t *shards;
  size_t n_shards;
  mf_sched_producer_t *producers;
  size_t n_producers;
  mf_sched_pipe_t *pipes;
  size_t n_pipes;
  size_t cap; /* of shards, producers, pipes */
  mf_sched_view_t view;
} sim_t;

static void sim_init(sim_t *s, size_t n_nodes, size_t n_workers, double capacity) {
  memset(s, 0, sizeof(*s));
  s->n_nodes = n_nodes;
  s->n_workers = n_workers;
  s->ids = calloc(n_nodes, sizeof(*s->ids));
  s->nodes = calloc(n_nodes, sizeof(*s->nodes));
  s->workers = calloc(n_nodes * n_workers + 1, sizeof(*s->workers));
  s->cap = n_nodes * n_workers * 2 + 64;
  s->shards = calloc(s->cap, sizeof(*s->shards));
  s->producers = calloc(s->cap, sizeof(*s->producers));
  s->pipes = calloc(s->cap, sizeof(*s->pipes));
  assert_non_null(s->ids);
  assert_non_null(s->nodes);
  assert_non_null(s->workers);
  assert_non_null(s->shards);
  assert_non_null(s->producers);
  assert_non_null(s->pipes);
  for (size_t i = 0; i < n_nodes; i++) {
    snprintf(s->ids[i], sizeof(s->ids[i]), "n%02zu", i);
    s->nodes[i] = (mf_sched_node_t){s->ids[i], MF_SCHED_NODE_ACTIVE,
                                    &s->workers[i * n_workers], n_workers};
    for (size_t w = 0; w < n_workers; w++) s->workers[i * n_workers + w].capacity_pps = capacity;
  }
  s->routers[s->n_routers++] = "r1";
  s->routers[s->n_routers++] = "r2";
  s->routers[s->n_routers++] = "r3";
}

static void sim_free(sim_t *s) {
  free(s->ids);
  free(s->nodes);
  free(s->workers);
  free(s->shards);
  free(s->producers);
  free(s->pipes);
}

static mf_sched_view_t *V(sim_t *s) {
  mf_sched_view_t *v = &s->view;
  v->nodes = s->nodes;
  v->n_nodes = s->n_nodes;
  v->routers = s->routers;
  v->n_routers = s->n_routers;
  v->shards = s->shards;
  v->n_shards = s->n_shards;
  v->producers = s->producers;
  v->n_producers = s->n_producers;
  v->pipes = s->pipes;
  v->n_pipes = s->n_pipes;
  return v;
}

static mf_sched_worker_t *W(sim_t *s, size_t node, uint32_t worker) {
  return &s->workers[node * s->n_workers + worker];
}

static size_t node_index(const sim_t *s, const char *id) {
  for (size_t i = 0; i < s->n_nodes; i++)
    if (strcmp(s->ids[i], id) == 0) return i;
  fail_msg("unknown node %s", id);
  return 0;
}

static bool has_shard(const sim_t *s, const char *router, size_t node, uint32_t worker) {
  for (size_t i = 0; i < s->n_shards; i++)
    if (strcmp(s->shards[i].router_id, router) == 0 && s->shards[i].worker == worker &&
        strcmp(s->shards[i].node_id, s->ids[node]) == 0)
      return true;
  return false;
}

static void add_shard(sim_t *s, const char *router, size_t node, uint32_t worker) {
  if (has_shard(s, router, node, worker)) return;
  assert_true(s->n_shards < s->cap);
  s->shards[s->n_shards++] = (mf_sched_shard_t){router, s->ids[node], worker, 1, 0};
}

static void add_producer(sim_t *s, const char *id, const char *router, size_t node,
                         uint32_t worker) {
  add_shard(s, router, node, worker);
  s->producers[s->n_producers++] = (mf_sched_producer_t){id, router, s->ids[node], worker};
}

static size_t add_pipe(sim_t *s, const char *producer, size_t tnode, uint32_t tw, size_t snode,
                       uint32_t sw) {
  assert_true(s->n_pipes < s->cap);
  s->pipes[s->n_pipes] = (mf_sched_pipe_t){producer, s->ids[tnode], s->ids[snode], tw, sw, 1, 0};
  return s->n_pipes++;
}

/* One placement that must succeed with exactly this decision. */
static void expect_place(sim_t *s, const char *router, double pps, size_t node,
                         uint32_t worker, mf_sched_rule_t rule, bool new_shard) {
  mf_sched_place_request_t req = {router, pps, NULL};
  mf_sched_placement_t d;
  char msg[256] = "";
  mf_err_t err = mf_sched_place_transport(V(s), &req, &d, msg, sizeof(msg));
  if (err != MF_OK) fail_msg("placement failed: %s (%s)", mf_err_name(err), msg);
  if (d.node_index != node || d.worker != worker || d.rule != rule ||
      d.new_shard != new_shard)
    fail_msg("expected n%02zu w%u %s%s, got %s w%u %s%s (%s)", node, worker,
             mf_sched_rule_name(rule), new_shard ? " new" : "", d.node_id, d.worker,
             mf_sched_rule_name(d.rule), d.new_shard ? " new" : "", msg);
  assert_string_equal(d.node_id, s->ids[node]);
  assert_true(strlen(msg) > 0);
}

static void expect_place_err(sim_t *s, const char *router, double pps, mf_err_t want) {
  mf_sched_place_request_t req = {router, pps, NULL};
  mf_sched_placement_t d;
  char msg[256] = "";
  assert_int_equal(mf_sched_place_transport(V(s), &req, &d, msg, sizeof(msg)), want);
  assert_true(strlen(msg) > 0);
}

/* Place and make the decision visible as if the load report caught up. */
static mf_sched_placement_t place_commit(sim_t *s, const char *router, double pps) {
  mf_sched_place_request_t req = {router, pps, NULL};
  mf_sched_placement_t d;
  char msg[256];
  mf_err_t err = mf_sched_place_transport(V(s), &req, &d, msg, sizeof(msg));
  if (err != MF_OK) fail_msg("placement failed: %s (%s)", mf_err_name(err), msg);
  if (d.new_shard) add_shard(s, router, d.node_index, d.worker);
  W(s, d.node_index, d.worker)->load_pps += pps;
  W(s, d.node_index, d.worker)->transports++;
  return d;
}

static double ms_since(const struct timespec *t0) { /* printed, never asserted */
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- 1. packing ---- */

/* A new room on an idle cluster opens on the client's node (prefer_node_id) when no other
 * node is freer; a freer node still wins, and the hint never beats a router's own node. */
static void test_new_shard_prefers_client_node(void **state) {
  sim_t s;
  sim_init(&s, 3, 1, 1000);
  mf_sched_place_request_t req = {"r1", 100, s.ids[2]};
  mf_sched_placement_t d;
  char msg[256];
  assert_int_equal(mf_sched_place_transport(V(&s), &req, &d, msg, sizeof(msg)), MF_OK);
  assert_int_equal(d.node_index, 2); /* all as free: the client's node, not the first id */
  assert_int_equal(d.rule, MF_SCHED_RULE_FREEST_NODE);
  /* measured load differs a little on idle nodes: within 5% the client's node still wins */
  W(&s, 0, 0)->load_pps = 10;
  W(&s, 1, 0)->load_pps = 10;
  W(&s, 2, 0)->load_pps = 30;
  assert_int_equal(mf_sched_place_transport(V(&s), &req, &d, msg, sizeof(msg)), MF_OK);
  assert_int_equal(d.node_index, 2);
  mf_sched_place_request_t plain = {"r1", 100, NULL};
  assert_int_equal(mf_sched_place_transport(V(&s), &plain, &d, msg, sizeof(msg)), MF_OK);
  assert_int_equal(d.node_index, 0); /* without a preference: the freest, then the id */
  W(&s, 0, 0)->load_pps = 100; /* every node in use, n02 less free than n00 */
  W(&s, 1, 0)->load_pps = 500;
  W(&s, 2, 0)->load_pps = 500;
  assert_int_equal(mf_sched_place_transport(V(&s), &req, &d, msg, sizeof(msg)), MF_OK);
  assert_int_equal(d.node_index, 0);
  W(&s, 2, 0)->load_pps = 0;
  add_shard(&s, "r1", 1, 0); /* n01 hosts the router: rule 3a before any hint */
  assert_int_equal(mf_sched_place_transport(V(&s), &req, &d, msg, sizeof(msg)), MF_OK);
  assert_int_equal(d.node_index, 1);
  assert_int_equal(d.rule, MF_SCHED_RULE_FILL_SHARD);
  sim_free(&s);
}

static void test_packing_fills_one_worker_first(void **state) {
  sim_t s;
  sim_init(&s, 2, 2, 1000); /* watermark 0.8: 800 pps = 8 transports of 100 per worker */
  static const struct {
    size_t node;
    uint32_t worker;
    mf_sched_rule_t rule;
    bool new_shard;
  } want[] = {
      {0, 0, MF_SCHED_RULE_FREEST_NODE, true},  /* empty cluster: first node by id, w0 */
      {0, 0, MF_SCHED_RULE_FILL_SHARD, false},  /* ... filled up to the watermark */
      {0, 1, MF_SCHED_RULE_ROUTER_NODE, true},  /* n00w0 full: same node, new shard */
      {0, 1, MF_SCHED_RULE_FILL_SHARD, false},
      {1, 0, MF_SCHED_RULE_FREEST_NODE, true},  /* n00 full: the emptiest node */
      {1, 0, MF_SCHED_RULE_FILL_SHARD, false},
      {1, 1, MF_SCHED_RULE_ROUTER_NODE, true},
      {1, 1, MF_SCHED_RULE_FILL_SHARD, false},
  };
  for (size_t i = 0; i < 32; i++) {
    /* row 2k = first placement on worker k, row 2k+1 = the 7 that fill it */
    size_t row = (i / 8) * 2 + (i % 8 != 0);
    expect_place(&s, "r1", 100, want[row].node, want[row].worker, want[row].rule,
                 want[row].new_shard);
    mf_sched_placement_t d = place_commit(&s, "r1", 100);
    assert_int_equal(d.worker, want[row].worker);
  }
  for (size_t i = 0; i < 4; i++) assert_true(fabs(s.workers[i].load_pps - 800) < 1e-9);
  expect_place_err(&s, "r1", 100, MF_ERR_LIMIT); /* rule 4: cluster full */
  expect_place(&s, "r1", 0, 0, 0, MF_SCHED_RULE_FILL_SHARD, false); /* 0 pps still fits */
  sim_free(&s);
}

/* ---- the rules one situation at a time ---- */

static void test_placement_rules(void **state) {
  sim_t s;
  sim_init(&s, 3, 3, 1000);

  /* Rule 1 picks the most loaded shard of the room that still fits. */
  add_shard(&s, "r1", 0, 0);
  add_shard(&s, "r1", 0, 1);
  add_shard(&s, "r1", 1, 0);
  W(&s, 0, 0)->load_pps = 700;
  W(&s, 0, 1)->load_pps = 300;
  W(&s, 1, 0)->load_pps = 500;
  expect_place(&s, "r1", 50, 0, 0, MF_SCHED_RULE_FILL_SHARD, false);
  expect_place(&s, "r1", 150, 1, 0, MF_SCHED_RULE_FILL_SHARD, false);
  expect_place(&s, "r1", 450, 0, 1, MF_SCHED_RULE_FILL_SHARD, false);
  /* The CPU signal counts when it is above the measured pps. */
  W(&s, 0, 1)->cpu = 0.75; /* 750 pps worth: no shard fits; all other workers idle */
  expect_place(&s, "r1", 450, 0, 2, MF_SCHED_RULE_ROUTER_NODE, true);
  W(&s, 0, 1)->cpu = 0;

  /* Rule 2: the room's shards are full; open a shard on the node with most of its
   * producers, preferring a worker another room already uses over an idle one. */
  for (uint32_t w = 0; w < 3; w++) W(&s, 0, w)->load_pps = 800;
  W(&s, 1, 0)->load_pps = 800;
  add_producer(&s, "p1", "r1", 0, 0);
  add_producer(&s, "p2", "r1", 1, 0);
  add_producer(&s, "p3", "r1", 1, 0);
  add_shard(&s, "r2", 1, 2);
  W(&s, 1, 2)->load_pps = 400;
  expect_place(&s, "r1", 100, 1, 2, MF_SCHED_RULE_PRODUCER_NODE, true);
  W(&s, 1, 2)->load_pps = 790; /* in use but full: the idle worker of the same node */
  expect_place(&s, "r1", 100, 1, 1, MF_SCHED_RULE_PRODUCER_NODE, true);

  /* Rule 3a: the producers' node n01 is full; n00 hosts a (full) shard of the room:
   * open one there on its least-loaded in-use worker (n02 is emptier but has no r1). */
  s.n_shards = 0;
  s.n_producers = 0;
  add_shard(&s, "r1", 0, 0);          /* n00w0: 800 */
  add_producer(&s, "p1", "r1", 1, 0); /* n01w0: 800 */
  W(&s, 1, 1)->load_pps = 800;
  W(&s, 1, 2)->load_pps = 790;
  W(&s, 0, 1)->load_pps = 300;
  W(&s, 0, 2)->load_pps = 200;
  expect_place(&s, "r1", 100, 0, 2, MF_SCHED_RULE_ROUTER_NODE, true);
  W(&s, 0, 2)->load_pps = 0; /* now idle: the in-use worker wins although more loaded */
  expect_place(&s, "r1", 100, 0, 1, MF_SCHED_RULE_ROUTER_NODE, true);
  W(&s, 0, 1)->load_pps = 750; /* the in-use one cannot fit: the idle one of n00 */
  expect_place(&s, "r1", 100, 0, 2, MF_SCHED_RULE_ROUTER_NODE, true);
  sim_free(&s);

  /* Rule 3b: a new room goes to an in-use node (most free capacity among them) and an
   * in-use worker there; the idle node n00 is not opened although it is emptiest. */
  sim_init(&s, 3, 2, 1000);
  add_shard(&s, "r2", 1, 0);
  W(&s, 1, 0)->load_pps = 600; /* n01 free: 200 + 800 */
  add_shard(&s, "r3", 2, 0);
  W(&s, 2, 0)->load_pps = 100; /* n02 free: 700 + 800 */
  expect_place(&s, "r1", 100, 2, 0, MF_SCHED_RULE_FREEST_NODE, true);
  /* n02 still has most free capacity; its in-use worker cannot take 750: its idle one */
  expect_place(&s, "r1", 750, 2, 1, MF_SCHED_RULE_FREEST_NODE, true);
  /* an in-use node whose only fitting worker is idle beats an idle node */
  W(&s, 2, 0)->load_pps = 750; /* n02 free: 50 + 800 */
  W(&s, 1, 0)->load_pps = 760; /* n01 free: 40 + 800 */
  expect_place(&s, "r1", 100, 2, 1, MF_SCHED_RULE_FREEST_NODE, true);
  expect_place(&s, "r1", 790, 2, 1, MF_SCHED_RULE_FREEST_NODE, true);
  expect_place_err(&s, "r1", 801, MF_ERR_LIMIT);
  /* tie on free capacity: node id */
  W(&s, 1, 0)->load_pps = 750;
  expect_place(&s, "r1", 100, 1, 1, MF_SCHED_RULE_FREEST_NODE, true);
  /* transports alone make a worker in use (its load not reported yet) */
  W(&s, 0, 1)->transports = 1;
  W(&s, 1, 0)->load_pps = 800;
  W(&s, 1, 1)->load_pps = 800;
  W(&s, 2, 0)->load_pps = 800;
  W(&s, 2, 1)->load_pps = 800;
  expect_place(&s, "r1", 100, 0, 1, MF_SCHED_RULE_FREEST_NODE, true);
  /* watermark knob */
  s.view.watermark = 0.5;
  expect_place_err(&s, "r1", 600, MF_ERR_LIMIT);
  expect_place(&s, "r1", 500, 0, 1, MF_SCHED_RULE_FREEST_NODE, true);
  /* its in-use worker full: the node's idle worker, not another (idle) node */
  s.view.watermark = 0;
  W(&s, 0, 1)->load_pps = 800;
  expect_place(&s, "r1", 100, 0, 0, MF_SCHED_RULE_FREEST_NODE, true);
  sim_free(&s);
}

static void test_only_active_nodes_get_placements(void **state) {
  sim_t s;
  sim_init(&s, 4, 1, 1000);
  s.nodes[0].state = MF_SCHED_NODE_DEAD;
  s.nodes[1].state = MF_SCHED_NODE_DRAINING;
  s.nodes[2].state = MF_SCHED_NODE_JOINING;
  add_shard(&s, "r1", 1, 0); /* the room lives on the draining node, which has room */
  add_producer(&s, "p1", "r1", 1, 0);
  W(&s, 3, 0)->load_pps = 700;
  /* garbage on non-active nodes is not validated: they are never candidates */
  W(&s, 0, 0)->capacity_pps = 0;
  W(&s, 2, 0)->load_pps = NAN;
  expect_place(&s, "r1", 100, 3, 0, MF_SCHED_RULE_FREEST_NODE, true);
  expect_place_err(&s, "r1", 200, MF_ERR_LIMIT);
  s.nodes[2].state = MF_SCHED_NODE_ACTIVE; /* a node joins live: it takes placements */
  W(&s, 2, 0)->load_pps = 0;
  expect_place(&s, "r1", 200, 2, 0, MF_SCHED_RULE_FREEST_NODE, true);
  s.nodes[2].state = MF_SCHED_NODE_DRAINING;
  s.nodes[3].state = MF_SCHED_NODE_DEAD;
  expect_place_err(&s, "r1", 0, MF_ERR_STATE); /* no active node at all */
  sim_free(&s);
}

/* ---- 2. rooms share workers, idle workers stay idle ---- */

static void test_rooms_share_a_worker(void **state) {
  sim_t s;
  sim_init(&s, 2, 2, 1000);
  expect_place(&s, "r1", 100, 0, 0, MF_SCHED_RULE_FREEST_NODE, true);
  place_commit(&s, "r1", 100);
  expect_place(&s, "r2", 100, 0, 0, MF_SCHED_RULE_FREEST_NODE, true);
  place_commit(&s, "r2", 100);
  expect_place(&s, "r3", 100, 0, 0, MF_SCHED_RULE_FREEST_NODE, true);
  place_commit(&s, "r3", 100);
  place_commit(&s, "r2", 100);
  assert_int_equal(W(&s, 0, 0)->transports, 4);
  for (size_t f = 1; f < 4; f++) assert_int_equal(s.workers[f].transports, 0);
  /* fill the shared worker: r1 grows into the idle worker of its own node */
  for (int i = 0; i < 4; i++) place_commit(&s, "r1", 100);
  assert_true(fabs(W(&s, 0, 0)->load_pps - 800) < 1e-9);
  expect_place(&s, "r1", 100, 0, 1, MF_SCHED_RULE_ROUTER_NODE, true);
  place_commit(&s, "r1", 100);
  /* r2 follows into the now in-use worker instead of waking n01 */
  expect_place(&s, "r2", 100, 0, 1, MF_SCHED_RULE_ROUTER_NODE, true);
  assert_int_equal(W(&s, 1, 0)->transports + W(&s, 1, 1)->transports, 0);
  sim_free(&s);
}

/* ---- 3. bursts spread through the pending account ---- */

static void test_burst_spread_by_pending(void **state) {
  sim_t s;
  sim_init(&s, 1, 4, 1000);
  /* Without pending: reports lag, the view never changes, all 20 pile onto one worker. */
  for (int i = 0; i < 20; i++) {
    mf_sched_place_request_t req = {"r1", 100, NULL};
    mf_sched_placement_t d;
    assert_int_equal(mf_sched_place_transport(V(&s), &req, &d, NULL, 0), MF_OK);
    assert_int_equal(d.worker, 0);
    if (d.new_shard) add_shard(&s, "r1", 0, 0);
  }
  /* With pending: the same burst spreads once a worker reaches the watermark. */
  s.n_shards = 0;
  mf_sched_pending_t pend;
  mf_sched_pending_init(&pend);
  uint32_t count[4] = {0};
  const uint64_t now = 1000000;
  for (int i = 0; i < 20; i++) {
    mf_sched_place_request_t req = {"r1", 100, NULL};
    mf_sched_placement_t d;
    assert_int_equal(mf_sched_place_transport(V(&s), &req, &d, NULL, 0), MF_OK);
    if (d.new_shard) add_shard(&s, "r1", 0, d.worker);
    assert_int_equal(mf_sched_pending_add(&pend, d.node_id, d.worker, 100, now + 10000),
                     MF_OK);
    mf_sched_pending_apply(&pend, V(&s));
    count[d.worker]++;
  }
  assert_int_equal(count[0], 8);
  assert_int_equal(count[1], 8);
  assert_int_equal(count[2], 4);
  assert_int_equal(count[3], 0);
  assert_true(fabs(W(&s, 0, 0)->pending_pps - 800) < 1e-9);
  assert_true(fabs(W(&s, 0, 2)->pending_pps - 400) < 1e-9);
  /* the reports catch up; pending entries expire */
  assert_int_equal(mf_sched_pending_expire(&pend, now + 9999), 0);
  assert_int_equal(mf_sched_pending_expire(&pend, now + 10000), 20);
  mf_sched_pending_apply(&pend, V(&s));
  for (int w = 0; w < 4; w++) assert_true(W(&s, 0, (uint32_t)w)->pending_pps == 0);
  /* forget_node drops one node's entries; unknown nodes/workers are ignored by apply */
  assert_int_equal(mf_sched_pending_add(&pend, "n00", 1, 50, now), MF_OK);
  assert_int_equal(mf_sched_pending_add(&pend, "zz", 0, 50, now), MF_OK);
  assert_int_equal(mf_sched_pending_add(&pend, "n00", 99, 50, now), MF_OK);
  mf_sched_pending_apply(&pend, V(&s));
  assert_true(W(&s, 0, 1)->pending_pps == 50);
  assert_int_equal(mf_sched_pending_forget_node(&pend, "n00"), 2);
  assert_int_equal(pend.count, 1);
  /* bad input */
  char longid[MF_SCHED_ID_MAX + 2];
  memset(longid, 'a', sizeof(longid) - 1);
  longid[sizeof(longid) - 1] = 0;
  assert_int_equal(mf_sched_pending_add(&pend, longid, 0, 1, 0), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sched_pending_add(&pend, longid + 1, 0, 1, 0), MF_OK); /* 64 bytes */
  assert_int_equal(mf_sched_pending_add(&pend, NULL, 0, 1, 0), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sched_pending_add(&pend, "", 0, 1, 0), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sched_pending_add(&pend, "n00", 0, -1, 0), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sched_pending_add(&pend, "n00", 0, NAN, 0), MF_ERR_INVALID_ARG);
  mf_sched_pending_free(&pend);
  assert_int_equal(pend.count, 0);
  mf_sched_pending_free(&pend);
  mf_sched_pending_free(NULL);
  sim_free(&s);
}

/* ---- pipes ---- */

static mf_sched_pipe_decision_t plan_ok(sim_t *s, const char *producer, size_t node,
                                        uint32_t worker) {
  mf_sched_pipe_request_t req = {producer, s->ids[node], worker};
  mf_sched_pipe_decision_t d;
  char msg[256];
  mf_err_t err = mf_sched_plan_pipe(V(s), &req, &d, msg, sizeof(msg));
  if (err != MF_OK) fail_msg("plan failed: %s (%s)", mf_err_name(err), msg);
  return d;
}

static void commit_pipe(sim_t *s, const char *producer, size_t node, uint32_t worker,
                        const mf_sched_pipe_decision_t *d) {
  add_pipe(s, producer, node, worker, node_index(s, d->source_node_id), d->source_worker);
}

/* 5. a pipe is never opened twice; local consumers need none */
static void test_pipe_reuse(void **state) {
  sim_t s;
  sim_init(&s, 2, 2, 1000);
  add_producer(&s, "p1", "r1", 0, 0);
  add_shard(&s, "r1", 0, 1);
  add_shard(&s, "r1", 1, 1);
  mf_sched_pipe_decision_t d = plan_ok(&s, "p1", 0, 0);
  assert_int_equal(d.action, MF_SCHED_PIPE_LOCAL);
  assert_int_equal(d.depth, 0);
  d = plan_ok(&s, "p1", 0, 1);
  assert_int_equal(d.action, MF_SCHED_PIPE_OPEN);
  assert_int_equal(d.kind, MF_SCHED_PIPE_RING);
  assert_string_equal(d.source_node_id, "n00");
  assert_int_equal(d.source_worker, 0);
  assert_int_equal(d.depth, 1);
  commit_pipe(&s, "p1", 0, 1, &d);
  d = plan_ok(&s, "p1", 1, 1);
  assert_int_equal(d.action, MF_SCHED_PIPE_OPEN);
  assert_int_equal(d.kind, MF_SCHED_PIPE_TRANSPORT);
  assert_string_equal(mf_sched_pipe_kind_name(d.kind), "transport");
  commit_pipe(&s, "p1", 1, 1, &d);
  for (int again = 0; again < 3; again++) {
    d = plan_ok(&s, "p1", 0, 1);
    assert_int_equal(d.action, MF_SCHED_PIPE_REUSE);
    assert_int_equal(d.pipe_index, 0);
    assert_int_equal(d.kind, MF_SCHED_PIPE_RING);
    d = plan_ok(&s, "p1", 1, 1);
    assert_int_equal(d.action, MF_SCHED_PIPE_REUSE);
    assert_int_equal(d.pipe_index, 1);
    assert_int_equal(d.depth, 1);
  }
  assert_int_equal(s.n_pipes, 2);
  sim_free(&s);
}

/* Relay choice when the origin is out of budget: same node as the target first, then the
 * shallowest, then the one sending fewest pipes; relays on non-active nodes never. */
static void test_pipe_relay_choice(void **state) {
  sim_t s;
  sim_init(&s, 4, 3, 1000);
  s.view.max_pipes_out_per_worker = 2;
  add_producer(&s, "p1", "r1", 0, 0);
  for (size_t n = 0; n < 4; n++)
    for (uint32_t w = 0; w < 3; w++) add_shard(&s, "r1", n, w);
  add_pipe(&s, "p1", 1, 0, 0, 0); /* origin -> n01w0 */
  add_pipe(&s, "p1", 2, 0, 0, 0); /* origin -> n02w0: origin now full */
  add_pipe(&s, "p1", 2, 1, 2, 0); /* n02w0 -> n02w1 (depth 2) */
  /* same node as target wins over depth: n02w2 from n02w0 (ring) */
  mf_sched_pipe_decision_t d = plan_ok(&s, "p1", 2, 2);
  assert_int_equal(d.action, MF_SCHED_PIPE_OPEN);
  assert_string_equal(d.source_node_id, "n02");
  assert_int_equal(d.source_worker, 0);
  assert_int_equal(d.kind, MF_SCHED_PIPE_RING);
  assert_int_equal(d.depth, 2);
  /* other node: shallowest first, then fewest outgoing: n01w0 (depth 1, 0 out) */
  d = plan_ok(&s, "p1", 3, 0);
  assert_string_equal(d.source_node_id, "n01");
  assert_int_equal(d.source_worker, 0);
  assert_int_equal(d.kind, MF_SCHED_PIPE_TRANSPORT);
  add_pipe(&s, "p1", 3, 0, 1, 0);
  add_pipe(&s, "p1", 1, 1, 1, 0); /* n01w0 full now */
  /* depth-1 relays: n01w0 full, n02w0 has 1 out -> n02w0 */
  d = plan_ok(&s, "p1", 3, 1);
  assert_string_equal(d.source_node_id, "n03"); /* same node holder n03w0 (depth 2) */
  s.nodes[3].state = MF_SCHED_NODE_DRAINING;      /* ... unless its node drains */
  d = plan_ok(&s, "p1", 3, 1);
  assert_string_equal(d.source_node_id, "n02");
  assert_int_equal(d.source_worker, 0);
  assert_int_equal(d.depth, 2);
  add_pipe(&s, "p1", 0, 1, 2, 0); /* n02w0 full */
  /* depth 2 now: n00w1, n01w1, n02w1 (0 out each), n03w0 (draining): node id order */
  d = plan_ok(&s, "p1", 3, 1);
  assert_string_equal(d.source_node_id, "n00");
  assert_int_equal(d.source_worker, 1);
  assert_int_equal(d.depth, 3);
  /* every relay is full or on a non-active node, the origin is full -> LIMIT */
  s.view.max_pipes_out_per_worker = 1;
  s.nodes[0].state = MF_SCHED_NODE_DRAINING;
  s.nodes[1].state = MF_SCHED_NODE_DRAINING;
  s.nodes[2].state = MF_SCHED_NODE_DRAINING;
  mf_sched_pipe_request_t req = {"p1", "n03", 1};
  char msg[256] = "";
  assert_int_equal(mf_sched_plan_pipe(V(&s), &req, &d, msg, sizeof(msg)), MF_ERR_LIMIT);
  assert_non_null(strstr(msg, "budget"));
  /* a draining origin still feeds its own producer's pipes; a draining target still
   * gets pipes (its consumers live on until it is empty) */
  s.view.max_pipes_out_per_worker = 10;
  d = plan_ok(&s, "p1", 3, 1);
  assert_string_equal(d.source_node_id, "n00");
  assert_int_equal(d.depth, 1);
  sim_free(&s);
}

/* Garbage in the pipe list (a cycle cut off from the origin, a duplicate target, a pipe
 * into the origin) never hangs the planner nor becomes a source. */
static void test_pipe_garbage(void **state) {
  sim_t s;
  sim_init(&s, 2, 4, 1000);
  s.view.max_pipes_out_per_worker = 1;
  add_producer(&s, "p1", "r1", 0, 0);
  for (size_t n = 0; n < 2; n++)
    for (uint32_t w = 0; w < 4; w++) add_shard(&s, "r1", n, w);
  add_pipe(&s, "p1", 0, 1, 0, 0); /* origin -> n00w1: origin full */
  add_pipe(&s, "p1", 1, 0, 1, 1); /* n01w0 <- n01w1 */
  add_pipe(&s, "p1", 1, 1, 1, 0); /* n01w1 <- n01w0: a cycle */
  add_pipe(&s, "p1", 1, 0, 0, 1); /* duplicate target n01w0: ignored */
  add_pipe(&s, "p1", 0, 0, 0, 1); /* into the origin: ignored */
  mf_sched_pipe_decision_t d = plan_ok(&s, "p1", 1, 2);
  assert_int_equal(d.action, MF_SCHED_PIPE_OPEN);
  assert_string_equal(d.source_node_id, "n00"); /* n00w1, never a cycle member */
  assert_int_equal(d.source_worker, 1);
  d = plan_ok(&s, "p1", 1, 0);
  assert_int_equal(d.action, MF_SCHED_PIPE_REUSE);
  assert_int_equal(d.pipe_index, 1);
  assert_int_equal(d.depth, UINT32_MAX); /* its chain does not reach the origin */
  add_pipe(&s, "p1", 1, 2, 0, 1);         /* n00w1 full too */
  mf_sched_pipe_request_t req = {"p1", "n01", 3};
  assert_int_equal(mf_sched_plan_pipe(V(&s), &req, &d, NULL, 0), MF_OK); /* n01w2 */
  assert_string_equal(d.source_node_id, "n01");
  assert_int_equal(d.source_worker, 2);
  assert_int_equal(d.kind, MF_SCHED_PIPE_RING);
  assert_int_equal(d.depth, 3);
  sim_free(&s);
}

/* Checks the relay tree of producer p: one pipe per non-origin shard, budget per source,
 * every shard connected back to the origin. Returns the max depth. */
static uint32_t check_tree(const sim_t *s, const char *p, size_t origin_node,
                           uint32_t origin_worker, uint32_t budget, size_t shards) {
  size_t nw = s->n_workers, nf = s->n_nodes * nw;
  int *feed = malloc(nf * sizeof(int)); /* flat worker -> pipe index, -1 */
  uint32_t *out = calloc(nf, sizeof(uint32_t));
  assert_non_null(feed);
  assert_non_null(out);
  for (size_t f = 0; f < nf; f++) feed[f] = -1;
  size_t n = 0;
  for (size_t i = 0; i < s->n_pipes; i++) {
    const mf_sched_pipe_t *pp = &s->pipes[i];
    if (strcmp(pp->producer_id, p) != 0) continue;
    size_t t = node_index(s, pp->target_node_id) * nw + pp->target_worker;
    size_t src = node_index(s, pp->source_node_id) * nw + pp->source_worker;
    assert_int_equal(feed[t], -1); /* never twice */
    feed[t] = (int)i;
    out[src]++;
    assert_true(out[src] <= budget);
    n++;
  }
  assert_int_equal(n, shards - 1);
  size_t of = origin_node * nw + origin_worker;
  assert_int_equal(feed[of], -1);
  uint32_t max_depth = 0;
  uint32_t hist[64] = {0};
  for (size_t f = 0; f < nf; f++) {
    if (feed[f] < 0) continue;
    uint32_t depth = 0;
    size_t cur = f;
    while (cur != of) {
      assert_true(feed[cur] >= 0); /* connected */
      const mf_sched_pipe_t *pp = &s->pipes[feed[cur]];
      cur = node_index(s, pp->source_node_id) * nw + pp->source_worker;
      depth++;
      assert_true(depth <= nf); /* no cycle */
    }
    if (depth > max_depth) max_depth = depth;
    hist[depth < 63 ? depth : 63]++;
  }
  printf("# relay tree %s: %zu pipes over %zu nodes x %zu workers, budget %u, max depth %u:",
         p, n, s->n_nodes, nw, budget, max_depth);
  for (uint32_t d = 1; d <= max_depth && d < 64; d++) printf(" d%u=%u", d, hist[d]);
  printf("\n");
  free(feed);
  free(out);
  return max_depth;
}

/* 4. a 1 -> 2,000 room over 20 nodes x 4 workers */
static void test_relay_tree_1_to_2000(void **state) {
  sim_t s;
  sim_init(&s, 20, 4, 320); /* watermark 0.8: 256 pps = 25 transports of 10 pps */
  s.view.max_pipes_out_per_worker = 4;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  mf_sched_placement_t d0 = place_commit(&s, "r1", 10);
  add_producer(&s, "p1", "r1", d0.node_index, d0.worker);
  size_t opened = 0, reused = 0, local = 0;
  for (int i = 1; i < 2000; i++) {
    mf_sched_placement_t d = place_commit(&s, "r1", 10);
    mf_sched_pipe_decision_t pd = plan_ok(&s, "p1", d.node_index, d.worker);
    if (pd.action == MF_SCHED_PIPE_OPEN) {
      commit_pipe(&s, "p1", d.node_index, d.worker, &pd);
      opened++;
    } else if (pd.action == MF_SCHED_PIPE_REUSE) {
      reused++;
    } else {
      local++;
    }
  }
  assert_int_equal(s.n_shards, 80);
  assert_int_equal(opened, 79);
  assert_int_equal(local, 24);
  assert_int_equal(reused, 2000 - 1 - 79 - 24);
  printf("# 2000 placements + 1999 pipe plans in %.1f ms\n", ms_since(&t0));
  expect_place_err(&s, "r1", 10, MF_ERR_LIMIT); /* exactly full */
  uint32_t depth = check_tree(&s, "p1", d0.node_index, d0.worker, 4, 80);
  assert_true(depth <= 5); /* 80 shards, fan-out 4: log4(80) ~ 3.2 plus intra-node hops */
  sim_free(&s);
}

/* The same with 2,000 SHARDS (100 nodes x 20 workers, one transport fills a worker): the
 * planner must stay fast with thousands of holders. */
static void test_relay_tree_2000_shards(void **state) {
  sim_t s;
  sim_init(&s, 100, 20, 100);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  mf_sched_placement_t d0 = place_commit(&s, "r1", 80);
  add_producer(&s, "p1", "r1", d0.node_index, d0.worker);
  for (int i = 1; i < 2000; i++) {
    mf_sched_placement_t d = place_commit(&s, "r1", 80);
    assert_true(d.new_shard);
    mf_sched_pipe_decision_t pd = plan_ok(&s, "p1", d.node_index, d.worker);
    assert_int_equal(pd.action, MF_SCHED_PIPE_OPEN);
    commit_pipe(&s, "p1", d.node_index, d.worker, &pd);
  }
  printf("# 2000 placements + 1999 pipe opens over 2000 shards in %.1f ms\n", ms_since(&t0));
  uint32_t depth = check_tree(&s, "p1", d0.node_index, d0.worker,
                              MF_SCHED_DEFAULT_MAX_PIPES_OUT, 2000);
  assert_true(depth <= 8);
  sim_free(&s);
}

/* ---- 6. node loss ---- */

static bool contains(const size_t *arr, size_t n, size_t x) {
  for (size_t i = 0; i < n; i++)
    if (arr[i] == x) return true;
  return false;
}

static void setup_loss(sim_t *s) {
  sim_init(s, 3, 2, 1000);
  for (size_t n = 0; n < 3; n++)
    for (uint32_t w = 0; w < 2; w++) add_shard(s, "r1", n, w);
  add_producer(s, "p1", "r1", 0, 0);
  add_producer(s, "p2", "r1", 1, 0);
  add_pipe(s, "p1", 1, 0, 0, 0); /* 0: n00w0 -> n01w0 (target dies) */
  add_pipe(s, "p1", 1, 1, 1, 0); /* 1: n01w0 -> n01w1 (both ends die) */
  add_pipe(s, "p1", 2, 0, 1, 0); /* 2: relay n01w0 -> n02w0: re-plan */
  add_pipe(s, "p1", 2, 1, 2, 0); /* 3: n02w0 -> n02w1: stays, fed again via 2's re-plan */
  add_pipe(s, "p2", 0, 0, 1, 0); /* 4: producer dies */
  add_pipe(s, "p2", 0, 1, 0, 0); /* 5: producer dies (relay on a live node) */
  add_pipe(s, "p1", 0, 1, 0, 0); /* 6: unaffected */
}

static void test_node_loss(void **state) {
  sim_t s;
  setup_loss(&s);
  mf_sched_pipe_t before[16];
  memcpy(before, s.pipes, s.n_pipes * sizeof(*before));
  mf_sched_loss_t loss;
  char msg[256];
  assert_int_equal(mf_sched_node_lost(V(&s), "n01", &loss, msg, sizeof(msg)), MF_OK);
  assert_int_equal(memcmp(before, s.pipes, s.n_pipes * sizeof(*before)), 0);
  assert_int_equal(loss.n_shards, 2);
  assert_int_equal(loss.shards[0], 2); /* r1@n01w0, r1@n01w1 */
  assert_int_equal(loss.shards[1], 3);
  assert_int_equal(loss.n_producers, 1);
  assert_int_equal(loss.producers[0], 1); /* p2 */
  static const size_t gone[] = {0, 1, 2, 4, 5};
  assert_int_equal(loss.n_pipes, 5);
  for (size_t i = 0; i < 5; i++) assert_int_equal(loss.pipes[i], gone[i]);
  assert_int_equal(loss.n_replans, 1);
  assert_int_equal(loss.n_unfed, 0);
  assert_int_equal(loss.replans[0].pipe, 2);
  const mf_sched_pipe_decision_t *d = &loss.replans[0].decision;
  assert_int_equal(d->action, MF_SCHED_PIPE_OPEN);
  assert_string_equal(d->source_node_id, "n00"); /* the origin has budget again */
  assert_int_equal(d->source_worker, 0);
  assert_int_equal(d->kind, MF_SCHED_PIPE_TRANSPORT);
  assert_int_equal(d->depth, 1);
  mf_sched_loss_free(&loss);
  mf_sched_loss_free(&loss); /* idempotent */

  /* Origin out of budget (pipe 6): the re-plan relays from n00w1, never from n02w1 (its
   * feed is being re-planned: it is cut off from the origin) nor the dead node. */
  s.view.max_pipes_out_per_worker = 1;
  assert_int_equal(mf_sched_node_lost(V(&s), "n01", &loss, NULL, 0), MF_OK);
  assert_int_equal(loss.n_replans, 1);
  assert_string_equal(loss.replans[0].decision.source_node_id, "n00");
  assert_int_equal(loss.replans[0].decision.source_worker, 1);
  assert_int_equal(loss.replans[0].decision.depth, 2);
  mf_sched_loss_free(&loss);

  /* No relay allowed (n00 drains, the origin is full): the re-plan fails and its whole
   * subtree (pipe 3) goes too. */
  s.nodes[0].state = MF_SCHED_NODE_DRAINING;
  assert_int_equal(mf_sched_node_lost(V(&s), "n01", &loss, msg, sizeof(msg)), MF_OK);
  assert_int_equal(loss.n_replans, 0);
  assert_int_equal(loss.n_unfed, 1);
  static const size_t gone2[] = {0, 1, 2, 3, 4, 5};
  assert_int_equal(loss.n_pipes, 6);
  for (size_t i = 0; i < 6; i++) assert_int_equal(loss.pipes[i], gone2[i]);
  mf_sched_loss_free(&loss);
  s.nodes[0].state = MF_SCHED_NODE_ACTIVE;
  s.view.max_pipes_out_per_worker = 0;

  /* Losing the origin's node: its producer and every pipe of it go, nothing re-planned. */
  assert_int_equal(mf_sched_node_lost(V(&s), "n00", &loss, NULL, 0), MF_OK);
  assert_int_equal(loss.n_producers, 1);
  assert_int_equal(loss.producers[0], 0);
  for (size_t i = 0; i < s.n_pipes; i++) {
    bool p1 = strcmp(s.pipes[i].producer_id, "p1") == 0;
    bool touches = strcmp(s.pipes[i].source_node_id, "n00") == 0 ||
                   strcmp(s.pipes[i].target_node_id, "n00") == 0;
    assert_int_equal(contains(loss.pipes, loss.n_pipes, i), p1 || touches);
  }
  /* p2's relay n00w0 -> n00w1 (pipe 5) is removed, n00w1 is on the dead node: no
   * re-plan; pipe 4 (target n00w0) likewise */
  assert_int_equal(loss.n_replans, 0);
  mf_sched_loss_free(&loss);

  /* A node with nothing on it */
  sim_t e;
  sim_init(&e, 2, 1, 1000);
  assert_int_equal(mf_sched_node_lost(V(&e), "n01", &loss, NULL, 0), MF_OK);
  assert_int_equal(loss.n_shards + loss.n_producers + loss.n_pipes + loss.n_replans, 0);
  mf_sched_loss_free(&loss);
  assert_int_equal(mf_sched_node_lost(V(&e), "n09", &loss, msg, sizeof(msg)),
                   MF_ERR_NOT_FOUND);
  assert_int_equal(mf_sched_node_lost(V(&e), NULL, &loss, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sched_node_lost(V(&e), "n01", NULL, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);
  sim_free(&e);
  sim_free(&s);
}

/* Node loss in the big tree: every re-planned target is fed again, the tree stays valid. */
static void test_node_loss_in_relay_tree(void **state) {
  sim_t s;
  sim_init(&s, 20, 4, 320);
  s.view.max_pipes_out_per_worker = 4;
  mf_sched_placement_t d0 = place_commit(&s, "r1", 10);
  add_producer(&s, "p1", "r1", d0.node_index, d0.worker);
  for (int i = 1; i < 2000; i++) {
    mf_sched_placement_t d = place_commit(&s, "r1", 10);
    mf_sched_pipe_decision_t pd = plan_ok(&s, "p1", d.node_index, d.worker);
    if (pd.action == MF_SCHED_PIPE_OPEN) commit_pipe(&s, "p1", d.node_index, d.worker, &pd);
  }
  for (int round = 0; round < 3; round++) {
    /* kill a live node that relays p1 to another node */
    size_t dead = 0;
    for (size_t i = 0; i < s.n_pipes && !dead; i++) {
      size_t src = node_index(&s, s.pipes[i].source_node_id);
      if (src != d0.node_index && strcmp(s.pipes[i].target_node_id, s.ids[src]) != 0)
        dead = src;
    }
    assert_true(dead != 0);
    mf_sched_loss_t loss;
    assert_int_equal(mf_sched_node_lost(V(&s), s.ids[dead], &loss, NULL, 0), MF_OK);
    assert_true(loss.n_replans > 0);
    assert_int_equal(loss.n_unfed, 0);
    assert_int_equal(loss.n_shards, 4);
    /* apply: remove shards and pipes, add re-plans, mark the node dead */
    mf_sched_pipe_t *np = calloc(s.cap, sizeof(*np));
    assert_non_null(np);
    size_t n = 0;
    for (size_t i = 0; i < s.n_pipes; i++)
      if (!contains(loss.pipes, loss.n_pipes, i)) np[n++] = s.pipes[i];
    for (size_t r = 0; r < loss.n_replans; r++) {
      np[n] = s.pipes[loss.replans[r].pipe];
      np[n].source_node_id = loss.replans[r].decision.source_node_id;
      np[n++].source_worker = loss.replans[r].decision.source_worker;
      assert_string_not_equal(loss.replans[r].decision.source_node_id, s.ids[dead]);
    }
    memcpy(s.pipes, np, n * sizeof(*np));
    s.n_pipes = n;
    free(np);
    size_t ns = 0;
    for (size_t i = 0; i < s.n_shards; i++)
      if (!contains(loss.shards, loss.n_shards, i)) s.shards[ns++] = s.shards[i];
    s.n_shards = ns;
    s.nodes[dead].state = MF_SCHED_NODE_DEAD;
    mf_sched_loss_free(&loss);
    check_tree(&s, "p1", d0.node_index, d0.worker, 4, s.n_shards);
  }
  sim_free(&s);
}

/* ---- 7. invalid input ---- */

static void test_invalid_input(void **state) {
  sim_t s;
  sim_init(&s, 2, 2, 1000);
  add_producer(&s, "p1", "r1", 0, 0);
  char msg[256];
  mf_sched_place_request_t req = {"r1", 100, NULL};
  mf_sched_placement_t d;

  assert_int_equal(mf_sched_place_transport(NULL, &req, &d, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sched_place_transport(V(&s), NULL, &d, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sched_place_transport(V(&s), &req, NULL, NULL, 0), MF_ERR_INVALID_ARG);
  expect_place_err(&s, NULL, 100, MF_ERR_INVALID_ARG);
  expect_place_err(&s, "r1", -1, MF_ERR_INVALID_ARG);
  expect_place_err(&s, "r1", NAN, MF_ERR_INVALID_ARG);
  expect_place_err(&s, "r1", INFINITY, MF_ERR_INVALID_ARG);
  expect_place_err(&s, "nope", 100, MF_ERR_NOT_FOUND);

  static const struct {
    double capacity, load, cpu, pending;
  } bad_worker[] = {
      {0, 0, 0, 0}, {-5, 0, 0, 0}, {NAN, 0, 0, 0}, {INFINITY, 0, 0, 0},
      {1000, -1, 0, 0}, {1000, NAN, 0, 0}, {1000, 0, -0.1, 0}, {1000, 0, NAN, 0},
      {1000, 0, 0, -1}, {1000, 0, 0, INFINITY},
  };
  for (size_t i = 0; i < sizeof(bad_worker) / sizeof(bad_worker[0]); i++) {
    mf_sched_worker_t saved = *W(&s, 1, 1);
    *W(&s, 1, 1) = (mf_sched_worker_t){bad_worker[i].capacity, bad_worker[i].load,
                                       bad_worker[i].cpu, bad_worker[i].pending, 0};
    msg[0] = 0;
    assert_int_equal(mf_sched_place_transport(V(&s), &req, &d, msg, sizeof(msg)),
                     MF_ERR_INVALID_ARG);
    assert_non_null(strstr(msg, "n01 worker 1"));
    *W(&s, 1, 1) = saved;
  }
  W(&s, 0, 0)->capacity_pps = 0;
  assert_int_equal(mf_sched_place_transport(V(&s), &req, &d, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);
  assert_non_null(strstr(msg, "capacity"));
  W(&s, 0, 0)->capacity_pps = 1000;

  static const double bad_watermark[] = {-0.1, 1.01, NAN, INFINITY};
  for (size_t i = 0; i < 4; i++) {
    s.view.watermark = bad_watermark[i];
    expect_place_err(&s, "r1", 100, MF_ERR_INVALID_ARG);
  }
  s.view.watermark = 1.0;
  expect_place(&s, "r1", 1000, 0, 0, MF_SCHED_RULE_FILL_SHARD, false);
  expect_place_err(&s, "r1", 1000.5, MF_ERR_LIMIT);
  s.view.watermark = 0;

  /* malformed views */
  mf_sched_view_t v = *V(&s);
  v.shards = NULL;
  assert_int_equal(mf_sched_place_transport(&v, &req, &d, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);
  v = *V(&s);
  v.n_pipes = 3;
  v.pipes = NULL;
  assert_int_equal(mf_sched_place_transport(&v, &req, &d, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);
  s.nodes[1].id = "n00"; /* duplicate id */
  expect_place_err(&s, "r1", 100, MF_ERR_INVALID_ARG);
  s.nodes[1].id = NULL;
  expect_place_err(&s, "r1", 100, MF_ERR_INVALID_ARG);
  s.nodes[1].id = s.ids[1];
  s.nodes[1].state = (mf_sched_node_state_t)7;
  expect_place_err(&s, "r1", 100, MF_ERR_INVALID_ARG);
  s.nodes[1].state = MF_SCHED_NODE_ACTIVE;
  s.shards[0].router_id = NULL;
  expect_place_err(&s, "r1", 100, MF_ERR_INVALID_ARG);
  s.shards[0].router_id = "r1";
  s.producers[0].id = NULL;
  expect_place_err(&s, "r1", 100, MF_ERR_INVALID_ARG);
  s.producers[0].id = "p1";
  s.routers[1] = NULL;
  expect_place_err(&s, "r1", 100, MF_ERR_INVALID_ARG);
  s.routers[1] = "r2";

  /* no nodes at all */
  v = *V(&s);
  v.n_nodes = 0;
  assert_int_equal(mf_sched_place_transport(&v, &req, &d, msg, sizeof(msg)), MF_ERR_STATE);

  /* pipe planning */
  mf_sched_pipe_decision_t pd;
  add_shard(&s, "r1", 1, 0);
  mf_sched_pipe_request_t preq = {"p1", "n01", 0};
  assert_int_equal(mf_sched_plan_pipe(V(&s), &preq, &pd, msg, sizeof(msg)), MF_OK);
  static const struct {
    const char *producer, *node;
    uint32_t worker;
    mf_err_t want;
  } bad_pipe[] = {
      {"nope", "n01", 0, MF_ERR_NOT_FOUND},  /* unknown producer */
      {"p1", "n09", 0, MF_ERR_NOT_FOUND},    /* unknown node */
      {"p1", "n01", 1, MF_ERR_NOT_FOUND},    /* no shard of the router there */
      {"p1", "n01", 7, MF_ERR_NOT_FOUND},    /* no such worker */
      {NULL, "n01", 0, MF_ERR_INVALID_ARG},
      {"p1", NULL, 0, MF_ERR_INVALID_ARG},
  };
  for (size_t i = 0; i < sizeof(bad_pipe) / sizeof(bad_pipe[0]); i++) {
    preq = (mf_sched_pipe_request_t){bad_pipe[i].producer, bad_pipe[i].node,
                                     bad_pipe[i].worker};
    msg[0] = 0;
    assert_int_equal(mf_sched_plan_pipe(V(&s), &preq, &pd, msg, sizeof(msg)),
                     bad_pipe[i].want);
    assert_true(strlen(msg) > 0);
  }
  preq = (mf_sched_pipe_request_t){"p1", "n01", 0};
  assert_int_equal(mf_sched_plan_pipe(V(&s), &preq, NULL, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sched_plan_pipe(V(&s), NULL, &pd, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);
  s.nodes[1].state = MF_SCHED_NODE_DEAD; /* target on a dead node */
  assert_int_equal(mf_sched_plan_pipe(V(&s), &preq, &pd, msg, sizeof(msg)), MF_ERR_STATE);
  s.nodes[1].state = MF_SCHED_NODE_ACTIVE;
  s.nodes[0].state = MF_SCHED_NODE_DEAD; /* origin on a dead node */
  assert_int_equal(mf_sched_plan_pipe(V(&s), &preq, &pd, msg, sizeof(msg)), MF_ERR_STATE);
  s.nodes[0].state = MF_SCHED_NODE_ACTIVE;
  s.pipes[0].source_node_id = NULL;
  s.n_pipes = 1;
  assert_int_equal(mf_sched_plan_pipe(V(&s), &preq, &pd, msg, sizeof(msg)),
                   MF_ERR_INVALID_ARG);
  s.n_pipes = 0;

  /* idle */
  assert_int_equal(mf_sched_idle_pipes(V(&s), 0, NULL, msg, sizeof(msg)), MF_ERR_INVALID_ARG);
  mf_sched_idle_t idle;
  assert_int_equal(mf_sched_idle_pipes(NULL, 0, &idle, msg, sizeof(msg)), MF_ERR_INVALID_ARG);
  mf_sched_idle_free(&idle);
  mf_sched_idle_free(NULL);
  mf_sched_loss_free(NULL);

  /* names */
  assert_string_equal(mf_sched_rule_name(MF_SCHED_RULE_FILL_SHARD), "fill_shard");
  assert_string_equal(mf_sched_rule_name(MF_SCHED_RULE_FREEST_NODE), "freest_node");
  assert_string_equal(mf_sched_rule_name((mf_sched_rule_t)99), "unknown");
  assert_string_equal(mf_sched_pipe_kind_name(MF_SCHED_PIPE_RING), "ring");
  assert_string_equal(mf_sched_pipe_kind_name((mf_sched_pipe_kind_t)99), "unknown");
  sim_free(&s);
}

/* ---- 8. idle pipes and empty shards ---- */

static void test_idle_pipes_and_shards(void **state) {
  sim_t s;
  sim_init(&s, 4, 2, 1000);
  add_producer(&s, "p1", "r1", 0, 0);            /* shard 0: r1@n00w0 */
  s.shards[0].transports = 0;                     /* ... held by its producer */
  add_shard(&s, "r1", 1, 0);                      /* 1 */
  add_shard(&s, "r1", 1, 1);                      /* 2 */
  add_shard(&s, "r1", 2, 0);                      /* 3 */
  add_shard(&s, "r1", 2, 1);                      /* 4 */
  add_shard(&s, "r1", 3, 0);                      /* 5 */
  add_shard(&s, "r1", 3, 1);                      /* 6 */
  add_shard(&s, "r2", 0, 0);                      /* 7: other room, same worker */
  for (size_t i = 1; i < s.n_shards; i++) s.shards[i].transports = 0;
  s.shards[2].transports = 3;
  s.shards[6].empty_since_ms = 9000;
  size_t p0 = add_pipe(&s, "p1", 1, 0, 0, 0); /* relay for p1 (keeps, feeds p1') */
  size_t p1 = add_pipe(&s, "p1", 1, 1, 1, 0); /* 3 consumers */
  size_t p2 = add_pipe(&s, "p1", 2, 0, 0, 0); /* idle since 5000 */
  size_t p3 = add_pipe(&s, "p1", 2, 1, 0, 0); /* idle, relays to p4 which is idle too */
  size_t p4 = add_pipe(&s, "p1", 3, 0, 2, 1);
  for (size_t i = 0; i < s.n_pipes; i++) s.pipes[i].consumers = 0;
  s.pipes[p1].consumers = 3;
  s.pipes[p2].idle_since_ms = 5000;

  mf_sched_idle_t idle;
  char msg[256];
  assert_int_equal(mf_sched_idle_pipes(V(&s), 10000, &idle, msg, sizeof(msg)), MF_OK);
  assert_int_equal(idle.n_pipes, 2);
  assert_int_equal(idle.pipes[0], p3);
  assert_int_equal(idle.pipes[1], p4);
  assert_int_equal(idle.n_shards, 3);
  assert_int_equal(idle.shards[0], 4); /* r1@n02w1 */
  assert_int_equal(idle.shards[1], 5); /* r1@n03w0 */
  assert_int_equal(idle.shards[2], 7); /* r2@n00w0 */
  mf_sched_idle_free(&idle);

  /* one ms earlier nothing has lingered 10 s */
  assert_int_equal(mf_sched_idle_pipes(V(&s), 9999, &idle, NULL, 0), MF_OK);
  assert_int_equal(idle.n_pipes + idle.n_shards, 0);
  mf_sched_idle_free(&idle);

  /* 15 s: p2 goes and with it its shard; n03w1 (empty since 9 s) stays */
  assert_int_equal(mf_sched_idle_pipes(V(&s), 15000, &idle, NULL, 0), MF_OK);
  assert_int_equal(idle.n_pipes, 3);
  assert_true(contains(idle.pipes, idle.n_pipes, p2));
  assert_int_equal(idle.n_shards, 4);
  assert_true(contains(idle.shards, idle.n_shards, 3));
  assert_false(contains(idle.shards, idle.n_shards, 6));
  mf_sched_idle_free(&idle);

  /* the relay's last consumer downstream leaves: the whole branch closes */
  s.pipes[p1].consumers = 0;
  s.shards[2].transports = 0;
  assert_int_equal(mf_sched_idle_pipes(V(&s), 20000, &idle, NULL, 0), MF_OK);
  assert_int_equal(idle.n_pipes, 5);
  assert_int_equal(idle.n_shards, 7); /* all but the origin shard */
  assert_false(contains(idle.shards, idle.n_shards, 0));
  mf_sched_idle_free(&idle);

  /* linger knob; a clock behind idle_since never closes */
  s.view.pipe_linger_ms = 1000;
  s.pipes[p1].consumers = 3;
  s.shards[2].transports = 3;
  assert_int_equal(mf_sched_idle_pipes(V(&s), 6000, &idle, NULL, 0), MF_OK);
  assert_true(contains(idle.pipes, idle.n_pipes, p2));
  assert_false(contains(idle.pipes, idle.n_pipes, p0));
  mf_sched_idle_free(&idle);
  assert_int_equal(mf_sched_idle_pipes(V(&s), 4999, &idle, NULL, 0), MF_OK);
  assert_false(contains(idle.pipes, idle.n_pipes, p2));
  mf_sched_idle_free(&idle);
  /* a pipe of a producer the view does not know holds whatever shard is at its ends */
  s.view.pipe_linger_ms = 0;
  size_t px = add_pipe(&s, "ghost", 3, 0, 2, 1);
  assert_int_equal(mf_sched_idle_pipes(V(&s), 15000, &idle, NULL, 0), MF_OK);
  assert_false(contains(idle.pipes, idle.n_pipes, px));
  assert_false(contains(idle.shards, idle.n_shards, 4)); /* r1@n02w1: source end */
  assert_false(contains(idle.shards, idle.n_shards, 5)); /* r1@n03w0: target end */
  assert_true(contains(idle.shards, idle.n_shards, 7));
  mf_sched_idle_free(&idle);
  sim_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_packing_fills_one_worker_first),
      cmocka_unit_test(test_new_shard_prefers_client_node),
      cmocka_unit_test(test_placement_rules),
      cmocka_unit_test(test_only_active_nodes_get_placements),
      cmocka_unit_test(test_rooms_share_a_worker),
      cmocka_unit_test(test_burst_spread_by_pending),
      cmocka_unit_test(test_pipe_reuse),
      cmocka_unit_test(test_pipe_relay_choice),
      cmocka_unit_test(test_pipe_garbage),
      cmocka_unit_test(test_relay_tree_1_to_2000),
      cmocka_unit_test(test_relay_tree_2000_shards),
      cmocka_unit_test(test_node_loss),
      cmocka_unit_test(test_node_loss_in_relay_tree),
      cmocka_unit_test(test_invalid_input),
      cmocka_unit_test(test_idle_pipes_and_shards),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
