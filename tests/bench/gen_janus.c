#include "tests/bench/gen_janus.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "tests/bench/gen_janus_sdp.h"
#include "tests/support/http_client.h"

#define IO_MS 10000
#define EVENT_WAIT_S 15.0
#define MAX_ROOMS 16
#define SDP_CAP (64 * 1024)
/* JANUS_VIDEOROOM_ERROR_NO_SUCH_FEED: also what a subscriber gets for a publisher whose
 * PeerConnection is up on our side but not yet set up in the plugin (a few ms later) */
#define VIDEOROOM_NO_SUCH_FEED 428
#define JOIN_RETRIES 50
#define JOIN_RETRY_MS 100

struct mf_gen_janus {
  uint16_t port;
  json_int_t session;
  uint64_t next_tx, next_cred;
  uint64_t salt;
  char rooms[MAX_ROOMS][64];
  size_t nrooms;
};

/* ---------------------------------------------------------------- HTTP + JSON */

/* POSTs req (a new reference, consumed) to path with a fresh transaction (copied to tx):
 * Janus's answer (a new reference) or NULL (printed). */
static json_t *post(mf_gen_janus_t *j, const char *path, json_t *req, char tx[32]) {
  char txb[32];
  if (!tx) tx = txb;
  snprintf(tx, 32, "mfg%" PRIu64, ++j->next_tx);
  json_object_set_new(req, "transaction", json_string(tx));
  char *text = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  if (!text) return NULL;
  static const char *const hdr[] = {"Content-Type: application/json", NULL};
  test_http_res_t res;
  int rv = test_http(j->port, "POST", path, hdr, text, strlen(text), IO_MS, &res);
  free(text);
  json_t *ans = NULL;
  if (rv == 0 && res.status == 200 && res.body)
    ans = json_loadb(res.body, res.body_len, JSON_REJECT_DUPLICATES, NULL);
  if (!json_is_object(ans)) {
    fprintf(stderr, "gen-janus: POST %s: no JSON answer (HTTP %d)\n", path, res.status);
    json_decref(ans);
    ans = NULL;
  } else {
    const char *kind = json_string_value(json_object_get(ans, "janus"));
    if (!kind || strcmp(kind, "error") == 0) {
      const char *why =
          json_string_value(json_object_get(json_object_get(ans, "error"), "reason"));
      fprintf(stderr, "gen-janus: POST %s refused: %s\n", path, why ? why : "?");
      json_decref(ans);
      ans = NULL;
    }
  }
  test_http_res_free(&res);
  return ans;
}

static json_int_t data_id(const json_t *ans) {
  const json_t *id = json_object_get(json_object_get(ans, "data"), "id");
  return json_is_integer(id) ? json_integer_value(id) : 0;
}

/* The plugin's event for transaction tx (its whole message, a new reference), from
 * long-polls; other events are dropped. NULL (printed) on timeout or a plugin error. */
static json_t *wait_event(mf_gen_janus_t *j, const char *tx, json_int_t *error_code) {
  if (error_code) *error_code = 0;
  char path[64];
  snprintf(path, sizeof path, "/janus/%" JSON_INTEGER_FORMAT "?maxev=16", j->session);
  double until = (double)mf_clock_now_ms() / 1000 + EVENT_WAIT_S;
  while ((double)mf_clock_now_ms() / 1000 < until) {
    test_http_res_t res;
    /* Janus holds a long-poll up to 30 s when idle */
    if (test_http(j->port, "GET", path, NULL, NULL, 0, 35000, &res) != 0 || res.status != 200) {
      test_http_res_free(&res);
      fprintf(stderr, "gen-janus: long-poll failed\n");
      return NULL;
    }
    json_t *evs = json_loadb(res.body ? res.body : "", res.body_len, 0, NULL);
    test_http_res_free(&res);
    if (json_is_object(evs)) { /* without maxev support: one event */
      json_t *a = json_array();
      json_array_append_new(a, evs);
      evs = a;
    }
    json_t *found = NULL;
    size_t i;
    json_t *ev;
    json_array_foreach(evs, i, ev) {
      const char *t = json_string_value(json_object_get(ev, "transaction"));
      const char *kind = json_string_value(json_object_get(ev, "janus"));
      if (!found && t && kind && strcmp(t, tx) == 0 && strcmp(kind, "event") == 0)
        found = json_incref(ev);
    }
    json_decref(evs);
    if (!found) continue;
    const json_t *data = json_object_get(json_object_get(found, "plugindata"), "data");
    const char *err = json_string_value(json_object_get(data, "error"));
    if (!json_is_object(data) || err) {
      json_int_t code = json_integer_value(json_object_get(data, "error_code"));
      if (error_code) *error_code = code;
      if (code != VIDEOROOM_NO_SUCH_FEED || !error_code)
        fprintf(stderr, "gen-janus: videoroom error: %s\n", err ? err : "no plugin data");
      json_decref(found);
      return NULL;
    }
    return found;
  }
  fprintf(stderr, "gen-janus: no event for %s\n", tx);
  return NULL;
}

