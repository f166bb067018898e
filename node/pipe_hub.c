/* Intra-node pipes; see pipe_hub.h for the contract.
 *
 * Per ordered link (src, dst): a forward ring (src pushes slot pointers, dst pops) and a
 * return ring (dst pushes them back, src pops), plus ring_capacity packet slots owned by src
 * and handed out from a src-only free stack. A packet in flight always occupies one slot, so
 * neither ring can overflow: the slot count, not the ring, is what bounds a link.
 *
 * Slots are handed out first in index order (`fresh`) and only then from the free stack, so
 * a link that never carries much traffic never touches most of its memory.
 *
 * Cross-thread state is limited to the rings (acquire/release inside mf_spsc), the per-worker
 * `accepting`/`wakeable` flags and the uv_async_t handles (uv_async_send is thread-safe).
 * Everything else is written by exactly one worker: link free stacks by the source, binding
 * tables and counters by their worker. */
#define MF_LOG_MODULE "pipe_hub"
#include "node/pipe_hub.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/hashmap.h"
#include "common/log.h"
#include "common/spsc.h"

#define PIPE_CACHE_LINE 64
/* Packets moved per ring operation. */
#define PIPE_BATCH 64
/* Packets taken from one link per async callback before the worker re-arms itself and lets
 * its loop run: one busy source cannot starve the other links or the worker's sockets. */
#define PIPE_LINK_BUDGET 256

enum { W_DETACHED = 0, W_ATTACHED, W_QUIESCED, W_CLOSING };

typedef struct {
  mf_pipe_input_fn fn;
  void *ud;
} pipe_binding_t;

typedef struct {
  /* Read by both ends, written only at create. */
  alignas(PIPE_CACHE_LINE) mf_spsc_t *fwd;
  mf_spsc_t *ret;
  mf_pipe_packet_t *slots;
  mf_pipe_packet_t **free_stack;
  /* Source thread only; on its own line so the target's reads above do not bounce it. */
  alignas(PIPE_CACHE_LINE) uint32_t free_count;
  uint32_t fresh; /* slots[0, fresh) were handed out at least once */
} pipe_link_t;

typedef struct {
  alignas(PIPE_CACHE_LINE) uv_async_t async;
  atomic_bool accepting; /* senders may push towards this worker (ATTACHED) */
  atomic_bool wakeable;  /* async initialised and not closing (ATTACHED or QUIESCED) */
  int state;             /* this worker's thread only */
  uint32_t index;
  mf_pipe_hub_t *hub;
  mf_hashmap_t *bindings; /* pipe_id -> pipe_binding_t*, this worker's thread only */
  mf_pipe_hub_stats_t stats;
} pipe_worker_t;

struct mf_pipe_hub {
  uint32_t workers;
  uint32_t ring_capacity;
  atomic_uint next_id;
  pipe_worker_t *w;
  pipe_link_t *links; /* [src * workers + dst]; the diagonal stays empty */
};

static pipe_link_t *link_at(const mf_pipe_hub_t *hub, uint32_t src, uint32_t dst) {
  return &hub->links[(size_t)src * hub->workers + dst];
}

static uint32_t link_outstanding(const pipe_link_t *l) { return l->fresh - l->free_count; }

/* Any thread: no-op once the target started closing its handle. */
static void wake(pipe_worker_t *w) {
  if (atomic_load_explicit(&w->wakeable, memory_order_acquire)) uv_async_send(&w->async);
}

/* Source thread: unref what the target handed back on this link and recycle the slots. */
static uint32_t reclaim_link(pipe_worker_t *src, pipe_link_t *l) {
  void *batch[PIPE_BATCH];
  uint32_t total = 0, n;
  while ((n = mf_spsc_pop_many(l->ret, batch, PIPE_BATCH)) > 0) {
    for (uint32_t i = 0; i < n; i++) {
      mf_pipe_packet_t *slot = batch[i];
      mf_buf_unref(slot->buf);
      slot->buf = NULL;
      l->free_stack[l->free_count++] = slot;
    }
    total += n;
  }
  src->stats.returned += total;
  src->stats.in_flight -= total;
  return total;
}

