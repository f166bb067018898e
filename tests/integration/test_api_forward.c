/* Node -> node API forwarding (node/gateway_forward.c, gateway_forward_in.c) without a
 * browser: one mafalda-controller (gossip on) and two mafalda-node processes, node 1 on
 * 127.0.0.1 and node 2 on 127.0.0.2, each with one worker whose capacity (500 pps at the 80%
 * watermark, 300 pps expected per transport) fits ONE transport until the controller's
 * pending-load account forgets the placement (10 s). Clients A, B, D talk to node 1, E to
 * node 2:
 *  1. A and B join; of their first two transports one stays on node 1 (B's), the other is
 *     placed on node 2 (A's: ICE candidate 127.0.0.2, node 1 logs "go through link", node
 *     2's /metrics counts it); a third is refused (limit_exceeded);
 *  2. A's calls on it are forwarded: connect; node 2's errors keep their code
 *     (invalid_state for a second connect, invalid_argument for bad rtpParameters), node 1
 *     answers its own not_found (unknown ids, another session's transport);
 *  3. A produces (audio) on node 2: B hears router.newproducer (A does not), lists and
 *     consumes it; producer.pause / resume / getStats are forwarded and B's consumer hears
 *     producerpause / producerresume;
 *  4. A closes the producer: B gets consumer.producerclose;
 *  5. A's WebSocket closes and a new one resumes the session within the grace: the link
 *     stays, and transport.close goes through it (node 2's transports drop to 0);
 *  6. A makes another transport (on node 2 if the scheduler puts it there: printed), then its
 *     WebSocket closes: after the 500 ms grace node 1 ends the link, node 2 ends its side and
 *     closes A's objects;
 *  7. once placements expire: D (node 1's client) gets a transport on node 2 and E (node 2's
 *     client) one on node 1; D produces and consumes B's producer on node 2 (forwarded
 *     consume, pause, getStats, close, a producerpause delivered back), E produces on node 1.
 *     Node 2 is killed with SIGKILL: D gets transport.routerclose (reason "nodelost") and
 *     producer.close once gossip declares node 2 dead, node 1 logs "ended: its node was
 *     lost" for D's link and ends E's link from node 2 (E's transport closes there);
 *  8. node 1 and the controller exit 0 on SIGTERM (LeakSanitizer clean under ASan), and no
 *     log has a sanitizer report.
 * Every child runs under `timeout -s KILL`; everything left is killed on failure.
 * Usage: test_api_forward path/to/mafalda-controller path/to/mafalda-node */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/test_node_rpc.h"
#include "tests/support/http_client.h"
#include "tests/support/test_proc.h"
#include "tests/support/ws_client.h"

#define NODES 2
#define PROCS (NODES + 1) /* index 0: the controller */
#define ROOM "fwd-room"
#define WRAP_DEADLINE "80" /* seconds; below the ctest TIMEOUT (90) */
#define CALL_LIMIT_S 10.0  /* any one API answer */
#define PLACE_LIMIT_S 15.0 /* the pending-load account forgets a placement after 10 s */
#define LOST_LIMIT_S 12.0  /* gossip declares a killed node dead in ~4-6 s */

static const char *controller_bin, *node_bin;
static char dir[64];
static pid_t wrapper[PROCS];
static char ctl_url[64], ctl_rpc[32], gossip[32];
static int api_port[PROCS];
static char node_id[PROCS][80];
static double t_start;

static void fail_exit(void);

#define CHECK(cond, ...) MF_TEST_CHECK(fail_exit, cond, __VA_ARGS__)

static void fail_exit(void) {
  mf_test_dump_logs(dir, 60);
  mf_test_abandon(dir, wrapper, PROCS);
  exit(1);
}

static double elapsed(void) { return mf_test_now_s() - t_start; }

/* ---- processes ---- */

static void log_path(int i, char *out, size_t size) { mf_test_log_path(dir, i, out, size); }

static void ip_of(int i, char *out, size_t size) { snprintf(out, size, "127.0.0.%d", i); }

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

static void start_node(int i) {
  char ip[32], api[48];
  ip_of(i, ip, sizeof ip);
  api_port[i] = mf_test_free_port();
  snprintf(api, sizeof api, "%s:%d", ip, api_port[i]);
  /* One transport fills a worker: 300 + 300 > 0.8 * 500. */
  char *argv[] = {"timeout", "-s", "KILL", WRAP_DEADLINE, (char *)node_bin, "--workers", "1",
                  "--rtc-listen-ip", ip, "--announced-ip", ip, "--rtc-port-base", "0",
                  "--controller=false", "--controllers", ctl_rpc, "--join", gossip,
                  "--gossip-port", "0", "--node-rpc-port", "0", "--api-listen", api,
                  "--api-grace-ms", "500", "--drain-timeout-ms", "5000",
                  "--report-interval-ms", "500", "--worker-capacity-pps", "500",
                  "--transport-pps", "300", "--log-level", "info", NULL};
  launch(i, argv);
}

/* The server under wrapper i (signals go to it, never to `timeout`). */
static pid_t server_of(int i) {
  pid_t pid = mf_test_wait_child_of(wrapper[i], 4000);
  CHECK(pid > 0, "process %d has no server child", i);
  return pid;
}

