/* Pipe hub argument and lifecycle checks beyond test_pipe_hub.c, on one thread and loop:
 * create's ranges, attach/bind/unbind/send/quiesce/detach/stats with NULL hubs, workers out
 * of range, missing packets or callbacks, sends to oneself or to a detached worker (counted
 * as dropped_unbound at the source), attaching twice, binding on a detached worker, and a
 * full link (dropped_full) until the target drains it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/pipe_hub.h"

static int g_delivered;

static void on_input(void *ud, const mf_pipe_packet_t *pkt) {
  (void)ud;
  (void)pkt;
  g_delivered++;
}

static void test_create_ranges(void **state) {
  (void)state;
  mf_pipe_hub_t *hub = NULL;
  assert_int_equal(mf_pipe_hub_create(0, 0, &hub), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_pipe_hub_create(257, 0, &hub), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_pipe_hub_create(2, MF_PIPE_HUB_MAX_RING + 1, &hub), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_pipe_hub_create(2, 0, NULL), MF_ERR_INVALID_ARG);
  assert_null(hub);
  assert_int_equal(mf_pipe_hub_create(1, 4, &hub), MF_OK);
  assert_int_not_equal(mf_pipe_hub_new_id(hub), 0);
  mf_pipe_hub_destroy(hub);
  mf_pipe_hub_destroy(NULL);
}

static void test_arguments_and_lifecycle(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  mf_bufpool_t *pool;
  assert_int_equal(mf_bufpool_create(16, 256, &pool), MF_OK);
  mf_pipe_hub_t *hub;
  assert_int_equal(mf_pipe_hub_create(2, 2, &hub), MF_OK);

  assert_int_equal(mf_pipe_hub_attach(NULL, 0, &loop), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_pipe_hub_attach(hub, 2, &loop), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_pipe_hub_attach(hub, 0, NULL), MF_ERR_INVALID_ARG);
  /* binding before attaching: refused */
  assert_int_equal(mf_pipe_hub_bind(hub, 1, 5, on_input, NULL), MF_ERR_STATE);
  assert_int_equal(mf_pipe_hub_attach(hub, 0, &loop), MF_OK);
  assert_int_equal(mf_pipe_hub_attach(hub, 0, &loop), MF_ERR_STATE);
  assert_int_equal(mf_pipe_hub_bind(NULL, 0, 5, on_input, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_pipe_hub_bind(hub, 2, 5, on_input, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_pipe_hub_bind(hub, 0, 0, on_input, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_pipe_hub_bind(hub, 0, 5, NULL, NULL), MF_ERR_INVALID_ARG);
  mf_pipe_hub_unbind(NULL, 0, 5);
  mf_pipe_hub_unbind(hub, 9, 5);
  mf_pipe_hub_unbind(hub, 1, 5); /* worker 1 detached: nothing bound there */

  mf_buf_t *b = mf_bufpool_get(pool);
  b->len = 10;
  mf_pipe_packet_t pkt = {.buf = b, .pipe_id = 5};
  mf_pipe_packet_t no_buf = {.buf = NULL, .pipe_id = 5};
  mf_pipe_hub_stats_t st;
  assert_false(mf_pipe_hub_send(hub, 2, 0, &pkt));  /* bad source: counted nowhere */
  assert_false(mf_pipe_hub_send(hub, 1, 0, NULL));    /* no packet: not counted either */
  assert_false(mf_pipe_hub_send(hub, 1, 0, &no_buf));
  assert_false(mf_pipe_hub_send(hub, 1, 1, &pkt));  /* to itself */
  assert_false(mf_pipe_hub_send(hub, 1, 7, &pkt));  /* no such worker */
  assert_false(mf_pipe_hub_send(hub, 0, 1, &pkt));  /* worker 1 is not attached */
  mf_pipe_hub_stats(hub, 1, &st);
  assert_int_equal(st.dropped_unbound, 2);
  mf_pipe_hub_stats(hub, 0, &st);
  assert_int_equal(st.dropped_unbound, 1);
  mf_pipe_hub_stats(hub, 5, &st); /* out of range: zeros */
  assert_int_equal(st.sent, 0);
  mf_pipe_hub_stats(NULL, 0, &st);
  assert_int_equal(st.dropped_unbound, 0);

  /* worker 0 receives from worker 1 (a source need not be attached); ring of 2 slots */
  assert_int_equal(mf_pipe_hub_bind(hub, 0, 5, on_input, NULL), MF_OK);
  g_delivered = 0;
  assert_true(mf_pipe_hub_send(hub, 1, 0, &pkt));
  assert_true(mf_pipe_hub_send(hub, 1, 0, &pkt));
  assert_false(mf_pipe_hub_send(hub, 1, 0, &pkt)); /* both slots lent */
  mf_pipe_hub_stats(hub, 1, &st);
  assert_int_equal(st.dropped_full, 1);
  assert_int_equal(st.sent, 2);
  for (int i = 0; i < 5 && g_delivered < 2; i++) uv_run(&loop, UV_RUN_NOWAIT);
  assert_int_equal(g_delivered, 2);
  mf_pipe_hub_stats(hub, 0, &st);
  assert_int_equal(st.delivered, 2);
  /* the slots come back to the source once it collects its return ring */
  assert_true(mf_pipe_hub_send(hub, 1, 0, &pkt));
  for (int i = 0; i < 5 && g_delivered < 3; i++) uv_run(&loop, UV_RUN_NOWAIT);
  assert_int_equal(g_delivered, 3);

  mf_pipe_hub_quiesce(NULL, 0);
  mf_pipe_hub_quiesce(hub, 9);
  mf_pipe_hub_detach(NULL, 0);
  mf_pipe_hub_detach(hub, 9);
  mf_pipe_hub_detach(hub, 0); /* quiesces first */
  assert_false(mf_pipe_hub_send(hub, 1, 0, &pkt)); /* detached: no longer accepting */
  mf_pipe_hub_attach(hub, 1, &loop);
  mf_pipe_hub_quiesce(hub, 1);
  mf_pipe_hub_detach(hub, 1);
  uv_run(&loop, UV_RUN_NOWAIT);
  mf_buf_unref(b);
  mf_pipe_hub_destroy(hub);
  assert_int_equal(uv_loop_close(&loop), 0);
  mf_bufpool_destroy(pool);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create_ranges),
      cmocka_unit_test(test_arguments_and_lifecycle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
