/* mafalda-node: process bootstrap. Parses configuration, configures logging (the only
 * process-wide mutable state), and hands over to mf_node_run. */
#define MF_LOG_MODULE "main"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/tls_config.h"
#include "node.h"
#include "node_config.h"
#include "token_cmd.h"

extern char **environ;

int main(int argc, char **argv) {
  /* Controller and node -> node calls run on libuv's thread pool (4 threads by default),
   * and a node serving another node's pipe request waits there for a worker: with
   * cross-node calls in both directions, 4 could all wait on each other until timeouts.
   * An operator's own setting wins. */
  setenv("UV_THREADPOOL_SIZE", "16", 0);
  if (argc > 1 && strcmp(argv[1], "token") == 0) return mf_token_cmd_run(argc - 2, argv + 2, environ);
  mf_node_config_t config = {0};
  mf_config_result_t result;
  if (mf_node_config_parse(&config, argc - 1, argv + 1, environ, &result) != MF_OK) {
    fprintf(stderr, "mafalda-node: %s\n", result.error);
    return 2;
  }
  if (result.help_requested) {
    printf("mafalda-node %s: a Mafalda WebRTC SFU node.\n\n", MF_VERSION);
    mf_node_config_usage(stdout);
    return 0;
  }
  if (result.version_requested) {
    printf("mafalda-node %s\n", MF_VERSION);
    return 0;
  }
  char error[256];
  if (mf_node_config_finish(&config, error, sizeof error) != MF_OK) {
    fprintf(stderr, "mafalda-node: %s\n", error);
    return 2;
  }
  mf_log_config_t log = {
      .level = (mf_log_level_t)config.log_level,
      .format = (mf_log_format_t)config.log_format,
      .fd = STDERR_FILENO,
  };
  mf_log_configure(&log);
  mf_log_set_thread_name("main");
  /* issue 12 (tls): control-plane TLS, checked before anything listens or dials. */
  mf_tls_t *tls = NULL;
  char tls_error[1024];
  mf_err_t tls_err = mf_tls_load(&config.tls, &tls, tls_error, sizeof tls_error);
  mf_tls_set_control(tls);
  if (tls_err == MF_OK)
    tls_err =
        mf_tls_check_list(config.controllers, "--controllers", tls_error, sizeof tls_error);
  if (tls_err != MF_OK) {
    fprintf(stderr, "mafalda-node: %s\n", tls_error);
    mf_tls_set_control(NULL);
    mf_tls_free(tls);
    return 2;
  }
  if (tls) {
    MF_LOG_INFO("control-plane RPC uses mutual TLS as %s", mf_tls_subject(tls));
    if (config.controller)
      MF_LOG_WARN("the embedded controller's Raft traffic on %s is not covered by TLS: keep "
                  "it on a private network", config.replica.listen);
  }
  int status = mf_node_run(&config);
  mf_tls_set_control(NULL);
  mf_tls_free(tls);
  return status;
}
