/* WebRtcTransport / PipeTransport argument checks on a real RTC server, no peer: connect()'s
 * dtlsParameters table (role, fingerprints, unsupported algorithms skipped for a later good
 * one, a second connect), connect on a pipe, and connect_pipe's address and SRTP agreement
 * checks (on a non-pipe, twice, an address another pipe already has, mismatched profiles or
 * keys); sending before connected is refused. The handshakes are in
 * tests/integration/test_webrtc_transport.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "common/log.h"
#include "node/rtc_server.h"
#include "node/webrtc_transport.h"

typedef struct {
  uv_loop_t loop;
  mf_bufpool_t *pool;
  mf_dtls_cert_t *cert;
  mf_rtc_server_t *server;
} fx_t;

static int setup(void **state) {
  static fx_t f;
  memset(&f, 0, sizeof f);
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  if (mf_srtp_library_init() != MF_OK || uv_loop_init(&f.loop) != 0) return -1;
  if (mf_bufpool_create(64, 2048, &f.pool) || mf_dtls_cert_generate(&f.cert)) return -1;
  mf_rtc_server_options_t o = {.listen_ip = "127.0.0.1", .announced_ip = "127.0.0.1",
                               .pool = f.pool, .cert = f.cert};
  if (mf_rtc_server_create(&f.loop, &o, &f.server)) return -1;
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  mf_rtc_server_close(f->server, NULL, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&f->loop) != 0) return -1;
  mf_dtls_cert_free(f->cert);
  mf_bufpool_destroy(f->pool);
  return 0;
}

static mf_err_t connect_text(mf_webrtc_transport_t *t, const char *text, char *err, size_t errsz) {
  json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
  assert_non_null(j);
  mf_err_t e = mf_webrtc_transport_connect_json(t, j, err, errsz);
  json_decref(j);
  return e;
}

static void test_connect_parameters(void **state) {
  fx_t *f = *state;
  /* a well-formed sha-256 value (any certificate's: the peer's is not checked here) */
  const char *fp = mf_dtls_cert_fingerprint(f->cert);
  char good[256], later[512];
  snprintf(good, sizeof good, "{\"role\":\"client\",\"fingerprints\":[{\"algorithm\":\"sha-256\",\"value\":\"%s\"}]}", fp);
  snprintf(later, sizeof later,
           "{\"fingerprints\":[{\"algorithm\":\"md5\",\"value\":\"AA\"},{\"algorithm\":\"sha-256\",\"value\":\"AA:BB\"},"
           "{\"algorithm\":\"sha-256\",\"value\":\"%s\"}]}", fp);
  static const struct {
    const char *json;
    mf_err_t want;
    const char *msg;
  } bad[] = {
      {"[]", MF_ERR_INVALID_ARG, "must be an object"},
      {"{\"role\":1,\"fingerprints\":[]}", MF_ERR_INVALID_ARG, "role must be a string"},
      {"{\"role\":\"both\",\"fingerprints\":[]}", MF_ERR_INVALID_ARG, "auto, client or server"},
      {"{\"role\":\"auto\"}", MF_ERR_INVALID_ARG, "non-empty array"},
      {"{\"role\":\"server\",\"fingerprints\":{}}", MF_ERR_INVALID_ARG, "non-empty array"},
      {"{\"fingerprints\":[]}", MF_ERR_INVALID_ARG, "non-empty array"},
      {"{\"fingerprints\":[{\"algorithm\":\"sha-256\"}]}", MF_ERR_INVALID_ARG, "string algorithm and value"},
      {"{\"fingerprints\":[{\"value\":\"AA\"}]}", MF_ERR_INVALID_ARG, "string algorithm and value"},
      {"{\"fingerprints\":[{\"algorithm\":\"md5\",\"value\":\"AA\"}]}", MF_ERR_INVALID_ARG, "no fingerprint"},
      {"{\"fingerprints\":[{\"algorithm\":\"sha-256\",\"value\":\"AA:BB\"}]}", MF_ERR_INVALID_ARG, "no fingerprint"},
  };
  mf_webrtc_transport_t *t;
  assert_int_equal(mf_webrtc_transport_create(f->server, NULL, NULL, &t), MF_OK);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char err[200] = "";
    mf_err_t e = connect_text(t, bad[i].json, err, sizeof err);
    if (e != bad[i].want || !strstr(err, bad[i].msg)) print_error("case %zu: %d %s\n", i, e, err);
    assert_int_equal(e, bad[i].want);
    assert_non_null(strstr(err, bad[i].msg));
    assert_int_equal(connect_text(t, bad[i].json, NULL, 0), bad[i].want);
  }
  assert_int_equal(mf_webrtc_transport_state(t), MF_TRANSPORT_STATE_NEW);
  /* the direct call: missing or oversized values */
  assert_int_equal(mf_webrtc_transport_connect(t, MF_DTLS_ROLE_CLIENT, NULL, fp), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_webrtc_transport_connect(t, MF_DTLS_ROLE_CLIENT, "sha-256", NULL), MF_ERR_INVALID_ARG);
  char huge[400];
  memset(huge, 'A', sizeof huge - 1);
  huge[sizeof huge - 1] = '\0';
  assert_int_equal(mf_webrtc_transport_connect(t, MF_DTLS_ROLE_CLIENT, "sha-256", huge), MF_ERR_INVALID_ARG);

  char err[200] = "";
  assert_int_equal(connect_text(t, good, err, sizeof err), MF_OK);
  assert_int_equal(connect_text(t, good, err, sizeof err), MF_ERR_STATE);
  assert_non_null(strstr(err, "already called"));
  assert_int_equal(connect_text(t, good, NULL, 0), MF_ERR_STATE);
  mf_webrtc_transport_close(t);

  /* a bad fingerprint is skipped for a later good one */
  assert_int_equal(mf_webrtc_transport_create(f->server, NULL, NULL, &t), MF_OK);
  assert_int_equal(connect_text(t, later, err, sizeof err), MF_OK);
  /* nothing is sent before ICE has a tuple */
  mf_buf_t *b = mf_bufpool_get(f->pool);
  b->len = 12;
  memset(b->data, 0, 12);
  b->data[0] = 0x80;
  assert_int_not_equal(mf_webrtc_transport_send_rtp(t, b), MF_OK);
  assert_int_not_equal(mf_webrtc_transport_send_rtcp(t, b), MF_OK);
  mf_buf_unref(b);
  mf_webrtc_transport_close(t);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_string_equal(mf_transport_state_name((mf_transport_state_t)42), "?");
}

