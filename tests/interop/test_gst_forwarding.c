/* Forwarding end to end with real peers: a GStreamer webrtcbin publishes VP8 and Opus into
 * a Router on a worker's RTC server; two more webrtcbin peers each consume both producers
 * on their own WebRtcTransport and decode them. Signalling is SDP built by node/sdp*.c:
 * the publisher offers (we answer, as mediasoup-client's server side would), and for the
 * receivers we offer the consumers' rtpParameters and they answer. Passes when each
 * receiver decodes >= 100 video frames and receives audio; then closing the publisher's
 * transport must close the consumers with "producerclose".
 * The lossy variant puts a UDP relay written for the test in front of every peer that drops
 * 5% of RTP in each direction: NACK/RTX (both hops) and PLI must repair it, so that over a
 * 20 s window every receiver decodes at least 90% of the frames the publisher encoded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "node/router.h"
#include "node/sdp.h"
#include "node/sdp_answer.h"
#include "node/sdp_rtp.h"
#include "tests/interop/gst_driver.h"

#define RECEIVERS 2
#define DEADLINE_MS 60000
#define WANT_FRAMES 100
#define LOSS_PERCENT 5
#define WINDOW_MS 20000
/* Peers report their counters once a second, not in step with each other, so each edge of
 * the window is uncertain by one report interval: 30 frames at 30 fps. */
#define STATS_SLACK_FRAMES 30

static const char *gst_peer_path;

typedef struct {
  gst_peer_t peer;
  mf_router_transport_t *transport;
  mf_consumer_t *consumers[2];
  size_t consumer_count;
  bool answered;
} receiver_t;

/* Sits between one peer and the RTC server: the peer sends to `front` (the candidate we
 * announce to it), the relay forwards through `back`, dropping RTP (not RTCP, STUN or DTLS)
 * with a fixed-seed pseudo-random 5% chance per packet and direction. */
typedef struct {
  uv_udp_t front, back;
  struct sockaddr_storage peer;
  bool has_peer;
  struct sockaddr_in server;
  uint64_t rng;
  uint16_t front_port;
  unsigned long dropped_up, dropped_down, forwarded;
} relay_t;

typedef struct {
  uv_loop_t loop;
  uv_timer_t deadline;
  bool lossy;
  relay_t relays[1 + RECEIVERS];
  bool timed_out;
  mf_bufpool_t *pool;
  mf_dtls_cert_t *cert;
  char fingerprint[MF_DTLS_FINGERPRINT_MAX];
  mf_rtc_server_t *server;
  mf_router_t *router;
  gst_peer_t publisher;
  mf_router_transport_t *pub_transport;
  mf_producer_t *producers[2];
  size_t producer_count;
  bool published;
  receiver_t receivers[RECEIVERS];
  int producerclose_events, producerpause_events, producerresume_events;
} fx_t;

static fx_t fx;

static void on_event(void *ud, const char *event, const char *target, json_t *data) {
  fx_t *f = ud;
  if (strcmp(event, "producerclose") == 0) f->producerclose_events++;
  if (strcmp(event, "producerpause") == 0) f->producerpause_events++;
  if (strcmp(event, "producerresume") == 0) f->producerresume_events++;
  json_decref(data);
}

static bool relay_drops(relay_t *r, const uint8_t *d, ssize_t n) {
  if (n < 2 || d[0] < 128 || d[0] > 191 || (d[1] >= 192 && d[1] <= 223)) return false;
  r->rng ^= r->rng << 13;
  r->rng ^= r->rng >> 7;
  r->rng ^= r->rng << 17;
  return r->rng % 100 < LOSS_PERCENT;
}

static void relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char storage[2048];
  *buf = uv_buf_init(storage, sizeof storage);
}

static void relay_from_peer(uv_udp_t *h, ssize_t n, const uv_buf_t *buf,
                            const struct sockaddr *addr, unsigned flags) {
  relay_t *r = h->data;
  if (n <= 0 || !addr) return;
  memcpy(&r->peer, addr, sizeof(struct sockaddr_in));
  r->has_peer = true;
  if (relay_drops(r, (const uint8_t *)buf->base, n)) {
    r->dropped_up++;
    return;
  }
  uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
  uv_udp_try_send(&r->back, &b, 1, (const struct sockaddr *)&r->server);
  r->forwarded++;
}

