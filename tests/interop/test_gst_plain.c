/* PlainTransport with real GStreamer pipelines (gst-launch-1.0) around an in-process Router:
 *   ingest: videotestsrc ! vp8enc ! rtpvp8pay ssrc/pt ! [srtpenc] ! udpsink -> a comedia
 *           PlainTransport producer (ssrc-based encodings, as mediasoup requires);
 *   egress: a consumer on a second PlainTransport connected to
 *           udpsrc ! [srtpdec] ! rtpvp8depay ! vp8dec ! fakesink, whose decoded frames are
 *           counted from fakesink's last-message lines;
 *   WebRTC: a consumer on a WebRtcTransport offered to a gst_peer (webrtcbin) that decodes.
 * Passes when both receivers decode >= WANT_FRAMES frames and the comedia transport learnt
 * the sender's address. Run plain, and with SRTP (AES_CM_128_HMAC_SHA1_80 and
 * AEAD_AES_128_GCM, keys exchanged in mediasoup's srtpParameters shape). Every child runs
 * under the test's deadline and is killed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "node/plain_transport.h"
#include "node/router.h"
#include "node/sdp.h"
#include "node/sdp_rtp.h"
#include "tests/interop/gst_driver.h"

#define DEADLINE_MS 45000
#define WANT_FRAMES 60
#define INGEST_SSRC 287454020u /* 0x11223344 */

static const char *gst_peer_path;

/* A gst-launch-1.0 child whose stdout lines are scanned for fakesink's "chain" messages. */
typedef struct {
  uv_process_t proc;
  uv_pipe_t out;
  bool running;
  char line[4096];
  size_t line_len;
  long chains;
} launch_t;

typedef struct {
  uv_loop_t loop;
  uv_timer_t deadline;
  bool timed_out;
  mf_bufpool_t *pool;
  mf_dtls_cert_t *cert;
  char fingerprint[MF_DTLS_FINGERPRINT_MAX];
  mf_rtc_server_t *server;
  mf_router_t *router;
  launch_t sender, receiver;
  gst_peer_t webrtc;
  mf_router_transport_t *webrtc_transport;
  bool answered;
} fx_t;

static void on_event(void *ud, const char *event, const char *target, json_t *data) {
  json_decref(data);
}

static void launch_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char storage[65536];
  *buf = uv_buf_init(storage, sizeof storage);
}

static void launch_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  launch_t *l = s->data;
  if (n < 0) {
    uv_read_stop(s);
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    char c = buf->base[i];
    if (c != '\n' && l->line_len + 1 < sizeof l->line) {
      l->line[l->line_len++] = c;
      continue;
    }
    l->line[l->line_len] = '\0';
    if (strstr(l->line, "last-message = chain")) l->chains++;
    else if (strstr(l->line, "ERROR")) fprintf(stderr, "gst-launch: %s\n", l->line);
    l->line_len = 0;
  }
}

static void launch_exited(uv_process_t *p, int64_t status, int sig) {
  launch_t *l = p->data;
  l->running = false;
  if (status || (sig && sig != SIGKILL)) fprintf(stderr, "gst-launch exited: status %lld signal %d\n", (long long)status, sig);
}

/* argv of gst-launch-1.0 from a pipeline description split on spaces (quotes not needed:
 * caps below contain no spaces). */
static void launch_start(fx_t *f, launch_t *l, const char *pipeline) {
  static char copy[2][2048];
  char *buf = copy[l == &f->sender ? 0 : 1];
  snprintf(buf, 2048, "%s", pipeline);
  char *args[64];
  int n = 0;
  args[n++] = "gst-launch-1.0";
  args[n++] = "-v";
  for (char *tok = strtok(buf, " "); tok && n < 62; tok = strtok(NULL, " ")) args[n++] = tok;
  args[n] = NULL;
  memset(l, 0, sizeof *l);
  assert_int_equal(uv_pipe_init(&f->loop, &l->out, 0), 0);
  l->out.data = l;
  l->proc.data = l;
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&l->out},
      {.flags = UV_INHERIT_FD, .data.fd = 2}};
  uv_process_options_t o = {.file = args[0], .args = args, .exit_cb = launch_exited,
                            .stdio = stdio, .stdio_count = 3};
  fprintf(stderr, "starting: gst-launch-1.0 %s\n", pipeline);
  assert_int_equal(uv_spawn(&f->loop, &l->proc, &o), 0);
  l->running = true;
  uv_read_start((uv_stream_t *)&l->out, launch_alloc, launch_read);
}

