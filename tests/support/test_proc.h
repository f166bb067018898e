/* Helpers for tests and benchmarks that run server processes on loopback: free ports,
 * the child of a `timeout` wrapper (so tests signal the server itself, never the wrapper,
 * which would forward the signal twice), sleeping and a monotonic clock. */
#ifndef MF_TEST_PROC_H
#define MF_TEST_PROC_H

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

void mf_test_sleep_ms(int ms);
double mf_test_now_s(void); /* monotonic seconds */

#endif
