/* Issue 7's process test: 1 mafalda-controller + mafalda-node processes, each node on its own
 * loopback address 127.0.0.1N, joined through gossip:
 *  1. three nodes join and become active;
 *  2. a fourth node started live becomes active (time printed) and takes a router shard
 *     commanded over its node RPC (node.OpenShard), which its status then reports;
 *  3. kill -9 of node 2, which hosts a router shard, a producer and a pipe source: the
 *     controller marks it dead (time printed) and its objects are gone from the state;
 *  4. SIGTERM drains node 3 while a client holds a transport: the controller sees it
 *     draining, the client leaves, the node leaves the cluster (marked dead) and exits 0.
 * Every child runs under `timeout -s KILL`; everything left is killed on exit.
 * Usage: cluster_membership path/to/mafalda-controller path/to/mafalda-node */
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "controller/rpc_client.h"
#include "controller/rpc_server.h"
#include "proto/cluster.pb-c.h"
#include "proto/controller.pb-c.h"
#include "tests/support/test_cmd.h"
#include "tests/support/test_node_rpc.h"
#include "tests/support/test_proc.h"
#include "tests/support/ws_client.h"

#define NODES 4
#define PROCS (NODES + 1) /* index 0: the controller */

static const char *controller_bin, *node_bin;
static char dir[64];
static pid_t timeout_pid[PROCS];
static char ctl_url[64], ctl_rpc[32], gossip[32];
static int api_port[PROCS];

static void exit_now(void);

#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n");                               \
      exit_now();                                          \
    }                                                      \
  } while (0)

static void kill_all(void) { mf_test_stop_wrapped(timeout_pid, PROCS); }

static void exit_now(void) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "for f in %s/*.log; do echo \"--- $f\"; tail -n 25 $f; done", dir);
  if (system(cmd) != 0) fprintf(stderr, "(no logs)\n");
  kill_all();
  if (!getenv("MF_TEST_KEEP")) mf_test_remove_dir(dir);
  exit(1);
}

static pid_t spawn(int i, char **argv) {
  char log[128];
  snprintf(log, sizeof log, "%s/%d.log", dir, i);
  pid_t pid;
  int rv = mf_test_spawn_logged(argv, log, &pid);
  CHECK(rv == 0, "spawn: %s", strerror(rv));
  timeout_pid[i] = pid;
  return pid;
}

static void start_controller(void) {
  char raft[32], data[128];
  snprintf(raft, sizeof raft, "127.0.0.1:%d", mf_test_free_port());
  snprintf(ctl_rpc, sizeof ctl_rpc, "127.0.0.1:%d", mf_test_free_port());
  snprintf(ctl_url, sizeof ctl_url, "tcp://%s", ctl_rpc);
  snprintf(gossip, sizeof gossip, "127.0.0.1:%d", mf_test_free_port());
  snprintf(data, sizeof data, "%s/ctl", dir);
  char *argv[] = {"timeout", "-s", "KILL", "120", (char *)controller_bin, "--listen", raft,
                  "--rpc-listen", ctl_rpc, "--data-dir", data, "--election-timeout", "300",
                  "--gossip-listen", gossip, NULL};
  spawn(0, argv);
}

static void node_ip(int i, char *out, size_t size) { snprintf(out, size, "127.0.0.%d", 10 + i); }

static void start_node(int i) {
  char ip[32], api[48];
  node_ip(i, ip, sizeof ip);
  api_port[i] = mf_test_free_port();
  snprintf(api, sizeof api, "%s:%d", ip, api_port[i]);
  char *argv[] = {"timeout", "-s", "KILL", "120", (char *)node_bin, "--workers", "1",
                  "--rtc-listen-ip", ip, "--announced-ip", ip, "--rtc-port-base", "0",
                  "--controller=false", "--controllers", ctl_rpc, "--join", gossip,
                  "--gossip-port", "0", "--node-rpc-port", "0", "--api-listen", api,
                  "--api-grace-ms", "0", "--drain-timeout-ms", "20000",
                  /* a client's transport stays on the node it talks to (per-node checks) */
                  "--forward-transports=false", "--report-interval-ms", "500", NULL};
  spawn(i, argv);
}

static pid_t child(int i) { return mf_test_wait_child_of(timeout_pid[i], 4000); }

static int wait_exit(int i) {
  int status = mf_test_wait_status(timeout_pid[i]);
  timeout_pid[i] = 0;
  return status;
}

/* ---- the controller's state ---- */

