/* churn: joins and leaves with media flowing. One mafalda-node of its own (1 worker,
 * standalone, --api-grace-ms 0 so a dropped session's objects close at once), a steady
 * publisher and L long-lived subscribers driven by the load generator (gen.h) on the main
 * thread, while a second thread (the churner) joins R subscribers per second, each for S
 * seconds (schedule: bench_more.h), then drops its WebSocket and socket.
 *
 * A churn subscriber is what a browser joining a call does: WebSocket, router.join,
 * router.getRtpCapabilities, router.createWebRtcTransport, transport.connect, consume the
 * publisher's video and audio (paused), ICE + DTLS (blocking, tests/support/webrtc_peer.h),
 * consumer.resume both, then media. Its join latency runs from the createWebRtcTransport
 * answer to the kernel's receive timestamp (SO_TIMESTAMPNS, CLOCK_REALTIME) of the first
 * datagram that decrypts as RTP, so time the churner spends setting up the next peer does
 * not count. The churner uses its own DTLS certificate and context; it shares nothing with
 * the generator but the publisher's producer ids (copied before it starts).
 *
 * Figures: joins scheduled / made / failed, joins/s achieved over the window, how far the
 * joins fell behind the schedule, join latency p50/p99/max, churners that got no media,
 * the long-lived subscribers' loss and latency (gen.h's accounting), the node's CPU and
 * its RSS before the churn, at the end of the window and after every churner left. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "node/dtls.h"
#include "tests/bench/bench.h"
#include "tests/bench/bench_stats.h"
#include "tests/bench/gen.h"
#include "tests/bench/gen_node.h"
#include "tests/support/test_proc.h"
#include "tests/support/webrtc_peer.h"
#include "tests/support/ws_client.h"

#ifndef MF_BENCH_NODE
#define MF_BENCH_NODE "mafalda-node"
#endif

#define ROOM "bench-churn"
#define IO_MS 10000
#define PKT_CAP 1600
#define TICK_MS 10

typedef struct {
  const char *node_bin;
  int rate, stay_s, subscribers, seconds, warmup_s, bitrate_kbps, fps, keyframe_s;
  bool json, assert_no_loss;
} churn_opts_t;

typedef struct {
  nng_stream *ws;
  int next_id;
  json_t *transport;
  mf_webrtc_peer_t *peer;
  uint64_t created_rt_ns; /* CLOCK_REALTIME at the createWebRtcTransport answer */
  uint64_t leave_ns;      /* CLOCK_MONOTONIC */
  bool got_media;
  uint64_t rtp;
} churner_t;

/* What the churner thread is given and gives back. */
typedef struct {
  uint16_t api_port;
  mf_gen_publisher_ids_t pub;
  mf_bench_churn_t sched;
  /* results */
  uint64_t scheduled, made, failed, left, no_media, max_alive;
  uint64_t not_attempted; /* still due when the window ended (the churner fell behind) */
  double max_lag_ms, made_in_window_s;
  mf_bench_hist_t latency; /* join latency in us */
  mf_bench_hist_t setup;   /* WebSocket dial to consumer.resume answered, us */
} churn_job_t;

/* ---- the API, blocking (one session per churner) ---- */

static json_t *api_call(churner_t *c, const char *method, json_t *data) {
  int id = ++c->next_id;
  json_t *req = json_pack("{s:i, s:s, s:o}", "id", id, "method", method,
                          "data", data ? data : json_object());
  char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
  json_decref(req);
  int rv = text ? mf_test_ws_send(c->ws, text, strlen(text), IO_MS) : -1;
  free(text);
  if (rv != 0) return NULL;
  for (;;) {
    json_t *m = mf_test_ws_recv(c->ws, IO_MS);
    if (!m) {
      fprintf(stderr, "churn: %s: no answer\n", method);
      return NULL;
    }
    if (json_integer_value(json_object_get(m, "id")) != id || !json_object_get(m, "ok")) {
      json_decref(m);
      continue;
    }
    json_t *d = NULL;
    if (json_is_true(json_object_get(m, "ok"))) {
      d = json_incref(json_object_get(m, "data"));
      if (!d) d = json_object();
    } else {
      char *t = json_dumps(m, JSON_COMPACT);
      fprintf(stderr, "churn: %s refused: %s\n", method, t ? t : "?");
      free(t);
    }
    json_decref(m);
    return d;
  }
}

static bool api_ok(churner_t *c, const char *method, json_t *data) {
  json_t *d = api_call(c, method, data);
  json_decref(d);
  return d != NULL;
}

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void churner_free(churner_t *c) {
  if (!c) return;
  mf_webrtc_peer_free(c->peer);
  if (c->ws) mf_test_ws_free(c->ws);
  json_decref(c->transport);
  free(c);
}

