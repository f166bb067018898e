/* mafalda-ctl: operator's command-line client of the controller RPC.
 *
 *   mafalda-ctl [--controller host:port[,host:port...]] [--json] [--timeout MS] COMMAND
 *
 * Reads go through controller.State (linearizable: answered by the leader after a Raft
 * barrier, so a table shows every write acknowledged before it); writes go through
 * controller.Apply / AddVoter / RemoveVoter. Clients follow leader redirects.
 * Exit status: 0 done, 1 the controller refused or nobody answered (its message on
 * stderr), 2 usage error. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "controller/fsm.h"
#include "controller/rpc_client.h"
#include "controller/rpc_server.h"
#include "proto/controller.pb-c.h"

extern char **environ;

#define MAX_CONTROLLERS 16
#define EXIT_USAGE 2
#define EXIT_FAIL 1

typedef struct {
  char controller[1024];
  bool json;
  int timeout_ms;
} ctl_options_t;

static const mf_config_option_t options[] = {
    {.name = "controller", .type = MF_OPT_STRING,
     .offset = offsetof(ctl_options_t, controller), .size = 1024,
     .default_value = "127.0.0.1:7200",
     .help = "RPC addresses of controller replicas, host:port[,host:port...]; redirects to "
             "the leader are followed."},
    {.name = "json", .type = MF_OPT_BOOL, .offset = offsetof(ctl_options_t, json),
     .default_value = "false", .help = "Print JSON instead of tables."},
    {.name = "timeout", .type = MF_OPT_INT, .offset = offsetof(ctl_options_t, timeout_ms),
     .min = 100, .max = 600000, .default_value = "5000",
     .help = "Give up after this many milliseconds."},
};
#define N_OPTIONS (sizeof options / sizeof options[0])

static const char *const commands_help =
    "Commands:\n"
    "  status                                   leader, term, object counts\n"
    "  nodes | routers | shards | producers | pipes   list the replicated state\n"
    "  node forget <id>                         remove a node and everything on it\n"
    "  node drain <id>                          mark a node draining\n"
    "  controller add <id> <raft host:port> [rpc host:port]\n"
    "                                           add a replica started with --join\n"
    "  controller remove <id>                   remove a replica from the voters\n"
    "Exit status: 0 done, 1 failure (the controller's message on stderr), 2 usage.\n";

static ctl_options_t opts;
static char url_buf[MAX_CONTROLLERS][160];
static const char *urls[MAX_CONTROLLERS];
static size_t n_urls;

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "mafalda-ctl: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nTry 'mafalda-ctl --help'.\n");
  return EXIT_USAGE;
}

static int fail(const char *what, const char *message) {
  if (opts.json) {
    json_t *o = json_pack("{s:b, s:s, s:s}", "ok", 0, "command", what, "error", message);
    if (o) {
      char *s = json_dumps(o, JSON_COMPACT);
      if (s) printf("%s\n", s);
      free(s);
      json_decref(o);
    }
  }
  fprintf(stderr, "mafalda-ctl: %s: %s\n", what, message);
  return EXIT_FAIL;
}

/* host:port with a non-empty host and a port 1..65535. */
static bool valid_hostport(const char *s) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || !colon[1]) return false;
  for (const char *p = s; p < colon; p++)
    if (*p <= ' ' || *p == ',' || *p == '/' || *p == 0x7f) return false;
  char *end;
  errno = 0;
  long port = strtol(colon + 1, &end, 10);
  return !errno && *end == '\0' && port >= 1 && port <= 65535;
}

static bool parse_controllers(const char *text) {
  n_urls = 0;
  const char *p = text;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    char one[128];
    if (n == 0 || n >= sizeof(one) || n_urls == MAX_CONTROLLERS) return false;
    memcpy(one, p, n);
    one[n] = '\0';
    const char *hp = strncmp(one, "tcp://", 6) == 0 ? one + 6 : one;
    if (!valid_hostport(hp)) return false;
    snprintf(url_buf[n_urls], sizeof(url_buf[n_urls]), "tcp://%s", hp);
    urls[n_urls] = url_buf[n_urls];
    n_urls++;
    if (!end) break;
    p = end + 1;
    if (!*p) return false; /* trailing comma */
  }
  return n_urls > 0;
}

