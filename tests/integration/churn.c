/* Issue 12 churn: a real mafalda-node (2 workers, standalone) gets N WebRTC transports
 * created and closed through the public API, in waves of concurrent WebSocket sessions:
 *  - each wave dials C sessions; each joins one of ROOMS rooms (reused across waves, as
 *    real rooms are), creates two transports (the second with SCTP and a data producer on
 *    every other session), with the requests of all C sessions in flight together;
 *  - every M-th session is a real peer: transport.connect, produce (VP8), ICE check with
 *    USE-CANDIDATE (libnice's STUN library), DTLS client handshake (this repo's mf_dtls,
 *    its own certificate; both in tests/support/webrtc_peer.c), 50 SRTP packets;
 *    producer.getStats must count them; it also consumes its own producer on its second
 *    transport;
 *  - even sessions close their transports with transport.close, odd ones just drop the
 *    WebSocket (the close cascade; --api-grace-ms 0); then /metrics must show 0 transports,
 *    producers, consumers before the next wave.
 * The node's VmRSS (/proc/<pid>/status) is read after the warm-up waves (the first fifth,
 * everything closed), after each wave's creation (peak) and at the end (everything closed).
 * With --rss the end figure must be within 5% of the start plus RSS_SLACK_KB (see below).
 * Finally SIGTERM: the node must exit 0, which under ASan means LeakSanitizer found nothing
 * (a leak report makes the exit status non-zero), and its log must hold no sanitizer
 * report. A slow leak of reachable memory (which LeakSanitizer cannot see) shows only in
 * the RSS: that is how usrsctp's deregistered addresses were found (docs/reliability.md).
 * Usage: churn path/to/mafalda-node <transports> [--rss] [--sessions C] [--media-every M]
 *              [--warmup WAVES] [--verbose]   (--verbose: RSS after every wave)
 *              [--deadline S]   (S: the node's own kill deadline, below the ctest TIMEOUT)
 *              [--attach PORT PID]   (drive a node started by hand, e.g. under valgrind, with
 *              its API on 127.0.0.1:PORT and dev mode; it is left running at the end) */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "node/dtls.h"
#include "node/rtp/rtp.h"
#include "node/srtp.h"
#include "tests/support/http_client.h"
#include "tests/support/test_proc.h"
#include "tests/support/webrtc_peer.h"
#include "tests/support/ws_client.h"

#define ROOMS 10
#define TRANSPORTS_PER_SESSION 2
#define IO_MS 10000
#define RTP_PACKETS 50
/* glibc keeps freed chunks in its arenas (one per thread that allocated: main, 2 workers,
 * nng's pool) and returns only whole free pages at the top of a heap, so the same load
 * can settle a few hundred KiB apart from one wave to the next without anything leaking.
 * 1 MiB on top of 5% covers that; a leak of a few hundred bytes per transport shows up
 * as megabytes over 10,000 transports. */
#define RSS_SLACK_KB 1024

static const char *node_bin;
static char dir[64];
static pid_t wrapper;
static pid_t node_pid;
static uint16_t api_port;
static char wrap_deadline[16] = "110"; /* --deadline: seconds, below the ctest TIMEOUT */

static void fail_exit(void);

#define CHECK(cond, ...) MF_TEST_CHECK(fail_exit, cond, __VA_ARGS__)

static void fail_exit(void) {
  mf_test_dump_logs(dir, 60);
  mf_test_abandon(dir, &wrapper, 1);
  exit(1);
}

/* ---------------------------------------------------------------- node, HTTP, RSS */

static long rss_kb(void) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)node_pid);
  FILE *f = fopen(path, "r");
  CHECK(f, "open %s: %s", path, strerror(errno));
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  fclose(f);
  CHECK(kb > 0, "no VmRSS in %s", path);
  return kb;
}

/* GET path from the node: the body of a 200 (free it), else NULL. */
static char *http_get(const char *path) { return test_http_get_body("127.0.0.1", api_port, path, 3000); }

typedef struct {
  long long transports, producers, consumers;
} counts_t;

static counts_t metrics(void) {
  char *m = http_get("/metrics");
  CHECK(m, "GET /metrics failed");
  counts_t c = {test_metric_sum(m, "mafalda_worker_transports"),
                test_metric_sum(m, "mafalda_worker_producers"),
                test_metric_sum(m, "mafalda_worker_consumers")};
  free(m);
  return c;
}

