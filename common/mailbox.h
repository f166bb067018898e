/* A thread's command mailbox: any thread posts, the owning thread's libuv loop runs.
 *
 * Messages are intrusive: embed mf_mailbox_msg_t in your own struct, post it with the
 * function to run, and recover your struct in that function (MF_CONTAINER_OF). The
 * function runs on the owner's loop thread, in posting order per posting thread, with the
 * owner pointer given at init. Ownership of the message passes to the mailbox at post and
 * to the function when it runs: the function frees or reuses it (e.g. posts a reply).
 *
 * The queue is Vyukov's intrusive multi-producer single-consumer list: posting is one
 * atomic exchange plus uv_async_send (lock-free, never blocks); the owner drains without
 * locks. Wake-ups coalesce, so a burst of posts costs one loop iteration. */
#ifndef MF_MAILBOX_H
#define MF_MAILBOX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "err.h"

#define MF_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

typedef struct mf_mailbox_msg mf_mailbox_msg_t;
typedef void (*mf_mailbox_fn)(mf_mailbox_msg_t *msg, void *owner);

struct mf_mailbox_msg {
  _Atomic(mf_mailbox_msg_t *) next;
  mf_mailbox_fn fn;
};

/* Most messages run per loop wake-up; the rest run on the next iteration so that a flood
 * of commands cannot starve the owner's I/O. */
#define MF_MAILBOX_BATCH 256

typedef struct mf_mailbox {
  uv_async_t async;
  _Atomic(mf_mailbox_msg_t *) head; /* producers exchange here */
  mf_mailbox_msg_t *tail;           /* owner only */
  mf_mailbox_msg_t stub;
  atomic_uint posting; /* posters between their closed check and uv_async_send */
  atomic_bool closed;
  void *owner;
  uint64_t delivered; /* owner only */
} mf_mailbox_t;

/* Owner thread. The mailbox must not move in memory until closed. */
mf_err_t mf_mailbox_init(mf_mailbox_t *mb, uv_loop_t *loop, void *owner);

/* Any thread. MF_ERR_CLOSED once mf_mailbox_close has begun (the message is not taken:
 * the caller still owns it). */
mf_err_t mf_mailbox_post(mf_mailbox_t *mb, mf_mailbox_msg_t *msg, mf_mailbox_fn fn);

/* Owner thread. Refuses new posts, runs every message already posted (so none is lost or
 * leaked), and closes the async handle: run the loop until it returns to finish. */
void mf_mailbox_close(mf_mailbox_t *mb);

/* Any thread. */
bool mf_mailbox_is_closed(const mf_mailbox_t *mb);

#endif
