/* A WebRtcTransport on a worker's RTC server against a real client stack in the same
 * process, over UDP on loopback: the client sends ICE checks built by libnice's STUN
 * library, runs the DTLS client side with its own certificate, and exchanges SRTP/SRTCP.
 * Everything runs on one libuv loop with a deadline, so the test always ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <stun/stunagent.h>
#include <stun/usages/ice.h>

#include "common/log.h"
#include "node/rtp/rtcp.h"
#include "node/rtp/rtp.h"
#include "node/webrtc_transport.h"

#define CLIENT_UFRAG "clientufrag1"
#define DEADLINE_MS 10000

typedef struct {
  uv_loop_t loop;
  uv_timer_t deadline;
  mf_bufpool_t *pool;
  mf_dtls_cert_t *server_cert, *client_cert;
  mf_rtc_server_t *server;
  mf_webrtc_transport_t *transport;
  /* client side */
  mf_bufpool_t *client_pool;
  mf_udp_socket_t *client;
  mf_dtls_context_t *client_ctx;
  mf_dtls_t *client_dtls;
  uv_timer_t client_dtls_timer;
  mf_srtp_session_t *client_in, *client_out;
  struct sockaddr_in server_addr;
  /* observations */
  mf_transport_state_t last_state;
  int state_changes;
  mf_ice_state_t last_ice;
  mf_dtls_state_t last_dtls;
  int stun_responses_ok, stun_errors;
  int server_rtp, server_rtp_bad, server_rtcp;
  int client_rtp;
  int client_rtp_bad;
  bool timed_out;
} fx_t;

/* ---------------- server-side callbacks ---------------- */
static void on_state(void *ud, mf_webrtc_transport_t *t, mf_transport_state_t s, const char *why) {
  fx_t *f = ud;
  f->last_state = s;
  f->state_changes++;
}
static void on_ice(void *ud, mf_webrtc_transport_t *t, mf_ice_state_t s) { ((fx_t *)ud)->last_ice = s; }
static void on_dtls(void *ud, mf_webrtc_transport_t *t, mf_dtls_state_t s) { ((fx_t *)ud)->last_dtls = s; }

static void on_rtp(void *ud, mf_webrtc_transport_t *t, mf_buf_t *buf) {
  fx_t *f = ud;
  mf_rtp_packet_t p;
  if (mf_rtp_parse(buf->data, buf->len, &p) != MF_OK || p.ssrc != 0x11223344 ||
      p.payload_len != 100 || p.payload[0] != (uint8_t)p.sequence)
    f->server_rtp_bad++;
  else
    f->server_rtp++;
}

static void on_rtcp(void *ud, mf_webrtc_transport_t *t, mf_buf_t *buf) {
  fx_t *f = ud;
  mf_rtcp_iter_t it;
  mf_rtcp_header_t h;
  mf_rtcp_iter_init(&it, buf->data, buf->len);
  if (mf_rtcp_iter_next(&it, &h) == MF_OK && h.type == MF_RTCP_RR) f->server_rtcp++;
}

static const mf_webrtc_transport_callbacks_t server_cb = {
    .state = on_state, .ice_state = on_ice, .dtls_state = on_dtls, .rtp = on_rtp, .rtcp = on_rtcp};

/* ---------------- client side ---------------- */
static void client_send(fx_t *f, const uint8_t *data, size_t len) {
  assert_int_equal(mf_udp_socket_send_copy(f->client, data, len, (struct sockaddr *)&f->server_addr), MF_OK);
}

static void client_dtls_send(void *ud, const uint8_t *d, size_t n) { client_send(ud, d, n); }

static void client_rearm(fx_t *f);
static void on_client_dtls_timer(uv_timer_t *t) {
  fx_t *f = t->data;
  mf_dtls_handle_timeout(f->client_dtls);
  client_rearm(f);
}
static void client_rearm(fx_t *f) {
  long ms = mf_dtls_timeout_ms(f->client_dtls);
  if (ms >= 0)
    uv_timer_start(&f->client_dtls_timer, on_client_dtls_timer, (uint64_t)ms, 0);
  else
    uv_timer_stop(&f->client_dtls_timer);
}

