/* Scheduler input checks beyond test_scheduler.c: every way a view can be malformed (a
 * count without its array, a watermark outside (0, 1], a node without id / workers / valid
 * state, an active worker with a non-positive capacity or a negative / non-finite load,
 * rows without their ids) refused by each entry point with a message naming the problem;
 * and the pending account's argument checks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "controller/scheduler.h"

typedef struct {
  mf_sched_worker_t workers[1];
  mf_sched_node_t nodes[1];
  const char *routers[1];
  mf_sched_shard_t shards[1];
  mf_sched_producer_t producers[1];
  mf_sched_pipe_t pipes[1];
  mf_sched_view_t v;
} view_t;

/* One active node n1 (one worker), router r1 with a shard there, producer p1 on it and a
 * pipe of p1 (n1:0 -> n1:0 is nonsense, but the checks under test do not look that far). */
static void view_init(view_t *x) {
  memset(x, 0, sizeof *x);
  x->workers[0] = (mf_sched_worker_t){.capacity_pps = 1000};
  x->nodes[0] = (mf_sched_node_t){.id = "n1", .state = MF_SCHED_NODE_ACTIVE, .workers = x->workers,
                                  .n_workers = 1};
  x->routers[0] = "r1";
  x->shards[0] = (mf_sched_shard_t){.router_id = "r1", .node_id = "n1"};
  x->producers[0] = (mf_sched_producer_t){.id = "p1", .router_id = "r1", .node_id = "n1"};
  x->pipes[0] = (mf_sched_pipe_t){.producer_id = "p1", .target_node_id = "n1", .source_node_id = "n1"};
  x->v = (mf_sched_view_t){.nodes = x->nodes, .n_nodes = 1, .routers = x->routers, .n_routers = 1,
                           .shards = x->shards, .n_shards = 1, .producers = x->producers,
                           .n_producers = 1, .pipes = x->pipes, .n_pipes = 1};
}

typedef void (*breaker_t)(view_t *x);

static void no_nodes(view_t *x) { x->v.nodes = NULL; }
static void no_routers(view_t *x) { x->v.routers = NULL; }
static void no_shards(view_t *x) { x->v.shards = NULL; }
static void no_producers(view_t *x) { x->v.producers = NULL; }
static void no_pipes(view_t *x) { x->v.pipes = NULL; }
static void wm_nan(view_t *x) { x->v.watermark = NAN; }
static void wm_neg(view_t *x) { x->v.watermark = -0.5; }
static void wm_big(view_t *x) { x->v.watermark = 1.01; }
static void node_no_id(view_t *x) { x->nodes[0].id = NULL; }
static void node_empty_id(view_t *x) { x->nodes[0].id = ""; }
static void node_no_workers(view_t *x) { x->nodes[0].workers = NULL; }
static void node_bad_state(view_t *x) { x->nodes[0].state = (mf_sched_node_state_t)9; }
static void cap_zero(view_t *x) { x->workers[0].capacity_pps = 0; }
static void cap_inf(view_t *x) { x->workers[0].capacity_pps = INFINITY; }
static void load_neg(view_t *x) { x->workers[0].load_pps = -1; }
static void cpu_nan(view_t *x) { x->workers[0].cpu = NAN; }
static void pending_inf(view_t *x) { x->workers[0].pending_pps = INFINITY; }
static void router_null(view_t *x) { x->routers[0] = NULL; }
static void shard_no_router(view_t *x) { x->shards[0].router_id = NULL; }
static void shard_no_node(view_t *x) { x->shards[0].node_id = NULL; }
static void prod_no_id(view_t *x) { x->producers[0].id = NULL; }
static void prod_no_router(view_t *x) { x->producers[0].router_id = NULL; }
static void prod_no_node(view_t *x) { x->producers[0].node_id = NULL; }
static void pipe_no_producer(view_t *x) { x->pipes[0].producer_id = NULL; }
static void pipe_no_target(view_t *x) { x->pipes[0].target_node_id = NULL; }
static void pipe_no_source(view_t *x) { x->pipes[0].source_node_id = NULL; }

