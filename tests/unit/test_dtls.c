/* DTLS-SRTP module: two in-memory endpoints exchange datagrams through a FIFO queue
 * (never by recursive calls), with loss injection and real OpenSSL timers. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "node/dtls.h"

#define QUEUE_CAP 256
#define MAX_STATES 8

typedef struct {
  int to;
  size_t len;
  uint8_t data[MF_DTLS_MTU];
} pkt_t;

typedef struct net net_t;

typedef struct {
  int id;
  net_t *net;
  mf_dtls_t *d;
  mf_dtls_state_t states[MAX_STATES];
  int nstates;
  char reason[320];
  uint8_t app[512];
  size_t app_len;
  int app_count;
  bool free_on_closed;    /* free the object from inside the CLOSED callback */
  bool probe_reentry;     /* call back into the module from inside send */
  mf_err_t reentry_result;
} endpoint_t;

struct net {
  pkt_t q[QUEUE_CAP];
  size_t head, tail;
  int drop[2];      /* datagrams still to drop, per sender */
  bool drop_all[2]; /* black hole for everything a sender emits */
  size_t sent[2];
  size_t max_len;
  endpoint_t ep[2];
};

static void on_send(void *ud, const uint8_t *data, size_t len) {
  endpoint_t *ep = ud;
  net_t *n = ep->net;
  assert_true(len > 0);
  assert_true(len <= MF_DTLS_MTU);
  n->sent[ep->id]++;
  if (len > n->max_len) n->max_len = len;
  if (ep->probe_reentry) {
    ep->probe_reentry = false;
    ep->reentry_result = mf_dtls_handle_datagram(ep->d, data, len);
  }
  if (n->drop_all[ep->id]) return;
  if (n->drop[ep->id] > 0) {
    n->drop[ep->id]--;
    return;
  }
  assert_true(n->tail - n->head < QUEUE_CAP);
  pkt_t *p = &n->q[n->tail++ % QUEUE_CAP];
  p->to = 1 - ep->id;
  p->len = len;
  memcpy(p->data, data, len);
}

static void on_state(void *ud, mf_dtls_state_t s, const char *reason) {
  endpoint_t *ep = ud;
  assert_true(ep->nstates < MAX_STATES);
  ep->states[ep->nstates++] = s;
  snprintf(ep->reason, sizeof ep->reason, "%s", reason ? reason : "");
  if (s == MF_DTLS_STATE_CLOSED && ep->free_on_closed) {
    mf_dtls_free(ep->d); /* deferred by the module until its call returns */
    ep->d = NULL;
  }
}

static void on_app_data(void *ud, const uint8_t *data, size_t len) {
  endpoint_t *ep = ud;
  assert_true(len <= sizeof ep->app);
  memcpy(ep->app, data, len);
  ep->app_len = len;
  ep->app_count++;
}

static const mf_dtls_callbacks_t k_callbacks = {on_send, on_state, on_app_data};

static mf_dtls_state_t last_state(const endpoint_t *ep) {
  return ep->nstates ? ep->states[ep->nstates - 1] : MF_DTLS_STATE_NEW;
}

/* Delivers queued datagrams in order until the queue is empty. */
static void pump(net_t *n) {
  for (int guard = 0; n->head != n->tail; guard++) {
    assert_true(guard < 1000);
    pkt_t *p = &n->q[n->head++ % QUEUE_CAP];
    endpoint_t *to = &n->ep[p->to];
    if (to->d == NULL) continue;
    mf_err_t err = mf_dtls_handle_datagram(to->d, p->data, p->len);
    assert_true(err == MF_OK || err == MF_ERR_CLOSED);
  }
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Fixture: two "nodes", each with its own certificate and worker context. */
typedef struct {
  mf_dtls_cert_t *cert[2];
  mf_dtls_context_t *ctx[2];
  mf_dtls_context_t *ctx_cm_only;
  mf_dtls_context_t *ctx_fast_timer;
  net_t *net;
} fixture_t;

static int group_setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(mf_dtls_cert_generate(&f->cert[i]), MF_OK);
    assert_int_equal(mf_dtls_context_create(f->cert[i], &f->ctx[i]), MF_OK);
  }
  mf_dtls_context_options_t cm = {.srtp_profiles = "SRTP_AES128_CM_SHA1_80"};
  assert_int_equal(mf_dtls_context_create_ex(f->cert[1], &cm, &f->ctx_cm_only), MF_OK);
  mf_dtls_context_options_t fast = {.initial_timeout_ms = 20, .max_timeout_ms = 20};
  assert_int_equal(mf_dtls_context_create_ex(f->cert[0], &fast, &f->ctx_fast_timer), MF_OK);
  *state = f;
  return 0;
}

