#include "tests/support/loss_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define PPM 1000000u
#define MAX_CONNS 256
#define QUEUE_MAX (256 * 1024) /* bytes queued per direction before reading pauses */
#define RTO_MS 200
#define MAX_LOSSES 4

enum { RELAY_UDP, RELAY_TCP };

typedef struct chunk {
  struct chunk *next;
  uint64_t release_ms;
  size_t len, off;
  uint8_t data[MF_LOSS_PROXY_MSS];
} chunk_t;

/* One direction of a TCP connection: bytes read from fd_in wait here, then go to fd_out. */
typedef struct {
  int fd_in, fd_out;
  chunk_t *head, *tail;
  size_t queued;
  uint64_t last_release_ms;
  bool eof;      /* fd_in said EOF */
  bool shut;     /* EOF passed on (shutdown of fd_out's write side) */
} direction_t;

typedef struct {
  bool used;
  int relay;
  int fd[2]; /* 0: the accepted client, 1: the connection to the target */
  direction_t dir[2]; /* 0: client -> target, 1: target -> client */
} conn_t;

typedef struct {
  int kind;
  char name[32];
  int fd;
  struct sockaddr_in target;
  _Atomic uint32_t a_ppm, b_ppm; /* UDP drop; TCP stall, reset */
  _Atomic uint64_t in, dropped, forwarded, ignored, stalled, stall_ms, resets, conns;
} relay_t;

struct mf_loss_proxy {
  relay_t relays[MF_LOSS_PROXY_MAX_RELAYS];
  int n_relays;
  conn_t conns[MAX_CONNS];
  uint64_t rng;
  int wake[2];
  atomic_bool stop;
  bool running;
  uv_thread_t thread;
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* xorshift64*: reproducible per seed, good enough for loss draws. */
static uint32_t rand_ppm(mf_loss_proxy_t *p) {
  uint64_t x = p->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  p->rng = x;
  return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32) % PPM;
}

static uint32_t to_ppm(double f) {
  if (!(f > 0)) return 0;
  if (f >= 1) return PPM;
  return (uint32_t)(f * PPM + 0.5);
}

static int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static bool parse_hostport(const char *text, struct sockaddr_in *out) {
  char host[64];
  const char *colon = strrchr(text, ':');
  if (!colon || (size_t)(colon - text) >= sizeof host) return false;
  memcpy(host, text, (size_t)(colon - text));
  host[colon - text] = '\0';
  return uv_ip4_addr(host, atoi(colon + 1), out) == 0;
}

mf_loss_proxy_t *mf_loss_proxy_create(uint64_t seed) {
  mf_loss_proxy_t *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
  if (pipe(p->wake) != 0) {
    free(p);
    return NULL;
  }
  set_nonblock(p->wake[0]);
  return p;
}

static int add_relay(mf_loss_proxy_t *p, int kind, const char *name, const char *listen_host,
                     const char *target, uint32_t a, uint32_t b, uint16_t *port) {
  if (p->running || p->n_relays >= MF_LOSS_PROXY_MAX_RELAYS) return -1;
  relay_t *r = &p->relays[p->n_relays];
  memset(r, 0, sizeof *r);
  r->kind = kind;
  snprintf(r->name, sizeof r->name, "%s", name ? name : "");
  if (!parse_hostport(target, &r->target)) return -1;
  struct sockaddr_in addr;
  if (uv_ip4_addr(listen_host, 0, &addr) != 0) return -1;
  int fd = socket(AF_INET, kind == RELAY_UDP ? SOCK_DGRAM : SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t len = sizeof addr;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      (kind == RELAY_TCP && listen(fd, 64) != 0) ||
      getsockname(fd, (struct sockaddr *)&addr, &len) != 0 || set_nonblock(fd) != 0) {
    close(fd);
    return -1;
  }
  if (kind == RELAY_UDP) {
    /* Gossip bursts (SYNCs) must not be lost to a small buffer: only the draw drops. */
    int buf = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  }
  r->fd = fd;
  atomic_store(&r->a_ppm, a);
  atomic_store(&r->b_ppm, b);
  *port = ntohs(addr.sin_port);
  return p->n_relays++;
}

