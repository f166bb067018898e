/* The mafalda-node a single-node scenario (fanout, room, churn) measures: one worker, no
 * controller, its API on a free 127.0.0.1 port, run under `timeout -s KILL <deadline>` so it
 * can never outlive the bench, its log in a temporary directory (kept with
 * MF_BENCH_KEEP=1). Bench main thread only. */
#ifndef MF_BENCH_GEN_NODE_H
#define MF_BENCH_GEN_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
  char dir[64];
  pid_t wrapper, pid; /* the timeout wrapper and the node under it */
  uint16_t api_port;
} mf_gen_node_t;

/* Starts bin and waits (up to 30 s) until its WebSocket API answers. scenario names the
 * temporary directory and the messages; extra is a NULL-terminated list of more node
 * options (may be NULL). On false the reason is printed; call mf_gen_node_stop anyway. */
bool mf_gen_node_start(mf_gen_node_t *n, const char *bin, const char *scenario, int deadline_s,
                       const char *const *extra);
/* SIGTERM, up to 2 s for a clean exit, then the wrapper is killed; the directory goes. */
void mf_gen_node_stop(mf_gen_node_t *n);

#endif
