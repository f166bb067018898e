/* mafalda-node's configuration: flags and MAFALDA_* environment variables.
 * Filled once by the bootstrap in main.c, then read-only (copied into each thread). */
#ifndef MF_NODE_CONFIG_H
#define MF_NODE_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "common/config.h"
#include "common/log.h"

#define MF_NODE_MAX_WORKERS 256

typedef struct {
  int workers;      /* 0: one per CPU core this process may run on */
  bool pin_workers; /* pin worker i to the i-th allowed core */
  int log_level;    /* mf_log_level_t */
  int log_format;   /* mf_log_format_t */
} mf_node_config_t;

/* argv excludes the program name. See mf_config_parse for the result contract. */
mf_err_t mf_node_config_parse(mf_node_config_t *config, int argc, char *const *argv,
                              char *const *envp, mf_config_result_t *result);

void mf_node_config_usage(FILE *out);

#endif
