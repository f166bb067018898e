/* ICE-lite server: requests are built with libnice's own conncheck builder (what a real
 * full ICE agent sends) and responses are parsed back with libnice as the peer would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <stun/stunagent.h>
#include <stun/stunmessage.h>
#include <stun/usages/ice.h>

#include "node/ice.h"

#define LOCAL_UFRAG "LoCaLuFrAg012345"
#define LOCAL_PWD "LocalPassword0123456789abcdef+/X"
#define REMOTE_UFRAG "rEmO"

/* One request as a peer's agent builds it; the agent remembers the transaction and the
 * key so the response can be validated like the peer would. */
typedef struct {
  StunAgent agent;
  StunMessage msg;
  uint8_t buf[2048];
  size_t len;
  char pwd[128];
} peer_req_t;

static void peer_agent_init(peer_req_t *p, bool fingerprint) {
  memset(p, 0, sizeof *p);
  stun_agent_init(&p->agent, STUN_ALL_KNOWN_ATTRIBUTES, STUN_COMPATIBILITY_RFC5389,
                  STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS |
                      (fingerprint ? STUN_AGENT_USAGE_USE_FINGERPRINT : 0));
}

static void make_check_full(peer_req_t *p, const char *username, const char *pwd,
                            bool use_candidate, bool controlling) {
  peer_agent_init(p, true);
  snprintf(p->pwd, sizeof p->pwd, "%s", pwd);
  p->len = stun_usage_ice_conncheck_create(
      &p->agent, &p->msg, p->buf, sizeof p->buf, (const uint8_t *)username,
      username ? strlen(username) : 0, (const uint8_t *)p->pwd, strlen(p->pwd),
      use_candidate, controlling, 0x6e7f00ff, 0x1122334455667788ULL, NULL,
      STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
  assert_true(p->len > 20);
}

static void make_check(peer_req_t *p, bool use_candidate) {
  make_check_full(p, LOCAL_UFRAG ":" REMOTE_UFRAG, LOCAL_PWD, use_candidate, true);
}

/* A Binding request assembled attribute by attribute, for shapes conncheck_create
 * cannot produce. */
typedef struct {
  bool priority;
  bool controlling;
  uint16_t extra_attr; /* 0 = none */
  StunMethod method;
  StunClass cls; /* STUN_REQUEST or STUN_INDICATION */
} custom_t;

static void make_custom(peer_req_t *p, const custom_t *c) {
  peer_agent_init(p, true);
  snprintf(p->pwd, sizeof p->pwd, "%s", LOCAL_PWD);
  if (c->cls == STUN_INDICATION)
    assert_true(stun_agent_init_indication(&p->agent, &p->msg, p->buf, sizeof p->buf,
                                           c->method));
  else
    assert_true(
        stun_agent_init_request(&p->agent, &p->msg, p->buf, sizeof p->buf, c->method));
  if (c->priority)
    assert_int_equal(stun_message_append32(&p->msg, STUN_ATTRIBUTE_PRIORITY, 12345),
                     STUN_MESSAGE_RETURN_SUCCESS);
  if (c->controlling)
    assert_int_equal(stun_message_append64(&p->msg, STUN_ATTRIBUTE_ICE_CONTROLLING, 7),
                     STUN_MESSAGE_RETURN_SUCCESS);
  if (c->extra_attr)
    assert_int_equal(
        stun_message_append_bytes(&p->msg, (StunAttribute)c->extra_attr, "abcd", 4),
        STUN_MESSAGE_RETURN_SUCCESS);
  const char *user = LOCAL_UFRAG ":" REMOTE_UFRAG;
  assert_int_equal(
      stun_message_append_bytes(&p->msg, STUN_ATTRIBUTE_USERNAME, user, strlen(user)),
      STUN_MESSAGE_RETURN_SUCCESS);
  p->len = stun_agent_finish_message(&p->agent, &p->msg, (const uint8_t *)p->pwd,
                                     strlen(p->pwd));
  assert_true(p->len > 20);
}

static struct sockaddr_storage v4(const char *ip, uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *s = (struct sockaddr_in *)&ss;
  s->sin_family = AF_INET;
  s->sin_port = htons(port);
  assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
  return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  assert_int_equal(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
  return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static mf_ice_t *new_ice(void) {
  mf_ice_t *ice = NULL;
  assert_int_equal(mf_ice_create(LOCAL_UFRAG, LOCAL_PWD, &ice), MF_OK);
  assert_non_null(ice);
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_NEW);
  assert_null(mf_ice_selected_tuple(ice));
  return ice;
}

typedef struct {
  uint8_t buf[MF_ICE_RESPONSE_MAX];
  size_t len;
  mf_ice_result_t res;
} reply_t;

static mf_err_t feed(mf_ice_t *ice, const peer_req_t *p, const struct sockaddr_storage *from,
                     uint64_t now, reply_t *r) {
  memset(r, 0xa5, sizeof *r);
  r->len = sizeof r->buf;
  return mf_ice_handle_request(ice, p->buf, p->len, SA(*from), now, r->buf, &r->len,
                               &r->res);
}

/* The peer's view of a success response: authentic (its key), and the mapped address
 * it reports. */
static void assert_success_reply(peer_req_t *p, const reply_t *r,
                                 const struct sockaddr_storage *expect) {
  StunMessage m;
  assert_true(r->len > 20);
  assert_int_equal(stun_agent_validate(&p->agent, &m, r->buf, r->len, NULL, NULL),
                   STUN_VALIDATION_SUCCESS);
  assert_int_equal(stun_message_get_class(&m), STUN_RESPONSE);
  assert_int_equal(stun_message_get_method(&m), STUN_BINDING);
  assert_true(stun_message_has_attribute(&m, STUN_ATTRIBUTE_MESSAGE_INTEGRITY));
  assert_true(stun_message_has_attribute(&m, STUN_ATTRIBUTE_FINGERPRINT));
  StunTransactionId a, b;
  stun_message_id(&m, a);
  stun_message_id(&p->msg, b);
  assert_memory_equal(a, b, sizeof a);
  struct sockaddr_storage mapped;
  socklen_t mlen = sizeof mapped;
  assert_int_equal(
      stun_usage_ice_conncheck_process(&m, &mapped, &mlen, STUN_USAGE_ICE_COMPATIBILITY_RFC5245),
      STUN_USAGE_ICE_RETURN_SUCCESS);
  assert_true(mf_ice_tuple_equal(SA(mapped), SA(*expect)));
}

/* Error code of an error response, checking its framing; -1 if not one. */
static int error_code(const reply_t *r, bool *has_integrity) {
  if (r->len < 20) return -1;
  if (stun_message_validate_buffer_length(r->buf, r->len, true) != (int)r->len) return -1;
  StunMessage m;
  memset(&m, 0, sizeof m);
  m.buffer = (uint8_t *)r->buf;
  m.buffer_len = r->len;
  if (stun_message_get_class(&m) != STUN_ERROR) return -1;
  if (!stun_message_has_attribute(&m, STUN_ATTRIBUTE_FINGERPRINT)) return -1;
  if (has_integrity)
    *has_integrity = stun_message_has_attribute(&m, STUN_ATTRIBUTE_MESSAGE_INTEGRITY);
  int code = -1;
  if (stun_message_find_error(&m, &code) != STUN_MESSAGE_RETURN_SUCCESS) return -1;
  return code;
}

/* ---------------------------------------------------------------------------------- */

static void test_state_names(void **state) {
  (void)state;
  assert_string_equal(mf_ice_state_name(MF_ICE_STATE_NEW), "new");
  assert_string_equal(mf_ice_state_name(MF_ICE_STATE_CONNECTED), "connected");
  assert_string_equal(mf_ice_state_name(MF_ICE_STATE_COMPLETED), "completed");
  assert_string_equal(mf_ice_state_name(MF_ICE_STATE_DISCONNECTED), "disconnected");
  assert_string_equal(mf_ice_state_name(MF_ICE_STATE_CLOSED), "closed");
  assert_string_equal(mf_ice_state_name((mf_ice_state_t)42), "unknown");
}

static void assert_ice_chars(const char *s, size_t n) {
  assert_int_equal(strlen(s), n);
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    assert_true((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                (c >= '0' && c <= '9') || c == '+' || c == '/');
  }
}

static void test_generate_credentials(void **state) {
  (void)state;
  char u1[MF_ICE_UFRAG_LEN + 1], p1[MF_ICE_PWD_LEN + 1];
  char u2[MF_ICE_UFRAG_LEN + 1], p2[MF_ICE_PWD_LEN + 1];
  assert_int_equal(mf_ice_generate_credentials(u1, p1), MF_OK);
  assert_int_equal(mf_ice_generate_credentials(u2, p2), MF_OK);
  assert_ice_chars(u1, MF_ICE_UFRAG_LEN);
  assert_ice_chars(p1, MF_ICE_PWD_LEN);
  assert_string_not_equal(u1, u2);
  assert_string_not_equal(p1, p2);
  assert_int_equal(mf_ice_generate_credentials(NULL, p1), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_ice_generate_credentials(u1, NULL), MF_ERR_INVALID_ARG);
  /* Generated credentials are accepted by mf_ice_create. */
  mf_ice_t *ice = NULL;
  assert_int_equal(mf_ice_create(u1, p1, &ice), MF_OK);
  assert_string_equal(mf_ice_local_ufrag(ice), u1);
  assert_string_equal(mf_ice_local_pwd(ice), p1);
  assert_null(mf_ice_old_ufrag(ice));
  mf_ice_free(ice);
}

static void test_create_rejects_bad_credentials(void **state) {
  (void)state;
  char long_cred[MF_ICE_CRED_MAX + 2];
  memset(long_cred, 'a', sizeof long_cred - 1);
  long_cred[sizeof long_cred - 1] = '\0';
  static const char *good_pwd = "abcdefghijklmnopqrstuv"; /* 22 chars: minimum */
  const struct {
    const char *ufrag, *pwd;
  } bad[] = {
      {NULL, good_pwd},   {"abcd", NULL},        {"abc", good_pwd},
      {"ab:d", good_pwd}, {"abcd", "tooshort"},  {"ab d", good_pwd},
      {"", good_pwd},     {long_cred, good_pwd}, {"abcd", long_cred},
      {"abcd", "abcdefghijklmnopqrstu-"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mf_ice_t *ice = (mf_ice_t *)&bad; /* must be reset to NULL */
    assert_int_equal(mf_ice_create(bad[i].ufrag, bad[i].pwd, &ice), MF_ERR_INVALID_ARG);
    assert_null(ice);
  }
  mf_ice_t *ice = NULL;
  assert_int_equal(mf_ice_create("abcd", good_pwd, NULL), MF_ERR_INVALID_ARG);
  long_cred[MF_ICE_CRED_MAX] = '\0'; /* exactly the maximum */
  assert_int_equal(mf_ice_create(long_cred, long_cred, &ice), MF_OK);
  mf_ice_free(ice);
  mf_ice_free(NULL);
}

static void test_is_stun(void **state) {
  (void)state;
  peer_req_t p;
  make_check(&p, false);
  assert_true(mf_ice_is_stun(p.buf, p.len));
  assert_true(mf_ice_is_stun(p.buf, 20));
  assert_false(mf_ice_is_stun(p.buf, 19));
  assert_false(mf_ice_is_stun(NULL, 100));
  uint8_t b[64];
  memcpy(b, p.buf, sizeof b);
  b[0] = 0x80; /* RTP */
  assert_false(mf_ice_is_stun(b, sizeof b));
  b[0] = 22; /* DTLS handshake */
  assert_false(mf_ice_is_stun(b, sizeof b));
  b[0] = 0x03; /* top of the STUN range */
  assert_true(mf_ice_is_stun(b, sizeof b));
  b[0] = 0x04;
  assert_false(mf_ice_is_stun(b, sizeof b));
  memcpy(b, p.buf, sizeof b);
  b[5] ^= 1; /* magic cookie */
  assert_false(mf_ice_is_stun(b, sizeof b));
}

/* Raw message writer for peek tests (no integrity needed). */
static size_t raw_msg(uint8_t *out, uint16_t type, const uint8_t *attrs, size_t alen) {
  out[0] = (uint8_t)(type >> 8);
  out[1] = (uint8_t)type;
  out[2] = (uint8_t)(alen >> 8);
  out[3] = (uint8_t)alen;
  out[4] = 0x21, out[5] = 0x12, out[6] = 0xa4, out[7] = 0x42;
  memset(out + 8, 0x5a, 12);
  memcpy(out + 20, attrs, alen);
  return 20 + alen;
}

static void test_peek_local_ufrag(void **state) {
  (void)state;
  char out[64];
  peer_req_t p;
  make_check(&p, true);
  assert_int_equal(mf_ice_peek_local_ufrag(p.buf, p.len, out, sizeof out), MF_OK);
  assert_string_equal(out, LOCAL_UFRAG);
  /* Exactly fits (16 chars + NUL), one byte short is a limit error. */
  assert_int_equal(mf_ice_peek_local_ufrag(p.buf, p.len, out, MF_ICE_UFRAG_LEN + 1), MF_OK);
  assert_int_equal(mf_ice_peek_local_ufrag(p.buf, p.len, out, MF_ICE_UFRAG_LEN),
                   MF_ERR_LIMIT);
  assert_int_equal(mf_ice_peek_local_ufrag(NULL, p.len, out, sizeof out), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_ice_peek_local_ufrag(p.buf, p.len, NULL, 8), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_ice_peek_local_ufrag(p.buf, p.len, out, 0), MF_ERR_INVALID_ARG);
  /* Every truncation of a valid request is rejected. */
  for (size_t n = 0; n < p.len; n++)
    assert_int_equal(mf_ice_peek_local_ufrag(p.buf, n, out, sizeof out), MF_ERR_PARSE);

  static const uint8_t user_ok[] = {0x00, 0x06, 0x00, 0x06, 'a', 'b', 'c', ':', 'x', 'y', 0, 0};
  static const uint8_t user_nocolon[] = {0x00, 0x06, 0x00, 0x04, 'a', 'b', 'c', 'd'};
  static const uint8_t user_empty[] = {0x00, 0x06, 0x00, 0x04, ':', 'b', 'c', 'd'};
  static const uint8_t user_overflow[] = {0x00, 0x06, 0x00, 0x40, 'a', ':', 'c', 'd'};
  static const uint8_t no_user[] = {0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4};
  static const uint8_t short_hdr[] = {0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4, 0x00, 0x06};
  /* USERNAME after MESSAGE-INTEGRITY does not count (RFC 5389 §15.4). */
  uint8_t after_mi[4 + 20 + 4 + 4];
  memset(after_mi, 0, sizeof after_mi);
  after_mi[1] = 0x08, after_mi[3] = 20;
  memcpy(after_mi + 24, "\x00\x06\x00\x04" "a:bc", 8);
  /* Skipping a padded attribute before USERNAME. */
  static const uint8_t padded_first[] = {0x80, 0x22, 0x00, 0x01, 'S', 0, 0, 0,
                                         0x00, 0x06, 0x00, 0x03, 'q', ':', 'r', 0};
  const struct {
    uint16_t type;
    const uint8_t *attrs;
    size_t alen;
    size_t cut; /* bytes removed from the end of the datagram */
    mf_err_t want;
    const char *ufrag;
  } cases[] = {
      {0x0001, user_ok, sizeof user_ok, 0, MF_OK, "abc"},
      {0x0001, padded_first, sizeof padded_first, 0, MF_OK, "q"},
      {0x0101, user_ok, sizeof user_ok, 0, MF_ERR_PARSE, NULL},  /* success response */
      {0x0011, user_ok, sizeof user_ok, 0, MF_ERR_PARSE, NULL},  /* indication */
      {0x0003, user_ok, sizeof user_ok, 0, MF_ERR_PARSE, NULL},  /* allocate */
      {0x0001, user_ok, sizeof user_ok, 4, MF_ERR_PARSE, NULL},  /* length > datagram */
      {0x0001, user_nocolon, sizeof user_nocolon, 0, MF_ERR_PARSE, NULL},
      {0x0001, user_empty, sizeof user_empty, 0, MF_ERR_PARSE, NULL},
      {0x0001, user_overflow, sizeof user_overflow, 0, MF_ERR_PARSE, NULL},
      {0x0001, no_user, sizeof no_user, 0, MF_ERR_PARSE, NULL},
      {0x0001, short_hdr, sizeof short_hdr, 0, MF_ERR_PARSE, NULL}, /* body not /4 */
      {0x0001, after_mi, sizeof after_mi, 0, MF_ERR_PARSE, NULL},
      {0x0001, NULL, 0, 0, MF_ERR_PARSE, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t msg[256];
    size_t n = raw_msg(msg, cases[i].type, cases[i].attrs ? cases[i].attrs : msg,
                       cases[i].alen);
    assert_int_equal(mf_ice_peek_local_ufrag(msg, n - cases[i].cut, out, sizeof out),
                     cases[i].want);
    if (cases[i].ufrag) assert_string_equal(out, cases[i].ufrag);
  }
}

static void check_connects(const struct sockaddr_storage *from,
                           const struct sockaddr_storage *expect_mapped) {
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  make_check(&p, false);
  assert_int_equal(feed(ice, &p, from, 1000, &r), MF_OK);
  assert_success_reply(&p, &r, expect_mapped);
  assert_false(r.res.nominated);
  assert_true(r.res.tuple_added);
  assert_false(r.res.tuple_removed);
  assert_true(r.res.tuple_selected_changed);
  assert_true(r.res.state_changed);
  assert_int_equal(r.res.state, MF_ICE_STATE_CONNECTED);
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_CONNECTED);
  assert_true(mf_ice_tuple_equal(mf_ice_selected_tuple(ice), SA(*from)));
  assert_true(mf_ice_has_tuple(ice, SA(*from)));

  /* A retransmission from the same tuple changes nothing but is answered. */
  make_check(&p, false);
  assert_int_equal(feed(ice, &p, from, 1500, &r), MF_OK);
  assert_success_reply(&p, &r, expect_mapped);
  assert_false(r.res.tuple_added);
  assert_false(r.res.tuple_selected_changed);
  assert_false(r.res.state_changed);
  mf_ice_free(ice);
}

static void test_valid_check_ipv4(void **state) {
  (void)state;
  struct sockaddr_storage a = v4("192.0.2.10", 50000);
  check_connects(&a, &a);
}

static void test_valid_check_ipv6(void **state) {
  (void)state;
  struct sockaddr_storage a = v6("2001:db8::7", 61000);
  check_connects(&a, &a);
}

static void test_valid_check_v4mapped(void **state) {
  (void)state;
  /* A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; the peer must see IPv4. */
  struct sockaddr_storage a = v6("::ffff:198.51.100.3", 40000);
  struct sockaddr_storage want = v4("198.51.100.3", 40000);
  check_connects(&a, &want);
}

static void test_wrong_credentials(void **state) {
  (void)state;
  struct sockaddr_storage a = v4("192.0.2.10", 50000);
  char long_user[700];
  snprintf(long_user, sizeof long_user, "%s:%0600d", LOCAL_UFRAG, 0);
  const struct {
    const char *username, *pwd;
  } cases[] = {
      {LOCAL_UFRAG ":" REMOTE_UFRAG, "WrongPassword0123456789abcdef+/X"},
      {LOCAL_UFRAG ":" REMOTE_UFRAG, LOCAL_PWD "x"},
      {"OtherUfrag:" REMOTE_UFRAG, LOCAL_PWD},
      {LOCAL_UFRAG "x:" REMOTE_UFRAG, LOCAL_PWD},
      {LOCAL_UFRAG, LOCAL_PWD},       /* no remote part */
      {LOCAL_UFRAG ":", LOCAL_PWD},   /* empty remote part */
      {long_user, LOCAL_PWD},         /* USERNAME over 512 bytes */
  };
  mf_ice_t *ice = new_ice();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    peer_req_t p;
    reply_t r;
    make_check_full(&p, cases[i].username, cases[i].pwd, true, true);
    assert_int_equal(feed(ice, &p, &a, 1000, &r), MF_ERR_AUTH);
    assert_int_equal(r.len, 0); /* no answer, not even a 401 */
    assert_false(r.res.state_changed);
    assert_false(r.res.tuple_added);
    assert_int_equal(r.res.state, MF_ICE_STATE_NEW);
  }
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_NEW);
  assert_null(mf_ice_selected_tuple(ice));
  assert_false(mf_ice_has_tuple(ice, SA(a)));
  mf_ice_free(ice);
}

/* Once a pair is selected, checks with a wrong password (an off-path attacker who learned
 * the ufrags from a signalling leak) neither add their address nor move the selected
 * tuple, even with USE-CANDIDATE, and are never answered with a success response. */
static void test_wrong_password_cannot_hijack(void **state) {
  (void)state;
  struct sockaddr_storage a = v4("192.0.2.10", 50000);
  struct sockaddr_storage evil = v4("198.51.100.66", 4444);
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  make_check(&p, true);
  assert_int_equal(feed(ice, &p, &a, 1000, &r), MF_OK);
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_COMPLETED);

  static const char *const bad_pwds[] = {"WrongPassword0123456789abcdef+/X", LOCAL_PWD "x", "x"};
  const struct sockaddr_storage *froms[] = {&evil, &a};
  for (size_t i = 0; i < sizeof bad_pwds / sizeof bad_pwds[0]; i++) {
    for (size_t f = 0; f < 2; f++) {
      make_check_full(&p, LOCAL_UFRAG ":" REMOTE_UFRAG, bad_pwds[i], true, true);
      assert_int_equal(feed(ice, &p, froms[f], 2000, &r), MF_ERR_AUTH);
      assert_int_equal(r.len, 0); /* no answer */
      assert_false(r.res.tuple_added);
      assert_false(r.res.tuple_selected_changed);
      assert_false(r.res.state_changed);
      assert_false(r.res.nominated);
    }
  }
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_COMPLETED);
  assert_true(mf_ice_tuple_equal(mf_ice_selected_tuple(ice), SA(a)));
  assert_false(mf_ice_has_tuple(ice, SA(evil)));
  /* The real peer is still answered. */
  make_check(&p, false);
  assert_int_equal(feed(ice, &p, &a, 2500, &r), MF_OK);
  assert_success_reply(&p, &r, &a);
  mf_ice_free(ice);
}

