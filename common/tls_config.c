#include "common/tls_config.h"

#include <errno.h>
#include <nng/supplemental/tls/tls.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MF_LOG_MODULE "tls"
#include "common/log.h"

struct mf_tls {
  nng_tls_config *server; /* listeners: verify per connection (see the header) */
  nng_tls_config *client; /* dialers: the server must present a valid certificate */
  bool require;
  char subject[256];
};

static mf_tls_t *control_tls;
static void watch_stop(void);
static atomic_ulong refused_total;

static mf_err_t fail(char *err, size_t errsz, mf_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static mf_err_t fail(char *err, size_t errsz, mf_err_t code, const char *fmt, ...) {
  if (err && errsz) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* The first OpenSSL error as text (and clears the queue). */
static const char *ssl_reason(char *buf, size_t size) {
  unsigned long e = ERR_get_error();
  if (!e) {
    snprintf(buf, size, "no PEM data");
  } else {
    const char *r = ERR_reason_error_string(e);
    snprintf(buf, size, "%s", r ? r : "unknown error");
  }
  ERR_clear_error();
  return buf;
}

/* The whole file as a NUL-terminated string (nng wants PEM text). */
static mf_err_t read_file(const char *option, const char *path, char **out, char *err,
                          size_t errsz) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return fail(err, errsz, MF_ERR_IO, "--%s %s: cannot read: %s", option, path,
                strerror(errno));
  char *buf = malloc(MF_TLS_FILE_MAX + 1);
  if (!buf) {
    fclose(f);
    return MF_ERR_NO_MEMORY;
  }
  size_t n = fread(buf, 1, MF_TLS_FILE_MAX + 1, f);
  int read_error = ferror(f);
  fclose(f);
  if (read_error) {
    free(buf);
    return fail(err, errsz, MF_ERR_IO, "--%s %s: read error", option, path);
  }
  if (n > MF_TLS_FILE_MAX) {
    free(buf);
    return fail(err, errsz, MF_ERR_PARSE, "--%s %s: larger than %d bytes: not a PEM file",
                option, path, MF_TLS_FILE_MAX);
  }
  if (memchr(buf, '\0', n)) {
    free(buf);
    return fail(err, errsz, MF_ERR_PARSE, "--%s %s: binary data: expected PEM text", option,
                path);
  }
  buf[n] = '\0';
  *out = buf;
  return MF_OK;
}

/* Never prompts for a passphrase: encrypted keys are refused. */
static int no_password(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return -1;
}

typedef struct {
  char *cert_pem, *key_pem, *ca_pem;
  X509 *cert;
  STACK_OF(X509) *chain; /* certificates after the first in --tls-cert */
  EVP_PKEY *key;
  X509_STORE *store;
} material_t;

static void material_free(material_t *m) {
  free(m->cert_pem);
  free(m->key_pem);
  free(m->ca_pem);
  X509_free(m->cert);
  if (m->chain) sk_X509_pop_free(m->chain, X509_free);
  EVP_PKEY_free(m->key);
  X509_STORE_free(m->store);
}

static mf_err_t parse_cert(const mf_tls_options_t *o, material_t *m, char *err, size_t errsz) {
  char why[160];
  BIO *bio = BIO_new_mem_buf(m->cert_pem, -1);
  if (!bio) return MF_ERR_NO_MEMORY;
  m->cert = PEM_read_bio_X509(bio, NULL, no_password, NULL);
  if (!m->cert) {
    BIO_free(bio);
    return fail(err, errsz, MF_ERR_PARSE, "--tls-cert %s: not a PEM certificate (%s)", o->cert,
                ssl_reason(why, sizeof why));
  }
  m->chain = sk_X509_new_null();
  X509 *more;
  while (m->chain && (more = PEM_read_bio_X509(bio, NULL, no_password, NULL)) != NULL)
    if (!sk_X509_push(m->chain, more)) X509_free(more);
  ERR_clear_error(); /* the end of the file reads as an error */
  BIO_free(bio);
  if (!m->chain) return MF_ERR_NO_MEMORY;
  return MF_OK;
}

static mf_err_t parse_key(const mf_tls_options_t *o, material_t *m, char *err, size_t errsz) {
  char why[160];
  if (strstr(m->key_pem, "ENCRYPTED"))
    return fail(err, errsz, MF_ERR_PARSE,
                "--tls-key %s: the key is encrypted; give an unencrypted key (protect the "
                "file with its permissions)", o->key);
  BIO *bio = BIO_new_mem_buf(m->key_pem, -1);
  if (!bio) return MF_ERR_NO_MEMORY;
  m->key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
  BIO_free(bio);
  if (!m->key)
    return fail(err, errsz, MF_ERR_PARSE, "--tls-key %s: not a PEM private key (%s)", o->key,
                ssl_reason(why, sizeof why));
  if (X509_check_private_key(m->cert, m->key) != 1) {
    ERR_clear_error();
    return fail(err, errsz, MF_ERR_AUTH,
                "--tls-key %s does not match the certificate in --tls-cert %s", o->key,
                o->cert);
  }
  return MF_OK;
}

static mf_err_t parse_ca(const mf_tls_options_t *o, material_t *m, char *err, size_t errsz) {
  char why[160];
  BIO *bio = BIO_new_mem_buf(m->ca_pem, -1);
  if (!bio) return MF_ERR_NO_MEMORY;
  STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(bio, NULL, no_password, NULL);
  BIO_free(bio);
  m->store = X509_STORE_new();
  int n_certs = 0;
  for (int i = 0; infos && m->store && i < sk_X509_INFO_num(infos); i++) {
    X509_INFO *info = sk_X509_INFO_value(infos, i);
    if (info->x509 && X509_STORE_add_cert(m->store, info->x509) == 1) n_certs++;
  }
  if (infos) sk_X509_INFO_pop_free(infos, X509_INFO_free);
  if (!m->store) return MF_ERR_NO_MEMORY;
  if (n_certs == 0)
    return fail(err, errsz, MF_ERR_PARSE, "--tls-ca %s: no PEM certificate in it (%s)", o->ca,
                ssl_reason(why, sizeof why));
  ERR_clear_error();
  return MF_OK;
}

/* The certificate must chain to the CA now and suit both ends of a connection: every
 * member dials and listens with the same certificate, and mbedTLS checks the extended key
 * usage when it is present. */
static mf_err_t verify_cert(const mf_tls_options_t *o, material_t *m, char *err,
                            size_t errsz) {
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  if (!ctx || X509_STORE_CTX_init(ctx, m->store, m->cert, m->chain) != 1) {
    X509_STORE_CTX_free(ctx);
    return MF_ERR_NO_MEMORY;
  }
  int ok = X509_verify_cert(ctx);
  int code = X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  ERR_clear_error();
  if (ok != 1)
    return fail(err, errsz, MF_ERR_AUTH, "--tls-cert %s is not valid for --tls-ca %s: %s",
                o->cert, o->ca, X509_verify_cert_error_string(code));
  if (X509_check_purpose(m->cert, X509_PURPOSE_SSL_CLIENT, 0) != 1 ||
      X509_check_purpose(m->cert, X509_PURPOSE_SSL_SERVER, 0) != 1) {
    ERR_clear_error();
    return fail(err, errsz, MF_ERR_AUTH,
                "--tls-cert %s cannot serve as both TLS client and server certificate (its "
                "extendedKeyUsage must list both serverAuth and clientAuth, or be absent)",
                o->cert);
  }
  return MF_OK;
}

static mf_err_t nng_config(const mf_tls_options_t *o, const material_t *m, nng_tls_mode mode,
                           nng_tls_config **out, char *err, size_t errsz) {
  nng_tls_config *c = NULL;
  int rv = nng_tls_config_alloc(&c, mode);
  if (rv != 0)
    return fail(err, errsz, MF_ERR_UNSUPPORTED, "nng has no TLS support: %s",
                nng_strerror(rv));
  const char *what = "--tls-cert/--tls-key";
  rv = nng_tls_config_own_cert(c, m->cert_pem, m->key_pem, NULL);
  if (rv == 0) {
    what = "--tls-ca";
    rv = nng_tls_config_ca_chain(c, m->ca_pem, NULL);
  }
  if (rv == 0) {
    what = "the TLS version";
    rv = nng_tls_config_version(c, NNG_TLS_1_2, NNG_TLS_1_3);
    if (rv == NNG_ENOTSUP) rv = nng_tls_config_version(c, NNG_TLS_1_2, NNG_TLS_1_2);
  }
  if (rv == 0) {
    what = "the authentication mode";
    rv = nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED);
  }
  if (rv != 0) {
    nng_tls_config_free(c);
    return fail(err, errsz, MF_ERR_PARSE, "nng's TLS engine (%s) refused %s (%s, %s, %s): %s",
                nng_tls_engine_description(), what, o->cert, o->key, o->ca, nng_strerror(rv));
  }
  *out = c;
  return MF_OK;
}

