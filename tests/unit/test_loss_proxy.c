/* The chaos tests' loss proxy (tests/support/loss_proxy.h) on loopback: UDP drop fractions
 * (0, 30%, 100%, counters that add up, the target's own datagrams not relayed), TCP bytes
 * intact and in order through stalls, resets drawn at 100%. No timing assertions: waits are
 * bounded only so a broken relay fails instead of hanging. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/loss_proxy.h"

static int udp_bound(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  int buf = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  *port = ntohs(a.sin_port);
  return fd;
}

static void send_to(int fd, uint16_t port, const void *data, size_t len) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  assert_int_equal(sendto(fd, data, len, 0, (struct sockaddr *)&a, sizeof a), (ssize_t)len);
}

/* Datagrams readable on fd until none arrives for 200 ms; checks their sequence numbers
 * rise (the relay keeps order). */
static int drain(int fd) {
  int n = 0, last = -1;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while (poll(&p, 1, 200) == 1) {
    int seq;
    ssize_t r = recv(fd, &seq, sizeof seq, 0);
    assert_int_equal(r, (ssize_t)sizeof seq);
    assert_true(seq > last);
    last = seq;
    n++;
  }
  return n;
}

/* Sends `count` datagrams through a relay with `drop`; returns how many arrived. */
static int udp_run(double drop, int count, mf_loss_proxy_stats_t *st) {
  uint16_t target_port, relay_port;
  int target = udp_bound(&target_port);
  uint16_t sender_port;
  int sender = udp_bound(&sender_port);
  char target_addr[32];
  snprintf(target_addr, sizeof target_addr, "127.0.0.1:%u", target_port);
  mf_loss_proxy_t *p = mf_loss_proxy_create(42);
  assert_non_null(p);
  int relay = mf_loss_proxy_add_udp(p, "t", "127.0.0.1", target_addr, drop, &relay_port);
  assert_int_equal(relay, 0);
  assert_int_equal(mf_loss_proxy_start(p), 0);
  int received = 0;
  /* In bursts small enough for the socket buffers: only the proxy's draw may drop. */
  for (int seq = 0; seq < count;) {
    for (int k = 0; k < 250 && seq < count; k++, seq++)
      send_to(sender, relay_port, &seq, sizeof seq);
    received += drain(target);
  }
  received += drain(target);
  /* The target answering the relay's address is not relayed back to it. */
  int seq = count;
  send_to(target, relay_port, &seq, sizeof seq);
  assert_int_equal(drain(target), 0);
  mf_loss_proxy_stats(p, relay, st);
  mf_loss_proxy_stop(p);
  close(target);
  close(sender);
  return received;
}

static void test_udp_drop_fractions(void **state) {
  (void)state;
  static const struct {
    double drop;
    int min_pct, max_pct; /* of 1000 datagrams dropped (a seeded draw: the same each run) */
  } cases[] = {{0.0, 0, 0}, {0.3, 26, 34}, {1.0, 100, 100}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_loss_proxy_stats_t st;
    int got = udp_run(cases[i].drop, 1000, &st);
    assert_int_equal(st.in, 1000);
    assert_int_equal(st.in, st.dropped + st.forwarded);
    assert_int_equal(got, (int)st.forwarded);
    assert_true(st.ignored >= 1);
    int pct = (int)(st.dropped * 100 / st.in);
    assert_in_range(pct, cases[i].min_pct, cases[i].max_pct);
  }
}

static void test_bad_arguments(void **state) {
  (void)state;
  mf_loss_proxy_t *p = mf_loss_proxy_create(1);
  uint16_t port;
  static const char *const bad_targets[] = {"", "127.0.0.1", "nohost:1", "1.2.3.4.5:6",
                                            ":80"};
  for (size_t i = 0; i < sizeof bad_targets / sizeof bad_targets[0]; i++)
    assert_int_equal(mf_loss_proxy_add_udp(p, "x", "127.0.0.1", bad_targets[i], 0, &port), -1);
  assert_int_equal(mf_loss_proxy_add_tcp(p, "x", "not-an-ip", "127.0.0.1:9", 0, 0, &port), -1);
  assert_int_equal(mf_loss_proxy_add_tcp(p, "x", "127.0.0.1", "127.0.0.1:9", 0, 0, &port), 0);
  assert_int_equal(mf_loss_proxy_start(p), 0);
  /* No relays once running; out-of-range indexes are ignored. */
  assert_int_equal(mf_loss_proxy_add_udp(p, "y", "127.0.0.1", "127.0.0.1:9", 0, &port), -1);
  mf_loss_proxy_set(p, 7, 1.0, 1.0);
  mf_loss_proxy_stats_t st;
  mf_loss_proxy_stats(p, 7, &st);
  assert_int_equal(st.in, 0);
  mf_loss_proxy_stop(p);
  mf_loss_proxy_stop(NULL);
}

