/* SCTP associations over usrsctp: two associations of this process connected back to
 * back (each one's packets queued and fed into the other, never by recursive calls),
 * without a loop: the test drains and advances usrsctp's timers itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <uv.h>

#include <cmocka.h>

#include "node/sctp_association.h"

#define MAX_MSGS 256

typedef struct pkt {
  struct pkt *next;
  size_t len;
  uint8_t data[];
} pkt_t;

typedef struct {
  uint16_t sid;
  uint32_t ppid;
  size_t len;
  uint8_t *data;
} msg_t;

typedef struct end {
  mf_sctp_association_t *a;
  struct end *peer;
  pkt_t *head, *tail; /* packets on their way to peer */
  mf_sctp_state_t states[8];
  size_t state_count;
  msg_t msgs[MAX_MSGS];
  size_t msg_count;
  uint16_t resets[16];
  size_t reset_count;
  unsigned drop_from, drop_count; /* drop packets drop_from.. of those this end sends */
  unsigned sent;
  bool free_on_message; /* frees its own association from the message callback */
} end_t;

static void on_send(void *ud, const uint8_t *data, size_t len) {
  end_t *e = ud;
  e->sent++;
  if (e->drop_from && e->sent >= e->drop_from && e->sent < e->drop_from + e->drop_count) return;
  pkt_t *p = malloc(sizeof *p + len);
  assert_non_null(p);
  p->next = NULL;
  p->len = len;
  memcpy(p->data, data, len);
  if (e->tail) e->tail->next = p;
  else e->head = p;
  e->tail = p;
}

static void on_state(void *ud, mf_sctp_state_t s) {
  end_t *e = ud;
  assert_true(e->state_count < 8);
  e->states[e->state_count++] = s;
}

static void on_message(void *ud, uint16_t sid, uint32_t ppid, const uint8_t *data, size_t len) {
  end_t *e = ud;
  assert_true(e->msg_count < MAX_MSGS);
  msg_t *m = &e->msgs[e->msg_count++];
  m->sid = sid;
  m->ppid = ppid;
  m->len = len;
  m->data = malloc(len);
  memcpy(m->data, data, len);
  if (e->free_on_message) {
    mf_sctp_association_free(e->a); /* deferred until the callback returns */
    e->a = NULL;
  }
}

static void on_reset(void *ud, uint16_t sid) {
  end_t *e = ud;
  assert_true(e->reset_count < 16);
  e->resets[e->reset_count++] = sid;
}

static const mf_sctp_callbacks_t cb = {
    .send = on_send, .state = on_state, .message = on_message, .stream_reset = on_reset};

/* Delivers queued packets both ways until nothing moves. */
static size_t pump(end_t *x, end_t *y) {
  size_t moved = 0;
  for (;;) {
    bool any = false;
    end_t *ends[2] = {x, y};
    for (int i = 0; i < 2; i++) {
      end_t *e = ends[i];
      pkt_t *p = e->head;
      e->head = e->tail = NULL;
      while (p) {
        pkt_t *n = p->next;
        if (e->peer->a) mf_sctp_association_handle_packet(e->peer->a, p->data, p->len);
        free(p);
        p = n;
        any = true;
        moved++;
      }
    }
    if (!any) return moved;
  }
}

/* Pumps and runs usrsctp's timers (SACK delay, retransmissions) until idle. */
static void settle(end_t *x, end_t *y, unsigned rounds) {
  for (unsigned i = 0; i < rounds; i++) {
    pump(x, y);
    mf_sctp_handle_timers(50);
    if (x->a) mf_sctp_association_process(x->a);
    if (y->a) mf_sctp_association_process(y->a);
  }
  pump(x, y);
}

static void ends_free(end_t *x, end_t *y) {
  end_t *ends[2] = {x, y};
  for (int i = 0; i < 2; i++) {
    mf_sctp_association_free(ends[i]->a);
    ends[i]->a = NULL;
  }
  for (int i = 0; i < 2; i++) {
    end_t *e = ends[i];
    while (e->head) {
      pkt_t *n = e->head->next;
      free(e->head);
      e->head = n;
    }
    for (size_t k = 0; k < e->msg_count; k++) free(e->msgs[k].data);
    free(e);
  }
}