static void test_malformed_views(void **state) {
  (void)state;
  static const struct {
    breaker_t brk;
    const char *msg;
  } cases[] = {
      {no_nodes, "count without its array"},    {no_routers, "count without its array"},
      {no_shards, "count without its array"},   {no_producers, "count without its array"},
      {no_pipes, "count without its array"},    {wm_nan, "watermark"},
      {wm_neg, "watermark"},                    {wm_big, "watermark"},
      {node_no_id, "node #0"},                  {node_empty_id, "node #0"},
      {node_no_workers, "node #0"},             {node_bad_state, "bad state"},
      {cap_zero, "capacity_pps"},               {cap_inf, "capacity_pps"},
      {load_neg, "finite and >= 0"},            {cpu_nan, "finite and >= 0"},
      {pending_inf, "finite and >= 0"},         {router_null, "router #0 has no id"},
      {shard_no_router, "shard #0"},            {shard_no_node, "shard #0"},
      {prod_no_id, "producer #0"},              {prod_no_router, "producer #0"},
      {prod_no_node, "producer #0"},            {pipe_no_producer, "pipe #0"},
      {pipe_no_target, "pipe #0"},              {pipe_no_source, "pipe #0"},
  };
  view_t x;
  view_init(&x);
  /* the unbroken view places */
  mf_sched_place_request_t req = {.router_id = "r1", .expected_pps = 10};
  mf_sched_placement_t out;
  char msg[200];
  assert_int_equal(mf_sched_place_transport(&x.v, &req, &out, msg, sizeof msg), MF_OK);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    view_init(&x);
    cases[i].brk(&x);
    msg[0] = '\0';
    mf_err_t e = mf_sched_place_transport(&x.v, &req, &out, msg, sizeof msg);
    if (e != MF_ERR_INVALID_ARG || !strstr(msg, cases[i].msg)) print_error("case %zu: %d %s\n", i, e, msg);
    assert_int_equal(e, MF_ERR_INVALID_ARG);
    assert_non_null(strstr(msg, cases[i].msg));
    /* the other entry points check the same way */
    mf_sched_pipe_request_t preq = {.producer_id = "p1", .target_node_id = "n1"};
    mf_sched_pipe_decision_t d;
    assert_int_equal(mf_sched_plan_pipe(&x.v, &preq, &d, NULL, 0), MF_ERR_INVALID_ARG);
    mf_sched_loss_t loss;
    memset(&loss, 0, sizeof loss);
    assert_int_equal(mf_sched_node_lost(&x.v, "n1", &loss, NULL, 0), MF_ERR_INVALID_ARG);
    mf_sched_loss_free(&loss);
    mf_sched_idle_t idle;
    memset(&idle, 0, sizeof idle);
    assert_int_equal(mf_sched_idle_pipes(&x.v, 0, &idle, NULL, 0), MF_ERR_INVALID_ARG);
    mf_sched_idle_free(&idle);
  }
  assert_int_equal(mf_sched_place_transport(NULL, &req, &out, msg, sizeof msg), MF_ERR_INVALID_ARG);
  assert_string_equal(msg, "no view");
  /* an inactive node's workers are not checked: it takes no placements anyway */
  view_init(&x);
  x.nodes[0].state = MF_SCHED_NODE_DRAINING;
  x.workers[0].capacity_pps = 0;
  assert_int_not_equal(mf_sched_place_transport(&x.v, &req, &out, msg, sizeof msg), MF_ERR_INVALID_ARG);
}

static void test_pending_account_arguments(void **state) {
  (void)state;
  mf_sched_pending_t p;
  mf_sched_pending_init(&p);
  char long_id[MF_SCHED_ID_MAX + 2];
  memset(long_id, 'n', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  assert_int_equal(mf_sched_pending_add(NULL, "n1", 0, 1, 10), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sched_pending_add(&p, NULL, 0, 1, 10), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sched_pending_add(&p, "", 0, 1, 10), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sched_pending_add(&p, long_id, 0, 1, 10), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sched_pending_add(&p, "n1", 0, -1, 10), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sched_pending_add(&p, "n1", 0, NAN, 10), MF_ERR_INVALID_ARG);
  assert_int_equal(p.count, 0);
  /* 20 entries: the array grows past its first 16 */
  for (uint32_t i = 0; i < 20; i++)
    assert_int_equal(mf_sched_pending_add(&p, i % 2 ? "n2" : "n1", i % 3, 5, 100 + i), MF_OK);
  assert_int_equal(p.count, 20);

  /* applied to a view: per worker sums; entries for unknown nodes or workers ignored */
  mf_sched_worker_t w1[3] = {{.pending_pps = 99}}, w2[1];
  memset(w2, 0, sizeof w2);
  mf_sched_node_t nodes[3] = {{.id = "n1", .workers = w1, .n_workers = 3},
                              {.id = "n2", .workers = w2, .n_workers = 1},
                              {.id = NULL}};
  mf_sched_view_t v = {.nodes = nodes, .n_nodes = 3};
  mf_sched_pending_apply(&p, &v);
  /* n1 gets i = 0, 2, ..., 18: workers i % 3 */
  assert_true(w1[0].pending_pps == 20 && w1[1].pending_pps == 15 && w1[2].pending_pps == 15);
  assert_true(w2[0].pending_pps == 15); /* odd i with i % 3 == 0: 3, 9, 15 (n2 has one worker) */
  mf_sched_pending_apply(NULL, &v);
  mf_sched_pending_apply(&p, NULL);
  mf_sched_view_t broken = {.nodes = NULL, .n_nodes = 2};
  mf_sched_pending_apply(&p, &broken);

  assert_int_equal(mf_sched_pending_forget_node(&p, NULL), 0);
  assert_int_equal(mf_sched_pending_forget_node(&p, "n2"), 10);
  assert_int_equal(mf_sched_pending_expire(NULL, 0), 0);
  assert_int_equal(mf_sched_pending_expire(&p, 110), 6); /* n1 entries with 100 + i <= 110 */
  assert_int_equal(p.count, 4);
  mf_sched_pending_free(&p);
  assert_int_equal(p.count, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_malformed_views),
      cmocka_unit_test(test_pending_account_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
