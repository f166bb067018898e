/* pipe: P publishers and S subscribers (each consuming every publisher's video and audio)
 * of one room that the SFU has to split, through the load generator (gen.h):
 *
 *  workers  one mafalda-node with 2 workers and its embedded controller (placement on),
 *           --transport-pps 1000 and a --worker-capacity-pps that lets 60 % of the P + S
 *           transports fit worker 0 (watermark 80 %): the placement then opens a second
 *           shard on worker 1, whose subscribers are fed through intra-node pipes;
 *  nodes    a mafalda-controller and two mafalda-nodes (1 worker each,
 *           --forward-transports=false so each node keeps its own clients), all on
 *           127.0.0.1 with free ports; publishers talk to node 1, subscribers to node 2,
 *           which consumes node 1's producers through inter-node pipes (SRTP).
 *
 * Figures as fanout/room, plus the pipes each node's /metrics counts at the end of the
 * window (mafalda_worker_pipes_in/out, node_pipes_in/out), the transports per worker (the
 * split the placement made), the CPU of every SFU process summed (both nodes and the
 * controller) and that as a % of the bound measured at start (bench_more.h).
 * Processes run under `timeout -s KILL`, with logs in a temporary directory that is removed
 * unless MF_BENCH_KEEP is set. */
#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/bench/bench.h"
#include "tests/bench/gen.h"
#include "tests/support/http_client.h"
#include "tests/support/test_proc.h"
#include "tests/support/ws_client.h"

#ifndef MF_BENCH_NODE
#define MF_BENCH_NODE "mafalda-node"
#endif
#ifndef MF_BENCH_CONTROLLER
#define MF_BENCH_CONTROLLER "mafalda-controller"
#endif

#define ROOM "bench-pipe"
#define TRANSPORT_PPS 1000
#define MAX_WORKERS 2

typedef struct {
  const char *node_bin, *controller_bin;
  int publishers, subscribers, seconds, warmup_s, bitrate_kbps, fps, keyframe_s;
  bool json, assert_no_loss, workers, nodes;
  bool assert_pipes; /* the ctest smoke: exit 4 unless every run opened pipes */
} pipe_opts_t;

/* Process 0 is the controller (nodes mode), 1 and 2 the nodes; logs <dir>/<i>.log. */
typedef struct {
  char dir[64];
  pid_t wrapper[3], pid[3];
  uint16_t api[3];
} cluster_t;

typedef struct {
  long long pipes_in, pipes_out, node_pipes_in, node_pipes_out;
  long long transports[MAX_WORKERS];
  int workers_seen;
} metrics_t;

typedef struct {
  bool nodes, ok;
  long rss0_kb;
  mf_gen_result_t r;
  metrics_t m[3]; /* per node, index 1 and 2 */
  double fanout, bound_pps, pct;
} pipe_run_t;

/* ---- processes ---- */

static void cluster_stop(cluster_t *c) {
  for (int i = 2; i >= 0; i--) { /* nodes first: the controller sees them leave */
    if (c->wrapper[i] <= 0) continue;
    if (c->pid[i] > 0) kill(c->pid[i], SIGTERM);
    for (int k = 0; k < 150 && waitpid(c->wrapper[i], NULL, WNOHANG) == 0; k++)
      mf_test_sleep_ms(20);
    mf_test_stop_wrapped(&c->wrapper[i], 1);
  }
  if (c->dir[0] && !getenv("MF_BENCH_KEEP")) mf_test_remove_dir(c->dir);
  c->dir[0] = '\0';
}

/* The log of process i holds `needle`, within limit_s. */
static bool await_log(const cluster_t *c, int i, const char *needle, double limit_s) {
  char path[128];
  mf_test_log_path(c->dir, i, path, sizeof path);
  double until = mf_test_now_s() + limit_s;
  while (mf_test_now_s() < until) {
    FILE *f = fopen(path, "r");
    if (f) {
      char line[1024];
      bool found = false;
      while (!found && fgets(line, sizeof line, f)) found = strstr(line, needle) != NULL;
      fclose(f);
      if (found) return true;
    }
    mf_test_sleep_ms(100);
  }
  return false;
}

static bool await_api(uint16_t port, double limit_s) {
  double until = mf_test_now_s() + limit_s;
  while (mf_test_now_s() < until) {
    nng_stream *ws = mf_test_ws_dial("127.0.0.1", port, "", 500);
    if (ws) {
      mf_test_ws_free(ws);
      return true;
    }
    mf_test_sleep_ms(50);
  }
  return false;
}

