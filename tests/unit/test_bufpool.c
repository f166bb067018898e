#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/bufpool.h"

static void test_create_rejects_bad_sizes(void **state) {
  mf_bufpool_t *p = NULL;
  assert_int_equal(mf_bufpool_create(0, 1500, &p), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_bufpool_create(4, 0, &p), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_bufpool_create(4, 1u << 25, &p), MF_ERR_INVALID_ARG);
  assert_null(p);
}

static void test_exhaustion_returns_null_and_counts(void **state) {
  mf_bufpool_t *p;
  assert_int_equal(mf_bufpool_create(8, 1500, &p), MF_OK);
  mf_buf_t *bufs[8];
  for (int i = 0; i < 8; i++) {
    bufs[i] = mf_bufpool_get(p);
    assert_non_null(bufs[i]);
    assert_int_equal(bufs[i]->refs, 1);
    assert_int_equal(bufs[i]->len, 0);
    assert_true(bufs[i]->cap >= 1500);
    assert_int_equal((uintptr_t)bufs[i]->data % 64, 0);
    memset(bufs[i]->data, i, bufs[i]->cap); /* ASan: each buffer really has cap bytes */
  }
  assert_null(mf_bufpool_get(p));
  assert_null(mf_bufpool_get(p));
  mf_bufpool_stats_t s;
  mf_bufpool_get_stats(p, &s);
  assert_int_equal(s.capacity, 8);
  assert_int_equal(s.in_use, 8);
  assert_int_equal(s.high_water, 8);
  assert_int_equal(s.exhausted, 2);
  assert_int_equal(s.gets, 8);
  /* buffers do not overlap */
  for (int i = 0; i < 8; i++) assert_int_equal(bufs[i]->data[bufs[i]->cap - 1], i);

  mf_buf_unref(bufs[3]);
  mf_buf_t *again = mf_bufpool_get(p);
  assert_ptr_equal(again, bufs[3]);
  for (int i = 0; i < 8; i++) mf_buf_unref(bufs[i]);
  mf_bufpool_get_stats(p, &s);
  assert_int_equal(s.in_use, 0);
  assert_int_equal(s.high_water, 8);
  mf_bufpool_destroy(p);
}

static void test_refcount_keeps_buffer_until_last_unref(void **state) {
  mf_bufpool_t *p;
  assert_int_equal(mf_bufpool_create(1, 100, &p), MF_OK);
  mf_buf_t *b = mf_bufpool_get(p);
  b->len = 10;
  mf_buf_ref(b); /* e.g. retransmission store */
  mf_buf_ref(b); /* e.g. a second consumer */
  mf_buf_unref(b);
  mf_buf_unref(b);
  assert_null(mf_bufpool_get(p)); /* still held once */
  mf_buf_unref(b);
  mf_buf_t *c = mf_bufpool_get(p);
  assert_ptr_equal(c, b);
  assert_int_equal(c->len, 0); /* reset on reuse */
  mf_buf_unref(c);
  mf_bufpool_destroy(p);
}

static void test_destroy_null_is_noop(void **state) { mf_bufpool_destroy(NULL); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create_rejects_bad_sizes),
      cmocka_unit_test(test_exhaustion_returns_null_and_counts),
      cmocka_unit_test(test_refcount_keeps_buffer_until_last_unref),
      cmocka_unit_test(test_destroy_null_is_noop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
