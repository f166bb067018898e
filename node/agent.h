/* The node agent: the thread of mafalda-node that speaks for the node in the cluster.
 *
 * - Gossip: one SWIM member (common/swim_udp.h) on the gossip port; its meta says "node",
 *   the agent's RPC address, the node's state and its busiest worker's load. Joins through
 *   --join seeds (any member: nodes or controllers).
 * - Controller: registers the node and its workers, marks it active, reports load every
 *   report interval (per worker: CPU share of its thread, packets/s and bits/s in and out,
 *   drops, routers/transports/producers/consumers, stalled) and events (worker stalled or
 *   recovered, shard opened/closed, draining, leaving). Controller addresses come from
 *   --controllers, the embedded replica, and gossip members whose role is controller;
 *   calls follow leader redirects. Blocking RPC calls run on libuv's thread pool, one at a
 *   time, so gossip on the agent loop never waits for the controller. When the controller
 *   holds the node dead or does not know it, the agent closes the shards the controller
 *   dropped (mf_gateway_fence) before registering again.
 * - Commands from the controller (node RPC endpoint): node.OpenShard / node.CloseShard (a
 *   logical router's shard on one worker, through the gateway) and node.Status.
 * - Workers: a worker whose loop has not beaten for MF_WORKER_STALL_MS is reported stalled
 *   (event + flag in the load report, so the scheduler places nothing there); the node
 *   keeps running the others. Time the whole process was stopped does not count
 *   (node/stall_watch.h).
 * - Drain: mf_agent_drain marks the node draining (controller + gossip), waits until no
 *   transport is left or the timeout passes, leaves the gossip group, then calls
 *   on_drained.
 * - The embedded controller replica (mafalda-node --controller) runs on the agent's loop
 *   too, so its leader reads gossip membership directly (dead nodes are marked dead).
 *
 * Thread affinity: mf_agent_start / mf_agent_drain / mf_agent_stop from the node's main
 * thread; everything else runs on the agent thread. on_drained runs on the agent thread. */
#ifndef MF_AGENT_H
#define MF_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "controller/replica.h"
#include "node/gateway.h"
#include "node/worker.h"

#define MF_AGENT_LIST_MAX 1024

typedef struct {
  const char *node_id;          /* UUID, fixed for the process lifetime */
  const char *name;             /* human label (host name) */
  const char *announced_ip;     /* what other members and clients reach */
  const char *listen_ip;        /* where gossip and the node RPC bind */
  uint16_t gossip_port;         /* 0: any free port */
  const char *gossip_advertise; /* "a.b.c.d:port" others send gossip to; NULL/"": announced_ip
                                   and the bound gossip port (issue 12: NAT, test proxy) */
  uint16_t rpc_port;            /* node RPC; 0: any free port */
  const char *join;             /* "host:port,..." gossip seeds, "" = none */
  const char *controllers;      /* "host:port,..." controller RPC addresses, "" = gossip */
  uint32_t report_interval_ms;  /* 0 = 1000 */
  uint64_t worker_capacity_pps; /* what each worker may forward (placement capacity) */
  mf_worker_t *const *workers;  /* borrowed; outlive the agent */
  uint32_t worker_count;
  mf_gateway_t *gateway;        /* may be NULL (no API: shards cannot open here) */
  const mf_replica_config_t *replica; /* embedded controller, or NULL */
  void (*on_drained)(void *ud); /* agent thread, once, after mf_agent_drain finished */
  void *ud;
} mf_agent_config_t;

typedef struct mf_agent mf_agent_t;

/* Starts the agent thread and returns once gossip, the RPC endpoint and the embedded
 * replica are up (MF_OK), or one failed (the reason is logged; nothing is left running). */
mf_err_t mf_agent_start(const mf_agent_config_t *config, mf_agent_t **out);

/* Begins a graceful drain (see above); timeout_ms bounds the wait for rooms to empty. */
void mf_agent_drain(mf_agent_t *agent, uint32_t timeout_ms);

/* Stops everything (gossip leaves at once if not done yet), joins the thread, frees. NULL
 * is ignored. Call before the workers and the gateway stop. */
void mf_agent_stop(mf_agent_t *agent);

#endif
