/* pipes-cpu: CPU time per forwarded packet, a consumer next to its producer vs a consumer
 * behind an intra-node pipe vs one behind an inter-node PipeTransport, on the node's real
 * code.
 *
 * Two media workers (mf_worker: each its own thread, uv loop, packet pool and RTC server)
 * share one pipe hub; every router call runs on its worker's thread through the worker's
 * mailbox, as the gateway does it. Worker A has the origin producer, worker B an empty shard
 * of the same logical router. This (main) thread plays the clients on its own uv loop: a
 * publisher socket sends SRTP (AEAD_AES_128_GCM, the pipe profile) to A's RTC port at a
 * fixed rate, and one receiver socket per worker takes what the consumers send.
 *
 * The publisher's and the consumers' transports are PipeTransports with SRTP (no ICE, no
 * DTLS; keys set by the bench): the only transports that can be connected without a client
 * ICE/DTLS stack, and their per-packet path is the WebRTC transport's (RTC server demux by
 * source address, SRTP unprotect, producer, consumer rewrite, SRTP protect, batched UDP
 * send). What they skip (ICE consent, DTLS) is not per packet. The consumers use the
 * router's own RTP capabilities (VP8 + RTX).
 *
 * Four phases of the same traffic, each measured alone (CPU of each worker thread read
 * with CLOCK_THREAD_CPUTIME_ID on that thread before and after the phase, so it is CPU,
 * not wall time, and includes the workers' timers while the phase runs):
 *   ingest  the producer on A with no consumer (UDP receive + SRTP unprotect + producer);
 *   direct  one consumer on A (+ rewrite, SRTP protect, UDP send);
 *   piped   no consumer on A; the producer piped to B (mf_router_pipe_produce on B,
 *           mf_producer_add_pipe on A) and one consumer on B;
 *   node    no consumer on A and no hub pipe; an SRTP PipeTransport pair between A's and
 *           B's RTC ports wired as the gateway wires two nodes (B, the target, chooses both
 *           keys; A consumes the producer on its pipe transport with its router's own
 *           capabilities; B creates the copy with that pipe consumer's rtpParameters, sent
 *           as JSON as over the control plane, and the same producer id) and one consumer
 *           on B. Two worker threads of one process stand in for two nodes: each has its
 *           own RTC server and UDP port, so the media path is the one between two nodes
 *           (over loopback), only the control plane is skipped.
 * Printed: ns per packet on each worker, totals, the ratios against direct (and node
 * against piped), and the same net of ingest (what one consumer costs), with packets into
 * A and delivered to the receiver so a run that dropped everything is visible. */
#define MF_LOG_MODULE "bench"
#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/id.h"
#include "common/log.h"
#include "common/mailbox.h"
#include "node/pipe_hub.h"
#include "node/router.h"
#include "node/rtp/rtp.h"
#include "node/srtp.h"
#include "node/udp_socket.h"
#include "node/worker.h"
#include "tests/bench/bench.h"

#define WORKERS 2
#define A 0
#define B 1
#define SSRC 1111
#define PACKETS_PER_FRAME 10
#define KEYFRAME_EVERY 3000 /* packets; the first packet of each phase is one too */
#define DRAIN_IDLE_MS 300   /* a phase ends when the receiver saw nothing new this long */
#define CLIENT_BUFFERS 4096

/* mediasoup-client's send parameters for a VP8 track with RTX. */
static const char *const vp8_params =
    "{\"mid\":\"0\",\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,"
    "\"clockRate\":90000,\"parameters\":{},\"rtcpFeedback\":[{\"type\":\"nack\"},"
    "{\"type\":\"nack\",\"parameter\":\"pli\"},{\"type\":\"ccm\",\"parameter\":\"fir\"}]},"
    "{\"mimeType\":\"video/rtx\",\"payloadType\":97,\"clockRate\":90000,"
    "\"parameters\":{\"apt\":96}}],\"headerExtensions\":[],"
    "\"encodings\":[{\"ssrc\":1111,\"rtx\":{\"ssrc\":2222}}],"
    "\"rtcp\":{\"cname\":\"bench\",\"reducedSize\":true}}";

/* What one sample of a worker reads on its own thread. */
typedef struct {
  uint64_t cpu_ns;
  uint64_t rtp_in;    /* A: RTP packets the publisher's transport decrypted */
  uint64_t rtp_out;   /* RTP packets this worker's consumer transport sent */
  mf_pipe_hub_stats_t hub;
  /* the node pipe transport, while it exists (else 0) */
  uint64_t node_sent, node_received, node_srtp_failures;
} sample_t;

