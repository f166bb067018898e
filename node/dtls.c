/* DTLS-SRTP over OpenSSL 3.0 with a datagram-preserving custom BIO. See dtls.h. */
#include "node/dtls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/srtp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define MF_LOG_MODULE "dtls"
#include "common/log.h"

/* ECDHE only (forward secrecy); ECDSA first because WebRTC certificates are ECDSA, RSA
 * kept for peers that still use RSA certificates; CBC-SHA last for old stacks. */
#define DTLS_CIPHERS                                                                   \
  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                          \
  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                          \
  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                          \
  "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA"
#define DTLS_GROUPS "X25519:P-256:P-384"
#define DTLS_SRTP_EXPORTER_LABEL "EXTRACTOR-dtls_srtp"
#define DEFAULT_INITIAL_TIMEOUT_MS 100
#define DEFAULT_MAX_TIMEOUT_MS 4000
/* OpenSSL treats a timer with less than 15 ms left as expired, and every SSL call
 * retransmits on an expired timer: shorter timeouts would retransmit in a tight loop. */
#define MIN_TIMEOUT_MS 20
#define MAX_TIMEOUT_MS 60000
#define CERT_VALIDITY_DAYS 365
#define SRTP_KEY_LEN 16 /* both supported profiles use AES-128 */

struct mf_dtls_cert {
  X509 *x509;
  EVP_PKEY *pkey;
  char fingerprint[MF_DTLS_FINGERPRINT_MAX];
};

struct mf_dtls_context {
  SSL_CTX *ssl_ctx;
  BIO_METHOD *bio_method;
  unsigned int initial_timeout_us;
  unsigned int max_timeout_us;
};

struct mf_dtls {
  mf_dtls_context_t *ctx;
  SSL *ssl;
  mf_dtls_callbacks_t cb;
  void *ud;
  mf_dtls_state_t state;
  mf_dtls_role_t role;
  /* The datagram being handed to OpenSSL; the BIO returns it on the next read, once. */
  const uint8_t *in_data;
  size_t in_len;
  bool in_ssl;      /* inside an OpenSSL call: the send callback may be running */
  unsigned depth;   /* nesting of public entry points, for deferred free */
  bool free_requested;
  bool handshake_done;
  bool fp_set;
  const EVP_MD *fp_md;
  char fp_value[MF_DTLS_FINGERPRINT_MAX];
  bool keys_ready;
  mf_srtp_keys_t keys;
  char reason[320];
};

/* ---------- helpers ---------- */

static const struct {
  const char *name;
  const EVP_MD *(*md)(void);
} k_fp_algorithms[] = {
    {"sha-1", EVP_sha1},     {"sha-224", EVP_sha224}, {"sha-256", EVP_sha256},
    {"sha-384", EVP_sha384}, {"sha-512", EVP_sha512},
};

static const EVP_MD *fp_md_by_name(const char *name) {
  if (name == NULL) return NULL;
  for (size_t i = 0; i < sizeof k_fp_algorithms / sizeof k_fp_algorithms[0]; i++) {
    if (strcasecmp(name, k_fp_algorithms[i].name) == 0) return k_fp_algorithms[i].md();
  }
  return NULL;
}

/* "AB:CD:..." into out; needs n * 3 bytes. */
static void format_fingerprint(const unsigned char *md, unsigned n, char *out) {
  static const char hex[] = "0123456789ABCDEF";
  for (unsigned i = 0; i < n; i++) {
    out[3 * i] = hex[md[i] >> 4];
    out[3 * i + 1] = hex[md[i] & 0x0f];
    out[3 * i + 2] = (i + 1 < n) ? ':' : '\0';
  }
  if (n == 0) out[0] = '\0';
}

static mf_err_t cert_digest(X509 *x509, const EVP_MD *md, char *out, size_t cap) {
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (X509_digest(x509, md, buf, &n) != 1) return MF_ERR_CRYPTO;
  if (cap < (size_t)n * 3) return MF_ERR_LIMIT;
  format_fingerprint(buf, n, out);
  return MF_OK;
}

