/* The controller's state machine: every command, rejected commands (state unchanged),
 * cascades, snapshot -> restore equality, malformed bytes. */
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

/* Every command goes through the wire format, as in the Raft log. */
static mf_err_t run(mf_fsm_t *f, const cmd_t *c) {
  uint8_t *buf;
  size_t len;
  assert_int_equal(mf_fsm_encode_command(c, &buf, &len), MF_OK);
  char msg[MF_FSM_MESSAGE_MAX];
  mf_err_t err = mf_fsm_apply(f, buf, len, msg, sizeof(msg));
  assert_true(strlen(msg) > 0);
  free(buf);
  return err;
}

/* A rejected command must leave the state byte-for-byte unchanged. */
static void reject(mf_fsm_t *f, const cmd_t *c, mf_err_t expected) {
  char *before = mf_fsm_dump(f);
  assert_int_equal(run(f, c), expected);
  char *after = mf_fsm_dump(f);
  assert_string_equal(before, after);
  free(before);
  free(after);
}

static mf_err_t register_node(mf_fsm_t *f, const char *id, unsigned workers,
                              Mafalda__Controller__NodeState state) {
  Mafalda__Controller__Worker w[8], *wp[8];
  Mafalda__Controller__Node n = MAFALDA__CONTROLLER__NODE__INIT;
  n.id = (char *)id;
  n.name = (char *)"host";
  n.rpc_address = (char *)"127.0.0.1:7000";
  n.state = state;
  n.n_workers = workers;
  n.workers = wp;
  for (unsigned i = 0; i < workers && i < 8; i++) {
    Mafalda__Controller__Worker init = MAFALDA__CONTROLLER__WORKER__INIT;
    w[i] = init;
    w[i].index = i;
    w[i].rtc_port = 40000 + i;
    wp[i] = &w[i];
  }
  Mafalda__Controller__RegisterNode r = MAFALDA__CONTROLLER__REGISTER_NODE__INIT;
  r.node = &n;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_REGISTER_NODE;
  c.register_node = &r;
  return run(f, &c);
}

static cmd_t set_state_cmd(Mafalda__Controller__SetNodeState *s, const char *id,
                           Mafalda__Controller__NodeState st) {
  Mafalda__Controller__SetNodeState init = MAFALDA__CONTROLLER__SET_NODE_STATE__INIT;
  *s = init;
  s->node_id = (char *)id;
  s->state = st;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_SET_NODE_STATE;
  c.set_node_state = s;
  return c;
}

/* Named "room" for r1, "room <id>" otherwise: router names are unique. */
static mf_err_t create_router(mf_fsm_t *f, const char *id, const char *codecs) {
  char name[80];
  snprintf(name, sizeof(name), strcmp(id, "r1") == 0 ? "room" : "room %s", id);
  Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
  r.id = (char *)id;
  r.name = name;
  r.codecs_json = (char *)codecs;
  r.app_data_json = (char *)"{\"a\":1}";
  Mafalda__Controller__CreateRouter cr = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
  cr.router = &r;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER;
  c.create_router = &cr;
  return run(f, &c);
}

static mf_err_t shard(mf_fsm_t *f, bool add, const char *router, const char *node, unsigned w) {
  Mafalda__Controller__Shard s = MAFALDA__CONTROLLER__SHARD__INIT;
  s.router_id = (char *)router;
  s.node_id = (char *)node;
  s.worker = w;
  Mafalda__Controller__AddShard a = MAFALDA__CONTROLLER__ADD_SHARD__INIT;
  Mafalda__Controller__RemoveShard r = MAFALDA__CONTROLLER__REMOVE_SHARD__INIT;
  a.shard = r.shard = &s;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  if (add) {
    c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_SHARD;
    c.add_shard = &a;
  } else {
    c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_REMOVE_SHARD;
    c.remove_shard = &r;
  }
  return run(f, &c);
}

static mf_err_t add_producer(mf_fsm_t *f, const char *id, const char *router, const char *node,
                             unsigned w, const char *kind) {
  static uint8_t rtp[] = {1, 2, 3, 0, 5};
  Mafalda__Controller__Producer p = MAFALDA__CONTROLLER__PRODUCER__INIT;
  p.id = (char *)id;
  p.router_id = (char *)router;
  p.node_id = (char *)node;
  p.worker = w;
  p.kind = (char *)kind;
  p.rtp_parameters.data = rtp;
  p.rtp_parameters.len = sizeof(rtp);
  Mafalda__Controller__AddProducer a = MAFALDA__CONTROLLER__ADD_PRODUCER__INIT;
  a.producer = &p;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PRODUCER;
  c.add_producer = &a;
  return run(f, &c);
}

static mf_err_t pipe_cmd(mf_fsm_t *f, bool add, const char *producer, const char *tnode,
                         unsigned tw, const char *snode, unsigned sw) {
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  Mafalda__Controller__Pipe p = MAFALDA__CONTROLLER__PIPE__INIT;
  Mafalda__Controller__AddPipe a = MAFALDA__CONTROLLER__ADD_PIPE__INIT;
  Mafalda__Controller__RemovePipe r = MAFALDA__CONTROLLER__REMOVE_PIPE__INIT;
  if (add) {
    p.producer_id = (char *)producer;
    p.target_node_id = (char *)tnode;
    p.target_worker = tw;
    p.source_node_id = (char *)snode;
    p.source_worker = sw;
    a.pipe = &p;
    c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PIPE;
    c.add_pipe = &a;
  } else {
    r.producer_id = (char *)producer;
    r.target_node_id = (char *)tnode;
    r.target_worker = tw;
    c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_REMOVE_PIPE;
    c.remove_pipe = &r;
  }
  return run(f, &c);
}

