/* Pipe hub tests on real threads: every "worker" is a thread with its own uv loop and its
 * own buffer pool. The main thread scripts them by posting commands (run on the worker's
 * thread between passes of its loop) and asserts on what they recorded. Every wait is a
 * bounded number of short sleeps (about 10 s in all) and fails instead of hanging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/bufpool.h"
#include "node/pipe_hub.h"

enum { WAIT_STEP_US = 200, WAIT_STEPS = 50000 }; /* 10 s worth of sleeps */
enum { POOL_BUFS = 4096, BUF_SIZE = 512 };

typedef struct tw tw_t;
typedef void (*tw_fn)(tw_t *t, void *arg);

struct tw {
  uint32_t index;
  mf_pipe_hub_t *hub;
  mf_bufpool_t *pool; /* created before the thread starts; then touched only by it */
  uv_loop_t loop;
  uv_thread_t thread;
  uv_thread_t self;
  atomic_bool pump; /* run the loop between commands */
  atomic_bool stop;
  _Atomic(tw_fn) cmd;
  void *cmd_arg;
  int loop_close_rc;
  bool running;
};

/* Threads still running, so that a failed test (cmocka jumps out of it) does not leave them
 * touching the next test's objects: the teardown joins them. */
enum { MAX_TW = 8 };
static tw_t *g_running[MAX_TW];

static void tw_main(void *arg) {
  tw_t *t = arg;
  t->self = uv_thread_self();
  while (!atomic_load(&t->stop)) {
    tw_fn fn = atomic_load(&t->cmd);
    if (fn) {
      fn(t, t->cmd_arg);
      atomic_store(&t->cmd, NULL);
      continue;
    }
    if (atomic_load(&t->pump)) uv_run(&t->loop, UV_RUN_NOWAIT);
    usleep(WAIT_STEP_US);
  }
  /* Lets pending closes (mf_pipe_hub_detach) complete; never blocks, so a worker left
   * attached by a failed test makes uv_loop_close fail instead of hanging the join. */
  for (int i = 0; i < 3 && uv_loop_alive(&t->loop); i++) uv_run(&t->loop, UV_RUN_NOWAIT);
  t->loop_close_rc = uv_loop_close(&t->loop);
}

static void tw_start(tw_t *t, uint32_t index, mf_pipe_hub_t *hub) {
  memset(t, 0, sizeof *t);
  t->index = index;
  t->hub = hub;
  assert_int_equal(mf_bufpool_create(POOL_BUFS, BUF_SIZE, &t->pool), MF_OK);
  assert_int_equal(uv_loop_init(&t->loop), 0);
  atomic_init(&t->pump, true);
  atomic_init(&t->stop, false);
  atomic_init(&t->cmd, NULL);
  assert_int_equal(uv_thread_create(&t->thread, tw_main, t), 0);
  t->running = true;
  for (int i = 0; i < MAX_TW; i++) {
    if (!g_running[i]) {
      g_running[i] = t;
      break;
    }
  }
}

static void tw_post(tw_t *t, tw_fn fn, void *arg) {
  assert_null(atomic_load(&t->cmd));
  t->cmd_arg = arg;
  atomic_store(&t->cmd, fn);
}

static void tw_wait(tw_t *t) {
  for (int i = 0; i < WAIT_STEPS; i++) {
    if (!atomic_load(&t->cmd)) return;
    usleep(WAIT_STEP_US);
  }
  fail_msg("worker %u: command did not finish in time", t->index);
}

static void tw_run(tw_t *t, tw_fn fn, void *arg) {
  tw_post(t, fn, arg);
  tw_wait(t);
}

static void tw_stop(tw_t *t) {
  atomic_store(&t->stop, true);
  uv_thread_join(&t->thread);
  t->running = false;
  for (int i = 0; i < MAX_TW; i++)
    if (g_running[i] == t) g_running[i] = NULL;
}

/* After a failure the hub and pools are leaked on purpose: the test already failed. */
static int join_leftovers(void **state) {
  for (int i = 0; i < MAX_TW; i++)
    if (g_running[i]) tw_stop(g_running[i]);
  return 0;
}

static void tw_join(tw_t *t) {
  tw_stop(t);
  assert_int_equal(t->loop_close_rc, 0);
  mf_bufpool_destroy(t->pool);
}

