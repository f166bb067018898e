#define MF_LOG_MODULE "gen"
#include "tests/bench/gen.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "node/dtls.h"
#include "node/rtp/rtcp.h"
#include "node/rtp/rtp.h"
#include "node/srtp.h"
#include "tests/bench/gen_janus.h"
#include "tests/support/webrtc_peer.h"
#include "tests/support/ws_client.h"

#define IO_MS 10000
#define BATCH 32
#define PKT_CAP 1600
#define VIDEO_PT 96
#define AUDIO_PT 111
#define NACK_MAX_GAP 64 /* a larger jump is a restart, not loss worth asking for */
#define RTCP_INTERVAL_MS 1000

typedef struct {
  nng_stream *ws;
  int next_id;
} api_t;

/* One consumed stream at a subscriber. */
typedef struct {
  bool video;
  uint32_t ssrc, rtx_ssrc;
  char id[64];
  mf_gen_seq_t seq;          /* the SFU's RTP sequence numbers: RR and NACK */
  mf_bench_stream_t *stats; /* large: allocated once */
} track_t;

typedef struct {
  api_t api;
  json_t *transport;
  char tid[64];
  mf_webrtc_peer_t *peer;
  bool publisher;
  uint32_t rtcp_ssrc;
  uint64_t next_rtcp_ms;
  /* publisher */
  uint32_t video_ssrc, audio_ssrc;
  char video_id[64], audio_id[64];
  uint16_t video_seq, audio_seq, video_stamp_seq, audio_stamp_seq;
  uint32_t video_stream, audio_stream;
  mf_gen_video_t vmodel;
  mf_gen_audio_t amodel;
  uint32_t last_video_ts, last_audio_ts;
  uint64_t video_sent, audio_sent, video_octets, audio_octets;
  uint64_t janus_feed; /* --sfu janus: the publisher's feed id */
  /* subscriber */
  track_t *tracks;
  size_t ntracks;
} gpeer_t;

struct mf_gen {
  mf_gen_config_t cfg;
  mf_dtls_cert_t *cert;
  mf_dtls_context_t *dtls;
  gpeer_t **peers;
  size_t npeers, cap;
  gpeer_t **pubs;
  size_t npubs;
  uint64_t plis_sent, nacks_sent, nacked_seqs, rtx_received, plis_received, nacks_received,
      keyframes_sent;
  uint64_t sent, forwarded; /* RTP packets, counted always; the run takes differences */
  mf_gen_janus_t *janus;    /* cfg.janus_port != 0: peers join Janus instead */
  pid_t extra_sfu[MF_GEN_MAX_EXTRA_SFU]; /* mf_gen_add_sfu_pid: summed with the run's sfu_pid */
  size_t nextra_sfu;
};

/* ---------------------------------------------------------------- the API */

/* The answer's data (a new reference) or NULL (printed). */
static json_t *api_call(api_t *a, const char *method, json_t *data) {
  int id = ++a->next_id;
  json_t *req = json_pack("{s:i, s:s, s:o}", "id", id, "method", method,
                          "data", data ? data : json_object());
  char *text = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  int rv = text ? mf_test_ws_send(a->ws, text, strlen(text), IO_MS) : -1;
  free(text);
  if (rv != 0) {
    fprintf(stderr, "gen: %s: send failed\n", method);
    return NULL;
  }
  for (;;) {
    json_t *m = mf_test_ws_recv(a->ws, IO_MS);
    if (!m) {
      fprintf(stderr, "gen: %s: no answer\n", method);
      return NULL;
    }
    if (json_integer_value(json_object_get(m, "id")) != id || !json_object_get(m, "ok")) {
      json_decref(m); /* a notification */
      continue;
    }
    if (!json_is_true(json_object_get(m, "ok"))) {
      char *t = json_dumps(m, JSON_COMPACT);
      fprintf(stderr, "gen: %s refused: %s\n", method, t ? t : "?");
      free(t);
      json_decref(m);
      return NULL;
    }
    json_t *d = json_incref(json_object_get(m, "data"));
    json_decref(m);
    return d ? d : json_object();
  }
}

static bool api_ok(api_t *a, const char *method, json_t *data) {
  json_t *d = api_call(a, method, data);
  json_decref(d);
  return d != NULL;
}

static void copy_id(char *dst, size_t cap, const json_t *d) {
  const char *s = json_string_value(json_object_get(d, "id"));
  snprintf(dst, cap, "%s", s ? s : "");
}

/* ---------------------------------------------------------------- setup */

mf_err_t mf_gen_create(const mf_gen_config_t *cfg, mf_gen_t **out) {
  if (!cfg || !out || mf_gen_video_effective_bps(&cfg->video) == 0) return MF_ERR_INVALID_ARG;
  mf_gen_t *g = calloc(1, sizeof *g);
  if (!g) return MF_ERR_NO_MEMORY;
  g->cfg = *cfg;
  mf_err_t e = mf_srtp_library_init();
  if (e == MF_OK) e = mf_dtls_cert_generate(&g->cert);
  if (e == MF_OK) e = mf_dtls_context_create(g->cert, &g->dtls);
  if (e == MF_OK && cfg->janus_port) e = mf_gen_janus_create(cfg->janus_port, &g->janus);
  if (e != MF_OK) {
    mf_gen_free(g);
    return e;
  }
  *out = g;
  return MF_OK;
}

