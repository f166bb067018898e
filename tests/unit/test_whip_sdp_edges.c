/* WHIP/WHEP HTTP helpers beyond test_whip_sdp.c: percent-decoding of the room (either hex
 * case, truncated or non-hex escapes, escapes decoding to '/' or control bytes), resource ids
 * of the wrong shape, Authorization headers with odd spacing, and the transport reply
 * (router.createWebRtcTransport's JSON) with each field missing or malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/whip_sdp.h"

#define UUID "0b6e1c2a-5d4f-4e3a-9b8c-7d6e5f4a3b2c"

static void test_path_shapes(void **state) {
  (void)state;
  static const struct {
    const char *uri;
    mf_err_t want;
    const char *room, *id;
    bool whep;
  } cases[] = {
      {"/whip/a%20b", MF_OK, "a b", "", false},
      {"/whep/%4a%4A", MF_OK, "JJ", "", true},
      {"/whip/%e2%82%ac", MF_OK, "\xe2\x82\xac", "", false},
      {"/whip/r/" UUID "?x=1#f", MF_OK, "r", UUID, false},
      {"/whip/r/", MF_OK, "r", "", false},
      {"/whip/r%2", MF_ERR_NOT_FOUND, NULL, NULL, false},     /* escape cut short */
      {"/whip/r%", MF_ERR_NOT_FOUND, NULL, NULL, false},
      {"/whip/r%zz", MF_ERR_NOT_FOUND, NULL, NULL, false},    /* not hex */
      {"/whip/r%0g", MF_ERR_NOT_FOUND, NULL, NULL, false},
      {"/whip/r%G0", MF_ERR_NOT_FOUND, NULL, NULL, false},
      {"/whip/r%2Fx", MF_ERR_NOT_FOUND, NULL, NULL, false},   /* decodes to '/' */
      {"/whip/r%01", MF_ERR_NOT_FOUND, NULL, NULL, false},    /* control byte */
      {"/whip/r%7f", MF_ERR_NOT_FOUND, NULL, NULL, false},
      {"/whip//" UUID, MF_ERR_NOT_FOUND, NULL, NULL, false},   /* empty room */
      {"/whip/r/abc", MF_ERR_NOT_FOUND, NULL, NULL, false},    /* id too short */
      {"/whip/r/" UUID "/x", MF_ERR_NOT_FOUND, NULL, NULL, false},
      {"/whip/r/0b6e1c2a-5d4f-4e3a-9b8c/7d6e5f4a3b2", MF_ERR_NOT_FOUND, NULL, NULL, false},
      {"/whip/r/zzzzzzzz-5d4f-4e3a-9b8c-7d6e5f4a3b2c", MF_ERR_NOT_FOUND, NULL, NULL, false},
      {"/whop/room", MF_ERR_NOT_FOUND, NULL, NULL, false},
      {"/whip/", MF_ERR_NOT_FOUND, NULL, NULL, false},
      {NULL, MF_ERR_NOT_FOUND, NULL, NULL, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_whip_path_t p;
    mf_err_t e = mf_whip_path_parse(cases[i].uri, &p);
    if (e != cases[i].want) print_error("case %zu (%s): %d\n", i, cases[i].uri ? cases[i].uri : "NULL", e);
    assert_int_equal(e, cases[i].want);
    if (e != MF_OK) continue;
    assert_string_equal(p.room, cases[i].room);
    assert_string_equal(p.id, cases[i].id);
    assert_int_equal(p.whep, cases[i].whep);
  }
}

