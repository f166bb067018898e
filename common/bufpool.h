/* Fixed-size packet buffers from a preallocated pool: no malloc on the packet path.
 *
 * A pool belongs to ONE thread (its worker); get/ref/unref are called only there. The
 * reference count is therefore plain (not atomic): a retransmission store or several
 * consumers may hold the same buffer, and it returns to the pool when the last holder
 * unrefs it. To lend a buffer to another thread (intra-node pipes), the owner takes a
 * reference, passes the pointer through an SPSC ring, and the borrower hands it back
 * through a return ring so that the OWNER calls mf_buf_unref.
 *
 * Exhaustion is not an error condition of the process: get returns NULL, the caller drops
 * the packet, and the pool counts it (stats.exhausted). */
#ifndef MF_BUFPOOL_H
#define MF_BUFPOOL_H

#include <stdint.h>

#include "err.h"

typedef struct mf_bufpool mf_bufpool_t;

typedef struct mf_buf {
  uint8_t *data; /* cap bytes, 64-byte aligned; owned by the pool */
  uint32_t len;  /* bytes in use, set by the caller */
  uint32_t cap;
  uint32_t refs;
  uint32_t index; /* slot in the pool */
  mf_bufpool_t *pool;
} mf_buf_t;

typedef struct {
  uint32_t capacity;   /* buffers in the pool */
  uint32_t buf_size;   /* bytes per buffer (rounded up to 64) */
  uint32_t in_use;     /* buffers handed out now */
  uint32_t high_water; /* most buffers ever in use at once */
  uint64_t gets;       /* successful gets */
  uint64_t exhausted;  /* gets that found no free buffer */
} mf_bufpool_stats_t;

/* Allocates count buffers of buf_size bytes up front (count, buf_size >= 1). */
mf_err_t mf_bufpool_create(uint32_t count, uint32_t buf_size, mf_bufpool_t **out);

/* Frees the pool and all its memory. Buffers still in use become invalid; this is logged
 * as an error (it is a leak in the caller). NULL is ignored. */
void mf_bufpool_destroy(mf_bufpool_t *pool);

/* A free buffer with refs = 1 and len = 0, or NULL when the pool is exhausted. */
mf_buf_t *mf_bufpool_get(mf_bufpool_t *pool);

void mf_buf_ref(mf_buf_t *buf);

/* Drops one reference; at zero the buffer goes back to its pool. Unref of a buffer with no
 * references is a double free: the process logs it and aborts. */
void mf_buf_unref(mf_buf_t *buf);

void mf_bufpool_get_stats(const mf_bufpool_t *pool, mf_bufpool_stats_t *out);

#endif
