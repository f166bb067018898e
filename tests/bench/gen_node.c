/* See gen_node.h. */
#include "tests/bench/gen_node.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/test_proc.h"
#include "tests/support/ws_client.h"

#define EXTRA_MAX 16

void mf_gen_node_stop(mf_gen_node_t *n) {
  if (n->wrapper > 0) {
    if (n->pid > 0) kill(n->pid, SIGTERM);
    for (int i = 0; i < 100 && waitpid(n->wrapper, NULL, WNOHANG) == 0; i++) mf_test_sleep_ms(20);
    mf_test_stop_wrapped(&n->wrapper, 1);
    n->wrapper = 0;
  }
  if (n->dir[0] && !getenv("MF_BENCH_KEEP")) mf_test_remove_dir(n->dir);
  n->dir[0] = '\0';
}

bool mf_gen_node_start(mf_gen_node_t *n, const char *bin, const char *scenario, int deadline_s,
                       const char *const *extra) {
  memset(n, 0, sizeof *n);
  snprintf(n->dir, sizeof n->dir, "/tmp/mf-bench-%.16s-XXXXXX", scenario);
  if (!mkdtemp(n->dir)) {
    perror("mkdtemp");
    n->dir[0] = '\0';
    return false;
  }
  char api[32], log[128], deadline[16];
  n->api_port = (uint16_t)mf_test_free_port();
  snprintf(api, sizeof api, "127.0.0.1:%u", n->api_port);
  snprintf(log, sizeof log, "%s/node.log", n->dir);
  snprintf(deadline, sizeof deadline, "%d", deadline_s);
  const char *base[] = {"timeout", "-s", "KILL", deadline, bin, "--workers", "1",
                        "--pin-workers=false", "--rtc-listen-ip", "127.0.0.1", "--announced-ip",
                        "127.0.0.1", "--rtc-port-base", "0", "--controller=false",
                        "--api-listen", api, "--log-level", "warn"};
  size_t nb = sizeof base / sizeof base[0], ne = 0;
  while (extra && extra[ne]) ne++;
  if (ne > EXTRA_MAX) {
    fprintf(stderr, "mafalda-bench %s: too many node options\n", scenario);
    return false;
  }
  char *argv[sizeof base / sizeof base[0] + EXTRA_MAX + 1];
  for (size_t i = 0; i < nb; i++) argv[i] = (char *)base[i];
  for (size_t i = 0; i < ne; i++) argv[nb + i] = (char *)extra[i];
  argv[nb + ne] = NULL;
  int rv = mf_test_spawn_logged(argv, log, &n->wrapper);
  if (rv != 0) {
    fprintf(stderr, "mafalda-bench %s: cannot start %s: %s\n", scenario, bin, strerror(rv));
    return false;
  }
  n->pid = mf_test_wait_child_of(n->wrapper, 5000);
  if (n->pid <= 0) {
    fprintf(stderr, "mafalda-bench %s: %s did not start (log %s)\n", scenario, bin, log);
    return false;
  }
  double until = mf_test_now_s() + 30;
  while (mf_test_now_s() < until) {
    nng_stream *ws = mf_test_ws_dial("127.0.0.1", n->api_port, "", 500);
    if (ws) {
      mf_test_ws_free(ws);
      return true;
    }
    mf_test_sleep_ms(50);
  }
  fprintf(stderr, "mafalda-bench %s: the node's API did not come up (log %s)\n", scenario, log);
  return false;
}
