/* The agent's batches of gateway records (node/agent_batch.c), without threads or sockets:
 * which queued records a controller.ApplyBatch carries (count and byte caps, order, what
 * stays queued), how its answer is split back into one answer per record (results, a
 * failed call, a redirect, an answer that does not match), and the fallback to one record
 * per call when the controller does not know the method. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller/rpc_server.h"
#include "node/agent_internal.h"
#include "proto/controller.pb-c.h"

#define JOBS_MAX 80

/* What each record's done callback got. */
typedef struct {
  int calls;
  mf_err_t err;
  bool has_env;
  Mafalda__Rpc__Status status;
  char message[64];
  int32_t code;
  uint64_t index;
} answer_t;

typedef struct {
  mf_agent_t *agent;
  answer_t answers[JOBS_MAX];
  int order[JOBS_MAX]; /* record numbers in the order they were answered */
  int n_answered;
} fixture_t;

typedef struct {
  fixture_t *f;
  int number;
} record_t;

static record_t records[JOBS_MAX];

static void record_done(void *ud, mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  record_t *r = ud;
  answer_t *a = &r->f->answers[r->number];
  a->calls++;
  a->err = err;
  a->has_env = env != NULL;
  r->f->order[r->f->n_answered++] = r->number;
  if (!env) return;
  a->status = env->status;
  snprintf(a->message, sizeof a->message, "%s", env->error_message ? env->error_message : "");
  Mafalda__Controller__CommandResult *res = mafalda__controller__command_result__unpack(
      NULL, env->payload.len, env->payload.data);
  if (res) {
    a->code = res->code;
    a->index = res->index;
    mafalda__controller__command_result__free_unpacked(res, NULL);
  }
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  f->agent = calloc(1, sizeof *f->agent);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  for (agent_job_t *j = f->agent->ordered_head, *next; j; j = next) {
    next = j->next_ordered;
    mf_agent_job_free(j);
  }
  free(f->agent);
  free(f);
  return 0;
}

/* Queues record `number` with a payload of len bytes, each the byte `number`. */
static void enqueue(fixture_t *f, int number, size_t len) {
  agent_job_t *j = calloc(1, sizeof *j);
  assert_non_null(j);
  j->kind = AGENT_JOB_GATEWAY;
  j->method = MF_RPC_METHOD_APPLY;
  j->ordered = true;
  j->payload = malloc(len);
  assert_non_null(j->payload);
  memset(j->payload, number, len);
  j->len = len;
  records[number] = (record_t){f, number};
  j->done = record_done;
  j->done_ud = &records[number];
  mf_agent_t *a = f->agent;
  if (a->ordered_tail)
    a->ordered_tail->next_ordered = j;
  else
    a->ordered_head = j;
  a->ordered_tail = j;
}

static size_t queued(const mf_agent_t *a) {
  size_t n = 0;
  for (agent_job_t *j = a->ordered_head; j; j = j->next_ordered) n++;
  return n;
}

/* The batch's request carries records first..first+n-1, in order. */
static void check_request(const agent_job_t *b, int first, size_t n, size_t len) {
  assert_string_equal(b->method, MF_RPC_METHOD_APPLY_BATCH);
  assert_true(b->ordered);
  assert_int_equal(b->n_members, n);
  Mafalda__Controller__ApplyBatchRequest *req =
      mafalda__controller__apply_batch_request__unpack(NULL, b->len, b->payload);
  assert_non_null(req);
  assert_int_equal(req->n_commands, n);
  size_t i = 0;
  for (const agent_job_t *m = b->members; m; m = m->next_ordered, i++) {
    assert_true(i < n);
    assert_int_equal(req->commands[i].len, len);
    assert_int_equal(req->commands[i].data[0], (uint8_t)(first + i));
    assert_int_equal(((record_t *)m->done_ud)->number, first + (int)i);
  }
  assert_int_equal(i, n);
  mafalda__controller__apply_batch_request__free_unpacked(req, NULL);
}

static void free_batch(agent_job_t *b) {
  mf_agent_batch_finish(b, MF_ERR_CLOSED, NULL);
  mf_agent_job_free(b);
}