/* Hex pairs separated by colons, exactly as long as the digest. */
static bool fingerprint_well_formed(const char *value, const EVP_MD *md) {
  size_t n = (size_t)EVP_MD_get_size(md);
  if (strlen(value) != n * 3 - 1) return false;
  for (size_t i = 0; i < n * 3 - 1; i++) {
    char c = value[i];
    if (i % 3 == 2) {
      if (c != ':') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

/* Drains the thread's OpenSSL error queue into one line. */
static void openssl_errors(char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char one[256];
    ERR_error_string_n(e, one, sizeof one);
    int w = snprintf(buf + used, cap - used, "%s%s", used ? "; " : "", one);
    if (w < 0 || (size_t)w >= cap - used) {
      ERR_clear_error();
      break;
    }
    used += (size_t)w;
  }
  if (buf[0] == '\0') snprintf(buf, cap, "no OpenSSL error reported");
}

/* ---------- certificate ---------- */

mf_err_t mf_dtls_cert_generate(mf_dtls_cert_t **out) {
  if (out == NULL) return MF_ERR_INVALID_ARG;
  *out = NULL;
  mf_dtls_cert_t *cert = calloc(1, sizeof *cert);
  if (cert == NULL) return MF_ERR_NO_MEMORY;

  ERR_clear_error();
  const char *step = "EVP_EC_gen";
  cert->pkey = EVP_EC_gen("P-256");
  if (cert->pkey == NULL) goto fail;

  step = "X509 fields";
  cert->x509 = X509_new();
  if (cert->x509 == NULL) goto fail;
  uint64_t serial = 0;
  if (RAND_bytes((unsigned char *)&serial, sizeof serial) != 1) goto fail;
  serial &= 0x7fffffffffffffffULL; /* positive INTEGER */
  X509_NAME *name = X509_get_subject_name(cert->x509);
  if (X509_set_version(cert->x509, 2) != 1 ||
      ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert->x509), serial) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert->x509), -24L * 3600) == NULL ||
      X509_gmtime_adj(X509_getm_notAfter(cert->x509), (long)CERT_VALIDITY_DAYS * 24 * 3600) ==
          NULL ||
      X509_set_pubkey(cert->x509, cert->pkey) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"mafalda", -1,
                                 -1, 0) != 1 ||
      X509_set_issuer_name(cert->x509, name) != 1)
    goto fail;
  step = "X509_sign";
  if (X509_sign(cert->x509, cert->pkey, EVP_sha256()) <= 0) goto fail;
  step = "X509_digest";
  if (cert_digest(cert->x509, EVP_sha256(), cert->fingerprint, sizeof cert->fingerprint) != MF_OK)
    goto fail;

  MF_LOG_INFO("DTLS certificate generated, sha-256 fingerprint %s", cert->fingerprint);
  *out = cert;
  return MF_OK;

fail: {
  char errs[256];
  openssl_errors(errs, sizeof errs);
  MF_LOG_ERROR("certificate generation failed at %s: %s", step, errs);
  mf_dtls_cert_free(cert);
  return MF_ERR_CRYPTO;
}
}

const char *mf_dtls_cert_fingerprint(const mf_dtls_cert_t *cert) { return cert->fingerprint; }

mf_err_t mf_dtls_cert_fingerprint_for(const mf_dtls_cert_t *cert, const char *algorithm,
                                      char *out, size_t cap) {
  if (cert == NULL || out == NULL) return MF_ERR_INVALID_ARG;
  const EVP_MD *md = fp_md_by_name(algorithm);
  if (md == NULL) return MF_ERR_INVALID_ARG;
  return cert_digest(cert->x509, md, out, cap);
}

void mf_dtls_cert_free(mf_dtls_cert_t *cert) {
  if (cert == NULL) return;
  X509_free(cert->x509);
  EVP_PKEY_free(cert->pkey);
  free(cert);
}