static void launch_stop(launch_t *l) {
  if (l->running) uv_process_kill(&l->proc, SIGKILL);
  uv_close((uv_handle_t *)&l->proc, NULL);
  uv_close((uv_handle_t *)&l->out, NULL);
}

static uint16_t free_udp_port(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  close(fd);
  return ntohs(a.sin_port);
}

static mf_plain_transport_t *plain(fx_t *f, const char *options, mf_router_transport_t **t) {
  json_t *j = json_loads(options, 0, NULL);
  mf_plain_options_t o;
  char err[160] = "";
  assert_int_equal(mf_plain_options_parse(j, &o, err, sizeof err), MF_OK);
  json_decref(j);
  assert_int_equal(mf_router_create_plain_transport(f->router, &o, err, sizeof err, t), MF_OK);
  return mf_plain_transport_of(mf_router_transport_webrtc(*t));
}

static void plain_connect(mf_plain_transport_t *p, const char *text) {
  json_t *j = json_loads(text, 0, NULL);
  assert_non_null(j);
  char err[160] = "";
  mf_err_t e = mf_plain_transport_connect_json(p, j, err, sizeof err);
  if (e) print_error("connect %s: %s\n", text, err);
  assert_int_equal(e, MF_OK);
  json_decref(j);
}

static void hex(const uint8_t *b, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

/* The WebRTC receiver: consume the producer and offer it to webrtcbin. */
static void offer_to_webrtc(fx_t *f, mf_producer_t *p) {
  assert_int_equal(mf_router_create_webrtc_transport(f->router, &f->webrtc_transport), MF_OK);
  mf_webrtc_transport_t *wt = mf_router_transport_webrtc(f->webrtc_transport);
  char err[256] = "";
  mf_consumer_t *c = NULL;
  mf_err_t e = mf_router_consume(f->webrtc_transport, mf_producer_id(p),
                                 mf_router_rtp_capabilities(f->router), false, err, sizeof err, &c);
  if (e) print_error("consume: %s\n", err);
  assert_int_equal(e, MF_OK);
  mf_sdp_t *offer = calloc(1, sizeof *offer);
  offer->ice_lite = true;
  snprintf(offer->msid_semantic, sizeof offer->msid_semantic, "WMS *");
  mf_sdp_candidate_t cand = {.component = 1, .priority = 2113937151u, .type = "host",
                             .transport = "udp", .foundation = "udpcandidate",
                             .address = "127.0.0.1", .port = mf_rtc_server_port(f->server)};
  mf_sdp_media_t *m = &offer->media[offer->media_count++];
  mf_rtp_parameters_t *cpar = mf_consumer_rtp_parameters_copy(c);
  assert_non_null(cpar);
  assert_int_equal(mf_sdp_media_from_rtp_parameters(cpar, MF_MEDIA_KIND_VIDEO,
                                                    MF_SDP_DIR_SENDONLY, "mafalda", m), MF_OK);
  free(cpar);
  snprintf(m->transport.ice_ufrag, sizeof m->transport.ice_ufrag, "%s", mf_webrtc_transport_ice_ufrag(wt));
  snprintf(m->transport.ice_pwd, sizeof m->transport.ice_pwd, "%s", mf_webrtc_transport_ice_pwd(wt));
  snprintf(m->transport.fingerprint_alg, sizeof m->transport.fingerprint_alg, "sha-256");
  snprintf(m->transport.fingerprint, sizeof m->transport.fingerprint, "%s", f->fingerprint);
  m->transport.setup = MF_SDP_SETUP_ACTPASS;
  m->candidates[m->candidate_count++] = cand;
  m->end_of_candidates = true;
  memcpy(offer->bundle_mids[offer->bundle_count++], m->mid, sizeof m->mid);
  static char text[65536];
  e = mf_sdp_write(offer, text, sizeof text, NULL);
  free(offer);
  assert_int_equal(e, MF_OK);
  gst_peer_send_sdp(&f->webrtc, "SDP-OFFER", text);
}

static void on_webrtc_answer(fx_t *f) {
  mf_sdp_t *answer = calloc(1, sizeof *answer);
  if (mf_sdp_parse(f->webrtc.sdp, f->webrtc.sdp_len, answer) != MF_OK) {
    print_error("bad answer: %s\n", answer->error);
    fail();
  }
  const mf_sdp_transport_t *tr = &answer->media[0].transport;
  mf_dtls_role_t role = tr->setup == MF_SDP_SETUP_ACTIVE    ? MF_DTLS_ROLE_CLIENT
                        : tr->setup == MF_SDP_SETUP_PASSIVE ? MF_DTLS_ROLE_SERVER
                                                            : MF_DTLS_ROLE_AUTO;
  assert_int_equal(mf_webrtc_transport_connect(mf_router_transport_webrtc(f->webrtc_transport), role,
                                               tr->fingerprint_alg, tr->fingerprint), MF_OK);
  free(answer);
  f->answered = true;
}

static void on_deadline(uv_timer_t *t) {
  fx_t *f = t->data;
  f->timed_out = true;
  uv_stop(&f->loop);
}

/* suite NULL: plain RTP. Otherwise "AES_CM_128_HMAC_SHA1_80" or "AEAD_AES_128_GCM". */
static void run_scenario(const char *suite) {
  static fx_t fx;
  fx_t *f = &fx;
  memset(f, 0, sizeof *f);
  bool gcm = suite && strcmp(suite, "AEAD_AES_128_GCM") == 0;
  const char *cipher = gcm ? "aes-128-gcm" : "aes-128-icm";
  const char *auth = gcm ? "null" : "hmac-sha1-80";
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_INFO, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  assert_int_equal(mf_srtp_library_init(), MF_OK);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(mf_bufpool_create(8192, 2048, &f->pool), MF_OK);
  assert_int_equal(mf_dtls_cert_generate(&f->cert), MF_OK);
  assert_int_equal(mf_dtls_cert_fingerprint_for(f->cert, "sha-256", f->fingerprint, sizeof f->fingerprint), MF_OK);
  mf_rtc_server_options_t o = {.listen_ip = "127.0.0.1", .announced_ip = "127.0.0.1",
                               .pool = f->pool, .cert = f->cert};
  assert_int_equal(mf_rtc_server_create(&f->loop, &o, &f->server), MF_OK);
  char err[256], text[1024], opts[256];
  assert_int_equal(mf_router_create(f->server, NULL, NULL, 0, on_event, f, err, sizeof err, &f->router), MF_OK);

  /* The client keys GStreamer's srtpenc sends with: a fixed test key for the suite. */
  mf_pipe_srtp_t client_key = {.enabled = true};
  if (suite) {
    assert_int_equal(mf_plain_crypto_suite_parse(suite, &client_key.profile), MF_OK);
    client_key.key_len = mf_srtp_profile_master_len(client_key.profile);
    for (size_t i = 0; i < client_key.key_len; i++) client_key.key[i] = (uint8_t)(0x40 + 3 * i);
  }
  json_t *client_json = suite ? mf_plain_srtp_json(&client_key) : NULL;
  char *client_text = client_json ? json_dumps(client_json, JSON_COMPACT) : NULL;

  /* ingest */
  mf_router_transport_t *tin, *tout;
  snprintf(opts, sizeof opts, "{\"comedia\":true%s%s%s}", suite ? ",\"enableSrtp\":true,\"srtpCryptoSuite\":\"" : "",
           suite ? suite : "", suite ? "\"" : "");
  mf_plain_transport_t *pin = plain(f, opts, &tin);
  if (suite) {
    snprintf(text, sizeof text, "{\"srtpParameters\":%s}", client_text);
    plain_connect(pin, text);
  }
  snprintf(text, sizeof text,
           "{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
           "\"rtcpFeedback\":[{\"type\":\"nack\"},{\"type\":\"nack\",\"parameter\":\"pli\"}]}],"
           "\"encodings\":[{\"ssrc\":%u}]}", INGEST_SSRC);
  json_t *pj = json_loads(text, 0, NULL);
  static mf_rtp_parameters_t params;
  assert_int_equal(mf_rtp_parameters_from_json(pj, "rtpParameters", &params, err, sizeof err), MF_OK);
  json_decref(pj);
  mf_producer_t *producer = NULL;
  assert_int_equal(mf_router_produce(tin, MF_MEDIA_KIND_VIDEO, &params, false, err, sizeof err, &producer), MF_OK);

  /* egress */
  uint16_t recv_port = free_udp_port();
  snprintf(opts, sizeof opts, "{%s%s%s}", suite ? "\"enableSrtp\":true,\"srtpCryptoSuite\":\"" : "",
           suite ? suite : "", suite ? "\"" : "");
  mf_plain_transport_t *pout = plain(f, opts, &tout);
  snprintf(text, sizeof text, "{\"ip\":\"127.0.0.1\",\"port\":%u%s%s}", recv_port,
           suite ? ",\"srtpParameters\":" : "", suite ? client_text : "");
  plain_connect(pout, text);
  mf_consumer_t *consumer = NULL;
  assert_int_equal(mf_router_consume(tout, mf_producer_id(producer), mf_router_rtp_capabilities(f->router),
                                     false, err, sizeof err, &consumer), MF_OK);
  mf_rtp_parameters_t *cp_full = mf_consumer_rtp_parameters_copy(consumer);
  assert_non_null(cp_full);
  const struct {
    uint8_t pt;
    uint32_t ssrc;
  } cp = {cp_full->codecs[0].payload_type, cp_full->encodings[0].ssrc};
  free(cp_full);

  char pipeline[2048];
  if (suite) {
    /* the egress key as the API shows it, handed to srtpdec through its caps */
    json_t *desc = mf_plain_transport_to_json(pout);
    mf_pipe_srtp_t server_key;
    assert_int_equal(mf_plain_srtp_parse(json_object_get(desc, "srtpParameters"), &server_key, err, sizeof err), MF_OK);
    json_decref(desc);
    char key_hex[2 * MF_SRTP_MAX_MASTER_LEN + 1];
    hex(server_key.key, server_key.key_len, key_hex);
    snprintf(pipeline, sizeof pipeline,
             "udpsrc address=127.0.0.1 port=%u caps=application/x-srtp,media=(string)video,"
             "clock-rate=(int)90000,encoding-name=(string)VP8,payload=(int)%u,ssrc=(uint)%u,"
             "srtp-key=(buffer)%s,srtp-cipher=(string)%s,srtp-auth=(string)%s,"
             "srtcp-cipher=(string)%s,srtcp-auth=(string)%s,roc=(uint)0 ! srtpdec name=dec ! "
             "rtpvp8depay ! vp8dec ! fakesink silent=false sync=false "
             /* our SRTCP sender reports come out there (rtcp-mux) */
             "dec.rtcp_src ! fakesink sync=false async=false",
             recv_port, cp.pt, cp.ssrc, key_hex, cipher, auth,
             cipher, auth);
  } else {
    snprintf(pipeline, sizeof pipeline,
             "udpsrc address=127.0.0.1 port=%u caps=application/x-rtp,media=(string)video,"
             "clock-rate=(int)90000,encoding-name=(string)VP8,payload=(int)%u ! rtpvp8depay ! "
             "vp8dec ! fakesink silent=false sync=false",
             recv_port, cp.pt);
  }
  launch_start(f, &f->receiver, pipeline);

  char *args[] = {(char *)gst_peer_path, "--mode", "recv", "--video", "--duration", "60", NULL};
  assert_int_equal(gst_peer_start(&f->webrtc, &f->loop, "webrtc-receiver", args), 0);
  offer_to_webrtc(f, producer);

  char srtp_part[512] = "";
  if (suite) {
    char key_hex[2 * MF_SRTP_MAX_MASTER_LEN + 1];
    hex(client_key.key, client_key.key_len, key_hex);
    snprintf(srtp_part, sizeof srtp_part,
             "srtpenc key=%s rtp-cipher=%s rtp-auth=%s rtcp-cipher=%s rtcp-auth=%s ! ",
             key_hex, cipher, auth, cipher, auth);
  }
  snprintf(pipeline, sizeof pipeline,
           "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! "
           "vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay ssrc=%u pt=96 mtu=1200 ! %s"
           "udpsink host=127.0.0.1 port=%u",
           INGEST_SSRC, srtp_part, mf_plain_transport_port(pin));
  launch_start(f, &f->sender, pipeline);

  uv_timer_init(&f->loop, &f->deadline);
  f->deadline.data = f;
  uv_timer_start(&f->deadline, on_deadline, DEADLINE_MS, 0);
  while (!f->timed_out && f->sender.running && f->receiver.running && f->webrtc.running &&
         !f->webrtc.error &&
         (f->receiver.chains < WANT_FRAMES || f->webrtc.frames_decoded < WANT_FRAMES)) {
    uv_run(&f->loop, UV_RUN_ONCE);
    if (f->webrtc.sdp_ready && !f->answered) {
      f->webrtc.sdp_ready = false;
      on_webrtc_answer(f);
    }
  }
  struct sockaddr_storage remote;
  bool learnt = mf_plain_transport_remote(pin, &remote);
  mf_plain_transport_stats_t in_stats;
  mf_plain_transport_get_stats(pin, &in_stats);
  json_t *st = mf_producer_stats_json(producer);
  char *s = json_dumps(st, JSON_COMPACT);
  fprintf(stderr, "producer stats %s\n", s);
  free(s);
  json_decref(st);
  st = mf_consumer_stats_json(consumer);
  s = json_dumps(st, JSON_COMPACT);
  fprintf(stderr, "plain consumer stats %s\n", s);
  free(s);
  json_decref(st);
  long plain_frames = f->receiver.chains, webrtc_frames = f->webrtc.frames_decoded;
  bool timed_out = f->timed_out;
  fprintf(stderr, "%s: plain receiver decoded %ld frames, webrtc receiver %ld; ingest drops: "
          "not-rtp %llu unknown-source %llu no-key %llu srtp %llu\n",
          suite ? suite : "plain RTP", plain_frames, webrtc_frames,
          (unsigned long long)in_stats.dropped_not_rtp, (unsigned long long)in_stats.dropped_unknown_source,
          (unsigned long long)in_stats.dropped_no_key, (unsigned long long)in_stats.srtp_failures);

  launch_stop(&f->sender);
  launch_stop(&f->receiver);
  gst_peer_stop(&f->webrtc, 3000);
  uv_close((uv_handle_t *)&f->deadline, NULL);
  mf_router_close(f->router);
  mf_rtc_server_close(f->server, NULL, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  mf_dtls_cert_free(f->cert);
  mf_bufpool_stats_t ps;
  mf_bufpool_get_stats(f->pool, &ps);
  mf_bufpool_destroy(f->pool);
  free(client_text);
  json_decref(client_json);

  assert_false(timed_out);
  assert_true(learnt);
  assert_int_equal(in_stats.srtp_failures, 0);
  assert_true(plain_frames >= WANT_FRAMES);
  assert_true(webrtc_frames >= WANT_FRAMES);
  assert_int_equal(ps.in_use, 0);
}

static void test_plain_rtp(void **state) { run_scenario(NULL); }
static void test_srtp_aes_cm(void **state) { run_scenario("AES_CM_128_HMAC_SHA1_80"); }
static void test_srtp_gcm(void **state) { run_scenario("AEAD_AES_128_GCM"); }

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s path/to/gst_peer\n", argv[0]);
    return 2;
  }
  gst_peer_path = argv[1];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_rtp),
      cmocka_unit_test(test_srtp_aes_cm),
      cmocka_unit_test(test_srtp_gcm),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
