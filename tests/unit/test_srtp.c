/* SRTP sessions keyed by a real DTLS-SRTP handshake between two in-memory endpoints.
 * Every packet buffer has exactly MF_SRTP_MAX_TRAILER spare bytes followed by a canary
 * that is checked on free: libsrtp must stay inside the documented trailer bound (a
 * canary, because ASan does not instrument libsrtp's or NSS's own stores). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/dtls.h"
#include "node/srtp.h"

/* ---------- a minimal DTLS pair to obtain keys ---------- */

typedef struct {
  int to;
  size_t len;
  uint8_t data[MF_DTLS_MTU];
} pkt_t;

static pkt_t g_q[128];
static size_t g_head, g_tail;
static int g_ids[2] = {0, 1};

static void on_send(void *ud, const uint8_t *data, size_t len) {
  int from = *(const int *)ud;
  assert_true(g_tail - g_head < 128);
  pkt_t *p = &g_q[g_tail++ % 128];
  p->to = 1 - from;
  p->len = len;
  memcpy(p->data, data, len);
}

static void handshake(mf_dtls_context_t *cctx, const mf_dtls_cert_t *ccert,
                      mf_dtls_context_t *sctx, const mf_dtls_cert_t *scert,
                      mf_srtp_keys_t *client_keys, mf_srtp_keys_t *server_keys) {
  mf_dtls_callbacks_t cb = {on_send, NULL, NULL};
  mf_dtls_t *ep[2];
  g_head = g_tail = 0;
  assert_int_equal(mf_dtls_create(cctx, &cb, &g_ids[0], &ep[0]), MF_OK);
  assert_int_equal(mf_dtls_create(sctx, &cb, &g_ids[1], &ep[1]), MF_OK);
  assert_int_equal(
      mf_dtls_start(ep[1], MF_DTLS_ROLE_SERVER, "sha-256", mf_dtls_cert_fingerprint(ccert)),
      MF_OK);
  assert_int_equal(
      mf_dtls_start(ep[0], MF_DTLS_ROLE_CLIENT, "sha-256", mf_dtls_cert_fingerprint(scert)),
      MF_OK);
  while (g_head != g_tail) {
    pkt_t *p = &g_q[g_head++ % 128];
    assert_int_equal(mf_dtls_handle_datagram(ep[p->to], p->data, p->len), MF_OK);
  }
  assert_int_equal(mf_dtls_state(ep[0]), MF_DTLS_STATE_CONNECTED);
  assert_int_equal(mf_dtls_state(ep[1]), MF_DTLS_STATE_CONNECTED);
  assert_int_equal(mf_dtls_get_srtp_keys(ep[0], client_keys), MF_OK);
  assert_int_equal(mf_dtls_get_srtp_keys(ep[1], server_keys), MF_OK);
  mf_dtls_free(ep[0]);
  mf_dtls_free(ep[1]);
}

/* ---------- fixture: keys for both profiles ---------- */

typedef struct {
  mf_srtp_keys_t client[2], server[2]; /* [0] GCM, [1] AES-CM */
} fixture_t;

static const mf_srtp_profile_t k_profiles[2] = {MF_SRTP_PROFILE_AEAD_AES_128_GCM,
                                                MF_SRTP_PROFILE_AES128_CM_SHA1_80};
static const size_t k_tag_len[2] = {16, 10};

