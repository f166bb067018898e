#include <setjmp.h>
#include <stdbool.h>
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

/* issue 12 (chaos): --gossip-advertise must be what gossip accepts, an IPv4 literal:port. */
static void test_gossip_advertise(void **state) {
  (void)state;
  static const struct {
    const char *value;
    bool ok;
  } cases[] = {
      {"", true},
      {"127.0.0.1:7946", true},
      {"10.1.2.3:1", true},
      {"192.168.0.10:65535", true},
      {"127.0.0.1", false},
      {"127.0.0.1:", false},
      {"127.0.0.1:0", false},
      {"127.0.0.1:65536", false},
      {"127.0.0.1:12x", false},
      {"127.0.0.1:-5", false},
      {"0.0.0.0:7946", false},
      {"127.000.0.1:7946", false},
      {"localhost:7946", false},
      {"[::1]:7946", false},
      {":7946", false},
      {"1.2.3.4.5:6", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_node_config_t c;
    mf_config_result_t r;
    char *argv[] = {"--gossip-advertise", (char *)cases[i].value, "--announced-ip",
                    "127.0.0.1"};
    assert_int_equal(mf_node_config_parse(&c, 4, argv, NULL, &r), MF_OK);
    assert_string_equal(c.gossip_advertise, cases[i].value);
    char err[256] = "";
    mf_err_t e = mf_node_config_finish(&c, err, sizeof err);
    if (cases[i].ok) {
      assert_int_equal(e, MF_OK);
    } else {
      assert_int_equal(e, MF_ERR_INVALID_ARG);
      assert_non_null(strstr(err, "--gossip-advertise"));
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_flags_and_environment),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_gossip_advertise),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
