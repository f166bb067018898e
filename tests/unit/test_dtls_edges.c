/* DTLS API misuse beyond test_dtls.c: every entry point given NULL, an empty datagram, or
 * called in a state where it makes no sense (keys / application data before CONNECTED,
 * start twice, a second fingerprint, an AUTO role), out-of-range enum names, and closing
 * an association that never started (no close_notify, state CLOSED). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/dtls.h"

typedef struct {
  int sent;
  int states;
  mf_dtls_state_t last;
} peer_t;

static void on_send(void *ud, const uint8_t *data, size_t len) {
  (void)data;
  (void)len;
  ((peer_t *)ud)->sent++;
}

static void on_state(void *ud, mf_dtls_state_t s, const char *reason) {
  (void)reason;
  peer_t *p = ud;
  p->states++;
  p->last = s;
}

static void test_misuse(void **state) {
  (void)state;
  mf_dtls_cert_t *cert;
  assert_int_equal(mf_dtls_cert_generate(NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_cert_generate(&cert), MF_OK);
  char fp[200]; /* sha-512: 64 bytes as "AB:" triples */
  assert_int_equal(mf_dtls_cert_fingerprint_for(NULL, "sha-256", fp, sizeof fp), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_cert_fingerprint_for(cert, "sha-256", NULL, sizeof fp), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_cert_fingerprint_for(cert, "sha-999", fp, sizeof fp), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_cert_fingerprint_for(cert, "sha-512", fp, sizeof fp), MF_OK);
  assert_int_equal(mf_dtls_cert_fingerprint_for(cert, "sha-512", fp, 191), MF_ERR_LIMIT);

  mf_dtls_context_t *ctx;
  assert_int_equal(mf_dtls_context_create(NULL, &ctx), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_context_create(cert, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_context_create(cert, &ctx), MF_OK);

  peer_t peer = {0};
  mf_dtls_callbacks_t cb = {.send = on_send, .state = on_state};
  mf_dtls_callbacks_t no_send = {.state = on_state};
  mf_dtls_t *d;
  assert_int_equal(mf_dtls_create(NULL, &cb, &peer, &d), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_create(ctx, NULL, &peer, &d), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_create(ctx, &no_send, &peer, &d), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_create(ctx, &cb, &peer, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_create(ctx, &cb, &peer, &d), MF_OK);
  assert_int_equal(mf_dtls_state(d), MF_DTLS_STATE_NEW);
  assert_int_equal(mf_dtls_local_role(d), MF_DTLS_ROLE_AUTO);

  static const uint8_t junk[] = {22, 254, 253, 0};
  mf_srtp_keys_t keys;
  assert_int_equal(mf_dtls_start(NULL, MF_DTLS_ROLE_CLIENT, NULL, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_start(d, MF_DTLS_ROLE_AUTO, NULL, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_set_remote_fingerprint(NULL, "sha-256", "AA"), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_handle_datagram(NULL, junk, sizeof junk), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_handle_datagram(d, NULL, 4), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_handle_datagram(d, junk, 0), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_timeout_ms(NULL), -1);
  assert_int_equal(mf_dtls_timeout_ms(d), -1); /* nothing to retransmit before start */
  mf_dtls_handle_timeout(NULL);
  mf_dtls_handle_timeout(d);
  assert_int_equal(mf_dtls_get_srtp_keys(NULL, &keys), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_get_srtp_keys(d, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_get_srtp_keys(d, &keys), MF_ERR_STATE);
  assert_int_equal(mf_dtls_send_application_data(NULL, junk, 4), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_send_application_data(d, NULL, 4), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_send_application_data(d, junk, 0), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_send_application_data(d, junk, 4), MF_ERR_STATE);
  assert_int_equal(peer.sent, 0);

  /* one fingerprint, once */
  const char *good = mf_dtls_cert_fingerprint(cert);
  assert_int_equal(mf_dtls_set_remote_fingerprint(d, "sha-256", "AA:BB"), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_set_remote_fingerprint(d, "sha-1", good), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_set_remote_fingerprint(d, "sha-256", NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dtls_set_remote_fingerprint(d, "sha-256", good), MF_OK);
  assert_int_equal(mf_dtls_set_remote_fingerprint(d, "sha-256", good), MF_ERR_STATE);
  /* a client starts by sending its hello; a second start is refused */
  assert_int_equal(mf_dtls_start(d, MF_DTLS_ROLE_CLIENT, NULL, NULL), MF_OK);
  assert_true(peer.sent >= 1);
  assert_int_equal(mf_dtls_state(d), MF_DTLS_STATE_CONNECTING);
  assert_int_equal(mf_dtls_local_role(d), MF_DTLS_ROLE_CLIENT);
  assert_true(mf_dtls_timeout_ms(d) >= 0);
  assert_int_equal(mf_dtls_start(d, MF_DTLS_ROLE_CLIENT, NULL, NULL), MF_ERR_STATE);
  assert_int_equal(mf_dtls_get_srtp_keys(d, &keys), MF_ERR_STATE);
  assert_int_equal(mf_dtls_send_application_data(d, junk, 4), MF_ERR_STATE);
  /* closing before the handshake finished: no close_notify, CLOSED; then nothing more */
  int sent = peer.sent;
  mf_dtls_close(d);
  assert_int_equal(mf_dtls_state(d), MF_DTLS_STATE_CLOSED);
  assert_int_equal(peer.last, MF_DTLS_STATE_CLOSED);
  assert_int_equal(peer.sent, sent);
  mf_dtls_close(d);
  mf_dtls_close(NULL);
  mf_dtls_handle_timeout(d);
  assert_int_equal(mf_dtls_set_remote_fingerprint(d, "sha-256", good), MF_ERR_STATE);
  assert_int_equal(peer.sent, sent);
  mf_dtls_free(d);
  mf_dtls_free(NULL);

  /* a NEW association closed: CLOSED without a word on the wire */
  peer_t quiet = {0};
  assert_int_equal(mf_dtls_create(ctx, &cb, &quiet, &d), MF_OK);
  mf_dtls_close(d);
  assert_int_equal(mf_dtls_state(d), MF_DTLS_STATE_CLOSED);
  assert_int_equal(quiet.sent, 0);
  mf_dtls_free(d);

  mf_dtls_context_free(ctx);
  mf_dtls_context_free(NULL);
  mf_dtls_cert_free(cert);
  mf_dtls_cert_free(NULL);
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(mf_dtls_role_name(MF_DTLS_ROLE_AUTO), "auto");
  assert_string_equal(mf_dtls_role_name((mf_dtls_role_t)9), "unknown");
  assert_string_equal(mf_dtls_state_name(MF_DTLS_STATE_FAILED), "failed");
  assert_string_equal(mf_dtls_state_name((mf_dtls_state_t)9), "unknown");
  assert_int_equal(mf_dtls_local_role_for_remote(MF_DTLS_ROLE_CLIENT), MF_DTLS_ROLE_SERVER);
  assert_int_equal(mf_dtls_local_role_for_remote(MF_DTLS_ROLE_SERVER), MF_DTLS_ROLE_CLIENT);
  assert_int_equal(mf_dtls_local_role_for_remote(MF_DTLS_ROLE_AUTO), MF_DTLS_ROLE_CLIENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_misuse),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
