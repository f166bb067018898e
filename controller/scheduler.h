/* The placement scheduler: where WebRTC transports go, which pipes to open, what to tear
 * down when a node dies, and which idle pipes and shards to close (issue 8).
 *
 * PURE: every function is (view, request, now) -> decision. No sockets, no clock reads, no
 * globals, no logging, no dependence on the FSM; the controller leader builds an
 * mf_sched_view_t from its replicated state (nodes, routers, shards, producers, pipes) and
 * from the in-memory load reports, then applies the decision through Raft commands. Same
 * view + same request = same decision on any machine; ties are broken by node id, then
 * worker index, not by the order of the arrays (only node_lost's re-plans consume budget in
 * view.pipes order).
 *
 * Ownership: the view and everything it points to belong to the caller and are only read
 * (the one exception, mf_sched_pending_apply, writes workers' pending_pps). Decisions hold
 * `const char *` pointers INTO the view (node ids): valid while the view's strings are.
 * Result lists (mf_sched_loss_t, mf_sched_idle_t) are malloc'd and freed by their _free.
 * Scratch memory is malloc'd per call and freed before return (the controller is not on
 * the packet path), so any call may fail with MF_ERR_NO_MEMORY.
 *
 * Thread affinity: none needed. Functions are reentrant; the caller must not change a
 * view while a call reads it. In practice they run on the controller leader's loop.
 *
 * The four planning functions take `char *msg, size_t msg_size` (msg may be NULL): one
 * line saying why (on error) or what was decided (on success), for logs and API errors.
 *
 * ============================ Rules and knobs ============================
 *
 * Capacity and load (per worker). capacity_pps is what the worker may forward (default
 * from --worker-capacity-pps). Its load is
 *     load = max(load_pps, cpu * capacity_pps) + pending_pps
 * (measured packets/s from the last report, measured CPU share of one core as a second
 * signal, plus placements decided but not yet visible in a report). A worker FITS a request
 * when load + expected_pps <= watermark * capacity_pps. Knob: view.watermark, default 0.8.
 *
 * Candidates: only workers of ACTIVE nodes get new placements; joining, draining and dead
 * nodes never do. A worker is IN USE when it hosts any shard (of any router), has
 * transports, or has load > 0; a node is in use when one of its workers is. Idle workers
 * and nodes are opened only when no in-use one fits, so idle machines can be stopped.
 *
 * Transport placement for router R (mf_sched_place_transport), first rule that finds a
 * fitting worker wins:
 *   1 FILL_SHARD     a worker that already hosts a shard of R: the MOST loaded one that
 *                    fits (packing: fill one worker before opening another); ties: node
 *                    id, worker index.
 *   2 PRODUCER_NODE  open a shard on the active node hosting most of R's producers (ties:
 *                    all tied nodes are candidates); worker chosen by PICK below. Keeps
 *                    consumers next to producers so pipes are intra-node rings.
 *   3a ROUTER_NODE   open a shard on any active node that already hosts R (a shard or a
 *                    producer); PICK over all of those nodes' workers.
 *   3b FREEST_NODE   open a shard on the node with the most free capacity (sum over its
 *                    workers of max(0, watermark*capacity - load)) among nodes that have a
 *                    fitting worker, IN-USE nodes first (an idle node only when no in-use
 *                    node fits); worker chosen by PICK on that node.
 *   4                nothing fits: MF_ERR_LIMIT ("cluster full").
 * PICK (opening a new shard): among fitting workers, in-use ones first; then the LEAST
 * loaded (a room that outgrew its worker gets space to grow); then node id, worker index.
 * Resolution of "rooms share workers" vs "least-loaded worker": a new room (rule 3b)
 * lands on an in-use worker of an in-use node whenever one fits, so two small rooms on a
 * cluster share one worker and every other worker stays idle; "least loaded" only ranks
 * workers that are already in use, or idle workers once nothing in use fits.
 *
 * Pending account: the scheduler reads worker.pending_pps; the caller keeps the account.
 * After each placement add request.expected_pps for the chosen worker
 * (mf_sched_pending_add with an expiry, typically now + the time a new transport takes to
 * carry media and show up in a report, ~10 s) and refresh the view
 * (mf_sched_pending_expire + mf_sched_pending_apply) before the next placement; drop a dead
 * node's entries with mf_sched_pending_forget_node. Counting a transport twice for that
 * short window (pending + measured) errs on the side of spreading, which is what a burst
 * of joins needs.
 *
 * Pipe planning (mf_sched_plan_pipe): a consumer on shard B wants producer P (origin
 * shard A):
 *   LOCAL   B == A: no pipe.
 *   REUSE   a pipe P -> B exists: use it (a pipe is never opened twice).
 *   OPEN    a new pipe from a source shard that has P:
 *           - the origin A, while A's worker sends fewer than max_pipes_out_per_worker
 *             pipes of P (even when A's node is draining: it is P's only root);
 *           - else a RELAY: a shard that already receives P through a pipe, is connected
 *             back to A, lives on an ACTIVE node and has budget left, ranked by: same node
 *             as B (an intra-node ring hop is nearly free), then smallest depth (hops from
 *             A), then fewest outgoing pipes of P, then node id, worker index. Depth comes
 *             before "fewest outgoing": ranking by outgoing count alone always prefers the
 *             newest leaf and grows chains; depth-first ranking fills each level of the
 *             relay tree before the next, so depth grows logarithmically with fan-out.
 *           - none: MF_ERR_LIMIT.
 *           kind RING when source and B are on the same node (lock-free rings between
 *           worker threads), TRANSPORT otherwise (the (node, node) PipeTransport pair).
 * Budget: max_pipes_out_per_worker = how many pipes of ONE producer one worker may send
 * (rings and transports alike). A count, not pps: a worker then sends at most
 * count x that producer's rate for it, without needing a bitrate estimate (rings are far
 * cheaper than transports, so counting them alike is conservative). Knob:
 * view.max_pipes_out_per_worker, default 8. The origin is preferred while it has budget,
 * even when B's node already has P (where a ring hop would be cheaper than another
 * inter-node send).
 * Pipes decided but not yet in the FSM must be in view.pipes for the next plan, or the
 * budget is not seen.
 *
 * Node loss (mf_sched_node_lost): lists what the controller must remove for a dead node:
 * its shards, the producers originating there, every pipe of those producers, every pipe
 * whose source or target is on it. A pipe whose SOURCE was a relay on the dead node while
 * its producer and target live on is re-planned (new source, same rules as plan_pipe, with
 * the dead node excluded) in mf_sched_loss_t.replans; pipes further down keep their
 * sources, which are fed again once the re-planned pipe exists. A re-plan that finds no
 * source removes its pipe and every pipe below it (counted in n_unfed). The view is not
 * changed (the function works on a private copy of the pipe list). Apply removals first,
 * then add the replans (they have the same producer/target keys as removed pipes).
 *
 * Idle pipes and shards (mf_sched_idle_pipes): a pipe closes when its target shard has had
 * no consumer of the producer for pipe_linger_ms (pipe.consumers == 0 and
 * now - pipe.idle_since_ms >= linger) AND no pipe that stays open is fed through it (a
 * relay serves its subtree). A shard closes when it has no transports for the linger
 * (transports == 0, now - empty_since_ms >= linger), no producer originates there, and
 * no pipe that stays open has it as source or target. Set idle_since/empty_since to the
 * creation time for a new pipe/shard so it gets the linger before its first user shows
 * up. Knob: view.pipe_linger_ms, default 10 s.
 *
 * Errors: MF_ERR_INVALID_ARG (NULL or malformed view/request: capacity <= 0 or a load not
 * finite on an active node's worker, watermark outside (0, 1], ...), MF_ERR_NOT_FOUND
 * (unknown router, producer, node or target shard), MF_ERR_STATE (no active node; a
 * pipe's target or the producer's origin is on a dead node), MF_ERR_LIMIT (nothing fits /
 * no source with budget), MF_ERR_NO_MEMORY. */
