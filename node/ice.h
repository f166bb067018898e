/* ICE-lite server side of a WebRTC transport (RFC 8445 §2.5, STUN RFC 5389, consent
 * freshness RFC 7675), on top of libnice's STUN library (no GLib main loop).
 *
 * We are always the lite, controlled agent: we never send checks, we answer the peer's
 * Binding requests (short-term credentials: USERNAME "<local ufrag>:<remote ufrag>",
 * MESSAGE-INTEGRITY keyed with the LOCAL password, FINGERPRINT) and follow its
 * nominations. States and transitions follow mediasoup's IceServer:
 *   new/disconnected --valid check--> connected   (its source tuple becomes selected)
 *   new/disconnected --valid check + USE-CANDIDATE--> completed (tuple selected)
 *   connected --valid check + USE-CANDIDATE--> completed (that tuple selected)
 *   completed --valid check + USE-CANDIDATE from another tuple--> completed, tuple switched
 *   connected/completed --no valid check from the selected tuple for
 *                         MF_ICE_CONSENT_TIMEOUT_MS (mf_ice_tick)--> disconnected
 *   any --mf_ice_close--> closed
 * A valid check without USE-CANDIDATE from a tuple that is not selected only adds that
 * tuple to the known ("valid") tuples; media may be accepted from any known tuple.
 *
 * Demultiplexing: a worker owns ONE UDP socket for all its transports. For an incoming
 * datagram it calls mf_ice_is_stun, then mf_ice_peek_local_ufrag to find the transport
 * (no integrity check yet), then that transport's mf_ice_handle_request, which does
 * the real validation.
 *
 * Thread affinity: an mf_ice_t belongs to ONE worker thread; nothing here locks.
 * mf_ice_generate_credentials, mf_ice_is_stun, mf_ice_peek_local_ufrag and
 * mf_ice_state_name are thread-safe. mf_ice_handle_request and mf_ice_tick do not
 * allocate (libnice's HMAC goes through GnuTLS, which may allocate internally). */
#ifndef MF_ICE_H
#define MF_ICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/err.h"

/* Lengths of generated credentials (mediasoup's: 16-char ufrag, 32-char password). */
#define MF_ICE_UFRAG_LEN 16
#define MF_ICE_PWD_LEN 32
/* Accepted lengths for caller-supplied credentials (RFC 8839 ice-ufrag / ice-pwd). */
#define MF_ICE_UFRAG_MIN 4
#define MF_ICE_PWD_MIN 22
#define MF_ICE_CRED_MAX 256

/* Consent expires this long after the last valid check from the selected tuple
 * (RFC 7675 §5.1: 30 s). */
#define MF_ICE_CONSENT_TIMEOUT_MS 30000u

/* Tuples remembered per ICE object; when full, the least recently validated
 * non-selected tuple is evicted (reported in mf_ice_result_t.tuple_removed). */
#define MF_ICE_MAX_TUPLES 8

/* Capacity mf_ice_handle_request needs for a response: the largest reply is a success
 * echoing a 512-byte USERNAME (20 header + 24 XOR-MAPPED-ADDRESS + 516 USERNAME
 * + 24 MESSAGE-INTEGRITY + 8 FINGERPRINT = 592) or a 420 listing unknown attributes. */
#define MF_ICE_RESPONSE_MAX 1024

typedef enum {
  MF_ICE_STATE_NEW = 0,
  MF_ICE_STATE_CONNECTED,
  MF_ICE_STATE_COMPLETED,
  MF_ICE_STATE_DISCONNECTED,
  MF_ICE_STATE_CLOSED,
} mf_ice_state_t;

typedef struct mf_ice mf_ice_t;

/* What one handled request changed. Filled on every return of mf_ice_handle_request
 * (all false/unchanged unless the request was valid). */
typedef struct {
  bool nominated;              /* the valid request carried USE-CANDIDATE */
  bool tuple_added;            /* the source tuple was not known and now is */
  bool tuple_removed;          /* a known tuple was evicted to make room: removed_tuple */
  struct sockaddr_storage removed_tuple;
  bool tuple_selected_changed; /* mf_ice_selected_tuple() differs from before the call */
  bool old_credentials_dropped; /* after mf_ice_restart: the previous ufrag no longer
                                   authenticates (the peer used the new one) */
  mf_ice_state_t state;        /* state after the call */
  bool state_changed;
} mf_ice_result_t;

/* "new", "connected", "completed", "disconnected", "closed" (mediasoup's iceState);
 * "unknown" for other values. Static string. */
const char *mf_ice_state_name(mf_ice_state_t state);

/* Random credentials from OpenSSL's CSPRNG over the ice-char alphabet [A-Za-z0-9+/]:
 * MF_ICE_UFRAG_LEN and MF_ICE_PWD_LEN characters plus NUL. MF_ERR_CRYPTO if the CSPRNG
 * fails, MF_ERR_INVALID_ARG for NULL. */
mf_err_t mf_ice_generate_credentials(char ufrag[MF_ICE_UFRAG_LEN + 1],
                                     char pwd[MF_ICE_PWD_LEN + 1]);

