#include "tests/support/webrtc_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <stun/stunagent.h>
#include <stun/stunmessage.h>
#include <stun/usages/ice.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "node/rtp/rtp.h"
#include "node/srtp.h"

#define CHECK_RETRY_MS 250 /* until the first success */
#define CONSENT_MS 2000    /* afterwards: the node drops a transport that stops checking */

struct mf_webrtc_peer {
  int fd;
  mf_webrtc_peer_state_t state;
  char user[300];
  char pwd[260];
  char fp[MF_DTLS_FINGERPRINT_MAX + 1];
  uint64_t next_check_ms;
  uint64_t tie_breaker;
  /* full ICE (mf_webrtc_peer_opts_t): our credentials, the agent that validates the
   * remote's checks (it sends nothing, so it keeps no transactions), our role */
  bool full_ice, controlling, has_remote, nominated, stun_succeeded;
  char local_ufrag[256], local_pwd[256];
  StunAgent answerer;
  struct sockaddr_in remote_addr;
  mf_dtls_t *dtls;
  mf_srtp_session_t *out, *in;
  mf_webrtc_peer_counters_t c;
};

mf_err_t mf_webrtc_peer_remote_from_json(const json_t *t, mf_webrtc_peer_remote_t *out) {
  if (!t || !out) return MF_ERR_INVALID_ARG;
  const json_t *ice = json_object_get(t, "iceParameters");
  const json_t *cand = json_array_get(json_object_get(t, "iceCandidates"), 0);
  memset(out, 0, sizeof *out);
  out->ufrag = json_string_value(json_object_get(ice, "usernameFragment"));
  out->pwd = json_string_value(json_object_get(ice, "password"));
  out->ip = json_string_value(json_object_get(cand, "ip"));
  json_int_t port = json_integer_value(json_object_get(cand, "port"));
  size_t i;
  const json_t *f;
  json_array_foreach(json_object_get(json_object_get(t, "dtlsParameters"), "fingerprints"), i,
                     f) {
    const char *alg = json_string_value(json_object_get(f, "algorithm"));
    if (alg && strcmp(alg, "sha-256") == 0)
      out->fingerprint = json_string_value(json_object_get(f, "value"));
  }
  if (!out->ufrag || !out->pwd || !out->ip || !out->fingerprint || port <= 0 || port > 65535)
    return MF_ERR_PARSE;
  out->port = (uint16_t)port;
  return MF_OK;
}

static void peer_send_raw(mf_webrtc_peer_t *p, const uint8_t *data, size_t len) {
  if (send(p->fd, data, len, MSG_DONTWAIT) < 0) p->c.send_failed++;
}

static void dtls_send(void *ud, const uint8_t *data, size_t len) { peer_send_raw(ud, data, len); }

static void dtls_state(void *ud, mf_dtls_state_t st, const char *reason) {
  mf_webrtc_peer_t *p = ud;
  (void)reason;
  if (st == MF_DTLS_STATE_CONNECTED) {
    mf_srtp_keys_t k;
    if (mf_dtls_get_srtp_keys(p->dtls, &k) == MF_OK &&
        mf_srtp_session_create(k.profile, k.local_master, k.master_len, false, &p->out) == MF_OK &&
        mf_srtp_session_create(k.profile, k.remote_master, k.master_len, true, &p->in) == MF_OK)
      p->state = MF_WEBRTC_PEER_CONNECTED;
    else
      p->state = MF_WEBRTC_PEER_FAILED;
    memset(&k, 0, sizeof k);
  } else if (st == MF_DTLS_STATE_FAILED || st == MF_DTLS_STATE_CLOSED) {
    p->state = MF_WEBRTC_PEER_FAILED;
  }
}

static void send_check(mf_webrtc_peer_t *p, uint64_t now_ms) {
  /* a fresh agent per check: responses are recognised by type alone, so the agent would
   * otherwise keep every transaction id until its table fills up */
  StunAgent agent;
  StunMessage msg;
  uint8_t buf[512];
  stun_agent_init(&agent, STUN_ALL_KNOWN_ATTRIBUTES, STUN_COMPATIBILITY_RFC5389,
                  STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
  size_t len = stun_usage_ice_conncheck_create(
      &agent, &msg, buf, sizeof buf, (const uint8_t *)p->user, strlen(p->user),
      (const uint8_t *)p->pwd, strlen(p->pwd), p->controlling, p->controlling, 0x6e7f00ff,
      p->tie_breaker, NULL, STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
  if (len > 20) {
    peer_send_raw(p, buf, len);
    p->c.stun_sent++;
  }
  p->next_check_ms = now_ms + (p->state == MF_WEBRTC_PEER_ICE ? CHECK_RETRY_MS : CONSENT_MS);
}

static bool ice_cred_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n < 4 || n > 255) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '+' || c == '/'))
      return false;
  }
  return true;
}

