/* One SCTP association (RFC 8261: SCTP over DTLS) for the DataChannels of a WebRTC
 * transport, on usrsctp 0.9.5 with AF_CONN.
 *
 * The module does no I/O: the owner feeds it the SCTP packets DTLS decrypted
 * (mf_sctp_association_handle_packet) and sends what the send callback gives it as DTLS
 * application data. Both ends use port 5000 and connect at once (simultaneous open, as
 * browsers and mediasoup do) when the owner calls mf_sctp_association_connect after DTLS
 * is up.
 *
 * usrsctp is ONE process-wide stack with global state (its timers too), not one per
 * thread, so the module:
 *  - initializes it once per process (pthread_once, usrsctp_init_nothreads: no usrsctp
 *    threads; the timers are driven by us);
 *  - serializes every call into usrsctp with ONE process mutex (the DataChannel path is
 *    control-plane rate, so a lock there is acceptable; the RTP hot path never takes it);
 *  - never runs user callbacks while usrsctp holds the mutex: usrsctp's output and
 *    receive callbacks (which run inside usrsctp calls, on whichever thread made the
 *    call, e.g. a timer tick on another worker) only append to per-association queues
 *    (outgoing packets, inbound messages and events), found through a process table by
 *    the id registered as the AF_CONN address, never by a pointer usrsctp could keep
 *    after the association is gone;
 *  - drains those queues on the OWNING worker thread: right after each API call made
 *    by the owner, and through a uv_async wake-up when another thread queued something
 *    (a timer retransmission). So every callback below runs on the owner thread;
 *  - drives usrsctp's global timers from a 10 ms uv timer per association: each tick
 *    advances the global clock by the real time elapsed since the last tick of ANY
 *    association (one shared timestamp under the mutex), so N workers ticking never
 *    make time run N times faster.
 *
 * Thread affinity: an association belongs to the worker thread of the loop given at
 * create; call every function on it from that thread. mf_sctp_handle_timers may be
 * called from any thread.
 * Ownership: the creator frees the association (mf_sctp_association_free); buffers given
 * to callbacks are valid only during the call. */
#ifndef MF_SCTP_ASSOCIATION_H
#define MF_SCTP_ASSOCIATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"

#define MF_SCTP_PORT 5000
/* Path MTU of the SCTP packets: one packet is one DTLS record, which with its ~40 bytes
 * of record overhead must stay within the DTLS module's 1200-byte datagrams. */
#define MF_SCTP_MTU 1130
#define MF_SCTP_DEFAULT_STREAMS 1024
#define MF_SCTP_MAX_STREAMS 65535
#define MF_SCTP_DEFAULT_MAX_MESSAGE_SIZE 262144u
#define MF_SCTP_DEFAULT_SEND_BUFFER 262144u
#define MF_SCTP_TIMER_MS 10

/* WebRTC payload protocol identifiers (RFC 8831 section 8). */
#define MF_SCTP_PPID_DCEP 50
#define MF_SCTP_PPID_STRING 51
#define MF_SCTP_PPID_BINARY 53
#define MF_SCTP_PPID_STRING_EMPTY 56
#define MF_SCTP_PPID_BINARY_EMPTY 57

typedef enum {
  MF_SCTP_STATE_NEW = 0,
  MF_SCTP_STATE_CONNECTING,
  MF_SCTP_STATE_CONNECTED,
  MF_SCTP_STATE_FAILED,
  MF_SCTP_STATE_CLOSED,
} mf_sctp_state_t;

/* "new", "connecting", "connected", "failed", "closed" (mediasoup's sctpState). */
const char *mf_sctp_state_name(mf_sctp_state_t s);

typedef struct {
  uint16_t os, mis;           /* outgoing / max incoming streams; 0 = 1024 */
  uint32_t max_message_size;  /* largest message sent or reassembled; 0 = 262144 */
  uint32_t send_buffer_size;  /* usrsctp's SO_SNDBUF; 0 = 262144 */
} mf_sctp_options_t;

/* Reliability of one message (a DataChannel's parameters). At most one of the limits. */
typedef struct {
  bool ordered;
  int32_t max_retransmits;      /* < 0: not set */
  int32_t max_packet_life_time; /* ms; < 0: not set */
} mf_sctp_send_params_t;

typedef struct mf_sctp_association mf_sctp_association_t;

