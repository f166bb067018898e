/* Controller FSM inputs test_controller_fsm.c leaves out: a command whose case is set but
 * whose body is missing (each of the twelve), no FSM / no command / no message buffer,
 * oversized and malformed bytes, a NULL worker row, oversized blobs, and snapshots that a
 * replay must refuse (a node listed twice, a pipe nothing feeds, a node without a state, an
 * unknown version) while leaving the target FSM untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller/fsm.h"

typedef Mafalda__Controller__Command cmd_t;
typedef Mafalda__Controller__NodeState state_t;

#define ACTIVE MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE

static void test_empty_commands_are_refused(void **state) {
  (void)state;
  mf_fsm_t *f;
  assert_int_equal(mf_fsm_create(&f), MF_OK);
  static const struct {
    Mafalda__Controller__Command__CmdCase cmd;
    const char *name;
  } cases[] = {
      {MAFALDA__CONTROLLER__COMMAND__CMD_REGISTER_NODE, "register_node"},
      {MAFALDA__CONTROLLER__COMMAND__CMD_SET_NODE_STATE, "set_node_state"},
      {MAFALDA__CONTROLLER__COMMAND__CMD_FORGET_NODE, "forget_node"},
      {MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER, "create_router"},
      {MAFALDA__CONTROLLER__COMMAND__CMD_CLOSE_ROUTER, "close_router"},
      {MAFALDA__CONTROLLER__COMMAND__CMD_ADD_SHARD, "add_shard"},
      {MAFALDA__CONTROLLER__COMMAND__CMD_REMOVE_SHARD, "remove_shard"},
      {MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PRODUCER, "add_producer"},
      {MAFALDA__CONTROLLER__COMMAND__CMD_REMOVE_PRODUCER, "remove_producer"},
      {MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PIPE, "add_pipe"},
      {MAFALDA__CONTROLLER__COMMAND__CMD_REMOVE_PIPE, "remove_pipe"},
      {MAFALDA__CONTROLLER__COMMAND__CMD_SET_CONTROLLER_ADDRESS, "set_controller_address"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
    c.cmd_case = cases[i].cmd; /* the union member stays NULL */
    char msg[MF_FSM_MESSAGE_MAX] = "x";
    assert_int_equal(mf_fsm_apply_command(f, &c, msg, sizeof msg), MF_ERR_INVALID_ARG);
    char want[80];
    snprintf(want, sizeof want, "empty %s command", cases[i].name);
    assert_string_equal(msg, want);
  }
  cmd_t none = MAFALDA__CONTROLLER__COMMAND__INIT;
  char msg[MF_FSM_MESSAGE_MAX];
  assert_int_equal(mf_fsm_apply_command(f, &none, msg, sizeof msg), MF_ERR_INVALID_ARG);
  assert_non_null(strstr(msg, "unknown or empty"));
  assert_int_equal(mf_fsm_apply_command(NULL, &none, msg, sizeof msg), MF_ERR_INVALID_ARG);
  assert_string_equal(msg, "no command");
  assert_int_equal(mf_fsm_apply_command(f, NULL, msg, sizeof msg), MF_ERR_INVALID_ARG);
  /* no message buffer: the same answer, nothing written */
  assert_int_equal(mf_fsm_apply_command(f, NULL, NULL, 0), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_fsm_apply_command(f, &none, NULL, 0), MF_ERR_INVALID_ARG);

  /* bytes: too large to be a command, then not a command */
  static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  assert_int_equal(mf_fsm_apply(f, junk, MF_FSM_COMMAND_MAX + 1, msg, sizeof msg), MF_ERR_LIMIT);
  assert_string_equal(msg, "command too large");
  assert_int_equal(mf_fsm_apply(f, junk, sizeof junk, msg, sizeof msg), MF_ERR_PARSE);
  assert_int_equal(mf_fsm_apply(f, junk, sizeof junk, NULL, 0), MF_ERR_PARSE);
  mf_fsm_counts_t n;
  mf_fsm_counts(f, &n);
  assert_int_equal(n.nodes, 0);
  mf_fsm_destroy(f);
}

static mf_err_t add_node(mf_fsm_t *f, Mafalda__Controller__Node *n, char *msg) {
  Mafalda__Controller__RegisterNode r = MAFALDA__CONTROLLER__REGISTER_NODE__INIT;
  r.node = n;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_REGISTER_NODE;
  c.register_node = &r;
  return mf_fsm_apply_command(f, &c, msg, MF_FSM_MESSAGE_MAX);
}

static mf_err_t add_router(mf_fsm_t *f, Mafalda__Controller__Router *ro, char *msg) {
  Mafalda__Controller__CreateRouter r = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
  r.router = ro;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER;
  c.create_router = &r;
  return mf_fsm_apply_command(f, &c, msg, MF_FSM_MESSAGE_MAX);
}