static void test_missing_username(void **state) {
  (void)state;
  struct sockaddr_storage a = v4("192.0.2.10", 50000);
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  make_check_full(&p, NULL, LOCAL_PWD, false, true); /* MI but no USERNAME */
  assert_int_equal(feed(ice, &p, &a, 1000, &r), MF_ERR_AUTH);
  bool mi = true;
  assert_int_equal(error_code(&r, &mi), 400);
  assert_false(mi);
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_NEW);
  mf_ice_free(ice);
}

static void test_corrupted_fingerprint(void **state) {
  (void)state;
  struct sockaddr_storage a = v4("192.0.2.10", 50000);
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  make_check(&p, true);
  /* FINGERPRINT is the last attribute: flip a bit of its value, then of the body. */
  const size_t positions[] = {p.len - 1, p.len - 4, 25, 8};
  for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
    peer_req_t q = p;
    q.buf[positions[i]] ^= 0x10;
    assert_int_equal(feed(ice, &q, &a, 1000, &r), MF_ERR_PARSE);
    assert_int_equal(r.len, 0);
  }
  /* Without FINGERPRINT at all. */
  peer_agent_init(&p, false);
  snprintf(p.pwd, sizeof p.pwd, "%s", LOCAL_PWD);
  const char *user = LOCAL_UFRAG ":" REMOTE_UFRAG;
  p.len = stun_usage_ice_conncheck_create(&p.agent, &p.msg, p.buf, sizeof p.buf,
                                          (const uint8_t *)user, strlen(user),
                                          (const uint8_t *)p.pwd, strlen(p.pwd), true, true,
                                          1, 2, NULL, STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
  assert_false(stun_message_has_attribute(&p.msg, STUN_ATTRIBUTE_FINGERPRINT));
  assert_int_equal(feed(ice, &p, &a, 1000, &r), MF_ERR_PARSE);
  assert_int_equal(r.len, 0);
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_NEW);
  mf_ice_free(ice);
}

