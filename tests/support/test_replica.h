/* A single-voter controller replica with its RPC server, running on a thread of its own
 * (tests that talk to a real controller over RPC on 127.0.0.1). Raft data lives in a fresh
 * directory under /tmp, removed by mf_test_replica_stop. */
#ifndef MF_TEST_REPLICA_H
#define MF_TEST_REPLICA_H

#include <stdint.h>
#include <uv.h>

#include "controller/raft_node.h"
#include "controller/rpc_server.h"

typedef struct {
  uv_loop_t loop;
  uv_async_t stop;
  uv_thread_t thread;
  mf_raft_node_t *raft;
  mf_rpc_server_t *rpc;
  char dir[64];
  char url[64]; /* "tcp://127.0.0.1:<port>" of its RPC server */
} mf_test_replica_t;

/* dir_prefix: e.g. "/tmp/mf-ctl-rpc" (a suffix is added); snapshot_threshold 0 = Raft's
 * default; sc: the RPC server's settings (listen_url is filled in here). 0 on success, -1
 * when anything failed (the reason is printed). */
int mf_test_replica_start(mf_test_replica_t *r, const char *dir_prefix,
                          unsigned snapshot_threshold, mf_rpc_server_config_t *sc);
/* Stops the server and the Raft node, joins the thread, removes the data. 0 or -1. */
int mf_test_replica_stop(mf_test_replica_t *r);

#endif