static void reclaim_all(mf_pipe_hub_t *hub, pipe_worker_t *src) {
  for (uint32_t dst = 0; dst < hub->workers; dst++) {
    if (dst == src->index) continue;
    pipe_link_t *l = link_at(hub, src->index, dst);
    if (link_outstanding(l)) reclaim_link(src, l);
  }
}

/* Target thread: deliver up to PIPE_LINK_BUDGET packets from one link and hand them back.
 * True when the budget ran out (more may be waiting). */
static bool drain_link(mf_pipe_hub_t *hub, pipe_worker_t *tw, uint32_t src) {
  pipe_link_t *l = link_at(hub, src, tw->index);
  void *batch[PIPE_BATCH];
  uint32_t done = 0;
  while (done < PIPE_LINK_BUDGET) {
    uint32_t n = mf_spsc_pop_many(l->fwd, batch, PIPE_BATCH);
    if (n == 0) break;
    for (uint32_t i = 0; i < n; i++) {
      const mf_pipe_packet_t *pkt = batch[i];
      /* Looked up per packet: a callback may unbind or rebind pipes, even its own. */
      pipe_binding_t *b = tw->bindings ? mf_hashmap_get(tw->bindings, &pkt->pipe_id) : NULL;
      if (b) {
        b->fn(b->ud, pkt);
        tw->stats.delivered++;
      } else {
        tw->stats.dropped_unbound++;
      }
    }
    uint32_t pushed = mf_spsc_push_many(l->ret, batch, n);
    if (pushed != n) {
      /* Impossible while slots bound the link; losing them would leak buffers silently. */
      MF_LOG_ERROR("return ring %u->%u refused %u packets (leaked)", src, tw->index,
                   n - pushed);
    }
    done += n;
  }
  if (done) wake(&hub->w[src]);
  return done >= PIPE_LINK_BUDGET;
}

static bool drain_all(mf_pipe_hub_t *hub, pipe_worker_t *tw) {
  bool more = false;
  for (uint32_t src = 0; src < hub->workers; src++) {
    if (src != tw->index && drain_link(hub, tw, src)) more = true;
  }
  return more;
}

static void on_async(uv_async_t *handle) {
  pipe_worker_t *w = handle->data;
  mf_pipe_hub_t *hub = w->hub;
  reclaim_all(hub, w);
  bool more = drain_all(hub, w);
  /* Re-arm instead of looping: the loop gets to run its other handles in between. A
   * callback that detached its own worker leaves the handle alone. */
  if (more && w->state != W_CLOSING) uv_async_send(&w->async);
}

static void on_closed(uv_handle_t *handle) {
  pipe_worker_t *w = handle->data;
  w->state = W_DETACHED;
}

static void free_binding(const void *key, void *value, void *ud) { free(value); }

static void drop_bindings(pipe_worker_t *w) {
  if (!w->bindings) return;
  mf_hashmap_foreach(w->bindings, free_binding, NULL);
  mf_hashmap_destroy(w->bindings);
  w->bindings = NULL;
}

mf_err_t mf_pipe_hub_create(uint32_t workers, uint32_t ring_capacity, mf_pipe_hub_t **out) {
  if (!out || workers == 0 || workers > MF_PIPE_HUB_MAX_WORKERS ||
      ring_capacity > MF_PIPE_HUB_MAX_RING)
    return MF_ERR_INVALID_ARG;
  uint32_t cap = ring_capacity ? ring_capacity : MF_PIPE_HUB_DEFAULT_RING;
  mf_pipe_hub_t *hub = calloc(1, sizeof *hub);
  if (!hub) return MF_ERR_NO_MEMORY;
  hub->workers = workers;
  hub->ring_capacity = cap;
  atomic_init(&hub->next_id, 0);
  size_t nlinks = (size_t)workers * workers;
  /* Sizes are multiples of the alignment: both structs are cache-line aligned. */
  hub->w = aligned_alloc(PIPE_CACHE_LINE, sizeof *hub->w * workers);
  hub->links = aligned_alloc(PIPE_CACHE_LINE, sizeof *hub->links * nlinks);
  if (!hub->w || !hub->links) {
    free(hub->w);
    free(hub->links);
    free(hub);
    return MF_ERR_NO_MEMORY;
  }
  memset(hub->w, 0, sizeof *hub->w * workers);
  memset(hub->links, 0, sizeof *hub->links * nlinks);
  for (uint32_t i = 0; i < workers; i++) {
    pipe_worker_t *w = &hub->w[i];
    w->index = i;
    w->hub = hub;
    w->state = W_DETACHED;
    atomic_init(&w->accepting, false);
    atomic_init(&w->wakeable, false);
  }
  for (uint32_t s = 0; s < workers; s++) {
    for (uint32_t d = 0; d < workers; d++) {
      if (s == d) continue;
      pipe_link_t *l = link_at(hub, s, d);
      mf_err_t err = mf_spsc_create(cap, &l->fwd);
      if (!err) err = mf_spsc_create(cap, &l->ret);
      if (!err) {
        l->slots = malloc(sizeof *l->slots * cap);
        l->free_stack = malloc(sizeof *l->free_stack * cap);
        if (!l->slots || !l->free_stack) err = MF_ERR_NO_MEMORY;
      }
      if (err) {
        mf_pipe_hub_destroy(hub);
        return err;
      }
    }
  }
  MF_LOG_DEBUG("pipe hub: %u workers, %u slots per link", workers, cap);
  *out = hub;
  return MF_OK;
}

