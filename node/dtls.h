/* DTLS 1.2 with the use_srtp extension (OpenSSL 3.0) for WebRTC transports.
 *
 * The module does no I/O and owns no timer: the transport feeds it the datagrams it
 * receives (mf_dtls_handle_datagram), sends what the send callback gives it (one call =
 * one datagram, never larger than MF_DTLS_MTU; OpenSSL packs the records of a flight
 * into datagrams up to that size and fragments larger handshake messages), and runs a
 * timer from mf_dtls_timeout_ms that calls mf_dtls_handle_timeout. Tests therefore run
 * without sockets or loops.
 *
 * Objects and threads:
 *  - mf_dtls_cert_t: one per node, made at start-up. Immutable after generation and
 *    shared read-only by every worker (OpenSSL reference counts are atomic).
 *  - mf_dtls_context_t: one per worker (an SSL_CTX holding the certificate).
 *  - mf_dtls_t: one per transport. A context and its mf_dtls_t objects belong to ONE
 *    worker thread; nothing here is thread-safe beyond the certificate.
 *
 * Authentication: the peer must present a certificate; it is self-signed in WebRTC, so
 * chain verification accepts anything and the real check is the fingerprint from
 * signalling, compared after the handshake. A mismatch fails the connection with reason
 * "fingerprint mismatch" (and sends close_notify to the peer).
 *
 * Roles (mediasoup's rule, read from its WebRtcTransport::HandleRequest for
 * WEBRTCTRANSPORT_CONNECT): the role given to transport.connect() is the REMOTE's.
 * remote "client" -> we are server; remote "server" -> we are client; remote "auto" -> we
 * are client: we are ICE-lite, hence ICE-controlled, and under "auto" the ICE-controlled
 * side takes the DTLS client role (ORTC's RTCDtlsRole; mediasoup: "we become client
 * since we are ICE controlled"). See mf_dtls_local_role_for_remote. */
#ifndef MF_DTLS_H
#define MF_DTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "node/srtp.h"

/* Largest datagram the module emits (UDP payload; handshake messages are fragmented to
 * fit). Application data is one record per call and must itself stay below it. */
#define MF_DTLS_MTU 1200

/* Longest fingerprint string: sha-512 = 64 bytes as "AB:" pairs minus the last colon,
 * plus the terminating NUL. */
#define MF_DTLS_FINGERPRINT_MAX (64 * 3)

/* Largest application-data payload per mf_dtls_send_application_data call. */
#define MF_DTLS_MAX_APP_DATA 16384

/* ---- certificate (node-wide, immutable) ---- */

typedef struct mf_dtls_cert mf_dtls_cert_t;

/* ECDSA P-256 key and a self-signed X.509 v3 certificate (CN "mafalda", SHA-256
 * signature, valid from one day ago for one year: peers check the fingerprint, not the
 * validity, but some log an expired certificate). */
mf_err_t mf_dtls_cert_generate(mf_dtls_cert_t **out);

/* SHA-256 fingerprint, "AB:CD:..." uppercase (95 chars), as announced in SDP and in
 * mediasoup's dtlsParameters.fingerprints. Owned by the certificate. */
const char *mf_dtls_cert_fingerprint(const mf_dtls_cert_t *cert);

/* Fingerprint with another algorithm ("sha-1", "sha-224", "sha-256", "sha-384",
 * "sha-512", case-insensitive) into out (cap >= MF_DTLS_FINGERPRINT_MAX is always
 * enough). MF_ERR_INVALID_ARG for an unknown algorithm, MF_ERR_LIMIT if cap is short. */
mf_err_t mf_dtls_cert_fingerprint_for(const mf_dtls_cert_t *cert, const char *algorithm,
                                      char *out, size_t cap);

/* NULL is ignored. Contexts made from the certificate keep their own references, so the
 * certificate may be freed before them. */
void mf_dtls_cert_free(mf_dtls_cert_t *cert);

/* ---- per-worker context ---- */

typedef struct mf_dtls_context mf_dtls_context_t;