/* ---------- datagram BIO ----------
 * A mem BIO concatenates writes, so draining it would turn a whole flight into one
 * "datagram" larger than the MTU. This BIO hands each write straight to the send
 * callback: OpenSSL's DTLS layer (through the buffering BIO it pushes in front of ours
 * during the handshake) writes exactly one datagram, at most the MTU, per BIO_write.
 * Reads return each received datagram whole, once. */

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static int bio_write(BIO *b, const char *data, int len) {
  mf_dtls_t *d = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (len <= 0 || d == NULL) return 0;
  d->cb.send(d->ud, (const uint8_t *)data, (size_t)len);
  return len;
}

static int bio_read(BIO *b, char *out, int cap) {
  mf_dtls_t *d = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (d == NULL || d->in_data == NULL || cap <= 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  /* A datagram larger than OpenSSL's buffer is cut; the cut record fails its MAC/length
   * check and is dropped, which is what a datagram socket would do too. */
  size_t n = d->in_len < (size_t)cap ? d->in_len : (size_t)cap;
  memcpy(out, d->in_data, n);
  d->in_data = NULL;
  d->in_len = 0;
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)b;
  (void)num;
  (void)ptr;
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1; /* nothing is buffered; 0 would make OpenSSL report WANT_WRITE */
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
      return MF_DTLS_MTU;
    default:
      return 0; /* incl. PENDING/WPENDING (nothing queued), MTU overhead (none), EOF (never) */
  }
}

/* ---------- context ---------- */

static int verify_accept_self_signed(int preverify_ok, X509_STORE_CTX *store) {
  (void)preverify_ok;
  (void)store;
  return 1; /* the fingerprint check after the handshake is the authentication */
}

static void info_callback(const SSL *ssl, int where, int ret) {
  (void)ssl;
  if (where & SSL_CB_ALERT) {
    MF_LOG_DEBUG("%s %s alert: %s", (where & SSL_CB_READ) ? "received" : "sent",
                 SSL_alert_type_string_long(ret), SSL_alert_desc_string_long(ret));
  }
}

mf_err_t mf_dtls_context_create(const mf_dtls_cert_t *cert, mf_dtls_context_t **out) {
  return mf_dtls_context_create_ex(cert, NULL, out);
}

