/* mafalda-ctl: operator's command-line client of the controller RPC.
 *
 *   mafalda-ctl [--controller host:port[,host:port...]] [--json] [--timeout MS] COMMAND
 *
 * Reads go through controller.State (linearizable: answered by the leader after a Raft
 * barrier, so a table shows every write acknowledged before it); writes go through
 * controller.Apply / AddVoter / RemoveVoter. Clients follow leader redirects.
 * Exit status: see ctl.h (MF_CTL_EXIT_*), --help and docs/controller.md. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "controller/ctl/ctl.h"
#include "controller/fsm.h"
#include "controller/rpc_client.h"
#include "controller/rpc_server.h"
#include "proto/controller.pb-c.h"

extern char **environ;

static const mf_config_option_t options[] = {
    {.name = "controller", .type = MF_OPT_STRING,
     .offset = offsetof(mf_ctl_options_t, controller), .size = 1024,
     .default_value = "127.0.0.1:7200",
     .help = "RPC addresses of controller replicas, host:port[,host:port...]; redirects to "
             "the leader are followed; status asks each of them for its term and index."},
    {.name = "json", .type = MF_OPT_BOOL, .offset = offsetof(mf_ctl_options_t, json),
     .default_value = "false", .help = "Print JSON instead of tables (schema: "
                                       "docs/controller.md, section mafalda-ctl)."},
    {.name = "timeout", .type = MF_OPT_INT, .offset = offsetof(mf_ctl_options_t, timeout_ms),
     .min = 100, .max = 600000, .default_value = "5000",
     .help = "Give up after this many milliseconds."},
    {.name = "watch", .type = MF_OPT_BOOL, .offset = offsetof(mf_ctl_options_t, watch),
     .default_value = "false",
     .help = "status only: refresh every second until Ctrl-C (exit 0); with --json one "
             "compact document per line."},
    {.name = "count", .type = MF_OPT_INT, .offset = offsetof(mf_ctl_options_t, count),
     .min = 0, .max = 1000000, .default_value = "0",
     .help = "With --watch: stop after this many refreshes (0 = until Ctrl-C)."},
    MF_TLS_CONFIG_OPTIONS(mf_ctl_options_t, tls), /* issue 12 (tls) */
};
#define N_OPTIONS (sizeof options / sizeof options[0])

static const char *const commands_help =
    "\nCommands:\n"
    "  status                 controller replicas (leader, term, applied index), nodes\n"
    "                         (state, address, workers, load, transports, producers,\n"
    "                         consumers, uptime) and totals; --watch refreshes it\n"
    "  nodes                  registered nodes\n"
    "  workers                one row per node worker: cpu, load, packets/s, objects\n"
    "  routers [NAME|ID]      routers; with a name or id: its shards and pipes\n"
    "  shards | producers | pipes   the replicated state's other tables\n"
    "  node drain <id>        mark a node draining (no new placements on it)\n"
    "  node forget <id>       remove a node and everything on it\n"
    "  controller add <id> <raft host:port> [rpc host:port]\n"
    "                         add a replica started with --join as a voter\n"
    "  controller remove <id> remove a replica from the voters\n"
    "Node ids may be given by a unique prefix (tables show the first 8 characters).\n"
    "\nExit status:\n"
    "  0  done\n"
    "  1  the controller refused (its message on stderr), an unknown router, or an\n"
    "     answer that does not decode\n"
    "  2  usage error (unknown command or flag, bad argument or --controller list)\n"
    "  3  no controller answered, or no leader, within --timeout (the addresses\n"
    "     tried and what to check on stderr)\n";

