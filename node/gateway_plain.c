/* router.createPlainTransport: placed like router.createWebRtcTransport (the controller's
 * PlaceTransport when the room is the controller's, else the room's home worker), then
 * created on that worker (node/plain_transport.h). transport.connect/produce/consume/close
 * on it go through the ordinary transport paths of gateway_worker.c. */
#define MF_LOG_MODULE "gateway"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/gateway_internal.h"
#include "node/plain_transport.h"

void mf_gw_place_plain_transport(mf_gateway_t *gw, gw_room_t *room, mf_api_call_t *call,
                                 mf_api_session_t *s, const mf_api_request_t *req) {
  /* Bad options fail here, before the controller counts a transport. */
  mf_plain_options_t o;
  char err[160];
  mf_err_t e = mf_plain_options_parse(req->data, &o, err, sizeof err);
  if (e) return (void)mf_api_call_fail(call, e, "%s", err);
  mf_gw_place_transport(gw, room, call, s, req, OP_CREATE_PLAIN_TRANSPORT);
}

void mf_gw_run_create_plain(gw_cmd_t *c, mf_worker_t *w) {
  char err[160] = "";
  mf_err_t e = MF_OK;
  mf_plain_options_t o;
  if (!mf_gw_limit_take(c, GW_TRANSPORT)) return; /* issue 12: refused (answered) */
  mf_router_t *r = mf_gw_shard_router(c, w, err, sizeof err, &e);
  mf_router_transport_t *t = NULL;
  if (r) e = mf_plain_options_parse(c->data, &o, err, sizeof err);
  if (r && !e) e = mf_router_create_plain_transport(r, &o, err, sizeof err, &t);
  if (e) {
    mf_gw_limit_give(c->gw, c->session, GW_TRANSPORT);
    if (c->call) mf_api_call_fail(c->call, e, "%s", err[0] ? err : "cannot create the transport");
    return;
  }
  mf_gw_index_session_transport(c, t);
  mf_api_call_reply(c->call,
                    mf_plain_transport_to_json(mf_plain_transport_of(mf_router_transport_webrtc(t))));
}
