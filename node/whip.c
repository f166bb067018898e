#define MF_LOG_MODULE "whip"
#include "node/whip.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/id.h"
#include "common/log.h"
#include "node/rtp_parameters.h"
#include "node/whip_sdp.h"

typedef enum { ST_JOIN, ST_CREATE, ST_LIST, ST_CONNECT, ST_MEDIA, ST_READY, ST_CLOSING } step_t;

typedef struct res {
  struct res *next; /* w->all, under w->mu */
  mf_whip_t *w;
  char id[MF_ID_LEN + 1];
  bool whep;
  char room[MF_WHIP_ROOM_MAX + 1];
  char producer_id[MF_ID_LEN + 1]; /* WHEP of one producer, else "" */
  mf_api_session_t *session;
  nng_aio *aio;  /* w->mu: the POST or DELETE waiting for its answer */
  bool listed;   /* w->mu: established, DELETE finds it */
  /* below: the module's thread only */
  step_t step;
  int64_t seq, waiting; /* ids of our API calls; the one we wait for */
  uint16_t close_status; /* what the pending request gets once closed (DELETE: 200) */
  mf_sdp_t *offer;
  mf_rtp_capabilities_t *caps;
  mf_whip_transport_t *transport;
  json_t *todo; /* WHIP: [{kind, rtpParameters}]; WHEP: [{producerId, section}] */
  size_t todo_next;
  json_t *consumers[MF_SDP_MAX_MEDIA]; /* WHEP: transport.consume answers per section */
  char *answer; /* WHIP: the SDP answer, sent once the producers exist */
} res_t;

typedef enum { IT_START, IT_MSG, IT_DELETE } item_kind_t;

typedef struct item {
  struct item *next;
  item_kind_t kind;
  res_t *res;
  size_t len;
  char text[];
} item_t;

struct mf_whip {
  mf_api_server_t *server;
  nng_http_handler *handlers[2];
  bool registered[2];
  pthread_t thread;
  bool thread_started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  item_t *head, *tail; /* mu */
  res_t *all;          /* mu */
  bool stopping;       /* mu */
  size_t established;  /* mu */
};

/* ---------------------------------------------------------------- HTTP replies */