static void peer_free(gpeer_t *p) {
  if (!p) return;
  mf_webrtc_peer_free(p->peer);
  if (p->api.ws) mf_test_ws_free(p->api.ws);
  json_decref(p->transport);
  for (size_t i = 0; i < p->ntracks; i++) free(p->tracks[i].stats);
  free(p->tracks);
  free(p);
}

void mf_gen_free(mf_gen_t *g) {
  if (!g) return;
  for (size_t i = 0; i < g->npeers; i++) peer_free(g->peers[i]);
  free(g->peers);
  free(g->pubs);
  mf_gen_janus_free(g->janus);
  mf_dtls_context_free(g->dtls);
  mf_dtls_cert_free(g->cert);
  free(g);
}

/* Keeps the ICE consent of connected peers alive and empties their sockets while a long
 * setup runs (nothing is measured yet). */
static void service_idle(mf_gen_t *g) {
  uint64_t now = mf_clock_now_ms();
  uint8_t buf[PKT_CAP];
  for (size_t i = 0; i < g->npeers; i++) {
    gpeer_t *p = g->peers[i];
    if (!p->peer) continue;
    ssize_t n;
    while ((n = recv(mf_webrtc_peer_fd(p->peer), buf, sizeof buf, MSG_DONTWAIT)) > 0) {
      size_t len = (size_t)n;
      mf_webrtc_peer_input(p->peer, buf, &len, now);
    }
    mf_webrtc_peer_tick(p->peer, now);
  }
}

static mf_err_t add_peer(mf_gen_t *g, gpeer_t *p) {
  if (g->npeers == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 16;
    gpeer_t **n = realloc(g->peers, cap * sizeof *n);
    if (!n) return MF_ERR_NO_MEMORY;
    g->peers = n;
    g->cap = cap;
  }
  g->peers[g->npeers++] = p;
  return MF_OK;
}

/* Session, join, transport, connect (DTLS client with our certificate). */
static gpeer_t *peer_open(mf_gen_t *g, const char *room) {
  service_idle(g);
  gpeer_t *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->rtcp_ssrc = 0x5000u + (uint32_t)g->npeers;
  p->api.ws = mf_test_ws_dial("127.0.0.1", g->cfg.api_port, "", IO_MS);
  if (!p->api.ws) {
    fprintf(stderr, "gen: WebSocket to 127.0.0.1:%u failed\n", g->cfg.api_port);
    free(p);
    return NULL;
  }
  json_t *d = api_call(&p->api, "router.join", json_pack("{s:s}", "roomId", room));
  json_decref(d);
  if (d) p->transport = api_call(&p->api, "router.createWebRtcTransport", json_object());
  if (!d || !p->transport) {
    peer_free(p);
    return NULL;
  }
  copy_id(p->tid, sizeof p->tid, p->transport);
  if (!api_ok(&p->api, "transport.connect",
              json_pack("{s:s, s:{s:s, s:[{s:s, s:s}]}}", "transportId", p->tid,
                        "dtlsParameters", "role", "client", "fingerprints", "algorithm",
                        "sha-256", "value", mf_dtls_cert_fingerprint(g->cert)))) {
    peer_free(p);
    return NULL;
  }
  return p;
}

/* ICE + DTLS, blocking. */
static bool peer_connect(mf_gen_t *g, gpeer_t *p) {
  mf_webrtc_peer_remote_t r;
  if (mf_webrtc_peer_remote_from_json(p->transport, &r) != MF_OK ||
      mf_webrtc_peer_create(g->dtls, &r, mf_clock_now_ms(), &p->peer) != MF_OK) {
    fprintf(stderr, "gen: peer setup failed\n");
    return false;
  }
  mf_err_t e = mf_webrtc_peer_connect(p->peer, 10000);
  if (e != MF_OK) {
    fprintf(stderr, "gen: ICE/DTLS with %s:%u %s\n", r.ip, r.port,
            e == MF_ERR_TIMEOUT ? "timed out" : "failed");
    return false;
  }
  return true;
}

/* ---- the same peers against Janus (gen_janus.h): its API instead of mafalda's */

static bool janus_peer_connect(gpeer_t *p) {
  mf_err_t e = p->peer ? mf_webrtc_peer_connect(p->peer, 10000) : MF_ERR_STATE;
  if (e != MF_OK)
    fprintf(stderr, "gen: ICE/DTLS with Janus %s\n", e == MF_ERR_TIMEOUT ? "timed out" : "failed");
  return e == MF_OK;
}

