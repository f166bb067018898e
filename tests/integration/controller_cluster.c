/* Three mafalda-controller processes on loopback (issue 6's process test):
 *  1. write N routers through RPC (clients follow leader redirects);
 *  2. kill -9 the leader: a new one is elected, every acknowledged write is there, writes
 *     continue;
 *  3. restart the killed replica: it catches up to the same state;
 *  4. stop all three (SIGTERM, exit 0) and restart them: state identical (dump);
 *  5. a fourth replica started with --join is added (controller.AddVoter) and catches up;
 *  6. its RPC address is replicated (SetControllerAddress): once it leads, every other
 *     replica (whose --peers does not list it, one of them restarted from disk) redirects
 *     writes to it. It runs with a shorter election timeout, so stopping the leader hands
 *     leadership to it (bounded retries).
 * Every child runs under `timeout -s KILL`, and everything left is killed on exit.
 * Usage: controller_cluster path/to/mafalda-controller [writes] */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
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
#include "tests/support/test_proc.h"

#define N 3    /* the bootstrapped voters */
#define NMAX 4 /* plus one that joins */

extern char **environ;

static const char *bin;
static char dir[64];
static int raft_port[NMAX], rpc_port[NMAX];
static char urls_buf[NMAX][64];
static const char *urls[NMAX];
static pid_t timeout_pid[NMAX]; /* the `timeout` wrapper; the controller is its child */
static int failures;

#define CHECK(cond, ...)                                       \
  do {                                                         \
    if (!(cond)) {                                             \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);     \
      fprintf(stderr, __VA_ARGS__);                            \
      fprintf(stderr, "\n");                                   \
      failures++;                                              \
      exit_now();                                              \
    }                                                          \
  } while (0)

/* SIGKILL on `timeout` would orphan the controller: kill the controller first. */
static void kill_all(void) {
  for (int i = 0; i < NMAX; i++) {
    if (timeout_pid[i] <= 0) continue;
    mf_test_kill_wrapped(timeout_pid[i]);
  }
}

static void dump_logs(void) {
  for (int i = 0; i < NMAX; i++) {
    if (!raft_port[i]) continue;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "echo '--- controller %d log (tail)'; tail -n 30 %s/%d.log", i + 1,
             dir, i + 1);
    if (system(cmd) != 0) fprintf(stderr, "(no log)\n");
  }
}

static void exit_now(void) {
  dump_logs();
  kill_all();
  if (getenv("MF_TEST_KEEP")) {
    fprintf(stderr, "kept %s\n", dir);
    exit(1);
  }
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  exit(1);
}

static void start_replica(int i, bool join, const char *election_ms) {
  char id[16], listen[32], rpc[32], peers[512], data[128], log[128];
  snprintf(id, sizeof(id), "%d", i + 1);
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", raft_port[i]);
  snprintf(rpc, sizeof(rpc), "127.0.0.1:%d", rpc_port[i]);
  peers[0] = '\0';
  for (int k = 0; k < (i < N ? N : i + 1); k++) {
    char one[96];
    snprintf(one, sizeof(one), "%s%d@127.0.0.1:%d/127.0.0.1:%d", k ? "," : "", k + 1,
             raft_port[k], rpc_port[k]);
    strcat(peers, one);
  }
  snprintf(data, sizeof(data), "%s/data%d", dir, i + 1);
  snprintf(log, sizeof(log), "%s/%d.log", dir, i + 1);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  char *argv[] = {"timeout", "-s", "KILL", "120", (char *)bin, "--id", id, "--listen", listen,
                  "--rpc-listen", rpc, "--peers", peers, "--data-dir", data,
                  "--election-timeout", (char *)election_ms, "--snapshot-threshold", "128",
                  join ? "--join" : NULL, NULL};
  pid_t pid;
  int rv = posix_spawnp(&pid, "timeout", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  CHECK(rv == 0, "spawn: %s", strerror(rv));
  timeout_pid[i] = pid;
}

static void start(int i) { start_replica(i, false, "300"); }

/* The controller process under `timeout` (kill -9 must hit it, not the wrapper). */
static pid_t controller_pid(int i) { return mf_test_wait_child_of(timeout_pid[i], 2000); }

static int wait_exit(int i) {
  int status = mf_test_wait_status(timeout_pid[i]);
  timeout_pid[i] = 0;
  return status;
}

typedef struct {
  bool ok, is_leader;
  uint64_t last_applied, leader_id;
  char *dump;
} status_t;

static status_t status(int i) {
  status_t s = {0};
  Mafalda__Controller__StatusRequest req = MAFALDA__CONTROLLER__STATUS_REQUEST__INIT;
  mf_rpc_reply_t reply;
  if (mf_rpc_call(urls[i], MF_RPC_METHOD_STATUS, &req.base, 1000, &reply) != MF_OK) return s;
  if (reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK) {
    Mafalda__Controller__StatusResponse *r = mafalda__controller__status_response__unpack(
        NULL, reply.envelope->payload.len, reply.envelope->payload.data);
    if (r) {
      s.ok = true;
      s.is_leader = r->is_leader;
      s.last_applied = r->last_applied;
      s.leader_id = r->leader_id;
      s.dump = strdup(r->dump);
      mafalda__controller__status_response__free_unpacked(r, NULL);
    }
  }
  mf_rpc_reply_free(&reply);
  return s;
}

static int find_leader(int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 50) {
    for (int i = 0; i < NMAX; i++) {
      if (timeout_pid[i] <= 0 || !urls[i]) continue;
      status_t s = status(i);
      free(s.dump);
      if (s.ok && s.is_leader) return i;
    }
    mf_test_sleep_ms(50);
  }
  return -1;
}

