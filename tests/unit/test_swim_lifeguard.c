/* Lifeguard suspicion confirmations in the SWIM core (common/swim.c), on the fake network
 * of swim_sim.h: virtual time, seeded, no sockets. The bounds are the protocol's own
 * suspicion timeouts (swim.h), in virtual milliseconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/swim.h"
#include "common/swim_codec.h"

#include "tests/unit/swim_sim.h"

/* swim.c's Lifeguard timeout for `live` members (self included) and c confirmations. */
static uint64_t suspicion_ms(size_t live, unsigned c) {
  static const uint32_t frac_permille[4] = {0, 500, 792, 1000};
  uint64_t min = MF_SWIM_DEFAULT_SUSPECT_MIN_MS;
  uint64_t max = 4ull * PROBE * ceil_log2((uint64_t)live + 1);
  if (max < min) max = min;
  return max - (max - min) * frac_permille[c > 3 ? 3 : c] / 1000;
}

/* When observer first saw id become `st` (0 = never). */
static uint64_t event_at(const net_t *net, int observer, const char *id, mf_swim_status_t st) {
  for (size_t i = 0; i < net->n_events; i++) {
    const event_t *e = &net->events[i];
    if (e->observer == observer && strcmp(e->id, id) == 0 && !e->is_new && e->status == st &&
        e->old_status != st)
      return e->at;
  }
  return 0;
}

/* Pauses the last of n members on each of `seeds` networks; returns how many observers'
 * suspicions outlasted `bound` (printing them) and the longest one in *worst. */
static int pause_runs(int n, uint64_t seeds, uint64_t bound, uint64_t *worst) {
  int slow = 0;
  *worst = 0;
  for (uint64_t seed = 1; seed <= seeds; seed++) {
    net_t *net = converged_net(n, 100 + seed);
    /* A seed-dependent phase, so the pause falls at every point of the probe rounds. */
    net_run(net, net->now + 7 * PROBE + (seed * 37) % PROBE, NULL, NULL);
    node_t *x = &net->nodes[n - 1];
    x->paused = true;
    seen_arg_t dead = {n - 1, MF_SWIM_DEAD};
    assert_true(net_run(net, net->now + death_bound(n), all_see, &dead));
    for (int a = 0; a < n - 1; a++) {
      uint64_t s = event_at(net, a, x->id, MF_SWIM_SUSPECT);
      uint64_t d = event_at(net, a, x->id, MF_SWIM_DEAD);
      assert_true(s > 0 && d >= s);
      if (d - s > *worst) *worst = d - s;
      if (d - s > bound) {
        slow++;
        printf("# %d members, seed %llu: member %d suspected the paused one for %llu ms\n", n,
               (unsigned long long)seed, a, (unsigned long long)(d - s));
      }
    }
    net_free(net);
  }
  return slow;
}

/* The node_pause finding: controller + 2 nodes, one node paused. Both others' probes of
 * it fail, so each suspicion has an independent confirmation and must end within the
 * one-confirmation timeout. Before the fix, when both suspected in the same round, each
 * replaced its own id in the gossiped record with the other's as soon as it heard it, the
 * other never learnt of the second failed probe, and ran the full timeout (about a third
 * of these runs). */
static void test_pause_three_members_confirmed(void **state) {
  (void)state;
  uint64_t worst, bound = suspicion_ms(3, 1);
  int slow = pause_runs(3, 300, bound, &worst);
  printf("# 3 members, 300 pauses: longest suspicion %llu ms (one-confirmation timeout %llu, "
         "unconfirmed %llu)\n",
         (unsigned long long)worst, (unsigned long long)bound,
         (unsigned long long)suspicion_ms(3, 0));
  assert_int_equal(slow, 0);
}

/* Five members: four observers, each of whose own probes fails. Every suspicion gets at
 * least one confirmation (its own probe, or another's id relayed), never the full max. */
