/* fanout: one publisher -> N subscribers on a mafalda-node of its own (1 worker, loopback,
 * standalone, under `timeout -s KILL`), through the load generator (gen.h). With --search,
 * N grows (doubling from --subscribers) on a fresh node each time until loss > 1 % or
 * latency p99 > 100 ms (or --max-subscribers), and the largest N that passed is reported.
 * room: the same with N peers that each publish and consume the N - 1 others (N x N; each
 * peer is a publishing and a subscribing session of the generator). */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/bench/bench.h"
#include "tests/bench/gen.h"
#include "tests/support/test_proc.h"
#include "tests/support/ws_client.h"

#ifndef MF_BENCH_NODE
#define MF_BENCH_NODE "mafalda-node"
#endif

#define PASS_LOSS 0.01
#define PASS_P99_US 100000

typedef struct {
  const char *node_bin;
  int subscribers, max_subscribers, seconds, bitrate_kbps, fps, keyframe_s, warmup_s;
  bool json, search, room;
  bool assert_no_loss; /* the ctest smoke: exit 3 unless every run saw 0 packets lost */
} fanout_opts_t;

typedef struct {
  char dir[64];
  pid_t wrapper, pid;
  uint16_t api_port;
} node_t;

static void node_stop(node_t *n) {
  if (n->wrapper > 0) {
    if (n->pid > 0) kill(n->pid, SIGTERM);
    for (int i = 0; i < 100 && waitpid(n->wrapper, NULL, WNOHANG) == 0; i++) mf_test_sleep_ms(20);
    mf_test_stop_wrapped(&n->wrapper, 1);
    n->wrapper = 0;
  }
  if (n->dir[0] && !getenv("MF_BENCH_KEEP")) mf_test_remove_dir(n->dir);
  n->dir[0] = '\0';
}

static bool node_start(node_t *n, const char *bin, int deadline_s) {
  memset(n, 0, sizeof *n);
  snprintf(n->dir, sizeof n->dir, "/tmp/mf-bench-fanout-XXXXXX");
  if (!mkdtemp(n->dir)) {
    perror("mkdtemp");
    n->dir[0] = '\0';
    return false;
  }
  char api[32], log[128], deadline[16];
  n->api_port = (uint16_t)mf_test_free_port();
  snprintf(api, sizeof api, "127.0.0.1:%u", n->api_port);
  snprintf(log, sizeof log, "%s/node.log", n->dir);
  snprintf(deadline, sizeof deadline, "%d", deadline_s);
  char *argv[] = {"timeout", "-s", "KILL", deadline, (char *)bin, "--workers", "1",
                  "--pin-workers=false", "--rtc-listen-ip", "127.0.0.1", "--announced-ip",
                  "127.0.0.1", "--rtc-port-base", "0", "--controller=false", "--api-listen", api,
                  "--log-level", "warn", NULL};
  int rv = mf_test_spawn_logged(argv, log, &n->wrapper);
  if (rv != 0) {
    fprintf(stderr, "mafalda-bench fanout: cannot start %s: %s\n", bin, strerror(rv));
    return false;
  }
  n->pid = mf_test_wait_child_of(n->wrapper, 5000);
  if (n->pid <= 0) {
    fprintf(stderr, "mafalda-bench fanout: %s did not start (log %s)\n", bin, log);
    return false;
  }
  double until = mf_test_now_s() + 30;
  while (mf_test_now_s() < until) {
    nng_stream *ws = mf_test_ws_dial("127.0.0.1", n->api_port, "", 500);
    if (ws) {
      mf_test_ws_free(ws);
      return true;
    }
    mf_test_sleep_ms(50);
  }
  fprintf(stderr, "mafalda-bench fanout: the node's API did not come up (log %s)\n", log);
  return false;
}

typedef struct {
  int n;
  bool ok;
  long rss0_kb;
  mf_gen_result_t r;
} run_t;

static bool passed(const run_t *x) {
  return x->ok && x->r.loss_ratio <= PASS_LOSS && x->r.p99_us <= PASS_P99_US;
}