static json_int_t attach(mf_gen_janus_t *j) {
  char path[64];
  snprintf(path, sizeof path, "/janus/%" JSON_INTEGER_FORMAT, j->session);
  json_t *ans = post(j, path, json_pack("{s:s, s:s}", "janus", "attach", "plugin",
                                        "janus.plugin.videoroom"), NULL);
  json_int_t h = data_id(ans);
  json_decref(ans);
  return h;
}

/* A message to the plugin on handle h: Janus's immediate answer (ack or success). */
static json_t *message(mf_gen_janus_t *j, json_int_t h, json_t *body, json_t *jsep, char tx[32]) {
  char path[96];
  snprintf(path, sizeof path, "/janus/%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
           j->session, h);
  json_t *req = json_pack("{s:s, s:o}", "janus", "message", "body", body);
  if (jsep) json_object_set_new(req, "jsep", jsep);
  return post(j, path, req, tx);
}

/* The numeric room id of a room name (created through handle h on first use); 0 on
 * failure. */
static json_int_t room_id(mf_gen_janus_t *j, json_int_t h, const char *room) {
  for (size_t i = 0; i < j->nrooms; i++)
    if (strcmp(j->rooms[i], room) == 0) return (json_int_t)(1000 + i);
  if (j->nrooms == MAX_ROOMS || strlen(room) >= sizeof j->rooms[0]) return 0;
  json_int_t id = (json_int_t)(1000 + j->nrooms);
  /* as mafalda's rooms: no bitrate cap, no periodic FIR, no join notifications */
  json_t *ans = message(j, h,
                        json_pack("{s:s, s:I, s:i, s:i, s:i, s:s, s:s, s:b, s:b}", "request",
                                  "create", "room", id, "publishers", 5000, "bitrate", 0,
                                  "fir_freq", 0, "audiocodec", "opus", "videocodec", "vp8",
                                  "notify_joining", 0, "permanent", 0),
                        NULL, NULL);
  const json_t *d = json_object_get(json_object_get(ans, "plugindata"), "data");
  const char *what = json_string_value(json_object_get(d, "videoroom"));
  bool ok = what && strcmp(what, "created") == 0;
  if (!ok) fprintf(stderr, "gen-janus: room create failed\n");
  json_decref(ans);
  if (!ok) return 0;
  snprintf(j->rooms[j->nrooms++], sizeof j->rooms[0], "%s", room);
  return id;
}

/* ---------------------------------------------------------------- session */

mf_err_t mf_gen_janus_create(uint16_t port, mf_gen_janus_t **out) {
  if (!port || !out) return MF_ERR_INVALID_ARG;
  mf_gen_janus_t *j = calloc(1, sizeof *j);
  if (!j) return MF_ERR_NO_MEMORY;
  j->port = port;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  j->salt = ((uint64_t)ts.tv_nsec << 17) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)j;
  json_t *ans = post(j, "/janus", json_pack("{s:s}", "janus", "create"), NULL);
  j->session = data_id(ans);
  json_decref(ans);
  if (!j->session) {
    free(j);
    return MF_ERR_IO;
  }
  *out = j;
  return MF_OK;
}

void mf_gen_janus_free(mf_gen_janus_t *j) {
  if (!j) return;
  char path[64];
  snprintf(path, sizeof path, "/janus/%" JSON_INTEGER_FORMAT, j->session);
  json_decref(post(j, path, json_pack("{s:s}", "janus", "destroy"), NULL));
  free(j);
}

/* ---------------------------------------------------------------- peers */

typedef struct {
  char ufrag[16], pwd[40];
} creds_t;

static void make_creds(mf_gen_janus_t *j, creds_t *c) {
  uint64_t n = ++j->next_cred;
  uint64_t x = (j->salt ^ (n * UINT64_C(0x9E3779B97F4A7C15))) * UINT64_C(0xBF58476D1CE4E5B9);
  snprintf(c->ufrag, sizeof c->ufrag, "mfu%05" PRIx64, n & 0xfffff);
  snprintf(c->pwd, sizeof c->pwd, "mfpwd%016" PRIx64 "%08" PRIx64, x, n);
}

static mf_err_t new_peer(mf_gen_janus_t *j, mf_dtls_context_t *dtls, bool controlled,
                         creds_t *c, mf_webrtc_peer_t **peer) {
  make_creds(j, c);
  mf_webrtc_peer_opts_t o = {.full_ice = true, .controlled = controlled,
                             .local_ufrag = c->ufrag, .local_pwd = c->pwd};
  mf_err_t e = mf_webrtc_peer_create_ex(dtls, NULL, &o, mf_clock_now_ms(), peer);
  if (e != MF_OK) fprintf(stderr, "gen-janus: peer socket: %s\n", mf_err_name(e));
  return e;
}