static void test_pause_five_members_confirmed(void **state) {
  (void)state;
  uint64_t worst, bound = suspicion_ms(5, 1);
  int slow = pause_runs(5, 100, bound, &worst);
  printf("# 5 members, 100 pauses: longest suspicion %llu ms (one-confirmation timeout %llu, "
         "unconfirmed %llu)\n",
         (unsigned long long)worst, (unsigned long long)bound,
         (unsigned long long)suspicion_ms(5, 0));
  assert_int_equal(slow, 0);
}

/* ---- the mechanism, packet by packet ---------------------------------------------------- */

typedef struct {
  int n;
  char to[8][MF_SWIM_ADDRESS_MAX + 1];
  uint8_t data[8][MF_SWIM_PACKET_MAX];
  size_t len[8];
} capture_t;

static void capture(void *ud, const char *address, const uint8_t *data, size_t len) {
  capture_t *c = ud;
  if (c->n >= 8) return;
  snprintf(c->to[c->n], sizeof c->to[0], "%s", address);
  memcpy(c->data[c->n], data, len);
  c->len[c->n++] = len;
}

static size_t encode(mf_swim_packet_type_t type, const char *id, const char *addr, uint64_t seq,
                     const mf_swim_wire_member_t *ups, size_t n, uint8_t *out) {
  mf_swim_encoder_t enc;
  mf_swim_wire_member_t sender = {.id = id, .address = addr, .status = MF_SWIM_ALIVE,
                                  .suspect_from = ""};
  mf_swim_encoder_init(&enc, type, &sender, seq, NULL, NULL);
  for (size_t i = 0; i < n; i++) assert_true(mf_swim_encoder_add(&enc, &ups[i]));
  return mf_swim_encoder_finish(&enc, out);
}

/* The suspecter named by the record about `id` in captured packet k ("" if absent). */
static const char *named_suspecter(capture_t *c, int k, const char *id, mf_swim_arena_t *arena,
                                   mf_swim_packet_t *p) {
  assert_int_equal(mf_swim_codec_decode(arena, c->data[k], c->len[k], p), MF_OK);
  for (size_t i = 0; i < p->n_updates; i++)
    if (strcmp(p->updates[i].id, id) == 0 && p->updates[i].status == MF_SWIM_SUSPECT)
      return p->updates[i].suspect_from;
  return "";
}

#define A_ADDR "10.1.0.1:7946"
#define B_ADDR "10.1.0.2:7946"
#define C_ADDR "10.1.0.3:7946"
#define X_ADDR "10.1.0.9:7946"

/* "a" suspects x after its own probe fails, then hears b's independent suspicion: what
 * it tells b must still name a (b knows its own confirmation, not a's). */