static void client_dtls_state(void *ud, mf_dtls_state_t s, const char *reason) {
  fx_t *f = ud;
  if (s != MF_DTLS_STATE_CONNECTED) return;
  mf_srtp_keys_t k;
  assert_int_equal(mf_dtls_get_srtp_keys(f->client_dtls, &k), MF_OK);
  assert_int_equal(k.profile, MF_SRTP_PROFILE_AEAD_AES_128_GCM); /* preferred by both */
  assert_int_equal(mf_srtp_session_create(k.profile, k.remote_master, k.master_len, true, &f->client_in), MF_OK);
  assert_int_equal(mf_srtp_session_create(k.profile, k.local_master, k.master_len, false, &f->client_out), MF_OK);
}

static void on_client_recv(void *ud, mf_udp_datagram_t *d, unsigned n) {
  fx_t *f = ud;
  for (unsigned i = 0; i < n; i++) {
    uint8_t *data = d[i].buf->data;
    size_t len = d[i].buf->len;
    if (data[0] <= 3) {
      /* 0x0101: Binding success response; 0x0111: error response */
      if (data[0] == 0x01 && data[1] == 0x01) f->stun_responses_ok++;
      if (data[0] == 0x01 && data[1] == 0x11) f->stun_errors++;
    } else if (data[0] >= 20 && data[0] <= 63) {
      mf_dtls_handle_datagram(f->client_dtls, data, len);
      client_rearm(f);
    } else if (data[0] >= 128 && data[0] <= 191 && f->client_in && !mf_rtp_is_rtcp(data, len)) {
      mf_rtp_packet_t p;
      if (mf_srtp_unprotect_rtp(f->client_in, data, &len) == MF_OK &&
          mf_rtp_parse(data, len, &p) == MF_OK && p.ssrc == 0xabcdef01)
        f->client_rtp++;
      else
        f->client_rtp_bad++;
    }
    mf_buf_unref(d[i].buf);
  }
}