/* Waits up to limit_s for wrapper i to exit; its status (the server's, through timeout). */
static int wait_exit(int i, double limit_s) {
  double t0 = mf_test_now_s();
  for (;;) {
    int st;
    pid_t r = waitpid(wrapper[i], &st, WNOHANG);
    if (r == wrapper[i]) {
      wrapper[i] = 0;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    CHECK(r == 0 || errno == EINTR, "waitpid of process %d: %s", i, strerror(errno));
    CHECK(mf_test_now_s() - t0 < limit_s, "process %d still runs %.0f s after SIGTERM", i,
          limit_s);
    mf_test_sleep_ms(50);
  }
}

/* ---- logs ---- */

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

/* Lines of process i's log from byte `from` on that contain needle (and needle2, if set). */
static int log_count(int i, long from, const char *needle, const char *needle2) {
  char path[128], line[2048];
  log_path(i, path, sizeof path);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  if (from > 0) fseek(f, from, SEEK_SET);
  int n = 0;
  while (fgets(line, sizeof line, f))
    n += strstr(line, needle) != NULL && (!needle2 || strstr(line, needle2) != NULL);
  fclose(f);
  return n;
}

/* Seconds until process i logged such a line (from byte `from` on), or -1 after limit_s. */
static double await_log(int i, long from, const char *needle, const char *needle2,
                        double limit_s) {
  double t0 = mf_test_now_s();
  do {
    if (log_count(i, from, needle, needle2) > 0) return mf_test_now_s() - t0;
    mf_test_sleep_ms(50);
  } while (mf_test_now_s() - t0 < limit_s);
  return -1;
}

/* Node i's id from its "node <id> is active" line; false while it has none. */
static bool active_id(int i, char *out, size_t size) {
  char path[128], line[2048];
  log_path(i, path, sizeof path);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) {
    char *end = strstr(line, " is active");
    if (!end) continue;
    *end = '\0';
    char *start = NULL;
    for (char *p = strstr(line, "node "); p; p = strstr(p + 1, "node ")) start = p + 5;
    if (start && *start && !strchr(start, ' ')) {
      snprintf(out, size, "%s", start);
      found = true;
    }
  }
  fclose(f);
  return found;
}

/* ---- /metrics over HTTP (the node's API port on its own address) ---- */

static char *http_get(int node, const char *path) {
  char ip[32];
  ip_of(node, ip, sizeof ip);
  return test_http_get_body(ip, (uint16_t)api_port[node], path, 3000);
}

/* Sum of a per-worker gauge of node's /metrics; -1 when /metrics did not answer. */
static long long metric(int node, const char *series) {
  char *m = http_get(node, "/metrics");
  long long v = m ? test_metric_sum(m, series) : -1;
  free(m);
  return v;
}

/* Seconds until node's /metrics counts `want` transports, or -1 after limit_s (*seen: the
 * last count). */
static double await_transports(int node, long long want, double limit_s, long long *seen) {
  double t0 = mf_test_now_s();
  do {
    *seen = metric(node, "mafalda_worker_transports");
    if (*seen == want) return mf_test_now_s() - t0;
    mf_test_sleep_ms(100);
  } while (mf_test_now_s() - t0 < limit_s);
  return -1;
}

/* ---- WebSocket clients of node 1 ---- */

typedef struct {
  const char *name;
  nng_stream *s;
  json_t *events; /* notifications that came while the client waited for something else */
  int next_id;
  char token[256]; /* router.join's resumeToken */
} client_t;

/* A WebSocket client of node `node`'s API (dev mode: no token). */
static void client_open(client_t *c, const char *name, int node) {
  memset(c, 0, sizeof *c);
  c->name = name;
  c->events = json_array();
  char ip[32];
  ip_of(node, ip, sizeof ip);
  for (int tries = 0; tries < 50 && !c->s; tries++) {
    c->s = mf_test_ws_dial(ip, (uint16_t)api_port[node], NULL, 2000);
    if (!c->s) mf_test_sleep_ms(100);
  }
  CHECK(c->s, "client %s cannot reach node %d's API", name, node);
}

static void client_close(client_t *c) {
  if (c->s) mf_test_ws_free(c->s);
  c->s = NULL;
  json_decref(c->events);
  c->events = NULL;
}

/* The answer to a new request (the whole message; the caller decrefs). Notifications that
 * come first are kept in c->events. */
static json_t *call(client_t *c, const char *method, json_t *data) {
  int id = ++c->next_id;
  json_t *req = json_pack("{s:i, s:s, s:o}", "id", id, "method", method,
                          "data", data ? data : json_object());
  char *text = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  CHECK(text && mf_test_ws_send(c->s, text, strlen(text), 5000) == 0, "%s: ws send of %s",
        c->name, method);
  free(text);
  double t0 = mf_test_now_s();
  for (;;) {
    int left = (int)((CALL_LIMIT_S - (mf_test_now_s() - t0)) * 1000);
    CHECK(left > 0, "%s: no answer to %s in %.0f s", c->name, method, CALL_LIMIT_S);
    json_t *m = mf_test_ws_recv(c->s, left);
    CHECK(m, "%s: no answer to %s (connection ended or timed out)", c->name, method);
    if (json_object_get(m, "event")) {
      json_array_append_new(c->events, m);
      continue;
    }
    if (json_integer_value(json_object_get(m, "id")) == id && json_object_get(m, "ok")) return m;
    json_decref(m);
  }
}

/* The answer's data (borrowed from *r); fails the test on an error answer. */
static json_t *ok_data(const client_t *c, json_t *r, const char *method) {
  if (!json_is_true(json_object_get(r, "ok"))) {
    char *text = json_dumps(r, JSON_COMPACT);
    fprintf(stderr, "%s: %s failed: %s\n", c->name, method, text ? text : "?");
    free(text);
    CHECK(false, "%s: %s failed", c->name, method);
  }
  json_t *d = json_object_get(r, "data");
  CHECK(json_is_object(d), "%s: %s answered no data object", c->name, method);
  return d;
}

