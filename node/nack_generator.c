/* NACK generator; see nack_generator.h for the contract.
 *
 * The missing list is an array of entries sorted by extended (64-bit) seq, used as
 * [head, tail): new gaps are always newer than every entry, so they are appended; entries
 * removed from the middle (repaired) become tombstones, found by binary search; tombstones
 * at either end are trimmed at once and the array is compacted in place when the tail
 * reaches the end. The array holds 2 * max_entries slots so compaction is amortised. */
#include "node/nack_generator.h"

#include <stdlib.h>
#include <string.h>

#define MF_LOG_MODULE "nack"
#include "common/log.h"
#include "node/rtp/rtp.h"

/* mediasoup's MaxPacketAge: missing seqs this far behind the newest are forgotten. */
#define MAX_PACKET_AGE 10000
#define MAX_KEYFRAMES 16

typedef struct {
  int64_t seq;
  uint64_t created_ms;
  uint64_t sent_ms;
  uint32_t retries;
  bool active;
} entry_t;

struct mf_nack_generator {
  mf_nack_generator_config_t cfg;
  entry_t *entries;
  uint32_t slots;
  uint32_t head;
  uint32_t tail;
  uint32_t active;
  bool started;
  int64_t last; /* extended seq of the newest packet */
  /* First packets of recent keyframes (ascending), for trimming on overflow. */
  int64_t keyframes[MAX_KEYFRAMES];
  uint32_t kf_count;
  /* RTX packets received ahead of the stream (ascending): not to be NACKed. */
  int64_t recovered[MF_NACK_GENERATOR_MAX_RECOVERED];
  uint32_t rec_count;
  mf_nack_generator_stats_t stats;
};

void mf_nack_generator_config_default(mf_nack_generator_config_t *c) {
  c->max_entries = MF_NACK_GENERATOR_DEFAULT_MAX_ENTRIES;
  c->max_retries = MF_NACK_GENERATOR_DEFAULT_MAX_RETRIES;
  c->initial_delay_ms = MF_NACK_GENERATOR_DEFAULT_INITIAL_DELAY_MS;
  c->min_retry_interval_ms = MF_NACK_GENERATOR_DEFAULT_MIN_RETRY_INTERVAL_MS;
}

mf_err_t mf_nack_generator_create(const mf_nack_generator_config_t *config,
                                  mf_nack_generator_t **out) {
  mf_nack_generator_config_t cfg;
  if (!out) {
    return MF_ERR_INVALID_ARG;
  }
  if (config) {
    cfg = *config;
  } else {
    mf_nack_generator_config_default(&cfg);
  }
  if (cfg.max_entries == 0 || cfg.max_entries > 32768 || cfg.max_retries == 0) {
    return MF_ERR_INVALID_ARG;
  }
  mf_nack_generator_t *g = calloc(1, sizeof(*g));
  if (!g) {
    return MF_ERR_NO_MEMORY;
  }
  g->slots = cfg.max_entries * 2;
  g->entries = calloc(g->slots, sizeof(*g->entries));
  if (!g->entries) {
    free(g);
    return MF_ERR_NO_MEMORY;
  }
  g->cfg = cfg;
  *out = g;
  return MF_OK;
}

void mf_nack_generator_destroy(mf_nack_generator_t *g) {
  if (!g) {
    return;
  }
  free(g->entries);
  free(g);
}

void mf_nack_generator_reset(mf_nack_generator_t *g) {
  g->head = g->tail = 0;
  g->active = 0;
  g->started = false;
  g->kf_count = 0;
  g->rec_count = 0;
}

static int64_t extend(const mf_nack_generator_t *g, uint16_t seq) {
  return g->last + mf_rtp_seq_diff(seq, (uint16_t)(g->last & 0xffff));
}

static void trim(mf_nack_generator_t *g) {
  while (g->head < g->tail && !g->entries[g->head].active) {
    g->head++;
  }
  while (g->tail > g->head && !g->entries[g->tail - 1].active) {
    g->tail--;
  }
  if (g->head == g->tail) {
    g->head = g->tail = 0;
  }
}

static void clear_list(mf_nack_generator_t *g) {
  g->head = g->tail = 0;
  g->active = 0;
}