static cmd_t id_cmd(int which, Mafalda__Controller__ForgetNode *fn,
                    Mafalda__Controller__CloseRouter *cr, Mafalda__Controller__RemoveProducer *rp,
                    const char *id) {
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  Mafalda__Controller__ForgetNode fi = MAFALDA__CONTROLLER__FORGET_NODE__INIT;
  Mafalda__Controller__CloseRouter ci = MAFALDA__CONTROLLER__CLOSE_ROUTER__INIT;
  Mafalda__Controller__RemoveProducer ri = MAFALDA__CONTROLLER__REMOVE_PRODUCER__INIT;
  *fn = fi;
  *cr = ci;
  *rp = ri;
  if (which == 0) {
    fn->node_id = (char *)id;
    c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_FORGET_NODE;
    c.forget_node = fn;
  } else if (which == 1) {
    cr->router_id = (char *)id;
    c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CLOSE_ROUTER;
    c.close_router = cr;
  } else {
    rp->producer_id = (char *)id;
    c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_REMOVE_PRODUCER;
    c.remove_producer = rp;
  }
  return c;
}

static mf_err_t by_id(mf_fsm_t *f, int which, const char *id) {
  Mafalda__Controller__ForgetNode fn;
  Mafalda__Controller__CloseRouter cr;
  Mafalda__Controller__RemoveProducer rp;
  cmd_t c = id_cmd(which, &fn, &cr, &rp, id);
  return run(f, &c);
}

#define A MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE
#define J MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_JOINING
#define D MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DRAINING
#define X MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD

/* n1 (2 workers), n2 (2 workers), router r1 on n1/0, n1/1, n2/0; producer p1 at n1/0,
 * pipes p1 -> n1/1 (from origin), p1 -> n2/0 (from n1/1). */
static mf_fsm_t *populated(void) {
  mf_fsm_t *f;
  assert_int_equal(mf_fsm_create(&f), MF_OK);
  assert_int_equal(register_node(f, "n1", 2, 0), MF_OK);
  assert_int_equal(register_node(f, "n2", 2, A), MF_OK);
  assert_int_equal(create_router(f, "r1", "[{\"mimeType\":\"audio/opus\"}]\n"), MF_OK);
  assert_int_equal(shard(f, true, "r1", "n1", 0), MF_OK);
  assert_int_equal(shard(f, true, "r1", "n1", 1), MF_OK);
  assert_int_equal(shard(f, true, "r1", "n2", 0), MF_OK);
  assert_int_equal(add_producer(f, "p1", "r1", "n1", 0, "video"), MF_OK);
  assert_int_equal(pipe_cmd(f, true, "p1", "n1", 1, "n1", 0), MF_OK);
  assert_int_equal(pipe_cmd(f, true, "p1", "n2", 0, "n1", 1), MF_OK);
  return f;
}

static void test_every_command(void **state) {
  mf_fsm_t *f = populated();
  mf_fsm_counts_t c;
  mf_fsm_counts(f, &c);
  assert_int_equal(c.nodes, 2);
  assert_int_equal(c.routers, 1);
  assert_int_equal(c.shards, 3);
  assert_int_equal(c.producers, 1);
  assert_int_equal(c.pipes, 2);
  assert_int_equal(mf_fsm_find_node(f, "n1")->state, J); /* unspecified -> joining */
  assert_int_equal(mf_fsm_find_node(f, "n2")->state, A);
  assert_string_equal(mf_fsm_find_producer(f, "p1")->kind, "video");
  assert_non_null(mf_fsm_find_router(f, "r1"));
  assert_true(mf_fsm_has_shard(f, "r1", "n2", 0));
  assert_true(mf_fsm_has_pipe(f, "p1", "n2", 0));

  char *dump = mf_fsm_dump(f);
  const char *expected =
      "node n1 state=joining name=\"host\" rpc=127.0.0.1:7000 gossip= ip= workers=2 "
      "ports=40000,40001\n"
      "node n2 state=active name=\"host\" rpc=127.0.0.1:7000 gossip= ip= workers=2 "
      "ports=40000,40001\n"
      "router r1 name=\"room\" codecs=\"[{\\\"mimeType\\\":\\\"audio/opus\\\"}]\\x0a\" "
      "appData=\"{\\\"a\\\":1}\"\n"
      "shard r1 n1/0\nshard r1 n1/1\nshard r1 n2/0\n";
  assert_memory_equal(dump, expected, strlen(expected));
  assert_non_null(strstr(dump, "producer p1 router=r1 origin=n1/0 kind=video rtp=5:"));
  assert_non_null(strstr(dump, "pipe p1 n1/1 <- n1/0\npipe p1 n2/0 <- n1/1\n"));
  free(dump);

  Mafalda__Controller__SetNodeState s;
  cmd_t sc = set_state_cmd(&s, "n1", A);
  assert_int_equal(run(f, &sc), MF_OK);
  assert_int_equal(mf_fsm_find_node(f, "n1")->state, A);
  sc = set_state_cmd(&s, "n1", D);
  assert_int_equal(run(f, &sc), MF_OK);
  sc = set_state_cmd(&s, "n1", A);
  assert_int_equal(run(f, &sc), MF_OK);

  /* Re-registration refreshes the node and keeps its state. */
  assert_int_equal(register_node(f, "n1", 2, J), MF_OK);
  assert_int_equal(mf_fsm_find_node(f, "n1")->state, A);

  assert_int_equal(pipe_cmd(f, false, "p1", "n2", 0, NULL, 0), MF_OK);
  assert_false(mf_fsm_has_pipe(f, "p1", "n2", 0));
  assert_int_equal(by_id(f, 2, "p1"), MF_OK); /* remove producer: its pipe goes too */
  mf_fsm_counts(f, &c);
  assert_int_equal(c.producers, 0);
  assert_int_equal(c.pipes, 0);
  assert_int_equal(shard(f, false, "r1", "n2", 0), MF_OK);
  assert_int_equal(by_id(f, 1, "r1"), MF_OK); /* close router: shards go */
  mf_fsm_counts(f, &c);
  assert_int_equal(c.routers, 0);
  assert_int_equal(c.shards, 0);
  assert_int_equal(by_id(f, 0, "n2"), MF_OK);
  assert_null(mf_fsm_find_node(f, "n2"));
  mf_fsm_destroy(f);
}

