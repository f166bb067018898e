/* The API gateway: binds the public API's sessions (node/api/http_server.h) to routers on
 * the media workers. A room name maps to one router on one worker; every method is sent
 * to the worker owning its object through the worker's mailbox, runs there, and answers
 * the call from that thread. Router events are mapped back to the session that owns the
 * target object and sent as notifications.
 *
 * Thread affinity: handlers run on nng's threads; the room registry and object index are
 * control-path state behind one mutex; everything that touches a router runs on its
 * worker. Created and destroyed by the node's main thread. */
#ifndef MF_GATEWAY_H
#define MF_GATEWAY_H

#include <stdint.h>

#include "common/err.h"
#include "node/api/http_server.h"
#include "node/worker.h"

typedef struct mf_gateway mf_gateway_t;

typedef struct {
  const char *listen;      /* "host:port" */
  const char *secret;      /* HS256 key; "" = dev mode (loopback only) */
  const char *static_dir;  /* demo page files; "" = none */
  unsigned grace_ms;       /* a closed WebSocket's objects wait this long for a resume;
                              0 = close them at once */
} mf_gateway_options_t;

/* Starts the API server. workers must outlive the gateway. */
mf_err_t mf_gateway_start(const mf_gateway_options_t *options, mf_worker_t *const *workers,
                          uint32_t worker_count, mf_gateway_t **out);
uint16_t mf_gateway_port(const mf_gateway_t *gw);

/* Closes every session (their transports close on the workers) and every room's router,
 * then frees the gateway. Call while the workers still run. */
void mf_gateway_stop(mf_gateway_t *gw);

#endif