void mf_pipe_hub_destroy(mf_pipe_hub_t *hub) {
  if (!hub) return;
  for (uint32_t i = 0; i < hub->workers; i++) {
    pipe_worker_t *w = &hub->w[i];
    if (w->state != W_DETACHED)
      MF_LOG_ERROR("pipe hub destroyed while worker %u is still attached", i);
    drop_bindings(w);
  }
  uint64_t leaked = 0;
  for (uint32_t s = 0; s < hub->workers; s++) {
    for (uint32_t d = 0; d < hub->workers; d++) {
      if (s == d) continue;
      pipe_link_t *l = link_at(hub, s, d);
      leaked += link_outstanding(l);
      mf_spsc_destroy(l->fwd);
      mf_spsc_destroy(l->ret);
      free(l->slots);
      free(l->free_stack);
    }
  }
  /* Their pools may already be gone, and they belong to other threads: leave them. */
  if (leaked) MF_LOG_ERROR("pipe hub destroyed with %llu buffers still lent",
                           (unsigned long long)leaked);
  free(hub->w);
  free(hub->links);
  free(hub);
}

uint32_t mf_pipe_hub_new_id(mf_pipe_hub_t *hub) {
  uint32_t id;
  do {
    id = atomic_fetch_add_explicit(&hub->next_id, 1, memory_order_relaxed) + 1;
  } while (id == 0);
  return id;
}

mf_err_t mf_pipe_hub_attach(mf_pipe_hub_t *hub, uint32_t w, uv_loop_t *loop) {
  if (!hub || w >= hub->workers || !loop) return MF_ERR_INVALID_ARG;
  pipe_worker_t *pw = &hub->w[w];
  if (pw->state != W_DETACHED) return MF_ERR_STATE;
  mf_err_t err = mf_hashmap_create(sizeof(uint32_t), 16, &pw->bindings);
  if (err) return err;
  int rc = uv_async_init(loop, &pw->async, on_async);
  if (rc) {
    MF_LOG_ERROR("worker %u: uv_async_init: %s", w, uv_strerror(rc));
    drop_bindings(pw);
    return MF_ERR_IO;
  }
  pw->async.data = pw;
  pw->state = W_ATTACHED;
  /* release: the initialised handle is visible to any sender that sees the flag */
  atomic_store_explicit(&pw->wakeable, true, memory_order_release);
  atomic_store_explicit(&pw->accepting, true, memory_order_release);
  MF_LOG_DEBUG("worker %u attached", w);
  /* Packets returned while detached (a source may send without being attached) wait in the
   * return rings; collect them on the first pass of the loop. */
  uv_async_send(&pw->async);
  return MF_OK;
}

