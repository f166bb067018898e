#define MF_LOG_MODULE "plain"
#include "node/plain_transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/log.h"
#include "node/rtp/rtp.h"
#include "node/udp_socket.h"

struct mf_plain_transport {
  mf_webrtc_transport_t *wt; /* NULL once its transport closed (the socket is closing) */
  mf_rtc_server_t *server;
  mf_udp_socket_t *sock;
  mf_plain_options_t opts;
  mf_pipe_srtp_t local_srtp; /* what we protect with; enabled iff opts.enable_srtp */
  mf_srtp_session_t *srtp_in, *srtp_out;
  bool connect_called, has_remote;
  struct sockaddr_storage remote;
  mf_plain_transport_stats_t stats;
};

static mf_err_t mf_plain_fail(mf_err_t e, char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static mf_err_t mf_plain_fail(mf_err_t e, char *err, size_t errsz, const char *fmt, ...) {
  if (err && errsz) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
  }
  return e;
}

/* ------------------------------------------------------------ options and SRTP JSON */

mf_err_t mf_plain_crypto_suite_parse(const char *name, mf_srtp_profile_t *out) {
  if (name && strcmp(name, "AES_CM_128_HMAC_SHA1_80") == 0) {
    *out = MF_SRTP_PROFILE_AES128_CM_SHA1_80;
    return MF_OK;
  }
  if (name && strcmp(name, "AEAD_AES_128_GCM") == 0) {
    *out = MF_SRTP_PROFILE_AEAD_AES_128_GCM;
    return MF_OK;
  }
  return MF_ERR_UNSUPPORTED;
}

/* An optional boolean member: absent keeps *out. */
static bool mf_plain_opt_bool(const json_t *data, const char *name, bool *out) {
  const json_t *v = json_object_get(data, name);
  if (!v) return true;
  if (!json_is_boolean(v)) return false;
  *out = json_is_true(v);
  return true;
}

mf_err_t mf_plain_options_parse(const json_t *data, mf_plain_options_t *out, char *err,
                                size_t errsz) {
  mf_plain_options_t o = {.comedia = false, .rtcp_mux = true, .enable_srtp = false,
                          .srtp_profile = MF_SRTP_PROFILE_AES128_CM_SHA1_80};
  if (data && !json_is_object(data))
    return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz, "data must be an object");
  static const char *const flags[] = {"comedia", "rtcpMux", "enableSrtp"};
  bool *fields[] = {&o.comedia, &o.rtcp_mux, &o.enable_srtp};
  for (size_t i = 0; data && i < 3; i++)
    if (!mf_plain_opt_bool(data, flags[i], fields[i]))
      return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz, "data.%s must be a boolean", flags[i]);
  const json_t *suite = data ? json_object_get(data, "srtpCryptoSuite") : NULL;
  if (suite) {
    if (!json_is_string(suite))
      return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz, "data.srtpCryptoSuite must be a string");
    if (mf_plain_crypto_suite_parse(json_string_value(suite), &o.srtp_profile) != MF_OK)
      return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz,
                           "unsupported srtpCryptoSuite '%s' (AES_CM_128_HMAC_SHA1_80 or "
                           "AEAD_AES_128_GCM)",
                           json_string_value(suite));
  }
  if (!o.rtcp_mux)
    return mf_plain_fail(MF_ERR_UNSUPPORTED, err, errsz,
                         "rtcpMux false is not supported: RTCP shares the RTP port");
  *out = o;
  return MF_OK;
}

/* Longest base64 text we read: a 46-byte key needs 64 characters. */
#define MF_PLAIN_KEY_B64_MAX 64

mf_err_t mf_plain_srtp_parse(const json_t *j, mf_pipe_srtp_t *out, char *err, size_t errsz) {
  memset(out, 0, sizeof *out);
  if (!json_is_object(j))
    return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz, "srtpParameters must be an object");
  const char *suite = json_string_value(json_object_get(j, "cryptoSuite"));
  const char *b64 = json_string_value(json_object_get(j, "keyBase64"));
  if (!suite || !b64)
    return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz,
                         "srtpParameters needs string cryptoSuite and keyBase64");
  if (mf_plain_crypto_suite_parse(suite, &out->profile) != MF_OK)
    return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz,
                         "unsupported cryptoSuite '%s' (AES_CM_128_HMAC_SHA1_80 or "
                         "AEAD_AES_128_GCM)",
                         suite);
  size_t want = mf_srtp_profile_master_len(out->profile);
  size_t n = strlen(b64);
  /* EVP_DecodeBlock accepts whitespace and needs whole quads: insist on canonical text. */
  bool ok = n > 0 && n <= MF_PLAIN_KEY_B64_MAX && n % 4 == 0;
  size_t pad = 0;
  for (size_t i = 0; ok && i < n; i++) {
    char c = b64[i];
    if (c == '=') {
      pad++;
      ok = i >= n - 2;
    } else {
      ok = pad == 0 && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '+' || c == '/');
    }
  }
  uint8_t raw[MF_PLAIN_KEY_B64_MAX];
  int got = ok ? EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n) : -1;
  if (got < 0 || (size_t)got < pad || (size_t)got - pad != want) {
    memset(raw, 0, sizeof raw);
    memset(out, 0, sizeof *out);
    return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz,
                         "keyBase64 must be %zu bytes (key||salt of %s) in base64", want, suite);
  }
  memcpy(out->key, raw, want);
  memset(raw, 0, sizeof raw);
  out->key_len = want;
  out->enabled = true;
  return MF_OK;
}

