/* mafalda-ctl against a real single-voter mafalda-controller on loopback: the state and
 * load reports are written through RPC (fixed values, so loads, uptimes and totals are
 * exact), then every ctl command is run as a process and its output (tables and --json)
 * and exit status checked, --watch included; then writes through ctl (node drain/forget,
 * by id prefix), voter membership (a second replica started with --join is added and
 * removed), and bad input (usage errors exit 2, refusals exit 1, unreachable controllers
 * exit 3 with the addresses tried). ctl_cluster.c runs ctl against real nodes.
 * Every child runs under `timeout -s KILL`; the controllers themselves are signalled.
 * Usage: ctl_cli path/to/mafalda-controller path/to/mafalda-ctl */
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "controller/rpc_client.h"
#include "controller/rpc_server.h"
#include "proto/cluster.pb-c.h"
#include "proto/controller.pb-c.h"
#include "tests/support/test_cmd.h"
#include "tests/support/test_proc.h"

extern char **environ;

static const char *controller_bin, *ctl_bin;
static char dir[64];
static pid_t timeout_pid[2];
static int raft_port[2], rpc_port[2];
static char rpc_url[64];
static int failures, checks;
static char out[65536], err_text[65536];

#define CHECK(cond, ...)                                   \
  do {                                                     \
    checks++;                                              \
    if (!(cond)) {                                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n--- stdout:\n%s--- stderr:\n%s", out, err_text); \
      failures++;                                          \
    }                                                      \
  } while (0)

/* Kill the controller, then its `timeout` wrapper (killing only the wrapper would orphan
 * the controller). */
static void kill_replica(int i) { mf_test_stop_wrapped(&timeout_pid[i], 1); }

static void cleanup(void) {
  kill_replica(0);
  kill_replica(1);
  if (dir[0] && !getenv("MF_TEST_KEEP")) mf_test_remove_dir(dir);
}

static void fatal(const char *what) {
  fprintf(stderr, "FATAL: %s\n", what);
  for (int i = 0; i < 2; i++) {
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "tail -n 30 %s/%d.log 2>/dev/null", dir, i + 1);
    if (system(cmd) != 0) fprintf(stderr, "(no log)\n");
  }
  cleanup();
  exit(1);
}

static void start_replica(int i, const char *peers, bool join) {
  char id[16], listen[32], rpc[32], data[128], log[128];
  snprintf(id, sizeof(id), "%d", i + 1);
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", raft_port[i]);
  snprintf(rpc, sizeof(rpc), "127.0.0.1:%d", rpc_port[i]);
  snprintf(data, sizeof(data), "%s/data%d", dir, i + 1);
  snprintf(log, sizeof(log), "%s/%d.log", dir, i + 1);
  char *argv[20] = {"timeout", "-s", "KILL", "60", (char *)controller_bin, "--id", id,
                    "--listen", listen, "--rpc-listen", rpc, "--data-dir", data,
                    "--election-timeout", "200"};
  int n = 15;
  if (peers) {
    argv[n++] = "--peers";
    argv[n++] = (char *)peers;
  }
  if (join) argv[n++] = "--join";
  argv[n] = NULL;
  pid_t pid;
  if (mf_test_spawn_logged(argv, log, &pid) != 0) fatal("spawn timeout/mafalda-controller");
  timeout_pid[i] = pid;
}

static bool wait_leader(void) {
  for (int waited = 0; waited < 20000; waited += 50) {
    if (mf_rpc_is_leader(rpc_url, 500)) return true;
    mf_test_sleep_ms(50);
  }
  return false;
}

static void apply(const Mafalda__Controller__Command *cmd) {
  const char *urls[] = {rpc_url};
  mf_rpc_reply_t reply;
  mf_err_t e = mf_rpc_call_leader(urls, 1, NULL, MF_RPC_METHOD_APPLY, &cmd->base, 5000, &reply);
  if (e != MF_OK) fatal("apply: no answer");
  bool ok = reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK;
  if (!ok) fprintf(stderr, "apply refused: %s\n", reply.envelope->error_message);
  mf_rpc_reply_free(&reply);
  if (!ok) fatal("apply refused");
}

static void register_node(const char *id, unsigned workers,
                          Mafalda__Controller__NodeState state) {
  Mafalda__Controller__Worker w[4], *wp[4];
  for (unsigned i = 0; i < workers; i++) {
    Mafalda__Controller__Worker init = MAFALDA__CONTROLLER__WORKER__INIT;
    w[i] = init;
    w[i].index = i;
    w[i].rtc_port = 40000 + i;
    wp[i] = &w[i];
  }
  Mafalda__Controller__Node node = MAFALDA__CONTROLLER__NODE__INIT;
  node.id = (char *)id;
  node.name = (char *)"edge";
  node.rpc_address = (char *)"127.0.0.1:9000";
  node.announced_ip = (char *)"192.0.2.7";
  node.n_workers = workers;
  node.workers = wp;
  node.state = state;
  Mafalda__Controller__RegisterNode reg = MAFALDA__CONTROLLER__REGISTER_NODE__INIT;
  reg.node = &node;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_REGISTER_NODE;
  cmd.register_node = &reg;
  apply(&cmd);
}

static void populate(void) {
  register_node("n1", 2, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE);
  register_node("n2", 1, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE);
  Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
  r.id = (char *)"r1";
  r.name = (char *)"room one";
  r.codecs_json = (char *)"[{\"mimeType\":\"audio/opus\"}]";
  r.app_data_json = (char *)"not json";
  mf_test_cmd_create_router(apply, &r);
  mf_test_cmd_add_shard(apply, "r1", "n1");
  mf_test_cmd_add_shard(apply, "r1", "n2");
  mf_test_cmd_add_producer(apply, "p1", "r1", "n1", "audio");
  mf_test_cmd_add_pipe(apply, "p1", "n1", "n2");
}

static uint64_t load_seq;

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* What a node's agent sends every second (cluster.ReportLoad), with chosen numbers. */
static void report_load(const char *node_id, uint64_t uptime_ms, size_t n,
                        const Mafalda__Cluster__WorkerLoad *loads) {
  Mafalda__Cluster__WorkerLoad w[4], *wp[4];
  for (size_t i = 0; i < n; i++) {
    w[i] = loads[i];
    wp[i] = &w[i];
  }
  Mafalda__Cluster__LoadReport r = MAFALDA__CLUSTER__LOAD_REPORT__INIT;
  r.node_id = (char *)node_id;
  r.sequence = ++load_seq;
  r.timestamp_ms = wall_ms();
  r.uptime_ms = uptime_ms;
  r.n_workers = n;
  r.workers = wp;
  const char *urls[] = {rpc_url};
  mf_rpc_reply_t reply;
  if (mf_rpc_call_leader(urls, 1, NULL, MF_RPC_METHOD_REPORT_LOAD, &r.base, 5000, &reply) !=
      MF_OK)
    fatal("report load: no answer");
  bool ok = reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK;
  mf_rpc_reply_free(&reply);
  if (!ok) fatal("report load refused");
}

static Mafalda__Cluster__WorkerLoad worker_load(uint32_t index, float cpu, uint64_t in,
                                               uint64_t out_pps, uint32_t transports,
                                               uint32_t producers, uint32_t consumers,
                                               bool stalled) {
  Mafalda__Cluster__WorkerLoad w = MAFALDA__CLUSTER__WORKER_LOAD__INIT;
  w.index = index;
  w.cpu = cpu;
  w.packets_in_per_sec = in;
  w.packets_out_per_sec = out_pps;
  w.transports = transports;
  w.producers = producers;
  w.consumers = consumers;
  w.stalled = stalled;
  return w;
}

/* n1: worker 0 at 25 % cpu, worker 1 at 50 % (the node's load); n2: 10 % cpu but
 * 250k packets/s against the default capacity of 200k: 125 %, stalled. */
static void report_loads(void) {
  Mafalda__Cluster__WorkerLoad n1[2] = {worker_load(0, 0.25f, 1000, 3000, 3, 1, 2, false),
                                        worker_load(1, 0.5f, 10, 20, 1, 0, 1, false)};
  report_load("n1", 3723000, 2, n1); /* 1h02m03s */
  Mafalda__Cluster__WorkerLoad n2[1] = {worker_load(0, 0.1f, 150000, 100000, 2, 0, 5, true)};
  report_load("n2", 45000, 1, n2);
}

/* Runs mafalda-ctl with args (NULL-terminated); env_extra ("K=V" or NULL) is added to the
 * environment. --controller is NOT added: callers pass it (or the environment does).
 * Returns the exit status; out / err_text hold what it printed. */
static int ctl(const char *env_extra, ...) {
  char *argv[32] = {(char *)ctl_bin};
  int n = 1;
  va_list ap;
  va_start(ap, env_extra);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && n < 31) argv[n++] = (char *)a;
  va_end(ap);
  argv[n] = NULL;
  char *envp[256];
  int ne = 0;
  for (char **e = environ; *e && ne < 250; e++)
    if (strncmp(*e, "MAFALDA_", 8) != 0) envp[ne++] = *e;
  if (env_extra) envp[ne++] = (char *)env_extra;
  envp[ne] = NULL;
  char capture[96];
  snprintf(capture, sizeof(capture), "%s/ctl", dir);
  int st = mf_test_run_captured(argv, envp, 30, capture, out, sizeof(out), err_text,
                                sizeof(err_text));
  if (st < 0) fatal("spawn mafalda-ctl");
  return st;
}