static void call_ok(client_t *c, const char *method, json_t *data) {
  json_t *r = call(c, method, data);
  ok_data(c, r, method);
  json_decref(r);
}

static const char *error_code(json_t *r) {
  return json_string_value(json_object_get(json_object_get(r, "error"), "code"));
}

/* The call must fail with `code`; prints the message. */
static void call_fails(client_t *c, const char *what, const char *method, json_t *data,
                       const char *code) {
  json_t *r = call(c, method, data);
  const char *got = error_code(r);
  const char *msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
  CHECK(json_is_false(json_object_get(r, "ok")) && got && strcmp(got, code) == 0,
        "%s: %s (%s) answered %s, want %s (%s)", c->name, what, method,
        json_is_true(json_object_get(r, "ok")) ? "ok" : got ? got : "?", code,
        msg ? msg : "");
  printf("#   %s -> %s (\"%s\")\n", what, code, msg ? msg : "");
  json_decref(r);
}

/* The string value of j, "" when it is not a string. */
static const char *str_of(const json_t *j) {
  const char *v = json_string_value(j);
  return v ? v : "";
}

static bool event_matches(json_t *m, const char *event, const char *target) {
  const char *ev = json_string_value(json_object_get(m, "event"));
  const char *tg = json_string_value(json_object_get(m, "target"));
  return ev && strcmp(ev, event) == 0 && (!target || (tg && strcmp(tg, target) == 0));
}

/* The first kept notification `event` about target (NULL: any), taken out; NULL if none. */
static json_t *take_event(client_t *c, const char *event, const char *target) {
  size_t i;
  json_t *m;
  json_array_foreach(c->events, i, m) {
    if (!event_matches(m, event, target)) continue;
    json_incref(m);
    json_array_remove(c->events, i);
    return m;
  }
  return NULL;
}

/* Waits up to limit_s for notification `event` about target (kept ones first); the message,
 * or NULL. Other notifications are kept. */
static json_t *wait_event(client_t *c, const char *event, const char *target, double limit_s) {
  json_t *m = take_event(c, event, target);
  double t0 = mf_test_now_s();
  while (!m && mf_test_now_s() - t0 < limit_s) {
    json_t *in = mf_test_ws_recv(c->s, 200);
    if (!in) continue;
    if (!json_object_get(in, "event")) {
      json_decref(in);
      continue;
    }
    if (event_matches(in, event, target)) m = in;
    else json_array_append_new(c->events, in);
  }
  return m;
}

/* Reads whatever comes for `s` seconds into c->events. */
static void drain(client_t *c, double s) {
  double t0 = mf_test_now_s();
  while (mf_test_now_s() - t0 < s) {
    json_t *in = mf_test_ws_recv(c->s, 100);
    if (in && json_object_get(in, "event")) json_array_append_new(c->events, in);
    else json_decref(in);
  }
}

static int count_events(const client_t *c, const char *event, const char *target) {
  int n = 0;
  size_t i;
  json_t *m;
  json_array_foreach(c->events, i, m) n += event_matches(m, event, target);
  return n;
}

/* The node (1 or 2) whose address a createWebRtcTransport answer's candidate carries; 0 if
 * neither. */
static int node_of_transport(json_t *d) {
  json_t *cand = json_array_get(json_object_get(d, "iceCandidates"), 0);
  const char *ip = json_string_value(json_object_get(cand, "ip"));
  const char *addr = json_string_value(json_object_get(cand, "address"));
  if (!ip || !addr || strcmp(ip, addr) != 0) return 0;
  for (int i = 1; i <= NODES; i++) {
    char want[32];
    ip_of(i, want, sizeof want);
    if (strcmp(ip, want) == 0) return i;
  }
  return 0;
}

/* router.createWebRtcTransport once: the node it is on (its id in out), or 0 when refused
 * (the answer's error code in code). */
static int try_transport(client_t *c, char *out, size_t size, char *code, size_t code_size) {
  json_t *r = call(c, "router.createWebRtcTransport", json_object());
  int node = 0;
  code[0] = '\0';
  if (json_is_true(json_object_get(r, "ok"))) {
    json_t *d = ok_data(c, r, "router.createWebRtcTransport");
    const char *id = json_string_value(json_object_get(d, "id"));
    CHECK(id, "%s: router.createWebRtcTransport answered no id", c->name);
    snprintf(out, size, "%s", id);
    node = node_of_transport(d);
    CHECK(node, "%s: transport %s has no candidate on a node's address", c->name, id);
    CHECK(json_object_get(json_object_get(d, "dtlsParameters"), "fingerprints") &&
              json_object_get(json_object_get(d, "iceParameters"), "usernameFragment"),
          "%s: transport %s answered without ICE / DTLS parameters", c->name, id);
  } else {
    snprintf(code, code_size, "%s", error_code(r) ? error_code(r) : "?");
  }
  json_decref(r);
  return node;
}

static const char *const opus_params =
    "{\"mid\":\"0\",\"codecs\":[{\"mimeType\":\"audio/opus\",\"payloadType\":111,"
    "\"clockRate\":48000,\"channels\":2,\"parameters\":{\"useinbandfec\":1},"
    "\"rtcpFeedback\":[]}],\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\","
    "\"id\":1}],\"encodings\":[{\"ssrc\":22222222}],\"rtcp\":{\"cname\":\"fwd\"}}";

