/* One router on an RTC server on 127.0.0.1 with its own libuv loop: the fixture of the
 * unit tests that drive a router in-process (test_router, test_data_router,
 * test_plain_transport, test_layered_consumer, test_producer_streams). Header-only (static
 * inline); the test thread is the router's worker thread. */
#ifndef MF_TEST_ROUTER_FIXTURE_H
#define MF_TEST_ROUTER_FIXTURE_H

#include <uv.h>

#include "common/bufpool.h"
#include "common/log.h"
#include "node/dtls.h"
#include "node/router.h"
#include "node/rtc_server.h"
#include "node/srtp.h"

/* Logs at WARN, then loop, a pool of pool_buffers 2048-byte buffers, a certificate, the
 * server and the router (events to on_event(ud)). 0, or -1 on any failure. */
static inline int mf_test_router_open(uv_loop_t *loop, size_t pool_buffers, mf_bufpool_t **pool,
                                      mf_dtls_cert_t **cert, mf_rtc_server_t **server,
                                      mf_router_t **router, mf_router_event_fn on_event,
                                      void *ud) {
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  if (mf_srtp_library_init() != MF_OK || uv_loop_init(loop) != 0) return -1;
  if (mf_bufpool_create(pool_buffers, 2048, pool) || mf_dtls_cert_generate(cert)) return -1;
  mf_rtc_server_options_t o = {.listen_ip = "127.0.0.1", .announced_ip = "127.0.0.1",
                               .pool = *pool, .cert = *cert};
  if (mf_rtc_server_create(loop, &o, server)) return -1;
  char err[256];
  if (mf_router_create(*server, NULL, NULL, 0, on_event, ud, err, sizeof err, router)) return -1;
  return 0;
}

/* Closes what mf_test_router_open made (router may be NULL: closed by the test) and runs
 * the loop until every handle is gone. 0, or -1 when the loop still had handles. */
static inline int mf_test_router_close(uv_loop_t *loop, mf_bufpool_t *pool, mf_dtls_cert_t *cert,
                                       mf_rtc_server_t *server, mf_router_t *router) {
  if (router) mf_router_close(router);
  mf_rtc_server_close(server, NULL, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  if (uv_loop_close(loop) != 0) return -1;
  mf_dtls_cert_free(cert);
  mf_bufpool_destroy(pool);
  return 0;
}

#endif