static json_t *out_json(void) {
  json_error_t e;
  return json_loads(out, 0, &e);
}

static bool has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static json_int_t json_path_int(json_t *o, const char *a, const char *b) {
  json_t *v = json_object_get(o, a);
  if (b) v = json_object_get(v, b);
  return json_is_integer(v) ? json_integer_value(v) : -1;
}

static const char *jstr(json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  return v ? v : "";
}

/* The line of out that contains needle (copied into line), or false. */
static bool line_with(const char *needle, char *line, size_t size) {
  const char *p = strstr(out, needle);
  if (!p) return false;
  while (p > out && p[-1] != '\n') p--;
  const char *e = strchr(p, '\n');
  size_t n = e ? (size_t)(e - p) : strlen(p);
  if (n >= size) n = size - 1;
  memcpy(line, p, n);
  line[n] = '\0';
  return true;
}

/* The line of out whose first two words are w1 and w2 (copied into line), or false. */
static bool row(const char *w1, const char *w2, char *line, size_t size) {
  for (const char *p = out; *p;) {
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    char buf[512], a[128] = "", b[128] = "";
    snprintf(buf, sizeof(buf), "%.*s", (int)(n < sizeof(buf) ? n : sizeof(buf) - 1), p);
    if (sscanf(buf, "%127s %127s", a, b) == 2 && strcmp(a, w1) == 0 && strcmp(b, w2) == 0) {
      size_t len = strlen(buf) < size ? strlen(buf) : size - 1;
      memcpy(line, buf, len);
      line[len] = '\0';
      return true;
    }
    if (!e) break;
    p = e + 1;
  }
  line[0] = '\0';
  return false;
}