/* The closes run on the workers after the answers (or after the WebSocket went): poll. */
static void wait_all_closed(const char *when) {
  double deadline = mf_test_now_s() + 20;
  counts_t c;
  for (;;) {
    c = metrics();
    if ((c.transports == 0 && c.producers == 0 && c.consumers == 0) || mf_test_now_s() > deadline)
      break;
    mf_test_sleep_ms(20);
  }
  CHECK(c.transports == 0 && c.producers == 0 && c.consumers == 0,
        "%s: /metrics still counts %lld transports, %lld producers, %lld consumers", when,
        c.transports, c.producers, c.consumers);
}

static void start_node(void) {
  char api[32], log[96];
  api_port = (uint16_t)mf_test_free_port();
  snprintf(api, sizeof api, "127.0.0.1:%u", api_port);
  snprintf(log, sizeof log, "%s/node.log", dir);
  char *argv[] = {"timeout", "-s", "KILL", wrap_deadline, (char *)node_bin, "--workers", "2",
                  "--pin-workers=false", "--rtc-listen-ip", "127.0.0.1", "--announced-ip",
                  "127.0.0.1", "--rtc-port-base", "0", "--controller=false", "--api-listen", api,
                  "--api-grace-ms", "0", "--log-level", "warn", NULL};
  int rv = mf_test_spawn_logged(argv, log, &wrapper);
  CHECK(rv == 0, "spawn: %s", strerror(rv));
  node_pid = mf_test_wait_child_of(wrapper, 5000);
  CHECK(node_pid > 0, "the node did not start");
  double deadline = mf_test_now_s() + 30;
  char *h = NULL;
  while (!(h = http_get("/healthz")) && mf_test_now_s() < deadline) mf_test_sleep_ms(50);
  CHECK(h, "the node's API did not come up");
  free(h);
}

/* ---------------------------------------------------------------- API sessions */

typedef struct {
  nng_stream *ws;
  int next_id;
  bool media, sctp;
  json_t *caps;                                  /* router.join's rtpCapabilities */
  json_t *transport[TRANSPORTS_PER_SESSION];     /* createWebRtcTransport answers */
  char tid[TRANSPORTS_PER_SESSION][64];
} session_t;

static int send_req(session_t *s, const char *method, json_t *data) {
  int id = ++s->next_id;
  CHECK(mf_test_api_send(s->ws, id, method, data, IO_MS) == 0, "send %s", method);
  return id;
}

/* The answer to request id (notifications in between are dropped): its data, referenced. */
static json_t *recv_ok(session_t *s, int id, const char *what) {
  json_t *m = mf_test_api_answer(s->ws, id, IO_MS, NULL);
  CHECK(m, "%s: no answer", what);
  if (!json_is_true(json_object_get(m, "ok"))) {
    char *t = json_dumps(m, JSON_COMPACT);
    fprintf(stderr, "%s: %s\n", what, t);
    free(t);
    json_decref(m);
    CHECK(false, "%s failed", what);
  }
  json_t *d = json_incref(json_object_get(m, "data"));
  json_decref(m);
  return d;
}

static json_t *call_ok(session_t *s, const char *method, json_t *data) {
  return recv_ok(s, send_req(s, method, data), method);
}

static const char *const vp8_params =
    "{\"mid\":\"0\",\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
    "\"rtcpFeedback\":[{\"type\":\"nack\"},{\"type\":\"nack\",\"parameter\":\"pli\"}]}],"
    "\"headerExtensions\":[],\"encodings\":[{\"ssrc\":1111}],\"rtcp\":{\"cname\":\"churn\"}}";

/* ---------------------------------------------------------------- the media peer */

/* ICE (checks with USE-CANDIDATE), DTLS as client (tests/support/webrtc_peer.h), then
 * RTP_PACKETS SRTP packets on ssrc 1111 (what the producer announced). */
