/* A worker's UDP socket: batched receive (recvmmsg) into pool buffers and batched send
 * (sendmmsg), driven by the worker's libuv loop through uv_poll on the raw fd.
 *
 * Thread affinity: the worker thread that opened it, for every call and callback.
 * Ownership: received buffers are handed to the receive callback, which then owns one
 * reference each and must mf_buf_unref them. mf_udp_socket_send takes its own reference
 * until the datagram has gone out; the caller keeps (and eventually drops) its own.
 * Queued datagrams go out in one sendmmsg at the latest at the end of the current loop
 * iteration (a uv_check handle), or earlier when the queue fills. */
#ifndef MF_UDP_SOCKET_H
#define MF_UDP_SOCKET_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "common/bufpool.h"
#include "common/err.h"

#define MF_UDP_RECV_BATCH 32   /* datagrams per recvmmsg */
#define MF_UDP_RECV_ROUNDS 8   /* recvmmsg calls per readable event, so one busy socket
                                  cannot starve timers and mailboxes */
#define MF_UDP_SEND_QUEUE 256  /* datagrams per sendmmsg */
#define MF_UDP_SOCKET_BUFFER (4 * 1024 * 1024) /* SO_RCVBUF/SO_SNDBUF asked of the kernel */

typedef struct mf_udp_socket mf_udp_socket_t;

typedef struct {
  mf_buf_t *buf; /* data in buf->data[0..buf->len) */
  struct sockaddr_storage from;
} mf_udp_datagram_t;

/* dgrams[0..count) are valid during the call; each buf is owned by the callee. */
typedef void (*mf_udp_recv_fn)(void *ud, mf_udp_datagram_t *dgrams, unsigned count);

typedef struct {
  uint64_t packets_in, bytes_in;
  uint64_t packets_out, bytes_out;
  uint64_t recv_calls, send_calls;
  uint64_t dropped_no_buffer; /* pool exhausted: read and discarded */
  uint64_t dropped_truncated; /* larger than a pool buffer */
  uint64_t dropped_send;      /* kernel refused (buffer full, unreachable, ...) */
} mf_udp_stats_t;

/* Binds ip:port (IPv4 or IPv6 literal; port 0 picks a free port). Buffers come from pool,
 * which must outlive the socket. */
mf_err_t mf_udp_socket_open(uv_loop_t *loop, mf_bufpool_t *pool, const char *ip, uint16_t port,
                            mf_udp_recv_fn on_recv, void *ud, mf_udp_socket_t **out);

uint16_t mf_udp_socket_port(const mf_udp_socket_t *sock);

/* Queues buf->data[0..buf->len) for `to`. MF_ERR_INVALID_ARG for an unsupported address
 * family or an empty buffer. Never blocks. */
mf_err_t mf_udp_socket_send(mf_udp_socket_t *sock, mf_buf_t *buf, const struct sockaddr *to);

/* Copies data into a pool buffer and queues it (for STUN/DTLS/RTCP built on the stack).
 * MF_ERR_FULL if the pool is exhausted, MF_ERR_LIMIT if len exceeds a buffer. */
mf_err_t mf_udp_socket_send_copy(mf_udp_socket_t *sock, const uint8_t *data, size_t len,
                                 const struct sockaddr *to);

/* Sends everything queued now. */
void mf_udp_socket_flush(mf_udp_socket_t *sock);

void mf_udp_socket_get_stats(const mf_udp_socket_t *sock, mf_udp_stats_t *out);

/* Flushes, stops receiving, and frees the socket once libuv has closed its handles
 * (on_closed, optional, runs then). */
void mf_udp_socket_close(mf_udp_socket_t *sock, void (*on_closed)(void *ud), void *ud);

/* Length of a sockaddr of this family (0 if unsupported). */
socklen_t mf_udp_sockaddr_len(const struct sockaddr *addr);

#endif