static int group_teardown(void **state) {
  fixture_t *f = *state;
  mf_dtls_context_free(f->ctx_cm_only);
  mf_dtls_context_free(f->ctx_fast_timer);
  for (int i = 0; i < 2; i++) {
    mf_dtls_context_free(f->ctx[i]);
    mf_dtls_cert_free(f->cert[i]);
  }
  free(f);
  return 0;
}

static int test_setup(void **state) {
  fixture_t *f = *state;
  f->net = calloc(1, sizeof *f->net);
  assert_non_null(f->net);
  for (int i = 0; i < 2; i++) {
    f->net->ep[i].id = i;
    f->net->ep[i].net = f->net;
  }
  return 0;
}

static int test_teardown(void **state) {
  fixture_t *f = *state;
  for (int i = 0; i < 2; i++) mf_dtls_free(f->net->ep[i].d);
  free(f->net);
  f->net = NULL;
  return 0;
}

/* Creates both ends: ep[0] on ctx0, ep[1] on ctx1. */
static void create_pair(fixture_t *f, mf_dtls_context_t *ctx0, mf_dtls_context_t *ctx1) {
  assert_int_equal(mf_dtls_create(ctx0, &k_callbacks, &f->net->ep[0], &f->net->ep[0].d), MF_OK);
  assert_int_equal(mf_dtls_create(ctx1, &k_callbacks, &f->net->ep[1], &f->net->ep[1].d), MF_OK);
}

/* ep[0] is the client, ep[1] the server; each gets the other's sha-256 fingerprint. */
static void start_pair(fixture_t *f, int client_cert, int server_cert) {
  endpoint_t *c = &f->net->ep[0], *s = &f->net->ep[1];
  assert_int_equal(mf_dtls_start(s->d, MF_DTLS_ROLE_SERVER, "sha-256",
                                 mf_dtls_cert_fingerprint(f->cert[client_cert])),
                   MF_OK);
  assert_int_equal(mf_dtls_start(c->d, MF_DTLS_ROLE_CLIENT, "sha-256",
                                 mf_dtls_cert_fingerprint(f->cert[server_cert])),
                   MF_OK);
}

static void assert_keys_crosswise(fixture_t *f, mf_srtp_profile_t profile, size_t master_len) {
  mf_srtp_keys_t kc, ks;
  assert_int_equal(mf_dtls_get_srtp_keys(f->net->ep[0].d, &kc), MF_OK);
  assert_int_equal(mf_dtls_get_srtp_keys(f->net->ep[1].d, &ks), MF_OK);
  assert_int_equal(kc.profile, profile);
  assert_int_equal(ks.profile, profile);
  assert_int_equal(kc.master_len, master_len);
  assert_int_equal(ks.master_len, master_len);
  assert_memory_equal(kc.local_master, ks.remote_master, master_len);
  assert_memory_equal(kc.remote_master, ks.local_master, master_len);
  assert_memory_not_equal(kc.local_master, kc.remote_master, master_len);
}

/* ---------- tests ---------- */

static void test_fingerprint_format(void **state) {
  fixture_t *f = *state;
  const char *fp = mf_dtls_cert_fingerprint(f->cert[0]);
  assert_int_equal(strlen(fp), 95);
  for (size_t i = 0; i < 95; i++) {
    if (i % 3 == 2) {
      assert_int_equal(fp[i], ':');
    } else {
      assert_true((fp[i] >= '0' && fp[i] <= '9') || (fp[i] >= 'A' && fp[i] <= 'F'));
    }
  }
  assert_string_not_equal(fp, mf_dtls_cert_fingerprint(f->cert[1]));

  static const struct {
    const char *alg;
    size_t len;
  } algs[] = {{"sha-1", 59},   {"sha-224", 83}, {"sha-256", 95},
              {"SHA-256", 95}, {"sha-384", 143}, {"sha-512", 191}};
  for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
    char buf[MF_DTLS_FINGERPRINT_MAX];
    assert_int_equal(mf_dtls_cert_fingerprint_for(f->cert[0], algs[i].alg, buf, sizeof buf),
                     MF_OK);
    assert_int_equal(strlen(buf), algs[i].len);
    if (algs[i].len == 95) assert_string_equal(buf, fp);
  }
  char small[95];
  assert_int_equal(mf_dtls_cert_fingerprint_for(f->cert[0], "sha-256", small, sizeof small),
                   MF_ERR_LIMIT);
  char buf[MF_DTLS_FINGERPRINT_MAX];
  assert_int_equal(mf_dtls_cert_fingerprint_for(f->cert[0], "md5", buf, sizeof buf),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_cert_fingerprint_for(f->cert[0], "sha256", buf, sizeof buf),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_cert_fingerprint_for(f->cert[0], NULL, buf, sizeof buf),
                   MF_ERR_INVALID_ARG);
}