#ifndef MF_CONTROLLER_SCHEDULER_H
#define MF_CONTROLLER_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define MF_SCHED_DEFAULT_WATERMARK 0.8
#define MF_SCHED_DEFAULT_MAX_PIPES_OUT 8u
#define MF_SCHED_DEFAULT_LINGER_MS 10000u
#define MF_SCHED_ID_MAX 64 /* longest node id the pending account stores */

/* Same numbers as mafalda.controller.NodeState, so the controller can cast. */
typedef enum {
  MF_SCHED_NODE_UNSPECIFIED = 0,
  MF_SCHED_NODE_JOINING = 1,
  MF_SCHED_NODE_ACTIVE = 2,
  MF_SCHED_NODE_DRAINING = 3,
  MF_SCHED_NODE_DEAD = 4,
} mf_sched_node_state_t;

/* Worker i of a node is workers[i] (index == array position, as in the FSM). */
typedef struct {
  double capacity_pps; /* > 0 on active nodes */
  double load_pps;     /* measured, last report; >= 0 */
  double cpu;          /* share of one core, last report; >= 0 */
  double pending_pps;  /* from the pending account; >= 0 */
  uint32_t transports; /* from the last report */
} mf_sched_worker_t;

typedef struct {
  const char *id;
  mf_sched_node_state_t state;
  mf_sched_worker_t *workers; /* may be NULL when n_workers == 0 */
  size_t n_workers;
} mf_sched_node_t;