/* Objects owned by one worker's thread (touched only in commands run there). */
typedef struct {
  mf_worker_t *worker;
  mf_router_t *router;
  mf_router_transport_t *in;  /* A: the publisher's transport */
  mf_router_transport_t *out; /* the consumer's transport, to this worker's receiver */
  mf_producer_t *producer;    /* A: the origin; B: the piped copy while piped */
  mf_consumer_t *consumer;
  mf_router_transport_t *node; /* the PipeTransport to the other worker "node", node phase */
  mf_consumer_t *pipe_consumer; /* A: the origin's consumer on `node` */
} side_t;

typedef struct bench bench_t;
typedef mf_err_t (*cmd_fn)(bench_t *b, side_t *s, void *arg);

typedef struct {
  uint32_t packets, pps, size;
} opts_t;

struct bench {
  opts_t o;
  mf_dtls_cert_t *cert;
  mf_pipe_hub_t *hub;
  side_t side[WORKERS];
  char router_id[MF_ID_LEN + 1], producer_id[MF_ID_LEN + 1];
  uint32_t pipe_id;
  mf_pipe_srtp_t pub_key, rx_key[WORKERS]; /* the clients' sending keys */
  mf_pipe_srtp_t node_key[WORKERS]; /* what each worker sends with on the node pipe (B chose) */
  char *node_params; /* A's pipe consumer's rtpParameters as JSON text, for B */
  char err[512];
  /* client side, this thread */
  uv_loop_t loop;
  bool loop_ready;
  mf_bufpool_t *pool;
  mf_udp_socket_t *pub, *rx[WORKERS];
  struct sockaddr_in worker_addr[WORKERS], pub_addr, rx_addr[WORKERS];
  mf_srtp_session_t *srtp;
  uint8_t *payload;
  uint16_t seq;
  uint32_t ts;
  uint64_t total_sent;
  uint64_t rx_count[WORKERS];
  /* the running phase */
  uv_timer_t send_timer, drain_timer;
  uint64_t phase_start_ns;
  uint32_t phase_target, phase_sent;
  uint64_t drain_last_rx;
  uint64_t drain_last_change_ns;
  int expect_rx; /* receiver that should see the packets, or -1 */
};

/* ---- commands on a worker's thread ---- */

typedef struct {
  mf_mailbox_msg_t link;
  bench_t *b;
  side_t *s;
  cmd_fn fn;
  void *arg;
  mf_err_t result;
  uv_sem_t done;
} cmd_t;

static void cmd_run(mf_mailbox_msg_t *msg, void *owner) {
  cmd_t *c = MF_CONTAINER_OF(msg, cmd_t, link);
  (void)owner;
  c->result = c->fn(c->b, c->s, c->arg);
  uv_sem_post(&c->done);
}

/* Runs fn on worker w's thread and waits for it. */
static mf_err_t on_worker(bench_t *b, int w, cmd_fn fn, void *arg) {
  cmd_t c = {.b = b, .s = &b->side[w], .fn = fn, .arg = arg};
  if (uv_sem_init(&c.done, 0) != 0) return MF_ERR_IO;
  mf_err_t e = mf_worker_post(b->side[w].worker, &c.link, cmd_run);
  if (e == MF_OK) {
    uv_sem_wait(&c.done);
    e = c.result;
  }
  uv_sem_destroy(&c.done);
  return e;
}

static void on_router_event(void *ud, const char *event, const char *target, json_t *data) {
  /* B's copy asks for keyframes as "pipekeyframerequest"; the publisher sends them
   * periodically anyway, so nothing is relayed. */
  (void)ud, (void)event, (void)target;
  json_decref(data);
}

static mf_err_t params_parse(bench_t *b, mf_rtp_parameters_t **out) {
  json_t *j = json_loads(vp8_params, 0, NULL);
  mf_rtp_parameters_t *p = malloc(sizeof *p);
  mf_err_t e = j && p ? mf_rtp_parameters_from_json(j, "rtpParameters", p, b->err, sizeof b->err)
                      : MF_ERR_NO_MEMORY;
  json_decref(j);
  if (e != MF_OK) {
    free(p);
    return e;
  }
  *out = p;
  return MF_OK;
}

static mf_err_t pipe_transport_to(bench_t *b, side_t *s, const struct sockaddr_in *to,
                                  const mf_pipe_srtp_t *key, mf_router_transport_t **out) {
  mf_err_t e = mf_router_create_pipe_transport(s->router, true, out);
  if (e != MF_OK) return e;
  return mf_webrtc_transport_connect_pipe(mf_router_transport_webrtc(*out),
                                          (const struct sockaddr *)to, key, NULL, b->err,
                                          sizeof b->err);
}

