/* Intra-node pipes: packet hand-off between the worker threads of one node.
 *
 * A logical router spans several workers. A consumer on worker B of a producer on worker A
 * receives A's packets through the hub: A LENDS its decrypted pool buffer (no copy, no UDP,
 * no SRTP) over a lock-free SPSC ring per ordered (source, target) link, and B hands it back
 * over that link's return ring so that A — the only thread allowed to touch A's pool — drops
 * the reference (see common/bufpool.h for the lending contract).
 *
 * Thread affinity: the hub is shared by all workers of a node, but every function says whose
 * thread may call it. Functions taking a worker index `w` (or `src`) are called ONLY on that
 * worker's thread; create/destroy/new_id may run anywhere as documented. Packet callbacks run
 * on the target worker's thread, from its loop (a uv_async_t per attached worker).
 *
 * Ownership: the hub owns its rings, slots and bindings. Buffers stay owned by the source
 * worker's pool: the hub holds one reference per packet in flight and drops it on the source
 * thread once the target returned it. A target must not ref, unref, modify or keep the buffer
 * past the input callback (copy what it needs); in particular it must not re-send it through
 * the hub, since that would touch the source pool's refcount from the wrong thread.
 *
 * Memory: every link gets rings and slots for ring_capacity packets at create, about
 * 48 bytes per slot of address space (workers * (workers - 1) links); pages are only
 * touched as slots are first used, so resident memory follows the real traffic.
 *
 * Lifecycle per worker: attach → bind/unbind/send … → quiesce → detach (→ attach again).
 * Shutdown contract: once no worker sends any more (all pipes removed), call quiesce on ALL
 * workers, then detach on each; then every lent buffer is back in its pool. Each loop must
 * run once more after detach (uv_close), and destroy comes after that. */
#ifndef MF_PIPE_HUB_H
#define MF_PIPE_HUB_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/bufpool.h"
#include "common/err.h"

#define MF_PIPE_HUB_DEFAULT_RING 1024
#define MF_PIPE_HUB_MAX_WORKERS 256
#define MF_PIPE_HUB_MAX_RING (1u << 16)

typedef struct mf_pipe_hub mf_pipe_hub_t;

/* One packet handed from a source worker to a target worker. */
typedef struct {
  mf_buf_t *buf;        /* lent: belongs to the SOURCE worker's pool; read-only for the
                           target, valid only during the input callback */
  uint32_t pipe_id;     /* which input on the target worker (mf_pipe_hub_bind) */
  uint32_t mapped_ssrc; /* metadata computed by the source router, carried as is */
  uint8_t router_pt;
  bool keyframe;
  uint8_t layer;        /* the producer encoding (simulcast spatial layer) it belongs to */
} mf_pipe_packet_t;

/* Runs on the target worker's thread. pkt (and pkt->buf) are valid only during the call.
 * The callback may bind/unbind on its own worker (including its own pipe_id). */
typedef void (*mf_pipe_input_fn)(void *ud, const mf_pipe_packet_t *pkt);

typedef struct {
  uint64_t sent, delivered, returned;      /* sent: by this worker as source; delivered: to
                                              inputs on this worker; returned: reclaimed */
  uint64_t dropped_full, dropped_unbound;  /* full: no free slot towards that target;
                                              unbound: arrived for an unknown pipe_id */
  uint32_t in_flight;                      /* lent by this worker, not yet reclaimed */
} mf_pipe_hub_stats_t;
/* Accounting details:
 *  - dropped_full is counted by the SOURCE (send returned false: no free slot).
 *  - dropped_unbound is counted by the TARGET for packets that found no binding, including
 *    packets still queued when the target quiesced (handed back undelivered); so once all
 *    is drained, the packets sent to w == delivered(w) + dropped_unbound(w) as target.
 *  - A send refused because the target is unreachable (dst == src, out of range, not
 *    attached or quiesced) is counted in the SOURCE's dropped_unbound: there is no input
 *    to receive it. A bad `src` is counted nowhere.
 *  - returned: packets this worker lent that came back and were unref'd; once idle,
 *    returned == sent and in_flight == 0. */

