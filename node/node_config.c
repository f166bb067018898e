#include "node_config.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char *const mf_log_level_choices[] = {"trace", "debug", "info", "warn",
                                                   "error", "off",   NULL};
static const char *const mf_log_format_choices[] = {"text", "json", NULL};

static const mf_config_option_t mf_node_options[] = {
    {.name = "workers",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, workers),
     .min = 0,
     .max = MF_NODE_MAX_WORKERS,
     .default_value = "0",
     .help = "Media worker threads; 0 means one per available CPU core."},
    {.name = "pin-workers",
     .type = MF_OPT_BOOL,
     .offset = offsetof(mf_node_config_t, pin_workers),
     .default_value = "true",
     .help = "Pin each worker thread to its own core."},
    {.name = "log-level",
     .type = MF_OPT_ENUM,
     .offset = offsetof(mf_node_config_t, log_level),
     .choices = mf_log_level_choices,
     .default_value = "info",
     .help = "Least severe level that is logged."},
    {.name = "log-format",
     .type = MF_OPT_ENUM,
     .offset = offsetof(mf_node_config_t, log_format),
     .choices = mf_log_format_choices,
     .default_value = "text",
     .help = "Log lines as plain text or JSON objects, to stderr."},
    {.name = "rtc-listen-ip",
     .type = MF_OPT_STRING,
     .offset = offsetof(mf_node_config_t, rtc_listen_ip),
     .size = MF_NODE_IP_MAX,
     .default_value = "0.0.0.0",
     .help = "IPv4 or IPv6 address the workers' WebRTC UDP sockets bind to."},
    {.name = "rtc-port-base",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, rtc_port_base),
     .min = 0,
     .max = 65535,
     .default_value = "40000",
     .help = "UDP port of worker 0; worker i uses base + i. 0 lets each worker take any free "
             "port."},
    {.name = "announced-ip",
     .type = MF_OPT_STRING,
     .offset = offsetof(mf_node_config_t, announced_ip),
     .size = MF_NODE_IP_MAX,
     .default_value = "",
     .help = "Address put in ICE candidates (what clients reach). Empty: the first "
             "non-loopback IPv4 address, else 127.0.0.1."},
    {.name = "api-listen",
     .type = MF_OPT_STRING,
     .offset = offsetof(mf_node_config_t, api_listen),
     .size = MF_NODE_IP_MAX,
     .default_value = "127.0.0.1:8080",
     .help = "host:port of the public API (HTTP + WebSocket /v1/ws); empty: no API. Without "
             "--api-secret only a loopback address is allowed (dev mode)."},
    {.name = "api-secret",
     .type = MF_OPT_STRING,
     .offset = offsetof(mf_node_config_t, api_secret),
     .size = 256,
     .default_value = "",
     .help = "HS256 key that API tokens are signed with; empty: dev mode, no tokens."},
    {.name = "api-keepalive-ms",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, api_keepalive_ms),
     .min = 0,
     .max = 3600000,
     .default_value = "15000",
     .help = "A WebSocket session quiet for this long gets a system.keepalive notification; "
             "a peer that is gone then closes, with its transports (after the grace). 0: "
             "never."},
    {.name = "api-grace-ms",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, api_grace_ms),
     .min = 0,
     .max = 600000,
     .default_value = "3000",
     .help = "How long a closed WebSocket's transports wait for the client to come back with "
             "its resumeToken; 0 closes them at once."},
    /* issue 12 (limits): per API session and per node, 0 = unlimited (node/api_limits.h) */
    {.name = "max-session-transports",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, max_session_transports),
     .min = 0,
     .max = 100000000,
     .default_value = "32",
     .help = "WebRTC and plain transports one API session may own; a create beyond it fails "
             "with limit_exceeded. 0: unlimited (as for every limit below)."},
    {.name = "max-session-producers",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, max_session_producers),
     .min = 0,
     .max = 100000000,
     .default_value = "64",
     .help = "Producers one API session may own (limit_exceeded beyond); 0: unlimited."},
    {.name = "max-session-consumers",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, max_session_consumers),
     .min = 0,
     .max = 100000000,
     .default_value = "512",
     .help = "Consumers one API session may own (limit_exceeded beyond); 0: unlimited."},
    {.name = "max-session-data",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, max_session_data),
     .min = 0,
     .max = 100000000,
     .default_value = "256",
     .help = "Data producers and data consumers together that one API session may own; 0: "
             "unlimited."},
    {.name = "api-rate",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, api_rate),
     .min = 0,
     .max = 100000000,
     .default_value = "50",
     .help = "Requests per second one API session may sustain (token bucket); beyond it "
             "requests are answered rate_limited. 0: unlimited."},
    {.name = "api-burst",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, api_burst),
     .min = 0,
     .max = 100000000,
     .default_value = "200",
     .help = "Requests one API session may send at once above --api-rate (the bucket's "
             "size); 0: --api-rate."},
    {.name = "api-flood-close",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, api_flood_close),
     .min = 0,
     .max = 100000000,
     .default_value = "1000",
     .help = "Close an API session (logged) once this many of its requests were refused "
             "beyond --api-rate (the count drains at that rate); 0: never close."},
    {.name = "max-node-transports",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, max_node_transports),
     .min = 0,
     .max = 100000000,
     .default_value = "10000",
     .help = "Transports of all API sessions of this node together (limit_exceeded "
             "beyond); 0: unlimited."},
    {.name = "max-sessions",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, max_sessions),
     .min = 0,
     .max = 100000000,
     .default_value = "5000",
     .help = "API sessions joined to a room on this node, including those waiting for a "
             "resume; router.join beyond it fails with limit_exceeded. 0: unlimited."},
    {.name = "web-dir",
     .type = MF_OPT_STRING,
     .offset = offsetof(mf_node_config_t, web_dir),
     .size = 512,
     .default_value = "",
     .help = "Directory of static files (the demo page) served under /app/."},
    {.name = "controller",
     .type = MF_OPT_BOOL,
     .offset = offsetof(mf_node_config_t, controller),
     .default_value = "true",
     .help = "Run a controller replica inside this node (alone: a single-voter cluster)."},
    {.name = "controller-id",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, replica.id),
     .min = 1,
     .max = 1000000,
     .default_value = "1",
     .help = "Raft id of the embedded controller replica."},
    {.name = "controller-listen",
     .type = MF_OPT_STRING,
     .offset = offsetof(mf_node_config_t, replica.listen),
     .size = MF_REPLICA_ADDR_MAX,
     .default_value = "127.0.0.1:7000",
     .help = "host:port for the embedded controller's Raft traffic."},
    {.name = "controller-rpc-listen",
     .type = MF_OPT_STRING,
     .offset = offsetof(mf_node_config_t, replica.rpc_listen),
     .size = MF_REPLICA_ADDR_MAX,
     .default_value = "127.0.0.1:7001",
     .help = "host:port of the embedded controller's RPC server (agents, mafalda-ctl)."},
    {.name = "controller-peers",
     .type = MF_OPT_STRING,
     .offset = offsetof(mf_node_config_t, replica.peers),
     .size = MF_REPLICA_PEERS_MAX,
     .default_value = "",
     .help = "Controller voters as id@raft_host:port[/rpc_host:port],...; empty: this node "
             "alone."},
    {.name = "data-dir",
     .type = MF_OPT_STRING,
     .offset = offsetof(mf_node_config_t, replica.data_dir),
     .size = MF_REPLICA_DIR_MAX,
     .default_value = "mafalda-data",
     .help = "Where the embedded controller keeps its Raft log and snapshots."},
    {.name = "gossip-port",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, gossip_port),
     .min = 0,
     .max = 65535,
     .default_value = "7946",
     .help = "UDP port of the gossip membership (SWIM), on --rtc-listen-ip; 0: any free port."},
    /* issue 12 (chaos) */
    {.name = "gossip-advertise",
     .type = MF_OPT_STRING,
     .offset = offsetof(mf_node_config_t, gossip_advertise),
     .size = MF_NODE_IP_MAX,
     .default_value = "",
     .help = "IPv4 host:port other members send this node's gossip to, when that is not "
             "--announced-ip and the bound --gossip-port (a NAT or port forward, a test "
             "proxy). Empty: those two."},
    {.name = "join",
     .type = MF_OPT_STRING,
     .offset = offsetof(mf_node_config_t, join),
     .size = MF_AGENT_LIST_MAX,
     .default_value = "",
     .help = "Gossip address(es) of any cluster member to join through, host:port,... "
             "(nodes and controllers are members)."},
    {.name = "controllers",
     .type = MF_OPT_STRING,
     .offset = offsetof(mf_node_config_t, controllers),
     .size = MF_AGENT_LIST_MAX,
     .default_value = "",
     .help = "Controller RPC addresses host:port,...; empty: the embedded one and those "
             "learned from gossip."},
    {.name = "node-rpc-port",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, node_rpc_port),
     .min = 0,
     .max = 65535,
     .default_value = "7002",
     .help = "TCP port of the node's RPC endpoint (controller commands), on --rtc-listen-ip; "
             "0: any free port."},
    {.name = "drain-timeout-ms",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, drain_timeout_ms),
     .min = 0,
     .max = 3600000,
     .default_value = "30000",
     .help = "On SIGTERM in a cluster: how long to wait for the node's rooms to empty before "
             "leaving (a second signal stops at once)."},
    {.name = "worker-capacity-pps",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, worker_capacity_pps),
     .min = 1,
     .max = 100000000,
     .default_value = "200000",
     .help = "Packets per second one worker may forward: the placement capacity the "
             "scheduler fills up to its watermark."},
    {.name = "pipe-linger-ms",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, pipe_linger_ms),
     .min = 1,
     .max = 3600000,
     .default_value = "10000",
     .help = "A pipe between workers whose last consumer left closes after this long "
             "(a consumer coming back meanwhile reuses it)."},
    {.name = "forward-transports",
     .type = MF_OPT_BOOL,
     .offset = offsetof(mf_node_config_t, forward_transports),
     .default_value = "true",
     .help = "Let the controller place this node's clients' WebRTC transports on other nodes' "
             "workers (their API calls are forwarded there; their media goes straight to "
             "that node's announced IP, which clients must reach). false: this node's "
             "workers only."},
    {.name = "pipe-srtp",
     .type = MF_OPT_BOOL,
     .offset = offsetof(mf_node_config_t, pipe_srtp),
     .default_value = "true",
     .help = "Encrypt media piped between nodes (SRTP, AEAD_AES_128_GCM, keys carried by the "
             "node RPC). Must be the same on every node; off only on a trusted network."},
    {.name = "transport-pps",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, transport_pps),
     .min = 0,
     .max = 100000000,
     .default_value = "0",
     .help = "Packets per second the scheduler expects a new transport to add before load "
             "reports show it; 0: the controller's default."},
    {.name = "report-interval-ms",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, report_interval_ms),
     .min = 100,
     .max = 60000,
     .default_value = "1000",
     .help = "How often the agent reports load to the controller."},
    /* issue 12 (tls): --tls-cert, --tls-key, --tls-ca, --tls-require */
    MF_TLS_CONFIG_OPTIONS(mf_node_config_t, tls),
};

