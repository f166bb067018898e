#include "controller/rpc_server.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hashmap.h"
#include "common/mailbox.h"
#include "common/pbnng.h"
#include "proto/cluster.pb-c.h"
#include "proto/rpc.pb-c.h"

#define MF_LOG_MODULE "rpc"
#include "common/log.h"

typedef Mafalda__Rpc__Envelope envelope_t;

enum { W_RECV, W_HANDLE, W_SEND };
enum { REPLY_COMMAND, REPLY_REGISTER, REPLY_CHANGE, REPLY_STATUS, REPLY_STATE };

/* One request slot: an nng context with its aio. A slot serves one request at a time,
 * from receive to send; while its answer waits for Raft, the slot is busy. */
typedef struct {
  mf_rpc_server_t *server;
  nng_ctx ctx;
  nng_aio *aio;
  int state;
  nng_msg *request;         /* set by the nng thread, taken by the loop */
  mf_mailbox_msg_t mb;      /* posts the request to the loop */
  uint64_t request_id;      /* of the request waiting for Raft */
  int reply_kind;
  const char *change_method; /* static string: which membership method is answered */
  char node_id[MF_FSM_ID_MAX + 1];
} slot_t;

struct mf_rpc_server {
  mf_raft_node_t *raft;
  mf_rpc_server_config_t config;
  nng_socket sock;
  bool sock_open;
  bool stopped;
  mf_mailbox_t mailbox;
  bool mailbox_open;
  slot_t *slots;
  unsigned n_slots;
  mf_hashmap_t *loads; /* node id (zero-padded key) -> Mafalda__Cluster__LoadReport * */
};

#define LOAD_KEY MF_FSM_ID_MAX

static void slot_cb(void *arg);

static void start_recv(slot_t *s) {
  s->state = W_RECV;
  nng_ctx_recv(s->ctx, s->aio);
}

/* ---- replies (loop thread) ---- */

static void send_envelope(slot_t *s, envelope_t *env) {
  mf_rpc_server_t *srv = s->server;
  if (srv->stopped) return;
  nng_msg *m = NULL;
  mf_err_t err = mf_pbnng_encode(&env->base, &m);
  if (err != MF_OK) {
    /* The answer itself is too large: say so instead. */
    envelope_t small = MAFALDA__RPC__ENVELOPE__INIT;
    small.version = 1;
    small.request_id = env->request_id;
    small.method = env->method;
    small.status = MAFALDA__RPC__STATUS__STATUS_TOO_LARGE;
    small.error_message = (char *)"response too large";
    if (mf_pbnng_encode(&small.base, &m) != MF_OK) {
      start_recv(s);
      return;
    }
  }
  s->state = W_SEND;
  nng_aio_set_msg(s->aio, m);
  nng_ctx_send(s->ctx, s->aio);
}

static void reply_status(slot_t *s, uint64_t request_id, const char *method,
                         Mafalda__Rpc__Status status, const char *error) {
  envelope_t env = MAFALDA__RPC__ENVELOPE__INIT;
  env.version = 1;
  env.request_id = request_id;
  env.method = (char *)(method ? method : "");
  env.status = status;
  env.error_message = (char *)(error ? error : "");
  send_envelope(s, &env);
}

static void reply_payload(slot_t *s, uint64_t request_id, const char *method,
                          Mafalda__Rpc__Status status, const char *error,
                          const ProtobufCMessage *payload) {
  envelope_t env = MAFALDA__RPC__ENVELOPE__INIT;
  env.version = 1;
  env.request_id = request_id;
  env.method = (char *)method;
  env.status = status;
  env.error_message = (char *)(error ? error : "");
  size_t len = protobuf_c_message_get_packed_size(payload);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) {
    reply_status(s, request_id, method, MAFALDA__RPC__STATUS__STATUS_ERROR, "out of memory");
    return;
  }
  protobuf_c_message_pack(payload, buf);
  env.payload.data = buf;
  env.payload.len = len;
  send_envelope(s, &env);
  free(buf);
}

