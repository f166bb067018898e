/* Retransmission buffer; see rtx_store.h for the contract.
 *
 * The window [start_seq, start_seq + len) maps onto `slots` (slots_n of them) as a ring
 * starting at start_idx. Invariants: len <= slots_n <= capacity; when len > 0 the first and
 * last slots of the window hold a packet; every slot outside the window is empty.
 * Positions are computed relative to the NEWEST seq, so a window of up to 32768 seqs is
 * never ambiguous. */
#include "node/rtx_store.h"

#include <stdlib.h>

#include "node/rtp/rtp.h"

typedef struct {
  mf_buf_t *buf; /* NULL: empty */
  uint32_t ts;
  uint32_t aux;
  uint32_t resends;
  uint64_t stored_ms;
  uint64_t resent_ms;
} slot_t;

struct mf_rtx_store {
  uint32_t capacity; /* the window's limit */
  uint32_t max_age_ms;
  slot_t *slots;
  uint32_t slots_n; /* allocated, grown by doubling up to capacity */
  uint16_t start_seq;
  uint32_t start_idx;
  uint32_t len;
  mf_rtx_store_stats_t stats;
};

mf_err_t mf_rtx_store_create(uint32_t capacity, uint32_t max_age_ms, mf_rtx_store_t **out) {
  if (!out || max_age_ms == 0 || capacity > MF_RTX_STORE_MAX_CAPACITY) {
    return MF_ERR_INVALID_ARG;
  }
  if (capacity == 0) {
    capacity = MF_RTX_STORE_DEFAULT_CAPACITY;
  }
  mf_rtx_store_t *s = calloc(1, sizeof(*s));
  if (!s) {
    return MF_ERR_NO_MEMORY;
  }
  s->slots_n = capacity < MF_RTX_STORE_INITIAL_SLOTS ? capacity : MF_RTX_STORE_INITIAL_SLOTS;
  s->slots = calloc(s->slots_n, sizeof(*s->slots));
  if (!s->slots) {
    free(s);
    return MF_ERR_NO_MEMORY;
  }
  s->capacity = capacity;
  s->max_age_ms = max_age_ms;
  s->stats.capacity = capacity;
  s->stats.max_age_ms = max_age_ms;
  *out = s;
  return MF_OK;
}

static void empty_window(mf_rtx_store_t *s, uint64_t *counter) {
  for (uint32_t i = 0; i < s->len; i++) {
    slot_t *sl = &s->slots[(s->start_idx + i) % s->slots_n];
    if (sl->buf) {
      mf_buf_unref(sl->buf);
      sl->buf = NULL;
      (*counter)++;
    }
  }
  s->stats.stored = 0;
  s->len = 0;
  s->start_idx = 0;
}

void mf_rtx_store_clear(mf_rtx_store_t *s) {
  empty_window(s, &s->stats.cleared);
}

void mf_rtx_store_destroy(mf_rtx_store_t *s) {
  if (!s) {
    return;
  }
  mf_rtx_store_clear(s);
  free(s->slots);
  free(s);
}

static bool too_old(const mf_rtx_store_t *s, const slot_t *sl, uint64_t now_ms) {
  return now_ms > sl->stored_ms && now_ms - sl->stored_ms > s->max_age_ms;
}

static void drop_slot(mf_rtx_store_t *s, slot_t *sl) {
  mf_buf_unref(sl->buf);
  sl->buf = NULL;
  s->stats.stored--;
}

/* Removes the first slot of the window (evicting its packet if any), then any empty slots
 * after it so the window again starts with a packet. */
static void pop_front(mf_rtx_store_t *s, uint64_t *counter) {
  slot_t *sl = &s->slots[s->start_idx];
  if (sl->buf) {
    drop_slot(s, sl);
    (*counter)++;
  }
  do {
    s->start_idx = (s->start_idx + 1) % s->slots_n;
    s->start_seq++;
    s->len--;
  } while (s->len > 0 && !s->slots[s->start_idx].buf);
}

/* Makes room for a window of `needed` slots (<= capacity): the ring doubles, the window
 * moving to its start in order. False when out of memory (the ring stays as it was). */
static bool grow(mf_rtx_store_t *s, uint32_t needed) {
  if (needed <= s->slots_n) return true;
  uint32_t n = s->slots_n;
  while (n < needed) n *= 2;
  if (n > s->capacity) n = s->capacity;
  slot_t *slots = calloc(n, sizeof *slots);
  if (!slots) return false;
  for (uint32_t i = 0; i < s->len; i++) slots[i] = s->slots[(s->start_idx + i) % s->slots_n];
  free(s->slots);
  s->slots = slots;
  s->slots_n = n;
  s->start_idx = 0;
  s->stats.grown++;
  return true;
}

static void evict_aged(mf_rtx_store_t *s, uint64_t now_ms) {
  while (s->len > 0 && too_old(s, &s->slots[s->start_idx], now_ms)) {
    pop_front(s, &s->stats.evicted_age);
  }
}

static void put(mf_rtx_store_t *s, slot_t *sl, mf_buf_t *buf, uint32_t ts, uint32_t aux,
                uint64_t now_ms) {
  mf_buf_ref(buf);
  sl->buf = buf;
  sl->ts = ts;
  sl->aux = aux;
  sl->resends = 0;
  sl->stored_ms = now_ms;
  sl->resent_ms = 0;
  s->stats.stored++;
  s->stats.inserted++;
}

