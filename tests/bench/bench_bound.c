/* bound: what one core can at most do for a forwarded packet on this machine, i.e. the
 * ceiling any SFU's per-packet figure is measured against.
 *
 * A forwarded packet costs at least: its share of a recvmmsg batch, SRTP unprotect (the
 * publisher's inbound session), SRTP protect (the subscriber's outbound session, another
 * key) and its share of a sendmmsg batch. Everything else an SFU does per packet (demux,
 * parsing, rewriting, bookkeeping) comes on top, so 1e9 / (sum of these) packets/s is the
 * bound of one core.
 *
 * One pipeline per SRTP profile (AEAD_AES_128_GCM and AES_CM_128_HMAC_SHA1_80, through the
 * node's own mf_srtp, i.e. libsrtp2), on this thread, batch by batch:
 *   (untimed) the "publisher" builds B RTP packets of the given size and protects them;
 *   unprotect the B packets (inbound session, replay check included);
 *   protect them again with a second key (outbound session);
 *   sendmmsg the B datagrams from one real UDP socket to another (127.0.0.1, port 0);
 *   recvmmsg them on the other socket.
 * Each stage is timed around the whole batch with the thread's CPU clock (the cost of a
 * clock read, calibrated at start, is subtracted), so time spent descheduled on a busy
 * machine does not count; --wall times with CLOCK_MONOTONIC instead. The thread's CPU time
 * over the wall time of the run is printed too: well below 1 means the machine was busy
 * (the CPU figures still hold; caches shared with other processes may inflate them).
 *
 * On loopback the sending thread also runs the receiving side's IP/UDP stack (the
 * datagram is queued on the destination socket before sendmmsg returns), so "send" holds
 * most of the kernel's cost and "recv" little more than the copy out; their sum is what
 * one packet in plus one packet out costs, which is what a forwarded packet needs. The
 * fan-out bound (one packet in, N out) counts recv + unprotect once and protect + send N
 * times, so it slightly overcounts (each send pays a loopback receive). */
#define MF_LOG_MODULE "bench"
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "node/srtp.h"
#include "tests/bench/bench.h"

#define MAX_BATCH 64
#define BUF_SIZE 1600
#define FANOUT 10
#define SSRC 0x4d424e44u

typedef struct {
  int packets, size, batch;
  bool json, wall;
} opts_t;

/* The stage clock: the thread's CPU time by default, so time the thread spent descheduled
 * on a busy machine does not count; --wall uses CLOCK_MONOTONIC instead. */
static clockid_t stage_clock = CLOCK_THREAD_CPUTIME_ID;
static double clock_overhead_ns; /* one stage_clock read, subtracted from each stage */

typedef struct {
  mf_srtp_profile_t profile;
  uint64_t packets;  /* timed */
  uint64_t received; /* datagrams recvmmsg returned in the timed part */
  uint64_t srtp_failures, recv_calls, send_calls;
  double recv_ns, unprotect_ns, protect_ns, send_ns; /* per packet */
  double cpu_wall;
  bool verified; /* the first batch decrypted with the subscriber's key after the trip */
} row_t;

typedef struct {
  int tx, rx;
  struct sockaddr_in rx_addr;
  uint8_t buf[MAX_BATCH][BUF_SIZE];
  size_t len[MAX_BATCH];
  uint8_t rbuf[MAX_BATCH][BUF_SIZE];
  struct mmsghdr smsg[MAX_BATCH], rmsg[MAX_BATCH];
  struct iovec siov[MAX_BATCH], riov[MAX_BATCH];
  uint8_t payload[BUF_SIZE];
} pipe_t;

