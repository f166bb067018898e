/* Issue 12 chaos test: kill -9 of the controller leader under public API load.
 *
 * Three mafalda-controller voters and two mafalda-node processes (127.0.0.5N, dev mode API,
 * --controllers listing all three). CLIENTS threads each loop on one node's WebSocket API:
 * router.join of a new room (the node opens it as a logical router through
 * controller.OpenRouter), router.createWebRtcTransport, transport.produce; every third
 * session stays open, the others are closed (their objects go away at once, --api-grace-ms
 * 0). After LOAD_BEFORE_S the leader is killed with SIGKILL; the load goes on for
 * LOAD_AFTER_S, then stops. Asserted:
 *  - no request hangs: each one is answered within REQUEST_DEADLINE_S; a refusal carries an
 *    error code and a message (counted by code and printed);
 *  - a new leader is elected (time printed) and no process crashed;
 *  - every acknowledged object is reflected in the new leader's linearizable state once
 *    the nodes' asynchronous records have landed (polled up to SETTLE_S): the routerId of
 *    every acknowledged join is a router of the state, every acknowledged producer of an
 *    open session is in the state under that router, and no producer of a closed session
 *    is left in it;
 *  - no duplicate ids among all acknowledged routers (one per room), transports and
 *    producers;
 *  - SIGTERM: the nodes and the two surviving controllers exit 0.
 * Usage: chaos_leader_api mafalda-controller mafalda-node [seconds-after-kill]
 * MF_TEST_KEEP=1 keeps the logs; MF_TEST_HOLD=<s> keeps the processes that long on failure;
 * MF_TEST_SETTLE_S=<s> waits that long instead of SETTLE_S for the records to land (to tell
 * slow from lost: the progress is printed every second). */
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "controller/rpc_client.h"
#include "controller/rpc_server.h"
#include "proto/controller.pb-c.h"
#include "tests/support/test_node_rpc.h"
#include "tests/support/test_proc.h"
#include "tests/support/ws_client.h"

#define CONTROLLERS 3
#define NODES 2
#define PROCS (CONTROLLERS + NODES)
#define CLIENTS 4
#define LOAD_BEFORE_S 3.0
#define REQUEST_DEADLINE_S 10.0
#define ELECTION_LIMIT_S 10.0
#define STOP_LIMIT_S 20.0 /* a node drains for up to 5 s (--drain-timeout-ms) */
#define SETTLE_S 8.0 /* below the 10 s shard linger, whose RemoveShard would hide a stale producer */
#define MAX_ROOMS 2048 /* per client */
#define ID_MAX 64

static const char *controller_bin, *node_bin;
static char dir[64];
static pid_t wrapper[PROCS];
static char ctl_url[CONTROLLERS][64];
static char api[NODES][48];
static atomic_bool stop_load;

static void fail_exit(void);

#define CHECK(cond, ...) MF_TEST_CHECK(fail_exit, cond, __VA_ARGS__)

static void fail_exit(void) {
  atomic_store(&stop_load, true);
  /* MF_TEST_HOLD=<seconds>: leave the processes running that long (attach a debugger). */
  const char *hold = getenv("MF_TEST_HOLD");
  if (hold) {
    fprintf(stderr, "holding the processes for %s s (logs in %s)\n", hold, dir);
    mf_test_sleep_ms(atoi(hold) * 1000);
  }
  mf_test_dump_logs(dir, 30);
  mf_test_abandon(dir, wrapper, PROCS);
  fflush(stdout);
  _exit(1); /* client threads may still be inside nng calls */
}

static void launch(int i, char **argv) {
  int rv = mf_test_launch_logged(dir, i, argv, &wrapper[i]);
  CHECK(rv == 0, "spawn of process %d: %s", i, strerror(rv));
}

/* Exit status of wrapper i within limit_s (as mf_test_wait_status), or -1: it hangs. */
static int wait_exit(int i, double limit_s) {
  double t0 = mf_test_now_s();
  while (mf_test_now_s() - t0 < limit_s) {
    int status;
    pid_t r = waitpid(wrapper[i], &status, WNOHANG);
    if (r == wrapper[i])
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0) return -2;
    mf_test_sleep_ms(50);
  }
  return -1;
}