/* Every line of out fits in 80 columns. */
static bool fits_80(void) { return mf_test_lines_fit(out, 80); }

/* status with a live and a dead replica address, load reports of both nodes. */
static void test_status(const char *c) {
  char dead[64], both[160], line[256];
  snprintf(dead, sizeof(dead), "127.0.0.1:%d", mf_test_free_port());
  snprintf(both, sizeof(both), "%s,%s", c, dead);
  int rc = ctl(NULL, "--controller", both, "status", NULL);
  CHECK(rc == 0, "status exit %d", rc);
  CHECK(
      has(out, "Controllers: leader 1 at ") && has(out, "term ") && has(out, "Nodes: 2 (2 active)"),
      "status header lines");
  CHECK(line_with(" leader ", line, sizeof(line)) && has(line, c), "leader row: '%s'", line);
  CHECK(line_with(dead, line, sizeof(line)) && has(line, "unreachable"), "dead replica row");
  CHECK(has(out, "NODE") && has(out, "LOAD") && has(out, "UPTIME"), "node table headers");
  CHECK(line_with("  n1 ", line, sizeof(line)) && has(line, "active") && has(line, "50%") &&
            has(line, "1h02m") && has(line, "127.0.0.1:9000"),
        "n1 row: '%s'", line);
  CHECK(line_with("  n2 ", line, sizeof(line)) && has(line, "125%!") && has(line, "45s"),
        "n2 row (overloaded, stalled worker): '%s'", line);
  CHECK(has(out, "Totals: 2 nodes (2 active), 3 workers, 6 transports, 1 producer, "
                 "8 consumers") &&
            has(out, "State:  1 router, 2 shards, 1 producer, 1 pipe (load reports: 2/2 nodes)"),
        "totals");
  CHECK(fits_80(), "status fits 80 columns");

  rc = ctl(NULL, "--controller", both, "--json", "status", NULL);
  json_t *j = out_json();
  CHECK(rc == 0 && j, "status --json exit %d / parses", rc);
  CHECK(json_path_int(j, "leader_id", NULL) == 1 && json_path_int(j, "term", NULL) >= 1 &&
            json_path_int(j, "counts", "nodes") == 2 &&
            json_path_int(j, "counts", "pipes") == 1 &&
            json_is_true(json_object_get(j, "is_leader")),
        "status --json fields");
  json_t *ctrl = json_object_get(j, "controllers");
  json_t *c0 = json_array_get(ctrl, 0), *c1 = json_array_get(ctrl, 1);
  CHECK(json_array_size(ctrl) == 2 && json_path_int(c0, "id", NULL) == 1 &&
            strcmp(jstr(c0, "role"), "leader") == 0 && strcmp(jstr(c0, "rpc_address"), c) == 0 &&
            json_path_int(c0, "term", NULL) >= 1 && json_path_int(c0, "last_applied", NULL) > 0 &&
            json_is_true(json_object_get(c0, "reachable")),
        "controllers[0]");
  CHECK(json_is_null(json_object_get(c1, "id")) && strcmp(jstr(c1, "role"), "unreachable") == 0 &&
            json_is_false(json_object_get(c1, "reachable")) &&
            strcmp(jstr(c1, "rpc_address"), dead) == 0,
        "controllers[1] unreachable");
  json_t *nodes = json_object_get(j, "nodes");
  json_t *n1 = json_array_get(nodes, 0), *n2 = json_array_get(nodes, 1);
  CHECK(json_array_size(nodes) == 2 && strcmp(jstr(n1, "id"), "n1") == 0 &&
            strcmp(jstr(n1, "state"), "active") == 0 && json_path_int(n1, "workers", NULL) == 2 &&
            json_is_true(json_object_get(n1, "reported")) &&
            json_real_value(json_object_get(n1, "load_percent")) == 50.0 &&
            json_path_int(n1, "transports", NULL) == 4 &&
            json_path_int(n1, "producers", NULL) == 1 &&
            json_path_int(n1, "consumers", NULL) == 3 &&
            json_path_int(n1, "uptime_ms", NULL) == 3723000 &&
            json_path_int(n1, "stalled_workers", NULL) == 0 &&
            json_path_int(n1, "report_age_ms", NULL) >= -1000 &&
            json_path_int(n1, "report_age_ms", NULL) < 60000,
        "nodes[0] n1");
  CHECK(strcmp(jstr(n2, "id"), "n2") == 0 &&
            json_real_value(json_object_get(n2, "load_percent")) == 125.0 &&
            json_path_int(n2, "stalled_workers", NULL) == 1,
        "nodes[1] n2");
  CHECK(json_path_int(j, "totals", "workers") == 3 &&
            json_path_int(j, "totals", "transports") == 6 &&
            json_path_int(j, "totals", "consumers") == 8 &&
            json_path_int(j, "totals", "active_nodes") == 2 &&
            json_path_int(j, "totals", "registered_producers") == 1,
        "totals");
  json_decref(j);

  /* --watch: two refreshes, then exit 0; as JSON one document per line. */
  rc = ctl(NULL, "--controller", c, "--watch", "--count", "2", "status", NULL);
  const char *second = strstr(out, "every 1 s");
  CHECK(rc == 0 && second && strstr(second + 1, "every 1 s") && !has(out, "\033["),
        "--watch --count 2 (no escape codes when stdout is a file): exit %d", rc);
  rc = ctl(NULL, "--controller", c, "--watch", "--count=2", "--json", "status", NULL);
  char *nl = strchr(out, '\n');
  json_error_t je;
  json_t *first = nl ? json_loadb(out, (size_t)(nl - out), 0, &je) : NULL;
  json_t *next = nl ? json_loads(nl + 1, 0, &je) : NULL;
  CHECK(rc == 0 && first && next && json_path_int(next, "counts", "nodes") == 2,
        "--watch --json: one document per line");
  json_decref(first);
  json_decref(next);
}

