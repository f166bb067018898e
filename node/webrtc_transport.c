#define MF_LOG_MODULE "transport"
#include "webrtc_transport.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "common/log.h"
#include "node/rtp/rtp.h"
#include "node/udp_socket.h"

struct mf_webrtc_transport {
  char id[MF_ID_LEN + 1];
  char ufrag[MF_ICE_UFRAG_LEN + 1];
  char pwd[MF_ICE_PWD_LEN + 1];
  mf_rtc_server_t *server;
  mf_webrtc_transport_callbacks_t cb;
  void *ud;
  mf_ice_t *ice;
  mf_dtls_t *dtls;
  uv_timer_t dtls_timer;
  mf_srtp_session_t *srtp_in;
  mf_srtp_session_t *srtp_out;
  /* tuples registered with the server, mirrored from the ICE object's results */
  struct sockaddr_storage tuples[MF_ICE_MAX_TUPLES];
  unsigned tuple_count;
  bool connect_called;
  mf_dtls_role_t dtls_local_role;
  char fp_algorithm[16];
  char fp_value[MF_DTLS_FINGERPRINT_MAX];
  mf_transport_state_t state;
  uint64_t disconnected_at_ms;
  bool released; /* mf_webrtc_transport_close was called: no callbacks any more */
  mf_webrtc_transport_stats_t stats;
  /* A PipeTransport: no ICE, no DTLS (ice and dtls are NULL); one fixed remote address. */
  bool pipe, pipe_connected;
  mf_pipe_srtp_t pipe_local_srtp; /* enabled=false: plain RTP */
  struct sockaddr_storage pipe_remote;
  mf_webrtc_transport_io_t io; /* PlainTransport: its own socket (see the header) */
  void *io_ud;
  /* DataChannels (sctp helper, issue 11): NULL unless enable_sctp was called */
  mf_sctp_association_t *sctp;
  mf_webrtc_transport_sctp_callbacks_t sctp_cb;
};

static void mf_transport_dtls_app_data(void *ud, const uint8_t *data, size_t len);
static void mf_transport_sctp_kick(mf_webrtc_transport_t *t);

static const char *const mf_transport_state_names[] = {
    "new", "connecting", "connected", "disconnected", "failed", "closed"};

const char *mf_transport_state_name(mf_transport_state_t s) {
  return (unsigned)s <= MF_TRANSPORT_STATE_CLOSED ? mf_transport_state_names[s] : "?";
}

const char *mf_webrtc_transport_id(const mf_webrtc_transport_t *t) { return t->id; }
const char *mf_webrtc_transport_ice_ufrag(const mf_webrtc_transport_t *t) { return t->ufrag; }
const char *mf_webrtc_transport_ice_pwd(const mf_webrtc_transport_t *t) { return t->pwd; }
mf_transport_state_t mf_webrtc_transport_state(const mf_webrtc_transport_t *t) { return t->state; }

static void mf_transport_set_state(mf_webrtc_transport_t *t, mf_transport_state_t s,
                                   const char *reason) {
  if (t->state == s || t->state == MF_TRANSPORT_STATE_CLOSED) return;
  MF_LOG_INFO("transport %s: %s -> %s%s%s", t->id, mf_transport_state_name(t->state),
              mf_transport_state_name(s), reason ? ": " : "", reason ? reason : "");
  t->state = s;
  if (!t->released && t->cb.state) t->cb.state(t->ud, t, s, reason);
}

/* Overall state from the ICE and DTLS states (closed and failed are sticky). */
static void mf_transport_update_state(mf_webrtc_transport_t *t) {
  if (t->state == MF_TRANSPORT_STATE_CLOSED || t->state == MF_TRANSPORT_STATE_FAILED) return;
  if (t->pipe) return; /* connect_pipe sets its state */
  mf_ice_state_t ice = mf_ice_state(t->ice);
  mf_dtls_state_t dtls = mf_dtls_state(t->dtls);
  bool ice_up = ice == MF_ICE_STATE_CONNECTED || ice == MF_ICE_STATE_COMPLETED;
  mf_transport_state_t s;
  if (ice == MF_ICE_STATE_DISCONNECTED)
    s = MF_TRANSPORT_STATE_DISCONNECTED;
  else if (ice_up && dtls == MF_DTLS_STATE_CONNECTED && t->srtp_in)
    s = MF_TRANSPORT_STATE_CONNECTED;
  else if (ice == MF_ICE_STATE_NEW && dtls == MF_DTLS_STATE_NEW)
    s = MF_TRANSPORT_STATE_NEW;
  else
    s = MF_TRANSPORT_STATE_CONNECTING;
  mf_transport_set_state(t, s, NULL);
}

static void mf_transport_forget_tuples(mf_webrtc_transport_t *t) {
  for (unsigned i = 0; i < t->tuple_count; i++)
    mf_rtc_server_remove_tuple(t->server, (struct sockaddr *)&t->tuples[i], t);
  t->tuple_count = 0;
}

/* Stops all traffic for good: used when the transport ends by itself (close_notify, DTLS
 * failure, consent lost for too long). Memory stays until the owner's close call. */