static int group_setup(void **state) {
  assert_int_equal(mf_srtp_library_init(), MF_OK);
  fixture_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  mf_dtls_cert_t *cc, *sc;
  mf_dtls_context_t *cctx, *sctx, *sctx_cm;
  assert_int_equal(mf_dtls_cert_generate(&cc), MF_OK);
  assert_int_equal(mf_dtls_cert_generate(&sc), MF_OK);
  assert_int_equal(mf_dtls_context_create(cc, &cctx), MF_OK);
  assert_int_equal(mf_dtls_context_create(sc, &sctx), MF_OK);
  mf_dtls_context_options_t cm = {.srtp_profiles = "SRTP_AES128_CM_SHA1_80"};
  assert_int_equal(mf_dtls_context_create_ex(sc, &cm, &sctx_cm), MF_OK);
  handshake(cctx, cc, sctx, sc, &f->client[0], &f->server[0]);
  handshake(cctx, cc, sctx_cm, sc, &f->client[1], &f->server[1]);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(f->client[i].profile, k_profiles[i]);
    assert_int_equal(f->server[i].profile, k_profiles[i]);
  }
  mf_dtls_context_free(cctx);
  mf_dtls_context_free(sctx);
  mf_dtls_context_free(sctx_cm);
  mf_dtls_cert_free(cc);
  mf_dtls_cert_free(sc);
  *state = f;
  return 0;
}

static int group_teardown(void **state) {
  free(*state);
  return 0;
}

/* Sessions of one direction: client protects with its local key, server unprotects with
 * its remote key (and the reverse pair for server -> client). */
typedef struct {
  mf_srtp_session_t *c_out, *s_in, *s_out, *c_in;
} sessions_t;

static void sessions_create(const fixture_t *f, int p, sessions_t *s) {
  const mf_srtp_keys_t *c = &f->client[p], *sv = &f->server[p];
  assert_int_equal(
      mf_srtp_session_create(c->profile, c->local_master, c->master_len, false, &s->c_out), MF_OK);
  assert_int_equal(
      mf_srtp_session_create(sv->profile, sv->remote_master, sv->master_len, true, &s->s_in),
      MF_OK);
  assert_int_equal(
      mf_srtp_session_create(sv->profile, sv->local_master, sv->master_len, false, &s->s_out),
      MF_OK);
  assert_int_equal(
      mf_srtp_session_create(c->profile, c->remote_master, c->master_len, true, &s->c_in), MF_OK);
}

static void sessions_free(sessions_t *s) {
  mf_srtp_session_free(s->c_out);
  mf_srtp_session_free(s->s_in);
  mf_srtp_session_free(s->s_out);
  mf_srtp_session_free(s->c_in);
}

/* ---------- packet helpers ---------- */

typedef struct {
  uint8_t *buf;
  size_t len, cap;
} pkt_buf_t;

/* RTP: V=2, PT 96, optional CSRCs and a one-byte-header extension, patterned payload. */
static size_t build_rtp(uint8_t *b, uint16_t seq, uint32_t ssrc, int csrcs, bool ext,
                        size_t payload) {
  size_t n = 0;
  b[n++] = (uint8_t)(0x80 | (ext ? 0x10 : 0) | csrcs);
  b[n++] = 96;
  b[n++] = (uint8_t)(seq >> 8);
  b[n++] = (uint8_t)seq;
  uint32_t ts = 90000u + seq * 3000u;
  for (int i = 3; i >= 0; i--) b[n++] = (uint8_t)(ts >> (8 * i));
  for (int i = 3; i >= 0; i--) b[n++] = (uint8_t)(ssrc >> (8 * i));
  for (int c = 0; c < csrcs; c++)
    for (int i = 0; i < 4; i++) b[n++] = (uint8_t)(0x10 + c);
  if (ext) {
    static const uint8_t e[] = {0xbe, 0xde, 0x00, 0x01, 0x10, 0x42, 0x00, 0x00};
    memcpy(b + n, e, sizeof e);
    n += sizeof e;
  }
  for (size_t i = 0; i < payload; i++) b[n++] = (uint8_t)(seq + i * 7);
  return n;
}

#define CANARY_LEN 64
#define CANARY_BYTE 0xa5

/* A heap copy with exactly MF_SRTP_MAX_TRAILER spare bytes (the capacity passed to
 * protect), followed by a canary that libsrtp must never touch. */