/* ---- TCP ---- */

static int tcp_listener(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 4), 0);
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  *port = ntohs(a.sin_port);
  return fd;
}

static int tcp_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* Reads up to size bytes (until EOF, error or 10 s without data); returns the count. */
static size_t read_all(int fd, uint8_t *buf, size_t size) {
  size_t got = 0;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while (got < size && poll(&p, 1, 10000) == 1) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r <= 0) break;
    got += (size_t)r;
  }
  return got;
}

static void test_tcp_stalls_keep_bytes_in_order(void **state) {
  (void)state;
  uint16_t target_port, relay_port;
  int lfd = tcp_listener(&target_port);
  char target[32];
  snprintf(target, sizeof target, "127.0.0.1:%u", target_port);
  mf_loss_proxy_t *p = mf_loss_proxy_create(7);
  int relay = mf_loss_proxy_add_tcp(p, "rpc", "127.0.0.1", target, 0.3, 0, &relay_port);
  assert_int_equal(relay, 0);
  assert_int_equal(mf_loss_proxy_start(p), 0);
  int c = tcp_connect(relay_port);
  int s = accept(lfd, NULL, NULL);
  assert_true(s >= 0);
  enum { N = 64 * 1024 };
  static uint8_t out[N], in[N];
  for (size_t i = 0; i < N; i++) out[i] = (uint8_t)(i * 7 + i / 251);
  /* client -> server, then the echo back: both directions cross the stalls */
  assert_int_equal(write(c, out, N), N);
  assert_int_equal(read_all(s, in, N), N);
  assert_memory_equal(in, out, N);
  assert_int_equal(write(s, in, N), N);
  memset(in, 0, N);
  assert_int_equal(read_all(c, in, N), N);
  assert_memory_equal(in, out, N);
  /* EOF passes through once the queue is empty */
  shutdown(c, SHUT_WR);
  assert_int_equal(read_all(s, in, 1), 0);
  mf_loss_proxy_stats_t st;
  mf_loss_proxy_stats(p, relay, &st);
  assert_int_equal(st.conns, 1);
  assert_true(st.in >= 2 * (N / MF_LOSS_PROXY_MSS));
  assert_true(st.stalled > 0 && st.stalled < st.in);
  assert_true(st.stall_ms >= 200 * st.stalled);
  assert_int_equal(st.resets, 0);
  close(c);
  close(s);
  mf_loss_proxy_stop(p);
  close(lfd);
}

static void test_tcp_reset_and_target_down(void **state) {
  (void)state;
  uint16_t target_port, relay_port, down_port;
  int lfd = tcp_listener(&target_port);
  int gone = tcp_listener(&down_port);
  close(gone); /* nothing listens there any more */
  char target[32], down[32];
  snprintf(target, sizeof target, "127.0.0.1:%u", target_port);
  snprintf(down, sizeof down, "127.0.0.1:%u", down_port);
  mf_loss_proxy_t *p = mf_loss_proxy_create(9);
  int r0 = mf_loss_proxy_add_tcp(p, "reset", "127.0.0.1", target, 0, 1.0, &relay_port);
  uint16_t down_relay;
  int r1 = mf_loss_proxy_add_tcp(p, "down", "127.0.0.1", down, 0, 0, &down_relay);
  assert_int_equal(mf_loss_proxy_start(p), 0);
  int c = tcp_connect(relay_port);
  int s = accept(lfd, NULL, NULL);
  assert_true(s >= 0);
  assert_int_equal(write(c, "hello", 5), 5);
  uint8_t buf[8];
  assert_int_equal(read_all(s, buf, sizeof buf), 0); /* reset before a byte got through */
  assert_int_equal(read_all(c, buf, sizeof buf), 0);
  mf_loss_proxy_stats_t st;
  mf_loss_proxy_stats(p, r0, &st);
  assert_int_equal(st.resets, 1);
  close(c);
  close(s);
  /* a relay whose target is down ends the client's connection at once */
  c = tcp_connect(down_relay);
  assert_int_equal(read_all(c, buf, sizeof buf), 0);
  mf_loss_proxy_stats(p, r1, &st);
  assert_int_equal(st.conns, 0);
  close(c);
  mf_loss_proxy_stop(p);
  close(lfd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_udp_drop_fractions),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_tcp_stalls_keep_bytes_in_order),
      cmocka_unit_test(test_tcp_reset_and_target_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