static void reply_not_leader(slot_t *s, uint64_t request_id, const char *method) {
  const char *addr = "";
  uint64_t leader = mf_raft_node_leader(s->server->raft, &addr);
  if (leader == 0 || !addr[0]) {
    reply_status(s, request_id, method, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE,
                 "no leader known: retry later");
    return;
  }
  envelope_t env = MAFALDA__RPC__ENVELOPE__INIT;
  env.version = 1;
  env.request_id = request_id;
  env.method = (char *)method;
  env.status = MAFALDA__RPC__STATUS__STATUS_NOT_LEADER;
  env.error_message = (char *)"not the leader";
  env.leader_address = (char *)addr;
  send_envelope(s, &env);
}

static Mafalda__Rpc__Status status_of(mf_err_t code) {
  switch (code) {
    case MF_OK: return MAFALDA__RPC__STATUS__STATUS_OK;
    case MF_ERR_NOT_FOUND: return MAFALDA__RPC__STATUS__STATUS_NOT_FOUND;
    case MF_ERR_NO_MEMORY:
    case MF_ERR_INTERNAL: return MAFALDA__RPC__STATUS__STATUS_ERROR;
    default: return MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT;
  }
}

/* ---- writes through Raft ---- */

static void write_done(void *ud, mf_err_t status, mf_err_t code, const char *message,
                       uint64_t index) {
  slot_t *s = ud;
  if (s->server->stopped) return; /* the socket is gone; nobody to answer */
  const char *method = s->reply_kind == REPLY_REGISTER ? MF_RPC_METHOD_REGISTER_NODE
                                                       : MF_RPC_METHOD_APPLY;
  if (status == MF_ERR_STATE) {
    /* Leadership moved before the entry committed: it may still commit; the client retries
     * at the new leader (commands are validated, so a duplicate retry is refused). */
    reply_not_leader(s, s->request_id, method);
    return;
  }
  if (status != MF_OK) {
    reply_status(s, s->request_id, method, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE, message);
    return;
  }
  if (s->reply_kind == REPLY_REGISTER) {
    Mafalda__Cluster__RegisterNodeResponse resp = MAFALDA__CLUSTER__REGISTER_NODE_RESPONSE__INIT;
    const Mafalda__Controller__Node *n =
        mf_fsm_find_node(mf_raft_node_fsm(s->server->raft), s->node_id);
    resp.state = n ? (Mafalda__Cluster__NodeState)n->state
                   : MAFALDA__CLUSTER__NODE_STATE__NODE_STATE_UNSPECIFIED;
    reply_payload(s, s->request_id, method, status_of(code), code ? message : "", &resp.base);
    return;
  }
  Mafalda__Controller__CommandResult res = MAFALDA__CONTROLLER__COMMAND_RESULT__INIT;
  res.code = (int32_t)code;
  res.message = (char *)message;
  res.index = index;
  reply_payload(s, s->request_id, method, status_of(code), code ? message : "", &res.base);
}

static void submit_write(slot_t *s, const envelope_t *req,
                         const Mafalda__Controller__Command *cmd) {
  if (!mf_raft_node_is_leader(s->server->raft)) {
    reply_not_leader(s, req->request_id, req->method);
    return;
  }
  s->request_id = req->request_id;
  mf_err_t err = mf_raft_node_submit(s->server->raft, cmd, write_done, s);
  if (err == MF_ERR_STATE) {
    reply_not_leader(s, req->request_id, req->method);
  } else if (err != MF_OK) {
    reply_status(s, req->request_id, req->method, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE,
                 mf_strerror(err));
  }
}

/* ---- methods ---- */

static ProtobufCMessage *decode_payload(const ProtobufCMessageDescriptor *d,
                                        const envelope_t *req) {
  return protobuf_c_message_unpack(d, NULL, req->payload.len, req->payload.data);
}

static void bad_payload(slot_t *s, const envelope_t *req) {
  reply_status(s, req->request_id, req->method, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT,
               "payload does not decode");
}

