#include "controller/scheduler.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE SIZE_MAX
#define UNREACHABLE UINT32_MAX
/* Loads are sums of doubles: allow rounding noise so "exactly at the watermark" fits. */
#define FIT_EPSILON 1e-6

__attribute__((format(printf, 3, 4))) static void say(char *msg, size_t size, const char *fmt, ...) {
  if (!msg || size == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, size, fmt, ap);
  va_end(ap);
}

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
} ctx_t;

static void ctx_free(ctx_t *c) {
  free(c->by_id);
  free(c->base);
  free(c->rank);
  free(c->slots);
  c->by_id = NULL;
  c->base = NULL;
  c->rank = NULL;
  c->slots = NULL;
}

/* FNV-1a: node ids are looked up once or twice per shard/pipe end on every call; a hash
 * costs one strcmp per lookup where a bsearch costs log2(nodes). */
static uint64_t str_hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
  return h;
}

static int cmp_node_ptr(const void *a, const void *b) {
  return strcmp((*(const mf_sched_node_t *const *)a)->id,
                (*(const mf_sched_node_t *const *)b)->id);
}

static bool finite_nonneg(double x) { return isfinite(x) && x >= 0; }

static mf_err_t validate(const mf_sched_view_t *v, char *msg, size_t size) {
  if (!v) {
    say(msg, size, "no view");
    return MF_ERR_INVALID_ARG;
  }
  if ((v->n_nodes && !v->nodes) || (v->n_routers && !v->routers) ||
      (v->n_shards && !v->shards) || (v->n_producers && !v->producers) ||
      (v->n_pipes && !v->pipes)) {
    say(msg, size, "view has a count without its array");
    return MF_ERR_INVALID_ARG;
  }
  if (!isfinite(v->watermark) || v->watermark < 0 || v->watermark > 1) {
    say(msg, size, "watermark %g outside (0, 1]", v->watermark);
    return MF_ERR_INVALID_ARG;
  }
  for (size_t i = 0; i < v->n_nodes; i++) {
    const mf_sched_node_t *n = &v->nodes[i];
    if (!n->id || !n->id[0] || (n->n_workers && !n->workers) ||
        (unsigned)n->state > MF_SCHED_NODE_DEAD) {
      say(msg, size, "node #%zu: missing id, workers or bad state", i);
      return MF_ERR_INVALID_ARG;
    }
    if (n->state != MF_SCHED_NODE_ACTIVE) continue;
    for (size_t w = 0; w < n->n_workers; w++) {
      const mf_sched_worker_t *wk = &n->workers[w];
      if (!isfinite(wk->capacity_pps) || wk->capacity_pps <= 0) {
        say(msg, size, "node %s worker %zu: capacity_pps %g must be > 0", n->id, w,
            wk->capacity_pps);
        return MF_ERR_INVALID_ARG;
      }
      if (!finite_nonneg(wk->load_pps) || !finite_nonneg(wk->cpu) ||
          !finite_nonneg(wk->pending_pps)) {
        say(msg, size, "node %s worker %zu: load, cpu and pending must be finite and >= 0",
            n->id, w);
        return MF_ERR_INVALID_ARG;
      }
    }
  }
  for (size_t i = 0; i < v->n_routers; i++)
    if (!v->routers[i]) {
      say(msg, size, "router #%zu has no id", i);
      return MF_ERR_INVALID_ARG;
    }
  for (size_t i = 0; i < v->n_shards; i++)
    if (!v->shards[i].router_id || !v->shards[i].node_id) {
      say(msg, size, "shard #%zu has no router or node id", i);
      return MF_ERR_INVALID_ARG;
    }
  for (size_t i = 0; i < v->n_producers; i++) {
    const mf_sched_producer_t *p = &v->producers[i];
    if (!p->id || !p->router_id || !p->node_id) {
      say(msg, size, "producer #%zu has no id, router or node id", i);
      return MF_ERR_INVALID_ARG;
    }
  }
  for (size_t i = 0; i < v->n_pipes; i++) {
    const mf_sched_pipe_t *p = &v->pipes[i];
    if (!p->producer_id || !p->target_node_id || !p->source_node_id) {
      say(msg, size, "pipe #%zu has no producer, target or source node id", i);
      return MF_ERR_INVALID_ARG;
    }
  }
  return MF_OK;
}

static mf_err_t ctx_init(ctx_t *c, const mf_sched_view_t *v, char *msg, size_t size) {
  memset(c, 0, sizeof(*c));
  mf_err_t err = validate(v, msg, size);
  if (err != MF_OK) return err;
  c->v = v;
  c->watermark = v->watermark > 0 ? v->watermark : MF_SCHED_DEFAULT_WATERMARK;
  c->max_out = v->max_pipes_out_per_worker ? v->max_pipes_out_per_worker
                                           : MF_SCHED_DEFAULT_MAX_PIPES_OUT;
  c->linger = v->pipe_linger_ms ? v->pipe_linger_ms : MF_SCHED_DEFAULT_LINGER_MS;
  c->by_id = malloc((v->n_nodes + 1) * sizeof(*c->by_id));
  c->base = malloc((v->n_nodes + 1) * sizeof(*c->base));
  c->rank = malloc((v->n_nodes + 1) * sizeof(*c->rank));
  size_t table = 4;
  while (table < 2 * v->n_nodes) table *= 2;
  c->mask = table - 1;
  c->slots = calloc(table, sizeof(*c->slots));
  if (!c->by_id || !c->base || !c->rank || !c->slots) {
    ctx_free(c);
    say(msg, size, "out of memory");
    return MF_ERR_NO_MEMORY;
  }
  for (size_t i = 0; i < v->n_nodes; i++) {
    c->by_id[i] = &v->nodes[i];
    c->base[i] = c->n_flat;
    c->n_flat += v->nodes[i].n_workers;
  }
  qsort(c->by_id, v->n_nodes, sizeof(*c->by_id), cmp_node_ptr);
  for (size_t i = 1; i < v->n_nodes; i++)
    if (strcmp(c->by_id[i - 1]->id, c->by_id[i]->id) == 0) {
      say(msg, size, "node %s listed twice", c->by_id[i]->id);
      ctx_free(c);
      return MF_ERR_INVALID_ARG;
    }
  for (size_t i = 0; i < v->n_nodes; i++) {
    c->rank[c->by_id[i] - v->nodes] = i;
    size_t h = (size_t)str_hash(v->nodes[i].id) & c->mask;
    while (c->slots[h]) h = (h + 1) & c->mask;
    c->slots[h] = i + 1;
  }
  return MF_OK;
}