static mf_err_t cmd_setup(bench_t *b, side_t *s, void *arg) {
  uint32_t w = (uint32_t)(s - b->side);
  (void)arg;
  mf_err_t e = mf_pipe_hub_attach(b->hub, w, mf_worker_loop(s->worker));
  if (e == MF_OK)
    e = mf_router_create(mf_worker_rtc_server(s->worker), b->router_id, NULL, 0,
                         on_router_event, b, b->err, sizeof b->err, &s->router);
  if (e != MF_OK) return e;
  mf_router_set_pipe_hub(s->router, b->hub, w);
  e = pipe_transport_to(b, s, &b->rx_addr[w], &b->rx_key[w], &s->out);
  if (e != MF_OK || w != A) return e;
  e = pipe_transport_to(b, s, &b->pub_addr, &b->pub_key, &s->in);
  mf_rtp_parameters_t *p = NULL;
  if (e == MF_OK) e = params_parse(b, &p);
  if (e == MF_OK)
    e = mf_router_pipe_transport_produce(s->in, b->producer_id, MF_MEDIA_KIND_VIDEO, p, false,
                                         b->err, sizeof b->err, &s->producer);
  free(p);
  return e;
}

static mf_err_t cmd_consume(bench_t *b, side_t *s, void *arg) {
  (void)arg;
  return mf_router_consume(s->out, b->producer_id, mf_router_rtp_capabilities(s->router), false,
                           b->err, sizeof b->err, &s->consumer);
}

static mf_err_t cmd_unconsume(bench_t *b, side_t *s, void *arg) {
  (void)b, (void)arg;
  if (s->consumer) mf_consumer_close(s->consumer);
  s->consumer = NULL;
  return MF_OK;
}

/* B: the piped copy (the origin's parameters as its client gave them) and its consumer. */
static mf_err_t cmd_pipe_in(bench_t *b, side_t *s, void *arg) {
  (void)arg;
  mf_rtp_parameters_t *p = NULL;
  mf_err_t e = params_parse(b, &p);
  if (e == MF_OK)
    e = mf_router_pipe_produce(s->router, b->producer_id, MF_MEDIA_KIND_VIDEO, p, false,
                               b->pipe_id, b->err, sizeof b->err, &s->producer);
  free(p);
  if (e == MF_OK) e = cmd_consume(b, s, NULL);
  return e;
}

static mf_err_t cmd_pipe_out(bench_t *b, side_t *s, void *arg) {
  (void)arg;
  return mf_producer_add_pipe(s->producer, B, b->pipe_id);
}

static mf_err_t cmd_unpipe_out(bench_t *b, side_t *s, void *arg) {
  (void)arg;
  mf_producer_remove_pipe(s->producer, b->pipe_id);
  return MF_OK;
}

static mf_err_t cmd_unpipe_in(bench_t *b, side_t *s, void *arg) {
  (void)b, (void)arg;
  if (s->producer) mf_producer_close(s->producer); /* closes its consumer too */
  s->producer = NULL;
  s->consumer = NULL;
  return MF_OK;
}

/* The node pipe, in the order the gateway runs it. B (the target) first: its transport,
 * whose own key it keeps, and the key it chooses for A. */
static mf_err_t cmd_node_target_open(bench_t *b, side_t *s, void *arg) {
  (void)arg;
  mf_err_t e = mf_router_create_pipe_transport(s->router, true, &s->node);
  if (e != MF_OK) return e;
  mf_webrtc_transport_pipe_local_srtp(mf_router_transport_webrtc(s->node), &b->node_key[B]);
  return mf_pipe_srtp_generate(&b->node_key[A]);
}

/* A (the source): its transport with both keys B chose, and the pipe consumer; its
 * rtpParameters go back as JSON, as the control plane carries them. */
static mf_err_t cmd_node_source_open(bench_t *b, side_t *s, void *arg) {
  (void)arg;
  mf_err_t e = mf_router_create_pipe_transport(s->router, true, &s->node);
  if (e == MF_OK)
    e = mf_webrtc_transport_connect_pipe(mf_router_transport_webrtc(s->node),
                                         (const struct sockaddr *)&b->worker_addr[B],
                                         &b->node_key[B], &b->node_key[A], b->err, sizeof b->err);
  if (e == MF_OK)
    e = mf_router_consume(s->node, b->producer_id, mf_router_rtp_capabilities(s->router), false,
                          b->err, sizeof b->err, &s->pipe_consumer);
  if (e != MF_OK) return e;
  json_t *j = json_loads(mf_consumer_rtp_parameters_text(s->pipe_consumer), 0, NULL);
  b->node_params = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  return b->node_params ? MF_OK : MF_ERR_NO_MEMORY;
}

