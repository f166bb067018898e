/* pipes-count: how many intra-node pipes a big room needs under the controller's rules.
 *
 * Runs the controller's real scheduler (controller/scheduler.h, pure functions) over a
 * simulated cluster of ONE active node with W workers. The per-worker capacity is chosen so
 * that the room (P publishers + S subscribers, one WebRTC transport each) needs every
 * worker: each worker fits ceil((P+S)/W) transports of --transport-pps under the default
 * watermark. The transports join as a burst (publishers first, one join every 10 ms), so
 * placements see each other only through the pending account, exactly as the controller
 * leader keeps it (mf_sched_pending_add/expire/apply around each mf_sched_place_transport).
 * Each publisher has one video producer on its transport's worker. Then every subscriber
 * consumes every producer: each (producer, subscriber's worker) goes through
 * mf_sched_plan_pipe (LOCAL / REUSE / OPEN), and opened pipes enter the view as the
 * controller records them. Printed: transports per worker, pipes opened by this on-demand
 * rule vs mediasoup's usual full mesh (every producer piped to every other router:
 * producers x (workers - 1)), and the same for smaller rooms at the same capacity. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller/scheduler.h"
#include "tests/bench/bench.h"

#define JOIN_EVERY_MS 10
#define PENDING_TTL_MS 10000 /* the controller's default pending TTL */
#define NODE_ID "node-1"
#define ROUTER_ID "room"

typedef struct {
  uint32_t publishers, subscribers, workers;
  double transport_pps, capacity_pps;
} room_cfg_t;

typedef struct {
  uint32_t *pubs, *subs, *pipes_out, *pipes_in; /* per worker */
  uint64_t consumers_local, consumers_piped;
  size_t pipes_opened, pipes_needed;
  uint32_t max_depth;
  uint32_t workers_used;
  size_t decisions;
  double sched_ms; /* wall time inside the scheduler, printed only */
} room_result_t;

/* The view's backing arrays; ids are stable strings the decisions point into. */
typedef struct {
  mf_sched_worker_t *workers;
  mf_sched_node_t node;
  const char *routers[1];
  mf_sched_shard_t *shards;
  size_t n_shards;
  char (*producer_ids)[16];
  mf_sched_producer_t *producers;
  size_t n_producers;
  mf_sched_pipe_t *pipes;
  size_t n_pipes;
  mf_sched_pending_t pending;
  mf_sched_view_t view;
} sim_t;

