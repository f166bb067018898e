/* mafalda-ctl against issue 9's local cluster: three mafalda-controller voters and two
 * mafalda-node processes (each on its own loopback address 127.0.0.2N, joined through
 * gossip, reporting load every 500 ms). Every command's table and --json output is
 * checked against what the real processes report: status (three replicas, one leader,
 * both nodes active with a load report), workers, routers and one router with its shards
 * and pipe, --watch; then the leader is killed (status shows it unreachable and the new
 * leader), node drain by id prefix, kill -9 of a node and node forget, and finally the
 * message when no controller answers (exit 3, the addresses tried).
 * Every child runs under `timeout -s KILL`; everything left is killed on exit.
 * Usage: ctl_cluster path/to/mafalda-controller path/to/mafalda-node path/to/mafalda-ctl */
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "controller/rpc_client.h"
#include "controller/rpc_server.h"
#include "proto/controller.pb-c.h"
#include "tests/support/test_cmd.h"
#include "tests/support/test_proc.h"

#define CONTROLLERS 3
#define NODES 2
#define PROCS (CONTROLLERS + NODES)

static const char *controller_bin, *node_bin, *ctl_bin;
static char dir[64];
static pid_t timeout_pid[PROCS];
static char rpc[CONTROLLERS][32], gossip[CONTROLLERS][32], all_rpc[128];
static char node_id[NODES][64];
static int failures, checks;
static char out[262144], err_text[65536];

static void cleanup(void) {
  mf_test_stop_wrapped(timeout_pid, PROCS);
  if (dir[0] && !getenv("MF_TEST_KEEP")) mf_test_remove_dir(dir);
}

static void fatal(const char *what) {
  fprintf(stderr, "FATAL: %s\n--- last ctl stdout:\n%s--- stderr:\n%s", what, out, err_text);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "for f in %s/*.log; do echo \"--- $f\"; tail -n 20 $f; done", dir);
  if (system(cmd) != 0) fprintf(stderr, "(no logs)\n");
  cleanup();
  exit(1);
}

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    checks++;                                                              \
    if (!(cond)) {                                                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                 \
      fprintf(stderr, __VA_ARGS__);                                        \
      fprintf(stderr, "\n--- stdout:\n%s--- stderr:\n%s", out, err_text); \
      failures++;                                                          \
    }                                                                      \
  } while (0)

static void spawn(int i, char **argv) {
  char log[128];
  snprintf(log, sizeof log, "%s/%d.log", dir, i);
  pid_t pid;
  if (mf_test_spawn_logged(argv, log, &pid) != 0) fatal("spawn");
  timeout_pid[i] = pid;
}

static void start_controllers(void) {
  char raft[CONTROLLERS][32], peers[512] = "";
  for (int i = 0; i < CONTROLLERS; i++) {
    snprintf(raft[i], sizeof raft[i], "127.0.0.1:%d", mf_test_free_port());
    snprintf(rpc[i], sizeof rpc[i], "127.0.0.1:%d", mf_test_free_port());
    snprintf(gossip[i], sizeof gossip[i], "127.0.0.1:%d", mf_test_free_port());
    size_t n = strlen(peers);
    snprintf(peers + n, sizeof(peers) - n, "%s%d@%s/%s", i ? "," : "", i + 1, raft[i], rpc[i]);
    n = strlen(all_rpc);
    snprintf(all_rpc + n, sizeof(all_rpc) - n, "%s%s", i ? "," : "", rpc[i]);
  }
  for (int i = 0; i < CONTROLLERS; i++) {
    char id[8], data[128];
    snprintf(id, sizeof id, "%d", i + 1);
    snprintf(data, sizeof data, "%s/ctl%d", dir, i + 1);
    char *argv[] = {"timeout", "-s", "KILL", "90", (char *)controller_bin, "--id", id,
                    "--listen", raft[i], "--rpc-listen", rpc[i], "--peers", peers,
                    "--data-dir", data, "--election-timeout", "300", "--gossip-listen",
                    gossip[i], NULL};
    spawn(i, argv);
  }
}

