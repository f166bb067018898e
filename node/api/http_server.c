#define MF_LOG_MODULE "api"
#include "node/api/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/util/platform.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* A refused connection waits this long for the client to close it, reading (and dropping)
 * at most REFUSED_READS_MAX messages meanwhile. */
#define REFUSED_LINGER_MS 2000
#define REFUSED_READS_MAX 8

typedef struct out_msg {
  struct out_msg *next;
  size_t len;
  char text[];
} out_msg_t;

struct mf_api_session {
  mf_api_server_t *server;
  nng_stream *stream;
  nng_aio *rx;
  nng_aio *tx;
  atomic_int refs;
  uint64_t id;
  mf_jwt_claims_t claims;
  void *user;
  bool opened; /* authenticated: on_open ran, so on_close will */
  atomic_bool ended; /* on_close runs or ran (mf_api_session_ended) */
  _Atomic uint64_t last_rx_ms; /* nng_clock() of the last message received (keepalive) */
  bool awaiting_auth; /* no ?token=: the first message must be {"method":"auth"} */
  /* ?token= refused: the error is sent, and the connection stays until the client closes
   * it (or REFUSED_LINGER_MS): closing at once, with the client's first request unread,
   * resets the connection, and the reset can destroy the error before the client reads it */
  bool refused;
  unsigned refused_reads;
  mf_api_sink_fn sink; /* virtual session (no stream): outgoing text goes here */
  void *sink_ctx;

  pthread_mutex_t mu; /* guards everything below */
  out_msg_t *head, *tail;
  size_t queued;
  bool sending;
  bool closed;      /* stream closed (or closing): nothing more is sent */
  bool drain_close; /* close once the queue is empty */

  mf_api_session_t *prev, *next; /* server list, under server->mu */
};

struct mf_api_call {
  mf_api_session_t *session; /* holds a reference */
  int64_t id;
  char method[MF_API_METHOD_MAX + 1];
};

struct mf_api_server {
  mf_api_server_config_t cfg;
  char host[256];
  uint16_t port;
  bool dev_mode;
  char static_prefix[128];
  char redirect_target[136];
  char static_dir[1024]; /* copy: the caller's string need not outlive create */

  nng_http_server *http;
  bool http_started; /* nng shares one server per address in a process: stop only ours */
  nng_stream_listener *listener;
  nng_aio *accept_aio;
  nng_aio *keepalive_aio; /* the keepalive sweep's timer (keepalive_ms > 0) */

  pthread_mutex_t mu;
  pthread_cond_t cv;
  mf_api_session_t *sessions;
  size_t live; /* sessions not yet freed */
  bool stopping;
  uint64_t next_id;

  atomic_ullong stat_sessions_total;
  atomic_ullong stat_auth_failures;
  atomic_ullong stat_requests;
  atomic_ullong stat_errors;
};

/* ---------- listen address ---------- */

mf_err_t mf_api_listen_parse(const char *listen, char *host, size_t host_cap, uint16_t *port,
                             bool *loopback) {
  if (!listen || !host || host_cap == 0) return MF_ERR_INVALID_ARG;
  const char *colon = strrchr(listen, ':');
  if (!colon || colon == listen) return MF_ERR_INVALID_ARG;
  size_t hlen = (size_t)(colon - listen);
  const char *h = listen;
  if (h[0] == '[') {
    if (hlen < 3 || h[hlen - 1] != ']') return MF_ERR_INVALID_ARG;
    h++;
    hlen -= 2;
  } else if (memchr(h, ':', hlen)) {
    return MF_ERR_INVALID_ARG; /* IPv6 needs brackets */
  }
  if (hlen == 0 || hlen >= host_cap) return MF_ERR_INVALID_ARG;
  const char *p = colon + 1;
  if (!*p || strlen(p) > 5) return MF_ERR_INVALID_ARG;
  unsigned long v = 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9') return MF_ERR_INVALID_ARG;
    v = v * 10 + (unsigned long)(*p - '0');
  }
  if (v > 65535) return MF_ERR_INVALID_ARG;
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  for (size_t i = 0; i < hlen; i++)
    if (host[i] <= ' ' || host[i] == '/' || host[i] == '?' || host[i] == '#' || host[i] == '@')
      return MF_ERR_INVALID_ARG;
  if (port) *port = (uint16_t)v;
  if (loopback) {
    struct in_addr a4;
    struct in6_addr a6;
    *loopback = strcmp(host, "localhost") == 0 ||
                (inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127) ||
                (inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6));
  }
  return MF_OK;
}

/* ---------- sessions ---------- */

static void session_free(mf_api_session_t *s) {
  mf_api_server_t *sv = s->server;
  pthread_mutex_lock(&sv->mu);
  if (s->prev) s->prev->next = s->next;
  else sv->sessions = s->next;
  if (s->next) s->next->prev = s->prev;
  sv->live--;
  pthread_cond_broadcast(&sv->cv);
  pthread_mutex_unlock(&sv->mu);
  /* We may be inside one of this session's aio callbacks: nng_aio_reap defers the free
   * until the callback has returned (nng_aio_free would wait for itself). */
  if (s->stream) nng_stream_free(s->stream);
  if (s->rx) nng_aio_reap(s->rx);
  if (s->tx) nng_aio_reap(s->tx);
  for (out_msg_t *m = s->head, *n; m; m = n) {
    n = m->next;
    free(m);
  }
  pthread_mutex_destroy(&s->mu);
  free(s);
}

void mf_api_session_ref(mf_api_session_t *s) {
  if (s) atomic_fetch_add(&s->refs, 1);
}

void mf_api_session_unref(mf_api_session_t *s) {
  if (s && atomic_fetch_sub(&s->refs, 1) == 1) session_free(s);
}