/* Index of the node in view.nodes, or NONE. */
static size_t node_find(const ctx_t *c, const char *id) {
  for (size_t h = (size_t)str_hash(id) & c->mask; c->slots[h]; h = (h + 1) & c->mask) {
    const char *cand = c->v->nodes[c->slots[h] - 1].id;
    if (cand == id || strcmp(cand, id) == 0) return c->slots[h] - 1;
  }
  return NONE;
}

static bool node_active(const ctx_t *c, size_t ni) {
  return ni != NONE && c->v->nodes[ni].state == MF_SCHED_NODE_ACTIVE;
}

static double worker_load(const mf_sched_worker_t *w) {
  double measured = w->load_pps;
  double by_cpu = w->cpu * w->capacity_pps;
  return (measured > by_cpu ? measured : by_cpu) + w->pending_pps;
}

static double worker_limit(const ctx_t *c, const mf_sched_worker_t *w) {
  return c->watermark * w->capacity_pps;
}

static bool worker_fits(const ctx_t *c, const mf_sched_worker_t *w, double pps) {
  return worker_load(w) + pps <= worker_limit(c, w) + FIT_EPSILON;
}

/* (node id, worker) order: the deterministic tie-break everywhere. */
static bool before(const ctx_t *c, size_t na, uint32_t wa, size_t nb, uint32_t wb) {
  return na != nb ? c->rank[na] < c->rank[nb] : wa < wb;
}

static int key_cmp(const char *na, uint32_t wa, const char *nb, uint32_t wb) {
  int r = strcmp(na, nb);
  if (r) return r;
  return wa < wb ? -1 : wa > wb;
}

static bool same_shard(const char *na, uint32_t wa, const char *nb, uint32_t wb) {
  return wa == wb && strcmp(na, nb) == 0;
}

/* ======================= transport placement ======================= */

const char *mf_sched_rule_name(mf_sched_rule_t rule) {
  switch (rule) {
    case MF_SCHED_RULE_FILL_SHARD: return "fill_shard";
    case MF_SCHED_RULE_PRODUCER_NODE: return "producer_node";
    case MF_SCHED_RULE_ROUTER_NODE: return "router_node";
    case MF_SCHED_RULE_FREEST_NODE: return "freest_node";
  }
  return "unknown";
}

typedef struct {
  bool *in_use;      /* per flat worker */
  bool *hosts_r;     /* per flat worker: has a shard of the router */
  bool *node_r;      /* per node: hosts a shard or producer of the router */
  bool *node_used;   /* per node: one of its workers is in use */
  size_t *node_prod; /* per node: producers of the router originating there */
  bool *mask;        /* per node: scratch for pick() */
} place_state_t;

typedef struct {
  size_t node;
  uint32_t worker;
} slot_t;

/* PICK: among fitting workers of the masked active nodes that do not host the router yet:
 * in use first, then least loaded, then node id, then worker index. */
static slot_t pick(const ctx_t *c, const place_state_t *st, double pps) {
  slot_t best = {NONE, 0};
  bool best_used = false;
  double best_load = 0;
  for (size_t ni = 0; ni < c->v->n_nodes; ni++) {
    if (!st->mask[ni] || !node_active(c, ni)) continue;
    const mf_sched_node_t *n = &c->v->nodes[ni];
    for (uint32_t w = 0; w < n->n_workers; w++) {
      size_t f = c->base[ni] + w;
      if (st->hosts_r[f] || !worker_fits(c, &n->workers[w], pps)) continue;
      bool used = st->in_use[f];
      double load = worker_load(&n->workers[w]);
      bool better;
      if (best.node == NONE)
        better = true;
      else if (used != best_used)
        better = used;
      else if (load != best_load)
        better = load < best_load;
      else
        better = before(c, ni, w, best.node, best.worker);
      if (better) {
        best = (slot_t){ni, w};
        best_used = used;
        best_load = load;
      }
    }
  }
  return best;
}

/* Rule 1: the most loaded worker hosting the router that still fits (packing). */
static slot_t fill_shard(const ctx_t *c, const place_state_t *st, double pps) {
  slot_t best = {NONE, 0};
  double best_load = 0;
  for (size_t ni = 0; ni < c->v->n_nodes; ni++) {
    if (!node_active(c, ni)) continue;
    const mf_sched_node_t *n = &c->v->nodes[ni];
    for (uint32_t w = 0; w < n->n_workers; w++) {
      if (!st->hosts_r[c->base[ni] + w] || !worker_fits(c, &n->workers[w], pps)) continue;
      double load = worker_load(&n->workers[w]);
      bool better;
      if (best.node == NONE)
        better = true;
      else if (load != best_load)
        better = load > best_load;
      else
        better = before(c, ni, w, best.node, best.worker);
      if (better) {
        best = (slot_t){ni, w};
        best_load = load;
      }
    }
  }
  return best;
}

/* Rule 3b: the node to open a shard on: has a fitting worker; in use first; most free
 * capacity; node id. */