int mf_loss_proxy_add_udp(mf_loss_proxy_t *p, const char *name, const char *listen_host,
                          const char *target, double drop, uint16_t *port) {
  return add_relay(p, RELAY_UDP, name, listen_host, target, to_ppm(drop), 0, port);
}

int mf_loss_proxy_add_tcp(mf_loss_proxy_t *p, const char *name, const char *listen_host,
                          const char *target, double stall, double reset, uint16_t *port) {
  return add_relay(p, RELAY_TCP, name, listen_host, target, to_ppm(stall), to_ppm(reset), port);
}

void mf_loss_proxy_set(mf_loss_proxy_t *p, int relay, double a, double b) {
  if (relay < 0 || relay >= p->n_relays) return;
  atomic_store(&p->relays[relay].a_ppm, to_ppm(a));
  atomic_store(&p->relays[relay].b_ppm, to_ppm(b));
}

/* ---- UDP ---- */

static void udp_readable(mf_loss_proxy_t *p, relay_t *r) {
  uint8_t buf[65536];
  for (int n = 0; n < 256; n++) {
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t len = recvfrom(r->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    if (len < 0) return; /* EAGAIN, or an ICMP error of an earlier send: nothing to relay */
    if (from.sin_addr.s_addr == r->target.sin_addr.s_addr && from.sin_port == r->target.sin_port) {
      atomic_fetch_add(&r->ignored, 1);
      continue;
    }
    atomic_fetch_add(&r->in, 1);
    if (rand_ppm(p) < atomic_load(&r->a_ppm)) {
      atomic_fetch_add(&r->dropped, 1);
      continue;
    }
    if (sendto(r->fd, buf, (size_t)len, 0, (struct sockaddr *)&r->target, sizeof r->target) ==
        len)
      atomic_fetch_add(&r->forwarded, 1);
  }
}

/* ---- TCP ---- */

static void dir_clear(direction_t *d) {
  while (d->head) {
    chunk_t *c = d->head;
    d->head = c->next;
    free(c);
  }
  d->tail = NULL;
  d->queued = 0;
}

static void conn_close(conn_t *c, bool rst) {
  for (int i = 0; i < 2; i++) {
    if (rst) {
      struct linger lg = {1, 0}; /* close sends RST */
      setsockopt(c->fd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(c->fd[i]);
    dir_clear(&c->dir[i]);
  }
  c->used = false;
}

static void tcp_accept(mf_loss_proxy_t *p, int relay_index) {
  relay_t *r = &p->relays[relay_index];
  for (;;) {
    int cfd = accept(r->fd, NULL, NULL);
    if (cfd < 0) return;
    conn_t *c = NULL;
    for (int i = 0; i < MAX_CONNS && !c; i++)
      if (!p->conns[i].used) c = &p->conns[i];
    int tfd = c ? socket(AF_INET, SOCK_STREAM, 0) : -1;
    /* Loopback connects complete (or are refused) at once: a blocking connect is fine. */
    if (tfd < 0 || connect(tfd, (struct sockaddr *)&r->target, sizeof r->target) != 0) {
      if (tfd >= 0) close(tfd);
      close(cfd); /* the target is down: the client sees the connection end, as it would */
      continue;
    }
    set_nonblock(cfd);
    set_nonblock(tfd);
    memset(c, 0, sizeof *c);
    c->used = true;
    c->relay = relay_index;
    c->fd[0] = cfd;
    c->fd[1] = tfd;
    c->dir[0].fd_in = cfd;
    c->dir[0].fd_out = tfd;
    c->dir[1].fd_in = tfd;
    c->dir[1].fd_out = cfd;
    atomic_fetch_add(&r->conns, 1);
  }
}

/* Reads one segment of d; false when the connection must close (error, or reset drawn). */
static bool dir_read(mf_loss_proxy_t *p, relay_t *r, direction_t *d) {
  chunk_t *c = malloc(sizeof *c);
  if (!c) return false;
  ssize_t n = read(d->fd_in, c->data, sizeof c->data);
  if (n <= 0) {
    free(c);
    if (n == 0) {
      d->eof = true;
      return true;
    }
    return errno == EAGAIN || errno == EINTR;
  }
  atomic_fetch_add(&r->in, 1);
  if (rand_ppm(p) < atomic_load(&r->b_ppm)) {
    free(c);
    atomic_fetch_add(&r->resets, 1);
    return false;
  }
  int k = 0;
  uint32_t stall = atomic_load(&r->a_ppm);
  while (k < MAX_LOSSES && rand_ppm(p) < stall) k++;
  uint64_t delay = (uint64_t)RTO_MS * ((1u << k) - 1u);
  if (k > 0) {
    atomic_fetch_add(&r->stalled, 1);
    atomic_fetch_add(&r->stall_ms, delay);
  }
  uint64_t release = now_ms() + delay;
  if (release < d->last_release_ms) release = d->last_release_ms; /* in order, as TCP */
  d->last_release_ms = release;
  c->next = NULL;
  c->release_ms = release;
  c->len = (size_t)n;
  c->off = 0;
  if (d->tail)
    d->tail->next = c;
  else
    d->head = c;
  d->tail = c;
  d->queued += (size_t)n;
  return true;
}

/* Writes every released segment it can; false on a write error. */
static bool dir_flush(relay_t *r, direction_t *d, uint64_t now) {
  while (d->head && d->head->release_ms <= now) {
    chunk_t *c = d->head;
    ssize_t n = send(d->fd_out, c->data + c->off, c->len - c->off, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    c->off += (size_t)n;
    d->queued -= (size_t)n;
    if (c->off < c->len) return true;
    d->head = c->next;
    if (!d->head) d->tail = NULL;
    free(c);
    atomic_fetch_add(&r->forwarded, 1);
  }
  if (!d->head && d->eof && !d->shut) {
    shutdown(d->fd_out, SHUT_WR);
    d->shut = true;
  }
  return true;
}

/* ---- the thread ---- */

#define MAX_FDS (1 + MF_LOSS_PROXY_MAX_RELAYS + 2 * MAX_CONNS)

static void proxy_main(void *arg) {
  mf_loss_proxy_t *p = arg;
  struct pollfd fds[MAX_FDS];
  /* What each pollfd is: relay index, or MF_LOSS_PROXY_MAX_RELAYS + conn * 2 + side. */
  int what[MAX_FDS];
  while (!atomic_load(&p->stop)) {
    uint64_t now = now_ms();
    int timeout = 50;
    int n = 0;
    fds[n] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
    what[n++] = -1;
    for (int i = 0; i < p->n_relays; i++) {
      fds[n] = (struct pollfd){.fd = p->relays[i].fd, .events = POLLIN};
      what[n++] = i;
    }
    for (int ci = 0; ci < MAX_CONNS; ci++) {
      conn_t *c = &p->conns[ci];
      if (!c->used) continue;
      for (int side = 0; side < 2; side++) {
        /* fd[side] reads dir[side] and writes dir[1 - side]. */
        direction_t *rd = &c->dir[side], *wr = &c->dir[1 - side];
        short ev = 0;
        if (!rd->eof && rd->queued < QUEUE_MAX) ev |= POLLIN;
        if (wr->head && wr->head->release_ms <= now) ev |= POLLOUT;
        if (wr->head && wr->head->release_ms > now &&
            (int)(wr->head->release_ms - now) < timeout)
          timeout = (int)(wr->head->release_ms - now);
        /* Nothing wanted: left out, or a hung-up socket would wake poll in a loop. */
        fds[n] = (struct pollfd){.fd = ev ? c->fd[side] : -1, .events = ev};
        what[n++] = MF_LOSS_PROXY_MAX_RELAYS + ci * 2 + side;
      }
    }
    if (poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR) break;
    now = now_ms();
    for (int k = 0; k < n; k++) {
      if (what[k] < 0) {
        char b[16];
        while (read(p->wake[0], b, sizeof b) > 0) {
        }
        continue;
      }
      if (what[k] < MF_LOSS_PROXY_MAX_RELAYS) {
        if (!(fds[k].revents & POLLIN)) continue;
        relay_t *r = &p->relays[what[k]];
        if (r->kind == RELAY_UDP)
          udp_readable(p, r);
        else
          tcp_accept(p, what[k]);
        continue;
      }
      int ci = (what[k] - MF_LOSS_PROXY_MAX_RELAYS) / 2, side = what[k] % 2;
      conn_t *c = &p->conns[ci];
      if (!c->used) continue; /* closed by its other side this round */
      relay_t *r = &p->relays[c->relay];
      bool ok = true;
      bool reset = false;
      direction_t *rd = &c->dir[side];
      if ((fds[k].revents & (POLLIN | POLLHUP | POLLERR)) && !rd->eof && rd->queued < QUEUE_MAX) {
        uint64_t before = atomic_load(&r->resets);
        ok = dir_read(p, r, &c->dir[side]);
        reset = !ok && atomic_load(&r->resets) != before;
      }
      if (ok) ok = dir_flush(r, &c->dir[1 - side], now);
      if (ok) ok = dir_flush(r, &c->dir[side], now);
      if (ok && c->dir[0].shut && c->dir[1].shut) ok = false; /* both ends finished */
      if (!ok) conn_close(c, reset);
    }
    /* Segments whose time came while nothing was readable. */
    for (int ci = 0; ci < MAX_CONNS; ci++) {
      conn_t *c = &p->conns[ci];
      if (!c->used) continue;
      relay_t *r = &p->relays[c->relay];
      if (!dir_flush(r, &c->dir[0], now) || !dir_flush(r, &c->dir[1], now))
        conn_close(c, false);
    }
  }
}

int mf_loss_proxy_start(mf_loss_proxy_t *p) {
  if (p->running) return -1;
  if (uv_thread_create(&p->thread, proxy_main, p) != 0) return -1;
  p->running = true;
  return 0;
}

void mf_loss_proxy_stats(const mf_loss_proxy_t *p, int relay, mf_loss_proxy_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (relay < 0 || relay >= p->n_relays) return;
  const relay_t *r = &p->relays[relay];
  out->in = atomic_load(&r->in);
  out->dropped = atomic_load(&r->dropped);
  out->forwarded = atomic_load(&r->forwarded);
  out->ignored = atomic_load(&r->ignored);
  out->stalled = atomic_load(&r->stalled);
  out->stall_ms = atomic_load(&r->stall_ms);
  out->resets = atomic_load(&r->resets);
  out->conns = atomic_load(&r->conns);
}

void mf_loss_proxy_print(const mf_loss_proxy_t *p, FILE *out) {
  for (int i = 0; i < p->n_relays; i++) {
    mf_loss_proxy_stats_t s;
    mf_loss_proxy_stats(p, i, &s);
    if (p->relays[i].kind == RELAY_UDP)
      fprintf(out, "# proxy %s (udp): %llu datagrams in, %llu dropped (%.1f%%), %llu relayed\n",
              p->relays[i].name, (unsigned long long)s.in, (unsigned long long)s.dropped,
              s.in ? 100.0 * (double)s.dropped / (double)s.in : 0.0,
              (unsigned long long)s.forwarded);
    else
      fprintf(out,
              "# proxy %s (tcp): %llu connections, %llu segments in, %llu delayed (%.1f%%, "
              "%.0f ms on average), %llu resets\n",
              p->relays[i].name, (unsigned long long)s.conns, (unsigned long long)s.in,
              (unsigned long long)s.stalled,
              s.in ? 100.0 * (double)s.stalled / (double)s.in : 0.0,
              s.stalled ? (double)s.stall_ms / (double)s.stalled : 0.0,
              (unsigned long long)s.resets);
  }
}

void mf_loss_proxy_stop(mf_loss_proxy_t *p) {
  if (!p) return;
  if (p->running) {
    atomic_store(&p->stop, true);
    ssize_t w = write(p->wake[1], "x", 1);
    (void)w;
    uv_thread_join(&p->thread);
  }
  for (int ci = 0; ci < MAX_CONNS; ci++)
    if (p->conns[ci].used) conn_close(&p->conns[ci], false);
  for (int i = 0; i < p->n_relays; i++) close(p->relays[i].fd);
  close(p->wake[0]);
  close(p->wake[1]);
  free(p);
}
