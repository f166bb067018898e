#include "controller/fsm_controllers.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "controller/fsm.h"
#include "controller/fsm_internal.h"

typedef Mafalda__Controller__ControllerAddress row_t;

static const char *S(const char *s) { return s ? s : ""; }

/* The FSM's rule for names and addresses (fsm_internal.h). */
static mf_err_t check_address(const char *s) { return mf_fsm_check_text(s, MF_FSM_NAME_MAX); }

static size_t find_pos(const mf_fsm_controllers_t *t, uint64_t id, bool *found) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    uint64_t have = t->rows[mid]->raft_id;
    if (have == id) {
      *found = true;
      return mid;
    }
    if (have < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

/* Rows are built here (not unpacked), so they are freed field by field. */
static void row_free(row_t *r) {
  if (!r) return;
  free(r->raft_address);
  free(r->rpc_address);
  free(r);
}

static row_t *row_new(uint64_t id, const char *raft_address, const char *rpc_address) {
  row_t *r = malloc(sizeof(*r));
  if (!r) return NULL;
  row_t init = MAFALDA__CONTROLLER__CONTROLLER_ADDRESS__INIT;
  *r = init;
  r->raft_id = id;
  r->raft_address = strdup(S(raft_address));
  r->rpc_address = strdup(S(rpc_address));
  if (!r->raft_address || !r->rpc_address) {
    row_free(r);
    return NULL;
  }
  return r;
}

mf_err_t mf_fsm_controllers_set(mf_fsm_controllers_t *t,
                                const Mafalda__Controller__SetControllerAddress *c, char *msg,
                                size_t size) {
  if (c->raft_id == 0) return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "controller id 0");
  mf_err_t err = check_address(c->raft_address);
  if (err)
    return mf_fsm_fail(msg, size, err, "invalid raft address for controller %llu",
                       (unsigned long long)c->raft_id);
  err = check_address(c->rpc_address);
  if (err)
    return mf_fsm_fail(msg, size, err, "invalid rpc address for controller %llu",
                       (unsigned long long)c->raft_id);
  bool found;
  size_t pos = find_pos(t, c->raft_id, &found);
  if (!S(c->rpc_address)[0]) {
    if (!found)
      return mf_fsm_fail(msg, size, MF_ERR_NOT_FOUND, "no address recorded for controller %llu",
                         (unsigned long long)c->raft_id);
    row_free(t->rows[pos]);
    memmove(&t->rows[pos], &t->rows[pos + 1], (t->n - pos - 1) * sizeof(*t->rows));
    t->n--;
    return mf_fsm_fail(msg, size, MF_OK, "controller %llu address removed",
                       (unsigned long long)c->raft_id);
  }
  if (!S(c->raft_address)[0])
    return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "controller %llu: missing raft address",
                       (unsigned long long)c->raft_id);
  if (found && strcmp(t->rows[pos]->raft_address, c->raft_address) == 0 &&
      strcmp(t->rows[pos]->rpc_address, c->rpc_address) == 0)
    return mf_fsm_fail(msg, size, MF_OK, "controller %llu address unchanged",
                       (unsigned long long)c->raft_id);
  if (!found && t->n >= MF_FSM_CONTROLLERS_MAX)
    return mf_fsm_fail(msg, size, MF_ERR_LIMIT, "too many controller addresses (%zu)", t->n);
  row_t *row = row_new(c->raft_id, c->raft_address, c->rpc_address);
  if (!row) return mf_fsm_fail(msg, size, MF_ERR_NO_MEMORY, "out of memory");
  if (found) {
    row_free(t->rows[pos]);
    t->rows[pos] = row;
  } else {
    if (t->n == t->cap) {
      size_t cap = t->cap ? t->cap * 2 : 4;
      row_t **rows = realloc(t->rows, cap * sizeof(*rows));
      if (!rows) {
        row_free(row);
        return mf_fsm_fail(msg, size, MF_ERR_NO_MEMORY, "out of memory");
      }
      t->rows = rows;
      t->cap = cap;
    }
    memmove(&t->rows[pos + 1], &t->rows[pos], (t->n - pos) * sizeof(*t->rows));
    t->rows[pos] = row;
    t->n++;
  }
  return mf_fsm_fail(msg, size, MF_OK, "controller %llu at %s, rpc %s",
                     (unsigned long long)row->raft_id, row->raft_address, row->rpc_address);
}

mf_err_t mf_fsm_controllers_restore(mf_fsm_controllers_t *t, row_t *const *rows, size_t n) {
  char msg[MF_FSM_MESSAGE_MAX];
  for (size_t i = 0; i < n; i++) {
    const row_t *r = rows[i];
    /* A snapshot lists rows, it never removes one. */
    if (!r || !S(r->rpc_address)[0]) return MF_ERR_INVALID_ARG;
    bool found;
    find_pos(t, r->raft_id, &found);
    if (found) return MF_ERR_EXISTS;
    Mafalda__Controller__SetControllerAddress c =
        MAFALDA__CONTROLLER__SET_CONTROLLER_ADDRESS__INIT;
    c.raft_id = r->raft_id;
    c.raft_address = r->raft_address;
    c.rpc_address = r->rpc_address;
    mf_err_t err = mf_fsm_controllers_set(t, &c, msg, sizeof(msg));
    if (err) return err;
  }
  return MF_OK;
}

const row_t *mf_fsm_controllers_find(const mf_fsm_controllers_t *t, uint64_t raft_id) {
  bool found;
  size_t pos = find_pos(t, raft_id, &found);
  return found ? t->rows[pos] : NULL;
}

void mf_fsm_controllers_clear(mf_fsm_controllers_t *t) {
  for (size_t i = 0; i < t->n; i++) row_free(t->rows[i]);
  free(t->rows);
  memset(t, 0, sizeof(*t));
}