static void test_malformed(void **state) {
  (void)state;
  struct sockaddr_storage a = v4("192.0.2.10", 50000);
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  make_check(&p, true);
  /* Every truncation, and one byte too many. */
  for (size_t n = 0; n <= p.len + 1; n++) {
    if (n == p.len) continue;
    peer_req_t q = p;
    q.len = n;
    assert_int_equal(feed(ice, &q, &a, 1000, &r), MF_ERR_PARSE);
    assert_int_equal(r.len, 0);
  }
  /* Header length field off by 4 either way; bad cookie; RTP; DTLS; zeros. */
  peer_req_t q = p;
  q.buf[3] += 4;
  assert_int_equal(feed(ice, &q, &a, 1000, &r), MF_ERR_PARSE);
  q = p;
  q.buf[3] -= 4;
  assert_int_equal(feed(ice, &q, &a, 1000, &r), MF_ERR_PARSE);
  q = p;
  q.buf[4] ^= 0xff;
  assert_int_equal(feed(ice, &q, &a, 1000, &r), MF_ERR_PARSE);
  q = p;
  q.buf[0] = 0x80;
  assert_int_equal(feed(ice, &q, &a, 1000, &r), MF_ERR_PARSE);
  q = p;
  q.buf[0] = 22;
  assert_int_equal(feed(ice, &q, &a, 1000, &r), MF_ERR_PARSE);
  memset(q.buf, 0, q.len);
  assert_int_equal(feed(ice, &q, &a, 1000, &r), MF_ERR_PARSE);
  assert_int_equal(r.len, 0);
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_NEW);
  mf_ice_free(ice);
}