static void node_ip(int i, char *o, size_t size) { snprintf(o, size, "127.0.0.%d", 21 + i); }

static void start_node(int i) {
  char ip[32], api[48];
  node_ip(i, ip, sizeof ip);
  snprintf(api, sizeof api, "%s:%d", ip, mf_test_free_port());
  char *argv[] = {"timeout", "-s", "KILL", "90", (char *)node_bin, "--workers", "1",
                  "--rtc-listen-ip", ip, "--announced-ip", ip, "--rtc-port-base", "0",
                  "--controller=false", "--controllers", all_rpc, "--join", gossip[0],
                  "--gossip-port", "0", "--node-rpc-port", "0", "--api-listen", api,
                  "--api-grace-ms", "0", "--drain-timeout-ms", "20000",
                  /* a client's transport stays on the node it talks to (per-node checks) */
                  "--forward-transports=false", "--report-interval-ms", "500", NULL};
  spawn(CONTROLLERS + i, argv);
}

/* Runs mafalda-ctl with the NULL-terminated args; out / err_text get what it printed. */
static int ctl(const char *first, ...) {
  char *argv[32] = {(char *)ctl_bin, (char *)first};
  int n = 2;
  va_list ap;
  va_start(ap, first);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && n < 31) argv[n++] = (char *)a;
  va_end(ap);
  argv[n] = NULL;
  char capture[96];
  snprintf(capture, sizeof capture, "%s/ctl", dir);
  int st = mf_test_run_captured(argv, NULL, 30, capture, out, sizeof out, err_text,
                                sizeof err_text);
  if (st < 0) fatal("spawn mafalda-ctl");
  return st;
}

static json_t *out_json(void) { return json_loads(out, 0, NULL); }
static bool has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }
static const char *jstr(json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  return v ? v : "";
}
static json_int_t jint(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? json_integer_value(v) : -1;
}

static bool fits_80(void) { return mf_test_lines_fit(out, 80); }

/* The status --json node entry announcing node i's address. */
static json_t *status_node(json_t *status, int i) {
  char ip[32];
  node_ip(i, ip, sizeof ip);
  json_t *nodes = json_object_get(status, "nodes");
  for (size_t k = 0; k < json_array_size(nodes); k++)
    if (strcmp(jstr(json_array_get(nodes, k), "announced_ip"), ip) == 0)
      return json_array_get(nodes, k);
  return NULL;
}

/* Polls status --json until both nodes are active with a load report (20 s). */
static void wait_cluster(void) {
  double t0 = mf_test_now_s();
  while (mf_test_now_s() - t0 < 20) {
    if (ctl("--controller", all_rpc, "--json", "status", NULL) == 0) {
      json_t *j = out_json();
      bool ok = j != NULL;
      for (int i = 0; ok && i < NODES; i++) {
        json_t *n = status_node(j, i);
        ok = n && strcmp(jstr(n, "state"), "active") == 0 &&
             json_is_true(json_object_get(n, "reported"));
        if (ok) snprintf(node_id[i], sizeof node_id[i], "%s", jstr(n, "id"));
      }
      json_decref(j);
      if (ok) {
        printf("cluster up: 3 controllers, 2 active nodes reporting after %.1f s\n",
               mf_test_now_s() - t0);
        return;
      }
    }
    mf_test_sleep_ms(200);
  }
  fatal("the nodes did not become active with load reports within 20 s");
}

static void apply(const Mafalda__Controller__Command *cmd) {
  const char *urls[CONTROLLERS];
  char u[CONTROLLERS][48];
  for (int i = 0; i < CONTROLLERS; i++) {
    snprintf(u[i], sizeof u[i], "tcp://%s", rpc[i]);
    urls[i] = u[i];
  }
  mf_rpc_reply_t reply;
  if (mf_rpc_call_leader(urls, CONTROLLERS, NULL, MF_RPC_METHOD_APPLY, &cmd->base, 5000,
                         &reply) != MF_OK)
    fatal("apply: no answer");
  bool ok = reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK;
  if (!ok) fprintf(stderr, "apply refused: %s\n", reply.envelope->error_message);
  mf_rpc_reply_free(&reply);
  if (!ok) fatal("apply refused");
}