uint64_t mf_api_session_id(const mf_api_session_t *s) { return s ? s->id : 0; }
const mf_jwt_claims_t *mf_api_session_claims(const mf_api_session_t *s) {
  return s ? &s->claims : NULL;
}
void mf_api_session_set_user(mf_api_session_t *s, void *user) {
  if (s) s->user = user;
}
void *mf_api_session_get_user(const mf_api_session_t *s) { return s ? s->user : NULL; }

/* Marks the session closed and closes the stream; pending rx/tx complete with errors on
 * nng threads, which drop their references. Called with s->mu held. */
static void session_close_locked(mf_api_session_t *s) {
  if (s->closed) return;
  s->closed = true;
  if (s->stream) nng_stream_close(s->stream);
}

void mf_api_session_close(mf_api_session_t *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  if (s->sending || s->head) s->drain_close = true;
  else session_close_locked(s);
  pthread_mutex_unlock(&s->mu);
}

/* Starts sending the queue head. Called with s->mu held and !s->sending. */
static void tx_start_locked(mf_api_session_t *s) {
  out_msg_t *m = s->head;
  nng_msg *msg = NULL;
  if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, m->text, m->len) != 0) {
    if (msg) nng_msg_free(msg);
    MF_LOG_WARN("session %llu: out of memory sending; closing", (unsigned long long)s->id);
    session_close_locked(s);
    return;
  }
  s->sending = true;
  mf_api_session_ref(s); /* held by the pending send */
  nng_aio_set_msg(s->tx, msg);
  nng_stream_send(s->stream, s->tx);
}

static void tx_cb(void *arg) {
  mf_api_session_t *s = arg;
  int rv = nng_aio_result(s->tx);
  if (rv != 0) {
    nng_msg *msg = nng_aio_get_msg(s->tx); /* not consumed on failure */
    if (msg) {
      nng_aio_set_msg(s->tx, NULL);
      nng_msg_free(msg);
    }
  }
  pthread_mutex_lock(&s->mu);
  s->sending = false;
  out_msg_t *m = s->head;
  if (m) {
    s->head = m->next;
    if (!s->head) s->tail = NULL;
    s->queued -= m->len;
    free(m);
  }
  if (rv != 0) {
    session_close_locked(s);
  } else if (!s->closed && s->head) {
    tx_start_locked(s);
  } else if (!s->closed && s->drain_close) {
    session_close_locked(s);
  }
  pthread_mutex_unlock(&s->mu);
  mf_api_session_unref(s);
}

/* Queues text (copied) for sending; takes ownership of nothing. */
static mf_err_t session_send(mf_api_session_t *s, const char *text, size_t len) {
  if (s->sink) {
    pthread_mutex_lock(&s->mu);
    bool closed = s->closed;
    if (!closed) s->sink(s->sink_ctx, text, len);
    pthread_mutex_unlock(&s->mu);
    return closed ? MF_ERR_CLOSED : MF_OK;
  }
  out_msg_t *m = malloc(sizeof *m + len);
  if (!m) return MF_ERR_NO_MEMORY;
  m->next = NULL;
  m->len = len;
  memcpy(m->text, text, len);
  mf_err_t err = MF_OK;
  pthread_mutex_lock(&s->mu);
  if (s->closed || s->drain_close) {
    err = MF_ERR_CLOSED;
  } else if (s->queued + len > MF_API_SEND_QUEUE_MAX) {
    MF_LOG_WARN("session %llu: client reads too slowly (%zu bytes queued); closing",
                (unsigned long long)s->id, s->queued);
    session_close_locked(s);
    err = MF_ERR_FULL;
  } else {
    if (s->tail) s->tail->next = m;
    else s->head = m;
    s->tail = m;
    s->queued += len;
    m = NULL;
    if (!s->sending) tx_start_locked(s);
  }
  pthread_mutex_unlock(&s->mu);
  free(m);
  return err;
}

static mf_err_t session_send_owned(mf_api_session_t *s, char *text, size_t len) {
  if (!text) return MF_ERR_NO_MEMORY;
  mf_err_t err = session_send(s, text, len);
  free(text);
  return err;
}

static mf_err_t send_error(mf_api_session_t *s, bool has_id, int64_t id, mf_err_t code,
                           const char *message) {
  atomic_fetch_add(&s->server->stat_errors, 1);
  size_t len = 0;
  char *text = mf_api_response_error(has_id, id, code, message, &len);
  return session_send_owned(s, text, len);
}

mf_err_t mf_api_session_notify(mf_api_session_t *s, const char *event, const char *target,
                               json_t *data) {
  if (!s || !event) {
    json_decref(data);
    return MF_ERR_INVALID_ARG;
  }
  size_t len = 0;
  char *text = mf_api_notification(event, target, data, &len);
  return session_send_owned(s, text, len);
}

/* ---------- calls ---------- */

mf_api_session_t *mf_api_call_session(const mf_api_call_t *call) {
  return call ? call->session : NULL;
}
int64_t mf_api_call_id(const mf_api_call_t *call) { return call ? call->id : -1; }
const char *mf_api_call_method(const mf_api_call_t *call) { return call ? call->method : ""; }

static void call_free(mf_api_call_t *call) {
  mf_api_session_unref(call->session);
  free(call);
}

mf_err_t mf_api_call_reply(mf_api_call_t *call, json_t *data) {
  if (!call) {
    json_decref(data);
    return MF_ERR_INVALID_ARG;
  }
  size_t len = 0;
  char *text = mf_api_response_ok(call->id, data, &len);
  mf_err_t err = session_send_owned(call->session, text, len);
  call_free(call);
  return err;
}

mf_err_t mf_api_call_fail(mf_api_call_t *call, mf_err_t code, const char *fmt, ...) {
  if (!call) return MF_ERR_INVALID_ARG;
  char msg[512];
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
  }
  mf_err_t err = send_error(call->session, true, call->id, code, fmt ? msg : NULL);
  call_free(call);
  return err;
}

