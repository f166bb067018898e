#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sched.h>
#include <string.h>
#include <uv.h>

#include "common/bufpool.h"
#include "common/spsc.h"

static void test_capacity_rounding_and_limits(void **state) {
  mf_spsc_t *r = NULL;
  assert_int_equal(mf_spsc_create(0, &r), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_spsc_create((1u << 30) + 1, &r), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_spsc_create(5, &r), MF_OK);
  assert_int_equal(mf_spsc_capacity(r), 8);
  mf_spsc_destroy(r);
  mf_spsc_destroy(NULL);
}

static void test_full_and_empty_single_thread(void **state) {
  mf_spsc_t *r;
  assert_int_equal(mf_spsc_create(4, &r), MF_OK);
  void *out;
  assert_false(mf_spsc_pop(r, &out));
  for (uintptr_t i = 1; i <= 4; i++) assert_true(mf_spsc_push(r, (void *)i));
  assert_false(mf_spsc_push(r, (void *)5));
  assert_int_equal(mf_spsc_size(r), 4);
  for (uintptr_t i = 1; i <= 4; i++) {
    assert_true(mf_spsc_pop(r, &out));
    assert_int_equal((uintptr_t)out, i);
  }
  assert_false(mf_spsc_pop(r, &out));
  /* batch calls take what fits, in order */
  void *in[6] = {(void *)1, (void *)2, (void *)3, (void *)4, (void *)5, (void *)6};
  assert_int_equal(mf_spsc_push_many(r, in, 6), 4);
  void *got[6];
  assert_int_equal(mf_spsc_pop_many(r, got, 3), 3);
  assert_int_equal((uintptr_t)got[2], 3);
  assert_int_equal(mf_spsc_push_many(r, in + 4, 2), 2);
  assert_int_equal(mf_spsc_pop_many(r, got, 6), 3);
  assert_int_equal((uintptr_t)got[0], 4);
  assert_int_equal((uintptr_t)got[2], 6);
  mf_spsc_destroy(r);
}

/* Many laps of a tiny ring under contention: every slot is reused thousands of times. */
enum { ITEMS = 300000 };

typedef struct {
  mf_spsc_t *ring;
  uint64_t sum;
  int out_of_order;
} two_thread_t;

static void producer(void *arg) {
  two_thread_t *t = arg;
  uintptr_t next = 1;
  while (next <= ITEMS) {
    if (next % 3 == 0) {
      void *batch[7];
      uint32_t n = 0;
      for (; n < 7 && next + n <= ITEMS; n++) batch[n] = (void *)(next + n);
      uint32_t pushed = mf_spsc_push_many(t->ring, batch, n);
      next += pushed;
      if (pushed == 0) sched_yield();
    } else if (mf_spsc_push(t->ring, (void *)next)) {
      next++;
    } else {
      sched_yield();
    }
  }
}

static void test_two_threads_preserve_order_and_lose_nothing(void **state) {
  two_thread_t t = {0};
  assert_int_equal(mf_spsc_create(64, &t.ring), MF_OK);
  uv_thread_t th;
  assert_int_equal(uv_thread_create(&th, producer, &t), 0);
  uintptr_t expect = 1;
  while (expect <= ITEMS) {
    void *items[16];
    uint32_t n = mf_spsc_pop_many(t.ring, items, 16);
    if (n == 0) {
      sched_yield();
      continue;
    }
    for (uint32_t i = 0; i < n; i++) {
      if ((uintptr_t)items[i] != expect) t.out_of_order++;
      t.sum += (uintptr_t)items[i];
      expect++;
    }
  }
  uv_thread_join(&th);
  assert_int_equal(t.out_of_order, 0);
  assert_int_equal(t.sum, (uint64_t)ITEMS * (ITEMS + 1) / 2);
  assert_int_equal(mf_spsc_size(t.ring), 0);
  mf_spsc_destroy(t.ring);
}

/* The design's lending pattern: the pool owner passes buffers out on one ring and gets them
 * back on a return ring, and only the owner unrefs them. */
typedef struct {
  mf_spsc_t *out, *back;
  int corrupt;
  int done;
} lend_t;

enum { LEND_ROUNDS = 200000 };

static void borrower(void *arg) {
  lend_t *l = arg;
  int seen = 0;
  while (seen < LEND_ROUNDS) {
    void *p;
    if (!mf_spsc_pop(l->out, &p)) {
      sched_yield();
      continue;
    }
    mf_buf_t *b = p;
    uint32_t v;
    memcpy(&v, b->data, sizeof v);
    if (b->len != sizeof v || v != (uint32_t)seen) l->corrupt++;
    seen++;
    while (!mf_spsc_push(l->back, b)) sched_yield();
  }
}

static void test_buffer_lending_through_return_ring(void **state) {
  mf_bufpool_t *pool;
  assert_int_equal(mf_bufpool_create(32, 256, &pool), MF_OK);
  lend_t l = {0};
  assert_int_equal(mf_spsc_create(16, &l.out), MF_OK);
  assert_int_equal(mf_spsc_create(64, &l.back), MF_OK);
  uv_thread_t th;
  assert_int_equal(uv_thread_create(&th, borrower, &l), 0);
  uint32_t sent = 0, returned = 0;
  while (returned < LEND_ROUNDS) {
    void *p;
    while (mf_spsc_pop(l.back, &p)) {
      mf_buf_unref(p);
      returned++;
    }
    if (sent < LEND_ROUNDS) {
      mf_buf_t *b = mf_bufpool_get(pool);
      if (!b) {
        sched_yield();
        continue;
      }
      memcpy(b->data, &sent, sizeof sent);
      b->len = sizeof sent;
      if (mf_spsc_push(l.out, b))
        sent++;
      else
        mf_buf_unref(b);
    }
  }
  uv_thread_join(&th);
  mf_bufpool_stats_t s;
  mf_bufpool_get_stats(pool, &s);
  assert_int_equal(l.corrupt, 0);
  assert_int_equal(s.in_use, 0);
  assert_true(s.high_water <= 32);
  mf_spsc_destroy(l.out);
  mf_spsc_destroy(l.back);
  mf_bufpool_destroy(pool);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_capacity_rounding_and_limits),
      cmocka_unit_test(test_full_and_empty_single_thread),
      cmocka_unit_test(test_two_threads_preserve_order_and_lose_nothing),
      cmocka_unit_test(test_buffer_lending_through_return_ring),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