static void relay_from_server(uv_udp_t *h, ssize_t n, const uv_buf_t *buf,
                              const struct sockaddr *addr, unsigned flags) {
  relay_t *r = h->data;
  if (n <= 0 || !r->has_peer) return;
  if (relay_drops(r, (const uint8_t *)buf->base, n)) {
    r->dropped_down++;
    return;
  }
  uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
  uv_udp_try_send(&r->front, &b, 1, (const struct sockaddr *)&r->peer);
  r->forwarded++;
}

static void relay_open(relay_t *r, uv_loop_t *loop, uint16_t server_port, uint64_t seed) {
  memset(r, 0, sizeof *r);
  r->rng = seed;
  uv_ip4_addr("127.0.0.1", server_port, &r->server);
  struct sockaddr_in any;
  uv_ip4_addr("127.0.0.1", 0, &any);
  uv_udp_t *socks[2] = {&r->front, &r->back};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(uv_udp_init(loop, socks[i]), 0);
    socks[i]->data = r;
    assert_int_equal(uv_udp_bind(socks[i], (const struct sockaddr *)&any, 0), 0);
  }
  struct sockaddr_in bound;
  int len = sizeof bound;
  uv_udp_getsockname(&r->front, (struct sockaddr *)&bound, &len);
  r->front_port = ntohs(bound.sin_port);
  uv_udp_recv_start(&r->front, relay_alloc, relay_from_peer);
  uv_udp_recv_start(&r->back, relay_alloc, relay_from_server);
}

static void relay_close(relay_t *r) {
  uv_close((uv_handle_t *)&r->front, NULL);
  uv_close((uv_handle_t *)&r->back, NULL);
}

/* Peer `index` (0 = publisher) reaches us directly, or through its relay when lossy. */
static mf_sdp_candidate_t our_candidate(fx_t *f, int index) {
  mf_sdp_candidate_t c = {.component = 1, .priority = 2113937151u, .type = "host",
                          .transport = "udp", .foundation = "udpcandidate",
                          .address = "127.0.0.1",
                          .port = f->lossy ? f->relays[index].front_port : mf_rtc_server_port(f->server)};
  return c;
}

/* The remote's DTLS role from its answer/offer's setup attribute. */
static mf_dtls_role_t remote_role(mf_sdp_setup_t setup) {
  return setup == MF_SDP_SETUP_ACTIVE ? MF_DTLS_ROLE_CLIENT
         : setup == MF_SDP_SETUP_PASSIVE ? MF_DTLS_ROLE_SERVER
                                         : MF_DTLS_ROLE_AUTO;
}

/* Like mediasoup's supported capabilities: RTX only for video. */
static bool no_audio_rtx(const mf_sdp_media_t *m, const mf_sdp_payload_t *pl, void *ctx) {
  return !(m->kind == MF_SDP_KIND_AUDIO && strcasecmp(pl->name, "rtx") == 0);
}

/* Keeps the codecs the answer accepted for this section (the negotiated set). */
static void keep_negotiated(mf_rtp_parameters_t *params, const mf_sdp_media_t *answered) {
  size_t n = 0;
  for (size_t i = 0; i < params->codec_count; i++) {
    bool kept = false;
    for (size_t k = 0; k < answered->payload_count; k++)
      kept = kept || answered->payloads[k].pt == params->codecs[i].payload_type;
    if (kept) params->codecs[n++] = params->codecs[i];
  }
  params->codec_count = n;
  if (n == 0 || !mf_ortc_is_rtx_mime(params->codecs[n - 1].mime_type))
    for (size_t e = 0; e < params->encoding_count; e++) {
      bool has_rtx = false;
      for (size_t i = 0; i < n; i++) has_rtx = has_rtx || mf_ortc_is_rtx_mime(params->codecs[i].mime_type);
      if (!has_rtx) params->encodings[e].has_rtx = false;
    }
}