static void test_request_shapes(void **state) {
  (void)state;
  struct sockaddr_storage a = v4("192.0.2.10", 50000);
  const struct {
    custom_t c;
    mf_err_t want;
    int code; /* 0 = no response */
  } cases[] = {
      /* Valid without ICE-CONTROLLING (tolerated, like mediasoup). */
      {{.priority = true, .method = STUN_BINDING, .cls = STUN_REQUEST}, MF_OK, 0},
      {{.controlling = true, .method = STUN_BINDING, .cls = STUN_REQUEST}, MF_ERR_PARSE, 400},
      {{.priority = true, .controlling = true, .extra_attr = 0x0030, .method = STUN_BINDING,
        .cls = STUN_REQUEST},
       MF_ERR_UNSUPPORTED, 420},
      /* Unknown comprehension-optional attributes are ignored. */
      {{.priority = true, .controlling = true, .extra_attr = 0xc057, .method = STUN_BINDING,
        .cls = STUN_REQUEST},
       MF_OK, 0},
      {{.priority = true, .controlling = true, .method = STUN_ALLOCATE, .cls = STUN_REQUEST},
       MF_ERR_UNSUPPORTED, 400},
      {{.priority = true, .controlling = true, .method = STUN_BINDING, .cls = STUN_INDICATION},
       MF_ERR_UNSUPPORTED, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_ice_t *ice = new_ice();
    peer_req_t p;
    reply_t r;
    make_custom(&p, &cases[i].c);
    assert_int_equal(feed(ice, &p, &a, 1000, &r), cases[i].want);
    if (cases[i].want == MF_OK) {
      assert_success_reply(&p, &r, &a);
      assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_CONNECTED);
    } else {
      if (cases[i].code) {
        bool mi = false;
        assert_int_equal(error_code(&r, &mi), cases[i].code);
        assert_true(mi); /* these requests authenticated, so the error is signed */
      } else {
        assert_int_equal(r.len, 0);
      }
      assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_NEW);
    }
    mf_ice_free(ice);
  }
  /* A binding indication without credentials (keepalive) is silently ignored. */
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  peer_agent_init(&p, true);
  assert_true(stun_agent_init_indication(&p.agent, &p.msg, p.buf, sizeof p.buf, STUN_BINDING));
  p.len = stun_agent_finish_message(&p.agent, &p.msg, NULL, 0);
  assert_int_equal(feed(ice, &p, &a, 1000, &r), MF_ERR_UNSUPPORTED);
  assert_int_equal(r.len, 0);
  /* Our own success response fed back: a response to a request we never sent. */
  make_check(&p, false);
  assert_int_equal(feed(ice, &p, &a, 1000, &r), MF_OK);
  peer_req_t echo = p;
  memcpy(echo.buf, r.buf, r.len);
  echo.len = r.len;
  assert_int_equal(feed(ice, &echo, &a, 1000, &r), MF_ERR_UNSUPPORTED);
  assert_int_equal(r.len, 0);
  mf_ice_free(ice);
}