static pkt_buf_t pkt_copy(const uint8_t *data, size_t len) {
  pkt_buf_t p = {malloc(len + MF_SRTP_MAX_TRAILER + CANARY_LEN), len, len + MF_SRTP_MAX_TRAILER};
  assert_non_null(p.buf);
  memcpy(p.buf, data, len);
  memset(p.buf + len, 0, MF_SRTP_MAX_TRAILER);
  memset(p.buf + p.cap, CANARY_BYTE, CANARY_LEN);
  return p;
}

static void pkt_free(pkt_buf_t *p) {
  for (size_t i = 0; i < CANARY_LEN; i++) assert_int_equal(p->buf[p->cap + i], CANARY_BYTE);
  free(p->buf);
  p->buf = NULL;
}

static pkt_buf_t rtp_packet(uint16_t seq, uint32_t ssrc) {
  uint8_t tmp[1300];
  size_t n = build_rtp(tmp, seq, ssrc, 0, false, 160);
  return pkt_copy(tmp, n);
}

/* Sender report (28 bytes) + SDES with a CNAME: a compound RTCP packet. */
static pkt_buf_t rtcp_packet(uint32_t ssrc) {
  uint8_t b[64] = {0x80, 200, 0x00, 0x06};
  for (int i = 0; i < 4; i++) b[4 + i] = (uint8_t)(ssrc >> (8 * (3 - i)));
  for (int i = 8; i < 28; i++) b[i] = (uint8_t)i;
  static const uint8_t sdes[] = {0x81, 202, 0x00, 0x03, 0, 0, 0, 0, 1, 4, 'm', 'a', 'f', 'a'};
  memcpy(b + 28, sdes, sizeof sdes);
  for (int i = 0; i < 4; i++) b[32 + i] = (uint8_t)(ssrc >> (8 * (3 - i)));
  return pkt_copy(b, 28 + 16);
}

/* ---------- tests ---------- */

static void test_library_and_profiles(void **state) {
  (void)state;
  assert_int_equal(mf_srtp_library_init(), MF_OK); /* idempotent */
  assert_int_equal(mf_srtp_profile_master_len(MF_SRTP_PROFILE_AES128_CM_SHA1_80), 30);
  assert_int_equal(mf_srtp_profile_master_len(MF_SRTP_PROFILE_AEAD_AES_128_GCM), 28);
  assert_int_equal(mf_srtp_profile_master_len((mf_srtp_profile_t)2), 0);
  assert_string_equal(mf_srtp_profile_name(MF_SRTP_PROFILE_AEAD_AES_128_GCM), "AEAD_AES_128_GCM");
  assert_string_equal(mf_srtp_profile_name(MF_SRTP_PROFILE_AES128_CM_SHA1_80),
                      "AES_CM_128_HMAC_SHA1_80");
  assert_string_equal(mf_srtp_profile_name((mf_srtp_profile_t)99), "unknown");
}

static void test_create_invalid_args(void **state) {
  (void)state;
  uint8_t key[MF_SRTP_MAX_MASTER_LEN] = {1, 2, 3};
  mf_srtp_session_t *s = (mf_srtp_session_t *)&s;
  const struct {
    mf_srtp_profile_t profile;
    const uint8_t *key;
    size_t len;
  } table[] = {
      {MF_SRTP_PROFILE_AEAD_AES_128_GCM, key, 30}, {MF_SRTP_PROFILE_AEAD_AES_128_GCM, key, 0},
      {MF_SRTP_PROFILE_AES128_CM_SHA1_80, key, 28}, {MF_SRTP_PROFILE_AES128_CM_SHA1_80, NULL, 30},
      {(mf_srtp_profile_t)2, key, 30},              {(mf_srtp_profile_t)0, key, 28},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    assert_int_equal(mf_srtp_session_create(table[i].profile, table[i].key, table[i].len, true, &s),
                     MF_ERR_INVALID_ARG);
    assert_null(s);
  }
  assert_int_equal(mf_srtp_session_create(MF_SRTP_PROFILE_AEAD_AES_128_GCM, key, 28, true, NULL),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_srtp_session_create(MF_SRTP_PROFILE_AEAD_AES_128_GCM, key, 28, true, &s),
                   MF_OK);
  assert_int_equal(mf_srtp_session_profile(s), MF_SRTP_PROFILE_AEAD_AES_128_GCM);
  mf_srtp_session_free(s);
  mf_srtp_session_free(NULL);
}