static void test_invalid_commands(void **state) {
  mf_fsm_t *f = populated();
  char long_id[MF_FSM_ID_MAX + 2];
  memset(long_id, 'x', sizeof(long_id) - 1);
  long_id[sizeof(long_id) - 1] = '\0';

  /* unknown ids */
  Mafalda__Controller__SetNodeState s;
  cmd_t c = set_state_cmd(&s, "nope", A);
  reject(f, &c, MF_ERR_NOT_FOUND);
  Mafalda__Controller__ForgetNode fn;
  Mafalda__Controller__CloseRouter cr;
  Mafalda__Controller__RemoveProducer rp;
  for (int which = 0; which < 3; which++) {
    c = id_cmd(which, &fn, &cr, &rp, "nope");
    reject(f, &c, MF_ERR_NOT_FOUND);
    c = id_cmd(which, &fn, &cr, &rp, "");
    reject(f, &c, MF_ERR_INVALID_ARG);
    c = id_cmd(which, &fn, &cr, &rp, "has space");
    reject(f, &c, MF_ERR_INVALID_ARG);
    c = id_cmd(which, &fn, &cr, &rp, long_id);
    reject(f, &c, MF_ERR_LIMIT);
  }
  /* Every remaining rejection is checked for "state unchanged" by wrapping in reject(). */
  char *before = mf_fsm_dump(f);
  struct {
    mf_err_t got, want;
  } table[] = {
      {register_node(f, "", 1, 0), MF_ERR_INVALID_ARG},
      {register_node(f, "n3", 1, (Mafalda__Controller__NodeState)9), MF_ERR_INVALID_ARG},
      {register_node(f, "n1", 1, 0), MF_ERR_STATE}, /* worker 1 hosts a shard */
      {create_router(f, "r1", "[]"), MF_ERR_EXISTS},
      {create_router(f, "bad\x01", "[]"), MF_ERR_INVALID_ARG},
      {shard(f, true, "r1", "n1", 0), MF_ERR_EXISTS},
      {shard(f, true, "r9", "n1", 0), MF_ERR_NOT_FOUND},
      {shard(f, true, "r1", "n9", 0), MF_ERR_NOT_FOUND},
      {shard(f, true, "r1", "n2", 2), MF_ERR_INVALID_ARG}, /* no such worker */
      {shard(f, false, "r1", "n2", 1), MF_ERR_NOT_FOUND},
      {add_producer(f, "p1", "r1", "n1", 0, "video"), MF_ERR_EXISTS},
      {add_producer(f, "p2", "r1", "n2", 1, "video"), MF_ERR_NOT_FOUND}, /* no shard */
      {add_producer(f, "p2", "r1", "n1", 0, "data"), MF_ERR_INVALID_ARG},
      {add_producer(f, "p2", "r9", "n1", 0, "audio"), MF_ERR_NOT_FOUND},
      {pipe_cmd(f, true, "p9", "n2", 0, "n1", 0), MF_ERR_NOT_FOUND},
      {pipe_cmd(f, true, "p1", "n2", 0, "n1", 0), MF_ERR_EXISTS},
      {pipe_cmd(f, true, "p1", "n1", 0, "n1", 1), MF_ERR_INVALID_ARG}, /* to origin */
      {pipe_cmd(f, true, "p1", "n2", 1, "n1", 0), MF_ERR_NOT_FOUND},   /* no shard */
      {pipe_cmd(f, false, "p1", "n2", 1, NULL, 0), MF_ERR_NOT_FOUND},
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    if (table[i].got != table[i].want) fail_msg("row %zu: got %d want %d", i, table[i].got, table[i].want);
  }
  char *after = mf_fsm_dump(f);
  assert_string_equal(before, after);
  free(after);

  /* A source that does not carry the producer. */
  assert_int_equal(shard(f, true, "r1", "n2", 1), MF_OK);
  free(before);
  before = mf_fsm_dump(f);
  assert_int_equal(pipe_cmd(f, true, "p1", "n2", 1, "n2", 1), MF_ERR_STATE);
  /* Transitions: dead -> active needs a new registration. */
  c = set_state_cmd(&s, "n2", X);
  assert_int_equal(run(f, &c), MF_OK);
  free(before);
  before = mf_fsm_dump(f);
  c = set_state_cmd(&s, "n2", A);
  reject(f, &c, MF_ERR_STATE);
  c = set_state_cmd(&s, "n2", J);
  reject(f, &c, MF_ERR_STATE);
  c = set_state_cmd(&s, "n2", (Mafalda__Controller__NodeState)0);
  reject(f, &c, MF_ERR_STATE);
  assert_false(mf_fsm_has_shard(f, "r1", "n2", 1)); /* a dead node hosts nothing */
  assert_int_equal(shard(f, true, "r1", "n2", 1), MF_ERR_STATE);
  assert_int_equal(create_router(f, "r2", "[]"), MF_OK);
  assert_int_equal(shard(f, true, "r2", "n2", 0), MF_ERR_STATE); /* dead node */
  assert_int_equal(register_node(f, "n2", 2, A), MF_OK);
  assert_int_equal(mf_fsm_find_node(f, "n2")->state, J);
  free(before);

  /* empty command, empty oneof member */
  cmd_t empty = MAFALDA__CONTROLLER__COMMAND__INIT;
  reject(f, &empty, MF_ERR_INVALID_ARG);
  cmd_t nulled = MAFALDA__CONTROLLER__COMMAND__INIT;
  nulled.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PIPE;
  Mafalda__Controller__AddPipe ap = MAFALDA__CONTROLLER__ADD_PIPE__INIT;
  nulled.add_pipe = &ap; /* no pipe inside */
  reject(f, &nulled, MF_ERR_INVALID_ARG);
  assert_int_equal(mf_fsm_apply_command(f, NULL, NULL, 0), MF_ERR_INVALID_ARG);
  mf_fsm_destroy(f);
}