static void test_role_conflict(void **state) {
  (void)state;
  struct sockaddr_storage a = v4("192.0.2.10", 50000);
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  make_check_full(&p, LOCAL_UFRAG ":" REMOTE_UFRAG, LOCAL_PWD, true, false);
  assert_int_equal(feed(ice, &p, &a, 1000, &r), MF_ERR_STATE);
  bool mi = false;
  assert_int_equal(error_code(&r, &mi), 487);
  assert_true(mi);
  assert_false(r.res.nominated);
  assert_false(r.res.state_changed);
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_NEW);
  assert_null(mf_ice_selected_tuple(ice));
  mf_ice_free(ice);
}

static void test_use_candidate_completes(void **state) {
  (void)state;
  struct sockaddr_storage a = v6("2001:db8::1", 5000);
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  make_check(&p, true);
  assert_int_equal(feed(ice, &p, &a, 1000, &r), MF_OK);
  assert_success_reply(&p, &r, &a);
  assert_true(r.res.nominated);
  assert_true(r.res.tuple_selected_changed);
  assert_true(r.res.state_changed);
  assert_int_equal(r.res.state, MF_ICE_STATE_COMPLETED);
  assert_true(mf_ice_tuple_equal(mf_ice_selected_tuple(ice), SA(a)));
  mf_ice_free(ice);
}