static void round_trip_rtp(mf_srtp_session_t *out, mf_srtp_session_t *in, size_t tag_len,
                           uint16_t seq, uint32_t ssrc, int csrcs, bool ext, size_t payload) {
  uint8_t plain[1400];
  size_t n = build_rtp(plain, seq, ssrc, csrcs, ext, payload);
  size_t hdr = n - payload;
  pkt_buf_t p = pkt_copy(plain, n);
  assert_int_equal(mf_srtp_protect_rtp(out, p.buf, &p.len, p.cap), MF_OK);
  assert_int_equal(p.len, n + tag_len);
  assert_memory_equal(p.buf, plain, hdr); /* header in the clear */
  if (payload >= 16) assert_memory_not_equal(p.buf + hdr, plain + hdr, 16);
  assert_int_equal(mf_srtp_unprotect_rtp(in, p.buf, &p.len), MF_OK);
  assert_int_equal(p.len, n);
  assert_memory_equal(p.buf, plain, n);
  pkt_free(&p);
}

static void test_rtp_round_trip_both_profiles(void **state) {
  fixture_t *f = *state;
  for (int p = 0; p < 2; p++) {
    sessions_t s;
    sessions_create(f, p, &s);
    for (uint16_t seq = 65500; seq != 40; seq++) { /* crosses the 16-bit wrap (ROC++) */
      round_trip_rtp(s.c_out, s.s_in, k_tag_len[p], seq, 0x11223344, 0, false, 160);
      round_trip_rtp(s.s_out, s.c_in, k_tag_len[p], seq, 0x55667788, 0, false, 1100);
    }
    /* Header variants: CSRCs, extension, empty payload, several SSRCs. */
    round_trip_rtp(s.c_out, s.s_in, k_tag_len[p], 100, 0xabcdef01, 2, true, 20);
    round_trip_rtp(s.c_out, s.s_in, k_tag_len[p], 101, 0xabcdef01, 15, false, 1);
    round_trip_rtp(s.c_out, s.s_in, k_tag_len[p], 102, 0xabcdef01, 0, true, 0);
    round_trip_rtp(s.c_out, s.s_in, k_tag_len[p], 7, 0x01020304, 0, false, 1200);

    /* The other direction's key does not authenticate. */
    pkt_buf_t x = rtp_packet(500, 0x11223344);
    assert_int_equal(mf_srtp_protect_rtp(s.c_out, x.buf, &x.len, x.cap), MF_OK);
    assert_int_equal(mf_srtp_unprotect_rtp(s.c_in, x.buf, &x.len), MF_ERR_AUTH);
    pkt_free(&x);
    sessions_free(&s);
  }
}

static void test_tampered_packet_is_rejected(void **state) {
  fixture_t *f = *state;
  for (int p = 0; p < 2; p++) {
    sessions_t s;
    sessions_create(f, p, &s);
    pkt_buf_t good = rtp_packet(1000, 0x11223344);
    assert_int_equal(mf_srtp_protect_rtp(s.c_out, good.buf, &good.len, good.cap), MF_OK);
    const size_t positions[] = {1 /* PT/M */, 5 /* timestamp */, 12 /* payload */, 100,
                                good.len - k_tag_len[p] /* tag start */, good.len - 1};
    for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
      pkt_buf_t bad = pkt_copy(good.buf, good.len);
      bad.buf[positions[i]] ^= 0x01;
      assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, bad.buf, &bad.len), MF_ERR_AUTH);
      pkt_free(&bad);
    }
    /* Failed attempts did not consume the index: the genuine packet still passes. */
    assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, good.buf, &good.len), MF_OK);
    pkt_free(&good);
    sessions_free(&s);
  }
}

