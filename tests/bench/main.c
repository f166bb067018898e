/* mafalda-bench: benchmark runner. Prints figures; asserts nothing (exit 0 unless the
 * setup itself fails, e.g. no leader elected).
 *
 *   mafalda-bench                 every figure with its defaults
 *   mafalda-bench list            the figures
 *   mafalda-bench controller [--writes N] [--clients K] [--controller-bin PATH]
 *   mafalda-bench pipes-count [--publishers P] [--subscribers S] [--workers W]
 *   mafalda-bench pipes-cpu [--packets N] [--pps R] [--size B]
 *   mafalda-bench bound [--packets N] [--size B] [--batch K] [--wall] [--json]
 *   mafalda-bench fanout [--node PATH] [--subscribers N] [--seconds S] [--bitrate-kbps B]
 *                        [--search] [--json]   (not run without a figure name)
 *   mafalda-bench room [the options of fanout]  (N x N)
 *   mafalda-bench pipe [--publishers P] [--subscribers S] [--mode workers|nodes|both]
 *   mafalda-bench churn [--rate R] [--stay S] [--subscribers L] [--seconds S]
 *
 * pipes-count, pipes-cpu, bound and fanout live in their own files (bench.h); this file
 * runs the controller figure and dispatches.
 *
 * controller: three mafalda-controller voters on loopback (temporary data directories,
 * children killed at exit); committed writes (CreateRouter through controller.Apply, each
 * acknowledged after the Raft commit and the FSM apply) per second, first one at a time,
 * then from K client threads each with its own connection per call (as mf_rpc_client
 * does); and the latency of one write (p50/p99 of the sequential run). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "controller/rpc_client.h"
#include "controller/rpc_server.h"
#include "proto/controller.pb-c.h"
#include "tests/bench/bench.h"
#include "tests/support/test_proc.h"

#ifndef MF_BENCH_CONTROLLER
#define MF_BENCH_CONTROLLER "mafalda-controller"
#endif

extern char **environ;

#define VOTERS 3
#define MAX_CLIENTS 64

/* ---- the cluster ---- */

static char dir[64];
static pid_t timeout_pid[VOTERS]; /* the `timeout` wrappers; controllers are their children */
static int raft_port[VOTERS], rpc_port[VOTERS];
static char url_buf[VOTERS][64];
static const char *urls[VOTERS];

/* SIGTERM to each controller (clean stop), a short grace, then SIGKILL whatever is left;
 * the `timeout` wrappers are only killed after their child (else it would be orphaned). */
static void stop_cluster(void) {
  for (int i = 0; i < VOTERS; i++) {
    if (timeout_pid[i] <= 0) continue;
    pid_t c = mf_test_child_of(timeout_pid[i]);
    if (c > 0) kill(c, SIGTERM);
  }
  for (int i = 0; i < VOTERS; i++) {
    if (timeout_pid[i] <= 0) continue;
    for (int t = 0; t < 100; t++) {
      if (waitpid(timeout_pid[i], NULL, WNOHANG) == timeout_pid[i]) {
        timeout_pid[i] = 0;
        break;
      }
      mf_test_sleep_ms(20);
    }
    if (timeout_pid[i] > 0) {
      mf_test_kill_wrapped(timeout_pid[i]);
      waitpid(timeout_pid[i], NULL, 0);
      timeout_pid[i] = 0;
    }
  }
  if (dir[0] && !getenv("MF_BENCH_KEEP")) {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    dir[0] = '\0';
  }
}

