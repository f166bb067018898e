/* DCEP (RFC 8832): DATA_CHANNEL_OPEN / ACK parse and write, tables of valid and
 * malformed messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/dcep.h"

/* RFC 8832 OPEN: reliable ordered, priority 256, label "chat", protocol "" */
static const uint8_t open_chat[] = {0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
                                    0x00, 0x04, 0x00, 0x00, 'c',  'h',  'a',  't'};
/* unordered, max 3 retransmissions, label "a", protocol "xy" */
static const uint8_t open_rexmit[] = {0x03, 0x81, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00,
                                      0x01, 0x00, 0x02, 'a',  'x',  'y'};
/* ordered, lifetime 1500 ms, empty label and protocol */
static const uint8_t open_timed[] = {0x03, 0x02, 0x00, 0x00, 0x00, 0x00,
                                     0x05, 0xdc, 0x00, 0x00, 0x00, 0x00};

static void test_parse_valid(void **state) {
  (void)state;
  mf_dcep_message_t m;
  assert_int_equal(mf_dcep_parse(open_chat, sizeof open_chat, &m), MF_OK);
  assert_int_equal(m.type, MF_DCEP_MSG_OPEN);
  assert_int_equal(m.open.channel_type, MF_DCEP_RELIABLE);
  assert_int_equal(m.open.priority, 256);
  assert_int_equal(m.open.label_len, 4);
  assert_memory_equal(m.open.label, "chat", 4);
  assert_int_equal(m.open.protocol_len, 0);
  mf_sctp_send_params_t p;
  mf_dcep_send_params(&m.open, &p);
  assert_true(p.ordered);
  assert_int_equal(p.max_retransmits, -1);
  assert_int_equal(p.max_packet_life_time, -1);

  assert_int_equal(mf_dcep_parse(open_rexmit, sizeof open_rexmit, &m), MF_OK);
  assert_int_equal(m.open.reliability, 3);
  assert_memory_equal(m.open.label, "a", 1);
  assert_int_equal(m.open.protocol_len, 2);
  assert_memory_equal(m.open.protocol, "xy", 2);
  mf_dcep_send_params(&m.open, &p);
  assert_false(p.ordered);
  assert_int_equal(p.max_retransmits, 3);
  assert_int_equal(p.max_packet_life_time, -1);

  assert_int_equal(mf_dcep_parse(open_timed, sizeof open_timed, &m), MF_OK);
  mf_dcep_send_params(&m.open, &p);
  assert_true(p.ordered);
  assert_int_equal(p.max_packet_life_time, 1500);
  assert_int_equal(p.max_retransmits, -1);

  const uint8_t ack[] = {0x02};
  assert_int_equal(mf_dcep_parse(ack, 1, &m), MF_OK);
  assert_int_equal(m.type, MF_DCEP_MSG_ACK);
}

static void test_parse_malformed(void **state) {
  (void)state;
  static const struct {
    const char *what;
    uint8_t data[20];
    size_t len;
  } bad[] = {
      {"empty", {0}, 0},
      {"ack with trailing byte", {0x02, 0x00}, 2},
      {"unknown message type", {0x04}, 1},
      {"open truncated header", {0x03, 0x00, 0x00, 0x00}, 4},
      {"open unknown channel type", {0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 12},
      {"open unknown unordered type", {0x03, 0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 12},
      {"open label past the end", {0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x05, 0, 0, 'a', 'b'}, 14},
      {"open protocol past the end", {0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0x09, 'a', 'b'}, 14},
      {"open trailing bytes", {0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 'a', 'b'}, 14},
      {"open huge lengths", {0x03, 0x00, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, 12},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mf_dcep_message_t m;
    mf_err_t e = mf_dcep_parse(bad[i].data, bad[i].len, &m);
    if (e != MF_ERR_PARSE) fail_msg("%s: accepted", bad[i].what);
  }
  mf_dcep_message_t m;
  assert_int_equal(mf_dcep_parse(NULL, 5, &m), MF_ERR_PARSE);
  /* every strict prefix of a valid OPEN is refused */
  for (size_t n = 0; n < sizeof open_rexmit; n++)
    assert_int_equal(mf_dcep_parse(open_rexmit, n, &m), MF_ERR_PARSE);
}

static void test_write_roundtrip(void **state) {
  (void)state;
  mf_dcep_open_t o = {.channel_type = MF_DCEP_PARTIAL_RELIABLE_REXMIT | MF_DCEP_UNORDERED,
                      .priority = 0,
                      .reliability = 3,
                      .label = (const uint8_t *)"a",
                      .label_len = 1,
                      .protocol = (const uint8_t *)"xy",
                      .protocol_len = 2};
  uint8_t buf[64];
  size_t n = 0;
  assert_int_equal(mf_dcep_write_open(&o, buf, sizeof buf, &n), MF_OK);
  assert_int_equal(n, sizeof open_rexmit);
  assert_memory_equal(buf, open_rexmit, n);
  assert_int_equal(mf_dcep_write_open(&o, buf, n - 1, &n), MF_ERR_LIMIT);
  /* a reliable channel writes reliability 0 whatever the field holds */
  mf_dcep_open_t r = {.channel_type = MF_DCEP_RELIABLE, .priority = 256, .reliability = 77,
                      .label = (const uint8_t *)"chat", .label_len = 4};
  assert_int_equal(mf_dcep_write_open(&r, buf, sizeof buf, &n), MF_OK);
  assert_int_equal(n, sizeof open_chat);
  assert_memory_equal(buf, open_chat, n);
  mf_dcep_open_t bad = {.channel_type = 0x05};
  assert_int_equal(mf_dcep_write_open(&bad, buf, sizeof buf, &n), MF_ERR_INVALID_ARG);
  mf_dcep_open_t nolabel = {.channel_type = 0, .label_len = 3};
  assert_int_equal(mf_dcep_write_open(&nolabel, buf, sizeof buf, &n), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_dcep_write_ack(buf, sizeof buf, &n), MF_OK);
  assert_int_equal(n, 1);
  assert_int_equal(buf[0], 0x02);
  assert_int_equal(mf_dcep_write_ack(buf, 0, &n), MF_ERR_LIMIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_valid),
      cmocka_unit_test(test_parse_malformed),
      cmocka_unit_test(test_write_roundtrip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