/* B: connect to A, the copy (same id, the pipe consumer's parameters) and its consumer. */
static mf_err_t cmd_node_target_connect(bench_t *b, side_t *s, void *arg) {
  (void)arg;
  mf_err_t e = mf_webrtc_transport_connect_pipe(mf_router_transport_webrtc(s->node),
                                                (const struct sockaddr *)&b->worker_addr[A],
                                                &b->node_key[A], NULL, b->err, sizeof b->err);
  if (e != MF_OK) return e;
  json_t *j = json_loads(b->node_params, 0, NULL);
  mf_rtp_parameters_t *p = malloc(sizeof *p);
  e = j && p ? mf_rtp_parameters_from_json(j, "rtpParameters", p, b->err, sizeof b->err)
             : MF_ERR_NO_MEMORY;
  json_decref(j);
  if (e == MF_OK)
    e = mf_router_pipe_transport_produce(s->node, b->producer_id, MF_MEDIA_KIND_VIDEO, p, false,
                                         b->err, sizeof b->err, &s->producer);
  free(p);
  if (e == MF_OK) e = cmd_consume(b, s, NULL);
  return e;
}

/* Either side: the transport closes what is on it (A: the pipe consumer; B: the copy and,
 * through it, its consumer). */
static mf_err_t cmd_node_close(bench_t *b, side_t *s, void *arg) {
  (void)arg;
  if (s->node) mf_router_transport_close(s->node);
  s->node = NULL;
  s->pipe_consumer = NULL;
  if (s - b->side == B) {
    s->producer = NULL;
    s->consumer = NULL;
  }
  return MF_OK;
}

static mf_err_t cmd_sample(bench_t *b, side_t *s, void *arg) {
  sample_t *out = arg;
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return MF_ERR_IO;
  out->cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  mf_webrtc_transport_stats_t t = {0};
  if (s->in) mf_webrtc_transport_get_stats(mf_router_transport_webrtc(s->in), &t);
  out->rtp_in = t.rtp_packets_received;
  mf_webrtc_transport_get_stats(mf_router_transport_webrtc(s->out), &t);
  out->rtp_out = t.rtp_packets_sent;
  mf_pipe_hub_stats(b->hub, (uint32_t)(s - b->side), &out->hub);
  out->node_sent = out->node_received = out->node_srtp_failures = 0;
  if (s->node) {
    mf_webrtc_transport_get_stats(mf_router_transport_webrtc(s->node), &t);
    out->node_sent = t.rtp_packets_sent;
    out->node_received = t.rtp_packets_received;
    out->node_srtp_failures = t.srtp_unprotect_failures;
  }
  return MF_OK;
}

static mf_err_t cmd_close_router(bench_t *b, side_t *s, void *arg) {
  (void)b, (void)arg;
  if (s->router) mf_router_close(s->router); /* closes its transports and everything on them */
  s->router = NULL;
  s->producer = NULL;
  s->consumer = NULL;
  s->node = NULL;
  s->pipe_consumer = NULL;
  return MF_OK;
}

static mf_err_t cmd_hub_quiesce(bench_t *b, side_t *s, void *arg) {
  (void)arg;
  mf_pipe_hub_quiesce(b->hub, (uint32_t)(s - b->side));
  return MF_OK;
}

static mf_err_t cmd_hub_detach(bench_t *b, side_t *s, void *arg) {
  (void)arg;
  mf_pipe_hub_detach(b->hub, (uint32_t)(s - b->side));
  return MF_OK;
}

/* ---- the clients, on this thread ---- */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void addr_of(struct sockaddr_in *a, uint16_t port) {
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
}

static void on_receiver(void *ud, mf_udp_datagram_t *d, unsigned n) {
  uint64_t *count = ud;
  for (unsigned i = 0; i < n; i++) {
    if (!mf_rtp_is_rtcp(d[i].buf->data, d[i].buf->len)) (*count)++;
    mf_buf_unref(d[i].buf);
  }
}

static void on_publisher(void *ud, mf_udp_datagram_t *d, unsigned n) {
  (void)ud; /* RTCP from A (RR, PLI, NACK): not needed, the stream is paced */
  for (unsigned i = 0; i < n; i++) mf_buf_unref(d[i].buf);
}

