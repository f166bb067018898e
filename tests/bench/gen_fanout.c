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
#include "tests/bench/bench_plot.h"
#include "tests/bench/gen.h"
#include "tests/bench/gen_node.h"
#include "tests/bench/janus_sfu.h"
#include "tests/support/test_proc.h"
#include "tests/support/ws_client.h"

#ifndef MF_BENCH_NODE
#define MF_BENCH_NODE "mafalda-node"
#endif

#ifndef MF_BENCH_JANUS_SHIM
#define MF_BENCH_JANUS_SHIM NULL
#endif

#define PASS_LOSS 0.01
#define PASS_P99_US 100000

typedef struct {
  const char *node_bin;
  int subscribers, max_subscribers, seconds, bitrate_kbps, fps, keyframe_s, warmup_s;
  bool json, search, room;
  bool assert_no_loss; /* the ctest smoke: exit 3 unless every run saw 0 packets lost */
  const char *janus_bin;
  bool sfu_mafalda, sfu_janus; /* --sfu mafalda (default) | janus | both */
} fanout_opts_t;

typedef struct {
  int n;
  bool ok;
  bool janus; /* measured on Janus (--sfu janus|both), else on mafalda-node */
  long rss0_kb;
  mf_gen_result_t r;
} run_t;

static bool passed(const run_t *x) {
  return x->ok && x->r.loss_ratio <= PASS_LOSS && x->r.p99_us <= PASS_P99_US;
}

static run_t run_one(const fanout_opts_t *o, int n, bool janus) {
  run_t x = {.n = n, .janus = janus};
  mf_gen_node_t node;
  mf_janus_sfu_t js;
  memset(&node, 0, sizeof node);
  memset(&js, 0, sizeof js);
  int deadline = 60 + o->warmup_s + o->seconds + n / 2;
  if (janus ? mf_janus_sfu_start(o->janus_bin, MF_BENCH_JANUS_SHIM, deadline + n, &js) != MF_OK
            : !mf_gen_node_start(&node, o->node_bin, o->room ? "room" : "fanout", deadline, NULL)) {
    mf_gen_node_stop(&node);
    return x;
  }
  pid_t sfu_pid = janus ? js.pid : node.pid;
  mf_gen_config_t cfg = {.api_port = node.api_port,
                         .janus_port = janus ? js.http_port : 0,
                         .video = {(uint32_t)o->bitrate_kbps * 1000, (uint32_t)o->fps,
                                   (uint32_t)o->keyframe_s * 1000},
                         .audio_bps = 32000};
  mf_gen_t *g = NULL;
  size_t pubs = o->room ? (size_t)n : 1;
  size_t *list = calloc(pubs, sizeof *list);
  bool ok = list && mf_gen_create(&cfg, &g) == MF_OK;
  for (size_t i = 0; ok && i < pubs; i++) ok = mf_gen_add_publisher(g, "bench", &list[i]) == MF_OK;
  x.rss0_kb = mf_gen_proc_rss_kb(sfu_pid);
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
  if (ok) ok = mf_gen_run(g, o->warmup_s, o->seconds, sfu_pid, &x.r) == MF_OK;
  x.ok = ok;
  mf_gen_free(g);
  if (!ok && janus)
    fprintf(stderr, "mafalda-bench fanout: setup failed (Janus log %s/janus.log)\n", js.dir);
  else if (!ok)
    fprintf(stderr, "mafalda-bench fanout: setup failed (node log %s/node.log)\n", node.dir);
  mf_gen_node_stop(&node);
  mf_janus_sfu_stop(&js);
  return x;
}

/* "% of bound" (issue 10): the bound's GCM costs, measured once at the start of the
 * scenario (bench_more.h has the arithmetic); all zero when that failed. */
static mf_bench_bound_cost_t bound_cost;

static double pct_of_bound(const run_t *x, double *fanout, double *bound_pps) {
  *fanout = mf_bench_fanout_of(x->r.sent, x->r.forwarded);
  *bound_pps = mf_bench_bound_pps(&bound_cost, *fanout);
  return mf_bench_percent_of_bound(x->r.forwarded, x->r.sfu_cpu_s, *bound_pps);
}

static double cpu_per_mpkt(const run_t *x) {
  return x->r.forwarded ? x->r.sfu_cpu_s / ((double)x->r.forwarded / 1e6) : 0;
}

