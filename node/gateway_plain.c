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
#include "proto/cluster.pb-c.h"

/* As gateway_pipes.c names the controller's method. */
#define GW_PLAIN_METHOD_PLACE_TRANSPORT "controller.PlaceTransport"

typedef struct {
  mf_gateway_t *gw;
  gw_room_t *room;
  mf_api_call_t *call;
  mf_api_session_t *session; /* referenced */
  json_t *data;              /* referenced: the options, parsed again on the worker */
} gw_plain_place_t;

static void gw_plain_placed(void *ud, mf_err_t err, const Mafalda__Rpc__Envelope *env) {
  gw_plain_place_t *p = ud;
  char node_id[65];
  uint32_t worker = p->room->home;
  bool have_node = mf_gw_node_id(p->gw, node_id);
  Mafalda__Cluster__PlaceTransportResponse *r =
      env && env->status == MAFALDA__RPC__STATUS__STATUS_OK
          ? mafalda__cluster__place_transport_response__unpack(NULL, env->payload.len,
                                                               env->payload.data)
          : NULL;
  if (r && have_node && strcmp(r->node_id, node_id) == 0 && r->worker < p->gw->worker_count) {
    worker = r->worker;
    mf_gw_room_sync(p->gw, p->room);
  } else if (env && env->status == MAFALDA__RPC__STATUS__STATUS_RESOURCE_EXHAUSTED) {
    mf_api_call_fail(p->call, MF_ERR_LIMIT, "no capacity for a new transport: %s",
                     mf_gw_env_error(err, env));
    goto out;
  } else {
    MF_LOG_WARN("room '%s': placement failed (%s): using the home worker %u", p->room->name,
                r ? "placed on another node" : mf_gw_env_error(err, env), worker);
  }
  mf_gw_post(p->gw, p->room, OP_CREATE_PLAIN_TRANSPORT, worker, p->call, p->session, p->data,
             NULL);
out:
  if (r) mafalda__cluster__place_transport_response__free_unpacked(r, NULL);
  json_decref(p->data);
  mf_api_session_unref(p->session);
  free(p);
}

void mf_gw_place_plain_transport(mf_gateway_t *gw, gw_room_t *room, mf_api_call_t *call,
                                 mf_api_session_t *s, const mf_api_request_t *req) {
  /* Bad options fail here, before the controller counts a transport. */
  mf_plain_options_t o;
  char err[160];
  mf_err_t e = mf_plain_options_parse(req->data, &o, err, sizeof err);
  if (e) return (void)mf_api_call_fail(call, e, "%s", err);
  char node_id[65];
  uv_mutex_lock(&gw->mu);
  bool placed = room->placed_by_controller;
  char router_id[MF_ID_LEN + 1];
  memcpy(router_id, room->router_id, sizeof router_id);
  uv_mutex_unlock(&gw->mu);
  if (placed && mf_gw_node_id(gw, node_id)) {
    Mafalda__Cluster__PlaceTransportRequest pr = MAFALDA__CLUSTER__PLACE_TRANSPORT_REQUEST__INIT;
    pr.router_id = router_id;
    pr.expected_pps = gw->transport_pps;
    pr.only_node_id = node_id;
    gw_plain_place_t *p = calloc(1, sizeof *p);
    if (p) {
      p->gw = gw;
      p->room = room;
      p->call = call;
      p->session = s;
      p->data = json_incref(req->data);
      mf_api_session_ref(s);
      if (mf_gw_call(gw, GW_PLAIN_METHOD_PLACE_TRANSPORT, &pr.base, gw_plain_placed, p) == MF_OK)
        return;
      json_decref(p->data);
      mf_api_session_unref(s);
      free(p);
    }
  }
  mf_gw_post(gw, room, OP_CREATE_PLAIN_TRANSPORT, room->home, call, s, req->data, NULL);
}

void mf_gw_run_create_plain(gw_cmd_t *c, mf_worker_t *w) {
  char err[160] = "";
  mf_err_t e = MF_OK;
  mf_plain_options_t o;
  mf_router_t *r = mf_gw_shard_router(c, w, err, sizeof err, &e);
  mf_router_transport_t *t = NULL;
  if (r) e = mf_plain_options_parse(c->data, &o, err, sizeof err);
  if (r && !e) e = mf_router_create_plain_transport(r, &o, err, sizeof err, &t);
  if (e) {
    if (c->call) mf_api_call_fail(c->call, e, "%s", err[0] ? err : "cannot create the transport");
    return;
  }
  mf_gw_index_add(c->gw, mf_router_transport_id(t), GW_TRANSPORT, c->room, c->worker, c->session,
                  NULL);
  mf_api_call_reply(c->call,
                    mf_plain_transport_to_json(mf_plain_transport_of(mf_router_transport_webrtc(t))));
}
