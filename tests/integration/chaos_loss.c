/* Issue 12 chaos test: no false deaths under 30% loss on gossip and controller RPC, and the
 * failure detector still works under it.
 *
 * One mafalda-controller (gossip on, 127.0.0.40) and three mafalda-node processes
 * (--controller=false, 127.0.0.4N). An in-process loss proxy (tests/support/loss_proxy.h)
 * sits in front of every gossip member: each member binds its real gossip port and
 * announces (--gossip-advertise) its relay's address, so every gossip datagram sent to it,
 * from any member, crosses a relay that drops 30%. Each node's RPC to the controller
 * (--controllers) goes through its own TCP relay that delays 30% of the segments as a TCP
 * retransmission would (200 ms, 600 ms, ... with head-of-line blocking).
 *  1. the three nodes become active through the lossy paths;
 *  2. for DURATION seconds (argv[3]) the controller's state is polled every 250 ms: no node
 *     row may leave ACTIVE, and afterwards no process may have logged a gossip member going
 *     dead (suspicions are counted and printed: they are expected, and refuted);
 *  3. node 3's relays go to 100% (gossip dropped, RPC connections reset): the controller
 *     marks it dead (time printed, limit DEAD_LIMIT_S), the other two stay active;
 *  4. node 3's relays go back to 30%: it rejoins (refutes its death) and is active again;
 *  5. SIGTERM to every process: each exits 0.
 * Usage: chaos_loss mafalda-controller mafalda-node [seconds [seed]] */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "controller/rpc_client.h"
#include "controller/rpc_server.h"
#include "proto/controller.pb-c.h"
#include "tests/support/loss_proxy.h"
#include "tests/support/test_node_rpc.h"
#include "tests/support/test_proc.h"

#define NODES 3
#define PROCS (NODES + 1) /* index 0: the controller */
#define LOSS 0.30
#define JOIN_LIMIT_S 30.0
/* Suspicion of a member with no confirmation: 4 probe intervals * ceil(log2(n + 1)) = 6 s
 * for 4 members, plus the probe that finds it (its probers' probe intervals grow under loss,
 * Lifeguard), plus the controller's 250 ms reconcile. Measured 4-12 s (12 with three runs
 * at once under ASan on 2 busy cores); the limit leaves room for a loaded CI machine. */
#define DEAD_LIMIT_S 20.0
#define BACK_LIMIT_S 20.0
/* A node drains (no transports here: at once), leaves gossip, stops its workers. */
#define STOP_LIMIT_S 20.0

static const char *controller_bin, *node_bin;
static char dir[64];
static pid_t wrapper[PROCS];
static char ctl_url[64];
static mf_loss_proxy_t *proxy;
static int gossip_relay[PROCS], rpc_relay[PROCS];

static void fail_exit(void);

#define CHECK(cond, ...) MF_TEST_CHECK(fail_exit, cond, __VA_ARGS__)

static void fail_exit(void) {
  mf_test_dump_logs(dir, 40);
  mf_test_stop_wrapped(wrapper, PROCS);
  if (proxy) mf_loss_proxy_print(proxy, stderr);
  mf_loss_proxy_stop(proxy);
  proxy = NULL;
  mf_test_abandon(dir, wrapper, PROCS);
  exit(1);
}

static void log_path(int i, char *out, size_t size) { mf_test_log_path(dir, i, out, size); }
static void ip_of(int i, char *out, size_t size) { snprintf(out, size, "127.0.0.%d", 40 + i); }

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

/* ---- the controller's view ---- */

typedef struct {
  int rows[PROCS];
  Mafalda__Controller__NodeState state[PROCS];
  char rpc[PROCS][96];
} view_t;

