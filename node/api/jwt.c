#include "node/api/jwt.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_LEN 32 /* SHA-256 */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

mf_err_t mf_jwt_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap,
                              size_t *out_len) {
  if ((!in && len) || !out) return MF_ERR_INVALID_ARG;
  size_t need = (len / 3) * 4 + (len % 3 ? len % 3 + 1 : 0);
  if (cap < need + 1) return MF_ERR_FULL;
  size_t o = 0, i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = b64url_alphabet[(v >> 18) & 63];
    out[o++] = b64url_alphabet[(v >> 12) & 63];
    out[o++] = b64url_alphabet[(v >> 6) & 63];
    out[o++] = b64url_alphabet[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = b64url_alphabet[(v >> 18) & 63];
    out[o++] = b64url_alphabet[(v >> 12) & 63];
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = b64url_alphabet[(v >> 18) & 63];
    out[o++] = b64url_alphabet[(v >> 12) & 63];
    out[o++] = b64url_alphabet[(v >> 6) & 63];
  }
  out[o] = '\0';
  if (out_len) *out_len = o;
  return MF_OK;
}

mf_err_t mf_jwt_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap,
                              size_t *out_len) {
  if ((!in && len) || (!out && cap)) return MF_ERR_INVALID_ARG;
  if (len % 4 == 1) return MF_ERR_PARSE;
  size_t need = (len / 4) * 3 + (len % 4 ? len % 4 - 1 : 0);
  if (cap < need) return MF_ERR_FULL;
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    int v = b64url_value((unsigned char)in[i]);
    if (v < 0) return MF_ERR_PARSE;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  /* Leftover bits must be zero: otherwise two texts decode to one value, and a token
   * could be altered without changing what it says. */
  if (acc != 0) return MF_ERR_PARSE;
  if (out_len) *out_len = o;
  return MF_OK;
}

static mf_err_t fail(mf_err_t err, char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static mf_err_t fail(mf_err_t err, char *why, size_t cap, const char *fmt, ...) {
  if (why && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
  }
  return err;
}

static mf_err_t hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                            uint8_t mac[SIG_LEN]) {
  unsigned int mac_len = 0;
  if (key_len > INT32_MAX) return MF_ERR_INVALID_ARG;
  if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, mac, &mac_len) || mac_len != SIG_LEN)
    return MF_ERR_CRYPTO;
  return MF_OK;
}

/* Decodes one base64url part and parses it as a JSON object. */
static mf_err_t decode_json_part(const char *part, size_t len, const char *what, json_t **out,
                                 char *why, size_t cap) {
  uint8_t buf[MF_JWT_TOKEN_MAX];
  size_t n = 0;
  if (len == 0) return fail(MF_ERR_PARSE, why, cap, "token %s is empty", what);
  if (mf_jwt_b64url_decode(part, len, buf, sizeof buf, &n) != MF_OK)
    return fail(MF_ERR_PARSE, why, cap, "token %s is not base64url", what);
  json_error_t jerr;
  json_t *j = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &jerr);
  if (!j) return fail(MF_ERR_PARSE, why, cap, "token %s is not JSON", what);
  if (!json_is_object(j)) {
    json_decref(j);
    return fail(MF_ERR_PARSE, why, cap, "token %s is not a JSON object", what);
  }
  *out = j;
  return MF_OK;
}

static mf_err_t copy_string_claim(json_t *payload, const char *name, char *dst, size_t max,
                                  bool required, char *why, size_t cap) {
  json_t *v = json_object_get(payload, name);
  if (!v) {
    if (required) return fail(MF_ERR_INVALID_ARG, why, cap, "token has no '%s' claim", name);
    dst[0] = '\0';
    return MF_OK;
  }
  if (!json_is_string(v))
    return fail(MF_ERR_INVALID_ARG, why, cap, "token claim '%s' is not a string", name);
  size_t n = json_string_length(v);
  const char *s = json_string_value(v);
  if (n > max) return fail(MF_ERR_LIMIT, why, cap, "token claim '%s' is longer than %zu", name, max);
  if (memchr(s, '\0', n))
    return fail(MF_ERR_INVALID_ARG, why, cap, "token claim '%s' contains NUL", name);
  if (required && n == 0)
    return fail(MF_ERR_INVALID_ARG, why, cap, "token claim '%s' is empty", name);
  memcpy(dst, s, n);
  dst[n] = '\0';
  return MF_OK;
}