/* A subscriber joined, connected and resumed; NULL (printed) on failure. */
static churner_t *churner_join(const churn_job_t *job, mf_dtls_cert_t *cert,
                               mf_dtls_context_t *dtls) {
  churner_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->ws = mf_test_ws_dial("127.0.0.1", job->api_port, "", IO_MS);
  json_t *caps = NULL, *d = NULL;
  bool ok = c->ws && (d = api_call(c, "router.join", json_pack("{s:s}", "roomId", ROOM)));
  json_decref(d);
  if (ok && (d = api_call(c, "router.getRtpCapabilities", json_object())))
    caps = json_incref(json_object_get(d, "rtpCapabilities"));
  json_decref(d);
  ok = ok && caps && (c->transport = api_call(c, "router.createWebRtcTransport", json_object()));
  c->created_rt_ns = realtime_ns();
  const char *tid = json_string_value(json_object_get(c->transport, "id"));
  ok = ok && tid &&
       api_ok(c, "transport.connect",
              json_pack("{s:s, s:{s:s, s:[{s:s, s:s}]}}", "transportId", tid, "dtlsParameters",
                        "role", "client", "fingerprints", "algorithm", "sha-256", "value",
                        mf_dtls_cert_fingerprint(cert)));
  char cid[2][64] = {"", ""};
  const char *producers[2] = {job->pub.video_id, job->pub.audio_id};
  for (int k = 0; ok && k < 2; k++) {
    d = api_call(c, "transport.consume",
                 json_pack("{s:s, s:s, s:O, s:b}", "transportId", tid, "producerId",
                           producers[k], "rtpCapabilities", caps, "paused", 1));
    const char *id = json_string_value(json_object_get(d, "id"));
    ok = id != NULL;
    if (ok) snprintf(cid[k], sizeof cid[k], "%s", id);
    json_decref(d);
  }
  json_decref(caps);
  mf_webrtc_peer_remote_t r;
  ok = ok && mf_webrtc_peer_remote_from_json(c->transport, &r) == MF_OK &&
       mf_webrtc_peer_create(dtls, &r, mf_clock_now_ms(), &c->peer) == MF_OK;
  if (ok) { /* the kernel's receive time of every datagram: see the header comment */
    int on = 1;
    ok = setsockopt(mf_webrtc_peer_fd(c->peer), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0;
  }
  if (ok && mf_webrtc_peer_connect(c->peer, IO_MS) != MF_OK) {
    fprintf(stderr, "churn: ICE/DTLS failed\n");
    ok = false;
  }
  for (int k = 0; ok && k < 2; k++)
    ok = api_ok(c, "consumer.resume", json_pack("{s:s}", "consumerId", cid[k]));
  if (!ok) {
    churner_free(c);
    return NULL;
  }
  return c;
}

/* Everything queued on c's socket; the first RTP datagram's kernel time ends its join. */
static void churner_read(churn_job_t *job, churner_t *c, uint64_t now_ms) {
  uint8_t buf[PKT_CAP];
  char ctrl[CMSG_SPACE(sizeof(struct timespec))];
  for (;;) {
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl,
                        .msg_controllen = sizeof ctrl};
    ssize_t n = recvmsg(mf_webrtc_peer_fd(c->peer), &mh, MSG_DONTWAIT);
    if (n <= 0) return;
    uint64_t rx_ns = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
        struct timespec ts;
        memcpy(&ts, CMSG_DATA(cm), sizeof ts);
        rx_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
      }
    }
    size_t len = (size_t)n;
    if (mf_webrtc_peer_input(c->peer, buf, &len, now_ms) != MF_WEBRTC_PEER_IN_RTP) continue;
    c->rtp++;
    if (c->got_media) continue;
    c->got_media = true;
    if (!rx_ns) rx_ns = realtime_ns();
    mf_bench_hist_add(&job->latency,
                      rx_ns > c->created_rt_ns ? (rx_ns - c->created_rt_ns) / 1000 : 0);
  }
}

/* cut: closed at the end of the window before its own leave time (media stops then, so a
 * late joiner without media yet is not a failure). */
static void churner_leave(churn_job_t *job, churner_t *c, bool cut) {
  if (!c->got_media && !cut) job->no_media++;
  job->left++;
  churner_free(c);
}