static run_t run_one(const fanout_opts_t *o, int n) {
  run_t x = {.n = n};
  node_t node;
  int deadline = 60 + o->warmup_s + o->seconds + n / 2;
  if (!node_start(&node, o->node_bin, deadline)) {
    node_stop(&node);
    return x;
  }
  mf_gen_config_t cfg = {.api_port = node.api_port,
                         .video = {(uint32_t)o->bitrate_kbps * 1000, (uint32_t)o->fps,
                                   (uint32_t)o->keyframe_s * 1000},
                         .audio_bps = 32000};
  mf_gen_t *g = NULL;
  size_t pubs = o->room ? (size_t)n : 1;
  size_t *list = calloc(pubs, sizeof *list);
  bool ok = list && mf_gen_create(&cfg, &g) == MF_OK;
  for (size_t i = 0; ok && i < pubs; i++) ok = mf_gen_add_publisher(g, "bench", &list[i]) == MF_OK;
  x.rss0_kb = mf_gen_proc_rss_kb(node.pid);
  for (int i = 0; ok && i < n; i++) {
    if (o->room) { /* everyone but itself: swap its own index out of the first slot */
      size_t self = list[i];
      list[i] = list[0];
      list[0] = self;
      ok = mf_gen_add_subscriber(g, "bench", list + 1, pubs - 1) == MF_OK;
      list[0] = list[i];
      list[i] = self;
    } else {
      ok = mf_gen_add_subscriber(g, "bench", list, 1) == MF_OK;
    }
    if (!ok) fprintf(stderr, "mafalda-bench: subscriber %d of %d failed\n", i + 1, n);
  }
  free(list);
  if (ok) ok = mf_gen_run(g, o->warmup_s, o->seconds, node.pid, &x.r) == MF_OK;
  x.ok = ok;
  mf_gen_free(g);
  if (!ok) fprintf(stderr, "mafalda-bench fanout: setup failed (node log %s/node.log)\n",
                   node.dir);
  node_stop(&node);
  return x;
}

static double cpu_per_mpkt(const run_t *x) {
  return x->r.forwarded ? x->r.sfu_cpu_s / ((double)x->r.forwarded / 1e6) : 0;
}

static double rss_per_consumer(const run_t *x) {
  return x->r.consumers ? (double)(x->r.sfu_rss_kb - x->rss0_kb) / (double)x->r.consumers : 0;
}

static void print_header(const fanout_opts_t *o) {
  mf_gen_video_config_t v = {(uint32_t)o->bitrate_kbps * 1000, (uint32_t)o->fps,
                             (uint32_t)o->keyframe_s * 1000};
  printf("%s (VP8-shaped %llu kbit/s effective, %d fps, keyframe every %d s + Opus-shaped "
         "32 kbit/s 50 pkt/s), mafalda-node 1 worker, loopback, %d s measured after %d s "
         "warm-up\n",
         o->room ? "room: N peers, each publishing and consuming the N - 1 others"
                 : "fanout: 1 publisher -> N subscribers",
         (unsigned long long)(mf_gen_video_effective_bps(&v) / 1000), o->fps, o->keyframe_s,
         o->seconds, o->warmup_s);
  printf("  %5s %10s %10s %7s %8s %8s %8s %6s %6s %9s %8s %9s %9s\n", "N", "sent/s", "fwd pkt/s",
         "loss%", "p50 ms", "p99 ms", "max ms", "reord", "nacks", "SFU CPU%", "gen CPU%",
         "s/Mpkt", "kB/cons");
}

static void print_row(const run_t *x) {
  if (!x->ok) {
    printf("  %5d  (setup failed)\n", x->n);
    return;
  }
  const mf_gen_result_t *r = &x->r;
  printf("  %5d %10.0f %10.0f %7.3f %8.2f %8.2f %8.2f %6llu %6llu %9.1f %8.1f %9.2f %9.1f\n",
         x->n, (double)r->sent / r->window_s, r->forwarded_pps, 100 * r->loss_ratio,
         (double)r->p50_us / 1000, (double)r->p99_us / 1000, (double)r->max_us / 1000,
         (unsigned long long)r->reordered, (unsigned long long)r->nacks_sent,
         100 * r->sfu_cpu_s / r->window_s, 100 * r->gen_cpu_s / r->window_s, cpu_per_mpkt(x),
         rss_per_consumer(x));
  fflush(stdout);
}

static json_t *row_json(const run_t *x) {
  const mf_gen_result_t *r = &x->r;
  json_t *j = json_pack("{s:i, s:b}", "subscribers", x->n, "ok", x->ok);
  if (!x->ok) return j;
  json_error_t jerr;
  json_t *more = json_pack_ex(&jerr, 0,
      "{s:f, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I, "
      "s:I, s:I, s:f, s:f, s:f, s:f, s:I, s:f, s:I}",
      "window_s", r->window_s, "sent", (json_int_t)r->sent, "forwarded",
      (json_int_t)r->forwarded, "forwarded_pps", r->forwarded_pps, "loss_ratio", r->loss_ratio,
      "expected", (json_int_t)r->expected, "received", (json_int_t)r->received, "lost",
      (json_int_t)r->lost, "latency_mean_us", r->mean_us, "latency_p50_us",
      (json_int_t)r->p50_us, "latency_p99_us", (json_int_t)r->p99_us, "latency_max_us",
      (json_int_t)r->max_us, "sfu_cpu_s", r->sfu_cpu_s, "reordered", (json_int_t)r->reordered,
      "duplicates", (json_int_t)r->duplicates, "too_late", (json_int_t)r->too_late,
      "nacks_sent", (json_int_t)r->nacks_sent, "plis_sent", (json_int_t)r->plis_sent,
      "keyframes_sent", (json_int_t)r->keyframes_sent, "sfu_cpu_s_per_mpkt", cpu_per_mpkt(x),
      "gen_cpu_s", r->gen_cpu_s, "sfu_cpu_percent", 100 * r->sfu_cpu_s / r->window_s,
      "rss_kb_per_consumer", rss_per_consumer(x), "consumers", (json_int_t)r->consumers,
      "sfu_rss_kb", (double)r->sfu_rss_kb, "unprotect_failed", (json_int_t)r->unprotect_failed);
  if (!more) fprintf(stderr, "mafalda-bench fanout: json: %s\n", jerr.text);
  json_object_update(j, more);
  json_decref(more);
  json_object_set_new(j, "plis_received_by_publisher", json_integer((json_int_t)r->plis_received));
  json_object_set_new(j, "nacks_received_by_publisher",
                      json_integer((json_int_t)r->nacks_received));
  json_object_set_new(j, "rtx_received", json_integer((json_int_t)r->rtx_received));
  json_object_set_new(j, "passed", json_boolean(passed(x)));
  return j;
}

