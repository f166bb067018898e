#define MF_LOG_MODULE "controller"
#include "controller/replica.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "controller/raft_node.h"
#include "controller/rpc_server.h"

struct mf_replica {
  mf_raft_node_t *raft;
  mf_rpc_server_t *rpc;
  void (*on_stopped)(void *ud);
  void *ud;
};

static int mf_replica_mkdir_p(const char *path) {
  char tmp[MF_REPLICA_DIR_MAX];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static mf_err_t mf_replica_fail(char *err, size_t errsz, mf_err_t code, const char *fmt,
                                const char *a, const char *b) {
  snprintf(err, errsz, fmt, a, b);
  return code;
}

mf_err_t mf_replica_start(uv_loop_t *loop, const mf_replica_config_t *cfg, char *err,
                          size_t errsz, mf_replica_t **out) {
  *out = NULL;
  mf_raft_node_config_t rc;
  memset(&rc, 0, sizeof rc);
  rc.id = (uint64_t)cfg->id;
  rc.data_dir = cfg->data_dir;
  rc.snapshot_threshold = (unsigned)cfg->snapshot_threshold;
  rc.join = cfg->join;
  int election = cfg->election_timeout_ms > 0 ? cfg->election_timeout_ms : 1000;
  rc.election_timeout_ms = (unsigned)election;
  rc.heartbeat_timeout_ms = (unsigned)(election / 10 > 10 ? election / 10 : 10);
  char single[MF_REPLICA_ADDR_MAX * 2 + 32];
  const char *peers = cfg->peers;
  if (!peers[0]) {
    snprintf(single, sizeof single, "%d@%s/%s", cfg->id, cfg->listen, cfg->rpc_listen);
    peers = single;
  }
  if (mf_raft_node_parse_peers(peers, &rc) != MF_OK)
    return mf_replica_fail(err, errsz, MF_ERR_INVALID_ARG,
                           "peers '%s%s': expected id@host:port[/host:port],...", peers, "");
  bool found = false;
  for (unsigned i = 0; i < rc.n_peers; i++) {
    if (rc.peers[i].id != rc.id) continue;
    found = true;
    if (strcmp(rc.peers[i].raft_address, cfg->listen) != 0)
      return mf_replica_fail(err, errsz, MF_ERR_INVALID_ARG,
                             "listen address %s differs from this id's peer address %s",
                             cfg->listen, rc.peers[i].raft_address);
    if (!rc.peers[i].rpc_address[0])
      snprintf(rc.peers[i].rpc_address, sizeof rc.peers[i].rpc_address, "%s", cfg->rpc_listen);
  }
  if (!found) {
    char id[24];
    snprintf(id, sizeof id, "%d", cfg->id);
    return mf_replica_fail(err, errsz, MF_ERR_INVALID_ARG, "id %s is not in the peer list %s",
                           id, peers);
  }
  if (mf_replica_mkdir_p(cfg->data_dir) != 0)
    return mf_replica_fail(err, errsz, MF_ERR_IO, "cannot create %s: %s", cfg->data_dir,
                           strerror(errno));
  mf_replica_t *r = calloc(1, sizeof *r);
  if (!r) return MF_ERR_NO_MEMORY;
  if (mf_raft_node_start(loop, &rc, &r->raft) != MF_OK) {
    free(r);
    return mf_replica_fail(err, errsz, MF_ERR_IO, "cannot start Raft on %s (data in %s)",
                           cfg->listen, cfg->data_dir);
  }
  char url[MF_REPLICA_ADDR_MAX + 16];
  snprintf(url, sizeof url, "tcp://%s", cfg->rpc_listen);
  mf_rpc_server_config_t sc = {.listen_url = url};
  if (mf_rpc_server_start(loop, r->raft, &sc, &r->rpc) != MF_OK) {
    mf_raft_node_close(r->raft, NULL, NULL);
    mf_rpc_server_destroy(r->rpc);
    free(r);
    return mf_replica_fail(err, errsz, MF_ERR_IO, "cannot serve RPC on %s%s", cfg->rpc_listen, "");
  }
  MF_LOG_INFO("controller %d ready: raft %s, rpc %s, %u voters, data in %s", cfg->id,
              cfg->listen, cfg->rpc_listen, rc.n_peers, cfg->data_dir);
  *out = r;
  return MF_OK;
}

static void mf_replica_raft_closed(void *ud) {
  mf_replica_t *r = ud;
  r->raft = NULL;
  if (r->on_stopped) r->on_stopped(r->ud);
}

void mf_replica_stop(mf_replica_t *r, void (*on_stopped)(void *ud), void *ud) {
  r->on_stopped = on_stopped;
  r->ud = ud;
  mf_rpc_server_stop(r->rpc);
  mf_raft_node_close(r->raft, mf_replica_raft_closed, r);
}

void mf_replica_free(mf_replica_t *r) {
  if (!r) return;
  mf_rpc_server_destroy(r->rpc);
  free(r);
}