json_t *mf_plain_srtp_json(const mf_pipe_srtp_t *s) {
  char b64[MF_PLAIN_KEY_B64_MAX + 1];
  EVP_EncodeBlock((unsigned char *)b64, s->key, (int)s->key_len);
  json_t *j = json_pack("{s:s, s:s}", "cryptoSuite", mf_srtp_profile_name(s->profile),
                        "keyBase64", b64);
  memset(b64, 0, sizeof b64);
  return j;
}

/* ------------------------------------------------------------ I/O */

static bool mf_plain_same_addr(const struct sockaddr_storage *a, const struct sockaddr *b) {
  if (a->ss_family != b->sa_family) return false;
  if (b->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (b->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a,
                              *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
  }
  return false;
}

static void mf_plain_addr_format(const struct sockaddr *a, char *ip, size_t ipsz, uint16_t *port) {
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)a;
    inet_ntop(AF_INET, &v4->sin_addr, ip, (socklen_t)ipsz);
    *port = ntohs(v4->sin_port);
  } else {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)a;
    inet_ntop(AF_INET6, &v6->sin6_addr, ip, (socklen_t)ipsz);
    *port = ntohs(v6->sin6_port);
  }
}

static void mf_plain_set_remote(mf_plain_transport_t *p, const struct sockaddr *remote) {
  memcpy(&p->remote, remote, mf_udp_sockaddr_len(remote));
  p->has_remote = true;
  char ip[INET6_ADDRSTRLEN] = "";
  uint16_t port = 0;
  mf_plain_addr_format(remote, ip, sizeof ip, &port);
  MF_LOG_INFO("plain transport %s: remote %s:%u (%s)", mf_webrtc_transport_id(p->wt), ip, port,
              p->opts.comedia ? "comedia" : "connect");
  mf_webrtc_transport_ext_connected(p->wt, remote);
}

/* Returns false when the datagram is dropped. */
static bool mf_plain_accept(mf_plain_transport_t *p, mf_udp_datagram_t *d) {
  mf_buf_t *buf = d->buf;
  const struct sockaddr *from = (const struct sockaddr *)&d->from;
  if (buf->len < 2 || buf->data[0] < 128 || buf->data[0] > 191) {
    p->stats.dropped_not_rtp++;
    return false;
  }
  if (p->has_remote ? !mf_plain_same_addr(&p->remote, from) : !p->opts.comedia) {
    p->stats.dropped_unknown_source++;
    return false;
  }
  if (p->opts.enable_srtp) {
    if (!p->srtp_in) {
      p->stats.dropped_no_key++;
      return false;
    }
    size_t len = buf->len;
    mf_err_t e = mf_rtp_is_rtcp(buf->data, len)
                     ? mf_srtp_unprotect_rtcp(p->srtp_in, buf->data, &len)
                     : mf_srtp_unprotect_rtp(p->srtp_in, buf->data, &len);
    if (e) {
      p->stats.srtp_failures++;
      return false;
    }
    buf->len = (uint32_t)len;
  }
  /* comedia: only a packet that passed the checks above names the remote */
  if (!p->has_remote) mf_plain_set_remote(p, from);
  return true;
}

static void mf_plain_on_datagrams(void *ud, mf_udp_datagram_t *dgrams, unsigned count) {
  mf_plain_transport_t *p = ud;
  for (unsigned i = 0; i < count; i++) {
    if (p->wt && mf_plain_accept(p, &dgrams[i])) mf_webrtc_transport_handle_srtp(p->wt, dgrams[i].buf);
    mf_buf_unref(dgrams[i].buf);
  }
}

static mf_err_t mf_plain_send(void *ud, mf_buf_t *buf, bool rtcp) {
  mf_plain_transport_t *p = ud;
  if (!p->has_remote) return MF_ERR_STATE;
  if (p->srtp_out) {
    size_t len = buf->len;
    mf_err_t e = rtcp ? mf_srtp_protect_rtcp(p->srtp_out, buf->data, &len, buf->cap)
                      : mf_srtp_protect_rtp(p->srtp_out, buf->data, &len, buf->cap);
    if (e) return e;
    buf->len = (uint32_t)len;
  }
  return mf_udp_socket_send(p->sock, buf, (const struct sockaddr *)&p->remote);
}