static void test_replay_rejected_inbound(void **state) {
  fixture_t *f = *state;
  for (int p = 0; p < 2; p++) {
    sessions_t s;
    sessions_create(f, p, &s);
    pkt_buf_t a = rtp_packet(2000, 0x11223344);
    assert_int_equal(mf_srtp_protect_rtp(s.c_out, a.buf, &a.len, a.cap), MF_OK);
    pkt_buf_t a2 = pkt_copy(a.buf, a.len);
    assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, a.buf, &a.len), MF_OK);
    assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, a2.buf, &a2.len), MF_ERR_STATE); /* replay */

    /* Out of order inside the window is fine; behind the window is refused. */
    pkt_buf_t old = rtp_packet(2001, 0x11223344);
    pkt_buf_t mid = rtp_packet(2100, 0x11223344);
    pkt_buf_t late = rtp_packet(2200, 0x11223344);
    assert_int_equal(mf_srtp_protect_rtp(s.c_out, old.buf, &old.len, old.cap), MF_OK);
    assert_int_equal(mf_srtp_protect_rtp(s.c_out, mid.buf, &mid.len, mid.cap), MF_OK);
    assert_int_equal(mf_srtp_protect_rtp(s.c_out, late.buf, &late.len, late.cap), MF_OK);
    assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, late.buf, &late.len), MF_OK);
    assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, mid.buf, &mid.len), MF_OK); /* 100 behind */
    assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, old.buf, &old.len), MF_ERR_STATE); /* 199 */

    /* Another SSRC has its own window. */
    pkt_buf_t other = rtp_packet(2000, 0x99999999);
    assert_int_equal(mf_srtp_protect_rtp(s.c_out, other.buf, &other.len, other.cap), MF_OK);
    assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, other.buf, &other.len), MF_OK);
    pkt_free(&a);
    pkt_free(&a2);
    pkt_free(&old);
    pkt_free(&mid);
    pkt_free(&late);
    pkt_free(&other);
    sessions_free(&s);
  }
}

static void test_outbound_repeat_allowed(void **state) {
  fixture_t *f = *state;
  for (int p = 0; p < 2; p++) {
    sessions_t s;
    sessions_create(f, p, &s);
    pkt_buf_t first = rtp_packet(5, 0x11223344);
    pkt_buf_t again = rtp_packet(5, 0x11223344);
    assert_int_equal(mf_srtp_protect_rtp(s.c_out, first.buf, &first.len, first.cap), MF_OK);
    /* A NACK answer re-protects the same sequence number: allowed, identical bytes. */
    assert_int_equal(mf_srtp_protect_rtp(s.c_out, again.buf, &again.len, again.cap), MF_OK);
    assert_int_equal(first.len, again.len);
    assert_memory_equal(first.buf, again.buf, first.len);
    assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, first.buf, &first.len), MF_OK);
    assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, again.buf, &again.len), MF_ERR_STATE);

    /* Within the outbound window an old index can be re-protected, beyond it not. */
    pkt_buf_t newer = rtp_packet(5 + 900, 0x11223344);
    assert_int_equal(mf_srtp_protect_rtp(s.c_out, newer.buf, &newer.len, newer.cap), MF_OK);
    pkt_buf_t resend = rtp_packet(5, 0x11223344);
    assert_int_equal(mf_srtp_protect_rtp(s.c_out, resend.buf, &resend.len, resend.cap), MF_OK);
    pkt_buf_t newest = rtp_packet(5 + 900 + MF_SRTP_OUTBOUND_WINDOW, 0x11223344);
    assert_int_equal(mf_srtp_protect_rtp(s.c_out, newest.buf, &newest.len, newest.cap), MF_OK);
    pkt_buf_t too_old = rtp_packet(5, 0x11223344);
    assert_int_equal(mf_srtp_protect_rtp(s.c_out, too_old.buf, &too_old.len, too_old.cap),
                     MF_ERR_STATE);
    pkt_free(&first);
    pkt_free(&again);
    pkt_free(&newer);
    pkt_free(&resend);
    pkt_free(&newest);
    pkt_free(&too_old);
    sessions_free(&s);
  }
}