mf_err_t mf_webrtc_peer_create_ex(mf_dtls_context_t *ctx, const mf_webrtc_peer_remote_t *remote,
                                  const mf_webrtc_peer_opts_t *opts, uint64_t now_ms,
                                  mf_webrtc_peer_t **out) {
  if (!ctx || !out) return MF_ERR_INVALID_ARG;
  if (opts && opts->full_ice && (!ice_cred_ok(opts->local_ufrag) || !ice_cred_ok(opts->local_pwd)))
    return MF_ERR_INVALID_ARG;
  mf_webrtc_peer_t *p = calloc(1, sizeof *p);
  if (!p) return MF_ERR_NO_MEMORY;
  p->controlling = !(opts && opts->controlled);
  if (opts && opts->full_ice) {
    p->full_ice = true;
    snprintf(p->local_ufrag, sizeof p->local_ufrag, "%s", opts->local_ufrag);
    snprintf(p->local_pwd, sizeof p->local_pwd, "%s", opts->local_pwd);
    stun_agent_init(&p->answerer, STUN_ALL_KNOWN_ATTRIBUTES, STUN_COMPATIBILITY_RFC5389,
                    STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
  } else {
    snprintf(p->local_ufrag, sizeof p->local_ufrag, "mfpeer");
  }
  p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in local = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  /* a few hundred KiB so a burst of fan-out does not overflow while the loop is busy */
  int rcvbuf = 1 << 20;
  if (p->fd < 0 || setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0 ||
      bind(p->fd, (struct sockaddr *)&local, sizeof local) != 0) {
    if (p->fd >= 0) close(p->fd);
    free(p);
    return MF_ERR_IO;
  }
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  p->tie_breaker = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)p;
  static const mf_dtls_callbacks_t cb = {.send = dtls_send, .state = dtls_state};
  if (mf_dtls_create(ctx, &cb, p, &p->dtls) != MF_OK) {
    close(p->fd);
    free(p);
    return MF_ERR_NO_MEMORY;
  }
  p->state = MF_WEBRTC_PEER_ICE;
  p->next_check_ms = UINT64_MAX; /* no checks before a remote is known */
  if (remote) {
    mf_err_t e = mf_webrtc_peer_set_remote(p, remote, now_ms);
    if (e != MF_OK) {
      mf_webrtc_peer_free(p);
      return e;
    }
  }
  *out = p;
  return MF_OK;
}

mf_err_t mf_webrtc_peer_create(mf_dtls_context_t *ctx, const mf_webrtc_peer_remote_t *remote,
                               uint64_t now_ms, mf_webrtc_peer_t **out) {
  if (!remote) return MF_ERR_INVALID_ARG;
  return mf_webrtc_peer_create_ex(ctx, remote, NULL, now_ms, out);
}

mf_err_t mf_webrtc_peer_set_remote(mf_webrtc_peer_t *p, const mf_webrtc_peer_remote_t *remote,
                                   uint64_t now_ms) {
  if (!p || !remote || !remote->ufrag || !remote->pwd || !remote->ip || !remote->fingerprint)
    return MF_ERR_INVALID_ARG;
  if (p->has_remote) return MF_ERR_STATE;
  struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(remote->port)};
  if (inet_pton(AF_INET, remote->ip, &server.sin_addr) != 1) return MF_ERR_INVALID_ARG;
  if (connect(p->fd, (struct sockaddr *)&server, sizeof server) != 0) return MF_ERR_IO;
  p->remote_addr = server;
  p->has_remote = true;
  snprintf(p->user, sizeof p->user, "%s:%s", remote->ufrag, p->local_ufrag);
  snprintf(p->pwd, sizeof p->pwd, "%s", remote->pwd);
  snprintf(p->fp, sizeof p->fp, "%s", remote->fingerprint);
  send_check(p, now_ms);
  return MF_OK;
}

uint16_t mf_webrtc_peer_local_port(const mf_webrtc_peer_t *p) {
  struct sockaddr_in a;
  socklen_t l = sizeof a;
  if (!p || getsockname(p->fd, (struct sockaddr *)&a, &l) != 0 || a.sin_family != AF_INET)
    return 0;
  return ntohs(a.sin_port);
}