static void usage_fanout(FILE *f) {
  fprintf(f, "usage: mafalda-bench fanout|room [--node PATH] [--subscribers N] [--seconds S] "
             "[--bitrate-kbps B] [--fps F] [--keyframe-s K] [--warmup-s W] [--search] "
             "[--max-subscribers M] [--json] [--assert-no-loss]\n");
}

static int run_scenario(bool room, int argc, char **argv) {
  fanout_opts_t o = {.node_bin = MF_BENCH_NODE, .subscribers = room ? 5 : 10,
                     .max_subscribers = room ? 80 : 640, .seconds = 5, .bitrate_kbps = 600,
                     .fps = 30, .keyframe_s = 2, .warmup_s = 1, .room = room};
  const char *name = room ? "room" : "fanout";
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool used = true;
    if (strcmp(a, "--json") == 0) {
      o.json = true;
      used = false;
    } else if (strcmp(a, "--search") == 0) {
      o.search = true;
      used = false;
    } else if (strcmp(a, "--assert-no-loss") == 0) {
      o.assert_no_loss = true;
      used = false;
    } else if (strcmp(a, "--node") == 0 && v) {
      o.node_bin = v;
    } else if (!(v && ((strcmp(a, "--subscribers") == 0 &&
                        mf_bench_parse_int(v, 1, 5000, &o.subscribers)) ||
                       (strcmp(a, "--max-subscribers") == 0 &&
                        mf_bench_parse_int(v, 1, 5000, &o.max_subscribers)) ||
                       (strcmp(a, "--seconds") == 0 && mf_bench_parse_int(v, 1, 3600, &o.seconds)) ||
                       (strcmp(a, "--warmup-s") == 0 && mf_bench_parse_int(v, 0, 60, &o.warmup_s)) ||
                       (strcmp(a, "--bitrate-kbps") == 0 &&
                        mf_bench_parse_int(v, 30, 10000, &o.bitrate_kbps)) ||
                       (strcmp(a, "--fps") == 0 && mf_bench_parse_int(v, 1, 120, &o.fps)) ||
                       (strcmp(a, "--keyframe-s") == 0 &&
                        mf_bench_parse_int(v, 0, 60, &o.keyframe_s))))) {
      fprintf(stderr, "mafalda-bench %s: bad option '%s'\n", name, a);
      usage_fanout(stderr);
      return 2;
    }
    if (used) i++;
  }
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  if (!o.json) print_header(&o);
  json_t *runs = json_array();
  int best = 0;
  bool any_failed_setup = false, any_loss = false;
  for (int n = o.subscribers; n <= o.max_subscribers; n *= 2) {
    run_t x = run_one(&o, n);
    if (!o.json) print_row(&x);
    json_array_append_new(runs, row_json(&x));
    if (!x.ok) any_failed_setup = true;
    if (!x.ok || x.r.lost > 0 || x.r.received == 0) any_loss = true;
    if (!passed(&x) || !o.search) {
      if (passed(&x)) best = n;
      break;
    }
    best = n;
  }
  if (o.json) {
    json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:o}", "scenario", name, "seconds",
                          o.seconds, "bitrate_kbps", o.bitrate_kbps, "fps", o.fps, "runs", runs);
    if (o.search) json_object_set_new(j, "max_subscribers_passed", json_integer(best));
    char *t = json_dumps(j, JSON_INDENT(2));
    if (t) printf("%s\n", t);
    free(t);
    json_decref(j);
  } else {
    json_decref(runs);
    if (o.search)
      printf("  max N with loss <= 1%% and p99 <= 100 ms: %d%s\n", best,
             best == 0 ? " (none passed)" : "");
  }
  if (o.assert_no_loss && any_loss) {
    fprintf(stderr, "mafalda-bench %s: packets were lost (or none arrived)\n", name);
    return 3;
  }
  return any_failed_setup && best == 0 ? 1 : 0;
}

int mf_bench_fanout(int argc, char **argv) { return run_scenario(false, argc, argv); }
int mf_bench_room(int argc, char **argv) { return run_scenario(true, argc, argv); }
