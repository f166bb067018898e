/* The node process: starts the media workers, waits for SIGINT/SIGTERM on the main
 * thread's loop, and stops everything in order. Called once from main(). */
#ifndef MF_NODE_H
#define MF_NODE_H

#include "node_config.h"

/* Runs until a stop signal. Returns the process exit status: 0 after a clean stop,
 * 1 when start-up failed (the reason is logged). */
int mf_node_run(const mf_node_config_t *config);

#endif