mf_err_t mf_dtls_context_create_ex(const mf_dtls_cert_t *cert,
                                   const mf_dtls_context_options_t *options,
                                   mf_dtls_context_t **out) {
  if (cert == NULL || out == NULL) return MF_ERR_INVALID_ARG;
  *out = NULL;
  mf_dtls_context_options_t opt = {0};
  if (options != NULL) opt = *options;
  if (opt.srtp_profiles == NULL) opt.srtp_profiles = MF_DTLS_SRTP_PROFILES;
  if (opt.initial_timeout_ms == 0) opt.initial_timeout_ms = DEFAULT_INITIAL_TIMEOUT_MS;
  if (opt.max_timeout_ms == 0) opt.max_timeout_ms = DEFAULT_MAX_TIMEOUT_MS;
  if (opt.initial_timeout_ms < MIN_TIMEOUT_MS || opt.max_timeout_ms < opt.initial_timeout_ms ||
      opt.max_timeout_ms > MAX_TIMEOUT_MS)
    return MF_ERR_INVALID_ARG;

  mf_dtls_context_t *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) return MF_ERR_NO_MEMORY;
  ctx->initial_timeout_us = opt.initial_timeout_ms * 1000u;
  ctx->max_timeout_us = opt.max_timeout_ms * 1000u;

  ERR_clear_error();
  const char *step = "SSL_CTX_new";
  mf_err_t err = MF_ERR_CRYPTO;
  SSL_CTX *c = ctx->ssl_ctx = SSL_CTX_new(DTLS_method());
  if (c == NULL) goto fail;
  step = "protocol version";
  if (SSL_CTX_set_min_proto_version(c, DTLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(c, DTLS1_2_VERSION) != 1)
    goto fail;
  step = "certificate";
  if (SSL_CTX_use_certificate(c, cert->x509) != 1 || SSL_CTX_use_PrivateKey(c, cert->pkey) != 1 ||
      SSL_CTX_check_private_key(c) != 1)
    goto fail;
  /* NO_QUERY_MTU: there is no socket to ask; the MTU is set per SSL. No tickets or
   * session cache: every WebRTC association is a fresh full handshake. */
  SSL_CTX_set_options(c, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  /* No HelloVerifyRequest cookie exchange: ICE connectivity checks (STUN with message
   * integrity) have already proved the peer owns its address before DTLS starts. */
  step = "cipher list";
  if (SSL_CTX_set_cipher_list(c, DTLS_CIPHERS) != 1) goto fail;
  step = "groups";
  if (SSL_CTX_set1_groups_list(c, DTLS_GROUPS) != 1) goto fail;
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     verify_accept_self_signed);
  SSL_CTX_set_info_callback(c, info_callback);
  step = "use_srtp profiles";
  /* Unlike most of OpenSSL this one returns 0 on success. */
  if (SSL_CTX_set_tlsext_use_srtp(c, opt.srtp_profiles) != 0) {
    err = MF_ERR_INVALID_ARG;
    goto fail;
  }

  step = "BIO_meth_new";
  ctx->bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mafalda-dtls");
  if (ctx->bio_method == NULL || BIO_meth_set_create(ctx->bio_method, bio_create) != 1 ||
      BIO_meth_set_write(ctx->bio_method, bio_write) != 1 ||
      BIO_meth_set_read(ctx->bio_method, bio_read) != 1 ||
      BIO_meth_set_ctrl(ctx->bio_method, bio_ctrl) != 1)
    goto fail;

  *out = ctx;
  return MF_OK;

fail: {
  char errs[256];
  openssl_errors(errs, sizeof errs);
  MF_LOG_ERROR("DTLS context setup failed at %s: %s", step, errs);
  mf_dtls_context_free(ctx);
  return err;
}
}

void mf_dtls_context_free(mf_dtls_context_t *ctx) {
  if (ctx == NULL) return;
  SSL_CTX_free(ctx->ssl_ctx);
  BIO_meth_free(ctx->bio_method);
  free(ctx);
}

/* ---------- roles and names ---------- */

mf_dtls_role_t mf_dtls_local_role_for_remote(mf_dtls_role_t remote) {
  return remote == MF_DTLS_ROLE_CLIENT ? MF_DTLS_ROLE_SERVER : MF_DTLS_ROLE_CLIENT;
}

const char *mf_dtls_role_name(mf_dtls_role_t role) {
  switch (role) {
    case MF_DTLS_ROLE_AUTO:
      return "auto";
    case MF_DTLS_ROLE_CLIENT:
      return "client";
    case MF_DTLS_ROLE_SERVER:
      return "server";
  }
  return "unknown";
}

const char *mf_dtls_state_name(mf_dtls_state_t state) {
  switch (state) {
    case MF_DTLS_STATE_NEW:
      return "new";
    case MF_DTLS_STATE_CONNECTING:
      return "connecting";
    case MF_DTLS_STATE_CONNECTED:
      return "connected";
    case MF_DTLS_STATE_FAILED:
      return "failed";
    case MF_DTLS_STATE_CLOSED:
      return "closed";
  }
  return "unknown";
}

/* ---------- association ---------- */

static unsigned int dtls_timer_cb(SSL *ssl, unsigned int timer_us) {
  const mf_dtls_t *d = SSL_get_app_data(ssl);
  if (timer_us == 0) return d->ctx->initial_timeout_us;
  unsigned long long next = 2ULL * timer_us;
  return next > d->ctx->max_timeout_us ? d->ctx->max_timeout_us : (unsigned int)next;
}

static void destroy(mf_dtls_t *d) {
  SSL_free(d->ssl); /* frees the BIO too */
  OPENSSL_cleanse(&d->keys, sizeof d->keys);
  free(d);
}

static bool finished(const mf_dtls_t *d) {
  return d->state == MF_DTLS_STATE_FAILED || d->state == MF_DTLS_STATE_CLOSED;
}

