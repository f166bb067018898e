#include "common/rpc_endpoint.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mailbox.h"
#include "common/pbnng.h"
#include "common/tls_config.h"

#define MF_LOG_MODULE "rpc"
#include "common/log.h"

typedef Mafalda__Rpc__Envelope envelope_t;

enum { W_RECV, W_HANDLE, W_SEND };

/* One request slot: an nng context with its aio. A slot serves one request at a time, from
 * receive to send; while its answer is pending (e.g. waiting for Raft) the slot is busy. */
struct mf_rpc_request {
  mf_rpc_endpoint_t *ep;
  nng_ctx ctx;
  nng_aio *aio;
  int state;
  nng_msg *request;    /* set by the nng thread, taken by the loop */
  mf_mailbox_msg_t mb; /* posts the request to the loop */
  uint64_t request_id;
  char method[MF_RPC_METHOD_MAX + 1];
  void *user;
};

struct mf_rpc_endpoint {
  mf_rpc_endpoint_config_t config;
  char listen_url[160];
  nng_socket sock;
  bool sock_open;
  bool stopped;
  uint16_t port;
  mf_mailbox_t mailbox;
  bool mailbox_open;
  mf_rpc_request_t *slots;
  unsigned n_slots;
  uint8_t *user_area;
};

static void start_recv(mf_rpc_request_t *s) {
  s->state = W_RECV;
  nng_ctx_recv(s->ctx, s->aio);
}

static void send_envelope(mf_rpc_request_t *s, envelope_t *env) {
  nng_msg *m = NULL;
  if (mf_pbnng_encode(&env->base, &m) != MF_OK) {
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

void mf_rpc_reply(mf_rpc_request_t *s, Mafalda__Rpc__Status status, const char *error,
                  const ProtobufCMessage *payload) {
  if (s->ep->stopped || s->state != W_HANDLE) return;
  envelope_t env = MAFALDA__RPC__ENVELOPE__INIT;
  env.version = 1;
  env.request_id = s->request_id;
  env.method = s->method;
  env.status = status;
  env.error_message = (char *)(error ? error : "");
  uint8_t *buf = NULL;
  if (payload) {
    size_t len = protobuf_c_message_get_packed_size(payload);
    buf = malloc(len ? len : 1);
    if (!buf) {
      env.status = MAFALDA__RPC__STATUS__STATUS_ERROR;
      env.error_message = (char *)"out of memory";
    } else {
      protobuf_c_message_pack(payload, buf);
      env.payload.data = buf;
      env.payload.len = len;
    }
  }
  send_envelope(s, &env);
  free(buf);
}

void mf_rpc_reply_redirect(mf_rpc_request_t *s, const char *leader_address) {
  if (s->ep->stopped || s->state != W_HANDLE) return;
  if (!leader_address || !leader_address[0]) {
    mf_rpc_reply(s, MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE, "no leader known: retry later",
                 NULL);
    return;
  }
  envelope_t env = MAFALDA__RPC__ENVELOPE__INIT;
  env.version = 1;
  env.request_id = s->request_id;
  env.method = s->method;
  env.status = MAFALDA__RPC__STATUS__STATUS_NOT_LEADER;
  env.error_message = (char *)"not the leader";
  env.leader_address = (char *)leader_address;
  send_envelope(s, &env);
}

Mafalda__Rpc__Status mf_rpc_status_of(mf_err_t code) {
  switch (code) {
    case MF_OK: return MAFALDA__RPC__STATUS__STATUS_OK;
    case MF_ERR_NOT_FOUND: return MAFALDA__RPC__STATUS__STATUS_NOT_FOUND;
    case MF_ERR_NO_MEMORY:
    case MF_ERR_INTERNAL:
    case MF_ERR_IO: return MAFALDA__RPC__STATUS__STATUS_ERROR;
    case MF_ERR_CLOSED:
    case MF_ERR_TIMEOUT: return MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE;
    case MF_ERR_LIMIT: return MAFALDA__RPC__STATUS__STATUS_RESOURCE_EXHAUSTED;
    default: return MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT;
  }
}

ProtobufCMessage *mf_rpc_request_decode(mf_rpc_request_t *req, const envelope_t *env,
                                        const ProtobufCMessageDescriptor *d) {
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, env->payload.len, env->payload.data);
  if (!m)
    mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT, "payload does not decode",
                 NULL);
  return m;
}

