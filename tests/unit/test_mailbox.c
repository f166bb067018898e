#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <uv.h>

#include "common/mailbox.h"

enum { POSTERS = 4, PER_POSTER = 20000 };

typedef struct {
  mf_mailbox_msg_t link;
  int poster;
  int seq;
} test_msg_t;

typedef struct {
  mf_mailbox_t mb;
  uv_thread_t owner_thread;
  int next_seq[POSTERS];
  int received;
  int out_of_order;
  int wrong_thread;
  int wrong_owner;
} owner_t;

static void on_msg(mf_mailbox_msg_t *msg, void *ctx) {
  owner_t *o = ctx;
  test_msg_t *m = MF_CONTAINER_OF(msg, test_msg_t, link);
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &o->owner_thread)) o->wrong_thread++;
  if (ctx != o) o->wrong_owner++;
  if (m->seq != o->next_seq[m->poster]) o->out_of_order++;
  o->next_seq[m->poster] = m->seq + 1;
  o->received++;
  free(m);
  if (o->received == POSTERS * PER_POSTER) mf_mailbox_close(&o->mb);
}

typedef struct {
  owner_t *owner;
  int index;
} poster_arg_t;

static void poster(void *arg) {
  poster_arg_t *p = arg;
  for (int i = 0; i < PER_POSTER; i++) {
    test_msg_t *m = malloc(sizeof *m);
    m->poster = p->index;
    m->seq = i;
    if (mf_mailbox_post(&p->owner->mb, &m->link, on_msg) != MF_OK) free(m);
  }
}

static void test_many_posters_in_order_on_owner_thread(void **state) {
  owner_t o = {0};
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  o.owner_thread = uv_thread_self();
  assert_int_equal(mf_mailbox_init(&o.mb, &loop, &o), MF_OK);
  uv_thread_t th[POSTERS];
  poster_arg_t args[POSTERS];
  for (int i = 0; i < POSTERS; i++) {
    args[i] = (poster_arg_t){&o, i};
    assert_int_equal(uv_thread_create(&th[i], poster, &args[i]), 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT); /* returns once the mailbox closed itself */
  for (int i = 0; i < POSTERS; i++) uv_thread_join(&th[i]);
  assert_int_equal(o.received, POSTERS * PER_POSTER);
  assert_int_equal(o.out_of_order, 0);
  assert_int_equal(o.wrong_thread, 0);
  assert_int_equal(o.wrong_owner, 0);
  assert_int_equal(o.mb.delivered, POSTERS * PER_POSTER);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static int counted;
static void count_msg(mf_mailbox_msg_t *msg, void *ctx) {
  counted++;
  free(MF_CONTAINER_OF(msg, test_msg_t, link));
}

static void test_close_delivers_pending_and_refuses_new(void **state) {
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  mf_mailbox_t mb;
  assert_int_equal(mf_mailbox_init(&mb, &loop, NULL), MF_OK);
  counted = 0;
  /* More than one batch, never run by the loop: close itself must deliver them. */
  for (int i = 0; i < MF_MAILBOX_BATCH * 3 + 5; i++) {
    test_msg_t *m = malloc(sizeof *m);
    assert_int_equal(mf_mailbox_post(&mb, &m->link, count_msg), MF_OK);
  }
  mf_mailbox_close(&mb);
  assert_int_equal(counted, MF_MAILBOX_BATCH * 3 + 5);
  assert_true(mf_mailbox_is_closed(&mb));
  test_msg_t late;
  assert_int_equal(mf_mailbox_post(&mb, &late.link, count_msg), MF_ERR_CLOSED);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_flood_does_not_block_loop_iteration(void **state) {
  /* With more than one batch queued, one wake-up runs exactly one batch. */
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  mf_mailbox_t mb;
  assert_int_equal(mf_mailbox_init(&mb, &loop, NULL), MF_OK);
  counted = 0;
  for (int i = 0; i < MF_MAILBOX_BATCH * 2; i++) {
    test_msg_t *m = malloc(sizeof *m);
    assert_int_equal(mf_mailbox_post(&mb, &m->link, count_msg), MF_OK);
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_int_equal(counted, MF_MAILBOX_BATCH);
  while (counted < MF_MAILBOX_BATCH * 2) uv_run(&loop, UV_RUN_NOWAIT);
  mf_mailbox_close(&mb);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_many_posters_in_order_on_owner_thread),
      cmocka_unit_test(test_close_delivers_pending_and_refuses_new),
      cmocka_unit_test(test_flood_does_not_block_loop_iteration),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
