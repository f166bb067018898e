/* Our commands replicated by libraft's in-memory fixture (deterministic time and network):
 * replication to every replica, the submitter sees the FSM verdict, a leader change,
 * snapshot install on a lagging replica, and peer-list parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "controller/raft_node.h"

#define N 3

typedef struct {
  struct raft_fixture f;
  struct raft_fsm rfsm[N];
  mf_raft_fsm_t ctx[N];
  mf_raft_fsm_t extra_ctx; /* a server grown by a test (closed after the fixture) */
  struct raft_fsm extra_fsm;
  bool has_extra;
} cluster_t;

typedef struct {
  int calls;
  mf_err_t status, code;
  uint64_t index;
  char message[MF_FSM_MESSAGE_MAX];
} outcome_t;

static void on_done(void *ud, mf_err_t status, mf_err_t code, const char *message,
                    uint64_t index) {
  outcome_t *o = ud;
  o->calls++;
  o->status = status;
  o->code = code;
  o->index = index;
  snprintf(o->message, sizeof(o->message), "%s", message ? message : "");
}

static int setup(void **state) {
  cluster_t *c = calloc(1, sizeof(*c));
  assert_int_equal(raft_fixture_initialize(&c->f), 0);
  for (int i = 0; i < N; i++) {
    assert_int_equal(mf_raft_fsm_init(&c->ctx[i], &c->rfsm[i]), MF_OK);
    assert_int_equal(raft_fixture_grow(&c->f, &c->rfsm[i]), 0);
    raft_set_snapshot_threshold(raft_fixture_get(&c->f, (unsigned)i), 8);
    raft_set_snapshot_trailing(raft_fixture_get(&c->f, (unsigned)i), 2);
  }
  struct raft_configuration conf;
  assert_int_equal(raft_fixture_configuration(&c->f, N, &conf), 0);
  assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
  raft_configuration_close(&conf);
  assert_int_equal(raft_fixture_start(&c->f), 0);
  *state = c;
  return 0;
}

static int teardown(void **state) {
  cluster_t *c = *state;
  raft_fixture_close(&c->f);
  for (int i = 0; i < N; i++) mf_raft_fsm_close(&c->ctx[i]);
  if (c->has_extra) mf_raft_fsm_close(&c->extra_ctx);
  free(c);
  return 0;
}

static Mafalda__Controller__Command router_cmd(Mafalda__Controller__CreateRouter *cr,
                                               Mafalda__Controller__Router *r, const char *id) {
  Mafalda__Controller__Router ri = MAFALDA__CONTROLLER__ROUTER__INIT;
  *r = ri;
  r->id = (char *)id;
  r->name = (char *)id;
  Mafalda__Controller__CreateRouter ci = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
  *cr = ci;
  cr->router = r;
  Mafalda__Controller__Command c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER;
  c.create_router = cr;
  return c;
}

/* Submits on the current leader and steps until every live replica applied it. */
static void submit_router(cluster_t *c, const char *id, outcome_t *o) {
  unsigned leader = raft_fixture_leader_index(&c->f);
  assert_true(leader < N);
  Mafalda__Controller__CreateRouter cr;
  Mafalda__Controller__Router r;
  Mafalda__Controller__Command cmd = router_cmd(&cr, &r, id);
  memset(o, 0, sizeof(*o));
  assert_int_equal(mf_raft_submit(raft_fixture_get(&c->f, leader), &cmd, on_done, o), MF_OK);
  struct raft *lr = raft_fixture_get(&c->f, leader);
  raft_index idx = raft_last_index(lr);
  assert_true(raft_fixture_step_until_applied(&c->f, leader, idx, 5000));
  assert_int_equal(o->calls, 1);
  assert_int_equal(o->status, MF_OK);
  assert_int_equal(o->index, idx);
}

static void assert_all_equal(cluster_t *c) {
  for (int i = 1; i < N; i++) assert_true(mf_fsm_equal(c->ctx[0].fsm, c->ctx[i].fsm));
}

