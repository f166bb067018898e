/* mafalda-node's configuration: flags and MAFALDA_* environment variables.
 * Filled once by the bootstrap in main.c, then read-only (copied into each thread). */
#ifndef MF_NODE_CONFIG_H
#define MF_NODE_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "common/config.h"
#include "controller/replica.h"
#include "node/agent.h"
#include "common/log.h"
#include "common/tls_config.h"

#define MF_NODE_MAX_WORKERS 256
#define MF_NODE_IP_MAX 64

typedef struct {
  int workers;      /* 0: one per CPU core this process may run on */
  bool pin_workers; /* pin worker i to the i-th allowed core */
  int log_level;    /* mf_log_level_t */
  int log_format;   /* mf_log_format_t */
  char rtc_listen_ip[MF_NODE_IP_MAX];  /* where worker UDP sockets bind */
  int rtc_port_base;                   /* worker i binds base + i; 0: free ports (tests) */
  char announced_ip[MF_NODE_IP_MAX];   /* address in ICE candidates; "" = pick one */
  char api_listen[MF_NODE_IP_MAX];     /* public API host:port; "" = no API */
  char api_secret[256];                /* HS256 token key; "" = dev mode (loopback only) */
  char web_dir[512];                   /* demo page files served under /app; "" = none */
  int api_grace_ms;                    /* a closed WebSocket's objects wait for a resume */
  int api_keepalive_ms;                /* quiet sessions are probed after this long; 0 off */
  /* issue 12 (limits): API limits per session and per node (node/api_limits.h); 0 = none */
  int max_session_transports, max_session_producers, max_session_consumers, max_session_data;
  int api_rate, api_burst, api_flood_close;
  int max_node_transports, max_sessions;
  bool controller;                     /* run an embedded controller replica */
  mf_replica_config_t replica;         /* its settings (--controller-*, --data-dir) */
  int gossip_port;                     /* SWIM UDP port; 0 = any */
  /* issue 12 (chaos): gossip address others send to, "a.b.c.d:port" (NAT, test loss
   * proxy); "" = announced_ip and the bound gossip port */
  char gossip_advertise[MF_NODE_IP_MAX];
  char join[MF_AGENT_LIST_MAX];        /* gossip seeds host:port,... */
  char controllers[MF_AGENT_LIST_MAX]; /* controller RPC host:port,... */
  int node_rpc_port;                   /* the agent's RPC endpoint; 0 = any */
  /* issue 12 (tls): control-plane TLS files (common/tls_config.h); loaded by main.c */
  mf_tls_options_t tls;
  int drain_timeout_ms;
  int worker_capacity_pps;
  int pipe_linger_ms;
  int transport_pps;
  bool pipe_srtp;                      /* SRTP on pipes between nodes */
  bool forward_transports; /* clients' transports may be placed on other nodes */
  int report_interval_ms;
} mf_node_config_t;

/* True when the node takes part in a cluster (embedded controller, --join or
 * --controllers): then the agent runs and SIGTERM drains. */
bool mf_node_config_clustered(const mf_node_config_t *config);

/* argv excludes the program name. See mf_config_parse for the result contract. */
mf_err_t mf_node_config_parse(mf_node_config_t *config, int argc, char *const *argv,
                              char *const *envp, mf_config_result_t *result);

void mf_node_config_usage(FILE *out);

/* Checks what the option table cannot: addresses parse, ports fit. On MF_ERR_INVALID_ARG,
 * error says why. Fills announced_ip when it was left empty (first non-loopback IPv4
 * address of the machine, else 127.0.0.1). */
mf_err_t mf_node_config_finish(mf_node_config_t *config, char *error, size_t error_size);

#endif