/* ---- commands (run on the worker's thread) ---- */

static void cmd_attach(tw_t *t, void *arg) {
  *(mf_err_t *)arg = mf_pipe_hub_attach(t->hub, t->index, &t->loop);
}
static void cmd_quiesce(tw_t *t, void *arg) { mf_pipe_hub_quiesce(t->hub, t->index); }
static void cmd_detach(tw_t *t, void *arg) { mf_pipe_hub_detach(t->hub, t->index); }
static void cmd_run_nowait(tw_t *t, void *arg) { uv_run(&t->loop, UV_RUN_NOWAIT); }

typedef struct {
  mf_pipe_hub_stats_t hub;
  mf_bufpool_stats_t pool;
} snap_t;

static void cmd_snap(tw_t *t, void *arg) {
  snap_t *s = arg;
  mf_pipe_hub_stats(t->hub, t->index, &s->hub);
  mf_bufpool_get_stats(t->pool, &s->pool);
}

static snap_t snap(tw_t *t) {
  snap_t s;
  tw_run(t, cmd_snap, &s);
  return s;
}

/* A receiving input: checks thread, order, metadata and payload of every packet. */
typedef struct {
  tw_t *owner;
  uint32_t pipe_id;
  uint32_t next_seq;
  uint32_t bad;
  uint32_t wrong_thread;
  atomic_uint received;
} rx_t;

static uint32_t payload_len(uint32_t seq) { return 20 + seq % 300; }

static void fill_packet(mf_buf_t *b, mf_pipe_packet_t *p, uint32_t pipe_id, uint32_t seq) {
  b->len = payload_len(seq);
  memcpy(b->data, &seq, sizeof seq);
  for (uint32_t i = sizeof seq; i < b->len; i++) b->data[i] = (uint8_t)(seq * 31u + i);
  p->buf = b;
  p->pipe_id = pipe_id;
  p->mapped_ssrc = 0xa5a50000u ^ seq;
  p->router_pt = (uint8_t)(seq % 128);
  p->keyframe = seq % 7 == 0;
}

static bool packet_ok(const mf_pipe_packet_t *p, uint32_t pipe_id, uint32_t seq) {
  const mf_buf_t *b = p->buf;
  if (p->pipe_id != pipe_id || b->len != payload_len(seq) || b->len < sizeof seq) return false;
  uint32_t got;
  memcpy(&got, b->data, sizeof got);
  if (got != seq) return false;
  for (uint32_t i = sizeof seq; i < b->len; i++)
    if (b->data[i] != (uint8_t)(seq * 31u + i)) return false;
  return p->mapped_ssrc == (0xa5a50000u ^ seq) && p->router_pt == seq % 128 &&
         p->keyframe == (seq % 7 == 0);
}

static void on_rx(void *ud, const mf_pipe_packet_t *pkt) {
  rx_t *rx = ud;
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &rx->owner->self)) rx->wrong_thread++;
  if (!packet_ok(pkt, rx->pipe_id, rx->next_seq)) rx->bad++;
  rx->next_seq++;
  atomic_fetch_add(&rx->received, 1);
}

static void rx_init(rx_t *rx, tw_t *owner, uint32_t pipe_id, uint32_t first_seq) {
  memset(rx, 0, sizeof *rx);
  rx->owner = owner;
  rx->pipe_id = pipe_id;
  rx->next_seq = first_seq;
  atomic_init(&rx->received, 0);
}

static void wait_received(rx_t *rx, uint32_t n) {
  for (int i = 0; i < WAIT_STEPS; i++) {
    if (atomic_load(&rx->received) >= n) break;
    usleep(WAIT_STEP_US);
  }
  assert_int_equal(atomic_load(&rx->received), n);
}

typedef struct {
  uint32_t pipe_id;
  mf_pipe_input_fn fn;
  void *ud;
  mf_err_t result;
} bind_arg_t;

static void cmd_bind(tw_t *t, void *arg) {
  bind_arg_t *b = arg;
  b->result = mf_pipe_hub_bind(t->hub, t->index, b->pipe_id, b->fn, b->ud);
}

static void cmd_unbind(tw_t *t, void *arg) {
  mf_pipe_hub_unbind(t->hub, t->index, ((bind_arg_t *)arg)->pipe_id);
}