/* Router "room-a" with a shard on each node, a producer on node 0 and its pipe to node 1. */
static void populate_room(void) {
  Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
  r.id = (char *)"6c1d2e3f-0000-4000-8000-00000000000a";
  r.name = (char *)"room-a";
  mf_test_cmd_create_router(apply, &r);
  for (int i = 0; i < NODES; i++) mf_test_cmd_add_shard(apply, r.id, node_id[i]);
  mf_test_cmd_add_producer(apply, "prod-1", r.id, node_id[0], "video");
  mf_test_cmd_add_pipe(apply, "prod-1", node_id[0], node_id[1]);
}

static void test_status(void) {
  int rc = ctl("--controller", all_rpc, "status", NULL);
  printf("--- mafalda-ctl status\n%s", out);
  CHECK(rc == 0 && has(out, "Controllers: leader ") && has(out, "Nodes: 2 (2 active)") &&
            has(out, "Totals: 2 nodes (2 active), 2 workers") && fits_80(),
        "status table: exit %d", rc);
  int leaders = 0, followers = 0;
  /* Role cells are padded to "follower": the header's "leader N at" does not match. */
  for (const char *p = out; (p = strstr(p, "  leader    ")) != NULL; p++) leaders++;
  for (const char *p = out; (p = strstr(p, "  follower  ")) != NULL; p++) followers++;
  CHECK(leaders == 1 && followers == 2, "one leader row, two followers (%d, %d)", leaders,
        followers);
  char ip[32], short_id[16];
  node_ip(0, ip, sizeof ip);
  snprintf(short_id, sizeof short_id, "%.8s", node_id[0]);
  CHECK(has(out, short_id) && has(out, ip) && !has(out, node_id[0]), "node row, short id");

  rc = ctl("--controller", all_rpc, "--json", "status", NULL);
  json_t *j = out_json();
  json_t *ctrl = json_object_get(j, "controllers");
  int n_leaders = 0, reachable = 0;
  for (size_t i = 0; i < json_array_size(ctrl); i++) {
    json_t *c = json_array_get(ctrl, i);
    n_leaders += strcmp(jstr(c, "role"), "leader") == 0;
    reachable += json_is_true(json_object_get(c, "reachable")) && jint(c, "term") >= 1 &&
                 jint(c, "last_applied") > 0 && jint(c, "id") == (json_int_t)i + 1;
  }
  CHECK(rc == 0 && json_array_size(ctrl) == 3 && n_leaders == 1 && reachable == 3 &&
            jint(j, "leader_id") >= 1,
        "status --json controllers");
  for (int i = 0; i < NODES; i++) {
    json_t *n = status_node(j, i);
    json_t *up = json_object_get(n, "uptime_ms");
    CHECK(n && strcmp(jstr(n, "state"), "active") == 0 && jint(n, "workers") == 1 &&
              json_is_number(json_object_get(n, "load_percent")) &&
              json_number_value(json_object_get(n, "load_percent")) >= 0 &&
              jint(n, "transports") == 0 && jint(n, "consumers") == 0 &&
              (json_is_null(up) || json_integer_value(up) > 0) &&
              jint(n, "report_age_ms") < 10000,
          "status --json node %d", i);
  }
  json_t *totals = json_object_get(j, "totals");
  CHECK(jint(totals, "nodes") == 2 && jint(totals, "active_nodes") == 2 &&
            jint(totals, "workers") == 2 && jint(totals, "routers") == 1 &&
            jint(totals, "pipes") == 1,
        "status --json totals");
  json_decref(j);

  rc = ctl("--controller", all_rpc, "--watch", "--count", "2", "status", NULL);
  const char *first = strstr(out, "every 1 s");
  CHECK(rc == 0 && first && strstr(first + 1, "every 1 s"), "--watch --count 2: exit %d", rc);
}

