#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/id.h"

static void test_generated_ids_have_uuid_v4_format(void **state) {
  for (int i = 0; i < 1000; i++) {
    char id[MF_ID_LEN + 1];
    assert_int_equal(mf_id_generate(id), MF_OK);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[8], '-');
    assert_int_equal(id[13], '-');
    assert_int_equal(id[14], '4');
    assert_non_null(strchr("89ab", id[19]));
    assert_true(mf_id_is_valid(id));
  }
}

static int cmp_ids(const void *a, const void *b) { return strcmp(a, b); }

static void test_generated_ids_are_unique(void **state) {
  enum { N = 4096 };
  char(*ids)[MF_ID_LEN + 1] = malloc(N * sizeof *ids);
  for (int i = 0; i < N; i++) assert_int_equal(mf_id_generate(ids[i]), MF_OK);
  qsort(ids, N, sizeof *ids, cmp_ids);
  for (int i = 1; i < N; i++) assert_string_not_equal(ids[i - 1], ids[i]);
  free(ids);
}

static void test_validation_rejects_malformed(void **state) {
  const char *bad[] = {
      "",
      "8f0e7c9a-3b1d-4c2e-9f8a-1b2c3d4e5f6",   /* short */
      "8f0e7c9a-3b1d-4c2e-9f8a-1b2c3d4e5f600", /* long */
      "8f0e7c9a-3b1d-3c2e-9f8a-1b2c3d4e5f60",  /* version 3 */
      "8f0e7c9a-3b1d-4c2e-cf8a-1b2c3d4e5f60",  /* wrong variant */
      "8F0E7C9A-3B1D-4C2E-9F8A-1B2C3D4E5F60",  /* uppercase is not canonical */
      "8f0e7c9a_3b1d-4c2e-9f8a-1b2c3d4e5f60",  /* separator */
      "8f0e7c9a-3b1d-4c2e-9f8a-1b2c3d4e5g60",  /* non-hex */
      "../../../../etc/passwd-xxxxxxxxxxxxx",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_false(mf_id_is_valid(bad[i]));
  assert_false(mf_id_is_valid(NULL));
  assert_true(mf_id_is_valid("8f0e7c9a-3b1d-4c2e-9f8a-1b2c3d4e5f60"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_generated_ids_have_uuid_v4_format),
      cmocka_unit_test(test_generated_ids_are_unique),
      cmocka_unit_test(test_validation_rejects_malformed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