static bool launch(cluster_t *c, int i, char **argv) {
  int rv = mf_test_launch_logged(c->dir, i, argv, &c->wrapper[i]);
  if (rv != 0) {
    fprintf(stderr, "mafalda-bench pipe: cannot start %s: %s\n", argv[4], strerror(rv));
    return false;
  }
  c->pid[i] = mf_test_wait_child_of(c->wrapper[i], 5000);
  if (c->pid[i] <= 0) {
    fprintf(stderr, "mafalda-bench pipe: %s did not start (logs in %s)\n", argv[4], c->dir);
    return false;
  }
  return true;
}

/* A node's process with the options both modes share, then `extra` (NULL-terminated). */
static bool start_node(cluster_t *c, int i, const pipe_opts_t *o, const char *deadline,
                       char **extra) {
  char api[32];
  c->api[i] = (uint16_t)mf_test_free_port();
  snprintf(api, sizeof api, "127.0.0.1:%u", c->api[i]);
  char *argv[64] = {"timeout", "-s", "KILL", (char *)deadline, (char *)o->node_bin,
                    "--pin-workers=false", "--rtc-listen-ip", "127.0.0.1", "--announced-ip",
                    "127.0.0.1", "--rtc-port-base", "0", "--api-listen", api,
                    "--gossip-port", "0", "--node-rpc-port", "0", "--api-grace-ms", "0",
                    "--drain-timeout-ms", "1000", "--report-interval-ms", "500",
                    "--log-level", "info"};
  size_t n = 0;
  while (argv[n]) n++;
  for (size_t k = 0; extra[k] && n < 63; k++) argv[n++] = extra[k];
  argv[n] = NULL;
  if (!launch(c, i, argv)) return false;
  if (!await_api(c->api[i], 30)) {
    fprintf(stderr, "mafalda-bench pipe: node %d's API did not come up (logs in %s)\n", i,
            c->dir);
    return false;
  }
  /* placement needs the node registered and active in the controller */
  if (!await_log(c, i, " is active", 30)) {
    fprintf(stderr, "mafalda-bench pipe: node %d did not become active (logs in %s)\n", i,
            c->dir);
    return false;
  }
  return true;
}

static bool cluster_start(cluster_t *c, const pipe_opts_t *o, bool nodes, int deadline_s) {
  memset(c, 0, sizeof *c);
  snprintf(c->dir, sizeof c->dir, "/tmp/mf-bench-pipe-XXXXXX");
  if (!mkdtemp(c->dir)) {
    perror("mkdtemp");
    c->dir[0] = '\0';
    return false;
  }
  char deadline[16];
  snprintf(deadline, sizeof deadline, "%d", deadline_s);
  if (!nodes) {
    /* 60 % of the transports fit worker 0 (k * T < 0.8 * C < (k + 1) * T), the rest go to
     * worker 1, which keeps 20 % headroom: the load the placement counts is also the
     * workers' measured CPU x capacity, and ICE/DTLS setups cost CPU (an exact 50/50 split
     * ran out of room near the end of a 50-transport setup) */
    int k = (3 * (o->publishers + o->subscribers) + 4) / 5;
    char cap[24], tpps[24], raft[32], rpc[32], data[96];
    snprintf(cap, sizeof cap, "%d", (int)((k + 0.5) * TRANSPORT_PPS / 0.8));
    snprintf(tpps, sizeof tpps, "%d", TRANSPORT_PPS);
    snprintf(raft, sizeof raft, "127.0.0.1:%d", mf_test_free_port());
    snprintf(rpc, sizeof rpc, "127.0.0.1:%d", mf_test_free_port());
    snprintf(data, sizeof data, "%s/data", c->dir);
    char *extra[] = {"--workers", "2", "--controller=true", "--controller-listen", raft,
                     "--controller-rpc-listen", rpc, "--data-dir", data,
                     "--worker-capacity-pps", cap, "--transport-pps", tpps, NULL};
    return start_node(c, 1, o, deadline, extra);
  }
  char ctl_rpc[32], gossip[32];
  int rv = mf_test_start_controller(c->dir, o->controller_bin, deadline, ctl_rpc, gossip,
                                    &c->wrapper[0]);
  if (rv != 0) {
    fprintf(stderr, "mafalda-bench pipe: cannot start %s: %s\n", o->controller_bin,
            strerror(rv));
    return false;
  }
  c->pid[0] = mf_test_wait_child_of(c->wrapper[0], 5000);
  char *extra[] = {"--workers", "1", "--controller=false", "--controllers", ctl_rpc, "--join",
                   gossip, "--forward-transports=false", NULL};
  return c->pid[0] > 0 && start_node(c, 1, o, deadline, extra) &&
         start_node(c, 2, o, deadline, extra);
}

