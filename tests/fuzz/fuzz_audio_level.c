/* Fuzz target for node/audio_level.h with node/rtp_observer.h behind it: the first byte is
 * the negotiated extension id, the rest one RTP packet; its level (if any) feeds an
 * accumulator, whose summary feeds both observer kinds. Checks the invariants: a level is
 * 0..127, at most one packet counted, volumes sorted loudest first within the threshold and
 * maxEntries, a dominant speaker is a member. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/audio_level.h"
#include "node/rtp_observer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
  if (!cond) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t ext_id = data[0];
  mf_rtp_packet_t pkt;
  if (mf_rtp_parse(data + 1, size - 1, &pkt) != MF_OK) return 0;
  mf_audio_level_t a = {.observers = 1};
  mf_audio_level_on_rtp(&a, &pkt, ext_id);
  check(a.count + a.malformed <= 1);
  check(a.voice <= a.count);
  mf_audio_level_summary_t s;
  mf_audio_level_take(&a, &s);
  check(mf_audio_level_average(&s) <= 127);
  check(s.sum <= 127u * s.count);

  static const char *ids[3] = {"a", "b", "c"};
  for (int type = 0; type < 2; type++) {
    mf_rtp_observer_config_t c;
    mf_rtp_observer_config_default((mf_rtp_observer_type_t)type, &c);
    c.max_entries = 2;
    c.threshold = -(int)(pkt.sequence % 128);
    c.hold_intervals = 1 + pkt.ssrc % 4;
    mf_rtp_observer_t *o = NULL;
    if (mf_rtp_observer_create(&c, 0, &o) != MF_OK) abort();
    for (int i = 0; i < 3; i++) check(mf_rtp_observer_add_producer(o, ids[i]) == MF_OK);
    uint64_t now = 0;
    /* the payload scripts who speaks: each byte gives one interval's level to producer b%3 */
    for (size_t i = 0; i < pkt.payload_len && i < 64; i++) {
      uint8_t b = pkt.payload[i];
      mf_audio_level_summary_t one = {.sum = s.sum + (b & 0x7f), .count = s.count + 1};
      mf_rtp_observer_on_levels(o, ids[b % 3], &one);
      now += 5000;
      mf_rtp_observer_event_t ev;
      if (!mf_rtp_observer_tick(o, now, &ev)) continue;
      if (ev.kind == MF_RTP_OBSERVER_EV_VOLUMES) {
        check(type == MF_RTP_OBSERVER_AUDIO_LEVEL && ev.count >= 1 && ev.count <= 2);
        for (size_t k = 0; k < ev.count; k++) {
          check(ev.volumes[k].volume <= 0 && ev.volumes[k].volume >= c.threshold);
          if (k > 0) check(ev.volumes[k - 1].volume >= ev.volumes[k].volume);
        }
      } else if (ev.kind == MF_RTP_OBSERVER_EV_DOMINANT) {
        check(type == MF_RTP_OBSERVER_ACTIVE_SPEAKER);
        check(mf_rtp_observer_has_producer(o, ev.producer_id));
        check(strcmp(mf_rtp_observer_dominant(o), ev.producer_id) == 0);
      }
    }
    mf_rtp_observer_destroy(o);
  }
  return 0;
}