/* Any thread, before any worker attaches. workers >= 1 (<= 256); ring_capacity: slots per
 * (source, target) link (0 = MF_PIPE_HUB_DEFAULT_RING = 1024, at most MF_PIPE_HUB_MAX_RING).
 * MF_ERR_INVALID_ARG for values outside these ranges or out == NULL; MF_ERR_NO_MEMORY. */
mf_err_t mf_pipe_hub_create(uint32_t workers, uint32_t ring_capacity, mf_pipe_hub_t **out);
/* After every worker detached and ran its loop once more (NULL ignored). Buffers still
 * lent at that point are leaked (logged as an error): their pools are not touched. */
void mf_pipe_hub_destroy(mf_pipe_hub_t *hub);

/* Any thread: a fresh pipe id, never 0, unique within the hub (atomic counter). */
uint32_t mf_pipe_hub_new_id(mf_pipe_hub_t *hub);

/* Worker w's thread: starts receiving (a uv_async_t on `loop`, which must outlive the
 * attachment). MF_ERR_INVALID_ARG (w out of range, loop NULL), MF_ERR_STATE (already
 * attached, or a previous detach whose close has not run yet), MF_ERR_NO_MEMORY. */
mf_err_t mf_pipe_hub_attach(mf_pipe_hub_t *hub, uint32_t w, uv_loop_t *loop);
/* Worker w's thread: packets for pipe_id go to fn(ud, pkt) on w. Rebinding an id replaces.
 * MF_ERR_INVALID_ARG (w out of range, pipe_id 0, fn NULL), MF_ERR_STATE (w not attached
 * or quiesced), MF_ERR_NO_MEMORY. */
mf_err_t mf_pipe_hub_bind(mf_pipe_hub_t *hub, uint32_t w, uint32_t pipe_id,
                          mf_pipe_input_fn fn, void *ud);
/* Worker w's thread. Unknown ids are ignored. Packets already queued for pipe_id count as
 * dropped_unbound when they arrive. */
void mf_pipe_hub_unbind(mf_pipe_hub_t *hub, uint32_t w, uint32_t pipe_id);

/* Source worker `src`'s thread, on the packet path: lends pkt->buf to worker dst (takes its
 * own reference with mf_buf_ref on success; the caller keeps its own). false = dropped and
 * counted (no free slot, dst == src, dst out of range or not attached). No malloc, no lock.
 * Wakes dst's loop (uv_async_send coalesces: one wake-up per drain, not per packet). */
bool mf_pipe_hub_send(mf_pipe_hub_t *hub, uint32_t src, uint32_t dst,
                      const mf_pipe_packet_t *pkt);

/* Worker w's thread: shutdown step 1 — unbinds everything on w and hands back every packet
 * waiting for w undelivered; w accepts nothing more (senders see "not attached").
 * Step 2 — mf_pipe_hub_detach: reclaims what others returned to w and closes the async
 * handle (uv_close; the loop must run once more). Contract: call quiesce on ALL workers
 * before detach on ANY, and only when no worker sends anymore (all pipes removed);
 * then every lent buffer is back in its pool. Both are no-ops when there is nothing to do
 * (quiesce twice, detach of a worker never attached); detach of an attached worker
 * quiesces it first. */
void mf_pipe_hub_quiesce(mf_pipe_hub_t *hub, uint32_t w);
void mf_pipe_hub_detach(mf_pipe_hub_t *hub, uint32_t w);

/* Worker w's thread (its own counters; another thread may read a slightly stale copy).
 * w out of range gives all zeros. */
void mf_pipe_hub_stats(const mf_pipe_hub_t *hub, uint32_t w, mf_pipe_hub_stats_t *out);

#endif