static void test_role_mapping(void **state) {
  (void)state;
  static const struct {
    mf_dtls_role_t remote, local;
  } table[] = {
      {MF_DTLS_ROLE_CLIENT, MF_DTLS_ROLE_SERVER},
      {MF_DTLS_ROLE_SERVER, MF_DTLS_ROLE_CLIENT},
      {MF_DTLS_ROLE_AUTO, MF_DTLS_ROLE_CLIENT},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    assert_int_equal(mf_dtls_local_role_for_remote(table[i].remote), table[i].local);
  assert_string_equal(mf_dtls_role_name(MF_DTLS_ROLE_AUTO), "auto");
  assert_string_equal(mf_dtls_role_name(MF_DTLS_ROLE_CLIENT), "client");
  assert_string_equal(mf_dtls_role_name(MF_DTLS_ROLE_SERVER), "server");
  assert_string_equal(mf_dtls_state_name(MF_DTLS_STATE_CONNECTED), "connected");
}

static void test_handshake_gcm(void **state) {
  fixture_t *f = *state;
  net_t *n = f->net;
  create_pair(f, f->ctx[0], f->ctx[1]);
  assert_int_equal(mf_dtls_state(n->ep[0].d), MF_DTLS_STATE_NEW);
  mf_srtp_keys_t k;
  assert_int_equal(mf_dtls_get_srtp_keys(n->ep[0].d, &k), MF_ERR_STATE);
  start_pair(f, 0, 1);
  assert_true(n->sent[0] >= 1); /* ClientHello went out from inside start */
  assert_int_equal(n->sent[1], 0);
  pump(n);
  for (int i = 0; i < 2; i++) {
    endpoint_t *ep = &n->ep[i];
    assert_int_equal(ep->nstates, 2);
    assert_int_equal(ep->states[0], MF_DTLS_STATE_CONNECTING);
    assert_int_equal(ep->states[1], MF_DTLS_STATE_CONNECTED);
    assert_int_equal(mf_dtls_state(ep->d), MF_DTLS_STATE_CONNECTED);
  }
  assert_int_equal(mf_dtls_local_role(n->ep[0].d), MF_DTLS_ROLE_CLIENT);
  assert_int_equal(mf_dtls_local_role(n->ep[1].d), MF_DTLS_ROLE_SERVER);
  assert_keys_crosswise(f, MF_SRTP_PROFILE_AEAD_AES_128_GCM, 28);
  assert_true(n->max_len <= MF_DTLS_MTU);
}

static void test_handshake_cm_when_server_only_offers_cm(void **state) {
  fixture_t *f = *state;
  create_pair(f, f->ctx[0], f->ctx_cm_only);
  start_pair(f, 0, 1);
  pump(f->net);
  assert_int_equal(last_state(&f->net->ep[0]), MF_DTLS_STATE_CONNECTED);
  assert_int_equal(last_state(&f->net->ep[1]), MF_DTLS_STATE_CONNECTED);
  assert_keys_crosswise(f, MF_SRTP_PROFILE_AES128_CM_SHA1_80, 30);
}

static void test_fingerprint_mismatch_client_checks(void **state) {
  fixture_t *f = *state;
  net_t *n = f->net;
  create_pair(f, f->ctx[0], f->ctx[1]);
  /* The client expects its own fingerprint from the server: wrong. */
  start_pair(f, 0, 0);
  pump(n);
  assert_int_equal(last_state(&n->ep[0]), MF_DTLS_STATE_FAILED);
  assert_string_equal(n->ep[0].reason, "fingerprint mismatch");
  /* The server had verified the client fine, then got the client's close_notify. */
  assert_int_equal(last_state(&n->ep[1]), MF_DTLS_STATE_CLOSED);
  mf_srtp_keys_t k;
  assert_int_equal(mf_dtls_get_srtp_keys(n->ep[0].d, &k), MF_ERR_STATE);
  uint8_t junk[20] = {23, 0xfe, 0xfd};
  assert_int_equal(mf_dtls_handle_datagram(n->ep[0].d, junk, sizeof junk), MF_ERR_CLOSED);
}

static void test_fingerprint_mismatch_server_checks(void **state) {
  fixture_t *f = *state;
  net_t *n = f->net;
  create_pair(f, f->ctx[0], f->ctx[1]);
  start_pair(f, 1, 1); /* the server expects its own fingerprint from the client */
  pump(n);
  assert_int_equal(last_state(&n->ep[1]), MF_DTLS_STATE_FAILED);
  assert_string_equal(n->ep[1].reason, "fingerprint mismatch");
  assert_int_not_equal(last_state(&n->ep[0]), MF_DTLS_STATE_FAILED);
  assert_int_not_equal(last_state(&n->ep[0]), MF_DTLS_STATE_CONNECTING);
}

static void test_fingerprint_algorithms_and_case(void **state) {
  fixture_t *f = *state;
  static const char *const algs[] = {"sha-1", "SHA-384", "sha-512", "sha-224"};
  for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
    if (i > 0) {
      test_teardown(state);
      test_setup(state);
    }
    net_t *n = f->net;
    create_pair(f, f->ctx[0], f->ctx[1]);
    char fp_client[MF_DTLS_FINGERPRINT_MAX], fp_server[MF_DTLS_FINGERPRINT_MAX];
    assert_int_equal(
        mf_dtls_cert_fingerprint_for(f->cert[0], algs[i], fp_client, sizeof fp_client), MF_OK);
    assert_int_equal(
        mf_dtls_cert_fingerprint_for(f->cert[1], algs[i], fp_server, sizeof fp_server), MF_OK);
    /* Lowercase hex on one side: the comparison is case-insensitive. */
    for (char *p = fp_server; *p; p++) *p = (char)tolower((unsigned char)*p);
    assert_int_equal(mf_dtls_start(n->ep[1].d, MF_DTLS_ROLE_SERVER, algs[i], fp_client), MF_OK);
    assert_int_equal(mf_dtls_start(n->ep[0].d, MF_DTLS_ROLE_CLIENT, algs[i], fp_server), MF_OK);
    pump(n);
    assert_int_equal(last_state(&n->ep[0]), MF_DTLS_STATE_CONNECTED);
    assert_int_equal(last_state(&n->ep[1]), MF_DTLS_STATE_CONNECTED);
  }
}

