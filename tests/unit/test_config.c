#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/config.h"

typedef struct {
  int port;
  bool verbose;
  char name[8];
  int mode;
  int untouched;
} cfg_t;

static const char *const modes[] = {"fast", "safe", NULL};

static const mf_config_option_t opts[] = {
    {.name = "port", .type = MF_OPT_INT, .offset = offsetof(cfg_t, port), .min = 1, .max = 65535,
     .default_value = "4000", .help = "port"},
    {.name = "verbose", .type = MF_OPT_BOOL, .offset = offsetof(cfg_t, verbose),
     .default_value = "false", .help = "talk"},
    {.name = "node-name", .type = MF_OPT_STRING, .offset = offsetof(cfg_t, name),
     .size = sizeof(((cfg_t *)0)->name), .default_value = "n1", .help = "name"},
    {.name = "mode", .type = MF_OPT_ENUM, .offset = offsetof(cfg_t, mode), .choices = modes,
     .default_value = "safe", .help = "mode"},
    {.name = "untouched", .type = MF_OPT_INT, .offset = offsetof(cfg_t, untouched), .min = 0,
     .max = 10, .help = "no default"},
};
#define N (sizeof opts / sizeof opts[0])

static mf_err_t parse(cfg_t *c, int argc, char **argv, char **envp, mf_config_result_t *r) {
  memset(c, 0, sizeof *c);
  c->untouched = 7;
  return mf_config_parse(opts, N, c, argc, argv, envp, r);
}

static void test_defaults(void **state) {
  cfg_t c;
  mf_config_result_t r;
  assert_int_equal(parse(&c, 0, NULL, NULL, &r), MF_OK);
  assert_int_equal(c.port, 4000);
  assert_false(c.verbose);
  assert_string_equal(c.name, "n1");
  assert_int_equal(c.mode, 1);
  assert_int_equal(c.untouched, 7);
  assert_false(r.help_requested);
}

static void test_env_then_flags_precedence(void **state) {
  cfg_t c;
  mf_config_result_t r;
  char *env[] = {"MAFALDA_PORT=5000", "MAFALDA_NODE_NAME=envname", "MAFALDA_VERBOSE=yes",
                 "MAFALDA_PORTX=1", "OTHER=1", NULL};
  assert_int_equal(parse(&c, 0, NULL, env, &r), MF_OK);
  assert_int_equal(c.port, 5000);
  assert_string_equal(c.name, "envname");
  assert_true(c.verbose);
  char *argv[] = {"--port", "6000", "--node-name=cli", "--verbose=off", "--mode", "FAST"};
  assert_int_equal(parse(&c, 6, argv, env, &r), MF_OK);
  assert_int_equal(c.port, 6000);
  assert_string_equal(c.name, "cli");
  assert_false(c.verbose);
  assert_int_equal(c.mode, 0);
}

static void test_bool_flag_forms(void **state) {
  cfg_t c;
  mf_config_result_t r;
  char *a1[] = {"--verbose"};
  assert_int_equal(parse(&c, 1, a1, NULL, &r), MF_OK);
  assert_true(c.verbose);
  char *a2[] = {"--verbose", "--port", "1"};
  assert_int_equal(parse(&c, 3, a2, NULL, &r), MF_OK);
  assert_true(c.verbose);
  assert_int_equal(c.port, 1);
  char *a3[] = {"--verbose", "false"};
  assert_int_equal(parse(&c, 2, a3, NULL, &r), MF_OK);
  assert_false(c.verbose);
  /* a non-boolean word after a bool flag is not swallowed: it is a stray argument */
  char *a4[] = {"--verbose", "maybe"};
  assert_int_equal(parse(&c, 2, a4, NULL, &r), MF_ERR_INVALID_ARG);
  assert_non_null(strstr(r.error, "unexpected argument 'maybe'"));
}

typedef struct {
  char *argv[3];
  int argc;
  const char *expect; /* substring of the error */
} bad_case_t;

