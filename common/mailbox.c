#include "mailbox.h"

#include <sched.h>

static void mf_mailbox_push(mf_mailbox_t *mb, mf_mailbox_msg_t *msg) {
  atomic_store_explicit(&msg->next, NULL, memory_order_relaxed);
  mf_mailbox_msg_t *prev = atomic_exchange_explicit(&mb->head, msg, memory_order_acq_rel);
  /* Between the exchange and this store the list is briefly cut: the owner sees the gap as
   * "empty for now" and will be woken again by this poster's uv_async_send. */
  atomic_store_explicit(&prev->next, msg, memory_order_release);
}

/* Owner only. NULL when empty or when a poster is between its two steps. */
static mf_mailbox_msg_t *mf_mailbox_pop(mf_mailbox_t *mb) {
  mf_mailbox_msg_t *tail = mb->tail;
  mf_mailbox_msg_t *next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (tail == &mb->stub) {
    if (!next) return NULL;
    mb->tail = next;
    tail = next;
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
  }
  if (next) {
    mb->tail = next;
    return tail;
  }
  if (tail != atomic_load_explicit(&mb->head, memory_order_acquire)) return NULL;
  mf_mailbox_push(mb, &mb->stub);
  next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (next) {
    mb->tail = next;
    return tail;
  }
  return NULL;
}

static unsigned mf_mailbox_drain(mf_mailbox_t *mb, unsigned max) {
  unsigned n = 0;
  mf_mailbox_msg_t *msg;
  while (n < max && (msg = mf_mailbox_pop(mb)) != NULL) {
    n++;
    mb->delivered++;
    msg->fn(msg, mb->owner);
  }
  return n;
}

static void mf_mailbox_on_async(uv_async_t *handle) {
  mf_mailbox_t *mb = MF_CONTAINER_OF(handle, mf_mailbox_t, async);
  if (mf_mailbox_drain(mb, MF_MAILBOX_BATCH) == MF_MAILBOX_BATCH) uv_async_send(&mb->async);
}

mf_err_t mf_mailbox_init(mf_mailbox_t *mb, uv_loop_t *loop, void *owner) {
  atomic_init(&mb->stub.next, NULL);
  mb->stub.fn = NULL;
  atomic_init(&mb->head, &mb->stub);
  mb->tail = &mb->stub;
  atomic_init(&mb->posting, 0);
  atomic_init(&mb->closed, false);
  mb->owner = owner;
  mb->delivered = 0;
  if (uv_async_init(loop, &mb->async, mf_mailbox_on_async) != 0) return MF_ERR_IO;
  return MF_OK;
}

mf_err_t mf_mailbox_post(mf_mailbox_t *mb, mf_mailbox_msg_t *msg, mf_mailbox_fn fn) {
  /* seq_cst pairs with close(): either close sees this poster in `posting`, or this poster
   * sees `closed` — never neither, so no post lands after the final drain. */
  atomic_fetch_add(&mb->posting, 1);
  if (atomic_load(&mb->closed)) {
    atomic_fetch_sub(&mb->posting, 1);
    return MF_ERR_CLOSED;
  }
  msg->fn = fn;
  mf_mailbox_push(mb, msg);
  uv_async_send(&mb->async);
  atomic_fetch_sub(&mb->posting, 1);
  return MF_OK;
}

void mf_mailbox_close(mf_mailbox_t *mb) {
  atomic_store(&mb->closed, true);
  /* Posters in flight finish within a few instructions; they never block. */
  while (atomic_load(&mb->posting) != 0) sched_yield();
  while (mf_mailbox_drain(mb, MF_MAILBOX_BATCH) > 0) {
  }
  uv_close((uv_handle_t *)&mb->async, NULL);
}

bool mf_mailbox_is_closed(const mf_mailbox_t *mb) { return atomic_load(&mb->closed); }
