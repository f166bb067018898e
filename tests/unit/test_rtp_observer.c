/* Tests for node/rtp_observer.h on a fake clock: AudioLevelObserver selection (threshold,
 * maxEntries, loudest first, silence told once), ActiveSpeakerObserver hysteresis (takeover
 * after hold_intervals, no flapping on short bursts, silence keeps the speaker, removal),
 * pause/resume, membership errors and config checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/rtp_observer.h"

#define A "aaaaaaaa-0000-4000-8000-000000000001"
#define B "bbbbbbbb-0000-4000-8000-000000000002"
#define C "cccccccc-0000-4000-8000-000000000003"

/* n packets at level dbov (-dBov, 0..127) */
static void feed(mf_rtp_observer_t *o, const char *id, uint8_t dbov, uint32_t n) {
  mf_audio_level_summary_t s = {.sum = (uint64_t)dbov * n, .count = n, .voice = n};
  mf_rtp_observer_on_levels(o, id, &s);
}

static mf_rtp_observer_t *make(mf_rtp_observer_type_t type, uint32_t max_entries, int threshold) {
  mf_rtp_observer_config_t c;
  mf_rtp_observer_config_default(type, &c);
  c.max_entries = max_entries;
  c.threshold = threshold;
  mf_rtp_observer_t *o = NULL;
  assert_int_equal(mf_rtp_observer_create(&c, 0, &o), MF_OK);
  return o;
}

/* One interval of an AudioLevelObserver: levels of A, B, C (255 = sent nothing). */
typedef struct {
  uint8_t a, b, c;
  mf_rtp_observer_event_kind_t kind;
  size_t count;
  const char *ids[3];
  int volumes[3];
} al_step_t;

#define NONE 255

static void run_audio_level(uint32_t max_entries, int threshold, const al_step_t *steps, size_t n) {
  mf_rtp_observer_t *o = make(MF_RTP_OBSERVER_AUDIO_LEVEL, max_entries, threshold);
  assert_int_equal(mf_rtp_observer_add_producer(o, A), MF_OK);
  assert_int_equal(mf_rtp_observer_add_producer(o, B), MF_OK);
  assert_int_equal(mf_rtp_observer_add_producer(o, C), MF_OK);
  mf_rtp_observer_event_t ev;
  uint64_t now = 0;
  for (size_t i = 0; i < n; i++) {
    const al_step_t *s = &steps[i];
    if (s->a != NONE) feed(o, A, s->a, 50);
    if (s->b != NONE) feed(o, B, s->b, 50);
    if (s->c != NONE) feed(o, C, s->c, 50);
    /* not due before the interval */
    assert_false(mf_rtp_observer_tick(o, now + 999, &ev));
    now += 1000;
    bool told = mf_rtp_observer_tick(o, now, &ev);
    assert_int_equal(told, s->kind != MF_RTP_OBSERVER_EV_NONE);
    assert_int_equal(ev.kind, s->kind);
    if (s->kind != MF_RTP_OBSERVER_EV_VOLUMES) continue;
    assert_int_equal(ev.count, s->count);
    for (size_t k = 0; k < s->count; k++) {
      assert_string_equal(ev.volumes[k].producer_id, s->ids[k]);
      assert_int_equal(ev.volumes[k].volume, s->volumes[k]);
    }
  }
  mf_rtp_observer_destroy(o);
}

static void test_audio_level_selection(void **state) {
  const mf_rtp_observer_event_kind_t V = MF_RTP_OBSERVER_EV_VOLUMES, S = MF_RTP_OBSERVER_EV_SILENCE,
                                     N = MF_RTP_OBSERVER_EV_NONE;
  /* maxEntries 1, threshold -80 (mediasoup's defaults) */
  const al_step_t one[] = {
      {NONE, NONE, NONE, N, 0, {0}, {0}},        /* nothing yet: silence already assumed */
      {30, 20, 90, V, 1, {B}, {-20}},            /* loudest only; C below threshold */
      {30, NONE, 90, V, 1, {A}, {-30}},          /* B sent nothing: not a candidate */
      {90, 127, 85, S, 0, {0}, {0}},             /* all under -80: silence */
      {90, 127, 85, N, 0, {0}, {0}},             /* ... told once */
      {NONE, NONE, NONE, N, 0, {0}, {0}},
      {80, NONE, NONE, V, 1, {A}, {-80}},        /* exactly the threshold counts */
      {NONE, NONE, NONE, S, 0, {0}, {0}},        /* everyone stopped sending */
  };
  run_audio_level(1, -80, one, sizeof one / sizeof one[0]);
  /* maxEntries 2, threshold -60: sorted loudest first, ties keep insertion order */
  const al_step_t two[] = {
      {50, 10, 30, V, 2, {B, C}, {-10, -30}},
      {40, 40, 70, V, 2, {A, B}, {-40, -40}},
      {65, 59, 61, V, 1, {B}, {-59}},
      {0, 127, 127, V, 1, {A}, {0}},
  };
  run_audio_level(2, -60, two, sizeof two / sizeof two[0]);
  /* maxEntries beyond the producers: all that qualify */
  const al_step_t many[] = {
      {5, 15, 10, V, 3, {A, C, B}, {-5, -10, -15}},
  };
  run_audio_level(10, -127, many, 1);
}

