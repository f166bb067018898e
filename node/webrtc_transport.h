/* WebRtcTransport (mediasoup's model) on a worker's shared RTC server: ICE-lite, DTLS 1.2
 * with use_srtp, SRTP/SRTCP.
 *
 * Life cycle: create -> the application sends iceParameters/iceCandidates/dtlsParameters
 * to the client -> the client runs ICE checks against the worker's port -> connect() gives
 * the client's DTLS role and fingerprint -> DTLS runs once ICE is connected and connect()
 * was called -> SRTP keys come from the handshake -> state connected.
 * States: new, connecting, connected, disconnected (no ICE consent for 30 s), failed (DTLS
 * failed), closed (mf_webrtc_transport_close, DTLS close_notify, or 30 s disconnected).
 *
 * Thread affinity: the worker thread owning the RTC server; every call and callback.
 * Ownership: the creator owns the transport and must call mf_webrtc_transport_close once,
 * also after the transport reported CLOSED by itself; no callback runs after that call.
 * Buffers passed to the rtp/rtcp callbacks are borrowed for the call (mf_buf_ref to keep
 * one). mf_webrtc_transport_send_rtp/rtcp encrypt the caller's buffer in place. */
#ifndef MF_WEBRTC_TRANSPORT_H
#define MF_WEBRTC_TRANSPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/bufpool.h"
#include "common/err.h"
#include "common/id.h"
#include "node/dtls.h"
#include "node/ice.h"
#include "node/rtc_server.h"
#include "node/sctp_association.h"
#include "node/srtp.h"

/* A transport that stays disconnected this long closes itself. */
#define MF_WEBRTC_DISCONNECTED_CLOSE_MS 30000u

typedef enum {
  MF_TRANSPORT_STATE_NEW = 0,
  MF_TRANSPORT_STATE_CONNECTING,
  MF_TRANSPORT_STATE_CONNECTED,
  MF_TRANSPORT_STATE_DISCONNECTED,
  MF_TRANSPORT_STATE_FAILED,
  MF_TRANSPORT_STATE_CLOSED,
} mf_transport_state_t;

const char *mf_transport_state_name(mf_transport_state_t state);

typedef struct {
  /* Overall state; reason is a short text for failed/closed (else NULL). */
  void (*state)(void *ud, mf_webrtc_transport_t *t, mf_transport_state_t state,
                const char *reason);
  void (*ice_state)(void *ud, mf_webrtc_transport_t *t, mf_ice_state_t state);
  void (*dtls_state)(void *ud, mf_webrtc_transport_t *t, mf_dtls_state_t state);
  /* Decrypted RTP / compound RTCP from the peer. */
  void (*rtp)(void *ud, mf_webrtc_transport_t *t, mf_buf_t *buf);
  void (*rtcp)(void *ud, mf_webrtc_transport_t *t, mf_buf_t *buf);
} mf_webrtc_transport_callbacks_t;

typedef struct {
  mf_transport_state_t state;
  mf_ice_state_t ice_state;
  mf_dtls_state_t dtls_state;
  bool has_selected_tuple;
  struct sockaddr_storage selected_tuple;
  mf_srtp_profile_t srtp_profile; /* 0 until connected */
  uint64_t bytes_received, bytes_sent; /* every datagram: STUN, DTLS, SRTP */
  uint64_t rtp_packets_received, rtp_bytes_received;
  uint64_t rtcp_packets_received;
  uint64_t rtp_packets_sent, rtp_bytes_sent, rtcp_packets_sent;
  uint64_t stun_requests, stun_rejected;
  uint64_t srtp_unprotect_failures; /* auth/replay failures: dropped */
  uint64_t dropped_not_connected;   /* SRTP before keys existed */
} mf_webrtc_transport_stats_t;

mf_err_t mf_webrtc_transport_create(mf_rtc_server_t *server,
                                    const mf_webrtc_transport_callbacks_t *callbacks, void *ud,
                                    mf_webrtc_transport_t **out);

