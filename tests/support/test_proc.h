/* Helpers for tests and benchmarks that run server processes on loopback: free ports,
 * spawning servers under a `timeout` wrapper with their stderr in a log file, running a
 * command line tool with its output captured, the child of a `timeout` wrapper (so tests
 * signal the server itself, never the wrapper, which would forward the signal twice),
 * sleeping and a monotonic clock. Not thread-safe: for a test's main thread. */
#ifndef MF_TEST_PROC_H
#define MF_TEST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* A TCP port on 127.0.0.1 that was free a moment ago (bound with port 0, then released). */
int mf_test_free_port(void);

/* The (first) child of `parent`, e.g. the server under a `timeout` wrapper; 0 if none. */
pid_t mf_test_child_of(pid_t parent);

/* The child of `parent` once it exists, polling every 20 ms for up to timeout_ms; -1 if
 * none appeared. */
pid_t mf_test_wait_child_of(pid_t parent, int timeout_ms);

/* SIGKILLs the child of a `timeout` wrapper, then the wrapper (killing only the wrapper
 * would orphan the server). Does not reap the wrapper. */
void mf_test_kill_wrapped(pid_t wrapper);

/* Reaps pid (retrying on EINTR): its exit status, or 128 + the signal that ended it. */
int mf_test_wait_status(pid_t pid);

/* Kills (mf_test_kill_wrapped) and reaps each of the n `timeout` wrappers that is > 0,
 * then sets its entry to 0, so calling it again (e.g. from a cleanup path) is harmless. */
void mf_test_stop_wrapped(pid_t *wrappers, size_t n);

/* Spawns argv (argv[0] looked up in PATH, usually "timeout" so a hung server dies on its
 * own) with this process's environment, stdout to /dev/null and stderr appended to
 * log_path (created 0600), so the log survives the process for a post-mortem.
 * Returns 0 and sets *pid, or the posix_spawn error number. */
int mf_test_spawn_logged(char *const argv[], const char *log_path, pid_t *pid);

/* Runs argv (argv[0] looked up in PATH; at most 59 entries) under
 * `timeout -s KILL <deadline_s>` and waits for it. envp is its whole environment (NULL:
 * this process's). Its stdout and stderr go to the files <capture>.out and <capture>.err
 * (truncated first, left behind for a post-mortem; capture is a path prefix in a scratch
 * directory), which are then read into out and err: NUL-terminated, cut at size - 1
 * bytes. Returns the exit status as mf_test_wait_status does (137 when the deadline
 * killed it), or -1 when it could not be spawned (out and err are then empty). */
int mf_test_run_captured(char *const argv[], char *const envp[], int deadline_s,
                         const char *capture, char *out, size_t out_size, char *err,
                         size_t err_size);

/* Every line of text (e.g. a tool's captured table output) has at most width bytes. */
bool mf_test_lines_fit(const char *text, size_t width);

/* ---- a test's servers, process i logging to <dir>/<i>.log ---- */

/* Checks cond; on failure prints "FAIL file:line: <message>" and calls fail() (which does
 * not return: it dumps the logs, stops the processes and exits). */
#define MF_TEST_CHECK(fail, cond, ...)                     \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n");                               \
      fail();                                              \
    }                                                      \
  } while (0)

/* "<dir>/<i>.log". */
void mf_test_log_path(const char *dir, int i, char *out, size_t size);
/* mf_test_spawn_logged with the log <dir>/<i>.log; 0 or the spawn error number. */
int mf_test_launch_logged(const char *dir, int i, char *const argv[], pid_t *wrapper);
/* For a failure report, on stderr: the last tail_lines lines of every log in dir, and
 * every sanitizer report in them whole (its stacks come before the tail). */
void mf_test_dump_logs(const char *dir, int tail_lines);
/* A single-voter mafalda-controller as process 0 of dir (free ports on 127.0.0.1, data in
 * <dir>/ctl, 300 ms election timeout, gossip on) under `timeout -s KILL deadline_s`: its
 * RPC "host:port" goes to rpc, its gossip address to gossip. 0 or the spawn error. */
int mf_test_start_controller(const char *dir, const char *controller_bin, const char *deadline_s,
                             char rpc[32], char gossip[32], pid_t *wrapper);
/* The end of a failed test: kills and reaps the n wrappers, removes dir unless MF_TEST_KEEP
 * is set (the logs stay for a post-mortem). */
void mf_test_abandon(const char *dir, pid_t *wrappers, size_t n);

/* rm -rf dir (a test's scratch directory); complains on stderr if that fails. */
void mf_test_remove_dir(const char *dir);

void mf_test_sleep_ms(int ms);
double mf_test_now_s(void); /* monotonic seconds */

#endif
