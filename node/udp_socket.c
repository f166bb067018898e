#define MF_LOG_MODULE "udp"
#include "udp_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

typedef struct {
  mf_buf_t *buf;
  struct sockaddr_storage to;
} mf_udp_pending_t;

struct mf_udp_socket {
  uv_poll_t poll;
  uv_check_t check;
  int fd;
  uint16_t port;
  int open_handles;
  mf_bufpool_t *pool;
  mf_udp_recv_fn on_recv;
  void *ud;
  void (*on_closed)(void *ud);
  void *closed_ud;
  mf_udp_stats_t stats;
  /* receive slots keep their buffer between calls; a slot is refilled once handed out */
  mf_buf_t *rx_bufs[MF_UDP_RECV_BATCH];
  struct mmsghdr rx_msgs[MF_UDP_RECV_BATCH];
  struct iovec rx_iov[MF_UDP_RECV_BATCH];
  mf_udp_datagram_t rx_out[MF_UDP_RECV_BATCH];
  uint8_t rx_scratch[2048]; /* target for datagrams read while the pool is exhausted */
  mf_udp_pending_t tx[MF_UDP_SEND_QUEUE];
  struct mmsghdr tx_msgs[MF_UDP_SEND_QUEUE];
  struct iovec tx_iov[MF_UDP_SEND_QUEUE];
  unsigned tx_count;
};

socklen_t mf_udp_sockaddr_len(const struct sockaddr *addr) {
  if (addr->sa_family == AF_INET) return sizeof(struct sockaddr_in);
  if (addr->sa_family == AF_INET6) return sizeof(struct sockaddr_in6);
  return 0;
}

static void mf_udp_drain_when_exhausted(mf_udp_socket_t *s) {
  /* Level-triggered poll would spin if we left datagrams queued: read and count them. */
  for (int i = 0; i < MF_UDP_RECV_BATCH; i++) {
    ssize_t n = recv(s->fd, s->rx_scratch, sizeof s->rx_scratch, MSG_DONTWAIT);
    if (n < 0) break;
    s->stats.dropped_no_buffer++;
  }
}

static void mf_udp_on_readable(mf_udp_socket_t *s) {
  for (int round = 0; round < MF_UDP_RECV_ROUNDS; round++) {
    unsigned slots = 0;
    for (; slots < MF_UDP_RECV_BATCH; slots++) {
      if (!s->rx_bufs[slots]) {
        s->rx_bufs[slots] = mf_bufpool_get(s->pool);
        if (!s->rx_bufs[slots]) break;
      }
      s->rx_iov[slots].iov_base = s->rx_bufs[slots]->data;
      s->rx_iov[slots].iov_len = s->rx_bufs[slots]->cap;
      struct msghdr *h = &s->rx_msgs[slots].msg_hdr;
      memset(h, 0, sizeof *h);
      h->msg_iov = &s->rx_iov[slots];
      h->msg_iovlen = 1;
      h->msg_name = &s->rx_out[slots].from;
      h->msg_namelen = sizeof s->rx_out[slots].from;
    }
    if (slots == 0) {
      mf_udp_drain_when_exhausted(s);
      return;
    }
    int n = recvmmsg(s->fd, s->rx_msgs, slots, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        MF_LOG_WARN("recvmmsg on port %u: %s", s->port, strerror(errno));
      return;
    }
    s->stats.recv_calls++;
    unsigned out = 0;
    for (int i = 0; i < n; i++) {
      if (s->rx_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        s->stats.dropped_truncated++;
        continue; /* the slot keeps its buffer */
      }
      mf_buf_t *b = s->rx_bufs[i];
      b->len = s->rx_msgs[i].msg_len;
      s->rx_bufs[i] = NULL;
      s->stats.packets_in++;
      s->stats.bytes_in += b->len;
      if (out != (unsigned)i) s->rx_out[out].from = s->rx_out[i].from;
      s->rx_out[out].buf = b;
      out++;
    }
    if (out > 0) s->on_recv(s->ud, s->rx_out, out);
    if ((unsigned)n < slots) return; /* socket drained */
  }
}

static void mf_udp_on_poll(uv_poll_t *handle, int status, int events) {
  mf_udp_socket_t *s = handle->data;
  if (status < 0) {
    MF_LOG_WARN("poll error on port %u: %s", s->port, uv_strerror(status));
    return;
  }
  if (events & UV_READABLE) mf_udp_on_readable(s);
}

static void mf_udp_on_check(uv_check_t *handle) {
  mf_udp_socket_t *s = handle->data;
  mf_udp_socket_flush(s);
}