static mf_err_t add_shard(mf_fsm_t *f, Mafalda__Controller__Shard *s, char *msg) {
  Mafalda__Controller__AddShard a = MAFALDA__CONTROLLER__ADD_SHARD__INIT;
  a.shard = s;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_SHARD;
  c.add_shard = &a;
  return mf_fsm_apply_command(f, &c, msg, MF_FSM_MESSAGE_MAX);
}

static mf_err_t add_producer(mf_fsm_t *f, Mafalda__Controller__Producer *p, char *msg) {
  Mafalda__Controller__AddProducer a = MAFALDA__CONTROLLER__ADD_PRODUCER__INIT;
  a.producer = p;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PRODUCER;
  c.add_producer = &a;
  return mf_fsm_apply_command(f, &c, msg, MF_FSM_MESSAGE_MAX);
}

/* Rows that no encoder would produce but a direct caller could, and oversized blobs. */
static void test_malformed_rows(void **state) {
  (void)state;
  mf_fsm_t *f;
  assert_int_equal(mf_fsm_create(&f), MF_OK);
  char msg[MF_FSM_MESSAGE_MAX];
  Mafalda__Controller__Worker w0 = MAFALDA__CONTROLLER__WORKER__INIT;
  Mafalda__Controller__Worker *rows[2] = {&w0, NULL};
  Mafalda__Controller__Node n = MAFALDA__CONTROLLER__NODE__INIT;
  n.id = (char *)"n1";
  n.state = ACTIVE;
  n.n_workers = 2;
  n.workers = rows;
  assert_int_equal(add_node(f, &n, msg), MF_ERR_INVALID_ARG);
  assert_non_null(strstr(msg, "0..n-1"));
  n.n_workers = 1;
  assert_int_equal(add_node(f, &n, msg), MF_OK);

  size_t big = MF_FSM_BLOB_MAX + 1;
  char *blob = malloc(big + 1);
  assert_non_null(blob);
  memset(blob, 'a', big);
  blob[big] = '\0';
  Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
  r.id = (char *)"r1";
  r.codecs_json = blob;
  assert_int_equal(add_router(f, &r, msg), MF_ERR_LIMIT);
  assert_string_equal(msg, "codecs too large");
  r.codecs_json = (char *)"[]";
  r.app_data_json = blob;
  assert_int_equal(add_router(f, &r, msg), MF_ERR_LIMIT);
  assert_string_equal(msg, "appData too large");
  r.app_data_json = NULL;
  assert_int_equal(add_router(f, &r, msg), MF_OK);

  Mafalda__Controller__Shard s = MAFALDA__CONTROLLER__SHARD__INIT;
  s.router_id = (char *)"r1";
  s.node_id = (char *)"n1";
  assert_int_equal(add_shard(f, &s, msg), MF_OK);
  Mafalda__Controller__Producer p = MAFALDA__CONTROLLER__PRODUCER__INIT;
  p.id = (char *)"p1";
  p.router_id = (char *)"r1";
  p.node_id = (char *)"n1";
  p.kind = (char *)"video";
  p.rtp_parameters.len = big;
  p.rtp_parameters.data = (uint8_t *)blob;
  assert_int_equal(add_producer(f, &p, msg), MF_ERR_LIMIT);
  assert_string_equal(msg, "rtpParameters too large");
  p.rtp_parameters.len = 0;
  p.rtp_parameters.data = NULL;
  assert_int_equal(add_producer(f, &p, msg), MF_OK);
  free(blob);

  mf_fsm_counts_t c;
  mf_fsm_counts(f, &c);
  assert_int_equal(c.nodes, 1);
  assert_int_equal(c.routers, 1);
  assert_int_equal(c.producers, 1);
  mf_fsm_destroy(f);
}

/* ------------------------------------------------------------ snapshots */

typedef struct {
  Mafalda__Controller__Worker w[2], *wp[2];
  Mafalda__Controller__Node n[3], *np[3];
  Mafalda__Controller__Router r, *rp[1];
  Mafalda__Controller__Shard s[3], *sp[3];
  Mafalda__Controller__Producer p, *pp[1];
  Mafalda__Controller__Pipe pipe[2], *pipep[2];
  Mafalda__Controller__Snapshot snap;
} snap_t;