static size_t freest_node(const ctx_t *c, const place_state_t *st, double pps) {
  size_t best = NONE;
  double best_free = 0;
  for (size_t ni = 0; ni < c->v->n_nodes; ni++) {
    if (!node_active(c, ni)) continue;
    const mf_sched_node_t *n = &c->v->nodes[ni];
    bool any_fit = false;
    double free_pps = 0;
    for (uint32_t w = 0; w < n->n_workers; w++) {
      const mf_sched_worker_t *wk = &n->workers[w];
      double room = worker_limit(c, wk) - worker_load(wk);
      if (room > 0) free_pps += room;
      if (!st->hosts_r[c->base[ni] + w] && worker_fits(c, wk, pps)) any_fit = true;
    }
    if (!any_fit) continue;
    bool better;
    if (best == NONE)
      better = true;
    else if (st->node_used[ni] != st->node_used[best])
      better = st->node_used[ni];
    else if (free_pps != best_free)
      better = free_pps > best_free;
    else
      better = before(c, ni, 0, best, 0);
    if (better) {
      best = ni;
      best_free = free_pps;
    }
  }
  return best;
}

static void place_state_free(place_state_t *st) {
  free(st->in_use);
  free(st->hosts_r);
  free(st->node_r);
  free(st->node_used);
  free(st->node_prod);
  free(st->mask);
}

static mf_err_t place_state_build(const ctx_t *c, const char *router, place_state_t *st) {
  const mf_sched_view_t *v = c->v;
  memset(st, 0, sizeof(*st));
  st->in_use = calloc(c->n_flat + 1, sizeof(bool));
  st->hosts_r = calloc(c->n_flat + 1, sizeof(bool));
  st->node_r = calloc(v->n_nodes + 1, sizeof(bool));
  st->node_used = calloc(v->n_nodes + 1, sizeof(bool));
  st->node_prod = calloc(v->n_nodes + 1, sizeof(size_t));
  st->mask = calloc(v->n_nodes + 1, sizeof(bool));
  if (!st->in_use || !st->hosts_r || !st->node_r || !st->node_used || !st->node_prod ||
      !st->mask)
    return MF_ERR_NO_MEMORY;
  for (size_t i = 0; i < v->n_shards; i++) {
    const mf_sched_shard_t *s = &v->shards[i];
    size_t ni = node_find(c, s->node_id);
    if (ni == NONE || s->worker >= v->nodes[ni].n_workers) continue; /* stale: ignore */
    size_t f = c->base[ni] + s->worker;
    st->in_use[f] = true;
    if (strcmp(s->router_id, router) == 0) {
      st->hosts_r[f] = true;
      st->node_r[ni] = true;
    }
  }
  for (size_t i = 0; i < v->n_producers; i++) {
    const mf_sched_producer_t *p = &v->producers[i];
    if (strcmp(p->router_id, router) != 0) continue;
    size_t ni = node_find(c, p->node_id);
    if (ni == NONE) continue;
    st->node_prod[ni]++;
    st->node_r[ni] = true;
  }
  for (size_t ni = 0; ni < v->n_nodes; ni++) {
    const mf_sched_node_t *n = &v->nodes[ni];
    for (uint32_t w = 0; w < n->n_workers; w++) {
      size_t f = c->base[ni] + w;
      if (n->workers[w].transports > 0 || worker_load(&n->workers[w]) > 0)
        st->in_use[f] = true;
      if (st->in_use[f]) st->node_used[ni] = true;
    }
  }
  return MF_OK;
}

static slot_t place(const ctx_t *c, place_state_t *st, double pps, mf_sched_rule_t *rule) {
  const mf_sched_view_t *v = c->v;
  *rule = MF_SCHED_RULE_FILL_SHARD;
  slot_t s = fill_shard(c, st, pps);
  if (s.node != NONE) return s;

  size_t most = 0;
  for (size_t ni = 0; ni < v->n_nodes; ni++)
    if (node_active(c, ni) && st->node_prod[ni] > most) most = st->node_prod[ni];
  if (most > 0) {
    *rule = MF_SCHED_RULE_PRODUCER_NODE;
    for (size_t ni = 0; ni < v->n_nodes; ni++) st->mask[ni] = st->node_prod[ni] == most;
    s = pick(c, st, pps);
    if (s.node != NONE) return s;
  }

  *rule = MF_SCHED_RULE_ROUTER_NODE;
  for (size_t ni = 0; ni < v->n_nodes; ni++) st->mask[ni] = st->node_r[ni];
  s = pick(c, st, pps);
  if (s.node != NONE) return s;

  *rule = MF_SCHED_RULE_FREEST_NODE;
  size_t node = freest_node(c, st, pps);
  if (node == NONE) return (slot_t){NONE, 0};
  for (size_t ni = 0; ni < v->n_nodes; ni++) st->mask[ni] = ni == node;
  return pick(c, st, pps);
}

mf_err_t mf_sched_place_transport(const mf_sched_view_t *view,
                                  const mf_sched_place_request_t *req,
                                  mf_sched_placement_t *out, char *msg, size_t msg_size) {
  if (!req || !out || !req->router_id || !finite_nonneg(req->expected_pps)) {
    say(msg, msg_size, "bad placement request (router id, expected_pps >= 0, output)");
    return MF_ERR_INVALID_ARG;
  }
  ctx_t c;
  mf_err_t err = ctx_init(&c, view, msg, msg_size);
  if (err != MF_OK) return err;
  bool known = false;
  for (size_t i = 0; i < view->n_routers && !known; i++)
    known = strcmp(view->routers[i], req->router_id) == 0;
  size_t active = 0;
  for (size_t ni = 0; ni < view->n_nodes; ni++) active += node_active(&c, ni);
  if (!known) {
    say(msg, msg_size, "unknown router %s", req->router_id);
    ctx_free(&c);
    return MF_ERR_NOT_FOUND;
  }
  if (active == 0) {
    say(msg, msg_size, "no active node to place router %s on", req->router_id);
    ctx_free(&c);
    return MF_ERR_STATE;
  }
  place_state_t st;
  err = place_state_build(&c, req->router_id, &st);
  if (err != MF_OK) {
    say(msg, msg_size, "out of memory");
  } else {
    mf_sched_rule_t rule;
    slot_t s = place(&c, &st, req->expected_pps, &rule);
    if (s.node == NONE) {
      say(msg, msg_size,
          "cluster full: no worker of %zu active node(s) has %g pps of headroom below the "
          "%g watermark",
          active, req->expected_pps, c.watermark);
      err = MF_ERR_LIMIT;
    } else {
      const mf_sched_node_t *n = &view->nodes[s.node];
      const mf_sched_worker_t *w = &n->workers[s.worker];
      out->node_id = n->id;
      out->node_index = s.node;
      out->worker = s.worker;
      out->new_shard = !st.hosts_r[c.base[s.node] + s.worker];
      out->rule = rule;
      out->load_pps = worker_load(w);
      say(msg, msg_size, "%s: router %s on node %s worker %u%s (load %g + %g of %g pps)",
          mf_sched_rule_name(rule), req->router_id, n->id, s.worker,
          out->new_shard ? ", new shard" : "", out->load_pps, req->expected_pps,
          worker_limit(&c, w));
    }
  }
  place_state_free(&st);
  ctx_free(&c);
  return err;
}