static void test_take_caps(void **state) {
  fixture_t *f = *state;
  mf_agent_t *a = f->agent;
  for (int i = 0; i < 70; i++) enqueue(f, i, 16);
  agent_job_t *b = mf_agent_batch_take(a);
  assert_non_null(b);
  check_request(b, 0, AGENT_BATCH_MAX, 16);
  assert_int_equal(queued(a), 70 - AGENT_BATCH_MAX);
  assert_int_equal(((record_t *)a->ordered_head->done_ud)->number, AGENT_BATCH_MAX);
  free_batch(b);
  b = mf_agent_batch_take(a);
  check_request(b, AGENT_BATCH_MAX, 70 - AGENT_BATCH_MAX, 16);
  assert_null(a->ordered_head);
  assert_null(a->ordered_tail);
  free_batch(b);
  for (int i = 0; i < 70; i++) assert_int_equal(f->answers[i].calls, 1);

  /* Byte cap: two records of 300 KiB do not share a batch; one always goes. */
  enqueue(f, 0, 300 * 1024);
  enqueue(f, 1, 300 * 1024);
  b = mf_agent_batch_take(a);
  check_request(b, 0, 1, 300 * 1024);
  assert_int_equal(queued(a), 1);
  free_batch(b);
  b = mf_agent_batch_take(a);
  check_request(b, 1, 1, 300 * 1024);
  assert_null(a->ordered_tail);
  free_batch(b);
}

/* An envelope as the controller answers, decoded as the agent gets it. */
static Mafalda__Rpc__Envelope *answer_envelope(Mafalda__Rpc__Status status, const char *error,
                                               const ProtobufCMessage *payload) {
  Mafalda__Rpc__Envelope env = MAFALDA__RPC__ENVELOPE__INIT;
  env.version = 1;
  env.status = status;
  env.error_message = (char *)error;
  uint8_t body[512];
  if (payload) {
    env.payload.len = protobuf_c_message_pack(payload, body);
    env.payload.data = body;
  }
  uint8_t wire[1024];
  size_t n = mafalda__rpc__envelope__pack(&env, wire);
  Mafalda__Rpc__Envelope *out = mafalda__rpc__envelope__unpack(NULL, n, wire);
  assert_non_null(out);
  return out;
}

static void test_finish_splits_answers(void **state) {
  fixture_t *f = *state;
  for (int i = 0; i < 3; i++) enqueue(f, i, 8);
  agent_job_t *b = mf_agent_batch_take(f->agent);
  Mafalda__Controller__CommandResult r[3] = {
      MAFALDA__CONTROLLER__COMMAND_RESULT__INIT, MAFALDA__CONTROLLER__COMMAND_RESULT__INIT,
      MAFALDA__CONTROLLER__COMMAND_RESULT__INIT};
  r[0].index = 41;
  r[0].message = (char *)"";
  r[1].code = MF_ERR_NOT_FOUND;
  r[1].message = (char *)"node 'ghost' not found";
  r[2].index = 42;
  r[2].message = (char *)"";
  Mafalda__Controller__CommandResult *rp[3] = {&r[0], &r[1], &r[2]};
  Mafalda__Controller__ApplyBatchResponse resp = MAFALDA__CONTROLLER__APPLY_BATCH_RESPONSE__INIT;
  resp.n_results = 3;
  resp.results = rp;
  Mafalda__Rpc__Envelope *env = answer_envelope(MAFALDA__RPC__STATUS__STATUS_OK, "", &resp.base);
  mf_agent_batch_finish(b, MF_OK, env);
  mafalda__rpc__envelope__free_unpacked(env, NULL);
  mf_agent_job_free(b);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(f->order[i], i);
    assert_int_equal(f->answers[i].calls, 1);
    assert_int_equal(f->answers[i].err, MF_OK);
    assert_true(f->answers[i].has_env);
  }
  assert_int_equal(f->answers[0].status, MAFALDA__RPC__STATUS__STATUS_OK);
  assert_int_equal(f->answers[0].index, 41);
  assert_int_equal(f->answers[1].status, mf_rpc_status_of(MF_ERR_NOT_FOUND));
  assert_int_equal(f->answers[1].code, MF_ERR_NOT_FOUND);
  assert_string_equal(f->answers[1].message, "node 'ghost' not found");
  assert_int_equal(f->answers[2].index, 42);
}

