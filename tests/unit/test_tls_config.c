/* Control-plane TLS: loading and checking the PEM files (good, missing, mismatched,
 * foreign CA, expired, wrong key usage, encrypted, garbage, a key type mbedTLS lacks), the
 * address/scheme rules, and real nng connections over tls+tcp:// on loopback (a member of
 * the CA connects; a client with another CA's certificate, or a plain-TCP client, is
 * refused in the handshake and counted; a server the CA did not sign is refused by the
 * client). Certificates are made here with
 * OpenSSL in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/rpc_endpoint.h"
#include "common/tls_config.h"
#include "controller/rpc_client.h"

static char dir[64];

static void path_of(const char *name, char *out, size_t size) {
  snprintf(out, size, "%s/%s", dir, name);
}

static EVP_PKEY *new_key(const char *type) {
  EVP_PKEY *k = strcmp(type, "ED25519") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                                             : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  assert_non_null(k);
  return k;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  assert_non_null(ext);
  assert_int_equal(X509_add_ext(cert, ext, -1), 1);
  X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by issuer_key (self-signed when issuer is NULL). */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       long not_before_s, long not_after_s, const char *eku) {
  static long serial = 1;
  X509 *c = X509_new();
  assert_non_null(c);
  X509_set_version(c, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
  X509_gmtime_adj(X509_getm_notBefore(c), not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(c), not_after_s);
  X509_set_pubkey(c, key);
  X509_NAME *name = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
  if (!issuer) {
    add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else if (eku) {
    add_ext(c, issuer, NID_ext_key_usage, eku);
  }
  const EVP_MD *md = EVP_PKEY_get_id(issuer_key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
  assert_true(X509_sign(c, issuer_key, md) > 0);
  return c;
}

static void write_cert(const char *name, X509 *c, X509 *chain) {
  char p[128];
  path_of(name, p, sizeof p);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  assert_int_equal(PEM_write_X509(f, c), 1);
  if (chain) assert_int_equal(PEM_write_X509(f, chain), 1);
  fclose(f);
}

static void write_key(const char *name, EVP_PKEY *k, bool encrypted) {
  char p[128];
  path_of(name, p, sizeof p);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  const EVP_CIPHER *cipher = encrypted ? EVP_aes_128_cbc() : NULL;
  assert_int_equal(
      PEM_write_PrivateKey(f, k, cipher, (unsigned char *)(encrypted ? "secret" : NULL),
                           encrypted ? 6 : 0, NULL, NULL),
      1);
  fclose(f);
}

static void write_text(const char *name, const char *text) {
  char p[128];
  path_of(name, p, sizeof p);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* ca.pem (our CA), other-ca.pem; a.* and b.* signed by ca (b with an intermediate
 * chain is not needed: a.pem is a plain leaf); foreign.* by the other CA; expired.*,
 * server-only.* (EKU serverAuth), ed.* (an Ed25519 key, which mbedTLS 2.28 lacks). */
static int make_files(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/mf-tls-test-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  EVP_PKEY *ca_key = new_key("EC"), *other_key = new_key("EC");
  X509 *ca = make_cert("test-ca", ca_key, NULL, ca_key, 0, 86400, NULL);
  X509 *other = make_cert("other-ca", other_key, NULL, other_key, 0, 86400, NULL);
  write_cert("ca.pem", ca, NULL);
  write_cert("other-ca.pem", other, NULL);
  write_cert("both-ca.pem", ca, other);

  struct {
    const char *name;
    X509 *issuer;
    EVP_PKEY *issuer_key;
    long from, to;
    const char *eku;
    const char *type;
  } leaves[] = {
      {"a", ca, ca_key, 0, 86400, "serverAuth,clientAuth", "EC"},
      {"b", ca, ca_key, 0, 86400, NULL, "EC"},
      {"foreign", other, other_key, 0, 86400, "serverAuth,clientAuth", "EC"},
      {"expired", ca, ca_key, -7200, -3600, NULL, "EC"},
      {"server-only", ca, ca_key, 0, 86400, "serverAuth", "EC"},
      {"ed", ca, ca_key, 0, 86400, NULL, "ED25519"},
  };
  for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
    EVP_PKEY *k = new_key(leaves[i].type);
    X509 *c = make_cert(leaves[i].name, k, leaves[i].issuer, leaves[i].issuer_key,
                        leaves[i].from, leaves[i].to, leaves[i].eku);
    char n[64];
    snprintf(n, sizeof n, "%s.pem", leaves[i].name);
    write_cert(n, c, NULL);
    snprintf(n, sizeof n, "%s.key", leaves[i].name);
    write_key(n, k, false);
    if (i == 0) write_key("a-encrypted.key", k, true);
    X509_free(c);
    EVP_PKEY_free(k);
  }
  write_text("garbage.pem", "this is not PEM\n");
  write_text("empty.pem", "");
  X509_free(ca);
  X509_free(other);
  EVP_PKEY_free(ca_key);
  EVP_PKEY_free(other_key);
  return 0;
}

static int remove_files(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void options(mf_tls_options_t *o, const char *cert, const char *key, const char *ca) {
  memset(o, 0, sizeof *o);
  if (cert) path_of(cert, o->cert, sizeof o->cert);
  if (key) path_of(key, o->key, sizeof o->key);
  if (ca) path_of(ca, o->ca, sizeof o->ca);
}

static void test_load_table(void **state) {
  (void)state;
  static const struct {
    const char *cert, *key, *ca;
    bool require;
    mf_err_t want;
    const char *says; /* a piece of the error message */
  } cases[] = {
      {NULL, NULL, NULL, false, MF_OK, ""},
      {"a.pem", "a.key", "ca.pem", false, MF_OK, ""},
      {"a.pem", "a.key", "ca.pem", true, MF_OK, ""},
      {"b.pem", "b.key", "ca.pem", false, MF_OK, ""},       /* no EKU at all: fine */
      {"a.pem", "a.key", "both-ca.pem", false, MF_OK, ""},  /* a bundle of two CAs */
      {NULL, NULL, NULL, true, MF_ERR_INVALID_ARG, "--tls-require needs"},
      {"a.pem", NULL, NULL, false, MF_ERR_INVALID_ARG, "--tls-key is missing"},
      {"a.pem", "a.key", NULL, false, MF_ERR_INVALID_ARG, "--tls-ca is missing"},
      {NULL, "a.key", "ca.pem", false, MF_ERR_INVALID_ARG, "--tls-cert is missing"},
      {"missing.pem", "a.key", "ca.pem", false, MF_ERR_IO, "missing.pem: cannot read"},
      {"a.pem", "missing.key", "ca.pem", false, MF_ERR_IO, "missing.key: cannot read"},
      {"a.pem", "a.key", "missing-ca.pem", false, MF_ERR_IO, "missing-ca.pem: cannot read"},
      {"a.pem", "b.key", "ca.pem", false, MF_ERR_AUTH, "does not match the certificate"},
      {"b.pem", "a.key", "ca.pem", false, MF_ERR_AUTH, "does not match the certificate"},
      {"foreign.pem", "foreign.key", "ca.pem", false, MF_ERR_AUTH, "is not valid for"},
      {"a.pem", "a.key", "other-ca.pem", false, MF_ERR_AUTH, "is not valid for"},
      {"expired.pem", "expired.key", "ca.pem", false, MF_ERR_AUTH, "expired"},
      {"server-only.pem", "server-only.key", "ca.pem", false, MF_ERR_AUTH, "clientAuth"},
      {"a.pem", "a-encrypted.key", "ca.pem", false, MF_ERR_PARSE, "encrypted"},
      {"garbage.pem", "a.key", "ca.pem", false, MF_ERR_PARSE, "not a PEM certificate"},
      {"empty.pem", "a.key", "ca.pem", false, MF_ERR_PARSE, "not a PEM certificate"},
      {"a.pem", "garbage.pem", "ca.pem", false, MF_ERR_PARSE, "not a PEM private key"},
      {"a.pem", "a.pem", "ca.pem", false, MF_ERR_PARSE, "not a PEM private key"},
      {"a.pem", "a.key", "garbage.pem", false, MF_ERR_PARSE, "no PEM certificate"},
      {"a.pem", "a.key", "a.key", false, MF_ERR_PARSE, "no PEM certificate"},
      {"ed.pem", "ed.key", "ca.pem", false, MF_ERR_PARSE, "TLS engine"},
      {"a.pem", "a.key", ".", false, MF_ERR_IO, "read error"}, /* a directory */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_tls_options_t o;
    options(&o, cases[i].cert, cases[i].key, cases[i].ca);
    o.require = cases[i].require;
    if (cases[i].ca && strcmp(cases[i].ca, ".") == 0) snprintf(o.ca, sizeof o.ca, "%s", dir);
    mf_tls_t *t = (mf_tls_t *)1;
    char err[512];
    mf_err_t e = mf_tls_load(&o, &t, err, sizeof err);
    if (e != cases[i].want || !strstr(err, cases[i].says))
      fail_msg("case %zu (%s, %s, %s): got %d \"%s\", want %d with \"%s\"", i, cases[i].cert,
               cases[i].key, cases[i].ca, e, err, cases[i].want, cases[i].says);
    if (e == MF_OK && cases[i].cert) {
      assert_non_null(t);
      assert_non_null(strstr(mf_tls_subject(t), "CN="));
    } else {
      assert_null(t);
    }
    if (e != MF_OK) assert_true(strlen(err) > 10);
    mf_tls_free(t);
  }
}

static void test_oversize_file(void **state) {
  (void)state;
  char p[128];
  path_of("big.pem", p, sizeof p);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  for (int i = 0; i < MF_TLS_FILE_MAX / 16 + 1; i++) fputs("AAAAAAAAAAAAAAA\n", f);
  fclose(f);
  mf_tls_options_t o;
  options(&o, "big.pem", "a.key", "ca.pem");
  mf_tls_t *t;
  char err[512];
  assert_int_equal(mf_tls_load(&o, &t, err, sizeof err), MF_ERR_PARSE);
  assert_non_null(strstr(err, "larger than"));
  unlink(p);
}

static mf_tls_t *load(const char *cert, const char *key, const char *ca, bool require) {
  mf_tls_options_t o;
  options(&o, cert, key, ca);
  o.require = require;
  mf_tls_t *t = NULL;
  char err[512];
  if (mf_tls_load(&o, &t, err, sizeof err) != MF_OK) fail_msg("load: %s", err);
  return t;
}

static void test_addresses(void **state) {
  (void)state;
  static const struct {
    int tls; /* 0 plain, 1 TLS, 2 TLS required */
    const char *in;
    mf_err_t check;
    mf_err_t url;
    const char *out;
  } cases[] = {
      {0, "127.0.0.1:7200", MF_OK, MF_OK, "tcp://127.0.0.1:7200"},
      {0, "tcp://h:1", MF_OK, MF_OK, "tcp://h:1"},
      {0, "tls+tcp://h:1", MF_ERR_INVALID_ARG, MF_ERR_INVALID_ARG, ""},
      {0, "ws://h:1", MF_ERR_INVALID_ARG, MF_ERR_INVALID_ARG, ""},
      {1, "127.0.0.1:7200", MF_OK, MF_OK, "tls+tcp://127.0.0.1:7200"},
      {1, "tcp://h:1", MF_OK, MF_OK, "tls+tcp://h:1"},
      {1, "tls+tcp://[::1]:9", MF_OK, MF_OK, "tls+tcp://[::1]:9"},
      {1, "ipc:///tmp/x", MF_ERR_INVALID_ARG, MF_ERR_INVALID_ARG, ""},
      {2, "h:1", MF_OK, MF_OK, "tls+tcp://h:1"},
      {2, "tcp://h:1", MF_ERR_INVALID_ARG, MF_OK, "tls+tcp://h:1"},
      {2, "tls+tcp://h:1", MF_OK, MF_OK, "tls+tcp://h:1"},
  };
  mf_tls_t *tls = load("a.pem", "a.key", "ca.pem", false);
  mf_tls_t *req = load("a.pem", "a.key", "ca.pem", true);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_tls_set_control(cases[i].tls == 0 ? NULL : cases[i].tls == 1 ? tls : req);
    char err[256] = "", out[64] = "";
    assert_int_equal(mf_tls_check_address(cases[i].in, err, sizeof err), cases[i].check);
    if (cases[i].check != MF_OK) assert_non_null(strstr(err, cases[i].in));
    assert_int_equal(mf_tls_url(cases[i].in, out, sizeof out), cases[i].url);
    if (cases[i].url == MF_OK) assert_string_equal(out, cases[i].out);
  }
  char tiny[12];
  assert_int_equal(mf_tls_url("127.0.0.1:7200", tiny, sizeof tiny), MF_ERR_LIMIT);
  /* Lists: every item is checked, empty ones skipped, the option named. */
  char err[512] = "";
  mf_tls_set_control(req);
  assert_int_equal(mf_tls_check_list("", "--controllers", err, sizeof err), MF_OK);
  assert_int_equal(mf_tls_check_list("a:1,,tls+tcp://b:2", "--controllers", err, sizeof err),
                   MF_OK);
  assert_int_equal(mf_tls_check_list("a:1,tcp://b:2", "--controllers", err, sizeof err),
                   MF_ERR_INVALID_ARG);
  assert_non_null(strstr(err, "--controllers tcp://b:2"));
  mf_tls_set_control(NULL);
  assert_int_equal(mf_tls_check_list("a:1,tcp://b:2", "--controller", err, sizeof err), MF_OK);
  assert_int_equal(mf_tls_check_list("a:1,tls+tcp://b:2", "--controller", err, sizeof err),
                   MF_ERR_INVALID_ARG);
  mf_tls_set_control(NULL);
  mf_tls_free(tls);
  mf_tls_free(req);
}

/* ---- real connections ---- */

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

typedef struct {
  nng_socket rep;
  char address[64];
} server_t;

static void server_start(server_t *s, mf_tls_t *tls) {
  mf_tls_set_control(tls);
  assert_int_equal(nng_rep0_open(&s->rep), 0);
  nng_listener l;
  int rv = -1;
  assert_int_equal(mf_tls_listen(s->rep, "tcp://127.0.0.1:0", "test rpc", &l, &rv), MF_OK);
  assert_int_equal(rv, 0);
  int port = 0;
  assert_int_equal(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
  snprintf(s->address, sizeof s->address, "127.0.0.1:%d", port);
  nng_socket_set_ms(s->rep, NNG_OPT_RECVTIMEO, 3000);
  nng_socket_set_ms(s->rep, NNG_OPT_SENDTIMEO, 3000);
}

static nng_socket client_open(void) {
  nng_socket req;
  assert_int_equal(nng_req0_open(&req), 0);
  nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 3000);
  nng_socket_set_ms(req, NNG_OPT_SENDTIMEO, 3000);
  return req;
}

/* One request and its answer through a client set up with tls (NULL: plain). */
static void round_trip(server_t *s, mf_tls_t *tls) {
  mf_tls_set_control(tls);
  nng_socket req = client_open();
  assert_int_equal(mf_tls_dial(req, s->address, NULL), MF_OK);
  assert_int_equal(nng_send(req, "ping", 5, 0), 0);
  char *buf = NULL;
  size_t len = 0;
  assert_int_equal(nng_recv(s->rep, &buf, &len, NNG_FLAG_ALLOC), 0);
  assert_string_equal(buf, "ping");
  nng_free(buf, len);
  assert_int_equal(nng_send(s->rep, "pong", 5, 0), 0);
  assert_int_equal(nng_recv(req, &buf, &len, NNG_FLAG_ALLOC), 0);
  assert_string_equal(buf, "pong");
  nng_free(buf, len);
  nng_close(req);
}

static void test_mutual_tls(void **state) {
  (void)state;
  mf_tls_t *a = load("a.pem", "a.key", "ca.pem", true);
  mf_tls_t *b = load("b.pem", "b.key", "ca.pem", false);
  server_t s;
  server_start(&s, a);
  round_trip(&s, a);
  round_trip(&s, b); /* another member of the same CA */
  round_trip(&s, a);
  nng_close(s.rep);
  mf_tls_set_control(NULL);
  mf_tls_free(a);
  mf_tls_free(b);
}

/* Waits (polling the listeners' counters) until the refusals counted exceed before. */
static bool refusal_counted(unsigned long before) {
  for (int i = 0; i < 100; i++) {
    mf_tls_poll_refusals();
    if (mf_tls_refused_count() > before) return true;
    sleep_ms(20);
  }
  return false;
}

/* A client whose certificate another CA signed, or with no certificate, fails in the
 * handshake; the server counts (and logs) the refusal and never sees a message. */
static void test_foreign_client_refused(void **state) {
  (void)state;
  mf_tls_t *a = load("a.pem", "a.key", "ca.pem", false);
  /* The foreign client trusts our CA too, so only the server's check can refuse it. */
  mf_tls_t *foreign = load("foreign.pem", "foreign.key", "both-ca.pem", false);
  server_t s;
  server_start(&s, a);
  unsigned long before = mf_tls_refused_count();
  mf_tls_set_control(foreign);
  nng_socket req = client_open();
  int rv = 0;
  assert_int_not_equal(mf_tls_dial(req, s.address, &rv), MF_OK);
  assert_int_not_equal(rv, 0);
  nng_close(req);
  assert_true(refusal_counted(before));
  char *buf = NULL;
  size_t len = 0;
  assert_int_equal(nng_recv(s.rep, &buf, &len, NNG_FLAG_ALLOC | NNG_FLAG_NONBLOCK),
                   NNG_EAGAIN);
  /* The server still serves members afterwards, and the timer keeps polling. */
  round_trip(&s, a);
  nng_close(s.rep);
  mf_tls_set_control(NULL);
  mf_tls_free(a);
  mf_tls_free(foreign);
}

/* The dialing side refuses a server whose certificate our CA did not sign, in the
 * handshake: MF_ERR_AUTH, nothing sent. */
static void test_foreign_server_refused(void **state) {
  (void)state;
  mf_tls_t *foreign = load("foreign.pem", "foreign.key", "both-ca.pem", false);
  mf_tls_t *a = load("a.pem", "a.key", "ca.pem", false);
  server_t s;
  server_start(&s, foreign);
  mf_tls_set_control(a);
  nng_socket req = client_open();
  int rv = 0;
  assert_int_equal(mf_tls_dial(req, s.address, &rv), MF_ERR_AUTH);
  assert_int_not_equal(rv, 0);
  nng_close(req);
  nng_close(s.rep);
  mf_tls_set_control(NULL);
  mf_tls_free(a);
  mf_tls_free(foreign);
}

/* Plain TCP on either side of a TLS peer never exchanges a message. */
static void test_plain_and_tls_do_not_mix(void **state) {
  (void)state;
  mf_tls_t *a = load("a.pem", "a.key", "ca.pem", false);
  server_t s;
  server_start(&s, a);
  unsigned long before = mf_tls_refused_count();
  mf_tls_set_control(NULL);
  nng_socket req = client_open();
  assert_int_not_equal(mf_tls_dial(req, s.address, NULL), MF_OK);
  nng_close(req);
  assert_true(refusal_counted(before)); /* a plain client counts as refused too */
  nng_close(s.rep);

  server_start(&s, NULL);
  mf_tls_set_control(a);
  req = client_open();
  assert_int_not_equal(mf_tls_dial(req, s.address, NULL), MF_OK);
  nng_close(req);
  round_trip(&s, NULL);
  nng_close(s.rep);
  mf_tls_set_control(NULL);
  mf_tls_free(a);
}

/* ---- the RPC endpoint and client (the hooks in common/rpc_endpoint.c and
 * controller/rpc_client.c) over TLS ---- */

typedef struct {
  uv_loop_t loop;
  uv_async_t stop;
  mf_rpc_endpoint_t *ep;
  pthread_t thread;
  atomic_int handled;
  char address[64];
} rpc_server_t;

static void echo_handler(void *ud, mf_rpc_request_t *req, const Mafalda__Rpc__Envelope *env) {
  (void)env;
  rpc_server_t *s = ud;
  atomic_fetch_add(&s->handled, 1);
  mf_rpc_reply(req, MAFALDA__RPC__STATUS__STATUS_OK, NULL, NULL);
}

static void on_stop(uv_async_t *a) {
  rpc_server_t *s = a->data;
  mf_rpc_endpoint_stop(s->ep);
  uv_close((uv_handle_t *)a, NULL);
}

static void *rpc_loop(void *arg) {
  rpc_server_t *s = arg;
  uv_run(&s->loop, UV_RUN_DEFAULT);
  return NULL;
}

/* The endpoint starts on this thread before the loop thread takes the loop over. */
static void rpc_server_start(rpc_server_t *s) {
  memset(s, 0, sizeof *s);
  assert_int_equal(uv_loop_init(&s->loop), 0);
  mf_rpc_endpoint_config_t c = {.listen_url = "tcp://127.0.0.1:0",
                                .handler = echo_handler,
                                .ud = s,
                                .log_name = "test rpc"};
  assert_int_equal(mf_rpc_endpoint_start(&s->loop, &c, &s->ep), MF_OK);
  snprintf(s->address, sizeof s->address, "tcp://127.0.0.1:%u", mf_rpc_endpoint_port(s->ep));
  assert_int_equal(uv_async_init(&s->loop, &s->stop, on_stop), 0);
  s->stop.data = s;
  assert_int_equal(pthread_create(&s->thread, NULL, rpc_loop, s), 0);
}

static void rpc_server_stop(rpc_server_t *s) {
  uv_async_send(&s->stop);
  pthread_join(s->thread, NULL);
  mf_rpc_endpoint_free(s->ep);
  assert_int_equal(uv_loop_close(&s->loop), 0);
}

static mf_err_t call(const char *url) {
  mf_rpc_reply_t reply;
  mf_err_t e = mf_rpc_call(url, "test.Echo", NULL, 3000, &reply);
  if (e == MF_OK) {
    assert_int_equal(reply.envelope->status, MAFALDA__RPC__STATUS__STATUS_OK);
    mf_rpc_reply_free(&reply);
  }
  return e;
}

static void test_rpc_endpoint_and_client(void **state) {
  (void)state;
  mf_tls_t *a = load("a.pem", "a.key", "ca.pem", true);
  mf_tls_t *b = load("b.pem", "b.key", "ca.pem", false);
  mf_tls_t *foreign = load("foreign.pem", "foreign.key", "both-ca.pem", false);
  mf_tls_t *untrusting = load("foreign.pem", "foreign.key", "other-ca.pem", false);
  mf_tls_set_control(a);
  rpc_server_t s;
  rpc_server_start(&s);
  assert_int_equal(call(s.address), MF_OK);
  mf_tls_set_control(b);
  assert_int_equal(call(s.address), MF_OK);
  /* The scheme follows the setting, whatever the URL says. */
  char tls_url[80];
  snprintf(tls_url, sizeof tls_url, "tls+tcp://%s", s.address + strlen("tcp://"));
  assert_int_equal(call(tls_url), MF_OK);
  assert_int_equal(atomic_load(&s.handled), 3);
  mf_tls_set_control(foreign); /* the server refuses it */
  assert_int_not_equal(call(s.address), MF_OK);
  mf_tls_set_control(untrusting); /* it refuses the server */
  assert_int_equal(call(s.address), MF_ERR_AUTH);
  mf_tls_set_control(NULL); /* plain TCP */
  assert_int_not_equal(call(s.address), MF_OK);
  assert_int_equal(call(tls_url), MF_ERR_INVALID_ARG); /* tls+tcp:// without TLS */
  assert_int_equal(atomic_load(&s.handled), 3);
  mf_tls_set_control(a);
  assert_int_equal(call(s.address), MF_OK);
  rpc_server_stop(&s);
  mf_tls_set_control(NULL);
  mf_tls_free(a);
  mf_tls_free(b);
  mf_tls_free(foreign);
  mf_tls_free(untrusting);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_table),
      cmocka_unit_test(test_oversize_file),
      cmocka_unit_test(test_addresses),
      cmocka_unit_test(test_mutual_tls),
      cmocka_unit_test(test_foreign_client_refused),
      cmocka_unit_test(test_foreign_server_refused),
      cmocka_unit_test(test_plain_and_tls_do_not_mix),
      cmocka_unit_test(test_rpc_endpoint_and_client),
  };
  return cmocka_run_group_tests(tests, make_files, remove_files);
}
