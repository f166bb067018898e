/* SWIM wire codec (common/swim_codec.h): address and id validation tables, and the
 * encoder's size budget with a decode round trip. Whole-packet validation of hostile input
 * is tested through the protocol in test_swim.c (malformed packets table) and fuzzed by
 * tests/fuzz/fuzz_gossip.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "common/swim_codec.h"

static void test_codec_addresses_and_ids(void **state) {
  (void)state;
  static const struct {
    const char *text;
    bool ok;
    uint32_t ip;
    uint16_t port;
  } addrs[] = {
      {"10.0.0.1:7946", true, 0x0a000001, 7946},
      {"0.0.0.0:1", true, 0, 1},
      {"255.255.255.255:65535", true, 0xffffffff, 65535},
      {"127.0.0.1:0", false, 0, 0},
      {"127.0.0.1:65536", false, 0, 0},
      {"127.0.0.1:070", false, 0, 0},
      {"127.0.0.01:70", false, 0, 0},
      {"127.0.0.1:", false, 0, 0},
      {"127.0.0.1", false, 0, 0},
      {"127.0.0:1", false, 0, 0},
      {"127.0.0.1.1:1", false, 0, 0},
      {"1000.0.0.1:1", false, 0, 0},
      {" 1.2.3.4:5", false, 0, 0},
      {"1.2.3.4:5 ", false, 0, 0},
      {"1.2.3.-4:5", false, 0, 0},
      {"1.2.3.4:+5", false, 0, 0},
      {"a.b.c.d:1", false, 0, 0},
      {"", false, 0, 0},
      {"1.2.3.4:0000000005", false, 0, 0},
  };
  for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
    uint32_t ip = 1;
    uint16_t port = 1;
    bool ok = mf_swim_codec_parse_address(addrs[i].text, &ip, &port);
    if (ok != addrs[i].ok) fail_msg("address '%s'", addrs[i].text);
    if (ok) {
      assert_int_equal(ip, addrs[i].ip);
      assert_int_equal(port, addrs[i].port);
    }
  }
  assert_false(mf_swim_codec_parse_address(NULL, NULL, NULL));
  assert_true(mf_swim_codec_valid_id("8f0e7c9a-3b1d-4c2e-9f8a-1b2c3d4e5f60"));
  assert_true(mf_swim_codec_valid_id("a"));
  assert_true(mf_swim_codec_valid_id("~!{}"));
  assert_false(mf_swim_codec_valid_id(""));
  assert_false(mf_swim_codec_valid_id(NULL));
  assert_false(mf_swim_codec_valid_id("a b"));
  assert_false(mf_swim_codec_valid_id("a\x7f"));
  char id[MF_SWIM_ID_MAX + 2];
  memset(id, 'x', sizeof id);
  id[MF_SWIM_ID_MAX] = '\0';
  assert_true(mf_swim_codec_valid_id(id));
  id[MF_SWIM_ID_MAX] = 'x';
  id[MF_SWIM_ID_MAX + 1] = '\0';
  assert_false(mf_swim_codec_valid_id(id));
}

/* The encoder stops adding at MF_SWIM_PACKET_MAX, and what it writes decodes back. */
static void test_codec_budget_roundtrip(void **state) {
  (void)state;
  static mf_swim_encoder_t enc;
  static mf_swim_arena_t arena;
  static mf_swim_packet_t p;
  uint8_t meta[MF_SWIM_META_MAX];
  for (size_t i = 0; i < sizeof meta; i++) meta[i] = (uint8_t)i;
  char ids[MF_SWIM_CODEC_MAX_UPDATES][MF_SWIM_ID_MAX + 1];
  mf_swim_wire_member_t self = {"self", "10.0.0.1:7946", 3, MF_SWIM_ALIVE, meta, 10, ""};
  for (size_t meta_len = 0; meta_len <= MF_SWIM_META_MAX; meta_len += 64) {
    mf_swim_encoder_init(&enc, MF_SWIM_PACKET_PING_REQ, &self, 42, "target", "10.0.0.2:1");
    size_t added = 0;
    for (;;) {
      snprintf(ids[added], sizeof ids[added], "%064zu", added);
      mf_swim_wire_member_t m = {ids[added], "192.168.100.200:65000", UINT64_MAX,
                                 MF_SWIM_SUSPECT, meta, meta_len, "8f0e7c9a-3b1d-4c2e"};
      if (!mf_swim_encoder_add(&enc, &m)) break;
      added++;
      assert_true(added <= MF_SWIM_CODEC_MAX_UPDATES);
    }
    uint8_t out[MF_SWIM_PACKET_MAX];
    size_t len = mf_swim_encoder_finish(&enc, out);
    assert_true(len > 0 && len <= MF_SWIM_PACKET_MAX);
    assert_true(len > MF_SWIM_PACKET_MAX - 500); /* full, not stopped early */
    assert_int_equal(mf_swim_codec_decode(&arena, out, len, &p), MF_OK);
    assert_int_equal(p.type, MF_SWIM_PACKET_PING_REQ);
    assert_int_equal(p.seq, 42);
    assert_string_equal(p.target_id, "target");
    assert_string_equal(p.sender.id, "self");
    assert_int_equal(p.sender.incarnation, 3);
    assert_int_equal(p.n_updates, added);
    for (size_t i = 0; i < added; i++) {
      assert_string_equal(p.updates[i].id, ids[i]);
      assert_int_equal(p.updates[i].status, MF_SWIM_SUSPECT);
      assert_int_equal(p.updates[i].incarnation, UINT64_MAX);
      assert_int_equal(p.updates[i].meta_len, meta_len);
      if (meta_len) assert_memory_equal(p.updates[i].meta, meta, meta_len);
      assert_string_equal(p.updates[i].suspect_from, "8f0e7c9a-3b1d-4c2e");
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_codec_addresses_and_ids),
      cmocka_unit_test(test_codec_budget_roundtrip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