static mf_err_t parse_claims(json_t *payload, int64_t now, mf_jwt_claims_t *c, char *why,
                             size_t cap) {
  mf_err_t err = copy_string_claim(payload, "sub", c->sub, MF_JWT_SUB_MAX, true, why, cap);
  if (err) return err;
  err = copy_string_claim(payload, "room", c->room, MF_JWT_ROOM_MAX, false, why, cap);
  if (err) return err;

  json_t *exp = json_object_get(payload, "exp");
  if (!exp) return fail(MF_ERR_INVALID_ARG, why, cap, "token has no 'exp' claim");
  if (json_is_integer(exp)) {
    c->exp = (int64_t)json_integer_value(exp);
  } else if (json_is_real(exp)) {
    double d = json_real_value(exp);
    /* NumericDate may carry fractions; anything outside int64 is nonsense. */
    if (!(d > -9.2e18 && d < 9.2e18))
      return fail(MF_ERR_INVALID_ARG, why, cap, "token claim 'exp' is out of range");
    c->exp = (int64_t)d;
  } else {
    return fail(MF_ERR_INVALID_ARG, why, cap, "token claim 'exp' is not a number");
  }

  json_t *grants = json_object_get(payload, "grants");
  if (!grants) return fail(MF_ERR_INVALID_ARG, why, cap, "token has no 'grants' claim");
  if (!json_is_array(grants))
    return fail(MF_ERR_INVALID_ARG, why, cap, "token claim 'grants' is not an array");
  if (json_array_size(grants) == 0)
    return fail(MF_ERR_INVALID_ARG, why, cap, "token claim 'grants' is empty");
  if (json_array_size(grants) > 16)
    return fail(MF_ERR_LIMIT, why, cap, "token claim 'grants' has more than 16 entries");
  size_t i;
  json_t *g;
  json_array_foreach(grants, i, g) {
    if (!json_is_string(g))
      return fail(MF_ERR_INVALID_ARG, why, cap, "token grant %zu is not a string", i);
    if (strcmp(json_string_value(g), "admin") == 0)
      c->grants |= MF_JWT_GRANT_ADMIN;
    else if (strcmp(json_string_value(g), "join") == 0)
      c->grants |= MF_JWT_GRANT_JOIN;
    else
      return fail(MF_ERR_INVALID_ARG, why, cap, "token grant %zu is unknown", i);
  }
  if ((c->grants & MF_JWT_GRANT_JOIN) && !(c->grants & MF_JWT_GRANT_ADMIN) && !c->room[0])
    return fail(MF_ERR_INVALID_ARG, why, cap, "token grants 'join' but has no 'room'");

  if (now >= c->exp)
    return fail(MF_ERR_TIMEOUT, why, cap, "token expired %lld s ago",
                (long long)(now - c->exp));
  return MF_OK;
}