static void test_replicate_and_leader_change(void **state) {
  cluster_t *c = *state;
  raft_fixture_elect(&c->f, 0);
  assert_int_equal(raft_fixture_leader_index(&c->f), 0);

  outcome_t o;
  submit_router(c, "r1", &o);
  assert_int_equal(o.code, MF_OK);
  /* A rejected command is committed too, and the verdict reaches the submitter. */
  submit_router(c, "r1", &o);
  assert_int_equal(o.code, MF_ERR_EXISTS);
  assert_non_null(strstr(o.message, "exists"));

  /* A follower refuses to propose. */
  Mafalda__Controller__CreateRouter cr;
  Mafalda__Controller__Router r;
  Mafalda__Controller__Command cmd = router_cmd(&cr, &r, "rx");
  outcome_t unused = {0};
  assert_int_equal(mf_raft_submit(raft_fixture_get(&c->f, 1), &cmd, on_done, &unused),
                   MF_ERR_STATE);
  assert_int_equal(unused.calls, 0);

  assert_true(raft_fixture_step_until_applied(&c->f, N, raft_last_index(raft_fixture_get(&c->f, 0)), 5000));
  assert_all_equal(c);
  assert_non_null(mf_fsm_find_router(c->ctx[2].fsm, "r1"));

  /* Leader change: depose 0, elect 1, writes continue and reach everyone. */
  raft_fixture_depose(&c->f);
  raft_fixture_elect(&c->f, 1);
  assert_int_equal(raft_fixture_leader_index(&c->f), 1);
  submit_router(c, "r2", &o);
  assert_int_equal(o.code, MF_OK);
  assert_true(raft_fixture_step_until_applied(&c->f, N, raft_last_index(raft_fixture_get(&c->f, 1)), 5000));
  assert_all_equal(c);
  mf_fsm_counts_t counts;
  mf_fsm_counts(c->ctx[0].fsm, &counts);
  assert_int_equal(counts.routers, 2);
}

static void test_snapshot_catch_up(void **state) {
  cluster_t *c = *state;
  raft_fixture_elect(&c->f, 0);
  /* Replica 2 is cut off while the others commit enough entries to take snapshots and
   * compact their logs; when it comes back it must install a snapshot (restore). */
  raft_fixture_kill(&c->f, 2);
  char id[16];
  outcome_t o;
  for (int i = 0; i < 40; i++) {
    snprintf(id, sizeof(id), "r%02d", i);
    submit_router(c, id, &o);
    assert_int_equal(o.code, MF_OK);
  }
  assert_false(mf_fsm_equal(c->ctx[0].fsm, c->ctx[2].fsm));
  raft_fixture_revive(&c->f, 2);
  raft_index last = raft_last_index(raft_fixture_get(&c->f, 0));
  assert_true(raft_fixture_step_until_applied(&c->f, 2, last, 20000));
  assert_all_equal(c);
  mf_fsm_counts_t counts;
  mf_fsm_counts(c->ctx[2].fsm, &counts);
  assert_int_equal(counts.routers, 40);
  /* The lagging replica did not replay all 40 commands: it restored a snapshot. */
  assert_true(c->ctx[2].applied < 40);
}

static void test_kill_leader(void **state) {
  cluster_t *c = *state;
  raft_fixture_elect(&c->f, 0);
  outcome_t o;
  submit_router(c, "before", &o);
  assert_true(raft_fixture_step_until_applied(&c->f, N, raft_last_index(raft_fixture_get(&c->f, 0)), 5000));
  raft_fixture_kill(&c->f, 0);
  assert_true(raft_fixture_step_until_has_no_leader(&c->f, 10000));
  assert_true(raft_fixture_step_until_has_leader(&c->f, 10000));
  unsigned leader = raft_fixture_leader_index(&c->f);
  assert_true(leader == 1 || leader == 2);
  submit_router(c, "after", &o);
  assert_int_equal(o.code, MF_OK);
  unsigned other = leader == 1 ? 2 : 1;
  assert_true(raft_fixture_step_until_applied(&c->f, other, o.index, 5000));
  assert_true(mf_fsm_equal(c->ctx[1].fsm, c->ctx[2].fsm));
  assert_non_null(mf_fsm_find_router(c->ctx[other].fsm, "before"));
  assert_non_null(mf_fsm_find_router(c->ctx[other].fsm, "after"));
}

typedef struct {
  int calls;
  mf_err_t status;
} change_outcome_t;

static void on_change(void *ud, mf_err_t status, const char *message) {
  change_outcome_t *o = ud;
  o->calls++;
  o->status = status;
}

static bool change_finished(struct raft_fixture *f, void *arg) {
  return ((change_outcome_t *)arg)->calls > 0;
}

/* A fourth, empty server joins (added as spare, promoted to voter), catches up, and can be
 * removed again. */
