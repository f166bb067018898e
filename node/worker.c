#define MF_LOG_MODULE "worker"
#include "worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "node/udp_socket.h"

struct mf_worker {
  mf_worker_options_t options;
  int pinned_cpu;
  uv_thread_t thread;
  uv_loop_t loop;
  mf_mailbox_t mailbox;
  mf_mailbox_msg_t stop_msg;
  mf_bufpool_t *pool;
  mf_rtc_server_t *rtc;
  uint16_t rtc_port;
  uv_sem_t started;
  mf_err_t start_err;
  uv_timer_t heartbeat;
  /* Written by the heartbeat on the worker thread, read by the agent from its thread:
   * single fields, each atomic (a report may mix two heartbeats; that is harmless). */
  _Atomic uint64_t hb_ms, hb_cpu_ns, hb_packets_in, hb_bytes_in, hb_packets_out, hb_bytes_out,
      hb_dropped;
};

static int mf_worker_pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void mf_worker_close_handle(uv_handle_t *handle, void *arg) {
  if (!uv_is_closing(handle)) uv_close(handle, NULL);
}

static void mf_worker_on_rtc_closed(void *ud) {
  mf_worker_t *w = ud;
  w->rtc = NULL;
  /* Whatever else is still open (there should be nothing) must not keep the loop alive. */
  uv_walk(&w->loop, mf_worker_close_handle, NULL);
}

/* Proof of life and the figures for load reports: a stalled loop stops updating hb_ms,
 * which is what the agent watches. */