static void test_rtcp_round_trip(void **state) {
  fixture_t *f = *state;
  for (int p = 0; p < 2; p++) {
    sessions_t s;
    sessions_create(f, p, &s);
    for (int i = 0; i < 5; i++) {
      pkt_buf_t plain = rtcp_packet(0x11223344);
      pkt_buf_t c = pkt_copy(plain.buf, plain.len);
      assert_int_equal(mf_srtp_protect_rtcp(s.c_out, c.buf, &c.len, c.cap), MF_OK);
      assert_int_equal(c.len, plain.len + 4 + k_tag_len[p]); /* E||index + tag */
      assert_memory_equal(c.buf, plain.buf, 8);             /* header + SSRC in the clear */
      assert_memory_not_equal(c.buf + 8, plain.buf + 8, plain.len - 8);
      pkt_buf_t tampered = pkt_copy(c.buf, c.len);
      tampered.buf[10] ^= 0x80;
      assert_int_equal(mf_srtp_unprotect_rtcp(s.s_in, tampered.buf, &tampered.len), MF_ERR_AUTH);
      pkt_buf_t replay = pkt_copy(c.buf, c.len);
      assert_int_equal(mf_srtp_unprotect_rtcp(s.s_in, c.buf, &c.len), MF_OK);
      assert_int_equal(c.len, plain.len);
      assert_memory_equal(c.buf, plain.buf, plain.len);
      assert_int_equal(mf_srtp_unprotect_rtcp(s.s_in, replay.buf, &replay.len), MF_ERR_STATE);
      pkt_free(&plain);
      pkt_free(&c);
      pkt_free(&tampered);
      pkt_free(&replay);
    }
    /* And server -> client. */
    pkt_buf_t plain = rtcp_packet(0x55667788);
    pkt_buf_t c = pkt_copy(plain.buf, plain.len);
    assert_int_equal(mf_srtp_protect_rtcp(s.s_out, c.buf, &c.len, c.cap), MF_OK);
    assert_int_equal(mf_srtp_unprotect_rtcp(s.c_in, c.buf, &c.len), MF_OK);
    assert_memory_equal(c.buf, plain.buf, plain.len);
    pkt_free(&plain);
    pkt_free(&c);
    sessions_free(&s);
  }
}