static void mf_transport_shutdown(mf_webrtc_transport_t *t) {
  if (!t->pipe) mf_rtc_server_remove_ufrag(t->server, t->ufrag);
  mf_transport_forget_tuples(t);
  if (t->ice) mf_ice_close(t->ice);
  uv_timer_stop(&t->dtls_timer);
}

static void mf_transport_rearm_dtls_timer(mf_webrtc_transport_t *t);

static void mf_transport_on_dtls_timer(uv_timer_t *timer) {
  mf_webrtc_transport_t *t = timer->data;
  mf_dtls_handle_timeout(t->dtls);
  mf_transport_rearm_dtls_timer(t);
}

static void mf_transport_rearm_dtls_timer(mf_webrtc_transport_t *t) {
  if (t->state == MF_TRANSPORT_STATE_CLOSED) return;
  long ms = mf_dtls_timeout_ms(t->dtls);
  if (ms >= 0)
    uv_timer_start(&t->dtls_timer, mf_transport_on_dtls_timer, (uint64_t)ms, 0);
  else
    uv_timer_stop(&t->dtls_timer);
}

static void mf_transport_dtls_send(void *ud, const uint8_t *data, size_t len) {
  mf_webrtc_transport_t *t = ud;
  const struct sockaddr *to = mf_ice_selected_tuple(t->ice);
  if (!to) return; /* no path: the DTLS retransmission timer resends once there is one */
  if (mf_udp_socket_send_copy(mf_rtc_server_socket(t->server), data, len, to) == MF_OK)
    t->stats.bytes_sent += len;
}

static mf_err_t mf_transport_start_srtp(mf_webrtc_transport_t *t) {
  mf_srtp_keys_t keys;
  mf_err_t err = mf_dtls_get_srtp_keys(t->dtls, &keys);
  if (!err) err = mf_srtp_session_create(keys.profile, keys.remote_master, keys.master_len, true,
                                         &t->srtp_in);
  if (!err) err = mf_srtp_session_create(keys.profile, keys.local_master, keys.master_len, false,
                                         &t->srtp_out);
  if (!err) {
    t->stats.srtp_profile = keys.profile;
    MF_LOG_INFO("transport %s: SRTP ready (%s)", t->id, mf_srtp_profile_name(keys.profile));
  }
  memset(&keys, 0, sizeof keys);
  return err;
}

static void mf_transport_dtls_state(void *ud, mf_dtls_state_t s, const char *reason) {
  mf_webrtc_transport_t *t = ud;
  if (t->released) return; /* our own close(): it tears everything down itself */
  MF_LOG_INFO("transport %s: DTLS %s%s%s%s", t->id, mf_dtls_state_name(s), reason ? " (" : "",
              reason ? reason : "", reason ? ")" : "");
  if (s == MF_DTLS_STATE_CONNECTED) {
    mf_err_t err = mf_transport_start_srtp(t);
    if (err) {
      MF_LOG_ERROR("transport %s: SRTP setup failed: %s", t->id, mf_strerror(err));
      if (!t->released && t->cb.dtls_state) t->cb.dtls_state(t->ud, t, s);
      mf_transport_shutdown(t);
      mf_transport_set_state(t, MF_TRANSPORT_STATE_FAILED, "SRTP setup failed");
      return;
    }
  }
  if (!t->released && t->cb.dtls_state) t->cb.dtls_state(t->ud, t, s);
  if (s == MF_DTLS_STATE_FAILED) {
    mf_transport_shutdown(t);
    mf_transport_set_state(t, MF_TRANSPORT_STATE_FAILED, reason ? reason : "DTLS failed");
  } else if (s == MF_DTLS_STATE_CLOSED) {
    mf_transport_shutdown(t);
    mf_transport_set_state(t, MF_TRANSPORT_STATE_CLOSED, "DTLS closed by the peer");
  } else {
    mf_transport_update_state(t);
  }
}

/* mediasoup runs DTLS once connect() gave the remote parameters and ICE found a path. */
static void mf_transport_maybe_start_dtls(mf_webrtc_transport_t *t) {
  mf_ice_state_t ice = mf_ice_state(t->ice);
  if (!t->connect_called || mf_dtls_state(t->dtls) != MF_DTLS_STATE_NEW) return;
  if (ice != MF_ICE_STATE_CONNECTED && ice != MF_ICE_STATE_COMPLETED) return;
  MF_LOG_INFO("transport %s: starting DTLS as %s", t->id, mf_dtls_role_name(t->dtls_local_role));
  mf_err_t err = mf_dtls_start(t->dtls, t->dtls_local_role, t->fp_algorithm, t->fp_value);
  if (err) {
    MF_LOG_ERROR("transport %s: DTLS start failed: %s", t->id, mf_strerror(err));
    mf_transport_shutdown(t);
    mf_transport_set_state(t, MF_TRANSPORT_STATE_FAILED, "DTLS start failed");
    return;
  }
  mf_transport_rearm_dtls_timer(t);
}