static double now_ns(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The cheapest of many back-to-back reads: what one read adds to a stage's time. */
static void calibrate_clock(void) {
  double best = 1e9;
  for (int i = 0; i < 2000; i++) {
    double a = now_ns(stage_clock), b = now_ns(stage_clock);
    if (b - a < best) best = b - a;
  }
  clock_overhead_ns = best;
}

static int udp_open(struct sockaddr_in *bound) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  int sz = 4 * 1024 * 1024;
  /* Best effort: the kernel caps it at rmem_max/wmem_max; one batch fits the default. */
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
    close(fd);
    return -1;
  }
  if (bound) *bound = a;
  return fd;
}

static void build_rtp(pipe_t *p, int i, uint16_t seq, uint32_t ts, int size) {
  uint8_t *b = p->buf[i];
  b[0] = 0x80;
  b[1] = 96;
  b[2] = (uint8_t)(seq >> 8);
  b[3] = (uint8_t)seq;
  b[4] = (uint8_t)(ts >> 24);
  b[5] = (uint8_t)(ts >> 16);
  b[6] = (uint8_t)(ts >> 8);
  b[7] = (uint8_t)ts;
  b[8] = (uint8_t)(SSRC >> 24);
  b[9] = (uint8_t)(SSRC >> 16);
  b[10] = (uint8_t)(SSRC >> 8);
  b[11] = (uint8_t)SSRC;
  memcpy(b + 12, p->payload, (size_t)size - 12);
  p->len[i] = (size_t)size;
}

static void fill_key(uint8_t *k, size_t n, uint8_t seed) {
  for (size_t i = 0; i < n; i++) k[i] = (uint8_t)(seed + i * 7);
}

/* Receives what is queued on rx, up to n datagrams; returns how many (all of them unless
 * the kernel dropped some). */
static unsigned recv_batch(pipe_t *p, unsigned n, uint64_t *calls) {
  unsigned got = 0;
  for (int tries = 0; got < n && tries < 4; tries++) {
    for (unsigned i = got; i < n; i++) {
      p->riov[i] = (struct iovec){p->rbuf[i], BUF_SIZE};
      p->rmsg[i].msg_hdr = (struct msghdr){.msg_iov = &p->riov[i], .msg_iovlen = 1};
    }
    int r = recvmmsg(p->rx, p->rmsg + got, n - got, MSG_DONTWAIT, NULL);
    (*calls)++;
    if (r <= 0) continue;
    got += (unsigned)r;
  }
  return got;
}