/* ---------- built-in methods ---------- */

static void method_ping(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  mf_api_call_reply(call, json_pack("{s:b}", "pong", 1));
}

static const mf_api_method_t builtin_methods[] = {
    {"system.ping", method_ping},
    {NULL, NULL},
};

/* ---------- receive loop ---------- */

static void session_opened(mf_api_session_t *s);

/* The first message of a connection without ?token=: {"id":N,"method":"auth","data":
 * {"token":"<JWT>"}}. Anything else, or a bad token, is refused and the connection closes. */
static void handle_auth(mf_api_session_t *s, const mf_api_request_t *req) {
  mf_api_server_t *sv = s->server;
  const char *tok = json_string_value(json_object_get(req->data, "token"));
  char why[MF_JWT_ERROR_MAX] = "";
  mf_err_t err = MF_ERR_AUTH;
  if (strcmp(req->method, "auth") != 0 || !tok)
    snprintf(why, sizeof why, "no token: connect to %s?token=<JWT> or send "
             "{\"method\":\"auth\",\"data\":{\"token\":\"<JWT>\"}} first", MF_API_WS_PATH);
  else
    err = mf_jwt_verify(tok, strlen(tok), sv->cfg.secret, sv->cfg.secret_len, (int64_t)time(NULL),
                        &s->claims, why, sizeof why);
  if (err) {
    atomic_fetch_add(&sv->stat_auth_failures, 1);
    MF_LOG_INFO("session %llu: refused: %s", (unsigned long long)s->id, why);
    char msg[MF_JWT_ERROR_MAX + 32];
    snprintf(msg, sizeof msg, "token rejected: %s", why);
    send_error(s, false, 0, MF_ERR_AUTH, msg); /* a connection-level refusal, like a bad ?token= */
    mf_api_session_close(s); /* after the error is sent */
    return;
  }
  s->awaiting_auth = false;
  nng_aio_set_timeout(s->rx, NNG_DURATION_INFINITE);
  session_opened(s);
  size_t n = 0;
  char *text = mf_api_response_ok(req->id, json_pack("{s:s, s:s}", "sub", s->claims.sub, "room",
                                                     s->claims.room), &n);
  session_send_owned(s, text, n);
}

static void handle_message(mf_api_session_t *s, const char *text, size_t len) {
  mf_api_server_t *sv = s->server;
  atomic_fetch_add(&sv->stat_requests, 1);
  mf_api_request_t req;
  mf_err_t err = mf_api_request_parse(text, len, &req);
  if (s->awaiting_auth) {
    if (err) snprintf(req.method, sizeof req.method, "%s", "");
    handle_auth(s, &req);
    mf_api_request_clear(&req);
    return;
  }
  /* A token is checked on every request, not only when the connection opens: once its exp
   * has passed, requests are refused (the client reconnects with a fresh token and its
   * resumeToken, which keeps its objects). Virtual sessions (WHIP, links between nodes)
   * are owned by the node and not bound to the token's lifetime. */
  if (s->stream && s->claims.exp != INT64_MAX && (int64_t)time(NULL) >= s->claims.exp) {
    send_error(s, req.has_id, req.id, MF_ERR_AUTH,
               "the session's token has expired: reconnect with a new token (router.join "
               "with the resumeToken keeps the session's objects)");
    mf_api_request_clear(&req);
    return;
  }
  if (sv->cfg.admit) { /* issue 12: per-session rate limit (node/api_limits.h) */
    char why[MF_API_ERROR_MAX + 96] = "";
    bool close = false;
    mf_err_t refused =
        sv->cfg.admit(sv->cfg.ctx, s, err ? "" : req.method, why, sizeof why, &close);
    if (refused) {
      send_error(s, req.has_id, req.id, refused, why[0] ? why : NULL);
      if (close) mf_api_session_close(s); /* after the error is sent */
      mf_api_request_clear(&req);
      return;
    }
  }
  if (err) {
    MF_LOG_DEBUG("session %llu: rejected message: %s", (unsigned long long)s->id, req.error);
    send_error(s, req.has_id, req.id, err, req.error);
    mf_api_request_clear(&req);
    return;
  }
  const mf_api_method_t *m = mf_api_method_find(builtin_methods, req.method);
  if (!m) m = mf_api_method_find(sv->cfg.methods, req.method);
  if (!m || !m->fn) {
    char msg[MF_API_METHOD_MAX + 32];
    snprintf(msg, sizeof msg, "unknown method '%s'", req.method);
    send_error(s, true, req.id, MF_ERR_NOT_FOUND, msg);
    mf_api_request_clear(&req);
    return;
  }
  mf_api_call_t *call = malloc(sizeof *call);
  if (!call) {
    send_error(s, true, req.id, MF_ERR_NO_MEMORY, NULL);
    mf_api_request_clear(&req);
    return;
  }
  mf_api_session_ref(s);
  call->session = s;
  call->id = req.id;
  memcpy(call->method, req.method, sizeof call->method);
  m->fn(sv->cfg.ctx, call, &req);
  mf_api_request_clear(&req);
}

/* The receive loop ended: the connection is over for the application. */
static void rx_finish(mf_api_session_t *s) {
  pthread_mutex_lock(&s->mu);
  /* A close requested after queued messages (a refused token's error) waits for tx_cb. */
  if (!s->drain_close || (!s->sending && !s->head)) session_close_locked(s);
  pthread_mutex_unlock(&s->mu);
  if (s->opened) {
    MF_LOG_INFO("session %llu (%s) closed", (unsigned long long)s->id, s->claims.sub);
    atomic_store(&s->ended, true);
    if (s->server->cfg.on_close) s->server->cfg.on_close(s->server->cfg.ctx, s);
  }
  mf_api_session_unref(s); /* the connection's reference */
}