void mf_webrtc_peer_free(mf_webrtc_peer_t *p) {
  if (!p) return;
  mf_dtls_free(p->dtls);
  mf_srtp_session_free(p->out);
  mf_srtp_session_free(p->in);
  close(p->fd);
  free(p);
}

int mf_webrtc_peer_fd(const mf_webrtc_peer_t *p) { return p->fd; }
mf_webrtc_peer_state_t mf_webrtc_peer_state(const mf_webrtc_peer_t *p) { return p->state; }
const mf_webrtc_peer_counters_t *mf_webrtc_peer_counters(const mf_webrtc_peer_t *p) {
  return &p->c;
}

/* Controlling: our own nominated check succeeded. Controlled: a check of ours succeeded
 * and the remote nominated the pair (its check carried USE-CANDIDATE). */
static void maybe_start_dtls(mf_webrtc_peer_t *p, uint64_t now_ms) {
  if (p->state != MF_WEBRTC_PEER_ICE || !p->stun_succeeded) return;
  if (!p->controlling && !p->nominated) return;
  p->state = MF_WEBRTC_PEER_DTLS;
  p->next_check_ms = now_ms + CONSENT_MS;
  if (mf_dtls_start(p->dtls, MF_DTLS_ROLE_CLIENT, "sha-256", p->fp) != MF_OK)
    p->state = MF_WEBRTC_PEER_FAILED;
}

/* The key of a check addressed to us: USERNAME "<our ufrag>:<theirs>". */
static bool answer_validater(StunAgent *agent, StunMessage *message, uint8_t *username,
                             uint16_t username_len, uint8_t **password, size_t *password_len,
                             void *user_data) {
  (void)agent;
  (void)message;
  mf_webrtc_peer_t *p = user_data;
  size_t ul = strlen(p->local_ufrag);
  if (!username || username_len <= ul + 1 || memcmp(username, p->local_ufrag, ul) != 0 ||
      username[ul] != ':')
    return false;
  *password = (uint8_t *)p->local_pwd;
  *password_len = strlen(p->local_pwd);
  return true;
}

/* A Binding request of a full ICE remote: authenticated with our password, answered with
 * our role (libnice resolves a role conflict by the tie-breakers and may switch it). */
