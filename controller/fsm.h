/* The controller's replicated state machine: nodes, logical routers, shards, producers,
 * pipes and the controller replicas' addresses, changed only by protobuf Commands
 * (proto/controller.proto).
 *
 * Pure C, no I/O and no clock: applying the same commands in the same order gives the same
 * state on every replica, byte for byte (mf_fsm_snapshot packs sorted lists). Apply
 * validates everything (ids, references, duplicates, limits); a rejected command leaves the
 * state unchanged and returns the reason, it never aborts. Removing a node, router, shard,
 * producer or pipe cascades to everything that depended on it.
 *
 * Thread affinity: an mf_fsm_t belongs to one thread (the Raft loop); no internal locking.
 * Pointers returned by the find functions stay valid until the next apply/restore. */
#ifndef MF_CONTROLLER_FSM_H
#define MF_CONTROLLER_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "proto/controller.pb-c.h"

/* Limits enforced by apply (a bigger value is MF_ERR_LIMIT). */
#define MF_FSM_ID_MAX 64             /* ids: 1..64 printable ASCII bytes, no spaces */
#define MF_FSM_NAME_MAX 256          /* names and addresses: no control characters */
#define MF_FSM_WORKERS_MAX 256       /* workers per node */
#define MF_FSM_BLOB_MAX (64u * 1024u) /* codecs/appData JSON text, rtpParameters bytes */
#define MF_FSM_COMMAND_MAX (1024u * 1024u) /* one encoded command */
#define MF_FSM_MESSAGE_MAX 256       /* result message buffer callers should provide */
#define MF_FSM_CONTROLLERS_MAX 64    /* controller address rows (SetControllerAddress) */

typedef struct mf_fsm mf_fsm_t;

typedef struct {
  size_t nodes, routers, shards, producers, pipes, controllers;
} mf_fsm_counts_t;

mf_err_t mf_fsm_create(mf_fsm_t **out);
void mf_fsm_destroy(mf_fsm_t *fsm); /* NULL is ignored */

/* Decodes and applies one encoded Command. Returns MF_OK when applied; otherwise the state
 * is unchanged and the code says why (MF_ERR_PARSE: the bytes are not a Command,
 * MF_ERR_NOT_FOUND, MF_ERR_EXISTS, MF_ERR_INVALID_ARG, MF_ERR_STATE, MF_ERR_LIMIT, or
 * MF_ERR_NO_MEMORY which is the only non-deterministic outcome). msg (may be NULL) gets a
 * one-line human explanation. */
mf_err_t mf_fsm_apply(mf_fsm_t *fsm, const uint8_t *data, size_t len, char *msg,
                      size_t msg_size);

/* Same, for an already decoded command (not taken over; copied where kept). */
mf_err_t mf_fsm_apply_command(mf_fsm_t *fsm, const Mafalda__Controller__Command *cmd,
                              char *msg, size_t msg_size);

/* Packs the whole state as a Snapshot message. *out is malloc'd, owned by the caller. */
mf_err_t mf_fsm_snapshot(const mf_fsm_t *fsm, uint8_t **out, size_t *len);

/* Replaces the state with a packed Snapshot. Validated like commands; on any error the
 * current state is kept unchanged. */
mf_err_t mf_fsm_restore(mf_fsm_t *fsm, const uint8_t *data, size_t len);

/* A stable text dump, one line per object, sorted by kind then id (for tests and
 * operators). malloc'd, owned by the caller; NULL on allocation failure. */
char *mf_fsm_dump(const mf_fsm_t *fsm);

bool mf_fsm_equal(const mf_fsm_t *a, const mf_fsm_t *b);
void mf_fsm_counts(const mf_fsm_t *fsm, mf_fsm_counts_t *out);

const Mafalda__Controller__Node *mf_fsm_find_node(const mf_fsm_t *fsm, const char *id);
const Mafalda__Controller__Router *mf_fsm_find_router(const mf_fsm_t *fsm, const char *id);
const Mafalda__Controller__Producer *mf_fsm_find_producer(const mf_fsm_t *fsm,
                                                          const char *id);
/* The router with that name; NULL when none or name is NULL/"" (names are unique among
 * named routers: CreateRouter with a used name is MF_ERR_EXISTS). O(routers). */
const Mafalda__Controller__Router *mf_fsm_find_router_by_name(const mf_fsm_t *fsm,
                                                              const char *name);
bool mf_fsm_has_shard(const mf_fsm_t *fsm, const char *router_id, const char *node_id,
                      uint32_t worker);
bool mf_fsm_has_pipe(const mf_fsm_t *fsm, const char *producer_id, const char *target_node_id,
                     uint32_t target_worker);

/* The controller replica raft_id's addresses (SetControllerAddress); NULL when unknown.
 * Lets any replica name the leader's RPC address in redirects. */
const Mafalda__Controller__ControllerAddress *mf_fsm_find_controller(const mf_fsm_t *fsm,
                                                                    uint64_t raft_id);
/* Calls fn for every controller address row, in raft_id order (read-only). */
void mf_fsm_foreach_controller(
    const mf_fsm_t *fsm, void (*fn)(void *ud, const Mafalda__Controller__ControllerAddress *c),
    void *ud);

/* Calls fn for every node, in id order (read-only; fn must not apply commands). */
void mf_fsm_foreach_node(const mf_fsm_t *fsm,
                         void (*fn)(void *ud, const Mafalda__Controller__Node *node), void *ud);
/* The same for the other objects, each in its key order: routers by id, shards by
 * (router, node, worker), producers by id, pipes by (producer, target node, worker). */
void mf_fsm_foreach_router(const mf_fsm_t *fsm,
                           void (*fn)(void *ud, const Mafalda__Controller__Router *router),
                           void *ud);
void mf_fsm_foreach_shard(const mf_fsm_t *fsm,
                          void (*fn)(void *ud, const Mafalda__Controller__Shard *shard),
                          void *ud);
void mf_fsm_foreach_producer(const mf_fsm_t *fsm,
                             void (*fn)(void *ud, const Mafalda__Controller__Producer *producer),
                             void *ud);
void mf_fsm_foreach_pipe(const mf_fsm_t *fsm,
                         void (*fn)(void *ud, const Mafalda__Controller__Pipe *pipe), void *ud);

/* Encodes cmd into a malloc'd buffer (helper for clients and tests). */
mf_err_t mf_fsm_encode_command(const Mafalda__Controller__Command *cmd, uint8_t **out,
                               size_t *len);

const char *mf_fsm_node_state_name(Mafalda__Controller__NodeState state);

#endif