static mf_err_t bind_rx(tw_t *t, rx_t *rx) {
  bind_arg_t b = {.pipe_id = rx->pipe_id, .fn = on_rx, .ud = rx};
  tw_run(t, cmd_bind, &b);
  return b.result;
}

/* Sends count packets seq first_seq.. to dst, retrying (and running its own loop, which
 * reclaims and drains) while the link is full; the sender drops its own reference after
 * each send, as a router does once it has forwarded a packet. */
typedef struct {
  uint32_t dst, pipe_id, first_seq, count;
  uint32_t sent, retries;
  bool timed_out;
} burst_t;

static void cmd_burst(tw_t *t, void *arg) {
  burst_t *b = arg;
  uint32_t spins = 0;
  for (uint32_t i = 0; i < b->count; i++) {
    mf_buf_t *buf;
    while (!(buf = mf_bufpool_get(t->pool))) {
      if (++spins > WAIT_STEPS) goto timeout;
      uv_run(&t->loop, UV_RUN_NOWAIT);
      usleep(WAIT_STEP_US);
    }
    mf_pipe_packet_t p;
    fill_packet(buf, &p, b->pipe_id, b->first_seq + i);
    while (!mf_pipe_hub_send(t->hub, t->index, b->dst, &p)) {
      /* link full: run our own loop (it drains what others sent us, so two workers
       * sending to each other cannot wait on each other) and give the target time */
      b->retries++;
      if (++spins > WAIT_STEPS) {
        mf_buf_unref(buf);
        goto timeout;
      }
      uv_run(&t->loop, UV_RUN_NOWAIT);
      usleep(WAIT_STEP_US);
    }
    mf_buf_unref(buf);
    b->sent++;
  }
  return;
timeout:
  b->timed_out = true;
}

static void wait_idle(tw_t *src) {
  for (int i = 0; i < WAIT_STEPS / 10; i++) {
    if (snap(src).hub.in_flight == 0) return;
    usleep(WAIT_STEP_US * 10);
  }
  fail_msg("worker %u: lent buffers never came back", src->index);
}

static void attach_all(tw_t *t, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    mf_err_t err = MF_ERR_INTERNAL;
    tw_run(&t[i], cmd_attach, &err);
    assert_int_equal(err, MF_OK);
  }
}

/* The documented shutdown order: quiesce everyone, then detach everyone. */
static void shutdown_all(tw_t *t, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) tw_run(&t[i], cmd_quiesce, NULL);
  for (uint32_t i = 0; i < n; i++) tw_run(&t[i], cmd_detach, NULL);
  for (uint32_t i = 0; i < n; i++) {
    snap_t s = snap(&t[i]);
    assert_int_equal(s.hub.in_flight, 0);
    assert_int_equal(s.hub.returned, s.hub.sent);
    assert_int_equal(s.pool.in_use, 0);
  }
  for (uint32_t i = 0; i < n; i++) tw_join(&t[i]);
}

/* ---- tests ---- */

static void test_create_arguments(void **state) {
  static const struct {
    uint32_t workers, ring;
    mf_err_t want;
  } cases[] = {
      {0, 0, MF_ERR_INVALID_ARG},
      {257, 0, MF_ERR_INVALID_ARG},
      {1000, 16, MF_ERR_INVALID_ARG},
      {2, MF_PIPE_HUB_MAX_RING + 1, MF_ERR_INVALID_ARG},
      {2, UINT32_MAX, MF_ERR_INVALID_ARG},
      {1, 0, MF_OK},
      {2, 1, MF_OK},
      {3, MF_PIPE_HUB_MAX_RING, MF_OK},
      {256, 1, MF_OK},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_pipe_hub_t *hub = NULL;
    assert_int_equal(mf_pipe_hub_create(cases[i].workers, cases[i].ring, &hub), cases[i].want);
    if (cases[i].want == MF_OK)
      assert_non_null(hub);
    else
      assert_null(hub);
    mf_pipe_hub_destroy(hub);
  }
  assert_int_equal(mf_pipe_hub_create(2, 0, NULL), MF_ERR_INVALID_ARG);
  mf_pipe_hub_destroy(NULL);
}

enum { IDS_PER_THREAD = 50000 };