static void answer_check(mf_webrtc_peer_t *p, const uint8_t *buf, size_t n, uint64_t now_ms) {
  StunMessage req, reply;
  if (stun_agent_validate(&p->answerer, &req, buf, n, answer_validater, p) !=
          STUN_VALIDATION_SUCCESS ||
      stun_message_get_class(&req) != STUN_REQUEST) {
    p->c.unknown_in++;
    return;
  }
  uint8_t out[1024];
  size_t out_len = sizeof out;
  struct sockaddr_storage mapped;
  memset(&mapped, 0, sizeof mapped);
  memcpy(&mapped, &p->remote_addr, sizeof p->remote_addr);
  StunUsageIceReturn ir = stun_usage_ice_conncheck_create_reply(
      &p->answerer, &req, &reply, out, &out_len, &mapped, sizeof p->remote_addr,
      &p->controlling, p->tie_breaker, STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
  if ((ir != STUN_USAGE_ICE_RETURN_SUCCESS && ir != STUN_USAGE_ICE_RETURN_ROLE_CONFLICT) ||
      out_len == 0) {
    p->c.unknown_in++;
    return;
  }
  peer_send_raw(p, out, out_len);
  p->c.stun_answered++;
  if (ir == STUN_USAGE_ICE_RETURN_SUCCESS &&
      stun_message_find_flag(&req, STUN_ATTRIBUTE_USE_CANDIDATE) == STUN_MESSAGE_RETURN_SUCCESS) {
    p->nominated = true;
    maybe_start_dtls(p, now_ms);
  }
}

mf_webrtc_peer_in_t mf_webrtc_peer_input(mf_webrtc_peer_t *p, uint8_t *buf, size_t *len,
                                         uint64_t now_ms) {
  size_t n = *len;
  if (n < 2) {
    p->c.unknown_in++;
    return MF_WEBRTC_PEER_IN_NONE;
  }
  uint8_t b = buf[0];
  if (b <= 3) {
    /* a Binding success response: type 0x0101 and the RFC 5389 magic cookie */
    if (n >= 20 && buf[0] == 0x01 && buf[1] == 0x01 && buf[4] == 0x21 && buf[5] == 0x12 &&
        buf[6] == 0xa4 && buf[7] == 0x42) {
      p->c.stun_ok++;
      p->stun_succeeded = true;
      maybe_start_dtls(p, now_ms);
    } else if (p->full_ice && p->has_remote && n >= 20 && buf[0] == 0x00 && buf[1] == 0x01) {
      answer_check(p, buf, n, now_ms);
    } else {
      p->c.unknown_in++;
    }
    return MF_WEBRTC_PEER_IN_NONE;
  }
  if (b >= 20 && b <= 63) {
    p->c.dtls_in++;
    if (p->state == MF_WEBRTC_PEER_DTLS || p->state == MF_WEBRTC_PEER_CONNECTED)
      mf_dtls_handle_datagram(p->dtls, buf, n);
    return MF_WEBRTC_PEER_IN_NONE;
  }
  if (p->state != MF_WEBRTC_PEER_CONNECTED || !mf_rtp_is_rtp_or_rtcp(buf, n)) {
    p->c.unknown_in++;
    return MF_WEBRTC_PEER_IN_NONE;
  }
  bool rtcp = buf[1] >= 192 && buf[1] <= 223;
  mf_err_t e = rtcp ? mf_srtp_unprotect_rtcp(p->in, buf, len) : mf_srtp_unprotect_rtp(p->in, buf, len);
  if (e != MF_OK) {
    p->c.unprotect_failed++;
    return MF_WEBRTC_PEER_IN_NONE;
  }
  if (rtcp) {
    p->c.rtcp_in++;
    return MF_WEBRTC_PEER_IN_RTCP;
  }
  p->c.rtp_in++;
  return MF_WEBRTC_PEER_IN_RTP;
}

void mf_webrtc_peer_tick(mf_webrtc_peer_t *p, uint64_t now_ms) {
  if (p->state == MF_WEBRTC_PEER_FAILED || !p->has_remote) return;
  if (now_ms >= p->next_check_ms) send_check(p, now_ms);
  if (p->state == MF_WEBRTC_PEER_DTLS && mf_dtls_timeout_ms(p->dtls) == 0)
    mf_dtls_handle_timeout(p->dtls);
}

uint64_t mf_webrtc_peer_timeout_ms(const mf_webrtc_peer_t *p, uint64_t now_ms) {
  if (p->state == MF_WEBRTC_PEER_FAILED) return UINT64_MAX;
  uint64_t t = p->next_check_ms > now_ms ? p->next_check_ms - now_ms : 0;
  if (p->state == MF_WEBRTC_PEER_DTLS) {
    long d = mf_dtls_timeout_ms(p->dtls);
    if (d >= 0 && (uint64_t)d < t) t = (uint64_t)d;
  }
  return t;
}

mf_err_t mf_webrtc_peer_protect_rtp(mf_webrtc_peer_t *p, uint8_t *buf, size_t *len, size_t cap) {
  if (p->state != MF_WEBRTC_PEER_CONNECTED) return MF_ERR_STATE;
  return mf_srtp_protect_rtp(p->out, buf, len, cap);
}

mf_err_t mf_webrtc_peer_protect_rtcp(mf_webrtc_peer_t *p, uint8_t *buf, size_t *len,
                                     size_t cap) {
  if (p->state != MF_WEBRTC_PEER_CONNECTED) return MF_ERR_STATE;
  return mf_srtp_protect_rtcp(p->out, buf, len, cap);
}

mf_err_t mf_webrtc_peer_send(mf_webrtc_peer_t *p, const uint8_t *buf, size_t len) {
  if (send(p->fd, buf, len, MSG_DONTWAIT) >= 0) return MF_OK;
  p->c.send_failed++;
  return errno == EAGAIN || errno == EWOULDBLOCK ? MF_ERR_FULL : MF_ERR_IO;
}

static uint64_t now_ms_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

mf_err_t mf_webrtc_peer_connect(mf_webrtc_peer_t *p, int timeout_ms) {
  uint64_t deadline = now_ms_mono() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
  uint8_t buf[2048];
  for (;;) {
    if (p->state == MF_WEBRTC_PEER_CONNECTED) return MF_OK;
    if (p->state == MF_WEBRTC_PEER_FAILED) return MF_ERR_STATE;
    uint64_t now = now_ms_mono();
    if (now >= deadline) return MF_ERR_TIMEOUT;
    uint64_t wait = mf_webrtc_peer_timeout_ms(p, now);
    if (wait > deadline - now) wait = deadline - now;
    if (wait > 100) wait = 100;
    struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
    if (poll(&pfd, 1, (int)wait) > 0) {
      ssize_t n;
      while ((n = recv(p->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
        size_t len = (size_t)n;
        mf_webrtc_peer_input(p, buf, &len, now_ms_mono());
      }
    }
    mf_webrtc_peer_tick(p, now_ms_mono());
  }
}