typedef struct {
  /* OpenSSL use_srtp profile list in order of preference; NULL = MF_DTLS_SRTP_PROFILES.
   * Only SRTP_AEAD_AES_128_GCM and SRTP_AES128_CM_SHA1_80 can be keyed (others fail the
   * association after the handshake with "unsupported SRTP profile"). */
  const char *srtp_profiles;
  /* Handshake retransmission timer: first timeout, doubled per retransmission up to the
   * maximum. 0 = defaults (100 ms, 4000 ms); allowed 20 ms .. 60 s (OpenSSL counts a
   * timer with < 15 ms left as expired). OpenSSL gives up after 12 retransmissions of a
   * flight, so with the defaults a dead peer fails the handshake after ~30 s. */
  uint32_t initial_timeout_ms;
  uint32_t max_timeout_ms;
} mf_dtls_context_options_t;

/* GCM first: it is ~4x cheaper per packet here (see shared/README.md) and browsers
 * offer it. As DTLS server our order decides; as client the peer's does. */
#define MF_DTLS_SRTP_PROFILES "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"

/* An SSL_CTX for DTLS 1.2 only, with the certificate, the use_srtp profiles, ECDHE
 * cipher suites (ECDSA and RSA peers), no session cache/tickets, and a peer certificate
 * required. mf_dtls_context_create uses the default options. */
mf_err_t mf_dtls_context_create(const mf_dtls_cert_t *cert, mf_dtls_context_t **out);
mf_err_t mf_dtls_context_create_ex(const mf_dtls_cert_t *cert,
                                   const mf_dtls_context_options_t *options,
                                   mf_dtls_context_t **out);

/* Must outlive every mf_dtls_t created from it. NULL is ignored. */
void mf_dtls_context_free(mf_dtls_context_t *ctx);

/* ---- one DTLS association ---- */

typedef enum {
  MF_DTLS_ROLE_AUTO,
  MF_DTLS_ROLE_CLIENT,
  MF_DTLS_ROLE_SERVER,
} mf_dtls_role_t;

typedef enum {
  MF_DTLS_STATE_NEW,        /* created, not started */
  MF_DTLS_STATE_CONNECTING, /* handshake running (or done, waiting for the fingerprint) */
  MF_DTLS_STATE_CONNECTED,  /* handshake done, fingerprint verified, SRTP keys ready */
  MF_DTLS_STATE_FAILED,     /* terminal: handshake error, timeout, fingerprint mismatch */
  MF_DTLS_STATE_CLOSED,     /* terminal: close_notify received or mf_dtls_close called */
} mf_dtls_state_t;

/* The local role for the role the remote announced (mediasoup's table):
 * CLIENT -> SERVER, SERVER -> CLIENT, AUTO -> CLIENT. */
mf_dtls_role_t mf_dtls_local_role_for_remote(mf_dtls_role_t remote);

const char *mf_dtls_role_name(mf_dtls_role_t role);   /* "auto" / "client" / "server" */
const char *mf_dtls_state_name(mf_dtls_state_t state); /* "new", "connecting", ... */

typedef struct mf_dtls mf_dtls_t;

/* Callbacks run on the owning worker thread, synchronously inside the mf_dtls_* call
 * that caused them.
 *  send:     one outgoing datagram; copy or send it before returning (data is only
 *            valid during the call). Called from inside OpenSSL: it must not call any
 *            mf_dtls_* function on the same object (they return MF_ERR_STATE).
 *  state:    every state change, once. reason is NULL for NEW->CONNECTING and
 *            ->CONNECTED, otherwise a sentence (e.g. "fingerprint mismatch", "handshake
 *            failed: <OpenSSL error>", "close_notify received"), valid only during the
 *            call. The callback may call mf_dtls_close or mf_dtls_free on the object; a
 *            free is deferred until the outer mf_dtls_* call returns.
 *  app_data: decrypted application data (one DTLS record = one SCTP packet later, for
 *            DataChannels via usrsctp); optional, NULL discards it. Same rules as state. */
typedef struct {
  void (*send)(void *ud, const uint8_t *data, size_t len);
  void (*state)(void *ud, mf_dtls_state_t state, const char *reason);
  void (*app_data)(void *ud, const uint8_t *data, size_t len);
} mf_dtls_callbacks_t;