/* One VP8 packet of o.size bytes (before the SRTP tag), protected and queued to A. */
static bool send_one(bench_t *b, bool keyframe) {
  uint8_t pkt[2048];
  b->payload[0] = 0x10;                 /* VP8 descriptor: S=1, partition 0 */
  b->payload[1] = keyframe ? 0x00 : 0x01; /* P bit clear: a keyframe */
  bool last = b->seq % PACKETS_PER_FRAME == PACKETS_PER_FRAME - 1;
  mf_rtp_header_t h = {.marker = last, .payload_type = 96, .sequence = b->seq,
                       .timestamp = b->ts, .ssrc = SSRC};
  size_t len = 0;
  if (mf_rtp_write_packet(pkt, sizeof pkt - MF_SRTP_MAX_TRAILER, &h, b->payload,
                          b->o.size - 12, 0, &len) != MF_OK ||
      mf_srtp_protect_rtp(b->srtp, pkt, &len, sizeof pkt) != MF_OK)
    return false;
  b->seq++;
  if (last) b->ts += 3000;
  b->total_sent++;
  return mf_udp_socket_send_copy(b->pub, pkt, len, (const struct sockaddr *)&b->worker_addr[A]) ==
         MF_OK;
}

/* Paced at o.pps: each tick sends what the clock says is due (bursts of ~pps/1000). */
static void on_send_tick(uv_timer_t *t) {
  bench_t *b = t->data;
  uint64_t due = (now_ns() - b->phase_start_ns) * b->o.pps / 1000000000u;
  if (due > b->phase_target) due = b->phase_target;
  while (b->phase_sent < due) {
    bool key = b->phase_sent == 0 || b->total_sent % KEYFRAME_EVERY == 0;
    if (!send_one(b, key)) break; /* pool or socket full: retried next tick */
    b->phase_sent++;
  }
  mf_udp_socket_flush(b->pub);
  if (b->phase_sent >= b->phase_target) uv_timer_stop(t);
}

/* Ends the phase once everything is sent and the receiver (if any) has everything or saw
 * nothing new for DRAIN_IDLE_MS. */
static void on_drain_tick(uv_timer_t *t) {
  bench_t *b = t->data;
  uint64_t now = now_ns();
  if (b->phase_sent < b->phase_target) {
    b->drain_last_change_ns = now;
    return;
  }
  uint64_t rx = b->expect_rx >= 0 ? b->rx_count[b->expect_rx] : 0;
  if (rx != b->drain_last_rx) {
    b->drain_last_rx = rx;
    b->drain_last_change_ns = now;
  }
  if (now - b->drain_last_change_ns >= (uint64_t)DRAIN_IDLE_MS * 1000000u) uv_stop(&b->loop);
}

/* Sends `count` packets at the configured rate and waits for them to drain. */
static void run_traffic(bench_t *b, uint32_t count, int expect_rx) {
  b->phase_start_ns = now_ns();
  b->phase_target = count;
  b->phase_sent = 0;
  b->expect_rx = expect_rx;
  b->drain_last_rx = expect_rx >= 0 ? b->rx_count[expect_rx] : 0;
  b->drain_last_change_ns = b->phase_start_ns;
  uv_timer_start(&b->send_timer, on_send_tick, 0, 1);
  uv_timer_start(&b->drain_timer, on_drain_tick, 10, 10);
  uv_run(&b->loop, UV_RUN_DEFAULT);
  uv_timer_stop(&b->send_timer);
  uv_timer_stop(&b->drain_timer);
}

/* ---- phases ---- */

enum { PH_INGEST, PH_DIRECT, PH_PIPED, PH_NODE, PHASES };

typedef struct {
  const char *name;
  uint64_t cpu_ns[WORKERS];
  uint64_t into_a, consumer_sent, delivered;
  uint64_t hub_drops;  /* refused by the pipe hub: ring full or unbound */
  uint64_t node_lost;  /* sent by A's node pipe and not taken by B's (UDP loss, SRTP failure) */
  uint64_t node_srtp_failures;
  bool has_receiver;
} phase_t;

static uint64_t delta(uint64_t before, uint64_t after) {
  return after > before ? after - before : 0;
}

