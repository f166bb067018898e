/* Control-plane TLS: mutual TLS for every nng RPC connection of the cluster (agents and
 * mafalda-ctl -> controller RPC, node -> node RPC) over nng's tls+tcp:// transport
 * (mbedTLS 2.28 in Debian's libnng 1.5.2).
 *
 * - Options: --tls-cert, --tls-key, --tls-ca (PEM files) and --tls-require, the same in
 *   every binary (MF_TLS_CONFIG_OPTIONS below).
 * - mf_tls_load reads the files once at startup and checks them with OpenSSL (readable,
 *   PEM, the key matches the certificate, the certificate chains to the CA and is valid
 *   now, usable for TLS client and server), so that a bad file is a clear startup error
 *   and not a handshake failure later.
 * - Addresses stay host:port. The process-wide setting (mf_tls_set_control) decides the
 *   scheme: with TLS every dial and listen goes through tls+tcp:// with our certificate,
 *   without it through tcp://. Code keeps building "tcp://host:port" URLs; the helpers
 *   below rewrite them.
 * - Trust: a peer is accepted when its certificate chains to --tls-ca. Names (CN, SAN) are
 *   not compared with the address dialed (mbedTLS 2.28 cannot match IP SANs): the cluster
 *   CA is the trust boundary, so give the cluster a CA of its own.
 * - Both ends require a valid peer certificate in the handshake (auth mode required). A
 *   refused connection never reaches the socket. nng 1.5.2 reports failed handshakes to the
 *   listener only as a counter, without the peer's address: listeners log, once a second,
 *   how many handshakes they refused; the refused peer's own dial fails with MF_ERR_AUTH
 *   and it logs the address it dialed.
 * - Not covered: Raft between controller replicas (libraft's own TCP transport, not nng)
 *   and gossip (SWIM over UDP).
 *
 * Thread affinity: mf_tls_load / mf_tls_free / mf_tls_set_control from the process
 * bootstrap (before RPC threads start, and free after they stopped); the dial, listen and
 * poll helpers from any thread. */
#ifndef MF_TLS_CONFIG_H
#define MF_TLS_CONFIG_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "common/err.h"

#define MF_TLS_PATH_MAX 512
/* PEM files larger than this are refused (a certificate chain is a few KiB). */
#define MF_TLS_FILE_MAX (1024 * 1024)

/* What the command line gives; a config struct embeds it. All paths empty = plain TCP. */
typedef struct {
  char cert[MF_TLS_PATH_MAX]; /* our certificate (PEM), optionally followed by its chain */
  char key[MF_TLS_PATH_MAX];  /* its private key (PEM, unencrypted) */
  char ca[MF_TLS_PATH_MAX];   /* CA certificate(s) (PEM) that sign every cluster member */
  bool require;               /* refuse to start without TLS */
} mf_tls_options_t;

/* Option table entries for a config struct `cfg_type` that has an mf_tls_options_t member
 * `member` (environment: MAFALDA_TLS_CERT, MAFALDA_TLS_KEY, MAFALDA_TLS_CA,
 * MAFALDA_TLS_REQUIRE). */
#define MF_TLS_CONFIG_OPTIONS(cfg_type, member)                                                    \
  {.name = "tls-cert", .type = MF_OPT_STRING, .offset = offsetof(cfg_type, member.cert),          \
   .size = MF_TLS_PATH_MAX, .default_value = "",                                               \
   .help = "Control-plane TLS: this process's certificate (PEM, signed by --tls-ca). With "    \
           "--tls-key and --tls-ca every controller/node RPC connection uses mutual TLS."},    \
      {.name = "tls-key", .type = MF_OPT_STRING, .offset = offsetof(cfg_type, member.key),        \
       .size = MF_TLS_PATH_MAX, .default_value = "",                                           \
       .help = "Control-plane TLS: the private key of --tls-cert (PEM, unencrypted)."},        \
      {.name = "tls-ca", .type = MF_OPT_STRING, .offset = offsetof(cfg_type, member.ca),          \
       .size = MF_TLS_PATH_MAX, .default_value = "",                                           \
       .help = "Control-plane TLS: CA certificate(s) (PEM); peers must present a "             \
               "certificate it signed."},                                                      \
      {.name = "tls-require", .type = MF_OPT_BOOL, .offset = offsetof(cfg_type, member.require),  \
       .default_value = "false",                                                               \
       .help = "Refuse to start unless control-plane TLS is configured, and refuse plain "     \
               "tcp:// addresses."}

typedef struct mf_tls mf_tls_t;

/* Checks and loads the files. With no path set and !require: MF_OK and *out = NULL (plain
 * TCP). Otherwise *out is set (free with mf_tls_free) or an error is returned with err
 * naming the option, the file and the reason: MF_ERR_INVALID_ARG (an option is missing, or
 * --tls-require without the files), MF_ERR_IO (a file cannot be read), MF_ERR_PARSE (not
 * PEM, or nng/mbedTLS refuses it), MF_ERR_AUTH (the key does not match the certificate, or
 * the CA does not sign the certificate / it expired / it is not for TLS client and server
 * use). */
mf_err_t mf_tls_load(const mf_tls_options_t *options, mf_tls_t **out, char *err,
                     size_t errsz);
void mf_tls_free(mf_tls_t *tls);

/* The subject of our certificate, for the startup log ("CN=node-1"). */
const char *mf_tls_subject(const mf_tls_t *tls);

/* The process-wide control-plane TLS (NULL: plain TCP). Borrowed: keep it alive until no
 * RPC can run (free it after the last socket closed). */
void mf_tls_set_control(mf_tls_t *tls);
mf_tls_t *mf_tls_control(void);

/* Checks a user-given control address ("host:port", "tcp://host:port" or
 * "tls+tcp://host:port") against the process setting: MF_ERR_INVALID_ARG (err says why) for
 * tcp:// under --tls-require, and for tls+tcp:// without TLS configured. */
mf_err_t mf_tls_check_address(const char *address, char *err, size_t errsz);

/* mf_tls_check_address for each item of a comma-separated list option (its name in the
 * message, e.g. "--controllers"). Empty items are skipped. */
mf_err_t mf_tls_check_list(const char *list, const char *option, char *err, size_t errsz);

/* The URL nng should use for a control address: "tls+tcp://host:port" with TLS configured,
 * else "tcp://host:port" (address in any of the three forms above). MF_ERR_LIMIT when it
 * does not fit; MF_ERR_INVALID_ARG for another scheme or for tls+tcp:// without TLS. */
mf_err_t mf_tls_url(const char *address, char *out, size_t size);

/* nng_dial / nng_listen through the process setting (blocking dial, like nng_dial with no
 * flags). *nng_rv (may be NULL) gets nng's error. Returns MF_OK, MF_ERR_AUTH (the TLS
 * handshake failed: the peer's certificate is not valid for our CA or it refused ours),
 * MF_ERR_INVALID_ARG (bad URL) or MF_ERR_IO. For listeners, log_name names the service in
 * the refusal log lines; it must outlive the socket (a string literal). */
mf_err_t mf_tls_dial(nng_socket sock, const char *address, int *nng_rv);
mf_err_t mf_tls_listen(nng_socket sock, const char *address, const char *log_name,
                       nng_listener *out, int *nng_rv);

/* Connections this process's TLS listeners refused so far (tests, metrics), as of the
 * last poll. Listeners are polled every second on an nng timer (until mf_tls_free of the
 * control TLS); mf_tls_poll_refusals polls now, logs news and returns how many. */
unsigned long mf_tls_refused_count(void);
unsigned long mf_tls_poll_refusals(void);

#endif