static Mafalda__Controller__StateResponse *state(void) {
  Mafalda__Controller__StatusRequest req = MAFALDA__CONTROLLER__STATUS_REQUEST__INIT;
  mf_rpc_reply_t reply;
  if (mf_rpc_call(ctl_url, MF_RPC_METHOD_STATE, &req.base, 2000, &reply) != MF_OK) return NULL;
  Mafalda__Controller__StateResponse *r = NULL;
  if (reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK)
    r = mafalda__controller__state_response__unpack(NULL, reply.envelope->payload.len,
                                                    reply.envelope->payload.data);
  mf_rpc_reply_free(&reply);
  return r;
}

/* The node announcing 127.0.0.1<i>, or NULL. */
static const Mafalda__Controller__Node *find_node(const Mafalda__Controller__StateResponse *s,
                                                  int i) {
  char ip[32];
  node_ip(i, ip, sizeof ip);
  for (size_t k = 0; s && s->state && k < s->state->n_nodes; k++)
    if (strcmp(s->state->nodes[k]->announced_ip, ip) == 0) return s->state->nodes[k];
  return NULL;
}

/* Waits until node i has `want` state; returns the seconds it took (or -1). */
static double wait_node_state(int i, Mafalda__Controller__NodeState want, double limit_s) {
  double t0 = mf_test_now_s();
  while (mf_test_now_s() - t0 < limit_s) {
    Mafalda__Controller__StateResponse *s = state();
    const Mafalda__Controller__Node *n = find_node(s, i);
    bool ok = n && n->state == want;
    if (s) mafalda__controller__state_response__free_unpacked(s, NULL);
    if (ok) return mf_test_now_s() - t0;
    mf_test_sleep_ms(50);
  }
  return -1;
}

static void node_id_of(int i, char *out, size_t size) {
  Mafalda__Controller__StateResponse *s = state();
  const Mafalda__Controller__Node *n = find_node(s, i);
  CHECK(n, "node %d is not in the state", i);
  snprintf(out, size, "%s", n->id);
  mafalda__controller__state_response__free_unpacked(s, NULL);
}

static void node_rpc_of(int i, char *out, size_t size) {
  Mafalda__Controller__StateResponse *s = state();
  const Mafalda__Controller__Node *n = find_node(s, i);
  CHECK(n, "node %d is not in the state", i);
  snprintf(out, size, "tcp://%s", n->rpc_address);
  mafalda__controller__state_response__free_unpacked(s, NULL);
}

static void apply(const Mafalda__Controller__Command *cmd) {
  mf_rpc_reply_t reply;
  const char *urls[] = {ctl_url};
  mf_err_t e = mf_rpc_call_leader(urls, 1, NULL, MF_RPC_METHOD_APPLY, &cmd->base, 5000, &reply);
  CHECK(e == MF_OK && reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK,
        "apply failed: %s", e == MF_OK ? reply.envelope->error_message : mf_strerror(e));
  mf_rpc_reply_free(&reply);
}

static void create_router(const char *id) {
  Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
  r.id = (char *)id;
  r.name = (char *)id;
  mf_test_cmd_create_router(apply, &r);
}

static void add_shard(const char *router, const char *node) {
  mf_test_cmd_add_shard(apply, router, node);
}

static void add_producer_and_pipe(const char *router, const char *origin, const char *target) {
  mf_test_cmd_add_producer(apply, "p1", router, origin, "video");
  mf_test_cmd_add_pipe(apply, "p1", origin, target);
}

/* ---- node RPC ---- */

static void open_shard_on(int i, const char *router_id) {
  char url[96], err[256] = "";
  node_rpc_of(i, url, sizeof url);
  CHECK(mf_test_node_open_shard(url, router_id, "room-on-node-4", err, sizeof err) == MF_OK,
        "node.OpenShard on node %d: %s", i, err);
}

static uint32_t node_routers(int i) {
  char url[96];
  node_rpc_of(i, url, sizeof url);
  uint32_t alive = 0, routers = 0;
  return mf_test_node_status(url, &alive, &routers) ? routers : 0;
}

/* ---- a client holding a transport on node i ---- */

static json_t *ws_call(nng_stream *s, int id, const char *method, json_t *data) {
  json_t *req = json_pack("{s:i, s:s, s:o}", "id", id, "method", method, "data", data);
  char *text = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  CHECK(mf_test_ws_send(s, text, strlen(text), 5000) == 0, "ws send");
  free(text);
  for (;;) {
    json_t *m = mf_test_ws_recv(s, 5000);
    CHECK(m, "no answer to %s", method);
    if (json_integer_value(json_object_get(m, "id")) == id && json_object_get(m, "ok")) return m;
    json_decref(m);
  }
}

