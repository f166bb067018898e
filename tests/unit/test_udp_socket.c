#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <string.h>

#include "node/udp_socket.h"

typedef struct {
  uv_loop_t loop;
  mf_bufpool_t *pool_a, *pool_b;
  mf_udp_socket_t *a, *b;
  int received;
  int bad_content;
  int bad_source;
  int hold; /* keep received buffers instead of unref'ing them */
  mf_buf_t *held[64];
  int closed;
} fx_t;

static void on_recv_b(void *ud, mf_udp_datagram_t *d, unsigned n) {
  fx_t *f = ud;
  for (unsigned i = 0; i < n; i++) {
    uint32_t v = 0;
    if (d[i].buf->len >= 4) memcpy(&v, d[i].buf->data, 4);
    if (v != (uint32_t)f->received || d[i].buf->len != (uint32_t)(100 + f->received % 50)) f->bad_content++;
    const struct sockaddr_in *from = (const struct sockaddr_in *)&d[i].from;
    if (from->sin_family != AF_INET || ntohs(from->sin_port) != mf_udp_socket_port(f->a))
      f->bad_source++;
    f->received++;
    if (f->hold && f->hold < 64)
      f->held[f->hold++ - 1] = d[i].buf;
    else
      mf_buf_unref(d[i].buf);
  }
}

static void on_recv_a(void *ud, mf_udp_datagram_t *d, unsigned n) {
  for (unsigned i = 0; i < n; i++) mf_buf_unref(d[i].buf);
}

static void on_closed(void *ud) { ((fx_t *)ud)->closed++; }

static void open_pair(fx_t *f, uint32_t b_bufs, uint32_t b_size) {
  memset(f, 0, sizeof *f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(mf_bufpool_create(512, 2048, &f->pool_a), MF_OK);
  assert_int_equal(mf_bufpool_create(b_bufs, b_size, &f->pool_b), MF_OK);
  assert_int_equal(mf_udp_socket_open(&f->loop, f->pool_a, "127.0.0.1", 0, on_recv_a, f, &f->a), MF_OK);
  assert_int_equal(mf_udp_socket_open(&f->loop, f->pool_b, "127.0.0.1", 0, on_recv_b, f, &f->b), MF_OK);
  assert_true(mf_udp_socket_port(f->a) > 0);
}

static void close_pair(fx_t *f) {
  mf_udp_socket_close(f->a, on_closed, f);
  mf_udp_socket_close(f->b, on_closed, f);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(f->closed, 2);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  mf_bufpool_stats_t s;
  mf_bufpool_get_stats(f->pool_a, &s);
  assert_int_equal(s.in_use, 0); /* every queued and received buffer came back */
  mf_bufpool_get_stats(f->pool_b, &s);
  assert_int_equal(s.in_use, 0);
  mf_bufpool_destroy(f->pool_a);
  mf_bufpool_destroy(f->pool_b);
}

static void b_addr(fx_t *f, struct sockaddr_in *to) {
  uv_ip4_addr("127.0.0.1", mf_udp_socket_port(f->b), to);
}

static void send_numbered(fx_t *f, int count) {
  struct sockaddr_in to;
  b_addr(f, &to);
  for (int i = 0; i < count; i++) {
    uint8_t data[200];
    memset(data, 0xab, sizeof data);
    uint32_t v = (uint32_t)i;
    memcpy(data, &v, 4);
    assert_int_equal(mf_udp_socket_send_copy(f->a, data, 100 + (size_t)(i % 50), (struct sockaddr *)&to), MF_OK);
  }
}

static void run_until(fx_t *f, int received) {
  for (int i = 0; i < 2000 && f->received < received; i++) uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void test_batch_round_trip_on_loopback(void **state) {
  fx_t f;
  open_pair(&f, 512, 2048);
  /* 600 > send queue: the queue flushes itself when full, the rest at the loop's check phase */
  send_numbered(&f, 600);
  run_until(&f, 600);
  assert_int_equal(f.received, 600);
  assert_int_equal(f.bad_content, 0);
  assert_int_equal(f.bad_source, 0);
  mf_udp_stats_t sa, sb;
  mf_udp_socket_get_stats(f.a, &sa);
  mf_udp_socket_get_stats(f.b, &sb);
  assert_int_equal(sa.packets_out, 600);
  assert_true(sa.send_calls < 600); /* batched */
  assert_int_equal(sb.packets_in, 600);
  assert_true(sb.recv_calls < 600);
  assert_int_equal(sb.bytes_in, sa.bytes_out);
  close_pair(&f);
}

static void test_truncated_datagrams_are_dropped_and_counted(void **state) {
  fx_t f;
  open_pair(&f, 16, 64); /* 64-byte buffers: our 100+ byte datagrams do not fit */
  send_numbered(&f, 5);
  for (int i = 0; i < 200; i++) uv_run(&f.loop, UV_RUN_NOWAIT);
  mf_udp_stats_t sb;
  mf_udp_socket_get_stats(f.b, &sb);
  assert_int_equal(f.received, 0);
  assert_int_equal(sb.dropped_truncated, 5);
  close_pair(&f);
}

static void test_pool_exhaustion_drops_without_spinning(void **state) {
  fx_t f;
  open_pair(&f, 4, 2048);
  f.hold = 1; /* the receiver keeps every buffer: the pool runs dry */
  send_numbered(&f, 40);
  for (int i = 0; i < 500; i++) uv_run(&f.loop, UV_RUN_NOWAIT);
  mf_udp_stats_t sb;
  mf_udp_socket_get_stats(f.b, &sb);
  assert_int_equal(f.received, 4);
  assert_int_equal(sb.dropped_no_buffer, 36);
  for (int i = 0; i < f.hold - 1; i++) mf_buf_unref(f.held[i]);
  close_pair(&f);
}

static void test_bad_addresses(void **state) {
  uv_loop_t loop;
  mf_bufpool_t *pool;
  mf_udp_socket_t *s;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(mf_bufpool_create(4, 2048, &pool), MF_OK);
  assert_int_equal(mf_udp_socket_open(&loop, pool, "not-an-ip", 0, on_recv_a, NULL, &s), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_udp_socket_open(&loop, pool, "::1", 0, on_recv_a, NULL, &s), MF_OK);
  uint16_t port = mf_udp_socket_port(s);
  mf_udp_socket_t *dup;
  assert_int_equal(mf_udp_socket_open(&loop, pool, "::1", port, on_recv_a, NULL, &dup), MF_ERR_EXISTS);
  struct sockaddr unspec = {.sa_family = AF_UNSPEC};
  assert_int_equal(mf_udp_socket_send_copy(s, (const uint8_t *)"x", 1, &unspec), MF_ERR_INVALID_ARG);
  uint8_t big[4096] = {0};
  struct sockaddr_in6 to;
  uv_ip6_addr("::1", port, &to);
  assert_int_equal(mf_udp_socket_send_copy(s, big, sizeof big, (struct sockaddr *)&to), MF_ERR_LIMIT);
  mf_udp_socket_close(s, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  mf_bufpool_destroy(pool);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_batch_round_trip_on_loopback),
      cmocka_unit_test(test_truncated_datagrams_are_dropped_and_counted),
      cmocka_unit_test(test_pool_exhaustion_drops_without_spinning),
      cmocka_unit_test(test_bad_addresses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