#define MF_NODE_OPTION_COUNT (sizeof mf_node_options / sizeof mf_node_options[0])

mf_err_t mf_node_config_parse(mf_node_config_t *config, int argc, char *const *argv,
                              char *const *envp, mf_config_result_t *result) {
  return mf_config_parse(mf_node_options, MF_NODE_OPTION_COUNT, config, argc, argv, envp,
                         result);
}

void mf_node_config_usage(FILE *out) {
  mf_config_usage(mf_node_options, MF_NODE_OPTION_COUNT, "mafalda-node [OPTIONS]", out);
}

static bool mf_node_is_ip(const char *text) {
  struct sockaddr_in a4;
  struct sockaddr_in6 a6;
  return uv_ip4_addr(text, 0, &a4) == 0 || uv_ip6_addr(text, 0, &a6) == 0;
}

/* "a.b.c.d:port" with a canonical IPv4 literal (what gossip accepts) and port 1..65535. */
static bool mf_node_is_ipv4_hostport(const char *text) {
  const char *colon = strrchr(text, ':');
  if (!colon || colon == text || (size_t)(colon - text) >= 16) return false;
  char host[16], canon[16];
  memcpy(host, text, (size_t)(colon - text));
  host[colon - text] = '\0';
  struct in_addr a4;
  if (inet_pton(AF_INET, host, &a4) != 1 || !inet_ntop(AF_INET, &a4, canon, sizeof canon) ||
      strcmp(host, canon) != 0 || strcmp(host, "0.0.0.0") == 0)
    return false;
  char *end = NULL;
  long port = strtol(colon + 1, &end, 10);
  return colon[1] >= '0' && colon[1] <= '9' && *end == '\0' && port >= 1 && port <= 65535;
}

