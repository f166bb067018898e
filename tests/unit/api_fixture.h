/* The public API as the in-process gateway tests (test_gateway_methods, test_gateway_pipes,
 * test_gateway_nodes, test_api_plain) call it over a test WebSocket: cmocka assertions
 * on top of tests/support/ws_client.h. Header-only (static inline); include after
 * <cmocka.h>. */
#ifndef MF_TEST_API_FIXTURE_H
#define MF_TEST_API_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/ws_client.h"

#define MF_TEST_API_IO_MS 5000

/* One request (id from *next_id); notifications before its answer are skipped. */
static inline json_t *mf_test_api_call_or_fail(int *next_id, nng_stream *s, const char *method,
                                               json_t *data) {
  int id = (*next_id)++;
  assert_int_equal(mf_test_api_send(s, id, method, data, MF_TEST_API_IO_MS), 0);
  json_t *m = mf_test_api_answer(s, id, MF_TEST_API_IO_MS, NULL);
  assert_non_null(m);
  return m;
}

/* The same, and the answer must be ok (the whole answer is returned: decref it). */
static inline json_t *mf_test_api_ok(int *next_id, nng_stream *s, const char *method,
                                     json_t *data) {
  json_t *r = mf_test_api_call_or_fail(next_id, s, method, data);
  if (!json_is_true(json_object_get(r, "ok"))) {
    char *t = json_dumps(r, 0);
    print_error("%s: expected ok: %s\n", method, t);
    free(t);
    fail();
  }
  return r;
}

/* Whether a notification `event` (about `target`, when given) comes within the next 40
 * messages; the messages read are dropped. */
static inline bool mf_test_api_wait_event(nng_stream *s, const char *event, const char *target) {
  for (int n = 0; n < 40; n++) {
    json_t *m = mf_test_ws_recv(s, MF_TEST_API_IO_MS);
    if (!m) return false;
    const char *ev = json_string_value(json_object_get(m, "event"));
    const char *tg = json_string_value(json_object_get(m, "target"));
    bool hit = ev && strcmp(ev, event) == 0 && (!target || (tg && strcmp(tg, target) == 0));
    json_decref(m);
    if (hit) return true;
  }
  return false;
}

#endif