typedef struct {
  const char *router_id, *node_id;
  uint32_t worker;
  uint32_t transports;    /* WebRTC transports on this shard (load reports) */
  uint64_t empty_since_ms; /* when transports became 0 (or creation time) */
} mf_sched_shard_t;

typedef struct {
  const char *id, *router_id, *node_id; /* origin shard = (router_id, node_id, worker) */
  uint32_t worker;
} mf_sched_producer_t;

typedef struct {
  const char *producer_id, *target_node_id, *source_node_id;
  uint32_t target_worker, source_worker;
  uint32_t consumers;     /* consumers of the producer on the target shard */
  uint64_t idle_since_ms; /* when consumers became 0 (or creation time) */
} mf_sched_pipe_t;

typedef struct {
  const mf_sched_node_t *nodes;
  size_t n_nodes;
  const char *const *routers; /* ids of the logical routers that exist */
  size_t n_routers;
  const mf_sched_shard_t *shards;
  size_t n_shards;
  const mf_sched_producer_t *producers;
  size_t n_producers;
  const mf_sched_pipe_t *pipes;
  size_t n_pipes;
  double watermark;                  /* 0 = MF_SCHED_DEFAULT_WATERMARK; else (0, 1] */
  uint32_t max_pipes_out_per_worker; /* 0 = MF_SCHED_DEFAULT_MAX_PIPES_OUT */
  uint64_t pipe_linger_ms;           /* 0 = MF_SCHED_DEFAULT_LINGER_MS */
} mf_sched_view_t;

/* ---- transport placement ---- */

typedef struct {
  const char *router_id;
  double expected_pps; /* packets/s the transport will add (streams x rate); >= 0 */
  /* The node the client is connected to, or NULL: when a new shard must be opened
   * (rule 3b), it wins over nodes at most 5% freer (its client's calls need no forwarding). */
  const char *prefer_node_id;
} mf_sched_place_request_t;

typedef enum {
  MF_SCHED_RULE_FILL_SHARD = 1, /* rule 1 */
  MF_SCHED_RULE_PRODUCER_NODE,  /* rule 2 */
  MF_SCHED_RULE_ROUTER_NODE,    /* rule 3a */
  MF_SCHED_RULE_FREEST_NODE,    /* rule 3b */
} mf_sched_rule_t;

typedef struct {
  const char *node_id; /* points into the view */
  size_t node_index;   /* position in view.nodes */
  uint32_t worker;
  bool new_shard;      /* the worker hosts no shard of the router yet: add one */
  mf_sched_rule_t rule;
  double load_pps;     /* the worker's load before this placement */
} mf_sched_placement_t;

mf_err_t mf_sched_place_transport(const mf_sched_view_t *view,
                                  const mf_sched_place_request_t *req,
                                  mf_sched_placement_t *out, char *msg, size_t msg_size);

const char *mf_sched_rule_name(mf_sched_rule_t rule); /* "fill_shard", ...; static */

/* ---- pending account (caller-owned; one per controller leader) ---- */

typedef struct {
  char node_id[MF_SCHED_ID_MAX + 1];
  uint32_t worker;
  double pps;
  uint64_t expires_at_ms;
} mf_sched_pending_entry_t;

typedef struct {
  mf_sched_pending_entry_t *entries; /* malloc'd */
  size_t count, capacity;
} mf_sched_pending_t;