static void test_workers_and_router(const char *c) {
  char line[256];
  int rc = ctl(NULL, "--controller", c, "workers", NULL);
  CHECK(rc == 0 && has(out, "PPS_IN") && has(out, "STALLED"), "workers exit %d", rc);
  CHECK(row("n1", "0", line, sizeof(line)) && has(line, "25%") && has(line, "1000") &&
            has(line, "3000") && has(line, " no"),
        "workers n1/0 row: '%s'", line);
  CHECK(row("n2", "0", line, sizeof(line)) && has(line, "10%") && has(line, "125%") &&
            has(line, "yes"),
        "workers n2/0 row: '%s'", line);
  CHECK(fits_80(), "workers fits 80 columns");
  rc = ctl(NULL, "--controller", c, "--json", "workers", NULL);
  json_t *j = out_json();
  json_t *w1 = json_array_get(j, 1), *w2 = json_array_get(j, 2);
  CHECK(rc == 0 && json_array_size(j) == 3 && strcmp(jstr(w1, "node_id"), "n1") == 0 &&
            json_path_int(w1, "worker", NULL) == 1 &&
            json_path_int(w1, "rtc_port", NULL) == 40001 &&
            json_real_value(json_object_get(w1, "cpu_percent")) == 50.0 &&
            json_path_int(w1, "transports", NULL) == 1 &&
            json_path_int(w1, "packets_out_per_sec", NULL) == 20 &&
            json_is_false(json_object_get(w1, "stalled")) &&
            json_path_int(json_array_get(j, 0), "shards", NULL) == 1,
        "workers --json n1/1");
  CHECK(strcmp(jstr(w2, "node_id"), "n2") == 0 && json_is_true(json_object_get(w2, "stalled")) &&
            json_real_value(json_object_get(w2, "load_percent")) == 125.0 &&
            json_path_int(w2, "consumers", NULL) == 5,
        "workers --json n2/0");
  json_decref(j);

  /* One router, by id and by name. */
  rc = ctl(NULL, "--controller", c, "routers", "r1", NULL);
  CHECK(rc == 0 && has(out, "Router r1 \"room one\"") && has(out, "Shards: 2") &&
            has(out, "Producers: 1, pipes: 1"),
        "routers r1 exit %d", rc);
  CHECK(line_with("p1  ", line, sizeof(line)) && has(line, "audio") && has(line, "n1/0") &&
            has(line, "-> n2/0"),
        "router pipe row: '%s'", line);
  /* n1/0 holds only r1's shard: its worker's transports are the shard's. */
  CHECK(line_with("  n1 ", line, sizeof(line)) && has(line, " 3 ") && has(line, "active"),
        "router shard row n1: '%s'", line);
  CHECK(fits_80(), "routers r1 fits 80 columns");
  rc = ctl(NULL, "--controller", c, "--json", "routers", "room one", NULL);
  j = out_json();
  json_t *shards = json_object_get(j, "shards"), *pipes = json_object_get(j, "pipes");
  json_t *s0 = json_array_get(shards, 0), *p0 = json_array_get(pipes, 0);
  CHECK(rc == 0 && strcmp(jstr(j, "id"), "r1") == 0 && json_array_size(shards) == 2 &&
            strcmp(jstr(s0, "node_id"), "n1") == 0 && json_path_int(s0, "producers", NULL) == 1 &&
            json_path_int(s0, "pipes_out", NULL) == 1 &&
            json_path_int(s0, "transports", NULL) == 3 &&
            json_path_int(json_array_get(shards, 1), "pipes_in", NULL) == 1 &&
            json_array_size(json_object_get(j, "producers")) == 1 && json_array_size(pipes) == 1 &&
            strcmp(jstr(p0, "source_node_id"), "n1") == 0 &&
            strcmp(jstr(p0, "target_node_id"), "n2") == 0 && strcmp(jstr(p0, "kind"), "audio") == 0,
        "routers 'room one' --json");
  json_decref(j);
  rc = ctl(NULL, "--controller", c, "routers", "nosuch", NULL);
  CHECK(rc == 1 && has(err_text, "no router named or with id 'nosuch'"), "unknown router: %d", rc);
}