/* ======================= pending account ======================= */

void mf_sched_pending_init(mf_sched_pending_t *p) { memset(p, 0, sizeof(*p)); }

void mf_sched_pending_free(mf_sched_pending_t *p) {
  if (!p) return;
  free(p->entries);
  mf_sched_pending_init(p);
}

mf_err_t mf_sched_pending_add(mf_sched_pending_t *p, const char *node_id, uint32_t worker,
                              double pps, uint64_t expires_at_ms) {
  if (!p || !node_id || !node_id[0] || strlen(node_id) > MF_SCHED_ID_MAX ||
      !finite_nonneg(pps))
    return MF_ERR_INVALID_ARG;
  if (p->count == p->capacity) {
    size_t cap = p->capacity ? p->capacity * 2 : 16;
    mf_sched_pending_entry_t *e = realloc(p->entries, cap * sizeof(*e));
    if (!e) return MF_ERR_NO_MEMORY;
    p->entries = e;
    p->capacity = cap;
  }
  mf_sched_pending_entry_t *e = &p->entries[p->count++];
  memset(e, 0, sizeof(*e));
  memcpy(e->node_id, node_id, strlen(node_id));
  e->worker = worker;
  e->pps = pps;
  e->expires_at_ms = expires_at_ms;
  return MF_OK;
}

/* Keeps entries for which drop() is false, in order. */
static size_t pending_filter(mf_sched_pending_t *p,
                             bool (*drop)(const mf_sched_pending_entry_t *, const void *),
                             const void *arg) {
  if (!p) return 0;
  size_t kept = 0, n = p->count;
  for (size_t i = 0; i < n; i++)
    if (!drop(&p->entries[i], arg)) p->entries[kept++] = p->entries[i];
  p->count = kept;
  return n - kept;
}

static bool drop_expired(const mf_sched_pending_entry_t *e, const void *arg) {
  return e->expires_at_ms <= *(const uint64_t *)arg;
}

static bool drop_node(const mf_sched_pending_entry_t *e, const void *arg) {
  return strcmp(e->node_id, (const char *)arg) == 0;
}

size_t mf_sched_pending_expire(mf_sched_pending_t *p, uint64_t now_ms) {
  return pending_filter(p, drop_expired, &now_ms);
}

size_t mf_sched_pending_forget_node(mf_sched_pending_t *p, const char *node_id) {
  if (!node_id) return 0;
  return pending_filter(p, drop_node, node_id);
}

void mf_sched_pending_apply(const mf_sched_pending_t *p, mf_sched_view_t *view) {
  if (!p || !view || (view->n_nodes && !view->nodes)) return;
  for (size_t ni = 0; ni < view->n_nodes; ni++) {
    const mf_sched_node_t *n = &view->nodes[ni];
    if (!n->workers) continue;
    for (size_t w = 0; w < n->n_workers; w++) n->workers[w].pending_pps = 0;
  }
  /* Entries are few (placements of the last seconds) and nodes tens: a nested scan. */
  for (size_t i = 0; i < p->count; i++) {
    const mf_sched_pending_entry_t *e = &p->entries[i];
    for (size_t ni = 0; ni < view->n_nodes; ni++) {
      const mf_sched_node_t *n = &view->nodes[ni];
      if (!n->id || !n->workers || strcmp(n->id, e->node_id) != 0) continue;
      if (e->worker < n->n_workers) n->workers[e->worker].pending_pps += e->pps;
      break;
    }
  }
}

/* ======================= pipes: the tree of one producer ======================= */

const char *mf_sched_pipe_kind_name(mf_sched_pipe_kind_t kind) {
  switch (kind) {
    case MF_SCHED_PIPE_RING: return "ring";
    case MF_SCHED_PIPE_TRANSPORT: return "transport";
  }
  return "unknown";
}

/* Flat worker index of (node, worker), or NONE when the node or worker is unknown. */
static size_t flat_of(const ctx_t *c, const char *node, uint32_t worker, size_t *ni_out) {
  size_t ni = node_find(c, node);
  if (ni_out) *ni_out = ni;
  if (ni == NONE || worker >= c->v->nodes[ni].n_workers) return NONE;
  return c->base[ni] + worker;
}

/* A shard that has the producer: the origin (holders[0]) or a pipe target. */
typedef struct {
  const char *node_id;
  uint32_t worker;
  size_t node;   /* index in view.nodes */
  size_t pipe;   /* index of the pipe feeding it (NONE for the origin) */
  size_t parent; /* holder it is fed from (NONE: origin, or source has no producer) */
  uint32_t out;  /* pipes of this producer it sends */
  uint32_t depth;
  uint8_t mark;  /* depth walk: 0 new, 1 on path, 2 done */
} holder_t;

typedef struct {
  holder_t *h; /* h[0] = origin, then pipe targets in pipe order */
  size_t n;
  size_t *pos; /* flat worker index -> holder index (NONE) */
} tree_t;

static void tree_free(tree_t *t) {
  free(t->h);
  free(t->pos);
  t->h = NULL;
  t->pos = NULL;
}

static size_t tree_find(const ctx_t *c, const tree_t *t, const char *node, uint32_t worker) {
  size_t f = flat_of(c, node, worker, NULL);
  return f == NONE ? NONE : t->pos[f];
}

