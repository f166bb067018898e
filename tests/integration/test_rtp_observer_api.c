/* RtpObservers end to end: a gateway on real workers, a WebSocket API client, and an
 * in-process WebRTC client (libnice STUN check, DTLS client, SRTP) that publishes two
 * audio producers on one transport, sending RTP with the ssrc-audio-level extension at
 * levels the test chooses. The API client must receive rtpObserver.volumes (loudest first,
 * threshold and maxEntries applied), rtpObserver.dominantspeaker for the louder producer,
 * a takeover when the other one becomes louder, and rtpObserver.silence when both stop;
 * plus the error paths of the rtpObserver methods. The client's loop runs on a thread of
 * its own once the handshake is done, so the API calls can block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stun/stunagent.h>
#include <stun/usages/ice.h>

#include "common/log.h"
#include "node/gateway.h"
#include "node/rtp/rtp.h"
#include "node/srtp.h"
#include "node/udp_socket.h"
#include "tests/support/ws_client.h"

#define IO_MS 5000
#define DEADLINE_MS 10000
#define SSRC_A 11111111u
#define SSRC_B 22222222u
#define EXT_LEVEL 10
#define ROOM "observers"

typedef struct {
  /* node */
  mf_dtls_cert_t *cert;
  mf_worker_t *workers[2];
  mf_gateway_t *gw;
  nng_stream *ws;
  int next_id;
  /* WebRTC client */
  uv_loop_t loop;
  uv_timer_t deadline, dtls_timer, send_timer;
  uv_async_t stop;
  bool timed_out;
  mf_bufpool_t *pool;
  mf_dtls_cert_t *client_cert;
  mf_udp_socket_t *sock;
  mf_dtls_context_t *dtls_ctx;
  mf_dtls_t *dtls;
  mf_srtp_session_t *out;
  struct sockaddr_in server;
  char ufrag[64], pwd[128], server_fp[160];
  int stun_ok;
  uv_thread_t thread;
  /* what the sender thread sends: -dBov per producer, or -1 for nothing */
  atomic_int level_a, level_b;
  uint16_t seq;
  uint32_t ts;
  /* ids */
  char transport[64], prod_a[64], prod_b[64], video[64], alo[64], aso[64];
  bool seen_volumes, seen_dominant; /* of the current phase */
} fx_t;

static const char *str(json_t *j) { return json_string_value(j) ? json_string_value(j) : ""; }

/* ---------------------------------------------------------------- API client */

static json_t *call(fx_t *f, const char *method, json_t *data) {
  int id = f->next_id++;
  json_t *req = json_pack("{s:i, s:s, s:o}", "id", id, "method", method, "data", data ? data : json_object());
  char *text = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  assert_int_equal(mf_test_ws_send(f->ws, text, strlen(text), IO_MS), 0);
  free(text);
  for (;;) {
    json_t *m = mf_test_ws_recv(f->ws, IO_MS);
    assert_non_null(m);
    if (json_integer_value(json_object_get(m, "id")) == id && json_object_get(m, "ok")) return m;
    json_decref(m); /* notifications before the answer: the tests below wait for fresh ones */
  }
}

static json_t *ok(json_t *resp) {
  if (!json_is_true(json_object_get(resp, "ok"))) {
    char *t = json_dumps(resp, 0);
    print_error("expected ok: %s\n", t);
    free(t);
    fail();
  }
  return json_object_get(resp, "data");
}

static void call_ok_id(fx_t *f, const char *method, json_t *data, char out[64]) {
  json_t *r = call(f, method, data);
  snprintf(out, 64, "%s", json_string_value(json_object_get(ok(r), "id")));
  json_decref(r);
}

static void call_ok(fx_t *f, const char *method, json_t *data) {
  json_t *r = call(f, method, data);
  ok(r);
  json_decref(r);
}

static void call_fails(fx_t *f, const char *method, json_t *data, const char *code, const char *text) {
  json_t *r = call(f, method, data);
  assert_true(json_is_false(json_object_get(r, "ok")));
  json_t *e = json_object_get(r, "error");
  assert_string_equal(json_string_value(json_object_get(e, "code")), code);
  const char *msg = json_string_value(json_object_get(e, "message"));
  if (!msg || !strstr(msg, text)) {
    print_error("message '%s' lacks '%s'\n", msg ? msg : "", text);
    fail();
  }
  json_decref(r);
}

/* ---------------------------------------------------------------- WebRTC client */