static void mf_worker_on_heartbeat(uv_timer_t *timer) {
  mf_worker_t *w = timer->data;
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
    atomic_store(&w->hb_cpu_ns, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
  if (w->rtc) {
    mf_udp_stats_t u;
    mf_rtc_server_stats_t r;
    mf_udp_socket_get_stats(mf_rtc_server_socket(w->rtc), &u);
    mf_rtc_server_get_stats(w->rtc, &r);
    atomic_store(&w->hb_packets_in, u.packets_in);
    atomic_store(&w->hb_bytes_in, u.bytes_in);
    atomic_store(&w->hb_packets_out, u.packets_out);
    atomic_store(&w->hb_bytes_out, u.bytes_out);
    atomic_store(&w->hb_dropped, u.dropped_no_buffer + u.dropped_truncated + u.dropped_send +
                                     r.dropped_unknown_type + r.dropped_unknown_ufrag +
                                     r.dropped_unknown_tuple + r.dropped_malformed);
  }
  atomic_store(&w->hb_ms, mf_clock_now_ms());
}

void mf_worker_get_load(mf_worker_t *w, mf_worker_load_t *out) {
  out->heartbeat_ms = atomic_load(&w->hb_ms);
  out->cpu_ns = atomic_load(&w->hb_cpu_ns);
  out->packets_in = atomic_load(&w->hb_packets_in);
  out->bytes_in = atomic_load(&w->hb_bytes_in);
  out->packets_out = atomic_load(&w->hb_packets_out);
  out->bytes_out = atomic_load(&w->hb_bytes_out);
  out->dropped = atomic_load(&w->hb_dropped);
}

static void mf_worker_on_stop(mf_mailbox_msg_t *msg, void *ctx) {
  mf_worker_t *w = ctx;
  MF_LOG_INFO("worker %u stopping", w->options.index);
  uv_close((uv_handle_t *)&w->heartbeat, NULL);
  /* Runs every command still queued (they may close transports), then the RTC server;
   * the loop ends when the last handle is closed. */
  mf_mailbox_close(&w->mailbox);
  mf_rtc_server_close(w->rtc, mf_worker_on_rtc_closed, w);
}

static void mf_worker_main(void *arg) {
  mf_worker_t *w = arg;
  char name[16];
  snprintf(name, sizeof name, "w%u", w->options.index);
  mf_log_set_thread_name(name);
  snprintf(name, sizeof name, "mf-w%u", w->options.index);
  pthread_setname_np(pthread_self(), name);

  w->pinned_cpu = -1;
  if (w->options.cpu >= 0) {
    int rc = mf_worker_pin(w->options.cpu);
    if (rc == 0)
      w->pinned_cpu = w->options.cpu;
    else
      MF_LOG_WARN("worker %u: cannot pin to cpu %d (%s); running unpinned", w->options.index,
                  w->options.cpu, strerror(rc));
  }

  int rc = uv_loop_init(&w->loop);
  if (rc != 0) {
    MF_LOG_ERROR("worker %u: uv_loop_init failed: %s", w->options.index, uv_strerror(rc));
    w->start_err = MF_ERR_IO;
    uv_sem_post(&w->started);
    return;
  }
  w->start_err = mf_bufpool_create(MF_WORKER_BUFFERS, MF_WORKER_BUFFER_SIZE, &w->pool);
  if (w->start_err == MF_OK) {
    mf_rtc_server_options_t ro = {.listen_ip = w->options.rtc_listen_ip,
                                  .port = w->options.rtc_port,
                                  .announced_ip = w->options.announced_ip,
                                  .pool = w->pool,
                                  .cert = w->options.cert};
    w->start_err = mf_rtc_server_create(&w->loop, &ro, &w->rtc);
    if (w->start_err != MF_OK)
      MF_LOG_ERROR("worker %u: cannot open WebRTC port %s:%u: %s", w->options.index,
                   w->options.rtc_listen_ip, w->options.rtc_port, mf_strerror(w->start_err));
  }
  if (w->start_err == MF_OK) w->start_err = mf_mailbox_init(&w->mailbox, &w->loop, w);
  if (w->start_err != MF_OK) {
    MF_LOG_ERROR("worker %u failed to start: %s", w->options.index, mf_strerror(w->start_err));
    if (w->rtc) mf_rtc_server_close(w->rtc, NULL, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    mf_bufpool_destroy(w->pool);
    uv_sem_post(&w->started);
    return;
  }
  w->rtc_port = mf_rtc_server_port(w->rtc);
  uv_timer_init(&w->loop, &w->heartbeat);
  w->heartbeat.data = w;
  mf_worker_on_heartbeat(&w->heartbeat);
  uv_timer_start(&w->heartbeat, mf_worker_on_heartbeat, MF_WORKER_HEARTBEAT_MS,
                 MF_WORKER_HEARTBEAT_MS);
  if (w->pinned_cpu >= 0)
    MF_LOG_INFO("worker %u ready (thread %s, cpu %d, WebRTC udp %s:%u announced as %s)",
                w->options.index, name, w->pinned_cpu, w->options.rtc_listen_ip, w->rtc_port,
                w->options.announced_ip);
  else
    MF_LOG_INFO("worker %u ready (thread %s, unpinned, WebRTC udp %s:%u announced as %s)",
                w->options.index, name, w->options.rtc_listen_ip, w->rtc_port,
                w->options.announced_ip);
  /* After this post the starter may touch the worker only through its mailbox. */
  uv_sem_post(&w->started);

  uv_run(&w->loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&w->loop);
  if (rc != 0) MF_LOG_ERROR("worker %u: loop closed with %s", w->options.index, uv_strerror(rc));
  mf_bufpool_destroy(w->pool);
  MF_LOG_INFO("worker %u stopped", w->options.index);
}

mf_err_t mf_worker_start(const mf_worker_options_t *options, mf_worker_t **out) {
  mf_worker_t *w = calloc(1, sizeof *w);
  if (!w) return MF_ERR_NO_MEMORY;
  w->options = *options;
  if (uv_sem_init(&w->started, 0) != 0) {
    free(w);
    return MF_ERR_IO;
  }
  int rc = uv_thread_create(&w->thread, mf_worker_main, w);
  if (rc != 0) {
    MF_LOG_ERROR("worker %u: cannot create thread: %s", options->index, uv_strerror(rc));
    uv_sem_destroy(&w->started);
    free(w);
    return MF_ERR_IO;
  }
  uv_sem_wait(&w->started);
  if (w->start_err != MF_OK) {
    mf_err_t err = w->start_err;
    uv_thread_join(&w->thread);
    uv_sem_destroy(&w->started);
    free(w);
    return err;
  }
  *out = w;
  return MF_OK;
}

void mf_worker_stop(mf_worker_t *worker) {
  if (!worker) return;
  /* Only this function posts stop_msg, once; a refusal means the loop already closed. */
  (void)mf_mailbox_post(&worker->mailbox, &worker->stop_msg, mf_worker_on_stop);
  uv_thread_join(&worker->thread);
  uv_sem_destroy(&worker->started);
  free(worker);
}

mf_err_t mf_worker_post(mf_worker_t *worker, mf_mailbox_msg_t *msg, mf_mailbox_fn fn) {
  return mf_mailbox_post(&worker->mailbox, msg, fn);
}

uint32_t mf_worker_index(const mf_worker_t *worker) { return worker->options.index; }
int mf_worker_cpu(const mf_worker_t *worker) { return worker->pinned_cpu; }
uv_loop_t *mf_worker_loop(mf_worker_t *worker) { return &worker->loop; }
uint16_t mf_worker_rtc_port(const mf_worker_t *worker) { return worker->rtc_port; }
mf_bufpool_t *mf_worker_pool(mf_worker_t *worker) { return worker->pool; }
mf_rtc_server_t *mf_worker_rtc_server(mf_worker_t *worker) { return worker->rtc; }
