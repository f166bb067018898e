/* Issue 12's pause test: a node frozen with SIGSTOP for longer than the gossip failure
 * detection, then resumed with SIGCONT. One mafalda-controller (gossip on) and two
 * mafalda-node processes (--controller=false, joined through gossip), each node on its own
 * loopback address 127.0.0.3N:
 *  1. both nodes become active; node 2 gets a router shard (node.OpenShard + AddShard), node
 *     1 a shard of the same router; a WebSocket client joins the room on node 2 and opens a
 *     WebRTC transport with a producer there;
 *  2. SIGSTOP node 2: the controller marks it dead in ~4 s (time printed, 8 s at most), its
 *     shard is gone from the state, node 1's shard stays, node 1's gossip no longer counts
 *     it alive;
 *  3. SIGCONT node 2: within 5 s it is registered again (same node id, one row) and active
 *     (time printed), gossip carries it at a higher incarnation than before the pause, the
 *     state holds no shard of it (checked twice, a few load reports apart), and node 1 counts
 *     it alive again;
 *  4. node 2 fenced itself: the client got transport.routerclose and producer.close, node
 *     2's workers hold no router, its log has no "stalled" line after SIGCONT (the watchdog
 *     saw the stop instead), and the client's next transport works, with node 2's routers
 *     matching the state's shards on it;
 *  5. SIGTERM to every process (nodes first): each exits 0.
 * Every child runs under `timeout -s KILL`; everything left is killed on failure.
 * Usage: node_pause path/to/mafalda-controller path/to/mafalda-node */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "controller/rpc_client.h"
#include "tests/support/ws_client.h"
#include "controller/rpc_server.h"
#include "proto/cluster.pb-c.h"
#include "proto/controller.pb-c.h"
#include "tests/support/test_cmd.h"
#include "tests/support/test_node_rpc.h"
#include "tests/support/test_proc.h"

#define NODES 2
#define PROCS (NODES + 1) /* index 0: the controller */
#define ROUTER "r-pause"
/* Detection = the first failed probe round (up to ~2 s after the freeze) + a suspicion
 * confirmed by the other member's failed probe (2.75 s for 3 members) + the controller's
 * reconcile tick. Before the Lifeguard fix (test_swim_lifeguard.c) the controller's
 * suspicion sometimes ran the unconfirmed 4 s (~6.1 s measured); the hard limit keeps
 * room for a loaded machine. */
#define DEAD_TARGET_S 5.0
#define DEAD_LIMIT_S 8.0
#define BACK_LIMIT_S 5.0
#define WRAP_DEADLINE "80" /* seconds; below the ctest TIMEOUT (90) */

static const char *controller_bin, *node_bin;
static char dir[64];
static pid_t wrapper[PROCS];
static char ctl_url[64], ctl_rpc[32], gossip[32];
static int api_port[PROCS];

static void fail_exit(void);

#define CHECK(cond, ...) MF_TEST_CHECK(fail_exit, cond, __VA_ARGS__)

static void fail_exit(void) {
  mf_test_dump_logs(dir, 40);
  /* SIGKILL also ends a stopped process, so a frozen node 2 cannot outlive the test. */
  mf_test_abandon(dir, wrapper, PROCS);
  exit(1);
}

static void log_path(int i, char *out, size_t size) { mf_test_log_path(dir, i, out, size); }

static void launch(int i, char **argv) {
  int rv = mf_test_launch_logged(dir, i, argv, &wrapper[i]);
  CHECK(rv == 0, "spawn of process %d: %s", i, strerror(rv));
}

static void start_controller(void) {
  int rv = mf_test_start_controller(dir, controller_bin, WRAP_DEADLINE, ctl_rpc, gossip,
                                    &wrapper[0]);
  CHECK(rv == 0, "spawn of the controller: %s", strerror(rv));
  snprintf(ctl_url, sizeof ctl_url, "tcp://%s", ctl_rpc);
}

static void ip_of(int i, char *out, size_t size) { snprintf(out, size, "127.0.0.%d", 30 + i); }