static int list_nodes(const Mafalda__Controller__Snapshot *s) {
  if (mf_ctl_opts.json) {
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
                       "state", mf_ctl_state_name(n->state), "rpc_address", n->rpc_address,
                       "gossip_address", n->gossip_address, "announced_ip", n->announced_ip,
                       "workers", w));
    }
    return mf_ctl_print_json(a, false);
  }
  mf_ctl_table_t t = {.cols = 6};
  mf_ctl_table_align(&t, "<<<><<");
  mf_ctl_table_row(&t,
                   (const char *const[]){"ID", "NAME", "STATE", "WORKERS", "RPC", "ANNOUNCED_IP"});
  for (size_t i = 0; i < s->n_nodes; i++) {
    const Mafalda__Controller__Node *n = s->nodes[i];
    char workers[16], id[16];
    snprintf(workers, sizeof(workers), "%zu", n->n_workers);
    mf_ctl_table_row(&t, (const char *const[]){mf_ctl_short_id(n->id, id, sizeof(id)), n->name,
                                               mf_ctl_state_name(n->state), workers,
                                               n->rpc_address, n->announced_ip});
  }
  mf_ctl_table_print(&t, NULL);
  return 0;
}

static int list_routers(const Mafalda__Controller__Snapshot *s) {
  if (mf_ctl_opts.json) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->n_routers; i++) {
      const Mafalda__Controller__Router *r = s->routers[i];
      json_array_append_new(a, json_pack("{s:s, s:s, s:o*, s:o*}", "id", r->id, "name",
                                         r->name, "codecs", mf_ctl_opaque_json(r->codecs_json),
                                         "app_data", mf_ctl_opaque_json(r->app_data_json)));
    }
    return mf_ctl_print_json(a, false);
  }
  mf_ctl_table_t t = {.cols = 3};
  mf_ctl_table_row(&t, (const char *const[]){"ID", "NAME", "SHARDS"});
  for (size_t i = 0; i < s->n_routers; i++) {
    const Mafalda__Controller__Router *r = s->routers[i];
    size_t shards = 0;
    for (size_t k = 0; k < s->n_shards; k++)
      if (strcmp(s->shards[k]->router_id, r->id) == 0) shards++;
    char n[16];
    snprintf(n, sizeof(n), "%zu", shards);
    mf_ctl_table_row(&t, (const char *const[]){r->id, r->name, n});
  }
  mf_ctl_table_print(&t, NULL);
  return 0;
}

static int list_shards(const Mafalda__Controller__Snapshot *s) {
  if (mf_ctl_opts.json) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->n_shards; i++) {
      const Mafalda__Controller__Shard *sh = s->shards[i];
      json_array_append_new(a, json_pack("{s:s, s:s, s:I}", "router_id", sh->router_id,
                                         "node_id", sh->node_id, "worker",
                                         (json_int_t)sh->worker));
    }
    return mf_ctl_print_json(a, false);
  }
  mf_ctl_table_t t = {.cols = 3};
  mf_ctl_table_row(&t, (const char *const[]){"ROUTER", "NODE", "WORKER"});
  for (size_t i = 0; i < s->n_shards; i++) {
    const Mafalda__Controller__Shard *sh = s->shards[i];
    char w[16];
    snprintf(w, sizeof(w), "%u", sh->worker);
    char router[16], node[16];
    mf_ctl_table_row(&t, (const char *const[]){mf_ctl_short_id(sh->router_id, router,
                                                               sizeof(router)),
                                               mf_ctl_short_id(sh->node_id, node, sizeof(node)),
                                               w});
  }
  mf_ctl_table_print(&t, NULL);
  return 0;
}

static int list_producers(const Mafalda__Controller__Snapshot *s) {
  if (mf_ctl_opts.json) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->n_producers; i++) {
      const Mafalda__Controller__Producer *p = s->producers[i];
      json_array_append_new(
          a, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "id", p->id, "kind", p->kind,
                       "router_id", p->router_id, "node_id", p->node_id, "worker",
                       (json_int_t)p->worker, "rtp_parameters_bytes",
                       (json_int_t)p->rtp_parameters.len));
    }
    return mf_ctl_print_json(a, false);
  }
  mf_ctl_table_t t = {.cols = 5};
  mf_ctl_table_row(&t, (const char *const[]){"ID", "KIND", "ROUTER", "ORIGIN", "PIPES"});
  for (size_t i = 0; i < s->n_producers; i++) {
    const Mafalda__Controller__Producer *p = s->producers[i];
    char origin[32], pipes[16], node[16], router[16];
    snprintf(origin, sizeof(origin), "%s/%u", mf_ctl_short_id(p->node_id, node, sizeof(node)),
             p->worker);
    size_t n = 0;
    for (size_t k = 0; k < s->n_pipes; k++)
      if (strcmp(s->pipes[k]->producer_id, p->id) == 0) n++;
    snprintf(pipes, sizeof(pipes), "%zu", n);
    mf_ctl_table_row(&t, (const char *const[]){p->id, p->kind,
                                               mf_ctl_short_id(p->router_id, router,
                                                               sizeof(router)),
                                               origin, pipes});
  }
  mf_ctl_table_print(&t, NULL);
  return 0;
}

