/* The controller RPC server in-process: a single-voter Raft node (real raft_uv on a temp
 * directory, loopback TCP) on a loop thread, a blocking client on the test thread.
 * Writes, status, rejected commands, batches of writes, and bad input (malformed envelope,
 * malformed payload, unknown method, wrong version, oversize) all answered while the server
 * keeps serving. */
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

#include "controller/raft_node.h"
#include "controller/rpc_client.h"
#include "controller/rpc_server.h"
#include "proto/cluster.pb-c.h"
#include "tests/support/test_proc.h"
#include "tests/support/test_replica.h"

#define MAX_MESSAGE (64 * 1024)

typedef struct {
  mf_test_replica_t rep;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  mf_rpc_server_config_t sc = {.max_message = MAX_MESSAGE,
                               .contexts = 4};
  assert_int_equal(mf_test_replica_start(&f->rep, "/tmp/mf-ctl-rpc", 16, &sc), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  assert_int_equal(mf_test_replica_stop(&f->rep), 0);
  free(f);
  return 0;
}

/* Waits until the single voter is leader and answers writes. */
static void create_router(fixture_t *f, const char *id, Mafalda__Rpc__Status want) {
  Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
  r.id = (char *)id;
  r.codecs_json = (char *)"[]";
  Mafalda__Controller__CreateRouter cr = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
  cr.router = &r;
  const char *urls[] = {f->rep.url};
  mf_rpc_reply_t reply;
  assert_int_equal(mf_rpc_call_leader(urls, 1, NULL, MF_RPC_METHOD_CREATE_ROUTER, &cr.base,
                                      10000, &reply),
                   MF_OK);
  assert_int_equal(reply.envelope->status, want);
  Mafalda__Controller__CommandResult *res = mafalda__controller__command_result__unpack(
      NULL, reply.envelope->payload.len, reply.envelope->payload.data);
  assert_non_null(res);
  assert_int_equal(res->code == MF_OK, want == MAFALDA__RPC__STATUS__STATUS_OK);
  assert_true(res->index > 0);
  mafalda__controller__command_result__free_unpacked(res, NULL);
  mf_rpc_reply_free(&reply);
}

static char *status_dump(fixture_t *f) {
  mf_rpc_reply_t reply;
  Mafalda__Controller__StatusRequest req = MAFALDA__CONTROLLER__STATUS_REQUEST__INIT;
  req.linearizable = true; /* after a barrier: every acknowledged write is in */
  assert_int_equal(mf_rpc_call(f->rep.url, MF_RPC_METHOD_STATUS, &req.base, 5000, &reply), MF_OK);
  assert_int_equal(reply.envelope->status, MAFALDA__RPC__STATUS__STATUS_OK);
  Mafalda__Controller__StatusResponse *st = mafalda__controller__status_response__unpack(
      NULL, reply.envelope->payload.len, reply.envelope->payload.data);
  assert_non_null(st);
  assert_int_equal(st->id, 1);
  char *dump = strdup(st->dump);
  mafalda__controller__status_response__free_unpacked(st, NULL);
  mf_rpc_reply_free(&reply);
  return dump;
}

static void test_writes_and_status(void **state) {
  fixture_t *f = *state;
  create_router(f, "r1", MAFALDA__RPC__STATUS__STATUS_OK);
  create_router(f, "r1", MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT); /* exists */
  for (int i = 0; i < 40; i++) { /* past the snapshot threshold */
    char id[16];
    snprintf(id, sizeof(id), "bulk%02d", i);
    create_router(f, id, MAFALDA__RPC__STATUS__STATUS_OK);
  }

  /* cluster.RegisterNode (the agent's message) */
  Mafalda__Cluster__WorkerInfo w0 = MAFALDA__CLUSTER__WORKER_INFO__INIT, *wp = &w0;
  w0.rtc_port = 40000;
  Mafalda__Cluster__RegisterNodeRequest reg = MAFALDA__CLUSTER__REGISTER_NODE_REQUEST__INIT;
  reg.node_id = (char *)"node-a";
  reg.name = (char *)"host-a";
  reg.rpc_address = (char *)"127.0.0.1:7300";
  reg.n_workers = 1;
  reg.workers = &wp;
  mf_rpc_reply_t reply;
  assert_int_equal(mf_rpc_call(f->rep.url, MF_RPC_METHOD_REGISTER_NODE, &reg.base, 5000, &reply),
                   MF_OK);
  assert_int_equal(reply.envelope->status, MAFALDA__RPC__STATUS__STATUS_OK);
  Mafalda__Cluster__RegisterNodeResponse *rr = mafalda__cluster__register_node_response__unpack(
      NULL, reply.envelope->payload.len, reply.envelope->payload.data);
  assert_non_null(rr);
  assert_int_equal(rr->state, MAFALDA__CLUSTER__NODE_STATE__NODE_STATE_JOINING);
  mafalda__cluster__register_node_response__free_unpacked(rr, NULL);
  mf_rpc_reply_free(&reply);

  /* controller.Apply with a command referring to an unknown node: NOT_FOUND. */
  Mafalda__Controller__SetNodeState sns = MAFALDA__CONTROLLER__SET_NODE_STATE__INIT;
  sns.node_id = (char *)"ghost";
  sns.state = MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_SET_NODE_STATE;
  cmd.set_node_state = &sns;
  assert_int_equal(mf_rpc_call(f->rep.url, MF_RPC_METHOD_APPLY, &cmd.base, 5000, &reply), MF_OK);
  assert_int_equal(reply.envelope->status, MAFALDA__RPC__STATUS__STATUS_NOT_FOUND);
  assert_non_null(strstr(reply.envelope->error_message, "ghost"));
  mf_rpc_reply_free(&reply);
  sns.node_id = (char *)"node-a";
  assert_int_equal(mf_rpc_call(f->rep.url, MF_RPC_METHOD_APPLY, &cmd.base, 5000, &reply), MF_OK);
  assert_int_equal(reply.envelope->status, MAFALDA__RPC__STATUS__STATUS_OK);
  mf_rpc_reply_free(&reply);

  /* cluster.ReportLoad: kept in memory for known nodes only. */
  const char *nodes[] = {"node-x", "node-a", "node-a"};
  const bool known[] = {false, true, true};
  for (int i = 0; i < 3; i++) {
    Mafalda__Cluster__LoadReport lr = MAFALDA__CLUSTER__LOAD_REPORT__INIT;
    lr.node_id = (char *)nodes[i];
    lr.sequence = 5; /* the repeat is ignored as stale */
    assert_int_equal(mf_rpc_call(f->rep.url, MF_RPC_METHOD_REPORT_LOAD, &lr.base, 5000, &reply),
                     MF_OK);
    assert_int_equal(reply.envelope->status, MAFALDA__RPC__STATUS__STATUS_OK);
    Mafalda__Cluster__LoadReportResponse *lresp =
        mafalda__cluster__load_report_response__unpack(NULL, reply.envelope->payload.len,
                                                       reply.envelope->payload.data);
    assert_non_null(lresp);
    assert_int_equal(lresp->known_node, known[i]);
    mafalda__cluster__load_report_response__free_unpacked(lresp, NULL);
    mf_rpc_reply_free(&reply);
  }
  Mafalda__Controller__StatusRequest sreq = MAFALDA__CONTROLLER__STATUS_REQUEST__INIT;
  assert_int_equal(mf_rpc_call(f->rep.url, MF_RPC_METHOD_STATUS, &sreq.base, 5000, &reply), MF_OK);
  Mafalda__Controller__StatusResponse *st = mafalda__controller__status_response__unpack(
      NULL, reply.envelope->payload.len, reply.envelope->payload.data);
  assert_non_null(st);
  assert_true(st->is_leader);
  assert_int_equal(st->leader_id, 1);
  assert_int_equal(st->load_reports, 1);
  mafalda__controller__status_response__free_unpacked(st, NULL);
  mf_rpc_reply_free(&reply);

  char *dump = status_dump(f);
  assert_non_null(strstr(dump, "node node-a state=active name=\"host-a\" rpc=127.0.0.1:7300"));
  assert_non_null(strstr(dump, "router r1 "));
  assert_non_null(strstr(dump, "router bulk39 "));
  free(dump);
}

/* Sends raw bytes on a req socket and decodes the answer envelope. */
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

static void test_bad_input(void **state) {
  fixture_t *f = *state;
  create_router(f, "first", MAFALDA__RPC__STATUS__STATUS_OK);

  /* Not an envelope at all. */
  static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x07};
  Mafalda__Rpc__Envelope *env = raw_call(f, junk, sizeof(junk));
  assert_int_equal(env->status, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT);
  mafalda__rpc__envelope__free_unpacked(env, NULL);

  /* Envelopes with a bad version, unknown method, undecodable payload. */
  struct {
    uint32_t version;
    const char *method;
    const char *payload;
    size_t len;
    Mafalda__Rpc__Status want;
  } table[] = {
      {2, MF_RPC_METHOD_STATUS, "", 0, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT},
      {1, "controller.Nope", "", 0, MAFALDA__RPC__STATUS__STATUS_UNKNOWN_METHOD},
      {1, "", "", 0, MAFALDA__RPC__STATUS__STATUS_UNKNOWN_METHOD},
      {1, MF_RPC_METHOD_APPLY, "\xff\xff", 2, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT},
      {1, MF_RPC_METHOD_CREATE_ROUTER, "\x0a\x09", 2,
       MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT},
      {1, MF_RPC_METHOD_REGISTER_NODE, "\x3a\x05\x08", 3,
       MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT},
      {1, MF_RPC_METHOD_APPLY, "", 0, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT}, /* empty */
      {1, MF_RPC_METHOD_APPLY_BATCH, "\x0a\x09", 2,
       MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT}, /* an item longer than the payload */
      {1, MF_RPC_METHOD_REPORT_LOAD, "\x22\x7f", 2,
       MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT},
      {1, MF_RPC_METHOD_ADD_VOTER, "\x12\x7f", 2, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT},
      {1, MF_RPC_METHOD_ADD_VOTER, "", 0, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT}, /* id 0 */
      {1, MF_RPC_METHOD_REMOVE_VOTER, "\x08", 1, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT},
      {1, MF_RPC_METHOD_STATUS, "\x08", 1, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT},
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    Mafalda__Rpc__Envelope req = MAFALDA__RPC__ENVELOPE__INIT;
    req.version = table[i].version;
    req.request_id = 1000 + i;
    req.method = (char *)table[i].method;
    req.payload.data = (uint8_t *)table[i].payload;
    req.payload.len = table[i].len;
    uint8_t buf[256];
    size_t n = mafalda__rpc__envelope__pack(&req, buf);
    env = raw_call(f, buf, n);
    if (env->status != table[i].want)
      fail_msg("row %zu: status %d want %d (%s)", i, env->status, table[i].want,
               env->error_message);
    assert_int_equal(env->request_id, 1000 + i);
    mafalda__rpc__envelope__free_unpacked(env, NULL);
  }

  /* Oversize: above our limit but within nng's margin -> TOO_LARGE. */
  size_t big = MAX_MESSAGE + 1000;
  uint8_t *blob = calloc(1, big);
  env = raw_call(f, blob, big);
  assert_int_equal(env->status, MAFALDA__RPC__STATUS__STATUS_TOO_LARGE);
  mafalda__rpc__envelope__free_unpacked(env, NULL);
  free(blob);

  /* Still serving, state intact. */
  create_router(f, "second", MAFALDA__RPC__STATUS__STATUS_OK);
  char *dump = status_dump(f);
  assert_non_null(strstr(dump, "router first "));
  assert_non_null(strstr(dump, "router second "));
  free(dump);
}

