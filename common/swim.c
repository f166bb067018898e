#define MF_LOG_MODULE "swim"
#include "common/swim.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/swim_codec.h"

#define GOSSIP_MULT 3           /* λ: each update goes out λ·ceil(log2(n+1)) times */
#define SUSPECT_MULT 4          /* suspicion max = 4 · probe interval · ceil(log2(n+1)) */
#define SUSPECT_CONFIRMATIONS 3 /* Lifeguard's K: confirmations that bring it to the min */
#define MAX_SUSPECTERS (SUSPECT_CONFIRMATIONS + 1) /* the first suspecter + K */
/* A refutation is pushed at once to up to REFUTE_FANOUT live members, REFUTE_PUSHES times
 * one ack timeout apart (see swim.h: under 30% loss, waiting for our next probe round and
 * piggybacking lost the race against confirmed suspicion timeouts). */
#define REFUTE_FANOUT 8
#define REFUTE_PUSHES 3
#define MAX_MEMBERS 4096        /* forged ids cannot grow the table without bound */
#define MAX_INDIRECT 16         /* upper bound for config.indirect_probes */
#define RELAY_SLOTS 16          /* PING_REQs relayed at the same time */
#define SYNC_REPEAT_ROUNDS 4    /* at most one SYNC to the same member per this many probe
                                   intervals (rejoins, push-pull answers) */

typedef struct member {
  char id[MF_SWIM_ID_MAX + 1];
  char address[MF_SWIM_ADDRESS_MAX + 1];
  uint64_t incarnation;
  mf_swim_status_t status;
  uint64_t status_since_ms; /* suspicion start, time of death */
  uint8_t meta[MF_SWIM_META_MAX];
  size_t meta_len;
  bool is_self;
  bool announced; /* on_change has reported it (never for one only ever known dead) */
  /* Suspicion: who raised or confirmed it, so repeats do not count twice and every
   * confirmation can be passed on (a record carries one suspecter id per copy). */
  char suspecters[MAX_SUSPECTERS][MF_SWIM_ID_MAX + 1];
  unsigned n_suspecters;
  unsigned suspect_rr; /* rotates the suspecter named in copies we relay */
  bool suspicion_probed; /* we have probed it since this suspicion started */
  bool suspicion_told;   /* it has been sent this suspicion (our probe or a buddy PING) */
  /* Dissemination queue, one slot per member: its current record is what we gossip. */
  bool gossip_pending;
  uint32_t gossip_sent;
  uint64_t gossip_order; /* larger = enqueued later = newer */
  bool synced;
  uint64_t last_sync_ms;
} member_t;

typedef struct {
  bool used;
  uint64_t seq;        /* our PING to the target */
  uint64_t origin_seq; /* the requester's probe, echoed in the relayed ACK */
  char origin[MF_SWIM_ADDRESS_MAX + 1];
  uint64_t expires_ms;
} relay_t;

struct mf_swim {
  void (*send)(void *ud, const char *address, const uint8_t *data, size_t len);
  void (*on_change)(void *ud, const mf_swim_member_t *m, mf_swim_status_t old_status,
                    bool is_new);
  void *ud;
  uint32_t probe_interval_ms, ack_timeout_ms, indirect_probes, suspect_min_ms,
      dead_retention_ms, sync_interval_ms;
  uint64_t rng;
  uint64_t next_sync_ms;

  member_t **members; /* members[0] is self; the others in no particular order */
  size_t n_members, cap;
  member_t **order; /* probe order (self excluded), capacity cap */
  size_t n_order, order_pos;
  member_t **scratch; /* capacity cap */

  /* The current probe round. */
  bool probing, probe_acked, probe_indirect_sent;
  member_t *probe_target;
  uint64_t probe_seq, ack_deadline_ms, next_round_ms;

  uint64_t seq;
  uint64_t gossip_counter;
  relay_t relays[RELAY_SLOTS];
  char seeds[MF_SWIM_MAX_SEEDS][MF_SWIM_ADDRESS_MAX + 1];
  size_t n_seeds;
  uint32_t health;
  bool left;
  bool refute_due;            /* set while applying updates; pushed once they are applied */
  unsigned refute_pushes_left;
  uint64_t next_refute_push_ms;
  mf_swim_stats_t stats;

  /* Large per-packet state lives here, not on the stack. */
  mf_swim_packet_t rx;
  mf_swim_encoder_t enc;
  uint8_t tx_buf[MF_SWIM_PACKET_MAX];
  mf_swim_arena_t arena;
};

/* ---- small helpers -------------------------------------------------------------------- */

