/* The node's public API server on one HTTP address (nng 1.5 HTTP server + WebSocket):
 *   GET /healthz        200 "ok"
 *   GET /metrics        Prometheus text from the caller's callback + the server's own
 *   GET <prefix>/...    static files from a directory (optional; prefix default "/app",
 *                       and "/" redirects to "<prefix>/")
 *   WS  /v1/ws?token=T  the JSON API (node/api/protocol.h), one session per connection
 *
 * Auth: the token is an HS256 JWT (node/api/jwt.h) checked against config.secret when the
 * connection opens; a bad or missing token gets an error message and the connection is
 * closed. With no secret the server runs in DEV MODE (every connection is an admin named
 * "dev"), allowed only on a loopback address and logged loudly.
 *
 * Thread affinity: every callback (method handlers, on_open, on_close, metrics) runs on
 * one of nng's internal threads, possibly concurrently for different sessions. Never
 * block in them: hand the work to the owning worker's mailbox. For ONE session, requests
 * are handed to handlers one at a time, in arrival order (the next message is read after
 * the handler returns); the answers may come in any order. mf_api_call_* and
 * mf_api_session_notify/ref/unref/close may be called from any thread. create/destroy
 * belong to the thread that owns the server (the node's main thread). */
#ifndef MF_API_HTTP_SERVER_H
#define MF_API_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "node/api/jwt.h"
#include "node/api/protocol.h"

typedef struct mf_api_server mf_api_server_t;
typedef struct mf_api_session mf_api_session_t;

#define MF_API_WS_PATH "/v1/ws"
/* Without ?token=, the first message must be {"method":"auth","data":{"token":...}},
 * within this many milliseconds. */
#define MF_API_AUTH_TIMEOUT_MS 10000u
#define MF_API_SEND_QUEUE_MAX (16u * 1024 * 1024) /* bytes queued to one slow client before it is dropped */
#define MF_API_WS_RECV_MAX (1024u * 1024)        /* nng closes (1009) above this; 256 KiB .. 1 MiB get an error reply */

/* Writes Prometheus text into buf (cap bytes) and returns the length it needs, like
 * snprintf; the server retries with a larger buffer when the result is >= cap. */
typedef size_t (*mf_api_metrics_fn)(void *ctx, char *buf, size_t cap);
/* A session passed authentication (on_open) or ended (on_close, exactly once per opened
 * session, after which no handler of it runs). In on_close the session is still valid;
 * keep a reference (mf_api_session_ref) to use it later. */
typedef void (*mf_api_session_fn)(void *ctx, mf_api_session_t *session);
/* Issue 12 (limits): called for every message of an authenticated session before it is
 * handled (method: the request's, "" when the message did not parse). MF_OK handles it;
 * another code answers it with that error and `why` (no handler runs); setting *close then
 * closes the session once that error is sent. Same thread rules as handlers. */
typedef mf_err_t (*mf_api_admit_fn)(void *ctx, mf_api_session_t *session, const char *method,
                                    char *why, size_t whysz, bool *close);

typedef struct {
  const char *listen;        /* "host:port", e.g. "0.0.0.0:8080" or "127.0.0.1:0" (any free port) */
  const uint8_t *secret;     /* HS256 key; NULL/0 = dev mode (loopback listen only) */
  size_t secret_len;
  const char *static_dir;    /* NULL = no static files */
  const char *static_prefix; /* URL prefix for static_dir, default "/app" */
  const mf_api_method_t *methods; /* NULL-terminated table, looked up after built-ins */
  void *ctx;                      /* passed to every callback */
  mf_api_session_fn on_open;
  mf_api_session_fn on_close;
  mf_api_metrics_fn metrics;
  mf_api_admit_fn admit; /* NULL: every message is handled */
  /* A WebSocket session quiet for this long gets a {"event":"system.keepalive"}
   * notification (0: never). A peer that is gone makes the send fail, which closes the
   * session: this also reaps a connection whose close the WebSocket layer never reported
   * (docs/reliability.md). */
  unsigned keepalive_ms;
} mf_api_server_config_t;

/* Starts serving. The secret and the strings are copied; the methods table and ctx
 * must outlive the server. MF_ERR_INVALID_ARG for a bad listen address
 * or dev mode on a non-loopback address, MF_ERR_IO if nng cannot listen. */
mf_err_t mf_api_server_create(const mf_api_server_config_t *config, mf_api_server_t **out);

/* The port actually bound (useful with port 0). */
uint16_t mf_api_server_port(const mf_api_server_t *server);
bool mf_api_server_dev_mode(const mf_api_server_t *server);

