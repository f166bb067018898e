/* Fuzzes the controller's state machine with the bytes a Raft log entry or a snapshot can
 * carry (anything a buggy or hostile replica could write):
 *  - the input as one Command on a fresh FSM and on one holding nodes, a router, shards,
 *    a producer and a pipe: a rejected command must leave the state exactly as it was,
 *    an applied one must survive snapshot -> restore unchanged;
 *  - the input as a sequence of commands ([u8 length][bytes]...) on a fresh FSM, so
 *    accepted commands build states the next ones are checked against;
 *  - the input as a Snapshot to mf_fsm_restore: refused = state kept, accepted = a state
 *    that round-trips. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controller/fsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond) {
  if (!cond) abort();
}

static void check_round_trip(const mf_fsm_t *fsm) {
  uint8_t *snap = NULL;
  size_t len = 0;
  must(mf_fsm_snapshot(fsm, &snap, &len) == MF_OK);
  mf_fsm_t *copy = NULL;
  must(mf_fsm_create(&copy) == MF_OK);
  must(mf_fsm_restore(copy, snap, len) == MF_OK);
  must(mf_fsm_equal(fsm, copy));
  char *a = mf_fsm_dump(fsm), *b = mf_fsm_dump(copy);
  must(a && b && strcmp(a, b) == 0);
  free(a);
  free(b);
  free(snap);
  mf_fsm_destroy(copy);
}

static void apply_ok(mf_fsm_t *fsm, const Mafalda__Controller__Command *cmd) {
  must(mf_fsm_apply_command(fsm, cmd, NULL, 0) == MF_OK);
}

static void add_node(mf_fsm_t *fsm, const char *id, unsigned workers) {
  Mafalda__Controller__Worker w[2], *wp[2];
  for (unsigned i = 0; i < workers; i++) {
    Mafalda__Controller__Worker init = MAFALDA__CONTROLLER__WORKER__INIT;
    w[i] = init;
    w[i].index = i;
    w[i].rtc_port = 40000 + i;
    wp[i] = &w[i];
  }
  Mafalda__Controller__Node node = MAFALDA__CONTROLLER__NODE__INIT;
  node.id = (char *)id;
  node.name = (char *)"edge";
  node.n_workers = workers;
  node.workers = wp;
  node.state = MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE;
  Mafalda__Controller__RegisterNode reg = MAFALDA__CONTROLLER__REGISTER_NODE__INIT;
  reg.node = &node;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_REGISTER_NODE;
  cmd.register_node = &reg;
  apply_ok(fsm, &cmd);
}

static void add_shard(mf_fsm_t *fsm, const char *node, uint32_t worker) {
  Mafalda__Controller__Shard sh = MAFALDA__CONTROLLER__SHARD__INIT;
  sh.router_id = (char *)"r1";
  sh.node_id = (char *)node;
  sh.worker = worker;
  Mafalda__Controller__AddShard as = MAFALDA__CONTROLLER__ADD_SHARD__INIT;
  as.shard = &sh;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_SHARD;
  cmd.add_shard = &as;
  apply_ok(fsm, &cmd);
}

/* Nodes n1 (2 workers) and n2 (1), router r1 on n1/0 and n2/0, producer p1 from n1/0,
 * piped to n2/0: the ids the corpus seeds refer to. */
static mf_fsm_t *populated(void) {
  mf_fsm_t *fsm = NULL;
  must(mf_fsm_create(&fsm) == MF_OK);
  add_node(fsm, "n1", 2);
  add_node(fsm, "n2", 1);
  Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
  r.id = (char *)"r1";
  r.name = (char *)"room";
  Mafalda__Controller__CreateRouter cr = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
  cr.router = &r;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER;
  cmd.create_router = &cr;
  apply_ok(fsm, &cmd);
  add_shard(fsm, "n1", 0);
  add_shard(fsm, "n2", 0);
  Mafalda__Controller__Producer p = MAFALDA__CONTROLLER__PRODUCER__INIT;
  p.id = (char *)"p1";
  p.router_id = (char *)"r1";
  p.node_id = (char *)"n1";
  p.kind = (char *)"audio";
  Mafalda__Controller__AddProducer ap = MAFALDA__CONTROLLER__ADD_PRODUCER__INIT;
  ap.producer = &p;
  Mafalda__Controller__Command c2 = MAFALDA__CONTROLLER__COMMAND__INIT;
  c2.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PRODUCER;
  c2.add_producer = &ap;
  apply_ok(fsm, &c2);
  Mafalda__Controller__Pipe pipe = MAFALDA__CONTROLLER__PIPE__INIT;
  pipe.producer_id = (char *)"p1";
  pipe.target_node_id = (char *)"n2";
  pipe.source_node_id = (char *)"n1";
  Mafalda__Controller__AddPipe apipe = MAFALDA__CONTROLLER__ADD_PIPE__INIT;
  apipe.pipe = &pipe;
  Mafalda__Controller__Command c3 = MAFALDA__CONTROLLER__COMMAND__INIT;
  c3.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PIPE;
  c3.add_pipe = &apipe;
  apply_ok(fsm, &c3);
  return fsm;
}

/* One command on fsm, compared with reference (an identical FSM left alone). */
static void apply_checked(mf_fsm_t *fsm, const mf_fsm_t *reference, const uint8_t *data,
                          size_t size) {
  char msg[MF_FSM_MESSAGE_MAX];
  msg[0] = '\0';
  mf_err_t err = mf_fsm_apply(fsm, data, size, msg, sizeof(msg));
  must(memchr(msg, '\0', sizeof(msg)) != NULL);
  if (err != MF_OK) {
    must(err != MF_ERR_NO_MEMORY ? mf_fsm_equal(fsm, reference) : 1);
  } else {
    check_round_trip(fsm);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mf_fsm_t *fresh = NULL, *empty = NULL;
  must(mf_fsm_create(&fresh) == MF_OK);
  must(mf_fsm_create(&empty) == MF_OK);
  apply_checked(fresh, empty, data, size);

  mf_fsm_t *full = populated(), *full_ref = populated();
  apply_checked(full, full_ref, data, size);

  /* Restore: refused keeps the populated state; accepted must round-trip. */
  mf_fsm_t *target = populated();
  if (mf_fsm_restore(target, data, size) == MF_OK)
    check_round_trip(target);
  else
    must(mf_fsm_equal(target, full_ref));

  /* A sequence of commands on a fresh FSM: each checked against a copy of the state
   * before it (rebuilt through snapshot/restore). */
  mf_fsm_t *seq = NULL;
  must(mf_fsm_create(&seq) == MF_OK);
  size_t off = 0;
  while (off < size) {
    size_t n = data[off++];
    if (n > size - off) n = size - off;
    uint8_t *snap = NULL;
    size_t len = 0;
    mf_fsm_t *before = NULL;
    must(mf_fsm_snapshot(seq, &snap, &len) == MF_OK);
    must(mf_fsm_create(&before) == MF_OK);
    must(mf_fsm_restore(before, snap, len) == MF_OK);
    free(snap);
    apply_checked(seq, before, data + off, n);
    mf_fsm_destroy(before);
    off += n;
  }
  char *dump = mf_fsm_dump(seq);
  must(dump != NULL);
  free(dump);

  mf_fsm_destroy(seq);
  mf_fsm_destroy(target);
  mf_fsm_destroy(full_ref);
  mf_fsm_destroy(full);
  mf_fsm_destroy(empty);
  mf_fsm_destroy(fresh);
  return 0;
}