static size_t pack_command(const Mafalda__Controller__Command *cmd, uint8_t *buf) {
  return mafalda__controller__command__pack(cmd, buf);
}

static size_t pack_create(const char *id, uint8_t *buf) {
  Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
  r.id = (char *)id;
  r.codecs_json = (char *)"[]";
  Mafalda__Controller__CreateRouter cr = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
  cr.router = &r;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER;
  cmd.create_router = &cr;
  return pack_command(&cmd, buf);
}

/* controller.ApplyBatch: one outcome per command, in the order given (the second create of
 * the same id is the one refused, the close after it sees the router), an undecodable item
 * refused alone, and the state holding exactly what was applied. */
static void test_apply_batch(void **state) {
  fixture_t *f = *state;
  create_router(f, "warm", MAFALDA__RPC__STATUS__STATUS_OK); /* leader, answering writes */
  uint8_t bufs[6][128];
  ProtobufCBinaryData items[6];
  items[0] = (ProtobufCBinaryData){pack_create("rb1", bufs[0]), bufs[0]};
  items[1] = (ProtobufCBinaryData){pack_create("rb1", bufs[1]), bufs[1]};
  Mafalda__Controller__CloseRouter close = MAFALDA__CONTROLLER__CLOSE_ROUTER__INIT;
  close.router_id = (char *)"rb1";
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CLOSE_ROUTER;
  cmd.close_router = &close;
  items[2] = (ProtobufCBinaryData){pack_command(&cmd, bufs[2]), bufs[2]};
  items[3] = (ProtobufCBinaryData){2, (uint8_t *)"\xff\xff"};
  Mafalda__Controller__SetNodeState sns = MAFALDA__CONTROLLER__SET_NODE_STATE__INIT;
  sns.node_id = (char *)"ghost";
  sns.state = MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE;
  Mafalda__Controller__Command cmd2 = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd2.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_SET_NODE_STATE;
  cmd2.set_node_state = &sns;
  items[4] = (ProtobufCBinaryData){pack_command(&cmd2, bufs[4]), bufs[4]};
  items[5] = (ProtobufCBinaryData){pack_create("rb2", bufs[5]), bufs[5]};
  Mafalda__Controller__ApplyBatchRequest req = MAFALDA__CONTROLLER__APPLY_BATCH_REQUEST__INIT;
  req.n_commands = 6;
  req.commands = items;
  mf_rpc_reply_t reply;
  assert_int_equal(mf_rpc_call(f->rep.url, MF_RPC_METHOD_APPLY_BATCH, &req.base, 5000, &reply),
                   MF_OK);
  assert_int_equal(reply.envelope->status, MAFALDA__RPC__STATUS__STATUS_OK);
  Mafalda__Controller__ApplyBatchResponse *resp =
      mafalda__controller__apply_batch_response__unpack(NULL, reply.envelope->payload.len,
                                                        reply.envelope->payload.data);
  assert_non_null(resp);
  assert_int_equal(resp->n_results, 6);
  const mf_err_t want[6] = {MF_OK, MF_ERR_EXISTS, MF_OK, MF_ERR_PARSE, MF_ERR_NOT_FOUND, MF_OK};
  uint64_t last_index = 0;
  for (size_t i = 0; i < 6; i++) {
    const Mafalda__Controller__CommandResult *r = resp->results[i];
    if (r->code != (int32_t)want[i])
      fail_msg("result %zu: code %d (%s), want %d", i, r->code, r->message, want[i]);
    if (want[i] == MF_OK) { /* committed in the order given */
      assert_true(r->index > last_index);
      last_index = r->index;
      assert_string_equal(r->message, "");
    } else {
      assert_int_equal(r->index, 0);
      assert_true(r->message[0] != '\0');
    }
  }
  assert_non_null(strstr(resp->results[4]->message, "ghost"));
  mafalda__controller__apply_batch_response__free_unpacked(resp, NULL);
  mf_rpc_reply_free(&reply);
  char *dump = status_dump(f);
  assert_null(strstr(dump, "router rb1 "));
  assert_non_null(strstr(dump, "router rb2 "));
  free(dump);

  /* Empty, and one command too many: refused whole, nothing applied. */
  static ProtobufCBinaryData many[MF_RPC_APPLY_BATCH_MAX + 1];
  uint8_t one[128];
  size_t one_len = pack_create("rb3", one);
  for (size_t i = 0; i <= MF_RPC_APPLY_BATCH_MAX; i++) many[i] = (ProtobufCBinaryData){one_len, one};
  const size_t counts[] = {0, MF_RPC_APPLY_BATCH_MAX + 1};
  for (size_t k = 0; k < 2; k++) {
    req.n_commands = counts[k];
    req.commands = many;
    assert_int_equal(mf_rpc_call(f->rep.url, MF_RPC_METHOD_APPLY_BATCH, &req.base, 5000, &reply),
                     MF_OK);
    assert_int_equal(reply.envelope->status, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(reply.envelope->error_message, "commands"));
    mf_rpc_reply_free(&reply);
  }
  dump = status_dump(f);
  assert_null(strstr(dump, "router rb3 "));
  free(dump);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_writes_and_status, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_apply_batch, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
