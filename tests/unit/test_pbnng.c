#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <string.h>

#include "common/pbnng.h"
#include "proto/cluster.pb-c.h"
#include "proto/rpc.pb-c.h"

/* Wraps a RegisterNodeRequest in an rpc Envelope, as an agent will. */
static nng_msg *make_register_request(void) {
  Mafalda__Cluster__WorkerInfo w0 = MAFALDA__CLUSTER__WORKER_INFO__INIT;
  Mafalda__Cluster__WorkerInfo w1 = MAFALDA__CLUSTER__WORKER_INFO__INIT;
  w0.index = 0;
  w0.rtc_port = 40000;
  w0.cpu = 0;
  w1.index = 1;
  w1.rtc_port = 40001;
  w1.cpu = -1;
  Mafalda__Cluster__WorkerInfo *workers[] = {&w0, &w1};
  Mafalda__Cluster__RegisterNodeRequest req = MAFALDA__CLUSTER__REGISTER_NODE_REQUEST__INIT;
  req.node_id = "8f0e7c9a-3b1d-4c2e-9f8a-1b2c3d4e5f60";
  req.name = "node-a";
  req.rpc_address = "127.0.0.1:7000";
  req.n_workers = 2;
  req.workers = workers;

  uint8_t payload[512];
  size_t plen = mafalda__cluster__register_node_request__pack(&req, payload);
  Mafalda__Rpc__Envelope env = MAFALDA__RPC__ENVELOPE__INIT;
  env.version = 1;
  env.request_id = 77;
  env.method = "cluster.RegisterNode";
  env.payload.data = payload;
  env.payload.len = plen;
  nng_msg *msg = NULL;
  assert_int_equal(mf_pbnng_encode(&env.base, &msg), MF_OK);
  return msg;
}

static void test_envelope_round_trip_over_nng_reqrep(void **state) {
  nng_socket rep, req;
  assert_int_equal(nng_rep0_open(&rep), 0);
  assert_int_equal(nng_req0_open(&req), 0);
  nng_socket_set_ms(rep, NNG_OPT_RECVTIMEO, 5000);
  nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 5000);
  nng_socket_set_ms(req, NNG_OPT_SENDTIMEO, 5000);
  assert_int_equal(nng_listen(rep, "inproc://pbnng-test", NULL, 0), 0);
  assert_int_equal(nng_dial(req, "inproc://pbnng-test", NULL, 0), 0);

  assert_int_equal(nng_sendmsg(req, make_register_request(), 0), 0);

  /* server side: decode envelope, then the payload by method */
  nng_msg *in = NULL;
  assert_int_equal(nng_recvmsg(rep, &in, 0), 0);
  ProtobufCMessage *m = NULL;
  assert_int_equal(mf_pbnng_decode(&mafalda__rpc__envelope__descriptor, in, MF_PBNNG_MAX_MESSAGE, &m), MF_OK);
  nng_msg_free(in);
  Mafalda__Rpc__Envelope *env = (Mafalda__Rpc__Envelope *)m;
  assert_int_equal(env->request_id, 77);
  assert_string_equal(env->method, "cluster.RegisterNode");
  Mafalda__Cluster__RegisterNodeRequest *reg =
      mafalda__cluster__register_node_request__unpack(NULL, env->payload.len, env->payload.data);
  assert_non_null(reg);
  assert_string_equal(reg->name, "node-a");
  assert_int_equal(reg->n_workers, 2);
  assert_int_equal(reg->workers[1]->rtc_port, 40001);
  assert_int_equal(reg->workers[1]->cpu, -1);
  mafalda__cluster__register_node_request__free_unpacked(reg, NULL);

  Mafalda__Rpc__Envelope reply = MAFALDA__RPC__ENVELOPE__INIT;
  reply.version = 1;
  reply.request_id = env->request_id;
  reply.status = MAFALDA__RPC__STATUS__STATUS_NOT_LEADER;
  reply.leader_address = "127.0.0.2:7000";
  protobuf_c_message_free_unpacked(m, NULL);
  nng_msg *out = NULL;
  assert_int_equal(mf_pbnng_encode(&reply.base, &out), MF_OK);
  assert_int_equal(nng_sendmsg(rep, out, 0), 0);

  nng_msg *back = NULL;
  assert_int_equal(nng_recvmsg(req, &back, 0), 0);
  assert_int_equal(mf_pbnng_decode(&mafalda__rpc__envelope__descriptor, back, 1024, &m), MF_OK);
  env = (Mafalda__Rpc__Envelope *)m;
  assert_int_equal(env->status, MAFALDA__RPC__STATUS__STATUS_NOT_LEADER);
  assert_string_equal(env->leader_address, "127.0.0.2:7000");
  protobuf_c_message_free_unpacked(m, NULL);
  nng_msg_free(back);
  nng_close(req);
  nng_close(rep);
}