static void test_reads(const char *c) {
  int rc;
  json_t *j;

  rc = ctl(NULL, "--controller", c, "nodes", NULL);
  CHECK(rc == 0, "nodes exit %d", rc);
  CHECK(has(out, "ID") && has(out, "STATE") && has(out, "n1") && has(out, "n2") &&
            has(out, "active") && has(out, "192.0.2.7"),
        "nodes table");
  rc = ctl(NULL, "nodes", "--json", "--controller", c, NULL); /* flags after the command */
  j = out_json();
  CHECK(rc == 0 && json_is_array(j) && json_array_size(j) == 2, "nodes --json");
  json_t *n1 = json_array_get(j, 0);
  CHECK(json_is_string(json_object_get(n1, "id")) &&
            strcmp(json_string_value(json_object_get(n1, "id")), "n1") == 0 &&
            json_array_size(json_object_get(n1, "workers")) == 2 &&
            strcmp(json_string_value(json_object_get(n1, "state")), "active") == 0,
        "nodes --json n1");
  json_decref(j);

  rc = ctl(NULL, "--controller", c, "routers", NULL);
  CHECK(rc == 0 && has(out, "r1") && has(out, "room one") && has(out, "SHARDS"), "routers");
  rc = ctl(NULL, "--controller", c, "--json", "routers", NULL);
  j = out_json();
  json_t *r1 = json_array_get(j, 0);
  CHECK(rc == 0 && json_array_size(j) == 1 && json_is_array(json_object_get(r1, "codecs")) &&
            json_is_string(json_object_get(r1, "app_data")),
        "routers --json: codecs embedded as JSON, non-JSON appData as a string");
  json_decref(j);

  rc = ctl(NULL, "--controller", c, "shards", NULL);
  CHECK(rc == 0 && has(out, "ROUTER") && has(out, "n1") && has(out, "n2"), "shards");
  rc = ctl(NULL, "--controller", c, "--json", "shards", NULL);
  j = out_json();
  CHECK(rc == 0 && json_array_size(j) == 2, "shards --json");
  json_decref(j);

  rc = ctl(NULL, "--controller", c, "producers", NULL);
  CHECK(rc == 0 && has(out, "p1") && has(out, "audio") && has(out, "n1/0"), "producers");
  rc = ctl(NULL, "--controller", c, "--json", "producers", NULL);
  j = out_json();
  CHECK(rc == 0 && json_array_size(j) == 1 &&
            strcmp(json_string_value(json_object_get(json_array_get(j, 0), "kind")),
                   "audio") == 0,
        "producers --json");
  json_decref(j);

  rc = ctl(NULL, "--controller", c, "pipes", NULL);
  CHECK(rc == 0 && has(out, "PRODUCER") && has(out, "n2/0") && has(out, "n1/0"), "pipes");
  rc = ctl(NULL, "--controller", c, "--json", "pipes", NULL);
  j = out_json();
  CHECK(rc == 0 && json_array_size(j) == 1 &&
            json_path_int(json_array_get(j, 0), "target_worker", NULL) == 0,
        "pipes --json");
  json_decref(j);

  /* MAFALDA_CONTROLLER from the environment, with a dead replica listed first. */
  char env[160], both[96];
  snprintf(both, sizeof(both), "127.0.0.1:%d,%s", mf_test_free_port(), c);
  snprintf(env, sizeof(env), "MAFALDA_CONTROLLER=%s", both);
  rc = ctl(env, "status", NULL);
  CHECK(rc == 0 && has(out, "Nodes: 2 (2 active)"), "MAFALDA_CONTROLLER, first replica down");
}

