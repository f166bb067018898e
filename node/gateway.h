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

/* Objects per worker, as the gateway's index has them. */
typedef struct {
  uint32_t routers, transports, producers, consumers;
} mf_gateway_counts_t;

/* Any thread; fills out[0..n) (n = the node's workers). */
void mf_gateway_counts(mf_gateway_t *gw, mf_gateway_counts_t *out, uint32_t n);

/* A shard placed here by the controller (any thread but a worker's; waits for the worker):
 * the room `name` is served by a router with the logical id router_id on `worker`, created
 * now, so clients joining `name` on this node land in it. codecs_json: the router's
 * mediaCodecs as JSON text, "" or NULL for the defaults. Repeating the same command is
 * MF_OK; MF_ERR_EXISTS when the room is already hosted otherwise; MF_ERR_INVALID_ARG /
 * MF_ERR_PARSE for bad input. err gets the reason. */
mf_err_t mf_gateway_open_shard(mf_gateway_t *gw, const char *router_id, const char *name,
                               const char *codecs_json, uint32_t worker, char *err,
                               size_t errsz);

/* Closes the shard's router (its transports end with routerclose). The room stays
 * reachable as a local room. MF_ERR_NOT_FOUND when no room has that shard. */
mf_err_t mf_gateway_close_shard(mf_gateway_t *gw, const char *router_id);

/* Closes every session (their transports close on the workers) and every room's router,
 * then frees the gateway. Call while the workers still run. */
void mf_gateway_stop(mf_gateway_t *gw);

#endif