static mf_err_t measure(bench_t *b, const char *name, int rx, phase_t *out) {
  /* warm-up: first packets of a stream (libsrtp stream clones, the consumer waiting for a
   * keyframe, cold caches) are not what a long-lived stream costs */
  uint32_t warm = b->o.packets / 10 < 2000 ? b->o.packets / 10 + 1 : 2000;
  run_traffic(b, warm, rx);
  sample_t s0[WORKERS], s1[WORKERS];
  uint64_t rx0 = rx >= 0 ? b->rx_count[rx] : 0;
  for (int w = 0; w < WORKERS; w++) {
    mf_err_t e = on_worker(b, w, cmd_sample, &s0[w]);
    if (e != MF_OK) return e;
  }
  run_traffic(b, b->o.packets, rx);
  for (int w = 0; w < WORKERS; w++) {
    mf_err_t e = on_worker(b, w, cmd_sample, &s1[w]);
    if (e != MF_OK) return e;
  }
  out->name = name;
  for (int w = 0; w < WORKERS; w++) out->cpu_ns[w] = s1[w].cpu_ns - s0[w].cpu_ns;
  out->into_a = s1[A].rtp_in - s0[A].rtp_in;
  out->delivered = rx >= 0 ? b->rx_count[rx] - rx0 : 0;
  if (rx >= 0) out->consumer_sent = s1[rx].rtp_out - s0[rx].rtp_out;
  out->has_receiver = rx >= 0;
  out->hub_drops = (s1[A].hub.dropped_full - s0[A].hub.dropped_full) +
                   (s1[A].hub.dropped_unbound - s0[A].hub.dropped_unbound) +
                   (s1[B].hub.dropped_unbound - s0[B].hub.dropped_unbound);
  /* both samples follow a drain, so nothing of A's is still in flight to B */
  out->node_lost = delta(delta(s0[A].node_sent, s1[A].node_sent),
                         delta(s0[B].node_received, s1[B].node_received));
  out->node_srtp_failures = delta(s0[B].node_srtp_failures, s1[B].node_srtp_failures);
  return MF_OK;
}

static double per_pkt(uint64_t ns, uint32_t packets) { return (double)ns / packets; }

static void print_phase(const phase_t *p, uint32_t packets) {
  char sent[32] = "-", delivered[32] = "-";
  if (p->has_receiver) {
    snprintf(sent, sizeof sent, "%llu", (unsigned long long)p->consumer_sent);
    snprintf(delivered, sizeof delivered, "%llu", (unsigned long long)p->delivered);
  }
  printf("  %-36s %8.0f %8.0f %8.0f %8llu %8s %9s %5llu\n", p->name,
         per_pkt(p->cpu_ns[A], packets), per_pkt(p->cpu_ns[B], packets),
         per_pkt(p->cpu_ns[A] + p->cpu_ns[B], packets), (unsigned long long)p->into_a, sent,
         delivered, (unsigned long long)(p->hub_drops + p->node_lost));
}

static double ratio(double x, double y) { return y > 0 ? x / y : 0; }

static void print_results(const bench_t *b, const phase_t ph[PHASES]) {
  uint32_t n = b->o.packets;
  printf("pipes-cpu: two worker threads (mf_worker: own uv loop, RTC server and pool each) and "
         "one pipe hub;\n  the publisher (this thread) sends %u packets of %u bytes + SRTP tag "
         "at %u pps over loopback\n  UDP to worker A; consumers send SRTP to loopback sockets "
         "this bench owns. Transports\n  are SRTP PipeTransports (AEAD_AES_128_GCM; no ICE or "
         "DTLS, which are not per packet):\n  the figures include UDP receive, SRTP unprotect, "
         "forwarding, SRTP protect and UDP send.\n  Inter-node case: the two workers stand in "
         "for two nodes (each its own RTC server and\n  UDP port, one process, no control "
         "plane); A -> B is an SRTP PipeTransport pair over\n  loopback UDP, wired as the "
         "gateway wires two nodes.\n  CPU per worker thread "
         "(CLOCK_THREAD_CPUTIME_ID), in ns per packet sent:\n",
         n, b->o.size, b->o.pps);
  printf("  %-36s %8s %8s %8s %8s %8s %9s %5s\n", "case", "A ns/pkt", "B ns/pkt", "total",
         "into A", "sent", "delivered", "drops");
  for (int i = 0; i < PHASES; i++) print_phase(&ph[i], n);
  double tot[PHASES], net[PHASES];
  for (int i = 0; i < PHASES; i++) {
    tot[i] = per_pkt(ph[i].cpu_ns[A] + ph[i].cpu_ns[B], n);
    net[i] = tot[i] - tot[PH_INGEST];
  }
  printf("  %-60s %9s %9s\n", "", "total", "net");
  printf("  %-60s %9.2f %9.2f\n", "ratio piped (intra-node) / direct",
         ratio(tot[PH_PIPED], tot[PH_DIRECT]), ratio(net[PH_PIPED], net[PH_DIRECT]));
  printf("  %-60s %9.2f %9.2f\n", "ratio inter-node / direct",
         ratio(tot[PH_NODE], tot[PH_DIRECT]), ratio(net[PH_NODE], net[PH_DIRECT]));
  printf("  %-60s %9.2f %9.2f\n", "ratio inter-node / piped (intra-node)",
         ratio(tot[PH_NODE], tot[PH_PIPED]), ratio(net[PH_NODE], net[PH_PIPED]));
  printf("  %-60s %9.0f\n", "one direct consumer, net of ingest (ns/pkt)", net[PH_DIRECT]);
  printf("  %-60s %9.0f\n", "one piped consumer, net of ingest (ns/pkt)", net[PH_PIPED]);
  printf("  %-60s %9.0f\n", "  of which on A (pipe hub send + returns)",
         per_pkt(ph[PH_PIPED].cpu_ns[A], n) - per_pkt(ph[PH_INGEST].cpu_ns[A], n));
  printf("  %-60s %9.0f\n", "one inter-node consumer, net of ingest (ns/pkt)", net[PH_NODE]);
  printf("  %-60s %9.0f\n", "  of which on A (pipe consumer: rewrite, SRTP protect, send)",
         per_pkt(ph[PH_NODE].cpu_ns[A], n) - per_pkt(ph[PH_INGEST].cpu_ns[A], n));
  printf("  %-60s %9llu\n", "inter-node: SRTP failures on B's pipe transport",
         (unsigned long long)ph[PH_NODE].node_srtp_failures);
  printf("  (net: minus the ingest row's total. into A: RTP the publisher's transport "
         "decrypted;\n  sent: RTP the consumer's transport sent; delivered: RTP the receiver "
         "socket got;\n  drops: packets the pipe hub refused (ring full or unbound) plus, "
         "inter-node, RTP A's\n  pipe transport sent that B's did not take (UDP loss or SRTP "
         "failure). Idle timers are\n  included: B's column in the first two rows is that "
         "idle cost)\n");
}

