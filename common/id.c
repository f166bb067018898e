#include "id.h"

#include <openssl/rand.h>
#include <stdint.h>
#include <string.h>

mf_err_t mf_id_generate(char out[MF_ID_LEN + 1]) {
  uint8_t b[16];
  if (RAND_bytes(b, sizeof b) != 1) return MF_ERR_CRYPTO;
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < sizeof b; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 0x0f];
  }
  out[o] = '\0';
  return MF_OK;
}

static bool mf_id_is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool mf_id_is_valid(const char *text) {
  if (!text) return false;
  for (size_t i = 0; i < MF_ID_LEN; i++) {
    char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!mf_id_is_hex(c)) {
      return false; /* also stops at a NUL inside the string */
    }
  }
  if (text[MF_ID_LEN] != '\0') return false;
  if (text[14] != '4') return false;
  return strchr("89ab", text[19]) != NULL;
}
