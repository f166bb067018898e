#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MF_LOG_MODULE "testmod"
#include "common/log.h"

/* Logs go to a pipe so the test reads exactly what would reach stderr. */
typedef struct {
  int fds[2];
  mf_log_config_t saved;
} fixture_t;

static int setup(void **state) {
  static fixture_t f;
  if (pipe(f.fds) != 0) return -1;
  mf_log_get_config(&f.saved);
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  mf_log_configure(&f->saved);
  close(f->fds[0]);
  close(f->fds[1]);
  mf_log_set_thread_name("");
  return 0;
}

static size_t drain(fixture_t *f, char *buf, size_t cap) {
  /* Every log call is one write: read what is there without blocking forever. */
  close(f->fds[1]);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < cap && (r = read(f->fds[0], buf + n, cap - 1 - n)) > 0) n += (size_t)r;
  buf[n] = '\0';
  if (pipe(f->fds) != 0) fail();
  return n;
}

static void test_text_line_has_level_module_thread_message(void **state) {
  fixture_t *f = *state;
  mf_log_config_t cfg = {.level = MF_LOG_LEVEL_INFO, .format = MF_LOG_FORMAT_TEXT, .fd = f->fds[1]};
  mf_log_configure(&cfg);
  mf_log_set_thread_name("w3");
  MF_LOG_INFO("hello %d", 42);
  char buf[4096];
  drain(f, buf, sizeof buf);
  assert_non_null(strstr(buf, " INFO "));
  assert_non_null(strstr(buf, "[testmod/w3] hello 42\n"));
  assert_int_equal(buf[4], '-'); /* ISO date first */
}

static void test_level_filter(void **state) {
  fixture_t *f = *state;
  mf_log_config_t cfg = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = f->fds[1]};
  mf_log_configure(&cfg);
  MF_LOG_INFO("hidden");
  MF_LOG_DEBUG("hidden too");
  MF_LOG_WARN("shown");
  MF_LOG_ERROR("also shown");
  char buf[4096];
  drain(f, buf, sizeof buf);
  assert_null(strstr(buf, "hidden"));
  assert_non_null(strstr(buf, "shown"));
  assert_non_null(strstr(buf, "also shown"));
  assert_false(mf_log_enabled(MF_LOG_LEVEL_INFO));
  assert_true(mf_log_enabled(MF_LOG_LEVEL_ERROR));
  assert_false(mf_log_enabled(MF_LOG_LEVEL_OFF));
}

static void test_json_lines_are_valid_json_with_escaping(void **state) {
  fixture_t *f = *state;
  mf_log_config_t cfg = {.level = MF_LOG_LEVEL_DEBUG, .format = MF_LOG_FORMAT_JSON, .fd = f->fds[1]};
  mf_log_configure(&cfg);
  mf_log_set_thread_name("main");
  MF_LOG_DEBUG("quote \" backslash \\ newline \n tab \t");
  MF_LOG_ERROR("bad utf8 \xff\xfe end");
  char buf[8192];
  drain(f, buf, sizeof buf);
  char *line2 = strchr(buf, '\n');
  assert_non_null(line2);
  *line2++ = '\0';
  json_error_t jerr;
  json_t *a = json_loads(buf, 0, &jerr);
  assert_non_null(a);
  assert_string_equal(json_string_value(json_object_get(a, "level")), "debug");
  assert_string_equal(json_string_value(json_object_get(a, "module")), "testmod");
  assert_string_equal(json_string_value(json_object_get(a, "thread")), "main");
  assert_string_equal(json_string_value(json_object_get(a, "msg")),
                      "quote \" backslash \\ newline \n tab \t");
  assert_non_null(json_object_get(a, "ts"));
  json_decref(a);
  json_t *b = json_loads(line2, JSON_DISABLE_EOF_CHECK, &jerr);
  assert_non_null(b);
  assert_string_equal(json_string_value(json_object_get(b, "msg")), "bad utf8 ?? end");
  json_decref(b);
}

static void test_long_message_is_cut_with_marker(void **state) {
  fixture_t *f = *state;
  mf_log_config_t cfg = {.level = MF_LOG_LEVEL_INFO, .format = MF_LOG_FORMAT_TEXT, .fd = f->fds[1]};
  mf_log_configure(&cfg);
  char big[MF_LOG_LINE_MAX * 2];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  MF_LOG_INFO("%s", big);
  char buf[MF_LOG_LINE_MAX * 3];
  size_t n = drain(f, buf, sizeof buf);
  assert_true(n < MF_LOG_LINE_MAX + 256);
  assert_non_null(strstr(buf, "xxx...\n"));
}

static void test_level_parse(void **state) {
  mf_log_level_t l;
  assert_int_equal(mf_log_level_parse("debug", &l), MF_OK);
  assert_int_equal(l, MF_LOG_LEVEL_DEBUG);
  assert_int_equal(mf_log_level_parse("WARNING", &l), MF_OK);
  assert_int_equal(l, MF_LOG_LEVEL_WARN);
  assert_int_equal(mf_log_level_parse("loud", &l), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_log_level_parse(NULL, &l), MF_ERR_INVALID_ARG);
  assert_string_equal(mf_log_level_name(MF_LOG_LEVEL_ERROR), "error");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_text_line_has_level_module_thread_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
      cmocka_unit_test_setup_teardown(test_json_lines_are_valid_json_with_escaping, setup, teardown),
      cmocka_unit_test_setup_teardown(test_long_message_is_cut_with_marker, setup, teardown),
      cmocka_unit_test(test_level_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
