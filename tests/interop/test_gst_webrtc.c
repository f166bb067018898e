/* Interop with a WebRTC stack nobody here wrote: GStreamer's webrtcbin (driven by
 * gst_peer) publishes VP8 and Opus to a WebRtcTransport on a worker's RTC server, over
 * loopback. Signalling is SDP built and parsed by node/sdp.c: webrtcbin offers, we answer
 * as an ice-lite, DTLS-passive endpoint. The test passes when ICE completes, DTLS connects
 * and the worker decrypts SRTP video and audio from webrtcbin.
 * The peer runs under a deadline (--duration) and is killed at the end in any case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/rtp/rtp.h"
#include "node/sdp.h"
#include "node/sdp_answer.h"
#include "node/webrtc_transport.h"
#include "tests/interop/gst_driver.h"

#define DEADLINE_MS 45000
#define WANT_VIDEO 100
#define WANT_AUDIO 50

static const char *gst_peer_path;

typedef struct {
  uv_loop_t loop;
  uv_timer_t deadline;
  gst_peer_t peer;
  mf_bufpool_t *pool;
  mf_dtls_cert_t *cert;
  mf_rtc_server_t *server;
  mf_webrtc_transport_t *transport;
  bool answered;
  mf_sdp_t *sdp_offer, *sdp_answer;
  uint32_t video_ssrc, audio_ssrc;
  /* observations */
  mf_ice_state_t ice;
  mf_dtls_state_t dtls;
  mf_transport_state_t state;
  int video_packets, audio_packets, other_packets, unparsable;
  bool timed_out;
} fx_t;

static fx_t fx;

static void on_rtp(void *ud, mf_webrtc_transport_t *t, mf_buf_t *buf) {
  fx_t *f = ud;
  mf_rtp_packet_t p;
  if (mf_rtp_parse(buf->data, buf->len, &p) != MF_OK) {
    f->unparsable++;
    return;
  }
  if (p.payload_type == 96 && (!f->video_ssrc || p.ssrc == f->video_ssrc) && p.payload_len > 0)
    f->video_packets++;
  else if (p.payload_type == 111 && (!f->audio_ssrc || p.ssrc == f->audio_ssrc) && p.payload_len > 0)
    f->audio_packets++;
  else
    f->other_packets++;
}
static void on_ice(void *ud, mf_webrtc_transport_t *t, mf_ice_state_t s) { ((fx_t *)ud)->ice = s; }
static void on_dtls(void *ud, mf_webrtc_transport_t *t, mf_dtls_state_t s) { ((fx_t *)ud)->dtls = s; }
static void on_state(void *ud, mf_webrtc_transport_t *t, mf_transport_state_t s, const char *why) {
  ((fx_t *)ud)->state = s;
}

static void answer_offer(fx_t *f) {
  f->sdp_offer = calloc(1, sizeof *f->sdp_offer);
  f->sdp_answer = calloc(1, sizeof *f->sdp_answer);
  if (mf_sdp_parse(f->peer.sdp, f->peer.sdp_len, f->sdp_offer) != MF_OK) {
    print_error("cannot parse webrtcbin's offer: %s\n%s\n", f->sdp_offer->error, f->peer.sdp);
    fail();
  }
  const mf_sdp_media_t *m0 = &f->sdp_offer->media[0];
  for (size_t i = 0; i < f->sdp_offer->media_count; i++) {
    const mf_sdp_media_t *m = &f->sdp_offer->media[i];
    if (m->ssrc_count == 0) continue;
    if (m->kind == MF_SDP_KIND_VIDEO) f->video_ssrc = m->ssrcs[0].ssrc;
    if (m->kind == MF_SDP_KIND_AUDIO) f->audio_ssrc = m->ssrcs[0].ssrc;
  }
  /* We answer passive: webrtcbin is the DTLS client, so connect() gets role "client". */
  assert_int_equal(mf_webrtc_transport_connect(f->transport, MF_DTLS_ROLE_CLIENT,
                                               m0->transport.fingerprint_alg,
                                               m0->transport.fingerprint), MF_OK);
  char fp[MF_DTLS_FINGERPRINT_MAX];
  assert_int_equal(mf_dtls_cert_fingerprint_for(f->cert, "sha-256", fp, sizeof fp), MF_OK);
  mf_sdp_candidate_t cand = {.component = 1, .priority = 2113937151u, .type = "host",
                             .transport = "udp", .foundation = "udpcandidate",
                             .address = "127.0.0.1", .port = mf_rtc_server_port(f->server)};
  static const char *const codecs[] = {"VP8", "opus"};
  mf_sdp_local_t local = {.ice_ufrag = mf_webrtc_transport_ice_ufrag(f->transport),
                          .ice_pwd = mf_webrtc_transport_ice_pwd(f->transport),
                          .ice_lite = true,
                          .fingerprint_alg = "sha-256",
                          .fingerprint = fp,
                          .setup = MF_SDP_SETUP_PASSIVE,
                          .candidates = &cand,
                          .candidate_count = 1,
                          .codecs = codecs,
                          .codec_count = 2,
                          .session_id = 42,
                          .session_version = 1};
  assert_int_equal(mf_sdp_make_answer(f->sdp_offer, &local, f->sdp_answer), MF_OK);
  static char text[65536];
  assert_int_equal(mf_sdp_write(f->sdp_answer, text, sizeof text, NULL), MF_OK);
  gst_peer_send_sdp(&f->peer, "SDP-ANSWER", text);
  f->answered = true;
}

