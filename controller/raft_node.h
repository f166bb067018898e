/* The controller's Raft replica: libraft 0.15 (raft_uv over libuv, TCP transport, data
 * in a directory) driving the state machine of controller/fsm.h.
 *
 * Two layers:
 *  - mf_raft_fsm_*: the glue between libraft's struct raft_fsm and mf_fsm_t, usable with
 *    any struct raft (the in-memory raft_fixture in tests, raft_uv in the process), and
 *    mf_raft_submit(), which proposes one Command on a struct raft.
 *  - mf_raft_node_*: a complete replica on a libuv loop: bootstrap from a static voter
 *    list (ignored when the data directory already holds state), snapshots every
 *    snapshot_threshold entries, leader lookup, orderly close. Once per term as leader
 *    (after a barrier) it commits SetControllerAddress for every member whose RPC address
 *    it knows (peer list, voters it added) when the FSM lacks or differs, and removes rows
 *    of servers no longer in the configuration, so every replica can redirect to any
 *    leader.
 *
 * Thread affinity: everything runs on the thread of the libuv loop it was started on;
 * callbacks are invoked on that loop. No internal locking. */
#ifndef MF_CONTROLLER_RAFT_NODE_H
#define MF_CONTROLLER_RAFT_NODE_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "controller/fsm.h"

/* ---- FSM glue ---- */

typedef struct {
  mf_fsm_t *fsm;            /* owned */
  uint64_t applied;         /* commands applied (including rejected ones) */
  mf_err_t last_code;       /* outcome of the latest apply: what the submitter gets */
  char last_message[MF_FSM_MESSAGE_MAX];
} mf_raft_fsm_t;

/* Creates the state machine and fills *out (version 1: libraft owns snapshot buffers). */
mf_err_t mf_raft_fsm_init(mf_raft_fsm_t *ctx, struct raft_fsm *out);
void mf_raft_fsm_close(mf_raft_fsm_t *ctx);

/* Outcome of one submitted command.
 *  status: MF_OK when the entry was committed and applied (then code/message are the FSM's
 *          verdict, the same on every replica, and index its log index);
 *          MF_ERR_STATE when this replica is not (or stopped being) the leader: the entry
 *          may or may not commit later; MF_ERR_CLOSED when shutting down; MF_ERR_IO etc. */
typedef void (*mf_raft_submit_cb)(void *ud, mf_err_t status, mf_err_t code,
                                  const char *message, uint64_t index);

/* Proposes cmd (encoded and copied: the caller keeps cmd) on r. On MF_OK, cb is called
 * exactly once, later, from r's loop. On error, cb is not called. */
mf_err_t mf_raft_submit(struct raft *r, const Mafalda__Controller__Command *cmd,
                        mf_raft_submit_cb cb, void *ud);

/* Outcome of a membership change: MF_OK when the new configuration committed. */
typedef void (*mf_raft_change_cb)(void *ud, mf_err_t status, const char *message);

/* Adds server id at raft_address (as a spare, then promotes it to voter once the change
 * committed; libraft lets the new server catch up before the promotion counts). The new
 * server must run without bootstrap (mafalda-controller --join). On MF_OK, cb is called
 * exactly once later; on error, never. */
mf_err_t mf_raft_add_voter(struct raft *r, uint64_t id, const char *raft_address,
                           mf_raft_change_cb cb, void *ud);

/* Removes server id from the configuration. */
mf_err_t mf_raft_remove_server(struct raft *r, uint64_t id, mf_raft_change_cb cb, void *ud);

/* ---- a complete replica ---- */

typedef struct {
  uint64_t id;               /* 1.. */
  char raft_address[128];    /* host:port for Raft traffic */
  char rpc_address[128];     /* host:port of its RPC server ("" if unknown) */
} mf_raft_peer_t;

#define MF_RAFT_PEERS_MAX 9

typedef struct {
  uint64_t id;
  const char *data_dir;     /* must exist */
  mf_raft_peer_t peers[MF_RAFT_PEERS_MAX]; /* every voter, this one included */
  unsigned n_peers;
  unsigned snapshot_threshold;  /* entries between snapshots; 0 = 1024 */
  unsigned election_timeout_ms; /* 0 = 1000 */
  unsigned heartbeat_timeout_ms; /* 0 = 100 */
  bool join;                /* do not bootstrap: wait to be added by the leader */
} mf_raft_node_config_t;

typedef struct mf_raft_node mf_raft_node_t;

/* Parses "id@host:port[/rpchost:rpcport],..." into config->peers. */
mf_err_t mf_raft_node_parse_peers(const char *text, mf_raft_node_config_t *config);

/* Opens the data directory, bootstraps if pristine, starts Raft on loop. */
mf_err_t mf_raft_node_start(uv_loop_t *loop, const mf_raft_node_config_t *config,
                            mf_raft_node_t **out);

/* Stops Raft; pending submissions complete with an error; node is freed, then cb runs. */
void mf_raft_node_close(mf_raft_node_t *node, void (*cb)(void *ud), void *ud);

mf_err_t mf_raft_node_submit(mf_raft_node_t *node, const Mafalda__Controller__Command *cmd,
                             mf_raft_submit_cb cb, void *ud);

mf_err_t mf_raft_node_add_voter(mf_raft_node_t *node, uint64_t id, const char *raft_address,
                                const char *rpc_address, mf_raft_change_cb cb, void *ud);
mf_err_t mf_raft_node_remove_server(mf_raft_node_t *node, uint64_t id, mf_raft_change_cb cb,
                                    void *ud);

/* Completes (cb on the loop) once every entry committed before the call is applied here;
 * only on the leader (MF_ERR_STATE otherwise). cb gets MF_OK or the reason it failed. */
mf_err_t mf_raft_node_barrier(mf_raft_node_t *node, void (*cb)(void *ud, mf_err_t status),
                              void *ud);

bool mf_raft_node_is_leader(mf_raft_node_t *node);
/* Leader's id (0 if unknown) and its RPC address: from this replica's peer list, else from
 * the FSM's controller address rows ("" if neither knows it). The string is valid until
 * the next apply (answer on the same loop turn). */
uint64_t mf_raft_node_leader(mf_raft_node_t *node, const char **rpc_address);
/* True when id is in the current Raft configuration (any role); *raft_address (optional)
 * gets its address there ("" when not a member). */
bool mf_raft_node_member(mf_raft_node_t *node, uint64_t id, const char **raft_address);
uint64_t mf_raft_node_id(const mf_raft_node_t *node);
uint64_t mf_raft_node_last_applied(mf_raft_node_t *node);
/* The current Raft term this replica has seen (for status displays). */
uint64_t mf_raft_node_term(mf_raft_node_t *node);
const mf_fsm_t *mf_raft_node_fsm(const mf_raft_node_t *node);

#endif