static void *churn_main(void *arg) {
  churn_job_t *job = arg;
  mf_dtls_cert_t *cert = NULL;
  mf_dtls_context_t *dtls = NULL;
  if (mf_dtls_cert_generate(&cert) != MF_OK || mf_dtls_context_create(cert, &dtls) != MF_OK) {
    fprintf(stderr, "churn: no DTLS context\n");
    mf_dtls_cert_free(cert);
    job->failed = mf_bench_churn_total(&job->sched);
    return NULL;
  }
  size_t cap = (size_t)mf_bench_churn_max_alive(&job->sched) + 8, n = 0;
  churner_t **alive = calloc(cap, sizeof *alive);
  struct pollfd *pfd = calloc(cap, sizeof *pfd);
  job->scheduled = mf_bench_churn_total(&job->sched);
  uint64_t joins = 0, tick_ms = 0;
  double window_s = (double)(job->sched.end_ns - job->sched.start_ns) / 1e9;
  while (alive && pfd) {
    uint64_t now = mf_clock_now_ns();
    if (now >= job->sched.end_ns) break;
    /* leaves first: a slot frees before a join needs it */
    for (size_t i = 0; i < n;) {
      if (alive[i]->leave_ns <= now) {
        churner_leave(job, alive[i], false);
        alive[i] = alive[--n];
      } else {
        i++;
      }
    }
    if (joins < mf_bench_churn_due(&job->sched, now)) {
      double lag_ms = (double)(now - mf_bench_churn_join_at(&job->sched, joins)) / 1e6;
      if (lag_ms > job->max_lag_ms) job->max_lag_ms = lag_ms;
      uint64_t t0 = mf_clock_now_ns();
      churner_t *c = n < cap ? churner_join(job, cert, dtls) : NULL;
      uint64_t t1 = mf_clock_now_ns();
      if (c) {
        c->leave_ns = mf_bench_churn_leave_at(&job->sched, joins);
        alive[n++] = c;
        job->made++;
        mf_bench_hist_add(&job->setup, (t1 - t0) / 1000);
        if (n > job->max_alive) job->max_alive = n;
      } else {
        job->failed++;
      }
      joins++;
      /* no `continue` even when behind schedule: the sockets are read below (poll with a
       * zero timeout then), or churners that joined would starve until they leave */
    }
    uint64_t next = joins < job->scheduled ? mf_bench_churn_join_at(&job->sched, joins)
                                           : job->sched.end_ns;
    for (size_t i = 0; i < n; i++)
      if (alive[i]->leave_ns < next) next = alive[i]->leave_ns;
    uint64_t now_ms = now / 1000000;
    if (now_ms >= tick_ms) {
      tick_ms = now_ms + TICK_MS;
      for (size_t i = 0; i < n; i++) mf_webrtc_peer_tick(alive[i]->peer, now_ms);
    }
    if (tick_ms * 1000000 < next) next = tick_ms * 1000000;
    for (size_t i = 0; i < n; i++)
      pfd[i] = (struct pollfd){.fd = mf_webrtc_peer_fd(alive[i]->peer), .events = POLLIN};
    now = mf_clock_now_ns();
    int wait_ms = next > now ? (int)((next - now + 999999) / 1000000) : 0;
    int r = poll(pfd, n, wait_ms);
    now_ms = mf_clock_now_ms();
    for (size_t i = 0; r > 0 && i < n; i++)
      if (pfd[i].revents & POLLIN) churner_read(job, alive[i], now_ms);
  }
  job->made_in_window_s = window_s;
  job->not_attempted = job->scheduled > joins ? job->scheduled - joins : 0;
  for (size_t i = 0; i < n; i++) churner_leave(job, alive[i], true);
  free(alive);
  free(pfd);
  mf_dtls_context_free(dtls);
  mf_dtls_cert_free(cert);
  return NULL;
}

/* ---- the node ---- */

/* ---- the scenario ---- */

/* a dropped session's objects close at once: a leaver's transport must not linger */
static const char *const churn_node_args[] = {"--api-grace-ms", "0", NULL};

static void usage_churn(FILE *f) {
  fprintf(f, "usage: mafalda-bench churn [--node PATH] [--rate R] [--stay S] [--subscribers L] "
             "[--seconds S] [--warmup-s W] [--bitrate-kbps B] [--fps F] [--keyframe-s K] "
             "[--json] [--assert-no-loss]\n");
}

static double us_ms(uint64_t us) { return (double)us / 1000; }