/* --plot PATH (issue 10): each SFU's runs (0 mafalda, 1 Janus), drawn by gnuplot at the end
 * (bench_plot.h). */
#define PLOT_MAX 32
static mf_bench_plot_point_t plot_pts[2][PLOT_MAX];
static size_t plot_n[2];

static void plot_add(int sfu, const run_t *x) {
  if (!x->ok || plot_n[sfu] == PLOT_MAX) return;
  plot_pts[sfu][plot_n[sfu]++] =
      (mf_bench_plot_point_t){(double)x->n, 100 * x->r.loss_ratio, cpu_per_mpkt(x)};
}

static void plot_draw(const char *path, const char *scenario) {
  mf_bench_plot_series_t series[2];
  size_t ns = 0;
  static const char *names[2] = {"mafalda", "janus"};
  for (int k = 0; k < 2; k++)
    if (plot_n[k]) series[ns++] = (mf_bench_plot_series_t){names[k], plot_pts[k], plot_n[k]};
  char title[64];
  snprintf(title, sizeof title, "mafalda-bench %s", scenario);
  mf_err_t e = ns ? mf_bench_plot_png(path, title, series, ns) : MF_ERR_INVALID_ARG;
  if (e == MF_OK)
    fprintf(stderr, "mafalda-bench %s: plot written to %s\n", scenario, path);
  else
    fprintf(stderr, "mafalda-bench %s: no plot (%s)\n", scenario,
            e == MF_ERR_NOT_FOUND ? "gnuplot is not installed: apt-get install gnuplot-nox"
                                  : mf_strerror(e));
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
  if (o->sfu_janus)
    printf("  SFU janus: Debian's Janus %s, videoroom plugin, HTTP API, full ICE on loopback\n",
           "1.1.x");
  printf("  %-7s %5s %10s %10s %7s %8s %8s %8s %6s %6s %9s %8s %9s %9s\n", "SFU", "N", "sent/s",
         "fwd pkt/s",
         "loss%", "p50 ms", "p99 ms", "max ms", "reord", "nacks", "SFU CPU%", "gen CPU%",
         "s/Mpkt", "kB/cons");
}

static void print_row(const run_t *x) {
  if (!x->ok) {
    printf("  %-7s %5d  (setup failed)\n", x->janus ? "janus" : "mafalda", x->n);
    return;
  }
  const mf_gen_result_t *r = &x->r;
  printf("  %-7s %5d %10.0f %10.0f %7.3f %8.2f %8.2f %8.2f %6llu %6llu %9.1f %8.1f %9.2f %9.1f\n",
         x->janus ? "janus" : "mafalda", x->n, (double)r->sent / r->window_s, r->forwarded_pps, 100 * r->loss_ratio,
         (double)r->p50_us / 1000, (double)r->p99_us / 1000, (double)r->max_us / 1000,
         (unsigned long long)r->reordered, (unsigned long long)r->nacks_sent,
         100 * r->sfu_cpu_s / r->window_s, 100 * r->gen_cpu_s / r->window_s, cpu_per_mpkt(x),
         rss_per_consumer(x));
  double k, bpps, pct = pct_of_bound(x, &k, &bpps);
  if (pct >= 0)
    printf("        %.1f %% of bound: %.0f pkt per SFU CPU-second vs the bound's %.0f pkt/s at "
           "fan-out %.1f\n", pct, (double)x->r.forwarded / x->r.sfu_cpu_s, bpps, k);
  fflush(stdout);
}

static json_t *row_json(const run_t *x) {
  const mf_gen_result_t *r = &x->r;
  json_t *j = json_pack("{s:i, s:b, s:s}", "subscribers", x->n, "ok", x->ok, "sfu",
                        x->janus ? "janus" : "mafalda");
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
  double k, bpps, pct = pct_of_bound(x, &k, &bpps);
  json_object_set_new(j, "fanout", json_real(k));
  json_object_set_new(j, "bound_pps", json_real(bpps));
  json_object_set_new(j, "percent_of_bound", json_real(pct));
  return j;
}

/* --sfu both: the two SFUs at one N, side by side, with Janus's CPU per forwarded packet
 * over mafalda's (both from /proc/<pid>/stat of the SFU process). */
#define MAX_COMPARED 16