static void test_malformed_input(void **state) {
  fixture_t *f = *state;
  sessions_t s;
  sessions_create(f, 0, &s);
  uint8_t b[64 + MF_SRTP_MAX_TRAILER];
  const struct {
    uint8_t bytes[24];
    size_t len;
  } bad_rtp[] = {
      {{0x80, 96}, 0},
      {{0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, 11},                     /* short header */
      {{0x00, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, 12},                     /* version 0 */
      {{0x40, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, 16},         /* version 1 */
      {{0x8f, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, 16},         /* 15 CSRCs in 16 */
      {{0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde}, 14},         /* cut ext header */
      {{0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0xff, 0xff, 1, 2, 3, 4}, 20},
  };
  for (size_t i = 0; i < sizeof bad_rtp / sizeof bad_rtp[0]; i++) {
    size_t len = bad_rtp[i].len;
    memcpy(b, bad_rtp[i].bytes, sizeof bad_rtp[i].bytes);
    assert_int_equal(mf_srtp_protect_rtp(s.c_out, b, &len, sizeof b), MF_ERR_PARSE);
    len = bad_rtp[i].len;
    assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, b, &len), MF_ERR_PARSE);
  }
  /* A valid header but no room for the tag: too short to be SRTP. */
  size_t len = build_rtp(b, 1, 1, 0, false, 15);
  assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, b, &len), MF_ERR_PARSE);
  /* Garbage of SRTP size fails authentication, not parsing. */
  len = build_rtp(b, 1, 1, 0, false, 40);
  assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, b, &len), MF_ERR_AUTH);

  const struct {
    uint8_t bytes[8];
    size_t len;
  } bad_rtcp[] = {
      {{0x80, 200, 0, 1, 0, 0, 0}, 7},
      {{0x00, 200, 0, 1, 0, 0, 0, 1}, 8},
  };
  for (size_t i = 0; i < sizeof bad_rtcp / sizeof bad_rtcp[0]; i++) {
    size_t l = bad_rtcp[i].len;
    memcpy(b, bad_rtcp[i].bytes, sizeof bad_rtcp[i].bytes);
    assert_int_equal(mf_srtp_protect_rtcp(s.c_out, b, &l, sizeof b), MF_ERR_PARSE);
    l = bad_rtcp[i].len;
    assert_int_equal(mf_srtp_unprotect_rtcp(s.s_in, b, &l), MF_ERR_PARSE);
  }
  memset(b, 0, sizeof b);
  b[0] = 0x80;
  b[1] = 200;
  len = 8 + 4 + 15; /* one byte short of header + index + GCM tag */
  assert_int_equal(mf_srtp_unprotect_rtcp(s.s_in, b, &len), MF_ERR_PARSE);

  /* Capacity and direction contract. */
  len = build_rtp(b, 1, 1, 0, false, 20);
  assert_int_equal(mf_srtp_protect_rtp(s.c_out, b, &len, len + MF_SRTP_MAX_TRAILER - 1),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_srtp_protect_rtp(s.c_out, b, &len, len - 1), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_srtp_protect_rtcp(s.c_out, b, &len, len), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_srtp_protect_rtp(s.s_in, b, &len, sizeof b), MF_ERR_STATE);
  assert_int_equal(mf_srtp_unprotect_rtp(s.c_out, b, &len), MF_ERR_STATE);
  assert_int_equal(mf_srtp_protect_rtcp(s.s_in, b, &len, sizeof b), MF_ERR_STATE);
  assert_int_equal(mf_srtp_unprotect_rtcp(s.c_out, b, &len), MF_ERR_STATE);
  assert_int_equal(mf_srtp_protect_rtp(NULL, b, &len, sizeof b), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, NULL, &len), MF_ERR_INVALID_ARG);
  sessions_free(&s);
}

static void test_remove_stream(void **state) {
  fixture_t *f = *state;
  sessions_t s;
  sessions_create(f, 0, &s);
  pkt_buf_t a = rtp_packet(10, 0x0a0b0c0d);
  assert_int_equal(mf_srtp_protect_rtp(s.c_out, a.buf, &a.len, a.cap), MF_OK);
  pkt_buf_t a2 = pkt_copy(a.buf, a.len);
  assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, a.buf, &a.len), MF_OK);
  assert_int_equal(mf_srtp_remove_stream(s.s_in, 0x0a0b0c0d), MF_OK);
  assert_int_equal(mf_srtp_remove_stream(s.s_in, 0x0a0b0c0d), MF_ERR_NOT_FOUND);
  /* A fresh stream has a fresh replay window. */
  assert_int_equal(mf_srtp_unprotect_rtp(s.s_in, a2.buf, &a2.len), MF_OK);
  pkt_free(&a);
  pkt_free(&a2);
  sessions_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_library_and_profiles),
      cmocka_unit_test(test_create_invalid_args),
      cmocka_unit_test(test_rtp_round_trip_both_profiles),
      cmocka_unit_test(test_tampered_packet_is_rejected),
      cmocka_unit_test(test_replay_rejected_inbound),
      cmocka_unit_test(test_outbound_repeat_allowed),
      cmocka_unit_test(test_rtcp_round_trip),
      cmocka_unit_test(test_malformed_input),
      cmocka_unit_test(test_remove_stream),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