static void test_audio_level_averages_interval(void **state) {
  mf_rtp_observer_t *o = make(MF_RTP_OBSERVER_AUDIO_LEVEL, 1, -80);
  assert_int_equal(mf_rtp_observer_add_producer(o, A), MF_OK);
  mf_rtp_observer_event_t ev;
  /* several reports in one interval average by packet count: (10*10 + 40*30)/40 = 32.5 */
  feed(o, A, 10, 10);
  feed(o, A, 40, 30);
  assert_true(mf_rtp_observer_tick(o, 1000, &ev));
  assert_int_equal(ev.volumes[0].volume, -33);
  /* levels of an unknown producer are ignored */
  feed(o, B, 0, 100);
  feed(o, A, 70, 1);
  assert_true(mf_rtp_observer_tick(o, 2000, &ev));
  assert_int_equal(ev.count, 1);
  assert_string_equal(ev.volumes[0].producer_id, A);
  assert_int_equal(ev.volumes[0].volume, -70);
  /* a late tick ends the interval once and restarts it from then */
  feed(o, A, 20, 1);
  assert_true(mf_rtp_observer_tick(o, 3500, &ev));
  assert_false(mf_rtp_observer_tick(o, 4000, &ev));
  mf_rtp_observer_destroy(o);
}

static void test_pause_resume_idle(void **state) {
  mf_rtp_observer_t *o = make(MF_RTP_OBSERVER_AUDIO_LEVEL, 1, -80);
  mf_rtp_observer_event_t ev;
  assert_int_equal(mf_rtp_observer_add_producer(o, A), MF_OK);
  /* paused before anything was told: no silence to tell */
  assert_false(mf_rtp_observer_pause(o, &ev));
  assert_true(mf_rtp_observer_paused(o));
  feed(o, A, 10, 10); /* dropped while paused */
  assert_false(mf_rtp_observer_tick(o, 5000, &ev));
  assert_false(mf_rtp_observer_pause(o, &ev)); /* twice: nothing */
  mf_rtp_observer_resume(o, 5000);
  assert_false(mf_rtp_observer_paused(o));
  assert_false(mf_rtp_observer_tick(o, 5999, &ev));
  assert_false(mf_rtp_observer_tick(o, 6000, &ev)); /* the paused levels are gone */
  feed(o, A, 10, 10);
  assert_true(mf_rtp_observer_tick(o, 7000, &ev));
  assert_int_equal(ev.kind, MF_RTP_OBSERVER_EV_VOLUMES);
  /* pause after volumes: silence, as mediasoup */
  assert_true(mf_rtp_observer_pause(o, &ev));
  assert_int_equal(ev.kind, MF_RTP_OBSERVER_EV_SILENCE);
  mf_rtp_observer_resume(o, 8000);
  feed(o, A, 10, 10);
  assert_true(mf_rtp_observer_tick(o, 9000, &ev));
  /* the last producer leaves: silence once, by idle */
  assert_false(mf_rtp_observer_idle(o, &ev)); /* still has a producer */
  assert_true(mf_rtp_observer_remove_producer(o, A));
  assert_true(mf_rtp_observer_idle(o, &ev));
  assert_int_equal(ev.kind, MF_RTP_OBSERVER_EV_SILENCE);
  assert_false(mf_rtp_observer_idle(o, &ev));
  mf_rtp_observer_destroy(o);
}

