#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/err.h"

static void test_every_code_has_distinct_name_and_text(void **state) {
  for (int a = 0; a < MF_ERR__COUNT; a++) {
    const char *name = mf_err_name((mf_err_t)a);
    const char *text = mf_strerror((mf_err_t)a);
    assert_non_null(name);
    assert_non_null(text);
    assert_true(strlen(name) > 0);
    assert_string_not_equal(name, "unknown");
    for (int b = a + 1; b < MF_ERR__COUNT; b++) assert_string_not_equal(name, mf_err_name((mf_err_t)b));
  }
}

static void test_known_values(void **state) {
  assert_int_equal(MF_OK, 0);
  assert_string_equal(mf_err_name(MF_ERR_INVALID_ARG), "invalid_argument");
  assert_string_equal(mf_strerror(MF_ERR_NOT_FOUND), "not found");
}

static void test_out_of_range(void **state) {
  assert_string_equal(mf_strerror((mf_err_t)9999), "unknown error");
  assert_string_equal(mf_err_name((mf_err_t)-1), "unknown");
}

/* Every name maps back to its code (errors relayed between nodes keep their code). */
static void test_from_name_round_trip(void **state) {
  for (int a = 0; a < MF_ERR__COUNT; a++)
    assert_int_equal(mf_err_from_name(mf_err_name((mf_err_t)a)), a);
  assert_int_equal(mf_err_from_name("no_such_code"), MF_ERR_INTERNAL);
  assert_int_equal(mf_err_from_name(""), MF_ERR_INTERNAL);
  assert_int_equal(mf_err_from_name(NULL), MF_ERR_INTERNAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_code_has_distinct_name_and_text),
      cmocka_unit_test(test_known_values),
      cmocka_unit_test(test_out_of_range),
      cmocka_unit_test(test_from_name_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