static void http_send(nng_aio *aio, uint16_t status, const char *type, const char *body,
                      size_t len, const char *h1, const char *v1, const char *h2, const char *v2) {
  nng_http_res *res = NULL;
  if (nng_http_res_alloc(&res) != 0 || nng_http_res_set_status(res, status) != 0 ||
      (type && nng_http_res_set_header(res, "Content-Type", type) != 0) ||
      nng_http_res_set_header(res, "Cache-Control", "no-store") != 0 ||
      /* Browser WHIP/WHEP clients on other origins: the token travels in a header, never
       * a cookie, so any origin may call. */
      nng_http_res_set_header(res, "Access-Control-Allow-Origin", "*") != 0 ||
      nng_http_res_set_header(res, "Access-Control-Expose-Headers", "Location") != 0 ||
      (status == NNG_HTTP_STATUS_NO_CONTENT &&
       (nng_http_res_set_header(res, "Access-Control-Allow-Methods", "POST, DELETE, OPTIONS") != 0 ||
        nng_http_res_set_header(res, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type") != 0)) ||
      (h1 && nng_http_res_set_header(res, h1, v1) != 0) ||
      (h2 && nng_http_res_set_header(res, h2, v2) != 0) ||
      (len && nng_http_res_copy_data(res, body, len) != 0) ||
      /* an empty 200 must say so, or keep-alive clients wait for a body */
      (!len && status != NNG_HTTP_STATUS_NO_CONTENT &&
       nng_http_res_set_header(res, "Content-Length", "0") != 0)) {
    if (res) nng_http_res_free(res);
    nng_aio_finish(aio, NNG_ENOMEM);
    return;
  }
  nng_aio_set_output(aio, 0, res);
  nng_aio_finish(aio, 0);
}

static void http_text(nng_aio *aio, uint16_t status, const char *msg) {
  char body[600];
  int n = snprintf(body, sizeof body, "%s\n", msg);
  size_t len = n < 0 ? 0 : (size_t)n >= sizeof body ? sizeof body - 1 : (size_t)n;
  if (status == NNG_HTTP_STATUS_UNAUTHORIZED)
    http_send(aio, status, "text/plain; charset=utf-8", body, len, "WWW-Authenticate", "Bearer",
              NULL, NULL);
  else if (status == NNG_HTTP_STATUS_METHOD_NOT_ALLOWED)
    http_send(aio, status, "text/plain; charset=utf-8", body, len, "Allow",
              "POST, DELETE, OPTIONS", NULL, NULL);
  else
    http_send(aio, status, "text/plain; charset=utf-8", body, len, NULL, NULL, NULL, NULL);
}

/* The API's error code (mf_err_name) as an HTTP status. */
static uint16_t status_of(const char *code) {
  static const struct {
    mf_err_t err;
    uint16_t status;
  } map[] = {
      {MF_ERR_AUTH, NNG_HTTP_STATUS_FORBIDDEN},
      {MF_ERR_NOT_FOUND, NNG_HTTP_STATUS_NOT_FOUND},
      {MF_ERR_INVALID_ARG, NNG_HTTP_STATUS_BAD_REQUEST},
      {MF_ERR_PARSE, NNG_HTTP_STATUS_BAD_REQUEST},
      {MF_ERR_UNSUPPORTED, NNG_HTTP_STATUS_NOT_ACCEPTABLE},
      {MF_ERR_CLOSED, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE},
      {MF_ERR_FULL, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE},
      {MF_ERR_LIMIT, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE},
      {MF_ERR_RATE, NNG_HTTP_STATUS_TOO_MANY_REQUESTS}, /* issue 12: --api-rate */
      {MF_ERR_STATE, NNG_HTTP_STATUS_CONFLICT},
  };
  for (size_t i = 0; code && i < sizeof map / sizeof map[0]; i++)
    if (strcmp(code, mf_err_name(map[i].err)) == 0) return map[i].status;
  return NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR;
}

/* "/whip/<room>/<id>" with the room percent-encoded (unreserved characters kept). */
static void location_of(const res_t *r, char *out, size_t cap) {
  size_t n = (size_t)snprintf(out, cap, "/%s/", r->whep ? "whep" : "whip");
  for (const unsigned char *p = (const unsigned char *)r->room; *p && n + 4 < cap; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        *p == '-' || *p == '.' || *p == '_' || *p == '~')
      out[n++] = (char)*p;
    else
      n += (size_t)snprintf(out + n, cap - n, "%%%02X", *p);
  }
  snprintf(out + n, cap - n, "/%s", r->id);
}

/* ---------------------------------------------------------------- queue and resources */

static void enqueue_locked(mf_whip_t *w, item_t *it) {
  it->next = NULL;
  if (w->tail) w->tail->next = it;
  else w->head = it;
  w->tail = it;
  pthread_cond_signal(&w->cv);
}

static item_t *item_new(item_kind_t kind, res_t *r, const char *text, size_t len) {
  item_t *it = malloc(sizeof *it + len + 1);
  if (!it) return NULL;
  it->kind = kind;
  it->res = r;
  it->len = len;
  if (len) memcpy(it->text, text, len);
  it->text[len] = '\0';
  return it;
}

/* The session's outgoing messages (replies, notifications): queued for the thread. Called
 * with the session's lock held, from any thread. */
static void res_sink(void *ctx, const char *text, size_t len) {
  res_t *r = ctx;
  item_t *it = item_new(IT_MSG, r, text, len);
  if (!it) {
    MF_LOG_ERROR("resource %s: out of memory, an API message is lost", r->id);
    return;
  }
  pthread_mutex_lock(&r->w->mu);
  enqueue_locked(r->w, it);
  pthread_mutex_unlock(&r->w->mu);
}

/* nng gave up on a request (connection closed, server stopping): finish it now; the
 * resource notices the missing request at its next step. */
static void aio_cancel(nng_aio *aio, void *arg, int rv) {
  mf_whip_t *w = arg;
  bool found = false;
  pthread_mutex_lock(&w->mu);
  for (res_t *r = w->all; r && !found; r = r->next)
    if (r->aio == aio) {
      r->aio = NULL;
      found = true;
    }
  pthread_mutex_unlock(&w->mu);
  if (found) nng_aio_finish(aio, rv);
}

static nng_aio *take_aio(res_t *r) {
  pthread_mutex_lock(&r->w->mu);
  nng_aio *aio = r->aio;
  r->aio = NULL;
  pthread_mutex_unlock(&r->w->mu);
  return aio;
}

static void res_free(res_t *r) {
  free(r->offer);
  free(r->caps);
  free(r->transport);
  json_decref(r->todo);
  for (size_t i = 0; i < MF_SDP_MAX_MEDIA; i++) json_decref(r->consumers[i]);
  free(r->answer);
  free(r);
}

/* The session is over: nothing more reaches the sink; drop the resource. */
static void res_end(res_t *r) {
  mf_whip_t *w = r->w;
  nng_aio *aio = take_aio(r);
  if (aio) {
    if (r->close_status == NNG_HTTP_STATUS_OK) http_send(aio, NNG_HTTP_STATUS_OK, NULL, NULL, 0, NULL, NULL, NULL, NULL);
    else http_text(aio, r->close_status ? r->close_status : NNG_HTTP_STATUS_SERVICE_UNAVAILABLE,
                   "the resource ended");
  }
  mf_api_session_end(r->session);
  pthread_mutex_lock(&w->mu);
  for (res_t **pp = &w->all; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  if (r->listed) w->established--;
  item_t **pp = &w->head;
  w->tail = NULL;
  while (*pp) {
    if ((*pp)->res == r) {
      item_t *dead = *pp;
      *pp = dead->next;
      free(dead);
    } else {
      w->tail = *pp;
      pp = &(*pp)->next;
    }
  }
  pthread_mutex_unlock(&w->mu);
  MF_LOG_INFO("%s resource %s in room '%s' ended", r->whep ? "WHEP" : "WHIP", r->id, r->room);
  res_free(r);
}

/* ---------------------------------------------------------------- API calls (thread) */

static void call(res_t *r, const char *method, json_t *data) {
  r->waiting = ++r->seq;
  json_t *msg = json_pack("{s:I, s:s, s:o}", "id", (json_int_t)r->waiting, "method", method,
                          "data", data ? data : json_object());
  char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
  json_decref(msg);
  if (!text) {
    MF_LOG_ERROR("resource %s: out of memory calling %s", r->id, method);
    return;
  }
  mf_api_session_submit(r->session, text, strlen(text));
  free(text);
}

/* Closes the transport (its producers/consumers go with it), then ends the session. */
static void start_close(res_t *r, uint16_t status) {
  r->close_status = status;
  if (r->step == ST_CLOSING) return;
  r->step = ST_CLOSING;
  if (r->transport) call(r, "transport.close", json_pack("{s:s}", "transportId", r->transport->id));
  else res_end(r);
}

/* The POST failed: answer it, then undo what exists. */
static void fail(res_t *r, uint16_t status, const char *why) {
  MF_LOG_INFO("%s POST to room '%s' refused (%u): %s", r->whep ? "WHEP" : "WHIP", r->room,
              (unsigned)status, why);
  nng_aio *aio = take_aio(r);
  if (aio) http_text(aio, status, why);
  start_close(r, 0);
}

static void ready(res_t *r, const char *sdp) {
  nng_aio *aio = take_aio(r);
  if (!aio) { /* the client went away meanwhile */
    start_close(r, 0);
    return;
  }
  char location[MF_WHIP_ROOM_MAX * 3 + 64];
  location_of(r, location, sizeof location);
  r->step = ST_READY;
  pthread_mutex_lock(&r->w->mu);
  r->listed = true;
  r->w->established++;
  pthread_mutex_unlock(&r->w->mu);
  MF_LOG_INFO("%s resource %s in room '%s' ready (%zu %s)", r->whep ? "WHEP" : "WHIP", r->id,
              r->room, json_array_size(r->todo), r->whep ? "consumers" : "producers");
  http_send(aio, NNG_HTTP_STATUS_CREATED, "application/sdp", sdp, strlen(sdp), "Location",
            location, NULL, NULL);
}

static char *write_sdp(const mf_sdp_t *sdp) {
  size_t cap = 64 * 1024;
  char *text = malloc(cap);
  if (text && mf_sdp_write(sdp, text, cap, NULL) != MF_OK) {
    free(text);
    return NULL;
  }
  return text;
}

/* Produces/consumes the next entry of todo, or answers the POST when all are done. */
static void media_next(res_t *r) {
  char err[256] = "";
  if (r->todo_next < json_array_size(r->todo)) {
    json_t *t = json_array_get(r->todo, r->todo_next);
    if (!r->whep) {
      call(r, "transport.produce",
           json_pack("{s:s, s:O, s:O, s:{s:s}}", "transportId", r->transport->id, "kind",
                     json_object_get(t, "kind"), "rtpParameters", json_object_get(t, "rtpParameters"),
                     "appData", "whip", r->id));
      return;
    }
    size_t section = (size_t)json_integer_value(json_object_get(t, "section"));
    json_t *caps = mf_whip_section_capabilities(&r->offer->media[section], err, sizeof err);
    if (!caps) return fail(r, NNG_HTTP_STATUS_BAD_REQUEST, err);
    call(r, "transport.consume",
         json_pack("{s:s, s:O, s:o, s:b}", "transportId", r->transport->id, "producerId",
                   json_object_get(t, "producerId"), "rtpCapabilities", caps, "paused", 0));
    return;
  }
  if (!r->whep) {
    ready(r, r->answer);
    return;
  }
  mf_sdp_t *answer = calloc(1, sizeof *answer);
  if (!answer) return fail(r, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR, "out of memory");
  mf_err_t e = mf_whip_play_answer(r->offer, r->transport, r->consumers, answer, err, sizeof err);
  char *text = e ? NULL : write_sdp(answer);
  free(answer);
  if (!text) return fail(r, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR, e ? err : "answer too large");
  ready(r, text);
  free(text);
}

/* WHEP: producers of the room (router.listProducers) to offered sections, by kind in
 * order; only producer_id when the URL named one. */
static void assign_producers(res_t *r, const json_t *list) {
  r->todo = json_array();
  bool used[256] = {false};
  for (size_t i = 0; i < r->offer->media_count; i++) {
    if (!mf_whip_section_usable(r->offer, i, true)) continue;
    const char *kind = r->offer->media[i].kind == MF_SDP_KIND_AUDIO ? "audio" : "video";
    size_t k;
    const json_t *p;
    json_array_foreach(list, k, p) {
      const char *id = json_string_value(json_object_get(p, "id"));
      if (k >= 256 || used[k] || !id) continue;
      if (r->producer_id[0] && strcmp(id, r->producer_id) != 0) continue;
      const char *pk = json_string_value(json_object_get(p, "kind"));
      if (!pk || strcmp(pk, kind) != 0) continue;
      used[k] = true;
      json_array_append_new(r->todo, json_pack("{s:s, s:I}", "producerId", id, "section",
                                               (json_int_t)i));
      break;
    }
  }
}

static void on_reply(res_t *r, const json_t *data) {
  char err[256] = "";
  switch (r->step) {
    case ST_JOIN: {
      r->caps = malloc(sizeof *r->caps);
      if (!r->caps) return fail(r, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR, "out of memory");
      if (mf_rtp_capabilities_from_json(json_object_get(data, "rtpCapabilities"),
                                        "rtpCapabilities", r->caps, err, sizeof err) != MF_OK)
        return fail(r, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR, err);
      r->step = ST_CREATE;
      call(r, "router.createWebRtcTransport", json_object());
      return;
    }
    case ST_CREATE: {
      r->transport = malloc(sizeof *r->transport);
      if (!r->transport) return fail(r, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR, "out of memory");
      if (mf_whip_transport_from_json(data, r->transport, err, sizeof err) != MF_OK) {
        free(r->transport);
        r->transport = NULL;
        return fail(r, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR, err);
      }
      if (r->whep) {
        r->step = ST_LIST;
        call(r, "router.listProducers", json_object());
        return;
      }
      mf_sdp_t *answer = calloc(1, sizeof *answer);
      if (!answer) return fail(r, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR, "out of memory");
      mf_err_t e = mf_whip_publish_answer(r->offer, r->caps, r->transport, answer, &r->todo, err,
                                          sizeof err);
      if (!e) {
        r->answer = write_sdp(answer);
        if (!r->answer) {
          e = MF_ERR_LIMIT;
          snprintf(err, sizeof err, "answer too large");
        }
      }
      free(answer);
      if (e)
        return fail(r, e == MF_ERR_UNSUPPORTED ? NNG_HTTP_STATUS_NOT_ACCEPTABLE
                       : e == MF_ERR_PARSE     ? NNG_HTTP_STATUS_BAD_REQUEST
                                               : NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR,
                    err);
      break;
    }
    case ST_LIST:
      assign_producers(r, json_object_get(data, "producers"));
      if (json_array_size(r->todo) == 0)
        return fail(r, NNG_HTTP_STATUS_NOT_FOUND,
                    r->producer_id[0] ? "no such producer in this room (or no offered section of its kind)"
                                      : "the room has no producer of an offered kind");
      break;
    case ST_CONNECT:
      r->step = ST_MEDIA;
      r->todo_next = 0;
      media_next(r);
      return;
    case ST_MEDIA:
      if (r->whep) {
        size_t section = (size_t)json_integer_value(
            json_object_get(json_array_get(r->todo, r->todo_next), "section"));
        if (section < MF_SDP_MAX_MEDIA) r->consumers[section] = json_incref((json_t *)data);
      }
      r->todo_next++;
      media_next(r);
      return;
    case ST_READY:
    case ST_CLOSING:
      return;
  }
  /* WHIP after CREATE, WHEP after LIST: connect with the offer's DTLS parameters. */
  r->step = ST_CONNECT;
  call(r, "transport.connect", json_pack("{s:s, s:o}", "transportId", r->transport->id,
                                         "dtlsParameters", mf_whip_dtls_parameters(r->offer)));
}

/* A transport event that ends the resource: DTLS closed/failed, ICE consent lost or closed,
 * the router closed. */
static bool is_terminal(const char *event, const json_t *data) {
  const char *v;
  if (strcmp(event, "transport.routerclose") == 0) return true;
  if (strcmp(event, "transport.dtlsstatechange") == 0 &&
      (v = json_string_value(json_object_get(data, "dtlsState"))))
    return strcmp(v, "closed") == 0 || strcmp(v, "failed") == 0;
  if (strcmp(event, "transport.icestatechange") == 0 &&
      (v = json_string_value(json_object_get(data, "iceState"))))
    return strcmp(v, "disconnected") == 0 || strcmp(v, "closed") == 0;
  return false;
}

static void on_message(res_t *r, const char *text, size_t len) {
  json_t *msg = json_loadb(text, len, 0, NULL);
  if (!msg) return;
  const char *event = json_string_value(json_object_get(msg, "event"));
  if (event) {
    if (r->step == ST_READY && is_terminal(event, json_object_get(msg, "data"))) {
      MF_LOG_INFO("%s resource %s: %s, closing", r->whep ? "WHEP" : "WHIP", r->id, event);
      pthread_mutex_lock(&r->w->mu);
      if (r->listed) r->w->established--;
      r->listed = false;
      pthread_mutex_unlock(&r->w->mu);
      start_close(r, 0);
    }
  } else if (json_integer_value(json_object_get(msg, "id")) == r->waiting) {
    if (r->step == ST_CLOSING) {
      res_end(r); /* transport.close answered (either way) */
    } else if (json_is_true(json_object_get(msg, "ok"))) {
      on_reply(r, json_object_get(msg, "data"));
    } else {
      const json_t *e = json_object_get(msg, "error");
      const char *m = json_string_value(json_object_get(e, "message"));
      fail(r, status_of(json_string_value(json_object_get(e, "code"))), m ? m : "refused");
    }
  }
  json_decref(msg);
}

static void *whip_thread(void *arg) {
  mf_whip_t *w = arg;
  for (;;) {
    pthread_mutex_lock(&w->mu);
    while (!w->head && !w->stopping) pthread_cond_wait(&w->cv, &w->mu);
    if (w->stopping) {
      pthread_mutex_unlock(&w->mu);
      return NULL;
    }
    item_t *it = w->head;
    w->head = it->next;
    if (!w->head) w->tail = NULL;
    pthread_mutex_unlock(&w->mu);
    res_t *r = it->res;
    if (it->kind == IT_START) {
      r->step = ST_JOIN;
      call(r, "router.join", json_pack("{s:s}", "roomId", r->room));
    } else if (it->kind == IT_DELETE) {
      MF_LOG_INFO("%s resource %s: DELETE", r->whep ? "WHEP" : "WHIP", r->id);
      start_close(r, NNG_HTTP_STATUS_OK);
    } else {
      on_message(r, it->text, it->len);
    }
    free(it);
  }
}

/* ---------------------------------------------------------------- HTTP handler (nng) */

static void handle_post(mf_whip_t *w, nng_aio *aio, nng_http_req *req, const mf_whip_path_t *path,
                        const mf_jwt_claims_t *claims) {
  if (!path->whep && path->id[0])
    return http_text(aio, NNG_HTTP_STATUS_METHOD_NOT_ALLOWED, "POST goes to /whip/<room>");
  if (!mf_whip_is_sdp_type(nng_http_req_get_header(req, "Content-Type")))
    return http_text(aio, NNG_HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE,
                     "the body must be an SDP offer (Content-Type: application/sdp)");
  void *body = NULL;
  size_t len = 0;
  nng_http_req_get_data(req, &body, &len);
  if (!body || len == 0) return http_text(aio, NNG_HTTP_STATUS_BAD_REQUEST, "no SDP offer in the body");
  res_t *r = calloc(1, sizeof *r);
  mf_sdp_t *offer = calloc(1, sizeof *offer);
  if (!r || !offer || mf_id_generate(r->id) != MF_OK) {
    free(r);
    free(offer);
    return http_text(aio, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR, "out of memory");
  }
  char why[320];
  if (mf_sdp_parse(body, len, offer) != MF_OK) {
    snprintf(why, sizeof why, "bad SDP offer: %s", offer->error);
    free(r);
    free(offer);
    return http_text(aio, NNG_HTTP_STATUS_BAD_REQUEST, why);
  }
  char reason[256];
  if (mf_whip_offer_check(offer, path->whep, reason, sizeof reason) != MF_OK) {
    snprintf(why, sizeof why, "bad SDP offer: %s", reason);
    free(r);
    free(offer);
    return http_text(aio, NNG_HTTP_STATUS_BAD_REQUEST, why);
  }
  r->w = w;
  r->whep = path->whep;
  memcpy(r->room, path->room, sizeof r->room);
  memcpy(r->producer_id, path->id, sizeof r->producer_id);
  r->offer = offer;
  item_t *it = item_new(IT_START, r, NULL, 0);
  if (!it || mf_api_session_open_virtual(w->server, claims, res_sink, r, &r->session) != MF_OK) {
    free(it);
    res_free(r);
    return http_text(aio, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE, "the node is shutting down");
  }
  pthread_mutex_lock(&w->mu);
  if (w->stopping) {
    pthread_mutex_unlock(&w->mu);
    free(it);
    mf_api_session_end(r->session);
    res_free(r);
    return http_text(aio, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE, "the node is shutting down");
  }
  r->aio = aio;
  nng_aio_defer(aio, aio_cancel, w);
  r->next = w->all;
  w->all = r;
  enqueue_locked(w, it);
  pthread_mutex_unlock(&w->mu);
}

static void handle_delete(mf_whip_t *w, nng_aio *aio, const mf_whip_path_t *path) {
  if (!path->id[0])
    return http_text(aio, NNG_HTTP_STATUS_METHOD_NOT_ALLOWED, "DELETE goes to the resource URL (Location)");
  item_t *it = item_new(IT_DELETE, NULL, NULL, 0);
  if (!it) return http_text(aio, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR, "out of memory");
  pthread_mutex_lock(&w->mu);
  res_t *r = w->all;
  while (r && !(r->listed && r->whep == path->whep && strcmp(r->id, path->id) == 0 &&
                strcmp(r->room, path->room) == 0))
    r = r->next;
  if (!r || w->stopping) {
    pthread_mutex_unlock(&w->mu);
    free(it);
    return http_text(aio, NNG_HTTP_STATUS_NOT_FOUND, "no such resource");
  }
  r->listed = false; /* a second DELETE gets 404 */
  w->established--;
  r->aio = aio;
  nng_aio_defer(aio, aio_cancel, w);
  it->res = r;
  enqueue_locked(w, it);
  pthread_mutex_unlock(&w->mu);
}

static void http_cb(nng_aio *aio) {
  nng_http_req *req = nng_aio_get_input(aio, 0);
  nng_http_handler *h = nng_aio_get_input(aio, 1);
  mf_whip_t *w = nng_http_handler_get_data(h);
  const char *method = nng_http_req_get_method(req);
  mf_whip_path_t path;
  if (mf_whip_path_parse(nng_http_req_get_uri(req), &path) != MF_OK)
    return http_text(aio, NNG_HTTP_STATUS_NOT_FOUND, "not found: use /whip/<room> or /whep/<room>[/<producerId>]");
  if (strcmp(method, "OPTIONS") == 0)
    return http_send(aio, NNG_HTTP_STATUS_NO_CONTENT, NULL, NULL, 0, "Allow",
                     "POST, DELETE, OPTIONS", "Accept-Post", "application/sdp");
  if (strcmp(method, "PATCH") == 0)
    return http_text(aio, NNG_HTTP_STATUS_METHOD_NOT_ALLOWED,
                     "no trickle ICE or ICE restart: the server is ICE-lite and its answer "
                     "carries its candidates");
  if (strcmp(method, "POST") != 0 && strcmp(method, "DELETE") != 0)
    return http_text(aio, NNG_HTTP_STATUS_METHOD_NOT_ALLOWED, "use POST or DELETE");
  const char *tok = NULL;
  size_t tok_len = 0;
  mf_jwt_claims_t claims;
  char why[MF_JWT_ERROR_MAX] = "";
  bool has = mf_whip_bearer(nng_http_req_get_header(req, "Authorization"), &tok, &tok_len);
  if (mf_api_server_check_token(w->server, has ? tok : NULL, tok_len, &claims, why, sizeof why) != MF_OK) {
    char msg[MF_JWT_ERROR_MAX + 64];
    snprintf(msg, sizeof msg, "token rejected: %s (send Authorization: Bearer <JWT>)", why);
    return http_text(aio, NNG_HTTP_STATUS_UNAUTHORIZED, msg);
  }
  if (!mf_jwt_allows_room(&claims, path.room))
    return http_text(aio, NNG_HTTP_STATUS_FORBIDDEN, "the token does not grant this room");
  if (strcmp(method, "POST") == 0) handle_post(w, aio, req, &path, &claims);
  else handle_delete(w, aio, &path);
}

/* ---------------------------------------------------------------- lifecycle */

mf_err_t mf_whip_start(mf_api_server_t *server, mf_whip_t **out) {
  *out = NULL;
  nng_http_server *http = mf_api_server_http(server);
  if (!http) return MF_ERR_INVALID_ARG;
  mf_whip_t *w = calloc(1, sizeof *w);
  if (!w) return MF_ERR_NO_MEMORY;
  w->server = server;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  static const char *const paths[2] = {"/whip", "/whep"};
  mf_err_t e = MF_OK;
  for (int i = 0; i < 2 && !e; i++) {
    if (nng_http_handler_alloc(&w->handlers[i], paths[i], http_cb) != 0 ||
        nng_http_handler_set_method(w->handlers[i], NULL) != 0 ||
        nng_http_handler_collect_body(w->handlers[i], true, MF_WHIP_BODY_MAX) != 0 ||
        nng_http_handler_set_tree(w->handlers[i]) != 0 ||
        nng_http_handler_set_data(w->handlers[i], w, NULL) != 0) {
      e = MF_ERR_NO_MEMORY;
    } else if (nng_http_server_add_handler(http, w->handlers[i]) != 0) {
      MF_LOG_ERROR("cannot register %s", paths[i]);
      e = MF_ERR_IO;
    } else {
      w->registered[i] = true;
    }
  }
  if (!e) {
    if (pthread_create(&w->thread, NULL, whip_thread, w) != 0) e = MF_ERR_NO_MEMORY;
    else w->thread_started = true;
  }
  if (e) {
    mf_whip_stop(w);
    mf_whip_destroy(w);
    return e;
  }
  *out = w;
  return MF_OK;
}

void mf_whip_stop(mf_whip_t *w) {
  if (!w) return;
  nng_http_server *http = mf_api_server_http(w->server);
  for (int i = 0; i < 2; i++)
    if (w->registered[i]) {
      nng_http_server_del_handler(http, w->handlers[i]);
      w->registered[i] = false;
    }
  pthread_mutex_lock(&w->mu);
  w->stopping = true;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  if (w->thread_started) pthread_join(w->thread, NULL);
  w->thread_started = false;
  /* No thread runs resources now; sinks may still queue until each session ends. */
  for (;;) {
    pthread_mutex_lock(&w->mu);
    res_t *r = w->all;
    pthread_mutex_unlock(&w->mu);
    if (!r) break;
    r->close_status = NNG_HTTP_STATUS_SERVICE_UNAVAILABLE;
    res_end(r); /* its transports close with the session (the gateway's on_close) */
  }
  pthread_mutex_lock(&w->mu);
  while (w->head) {
    item_t *it = w->head;
    w->head = it->next;
    free(it);
  }
  w->tail = NULL;
  pthread_mutex_unlock(&w->mu);
}

void mf_whip_destroy(mf_whip_t *w) {
  if (!w) return;
  for (int i = 0; i < 2; i++)
    if (w->handlers[i]) nng_http_handler_free(w->handlers[i]);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w);
}

size_t mf_whip_count(mf_whip_t *w) {
  if (!w) return 0;
  pthread_mutex_lock(&w->mu);
  size_t n = w->established;
  pthread_mutex_unlock(&w->mu);
  return n;
}
