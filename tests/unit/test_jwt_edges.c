/* JWT edges beyond test_jwt.c: tokens correctly signed (so the claim checks are reached)
 * with each malformed header or claim, the base64url helpers' argument and capacity checks,
 * mint's refusals and buffer limits, and allows_room on missing input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "node/api/jwt.h"

static const uint8_t secret[] = "edge-secret";
#define SECRET_LEN (sizeof secret - 1)
#define NOW 1700000000

/* header.payload.signature, each part base64url of the given text, HMAC-SHA256 with secret. */
static size_t sign(const char *header, const char *payload, char *out, size_t cap) {
  size_t o = 0, n = 0;
  assert_int_equal(mf_jwt_b64url_encode((const uint8_t *)header, strlen(header), out, cap, &n), MF_OK);
  o += n;
  out[o++] = '.';
  assert_int_equal(mf_jwt_b64url_encode((const uint8_t *)payload, strlen(payload), out + o, cap - o, &n), MF_OK);
  o += n;
  uint8_t mac[32];
  unsigned int mac_len = 0;
  assert_non_null(HMAC(EVP_sha256(), secret, (int)SECRET_LEN, (const uint8_t *)out, o, mac, &mac_len));
  out[o++] = '.';
  assert_int_equal(mf_jwt_b64url_encode(mac, mac_len, out + o, cap - o, &n), MF_OK);
  return o + n;
}