static mf_err_t run_profile(pipe_t *p, const opts_t *o, mf_srtp_profile_t profile, row_t *row) {
  memset(row, 0, sizeof *row);
  row->profile = profile;
  size_t mlen = mf_srtp_profile_master_len(profile);
  uint8_t k1[MF_SRTP_MAX_MASTER_LEN], k2[MF_SRTP_MAX_MASTER_LEN];
  fill_key(k1, mlen, 1);
  fill_key(k2, mlen, 101);
  mf_srtp_session_t *pub = NULL, *in = NULL, *out = NULL, *sub = NULL;
  mf_err_t e = mf_srtp_session_create(profile, k1, mlen, false, &pub);
  if (e == MF_OK) e = mf_srtp_session_create(profile, k1, mlen, true, &in);
  if (e == MF_OK) e = mf_srtp_session_create(profile, k2, mlen, false, &out);
  if (e == MF_OK) e = mf_srtp_session_create(profile, k2, mlen, true, &sub);
  if (e != MF_OK) goto done;

  unsigned B = (unsigned)o->batch;
  uint64_t batches = ((uint64_t)o->packets + B - 1) / B;
  uint64_t warm = batches / 10 > 0 ? batches / 10 : 1;
  uint16_t seq = 1000;
  uint32_t ts = 0;
  double t_recv = 0, t_unp = 0, t_prot = 0, t_send = 0;
  double wall0 = 0, cpu0 = 0;
  for (uint64_t bn = 0; bn < warm + batches; bn++) {
    if (bn == warm) {
      wall0 = now_ns(CLOCK_MONOTONIC);
      cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    }
    bool timed = bn >= warm;
    for (unsigned i = 0; i < B; i++) {
      build_rtp(p, (int)i, seq++, ts, o->size);
      if (i % 10 == 9) ts += 3000;
      if (mf_srtp_protect_rtp(pub, p->buf[i], &p->len[i], BUF_SIZE) != MF_OK) {
        e = MF_ERR_CRYPTO;
        goto done;
      }
    }
    double t0 = now_ns(stage_clock);
    unsigned failed = 0;
    for (unsigned i = 0; i < B; i++)
      if (mf_srtp_unprotect_rtp(in, p->buf[i], &p->len[i]) != MF_OK) failed++;
    double t1 = now_ns(stage_clock);
    for (unsigned i = 0; i < B; i++)
      if (mf_srtp_protect_rtp(out, p->buf[i], &p->len[i], BUF_SIZE) != MF_OK) failed++;
    double t2 = now_ns(stage_clock);
    for (unsigned i = 0; i < B; i++) {
      p->siov[i] = (struct iovec){p->buf[i], p->len[i]};
      p->smsg[i].msg_hdr = (struct msghdr){.msg_name = &p->rx_addr,
                                           .msg_namelen = sizeof p->rx_addr,
                                           .msg_iov = &p->siov[i], .msg_iovlen = 1};
    }
    unsigned sent = 0;
    while (sent < B) {
      int r = sendmmsg(p->tx, p->smsg + sent, B - sent, 0);
      if (timed) row->send_calls++;
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        e = MF_ERR_IO;
        goto done;
      }
      sent += (unsigned)r;
    }
    double t3 = now_ns(stage_clock);
    uint64_t calls = 0;
    unsigned got = recv_batch(p, B, &calls);
    double t4 = now_ns(stage_clock);
    if (bn == 0) {
      /* The pipeline is real SRTP end to end: the subscriber can decrypt what arrived. */
      unsigned ok = 0;
      for (unsigned i = 0; i < got; i++) {
        size_t len = p->rmsg[i].msg_len;
        if (mf_srtp_unprotect_rtp(sub, p->rbuf[i], &len) == MF_OK && len == (size_t)o->size &&
            memcmp(p->rbuf[i] + 12, p->payload, len - 12) == 0)
          ok++;
      }
      row->verified = got == B && ok == B;
    }
    if (!timed) continue;
    row->packets += B;
    row->received += got;
    row->recv_calls += calls;
    row->srtp_failures += failed;
    t_unp += t1 - t0 - clock_overhead_ns;
    t_prot += t2 - t1 - clock_overhead_ns;
    t_send += t3 - t2 - clock_overhead_ns;
    t_recv += t4 - t3 - clock_overhead_ns;
  }
  double wall = now_ns(CLOCK_MONOTONIC) - wall0;
  double cpu = now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
  double n = (double)row->packets;
  row->unprotect_ns = t_unp / n;
  row->protect_ns = t_prot / n;
  row->send_ns = t_send / n;
  row->recv_ns = t_recv / n;
  row->cpu_wall = wall > 0 ? cpu / wall : 0;

done:
  mf_srtp_session_free(pub);
  mf_srtp_session_free(in);
  mf_srtp_session_free(out);
  mf_srtp_session_free(sub);
  return e;
}

static double total_ns(const row_t *r) {
  return r->recv_ns + r->unprotect_ns + r->protect_ns + r->send_ns;
}

/* Packets/s one core can send when each incoming packet goes to `fanout` subscribers. */
static double bound_out_pps(const row_t *r, int fanout) {
  double ns = r->recv_ns + r->unprotect_ns + fanout * (r->protect_ns + r->send_ns);
  return ns > 0 ? fanout * 1e9 / ns : 0;
}

