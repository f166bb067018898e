/* Fuzzes the STUN path a worker runs on every datagram that looks like STUN:
 * classification, ufrag peek and full request handling by one ICE object.
 *
 * Almost every mutation breaks FINGERPRINT or MESSAGE-INTEGRITY, which would keep the
 * fuzzer out of everything behind authentication. So each input is fed twice: as is,
 * and (when it ends with MESSAGE-INTEGRITY + FINGERPRINT, as the seeds do) re-signed
 * with the ICE object's password, which reaches attribute handling and the state
 * machine. The ICE object lives across inputs; now_ms advances so consent expires too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "node/ice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seeds in corpus/stun/ were built with these credentials. */
#define FUZZ_UFRAG "FuzzUfrag0123456"
#define FUZZ_PWD "FuzzPassword0123456789abcdef+/Xy"
#define RESIGN_MAX 4096

static mf_ice_t *ice;
static uint64_t now_ms;

static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static void put16(uint8_t *p, size_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

/* RFC 5389 §15.4/§15.5 over a copy whose last attributes are MI (24) + FP (8). */
static size_t resign(const uint8_t *in, size_t n, uint8_t *out) {
  if (n < 20 + 24 + 8 || n > RESIGN_MAX) return 0;
  size_t mi = n - 32, fp = n - 8;
  if (get16(in + mi) != 0x0008 || get16(in + mi + 2) != 20 || get16(in + fp) != 0x8028 ||
      get16(in + fp + 2) != 4)
    return 0;
  memcpy(out, in, n);
  put16(out + 2, mi + 24 - 20);
  unsigned int hlen = 20;
  if (!HMAC(EVP_sha1(), FUZZ_PWD, (int)strlen(FUZZ_PWD), out, mi, out + mi + 4, &hlen))
    return 0;
  put16(out + 2, n - 20);
  uint32_t crc = crc32_ieee(out, fp) ^ 0x5354554eu;
  out[fp + 4] = (uint8_t)(crc >> 24);
  out[fp + 5] = (uint8_t)(crc >> 16);
  out[fp + 6] = (uint8_t)(crc >> 8);
  out[fp + 7] = (uint8_t)crc;
  return n;
}

static void run_one(const uint8_t *data, size_t size, uint8_t port_seed, bool v6) {
  (void)mf_ice_is_stun(data, size);
  char ufrag[MF_ICE_CRED_MAX + 1];
  (void)mf_ice_peek_local_ufrag(data, size, ufrag, sizeof ufrag);
  char tiny[4];
  (void)mf_ice_peek_local_ufrag(data, size, tiny, sizeof tiny);

  /* A few source ports, so several tuples, switches and eviction happen. */
  struct sockaddr_in6 from6;
  memset(&from6, 0, sizeof from6);
  from6.sin6_family = AF_INET6;
  from6.sin6_addr.s6_addr[15] = 1;
  from6.sin6_port = htons((uint16_t)(port_seed % 12));
  struct sockaddr_in from4;
  memset(&from4, 0, sizeof from4);
  from4.sin_family = AF_INET;
  from4.sin_addr.s_addr = htonl(0x7f000001);
  from4.sin_port = from6.sin6_port;
  const struct sockaddr *from =
      v6 ? (const struct sockaddr *)&from6 : (const struct sockaddr *)&from4;

  now_ms += 1000;
  uint8_t resp[MF_ICE_RESPONSE_MAX];
  size_t resp_len = sizeof resp;
  mf_ice_result_t res;
  mf_err_t err = mf_ice_handle_request(ice, data, size, from, now_ms, resp, &resp_len, &res);
  if (resp_len > sizeof resp) abort();
  if (err == MF_OK && resp_len == 0) abort(); /* a valid check is always answered */
  if (resp_len != 0 && !mf_ice_is_stun(data, size)) abort(); /* never answer non-STUN */
  if (resp_len != 0 && !mf_ice_is_stun(resp, resp_len)) abort();
  if (mf_ice_state(ice) != res.state) abort();
  if ((mf_ice_state(ice) == MF_ICE_STATE_CONNECTED ||
       mf_ice_state(ice) == MF_ICE_STATE_COMPLETED) != (mf_ice_selected_tuple(ice) != NULL))
    abort();
  (void)mf_ice_tick(ice, now_ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ice && mf_ice_create(FUZZ_UFRAG, FUZZ_PWD, &ice) != MF_OK) abort();
  uint8_t port_seed = size > 0 ? data[size / 2] : 0;
  run_one(data, size, port_seed, size & 1);

  static uint8_t signed_copy[RESIGN_MAX];
  size_t n = resign(data, size, signed_copy);
  if (n > 0) {
    /* Exact-size heap copy, so reads past the end are caught by ASan. */
    uint8_t *copy = malloc(n);
    if (!copy) abort();
    memcpy(copy, signed_copy, n);
    run_one(copy, n, port_seed, !(size & 1));
    free(copy);
  }
  return 0;
}
