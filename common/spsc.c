#include "spsc.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>

#define MF_CACHE_LINE 64

/* head is advanced by the consumer, tail by the producer. Each side also keeps a cached copy
 * of the other side's index so it touches the shared cache line only when the cached view
 * says the ring is full (producer) or empty (consumer). Indexes run freely and wrap at 2^32;
 * capacity is a power of two <= 2^30, so tail - head is always the fill level. */
struct mf_spsc {
  alignas(MF_CACHE_LINE) _Atomic uint32_t head;
  uint32_t tail_cache; /* consumer's view of tail */
  alignas(MF_CACHE_LINE) _Atomic uint32_t tail;
  uint32_t head_cache; /* producer's view of head */
  alignas(MF_CACHE_LINE) uint32_t mask;
  void **slots;
};

mf_err_t mf_spsc_create(uint32_t capacity, mf_spsc_t **out) {
  if (capacity == 0 || capacity > (1u << 30)) return MF_ERR_INVALID_ARG;
  uint32_t cap = 1;
  while (cap < capacity) cap <<= 1;
  mf_spsc_t *r = aligned_alloc(MF_CACHE_LINE, sizeof *r);
  if (!r) return MF_ERR_NO_MEMORY;
  r->slots = calloc(cap, sizeof *r->slots);
  if (!r->slots) {
    free(r);
    return MF_ERR_NO_MEMORY;
  }
  atomic_init(&r->head, 0);
  atomic_init(&r->tail, 0);
  r->tail_cache = 0;
  r->head_cache = 0;
  r->mask = cap - 1;
  *out = r;
  return MF_OK;
}

void mf_spsc_destroy(mf_spsc_t *ring) {
  if (!ring) return;
  free(ring->slots);
  free(ring);
}

uint32_t mf_spsc_capacity(const mf_spsc_t *ring) { return ring->mask + 1; }

uint32_t mf_spsc_size(const mf_spsc_t *ring) {
  uint32_t tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
  uint32_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
  return tail - head;
}

uint32_t mf_spsc_push_many(mf_spsc_t *ring, void *const *items, uint32_t n) {
  uint32_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
  uint32_t cap = ring->mask + 1;
  uint32_t free_slots = cap - (tail - ring->head_cache);
  if (free_slots < n) {
    ring->head_cache = atomic_load_explicit(&ring->head, memory_order_acquire);
    free_slots = cap - (tail - ring->head_cache);
  }
  if (n > free_slots) n = free_slots;
  for (uint32_t i = 0; i < n; i++) ring->slots[(tail + i) & ring->mask] = items[i];
  /* release: the slot writes above become visible before the consumer sees the new tail */
  atomic_store_explicit(&ring->tail, tail + n, memory_order_release);
  return n;
}

bool mf_spsc_push(mf_spsc_t *ring, void *item) { return mf_spsc_push_many(ring, &item, 1) == 1; }

uint32_t mf_spsc_pop_many(mf_spsc_t *ring, void **items, uint32_t max) {
  uint32_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
  uint32_t avail = ring->tail_cache - head;
  if (avail < max) {
    ring->tail_cache = atomic_load_explicit(&ring->tail, memory_order_acquire);
    avail = ring->tail_cache - head;
  }
  if (max > avail) max = avail;
  for (uint32_t i = 0; i < max; i++) items[i] = ring->slots[(head + i) & ring->mask];
  /* release: the slot reads above finish before the producer may overwrite those slots */
  atomic_store_explicit(&ring->head, head + max, memory_order_release);
  return max;
}

bool mf_spsc_pop(mf_spsc_t *ring, void **item) { return mf_spsc_pop_many(ring, item, 1) == 1; }