static bool view(view_t *v) {
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
  for (size_t k = 0; k < r->state->n_nodes; k++) {
    const Mafalda__Controller__Node *n = r->state->nodes[k];
    for (int i = 1; i <= NODES; i++) {
      char ip[32];
      ip_of(i, ip, sizeof ip);
      if (strcmp(n->announced_ip, ip) != 0) continue;
      v->rows[i]++;
      v->state[i] = n->state;
      snprintf(v->rpc[i], sizeof v->rpc[i], "tcp://%s", n->rpc_address);
    }
  }
  mafalda__controller__state_response__free_unpacked(r, NULL);
  return true;
}

static const char *state_name(Mafalda__Controller__NodeState s) {
  const ProtobufCEnumValue *e =
      protobuf_c_enum_descriptor_get_value(&mafalda__controller__node_state__descriptor, s);
  return e ? e->name : "?";
}

/* Seconds from `since` until node i is in state want, or -1 after limit_s. */
static double await_state(int i, Mafalda__Controller__NodeState want, double since,
                          double limit_s, view_t *v) {
  while (mf_test_now_s() - since < limit_s) {
    if (view(v) && v->rows[i] > 0 && v->state[i] == want) return mf_test_now_s() - since;
    mf_test_sleep_ms(100);
  }
  return -1;
}

/* ---- gossip verdicts in the logs ("member <id> (<addr>) <old> -> <new>, ...") ---- */

typedef struct {
  long end[PROCS]; /* bytes of each log already read */
  int suspect, dead, alive_again;
} log_scan_t;

