/* mafalda-controller: one Raft replica of the cluster state plus its RPC server, on one
 * libuv loop. SIGTERM/SIGINT stop it cleanly (RPC first, then Raft, exit 0). */
#define MF_LOG_MODULE "controller"
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/config.h"
#include "common/log.h"
#include "common/swim_udp.h"
#include "common/tls_config.h"
#include "controller/replica.h"
#include "proto/cluster.pb-c.h"

extern char **environ;

typedef struct {
  int id;
  char listen[128];
  char rpc_listen[128];
  char peers[2048];
  char data_dir[512];
  int snapshot_threshold;
  int election_timeout_ms;
  int max_pipes_out;
  int log_level;
  int log_format;
  bool join;
  char gossip_listen[128];
  char gossip_join[1024];
  char gossip_advertise[128]; /* issue 12 (chaos): NAT, test loss proxy */
  mf_tls_options_t tls;       /* issue 12 (tls): control-plane TLS of the RPC server */
} ctl_config_t;

static const char *const level_choices[] = {"trace", "debug", "info", "warn",
                                            "error", "off",   NULL};
static const char *const format_choices[] = {"text", "json", NULL};

static const mf_config_option_t options[] = {
    {.name = "id", .type = MF_OPT_INT, .offset = offsetof(ctl_config_t, id), .min = 1,
     .max = 1000000, .default_value = "1", .help = "This replica's Raft id (1..)."},
    {.name = "listen", .type = MF_OPT_STRING, .offset = offsetof(ctl_config_t, listen),
     .size = 128, .default_value = "127.0.0.1:7100",
     .help = "host:port for Raft traffic; must match this id's entry in --peers."},
    {.name = "rpc-listen", .type = MF_OPT_STRING,
     .offset = offsetof(ctl_config_t, rpc_listen), .size = 128,
     .default_value = "127.0.0.1:7200", .help = "host:port of the protobuf/nng RPC server."},
    {.name = "peers", .type = MF_OPT_STRING, .offset = offsetof(ctl_config_t, peers),
     .size = 2048, .default_value = "",
     .help = "Voters as id@raft_host:port[/rpc_host:port],... (every replica, this one "
             "included). Empty: a single-voter cluster of this replica."},
    {.name = "data-dir", .type = MF_OPT_STRING, .offset = offsetof(ctl_config_t, data_dir),
     .size = 512, .default_value = "./controller-data",
     .help = "Raft log and snapshots (created if missing)."},
    {.name = "snapshot-threshold", .type = MF_OPT_INT,
     .offset = offsetof(ctl_config_t, snapshot_threshold), .min = 2, .max = 1000000000,
     .default_value = "1024", .help = "Log entries between snapshots."},
    {.name = "election-timeout", .type = MF_OPT_INT,
     .offset = offsetof(ctl_config_t, election_timeout_ms), .min = 50, .max = 60000,
     .default_value = "1000", .help = "Raft election timeout in milliseconds."},
    {.name = "max-pipes-out", .type = MF_OPT_INT, .offset = offsetof(ctl_config_t, max_pipes_out),
     .min = 0, .max = 100000, .default_value = "0",
     .help = "Pipes of one producer a worker sends before the scheduler feeds further shards "
             "from shards that already receive it (a relay tree); 0: the default, 8."},
    {.name = "join", .type = MF_OPT_BOOL, .offset = offsetof(ctl_config_t, join),
     .default_value = "false",
     .help = "Start without bootstrapping and wait to be added by the leader "
             "(controller.AddVoter). --peers must list this replica."},
    {.name = "gossip-listen", .type = MF_OPT_STRING,
     .offset = offsetof(ctl_config_t, gossip_listen), .size = 128, .default_value = "",
     .help = "IPv4 host:port of this replica's gossip (SWIM) member, port 0 = any; the "
             "leader marks nodes dead that gossip finds dead. Empty: no membership."},
    {.name = "gossip-join", .type = MF_OPT_STRING,
     .offset = offsetof(ctl_config_t, gossip_join), .size = 1024, .default_value = "",
     .help = "Gossip address(es) of members to join through, host:port,..."},
    {.name = "gossip-advertise", .type = MF_OPT_STRING,
     .offset = offsetof(ctl_config_t, gossip_advertise), .size = 128, .default_value = "",
     .help = "IPv4 host:port other members send this replica's gossip to, when that is not "
             "--gossip-listen (a NAT or port forward, a test proxy). Empty: --gossip-listen "
             "with the bound port."},
    {.name = "log-level", .type = MF_OPT_ENUM, .offset = offsetof(ctl_config_t, log_level),
     .choices = level_choices, .default_value = "info", .help = "Least severe level logged."},
    {.name = "log-format", .type = MF_OPT_ENUM, .offset = offsetof(ctl_config_t, log_format),
     .choices = format_choices, .default_value = "text", .help = "text or json lines."},
    MF_TLS_CONFIG_OPTIONS(ctl_config_t, tls), /* issue 12 (tls) */
};
#define N_OPTIONS (sizeof options / sizeof options[0])