/* ---- setup and teardown ---- */

static mf_err_t clients_open(bench_t *b) {
  if (uv_loop_init(&b->loop) != 0) return MF_ERR_IO;
  b->loop_ready = true;
  uv_timer_init(&b->loop, &b->send_timer);
  uv_timer_init(&b->loop, &b->drain_timer);
  b->send_timer.data = b->drain_timer.data = b;
  mf_err_t e = mf_bufpool_create(CLIENT_BUFFERS, MF_WORKER_BUFFER_SIZE, &b->pool);
  if (e == MF_OK)
    e = mf_udp_socket_open(&b->loop, b->pool, "127.0.0.1", 0, on_publisher, b, &b->pub);
  for (int w = 0; e == MF_OK && w < WORKERS; w++)
    e = mf_udp_socket_open(&b->loop, b->pool, "127.0.0.1", 0, on_receiver, &b->rx_count[w],
                           &b->rx[w]);
  if (e != MF_OK) return e;
  addr_of(&b->pub_addr, mf_udp_socket_port(b->pub));
  for (int w = 0; w < WORKERS; w++) addr_of(&b->rx_addr[w], mf_udp_socket_port(b->rx[w]));
  e = mf_pipe_srtp_generate(&b->pub_key);
  for (int w = 0; e == MF_OK && w < WORKERS; w++) e = mf_pipe_srtp_generate(&b->rx_key[w]);
  if (e == MF_OK)
    e = mf_srtp_session_create(b->pub_key.profile, b->pub_key.key, b->pub_key.key_len, false,
                               &b->srtp);
  b->payload = calloc(1, b->o.size);
  if (e == MF_OK && !b->payload) e = MF_ERR_NO_MEMORY;
  if (b->payload)
    for (uint32_t i = 2; i < b->o.size; i++) b->payload[i] = (uint8_t)(i * 7);
  return e;
}

static void clients_close(bench_t *b) {
  if (b->pub) mf_udp_socket_close(b->pub, NULL, NULL);
  for (int w = 0; w < WORKERS; w++)
    if (b->rx[w]) mf_udp_socket_close(b->rx[w], NULL, NULL);
  uv_close((uv_handle_t *)&b->send_timer, NULL);
  uv_close((uv_handle_t *)&b->drain_timer, NULL);
  uv_run(&b->loop, UV_RUN_DEFAULT);
  uv_loop_close(&b->loop);
  mf_srtp_session_free(b->srtp);
  free(b->payload);
  mf_bufpool_destroy(b->pool);
}

/* Routers first (nothing sends through the hub any more), then the hub's shutdown steps on
 * every worker, then the workers. */
static void workers_stop(bench_t *b) {
  for (int w = 0; w < WORKERS; w++)
    if (b->side[w].worker) on_worker(b, w, cmd_close_router, NULL);
  for (int w = 0; w < WORKERS; w++)
    if (b->side[w].worker) on_worker(b, w, cmd_hub_quiesce, NULL);
  for (int w = 0; w < WORKERS; w++)
    if (b->side[w].worker) on_worker(b, w, cmd_hub_detach, NULL);
  for (int w = 0; w < WORKERS; w++) mf_worker_stop(b->side[w].worker);
  mf_pipe_hub_destroy(b->hub);
  mf_dtls_cert_free(b->cert);
}