static nng_stream *client_with_transport(int i) {
  char ip[32];
  node_ip(i, ip, sizeof ip);
  nng_stream *s = NULL;
  for (int tries = 0; tries < 100 && !s; tries++) {
    s = mf_test_ws_dial(ip, (uint16_t)api_port[i], NULL, 2000);
    if (!s) mf_test_sleep_ms(100);
  }
  CHECK(s, "cannot reach node %d's API", i);
  json_t *r = ws_call(s, 1, "router.join", json_pack("{s:s}", "roomId", "drain-room"));
  CHECK(json_is_true(json_object_get(r, "ok")), "router.join failed");
  json_decref(r);
  r = ws_call(s, 2, "router.createWebRtcTransport", json_object());
  CHECK(json_is_true(json_object_get(r, "ok")), "createWebRtcTransport failed");
  json_decref(r);
  return s;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s mafalda-controller mafalda-node\n", argv[0]);
    return 2;
  }
  controller_bin = argv[1];
  node_bin = argv[2];
  snprintf(dir, sizeof dir, "/tmp/mf-membership-XXXXXX");
  CHECK(mkdtemp(dir), "mkdtemp");
  start_controller();
  CHECK(mf_test_wait_leader(ctl_url, 20), "the controller did not become leader");

  /* 1. three nodes join */
  for (int i = 1; i <= 3; i++) start_node(i);
  for (int i = 1; i <= 3; i++)
    CHECK(wait_node_state(i, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE, 30) >= 0,
          "node %d did not become active", i);
  printf("ok 1 - three nodes joined through gossip and are active\n");

  /* 2. a fourth node, live */
  double started = mf_test_now_s();
  start_node(4);
  double took = wait_node_state(4, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE, 30);
  CHECK(took >= 0, "node 4 did not become active");
  printf("# node 4 active %.2f s after its process started (target <= 2 s on loopback)\n",
         mf_test_now_s() - started);
  create_router("r-four");
  open_shard_on(4, "r-four");
  char n4[80];
  node_id_of(4, n4, sizeof n4);
  add_shard("r-four", n4);
  bool has_router = false;
  for (int k = 0; k < 100 && !has_router; k++) {
    has_router = node_routers(4) == 1;
    if (!has_router) mf_test_sleep_ms(100);
  }
  CHECK(has_router, "node 4 does not report the router it was given");
  printf("ok 2 - a node started live becomes active and takes a router shard\n");

  /* 3. kill -9 node 2, which hosts objects */
  char n1[80], n2[80];
  node_id_of(1, n1, sizeof n1);
  node_id_of(2, n2, sizeof n2);
  create_router("r-two");
  add_shard("r-two", n2);
  add_shard("r-two", n1);
  add_producer_and_pipe("r-two", n2, n1);
  pid_t victim = child(2);
  CHECK(victim > 0, "no node 2 process");
  kill(victim, SIGKILL);
  double dead_after = wait_node_state(2, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD, 30);
  CHECK(dead_after >= 0, "node 2 was not marked dead");
  printf("# node 2 marked dead %.2f s after kill -9 (target <= 5 s)\n", dead_after);
  Mafalda__Controller__StateResponse *s = state();
  CHECK(s && s->state, "no state");
  for (size_t k = 0; k < s->state->n_shards; k++)
    CHECK(strcmp(s->state->shards[k]->node_id, n2) != 0, "a shard on the dead node remains");
  CHECK(s->state->n_producers == 0, "the dead node's producer remains");
  CHECK(s->state->n_pipes == 0, "the pipe from the dead node remains");
  CHECK(find_node(s, 2) != NULL, "the dead node's row must stay until `node forget`");
  mafalda__controller__state_response__free_unpacked(s, NULL);
  wait_exit(2);
  printf("ok 3 - kill -9: the node is marked dead and its shards, producers, pipes are gone\n");

  /* 4. SIGTERM drains node 3 */
  nng_stream *ws = client_with_transport(3);
  pid_t n3 = child(3);
  CHECK(n3 > 0, "no node 3 process");
  kill(n3, SIGTERM);
  CHECK(wait_node_state(3, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DRAINING, 15) >= 0,
        "node 3 is not draining after SIGTERM");
  mf_test_sleep_ms(500);
  CHECK(kill(n3, 0) == 0, "node 3 left while a transport was still open");
  mf_test_ws_free(ws); /* the client goes: with no grace, its transport closes */
  CHECK(wait_node_state(3, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD, 15) >= 0,
        "node 3 did not leave after its last transport closed");
  int rc = wait_exit(3);
  CHECK(rc == 0, "node 3 exited with %d after draining", rc);
  printf("ok 4 - SIGTERM drains: draining while a transport is open, then leaves, exit 0\n");

  kill_all();
  mf_test_remove_dir(dir);
  return 0;
}