static uint64_t rng_next(mf_swim_t *s) { /* splitmix64 */
  uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static size_t rng_below(mf_swim_t *s, size_t n) { return n ? (size_t)(rng_next(s) % n) : 0; }

static uint32_t ceil_log2(uint64_t x) {
  uint32_t k = 0;
  while (k < 63 && ((uint64_t)1 << k) < x) k++;
  return k;
}

static void copy_str(char *dst, size_t cap, const char *src) {
  size_t n = strlen(src);
  if (n >= cap) n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

static bool is_live(const member_t *m) {
  return m->status == MF_SWIM_ALIVE || m->status == MF_SWIM_SUSPECT;
}

static member_t *find(const mf_swim_t *s, const char *id) {
  for (size_t i = 0; i < s->n_members; i++)
    if (strcmp(s->members[i]->id, id) == 0) return s->members[i];
  return NULL;
}

static size_t live_count(const mf_swim_t *s) { /* self included */
  size_t n = 0;
  for (size_t i = 0; i < s->n_members; i++) n += is_live(s->members[i]);
  return n;
}

static size_t live_others(const mf_swim_t *s) {
  size_t n = 0;
  for (size_t i = 1; i < s->n_members; i++) n += is_live(s->members[i]);
  return n;
}

static uint32_t gossip_limit(const mf_swim_t *s) {
  return GOSSIP_MULT * ceil_log2((uint64_t)s->n_members + 1);
}

/* Lifeguard: start at the max and move toward the min as independent suspecters confirm;
 * log(c+1)/log(K+1) for K = 3, in thousandths, keeps this integer-only. */
static uint64_t suspicion_timeout(const mf_swim_t *s, const member_t *m, size_t live) {
  static const uint32_t frac_permille[SUSPECT_CONFIRMATIONS + 1] = {0, 500, 792, 1000};
  uint64_t min = s->suspect_min_ms;
  uint64_t max = (uint64_t)SUSPECT_MULT * s->probe_interval_ms * ceil_log2((uint64_t)live + 1);
  if (max < min) max = min;
  unsigned c = m->n_suspecters > 0 ? m->n_suspecters - 1 : 0;
  if (c > SUSPECT_CONFIRMATIONS) c = SUSPECT_CONFIRMATIONS;
  return max - (max - min) * frac_permille[c] / 1000;
}

static void health_up(mf_swim_t *s) {
  if (s->health < MF_SWIM_LHM_MAX) s->health++;
}

static void health_down(mf_swim_t *s) {
  if (s->health > 0) s->health--;
}

static void to_view(const member_t *m, mf_swim_member_t *out) {
  out->id = m->id;
  out->address = m->address;
  out->incarnation = m->incarnation;
  out->status = m->status;
  out->meta = m->meta_len ? m->meta : NULL;
  out->meta_len = m->meta_len;
}

static int suspecter_index(const member_t *m, const char *id) {
  for (unsigned i = 0; i < m->n_suspecters; i++)
    if (strcmp(m->suspecters[i], id) == 0) return (int)i;
  return -1;
}

/* Which of m's suspecters a copy of its SUSPECT record names. A record carries one id, and
 * the gossip queue holds one record per member, so naming simply the latest suspecter lost
 * confirmations: two members that suspected at the same time each overwrote their own id
 * with the other's as soon as they heard it, and neither ever told the other of its own
 * failed probe (the first suspecter then ran the unconfirmed timeout). So: our own
 * confirmation first (only we can spread it), never the recipient's own (it knows), and
 * otherwise the suspecters in turn, so a relay passes every one of them on. */
static const char *suspect_from_for(member_t *m, const char *self_id, const member_t *recipient) {
  if (m->n_suspecters == 0) return "";
  int self = suspecter_index(m, self_id);
  if (self >= 0) return m->suspecters[self];
  const char *skip = recipient ? recipient->id : "";
  for (unsigned k = 0; k < m->n_suspecters; k++) {
    const char *id = m->suspecters[m->suspect_rr++ % m->n_suspecters];
    if (strcmp(id, skip) != 0) return id;
  }
  return m->suspecters[0];
}

/* recipient (may be NULL) picks the suspecter a SUSPECT record names; see above. */
static void to_wire(const mf_swim_t *s, member_t *m, const member_t *recipient,
                    mf_swim_wire_member_t *w) {
  w->id = m->id;
  w->address = m->address;
  w->incarnation = m->incarnation;
  w->status = m->status;
  w->meta = m->meta_len ? m->meta : NULL;
  w->meta_len = m->meta_len;
  w->suspect_from = m->status == MF_SWIM_SUSPECT
                        ? suspect_from_for(m, s->members[0]->id, recipient)
                        : "";
}

const char *mf_swim_status_name(mf_swim_status_t status) {
  switch (status) {
    case MF_SWIM_ALIVE: return "alive";
    case MF_SWIM_SUSPECT: return "suspect";
    case MF_SWIM_DEAD: return "dead";
    case MF_SWIM_LEFT: return "left";
  }
  return "unknown";
}

/* ---- membership table ------------------------------------------------------------------ */

static bool grow(mf_swim_t *s) {
  size_t cap = s->cap ? s->cap * 2 : 16;
  member_t **a = realloc(s->members, cap * sizeof *a);
  if (!a) return false;
  s->members = a;
  a = realloc(s->order, cap * sizeof *a);
  if (!a) return false;
  s->order = a;
  a = realloc(s->scratch, cap * sizeof *a);
  if (!a) return false;
  s->scratch = a;
  s->cap = cap;
  return true;
}

static void take_record(member_t *m, const mf_swim_wire_member_t *u) {
  copy_str(m->address, sizeof m->address, u->address);
  m->incarnation = u->incarnation;
  m->meta_len = u->meta_len;
  if (u->meta_len) memcpy(m->meta, u->meta, u->meta_len);
}

static member_t *add_member(mf_swim_t *s, const mf_swim_wire_member_t *u, uint64_t now) {
  if (s->n_members >= MAX_MEMBERS) return NULL;
  if (s->n_members == s->cap && !grow(s)) return NULL;
  member_t *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  copy_str(m->id, sizeof m->id, u->id);
  take_record(m, u);
  m->status = u->status;
  m->status_since_ms = now;
  s->members[s->n_members++] = m;
  if (s->n_members > 1) { /* everyone but self (the first member) is probed */
    /* A random slot of the current pass, so a newcomer is probed neither first nor last
     * by everyone at once. */
    size_t pos = rng_below(s, s->n_order + 1);
    memmove(&s->order[pos + 1], &s->order[pos], (s->n_order - pos) * sizeof *s->order);
    s->order[pos] = m;
    s->n_order++;
    if (pos < s->order_pos) s->order_pos++;
  }
  return m;
}

static void remove_member(mf_swim_t *s, size_t idx) {
  member_t *m = s->members[idx];
  s->members[idx] = s->members[--s->n_members];
  for (size_t i = 0; i < s->n_order; i++) {
    if (s->order[i] != m) continue;
    memmove(&s->order[i], &s->order[i + 1], (s->n_order - i - 1) * sizeof *s->order);
    s->n_order--;
    if (i < s->order_pos) s->order_pos--;
    break;
  }
  if (s->probe_target == m) s->probe_target = NULL;
  free(m);
}

/* Puts m's current record at the front of the dissemination queue. */
static void enqueue(mf_swim_t *s, member_t *m) {
  if (m->is_self) return; /* our own record rides in every packet header */
  m->gossip_pending = true;
  m->gossip_sent = 0;
  m->gossip_order = ++s->gossip_counter;
}

static void change_status(member_t *m, mf_swim_status_t status, uint64_t now) {
  m->status = status;
  m->status_since_ms = now;
  if (status != MF_SWIM_SUSPECT) {
    m->n_suspecters = 0;
    m->suspect_rr = 0;
  }
}

static bool add_suspecter(member_t *m, const char *from) {
  if (!from || !from[0] || m->n_suspecters >= MAX_SUSPECTERS) return false;
  if (suspecter_index(m, from) >= 0) return false;
  copy_str(m->suspecters[m->n_suspecters++], sizeof m->suspecters[0], from);
  return true;
}

static void start_suspicion(member_t *m, const char *from, uint64_t now) {
  change_status(m, MF_SWIM_SUSPECT, now);
  m->n_suspecters = 0;
  m->suspect_rr = 0;
  m->suspicion_probed = false;
  m->suspicion_told = false;
  add_suspecter(m, from);
}

static void report(mf_swim_t *s, member_t *m, mf_swim_status_t old) {
  if (m->is_self) return;
  bool is_new = !m->announced;
  if (is_new) {
    if (!is_live(m)) return; /* never seen alive: nothing to tell */
    m->announced = true;
    old = m->status;
  }
  if (is_new)
    MF_LOG_INFO("member %s (%s) joined as %s, incarnation %llu", m->id, m->address,
                mf_swim_status_name(m->status), (unsigned long long)m->incarnation);
  else if (old != m->status)
    MF_LOG_INFO("member %s (%s) %s -> %s, incarnation %llu", m->id, m->address,
                mf_swim_status_name(old), mf_swim_status_name(m->status),
                (unsigned long long)m->incarnation);
  if (!s->on_change) return;
  mf_swim_member_t v;
  to_view(m, &v);
  s->on_change(s->ud, &v, old, is_new);
}

/* ---- sending --------------------------------------------------------------------------- */

static void transmit(mf_swim_t *s, const char *to) {
  size_t len = mf_swim_encoder_finish(&s->enc, s->tx_buf);
  if (len == 0) return;
  s->stats.tx++;
  s->send(s->ud, to, s->tx_buf, len);
}

static void count_sent(member_t *m, uint32_t limit) {
  if (!m->gossip_pending) return;
  if (++m->gossip_sent >= limit) m->gossip_pending = false;
}

/* Least-sent first, so fresh news overtakes updates that already went out; then newest. */
static int gossip_cmp(const void *a, const void *b) {
  const member_t *x = *(member_t *const *)a, *y = *(member_t *const *)b;
  if (x->gossip_sent != y->gossip_sent) return x->gossip_sent < y->gossip_sent ? -1 : 1;
  if (x->gossip_order != y->gossip_order) return x->gossip_order > y->gossip_order ? -1 : 1;
  return 0;
}

/* Fills the rest of the packet from the dissemination queue, `added` excepted (already in
 * it). The recipient's own record is left out while it is ALIVE (it knows), kept when not
 * (so it can refute). */
static void add_piggyback(mf_swim_t *s, const member_t *added, const member_t *recipient) {
  size_t n = 0;
  for (size_t i = 1; i < s->n_members; i++)
    if (s->members[i]->gossip_pending) s->scratch[n++] = s->members[i];
  if (n == 0) return;
  qsort(s->scratch, n, sizeof *s->scratch, gossip_cmp);
  uint32_t limit = gossip_limit(s);
  for (size_t i = 0; i < n && mf_swim_encoder_count(&s->enc) < MF_SWIM_CODEC_MAX_UPDATES; i++) {
    member_t *m = s->scratch[i];
    if (m == added || (m == recipient && m->status == MF_SWIM_ALIVE)) continue;
    mf_swim_wire_member_t w;
    to_wire(s, m, recipient, &w);
    if (mf_swim_encoder_add(&s->enc, &w)) count_sent(m, limit);
  }
}

static void begin_packet(mf_swim_t *s, mf_swim_packet_type_t type, uint64_t seq,
                         const char *target_id, const char *target_address) {
  mf_swim_wire_member_t self;
  to_wire(s, s->members[0], NULL, &self);
  mf_swim_encoder_init(&s->enc, type, &self, seq, target_id, target_address);
}

/* One PING / PING_REQ / ACK with piggybacked gossip. `first` goes before the queue (the
 * suspicion a PING carries to a SUSPECT target); `recipient` may be NULL. */
static void send_packet(mf_swim_t *s, mf_swim_packet_type_t type, const char *to, uint64_t seq,
                        const char *target_id, const char *target_address, member_t *first,
                        const member_t *recipient) {
  begin_packet(s, type, seq, target_id, target_address);
  if (first) {
    mf_swim_wire_member_t w;
    to_wire(s, first, recipient, &w);
    if (mf_swim_encoder_add(&s->enc, &w)) count_sent(first, gossip_limit(s));
  }
  add_piggyback(s, first, recipient);
  transmit(s, to);
}

static bool synced_recently(const mf_swim_t *s, const member_t *m, uint64_t now) {
  return m->synced && now - m->last_sync_ms < (uint64_t)SYNC_REPEAT_ROUNDS * s->probe_interval_ms;
}

/* Our whole table, in as many packets as it takes; want_sync asks for theirs back. */
static void send_sync(mf_swim_t *s, member_t *to, bool want_sync, uint64_t now) {
  to->synced = true;
  to->last_sync_ms = now;
  s->stats.syncs_sent++;
  size_t i = 1;
  bool first = true;
  while (i < s->n_members) {
    begin_packet(s, MF_SWIM_PACKET_SYNC, 0, NULL, NULL);
    if (first && want_sync) mf_swim_encoder_want_sync(&s->enc);
    first = false;
    for (; i < s->n_members; i++) {
      mf_swim_wire_member_t w;
      to_wire(s, s->members[i], to, &w);
      if (!mf_swim_encoder_add(&s->enc, &w)) break;
    }
    if (mf_swim_encoder_count(&s->enc) == 0) { /* cannot happen: one record always fits */
      i++;
      continue;
    }
    transmit(s, to->address);
  }
}

/* ---- applying updates ------------------------------------------------------------------ */

/* Someone talks about us. Refute anything that is not ALIVE at an incarnation we have not
 * passed, and outgrow an ALIVE of a higher one (our own record from before a restart). */
static void consider_self(mf_swim_t *s, const mf_swim_wire_member_t *u) {
  member_t *self = s->members[0];
  if (s->left) return;
  bool accused = u->status != MF_SWIM_ALIVE;
  if (accused ? u->incarnation < self->incarnation : u->incarnation <= self->incarnation)
    return;
  if (u->incarnation == UINT64_MAX) return; /* cannot go above it; only a forger gets here */
  self->incarnation = u->incarnation + 1;
  if (accused) {
    s->stats.suspects_refuted++;
    s->refute_due = true;
    health_up(s); /* being suspected hints that we are the slow one (Lifeguard) */
    MF_LOG_DEBUG("refuting %s about us: incarnation now %llu", mf_swim_status_name(u->status),
                 (unsigned long long)self->incarnation);
  }
}

static bool meta_differs(const member_t *m, const mf_swim_wire_member_t *u) {
  return m->meta_len != u->meta_len || (u->meta_len && memcmp(m->meta, u->meta, u->meta_len));
}

/* SWIM precedence (see swim.h). gossip=false for SYNC contents: applied, not re-spread. */
static void apply_update(mf_swim_t *s, const mf_swim_wire_member_t *u, uint64_t now,
                         bool gossip) {
  member_t *m = find(s, u->id);
  if (m && m->is_self) {
    consider_self(s, u);
    return;
  }
  if (!m) {
    m = add_member(s, u, now);
    if (!m) {
      MF_LOG_DEBUG("member table full (%zu): ignoring %s", s->n_members, u->id);
      return;
    }
    if (u->status == MF_SWIM_SUSPECT) add_suspecter(m, u->suspect_from);
    if (gossip) enqueue(s, m);
    report(s, m, u->status);
    return;
  }
  uint64_t i = u->incarnation, j = m->incarnation;
  mf_swim_status_t old = m->status;
  bool meta_changed = false;
  switch (u->status) {
    case MF_SWIM_ALIVE:
      if (i <= j) return;
      meta_changed = meta_differs(m, u);
      take_record(m, u);
      if (old != MF_SWIM_ALIVE) change_status(m, MF_SWIM_ALIVE, now);
      if (old != MF_SWIM_ALIVE || meta_changed || !m->announced) report(s, m, old);
      break;
    case MF_SWIM_SUSPECT:
      if (old == MF_SWIM_DEAD || old == MF_SWIM_LEFT) return;
      if ((old == MF_SWIM_ALIVE && i >= j) || (old == MF_SWIM_SUSPECT && i > j)) {
        meta_changed = i > j && meta_differs(m, u);
        if (i > j) take_record(m, u);
        start_suspicion(m, u->suspect_from, now);
        if (old != MF_SWIM_SUSPECT || meta_changed) report(s, m, old);
      } else if (old == MF_SWIM_SUSPECT && i == j) {
        /* An independent confirmation shortens the timeout; spread it so others count it
         * too. Repeats of a known suspecter change nothing. */
        if (!add_suspecter(m, u->suspect_from)) return;
      } else {
        return;
      }
      break;
    case MF_SWIM_DEAD:
      if (is_live(m) ? i < j : i <= j) return;
      if (i > j) take_record(m, u);
      change_status(m, MF_SWIM_DEAD, now);
      if (old != MF_SWIM_DEAD) report(s, m, old);
      break;
    case MF_SWIM_LEFT:
      if (old == MF_SWIM_LEFT ? i <= j : i < j) return;
      if (i > j) take_record(m, u);
      change_status(m, MF_SWIM_LEFT, now);
      if (old != MF_SWIM_LEFT) report(s, m, old);
      break;
  }
  if (gossip) enqueue(s, m);
}

/* ---- receiving --------------------------------------------------------------------------- */

static void on_ping_req(mf_swim_t *s, const mf_swim_packet_t *p, const member_t *sender,
                        uint64_t now) {
  if (strcmp(p->target_id, s->members[0]->id) == 0) { /* we are the target: answer directly */
    send_packet(s, MF_SWIM_PACKET_ACK, p->sender.address, p->seq, NULL, NULL, NULL, sender);
    return;
  }
  /* Relay only to a member we know at that address: a forged PING_REQ must not turn us
   * into a reflector that sends (piggyback-laden) PINGs wherever it likes. A target that
   * is too new for us to know yet costs the requester one of its k helpers. */
  member_t *t = find(s, p->target_id);
  if (!t || !is_live(t) || strcmp(t->address, p->target_address) != 0) return;
  relay_t *r = &s->relays[0];
  for (size_t i = 0; i < RELAY_SLOTS; i++) {
    relay_t *c = &s->relays[i];
    if (!c->used || c->expires_ms <= now) {
      r = c;
      break;
    }
    if (c->expires_ms < r->expires_ms) r = c; /* all busy: reuse the oldest */
  }
  r->used = true;
  r->seq = ++s->seq;
  r->origin_seq = p->seq;
  copy_str(r->origin, sizeof r->origin, p->sender.address);
  r->expires_ms = now + s->probe_interval_ms;
  s->stats.relays++;
  send_packet(s, MF_SWIM_PACKET_PING, t->address, r->seq, t->id, NULL,
              t->status == MF_SWIM_SUSPECT ? t : NULL, t);
}

static void on_ack(mf_swim_t *s, const mf_swim_packet_t *p, uint64_t now) {
  if (s->probing && !s->probe_acked && p->seq == s->probe_seq) {
    s->probe_acked = true;
    health_down(s);
    return;
  }
  for (size_t i = 0; i < RELAY_SLOTS; i++) {
    relay_t *r = &s->relays[i];
    if (!r->used || r->seq != p->seq) continue;
    r->used = false;
    if (r->expires_ms > now)
      send_packet(s, MF_SWIM_PACKET_ACK, r->origin, r->origin_seq, NULL, NULL, NULL, NULL);
    return;
  }
  /* Late, or the answer to a join ping: its header has done its work already. */
}

/* Lifeguard's buddy system, at once: a member we have just started to suspect gets a PING
 * carrying the suspicion now, not only at our next round, which local health may have
 * stretched to seconds (for a suspicion we raised, that round's probe is a second copy:
 * under loss one copy is not enough). It refutes before it answers, so its ACK brings us
 * the refutation too. */
static void tell_new_suspects(mf_swim_t *s) {
  for (size_t i = 1; i < s->n_members; i++) {
    member_t *m = s->members[i];
    if (m->status != MF_SWIM_SUSPECT || m->suspicion_told) continue;
    m->suspicion_told = true;
    s->stats.suspicion_pings++;
    send_packet(s, MF_SWIM_PACKET_PING, m->address, ++s->seq, m->id, NULL, m, m);
  }
}

/* Our refutation rides in the header of every packet we send, but we may send little: a
 * suspected member is often the one whose probe rounds local health has slowed. So push it
 * now to up to REFUTE_FANOUT live members (all of a small cluster) as PINGs: their ACKs
 * are a second chance for each to hear of it. Repeated REFUTE_PUSHES times, one ack
 * timeout apart, because one copy is lost as easily as a gossip one. */
static void push_refutation(mf_swim_t *s, uint64_t now) {
  if (s->left) s->refute_pushes_left = 0; /* gone: nothing to refute (and no deadline left) */
  if (s->refute_pushes_left == 0) return;
  s->refute_pushes_left--;
  s->next_refute_push_ms = now + s->ack_timeout_ms;
  member_t *to[REFUTE_FANOUT];
  size_t n = 0, seen = 0;
  for (size_t i = 1; i < s->n_members; i++) { /* reservoir sample of the live members */
    member_t *m = s->members[i];
    if (!is_live(m)) continue;
    if (n < REFUTE_FANOUT) {
      to[n++] = m;
    } else {
      size_t r = rng_below(s, seen + 1);
      if (r < REFUTE_FANOUT) to[r] = m;
    }
    seen++;
  }
  for (size_t i = 0; i < n; i++) {
    s->stats.refutation_pushes++;
    send_packet(s, MF_SWIM_PACKET_PING, to[i]->address, ++s->seq, to[i]->id, NULL, NULL, to[i]);
  }
}

static void process(mf_swim_t *s, const mf_swim_packet_t *p, uint64_t now) {
  const mf_swim_wire_member_t *hdr = &p->sender;
  member_t *m = find(s, hdr->id);
  /* SYNC whoever contacts us while unknown to us, or while we hold it dead (a rejoin after
   * a restart starts from an empty table). */
  bool sync = hdr->status == MF_SWIM_ALIVE && (!m || (!is_live(m) && !synced_recently(s, m, now)));
  apply_update(s, hdr, now, true);
  m = find(s, hdr->id);
  /* It believes itself alive but we do not: our answer must carry our view so it can
   * refute (or learn that it was declared dead and rejoin). */
  if (m && hdr->status == MF_SWIM_ALIVE && m->status != MF_SWIM_ALIVE) enqueue(s, m);

  bool gossip = p->type != MF_SWIM_PACKET_SYNC;
  for (size_t i = 0; i < p->n_updates; i++) apply_update(s, &p->updates[i], now, gossip);

  switch (p->type) {
    case MF_SWIM_PACKET_PING:
      /* A PING for a former holder of this address gets no answer, so its prober sees the
       * old member fail instead of being fooled by us. */
      if (p->target_id[0] == '\0' || strcmp(p->target_id, s->members[0]->id) == 0)
        send_packet(s, MF_SWIM_PACKET_ACK, hdr->address, p->seq, NULL, NULL, NULL, m);
      break;
    case MF_SWIM_PACKET_PING_REQ: on_ping_req(s, p, m, now); break;
    case MF_SWIM_PACKET_ACK: on_ack(s, p, now); break;
    case MF_SWIM_PACKET_SYNC: break;
  }
  /* Push-pull: answer an anti-entropy SYNC with ours, rate-limited so forged requests
   * cannot turn us into an amplifier. */
  if (p->type == MF_SWIM_PACKET_SYNC && p->want_sync && m && !synced_recently(s, m, now))
    sync = true;
  if (sync && m) send_sync(s, m, false, now);
  tell_new_suspects(s);
  if (s->refute_due) {
    s->refute_due = false;
    s->refute_pushes_left = REFUTE_PUSHES;
    push_refutation(s, now);
  }
}

void mf_swim_receive(mf_swim_t *s, const char *from_address, const uint8_t *data, size_t len,
                     uint64_t now_ms) {
  s->stats.rx++;
  mf_err_t err = mf_swim_codec_decode(&s->arena, data, len, &s->rx);
  /* A packet in our own name is either a misconfigured twin or a forgery: neither may
   * touch our record. */
  if (err == MF_OK && strcmp(s->rx.sender.id, s->members[0]->id) == 0) err = MF_ERR_EXISTS;
  if (err != MF_OK) {
    s->stats.rx_invalid++;
    MF_LOG_DEBUG("dropped %zu-byte packet from %s: %s", len, from_address ? from_address : "?",
                 mf_strerror(err));
    return;
  }
  process(s, &s->rx, now_ms);
}

/* ---- probing ------------------------------------------------------------------------------ */

static void shuffle(mf_swim_t *s, member_t **a, size_t n) {
  for (size_t i = n; i > 1; i--) {
    size_t j = rng_below(s, i);
    member_t *t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
  }
}

/* A member we have just started to suspect is probed in our next round, ahead of the
 * round-robin order: the PING carries the suspicion (buddy system), the member refutes
 * before it answers, and the ACK's header hands us the refutation directly. Without this
 * a holder learns of a refutation only by gossip, and under heavy loss gossip can miss it
 * for longer than a confirmed (shortened) suspicion timeout. */
static member_t *unprobed_suspect(mf_swim_t *s) {
  member_t *best = NULL;
  for (size_t i = 1; i < s->n_members; i++) {
    member_t *m = s->members[i];
    if (m->status == MF_SWIM_SUSPECT && !m->suspicion_probed &&
        (!best || m->status_since_ms < best->status_since_ms))
      best = m;
  }
  return best;
}

static member_t *next_target(mf_swim_t *s) {
  member_t *suspect = unprobed_suspect(s);
  if (suspect) {
    suspect->suspicion_probed = true;
    return suspect;
  }
  for (size_t tries = 0; tries <= s->n_order; tries++) {
    if (s->order_pos >= s->n_order) {
      if (s->n_order == 0) return NULL;
      shuffle(s, s->order, s->n_order);
      s->order_pos = 0;
    }
    member_t *m = s->order[s->order_pos++];
    if (is_live(m)) return m;
  }
  return NULL;
}

static void send_ping_reqs(mf_swim_t *s) {
  s->probe_indirect_sent = true;
  member_t *t = s->probe_target;
  if (!t) return;
  size_t n = 0;
  for (size_t i = 1; i < s->n_members; i++) {
    member_t *m = s->members[i];
    if (m != t && m->status == MF_SWIM_ALIVE) s->scratch[n++] = m;
  }
  /* Choose first: send_packet reuses scratch for the piggyback queue. */
  member_t *helpers[MAX_INDIRECT];
  size_t k = s->indirect_probes < n ? s->indirect_probes : n;
  for (size_t i = 0; i < k; i++) {
    size_t r = i + rng_below(s, n - i);
    helpers[i] = s->scratch[r];
    s->scratch[r] = s->scratch[i];
  }
  for (size_t i = 0; i < k; i++) {
    s->stats.indirect_probes++;
    send_packet(s, MF_SWIM_PACKET_PING_REQ, helpers[i]->address, s->probe_seq, t->id,
                t->address, NULL, helpers[i]);
  }
}

static void end_round(mf_swim_t *s, uint64_t now) {
  if (!s->probing) return;
  s->probing = false;
  if (s->probe_acked) return;
  s->stats.probes_failed++;
  health_up(s);
  member_t *t = s->probe_target;
  if (!t || s->left) return;
  const char *self_id = s->members[0]->id;
  if (t->status == MF_SWIM_ALIVE) {
    start_suspicion(t, self_id, now);
    s->stats.suspects_raised++;
    report(s, t, MF_SWIM_ALIVE);
    enqueue(s, t);
  } else if (t->status == MF_SWIM_SUSPECT && add_suspecter(t, self_id)) {
    enqueue(s, t); /* our independent confirmation */
  }
}

static void start_round(mf_swim_t *s, uint64_t now) {
  uint64_t mult = 1 + (uint64_t)s->health;
  s->next_round_ms = now + s->probe_interval_ms * mult;
  s->probe_target = NULL;
  if (s->n_seeds > 0 && live_others(s) == 0)
    for (size_t i = 0; i < s->n_seeds; i++)
      send_packet(s, MF_SWIM_PACKET_PING, s->seeds[i], ++s->seq, NULL, NULL, NULL, NULL);
  member_t *t = next_target(s);
  if (!t) return;
  s->probing = true;
  s->probe_acked = false;
  s->probe_indirect_sent = false;
  s->probe_target = t;
  s->probe_seq = ++s->seq;
  s->ack_deadline_ms = now + s->ack_timeout_ms * mult;
  s->stats.probes++;
  send_packet(s, MF_SWIM_PACKET_PING, t->address, s->probe_seq, t->id, NULL,
              t->status == MF_SWIM_SUSPECT ? t : NULL, t);
}

/* Suspicion timeouts, then forgetting. A death lowers n and so shortens every other
 * suspicion, possibly one already checked: repeat until nothing more dies, so that
 * mf_swim_next_deadline is always in the future after a tick. */
static void check_members(mf_swim_t *s, uint64_t now) {
  bool died;
  do {
    died = false;
    size_t live = live_count(s);
    for (size_t i = 1; i < s->n_members; i++) {
      member_t *m = s->members[i];
      if (m->status != MF_SWIM_SUSPECT || now < m->status_since_ms + suspicion_timeout(s, m, live))
        continue;
      change_status(m, MF_SWIM_DEAD, now);
      s->stats.deaths++;
      live--;
      died = true;
      report(s, m, MF_SWIM_SUSPECT);
      enqueue(s, m);
    }
  } while (died);
  /* Backwards: removal swaps the last member in. */
  for (size_t i = s->n_members; i-- > 1;) {
    member_t *m = s->members[i];
    if (!is_live(m) && now >= m->status_since_ms + s->dead_retention_ms) remove_member(s, i);
  }
}

/* Anti-entropy (memberlist's push-pull): piggybacked gossip is sent a bounded number of
 * times, so a member that missed every copy (two members joining at once, say) would
 * otherwise wait for a direct probe, or forever if neither knows the other. */
static void periodic_sync(mf_swim_t *s, uint64_t now) {
  s->next_sync_ms = now + s->sync_interval_ms;
  if (s->left) return;
  size_t n = 0;
  for (size_t i = 1; i < s->n_members; i++)
    if (s->members[i]->status == MF_SWIM_ALIVE) n++;
  if (n == 0) return;
  size_t pick = rng_below(s, n);
  for (size_t i = 1; i < s->n_members; i++) {
    member_t *m = s->members[i];
    if (m->status == MF_SWIM_ALIVE && pick-- == 0) {
      send_sync(s, m, true, now);
      return;
    }
  }
}

void mf_swim_tick(mf_swim_t *s, uint64_t now_ms) {
  if (s->probing && !s->probe_acked && !s->probe_indirect_sent && now_ms >= s->ack_deadline_ms)
    send_ping_reqs(s);
  if (now_ms >= s->next_round_ms) {
    end_round(s, now_ms);
    start_round(s, now_ms);
  }
  if (now_ms >= s->next_sync_ms) periodic_sync(s, now_ms);
  if (s->refute_pushes_left && now_ms >= s->next_refute_push_ms) push_refutation(s, now_ms);
  tell_new_suspects(s);
  check_members(s, now_ms);
}

uint64_t mf_swim_next_deadline(const mf_swim_t *s) {
  uint64_t d = s->next_round_ms < s->next_sync_ms ? s->next_round_ms : s->next_sync_ms;
  if (s->refute_pushes_left && s->next_refute_push_ms < d) d = s->next_refute_push_ms;
  if (s->probing && !s->probe_acked && !s->probe_indirect_sent && s->ack_deadline_ms < d)
    d = s->ack_deadline_ms;
  size_t live = live_count(s);
  for (size_t i = 1; i < s->n_members; i++) {
    const member_t *m = s->members[i];
    uint64_t t;
    if (m->status == MF_SWIM_SUSPECT)
      t = m->status_since_ms + suspicion_timeout(s, m, live);
    else if (!is_live(m))
      t = m->status_since_ms + s->dead_retention_ms;
    else
      continue;
    if (t < d) d = t;
  }
  return d;
}

/* ---- lifecycle and API --------------------------------------------------------------------- */

mf_err_t mf_swim_create(const mf_swim_config_t *c, uint64_t now_ms, mf_swim_t **out) {
  if (!c || !out || !c->send || !mf_swim_codec_valid_id(c->self_id) ||
      !mf_swim_codec_parse_address(c->self_address, NULL, NULL) ||
      c->meta_len > MF_SWIM_META_MAX || (c->meta_len && !c->meta) ||
      c->indirect_probes > MAX_INDIRECT)
    return MF_ERR_INVALID_ARG;
  mf_swim_t *s = calloc(1, sizeof *s);
  if (!s) return MF_ERR_NO_MEMORY;
  s->send = c->send;
  s->on_change = c->on_change;
  s->ud = c->ud;
  s->probe_interval_ms = c->probe_interval_ms ? c->probe_interval_ms : MF_SWIM_DEFAULT_PROBE_INTERVAL_MS;
  s->ack_timeout_ms = c->ack_timeout_ms ? c->ack_timeout_ms : MF_SWIM_DEFAULT_ACK_TIMEOUT_MS;
  s->indirect_probes = c->indirect_probes ? c->indirect_probes : MF_SWIM_DEFAULT_INDIRECT_PROBES;
  s->suspect_min_ms = c->suspect_min_ms ? c->suspect_min_ms : MF_SWIM_DEFAULT_SUSPECT_MIN_MS;
  s->dead_retention_ms =
      c->dead_retention_ms ? c->dead_retention_ms : MF_SWIM_DEFAULT_DEAD_RETENTION_MS;
  s->sync_interval_ms =
      c->sync_interval_ms ? c->sync_interval_ms : MF_SWIM_DEFAULT_SYNC_INTERVAL_MS;
  if (s->ack_timeout_ms >= s->probe_interval_ms) {
    free(s);
    return MF_ERR_INVALID_ARG;
  }
  s->rng = c->seed ^ 0x5851f42d4c957f2dULL;
  mf_swim_wire_member_t self = {.id = c->self_id, .address = c->self_address,
                                .incarnation = c->incarnation, .status = MF_SWIM_ALIVE,
                                .meta = c->meta, .meta_len = c->meta_len, .suspect_from = ""};
  member_t *m = add_member(s, &self, now_ms);
  if (!m) {
    mf_swim_destroy(s);
    return MF_ERR_NO_MEMORY;
  }
  m->is_self = true;
  s->next_round_ms = now_ms + s->probe_interval_ms;
  /* Spread over the interval so members started together do not sync in lockstep. */
  s->next_sync_ms = now_ms + s->sync_interval_ms / 2 + rng_below(s, s->sync_interval_ms);
  *out = s;
  return MF_OK;
}

void mf_swim_destroy(mf_swim_t *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n_members; i++) free(s->members[i]);
  free(s->members);
  free(s->order);
  free(s->scratch);
  free(s);
}

mf_err_t mf_swim_join(mf_swim_t *s, const char *seed_address, uint64_t now_ms) {
  (void)now_ms;
  if (s->left) return MF_ERR_STATE;
  if (!mf_swim_codec_parse_address(seed_address, NULL, NULL) ||
      strcmp(seed_address, s->members[0]->address) == 0)
    return MF_ERR_INVALID_ARG;
  size_t i = 0;
  while (i < s->n_seeds && strcmp(s->seeds[i], seed_address) != 0) i++;
  if (i == s->n_seeds) {
    if (s->n_seeds == MF_SWIM_MAX_SEEDS) return MF_ERR_FULL;
    copy_str(s->seeds[s->n_seeds++], sizeof s->seeds[0], seed_address);
  }
  send_packet(s, MF_SWIM_PACKET_PING, seed_address, ++s->seq, NULL, NULL, NULL, NULL);
  return MF_OK;
}

mf_err_t mf_swim_set_meta(mf_swim_t *s, const uint8_t *meta, size_t len, uint64_t now_ms) {
  (void)now_ms;
  if (len > MF_SWIM_META_MAX) return MF_ERR_LIMIT;
  if (len && !meta) return MF_ERR_INVALID_ARG;
  if (s->left) return MF_ERR_STATE;
  member_t *self = s->members[0];
  if (self->incarnation == UINT64_MAX) return MF_ERR_LIMIT;
  /* The header of every packet we send carries the new record; receivers for whom it is
   * news gossip it on. */
  self->incarnation++;
  self->meta_len = len;
  if (len) memcpy(self->meta, meta, len);
  return MF_OK;
}

void mf_swim_leave(mf_swim_t *s, uint64_t now_ms) {
  if (s->left) return;
  s->left = true;
  s->refute_pushes_left = 0;
  change_status(s->members[0], MF_SWIM_LEFT, now_ms);
  size_t n = 0;
  for (size_t i = 1; i < s->n_members; i++)
    if (is_live(s->members[i])) s->scratch[n++] = s->members[i];
  member_t *chosen[GOSSIP_MULT * 13]; /* gossip_limit for MAX_MEMBERS = 3 * 13 */
  size_t k = gossip_limit(s);
  if (k > n) k = n;
  if (k > sizeof chosen / sizeof chosen[0]) k = sizeof chosen / sizeof chosen[0];
  for (size_t i = 0; i < k; i++) {
    size_t r = i + rng_below(s, n - i);
    chosen[i] = s->scratch[r];
    s->scratch[r] = s->scratch[i];
  }
  for (size_t i = 0; i < k; i++)
    send_packet(s, MF_SWIM_PACKET_PING, chosen[i]->address, ++s->seq, chosen[i]->id, NULL, NULL,
                chosen[i]);
  MF_LOG_INFO("left the gossip group (told %zu of %zu live members)", k, n);
}

size_t mf_swim_member_count(const mf_swim_t *s) { return s->n_members; }

bool mf_swim_get(const mf_swim_t *s, const char *id, mf_swim_member_t *out) {
  const member_t *m = id ? find(s, id) : NULL;
  if (!m) return false;
  to_view(m, out);
  return true;
}

void mf_swim_self(const mf_swim_t *s, mf_swim_member_t *out) { to_view(s->members[0], out); }

void mf_swim_foreach(const mf_swim_t *s, void (*fn)(void *ud, const mf_swim_member_t *m),
                     void *ud) {
  for (size_t i = 0; i < s->n_members; i++) {
    mf_swim_member_t v;
    to_view(s->members[i], &v);
    fn(ud, &v);
  }
}

void mf_swim_stats(const mf_swim_t *s, mf_swim_stats_t *out) {
  *out = s->stats;
  out->health = s->health;
}