static mf_err_t janus_add_publisher(mf_gen_t *g, const char *room, size_t *index) {
  service_idle(g);
  gpeer_t *p = calloc(1, sizeof *p);
  gpeer_t **pubs = realloc(g->pubs, (g->npubs + 1) * sizeof *pubs);
  if (pubs) g->pubs = pubs;
  if (!p || !pubs) {
    free(p);
    return MF_ERR_NO_MEMORY;
  }
  size_t k = g->npubs;
  p->publisher = true;
  p->rtcp_ssrc = 0x5000u + (uint32_t)g->npeers;
  p->video_ssrc = 0x10000u + 2 * (uint32_t)k;
  p->audio_ssrc = p->video_ssrc + 1;
  p->video_stream = 2 * (uint32_t)k + 1;
  p->audio_stream = 2 * (uint32_t)k + 2;
  if (mf_gen_janus_publish(g->janus, room, g->dtls, mf_dtls_cert_fingerprint(g->cert), VIDEO_PT,
                           p->video_ssrc, AUDIO_PT, p->audio_ssrc, &p->peer,
                           &p->janus_feed) != MF_OK ||
      !janus_peer_connect(p) || add_peer(g, p) != MF_OK) {
    peer_free(p);
    return MF_ERR_IO;
  }
  g->pubs[g->npubs++] = p;
  if (index) *index = k;
  return MF_OK;
}

/* Janus rewrites SSRCs (and may renumber payload types): the tracks are what its offer
 * says; the stamps in the payloads are untouched, so the accounting is the same. */
static mf_err_t janus_add_subscriber(mf_gen_t *g, const char *room, const size_t *publishers,
                                     size_t count) {
  service_idle(g);
  size_t cap = 2 * count + 1, n = 0;
  gpeer_t *s = calloc(1, sizeof *s);
  uint64_t *feeds = calloc(count, sizeof *feeds);
  mf_gen_janus_track_t *jt = calloc(cap, sizeof *jt);
  bool ok = s && feeds && jt && (s->tracks = calloc(cap, sizeof *s->tracks)) != NULL;
  if (ok) s->rtcp_ssrc = 0x5000u + (uint32_t)g->npeers;
  for (size_t i = 0; ok && i < count; i++) feeds[i] = g->pubs[publishers[i]]->janus_feed;
  ok = ok && mf_gen_janus_subscribe(g->janus, room, g->dtls, mf_dtls_cert_fingerprint(g->cert),
                                    feeds, count, s->rtcp_ssrc, &s->peer, jt, cap, &n) == MF_OK;
  for (size_t k = 0; ok && k < n; k++) {
    track_t *t = &s->tracks[s->ntracks];
    memset(t, 0, sizeof *t);
    const gpeer_t *pub = g->pubs[publishers[jt[k].feed_index]];
    t->video = jt[k].video;
    t->ssrc = jt[k].ssrc;
    t->rtx_ssrc = jt[k].rtx_ssrc;
    snprintf(t->id, sizeof t->id, "janus-%zu", k);
    t->stats = malloc(sizeof *t->stats);
    if (!t->stats) {
      ok = false;
      break;
    }
    mf_bench_stream_init(t->stats, t->video ? pub->video_stream : pub->audio_stream);
    s->ntracks++;
  }
  free(feeds);
  free(jt);
  if (!ok || !janus_peer_connect(s) || add_peer(g, s) != MF_OK) {
    peer_free(s);
    return MF_ERR_IO;
  }
  return MF_OK;
}

mf_err_t mf_gen_add_publisher(mf_gen_t *g, const char *room, size_t *index) {
  if (g->janus) return janus_add_publisher(g, room, index);
  gpeer_t *p = peer_open(g, room);
  if (!p) return MF_ERR_IO;
  size_t k = g->npubs;
  p->publisher = true;
  p->video_ssrc = 0x10000u + 2 * (uint32_t)k;
  p->audio_ssrc = p->video_ssrc + 1;
  p->video_stream = 2 * (uint32_t)k + 1;
  p->audio_stream = 2 * (uint32_t)k + 2;
  json_t *vp = json_pack(
      "{s:s, s:[{s:s, s:i, s:i, s:[{s:s}, {s:s, s:s}]}], s:[], s:[{s:i}], s:{s:s}}", "mid", "0",
      "codecs", "mimeType", "video/VP8", "payloadType", VIDEO_PT, "clockRate", 90000,
      "rtcpFeedback", "type", "nack", "type", "nack", "parameter", "pli", "headerExtensions",
      "encodings", "ssrc", (json_int_t)p->video_ssrc, "rtcp", "cname", "mfgen");
  json_t *ap = json_pack("{s:s, s:[{s:s, s:i, s:i, s:i, s:[]}], s:[], s:[{s:i}], s:{s:s}}",
                         "mid", "1", "codecs", "mimeType", "audio/opus", "payloadType", AUDIO_PT,
                         "clockRate", 48000, "channels", 2, "rtcpFeedback", "headerExtensions",
                         "encodings", "ssrc", (json_int_t)p->audio_ssrc, "rtcp", "cname", "mfgen");
  json_t *dv = api_call(&p->api, "transport.produce",
                        json_pack("{s:s, s:s, s:o}", "transportId", p->tid, "kind", "video",
                                  "rtpParameters", vp));
  json_t *da = dv ? api_call(&p->api, "transport.produce",
                             json_pack("{s:s, s:s, s:o}", "transportId", p->tid, "kind",
                                       "audio", "rtpParameters", ap))
                  : (json_decref(ap), NULL);
  if (dv) copy_id(p->video_id, sizeof p->video_id, dv);
  if (da) copy_id(p->audio_id, sizeof p->audio_id, da);
  json_decref(dv);
  json_decref(da);
  gpeer_t **pubs = realloc(g->pubs, (g->npubs + 1) * sizeof *pubs);
  if (!dv || !da || !pubs || !peer_connect(g, p) || add_peer(g, p) != MF_OK) {
    if (pubs) g->pubs = pubs;
    peer_free(p);
    return MF_ERR_IO;
  }
  g->pubs = pubs;
  g->pubs[g->npubs++] = p;
  if (index) *index = k;
  return MF_OK;
}

