#define MF_LOG_MODULE "bufpool"
#include "bufpool.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

#define MF_BUF_ALIGN 64u

struct mf_bufpool {
  mf_buf_t *bufs;
  uint8_t *slab;
  uint32_t *free_stack; /* indexes of free buffers; top at free_count - 1 */
  uint32_t free_count;
  mf_bufpool_stats_t stats;
};

mf_err_t mf_bufpool_create(uint32_t count, uint32_t buf_size, mf_bufpool_t **out) {
  if (count == 0 || buf_size == 0 || buf_size > (1u << 24)) return MF_ERR_INVALID_ARG;
  uint32_t size = (buf_size + MF_BUF_ALIGN - 1) & ~(MF_BUF_ALIGN - 1);
  mf_bufpool_t *pool = calloc(1, sizeof *pool);
  if (!pool) return MF_ERR_NO_MEMORY;
  pool->bufs = calloc(count, sizeof *pool->bufs);
  pool->free_stack = malloc(sizeof(uint32_t) * count);
  pool->slab = aligned_alloc(MF_BUF_ALIGN, (size_t)count * size);
  if (!pool->bufs || !pool->free_stack || !pool->slab) {
    free(pool->bufs);
    free(pool->free_stack);
    free(pool->slab);
    free(pool);
    return MF_ERR_NO_MEMORY;
  }
  for (uint32_t i = 0; i < count; i++) {
    mf_buf_t *b = &pool->bufs[i];
    b->data = pool->slab + (size_t)i * size;
    b->cap = size;
    b->index = i;
    b->pool = pool;
    /* Lowest index on top: recently used buffers are reused first (warm in cache). */
    pool->free_stack[i] = count - 1 - i;
  }
  pool->free_count = count;
  pool->stats.capacity = count;
  pool->stats.buf_size = size;
  *out = pool;
  return MF_OK;
}

void mf_bufpool_destroy(mf_bufpool_t *pool) {
  if (!pool) return;
  if (pool->stats.in_use)
    MF_LOG_ERROR("pool destroyed with %u of %u buffers still in use", pool->stats.in_use,
                 pool->stats.capacity);
  free(pool->bufs);
  free(pool->free_stack);
  free(pool->slab);
  free(pool);
}

mf_buf_t *mf_bufpool_get(mf_bufpool_t *pool) {
  if (pool->free_count == 0) {
    pool->stats.exhausted++;
    return NULL;
  }
  mf_buf_t *b = &pool->bufs[pool->free_stack[--pool->free_count]];
  b->refs = 1;
  b->len = 0;
  pool->stats.gets++;
  if (++pool->stats.in_use > pool->stats.high_water) pool->stats.high_water = pool->stats.in_use;
  return b;
}

void mf_buf_ref(mf_buf_t *buf) { buf->refs++; }

void mf_buf_unref(mf_buf_t *buf) {
  if (buf->refs == 0) {
    MF_LOG_ERROR("double free of buffer %u", buf->index);
    abort();
  }
  if (--buf->refs > 0) return;
  mf_bufpool_t *pool = buf->pool;
  pool->free_stack[pool->free_count++] = buf->index;
  pool->stats.in_use--;
}

void mf_bufpool_get_stats(const mf_bufpool_t *pool, mf_bufpool_stats_t *out) {
  *out = pool->stats;
}
