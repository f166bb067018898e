/* Fuzzes JWT verification with untrusted tokens (the ?token= of every API connection).
 * Inputs: the token text. Any accepted token must re-mint to a token that verifies to the
 * same claims, and base64url decoding of the raw input must re-encode to the same text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/api/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t SECRET[] = "fuzz-secret";
#define NOW 1800000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mf_jwt_claims_t claims, again;
  char why[MF_JWT_ERROR_MAX];
  if (mf_jwt_verify((const char *)data, size, SECRET, sizeof SECRET - 1, NOW, &claims, why,
                    sizeof why) == MF_OK) {
    char tok[MF_JWT_TOKEN_MAX];
    size_t len = 0;
    if (mf_jwt_mint(&claims, SECRET, sizeof SECRET - 1, tok, sizeof tok, &len) != MF_OK) abort();
    if (mf_jwt_verify(tok, len, SECRET, sizeof SECRET - 1, NOW, &again, why, sizeof why) != MF_OK)
      abort();
    if (memcmp(&claims, &again, sizeof claims) != 0) abort();
  }
  static uint8_t bin[8192];
  static char text[16384];
  size_t n = 0, m = 0;
  if (mf_jwt_b64url_decode((const char *)data, size, bin, sizeof bin, &n) == MF_OK) {
    if (mf_jwt_b64url_encode(bin, n, text, sizeof text, &m) != MF_OK) abort();
    if (m != size || memcmp(text, data, size) != 0) abort();
  }
  return 0;
}