/* Counts transitions logged by every process since the last call. */
static void scan_logs(log_scan_t *s, char *first_dead, size_t size) {
  for (int i = 0; i < PROCS; i++) {
    char path[128], line[1024];
    log_path(i, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    fseek(f, s->end[i], SEEK_SET);
    while (fgets(line, sizeof line, f)) {
      if (!strstr(line, "member ")) continue;
      if (strstr(line, "-> suspect,")) s->suspect++;
      if (strstr(line, "-> alive,") && strstr(line, "suspect -> alive")) s->alive_again++;
      if (strstr(line, "-> dead,")) {
        if (s->dead++ == 0 && first_dead) snprintf(first_dead, size, "process %d: %s", i, line);
      }
    }
    s->end[i] = ftell(f);
    fclose(f);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s mafalda-controller mafalda-node [seconds [seed]]\n", argv[0]);
    return 2;
  }
  controller_bin = argv[1];
  node_bin = argv[2];
  int duration = argc > 3 ? atoi(argv[3]) : 20;
  uint64_t seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 12;
  CHECK(duration > 0 && duration <= 3600, "seconds: 1..3600");
  /* Every child dies on its own well after the test's own deadlines. */
  char wrap_deadline[16];
  snprintf(wrap_deadline, sizeof wrap_deadline, "%d", duration + 150);
  snprintf(dir, sizeof dir, "/tmp/mf-chaos-loss-XXXXXX");
  CHECK(mkdtemp(dir), "mkdtemp");

  /* Real gossip ports and the relays in front of them. */
  proxy = mf_loss_proxy_create(seed);
  CHECK(proxy, "loss proxy");
  char gossip_real[PROCS][48], gossip_adv[PROCS][48];
  for (int i = 0; i < PROCS; i++) {
    char ip[16], name[32];
    ip_of(i, ip, sizeof ip);
    snprintf(gossip_real[i], sizeof gossip_real[i], "%s:%d", ip, mf_test_free_port());
    snprintf(name, sizeof name, "gossip-%d", i);
    uint16_t port = 0;
    gossip_relay[i] = mf_loss_proxy_add_udp(proxy, name, ip, gossip_real[i], LOSS, &port);
    CHECK(gossip_relay[i] >= 0, "gossip relay %d", i);
    snprintf(gossip_adv[i], sizeof gossip_adv[i], "%s:%u", ip, port);
  }
  char ctl_rpc[48], raft[48], data[128];
  snprintf(raft, sizeof raft, "127.0.0.40:%d", mf_test_free_port());
  snprintf(ctl_rpc, sizeof ctl_rpc, "127.0.0.40:%d", mf_test_free_port());
  snprintf(ctl_url, sizeof ctl_url, "tcp://%s", ctl_rpc);
  snprintf(data, sizeof data, "%s/ctl", dir);
  char rpc_adv[PROCS][48];
  rpc_relay[0] = -1;
  for (int i = 1; i <= NODES; i++) {
    char name[32];
    snprintf(name, sizeof name, "rpc-%d", i);
    uint16_t port = 0;
    rpc_relay[i] = mf_loss_proxy_add_tcp(proxy, name, "127.0.0.40", ctl_rpc, LOSS, 0, &port);
    CHECK(rpc_relay[i] >= 0, "rpc relay %d", i);
    snprintf(rpc_adv[i], sizeof rpc_adv[i], "127.0.0.40:%u", port);
  }
  CHECK(mf_loss_proxy_start(proxy) == 0, "loss proxy thread");

  char *cargv[] = {"timeout", "-s", "KILL", wrap_deadline, (char *)controller_bin,
                   "--listen", raft, "--rpc-listen", ctl_rpc, "--data-dir", data,
                   "--election-timeout", "300", "--gossip-listen", gossip_real[0],
                   "--gossip-advertise", gossip_adv[0], NULL};
  launch(0, cargv);
  CHECK(mf_test_wait_leader(ctl_url, 20), "the controller did not become leader");

  /* 1. three nodes join through the lossy paths */
  double t0 = mf_test_now_s();
  for (int i = 1; i <= NODES; i++) {
    char ip[32], api[48], gport[8];
    ip_of(i, ip, sizeof ip);
    snprintf(api, sizeof api, "%s:%d", ip, mf_test_free_port());
    snprintf(gport, sizeof gport, "%s", strrchr(gossip_real[i], ':') + 1);
    char *nargv[] = {"timeout", "-s", "KILL", wrap_deadline, (char *)node_bin,
                     "--workers", "1", "--rtc-listen-ip", ip, "--announced-ip", ip,
                     "--rtc-port-base", "0", "--controller=false", "--controllers", rpc_adv[i],
                     "--join", gossip_adv[0], "--gossip-port", gport,
                     "--gossip-advertise", gossip_adv[i], "--node-rpc-port", "0",
                     "--api-listen", api, "--api-grace-ms", "0", "--drain-timeout-ms", "5000",
                     "--report-interval-ms", "500", NULL};
    launch(i, nargv);
  }
  view_t v;
  for (int i = 1; i <= NODES; i++)
    CHECK(await_state(i, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE, t0, JOIN_LIMIT_S,
                      &v) >= 0,
          "node %d not active %.0f s after start under %.0f%% loss", i, JOIN_LIMIT_S,
          LOSS * 100);
  printf("ok 1 - three nodes active through the lossy relays in %.1f s\n", mf_test_now_s() - t0);

  /* 2. DURATION seconds under loss: nobody dies */
  log_scan_t scan;
  memset(&scan, 0, sizeof scan);
  scan_logs(&scan, NULL, 0); /* the join phase does not count */
  scan.suspect = scan.dead = scan.alive_again = 0;
  mf_loss_proxy_stats_t before[PROCS];
  for (int i = 0; i < PROCS; i++) mf_loss_proxy_stats(proxy, gossip_relay[i], &before[i]);
  double start = mf_test_now_s();
  int polls = 0, unanswered = 0;
  while (mf_test_now_s() - start < duration) {
    if (view(&v)) {
      polls++;
      for (int i = 1; i <= NODES; i++)
        CHECK(v.rows[i] == 1 && v.state[i] == MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE,
              "false death: %.1f s into the loss phase node %d is %s (rows %d)",
              mf_test_now_s() - start, i, state_name(v.state[i]), v.rows[i]);
    } else {
      unanswered++;
    }
    mf_test_sleep_ms(250);
  }
  char first_dead[1100] = "";
  scan_logs(&scan, first_dead, sizeof first_dead);
  uint64_t in = 0, dropped = 0;
  for (int i = 0; i < PROCS; i++) {
    mf_loss_proxy_stats_t s;
    mf_loss_proxy_stats(proxy, gossip_relay[i], &s);
    in += s.in - before[i].in;
    dropped += s.dropped - before[i].dropped;
  }
  printf("# loss phase: %d s, %llu gossip datagrams, %llu dropped (%.1f%%); %d state polls "
         "(%d unanswered): every node active in each\n",
         duration, (unsigned long long)in, (unsigned long long)dropped,
         in ? 100.0 * (double)dropped / (double)in : 0.0, polls, unanswered);
  printf("# gossip verdicts logged by the 4 processes: %d suspicions, %d refuted, %d deaths\n",
         scan.suspect, scan.alive_again, scan.dead);
  CHECK(in > 0 && dropped > 0, "no gossip went through the proxy");
  CHECK(scan.dead == 0, "false death in gossip: %s", first_dead);
  mf_loss_proxy_print(proxy, stdout);
  printf("ok 2 - %d s at %.0f%% loss: no false death (controller state and every gossip "
         "member)\n", duration, LOSS * 100);

  /* 3. cut node 3 off: the detector still works */
  CHECK(view(&v) && v.rows[NODES] == 1, "node %d's row", NODES);
  mf_loss_proxy_set(proxy, gossip_relay[NODES], 1.0, 0);
  mf_loss_proxy_set(proxy, rpc_relay[NODES], 0, 1.0);
  double cut = mf_test_now_s();
  double dead_after = await_state(NODES, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD, cut,
                                  DEAD_LIMIT_S, &v);
  CHECK(dead_after >= 0, "node %d not dead %.0f s after its relays went to 100%% (state %s)",
        NODES, DEAD_LIMIT_S, state_name(v.state[NODES]));
  printf("# node %d cut off (100%% gossip loss to it, RPC reset): marked dead after %.2f s "
         "(limit %.0f s)\n", NODES, dead_after, DEAD_LIMIT_S);
  for (int i = 1; i < NODES; i++)
    CHECK(v.state[i] == MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE,
          "node %d is %s while node %d was cut off", i, state_name(v.state[i]), NODES);
  printf("ok 3 - a cut-off node is declared dead under loss; the others stay active\n");

  /* 4. heal: node 3 rejoins */
  mf_loss_proxy_set(proxy, gossip_relay[NODES], LOSS, 0);
  mf_loss_proxy_set(proxy, rpc_relay[NODES], LOSS, 0);
  double healed = mf_test_now_s();
  double back = await_state(NODES, MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE, healed,
                            BACK_LIMIT_S, &v);
  CHECK(back >= 0, "node %d not active %.0f s after healing (state %s)", NODES, BACK_LIMIT_S,
        state_name(v.state[NODES]));
  printf("# node %d active again %.2f s after its relays went back to %.0f%%\n", NODES, back,
         LOSS * 100);
  printf("ok 4 - the cut-off node rejoins under loss\n");

  /* 5. clean stop */
  for (int i = NODES; i >= 0; i--) {
    pid_t pid = mf_test_wait_child_of(wrapper[i], 4000);
    CHECK(pid > 0 && kill(pid, SIGTERM) == 0, "SIGTERM process %d", i);
    int rc = wait_exit(i, STOP_LIMIT_S);
    CHECK(rc != -1, "process %d still runs %.0f s after SIGTERM", i, STOP_LIMIT_S);
    wrapper[i] = 0;
    CHECK(rc == 0, "process %d exited with %d after SIGTERM", i, rc);
  }
  printf("ok 5 - SIGTERM: every process exits 0\n");
  mf_loss_proxy_print(proxy, stdout);
  mf_loss_proxy_stop(proxy);
  proxy = NULL;
  if (getenv("MF_TEST_KEEP"))
    printf("# logs kept in %s\n", dir);
  else
    mf_test_remove_dir(dir);
  return 0;
}