static bool start_cluster(const char *bin) {
  snprintf(dir, sizeof(dir), "/tmp/mf-bench-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    dir[0] = '\0';
    return false;
  }
  for (int i = 0; i < VOTERS; i++) {
    raft_port[i] = mf_test_free_port();
    rpc_port[i] = mf_test_free_port();
    snprintf(url_buf[i], sizeof(url_buf[i]), "tcp://127.0.0.1:%d", rpc_port[i]);
    urls[i] = url_buf[i];
  }
  char peers[512] = "";
  for (int k = 0; k < VOTERS; k++) {
    char one[96];
    snprintf(one, sizeof(one), "%s%d@127.0.0.1:%d/127.0.0.1:%d", k ? "," : "", k + 1,
             raft_port[k], rpc_port[k]);
    strcat(peers, one);
  }
  for (int i = 0; i < VOTERS; i++) {
    char id[16], listen[32], rpc[32], data[128], log[128];
    snprintf(id, sizeof(id), "%d", i + 1);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", raft_port[i]);
    snprintf(rpc, sizeof(rpc), "127.0.0.1:%d", rpc_port[i]);
    snprintf(data, sizeof(data), "%s/data%d", dir, i + 1);
    snprintf(log, sizeof(log), "%s/%d.log", dir, i + 1);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    char *argv[] = {"timeout", "-s", "KILL", "600", (char *)bin, "--id", id, "--listen",
                    listen, "--rpc-listen", rpc, "--peers", peers, "--data-dir", data,
                    "--election-timeout", "300", "--log-level", "warn", NULL};
    pid_t pid;
    int rv = posix_spawnp(&pid, "timeout", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rv != 0) {
      fprintf(stderr, "mafalda-bench: cannot start %s: %s\n", bin, strerror(rv));
      return false;
    }
    timeout_pid[i] = pid;
  }
  return true;
}

static int find_leader(int timeout_ms) {
  double deadline = mf_test_now_s() + timeout_ms / 1000.0;
  while (mf_test_now_s() < deadline) {
    for (int i = 0; i < VOTERS; i++)
      if (mf_rpc_is_leader(urls[i], 300)) return i;
    mf_test_sleep_ms(50);
  }
  return -1;
}

/* ---- writes ---- */

/* One committed CreateRouter; returns its latency in seconds, or -1. */
static double write_router(const char *id, size_t *hint) {
  Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
  r.id = (char *)id;
  r.name = (char *)id;
  Mafalda__Controller__CreateRouter cr = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
  cr.router = &r;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER;
  cmd.create_router = &cr;
  mf_rpc_reply_t reply;
  double t0 = mf_test_now_s();
  mf_err_t err = mf_rpc_call_leader(urls, VOTERS, hint, MF_RPC_METHOD_APPLY, &cmd.base, 10000,
                                    &reply);
  double dt = mf_test_now_s() - t0;
  if (err != MF_OK) return -1;
  bool ok = reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK;
  if (!ok) fprintf(stderr, "mafalda-bench: write %s refused: %s\n", id,
                   reply.envelope->error_message);
  mf_rpc_reply_free(&reply);
  return ok ? dt : -1;
}

typedef struct {
  int index, writes, leader;
  int failed;
  double *latency; /* writes entries */
} client_t;