/* ---- /metrics ---- */

static char *http_get(uint16_t port, const char *path) {
  return test_http_get_body("127.0.0.1", port, path, 3000);
}

/* Per-worker values of series in text (worker ids beyond MAX_WORKERS are summed into the
 * total only); the total. */
static long long series_sum(const char *text, const char *series, long long *per_worker,
                            int *workers) {
  char prefix[96];
  snprintf(prefix, sizeof prefix, "mafalda_worker_%s{worker=\"", series);
  long long sum = 0;
  for (const char *p = strstr(text, prefix); p; p = strstr(p + 1, prefix)) {
    int w = atoi(p + strlen(prefix));
    const char *v = strchr(p, ' ');
    if (!v) continue;
    long long x = strtoll(v + 1, NULL, 10);
    sum += x;
    if (per_worker && w >= 0 && w < MAX_WORKERS) per_worker[w] = x;
    if (workers && w + 1 > *workers) *workers = w + 1;
  }
  return sum;
}

static void read_metrics(uint16_t port, metrics_t *m) {
  memset(m, 0, sizeof *m);
  char *t = http_get(port, "/metrics");
  if (!t) {
    free(t);
    m->pipes_in = m->pipes_out = m->node_pipes_in = m->node_pipes_out = -1;
    return;
  }
  m->pipes_in = series_sum(t, "pipes_in", NULL, NULL);
  m->pipes_out = series_sum(t, "pipes_out", NULL, NULL);
  m->node_pipes_in = series_sum(t, "node_pipes_in", NULL, NULL);
  m->node_pipes_out = series_sum(t, "node_pipes_out", NULL, NULL);
  series_sum(t, "transports", m->transports, &m->workers_seen);
  free(t);
}

/* ---- node 2 learning node 1's producers ---- */

/* A throwaway session on node 2 joins the room and makes a transport (node 2's first
 * placement there, after which it syncs with the room's other nodes), then polls
 * router.listProducers until `want` producers show. Without it the first subscriber's
 * consume could race the sync. */
static bool await_remote_producers(uint16_t port, size_t want, double limit_s) {
  nng_stream *ws = mf_test_ws_dial("127.0.0.1", port, "", 5000);
  if (!ws) return false;
  static const char *calls[] = {
      "{\"id\":1,\"method\":\"router.join\",\"data\":{\"roomId\":\"" ROOM "\"}}",
      "{\"id\":2,\"method\":\"router.createWebRtcTransport\",\"data\":{}}"};
  bool ok = true;
  for (size_t i = 0; ok && i < 2; i++) {
    ok = mf_test_ws_send(ws, calls[i], strlen(calls[i]), 5000) == 0;
    for (json_t *m = NULL; ok;) { /* skip notifications until the answer */
      m = mf_test_ws_recv(ws, 10000);
      if (!m) {
        ok = false;
        break;
      }
      bool answer = json_object_get(m, "ok") != NULL;
      if (answer) ok = json_is_true(json_object_get(m, "ok"));
      json_decref(m);
      if (answer) break;
    }
  }
  double until = mf_test_now_s() + limit_s;
  size_t seen = 0;
  for (int id = 3; ok && seen < want && mf_test_now_s() < until; id++) {
    char req[96];
    int n = snprintf(req, sizeof req, "{\"id\":%d,\"method\":\"router.listProducers\",\"data\":{}}",
                     id);
    if (mf_test_ws_send(ws, req, (size_t)n, 5000) != 0) break;
    json_t *m;
    while ((m = mf_test_ws_recv(ws, 5000)) && !json_object_get(m, "ok")) json_decref(m);
    if (!m) break;
    seen = json_array_size(json_object_get(json_object_get(m, "data"), "producers"));
    json_decref(m);
    if (seen < want) mf_test_sleep_ms(100);
  }
  mf_test_ws_free(ws);
  if (seen < want)
    fprintf(stderr, "mafalda-bench pipe: node 2 lists %zu of node 1's %zu producers\n", seen,
            want);
  return seen >= want;
}

