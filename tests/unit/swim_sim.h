/* The fake network shared by the SWIM simulation tests (test_swim.c, test_swim_lifeguard.c):
 * every instance of common/swim.h on one virtual clock, datagrams delivered through a heap
 * with 1-5 ms latency, optional loss, cut links, crashed/paused/blocked members. No
 * sockets, no wall-clock time; every random choice comes from seeded PRNGs. Header-only
 * (static inline) so each test file takes what it uses; include after <cmocka.h>. */
#ifndef MF_TEST_SWIM_SIM_H
#define MF_TEST_SWIM_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/swim.h"

#define MAXN 64

/* MF_SWIM_TEST_SEED=<n> shifts every seed, to check that results do not hang on one. */
static uint64_t seed_offset;
#define PROBE MF_SWIM_DEFAULT_PROBE_INTERVAL_MS

/* ---- fake network ------------------------------------------------------------------------ */

typedef struct {
  int observer;
  char id[MF_SWIM_ID_MAX + 1];
  mf_swim_status_t old_status, status;
  bool is_new;
  uint64_t at;
  size_t meta_len;
} event_t;

struct net;

typedef struct {
  struct net *net;
  int idx;
  mf_swim_t *swim;
  char id[40];
  char addr[24];
  bool killed;  /* crashed: no traffic in or out, no ticks */
  bool paused;  /* like killed, but resumes with its state (SIGSTOP/SIGCONT) */
  bool blocked; /* traffic dropped both ways, still ticks (a cut cable) */
  uint64_t sent;
} node_t;

typedef struct {
  uint64_t at, order;
  int from, to;
  size_t len;
  uint8_t data[MF_SWIM_PACKET_MAX];
} dgram_t;

typedef struct net {
  node_t nodes[MAXN];
  int n;
  uint64_t now;
  uint64_t rng;
  uint32_t loss_permille;
  bool link_cut[MAXN][MAXN]; /* from -> to dropped */
  dgram_t *q; /* binary min-heap on (at, order) */
  size_t qn, qcap;
  uint64_t order;
  event_t *events;
  size_t n_events, events_cap;
} net_t;

static inline uint64_t net_rand(net_t *net) { /* xorshift64* */
  net->rng ^= net->rng >> 12;
  net->rng ^= net->rng << 25;
  net->rng ^= net->rng >> 27;
  return net->rng * 0x2545f4914f6cdd1dULL;
}

static inline bool dgram_before(const dgram_t *a, const dgram_t *b) {
  return a->at != b->at ? a->at < b->at : a->order < b->order;
}

static inline void heap_push(net_t *net, const dgram_t *d) {
  if (net->qn == net->qcap) {
    net->qcap = net->qcap ? net->qcap * 2 : 256;
    net->q = realloc(net->q, net->qcap * sizeof *net->q);
    assert_non_null(net->q);
  }
  size_t i = net->qn++;
  net->q[i] = *d;
  while (i > 0 && dgram_before(&net->q[i], &net->q[(i - 1) / 2])) {
    dgram_t t = net->q[i];
    net->q[i] = net->q[(i - 1) / 2];
    net->q[(i - 1) / 2] = t;
    i = (i - 1) / 2;
  }
}

static inline void heap_pop(net_t *net, dgram_t *out) {
  *out = net->q[0];
  net->q[0] = net->q[--net->qn];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < net->qn && dgram_before(&net->q[l], &net->q[m])) m = l;
    if (r < net->qn && dgram_before(&net->q[r], &net->q[m])) m = r;
    if (m == i) break;
    dgram_t t = net->q[i];
    net->q[i] = net->q[m];
    net->q[m] = t;
    i = m;
  }
}

static inline bool node_down(const node_t *n) { return n->killed || n->paused || n->blocked; }