static void test_cascade_forget_node(void **state) {
  mf_fsm_t *f = populated();
  assert_int_equal(register_node(f, "n3", 1, A), MF_OK);
  assert_int_equal(shard(f, true, "r1", "n3", 0), MF_OK);
  assert_int_equal(add_producer(f, "p2", "r1", "n2", 0, "audio"), MF_OK);
  assert_int_equal(pipe_cmd(f, true, "p2", "n3", 0, "n2", 0), MF_OK);
  assert_int_equal(pipe_cmd(f, true, "p1", "n3", 0, "n2", 0), MF_OK); /* via n2 */
  assert_int_equal(add_producer(f, "p3", "r1", "n3", 0, "audio"), MF_OK);
  assert_int_equal(pipe_cmd(f, true, "p3", "n1", 0, "n3", 0), MF_OK);

  /* Forgetting n2 removes its shard, p2 (origin there), p1's pipe to n2 and, transitively,
   * p1's pipe n2 -> n3; p3 and its pipe to n1 stay. */
  assert_int_equal(by_id(f, 0, "n2"), MF_OK);
  char *dump = mf_fsm_dump(f);
  const char *tail =
      "shard r1 n1/0\nshard r1 n1/1\nshard r1 n3/0\n";
  assert_non_null(strstr(dump, tail));
  assert_null(strstr(dump, "n2"));
  assert_null(strstr(dump, "producer p2"));
  assert_non_null(strstr(dump, "pipe p1 n1/1 <- n1/0\npipe p3 n1/0 <- n3/0\n"));
  mf_fsm_counts_t c;
  mf_fsm_counts(f, &c);
  assert_int_equal(c.nodes, 2);
  assert_int_equal(c.shards, 3);
  assert_int_equal(c.producers, 2);
  assert_int_equal(c.pipes, 2);
  free(dump);

  /* Forgetting the origin node removes p1 and every pipe of it. */
  assert_int_equal(by_id(f, 0, "n1"), MF_OK);
  mf_fsm_counts(f, &c);
  assert_int_equal(c.producers, 1);
  assert_int_equal(c.pipes, 0);
  assert_int_equal(c.shards, 1);
  mf_fsm_destroy(f);
}

/* A node declared dead keeps its row (state dead, until ForgetNode) but loses everything it
 * hosted, with the same cascade as forgetting it; registering again brings it back as
 * joining with nothing placed. */
static void test_cascade_dead_node(void **state) {
  mf_fsm_t *f = populated();
  Mafalda__Controller__SetNodeState s;
  cmd_t sc = set_state_cmd(&s, "n2", X);
  assert_int_equal(run(f, &sc), MF_OK);
  assert_int_equal(mf_fsm_find_node(f, "n2")->state, X);
  assert_false(mf_fsm_has_shard(f, "r1", "n2", 0));
  assert_false(mf_fsm_has_pipe(f, "p1", "n2", 0));
  assert_true(mf_fsm_has_pipe(f, "p1", "n1", 1));
  assert_int_equal(shard(f, true, "r1", "n2", 1), MF_ERR_STATE); /* nothing new lands there */

  sc = set_state_cmd(&s, "n1", X); /* the origin: p1 and its last pipe go */
  assert_int_equal(run(f, &sc), MF_OK);
  mf_fsm_counts_t c;
  mf_fsm_counts(f, &c);
  assert_int_equal(c.nodes, 2);
  assert_int_equal(c.routers, 1);
  assert_int_equal(c.shards, 0);
  assert_int_equal(c.producers, 0);
  assert_int_equal(c.pipes, 0);

  assert_int_equal(register_node(f, "n1", 2, A), MF_OK);
  assert_int_equal(mf_fsm_find_node(f, "n1")->state, J);
  mf_fsm_destroy(f);
}

