#define MF_LOG_MODULE "swim"
#include "common/swim_udp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "common/swim_codec.h"

/* Bigger than any valid packet, so an oversized one still arrives whole and the core
 * counts it as invalid instead of it vanishing as truncated. */
#define RECV_BUF_SIZE 2048

struct mf_swim_udp {
  uv_udp_t udp;
  uv_timer_t timer;
  int open_handles;
  bool closing;
  mf_swim_t *swim;
  void (*on_change)(void *ud, const mf_swim_member_t *m, mf_swim_status_t old_status,
                    bool is_new);
  void *ud;
  void (*on_closed)(void *ud);
  void *closed_ud;
  uint16_t port;
  char address[MF_SWIM_ADDRESS_MAX + 1];
  mf_swim_udp_stats_t stats;
  uint8_t rx_buf[RECV_BUF_SIZE];
};

static void udp_send(void *ud, const char *address, const uint8_t *data, size_t len) {
  mf_swim_udp_t *u = ud;
  uint32_t ip;
  uint16_t port;
  if (!mf_swim_codec_parse_address(address, &ip, &port)) { /* the core only emits valid ones */
    u->stats.send_errors++;
    return;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(ip)};
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int r = uv_udp_try_send(&u->udp, &b, 1, (const struct sockaddr *)&sa);
  if (r == UV_EAGAIN || r == UV_ENOBUFS)
    u->stats.send_dropped++;
  else if (r < 0)
    u->stats.send_errors++;
}

static void on_change_trampoline(void *ud, const mf_swim_member_t *m, mf_swim_status_t old,
                                 bool is_new) {
  mf_swim_udp_t *u = ud;
  if (u->on_change) u->on_change(u->ud, m, old, is_new);
}

static void on_timer(uv_timer_t *t);

static void reschedule(mf_swim_udp_t *u) {
  if (u->closing) return;
  uint64_t now = mf_clock_now_ms(), due = mf_swim_next_deadline(u->swim);
  /* At least 1 ms: libuv runs a timer re-armed with 0 ms from its own callback again in the
   * same pass, without updating its clock, so a deadline stuck in the past (a bug in the
   * protocol code) would spin the whole loop instead of costing one wake-up per ms. */
  uv_timer_start(&u->timer, on_timer, due > now + 1 ? due - now : 1, 0);
}

static void on_timer(uv_timer_t *t) {
  mf_swim_udp_t *u = t->data;
  mf_swim_tick(u->swim, mf_clock_now_ms());
  reschedule(u);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  mf_swim_udp_t *u = h->data;
  *buf = uv_buf_init((char *)u->rx_buf, sizeof u->rx_buf);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags) {
  (void)buf;
  mf_swim_udp_t *u = h->data;
  if (nread < 0) {
    u->stats.recv_errors++;
    return;
  }
  if (!addr) return; /* nothing more to read this time */
  if (flags & UV_UDP_PARTIAL) {
    u->stats.recv_truncated++;
    return;
  }
  char from[INET_ADDRSTRLEN + 8] = "?";
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
    char ip[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip))
      snprintf(from, sizeof from, "%s:%u", ip, ntohs(in->sin_port));
  }
  mf_swim_receive(u->swim, from, u->rx_buf, (size_t)nread, mf_clock_now_ms());
  reschedule(u);
}

static void on_handle_closed(uv_handle_t *h) {
  mf_swim_udp_t *u = h->data;
  if (--u->open_handles > 0) return;
  mf_swim_destroy(u->swim);
  void (*cb)(void *) = u->on_closed;
  void *cb_ud = u->closed_ud;
  free(u);
  if (cb) cb(cb_ud);
}

static bool is_ipv4_literal(const char *host) {
  struct in_addr a;
  return host && inet_pton(AF_INET, host, &a) == 1;
}