/* UUID node ids: tables show 8 characters, node commands take a unique prefix. */
static void test_prefix(const char *c) {
  const char *a = "0f3c2a9e-1111-4aaa-8bbb-000000000001";
  const char *b = "0f3c7d41-2222-4aaa-8bbb-000000000002";
  register_node(a, 1, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE);
  register_node(b, 1, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE);
  int rc = ctl(NULL, "--controller", c, "nodes", NULL);
  CHECK(rc == 0 && has(out, "0f3c2a9e ") && has(out, "0f3c7d41 ") && !has(out, a) && fits_80(),
        "nodes table with short ids");
  rc = ctl(NULL, "--controller", c, "status", NULL);
  CHECK(rc == 0 && has(out, "  0f3c2a9e  active") && fits_80(), "status with short ids");
  rc = ctl(NULL, "--controller", c, "node", "drain", "0f3c", NULL);
  CHECK(rc == 2 && has(err_text, "node id prefix '0f3c' matches several nodes"),
        "ambiguous prefix: exit %d", rc);
  rc = ctl(NULL, "--controller", c, "node", "drain", "0f3c2a", NULL);
  char want[128];
  snprintf(want, sizeof(want), "node %s draining", a);
  CHECK(rc == 0 && has(out, want), "drain by prefix: exit %d", rc);
  rc = ctl(NULL, "--controller", c, "--json", "nodes", NULL);
  json_t *j = out_json();
  CHECK(rc == 0 && json_array_size(j) == 4 &&
            strcmp(jstr(json_array_get(j, 0), "id"), a) == 0 &&
            strcmp(jstr(json_array_get(j, 0), "state"), "draining") == 0 &&
            strcmp(jstr(json_array_get(j, 1), "state"), "active") == 0,
        "the prefix named the right node");
  json_decref(j);
  rc = ctl(NULL, "--controller", c, "node", "forget", "0f3c7d", NULL);
  CHECK(rc == 0, "forget by prefix: exit %d", rc);
  rc = ctl(NULL, "--controller", c, "node", "forget", a, NULL);
  CHECK(rc == 0, "forget by full id: exit %d", rc);
  rc = ctl(NULL, "--controller", c, "--json", "status", NULL);
  j = out_json();
  CHECK(rc == 0 && json_path_int(j, "counts", "nodes") == 2, "prefix nodes gone");
  json_decref(j);
}

