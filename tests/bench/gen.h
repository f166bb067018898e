/* The load generator's engine: many WebRTC peers in one process, against one mafalda-node
 * through its public WebSocket API, on one thread with one epoll loop.
 *
 * A publisher is one API session with one WebRTC transport producing a VP8-shaped video
 * and an Opus-shaped audio stream (gen_traffic.h), every payload stamped (bench_stats.h).
 * A subscriber is one API session with one WebRTC transport consuming both producers of
 * the publishers it is given (transport.consume paused, then consumer.resume, as
 * mediasoup-client does). Peers are set up one after another with blocking API calls and
 * a blocking ICE + DTLS handshake (tests/support/webrtc_peer.h); peers already connected
 * keep their ICE consent alive meanwhile.
 *
 * mf_gen_run() then sends media at the configured rates, reading every socket with
 * recvmmsg and sending each publisher's due packets with one sendmmsg. Subscribers feed
 * every packet's stamp to per-stream accounting, send a PLI for each video consumer at
 * the start, a generic NACK for gaps in a video consumer's RTP sequence (once per gap; the
 * RTX answer is counted), and an RTCP RR (+ SDES) every second; publishers send an SR
 * every second and answer PLI/FIR with a keyframe (they count NACKs, they do not
 * retransmit).
 *
 * Thread affinity: one mf_gen_t is used by ONE thread from create to free. */
#ifndef MF_BENCH_GEN_H
#define MF_BENCH_GEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "tests/bench/gen_traffic.h"

typedef struct {
  uint16_t api_port; /* the node's API on 127.0.0.1 */
  /* != 0: drive Debian's Janus instead (its HTTP API on 127.0.0.1:janus_port, the
   * videoroom plugin; gen_janus.h); api_port is then unused */
  uint16_t janus_port;
  mf_gen_video_config_t video;
  uint32_t audio_bps;
} mf_gen_config_t;

typedef struct mf_gen mf_gen_t;

mf_err_t mf_gen_create(const mf_gen_config_t *cfg, mf_gen_t **out);
/* Closes every socket and WebSocket (the node closes the sessions' objects). NULL ignored. */
void mf_gen_free(mf_gen_t *g);

/* A publisher joined to room; *index (optional) numbers publishers from 0. Errors are
 * printed to stderr with the failing step. */
mf_err_t mf_gen_add_publisher(mf_gen_t *g, const char *room, size_t *index);
/* A subscriber joined to room consuming the video and audio producers of the count
 * publishers listed (indexes from mf_gen_add_publisher). */
mf_err_t mf_gen_add_subscriber(mf_gen_t *g, const char *room, const size_t *publishers,
                               size_t count);

typedef struct {
  double window_s;        /* measured window: after the warm-up until the senders stop */
  uint64_t sent;          /* RTP packets the publishers sent in the window */
  uint64_t forwarded;     /* RTP packets the subscribers received in the window */
  double forwarded_pps;
  double sfu_cpu_s;       /* utime + stime of the SFU process over the window */
  double gen_cpu_s;       /* this process's CPU over the window */
  long sfu_rss_kb;        /* VmRSS at the end of the window */
  /* over the whole run, every consumed stream (stamp accounting) */
  uint64_t expected, received, lost, duplicates, reordered, too_late, malformed;
  double loss_ratio;
  uint64_t p50_us, p99_us, max_us;
  double mean_us;
  uint64_t plis_sent, nacks_sent, nacked_seqs, rtx_received;
  uint64_t plis_received, nacks_received, keyframes_sent; /* at the publishers */
  uint64_t unprotect_failed, send_failed;
  size_t subscribers, consumers;
} mf_gen_result_t;

/* Media for warmup_s + seconds, then 0.5 s more of receiving only. sfu_pid > 0: its CPU
 * and RSS are read from /proc. */
mf_err_t mf_gen_run(mf_gen_t *g, double warmup_s, double seconds, pid_t sfu_pid,
                    mf_gen_result_t *out);

/* ---- issue 10 pipe / churn (gen_pipe.c, gen_churn.c) ---- */

/* Peers added from now on dial this API port (pipe: publishers on node 1, subscribers on
 * node 2). */
void mf_gen_set_api_port(mf_gen_t *g, uint16_t api_port);

/* One more SFU process whose CPU and RSS mf_gen_run adds to sfu_pid's (pipe: the second
 * node, the controller). At most MF_GEN_MAX_EXTRA_SFU; MF_ERR_INVALID_ARG beyond. */
#define MF_GEN_MAX_EXTRA_SFU 4
mf_err_t mf_gen_add_sfu_pid(mf_gen_t *g, pid_t pid);

/* What another client needs to consume publisher `index`'s streams (churn's subscribers,
 * on their own thread: the ids are copied). MF_ERR_INVALID_ARG for an unknown index. */
typedef struct {
  char video_id[64], audio_id[64];
  uint32_t video_stream, audio_stream; /* the stamps' stream ids */
} mf_gen_publisher_ids_t;
mf_err_t mf_gen_publisher_ids(const mf_gen_t *g, size_t index, mf_gen_publisher_ids_t *out);

/* /proc/<pid>/stat utime + stime in seconds; -1 if unreadable. */
double mf_gen_proc_cpu_s(pid_t pid);
/* /proc/<pid>/status VmRSS in kB; -1 if unreadable. */
long mf_gen_proc_rss_kb(pid_t pid);

#endif
