/* Private to the scheduler (scheduler.c, scheduler_pipes.c): the per-call context and the
 * small helpers both halves share. Not part of the API: only controller/scheduler*.c
 * include it. Same rules as scheduler.h: pure, reentrant, no globals. */
#ifndef MF_CONTROLLER_SCHEDULER_INTERNAL_H
#define MF_CONTROLLER_SCHEDULER_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "controller/scheduler.h"

#define NONE SIZE_MAX
#define UNREACHABLE UINT32_MAX
/* Loads are sums of doubles: allow rounding noise so "exactly at the watermark" fits. */
#define FIT_EPSILON 1e-6

/* Everything one call needs besides the view: knobs with defaults applied, nodes by id (a
 * hash for lookups, a rank for id-ordered tie-breaks) and a flat numbering of all
 * workers. */
typedef struct {
  const mf_sched_view_t *v;
  const mf_sched_node_t **by_id; /* view nodes sorted by id */
  size_t *base;                  /* flat index of node i's worker 0 */
  size_t *rank;                  /* node i's position in by_id: id order without strcmp */
  size_t *slots;                 /* open-addressing table: node index + 1, 0 = empty */
  size_t mask;                   /* table size - 1 (a power of two >= 2 * nodes) */
  size_t n_flat;
  double watermark;
  uint32_t max_out;
  uint64_t linger;
} sched_ctx_t;

/* Writes one line into msg (NULL or size 0: nothing). */
void mf_sched__say(char *msg, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Validates the view, applies the knobs' defaults and indexes the nodes. On error msg
 * says why and nothing is left to free; on MF_OK free with mf_sched__ctx_free. */
mf_err_t mf_sched__ctx_init(sched_ctx_t *c, const mf_sched_view_t *v, char *msg, size_t size);
void mf_sched__ctx_free(sched_ctx_t *c);

/* Index of the node in view.nodes, or NONE. */
size_t mf_sched__node_find(const sched_ctx_t *c, const char *id);

static inline bool finite_nonneg(double x) { return isfinite(x) && x >= 0; }

static inline bool node_active(const sched_ctx_t *c, size_t ni) {
  return ni != NONE && c->v->nodes[ni].state == MF_SCHED_NODE_ACTIVE;
}

static inline double worker_load(const mf_sched_worker_t *w) {
  double measured = w->load_pps;
  double by_cpu = w->cpu * w->capacity_pps;
  return (measured > by_cpu ? measured : by_cpu) + w->pending_pps;
}

static inline double worker_limit(const sched_ctx_t *c, const mf_sched_worker_t *w) {
  return c->watermark * w->capacity_pps;
}

static inline bool worker_fits(const sched_ctx_t *c, const mf_sched_worker_t *w, double pps) {
  return worker_load(w) + pps <= worker_limit(c, w) + FIT_EPSILON;
}

/* (node id, worker) order: the deterministic tie-break everywhere. */
static inline bool before(const sched_ctx_t *c, size_t na, uint32_t wa, size_t nb,
                          uint32_t wb) {
  return na != nb ? c->rank[na] < c->rank[nb] : wa < wb;
}

static inline int key_cmp(const char *na, uint32_t wa, const char *nb, uint32_t wb) {
  int r = strcmp(na, nb);
  if (r) return r;
  return wa < wb ? -1 : wa > wb;
}

static inline bool same_shard(const char *na, uint32_t wa, const char *nb, uint32_t wb) {
  return wa == wb && strcmp(na, nb) == 0;
}

#endif
