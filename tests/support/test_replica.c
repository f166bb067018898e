#include "tests/support/test_replica.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/test_proc.h"

static void raft_closed(void *ud) {
  mf_test_replica_t *r = ud;
  r->raft = NULL;
  uv_close((uv_handle_t *)&r->stop, NULL);
}

static void on_stop(uv_async_t *a) {
  mf_test_replica_t *r = a->data;
  mf_rpc_server_stop(r->rpc);
  mf_raft_node_close(r->raft, raft_closed, r);
}

static void loop_main(void *arg) {
  mf_test_replica_t *r = arg;
  uv_run(&r->loop, UV_RUN_DEFAULT);
}

int mf_test_replica_start(mf_test_replica_t *r, const char *dir_prefix,
                          unsigned snapshot_threshold, mf_rpc_server_config_t *sc) {
  memset(r, 0, sizeof *r);
  snprintf(r->dir, sizeof r->dir, "%s-XXXXXX", dir_prefix);
  if (!mkdtemp(r->dir)) {
    fprintf(stderr, "mkdtemp %s failed\n", r->dir);
    return -1;
  }
  int raft_port = mf_test_free_port(), rpc_port = mf_test_free_port();
  mf_raft_node_config_t rc;
  memset(&rc, 0, sizeof rc);
  char peers[128];
  snprintf(peers, sizeof peers, "1@127.0.0.1:%d/127.0.0.1:%d", raft_port, rpc_port);
  if (mf_raft_node_parse_peers(peers, &rc) != MF_OK) return -1;
  rc.id = 1;
  rc.data_dir = r->dir;
  rc.snapshot_threshold = snapshot_threshold;
  rc.election_timeout_ms = 100;
  rc.heartbeat_timeout_ms = 20;
  if (uv_loop_init(&r->loop) != 0) return -1;
  if (mf_raft_node_start(&r->loop, &rc, &r->raft) != MF_OK) {
    fprintf(stderr, "raft node did not start in %s\n", r->dir);
    return -1;
  }
  snprintf(r->url, sizeof r->url, "tcp://127.0.0.1:%d", rpc_port);
  sc->listen_url = r->url;
  if (mf_rpc_server_start(&r->loop, r->raft, sc, &r->rpc) != MF_OK) {
    fprintf(stderr, "rpc server did not start on %s\n", r->url);
    return -1;
  }
  uv_async_init(&r->loop, &r->stop, on_stop);
  r->stop.data = r;
  return uv_thread_create(&r->thread, loop_main, r) == 0 ? 0 : -1;
}

int mf_test_replica_stop(mf_test_replica_t *r) {
  uv_async_send(&r->stop);
  uv_thread_join(&r->thread);
  mf_rpc_server_destroy(r->rpc);
  int rc = uv_loop_close(&r->loop) == 0 ? 0 : -1;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", r->dir);
  if (system(cmd) != 0) rc = -1;
  return rc;
}