/* An Opus producer on transport tid (ssrc distinct per producer, appData.name); its id. */
static void produce_audio(client_t *c, const char *tid, json_int_t ssrc, const char *name,
                          char *out, size_t size) {
  json_t *params = json_loads(opus_params, 0, NULL);
  CHECK(params, "opus_params is not JSON");
  json_object_set_new(json_array_get(json_object_get(params, "encodings"), 0), "ssrc",
                      json_integer(ssrc));
  json_t *r = call(c, "transport.produce",
                   json_pack("{s:s, s:s, s:o, s:{s:s}}", "transportId", tid, "kind", "audio",
                             "rtpParameters", params, "appData", "name", name));
  const char *id = json_string_value(json_object_get(ok_data(c, r, "transport.produce"), "id"));
  CHECK(id, "%s: transport.produce answered no id", c->name);
  snprintf(out, size, "%s", id);
  json_decref(r);
}

/* router.join of ROOM: the routerId in out, the resumeToken in c->token. */
static void join(client_t *c, char *out, size_t size) {
  json_t *r = call(c, "router.join", json_pack("{s:s}", "roomId", ROOM));
  json_t *d = ok_data(c, r, "router.join");
  snprintf(out, size, "%s", str_of(json_object_get(d, "routerId")));
  snprintf(c->token, sizeof c->token, "%s", str_of(json_object_get(d, "resumeToken")));
  CHECK(out[0] && c->token[0], "%s: router.join answered no routerId / resumeToken", c->name);
  json_decref(r);
}

/* The room's rtpCapabilities (a new reference). */
static json_t *rtp_caps(client_t *c) {
  json_t *r = call(c, "router.getRtpCapabilities", json_object());
  json_t *caps = json_incref(json_object_get(ok_data(c, r, "router.getRtpCapabilities"),
                                             "rtpCapabilities"));
  json_decref(r);
  CHECK(json_is_object(caps), "%s: router.getRtpCapabilities answered no rtpCapabilities",
        c->name);
  return caps;
}

/* A consumer of producer pid on transport tid (paused, as mediasoup-client does); its id. */
static void consume(client_t *c, const char *tid, const char *pid, json_t *caps, char *out,
                    size_t size) {
  json_t *r = call(c, "transport.consume",
                   json_pack("{s:s, s:s, s:O, s:b}", "transportId", tid, "producerId", pid,
                             "rtpCapabilities", caps, "paused", 1));
  json_t *d = ok_data(c, r, "transport.consume");
  const char *id = json_string_value(json_object_get(d, "id"));
  CHECK(id && strcmp(str_of(json_object_get(d, "producerId")), pid) == 0 &&
            strcmp(str_of(json_object_get(d, "kind")), "audio") == 0,
        "%s: transport.consume answer: id %s, producerId / kind not %s / audio", c->name,
        id ? id : "?", pid);
  snprintf(out, size, "%s", id);
  json_decref(r);
}

/* A syntactically valid DTLS client fingerprint (no DTLS peer ever shows up). */
static json_t *dtls_params(void) {
  char fp[32 * 3];
  for (int i = 0; i < 32; i++) snprintf(fp + i * 3, 4, "%02X%s", (i * 7 + 3) & 0xff, i < 31 ? ":" : "");
  return json_pack("{s:s, s:[{s:s, s:s}]}", "role", "client", "fingerprints", "algorithm",
                   "sha-256", "value", fp);
}

/* ---- the test ---- */