static void test_bearer_tokens(void **state) {
  (void)state;
  static const struct {
    const char *header;
    const char *token; /* NULL: refused */
  } cases[] = {
      {"Bearer abc", "abc"},
      {"  bearer\tabc", "abc"},
      {"BEARER   abc \t ", "abc"},
      {"Bearer a b", "a b"},
      {"Bearer", NULL},
      {"Bearer ", NULL},
      {"Bearer \t ", NULL},
      {"Bearerabc", NULL},
      {"Basic abc", NULL},
      {"", NULL},
      {NULL, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *t = NULL;
    size_t n = 0;
    bool ok = mf_whip_bearer(cases[i].header, &t, &n);
    assert_int_equal(ok, cases[i].token != NULL);
    if (!ok) continue;
    assert_int_equal(n, strlen(cases[i].token));
    assert_memory_equal(t, cases[i].token, n);
  }
}

#define ICE "\"iceParameters\":{\"usernameFragment\":\"uf\",\"password\":\"pw\"}"
#define FP "\"dtlsParameters\":{\"fingerprints\":[{\"algorithm\":\"sha-1\",\"value\":\"AA\"}," \
           "{\"algorithm\":\"sha-256\",\"value\":\"BB\"}]}"
#define CAND(x) "\"iceCandidates\":[" x "]"

static void test_transport_reply(void **state) {
  (void)state;
  static const struct {
    const char *json;
    mf_err_t want;
    const char *msg;
  } cases[] = {
      {"{\"id\":\"t\"," ICE "," FP "," CAND("{\"address\":\"1.2.3.4\",\"port\":5,\"priority\":1}") "}",
       MF_OK, NULL},
      /* mediasoup's older "ip", tcp with its tcpType, everything spelled out */
      {"{\"id\":\"t\"," ICE "," FP "," CAND("{\"ip\":\"::1\",\"port\":65535,\"priority\":4294967295,"
       "\"protocol\":\"tcp\",\"type\":\"host\",\"foundation\":\"f\",\"tcpType\":\"passive\"}") "}",
       MF_OK, NULL},
      {"{" ICE "," FP "," CAND("{\"address\":\"1.2.3.4\",\"port\":5,\"priority\":1}") "}",
       MF_ERR_PARSE, "without id"},
      {"{\"id\":\"t\",\"iceParameters\":{\"usernameFragment\":\"uf\"}," FP "}", MF_ERR_PARSE,
       "ICE parameters"},
      {"{\"id\":\"t\"," ICE ",\"dtlsParameters\":{\"fingerprints\":[{\"algorithm\":\"sha-1\",\"value\":\"AA\"},"
       "{\"value\":\"CC\"},{\"algorithm\":\"sha-256\"}]}}", MF_ERR_PARSE, "sha-256"},
      {"{\"id\":\"t\"," ICE "," FP "}", MF_ERR_PARSE, "without candidates"},
      {"{\"id\":\"t\"," ICE "," FP "," CAND("{\"port\":5,\"priority\":1}") "}", MF_ERR_PARSE, "malformed"},
      {"{\"id\":\"t\"," ICE "," FP "," CAND("{\"address\":\"a\",\"port\":0,\"priority\":1}") "}", MF_ERR_PARSE, "malformed"},
      {"{\"id\":\"t\"," ICE "," FP "," CAND("{\"address\":\"a\",\"port\":65536,\"priority\":1}") "}", MF_ERR_PARSE, "malformed"},
      {"{\"id\":\"t\"," ICE "," FP "," CAND("{\"address\":\"a\",\"port\":5,\"priority\":-1}") "}", MF_ERR_PARSE, "malformed"},
      {"{\"id\":\"t\"," ICE "," FP "," CAND("{\"address\":\"a\",\"port\":5,\"priority\":4294967296}") "}", MF_ERR_PARSE, "malformed"},
      {"{\"id\":\"t\"," ICE "," FP "," CAND("{\"address\":\"a\",\"port\":5,\"priority\":1,"
       "\"protocol\":\"a-protocol-name-longer-than-the-field\"}") "}", MF_ERR_PARSE, "malformed"},
      {"{\"id\":\"t\"," ICE "," FP "," CAND("{\"address\":\"a\",\"port\":5,\"priority\":1,"
       "\"type\":\"a-candidate-type-longer-than-the-field\"}") "}", MF_ERR_PARSE, "malformed"},
      {"{\"id\":\"t\"," ICE "," FP "," CAND("{\"address\":\"a\",\"port\":5,\"priority\":1,"
       "\"foundation\":\"" "0123456789012345678901234567890123456789012345678901234567890123456789" "\"}") "}",
       MF_ERR_PARSE, "malformed"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *j = json_loads(cases[i].json, 0, NULL);
    if (!j) print_error("case %zu: bad test JSON\n", i);
    assert_non_null(j);
    static mf_whip_transport_t t;
    char err[128] = "";
    mf_err_t e = mf_whip_transport_from_json(j, &t, err, sizeof err);
    if (e != cases[i].want) print_error("case %zu: %d %s\n", i, e, err);
    assert_int_equal(e, cases[i].want);
    if (cases[i].msg) assert_non_null(strstr(err, cases[i].msg));
    if (e == MF_OK) {
      assert_string_equal(t.fingerprint, "BB"); /* the sha-256 one, not the first */
      assert_int_equal(t.candidate_count, 1);
    }
    json_decref(j);
  }
  /* more candidates than an SDP carries: the first MF_SDP_MAX_CANDIDATES */
  json_t *j = json_loads("{\"id\":\"t\"," ICE "," FP "}", 0, NULL);
  json_t *cands = json_array();
  for (int i = 0; i < MF_SDP_MAX_CANDIDATES + 3; i++)
    json_array_append_new(cands, json_pack("{s:s, s:i, s:i}", "address", "10.0.0.1", "port", 1000 + i,
                                           "priority", i));
  json_object_set_new(j, "iceCandidates", cands);
  static mf_whip_transport_t t;
  char err[128];
  assert_int_equal(mf_whip_transport_from_json(j, &t, err, sizeof err), MF_OK);
  assert_int_equal(t.candidate_count, MF_SDP_MAX_CANDIDATES);
  assert_int_equal(t.candidates[MF_SDP_MAX_CANDIDATES - 1].port, 1000 + MF_SDP_MAX_CANDIDATES - 1);
  json_decref(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_path_shapes),
      cmocka_unit_test(test_bearer_tokens),
      cmocka_unit_test(test_transport_reply),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