static bool consume(mf_gen_t *g, gpeer_t *s, json_t *caps, const char *producer, bool video,
                    uint32_t stream_id) {
  (void)g;
  json_t *d = api_call(&s->api, "transport.consume",
                       json_pack("{s:s, s:s, s:O, s:b}", "transportId", s->tid, "producerId",
                                 producer, "rtpCapabilities", caps, "paused", 1));
  if (!d) return false;
  track_t *t = &s->tracks[s->ntracks];
  memset(t, 0, sizeof *t);
  t->video = video;
  copy_id(t->id, sizeof t->id, d);
  json_t *enc = json_array_get(json_object_get(json_object_get(d, "rtpParameters"), "encodings"), 0);
  t->ssrc = (uint32_t)json_integer_value(json_object_get(enc, "ssrc"));
  t->rtx_ssrc = (uint32_t)json_integer_value(json_object_get(json_object_get(enc, "rtx"), "ssrc"));
  json_decref(d);
  t->stats = malloc(sizeof *t->stats);
  if (!t->stats || !t->ssrc || !t->id[0]) {
    free(t->stats);
    fprintf(stderr, "gen: transport.consume answered no id / ssrc\n");
    return false;
  }
  mf_bench_stream_init(t->stats, stream_id);
  s->ntracks++;
  return true;
}

mf_err_t mf_gen_add_subscriber(mf_gen_t *g, const char *room, const size_t *publishers,
                               size_t count) {
  for (size_t i = 0; i < count; i++)
    if (publishers[i] >= g->npubs) return MF_ERR_INVALID_ARG;
  if (g->janus) return janus_add_subscriber(g, room, publishers, count);
  gpeer_t *s = peer_open(g, room);
  if (!s) return MF_ERR_IO;
  s->tracks = calloc(2 * count + 1, sizeof *s->tracks);
  json_t *caps = NULL;
  json_t *d = s->tracks ? api_call(&s->api, "router.getRtpCapabilities", json_object()) : NULL;
  if (d) caps = json_incref(json_object_get(d, "rtpCapabilities"));
  json_decref(d);
  bool ok = caps != NULL;
  for (size_t i = 0; ok && i < count; i++) {
    gpeer_t *p = g->pubs[publishers[i]];
    ok = consume(g, s, caps, p->video_id, true, p->video_stream) &&
         consume(g, s, caps, p->audio_id, false, p->audio_stream);
  }
  json_decref(caps);
  ok = ok && peer_connect(g, s);
  for (size_t i = 0; ok && i < s->ntracks; i++)
    ok = api_ok(&s->api, "consumer.resume", json_pack("{s:s}", "consumerId", s->tracks[i].id));
  if (!ok || add_peer(g, s) != MF_OK) {
    peer_free(s);
    return MF_ERR_IO;
  }
  return MF_OK;
}

/* ---------------------------------------------------------------- /proc */

double mf_gen_proc_cpu_s(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* fields after the command name, which may hold spaces: state is field 3, utime 14 */
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  unsigned long long ut = 0, st = 0;
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return -1;
  long hz = sysconf(_SC_CLK_TCK);
  return (double)(ut + st) / (double)(hz > 0 ? hz : 100);
}

long mf_gen_proc_rss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb;
}

static double self_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The run's SFU figures: sfu_pid (if > 0) plus every mf_gen_add_sfu_pid process (pipe:
 * both nodes and the controller). */
static double sfu_cpu_sum(const mf_gen_t *g, pid_t sfu_pid) {
  double s = sfu_pid > 0 ? mf_gen_proc_cpu_s(sfu_pid) : 0;
  for (size_t i = 0; i < g->nextra_sfu; i++) s += mf_gen_proc_cpu_s(g->extra_sfu[i]);
  return s;
}