static void test_finish_failures(void **state) {
  fixture_t *f = *state;
  /* The call failed: each record gets that failure. */
  for (int i = 0; i < 2; i++) enqueue(f, i, 8);
  agent_job_t *b = mf_agent_batch_take(f->agent);
  mf_agent_batch_finish(b, MF_ERR_TIMEOUT, NULL);
  mf_agent_job_free(b);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(f->answers[i].err, MF_ERR_TIMEOUT);
    assert_false(f->answers[i].has_env);
  }
  /* The controller refused the whole batch (no leader): each sees that status. */
  for (int i = 2; i < 4; i++) enqueue(f, i, 8);
  b = mf_agent_batch_take(f->agent);
  Mafalda__Rpc__Envelope *env =
      answer_envelope(MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE, "no leader", NULL);
  mf_agent_batch_finish(b, MF_OK, env);
  mafalda__rpc__envelope__free_unpacked(env, NULL);
  mf_agent_job_free(b);
  for (int i = 2; i < 4; i++) {
    assert_true(f->answers[i].has_env);
    assert_int_equal(f->answers[i].status, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE);
    assert_string_equal(f->answers[i].message, "no leader");
  }
  /* OK, but one result for two records: a protocol error for both, not a guess. */
  for (int i = 4; i < 6; i++) enqueue(f, i, 8);
  b = mf_agent_batch_take(f->agent);
  Mafalda__Controller__CommandResult r = MAFALDA__CONTROLLER__COMMAND_RESULT__INIT, *rp = &r;
  Mafalda__Controller__ApplyBatchResponse resp = MAFALDA__CONTROLLER__APPLY_BATCH_RESPONSE__INIT;
  resp.n_results = 1;
  resp.results = &rp;
  env = answer_envelope(MAFALDA__RPC__STATUS__STATUS_OK, "", &resp.base);
  mf_agent_batch_finish(b, MF_OK, env);
  mafalda__rpc__envelope__free_unpacked(env, NULL);
  mf_agent_job_free(b);
  for (int i = 4; i < 6; i++) {
    assert_int_equal(f->answers[i].calls, 1);
    assert_int_equal(f->answers[i].err, MF_ERR_PARSE);
    assert_false(f->answers[i].has_env);
  }
  assert_int_equal(f->n_answered, 6);
}

static void test_requeue_for_old_controller(void **state) {
  fixture_t *f = *state;
  mf_agent_t *a = f->agent;
  for (int i = 0; i < 3; i++) enqueue(f, i, 8);
  agent_job_t *b = mf_agent_batch_take(a);
  enqueue(f, 3, 8); /* made while the batch was out */
  enqueue(f, 4, 8);
  /* Any other answer is not a refusal of the method. */
  b->reply.envelope = answer_envelope(MAFALDA__RPC__STATUS__STATUS_NOT_LEADER, "", NULL);
  assert_false(mf_agent_batch_requeue(a, b));
  assert_false(a->batch_refused);
  mf_rpc_reply_free(&b->reply);
  b->reply.envelope = answer_envelope(MAFALDA__RPC__STATUS__STATUS_UNKNOWN_METHOD,
                                      "unknown method", NULL);
  assert_true(mf_agent_batch_requeue(a, b));
  assert_true(a->batch_refused);
  assert_null(b->members);
  mf_agent_job_free(b);
  /* The batch's records are back first, then the newer ones: the order they were made. */
  int i = 0;
  for (agent_job_t *j = a->ordered_head; j; j = j->next_ordered, i++)
    assert_int_equal(((record_t *)j->done_ud)->number, i);
  assert_int_equal(i, 5);
  assert_int_equal(((record_t *)a->ordered_tail->done_ud)->number, 4);
  assert_int_equal(f->n_answered, 0); /* none answered: they are still to be sent */

  /* With nothing queued behind it, the last record of the batch becomes the tail. */
  fixture_t *g = calloc(1, sizeof *g);
  g->agent = calloc(1, sizeof *g->agent);
  enqueue(g, 10, 8);
  enqueue(g, 11, 8);
  b = mf_agent_batch_take(g->agent);
  b->reply.envelope = answer_envelope(MAFALDA__RPC__STATUS__STATUS_UNKNOWN_METHOD, "", NULL);
  assert_true(mf_agent_batch_requeue(g->agent, b));
  mf_agent_job_free(b);
  assert_int_equal(((record_t *)g->agent->ordered_head->done_ud)->number, 10);
  assert_int_equal(((record_t *)g->agent->ordered_tail->done_ud)->number, 11);
  void *gs = g;
  teardown(&gs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_take_caps, setup, teardown),
      cmocka_unit_test_setup_teardown(test_finish_splits_answers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_finish_failures, setup, teardown),
      cmocka_unit_test_setup_teardown(test_requeue_for_old_controller, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