static void test_fingerprint_given_after_handshake(void **state) {
  fixture_t *f = *state;
  net_t *n = f->net;
  create_pair(f, f->ctx[0], f->ctx[1]);
  assert_int_equal(mf_dtls_start(n->ep[1].d, MF_DTLS_ROLE_SERVER, NULL, NULL), MF_OK);
  assert_int_equal(mf_dtls_start(n->ep[0].d, MF_DTLS_ROLE_CLIENT, "sha-256",
                                 mf_dtls_cert_fingerprint(f->cert[1])),
                   MF_OK);
  pump(n);
  /* The handshake is done but the server cannot vouch for the client yet. */
  assert_int_equal(last_state(&n->ep[0]), MF_DTLS_STATE_CONNECTED);
  assert_int_equal(mf_dtls_state(n->ep[1].d), MF_DTLS_STATE_CONNECTING);
  mf_srtp_keys_t k;
  assert_int_equal(mf_dtls_get_srtp_keys(n->ep[1].d, &k), MF_ERR_STATE);
  /* Application data before authentication is not delivered. */
  static const uint8_t early[] = "early";
  assert_int_equal(mf_dtls_send_application_data(n->ep[0].d, early, sizeof early), MF_OK);
  pump(n);
  assert_int_equal(n->ep[1].app_count, 0);

  assert_int_equal(mf_dtls_set_remote_fingerprint(n->ep[1].d, "sha-999", "AA"),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_set_remote_fingerprint(n->ep[1].d, "sha-256",
                                                  mf_dtls_cert_fingerprint(f->cert[0])),
                   MF_OK);
  assert_int_equal(mf_dtls_state(n->ep[1].d), MF_DTLS_STATE_CONNECTED);
  assert_int_equal(mf_dtls_set_remote_fingerprint(n->ep[1].d, "sha-256",
                                                  mf_dtls_cert_fingerprint(f->cert[0])),
                   MF_ERR_STATE);
  assert_keys_crosswise(f, MF_SRTP_PROFILE_AEAD_AES_128_GCM, 28);
}