/* Builds the distribution tree of producer p (origin on a known node) from
 * pipes[idx[0..k)] (all of p). Holders on node `excluded` (may be NULL) are cut off, as is
 * anything not connected to the origin (depth UNREACHABLE). Pipes into unknown nodes or
 * workers, into the origin, or duplicating a target are ignored. Lookups go through flat
 * worker indices: no sorting, no string keys beyond one node lookup per pipe end. */
static mf_err_t tree_build(const ctx_t *c, const mf_sched_producer_t *p,
                           const mf_sched_pipe_t *pipes, const size_t *idx, size_t k,
                           const char *excluded, tree_t *t) {
  t->h = calloc(k + 1, sizeof(*t->h));
  t->pos = malloc((c->n_flat + 1) * sizeof(*t->pos));
  t->n = 0;
  size_t *path = malloc((k + 1) * sizeof(*path));
  if (!t->h || !t->pos || !path) {
    tree_free(t);
    free(path);
    return MF_ERR_NO_MEMORY;
  }
  for (size_t f = 0; f < c->n_flat; f++) t->pos[f] = NONE;
  size_t oni, of = flat_of(c, p->node_id, p->worker, &oni);
  t->h[0] = (holder_t){p->node_id, p->worker, oni, NONE, NONE, 0, 0, 2};
  if (excluded && strcmp(p->node_id, excluded) == 0) t->h[0].depth = UNREACHABLE;
  if (of != NONE) t->pos[of] = 0;
  size_t n = 1;
  for (size_t i = 0; i < k; i++) {
    const mf_sched_pipe_t *pp = &pipes[idx[i]];
    size_t ni, f = flat_of(c, pp->target_node_id, pp->target_worker, &ni);
    if (f == NONE || t->pos[f] != NONE) continue;
    t->pos[f] = n;
    t->h[n++] = (holder_t){pp->target_node_id, pp->target_worker, ni, idx[i], NONE, 0,
                           UNREACHABLE, 0};
  }
  t->n = n;
  for (size_t i = 1; i < n; i++) {
    const mf_sched_pipe_t *pp = &pipes[t->h[i].pipe];
    size_t src = tree_find(c, t, pp->source_node_id, pp->source_worker);
    if (src == NONE || src == i) continue;
    t->h[i].parent = src;
    t->h[src].out++;
  }
  /* Depth: walk up to a known depth, then assign down the path; a cycle, a missing
   * source or an excluded holder leaves the whole path unreachable. */
  for (size_t i = 1; i < n; i++) {
    size_t len = 0, cur = i;
    while (cur != NONE && t->h[cur].mark == 0) {
      t->h[cur].mark = 1;
      path[len++] = cur;
      cur = t->h[cur].parent;
    }
    uint32_t d = (cur != NONE && t->h[cur].mark == 2) ? t->h[cur].depth : UNREACHABLE;
    while (len > 0) {
      holder_t *h = &t->h[path[--len]];
      bool cut = excluded && strcmp(h->node_id, excluded) == 0;
      d = (d == UNREACHABLE || cut) ? UNREACHABLE : d + 1;
      h->depth = d;
      h->mark = 2;
    }
  }
  free(path);
  return MF_OK;
}

static const mf_sched_producer_t *producer_find(const mf_sched_view_t *v, const char *id) {
  for (size_t i = 0; i < v->n_producers; i++)
    if (strcmp(v->producers[i].id, id) == 0) return &v->producers[i];
  return NULL;
}

static bool shard_exists(const mf_sched_view_t *v, const char *router, const char *node,
                         uint32_t worker) {
  for (size_t i = 0; i < v->n_shards; i++) {
    const mf_sched_shard_t *s = &v->shards[i];
    if (s->worker == worker && strcmp(s->node_id, node) == 0 &&
        strcmp(s->router_id, router) == 0)
      return true;
  }
  return false;
}

static bool dead_or_excluded(const ctx_t *c, size_t ni, const char *excluded) {
  if (ni == NONE) return true;
  const mf_sched_node_t *n = &c->v->nodes[ni];
  return n->state == MF_SCHED_NODE_DEAD || (excluded && strcmp(n->id, excluded) == 0);
}