static void test_connected_then_nominate_other(void **state) {
  (void)state;
  struct sockaddr_storage a = v4("192.0.2.1", 1111);
  struct sockaddr_storage b = v4("192.0.2.2", 2222);
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  make_check(&p, false);
  assert_int_equal(feed(ice, &p, &a, 1000, &r), MF_OK);
  assert_int_equal(r.res.state, MF_ICE_STATE_CONNECTED);

  make_check(&p, false); /* b checked, not nominated: known, not selected */
  assert_int_equal(feed(ice, &p, &b, 1100, &r), MF_OK);
  assert_success_reply(&p, &r, &b);
  assert_true(r.res.tuple_added);
  assert_false(r.res.tuple_selected_changed);
  assert_false(r.res.state_changed);
  assert_true(mf_ice_tuple_equal(mf_ice_selected_tuple(ice), SA(a)));
  assert_true(mf_ice_has_tuple(ice, SA(b)));

  make_check(&p, true); /* b nominated */
  assert_int_equal(feed(ice, &p, &b, 1200, &r), MF_OK);
  assert_false(r.res.tuple_added);
  assert_true(r.res.nominated);
  assert_true(r.res.tuple_selected_changed);
  assert_true(r.res.state_changed);
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_COMPLETED);
  assert_true(mf_ice_tuple_equal(mf_ice_selected_tuple(ice), SA(b)));
  assert_true(mf_ice_has_tuple(ice, SA(a)));
  mf_ice_free(ice);
}

static void test_completed_tuple_switch(void **state) {
  (void)state;
  struct sockaddr_storage a = v4("192.0.2.1", 1111);
  struct sockaddr_storage b = v6("2001:db8::2", 2222);
  struct sockaddr_storage c = v4("192.0.2.1", 1112); /* same IP, other port */
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  make_check(&p, true);
  assert_int_equal(feed(ice, &p, &a, 1000, &r), MF_OK);
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_COMPLETED);

  /* New tuple without USE-CANDIDATE while completed: answered, not selected. */
  make_check(&p, false);
  assert_int_equal(feed(ice, &p, &b, 2000, &r), MF_OK);
  assert_success_reply(&p, &r, &b);
  assert_true(r.res.tuple_added);
  assert_false(r.res.tuple_selected_changed);
  assert_false(r.res.state_changed);
  assert_true(mf_ice_tuple_equal(mf_ice_selected_tuple(ice), SA(a)));

  /* New tuple WITH USE-CANDIDATE: switch (mediasoup does this). */
  make_check(&p, true);
  assert_int_equal(feed(ice, &p, &c, 3000, &r), MF_OK);
  assert_success_reply(&p, &r, &c);
  assert_true(r.res.tuple_added);
  assert_true(r.res.tuple_selected_changed);
  assert_false(r.res.state_changed);
  assert_int_equal(r.res.state, MF_ICE_STATE_COMPLETED);
  assert_true(mf_ice_tuple_equal(mf_ice_selected_tuple(ice), SA(c)));

  /* Nominating the already selected tuple again changes nothing. */
  make_check(&p, true);
  assert_int_equal(feed(ice, &p, &c, 4000, &r), MF_OK);
  assert_true(r.res.nominated);
  assert_false(r.res.tuple_selected_changed);
  assert_false(r.res.tuple_added);

  /* Back to b, already known. */
  make_check(&p, true);
  assert_int_equal(feed(ice, &p, &b, 5000, &r), MF_OK);
  assert_false(r.res.tuple_added);
  assert_true(r.res.tuple_selected_changed);
  assert_true(mf_ice_tuple_equal(mf_ice_selected_tuple(ice), SA(b)));
  mf_ice_free(ice);
}

