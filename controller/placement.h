/* Placement on the controller leader: the glue between the replicated state and the pure
 * scheduler (controller/scheduler.h). It builds an mf_sched_view_t from the FSM and the
 * leader's in-memory load reports, keeps the pending account and the decisions whose Raft
 * commit has not landed yet, runs the scheduler and logs each decision (INFO, one line).
 * The RPC server (controller.PlaceTransport / controller.PlacePipe) owns one.
 *
 * View-building rules:
 *  - Nodes, routers, shards, producers and pipes come from the FSM; node states map 1:1.
 *  - Worker capacity = Worker.capacity_pps from the FSM, or config.default_capacity_pps
 *    when the node registered 0 (unknown).
 *  - Load from the node's latest LoadReport (none: 0): load_pps = packets_in_per_sec +
 *    packets_out_per_sec, cpu (a non-finite or negative value counts as 0), transports.
 *  - A STALLED worker (flag in the latest report) gets load_pps = capacity: whatever the
 *    watermark (<= 1), no request with expected_pps > 0 fits it, so it gets no placement
 *    until a report clears the flag. (It then also counts as "in use".)
 *  - pending_pps from the pending account: every placement adds its expected_pps for the
 *    chosen worker, expiring after config.pending_ttl_ms; entries of nodes that are dead
 *    or no longer in the FSM are dropped when a view is built.
 *  - Decisions still being committed (AddShard / AddPipe submitted, callback not yet run)
 *    are appended to view.shards / view.pipes ("in flight"), so the next decision sees
 *    them: a second placement fills the shard being opened instead of opening another,
 *    and a pipe's budget counts pipes not yet in the FSM (scheduler.h explains why).
 *  - Per-shard transport counts and per-pipe consumer counts are not reported, so shards
 *    have transports 0 and pipes consumers 0, both "since now": the view is made for
 *    placement and pipe planning, not for mf_sched_idle_pipes.
 *  - only_node_id (placement only): every other node is presented as not active, so only
 *    that node's workers are candidates (the gateway uses it until node-to-node forwarding
 *    exists); the rest of the state (shards, producers) is unchanged.
 *
 * Ownership: the placement object owns its pending account and in-flight list; a view owns
 * its arrays (its strings point into the FSM and the in-flight list: free the view before
 * the next apply or decision). Results copy every string they return.
 *
 * Thread affinity: ONE thread, the loop of the Raft node whose FSM it reads (the leader's
 * RPC loop). No locking, no I/O, no clock reads: time comes in as now_ms. */
#ifndef MF_CONTROLLER_PLACEMENT_H
#define MF_CONTROLLER_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "controller/fsm.h"
#include "controller/scheduler.h"
#include "proto/cluster.pb-c.h"

#define MF_PLACEMENT_DEFAULT_CAPACITY_PPS 200000.0
#define MF_PLACEMENT_DEFAULT_EXPECTED_PPS 500.0
#define MF_PLACEMENT_DEFAULT_PENDING_TTL_MS 10000u

/* Zero fields take the defaults. */
typedef struct {
  double default_capacity_pps;       /* a worker registered with capacity 0; 200000 */
  double default_expected_pps;       /* a PlaceTransport with expected_pps 0; 500 */
  uint64_t pending_ttl_ms;           /* how long a placement counts as pending; 10 s */
  double watermark;                  /* scheduler knob, (0, 1]; MF_SCHED_DEFAULT_WATERMARK */
  uint32_t max_pipes_out_per_worker; /* scheduler knob; MF_SCHED_DEFAULT_MAX_PIPES_OUT */
} mf_placement_config_t;

/* The latest load report of a node, NULL when there is none. */
typedef const Mafalda__Cluster__LoadReport *(*mf_placement_load_fn)(void *ud,
                                                                    const char *node_id);

/* What one decision reads. fsm is borrowed for the call. */
typedef struct {
  const mf_fsm_t *fsm;
  mf_placement_load_fn load; /* NULL: no reports (every worker idle) */
  void *load_ud;
  uint64_t now_ms; /* monotonic milliseconds */
} mf_placement_input_t;

typedef struct mf_placement mf_placement_t;

/* config NULL = all defaults. MF_ERR_INVALID_ARG for negative or non-finite values or a
 * watermark above 1. */
mf_err_t mf_placement_create(const mf_placement_config_t *config, mf_placement_t **out);
void mf_placement_destroy(mf_placement_t *pl); /* NULL is ignored */

/* ---- the view ---- */