/* One write, retried until acknowledged. */
static bool create_router(const char *id, size_t *hint) {
  Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
  r.id = (char *)id;
  r.name = (char *)id;
  r.codecs_json = (char *)"[{\"mimeType\":\"audio/opus\",\"clockRate\":48000}]";
  Mafalda__Controller__CreateRouter cr = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
  cr.router = &r;
  for (int attempt = 0; attempt < 5; attempt++) {
    mf_rpc_reply_t reply;
    mf_err_t err = mf_rpc_call_leader(urls, N, hint, MF_RPC_METHOD_CREATE_ROUTER, &cr.base,
                                      8000, &reply);
    if (err != MF_OK) continue;
    Mafalda__Rpc__Status st = reply.envelope->status;
    /* Each id is written once, so "exists" means an earlier attempt (ours, or one
     * mf_rpc_call_leader retried after a leader change) committed it. */
    bool exists = st == MAFALDA__RPC__STATUS__STATUS_INVALID_ARGUMENT &&
                  strstr(reply.envelope->error_message, "exists");
    mf_rpc_reply_free(&reply);
    if (st == MAFALDA__RPC__STATUS__STATUS_OK || exists) return true;
    fprintf(stderr, "write %s: status %d\n", id, st);
    return false;
  }
  return false;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int count_lines(const char *dump, const char *prefix) {
  int n = 0;
  size_t len = strlen(prefix);
  for (const char *p = dump; p && *p;) {
    if (strncmp(p, prefix, len) == 0) n++;
    p = strchr(p, '\n');
    if (p) p++;
  }
  return n;
}

/* Waits until replica i's dump equals want (it caught up). */
/* Prints where replica i's last dump first differs from want (a failure's diagnosis). */
static void print_difference(int i, const char *got, const char *want) {
  if (!got) {
    fprintf(stderr, "controller %d never answered a status\n", i + 1);
    return;
  }
  size_t k = 0, line = 1, start = 0;
  while (got[k] && got[k] == want[k]) {
    if (got[k] == '\n') {
      line++;
      start = k + 1;
    }
    k++;
  }
  fprintf(stderr, "controller %d's state differs at line %zu (%zu vs %zu bytes):\n  has:  %.120s\n"
          "  want: %.120s\n", i + 1, line, strlen(got), strlen(want), got + start, want + start);
}

static bool converges(int i, const char *want, int timeout_ms) {
  char *last = NULL;
  for (int waited = 0; waited < timeout_ms; waited += 50) {
    status_t s = status(i);
    bool eq = s.ok && strcmp(s.dump, want) == 0;
    if (eq) {
      free(s.dump);
      free(last);
      return true;
    }
    if (s.ok) {
      free(last);
      last = s.dump;
    } else {
      free(s.dump);
    }
    mf_test_sleep_ms(50);
  }
  print_difference(i, last, want);
  free(last);
  return false;
}

/* A linearizable read: the leader answers after a Raft barrier (followers redirect). */
static char *leader_dump(void) {
  Mafalda__Controller__StatusRequest req = MAFALDA__CONTROLLER__STATUS_REQUEST__INIT;
  req.linearizable = true;
  mf_rpc_reply_t reply;
  CHECK(mf_rpc_call_leader(urls, N, NULL, MF_RPC_METHOD_STATUS, &req.base, 10000, &reply) ==
            MF_OK,
        "no leader answered a linearizable status");
  CHECK(reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK, "status %d",
        reply.envelope->status);
  Mafalda__Controller__StatusResponse *r = mafalda__controller__status_response__unpack(
      NULL, reply.envelope->payload.len, reply.envelope->payload.data);
  CHECK(r && r->is_leader, "linearizable status not from the leader");
  char *dump = strdup(r->dump);
  mafalda__controller__status_response__free_unpacked(r, NULL);
  mf_rpc_reply_free(&reply);
  return dump;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s mafalda-controller [writes]\n", argv[0]);
    return 2;
  }
  bin = argv[1];
  int writes = argc > 2 ? atoi(argv[2]) : 1000;
  signal(SIGPIPE, SIG_IGN);
  snprintf(dir, sizeof(dir), "/tmp/mf-ctl-cluster-XXXXXX");
  if (!mkdtemp(dir)) return 1;
  for (int i = 0; i < N; i++) {
    raft_port[i] = mf_test_free_port();
    rpc_port[i] = mf_test_free_port();
    snprintf(urls_buf[i], sizeof(urls_buf[i]), "tcp://127.0.0.1:%d", rpc_port[i]);
    urls[i] = urls_buf[i];
  }
  for (int i = 0; i < N; i++) start(i);
  int leader = find_leader(15000);
  CHECK(leader >= 0, "no leader elected");
  printf("ok   leader elected: controller %d\n", leader + 1);

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  size_t hint = 0;
  char id[32];
  double *lat = calloc((size_t)writes + 1, sizeof(double));
  for (int k = 0; k < writes; k++) {
    snprintf(id, sizeof(id), "r%05d", k);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK(create_router(id, &hint), "write %s", id);
    clock_gettime(CLOCK_MONOTONIC, &b);
    lat[k] = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  qsort(lat, (size_t)writes, sizeof(double), cmp_double);
  /* Printed for orientation, never asserted. */
  printf("ok   %d writes acknowledged (%.0f/s one at a time; latency p50 %.2f ms, p99 %.2f ms)\n",
         writes, writes / secs, writes ? lat[writes / 2] : 0.0,
         writes ? lat[(writes * 99) / 100] : 0.0);
  free(lat);

  /* kill -9 the leader */
  leader = find_leader(5000);
  CHECK(leader >= 0, "no leader before kill");
  pid_t victim = controller_pid(leader);
  CHECK(victim > 0, "controller pid of %d", leader + 1);
  kill(victim, SIGKILL);
  wait_exit(leader);
  int killed = leader;
  printf("ok   killed leader %d (pid %d)\n", killed + 1, victim);
  int more = writes / 5 > 10 ? writes / 5 : 10;
  for (int k = writes; k < writes + more; k++) {
    snprintf(id, sizeof(id), "r%05d", k);
    CHECK(create_router(id, &hint), "write %s after leader kill", id);
  }
  int new_leader = find_leader(10000);
  CHECK(new_leader >= 0 && new_leader != killed, "new leader");
  char *dump = leader_dump();
  CHECK(count_lines(dump, "router ") == writes + more, "routers: %d, want %d",
        count_lines(dump, "router "), writes + more);
  for (int k = 0; k < writes + more; k++) {
    char line[40];
    snprintf(line, sizeof(line), "router r%05d ", k);
    CHECK(strstr(dump, line), "acknowledged write r%05d missing", k);
  }
  printf("ok   new leader %d has all %d acknowledged writes\n", new_leader + 1, writes + more);

  /* restart the killed one: it catches up */
  start(killed);
  CHECK(converges(killed, dump, 20000), "restarted controller %d did not catch up", killed + 1);
  printf("ok   restarted controller %d caught up\n", killed + 1);
  for (int i = 0; i < N; i++) CHECK(converges(i, dump, 10000), "controller %d differs", i + 1);

  /* stop all three cleanly, restart, compare */
  for (int i = 0; i < N; i++) kill(controller_pid(i), SIGTERM);
  for (int i = 0; i < N; i++) {
    int rc = wait_exit(i);
    CHECK(rc == 0, "controller %d exit status %d", i + 1, rc);
  }
  printf("ok   all three stopped cleanly on SIGTERM\n");
  for (int i = 0; i < N; i++) start(i);
  CHECK(find_leader(15000) >= 0, "no leader after restart");
  /* A write in the new term commits everything before it on every replica. */
  CHECK(create_router("after-restart", &hint), "write after restart");
  char *after = leader_dump();
  for (int i = 0; i < N; i++) CHECK(converges(i, after, 10000), "controller %d differs", i + 1);
  CHECK(count_lines(after, "router ") == writes + more + 1, "routers after restart: %d",
        count_lines(after, "router "));
  /* Remove the new router's line and compare with the state before the stop. */
  char *line = strstr(after, "router after-restart ");
  CHECK(line, "after-restart missing");
  char *eol = strchr(line, '\n');
  memmove(line, eol + 1, strlen(eol + 1) + 1);
  CHECK(strcmp(after, dump) == 0, "state after restart differs from before");
  printf("ok   state identical after restarting all three\n");
  free(after);
  free(dump);

  /* a fourth replica joins */
  raft_port[N] = mf_test_free_port();
  rpc_port[N] = mf_test_free_port();
  snprintf(urls_buf[N], sizeof(urls_buf[N]), "tcp://127.0.0.1:%d", rpc_port[N]);
  urls[N] = urls_buf[N];
  start_replica(N, true, "120");
  Mafalda__Controller__AddVoterRequest add = MAFALDA__CONTROLLER__ADD_VOTER_REQUEST__INIT;
  char raft_addr[32], rpc_addr[32];
  snprintf(raft_addr, sizeof(raft_addr), "127.0.0.1:%d", raft_port[N]);
  snprintf(rpc_addr, sizeof(rpc_addr), "127.0.0.1:%d", rpc_port[N]);
  add.id = N + 1;
  add.raft_address = raft_addr;
  add.rpc_address = rpc_addr;
  mf_rpc_reply_t reply;
  CHECK(mf_rpc_call_leader(urls, N, &hint, MF_RPC_METHOD_ADD_VOTER, &add.base, 20000,
                           &reply) == MF_OK,
        "AddVoter call");
  CHECK(reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK, "AddVoter status %d: %s",
        reply.envelope->status, reply.envelope->error_message);
  mf_rpc_reply_free(&reply);
  CHECK(create_router("after-join", &hint), "write after join");
  char *joined = leader_dump();
  CHECK(converges(N, joined, 20000), "joined controller did not catch up");
  printf("ok   a fourth controller joined (AddVoter) and caught up\n");

  /* Its address is replicated state: every replica holds the row. */
  char row[96];
  snprintf(row, sizeof(row), "controller %d raft=%s rpc=%s\n", N + 1, raft_addr, rpc_addr);
  CHECK(strstr(joined, row), "no address row for controller %d in:\n%s", N + 1, joined);
  for (int i = 0; i < N; i++) { /* the static peers' rows, written by the first leader */
    snprintf(row, sizeof(row), "controller %d raft=127.0.0.1:%d rpc=127.0.0.1:%d\n", i + 1,
             raft_port[i], rpc_port[i]);
    CHECK(strstr(joined, row), "no address row for controller %d in:\n%s", i + 1, joined);
  }
  for (int i = 0; i < N; i++) CHECK(converges(i, joined, 10000), "controller %d differs", i + 1);
  free(joined);
  /* Stop the leader (then restart it from disk, with --peers not listing 4) until 4 leads. */
  int lead = find_leader(10000);
  for (int attempt = 0; attempt < 6 && lead >= 0 && lead != N; attempt++) {
    kill(controller_pid(lead), SIGTERM);
    CHECK(wait_exit(lead) == 0, "stop of %d", lead + 1);
    int next = find_leader(10000);
    start(lead);
    lead = next;
  }
  CHECK(lead == N, "controller %d never became the leader (leader: %d)", N + 1, lead + 1);
  printf("ok   the joined controller %d leads\n", N + 1);
  /* A write at each other replica: redirected to 4's RPC address. */
  for (int i = 0; i < N; i++) {
    bool redirected = false;
    for (int waited = 0; waited < 10000 && !redirected; waited += 50) {
      status_t st = status(i);
      free(st.dump);
      if (st.ok && st.leader_id == N + 1) {
        Mafalda__Controller__Router r = MAFALDA__CONTROLLER__ROUTER__INIT;
        r.id = (char *)"redirected";
        Mafalda__Controller__CreateRouter cr = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
        cr.router = &r;
        mf_rpc_reply_t w;
        if (mf_rpc_call(urls[i], MF_RPC_METHOD_CREATE_ROUTER, &cr.base, 2000, &w) == MF_OK) {
          CHECK(w.envelope->status == MAFALDA__RPC__STATUS__STATUS_NOT_LEADER,
                "write at follower %d: status %d", i + 1, w.envelope->status);
          CHECK(strcmp(w.envelope->leader_address, rpc_addr) == 0,
                "follower %d redirects to '%s', want '%s'", i + 1, w.envelope->leader_address,
                rpc_addr);
          redirected = true;
          mf_rpc_reply_free(&w);
        }
      }
      if (!redirected) mf_test_sleep_ms(50);
    }
    CHECK(redirected, "follower %d never named controller %d as leader", i + 1, N + 1);
  }
  printf("ok   every follower redirects writes to controller %d at %s\n", N + 1, rpc_addr);

  for (int i = 0; i < NMAX; i++) kill(controller_pid(i), SIGTERM);
  for (int i = 0; i < NMAX; i++) CHECK(wait_exit(i) == 0, "final stop of %d", i + 1);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  printf("controller cluster test passed\n");
  return failures ? 1 : 0;
}