/* plan_pipe over an explicit pipe list (the view's, or node_lost's working copy). */
static mf_err_t plan(const ctx_t *c, const mf_sched_pipe_t *pipes, size_t n_pipes,
                     const char *excluded, const mf_sched_pipe_request_t *req,
                     mf_sched_pipe_decision_t *out, char *msg, size_t size) {
  const mf_sched_view_t *v = c->v;
  const mf_sched_producer_t *p = producer_find(v, req->producer_id);
  if (!p) {
    say(msg, size, "unknown producer %s", req->producer_id);
    return MF_ERR_NOT_FOUND;
  }
  size_t tni = node_find(c, req->target_node_id), oni = node_find(c, p->node_id);
  if (tni == NONE || req->target_worker >= v->nodes[tni].n_workers ||
      !shard_exists(v, p->router_id, req->target_node_id, req->target_worker)) {
    say(msg, size, "no shard of router %s on node %s worker %u", p->router_id,
        req->target_node_id, req->target_worker);
    return MF_ERR_NOT_FOUND;
  }
  if (oni == NONE || p->worker >= v->nodes[oni].n_workers) {
    say(msg, size, "producer %s: origin node %s worker %u is unknown", p->id, p->node_id,
        p->worker);
    return MF_ERR_NOT_FOUND;
  }
  if (dead_or_excluded(c, tni, excluded) || dead_or_excluded(c, oni, excluded)) {
    say(msg, size, "producer %s: the origin (node %s) or target (node %s) is dead", p->id,
        p->node_id, req->target_node_id);
    return MF_ERR_STATE;
  }
  memset(out, 0, sizeof(*out));
  if (same_shard(p->node_id, p->worker, req->target_node_id, req->target_worker)) {
    *out = (mf_sched_pipe_decision_t){MF_SCHED_PIPE_LOCAL, MF_SCHED_PIPE_RING, p->node_id,
                                      p->worker, 0, NONE};
    say(msg, size, "producer %s is local to node %s worker %u", p->id, p->node_id,
        p->worker);
    return MF_OK;
  }
  size_t *idx = malloc((n_pipes + 1) * sizeof(*idx));
  tree_t t;
  mf_err_t err = MF_ERR_NO_MEMORY;
  if (idx) {
    size_t k = 0;
    for (size_t i = 0; i < n_pipes; i++)
      if (strcmp(pipes[i].producer_id, p->id) == 0) idx[k++] = i;
    err = tree_build(c, p, pipes, idx, k, excluded, &t);
    free(idx);
  }
  if (err != MF_OK) {
    say(msg, size, "out of memory");
    return err;
  }

  size_t have = t.pos[c->base[tni] + req->target_worker];
  if (have != NONE && have != 0) {
    const mf_sched_pipe_t *pp = &pipes[t.h[have].pipe];
    out->action = MF_SCHED_PIPE_REUSE;
    out->kind = strcmp(pp->source_node_id, pp->target_node_id) == 0
                    ? MF_SCHED_PIPE_RING
                    : MF_SCHED_PIPE_TRANSPORT;
    out->source_node_id = pp->source_node_id;
    out->source_worker = pp->source_worker;
    out->depth = t.h[have].depth;
    out->pipe_index = t.h[have].pipe;
    say(msg, size, "producer %s already piped to node %s worker %u", p->id,
        req->target_node_id, req->target_worker);
    tree_free(&t);
    return MF_OK;
  }

  size_t src = NONE;
  if (t.h[0].out < c->max_out) {
    src = 0;
  } else {
    for (size_t i = 1; i < t.n; i++) {
      const holder_t *h = &t.h[i];
      if (h->depth == UNREACHABLE || h->out >= c->max_out || !node_active(c, h->node) ||
          (excluded && strcmp(h->node_id, excluded) == 0))
        continue;
      if (src == NONE) {
        src = i;
        continue;
      }
      const holder_t *b = &t.h[src];
      bool hs = h->node == tni, bs = b->node == tni;
      bool better;
      if (hs != bs)
        better = hs;
      else if (h->depth != b->depth)
        better = h->depth < b->depth;
      else if (h->out != b->out)
        better = h->out < b->out;
      else
        better = before(c, h->node, h->worker, b->node, b->worker);
      if (better) src = i;
    }
  }
  if (src == NONE) {
    say(msg, size,
        "producer %s: no shard that has it can send another pipe (budget %u per worker)",
        p->id, c->max_out);
    tree_free(&t);
    return MF_ERR_LIMIT;
  }
  const holder_t *s = &t.h[src];
  out->action = MF_SCHED_PIPE_OPEN;
  out->kind = strcmp(s->node_id, req->target_node_id) == 0 ? MF_SCHED_PIPE_RING
                                                           : MF_SCHED_PIPE_TRANSPORT;
  out->source_node_id = s->node_id;
  out->source_worker = s->worker;
  out->depth = s->depth + 1;
  out->pipe_index = NONE;
  say(msg, size, "producer %s: open %s pipe node %s worker %u -> node %s worker %u (%s)",
      p->id, mf_sched_pipe_kind_name(out->kind), s->node_id, s->worker, req->target_node_id,
      req->target_worker, src == 0 ? "origin" : "relay");
  tree_free(&t);
  return MF_OK;
}

mf_err_t mf_sched_plan_pipe(const mf_sched_view_t *view, const mf_sched_pipe_request_t *req,
                            mf_sched_pipe_decision_t *out, char *msg, size_t msg_size) {
  if (!req || !out || !req->producer_id || !req->target_node_id) {
    say(msg, msg_size, "bad pipe request (producer id, target node id, output)");
    return MF_ERR_INVALID_ARG;
  }
  ctx_t c;
  mf_err_t err = ctx_init(&c, view, msg, msg_size);
  if (err != MF_OK) return err;
  err = plan(&c, view->pipes, view->n_pipes, NULL, req, out, msg, msg_size);
  ctx_free(&c);
  return err;
}

/* ======================= node loss ======================= */

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool str_in_sorted(const char *const *arr, size_t n, const char *s) {
  return n && bsearch(&s, arr, n, sizeof(*arr), cmp_str_ptr) != NULL;
}

void mf_sched_loss_free(mf_sched_loss_t *loss) {
  if (!loss) return;
  free(loss->shards);
  free(loss->producers);
  free(loss->pipes);
  free(loss->replans);
  memset(loss, 0, sizeof(*loss));
}

/* Indices i < n with flag[i], ascending, malloc'd (never NULL on success). */
static size_t *collect(const bool *flag, size_t n, size_t *count) {
  size_t *arr = malloc((n + 1) * sizeof(*arr));
  *count = 0;
  if (!arr) return NULL;
  for (size_t i = 0; i < n; i++)
    if (flag[i]) arr[(*count)++] = i;
  return arr;
}

/* After failed re-plans: every pipe of producer p in the working list that no longer
 * connects to the origin is removed (flagged in gone[] through orig[]). */
static mf_err_t sweep_orphans(const ctx_t *c, const mf_sched_producer_t *p,
                              const mf_sched_pipe_t *work,
                              const size_t *orig, size_t n_work, const char *dead,
                              bool *gone) {
  size_t *idx = malloc((n_work + 1) * sizeof(*idx));
  if (!idx) return MF_ERR_NO_MEMORY;
  size_t k = 0;
  for (size_t i = 0; i < n_work; i++)
    if (strcmp(work[i].producer_id, p->id) == 0) idx[k++] = i;
  tree_t t;
  mf_err_t err = tree_build(c, p, work, idx, k, dead, &t);
  free(idx);
  if (err != MF_OK) return err;
  for (size_t i = 1; i < t.n; i++)
    if (t.h[i].depth == UNREACHABLE && orig[t.h[i].pipe] != NONE)
      gone[orig[t.h[i].pipe]] = true;
  tree_free(&t);
  return MF_OK;
}

