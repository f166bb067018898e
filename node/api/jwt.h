/* HS256 JSON Web Tokens for API authentication: verify and mint.
 *
 * Only HS256 (HMAC-SHA256 with a shared secret, OpenSSL) is accepted; "none" and every
 * other alg are refused before any signature work. Claims Mafalda uses:
 *   sub    (string, required)  the identity, e.g. a user name
 *   room   (string)            the room a "join" token is limited to (required for "join")
 *   exp    (NumericDate, required) expiry, seconds since the Unix epoch
 *   grants (array of strings, required, non-empty): "admin" = any room, "join" = only `room`
 * Unknown grants are refused, so a newer minter cannot silently widen access on an older
 * node. Other claims (iat, nbf, jti, ...) are ignored.
 *
 * Pure functions on caller-owned buffers: no global state, safe from any thread. */
#ifndef MF_API_JWT_H
#define MF_API_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define MF_JWT_TOKEN_MAX 4096 /* longest accepted token text, bytes */
#define MF_JWT_SUB_MAX 128    /* longest sub, bytes (without NUL) */
#define MF_JWT_ROOM_MAX 128   /* longest room name, bytes (without NUL) */
#define MF_JWT_ERROR_MAX 128  /* size of a reason buffer that never truncates our messages */

enum {
  MF_JWT_GRANT_JOIN = 1u << 0,  /* may join `room` only */
  MF_JWT_GRANT_ADMIN = 1u << 1, /* may use any room */
};

typedef struct {
  char sub[MF_JWT_SUB_MAX + 1];
  char room[MF_JWT_ROOM_MAX + 1]; /* "" when absent */
  int64_t exp;                    /* seconds since the Unix epoch */
  unsigned grants;                /* MF_JWT_GRANT_* bits */
} mf_jwt_claims_t;

/* Verifies `token` (len bytes, need not be NUL-terminated) against `secret` at time `now`
 * (seconds since the epoch; a token is valid while now < exp) and fills *out.
 * On failure *out is zeroed and `why` (if not NULL) gets a one-line reason:
 *   MF_ERR_INVALID_ARG  no secret / NULL arguments, or a claim missing or of the wrong type
 *   MF_ERR_LIMIT        token longer than MF_JWT_TOKEN_MAX, or a claim over its max length
 *   MF_ERR_PARSE        not three base64url parts, bad base64url, header/payload not JSON
 *   MF_ERR_UNSUPPORTED  alg is not HS256 (including "none")
 *   MF_ERR_AUTH         signature does not match (compared in constant time)
 *   MF_ERR_TIMEOUT      expired (now >= exp) */
mf_err_t mf_jwt_verify(const char *token, size_t len, const uint8_t *secret, size_t secret_len,
                       int64_t now, mf_jwt_claims_t *out, char *why, size_t why_cap);

/* Writes a signed token for *claims into out (NUL-terminated, *out_len without the NUL).
 * MF_ERR_INVALID_ARG for an empty secret/sub, no grants, "join" without room;
 * MF_ERR_FULL when cap is too small; MF_ERR_CRYPTO if OpenSSL fails. */
mf_err_t mf_jwt_mint(const mf_jwt_claims_t *claims, const uint8_t *secret, size_t secret_len,
                     char *out, size_t cap, size_t *out_len);

/* True when the claims allow using `room`: admin, or join with exactly that room. */
bool mf_jwt_allows_room(const mf_jwt_claims_t *claims, const char *room);

/* base64url without padding (RFC 7515 section 2), exposed for tests.
 * encode: MF_ERR_FULL if cap < needed + 1 (output is NUL-terminated).
 * decode: MF_ERR_PARSE for characters outside the alphabet, '=' padding, a length of
 * 4k+1, or non-zero unused trailing bits (so each value has exactly one encoding);
 * MF_ERR_FULL if cap is too small. */
mf_err_t mf_jwt_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap,
                              size_t *out_len);
mf_err_t mf_jwt_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap,
                              size_t *out_len);

#endif
