#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "node/api/protocol.h"

static void test_parse_table(void **state) {
  static const struct {
    const char *text;
    mf_err_t err;
    bool has_id;
    int64_t id;
    const char *method;
  } cases[] = {
      {"{\"id\":1,\"method\":\"system.ping\"}", MF_OK, true, 1, "system.ping"},
      {"{\"id\":0,\"method\":\"a\",\"data\":{}}", MF_OK, true, 0, "a"},
      {"{\"id\":7,\"method\":\"router.join\",\"data\":{\"room\":\"x\"}}", MF_OK, true, 7, "router.join"},
      {"{\"id\":9007199254740991,\"method\":\"m\",\"data\":null}", MF_OK, true, 9007199254740991LL, "m"},
      {" {\"method\":\"m-x_1\",\"id\":3} ", MF_OK, true, 3, "m-x_1"},
      {"", MF_ERR_PARSE, false, 0, NULL},
      {"{", MF_ERR_PARSE, false, 0, NULL},
      {"[1,2]", MF_ERR_PARSE, false, 0, NULL},
      {"42", MF_ERR_PARSE, false, 0, NULL},
      {"{\"id\":1,\"method\":\"a\"} trailing", MF_ERR_PARSE, false, 0, NULL},
      {"{\"id\":1,\"id\":2,\"method\":\"a\"}", MF_ERR_PARSE, false, 0, NULL},
      {"{\"method\":\"a\"}", MF_ERR_INVALID_ARG, false, 0, NULL},
      {"{\"id\":\"1\",\"method\":\"a\"}", MF_ERR_INVALID_ARG, false, 0, NULL},
      {"{\"id\":1.5,\"method\":\"a\"}", MF_ERR_INVALID_ARG, false, 0, NULL},
      {"{\"id\":-1,\"method\":\"a\"}", MF_ERR_INVALID_ARG, false, 0, NULL},
      {"{\"id\":9007199254740992,\"method\":\"a\"}", MF_ERR_INVALID_ARG, false, 0, NULL},
      {"{\"id\":null,\"method\":\"a\"}", MF_ERR_INVALID_ARG, false, 0, NULL},
      {"{\"id\":4}", MF_ERR_INVALID_ARG, true, 4, NULL},
      {"{\"id\":4,\"method\":5}", MF_ERR_INVALID_ARG, true, 4, NULL},
      {"{\"id\":4,\"method\":\"\"}", MF_ERR_INVALID_ARG, true, 4, NULL},
      {"{\"id\":4,\"method\":\"a b\"}", MF_ERR_INVALID_ARG, true, 4, NULL},
      {"{\"id\":4,\"method\":\"a\\u0000b\"}", MF_ERR_PARSE, false, 0, NULL}, /* jansson refuses NUL */
      {"{\"id\":5,\"method\":\"a\",\"data\":[]}", MF_ERR_INVALID_ARG, true, 5, NULL},
      {"{\"id\":5,\"method\":\"a\",\"data\":\"x\"}", MF_ERR_INVALID_ARG, true, 5, NULL},
      {"{\"id\":6,\"method\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", MF_ERR_LIMIT, true, 6, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_api_request_t req;
    mf_err_t err = mf_api_request_parse(cases[i].text, strlen(cases[i].text), &req);
    if (err != cases[i].err) print_error("case %zu: %s -> %s (%s)\n", i, cases[i].text, mf_err_name(err), req.error);
    assert_int_equal(err, cases[i].err);
    assert_int_equal(req.has_id, cases[i].has_id);
    if (cases[i].has_id) assert_int_equal(req.id, cases[i].id);
    if (err == MF_OK) {
      assert_string_equal(req.method, cases[i].method);
      assert_true(json_is_object(req.data));
    } else {
      assert_null(req.data);
      assert_true(strlen(req.error) > 0);
    }
    mf_api_request_clear(&req);
  }
}

static void test_parse_data_kept(void **state) {
  const char *t = "{\"id\":2,\"method\":\"x\",\"data\":{\"a\":[1,2],\"b\":\"c\"}}";
  mf_api_request_t req;
  assert_int_equal(mf_api_request_parse(t, strlen(t), &req), MF_OK);
  assert_int_equal(json_array_size(json_object_get(req.data, "a")), 2);
  assert_string_equal(json_string_value(json_object_get(req.data, "b")), "c");
  mf_api_request_clear(&req);
  mf_api_request_clear(&req); /* idempotent */
}

static void test_parse_limits(void **state) {
  /* Exactly at the limit parses; one byte more is refused before any JSON work. */
  size_t n = MF_API_MESSAGE_MAX;
  char *big = malloc(n + 2);
  const char *head = "{\"id\":1,\"method\":\"m\",\"data\":{\"pad\":\"";
  size_t h = strlen(head);
  memcpy(big, head, h);
  memset(big + h, 'x', n - h - 3);
  memcpy(big + n - 3, "\"}}", 3);
  mf_api_request_t req;
  assert_int_equal(mf_api_request_parse(big, n, &req), MF_OK);
  mf_api_request_clear(&req);
  big[n] = ' ';
  assert_int_equal(mf_api_request_parse(big, n + 1, &req), MF_ERR_LIMIT);
  assert_false(req.has_id);
  free(big);

  /* Deep nesting is an error, not a stack overflow. */
  size_t depth = 100000;
  char *deep = malloc(2 * depth + 64);
  size_t o = (size_t)sprintf(deep, "{\"id\":1,\"method\":\"m\",\"data\":{\"x\":");
  for (size_t i = 0; i < depth; i++) deep[o++] = '[';
  for (size_t i = 0; i < depth; i++) deep[o++] = ']';
  deep[o++] = '}';
  deep[o++] = '}';
  assert_int_equal(mf_api_request_parse(deep, o, &req), MF_ERR_PARSE);
  free(deep);
  /* Not NUL-terminated input is read only within len. */
  char exact[] = {'{', '}'};
  assert_int_equal(mf_api_request_parse(exact, sizeof exact, &req), MF_ERR_INVALID_ARG);
}

static void test_builders(void **state) {
  size_t len = 0;
  char *s = mf_api_response_ok(12, json_pack("{s:i}", "x", 1), &len);
  assert_string_equal(s, "{\"id\":12,\"ok\":true,\"data\":{\"x\":1}}");
  assert_int_equal(len, strlen(s));
  free(s);
  s = mf_api_response_ok(1, NULL, NULL);
  assert_string_equal(s, "{\"id\":1,\"ok\":true,\"data\":{}}");
  free(s);
  s = mf_api_response_error(true, 3, MF_ERR_NOT_FOUND, "unknown method 'x'", &len);
  assert_string_equal(s, "{\"id\":3,\"ok\":false,\"error\":{\"code\":\"not_found\",\"message\":\"unknown method 'x'\"}}");
  free(s);
  s = mf_api_response_error(false, 0, MF_ERR_PARSE, NULL, &len);
  assert_string_equal(s, "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"parse_error\",\"message\":\"malformed input\"}}");
  free(s);
  /* Invalid UTF-8 in a message falls back to the generic text. */
  s = mf_api_response_error(true, 1, MF_ERR_LIMIT, "bad \xff", &len);
  assert_non_null(strstr(s, "\"limit exceeded\""));
  free(s);
  s = mf_api_notification("producer.close", "p1", NULL, &len);
  assert_string_equal(s, "{\"event\":\"producer.close\",\"target\":\"p1\",\"data\":{}}");
  free(s);
  s = mf_api_notification("x", NULL, json_pack("{s:b}", "a", 1), &len);
  assert_string_equal(s, "{\"event\":\"x\",\"data\":{\"a\":true}}");
  free(s);
  assert_null(mf_api_notification(NULL, "t", json_object(), &len));
}

static int calls;
static void h_a(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) { calls += 1; }
static void h_b(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) { calls += 10; }

static void test_method_table(void **state) {
  static const mf_api_method_t table[] = {{"a.one", h_a}, {"b.two", h_b}, {NULL, NULL}};
  const mf_api_method_t *m = mf_api_method_find(table, "b.two");
  assert_non_null(m);
  m->fn(NULL, NULL, NULL);
  assert_int_equal(calls, 10);
  assert_ptr_equal(mf_api_method_find(table, "a.one")->fn, h_a);
  assert_null(mf_api_method_find(table, "a.on"));
  assert_null(mf_api_method_find(table, "a.one.x"));
  assert_null(mf_api_method_find(NULL, "a.one"));
  assert_null(mf_api_method_find(table, NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_table), cmocka_unit_test(test_parse_data_kept),
      cmocka_unit_test(test_parse_limits), cmocka_unit_test(test_builders),
      cmocka_unit_test(test_method_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
