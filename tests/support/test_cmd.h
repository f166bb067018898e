/* Builders of the controller state commands that integration tests apply to set up a
 * scene (a router, its shards, a producer and its pipe). Each wraps its object in a
 * Mafalda__Controller__Command on the stack and hands it to the test's apply function,
 * which sends it (e.g. mf_rpc_call_leader with MF_RPC_METHOD_APPLY) and handles a
 * refusal its own way. Nothing is retained after the call; strings stay the caller's.
 * For a test's main thread. */
#ifndef MF_TEST_CMD_H
#define MF_TEST_CMD_H

#include "proto/controller.pb-c.h"

/* Applies cmd to the cluster state (the test's own RPC call and error handling). */
typedef void (*mf_test_apply_fn)(const Mafalda__Controller__Command *cmd);

/* CreateRouter with r as filled in by the caller (id, name, codecs, appData...). */
void mf_test_cmd_create_router(mf_test_apply_fn apply, Mafalda__Controller__Router *r);

/* AddShard: router_id on node_id's worker 0. */
void mf_test_cmd_add_shard(mf_test_apply_fn apply, const char *router_id, const char *node_id);

/* AddProducer id of kind ("audio"/"video") on node_id's worker 0 in router_id. */
void mf_test_cmd_add_producer(mf_test_apply_fn apply, const char *id, const char *router_id,
                              const char *node_id, const char *kind);

/* AddPipe of producer_id from source_node_id's worker 0 to target_node_id's worker 0. */
void mf_test_cmd_add_pipe(mf_test_apply_fn apply, const char *producer_id,
                          const char *source_node_id, const char *target_node_id);

#endif
