/* Internal to the controller's state machine (controller/fsm.c and the tables it keeps in
 * their own files, e.g. fsm_controllers.c): the validation helpers they share, so a rule
 * and the shape of a refusal message are written once. Defined in fsm.c.
 *
 * Thread affinity: pure functions, callable from any thread (used by the Raft loop). */
#ifndef MF_CONTROLLER_FSM_INTERNAL_H
#define MF_CONTROLLER_FSM_INTERNAL_H

#include <stddef.h>

#include "common/err.h"

/* Formats the one-line outcome into msg (when msg is not NULL and size > 0) and returns
 * err, so a check can `return mf_fsm_fail(msg, size, MF_ERR_..., "why %s", x);`. */
mf_err_t mf_fsm_fail(char *msg, size_t size, mf_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The FSM's rule for names, addresses and other free text: at most max bytes (else
 * MF_ERR_LIMIT), no control characters (else MF_ERR_INVALID_ARG). NULL is "". */
mf_err_t mf_fsm_check_text(const char *s, size_t max);

#endif
