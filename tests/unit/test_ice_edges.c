/* ICE-lite helpers beyond test_ice.c: tuple equality for each address family and each field
 * that differs, NULL and too-small arguments, ICE restart (old ufrag kept, bad credentials
 * refused, refused after close), and the accessors on NULL / fresh agents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "node/ice.h"

static struct sockaddr_in v4(const char *ip, uint16_t port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port, uint32_t scope) {
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_scope_id = scope};
  inet_pton(AF_INET6, ip, &a.sin6_addr);
  return a;
}

#define SA(x) ((const struct sockaddr *)&(x))

static void test_tuple_equality(void **state) {
  (void)state;
  struct sockaddr_in a = v4("10.0.0.1", 5000), a2 = v4("10.0.0.1", 5000), port = v4("10.0.0.1", 5001),
                     addr = v4("10.0.0.2", 5000);
  struct sockaddr_in6 b = v6("fe80::1", 5000, 2), b2 = v6("fe80::1", 5000, 2), bport = v6("fe80::1", 5001, 2),
                      bscope = v6("fe80::1", 5000, 3), baddr = v6("fe80::2", 5000, 2);
  struct sockaddr_un u1 = {.sun_family = AF_UNIX}, u2 = {.sun_family = AF_UNIX};
  assert_true(mf_ice_tuple_equal(SA(a), SA(a2)));
  assert_false(mf_ice_tuple_equal(SA(a), SA(port)));
  assert_false(mf_ice_tuple_equal(SA(a), SA(addr)));
  assert_true(mf_ice_tuple_equal(SA(b), SA(b2)));
  assert_false(mf_ice_tuple_equal(SA(b), SA(bport)));
  assert_false(mf_ice_tuple_equal(SA(b), SA(bscope)));
  assert_false(mf_ice_tuple_equal(SA(b), SA(baddr)));
  assert_false(mf_ice_tuple_equal(SA(a), SA(b)));
  assert_false(mf_ice_tuple_equal(SA(u1), SA(u2))); /* not an IP tuple */
  assert_false(mf_ice_tuple_equal(NULL, SA(a)));
  assert_false(mf_ice_tuple_equal(SA(a), NULL));
}

static void test_arguments_and_restart(void **state) {
  (void)state;
  char ufrag[MF_ICE_UFRAG_LEN + 1], pwd[MF_ICE_PWD_LEN + 1];
  assert_int_equal(mf_ice_generate_credentials(ufrag, pwd), MF_OK);
  mf_ice_t *ice;
  assert_int_equal(mf_ice_create(ufrag, pwd, &ice), MF_OK);
  struct sockaddr_in from = v4("127.0.0.1", 40000);
  uint8_t req[64] = {0}, resp[MF_ICE_RESPONSE_MAX];
  size_t resp_len = sizeof resp;
  mf_ice_result_t res;
  assert_int_equal(mf_ice_handle_request(NULL, req, 20, SA(from), 0, resp, &resp_len, &res), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_ice_handle_request(ice, NULL, 20, SA(from), 0, resp, &resp_len, &res), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_ice_handle_request(ice, req, 20, NULL, 0, resp, &resp_len, &res), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_ice_handle_request(ice, req, 20, SA(from), 0, NULL, &resp_len, &res), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_ice_handle_request(ice, req, 20, SA(from), 0, resp, NULL, &res), MF_ERR_INVALID_ARG);
  resp_len = MF_ICE_RESPONSE_MAX - 1;
  assert_int_equal(mf_ice_handle_request(ice, req, 20, SA(from), 0, resp, &resp_len, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(resp_len, 0);

  /* accessors */
  assert_int_equal(mf_ice_state(NULL), MF_ICE_STATE_CLOSED);
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_NEW);
  assert_null(mf_ice_selected_tuple(NULL));
  assert_null(mf_ice_selected_tuple(ice));
  assert_false(mf_ice_has_tuple(NULL, SA(from)));
  assert_false(mf_ice_has_tuple(ice, NULL));
  assert_false(mf_ice_has_tuple(ice, SA(from)));
  assert_null(mf_ice_local_ufrag(NULL));
  assert_null(mf_ice_local_pwd(NULL));
  assert_string_equal(mf_ice_local_ufrag(ice), ufrag);
  assert_string_equal(mf_ice_local_pwd(ice), pwd);
  assert_null(mf_ice_old_ufrag(NULL));
  assert_null(mf_ice_old_ufrag(ice));
  assert_false(mf_ice_tick(NULL, 100000));
  assert_false(mf_ice_tick(ice, 100000)); /* not connected: no consent to expire */

  /* restart: the old ufrag is remembered; bad credentials change nothing */
  char u2[MF_ICE_UFRAG_LEN + 1], p2[MF_ICE_PWD_LEN + 1];
  assert_int_equal(mf_ice_generate_credentials(u2, p2), MF_OK);
  assert_int_equal(mf_ice_restart(NULL, u2, p2), MF_ERR_INVALID_ARG);
  assert_int_not_equal(mf_ice_restart(ice, "", p2), MF_OK);
  assert_int_not_equal(mf_ice_restart(ice, u2, "short"), MF_OK);
  assert_string_equal(mf_ice_local_ufrag(ice), ufrag);
  assert_null(mf_ice_old_ufrag(ice));
  assert_int_equal(mf_ice_restart(ice, u2, p2), MF_OK);
  assert_string_equal(mf_ice_local_ufrag(ice), u2);
  assert_string_equal(mf_ice_old_ufrag(ice), ufrag);

  /* closed: no restart, no old ufrag, closing again is harmless */
  mf_ice_close(ice);
  assert_int_equal(mf_ice_state(ice), MF_ICE_STATE_CLOSED);
  assert_null(mf_ice_old_ufrag(ice));
  assert_int_equal(mf_ice_restart(ice, ufrag, pwd), MF_ERR_CLOSED);
  mf_ice_close(ice);
  mf_ice_close(NULL);
  resp_len = sizeof resp;
  assert_int_equal(mf_ice_handle_request(ice, req, 20, SA(from), 0, resp, &resp_len, &res), MF_ERR_CLOSED);
  assert_int_equal(resp_len, 0);
  mf_ice_free(ice);
  mf_ice_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tuple_equality),
      cmocka_unit_test(test_arguments_and_restart),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