static void connect_pair(end_t **px, end_t **py, const mf_sctp_options_t *ox,
                         const mf_sctp_options_t *oy) {
  end_t *x = calloc(1, sizeof *x), *y = calloc(1, sizeof *y);
  x->peer = y;
  y->peer = x;
  assert_int_equal(mf_sctp_association_create(NULL, ox, &cb, x, &x->a), MF_OK);
  assert_int_equal(mf_sctp_association_create(NULL, oy, &cb, y, &y->a), MF_OK);
  assert_int_equal(mf_sctp_association_state(x->a), MF_SCTP_STATE_NEW);
  assert_int_equal(mf_sctp_association_connect(x->a), MF_OK);
  assert_int_equal(mf_sctp_association_connect(y->a), MF_OK);
  assert_int_equal(mf_sctp_association_connect(y->a), MF_ERR_STATE);
  settle(x, y, 10);
  assert_int_equal(mf_sctp_association_state(x->a), MF_SCTP_STATE_CONNECTED);
  assert_int_equal(mf_sctp_association_state(y->a), MF_SCTP_STATE_CONNECTED);
  *px = x;
  *py = y;
}

static void test_connect_and_states(void **state) {
  (void)state;
  end_t *x, *y;
  connect_pair(&x, &y, NULL, NULL);
  assert_int_equal(x->state_count, 2);
  assert_int_equal(x->states[0], MF_SCTP_STATE_CONNECTING);
  assert_int_equal(x->states[1], MF_SCTP_STATE_CONNECTED);
  assert_int_equal(mf_sctp_association_out_streams(x->a), MF_SCTP_DEFAULT_STREAMS);
  mf_sctp_options_t o;
  mf_sctp_association_options(x->a, &o);
  assert_int_equal(o.max_message_size, MF_SCTP_DEFAULT_MAX_MESSAGE_SIZE);
  ends_free(x, y);
}

static void test_stream_counts_negotiated(void **state) {
  (void)state;
  /* outgoing streams are capped by the peer's max incoming */
  mf_sctp_options_t ox = {.os = 300, .mis = 100}, oy = {.os = 50, .mis = 200};
  end_t *x, *y;
  connect_pair(&x, &y, &ox, &oy);
  assert_int_equal(mf_sctp_association_out_streams(x->a), 200);
  assert_int_equal(mf_sctp_association_out_streams(y->a), 50);
  uint8_t b = 1;
  mf_sctp_send_params_t rel = {.ordered = true, .max_retransmits = -1, .max_packet_life_time = -1};
  assert_int_equal(mf_sctp_association_send(x->a, 200, MF_SCTP_PPID_BINARY, &rel, &b, 1),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sctp_association_send(x->a, 199, MF_SCTP_PPID_BINARY, &rel, &b, 1), MF_OK);
  settle(x, y, 3);
  assert_int_equal(y->msg_count, 1);
  assert_int_equal(y->msgs[0].sid, 199);
  ends_free(x, y);
}

static void test_ordered_and_unordered_messages(void **state) {
  (void)state;
  end_t *x, *y;
  connect_pair(&x, &y, NULL, NULL);
  mf_sctp_send_params_t ordered = {.ordered = true, .max_retransmits = -1, .max_packet_life_time = -1};
  mf_sctp_send_params_t unordered = {.ordered = false, .max_retransmits = 0, .max_packet_life_time = -1};
  char text[32];
  for (int i = 0; i < 50; i++) {
    int n = snprintf(text, sizeof text, "ordered %d", i);
    assert_int_equal(mf_sctp_association_send(x->a, 1, MF_SCTP_PPID_STRING, &ordered,
                                              (const uint8_t *)text, (size_t)n), MF_OK);
    n = snprintf(text, sizeof text, "unordered %d", i);
    assert_int_equal(mf_sctp_association_send(x->a, 2, MF_SCTP_PPID_BINARY, &unordered,
                                              (const uint8_t *)text, (size_t)n), MF_OK);
  }
  settle(x, y, 5);
  assert_int_equal(y->msg_count, 100);
  int next_ordered = 0, unordered_seen = 0;
  for (size_t i = 0; i < y->msg_count; i++) {
    msg_t *m = &y->msgs[i];
    if (m->sid == 1) {
      assert_int_equal(m->ppid, MF_SCTP_PPID_STRING);
      int n = snprintf(text, sizeof text, "ordered %d", next_ordered++);
      assert_int_equal(m->len, (size_t)n);
      assert_memory_equal(m->data, text, m->len);
    } else {
      assert_int_equal(m->sid, 2);
      assert_int_equal(m->ppid, MF_SCTP_PPID_BINARY);
      assert_memory_equal(m->data, "unordered ", 10);
      unordered_seen++;
    }
  }
  assert_int_equal(next_ordered, 50);
  assert_int_equal(unordered_seen, 50);
  /* and the other way */
  assert_int_equal(mf_sctp_association_send(y->a, 7, MF_SCTP_PPID_STRING, &ordered,
                                            (const uint8_t *)"pong", 4), MF_OK);
  settle(x, y, 3);
  assert_int_equal(x->msg_count, 1);
  assert_memory_equal(x->msgs[0].data, "pong", 4);
  mf_sctp_stats_t st;
  mf_sctp_association_get_stats(x->a, &st);
  assert_int_equal(st.messages_sent, 100);
  assert_int_equal(st.messages_received, 1);
  ends_free(x, y);
}

