#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "node/api/jwt.h"

static const uint8_t SECRET[] = "0123456789abcdef0123456789abcdef";
#define SECRET_LEN (sizeof SECRET - 1)
#define NOW 1800000000LL

/* Builds header.payload.signature from raw JSON texts, signed with key (or a given
 * signature text), the way a foreign minter or an attacker would. */
static void forge(const char *header, const char *payload, const uint8_t *key, size_t key_len,
                  const char *sig_override, char *out, size_t cap) {
  size_t n = 0, o = 0;
  assert_int_equal(mf_jwt_b64url_encode((const uint8_t *)header, strlen(header), out, cap, &n), MF_OK);
  o = n;
  out[o++] = '.';
  assert_int_equal(mf_jwt_b64url_encode((const uint8_t *)payload, strlen(payload), out + o, cap - o, &n), MF_OK);
  o += n;
  uint8_t mac[32];
  unsigned mac_len = 0;
  HMAC(EVP_sha256(), key, (int)key_len, (const uint8_t *)out, o, mac, &mac_len);
  out[o++] = '.';
  if (sig_override) {
    snprintf(out + o, cap - o, "%s", sig_override);
  } else {
    assert_int_equal(mf_jwt_b64url_encode(mac, 32, out + o, cap - o, &n), MF_OK);
  }
}

static const char HS256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static void test_b64url_roundtrip(void **state) {
  uint8_t in[64], back[64];
  char text[128];
  for (size_t len = 0; len < sizeof in; len++) {
    for (size_t i = 0; i < len; i++) in[i] = (uint8_t)(i * 37 + len);
    size_t n = 0, m = 0;
    assert_int_equal(mf_jwt_b64url_encode(in, len, text, sizeof text, &n), MF_OK);
    assert_int_equal(strlen(text), n);
    assert_null(strchr(text, '='));
    assert_int_equal(mf_jwt_b64url_decode(text, n, back, sizeof back, &m), MF_OK);
    assert_int_equal(m, len);
    assert_memory_equal(in, back, len);
  }
}

static void test_b64url_rejects(void **state) {
  static const struct {
    const char *text;
    mf_err_t err;
  } cases[] = {
      {"YQ==", MF_ERR_PARSE},  /* padding */
      {"Y", MF_ERR_PARSE},     /* 4k+1 characters */
      {"YR", MF_ERR_PARSE},    /* non-zero leftover bits */
      {"Y+8", MF_ERR_PARSE},   /* standard alphabet, not url */
      {"Y/8", MF_ERR_PARSE},
      {"a b", MF_ERR_PARSE},
      {"YQ", MF_OK},
      {"-_8", MF_OK},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t out[16];
    size_t n = 0;
    assert_int_equal(mf_jwt_b64url_decode(cases[i].text, strlen(cases[i].text), out, sizeof out, &n),
                     cases[i].err);
  }
  uint8_t small[1];
  assert_int_equal(mf_jwt_b64url_decode("YWJj", 4, small, sizeof small, NULL), MF_ERR_FULL);
  char tiny[4];
  assert_int_equal(mf_jwt_b64url_encode((const uint8_t *)"abc", 3, tiny, sizeof tiny, NULL), MF_ERR_FULL);
}

static void test_mint_then_verify(void **state) {
  mf_jwt_claims_t c = {.sub = "alice", .room = "lobby", .exp = NOW + 60, .grants = MF_JWT_GRANT_JOIN};
  char tok[MF_JWT_TOKEN_MAX];
  size_t len = 0;
  assert_int_equal(mf_jwt_mint(&c, SECRET, SECRET_LEN, tok, sizeof tok, &len), MF_OK);
  assert_int_equal(strlen(tok), len);
  mf_jwt_claims_t out;
  char why[MF_JWT_ERROR_MAX];
  assert_int_equal(mf_jwt_verify(tok, len, SECRET, SECRET_LEN, NOW, &out, why, sizeof why), MF_OK);
  assert_string_equal(out.sub, "alice");
  assert_string_equal(out.room, "lobby");
  assert_int_equal(out.exp, NOW + 60);
  assert_int_equal(out.grants, MF_JWT_GRANT_JOIN);
  assert_true(mf_jwt_allows_room(&out, "lobby"));
  assert_false(mf_jwt_allows_room(&out, "other"));

  mf_jwt_claims_t admin = {.sub = "ops", .exp = NOW + 1, .grants = MF_JWT_GRANT_ADMIN};
  assert_int_equal(mf_jwt_mint(&admin, SECRET, SECRET_LEN, tok, sizeof tok, &len), MF_OK);
  assert_int_equal(mf_jwt_verify(tok, len, SECRET, SECRET_LEN, NOW, &out, NULL, 0), MF_OK);
  assert_true(mf_jwt_allows_room(&out, "anything"));
  assert_string_equal(out.room, "");

  /* Expires exactly at exp. */
  assert_int_equal(mf_jwt_verify(tok, len, SECRET, SECRET_LEN, NOW + 1, &out, why, sizeof why),
                   MF_ERR_TIMEOUT);
  assert_non_null(strstr(why, "expired"));
  /* Another secret. */
  assert_int_equal(mf_jwt_verify(tok, len, (const uint8_t *)"other", 5, NOW, &out, why, sizeof why),
                   MF_ERR_AUTH);
  assert_string_equal(out.sub, "");
}