/* Creates an association in state NEW (no callback is made). cb is copied; send is
 * required. ud is passed to every callback. */
mf_err_t mf_dtls_create(mf_dtls_context_t *ctx, const mf_dtls_callbacks_t *cb, void *ud,
                        mf_dtls_t **out);

/* Starts the handshake in local_role (CLIENT or SERVER; resolve AUTO with
 * mf_dtls_local_role_for_remote first): NEW -> CONNECTING. A client sends its
 * ClientHello from inside this call. fp_algorithm/fp_value: the remote fingerprint from
 * signalling ("sha-1" ... "sha-512", hex pairs, both case-insensitive); both NULL to
 * give it later with mf_dtls_set_remote_fingerprint (the handshake runs, CONNECTED waits
 * for the fingerprint). MF_ERR_INVALID_ARG for AUTO, an unknown algorithm or an
 * over-long value; MF_ERR_STATE if already started. */
mf_err_t mf_dtls_start(mf_dtls_t *d, mf_dtls_role_t local_role, const char *fp_algorithm,
                       const char *fp_value);

/* Sets the remote fingerprint once (see mf_dtls_start). If the handshake already
 * finished, the check happens now and may report CONNECTED or FAILED.
 * MF_ERR_STATE if a fingerprint was already set or the association is finished. */
mf_err_t mf_dtls_set_remote_fingerprint(mf_dtls_t *d, const char *fp_algorithm,
                                        const char *fp_value);

/* One datagram from the peer (the caller has demultiplexed it as DTLS: first byte
 * 20..63). Malformed records are dropped by OpenSSL without changing state; a fatal
 * handshake error or a fatal alert gives FAILED, close_notify gives CLOSED.
 * Returns MF_OK if the datagram was consumed (even if it was dropped),
 * MF_ERR_STATE before mf_dtls_start or from inside the send callback, MF_ERR_CLOSED
 * once FAILED/CLOSED, MF_ERR_INVALID_ARG for len 0. */
mf_err_t mf_dtls_handle_datagram(mf_dtls_t *d, const uint8_t *data, size_t len);

/* -1 when no timer is needed; otherwise milliseconds (>= 0, rounded up) until
 * mf_dtls_handle_timeout must be called. Ask again after every mf_dtls_* call. */
long mf_dtls_timeout_ms(mf_dtls_t *d);

/* Retransmits the current flight if its timer expired (no-op otherwise). After too many
 * retransmissions the association becomes FAILED ("handshake timeout"). */
void mf_dtls_handle_timeout(mf_dtls_t *d);

/* After CONNECTED: the negotiated profile and the SRTP masters exported with
 * SSL_export_keying_material("EXTRACTOR-dtls_srtp") and split per RFC 5764 4.2
 * (client key | server key | client salt | server salt; a client's local master is
 * client key||client salt). MF_ERR_STATE before CONNECTED. */
mf_err_t mf_dtls_get_srtp_keys(const mf_dtls_t *d, mf_srtp_keys_t *out);

/* Application data over DTLS (for SCTP later). MF_ERR_STATE unless CONNECTED,
 * MF_ERR_LIMIT above MF_DTLS_MAX_APP_DATA; the record goes out through send. */
mf_err_t mf_dtls_send_application_data(mf_dtls_t *d, const uint8_t *data, size_t len);

/* Sends close_notify if the handshake finished and moves to CLOSED ("closed locally")
 * unless already FAILED/CLOSED. */
void mf_dtls_close(mf_dtls_t *d);

mf_dtls_state_t mf_dtls_state(const mf_dtls_t *d);
/* The local role given to mf_dtls_start (AUTO before). */
mf_dtls_role_t mf_dtls_local_role(const mf_dtls_t *d);

/* Frees without sending anything (call mf_dtls_close first for a graceful end) and
 * without callbacks; wipes the exported keys. NULL is ignored. Inside a callback of the
 * same object the free is deferred until the outer call returns. */
void mf_dtls_free(mf_dtls_t *d);

#endif