mf_err_t mf_jwt_verify(const char *token, size_t len, const uint8_t *secret, size_t secret_len,
                       int64_t now, mf_jwt_claims_t *out, char *why, size_t why_cap) {
  if (why && why_cap) why[0] = '\0';
  if (!out) return fail(MF_ERR_INVALID_ARG, why, why_cap, "no output");
  memset(out, 0, sizeof *out);
  if (!secret || secret_len == 0) return fail(MF_ERR_INVALID_ARG, why, why_cap, "no secret");
  if (!token || len == 0) return fail(MF_ERR_PARSE, why, why_cap, "token is empty");
  if (len > MF_JWT_TOKEN_MAX)
    return fail(MF_ERR_LIMIT, why, why_cap, "token is longer than %d bytes", MF_JWT_TOKEN_MAX);

  const char *dot1 = memchr(token, '.', len);
  const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
  if (!dot1 || !dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
    return fail(MF_ERR_PARSE, why, why_cap, "token does not have three parts");
  size_t header_len = (size_t)(dot1 - token);
  size_t payload_len = (size_t)(dot2 - dot1 - 1);
  size_t sig_len = len - (size_t)(dot2 + 1 - token);

  json_t *header = NULL, *payload = NULL;
  mf_err_t err = decode_json_part(token, header_len, "header", &header, why, why_cap);
  if (err) return err;
  json_t *alg = json_object_get(header, "alg");
  if (!json_is_string(alg)) {
    err = fail(MF_ERR_PARSE, why, why_cap, "token header has no 'alg'");
    goto out;
  }
  if (strcmp(json_string_value(alg), "HS256") != 0 || json_string_length(alg) != 5) {
    err = fail(MF_ERR_UNSUPPORTED, why, why_cap, "token alg is not HS256");
    goto out;
  }
  json_t *typ = json_object_get(header, "typ");
  if (typ && (!json_is_string(typ) || strcmp(json_string_value(typ), "JWT") != 0)) {
    err = fail(MF_ERR_UNSUPPORTED, why, why_cap, "token typ is not JWT");
    goto out;
  }

  /* Signature before the payload is even decoded: unauthenticated input reaches only the
   * base64 and header parsers. */
  uint8_t sig[SIG_LEN + 3];
  size_t n = 0;
  if (sig_len != 43 || mf_jwt_b64url_decode(dot2 + 1, sig_len, sig, sizeof sig, &n) != MF_OK ||
      n != SIG_LEN) {
    err = fail(MF_ERR_PARSE, why, why_cap, "token signature is not 32 bytes of base64url");
    goto out;
  }
  uint8_t mac[SIG_LEN];
  err = hmac_sha256(secret, secret_len, token, (size_t)(dot2 - token), mac);
  if (err) {
    fail(err, why, why_cap, "HMAC failed");
    goto out;
  }
  if (CRYPTO_memcmp(mac, sig, SIG_LEN) != 0) {
    err = fail(MF_ERR_AUTH, why, why_cap, "token signature does not match");
    goto out;
  }

  err = decode_json_part(dot1 + 1, payload_len, "payload", &payload, why, why_cap);
  if (err) goto out;
  err = parse_claims(payload, now, out, why, why_cap);

out:
  json_decref(header);
  json_decref(payload);
  if (err) memset(out, 0, sizeof *out);
  return err;
}

mf_err_t mf_jwt_mint(const mf_jwt_claims_t *claims, const uint8_t *secret, size_t secret_len,
                     char *out, size_t cap, size_t *out_len) {
  if (!claims || !secret || secret_len == 0 || !out) return MF_ERR_INVALID_ARG;
  size_t sub_len = strnlen(claims->sub, sizeof claims->sub);
  size_t room_len = strnlen(claims->room, sizeof claims->room);
  if (sub_len == 0 || sub_len > MF_JWT_SUB_MAX || room_len > MF_JWT_ROOM_MAX)
    return MF_ERR_INVALID_ARG;
  if (!(claims->grants & (MF_JWT_GRANT_JOIN | MF_JWT_GRANT_ADMIN)) ||
      (claims->grants & ~(unsigned)(MF_JWT_GRANT_JOIN | MF_JWT_GRANT_ADMIN)))
    return MF_ERR_INVALID_ARG;
  if ((claims->grants & MF_JWT_GRANT_JOIN) && !(claims->grants & MF_JWT_GRANT_ADMIN) &&
      room_len == 0)
    return MF_ERR_INVALID_ARG;

  json_t *grants = json_array();
  if (claims->grants & MF_JWT_GRANT_ADMIN) json_array_append_new(grants, json_string("admin"));
  if (claims->grants & MF_JWT_GRANT_JOIN) json_array_append_new(grants, json_string("join"));
  json_t *payload = json_pack("{s:s%, s:I, s:o}", "sub", claims->sub, sub_len, "exp",
                              (json_int_t)claims->exp, "grants", grants);
  if (!payload) return MF_ERR_NO_MEMORY;
  if (room_len) json_object_set_new(payload, "room", json_stringn(claims->room, room_len));
  char *body = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(payload);
  if (!body) return MF_ERR_NO_MEMORY;

  static const char header_b64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"; /* {"alg":"HS256","typ":"JWT"} */
  size_t body_len = strlen(body);
  size_t o = sizeof header_b64 - 1;
  mf_err_t err = MF_OK;
  if (cap < o + 2) {
    err = MF_ERR_FULL;
    goto done;
  }
  memcpy(out, header_b64, o);
  out[o++] = '.';
  size_t n = 0;
  err = mf_jwt_b64url_encode((const uint8_t *)body, body_len, out + o, cap - o, &n);
  if (err) goto done;
  o += n;
  uint8_t mac[SIG_LEN];
  err = hmac_sha256(secret, secret_len, out, o, mac);
  if (err) goto done;
  if (cap < o + 2) {
    err = MF_ERR_FULL;
    goto done;
  }
  out[o++] = '.';
  err = mf_jwt_b64url_encode(mac, SIG_LEN, out + o, cap - o, &n);
  if (err) goto done;
  o += n;
  if (out_len) *out_len = o;
done:
  free(body);
  if (err && cap) out[0] = '\0';
  return err;
}

bool mf_jwt_allows_room(const mf_jwt_claims_t *claims, const char *room) {
  if (!claims || !room) return false;
  if (claims->grants & MF_JWT_GRANT_ADMIN) return true;
  return (claims->grants & MF_JWT_GRANT_JOIN) && claims->room[0] &&
         strcmp(claims->room, room) == 0;
}