static void check_sanitizer_logs(void) {
  for (int i = 0; i < PROCS; i++) {
    int bad = log_count(i, 0, "runtime error:", NULL) + log_count(i, 0, "AddressSanitizer", NULL) +
              log_count(i, 0, "LeakSanitizer", NULL);
    CHECK(bad == 0, "process %d's log has %d sanitizer report line(s) (see below)", i, bad);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s mafalda-controller mafalda-node\n", argv[0]);
    return 2;
  }
  controller_bin = argv[1];
  node_bin = argv[2];
  snprintf(dir, sizeof dir, "/tmp/mf-fwd-XXXXXX");
  CHECK(mkdtemp(dir), "mkdtemp");
  t_start = mf_test_now_s();

  /* ---- 0. the cluster ---- */
  start_controller();
  CHECK(mf_test_wait_leader(ctl_url, 20), "the controller did not become leader");
  for (int i = 1; i <= NODES; i++) start_node(i);
  double t0 = mf_test_now_s();
  for (int i = 1; i <= NODES; i++) {
    while (!active_id(i, node_id[i], sizeof node_id[i])) {
      CHECK(mf_test_now_s() - t0 < 30, "node %d did not log \"is active\" in 30 s", i);
      mf_test_sleep_ms(50);
    }
  }
  /* node 1 must know node 2 as a gossip member to notice its death in step 7 */
  CHECK(await_log(1, 0, "gossip: member ", node_id[2], 10) >= 0,
        "node 1 never heard of node 2 (%s) through gossip", node_id[2]);
  printf("# cluster up at %.1f s: node 1 %s, node 2 %s\n", elapsed(), node_id[1], node_id[2]);

  /* ---- 1. a transport of node 1's client placed on node 2 ---- */
  client_t a, b, d, e;
  char router[64];
  client_open(&a, "A", 1);
  client_open(&b, "B", 1);
  join(&a, router, sizeof router);
  char router_b[64];
  join(&b, router_b, sizeof router_b);
  CHECK(strcmp(router, router_b) == 0, "B joined router %s, A %s", router_b, router);
  /* One transport fills a worker: the first goes to one node (node 1 when the scheduler
   * sees a tie, which the measured CPU load usually breaks), the second to the other. The
   * client whose transport went to node 2 is A from here on. */
  char t2[64], tb[64], code[64];
  int tb_node = try_transport(&b, tb, sizeof tb, code, sizeof code);
  CHECK(tb_node, "the first transport was refused: %s", code);
  double placed_at = mf_test_now_s();
  int t2_node = try_transport(&a, t2, sizeof t2, code, sizeof code);
  CHECK(t2_node && t2_node != tb_node, "the second transport: node %d (%s), want node %d (node "
        "%d is full)", t2_node, code, 3 - tb_node, tb_node);
  printf("#   the first transport on node %d, the second on node %d\n", tb_node, t2_node);
  if (t2_node != 2) {
    client_t tmp = a;
    a = b;
    b = tmp;
    a.name = "A";
    b.name = "B";
    char tid[64];
    snprintf(tid, sizeof tid, "%s", t2);
    snprintf(t2, sizeof t2, "%s", tb);
    snprintf(tb, sizeof tb, "%s", tid);
    tb_node = 1;
  }
  char third[64];
  int third_node = try_transport(&a, third, sizeof third, code, sizeof code);
  if (mf_test_now_s() - placed_at < 8)
    CHECK(third_node == 0 && strcmp(code, "limit_exceeded") == 0,
          "a third transport with both nodes full: node %d / %s, want limit_exceeded",
          third_node, code);
  CHECK(log_count(1, 0, "go through link", NULL) == 1,
        "node 1 logged \"go through link\" %d times, want 1",
        log_count(1, 0, "go through link", NULL));
  CHECK(log_count(1, 0, "transport placed on node ", node_id[2]) == 1,
        "node 1 did not log the placement on node 2");
  CHECK(await_log(2, 0, "'s client runs in room '" ROOM "' here", node_id[1], 2) >= 0,
        "node 2 did not open a session for node 1's client");
  long long seen;
  CHECK(await_transports(2, 1, 3, &seen) >= 0, "node 2's /metrics counts %lld transports, want 1",
        seen);
  CHECK(await_transports(1, 1, 3, &seen) >= 0, "node 1's /metrics counts %lld transports, want 1",
        seen);
  printf("ok 1 - B's transport on node 1, A's on node 2 (candidate 127.0.0.2, one link, node "
         "2's /metrics: 1), a third refused (limit_exceeded) at %.1f s\n", elapsed());

  /* ---- 2. calls on the forwarded transport ---- */
  call_ok(&a, "transport.connect",
          json_pack("{s:s, s:o}", "transportId", t2, "dtlsParameters", dtls_params()));
  call_fails(&a, "a second connect, refused by node 2", "transport.connect",
             json_pack("{s:s, s:o}", "transportId", t2, "dtlsParameters", dtls_params()),
             "invalid_state");
  call_fails(&a, "produce with bad rtpParameters, refused by node 2", "transport.produce",
             json_pack("{s:s, s:s, s:{s:[]}}", "transportId", t2, "kind", "audio",
                       "rtpParameters", "codecs"),
             "invalid_argument");
  /* not forwarded: node 1 answers these itself */
  call_fails(&a, "consumer.pause of an unknown consumer", "consumer.pause",
             json_pack("{s:s}", "consumerId", "5b0e2f7a-4c1d-4e8f-9a3b-2c6d8e0f1a2b"), "not_found");
  call_fails(&b, "B closing A's forwarded transport", "transport.close",
             json_pack("{s:s}", "transportId", t2), "not_found");
  /* DataChannel calls are never forwarded (an SCTP transport is placed locally) */
  call_fails(&a, "produceData on the forwarded transport", "transport.produceData",
             json_pack("{s:s, s:{s:i}, s:s}", "transportId", t2, "sctpStreamParameters",
                       "streamId", 1, "label", "x"),
             "unsupported");
  printf("ok 2 - connect forwarded; node 2's errors keep their code, node 1 answers its own "
         "not_found and refuses DataChannel calls on it (unsupported)\n");

  /* ---- 3. A produces on node 2; B hears of it and consumes it ---- */
  char p[64];
  produce_audio(&a, t2, 22222222, "alice", p, sizeof p);
  CHECK(metric(2, "mafalda_worker_producers") == 1 && metric(1, "mafalda_worker_producers") == 0,
        "the producer should be on node 2 only (node 2: %lld, node 1: %lld)",
        metric(2, "mafalda_worker_producers"), metric(1, "mafalda_worker_producers"));
  json_t *np = wait_event(&b, "router.newproducer", p, 5);
  CHECK(np, "B got no router.newproducer for A's producer %s", p);
  json_t *npd = json_object_get(np, "data");
  CHECK(strcmp(str_of(json_object_get(npd, "kind")), "audio") == 0 &&
            strcmp(str_of(json_object_get(json_object_get(npd, "appData"), "name")), "alice") == 0,
        "router.newproducer for %s lacks kind audio / appData.name alice", p);
  json_decref(np);
  drain(&a, 1.0);
  CHECK(count_events(&a, "router.newproducer", p) == 0,
        "A got router.newproducer for its own producer %s", p);
  json_t *r = call(&b, "router.listProducers", json_object());
  json_t *plist = json_object_get(ok_data(&b, r, "router.listProducers"), "producers");
  bool listed = false;
  for (size_t i = 0; i < json_array_size(plist); i++)
    listed |= strcmp(str_of(json_object_get(json_array_get(plist, i), "id")), p) == 0;
  CHECK(listed, "router.listProducers of B does not list %s", p);
  json_decref(r);
  json_t *caps = rtp_caps(&b);
  char cons[64];
  consume(&b, tb, p, caps, cons, sizeof cons);
  json_decref(caps);
  call_ok(&b, "consumer.resume", json_pack("{s:s}", "consumerId", cons));
  r = call(&b, "consumer.getStats", json_pack("{s:s}", "consumerId", cons));
  CHECK(json_is_array(json_object_get(ok_data(&b, r, "consumer.getStats"), "stats")),
        "consumer.getStats answered no stats array");
  json_decref(r);
  /* A's producer calls go to node 2; B's consumer hears of the pause and resume */
  call_ok(&a, "producer.pause", json_pack("{s:s}", "producerId", p));
  json_t *ev = wait_event(&b, "consumer.producerpause", cons, 5);
  CHECK(ev, "B's consumer %s got no consumer.producerpause after A paused %s", cons, p);
  json_decref(ev);
  call_ok(&a, "producer.resume", json_pack("{s:s}", "producerId", p));
  ev = wait_event(&b, "consumer.producerresume", cons, 5);
  CHECK(ev, "B's consumer %s got no consumer.producerresume after A resumed %s", cons, p);
  json_decref(ev);
  r = call(&a, "producer.getStats", json_pack("{s:s}", "producerId", p));
  json_t *stats = json_object_get(ok_data(&a, r, "producer.getStats"), "stats");
  CHECK(json_is_array(stats), "producer.getStats answered no stats array");
  for (size_t i = 0; i < json_array_size(stats); i++) {
    const char *type = json_string_value(json_object_get(json_array_get(stats, i), "type"));
    CHECK(type && strcmp(type, "inbound-rtp") == 0, "producer stats of type %s", type ? type : "?");
  }
  json_decref(r);
  call_fails(&b, "B pausing A's forwarded producer", "producer.pause",
             json_pack("{s:s}", "producerId", p), "not_found");
  printf("ok 3 - A's producer %s on node 2: B got router.newproducer (A did not), consumed it "
         "on node %d (consumer %s, getStats); producer.pause / resume / getStats forwarded, B "
         "heard producerpause / producerresume (%.1f s)\n", p, tb_node, cons, elapsed());

  /* ---- 4. A closes its producer ---- */
  call_ok(&a, "producer.close", json_pack("{s:s}", "producerId", p));
  json_t *pc = wait_event(&b, "consumer.producerclose", cons, 5);
  CHECK(pc, "B's consumer %s got no consumer.producerclose after A closed %s", cons, p);
  json_decref(pc);
  call_fails(&a, "pause of the closed forwarded producer", "producer.pause",
             json_pack("{s:s}", "producerId", p), "not_found");
  CHECK(metric(2, "mafalda_worker_producers") == 0, "node 2 still counts %lld producers",
        metric(2, "mafalda_worker_producers"));
  printf("ok 4 - producer.close forwarded; B got consumer.producerclose\n");

  /* ---- 5. A resumes its session (the link follows), then closes the transport ---- */
  long n1_mark = log_size(1);
  char token[256];
  snprintf(token, sizeof token, "%s", a.token);
  client_close(&a);
  client_open(&a, "A'", 1);
  r = call(&a, "router.join", json_pack("{s:s, s:s}", "roomId", ROOM, "resumeToken", token));
  ok_data(&a, r, "router.join (resume)");
  snprintf(a.token, sizeof a.token, "%s", str_of(json_object_get(json_object_get(r, "data"),
                                                                 "resumeToken")));
  json_decref(r);
  mf_test_sleep_ms(1000); /* twice the grace: a session not resumed would be over */
  CHECK(log_count(1, n1_mark, "ended: its session ended", NULL) == 0,
        "node 1 ended A's link although A resumed its session");
  CHECK(metric(2, "mafalda_worker_transports") == 1,
        "node 2 counts %lld transports after A resumed, want 1",
        metric(2, "mafalda_worker_transports"));
  call_ok(&a, "transport.close", json_pack("{s:s}", "transportId", t2));
  double took = await_transports(2, 0, 5, &seen);
  CHECK(took >= 0, "node 2's /metrics counts %lld transports after transport.close, want 0",
        seen);
  call_fails(&a, "connect of the closed forwarded transport", "transport.connect",
             json_pack("{s:s, s:o}", "transportId", t2, "dtlsParameters", dtls_params()),
             "not_found");
  printf("ok 5 - A resumed its session within the grace (the link stayed), transport.close "
         "went through it: node 2's transports down to 0 in %.2f s, node 1 forgot the "
         "transport\n", took);

  /* ---- 6. A's WebSocket closes: the link ends, node 2 closes A's objects ---- */
  char t3[64];
  int t3_node = try_transport(&a, t3, sizeof t3, code, sizeof code);
  if (t3_node == 2) {
    CHECK(await_transports(2, 1, 3, &seen) >= 0,
          "node 2 counts %lld transports with A's T3, want 1", seen);
    printf("#   A's T3 landed on node 2 (through the same link)\n");
  } else {
    printf("#   A's T3 %s%s (not on node 2: node 2 has only the link to end)\n",
           t3_node ? "landed on node 1" : "refused: ", t3_node ? "" : code);
  }
  CHECK(log_count(1, 0, "go through link", NULL) == 1,
        "node 1 opened %d links, want 1 (one per session and node)",
        log_count(1, 0, "go through link", NULL));
  n1_mark = log_size(1);
  long n2_mark = log_size(2);
  client_close(&a);
  double closed_at = mf_test_now_s();
  double ended = await_log(1, n1_mark, "ended: its session ended", node_id[2], 5);
  CHECK(ended >= 0, "node 1 did not end A's link 5 s after its WebSocket closed");
  char from_n1[128];
  snprintf(from_n1, sizeof from_n1, "from node %s ended", node_id[1]);
  CHECK(await_log(2, n2_mark, from_n1, NULL, 5) >= 0,
        "node 2 did not end its side of A's link (\"link ... from node %s ended\")", node_id[1]);
  took = await_transports(2, 0, 5, &seen);
  CHECK(took >= 0, "node 2 counts %lld transports after A left, want 0", seen);
  printf("ok 6 - A's WebSocket closed: node 1 ended the link after %.2f s (grace 0.5 s), node "
         "2 ended its side, its transports back to 0 after %.2f s\n", ended,
         mf_test_now_s() - closed_at);

  /* ---- 7. D (node 1's client) on node 2, E (node 2's client) on node 1; node 2 dies ---- */
  client_open(&d, "D", 1);
  client_open(&e, "E", 2);
  char router_e[64];
  join(&d, router_b, sizeof router_b);
  join(&e, router_e, sizeof router_e);
  CHECK(strcmp(router_e, router) == 0, "E joined router %s on node 2, want %s", router_e, router);
  char td[64] = "", te[64] = "";
  int made = 0;
  double both_at = mf_test_now_s();
  while (!td[0] || !te[0]) {
    CHECK(mf_test_now_s() - both_at < 2 * PLACE_LIMIT_S,
          "no transport of D on node 2 (%s) / of E on node 1 (%s) in %.0f s (%d made)",
          td[0] ? "yes" : "no", te[0] ? "yes" : "no", 2 * PLACE_LIMIT_S, made);
    /* A transport on the wrong node fills it: the same client's next one goes to the other
     * node when that has room. E first: the scheduler fills the busier node first, usually
     * node 1 (it hosts B's transport). */
    bool placed = false;
    char tid[64];
    for (int k = 0; k < 2; k++) {
      client_t *c = k == 0 ? &e : &d;
      char *out = k == 0 ? te : td;
      int want = k == 0 ? 1 : 2;
      for (int attempt = 0; attempt < 2 && !out[0]; attempt++) {
        int node = try_transport(c, tid, sizeof tid, code, sizeof code);
        if (!node) {
          CHECK(strcmp(code, "limit_exceeded") == 0, "%s's transport refused with %s", c->name,
                code);
          break;
        }
        placed = true;
        made++;
        if (node == want) snprintf(out, 64, "%s", tid);
      }
    }
    if (!placed) mf_test_sleep_ms(300);
  }
  printf("#   D's transport on node 2, E's on node 1 after %.1f s (%d transport(s) made)\n",
         mf_test_now_s() - both_at, made);
  CHECK(await_log(1, 0, "'s client runs in room '" ROOM "' here", node_id[2], 2) >= 0,
        "node 1 did not open a session for node 2's client E");
  call_ok(&d, "transport.connect",
          json_pack("{s:s, s:o}", "transportId", td, "dtlsParameters", dtls_params()));
  call_ok(&e, "transport.connect",
          json_pack("{s:s, s:o}", "transportId", te, "dtlsParameters", dtls_params()));
  /* D produces on node 2 and consumes B's producer there (transport.consume forwarded with
   * the producer's description); E produces on node 1 */
  char pb[64], pd[64], pe[64], cd1[64], cd2[64];
  produce_audio(&b, tb, 33333333, "bob", pb, sizeof pb);
  produce_audio(&d, td, 44444444, "dave", pd, sizeof pd);
  produce_audio(&e, te, 55555555, "erin", pe, sizeof pe);
  json_t *npx = wait_event(&b, "router.newproducer", pd, 5);
  CHECK(npx, "B got no router.newproducer for D's producer %s on node 2", pd);
  json_decref(npx);
  npx = wait_event(&b, "router.newproducer", pe, 5);
  CHECK(npx, "B got no router.newproducer for E's producer %s (node 2's client, on node 1)", pe);
  json_decref(npx);
  json_t *dcaps = rtp_caps(&d);
  consume(&d, td, pb, dcaps, cd1, sizeof cd1);
  call_ok(&d, "consumer.pause", json_pack("{s:s}", "consumerId", cd1));
  r = call(&d, "consumer.getStats", json_pack("{s:s}", "consumerId", cd1));
  CHECK(json_is_array(json_object_get(ok_data(&d, r, "consumer.getStats"), "stats")),
        "forwarded consumer.getStats answered no stats array");
  json_decref(r);
  call_ok(&d, "consumer.close", json_pack("{s:s}", "consumerId", cd1));
  call_fails(&d, "getStats of the closed forwarded consumer", "consumer.getStats",
             json_pack("{s:s}", "consumerId", cd1), "not_found");
  consume(&d, td, pb, dcaps, cd2, sizeof cd2);
  call_ok(&d, "consumer.resume", json_pack("{s:s}", "consumerId", cd2));
  /* D consumes its own second producer: node 1 describes a producer it knows from node 2;
   * closing that producer sends consumer.producerclose back through the link */
  char pd2[64], cd3[64];
  produce_audio(&d, td, 66666666, "dave2", pd2, sizeof pd2);
  ev = wait_event(&b, "router.newproducer", pd2, 5); /* node 1 knows it now */
  CHECK(ev, "B got no router.newproducer for D's second producer %s", pd2);
  json_decref(ev);
  consume(&d, td, pd2, dcaps, cd3, sizeof cd3);
  json_decref(dcaps);
  call_ok(&d, "producer.close", json_pack("{s:s}", "producerId", pd2));
  ev = wait_event(&d, "consumer.producerclose", cd3, 5);
  CHECK(ev, "D's consumer %s got no consumer.producerclose when D closed %s", cd3, pd2);
  json_decref(ev);
  call_fails(&d, "pause of the consumer of the closed producer", "consumer.pause",
             json_pack("{s:s}", "consumerId", cd3), "not_found");
  /* E (node 2's client) consumes B's producer on node 1 */
  json_t *ecaps = rtp_caps(&e);
  char ce[64];
  consume(&e, te, pb, ecaps, ce, sizeof ce);
  json_decref(ecaps);
  call_ok(&e, "consumer.resume", json_pack("{s:s}", "consumerId", ce));
  /* B's pause reaches D's consumer on node 2, whose notification node 2 delivers */
  call_ok(&b, "producer.pause", json_pack("{s:s}", "producerId", pb));
  ev = wait_event(&d, "consumer.producerpause", cd2, 5);
  CHECK(ev, "D's consumer %s on node 2 got no consumer.producerpause when B paused %s", cd2, pb);
  json_decref(ev);
  call_ok(&b, "producer.resume", json_pack("{s:s}", "producerId", pb));
  ev = wait_event(&d, "consumer.producerresume", cd2, 5);
  CHECK(ev, "D's consumer %s on node 2 got no consumer.producerresume", cd2);
  json_decref(ev);
  ev = wait_event(&e, "consumer.producerresume", ce, 5);
  CHECK(ev, "E's consumer %s on node 1 got no consumer.producerresume (node 1 -> node 2)", ce);
  json_decref(ev);
  printf("#   D on node 2: producer %s, consumers of B's %s and of its own %s (forwarded "
         "consume, pause, getStats, close; producerpause / resume / close delivered); E on "
         "node 1: producer %s, consumer of B's (producerresume delivered to node 2)\n", pd,
         pb, pd2, pe);
  long long n1_transports = metric(1, "mafalda_worker_transports");
  long n1_lost_mark = log_size(1);
  pid_t n2 = server_of(2);
  check_sanitizer_logs(); /* node 2's log ends here */
  CHECK(kill(n2, SIGKILL) == 0, "SIGKILL node 2");
  double killed_at = mf_test_now_s();
  mf_test_wait_status(wrapper[2]);
  wrapper[2] = 0;
  client_close(&e);
  /* Before gossip declares node 2 dead: node 1 cannot deliver E's consumer's producerpause
   * to node 2 (it retries), and D's forwarded call fails instead of hanging. */
  call_ok(&b, "producer.pause", json_pack("{s:s}", "producerId", pb));
  double call_at = mf_test_now_s();
  r = call(&d, "consumer.getStats", json_pack("{s:s}", "consumerId", cd2));
  CHECK(json_is_false(json_object_get(r, "ok")),
        "D's consumer.getStats on the killed node 2 answered ok");
  printf("#   D's call on the killed node answered %s after %.2f s (\"%s\")\n", error_code(r),
         mf_test_now_s() - call_at,
         str_of(json_object_get(json_object_get(r, "error"), "message")));
  json_decref(r);
  json_t *rc = wait_event(&d, "transport.routerclose", td, LOST_LIMIT_S);
  CHECK(rc, "D got no transport.routerclose for %s %.0f s after node 2 was killed", td,
        LOST_LIMIT_S);
  double lost_after = mf_test_now_s() - killed_at;
  json_t *rcd = json_object_get(rc, "data");
  CHECK(strcmp(str_of(json_object_get(rcd, "reason")), "nodelost") == 0 &&
            strcmp(str_of(json_object_get(rcd, "nodeId")), node_id[2]) == 0,
        "transport.routerclose data: reason / nodeId not nodelost / %s", node_id[2]);
  json_decref(rc);
  json_t *dpc = wait_event(&d, "producer.close", pd, 3);
  CHECK(dpc && strcmp(str_of(json_object_get(json_object_get(dpc, "data"), "reason")),
                      "routerclose") == 0,
        "D's producer %s on the lost node got no producer.close (reason routerclose)", pd);
  json_decref(dpc);
  CHECK(await_log(1, n1_lost_mark, "ended: its node was lost", node_id[2], 3) >= 0,
        "node 1 did not log that D's link ended with its node");
  char from_n2[128];
  snprintf(from_n2, sizeof from_n2, "from node %s ended", node_id[2]);
  CHECK(await_log(1, n1_lost_mark, from_n2, NULL, 3) >= 0,
        "node 1 did not end E's link from the lost node 2");
  CHECK(await_transports(1, n1_transports - 1, 3, &seen) >= 0,
        "node 1 counts %lld transports after ending E's link, want %lld", seen,
        n1_transports - 1);
  call_fails(&d, "connect of the transport on the lost node", "transport.connect",
             json_pack("{s:s, s:o}", "transportId", td, "dtlsParameters", dtls_params()),
             "not_found");
  printf("ok 7 - node 2 killed: D got transport.routerclose (nodelost) and producer.close "
         "after %.2f s; node 1 ended D's link to node 2 and E's link from it (E's transport "
         "closed)\n", lost_after);

  /* ---- 8. clean stops ---- */
  client_close(&b);
  client_close(&d);
  for (int i = 1; i >= 0; i--) {
    double st = mf_test_now_s();
    CHECK(kill(server_of(i), SIGTERM) == 0, "SIGTERM process %d", i);
    int code_i = wait_exit(i, 15);
    check_sanitizer_logs();
    CHECK(code_i == 0, "process %d exited with %d after SIGTERM", i, code_i);
    printf("#   process %d exited 0 %.2f s after SIGTERM\n", i, mf_test_now_s() - st);
  }
  check_sanitizer_logs();
  printf("ok 8 - node 1 and the controller exit 0 on SIGTERM; no sanitizer report (total %.1f s)\n",
         elapsed());
  if (getenv("MF_TEST_KEEP"))
    printf("# logs kept in %s\n", dir);
  else
    mf_test_remove_dir(dir);
  return 0;
}