static void publish(fx_t *f) {
  mf_sdp_t *offer = calloc(1, sizeof *offer), *answer = calloc(1, sizeof *answer);
  if (mf_sdp_parse(f->publisher.sdp, f->publisher.sdp_len, offer) != MF_OK) {
    print_error("bad offer: %s\n", offer->error);
    fail();
  }
  assert_int_equal(mf_router_create_webrtc_transport(f->router, &f->pub_transport), MF_OK);
  mf_webrtc_transport_t *wt = mf_router_transport_webrtc(f->pub_transport);
  mf_sdp_candidate_t cand = our_candidate(f, 0);
  static const char *const codecs[] = {"VP8", "opus", "rtx"};
  mf_sdp_local_t local = {.ice_ufrag = mf_webrtc_transport_ice_ufrag(wt),
                          .ice_pwd = mf_webrtc_transport_ice_pwd(wt),
                          .ice_lite = true, .fingerprint_alg = "sha-256",
                          .fingerprint = f->fingerprint, .setup = MF_SDP_SETUP_PASSIVE,
                          .candidates = &cand, .candidate_count = 1, .codecs = codecs,
                          .codec_count = 3, .filter = no_audio_rtx, .session_id = 1,
                          .session_version = 1};
  assert_int_equal(mf_sdp_make_answer(offer, &local, answer), MF_OK);
  for (size_t i = 0; i < offer->media_count; i++) {
    const mf_sdp_media_t *m = &offer->media[i];
    mf_rtp_parameters_t params;
    char err[256];
    assert_int_equal(mf_sdp_rtp_parameters_from_media(m, &params, err, sizeof err), MF_OK);
    keep_negotiated(&params, &answer->media[i]);
    mf_media_kind_t kind = m->kind == MF_SDP_KIND_VIDEO ? MF_MEDIA_KIND_VIDEO : MF_MEDIA_KIND_AUDIO;
    mf_err_t e = mf_router_produce(f->pub_transport, kind, &params, false, err, sizeof err,
                                   &f->producers[f->producer_count]);
    if (e) {
      print_error("produce(%s) failed: %s\n", m->mid, err);
      fail();
    }
    f->producer_count++;
  }
  assert_int_equal(f->producer_count, 2);
  const mf_sdp_media_t *m0 = &offer->media[0];
  assert_int_equal(mf_webrtc_transport_connect(wt, MF_DTLS_ROLE_CLIENT, m0->transport.fingerprint_alg,
                                               m0->transport.fingerprint), MF_OK);
  static char text[65536];
  assert_int_equal(mf_sdp_write(answer, text, sizeof text, NULL), MF_OK);
  gst_peer_send_sdp(&f->publisher, "SDP-ANSWER", text);
  free(offer);
  free(answer);
  f->published = true;
}