static inline int addr_to_index(const char *address) {
  unsigned a, b, c, d, port;
  if (sscanf(address, "%u.%u.%u.%u:%u", &a, &b, &c, &d, &port) != 5) return -1;
  if (a != 10 || b != 0 || port != 7946) return -1;
  return (int)(c * 250 + d) - 1;
}

static inline void fake_send(void *ud, const char *address, const uint8_t *data, size_t len) {
  node_t *from = ud;
  net_t *net = from->net;
  from->sent++;
  assert_true(len <= MF_SWIM_PACKET_MAX);
  int to = addr_to_index(address);
  if (to < 0 || to >= net->n || node_down(from)) return;
  if (net->link_cut[from->idx][to]) return;
  if (net->loss_permille && net_rand(net) % 1000 < net->loss_permille) return;
  dgram_t d = {.at = net->now + 1 + net_rand(net) % 5, .order = net->order++, .from = from->idx,
               .to = to, .len = len};
  memcpy(d.data, data, len);
  heap_push(net, &d);
}

static inline void on_change(void *ud, const mf_swim_member_t *m, mf_swim_status_t old, bool is_new) {
  node_t *node = ud;
  net_t *net = node->net;
  if (net->n_events == net->events_cap) {
    net->events_cap = net->events_cap ? net->events_cap * 2 : 1024;
    net->events = realloc(net->events, net->events_cap * sizeof *net->events);
    assert_non_null(net->events);
  }
  event_t *e = &net->events[net->n_events++];
  e->observer = node->idx;
  snprintf(e->id, sizeof e->id, "%s", m->id);
  e->old_status = old;
  e->status = m->status;
  e->is_new = is_new;
  e->at = net->now;
  e->meta_len = m->meta_len;
  /* The view handed to the callback must agree with a lookup made from inside it. */
  mf_swim_member_t again;
  assert_true(mf_swim_get(node->swim, m->id, &again));
  assert_int_equal(again.status, m->status);
}

static inline mf_swim_config_t node_config(node_t *node, uint64_t incarnation) {
  mf_swim_config_t c = {.self_id = node->id, .self_address = node->addr,
                        .incarnation = incarnation, .seed = 1000 + (uint64_t)node->idx + seed_offset * 7919,
                        .send = fake_send, .on_change = on_change, .ud = node};
  return c;
}

static inline node_t *net_add(net_t *net) {
  assert_true(net->n < MAXN);
  node_t *node = &net->nodes[net->n];
  memset(node, 0, sizeof *node);
  node->net = net;
  node->idx = net->n++;
  snprintf(node->id, sizeof node->id, "node-%02d", node->idx);
  int k = node->idx + 1;
  snprintf(node->addr, sizeof node->addr, "10.0.%d.%d:7946", k / 250, k % 250);
  mf_swim_config_t c = node_config(node, 0);
  assert_int_equal(mf_swim_create(&c, net->now, &node->swim), MF_OK);
  return node;
}

static inline net_t *net_new(uint64_t seed) {
  net_t *net = calloc(1, sizeof *net);
  assert_non_null(net);
  net->rng = (seed + seed_offset * 104729) ? seed + seed_offset * 104729 : 1;
  return net;
}

static inline void net_free(net_t *net) {
  for (int i = 0; i < net->n; i++) mf_swim_destroy(net->nodes[i].swim);
  free(net->q);
  free(net->events);
  free(net);
}

static inline bool node_ticks(const node_t *n) { return !n->killed && !n->paused; }

/* Advances virtual time to the next event (delivery or a deadline), at most to `until`. */
static inline void net_step(net_t *net, uint64_t until) {
  uint64_t t = until;
  if (net->qn && net->q[0].at < t) t = net->q[0].at;
  for (int i = 0; i < net->n; i++) {
    node_t *n = &net->nodes[i];
    if (!node_ticks(n)) continue;
    uint64_t d = mf_swim_next_deadline(n->swim);
    if (d < t) t = d;
  }
  if (t < net->now) t = net->now;
  net->now = t;
  while (net->qn && net->q[0].at <= net->now) {
    dgram_t d;
    heap_pop(net, &d);
    node_t *to = &net->nodes[d.to];
    if (node_down(to)) continue;
    mf_swim_receive(to->swim, net->nodes[d.from].addr, d.data, d.len, net->now);
  }
  for (int i = 0; i < net->n; i++) {
    node_t *n = &net->nodes[i];
    if (node_ticks(n) && mf_swim_next_deadline(n->swim) <= net->now)
      mf_swim_tick(n->swim, net->now);
  }
}