static long sfu_rss_sum(const mf_gen_t *g, pid_t sfu_pid) {
  long s = sfu_pid > 0 ? mf_gen_proc_rss_kb(sfu_pid) : 0;
  for (size_t i = 0; i < g->nextra_sfu; i++) s += mf_gen_proc_rss_kb(g->extra_sfu[i]);
  return s;
}

mf_err_t mf_gen_add_sfu_pid(mf_gen_t *g, pid_t pid) {
  if (!g || pid <= 0 || g->nextra_sfu == MF_GEN_MAX_EXTRA_SFU) return MF_ERR_INVALID_ARG;
  g->extra_sfu[g->nextra_sfu++] = pid;
  return MF_OK;
}

void mf_gen_set_api_port(mf_gen_t *g, uint16_t api_port) {
  if (g) g->cfg.api_port = api_port;
}

mf_err_t mf_gen_publisher_ids(const mf_gen_t *g, size_t index, mf_gen_publisher_ids_t *out) {
  if (!g || !out || index >= g->npubs) return MF_ERR_INVALID_ARG;
  const gpeer_t *p = g->pubs[index];
  snprintf(out->video_id, sizeof out->video_id, "%s", p->video_id);
  snprintf(out->audio_id, sizeof out->audio_id, "%s", p->audio_id);
  out->video_stream = p->video_stream;
  out->audio_stream = p->audio_stream;
  return MF_OK;
}

/* ---------------------------------------------------------------- sending */

typedef struct {
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  uint8_t bufs[BATCH][PKT_CAP];
  size_t n;
} out_batch_t;

static void batch_flush(mf_gen_t *g, gpeer_t *p, out_batch_t *b) {
  size_t done = 0;
  while (done < b->n) {
    int r = sendmmsg(mf_webrtc_peer_fd(p->peer), b->msgs + done, (unsigned)(b->n - done),
                     MSG_DONTWAIT);
    if (r <= 0) break; /* a full socket buffer drops the rest: counted as not sent */
    done += (size_t)r;
  }
  g->sent += done;
  b->n = 0;
}

/* The next free slot (flushing a full batch first). */
static uint8_t *batch_slot(mf_gen_t *g, gpeer_t *p, out_batch_t *b) {
  if (b->n == BATCH) batch_flush(g, p, b);
  return b->bufs[b->n];
}

static void batch_commit(out_batch_t *b, size_t len) {
  b->iov[b->n] = (struct iovec){.iov_base = b->bufs[b->n], .iov_len = len};
  memset(&b->msgs[b->n], 0, sizeof b->msgs[b->n]);
  b->msgs[b->n].msg_hdr.msg_iov = &b->iov[b->n];
  b->msgs[b->n].msg_hdr.msg_iovlen = 1;
  b->n++;
}

static void send_rtcp(gpeer_t *p, uint8_t *buf, size_t len) {
  if (mf_webrtc_peer_protect_rtcp(p->peer, buf, &len, PKT_CAP) == MF_OK)
    mf_webrtc_peer_send(p->peer, buf, len);
}

/* Every due frame and audio packet of one publisher, protected, in batches. */
static void publisher_send(mf_gen_t *g, gpeer_t *p, out_batch_t *b, uint64_t now_ns) {
  mf_gen_frame_t f;
  while (mf_gen_video_next(&p->vmodel, now_ns, &f)) {
    if (f.keyframe) g->keyframes_sent++;
    p->last_video_ts = f.rtp_timestamp;
    for (size_t i = 0; i < f.packets; i++) {
      uint8_t *buf = batch_slot(g, p, b);
      mf_rtp_header_t h = {.marker = i + 1 == f.packets, .payload_type = VIDEO_PT,
                           .sequence = p->video_seq++, .timestamp = f.rtp_timestamp,
                           .ssrc = p->video_ssrc};
      size_t hl = 0;
      mf_bench_stamp_t st = {.stream_id = p->video_stream, .seq = p->video_stamp_seq++,
                             .send_ns = mf_clock_now_ns()};
      if (mf_rtp_write_header(buf, PKT_CAP, &h, &hl) != MF_OK ||
          mf_gen_vp8_write(buf + hl, PKT_CAP - hl - MF_SRTP_MAX_TRAILER, f.sizes[i], i == 0,
                           f.keyframe, f.picture_id, &st) != MF_OK)
        continue;
      size_t len = hl + f.sizes[i];
      if (mf_webrtc_peer_protect_rtp(p->peer, buf, &len, PKT_CAP) != MF_OK) continue;
      p->video_sent++;
      p->video_octets += f.sizes[i];
      batch_commit(b, len);
    }
  }
  uint32_t ts;
  while (mf_gen_audio_next(&p->amodel, now_ns, &ts)) {
    p->last_audio_ts = ts;
    uint8_t *buf = batch_slot(g, p, b);
    mf_rtp_header_t h = {.marker = false, .payload_type = AUDIO_PT, .sequence = p->audio_seq++,
                         .timestamp = ts, .ssrc = p->audio_ssrc};
    size_t hl = 0;
    mf_bench_stamp_t st = {.stream_id = p->audio_stream, .seq = p->audio_stamp_seq++,
                           .send_ns = mf_clock_now_ns()};
    if (mf_rtp_write_header(buf, PKT_CAP, &h, &hl) != MF_OK ||
        mf_gen_opus_write(buf + hl, PKT_CAP - hl, p->amodel.payload_bytes, &st) != MF_OK)
      continue;
    size_t len = hl + p->amodel.payload_bytes;
    if (mf_webrtc_peer_protect_rtp(p->peer, buf, &len, PKT_CAP) != MF_OK) continue;
    p->audio_sent++;
    p->audio_octets += p->amodel.payload_bytes;
    batch_commit(b, len);
  }
  batch_flush(g, p, b);
}

