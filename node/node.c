#define MF_LOG_MODULE "node"
#include "node.h"

#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/id.h"
#include "common/log.h"
#include "node/agent.h"
#include "node/dtls.h"
#include "node/gateway.h"
#include "node/pipe_hub.h"
#include "node/srtp.h"
#include "worker.h"

typedef struct {
  uv_loop_t loop;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  mf_worker_t *workers[MF_NODE_MAX_WORKERS];
  uint32_t worker_count;
  bool stopping;
  mf_dtls_cert_t *cert;
  mf_agent_t *agent;     /* cluster agent (+ embedded controller), or NULL standalone */
  mf_gateway_t *gateway; /* public API, or NULL */
  mf_pipe_hub_t *hub;     /* intra-node pipes between the workers (the gateway uses it) */
  uv_async_t drained;    /* the agent finished draining: stop */
  bool draining;
  uint32_t drain_timeout_ms;
  char node_id[MF_ID_LEN + 1];
} mf_node_t;

/* The cores this process may run on (respects taskset/cgroup cpusets). */
static uint32_t mf_node_allowed_cpus(int *cpus, uint32_t max) {
  cpu_set_t set;
  uint32_t n = 0;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  for (int c = 0; c < CPU_SETSIZE && n < max; c++) {
    if (CPU_ISSET(c, &set)) cpus[n++] = c;
  }
  return n;
}

static void mf_node_stop_workers(mf_node_t *node) {
  /* Reverse order of start, so logs read as a mirror of start-up. */
  while (node->worker_count > 0) {
    node->worker_count--;
    mf_worker_stop(node->workers[node->worker_count]);
    node->workers[node->worker_count] = NULL;
  }
}

/* The URL a person opens after `make run`: a wildcard or empty host is reachable on
 * loopback; an IPv6 literal needs brackets. */
static void mf_node_log_demo_url(const char *listen, uint16_t port) {
  char host[MF_NODE_IP_MAX];
  snprintf(host, sizeof host, "%s", listen);
  char *colon = strrchr(host, ':');
  if (colon) *colon = '\0';
  if (host[0] == '[') {
    size_t n = strlen(host);
    memmove(host, host + 1, n);
    if (n > 1 && host[n - 2] == ']') host[n - 2] = '\0';
  }
  const char *h = host;
  if (!h[0] || strcmp(h, "0.0.0.0") == 0) h = "127.0.0.1";
  if (strcmp(h, "::") == 0) h = "::1";
  bool v6 = strchr(h, ':') != NULL;
  MF_LOG_INFO("demo room: open http://%s%s%s:%u/app/?room=demo", v6 ? "[" : "", h,
              v6 ? "]" : "", (unsigned)port);
}

static const char *mf_node_signal_name(int signum) {
  return signum == SIGINT ? "SIGINT" : signum == SIGTERM ? "SIGTERM" : "signal";
}

static void mf_node_stop(mf_node_t *node) {
  node->stopping = true;
  /* The agent first (it reads the gateway and the workers; the embedded controller closes
   * with it), then API sessions (their transports and routers close on the still-running
   * workers), then the workers. */
  mf_agent_stop(node->agent);
  node->agent = NULL;
  mf_gateway_stop(node->gateway);
  node->gateway = NULL;
  mf_node_stop_workers(node);
  /* after the workers: their loops ran the hub's close callbacks before ending */
  mf_pipe_hub_destroy(node->hub);
  node->hub = NULL;
  uv_close((uv_handle_t *)&node->sigint, NULL);
  uv_close((uv_handle_t *)&node->sigterm, NULL);
  uv_close((uv_handle_t *)&node->drained, NULL);
  /* Closing the handles restores the default action: a duplicate signal (e.g. `timeout`
   * forwarding to its process group) must not turn an orderly stop into status 143. */
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
}

static void mf_node_on_drained(uv_async_t *handle) {
  mf_node_t *node = handle->data;
  if (node->stopping) return;
  MF_LOG_INFO("drained: stopping %u workers", node->worker_count);
  mf_node_stop(node);
}

