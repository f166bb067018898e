/* Placement argument checks beyond test_controller_place.c: the configuration's refused
 * values, missing state, malformed router / node / producer ids (empty, too long, spaces,
 * control and non-ASCII bytes) answered as malformed before any lookup, without a message
 * buffer too, and the in-flight list ignoring unknown flights. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "controller/placement.h"

static void test_config_refusals(void **state) {
  (void)state;
  static const mf_placement_config_t bad[] = {
      {.default_capacity_pps = -1},
      {.default_capacity_pps = INFINITY},
      {.default_expected_pps = -1},
      {.default_expected_pps = NAN},
      {.watermark = -0.1},
      {.watermark = 1.5},
      {.watermark = NAN},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mf_placement_t *pl = NULL;
    assert_int_equal(mf_placement_create(&bad[i], &pl), MF_ERR_INVALID_ARG);
    assert_null(pl);
  }
  mf_placement_t *pl = NULL;
  mf_placement_config_t ok = {.watermark = 1.0};
  assert_int_equal(mf_placement_create(&ok, &pl), MF_OK);
  mf_placement_destroy(pl);
  mf_placement_destroy(NULL);
}

static void test_malformed_ids(void **state) {
  (void)state;
  mf_placement_t *pl;
  assert_int_equal(mf_placement_create(NULL, &pl), MF_OK);
  mf_fsm_t *fsm;
  assert_int_equal(mf_fsm_create(&fsm), MF_OK);
  mf_placement_input_t in = {.fsm = fsm, .now_ms = 1000};
  mf_placement_input_t no_fsm = {.fsm = NULL};
  mf_placement_transport_t t;
  mf_placement_pipe_t p;
  char msg[160];

  /* missing state */
  assert_int_equal(mf_placement_place_transport(NULL, &in, "r", 0, NULL, NULL, &t, msg, sizeof msg),
                   MF_ERR_INVALID_ARG);
  assert_string_equal(msg, "no placement state");
  assert_int_equal(mf_placement_place_transport(pl, NULL, "r", 0, NULL, NULL, &t, msg, sizeof msg),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_placement_place_transport(pl, &no_fsm, "r", 0, NULL, NULL, &t, msg, sizeof msg),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_placement_place_transport(pl, &in, "r", 0, NULL, NULL, NULL, msg, sizeof msg),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_placement_plan_pipe(NULL, &in, "p", "n", 0, &p, msg, sizeof msg), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_placement_plan_pipe(pl, NULL, "p", "n", 0, &p, msg, sizeof msg), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_placement_plan_pipe(pl, &no_fsm, "p", "n", 0, &p, msg, sizeof msg), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_placement_plan_pipe(pl, &in, "p", "n", 0, NULL, msg, sizeof msg), MF_ERR_INVALID_ARG);
  mf_placement_view_t v;
  assert_int_equal(mf_placement_view_build(pl, &no_fsm, NULL, &v), MF_ERR_INVALID_ARG);
  mf_placement_view_free(&v);
  assert_int_equal(mf_placement_view_build(NULL, &in, NULL, &v), MF_ERR_INVALID_ARG);
  mf_placement_view_free(&v);
  assert_int_equal(mf_placement_view_build(pl, &in, NULL, NULL), MF_ERR_INVALID_ARG);

  char long_id[MF_FSM_ID_MAX + 2];
  memset(long_id, 'x', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  const char *const bad_ids[] = {NULL, "", "a b", "tab\tid", "\x7f", "caf\xc3\xa9", long_id};
  for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
    const char *id = bad_ids[i];
    assert_int_equal(mf_placement_place_transport(pl, &in, id, 0, NULL, NULL, &t, msg, sizeof msg),
                     MF_ERR_INVALID_ARG);
    assert_non_null(strstr(msg, "malformed router id"));
    /* as the only node: malformed, not unknown (an empty one means no restriction) */
    if (id && id[0]) {
      assert_int_equal(mf_placement_place_transport(pl, &in, "r1", 0, id, NULL, &t, msg, sizeof msg),
                       MF_ERR_INVALID_ARG);
      assert_non_null(strstr(msg, "malformed node id"));
    }
    assert_int_equal(mf_placement_plan_pipe(pl, &in, id, "n1", 0, &p, msg, sizeof msg), MF_ERR_INVALID_ARG);
    assert_non_null(strstr(msg, "malformed producer id"));
    assert_int_equal(mf_placement_plan_pipe(pl, &in, "p1", id, 0, &p, msg, sizeof msg), MF_ERR_INVALID_ARG);
    /* no message buffer: the same verdict */
    assert_int_equal(mf_placement_plan_pipe(pl, &in, "p1", id, 0, &p, NULL, 0), MF_ERR_INVALID_ARG);
  }
  /* well-formed but unknown */
  assert_int_equal(mf_placement_place_transport(pl, &in, "r1", 0, "n9", NULL, &t, msg, sizeof msg),
                   MF_ERR_NOT_FOUND);
  assert_non_null(strstr(msg, "unknown node n9"));
  assert_int_equal(mf_placement_place_transport(pl, &in, "r1", 0, "", NULL, &t, NULL, 0), MF_ERR_NOT_FOUND);

  /* nothing was counted as pending or in flight; unknown flights are ignored */
  assert_int_equal(mf_placement_pending_count(pl), 0);
  assert_int_equal(mf_placement_flight_count(pl), 0);
  mf_placement_landed(pl, 0);
  mf_placement_landed(pl, 12345);
  mf_placement_landed(NULL, 1);
  mf_placement_reset(NULL);
  assert_int_equal(mf_placement_flight_count(pl), 0);
  mf_fsm_destroy(fsm);
  mf_placement_destroy(pl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_refusals),
      cmocka_unit_test(test_malformed_ids),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
