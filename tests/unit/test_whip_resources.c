/* WHIP/WHEP resources end to end on a real API server, with the room's API methods played
 * by a fake table (no worker): the HTTP refusals (paths, methods, content type, empty or bad
 * offers), a WHIP publish (router.join -> createWebRtcTransport -> connect -> produce per
 * section -> 201 with an SDP answer and a Location whose room is percent-encoded), DELETE
 * (200, then 404), a WHEP playback of the room's producers ending when its transport's DTLS
 * closes, WHEP of an unknown producer (404), an API error mapped to its HTTP status, and a
 * stop with a resource still open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/id.h"
#include "common/log.h"
#include "node/api/http_server.h"
#include "node/ortc.h"
#include "node/whip.h"

#define FP "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99"
#define VIDEO_PRODUCER "3b241101-e2bb-4255-8caf-4136c566a962"
#define AUDIO_PRODUCER "4c352212-f3cc-4366-9db0-5247d677b073"
#define SESSION "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
#define MEDIA(kind, pts, mid, dir)                                                        \
  "m=" kind " 9 UDP/TLS/RTP/SAVPF " pts "\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\n"    \
  "a=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:sha-256 " FP "\r\na=setup:actpass\r\n" \
  "a=mid:" mid "\r\na=" dir "\r\na=rtcp-mux\r\n"

static const char pub_offer[] =
    SESSION "a=group:BUNDLE 0 1\r\n" MEDIA("audio", "111", "0", "sendonly")
    "a=rtpmap:111 opus/48000/2\r\na=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=ssrc:1111 cname:c\r\n" MEDIA("video", "96 97", "1", "sendonly")
    "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=ssrc-group:FID 2222 3333\r\na=ssrc:2222 cname:c\r\na=ssrc:3333 cname:c\r\n";

static const char play_offer[] =
    SESSION "a=group:BUNDLE v a\r\n" MEDIA("video", "102", "v", "recvonly")
    "a=rtpmap:102 VP8/90000\r\na=rtcp-fb:102 nack pli\r\n" MEDIA("audio", "109", "a", "recvonly")
    "a=rtpmap:109 opus/48000/2\r\n";

/* ------------------------------------------------------------ the fake room */

typedef struct {
  pthread_mutex_t mu;
  json_t *caps;              /* router.join's rtpCapabilities */
  const char *join_error;    /* non-NULL: router.join fails with MF_ERR_NOT_FOUND and this */
  int produced, consumed, connected, closed;
  mf_api_session_t *session; /* the last transport's, referenced */
  char transport_id[MF_ID_LEN + 1];
} room_t;

static room_t g_room = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void m_join(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  room_t *r = ctx;
  (void)req;
  if (r->join_error) {
    mf_api_call_fail(call, MF_ERR_NOT_FOUND, "%s", r->join_error);
    return;
  }
  mf_api_call_reply(call, json_pack("{s:O}", "rtpCapabilities", r->caps));
}

static void m_create(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  room_t *r = ctx;
  (void)req;
  pthread_mutex_lock(&r->mu);
  mf_id_generate(r->transport_id);
  if (r->session) mf_api_session_unref(r->session);
  r->session = mf_api_call_session(call);
  mf_api_session_ref(r->session);
  pthread_mutex_unlock(&r->mu);
  mf_api_call_reply(call, json_pack("{s:s, s:{s:s, s:s}, s:[{s:s, s:I, s:s, s:s, s:i, s:s}], "
                                    "s:{s:s, s:[{s:s, s:s}]}}",
                                    "id", r->transport_id, "iceParameters", "usernameFragment", "ufrag",
                                    "password", "passwordpasswordpass", "iceCandidates", "foundation",
                                    "udp", "priority", (json_int_t)2130706431, "address", "127.0.0.1",
                                    "protocol", "udp", "port", 40000, "type", "host", "dtlsParameters",
                                    "role", "auto", "fingerprints", "algorithm", "sha-256", "value", FP));
}

static void count_and_ack(mf_api_call_t *call, int *counter, json_t *data) {
  pthread_mutex_lock(&g_room.mu);
  (*counter)++;
  pthread_mutex_unlock(&g_room.mu);
  mf_api_call_reply(call, data);
}

static void m_connect(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  (void)req;
  count_and_ack(call, &((room_t *)ctx)->connected, json_object());
}

static void m_produce(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  (void)req;
  char id[MF_ID_LEN + 1];
  mf_id_generate(id);
  count_and_ack(call, &((room_t *)ctx)->produced, json_pack("{s:s}", "id", id));
}