static int list_pipes(const Mafalda__Controller__Snapshot *s) {
  if (mf_ctl_opts.json) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->n_pipes; i++) {
      const Mafalda__Controller__Pipe *p = s->pipes[i];
      json_array_append_new(
          a, json_pack("{s:s, s:s, s:I, s:s, s:I}", "producer_id", p->producer_id,
                       "target_node_id", p->target_node_id, "target_worker",
                       (json_int_t)p->target_worker, "source_node_id", p->source_node_id,
                       "source_worker", (json_int_t)p->source_worker));
    }
    return mf_ctl_print_json(a, false);
  }
  mf_ctl_table_t t = {.cols = 3};
  mf_ctl_table_row(&t, (const char *const[]){"PRODUCER", "TARGET", "SOURCE"});
  for (size_t i = 0; i < s->n_pipes; i++) {
    const Mafalda__Controller__Pipe *p = s->pipes[i];
    char target[32], source[32], tn[16], sn[16];
    snprintf(target, sizeof(target), "%s/%u", mf_ctl_short_id(p->target_node_id, tn, sizeof(tn)),
             p->target_worker);
    snprintf(source, sizeof(source), "%s/%u", mf_ctl_short_id(p->source_node_id, sn, sizeof(sn)),
             p->source_worker);
    mf_ctl_table_row(&t, (const char *const[]){p->producer_id, target, source});
  }
  mf_ctl_table_print(&t, NULL);
  return 0;
}