const char *mf_webrtc_transport_id(const mf_webrtc_transport_t *t);
const char *mf_webrtc_transport_ice_ufrag(const mf_webrtc_transport_t *t);
const char *mf_webrtc_transport_ice_pwd(const mf_webrtc_transport_t *t);
mf_transport_state_t mf_webrtc_transport_state(const mf_webrtc_transport_t *t);

/* remote_role is the CLIENT's DTLS role (mediasoup's connect({dtlsParameters})).
 * MF_ERR_STATE if connect was already called or the transport is closed/failed;
 * MF_ERR_INVALID_ARG for an unsupported fingerprint algorithm or value. */
mf_err_t mf_webrtc_transport_connect(mf_webrtc_transport_t *t, mf_dtls_role_t remote_role,
                                     const char *fp_algorithm, const char *fp_value);

/* connect() from mediasoup's dtlsParameters JSON ({role?, fingerprints:[{algorithm,
 * value}]}); on MF_ERR_INVALID_ARG/MF_ERR_STATE, error (if not NULL) says why. */
mf_err_t mf_webrtc_transport_connect_json(mf_webrtc_transport_t *t, const json_t *dtls_parameters,
                                          char *error, size_t error_size);

/* {id, iceRole, iceParameters, iceCandidates, dtlsParameters, iceState, dtlsState} in
 * mediasoup's shapes. New reference. */
json_t *mf_webrtc_transport_parameters_json(const mf_webrtc_transport_t *t);

/* mediasoup's getStats() array for a WebRtcTransport (one object). New reference. */
json_t *mf_webrtc_transport_stats_json(const mf_webrtc_transport_t *t);

void mf_webrtc_transport_get_stats(const mf_webrtc_transport_t *t,
                                   mf_webrtc_transport_stats_t *out);

/* Encrypts buf in place (needs MF_SRTP_MAX_TRAILER spare bytes) and queues it to the
 * selected tuple. MF_ERR_STATE while not connected. buf must not be shared. */
mf_err_t mf_webrtc_transport_send_rtp(mf_webrtc_transport_t *t, mf_buf_t *buf);
mf_err_t mf_webrtc_transport_send_rtcp(mf_webrtc_transport_t *t, mf_buf_t *buf);

/* Sends DTLS close_notify if connected, unregisters, frees (handles close asynchronously;
 * the pointer is invalid on return). */
void mf_webrtc_transport_close(mf_webrtc_transport_t *t);

/* ---- PipeTransport (node <-> node; mediasoup's PipeTransport) ------------------------
 * The same object without ICE and DTLS: RTP/RTCP to and from ONE remote address (a worker
 * of another node), plain or SRTP. Each side draws the key it protects with at create;
 * the control plane carries it to the peer, whose connect_pipe takes it (so neither side
 * needs a handshake, and a key never leaves the two nodes' RPC). Connected as soon as
 * connect_pipe succeeds; the RTC server routes datagrams from that address to it (one
 * transport per remote address per worker). No consent checks: gossip finds dead nodes.
 * Closed only by its owner (mf_webrtc_transport_close). */
#define MF_PIPE_SRTP_PROFILE MF_SRTP_PROFILE_AEAD_AES_128_GCM

typedef struct {
  bool enabled; /* false: plain RTP (the key fields are unused) */
  mf_srtp_profile_t profile;
  uint8_t key[MF_SRTP_MAX_MASTER_LEN]; /* key||salt */
  size_t key_len;
} mf_pipe_srtp_t;

mf_err_t mf_webrtc_transport_create_pipe(mf_rtc_server_t *server, bool srtp,
                                         const mf_webrtc_transport_callbacks_t *callbacks,
                                         void *ud, mf_webrtc_transport_t **out);
bool mf_webrtc_transport_is_pipe(const mf_webrtc_transport_t *t);
/* The key this side sends with (give it to the peer's connect_pipe). */
void mf_webrtc_transport_pipe_local_srtp(const mf_webrtc_transport_t *t, mf_pipe_srtp_t *out);
/* A fresh random key for MF_PIPE_SRTP_PROFILE (MF_ERR_CRYPTO if the RNG fails). */
mf_err_t mf_pipe_srtp_generate(mf_pipe_srtp_t *out);
/* remote: the peer worker's address; remote_srtp: the key the peer sends with (NULL or
 * !enabled: plain, which must match this side); local_srtp: NULL keeps the key drawn at
 * create, else the key this side sends with as the peer chose it (the node that asks for
 * a pipe chooses both, so a source that re-creates its transport still matches).
 * MF_ERR_STATE when already connected; MF_ERR_INVALID_ARG / MF_ERR_EXISTS (another
 * transport of this worker owns that address) with `error` saying why. */