static struct sockaddr_in loopback(uint16_t port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  return a;
}

static void test_connect_pipe_checks(void **state) {
  fx_t *f = *state;
  char err[200] = "";
  mf_webrtc_transport_t *webrtc, *plain_pipe, *srtp_pipe, *other;
  assert_int_equal(mf_webrtc_transport_create(f->server, NULL, NULL, &webrtc), MF_OK);
  assert_int_equal(mf_webrtc_transport_create_pipe(f->server, false, NULL, NULL, &plain_pipe), MF_OK);
  assert_int_equal(mf_webrtc_transport_create_pipe(f->server, true, NULL, NULL, &srtp_pipe), MF_OK);
  assert_int_equal(mf_webrtc_transport_create_pipe(f->server, false, NULL, NULL, &other), MF_OK);
  assert_false(mf_webrtc_transport_is_pipe(webrtc));
  assert_true(mf_webrtc_transport_is_pipe(srtp_pipe));
  struct sockaddr_in a = loopback(40001), b = loopback(40002);

  assert_int_equal(mf_webrtc_transport_connect_pipe(webrtc, (struct sockaddr *)&a, NULL, NULL, err, sizeof err),
                   MF_ERR_STATE);
  assert_non_null(strstr(err, "not a pipe transport"));
  /* a pipe takes no DTLS connect() */
  assert_int_equal(mf_webrtc_transport_connect(plain_pipe, MF_DTLS_ROLE_CLIENT, "sha-256",
                                               mf_dtls_cert_fingerprint(f->cert)), MF_ERR_STATE);
  assert_int_equal(mf_webrtc_transport_connect_pipe(plain_pipe, NULL, NULL, NULL, err, sizeof err),
                   MF_ERR_INVALID_ARG);
  struct sockaddr_un unix_addr = {.sun_family = AF_UNIX};
  assert_int_equal(mf_webrtc_transport_connect_pipe(plain_pipe, (struct sockaddr *)&unix_addr, NULL, NULL,
                                                    err, sizeof err), MF_ERR_INVALID_ARG);
  assert_non_null(strstr(err, "IPv4 or IPv6"));

  /* SRTP must be on at both ends or at neither, with the same profile and key size */
  mf_pipe_srtp_t key, other_profile, short_key, off = {.enabled = false};
  assert_int_equal(mf_pipe_srtp_generate(&key), MF_OK);
  assert_true(key.enabled);
  other_profile = key;
  other_profile.profile = MF_SRTP_PROFILE_AES128_CM_SHA1_80;
  short_key = key;
  short_key.key_len = key.key_len - 1;
  assert_int_equal(mf_webrtc_transport_connect_pipe(plain_pipe, (struct sockaddr *)&a, &key, NULL, err, sizeof err),
                   MF_ERR_INVALID_ARG);
  assert_non_null(strstr(err, "SRTP is off here and on on the peer"));
  assert_int_equal(mf_webrtc_transport_connect_pipe(srtp_pipe, (struct sockaddr *)&a, NULL, NULL, err, sizeof err),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_webrtc_transport_connect_pipe(srtp_pipe, (struct sockaddr *)&a, &off, NULL, err, sizeof err),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_webrtc_transport_connect_pipe(srtp_pipe, (struct sockaddr *)&a, &other_profile, NULL, err,
                                                    sizeof err), MF_ERR_INVALID_ARG);
  assert_non_null(strstr(err, "unsupported SRTP parameters"));
  assert_int_equal(mf_webrtc_transport_connect_pipe(srtp_pipe, (struct sockaddr *)&a, &short_key, NULL, err,
                                                    sizeof err), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_webrtc_transport_connect_pipe(srtp_pipe, (struct sockaddr *)&a, &key, &off, err, sizeof err),
                   MF_ERR_INVALID_ARG);
  assert_non_null(strstr(err, "local SRTP"));
  assert_int_equal(mf_webrtc_transport_connect_pipe(srtp_pipe, (struct sockaddr *)&a, &key, &other_profile, err,
                                                    sizeof err), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_webrtc_transport_connect_pipe(srtp_pipe, (struct sockaddr *)&a, &key, &short_key, err,
                                                    sizeof err), MF_ERR_INVALID_ARG);
  /* the peer chose this side's key too: it is the one this side now sends with */
  mf_pipe_srtp_t mine;
  assert_int_equal(mf_pipe_srtp_generate(&mine), MF_OK);
  assert_int_equal(mf_webrtc_transport_connect_pipe(srtp_pipe, (struct sockaddr *)&a, &key, &mine, err, sizeof err),
                   MF_OK);
  mf_pipe_srtp_t now;
  mf_webrtc_transport_pipe_local_srtp(srtp_pipe, &now);
  assert_memory_equal(now.key, mine.key, mine.key_len);
  assert_int_equal(mf_webrtc_transport_state(srtp_pipe), MF_TRANSPORT_STATE_CONNECTED);
  assert_int_equal(mf_webrtc_transport_connect_pipe(srtp_pipe, (struct sockaddr *)&b, &key, NULL, err, sizeof err),
                   MF_ERR_STATE);
  assert_non_null(strstr(err, "already connected"));

  /* plain pipes: one address per transport on this worker */
  assert_int_equal(mf_webrtc_transport_connect_pipe(plain_pipe, (struct sockaddr *)&b, NULL, NULL, err, sizeof err),
                   MF_OK);
  assert_int_equal(mf_webrtc_transport_connect_pipe(other, (struct sockaddr *)&b, &off, NULL, err, sizeof err),
                   MF_ERR_EXISTS);
  assert_non_null(strstr(err, "already talks to that address"));
  mf_webrtc_transport_stats_t st;
  mf_webrtc_transport_get_stats(plain_pipe, &st);
  assert_true(st.has_selected_tuple);
  json_t *js = mf_webrtc_transport_stats_json(srtp_pipe);
  assert_string_equal(json_string_value(json_object_get(json_array_get(js, 0), "type")), "pipe-transport");
  json_decref(js);

  mf_webrtc_transport_close(webrtc);
  mf_webrtc_transport_close(plain_pipe);
  mf_webrtc_transport_close(srtp_pipe);
  mf_webrtc_transport_close(other);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_connect_parameters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connect_pipe_checks, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