static void test_consent_expiry_and_recovery(void **state) {
  (void)state;
  struct sockaddr_storage a = v4("192.0.2.1", 1111);
  struct sockaddr_storage b = v4("192.0.2.2", 2222);
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  assert_false(mf_ice_tick(ice, 100000)); /* new: no consent to lose */
  make_check(&p, true);
  assert_int_equal(feed(ice, &p, &a, 1000, &r), MF_OK);
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_COMPLETED);

  /* Checks from a non-selected tuple do not refresh consent of the selected one. */
  make_check(&p, false);
  assert_int_equal(feed(ice, &p, &b, 20000, &r), MF_OK);
  assert_false(mf_ice_tick(ice, 1000));
  assert_false(mf_ice_tick(ice, 500)); /* clock behind the last check: no underflow */
  assert_false(mf_ice_tick(ice, 1000 + MF_ICE_CONSENT_TIMEOUT_MS - 1));
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_COMPLETED);
  assert_true(mf_ice_tick(ice, 1000 + MF_ICE_CONSENT_TIMEOUT_MS));
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_DISCONNECTED);
  assert_null(mf_ice_selected_tuple(ice));
  assert_false(mf_ice_has_tuple(ice, SA(a)));
  assert_false(mf_ice_has_tuple(ice, SA(b)));
  assert_false(mf_ice_tick(ice, 100000)); /* reported once */

  /* A valid check brings it back: without USE-CANDIDATE to connected... */
  make_check(&p, false);
  assert_int_equal(feed(ice, &p, &b, 100000, &r), MF_OK);
  assert_true(r.res.state_changed);
  assert_true(r.res.tuple_added);
  assert_true(r.res.tuple_selected_changed);
  assert_int_equal(r.res.state, MF_ICE_STATE_CONNECTED);
  assert_true(mf_ice_tuple_equal(mf_ice_selected_tuple(ice), SA(b)));

  /* ...connected also loses consent, and USE-CANDIDATE goes straight to completed. */
  assert_true(mf_ice_tick(ice, 100000 + MF_ICE_CONSENT_TIMEOUT_MS));
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_DISCONNECTED);
  make_check(&p, true);
  assert_int_equal(feed(ice, &p, &a, 200000, &r), MF_OK);
  assert_int_equal(r.res.state, MF_ICE_STATE_COMPLETED);
  assert_true(r.res.state_changed);
  mf_ice_free(ice);
}

static void test_consent_refresh(void **state) {
  (void)state;
  struct sockaddr_storage a = v6("2001:db8::5", 443);
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  make_check(&p, false);
  assert_int_equal(feed(ice, &p, &a, 0, &r), MF_OK);
  uint64_t t = 0;
  for (int i = 0; i < 10; i++) { /* a check every 5 s keeps consent for 50 s */
    t += 5000;
    make_check(&p, false);
    assert_int_equal(feed(ice, &p, &a, t, &r), MF_OK);
    assert_false(mf_ice_tick(ice, t + 1000));
  }
  /* Failed checks do not refresh consent. */
  make_check_full(&p, LOCAL_UFRAG ":" REMOTE_UFRAG, "BadPassword0123456789abcdefgh", false,
                  true);
  assert_int_equal(feed(ice, &p, &a, t + 20000, &r), MF_ERR_AUTH);
  assert_false(mf_ice_tick(ice, t + MF_ICE_CONSENT_TIMEOUT_MS - 1));
  assert_true(mf_ice_tick(ice, t + MF_ICE_CONSENT_TIMEOUT_MS));
  mf_ice_free(ice);
}

static void test_tuple_eviction(void **state) {
  (void)state;
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  struct sockaddr_storage t[MF_ICE_MAX_TUPLES + 2];
  for (int i = 0; i < MF_ICE_MAX_TUPLES + 2; i++) t[i] = v4("203.0.113.9", (uint16_t)(7000 + i));
  /* t[0] selected first; then the rest fill the table. */
  for (int i = 0; i < MF_ICE_MAX_TUPLES; i++) {
    make_check(&p, i == 0);
    assert_int_equal(feed(ice, &p, &t[i], (uint64_t)(1000 + i), &r), MF_OK);
    assert_true(r.res.tuple_added);
    assert_false(r.res.tuple_removed);
  }
  /* Refresh t[1] so t[2] is the least recently validated non-selected tuple. */
  make_check(&p, false);
  assert_int_equal(feed(ice, &p, &t[1], 5000, &r), MF_OK);
  make_check(&p, false);
  assert_int_equal(feed(ice, &p, &t[MF_ICE_MAX_TUPLES], 6000, &r), MF_OK);
  assert_true(r.res.tuple_added);
  assert_true(r.res.tuple_removed);
  assert_true(mf_ice_tuple_equal(SA(r.res.removed_tuple), SA(t[2])));
  assert_false(mf_ice_has_tuple(ice, SA(t[2])));
  assert_true(mf_ice_has_tuple(ice, SA(t[0])));
  assert_true(mf_ice_has_tuple(ice, SA(t[MF_ICE_MAX_TUPLES])));
  assert_true(mf_ice_tuple_equal(mf_ice_selected_tuple(ice), SA(t[0])));
  mf_ice_free(ice);
}

