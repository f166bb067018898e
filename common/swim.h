/* SWIM gossip membership (Das, Gupta, Motivala 2002) with the cheap parts of Lifeguard
 * (Dadgar et al. 2018): the protocol core, no I/O.
 *
 * Layers (tarantool's SWIM layout): this module is the protocol only — no sockets, no clock
 * reads, no randomness except a PRNG seeded from the config. Time comes in as `now_ms`
 * (any monotonic millisecond clock), datagrams leave through config.send, and the caller
 * feeds received datagrams to mf_swim_receive and calls mf_swim_tick no later than
 * mf_swim_next_deadline. common/swim_udp.h binds it to a libuv UDP socket; the unit tests
 * run it on a fake network with a virtual clock. Wire format: proto/gossip.proto, encoded
 * and validated by common/swim_codec.h.
 *
 * Members: id (1..64 printable ASCII bytes, UUIDs in practice), address "a.b.c.d:port"
 * (canonical IPv4 literal), incarnation (raised only by the member itself), status, and an
 * opaque meta payload (<= MF_SWIM_META_MAX bytes) that the layer above fills (Mafalda: load
 * summary + role). Every packet carries the sender's own record, meta included, so a
 * receiver learns a member completely from any packet it sends.
 *
 * Protocol, with the defaults (mf_swim_config_t fields left 0 take them):
 * - Probe round every probe_interval_ms (500): the next member of a shuffled round-robin
 *   order (reshuffled after every full pass; a new member goes to a random position) gets
 *   a PING. No ACK within ack_timeout_ms (200) → PING_REQ to indirect_probes (3) random
 *   ALIVE members, which ping the target and relay its ACK (a helper relays only for a
 *   member it knows, at the address it knows). No ACK by the end of the round → the target
 *   becomes SUSPECT. DEAD and LEFT members are not probed. SUSPECT ones are: a PING to a
 *   SUSPECT member carries that suspicion first (Lifeguard's "buddy system"), and a member
 *   we start to suspect (by our probe or by gossip) gets such a PING at once and is probed
 *   in our very next round, ahead of the order — it refutes before it answers, so the ACK's
 *   header brings us the refutation even when gossip misses us. An ACK alone does not clear
 *   a suspicion; only the member's higher incarnation does.
 * - Suspicion timeout (Lifeguard): with n = members not DEAD/LEFT, self included,
 *       max = max(suspect_min_ms, 4 * probe_interval_ms * ceil(log2(n + 1)))
 *       min = suspect_min_ms (1500)
 *       timeout = max - (max - min) * log(c + 1) / log(K + 1),   K = 3
 *   where c (0..K) counts independent suspecters beyond the first (each SUSPECT update
 *   carries the id of one member whose probe failed; a member whose own probe of an
 *   already-SUSPECT member fails adds itself). A record names one suspecter per copy, so
 *   each copy names our own id if we are a suspecter (only we can spread that), otherwise
 *   the known suspecters in turn, never the recipient's own; naming just the latest one
 *   lost confirmations when two members suspected at once. No confirmation: `max` (6 s
 *   for 5 members, 12 s for 50); K confirmations: `min`. Not refuted in time → DEAD.
 * - Precedence (SWIM paper), i = incoming incarnation, j = ours:
 *       ALIVE(i)   overrides ALIVE(j), SUSPECT(j) if i > j; DEAD(j)/LEFT(j) if i > j (rejoin)
 *       SUSPECT(i) overrides ALIVE(j) if i >= j, SUSPECT(j) if i > j (i == j: confirmation)
 *       DEAD(i)    overrides ALIVE(j), SUSPECT(j) if i >= j; DEAD(j), LEFT(j) if i > j
 *       LEFT(i)    overrides ALIVE(j), SUSPECT(j), DEAD(j) if i >= j; LEFT(j) if i > j
 *   The one deviation from "DEAD overrides everything": a DEAD of an OLDER incarnation does
 *   not kill a member that has since refuted or rejoined at a higher one; otherwise stale
 *   DEAD gossip and the rejoin would flap. A SUSPECT of a DEAD/LEFT member is ignored.
 * - Refutation: hearing itself SUSPECT/DEAD/LEFT at an incarnation >= its own (or ALIVE at a
 *   higher one, e.g. from before a restart), a member sets its incarnation above it and
 *   disseminates ALIVE. A refutation of SUSPECT/DEAD/LEFT is also pushed at once as PINGs
 *   to up to 8 live members (all of a small cluster), three times one ack timeout apart:
 *   a suspected member is often one whose probe rounds local health has slowed, and
 *   waiting for them and for piggybacking lost the race against confirmed suspicion
 *   timeouts under 30% loss (4 members: 74 false deaths in 100 simulated minutes before,
 *   none in 500 after; tests/unit/test_swim.c). It never marks itself otherwise. A restarted member therefore rejoins
 *   on its own: the seed answers with the old DEAD record and it refutes. (Starting from a
 *   persisted incarnation + 1 works too and skips that step.)
 * - Dissemination: every packet piggybacks updates about other members from a per-member
 *   queue, least-sent first, then newest first, as many as fit in MF_SWIM_PACKET_MAX; each
 *   update goes out 3 * ceil(log2(n + 1)) times (n = members known, self included) and then
 *   leaves the queue. Our own record is not queued: it is the header of every packet, and
 *   receivers for whom it is news queue it. A packet from a member we hold
 *   SUSPECT/DEAD/LEFT re-queues that record, so our answer tells the member and it can
 *   refute.
 * - Join and SYNC: mf_swim_join pings a seed address (its id is not needed); the seed's ACK
 *   reveals it. While we know no other live member, every probe round pings the seeds
 *   again. The first time a member is heard from directly while unknown to us (or held
 *   DEAD/LEFT, i.e. rejoining), it gets a SYNC: our whole member list, in as many packets
 *   as needed. Updates learned from a SYNC are applied but not re-gossiped.
 * - Anti-entropy (memberlist's push-pull): every sync_interval_ms (10 s, first one at a
 *   random point of 0.5..1.5 intervals) we SYNC one random ALIVE member with want_sync set
 *   and it answers with its own SYNC. Gossip is sent a bounded number of times, so without
 *   this a member that missed every copy (two members joining at once) would wait for a
 *   direct probe — up to a full probe pass, or forever if neither knows the other. At most
 *   one SYNC goes to the same member per 4 probe intervals.
 * - Leave: mf_swim_leave marks self LEFT and sends it at once to up to
 *   3 * ceil(log2(n + 1)) live members; normal gossip spreads it further. Others treat LEFT
 *   like DEAD (not probed, forgotten after retention) and report it as LEFT.
 * - DEAD and LEFT members are kept dead_retention_ms (60 s) so stale ALIVE gossip of the
 *   same incarnation cannot resurrect them, then forgotten (no callback).
 * - Lifeguard local health: a multiplier h in 0..8 (MF_SWIM_LHM_MAX) rises by 1 when one of
 *   our probes fails or we must refute a suspicion of ourselves, and falls by 1 on every
 *   successful probe. Our ack timeout and probe interval are multiplied by (1 + h): a member
 *   that is itself slow (CPU starved, lossy NIC) probes less aggressively and so raises
 *   fewer false suspicions. It is not a timeout for others and does not change suspicion
 *   timeouts. mf_swim_stats_t.health shows it.
 * - Input: every datagram is size-capped, unpacked into a bounded arena and validated as a
 *   whole (ids, addresses, statuses, meta length, update count, type-specific fields) before
 *   any of it is applied; invalid packets are counted (rx_invalid) and dropped. A packet
 *   claiming our own id is dropped as invalid too. At most 4096 members are kept.
 * - Measured in tests/unit/test_swim.c (virtual time, defaults): 50 members joining through
 *   one seed converge in 2-6 s; a crash is known everywhere as DEAD within 2.4-4.5 s (5
 *   members) / 3.5-6 s (50); 10 members under 20% loss on every link for 5 minutes, and 4
 *   members under 30% for 10 minutes: no false DEAD (each over 100 seeds).
 *
 * Security: packets are not authenticated. Anyone who can reach the gossip port can forge
 * membership (declare members dead, inject members) and make an instance send ACKs and
 * SYNCs to an address of their choosing; keep the port on a private network or behind a
 * firewall that admits only cluster members.
 *
 * Sizing: member lookup is a linear scan; meant for clusters of up to a few hundred members.
 * Memory: ~80 KB per instance (decode arena, encoder, packet buffers) + ~700 B per member.
 *
 * Ownership: mf_swim_create copies the config's strings and meta; the instance owns all
 * member storage until mf_swim_destroy. Nothing is allocated per packet except a member
 * record the first time a member is heard of.
 *
 * Thread affinity: one thread (the loop thread of swim_udp) owns an mf_swim_t and makes
 * every call; callbacks run on that thread from inside mf_swim_* calls. Callbacks may read
 * the instance (mf_swim_get, mf_swim_foreach, mf_swim_stats) but must not call anything
 * else on it, and the send callback must not re-enter it at all. */