static void test_writes(const char *c) {
  int rc = ctl(NULL, "--controller", c, "node", "drain", "n2", NULL);
  CHECK(rc == 0 && has(out, "node n2 draining"), "node drain exit %d", rc);
  rc = ctl(NULL, "--controller", c, "--json", "nodes", NULL);
  json_t *j = out_json();
  CHECK(rc == 0 && strcmp(json_string_value(json_object_get(json_array_get(j, 1), "state")),
                          "draining") == 0,
        "n2 is draining");
  json_decref(j);

  rc = ctl(NULL, "--controller", c, "node", "drain", "nosuch", NULL);
  CHECK(rc == 1 && has(err_text, "mafalda-ctl: node drain:") &&
            has(err_text, "STATUS_NOT_FOUND"),
        "drain of an unknown node: exit %d", rc);
  rc = ctl(NULL, "--controller", c, "--json", "node", "forget", "nosuch", NULL);
  j = out_json();
  CHECK(rc == 1 && j && json_is_false(json_object_get(j, "ok")) &&
            json_is_string(json_object_get(j, "error")),
        "forget of an unknown node (--json): exit %d", rc);
  json_decref(j);

  rc = ctl(NULL, "--controller", c, "--json", "node", "forget", "n2", NULL);
  j = out_json();
  CHECK(rc == 0 && j && json_is_true(json_object_get(j, "ok")) &&
            json_path_int(j, "index", NULL) > 0,
        "node forget n2 exit %d", rc);
  json_decref(j);
  /* The cascade: n2's shard and the pipe to it are gone. */
  rc = ctl(NULL, "--controller", c, "--json", "status", NULL);
  j = out_json();
  CHECK(rc == 0 && json_path_int(j, "counts", "nodes") == 1 &&
            json_path_int(j, "counts", "shards") == 1 &&
            json_path_int(j, "counts", "pipes") == 0 &&
            json_path_int(j, "counts", "producers") == 1,
        "counts after forget");
  json_decref(j);
}

static void test_membership(const char *c) {
  raft_port[1] = mf_test_free_port();
  rpc_port[1] = mf_test_free_port();
  char peers[256], raft2[32], rpc2[32], c2[64];
  snprintf(peers, sizeof(peers), "1@127.0.0.1:%d/%s,2@127.0.0.1:%d/127.0.0.1:%d",
           raft_port[0], c, raft_port[1], rpc_port[1]);
  start_replica(1, peers, true);
  snprintf(raft2, sizeof(raft2), "127.0.0.1:%d", raft_port[1]);
  snprintf(rpc2, sizeof(rpc2), "127.0.0.1:%d", rpc_port[1]);
  snprintf(c2, sizeof(c2), "%s", rpc2);
  /* The new replica must be listening before it is added. */
  for (int i = 0; i < 100; i++) {
    Mafalda__Controller__StatusRequest req = MAFALDA__CONTROLLER__STATUS_REQUEST__INIT;
    mf_rpc_reply_t reply;
    char url[64];
    snprintf(url, sizeof(url), "tcp://%s", rpc2);
    if (mf_rpc_call(url, MF_RPC_METHOD_STATUS, &req.base, 200, &reply) == MF_OK) {
      mf_rpc_reply_free(&reply);
      break;
    }
    mf_test_sleep_ms(50);
  }
  int rc = ctl(NULL, "--controller", c, "--timeout", "20000", "controller", "add", "2", raft2,
               rpc2, NULL);
  CHECK(rc == 0 && has(out, "controller 2 added"), "controller add exit %d", rc);
  /* Asked through the new replica: it redirects to the leader (1). */
  rc = ctl(NULL, "--controller", c2, "--json", "status", NULL);
  json_t *j = out_json();
  CHECK(rc == 0 && json_path_int(j, "leader_id", NULL) == 1, "status via replica 2");
  json_decref(j);
  rc = ctl(NULL, "--controller", c, "controller", "add", "2", raft2, NULL);
  CHECK(rc == 1 && has(err_text, "mafalda-ctl: controller add:"),
        "adding a member again: exit %d", rc);
  rc = ctl(NULL, "--controller", c, "--timeout", "20000", "controller", "remove", "2", NULL);
  CHECK(rc == 0 && has(out, "controller 2 removed"), "controller remove exit %d", rc);
  kill_replica(1);
  rc = ctl(NULL, "--controller", c, "controller", "remove", "7", NULL);
  CHECK(rc == 1 && has(err_text, "mafalda-ctl: controller remove:"),
        "removing an unknown replica: exit %d", rc);
  rc = ctl(NULL, "--controller", c, "status", NULL);
  CHECK(rc == 0, "still serving after membership changes");
}