/* Stops listening, closes every session (on_close runs for each), then waits until every
 * mf_api_call_t has been answered and every session reference dropped: the owner must
 * make sure pending calls get answered (e.g. failed with MF_ERR_CLOSED). NULL is a no-op. */
void mf_api_server_destroy(mf_api_server_t *server);

/* --- sessions (any thread) --- */
uint64_t mf_api_session_id(const mf_api_session_t *session);  /* unique per server, from 1 */
const mf_jwt_claims_t *mf_api_session_claims(const mf_api_session_t *session); /* immutable */
/* One pointer of caller state, e.g. set in on_open. Not synchronised: set it before
 * other threads can see the session (in on_open). */
void mf_api_session_set_user(mf_api_session_t *session, void *user);
void *mf_api_session_get_user(const mf_api_session_t *session);
void mf_api_session_ref(mf_api_session_t *session);
void mf_api_session_unref(mf_api_session_t *session);
/* Sends {"event","target","data"}; data is stolen. MF_ERR_CLOSED after the connection
 * ended, MF_ERR_FULL if the client is too slow (the session is then closed). */
mf_err_t mf_api_session_notify(mf_api_session_t *session, const char *event,
                               const char *target, json_t *data);
/* Closes the connection after the messages already queued are sent; later replies and
 * notifications are dropped (MF_ERR_CLOSED). on_close follows. */
void mf_api_session_close(mf_api_session_t *session);
/* True once on_close runs or has run for the session: whatever the application collects
 * there is all it will collect, so an object made for the session later must be closed by
 * whoever made it. Any thread. */
bool mf_api_session_ended(mf_api_session_t *session);

/* --- calls: one request awaiting its answer (any thread, exactly one answer each) --- */
mf_api_session_t *mf_api_call_session(const mf_api_call_t *call); /* valid until answered */
int64_t mf_api_call_id(const mf_api_call_t *call);
const char *mf_api_call_method(const mf_api_call_t *call);
/* Answers {"ok":true,"data":data} (data stolen, NULL = {}) and frees the call. Returns
 * MF_ERR_CLOSED if the connection is gone (the answer is dropped; the call is freed). */
mf_err_t mf_api_call_reply(mf_api_call_t *call, json_t *data);
/* Answers {"ok":false,"error":{"code":mf_err_name(code),"message":...}}; frees the call.
 * fmt NULL gives mf_strerror(code). */
mf_err_t mf_api_call_fail(mf_api_call_t *call, mf_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --- virtual sessions: API sessions without a WebSocket (WHIP/WHEP, node/whip.h) ---
 * Whatever the server would send to the client (replies, errors, notifications) goes to
 * sink instead, called from the replying thread with the session's lock held: the sink
 * must only copy the text and return (never call back into the server).
 * mf_api_session_close on a virtual session only stops the delivery; its owner still ends
 * it with mf_api_session_end. Owners end their virtual sessions before
 * mf_api_server_destroy, which waits for every session. */
typedef void (*mf_api_sink_fn)(void *ctx, const char *text, size_t len);
struct nng_http_server;
/* The nng HTTP server the API runs on, to add handlers (valid until destroy). */
struct nng_http_server *mf_api_server_http(mf_api_server_t *server);
/* Checks a JWT as a connection's ?token= would be (dev mode: admin claims, any token).
 * MF_ERR_AUTH with why set when refused. Any thread. */
mf_err_t mf_api_server_check_token(mf_api_server_t *server, const char *token, size_t len,
                                   mf_jwt_claims_t *claims, char *why, size_t whysz);
/* Opens a session with these claims (on_open runs); the caller holds its connection
 * reference until mf_api_session_end. MF_ERR_CLOSED when the server is stopping. */
mf_err_t mf_api_session_open_virtual(mf_api_server_t *server, const mf_jwt_claims_t *claims,
                                     mf_api_sink_fn sink, void *sink_ctx,
                                     mf_api_session_t **out);
/* Handles text as a message received on the session (the method runs on this thread). */
void mf_api_session_submit(mf_api_session_t *session, const char *text, size_t len);
/* Ends a virtual session: nothing more reaches the sink once this returns, on_close runs,
 * and the connection reference is dropped. Call once, not from the sink. */
void mf_api_session_end(mf_api_session_t *session);

/* Splits "host:port" ("[v6]:port" too) and tells whether host is loopback (127/8, ::1,
 * localhost). Exposed for tests and the node's flag validation. */
mf_err_t mf_api_listen_parse(const char *listen, char *host, size_t host_cap, uint16_t *port,
                             bool *loopback);

#endif