static const char *status_name(Mafalda__Rpc__Status st) {
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&mafalda__rpc__status__descriptor, (int)st);
  return v ? v->name : "STATUS_?";
}

/* One call to whichever replica leads. On success returns MF_OK with reply->envelope of
 * status OK; otherwise prints why and returns the failure (reply freed). */
static mf_err_t call(const char *what, const char *method, const ProtobufCMessage *req,
                     mf_rpc_reply_t *reply) {
  size_t hint = 0;
  mf_err_t err = mf_rpc_call_leader(urls, n_urls, &hint, method, req, opts.timeout_ms, reply);
  if (err != MF_OK) {
    char msg[1400];
    if (err == MF_ERR_STATE)
      snprintf(msg, sizeof(msg), "no leader available within %d ms (election in progress, "
               "quorum lost, or the leader kept answering 'unavailable', e.g. another "
               "membership change in progress)", opts.timeout_ms);
    else
      snprintf(msg, sizeof(msg), "no controller answered within %d ms at %s%s",
               opts.timeout_ms, opts.controller, n_urls > 1 ? " (tried all)" : "");
    fail(what, msg);
    return err;
  }
  Mafalda__Rpc__Envelope *env = reply->envelope;
  if (env->status != MAFALDA__RPC__STATUS__STATUS_OK) {
    char msg[512];
    snprintf(msg, sizeof(msg), "%s (%s)",
             env->error_message && env->error_message[0] ? env->error_message : "refused",
             status_name(env->status));
    fail(what, msg);
    mf_rpc_reply_free(reply);
    return MF_ERR_STATE;
  }
  return MF_OK;
}

/* ---- reads ---- */

static Mafalda__Controller__StateResponse *fetch_state(const char *what) {
  Mafalda__Controller__StatusRequest req = MAFALDA__CONTROLLER__STATUS_REQUEST__INIT;
  req.linearizable = true;
  mf_rpc_reply_t reply;
  if (call(what, MF_RPC_METHOD_STATE, &req.base, &reply) != MF_OK) return NULL;
  Mafalda__Controller__StateResponse *r = mafalda__controller__state_response__unpack(
      NULL, reply.envelope->payload.len, reply.envelope->payload.data);
  mf_rpc_reply_free(&reply);
  if (!r || !r->status || !r->state) {
    if (r) mafalda__controller__state_response__free_unpacked(r, NULL);
    fail(what, "the controller's answer does not decode (version mismatch?)");
    return NULL;
  }
  return r;
}

/* A text table: columns padded to their widest cell. Cells are copied. */
#define TABLE_COLS 8
typedef struct {
  size_t cols, rows, cap;
  char **cells; /* rows * cols, row 0 = headers */
} table_t;

static void table_row(table_t *t, const char *const *cells) {
  if (t->rows == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    char **c = realloc(t->cells, cap * t->cols * sizeof(char *));
    if (!c) {
      fprintf(stderr, "mafalda-ctl: out of memory\n");
      exit(EXIT_FAIL);
    }
    t->cells = c;
    t->cap = cap;
  }
  for (size_t i = 0; i < t->cols; i++) {
    char *s = strdup(cells[i] ? cells[i] : "");
    if (!s) {
      fprintf(stderr, "mafalda-ctl: out of memory\n");
      exit(EXIT_FAIL);
    }
    t->cells[t->rows * t->cols + i] = s;
  }
  t->rows++;
}

static void table_print(table_t *t) {
  size_t width[TABLE_COLS] = {0};
  for (size_t r = 0; r < t->rows; r++)
    for (size_t c = 0; c < t->cols; c++) {
      size_t n = strlen(t->cells[r * t->cols + c]);
      if (n > width[c]) width[c] = n;
    }
  for (size_t r = 0; r < t->rows; r++) {
    for (size_t c = 0; c < t->cols; c++) {
      const char *s = t->cells[r * t->cols + c];
      if (c + 1 == t->cols)
        printf("%s\n", s);
      else
        printf("%-*s  ", (int)width[c], s);
    }
  }
  for (size_t i = 0; i < t->rows * t->cols; i++) free(t->cells[i]);
  free(t->cells);
}

