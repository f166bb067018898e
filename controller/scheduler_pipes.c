/* The scheduler, second half: pipe planning (the distribution tree of one producer), node
 * loss and idle pipes/shards. Shares the per-call context with scheduler.c through
 * scheduler_internal.h. */
#include "controller/scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/scheduler_internal.h"

/* ======================= pipes: the tree of one producer ======================= */

const char *mf_sched_pipe_kind_name(mf_sched_pipe_kind_t kind) {
  switch (kind) {
    case MF_SCHED_PIPE_RING: return "ring";
    case MF_SCHED_PIPE_TRANSPORT: return "transport";
  }
  return "unknown";
}

/* Flat worker index of (node, worker), or NONE when the node or worker is unknown. */
static size_t flat_of(const sched_ctx_t *c, const char *node, uint32_t worker, size_t *ni_out) {
  size_t ni = mf_sched__node_find(c, node);
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

static size_t tree_find(const sched_ctx_t *c, const tree_t *t, const char *node, uint32_t worker) {
  size_t f = flat_of(c, node, worker, NULL);
  return f == NONE ? NONE : t->pos[f];
}

/* Builds the distribution tree of producer p (origin on a known node) from
 * pipes[idx[0..k)] (all of p). Holders on node `excluded` (may be NULL) are cut off, as is
 * anything not connected to the origin (depth UNREACHABLE). Pipes into unknown nodes or
 * workers, into the origin, or duplicating a target are ignored. Lookups go through flat
 * worker indices: no sorting, no string keys beyond one node lookup per pipe end. */
static mf_err_t tree_build(const sched_ctx_t *c, const mf_sched_producer_t *p,
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

static bool dead_or_excluded(const sched_ctx_t *c, size_t ni, const char *excluded) {
  if (ni == NONE) return true;
  const mf_sched_node_t *n = &c->v->nodes[ni];
  return n->state == MF_SCHED_NODE_DEAD || (excluded && strcmp(n->id, excluded) == 0);
}

/* plan_pipe over an explicit pipe list (the view's, or node_lost's working copy). */
static mf_err_t plan(const sched_ctx_t *c, const mf_sched_pipe_t *pipes, size_t n_pipes,
                     const char *excluded, const mf_sched_pipe_request_t *req,
                     mf_sched_pipe_decision_t *out, char *msg, size_t size) {
  const mf_sched_view_t *v = c->v;
  const mf_sched_producer_t *p = producer_find(v, req->producer_id);
  if (!p) {
    mf_sched__say(msg, size, "unknown producer %s", req->producer_id);
    return MF_ERR_NOT_FOUND;
  }
  size_t tni = mf_sched__node_find(c, req->target_node_id);
  size_t oni = mf_sched__node_find(c, p->node_id);
  if (tni == NONE || req->target_worker >= v->nodes[tni].n_workers ||
      !shard_exists(v, p->router_id, req->target_node_id, req->target_worker)) {
    mf_sched__say(msg, size, "no shard of router %s on node %s worker %u", p->router_id,
                  req->target_node_id, req->target_worker);
    return MF_ERR_NOT_FOUND;
  }
  if (oni == NONE || p->worker >= v->nodes[oni].n_workers) {
    mf_sched__say(msg, size, "producer %s: origin node %s worker %u is unknown", p->id, p->node_id,
                  p->worker);
    return MF_ERR_NOT_FOUND;
  }
  if (dead_or_excluded(c, tni, excluded) || dead_or_excluded(c, oni, excluded)) {
    mf_sched__say(msg, size, "producer %s: the origin (node %s) or target (node %s) is dead", p->id,
                  p->node_id, req->target_node_id);
    return MF_ERR_STATE;
  }
  memset(out, 0, sizeof(*out));
  if (same_shard(p->node_id, p->worker, req->target_node_id, req->target_worker)) {
    *out = (mf_sched_pipe_decision_t){MF_SCHED_PIPE_LOCAL, MF_SCHED_PIPE_RING, p->node_id,
                                      p->worker, 0, NONE};
    mf_sched__say(msg, size, "producer %s is local to node %s worker %u", p->id, p->node_id,
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
    mf_sched__say(msg, size, "out of memory");
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
    mf_sched__say(msg, size, "producer %s already piped to node %s worker %u", p->id,
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
    mf_sched__say(msg, size,
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
  mf_sched__say(msg, size,
                "producer %s: open %s pipe node %s worker %u -> node %s worker %u (%s)", p->id,
                mf_sched_pipe_kind_name(out->kind), s->node_id, s->worker, req->target_node_id,
                req->target_worker, src == 0 ? "origin" : "relay");
  tree_free(&t);
  return MF_OK;
}

mf_err_t mf_sched_plan_pipe(const mf_sched_view_t *view, const mf_sched_pipe_request_t *req,
                            mf_sched_pipe_decision_t *out, char *msg, size_t msg_size) {
  if (!req || !out || !req->producer_id || !req->target_node_id) {
    mf_sched__say(msg, msg_size, "bad pipe request (producer id, target node id, output)");
    return MF_ERR_INVALID_ARG;
  }
  sched_ctx_t c;
  mf_err_t err = mf_sched__ctx_init(&c, view, msg, msg_size);
  if (err != MF_OK) return err;
  err = plan(&c, view->pipes, view->n_pipes, NULL, req, out, msg, msg_size);
  mf_sched__ctx_free(&c);
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
static mf_err_t sweep_orphans(const sched_ctx_t *c, const mf_sched_producer_t *p,
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
    mf_sched__say(msg, msg_size, "bad node loss request (dead node id, output)");
    return MF_ERR_INVALID_ARG;
  }
  memset(out, 0, sizeof(*out));
  sched_ctx_t c;
  mf_err_t err = mf_sched__ctx_init(&c, view, msg, msg_size);
  if (err != MF_OK) return err;
  if (mf_sched__node_find(&c, dead_node_id) == NONE) {
    mf_sched__say(msg, msg_size, "unknown node %s", dead_node_id);
    mf_sched__ctx_free(&c);
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
  mf_sched__say(msg, msg_size,
                "node %s lost: %zu shard(s), %zu producer(s), %zu pipe(s) to remove, "
                "%zu re-planned, %zu unfed",
                dead, out->n_shards, out->n_producers, out->n_pipes, out->n_replans, out->n_unfed);
  err = MF_OK;

done:
  if (err != MF_OK) {
    mf_sched_loss_free(out);
    mf_sched__say(msg, msg_size, "out of memory");
  }
  free(shard_gone);
  free(prod_gone);
  free(pipe_gone);
  free(dead_prods);
  free(work);
  free(orig);
  free(replan);
  free(failed);
  mf_sched__ctx_free(&c);
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
    mf_sched__say(msg, msg_size, "no output");
    return MF_ERR_INVALID_ARG;
  }
  memset(out, 0, sizeof(*out));
  sched_ctx_t c;
  mf_err_t err = mf_sched__ctx_init(&c, view, msg, msg_size);
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
  mf_sched__say(msg, msg_size, "%zu idle pipe(s) and %zu empty shard(s) to close", out->n_pipes,
                out->n_shards);
  err = MF_OK;

done:
  if (err != MF_OK) {
    mf_sched_idle_free(out);
    mf_sched__say(msg, msg_size, "out of memory");
  }
  free(sorted);
  free(keep);
  free(seen);
  free(parent);
  free(shard_close);
  free(refs);
  free(prods);
  mf_sched__ctx_free(&c);
  return err;
}