typedef struct {
  mf_pipe_hub_t *hub;
  uint32_t *ids;
} id_arg_t;

static void id_thread(void *arg) {
  id_arg_t *a = arg;
  for (int i = 0; i < IDS_PER_THREAD; i++) a->ids[i] = mf_pipe_hub_new_id(a->hub);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static void test_new_id_unique_and_nonzero(void **state) {
  mf_pipe_hub_t *hub;
  assert_int_equal(mf_pipe_hub_create(2, 4, &hub), MF_OK);
  uint32_t *ids = calloc(2 * IDS_PER_THREAD, sizeof *ids);
  assert_non_null(ids);
  id_arg_t a[2] = {{hub, ids}, {hub, ids + IDS_PER_THREAD}};
  uv_thread_t th[2];
  for (int i = 0; i < 2; i++) assert_int_equal(uv_thread_create(&th[i], id_thread, &a[i]), 0);
  for (int i = 0; i < 2; i++) assert_int_equal(uv_thread_join(&th[i]), 0);
  qsort(ids, 2 * IDS_PER_THREAD, sizeof *ids, cmp_u32);
  assert_int_not_equal(ids[0], 0);
  for (int i = 1; i < 2 * IDS_PER_THREAD; i++) assert_true(ids[i] > ids[i - 1]);
  free(ids);
  mf_pipe_hub_destroy(hub);
}

enum { N = 10000 };

/* Two sources into one target plus the reverse direction, all at once, default rings. */
static void test_delivery_in_order_three_workers(void **state) {
  mf_pipe_hub_t *hub;
  assert_int_equal(mf_pipe_hub_create(3, 0, &hub), MF_OK);
  static tw_t t[3]; /* static: threads must never point into a dead stack frame */
  for (uint32_t i = 0; i < 3; i++) tw_start(&t[i], i, hub);
  attach_all(t, 3);
  rx_t a, b, c;
  rx_init(&a, &t[2], mf_pipe_hub_new_id(hub), 0);
  rx_init(&b, &t[2], mf_pipe_hub_new_id(hub), 0);
  rx_init(&c, &t[0], mf_pipe_hub_new_id(hub), 0);
  assert_int_equal(bind_rx(&t[2], &a), MF_OK);
  assert_int_equal(bind_rx(&t[2], &b), MF_OK);
  assert_int_equal(bind_rx(&t[0], &c), MF_OK);

  burst_t ba = {.dst = 2, .pipe_id = a.pipe_id, .count = N};
  burst_t bb = {.dst = 2, .pipe_id = b.pipe_id, .count = N};
  burst_t bc = {.dst = 0, .pipe_id = c.pipe_id, .count = N};
  tw_post(&t[0], cmd_burst, &ba);
  tw_post(&t[1], cmd_burst, &bb);
  tw_post(&t[2], cmd_burst, &bc);
  for (uint32_t i = 0; i < 3; i++) tw_wait(&t[i]);
  assert_false(ba.timed_out);
  assert_false(bb.timed_out);
  assert_false(bc.timed_out);
  assert_int_equal(ba.sent, N);
  assert_int_equal(bb.sent, N);
  assert_int_equal(bc.sent, N);

  wait_received(&a, N);
  wait_received(&b, N);
  wait_received(&c, N);
  for (uint32_t i = 0; i < 3; i++) wait_idle(&t[i]);
  rx_t *rxs[] = {&a, &b, &c};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(rxs[i]->bad, 0);
    assert_int_equal(rxs[i]->wrong_thread, 0);
  }

  snap_t s0 = snap(&t[0]), s1 = snap(&t[1]), s2 = snap(&t[2]);
  assert_int_equal(s0.hub.sent, N);
  assert_int_equal(s0.hub.returned, N);
  assert_int_equal(s0.hub.delivered, N);
  assert_int_equal(s1.hub.sent, N);
  assert_int_equal(s1.hub.returned, N);
  assert_int_equal(s1.hub.delivered, 0);
  assert_int_equal(s2.hub.sent, N);
  assert_int_equal(s2.hub.returned, N);
  assert_int_equal(s2.hub.delivered, 2 * N);
  snap_t all[] = {s0, s1, s2};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(all[i].hub.dropped_unbound, 0);
    assert_int_equal(all[i].hub.in_flight, 0);
    assert_int_equal(all[i].pool.in_use, 0); /* the test's own baseline: holds nothing */
    /* a full link made senders wait: never more than one link's slots lent at once */
    assert_true(all[i].pool.high_water <= MF_PIPE_HUB_DEFAULT_RING + 1);
  }
  shutdown_all(t, 3);
  mf_pipe_hub_destroy(hub);
}