static const char *state_name(Mafalda__Controller__NodeState st) {
  switch (st) {
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_JOINING: return "joining";
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE: return "active";
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DRAINING: return "draining";
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD: return "dead";
    default: return "unspecified";
  }
}

static int print_json(json_t *v) {
  if (!v) {
    fprintf(stderr, "mafalda-ctl: out of memory\n");
    return EXIT_FAIL;
  }
  char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(v);
  if (!s) {
    fprintf(stderr, "mafalda-ctl: out of memory\n");
    return EXIT_FAIL;
  }
  printf("%s\n", s);
  free(s);
  return 0;
}

/* Opaque JSON text kept by the controller: embedded as JSON when it parses, else as a
 * string, so --json output stays valid whatever the API stored. */
static json_t *opaque_json(const char *text) {
  if (!text || !text[0]) return json_null();
  json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
  return v ? v : json_string(text);
}

static void count_state(const Mafalda__Controller__Snapshot *s, mf_fsm_counts_t *c) {
  c->nodes = s->n_nodes;
  c->routers = s->n_routers;
  c->shards = s->n_shards;
  c->producers = s->n_producers;
  c->pipes = s->n_pipes;
}

static int cmd_status(void) {
  Mafalda__Controller__StateResponse *r = fetch_state("status");
  if (!r) return EXIT_FAIL;
  const Mafalda__Controller__StatusResponse *st = r->status;
  mf_fsm_counts_t c;
  count_state(r->state, &c);
  int rc = 0;
  if (opts.json) {
    json_t *o = json_pack(
        "{s:I, s:s, s:I, s:I, s:b, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}}", "leader_id",
        (json_int_t)st->leader_id, "leader_address", st->leader_address ? st->leader_address : "",
        "term", (json_int_t)r->term, "replica_id", (json_int_t)st->id, "is_leader",
        (int)st->is_leader, "last_applied", (json_int_t)st->last_applied, "load_reports",
        (json_int_t)st->load_reports, "counts", "nodes", (json_int_t)c.nodes, "routers",
        (json_int_t)c.routers, "shards", (json_int_t)c.shards, "producers",
        (json_int_t)c.producers, "pipes", (json_int_t)c.pipes);
    rc = print_json(o);
  } else {
    printf("leader:        %" PRIu64 " (%s)\n", st->leader_id,
           st->leader_address && st->leader_address[0] ? st->leader_address : "address unknown");
    printf("term:          %" PRIu64 "\n", r->term);
    printf("last applied:  %" PRIu64 "\n", st->last_applied);
    printf("load reports:  %u\n", st->load_reports);
    printf("nodes:         %zu\n", c.nodes);
    printf("routers:       %zu\n", c.routers);
    printf("shards:        %zu\n", c.shards);
    printf("producers:     %zu\n", c.producers);
    printf("pipes:         %zu\n", c.pipes);
  }
  mafalda__controller__state_response__free_unpacked(r, NULL);
  return rc;
}

static int list_nodes(const Mafalda__Controller__Snapshot *s) {
  if (opts.json) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->n_nodes; i++) {
      const Mafalda__Controller__Node *n = s->nodes[i];
      json_t *w = json_array();
      for (size_t k = 0; w && k < n->n_workers; k++)
        json_array_append_new(w, json_pack("{s:I, s:I}", "index",
                                           (json_int_t)n->workers[k]->index, "rtc_port",
                                           (json_int_t)n->workers[k]->rtc_port));
      json_array_append_new(
          a, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o*}", "id", n->id, "name", n->name,
                       "state", state_name(n->state), "rpc_address", n->rpc_address,
                       "gossip_address", n->gossip_address, "announced_ip", n->announced_ip,
                       "workers", w));
    }
    return print_json(a);
  }
  table_t t = {.cols = 6};
  table_row(&t, (const char *const[]){"ID", "NAME", "STATE", "WORKERS", "RPC", "ANNOUNCED_IP"});
  for (size_t i = 0; i < s->n_nodes; i++) {
    const Mafalda__Controller__Node *n = s->nodes[i];
    char workers[16];
    snprintf(workers, sizeof(workers), "%zu", n->n_workers);
    table_row(&t, (const char *const[]){n->id, n->name, state_name(n->state), workers,
                                        n->rpc_address, n->announced_ip});
  }
  table_print(&t);
  return 0;
}