static json_t *compare_json(const run_t *m, const run_t *j) {
  double cm = cpu_per_mpkt(m), cj = cpu_per_mpkt(j);
  json_t *o = json_pack("{s:i, s:b, s:b}", "subscribers", m->n, "mafalda_ok", m->ok, "janus_ok",
                        j->ok);
  if (!m->ok || !j->ok) return o;
  json_object_set_new(o, "mafalda_cpu_s_per_mpkt", json_real(cm));
  json_object_set_new(o, "janus_cpu_s_per_mpkt", json_real(cj));
  json_object_set_new(o, "cpu_ratio_janus_over_mafalda", cm > 0 ? json_real(cj / cm) : json_null());
  json_object_set_new(o, "mafalda_loss_ratio", json_real(m->r.loss_ratio));
  json_object_set_new(o, "janus_loss_ratio", json_real(j->r.loss_ratio));
  json_object_set_new(o, "mafalda_latency_p50_us", json_integer((json_int_t)m->r.p50_us));
  json_object_set_new(o, "janus_latency_p50_us", json_integer((json_int_t)j->r.p50_us));
  json_object_set_new(o, "mafalda_latency_p99_us", json_integer((json_int_t)m->r.p99_us));
  json_object_set_new(o, "janus_latency_p99_us", json_integer((json_int_t)j->r.p99_us));
  json_object_set_new(o, "mafalda_rss_kb_per_consumer", json_real(rss_per_consumer(m)));
  json_object_set_new(o, "janus_rss_kb_per_consumer", json_real(rss_per_consumer(j)));
  json_object_set_new(o, "mafalda_forwarded_pps", json_real(m->r.forwarded_pps));
  json_object_set_new(o, "janus_forwarded_pps", json_real(j->r.forwarded_pps));
  return o;
}

static void print_compare(const run_t *m, const run_t *j, size_t n) {
  printf("Janus side by side (same generator, same N; SFU CPU from /proc/<pid>/stat):\n");
  printf("  %5s %13s %13s %8s %15s %15s %15s %15s\n", "N", "mafalda s/Mpkt", "janus s/Mpkt",
         "ratio", "loss% m / j", "p50 ms m / j", "p99 ms m / j", "kB/cons m / j");
  for (size_t i = 0; i < n; i++) {
    if (!m[i].ok || !j[i].ok) {
      printf("  %5d  (%s setup failed)\n", m[i].n, !m[i].ok ? "mafalda" : "janus");
      continue;
    }
    double cm = cpu_per_mpkt(&m[i]), cj = cpu_per_mpkt(&j[i]);
    printf("  %5d %13.2f %13.2f %7.2fx %7.3f/%-7.3f %7.2f/%-7.2f %7.2f/%-7.2f %7.1f/%-7.1f\n",
           m[i].n, cm, cj, cm > 0 ? cj / cm : 0.0, 100 * m[i].r.loss_ratio,
           100 * j[i].r.loss_ratio, (double)m[i].r.p50_us / 1000, (double)j[i].r.p50_us / 1000,
           (double)m[i].r.p99_us / 1000, (double)j[i].r.p99_us / 1000, rss_per_consumer(&m[i]),
           rss_per_consumer(&j[i]));
  }
  printf("  ratio = Janus's CPU seconds per million forwarded packets / mafalda-node's\n");
  fflush(stdout);
}

static void usage_fanout(FILE *f) {
  fprintf(f, "usage: mafalda-bench fanout|room [--node PATH] [--subscribers N] [--seconds S] "
             "[--bitrate-kbps B] [--fps F] [--keyframe-s K] [--warmup-s W] [--search] "
             "[--max-subscribers M] [--json] [--assert-no-loss] [--sfu mafalda|janus|both] "
             "[--janus PATH] [--plot OUT.png]\n");
}

