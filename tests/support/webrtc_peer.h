/* A client-side WebRTC peer for tests and the load generator: one connected UDP socket to
 * one mafalda-node WebRtcTransport, ICE as the controlling agent (the node is ICE-lite; our
 * checks carry USE-CANDIDATE, libnice's STUN library), DTLS as client (the node's own
 * node/dtls.h with the caller's certificate), then SRTP/SRTCP both ways (node/srtp.h).
 *
 * Non-blocking: the caller owns the loop. It polls mf_webrtc_peer_fd() for input, reads
 * datagrams itself (recv/recvmmsg) and hands each one to mf_webrtc_peer_input(), and calls
 * mf_webrtc_peer_tick() at least every mf_webrtc_peer_timeout_ms(): that retransmits STUN
 * checks until one succeeds, keeps ICE consent alive afterwards (a check every 2 s) and runs
 * the DTLS retransmission timer. DTLS datagrams keep being fed to the association after the
 * handshake, so a retransmitted final flight of the node is answered.
 * mf_webrtc_peer_connect() is the blocking form for simple tests (churn).
 *
 * Ownership: the peer owns its socket and its DTLS/SRTP state; the DTLS context must outlive
 * it. Thread affinity: ONE thread uses a peer (the generator's loop); no locks inside.
 * Per packet (input of SRTP, protect, send) nothing allocates. */
#ifndef MF_TEST_WEBRTC_PEER_H
#define MF_TEST_WEBRTC_PEER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "node/dtls.h"

typedef enum {
  MF_WEBRTC_PEER_ICE,       /* STUN checks sent, no success yet */
  MF_WEBRTC_PEER_DTLS,      /* ICE done, DTLS handshake running */
  MF_WEBRTC_PEER_CONNECTED, /* SRTP keyed: media both ways */
  MF_WEBRTC_PEER_FAILED,    /* DTLS failed or closed, or the socket failed */
} mf_webrtc_peer_state_t;

/* What the node announced for one transport (pointers borrowed from the caller). */
typedef struct {
  const char *ufrag, *pwd;
  const char *ip;
  uint16_t port;
  const char *fingerprint; /* sha-256 */
} mf_webrtc_peer_remote_t;

/* Fills out from a router.createWebRtcTransport answer (pointers into t, which must outlive
 * their use). MF_ERR_PARSE if a field is missing. */
mf_err_t mf_webrtc_peer_remote_from_json(const json_t *t, mf_webrtc_peer_remote_t *out);

typedef struct mf_webrtc_peer mf_webrtc_peer_t;

/* Binds a non-blocking UDP socket on 127.0.0.1 (any port), connects it to the node's
 * candidate and sends the first STUN check. MF_ERR_IO / MF_ERR_NO_MEMORY on failure. */
mf_err_t mf_webrtc_peer_create(mf_dtls_context_t *ctx, const mf_webrtc_peer_remote_t *remote,
                               uint64_t now_ms, mf_webrtc_peer_t **out);
void mf_webrtc_peer_free(mf_webrtc_peer_t *p); /* NULL ignored; sends nothing */

/* Against a FULL ICE agent (Janus): the peer has credentials of its own, answers the
 * remote's Binding requests (libnice's STUN agent, role conflicts resolved by RFC 8445
 * tie-breakers) and sends its checks as "<remote ufrag>:<local ufrag>". controlled: its
 * checks carry ICE-CONTROLLED and no USE-CANDIDATE (the remote offered and nominates);
 * DTLS then starts once a check of ours succeeded AND the remote nominated. The default
 * (mf_webrtc_peer_create) stays the ICE-lite client: controlling, nothing answered. */
typedef struct {
  bool full_ice;
  bool controlled;
  const char *local_ufrag, *local_pwd; /* copied; 4..255 ICE chars each when full_ice */
} mf_webrtc_peer_opts_t;

/* Like mf_webrtc_peer_create, but remote may be NULL: the socket is bound (its port is
 * mf_webrtc_peer_local_port, for an SDP candidate) and nothing is sent until
 * mf_webrtc_peer_set_remote. opts NULL = the default. */
mf_err_t mf_webrtc_peer_create_ex(mf_dtls_context_t *ctx, const mf_webrtc_peer_remote_t *remote,
                                  const mf_webrtc_peer_opts_t *opts, uint64_t now_ms,
                                  mf_webrtc_peer_t **out);
/* Connects the socket to the remote candidate and sends the first check. MF_ERR_STATE if
 * a remote is already set, MF_ERR_INVALID_ARG / MF_ERR_IO otherwise on failure. */
mf_err_t mf_webrtc_peer_set_remote(mf_webrtc_peer_t *p, const mf_webrtc_peer_remote_t *remote,
                                   uint64_t now_ms);
uint16_t mf_webrtc_peer_local_port(const mf_webrtc_peer_t *p);

int mf_webrtc_peer_fd(const mf_webrtc_peer_t *p);
mf_webrtc_peer_state_t mf_webrtc_peer_state(const mf_webrtc_peer_t *p);

typedef enum {
  MF_WEBRTC_PEER_IN_NONE, /* consumed inside (STUN, DTLS) or dropped (counted) */
  MF_WEBRTC_PEER_IN_RTP,  /* *len bytes of plain RTP now in buf */
  MF_WEBRTC_PEER_IN_RTCP, /* *len bytes of plain RTCP now in buf */
} mf_webrtc_peer_in_t;

/* One datagram read from the fd (buf[0..*len), modified in place). Never trusts the
 * input: anything malformed or failing authentication is counted and dropped. */
mf_webrtc_peer_in_t mf_webrtc_peer_input(mf_webrtc_peer_t *p, uint8_t *buf, size_t *len,
                                         uint64_t now_ms);

/* Timers (STUN retransmit / consent, DTLS). Cheap when nothing is due. */
void mf_webrtc_peer_tick(mf_webrtc_peer_t *p, uint64_t now_ms);
/* Milliseconds until the next tick is needed (0 = now). */
uint64_t mf_webrtc_peer_timeout_ms(const mf_webrtc_peer_t *p, uint64_t now_ms);

/* In place; cap is buf's capacity (>= *len + MF_SRTP_MAX_TRAILER). MF_ERR_STATE unless
 * CONNECTED; otherwise mf_srtp's errors. */
mf_err_t mf_webrtc_peer_protect_rtp(mf_webrtc_peer_t *p, uint8_t *buf, size_t *len, size_t cap);
mf_err_t mf_webrtc_peer_protect_rtcp(mf_webrtc_peer_t *p, uint8_t *buf, size_t *len, size_t cap);

/* One datagram to the node (send(2) on the connected socket). MF_ERR_FULL when the socket
 * buffer is full (EAGAIN: the datagram is dropped), MF_ERR_IO otherwise. */
mf_err_t mf_webrtc_peer_send(mf_webrtc_peer_t *p, const uint8_t *buf, size_t len);

/* Blocks (poll) until CONNECTED, FAILED or timeout_ms. Media arriving meanwhile is dropped.
 * MF_OK, MF_ERR_TIMEOUT or MF_ERR_STATE (failed). */
mf_err_t mf_webrtc_peer_connect(mf_webrtc_peer_t *p, int timeout_ms);

typedef struct {
  uint64_t stun_sent, stun_ok;
  uint64_t stun_answered; /* full_ice: the remote's checks answered */
  uint64_t dtls_in, rtp_in, rtcp_in;
  uint64_t unprotect_failed, unknown_in, send_failed;
} mf_webrtc_peer_counters_t;

const mf_webrtc_peer_counters_t *mf_webrtc_peer_counters(const mf_webrtc_peer_t *p);

#endif
