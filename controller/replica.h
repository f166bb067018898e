/* One controller replica: Raft (raft_node) plus its RPC server (rpc_server), started on a
 * caller's libuv loop. Used by mafalda-controller and by mafalda-node's embedded controller
 * (the default single-voter setup), so both bootstrap a replica the same way.
 * Thread affinity: the loop's thread, for every call. */
#ifndef MF_REPLICA_H
#define MF_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "common/err.h"
#include "common/swim.h"

#define MF_REPLICA_ADDR_MAX 128
#define MF_REPLICA_PEERS_MAX 2048
#define MF_REPLICA_DIR_MAX 512

typedef struct {
  int id;                                /* Raft id, 1.. */
  char listen[MF_REPLICA_ADDR_MAX];      /* host:port for Raft traffic */
  char rpc_listen[MF_REPLICA_ADDR_MAX];  /* host:port of the RPC server */
  char peers[MF_REPLICA_PEERS_MAX];      /* id@host:port[/rpchost:port],...; "" = single voter */
  char data_dir[MF_REPLICA_DIR_MAX];     /* created if missing */
  int snapshot_threshold;                /* 0 = 1024 */
  int election_timeout_ms;               /* 0 = 1000 */
  uint32_t max_pipes_out_per_worker;     /* pipes of one producer a worker sends before the
                                            scheduler relays; 0 = its default (8) */
  bool join;                             /* wait to be added instead of bootstrapping */
} mf_replica_config_t;

typedef struct mf_replica mf_replica_t;

/* Validates the configuration, creates the data directory, starts Raft and the RPC
 * server. MF_ERR_INVALID_ARG (a configuration error: err says which), MF_ERR_IO (cannot
 * create the directory, bind, or open the log). On error nothing is left but handles that
 * finish closing when the loop runs. */
mf_err_t mf_replica_start(uv_loop_t *loop, const mf_replica_config_t *config, char *err,
                          size_t errsz, mf_replica_t **out);

/* Membership: the replica's leader marks dead every node that gossip declares dead or
 * left (or has not heard of for 10 s after attaching). gossip is borrowed and must run on
 * the same loop; detach by stopping the replica. */
void mf_replica_attach_gossip(mf_replica_t *replica, mf_swim_t *gossip);

/* Stops serving RPC and closes Raft; on_stopped (optional) runs once Raft is closed. Run
 * the loop to completion, then call mf_replica_free. */
void mf_replica_stop(mf_replica_t *replica, void (*on_stopped)(void *ud), void *ud);
void mf_replica_free(mf_replica_t *replica);

#endif
