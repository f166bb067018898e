/* mafalda-ctl against a real single-voter mafalda-controller on loopback: the state is
 * written through RPC, then every ctl command is run as a process and its output (tables
 * and --json) and exit status checked; then writes through ctl (node drain/forget), voter
 * membership (a second replica started with --join is added and removed), and bad input
 * (usage errors exit 2, refusals and unreachable controllers exit 1 with a message).
 * Every child runs under `timeout -s KILL`; the controllers themselves are signalled.
 * Usage: ctl_cli path/to/mafalda-controller path/to/mafalda-ctl */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
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
static void kill_replica(int i) {
  if (timeout_pid[i] <= 0) return;
  mf_test_kill_wrapped(timeout_pid[i]);
  waitpid(timeout_pid[i], NULL, 0);
  timeout_pid[i] = 0;
}

static void cleanup(void) {
  kill_replica(0);
  kill_replica(1);
  if (dir[0] && !getenv("MF_TEST_KEEP")) {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  }
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
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
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
  int rv = posix_spawnp(&pid, "timeout", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rv != 0) fatal("spawn timeout/mafalda-controller");
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
  Mafalda__Controller__CreateRouter cr = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
  cr.router = &r;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER;
  cmd.create_router = &cr;
  apply(&cmd);
  const char *shard_nodes[] = {"n1", "n2"};
  for (int i = 0; i < 2; i++) {
    Mafalda__Controller__Shard sh = MAFALDA__CONTROLLER__SHARD__INIT;
    sh.router_id = (char *)"r1";
    sh.node_id = (char *)shard_nodes[i];
    sh.worker = 0;
    Mafalda__Controller__AddShard as = MAFALDA__CONTROLLER__ADD_SHARD__INIT;
    as.shard = &sh;
    Mafalda__Controller__Command c = MAFALDA__CONTROLLER__COMMAND__INIT;
    c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_SHARD;
    c.add_shard = &as;
    apply(&c);
  }
  Mafalda__Controller__Producer p = MAFALDA__CONTROLLER__PRODUCER__INIT;
  p.id = (char *)"p1";
  p.router_id = (char *)"r1";
  p.node_id = (char *)"n1";
  p.worker = 0;
  p.kind = (char *)"audio";
  Mafalda__Controller__AddProducer ap = MAFALDA__CONTROLLER__ADD_PRODUCER__INIT;
  ap.producer = &p;
  Mafalda__Controller__Command c = MAFALDA__CONTROLLER__COMMAND__INIT;
  c.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PRODUCER;
  c.add_producer = &ap;
  apply(&c);
  Mafalda__Controller__Pipe pipe = MAFALDA__CONTROLLER__PIPE__INIT;
  pipe.producer_id = (char *)"p1";
  pipe.target_node_id = (char *)"n2";
  pipe.target_worker = 0;
  pipe.source_node_id = (char *)"n1";
  pipe.source_worker = 0;
  Mafalda__Controller__AddPipe apipe = MAFALDA__CONTROLLER__ADD_PIPE__INIT;
  apipe.pipe = &pipe;
  Mafalda__Controller__Command c2 = MAFALDA__CONTROLLER__COMMAND__INIT;
  c2.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PIPE;
  c2.add_pipe = &apipe;
  apply(&c2);
}

static void read_file(const char *path, char *buf, size_t size) {
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return;
  size_t n = fread(buf, 1, size - 1, f);
  buf[n] = '\0';
  fclose(f);
}

/* Runs mafalda-ctl with args (NULL-terminated); env_extra ("K=V" or NULL) is added to the
 * environment. --controller is NOT added: callers pass it (or the environment does).
 * Returns the exit status; out / err_text hold what it printed. */
static int ctl(const char *env_extra, ...) {
  char *argv[32] = {"timeout", "-s", "KILL", "30", (char *)ctl_bin};
  int n = 5;
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
  char op[128], ep[128];
  snprintf(op, sizeof(op), "%s/ctl.out", dir);
  snprintf(ep, sizeof(ep), "%s/ctl.err", dir);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, op, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, ep, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid;
  int rv = posix_spawnp(&pid, "timeout", &fa, NULL, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  if (rv != 0) fatal("spawn mafalda-ctl");
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  read_file(op, out, sizeof(out));
  read_file(ep, err_text, sizeof(err_text));
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
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

static void test_reads(const char *c) {
  int rc = ctl(NULL, "--controller", c, "status", NULL);
  CHECK(rc == 0, "status exit %d", rc);
  CHECK(has(out, "leader:        1 (") && has(out, "term:") && has(out, "nodes:         2") &&
            has(out, "routers:       1") && has(out, "shards:        2") &&
            has(out, "producers:     1") && has(out, "pipes:         1"),
        "status output");

  rc = ctl(NULL, "--controller", c, "--json", "status", NULL);
  json_t *j = out_json();
  CHECK(rc == 0 && j, "status --json exit %d / parses", rc);
  CHECK(json_path_int(j, "leader_id", NULL) == 1 && json_path_int(j, "term", NULL) >= 1 &&
            json_path_int(j, "counts", "nodes") == 2 &&
            json_path_int(j, "counts", "pipes") == 1 &&
            json_is_true(json_object_get(j, "is_leader")),
        "status --json fields");
  json_decref(j);

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
  CHECK(rc == 0 && has(out, "nodes:         2"), "MAFALDA_CONTROLLER, first replica down");
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
  rc = ctl(NULL, "--controller", dead, "--timeout", "300", "status", NULL);
  CHECK(rc == 1 && has(err_text, "no controller answered"), "unreachable: exit %d", rc);
  rc = ctl(NULL, "--controller", dead, "--timeout", "300", "node", "drain", "n1", NULL);
  CHECK(rc == 1 && has(err_text, "mafalda-ctl: node drain: no controller answered"),
        "unreachable write: exit %d", rc);
  rc = ctl(NULL, "--help", NULL);
  CHECK(rc == 0 && has(out, "MAFALDA_CONTROLLER") && has(out, "controller add"), "--help");
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
  test_reads(c);
  test_writes(c);
  test_bad_input(c);
  test_membership(c);
  printf("%d checks, %d failed\n", checks, failures);
  cleanup();
  return failures ? 1 : 0;
}