static void mf_plain_on_socket_closed(void *ud) {
  mf_plain_transport_t *p = ud;
  memset(p, 0, sizeof *p);
  free(p);
}

static void mf_plain_release(mf_plain_transport_t *p) {
  mf_srtp_session_free(p->srtp_in);
  mf_srtp_session_free(p->srtp_out);
  p->srtp_in = p->srtp_out = NULL;
  memset(&p->local_srtp, 0, sizeof p->local_srtp);
}

static void mf_plain_close(void *ud) {
  mf_plain_transport_t *p = ud;
  p->wt = NULL;
  mf_plain_release(p);
  mf_udp_socket_close(p->sock, mf_plain_on_socket_closed, p);
}

static const mf_webrtc_transport_io_t mf_plain_io = {.send = mf_plain_send, .close = mf_plain_close};

/* ------------------------------------------------------------ life cycle */

mf_err_t mf_plain_transport_attach(mf_webrtc_transport_t *wt, mf_rtc_server_t *server,
                                   const mf_plain_options_t *o, char *err, size_t errsz) {
  mf_pipe_srtp_t pipe_key;
  if (!mf_webrtc_transport_io_ud(wt) && mf_webrtc_transport_is_pipe(wt))
    mf_webrtc_transport_pipe_local_srtp(wt, &pipe_key);
  else
    pipe_key.enabled = true; /* already plain, or not a pipe at all */
  bool fresh = !pipe_key.enabled && mf_webrtc_transport_state(wt) == MF_TRANSPORT_STATE_NEW;
  memset(&pipe_key, 0, sizeof pipe_key);
  if (!fresh) return mf_plain_fail(MF_ERR_STATE, err, errsz, "not a fresh plain pipe transport");
  mf_plain_transport_t *p = calloc(1, sizeof *p);
  if (!p) return mf_plain_fail(MF_ERR_NO_MEMORY, err, errsz, "out of memory");
  p->wt = wt;
  p->server = server;
  p->opts = *o;
  mf_err_t e = MF_OK;
  if (o->enable_srtp) {
    p->local_srtp.enabled = true;
    p->local_srtp.profile = o->srtp_profile;
    p->local_srtp.key_len = mf_srtp_profile_master_len(o->srtp_profile);
    if (p->local_srtp.key_len == 0 ||
        RAND_bytes(p->local_srtp.key, (int)p->local_srtp.key_len) != 1)
      e = MF_ERR_CRYPTO;
    if (!e)
      e = mf_srtp_session_create(p->local_srtp.profile, p->local_srtp.key,
                                 p->local_srtp.key_len, false, &p->srtp_out);
    if (e) mf_plain_fail(e, err, errsz, "SRTP setup failed: %s", mf_strerror(e));
  }
  if (!e) {
    e = mf_udp_socket_open(mf_rtc_server_loop(server), mf_rtc_server_pool(server),
                           mf_rtc_server_listen_ip(server), 0, mf_plain_on_datagrams, p, &p->sock);
    if (e)
      mf_plain_fail(e, err, errsz, "cannot open a UDP socket on %s: %s",
                    mf_rtc_server_listen_ip(server), mf_strerror(e));
  }
  if (e) {
    mf_plain_release(p);
    free(p);
    return e;
  }
  mf_webrtc_transport_set_io(wt, &mf_plain_io, p);
  MF_LOG_INFO("plain transport %s on %s:%u (comedia %s, %s)", mf_webrtc_transport_id(wt),
              mf_rtc_server_listen_ip(server), mf_udp_socket_port(p->sock),
              o->comedia ? "on" : "off",
              o->enable_srtp ? mf_srtp_profile_name(o->srtp_profile) : "plain RTP");
  return MF_OK;
}

mf_plain_transport_t *mf_plain_transport_of(const mf_webrtc_transport_t *wt) {
  /* only this module installs mf_plain_io */
  return wt ? mf_webrtc_transport_io_ud(wt) : NULL;
}

static bool mf_plain_parse_ip(const char *ip, uint16_t port, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return true;
  }
  if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return true;
  }
  return false;
}

/* A port member: absent (false, *port untouched) or an integer 1..65535. */
static mf_err_t mf_plain_port(const json_t *data, const char *name, bool *present, uint16_t *port,
                              char *err, size_t errsz) {
  const json_t *v = json_object_get(data, name);
  *present = v != NULL;
  if (!v) return MF_OK;
  if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
    return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz, "data.%s must be an integer 1..65535",
                         name);
  *port = (uint16_t)json_integer_value(v);
  return MF_OK;
}