static void test_tables(void) {
  int rc = ctl("--controller", all_rpc, "workers", NULL);
  printf("--- mafalda-ctl workers\n%s", out);
  char short_id[16];
  snprintf(short_id, sizeof short_id, "%.8s", node_id[1]);
  CHECK(rc == 0 && has(out, "PPS_IN") && has(out, short_id) && fits_80(), "workers: exit %d",
        rc);
  rc = ctl("--controller", all_rpc, "--json", "workers", NULL);
  json_t *j = out_json();
  bool ok = json_array_size(j) == 2;
  for (size_t i = 0; ok && i < 2; i++) {
    json_t *w = json_array_get(j, i);
    ok = json_is_true(json_object_get(w, "reported")) && jint(w, "worker") == 0 &&
         jint(w, "rtc_port") > 0 && json_is_number(json_object_get(w, "cpu_percent")) &&
         json_is_boolean(json_object_get(w, "stalled")) && jint(w, "shards") == 1;
  }
  CHECK(rc == 0 && ok, "workers --json");
  json_decref(j);

  rc = ctl("--controller", all_rpc, "nodes", NULL);
  CHECK(rc == 0 && has(out, "127.0.0.21") && has(out, "127.0.0.22") && fits_80(), "nodes");
  rc = ctl("--controller", all_rpc, "routers", NULL);
  CHECK(rc == 0 && has(out, "room-a"), "routers");
  rc = ctl("--controller", all_rpc, "routers", "room-a", NULL);
  printf("--- mafalda-ctl routers room-a\n%s", out);
  CHECK(rc == 0 && has(out, "Shards: 2") && has(out, "Producers: 1, pipes: 1") &&
            has(out, "prod-1") && fits_80(),
        "routers room-a: exit %d", rc);
  rc = ctl("--controller", all_rpc, "--json", "routers", "6c1d2e3f", NULL); /* id prefix */
  j = out_json();
  json_t *shards = json_object_get(j, "shards"),
         *pipe = json_array_get(json_object_get(j, "pipes"), 0);
  CHECK(rc == 0 && strcmp(jstr(j, "name"), "room-a") == 0 && json_array_size(shards) == 2 &&
            strcmp(jstr(pipe, "source_node_id"), node_id[0]) == 0 &&
            strcmp(jstr(pipe, "target_node_id"), node_id[1]) == 0 &&
            strcmp(jstr(pipe, "kind"), "video") == 0,
        "routers <id prefix> --json");
  /* Each node's only shard: the worker's transport count is the shard's (0 here). */
  for (size_t i = 0; i < json_array_size(shards); i++)
    CHECK(jint(json_array_get(shards, i), "transports") == 0, "shard %zu transports", i);
  json_decref(j);
  rc = ctl("--controller", all_rpc, "--json", "pipes", NULL);
  j = out_json();
  CHECK(rc == 0 && json_array_size(j) == 1, "pipes --json");
  json_decref(j);
}