static void client_send(fx_t *f, const uint8_t *data, size_t len) {
  mf_udp_socket_send_copy(f->sock, data, len, (struct sockaddr *)&f->server);
  mf_udp_socket_flush(f->sock); /* queued sends otherwise wait for the loop's next turn */
}

static void dtls_send(void *ud, const uint8_t *d, size_t n) { client_send(ud, d, n); }

static void dtls_rearm(fx_t *f);
static void on_dtls_timer(uv_timer_t *t) {
  fx_t *f = t->data;
  mf_dtls_handle_timeout(f->dtls);
  dtls_rearm(f);
}
static void dtls_rearm(fx_t *f) {
  long ms = mf_dtls_timeout_ms(f->dtls);
  if (ms >= 0)
    uv_timer_start(&f->dtls_timer, on_dtls_timer, (uint64_t)ms, 0);
  else
    uv_timer_stop(&f->dtls_timer);
}

static void dtls_state(void *ud, mf_dtls_state_t s, const char *reason) {
  fx_t *f = ud;
  if (s != MF_DTLS_STATE_CONNECTED) return;
  mf_srtp_keys_t k;
  assert_int_equal(mf_dtls_get_srtp_keys(f->dtls, &k), MF_OK);
  assert_int_equal(mf_srtp_session_create(k.profile, k.local_master, k.master_len, false, &f->out), MF_OK);
}

static void on_recv(void *ud, mf_udp_datagram_t *d, unsigned n) {
  fx_t *f = ud;
  for (unsigned i = 0; i < n; i++) {
    uint8_t *data = d[i].buf->data;
    size_t len = d[i].buf->len;
    if (len > 1 && data[0] == 0x01 && data[1] == 0x01) {
      f->stun_ok++;
    } else if (data[0] >= 20 && data[0] <= 63) {
      mf_dtls_handle_datagram(f->dtls, data, len);
      dtls_rearm(f);
    } /* RTCP from the node: not needed here */
    mf_buf_unref(d[i].buf);
  }
}