static void publisher_sr(gpeer_t *p) {
  uint8_t buf[PKT_CAP];
  mf_rtcp_compound_t c;
  mf_rtcp_compound_init(&c, buf, PKT_CAP - MF_SRTP_MAX_TRAILER);
  uint64_t ntp = mf_clock_wall_ntp();
  mf_rtcp_sr_t sr = {.ssrc = p->video_ssrc, .ntp = ntp, .rtp_ts = p->last_video_ts,
                     .packet_count = (uint32_t)p->video_sent,
                     .octet_count = (uint32_t)p->video_octets};
  mf_rtcp_compound_add_sr(&c, &sr);
  mf_rtcp_compound_add_sdes_cname(&c, p->video_ssrc, (const uint8_t *)"mfgen", 5);
  sr = (mf_rtcp_sr_t){.ssrc = p->audio_ssrc, .ntp = ntp, .rtp_ts = p->last_audio_ts,
                      .packet_count = (uint32_t)p->audio_sent,
                      .octet_count = (uint32_t)p->audio_octets};
  mf_rtcp_compound_add_sr(&c, &sr);
  if (c.err == MF_OK) send_rtcp(p, buf, c.len);
}

static void subscriber_pli(mf_gen_t *g, gpeer_t *s) {
  for (size_t i = 0; i < s->ntracks; i++) {
    if (!s->tracks[i].video) continue;
    uint8_t buf[PKT_CAP];
    size_t len = 0;
    if (mf_rtcp_write_pli(buf, PKT_CAP, s->rtcp_ssrc, s->tracks[i].ssrc, &len) == MF_OK) {
      send_rtcp(s, buf, len);
      g->plis_sent++;
    }
  }
}

static void subscriber_rr(gpeer_t *s) {
  uint8_t buf[PKT_CAP];
  mf_rtcp_compound_t c;
  mf_rtcp_compound_init(&c, buf, PKT_CAP - MF_SRTP_MAX_TRAILER);
  mf_rtcp_rr_t rr = {.ssrc = s->rtcp_ssrc};
  for (size_t i = 0; i < s->ntracks; i++) {
    track_t *t = &s->tracks[i];
    if (!t->seq.started) continue;
    uint64_t lost = mf_gen_seq_lost(&t->seq);
    if (lost > 0x7fffff) lost = 0x7fffff;
    rr.reports[rr.report_count++] = (mf_rtcp_report_block_t){
        .ssrc = t->ssrc, .cumulative_lost = (int32_t)lost,
        .highest_seq = mf_gen_seq_ext_max(&t->seq)};
    if (rr.report_count == MF_RTCP_MAX_COUNT || i + 1 == s->ntracks) {
      mf_rtcp_compound_add_rr(&c, &rr);
      rr.report_count = 0;
    }
  }
  if (c.len == 0) mf_rtcp_compound_add_rr(&c, &rr);
  mf_rtcp_compound_add_sdes_cname(&c, s->rtcp_ssrc, (const uint8_t *)"mfgen", 5);
  if (c.err == MF_OK) send_rtcp(s, buf, c.len);
}

/* ---------------------------------------------------------------- receiving */

static void nack_gap(mf_gen_t *g, gpeer_t *s, track_t *t, uint16_t first, size_t count) {
  uint16_t seqs[NACK_MAX_GAP];
  size_t n = 0;
  for (; n < count && n < NACK_MAX_GAP; n++) seqs[n] = (uint16_t)(first + n);
  mf_rtcp_nack_item_t items[NACK_MAX_GAP];
  size_t k = mf_rtcp_nack_pack(seqs, n, items, NACK_MAX_GAP, NULL);
  uint8_t buf[PKT_CAP];
  size_t len = 0;
  if (k && mf_rtcp_write_nack(buf, PKT_CAP - MF_SRTP_MAX_TRAILER, s->rtcp_ssrc, t->ssrc, items,
                              k, &len) == MF_OK) {
    send_rtcp(s, buf, len);
    g->nacks_sent++;
    g->nacked_seqs += n;
  }
}