/* ---- one run ---- */

static pipe_run_t run_one(const pipe_opts_t *o, bool nodes, const mf_bench_bound_cost_t *bound) {
  pipe_run_t x = {.nodes = nodes, .pct = -1};
  cluster_t c = {0};
  int deadline = 90 + o->warmup_s + o->seconds + o->subscribers / 2;
  mf_gen_t *g = NULL;
  size_t *list = calloc((size_t)o->publishers, sizeof *list);
  bool ok = list && cluster_start(&c, o, nodes, deadline);
  mf_gen_config_t cfg = {.api_port = c.api[1],
                         .video = {(uint32_t)o->bitrate_kbps * 1000, (uint32_t)o->fps,
                                   (uint32_t)o->keyframe_s * 1000},
                         .audio_bps = 32000};
  ok = ok && mf_gen_create(&cfg, &g) == MF_OK;
  for (int i = 0; ok && i < o->publishers; i++)
    ok = mf_gen_add_publisher(g, ROOM, &list[i]) == MF_OK;
  if (ok && nodes) {
    ok = await_remote_producers(c.api[2], 2 * (size_t)o->publishers, 15) &&
         mf_gen_add_sfu_pid(g, c.pid[2]) == MF_OK && mf_gen_add_sfu_pid(g, c.pid[0]) == MF_OK;
    mf_gen_set_api_port(g, c.api[2]);
  }
  if (ok) {
    x.rss0_kb = mf_gen_proc_rss_kb(c.pid[1]);
    if (nodes) x.rss0_kb += mf_gen_proc_rss_kb(c.pid[2]) + mf_gen_proc_rss_kb(c.pid[0]);
  }
  for (int i = 0; ok && i < o->subscribers; i++) {
    ok = mf_gen_add_subscriber(g, ROOM, list, (size_t)o->publishers) == MF_OK;
    if (!ok) fprintf(stderr, "mafalda-bench pipe: subscriber %d of %d failed\n", i + 1,
                     o->subscribers);
  }
  if (ok) ok = mf_gen_run(g, o->warmup_s, o->seconds, c.pid[1], &x.r) == MF_OK;
  if (ok) { /* before the sessions close: the pipes are still open */
    read_metrics(c.api[1], &x.m[1]);
    if (nodes) read_metrics(c.api[2], &x.m[2]);
    x.fanout = mf_bench_fanout_of(x.r.sent, x.r.forwarded);
    x.bound_pps = mf_bench_bound_pps(bound, x.fanout);
    x.pct = mf_bench_percent_of_bound(x.r.forwarded, x.r.sfu_cpu_s, x.bound_pps);
  }
  x.ok = ok;
  mf_gen_free(g);
  free(list);
  if (!ok) fprintf(stderr, "mafalda-bench pipe: %s setup failed (logs in %s; MF_BENCH_KEEP=1 "
                           "keeps them)\n", nodes ? "nodes" : "workers", c.dir);
  cluster_stop(&c);
  return x;
}

/* ---- output ---- */

static double cpu_per_mpkt(const pipe_run_t *x) {
  return x->r.forwarded ? x->r.sfu_cpu_s / ((double)x->r.forwarded / 1e6) : 0;
}

static void print_header(const pipe_opts_t *o) {
  mf_gen_video_config_t v = {(uint32_t)o->bitrate_kbps * 1000, (uint32_t)o->fps,
                             (uint32_t)o->keyframe_s * 1000};
  printf("pipe: %d publishers (VP8-shaped %llu kbit/s effective, %d fps + Opus-shaped 32 kbit/s)"
         " -> %d subscribers consuming all of them, loopback, %d s measured after %d s warm-up;"
         " SFU CPU = every SFU process summed\n",
         o->publishers, (unsigned long long)(mf_gen_video_effective_bps(&v) / 1000), o->fps,
         o->subscribers, o->seconds, o->warmup_s);
  printf("  %-9s %9s %10s %7s %7s %7s %7s %6s %8s %8s %8s %7s  %s\n", "split", "sent/s",
         "fwd pkt/s", "loss%", "p50 ms", "p99 ms", "max ms", "nacks", "SFU CPU%", "gen CPU%",
         "s/Mpkt", "%bound", "pipes / transports per worker");
}