mf_err_t mf_plain_transport_connect_json(mf_plain_transport_t *p, const json_t *data, char *err,
                                         size_t errsz) {
  if (!p->wt) return mf_plain_fail(MF_ERR_STATE, err, errsz, "the transport is closed");
  if (p->connect_called) return mf_plain_fail(MF_ERR_STATE, err, errsz, "connect() was already called");
  if (!json_is_object(data)) return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz, "data must be an object");
  const json_t *jip = json_object_get(data, "ip");
  bool has_port, has_rtcp_port;
  uint16_t port = 0, rtcp_port = 0;
  mf_err_t e = mf_plain_port(data, "port", &has_port, &port, err, errsz);
  if (!e) e = mf_plain_port(data, "rtcpPort", &has_rtcp_port, &rtcp_port, err, errsz);
  if (e) return e;
  struct sockaddr_storage remote;
  if (p->opts.comedia) {
    if (jip || has_port)
      return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz,
                           "a comedia transport learns the remote address from the first "
                           "packet: connect() takes no ip/port");
  } else {
    if (!json_is_string(jip) || !has_port)
      return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz,
                           "data.ip (string) and data.port are required without comedia");
    if (!mf_plain_parse_ip(json_string_value(jip), port, &remote))
      return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz, "data.ip '%s' is not an IPv4 or IPv6 address",
                           json_string_value(jip));
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&remote;
    if (remote.ss_family == AF_INET && v4->sin_addr.s_addr == htonl(INADDR_ANY))
      return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz, "data.ip must not be 0.0.0.0");
    /* the socket has the family of the worker's listen IP: it cannot reach the other one */
    bool v6_socket = strchr(mf_rtc_server_listen_ip(p->server), ':') != NULL;
    if ((remote.ss_family == AF_INET6) != v6_socket)
      return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz,
                           "data.ip must be an %s address (the worker listens on %s)",
                           v6_socket ? "IPv6" : "IPv4", mf_rtc_server_listen_ip(p->server));
  }
  const json_t *jsrtp = json_object_get(data, "srtpParameters");
  mf_pipe_srtp_t remote_srtp;
  if (p->opts.enable_srtp) {
    if (!jsrtp)
      return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz,
                           "data.srtpParameters is required (the transport has enableSrtp)");
    e = mf_plain_srtp_parse(jsrtp, &remote_srtp, err, errsz);
    if (e) return e;
    if (remote_srtp.profile != p->opts.srtp_profile) {
      memset(&remote_srtp, 0, sizeof remote_srtp);
      return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz,
                           "srtpParameters.cryptoSuite must be the transport's %s",
                           mf_srtp_profile_name(p->opts.srtp_profile));
    }
    e = mf_srtp_session_create(remote_srtp.profile, remote_srtp.key, remote_srtp.key_len, true,
                               &p->srtp_in);
    memset(&remote_srtp, 0, sizeof remote_srtp);
    if (e) return mf_plain_fail(e, err, errsz, "SRTP setup failed: %s", mf_strerror(e));
  } else if (jsrtp) {
    return mf_plain_fail(MF_ERR_INVALID_ARG, err, errsz,
                         "data.srtpParameters given but the transport has no enableSrtp");
  }
  p->connect_called = true;
  if (!p->opts.comedia) mf_plain_set_remote(p, (const struct sockaddr *)&remote);
  return MF_OK;
}

json_t *mf_plain_transport_to_json(const mf_plain_transport_t *p) {
  json_t *tuple = json_pack("{s:s, s:i, s:s}", "localIp", mf_rtc_server_announced_ip(p->server),
                            "localPort", (int)mf_udp_socket_port(p->sock), "protocol", "udp");
  if (p->has_remote) {
    char ip[INET6_ADDRSTRLEN] = "";
    uint16_t port = 0;
    mf_plain_addr_format((const struct sockaddr *)&p->remote, ip, sizeof ip, &port);
    json_object_set_new(tuple, "remoteIp", json_string(ip));
    json_object_set_new(tuple, "remotePort", json_integer(port));
  }
  json_t *o = json_pack("{s:s, s:o, s:b, s:b}", "id", p->wt ? mf_webrtc_transport_id(p->wt) : "",
                        "tuple", tuple, "comedia", p->opts.comedia, "rtcpMux", p->opts.rtcp_mux);
  if (p->local_srtp.enabled)
    json_object_set_new(o, "srtpParameters", mf_plain_srtp_json(&p->local_srtp));
  return o;
}

uint16_t mf_plain_transport_port(const mf_plain_transport_t *p) { return mf_udp_socket_port(p->sock); }

bool mf_plain_transport_remote(const mf_plain_transport_t *p, struct sockaddr_storage *out) {
  if (p->has_remote && out) *out = p->remote;
  return p->has_remote;
}

void mf_plain_transport_get_stats(const mf_plain_transport_t *p, mf_plain_transport_stats_t *out) {
  *out = p->stats;
}
