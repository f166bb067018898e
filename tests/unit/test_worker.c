#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <string.h>
#include <uv.h>

#include "common/clock.h"
#include "node/srtp.h"
#include "node/worker.h"

static mf_dtls_cert_t *cert;

static int setup_cert(void **state) {
  if (mf_srtp_library_init() != MF_OK) return -1;
  return mf_dtls_cert_generate(&cert) == MF_OK ? 0 : -1;
}

static int free_cert(void **state) {
  mf_dtls_cert_free(cert);
  return 0;
}

static mf_worker_options_t opts(uint32_t index, int cpu) {
  mf_worker_options_t o = {.index = index, .cpu = cpu, .rtc_listen_ip = "127.0.0.1",
                           .rtc_port = 0, .announced_ip = "127.0.0.1", .cert = cert};
  return o;
}

typedef struct {
  mf_mailbox_msg_t link;
  uv_thread_t seen_thread;
  mf_worker_t *seen_worker;
  uv_loop_t *seen_loop;
  uv_sem_t done;
} probe_t;

static void on_probe(mf_mailbox_msg_t *msg, void *ctx) {
  probe_t *p = MF_CONTAINER_OF(msg, probe_t, link);
  p->seen_thread = uv_thread_self();
  p->seen_worker = ctx;
  p->seen_loop = mf_worker_loop(ctx);
  uv_sem_post(&p->done);
}

static void test_commands_run_on_worker_thread(void **state) {
  mf_worker_t *w = NULL;
  mf_worker_options_t o = opts(2, -1);
  assert_int_equal(mf_worker_start(&o, &w), MF_OK);
  assert_int_equal(mf_worker_index(w), 2);
  assert_int_equal(mf_worker_cpu(w), -1);
  assert_true(mf_worker_rtc_port(w) > 0);
  probe_t p;
  memset(&p, 0, sizeof p);
  uv_sem_init(&p.done, 0);
  assert_int_equal(mf_worker_post(w, &p.link, on_probe), MF_OK);
  uv_sem_wait(&p.done);
  uv_thread_t self = uv_thread_self();
  assert_false(uv_thread_equal(&self, &p.seen_thread));
  assert_ptr_equal(p.seen_worker, w);
  assert_non_null(p.seen_loop);
  uv_sem_destroy(&p.done);
  mf_worker_stop(w);
}

static atomic_int ran_late;
static void on_late(mf_mailbox_msg_t *msg, void *ctx) { atomic_fetch_add(&ran_late, 1); }

static void test_stop_runs_queued_commands_first(void **state) {
  mf_worker_t *w = NULL;
  mf_worker_options_t o = opts(0, 0); /* cpu 0 exists on every machine */
  assert_int_equal(mf_worker_start(&o, &w), MF_OK);
  assert_true(mf_worker_cpu(w) == 0 || mf_worker_cpu(w) == -1);
  mf_mailbox_msg_t msgs[100];
  for (int i = 0; i < 100; i++) assert_int_equal(mf_worker_post(w, &msgs[i], on_late), MF_OK);
  mf_worker_stop(w); /* joins: every queued command ran before the thread ended */
  assert_int_equal(atomic_load(&ran_late), 100);
}

static void test_port_in_use_fails_start(void **state) {
  mf_worker_t *a = NULL, *b = NULL;
  mf_worker_options_t o = opts(0, -1);
  assert_int_equal(mf_worker_start(&o, &a), MF_OK);
  o.rtc_port = mf_worker_rtc_port(a);
  assert_int_equal(mf_worker_start(&o, &b), MF_ERR_EXISTS);
  assert_null(b);
  mf_worker_stop(a);
}

static void test_pinning_to_missing_cpu_degrades_to_unpinned(void **state) {
  mf_worker_t *w = NULL;
  mf_worker_options_t o = opts(1, 1000);
  assert_int_equal(mf_worker_start(&o, &w), MF_OK);
  assert_int_equal(mf_worker_cpu(w), -1);
  mf_worker_stop(w);
  mf_worker_stop(NULL);
}

typedef struct {
  mf_mailbox_msg_t link;
  uv_sem_t started;
} stall_t;

/* Blocks the worker's loop, as a runaway computation or a blocking call would. */
static void on_stall(mf_mailbox_msg_t *msg, void *ctx) {
  stall_t *s = MF_CONTAINER_OF(msg, stall_t, link);
  uv_sem_post(&s->started);
  uv_sleep(MF_WORKER_STALL_MS + 600);
}

/* The heartbeat is what the agent watches: it advances while the loop runs, stops while a
 * command blocks the loop, and resumes after. */
static void test_heartbeat_stops_while_the_loop_is_blocked(void **state) {
  mf_worker_t *w = NULL;
  mf_worker_options_t o = opts(0, -1);
  assert_int_equal(mf_worker_start(&o, &w), MF_OK);
  mf_worker_load_t a, b;
  mf_worker_get_load(w, &a);
  assert_true(a.heartbeat_ms > 0);
  uint64_t deadline = mf_clock_now_ms() + 5000;
  do {
    uv_sleep(50);
    mf_worker_get_load(w, &b);
  } while (b.heartbeat_ms == a.heartbeat_ms && mf_clock_now_ms() < deadline);
  assert_true(b.heartbeat_ms > a.heartbeat_ms);

  stall_t s;
  uv_sem_init(&s.started, 0);
  assert_int_equal(mf_worker_post(w, &s.link, on_stall), MF_OK);
  uv_sem_wait(&s.started);
  uint64_t blocked_at = mf_clock_now_ms();
  uv_sleep(MF_WORKER_STALL_MS + 100);
  mf_worker_get_load(w, &a);
  assert_true(a.heartbeat_ms <= blocked_at);                 /* no beat while blocked */
  assert_true(mf_clock_now_ms() - a.heartbeat_ms >= MF_WORKER_STALL_MS); /* => stalled */
  deadline = mf_clock_now_ms() + 10000;
  do {
    uv_sleep(50);
    mf_worker_get_load(w, &b);
  } while (b.heartbeat_ms <= blocked_at && mf_clock_now_ms() < deadline);
  assert_true(b.heartbeat_ms > blocked_at);                  /* beats again */
  uv_sem_destroy(&s.started);
  mf_worker_stop(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_commands_run_on_worker_thread),
      cmocka_unit_test(test_heartbeat_stops_while_the_loop_is_blocked),
      cmocka_unit_test(test_stop_runs_queued_commands_first),
      cmocka_unit_test(test_pinning_to_missing_cpu_degrades_to_unpinned),
      cmocka_unit_test(test_port_in_use_fails_start),
  };
  return cmocka_run_group_tests(tests, setup_cert, free_cert);
}