static void test_snapshot_restore(void **state) {
  mf_fsm_t *f = populated();
  assert_int_equal(register_node(f, "n0", 1, D), MF_OK);
  assert_int_equal(register_node(f, "nd", 1, A), MF_OK);
  Mafalda__Controller__SetNodeState s;
  cmd_t c = set_state_cmd(&s, "nd", X);
  assert_int_equal(run(f, &c), MF_OK);
  uint8_t *snap;
  size_t len;
  assert_int_equal(mf_fsm_snapshot(f, &snap, &len), MF_OK);
  mf_fsm_t *g;
  assert_int_equal(mf_fsm_create(&g), MF_OK);
  assert_int_equal(create_router(g, "junk", "[]"), MF_OK); /* replaced by restore */
  assert_int_equal(mf_fsm_restore(g, snap, len), MF_OK);
  assert_true(mf_fsm_equal(f, g));
  char *a = mf_fsm_dump(f), *b = mf_fsm_dump(g);
  assert_string_equal(a, b);
  free(a);
  free(b);

  /* The restored copy keeps working identically. */
  assert_int_equal(by_id(f, 0, "n1"), MF_OK);
  assert_int_equal(by_id(g, 0, "n1"), MF_OK);
  assert_true(mf_fsm_equal(f, g));

  /* Truncated / corrupted snapshots are refused and leave the state alone. */
  for (size_t cut = 1; cut < len; cut += 7) {
    mf_fsm_t *h;
    assert_int_equal(mf_fsm_create(&h), MF_OK);
    if (mf_fsm_restore(h, snap, cut) != MF_OK) {
      mf_fsm_counts_t cn;
      mf_fsm_counts(h, &cn);
      assert_int_equal(cn.nodes + cn.routers + cn.shards + cn.producers + cn.pipes, 0);
    }
    mf_fsm_destroy(h);
  }
  assert_int_equal(mf_fsm_restore(g, snap, len), MF_OK);
  char *keep = mf_fsm_dump(g);
  uint8_t garbage[] = {0xff, 0xff, 0xff, 0x01};
  assert_int_equal(mf_fsm_restore(g, garbage, sizeof(garbage)), MF_ERR_PARSE);

  /* A snapshot with a dangling reference is refused. */
  Mafalda__Controller__Shard sh = MAFALDA__CONTROLLER__SHARD__INIT, *shp = &sh;
  sh.router_id = (char *)"r1";
  sh.node_id = (char *)"ghost";
  Mafalda__Controller__Snapshot bad = MAFALDA__CONTROLLER__SNAPSHOT__INIT;
  bad.version = 1;
  bad.n_shards = 1;
  bad.shards = &shp;
  uint8_t buf[256];
  size_t n = mafalda__controller__snapshot__pack(&bad, buf);
  assert_int_equal(mf_fsm_restore(g, buf, n), MF_ERR_NOT_FOUND);
  bad.version = 2;
  bad.n_shards = 0;
  n = mafalda__controller__snapshot__pack(&bad, buf);
  assert_int_equal(mf_fsm_restore(g, buf, n), MF_ERR_UNSUPPORTED);
  char *now = mf_fsm_dump(g);
  assert_string_equal(keep, now);
  free(keep);
  free(now);

  /* Empty state round-trips too. */
  mf_fsm_t *e1, *e2;
  assert_int_equal(mf_fsm_create(&e1), MF_OK);
  assert_int_equal(mf_fsm_create(&e2), MF_OK);
  uint8_t *es;
  size_t el;
  assert_int_equal(mf_fsm_snapshot(e1, &es, &el), MF_OK);
  assert_int_equal(mf_fsm_restore(g, es, el), MF_OK);
  assert_true(mf_fsm_equal(e2, g));
  free(es);
  mf_fsm_destroy(e1);
  mf_fsm_destroy(e2);
  free(snap);
  mf_fsm_destroy(f);
  mf_fsm_destroy(g);
}

static void test_order_independent(void **state) {
  mf_fsm_t *a, *b;
  assert_int_equal(mf_fsm_create(&a), MF_OK);
  assert_int_equal(mf_fsm_create(&b), MF_OK);
  const char *ids[] = {"r3", "r1", "r2", "r0"};
  for (int i = 0; i < 4; i++) assert_int_equal(create_router(a, ids[i], "[]"), MF_OK);
  for (int i = 3; i >= 0; i--) assert_int_equal(create_router(b, ids[i], "[]"), MF_OK);
  assert_true(mf_fsm_equal(a, b));
  assert_int_equal(create_router(b, "r9", "[]"), MF_OK);
  assert_false(mf_fsm_equal(a, b));
  mf_fsm_destroy(a);
  mf_fsm_destroy(b);
}

static void test_malformed_bytes(void **state) {
  mf_fsm_t *f = populated();
  char *before = mf_fsm_dump(f);
  char msg[MF_FSM_MESSAGE_MAX];
  static const struct {
    const char *bytes;
    size_t len;
  } table[] = {
      {"\xff", 1},
      {"\x0a\x05\x0a\x02", 4},             /* truncated nested message */
      {"\x0a\xff\xff\xff\xff\x0f", 6},     /* huge length */
      {"\x22\x02\x0a\x00", 4},             /* create_router with empty router: invalid */
      {"\x08\x01", 2},                     /* unknown varint field only: empty command */
      {"", 0},
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    mf_err_t err = mf_fsm_apply(f, (const uint8_t *)table[i].bytes, table[i].len, msg, sizeof(msg));
    assert_int_not_equal(err, MF_OK);
    assert_true(strlen(msg) > 0);
  }
  /* Random bytes never crash and never change state unless they decode as a valid command. */
  uint32_t x = 12345;
  uint8_t buf[64];
  for (int round = 0; round < 5000; round++) {
    size_t len = 1 + (size_t)(x % sizeof(buf));
    for (size_t i = 0; i < len; i++) {
      x = x * 1103515245u + 12345u;
      buf[i] = (uint8_t)(x >> 16);
    }
    (void)mf_fsm_apply(f, buf, len, msg, sizeof(msg));
  }
  assert_int_equal(mf_fsm_apply(f, buf, MF_FSM_COMMAND_MAX + 1, msg, sizeof(msg)), MF_ERR_LIMIT);
  free(before);
  mf_fsm_destroy(f);
}

/* ---- router names (unique among named routers) and read-only iteration ---- */

static mf_err_t create_named(mf_fsm_t *f, const char *id, const char *name, char *msg,
                             size_t size) {
  Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
  r.id = (char *)id;
  r.name = (char *)name;
  Mafalda__Controller__CreateRouter cr = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
  cr.router = &r;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER;
  c.create_router = &cr;
  return mf_fsm_apply_command(f, &c, msg, size);
}