static void send_check(fx_t *f, const char *pwd, bool use_candidate) {
  StunAgent agent;
  StunMessage msg;
  uint8_t buf[512];
  char user[128];
  snprintf(user, sizeof user, "%s:%s", mf_webrtc_transport_ice_ufrag(f->transport), CLIENT_UFRAG);
  stun_agent_init(&agent, STUN_ALL_KNOWN_ATTRIBUTES, STUN_COMPATIBILITY_RFC5389,
                  STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
  size_t len = stun_usage_ice_conncheck_create(
      &agent, &msg, buf, sizeof buf, (const uint8_t *)user, strlen(user), (const uint8_t *)pwd,
      strlen(pwd), use_candidate, true, 0x6e7f00ff, 0x1122334455667788ULL, NULL,
      STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
  assert_true(len > 20);
  client_send(f, buf, len);
}

static void on_deadline(uv_timer_t *t) {
  fx_t *f = t->data;
  f->timed_out = true;
  uv_stop(&f->loop);
}

typedef bool (*cond_fn)(fx_t *f);

/* Runs the loop until cond holds or the deadline passes. */
static bool run_until(fx_t *f, cond_fn cond) {
  f->timed_out = false;
  uv_timer_start(&f->deadline, on_deadline, DEADLINE_MS, 0);
  while (!cond(f) && !f->timed_out) uv_run(&f->loop, UV_RUN_ONCE);
  uv_timer_stop(&f->deadline);
  return cond(f);
}

static bool ice_completed(fx_t *f) { return f->last_ice == MF_ICE_STATE_COMPLETED && f->stun_responses_ok > 0; }
static bool both_connected(fx_t *f) {
  return f->last_state == MF_TRANSPORT_STATE_CONNECTED && f->client_out != NULL;
}

static int setup(void **state) {
  static fx_t f;
  memset(&f, 0, sizeof f);
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  if (mf_srtp_library_init() != MF_OK) return -1;
  assert_int_equal(uv_loop_init(&f.loop), 0);
  uv_timer_init(&f.loop, &f.deadline);
  f.deadline.data = &f;
  assert_int_equal(mf_bufpool_create(1024, 2048, &f.pool), MF_OK);
  assert_int_equal(mf_bufpool_create(1024, 2048, &f.client_pool), MF_OK);
  assert_int_equal(mf_dtls_cert_generate(&f.server_cert), MF_OK);
  assert_int_equal(mf_dtls_cert_generate(&f.client_cert), MF_OK);
  mf_rtc_server_options_t o = {.listen_ip = "127.0.0.1", .port = 0, .announced_ip = "127.0.0.1",
                               .pool = f.pool, .cert = f.server_cert};
  assert_int_equal(mf_rtc_server_create(&f.loop, &o, &f.server), MF_OK);
  assert_int_equal(mf_webrtc_transport_create(f.server, &server_cb, &f, &f.transport), MF_OK);
  assert_int_equal(mf_udp_socket_open(&f.loop, f.client_pool, "127.0.0.1", 0, on_client_recv, &f, &f.client), MF_OK);
  uv_ip4_addr("127.0.0.1", mf_rtc_server_port(f.server), &f.server_addr);
  assert_int_equal(mf_dtls_context_create(f.client_cert, &f.client_ctx), MF_OK);
  static const mf_dtls_callbacks_t cb = {.send = client_dtls_send, .state = client_dtls_state};
  assert_int_equal(mf_dtls_create(f.client_ctx, &cb, &f, &f.client_dtls), MF_OK);
  uv_timer_init(&f.loop, &f.client_dtls_timer);
  f.client_dtls_timer.data = &f;
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  if (f->transport) mf_webrtc_transport_close(f->transport);
  mf_rtc_server_close(f->server, NULL, NULL);
  mf_udp_socket_close(f->client, NULL, NULL);
  uv_close((uv_handle_t *)&f->deadline, NULL);
  uv_close((uv_handle_t *)&f->client_dtls_timer, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  mf_srtp_session_free(f->client_in);
  mf_srtp_session_free(f->client_out);
  mf_dtls_free(f->client_dtls);
  mf_dtls_context_free(f->client_ctx);
  mf_dtls_cert_free(f->server_cert);
  mf_dtls_cert_free(f->client_cert);
  mf_bufpool_stats_t s;
  mf_bufpool_get_stats(f->pool, &s);
  assert_int_equal(s.in_use, 0);
  mf_bufpool_destroy(f->pool);
  mf_bufpool_destroy(f->client_pool);
  return 0;
}

static void connect_client(fx_t *f) {
  /* the application forwards the client's dtlsParameters: role client, its fingerprint */
  json_t *dtls = json_pack("{s:s, s:[{s:s, s:s}]}", "role", "client", "fingerprints", "algorithm",
                           "sha-256", "value", mf_dtls_cert_fingerprint(f->client_cert));
  char err[256];
  assert_int_equal(mf_webrtc_transport_connect_json(f->transport, dtls, err, sizeof err), MF_OK);
  json_decref(dtls);
  assert_int_equal(f->last_state, MF_TRANSPORT_STATE_NEW); /* no ICE yet */
  send_check(f, mf_webrtc_transport_ice_pwd(f->transport), true);
  assert_true(run_until(f, ice_completed));
  assert_int_equal(mf_dtls_start(f->client_dtls, MF_DTLS_ROLE_CLIENT, "sha-256",
                                 mf_dtls_cert_fingerprint(f->server_cert)), MF_OK);
  client_rearm(f);
  assert_true(run_until(f, both_connected));
}

static bool got_all_rtp(fx_t *f) { return f->server_rtp + f->server_rtp_bad >= 50 && f->server_rtcp >= 1; }
static bool client_got_rtp(fx_t *f) { return f->client_rtp + f->client_rtp_bad >= 20; }

static void test_ice_dtls_srtp_both_directions(void **state) {
  fx_t *f = *state;
  connect_client(f);
  assert_int_equal(f->last_dtls, MF_DTLS_STATE_CONNECTED);

  /* client -> SFU: 50 SRTP packets and one SRTCP receiver report */
  for (int i = 0; i < 50; i++) {
    uint8_t pkt[256];
    uint8_t payload[100];
    memset(payload, (uint8_t)(1000 + i), sizeof payload);
    mf_rtp_header_t h = {.payload_type = 96, .sequence = (uint16_t)(1000 + i), .timestamp = 90 * (uint32_t)i, .ssrc = 0x11223344};
    size_t len = 0;
    assert_int_equal(mf_rtp_write_packet(pkt, sizeof pkt, &h, payload, sizeof payload, 0, &len), MF_OK);
    assert_int_equal(mf_srtp_protect_rtp(f->client_out, pkt, &len, sizeof pkt), MF_OK);
    client_send(f, pkt, len);
  }
  uint8_t rr[128];
  size_t rr_len = 0;
  mf_rtcp_rr_t report = {.ssrc = 0x11223344, .report_count = 0};
  assert_int_equal(mf_rtcp_write_rr(rr, sizeof rr, &report, &rr_len), MF_OK);
  assert_int_equal(mf_srtp_protect_rtcp(f->client_out, rr, &rr_len, sizeof rr), MF_OK);
  client_send(f, rr, rr_len);
  assert_true(run_until(f, got_all_rtp));
  assert_int_equal(f->server_rtp, 50);
  assert_int_equal(f->server_rtp_bad, 0);
  assert_int_equal(f->server_rtcp, 1);

  /* SFU -> client */
  for (int i = 0; i < 20; i++) {
    mf_buf_t *b = mf_bufpool_get(f->pool);
    mf_rtp_header_t h = {.payload_type = 100, .sequence = (uint16_t)i, .ssrc = 0xabcdef01};
    uint8_t payload[50] = {0};
    size_t len = 0;
    assert_int_equal(mf_rtp_write_packet(b->data, b->cap, &h, payload, sizeof payload, 0, &len), MF_OK);
    b->len = (uint32_t)len;
    assert_int_equal(mf_webrtc_transport_send_rtp(f->transport, b), MF_OK);
    mf_buf_unref(b);
  }
  assert_true(run_until(f, client_got_rtp));
  assert_int_equal(f->client_rtp, 20);

  mf_webrtc_transport_stats_t st;
  mf_webrtc_transport_get_stats(f->transport, &st);
  assert_int_equal(st.rtp_packets_received, 50);
  assert_int_equal(st.rtcp_packets_received, 1);
  assert_int_equal(st.rtp_packets_sent, 20);
  assert_true(st.has_selected_tuple);
  assert_int_equal(st.srtp_profile, MF_SRTP_PROFILE_AEAD_AES_128_GCM);
  json_t *js = mf_webrtc_transport_stats_json(f->transport);
  json_t *o = json_array_get(js, 0);
  assert_string_equal(json_string_value(json_object_get(o, "type")), "webrtc-transport");
  assert_string_equal(json_string_value(json_object_get(o, "iceState")), "completed");
  assert_string_equal(json_string_value(json_object_get(o, "dtlsState")), "connected");
  json_t *tuple = json_object_get(o, "iceSelectedTuple");
  assert_string_equal(json_string_value(json_object_get(tuple, "remoteIp")), "127.0.0.1");
  assert_int_equal(json_integer_value(json_object_get(tuple, "remotePort")), mf_udp_socket_port(f->client));
  json_decref(js);

  /* a replayed SRTP packet is refused and counted, not delivered twice */
  uint8_t pkt[256];
  mf_rtp_header_t h = {.payload_type = 96, .sequence = 5000, .ssrc = 0x11223344};
  uint8_t payload[100];
  memset(payload, (uint8_t)5000, sizeof payload);
  size_t len = 0;
  assert_int_equal(mf_rtp_write_packet(pkt, sizeof pkt, &h, payload, sizeof payload, 0, &len), MF_OK);
  assert_int_equal(mf_srtp_protect_rtp(f->client_out, pkt, &len, sizeof pkt), MF_OK);
  client_send(f, pkt, len);
  client_send(f, pkt, len);
  for (int i = 0; i < 50; i++) uv_run(&f->loop, UV_RUN_NOWAIT);
  mf_webrtc_transport_get_stats(f->transport, &st);
  assert_int_equal(st.rtp_packets_received, 51);
  assert_int_equal(st.srtp_unprotect_failures, 1);
}

static bool check_rejected(fx_t *f) {
  mf_webrtc_transport_stats_t st;
  mf_webrtc_transport_get_stats(f->transport, &st);
  return st.stun_rejected > 0;
}

/* A check with a wrong password is counted and dropped: no answer at all (no 401). */
static void test_wrong_ice_password_is_rejected(void **state) {
  fx_t *f = *state;
  send_check(f, "this-is-not-the-right-password!!", true);
  assert_true(run_until(f, check_rejected));
  for (int i = 0; i < 50; i++) uv_run(&f->loop, UV_RUN_NOWAIT); /* an answer would be here */
  assert_int_equal(f->stun_errors, 0);
  assert_int_equal(f->stun_responses_ok, 0);
  assert_int_equal(f->last_state, MF_TRANSPORT_STATE_NEW);
  mf_webrtc_transport_stats_t st;
  mf_webrtc_transport_get_stats(f->transport, &st);
  assert_int_equal(st.stun_rejected, 1);
  assert_false(st.has_selected_tuple);
  /* media from a source no valid check came from is dropped by the server's demux */
  uint8_t rtp[40] = {0x80, 96};
  client_send(f, rtp, sizeof rtp);
  for (int i = 0; i < 50; i++) uv_run(&f->loop, UV_RUN_NOWAIT);
  mf_rtc_server_stats_t ss;
  mf_rtc_server_get_stats(f->server, &ss);
  assert_int_equal(ss.dropped_unknown_tuple, 1);
}

static bool transport_failed(fx_t *f) { return f->last_state == MF_TRANSPORT_STATE_FAILED; }

static void test_fingerprint_mismatch_fails_transport(void **state) {
  fx_t *f = *state;
  /* connect() with a fingerprint that is not the client's certificate's */
  mf_dtls_cert_t *other;
  assert_int_equal(mf_dtls_cert_generate(&other), MF_OK);
  assert_int_equal(mf_webrtc_transport_connect(f->transport, MF_DTLS_ROLE_CLIENT, "sha-256",
                                               mf_dtls_cert_fingerprint(other)), MF_OK);
  mf_dtls_cert_free(other);
  send_check(f, mf_webrtc_transport_ice_pwd(f->transport), true);
  assert_true(run_until(f, ice_completed));
  assert_int_equal(mf_dtls_start(f->client_dtls, MF_DTLS_ROLE_CLIENT, "sha-256",
                                 mf_dtls_cert_fingerprint(f->server_cert)), MF_OK);
  client_rearm(f);
  assert_true(run_until(f, transport_failed));
  assert_int_equal(f->last_dtls, MF_DTLS_STATE_FAILED);
  /* a failed transport refuses media and a second connect */
  mf_buf_t *b = mf_bufpool_get(f->pool);
  b->len = 20;
  memset(b->data, 0, 20);
  b->data[0] = 0x80;
  assert_int_equal(mf_webrtc_transport_send_rtp(f->transport, b), MF_ERR_STATE);
  mf_buf_unref(b);
  assert_int_equal(mf_webrtc_transport_connect(f->transport, MF_DTLS_ROLE_CLIENT, "sha-256",
                                               mf_dtls_cert_fingerprint(f->client_cert)), MF_ERR_STATE);
}

static void test_consent_loss_disconnects_then_closes(void **state) {
  fx_t *f = *state;
  connect_client(f);
  uint64_t now = uv_now(&f->loop);
  mf_rtc_server_tick(f->server, now + 5000);
  assert_int_equal(f->last_state, MF_TRANSPORT_STATE_CONNECTED);
  mf_rtc_server_tick(f->server, now + MF_ICE_CONSENT_TIMEOUT_MS + 1000);
  assert_int_equal(f->last_state, MF_TRANSPORT_STATE_DISCONNECTED);
  assert_int_equal(f->last_ice, MF_ICE_STATE_DISCONNECTED);
  mf_rtc_server_tick(f->server, now + MF_ICE_CONSENT_TIMEOUT_MS + 1000 + MF_WEBRTC_DISCONNECTED_CLOSE_MS);
  assert_int_equal(f->last_state, MF_TRANSPORT_STATE_CLOSED);
  mf_rtc_server_stats_t ss;
  mf_rtc_server_get_stats(f->server, &ss);
  assert_int_equal(ss.transports, 0); /* unregistered: its ufrag no longer routes */
}

static void test_parameters_and_connect_errors(void **state) {
  fx_t *f = *state;
  json_t *p = mf_webrtc_transport_parameters_json(f->transport);
  assert_string_equal(json_string_value(json_object_get(p, "id")), mf_webrtc_transport_id(f->transport));
  json_t *ice = json_object_get(p, "iceParameters");
  assert_string_equal(json_string_value(json_object_get(ice, "usernameFragment")), mf_webrtc_transport_ice_ufrag(f->transport));
  assert_true(json_is_true(json_object_get(ice, "iceLite")));
  json_t *cand = json_array_get(json_object_get(p, "iceCandidates"), 0);
  assert_string_equal(json_string_value(json_object_get(cand, "ip")), "127.0.0.1");
  assert_string_equal(json_string_value(json_object_get(cand, "protocol")), "udp");
  assert_string_equal(json_string_value(json_object_get(cand, "type")), "host");
  assert_int_equal(json_integer_value(json_object_get(cand, "port")), mf_rtc_server_port(f->server));
  json_t *fp = json_array_get(json_object_get(json_object_get(p, "dtlsParameters"), "fingerprints"), 0);
  assert_string_equal(json_string_value(json_object_get(fp, "algorithm")), "sha-256");
  assert_string_equal(json_string_value(json_object_get(fp, "value")), mf_dtls_cert_fingerprint(f->server_cert));
  json_decref(p);

  struct {
    const char *json;
    const char *expect;
  } bad[] = {
      {"[]", "dtlsParameters must be an object"},
      {"{\"role\":\"boss\",\"fingerprints\":[{\"algorithm\":\"sha-256\",\"value\":\"AA\"}]}", "role must be auto, client or server"},
      {"{\"role\":7,\"fingerprints\":[]}", "role must be a string"},
      {"{\"fingerprints\":[]}", "non-empty array"},
      {"{\"fingerprints\":[{\"algorithm\":\"md5\",\"value\":\"AA:BB\"}]}", "no fingerprint with a supported algorithm"},
      {"{\"fingerprints\":[{\"algorithm\":\"sha-256\",\"value\":\"AA:BB\"}]}", "no fingerprint with a supported algorithm"},
      {"{\"fingerprints\":[{\"algorithm\":\"sha-256\"}]}", "needs string algorithm and value"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_t *j = json_loads(bad[i].json, 0, NULL);
    assert_non_null(j);
    char err[256] = "";
    assert_int_equal(mf_webrtc_transport_connect_json(f->transport, j, err, sizeof err), MF_ERR_INVALID_ARG);
    if (!strstr(err, bad[i].expect)) {
      print_error("case %zu: '%s'\n", i, err);
      fail();
    }
    json_decref(j);
  }
  /* none of the refused calls counted as connect(): a good one still works, once */
  assert_int_equal(mf_webrtc_transport_connect(f->transport, MF_DTLS_ROLE_AUTO, "sha-256",
                                               mf_dtls_cert_fingerprint(f->client_cert)), MF_OK);
  assert_int_equal(mf_webrtc_transport_connect(f->transport, MF_DTLS_ROLE_AUTO, "sha-256",
                                               mf_dtls_cert_fingerprint(f->client_cert)), MF_ERR_STATE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_ice_dtls_srtp_both_directions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_ice_password_is_rejected, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fingerprint_mismatch_fails_transport, setup, teardown),
      cmocka_unit_test_setup_teardown(test_consent_loss_disconnects_then_closes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_parameters_and_connect_errors, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