static void *client_main(void *arg) {
  client_t *c = arg;
  size_t hint = (size_t)c->leader;
  for (int k = 0; k < c->writes; k++) {
    char id[48];
    snprintf(id, sizeof(id), "c%d-%d", c->index, k);
    c->latency[k] = write_router(id, &hint);
    if (c->latency[k] < 0) c->failed++;
  }
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double percentile(double *sorted, size_t n, double p) {
  if (n == 0) return 0;
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return sorted[i < n ? i : n - 1];
}

/* Sorts the successful latencies to the front; returns how many there are. */
static size_t successes(double *lat, size_t n) {
  size_t ok = 0;
  for (size_t i = 0; i < n; i++)
    if (lat[i] >= 0) lat[ok++] = lat[i];
  qsort(lat, ok, sizeof(double), cmp_double);
  return ok;
}

static int bench_controller(int writes, int clients, const char *bin) {
  if (!start_cluster(bin)) {
    stop_cluster();
    return 1;
  }
  int leader = find_leader(20000);
  if (leader < 0) {
    fprintf(stderr, "mafalda-bench: no leader elected within 20 s (logs in %s)\n", dir);
    stop_cluster();
    return 1;
  }
  size_t hint = (size_t)leader;
  for (int k = 0; k < 20; k++) { /* warm-up: page in, first snapshots of the log files */
    char id[32];
    snprintf(id, sizeof(id), "warm-%d", k);
    write_router(id, &hint);
  }

  double *seq = calloc((size_t)writes, sizeof(double));
  double *conc = calloc((size_t)writes, sizeof(double));
  client_t *cl = calloc((size_t)clients, sizeof(client_t));
  pthread_t *th = calloc((size_t)clients, sizeof(pthread_t));
  if (!seq || !conc || !cl || !th) {
    fprintf(stderr, "mafalda-bench: out of memory\n");
    stop_cluster();
    return 1;
  }

  double t0 = mf_test_now_s();
  for (int k = 0; k < writes; k++) {
    char id[32];
    snprintf(id, sizeof(id), "s-%d", k);
    seq[k] = write_router(id, &hint);
  }
  double seq_s = mf_test_now_s() - t0;
  size_t seq_ok = successes(seq, (size_t)writes);

  int per = writes / clients > 0 ? writes / clients : 1;
  int started = 0;
  t0 = mf_test_now_s();
  for (int i = 0; i < clients; i++) {
    cl[i].index = i;
    cl[i].writes = per;
    cl[i].leader = (int)hint;
    cl[i].latency = calloc((size_t)per, sizeof(double));
    if (!cl[i].latency || pthread_create(&th[i], NULL, client_main, &cl[i]) != 0) break;
    started++;
  }
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  double conc_s = mf_test_now_s() - t0;
  size_t conc_n = 0;
  for (int i = 0; i < started; i++) {
    for (int k = 0; k < per; k++) conc[conc_n++] = cl[i].latency[k];
    free(cl[i].latency);
  }
  size_t conc_ok = successes(conc, conc_n);

  printf("controller: %d voters on loopback, election timeout 300 ms, one nng connection "
         "per request\n", VOTERS);
  printf("  %-44s %10s\n", "figure", "value");
  printf("  %-44s %10.0f\n", "sequential committed writes/s", seq_ok / seq_s);
  printf("  %-44s %10.2f\n", "write latency p50 (ms)", 1000 * percentile(seq, seq_ok, 0.50));
  printf("  %-44s %10.2f\n", "write latency p99 (ms)", 1000 * percentile(seq, seq_ok, 0.99));
  char label[64];
  snprintf(label, sizeof(label), "concurrent committed writes/s (%d clients)", started);
  printf("  %-44s %10.0f\n", label, conc_ok / conc_s);
  printf("  %-44s %10.2f\n", "  latency p50 under load (ms)",
         1000 * percentile(conc, conc_ok, 0.50));
  printf("  %-44s %10.2f\n", "  latency p99 under load (ms)",
         1000 * percentile(conc, conc_ok, 0.99));
  printf("  acknowledged: %zu/%d sequential, %zu/%zu concurrent\n", seq_ok, writes, conc_ok,
         conc_n);

  free(seq);
  free(conc);
  free(cl);
  free(th);
  stop_cluster();
  return 0;
}

/* ---- command line ---- */

static void usage(FILE *out) {
  fprintf(out,
          "Usage: mafalda-bench [FIGURE [OPTIONS]]\n"
          "  (no figure)   run every figure with its defaults\n"
          "  list          list the figures\n"
          "  controller [--writes N] [--clients K] [--controller-bin PATH]\n"
          "                committed writes/s and write latency, 3 voters on loopback\n"
          "                (defaults: 1000 writes, 8 clients, %s)\n"
          "  pipes-count [--publishers P] [--subscribers S] [--workers W] [--transport-pps X]\n"
          "                pipes a room needs under the controller's scheduler vs a full\n"
          "                mesh (defaults: 20 publishers, 200 subscribers, 4 workers, 500)\n"
          "  pipes-cpu [--packets N] [--pps R] [--size B]\n"
          "                CPU ns per forwarded packet: direct consumer vs through an\n"
          "                intra-node pipe (defaults: 200000 packets, 20000 pps, 1100 bytes)\n"
          "  bound [--packets N] [--size B] [--batch K] [--wall] [--json]\n"
          "                the most one core can forward: SRTP unprotect + protect + batched\n"
          "                UDP I/O per packet, thread CPU time (defaults: 200000 packets,\n"
          "                1100 bytes, batches of 32)\n"
          "  fanout [--node PATH] [--subscribers N] [--seconds S] [--bitrate-kbps B] [--fps F]\n"
          "         [--keyframe-s K] [--warmup-s W] [--search] [--max-subscribers M] [--json]\n"
          "                WebRTC load: 1 publisher (VP8 + Opus shaped) -> N subscribers on a\n"
          "                mafalda-node of its own; fwd pkt/s, loss, latency, SFU CPU per\n"
          "                million packets, RSS per consumer; --search doubles N until loss\n"
          "                > 1%% or p99 > 100 ms (defaults: 10 subscribers, 5 s, 600 kbit/s)\n"
          "                --plot OUT.png: loss and CPU/Mpkt against N (gnuplot); every run\n"
          "                also prints the SFU's %% of the bound (measured at start)\n"
          "  room [the options of fanout]\n"
          "                N x N: N peers each publish and consume the N - 1 others\n"
          "                (--subscribers is N, default 5)\n"
          "  pipe [--publishers P] [--subscribers S] [--mode workers|nodes|both] [--node PATH]\n"
          "       [--seconds S] [--json]   P publishers -> S subscribers of one room split over\n"
          "                2 workers of a node and over 2 nodes (+ a controller); pipes counted\n"
          "                from /metrics, CPU of every SFU process summed (defaults: 4, 20)\n"
          "  churn [--rate R] [--stay S] [--subscribers L] [--seconds S] [--node PATH] [--json]\n"
          "                R joins/s (each staying S s) next to a publisher and L long-lived\n"
          "                subscribers: joins/s achieved, join latency (transport created ->\n"
          "                first RTP) p50/p99, long-lived loss, node RSS (defaults: 5, 2, 4, 10)\n",
          MF_BENCH_CONTROLLER);
}

static bool parse_int(const char *s, int min, int max, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) return false;
  *out = (int)v;
  return true;
}