/* Agent thread: wakes the main loop. */
static void mf_node_drained_cb(void *ud) {
  mf_node_t *node = ud;
  uv_async_send(&node->drained);
}

static void mf_node_on_signal(uv_signal_t *handle, int signum) {
  mf_node_t *node = handle->data;
  if (node->stopping) {
    MF_LOG_WARN("received %s again; still stopping", mf_node_signal_name(signum));
    return;
  }
  /* SIGTERM in a cluster is a graceful leave: no new placements, rooms may finish, then
   * the node leaves. A second signal, or SIGINT, stops at once. */
  if (signum == SIGTERM && node->agent && !node->draining && node->drain_timeout_ms > 0) {
    node->draining = true;
    MF_LOG_INFO("received SIGTERM: draining (send it again to stop at once)");
    mf_agent_drain(node->agent, node->drain_timeout_ms);
    return;
  }
  MF_LOG_INFO("received %s: stopping %u workers", mf_node_signal_name(signum),
              node->worker_count);
  mf_node_stop(node);
}

int mf_node_run(const mf_node_config_t *config) {
  mf_node_t *node = calloc(1, sizeof *node);
  if (!node) {
    MF_LOG_ERROR("out of memory");
    return 1;
  }
  int status = 1;
  int cpus[MF_NODE_MAX_WORKERS];
  uint32_t cpu_count = mf_node_allowed_cpus(cpus, MF_NODE_MAX_WORKERS);
  uint32_t wanted = config->workers > 0 ? (uint32_t)config->workers
                                        : (cpu_count > 0 ? cpu_count : uv_available_parallelism());
  if (wanted > MF_NODE_MAX_WORKERS) wanted = MF_NODE_MAX_WORKERS;

  /* Signals are caught on this loop before any worker exists, so an early SIGTERM is not
   * lost; worker threads inherit the default mask but libuv routes signals to this loop. */
  signal(SIGPIPE, SIG_IGN);
  if (uv_loop_init(&node->loop) != 0) {
    MF_LOG_ERROR("uv_loop_init failed");
    free(node);
    return 1;
  }
  uv_signal_init(&node->loop, &node->sigint);
  uv_signal_init(&node->loop, &node->sigterm);
  node->sigint.data = node;
  node->sigterm.data = node;
  uv_signal_start(&node->sigint, mf_node_on_signal, SIGINT);
  uv_signal_start(&node->sigterm, mf_node_on_signal, SIGTERM);
  uv_async_init(&node->loop, &node->drained, mf_node_on_drained);
  node->drained.data = node;
  node->drain_timeout_ms = (uint32_t)config->drain_timeout_ms;
  if (mf_id_generate(node->node_id) != MF_OK) snprintf(node->node_id, sizeof node->node_id, "node");

  MF_LOG_INFO("mafalda-node %s starting %u workers (%u cores available, pinning %s)", MF_VERSION,
              wanted, cpu_count, config->pin_workers ? "on" : "off");
  /* libsrtp keeps process-wide state: initialised once here, before any worker runs. */
  mf_err_t err = mf_srtp_library_init();
  if (!err) err = mf_dtls_cert_generate(&node->cert);
  if (err) {
    MF_LOG_ERROR("crypto setup failed: %s", mf_strerror(err));
    mf_node_stop(node);
    uv_run(&node->loop, UV_RUN_DEFAULT);
    goto out;
  }
  MF_LOG_INFO("DTLS certificate fingerprint sha-256 %s", mf_dtls_cert_fingerprint(node->cert));
  for (uint32_t i = 0; i < wanted; i++) {
    mf_worker_options_t wopts = {
        .index = i,
        .cpu = (config->pin_workers && cpu_count > 0) ? cpus[i % cpu_count] : -1,
        .rtc_listen_ip = config->rtc_listen_ip,
        .rtc_port = config->rtc_port_base > 0 ? (uint16_t)(config->rtc_port_base + (int)i) : 0,
        .announced_ip = config->announced_ip,
        .cert = node->cert,
    };
    err = mf_worker_start(&wopts, &node->workers[i]);
    if (err != MF_OK) {
      MF_LOG_ERROR("worker %u failed to start: %s", i, mf_strerror(err));
      mf_node_stop(node);
      uv_run(&node->loop, UV_RUN_DEFAULT);
      goto out;
    }
    node->worker_count++;
  }
  if (config->api_listen[0]) {
    mf_gateway_options_t go = {.listen = config->api_listen, .secret = config->api_secret,
                               .static_dir = config->web_dir,
                               .grace_ms = (unsigned)config->api_grace_ms,
                               .keepalive_ms = (unsigned)config->api_keepalive_ms,
                               .pipe_linger_ms = (unsigned)config->pipe_linger_ms,
                               .transport_pps = (uint64_t)config->transport_pps,
                               .pipe_plain_rtp = !config->pipe_srtp,
                               .local_placement = !config->forward_transports};
    go.limits = (mf_api_limits_config_t){ /* issue 12 (limits) */
        .session_max = {(uint32_t)config->max_session_transports,
                        (uint32_t)config->max_session_producers,
                        (uint32_t)config->max_session_consumers,
                        (uint32_t)config->max_session_data},
        .rate = (uint32_t)config->api_rate, .burst = (uint32_t)config->api_burst,
        .flood_close = (uint32_t)config->api_flood_close,
        .node_transports = (uint32_t)config->max_node_transports,
        .node_sessions = (uint32_t)config->max_sessions};
    err = mf_pipe_hub_create(node->worker_count, 0, &node->hub);
    go.hub = node->hub;
    if (!err) err = mf_gateway_start(&go, node->workers, node->worker_count, &node->gateway);
    if (err != MF_OK) {
      MF_LOG_ERROR("API failed to start on %s: %s", config->api_listen, mf_strerror(err));
      mf_node_stop(node);
      uv_run(&node->loop, UV_RUN_DEFAULT);
      goto out;
    }
  }
  if (mf_node_config_clustered(config)) {
    char name[128] = "";
    size_t name_len = sizeof name;
    if (uv_os_gethostname(name, &name_len) != 0) snprintf(name, sizeof name, "node");
    const char *listen_ip = config->rtc_listen_ip;
    mf_agent_config_t ac = {
        .node_id = node->node_id,
        .name = name,
        .announced_ip = config->announced_ip,
        .listen_ip = strchr(listen_ip, ':') ? "0.0.0.0" : listen_ip,
        .gossip_port = (uint16_t)config->gossip_port,
        .gossip_advertise = config->gossip_advertise,
        .rpc_port = (uint16_t)config->node_rpc_port,
        .join = config->join,
        .controllers = config->controllers,
        .report_interval_ms = (uint32_t)config->report_interval_ms,
        .worker_capacity_pps = (uint64_t)config->worker_capacity_pps,
        .workers = node->workers,
        .worker_count = node->worker_count,
        .gateway = node->gateway,
        .replica = config->controller ? &config->replica : NULL,
        .on_drained = mf_node_drained_cb,
        .ud = node,
    };
    err = mf_agent_start(&ac, &node->agent);
    if (err != MF_OK) {
      MF_LOG_ERROR("cluster agent failed to start: %s", mf_strerror(err));
      mf_node_stop(node);
      uv_run(&node->loop, UV_RUN_DEFAULT);
      goto out;
    }
  } else {
    MF_LOG_INFO("standalone: no controller, --join or --controllers given; no cluster agent");
  }
  MF_LOG_INFO("node ready: %u workers running%s", node->worker_count,
              config->controller ? ", embedded controller running" : "");
  if (node->gateway && config->web_dir[0])
    mf_node_log_demo_url(config->api_listen, mf_gateway_port(node->gateway));

  uv_run(&node->loop, UV_RUN_DEFAULT);
  MF_LOG_INFO("node stopped cleanly");
  status = 0;
out:
  uv_loop_close(&node->loop);
  mf_dtls_cert_free(node->cert);
  free(node);
  return status;
}