static void fill(uint8_t *b, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(i * 31u + seed);
}

static void test_large_messages_fragmented(void **state) {
  (void)state;
  end_t *x, *y;
  connect_pair(&x, &y, NULL, NULL);
  mf_sctp_send_params_t ordered = {.ordered = true, .max_retransmits = -1, .max_packet_life_time = -1};
  static const size_t sizes[] = {16 * 1024 + 1, 64 * 1024, 200 * 1024, MF_SCTP_DEFAULT_MAX_MESSAGE_SIZE};
  uint8_t *buf = malloc(MF_SCTP_DEFAULT_MAX_MESSAGE_SIZE + 1);
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    fill(buf, sizes[i], (unsigned)i);
    size_t before = x->sent;
    assert_int_equal(mf_sctp_association_send(x->a, 3, MF_SCTP_PPID_BINARY, &ordered, buf, sizes[i]),
                     MF_OK);
    settle(x, y, 40);
    /* fragmented: one SCTP packet never holds more than the path MTU */
    assert_true(x->sent - before > sizes[i] / MF_SCTP_MTU);
  }
  assert_int_equal(y->msg_count, 4);
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(y->msgs[i].len, sizes[i]);
    fill(buf, sizes[i], (unsigned)i);
    assert_memory_equal(y->msgs[i].data, buf, sizes[i]);
  }
  assert_int_equal(mf_sctp_association_send(x->a, 3, MF_SCTP_PPID_BINARY, &ordered, buf,
                                            MF_SCTP_DEFAULT_MAX_MESSAGE_SIZE + 1), MF_ERR_LIMIT);
  free(buf);
  ends_free(x, y);
}

/* usrsctp retransmits only chunks older than the RTO in REAL time (it stamps them with
 * the wall clock), so this test lets real time pass: bounded by 10 s, typically ~1 s. */