static void print_text(const churn_opts_t *o, const churn_job_t *j, const mf_gen_result_t *r,
                       long rss0, long rss_end) {
  printf("churn: 1 publisher (VP8-shaped %d kbit/s + Opus-shaped) -> %d long-lived subscribers "
         "+ %d joins/s staying %d s each, mafalda-node 1 worker, loopback, %d s of joins after "
         "%d s warm-up\n",
         o->bitrate_kbps, o->subscribers, o->rate, o->stay_s, o->seconds, o->warmup_s);
  printf("  %-44s %10llu\n", "joins scheduled", (unsigned long long)j->scheduled);
  printf("  %-44s %10llu\n", "joins made (media resumed)", (unsigned long long)j->made);
  printf("  %-44s %10llu\n", "joins failed", (unsigned long long)j->failed);
  printf("  %-44s %10llu\n", "joins not attempted (window over)",
         (unsigned long long)j->not_attempted);
  printf("  %-44s %10.2f\n", "joins/s achieved", (double)j->made / j->made_in_window_s);
  printf("  %-44s %10.1f\n", "max lag behind the schedule (ms)", j->max_lag_ms);
  printf("  %-44s %10llu\n", "most churn subscribers at once",
         (unsigned long long)j->max_alive);
  printf("  %-44s %10.2f\n", "join setup p50 (ms, dial to resumed)",
         us_ms(mf_bench_hist_percentile(&j->setup, 50)));
  printf("  %-44s %10.2f\n", "join latency p50 (ms, transport -> 1st RTP)",
         us_ms(mf_bench_hist_percentile(&j->latency, 50)));
  printf("  %-44s %10.2f\n", "join latency p99 (ms)",
         us_ms(mf_bench_hist_percentile(&j->latency, 99)));
  printf("  %-44s %10.2f\n", "join latency max (ms)", us_ms(j->latency.max_us));
  printf("  %-44s %10llu\n", "churn subscribers that got no media",
         (unsigned long long)j->no_media);
  printf("  %-44s %10.3f\n", "long-lived subscribers: loss %", 100 * r->loss_ratio);
  printf("  %-44s %10llu\n", "long-lived subscribers: packets lost", (unsigned long long)r->lost);
  printf("  %-44s %10.2f\n", "long-lived subscribers: latency p99 (ms)", us_ms(r->p99_us));
  printf("  %-44s %10.1f\n", "SFU CPU % over the window", 100 * r->sfu_cpu_s / r->window_s);
  printf("  %-44s %10ld\n", "node RSS before the churn (kB)", rss0);
  printf("  %-44s %10ld\n", "node RSS at the end of the window (kB)", r->sfu_rss_kb);
  printf("  %-44s %10ld\n", "node RSS after every churner left (kB)", rss_end);
}

static void print_json(const churn_opts_t *o, const churn_job_t *j, const mf_gen_result_t *r,
                       long rss0, long rss_end) {
  json_t *root = json_pack(
      "{s:s, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
      "s:f, s:I, s:I, s:f, s:I, s:I, s:I}",
      "scenario", "churn", "rate", o->rate, "stay_s", o->stay_s, "long_lived", o->subscribers,
      "seconds", o->seconds, "joins_scheduled", (json_int_t)j->scheduled, "joins_made",
      (json_int_t)j->made, "joins_failed", (json_int_t)j->failed, "joins_per_s",
      (double)j->made / j->made_in_window_s, "max_lag_ms", j->max_lag_ms, "join_latency_p50_us",
      (json_int_t)mf_bench_hist_percentile(&j->latency, 50), "join_latency_p99_us",
      (json_int_t)mf_bench_hist_percentile(&j->latency, 99), "join_latency_max_us",
      (json_int_t)j->latency.max_us, "join_setup_p50_us",
      (json_int_t)mf_bench_hist_percentile(&j->setup, 50), "no_media", (json_int_t)j->no_media,
      "max_alive", (json_int_t)j->max_alive, "long_lived_lost", (json_int_t)r->lost,
      "long_lived_loss_ratio", r->loss_ratio, "long_lived_p99_us", (json_int_t)r->p99_us,
      "long_lived_received", (json_int_t)r->received, "sfu_cpu_s", r->sfu_cpu_s, "rss_start_kb",
      (json_int_t)rss0, "rss_window_end_kb", (json_int_t)r->sfu_rss_kb, "rss_end_kb",
      (json_int_t)rss_end);
  json_object_set_new(root, "joins_not_attempted", json_integer((json_int_t)j->not_attempted));
  json_object_set_new(root, "join_latency_samples", json_integer((json_int_t)j->latency.total));
  char *t = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
  if (t) printf("%s\n", t);
  free(t);
  json_decref(root);
}