static int run_scenario(bool room, int argc, char **argv) {
  fanout_opts_t o = {.node_bin = MF_BENCH_NODE, .subscribers = room ? 5 : 10,
                     .max_subscribers = room ? 80 : 640, .seconds = 5, .bitrate_kbps = 600,
                     .fps = 30, .keyframe_s = 2, .warmup_s = 1, .room = room,
                     .janus_bin = "janus", .sfu_mafalda = true};
  const char *name = room ? "room" : "fanout";
  const char *plot_path = NULL; /* --plot */
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
    } else if (strcmp(a, "--plot") == 0 && v) {
      plot_path = v;
    } else if (strcmp(a, "--janus") == 0 && v) {
      o.janus_bin = v;
    } else if (strcmp(a, "--sfu") == 0 && v && (strcmp(v, "mafalda") == 0 ||
                                                strcmp(v, "janus") == 0 ||
                                                strcmp(v, "both") == 0)) {
      o.sfu_mafalda = strcmp(v, "janus") != 0;
      o.sfu_janus = strcmp(v, "mafalda") != 0;
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
  if (o.sfu_janus && !mf_janus_sfu_available(o.janus_bin)) {
    /* 77: ctest's SKIP_RETURN_CODE for bench_janus_smoke (deploy/install-deps.sh installs it) */
    fprintf(stderr, "mafalda-bench %s: '%s' not found: apt-get install janus\n", name,
            o.janus_bin);
    return 77;
  }
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  if (mf_bench_bound_measure(20000, &bound_cost) != MF_OK)
    fprintf(stderr, "mafalda-bench %s: the bound could not be measured (no %% of bound)\n", name);
  if (!o.json) print_header(&o);
  json_t *runs = json_array();
  int best = 0, best_janus = 0;
  bool any_failed_setup = false, any_loss = false;
  json_t *compare = json_array();
  run_t compared[MAX_COMPARED], compared_j[MAX_COMPARED];
  size_t ncompared = 0;
  for (int n = o.subscribers; n <= o.max_subscribers; n *= 2) {
    /* --sfu both: the same N on each, one after the other, for the comparison */
    bool pass_any = false;
    run_t pair[2];
    memset(pair, 0, sizeof pair);
    for (int k = 0; k < 2; k++) {
      if (!(k ? o.sfu_janus : o.sfu_mafalda)) continue;
      run_t x = run_one(&o, n, k == 1);
      plot_add(k, &x);
      pair[k] = x;
      if (!o.json) print_row(&x);
      json_array_append_new(runs, row_json(&x));
      if (!x.ok) any_failed_setup = true;
      if (!x.ok || x.r.lost > 0 || x.r.received == 0) any_loss = true;
      if (passed(&x)) *(k ? &best_janus : &best) = n;
      pass_any = pass_any || passed(&x);
    }
    if (o.sfu_mafalda && o.sfu_janus) {
      json_array_append_new(compare, compare_json(&pair[0], &pair[1]));
      if (ncompared < MAX_COMPARED) {
        compared[ncompared] = pair[0];
        compared_j[ncompared++] = pair[1];
      }
    }
    if (!pass_any || !o.search) break;
  }
  if (plot_path) plot_draw(plot_path, name);
  if (o.sfu_mafalda && o.sfu_janus && !o.json) print_compare(compared, compared_j, ncompared);
  if (o.json) {
    json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:o}", "scenario", name, "seconds",
                          o.seconds, "bitrate_kbps", o.bitrate_kbps, "fps", o.fps, "runs", runs);
    if (o.search) json_object_set_new(j, "max_subscribers_passed", json_integer(best));
    if (o.search && o.sfu_janus)
      json_object_set_new(j, "janus_max_subscribers_passed", json_integer(best_janus));
    if (o.sfu_mafalda && o.sfu_janus) json_object_set(j, "comparison", compare);
    char *t = json_dumps(j, JSON_INDENT(2));
    if (t) printf("%s\n", t);
    free(t);
    json_decref(j);
  } else {
    json_decref(runs);
    if (o.search && o.sfu_janus)
      printf("  Janus: max N with loss <= 1%% and p99 <= 100 ms: %d%s\n", best_janus,
             best_janus == 0 ? " (none passed)" : "");
    if (o.search && o.sfu_mafalda)
      printf("  max N with loss <= 1%% and p99 <= 100 ms: %d%s\n", best,
             best == 0 ? " (none passed)" : "");
  }
  json_decref(compare);
  if (o.assert_no_loss && any_loss) {
    fprintf(stderr, "mafalda-bench %s: packets were lost (or none arrived)\n", name);
    return 3;
  }
  return any_failed_setup && best == 0 && best_janus == 0 ? 1 : 0;
}

int mf_bench_fanout(int argc, char **argv) { return run_scenario(false, argc, argv); }
int mf_bench_room(int argc, char **argv) { return run_scenario(true, argc, argv); }
