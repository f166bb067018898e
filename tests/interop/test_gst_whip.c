/* WHIP ingest and WHEP playback end to end with GStreamer webrtcbin (Debian 12 has no
 * whipsink/whepsrc, so the test does the HTTP itself): a node (gateway + two workers,
 * in-process, dev mode) serves /whip and /whep; gst_peer --mode send (VP8 + Opus) POSTs its
 * offer to /whip/<room> and applies the answer; a second gst_peer --mode recv --offer POSTs
 * a recvonly offer to /whep/<room> and must decode video frames and receive audio. The
 * player then quits: its resource must end by itself (ICE consent), so its DELETE is 404;
 * the publisher's DELETE is 200, and /metrics must show no transport, producer or consumer
 * left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <nng/nng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "node/gateway.h"
#include "node/srtp.h"
#include "tests/interop/gst_driver.h"
#include "tests/support/http_client.h"

#define DEADLINE_MS 40000
#define WANT_FRAMES 60
#define IO_MS 5000

static const char *gst_peer_path;

typedef struct {
  uv_loop_t loop;
  uv_timer_t deadline;
  bool timed_out;
  mf_dtls_cert_t *cert;
  mf_worker_t *workers[2];
  mf_gateway_t *gw;
  uint16_t port;
  gst_peer_t publisher, player;
  bool player_started;
  test_http_res_t whip, whep;
} fx_t;

static fx_t fx;

static void on_deadline(uv_timer_t *t) {
  fx_t *f = t->data;
  f->timed_out = true;
  uv_stop(&f->loop);
}

/* POSTs the peer's offer to path and hands it the answer; the response is kept in res. */
static void negotiate(fx_t *f, gst_peer_t *peer, const char *path, test_http_res_t *res) {
  static const char *const hdr[] = {"Content-Type: application/sdp", NULL};
  peer->sdp_ready = false;
  assert_int_equal(test_http(f->port, "POST", path, hdr, peer->sdp, peer->sdp_len, IO_MS, res), 0);
  if (res->status != 201) print_error("POST %s: %d %s\n", path, res->status, res->body);
  assert_int_equal(res->status, 201);
  assert_true(res->location[0] == '/');
  gst_peer_send_sdp(peer, "SDP-ANSWER", res->body);
}

static bool publisher_flowing(fx_t *f) {
  return strcmp(f->publisher.dtls, "connected") == 0 && f->publisher.frames_sent > 10;
}

static bool playing(fx_t *f) {
  return f->player.frames_decoded >= WANT_FRAMES && f->player.audio_buffers > 0;
}

static long metric(const char *text, const char *name) {
  long total = 0;
  size_t n = strlen(name);
  for (const char *p = text; (p = strstr(p, name)); p += n)
    if ((p == text || p[-1] == '\n') && p[n] == '{') {
      const char *v = strchr(p, ' ');
      if (v) total += strtol(v + 1, NULL, 10);
    }
  return total;
}

