/* A lossy relay for chaos tests (issue 12), run in-process on its own thread: this machine
 * has no tc netem and no iptables, so loss is made in user space.
 *
 * - UDP relay (gossip): a socket bound to listen_host:<free port> forwards every datagram
 *   it receives to one target, dropping each with probability `drop` (seeded PRNG, one
 *   draw per datagram). It is one-way: SWIM answers go to the sender's announced address,
 *   not to the source of the datagram, so a relay in front of every member (each member
 *   announces its relay's address) puts independent loss on every direction of every link.
 *   Datagrams that come back from the target itself are not relayed (counted as ignored).
 * - TCP relay (RPC): TCP cannot lose bytes; what 30% segment loss does to a TCP stream is
 *   delay it: a lost segment arrives one retransmission timeout late (Linux: 200 ms
 *   minimum), lost again 2 RTOs later, and so on, with everything behind it held up
 *   (head-of-line blocking). The relay reads each direction in segments of at most
 *   MF_LOSS_PROXY_MSS bytes and draws, per segment, k consecutive "losses" (each with
 *   probability `stall`, k <= 4); the segment is released 200 * (2^k - 1) ms later (200,
 *   600, 1400, 3000 ms) and never before the segment in front of it. A connection is reset
 *   (RST to both ends) per segment with probability `reset` — 0 models plain loss, where
 *   connections survive; a small value models middleboxes and timeouts giving up.
 *
 * Probabilities may change while running (mf_loss_proxy_set), e.g. to 1.0 to cut a member
 * off. Counters are readable at any time.
 *
 * Thread affinity: create, add relays and start from one thread (the test's main thread);
 * set, stats, print and stop from that thread while the relay thread runs. */
#ifndef MF_TEST_LOSS_PROXY_H
#define MF_TEST_LOSS_PROXY_H

#include <stdint.h>
#include <stdio.h>

#define MF_LOSS_PROXY_MAX_RELAYS 32
#define MF_LOSS_PROXY_MSS 1448 /* bytes per TCP "segment" the relay reads and delays */

typedef struct mf_loss_proxy mf_loss_proxy_t;

typedef struct {
  uint64_t in;        /* datagrams / segments received */
  uint64_t dropped;   /* UDP: datagrams dropped */
  uint64_t forwarded; /* UDP: datagrams sent on; TCP: segments written through */
  uint64_t ignored;   /* UDP: datagrams from the target itself, not relayed */
  uint64_t stalled;   /* TCP: segments delayed (k >= 1) */
  uint64_t stall_ms;  /* TCP: total delay drawn */
  uint64_t resets;    /* TCP: connections reset on purpose */
  uint64_t conns;     /* TCP: connections accepted */
} mf_loss_proxy_stats_t;

/* NULL on allocation failure. seed fixes the PRNG (the same seed and the same traffic
 * give the same losses). */
mf_loss_proxy_t *mf_loss_proxy_create(uint64_t seed);

/* A UDP relay on listen_host (IPv4 literal) at a free port to target "a.b.c.d:port".
 * Returns the relay index (>= 0) and sets *port, or -1. Before mf_loss_proxy_start only. */
int mf_loss_proxy_add_udp(mf_loss_proxy_t *p, const char *name, const char *listen_host,
                          const char *target, double drop, uint16_t *port);

/* A TCP relay (see above) on listen_host at a free port to target. As add_udp. */
int mf_loss_proxy_add_tcp(mf_loss_proxy_t *p, const char *name, const char *listen_host,
                          const char *target, double stall, double reset, uint16_t *port);

/* Starts the relay thread: 0, or -1. */
int mf_loss_proxy_start(mf_loss_proxy_t *p);

/* New probabilities for relay i: UDP drop = a (b ignored); TCP stall = a, reset = b. */
void mf_loss_proxy_set(mf_loss_proxy_t *p, int relay, double a, double b);

void mf_loss_proxy_stats(const mf_loss_proxy_t *p, int relay, mf_loss_proxy_stats_t *out);

/* One line per relay: "# proxy <name>: ..." with its counters. */
void mf_loss_proxy_print(const mf_loss_proxy_t *p, FILE *out);

/* Stops the thread, closes every socket, frees p. NULL is ignored. */
void mf_loss_proxy_stop(mf_loss_proxy_t *p);

#endif