static void m_list(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  (void)ctx;
  (void)req;
  mf_api_call_reply(call, json_pack("{s:[{s:s, s:s}, {s:s, s:s}, {s:i}]}", "producers", "id",
                                    VIDEO_PRODUCER, "kind", "video", "id", AUDIO_PRODUCER, "kind",
                                    "audio", "id", 7));
}

static void m_consume(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  const char *pid = json_string_value(json_object_get(req->data, "producerId"));
  bool video = pid && strcmp(pid, VIDEO_PRODUCER) == 0;
  json_t *c = json_pack(
      "{s:s, s:s, s:s, s:{s:s, s:[{s:s, s:i, s:i, s:i, s:{}, s:[]}], s:[], s:[{s:i}], s:{s:s, s:b, s:b}}}",
      "id", "c1", "producerId", pid ? pid : "", "kind", video ? "video" : "audio", "rtpParameters", "mid",
      video ? "0" : "1", "codecs", "mimeType", video ? "video/VP8" : "audio/opus", "payloadType",
      video ? 101 : 100, "clockRate", video ? 90000 : 48000, "channels", video ? 0 : 2, "parameters",
      "rtcpFeedback", "headerExtensions", "encodings", "ssrc", video ? 1234 : 5678, "rtcp", "cname",
      "sfu", "reducedSize", 1, "mux", 1);
  if (video) json_object_del(json_array_get(json_object_get(json_object_get(c, "rtpParameters"), "codecs"), 0), "channels");
  count_and_ack(call, &((room_t *)ctx)->consumed, c);
}

static void m_close(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  (void)req;
  count_and_ack(call, &((room_t *)ctx)->closed, json_object());
}

static const mf_api_method_t methods[] = {
    {"router.join", m_join},
    {"router.createWebRtcTransport", m_create},
    {"transport.connect", m_connect},
    {"transport.produce", m_produce},
    {"router.listProducers", m_list},
    {"transport.consume", m_consume},
    {"transport.close", m_close},
    {NULL, NULL},
};

/* ------------------------------------------------------------ HTTP */

typedef struct {
  int status;
  char location[256];
  char type[128];
  char body[8192];
} res_t;

static void http(uint16_t port, const char *method, const char *path, const char *headers,
                 const char *body, res_t *r) {
  memset(r, 0, sizeof *r);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  static char req[16384];
  size_t blen = body ? strlen(body) : 0;
  int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: x\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n%s",
                   method, path, headers ? headers : "", blen, body ? body : "");
  assert_int_equal(send(fd, req, (size_t)n, 0), n);
  static char buf[32768];
  size_t len = 0;
  for (;;) {
    ssize_t k = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    if (k <= 0) break;
    len += (size_t)k;
  }
  close(fd);
  buf[len] = '\0';
  assert_true(sscanf(buf, "HTTP/1.%*d %d", &r->status) == 1);
  const char *h = strcasestr(buf, "\r\nLocation: ");
  if (h) sscanf(h + 12, "%255[^\r]", r->location);
  h = strcasestr(buf, "\r\nContent-Type: ");
  if (h) sscanf(h + 16, "%127[^\r]", r->type);
  h = strstr(buf, "\r\n\r\n");
  if (h) snprintf(r->body, sizeof r->body, "%s", h + 4);
}

#define SDP_HEADER "Content-Type: application/sdp\r\n"