static void print_table(const opts_t *o, const row_t *rows, int n) {
  printf("bound: one core, %d-byte RTP packets, recvmmsg/sendmmsg batches of %d on loopback "
         "UDP, libsrtp2 via mf_srtp, %s time\n", o->size, o->batch,
         o->wall ? "wall" : "thread CPU");
  printf("  %-26s %8s %8s %8s %8s %8s %11s %12s\n", "profile", "recv", "unprot", "protect",
         "send", "total", "fwd pkt/s", "fanout10 out");
  printf("  %-26s %8s %8s %8s %8s %8s %11s %12s\n", "", "ns/pkt", "ns/pkt", "ns/pkt", "ns/pkt",
         "ns/pkt", "(1 in,1 out)", "pkt/s");
  for (int i = 0; i < n; i++) {
    const row_t *r = &rows[i];
    printf("  %-26s %8.0f %8.0f %8.0f %8.0f %8.0f %11.0f %12.0f\n",
           mf_srtp_profile_name(r->profile), r->recv_ns, r->unprotect_ns, r->protect_ns,
           r->send_ns, total_ns(r), bound_out_pps(r, 1), bound_out_pps(r, FANOUT));
  }
  for (int i = 0; i < n; i++) {
    const row_t *r = &rows[i];
    printf("  %s: %llu packets timed, %llu received, %llu SRTP failures, %.1f datagrams per "
           "recvmmsg, %.1f per sendmmsg, thread CPU/wall %.2f%s, end-to-end decrypt %s\n",
           mf_srtp_profile_name(r->profile), (unsigned long long)r->packets,
           (unsigned long long)r->received, (unsigned long long)r->srtp_failures,
           r->recv_calls ? (double)r->received / (double)r->recv_calls : 0,
           r->send_calls ? (double)r->packets / (double)r->send_calls : 0, r->cpu_wall,
           r->cpu_wall < 0.9 ? " (machine busy)" : "",
           r->verified ? "ok" : "FAILED");
  }
  printf("  (on loopback the sender also runs the receiver's UDP stack: send holds most of the "
         "kernel cost, recv the copy out; fanout10 counts recv + unprotect once and protect + "
         "send ten times)\n");
}

static int print_json(const opts_t *o, const row_t *rows, int n) {
  json_t *arr = json_array();
  for (int i = 0; i < n; i++) {
    const row_t *r = &rows[i];
    json_array_append_new(
        arr, json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:f, s:b}",
                       "profile", mf_srtp_profile_name(r->profile), "recv_ns", r->recv_ns,
                       "unprotect_ns", r->unprotect_ns, "protect_ns", r->protect_ns, "send_ns",
                       r->send_ns, "total_ns", total_ns(r), "forward_pps", bound_out_pps(r, 1),
                       "fanout10_out_pps", bound_out_pps(r, FANOUT), "packets",
                       (json_int_t)r->packets, "received", (json_int_t)r->received,
                       "srtp_failures", (json_int_t)r->srtp_failures, "cpu_wall", r->cpu_wall,
                       "verified", r->verified));
  }
  json_t *root = json_pack("{s:s, s:i, s:i, s:i, s:s, s:o}", "figure", "bound",
                           "packet_size", o->size, "batch", o->batch, "packets", o->packets,
                           "clock", o->wall ? "wall" : "thread_cpu", "profiles", arr);
  char *s = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
  json_decref(root);
  if (!s) return 1;
  printf("%s\n", s);
  free(s);
  return 0;
}