static void start_node(int i) {
  char ip[32], api[48];
  ip_of(i, ip, sizeof ip);
  api_port[i] = mf_test_free_port();
  snprintf(api, sizeof api, "%s:%d", ip, api_port[i]);
  /* A short drain timeout: no client holds a transport here, the final SIGTERM only has to
   * leave the group. */
  char *argv[] = {"timeout", "-s", "KILL", WRAP_DEADLINE, (char *)node_bin, "--workers", "1",
                  "--rtc-listen-ip", ip, "--announced-ip", ip, "--rtc-port-base", "0",
                  "--controller=false", "--controllers", ctl_rpc, "--join", gossip,
                  "--gossip-port", "0", "--node-rpc-port", "0", "--api-listen", api,
                  "--api-grace-ms", "0", "--drain-timeout-ms", "5000",
                  "--report-interval-ms", "500", NULL};
  launch(i, argv);
}

/* The server under wrapper i (signals go to it, never to `timeout`). */
static pid_t server_of(int i) {
  pid_t pid = mf_test_wait_child_of(wrapper[i], 4000);
  CHECK(pid > 0, "process %d has no server child", i);
  return pid;
}

/* ---- the controller's view of one node ---- */

typedef struct {
  int rows;                             /* node rows announcing the node's IP */
  Mafalda__Controller__NodeState state; /* of the last such row */
  char id[80];
  char rpc[96];                         /* tcp://host:port of its node RPC */
  size_t shards;                        /* shards in the state on that node id */
  size_t router_shards;                 /* shards of ROUTER, any node */
} node_view_t;

/* Fills *v from one controller.State answer; false if the controller did not answer. */
static bool view_node(int i, node_view_t *v) {
  memset(v, 0, sizeof *v);
  Mafalda__Controller__StatusRequest req = MAFALDA__CONTROLLER__STATUS_REQUEST__INIT;
  mf_rpc_reply_t reply;
  if (mf_rpc_call(ctl_url, MF_RPC_METHOD_STATE, &req.base, 2000, &reply) != MF_OK) return false;
  Mafalda__Controller__StateResponse *r = NULL;
  if (reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK)
    r = mafalda__controller__state_response__unpack(NULL, reply.envelope->payload.len,
                                                    reply.envelope->payload.data);
  mf_rpc_reply_free(&reply);
  if (!r || !r->state) {
    if (r) mafalda__controller__state_response__free_unpacked(r, NULL);
    return false;
  }
  char ip[32];
  ip_of(i, ip, sizeof ip);
  const Mafalda__Controller__Snapshot *st = r->state;
  for (size_t k = 0; k < st->n_nodes; k++) {
    if (strcmp(st->nodes[k]->announced_ip, ip) != 0) continue;
    v->rows++;
    v->state = st->nodes[k]->state;
    snprintf(v->id, sizeof v->id, "%s", st->nodes[k]->id);
    snprintf(v->rpc, sizeof v->rpc, "tcp://%s", st->nodes[k]->rpc_address);
  }
  for (size_t k = 0; k < st->n_shards; k++) {
    if (v->rows && strcmp(st->shards[k]->node_id, v->id) == 0) v->shards++;
    if (strcmp(st->shards[k]->router_id, ROUTER) == 0) v->router_shards++;
  }
  mafalda__controller__state_response__free_unpacked(r, NULL);
  return true;
}

static const char *state_name(Mafalda__Controller__NodeState s) {
  const ProtobufCEnumValue *e =
      protobuf_c_enum_descriptor_get_value(&mafalda__controller__node_state__descriptor, s);
  return e ? e->name : "?";
}

/* Seconds from `since` until node i's row is in state `want`, or -1 after limit_s. */
static double await_state(int i, Mafalda__Controller__NodeState want, double since,
                          double limit_s, node_view_t *last) {
  while (mf_test_now_s() - since < limit_s) {
    if (view_node(i, last) && last->rows > 0 && last->state == want)
      return mf_test_now_s() - since;
    mf_test_sleep_ms(50);
  }
  return -1;
}

static void apply(const Mafalda__Controller__Command *cmd) {
  const char *urls[] = {ctl_url};
  mf_rpc_reply_t reply;
  mf_err_t e = mf_rpc_call_leader(urls, 1, NULL, MF_RPC_METHOD_APPLY, &cmd->base, 5000, &reply);
  CHECK(e == MF_OK && reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK,
        "controller.Apply refused: %s", e == MF_OK ? reply.envelope->error_message : mf_strerror(e));
  mf_rpc_reply_free(&reply);
}