static int cmd_list(const char *what, int (*print)(const Mafalda__Controller__Snapshot *)) {
  int rc = MF_CTL_EXIT_OK;
  Mafalda__Controller__StateResponse *r = mf_ctl_fetch_state(what, &rc);
  if (!r) return rc;
  rc = print(r->state);
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
  if (mf_ctl_opts.json) {
    json_t *o = json_pack("{s:b, s:s, s:I}", "ok", 1, "command", what, "index",
                          (json_int_t)index);
    return mf_ctl_print_json(o, false);
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
  int rc = MF_CTL_EXIT_FAIL;
  if (mf_ctl_call(what, MF_RPC_METHOD_APPLY, &cmd->base, &reply, &rc) != MF_OK) return rc;
  return report_result(what, &reply, done);
}

/* The full id of the node an operator named by its id or a unique prefix of it (tables
 * show 8 characters of a UUID). An unknown id is passed on as given: the controller's
 * refusal says it is unknown. Returns an exit status (0: *out is set). */
static int resolve_node(const char *what, const char *id, char *out, size_t size) {
  int rc = MF_CTL_EXIT_OK;
  Mafalda__Controller__StateResponse *r = mf_ctl_fetch_state(what, &rc);
  if (!r) return rc;
  const Mafalda__Controller__Snapshot *s = r->state;
  const char *found = NULL;
  size_t matches = 0, n = strlen(id);
  for (size_t i = 0; i < s->n_nodes && !found; i++)
    if (strcmp(s->nodes[i]->id, id) == 0) found = s->nodes[i]->id;
  for (size_t i = 0; i < s->n_nodes && !found; i++)
    if (strncmp(s->nodes[i]->id, id, n) == 0) matches++;
  if (!found && matches == 1)
    for (size_t i = 0; i < s->n_nodes && !found; i++)
      if (strncmp(s->nodes[i]->id, id, n) == 0) found = s->nodes[i]->id;
  if (!found && matches > 1)
    rc = mf_ctl_usage_error("node id prefix '%s' matches several nodes: give more of it", id);
  else
    snprintf(out, size, "%s", found ? found : id);
  mafalda__controller__state_response__free_unpacked(r, NULL);
  return rc;
}

static int cmd_node(int argc, char **argv) {
  if (argc != 2) return mf_ctl_usage_error("usage: node forget|drain <id>%s", "");
  const char *verb = argv[0];
  if (!valid_id(argv[1])) return mf_ctl_usage_error("invalid node id '%s'", argv[1]);
  if (strcmp(verb, "forget") != 0 && strcmp(verb, "drain") != 0)
    return mf_ctl_usage_error("unknown node command '%s' (forget, drain)", verb);
  char id[MF_FSM_ID_MAX + 1];
  int rc = resolve_node(strcmp(verb, "forget") == 0 ? "node forget" : "node drain", argv[1], id,
                        sizeof(id));
  if (rc != MF_CTL_EXIT_OK) return rc;
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
  return mf_ctl_usage_error("unknown node command '%s' (forget, drain)", verb);
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
  if (argc < 1) return mf_ctl_usage_error("usage: controller add|remove ...%s", "");
  const char *verb = argv[0];
  uint64_t id;
  char done[160];
  mf_rpc_reply_t reply;
  if (strcmp(verb, "add") == 0) {
    if (argc != 3 && argc != 4)
      return mf_ctl_usage_error("usage: controller add <id> <raft host:port> [rpc host:port]%s",
                                "");
    if (!parse_raft_id(argv[1], &id)) return mf_ctl_usage_error("invalid replica id '%s'", argv[1]);
    if (!mf_ctl_valid_hostport(argv[2]))
      return mf_ctl_usage_error("invalid raft address '%s'", argv[2]);
    if (argc == 4 && !mf_ctl_valid_hostport(argv[3]))
      return mf_ctl_usage_error("invalid rpc address '%s'", argv[3]);
    Mafalda__Controller__AddVoterRequest req = MAFALDA__CONTROLLER__ADD_VOTER_REQUEST__INIT;
    req.id = id;
    req.raft_address = argv[2];
    req.rpc_address = argc == 4 ? argv[3] : (char *)"";
    int rc = MF_CTL_EXIT_FAIL;
    if (mf_ctl_call("controller add", MF_RPC_METHOD_ADD_VOTER, &req.base, &reply, &rc) != MF_OK)
      return rc;
    snprintf(done, sizeof(done), "controller %" PRIu64 " added as a voter", id);
    return report_result("controller add", &reply, done);
  }
  if (strcmp(verb, "remove") == 0) {
    if (argc != 2) return mf_ctl_usage_error("usage: controller remove <id>%s", "");
    if (!parse_raft_id(argv[1], &id)) return mf_ctl_usage_error("invalid replica id '%s'", argv[1]);
    Mafalda__Controller__RemoveVoterRequest req =
        MAFALDA__CONTROLLER__REMOVE_VOTER_REQUEST__INIT;
    req.id = id;
    int rc = MF_CTL_EXIT_FAIL;
    if (mf_ctl_call("controller remove", MF_RPC_METHOD_REMOVE_VOTER, &req.base, &reply, &rc) !=
        MF_OK)
      return rc;
    snprintf(done, sizeof(done), "controller %" PRIu64 " removed", id);
    return report_result("controller remove", &reply, done);
  }
  return mf_ctl_usage_error("unknown controller command '%s' (add, remove)", verb);
}

/* Splits argv into flags (for mf_config_parse) and positional words: flags may appear
 * anywhere; "--controller X", "--timeout X" and "--count X" take the next word. */
static bool takes_value(const char *flag) {
  return strcmp(flag, "--controller") == 0 || strcmp(flag, "--timeout") == 0 ||
         strcmp(flag, "--count") == 0 || strcmp(flag, "--tls-cert") == 0 ||
         strcmp(flag, "--tls-key") == 0 || strcmp(flag, "--tls-ca") == 0;
}

/* issue 12 (tls): loads --tls-* and checks the --controller list against them; 0 or the
 * usage exit status after printing why. */
static int load_tls(mf_tls_t **tls) {
  char err[1024];
  mf_err_t e = mf_tls_load(&mf_ctl_opts.tls, tls, err, sizeof err);
  mf_tls_set_control(*tls);
  if (e == MF_OK) e = mf_tls_check_list(mf_ctl_opts.controller, "--controller", err, sizeof err);
  return e == MF_OK ? 0 : mf_ctl_usage_error("%s", err);
}

int main(int argc, char **argv) {
  char **flags = calloc((size_t)argc + 1, sizeof(char *));
  char **words = calloc((size_t)argc + 1, sizeof(char *));
  if (!flags || !words) return MF_CTL_EXIT_FAIL;
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
  mf_tls_t *tls = NULL;
  if (mf_config_parse(options, N_OPTIONS, &mf_ctl_opts, n_flags, flags, environ, &result) !=
      MF_OK) {
    rc = mf_ctl_usage_error("%s", result.error);
  } else if (result.help_requested) {
    mf_config_usage(options, N_OPTIONS, "mafalda-ctl [OPTIONS] COMMAND [ARGS]", stdout);
    fputs(commands_help, stdout);
    rc = 0;
  } else if (result.version_requested) {
    printf("mafalda-ctl %s\n", MF_VERSION);
    rc = 0;
  } else if ((rc = load_tls(&tls)) != 0) {
    /* printed */
  } else if (!mf_ctl_parse_controllers(mf_ctl_opts.controller)) {
    rc = mf_ctl_usage_error("invalid --controller '%s' (want host:port[,host:port...])",
                      mf_ctl_opts.controller);
  } else if (n_words == 0) {
    rc = mf_ctl_usage_error("missing command%s", "");
  } else if ((mf_ctl_opts.watch || mf_ctl_opts.count) && strcmp(words[0], "status") != 0) {
    rc = mf_ctl_usage_error("--watch and --count apply to status only, not '%s'", words[0]);
  } else if (mf_ctl_opts.count && !mf_ctl_opts.watch) {
    rc = mf_ctl_usage_error("--count needs --watch%s", "");
  } else {
    const char *c = words[0];
    int nargs = n_words - 1;
    char **args = words + 1;
    bool no_args = nargs == 0;
    if (strcmp(c, "status") == 0)
      rc = no_args ? mf_ctl_cmd_status() : mf_ctl_usage_error("status takes no arguments%s", "");
    else if (strcmp(c, "workers") == 0)
      rc = no_args ? mf_ctl_cmd_workers()
                   : mf_ctl_usage_error("workers takes no arguments%s", "");
    else if (strcmp(c, "nodes") == 0)
      rc = no_args ? cmd_list("nodes", list_nodes)
                   : mf_ctl_usage_error("nodes takes no arguments%s", "");
    else if (strcmp(c, "routers") == 0)
      rc = no_args     ? cmd_list("routers", list_routers)
           : nargs == 1 ? mf_ctl_cmd_router(args[0])
                        : mf_ctl_usage_error("usage: routers [NAME|ID]%s", "");
    else if (strcmp(c, "shards") == 0)
      rc = no_args ? cmd_list("shards", list_shards)
                   : mf_ctl_usage_error("shards takes no arguments%s", "");
    else if (strcmp(c, "producers") == 0)
      rc = no_args ? cmd_list("producers", list_producers)
                   : mf_ctl_usage_error("producers takes no arguments%s", "");
    else if (strcmp(c, "pipes") == 0)
      rc = no_args ? cmd_list("pipes", list_pipes)
                   : mf_ctl_usage_error("pipes takes no arguments%s", "");
    else if (strcmp(c, "node") == 0)
      rc = cmd_node(nargs, args);
    else if (strcmp(c, "controller") == 0)
      rc = cmd_controller(nargs, args);
    else
      rc = mf_ctl_usage_error("unknown command '%s'", c);
  }
  free(flags);
  free(words);
  mf_tls_set_control(NULL);
  mf_tls_free(tls);
  return rc;
}