int mf_bench_bound(int argc, char **argv) {
  opts_t o = {.packets = 200000, .size = 1100, .batch = 32, .json = false};
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--packets") == 0 && v && mf_bench_parse_int(v, 100, 100000000, &o.packets)) {
      i++;
    } else if (strcmp(a, "--size") == 0 && v && mf_bench_parse_int(v, 100, 1400, &o.size)) {
      i++;
    } else if (strcmp(a, "--batch") == 0 && v && mf_bench_parse_int(v, 1, MAX_BATCH, &o.batch)) {
      i++;
    } else if (strcmp(a, "--wall") == 0) {
      o.wall = true;
    } else if (strcmp(a, "--json") == 0) {
      o.json = true;
    } else {
      fprintf(stderr, "mafalda-bench bound: bad option '%s'\n", a);
      return 2;
    }
  }
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  stage_clock = o.wall ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID;
  calibrate_clock();
  if (mf_srtp_library_init() != MF_OK) {
    fprintf(stderr, "mafalda-bench bound: libsrtp did not start\n");
    return 1;
  }
  pipe_t *p = calloc(1, sizeof *p);
  if (!p) return 1;
  for (size_t i = 0; i < sizeof p->payload; i++) p->payload[i] = (uint8_t)(i * 131 + 17);
  int rc = 0;
  p->tx = udp_open(NULL);
  p->rx = udp_open(&p->rx_addr);
  if (p->tx < 0 || p->rx < 0) {
    fprintf(stderr, "mafalda-bench bound: cannot open loopback UDP sockets: %s\n",
            strerror(errno));
    rc = 1;
  }
  static const mf_srtp_profile_t profiles[] = {MF_SRTP_PROFILE_AEAD_AES_128_GCM,
                                               MF_SRTP_PROFILE_AES128_CM_SHA1_80};
  row_t rows[2];
  for (int i = 0; rc == 0 && i < 2; i++) {
    mf_err_t e = run_profile(p, &o, profiles[i], &rows[i]);
    if (e != MF_OK) {
      fprintf(stderr, "mafalda-bench bound: %s: %s\n", mf_srtp_profile_name(profiles[i]),
              mf_strerror(e));
      rc = 1;
    }
  }
  /* A pipeline that lost or garbled packets measured something else: say so in the exit
   * code (the figures are still printed). */
  bool broken = false;
  for (int i = 0; rc == 0 && i < 2; i++)
    if (!rows[i].verified || rows[i].srtp_failures || rows[i].received != rows[i].packets)
      broken = true;
  if (rc == 0) {
    if (o.json)
      rc = print_json(&o, rows, 2);
    else
      print_table(&o, rows, 2);
    if (broken) {
      fprintf(stderr, "mafalda-bench bound: packets lost or not decryptable (see above)\n");
      rc = 1;
    }
  }
  if (p->tx >= 0) close(p->tx);
  if (p->rx >= 0) close(p->rx);
  free(p);
  return rc;
}

/* For the scenarios' "% of bound" (issue 10): the GCM pipeline alone (the profile the
 * generator's peers negotiate), 1100-byte packets, batches of 32, thread CPU time. Short on
 * purpose: a scenario spends a fraction of a second on it before starting its nodes. */
mf_err_t mf_bench_bound_measure(int packets, mf_bench_bound_cost_t *out) {
  if (!out || packets < 100) return MF_ERR_INVALID_ARG;
  opts_t o = {.packets = packets, .size = 1100, .batch = 32};
  stage_clock = CLOCK_THREAD_CPUTIME_ID;
  calibrate_clock();
  mf_err_t e = mf_srtp_library_init();
  if (e != MF_OK) return e;
  pipe_t *p = calloc(1, sizeof *p);
  if (!p) return MF_ERR_NO_MEMORY;
  for (size_t i = 0; i < sizeof p->payload; i++) p->payload[i] = (uint8_t)(i * 131 + 17);
  p->tx = udp_open(NULL);
  p->rx = udp_open(&p->rx_addr);
  row_t row;
  e = p->tx < 0 || p->rx < 0 ? MF_ERR_IO
                             : run_profile(p, &o, MF_SRTP_PROFILE_AEAD_AES_128_GCM, &row);
  if (e == MF_OK && (!row.verified || row.srtp_failures || row.received != row.packets))
    e = MF_ERR_CRYPTO;
  if (e == MF_OK)
    *out = (mf_bench_bound_cost_t){.recv_ns = row.recv_ns, .unprotect_ns = row.unprotect_ns,
                                   .protect_ns = row.protect_ns, .send_ns = row.send_ns};
  if (p->tx >= 0) close(p->tx);
  if (p->rx >= 0) close(p->rx);
  free(p);
  return e;
}