/* ---- node RPC ---- */

static void node_open_shard(const char *rpc_url) {
  char err[256] = "";
  CHECK(mf_test_node_open_shard(rpc_url, ROUTER, "paused-room", err, sizeof err) == MF_OK,
        "node.OpenShard at %s: %s", rpc_url, err);
}

/* Seconds from `since` until the node at rpc_url counts `want` gossip members alive, or
 * -1 after limit_s (*seen: the last count it reported). */
static double await_alive(const char *rpc_url, uint32_t want, double since, double limit_s,
                          uint32_t *seen) {
  uint32_t routers;
  *seen = 0;
  while (mf_test_now_s() - since < limit_s) {
    if (mf_test_node_status(rpc_url, seen, &routers) && *seen == want) return mf_test_now_s() - since;
    mf_test_sleep_ms(50);
  }
  return -1;
}

/* ---- a client of node 2 (WebSocket API) ---- */

/* The next message that answers request `id` (notifications before it are checked for
 * `event` on `target` and counted in *seen, then dropped). */
static json_t *ws_call(nng_stream *s, int id, const char *method, json_t *data,
                       const char *event, const char *target, int *seen) {
  json_t *req = json_pack("{s:i, s:s, s:o}", "id", id, "method", method, "data", data);
  char *text = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  CHECK(mf_test_ws_send(s, text, strlen(text), 5000) == 0, "ws send of %s", method);
  free(text);
  for (;;) {
    json_t *m = mf_test_ws_recv(s, 5000);
    CHECK(m, "no answer to %s", method);
    if (json_integer_value(json_object_get(m, "id")) == id && json_object_get(m, "ok")) return m;
    const char *ev = json_string_value(json_object_get(m, "event"));
    const char *tg = json_string_value(json_object_get(m, "target"));
    if (event && seen && ev && tg && strcmp(ev, event) == 0 && strcmp(tg, target) == 0) (*seen)++;
    json_decref(m);
  }
}

/* The data of a successful answer (borrowed from *r, which the caller decrefs). */
static json_t *ok_data(json_t *r, const char *method) {
  CHECK(json_is_true(json_object_get(r, "ok")), "%s failed: %s", method,
        json_dumps(r, JSON_COMPACT));
  return json_object_get(r, "data");
}

/* Creates a WebRTC transport in the session's room; returns its id in out. */
static void create_transport(nng_stream *s, int id, char *out, size_t size) {
  json_t *r = ws_call(s, id, "router.createWebRtcTransport", json_object(), NULL, NULL, NULL);
  const char *tid = json_string_value(json_object_get(ok_data(r, "createWebRtcTransport"), "id"));
  CHECK(tid, "router.createWebRtcTransport answered no id");
  snprintf(out, size, "%s", tid);
  json_decref(r);
}

static const char *const vp8_params =
    "{\"mid\":\"0\",\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
    "\"rtcpFeedback\":[{\"type\":\"nack\"},{\"type\":\"nack\",\"parameter\":\"pli\"}]}],"
    "\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"id\":1}],"
    "\"encodings\":[{\"ssrc\":1111}],\"rtcp\":{\"cname\":\"c\"}}";

/* A video producer on transport tid; returns its id in out. */
static void produce(nng_stream *s, int id, const char *tid, char *out, size_t size) {
  json_t *params = json_loads(vp8_params, 0, NULL);
  CHECK(params, "vp8_params");
  json_t *r = ws_call(s, id, "transport.produce",
                      json_pack("{s:s, s:s, s:o}", "transportId", tid, "kind", "video",
                                "rtpParameters", params),
                      NULL, NULL, NULL);
  const char *pid = json_string_value(json_object_get(ok_data(r, "transport.produce"), "id"));
  CHECK(pid, "transport.produce answered no id");
  snprintf(out, size, "%s", pid);
  json_decref(r);
}

/* Waits up to limit_s for every notification events[i] about targets[i] (n of them);
 * true when all came. */
