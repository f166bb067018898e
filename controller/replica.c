#define MF_LOG_MODULE "controller"
#include "controller/replica.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"
#include "controller/fsm.h"
#include "controller/raft_node.h"
#include "controller/rpc_server.h"

/* How often the leader compares the node table with gossip, and how long a node may be
 * unknown to gossip (e.g. after this replica restarted) before it counts as dead. */
#define MF_REPLICA_RECONCILE_MS 250
#define MF_REPLICA_UNKNOWN_GRACE_MS 10000

struct mf_replica {
  mf_raft_node_t *raft;
  mf_rpc_server_t *rpc;
  void (*on_stopped)(void *ud);
  void *ud;
  uv_loop_t *loop;
  mf_swim_t *gossip;       /* borrowed, same loop; NULL = no membership */
  uv_timer_t reconcile;
  bool timer_open;
  uint64_t gossip_since_ms;
  unsigned in_flight;      /* SetNodeState(dead) submissions not yet answered */
};

typedef struct {
  mf_replica_t *replica;
  uint64_t now;
  char dead[16][MF_FSM_ID_MAX + 1];
  const char *why[16];
  size_t n;
} reconcile_t;

static void collect_dead(void *ud, const Mafalda__Controller__Node *n) {
  reconcile_t *r = ud;
  if (n->state == MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD || r->n >= 16) return;
  mf_swim_member_t m;
  const char *why = NULL;
  if (mf_swim_get(r->replica->gossip, n->id, &m)) {
    if (m.status == MF_SWIM_DEAD) why = "gossip declared it dead";
    if (m.status == MF_SWIM_LEFT) why = "it left the cluster";
  } else if (r->now - r->replica->gossip_since_ms >= MF_REPLICA_UNKNOWN_GRACE_MS) {
    why = "gossip has not heard of it";
  }
  if (!why) return;
  snprintf(r->dead[r->n], sizeof r->dead[0], "%s", n->id);
  r->why[r->n++] = why;
}

static void dead_committed(void *ud, mf_err_t status, mf_err_t code, const char *message,
                           uint64_t index) {
  mf_replica_t *r = ud;
  (void)index;
  if (r->in_flight) r->in_flight--;
  if (status != MF_OK || code != MF_OK)
    MF_LOG_WARN("marking a node dead did not commit: %s", message ? message : "");
}

/* Leader only: nodes gossip found dead (or never heard of) become dead in the state, which
 * removes their shards, producers and pipes. Their rows stay until `node forget`. */
static void mf_replica_on_reconcile(uv_timer_t *t) {
  mf_replica_t *r = t->data;
  if (!r->gossip || !r->raft || r->in_flight || !mf_raft_node_is_leader(r->raft)) return;
  reconcile_t rc = {.replica = r, .now = mf_clock_now_ms()};
  mf_fsm_foreach_node(mf_raft_node_fsm(r->raft), collect_dead, &rc);
  for (size_t i = 0; i < rc.n; i++) {
    Mafalda__Controller__SetNodeState s = MAFALDA__CONTROLLER__SET_NODE_STATE__INIT;
    s.node_id = rc.dead[i];
    s.state = MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD;
    Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
    cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_SET_NODE_STATE;
    cmd.set_node_state = &s;
    if (mf_raft_node_submit(r->raft, &cmd, dead_committed, r) == MF_OK) {
      r->in_flight++;
      MF_LOG_WARN("node %s is dead (%s): removing its shards, producers and pipes",
                  rc.dead[i], rc.why[i]);
    }
  }
}

void mf_replica_attach_gossip(mf_replica_t *r, mf_swim_t *gossip) {
  r->gossip = gossip;
  r->gossip_since_ms = mf_clock_now_ms();
  if (r->timer_open) return;
  uv_timer_init(r->loop, &r->reconcile);
  r->reconcile.data = r;
  r->timer_open = true;
  uv_timer_start(&r->reconcile, mf_replica_on_reconcile, MF_REPLICA_RECONCILE_MS,
                 MF_REPLICA_RECONCILE_MS);
}

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
  r->loop = loop;
  if (mf_raft_node_start(loop, &rc, &r->raft) != MF_OK) {
    free(r);
    return mf_replica_fail(err, errsz, MF_ERR_IO, "cannot start Raft on %s (data in %s)",
                           cfg->listen, cfg->data_dir);
  }
  char url[MF_REPLICA_ADDR_MAX + 16];
  snprintf(url, sizeof url, "tcp://%s", cfg->rpc_listen);
  mf_rpc_server_config_t sc = {.listen_url = url};
  sc.placement.max_pipes_out_per_worker = cfg->max_pipes_out_per_worker;
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
  if (r->timer_open) uv_close((uv_handle_t *)&r->reconcile, NULL);
  r->timer_open = false;
  r->gossip = NULL;
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