mf_err_t mf_tls_load(const mf_tls_options_t *o, mf_tls_t **out, char *err, size_t errsz) {
  *out = NULL;
  if (err && errsz) err[0] = '\0';
  bool any = o->cert[0] || o->key[0] || o->ca[0];
  if (!any) {
    if (o->require)
      return fail(err, errsz, MF_ERR_INVALID_ARG,
                  "--tls-require needs --tls-cert, --tls-key and --tls-ca");
    return MF_OK;
  }
  const char *missing = !o->cert[0] ? "--tls-cert" : !o->key[0] ? "--tls-key"
                                                   : !o->ca[0]  ? "--tls-ca"
                                                                : NULL;
  if (missing)
    return fail(err, errsz, MF_ERR_INVALID_ARG,
                "control-plane TLS needs --tls-cert, --tls-key and --tls-ca together (%s is "
                "missing)", missing);

  material_t m = {0};
  mf_err_t e = read_file("tls-cert", o->cert, &m.cert_pem, err, errsz);
  if (!e) e = read_file("tls-key", o->key, &m.key_pem, err, errsz);
  if (!e) e = read_file("tls-ca", o->ca, &m.ca_pem, err, errsz);
  if (!e) e = parse_cert(o, &m, err, errsz);
  if (!e) e = parse_key(o, &m, err, errsz);
  if (!e) e = parse_ca(o, &m, err, errsz);
  if (!e) e = verify_cert(o, &m, err, errsz);
  mf_tls_t *t = NULL;
  if (!e) {
    t = calloc(1, sizeof *t);
    if (!t) e = MF_ERR_NO_MEMORY;
  }
  if (!e) e = nng_config(o, &m, NNG_TLS_MODE_SERVER, &t->server, err, errsz);
  if (!e) e = nng_config(o, &m, NNG_TLS_MODE_CLIENT, &t->client, err, errsz);
  if (!e) {
    t->require = o->require;
    X509_NAME_oneline(X509_get_subject_name(m.cert), t->subject, sizeof t->subject);
  }
  material_free(&m);
  if (e) {
    if (e == MF_ERR_NO_MEMORY && err && errsz && !err[0])
      fail(err, errsz, e, "out of memory loading the TLS files");
    mf_tls_free(t);
    return e;
  }
  *out = t;
  return MF_OK;
}

