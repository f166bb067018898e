#include "node/gateway_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "common/mailbox.h"
#include "node/rtc_server.h"
#include "node/udp_socket.h"

/* One worker's figures for /metrics, filled on the worker thread. */
typedef struct {
  mf_mailbox_msg_t link;
  uv_sem_t done;
  mf_udp_stats_t udp;
  mf_rtc_server_stats_t rtc;
} gw_metrics_t;

static void gw_on_metrics(mf_mailbox_msg_t *msg, void *owner) {
  gw_metrics_t *m = MF_CONTAINER_OF(msg, gw_metrics_t, link);
  mf_rtc_server_t *rtc = mf_worker_rtc_server(owner);
  mf_udp_socket_get_stats(mf_rtc_server_socket(rtc), &m->udp);
  mf_rtc_server_get_stats(rtc, &m->rtc);
  uv_sem_post(&m->done);
}

size_t mf_gateway_metrics_render(mf_worker_t *const *workers, uint32_t n,
                                 const mf_gateway_counts_t *counts, char *buf, size_t cap) {
  gw_metrics_t *m = calloc(n, sizeof *m);
  if (!m) return (size_t)snprintf(buf, cap, "# metrics unavailable: out of memory\n");
  for (uint32_t i = 0; i < n; i++) {
    uv_sem_init(&m[i].done, 0);
    if (mf_worker_post(workers[i], &m[i].link, gw_on_metrics) == MF_OK) uv_sem_wait(&m[i].done);
    uv_sem_destroy(&m[i].done);
  }

  size_t used = 0;
#define GW_OUT(...)                                                                   \
  do {                                                                                \
    int w_ = snprintf(buf + (used < cap ? used : cap), used < cap ? cap - used : 0, __VA_ARGS__); \
    if (w_ > 0) used += (size_t)w_;                                                   \
  } while (0)
  GW_OUT("# TYPE mafalda_workers gauge\nmafalda_workers %u\n", n);
  static const struct {
    const char *name, *type;
  } series[] = {{"routers", "gauge"},          {"transports", "gauge"},
                {"producers", "gauge"},        {"consumers", "gauge"},
                {"packets_in_total", "counter"}, {"bytes_in_total", "counter"},
                {"packets_out_total", "counter"}, {"bytes_out_total", "counter"},
                {"packets_dropped_total", "counter"}, {"pipes_in", "gauge"},
                {"pipes_out", "gauge"},        {"node_pipes_in", "gauge"},
                {"node_pipes_out", "gauge"}};
  for (size_t k = 0; k < sizeof series / sizeof series[0]; k++) {
    GW_OUT("# TYPE mafalda_worker_%s %s\n", series[k].name, series[k].type);
    for (uint32_t i = 0; i < n; i++) {
      uint64_t v = k == 0 ? counts[i].routers
                   : k == 1 ? counts[i].transports
                   : k == 2 ? counts[i].producers
                   : k == 3 ? counts[i].consumers
                   : k == 4 ? m[i].udp.packets_in
                   : k == 5 ? m[i].udp.bytes_in
                   : k == 6 ? m[i].udp.packets_out
                   : k == 7 ? m[i].udp.bytes_out
                   : k == 9 ? counts[i].pipes_in
                   : k == 10 ? counts[i].pipes_out
                   : k == 11 ? counts[i].node_pipes_in
                   : k == 12 ? counts[i].node_pipes_out
                            : m[i].udp.dropped_no_buffer + m[i].udp.dropped_truncated +
                                  m[i].udp.dropped_send + m[i].rtc.dropped_unknown_type +
                                  m[i].rtc.dropped_unknown_ufrag + m[i].rtc.dropped_unknown_tuple +
                                  m[i].rtc.dropped_malformed;
      GW_OUT("mafalda_worker_%s{worker=\"%u\"} %llu\n", series[k].name, i, (unsigned long long)v);
    }
  }
#undef GW_OUT
  free(m);
  return used;
}