static void test_mint_rejects(void **state) {
  char tok[MF_JWT_TOKEN_MAX];
  mf_jwt_claims_t no_sub = {.exp = NOW, .grants = MF_JWT_GRANT_ADMIN};
  assert_int_equal(mf_jwt_mint(&no_sub, SECRET, SECRET_LEN, tok, sizeof tok, NULL), MF_ERR_INVALID_ARG);
  mf_jwt_claims_t no_grant = {.sub = "a", .exp = NOW};
  assert_int_equal(mf_jwt_mint(&no_grant, SECRET, SECRET_LEN, tok, sizeof tok, NULL), MF_ERR_INVALID_ARG);
  mf_jwt_claims_t join_no_room = {.sub = "a", .exp = NOW, .grants = MF_JWT_GRANT_JOIN};
  assert_int_equal(mf_jwt_mint(&join_no_room, SECRET, SECRET_LEN, tok, sizeof tok, NULL), MF_ERR_INVALID_ARG);
  mf_jwt_claims_t ok = {.sub = "a", .exp = NOW, .grants = MF_JWT_GRANT_ADMIN};
  assert_int_equal(mf_jwt_mint(&ok, SECRET, 0, tok, sizeof tok, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_jwt_mint(&ok, SECRET, SECRET_LEN, tok, 40, NULL), MF_ERR_FULL);
}

static void test_verify_table(void **state) {
  static const char good_payload[] =
      "{\"sub\":\"bob\",\"room\":\"r1\",\"exp\":1800000100,\"grants\":[\"join\"]}";
  char long_sub[400];
  snprintf(long_sub, sizeof long_sub,
           "{\"sub\":\"%0200d\",\"exp\":1800000100,\"grants\":[\"admin\"]}", 7);
  const struct {
    const char *name;
    const char *header;
    const char *payload;
    const char *sig; /* NULL = correct HMAC */
    mf_err_t err;
    const char *why; /* substring of the reason */
  } cases[] = {
      {"valid", HS256, good_payload, NULL, MF_OK, ""},
      {"valid no typ", "{\"alg\":\"HS256\"}", good_payload, NULL, MF_OK, ""},
      {"valid real exp", HS256, "{\"sub\":\"b\",\"exp\":1800000100.5,\"grants\":[\"admin\"]}", NULL, MF_OK, ""},
      {"expired", HS256, "{\"sub\":\"b\",\"exp\":1799999999,\"grants\":[\"admin\"]}", NULL, MF_ERR_TIMEOUT, "expired"},
      {"alg none", "{\"alg\":\"none\"}", good_payload, "", MF_ERR_UNSUPPORTED, "HS256"},
      {"alg HS512", "{\"alg\":\"HS512\"}", good_payload, NULL, MF_ERR_UNSUPPORTED, "HS256"},
      {"alg RS256", "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", good_payload, NULL, MF_ERR_UNSUPPORTED, "HS256"},
      {"alg missing", "{\"typ\":\"JWT\"}", good_payload, NULL, MF_ERR_PARSE, "alg"},
      {"typ other", "{\"alg\":\"HS256\",\"typ\":\"JWE\"}", good_payload, NULL, MF_ERR_UNSUPPORTED, "typ"},
      {"header not json", "{alg", good_payload, NULL, MF_ERR_PARSE, "header is not JSON"},
      {"header array", "[1]", good_payload, NULL, MF_ERR_PARSE, "object"},
      {"bad signature", HS256, good_payload, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", MF_ERR_AUTH, "signature"},
      {"short signature", HS256, good_payload, "AAAA", MF_ERR_PARSE, "signature"},
      {"signature bad b64", HS256, good_payload, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", MF_ERR_PARSE, "signature"},
      {"payload not json", HS256, "not json", NULL, MF_ERR_PARSE, "payload is not JSON"},
      {"payload string", HS256, "\"x\"", NULL, MF_ERR_PARSE, "payload is not JSON"},
      {"payload array", HS256, "[1]", NULL, MF_ERR_PARSE, "payload is not a JSON object"},
      {"no sub", HS256, "{\"exp\":1800000100,\"grants\":[\"admin\"]}", NULL, MF_ERR_INVALID_ARG, "'sub'"},
      {"sub number", HS256, "{\"sub\":5,\"exp\":1800000100,\"grants\":[\"admin\"]}", NULL, MF_ERR_INVALID_ARG, "'sub'"},
      {"sub empty", HS256, "{\"sub\":\"\",\"exp\":1800000100,\"grants\":[\"admin\"]}", NULL, MF_ERR_INVALID_ARG, "'sub'"},
      {"no exp", HS256, "{\"sub\":\"b\",\"grants\":[\"admin\"]}", NULL, MF_ERR_INVALID_ARG, "'exp'"},
      {"exp string", HS256, "{\"sub\":\"b\",\"exp\":\"1\",\"grants\":[\"admin\"]}", NULL, MF_ERR_INVALID_ARG, "'exp'"},
      {"no grants", HS256, "{\"sub\":\"b\",\"exp\":1800000100}", NULL, MF_ERR_INVALID_ARG, "'grants'"},
      {"grants string", HS256, "{\"sub\":\"b\",\"exp\":1800000100,\"grants\":\"admin\"}", NULL, MF_ERR_INVALID_ARG, "array"},
      {"grants empty", HS256, "{\"sub\":\"b\",\"exp\":1800000100,\"grants\":[]}", NULL, MF_ERR_INVALID_ARG, "empty"},
      {"grant unknown", HS256, "{\"sub\":\"b\",\"exp\":1800000100,\"grants\":[\"root\"]}", NULL, MF_ERR_INVALID_ARG, "unknown"},
      {"grant number", HS256, "{\"sub\":\"b\",\"exp\":1800000100,\"grants\":[1]}", NULL, MF_ERR_INVALID_ARG, "not a string"},
      {"join without room", HS256, "{\"sub\":\"b\",\"exp\":1800000100,\"grants\":[\"join\"]}", NULL, MF_ERR_INVALID_ARG, "room"},
      {"room number", HS256, "{\"sub\":\"b\",\"room\":1,\"exp\":1800000100,\"grants\":[\"join\"]}", NULL, MF_ERR_INVALID_ARG, "'room'"},
      {"duplicate key", HS256, "{\"sub\":\"b\",\"sub\":\"c\",\"exp\":1800000100,\"grants\":[\"admin\"]}", NULL, MF_ERR_PARSE, "JSON"},
      {"sub too long", HS256, long_sub, NULL, MF_ERR_LIMIT, "longer"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char tok[2 * MF_JWT_TOKEN_MAX];
    forge(cases[i].header, cases[i].payload, SECRET, SECRET_LEN, cases[i].sig, tok, sizeof tok);
    mf_jwt_claims_t out;
    char why[MF_JWT_ERROR_MAX] = "";
    mf_err_t err = mf_jwt_verify(tok, strlen(tok), SECRET, SECRET_LEN, NOW, &out, why, sizeof why);
    if (err != cases[i].err || !strstr(why, cases[i].why)) {
      print_error("case '%s': got %s (%s)\n", cases[i].name, mf_err_name(err), why);
      fail();
    }
  }
}

static void test_verify_structure(void **state) {
  static const struct {
    const char *token;
    mf_err_t err;
  } cases[] = {
      {"", MF_ERR_PARSE},
      {"abc", MF_ERR_PARSE},
      {"a.b", MF_ERR_PARSE},
      {"a.b.c.d", MF_ERR_PARSE},
      {"..", MF_ERR_PARSE},
      {"!!!.e30.AAAA", MF_ERR_PARSE},
      {"eyJhbGciOiJIUzI1NiJ9..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", MF_ERR_AUTH},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_jwt_claims_t out;
    assert_int_equal(mf_jwt_verify(cases[i].token, strlen(cases[i].token), SECRET, SECRET_LEN, NOW,
                                   &out, NULL, 0),
                     cases[i].err);
  }
  /* Oversize, no secret. */
  static char big[MF_JWT_TOKEN_MAX + 2];
  memset(big, 'a', sizeof big - 1);
  mf_jwt_claims_t out;
  char why[MF_JWT_ERROR_MAX];
  assert_int_equal(mf_jwt_verify(big, sizeof big - 1, SECRET, SECRET_LEN, NOW, &out, why, sizeof why),
                   MF_ERR_LIMIT);
  assert_int_equal(mf_jwt_verify("a.b.c", 5, NULL, 0, NOW, &out, why, sizeof why), MF_ERR_INVALID_ARG);

  /* A token cut anywhere never verifies. */
  mf_jwt_claims_t c = {.sub = "x", .exp = NOW + 10, .grants = MF_JWT_GRANT_ADMIN};
  char tok[MF_JWT_TOKEN_MAX];
  size_t len = 0;
  assert_int_equal(mf_jwt_mint(&c, SECRET, SECRET_LEN, tok, sizeof tok, &len), MF_OK);
  for (size_t cut = 0; cut < len; cut++)
    assert_int_not_equal(mf_jwt_verify(tok, cut, SECRET, SECRET_LEN, NOW, &out, NULL, 0), MF_OK);
  /* Flipping any character breaks it too. */
  for (size_t i = 0; i < len; i++) {
    char copy[MF_JWT_TOKEN_MAX];
    memcpy(copy, tok, len);
    copy[i] = copy[i] == 'A' ? 'B' : 'A';
    assert_int_not_equal(mf_jwt_verify(copy, len, SECRET, SECRET_LEN, NOW, &out, NULL, 0), MF_OK);
  }
}

/* Downgrade attempts (RFC 8725 section 2.1): only the exact, case-sensitive "HS256" is
 * accepted, whatever signature accompanies the other algs, and a forged token is refused
 * before its claims are looked at. */
static void test_alg_downgrade(void **state) {
  static const char payload[] = "{\"sub\":\"eve\",\"exp\":1800000100,\"grants\":[\"admin\"]}";
  static const char expired[] = "{\"sub\":\"eve\",\"exp\":1,\"grants\":[\"admin\"]}";
  static const uint8_t OTHER[] = "another secret of 32 bytes......";
  const struct {
    const char *name, *header, *payload;
    const uint8_t *key; /* NULL = SECRET */
    const char *sig;    /* NULL = HMAC with key */
    mf_err_t err;
    const char *why;
  } cases[] = {
      {"none, empty sig", "{\"alg\":\"none\"}", payload, NULL, "", MF_ERR_UNSUPPORTED, "HS256"},
      {"None", "{\"alg\":\"None\"}", payload, NULL, "", MF_ERR_UNSUPPORTED, "HS256"},
      {"NONE", "{\"alg\":\"NONE\",\"typ\":\"JWT\"}", payload, NULL, "", MF_ERR_UNSUPPORTED, "HS256"},
      {"nOnE", "{\"alg\":\"nOnE\"}", payload, NULL, "", MF_ERR_UNSUPPORTED, "HS256"},
      {"none with a valid HMAC", "{\"alg\":\"none\"}", payload, NULL, NULL, MF_ERR_UNSUPPORTED, "HS256"},
      {"hs256 lower case", "{\"alg\":\"hs256\"}", payload, NULL, NULL, MF_ERR_UNSUPPORTED, "HS256"},
      /* jansson refuses \u0000 without JSON_ALLOW_NUL: "HS256\0..." never reaches strcmp. */
      {"HS256 + NUL", "{\"alg\":\"HS256\\u0000\"}", payload, NULL, NULL, MF_ERR_PARSE, "not JSON"},
      {"HS256 + space", "{\"alg\":\"HS256 \"}", payload, NULL, NULL, MF_ERR_UNSUPPORTED, "HS256"},
      {"alg empty", "{\"alg\":\"\"}", payload, NULL, NULL, MF_ERR_UNSUPPORTED, "HS256"},
      {"alg null", "{\"alg\":null}", payload, NULL, "", MF_ERR_PARSE, "alg"},
      {"alg array", "{\"alg\":[\"HS256\"]}", payload, NULL, NULL, MF_ERR_PARSE, "alg"},
      {"HS256, signature stripped", HS256, payload, NULL, "", MF_ERR_PARSE, "signature"},
      {"HS256, other secret", HS256, payload, OTHER, NULL, MF_ERR_AUTH, "signature"},
      /* An attacker's expired token is a signature failure, not an expiry: claims of an
       * unauthenticated token are never parsed. */
      {"expired, other secret", HS256, expired, OTHER, NULL, MF_ERR_AUTH, "signature"},
      {"expired, right secret", HS256, expired, NULL, NULL, MF_ERR_TIMEOUT, "expired"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char tok[2 * MF_JWT_TOKEN_MAX];
    const uint8_t *key = cases[i].key ? cases[i].key : SECRET;
    forge(cases[i].header, cases[i].payload, key, SECRET_LEN, cases[i].sig, tok, sizeof tok);
    mf_jwt_claims_t out;
    char why[MF_JWT_ERROR_MAX] = "";
    mf_err_t err = mf_jwt_verify(tok, strlen(tok), SECRET, SECRET_LEN, NOW, &out, why, sizeof why);
    if (err != cases[i].err || !strstr(why, cases[i].why) || out.sub[0]) {
      print_error("case '%s': got %s (%s)\n", cases[i].name, mf_err_name(err), why);
      fail();
    }
  }
}

/* A join token opens exactly its own room: no prefix, suffix, case folding or empty name. */
static void test_room_scope(void **state) {
  mf_jwt_claims_t c = {.sub = "alice", .room = "lobby", .exp = NOW + 60, .grants = MF_JWT_GRANT_JOIN};
  char tok[MF_JWT_TOKEN_MAX];
  size_t len = 0;
  assert_int_equal(mf_jwt_mint(&c, SECRET, SECRET_LEN, tok, sizeof tok, &len), MF_OK);
  mf_jwt_claims_t join;
  assert_int_equal(mf_jwt_verify(tok, len, SECRET, SECRET_LEN, NOW, &join, NULL, 0), MF_OK);
  mf_jwt_claims_t a = {.sub = "ops", .exp = NOW + 60, .grants = MF_JWT_GRANT_ADMIN};
  assert_int_equal(mf_jwt_mint(&a, SECRET, SECRET_LEN, tok, sizeof tok, &len), MF_OK);
  mf_jwt_claims_t admin;
  assert_int_equal(mf_jwt_verify(tok, len, SECRET, SECRET_LEN, NOW, &admin, NULL, 0), MF_OK);

  static const struct {
    const char *room;
    bool join, admin;
  } cases[] = {
      {"lobby", true, true},   {"lobby2", false, true}, {"lobb", false, true},
      {"Lobby", false, true},  {"LOBBY", false, true},  {"lobby ", false, true},
      {" lobby", false, true}, {"", false, true},       {"other", false, true},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (mf_jwt_allows_room(&join, cases[i].room) != cases[i].join ||
        mf_jwt_allows_room(&admin, cases[i].room) != cases[i].admin) {
      print_error("room '%s'\n", cases[i].room);
      fail();
    }
  }
  assert_false(mf_jwt_allows_room(&join, NULL));
  assert_false(mf_jwt_allows_room(&admin, NULL));
  assert_false(mf_jwt_allows_room(NULL, "lobby"));
  /* Claims that failed verification are zeroed: they open nothing. */
  mf_jwt_claims_t failed;
  assert_int_not_equal(mf_jwt_verify("a.b.c", 5, SECRET, SECRET_LEN, NOW, &failed, NULL, 0), MF_OK);
  assert_false(mf_jwt_allows_room(&failed, ""));
  assert_false(mf_jwt_allows_room(&failed, "lobby"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_b64url_roundtrip), cmocka_unit_test(test_b64url_rejects),
      cmocka_unit_test(test_mint_then_verify),  cmocka_unit_test(test_mint_rejects),
      cmocka_unit_test(test_verify_table),      cmocka_unit_test(test_verify_structure),
      cmocka_unit_test(test_alg_downgrade),     cmocka_unit_test(test_room_scope),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
