/* A worker's WebRTC server: the ONE UDP socket that all WebRtcTransports of a worker share
 * (like mediasoup's WebRtcServer), so a node needs one port per core.
 *
 * It demultiplexes each datagram by its first byte (RFC 7983): STUN goes to the transport
 * whose local ICE ufrag is in USERNAME; DTLS and SRTP/SRTCP go to the transport that owns
 * the source 5-tuple (tuples are learnt from valid ICE checks only); anything else, or from
 * an unknown source, is dropped and counted. Once a second it drives every transport's
 * consent-freshness check.
 *
 * Thread affinity: the owning worker thread, for every call. The server owns its socket,
 * its DTLS context and the registrations; transports are created and closed by their
 * owners through webrtc_transport.h. */
#ifndef MF_RTC_SERVER_H
#define MF_RTC_SERVER_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "common/bufpool.h"
#include "common/err.h"
#include "node/dtls.h"
#include "node/udp_socket.h"

typedef struct mf_rtc_server mf_rtc_server_t;
typedef struct mf_webrtc_transport mf_webrtc_transport_t;

#define MF_RTC_ANNOUNCED_IP_MAX 64
#define MF_RTC_TICK_MS 1000

typedef struct {
  const char *listen_ip;   /* e.g. "0.0.0.0" */
  uint16_t port;           /* 0 picks a free port (tests) */
  const char *announced_ip; /* put in ICE candidates */
  mf_bufpool_t *pool;      /* packet buffers; outlives the server */
  const mf_dtls_cert_t *cert; /* the node's certificate; outlives the server */
  /* DTLS handshake timer options (0 = module defaults); tests shorten them. */
  uint32_t dtls_initial_timeout_ms, dtls_max_timeout_ms;
} mf_rtc_server_options_t;

typedef struct {
  uint64_t stun_in, dtls_in, rtp_in, rtcp_in;
  uint64_t dropped_unknown_type;   /* first byte in no RFC 7983 range */
  uint64_t dropped_unknown_ufrag;  /* STUN for a ufrag no transport has */
  uint64_t dropped_unknown_tuple;  /* DTLS/RTP from a source no valid ICE check came from */
  uint64_t dropped_malformed;      /* STUN we could not read */
  uint32_t transports;
} mf_rtc_server_stats_t;

mf_err_t mf_rtc_server_create(uv_loop_t *loop, const mf_rtc_server_options_t *options,
                              mf_rtc_server_t **out);

/* Closes the socket and frees the server once libuv has closed its handles (on_closed,
 * optional, runs then). Transports must be closed by their owners before. */
void mf_rtc_server_close(mf_rtc_server_t *server, void (*on_closed)(void *ud), void *ud);

uint16_t mf_rtc_server_port(const mf_rtc_server_t *server);
const char *mf_rtc_server_announced_ip(const mf_rtc_server_t *server);
/* The address the server's socket is bound to (PlainTransports bind theirs there too). */
const char *mf_rtc_server_listen_ip(const mf_rtc_server_t *server);
void mf_rtc_server_get_stats(const mf_rtc_server_t *server, mf_rtc_server_stats_t *out);

/* Runs the consent/timeout checks of every transport as of now_ms (the 1 s timer calls it
 * with the loop's clock; tests call it with a made-up clock). */
void mf_rtc_server_tick(mf_rtc_server_t *server, uint64_t now_ms);

/* --- for webrtc_transport.c only ------------------------------------------------------ */
uv_loop_t *mf_rtc_server_loop(mf_rtc_server_t *server);
mf_bufpool_t *mf_rtc_server_pool(mf_rtc_server_t *server);
mf_udp_socket_t *mf_rtc_server_socket(mf_rtc_server_t *server);
mf_dtls_context_t *mf_rtc_server_dtls_context(mf_rtc_server_t *server);
const mf_dtls_cert_t *mf_rtc_server_cert(const mf_rtc_server_t *server);
mf_err_t mf_rtc_server_add_ufrag(mf_rtc_server_t *server, const char *ufrag,
                                 mf_webrtc_transport_t *transport);
void mf_rtc_server_remove_ufrag(mf_rtc_server_t *server, const char *ufrag);
mf_err_t mf_rtc_server_add_tuple(mf_rtc_server_t *server, const struct sockaddr *addr,
                                 mf_webrtc_transport_t *transport);
void mf_rtc_server_remove_tuple(mf_rtc_server_t *server, const struct sockaddr *addr,
                                mf_webrtc_transport_t *transport);

#endif