/* Kill the leader: status names it unreachable and shows the new leader. */
static void test_leader_loss(void) {
  int rc = ctl("--controller", all_rpc, "--json", "status", NULL);
  json_t *j = out_json();
  json_int_t leader = jint(j, "leader_id");
  json_decref(j);
  if (rc != 0 || leader < 1 || leader > CONTROLLERS) fatal("no leader to kill");
  mf_test_stop_wrapped(&timeout_pid[leader - 1], 1);
  double t0 = mf_test_now_s();
  bool ok = false;
  while (!ok && mf_test_now_s() - t0 < 15) {
    rc = ctl("--controller", all_rpc, "--json", "status", NULL);
    j = out_json();
    json_t *ctrl = json_object_get(j, "controllers");
    int unreachable = 0, leaders = 0;
    for (size_t i = 0; i < json_array_size(ctrl); i++) {
      json_t *c = json_array_get(ctrl, i);
      unreachable += strcmp(jstr(c, "role"), "unreachable") == 0 &&
                     strcmp(jstr(c, "rpc_address"), rpc[leader - 1]) == 0;
      leaders += strcmp(jstr(c, "role"), "leader") == 0;
    }
    ok = rc == 0 && unreachable == 1 && leaders == 1 && jint(j, "leader_id") != leader;
    json_decref(j);
    if (!ok) mf_test_sleep_ms(200);
  }
  CHECK(ok, "after killing leader %lld: a new leader, the old one unreachable",
        (long long)leader);
  printf("leader %lld killed: status shows a new leader after %.1f s\n", (long long)leader,
         mf_test_now_s() - t0);
}

static void test_drain_forget(void) {
  char prefix[16];
  snprintf(prefix, sizeof prefix, "%.8s", node_id[0]);
  int rc = ctl("--controller", all_rpc, "node", "drain", prefix, NULL);
  char want[128];
  snprintf(want, sizeof want, "node %s draining", node_id[0]);
  CHECK(rc == 0 && has(out, want), "node drain <prefix>: exit %d", rc);
  rc = ctl("--controller", all_rpc, "--json", "status", NULL);
  json_t *j = out_json();
  CHECK(rc == 0 && strcmp(jstr(status_node(j, 0), "state"), "draining") == 0,
        "node 0 draining in status");
  json_decref(j);

  mf_test_stop_wrapped(&timeout_pid[CONTROLLERS + 1], 1);
  rc = ctl("--controller", all_rpc, "--json", "node", "forget", node_id[1], NULL);
  j = out_json();
  CHECK(rc == 0 && json_is_true(json_object_get(j, "ok")) && jint(j, "index") > 0,
        "node forget: exit %d", rc);
  json_decref(j);
  rc = ctl("--controller", all_rpc, "--json", "status", NULL);
  j = out_json();
  json_t *shards_left = json_object_get(json_object_get(j, "totals"), "shards");
  CHECK(rc == 0 && json_array_size(json_object_get(j, "nodes")) == 1 && !status_node(j, 1) &&
            json_integer_value(shards_left) == 1 &&
            jint(json_object_get(j, "totals"), "pipes") == 0,
        "forgotten node gone with its shard and pipe");
  json_decref(j);
  rc = ctl("--controller", all_rpc, "node", "forget", node_id[1], NULL);
  CHECK(rc == 1 && has(err_text, "STATUS_NOT_FOUND"), "forget again: exit %d", rc);
}

static void test_unreachable(void) {
  mf_test_stop_wrapped(timeout_pid, PROCS);
  int rc = ctl("--controller", all_rpc, "--timeout", "500", "status", NULL);
  char want[160];
  snprintf(want, sizeof want, "tried %s, %s and %s.", rpc[0], rpc[1], rpc[2]);
  CHECK(rc == 3 && has(err_text, "mafalda-ctl: status: no controller answered within 500 ms") &&
            has(err_text, want) && has(err_text, "Check that"),
        "no controller: exit %d", rc);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: ctl_cluster mafalda-controller mafalda-node mafalda-ctl\n");
    return 2;
  }
  controller_bin = argv[1];
  node_bin = argv[2];
  ctl_bin = argv[3];
  signal(SIGPIPE, SIG_IGN);
  snprintf(dir, sizeof dir, "/tmp/mf-ctlc-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  double t0 = mf_test_now_s();
  start_controllers();
  for (int i = 0; i < NODES; i++) start_node(i);
  wait_cluster();
  populate_room();
  test_status();
  test_tables();
  test_leader_loss();
  test_drain_forget();
  test_unreachable();
  printf("%d checks, %d failed, %.1f s\n", checks, failures, mf_test_now_s() - t0);
  cleanup();
  return failures ? 1 : 0;
}
