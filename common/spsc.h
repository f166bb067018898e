/* Lock-free single-producer single-consumer ring of pointers.
 *
 * Exactly one thread pushes and exactly one thread pops (they may be the same thread).
 * Wait-free on both sides: a full ring refuses the push, an empty ring refuses the pop;
 * the caller decides whether to drop, retry or wake the other side (e.g. with a mailbox).
 * Items are opaque pointers owned by whoever currently holds them: the ring never frees
 * them. Used for packet hand-off between workers and buffer return rings. */
#ifndef MF_SPSC_H
#define MF_SPSC_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

typedef struct mf_spsc mf_spsc_t;

/* capacity >= 1, rounded up to a power of two, at most 2^30. */
mf_err_t mf_spsc_create(uint32_t capacity, mf_spsc_t **out);
/* The ring must be idle (no thread inside push/pop). Items still queued are not freed. */
void mf_spsc_destroy(mf_spsc_t *ring);

uint32_t mf_spsc_capacity(const mf_spsc_t *ring);
/* Items queued now; exact only from the producer or consumer thread when the other is idle. */
uint32_t mf_spsc_size(const mf_spsc_t *ring);

/* Producer thread only. False when full. */
bool mf_spsc_push(mf_spsc_t *ring, void *item);
/* Producer thread only. Pushes up to n items in order; returns how many fit. */
uint32_t mf_spsc_push_many(mf_spsc_t *ring, void *const *items, uint32_t n);

/* Consumer thread only. False when empty. */
bool mf_spsc_pop(mf_spsc_t *ring, void **item);
/* Consumer thread only. Pops up to max items in order; returns how many. */
uint32_t mf_spsc_pop_many(mf_spsc_t *ring, void **items, uint32_t max);

#endif
