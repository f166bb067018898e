#include "tests/support/test_proc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <uv.h>

int mf_test_free_port(void) {
  uv_loop_t l;
  uv_loop_init(&l);
  uv_tcp_t t;
  uv_tcp_init(&l, &t);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_bind(&t, (const struct sockaddr *)&a, 0);
  struct sockaddr_in got;
  int len = sizeof got;
  uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&l, UV_RUN_DEFAULT);
  uv_loop_close(&l);
  return ntohs(got.sin_port);
}

pid_t mf_test_child_of(pid_t parent) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)parent, (int)parent);
  FILE *f = fopen(path, "r");
  int child = 0;
  if (f) {
    if (fscanf(f, "%d", &child) != 1) child = 0;
    fclose(f);
  }
  return child;
}

void mf_test_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

double mf_test_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

pid_t mf_test_wait_child_of(pid_t parent, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    pid_t c = mf_test_child_of(parent);
    if (c > 0) return c;
    mf_test_sleep_ms(20);
  }
  return -1;
}

void mf_test_kill_wrapped(pid_t wrapper) {
  pid_t c = mf_test_child_of(wrapper);
  if (c > 0) kill(c, SIGKILL);
  kill(wrapper, SIGKILL);
}

int mf_test_wait_status(pid_t pid) {
  int st = 0;
  pid_t r;
  do r = waitpid(pid, &st, 0);
  while (r < 0 && errno == EINTR);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