/* Index of the active entry for seq, or -1. */
static int64_t find(const mf_nack_generator_t *g, int64_t seq) {
  uint32_t lo = g->head, hi = g->tail;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (g->entries[mid].seq < seq) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo < g->tail && g->entries[lo].seq == seq && g->entries[lo].active) {
    return lo;
  }
  return -1;
}

static void remove_at(mf_nack_generator_t *g, uint32_t i) {
  g->entries[i].active = false;
  g->active--;
}

/* Drops entries (active or not) older than seq from the head; returns active ones dropped. */
static uint32_t remove_older_than(mf_nack_generator_t *g, int64_t seq) {
  uint32_t n = 0;
  while (g->head < g->tail && g->entries[g->head].seq < seq) {
    if (g->entries[g->head].active) {
      remove_at(g, g->head);
      n++;
    }
    g->head++;
  }
  trim(g);
  return n;
}

/* mediasoup's RemoveNackItemsUntilKeyFrame: true when entries older than the oldest
 * useful keyframe were removed. */
static bool remove_until_keyframe(mf_nack_generator_t *g) {
  while (g->kf_count > 0) {
    uint32_t n = remove_older_than(g, g->keyframes[0]);
    memmove(&g->keyframes[0], &g->keyframes[1], (g->kf_count - 1) * sizeof(g->keyframes[0]));
    g->kf_count--;
    if (n > 0) {
      g->stats.cleared_by_keyframe += n;
      return true;
    }
  }
  return false;
}

static void note_keyframe(mf_nack_generator_t *g, int64_t seq) {
  /* Consecutive keyframe packets belong to the same frame (H264 marks every fragment). */
  if (g->kf_count > 0 && g->keyframes[g->kf_count - 1] >= seq - 1) {
    return;
  }
  if (g->kf_count == MAX_KEYFRAMES) {
    memmove(&g->keyframes[0], &g->keyframes[1], (MAX_KEYFRAMES - 1) * sizeof(g->keyframes[0]));
    g->kf_count--;
  }
  g->keyframes[g->kf_count++] = seq;
}

static void prune_keyframes(mf_nack_generator_t *g, int64_t newest) {
  uint32_t n = 0;
  while (n < g->kf_count && g->keyframes[n] < newest - MAX_PACKET_AGE) {
    n++;
  }
  if (n > 0) {
    memmove(&g->keyframes[0], &g->keyframes[n], (g->kf_count - n) * sizeof(g->keyframes[0]));
    g->kf_count -= n;
  }
}

static void note_recovered(mf_nack_generator_t *g, int64_t seq) {
  for (uint32_t i = 0; i < g->rec_count; i++) {
    if (g->recovered[i] == seq) {
      return;
    }
  }
  if (g->rec_count == MF_NACK_GENERATOR_MAX_RECOVERED) {
    memmove(&g->recovered[0], &g->recovered[1],
            (MF_NACK_GENERATOR_MAX_RECOVERED - 1) * sizeof(g->recovered[0]));
    g->rec_count--;
  }
  /* Keep ascending order: RTX packets may arrive in any order. */
  uint32_t i = g->rec_count;
  while (i > 0 && g->recovered[i - 1] > seq) {
    g->recovered[i] = g->recovered[i - 1];
    i--;
  }
  g->recovered[i] = seq;
  g->rec_count++;
}

static bool is_recovered(const mf_nack_generator_t *g, int64_t seq) {
  for (uint32_t i = 0; i < g->rec_count; i++) {
    if (g->recovered[i] == seq) {
      return true;
    }
  }
  return false;
}

/* Forgets recovered seqs at or below newest: the gap they belonged to is processed. */
static void prune_recovered(mf_nack_generator_t *g, int64_t newest) {
  uint32_t n = 0;
  while (n < g->rec_count && g->recovered[n] <= newest) {
    n++;
  }
  if (n > 0) {
    memmove(&g->recovered[0], &g->recovered[n], (g->rec_count - n) * sizeof(g->recovered[0]));
    g->rec_count -= n;
  }
}

static void compact(mf_nack_generator_t *g) {
  uint32_t w = 0;
  for (uint32_t r = g->head; r < g->tail; r++) {
    if (g->entries[r].active) {
      g->entries[w++] = g->entries[r];
    }
  }
  g->head = 0;
  g->tail = w;
}