static void subscriber_rtp(mf_gen_t *g, gpeer_t *s, const uint8_t *buf, size_t len,
                           uint64_t now_ns) {
  mf_rtp_packet_t pkt;
  if (mf_rtp_parse(buf, len, &pkt) != MF_OK) return;
  for (size_t i = 0; i < s->ntracks; i++) {
    track_t *t = &s->tracks[i];
    const uint8_t *pl = pkt.payload;
    size_t pl_len = pkt.payload_len;
    if (pkt.ssrc == t->rtx_ssrc && t->rtx_ssrc) {
      if (pl_len < 2) return; /* RFC 4588: the original sequence number first */
      pl += 2;
      pl_len -= 2;
      g->rtx_received++;
    } else if (pkt.ssrc == t->ssrc) {
      uint16_t first = 0;
      size_t gap = mf_gen_seq_update(&t->seq, pkt.sequence, NACK_MAX_GAP, &first);
      if (t->video && gap) nack_gap(g, s, t, first, gap);
    } else {
      continue;
    }
    size_t off = MF_GEN_OPUS_STAMP_OFFSET;
    if (t->video && mf_gen_vp8_stamp_offset(pl, pl_len, &off) != MF_OK) {
      t->stats->malformed++;
      return;
    }
    if (off <= pl_len)
      mf_bench_stream_record_payload(t->stats, pl + off, pl_len - off, now_ns, NULL);
    g->forwarded++;
    return;
  }
}

static void publisher_rtcp(mf_gen_t *g, gpeer_t *p, const uint8_t *buf, size_t len) {
  mf_rtcp_iter_t it;
  mf_rtcp_header_t h;
  mf_rtcp_iter_init(&it, buf, len);
  while (mf_rtcp_iter_next(&it, &h) == MF_OK) {
    if (h.type == MF_RTCP_PSFB && (h.count == MF_RTCP_PSFB_PLI || h.count == MF_RTCP_PSFB_FIR)) {
      g->plis_received++;
      mf_gen_video_request_keyframe(&p->vmodel);
    } else if (h.type == MF_RTCP_RTPFB && h.count == MF_RTCP_RTPFB_NACK) {
      g->nacks_received++;
    }
  }
}

typedef struct {
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  uint8_t bufs[BATCH][PKT_CAP];
} in_batch_t;