static void test_router_names(void **state) {
  (void)state;
  mf_fsm_t *f = populated(); /* r1 is named "room" */
  char msg[MF_FSM_MESSAGE_MAX];
  const Mafalda__Controller__Router *r = mf_fsm_find_router_by_name(f, "room");
  assert_non_null(r);
  assert_string_equal(r->id, "r1");
  assert_null(mf_fsm_find_router_by_name(f, "Room")); /* exact, case-sensitive */
  assert_null(mf_fsm_find_router_by_name(f, ""));
  assert_null(mf_fsm_find_router_by_name(f, NULL));

  struct {
    const char *id, *name;
    mf_err_t want;
  } table[] = {
      {"r2", "room", MF_ERR_EXISTS},       /* the name is taken */
      {"r1", "other", MF_ERR_EXISTS},      /* the id is taken (checked first) */
      {"r2", "room ", MF_OK},              /* a different name */
      {"r3", "room ", MF_ERR_EXISTS},
      {"u1", "", MF_OK},                   /* unnamed routers are exempt */
      {"u2", "", MF_OK},
      {"u3", NULL, MF_OK},
      {"r4", "bad\x01", MF_ERR_INVALID_ARG},
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    char *before = mf_fsm_dump(f);
    mf_err_t err = create_named(f, table[i].id, table[i].name, msg, sizeof(msg));
    if (err != table[i].want) fail_msg("row %zu: %d want %d (%s)", i, err, table[i].want, msg);
    char *after = mf_fsm_dump(f);
    if (err != MF_OK) assert_string_equal(before, after);
    free(before);
    free(after);
  }
  /* The refusal names the router that holds the name. */
  assert_int_equal(create_named(f, "r5", "room", msg, sizeof(msg)), MF_ERR_EXISTS);
  assert_non_null(strstr(msg, "'r1'"));
  assert_string_equal(mf_fsm_find_router_by_name(f, "room ")->id, "r2");

  /* A closed router's name is free again. */
  assert_int_equal(by_id(f, 1, "r1"), MF_OK);
  assert_null(mf_fsm_find_router_by_name(f, "room"));
  assert_int_equal(create_named(f, "r6", "room", msg, sizeof(msg)), MF_OK);
  assert_string_equal(mf_fsm_find_router_by_name(f, "room")->id, "r6");

  /* Restore keeps names searchable, and a snapshot with a name twice is refused. */
  uint8_t *snap;
  size_t len;
  assert_int_equal(mf_fsm_snapshot(f, &snap, &len), MF_OK);
  mf_fsm_t *g;
  assert_int_equal(mf_fsm_create(&g), MF_OK);
  assert_int_equal(mf_fsm_restore(g, snap, len), MF_OK);
  assert_string_equal(mf_fsm_find_router_by_name(g, "room")->id, "r6");
  free(snap);
  Mafalda__Controller__Router a = MAFALDA__CONTROLLER__ROUTER__INIT, b = a, *rs[] = {&a, &b};
  a.id = (char *)"x1";
  b.id = (char *)"x2";
  a.name = b.name = (char *)"twin";
  Mafalda__Controller__Snapshot s = MAFALDA__CONTROLLER__SNAPSHOT__INIT;
  s.version = 1;
  s.n_routers = 2;
  s.routers = rs;
  uint8_t buf[256];
  len = mafalda__controller__snapshot__pack(&s, buf);
  char *kept = mf_fsm_dump(g);
  assert_int_not_equal(mf_fsm_restore(g, buf, len), MF_OK);
  char *now = mf_fsm_dump(g);
  assert_string_equal(kept, now);
  free(kept);
  free(now);
  mf_fsm_destroy(g);
  mf_fsm_destroy(f);
}

typedef struct {
  char seen[512];
} walk_t;

static void walk_router(void *ud, const Mafalda__Controller__Router *r) {
  walk_t *w = ud;
  size_t n = strlen(w->seen);
  snprintf(w->seen + n, sizeof(w->seen) - n, "r:%s ", r->id);
}
static void walk_shard(void *ud, const Mafalda__Controller__Shard *s) {
  walk_t *w = ud;
  size_t n = strlen(w->seen);
  snprintf(w->seen + n, sizeof(w->seen) - n, "s:%s/%s/%u ", s->router_id, s->node_id, s->worker);
}
static void walk_producer(void *ud, const Mafalda__Controller__Producer *p) {
  walk_t *w = ud;
  size_t n = strlen(w->seen);
  snprintf(w->seen + n, sizeof(w->seen) - n, "p:%s@%s/%u ", p->id, p->node_id, p->worker);
}
static void walk_pipe(void *ud, const Mafalda__Controller__Pipe *p) {
  walk_t *w = ud;
  size_t n = strlen(w->seen);
  snprintf(w->seen + n, sizeof(w->seen) - n, "x:%s>%s/%u<%s/%u ", p->producer_id,
           p->target_node_id, p->target_worker, p->source_node_id, p->source_worker);
}

static void test_foreach(void **state) {
  (void)state;
  mf_fsm_t *f;
  assert_int_equal(mf_fsm_create(&f), MF_OK);
  walk_t w = {{0}};
  mf_fsm_foreach_router(f, walk_router, &w); /* empty state: no calls */
  mf_fsm_foreach_shard(f, walk_shard, &w);
  mf_fsm_foreach_producer(f, walk_producer, &w);
  mf_fsm_foreach_pipe(f, walk_pipe, &w);
  assert_string_equal(w.seen, "");
  mf_fsm_destroy(f);

  f = populated();
  /* Inserted out of order: the walk is in key order anyway. */
  assert_int_equal(create_router(f, "r0", "[]"), MF_OK);
  assert_int_equal(shard(f, true, "r0", "n2", 1), MF_OK);
  assert_int_equal(shard(f, true, "r0", "n1", 0), MF_OK);
  assert_int_equal(add_producer(f, "p0", "r0", "n2", 1, "audio"), MF_OK);
  assert_int_equal(pipe_cmd(f, true, "p0", "n1", 0, "n2", 1), MF_OK);
  mf_fsm_foreach_router(f, walk_router, &w);
  mf_fsm_foreach_shard(f, walk_shard, &w);
  mf_fsm_foreach_producer(f, walk_producer, &w);
  mf_fsm_foreach_pipe(f, walk_pipe, &w);
  assert_string_equal(w.seen,
                      "r:r0 r:r1 "
                      "s:r0/n1/0 s:r0/n2/1 s:r1/n1/0 s:r1/n1/1 s:r1/n2/0 "
                      "p:p0@n2/1 p:p1@n1/0 "
                      "x:p0>n1/0<n2/1 x:p1>n1/1<n1/0 x:p1>n2/0<n1/1 ");
  mf_fsm_destroy(f);
}