static mf_err_t set_remote(mf_webrtc_peer_t *peer, const mf_gen_janus_sdp_t *sdp) {
  mf_webrtc_peer_remote_t r = {.ufrag = sdp->ufrag, .pwd = sdp->pwd, .ip = sdp->cand_ip,
                               .port = sdp->cand_port, .fingerprint = sdp->fingerprint};
  return mf_webrtc_peer_set_remote(peer, &r, mf_clock_now_ms());
}

/* Janus's SDP in an event's jsep of the given type, parsed into a heap struct. */
static mf_gen_janus_sdp_t *event_sdp(const json_t *ev, const char *type) {
  const json_t *jsep = json_object_get(ev, "jsep");
  const char *t = json_string_value(json_object_get(jsep, "type"));
  const json_t *s = json_object_get(jsep, "sdp");
  if (!t || strcmp(t, type) != 0 || !json_is_string(s)) {
    fprintf(stderr, "gen-janus: the event has no %s\n", type);
    return NULL;
  }
  mf_gen_janus_sdp_t *sdp = malloc(sizeof *sdp);
  if (sdp && mf_gen_janus_sdp_parse(json_string_value(s), json_string_length(s), sdp) != MF_OK) {
    fprintf(stderr, "gen-janus: Janus's SDP %s refused by the parser\n", type);
    free(sdp);
    return NULL;
  }
  return sdp;
}

mf_err_t mf_gen_janus_publish(mf_gen_janus_t *j, const char *room, mf_dtls_context_t *dtls,
                              const char *fingerprint, int video_pt, uint32_t video_ssrc,
                              int audio_pt, uint32_t audio_ssrc, mf_webrtc_peer_t **peer,
                              uint64_t *feed) {
  if (!j || !room || !dtls || !fingerprint || !peer || !feed) return MF_ERR_INVALID_ARG;
  *peer = NULL;
  json_int_t h = attach(j);
  json_int_t rid = h ? room_id(j, h, room) : 0;
  if (!rid) return MF_ERR_IO;
  creds_t c;
  mf_webrtc_peer_t *p = NULL;
  if (new_peer(j, dtls, false, &c, &p) != MF_OK) return MF_ERR_IO;
  mf_gen_janus_local_t local = {.ufrag = c.ufrag, .pwd = c.pwd, .fingerprint = fingerprint,
                                .ip = "127.0.0.1", .port = mf_webrtc_peer_local_port(p)};
  char *offer = malloc(SDP_CAP);
  size_t olen = 0;
  mf_err_t e = offer ? mf_gen_janus_sdp_write_offer(&local, video_pt, video_ssrc, audio_pt,
                                                    audio_ssrc, offer, SDP_CAP, &olen)
                     : MF_ERR_NO_MEMORY;
  char tx[32];
  json_t *ack = NULL, *ev = NULL;
  mf_gen_janus_sdp_t *answer = NULL;
  if (e == MF_OK) {
    ack = message(j, h,
                  json_pack("{s:s, s:I, s:s, s:s}", "request", "joinandconfigure", "room", rid,
                            "ptype", "publisher", "display", "mfgen"),
                  json_pack("{s:s, s:s%}", "type", "offer", "sdp", offer, olen), tx);
    ev = ack ? wait_event(j, tx, NULL) : NULL;
    answer = ev ? event_sdp(ev, "answer") : NULL;
    const json_t *d = json_object_get(json_object_get(ev, "plugindata"), "data");
    json_int_t id = json_integer_value(json_object_get(d, "id"));
    if (!answer || id <= 0) e = MF_ERR_PARSE;
    *feed = (uint64_t)id;
  }
  if (e == MF_OK) e = set_remote(p, answer);
  free(offer);
  free(answer);
  json_decref(ack);
  json_decref(ev);
  if (e != MF_OK) {
    mf_webrtc_peer_free(p);
    return e;
  }
  *peer = p;
  return MF_OK;
}

/* The feed of the stream with this mid, from the "attached" event's streams. */
static bool stream_feed(const json_t *streams, const char *mid, const uint64_t *feeds,
                        size_t nfeeds, size_t *index) {
  size_t i;
  const json_t *s;
  json_array_foreach(streams, i, s) {
    const char *m = json_string_value(json_object_get(s, "mid"));
    if (!m || strcmp(m, mid) != 0) continue;
    json_int_t f = json_integer_value(json_object_get(s, "feed_id"));
    for (size_t k = 0; k < nfeeds; k++)
      if ((json_int_t)feeds[k] == f) {
        *index = k;
        return true;
      }
    return false;
  }
  return false;
}

