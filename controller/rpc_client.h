/* A blocking client for the controller RPC (agents, mafalda-ctl, tests): one request, one
 * answer, over a fresh nng req socket per call, with a deadline. mf_rpc_call_leader follows
 * STATUS_NOT_LEADER redirects and tries the other replicas when one is down or has no
 * leader, until the deadline.
 *
 * Thread-safe (no shared state); blocks the calling thread: never call it on a loop that
 * must keep running. */
#ifndef MF_CONTROLLER_RPC_CLIENT_H
#define MF_CONTROLLER_RPC_CLIENT_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "proto/rpc.pb-c.h"

typedef struct {
  Mafalda__Rpc__Envelope *envelope; /* owned; NULL when no answer arrived */
  char url[160];                    /* the replica that answered */
} mf_rpc_reply_t;

/* One attempt at url ("tcp://host:port"). MF_OK when an answer arrived (any status); then
 * reply->envelope is set. MF_ERR_TIMEOUT / MF_ERR_IO when nothing came back.
 * With control-plane TLS configured (common/tls_config.h) the call goes over tls+tcp://
 * whatever the scheme of url; MF_ERR_AUTH: the TLS handshake failed (the server's
 * certificate is not signed by our CA, or it refused ours). */
mf_err_t mf_rpc_call(const char *url, const char *method, const ProtobufCMessage *request,
                     int timeout_ms, mf_rpc_reply_t *reply);

/* Tries urls[] (and leaders they point to) until one answers with a status other than
 * NOT_LEADER / UNAVAILABLE, or timeout_ms passes. *hint (may be NULL) is the index of the
 * url to try first and is updated to the one that answered, when it is in the list. */
mf_err_t mf_rpc_call_leader(const char *const *urls, size_t n_urls, size_t *hint,
                            const char *method, const ProtobufCMessage *request,
                            int timeout_ms, mf_rpc_reply_t *reply);

/* The same with the request already packed (callers that build it on another thread). */
mf_err_t mf_rpc_call_bytes(const char *url, const char *method, const uint8_t *payload,
                           size_t len, int timeout_ms, mf_rpc_reply_t *reply);
mf_err_t mf_rpc_call_leader_bytes(const char *const *urls, size_t n_urls, size_t *hint,
                                  const char *method, const uint8_t *payload, size_t len,
                                  int timeout_ms, mf_rpc_reply_t *reply);

void mf_rpc_reply_free(mf_rpc_reply_t *reply);

/* True when the replica at url answers controller.Status within timeout_ms and says it is
 * the leader (tools and tests waiting for an election). */
bool mf_rpc_is_leader(const char *url, int timeout_ms);

#endif