static void test_unbound_unbind_and_rebind(void **state) {
  mf_pipe_hub_t *hub;
  assert_int_equal(mf_pipe_hub_create(2, 32, &hub), MF_OK);
  static tw_t t[2];
  for (uint32_t i = 0; i < 2; i++) tw_start(&t[i], i, hub);
  attach_all(t, 2);

  /* bind argument checks (they fail before touching any worker state) */
  assert_int_equal(mf_pipe_hub_bind(hub, 1, 0, on_rx, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_pipe_hub_bind(hub, 1, 5, NULL, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_pipe_hub_bind(hub, 2, 5, on_rx, NULL), MF_ERR_INVALID_ARG);

  rx_t bound;
  rx_init(&bound, &t[1], mf_pipe_hub_new_id(hub), 100);
  assert_int_equal(bind_rx(&t[1], &bound), MF_OK);
  uint32_t never_bound = mf_pipe_hub_new_id(hub);

  /* unknown pipe id: counted on the target, buffers still come home */
  burst_t b1 = {.dst = 1, .pipe_id = never_bound, .first_seq = 0, .count = 100};
  tw_run(&t[0], cmd_burst, &b1);
  assert_int_equal(b1.sent, 100);
  wait_idle(&t[0]);
  snap_t s1 = snap(&t[1]);
  assert_int_equal(s1.hub.dropped_unbound, 100);
  assert_int_equal(s1.hub.delivered, 0);
  assert_int_equal(atomic_load(&bound.received), 0);

  /* bound: delivered */
  burst_t b2 = {.dst = 1, .pipe_id = bound.pipe_id, .first_seq = 100, .count = 50};
  tw_run(&t[0], cmd_burst, &b2);
  wait_received(&bound, 50);
  wait_idle(&t[0]);

  /* unbound again: dropped, not delivered to the old input */
  bind_arg_t ub = {.pipe_id = bound.pipe_id};
  tw_run(&t[1], cmd_unbind, &ub);
  burst_t b3 = {.dst = 1, .pipe_id = bound.pipe_id, .first_seq = 150, .count = 50};
  tw_run(&t[0], cmd_burst, &b3);
  wait_idle(&t[0]);
  s1 = snap(&t[1]);
  assert_int_equal(s1.hub.dropped_unbound, 150);
  assert_int_equal(s1.hub.delivered, 50);
  assert_int_equal(atomic_load(&bound.received), 50);
  assert_int_equal(bound.bad, 0);

  /* rebinding an id replaces the input */
  rx_t first, second;
  rx_init(&first, &t[1], bound.pipe_id, 200);
  rx_init(&second, &t[1], bound.pipe_id, 200);
  assert_int_equal(bind_rx(&t[1], &first), MF_OK);
  assert_int_equal(bind_rx(&t[1], &second), MF_OK);
  burst_t b4 = {.dst = 1, .pipe_id = bound.pipe_id, .first_seq = 200, .count = 10};
  tw_run(&t[0], cmd_burst, &b4);
  wait_received(&second, 10);
  wait_idle(&t[0]);
  assert_int_equal(atomic_load(&first.received), 0);
  assert_int_equal(second.bad, 0);
  assert_int_equal(second.wrong_thread, 0);

  snap_t s0 = snap(&t[0]);
  s1 = snap(&t[1]);
  /* everything lent came back: returned == delivered + unbound on the target */
  assert_int_equal(s0.hub.sent, 210);
  assert_int_equal(s0.hub.returned, s1.hub.delivered + s1.hub.dropped_unbound);
  assert_int_equal(s0.pool.in_use, 0);
  shutdown_all(t, 2);
  mf_pipe_hub_destroy(hub);
}

/* Ring full: the target is attached but does not run its loop. */
enum { SMALL_RING = 5 };

typedef struct {
  uint32_t dst, pipe_id, first_seq;
  uint32_t ok;
  uint32_t refs_after_ok[SMALL_RING];
  bool extra_ok;
  uint32_t refs_after_refused;
  mf_pipe_hub_stats_t stats;
} fill_t;

static void cmd_fill(tw_t *t, void *arg) {
  fill_t *f = arg;
  for (uint32_t i = 0; i < SMALL_RING; i++) {
    mf_buf_t *buf = mf_bufpool_get(t->pool);
    mf_pipe_packet_t p;
    fill_packet(buf, &p, f->pipe_id, f->first_seq + i);
    if (mf_pipe_hub_send(t->hub, t->index, f->dst, &p)) f->ok++;
    f->refs_after_ok[i] = buf->refs;
    mf_buf_unref(buf);
  }
  mf_buf_t *buf = mf_bufpool_get(t->pool);
  mf_pipe_packet_t p;
  fill_packet(buf, &p, f->pipe_id, f->first_seq + SMALL_RING);
  f->extra_ok = mf_pipe_hub_send(t->hub, t->index, f->dst, &p);
  f->refs_after_refused = buf->refs;
  mf_buf_unref(buf);
  mf_pipe_hub_stats(t->hub, t->index, &f->stats);
}

static void test_ring_full(void **state) {
  mf_pipe_hub_t *hub;
  /* 5 slots although the rings round up to 8: the slot count is the bound */
  assert_int_equal(mf_pipe_hub_create(2, SMALL_RING, &hub), MF_OK);
  static tw_t t[2];
  for (uint32_t i = 0; i < 2; i++) tw_start(&t[i], i, hub);
  attach_all(t, 2);
  rx_t rx;
  rx_init(&rx, &t[1], mf_pipe_hub_new_id(hub), 0);
  assert_int_equal(bind_rx(&t[1], &rx), MF_OK);
  /* the target does not drain; the source never runs its loop either (until said) */
  atomic_store(&t[1].pump, false);
  atomic_store(&t[0].pump, false);

  fill_t f = {.dst = 1, .pipe_id = rx.pipe_id};
  tw_run(&t[0], cmd_fill, &f);
  assert_int_equal(f.ok, SMALL_RING);
  for (int i = 0; i < SMALL_RING; i++) assert_int_equal(f.refs_after_ok[i], 2);
  assert_false(f.extra_ok);
  assert_int_equal(f.refs_after_refused, 1); /* the caller's reference, untouched */
  assert_int_equal(f.stats.dropped_full, 1);
  assert_int_equal(f.stats.sent, SMALL_RING);
  assert_int_equal(f.stats.in_flight, SMALL_RING);
  assert_int_equal(atomic_load(&rx.received), 0);
  assert_int_equal(snap(&t[0]).pool.in_use, SMALL_RING); /* lent, held by the hub */

  /* the target runs again and hands everything back; a source that never runs its loop
   * reclaims the slots inside send itself */
  atomic_store(&t[1].pump, true);
  wait_received(&rx, SMALL_RING);
  /* stop it again; once a command ran there, its drain pass (deliver, then return) has
   * ended and no other pass follows */
  atomic_store(&t[1].pump, false);
  (void)snap(&t[1]);
  fill_t f2 = {.dst = 1, .pipe_id = rx.pipe_id, .first_seq = SMALL_RING};
  tw_run(&t[0], cmd_fill, &f2);
  assert_int_equal(f2.ok, SMALL_RING);
  assert_false(f2.extra_ok);
  assert_int_equal(f2.refs_after_refused, 1);
  assert_int_equal(f2.stats.returned, SMALL_RING);
  assert_int_equal(f2.stats.sent, 2 * SMALL_RING);
  assert_int_equal(f2.stats.dropped_full, 2);
  atomic_store(&t[1].pump, true);
  wait_received(&rx, 2 * SMALL_RING);

  /* with both loops running, a longer burst through 5 slots */
  atomic_store(&t[0].pump, true);
  wait_idle(&t[0]);
  burst_t more = {.dst = 1, .pipe_id = rx.pipe_id, .first_seq = 2 * SMALL_RING, .count = 40};
  tw_run(&t[0], cmd_burst, &more);
  assert_false(more.timed_out);
  assert_int_equal(more.sent, 40);
  wait_received(&rx, 2 * SMALL_RING + 40);
  wait_idle(&t[0]);
  assert_int_equal(rx.bad, 0);
  assert_int_equal(rx.wrong_thread, 0);
  snap_t s0 = snap(&t[0]);
  assert_int_equal(s0.pool.in_use, 0);
  assert_int_equal(s0.hub.sent, 2 * SMALL_RING + 40);
  assert_int_equal(s0.hub.returned, 2 * SMALL_RING + 40);
  assert_true(s0.hub.dropped_full >= 2);
  shutdown_all(t, 2);
  mf_pipe_hub_destroy(hub);
}

/* Refused sends: each returns false, leaves the caller's reference alone and is counted. */
typedef struct {
  uint32_t dst;
  uint32_t src;
} reject_case_t;

typedef struct {
  const reject_case_t *cases;
  size_t n;
  uint32_t accepted;
  uint32_t refs_changed;
  mf_pipe_hub_stats_t stats;
  mf_err_t reattach;
} reject_t;

static void cmd_reject(tw_t *t, void *arg) {
  reject_t *r = arg;
  mf_buf_t *buf = mf_bufpool_get(t->pool);
  mf_pipe_packet_t p;
  fill_packet(buf, &p, 1, 0);
  for (size_t i = 0; i < r->n; i++) {
    if (mf_pipe_hub_send(t->hub, r->cases[i].src, r->cases[i].dst, &p)) r->accepted++;
    if (buf->refs != 1) r->refs_changed++;
  }
  mf_buf_unref(buf);
  mf_pipe_hub_stats(t->hub, t->index, &r->stats);
  r->reattach = mf_pipe_hub_attach(t->hub, t->index, &t->loop);
}

static void test_refused_sends_and_states(void **state) {
  mf_pipe_hub_t *hub;
  assert_int_equal(mf_pipe_hub_create(3, 8, &hub), MF_OK);
  static tw_t t[2]; /* worker 2 exists in the hub but never attaches */
  for (uint32_t i = 0; i < 2; i++) tw_start(&t[i], i, hub);
  attach_all(t, 2);
  rx_t rx;
  rx_init(&rx, &t[1], mf_pipe_hub_new_id(hub), 0);
  assert_int_equal(bind_rx(&t[1], &rx), MF_OK);

  static const reject_case_t cases[] = {
      {.src = 0, .dst = 0},          /* to itself */
      {.src = 0, .dst = 3},          /* out of range */
      {.src = 0, .dst = UINT32_MAX}, /* out of range */
      {.src = 0, .dst = 2},          /* not attached */
      {.src = 3, .dst = 1},          /* bad source: refused, counted nowhere */
  };
  reject_t r = {.cases = cases, .n = sizeof cases / sizeof cases[0]};
  tw_run(&t[0], cmd_reject, &r);
  assert_int_equal(r.accepted, 0);
  assert_int_equal(r.refs_changed, 0);
  assert_int_equal(r.stats.dropped_unbound, 4);
  assert_int_equal(r.stats.sent, 0);
  assert_int_equal(r.stats.in_flight, 0);
  assert_int_equal(r.reattach, MF_ERR_STATE);

  /* argument and state checks that touch no worker state */
  uv_loop_t *none = NULL;
  assert_int_equal(mf_pipe_hub_attach(hub, 3, &t[0].loop), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_pipe_hub_attach(hub, 2, none), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_pipe_hub_bind(hub, 2, 7, on_rx, NULL), MF_ERR_STATE);
  mf_pipe_hub_unbind(hub, 2, 7); /* ignored */
  mf_pipe_hub_quiesce(hub, 2);   /* never attached: no-op */
  mf_pipe_hub_detach(hub, 2);
  mf_pipe_hub_stats_t z;
  memset(&z, 0xff, sizeof z);
  mf_pipe_hub_stats(hub, 3, &z);
  assert_int_equal(z.sent, 0);
  assert_int_equal(z.in_flight, 0);

  /* a quiesced target refuses new packets; binding there is refused too */
  tw_run(&t[1], cmd_quiesce, NULL);
  tw_run(&t[1], cmd_quiesce, NULL); /* twice: no-op */
  /* one direct attempt (cmd_burst would keep retrying) */
  static const reject_case_t to_quiesced[] = {{.src = 0, .dst = 1}};
  reject_t r2 = {.cases = to_quiesced, .n = 1};
  tw_run(&t[0], cmd_reject, &r2);
  assert_int_equal(r2.accepted, 0);
  assert_int_equal(r2.refs_changed, 0);
  assert_int_equal(r2.stats.dropped_unbound, 5);
  bind_arg_t b = {.pipe_id = rx.pipe_id, .fn = on_rx, .ud = &rx};
  tw_run(&t[1], cmd_bind, &b);
  assert_int_equal(b.result, MF_ERR_STATE);
  assert_int_equal(atomic_load(&rx.received), 0);
  shutdown_all(t, 2);
  mf_pipe_hub_destroy(hub);
}

/* Quiesce with packets still queued: handed back undelivered, reclaimed by the source's
 * detach; afterwards both workers can attach again and carry traffic. */
static void test_quiesce_returns_queued_packets(void **state) {
  mf_pipe_hub_t *hub;
  assert_int_equal(mf_pipe_hub_create(2, 16, &hub), MF_OK);
  static tw_t t[2];
  for (uint32_t i = 0; i < 2; i++) tw_start(&t[i], i, hub);
  attach_all(t, 2);
  rx_t rx;
  rx_init(&rx, &t[1], mf_pipe_hub_new_id(hub), 0);
  assert_int_equal(bind_rx(&t[1], &rx), MF_OK);
  /* neither loop runs: the packets stay queued, and the source cannot reclaim early */
  atomic_store(&t[0].pump, false);
  atomic_store(&t[1].pump, false);

  burst_t b = {.dst = 1, .pipe_id = rx.pipe_id, .count = 6};
  tw_run(&t[0], cmd_burst, &b);
  assert_int_equal(b.sent, 6);
  assert_int_equal(b.retries, 0);
  assert_int_equal(snap(&t[0]).pool.in_use, 6);

  tw_run(&t[1], cmd_quiesce, NULL);
  assert_int_equal(atomic_load(&rx.received), 0);
  snap_t s1 = snap(&t[1]);
  assert_int_equal(s1.hub.delivered, 0);
  assert_int_equal(s1.hub.dropped_unbound, 6);
  snap_t s0 = snap(&t[0]);
  assert_int_equal(s0.hub.in_flight, 6); /* handed back, not yet reclaimed */
  assert_int_equal(s0.pool.in_use, 6);

  tw_run(&t[0], cmd_quiesce, NULL);
  tw_run(&t[1], cmd_detach, NULL);
  tw_run(&t[0], cmd_detach, NULL);
  s0 = snap(&t[0]);
  assert_int_equal(s0.hub.in_flight, 0);
  assert_int_equal(s0.hub.returned, 6);
  assert_int_equal(s0.hub.returned, s1.hub.delivered + s1.hub.dropped_unbound);
  assert_int_equal(s0.pool.in_use, 0);

  /* the closes complete on the next loop pass; then attaching again works */
  tw_run(&t[0], cmd_run_nowait, NULL);
  tw_run(&t[1], cmd_run_nowait, NULL);
  atomic_store(&t[0].pump, true);
  atomic_store(&t[1].pump, true);
  attach_all(t, 2);
  rx_t rx2;
  rx_init(&rx2, &t[1], mf_pipe_hub_new_id(hub), 1000);
  assert_int_equal(bind_rx(&t[1], &rx2), MF_OK);
  burst_t b2 = {.dst = 1, .pipe_id = rx2.pipe_id, .first_seq = 1000, .count = 3};
  tw_run(&t[0], cmd_burst, &b2);
  wait_received(&rx2, 3);
  wait_idle(&t[0]);
  assert_int_equal(rx2.bad, 0);
  shutdown_all(t, 2);
  mf_pipe_hub_destroy(hub);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_create_arguments, join_leftovers),
      cmocka_unit_test_teardown(test_new_id_unique_and_nonzero, join_leftovers),
      cmocka_unit_test_teardown(test_delivery_in_order_three_workers, join_leftovers),
      cmocka_unit_test_teardown(test_unbound_unbind_and_rebind, join_leftovers),
      cmocka_unit_test_teardown(test_ring_full, join_leftovers),
      cmocka_unit_test_teardown(test_refused_sends_and_states, join_leftovers),
      cmocka_unit_test_teardown(test_quiesce_returns_queued_packets, join_leftovers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