bool mf_rtx_store_insert(mf_rtx_store_t *s, mf_buf_t *buf, uint16_t seq, uint32_t ts,
                         uint32_t aux, uint64_t now_ms) {
  evict_aged(s, now_ms);
  if (s->len == 0) {
    s->start_seq = seq;
    s->start_idx = 0;
    s->len = 1;
    put(s, &s->slots[0], buf, ts, aux, now_ms);
    return true;
  }
  uint16_t newest = (uint16_t)(s->start_seq + s->len - 1);
  int32_t dn = mf_rtp_seq_diff(seq, newest);
  if (dn > 0) {
    if ((uint32_t)dn >= s->capacity) {
      /* Nothing stored can share a window with seq: all of it is pushed out. */
      empty_window(s, &s->stats.evicted_full);
      s->start_seq = seq;
      s->len = 1;
      put(s, &s->slots[0], buf, ts, aux, now_ms);
      return true;
    }
    /* Make room so that the window [start, seq] fits: more slots while the window may
     * grow, else (or without memory) the oldest go. */
    uint32_t needed = s->len + (uint32_t)dn;
    (void)grow(s, needed < s->capacity ? needed : s->capacity);
    while (s->len + (uint32_t)dn > s->slots_n) {
      pop_front(s, &s->stats.evicted_full);
    }
    if (s->len == 0) {
      s->start_seq = seq;
      s->start_idx = 0;
      s->len = 1;
      put(s, &s->slots[0], buf, ts, aux, now_ms);
      return true;
    }
    s->len += (uint32_t)dn;
    put(s, &s->slots[(s->start_idx + s->len - 1) % s->slots_n], buf, ts, aux, now_ms);
    return true;
  }
  if (dn < 0 && mf_rtp_ts_newer(ts, s->slots[(s->start_idx + s->len - 1) % s->slots_n].ts)) {
    /* Lower seq but newer timestamp than the newest packet: the sequence restarted (or
     * jumped by more than half the seq space). mediasoup empties the buffer here too. */
    mf_rtx_store_clear(s);
    s->start_seq = seq;
    s->len = 1;
    put(s, &s->slots[0], buf, ts, aux, now_ms);
    return true;
  }
  int64_t off = (int64_t)s->len - 1 + dn; /* position from the window start */
  if (off >= 0) {
    slot_t *sl = &s->slots[(s->start_idx + (uint32_t)off) % s->slots_n];
    if (sl->buf) {
      if (sl->ts == ts) {
        s->stats.rejected++;
        return false;
      }
      drop_slot(s, sl);
    }
    put(s, sl, buf, ts, aux, now_ms);
    return true;
  }
  /* Older than the window start: extend backwards if the window still fits. */
  uint32_t extra = (uint32_t)(-off);
  if (s->len + extra > s->capacity || !grow(s, s->len + extra)) {
    s->stats.rejected++;
    return false;
  }
  s->start_idx = (s->start_idx + s->slots_n - extra) % s->slots_n;
  s->start_seq = seq;
  s->len += extra;
  put(s, &s->slots[s->start_idx], buf, ts, aux, now_ms);
  return true;
}

static slot_t *lookup(mf_rtx_store_t *s, uint16_t seq, uint64_t now_ms) {
  if (s->len == 0) {
    return NULL;
  }
  uint16_t newest = (uint16_t)(s->start_seq + s->len - 1);
  int32_t dn = mf_rtp_seq_diff(seq, newest);
  int64_t off = (int64_t)s->len - 1 + dn;
  if (dn > 0 || off < 0) {
    return NULL;
  }
  slot_t *sl = &s->slots[(s->start_idx + (uint32_t)off) % s->slots_n];
  if (!sl->buf || too_old(s, sl, now_ms)) {
    return NULL;
  }
  return sl;
}

mf_buf_t *mf_rtx_store_get(mf_rtx_store_t *s, uint16_t seq, uint64_t now_ms) {
  slot_t *sl = lookup(s, seq, now_ms);
  if (!sl) {
    s->stats.misses++;
    return NULL;
  }
  s->stats.hits++;
  return sl->buf;
}

mf_rtx_resend_result_t mf_rtx_store_resend(mf_rtx_store_t *s, uint16_t seq, uint64_t now_ms,
                                           uint32_t rtt_ms, mf_rtx_item_t *item) {
  slot_t *sl = lookup(s, seq, now_ms);
  if (!sl) {
    s->stats.misses++;
    return MF_RTX_RESEND_MISSING;
  }
  uint64_t interval = rtt_ms ? rtt_ms : MF_RTX_STORE_DEFAULT_RTT_MS;
  if (sl->resends > 0 && (now_ms <= sl->resent_ms || now_ms - sl->resent_ms <= interval)) {
    s->stats.throttled++;
    return MF_RTX_RESEND_THROTTLED;
  }
  sl->resends++;
  sl->resent_ms = now_ms;
  s->stats.hits++;
  if (item) {
    item->buf = sl->buf;
    item->seq = seq;
    item->ts = sl->ts;
    item->aux = sl->aux;
    item->stored_ms = sl->stored_ms;
    item->resends = sl->resends;
  }
  return MF_RTX_RESEND_OK;
}

void mf_rtx_store_get_stats(const mf_rtx_store_t *s, mf_rtx_store_stats_t *out) {
  *out = s->stats;
}
