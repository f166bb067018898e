#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "node/node_config.h"

static void test_defaults(void **state) {
  mf_node_config_t c;
  mf_config_result_t r;
  assert_int_equal(mf_node_config_parse(&c, 0, NULL, NULL, &r), MF_OK);
  assert_int_equal(c.workers, 0);
  assert_true(c.pin_workers);
  assert_int_equal(c.log_level, MF_LOG_LEVEL_INFO);
  assert_int_equal(c.log_format, MF_LOG_FORMAT_TEXT);
}

static void test_flags_and_environment(void **state) {
  mf_node_config_t c;
  mf_config_result_t r;
  char *env[] = {"MAFALDA_WORKERS=3", "MAFALDA_LOG_FORMAT=json", NULL};
  char *argv[] = {"--log-level", "debug", "--pin-workers=false"};
  assert_int_equal(mf_node_config_parse(&c, 3, argv, env, &r), MF_OK);
  assert_int_equal(c.workers, 3);
  assert_int_equal(c.log_format, MF_LOG_FORMAT_JSON);
  assert_int_equal(c.log_level, MF_LOG_LEVEL_DEBUG);
  assert_false(c.pin_workers);
}

static void test_limits(void **state) {
  mf_node_config_t c;
  mf_config_result_t r;
  char *argv[] = {"--workers", "257"};
  assert_int_equal(mf_node_config_parse(&c, 2, argv, NULL, &r), MF_ERR_INVALID_ARG);
  assert_non_null(strstr(r.error, "out of range [0, 256]"));
  char *argv2[] = {"--workers", "-1"};
  assert_int_equal(mf_node_config_parse(&c, 2, argv2, NULL, &r), MF_ERR_INVALID_ARG);
  char *argv3[] = {"--log-level", "chatty"};
  assert_int_equal(mf_node_config_parse(&c, 2, argv3, NULL, &r), MF_ERR_INVALID_ARG);
  assert_non_null(strstr(r.error, "trace, debug, info, warn, error, off"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_flags_and_environment),
      cmocka_unit_test(test_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