static void peer_run(mf_dtls_context_t *ctx, json_t *t) {
  mf_webrtc_peer_remote_t remote;
  CHECK(mf_webrtc_peer_remote_from_json(t, &remote) == MF_OK,
        "transport answer lacks ICE/DTLS parameters");
  mf_webrtc_peer_t *p = NULL;
  CHECK(mf_webrtc_peer_create(ctx, &remote, (uint64_t)(mf_test_now_s() * 1000), &p) == MF_OK,
        "peer create");
  mf_err_t e = mf_webrtc_peer_connect(p, 10000);
  CHECK(e == MF_OK, "ICE/DTLS with %s:%u: %s (%llu STUN checks, %llu answered)", remote.ip,
        remote.port, e == MF_ERR_TIMEOUT ? "timed out" : "failed",
        (unsigned long long)mf_webrtc_peer_counters(p)->stun_sent,
        (unsigned long long)mf_webrtc_peer_counters(p)->stun_ok);
  /* VP8 keyframes: descriptor S=1 and the start code */
  static const uint8_t payload[] = {0x10, 0x50, 0x01, 0x00, 0x9d, 0x01,
                                    0x2a, 0x80, 0x02, 0xe0, 0x01};
  uint8_t buf[256];
  for (int n = 0; n < RTP_PACKETS; n++) {
    mf_rtp_header_t h = {.marker = true, .payload_type = 96, .sequence = (uint16_t)(100 + n),
                         .timestamp = 3000u * (uint32_t)n, .ssrc = 1111};
    size_t len = 0;
    CHECK(mf_rtp_write_packet(buf, sizeof buf, &h, payload, sizeof payload, 0, &len) == MF_OK,
          "rtp");
    CHECK(mf_webrtc_peer_protect_rtp(p, buf, &len, sizeof buf) == MF_OK, "srtp protect");
    CHECK(mf_webrtc_peer_send(p, buf, len) == MF_OK, "send");
  }
  /* no close_notify: that would close the transport (and its producer) before the stats
   * are read; the API closes it like the others */
  mf_webrtc_peer_free(p);
}

/* ---------------------------------------------------------------- one wave */

typedef struct {
  size_t sessions, media_every;
  unsigned long long done_sessions; /* over all waves: picks which sessions are peers */
  unsigned long long transports, peers, data_producers;
  mf_dtls_context_t *ctx;
  const char *client_fp;
  long rss_peak;
} churn_t;