/* One interval of an ActiveSpeakerObserver (interval 300, threshold -50, hold 3). */
typedef struct {
  uint8_t a, b, c;
  const char *dominant_event; /* NULL: no event expected */
  const char *dominant;       /* expected current speaker afterwards (NULL: none) */
} as_step_t;

static void run_active_speaker(const as_step_t *steps, size_t n, mf_rtp_observer_t *o,
                               uint64_t *now) {
  mf_rtp_observer_event_t ev;
  for (size_t i = 0; i < n; i++) {
    const as_step_t *s = &steps[i];
    if (s->a != NONE) feed(o, A, s->a, 15);
    if (s->b != NONE) feed(o, B, s->b, 15);
    if (s->c != NONE) feed(o, C, s->c, 15);
    *now += 300;
    bool told = mf_rtp_observer_tick(o, *now, &ev);
    if (told != (s->dominant_event != NULL)) {
      print_error("step %zu: event %s, expected %s\n", i, told ? ev.producer_id : "none",
                  s->dominant_event ? s->dominant_event : "none");
      fail();
    }
    if (told) {
      assert_int_equal(ev.kind, MF_RTP_OBSERVER_EV_DOMINANT);
      assert_string_equal(ev.producer_id, s->dominant_event);
    }
    if (s->dominant)
      assert_string_equal(mf_rtp_observer_dominant(o), s->dominant);
    else
      assert_null(mf_rtp_observer_dominant(o));
  }
}

static void test_active_speaker(void **state) {
  mf_rtp_observer_config_t c;
  mf_rtp_observer_config_default(MF_RTP_OBSERVER_ACTIVE_SPEAKER, &c);
  assert_int_equal(c.interval_ms, 300);
  assert_int_equal(c.hold_intervals, 3);
  assert_int_equal(c.speaker_threshold, -50);
  mf_rtp_observer_t *o = NULL;
  assert_int_equal(mf_rtp_observer_create(&c, 0, &o), MF_OK);
  assert_int_equal(mf_rtp_observer_add_producer(o, A), MF_OK);
  assert_int_equal(mf_rtp_observer_add_producer(o, B), MF_OK);
  assert_int_equal(mf_rtp_observer_add_producer(o, C), MF_OK);
  uint64_t now = 0;
  const as_step_t script[] = {
      {127, 127, NONE, NULL, NULL}, /* silence: nobody */
      {60, 70, NONE, NULL, NULL},   /* under -50: background noise, nobody */
      {20, 40, 127, A, A},          /* first speaker: at once */
      {20, 40, 127, NULL, A},
      {40, 10, 127, NULL, A},       /* B louder: 1 */
      {40, 10, 127, NULL, A},       /* 2 */
      {20, 40, 127, NULL, A},       /* A back: B's streak resets */
      {40, 10, 127, NULL, A},       /* B: 1 */
      {40, 10, 127, NULL, A},       /* 2 */
      {40, 10, 127, B, B},          /* 3: takeover */
      {127, 127, 127, NULL, B},     /* silence keeps the speaker */
      {NONE, NONE, NONE, NULL, B},  /* nobody sends: keeps it too */
      {127, 127, 30, NULL, B},      /* C: 1 */
      {127, 127, 127, NULL, B},     /* silence breaks C's run */
      {127, 127, 30, NULL, B},      /* C: 1 */
      {127, 127, 30, NULL, B},      /* 2 */
      {127, 30, 30, NULL, B},       /* tie with the speaker: B stays, C's run resets */
      {127, 127, 30, NULL, B},      /* C: 1 */
      {127, 127, 30, NULL, B},      /* 2 */
      {127, 127, 30, C, C},         /* 3 */
      {10, 127, 30, NULL, C},       /* A: 1 */
      {127, 10, 30, NULL, C},       /* B: 1 (alternating bursts never take over) */
      {10, 127, 30, NULL, C},
      {127, 10, 30, NULL, C},
  };
  run_active_speaker(script, sizeof script / sizeof script[0], o, &now);
  /* the dominant producer leaves: cleared; the next candidate takes over at once */
  assert_true(mf_rtp_observer_remove_producer(o, C));
  assert_null(mf_rtp_observer_dominant(o));
  assert_false(mf_rtp_observer_remove_producer(o, C));
  const as_step_t after[] = {
      {127, 127, 10, NULL, NULL}, /* C's levels no longer count */
      {127, 25, NONE, B, B},
  };
  run_active_speaker(after, 2, o, &now);
  mf_rtp_observer_destroy(o);
}

