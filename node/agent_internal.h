/* The agent's state and the helpers its files share (agent.c: thread, gossip, controller
 * calls; agent_work.c: load figures, worker watch, events, node RPC). Not a public
 * interface. Everything here runs on the agent thread. */
#ifndef MF_AGENT_INTERNAL_H
#define MF_AGENT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/mailbox.h"
#include "common/rpc_endpoint.h"
#include "common/swim.h"
#include "common/swim_udp.h"
#include "controller/replica.h"
#include "controller/rpc_client.h"
#include "node/agent.h"
#include "node/stall_watch.h"
#include "proto/cluster.pb-c.h"

#define MF_NODE_AGENT_WORKERS_MAX 256
#define AGENT_URLS_MAX 16
#define AGENT_EVENTS_MAX 64

#define MF_RPC_METHOD_OPEN_SHARD "node.OpenShard"
#define MF_RPC_METHOD_CLOSE_SHARD "node.CloseShard"
#define MF_RPC_METHOD_NODE_STATUS "node.Status"

typedef enum {
  AGENT_JOB_REGISTER,
  AGENT_JOB_SET_STATE,
  AGENT_JOB_REPORT,
  AGENT_JOB_EVENTS,
  AGENT_JOB_GATEWAY /* a call for the API gateway: runs beside the others, answered to it */
} agent_job_kind_t;

/* One controller call: built on the loop, run on the thread pool, answered on the loop. */
typedef struct {
  uv_work_t work;
  struct mf_agent *agent;
  agent_job_kind_t kind;
  const char *method;
  char *urls[AGENT_URLS_MAX];
  size_t n_urls;
  uint8_t *payload;
  size_t len;
  size_t events_sent;
  int target_state;
  mf_err_t err;
  mf_rpc_reply_t reply;
  mf_mailbox_msg_t link;           /* AGENT_JOB_GATEWAY: posted from the caller's thread */
  mf_gateway_call_done_fn done;    /* AGENT_JOB_GATEWAY */
  void *done_ud;
  bool ordered;                    /* a gateway controller.Apply record: runs in order */
  bool to_controller;              /* a gateway call to the controller, not to a node */
  void *next_ordered;              /* agent_job_t *, the queue of those (agent.c) */
  void *members;                   /* a controller.ApplyBatch: the ordered jobs it carries */
  size_t n_members;
} agent_job_t;

typedef struct {
  int kind; /* Mafalda__Cluster__EventKind */
  uint32_t worker;
  char object_id[65];
  char detail[128];
  uint64_t timestamp_ms;
} agent_event_t;

struct mf_agent {
  char node_id[65], name[128], announced_ip[64], listen_ip[64];
  char join[MF_AGENT_LIST_MAX], controllers[MF_AGENT_LIST_MAX];
  char rpc_address[96], gossip_address[96], replica_rpc[MF_REPLICA_ADDR_MAX];
  char gossip_advertise[64]; /* "" = announced_ip:bound port */
  agent_job_t *ordered_head, *ordered_tail; /* gateway Apply records waiting their turn */
  bool ordered_running;
  bool batch_refused; /* the controller predates controller.ApplyBatch: one record per call */
  char controller_url[160];
  uint16_t gossip_port, rpc_port;
  uint32_t report_interval_ms;
  uint64_t worker_capacity_pps;
  mf_worker_t *const *workers;
  uint32_t worker_count;
  mf_gateway_t *gateway;
  void (*on_drained)(void *ud);
  void *ud;
  bool has_replica;
  mf_replica_config_t replica_config;

  uv_thread_t thread;
  uv_loop_t loop;
  uv_sem_t started;
  mf_err_t start_err;
  mf_mailbox_t mailbox;
  mf_mailbox_msg_t stop_msg, drain_msg;
  uv_timer_t tick;
  mf_swim_udp_t *gossip;
  mf_rpc_endpoint_t *ep;
  mf_replica_t *replica;

  /* controller conversation */
  bool job_running, registered, controller_ok, report_due;
  bool fence_due; /* declared dead: close the shards the controller dropped (pause fix) */
  uint32_t failures;
  int state;            /* what this node is: active / draining (NodeState) */
  int controller_state; /* what the controller last confirmed */
  uint64_t report_seq, events_seq;

  /* load */
  uint64_t started_ms, next_load_ms, prev_ms;
  mf_worker_load_t prev[MF_NODE_AGENT_WORKERS_MAX];
  Mafalda__Cluster__WorkerLoad loads[MF_NODE_AGENT_WORKERS_MAX];
  bool stalled[MF_NODE_AGENT_WORKERS_MAX];
  mf_stall_watch_t stall_watch; /* discounts time the whole process was stopped */
  int meta_state;
  uint32_t meta_permille;

  /* events not yet delivered (oldest first; the oldest are dropped when full) */
  agent_event_t events[AGENT_EVENTS_MAX];
  size_t events_head, events_count;
  uint64_t events_dropped;

  bool stopping; /* gateway calls are refused */

  /* drain */
  bool draining, left, drained;
  uint32_t drain_timeout_ms;
  uint64_t drain_deadline, left_at;
};

void mf_agent_job_free(agent_job_t *j);

/* ---- gateway records in batches (agent_batch.c) ---- */
#define AGENT_BATCH_MAX 64
#define AGENT_BATCH_BYTES (512u * 1024u) /* payload bytes per batch, beyond its first record */
/* A controller.ApplyBatch job carrying the first queued ordered records (at most
 * AGENT_BATCH_MAX, taken off the queue; they become its members), or NULL when out of
 * memory (the queue is left as it was). */
agent_job_t *mf_agent_batch_take(mf_agent_t *a);
/* Answers every member of batch b, in order, and frees them: each gets the envelope a
 * single controller.Apply would have got (its CommandResult), or, when the call failed
 * (err, or env with an error status), that failure. */
void mf_agent_batch_finish(agent_job_t *b, mf_err_t err, const Mafalda__Rpc__Envelope *env);
/* The controller answered b with STATUS_UNKNOWN_METHOD (it predates ApplyBatch): puts the
 * members back at the head of the queue, in order, sets batch_refused and returns true.
 * False (nothing changed) for any other answer. */
bool mf_agent_batch_requeue(mf_agent_t *a, agent_job_t *b);

const char *mf_agent_state_name(int state);
void mf_agent_event(mf_agent_t *a, int kind, uint32_t worker, const char *object_id,
                    const char *detail);
bool mf_agent_events_pending(const mf_agent_t *a);
size_t mf_agent_events_peek(mf_agent_t *a, Mafalda__Cluster__NodeEvent *out, size_t max);
void mf_agent_events_consume(mf_agent_t *a, size_t n);
/* Fills a->loads from the workers' heartbeats and the gateway's counts. */
void mf_agent_measure(mf_agent_t *a, uint64_t now);
/* Raises stalled/recovered events and flags. */
void mf_agent_watch_workers(mf_agent_t *a, uint64_t now);
uint32_t mf_agent_transports(mf_agent_t *a);
/* The node RPC endpoint's handler (node.OpenShard, node.CloseShard, node.Status). */
void mf_agent_handle_rpc(void *ud, mf_rpc_request_t *req, const Mafalda__Rpc__Envelope *env);

#endif