static void test_loss_recovered_by_retransmission(void **state) {
  (void)state;
  end_t *x, *y;
  connect_pair(&x, &y, NULL, NULL);
  x->drop_from = x->sent + 3; /* lose the 3rd and 4th data packets and the first SACK after */
  x->drop_count = 2;
  y->drop_from = y->sent + 1;
  y->drop_count = 1;
  mf_sctp_send_params_t ordered = {.ordered = true, .max_retransmits = -1, .max_packet_life_time = -1};
  uint8_t *buf = malloc(40000);
  fill(buf, 40000, 9);
  assert_int_equal(mf_sctp_association_send(x->a, 5, MF_SCTP_PPID_BINARY, &ordered, buf, 40000), MF_OK);
  for (int i = 0; i < 20; i++)
    assert_int_equal(mf_sctp_association_send(x->a, 5, MF_SCTP_PPID_STRING, &ordered,
                                              (const uint8_t *)&i, sizeof i), MF_OK);
  for (int round = 0; round < 200 && y->msg_count < 21; round++) {
    settle(x, y, 1);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  assert_int_equal(y->msg_count, 21);
  assert_int_equal(y->msgs[0].len, 40000);
  assert_memory_equal(y->msgs[0].data, buf, 40000);
  for (int i = 0; i < 20; i++) assert_memory_equal(y->msgs[i + 1].data, &i, sizeof i);
  free(buf);
  ends_free(x, y);
}

static void test_send_errors(void **state) {
  (void)state;
  end_t *x = calloc(1, sizeof *x), *y = calloc(1, sizeof *y);
  x->peer = y;
  y->peer = x;
  assert_int_equal(mf_sctp_association_create(NULL, NULL, &cb, x, &x->a), MF_OK);
  assert_int_equal(mf_sctp_association_create(NULL, NULL, &cb, y, &y->a), MF_OK);
  uint8_t b = 0;
  assert_int_equal(mf_sctp_association_send(x->a, 0, MF_SCTP_PPID_BINARY, NULL, &b, 1), MF_ERR_STATE);
  assert_int_equal(mf_sctp_association_reset_stream(x->a, 0), MF_ERR_STATE);
  /* packets before connect are ignored */
  mf_sctp_association_handle_packet(x->a, (const uint8_t *)"garbage", 7);
  assert_int_equal(mf_sctp_association_connect(x->a), MF_OK);
  assert_int_equal(mf_sctp_association_connect(y->a), MF_OK);
  /* garbage while connecting: dropped by usrsctp (checksum) */
  mf_sctp_association_handle_packet(y->a, (const uint8_t *)"garbage that is not sctp", 24);
  settle(x, y, 10);
  assert_int_equal(mf_sctp_association_state(x->a), MF_SCTP_STATE_CONNECTED);
  assert_int_equal(mf_sctp_association_send(x->a, 0, MF_SCTP_PPID_BINARY, NULL, &b, 0), MF_ERR_INVALID_ARG);
  mf_sctp_callbacks_t nosend = cb;
  nosend.send = NULL;
  mf_sctp_association_t *z = NULL;
  assert_int_equal(mf_sctp_association_create(NULL, NULL, &nosend, x, &z), MF_ERR_INVALID_ARG);
  ends_free(x, y);
}

static void test_stream_reset_is_mirrored(void **state) {
  (void)state;
  end_t *x, *y;
  connect_pair(&x, &y, NULL, NULL);
  mf_sctp_send_params_t ordered = {.ordered = true, .max_retransmits = -1, .max_packet_life_time = -1};
  assert_int_equal(mf_sctp_association_send(x->a, 4, MF_SCTP_PPID_STRING, &ordered,
                                            (const uint8_t *)"bye", 3), MF_OK);
  assert_int_equal(mf_sctp_association_reset_stream(x->a, 4), MF_OK);
  settle(x, y, 10);
  assert_int_equal(y->msg_count, 1);
  /* y saw x close stream 4 and closed its side; x then saw y's reset */
  assert_int_equal(y->reset_count, 1);
  assert_int_equal(y->resets[0], 4);
  assert_int_equal(x->reset_count, 1);
  assert_int_equal(x->resets[0], 4);
  /* the stream can be used again afterwards */
  assert_int_equal(mf_sctp_association_send(x->a, 4, MF_SCTP_PPID_STRING, &ordered,
                                            (const uint8_t *)"again", 5), MF_OK);
  settle(x, y, 3);
  assert_int_equal(y->msg_count, 2);
  assert_memory_equal(y->msgs[1].data, "again", 5);
  ends_free(x, y);
}

static void test_close_and_free_inside_callback(void **state) {
  (void)state;
  end_t *x, *y;
  connect_pair(&x, &y, NULL, NULL);
  y->free_on_message = true;
  mf_sctp_send_params_t ordered = {.ordered = true, .max_retransmits = -1, .max_packet_life_time = -1};
  assert_int_equal(mf_sctp_association_send(x->a, 1, MF_SCTP_PPID_STRING, &ordered,
                                            (const uint8_t *)"one", 3), MF_OK);
  assert_int_equal(mf_sctp_association_send(x->a, 1, MF_SCTP_PPID_STRING, &ordered,
                                            (const uint8_t *)"two", 3), MF_OK);
  settle(x, y, 3);
  /* y freed itself in the first message callback: no callback ran after it */
  assert_null(y->a);
  assert_int_equal(y->msg_count, 1);
  /* x keeps working (its packets go nowhere now) */
  assert_int_equal(mf_sctp_association_send(x->a, 1, MF_SCTP_PPID_STRING, &ordered,
                                            (const uint8_t *)"three", 5), MF_OK);
  settle(x, y, 2);
  ends_free(x, y);
}

/* ---- loop-driven pairs on two threads at once: the real timer, the async wake-up and the
 * process mutex (usrsctp is one global stack) under concurrent use ---- */

#define THREAD_MSGS 300

typedef struct lend {
  mf_sctp_association_t *a;
  struct lend *peer;
  struct lpair *pair;
  unsigned received;
  bool connected;
} lend_t;

typedef struct lpair {
  uv_loop_t loop;
  uv_timer_t deadline, kick;
  lend_t x, y;
  bool sent, done, timed_out;
  unsigned ordered_errors;
} lpair_t;

static void l_send(void *ud, const uint8_t *data, size_t len) {
  lend_t *e = ud;
  /* straight into the peer: its process() runs nested at most once (the module's
   * reentrancy guard defers the rest to the outer loop) */
  if (e->peer->a) mf_sctp_association_handle_packet(e->peer->a, data, len);
}

static void l_state(void *ud, mf_sctp_state_t s) {
  lend_t *e = ud;
  if (s == MF_SCTP_STATE_CONNECTED) e->connected = true;
}

static void l_message(void *ud, uint16_t sid, uint32_t ppid, const uint8_t *data, size_t len) {
  lend_t *e = ud;
  (void)sid;
  (void)ppid;
  unsigned v = 0;
  if (len == sizeof v) memcpy(&v, data, sizeof v);
  if (v != e->received) e->pair->ordered_errors++;
  e->received++;
  if (e->pair->x.received == THREAD_MSGS && e->pair->y.received == THREAD_MSGS) {
    e->pair->done = true;
    uv_stop(&e->pair->loop);
  }
}

static const mf_sctp_callbacks_t lcb = {.send = l_send, .state = l_state, .message = l_message};

static void l_kick(uv_timer_t *t) {
  lpair_t *p = t->data;
  if (p->sent || !p->x.connected || !p->y.connected) return;
  p->sent = true;
  mf_sctp_send_params_t rel = {.ordered = true, .max_retransmits = -1, .max_packet_life_time = -1};
  for (unsigned i = 0; i < THREAD_MSGS; i++) {
    (void)mf_sctp_association_send(p->x.a, 1, MF_SCTP_PPID_BINARY, &rel, (const uint8_t *)&i, sizeof i);
    (void)mf_sctp_association_send(p->y.a, 2, MF_SCTP_PPID_BINARY, &rel, (const uint8_t *)&i, sizeof i);
  }
}

static void l_deadline(uv_timer_t *t) {
  lpair_t *p = t->data;
  p->timed_out = true;
  uv_stop(&p->loop);
}

static void *l_thread(void *arg) {
  lpair_t *p = arg;
  uv_loop_init(&p->loop);
  p->x.peer = &p->y;
  p->y.peer = &p->x;
  p->x.pair = p->y.pair = p;
  if (mf_sctp_association_create(&p->loop, NULL, &lcb, &p->x, &p->x.a) != MF_OK ||
      mf_sctp_association_create(&p->loop, NULL, &lcb, &p->y, &p->y.a) != MF_OK)
    return NULL;
  uv_timer_init(&p->loop, &p->deadline);
  uv_timer_init(&p->loop, &p->kick);
  p->deadline.data = p->kick.data = p;
  uv_timer_start(&p->deadline, l_deadline, 20000, 0);
  uv_timer_start(&p->kick, l_kick, 5, 5);
  mf_sctp_association_connect(p->x.a);
  mf_sctp_association_connect(p->y.a);
  uv_run(&p->loop, UV_RUN_DEFAULT);
  mf_sctp_association_t *x = p->x.a, *y = p->y.a;
  p->x.a = p->y.a = NULL;
  mf_sctp_association_free(x);
  mf_sctp_association_free(y);
  uv_close((uv_handle_t *)&p->deadline, NULL);
  uv_close((uv_handle_t *)&p->kick, NULL);
  uv_run(&p->loop, UV_RUN_DEFAULT); /* the associations' handles close */
  uv_loop_close(&p->loop);
  return NULL;
}

static void test_loops_on_two_threads(void **state) {
  (void)state;
  lpair_t pairs[2];
  memset(pairs, 0, sizeof pairs);
  pthread_t th[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, l_thread, &pairs[i]), 0);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 2; i++) {
    assert_false(pairs[i].timed_out);
    assert_true(pairs[i].done);
    assert_int_equal(pairs[i].x.received, THREAD_MSGS);
    assert_int_equal(pairs[i].y.received, THREAD_MSGS);
    assert_int_equal(pairs[i].ordered_errors, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_connect_and_states),
      cmocka_unit_test(test_stream_counts_negotiated),
      cmocka_unit_test(test_ordered_and_unordered_messages),
      cmocka_unit_test(test_large_messages_fragmented),
      cmocka_unit_test(test_loss_recovered_by_retransmission),
      cmocka_unit_test(test_send_errors),
      cmocka_unit_test(test_stream_reset_is_mirrored),
      cmocka_unit_test(test_close_and_free_inside_callback),
      cmocka_unit_test(test_loops_on_two_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