static void mf_transport_apply_tuples(mf_webrtc_transport_t *t, const struct sockaddr *from,
                                      const mf_ice_result_t *r) {
  if (r->tuple_removed) {
    mf_rtc_server_remove_tuple(t->server, (const struct sockaddr *)&r->removed_tuple, t);
    for (unsigned i = 0; i < t->tuple_count; i++) {
      if (mf_ice_tuple_equal((struct sockaddr *)&t->tuples[i],
                             (const struct sockaddr *)&r->removed_tuple)) {
        t->tuples[i] = t->tuples[--t->tuple_count];
        break;
      }
    }
  }
  if (r->tuple_added && t->tuple_count < MF_ICE_MAX_TUPLES &&
      mf_rtc_server_add_tuple(t->server, from, t) == MF_OK) {
    memcpy(&t->tuples[t->tuple_count++], from, mf_udp_sockaddr_len(from));
  }
}

void mf_webrtc_transport_handle_stun(mf_webrtc_transport_t *t, const uint8_t *data, size_t len,
                                     const struct sockaddr *from) {
  if (t->state == MF_TRANSPORT_STATE_CLOSED || t->state == MF_TRANSPORT_STATE_FAILED) return;
  t->stats.bytes_received += len;
  t->stats.stun_requests++;
  uint8_t resp[MF_ICE_RESPONSE_MAX];
  size_t resp_len = sizeof resp;
  mf_ice_result_t r;
  mf_err_t err = mf_ice_handle_request(t->ice, data, len, from, uv_now(mf_rtc_server_loop(t->server)),
                                       resp, &resp_len, &r);
  if (resp_len > 0 &&
      mf_udp_socket_send_copy(mf_rtc_server_socket(t->server), resp, resp_len, from) == MF_OK)
    t->stats.bytes_sent += resp_len;
  if (err) {
    t->stats.stun_rejected++;
    MF_LOG_DEBUG("transport %s: STUN request rejected: %s", t->id, mf_strerror(err));
    return;
  }
  mf_transport_apply_tuples(t, from, &r);
  if (r.state_changed) {
    MF_LOG_INFO("transport %s: ICE %s", t->id, mf_ice_state_name(r.state));
    if (!t->released && t->cb.ice_state) t->cb.ice_state(t->ud, t, r.state);
  }
  mf_transport_maybe_start_dtls(t);
  mf_transport_update_state(t);
}

void mf_webrtc_transport_handle_dtls(mf_webrtc_transport_t *t, const uint8_t *data, size_t len) {
  t->stats.bytes_received += len;
  if (t->pipe) return; /* a pipe has no DTLS: a stray datagram from the peer's port */
  if (mf_dtls_state(t->dtls) == MF_DTLS_STATE_NEW) {
    /* As mediasoup: the client's first flight before connect() is dropped; its DTLS
     * retransmission brings it again once we run. */
    MF_LOG_DEBUG("transport %s: DTLS data before connect(), dropped", t->id);
    return;
  }
  mf_dtls_handle_datagram(t->dtls, data, len);
  mf_transport_rearm_dtls_timer(t);
  mf_transport_sctp_kick(t); /* DataChannels: SCTP starts once DTLS is up (outside DTLS) */
}

void mf_webrtc_transport_handle_srtp(mf_webrtc_transport_t *t, mf_buf_t *buf) {
  t->stats.bytes_received += buf->len;
  bool plain = t->pipe && t->pipe_connected && !t->pipe_local_srtp.enabled;
  if ((!t->srtp_in && !plain) || t->state == MF_TRANSPORT_STATE_CLOSED) {
    t->stats.dropped_not_connected++;
    return;
  }
  size_t len = buf->len;
  if (plain) {
    /* A plain pipe (--pipe-srtp=false) still hands on only what parses as RTP/RTCP. */
    bool rtcp = mf_rtp_is_rtcp(buf->data, len);
    if (len < (rtcp ? 8u : 12u)) {
      t->stats.srtp_unprotect_failures++;
      return;
    }
    if (rtcp) {
      t->stats.rtcp_packets_received++;
      if (!t->released && t->cb.rtcp) t->cb.rtcp(t->ud, t, buf);
    } else {
      t->stats.rtp_packets_received++;
      t->stats.rtp_bytes_received += len;
      if (!t->released && t->cb.rtp) t->cb.rtp(t->ud, t, buf);
    }
    return;
  }
  if (mf_rtp_is_rtcp(buf->data, len)) {
    if (mf_srtp_unprotect_rtcp(t->srtp_in, buf->data, &len) != MF_OK) {
      t->stats.srtp_unprotect_failures++;
      return;
    }
    buf->len = (uint32_t)len;
    t->stats.rtcp_packets_received++;
    if (!t->released && t->cb.rtcp) t->cb.rtcp(t->ud, t, buf);
    return;
  }
  if (mf_srtp_unprotect_rtp(t->srtp_in, buf->data, &len) != MF_OK) {
    t->stats.srtp_unprotect_failures++;
    return;
  }
  buf->len = (uint32_t)len;
  t->stats.rtp_packets_received++;
  t->stats.rtp_bytes_received += len;
  if (!t->released && t->cb.rtp) t->cb.rtp(t->ud, t, buf);
}