static void rx_cb(void *arg) {
  mf_api_session_t *s = arg;
  int rv = nng_aio_result(s->rx);
  if (s->refused) {
    nng_msg *m = rv == 0 ? nng_aio_get_msg(s->rx) : NULL;
    if (m) {
      nng_aio_set_msg(s->rx, NULL);
      nng_msg_free(m); /* not answered: the error already went */
    }
    if (rv == 0 && ++s->refused_reads < REFUSED_READS_MAX) {
      nng_stream_recv(s->stream, s->rx);
      return;
    }
    mf_api_session_close(s);
    rx_finish(s);
    return;
  }
  if (rv == NNG_ETIMEDOUT && s->awaiting_auth) {
    atomic_fetch_add(&s->server->stat_auth_failures, 1);
    MF_LOG_INFO("session %llu: refused: no auth message within %u ms",
                (unsigned long long)s->id, MF_API_AUTH_TIMEOUT_MS);
    send_error(s, false, 0, MF_ERR_AUTH, "token rejected: no auth message in time");
    mf_api_session_close(s);
    rx_finish(s);
    return;
  }
  if (rv != 0) {
    rx_finish(s);
    return;
  }
  nng_msg *msg = nng_aio_get_msg(s->rx);
  nng_aio_set_msg(s->rx, NULL);
  atomic_store(&s->last_rx_ms, (uint64_t)nng_clock());
  if (msg) {
    handle_message(s, nng_msg_body(msg), nng_msg_len(msg));
    nng_msg_free(msg);
  }
  pthread_mutex_lock(&s->mu);
  bool more = !s->closed && !s->drain_close;
  pthread_mutex_unlock(&s->mu);
  if (more) nng_stream_recv(s->stream, s->rx);
  else rx_finish(s);
}

/* Finds the value of `token` in the query of a request URI. */
static bool query_token(const char *uri, const char **tok, size_t *tok_len) {
  const char *q = uri ? strchr(uri, '?') : NULL;
  while (q && *q) {
    q++;
    size_t n = strcspn(q, "&#");
    if (n >= 6 && strncmp(q, "token=", 6) == 0) {
      *tok = q + 6;
      *tok_len = n - 6;
      return true;
    }
    q += n;
    if (*q == '#') break;
  }
  return false;
}

static void session_start(mf_api_server_t *sv, nng_stream *stream) {
  mf_api_session_t *s = calloc(1, sizeof *s);
  if (!s || nng_aio_alloc(&s->rx, rx_cb, s) != 0 || nng_aio_alloc(&s->tx, tx_cb, s) != 0) {
    if (s) {
      if (s->rx) nng_aio_free(s->rx);
      free(s);
    }
    nng_stream_free(stream);
    return;
  }
  pthread_mutex_init(&s->mu, NULL);
  atomic_init(&s->refs, 1); /* the connection: dropped when the receive loop ends */
  s->server = sv;
  s->stream = stream;

  pthread_mutex_lock(&sv->mu);
  s->id = ++sv->next_id;
  s->next = sv->sessions;
  if (sv->sessions) sv->sessions->prev = s;
  sv->sessions = s;
  sv->live++;
  bool stopping = sv->stopping;
  pthread_mutex_unlock(&sv->mu);
  if (stopping) {
    rx_finish(s);
    return;
  }

  char *uri = NULL;
  nng_stream_get_string(stream, NNG_OPT_WS_REQUEST_URI, &uri);
  mf_err_t err = MF_OK;
  char why[MF_JWT_ERROR_MAX] = "";
  if (sv->dev_mode) {
    snprintf(s->claims.sub, sizeof s->claims.sub, "dev");
    s->claims.grants = MF_JWT_GRANT_ADMIN;
    s->claims.exp = INT64_MAX;
  } else {
    const char *tok = NULL;
    size_t tok_len = 0;
    if (!query_token(uri, &tok, &tok_len)) {
      /* No token in the URI: it must come as the first message, within a deadline. */
      s->awaiting_auth = true;
    } else {
      err = mf_jwt_verify(tok, tok_len, sv->cfg.secret, sv->cfg.secret_len, (int64_t)time(NULL),
                          &s->claims, why, sizeof why);
    }
  }
  if (uri) nng_strfree(uri);

  if (err) {
    atomic_fetch_add(&sv->stat_auth_failures, 1);
    MF_LOG_INFO("session %llu: refused: %s", (unsigned long long)s->id, why);
    char msg[MF_JWT_ERROR_MAX + 32];
    snprintf(msg, sizeof msg, "token rejected: %s", why);
    send_error(s, false, 0, MF_ERR_AUTH, msg);
    s->refused = true; /* closed when the client goes, or after REFUSED_LINGER_MS */
    nng_aio_set_timeout(s->rx, REFUSED_LINGER_MS);
    nng_stream_recv(stream, s->rx);
    return;
  }
  if (s->awaiting_auth) {
    nng_aio_set_timeout(s->rx, MF_API_AUTH_TIMEOUT_MS);
  } else {
    session_opened(s);
  }
  nng_stream_recv(stream, s->rx);
}

static void session_opened(mf_api_session_t *s) {
  mf_api_server_t *sv = s->server;
  atomic_fetch_add(&sv->stat_sessions_total, 1);
  atomic_store(&s->last_rx_ms, (uint64_t)nng_clock());
  s->opened = true;
  MF_LOG_INFO("session %llu opened for '%s'%s", (unsigned long long)s->id, s->claims.sub,
              (s->claims.grants & MF_JWT_GRANT_ADMIN) ? " (admin)" : "");
  if (sv->cfg.on_open) sv->cfg.on_open(sv->cfg.ctx, s);
}