#ifndef MF_SWIM_H
#define MF_SWIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define MF_SWIM_ID_MAX 64           /* bytes in a member id */
#define MF_SWIM_ADDRESS_MAX 21      /* "255.255.255.255:65535" */
#define MF_SWIM_META_MAX 256        /* bytes of opaque meta per member */
#define MF_SWIM_PACKET_MAX 1400     /* encoded bytes per datagram, sent and accepted */
#define MF_SWIM_MAX_SEEDS 8         /* addresses remembered by mf_swim_join */
#define MF_SWIM_LHM_MAX 8           /* ceiling of the local health multiplier */

#define MF_SWIM_DEFAULT_PROBE_INTERVAL_MS 500
#define MF_SWIM_DEFAULT_ACK_TIMEOUT_MS 200
#define MF_SWIM_DEFAULT_INDIRECT_PROBES 3
#define MF_SWIM_DEFAULT_SUSPECT_MIN_MS 1500
#define MF_SWIM_DEFAULT_DEAD_RETENTION_MS 60000
#define MF_SWIM_DEFAULT_SYNC_INTERVAL_MS 10000

typedef enum {
  MF_SWIM_ALIVE = 0,
  MF_SWIM_SUSPECT,
  MF_SWIM_DEAD,
  MF_SWIM_LEFT,
} mf_swim_status_t;