static int list_routers(const Mafalda__Controller__Snapshot *s) {
  if (opts.json) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->n_routers; i++) {
      const Mafalda__Controller__Router *r = s->routers[i];
      json_array_append_new(a, json_pack("{s:s, s:s, s:o*, s:o*}", "id", r->id, "name",
                                         r->name, "codecs", opaque_json(r->codecs_json),
                                         "app_data", opaque_json(r->app_data_json)));
    }
    return print_json(a);
  }
  table_t t = {.cols = 3};
  table_row(&t, (const char *const[]){"ID", "NAME", "SHARDS"});
  for (size_t i = 0; i < s->n_routers; i++) {
    const Mafalda__Controller__Router *r = s->routers[i];
    size_t shards = 0;
    for (size_t k = 0; k < s->n_shards; k++)
      if (strcmp(s->shards[k]->router_id, r->id) == 0) shards++;
    char n[16];
    snprintf(n, sizeof(n), "%zu", shards);
    table_row(&t, (const char *const[]){r->id, r->name, n});
  }
  table_print(&t);
  return 0;
}

static int list_shards(const Mafalda__Controller__Snapshot *s) {
  if (opts.json) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->n_shards; i++) {
      const Mafalda__Controller__Shard *sh = s->shards[i];
      json_array_append_new(a, json_pack("{s:s, s:s, s:I}", "router_id", sh->router_id,
                                         "node_id", sh->node_id, "worker",
                                         (json_int_t)sh->worker));
    }
    return print_json(a);
  }
  table_t t = {.cols = 3};
  table_row(&t, (const char *const[]){"ROUTER", "NODE", "WORKER"});
  for (size_t i = 0; i < s->n_shards; i++) {
    const Mafalda__Controller__Shard *sh = s->shards[i];
    char w[16];
    snprintf(w, sizeof(w), "%u", sh->worker);
    table_row(&t, (const char *const[]){sh->router_id, sh->node_id, w});
  }
  table_print(&t);
  return 0;
}

static int list_producers(const Mafalda__Controller__Snapshot *s) {
  if (opts.json) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->n_producers; i++) {
      const Mafalda__Controller__Producer *p = s->producers[i];
      json_array_append_new(
          a, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "id", p->id, "kind", p->kind,
                       "router_id", p->router_id, "node_id", p->node_id, "worker",
                       (json_int_t)p->worker, "rtp_parameters_bytes",
                       (json_int_t)p->rtp_parameters.len));
    }
    return print_json(a);
  }
  table_t t = {.cols = 5};
  table_row(&t, (const char *const[]){"ID", "KIND", "ROUTER", "ORIGIN", "PIPES"});
  for (size_t i = 0; i < s->n_producers; i++) {
    const Mafalda__Controller__Producer *p = s->producers[i];
    char origin[MF_FSM_ID_MAX + 16], pipes[16];
    snprintf(origin, sizeof(origin), "%s/%u", p->node_id, p->worker);
    size_t n = 0;
    for (size_t k = 0; k < s->n_pipes; k++)
      if (strcmp(s->pipes[k]->producer_id, p->id) == 0) n++;
    snprintf(pipes, sizeof(pipes), "%zu", n);
    table_row(&t, (const char *const[]){p->id, p->kind, p->router_id, origin, pipes});
  }
  table_print(&t);
  return 0;
}

static int list_pipes(const Mafalda__Controller__Snapshot *s) {
  if (opts.json) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->n_pipes; i++) {
      const Mafalda__Controller__Pipe *p = s->pipes[i];
      json_array_append_new(
          a, json_pack("{s:s, s:s, s:I, s:s, s:I}", "producer_id", p->producer_id,
                       "target_node_id", p->target_node_id, "target_worker",
                       (json_int_t)p->target_worker, "source_node_id", p->source_node_id,
                       "source_worker", (json_int_t)p->source_worker));
    }
    return print_json(a);
  }
  table_t t = {.cols = 3};
  table_row(&t, (const char *const[]){"PRODUCER", "TARGET", "SOURCE"});
  for (size_t i = 0; i < s->n_pipes; i++) {
    const Mafalda__Controller__Pipe *p = s->pipes[i];
    char target[MF_FSM_ID_MAX + 16], source[MF_FSM_ID_MAX + 16];
    snprintf(target, sizeof(target), "%s/%u", p->target_node_id, p->target_worker);
    snprintf(source, sizeof(source), "%s/%u", p->source_node_id, p->source_worker);
    table_row(&t, (const char *const[]){p->producer_id, target, source});
  }
  table_print(&t);
  return 0;
}