void mf_webrtc_transport_tick(mf_webrtc_transport_t *t, uint64_t now_ms) {
  if (t->state == MF_TRANSPORT_STATE_CLOSED || t->state == MF_TRANSPORT_STATE_FAILED) return;
  if (t->pipe) return; /* no consent checks between nodes: gossip finds dead peers */
  if (mf_ice_tick(t->ice, now_ms)) {
    mf_ice_state_t s = mf_ice_state(t->ice);
    MF_LOG_INFO("transport %s: ICE %s", t->id, mf_ice_state_name(s));
    if (s == MF_ICE_STATE_DISCONNECTED) {
      /* The ICE object forgot every tuple: so must the server's demux table. */
      mf_transport_forget_tuples(t);
      t->disconnected_at_ms = now_ms;
    }
    if (!t->released && t->cb.ice_state) t->cb.ice_state(t->ud, t, s);
    mf_transport_update_state(t);
  }
  if (t->state == MF_TRANSPORT_STATE_DISCONNECTED &&
      now_ms - t->disconnected_at_ms >= MF_WEBRTC_DISCONNECTED_CLOSE_MS) {
    mf_transport_shutdown(t);
    mf_transport_set_state(t, MF_TRANSPORT_STATE_CLOSED, "ICE disconnected for too long");
  }
}

mf_err_t mf_webrtc_transport_create(mf_rtc_server_t *server,
                                    const mf_webrtc_transport_callbacks_t *callbacks, void *ud,
                                    mf_webrtc_transport_t **out) {
  mf_webrtc_transport_t *t = calloc(1, sizeof *t);
  if (!t) return MF_ERR_NO_MEMORY;
  t->server = server;
  if (callbacks) t->cb = *callbacks;
  t->ud = ud;
  mf_err_t err = mf_id_generate(t->id);
  if (!err) err = mf_ice_generate_credentials(t->ufrag, t->pwd);
  if (!err) err = mf_ice_create(t->ufrag, t->pwd, &t->ice);
  static const mf_dtls_callbacks_t dtls_cb = {
      .send = mf_transport_dtls_send, .state = mf_transport_dtls_state,
      .app_data = mf_transport_dtls_app_data};
  if (!err) err = mf_dtls_create(mf_rtc_server_dtls_context(server), &dtls_cb, t, &t->dtls);
  if (!err) err = mf_rtc_server_add_ufrag(server, t->ufrag, t);
  if (err) {
    mf_dtls_free(t->dtls);
    mf_ice_free(t->ice);
    free(t);
    return err;
  }
  uv_timer_init(mf_rtc_server_loop(server), &t->dtls_timer);
  t->dtls_timer.data = t;
  MF_LOG_INFO("transport %s created (ufrag %s)", t->id, t->ufrag);
  *out = t;
  return MF_OK;
}

mf_err_t mf_webrtc_transport_connect(mf_webrtc_transport_t *t, mf_dtls_role_t remote_role,
                                     const char *fp_algorithm, const char *fp_value) {
  if (t->connect_called || t->pipe) return MF_ERR_STATE;
  if (t->state == MF_TRANSPORT_STATE_CLOSED || t->state == MF_TRANSPORT_STATE_FAILED)
    return MF_ERR_STATE;
  char probe[MF_DTLS_FINGERPRINT_MAX];
  /* Reject an algorithm we cannot compute before accepting the call. */
  if (!fp_algorithm || !fp_value || strlen(fp_value) >= sizeof t->fp_value ||
      mf_dtls_cert_fingerprint_for(mf_rtc_server_cert(t->server), fp_algorithm, probe,
                                   sizeof probe) != MF_OK ||
      strlen(fp_value) != strlen(probe))
    return MF_ERR_INVALID_ARG;
  snprintf(t->fp_algorithm, sizeof t->fp_algorithm, "%s", fp_algorithm);
  snprintf(t->fp_value, sizeof t->fp_value, "%s", fp_value);
  t->dtls_local_role = mf_dtls_local_role_for_remote(remote_role);
  t->connect_called = true;
  MF_LOG_INFO("transport %s: connect (remote role %s, local role %s)", t->id,
              mf_dtls_role_name(remote_role), mf_dtls_role_name(t->dtls_local_role));
  mf_transport_maybe_start_dtls(t);
  mf_transport_update_state(t);
  return MF_OK;
}

static mf_err_t mf_transport_fail_json(char *error, size_t size, const char *msg) {
  if (error && size) snprintf(error, size, "%s", msg);
  return MF_ERR_INVALID_ARG;
}