/* A view of one member. Pointers refer to the instance's storage and stay valid until the
 * next call that may change it (receive, tick, join, leave, set_meta, destroy). */
typedef struct {
  const char *id;
  const char *address;
  uint64_t incarnation;
  mf_swim_status_t status;
  const uint8_t *meta;
  size_t meta_len;
} mf_swim_member_t;

typedef struct mf_swim mf_swim_t;

typedef struct {
  const char *self_id;      /* copied; 1..MF_SWIM_ID_MAX printable ASCII bytes */
  const char *self_address; /* copied; "a.b.c.d:port" others reach us at */
  uint64_t incarnation;     /* starting incarnation (0 is fine: refutation lifts it) */
  const uint8_t *meta;      /* copied; starting meta, may be NULL */
  size_t meta_len;
  uint32_t probe_interval_ms, ack_timeout_ms, indirect_probes, suspect_min_ms,
      dead_retention_ms, sync_interval_ms; /* 0 = default (above); ack_timeout must be
                                              < probe_interval; indirect_probes <= 16 */
  uint64_t seed;         /* PRNG seed for probe order and PING_REQ helpers */
  /* A datagram for address ("a.b.c.d:port"); data is valid during the call only. May fail
   * silently, as UDP does. Must not call back into this instance. */
  void (*send)(void *ud, const char *address, const uint8_t *data, size_t len);
  /* Another member changed, as we see it: is_new = first report of this member (never for
   * one first heard of as DEAD/LEFT); otherwise m->status != old_status is a status change
   * (ALIVE→SUSPECT, →DEAD, →LEFT, DEAD→ALIVE on rejoin, ...) and m->status == old_status
   * means its meta changed. Optional. */
  void (*on_change)(void *ud, const mf_swim_member_t *m, mf_swim_status_t old_status,
                    bool is_new);
  void *ud;
} mf_swim_config_t;