static void on_deadline(uv_timer_t *t) {
  fx_t *f = t->data;
  f->timed_out = true;
  uv_stop(&f->loop);
}

static bool done(fx_t *f) {
  return f->peer.error || (!f->peer.running && !f->answered) ||
         (f->video_packets >= WANT_VIDEO && f->audio_packets >= WANT_AUDIO &&
          f->state == MF_TRANSPORT_STATE_CONNECTED);
}

static void test_webrtcbin_publishes_to_worker(void **state) {
  fx_t *f = &fx;
  memset(f, 0, sizeof *f);
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_INFO, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  assert_int_equal(mf_srtp_library_init(), MF_OK);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(mf_bufpool_create(4096, 2048, &f->pool), MF_OK);
  assert_int_equal(mf_dtls_cert_generate(&f->cert), MF_OK);
  mf_rtc_server_options_t o = {.listen_ip = "127.0.0.1", .port = 0, .announced_ip = "127.0.0.1",
                               .pool = f->pool, .cert = f->cert};
  assert_int_equal(mf_rtc_server_create(&f->loop, &o, &f->server), MF_OK);
  mf_webrtc_transport_callbacks_t cb = {.state = on_state, .ice_state = on_ice,
                                        .dtls_state = on_dtls, .rtp = on_rtp};
  assert_int_equal(mf_webrtc_transport_create(f->server, &cb, f, &f->transport), MF_OK);

  char *args[] = {(char *)gst_peer_path, "--mode", "send", "--video", "--audio", "--duration", "40", NULL};
  int rc = gst_peer_start(&f->peer, &f->loop, "gst_peer", args);
  if (rc != 0) {
    print_error("cannot start %s: %s\n", gst_peer_path, uv_strerror(rc));
    fail();
  }

  uv_timer_init(&f->loop, &f->deadline);
  f->deadline.data = f;
  uv_timer_start(&f->deadline, on_deadline, DEADLINE_MS, 0);
  while (!done(f) && !f->timed_out) {
    uv_run(&f->loop, UV_RUN_ONCE);
    if (f->peer.sdp_ready && !f->answered) {
      f->peer.sdp_ready = false;
      answer_offer(f);
    }
  }

  mf_webrtc_transport_stats_t st;
  mf_webrtc_transport_get_stats(f->transport, &st);
  fprintf(stderr,
          "result: answered=%d ice=%s dtls=%s state=%s video=%d audio=%d other=%d "
          "unparsable=%d srtp_failures=%llu timed_out=%d\n",
          f->answered, mf_ice_state_name(f->ice), mf_dtls_state_name(f->dtls),
          mf_transport_state_name(f->state), f->video_packets, f->audio_packets,
          f->other_packets, f->unparsable, (unsigned long long)st.srtp_unprotect_failures,
          f->timed_out);

  /* stop the peer whatever happened, then close everything */
  gst_peer_stop(&f->peer, 5000);
  uv_close((uv_handle_t *)&f->deadline, NULL);
  mf_webrtc_transport_close(f->transport);
  mf_rtc_server_close(f->server, NULL, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  mf_dtls_cert_free(f->cert);
  mf_bufpool_destroy(f->pool);
  free(f->sdp_offer);
  free(f->sdp_answer);

  assert_false(f->peer.error);
  assert_true(f->answered);
  assert_true(f->ice == MF_ICE_STATE_COMPLETED || f->ice == MF_ICE_STATE_CONNECTED);
  assert_int_equal(f->dtls, MF_DTLS_STATE_CONNECTED);
  assert_int_equal(f->state, MF_TRANSPORT_STATE_CONNECTED);
  assert_true(f->video_ssrc != 0 && f->audio_ssrc != 0);
  assert_true(f->video_packets >= WANT_VIDEO);
  assert_true(f->audio_packets >= WANT_AUDIO);
  assert_int_equal(f->unparsable, 0);
  assert_int_equal(st.srtp_unprotect_failures, 0);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s path/to/gst_peer\n", argv[0]);
    return 2;
  }
  gst_peer_path = argv[1];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_webrtcbin_publishes_to_worker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