static bool await_events(nng_stream *s, const char *const *events, const char *const *targets,
                         size_t n, double limit_s) {
  bool seen[4] = {false};
  size_t left = n;
  double t0 = mf_test_now_s();
  while (left > 0 && mf_test_now_s() - t0 < limit_s) {
    json_t *m = mf_test_ws_recv(s, 250);
    if (!m) continue;
    const char *ev = json_string_value(json_object_get(m, "event"));
    const char *tg = json_string_value(json_object_get(m, "target"));
    for (size_t i = 0; i < n && ev && tg; i++)
      if (!seen[i] && strcmp(ev, events[i]) == 0 && strcmp(tg, targets[i]) == 0) {
        seen[i] = true;
        left--;
      }
    json_decref(m);
  }
  return left == 0;
}

/* Lines of process i's log from byte `from` on that contain `needle`. */
static int log_lines_with(int i, long from, const char *needle) {
  char path[128], line[1024];
  log_path(i, path, sizeof path);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  if (from > 0) fseek(f, from, SEEK_SET);
  int n = 0;
  while (fgets(line, sizeof line, f)) n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

static long log_size(int i) {
  char path[128];
  log_path(i, path, sizeof path);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fclose(f);
  return n;
}

/* ---- gossip incarnations, from the controller's member log lines ----
 * "member <id> (<addr>) <old> -> <new>, incarnation N" / "... joined as <s>, incarnation N".
 * Scans the controller log from byte `from`: the highest incarnation logged for id (any
 * line, or only lines where it became alive), -1 if none. *end: the log size read. */
static long long logged_incarnation(const char *id, long from, bool only_to_alive, long *end) {
  char path[128], line[1024], needle[112];
  log_path(0, path, sizeof path);
  snprintf(needle, sizeof needle, "member %s (", id);
  long long best = -1;
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  if (from > 0) fseek(f, from, SEEK_SET);
  while (fgets(line, sizeof line, f)) {
    if (!strstr(line, needle)) continue;
    if (only_to_alive && !strstr(line, "-> alive")) continue;
    const char *inc = strstr(line, "incarnation ");
    if (!inc) continue;
    long long n = strtoll(inc + strlen("incarnation "), NULL, 10);
    if (n > best) best = n;
  }
  if (end) *end = ftell(f);
  fclose(f);
  return best;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s mafalda-controller mafalda-node\n", argv[0]);
    return 2;
  }
  controller_bin = argv[1];
  node_bin = argv[2];
  snprintf(dir, sizeof dir, "/tmp/mf-pause-XXXXXX");
  CHECK(mkdtemp(dir), "mkdtemp");

  start_controller();
  CHECK(mf_test_wait_leader(ctl_url, 20), "the controller did not become leader");

  /* 1. two nodes join; each gets a shard of ROUTER */
  for (int i = 1; i <= NODES; i++) start_node(i);
  node_view_t v1, v2;
  double t0 = mf_test_now_s();
  CHECK(await_state(1, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE, t0, 30, &v1) >= 0,
        "node 1 did not become active");
  CHECK(await_state(2, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE, t0, 30, &v2) >= 0,
        "node 2 did not become active");
  char n2[80];
  snprintf(n2, sizeof n2, "%s", v2.id);
  Mafalda__Controller__Router router = MAFALDA__CONTROLLER__ROUTER__INIT;
  router.id = (char *)ROUTER;
  router.name = (char *)ROUTER;
  mf_test_cmd_create_router(apply, &router);
  node_open_shard(v2.rpc);
  mf_test_cmd_add_shard(apply, ROUTER, n2);
  uint32_t alive = 0, routers = 0;
  bool opened = false;
  for (int k = 0; k < 100 && !opened; k++) {
    opened = mf_test_node_status(v2.rpc, &alive, &routers) && routers == 1;
    if (!opened) mf_test_sleep_ms(100);
  }
  CHECK(opened, "node 2 does not report the shard it opened (routers %u)", routers);
  CHECK(await_alive(v1.rpc, PROCS, mf_test_now_s(), 10, &alive) >= 0,
        "node 1 sees %u gossip members alive, expected %d", alive, PROCS);
  /* A client of node 2 in the shard's room, holding a transport in it. */
  char ip2[32], tid[64], tid2[64], pid[64];
  ip_of(2, ip2, sizeof ip2);
  nng_stream *ws = NULL;
  for (int tries = 0; tries < 50 && !ws; tries++) {
    ws = mf_test_ws_dial(ip2, (uint16_t)api_port[2], NULL, 2000);
    if (!ws) mf_test_sleep_ms(100);
  }
  CHECK(ws, "cannot reach node 2's API");
  json_t *jr = ws_call(ws, 1, "router.join", json_pack("{s:s}", "roomId", "paused-room"), NULL,
                       NULL, NULL);
  CHECK(json_is_true(json_object_get(jr, "ok")), "router.join on node 2 failed");
  json_decref(jr);
  /* Node 2 holds the router's only shard, so the transport is placed there. */
  create_transport(ws, 2, tid, sizeof tid);
  produce(ws, 3, tid, pid, sizeof pid);
  mf_test_cmd_add_shard(apply, ROUTER, v1.id);
  CHECK(view_node(2, &v2) && v2.shards == 1 && v2.router_shards == 2,
        "the state should hold 1 shard on node 2 and 2 of " ROUTER " (has %zu, %zu)", v2.shards,
        v2.router_shards);
  CHECK(mf_test_node_status(v2.rpc, &alive, &routers) && routers == 1,
        "node 2 should still hold 1 router with the client's transport (has %u)", routers);
  printf("ok 1 - two nodes active; node 2 hosts a shard of " ROUTER " (node id %s) and a "
         "client's transport and producer in it\n", n2);

  /* 2. SIGSTOP node 2 past the gossip timeout */
  long log_mark = 0;
  long long inc_before = logged_incarnation(n2, 0, false, &log_mark);
  CHECK(inc_before >= 0, "the controller never logged gossip member %s", n2);
  pid_t frozen = server_of(2);
  long n2_log_mark = log_size(2);
  CHECK(kill(frozen, SIGSTOP) == 0, "SIGSTOP node 2");
  double stopped_at = mf_test_now_s();
  double dead_after = await_state(2, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD,
                                  stopped_at, DEAD_LIMIT_S, &v2);
  CHECK(dead_after >= 0, "node 2 not marked dead %.0f s after SIGSTOP (state %s)", DEAD_LIMIT_S,
        state_name(v2.state));
  printf("# node 2 marked dead %.2f s after SIGSTOP (target %.0f s%s, limit %.0f s)\n",
         dead_after, DEAD_TARGET_S, dead_after > DEAD_TARGET_S ? ": MISSED" : "", DEAD_LIMIT_S);
  CHECK(v2.rows == 1 && strcmp(v2.id, n2) == 0, "node 2's row changed while it was frozen");
  CHECK(v2.shards == 0, "%zu shards remain on the dead node", v2.shards);
  CHECK(view_node(1, &v1) && v1.shards == 1 && v1.router_shards == 1,
        "node 1's shard of " ROUTER " should stay (node 1: %zu, router: %zu)", v1.shards,
        v1.router_shards);
  double n1_dead = await_alive(v1.rpc, PROCS - 1, stopped_at, DEAD_LIMIT_S + 2, &alive);
  CHECK(n1_dead >= 0, "node 1 still sees %u members alive with node 2 frozen", alive);
  printf("# node 1's gossip counts node 2 out by %.2f s after SIGSTOP (polled from the "
         "controller's verdict on)\n", n1_dead);
  printf("ok 2 - SIGSTOP: node 2 is dead, its shard is gone, node 1's stays\n");

  /* 3. SIGCONT: node 2 comes back on its own */
  CHECK(kill(frozen, SIGCONT) == 0, "SIGCONT node 2");
  double resumed_at = mf_test_now_s();
  double back_after = await_state(2, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE,
                                  resumed_at, BACK_LIMIT_S, &v2);
  CHECK(back_after >= 0, "node 2 not active again %.0f s after SIGCONT (rows %d, state %s)",
        BACK_LIMIT_S, v2.rows, state_name(v2.state));
  printf("# node 2 active again %.2f s after SIGCONT (limit %.0f s)\n", back_after,
         BACK_LIMIT_S);
  CHECK(v2.rows == 1, "node 2 has %d rows after rejoining", v2.rows);
  CHECK(strcmp(v2.id, n2) == 0, "node 2 came back as %s, was %s", v2.id, n2);
  CHECK(v2.shards == 0, "the state holds %zu stale shards of node 2", v2.shards);
  double n1_back = await_alive(v1.rpc, PROCS, resumed_at, BACK_LIMIT_S, &alive);
  CHECK(n1_back >= 0, "node 1 sees %u gossip members alive %.0f s after SIGCONT, expected %d",
        alive, BACK_LIMIT_S, PROCS);
  printf("# node 1's gossip counts node 2 alive again by %.2f s after SIGCONT (polled from "
         "its activation on)\n", n1_back);
  long long inc_after = logged_incarnation(n2, log_mark, true, NULL);
  CHECK(inc_after > inc_before,
        "the controller's gossip did not see node 2 alive at a new incarnation (before %lld, "
        "after %lld)", inc_before, inc_after);
  printf("# gossip incarnation of node 2: %lld before the pause, %lld after\n", inc_before,
         inc_after);
  /* Load reports and queued events after the rejoin must not bring the old shard back. */
  mf_test_sleep_ms(1500);
  CHECK(view_node(2, &v2) && v2.rows == 1 &&
            v2.state == MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE && v2.shards == 0,
        "1.5 s after rejoining: node 2 rows %d, state %s, shards %zu", v2.rows,
        state_name(v2.state), v2.shards);
  printf("ok 3 - SIGCONT: node 2 rejoined with the same id at a new incarnation, active, "
         "no stale shard; node 1 sees it alive\n");

  /* 4. node 2 reconciled its own side: the shard the controller dropped is closed there */
  const char *events[] = {"transport.routerclose", "producer.close"}, *targets[] = {tid, pid};
  CHECK(await_events(ws, events, targets, 2, BACK_LIMIT_S),
        "the client's transport %s / producer %s on node 2 got no transport.routerclose / "
        "producer.close after the rejoin", tid, pid);
  CHECK(mf_test_node_status(v2.rpc, &alive, &routers), "node 2 does not answer node.Status");
  CHECK(routers == 0, "node 2's workers still hold %u router(s) the controller dropped", routers);
  CHECK(log_lines_with(2, n2_log_mark, "fenced after being declared dead") == 1,
        "node 2 did not log its fence exactly once");
  int stalled = log_lines_with(2, n2_log_mark, "stalled");
  CHECK(stalled == 0, "node 2 logged %d \"stalled\" line(s) after SIGCONT", stalled);
  CHECK(log_lines_with(2, n2_log_mark, "the node did not run for") >= 1,
        "node 2's watchdog did not notice it had been stopped");
  /* The client carries on in the same session: a new transport is placed by the
   * controller (node 1's shard or a new one here), and node 2's routers match the state. */
  create_transport(ws, 4, tid2, sizeof tid2);
  bool agree = false;
  for (int k = 0; k < 50 && !agree; k++) {
    agree = view_node(2, &v2) && mf_test_node_status(v2.rpc, &alive, &routers) &&
            routers == v2.shards && v2.router_shards >= 1;
    if (!agree) mf_test_sleep_ms(100);
  }
  CHECK(agree, "after a new transport: node 2 holds %u router(s), the state %zu shard(s) on it",
        routers, v2.shards);
  printf("# the client's new transport: node 2 holds %u router(s), as the state says\n",
         routers);
  mf_test_ws_free(ws);
  printf("ok 4 - node 2 closed the dropped shard (transport.routerclose, producer.close to its "
         "client), no false \"worker stalled\" after SIGCONT, and the client's session goes "
         "on\n");

  /* 5. SIGTERM everything, nodes first: clean exits */
  for (int i = NODES; i >= 0; i--) {
    CHECK(kill(server_of(i), SIGTERM) == 0, "SIGTERM process %d", i);
    int rc = mf_test_wait_status(wrapper[i]);
    wrapper[i] = 0;
    CHECK(rc == 0, "process %d exited with %d after SIGTERM", i, rc);
  }
  printf("ok 5 - SIGTERM: every process exits 0\n");
  if (getenv("MF_TEST_KEEP"))
    printf("# logs kept in %s\n", dir);
  else
    mf_test_remove_dir(dir);
  return 0;
}
