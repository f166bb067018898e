/* SRTP/SRTCP sessions (libsrtp2 2.5) keyed from a DTLS-SRTP handshake.
 *
 * One session covers one direction of one transport: an OUTBOUND session protects every
 * SSRC we send, an INBOUND session unprotects every SSRC the peer sends (libsrtp wildcard
 * policies ssrc_any_outbound / ssrc_any_inbound). A WebRTC transport therefore holds two:
 * outbound keyed with mf_srtp_keys_t.local_master, inbound with .remote_master.
 *
 * Process setup: mf_srtp_library_init() must run once before any session is created
 * (call it from the process bootstrap, before the workers start; repeated calls are
 * harmless and return the first result).
 *
 * Thread affinity: a session belongs to ONE worker thread; protect/unprotect mutate its
 * replay and rollover state and are not thread-safe. Different sessions may be used on
 * different threads concurrently.
 *
 * Hot path: protect/unprotect work in place and never allocate themselves. The one
 * exception is inside libsrtp: the first packet of an SSRC not seen before clones the
 * session's stream template (one malloc per new SSRC, not per packet). Use
 * mf_srtp_remove_stream when an SSRC goes away so the clone is freed.
 *
 * Error mapping (stable, callers may switch on it):
 *   MF_ERR_AUTH      authentication tag mismatch (tampered, wrong key, not SRTP at all)
 *   MF_ERR_STATE     replay protection refused the packet: an index already received
 *                    (libsrtp replay_fail) or older than the replay window (replay_old);
 *                    also a protect on an inbound session or vice versa
 *   MF_ERR_PARSE     the packet is too short or its RTP/RTCP header is malformed
 *   MF_ERR_INVALID_ARG  NULL pointers, wrong key length, not enough buffer capacity
 *   MF_ERR_CRYPTO    any other libsrtp failure (logged at DEBUG with libsrtp's code) */
#ifndef MF_SRTP_H
#define MF_SRTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Values are the IANA DTLS-SRTP protection profile ids (RFC 5764, RFC 7714). */
typedef enum {
  MF_SRTP_PROFILE_AES128_CM_SHA1_80 = 1,
  MF_SRTP_PROFILE_AEAD_AES_128_GCM = 7,
} mf_srtp_profile_t;

/* Longest master key||salt of any profile we may support (AES-256 key + 14-byte salt). */
#define MF_SRTP_MAX_MASTER_LEN 46

/* Spare bytes protect needs after the packet: the longest tag (16, GCM) plus the 4-byte
 * SRTCP index. No MKI is ever configured, so libsrtp writes no more than this. */
#define MF_SRTP_MAX_TRAILER 20

/* Keys exported by a DTLS-SRTP handshake (see mf_dtls_get_srtp_keys). Each master is the
 * concatenation key||salt, master_len bytes long (30 for AES-CM, 28 for GCM). "local" is
 * what this endpoint protects with, "remote" what it unprotects with. */
typedef struct {
  mf_srtp_profile_t profile;
  uint8_t local_master[MF_SRTP_MAX_MASTER_LEN];
  uint8_t remote_master[MF_SRTP_MAX_MASTER_LEN];
  size_t master_len;
} mf_srtp_keys_t;

typedef struct mf_srtp_session mf_srtp_session_t;

/* srtp_init() once per process (pthread_once) and installs a libsrtp event handler that
 * logs key-limit and SSRC-collision events. MF_ERR_CRYPTO if libsrtp fails to start. */
mf_err_t mf_srtp_library_init(void);

/* Key||salt length of a profile, or 0 for a value that is not a supported profile. */
size_t mf_srtp_profile_master_len(mf_srtp_profile_t profile);

/* "AES_CM_128_HMAC_SHA1_80" / "AEAD_AES_128_GCM" (the names used in SDP/mediasoup), or
 * "unknown". Static string. */
const char *mf_srtp_profile_name(mf_srtp_profile_t profile);

/* Replay windows in packets. Inbound: libsrtp's default; a packet more than this far
 * behind the newest one of its SSRC is refused as too old. Outbound: protect refuses to
 * re-protect an index older than its window even with repeats allowed, so it must reach
 * back as far as NACKs do (the retransmission store keeps <= 2 s: 1024 packets is ~4 s at
 * 250 packets/s). Larger windows cost a longer bitmask shift per packet. */
#define MF_SRTP_INBOUND_WINDOW 128
#define MF_SRTP_OUTBOUND_WINDOW 1024

/* Creates a session. master/len: key||salt, len must equal mf_srtp_profile_master_len
 * (copied; the caller may wipe its copy afterwards). inbound: true for unprotect (replay
 * protection over MF_SRTP_INBOUND_WINDOW), false for protect (repeated transmissions of
 * an index are allowed: an SFU re-sends packets with their original sequence number when
 * it answers NACKs; they MUST carry the identical payload, or reusing the keystream
 * leaks plaintext). */
mf_err_t mf_srtp_session_create(mf_srtp_profile_t profile, const uint8_t *master, size_t len,
                                bool inbound, mf_srtp_session_t **out);

/* NULL is ignored. Wipes the keys. */
void mf_srtp_session_free(mf_srtp_session_t *s);

mf_srtp_profile_t mf_srtp_session_profile(const mf_srtp_session_t *s);

/* RTP -> SRTP in place. buf holds *len bytes of RTP and has capacity bytes of room;
 * capacity must be at least *len + MF_SRTP_MAX_TRAILER. On MF_OK *len is the SRTP size. */
mf_err_t mf_srtp_protect_rtp(mf_srtp_session_t *s, uint8_t *buf, size_t *len, size_t capacity);

/* SRTP -> RTP in place. On MF_OK *len is the RTP size; on failure buf/len are unspecified
 * (drop the packet). */
mf_err_t mf_srtp_unprotect_rtp(mf_srtp_session_t *s, uint8_t *buf, size_t *len);

/* RTCP (compound) -> SRTCP in place; same capacity rule as mf_srtp_protect_rtp. */
mf_err_t mf_srtp_protect_rtcp(mf_srtp_session_t *s, uint8_t *buf, size_t *len, size_t capacity);

/* SRTCP -> RTCP in place. */
mf_err_t mf_srtp_unprotect_rtcp(mf_srtp_session_t *s, uint8_t *buf, size_t *len);

/* Frees libsrtp's per-SSRC stream state (rollover counter, replay window). The next
 * packet with that SSRC starts a fresh stream. MF_ERR_NOT_FOUND if there was none. */
mf_err_t mf_srtp_remove_stream(mf_srtp_session_t *s, uint32_t ssrc);

#endif