typedef bool (*pred_fn)(net_t *net, const void *arg);

/* Runs until pred holds (returns true) or virtual time reaches `until` (returns false). */
static inline bool net_run(net_t *net, uint64_t until, pred_fn pred, const void *arg) {
  uint64_t same_time = 0, last = net->now;
  while (!(pred && pred(net, arg))) {
    if (net->now >= until) return false;
    net_step(net, until);
    /* A deadline that never moves forward would spin here forever. */
    same_time = net->now == last ? same_time + 1 : 0;
    last = net->now;
    assert_true(same_time < 100000);
  }
  return true;
}

static inline mf_swim_status_t status_of(const node_t *observer, const node_t *target, bool *known) {
  mf_swim_member_t m;
  *known = mf_swim_get(observer->swim, target->id, &m);
  return *known ? m.status : MF_SWIM_DEAD;
}

/* Every running member sees every other running member ALIVE. */
static inline bool all_alive(net_t *net, const void *arg) {
  (void)arg;
  for (int a = 0; a < net->n; a++) {
    if (!node_ticks(&net->nodes[a])) continue;
    for (int b = 0; b < net->n; b++) {
      if (a == b || !node_ticks(&net->nodes[b])) continue;
      bool known;
      if (status_of(&net->nodes[a], &net->nodes[b], &known) != MF_SWIM_ALIVE || !known)
        return false;
    }
  }
  return true;
}

typedef struct {
  int target;
  mf_swim_status_t status;
} seen_arg_t;

/* Every running member other than the target sees it with the given status. */
static inline bool all_see(net_t *net, const void *arg) {
  const seen_arg_t *s = arg;
  for (int a = 0; a < net->n; a++) {
    if (a == s->target || !node_ticks(&net->nodes[a])) continue;
    bool known;
    if (status_of(&net->nodes[a], &net->nodes[s->target], &known) != s->status || !known)
      return false;
  }
  return true;
}

static inline size_t count_events(const net_t *net, const char *id, mf_swim_status_t status) {
  size_t n = 0;
  for (size_t i = 0; i < net->n_events; i++) {
    const event_t *e = &net->events[i];
    if ((!id || strcmp(e->id, id) == 0) && e->status == status && !e->is_new &&
        e->old_status != status)
      n++;
  }
  return n;
}

static inline net_t *converged_net(int n, uint64_t seed) {
  net_t *net = net_new(seed);
  for (int i = 0; i < n; i++) net_add(net);
  for (int i = 1; i < n; i++) assert_int_equal(mf_swim_join(net->nodes[i].swim, net->nodes[0].addr, 0), MF_OK);
  assert_true(net_run(net, 20 * PROBE, all_alive, NULL));
  return net;
}

static inline uint32_t ceil_log2(uint64_t x) {
  uint32_t k = 0;
  while (((uint64_t)1 << k) < x) k++;
  return k;
}

/* Upper bound on the time from a crash to DEAD everywhere: the victim is probed at the
 * latest two passes later (order reshuffles between passes), the round ends, the
 * suspicion runs its unconfirmed maximum, then gossip needs a few rounds. */
static inline uint64_t death_bound(int n) {
  uint64_t detect = 2ull * (uint64_t)(n - 1) * PROBE + PROBE;
  uint64_t suspicion = 4ull * PROBE * ceil_log2((uint64_t)n + 1);
  return detect + suspicion + 4 * PROBE;
}

#endif