static int run_controller(int argc, char **argv) {
  int writes = 1000, clients = 8;
  const char *bin = MF_BENCH_CONTROLLER;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--writes") == 0 && v && parse_int(v, 1, 10000000, &writes)) {
      i++;
    } else if (strcmp(a, "--clients") == 0 && v && parse_int(v, 1, MAX_CLIENTS, &clients)) {
      i++;
    } else if (strcmp(a, "--controller-bin") == 0 && v) {
      bin = v;
      i++;
    } else {
      fprintf(stderr, "mafalda-bench controller: bad option '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  return bench_controller(writes, clients, bin);
}

int main(int argc, char **argv) {
  /* A client thread's write to a controller that just died must not kill the runner. */
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    int rc = run_controller(0, NULL);
    int rc2 = mf_bench_pipes_count(0, NULL);
    int rc3 = mf_bench_pipes_cpu(0, NULL);
    int rc4 = mf_bench_bound(0, NULL);
    return rc ? rc : rc2 ? rc2 : rc3 ? rc3 : rc4;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "list") == 0) {
    printf("controller\npipes-count\npipes-cpu\nbound\nfanout\nroom\npipe\nchurn\n");
    return 0;
  }
  if (strcmp(argv[1], "controller") == 0) return run_controller(argc - 2, argv + 2);
  if (strcmp(argv[1], "pipes-count") == 0) return mf_bench_pipes_count(argc - 2, argv + 2);
  if (strcmp(argv[1], "pipes-cpu") == 0) return mf_bench_pipes_cpu(argc - 2, argv + 2);
  if (strcmp(argv[1], "bound") == 0) return mf_bench_bound(argc - 2, argv + 2);
  if (strcmp(argv[1], "fanout") == 0) return mf_bench_fanout(argc - 2, argv + 2);
  if (strcmp(argv[1], "room") == 0) return mf_bench_room(argc - 2, argv + 2);
  if (strcmp(argv[1], "pipe") == 0) return mf_bench_pipe(argc - 2, argv + 2);
  if (strcmp(argv[1], "churn") == 0) return mf_bench_churn(argc - 2, argv + 2);
  fprintf(stderr, "mafalda-bench: unknown figure '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