mf_err_t mf_sched_node_lost(const mf_sched_view_t *view, const char *dead_node_id,
                            mf_sched_loss_t *out, char *msg, size_t msg_size) {
  if (!out || !dead_node_id) {
    say(msg, msg_size, "bad node loss request (dead node id, output)");
    return MF_ERR_INVALID_ARG;
  }
  memset(out, 0, sizeof(*out));
  ctx_t c;
  mf_err_t err = ctx_init(&c, view, msg, msg_size);
  if (err != MF_OK) return err;
  if (node_find(&c, dead_node_id) == NONE) {
    say(msg, msg_size, "unknown node %s", dead_node_id);
    ctx_free(&c);
    return MF_ERR_NOT_FOUND;
  }
  const char *dead = dead_node_id;
  size_t np = view->n_pipes;
  bool *shard_gone = calloc(view->n_shards + 1, sizeof(bool));
  bool *prod_gone = calloc(view->n_producers + 1, sizeof(bool));
  bool *pipe_gone = calloc(np + 1, sizeof(bool));
  const char **dead_prods = malloc((view->n_producers + 1) * sizeof(*dead_prods));
  mf_sched_pipe_t *work = malloc((np + 1) * sizeof(*work));
  size_t *orig = malloc((np + 1) * sizeof(*orig));
  size_t *replan = malloc((np + 1) * sizeof(*replan));
  const mf_sched_producer_t **failed = malloc((np + 1) * sizeof(*failed));
  out->replans = malloc((np + 1) * sizeof(*out->replans));
  err = MF_ERR_NO_MEMORY;
  if (!shard_gone || !prod_gone || !pipe_gone || !dead_prods || !work || !orig || !replan ||
      !failed || !out->replans)
    goto done;

  for (size_t i = 0; i < view->n_shards; i++)
    shard_gone[i] = strcmp(view->shards[i].node_id, dead) == 0;
  size_t n_dead_prods = 0;
  for (size_t i = 0; i < view->n_producers; i++)
    if (strcmp(view->producers[i].node_id, dead) == 0) {
      prod_gone[i] = true;
      dead_prods[n_dead_prods++] = view->producers[i].id;
    }
  qsort(dead_prods, n_dead_prods, sizeof(*dead_prods), cmp_str_ptr);

  size_t n_work = 0, n_replan = 0, n_failed = 0;
  for (size_t i = 0; i < np; i++) {
    const mf_sched_pipe_t *pp = &view->pipes[i];
    bool prod_dead = str_in_sorted(dead_prods, n_dead_prods, pp->producer_id);
    bool target_dead = strcmp(pp->target_node_id, dead) == 0;
    bool source_dead = strcmp(pp->source_node_id, dead) == 0;
    if (prod_dead || target_dead || source_dead) {
      pipe_gone[i] = true;
      if (!prod_dead && !target_dead) replan[n_replan++] = i;
    } else {
      work[n_work] = *pp;
      orig[n_work++] = i;
    }
  }

  for (size_t r = 0; r < n_replan; r++) {
    const mf_sched_pipe_t *old = &view->pipes[replan[r]];
    mf_sched_pipe_request_t req = {old->producer_id, old->target_node_id, old->target_worker};
    mf_sched_pipe_decision_t d;
    mf_err_t perr = plan(&c, work, n_work, dead, &req, &d, NULL, 0);
    if (perr == MF_ERR_NO_MEMORY) goto done;
    if (perr == MF_OK && d.action == MF_SCHED_PIPE_OPEN) {
      work[n_work] = *old;
      work[n_work].source_node_id = d.source_node_id;
      work[n_work].source_worker = d.source_worker;
      orig[n_work++] = NONE;
      out->replans[out->n_replans++] = (mf_sched_replan_t){replan[r], d};
    } else {
      out->n_unfed++;
      const mf_sched_producer_t *p = producer_find(view, old->producer_id);
      if (p) failed[n_failed++] = p;
    }
  }
  for (size_t i = 0; i < n_failed; i++) {
    err = sweep_orphans(&c, failed[i], work, orig, n_work, dead, pipe_gone);
    if (err != MF_OK) goto done;
  }

  out->shards = collect(shard_gone, view->n_shards, &out->n_shards);
  out->producers = collect(prod_gone, view->n_producers, &out->n_producers);
  out->pipes = collect(pipe_gone, np, &out->n_pipes);
  if (!out->shards || !out->producers || !out->pipes) goto done;
  say(msg, msg_size,
      "node %s lost: %zu shard(s), %zu producer(s), %zu pipe(s) to remove, %zu re-planned, "
      "%zu unfed",
      dead, out->n_shards, out->n_producers, out->n_pipes, out->n_replans, out->n_unfed);
  err = MF_OK;

done:
  if (err != MF_OK) {
    mf_sched_loss_free(out);
    say(msg, msg_size, "out of memory");
  }
  free(shard_gone);
  free(prod_gone);
  free(pipe_gone);
  free(dead_prods);
  free(work);
  free(orig);
  free(replan);
  free(failed);
  ctx_free(&c);
  return err;
}

/* ======================= idle pipes and shards ======================= */

void mf_sched_idle_free(mf_sched_idle_t *idle) {
  if (!idle) return;
  free(idle->pipes);
  free(idle->shards);
  memset(idle, 0, sizeof(*idle));
}

static bool lingered(uint64_t now, uint64_t since, uint64_t linger) {
  return now >= since && now - since >= linger;
}

/* Pipes sorted by (producer, target) so a producer's pipes are one run and a source can
 * be found by bsearch within it. */
static int cmp_pipe_ptr(const void *a, const void *b) {
  const mf_sched_pipe_t *x = *(const mf_sched_pipe_t *const *)a;
  const mf_sched_pipe_t *y = *(const mf_sched_pipe_t *const *)b;
  int r = strcmp(x->producer_id, y->producer_id);
  if (r) return r;
  return key_cmp(x->target_node_id, x->target_worker, y->target_node_id, y->target_worker);
}

/* What keeps a shard open: a producer's origin or a pipe end that stays. router NULL =
 * a pipe of an unknown producer: holds whatever shard is on that worker. */