static void test_join_and_remove(void **state) {
  cluster_t *c = *state;
  raft_fixture_elect(&c->f, 0);
  outcome_t o;
  for (int i = 0; i < 20; i++) { /* past a snapshot: the newcomer needs one */
    char id[16];
    snprintf(id, sizeof(id), "j%02d", i);
    submit_router(c, id, &o);
  }
  assert_int_equal(mf_raft_fsm_init(&c->extra_ctx, &c->extra_fsm), MF_OK);
  c->has_extra = true;
  const mf_raft_fsm_t *ctx4 = &c->extra_ctx;
  assert_int_equal(raft_fixture_grow(&c->f, &c->extra_fsm), 0);
  struct raft *r4 = raft_fixture_get(&c->f, 3);
  assert_int_equal(raft_start(r4), 0);

  change_outcome_t ch = {0};
  struct raft *leader = raft_fixture_get(&c->f, 0);
  assert_int_equal(mf_raft_add_voter(leader, 0, "x", on_change, &ch), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_raft_add_voter(leader, 4, r4->address, on_change, &ch), MF_OK);
  assert_int_equal(mf_raft_add_voter(leader, 5, "5", on_change, &ch), MF_ERR_FULL); /* busy */
  assert_true(raft_fixture_step_until(&c->f, change_finished, &ch, 20000));
  assert_int_equal(ch.status, MF_OK);
  assert_int_equal(mf_raft_add_voter(leader, 4, r4->address, on_change, &ch),
                   MF_ERR_INVALID_ARG); /* already a member */

  submit_router(c, "after-join", &o);
  assert_true(raft_fixture_step_until_applied(&c->f, 3, o.index, 10000));
  assert_true(mf_fsm_equal(c->ctx[0].fsm, ctx4->fsm));
  assert_non_null(mf_fsm_find_router(ctx4->fsm, "j00"));

  change_outcome_t rm = {0};
  assert_int_equal(mf_raft_remove_server(leader, 4, on_change, &rm), MF_OK);
  assert_true(raft_fixture_step_until(&c->f, change_finished, &rm, 20000));
  assert_int_equal(rm.status, MF_OK);
  submit_router(c, "after-remove", &o);
  assert_null(mf_fsm_find_router(ctx4->fsm, "after-remove"));
}

static int raw_status = -1;
static mf_err_t raw_code;
static void raw_done(struct raft_apply *req, int status, void *result) {
  raw_status = status;
  raw_code = result ? ((const mf_raft_fsm_t *)result)->last_code : MF_ERR_INTERNAL;
}

/* Log entries that are not our frame (or a frame around garbage) are rejected by every
 * replica alike, and replication goes on. */
static void test_malformed_entries(void **state) {
  cluster_t *c = *state;
  raft_fixture_elect(&c->f, 0);
  static const uint8_t entries[][16] = {
      {1, 2, 3, 4, 5, 6, 7, 8},                      /* format 0x08070605 */
      {200, 0, 0, 0, 1, 0, 0, 0},                    /* length past the end */
      {8, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* junk */
  };
  static const size_t lens[] = {8, 8, 16};
  for (size_t i = 0; i < 3; i++) {
    struct raft_apply req;
    struct raft_buffer buf = {raft_malloc(lens[i]), lens[i]};
    memcpy(buf.base, entries[i], lens[i]);
    raw_status = -1;
    assert_int_equal(raft_apply(raft_fixture_get(&c->f, 0), &req, &buf, 1, raw_done), 0);
    assert_true(raft_fixture_step_until_applied(&c->f, N, req.index, 5000));
    assert_int_equal(raw_status, 0);
    assert_true(raw_code == MF_ERR_PARSE);
  }
  outcome_t o;
  submit_router(c, "ok", &o);
  assert_int_equal(o.code, MF_OK);
  assert_true(raft_fixture_step_until_applied(&c->f, N, o.index, 5000));
  assert_all_equal(c);
}

static void test_parse_peers(void **state) {
  mf_raft_node_config_t cfg;
  memset(&cfg, 0, sizeof(cfg));
  assert_int_equal(mf_raft_node_parse_peers("1@127.0.0.1:9001,2@127.0.0.1:9002/127.0.0.1:9102",
                                            &cfg),
                   MF_OK);
  assert_int_equal(cfg.n_peers, 2);
  assert_int_equal(cfg.peers[0].id, 1);
  assert_string_equal(cfg.peers[0].raft_address, "127.0.0.1:9001");
  assert_string_equal(cfg.peers[0].rpc_address, "");
  assert_string_equal(cfg.peers[1].rpc_address, "127.0.0.1:9102");
  const char *bad[] = {"", "1", "@h:1", "0@h:1", "x@h:1", "1@", "1@host", "1@h:1,1@h:2",
                       "1@h:1,", "1@h:1,,2@h:2", "1x@h:1"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (mf_raft_node_parse_peers(bad[i], &cfg) == MF_OK) fail_msg("accepted '%s'", bad[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_replicate_and_leader_change, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_catch_up, setup, teardown),
      cmocka_unit_test_setup_teardown(test_kill_leader, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed_entries, setup, teardown),
      cmocka_unit_test_setup_teardown(test_join_and_remove, setup, teardown),
      cmocka_unit_test(test_parse_peers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