mf_err_t mf_gen_janus_subscribe(mf_gen_janus_t *j, const char *room, mf_dtls_context_t *dtls,
                                const char *fingerprint, const uint64_t *feeds, size_t nfeeds,
                                uint32_t rtcp_ssrc, mf_webrtc_peer_t **peer,
                                mf_gen_janus_track_t *tracks, size_t cap, size_t *ntracks) {
  if (!j || !room || !dtls || !fingerprint || !feeds || !nfeeds || !peer || !tracks ||
      !ntracks)
    return MF_ERR_INVALID_ARG;
  *peer = NULL;
  *ntracks = 0;
  json_int_t h = attach(j);
  json_int_t rid = h ? room_id(j, h, room) : 0;
  if (!rid) return MF_ERR_IO;
  char tx[32];
  json_t *ack = NULL, *ev = NULL;
  for (int attempt = 0; attempt < JOIN_RETRIES && !ev; attempt++) {
    if (attempt) {
      struct timespec ts = {.tv_sec = 0, .tv_nsec = JOIN_RETRY_MS * 1000000L};
      nanosleep(&ts, NULL);
    }
    json_t *streams = json_array();
    for (size_t i = 0; i < nfeeds; i++)
      json_array_append_new(streams, json_pack("{s:I}", "feed", (json_int_t)feeds[i]));
    ack = message(j, h,
                  json_pack("{s:s, s:I, s:s, s:o}", "request", "join", "room", rid, "ptype",
                            "subscriber", "streams", streams),
                  NULL, tx);
    json_int_t code = 0;
    ev = ack ? wait_event(j, tx, &code) : NULL;
    json_decref(ack);
    ack = NULL;
    if (!ev && code != VIDEOROOM_NO_SUCH_FEED) break;
  }
  if (!ev) fprintf(stderr, "gen-janus: subscriber join failed\n");
  mf_gen_janus_sdp_t *offer = ev ? event_sdp(ev, "offer") : NULL;
  const json_t *jstreams =
      json_object_get(json_object_get(json_object_get(ev, "plugindata"), "data"), "streams");
  mf_err_t e = offer ? MF_OK : MF_ERR_PARSE;
  /* the tracks Janus offers, by mid -> feed */
  for (size_t i = 0; e == MF_OK && offer && i < offer->nmedia; i++) {
    const mf_gen_janus_media_t *m = &offer->media[i];
    if (m->rejected || m->kind == MF_GEN_JANUS_MEDIA_OTHER) continue;
    mf_gen_janus_track_t t = {.video = m->kind == MF_GEN_JANUS_MEDIA_VIDEO, .ssrc = m->ssrc,
                              .rtx_ssrc = m->rtx_ssrc, .pt = m->pt};
    if (*ntracks == cap || !m->ssrc || !stream_feed(jstreams, m->mid, feeds, nfeeds, &t.feed_index)) {
      fprintf(stderr, "gen-janus: offered stream mid %s: no SSRC or unknown feed\n", m->mid);
      e = MF_ERR_PARSE;
      break;
    }
    tracks[(*ntracks)++] = t;
  }
  creds_t c;
  mf_webrtc_peer_t *p = NULL;
  if (e == MF_OK) e = new_peer(j, dtls, true, &c, &p);
  char *answer = e == MF_OK ? malloc(SDP_CAP) : NULL;
  if (e == MF_OK && !answer) e = MF_ERR_NO_MEMORY;
  size_t alen = 0;
  if (e == MF_OK) {
    mf_gen_janus_local_t local = {.ufrag = c.ufrag, .pwd = c.pwd, .fingerprint = fingerprint,
                                  .ip = "127.0.0.1", .port = mf_webrtc_peer_local_port(p)};
    e = mf_gen_janus_sdp_write_answer(offer, &local, rtcp_ssrc, answer, SDP_CAP, &alen);
  }
  json_t *started = NULL;
  if (e == MF_OK) {
    ack = message(j, h, json_pack("{s:s}", "request", "start"),
                  json_pack("{s:s, s:s%}", "type", "answer", "sdp", answer, alen), tx);
    started = ack ? wait_event(j, tx, NULL) : NULL;
    const json_t *d = json_object_get(json_object_get(started, "plugindata"), "data");
    if (!started || !json_object_get(d, "started")) e = MF_ERR_IO;
  }
  if (e == MF_OK) e = set_remote(p, offer);
  free(answer);
  free(offer);
  json_decref(ack);
  json_decref(ev);
  json_decref(started);
  if (e != MF_OK) {
    mf_webrtc_peer_free(p);
    *ntracks = 0;
    return e;
  }
  *peer = p;
  return MF_OK;
}