/* ---- the load ---- */

typedef struct {
  char room[32];
  char router[ID_MAX], transport[ID_MAX], producer[ID_MAX];
  bool open; /* the session is still open at the end */
} room_rec_t;

typedef struct {
  int index;
  uv_thread_t thread;
  room_rec_t *rooms;
  int n_rooms;
  nng_stream *open[MAX_ROOMS];
  int n_open;
  /* requests */
  int requests, ok, failed;
  int hung;              /* no answer within REQUEST_DEADLINE_S */
  int unclear;           /* a refusal without code or message */
  int failed_in_window;  /* refused while started in [kill, elected + 1 s] */
  int ok_in_window, total_in_window;
  double max_latency_s;
  char codes[512];       /* "code: message" of the first refusals */
  int next_id;
} client_t;

static _Atomic double kill_at, elected_at; /* seconds; 0 = not yet (set by main) */

/* One request; returns its data (a new reference) on success, NULL on refusal or hang. */
static json_t *request(client_t *c, nng_stream *s, const char *method, json_t *data) {
  int id = ++c->next_id;
  json_t *req = json_pack("{s:i, s:s, s:o}", "id", id, "method", method, "data", data);
  char *text = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  double t0 = mf_test_now_s();
  c->requests++;
  json_t *answer = NULL;
  if (text && mf_test_ws_send(s, text, strlen(text), 5000) == 0) {
    while (!answer && mf_test_now_s() - t0 < REQUEST_DEADLINE_S) {
      json_t *m = mf_test_ws_recv(s, (int)(REQUEST_DEADLINE_S * 1000));
      if (!m) break;
      if (json_integer_value(json_object_get(m, "id")) == id && json_object_get(m, "ok"))
        answer = m;
      else
        json_decref(m); /* notifications */
    }
  }
  free(text);
  double latency = mf_test_now_s() - t0;
  if (latency > c->max_latency_s) c->max_latency_s = latency;
  double k = kill_at, e = elected_at;
  bool in_window = k > 0 && t0 >= k && (e == 0 || t0 <= e + 1.0);
  c->total_in_window += in_window;
  if (!answer) {
    c->hung++;
    return NULL;
  }
  json_t *result = NULL;
  if (json_is_true(json_object_get(answer, "ok"))) {
    c->ok++;
    c->ok_in_window += in_window;
    result = json_incref(json_object_get(answer, "data"));
  } else {
    c->failed++;
    c->failed_in_window += in_window;
    json_t *err = json_object_get(answer, "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (!code || !code[0] || !msg || !msg[0]) c->unclear++;
    size_t n = strlen(c->codes);
    if (n < 300)
      snprintf(c->codes + n, sizeof c->codes - n, "%s%s %s: %s", n ? "; " : "", method,
               code ? code : "?", msg ? msg : "?");
  }
  json_decref(answer);
  return result;
}

static const char *json_id(json_t *data, const char *key) {
  const char *v = json_string_value(json_object_get(data, key));
  return v && strlen(v) < ID_MAX ? v : NULL;
}

static void client_main(void *arg) {
  client_t *c = arg;
  int node = c->index % NODES;
  char host[48];
  snprintf(host, sizeof host, "%s", api[node]);
  char *colon = strrchr(host, ':');
  *colon = '\0';
  uint16_t port = (uint16_t)atoi(colon + 1);
  for (int iter = 0; !atomic_load(&stop_load) && c->n_rooms < MAX_ROOMS; iter++) {
    nng_stream *s = mf_test_ws_dial(host, port, "", 5000);
    if (!s) {
      c->requests++;
      c->hung++;
      mf_test_sleep_ms(100);
      continue;
    }
    room_rec_t *r = &c->rooms[c->n_rooms];
    memset(r, 0, sizeof *r);
    snprintf(r->room, sizeof r->room, "chaos-%d-%d", c->index, iter);
    json_t *d = request(c, s, "router.join", json_pack("{s:s}", "roomId", r->room));
    const char *v = d ? json_id(d, "routerId") : NULL;
    if (v) snprintf(r->router, sizeof r->router, "%s", v);
    json_decref(d);
    if (r->router[0]) {
      d = request(c, s, "router.createWebRtcTransport", json_object());
      v = d ? json_id(d, "id") : NULL;
      if (v) snprintf(r->transport, sizeof r->transport, "%s", v);
      json_decref(d);
    }
    if (r->transport[0]) {
      json_error_t je;
      json_t *params = json_pack_ex(
          &je, 0,
          "{s:s, s:[{s:s, s:i, s:i, s:[{s:s}, {s:s, s:s}]}], s:[{s:s, s:i}], s:[{s:i}], "
          "s:{s:s}}",
          "mid", "0", "codecs", "mimeType", "video/VP8", "payloadType", 96, "clockRate", 90000,
          "rtcpFeedback", "type", "nack", "type", "nack", "parameter", "pli", "headerExtensions",
          "uri", "urn:ietf:params:rtp-hdrext:sdes:mid", "id", 1, "encodings", "ssrc",
          1000 + c->index * 100000 + iter, "rtcp", "cname", "chaos");
      d = request(c, s, "transport.produce",
                  json_pack("{s:s, s:s, s:o}", "transportId", r->transport, "kind", "video",
                            "rtpParameters", params));
      v = d ? json_id(d, "id") : NULL;
      if (v) snprintf(r->producer, sizeof r->producer, "%s", v);
      json_decref(d);
    }
    c->n_rooms++;
    if (iter % 3 == 0 && c->n_open < MAX_ROOMS) {
      r->open = true;
      c->open[c->n_open++] = s;
    } else {
      mf_test_ws_free(s);
    }
  }
}

/* ---- controllers ---- */

static pid_t server_of(int i) { return mf_test_wait_child_of(wrapper[i], 4000); }

/* The controller that leads (index), or -1; skip = a killed one. */
static int find_leader(int skip) {
  for (int i = 0; i < CONTROLLERS; i++)
    if (i != skip && mf_rpc_is_leader(ctl_url[i], 500)) return i;
  return -1;
}

static Mafalda__Controller__Snapshot *state_of(int leader,
                                               Mafalda__Controller__StateResponse **resp) {
  Mafalda__Controller__StatusRequest req = MAFALDA__CONTROLLER__STATUS_REQUEST__INIT;
  req.linearizable = true;
  mf_rpc_reply_t reply;
  *resp = NULL;
  if (mf_rpc_call(ctl_url[leader], MF_RPC_METHOD_STATE, &req.base, 3000, &reply) != MF_OK)
    return NULL;
  if (reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK)
    *resp = mafalda__controller__state_response__unpack(NULL, reply.envelope->payload.len,
                                                        reply.envelope->payload.data);
  mf_rpc_reply_free(&reply);
  return *resp ? (*resp)->state : NULL;
}

static bool has_router(const Mafalda__Controller__Snapshot *st, const char *id) {
  for (size_t k = 0; k < st->n_routers; k++)
    if (strcmp(st->routers[k]->id, id) == 0) return true;
  return false;
}

static const Mafalda__Controller__Producer *find_producer(const Mafalda__Controller__Snapshot *st,
                                                          const char *id) {
  for (size_t k = 0; k < st->n_producers; k++)
    if (strcmp(st->producers[k]->id, id) == 0) return st->producers[k];
  return NULL;
}

/* What the state lacks (or holds too much of); 0 = consistent. why: the first problem. */
static int check_state(const Mafalda__Controller__Snapshot *st, client_t *cl, char *why,
                       size_t size) {
  int bad = 0;
  why[0] = '\0';
  for (int c = 0; c < CLIENTS; c++) {
    for (int i = 0; i < cl[c].n_rooms; i++) {
      const room_rec_t *r = &cl[c].rooms[i];
      char problem[256] = "";
      if (r->router[0] && !has_router(st, r->router)) {
        snprintf(problem, sizeof problem, "room %s: acknowledged router %s is not in the state",
                 r->room, r->router);
      } else if (r->producer[0]) {
        const Mafalda__Controller__Producer *p = find_producer(st, r->producer);
        if (r->open && !p)
          snprintf(problem, sizeof problem,
                   "room %s: acknowledged producer %s (session open) is not in the state",
                   r->room, r->producer);
        else if (r->open && strcmp(p->router_id, r->router) != 0)
          snprintf(problem, sizeof problem, "room %s: producer %s is under router %s, not %s",
                   r->room, r->producer, p->router_id, r->router);
        else if (!r->open && p)
          snprintf(problem, sizeof problem,
                   "room %s: producer %s of a closed session is still in the state", r->room,
                   r->producer);
      }
      if (problem[0]) {
        if (bad++ == 0) snprintf(why, size, "%s", problem);
      }
    }
  }
  return bad;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Duplicate ids among every acknowledged router (distinct rooms), transport and producer. */
static int duplicates(client_t *cl, int *total, char *dup, size_t size) {
  int n = 0;
  for (int c = 0; c < CLIENTS; c++) n += cl[c].n_rooms * 3;
  const char **ids = calloc((size_t)n + 1, sizeof *ids);
  CHECK(ids, "calloc");
  n = 0;
  for (int c = 0; c < CLIENTS; c++)
    for (int i = 0; i < cl[c].n_rooms; i++) {
      room_rec_t *r = &cl[c].rooms[i];
      if (r->router[0]) ids[n++] = r->router;
      if (r->transport[0]) ids[n++] = r->transport;
      if (r->producer[0]) ids[n++] = r->producer;
    }
  qsort(ids, (size_t)n, sizeof *ids, cmp_str);
  int dups = 0;
  for (int i = 1; i < n; i++)
    if (strcmp(ids[i], ids[i - 1]) == 0 && dups++ == 0) snprintf(dup, size, "%s", ids[i]);
  *total = n;
  free(ids);
  return dups;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s mafalda-controller mafalda-node [seconds-after-kill]\n", argv[0]);
    return 2;
  }
  controller_bin = argv[1];
  node_bin = argv[2];
  double load_after = argc > 3 ? atof(argv[3]) : 5.0;
  CHECK(load_after > 0 && load_after <= 600, "seconds-after-kill: 1..600");
  char wrap_deadline[16];
  snprintf(wrap_deadline, sizeof wrap_deadline, "%d", (int)load_after + 120);
  snprintf(dir, sizeof dir, "/tmp/mf-chaos-leader-XXXXXX");
  CHECK(mkdtemp(dir), "mkdtemp");

  /* three voters */
  char raft[CONTROLLERS][48], rpc[CONTROLLERS][48], gossip[CONTROLLERS][48];
  char peers[512] = "", all_rpc[192] = "";
  for (int i = 0; i < CONTROLLERS; i++) {
    snprintf(raft[i], sizeof raft[i], "127.0.0.1:%d", mf_test_free_port());
    snprintf(rpc[i], sizeof rpc[i], "127.0.0.1:%d", mf_test_free_port());
    snprintf(gossip[i], sizeof gossip[i], "127.0.0.1:%d", mf_test_free_port());
    snprintf(ctl_url[i], sizeof ctl_url[i], "tcp://%s", rpc[i]);
    size_t n = strlen(peers);
    snprintf(peers + n, sizeof peers - n, "%s%d@%s/%s", i ? "," : "", i + 1, raft[i], rpc[i]);
    n = strlen(all_rpc);
    snprintf(all_rpc + n, sizeof all_rpc - n, "%s%s", i ? "," : "", rpc[i]);
  }
  for (int i = 0; i < CONTROLLERS; i++) {
    char id[8], data[128];
    snprintf(id, sizeof id, "%d", i + 1);
    snprintf(data, sizeof data, "%s/ctl%d", dir, i + 1);
    char *cargv[] = {"timeout", "-s", "KILL", wrap_deadline, (char *)controller_bin, "--id", id,
                     "--listen", raft[i], "--rpc-listen", rpc[i], "--peers", peers,
                     "--data-dir", data, "--election-timeout", "300", "--gossip-listen",
                     gossip[i], "--gossip-join", gossip[0], NULL};
    launch(i, cargv);
  }
  double t0 = mf_test_now_s();
  int leader = -1;
  while (leader < 0 && mf_test_now_s() - t0 < 20) {
    leader = find_leader(-1);
    if (leader < 0) mf_test_sleep_ms(100);
  }
  CHECK(leader >= 0, "no controller leads");

  /* two nodes */
  for (int n = 0; n < NODES; n++) {
    char ip[16];
    snprintf(ip, sizeof ip, "127.0.0.%d", 51 + n);
    snprintf(api[n], sizeof api[n], "%s:%d", ip, mf_test_free_port());
    char *nargv[] = {"timeout", "-s", "KILL", wrap_deadline, (char *)node_bin, "--workers", "2",
                     "--rtc-listen-ip", ip, "--announced-ip", ip, "--rtc-port-base", "0",
                     "--controller=false", "--controllers", all_rpc, "--join", gossip[0],
                     "--gossip-port", "0", "--node-rpc-port", "0", "--api-listen", api[n],
                     "--api-grace-ms", "0", "--drain-timeout-ms", "5000", "--api-keepalive-ms", "1000",
                     "--report-interval-ms", "500", NULL};
    launch(CONTROLLERS + n, nargv);
  }
  /* Both nodes registered and active before the load starts. */
  bool active = false;
  while (!active && mf_test_now_s() - t0 < 30) {
    Mafalda__Controller__StateResponse *resp;
    const Mafalda__Controller__Snapshot *st = state_of(leader, &resp);
    int n_active = 0;
    for (size_t k = 0; st && k < st->n_nodes; k++)
      n_active += st->nodes[k]->state == MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE;
    if (resp) mafalda__controller__state_response__free_unpacked(resp, NULL);
    active = n_active == NODES;
    if (!active) mf_test_sleep_ms(100);
  }
  CHECK(active, "the nodes did not become active");
  printf("ok 1 - 3 controllers (leader %d) and %d active nodes\n", leader + 1, NODES);

  /* 2. load, kill -9 the leader, more load */
  static client_t clients[CLIENTS];
  for (int c = 0; c < CLIENTS; c++) {
    clients[c].index = c;
    clients[c].rooms = calloc(MAX_ROOMS, sizeof(room_rec_t));
    CHECK(clients[c].rooms, "calloc");
    CHECK(uv_thread_create(&clients[c].thread, client_main, &clients[c]) == 0, "thread");
  }
  mf_test_sleep_ms((int)(LOAD_BEFORE_S * 1000));
  pid_t victim = server_of(leader);
  CHECK(victim > 0 && kill(victim, SIGKILL) == 0, "kill -9 of the leader");
  kill_at = mf_test_now_s();
  int new_leader = -1;
  while (new_leader < 0 && mf_test_now_s() - kill_at < ELECTION_LIMIT_S) {
    new_leader = find_leader(leader);
    if (new_leader < 0) mf_test_sleep_ms(20);
  }
  CHECK(new_leader >= 0, "no new leader %.0f s after kill -9", ELECTION_LIMIT_S);
  elected_at = mf_test_now_s();
  printf("# leader %d killed; controller %d leads %.2f s later\n", leader + 1, new_leader + 1,
         elected_at - kill_at);
  while (mf_test_now_s() - kill_at < load_after) mf_test_sleep_ms(100);
  atomic_store(&stop_load, true);
  for (int c = 0; c < CLIENTS; c++) uv_thread_join(&clients[c].thread);
  int rc_victim = mf_test_wait_status(wrapper[leader]);
  wrapper[leader] = 0;
  CHECK(rc_victim == 137, "the killed leader's wrapper exited with %d", rc_victim);

  int requests = 0, ok = 0, failed = 0, hung = 0, unclear = 0, rooms = 0;
  int win_total = 0, win_ok = 0, win_failed = 0, acked_producers = 0;
  double max_latency = 0;
  for (int c = 0; c < CLIENTS; c++) {
    client_t *cl = &clients[c];
    requests += cl->requests;
    ok += cl->ok;
    failed += cl->failed;
    hung += cl->hung;
    unclear += cl->unclear;
    rooms += cl->n_rooms;
    win_total += cl->total_in_window;
    win_ok += cl->ok_in_window;
    win_failed += cl->failed_in_window;
    if (cl->max_latency_s > max_latency) max_latency = cl->max_latency_s;
    for (int i = 0; i < cl->n_rooms; i++) acked_producers += cl->rooms[i].producer[0] != 0;
    if (cl->codes[0]) printf("# client %d refusals: %s\n", c, cl->codes);
  }
  printf("# load: %d clients, %d rooms, %d requests: %d ok, %d refused, %d unanswered; "
         "slowest answer %.2f s\n", CLIENTS, rooms, requests, ok, failed, hung, max_latency);
  printf("# started between the kill and 1 s after the election: %d requests, %d ok, %d "
         "refused\n", win_total, win_ok, win_failed);
  CHECK(hung == 0, "%d requests got no answer within %.0f s", hung, REQUEST_DEADLINE_S);
  CHECK(unclear == 0, "%d refusals without an error code and message", unclear);
  CHECK(acked_producers > 0, "no producer was acknowledged");
  for (int i = 0; i < PROCS; i++) {
    if (i == leader) continue;
    int status;
    CHECK(waitpid(wrapper[i], &status, WNOHANG) == 0, "process %d ended during the test", i);
  }
  printf("ok 2 - leader killed under API load: every request answered (%d refused, each with "
         "a code and a message), no process crashed\n", failed);

  /* 3. acknowledged objects in the new leader's state */
  char dup[ID_MAX] = "";
  int total_ids = 0;
  int dups = duplicates(clients, &total_ids, dup, sizeof dup);
  CHECK(dups == 0, "%d duplicate ids among %d acknowledged ids (e.g. %s)", dups, total_ids, dup);
  printf("ok 3 - no duplicate id among %d acknowledged routers, transports and producers\n",
         total_ids);
  char why[512] = "";
  int bad = -1;
  double settle0 = mf_test_now_s();
  size_t n_routers = 0, n_producers = 0;
  int polls = 0;
  double settle_s = getenv("MF_TEST_SETTLE_S") ? atof(getenv("MF_TEST_SETTLE_S")) : SETTLE_S;
  double next_print = settle0 + 1;
  while (mf_test_now_s() - settle0 < settle_s) {
    int l = find_leader(leader);
    Mafalda__Controller__StateResponse *resp = NULL;
    const Mafalda__Controller__Snapshot *st = l >= 0 ? state_of(l, &resp) : NULL;
    if (st) {
      bad = check_state(st, clients, why, sizeof why);
      n_routers = st->n_routers;
      n_producers = st->n_producers;
    }
    if (resp) mafalda__controller__state_response__free_unpacked(resp, NULL);
    if (bad == 0) break;
    if (polls++ == 0)
      printf("# right after the load: %d acknowledged objects not (yet) reflected, e.g. %s\n", bad,
             why);
    if (mf_test_now_s() > next_print) {
      printf("# %.0f s: %d not reflected, %zu producers\n", mf_test_now_s() - settle0, bad, n_producers);
      fflush(stdout);
      next_print += 1;
    }
    mf_test_sleep_ms(250);
  }
  CHECK(bad == 0, "%d acknowledged objects disagree with the state after %.0f s: %s", bad,
        SETTLE_S, why);
  printf("# state settled %.2f s after the load stopped: %zu routers, %zu producers\n",
         mf_test_now_s() - settle0, n_routers, n_producers);
  printf("ok 4 - every acknowledged router and open producer is in the new leader's state; "
         "no closed session's producer is\n");

  /* 4. clean stop */
  for (int c = 0; c < CLIENTS; c++) {
    for (int i = 0; i < clients[c].n_open; i++) mf_test_ws_free(clients[c].open[i]);
    free(clients[c].rooms);
  }
  for (int i = PROCS - 1; i >= 0; i--) {
    if (wrapper[i] <= 0) continue;
    pid_t pid = server_of(i);
    CHECK(pid > 0 && kill(pid, SIGTERM) == 0, "SIGTERM process %d", i);
    int rc = wait_exit(i, STOP_LIMIT_S);
    CHECK(rc != -1, "process %d still runs %.0f s after SIGTERM", i, STOP_LIMIT_S);
    wrapper[i] = 0;
    CHECK(rc == 0, "process %d exited with %d after SIGTERM", i, rc);
  }
  printf("ok 5 - SIGTERM: the nodes and the surviving controllers exit 0\n");
  if (getenv("MF_TEST_KEEP"))
    printf("# logs kept in %s\n", dir);
  else
    mf_test_remove_dir(dir);
  return 0;
}
