/* The scheduler, first half: view validation and the per-call context (shared with
 * scheduler_pipes.c through scheduler_internal.h), transport placement and the pending
 * account. Pipe planning, node loss and idle detection are in scheduler_pipes.c. */
#include "controller/scheduler.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/scheduler_internal.h"

void mf_sched__say(char *msg, size_t size, const char *fmt, ...) {
  if (!msg || size == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, size, fmt, ap);
  va_end(ap);
}

void mf_sched__ctx_free(sched_ctx_t *c) {
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


static mf_err_t validate(const mf_sched_view_t *v, char *msg, size_t size) {
  if (!v) {
    mf_sched__say(msg, size, "no view");
    return MF_ERR_INVALID_ARG;
  }
  if ((v->n_nodes && !v->nodes) || (v->n_routers && !v->routers) ||
      (v->n_shards && !v->shards) || (v->n_producers && !v->producers) ||
      (v->n_pipes && !v->pipes)) {
    mf_sched__say(msg, size, "view has a count without its array");
    return MF_ERR_INVALID_ARG;
  }
  if (!isfinite(v->watermark) || v->watermark < 0 || v->watermark > 1) {
    mf_sched__say(msg, size, "watermark %g outside (0, 1]", v->watermark);
    return MF_ERR_INVALID_ARG;
  }
  for (size_t i = 0; i < v->n_nodes; i++) {
    const mf_sched_node_t *n = &v->nodes[i];
    if (!n->id || !n->id[0] || (n->n_workers && !n->workers) ||
        (unsigned)n->state > MF_SCHED_NODE_DEAD) {
      mf_sched__say(msg, size, "node #%zu: missing id, workers or bad state", i);
      return MF_ERR_INVALID_ARG;
    }
    if (n->state != MF_SCHED_NODE_ACTIVE) continue;
    for (size_t w = 0; w < n->n_workers; w++) {
      const mf_sched_worker_t *wk = &n->workers[w];
      if (!isfinite(wk->capacity_pps) || wk->capacity_pps <= 0) {
        mf_sched__say(msg, size, "node %s worker %zu: capacity_pps %g must be > 0", n->id, w,
                      wk->capacity_pps);
        return MF_ERR_INVALID_ARG;
      }
      if (!finite_nonneg(wk->load_pps) || !finite_nonneg(wk->cpu) ||
          !finite_nonneg(wk->pending_pps)) {
        mf_sched__say(msg, size,
                      "node %s worker %zu: load, cpu and pending must be finite and >= 0",
                      n->id, w);
        return MF_ERR_INVALID_ARG;
      }
    }
  }
  for (size_t i = 0; i < v->n_routers; i++)
    if (!v->routers[i]) {
      mf_sched__say(msg, size, "router #%zu has no id", i);
      return MF_ERR_INVALID_ARG;
    }
  for (size_t i = 0; i < v->n_shards; i++)
    if (!v->shards[i].router_id || !v->shards[i].node_id) {
      mf_sched__say(msg, size, "shard #%zu has no router or node id", i);
      return MF_ERR_INVALID_ARG;
    }
  for (size_t i = 0; i < v->n_producers; i++) {
    const mf_sched_producer_t *p = &v->producers[i];
    if (!p->id || !p->router_id || !p->node_id) {
      mf_sched__say(msg, size, "producer #%zu has no id, router or node id", i);
      return MF_ERR_INVALID_ARG;
    }
  }
  for (size_t i = 0; i < v->n_pipes; i++) {
    const mf_sched_pipe_t *p = &v->pipes[i];
    if (!p->producer_id || !p->target_node_id || !p->source_node_id) {
      mf_sched__say(msg, size, "pipe #%zu has no producer, target or source node id", i);
      return MF_ERR_INVALID_ARG;
    }
  }
  return MF_OK;
}

mf_err_t mf_sched__ctx_init(sched_ctx_t *c, const mf_sched_view_t *v, char *msg, size_t size) {
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
    mf_sched__ctx_free(c);
    mf_sched__say(msg, size, "out of memory");
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
      mf_sched__say(msg, size, "node %s listed twice", c->by_id[i]->id);
      mf_sched__ctx_free(c);
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

size_t mf_sched__node_find(const sched_ctx_t *c, const char *id) {
  for (size_t h = (size_t)str_hash(id) & c->mask; c->slots[h]; h = (h + 1) & c->mask) {
    const char *cand = c->v->nodes[c->slots[h] - 1].id;
    if (cand == id || strcmp(cand, id) == 0) return c->slots[h] - 1;
  }
  return NONE;
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
static slot_t pick(const sched_ctx_t *c, const place_state_t *st, double pps) {
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
static slot_t fill_shard(const sched_ctx_t *c, const place_state_t *st, double pps) {
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

/* Free capacities this close count as equal when a client's node is preferred: measured
 * load (CPU x capacity) is never exactly the same on two idle nodes. */
#define PREFER_SLACK 0.05

static bool about_equal(double a, double b) {
  double diff = a > b ? a - b : b - a, big = a > b ? a : b;
  return diff <= PREFER_SLACK * big;
}

/* Rule 3b: the node to open a shard on: has a fitting worker; in use first; most free
 * capacity (within PREFER_SLACK, the client's node); node id. */
static size_t freest_node(const sched_ctx_t *c, const place_state_t *st, double pps,
                          const char *prefer) {
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
    else if (prefer && about_equal(free_pps, best_free) &&
             (strcmp(n->id, prefer) == 0) != (strcmp(c->v->nodes[best].id, prefer) == 0))
      better = strcmp(n->id, prefer) == 0; /* about as free: the client's node */
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

static mf_err_t place_state_build(const sched_ctx_t *c, const char *router, place_state_t *st) {
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
    size_t ni = mf_sched__node_find(c, s->node_id);
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
    size_t ni = mf_sched__node_find(c, p->node_id);
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

static slot_t place(const sched_ctx_t *c, place_state_t *st, double pps, const char *prefer,
                    mf_sched_rule_t *rule) {
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
  size_t node = freest_node(c, st, pps, prefer);
  if (node == NONE) return (slot_t){NONE, 0};
  for (size_t ni = 0; ni < v->n_nodes; ni++) st->mask[ni] = ni == node;
  return pick(c, st, pps);
}

mf_err_t mf_sched_place_transport(const mf_sched_view_t *view,
                                  const mf_sched_place_request_t *req,
                                  mf_sched_placement_t *out, char *msg, size_t msg_size) {
  if (!req || !out || !req->router_id || !finite_nonneg(req->expected_pps)) {
    mf_sched__say(msg, msg_size, "bad placement request (router id, expected_pps >= 0, output)");
    return MF_ERR_INVALID_ARG;
  }
  sched_ctx_t c;
  mf_err_t err = mf_sched__ctx_init(&c, view, msg, msg_size);
  if (err != MF_OK) return err;
  bool known = false;
  for (size_t i = 0; i < view->n_routers && !known; i++)
    known = strcmp(view->routers[i], req->router_id) == 0;
  size_t active = 0;
  for (size_t ni = 0; ni < view->n_nodes; ni++) active += node_active(&c, ni);
  if (!known) {
    mf_sched__say(msg, msg_size, "unknown router %s", req->router_id);
    mf_sched__ctx_free(&c);
    return MF_ERR_NOT_FOUND;
  }
  if (active == 0) {
    mf_sched__say(msg, msg_size, "no active node to place router %s on", req->router_id);
    mf_sched__ctx_free(&c);
    return MF_ERR_STATE;
  }
  place_state_t st;
  err = place_state_build(&c, req->router_id, &st);
  if (err != MF_OK) {
    mf_sched__say(msg, msg_size, "out of memory");
  } else {
    mf_sched_rule_t rule;
    slot_t s = place(&c, &st, req->expected_pps, req->prefer_node_id, &rule);
    if (s.node == NONE) {
      mf_sched__say(msg, msg_size,
                    "cluster full: no worker of %zu active node(s) has %g pps of headroom "
                    "below the %g watermark",
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
      mf_sched__say(msg, msg_size, "%s: router %s on node %s worker %u%s (load %g + %g of %g pps)",
                    mf_sched_rule_name(rule), req->router_id, n->id, s.worker,
                    out->new_shard ? ", new shard" : "", out->load_pps, req->expected_pps,
                    worker_limit(&c, w));
    }
  }
  place_state_free(&st);
  mf_sched__ctx_free(&c);
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