static void test_start_invalid_args(void **state) {
  fixture_t *f = *state;
  net_t *n = f->net;
  create_pair(f, f->ctx[0], f->ctx[1]);
  mf_dtls_t *d = n->ep[0].d;
  const char *good = mf_dtls_cert_fingerprint(f->cert[1]);
  char lower_bad_sep[96];
  snprintf(lower_bad_sep, sizeof lower_bad_sep, "%s", good);
  lower_bad_sep[2] = '-';
  char non_hex[96];
  snprintf(non_hex, sizeof non_hex, "%s", good);
  non_hex[0] = 'G';
  static const char long_fp[] =
      "AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:"
      "AB:AB:AB:AB:AB";
  const struct {
    mf_dtls_role_t role;
    const char *alg, *value;
    mf_err_t want;
  } table[] = {
      {MF_DTLS_ROLE_AUTO, "sha-256", good, MF_ERR_INVALID_ARG},
      {(mf_dtls_role_t)42, "sha-256", good, MF_ERR_INVALID_ARG},
      {MF_DTLS_ROLE_CLIENT, "md5", good, MF_ERR_INVALID_ARG},
      {MF_DTLS_ROLE_CLIENT, "sha-256", NULL, MF_ERR_INVALID_ARG},
      {MF_DTLS_ROLE_CLIENT, NULL, good, MF_ERR_INVALID_ARG},
      {MF_DTLS_ROLE_CLIENT, "sha-256", "", MF_ERR_INVALID_ARG},
      {MF_DTLS_ROLE_CLIENT, "sha-256", "AB:CD", MF_ERR_INVALID_ARG},
      {MF_DTLS_ROLE_CLIENT, "sha-256", long_fp, MF_ERR_INVALID_ARG},
      {MF_DTLS_ROLE_CLIENT, "sha-1", good, MF_ERR_INVALID_ARG}, /* length of sha-256 */
      {MF_DTLS_ROLE_CLIENT, "sha-256", lower_bad_sep, MF_ERR_INVALID_ARG},
      {MF_DTLS_ROLE_CLIENT, "sha-256", non_hex, MF_ERR_INVALID_ARG},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    assert_int_equal(mf_dtls_start(d, table[i].role, table[i].alg, table[i].value), table[i].want);
    assert_int_equal(mf_dtls_state(d), MF_DTLS_STATE_NEW);
  }
  assert_int_equal(n->sent[0], 0);

  uint8_t dgram[16] = {22, 0xfe, 0xfd};
  assert_int_equal(mf_dtls_handle_datagram(d, dgram, sizeof dgram), MF_ERR_STATE);
  assert_int_equal(mf_dtls_timeout_ms(d), -1);
  assert_int_equal(mf_dtls_send_application_data(d, dgram, 1), MF_ERR_STATE);

  assert_int_equal(mf_dtls_start(d, MF_DTLS_ROLE_CLIENT, "sha-256", good), MF_OK);
  assert_int_equal(mf_dtls_start(d, MF_DTLS_ROLE_CLIENT, "sha-256", good), MF_ERR_STATE);
  assert_int_equal(mf_dtls_handle_datagram(d, dgram, 0), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_handle_datagram(d, NULL, 4), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_set_remote_fingerprint(d, "sha-256", good), MF_ERR_STATE);

  mf_dtls_callbacks_t no_send = {NULL, on_state, NULL};
  mf_dtls_t *bad = NULL;
  assert_int_equal(mf_dtls_create(f->ctx[0], &no_send, NULL, &bad), MF_ERR_INVALID_ARG);
  assert_null(bad);
  mf_dtls_context_options_t bad_opts = {.srtp_profiles = "SRTP_NOT_A_PROFILE"};
  mf_dtls_context_t *ctx = NULL;
  assert_int_equal(mf_dtls_context_create_ex(f->cert[0], &bad_opts, &ctx), MF_ERR_INVALID_ARG);
  assert_null(ctx);
  const mf_dtls_context_options_t bad_timers[] = {
      {.initial_timeout_ms = 500, .max_timeout_ms = 100},
      {.initial_timeout_ms = 5, .max_timeout_ms = 100},
      {.initial_timeout_ms = 100, .max_timeout_ms = 120000},
  };
  for (size_t i = 0; i < sizeof bad_timers / sizeof bad_timers[0]; i++)
    assert_int_equal(mf_dtls_context_create_ex(f->cert[0], &bad_timers[i], &ctx),
                     MF_ERR_INVALID_ARG);
}

/* Runs timers and delivery until both ends are CONNECTED (bounded). */
static void drive_until_connected(net_t *n) {
  for (int round = 0; round < 40; round++) {
    pump(n);
    if (last_state(&n->ep[0]) == MF_DTLS_STATE_CONNECTED &&
        last_state(&n->ep[1]) == MF_DTLS_STATE_CONNECTED)
      return;
    long wait = -1;
    for (int i = 0; i < 2; i++) {
      long t = mf_dtls_timeout_ms(n->ep[i].d);
      if (t >= 0 && (wait < 0 || t < wait)) wait = t;
    }
    assert_true(wait >= 0); /* someone must still be waiting for a retransmission */
    sleep_ms(wait + 1);
    for (int i = 0; i < 2; i++) mf_dtls_handle_timeout(n->ep[i].d);
  }
  fail_msg("handshake did not complete");
}

static void test_timeout_retransmits_lost_first_flight(void **state) {
  fixture_t *f = *state;
  net_t *n = f->net;
  create_pair(f, f->ctx[0], f->ctx[1]);
  n->drop[0] = 1; /* the ClientHello */
  start_pair(f, 0, 1);
  assert_int_equal(n->head, n->tail); /* nothing reached the server */
  long t = mf_dtls_timeout_ms(n->ep[0].d);
  assert_true(t >= 0 && t <= 100); /* default first timeout */
  assert_int_equal(mf_dtls_timeout_ms(n->ep[1].d), -1); /* server has sent nothing */
  /* Without a running timer a timeout call sends nothing. */
  mf_dtls_handle_timeout(n->ep[1].d);
  assert_int_equal(n->sent[1], 0);
  size_t sent = n->sent[0];
  drive_until_connected(n);
  assert_true(n->sent[0] > sent);
  assert_keys_crosswise(f, MF_SRTP_PROFILE_AEAD_AES_128_GCM, 28);
}