static void test_malformed_and_oversize_input(void **state) {
  nng_msg *msg;
  ProtobufCMessage *m = NULL;
  /* field 4 (bytes) claims 255 bytes but 1 follows */
  static const uint8_t truncated[] = {0x22, 0xff, 0x01, 0x00};
  assert_int_equal(nng_msg_alloc(&msg, 0), 0);
  assert_int_equal(nng_msg_append(msg, truncated, sizeof truncated), 0);
  assert_int_equal(mf_pbnng_decode(&mafalda__rpc__envelope__descriptor, msg, 1024, &m), MF_ERR_PARSE);
  assert_null(m);
  /* a valid message over the caller's limit is refused before parsing */
  nng_msg_free(msg);
  msg = make_register_request();
  assert_int_equal(mf_pbnng_decode(&mafalda__rpc__envelope__descriptor, msg, 8, &m), MF_ERR_LIMIT);
  assert_null(m);
  nng_msg_free(msg);
  /* an empty body is a valid, all-default proto3 message */
  assert_int_equal(nng_msg_alloc(&msg, 0), 0);
  assert_int_equal(mf_pbnng_decode(&mafalda__rpc__envelope__descriptor, msg, 1024, &m), MF_OK);
  assert_int_equal(((Mafalda__Rpc__Envelope *)m)->request_id, 0);
  protobuf_c_message_free_unpacked(m, NULL);
  nng_msg_free(msg);
}

static void test_load_report_round_trip(void **state) {
  Mafalda__Cluster__WorkerLoad w = MAFALDA__CLUSTER__WORKER_LOAD__INIT;
  w.index = 3;
  w.cpu = 0.25f;
  w.packets_in_per_sec = 12345;
  w.consumers = 500;
  Mafalda__Cluster__WorkerLoad *ws[] = {&w};
  Mafalda__Cluster__LoadReport r = MAFALDA__CLUSTER__LOAD_REPORT__INIT;
  r.node_id = "n";
  r.sequence = 9;
  r.n_workers = 1;
  r.workers = ws;
  nng_msg *msg;
  assert_int_equal(mf_pbnng_encode(&r.base, &msg), MF_OK);
  ProtobufCMessage *m;
  assert_int_equal(mf_pbnng_decode(&mafalda__cluster__load_report__descriptor, msg, 1024, &m), MF_OK);
  Mafalda__Cluster__LoadReport *got = (Mafalda__Cluster__LoadReport *)m;
  assert_int_equal(got->sequence, 9);
  assert_int_equal(got->workers[0]->consumers, 500);
  assert_true(got->workers[0]->cpu == 0.25f);
  protobuf_c_message_free_unpacked(m, NULL);
  nng_msg_free(msg);
}

static int teardown_nng(void **state) {
  nng_fini(); /* releases nng's internal threads so LeakSanitizer sees a clean exit */
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_envelope_round_trip_over_nng_reqrep),
      cmocka_unit_test(test_malformed_and_oversize_input),
      cmocka_unit_test(test_load_report_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, teardown_nng);
}