typedef struct {
  const char *node_id, *router_id;
  uint32_t worker;
} ref_t;

static int cmp_ref(const void *a, const void *b) {
  const ref_t *x = a, *y = b;
  return key_cmp(x->node_id, x->worker, y->node_id, y->worker);
}

static int cmp_producer_ptr(const void *a, const void *b) {
  return strcmp((*(const mf_sched_producer_t *const *)a)->id,
                (*(const mf_sched_producer_t *const *)b)->id);
}

mf_err_t mf_sched_idle_pipes(const mf_sched_view_t *view, uint64_t now_ms,
                             mf_sched_idle_t *out, char *msg, size_t msg_size) {
  if (!out) {
    say(msg, msg_size, "no output");
    return MF_ERR_INVALID_ARG;
  }
  memset(out, 0, sizeof(*out));
  ctx_t c;
  mf_err_t err = ctx_init(&c, view, msg, msg_size);
  if (err != MF_OK) return err;
  size_t np = view->n_pipes, ns = view->n_shards, nprod = view->n_producers;
  const mf_sched_pipe_t **sorted = malloc((np + 1) * sizeof(*sorted));
  bool *keep = calloc(np + 1, sizeof(bool));
  bool *seen = calloc(np + 1, sizeof(bool));
  size_t *parent = malloc((np + 1) * sizeof(*parent));
  bool *shard_close = calloc(ns + 1, sizeof(bool));
  ref_t *refs = malloc((2 * np + nprod + 1) * sizeof(*refs));
  const mf_sched_producer_t **prods = malloc((nprod + 1) * sizeof(*prods));
  err = MF_ERR_NO_MEMORY;
  if (!sorted || !keep || !seen || !parent || !shard_close || !refs || !prods) goto done;

  for (size_t i = 0; i < np; i++) sorted[i] = &view->pipes[i];
  qsort(sorted, np, sizeof(*sorted), cmp_pipe_ptr);
  /* parent[i]: the position in sorted[] of the pipe feeding sorted[i]'s source. */
  for (size_t lo = 0; lo < np;) {
    size_t hi = lo + 1;
    while (hi < np && strcmp(sorted[hi]->producer_id, sorted[lo]->producer_id) == 0) hi++;
    for (size_t i = lo; i < hi; i++) {
      parent[i] = NONE;
      size_t a = lo, b = hi;
      while (a < b) {
        size_t mid = a + (b - a) / 2;
        int r = key_cmp(sorted[mid]->target_node_id, sorted[mid]->target_worker,
                        sorted[i]->source_node_id, sorted[i]->source_worker);
        if (r == 0) {
          parent[i] = mid;
          break;
        }
        if (r < 0)
          a = mid + 1;
        else
          b = mid;
      }
    }
    lo = hi;
  }
  for (size_t i = 0; i < np; i++)
    keep[i] = sorted[i]->consumers > 0 ||
              !lingered(now_ms, sorted[i]->idle_since_ms, c.linger);
  /* A pipe that stays keeps every pipe above it (its feed) open. */
  for (size_t i = 0; i < np; i++) {
    if (!keep[i] || seen[i]) continue;
    seen[i] = true;
    for (size_t cur = parent[i]; cur != NONE && !seen[cur]; cur = parent[cur]) {
      keep[cur] = true;
      seen[cur] = true;
    }
  }

  for (size_t i = 0; i < nprod; i++) prods[i] = &view->producers[i];
  qsort(prods, nprod, sizeof(*prods), cmp_producer_ptr);
  size_t nr = 0;
  for (size_t i = 0; i < nprod; i++)
    refs[nr++] = (ref_t){prods[i]->node_id, prods[i]->router_id, prods[i]->worker};
  for (size_t i = 0; i < np; i++) {
    if (!keep[i]) continue;
    mf_sched_producer_t key = {.id = sorted[i]->producer_id};
    const mf_sched_producer_t *kp = &key;
    const mf_sched_producer_t *const *found =
        bsearch(&kp, prods, nprod, sizeof(*prods), cmp_producer_ptr);
    const char *router = found ? (*found)->router_id : NULL;
    refs[nr++] = (ref_t){sorted[i]->target_node_id, router, sorted[i]->target_worker};
    refs[nr++] = (ref_t){sorted[i]->source_node_id, router, sorted[i]->source_worker};
  }
  qsort(refs, nr, sizeof(*refs), cmp_ref);
  for (size_t i = 0; i < ns; i++) {
    const mf_sched_shard_t *s = &view->shards[i];
    if (s->transports > 0 || !lingered(now_ms, s->empty_since_ms, c.linger)) continue;
    size_t a = 0, b = nr; /* lower bound of (node, worker) */
    while (a < b) {
      size_t mid = a + (b - a) / 2;
      if (key_cmp(refs[mid].node_id, refs[mid].worker, s->node_id, s->worker) < 0)
        a = mid + 1;
      else
        b = mid;
    }
    bool held = false;
    for (; a < nr && same_shard(refs[a].node_id, refs[a].worker, s->node_id, s->worker); a++)
      if (!refs[a].router_id || strcmp(refs[a].router_id, s->router_id) == 0) held = true;
    shard_close[i] = !held;
  }

  bool *pipe_close = seen; /* reuse: by view index */
  for (size_t i = 0; i < np; i++) pipe_close[i] = false;
  for (size_t i = 0; i < np; i++)
    if (!keep[i]) pipe_close[sorted[i] - view->pipes] = true;
  out->pipes = collect(pipe_close, np, &out->n_pipes);
  out->shards = collect(shard_close, ns, &out->n_shards);
  if (!out->pipes || !out->shards) goto done;
  say(msg, msg_size, "%zu idle pipe(s) and %zu empty shard(s) to close", out->n_pipes,
      out->n_shards);
  err = MF_OK;

done:
  if (err != MF_OK) {
    mf_sched_idle_free(out);
    say(msg, msg_size, "out of memory");
  }
  free(sorted);
  free(keep);
  free(seen);
  free(parent);
  free(shard_close);
  free(refs);
  free(prods);
  ctx_free(&c);
  return err;
}