static void print_row(const pipe_run_t *x) {
  const char *name = x->nodes ? "2 nodes" : "2 workers";
  if (!x->ok) {
    printf("  %-9s  (setup failed)\n", name);
    return;
  }
  const mf_gen_result_t *r = &x->r;
  char pct[16];
  if (x->pct >= 0)
    snprintf(pct, sizeof pct, "%.1f", x->pct);
  else
    snprintf(pct, sizeof pct, "-");
  printf("  %-9s %9.0f %10.0f %7.3f %7.2f %7.2f %7.2f %6llu %8.1f %8.1f %8.2f %7s  ", name,
         (double)r->sent / r->window_s, r->forwarded_pps, 100 * r->loss_ratio,
         (double)r->p50_us / 1000, (double)r->p99_us / 1000, (double)r->max_us / 1000,
         (unsigned long long)r->nacks_sent, 100 * r->sfu_cpu_s / r->window_s,
         100 * r->gen_cpu_s / r->window_s, cpu_per_mpkt(x), pct);
  if (x->nodes)
    printf("node pipes 1->2: %lld out / %lld in; transports node1 %lld, node2 %lld\n",
           x->m[1].node_pipes_out, x->m[2].node_pipes_in, x->m[1].transports[0],
           x->m[2].transports[0]);
  else
    printf("intra pipes: %lld out / %lld in; transports [%lld, %lld]\n", x->m[1].pipes_out,
           x->m[1].pipes_in, x->m[1].transports[0], x->m[1].transports[1]);
  fflush(stdout);
}

static json_t *metrics_json(const metrics_t *m) {
  return json_pack("{s:I, s:I, s:I, s:I, s:[I, I]}", "pipes_in", (json_int_t)m->pipes_in,
                   "pipes_out", (json_int_t)m->pipes_out, "node_pipes_in",
                   (json_int_t)m->node_pipes_in, "node_pipes_out", (json_int_t)m->node_pipes_out,
                   "transports_per_worker", (json_int_t)m->transports[0],
                   (json_int_t)m->transports[1]);
}

static json_t *row_json(const pipe_run_t *x) {
  json_t *j = json_pack("{s:s, s:b}", "split", x->nodes ? "nodes" : "workers", "ok", x->ok);
  if (!x->ok) return j;
  const mf_gen_result_t *r = &x->r;
  json_t *more = json_pack(
      "{s:f, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:I, s:I, s:f, "
      "s:f, s:f}",
      "window_s", r->window_s, "sent", (json_int_t)r->sent, "forwarded",
      (json_int_t)r->forwarded, "forwarded_pps", r->forwarded_pps, "loss_ratio", r->loss_ratio,
      "lost", (json_int_t)r->lost, "latency_p50_us", (json_int_t)r->p50_us, "latency_p99_us",
      (json_int_t)r->p99_us, "latency_max_us", (json_int_t)r->max_us, "nacks_sent",
      (json_int_t)r->nacks_sent, "sfu_cpu_s", r->sfu_cpu_s, "sfu_cpu_s_per_mpkt",
      cpu_per_mpkt(x), "gen_cpu_s", r->gen_cpu_s, "sfu_rss_kb", (double)r->sfu_rss_kb,
      "consumers", (json_int_t)r->consumers, "reordered", (json_int_t)r->reordered, "fanout",
      x->fanout, "bound_pps", x->bound_pps, "percent_of_bound", x->pct);
  if (more) {
    json_object_update(j, more);
    json_decref(more);
  }
  json_object_set_new(j, "node1", metrics_json(&x->m[1]));
  if (x->nodes) json_object_set_new(j, "node2", metrics_json(&x->m[2]));
  return j;
}

static void usage_pipe(FILE *f) {
  fprintf(f, "usage: mafalda-bench pipe [--node PATH] [--controller-bin PATH] [--publishers P] "
             "[--subscribers S] [--mode workers|nodes|both] [--seconds S] [--warmup-s W] "
             "[--bitrate-kbps B] [--fps F] [--keyframe-s K] [--json] [--assert-no-loss] "
             "[--assert-pipes]\n");
}

