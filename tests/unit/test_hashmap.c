#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/hashmap.h"

typedef struct {
  uint16_t family;
  uint16_t port;
  uint8_t addr[16];
} tuple_key_t; /* the 5-tuple shape the RTC server uses */

static void test_put_get_remove(void **state) {
  mf_hashmap_t *m;
  assert_int_equal(mf_hashmap_create(sizeof(tuple_key_t), 4, &m), MF_OK);
  tuple_key_t a = {2, 5000, {127, 0, 0, 1}}, b = {2, 5001, {127, 0, 0, 1}};
  int va = 1, vb = 2;
  assert_null(mf_hashmap_get(m, &a));
  assert_int_equal(mf_hashmap_put(m, &a, &va), MF_OK);
  assert_int_equal(mf_hashmap_put(m, &b, &vb), MF_OK);
  assert_int_equal(mf_hashmap_put(m, &a, &vb), MF_ERR_EXISTS);
  assert_int_equal(mf_hashmap_put(m, &a, NULL), MF_ERR_INVALID_ARG);
  assert_ptr_equal(mf_hashmap_get(m, &a), &va);
  assert_ptr_equal(mf_hashmap_get(m, &b), &vb);
  assert_int_equal(mf_hashmap_count(m), 2);
  assert_ptr_equal(mf_hashmap_remove(m, &a), &va);
  assert_null(mf_hashmap_remove(m, &a));
  assert_null(mf_hashmap_get(m, &a));
  assert_ptr_equal(mf_hashmap_get(m, &b), &vb); /* still reachable past the tombstone */
  assert_int_equal(mf_hashmap_count(m), 1);
  mf_hashmap_destroy(m);
  mf_hashmap_destroy(NULL);
}

static void count_fn(const void *key, void *value, void *ud) {
  (*(size_t *)ud)++;
  assert_int_equal(*(const uint32_t *)key, (uint32_t)(uintptr_t)value);
}

static void test_growth_and_churn(void **state) {
  mf_hashmap_t *m;
  assert_int_equal(mf_hashmap_create(4, 0, &m), MF_OK);
  enum { N = 20000 };
  for (uint32_t i = 1; i <= N; i++) assert_int_equal(mf_hashmap_put(m, &i, (void *)(uintptr_t)i), MF_OK);
  for (uint32_t i = 1; i <= N; i++) assert_int_equal((uintptr_t)mf_hashmap_get(m, &i), i);
  size_t seen = 0;
  mf_hashmap_foreach(m, count_fn, &seen);
  assert_int_equal(seen, N);
  /* remove the odd ones, then churn inserts/removes far beyond the capacity */
  for (uint32_t i = 1; i <= N; i += 2) assert_non_null(mf_hashmap_remove(m, &i));
  assert_int_equal(mf_hashmap_count(m), N / 2);
  for (uint32_t round = 0; round < 200000; round++) {
    uint32_t k = N + 1 + round;
    assert_int_equal(mf_hashmap_put(m, &k, (void *)(uintptr_t)k), MF_OK);
    assert_non_null(mf_hashmap_remove(m, &k));
  }
  for (uint32_t i = 2; i <= N; i += 2) assert_int_equal((uintptr_t)mf_hashmap_get(m, &i), i);
  for (uint32_t i = 1; i <= N; i += 2) assert_null(mf_hashmap_get(m, &i));
  mf_hashmap_destroy(m);
}

static void test_bad_key_size(void **state) {
  mf_hashmap_t *m = NULL;
  assert_int_equal(mf_hashmap_create(0, 4, &m), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_hashmap_create(65, 4, &m), MF_ERR_INVALID_ARG);
  assert_null(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_put_get_remove),
      cmocka_unit_test(test_growth_and_churn),
      cmocka_unit_test(test_bad_key_size),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