void mf_sched_pending_init(mf_sched_pending_t *p);
void mf_sched_pending_free(mf_sched_pending_t *p); /* back to the init state */
/* node_id: 1..MF_SCHED_ID_MAX bytes (copied); pps finite and >= 0. */
mf_err_t mf_sched_pending_add(mf_sched_pending_t *p, const char *node_id, uint32_t worker,
                              double pps, uint64_t expires_at_ms);
/* Drops entries with expires_at_ms <= now_ms; returns how many were dropped. */
size_t mf_sched_pending_expire(mf_sched_pending_t *p, uint64_t now_ms);
/* Drops every entry of one node (it died, or left the cluster). */
size_t mf_sched_pending_forget_node(mf_sched_pending_t *p, const char *node_id);
/* Sets every worker's pending_pps in the view to the sum of its entries (0 if none);
 * entries for unknown nodes/workers are ignored. */
void mf_sched_pending_apply(const mf_sched_pending_t *p, mf_sched_view_t *view);

/* ---- pipe planning ---- */

typedef struct {
  const char *producer_id;
  const char *target_node_id; /* shard B: (producer's router, target node, target worker) */
  uint32_t target_worker;
} mf_sched_pipe_request_t;

typedef enum {
  MF_SCHED_PIPE_LOCAL = 1, /* B is the origin shard: nothing to pipe */
  MF_SCHED_PIPE_REUSE,     /* view.pipes[pipe_index] already feeds B */
  MF_SCHED_PIPE_OPEN,      /* add a pipe source -> B */
} mf_sched_pipe_action_t;

typedef enum {
  MF_SCHED_PIPE_RING = 1,  /* same node: worker-to-worker rings */
  MF_SCHED_PIPE_TRANSPORT, /* different nodes: the (node, node) PipeTransport pair */
} mf_sched_pipe_kind_t;

typedef struct {
  mf_sched_pipe_action_t action;
  mf_sched_pipe_kind_t kind;  /* LOCAL: RING */
  const char *source_node_id; /* points into the view; LOCAL: the origin itself */
  uint32_t source_worker;
  uint32_t depth;    /* hops from the origin to B (LOCAL: 0; UINT32_MAX: a REUSEd pipe
                        whose chain no longer reaches the origin) */
  size_t pipe_index; /* REUSE: index in view.pipes; SIZE_MAX otherwise */
} mf_sched_pipe_decision_t;

mf_err_t mf_sched_plan_pipe(const mf_sched_view_t *view, const mf_sched_pipe_request_t *req,
                            mf_sched_pipe_decision_t *out, char *msg, size_t msg_size);

const char *mf_sched_pipe_kind_name(mf_sched_pipe_kind_t kind); /* "ring", "transport" */

/* ---- node loss ---- */

typedef struct {
  size_t pipe; /* index in view.pipes of the pipe being replaced (also in loss.pipes) */
  mf_sched_pipe_decision_t decision; /* action OPEN: the new source for the same target */
} mf_sched_replan_t;

typedef struct {
  size_t *shards;    /* indices into view.shards, ascending */
  size_t n_shards;
  size_t *producers; /* indices into view.producers, ascending */
  size_t n_producers;
  size_t *pipes;     /* indices into view.pipes to remove, ascending */
  size_t n_pipes;
  mf_sched_replan_t *replans; /* in view.pipes order */
  size_t n_replans;
  size_t n_unfed;    /* re-plans that found no source (their subtrees are in pipes) */
} mf_sched_loss_t;

/* dead_node_id must be a node of the view (its state there does not matter: it is treated
 * as dead). *out is filled on success; free it with mf_sched_loss_free. */
mf_err_t mf_sched_node_lost(const mf_sched_view_t *view, const char *dead_node_id,
                            mf_sched_loss_t *out, char *msg, size_t msg_size);
void mf_sched_loss_free(mf_sched_loss_t *loss);

/* ---- idle pipes and shards ---- */

typedef struct {
  size_t *pipes;  /* indices into view.pipes to close, ascending */
  size_t n_pipes;
  size_t *shards; /* indices into view.shards to close, ascending */
  size_t n_shards;
} mf_sched_idle_t;

/* Close pipes before shards (a shard is listed only when nothing that stays references
 * it). Free with mf_sched_idle_free. */
mf_err_t mf_sched_idle_pipes(const mf_sched_view_t *view, uint64_t now_ms,
                             mf_sched_idle_t *out, char *msg, size_t msg_size);
void mf_sched_idle_free(mf_sched_idle_t *idle);

#endif