static void send_check(fx_t *f) {
  StunAgent agent;
  StunMessage msg;
  uint8_t buf[512];
  char user[256];
  snprintf(user, sizeof user, "%s:clientufrag1", f->ufrag);
  stun_agent_init(&agent, STUN_ALL_KNOWN_ATTRIBUTES, STUN_COMPATIBILITY_RFC5389,
                  STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
  size_t len = stun_usage_ice_conncheck_create(
      &agent, &msg, buf, sizeof buf, (const uint8_t *)user, strlen(user), (const uint8_t *)f->pwd,
      strlen(f->pwd), true, true, 0x6e7f00ff, 0x1122334455667788ULL, NULL,
      STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
  assert_true(len > 20);
  client_send(f, buf, len);
}

static void on_deadline(uv_timer_t *t) {
  fx_t *f = t->data;
  f->timed_out = true;
  uv_stop(&f->loop);
}

static bool run_until(fx_t *f, bool (*cond)(fx_t *)) {
  f->timed_out = false;
  uv_timer_start(&f->deadline, on_deadline, DEADLINE_MS, 0);
  while (!cond(f) && !f->timed_out) uv_run(&f->loop, UV_RUN_ONCE);
  uv_timer_stop(&f->deadline);
  return cond(f);
}

static bool stun_done(fx_t *f) { return f->stun_ok > 0; }
static bool srtp_ready(fx_t *f) { return f->out != NULL; }

/* One 20 ms Opus-sized packet per producer that is "speaking" (level >= 0). */
static void send_audio(fx_t *f, uint32_t ssrc, int level) {
  if (level < 0) return;
  uint8_t pkt[256], payload[80], lv = (uint8_t)(0x80 | (level & 0x7f));
  memset(payload, 0x5a, sizeof payload);
  const mf_rtp_ext_elem_t ext = {.id = EXT_LEVEL, .len = 1, .value = &lv};
  mf_rtp_header_t h = {.payload_type = 111, .sequence = f->seq, .timestamp = f->ts, .ssrc = ssrc,
                       .ext = &ext, .ext_count = 1};
  size_t len = 0;
  if (mf_rtp_write_packet(pkt, sizeof pkt, &h, payload, sizeof payload, 0, &len) != MF_OK) return;
  if (mf_srtp_protect_rtp(f->out, pkt, &len, sizeof pkt) != MF_OK) return;
  client_send(f, pkt, len);
}

static void on_send_timer(uv_timer_t *t) {
  fx_t *f = t->data;
  /* both streams share seq/ts counters: each SSRC still sees a gap-free sequence */
  send_audio(f, SSRC_A, atomic_load(&f->level_a));
  send_audio(f, SSRC_B, atomic_load(&f->level_b));
  f->seq++;
  f->ts += 960;
}

static void on_stop(uv_async_t *a) {
  fx_t *f = a->data;
  uv_timer_stop(&f->send_timer);
  uv_stop(&f->loop);
}

static void sender_thread(void *arg) {
  fx_t *f = arg;
  uv_timer_start(&f->send_timer, on_send_timer, 20, 20);
  uv_run(&f->loop, UV_RUN_DEFAULT);
}

/* ---------------------------------------------------------------- fixture */

static int setup(void **state) {
  static fx_t f;
  memset(&f, 0, sizeof f);
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  if (mf_srtp_library_init() || mf_dtls_cert_generate(&f.cert)) return -1;
  for (uint32_t i = 0; i < 2; i++) {
    mf_worker_options_t o = {.index = i, .cpu = -1, .rtc_listen_ip = "127.0.0.1",
                             .announced_ip = "127.0.0.1", .cert = f.cert};
    if (mf_worker_start(&o, &f.workers[i])) return -1;
  }
  mf_gateway_options_t go = {.listen = "127.0.0.1:0", .secret = "", .static_dir = ""};
  if (mf_gateway_start(&go, f.workers, 2, &f.gw)) return -1;
  f.next_id = 1;
  f.ws = mf_test_ws_dial("127.0.0.1", mf_gateway_port(f.gw), "", IO_MS);
  if (!f.ws) return -1;
  if (uv_loop_init(&f.loop)) return -1;
  uv_timer_init(&f.loop, &f.deadline);
  uv_timer_init(&f.loop, &f.dtls_timer);
  uv_timer_init(&f.loop, &f.send_timer);
  uv_async_init(&f.loop, &f.stop, on_stop);
  f.deadline.data = f.dtls_timer.data = f.send_timer.data = f.stop.data = &f;
  if (mf_bufpool_create(256, 2048, &f.pool) || mf_dtls_cert_generate(&f.client_cert) ||
      mf_udp_socket_open(&f.loop, f.pool, "127.0.0.1", 0, on_recv, &f, &f.sock) ||
      mf_dtls_context_create(f.client_cert, &f.dtls_ctx))
    return -1;
  static const mf_dtls_callbacks_t cb = {.send = dtls_send, .state = dtls_state};
  if (mf_dtls_create(f.dtls_ctx, &cb, &f, &f.dtls)) return -1;
  atomic_init(&f.level_a, -1);
  atomic_init(&f.level_b, -1);
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  mf_test_ws_free(f->ws);
  mf_gateway_stop(f->gw);
  for (int i = 0; i < 2; i++) mf_worker_stop(f->workers[i]);
  mf_udp_socket_close(f->sock, NULL, NULL);
  uv_close((uv_handle_t *)&f->deadline, NULL);
  uv_close((uv_handle_t *)&f->dtls_timer, NULL);
  uv_close((uv_handle_t *)&f->send_timer, NULL);
  uv_close((uv_handle_t *)&f->stop, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  uv_loop_close(&f->loop);
  mf_srtp_session_free(f->out);
  mf_dtls_free(f->dtls);
  mf_dtls_context_free(f->dtls_ctx);
  mf_dtls_cert_free(f->client_cert);
  mf_dtls_cert_free(f->cert);
  mf_bufpool_destroy(f->pool);
  nng_fini();
  return 0;
}

/* router.join, a transport, ICE + DTLS from the client, then two audio producers with the
 * audio level extension (and a video producer for the error path). */
static void publish(fx_t *f) {
  call_ok(f, "router.join", json_pack("{s:s}", "roomId", ROOM));
  json_t *r = call(f, "router.createWebRtcTransport", NULL);
  json_t *t = ok(r);
  snprintf(f->transport, sizeof f->transport, "%s", json_string_value(json_object_get(t, "id")));
  json_t *ice = json_object_get(t, "iceParameters");
  snprintf(f->ufrag, sizeof f->ufrag, "%s", json_string_value(json_object_get(ice, "usernameFragment")));
  snprintf(f->pwd, sizeof f->pwd, "%s", json_string_value(json_object_get(ice, "password")));
  json_t *cand = json_array_get(json_object_get(t, "iceCandidates"), 0);
  uv_ip4_addr("127.0.0.1", (int)json_integer_value(json_object_get(cand, "port")), &f->server);
  json_t *fp = json_array_get(json_object_get(json_object_get(t, "dtlsParameters"), "fingerprints"), 0);
  assert_string_equal(json_string_value(json_object_get(fp, "algorithm")), "sha-256");
  snprintf(f->server_fp, sizeof f->server_fp, "%s", json_string_value(json_object_get(fp, "value")));
  json_decref(r);

  call_ok(f, "transport.connect",
          json_pack("{s:s, s:{s:s, s:[{s:s, s:s}]}}", "transportId", f->transport, "dtlsParameters",
                    "role", "client", "fingerprints", "algorithm", "sha-256", "value",
                    mf_dtls_cert_fingerprint(f->client_cert)));
  send_check(f);
  assert_true(run_until(f, stun_done));
  assert_int_equal(mf_dtls_start(f->dtls, MF_DTLS_ROLE_CLIENT, "sha-256", f->server_fp), MF_OK);
  dtls_rearm(f);
  assert_true(run_until(f, srtp_ready));

  const uint32_t ssrcs[2] = {SSRC_A, SSRC_B};
  char *ids[2] = {f->prod_a, f->prod_b};
  for (int i = 0; i < 2; i++) {
    json_t *params = json_pack(
        "{s:s, s:[{s:s, s:i, s:i, s:i, s:{}, s:[]}], s:[{s:s, s:i}], s:[{s:I}], s:{s:s}}", "mid",
        i == 0 ? "0" : "1", "codecs", "mimeType", "audio/opus", "payloadType", 111, "clockRate",
        48000, "channels", 2, "parameters", "rtcpFeedback", "headerExtensions", "uri",
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id", EXT_LEVEL, "encodings", "ssrc",
        (json_int_t)ssrcs[i], "rtcp", "cname", "observer-test");
    call_ok_id(f, "transport.produce",
               json_pack("{s:s, s:s, s:o}", "transportId", f->transport, "kind", "audio",
                         "rtpParameters", params),
               ids[i]);
  }
  json_t *vparams = json_pack(
      "{s:s, s:[{s:s, s:i, s:i, s:{}, s:[]}], s:[], s:[{s:I}], s:{s:s}}", "mid", "2", "codecs",
      "mimeType", "video/VP8", "payloadType", 96, "clockRate", 90000, "parameters",
      "rtcpFeedback", "headerExtensions", "encodings", "ssrc", (json_int_t)33333333,
      "rtcp", "cname", "observer-test");
  call_ok_id(f, "transport.produce",
             json_pack("{s:s, s:s, s:o}", "transportId", f->transport, "kind", "video",
                       "rtpParameters", vparams),
             f->video);
}

/* Reads notifications until match() says done (fails after 200 others or IO_MS of none). */
typedef bool (*match_fn)(fx_t *f, const char *event, const char *target, json_t *data);

static void wait_for(fx_t *f, match_fn match, const char *what) {
  for (int n = 0; n < 200; n++) {
    json_t *m = mf_test_ws_recv(f->ws, IO_MS);
    if (!m) break;
    const char *ev = json_string_value(json_object_get(m, "event"));
    const char *target = json_string_value(json_object_get(m, "target"));
    bool hit = ev && target && match(f, ev, target, json_object_get(m, "data"));
    json_decref(m);
    if (hit) return;
  }
  print_error("no %s\n", what);
  fail();
}

static bool volume_is(json_t *entry, const char *pid, int volume) {
  return strcmp(str(json_object_get(entry, "producerId")), pid) == 0 &&
         json_integer_value(json_object_get(entry, "volume")) == volume;
}

/* Phase 1: volumes [A -20, B -60] and A dominant (in either order). */
static bool phase_a(fx_t *f, const char *ev, const char *target, json_t *data) {
  if (strcmp(ev, "rtpObserver.volumes") == 0) {
    assert_string_equal(target, f->alo);
    /* a first interval may hold less than a full one: wait for the exact levels */
    if (json_array_size(data) == 2 && volume_is(json_array_get(data, 0), f->prod_a, -20) &&
        volume_is(json_array_get(data, 1), f->prod_b, -60))
      f->seen_volumes = true;
  } else if (strcmp(ev, "rtpObserver.dominantspeaker") == 0) {
    assert_string_equal(target, f->aso);
    /* B never gets the floor while A is the louder one */
    assert_string_equal(str(json_object_get(data, "producerId")), f->prod_a);
    f->seen_dominant = true;
  }
  return f->seen_volumes && f->seen_dominant;
}

/* Phase 2: volumes [B -15] (A at -90 is under the -70 threshold) and B dominant. */
static bool phase_b(fx_t *f, const char *ev, const char *target, json_t *data) {
  if (strcmp(ev, "rtpObserver.volumes") == 0) {
    if (json_array_size(data) == 1 && volume_is(json_array_get(data, 0), f->prod_b, -15))
      f->seen_volumes = true;
  } else if (strcmp(ev, "rtpObserver.dominantspeaker") == 0) {
    assert_string_equal(str(json_object_get(data, "producerId")), f->prod_b);
    f->seen_dominant = true;
  }
  return f->seen_volumes && f->seen_dominant;
}

static bool silence(fx_t *f, const char *ev, const char *target, json_t *data) {
  return strcmp(ev, "rtpObserver.silence") == 0 && strcmp(target, f->alo) == 0;
}

static json_t *obs_req(const char *oid, const char *pid) {
  json_t *d = json_pack("{s:s}", "rtpObserverId", oid);
  if (pid) json_object_set_new(d, "producerId", json_string(pid));
  return d;
}

static void test_observers(void **state) {
  fx_t *f = *state;
  /* no room yet */
  call_fails(f, "router.createAudioLevelObserver", NULL, "invalid_state", "router.join");
  publish(f);

  call_fails(f, "router.createAudioLevelObserver", json_pack("{s:i}", "maxEntries", 0),
             "invalid_argument", "maxEntries");
  call_fails(f, "router.createAudioLevelObserver", json_pack("{s:s}", "threshold", "-70"),
             "invalid_argument", "threshold");
  call_ok_id(f, "router.createAudioLevelObserver",
             json_pack("{s:i, s:i, s:i}", "maxEntries", 2, "threshold", -70, "interval", 300), f->alo);
  call_ok_id(f, "router.createActiveSpeakerObserver", json_pack("{s:i}", "interval", 300), f->aso);

  /* error paths */
  const char *unknown = "00000000-0000-4000-8000-000000000000";
  call_fails(f, "rtpObserver.addProducer", obs_req(f->alo, f->video), "invalid_argument",
             "not an audio producer");
  call_fails(f, "rtpObserver.addProducer", obs_req(f->alo, unknown), "not_found", "not found");
  call_fails(f, "rtpObserver.addProducer", obs_req(unknown, f->prod_a), "not_found", "rtpObserver");
  call_fails(f, "rtpObserver.addProducer", json_pack("{s:s}", "producerId", f->prod_a),
             "invalid_argument", "rtpObserverId");
  call_fails(f, "rtpObserver.removeProducer", obs_req(f->alo, f->prod_a), "not_found",
             "is not in");

  const char *obs[2] = {f->alo, f->aso};
  for (int i = 0; i < 2; i++) {
    call_ok(f, "rtpObserver.addProducer", obs_req(obs[i], f->prod_a));
    call_ok(f, "rtpObserver.addProducer", obs_req(obs[i], f->prod_b));
  }
  call_fails(f, "rtpObserver.addProducer", obs_req(f->alo, f->prod_a), "already_exists", "already");

  /* A speaks at -20 dBov, B at -60 */
  atomic_store(&f->level_a, 20);
  atomic_store(&f->level_b, 60);
  uv_thread_create(&f->thread, sender_thread, f);
  wait_for(f, phase_a, "volumes [A, B] and dominantspeaker A");

  /* A goes quiet (-90), B speaks up (-15): B takes over after the hold */
  atomic_store(&f->level_a, 90);
  atomic_store(&f->level_b, 15);
  f->seen_volumes = f->seen_dominant = false;
  wait_for(f, phase_b, "volumes [B] and dominantspeaker B");

  /* nobody sends: silence */
  atomic_store(&f->level_a, -1);
  atomic_store(&f->level_b, -1);
  wait_for(f, silence, "silence");

  uv_async_send(&f->stop);
  uv_thread_join(&f->thread);

  call_ok(f, "rtpObserver.pause", obs_req(f->alo, NULL));
  call_ok(f, "rtpObserver.resume", obs_req(f->alo, NULL));
  call_ok(f, "rtpObserver.removeProducer", obs_req(f->alo, f->prod_a));
  call_fails(f, "rtpObserver.removeProducer", obs_req(f->alo, f->prod_a), "not_found", "is not in");
  /* a producer that closes leaves its observers */
  call_ok(f, "producer.close", json_pack("{s:s}", "producerId", f->prod_b));
  call_fails(f, "rtpObserver.removeProducer", obs_req(f->aso, f->prod_b), "not_found", "is not in");
  call_ok(f, "rtpObserver.close", obs_req(f->alo, NULL));
  call_ok(f, "rtpObserver.close", obs_req(f->aso, NULL));
  call_fails(f, "rtpObserver.close", obs_req(f->alo, NULL), "not_found", "rtpObserver");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_observers, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