/* RFC 7983 demultiplexing plus the RFC 5389 header: first byte 0..3, at least 20 bytes
 * and the magic cookie 0x2112A442. Says nothing about validity beyond that. */
bool mf_ice_is_stun(const uint8_t *data, size_t len);

/* For a Binding request, copies the part of USERNAME before ':' (our local ufrag) into
 * out as a NUL-terminated string, so the worker can find the transport. Checks only the
 * structure (header, attribute bounds; attributes after MESSAGE-INTEGRITY are ignored),
 * not integrity. MF_ERR_PARSE: not a well-formed Binding request, no USERNAME, no ':'
 * or empty ufrag; MF_ERR_LIMIT: ufrag does not fit out_size; MF_ERR_INVALID_ARG: NULL. */
mf_err_t mf_ice_peek_local_ufrag(const uint8_t *data, size_t len, char *out,
                                 size_t out_size);

/* Creates the ICE-lite server for one transport with its local credentials (copied;
 * ice-chars only, lengths MF_ICE_UFRAG_MIN/MF_ICE_PWD_MIN..MF_ICE_CRED_MAX). State new.
 * Free with mf_ice_free. */
mf_err_t mf_ice_create(const char *ufrag, const char *pwd, mf_ice_t **out);
void mf_ice_free(mf_ice_t *ice); /* NULL is ignored */

/* Handles one STUN message that arrived from `from` (AF_INET or AF_INET6; an
 * IPv4-mapped IPv6 source is answered with an IPv4 XOR-MAPPED-ADDRESS).
 * resp_len: in, capacity of resp (at least MF_ICE_RESPONSE_MAX); out, bytes to send
 * back to `from` (0 = send nothing). res may be NULL.
 *   MF_OK               valid Binding request: success response (XOR-MAPPED-ADDRESS,
 *                       USERNAME echoed, MESSAGE-INTEGRITY, FINGERPRINT); state updated.
 *   MF_ERR_PARSE        malformed, not STUN, no/bad FINGERPRINT: no response. A request
 *                       that authenticates but lacks PRIORITY: 400 response.
 *   MF_ERR_AUTH         missing USERNAME/MESSAGE-INTEGRITY (400) or wrong ufrag or
 *                       password (401): error response without MESSAGE-INTEGRITY.
 *   MF_ERR_UNSUPPORTED  valid STUN that is not a request (indication, response): no
 *                       response; an authenticated request of another method (400) or
 *                       with unknown comprehension-required attributes (420).
 *   MF_ERR_STATE        the peer claims ICE-CONTROLLED too: 487 Role Conflict (a lite
 *                       agent never switches role).
 *   MF_ERR_CLOSED       after mf_ice_close: no response.
 *   MF_ERR_INVALID_ARG  NULL/unsupported address family/capacity too small. */
mf_err_t mf_ice_handle_request(mf_ice_t *ice, const uint8_t *req, size_t len,
                               const struct sockaddr *from, uint64_t now_ms, uint8_t *resp,
                               size_t *resp_len, mf_ice_result_t *res);

/* Consent freshness; call periodically (e.g. every second) with the same clock as
 * mf_ice_handle_request. Returns true when the state changed: connected/completed ->
 * disconnected once MF_ICE_CONSENT_TIMEOUT_MS passed without a valid check from the
 * selected tuple. Disconnecting forgets the selected tuple and ALL known tuples. */
bool mf_ice_tick(mf_ice_t *ice, uint64_t now_ms);

mf_ice_state_t mf_ice_state(const mf_ice_t *ice);

/* The tuple media goes to, or NULL while none (new, disconnected, closed). Points into
 * the ICE object: valid until the next mf_ice_handle_request/tick/close/free. */
const struct sockaddr *mf_ice_selected_tuple(const mf_ice_t *ice);

/* True if `addr` is a tuple that sent a valid check (and was not forgotten since). */
bool mf_ice_has_tuple(const mf_ice_t *ice, const struct sockaddr *addr);

/* Same address family, address and port (and IPv6 scope id). False for NULL or
 * families other than AF_INET/AF_INET6. */
bool mf_ice_tuple_equal(const struct sockaddr *a, const struct sockaddr *b);

/* Current local credentials (NUL-terminated, owned by the ICE object). */
const char *mf_ice_local_ufrag(const mf_ice_t *ice);
const char *mf_ice_local_pwd(const mf_ice_t *ice);
/* The ufrag that still authenticates after mf_ice_restart until the peer uses the new
 * one, or NULL. */
const char *mf_ice_old_ufrag(const mf_ice_t *ice);

/* ICE restart (mediasoup's transport.restartIce): new local credentials. The previous
 * ones keep authenticating until a check with the new ones succeeds (then
 * old_credentials_dropped is reported), so in-flight consent does not break. State and
 * tuples are kept. MF_ERR_CLOSED after close; MF_ERR_INVALID_ARG for bad credentials. */
mf_err_t mf_ice_restart(mf_ice_t *ice, const char *ufrag, const char *pwd);

/* State closed: forgets tuples, further requests get MF_ERR_CLOSED. Idempotent. */
void mf_ice_close(mf_ice_t *ice);

#endif