static void handle_apply(slot_t *s, const envelope_t *req) {
  Mafalda__Controller__Command *cmd = (Mafalda__Controller__Command *)decode_payload(
      &mafalda__controller__command__descriptor, req);
  if (!cmd) return bad_payload(s, req);
  s->reply_kind = REPLY_COMMAND;
  submit_write(s, req, cmd);
  protobuf_c_message_free_unpacked(&cmd->base, NULL);
}

static void handle_create_router(slot_t *s, const envelope_t *req) {
  Mafalda__Controller__CreateRouter *cr = (Mafalda__Controller__CreateRouter *)decode_payload(
      &mafalda__controller__create_router__descriptor, req);
  if (!cr) return bad_payload(s, req);
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER;
  cmd.create_router = cr;
  s->reply_kind = REPLY_COMMAND;
  submit_write(s, req, &cmd);
  protobuf_c_message_free_unpacked(&cr->base, NULL);
}

static void handle_register_node(slot_t *s, const envelope_t *req) {
  Mafalda__Cluster__RegisterNodeRequest *r =
      (Mafalda__Cluster__RegisterNodeRequest *)decode_payload(
          &mafalda__cluster__register_node_request__descriptor, req);
  if (!r) return bad_payload(s, req);
  if (r->n_workers > MF_FSM_WORKERS_MAX) {
    protobuf_c_message_free_unpacked(&r->base, NULL);
    reply_status(s, req->request_id, req->method, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT,
                 "too many workers");
    return;
  }
  Mafalda__Controller__Worker w[MF_FSM_WORKERS_MAX], *wp[MF_FSM_WORKERS_MAX];
  for (size_t i = 0; i < r->n_workers; i++) {
    Mafalda__Controller__Worker init = MAFALDA__CONTROLLER__WORKER__INIT;
    w[i] = init;
    w[i].index = r->workers[i]->index;
    w[i].rtc_port = r->workers[i]->rtc_port;
    wp[i] = &w[i];
  }
  Mafalda__Controller__Node node = MAFALDA__CONTROLLER__NODE__INIT;
  node.id = r->node_id;
  node.name = r->name;
  node.rpc_address = r->rpc_address;
  node.gossip_address = r->gossip_address;
  node.announced_ip = r->announced_ip;
  node.n_workers = r->n_workers;
  node.workers = wp;
  Mafalda__Controller__RegisterNode reg = MAFALDA__CONTROLLER__REGISTER_NODE__INIT;
  reg.node = &node;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_REGISTER_NODE;
  cmd.register_node = &reg;
  s->reply_kind = REPLY_REGISTER;
  snprintf(s->node_id, sizeof(s->node_id), "%s", r->node_id ? r->node_id : "");
  submit_write(s, req, &cmd);
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void answer_status(slot_t *s, uint64_t request_id) {
  mf_raft_node_t *raft = s->server->raft;
  Mafalda__Controller__StatusResponse resp = MAFALDA__CONTROLLER__STATUS_RESPONSE__INIT;
  const char *addr = "";
  resp.id = mf_raft_node_id(raft);
  resp.leader_id = mf_raft_node_leader(raft, &addr);
  resp.leader_address = (char *)addr;
  resp.is_leader = mf_raft_node_is_leader(raft);
  resp.last_applied = mf_raft_node_last_applied(raft);
  resp.load_reports = s->server->loads ? (uint32_t)mf_hashmap_count(s->server->loads) : 0;
  char *dump = mf_fsm_dump(mf_raft_node_fsm(raft));
  if (!dump) {
    reply_status(s, request_id, MF_RPC_METHOD_STATUS, MAFALDA__RPC__STATUS__STATUS_ERROR,
                 "out of memory");
    return;
  }
  resp.dump = dump;
  reply_payload(s, request_id, MF_RPC_METHOD_STATUS, MAFALDA__RPC__STATUS__STATUS_OK, "",
                &resp.base);
  free(dump);
}

/* controller.State: the status fields without the text dump, the term, and the state as
 * a structured Snapshot (mafalda-ctl renders tables and JSON from it). */
static void answer_state(slot_t *s, uint64_t request_id) {
  mf_raft_node_t *raft = s->server->raft;
  Mafalda__Controller__StatusResponse st = MAFALDA__CONTROLLER__STATUS_RESPONSE__INIT;
  const char *addr = "";
  st.id = mf_raft_node_id(raft);
  st.leader_id = mf_raft_node_leader(raft, &addr);
  st.leader_address = (char *)addr;
  st.is_leader = mf_raft_node_is_leader(raft);
  st.last_applied = mf_raft_node_last_applied(raft);
  st.load_reports = s->server->loads ? (uint32_t)mf_hashmap_count(s->server->loads) : 0;
  uint8_t *packed = NULL;
  size_t len = 0;
  Mafalda__Controller__Snapshot *snap = NULL;
  if (mf_fsm_snapshot(mf_raft_node_fsm(raft), &packed, &len) == MF_OK)
    snap = mafalda__controller__snapshot__unpack(NULL, len, packed);
  free(packed);
  if (!snap) {
    reply_status(s, request_id, MF_RPC_METHOD_STATE, MAFALDA__RPC__STATUS__STATUS_ERROR,
                 "out of memory");
    return;
  }
  Mafalda__Controller__StateResponse resp = MAFALDA__CONTROLLER__STATE_RESPONSE__INIT;
  resp.status = &st;
  resp.term = mf_raft_node_term(raft);
  resp.state = snap;
  reply_payload(s, request_id, MF_RPC_METHOD_STATE, MAFALDA__RPC__STATUS__STATUS_OK, "",
                &resp.base);
  mafalda__controller__snapshot__free_unpacked(snap, NULL);
}

static void answer_read(slot_t *s, uint64_t request_id) {
  if (s->reply_kind == REPLY_STATE)
    answer_state(s, request_id);
  else
    answer_status(s, request_id);
}

static void status_barrier_done(void *ud, mf_err_t status) {
  slot_t *s = ud;
  if (s->server->stopped) return;
  const char *method = s->reply_kind == REPLY_STATE ? MF_RPC_METHOD_STATE : MF_RPC_METHOD_STATUS;
  if (status == MF_ERR_STATE)
    reply_not_leader(s, s->request_id, method);
  else if (status != MF_OK)
    reply_status(s, s->request_id, method, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE,
                 mf_strerror(status));
  else
    answer_read(s, s->request_id);
}

static void handle_status(slot_t *s, const envelope_t *req, int kind) {
  Mafalda__Controller__StatusRequest *sr = (Mafalda__Controller__StatusRequest *)
      decode_payload(&mafalda__controller__status_request__descriptor, req);
  if (!sr) return bad_payload(s, req);
  bool linearizable = sr->linearizable;
  protobuf_c_message_free_unpacked(&sr->base, NULL);
  s->reply_kind = kind;
  if (!linearizable) {
    answer_read(s, req->request_id);
    return;
  }
  if (!mf_raft_node_is_leader(s->server->raft)) {
    reply_not_leader(s, req->request_id, req->method);
    return;
  }
  s->request_id = req->request_id;
  mf_err_t err = mf_raft_node_barrier(s->server->raft, status_barrier_done, s);
  if (err == MF_ERR_STATE)
    reply_not_leader(s, req->request_id, req->method);
  else if (err != MF_OK)
    reply_status(s, req->request_id, req->method, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE,
                 mf_strerror(err));
}

static void free_load(const void *key, void *value, void *ud) {
  (void)key;
  (void)ud;
  protobuf_c_message_free_unpacked(value, NULL);
}

static void clear_loads(mf_rpc_server_t *srv) {
  if (!srv->loads || mf_hashmap_count(srv->loads) == 0) return;
  mf_hashmap_foreach(srv->loads, free_load, NULL);
  mf_hashmap_destroy(srv->loads);
  srv->loads = NULL;
  mf_hashmap_create(LOAD_KEY, 64, &srv->loads);
}

static bool load_key(const char *id, uint8_t key[LOAD_KEY]) {
  size_t n = id ? strnlen(id, LOAD_KEY + 1) : 0;
  if (n == 0 || n > LOAD_KEY) return false;
  memset(key, 0, LOAD_KEY);
  memcpy(key, id, n);
  return true;
}

const Mafalda__Cluster__LoadReport *mf_rpc_server_load(const mf_rpc_server_t *srv,
                                                      const char *node_id) {
  uint8_t key[LOAD_KEY];
  if (!srv->loads || !load_key(node_id, key)) return NULL;
  return mf_hashmap_get(srv->loads, key);
}

static void handle_report_load(slot_t *s, const envelope_t *req) {
  mf_rpc_server_t *srv = s->server;
  if (!mf_raft_node_is_leader(srv->raft)) {
    reply_not_leader(s, req->request_id, req->method);
    return;
  }
  Mafalda__Cluster__LoadReport *r = (Mafalda__Cluster__LoadReport *)decode_payload(
      &mafalda__cluster__load_report__descriptor, req);
  if (!r) return bad_payload(s, req);
  Mafalda__Cluster__LoadReportResponse resp = MAFALDA__CLUSTER__LOAD_REPORT_RESPONSE__INIT;
  uint8_t key[LOAD_KEY];
  resp.known_node = load_key(r->node_id, key) &&
                    mf_fsm_find_node(mf_raft_node_fsm(srv->raft), r->node_id) != NULL;
  if (resp.known_node && srv->loads) {
    Mafalda__Cluster__LoadReport *old = mf_hashmap_get(srv->loads, key);
    if (old && old->sequence >= r->sequence) {
      protobuf_c_message_free_unpacked(&r->base, NULL); /* stale or repeated */
    } else {
      if (old) {
        mf_hashmap_remove(srv->loads, key);
        protobuf_c_message_free_unpacked(&old->base, NULL);
      }
      if (mf_hashmap_put(srv->loads, key, r) != MF_OK)
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
  } else {
    protobuf_c_message_free_unpacked(&r->base, NULL);
  }
  reply_payload(s, req->request_id, req->method, MAFALDA__RPC__STATUS__STATUS_OK, "",
                &resp.base);
}

static void change_reply(void *ud, mf_err_t status, const char *message) {
  slot_t *s = ud;
  if (s->server->stopped) return;
  Mafalda__Controller__CommandResult res = MAFALDA__CONTROLLER__COMMAND_RESULT__INIT;
  res.code = (int32_t)status;
  res.message = (char *)message;
  Mafalda__Rpc__Status st = status == MF_OK          ? MAFALDA__RPC__STATUS__STATUS_OK
                            : status == MF_ERR_STATE ? MAFALDA__RPC__STATUS__STATUS_NOT_LEADER
                                                     : MAFALDA__RPC__STATUS__STATUS_ERROR;
  if (st == MAFALDA__RPC__STATUS__STATUS_NOT_LEADER) {
    reply_not_leader(s, s->request_id, s->change_method);
    return;
  }
  reply_payload(s, s->request_id, s->change_method, st, status ? message : "",
                &res.base);
}

static void handle_membership(slot_t *s, const envelope_t *req, bool add) {
  mf_rpc_server_t *srv = s->server;
  if (!mf_raft_node_is_leader(srv->raft)) {
    reply_not_leader(s, req->request_id, req->method);
    return;
  }
  mf_err_t err;
  s->request_id = req->request_id;
  s->reply_kind = REPLY_CHANGE;
  s->change_method = add ? MF_RPC_METHOD_ADD_VOTER : MF_RPC_METHOD_REMOVE_VOTER;
  if (add) {
    Mafalda__Controller__AddVoterRequest *a = (Mafalda__Controller__AddVoterRequest *)
        decode_payload(&mafalda__controller__add_voter_request__descriptor, req);
    if (!a) return bad_payload(s, req);
    err = mf_raft_node_add_voter(srv->raft, a->id, a->raft_address, a->rpc_address,
                                 change_reply, s);
    protobuf_c_message_free_unpacked(&a->base, NULL);
  } else {
    Mafalda__Controller__RemoveVoterRequest *r = (Mafalda__Controller__RemoveVoterRequest *)
        decode_payload(&mafalda__controller__remove_voter_request__descriptor, req);
    if (!r) return bad_payload(s, req);
    err = mf_raft_node_remove_server(srv->raft, r->id, change_reply, s);
    protobuf_c_message_free_unpacked(&r->base, NULL);
  }
  if (err == MF_ERR_STATE) {
    reply_not_leader(s, req->request_id, req->method);
  } else if (err == MF_ERR_INVALID_ARG) {
    reply_status(s, req->request_id, req->method, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT,
                 "bad id or address, or already a member");
  } else if (err != MF_OK) {
    reply_status(s, req->request_id, req->method, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE,
                 err == MF_ERR_FULL ? "another membership change is in progress"
                                    : mf_strerror(err));
  }
}

static void handle_request(mf_mailbox_msg_t *mb, void *owner) {
  slot_t *s = MF_CONTAINER_OF(mb, slot_t, mb);
  mf_rpc_server_t *srv = owner;
  nng_msg *msg = s->request;
  s->request = NULL;
  if (srv->stopped) {
    nng_msg_free(msg);
    return;
  }
  ProtobufCMessage *decoded = NULL;
  mf_err_t err = mf_pbnng_decode(&mafalda__rpc__envelope__descriptor, msg,
                                 srv->config.max_message, &decoded);
  nng_msg_free(msg);
  if (err == MF_ERR_LIMIT) {
    MF_LOG_WARN("request over %zu bytes refused", srv->config.max_message);
    reply_status(s, 0, "", MAFALDA__RPC__STATUS__STATUS_TOO_LARGE, "message too large");
    return;
  }
  if (err != MF_OK) {
    reply_status(s, 0, "", MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT,
                 "envelope does not decode");
    return;
  }
  envelope_t *req = (envelope_t *)decoded;
  const char *m = req->method ? req->method : "";
  /* Loads held from an earlier term would be stale when leadership comes back. */
  if (!mf_raft_node_is_leader(srv->raft)) clear_loads(srv);
  if (req->version != 1) {
    reply_status(s, req->request_id, m, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT,
                 "unsupported protocol version");
  } else if (strcmp(m, MF_RPC_METHOD_APPLY) == 0) {
    handle_apply(s, req);
  } else if (strcmp(m, MF_RPC_METHOD_CREATE_ROUTER) == 0) {
    handle_create_router(s, req);
  } else if (strcmp(m, MF_RPC_METHOD_REGISTER_NODE) == 0) {
    handle_register_node(s, req);
  } else if (strcmp(m, MF_RPC_METHOD_STATUS) == 0) {
    handle_status(s, req, REPLY_STATUS);
  } else if (strcmp(m, MF_RPC_METHOD_STATE) == 0) {
    handle_status(s, req, REPLY_STATE);
  } else if (strcmp(m, MF_RPC_METHOD_REPORT_LOAD) == 0) {
    handle_report_load(s, req);
  } else if (strcmp(m, MF_RPC_METHOD_ADD_VOTER) == 0) {
    handle_membership(s, req, true);
  } else if (strcmp(m, MF_RPC_METHOD_REMOVE_VOTER) == 0) {
    handle_membership(s, req, false);
  } else {
    reply_status(s, req->request_id, m, MAFALDA__RPC__STATUS__STATUS_UNKNOWN_METHOD,
                 "unknown method");
  }
  protobuf_c_message_free_unpacked(decoded, NULL);
}

/* ---- nng side (nng threads) ---- */

static void slot_cb(void *arg) {
  slot_t *s = arg;
  int rv = nng_aio_result(s->aio);
  if (s->state == W_SEND) {
    if (rv != 0) nng_msg_free(nng_aio_get_msg(s->aio));
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) return;
    start_recv(s);
    return;
  }
  if (rv != 0) {
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) return;
    start_recv(s);
    return;
  }
  s->request = nng_aio_get_msg(s->aio);
  s->state = W_HANDLE;
  if (mf_mailbox_post(&s->server->mailbox, &s->mb, handle_request) != MF_OK) {
    nng_msg_free(s->request);
    s->request = NULL;
  }
}