static mf_err_t workers_start(bench_t *b) {
  mf_err_t e = mf_srtp_library_init();
  if (e == MF_OK) e = mf_dtls_cert_generate(&b->cert);
  if (e == MF_OK) e = mf_pipe_hub_create(WORKERS, 0, &b->hub);
  for (uint32_t w = 0; e == MF_OK && w < WORKERS; w++) {
    mf_worker_options_t wo = {.index = w, .cpu = -1, .rtc_listen_ip = "127.0.0.1",
                              .announced_ip = "127.0.0.1", .cert = b->cert};
    e = mf_worker_start(&wo, &b->side[w].worker);
    if (e == MF_OK) addr_of(&b->worker_addr[w], mf_worker_rtc_port(b->side[w].worker));
  }
  return e;
}

static int fail(bench_t *b, const char *what, mf_err_t e) {
  fprintf(stderr, "mafalda-bench pipes-cpu: %s: %s%s%s\n", what, mf_strerror(e),
          b->err[0] ? ": " : "", b->err);
  return 1;
}

static int bench_pipes_cpu(bench_t *b) {
  mf_err_t e = workers_start(b);
  if (e != MF_OK) return fail(b, "cannot start the workers", e);
  e = clients_open(b);
  if (e != MF_OK) return fail(b, "cannot open the client sockets", e);
  if (mf_id_generate(b->router_id) != MF_OK || mf_id_generate(b->producer_id) != MF_OK)
    return fail(b, "ids", MF_ERR_CRYPTO);
  b->pipe_id = mf_pipe_hub_new_id(b->hub);
  for (int w = 0; w < WORKERS; w++) {
    e = on_worker(b, w, cmd_setup, NULL);
    if (e != MF_OK) return fail(b, "router setup", e);
  }
  phase_t ph[PHASES];
  memset(ph, 0, sizeof ph);
  e = measure(b, "ingest only (no consumer)", -1, &ph[PH_INGEST]);
  if (e == MF_OK) e = on_worker(b, A, cmd_consume, NULL);
  if (e == MF_OK) e = measure(b, "direct consumer (on A)", A, &ph[PH_DIRECT]);
  if (e == MF_OK) e = on_worker(b, A, cmd_unconsume, NULL);
  /* the gateway's order: the copy on B exists before A sends into the pipe */
  if (e == MF_OK) e = on_worker(b, B, cmd_pipe_in, NULL);
  if (e == MF_OK) e = on_worker(b, A, cmd_pipe_out, NULL);
  if (e == MF_OK) e = measure(b, "piped consumer (A -> ring -> B)", B, &ph[PH_PIPED]);
  if (e == MF_OK) e = on_worker(b, A, cmd_unpipe_out, NULL);
  if (e == MF_OK) e = on_worker(b, B, cmd_unpipe_in, NULL);
  /* node.PipeOpen's order: target, source, target; no media flows between phases */
  if (e == MF_OK) e = on_worker(b, B, cmd_node_target_open, NULL);
  if (e == MF_OK) e = on_worker(b, A, cmd_node_source_open, NULL);
  if (e == MF_OK) e = on_worker(b, B, cmd_node_target_connect, NULL);
  if (e == MF_OK) e = measure(b, "inter-node (A -> PipeTransport -> B)", B, &ph[PH_NODE]);
  if (e == MF_OK) e = on_worker(b, B, cmd_node_close, NULL);
  if (e == MF_OK) e = on_worker(b, A, cmd_node_close, NULL);
  if (e != MF_OK) return fail(b, "phase", e);
  print_results(b, ph);
  return 0;
}

int mf_bench_pipes_cpu(int argc, char **argv) {
  int packets = 200000, pps = 20000, size = 1100;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--packets") == 0 && v && mf_bench_parse_int(v, 100, 100000000, &packets)) {
      i++;
    } else if (strcmp(a, "--pps") == 0 && v && mf_bench_parse_int(v, 100, 1000000, &pps)) {
      i++;
    } else if (strcmp(a, "--size") == 0 && v && mf_bench_parse_int(v, 100, 1400, &size)) {
      i++;
    } else {
      fprintf(stderr, "mafalda-bench pipes-cpu: bad option '%s'\n", a);
      return 2;
    }
  }
  /* The node logs every object it creates at INFO; the figures are the output here. */
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  bench_t *b = calloc(1, sizeof *b);
  if (!b) return 1;
  b->o = (opts_t){(uint32_t)packets, (uint32_t)pps, (uint32_t)size};
  int rc = bench_pipes_cpu(b);
  workers_stop(b);
  if (b->loop_ready) clients_close(b);
  free(b->node_params);
  free(b);
  return rc;
}
