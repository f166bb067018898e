/* Calls process tests make on a controller and on nodes' RPC endpoints (for a test's main
 * thread; every call bounded by a short timeout). */
#ifndef MF_TEST_NODE_RPC_H
#define MF_TEST_NODE_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Polls the controller at url ("tcp://host:port") until it leads, at most `seconds`. */
bool mf_test_wait_leader(const char *url, double seconds);

/* node.OpenShard: the room `name` (logical router router_id) on worker 0 of the node at
 * rpc_url. MF_OK, or the call's error / the node's refusal with its message in err. */
mf_err_t mf_test_node_open_shard(const char *rpc_url, const char *router_id, const char *name,
                                 char *err, size_t errsz);

/* node.Status: gossip members the node sees alive (itself included) and routers on its
 * workers; false when it did not answer. */
bool mf_test_node_status(const char *rpc_url, uint32_t *alive, uint32_t *routers);

#endif