mf_err_t mf_swim_udp_start(uv_loop_t *loop, const char *listen_host, uint16_t port,
                           const mf_swim_udp_config_t *config, mf_swim_udp_t **out) {
  if (!loop || !config || !out || !is_ipv4_literal(listen_host)) return MF_ERR_INVALID_ARG;
  const char *announce = config->announce_host ? config->announce_host : listen_host;
  if (!is_ipv4_literal(announce) || strcmp(announce, "0.0.0.0") == 0) return MF_ERR_INVALID_ARG;
  struct sockaddr_in bind_addr;
  if (uv_ip4_addr(listen_host, port, &bind_addr) != 0) return MF_ERR_INVALID_ARG;

  mf_swim_udp_t *u = calloc(1, sizeof *u);
  if (!u) return MF_ERR_NO_MEMORY;
  u->on_change = config->swim.on_change;
  u->ud = config->swim.ud;
  if (uv_udp_init(loop, &u->udp) != 0) {
    free(u);
    return MF_ERR_IO;
  }
  u->udp.data = u;
  u->open_handles = 1;
  mf_err_t err = MF_OK;
  int r = uv_udp_bind(&u->udp, (const struct sockaddr *)&bind_addr, 0);
  if (r != 0) {
    MF_LOG_ERROR("gossip bind %s:%u: %s", listen_host, port, uv_strerror(r));
    err = MF_ERR_IO;
    goto fail;
  }
  struct sockaddr_in bound;
  int len = sizeof bound;
  if (uv_udp_getsockname(&u->udp, (struct sockaddr *)&bound, &len) != 0) {
    err = MF_ERR_IO;
    goto fail;
  }
  u->port = ntohs(bound.sin_port);
  snprintf(u->address, sizeof u->address, "%s:%u", announce,
           config->announce_port ? config->announce_port : u->port);

  mf_swim_config_t sc = config->swim;
  sc.self_address = u->address;
  sc.send = udp_send;
  sc.on_change = on_change_trampoline;
  sc.ud = u;
  if (sc.seed == 0 && RAND_bytes((unsigned char *)&sc.seed, sizeof sc.seed) != 1)
    sc.seed = mf_clock_now_ns() ^ ((uint64_t)u->port << 32);
  /* An announced host that is not canonical (e.g. "127.000.0.1") fails here. */
  err = mf_swim_create(&sc, mf_clock_now_ms(), &u->swim);
  if (err != MF_OK) goto fail;

  uv_timer_init(loop, &u->timer);
  u->timer.data = u;
  u->open_handles++;
  r = uv_udp_recv_start(&u->udp, on_alloc, on_recv);
  if (r != 0) {
    MF_LOG_ERROR("gossip recv_start: %s", uv_strerror(r));
    mf_swim_udp_close(u, NULL, NULL);
    return MF_ERR_IO;
  }
  reschedule(u);
  MF_LOG_INFO("gossip on %s:%u as %s (%s)", listen_host, u->port, sc.self_id, u->address);
  *out = u;
  return MF_OK;

fail:
  u->closing = true;
  uv_close((uv_handle_t *)&u->udp, on_handle_closed);
  return err;
}

uint16_t mf_swim_udp_port(const mf_swim_udp_t *u) { return u->port; }
const char *mf_swim_udp_address(const mf_swim_udp_t *u) { return u->address; }
mf_swim_t *mf_swim_udp_swim(mf_swim_udp_t *u) { return u->swim; }

mf_err_t mf_swim_udp_join(mf_swim_udp_t *u, const char *seed_address) {
  mf_err_t err = mf_swim_join(u->swim, seed_address, mf_clock_now_ms());
  reschedule(u);
  return err;
}

void mf_swim_udp_join_list(mf_swim_udp_t *u, const char *seeds) {
  char seed[64];
  for (const char *p = seeds; mf_config_list_next(&p, seed, sizeof seed);)
    if (mf_swim_udp_join(u, seed) != MF_OK)
      MF_LOG_WARN("gossip: cannot join through '%s' (want a.b.c.d:port)", seed);
}

mf_err_t mf_swim_udp_set_meta(mf_swim_udp_t *u, const uint8_t *meta, size_t len) {
  mf_err_t err = mf_swim_set_meta(u->swim, meta, len, mf_clock_now_ms());
  reschedule(u);
  return err;
}

void mf_swim_udp_leave(mf_swim_udp_t *u) {
  mf_swim_leave(u->swim, mf_clock_now_ms());
  reschedule(u);
}

void mf_swim_udp_stats(const mf_swim_udp_t *u, mf_swim_udp_stats_t *out) { *out = u->stats; }

void mf_swim_udp_close(mf_swim_udp_t *u, void (*on_closed)(void *ud), void *ud) {
  if (!u || u->closing) return;
  u->closing = true;
  u->on_closed = on_closed;
  u->closed_ud = ud;
  uv_udp_recv_stop(&u->udp);
  uv_timer_stop(&u->timer);
  uv_close((uv_handle_t *)&u->udp, on_handle_closed);
  uv_close((uv_handle_t *)&u->timer, on_handle_closed);
}
