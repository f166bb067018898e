#include "tests/support/test_cmd.h"

void mf_test_cmd_create_router(mf_test_apply_fn apply, Mafalda__Controller__Router *r) {
  Mafalda__Controller__CreateRouter cr = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
  cr.router = r;
  Mafalda__Controller__Command c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER;
  c.create_router = &cr;
  apply(&c);
}

void mf_test_cmd_add_shard(mf_test_apply_fn apply, const char *router_id, const char *node_id) {
  Mafalda__Controller__Shard sh = MAFALDA__CONTROLLER__SHARD__INIT;
  sh.router_id = (char *)router_id;
  sh.node_id = (char *)node_id;
  sh.worker = 0;
  Mafalda__Controller__AddShard as = MAFALDA__CONTROLLER__ADD_SHARD__INIT;
  as.shard = &sh;
  Mafalda__Controller__Command c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_SHARD;
  c.add_shard = &as;
  apply(&c);
}

void mf_test_cmd_add_producer(mf_test_apply_fn apply, const char *id, const char *router_id,
                              const char *node_id, const char *kind) {
  Mafalda__Controller__Producer p = MAFALDA__CONTROLLER__PRODUCER__INIT;
  p.id = (char *)id;
  p.router_id = (char *)router_id;
  p.node_id = (char *)node_id;
  p.worker = 0;
  p.kind = (char *)kind;
  Mafalda__Controller__AddProducer ap = MAFALDA__CONTROLLER__ADD_PRODUCER__INIT;
  ap.producer = &p;
  Mafalda__Controller__Command c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PRODUCER;
  c.add_producer = &ap;
  apply(&c);
}

void mf_test_cmd_add_pipe(mf_test_apply_fn apply, const char *producer_id,
                          const char *source_node_id, const char *target_node_id) {
  Mafalda__Controller__Pipe pipe = MAFALDA__CONTROLLER__PIPE__INIT;
  pipe.producer_id = (char *)producer_id;
  pipe.source_node_id = (char *)source_node_id;
  pipe.source_worker = 0;
  pipe.target_node_id = (char *)target_node_id;
  pipe.target_worker = 0;
  Mafalda__Controller__AddPipe apipe = MAFALDA__CONTROLLER__ADD_PIPE__INIT;
  apipe.pipe = &pipe;
  Mafalda__Controller__Command c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PIPE;
  c.add_pipe = &apipe;
  apply(&c);
}