uint64_t mf_rpc_request_id(const mf_rpc_request_t *req) { return req->request_id; }
const char *mf_rpc_request_method(const mf_rpc_request_t *req) { return req->method; }
void *mf_rpc_request_user(mf_rpc_request_t *req) { return req->user; }
mf_rpc_endpoint_t *mf_rpc_request_endpoint(mf_rpc_request_t *req) { return req->ep; }
bool mf_rpc_endpoint_stopped(const mf_rpc_endpoint_t *ep) { return ep->stopped; }
uint16_t mf_rpc_endpoint_port(const mf_rpc_endpoint_t *ep) { return ep->port; }

/* Loop thread: decode the envelope and hand it to the owner. */
static void handle_request(mf_mailbox_msg_t *mb, void *owner) {
  mf_rpc_request_t *s = MF_CONTAINER_OF(mb, mf_rpc_request_t, mb);
  mf_rpc_endpoint_t *ep = owner;
  nng_msg *msg = s->request;
  s->request = NULL;
  if (ep->stopped) {
    nng_msg_free(msg);
    return;
  }
  s->request_id = 0;
  s->method[0] = '\0';
  if (ep->config.user_size) memset(s->user, 0, ep->config.user_size);
  ProtobufCMessage *decoded = NULL;
  mf_err_t err = mf_pbnng_decode(&mafalda__rpc__envelope__descriptor, msg,
                                 ep->config.max_message, &decoded);
  nng_msg_free(msg);
  if (err == MF_ERR_LIMIT) {
    MF_LOG_WARN("%s: request over %zu bytes refused", ep->config.log_name,
                ep->config.max_message);
    mf_rpc_reply(s, MAFALDA__RPC__STATUS__STATUS_TOO_LARGE, "message too large", NULL);
    return;
  }
  if (err != MF_OK) {
    mf_rpc_reply(s, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT, "envelope does not decode",
                 NULL);
    return;
  }
  envelope_t *env = (envelope_t *)decoded;
  s->request_id = env->request_id;
  snprintf(s->method, sizeof s->method, "%s", env->method ? env->method : "");
  if (env->version != 1)
    mf_rpc_reply(s, MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT,
                 "unsupported protocol version", NULL);
  else
    ep->config.handler(ep->config.ud, s, env);
  protobuf_c_message_free_unpacked(decoded, NULL);
}

/* nng threads. */
static void slot_cb(void *arg) {
  mf_rpc_request_t *s = arg;
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
  if (mf_mailbox_post(&s->ep->mailbox, &s->mb, handle_request) != MF_OK) {
    nng_msg_free(s->request);
    s->request = NULL;
  }
}