static void mf_node_pick_announced_ip(char *out, size_t size) {
  uv_interface_address_t *ifs = NULL;
  int count = 0;
  snprintf(out, size, "127.0.0.1");
  if (uv_interface_addresses(&ifs, &count) != 0) return;
  for (int i = 0; i < count; i++) {
    if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET) continue;
    uv_ip4_name(&ifs[i].address.address4, out, size);
    break;
  }
  uv_free_interface_addresses(ifs, count);
}

bool mf_node_config_clustered(const mf_node_config_t *c) {
  return c->controller || c->join[0] || c->controllers[0];
}

mf_err_t mf_node_config_finish(mf_node_config_t *c, char *error, size_t error_size) {
  if (!mf_node_is_ip(c->rtc_listen_ip)) {
    snprintf(error, error_size, "--rtc-listen-ip: '%s' is not an IPv4 or IPv6 address",
             c->rtc_listen_ip);
    return MF_ERR_INVALID_ARG;
  }
  if (c->announced_ip[0] == '\0') {
    mf_node_pick_announced_ip(c->announced_ip, sizeof c->announced_ip);
  } else if (!mf_node_is_ip(c->announced_ip)) {
    snprintf(error, error_size, "--announced-ip: '%s' is not an IPv4 or IPv6 address",
             c->announced_ip);
    return MF_ERR_INVALID_ARG;
  }
  if (mf_node_config_clustered(c)) {
    struct in_addr a4;
    if (inet_pton(AF_INET, c->announced_ip, &a4) != 1) {
      snprintf(error, error_size,
               "--announced-ip: gossip needs an IPv4 address in a cluster, got '%s'",
               c->announced_ip);
      return MF_ERR_INVALID_ARG;
    }
  }
  if (c->gossip_advertise[0] && !mf_node_is_ipv4_hostport(c->gossip_advertise)) {
    snprintf(error, error_size, "--gossip-advertise: expected IPv4 host:port, got '%s'",
             c->gossip_advertise);
    return MF_ERR_INVALID_ARG;
  }
  int workers = c->workers > 0 ? c->workers : 1;
  if (c->rtc_port_base > 0 && c->rtc_port_base + workers - 1 > 65535) {
    snprintf(error, error_size, "--rtc-port-base: %d + %d workers goes past port 65535",
             c->rtc_port_base, workers);
    return MF_ERR_INVALID_ARG;
  }
  return MF_OK;
}