static void wave(churn_t *c, int number) {
  session_t *s = calloc(c->sessions, sizeof *s);
  CHECK(s, "out of memory");
  for (size_t i = 0; i < c->sessions; i++) {
    s[i].ws = mf_test_ws_dial("127.0.0.1", api_port, "", IO_MS);
    CHECK(s[i].ws, "wave %d: WebSocket %zu did not connect", number, i);
    unsigned long long global = c->done_sessions + i;
    s[i].media = c->media_every && global % c->media_every == 0;
    s[i].sctp = i % 2 == 1;
  }
  /* every request of a step is in flight on all sessions before any answer is read */
  int *ids = calloc(c->sessions * TRANSPORTS_PER_SESSION, sizeof *ids);
  CHECK(ids, "out of memory");
  for (size_t i = 0; i < c->sessions; i++) {
    char room[32];
    snprintf(room, sizeof room, "churn-%zu", i % ROOMS);
    ids[i] = send_req(&s[i], "router.join", json_pack("{s:s}", "roomId", room));
  }
  for (size_t i = 0; i < c->sessions; i++) {
    json_t *d = recv_ok(&s[i], ids[i], "router.join");
    s[i].caps = json_incref(json_object_get(d, "rtpCapabilities"));
    json_decref(d);
  }
  for (size_t i = 0; i < c->sessions; i++)
    for (int t = 0; t < TRANSPORTS_PER_SESSION; t++)
      ids[i * TRANSPORTS_PER_SESSION + t] =
          send_req(&s[i], "router.createWebRtcTransport",
                   t == 1 && s[i].sctp ? json_pack("{s:b}", "enableSctp", 1) : json_object());
  for (size_t i = 0; i < c->sessions; i++)
    for (int t = 0; t < TRANSPORTS_PER_SESSION; t++) {
      json_t *d = recv_ok(&s[i], ids[i * TRANSPORTS_PER_SESSION + t], "createWebRtcTransport");
      snprintf(s[i].tid[t], sizeof s[i].tid[t], "%s", json_string_value(json_object_get(d, "id")));
      CHECK(s[i].tid[t][0], "transport without id");
      s[i].transport[t] = d;
      c->transports++;
    }
  for (size_t i = 0; i < c->sessions; i++) {
    if (!s[i].sctp) continue;
    json_decref(call_ok(&s[i], "transport.produceData",
                        json_pack("{s:s, s:{s:i}, s:s}", "transportId", s[i].tid[1],
                                  "sctpStreamParameters", "streamId", 1, "label", "churn")));
    c->data_producers++;
  }

  /* the media sample */
  for (size_t i = 0; i < c->sessions; i++) {
    if (!s[i].media) continue;
    json_decref(call_ok(&s[i], "transport.connect",
                        json_pack("{s:s, s:{s:s, s:[{s:s, s:s}]}}", "transportId", s[i].tid[0],
                                  "dtlsParameters", "role", "client", "fingerprints", "algorithm",
                                  "sha-256", "value", c->client_fp)));
    json_t *d = call_ok(&s[i], "transport.produce",
                        json_pack("{s:s, s:s, s:o}", "transportId", s[i].tid[0], "kind", "video",
                                  "rtpParameters", json_loads(vp8_params, 0, NULL)));
    char producer[64];
    snprintf(producer, sizeof producer, "%s", json_string_value(json_object_get(d, "id")));
    json_decref(d);
    json_decref(call_ok(&s[i], "transport.consume",
                        json_pack("{s:s, s:s, s:O}", "transportId", s[i].tid[1], "producerId",
                                  producer, "rtpCapabilities", s[i].caps)));
    peer_run(c->ctx, s[i].transport[0]);
    long long packets = 0;
    for (int tries = 0; tries < 100 && packets < RTP_PACKETS; tries++) {
      if (tries) mf_test_sleep_ms(20);
      d = call_ok(&s[i], "producer.getStats", json_pack("{s:s}", "producerId", producer));
      packets = json_integer_value(
          json_object_get(json_array_get(json_object_get(d, "stats"), 0), "packetCount"));
      json_decref(d);
    }
    CHECK(packets == RTP_PACKETS, "wave %d: producer counted %lld of %d RTP packets", number,
          packets, RTP_PACKETS);
    c->peers++;
  }

  long rss = rss_kb();
  if (rss > c->rss_peak) c->rss_peak = rss;
  counts_t m = metrics();
  CHECK(m.transports == (long long)(c->sessions * TRANSPORTS_PER_SESSION),
        "wave %d: /metrics counts %lld transports, %zu open", number, m.transports,
        c->sessions * TRANSPORTS_PER_SESSION);

  /* even sessions close explicitly, odd ones leave it to the WebSocket close */
  for (size_t i = 0; i < c->sessions; i += 2)
    for (int t = 0; t < TRANSPORTS_PER_SESSION; t++)
      ids[i * TRANSPORTS_PER_SESSION + t] =
          send_req(&s[i], "transport.close", json_pack("{s:s}", "transportId", s[i].tid[t]));
  for (size_t i = 0; i < c->sessions; i += 2)
    for (int t = 0; t < TRANSPORTS_PER_SESSION; t++)
      json_decref(recv_ok(&s[i], ids[i * TRANSPORTS_PER_SESSION + t], "transport.close"));
  for (size_t i = 0; i < c->sessions; i++) {
    mf_test_ws_free(s[i].ws);
    json_decref(s[i].caps);
    for (int t = 0; t < TRANSPORTS_PER_SESSION; t++) json_decref(s[i].transport[t]);
  }
  free(ids);
  free(s);
  c->done_sessions += c->sessions;
  char when[32];
  snprintf(when, sizeof when, "after wave %d", number);
  wait_all_closed(when);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s mafalda-node <transports> [--rss] [--sessions C] [--media-every M] "
            "[--warmup WAVES] [--verbose] [--deadline S] [--attach PORT PID]\n",
            argv[0]);
    return 2;
  }
  node_bin = argv[1];
  long total = strtol(argv[2], NULL, 10);
  bool check_rss = false;
  pid_t attach = 0;
  int warmup = 0;
  bool verbose = false;
  churn_t c = {.sessions = 100, .media_every = 50};
  for (int i = 3; i < argc; i++) {
    if (strcmp(argv[i], "--rss") == 0)
      check_rss = true;
    else if (strcmp(argv[i], "--verbose") == 0)
      verbose = true;
    else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
      warmup = (int)strtol(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--sessions") == 0 && i + 1 < argc)
      c.sessions = (size_t)strtoul(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--attach") == 0 && i + 2 < argc) {
      api_port = (uint16_t)strtoul(argv[++i], NULL, 10);
      attach = (pid_t)strtol(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--deadline") == 0 && i + 1 < argc)
      snprintf(wrap_deadline, sizeof wrap_deadline, "%s", argv[++i]);
    else if (strcmp(argv[i], "--media-every") == 0 && i + 1 < argc)
      c.media_every = (size_t)strtoul(argv[++i], NULL, 10);
    else
      return fprintf(stderr, "unknown argument %s\n", argv[i]), 2;
  }
  long per_wave = (long)(c.sessions * TRANSPORTS_PER_SESSION);
  if (c.sessions < 2 || total < 2 * per_wave) {
    fprintf(stderr, "need at least 2 sessions and 2 waves (%ld transports)\n", 2 * per_wave);
    return 2;
  }
  int waves = (int)(total / per_wave);
  signal(SIGPIPE, SIG_IGN);
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  snprintf(dir, sizeof dir, "/tmp/mf-churn-XXXXXX");
  CHECK(mkdtemp(dir), "mkdtemp");
  mf_dtls_cert_t *cert = NULL;
  CHECK(mf_srtp_library_init() == MF_OK && mf_dtls_cert_generate(&cert) == MF_OK &&
            mf_dtls_context_create(cert, &c.ctx) == MF_OK,
        "client DTLS/SRTP setup");
  c.client_fp = mf_dtls_cert_fingerprint(cert);

  if (attach)
    node_pid = attach;
  else
    start_node();
  long rss_boot = rss_kb();
  double t0 = mf_test_now_s();
  /* warm-up: malloc arenas (one per allocating thread), pools and hash tables grow to the
   * working size of this load; measured here, the RSS settles within the first fifth of
   * the run and then moves by a few hundred KiB either way */
  if (warmup <= 0) warmup = waves / 5 > 0 ? waves / 5 : 1;
  CHECK(warmup < waves, "--warmup %d leaves no wave to measure (%d waves)", warmup, waves);
  for (int w = 0; w < warmup; w++) wave(&c, w);
  long rss_start = rss_kb();
  double t1 = mf_test_now_s();
  for (int w = warmup; w < waves; w++) {
    wave(&c, w);
    if (verbose || (w + 1) % 10 == 0)
      printf("churn: wave %d/%d done, %llu transports, RSS %ld kB\n", w + 1, waves, c.transports,
             rss_kb());
  }
  double t2 = mf_test_now_s();
  counts_t end = metrics();
  long rss_end = rss_kb();
  double rate_all = (double)c.transports / (t2 - t0);
  double rate_after =
      (double)(c.transports - (unsigned long long)per_wave * (unsigned long long)warmup) /
      (t2 - t1);
  printf("churn: %llu transports (%d waves of %zu sessions x %d), %llu media peers (ICE+DTLS+%d "
         "SRTP packets each), %llu data producers in %.1f s: %.0f transports/s (%.0f after the "
         "warm-up)\n",
         c.transports, waves, c.sessions, TRANSPORTS_PER_SESSION, c.peers, RTP_PACKETS,
         c.data_producers, t2 - t0, rate_all, rate_after);
  printf("churn: node RSS boot %ld kB, start (after %d warm-up waves) %ld kB, peak %ld kB, end "
         "%ld kB (%+.2f%%); /metrics at the end: %lld transports, %lld producers, %lld "
         "consumers\n",
         rss_boot, warmup, rss_start, c.rss_peak, rss_end,
         100.0 * (double)(rss_end - rss_start) / (double)rss_start,
         end.transports, end.producers, end.consumers);
  fflush(stdout);
  CHECK(end.transports == 0 && end.producers == 0 && end.consumers == 0, "objects left");
  if (check_rss)
    CHECK(rss_end <= rss_start + rss_start / 20 + RSS_SLACK_KB,
          "RSS grew from %ld to %ld kB (limit 5%% + %d kB)", rss_start, rss_end, RSS_SLACK_KB);

  /* SIGTERM: exit 0 (under ASan, LeakSanitizer runs at exit and fails the status) */
  if (attach) { /* left running: e.g. for a heap snapshot before its own shutdown frees */
    mf_dtls_context_free(c.ctx);
    mf_dtls_cert_free(cert);
    return 0;
  }
  CHECK(kill(node_pid, SIGTERM) == 0, "kill: %s", strerror(errno));
  int status = mf_test_wait_status(wrapper);
  wrapper = 0;
  char cmd[160];
  snprintf(cmd, sizeof cmd,
           "grep -q 'LeakSanitizer\\|ERROR: AddressSanitizer\\|runtime error' %s/node.log", dir);
  bool sanitizer_report = system(cmd) == 0;
  if (status != 0 || sanitizer_report) {
    snprintf(cmd, sizeof cmd, "tail -n 80 %s/node.log", dir);
    if (system(cmd) != 0) fprintf(stderr, "(no log)\n");
  }
  CHECK(status == 0 && !sanitizer_report, "the node exited with status %d%s", status,
        sanitizer_report ? " and a sanitizer report" : "");
  printf("churn: the node exited 0 after SIGTERM%s\n",
         check_rss ? "" : " with no sanitizer report (under ASan: LeakSanitizer clean)");
  mf_dtls_context_free(c.ctx);
  mf_dtls_cert_free(cert);
  nng_fini();
  if (!getenv("MF_TEST_KEEP")) mf_test_remove_dir(dir);
  return 0;
}