static void accept_cb(void *arg) {
  mf_api_server_t *sv = arg;
  int rv = nng_aio_result(sv->accept_aio);
  if (rv == 0) {
    session_start(sv, nng_aio_get_output(sv->accept_aio, 0));
  } else if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
    return;
  } else {
    MF_LOG_WARN("accept failed: %s", nng_strerror(rv));
  }
  pthread_mutex_lock(&sv->mu);
  bool stopping = sv->stopping;
  pthread_mutex_unlock(&sv->mu);
  if (!stopping) nng_stream_listener_accept(sv->listener, sv->accept_aio);
}

/* ---------- virtual sessions (WHIP/WHEP) ---------- */

struct nng_http_server *mf_api_server_http(mf_api_server_t *sv) { return sv ? sv->http : NULL; }

mf_err_t mf_api_server_check_token(mf_api_server_t *sv, const char *token, size_t len,
                                   mf_jwt_claims_t *claims, char *why, size_t whysz) {
  memset(claims, 0, sizeof *claims);
  if (sv->dev_mode) {
    snprintf(claims->sub, sizeof claims->sub, "dev");
    claims->grants = MF_JWT_GRANT_ADMIN;
    claims->exp = INT64_MAX;
    return MF_OK;
  }
  mf_err_t err = MF_ERR_AUTH;
  if (!token || len == 0) snprintf(why, whysz, "no token");
  else
    err = mf_jwt_verify(token, len, sv->cfg.secret, sv->cfg.secret_len, (int64_t)time(NULL),
                        claims, why, whysz);
  if (err) atomic_fetch_add(&sv->stat_auth_failures, 1);
  return err ? MF_ERR_AUTH : MF_OK;
}

mf_err_t mf_api_session_open_virtual(mf_api_server_t *sv, const mf_jwt_claims_t *claims,
                                     mf_api_sink_fn sink, void *sink_ctx,
                                     mf_api_session_t **out) {
  mf_api_session_t *s = calloc(1, sizeof *s);
  if (!s) return MF_ERR_NO_MEMORY;
  pthread_mutex_init(&s->mu, NULL);
  atomic_init(&s->refs, 1); /* the caller's, dropped by mf_api_session_end */
  s->server = sv;
  s->sink = sink;
  s->sink_ctx = sink_ctx;
  s->claims = *claims;
  pthread_mutex_lock(&sv->mu);
  if (sv->stopping) {
    pthread_mutex_unlock(&sv->mu);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return MF_ERR_CLOSED;
  }
  s->id = ++sv->next_id;
  s->next = sv->sessions;
  if (sv->sessions) sv->sessions->prev = s;
  sv->sessions = s;
  sv->live++;
  pthread_mutex_unlock(&sv->mu);
  session_opened(s);
  *out = s;
  return MF_OK;
}

void mf_api_session_submit(mf_api_session_t *s, const char *text, size_t len) {
  pthread_mutex_lock(&s->mu);
  bool closed = s->closed;
  pthread_mutex_unlock(&s->mu);
  if (!closed) handle_message(s, text, len);
}

void mf_api_session_end(mf_api_session_t *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  s->closed = true;
  pthread_mutex_unlock(&s->mu);
  atomic_store(&s->ended, true);
  if (s->opened && s->server->cfg.on_close) s->server->cfg.on_close(s->server->cfg.ctx, s);
  mf_api_session_unref(s);
}

bool mf_api_session_ended(mf_api_session_t *s) { return s && atomic_load(&s->ended); }

/* ---------- HTTP handlers ---------- */

static void http_reply(nng_aio *aio, uint16_t status, const char *type, const void *body,
                       size_t len) {
  nng_http_res *res = NULL;
  if (nng_http_res_alloc(&res) != 0 || nng_http_res_set_status(res, status) != 0 ||
      nng_http_res_set_header(res, "Content-Type", type) != 0 ||
      nng_http_res_set_header(res, "Cache-Control", "no-store") != 0 ||
      nng_http_res_copy_data(res, body, len) != 0) {
    if (res) nng_http_res_free(res);
    nng_aio_finish(aio, NNG_ENOMEM);
    return;
  }
  nng_aio_set_output(aio, 0, res);
  nng_aio_finish(aio, 0);
}

static void healthz_cb(nng_aio *aio) {
  http_reply(aio, NNG_HTTP_STATUS_OK, "text/plain; charset=utf-8", "ok\n", 3);
}

/* Static files of the demo page. nng 1.5's directory handler keeps the query string in
 * the file name (`/app/?room=x` → 404), and the page is opened with one, so this maps
 * the path itself: query and fragment dropped, no "..", no hidden files, regular files
 * only, `index.html` for a directory. Files are small: read whole, blocking like nng's. */
#define STATIC_FILE_MAX (16u * 1024 * 1024)

static const char *static_type(const char *path) {
  static const char *const map[][2] = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},   {".json", "application/json"},
      {".map", "application/json"},          {".svg", "image/svg+xml"},
      {".png", "image/png"},                 {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
  };
  const char *dot = strrchr(path, '.');
  if (dot && !strchr(dot, '/'))
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
      if (strcmp(dot, map[i][0]) == 0) return map[i][1];
  return "application/octet-stream";
}