mf_err_t mf_webrtc_transport_connect_json(mf_webrtc_transport_t *t, const json_t *dtls,
                                          char *error, size_t error_size) {
  if (!json_is_object(dtls))
    return mf_transport_fail_json(error, error_size, "dtlsParameters must be an object");
  mf_dtls_role_t role = MF_DTLS_ROLE_AUTO;
  const json_t *jrole = json_object_get(dtls, "role");
  if (jrole) {
    const char *r = json_string_value(jrole);
    if (!r) return mf_transport_fail_json(error, error_size, "dtlsParameters.role must be a string");
    if (strcmp(r, "client") == 0)
      role = MF_DTLS_ROLE_CLIENT;
    else if (strcmp(r, "server") == 0)
      role = MF_DTLS_ROLE_SERVER;
    else if (strcmp(r, "auto") != 0)
      return mf_transport_fail_json(error, error_size,
                                    "dtlsParameters.role must be auto, client or server");
  }
  const json_t *fps = json_object_get(dtls, "fingerprints");
  if (!json_is_array(fps) || json_array_size(fps) == 0)
    return mf_transport_fail_json(error, error_size,
                                  "dtlsParameters.fingerprints must be a non-empty array");
  size_t i;
  const json_t *fp;
  json_array_foreach(fps, i, fp) {
    const char *alg = json_string_value(json_object_get(fp, "algorithm"));
    const char *val = json_string_value(json_object_get(fp, "value"));
    if (!alg || !val)
      return mf_transport_fail_json(error, error_size,
                                    "each fingerprint needs string algorithm and value");
    mf_err_t err = mf_webrtc_transport_connect(t, role, alg, val);
    if (err == MF_OK) return MF_OK;
    if (err == MF_ERR_STATE) {
      if (error && error_size)
        snprintf(error, error_size, "transport is %s; connect() was %s",
                 mf_transport_state_name(t->state), t->connect_called ? "already called" : "refused");
      return MF_ERR_STATE;
    }
    /* else: unsupported algorithm or bad value: try the next fingerprint */
  }
  return mf_transport_fail_json(error, error_size,
                                "no fingerprint with a supported algorithm (sha-1, sha-224, "
                                "sha-256, sha-384, sha-512) and a well-formed value");
}