static void set_state(mf_dtls_t *d, mf_dtls_state_t s, const char *reason) {
  if (d->state == s || finished(d)) return;
  d->state = s;
  MF_LOG_DEBUG("%s %p -> %s%s%s", mf_dtls_role_name(d->role), (void *)d, mf_dtls_state_name(s),
               reason ? ": " : "", reason ? reason : "");
  if (d->cb.state != NULL) d->cb.state(d->ud, s, reason);
}

static void fail(mf_dtls_t *d, const char *reason) {
  if (finished(d)) return;
  if (reason != d->reason) snprintf(d->reason, sizeof d->reason, "%s", reason);
  MF_LOG_WARN("DTLS %s failed: %s", mf_dtls_role_name(d->role), d->reason);
  set_state(d, MF_DTLS_STATE_FAILED, d->reason);
}

static void fail_openssl(mf_dtls_t *d, const char *prefix) {
  char errs[256];
  openssl_errors(errs, sizeof errs);
  snprintf(d->reason, sizeof d->reason, "%s: %s", prefix, errs);
  fail(d, d->reason);
}

static void send_close_notify(mf_dtls_t *d) {
  ERR_clear_error();
  d->in_ssl = true;
  (void)SSL_shutdown(d->ssl); /* 0: sent, the peer's close_notify not awaited */
  d->in_ssl = false;
  ERR_clear_error();
}

/* Marks the start of a public call; false if OpenSSL is on the stack (send callback). */
static bool enter(mf_dtls_t *d) {
  if (d->in_ssl) return false;
  d->depth++;
  return true;
}

/* Ends a public call; d must not be touched afterwards. */
static void leave(mf_dtls_t *d) {
  if (--d->depth == 0 && d->free_requested) destroy(d);
}

static bool export_keys(mf_dtls_t *d) {
  const SRTP_PROTECTION_PROFILE *p = SSL_get_selected_srtp_profile(d->ssl);
  if (p == NULL) {
    fail(d, "peer negotiated no SRTP profile (use_srtp missing)");
    return false;
  }
  mf_srtp_profile_t profile;
  if (p->id == SRTP_AEAD_AES_128_GCM) {
    profile = MF_SRTP_PROFILE_AEAD_AES_128_GCM;
  } else if (p->id == SRTP_AES128_CM_SHA1_80) {
    profile = MF_SRTP_PROFILE_AES128_CM_SHA1_80;
  } else {
    snprintf(d->reason, sizeof d->reason, "unsupported SRTP profile %s", p->name);
    fail(d, d->reason);
    return false;
  }
  size_t master_len = mf_srtp_profile_master_len(profile);
  size_t salt_len = master_len - SRTP_KEY_LEN;
  uint8_t km[2 * MF_SRTP_MAX_MASTER_LEN];
  ERR_clear_error();
  if (SSL_export_keying_material(d->ssl, km, 2 * master_len, DTLS_SRTP_EXPORTER_LABEL,
                                 strlen(DTLS_SRTP_EXPORTER_LABEL), NULL, 0, 0) != 1) {
    fail_openssl(d, "SRTP key export failed");
    return false;
  }
  /* RFC 5764 4.2: client_write_key | server_write_key | client_write_salt |
   * server_write_salt. */
  const uint8_t *client_key = km;
  const uint8_t *server_key = km + SRTP_KEY_LEN;
  const uint8_t *client_salt = km + 2 * SRTP_KEY_LEN;
  const uint8_t *server_salt = client_salt + salt_len;
  bool client = d->role == MF_DTLS_ROLE_CLIENT;
  mf_srtp_keys_t *k = &d->keys;
  k->profile = profile;
  k->master_len = master_len;
  memcpy(k->local_master, client ? client_key : server_key, SRTP_KEY_LEN);
  memcpy(k->local_master + SRTP_KEY_LEN, client ? client_salt : server_salt, salt_len);
  memcpy(k->remote_master, client ? server_key : client_key, SRTP_KEY_LEN);
  memcpy(k->remote_master + SRTP_KEY_LEN, client ? server_salt : client_salt, salt_len);
  OPENSSL_cleanse(km, sizeof km);
  d->keys_ready = true;
  return true;
}

