/* The gateway's controller records in batches: up to AGENT_BATCH_MAX queued records go in
 * one controller.ApplyBatch call. In order on the leader, one round trip and (mostly) one
 * commit for all, where one call per record fell behind a busy gateway (the backlog took
 * 30 s to land in tests/integration/chaos_leader_api.c). Agent thread only. */
#define MF_LOG_MODULE "agent"
#include <stdlib.h>

#include "common/log.h"
#include "controller/rpc_server.h"
#include "node/agent_internal.h"
#include "proto/controller.pb-c.h"

agent_job_t *mf_agent_batch_take(mf_agent_t *a) {
  ProtobufCBinaryData items[AGENT_BATCH_MAX];
  size_t n = 0, bytes = 0;
  for (agent_job_t *m = a->ordered_head; m && n < AGENT_BATCH_MAX; m = m->next_ordered) {
    if (n && bytes + m->len > AGENT_BATCH_BYTES) break; /* well inside the RPC size limit */
    bytes += m->len;
    items[n++] = (ProtobufCBinaryData){m->len, m->payload};
  }
  Mafalda__Controller__ApplyBatchRequest req = MAFALDA__CONTROLLER__APPLY_BATCH_REQUEST__INIT;
  req.n_commands = n;
  req.commands = items;
  agent_job_t *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->len = mafalda__controller__apply_batch_request__get_packed_size(&req);
  b->payload = malloc(b->len);
  if (!b->payload) {
    free(b);
    return NULL;
  }
  mafalda__controller__apply_batch_request__pack(&req, b->payload);
  b->agent = a;
  b->kind = AGENT_JOB_GATEWAY;
  b->method = MF_RPC_METHOD_APPLY_BATCH;
  b->ordered = true;
  b->members = a->ordered_head;
  b->n_members = n;
  agent_job_t *last = a->ordered_head;
  for (size_t i = 1; i < n; i++) last = last->next_ordered;
  a->ordered_head = last->next_ordered;
  if (!a->ordered_head) a->ordered_tail = NULL;
  last->next_ordered = NULL;
  return b;
}

/* One record's answer out of the batch's: the envelope a single controller.Apply gets. */
static void batch_answer(agent_job_t *m, const Mafalda__Controller__CommandResult *r) {
  uint8_t *buf = malloc(mafalda__controller__command_result__get_packed_size(r) + 1);
  Mafalda__Rpc__Envelope env = MAFALDA__RPC__ENVELOPE__INIT;
  env.version = 1;
  env.method = (char *)m->method;
  env.status = mf_rpc_status_of((mf_err_t)r->code);
  env.error_message = r->code && r->message ? r->message : (char *)"";
  if (buf) {
    env.payload.len = mafalda__controller__command_result__pack(r, buf);
    env.payload.data = buf;
  }
  m->done(m->done_ud, MF_OK, &env);
  free(buf);
}

void mf_agent_batch_finish(agent_job_t *b, mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  Mafalda__Controller__ApplyBatchResponse *resp =
      err == MF_OK && env && env->status == MAFALDA__RPC__STATUS__STATUS_OK
          ? mafalda__controller__apply_batch_response__unpack(NULL, env->payload.len,
                                                              env->payload.data)
          : NULL;
  if (err == MF_OK && env && env->status == MAFALDA__RPC__STATUS__STATUS_OK &&
      (!resp || resp->n_results != b->n_members)) {
    MF_LOG_WARN("controller.ApplyBatch: the answer for %zu records does not decode (or "
                "counts %zu results)", b->n_members, resp ? resp->n_results : 0);
    if (resp) mafalda__controller__apply_batch_response__free_unpacked(resp, NULL);
    resp = NULL;
    err = MF_ERR_PARSE;
    env = NULL;
  }
  size_t i = 0;
  for (agent_job_t *m = b->members, *next; m; m = next, i++) {
    next = m->next_ordered;
    if (resp)
      batch_answer(m, resp->results[i]);
    else
      m->done(m->done_ud, err, env);
    mf_agent_job_free(m);
  }
  b->members = NULL;
  if (resp) mafalda__controller__apply_batch_response__free_unpacked(resp, NULL);
}

bool mf_agent_batch_requeue(mf_agent_t *a, agent_job_t *b) {
  const Mafalda__Rpc__Envelope *env = b->reply.envelope;
  if (b->err != MF_OK || !env || env->status != MAFALDA__RPC__STATUS__STATUS_UNKNOWN_METHOD)
    return false;
  MF_LOG_WARN("the controller at %s does not know controller.ApplyBatch: records go one "
              "per call", b->reply.url);
  a->batch_refused = true;
  agent_job_t *last = b->members;
  while (last->next_ordered) last = last->next_ordered;
  last->next_ordered = a->ordered_head;
  if (!a->ordered_head) a->ordered_tail = last;
  a->ordered_head = b->members;
  b->members = NULL;
  return true;
}
