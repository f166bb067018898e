/* A media worker: one thread running one libuv loop, owner of every media object placed
 * on it. Nothing outside the worker touches those objects; other threads send it commands
 * through its mailbox (mf_worker_post), and the command runs on the worker's thread.
 *
 * mf_worker_start/mf_worker_stop are called by the thread that owns the worker handle
 * (the node's main thread); mf_worker_post from any thread. */
#ifndef MF_WORKER_H
#define MF_WORKER_H

#include <stdint.h>
#include <uv.h>

#include "common/bufpool.h"
#include "common/err.h"
#include "common/mailbox.h"
#include "node/dtls.h"
#include "node/rtc_server.h"

/* Packet buffers per worker (each MF_WORKER_BUFFER_SIZE bytes): received datagrams,
 * forwarded copies and the retransmission store all draw from this pool. */
#define MF_WORKER_BUFFERS 8192
#define MF_WORKER_BUFFER_SIZE 2048

typedef struct mf_worker mf_worker_t;

/* The worker's loop refreshes its load figures this often; a loop that has not done so for
 * MF_WORKER_STALL_MS is reported as stalled by the agent. */
#define MF_WORKER_HEARTBEAT_MS 250
#define MF_WORKER_STALL_MS 2000

/* Totals since the worker started, as of its last heartbeat. */
typedef struct {
  uint64_t heartbeat_ms; /* mf_clock_now_ms() at the last heartbeat */
  uint64_t cpu_ns;       /* CPU time the worker thread has used */
  uint64_t packets_in, bytes_in, packets_out, bytes_out;
  uint64_t dropped;      /* every drop counter of the socket and the demux */
} mf_worker_load_t;

typedef struct {
  uint32_t index; /* 0-based within the node; names the thread "w<index>" */
  int cpu;        /* core to pin to, or -1 for none */
  const char *rtc_listen_ip;
  uint16_t rtc_port; /* 0: any free port */
  const char *announced_ip;
  const mf_dtls_cert_t *cert; /* the node's; must outlive the worker */
} mf_worker_options_t;

/* Starts the thread and returns once its loop is ready (MF_OK), or failed to start. */
mf_err_t mf_worker_start(const mf_worker_options_t *options, mf_worker_t **out);

/* Asks the worker to finish, joins its thread and frees it. NULL is ignored. */
void mf_worker_stop(mf_worker_t *worker);

/* Runs fn(msg, worker_ctx) on the worker's thread. MF_ERR_CLOSED once stopping. */
mf_err_t mf_worker_post(mf_worker_t *worker, mf_mailbox_msg_t *msg, mf_mailbox_fn fn);

/* Any thread: the figures of the last heartbeat (no call into the worker). */
void mf_worker_get_load(mf_worker_t *worker, mf_worker_load_t *out);

uint32_t mf_worker_index(const mf_worker_t *worker);
/* The core the worker runs pinned to, or -1 when unpinned (not asked, or refused). */
int mf_worker_cpu(const mf_worker_t *worker);

/* The worker's WebRTC UDP port (fixed once started; any thread may read it). */
uint16_t mf_worker_rtc_port(const mf_worker_t *worker);

/* Worker thread only: the worker's loop, packet pool and RTC server. */
uv_loop_t *mf_worker_loop(mf_worker_t *worker);
mf_bufpool_t *mf_worker_pool(mf_worker_t *worker);
mf_rtc_server_t *mf_worker_rtc_server(mf_worker_t *worker);

#endif