static int cmd_list(const char *what, int (*print)(const Mafalda__Controller__Snapshot *)) {
  Mafalda__Controller__StateResponse *r = fetch_state(what);
  if (!r) return EXIT_FAIL;
  int rc = print(r->state);
  mafalda__controller__state_response__free_unpacked(r, NULL);
  return rc;
}

/* ---- writes ---- */

static int report_result(const char *what, mf_rpc_reply_t *reply, const char *done) {
  Mafalda__Controller__CommandResult *res = mafalda__controller__command_result__unpack(
      NULL, reply->envelope->payload.len, reply->envelope->payload.data);
  mf_rpc_reply_free(reply);
  uint64_t index = res ? res->index : 0;
  if (res) mafalda__controller__command_result__free_unpacked(res, NULL);
  if (opts.json) {
    json_t *o = json_pack("{s:b, s:s, s:I}", "ok", 1, "command", what, "index",
                          (json_int_t)index);
    return print_json(o);
  }
  if (index)
    printf("%s (log index %" PRIu64 ")\n", done, index);
  else
    printf("%s\n", done);
  return 0;
}

static bool valid_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > MF_FSM_ID_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (id[i] <= ' ' || id[i] >= 0x7f) return false;
  return true;
}

static int apply(const char *what, const Mafalda__Controller__Command *cmd, const char *done) {
  mf_rpc_reply_t reply;
  if (call(what, MF_RPC_METHOD_APPLY, &cmd->base, &reply) != MF_OK) return EXIT_FAIL;
  return report_result(what, &reply, done);
}

static int cmd_node(int argc, char **argv) {
  if (argc != 2) return usage_error("usage: node forget|drain <id>%s", "");
  const char *verb = argv[0], *id = argv[1];
  if (!valid_id(id)) return usage_error("invalid node id '%s'", id);
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  char done[160];
  if (strcmp(verb, "forget") == 0) {
    Mafalda__Controller__ForgetNode f = MAFALDA__CONTROLLER__FORGET_NODE__INIT;
    f.node_id = (char *)id;
    cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_FORGET_NODE;
    cmd.forget_node = &f;
    snprintf(done, sizeof(done), "node %s forgotten", id);
    return apply("node forget", &cmd, done);
  }
  if (strcmp(verb, "drain") == 0) {
    Mafalda__Controller__SetNodeState st = MAFALDA__CONTROLLER__SET_NODE_STATE__INIT;
    st.node_id = (char *)id;
    st.state = MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DRAINING;
    cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_SET_NODE_STATE;
    cmd.set_node_state = &st;
    snprintf(done, sizeof(done), "node %s draining", id);
    return apply("node drain", &cmd, done);
  }
  return usage_error("unknown node command '%s' (forget, drain)", verb);
}

static bool parse_raft_id(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  if (s[0] < '0' || s[0] > '9') return false;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v == 0) return false;
  *out = v;
  return true;
}

