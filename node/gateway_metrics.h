/* Prometheus text for the API's /metrics: per-worker gauges (routers, transports,
 * producers, consumers) and counters (packets/bytes in/out, drops).
 * Called on an nng thread: each worker fills its socket figures on its own thread (through
 * its mailbox) while the caller waits, a few microseconds per worker (control path). */
#ifndef MF_GATEWAY_METRICS_H
#define MF_GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "node/gateway.h"
#include "node/worker.h"

/* counts[0..n) are the gateway's object counts per worker. Returns the length the text
 * needs (it is cut at cap, like snprintf). */
size_t mf_gateway_metrics_render(mf_worker_t *const *workers, uint32_t n,
                                 const mf_gateway_counts_t *counts, char *buf, size_t cap);

#endif