static void test_timeout_retransmits_lost_server_flight(void **state) {
  fixture_t *f = *state;
  net_t *n = f->net;
  create_pair(f, f->ctx[0], f->ctx[1]);
  n->drop[1] = 2; /* part of the server's first flight */
  start_pair(f, 0, 1);
  drive_until_connected(n);
  assert_keys_crosswise(f, MF_SRTP_PROFILE_AEAD_AES_128_GCM, 28);
}

static void test_timeout_gives_up(void **state) {
  fixture_t *f = *state;
  net_t *n = f->net;
  create_pair(f, f->ctx_fast_timer, f->ctx[1]);
  n->drop_all[0] = true;
  start_pair(f, 0, 1);
  int rounds = 0;
  while (last_state(&n->ep[0]) == MF_DTLS_STATE_CONNECTING) {
    assert_true(++rounds < 200);
    long t = mf_dtls_timeout_ms(n->ep[0].d);
    assert_true(t >= 0);
    sleep_ms(t + 1);
    mf_dtls_handle_timeout(n->ep[0].d);
  }
  assert_int_equal(last_state(&n->ep[0]), MF_DTLS_STATE_FAILED);
  assert_true(strncmp(n->ep[0].reason, "handshake timeout", 17) == 0);
  assert_true(rounds > 10);
  assert_int_equal(n->sent[0], 13); /* ClientHello + 12 retransmissions, then give up */
  assert_int_equal(mf_dtls_timeout_ms(n->ep[0].d), -1);
}

static void test_garbage_datagrams(void **state) {
  fixture_t *f = *state;
  net_t *n = f->net;
  create_pair(f, f->ctx[0], f->ctx[1]);
  start_pair(f, 0, 1);

  uint8_t random_app[100];
  for (size_t i = 0; i < sizeof random_app; i++) random_app[i] = (uint8_t)(i * 37 + 11);
  random_app[0] = 23; /* application data record in epoch 0 */
  random_app[1] = 0xfe;
  random_app[2] = 0xfd;
  uint8_t short_hdr[5] = {22, 0xfe, 0xfd, 0, 0};
  uint8_t long_len[30] = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0x03, 0xe8}; /* 1000 > 17 */
  uint8_t bad_version[40] = {22, 0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 27};
  uint8_t one = 63;
  uint8_t epoch_far[40] = {23, 0xfe, 0xfd, 0, 9, 0, 0, 0, 0, 0, 1, 0, 27};
  const struct {
    const uint8_t *data;
    size_t len;
  } garbage[] = {
      {random_app, sizeof random_app}, {short_hdr, sizeof short_hdr},
      {long_len, sizeof long_len},     {bad_version, sizeof bad_version},
      {&one, 1},                       {epoch_far, sizeof epoch_far},
  };
  /* To the server before it heard anything, and to the client mid-handshake. */
  for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
    assert_int_equal(mf_dtls_handle_datagram(n->ep[1].d, garbage[i].data, garbage[i].len), MF_OK);
    assert_int_equal(mf_dtls_handle_datagram(n->ep[0].d, garbage[i].data, garbage[i].len), MF_OK);
    assert_int_equal(mf_dtls_state(n->ep[0].d), MF_DTLS_STATE_CONNECTING);
    assert_int_equal(mf_dtls_state(n->ep[1].d), MF_DTLS_STATE_CONNECTING);
  }
  drive_until_connected(n);
  /* And after the handshake. */
  for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
    for (int e = 0; e < 2; e++) {
      assert_int_equal(mf_dtls_handle_datagram(n->ep[e].d, garbage[i].data, garbage[i].len),
                       MF_OK);
      assert_int_equal(mf_dtls_state(n->ep[e].d), MF_DTLS_STATE_CONNECTED);
    }
  }
  assert_int_equal(n->ep[0].app_count + n->ep[1].app_count, 0);
  static const uint8_t msg[] = "still works";
  assert_int_equal(mf_dtls_send_application_data(n->ep[0].d, msg, sizeof msg), MF_OK);
  pump(n);
  assert_int_equal(n->ep[1].app_count, 1);
  assert_int_equal(n->ep[1].app_len, sizeof msg);
  assert_memory_equal(n->ep[1].app, msg, sizeof msg);
  assert_keys_crosswise(f, MF_SRTP_PROFILE_AEAD_AES_128_GCM, 28);
}