mf_err_t mf_webrtc_transport_connect_pipe(mf_webrtc_transport_t *t, const struct sockaddr *remote,
                                          const mf_pipe_srtp_t *remote_srtp,
                                          const mf_pipe_srtp_t *local_srtp, char *error,
                                          size_t error_size);

/* ---- external I/O (PlainTransport, node/plain_transport.c) ---------------------------
 * A plain pipe (create_pipe with srtp false) whose datagrams go over its owner's own
 * socket instead of the RTC server's: send_rtp/rtcp hand the clear packet to io->send
 * (which may protect it in place, growing buf->len, and queues it); the owner feeds
 * received clear RTP/RTCP to mf_webrtc_transport_handle_srtp once it called
 * mf_webrtc_transport_ext_connected. io->close runs once, from mf_webrtc_transport_close.
 * Such a transport is not a pipe (mf_webrtc_transport_is_pipe is false) and never sits in
 * the server's demux tables. */
typedef struct {
  mf_err_t (*send)(void *ud, mf_buf_t *buf, bool rtcp);
  void (*close)(void *ud);
} mf_webrtc_transport_io_t;
void mf_webrtc_transport_set_io(mf_webrtc_transport_t *t, const mf_webrtc_transport_io_t *io,
                                void *ud);
/* ud of set_io, or NULL for a transport without external I/O. */
void *mf_webrtc_transport_io_ud(const mf_webrtc_transport_t *t);
/* remote known (connect, or comedia's first packet): state connected. */
void mf_webrtc_transport_ext_connected(mf_webrtc_transport_t *t, const struct sockaddr *remote);

/* ---- DataChannels (issue 11): SCTP over DTLS, see node/sctp_association.h ----
 * enable_sctp (once, before DTLS connects) gives the transport an SCTP association: DTLS
 * application data feeds it, its packets go out as DTLS application data, and it
 * connects (port 5000, simultaneous open) as soon as DTLS is connected. Its callbacks
 * get the transport's ud and run on the worker thread, never after close. The transport
 * frees the association in mf_webrtc_transport_close. parameters_json then also carries
 * sctpParameters {port, OS, MIS, maxMessageSize} and sctpState. */
typedef struct {
  void (*state)(void *ud, mf_webrtc_transport_t *t, mf_sctp_state_t state);
  void (*message)(void *ud, mf_webrtc_transport_t *t, uint16_t stream_id, uint32_t ppid,
                  const uint8_t *data, size_t len);
  void (*stream_reset)(void *ud, mf_webrtc_transport_t *t, uint16_t stream_id);
} mf_webrtc_transport_sctp_callbacks_t;
/* MF_ERR_STATE if already enabled, for a pipe/plain transport or once DTLS started. */
mf_err_t mf_webrtc_transport_enable_sctp(mf_webrtc_transport_t *t, const mf_sctp_options_t *options,
                                         const mf_webrtc_transport_sctp_callbacks_t *cb);
/* NULL when SCTP is not enabled. */
mf_sctp_association_t *mf_webrtc_transport_sctp(const mf_webrtc_transport_t *t);

/* --- for rtc_server.c only ------------------------------------------------------------ */
void mf_webrtc_transport_handle_stun(mf_webrtc_transport_t *t, const uint8_t *data, size_t len,
                                     const struct sockaddr *from);
void mf_webrtc_transport_handle_dtls(mf_webrtc_transport_t *t, const uint8_t *data, size_t len);
void mf_webrtc_transport_handle_srtp(mf_webrtc_transport_t *t, mf_buf_t *buf);
void mf_webrtc_transport_tick(mf_webrtc_transport_t *t, uint64_t now_ms);

#endif