static void test_own_confirmation_survives_others(void **state) {
  (void)state;
  static mf_swim_arena_t arena;
  static mf_swim_packet_t pkt;
  static capture_t cap;
  memset(&cap, 0, sizeof cap);
  mf_swim_config_t cfg = {.self_id = "a", .self_address = A_ADDR, .seed = 5, .send = capture,
                          .ud = &cap};
  mf_swim_t *s;
  assert_int_equal(mf_swim_create(&cfg, 0, &s), MF_OK);
  uint8_t buf[MF_SWIM_PACKET_MAX];
  mf_swim_wire_member_t x = {.id = "x", .address = X_ADDR, .status = MF_SWIM_ALIVE,
                             .suspect_from = ""};
  mf_swim_receive(s, X_ADDR, buf, encode(MF_SWIM_PACKET_ACK, "x", X_ADDR, 0, NULL, 0, buf), 1);
  mf_swim_receive(s, B_ADDR, buf, encode(MF_SWIM_PACKET_ACK, "b", B_ADDR, 0, &x, 1, buf), 1);
  mf_swim_receive(s, C_ADDR, buf, encode(MF_SWIM_PACKET_ACK, "c", C_ADDR, 0, NULL, 0, buf), 1);
  /* Probe rounds until one targets x and fails (nobody answers anything here). */
  mf_swim_member_t m;
  uint64_t now = 1;
  for (int round = 0; round < 20; round++) {
    now += PROBE * (MF_SWIM_LHM_MAX + 1);
    mf_swim_tick(s, now);
    assert_true(mf_swim_get(s, "x", &m));
    if (m.status == MF_SWIM_SUSPECT) break;
  }
  assert_int_equal(m.status, MF_SWIM_SUSPECT);
  mf_swim_stats_t st;
  mf_swim_stats(s, &st);
  assert_true(st.suspects_raised == 1);
  /* b's independent suspicion of x, at the same incarnation: a confirmation. */
  mf_swim_wire_member_t xs = {.id = "x", .address = X_ADDR, .incarnation = m.incarnation,
                              .status = MF_SWIM_SUSPECT, .suspect_from = "b"};
  mf_swim_receive(s, B_ADDR, buf, encode(MF_SWIM_PACKET_ACK, "b", B_ADDR, 0, &xs, 1, buf), now);
  /* b pings a: the ACK carries x's suspicion naming a, not b. */
  cap.n = 0;
  mf_swim_receive(s, B_ADDR, buf, encode(MF_SWIM_PACKET_PING, "b", B_ADDR, 77, NULL, 0, buf), now);
  assert_int_equal(cap.n, 1);
  assert_string_equal(cap.to[0], B_ADDR);
  assert_string_equal(named_suspecter(&cap, 0, "x", &arena, &pkt), "a");
  /* Repeats of b's suspicion change nothing. */
  mf_swim_receive(s, B_ADDR, buf, encode(MF_SWIM_PACKET_ACK, "b", B_ADDR, 0, &xs, 1, buf), now);
  cap.n = 0;
  mf_swim_receive(s, B_ADDR, buf, encode(MF_SWIM_PACKET_PING, "b", B_ADDR, 78, NULL, 0, buf), now);
  assert_string_equal(named_suspecter(&cap, 0, "x", &arena, &pkt), "a");
  mf_swim_destroy(s);

  /* A member that did not probe x itself relays both suspecters, naming to each the
   * other's (a relay that named only the latest, b, would never tell b of a). */
  memset(&cap, 0, sizeof cap);
  mf_swim_config_t cfg2 = {.self_id = "c", .self_address = C_ADDR, .seed = 6, .send = capture,
                           .ud = &cap};
  assert_int_equal(mf_swim_create(&cfg2, 0, &s), MF_OK);
  mf_swim_receive(s, A_ADDR, buf, encode(MF_SWIM_PACKET_ACK, "a", A_ADDR, 0, NULL, 0, buf), 1);
  mf_swim_receive(s, B_ADDR, buf, encode(MF_SWIM_PACKET_ACK, "b", B_ADDR, 0, NULL, 0, buf), 1);
  mf_swim_wire_member_t xa = xs;
  xa.suspect_from = "a";
  mf_swim_receive(s, A_ADDR, buf, encode(MF_SWIM_PACKET_ACK, "a", A_ADDR, 0, &xa, 1, buf), 2);
  mf_swim_receive(s, B_ADDR, buf, encode(MF_SWIM_PACKET_ACK, "b", B_ADDR, 0, &xs, 1, buf), 2);
  assert_true(mf_swim_get(s, "x", &m));
  assert_int_equal(m.status, MF_SWIM_SUSPECT);
  for (int k = 0; k < 2; k++) {
    cap.n = 0;
    mf_swim_receive(s, A_ADDR, buf,
                    encode(MF_SWIM_PACKET_PING, "a", A_ADDR, 100 + (uint64_t)k, NULL, 0, buf), 2);
    assert_string_equal(named_suspecter(&cap, 0, "x", &arena, &pkt), "b");
    cap.n = 0;
    mf_swim_receive(s, B_ADDR, buf,
                    encode(MF_SWIM_PACKET_PING, "b", B_ADDR, 200 + (uint64_t)k, NULL, 0, buf), 2);
    assert_string_equal(named_suspecter(&cap, 0, "x", &arena, &pkt), "a");
  }
  mf_swim_destroy(s);
}

int main(void) {
  const char *seed_env = getenv("MF_SWIM_TEST_SEED");
  if (seed_env) seed_offset = strtoull(seed_env, NULL, 10);
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_own_confirmation_survives_others),
      cmocka_unit_test(test_pause_three_members_confirmed),
      cmocka_unit_test(test_pause_five_members_confirmed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