void mf_tls_free(mf_tls_t *t) {
  if (!t) return;
  if (t == control_tls) control_tls = NULL;
  if (!control_tls) watch_stop();
  if (t->server) nng_tls_config_free(t->server);
  if (t->client) nng_tls_config_free(t->client);
  free(t);
}

const char *mf_tls_subject(const mf_tls_t *t) { return t ? t->subject : ""; }

void mf_tls_set_control(mf_tls_t *t) { control_tls = t; }
mf_tls_t *mf_tls_control(void) { return control_tls; }
unsigned long mf_tls_refused_count(void) { return atomic_load(&refused_total); }

/* Splits a control address into its scheme (0 none, 1 tcp://, 2 tls+tcp://, -1 other) and
 * host:port. */
static int split_address(const char *address, const char **hostport) {
  *hostport = address;
  if (strncmp(address, "tcp://", 6) == 0) {
    *hostport = address + 6;
    return 1;
  }
  if (strncmp(address, "tls+tcp://", 10) == 0) {
    *hostport = address + 10;
    return 2;
  }
  return strstr(address, "://") ? -1 : 0;
}

mf_err_t mf_tls_check_address(const char *address, char *err, size_t errsz) {
  const char *hp;
  int scheme = split_address(address, &hp);
  if (scheme == -1)
    return fail(err, errsz, MF_ERR_INVALID_ARG,
                "%s: unsupported scheme (give host:port; TLS is chosen by --tls-*)", address);
  if (scheme == 1 && control_tls && control_tls->require)
    return fail(err, errsz, MF_ERR_INVALID_ARG,
                "%s: plain tcp:// refused by --tls-require (give host:port)", address);
  if (scheme == 2 && !control_tls)
    return fail(err, errsz, MF_ERR_INVALID_ARG,
                "%s: tls+tcp:// needs --tls-cert, --tls-key and --tls-ca", address);
  return MF_OK;
}

mf_err_t mf_tls_check_list(const char *list, const char *option, char *err, size_t errsz) {
  const char *cursor = list;
  char item[256];
  while (mf_config_list_next(&cursor, item, sizeof item)) {
    if (!item[0]) continue;
    char why[400];
    if (mf_tls_check_address(item, why, sizeof why) != MF_OK)
      return fail(err, errsz, MF_ERR_INVALID_ARG, "%s %s", option, why);
  }
  return MF_OK;
}