static void static_cb(nng_aio *aio) {
  nng_http_req *req = nng_aio_get_input(aio, 0);
  nng_http_handler *h = nng_aio_get_input(aio, 1);
  mf_api_server_t *sv = nng_http_handler_get_data(h);
  const char *uri = nng_http_req_get_uri(req);
  size_t plen = strlen(sv->static_prefix);
  char rel[1024];
  size_t n = strcspn(uri, "?#");
  if (strncmp(uri, sv->static_prefix, plen) != 0 || n < plen || n - plen >= sizeof rel - 16)
    goto not_found;
  memcpy(rel, uri + plen, n - plen);
  rel[n - plen] = '\0';
  if (rel[0] == '\0') { /* "/app" without the slash: relative links need it */
    nng_http_res *res = NULL;
    char location[sizeof sv->redirect_target + 1024];
    snprintf(location, sizeof location, "%s%.1000s", sv->redirect_target, uri + n);
    if (nng_http_res_alloc_error(&res, NNG_HTTP_STATUS_FOUND) != 0 ||
        nng_http_res_set_header(res, "Location", location) != 0) {
      if (res) nng_http_res_free(res);
      nng_aio_finish(aio, NNG_ENOMEM);
      return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
    return;
  }
  if (rel[0] != '/' || strstr(rel, "/.") || strchr(rel, '\\') || strchr(rel, '%'))
    goto not_found;
  if (rel[strlen(rel) - 1] == '/') strcat(rel, "index.html");
  char path[2048];
  if ((size_t)snprintf(path, sizeof path, "%s%s", sv->static_dir, rel) >= sizeof path)
    goto not_found;
  /* O_NONBLOCK: a FIFO in the directory must not hang an nng thread in open(). */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
  if (!f) {
    if (fd >= 0) close(fd);
    goto not_found;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > STATIC_FILE_MAX) {
    fclose(f);
    goto not_found;
  }
  size_t size = (size_t)st.st_size;
  char *body = malloc(size ? size : 1);
  size_t got = body ? fread(body, 1, size, f) : 0;
  fclose(f);
  if (!body || got != size) {
    free(body);
    nng_aio_finish(aio, NNG_ENOMEM);
    return;
  }
  http_reply(aio, NNG_HTTP_STATUS_OK, static_type(rel), body, size);
  free(body);
  return;
not_found:
  http_reply(aio, NNG_HTTP_STATUS_NOT_FOUND, "text/plain; charset=utf-8", "not found\n", 10);
}

static size_t own_metrics(mf_api_server_t *sv, char *buf, size_t cap) {
  pthread_mutex_lock(&sv->mu);
  size_t live = sv->live;
  pthread_mutex_unlock(&sv->mu);
  int n = snprintf(
      buf, cap,
      "# HELP mafalda_api_sessions WebSocket API connections open now.\n"
      "# TYPE mafalda_api_sessions gauge\nmafalda_api_sessions %zu\n"
      "# HELP mafalda_api_sessions_total API sessions authenticated since start.\n"
      "# TYPE mafalda_api_sessions_total counter\nmafalda_api_sessions_total %llu\n"
      "# HELP mafalda_api_auth_failures_total API connections refused for their token.\n"
      "# TYPE mafalda_api_auth_failures_total counter\nmafalda_api_auth_failures_total %llu\n"
      "# HELP mafalda_api_messages_total API messages received.\n"
      "# TYPE mafalda_api_messages_total counter\nmafalda_api_messages_total %llu\n"
      "# HELP mafalda_api_errors_total API error responses sent.\n"
      "# TYPE mafalda_api_errors_total counter\nmafalda_api_errors_total %llu\n",
      live, (unsigned long long)atomic_load(&sv->stat_sessions_total),
      (unsigned long long)atomic_load(&sv->stat_auth_failures),
      (unsigned long long)atomic_load(&sv->stat_requests),
      (unsigned long long)atomic_load(&sv->stat_errors));
  return n < 0 ? 0 : (size_t)n;
}

static void metrics_cb(nng_aio *aio) {
  nng_http_handler *h = nng_aio_get_input(aio, 1);
  mf_api_server_t *sv = nng_http_handler_get_data(h);
  size_t cap = 16 * 1024;
  for (int attempt = 0; attempt < 3; attempt++) {
    char *buf = malloc(cap);
    if (!buf) break;
    size_t n = own_metrics(sv, buf, cap);
    if (n < cap && sv->cfg.metrics) n += sv->cfg.metrics(sv->cfg.ctx, buf + n, cap - n);
    if (n < cap) {
      http_reply(aio, NNG_HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8", buf, n);
      free(buf);
      return;
    }
    free(buf);
    if (n > 32u * 1024 * 1024) break;
    cap = n + 1024;
  }
  static const char oops[] = "metrics unavailable\n";
  http_reply(aio, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR, "text/plain", oops, sizeof oops - 1);
}

static mf_err_t add_handler(mf_api_server_t *sv, nng_http_handler *h, const char *what) {
  int rv = nng_http_server_add_handler(sv->http, h);
  if (rv != 0) {
    MF_LOG_ERROR("cannot register %s: %s", what, nng_strerror(rv));
    nng_http_handler_free(h);
    return MF_ERR_IO;
  }
  return MF_OK;
}

static mf_err_t setup_http(mf_api_server_t *sv, const char *url_text) {
  nng_url *url = NULL;
  int rv = nng_url_parse(&url, url_text);
  if (rv != 0) return MF_ERR_INVALID_ARG;
  rv = nng_http_server_hold(&sv->http, url);
  nng_url_free(url);
  if (rv != 0) {
    MF_LOG_ERROR("http server %s: %s", url_text, nng_strerror(rv));
    return MF_ERR_IO;
  }
  nng_http_handler *h = NULL;
  if (nng_http_handler_alloc(&h, "/healthz", healthz_cb) != 0) return MF_ERR_NO_MEMORY;
  if (add_handler(sv, h, "/healthz")) return MF_ERR_IO;
  if (nng_http_handler_alloc(&h, "/metrics", metrics_cb) != 0) return MF_ERR_NO_MEMORY;
  nng_http_handler_set_data(h, sv, NULL);
  if (add_handler(sv, h, "/metrics")) return MF_ERR_IO;
  if (sv->cfg.static_dir) {
    if (nng_http_handler_alloc(&h, sv->static_prefix, static_cb) != 0) return MF_ERR_NO_MEMORY;
    nng_http_handler_set_tree(h);
    nng_http_handler_set_data(h, sv, NULL);
    if (add_handler(sv, h, "static files")) return MF_ERR_IO;
    if (nng_http_handler_alloc_redirect(&h, "/", NNG_HTTP_STATUS_FOUND, sv->redirect_target) != 0)
      return MF_ERR_NO_MEMORY;
    if (add_handler(sv, h, "/ redirect")) return MF_ERR_IO;
  }
  rv = nng_http_server_start(sv->http);
  if (rv != 0) {
    MF_LOG_ERROR("cannot listen on %s: %s", url_text, nng_strerror(rv));
    return MF_ERR_IO;
  }
  sv->http_started = true;
  nng_sockaddr sa;
  if (nng_http_server_get_addr(sv->http, &sa) == 0) {
    if (sa.s_family == NNG_AF_INET) sv->port = ntohs(sa.s_in.sa_port);
    else if (sa.s_family == NNG_AF_INET6) sv->port = ntohs(sa.s_in6.sa_port);
  }
  return MF_OK;
}

static mf_err_t setup_ws(mf_api_server_t *sv, const char *host_in_url) {
  char url[512];
  /* With port 0 the WebSocket must name the port actually bound, or nng would start a
   * second HTTP server instead of sharing this one. */
  snprintf(url, sizeof url, "ws://%s:%u%s", host_in_url, (unsigned)sv->port, MF_API_WS_PATH);
  int rv = nng_stream_listener_alloc(&sv->listener, url);
  if (rv != 0) return MF_ERR_INVALID_ARG;
  if ((rv = nng_stream_listener_set_bool(sv->listener, "ws:msgmode", true)) != 0 ||
      (rv = nng_stream_listener_set_bool(sv->listener, NNG_OPT_WS_RECV_TEXT, true)) != 0 ||
      (rv = nng_stream_listener_set_bool(sv->listener, NNG_OPT_WS_SEND_TEXT, true)) != 0 ||
      (rv = nng_stream_listener_set_size(sv->listener, NNG_OPT_RECVMAXSZ, MF_API_WS_RECV_MAX)) != 0 ||
      (rv = nng_stream_listener_set_size(sv->listener, NNG_OPT_WS_RECVMAXFRAME, MF_API_WS_RECV_MAX)) != 0 ||
      (rv = nng_stream_listener_set_size(sv->listener, NNG_OPT_WS_SENDMAXFRAME, MF_API_WS_RECV_MAX)) != 0) {
    MF_LOG_ERROR("websocket options: %s", nng_strerror(rv));
    return MF_ERR_INTERNAL;
  }
  if ((rv = nng_stream_listener_listen(sv->listener)) != 0) {
    MF_LOG_ERROR("cannot listen on %s: %s", url, nng_strerror(rv));
    return MF_ERR_IO;
  }
  if (nng_aio_alloc(&sv->accept_aio, accept_cb, sv) != 0) return MF_ERR_NO_MEMORY;
  nng_stream_listener_accept(sv->listener, sv->accept_aio);
  return MF_OK;
}

/* sv->mu held: a reference to s, taken while it is on the server's list. A session at zero
 * references is inside session_free, waiting for sv->mu to unlink itself: taking one then
 * would resurrect it and free it twice, so it is skipped (false). */
static bool session_ref_listed(mf_api_session_t *s) {
  int refs = atomic_load(&s->refs);
  while (refs > 0 && !atomic_compare_exchange_weak(&s->refs, &refs, refs + 1)) {
  }
  return refs > 0;
}

/* Every keepalive_ms / 2: each WebSocket session quiet for keepalive_ms gets a notification.
 * Sending is the only way to learn that a peer is gone when its close never arrives. */
static void keepalive_sweep(void *arg) {
  mf_api_server_t *sv = arg;
  if (nng_aio_result(sv->keepalive_aio) != 0) return; /* stopped */
  uint64_t now = (uint64_t)nng_clock();
  enum { SWEEP_MAX = 4096 };
  mf_api_session_t **quiet = calloc(SWEEP_MAX, sizeof *quiet);
  size_t n = 0;
  pthread_mutex_lock(&sv->mu);
  for (mf_api_session_t *s = sv->sessions; quiet && s && n < SWEEP_MAX && !sv->stopping;
       s = s->next) {
    if (!s->stream || !s->opened ||
        now - atomic_load(&s->last_rx_ms) < (uint64_t)sv->cfg.keepalive_ms)
      continue;
    if (session_ref_listed(s)) quiet[n++] = s;
  }
  bool go_on = !sv->stopping;
  pthread_mutex_unlock(&sv->mu);
  for (size_t i = 0; i < n; i++) {
    atomic_store(&quiet[i]->last_rx_ms, now); /* once per interval, not every sweep */
    mf_api_session_notify(quiet[i], "system.keepalive", NULL, NULL);
    mf_api_session_unref(quiet[i]);
  }
  free(quiet);
  if (go_on) nng_sleep_aio(sv->cfg.keepalive_ms / 2 ? sv->cfg.keepalive_ms / 2 : 1,
                           sv->keepalive_aio);
}

mf_err_t mf_api_server_create(const mf_api_server_config_t *config, mf_api_server_t **out) {
  if (!config || !out || !config->listen) return MF_ERR_INVALID_ARG;
  *out = NULL;
  mf_api_server_t *sv = calloc(1, sizeof *sv);
  if (!sv) return MF_ERR_NO_MEMORY;
  sv->cfg = *config;
  sv->cfg.secret = NULL;
  pthread_mutex_init(&sv->mu, NULL);
  if (config->secret && config->secret_len) {
    uint8_t *copy = malloc(config->secret_len);
    if (!copy) {
      pthread_mutex_destroy(&sv->mu);
      free(sv);
      return MF_ERR_NO_MEMORY;
    }
    memcpy(copy, config->secret, config->secret_len);
    sv->cfg.secret = copy;
  }
  pthread_cond_init(&sv->cv, NULL);

  bool loopback = false;
  uint16_t port = 0;
  mf_err_t err = mf_api_listen_parse(config->listen, sv->host, sizeof sv->host, &port, &loopback);
  if (err) {
    MF_LOG_ERROR("bad API listen address '%s' (want host:port)", config->listen);
    goto fail;
  }
  sv->dev_mode = !sv->cfg.secret;
  if (sv->dev_mode && !loopback) {
    MF_LOG_ERROR("refusing to serve the API on %s without a secret: dev mode is loopback-only",
                 config->listen);
    err = MF_ERR_INVALID_ARG;
    goto fail;
  }
  const char *prefix = config->static_prefix ? config->static_prefix : "/app";
  size_t plen = strlen(prefix);
  while (plen > 1 && prefix[plen - 1] == '/') plen--;
  if (prefix[0] != '/' || plen < 2 || plen >= sizeof sv->static_prefix) {
    MF_LOG_ERROR("static prefix '%s' must be a path like /app", prefix);
    err = MF_ERR_INVALID_ARG;
    goto fail;
  }
  memcpy(sv->static_prefix, prefix, plen);
  snprintf(sv->redirect_target, sizeof sv->redirect_target, "%s/", sv->static_prefix);
  if (config->static_dir) {
    size_t dlen = strlen(config->static_dir);
    while (dlen > 1 && config->static_dir[dlen - 1] == '/') dlen--;
    if (dlen == 0 || dlen >= sizeof sv->static_dir) {
      MF_LOG_ERROR("static directory '%s' is empty or too long", config->static_dir);
      err = MF_ERR_INVALID_ARG;
      goto fail;
    }
    memcpy(sv->static_dir, config->static_dir, dlen);
  }

  /* The URL keeps the caller's spelling of the host (brackets for IPv6). */
  char host_in_url[260];
  size_t hl = (size_t)(strrchr(config->listen, ':') - config->listen);
  snprintf(host_in_url, sizeof host_in_url, "%.*s", (int)hl, config->listen);
  char url[300];
  snprintf(url, sizeof url, "http://%s:%u", host_in_url, (unsigned)port);
  if ((err = setup_http(sv, url)) != MF_OK) goto fail;
  if ((err = setup_ws(sv, host_in_url)) != MF_OK) goto fail;

  if (sv->dev_mode) {
    MF_LOG_WARN("!!! API DEV MODE: no --api-secret, every WebSocket client is admin "
                "without a token. Loopback only (%s). Never use this in production. !!!",
                config->listen);
  }
  if (config->keepalive_ms) {
    if (nng_aio_alloc(&sv->keepalive_aio, keepalive_sweep, sv) != 0) {
      err = MF_ERR_NO_MEMORY;
      goto fail;
    }
    nng_sleep_aio(config->keepalive_ms / 2 ? config->keepalive_ms / 2 : 1, sv->keepalive_aio);
  }
  MF_LOG_INFO("API listening on http://%s:%u (WebSocket %s%s)", host_in_url,
              (unsigned)sv->port, MF_API_WS_PATH,
              config->static_dir ? ", static files" : "");
  *out = sv;
  return MF_OK;

fail:
  mf_api_server_destroy(sv);
  return err;
}

uint16_t mf_api_server_port(const mf_api_server_t *sv) { return sv ? sv->port : 0; }
bool mf_api_server_dev_mode(const mf_api_server_t *sv) { return sv && sv->dev_mode; }

void mf_api_server_destroy(mf_api_server_t *sv) {
  if (!sv) return;
  pthread_mutex_lock(&sv->mu);
  sv->stopping = true;
  pthread_mutex_unlock(&sv->mu);
  if (sv->listener) nng_stream_listener_close(sv->listener);
  if (sv->accept_aio) nng_aio_stop(sv->accept_aio);
  if (sv->keepalive_aio) nng_aio_stop(sv->keepalive_aio); /* no sweep from here on */

  /* Close every session; each one's receive loop then ends on an nng thread. */
  pthread_mutex_lock(&sv->mu);
  size_t n = 0;
  for (mf_api_session_t *s = sv->sessions; s; s = s->next) n++;
  mf_api_session_t **all = n ? calloc(n, sizeof *all) : NULL;
  size_t k = 0;
  for (mf_api_session_t *s = sv->sessions; s && all; s = s->next) {
    if (session_ref_listed(s)) all[k++] = s;
  }
  pthread_mutex_unlock(&sv->mu);
  for (size_t i = 0; i < k; i++) {
    pthread_mutex_lock(&all[i]->mu);
    session_close_locked(all[i]);
    pthread_mutex_unlock(&all[i]->mu);
    mf_api_session_unref(all[i]);
  }
  free(all);

  pthread_mutex_lock(&sv->mu);
  while (sv->live > 0) pthread_cond_wait(&sv->cv, &sv->mu);
  pthread_mutex_unlock(&sv->mu);

  if (sv->accept_aio) nng_aio_free(sv->accept_aio);
  if (sv->keepalive_aio) nng_aio_free(sv->keepalive_aio);
  if (sv->listener) nng_stream_listener_free(sv->listener);
  if (sv->http) {
    if (sv->http_started) nng_http_server_stop(sv->http);
    nng_http_server_release(sv->http);
  }
  if (sv->cfg.secret) {
    OPENSSL_cleanse((void *)sv->cfg.secret, sv->cfg.secret_len);
    free((void *)sv->cfg.secret);
  }
  pthread_cond_destroy(&sv->cv);
  pthread_mutex_destroy(&sv->mu);
  free(sv);
}