typedef struct {
  uv_signal_t sigterm, sigint;
  mf_replica_t *replica;
  mf_swim_udp_t *gossip;
  bool stopping;
} app_t;

/* Joins the gossip group as a controller: nodes find the controllers' RPC addresses in
 * their meta. */
static mf_err_t start_gossip(uv_loop_t *loop, const ctl_config_t *cfg, app_t *app) {
  char host[128];
  snprintf(host, sizeof host, "%s", cfg->gossip_listen);
  char *colon = strrchr(host, ':');
  if (!colon) {
    fprintf(stderr, "mafalda-controller: --gossip-listen '%s': expected host:port\n", host);
    return MF_ERR_INVALID_ARG;
  }
  *colon = '\0';
  int port = atoi(colon + 1);
  char id[64];
  snprintf(id, sizeof id, "controller-%d", cfg->id);
  Mafalda__Cluster__MemberMeta m = MAFALDA__CLUSTER__MEMBER_META__INIT;
  m.role = MAFALDA__CLUSTER__MEMBER_ROLE__MEMBER_ROLE_CONTROLLER;
  m.rpc_address = (char *)cfg->rpc_listen;
  m.controller_rpc_address = (char *)cfg->rpc_listen;
  uint8_t meta[MF_SWIM_META_MAX];
  size_t len = protobuf_c_message_get_packed_size(&m.base);
  if (len > sizeof meta) return MF_ERR_LIMIT;
  protobuf_c_message_pack(&m.base, meta);
  mf_swim_udp_config_t gc = {0};
  char adv[128];
  if (cfg->gossip_advertise[0]) {
    snprintf(adv, sizeof adv, "%s", cfg->gossip_advertise);
    char *c = strrchr(adv, ':');
    int adv_port = c ? atoi(c + 1) : 0;
    if (!c || adv_port < 1 || adv_port > 65535) {
      fprintf(stderr, "mafalda-controller: --gossip-advertise '%s': expected host:port\n", adv);
      return MF_ERR_INVALID_ARG;
    }
    *c = '\0';
    gc.announce_host = adv; /* mf_swim_udp_start refuses anything but an IPv4 literal */
    gc.announce_port = (uint16_t)adv_port;
  }
  gc.swim.self_id = id;
  gc.swim.meta = meta;
  gc.swim.meta_len = len;
  mf_err_t e = mf_swim_udp_start(loop, host, (uint16_t)port, &gc, &app->gossip);
  if (e != MF_OK) {
    fprintf(stderr, "mafalda-controller: gossip cannot start on %s: %s\n", cfg->gossip_listen,
            mf_strerror(e));
    return e;
  }
  mf_swim_udp_join_list(app->gossip, cfg->gossip_join);
  mf_replica_attach_gossip(app->replica, mf_swim_udp_swim(app->gossip));
  return MF_OK;
}

static void replica_stopped(void *ud) {
  app_t *app = ud;
  uv_close((uv_handle_t *)&app->sigterm, NULL);
  uv_close((uv_handle_t *)&app->sigint, NULL);
  /* Closing the handles restores the default action; a repeated signal (`timeout` sends
   * SIGTERM to the child and again to its process group) would then kill an orderly exit
   * with status 143. We are stopping anyway: ignore them. */
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
}