/* Consumes both producers on a new transport and offers them to a receiving webrtcbin. */
static void offer_to_receiver(fx_t *f, receiver_t *r, int index) {
  assert_int_equal(mf_router_create_webrtc_transport(f->router, &r->transport), MF_OK);
  mf_webrtc_transport_t *wt = mf_router_transport_webrtc(r->transport);
  mf_sdp_t *offer = calloc(1, sizeof *offer);
  offer->ice_lite = true;
  snprintf(offer->msid_semantic, sizeof offer->msid_semantic, "WMS *");
  mf_sdp_candidate_t cand = our_candidate(f, index);
  for (size_t i = 0; i < f->producer_count; i++) {
    char err[256];
    /* The receiver's device capabilities: what the router offers (webrtcbin decodes VP8
     * and Opus, the producers' codecs). */
    mf_err_t e = mf_router_consume(r->transport, mf_producer_id(f->producers[i]),
                                   mf_router_rtp_capabilities(f->router), false, err,
                                   sizeof err, &r->consumers[r->consumer_count]);
    if (e) {
      print_error("consume failed: %s\n", err);
      fail();
    }
    mf_consumer_t *c = r->consumers[r->consumer_count++];
    mf_sdp_media_t *m = &offer->media[offer->media_count++];
    mf_rtp_parameters_t *cpar = mf_consumer_rtp_parameters_copy(c);
    assert_non_null(cpar);
    assert_int_equal(mf_sdp_media_from_rtp_parameters(cpar, mf_producer_kind(f->producers[i]),
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
  }
  static char text[65536];
  mf_err_t e = mf_sdp_write(offer, text, sizeof text, NULL);
  free(offer);
  assert_int_equal(e, MF_OK);
  gst_peer_send_sdp(&r->peer, "SDP-OFFER", text);
}

static void on_receiver_answer(receiver_t *r) {
  mf_sdp_t *answer = calloc(1, sizeof *answer);
  if (mf_sdp_parse(r->peer.sdp, r->peer.sdp_len, answer) != MF_OK) {
    print_error("bad answer: %s\n", answer->error);
    fail();
  }
  const mf_sdp_transport_t *tr = &answer->media[0].transport;
  assert_int_equal(mf_webrtc_transport_connect(mf_router_transport_webrtc(r->transport),
                                               remote_role(tr->setup), tr->fingerprint_alg,
                                               tr->fingerprint), MF_OK);
  free(answer);
  r->answered = true;
}

static void on_deadline(uv_timer_t *t) {
  fx_t *f = t->data;
  f->timed_out = true;
  uv_stop(&f->loop);
}

static bool all_decoding(fx_t *f) {
  for (int i = 0; i < RECEIVERS; i++) {
    const gst_peer_t *p = &f->receivers[i].peer;
    if (p->frames_decoded < WANT_FRAMES || p->audio_buffers <= 0) return false;
  }
  return true;
}

static bool any_error(fx_t *f) {
  bool e = f->publisher.error || !f->publisher.running;
  for (int i = 0; i < RECEIVERS; i++) e = e || f->receivers[i].peer.error || !f->receivers[i].peer.running;
  return e;
}

static void handle_signalling(fx_t *f, bool *offered) {
  if (f->publisher.sdp_ready && !f->published) {
    f->publisher.sdp_ready = false;
    publish(f);
  }
  if (f->published && !*offered) {
    *offered = true;
    for (int i = 0; i < RECEIVERS; i++) offer_to_receiver(f, &f->receivers[i], i + 1);
  }
  for (int i = 0; i < RECEIVERS; i++) {
    receiver_t *r = &f->receivers[i];
    if (r->peer.sdp_ready && !r->answered) {
      r->peer.sdp_ready = false;
      on_receiver_answer(r);
    }
  }
}

static void window_over(uv_timer_t *t) { *(bool *)t->data = true; }

/* Runs the loop for ms (signalling and peers keep going). */
static void run_for(fx_t *f, uint64_t ms) {
  bool over = false;
  uv_timer_t t;
  uv_timer_init(&f->loop, &t);
  t.data = &over;
  uv_timer_start(&t, window_over, ms, 0);
  while (!over && !any_error(f) && !f->timed_out) uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

static mf_producer_t *video_producer(fx_t *f) {
  for (size_t i = 0; i < f->producer_count; i++)
    if (mf_producer_kind(f->producers[i]) == MF_MEDIA_KIND_VIDEO) return f->producers[i];
  return NULL;
}

static mf_consumer_t *video_consumer(receiver_t *r) {
  for (size_t i = 0; i < r->consumer_count; i++)
    if (strstr(mf_consumer_rtp_parameters_text(r->consumers[i]), "\"mimeType\":\"video/VP8\""))
      return r->consumers[i];
  return NULL;
}

/* Waits (up to 8 s) until receiver i has decoded `more` frames beyond `from`. */
static bool decodes_again(fx_t *f, int i, long from, long more) {
  for (int waited = 0; waited < 8000; waited += 250) {
    if (f->receivers[i].peer.frames_decoded - from >= more) return true;
    run_for(f, 250);
  }
  fprintf(stderr, "receiver %d decoded %ld frames since %ld, wanted %ld more\n", i,
          f->receivers[i].peer.frames_decoded - from, from, more);
  json_t *pst = mf_producer_stats_json(video_producer(f));
  char *ptxt = json_dumps(pst, JSON_COMPACT);
  fprintf(stderr, "  producer %s\n  publisher frames_sent=%ld packets_sent=%ld\n", ptxt,
          f->publisher.frames_sent, f->publisher.packets_sent);
  free(ptxt);
  json_decref(pst);
  for (size_t k = 0; k < f->receivers[i].consumer_count; k++) {
    json_t *st = mf_consumer_stats_json(f->receivers[i].consumers[k]);
    char *txt = json_dumps(st, JSON_COMPACT);
    fprintf(stderr, "  %s\n", txt);
    free(txt);
    json_decref(st);
  }
  return false;
}

/* Producer pause stops video to everyone (with producerpause events) and resume brings it
 * back; a consumer pause stops only that consumer. Counters arrive once a second, so the
 * "stopped" checks first let in-flight frames and one report interval pass, and the
 * "flowing again" checks wait with a deadline (a keyframe has to be requested first). */
static void check_pause_resume(fx_t *f) {
  mf_producer_t *vp = video_producer(f);
  assert_non_null(vp);
  mf_producer_pause(vp);
  assert_true(mf_producer_paused(vp));
  assert_int_equal(f->producerpause_events, RECEIVERS);
  run_for(f, 1500);
  long before[RECEIVERS];
  for (int i = 0; i < RECEIVERS; i++) before[i] = f->receivers[i].peer.frames_decoded;
  run_for(f, 2500);
  for (int i = 0; i < RECEIVERS; i++) assert_true(f->receivers[i].peer.frames_decoded - before[i] <= 5);
  mf_producer_resume(vp);
  assert_int_equal(f->producerresume_events, RECEIVERS);
  for (int i = 0; i < RECEIVERS; i++) assert_true(decodes_again(f, i, before[i], 30));

  mf_consumer_t *c = video_consumer(&f->receivers[0]);
  assert_non_null(c);
  mf_consumer_pause(c);
  assert_true(mf_consumer_paused(c));
  run_for(f, 1500);
  long r0 = f->receivers[0].peer.frames_decoded, r1 = f->receivers[1].peer.frames_decoded;
  run_for(f, 2500);
  assert_true(f->receivers[0].peer.frames_decoded - r0 <= 5);
  assert_true(decodes_again(f, 1, r1, 30)); /* the other receiver is not affected */
  mf_consumer_resume(c);
  assert_false(mf_consumer_paused(c));
  assert_true(decodes_again(f, 0, f->receivers[0].peer.frames_decoded, 30));
}

static json_int_t stat_of(json_t *stats, const char *key) {
  return json_integer_value(json_object_get(json_array_get(stats, 0), key));
}

static void run_scenario(bool lossy) {
  fx_t *f = &fx;
  memset(f, 0, sizeof *f);
  f->lossy = lossy;
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_INFO, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  assert_int_equal(mf_srtp_library_init(), MF_OK);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(mf_bufpool_create(8192, 2048, &f->pool), MF_OK);
  assert_int_equal(mf_dtls_cert_generate(&f->cert), MF_OK);
  assert_int_equal(mf_dtls_cert_fingerprint_for(f->cert, "sha-256", f->fingerprint, sizeof f->fingerprint), MF_OK);
  mf_rtc_server_options_t o = {.listen_ip = "127.0.0.1", .port = 0, .announced_ip = "127.0.0.1",
                               .pool = f->pool, .cert = f->cert};
  assert_int_equal(mf_rtc_server_create(&f->loop, &o, &f->server), MF_OK);
  char err[256];
  assert_int_equal(mf_router_create(f->server, NULL, NULL, 0, on_event, f, err, sizeof err, &f->router), MF_OK);
  if (lossy)
    for (int i = 0; i <= RECEIVERS; i++)
      relay_open(&f->relays[i], &f->loop, mf_rtc_server_port(f->server), 0x9e3779b97f4a7c15ULL + (uint64_t)i);

  char *pub_args[] = {(char *)gst_peer_path, "--mode", "send", "--video", "--audio", "--nack", "--duration", "80", NULL};
  assert_int_equal(gst_peer_start(&f->publisher, &f->loop, "publisher", pub_args), 0);
  static const char *const names[RECEIVERS] = {"receiver-1", "receiver-2"};
  for (int i = 0; i < RECEIVERS; i++) {
    char *args[] = {(char *)gst_peer_path, "--mode", "recv", "--video", "--audio", "--nack", "--duration", "80", NULL};
    assert_int_equal(gst_peer_start(&f->receivers[i].peer, &f->loop, names[i], args), 0);
  }
  uv_timer_init(&f->loop, &f->deadline);
  f->deadline.data = f;
  uv_timer_start(&f->deadline, on_deadline, DEADLINE_MS, 0);
  bool offered = false;
  while (!all_decoding(f) && !any_error(f) && !f->timed_out) {
    uv_run(&f->loop, UV_RUN_ONCE);
    handle_signalling(f, &offered);
  }
  /* Freeze check: over a fixed window, each receiver decodes >= 90% of what was encoded. */
  long sent0 = f->publisher.frames_sent, got0[RECEIVERS], sent1 = 0, got1[RECEIVERS];
  for (int i = 0; i < RECEIVERS; i++) got0[i] = f->receivers[i].peer.frames_decoded;
  bool window_done = false;
  uv_timer_t window;
  uv_timer_init(&f->loop, &window);
  window.data = &window_done;
  if (all_decoding(f)) {
    uv_timer_start(&window, window_over, WINDOW_MS, 0);
    while (!window_done && !any_error(f) && !f->timed_out) uv_run(&f->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&window, NULL);
  sent1 = f->publisher.frames_sent;
  for (int i = 0; i < RECEIVERS; i++) got1[i] = f->receivers[i].peer.frames_decoded;
  json_int_t consumer_nacks = 0, consumer_rtx = 0, producer_nacks = 0, producer_repaired = 0,
             producer_plis = 0;
  if (!lossy && all_decoding(f) && !any_error(f)) check_pause_resume(f);
  for (int i = 0; i < RECEIVERS; i++) {
    fprintf(stderr, "%s: frames_decoded=%ld audio_buffers=%ld\n", names[i],
            f->receivers[i].peer.frames_decoded, f->receivers[i].peer.audio_buffers);
    for (size_t k = 0; k < f->receivers[i].consumer_count; k++) {
      json_t *st = mf_consumer_stats_json(f->receivers[i].consumers[k]);
      consumer_nacks += stat_of(st, "nackCount");
      consumer_rtx += stat_of(st, "packetsRetransmitted");
      char *s = json_dumps(st, JSON_COMPACT);
      fprintf(stderr, "  consumer stats %s\n", s);
      free(s);
      json_decref(st);
    }
  }
  for (size_t k = 0; k < f->producer_count; k++) {
    json_t *st = mf_producer_stats_json(f->producers[k]);
    producer_nacks += stat_of(st, "nackCount");
    producer_repaired += stat_of(st, "packetsRepaired");
    producer_plis += stat_of(st, "pliCount");
    char *s = json_dumps(st, JSON_COMPACT);
    fprintf(stderr, "producer stats %s\n", s);
    free(s);
    json_decref(st);
  }
  bool decoding = all_decoding(f);
  bool timed_out = f->timed_out;
  fprintf(stderr, "window: publisher encoded %ld frames;", sent1 - sent0);
  for (int i = 0; i < RECEIVERS; i++) fprintf(stderr, " %s decoded %ld;", names[i], got1[i] - got0[i]);
  fprintf(stderr, "\nrepair: consumer nacks %lld rtx %lld, producer nacks %lld repaired %lld plis %lld\n",
          (long long)consumer_nacks, (long long)consumer_rtx, (long long)producer_nacks,
          (long long)producer_repaired, (long long)producer_plis);
  if (lossy)
    for (int i = 0; i <= RECEIVERS; i++)
      fprintf(stderr, "relay %d: forwarded %lu, dropped up %lu down %lu\n", i,
              f->relays[i].forwarded, f->relays[i].dropped_up, f->relays[i].dropped_down);

  /* Close cascade: the publisher's transport takes its producers and their consumers. */
  if (f->pub_transport) mf_router_transport_close(f->pub_transport);
  int closes = f->producerclose_events;
  for (int i = 0; i < RECEIVERS; i++) gst_peer_stop(&f->receivers[i].peer, 5000);
  gst_peer_stop(&f->publisher, 5000);
  uv_close((uv_handle_t *)&f->deadline, NULL);
  if (lossy)
    for (int i = 0; i <= RECEIVERS; i++) relay_close(&f->relays[i]);
  mf_router_close(f->router);
  mf_rtc_server_close(f->server, NULL, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  mf_dtls_cert_free(f->cert);
  mf_bufpool_stats_t ps;
  mf_bufpool_get_stats(f->pool, &ps);
  mf_bufpool_destroy(f->pool);

  assert_false(timed_out);
  assert_true(decoding);
  assert_int_equal(closes, RECEIVERS * 2);
  assert_int_equal(ps.in_use, 0); /* every forwarded and stored buffer came back */
  assert_true(sent1 - sent0 > 0);
  for (int i = 0; i < RECEIVERS; i++)
    assert_true((got1[i] - got0[i]) * 10 >= (sent1 - sent0 - STATS_SLACK_FRAMES) * 9);
  assert_true(producer_plis > 0); /* consumers joining asked for keyframes */
  if (lossy) {
    assert_true(consumer_nacks > 0 && consumer_rtx > 0);   /* downlink repaired from our store */
    assert_true(producer_nacks > 0 && producer_repaired > 0); /* uplink repaired by our NACKs */
  }
}

static void test_one_publisher_two_receivers(void **state) { run_scenario(false); }

static void test_loss_is_repaired(void **state) { run_scenario(true); }

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s path/to/gst_peer\n", argv[0]);
    return 2;
  }
  gst_peer_path = argv[1];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_publisher_two_receivers),
      cmocka_unit_test(test_loss_is_repaired),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