/* ---- controller replicas' addresses (SetControllerAddress) ---- */

static cmd_t addr_cmd(Mafalda__Controller__SetControllerAddress *a, uint64_t id,
                      const char *raft, const char *rpc) {
  Mafalda__Controller__SetControllerAddress init =
      MAFALDA__CONTROLLER__SET_CONTROLLER_ADDRESS__INIT;
  *a = init;
  a->raft_id = id;
  a->raft_address = (char *)raft;
  a->rpc_address = (char *)rpc;
  cmd_t c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_SET_CONTROLLER_ADDRESS;
  c.set_controller_address = a;
  return c;
}

static mf_err_t set_addr(mf_fsm_t *f, uint64_t id, const char *raft, const char *rpc) {
  Mafalda__Controller__SetControllerAddress a;
  cmd_t c = addr_cmd(&a, id, raft, rpc);
  return run(f, &c);
}

static void walk_controller(void *ud, const Mafalda__Controller__ControllerAddress *c) {
  walk_t *w = ud;
  size_t n = strlen(w->seen);
  snprintf(w->seen + n, sizeof(w->seen) - n, "%llu=%s ", (unsigned long long)c->raft_id,
           c->rpc_address);
}

static void assert_rpc(const mf_fsm_t *f, uint64_t id, const char *rpc) {
  const Mafalda__Controller__ControllerAddress *c = mf_fsm_find_controller(f, id);
  if (!rpc) {
    assert_null(c);
    return;
  }
  assert_non_null(c);
  assert_int_equal(c->raft_id, id);
  assert_string_equal(c->rpc_address, rpc);
}

static void test_controller_addresses(void **state) {
  (void)state;
  mf_fsm_t *f;
  assert_int_equal(mf_fsm_create(&f), MF_OK);
  /* add (out of order), replace, an identical set (no change), remove */
  assert_int_equal(set_addr(f, 4, "127.0.0.1:7104", "127.0.0.1:7204"), MF_OK);
  assert_int_equal(set_addr(f, 1, "127.0.0.1:7101", "127.0.0.1:7201"), MF_OK);
  assert_int_equal(set_addr(f, 2, "127.0.0.1:7102", "127.0.0.1:7202"), MF_OK);
  assert_rpc(f, 4, "127.0.0.1:7204");
  assert_rpc(f, 3, NULL);
  assert_rpc(f, 0, NULL);
  assert_int_equal(set_addr(f, 1, "10.0.0.1:7101", "10.0.0.1:7201"), MF_OK);
  assert_rpc(f, 1, "10.0.0.1:7201");
  assert_string_equal(mf_fsm_find_controller(f, 1)->raft_address, "10.0.0.1:7101");
  char *before = mf_fsm_dump(f);
  assert_int_equal(set_addr(f, 1, "10.0.0.1:7101", "10.0.0.1:7201"), MF_OK);
  char *after = mf_fsm_dump(f);
  assert_string_equal(before, after);
  free(before);
  free(after);
  assert_int_equal(set_addr(f, 2, "", ""), MF_OK);
  assert_rpc(f, 2, NULL);
  mf_fsm_counts_t cn;
  mf_fsm_counts(f, &cn);
  assert_int_equal(cn.controllers, 2);
  walk_t w = {{0}};
  mf_fsm_foreach_controller(f, walk_controller, &w);
  assert_string_equal(w.seen, "1=10.0.0.1:7201 4=127.0.0.1:7204 ");
  char *dump = mf_fsm_dump(f);
  assert_string_equal(dump, "controller 1 raft=10.0.0.1:7101 rpc=10.0.0.1:7201\n"
                            "controller 4 raft=127.0.0.1:7104 rpc=127.0.0.1:7204\n");
  free(dump);

  /* rejected: the state stays byte for byte */
  char big[MF_FSM_NAME_MAX + 2];
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  char fits[MF_FSM_NAME_MAX + 1];
  memset(fits, 'b', sizeof(fits) - 1);
  fits[sizeof(fits) - 1] = '\0';
  static const struct {
    uint64_t id;
    const char *raft, *rpc;
    mf_err_t want;
  } bad[] = {
      {0, "127.0.0.1:7101", "127.0.0.1:7201", MF_ERR_INVALID_ARG},  /* id 0 */
      {0, "", "", MF_ERR_INVALID_ARG},                              /* id 0, removal */
      {5, "", "127.0.0.1:7205", MF_ERR_INVALID_ARG},                /* no raft address */
      {5, "127.0.0.1:7105", "127.0.0.1:72\n05", MF_ERR_INVALID_ARG}, /* control character */
      {5, "127.0.0.1:71\x7f", "127.0.0.1:7205", MF_ERR_INVALID_ARG},
      {2, "", "", MF_ERR_NOT_FOUND},                                /* no row to remove */
      {9, "127.0.0.1:7109", "", MF_ERR_NOT_FOUND},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    Mafalda__Controller__SetControllerAddress a;
    cmd_t c = addr_cmd(&a, bad[i].id, bad[i].raft, bad[i].rpc);
    reject(f, &c, bad[i].want);
  }
  Mafalda__Controller__SetControllerAddress a;
  cmd_t c = addr_cmd(&a, 1, big, "127.0.0.1:7201"); /* oversize raft address */
  reject(f, &c, MF_ERR_LIMIT);
  c = addr_cmd(&a, 5, "127.0.0.1:7105", big); /* oversize rpc address */
  reject(f, &c, MF_ERR_LIMIT);
  assert_int_equal(set_addr(f, 5, fits, fits), MF_OK); /* exactly the limit */
  assert_int_equal(set_addr(f, 5, "", ""), MF_OK);
  /* An empty SetControllerAddress on the wire decodes with id 0. */
  cmd_t empty = MAFALDA__CONTROLLER__COMMAND__INIT;
  Mafalda__Controller__SetControllerAddress none = MAFALDA__CONTROLLER__SET_CONTROLLER_ADDRESS__INIT;
  empty.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_SET_CONTROLLER_ADDRESS;
  empty.set_controller_address = &none;
  reject(f, &empty, MF_ERR_INVALID_ARG);

  /* bounded row count; replacing a row at the bound still works */
  char raft[32], rpc[32];
  for (uint64_t id = 100; cn.controllers < MF_FSM_CONTROLLERS_MAX; id++) {
    snprintf(raft, sizeof(raft), "h:%llu", (unsigned long long)id);
    snprintf(rpc, sizeof(rpc), "r:%llu", (unsigned long long)id);
    assert_int_equal(set_addr(f, id, raft, rpc), MF_OK);
    mf_fsm_counts(f, &cn);
  }
  c = addr_cmd(&a, 99, "h:99", "r:99");
  reject(f, &c, MF_ERR_LIMIT);
  assert_int_equal(set_addr(f, 4, "h:4", "r:4"), MF_OK);
  mf_fsm_destroy(f);
}