static void test_bad_input(const char *c) {
  char dead[64];
  snprintf(dead, sizeof(dead), "127.0.0.1:%d", mf_test_free_port());
  struct {
    int want;
    const char *text;
    const char *args[8];
  } cases[] = {
      {2, "missing command", {NULL}},
      {2, "unknown command 'frobnicate'", {"frobnicate", NULL}},
      {2, "takes no arguments", {"nodes", "extra", NULL}},
      {2, "usage: node", {"node", "forget", NULL}},
      {2, "unknown node command", {"node", "explode", "n1", NULL}},
      {2, "invalid node id", {"node", "drain", "has space", NULL}},
      {2, "usage: controller add", {"controller", "add", "2", NULL}},
      {2, "invalid replica id '0'", {"controller", "add", "0", "127.0.0.1:1", NULL}},
      {2, "invalid replica id 'x'", {"controller", "remove", "x", NULL}},
      {2, "invalid raft address", {"controller", "add", "2", "nohostport", NULL}},
      {2, "invalid rpc address", {"controller", "add", "2", "127.0.0.1:1", "h:99999", NULL}},
      {2, "unknown controller command", {"controller", "grow", NULL}},
      {2, "--no-such-flag", {"--no-such-flag", "status", NULL}},
      {2, "timeout", {"--timeout", "5", "status", NULL}},
      {2, "--watch and --count apply to status only", {"--watch", "nodes", NULL}},
      {2, "--count needs --watch", {"--count", "3", "status", NULL}},
      {2, "usage: routers [NAME|ID]", {"routers", "a", "b", NULL}},
      {2, "workers takes no arguments", {"workers", "x", NULL}},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char **a = cases[i].args;
    int rc = ctl(NULL, "--controller", c, a[0], a[0] ? a[1] : NULL, a[0] && a[1] ? a[2] : NULL,
                 a[0] && a[1] && a[2] ? a[3] : NULL,
                 a[0] && a[1] && a[2] && a[3] ? a[4] : NULL, NULL);
    CHECK(rc == cases[i].want && has(err_text, cases[i].text),
          "case %zu (%s): exit %d, want %d", i, cases[i].text, rc, cases[i].want);
  }
  const char *bad_controllers[] = {"nohost", "127.0.0.1:", "127.0.0.1:0", ":7200",
                                   "127.0.0.1:7200,", "127.0.0.1:70000"};
  for (size_t i = 0; i < sizeof(bad_controllers) / sizeof(bad_controllers[0]); i++) {
    int rc = ctl(NULL, "--controller", bad_controllers[i], "status", NULL);
    CHECK(rc == 2 && has(err_text, "invalid --controller"), "bad --controller '%s': exit %d",
          bad_controllers[i], rc);
  }
  int rc = ctl("MAFALDA_CONTROLLER=garbage", "status", NULL);
  CHECK(rc == 2 && has(err_text, "invalid --controller"), "bad MAFALDA_CONTROLLER: exit %d",
        rc);
  char two_dead[160], want[200];
  snprintf(two_dead, sizeof(two_dead), "%s,127.0.0.1:%d", dead, mf_test_free_port());
  rc = ctl(NULL, "--controller", two_dead, "--timeout", "300", "status", NULL);
  snprintf(want, sizeof(want), "tried %s and 127.0.0.1:", dead);
  CHECK(rc == 3 && has(err_text, "mafalda-ctl: status: no controller answered within 300 ms") &&
            has(err_text, want) && has(err_text, "RPC address") &&
            has(err_text, "MAFALDA_CONTROLLER"),
        "unreachable: exit %d", rc);
  rc = ctl(NULL, "--controller", dead, "--timeout", "300", "--json", "workers", NULL);
  json_t *j = out_json();
  CHECK(rc == 3 && j && json_is_false(json_object_get(j, "ok")) &&
            json_path_int(j, "exit_code", NULL) == 3 && has(err_text, "no controller answered"),
        "unreachable (--json): exit %d", rc);
  json_decref(j);
  rc = ctl(NULL, "--controller", dead, "--timeout", "300", "node", "drain", "n1", NULL);
  CHECK(rc == 3 && has(err_text, "mafalda-ctl: node drain: no controller answered"),
        "unreachable write: exit %d", rc);
  rc = ctl(NULL, "--help", NULL);
  CHECK(rc == 0 && has(out, "MAFALDA_CONTROLLER") && has(out, "controller add") &&
            has(out, "Exit status:") && has(out, "3  no controller answered") &&
            has(out, "workers") && has(out, "routers [NAME|ID]") && has(out, "--watch"),
        "--help");
  rc = ctl(NULL, "--version", NULL);
  CHECK(rc == 0 && has(out, "mafalda-ctl"), "--version");
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: ctl_cli path/to/mafalda-controller path/to/mafalda-ctl\n");
    return 2;
  }
  controller_bin = argv[1];
  ctl_bin = argv[2];
  snprintf(dir, sizeof(dir), "/tmp/mf-ctl-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  raft_port[0] = mf_test_free_port();
  rpc_port[0] = mf_test_free_port();
  snprintf(rpc_url, sizeof(rpc_url), "tcp://127.0.0.1:%d", rpc_port[0]);
  char c[64];
  snprintf(c, sizeof(c), "127.0.0.1:%d", rpc_port[0]);
  start_replica(0, NULL, false);
  if (!wait_leader()) fatal("no leader within 20 s");
  populate();
  report_loads();
  test_status(c);
  test_workers_and_router(c);
  test_reads(c);
  test_prefix(c);
  test_writes(c);
  test_bad_input(c);
  test_membership(c);
  printf("%d checks, %d failed\n", checks, failures);
  cleanup();
  return failures ? 1 : 0;
}
