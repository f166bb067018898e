/* Internal to the controller's state machine (controller/fsm.c): the table of controller
 * replicas' addresses (SetControllerAddress rows), kept in its own file so fsm.c stays
 * small. Same rules as the rest of the FSM: pure, deterministic, a rejected command leaves
 * the table unchanged. Public access goes through fsm.h (mf_fsm_find_controller,
 * mf_fsm_foreach_controller).
 *
 * Thread affinity: owned by its mf_fsm_t, so by one thread (the Raft loop). */
#ifndef MF_CONTROLLER_FSM_CONTROLLERS_H
#define MF_CONTROLLER_FSM_CONTROLLERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "proto/controller.pb-c.h"

/* Rows sorted by raft_id; each row and its strings are owned by the table. */
typedef struct {
  Mafalda__Controller__ControllerAddress **rows;
  size_t n, cap;
} mf_fsm_controllers_t;

/* Applies one SetControllerAddress (msg: one-line outcome, may be NULL). */
mf_err_t mf_fsm_controllers_set(mf_fsm_controllers_t *t,
                                const Mafalda__Controller__SetControllerAddress *c, char *msg,
                                size_t msg_size);

/* Fills an EMPTY table from a snapshot's rows, validated like commands (duplicates and
 * removals are errors). On error the table may hold part of the rows: clear it. */
mf_err_t mf_fsm_controllers_restore(mf_fsm_controllers_t *t,
                                    Mafalda__Controller__ControllerAddress *const *rows,
                                    size_t n);

/* NULL when there is no row for raft_id. Valid until the table changes. */
const Mafalda__Controller__ControllerAddress *mf_fsm_controllers_find(
    const mf_fsm_controllers_t *t, uint64_t raft_id);

void mf_fsm_controllers_clear(mf_fsm_controllers_t *t);

#endif
