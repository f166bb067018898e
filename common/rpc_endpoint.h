/* The server side of every cluster RPC (controller replicas, node agents): an nng rep
 * socket over TCP with a fixed set of request slots (nng contexts), each carrying one
 * mafalda.rpc.Envelope (proto/rpc.proto) at a time. Requests are decoded and handed to the
 * owner's handler on the owner's libuv loop (through a mailbox), so handlers touch their
 * state without locks. A handler answers at once or later (e.g. after a Raft commit): the
 * slot stays busy until it answers, which bounds the requests in flight.
 *
 * Malformed envelopes, unsupported versions and oversize messages are answered by the
 * endpoint itself; the handler only sees version-1 envelopes. Messages above
 * max_message + 64 KiB are dropped by nng (the connection closes).
 *
 * Thread affinity: start/stop/free and every reply on the loop's thread; nng's threads only
 * receive and send. */
#ifndef MF_RPC_ENDPOINT_H
#define MF_RPC_ENDPOINT_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "proto/rpc.pb-c.h"

#define MF_RPC_METHOD_MAX 64

typedef struct mf_rpc_endpoint mf_rpc_endpoint_t;
/* One request being handled; owned by the endpoint, valid until it is answered (or the
 * endpoint stops: then replies are ignored). */
typedef struct mf_rpc_request mf_rpc_request_t;

/* Runs on the loop for each request. The envelope is freed when the handler returns: copy
 * what an asynchronous answer needs into mf_rpc_request_user(). */
typedef void (*mf_rpc_handler_fn)(void *ud, mf_rpc_request_t *req,
                                  const Mafalda__Rpc__Envelope *envelope);

typedef struct {
  const char *listen_url; /* e.g. "tcp://127.0.0.1:7001" */
  size_t max_message;     /* 0 = MF_PBNNG_MAX_MESSAGE */
  unsigned contexts;      /* requests in flight; 0 = 32 */
  size_t user_size;       /* bytes of per-request scratch for the handler (zeroed) */
  mf_rpc_handler_fn handler;
  void *ud;
  const char *log_name;   /* "rpc" / "node-rpc": who is listening, for logs */
} mf_rpc_endpoint_config_t;

/* On error (e.g. the address is in use) *out is still set to a stopped endpoint: run the
 * loop, then mf_rpc_endpoint_free it. */
mf_err_t mf_rpc_endpoint_start(uv_loop_t *loop, const mf_rpc_endpoint_config_t *config,
                               mf_rpc_endpoint_t **out);

/* The bound TCP port (useful with port 0), 0 when not listening. */
uint16_t mf_rpc_endpoint_port(const mf_rpc_endpoint_t *ep);

/* Stops serving: closes the socket and drops requests in flight (clients time out or
 * retry). Later replies are ignored. */
void mf_rpc_endpoint_stop(mf_rpc_endpoint_t *ep);
bool mf_rpc_endpoint_stopped(const mf_rpc_endpoint_t *ep);

/* After stop and once no asynchronous answer can still arrive. NULL is ignored. */
void mf_rpc_endpoint_free(mf_rpc_endpoint_t *ep);

uint64_t mf_rpc_request_id(const mf_rpc_request_t *req);
const char *mf_rpc_request_method(const mf_rpc_request_t *req);
void *mf_rpc_request_user(mf_rpc_request_t *req);
mf_rpc_endpoint_t *mf_rpc_request_endpoint(mf_rpc_request_t *req);

/* Answers (exactly once per request). payload may be NULL. */
void mf_rpc_reply(mf_rpc_request_t *req, Mafalda__Rpc__Status status, const char *error,
                  const ProtobufCMessage *payload);
/* STATUS_NOT_LEADER pointing at leader_address, or STATUS_UNAVAILABLE when it is unknown
 * (NULL or ""). */
void mf_rpc_reply_redirect(mf_rpc_request_t *req, const char *leader_address);

/* Decodes the envelope's payload as d; NULL (and an INVALID_ARGUMENT answer already sent)
 * when it does not decode. Free with protobuf_c_message_free_unpacked. */
ProtobufCMessage *mf_rpc_request_decode(mf_rpc_request_t *req,
                                        const Mafalda__Rpc__Envelope *envelope,
                                        const ProtobufCMessageDescriptor *d);

/* The rpc status that carries an mf_err_t outcome. */
Mafalda__Rpc__Status mf_rpc_status_of(mf_err_t code);

#endif