static void mf_transport_addr_format(const struct sockaddr *a, char *ip, size_t ipsz,
                                     uint16_t *port) {
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

static json_t *mf_transport_tuple_json(const mf_webrtc_transport_t *t, const struct sockaddr *to) {
  char ip[INET6_ADDRSTRLEN] = "";
  uint16_t port = 0;
  mf_transport_addr_format(to, ip, sizeof ip, &port);
  return json_pack("{s:s, s:i, s:s, s:i, s:s}", "localIp", mf_rtc_server_announced_ip(t->server),
                   "localPort", (int)mf_rtc_server_port(t->server), "remoteIp", ip, "remotePort",
                   (int)port, "protocol", "udp");
}

static json_t *mf_transport_pipe_parameters_json(const mf_webrtc_transport_t *t);

json_t *mf_webrtc_transport_parameters_json(const mf_webrtc_transport_t *t) {
  if (t->pipe) return mf_transport_pipe_parameters_json(t);
  /* RFC 8445 priority for a host UDP candidate, component 1, local preference 65535. */
  const json_int_t priority = ((json_int_t)126 << 24) | ((json_int_t)65535 << 8) | (256 - 1);
  json_t *fingerprints = json_array();
  static const char *const algorithms[] = {"sha-256", "sha-384", "sha-512"};
  for (size_t i = 0; i < sizeof algorithms / sizeof algorithms[0]; i++) {
    char value[MF_DTLS_FINGERPRINT_MAX];
    if (mf_dtls_cert_fingerprint_for(mf_rtc_server_cert(t->server), algorithms[i], value,
                                     sizeof value) == MF_OK)
      json_array_append_new(fingerprints,
                            json_pack("{s:s, s:s}", "algorithm", algorithms[i], "value", value));
  }
  const char *ip = mf_rtc_server_announced_ip(t->server);
  json_t *candidate = json_pack(
      "{s:s, s:I, s:s, s:s, s:s, s:i, s:s}", "foundation", "udpcandidate", "priority", priority,
      "ip", ip, "address", ip, "protocol", "udp", "port", (int)mf_rtc_server_port(t->server),
      "type", "host");
  json_t *params = json_pack("{s:s, s:s, s:{s:s, s:s, s:b}, s:[o], s:{s:s, s:o}, s:s, s:s}", "id", t->id,
                   "iceRole", "controlled", "iceParameters", "usernameFragment", t->ufrag,
                   "password", t->pwd, "iceLite", 1, "iceCandidates", candidate,
                   "dtlsParameters", "role", "auto", "fingerprints", fingerprints, "iceState",
                   mf_ice_state_name(mf_ice_state(t->ice)), "dtlsState",
                   mf_dtls_state_name(mf_dtls_state(t->dtls)));
  if (params && t->sctp) { /* DataChannels */
    mf_sctp_options_t o;
    mf_sctp_association_options(t->sctp, &o);
    json_object_set_new(params, "sctpParameters",
                        json_pack("{s:i, s:i, s:i, s:I}", "port", MF_SCTP_PORT, "OS", (int)o.os,
                                  "MIS", (int)o.mis, "maxMessageSize",
                                  (json_int_t)o.max_message_size));
    json_object_set_new(params, "sctpState",
                        json_string(mf_sctp_state_name(mf_sctp_association_state(t->sctp))));
  }
  return params;
}

void mf_webrtc_transport_get_stats(const mf_webrtc_transport_t *t, mf_webrtc_transport_stats_t *out) {
  *out = t->stats;
  out->state = t->state;
  if (t->pipe) {
    out->ice_state = MF_ICE_STATE_NEW;
    out->dtls_state = MF_DTLS_STATE_NEW;
    out->has_selected_tuple = t->pipe_connected;
    if (t->pipe_connected) out->selected_tuple = t->pipe_remote;
    return;
  }
  out->ice_state = mf_ice_state(t->ice);
  out->dtls_state = mf_dtls_state(t->dtls);
  const struct sockaddr *sel = mf_ice_selected_tuple(t->ice);
  out->has_selected_tuple = sel != NULL;
  if (sel) memcpy(&out->selected_tuple, sel, mf_udp_sockaddr_len(sel));
}

json_t *mf_webrtc_transport_stats_json(const mf_webrtc_transport_t *t) {
  mf_webrtc_transport_stats_t s;
  mf_webrtc_transport_get_stats(t, &s);
  json_t *o = json_pack(
      "{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "type",
      t->io.send ? "plain-rtp-transport" : t->pipe ? "pipe-transport" : "webrtc-transport", "transportId", t->id, "timestamp",
      (json_int_t)uv_now(mf_rtc_server_loop(t->server)), "iceRole", t->pipe ? "none" : "controlled", "iceState",
      mf_ice_state_name(s.ice_state), "dtlsState", mf_dtls_state_name(s.dtls_state), "state",
      mf_transport_state_name(s.state), "bytesReceived", (json_int_t)s.bytes_received,
      "bytesSent", (json_int_t)s.bytes_sent, "rtpBytesReceived",
      (json_int_t)s.rtp_bytes_received, "rtpBytesSent", (json_int_t)s.rtp_bytes_sent,
      "rtpPacketsReceived", (json_int_t)s.rtp_packets_received, "rtpPacketsSent",
      (json_int_t)s.rtp_packets_sent, "rtcpPacketsReceived", (json_int_t)s.rtcp_packets_received,
      "srtpFailures", (json_int_t)s.srtp_unprotect_failures);
  if (s.has_selected_tuple)
    json_object_set_new(o, "iceSelectedTuple",
                        mf_transport_tuple_json(t, (struct sockaddr *)&s.selected_tuple));
  return json_pack("[o]", o);
}

static mf_err_t mf_transport_send(mf_webrtc_transport_t *t, mf_buf_t *buf, bool rtcp) {
  const struct sockaddr *to =
      t->pipe ? (const struct sockaddr *)&t->pipe_remote : mf_ice_selected_tuple(t->ice);
  bool plain = t->pipe && !t->pipe_local_srtp.enabled;
  if (t->state != MF_TRANSPORT_STATE_CONNECTED || (!t->srtp_out && !plain) || !to)
    return MF_ERR_STATE;
  size_t len = buf->len;
  mf_err_t err = MF_OK;
  if (!plain)
    err = rtcp ? mf_srtp_protect_rtcp(t->srtp_out, buf->data, &len, buf->cap)
               : mf_srtp_protect_rtp(t->srtp_out, buf->data, &len, buf->cap);
  if (err) return err;
  buf->len = (uint32_t)len;
  err = t->io.send ? t->io.send(t->io_ud, buf, rtcp)
                   : mf_udp_socket_send(mf_rtc_server_socket(t->server), buf, to);
  if (err) return err;
  len = buf->len;
  t->stats.bytes_sent += len;
  if (rtcp) {
    t->stats.rtcp_packets_sent++;
  } else {
    t->stats.rtp_packets_sent++;
    t->stats.rtp_bytes_sent += len;
  }
  return MF_OK;
}

mf_err_t mf_webrtc_transport_send_rtp(mf_webrtc_transport_t *t, mf_buf_t *buf) {
  return mf_transport_send(t, buf, false);
}

mf_err_t mf_webrtc_transport_send_rtcp(mf_webrtc_transport_t *t, mf_buf_t *buf) {
  return mf_transport_send(t, buf, true);
}

static void mf_transport_on_timer_closed(uv_handle_t *h) { free(h->data); }

void mf_webrtc_transport_close(mf_webrtc_transport_t *t) {
  t->released = true;
  mf_sctp_association_free(t->sctp); /* DataChannels: before DTLS goes */
  t->sctp = NULL;
  if (t->io.close) t->io.close(t->io_ud);
  if (t->dtls && mf_dtls_state(t->dtls) == MF_DTLS_STATE_CONNECTED)
    mf_dtls_close(t->dtls); /* close_notify */
  mf_transport_shutdown(t);
  t->state = MF_TRANSPORT_STATE_CLOSED;
  MF_LOG_INFO("transport %s closed", t->id);
  mf_srtp_session_free(t->srtp_in);
  mf_srtp_session_free(t->srtp_out);
  if (t->dtls) mf_dtls_free(t->dtls);
  if (t->ice) mf_ice_free(t->ice);
  memset(&t->pipe_local_srtp, 0, sizeof t->pipe_local_srtp);
  uv_close((uv_handle_t *)&t->dtls_timer, mf_transport_on_timer_closed);
}

/* ------------------------------------------------------------ PipeTransport */


mf_err_t mf_webrtc_transport_create_pipe(mf_rtc_server_t *server, bool srtp,
                                         const mf_webrtc_transport_callbacks_t *callbacks,
                                         void *ud, mf_webrtc_transport_t **out) {
  mf_webrtc_transport_t *t = calloc(1, sizeof *t);
  if (!t) return MF_ERR_NO_MEMORY;
  t->server = server;
  if (callbacks) t->cb = *callbacks;
  t->ud = ud;
  t->pipe = true;
  mf_err_t err = mf_id_generate(t->id);
  if (!err && srtp) {
    t->pipe_local_srtp.enabled = true;
    t->pipe_local_srtp.profile = MF_PIPE_SRTP_PROFILE;
    t->pipe_local_srtp.key_len = mf_srtp_profile_master_len(MF_PIPE_SRTP_PROFILE);
    /* Each side draws the key it protects with; the peer learns it through the control
     * plane (mediasoup's PipeTransport srtpParameters). */
    if (RAND_bytes(t->pipe_local_srtp.key, (int)t->pipe_local_srtp.key_len) != 1)
      err = MF_ERR_CRYPTO;
    if (!err)
      err = mf_srtp_session_create(t->pipe_local_srtp.profile, t->pipe_local_srtp.key,
                                   t->pipe_local_srtp.key_len, false, &t->srtp_out);
  }
  if (err) {
    mf_srtp_session_free(t->srtp_out);
    memset(t, 0, sizeof *t);
    free(t);
    return err;
  }
  uv_timer_init(mf_rtc_server_loop(server), &t->dtls_timer);
  t->dtls_timer.data = t;
  MF_LOG_INFO("pipe transport %s created (%s)", t->id, srtp ? "SRTP" : "plain RTP");
  *out = t;
  return MF_OK;
}

bool mf_webrtc_transport_is_pipe(const mf_webrtc_transport_t *t) { return t->pipe && !t->io.send; }

void mf_webrtc_transport_set_io(mf_webrtc_transport_t *t, const mf_webrtc_transport_io_t *io,
                                void *ud) {
  t->io = *io;
  t->io_ud = ud;
}

void *mf_webrtc_transport_io_ud(const mf_webrtc_transport_t *t) { return t->io.send ? t->io_ud : NULL; }

void mf_webrtc_transport_ext_connected(mf_webrtc_transport_t *t, const struct sockaddr *remote) {
  memcpy(&t->pipe_remote, remote, mf_udp_sockaddr_len(remote));
  t->pipe_connected = true;
  mf_transport_set_state(t, MF_TRANSPORT_STATE_CONNECTED, NULL);
}

mf_err_t mf_pipe_srtp_generate(mf_pipe_srtp_t *out) {
  memset(out, 0, sizeof *out);
  out->enabled = true;
  out->profile = MF_PIPE_SRTP_PROFILE;
  out->key_len = mf_srtp_profile_master_len(MF_PIPE_SRTP_PROFILE);
  return RAND_bytes(out->key, (int)out->key_len) == 1 ? MF_OK : MF_ERR_CRYPTO;
}

void mf_webrtc_transport_pipe_local_srtp(const mf_webrtc_transport_t *t, mf_pipe_srtp_t *out) {
  *out = t->pipe_local_srtp;
}

mf_err_t mf_webrtc_transport_connect_pipe(mf_webrtc_transport_t *t, const struct sockaddr *remote,
                                          const mf_pipe_srtp_t *remote_srtp,
                                          const mf_pipe_srtp_t *local_srtp, char *error,
                                          size_t error_size) {
  if (!t->pipe || t->pipe_connected || t->state == MF_TRANSPORT_STATE_CLOSED) {
    snprintf(error, error_size, "%s", t->pipe ? "the pipe transport is already connected"
                                              : "not a pipe transport");
    return MF_ERR_STATE;
  }
  if (!remote || (remote->sa_family != AF_INET && remote->sa_family != AF_INET6)) {
    snprintf(error, error_size, "the remote address must be IPv4 or IPv6");
    return MF_ERR_INVALID_ARG;
  }
  bool want = t->pipe_local_srtp.enabled;
  bool have = remote_srtp && remote_srtp->enabled;
  if (want != have) {
    snprintf(error, error_size, "SRTP is %s here and %s on the peer (--pipe-srtp must match)",
             want ? "on" : "off", have ? "on" : "off");
    return MF_ERR_INVALID_ARG;
  }
  if (have && (remote_srtp->profile != t->pipe_local_srtp.profile ||
               remote_srtp->key_len != t->pipe_local_srtp.key_len)) {
    snprintf(error, error_size, "unsupported SRTP parameters (want %s, %zu-byte key)",
             mf_srtp_profile_name(t->pipe_local_srtp.profile), t->pipe_local_srtp.key_len);
    return MF_ERR_INVALID_ARG;
  }
  if (have && local_srtp && (!local_srtp->enabled || local_srtp->profile != t->pipe_local_srtp.profile ||
                             local_srtp->key_len != t->pipe_local_srtp.key_len)) {
    snprintf(error, error_size, "unsupported local SRTP parameters");
    return MF_ERR_INVALID_ARG;
  }
  mf_err_t err = MF_OK;
  if (have && local_srtp) {
    /* the peer chose this side's key too (see webrtc_transport.h) */
    mf_srtp_session_t *out = NULL;
    err = mf_srtp_session_create(local_srtp->profile, local_srtp->key, local_srtp->key_len, false,
                                 &out);
    if (!err) {
      mf_srtp_session_free(t->srtp_out);
      t->srtp_out = out;
      t->pipe_local_srtp = *local_srtp;
    }
  }
  if (have && !err)
    err = mf_srtp_session_create(remote_srtp->profile, remote_srtp->key, remote_srtp->key_len,
                                 true, &t->srtp_in);
  if (err) {
    snprintf(error, error_size, "SRTP setup failed: %s", mf_strerror(err));
    return err;
  }
  err = mf_rtc_server_add_tuple(t->server, remote, t);
  if (err) {
    mf_srtp_session_free(t->srtp_in);
    t->srtp_in = NULL;
    snprintf(error, error_size, "%s",
             err == MF_ERR_EXISTS ? "another transport of this worker already talks to that "
                                    "address"
                                  : "bad remote address");
    return err;
  }
  memcpy(&t->tuples[0], remote, mf_udp_sockaddr_len(remote));
  t->tuple_count = 1;
  memcpy(&t->pipe_remote, remote, mf_udp_sockaddr_len(remote));
  t->pipe_connected = true;
  if (have) t->stats.srtp_profile = remote_srtp->profile;
  char ip[INET6_ADDRSTRLEN] = "";
  uint16_t port = 0;
  mf_transport_addr_format(remote, ip, sizeof ip, &port);
  MF_LOG_INFO("pipe transport %s connected to %s:%u (%s)", t->id, ip, port,
              have ? "SRTP" : "plain RTP");
  mf_transport_set_state(t, MF_TRANSPORT_STATE_CONNECTED, NULL);
  return MF_OK;
}

static json_t *mf_transport_pipe_parameters_json(const mf_webrtc_transport_t *t) {
  json_t *tuple = t->pipe_connected
                      ? mf_transport_tuple_json(t, (const struct sockaddr *)&t->pipe_remote)
                      : json_pack("{s:s, s:i, s:s}", "localIp",
                                  mf_rtc_server_announced_ip(t->server), "localPort",
                                  (int)mf_rtc_server_port(t->server), "protocol", "udp");
  /* the key is not shown: the control plane carries it in its own message */
  return json_pack("{s:s, s:o, s:s, s:b}", "id", t->id, "tuple", tuple, "state",
                   mf_transport_state_name(t->state), "srtp", t->pipe_local_srtp.enabled);
}

/* ------------------------------------------------------------ DataChannels (SCTP) */

static void mf_transport_sctp_send(void *ud, const uint8_t *data, size_t len) {
  mf_webrtc_transport_t *t = ud;
  if (t->dtls && mf_dtls_state(t->dtls) == MF_DTLS_STATE_CONNECTED)
    (void)mf_dtls_send_application_data(t->dtls, data, len); /* lost: SCTP retransmits */
}

static void mf_transport_sctp_state(void *ud, mf_sctp_state_t s) {
  mf_webrtc_transport_t *t = ud;
  if (!t->released && t->sctp_cb.state) t->sctp_cb.state(t->ud, t, s);
}

static void mf_transport_sctp_message(void *ud, uint16_t sid, uint32_t ppid, const uint8_t *data,
                                      size_t len) {
  mf_webrtc_transport_t *t = ud;
  if (!t->released && t->sctp_cb.message) t->sctp_cb.message(t->ud, t, sid, ppid, data, len);
}

static void mf_transport_sctp_reset(void *ud, uint16_t sid) {
  mf_webrtc_transport_t *t = ud;
  if (!t->released && t->sctp_cb.stream_reset) t->sctp_cb.stream_reset(t->ud, t, sid);
}

static void mf_transport_dtls_app_data(void *ud, const uint8_t *data, size_t len) {
  mf_webrtc_transport_t *t = ud;
  if (!t->sctp || t->released) return;
  mf_transport_sctp_kick(t); /* the peer's INIT may come with DTLS's last flight */
  mf_sctp_association_handle_packet(t->sctp, data, len);
}

static void mf_transport_sctp_kick(mf_webrtc_transport_t *t) {
  if (!t->sctp || t->released || mf_sctp_association_state(t->sctp) != MF_SCTP_STATE_NEW) return;
  if (mf_dtls_state(t->dtls) != MF_DTLS_STATE_CONNECTED) return;
  MF_LOG_INFO("transport %s: DTLS connected, starting SCTP", t->id);
  (void)mf_sctp_association_connect(t->sctp);
}

mf_err_t mf_webrtc_transport_enable_sctp(mf_webrtc_transport_t *t, const mf_sctp_options_t *options,
                                         const mf_webrtc_transport_sctp_callbacks_t *cb) {
  if (t->sctp || t->pipe || !t->dtls || t->io.send || mf_dtls_state(t->dtls) != MF_DTLS_STATE_NEW)
    return MF_ERR_STATE;
  static const mf_sctp_callbacks_t sctp_cb = {.send = mf_transport_sctp_send,
                                              .state = mf_transport_sctp_state,
                                              .message = mf_transport_sctp_message,
                                              .stream_reset = mf_transport_sctp_reset};
  mf_err_t e = mf_sctp_association_create(mf_rtc_server_loop(t->server), options, &sctp_cb, t,
                                          &t->sctp);
  if (e) return e;
  if (cb) t->sctp_cb = *cb;
  return MF_OK;
}

mf_sctp_association_t *mf_webrtc_transport_sctp(const mf_webrtc_transport_t *t) { return t->sctp; }