mf_err_t mf_pipe_hub_bind(mf_pipe_hub_t *hub, uint32_t w, uint32_t pipe_id,
                          mf_pipe_input_fn fn, void *ud) {
  if (!hub || w >= hub->workers || pipe_id == 0 || !fn) return MF_ERR_INVALID_ARG;
  pipe_worker_t *pw = &hub->w[w];
  if (pw->state != W_ATTACHED) return MF_ERR_STATE;
  pipe_binding_t *b = mf_hashmap_get(pw->bindings, &pipe_id);
  if (b) {
    b->fn = fn;
    b->ud = ud;
    return MF_OK;
  }
  b = malloc(sizeof *b);
  if (!b) return MF_ERR_NO_MEMORY;
  b->fn = fn;
  b->ud = ud;
  mf_err_t err = mf_hashmap_put(pw->bindings, &pipe_id, b);
  if (err) free(b);
  return err;
}

void mf_pipe_hub_unbind(mf_pipe_hub_t *hub, uint32_t w, uint32_t pipe_id) {
  if (!hub || w >= hub->workers) return;
  pipe_worker_t *pw = &hub->w[w];
  if (!pw->bindings) return;
  free(mf_hashmap_remove(pw->bindings, &pipe_id));
}

bool mf_pipe_hub_send(mf_pipe_hub_t *hub, uint32_t src, uint32_t dst,
                      const mf_pipe_packet_t *pkt) {
  if (src >= hub->workers || !pkt || !pkt->buf) return false;
  pipe_worker_t *sw = &hub->w[src];
  if (dst >= hub->workers || dst == src) {
    sw->stats.dropped_unbound++;
    return false;
  }
  pipe_worker_t *dw = &hub->w[dst];
  if (!atomic_load_explicit(&dw->accepting, memory_order_acquire)) {
    sw->stats.dropped_unbound++;
    return false;
  }
  pipe_link_t *l = link_at(hub, src, dst);
  mf_pipe_packet_t *slot;
  if (l->free_count == 0 && l->fresh == hub->ring_capacity) reclaim_link(sw, l);
  if (l->free_count) {
    slot = l->free_stack[--l->free_count];
  } else if (l->fresh < hub->ring_capacity) {
    slot = &l->slots[l->fresh++];
  } else {
    sw->stats.dropped_full++;
    return false;
  }
  *slot = *pkt;
  mf_buf_ref(pkt->buf);
  if (!mf_spsc_push(l->fwd, slot)) {
    /* Impossible while slots bound the link (the ring holds at least ring_capacity). */
    mf_buf_unref(pkt->buf);
    slot->buf = NULL;
    l->free_stack[l->free_count++] = slot;
    sw->stats.dropped_full++;
    return false;
  }
  sw->stats.sent++;
  sw->stats.in_flight++;
  uv_async_send(&dw->async);
  return true;
}

void mf_pipe_hub_quiesce(mf_pipe_hub_t *hub, uint32_t w) {
  if (!hub || w >= hub->workers) return;
  pipe_worker_t *pw = &hub->w[w];
  if (pw->state != W_ATTACHED) return;
  atomic_store_explicit(&pw->accepting, false, memory_order_release);
  pw->state = W_QUIESCED;
  drop_bindings(pw);
  /* Without bindings every waiting packet goes back undelivered (dropped_unbound). */
  while (drain_all(hub, pw)) {
  }
  reclaim_all(hub, pw);
  MF_LOG_DEBUG("worker %u quiesced", w);
}

void mf_pipe_hub_detach(mf_pipe_hub_t *hub, uint32_t w) {
  if (!hub || w >= hub->workers) return;
  pipe_worker_t *pw = &hub->w[w];
  if (pw->state == W_ATTACHED) mf_pipe_hub_quiesce(hub, w);
  if (pw->state != W_QUIESCED) return;
  reclaim_all(hub, pw);
  if (pw->stats.in_flight)
    MF_LOG_ERROR("worker %u detached with %u buffers still lent (shutdown order broken)", w,
                 pw->stats.in_flight);
  atomic_store_explicit(&pw->wakeable, false, memory_order_release);
  pw->state = W_CLOSING;
  uv_close((uv_handle_t *)&pw->async, on_closed);
  MF_LOG_DEBUG("worker %u detached", w);
}

void mf_pipe_hub_stats(const mf_pipe_hub_t *hub, uint32_t w, mf_pipe_hub_stats_t *out) {
  if (!hub || w >= hub->workers) {
    memset(out, 0, sizeof *out);
    return;
  }
  *out = hub->w[w].stats;
}