static void test_app_data_and_close_notify(void **state) {
  fixture_t *f = *state;
  net_t *n = f->net;
  create_pair(f, f->ctx[0], f->ctx[1]);
  start_pair(f, 0, 1);
  pump(n);
  static const uint8_t ping[] = "ping";
  static const uint8_t pong[] = "pong!";
  assert_int_equal(mf_dtls_send_application_data(n->ep[0].d, ping, sizeof ping), MF_OK);
  assert_int_equal(mf_dtls_send_application_data(n->ep[1].d, pong, sizeof pong), MF_OK);
  pump(n);
  assert_int_equal(n->ep[1].app_count, 1);
  assert_memory_equal(n->ep[1].app, ping, sizeof ping);
  assert_int_equal(n->ep[0].app_count, 1);
  assert_memory_equal(n->ep[0].app, pong, sizeof pong);
  static uint8_t big[MF_DTLS_MAX_APP_DATA + 1];
  assert_int_equal(mf_dtls_send_application_data(n->ep[0].d, big, sizeof big), MF_ERR_LIMIT);

  mf_dtls_close(n->ep[0].d);
  assert_int_equal(last_state(&n->ep[0]), MF_DTLS_STATE_CLOSED);
  assert_string_equal(n->ep[0].reason, "closed locally");
  pump(n);
  assert_int_equal(last_state(&n->ep[1]), MF_DTLS_STATE_CLOSED);
  assert_string_equal(n->ep[1].reason, "close_notify received");
  assert_int_equal(mf_dtls_send_application_data(n->ep[1].d, ping, sizeof ping), MF_ERR_STATE);
  mf_dtls_close(n->ep[0].d); /* idempotent, no second callback */
  assert_int_equal(n->ep[0].nstates, 3);
  assert_int_equal(mf_dtls_timeout_ms(n->ep[1].d), -1);
}

static void test_free_inside_callback_and_reentry(void **state) {
  fixture_t *f = *state;
  net_t *n = f->net;
  create_pair(f, f->ctx[0], f->ctx[1]);
  n->ep[0].probe_reentry = true;
  n->ep[0].reentry_result = MF_OK;
  start_pair(f, 0, 1);
  /* Calling into the object from its own send callback is refused, not recursed. */
  assert_int_equal(n->ep[0].reentry_result, MF_ERR_STATE);
  pump(n);
  assert_int_equal(last_state(&n->ep[1]), MF_DTLS_STATE_CONNECTED);
  n->ep[1].free_on_closed = true;
  mf_dtls_close(n->ep[0].d);
  pump(n); /* the server frees itself inside its CLOSED callback */
  assert_null(n->ep[1].d);
  assert_int_equal(last_state(&n->ep[1]), MF_DTLS_STATE_CLOSED);
}

/* ---------- against a plain OpenSSL peer (independent reference for RFC 5764 4.2) ----- */

static int raw_verify_any(int ok, X509_STORE_CTX *store) {
  (void)ok;
  (void)store;
  return 1;
}

typedef struct {
  SSL_CTX *ctx;
  SSL *ssl;
  BIO *rbio, *wbio; /* mem BIOs: a drained write is one (multi-record) datagram */
  char fingerprint[MF_DTLS_FINGERPRINT_MAX];
} raw_peer_t;

static void raw_peer_init(raw_peer_t *r, bool server) {
  EVP_PKEY *key = EVP_EC_gen("P-256");
  assert_non_null(key);
  X509 *x = X509_new();
  assert_non_null(x);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             (const unsigned char *)"raw", -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  assert_true(X509_sign(x, key, EVP_sha256()) > 0);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  assert_int_equal(X509_digest(x, EVP_sha256(), md, &n), 1);
  for (unsigned i = 0; i < n; i++)
    snprintf(r->fingerprint + 3 * i, 4, i + 1 < n ? "%02X:" : "%02X", md[i]);

  r->ctx = SSL_CTX_new(server ? DTLS_server_method() : DTLS_client_method());
  assert_non_null(r->ctx);
  assert_int_equal(SSL_CTX_use_certificate(r->ctx, x), 1);
  assert_int_equal(SSL_CTX_use_PrivateKey(r->ctx, key), 1);
  SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, raw_verify_any);
  assert_int_equal(SSL_CTX_set_tlsext_use_srtp(r->ctx, "SRTP_AEAD_AES_128_GCM"), 0);
  SSL_CTX_set_options(r->ctx, SSL_OP_NO_QUERY_MTU);
  X509_free(x);
  EVP_PKEY_free(key);
  r->ssl = SSL_new(r->ctx);
  assert_non_null(r->ssl);
  r->rbio = BIO_new(BIO_s_mem());
  r->wbio = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(r->rbio, -1);
  SSL_set_bio(r->ssl, r->rbio, r->wbio);
  SSL_set_mtu(r->ssl, 1400);
  if (server) {
    SSL_set_accept_state(r->ssl);
  } else {
    SSL_set_connect_state(r->ssl);
  }
}

static void raw_peer_free(raw_peer_t *r) {
  SSL_free(r->ssl);
  SSL_CTX_free(r->ctx);
}