static double ms_between(const struct timespec *a, const struct timespec *b) {
  return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static void sim_free(sim_t *s) {
  free(s->workers);
  free(s->shards);
  free(s->producer_ids);
  free(s->producers);
  free(s->pipes);
  mf_sched_pending_free(&s->pending);
}

static bool sim_init(sim_t *s, const room_cfg_t *c) {
  memset(s, 0, sizeof *s);
  mf_sched_pending_init(&s->pending);
  s->workers = calloc(c->workers, sizeof *s->workers);
  s->shards = calloc(c->workers, sizeof *s->shards);
  s->producer_ids = calloc(c->publishers + 1, sizeof *s->producer_ids);
  s->producers = calloc(c->publishers + 1, sizeof *s->producers);
  /* at most one pipe per (producer, target worker) */
  s->pipes = calloc((size_t)c->publishers * c->workers + 1, sizeof *s->pipes);
  if (!s->workers || !s->shards || !s->producer_ids || !s->producers || !s->pipes) {
    sim_free(s);
    return false;
  }
  for (uint32_t w = 0; w < c->workers; w++) s->workers[w].capacity_pps = c->capacity_pps;
  s->node = (mf_sched_node_t){NODE_ID, MF_SCHED_NODE_ACTIVE, s->workers, c->workers};
  s->routers[0] = ROUTER_ID;
  return true;
}

/* Refreshes the view's counts and pointers (the arrays grow between calls). */
static mf_sched_view_t *sim_view(sim_t *s) {
  s->view = (mf_sched_view_t){.nodes = &s->node,
                              .n_nodes = 1,
                              .routers = s->routers,
                              .n_routers = 1,
                              .shards = s->shards,
                              .n_shards = s->n_shards,
                              .producers = s->producers,
                              .n_producers = s->n_producers,
                              .pipes = s->pipes,
                              .n_pipes = s->n_pipes};
  return &s->view;
}

/* One join: place the transport as the leader does and commit the decision. */
static mf_err_t join(sim_t *s, const room_cfg_t *c, uint64_t now, uint32_t *worker, char *msg,
                     size_t msg_size) {
  mf_sched_pending_expire(&s->pending, now);
  mf_sched_view_t *v = sim_view(s);
  mf_sched_pending_apply(&s->pending, v);
  mf_sched_place_request_t req = {ROUTER_ID, c->transport_pps, NULL};
  mf_sched_placement_t d;
  mf_err_t e = mf_sched_place_transport(v, &req, &d, msg, msg_size);
  if (e != MF_OK) return e;
  size_t i = 0;
  while (i < s->n_shards && s->shards[i].worker != d.worker) i++;
  if (i == s->n_shards) /* the leader records a new shard with the placement */
    s->shards[s->n_shards++] = (mf_sched_shard_t){ROUTER_ID, NODE_ID, d.worker, 0, now};
  s->shards[i].transports++;
  e = mf_sched_pending_add(&s->pending, NODE_ID, d.worker, c->transport_pps,
                           now + PENDING_TTL_MS);
  *worker = d.worker;
  return e;
}

static mf_err_t run_room(const room_cfg_t *c, room_result_t *r, char *msg, size_t msg_size) {
  sim_t s;
  if (!sim_init(&s, c)) return MF_ERR_NO_MEMORY;
  uint32_t *sub_worker = calloc(c->subscribers + 1, sizeof *sub_worker);
  uint8_t *needed = calloc((size_t)c->publishers * c->workers + 1, 1);
  if (!sub_worker || !needed) {
    free(sub_worker);
    free(needed);
    sim_free(&s);
    return MF_ERR_NO_MEMORY;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  mf_err_t e = MF_OK;
  uint64_t now = 1000;
  for (uint32_t i = 0; e == MF_OK && i < c->publishers + c->subscribers; i++, now += JOIN_EVERY_MS) {
    uint32_t w = 0;
    e = join(&s, c, now, &w, msg, msg_size);
    if (e != MF_OK) break;
    r->decisions++;
    if (i < c->publishers) {
      r->pubs[w]++;
      snprintf(s.producer_ids[i], sizeof s.producer_ids[i], "p%04u", i);
      s.producers[s.n_producers++] = (mf_sched_producer_t){s.producer_ids[i], ROUTER_ID,
                                                           NODE_ID, w};
    } else {
      r->subs[w]++;
      sub_worker[i - c->publishers] = w;
    }
  }
  /* Every subscriber consumes every producer: one pipe decision per consumer. */
  for (uint32_t j = 0; e == MF_OK && j < c->subscribers; j++) {
    for (uint32_t k = 0; e == MF_OK && k < c->publishers; k++) {
      const mf_sched_producer_t *p = &s.producers[k];
      mf_sched_pipe_request_t req = {p->id, NODE_ID, sub_worker[j]};
      mf_sched_pipe_decision_t d;
      e = mf_sched_plan_pipe(sim_view(&s), &req, &d, msg, msg_size);
      if (e != MF_OK) break;
      r->decisions++;
      if (sub_worker[j] != p->worker) needed[(size_t)k * c->workers + sub_worker[j]] = 1;
      if (d.action == MF_SCHED_PIPE_LOCAL) {
        r->consumers_local++;
        continue;
      }
      r->consumers_piped++;
      if (d.action == MF_SCHED_PIPE_REUSE) {
        s.pipes[d.pipe_index].consumers++;
        continue;
      }
      s.pipes[s.n_pipes++] = (mf_sched_pipe_t){p->id, NODE_ID, NODE_ID, sub_worker[j],
                                               d.source_worker, 1, now};
      r->pipes_opened++;
      r->pipes_out[d.source_worker]++;
      r->pipes_in[sub_worker[j]]++;
      if (d.depth > r->max_depth) r->max_depth = d.depth;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  r->sched_ms = ms_between(&t0, &t1);
  for (size_t i = 0; i < (size_t)c->publishers * c->workers; i++) r->pipes_needed += needed[i];
  for (uint32_t w = 0; w < c->workers; w++) r->workers_used += (r->pubs[w] + r->subs[w]) > 0;
  free(sub_worker);
  free(needed);
  sim_free(&s);
  return e;
}

static bool result_alloc(room_result_t *r, uint32_t workers) {
  memset(r, 0, sizeof *r);
  r->pubs = calloc(workers, sizeof *r->pubs);
  r->subs = calloc(workers, sizeof *r->subs);
  r->pipes_out = calloc(workers, sizeof *r->pipes_out);
  r->pipes_in = calloc(workers, sizeof *r->pipes_in);
  return r->pubs && r->subs && r->pipes_out && r->pipes_in;
}

static void result_free(room_result_t *r) {
  free(r->pubs);
  free(r->subs);
  free(r->pipes_out);
  free(r->pipes_in);
}

static int bench_pipes_count(uint32_t pubs, uint32_t subs, uint32_t workers, double pps) {
  uint32_t total = pubs + subs;
  uint32_t per_worker = (total + workers - 1) / workers;
  /* Half a transport of slack so floating-point rounding cannot refuse the last one. */
  double capacity = ((double)per_worker + 0.5) * pps / MF_SCHED_DEFAULT_WATERMARK;
  room_cfg_t c = {pubs, subs, workers, pps, capacity};
  room_result_t r;
  char msg[256] = "";
  if (!result_alloc(&r, workers)) {
    result_free(&r);
    fprintf(stderr, "mafalda-bench pipes-count: out of memory\n");
    return 1;
  }
  mf_err_t e = run_room(&c, &r, msg, sizeof msg);
  if (e != MF_OK) {
    fprintf(stderr, "mafalda-bench pipes-count: scheduler refused: %s (%s)\n", mf_err_name(e),
            msg);
    result_free(&r);
    return 1;
  }
  size_t mesh = (size_t)pubs * (workers - 1);
  printf("pipes-count: controller scheduler (controller/scheduler.h) on one node with %u "
         "workers;\n  capacity %.0f pps/worker = %u transports of %.0f pps under the %.0f%% "
         "watermark;\n  %u publishers (one video producer each) then %u subscribers join "
         "one room,\n  one every %d ms (pending account as the controller keeps it); every "
         "subscriber\n  consumes every producer (publishers consume nothing)\n",
         workers, capacity, per_worker, pps, MF_SCHED_DEFAULT_WATERMARK * 100, pubs, subs,
         JOIN_EVERY_MS);
  printf("  %-8s %10s %11s %10s %9s %8s\n", "worker", "publishers", "subscribers",
         "transports", "pipes out", "pipes in");
  for (uint32_t w = 0; w < workers; w++)
    printf("  w%-7u %10u %11u %10u %9u %8u\n", w, r.pubs[w], r.subs[w], r.pubs[w] + r.subs[w],
           r.pipes_out[w], r.pipes_in[w]);
  printf("  %-56s %10llu\n", "consumers on the producer's own worker (no pipe)",
         (unsigned long long)r.consumers_local);
  printf("  %-56s %10llu\n", "consumers fed through a pipe", (unsigned long long)r.consumers_piped);
  printf("  %-56s %10zu\n", "pipes opened (on demand: pipe only where consumers are)",
         r.pipes_opened);
  printf("  %-56s %10zu\n", "  of which needed (producer x other worker with a sub)",
         r.pipes_needed);
  printf("  %-56s %10zu\n", "pipes full mesh (producers x (workers - 1))", mesh);
  printf("  %-56s %10u\n", "deepest pipe chain (1 = straight from the origin)", r.max_depth);
  printf("  %-56s %10.2f\n", "scheduler wall time for all decisions (ms)", r.sched_ms);
  printf("  (%zu decisions: %u placements + %llu pipe plans)\n", r.decisions, total,
         (unsigned long long)pubs * subs);
  result_free(&r);

  /* The rule's saving shows in rooms that do not need every worker: same capacity,
   * rooms that exactly fill 1..W workers. */
  printf("  same capacity, smaller rooms (%u publishers, subscribers filling m workers):\n", pubs);
  printf("  %-12s %12s %16s %16s\n", "subscribers", "workers used", "pipes on demand",
         "pipes full mesh");
  for (uint32_t m = 1; m <= workers; m++) {
    if (m * per_worker <= pubs) continue;
    room_cfg_t cm = c;
    cm.subscribers = m * per_worker - pubs;
    room_result_t rm;
    if (!result_alloc(&rm, workers)) {
      result_free(&rm);
      fprintf(stderr, "mafalda-bench pipes-count: out of memory\n");
      return 1;
    }
    e = run_room(&cm, &rm, msg, sizeof msg);
    if (e == MF_OK)
      printf("  %-12u %12u %16zu %16zu\n", cm.subscribers, rm.workers_used, rm.pipes_opened, mesh);
    else
      printf("  %-12u scheduler refused: %s (%s)\n", cm.subscribers, mf_err_name(e), msg);
    result_free(&rm);
  }
  return 0;
}

int mf_bench_pipes_count(int argc, char **argv) {
  int pubs = 20, subs = 200, workers = 4, pps = 500;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--publishers") == 0 && v && mf_bench_parse_int(v, 1, 10000, &pubs)) {
      i++;
    } else if (strcmp(a, "--subscribers") == 0 && v &&
               mf_bench_parse_int(v, 1, 100000, &subs)) {
      i++;
    } else if (strcmp(a, "--workers") == 0 && v &&
               mf_bench_parse_int(v, 2, 256, &workers)) {
      i++;
    } else if (strcmp(a, "--transport-pps") == 0 && v &&
               mf_bench_parse_int(v, 1, 1000000, &pps)) {
      i++;
    } else {
      fprintf(stderr, "mafalda-bench pipes-count: bad option '%s'\n", a);
      return 2;
    }
  }
  return bench_pipes_count((uint32_t)pubs, (uint32_t)subs, (uint32_t)workers, pps);
}
