/* Loopback UDP for the unit tests that feed a router's plain transports by hand
 * (test_plain_transport, test_layered_consumer, test_producer_streams). Header-only
 * (static inline, cmocka assertions): include after <cmocka.h>. */
#ifndef MF_TEST_UDP_FIXTURE_H
#define MF_TEST_UDP_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "node/rtp/rtp.h"

/* A socket bound to 127.0.0.1 on a free port (*port). */
static inline int mf_test_udp_open(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  *port = ntohs(a.sin_port);
  return fd;
}

static inline void mf_test_udp_send(int fd, uint16_t port, const uint8_t *data, size_t len) {
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(sendto(fd, data, len, 0, (struct sockaddr *)&to, sizeof to), (ssize_t)len);
}

typedef struct {
  uint8_t data[1500];
  size_t len;
} mf_test_pkt_t;

/* Runs loop until fd has an RTP datagram (RTCP is skipped) or `rounds` iterations passed
 * (the router's 20 ms timer bounds each). Its length, 0 when none came. */
static inline size_t mf_test_pump_rtp(uv_loop_t *loop, int fd, mf_test_pkt_t *out, int rounds) {
  for (int i = 0; i < rounds; i++) {
    uv_run(loop, UV_RUN_ONCE);
    for (;;) {
      ssize_t n = recv(fd, out->data, sizeof out->data, MSG_DONTWAIT);
      if (n <= 0) break;
      if (mf_rtp_is_rtcp(out->data, (size_t)n)) continue;
      out->len = (size_t)n;
      return out->len;
    }
  }
  out->len = 0;
  return 0;
}

#endif