/* One handshake step of the raw peer; its output goes to endpoint `to`. */
static void raw_peer_step(raw_peer_t *r, net_t *n, int to) {
  (void)SSL_do_handshake(r->ssl);
  char *data = NULL;
  long len = BIO_get_mem_data(r->wbio, &data);
  if (len > 0) {
    assert_int_equal(mf_dtls_handle_datagram(n->ep[to].d, (const uint8_t *)data, (size_t)len),
                     MF_OK);
    (void)BIO_reset(r->wbio);
  }
}

static void check_split_against_raw(fixture_t *f, bool mf_is_server) {
  net_t *n = f->net;
  raw_peer_t raw;
  raw_peer_init(&raw, !mf_is_server);
  assert_int_equal(mf_dtls_create(f->ctx[0], &k_callbacks, &n->ep[0], &n->ep[0].d), MF_OK);
  mf_dtls_role_t role = mf_is_server ? MF_DTLS_ROLE_SERVER : MF_DTLS_ROLE_CLIENT;
  assert_int_equal(mf_dtls_start(n->ep[0].d, role, "sha-256", raw.fingerprint), MF_OK);
  for (int round = 0; round < 20 && !SSL_is_init_finished(raw.ssl); round++) {
    /* Everything our endpoint sent since the last step goes into the raw peer. */
    while (n->head != n->tail) {
      pkt_t *p = &n->q[n->head++ % QUEUE_CAP];
      assert_int_equal(BIO_write(raw.rbio, p->data, (int)p->len), (int)p->len);
    }
    raw_peer_step(&raw, n, 0);
  }
  while (n->head != n->tail) { /* the last flight, if ours */
    pkt_t *p = &n->q[n->head++ % QUEUE_CAP];
    BIO_write(raw.rbio, p->data, (int)p->len);
  }
  (void)SSL_do_handshake(raw.ssl);
  assert_true(SSL_is_init_finished(raw.ssl));
  assert_int_equal(last_state(&n->ep[0]), MF_DTLS_STATE_CONNECTED);

  uint8_t km[56]; /* GCM: 2 * (16 + 12) */
  assert_int_equal(SSL_export_keying_material(raw.ssl, km, sizeof km, "EXTRACTOR-dtls_srtp", 19,
                                              NULL, 0, 0),
                   1);
  uint8_t client_master[28], server_master[28];
  memcpy(client_master, km, 16);           /* client_write_SRTP_master_key */
  memcpy(client_master + 16, km + 32, 12); /* client_write_SRTP_master_salt */
  memcpy(server_master, km + 16, 16);      /* server_write_SRTP_master_key */
  memcpy(server_master + 16, km + 44, 12); /* server_write_SRTP_master_salt */
  mf_srtp_keys_t k;
  assert_int_equal(mf_dtls_get_srtp_keys(n->ep[0].d, &k), MF_OK);
  assert_int_equal(k.profile, MF_SRTP_PROFILE_AEAD_AES_128_GCM);
  assert_int_equal(k.master_len, 28);
  assert_memory_equal(k.local_master, mf_is_server ? server_master : client_master, 28);
  assert_memory_equal(k.remote_master, mf_is_server ? client_master : server_master, 28);
  raw_peer_free(&raw);
}

static void test_key_split_against_plain_openssl_client(void **state) {
  check_split_against_raw(*state, true);
}

static void test_key_split_against_plain_openssl_server(void **state) {
  check_split_against_raw(*state, false);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fingerprint_format),
      cmocka_unit_test(test_role_mapping),
      cmocka_unit_test_setup_teardown(test_handshake_gcm, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_handshake_cm_when_server_only_offers_cm, test_setup,
                                      test_teardown),
      cmocka_unit_test_setup_teardown(test_fingerprint_mismatch_client_checks, test_setup,
                                      test_teardown),
      cmocka_unit_test_setup_teardown(test_fingerprint_mismatch_server_checks, test_setup,
                                      test_teardown),
      cmocka_unit_test_setup_teardown(test_fingerprint_algorithms_and_case, test_setup,
                                      test_teardown),
      cmocka_unit_test_setup_teardown(test_fingerprint_given_after_handshake, test_setup,
                                      test_teardown),
      cmocka_unit_test_setup_teardown(test_start_invalid_args, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_timeout_retransmits_lost_first_flight, test_setup,
                                      test_teardown),
      cmocka_unit_test_setup_teardown(test_timeout_retransmits_lost_server_flight, test_setup,
                                      test_teardown),
      cmocka_unit_test_setup_teardown(test_timeout_gives_up, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_garbage_datagrams, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_app_data_and_close_notify, test_setup, test_teardown),
      cmocka_unit_test_setup_teardown(test_free_inside_callback_and_reentry, test_setup,
                                      test_teardown),
      cmocka_unit_test_setup_teardown(test_key_split_against_plain_openssl_client, test_setup,
                                      test_teardown),
      cmocka_unit_test_setup_teardown(test_key_split_against_plain_openssl_server, test_setup,
                                      test_teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