static int cmd_controller(int argc, char **argv) {
  if (argc < 1) return usage_error("usage: controller add|remove ...%s", "");
  const char *verb = argv[0];
  uint64_t id;
  char done[160];
  mf_rpc_reply_t reply;
  if (strcmp(verb, "add") == 0) {
    if (argc != 3 && argc != 4)
      return usage_error("usage: controller add <id> <raft host:port> [rpc host:port]%s", "");
    if (!parse_raft_id(argv[1], &id)) return usage_error("invalid replica id '%s'", argv[1]);
    if (!valid_hostport(argv[2])) return usage_error("invalid raft address '%s'", argv[2]);
    if (argc == 4 && !valid_hostport(argv[3]))
      return usage_error("invalid rpc address '%s'", argv[3]);
    Mafalda__Controller__AddVoterRequest req = MAFALDA__CONTROLLER__ADD_VOTER_REQUEST__INIT;
    req.id = id;
    req.raft_address = argv[2];
    req.rpc_address = argc == 4 ? argv[3] : (char *)"";
    if (call("controller add", MF_RPC_METHOD_ADD_VOTER, &req.base, &reply) != MF_OK)
      return EXIT_FAIL;
    snprintf(done, sizeof(done), "controller %" PRIu64 " added as a voter", id);
    return report_result("controller add", &reply, done);
  }
  if (strcmp(verb, "remove") == 0) {
    if (argc != 2) return usage_error("usage: controller remove <id>%s", "");
    if (!parse_raft_id(argv[1], &id)) return usage_error("invalid replica id '%s'", argv[1]);
    Mafalda__Controller__RemoveVoterRequest req =
        MAFALDA__CONTROLLER__REMOVE_VOTER_REQUEST__INIT;
    req.id = id;
    if (call("controller remove", MF_RPC_METHOD_REMOVE_VOTER, &req.base, &reply) != MF_OK)
      return EXIT_FAIL;
    snprintf(done, sizeof(done), "controller %" PRIu64 " removed", id);
    return report_result("controller remove", &reply, done);
  }
  return usage_error("unknown controller command '%s' (add, remove)", verb);
}

/* Splits argv into flags (for mf_config_parse) and positional words: flags may appear
 * anywhere; "--controller X" and "--timeout X" take the next word. */
static bool takes_value(const char *flag) {
  return strcmp(flag, "--controller") == 0 || strcmp(flag, "--timeout") == 0;
}

int main(int argc, char **argv) {
  char **flags = calloc((size_t)argc + 1, sizeof(char *));
  char **words = calloc((size_t)argc + 1, sizeof(char *));
  if (!flags || !words) return EXIT_FAIL;
  int n_flags = 0, n_words = 0;
  bool only_words = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!only_words && strcmp(a, "--") == 0) {
      only_words = true;
    } else if (!only_words && a[0] == '-' && a[1]) {
      flags[n_flags++] = argv[i];
      if (takes_value(a) && i + 1 < argc) flags[n_flags++] = argv[++i];
    } else {
      words[n_words++] = argv[i];
    }
  }
  mf_config_result_t result;
  int rc;
  if (mf_config_parse(options, N_OPTIONS, &opts, n_flags, flags, environ, &result) != MF_OK) {
    rc = usage_error("%s", result.error);
  } else if (result.help_requested) {
    mf_config_usage(options, N_OPTIONS, "mafalda-ctl [OPTIONS] COMMAND [ARGS]", stdout);
    fputs(commands_help, stdout);
    rc = 0;
  } else if (result.version_requested) {
    printf("mafalda-ctl %s\n", MF_VERSION);
    rc = 0;
  } else if (!parse_controllers(opts.controller)) {
    rc = usage_error("invalid --controller '%s' (want host:port[,host:port...])",
                     opts.controller);
  } else if (n_words == 0) {
    rc = usage_error("missing command%s", "");
  } else {
    const char *c = words[0];
    int nargs = n_words - 1;
    char **args = words + 1;
    bool no_args = nargs == 0;
    if (strcmp(c, "status") == 0)
      rc = no_args ? cmd_status() : usage_error("status takes no arguments%s", "");
    else if (strcmp(c, "nodes") == 0)
      rc = no_args ? cmd_list("nodes", list_nodes) : usage_error("nodes takes no arguments%s", "");
    else if (strcmp(c, "routers") == 0)
      rc = no_args ? cmd_list("routers", list_routers)
                   : usage_error("routers takes no arguments%s", "");
    else if (strcmp(c, "shards") == 0)
      rc = no_args ? cmd_list("shards", list_shards)
                   : usage_error("shards takes no arguments%s", "");
    else if (strcmp(c, "producers") == 0)
      rc = no_args ? cmd_list("producers", list_producers)
                   : usage_error("producers takes no arguments%s", "");
    else if (strcmp(c, "pipes") == 0)
      rc = no_args ? cmd_list("pipes", list_pipes) : usage_error("pipes takes no arguments%s", "");
    else if (strcmp(c, "node") == 0)
      rc = cmd_node(nargs, args);
    else if (strcmp(c, "controller") == 0)
      rc = cmd_controller(nargs, args);
    else
      rc = usage_error("unknown command '%s'", c);
  }
  free(flags);
  free(words);
  return rc;
}