int mf_bench_pipe(int argc, char **argv) {
  pipe_opts_t o = {.node_bin = MF_BENCH_NODE, .controller_bin = MF_BENCH_CONTROLLER,
                   .publishers = 4, .subscribers = 20, .seconds = 5, .warmup_s = 1,
                   .bitrate_kbps = 600, .fps = 30, .keyframe_s = 2, .workers = true,
                   .nodes = true};
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool used = true;
    if (strcmp(a, "--json") == 0) {
      o.json = true;
      used = false;
    } else if (strcmp(a, "--assert-no-loss") == 0) {
      o.assert_no_loss = true;
      used = false;
    } else if (strcmp(a, "--assert-pipes") == 0) {
      o.assert_pipes = true;
      used = false;
    } else if (strcmp(a, "--node") == 0 && v) {
      o.node_bin = v;
    } else if (strcmp(a, "--controller-bin") == 0 && v) {
      o.controller_bin = v;
    } else if (strcmp(a, "--mode") == 0 && v &&
               (!strcmp(v, "workers") || !strcmp(v, "nodes") || !strcmp(v, "both"))) {
      o.workers = strcmp(v, "nodes") != 0;
      o.nodes = strcmp(v, "workers") != 0;
    } else if (!(v && ((strcmp(a, "--publishers") == 0 &&
                        mf_bench_parse_int(v, 1, 64, &o.publishers)) ||
                       (strcmp(a, "--subscribers") == 0 &&
                        mf_bench_parse_int(v, 1, 2000, &o.subscribers)) ||
                       (strcmp(a, "--seconds") == 0 && mf_bench_parse_int(v, 1, 3600, &o.seconds)) ||
                       (strcmp(a, "--warmup-s") == 0 && mf_bench_parse_int(v, 0, 60, &o.warmup_s)) ||
                       (strcmp(a, "--bitrate-kbps") == 0 &&
                        mf_bench_parse_int(v, 30, 10000, &o.bitrate_kbps)) ||
                       (strcmp(a, "--fps") == 0 && mf_bench_parse_int(v, 1, 120, &o.fps)) ||
                       (strcmp(a, "--keyframe-s") == 0 &&
                        mf_bench_parse_int(v, 0, 60, &o.keyframe_s))))) {
      fprintf(stderr, "mafalda-bench pipe: bad option '%s'\n", a);
      usage_pipe(stderr);
      return 2;
    }
    if (used) i++;
  }
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  mf_bench_bound_cost_t bound = {0};
  if (mf_bench_bound_measure(20000, &bound) != MF_OK)
    fprintf(stderr, "mafalda-bench pipe: the bound could not be measured (no %% of bound)\n");
  if (!o.json) print_header(&o);
  json_t *runs = json_array();
  bool failed = false, loss = false, no_pipes = false;
  for (int k = 0; k < 2; k++) {
    bool nodes = k == 1;
    if (nodes ? !o.nodes : !o.workers) continue;
    pipe_run_t x = run_one(&o, nodes, &bound);
    if (!o.json) print_row(&x);
    json_array_append_new(runs, row_json(&x));
    if (!x.ok) failed = true;
    if (!x.ok || x.r.lost > 0 || x.r.received == 0) loss = true;
    if (!x.ok || (nodes ? x.m[1].node_pipes_out : x.m[1].pipes_out) <= 0) no_pipes = true;
  }
  if (!o.json) {
    printf("  %%bound: SFU packets per CPU-second (all SFU processes) over the bound's GCM "
           "packets/s at the run's fan-out (recv %.0f + unprotect %.0f + k x (protect %.0f + "
           "send %.0f) ns)\n",
           bound.recv_ns, bound.unprotect_ns, bound.protect_ns, bound.send_ns);
    json_decref(runs);
  } else {
    json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:i, s:{s:f, s:f, s:f, s:f}, s:o}", "scenario",
                          "pipe", "publishers", o.publishers, "subscribers", o.subscribers,
                          "seconds", o.seconds, "bitrate_kbps", o.bitrate_kbps, "bound_ns",
                          "recv", bound.recv_ns, "unprotect", bound.unprotect_ns, "protect",
                          bound.protect_ns, "send", bound.send_ns, "runs", runs);
    char *t = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    if (t) printf("%s\n", t);
    free(t);
    json_decref(j);
  }
  if (o.assert_no_loss && loss) {
    fprintf(stderr, "mafalda-bench pipe: packets were lost (or none arrived)\n");
    return 3;
  }
  if (o.assert_pipes && no_pipes) {
    fprintf(stderr, "mafalda-bench pipe: a run opened no pipe (the room was not split)\n");
    return 4;
  }
  return failed ? 1 : 0;
}