mf_err_t mf_tls_url(const char *address, char *out, size_t size) {
  const char *hp;
  int scheme = split_address(address, &hp);
  if (scheme == -1 || (scheme == 2 && !control_tls)) return MF_ERR_INVALID_ARG;
  int n = snprintf(out, size, "%s%s", control_tls ? "tls+tcp://" : "tcp://", hp);
  return n < 0 || (size_t)n >= size ? MF_ERR_LIMIT : MF_OK;
}

static mf_err_t of_nng(int rv) {
  switch (rv) {
    case 0: return MF_OK;
    case NNG_ECRYPTO:
    case NNG_EPEERAUTH: return MF_ERR_AUTH;
    case NNG_EADDRINVAL:
    case NNG_EINVAL:
    case NNG_ENOTSUP: return MF_ERR_INVALID_ARG;
    case NNG_ENOMEM: return MF_ERR_NO_MEMORY;
    case NNG_ETIMEDOUT: return MF_ERR_TIMEOUT;
    default: return MF_ERR_IO;
  }
}

/* Callers retry (agents every 250 ms): one line per 10 s is enough to point at the peer. */
static void note_dial_refused(const char *url, int rv) {
  static atomic_llong last_ms;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  long long last = atomic_load(&last_ms);
  if (last && now - last < 10000) return;
  if (!atomic_compare_exchange_strong(&last_ms, &last, now)) return;
  MF_LOG_WARN("TLS handshake with %s failed: %s (is its certificate signed by --tls-ca, and "
              "does it trust ours?)", url, nng_strerror(rv));
}

mf_err_t mf_tls_dial(nng_socket sock, const char *address, int *nng_rv) {
  char url[320];
  int rv = 0;
  mf_err_t e = mf_tls_url(address, url, sizeof url);
  if (e) {
    if (nng_rv) *nng_rv = NNG_EADDRINVAL;
    return e;
  }
  nng_dialer d;
  rv = nng_dialer_create(&d, sock, url);
  bool created = rv == 0;
  if (rv == 0 && control_tls) rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, control_tls->client);
  if (rv == 0) rv = nng_dialer_start(d, 0);
  /* A failed blocking dial must not leave a dialer retrying in the background. */
  if (rv != 0 && created) nng_dialer_close(d);
  if (nng_rv) *nng_rv = rv;
  if (control_tls && (rv == NNG_ECRYPTO || rv == NNG_EPEERAUTH || rv == NNG_ECONNSHUT))
    note_dial_refused(url, rv);
  return of_nng(rv);
}

/* Refused handshakes. nng 1.5.2 gives no callback and no address for a connection whose
 * TLS handshake fails (no client certificate, one our CA did not sign, a plain-TCP client,
 * or a peer that refused our certificate): the listener only counts it ("auth" statistic).
 * A watcher polls those counters every second on an nng timer and logs the news per
 * listener, with its address; the peer's address is logged only by the peer itself (its
 * dial fails with MF_ERR_AUTH naming this address). */
#define WATCH_MAX 16
#define WATCH_INTERVAL_MS 1000

typedef struct {
  bool used;
  nng_listener listener;
  const char *name;
  char url[200];
  uint64_t auth_seen;
} watched_t;

static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static watched_t watched[WATCH_MAX];
static nng_aio *watch_aio;

static uint64_t auth_failures(nng_stat *snapshot, nng_listener l, bool *found) {
  nng_stat *ls = nng_stat_find_listener(snapshot, l);
  *found = ls != NULL;
  nng_stat *auth = ls ? nng_stat_find(ls, "auth") : NULL;
  return auth ? nng_stat_value(auth) : 0;
}

unsigned long mf_tls_poll_refusals(void) {
  nng_stat *snapshot = NULL;
  if (nng_stats_get(&snapshot) != 0) return 0;
  unsigned long news = 0;
  pthread_mutex_lock(&watch_mu);
  for (int i = 0; i < WATCH_MAX; i++) {
    watched_t *w = &watched[i];
    if (!w->used) continue;
    bool found;
    uint64_t auth = auth_failures(snapshot, w->listener, &found);
    if (!found) { /* its socket closed */
      w->used = false;
      continue;
    }
    if (auth <= w->auth_seen) continue;
    uint64_t n = auth - w->auth_seen;
    w->auth_seen = auth;
    news += (unsigned long)n;
    MF_LOG_WARN("%s on %s: refused %llu connection%s in the TLS handshake (no client "
                "certificate, one --tls-ca did not sign, a plain-TCP client, or a peer that "
                "does not trust our certificate)",
                w->name, w->url, (unsigned long long)n, n == 1 ? "" : "s");
  }
  pthread_mutex_unlock(&watch_mu);
  nng_stats_free(snapshot);
  atomic_fetch_add(&refused_total, news);
  return news;
}

