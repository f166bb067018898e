#include "node_config.h"

#include <stddef.h>

static const char *const mf_log_level_choices[] = {"trace", "debug", "info", "warn",
                                                   "error", "off",   NULL};
static const char *const mf_log_format_choices[] = {"text", "json", NULL};

static const mf_config_option_t mf_node_options[] = {
    {.name = "workers",
     .type = MF_OPT_INT,
     .offset = offsetof(mf_node_config_t, workers),
     .min = 0,
     .max = MF_NODE_MAX_WORKERS,
     .default_value = "0",
     .help = "Media worker threads; 0 means one per available CPU core."},
    {.name = "pin-workers",
     .type = MF_OPT_BOOL,
     .offset = offsetof(mf_node_config_t, pin_workers),
     .default_value = "true",
     .help = "Pin each worker thread to its own core."},
    {.name = "log-level",
     .type = MF_OPT_ENUM,
     .offset = offsetof(mf_node_config_t, log_level),
     .choices = mf_log_level_choices,
     .default_value = "info",
     .help = "Least severe level that is logged."},
    {.name = "log-format",
     .type = MF_OPT_ENUM,
     .offset = offsetof(mf_node_config_t, log_format),
     .choices = mf_log_format_choices,
     .default_value = "text",
     .help = "Log lines as plain text or JSON objects, to stderr."},
};

#define MF_NODE_OPTION_COUNT (sizeof mf_node_options / sizeof mf_node_options[0])

mf_err_t mf_node_config_parse(mf_node_config_t *config, int argc, char *const *argv,
                              char *const *envp, mf_config_result_t *result) {
  return mf_config_parse(mf_node_options, MF_NODE_OPTION_COUNT, config, argc, argv, envp,
                         result);
}

void mf_node_config_usage(FILE *out) {
  mf_config_usage(mf_node_options, MF_NODE_OPTION_COUNT, "mafalda-node [OPTIONS]", out);
}