static void on_signal(uv_signal_t *h, int signum) {
  app_t *app = h->data;
  if (app->stopping) return;
  app->stopping = true;
  MF_LOG_INFO("received %s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  mf_replica_stop(app->replica, replica_stopped, app);
  if (app->gossip) {
    mf_swim_udp_leave(app->gossip);
    mf_swim_udp_close(app->gossip, NULL, NULL);
    app->gossip = NULL;
  }
}

int main(int argc, char **argv) {
  ctl_config_t cfg = {0};
  mf_config_result_t result;
  if (mf_config_parse(options, N_OPTIONS, &cfg, argc - 1, argv + 1, environ, &result) !=
      MF_OK) {
    fprintf(stderr, "mafalda-controller: %s\n", result.error);
    return 2;
  }
  if (result.help_requested) {
    printf("mafalda-controller %s: a Raft replica of the Mafalda cluster state.\n\n",
           MF_VERSION);
    mf_config_usage(options, N_OPTIONS, "mafalda-controller [OPTIONS]", stdout);
    return 0;
  }
  if (result.version_requested) {
    printf("mafalda-controller %s\n", MF_VERSION);
    return 0;
  }
  mf_log_config_t log = {.level = (mf_log_level_t)cfg.log_level,
                         .format = (mf_log_format_t)cfg.log_format,
                         .fd = STDERR_FILENO};
  mf_log_configure(&log);
  mf_log_set_thread_name("ctl");
  /* issue 12 (tls): control-plane TLS for the RPC server (Raft traffic is libraft's own
   * TCP transport: not TLS, see docs/controller.md). */
  mf_tls_t *tls = NULL;
  char tls_error[1024];
  if (mf_tls_load(&cfg.tls, &tls, tls_error, sizeof tls_error) != MF_OK) {
    fprintf(stderr, "mafalda-controller: %s\n", tls_error);
    return 2;
  }
  mf_tls_set_control(tls);
  if (tls) {
    MF_LOG_INFO("controller RPC uses mutual TLS as %s", mf_tls_subject(tls));
    MF_LOG_WARN("Raft traffic on %s (and gossip) is not covered by TLS: keep it on a private "
                "network", cfg.listen);
  }

  mf_replica_config_t rc = {.id = cfg.id,
                            .snapshot_threshold = cfg.snapshot_threshold,
                            .election_timeout_ms = cfg.election_timeout_ms,
                            .max_pipes_out_per_worker = (uint32_t)cfg.max_pipes_out,
                            .join = cfg.join};
  snprintf(rc.listen, sizeof rc.listen, "%s", cfg.listen);
  snprintf(rc.rpc_listen, sizeof rc.rpc_listen, "%s", cfg.rpc_listen);
  snprintf(rc.peers, sizeof rc.peers, "%s", cfg.peers);
  snprintf(rc.data_dir, sizeof rc.data_dir, "%s", cfg.data_dir);
  signal(SIGPIPE, SIG_IGN);

  uv_loop_t loop;
  uv_loop_init(&loop);
  app_t app = {0};
  char err[512];
  mf_err_t e = mf_replica_start(&loop, &rc, err, sizeof err, &app.replica);
  if (e != MF_OK) {
    fprintf(stderr, "mafalda-controller: %s\n", err);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return e == MF_ERR_INVALID_ARG ? 2 : 1;
  }
  if (cfg.gossip_listen[0] && start_gossip(&loop, &cfg, &app) != MF_OK) {
    mf_replica_stop(app.replica, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    mf_replica_free(app.replica);
    uv_loop_close(&loop);
    return 2;
  }
  uv_signal_init(&loop, &app.sigterm);
  uv_signal_init(&loop, &app.sigint);
  app.sigterm.data = app.sigint.data = &app;
  uv_signal_start(&app.sigterm, on_signal, SIGTERM);
  uv_signal_start(&app.sigint, on_signal, SIGINT);
  uv_run(&loop, UV_RUN_DEFAULT);
  mf_replica_free(app.replica);
  if (uv_loop_close(&loop) != 0) MF_LOG_WARN("loop closed with handles left");
  mf_tls_set_control(NULL); /* the early returns above keep it reachable until exit */
  mf_tls_free(tls);
  MF_LOG_INFO("controller stopped cleanly");
  return 0;
}