static void peer_readable(mf_gen_t *g, gpeer_t *p, in_batch_t *b) {
  for (;;) {
    for (size_t i = 0; i < BATCH; i++) {
      b->iov[i] = (struct iovec){.iov_base = b->bufs[i], .iov_len = PKT_CAP};
      memset(&b->msgs[i], 0, sizeof b->msgs[i]);
      b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
      b->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(mf_webrtc_peer_fd(p->peer), b->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) return;
    uint64_t now_ns = mf_clock_now_ns(), now_ms = now_ns / 1000000;
    for (int i = 0; i < n; i++) {
      size_t len = b->msgs[i].msg_len;
      mf_webrtc_peer_in_t kind = mf_webrtc_peer_input(p->peer, b->bufs[i], &len, now_ms);
      if (kind == MF_WEBRTC_PEER_IN_RTP && !p->publisher)
        subscriber_rtp(g, p, b->bufs[i], len, now_ns);
      else if (kind == MF_WEBRTC_PEER_IN_RTCP && p->publisher)
        publisher_rtcp(g, p, b->bufs[i], len);
    }
    if (n < BATCH) return;
  }
}

/* ---------------------------------------------------------------- the run */

static void summarize(mf_gen_t *g, mf_gen_result_t *r) {
  mf_bench_hist_t *all = malloc(sizeof *all);
  if (all) mf_bench_hist_init(all);
  for (size_t i = 0; i < g->npeers; i++) {
    gpeer_t *p = g->peers[i];
    if (p->publisher) continue;
    r->subscribers++;
    for (size_t k = 0; k < p->ntracks; k++) {
      mf_bench_summary_t s;
      mf_bench_stream_summary(p->tracks[k].stats, &s);
      r->consumers++;
      r->expected += s.expected;
      r->received += s.received;
      r->lost += s.lost;
      r->duplicates += s.duplicates;
      r->reordered += s.reordered;
      r->too_late += s.too_late;
      r->malformed += s.malformed + s.wrong_stream;
      if (all) mf_bench_hist_merge(all, &p->tracks[k].stats->latency);
    }
    const mf_webrtc_peer_counters_t *c = mf_webrtc_peer_counters(p->peer);
    r->unprotect_failed += c->unprotect_failed;
    r->send_failed += c->send_failed;
  }
  r->loss_ratio = r->expected ? (double)r->lost / (double)r->expected : 0;
  if (all) {
    r->p50_us = mf_bench_hist_percentile(all, 50);
    r->p99_us = mf_bench_hist_percentile(all, 99);
    r->max_us = all->max_us;
    r->mean_us = mf_bench_hist_mean(all);
    free(all);
  }
  r->plis_sent = g->plis_sent;
  r->nacks_sent = g->nacks_sent;
  r->nacked_seqs = g->nacked_seqs;
  r->rtx_received = g->rtx_received;
  r->plis_received = g->plis_received;
  r->nacks_received = g->nacks_received;
  r->keyframes_sent = g->keyframes_sent;
}

mf_err_t mf_gen_run(mf_gen_t *g, double warmup_s, double seconds, pid_t sfu_pid,
                    mf_gen_result_t *out) {
  if (!g || !out || seconds <= 0 || warmup_s < 0) return MF_ERR_INVALID_ARG;
  memset(out, 0, sizeof *out);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return MF_ERR_IO;
  for (size_t i = 0; i < g->npeers; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = g->peers[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, mf_webrtc_peer_fd(g->peers[i]->peer), &ev) != 0) {
      close(ep);
      return MF_ERR_IO;
    }
  }
  out_batch_t *ob = malloc(sizeof *ob);
  in_batch_t *ib = malloc(sizeof *ib);
  if (!ob || !ib) {
    free(ob);
    free(ib);
    close(ep);
    return MF_ERR_NO_MEMORY;
  }
  ob->n = 0;
  uint64_t t0 = mf_clock_now_ns();
  /* publishers are spread over one frame interval and over the keyframe period, as
   * independent clients would be: otherwise every keyframe of a room lands at once */
  uint64_t frame_ns = UINT64_C(1000000000) / g->cfg.video.fps;
  uint64_t fpk = (uint64_t)g->cfg.video.keyframe_interval_ms * g->cfg.video.fps / 1000;
  for (size_t i = 0; i < g->npubs; i++) {
    uint64_t start = t0 + frame_ns * i / g->npubs;
    mf_gen_video_init(&g->pubs[i]->vmodel, &g->cfg.video, start);
    mf_gen_video_shift_gop(&g->pubs[i]->vmodel, fpk * i / g->npubs);
    mf_gen_audio_init(&g->pubs[i]->amodel, g->cfg.audio_bps, start);
  }
  for (size_t i = 0; i < g->npeers; i++) {
    g->peers[i]->next_rtcp_ms = t0 / 1000000 + RTCP_INTERVAL_MS;
    if (!g->peers[i]->publisher) subscriber_pli(g, g->peers[i]);
  }
  uint64_t win_start = t0 + (uint64_t)(warmup_s * 1e9);
  uint64_t send_end = win_start + (uint64_t)(seconds * 1e9);
  uint64_t drain_end = send_end + 500000000;
  bool in_window = false, sending = true;
  double cpu0 = 0, self0 = 0;
  uint64_t fwd0 = 0, sent0 = 0, tick_ms = 0;
  struct epoll_event evs[64];
  for (;;) {
    uint64_t now = mf_clock_now_ns();
    if (!in_window && now >= win_start) {
      in_window = true;
      cpu0 = sfu_cpu_sum(g, sfu_pid);
      self0 = self_cpu_s();
      fwd0 = g->forwarded;
      sent0 = g->sent;
    }
    if (sending && now >= send_end) {
      sending = false;
      out->window_s = (double)(now - win_start) / 1e9;
      out->forwarded = g->forwarded - fwd0;
      out->sent = g->sent - sent0;
      out->forwarded_pps = (double)out->forwarded / out->window_s;
      out->sfu_cpu_s = sfu_cpu_sum(g, sfu_pid) - cpu0;
      out->gen_cpu_s = self_cpu_s() - self0;
      out->sfu_rss_kb = sfu_rss_sum(g, sfu_pid);
    }
    if (now >= drain_end) break;
    uint64_t next = drain_end;
    if (sending) {
      for (size_t i = 0; i < g->npubs; i++) {
        publisher_send(g, g->pubs[i], ob, now);
        uint64_t v = mf_gen_video_due_ns(&g->pubs[i]->vmodel),
                 a = mf_gen_audio_due_ns(&g->pubs[i]->amodel);
        if (v < next) next = v;
        if (a < next) next = a;
      }
    }
    uint64_t now_ms = now / 1000000;
    if (now_ms >= tick_ms) { /* timers of every peer, at most every 10 ms */
      tick_ms = now_ms + 10;
      for (size_t i = 0; i < g->npeers; i++) {
        gpeer_t *p = g->peers[i];
        mf_webrtc_peer_tick(p->peer, now_ms);
        if (sending && now_ms >= p->next_rtcp_ms) {
          p->next_rtcp_ms = now_ms + RTCP_INTERVAL_MS;
          if (p->publisher)
            publisher_sr(p);
          else
            subscriber_rr(p);
        }
      }
    }
    if (tick_ms * 1000000 < next) next = tick_ms * 1000000;
    now = mf_clock_now_ns();
    int wait_ms = next > now ? (int)((next - now + 999999) / 1000000) : 0;
    int n = epoll_wait(ep, evs, 64, wait_ms);
    for (int i = 0; i < n; i++) peer_readable(g, evs[i].data.ptr, ib);
  }
  free(ob);
  free(ib);
  close(ep);
  summarize(g, out);
  return MF_OK;
}