/* Reads records after the handshake: application data, close_notify, retransmitted
 * handshake flights (OpenSSL answers those itself). */
static void read_records(mf_dtls_t *d) {
  /* On the stack: a buffer per transport was 16 kB for the few carrying DataChannels. */
  uint8_t buf[MF_DTLS_MAX_APP_DATA];
  const int cap = (int)sizeof buf;
  while (!finished(d) && !d->free_requested) {
    ERR_clear_error();
    d->in_ssl = true;
    int r = SSL_read(d->ssl, buf, cap);
    d->in_ssl = false;
    if (r > 0) {
      /* Until the fingerprint is verified the peer is not authenticated: drop. */
      if (d->state == MF_DTLS_STATE_CONNECTED && d->cb.app_data != NULL)
        d->cb.app_data(d->ud, buf, (size_t)r);
      continue;
    }
    int e = SSL_get_error(d->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    if (e == SSL_ERROR_ZERO_RETURN) {
      MF_LOG_DEBUG("DTLS %s received close_notify", mf_dtls_role_name(d->role));
      set_state(d, MF_DTLS_STATE_CLOSED, "close_notify received");
      return;
    }
    fail_openssl(d, "DTLS read failed");
    return;
  }
}

static void verify_and_connect(mf_dtls_t *d) {
  X509 *peer = SSL_get1_peer_certificate(d->ssl);
  if (peer == NULL) {
    send_close_notify(d);
    fail(d, "peer sent no certificate");
    return;
  }
  char actual[MF_DTLS_FINGERPRINT_MAX];
  mf_err_t err = cert_digest(peer, d->fp_md, actual, sizeof actual);
  X509_free(peer);
  if (err != MF_OK) {
    fail_openssl(d, "peer certificate digest failed");
    return;
  }
  if (strcasecmp(actual, d->fp_value) != 0) {
    MF_LOG_WARN("DTLS %s: remote fingerprint %s %s does not match the certificate (%s)",
                mf_dtls_role_name(d->role), EVP_MD_get0_name(d->fp_md), d->fp_value, actual);
    send_close_notify(d);
    fail(d, "fingerprint mismatch");
    return;
  }
  set_state(d, MF_DTLS_STATE_CONNECTED, NULL);
  /* Records that arrived with the last flight (or while the fingerprint was pending)
   * are still buffered inside OpenSSL. */
  if (d->state == MF_DTLS_STATE_CONNECTED && !d->free_requested) read_records(d);
}

static void on_handshake_done(mf_dtls_t *d) {
  d->handshake_done = true;
  MF_LOG_DEBUG("DTLS %s handshake done: %s, %s", mf_dtls_role_name(d->role),
               SSL_get_cipher_name(d->ssl),
               SSL_get_selected_srtp_profile(d->ssl) ? SSL_get_selected_srtp_profile(d->ssl)->name
                                                     : "no SRTP");
  if (!export_keys(d)) {
    send_close_notify(d);
    return;
  }
  if (!d->fp_set) {
    MF_LOG_DEBUG("DTLS %s waiting for the remote fingerprint", mf_dtls_role_name(d->role));
    return;
  }
  verify_and_connect(d);
}

static void run_handshake(mf_dtls_t *d) {
  ERR_clear_error();
  d->in_ssl = true;
  int r = SSL_do_handshake(d->ssl);
  d->in_ssl = false;
  if (r == 1) {
    on_handshake_done(d);
    return;
  }
  int e = SSL_get_error(d->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
  if (e == SSL_ERROR_ZERO_RETURN) {
    set_state(d, MF_DTLS_STATE_CLOSED, "close_notify received");
    return;
  }
  /* OpenSSL also retransmits (and gives up) from inside the handshake call when the timer
   * has expired by the time a datagram arrives. */
  bool timed_out = ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_READ_TIMEOUT_EXPIRED;
  fail_openssl(d, timed_out ? "handshake timeout" : "handshake failed");
}

mf_err_t mf_dtls_create(mf_dtls_context_t *ctx, const mf_dtls_callbacks_t *cb, void *ud,
                        mf_dtls_t **out) {
  if (out == NULL) return MF_ERR_INVALID_ARG;
  *out = NULL;
  if (ctx == NULL || cb == NULL || cb->send == NULL) return MF_ERR_INVALID_ARG;
  mf_dtls_t *d = calloc(1, sizeof *d);
  if (d == NULL) return MF_ERR_NO_MEMORY;
  d->ctx = ctx;
  d->cb = *cb;
  d->ud = ud;
  d->state = MF_DTLS_STATE_NEW;
  d->role = MF_DTLS_ROLE_AUTO;
  ERR_clear_error();
  d->ssl = SSL_new(ctx->ssl_ctx);
  BIO *bio = d->ssl != NULL ? BIO_new(ctx->bio_method) : NULL;
  if (bio == NULL) {
    char errs[256];
    openssl_errors(errs, sizeof errs);
    MF_LOG_ERROR("DTLS object setup failed: %s", errs);
    if (d->ssl != NULL) SSL_free(d->ssl);
    free(d);
    return MF_ERR_CRYPTO;
  }
  BIO_set_data(bio, d);
  SSL_set_bio(d->ssl, bio, bio); /* one BIO for both directions: SSL owns one reference */
  SSL_set_app_data(d->ssl, d);
  *out = d;
  return MF_OK;
}

static mf_err_t store_fingerprint(mf_dtls_t *d, const char *alg, const char *value) {
  const EVP_MD *md = fp_md_by_name(alg);
  if (md == NULL || value == NULL || !fingerprint_well_formed(value, md))
    return MF_ERR_INVALID_ARG;
  d->fp_md = md;
  snprintf(d->fp_value, sizeof d->fp_value, "%s", value);
  d->fp_set = true;
  return MF_OK;
}

mf_err_t mf_dtls_start(mf_dtls_t *d, mf_dtls_role_t local_role, const char *fp_algorithm,
                       const char *fp_value) {
  if (d == NULL) return MF_ERR_INVALID_ARG;
  if (local_role != MF_DTLS_ROLE_CLIENT && local_role != MF_DTLS_ROLE_SERVER)
    return MF_ERR_INVALID_ARG;
  if (d->in_ssl || d->state != MF_DTLS_STATE_NEW) return MF_ERR_STATE;
  if (fp_algorithm != NULL || fp_value != NULL) {
    mf_err_t err = store_fingerprint(d, fp_algorithm, fp_value);
    if (err != MF_OK) return err;
  }
  (void)enter(d);
  d->role = local_role;
  if (local_role == MF_DTLS_ROLE_CLIENT) {
    SSL_set_connect_state(d->ssl);
  } else {
    SSL_set_accept_state(d->ssl);
  }
  /* Overhead reported by the BIO is 0, so the link MTU and the record MTU coincide. */
  SSL_set_mtu(d->ssl, MF_DTLS_MTU);
  DTLS_set_link_mtu(d->ssl, MF_DTLS_MTU);
  DTLS_set_timer_cb(d->ssl, dtls_timer_cb);
  set_state(d, MF_DTLS_STATE_CONNECTING, NULL);
  if (local_role == MF_DTLS_ROLE_CLIENT && d->state == MF_DTLS_STATE_CONNECTING &&
      !d->free_requested)
    run_handshake(d);
  leave(d);
  return MF_OK;
}

mf_err_t mf_dtls_set_remote_fingerprint(mf_dtls_t *d, const char *fp_algorithm,
                                        const char *fp_value) {
  if (d == NULL) return MF_ERR_INVALID_ARG;
  if (d->in_ssl || d->fp_set || finished(d)) return MF_ERR_STATE;
  mf_err_t err = store_fingerprint(d, fp_algorithm, fp_value);
  if (err != MF_OK) return err;
  if (d->handshake_done && d->state == MF_DTLS_STATE_CONNECTING) {
    (void)enter(d);
    verify_and_connect(d);
    leave(d);
  }
  return MF_OK;
}

mf_err_t mf_dtls_handle_datagram(mf_dtls_t *d, const uint8_t *data, size_t len) {
  if (d == NULL || data == NULL || len == 0) return MF_ERR_INVALID_ARG;
  if (d->in_ssl || d->state == MF_DTLS_STATE_NEW) return MF_ERR_STATE;
  if (finished(d)) return MF_ERR_CLOSED;
  (void)enter(d);
  d->in_data = data;
  d->in_len = len;
  if (!d->handshake_done) {
    run_handshake(d);
  } else {
    read_records(d);
  }
  /* Never leave a pointer to the caller's buffer behind. */
  d->in_data = NULL;
  d->in_len = 0;
  leave(d);
  return MF_OK;
}

long mf_dtls_timeout_ms(mf_dtls_t *d) {
  if (d == NULL || d->in_ssl) return -1;
  if (d->state != MF_DTLS_STATE_CONNECTING && d->state != MF_DTLS_STATE_CONNECTED) return -1;
  struct timeval tv;
  if (DTLSv1_get_timeout(d->ssl, &tv) != 1) return -1;
  return (long)tv.tv_sec * 1000 + ((long)tv.tv_usec + 999) / 1000;
}

void mf_dtls_handle_timeout(mf_dtls_t *d) {
  if (d == NULL || d->in_ssl) return;
  if (d->state != MF_DTLS_STATE_CONNECTING && d->state != MF_DTLS_STATE_CONNECTED) return;
  (void)enter(d);
  ERR_clear_error();
  d->in_ssl = true;
  int r = DTLSv1_handle_timeout(d->ssl);
  d->in_ssl = false;
  if (r < 0) fail_openssl(d, "handshake timeout");
  leave(d);
}

mf_err_t mf_dtls_get_srtp_keys(const mf_dtls_t *d, mf_srtp_keys_t *out) {
  if (d == NULL || out == NULL) return MF_ERR_INVALID_ARG;
  if (d->state != MF_DTLS_STATE_CONNECTED || !d->keys_ready) return MF_ERR_STATE;
  *out = d->keys;
  return MF_OK;
}

mf_err_t mf_dtls_send_application_data(mf_dtls_t *d, const uint8_t *data, size_t len) {
  if (d == NULL || data == NULL || len == 0) return MF_ERR_INVALID_ARG;
  if (len > MF_DTLS_MAX_APP_DATA) return MF_ERR_LIMIT;
  if (d->in_ssl || d->state != MF_DTLS_STATE_CONNECTED) return MF_ERR_STATE;
  (void)enter(d);
  ERR_clear_error();
  d->in_ssl = true;
  int r = SSL_write(d->ssl, data, (int)len);
  d->in_ssl = false;
  mf_err_t err = MF_OK;
  if (r <= 0) {
    char errs[256];
    openssl_errors(errs, sizeof errs);
    MF_LOG_WARN("DTLS %s application data write failed: %s", mf_dtls_role_name(d->role), errs);
    err = MF_ERR_CRYPTO;
  }
  leave(d);
  return err;
}

void mf_dtls_close(mf_dtls_t *d) {
  if (d == NULL || d->in_ssl || finished(d)) return;
  (void)enter(d);
  if (d->handshake_done) send_close_notify(d);
  set_state(d, MF_DTLS_STATE_CLOSED, "closed locally");
  leave(d);
}

mf_dtls_state_t mf_dtls_state(const mf_dtls_t *d) { return d->state; }

mf_dtls_role_t mf_dtls_local_role(const mf_dtls_t *d) { return d->role; }

void mf_dtls_free(mf_dtls_t *d) {
  if (d == NULL) return;
  if (d->depth > 0) {
    d->free_requested = true;
    return;
  }
  destroy(d);
}