mf_err_t mf_rpc_endpoint_start(uv_loop_t *loop, const mf_rpc_endpoint_config_t *config,
                               mf_rpc_endpoint_t **out) {
  if (!config || !config->handler || !config->listen_url) return MF_ERR_INVALID_ARG;
  mf_rpc_endpoint_t *ep = calloc(1, sizeof(*ep));
  if (!ep) return MF_ERR_NO_MEMORY;
  ep->config = *config;
  snprintf(ep->listen_url, sizeof ep->listen_url, "%s", config->listen_url);
  ep->config.listen_url = ep->listen_url;
  if (!ep->config.log_name) ep->config.log_name = "rpc";
  if (!ep->config.max_message) ep->config.max_message = MF_PBNNG_MAX_MESSAGE;
  if (!ep->config.contexts) ep->config.contexts = 32;
  mf_err_t err = mf_mailbox_init(&ep->mailbox, loop, ep);
  if (err) {
    free(ep);
    return err;
  }
  ep->mailbox_open = true;
  int rv = nng_rep0_open(&ep->sock);
  if (rv == 0) {
    ep->sock_open = true;
    /* Somewhat above our limit so that a slightly oversize request still gets a
     * TOO_LARGE answer instead of a dropped connection. */
    rv = nng_socket_set_size(ep->sock, NNG_OPT_RECVMAXSZ, ep->config.max_message + 65536);
  }
  ep->slots = calloc(ep->config.contexts, sizeof(mf_rpc_request_t));
  ep->user_area = calloc(ep->config.contexts, ep->config.user_size ? ep->config.user_size : 1);
  if (!ep->slots || !ep->user_area) rv = rv ? rv : NNG_ENOMEM;
  for (unsigned i = 0; rv == 0 && i < ep->config.contexts; i++) {
    mf_rpc_request_t *s = &ep->slots[i];
    s->ep = ep;
    s->user = ep->user_area + (size_t)i * ep->config.user_size;
    rv = nng_ctx_open(&s->ctx, ep->sock);
    if (rv == 0) rv = nng_aio_alloc(&s->aio, slot_cb, s);
    if (rv == 0) ep->n_slots++;
  }
  nng_listener l;
  /* tcp:// or tls+tcp:// by the process's control-plane TLS (common/tls_config.h). */
  if (rv == 0) mf_tls_listen(ep->sock, ep->listen_url, ep->config.log_name, &l, &rv);
  if (rv == 0) {
    int port = 0;
    if (nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) ep->port = (uint16_t)port;
  }
  if (rv != 0) {
    MF_LOG_ERROR("%s: listen on %s failed: %s", ep->config.log_name, ep->listen_url,
                 nng_strerror(rv));
    mf_rpc_endpoint_stop(ep);
    /* The mailbox handle closes on the next loop run; the caller runs the loop. */
    *out = ep;
    return MF_ERR_IO;
  }
  for (unsigned i = 0; i < ep->n_slots; i++) start_recv(&ep->slots[i]);
  char shown[200];
  if (mf_tls_url(ep->listen_url, shown, sizeof shown) != MF_OK)
    snprintf(shown, sizeof shown, "%s", ep->listen_url);
  char *colon = strrchr(shown, ':');
  if (colon && ep->port && strcmp(colon, ":0") == 0)
    snprintf(colon, sizeof shown - (size_t)(colon - shown), ":%u", ep->port);
  MF_LOG_INFO("%s listening on %s%s (%u contexts, max message %zu bytes)",
              ep->config.log_name, shown, mf_tls_control() ? " with mutual TLS" : "",
              ep->n_slots, ep->config.max_message);
  *out = ep;
  return MF_OK;
}

void mf_rpc_endpoint_stop(mf_rpc_endpoint_t *ep) {
  if (!ep || ep->stopped) return;
  ep->stopped = true;
  if (ep->sock_open) nng_close(ep->sock);
  ep->sock_open = false;
  /* Waits for callbacks in flight on nng's threads; they only post to the mailbox. */
  for (unsigned i = 0; i < ep->n_slots; i++) nng_aio_stop(ep->slots[i].aio);
  if (ep->mailbox_open) mf_mailbox_close(&ep->mailbox); /* drops queued requests */
  ep->mailbox_open = false;
}

void mf_rpc_endpoint_free(mf_rpc_endpoint_t *ep) {
  if (!ep) return;
  mf_rpc_endpoint_stop(ep);
  for (unsigned i = 0; i < ep->n_slots; i++) {
    nng_aio_free(ep->slots[i].aio);
    if (ep->slots[i].request) nng_msg_free(ep->slots[i].request);
  }
  free(ep->slots);
  free(ep->user_area);
  free(ep);
}