static const char *const hs256 = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static void test_signed_tokens_with_bad_claims(void **state) {
  (void)state;
  static const struct {
    const char *header, *payload;
    mf_err_t want;
    const char *why;
  } cases[] = {
      {hs256, "{\"sub\":\"u\",\"room\":\"r\",\"exp\":1800000000,\"grants\":[\"join\"]}", MF_OK, ""},
      /* NumericDate with a fraction */
      {hs256, "{\"sub\":\"u\",\"exp\":1800000000.5,\"grants\":[\"admin\"]}", MF_OK, ""},
      {"[1]", "{}", MF_ERR_PARSE, "header is not a JSON object"},
      /* an escaped NUL is refused by the JSON parser already */
      {"{\"alg\":\"HS256\\u0000x\"}", "{}", MF_ERR_PARSE, "header is not JSON"},
      {"{\"alg\":\"none\"}", "{}", MF_ERR_UNSUPPORTED, "not HS256"},
      {"{\"alg\":\"HS256\",\"typ\":1}", "{}", MF_ERR_UNSUPPORTED, "typ is not JWT"},
      {"{\"alg\":\"HS256\",\"typ\":\"JWS\"}", "{}", MF_ERR_UNSUPPORTED, "typ is not JWT"},
      {hs256, "[]", MF_ERR_PARSE, "payload is not a JSON object"},
      {hs256, "{\"sub\":5,\"exp\":1800000000,\"grants\":[\"admin\"]}", MF_ERR_INVALID_ARG, "'sub' is not a string"},
      {hs256, "{\"sub\":\"a\\u0000b\",\"exp\":1800000000,\"grants\":[\"admin\"]}", MF_ERR_PARSE, "payload is not JSON"},
      {hs256, "{\"sub\":\"\",\"exp\":1800000000,\"grants\":[\"admin\"]}", MF_ERR_INVALID_ARG, "'sub' is empty"},
      {hs256, "{\"sub\":\"u\",\"room\":[],\"exp\":1800000000,\"grants\":[\"admin\"]}", MF_ERR_INVALID_ARG, "'room' is not a string"},
      {hs256, "{\"sub\":\"u\",\"grants\":[\"admin\"]}", MF_ERR_INVALID_ARG, "no 'exp'"},
      {hs256, "{\"sub\":\"u\",\"exp\":1e30,\"grants\":[\"admin\"]}", MF_ERR_INVALID_ARG, "out of range"},
      {hs256, "{\"sub\":\"u\",\"exp\":\"soon\",\"grants\":[\"admin\"]}", MF_ERR_INVALID_ARG, "not a number"},
      {hs256, "{\"sub\":\"u\",\"exp\":1800000000}", MF_ERR_INVALID_ARG, "no 'grants'"},
      {hs256, "{\"sub\":\"u\",\"exp\":1800000000,\"grants\":\"admin\"}", MF_ERR_INVALID_ARG, "not an array"},
      {hs256, "{\"sub\":\"u\",\"exp\":1800000000,\"grants\":[]}", MF_ERR_INVALID_ARG, "is empty"},
      {hs256, "{\"sub\":\"u\",\"exp\":1800000000,\"grants\":[\"join\",\"join\",\"join\",\"join\",\"join\","
              "\"join\",\"join\",\"join\",\"join\",\"join\",\"join\",\"join\",\"join\",\"join\",\"join\","
              "\"join\",\"join\"]}", MF_ERR_LIMIT, "more than 16"},
      {hs256, "{\"sub\":\"u\",\"exp\":1800000000,\"grants\":[7]}", MF_ERR_INVALID_ARG, "grant 0 is not a string"},
      {hs256, "{\"sub\":\"u\",\"exp\":1800000000,\"grants\":[\"root\"]}", MF_ERR_INVALID_ARG, "grant 0 is unknown"},
      {hs256, "{\"sub\":\"u\",\"exp\":1800000000,\"grants\":[\"join\"]}", MF_ERR_INVALID_ARG, "has no 'room'"},
      {hs256, "{\"sub\":\"u\",\"exp\":1600000000,\"grants\":[\"admin\"]}", MF_ERR_TIMEOUT, "expired"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char tok[MF_JWT_TOKEN_MAX];
    size_t n = sign(cases[i].header, cases[i].payload, tok, sizeof tok);
    mf_jwt_claims_t c;
    char why[MF_JWT_ERROR_MAX];
    mf_err_t e = mf_jwt_verify(tok, n, secret, SECRET_LEN, NOW, &c, why, sizeof why);
    if (e != cases[i].want || !strstr(why, cases[i].why))
      print_error("case %zu (%s): %d %s\n", i, cases[i].payload, e, why);
    assert_int_equal(e, cases[i].want);
    assert_non_null(strstr(why, cases[i].why));
    if (e != MF_OK) assert_int_equal(c.grants, 0); /* nothing half-filled */
    /* without a reason buffer: the same verdict */
    assert_int_equal(mf_jwt_verify(tok, n, secret, SECRET_LEN, NOW, &c, NULL, 0), cases[i].want);
  }
  /* a 129-byte sub */
  char payload[400], tok[MF_JWT_TOKEN_MAX], why[MF_JWT_ERROR_MAX];
  char sub[MF_JWT_SUB_MAX + 2];
  memset(sub, 's', sizeof sub - 1);
  sub[sizeof sub - 1] = '\0';
  snprintf(payload, sizeof payload, "{\"sub\":\"%s\",\"exp\":1800000000,\"grants\":[\"admin\"]}", sub);
  size_t n = sign(hs256, payload, tok, sizeof tok);
  mf_jwt_claims_t c;
  assert_int_equal(mf_jwt_verify(tok, n, secret, SECRET_LEN, NOW, &c, why, sizeof why), MF_ERR_LIMIT);
  assert_non_null(strstr(why, "longer than 128"));
  /* no output */
  assert_int_equal(mf_jwt_verify(tok, n, secret, SECRET_LEN, NOW, NULL, why, sizeof why), MF_ERR_INVALID_ARG);
  assert_string_equal(why, "no output");
  assert_int_equal(mf_jwt_verify(tok, n, NULL, 0, NOW, &c, why, sizeof why), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_jwt_verify(NULL, 5, secret, SECRET_LEN, NOW, &c, why, sizeof why), MF_ERR_PARSE);
}

static void test_b64url_arguments(void **state) {
  (void)state;
  char out[16];
  uint8_t bin[16];
  size_t n = 99;
  assert_int_equal(mf_jwt_b64url_encode(NULL, 1, out, sizeof out, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_jwt_b64url_encode((const uint8_t *)"a", 1, NULL, 4, &n), MF_ERR_INVALID_ARG);
  /* "abc" needs 4 characters and the NUL */
  assert_int_equal(mf_jwt_b64url_encode((const uint8_t *)"abc", 3, out, 4, &n), MF_ERR_FULL);
  assert_int_equal(mf_jwt_b64url_encode((const uint8_t *)"abc", 3, out, 5, NULL), MF_OK);
  assert_string_equal(out, "YWJj");
  assert_int_equal(mf_jwt_b64url_encode(NULL, 0, out, 1, &n), MF_OK);
  assert_int_equal(n, 0);
  assert_string_equal(out, "");

  assert_int_equal(mf_jwt_b64url_decode(NULL, 4, bin, sizeof bin, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_jwt_b64url_decode("YWJj", 4, NULL, 3, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_jwt_b64url_decode("YWJj", 4, bin, 2, &n), MF_ERR_FULL);
  assert_int_equal(mf_jwt_b64url_decode("YWJjZ", 5, bin, sizeof bin, &n), MF_ERR_PARSE);
  assert_int_equal(mf_jwt_b64url_decode("YW=j", 4, bin, sizeof bin, &n), MF_ERR_PARSE);
  assert_int_equal(mf_jwt_b64url_decode("YWJj", 4, bin, 3, NULL), MF_OK);
  assert_memory_equal(bin, "abc", 3);
  /* the whole alphabet, - and _ included */
  assert_int_equal(mf_jwt_b64url_decode("-_-_", 4, bin, sizeof bin, &n), MF_OK);
  assert_int_equal(n, 3);
  assert_int_equal(bin[0], 0xfb);
  assert_int_equal(bin[1], 0xff);
  assert_int_equal(bin[2], 0xbf);
}

static void test_mint_refusals_and_limits(void **state) {
  (void)state;
  char out[1024];
  size_t n = 0;
  mf_jwt_claims_t c;
  memset(&c, 0, sizeof c);
  strcpy(c.sub, "alice");
  strcpy(c.room, "r1");
  c.exp = 1800000000;
  c.grants = MF_JWT_GRANT_JOIN;
  assert_int_equal(mf_jwt_mint(&c, secret, SECRET_LEN, out, sizeof out, &n), MF_OK);
  mf_jwt_claims_t back;
  assert_int_equal(mf_jwt_verify(out, n, secret, SECRET_LEN, NOW, &back, NULL, 0), MF_OK);
  assert_string_equal(back.room, "r1");

  assert_int_equal(mf_jwt_mint(NULL, secret, SECRET_LEN, out, sizeof out, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_jwt_mint(&c, NULL, SECRET_LEN, out, sizeof out, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_jwt_mint(&c, secret, 0, out, sizeof out, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_jwt_mint(&c, secret, SECRET_LEN, NULL, sizeof out, &n), MF_ERR_INVALID_ARG);
  mf_jwt_claims_t bad = c;
  bad.sub[0] = '\0';
  assert_int_equal(mf_jwt_mint(&bad, secret, SECRET_LEN, out, sizeof out, &n), MF_ERR_INVALID_ARG);
  bad = c;
  memset(bad.room, 'r', sizeof bad.room); /* no terminator within the field: too long */
  assert_int_equal(mf_jwt_mint(&bad, secret, SECRET_LEN, out, sizeof out, &n), MF_ERR_INVALID_ARG);
  bad = c;
  bad.grants = 0;
  assert_int_equal(mf_jwt_mint(&bad, secret, SECRET_LEN, out, sizeof out, &n), MF_ERR_INVALID_ARG);
  bad.grants = MF_JWT_GRANT_ADMIN | 4u;
  assert_int_equal(mf_jwt_mint(&bad, secret, SECRET_LEN, out, sizeof out, &n), MF_ERR_INVALID_ARG);
  bad = c;
  bad.room[0] = '\0'; /* join without a room */
  assert_int_equal(mf_jwt_mint(&bad, secret, SECRET_LEN, out, sizeof out, &n), MF_ERR_INVALID_ARG);
  bad.grants = MF_JWT_GRANT_ADMIN; /* admin needs none */
  assert_int_equal(mf_jwt_mint(&bad, secret, SECRET_LEN, out, sizeof out, &n), MF_OK);

  /* every capacity short of the token fails cleanly, leaving an empty string */
  size_t full = 0;
  assert_int_equal(mf_jwt_mint(&c, secret, SECRET_LEN, out, sizeof out, &full), MF_OK);
  for (size_t cap = 1; cap <= full; cap++) {
    out[0] = 'x';
    assert_int_equal(mf_jwt_mint(&c, secret, SECRET_LEN, out, cap, NULL), MF_ERR_FULL);
    assert_int_equal(out[0], '\0');
  }
  assert_int_equal(mf_jwt_mint(&c, secret, SECRET_LEN, out, full + 1, NULL), MF_OK);
}

static void test_allows_room(void **state) {
  (void)state;
  mf_jwt_claims_t c;
  memset(&c, 0, sizeof c);
  c.grants = MF_JWT_GRANT_JOIN;
  strcpy(c.room, "r1");
  assert_false(mf_jwt_allows_room(NULL, "r1"));
  assert_false(mf_jwt_allows_room(&c, NULL));
  assert_true(mf_jwt_allows_room(&c, "r1"));
  assert_false(mf_jwt_allows_room(&c, "r2"));
  c.room[0] = '\0';
  assert_false(mf_jwt_allows_room(&c, ""));
  c.grants = 0;
  strcpy(c.room, "r1");
  assert_false(mf_jwt_allows_room(&c, "r1"));
  c.grants = MF_JWT_GRANT_ADMIN;
  assert_true(mf_jwt_allows_room(&c, "anything"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_signed_tokens_with_bad_claims),
      cmocka_unit_test(test_b64url_arguments),
      cmocka_unit_test(test_mint_refusals_and_limits),
      cmocka_unit_test(test_allows_room),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