static void wait_count(mf_whip_t *w, size_t want) {
  for (int i = 0; i < 500 && mf_whip_count(w) != want; i++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  assert_int_equal(mf_whip_count(w), want);
}

static void test_whip_and_whep(void **state) {
  (void)state;
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_ERROR, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  static mf_rtp_capabilities_t caps;
  size_t nc = 0;
  const mf_rtp_codec_capability_t *codecs = mf_ortc_default_media_codecs(&nc);
  char err[256];
  assert_int_equal(mf_ortc_generate_router_rtp_capabilities(codecs, nc, &caps, err, sizeof err), MF_OK);
  g_room.caps = mf_rtp_capabilities_to_json(&caps);
  mf_api_server_config_t c = {.listen = "127.0.0.1:0", .methods = methods, .ctx = &g_room};
  mf_api_server_t *sv;
  assert_int_equal(mf_api_server_create(&c, &sv), MF_OK);
  mf_whip_t *w;
  assert_int_equal(mf_whip_start(sv, &w), MF_OK);
  uint16_t port = mf_api_server_port(sv);
  res_t r;

  /* refusals before any resource exists */
  static const struct {
    const char *method, *path, *headers, *body;
    int status;
  } refused[] = {
      {"OPTIONS", "/whip/room", NULL, NULL, 204},
      {"PATCH", "/whip/room/" VIDEO_PRODUCER, NULL, NULL, 405},
      {"PUT", "/whip/room", NULL, NULL, 405},
      {"POST", "/whip/", SDP_HEADER, pub_offer, 404},
      {"POST", "/whip/room/" VIDEO_PRODUCER, SDP_HEADER, pub_offer, 405},
      {"POST", "/whip/room", "Content-Type: text/plain\r\n", pub_offer, 415},
      {"POST", "/whip/room", SDP_HEADER, NULL, 400},
      {"POST", "/whip/room", SDP_HEADER, "not sdp", 400},
      {"POST", "/whip/room", SDP_HEADER, play_offer, 400}, /* recvonly offer to WHIP */
      {"DELETE", "/whip/room", NULL, NULL, 405},
      {"DELETE", "/whip/room/" VIDEO_PRODUCER, NULL, NULL, 404},
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    http(port, refused[i].method, refused[i].path, refused[i].headers, refused[i].body, &r);
    if (r.status != refused[i].status) print_error("case %zu (%s %s): %d %s\n", i, refused[i].method, refused[i].path, r.status, r.body);
    assert_int_equal(r.status, refused[i].status);
  }

  /* WHIP publish into room "r 1" */
  http(port, "POST", "/whip/r%201", SDP_HEADER, pub_offer, &r);
  if (r.status != 201) print_error("publish: %d %s\n", r.status, r.body);
  assert_int_equal(r.status, 201);
  assert_string_equal(r.type, "application/sdp");
  assert_true(strncmp(r.body, "v=0", 3) == 0);
  assert_non_null(strstr(r.body, "a=ice-ufrag:ufrag"));
  assert_true(strncmp(r.location, "/whip/r%201/", 12) == 0);
  assert_int_equal(g_room.produced, 2);
  assert_int_equal(g_room.connected, 1);
  wait_count(w, 1);
  char location[256];
  snprintf(location, sizeof location, "%s", r.location);
  http(port, "DELETE", location, NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(g_room.closed, 1);
  http(port, "DELETE", location, NULL, NULL, &r);
  assert_int_equal(r.status, 404);
  wait_count(w, 0);

  /* WHEP of the room's producers: one consumer per offered kind */
  http(port, "POST", "/whep/room", SDP_HEADER, play_offer, &r);
  if (r.status != 201) print_error("play: %d %s\n", r.status, r.body);
  assert_int_equal(r.status, 201);
  assert_int_equal(g_room.consumed, 2);
  assert_non_null(strstr(r.body, "a=sendonly")); /* our side sends */
  wait_count(w, 1);
  /* its transport's DTLS closes: the resource ends by itself */
  pthread_mutex_lock(&g_room.mu);
  mf_api_session_t *s = g_room.session;
  g_room.session = NULL;
  pthread_mutex_unlock(&g_room.mu);
  assert_int_equal(mf_api_session_notify(s, "transport.icestatechange", g_room.transport_id,
                                         json_pack("{s:s}", "iceState", "connected")), MF_OK);
  assert_int_equal(mf_api_session_notify(s, "transport.dtlsstatechange", g_room.transport_id,
                                         json_pack("{s:s}", "dtlsState", "closed")), MF_OK);
  wait_count(w, 0);
  mf_api_session_unref(s);

  /* WHEP of one producer that the room does not have */
  http(port, "POST", "/whep/room/" "5d463323-0400-4477-8ec1-6358e788c184", SDP_HEADER, play_offer, &r);
  assert_int_equal(r.status, 404);
  assert_non_null(strstr(r.body, "no such producer"));
  /* the room refuses the join: its error code decides the status */
  g_room.join_error = "no such room";
  http(port, "POST", "/whip/room", SDP_HEADER, pub_offer, &r);
  assert_int_equal(r.status, 404);
  assert_non_null(strstr(r.body, "no such room"));
  g_room.join_error = NULL;

  /* a resource still open at stop: closed with the module */
  http(port, "POST", "/whip/room", SDP_HEADER, pub_offer, &r);
  assert_int_equal(r.status, 201);
  wait_count(w, 1);
  mf_whip_stop(w);
  mf_whip_destroy(w);
  pthread_mutex_lock(&g_room.mu);
  if (g_room.session) mf_api_session_unref(g_room.session);
  g_room.session = NULL;
  pthread_mutex_unlock(&g_room.mu);
  mf_api_server_destroy(sv);
  json_decref(g_room.caps);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_whip_and_whep),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