/* Adds the seqs first..end-1. Returns MF_NACK_GEN_KEYFRAME when the list overflowed and
 * was cleared instead (the gap is then not added, as in mediasoup). */
static unsigned add_gap(mf_nack_generator_t *g, int64_t first, int64_t end, uint64_t now_ms) {
  remove_older_than(g, end - MAX_PACKET_AGE);
  int64_t n_new = end - first;
  uint32_t max = g->cfg.max_entries;
  if ((int64_t)g->active + n_new > max) {
    while ((int64_t)g->active + n_new > max && remove_until_keyframe(g)) {
    }
    if ((int64_t)g->active + n_new > max) {
      MF_LOG_DEBUG("NACK list full (%u + %lld > %u): clearing, keyframe needed", g->active,
                   (long long)n_new, max);
      clear_list(g);
      g->stats.overflows++;
      return MF_NACK_GEN_KEYFRAME;
    }
  }
  if (g->tail + (uint64_t)n_new > g->slots) {
    compact(g);
  }
  for (int64_t s = first; s < end; s++) {
    if (g->rec_count > 0 && is_recovered(g, s)) {
      continue;
    }
    entry_t *en = &g->entries[g->tail++];
    en->seq = s;
    en->created_ms = now_ms;
    en->sent_ms = 0;
    en->retries = 0;
    en->active = true;
    g->active++;
    g->stats.missing_added++;
  }
  return 0;
}

unsigned mf_nack_generator_on_packet(mf_nack_generator_t *g, uint16_t seq, bool is_keyframe,
                                     bool is_recovered_pkt, uint64_t now_ms) {
  g->stats.packets++;
  if (!g->started) {
    g->started = true;
    g->last = seq;
    if (is_keyframe) {
      note_keyframe(g, seq);
    }
    return 0;
  }
  int64_t e = extend(g, seq);
  if (e <= g->last) {
    int64_t i = e < g->last ? find(g, e) : -1;
    if (i >= 0) {
      remove_at(g, (uint32_t)i);
      trim(g);
      g->stats.repaired++;
      return MF_NACK_GEN_REPAIRED;
    }
    return MF_NACK_GEN_OLD;
  }
  if (is_keyframe) {
    note_keyframe(g, e);
  }
  prune_keyframes(g, e);
  if (is_recovered_pkt) {
    note_recovered(g, e);
    return 0;
  }
  unsigned flags = 0;
  if (e > g->last + 1) {
    flags |= add_gap(g, g->last + 1, e, now_ms);
  }
  g->last = e;
  prune_recovered(g, e);
  return flags;
}

size_t mf_nack_generator_get_nacks(mf_nack_generator_t *g, uint64_t now_ms, uint32_t rtt_ms,
                                   uint16_t *out, size_t max, bool *keyframe_needed) {
  uint64_t interval;
  if (rtt_ms == 0) {
    interval = MF_NACK_GENERATOR_DEFAULT_RTT_MS;
  } else {
    interval = rtt_ms > g->cfg.min_retry_interval_ms ? rtt_ms : g->cfg.min_retry_interval_ms;
  }
  bool gave_up = false;
  size_t n = 0;
  for (uint32_t i = g->head; i < g->tail && n < max; i++) {
    entry_t *en = &g->entries[i];
    if (!en->active) {
      continue;
    }
    bool due;
    if (en->retries == 0) {
      due = now_ms >= en->created_ms && now_ms - en->created_ms >= g->cfg.initial_delay_ms;
    } else {
      due = now_ms >= en->sent_ms && now_ms - en->sent_ms >= interval;
    }
    if (!due) {
      continue;
    }
    if (en->retries >= g->cfg.max_retries) {
      remove_at(g, i);
      g->stats.gave_up++;
      gave_up = true;
      continue;
    }
    out[n++] = (uint16_t)(en->seq & 0xffff);
    en->retries++;
    en->sent_ms = now_ms;
    g->stats.nacks++;
  }
  trim(g);
  if (gave_up) {
    MF_LOG_DEBUG("gave up on missing packets after %u NACKs", g->cfg.max_retries);
  }
  if (keyframe_needed) {
    *keyframe_needed = gave_up;
  }
  return n;
}

void mf_nack_generator_get_stats(const mf_nack_generator_t *g, mf_nack_generator_stats_t *out) {
  *out = g->stats;
  out->missing = g->active;
}