void mf_udp_socket_flush(mf_udp_socket_t *s) {
  unsigned n = s->tx_count;
  if (n == 0) return;
  for (unsigned i = 0; i < n; i++) {
    s->tx_iov[i].iov_base = s->tx[i].buf->data;
    s->tx_iov[i].iov_len = s->tx[i].buf->len;
    struct msghdr *h = &s->tx_msgs[i].msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_iov = &s->tx_iov[i];
    h->msg_iovlen = 1;
    h->msg_name = &s->tx[i].to;
    h->msg_namelen = mf_udp_sockaddr_len((struct sockaddr *)&s->tx[i].to);
  }
  unsigned i = 0;
  while (i < n) {
    int r = sendmmsg(s->fd, s->tx_msgs + i, n - i, 0);
    if (r > 0) {
      for (int k = 0; k < r; k++) s->stats.bytes_out += s->tx_msgs[i + (unsigned)k].msg_len;
      s->stats.packets_out += (unsigned)r;
      s->stats.send_calls++;
      i += (unsigned)r;
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      /* UDP semantics: a full kernel queue drops; the NACK/RTX loop repairs media. */
      s->stats.dropped_send += n - i;
      MF_LOG_DEBUG("port %u: send queue full, dropped %u datagrams", s->port, n - i);
      break;
    } else {
      /* The first message failed (e.g. unreachable destination): skip it, keep the rest. */
      s->stats.dropped_send++;
      MF_LOG_DEBUG("port %u: send failed: %s", s->port, strerror(errno));
      i++;
    }
  }
  for (unsigned k = 0; k < n; k++) mf_buf_unref(s->tx[k].buf);
  s->tx_count = 0;
  uv_check_stop(&s->check);
}

mf_err_t mf_udp_socket_send(mf_udp_socket_t *s, mf_buf_t *buf, const struct sockaddr *to) {
  socklen_t len = mf_udp_sockaddr_len(to);
  if (len == 0 || buf->len == 0) return MF_ERR_INVALID_ARG;
  if (s->tx_count == MF_UDP_SEND_QUEUE) mf_udp_socket_flush(s);
  mf_udp_pending_t *p = &s->tx[s->tx_count++];
  mf_buf_ref(buf);
  p->buf = buf;
  memcpy(&p->to, to, len);
  if (s->tx_count == 1) uv_check_start(&s->check, mf_udp_on_check);
  return MF_OK;
}

mf_err_t mf_udp_socket_send_copy(mf_udp_socket_t *s, const uint8_t *data, size_t len,
                                 const struct sockaddr *to) {
  mf_buf_t *b = mf_bufpool_get(s->pool);
  if (!b) return MF_ERR_FULL;
  if (len > b->cap) {
    mf_buf_unref(b);
    return MF_ERR_LIMIT;
  }
  memcpy(b->data, data, len);
  b->len = (uint32_t)len;
  mf_err_t err = mf_udp_socket_send(s, b, to);
  mf_buf_unref(b);
  return err;
}

mf_err_t mf_udp_socket_open(uv_loop_t *loop, mf_bufpool_t *pool, const char *ip, uint16_t port,
                            mf_udp_recv_fn on_recv, void *ud, mf_udp_socket_t **out) {
  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof addr);
  if (uv_ip4_addr(ip, port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&addr) != 0) {
    MF_LOG_ERROR("'%s' is not an IPv4 or IPv6 address", ip);
    return MF_ERR_INVALID_ARG;
  }
  int fd = socket(addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    MF_LOG_ERROR("socket: %s", strerror(errno));
    return MF_ERR_IO;
  }
  int size = MF_UDP_SOCKET_BUFFER;
  /* Best effort: the kernel caps these at net.core.{r,w}mem_max. */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  if (bind(fd, (struct sockaddr *)&addr, mf_udp_sockaddr_len((struct sockaddr *)&addr)) != 0) {
    MF_LOG_ERROR("bind %s:%u: %s", ip, port, strerror(errno));
    close(fd);
    return errno == EADDRINUSE ? MF_ERR_EXISTS : MF_ERR_IO;
  }
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &blen);

  mf_udp_socket_t *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    return MF_ERR_NO_MEMORY;
  }
  s->fd = fd;
  s->pool = pool;
  s->on_recv = on_recv;
  s->ud = ud;
  s->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                             : ((struct sockaddr_in6 *)&bound)->sin6_port);
  if (uv_poll_init_socket(loop, &s->poll, fd) != 0) {
    close(fd);
    free(s);
    return MF_ERR_IO;
  }
  uv_check_init(loop, &s->check);
  s->poll.data = s;
  s->check.data = s;
  s->open_handles = 2;
  uv_poll_start(&s->poll, UV_READABLE, mf_udp_on_poll);
  *out = s;
  return MF_OK;
}

uint16_t mf_udp_socket_port(const mf_udp_socket_t *s) { return s->port; }

void mf_udp_socket_get_stats(const mf_udp_socket_t *s, mf_udp_stats_t *out) { *out = s->stats; }

static void mf_udp_on_handle_closed(uv_handle_t *handle) {
  mf_udp_socket_t *s = handle->data;
  if (--s->open_handles > 0) return;
  close(s->fd);
  for (int i = 0; i < MF_UDP_RECV_BATCH; i++) {
    if (s->rx_bufs[i]) mf_buf_unref(s->rx_bufs[i]);
  }
  void (*cb)(void *) = s->on_closed;
  void *ud = s->closed_ud;
  free(s);
  if (cb) cb(ud);
}

void mf_udp_socket_close(mf_udp_socket_t *s, void (*on_closed)(void *ud), void *ud) {
  mf_udp_socket_flush(s);
  s->on_closed = on_closed;
  s->closed_ud = ud;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, mf_udp_on_handle_closed);
  uv_close((uv_handle_t *)&s->check, mf_udp_on_handle_closed);
}