static void test_controller_addresses_snapshot(void **state) {
  (void)state;
  mf_fsm_t *f = populated();
  assert_int_equal(set_addr(f, 3, "127.0.0.1:7103", "127.0.0.1:7203"), MF_OK);
  assert_int_equal(set_addr(f, 1, "127.0.0.1:7101", "127.0.0.1:7201"), MF_OK);
  uint8_t *snap;
  size_t len;
  assert_int_equal(mf_fsm_snapshot(f, &snap, &len), MF_OK);
  mf_fsm_t *g;
  assert_int_equal(mf_fsm_create(&g), MF_OK);
  assert_int_equal(set_addr(g, 7, "h:7", "r:7"), MF_OK); /* replaced by restore */
  assert_int_equal(mf_fsm_restore(g, snap, len), MF_OK);
  assert_true(mf_fsm_equal(f, g));
  assert_rpc(g, 3, "127.0.0.1:7203");
  assert_rpc(g, 7, NULL);
  char *a = mf_fsm_dump(f), *b = mf_fsm_dump(g);
  assert_string_equal(a, b);
  assert_non_null(strstr(b, "controller 1 raft=127.0.0.1:7101 rpc=127.0.0.1:7201\n"
                            "controller 3 raft=127.0.0.1:7103 rpc=127.0.0.1:7203\n"));
  free(a);
  free(b);
  /* Applying the same command on both keeps them equal (the restored table is live). */
  assert_int_equal(set_addr(f, 3, "", ""), MF_OK);
  assert_int_equal(set_addr(g, 3, "", ""), MF_OK);
  assert_true(mf_fsm_equal(f, g));
  free(snap);

  /* Snapshots with bad rows are refused and leave the state alone. */
  char *keep = mf_fsm_dump(g);
  Mafalda__Controller__ControllerAddress r1 = MAFALDA__CONTROLLER__CONTROLLER_ADDRESS__INIT;
  Mafalda__Controller__ControllerAddress r2 = MAFALDA__CONTROLLER__CONTROLLER_ADDRESS__INIT;
  Mafalda__Controller__ControllerAddress *rows[] = {&r1, &r2};
  static const struct {
    uint64_t id1, id2;
    const char *rpc2, *raft2;
    mf_err_t want;
  } bad[] = {
      {1, 1, "r:1", "h:1", MF_ERR_EXISTS},      /* listed twice */
      {1, 0, "r:0", "h:0", MF_ERR_INVALID_ARG}, /* id 0 */
      {1, 2, "", "h:2", MF_ERR_INVALID_ARG},    /* a removal is not a row */
      {1, 2, "r:2", "", MF_ERR_INVALID_ARG},    /* no raft address */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    r1.raft_id = bad[i].id1;
    r1.raft_address = (char *)"h:1";
    r1.rpc_address = (char *)"r:1";
    r2.raft_id = bad[i].id2;
    r2.raft_address = (char *)bad[i].raft2;
    r2.rpc_address = (char *)bad[i].rpc2;
    Mafalda__Controller__Snapshot s = MAFALDA__CONTROLLER__SNAPSHOT__INIT;
    s.version = 1;
    s.n_controllers = 2;
    s.controllers = rows;
    uint8_t buf[128];
    assert_true(mafalda__controller__snapshot__get_packed_size(&s) <= sizeof(buf));
    size_t n = mafalda__controller__snapshot__pack(&s, buf);
    assert_int_equal(mf_fsm_restore(g, buf, n), bad[i].want);
    char *now = mf_fsm_dump(g);
    assert_string_equal(keep, now);
    free(now);
  }
  free(keep);
  mf_fsm_destroy(f);
  mf_fsm_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_command),     cmocka_unit_test(test_invalid_commands),
      cmocka_unit_test(test_cascade_forget_node), cmocka_unit_test(test_cascade_dead_node),
      cmocka_unit_test(test_snapshot_restore),
      cmocka_unit_test(test_order_independent), cmocka_unit_test(test_malformed_bytes),
      cmocka_unit_test(test_router_names),      cmocka_unit_test(test_foreach),
      cmocka_unit_test(test_controller_addresses),
      cmocka_unit_test(test_controller_addresses_snapshot),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