int mf_bench_churn(int argc, char **argv) {
  churn_opts_t o = {.node_bin = MF_BENCH_NODE, .rate = 5, .stay_s = 2, .subscribers = 4,
                    .seconds = 10, .warmup_s = 1, .bitrate_kbps = 600, .fps = 30,
                    .keyframe_s = 2};
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool used = true;
    if (strcmp(a, "--json") == 0) {
      o.json = true;
      used = false;
    } else if (strcmp(a, "--assert-no-loss") == 0) {
      o.assert_no_loss = true;
      used = false;
    } else if (strcmp(a, "--node") == 0 && v) {
      o.node_bin = v;
    } else if (!(v && ((strcmp(a, "--rate") == 0 && mf_bench_parse_int(v, 1, 1000, &o.rate)) ||
                       (strcmp(a, "--stay") == 0 && mf_bench_parse_int(v, 1, 3600, &o.stay_s)) ||
                       (strcmp(a, "--subscribers") == 0 &&
                        mf_bench_parse_int(v, 1, 1000, &o.subscribers)) ||
                       (strcmp(a, "--seconds") == 0 && mf_bench_parse_int(v, 1, 3600, &o.seconds)) ||
                       (strcmp(a, "--warmup-s") == 0 && mf_bench_parse_int(v, 0, 60, &o.warmup_s)) ||
                       (strcmp(a, "--bitrate-kbps") == 0 &&
                        mf_bench_parse_int(v, 30, 10000, &o.bitrate_kbps)) ||
                       (strcmp(a, "--fps") == 0 && mf_bench_parse_int(v, 1, 120, &o.fps)) ||
                       (strcmp(a, "--keyframe-s") == 0 &&
                        mf_bench_parse_int(v, 0, 60, &o.keyframe_s))))) {
      fprintf(stderr, "mafalda-bench churn: bad option '%s'\n", a);
      usage_churn(stderr);
      return 2;
    }
    if (used) i++;
  }
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  mf_gen_node_t node = {0};
  churn_job_t *job = calloc(1, sizeof *job);
  mf_gen_t *g = NULL;
  mf_gen_result_t r = {0};
  long rss0 = 0, rss_end = 0;
  bool ok = job && mf_gen_node_start(&node, o.node_bin, "churn", 90 + o.warmup_s + o.seconds, churn_node_args);
  mf_gen_config_t cfg = {.api_port = node.api_port,
                         .video = {(uint32_t)o.bitrate_kbps * 1000, (uint32_t)o.fps,
                                   (uint32_t)o.keyframe_s * 1000},
                         .audio_bps = 32000};
  size_t pub = 0;
  ok = ok && mf_gen_create(&cfg, &g) == MF_OK && mf_gen_add_publisher(g, ROOM, &pub) == MF_OK;
  for (int i = 0; ok && i < o.subscribers; i++) ok = mf_gen_add_subscriber(g, ROOM, &pub, 1) == MF_OK;
  if (ok) {
    mf_bench_hist_init(&job->latency);
    mf_bench_hist_init(&job->setup);
    job->api_port = node.api_port;
    ok = mf_gen_publisher_ids(g, pub, &job->pub) == MF_OK;
    uint64_t start = mf_clock_now_ns() + (uint64_t)o.warmup_s * 1000000000u;
    ok = ok && mf_bench_churn_init(&job->sched, start, start + (uint64_t)o.seconds * 1000000000u,
                                   o.rate, (uint64_t)o.stay_s * 1000000000u);
    rss0 = mf_gen_proc_rss_kb(node.pid);
  }
  pthread_t th;
  bool started = ok && pthread_create(&th, NULL, churn_main, job) == 0;
  ok = started && mf_gen_run(g, o.warmup_s, o.seconds, node.pid, &r) == MF_OK;
  if (started) pthread_join(th, NULL);
  mf_gen_free(g);
  if (ok) { /* the node closes dropped sessions at once (--api-grace-ms 0) */
    mf_test_sleep_ms(500);
    rss_end = mf_gen_proc_rss_kb(node.pid);
  }
  int rc = 0;
  if (!ok) {
    fprintf(stderr, "mafalda-bench churn: setup failed (node log %s/node.log; MF_BENCH_KEEP=1 "
                    "keeps it)\n", node.dir);
    rc = 1;
  } else if (o.json) {
    print_json(&o, job, &r, rss0, rss_end);
  } else {
    print_text(&o, job, &r, rss0, rss_end);
  }
  if (ok && o.assert_no_loss && (r.lost > 0 || r.received == 0 || job->made == 0 ||
                                 job->failed > 0 || job->no_media > 0)) {
    fprintf(stderr, "mafalda-bench churn: long-lived packets lost, or churn joins failed or "
                    "got no media\n");
    rc = 3;
  }
  mf_gen_node_stop(&node);
  free(job);
  return rc;
}