static void test_membership_and_config(void **state) {
  mf_rtp_observer_t *o = make(MF_RTP_OBSERVER_AUDIO_LEVEL, 1, -80);
  assert_int_equal(mf_rtp_observer_add_producer(o, A), MF_OK);
  assert_int_equal(mf_rtp_observer_add_producer(o, A), MF_ERR_EXISTS);
  assert_int_equal(mf_rtp_observer_add_producer(o, ""), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_observer_add_producer(o, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_rtp_observer_add_producer(o, A "x"), MF_ERR_INVALID_ARG);
  assert_true(mf_rtp_observer_has_producer(o, A));
  assert_false(mf_rtp_observer_has_producer(o, B));
  char id[MF_ID_LEN + 1];
  for (int i = 1; i < MF_RTP_OBSERVER_MAX_PRODUCERS; i++) {
    snprintf(id, sizeof id, "p%d", i);
    assert_int_equal(mf_rtp_observer_add_producer(o, id), MF_OK);
  }
  assert_int_equal(mf_rtp_observer_producer_count(o), MF_RTP_OBSERVER_MAX_PRODUCERS);
  assert_int_equal(mf_rtp_observer_add_producer(o, B), MF_ERR_LIMIT);
  assert_true(mf_rtp_observer_remove_producer(o, "p7"));
  assert_false(mf_rtp_observer_remove_producer(o, "p7"));
  assert_false(mf_rtp_observer_remove_producer(o, NULL));
  assert_int_equal(mf_rtp_observer_add_producer(o, B), MF_OK);
  mf_rtp_observer_destroy(o);

  static const struct {
    mf_rtp_observer_type_t type;
    uint32_t interval, max_entries;
    int threshold;
    mf_err_t e;
    uint32_t interval_after;
  } cases[] = {
      {MF_RTP_OBSERVER_AUDIO_LEVEL, 1000, 1, -80, MF_OK, 1000},
      {MF_RTP_OBSERVER_AUDIO_LEVEL, 10, 1, -80, MF_OK, 250},      /* clamped up */
      {MF_RTP_OBSERVER_AUDIO_LEVEL, 99999, 1, -80, MF_OK, 5000},  /* clamped down */
      {MF_RTP_OBSERVER_ACTIVE_SPEAKER, 10, 1, -80, MF_OK, 100},
      {MF_RTP_OBSERVER_AUDIO_LEVEL, 1000, 0, -80, MF_ERR_INVALID_ARG, 0},
      {MF_RTP_OBSERVER_AUDIO_LEVEL, 1000, 65, -80, MF_ERR_INVALID_ARG, 0},
      {MF_RTP_OBSERVER_AUDIO_LEVEL, 1000, 1, 1, MF_ERR_INVALID_ARG, 0},
      {MF_RTP_OBSERVER_AUDIO_LEVEL, 1000, 1, -128, MF_ERR_INVALID_ARG, 0},
      {(mf_rtp_observer_type_t)7, 1000, 1, -80, MF_ERR_INVALID_ARG, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_rtp_observer_config_t c;
    mf_rtp_observer_config_default(MF_RTP_OBSERVER_AUDIO_LEVEL, &c);
    c.type = cases[i].type;
    c.interval_ms = cases[i].interval;
    c.max_entries = cases[i].max_entries;
    c.threshold = cases[i].threshold;
    char err[128] = "";
    assert_int_equal(mf_rtp_observer_config_check(&c, err, sizeof err), cases[i].e);
    if (cases[i].e == MF_OK) {
      assert_int_equal(c.interval_ms, cases[i].interval_after);
      assert_int_equal(mf_rtp_observer_create(&c, 0, &o), MF_OK);
      assert_int_equal(mf_rtp_observer_config(o)->interval_ms, cases[i].interval_after);
      mf_rtp_observer_destroy(o);
    } else {
      assert_true(err[0] != '\0');
      assert_int_equal(mf_rtp_observer_create(&c, 0, &o), cases[i].e);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_audio_level_selection),
      cmocka_unit_test(test_audio_level_averages_interval),
      cmocka_unit_test(test_pause_resume_idle),
      cmocka_unit_test(test_active_speaker),
      cmocka_unit_test(test_membership_and_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