typedef struct {
  uint64_t rx;                /* datagrams received, valid or not */
  uint64_t rx_invalid;        /* ... dropped as malformed or invalid */
  uint64_t tx;                /* datagrams handed to send */
  uint64_t probes;            /* direct PINGs of a probe round */
  uint64_t indirect_probes;   /* PING_REQs sent */
  uint64_t probes_failed;     /* rounds that ended without an ACK */
  uint64_t suspects_raised;   /* members we suspected after our own probe failed */
  uint64_t suspects_refuted;  /* times we refuted a suspicion (or death) of ourselves */
  uint64_t deaths;            /* members whose suspicion timed out here */
  uint64_t syncs_sent;        /* SYNC exchanges started (each one or more packets) */
  uint64_t relays;            /* PINGs sent on behalf of a PING_REQ */
  uint64_t suspicion_pings;   /* buddy PINGs telling a member we just learned to suspect */
  uint64_t refutation_pushes; /* PINGs pushing our refutation (REFUTE_PUSHES x fanout) */
  uint32_t health;            /* local health multiplier, 0..MF_SWIM_LHM_MAX */
} mf_swim_stats_t;

/* MF_ERR_INVALID_ARG for a bad id/address/meta length/timing or a missing send. */
mf_err_t mf_swim_create(const mf_swim_config_t *config, uint64_t now_ms, mf_swim_t **out);
void mf_swim_destroy(mf_swim_t *swim); /* NULL is ignored; sends nothing */

/* Remembers seed_address (up to MF_SWIM_MAX_SEEDS) and pings it now. MF_ERR_INVALID_ARG
 * for a malformed address or our own, MF_ERR_FULL when the seed list is full. */
mf_err_t mf_swim_join(mf_swim_t *swim, const char *seed_address, uint64_t now_ms);

/* One received datagram; from_address is used for logging only (replies go to the
 * sender's announced address). Never fails: bad input is counted and dropped. */
void mf_swim_receive(mf_swim_t *swim, const char *from_address, const uint8_t *data,
                     size_t len, uint64_t now_ms);

/* Runs everything due at now_ms (probe steps, suspicion timeouts, anti-entropy,
 * forgetting). now_ms must never go backwards across calls on one instance. */
void mf_swim_tick(mf_swim_t *swim, uint64_t now_ms);

/* The earliest time mf_swim_tick has work to do. Calling tick earlier is harmless; receive,
 * join, leave and set_meta may move it earlier, so ask again after them. */
uint64_t mf_swim_next_deadline(const mf_swim_t *swim);

/* Replaces our meta and raises our incarnation so the change disseminates.
 * MF_ERR_LIMIT above MF_SWIM_META_MAX, MF_ERR_STATE after mf_swim_leave. */
mf_err_t mf_swim_set_meta(mf_swim_t *swim, const uint8_t *meta, size_t len, uint64_t now_ms);

/* Graceful leave: self becomes LEFT and is announced (see above). Keep ticking for a few
 * probe intervals before destroying so gossip carries it; calling it twice is harmless. */
void mf_swim_leave(mf_swim_t *swim, uint64_t now_ms);

size_t mf_swim_member_count(const mf_swim_t *swim); /* self included, any status */
/* Looks a member up by id (self included). out is valid as mf_swim_member_t says. */
bool mf_swim_get(const mf_swim_t *swim, const char *id, mf_swim_member_t *out);
void mf_swim_self(const mf_swim_t *swim, mf_swim_member_t *out);
/* Every member, self included, in no particular order; fn must not modify the instance. */
void mf_swim_foreach(const mf_swim_t *swim, void (*fn)(void *ud, const mf_swim_member_t *m),
                     void *ud);
void mf_swim_stats(const mf_swim_t *swim, mf_swim_stats_t *out);

const char *mf_swim_status_name(mf_swim_status_t status); /* "alive", "suspect", ... */

#endif