static void watch_tick(void *arg) {
  (void)arg;
  pthread_mutex_lock(&watch_mu);
  nng_aio *aio = watch_aio; /* set before the first tick, cleared only after the last */
  pthread_mutex_unlock(&watch_mu);
  if (!aio || nng_aio_result(aio) != 0) return; /* stopped */
  mf_tls_poll_refusals();
  nng_sleep_aio(WATCH_INTERVAL_MS, aio);
}

static void watch_listener(nng_listener l, const char *name, const char *url) {
  pthread_mutex_lock(&watch_mu);
  for (int i = 0; i < WATCH_MAX; i++) {
    if (watched[i].used) continue;
    watched[i] = (watched_t){.used = true, .listener = l, .name = name ? name : "rpc"};
    snprintf(watched[i].url, sizeof watched[i].url, "%.*s", (int)sizeof watched[i].url - 1, url);
    break;
  }
  bool start = false;
  if (!watch_aio && nng_aio_alloc(&watch_aio, watch_tick, NULL) == 0) start = true;
  pthread_mutex_unlock(&watch_mu);
  if (start) nng_sleep_aio(WATCH_INTERVAL_MS, watch_aio);
}

static void watch_stop(void) {
  pthread_mutex_lock(&watch_mu);
  nng_aio *aio = watch_aio;
  pthread_mutex_unlock(&watch_mu);
  if (!aio) return;
  nng_aio_stop(aio); /* waits for a tick in progress */
  pthread_mutex_lock(&watch_mu);
  watch_aio = NULL;
  memset(watched, 0, sizeof watched);
  pthread_mutex_unlock(&watch_mu);
  nng_aio_free(aio);
}

/* nng thread, once per connection after the handshake and before the socket sees it. With
 * auth mode required a connection only gets here verified; the check stays as a second
 * line in case a future nng or engine relaxes that. */
static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg) {
  bool verified = false;
  if (ev != NNG_PIPE_EV_ADD_PRE ||
      (nng_pipe_get_bool(p, NNG_OPT_TLS_VERIFIED, &verified) == 0 && verified))
    return;
  char peer[80] = "unknown address";
  nng_sockaddr sa;
  if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0 && sa.s_family == NNG_AF_INET) {
    const uint8_t *a = (const uint8_t *)&sa.s_in.sa_addr;
    const uint8_t *port = (const uint8_t *)&sa.s_in.sa_port;
    snprintf(peer, sizeof peer, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3],
             (unsigned)port[0] << 8 | port[1]);
  }
  nng_pipe_close(p);
  atomic_fetch_add(&refused_total, 1);
  MF_LOG_WARN("%s: refused an unverified TLS connection from %s", (const char *)arg, peer);
}

mf_err_t mf_tls_listen(nng_socket sock, const char *address, const char *log_name,
                       nng_listener *out, int *nng_rv) {
  char url[320];
  mf_err_t e = mf_tls_url(address, url, sizeof url);
  if (e) {
    if (nng_rv) *nng_rv = NNG_EADDRINVAL;
    return e;
  }
  if (!log_name) log_name = "rpc";
  nng_listener l;
  int rv = nng_listener_create(&l, sock, url);
  bool created = rv == 0;
  if (rv == 0 && control_tls) {
    rv = nng_pipe_notify(sock, NNG_PIPE_EV_ADD_PRE, on_pipe, (void *)log_name);
    if (rv == 0) rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, control_tls->server);
  }
  if (rv == 0) rv = nng_listener_start(l, 0);
  if (rv != 0 && created) nng_listener_close(l);
  if (rv == 0 && control_tls) {
    /* Name the bound port in the logs, not ":0". */
    int port = 0;
    char *colon = strrchr(url, ':');
    if (colon && nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0 && port > 0)
      snprintf(colon + 1, sizeof url - (size_t)(colon + 1 - url), "%d", port);
    watch_listener(l, log_name, url);
  }
  if (nng_rv) *nng_rv = rv;
  if (rv == 0 && out) *out = l;
  return of_nng(rv);
}