mf_err_t mf_rpc_server_start(uv_loop_t *loop, mf_raft_node_t *raft,
                             const mf_rpc_server_config_t *config, mf_rpc_server_t **out) {
  mf_rpc_server_t *srv = calloc(1, sizeof(*srv));
  if (!srv) return MF_ERR_NO_MEMORY;
  srv->raft = raft;
  srv->config = *config;
  if (!srv->config.max_message) srv->config.max_message = MF_PBNNG_MAX_MESSAGE;
  if (!srv->config.contexts) srv->config.contexts = 32;
  mf_err_t err = mf_hashmap_create(LOAD_KEY, 64, &srv->loads);
  if (!err) err = mf_mailbox_init(&srv->mailbox, loop, srv);
  if (err) {
    mf_hashmap_destroy(srv->loads);
    free(srv);
    return err;
  }
  srv->mailbox_open = true;
  int rv = nng_rep0_open(&srv->sock);
  if (rv == 0) {
    srv->sock_open = true;
    /* Somewhat above our limit so that a slightly oversize request still gets a
     * TOO_LARGE answer instead of a dropped connection. */
    rv = nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ, srv->config.max_message + 65536);
  }
  srv->slots = calloc(srv->config.contexts, sizeof(slot_t));
  if (!srv->slots) rv = NNG_ENOMEM;
  for (unsigned i = 0; rv == 0 && i < srv->config.contexts; i++) {
    slot_t *s = &srv->slots[i];
    s->server = srv;
    rv = nng_ctx_open(&s->ctx, srv->sock);
    if (rv == 0) rv = nng_aio_alloc(&s->aio, slot_cb, s);
    if (rv == 0) srv->n_slots++;
  }
  if (rv == 0) rv = nng_listen(srv->sock, srv->config.listen_url, NULL, 0);
  if (rv != 0) {
    MF_LOG_ERROR("rpc listen on %s failed: %s", srv->config.listen_url, nng_strerror(rv));
    mf_rpc_server_stop(srv);
    /* The mailbox handle closes on the next loop run; the caller runs the loop. */
    *out = srv;
    return MF_ERR_IO;
  }
  for (unsigned i = 0; i < srv->n_slots; i++) start_recv(&srv->slots[i]);
  MF_LOG_INFO("rpc listening on %s (%u contexts, max message %zu bytes)",
              srv->config.listen_url, srv->n_slots, srv->config.max_message);
  *out = srv;
  return MF_OK;
}

void mf_rpc_server_stop(mf_rpc_server_t *srv) {
  if (!srv || srv->stopped) return;
  srv->stopped = true;
  if (srv->sock_open) nng_close(srv->sock);
  srv->sock_open = false;
  /* Waits for callbacks in flight on nng's threads; they only post to the mailbox. */
  for (unsigned i = 0; i < srv->n_slots; i++) nng_aio_stop(srv->slots[i].aio);
  if (srv->mailbox_open) mf_mailbox_close(&srv->mailbox); /* drops queued requests */
  srv->mailbox_open = false;
}

void mf_rpc_server_destroy(mf_rpc_server_t *srv) {
  if (!srv) return;
  mf_rpc_server_stop(srv);
  for (unsigned i = 0; i < srv->n_slots; i++) {
    nng_aio_free(srv->slots[i].aio);
    if (srv->slots[i].request) nng_msg_free(srv->slots[i].request);
  }
  free(srv->slots);
  if (srv->loads) {
    mf_hashmap_foreach(srv->loads, free_load, NULL);
    mf_hashmap_destroy(srv->loads);
  }
  free(srv);
}