typedef struct {
  mf_sched_view_t view;
  size_t n_committed_shards; /* view.shards[0..n): in the FSM; the rest in flight */
  size_t n_committed_pipes;  /* likewise for view.pipes */
  /* owned storage the view points into */
  mf_sched_node_t *nodes;
  mf_sched_worker_t *workers;
  const char **routers;
  mf_sched_shard_t *shards;
  mf_sched_producer_t *producers;
  mf_sched_pipe_t *pipes;
} mf_placement_view_t;

/* Builds the view by the rules above (expires and forgets pending entries first).
 * only_node_id NULL or "": no restriction. Free with mf_placement_view_free (also after an
 * error). MF_ERR_INVALID_ARG (NULL fsm), MF_ERR_NO_MEMORY. */
mf_err_t mf_placement_view_build(mf_placement_t *pl, const mf_placement_input_t *in,
                                 const char *only_node_id, mf_placement_view_t *out);
void mf_placement_view_free(mf_placement_view_t *v);

/* ---- decisions ---- */

typedef struct {
  char router_id[MF_FSM_ID_MAX + 1];
  char node_id[MF_FSM_ID_MAX + 1];
  char rpc_address[MF_FSM_NAME_MAX + 1];
  char announced_ip[MF_FSM_NAME_MAX + 1];
  uint32_t worker;
  bool new_shard;       /* this placement opens the shard */
  mf_sched_rule_t rule;
  double load_pps;      /* the worker's load before this placement */
  double expected_pps;  /* what was added to the pending account */
  /* Nonzero when the shard is not in the FSM yet (opened by this placement, or by one
   * still being committed): commit AddShard{router_id, node_id, worker} (EXISTS counts as
   * success), answer, and call mf_placement_landed(flight) whatever the outcome. */
  uint64_t flight;
} mf_placement_transport_t;

/* A new transport of router_id: runs mf_sched_place_transport and adds expected_pps (0 =
 * config default) to the pending account for the chosen worker. Errors (msg says why):
 * MF_ERR_INVALID_ARG (malformed id), MF_ERR_NOT_FOUND (unknown router, or only_node_id is
 * not a node), MF_ERR_STATE (no active candidate node), MF_ERR_LIMIT (cluster full),
 * MF_ERR_NO_MEMORY. */
mf_err_t mf_placement_place_transport(mf_placement_t *pl, const mf_placement_input_t *in,
                                      const char *router_id, uint64_t expected_pps,
                                      const char *only_node_id, const char *prefer_node_id,
                                      mf_placement_transport_t *out,
                                      char *msg, size_t msg_size);

typedef struct {
  char producer_id[MF_FSM_ID_MAX + 1];
  char target_node_id[MF_FSM_ID_MAX + 1];
  uint32_t target_worker;
  mf_sched_pipe_action_t action;
  mf_sched_pipe_kind_t kind;
  char source_node_id[MF_FSM_ID_MAX + 1];
  uint32_t source_worker;
  uint32_t depth; /* UINT32_MAX: a reused pipe whose chain no longer reaches the origin */
  /* Nonzero when the pipe is not in the FSM yet (OPEN, or REUSE of a pipe still being
   * committed): commit AddPipe{producer, target, source} (EXISTS counts as success),
   * answer, and call mf_placement_landed(flight) whatever the outcome. */
  uint64_t flight;
} mf_placement_pipe_t;

/* A consumer on (producer's router, target node, target worker) wants producer_id: runs
 * mf_sched_plan_pipe. Errors: MF_ERR_INVALID_ARG (malformed id), MF_ERR_NOT_FOUND
 * (unknown producer, node or target shard), MF_ERR_STATE (origin or target node dead),
 * MF_ERR_LIMIT (no source with budget), MF_ERR_NO_MEMORY. */
mf_err_t mf_placement_plan_pipe(mf_placement_t *pl, const mf_placement_input_t *in,
                                const char *producer_id, const char *target_node_id,
                                uint32_t target_worker, mf_placement_pipe_t *out, char *msg,
                                size_t msg_size);

/* "local", "reuse", "open" (the PlacePipeResponse.action strings); static. */
const char *mf_placement_pipe_action_name(mf_sched_pipe_action_t action);

/* The commit of a decision ended (applied, rejected or abandoned): it leaves the in-flight
 * list. Unknown or 0 flights are ignored. */
void mf_placement_landed(mf_placement_t *pl, uint64_t flight);

/* Leadership lost: the pending account is emptied (a new term starts from fresh reports).
 * In-flight decisions stay until their callbacks land them. */
void mf_placement_reset(mf_placement_t *pl);

/* For tests and status: entries in the pending account / decisions in flight. */
size_t mf_placement_pending_count(const mf_placement_t *pl);
size_t mf_placement_flight_count(const mf_placement_t *pl);

#endif
