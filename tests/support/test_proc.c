#include "tests/support/test_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <uv.h>

extern char **environ;

static int test_probe_port(void) {
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

int mf_test_free_port(void) {
  /* A probed port is released at once, so the kernel may hand it out again on the next
   * probe: never return one this process returned recently (test code, main thread). */
  static int recent[64];
  static unsigned next;
  for (int tries = 0; tries < 50; tries++) {
    int port = test_probe_port();
    bool seen = false;
    for (unsigned i = 0; i < 64; i++) seen = seen || recent[i] == port;
    if (seen) continue;
    recent[next++ % 64] = port;
    return port;
  }
  return test_probe_port();
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

void mf_test_stop_wrapped(pid_t *wrappers, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (wrappers[i] <= 0) continue;
    mf_test_kill_wrapped(wrappers[i]);
    mf_test_wait_status(wrappers[i]);
    wrappers[i] = 0;
  }
}

int mf_test_spawn_logged(char *const argv[], const char *log_path, pid_t *pid) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  int rv = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  return rv;
}

/* At most size - 1 bytes of the file at path into buf, NUL-terminated ("" if unreadable). */
static void read_file(const char *path, char *buf, size_t size) {
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return;
  size_t n = fread(buf, 1, size - 1, f);
  buf[n] = '\0';
  fclose(f);
}

int mf_test_run_captured(char *const argv[], char *const envp[], int deadline_s,
                         const char *capture, char *out, size_t out_size, char *err,
                         size_t err_size) {
  out[0] = err[0] = '\0';
  char deadline[16];
  snprintf(deadline, sizeof deadline, "%d", deadline_s);
  char *args[64] = {"timeout", "-s", "KILL", deadline};
  size_t n = 4;
  for (size_t i = 0; argv[i]; i++) {
    if (n >= sizeof args / sizeof args[0] - 1) return -1;
    args[n++] = argv[i];
  }
  args[n] = NULL;
  char op[256], ep[256];
  snprintf(op, sizeof op, "%s.out", capture);
  snprintf(ep, sizeof ep, "%s.err", capture);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, op, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, ep, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid;
  int rv = posix_spawnp(&pid, "timeout", &fa, NULL, args, envp ? envp : environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rv != 0) return -1;
  int st = mf_test_wait_status(pid);
  read_file(op, out, out_size);
  read_file(ep, err, err_size);
  return st;
}

bool mf_test_lines_fit(const char *text, size_t width) {
  for (const char *p = text; *p;) {
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n > width) return false;
    if (!e) break;
    p = e + 1;
  }
  return true;
}

void mf_test_remove_dir(const char *dir) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

void mf_test_log_path(const char *dir, int i, char *out, size_t size) {
  snprintf(out, size, "%s/%d.log", dir, i);
}

int mf_test_launch_logged(const char *dir, int i, char *const argv[], pid_t *wrapper) {
  char log[256];
  mf_test_log_path(dir, i, log, sizeof log);
  return mf_test_spawn_logged(argv, log, wrapper);
}

void mf_test_dump_logs(const char *dir, int tail_lines) {
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "for f in %s/*.log; do echo \"--- $f\"; tail -n %d \"$f\"; "
           "grep -q -e 'ERROR: .*Sanitizer' -e 'runtime error:' \"$f\" && { echo \"--- sanitizer "
           "report in $f\"; grep -A 40 -e 'ERROR: .*Sanitizer' -e 'runtime error:' \"$f\"; }; "
           "done 1>&2",
           dir, tail_lines);
  if (system(cmd) != 0) fprintf(stderr, "(no logs)\n");
}

void mf_test_abandon(const char *dir, pid_t *wrappers, size_t n) {
  mf_test_stop_wrapped(wrappers, n);
  if (!getenv("MF_TEST_KEEP")) mf_test_remove_dir(dir);
}

int mf_test_start_controller(const char *dir, const char *controller_bin, const char *deadline_s,
                             char rpc[32], char gossip[32], pid_t *wrapper) {
  char raft[32], data[256];
  snprintf(raft, sizeof raft, "127.0.0.1:%d", mf_test_free_port());
  snprintf(rpc, 32, "127.0.0.1:%d", mf_test_free_port());
  snprintf(gossip, 32, "127.0.0.1:%d", mf_test_free_port());
  snprintf(data, sizeof data, "%s/ctl", dir);
  char *argv[] = {"timeout", "-s", "KILL", (char *)deadline_s, (char *)controller_bin,
                  "--listen", raft, "--rpc-listen", rpc, "--data-dir", data,
                  "--election-timeout", "300", "--gossip-listen", gossip, NULL};
  return mf_test_launch_logged(dir, 0, argv, wrapper);
}