static void test_errors_name_the_problem(void **state) {
  const bad_case_t cases[] = {
      {{"--port", "abc"}, 2, "--port: 'abc' is not an integer"},
      {{"--port", ""}, 2, "is not an integer"},
      {{"--port", "12x"}, 2, "is not an integer"},
      {{"--port", "0"}, 2, "--port: 0 is out of range [1, 65535]"},
      {{"--port", "70000"}, 2, "out of range"},
      {{"--port", "99999999999999999999"}, 2, "is not an integer"},
      {{"--port"}, 1, "option '--port' needs a value"},
      {{"--nope", "1"}, 2, "unknown option '--nope'"},
      {{"--nope=1"}, 1, "unknown option '--nope'"},
      {{"stray"}, 1, "unexpected argument 'stray'"},
      {{"-p"}, 1, "unexpected argument '-p'"},
      {{"--"}, 1, "unexpected argument '--'"},
      {{"--node-name", "waytoolongname"}, 2, "--node-name: value is too long (14 bytes, at most 7)"},
      {{"--mode", "slow"}, 2, "--mode: 'slow' is not one of: fast, safe"},
      {{"--verbose=perhaps"}, 1, "--verbose: 'perhaps' is not a boolean"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cfg_t c;
    mf_config_result_t r;
    mf_err_t err = parse(&c, cases[i].argc, (char **)cases[i].argv, NULL, &r);
    if (err != MF_ERR_INVALID_ARG || !strstr(r.error, cases[i].expect)) {
      print_error("case %zu: err=%d error='%s' expected '%s'\n", i, err, r.error, cases[i].expect);
      fail();
    }
  }
}

static void test_bad_environment_names_the_variable(void **state) {
  cfg_t c;
  mf_config_result_t r;
  char *env[] = {"MAFALDA_PORT=lots", NULL};
  assert_int_equal(parse(&c, 0, NULL, env, &r), MF_ERR_INVALID_ARG);
  assert_non_null(strstr(r.error, "MAFALDA_PORT: 'lots' is not an integer"));
}

static void test_help_and_usage(void **state) {
  cfg_t c;
  mf_config_result_t r;
  char *argv[] = {"--port", "5", "--help", "--bogus"};
  assert_int_equal(parse(&c, 4, argv, NULL, &r), MF_OK);
  assert_true(r.help_requested);
  char *argv2[] = {"--version"};
  assert_int_equal(parse(&c, 1, argv2, NULL, &r), MF_OK);
  assert_true(r.version_requested);

  char buf[4096] = {0};
  FILE *f = fmemopen(buf, sizeof buf - 1, "w");
  mf_config_usage(opts, N, "prog [OPTIONS]", f);
  fclose(f);
  assert_non_null(strstr(buf, "Usage: prog [OPTIONS]"));
  assert_non_null(strstr(buf, "--port N  [MAFALDA_PORT]"));
  assert_non_null(strstr(buf, "[MAFALDA_NODE_NAME]"));
  assert_non_null(strstr(buf, "(fast|safe)"));
  assert_non_null(strstr(buf, "Default: 4000."));
}

static void test_env_name(void **state) {
  char out[32];
  assert_int_equal(mf_config_env_name("rtc-port-base", out, sizeof out), MF_OK);
  assert_string_equal(out, "MAFALDA_RTC_PORT_BASE");
  assert_int_equal(mf_config_env_name("a-very-long-option-name-indeed", out, 16), MF_ERR_LIMIT);
}

static void test_list_next(void **state) {
  char item[8];
  const char *p = "127.0.0.1:7946,,b,123456789";
  assert_true(mf_config_list_next(&p, item, sizeof item));
  assert_string_equal(item, "127.0.0"); /* cut to size - 1 */
  assert_true(mf_config_list_next(&p, item, sizeof item));
  assert_string_equal(item, ""); /* empty items are returned */
  assert_true(mf_config_list_next(&p, item, sizeof item));
  assert_string_equal(item, "b");
  assert_true(mf_config_list_next(&p, item, sizeof item));
  assert_string_equal(item, "1234567");
  assert_false(mf_config_list_next(&p, item, sizeof item));
  p = "";
  assert_false(mf_config_list_next(&p, item, sizeof item));
  p = "a,";
  assert_true(mf_config_list_next(&p, item, sizeof item));
  assert_string_equal(item, "a");
  assert_false(mf_config_list_next(&p, item, sizeof item));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_env_then_flags_precedence),
      cmocka_unit_test(test_bool_flag_forms),
      cmocka_unit_test(test_errors_name_the_problem),
      cmocka_unit_test(test_bad_environment_names_the_variable),
      cmocka_unit_test(test_help_and_usage),
      cmocka_unit_test(test_env_name),
      cmocka_unit_test(test_list_next),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
