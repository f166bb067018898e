/* JSON API framing edges beyond test_api_protocol.c: missing arguments, ids at and past the
 * limits, a null or non-object data, messages quoting invalid UTF-8 (the reply falls back to
 * the code's text, a notification naming such a target is not built), and every builder
 * under allocation failure (jansson's allocator failing the k-th allocation for each k):
 * no crash, nothing leaked (ASan), the data reference always consumed, and the first
 * unfailed build equal to the normal one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "node/api/protocol.h"

static void test_request_edges(void **state) {
  (void)state;
  mf_api_request_t r;
  assert_int_equal(mf_api_request_parse("{}", 2, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_api_request_parse(NULL, 5, &r), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_api_request_parse(NULL, 0, &r), MF_ERR_PARSE); /* "" is not JSON */
  static const struct {
    const char *text;
    mf_err_t want;
  } cases[] = {
      {"{\"id\":0,\"method\":\"a\"}", MF_OK},
      {"{\"id\":9007199254740991,\"method\":\"a\"}", MF_OK},
      {"{\"id\":9007199254740992,\"method\":\"a\"}", MF_ERR_INVALID_ARG},
      {"{\"id\":-1,\"method\":\"a\"}", MF_ERR_INVALID_ARG},
      {"{\"id\":1.5,\"method\":\"a\"}", MF_ERR_INVALID_ARG},
      {"{\"id\":1,\"method\":\"a\",\"data\":null}", MF_OK},
      {"{\"id\":1,\"method\":\"a\",\"data\":[1]}", MF_ERR_INVALID_ARG},
      {"{\"id\":1,\"method\":\"a b\"}", MF_ERR_INVALID_ARG},
      {"{\"id\":1,\"method\":\"\"}", MF_ERR_INVALID_ARG},
      {"{\"id\":1}", MF_ERR_INVALID_ARG},
      {"[1]", MF_ERR_PARSE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_err_t e = mf_api_request_parse(cases[i].text, strlen(cases[i].text), &r);
    if (e != cases[i].want) print_error("case %zu (%s): %d\n", i, cases[i].text, e);
    assert_int_equal(e, cases[i].want);
    if (e == MF_OK) {
      assert_true(json_is_object(r.data)); /* null data reads as {} */
      assert_int_equal(json_object_size(r.data), 0);
    }
    mf_api_request_clear(&r);
  }
  mf_api_request_clear(NULL);
}

static void test_replies_with_bad_text(void **state) {
  (void)state;
  size_t len = 0;
  /* invalid UTF-8 in a message: the code's own text instead */
  char *s = mf_api_response_error(true, 7, MF_ERR_NOT_FOUND, "no \xff\xfe here", &len);
  assert_non_null(s);
  json_t *j = json_loads(s, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                      mf_strerror(MF_ERR_NOT_FOUND));
  json_decref(j);
  free(s);
  /* no id, no message, no length wanted */
  s = mf_api_response_error(false, 0, MF_ERR_PARSE, NULL, NULL);
  j = json_loads(s, 0, NULL);
  assert_true(json_is_null(json_object_get(j, "id")));
  json_decref(j);
  free(s);
  s = mf_api_response_ok(3, NULL, NULL);
  assert_non_null(strstr(s, "\"data\":{}"));
  free(s);

  /* notifications: no event, or a target that is not UTF-8, build nothing (data consumed) */
  assert_null(mf_api_notification(NULL, "t", json_pack("{s:i}", "a", 1), &len));
  assert_null(mf_api_notification("e", "\xc3\x28", json_pack("{s:i}", "a", 1), &len));
  s = mf_api_notification("e", NULL, NULL, &len);
  assert_non_null(s);
  assert_int_equal(len, strlen(s));
  assert_null(strstr(s, "target"));
  free(s);
}

static long g_fail_at = -1, g_count;

static void *failing_malloc(size_t n) {
  if (g_fail_at >= 0 && g_count++ == g_fail_at) return NULL;
  return malloc(n);
}

typedef char *(*build_fn)(size_t *len);

static char *build_ok(size_t *len) { return mf_api_response_ok(1, json_pack("{s:s}", "k", "v"), len); }
static char *build_error(size_t *len) {
  return mf_api_response_error(true, 2, MF_ERR_STATE, "busy", len);
}
static char *build_note(size_t *len) {
  return mf_api_notification("producerclose", "abc", json_pack("{s:i}", "n", 1), len);
}

static void exercise(build_fn build) {
  size_t want_len = 0;
  char *want = build(&want_len);
  assert_non_null(want);
  json_set_alloc_funcs(failing_malloc, free);
  for (long k = 0;; k++) {
    g_fail_at = k;
    g_count = 0;
    size_t len = 0;
    char *got = build(&len);
    bool failed = g_count > k;
    g_fail_at = -1;
    if (!failed) {
      assert_non_null(got);
      assert_string_equal(got, want);
      assert_int_equal(len, want_len);
      free(got);
      break;
    }
    /* Absent, or (jansson 2.14's json_dumps does not check every write of an object key:
     * an allocation failing there can drop the key's text) a string we still own. */
    free(got);
  }
  json_set_alloc_funcs(malloc, free);
  free(want);
}

static void test_builders_under_allocation_failure(void **state) {
  (void)state;
  exercise(build_ok);
  exercise(build_error);
  exercise(build_note);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_edges),
      cmocka_unit_test(test_replies_with_bad_text),
      cmocka_unit_test(test_builders_under_allocation_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