static void test_restart(void **state) {
  (void)state;
  struct sockaddr_storage a = v4("192.0.2.1", 1111);
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  make_check(&p, true);
  assert_int_equal(feed(ice, &p, &a, 1000, &r), MF_OK);
  assert_int_equal(mf_ice_restart(ice, "bad", "x"), MF_ERR_INVALID_ARG);
  assert_string_equal(mf_ice_local_ufrag(ice), LOCAL_UFRAG);
  assert_int_equal(mf_ice_restart(ice, "NewUfrag", "NewPassword0123456789abc"), MF_OK);
  assert_string_equal(mf_ice_local_ufrag(ice), "NewUfrag");
  assert_string_equal(mf_ice_old_ufrag(ice), LOCAL_UFRAG);
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_COMPLETED);

  /* The old credentials still work until the peer switched. */
  make_check(&p, false);
  assert_int_equal(feed(ice, &p, &a, 2000, &r), MF_OK);
  assert_success_reply(&p, &r, &a);
  assert_false(r.res.old_credentials_dropped);
  /* New credentials: accepted, and the old ones retire. */
  make_check_full(&p, "NewUfrag:" REMOTE_UFRAG, "NewPassword0123456789abc", true, true);
  assert_int_equal(feed(ice, &p, &a, 3000, &r), MF_OK);
  assert_success_reply(&p, &r, &a);
  assert_true(r.res.old_credentials_dropped);
  assert_null(mf_ice_old_ufrag(ice));
  make_check(&p, false);
  assert_int_equal(feed(ice, &p, &a, 4000, &r), MF_ERR_AUTH);
  assert_int_equal(r.len, 0);
  mf_ice_free(ice);
}

static void test_close_and_bad_args(void **state) {
  (void)state;
  struct sockaddr_storage a = v4("192.0.2.1", 1111);
  mf_ice_t *ice = new_ice();
  peer_req_t p;
  reply_t r;
  make_check(&p, true);

  /* Capacity below MF_ICE_RESPONSE_MAX, NULLs, non-IP family. */
  uint8_t small[100];
  size_t n = sizeof small;
  assert_int_equal(mf_ice_handle_request(ice, p.buf, p.len, SA(a), 0, small, &n, NULL),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(n, 0);
  r.len = sizeof r.buf;
  assert_int_equal(mf_ice_handle_request(NULL, p.buf, p.len, SA(a), 0, r.buf, &r.len, &r.res),
                   MF_ERR_INVALID_ARG);
  r.len = sizeof r.buf;
  assert_int_equal(mf_ice_handle_request(ice, p.buf, p.len, NULL, 0, r.buf, &r.len, &r.res),
                   MF_ERR_INVALID_ARG);
  struct sockaddr_storage unix_addr;
  memset(&unix_addr, 0, sizeof unix_addr);
  unix_addr.ss_family = AF_UNIX;
  r.len = sizeof r.buf;
  assert_int_equal(
      mf_ice_handle_request(ice, p.buf, p.len, SA(unix_addr), 0, r.buf, &r.len, &r.res),
      MF_ERR_INVALID_ARG);
  assert_false(mf_ice_tuple_equal(SA(unix_addr), SA(unix_addr)));
  assert_false(mf_ice_tuple_equal(NULL, SA(a)));
  assert_false(mf_ice_has_tuple(ice, NULL));

  /* NULL result is allowed. */
  r.len = sizeof r.buf;
  assert_int_equal(mf_ice_handle_request(ice, p.buf, p.len, SA(a), 0, r.buf, &r.len, NULL),
                   MF_OK);
  assert_true(r.len > 0);

  mf_ice_close(ice);
  mf_ice_close(ice);
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_CLOSED);
  assert_null(mf_ice_selected_tuple(ice));
  assert_false(mf_ice_has_tuple(ice, SA(a)));
  assert_false(mf_ice_tick(ice, 1000000));
  make_check(&p, true);
  assert_int_equal(feed(ice, &p, &a, 2000, &r), MF_ERR_CLOSED);
  assert_int_equal(r.len, 0);
  assert_int_equal(r.res.state, MF_ICE_STATE_CLOSED);
  assert_int_equal(mf_ice_restart(ice, "NewUfrag", "NewPassword0123456789abc"), MF_ERR_CLOSED);
  mf_ice_free(ice);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_state_names),
      cmocka_unit_test(test_generate_credentials),
      cmocka_unit_test(test_create_rejects_bad_credentials),
      cmocka_unit_test(test_is_stun),
      cmocka_unit_test(test_peek_local_ufrag),
      cmocka_unit_test(test_valid_check_ipv4),
      cmocka_unit_test(test_valid_check_ipv6),
      cmocka_unit_test(test_valid_check_v4mapped),
      cmocka_unit_test(test_wrong_credentials),
      cmocka_unit_test(test_wrong_password_cannot_hijack),
      cmocka_unit_test(test_missing_username),
      cmocka_unit_test(test_corrupted_fingerprint),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_request_shapes),
      cmocka_unit_test(test_role_conflict),
      cmocka_unit_test(test_use_candidate_completes),
      cmocka_unit_test(test_connected_then_nominate_other),
      cmocka_unit_test(test_completed_tuple_switch),
      cmocka_unit_test(test_consent_expiry_and_recovery),
      cmocka_unit_test(test_consent_refresh),
      cmocka_unit_test(test_tuple_eviction),
      cmocka_unit_test(test_restart),
      cmocka_unit_test(test_close_and_bad_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
