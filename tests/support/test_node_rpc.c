#include "tests/support/test_node_rpc.h"

#include <stdio.h>

#include "controller/rpc_client.h"
#include "proto/cluster.pb-c.h"
#include "tests/support/test_proc.h"

bool mf_test_wait_leader(const char *url, double seconds) {
  double t0 = mf_test_now_s();
  while (!mf_rpc_is_leader(url, 500) && mf_test_now_s() - t0 < seconds) mf_test_sleep_ms(50);
  return mf_rpc_is_leader(url, 500);
}

mf_err_t mf_test_node_open_shard(const char *rpc_url, const char *router_id, const char *name,
                                 char *err, size_t errsz) {
  Mafalda__Cluster__OpenShardRequest r = MAFALDA__CLUSTER__OPEN_SHARD_REQUEST__INIT;
  r.router_id = (char *)router_id;
  r.name = (char *)name;
  r.worker = 0;
  mf_rpc_reply_t reply;
  mf_err_t e = mf_rpc_call(rpc_url, "node.OpenShard", &r.base, 5000, &reply);
  if (e) {
    snprintf(err, errsz, "%s", mf_strerror(e));
    return e;
  }
  if (reply.envelope->status != MAFALDA__RPC__STATUS__STATUS_OK) {
    snprintf(err, errsz, "%s", reply.envelope->error_message ? reply.envelope->error_message : "");
    e = MF_ERR_STATE;
  }
  mf_rpc_reply_free(&reply);
  return e;
}

bool mf_test_node_status(const char *rpc_url, uint32_t *alive, uint32_t *routers) {
  Mafalda__Cluster__NodeStatusRequest r = MAFALDA__CLUSTER__NODE_STATUS_REQUEST__INIT;
  mf_rpc_reply_t reply;
  if (mf_rpc_call(rpc_url, "node.Status", &r.base, 2000, &reply) != MF_OK) return false;
  Mafalda__Cluster__NodeStatusResponse *s = NULL;
  if (reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK)
    s = mafalda__cluster__node_status_response__unpack(NULL, reply.envelope->payload.len,
                                                       reply.envelope->payload.data);
  mf_rpc_reply_free(&reply);
  if (!s) return false;
  *alive = s->members_alive;
  *routers = 0;
  for (size_t k = 0; k < s->n_workers; k++) *routers += s->workers[k]->routers;
  mafalda__cluster__node_status_response__free_unpacked(s, NULL);
  return true;
}