/* Callbacks, on the owner thread, never while the usrsctp mutex is held: they may call
 * any function of this module, also on the same association (mf_sctp_association_free
 * is deferred until the callback returns).
 *  send:         one SCTP packet for the peer (DTLS application data). Required.
 *  state:        every state change, once.
 *  message:      one complete message of a stream (reassembled if usrsctp delivered it
 *                in parts). ppid as on the wire (host order).
 *  stream_reset: the peer reset its outgoing stream stream_id (it closed that channel);
 *                the module resets our outgoing side of it too. */
typedef struct {
  void (*send)(void *ud, const uint8_t *data, size_t len);
  void (*state)(void *ud, mf_sctp_state_t state);
  void (*message)(void *ud, uint16_t stream_id, uint32_t ppid, const uint8_t *data, size_t len);
  void (*stream_reset)(void *ud, uint16_t stream_id);
} mf_sctp_callbacks_t;

/* A new association in state NEW (creates the usrsctp socket; nothing is sent).
 * loop: the owner's loop for the timer and the wake-up; NULL for tests, which then
 * drive timers with mf_sctp_handle_timers and drain with mf_sctp_association_process.
 * options NULL = defaults. MF_ERR_IO if usrsctp refuses the socket or an option. */
mf_err_t mf_sctp_association_create(uv_loop_t *loop, const mf_sctp_options_t *options,
                                    const mf_sctp_callbacks_t *cb, void *ud,
                                    mf_sctp_association_t **out);

/* Starts the association (INIT): NEW -> CONNECTING. Call once DTLS is connected.
 * MF_ERR_STATE if not NEW. */
mf_err_t mf_sctp_association_connect(mf_sctp_association_t *a);

/* One SCTP packet from the peer (decrypted DTLS application data). Ignored unless
 * CONNECTING or CONNECTED (usrsctp checks the packet itself: CRC32c, verification tag). */
void mf_sctp_association_handle_packet(mf_sctp_association_t *a, const uint8_t *data,
                                       size_t len);

/* Sends one message on stream_id with ppid. MF_ERR_STATE unless CONNECTED,
 * MF_ERR_INVALID_ARG for stream_id >= the negotiated outgoing streams or len 0,
 * MF_ERR_LIMIT above max_message_size, MF_ERR_FULL when the send buffer is full (the
 * message is dropped, as mediasoup does), MF_ERR_IO for another usrsctp error. */
mf_err_t mf_sctp_association_send(mf_sctp_association_t *a, uint16_t stream_id, uint32_t ppid,
                                  const mf_sctp_send_params_t *params, const uint8_t *data,
                                  size_t len);

/* Resets our outgoing stream stream_id (closing that DataChannel, RFC 8831 6.7).
 * MF_ERR_STATE unless CONNECTED. */
mf_err_t mf_sctp_association_reset_stream(mf_sctp_association_t *a, uint16_t stream_id);

/* Delivers what usrsctp queued (packets to send, messages, events) through the
 * callbacks. The module calls it itself after each of its calls and on wake-ups; tests
 * without a loop call it after mf_sctp_handle_timers. */
void mf_sctp_association_process(mf_sctp_association_t *a);

mf_sctp_state_t mf_sctp_association_state(const mf_sctp_association_t *a);
/* The options in effect (defaults filled in). */
void mf_sctp_association_options(const mf_sctp_association_t *a, mf_sctp_options_t *out);
/* Negotiated stream counts once CONNECTED (0 before). */
uint16_t mf_sctp_association_out_streams(const mf_sctp_association_t *a);

typedef struct {
  uint64_t messages_sent, bytes_sent, messages_received, bytes_received;
  uint64_t send_dropped;     /* send buffer full or usrsctp error */
  uint64_t receive_dropped;  /* over max_message_size */
} mf_sctp_stats_t;
void mf_sctp_association_get_stats(const mf_sctp_association_t *a, mf_sctp_stats_t *out);

/* Aborts the association (no graceful SHUTDOWN: the DTLS transport usually goes with
 * it), frees it; no callback runs afterwards. NULL is ignored. Inside a callback of the
 * same association the free is deferred until the callback returns. */
void mf_sctp_association_free(mf_sctp_association_t *a);

/* Advances usrsctp's global timers by elapsed_ms (tests; the worker timers use the real
 * clock). Any thread. */
void mf_sctp_handle_timers(uint32_t elapsed_ms);

#endif