static void test_whip_publish_whep_play(void **state) {
  fx_t *f = &fx;
  memset(f, 0, sizeof *f);
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_INFO, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  assert_int_equal(mf_srtp_library_init(), MF_OK);
  assert_int_equal(mf_dtls_cert_generate(&f->cert), MF_OK);
  for (uint32_t i = 0; i < 2; i++) {
    mf_worker_options_t o = {.index = i, .cpu = -1, .rtc_listen_ip = "127.0.0.1",
                             .announced_ip = "127.0.0.1", .cert = f->cert};
    assert_int_equal(mf_worker_start(&o, &f->workers[i]), MF_OK);
  }
  mf_gateway_options_t go = {.listen = "127.0.0.1:0", .secret = "", .static_dir = ""};
  assert_int_equal(mf_gateway_start(&go, f->workers, 2, &f->gw), MF_OK);
  f->port = mf_gateway_port(f->gw);
  assert_int_equal(uv_loop_init(&f->loop), 0);

  char *pub_args[] = {(char *)gst_peer_path, "--mode", "send", "--video", "--audio",
                      "--duration", "100", NULL};
  assert_int_equal(gst_peer_start(&f->publisher, &f->loop, "publisher", pub_args), 0);
  uv_timer_init(&f->loop, &f->deadline);
  f->deadline.data = f;
  uv_timer_start(&f->deadline, on_deadline, DEADLINE_MS, 0);

  bool published = false, played = false;
  while (!f->timed_out && !f->publisher.error && !f->player.error && !playing(f)) {
    uv_run(&f->loop, UV_RUN_ONCE);
    if (!published && f->publisher.sdp_ready) {
      negotiate(f, &f->publisher, "/whip/gst-room", &f->whip);
      published = true;
    }
    if (published && !f->player_started && publisher_flowing(f)) {
      char *play_args[] = {(char *)gst_peer_path, "--mode", "recv", "--video", "--audio",
                           "--offer", "--duration", "50", NULL};
      assert_int_equal(gst_peer_start(&f->player, &f->loop, "player", play_args), 0);
      f->player_started = true;
    }
    if (f->player_started && !played && f->player.sdp_ready) {
      negotiate(f, &f->player, "/whep/gst-room", &f->whep);
      played = true;
    }
  }
  fprintf(stderr, "result: published=%d played=%d frames_sent=%ld frames_decoded=%ld "
          "audio_buffers=%ld timed_out=%d\n", published, played, f->publisher.frames_sent,
          f->player.frames_decoded, f->player.audio_buffers, f->timed_out);
  bool ok = playing(f);

  /* The player quits without a DTLS close_notify (webrtcbin 1.22 sends none): ICE consent
   * expires (MF_ICE_CONSENT_TIMEOUT_MS, 30 s) and ends its WHEP resource by itself; a DELETE
   * then gets 404. Polled every 100 ms for up to 45 s. */
  if (f->player_started) gst_peer_stop(&f->player, 5000);
  test_http_res_t res;
  long left = -1;
  for (int i = 0; played && i < 450 && left != 1; i++) {
    if (test_http(f->port, "GET", "/metrics", NULL, NULL, 0, IO_MS, &res) == 0) {
      const char *p = strstr(res.body, "\nmafalda_whip_resources ");
      left = p ? strtol(p + 24, NULL, 10) : -1;
      test_http_res_free(&res);
    }
    if (left != 1) usleep(100000);
  }
  fprintf(stderr, "after the player quit: %ld resources\n", left);
  /* DELETE both while the publisher still runs, then nothing may be left on the node. */
  int del_whep = -1, del_whip = -1;
  if (played && test_http(f->port, "DELETE", f->whep.location, NULL, NULL, 0, IO_MS, &res) == 0) {
    del_whep = res.status;
    test_http_res_free(&res);
  }
  if (published && test_http(f->port, "DELETE", f->whip.location, NULL, NULL, 0, IO_MS, &res) == 0) {
    del_whip = res.status;
    test_http_res_free(&res);
  }
  long transports = -1, producers = -1, consumers = -1;
  for (int i = 0; i < 200; i++) { /* the closes run on the workers: poll, bounded */
    if (test_http(f->port, "GET", "/metrics", NULL, NULL, 0, IO_MS, &res) == 0) {
      transports = metric(res.body, "mafalda_worker_transports");
      producers = metric(res.body, "mafalda_worker_producers");
      consumers = metric(res.body, "mafalda_worker_consumers");
      test_http_res_free(&res);
    }
    if (transports == 0 && producers == 0 && consumers == 0) break;
    usleep(10000);
  }
  fprintf(stderr, "after DELETE (%d, %d): transports=%ld producers=%ld consumers=%ld\n",
          del_whep, del_whip, transports, producers, consumers);

  gst_peer_stop(&f->publisher, 5000);
  uv_close((uv_handle_t *)&f->deadline, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  mf_gateway_stop(f->gw);
  for (int i = 0; i < 2; i++) mf_worker_stop(f->workers[i]);
  mf_dtls_cert_free(f->cert);
  test_http_res_free(&f->whip);
  test_http_res_free(&f->whep);
  nng_fini();

  assert_false(f->publisher.error);
  assert_false(f->player.error);
  assert_true(ok);
  assert_int_equal(left, 1);
  assert_int_equal(del_whep, 404);
  assert_int_equal(del_whip, 200);
  assert_int_equal(transports, 0);
  assert_int_equal(producers, 0);
  assert_int_equal(consumers, 0);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s path/to/gst_peer\n", argv[0]);
    return 2;
  }
  gst_peer_path = argv[1];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_whip_publish_whep_play),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