/* Two nodes (one worker each), router r1 on both, producer p1 on n1, a pipe p1 -> n2. */
static void snap_init(snap_t *x) {
  memset(x, 0, sizeof *x);
  for (int i = 0; i < 2; i++) {
    Mafalda__Controller__Worker w = MAFALDA__CONTROLLER__WORKER__INIT;
    x->w[i] = w;
    x->wp[i] = &x->w[i];
  }
  static const char *const ids[] = {"n1", "n2", "n3"};
  for (int i = 0; i < 3; i++) {
    Mafalda__Controller__Node n = MAFALDA__CONTROLLER__NODE__INIT;
    x->n[i] = n;
    x->n[i].id = (char *)ids[i];
    x->n[i].state = ACTIVE;
    x->n[i].n_workers = 1;
    x->n[i].workers = &x->wp[i < 2 ? i : 1];
    x->np[i] = &x->n[i];
  }
  Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
  x->r = r;
  x->r.id = (char *)"r1";
  x->rp[0] = &x->r;
  for (int i = 0; i < 3; i++) {
    Mafalda__Controller__Shard s = MAFALDA__CONTROLLER__SHARD__INIT;
    x->s[i] = s;
    x->s[i].router_id = (char *)"r1";
    x->s[i].node_id = (char *)ids[i];
    x->sp[i] = &x->s[i];
  }
  Mafalda__Controller__Producer p = MAFALDA__CONTROLLER__PRODUCER__INIT;
  x->p = p;
  x->p.id = (char *)"p1";
  x->p.router_id = (char *)"r1";
  x->p.node_id = (char *)"n1";
  x->p.kind = (char *)"audio";
  x->pp[0] = &x->p;
  for (int i = 0; i < 2; i++) {
    Mafalda__Controller__Pipe pi = MAFALDA__CONTROLLER__PIPE__INIT;
    x->pipe[i] = pi;
    x->pipe[i].producer_id = (char *)"p1";
    x->pipep[i] = &x->pipe[i];
  }
  /* listed before the pipe that feeds it: the replay retries it */
  x->pipe[0].source_node_id = (char *)"n2";
  x->pipe[0].target_node_id = (char *)"n3";
  x->pipe[1].source_node_id = (char *)"n1";
  x->pipe[1].target_node_id = (char *)"n2";
  Mafalda__Controller__Snapshot s = MAFALDA__CONTROLLER__SNAPSHOT__INIT;
  x->snap = s;
  x->snap.version = 1;
  x->snap.n_nodes = 3;
  x->snap.nodes = x->np;
  x->snap.n_routers = 1;
  x->snap.routers = x->rp;
  x->snap.n_shards = 3;
  x->snap.shards = x->sp;
  x->snap.n_producers = 1;
  x->snap.producers = x->pp;
  x->snap.n_pipes = 2;
  x->snap.pipes = x->pipep;
}

static mf_err_t restore(mf_fsm_t *f, const snap_t *x) {
  size_t n = mafalda__controller__snapshot__get_packed_size(&x->snap);
  uint8_t *buf = malloc(n ? n : 1);
  assert_non_null(buf);
  mafalda__controller__snapshot__pack(&x->snap, buf);
  mf_err_t e = mf_fsm_restore(f, buf, n);
  free(buf);
  return e;
}

static void test_snapshot_replay_refusals(void **state) {
  (void)state;
  mf_fsm_t *f;
  assert_int_equal(mf_fsm_create(&f), MF_OK);
  snap_t x;
  snap_init(&x);
  assert_int_equal(restore(f, &x), MF_OK);
  mf_fsm_counts_t c;
  mf_fsm_counts(f, &c);
  assert_int_equal(c.nodes, 3);
  assert_int_equal(c.pipes, 2);
  assert_true(mf_fsm_has_pipe(f, "p1", "n3", 0));
  char *good = mf_fsm_dump(f);

  static const char *const why[] = {"version", "node twice", "unfed pipe", "no state", "garbage"};
  static const mf_err_t want[] = {MF_ERR_UNSUPPORTED, MF_ERR_EXISTS, MF_ERR_STATE,
                                  MF_ERR_INVALID_ARG, MF_ERR_PARSE};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    snap_init(&x);
    mf_err_t e;
    if (i == 0) x.snap.version = 2;
    if (i == 1) x.np[1] = &x.n[0];
    if (i == 2) x.pipe[0].source_node_id = (char *)"n3"; /* n3 gets p1 only through itself */
    if (i == 3) x.n[2].state = MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_UNSPECIFIED;
    if (i == 4) {
      static const uint8_t junk[] = {0xff, 0xff, 0xff};
      e = mf_fsm_restore(f, junk, sizeof junk);
    } else {
      e = restore(f, &x);
    }
    if (e != want[i]) print_error("case %s: %d\n", why[i], e);
    assert_int_equal(e, want[i]);
    char *now = mf_fsm_dump(f); /* a refused snapshot leaves the state as it was */
    assert_string_equal(now, good);
    free(now);
  }
  free(good);
  mf_fsm_destroy(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_commands_are_refused),
      cmocka_unit_test(test_malformed_rows),
      cmocka_unit_test(test_snapshot_replay_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
