/* Fuzz target for the SWIM gossip input path (common/swim.h, common/swim_codec.h).
 *
 * Each input is one datagram fed to a fresh instance that already knows a few members in
 * every status, so updates hit the precedence rules, refutation and confirmations, not
 * only "new member". Ticks then run far ahead (suspicion timeouts, deaths, forgetting).
 * Properties checked on the way:
 * - everything the instance sends decodes as a valid packet of at most 1400 bytes;
 * - whatever decodes re-encodes through the encoder and decodes to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/swim.h"
#include "common/swim_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SELF_ID "fuzz-self"
#define SELF_ADDR "10.0.0.1:7946"

static mf_swim_arena_t arena, arena2;
static mf_swim_packet_t pkt, pkt2;
static mf_swim_encoder_t enc;

static void check(int cond) {
  if (!cond) abort();
}

static void check_sent(void *ud, const char *address, const uint8_t *data, size_t len) {
  (void)ud;
  check(mf_swim_codec_parse_address(address, NULL, NULL));
  check(len <= MF_SWIM_PACKET_MAX);
  check(mf_swim_codec_decode(&arena2, data, len, &pkt2) == MF_OK);
}

static void feed(mf_swim_t *s, mf_swim_packet_type_t type, const char *id, const char *addr,
                 const mf_swim_wire_member_t *updates, size_t n, uint64_t now) {
  mf_swim_wire_member_t sender = {id, addr, 2, MF_SWIM_ALIVE, (const uint8_t *)"m", 1, ""};
  mf_swim_encoder_init(&enc, type, &sender, 1, NULL, NULL);
  for (size_t i = 0; i < n; i++) check(mf_swim_encoder_add(&enc, &updates[i]));
  uint8_t buf[MF_SWIM_PACKET_MAX];
  size_t len = mf_swim_encoder_finish(&enc, buf);
  mf_swim_receive(s, addr, buf, len, now);
}

/* Members "a" (ALIVE), "b" (SUSPECT), "c" (DEAD), "d" (LEFT), all at incarnation 5. */
static mf_swim_t *make_instance(void) {
  mf_swim_config_t c = {.self_id = SELF_ID, .self_address = SELF_ADDR, .incarnation = 3,
                        .seed = 1, .send = check_sent};
  mf_swim_t *s;
  check(mf_swim_create(&c, 1000, &s) == MF_OK);
  const mf_swim_wire_member_t known[] = {
      {"a", "10.0.0.2:7946", 5, MF_SWIM_ALIVE, (const uint8_t *)"meta-a", 6, ""},
      {"b", "10.0.0.3:7946", 5, MF_SWIM_SUSPECT, NULL, 0, "a"},
      {"c", "10.0.0.4:7946", 5, MF_SWIM_DEAD, NULL, 0, ""},
      {"d", "10.0.0.5:7946", 5, MF_SWIM_LEFT, NULL, 0, ""},
  };
  feed(s, MF_SWIM_PACKET_SYNC, "e", "10.0.0.6:7946", known, 4, 1000);
  return s;
}

static void check_same_member(const mf_swim_wire_member_t *x, const mf_swim_wire_member_t *y) {
  check(strcmp(x->id, y->id) == 0 && strcmp(x->address, y->address) == 0);
  check(x->incarnation == y->incarnation && x->status == y->status);
  check(x->meta_len == y->meta_len && (!x->meta_len || memcmp(x->meta, y->meta, x->meta_len) == 0));
  check(strcmp(x->suspect_from, y->suspect_from) == 0);
}

/* Decode, re-encode, decode again: the encoder and the validator agree. */
static void roundtrip(const uint8_t *data, size_t size) {
  if (mf_swim_codec_decode(&arena, data, size, &pkt) != MF_OK) return;
  mf_swim_encoder_init(&enc, pkt.type, &pkt.sender, pkt.seq, pkt.target_id, pkt.target_address);
  if (pkt.want_sync) mf_swim_encoder_want_sync(&enc);
  for (size_t i = 0; i < pkt.n_updates; i++) check(mf_swim_encoder_add(&enc, &pkt.updates[i]));
  uint8_t buf[MF_SWIM_PACKET_MAX];
  size_t len = mf_swim_encoder_finish(&enc, buf);
  check(len > 0);
  check(mf_swim_codec_decode(&arena2, buf, len, &pkt2) == MF_OK);
  check(pkt.type == pkt2.type && pkt.seq == pkt2.seq && pkt.want_sync == pkt2.want_sync);
  check(strcmp(pkt.target_id, pkt2.target_id) == 0);
  check(strcmp(pkt.target_address, pkt2.target_address) == 0);
  check_same_member(&pkt.sender, &pkt2.sender);
  check(pkt.n_updates == pkt2.n_updates);
  for (size_t i = 0; i < pkt.n_updates; i++) check_same_member(&pkt.updates[i], &pkt2.updates[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool quiet;
  if (!quiet) {
    mf_log_config_t lc = {.level = MF_LOG_LEVEL_ERROR, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
    mf_log_configure(&lc);
    quiet = true;
  }
  roundtrip(data, size);
  mf_swim_t *s = make_instance();
  mf_swim_receive(s, "10.0.0.9:7946", data, size, 1000);
  static const uint64_t ticks[] = {1000, 1200, 1600, 5000, 20000, 100000, 200000};
  for (size_t i = 0; i < sizeof ticks / sizeof ticks[0]; i++) {
    mf_swim_tick(s, ticks[i]);
    check(mf_swim_next_deadline(s) > ticks[i]);
  }
  mf_swim_member_t self;
  mf_swim_self(s, &self);
  check(strcmp(self.id, SELF_ID) == 0 && self.status == MF_SWIM_ALIVE);
  mf_swim_destroy(s);
  return 0;
}
