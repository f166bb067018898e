/* mafalda-ctl views that join the replicated state with the leader's load reports and the
 * replicas' own status: status (and --watch), workers, routers NAME. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "controller/ctl/ctl.h"
#include "controller/fsm.h"
#include "controller/rpc_server.h"

typedef Mafalda__Controller__StateResponse state_t;
typedef Mafalda__Controller__Snapshot snapshot_t;

static json_t *json_u64(uint64_t v) { return json_integer((json_int_t)v); }

static bool is_dead(const Mafalda__Controller__Node *n) {
  return n->state == MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD;
}

/* ---- controller replicas ---- */

/* One replica asked directly (controller.Status, not linearizable: its own view). */
typedef struct {
  char addr[160];
  char url[168];
  int timeout_ms;
  pthread_t thread;
  bool started, answered, duplicate;
  uint64_t id, leader_id, term, last_applied;
  bool is_leader;
} probe_t;

static void *probe_run(void *arg) {
  probe_t *p = arg;
  Mafalda__Controller__StatusRequest req = MAFALDA__CONTROLLER__STATUS_REQUEST__INIT;
  mf_rpc_reply_t reply;
  if (mf_rpc_call(p->url, MF_RPC_METHOD_STATUS, &req.base, p->timeout_ms, &reply) != MF_OK)
    return NULL;
  if (reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK) {
    Mafalda__Controller__StatusResponse *r = mafalda__controller__status_response__unpack(
        NULL, reply.envelope->payload.len, reply.envelope->payload.data);
    if (r) {
      p->answered = true;
      p->id = r->id;
      p->leader_id = r->leader_id;
      p->term = r->term;
      p->last_applied = r->last_applied;
      p->is_leader = r->is_leader;
      mafalda__controller__status_response__free_unpacked(r, NULL);
    }
  }
  mf_rpc_reply_free(&reply);
  return NULL;
}

static int cmp_probe(const void *a, const void *b) {
  const probe_t *x = a, *y = b;
  if (x->answered != y->answered) return x->answered ? -1 : 1;
  if (x->id != y->id) return x->id < y->id ? -1 : 1;
  return strcmp(x->addr, y->addr);
}

/* The replicas the operator named (--controller) plus the leader's address, each asked in
 * parallel with a short deadline so one dead replica costs at most a second. Addresses
 * answering with the same replica id are merged. Returns how many rows are in probes. */
static size_t probe_replicas(const state_t *r, probe_t *probes, size_t max) {
  size_t n = 0;
  const char *leader = r->status->leader_address;
  for (size_t i = 0; i <= mf_ctl_n_urls && n < max; i++) {
    const char *addr = i < mf_ctl_n_urls ? mf_ctl_addrs[i] : leader;
    if (!addr || !addr[0]) continue;
    bool seen = false;
    for (size_t k = 0; k < n; k++) seen = seen || strcmp(probes[k].addr, addr) == 0;
    if (seen) continue;
    memset(&probes[n], 0, sizeof(probes[n]));
    snprintf(probes[n].addr, sizeof(probes[n].addr), "%s", addr);
    snprintf(probes[n].url, sizeof(probes[n].url), "tcp://%s", addr);
    probes[n].timeout_ms = mf_ctl_opts.timeout_ms < 1000 ? mf_ctl_opts.timeout_ms : 1000;
    n++;
  }
  for (size_t i = 0; i < n; i++)
    probes[i].started = pthread_create(&probes[i].thread, NULL, probe_run, &probes[i]) == 0;
  for (size_t i = 0; i < n; i++) {
    if (probes[i].started)
      pthread_join(probes[i].thread, NULL);
    else
      probe_run(&probes[i]);
  }
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < i; k++)
      if (probes[i].answered && probes[k].answered && !probes[k].duplicate &&
          probes[k].id == probes[i].id)
        probes[i].duplicate = true;
  size_t kept = 0;
  for (size_t i = 0; i < n; i++)
    if (!probes[i].duplicate) probes[kept++] = probes[i];
  qsort(probes, kept, sizeof(*probes), cmp_probe);
  return kept;
}

static const char *probe_role(const probe_t *p) {
  if (!p->answered) return "unreachable";
  return p->is_leader ? "leader" : "follower";
}

/* ---- per node, from its load report ---- */

typedef struct {
  bool reported;
  double load_percent;
  uint64_t transports, producers, consumers, uptime_ms, stalled;
  int64_t age_ms;
} node_load_t;

static node_load_t node_load(const state_t *r, const Mafalda__Controller__Node *n) {
  node_load_t out = {0};
  const Mafalda__Cluster__LoadReport *rep = is_dead(n) ? NULL : mf_ctl_find_load(r, n->id);
  if (!rep) return out;
  out.reported = true;
  out.uptime_ms = rep->uptime_ms;
  out.age_ms = (int64_t)(r->wall_clock_ms - rep->timestamp_ms);
  for (size_t i = 0; i < rep->n_workers; i++) {
    const Mafalda__Cluster__WorkerLoad *wl = rep->workers[i];
    double p = mf_ctl_worker_load_percent(n, wl->index, wl);
    if (p > out.load_percent) out.load_percent = p;
    out.transports += wl->transports;
    out.producers += wl->producers;
    out.consumers += wl->consumers;
    out.stalled += wl->stalled ? 1 : 0;
  }
  return out;
}

/* ---- status ---- */

static json_t *status_json(const state_t *r, const probe_t *probes, size_t n_probes) {
  const Mafalda__Controller__StatusResponse *st = r->status;
  const snapshot_t *s = r->state;
  json_t *ctrl = json_array(), *nodes = json_array();
  for (size_t i = 0; i < n_probes; i++) {
    const probe_t *p = &probes[i];
    json_array_append_new(
        ctrl, json_pack("{s:o, s:s, s:b, s:s, s:o, s:o, s:o}", "id",
                        p->answered ? json_u64(p->id) : json_null(), "rpc_address", p->addr,
                        "reachable", (int)p->answered, "role", probe_role(p), "term",
                        p->answered ? json_u64(p->term) : json_null(), "last_applied",
                        p->answered ? json_u64(p->last_applied) : json_null(), "leader_id",
                        p->answered ? json_u64(p->leader_id) : json_null()));
  }
  uint64_t workers = 0, active = 0, transports = 0, producers = 0, consumers = 0;
  for (size_t i = 0; i < s->n_nodes; i++) {
    const Mafalda__Controller__Node *n = s->nodes[i];
    node_load_t l = node_load(r, n);
    workers += n->n_workers;
    active += n->state == MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE;
    transports += l.transports;
    producers += l.producers;
    consumers += l.consumers;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b}", "id", n->id, "name", n->name,
                          "state", mf_ctl_state_name(n->state), "rpc_address", n->rpc_address,
                          "announced_ip", n->announced_ip, "workers",
                          (json_int_t)n->n_workers, "reported", (int)l.reported);
    if (o) {
      /* Rounded to 0.1 % so the document is stable to compare. */
      json_object_set_new(o, "load_percent",
                          l.reported ? json_real(round(l.load_percent * 10) / 10) : json_null());
      json_object_set_new(o, "transports", l.reported ? json_u64(l.transports) : json_null());
      json_object_set_new(o, "producers", l.reported ? json_u64(l.producers) : json_null());
      json_object_set_new(o, "consumers", l.reported ? json_u64(l.consumers) : json_null());
      json_object_set_new(o, "stalled_workers", l.reported ? json_u64(l.stalled) : json_null());
      json_object_set_new(o, "uptime_ms",
                          l.reported && l.uptime_ms ? json_u64(l.uptime_ms) : json_null());
      json_object_set_new(o, "report_age_ms",
                          l.reported ? json_integer((json_int_t)l.age_ms) : json_null());
    }
    json_array_append_new(nodes, o);
  }
  return json_pack(
      "{s:I, s:s, s:I, s:I, s:b, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}, s:o, s:o, "
      "s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
      "leader_id", (json_int_t)st->leader_id, "leader_address",
      st->leader_address ? st->leader_address : "", "term", (json_int_t)r->term, "replica_id",
      (json_int_t)st->id, "is_leader", (int)st->is_leader, "last_applied",
      (json_int_t)st->last_applied, "load_reports", (json_int_t)st->load_reports, "counts",
      "nodes", (json_int_t)s->n_nodes, "routers", (json_int_t)s->n_routers, "shards",
      (json_int_t)s->n_shards, "producers", (json_int_t)s->n_producers, "pipes",
      (json_int_t)s->n_pipes, "controllers", ctrl, "nodes", nodes, "totals", "nodes",
      (json_int_t)s->n_nodes, "active_nodes", (json_int_t)active, "workers",
      (json_int_t)workers, "transports", (json_int_t)transports, "producers",
      (json_int_t)producers, "consumers", (json_int_t)consumers, "routers",
      (json_int_t)s->n_routers, "shards", (json_int_t)s->n_shards, "pipes",
      (json_int_t)s->n_pipes, "registered_producers", (json_int_t)s->n_producers);
}

static const char *plural(uint64_t n, const char *one, const char *many) {
  return n == 1 ? one : many;
}

static void status_text(const state_t *r, const probe_t *probes, size_t n_probes) {
  const Mafalda__Controller__StatusResponse *st = r->status;
  const snapshot_t *s = r->state;
  printf("Controllers: leader %" PRIu64 " at %s, term %" PRIu64 ", applied index %" PRIu64
         "\n",
         st->leader_id,
         st->leader_address && st->leader_address[0] ? st->leader_address : "(address unknown)",
         r->term, st->last_applied);
  mf_ctl_table_t t = {.cols = 6};
  mf_ctl_table_align(&t, "><<>>>");
  /* Lag against the leader's own answer to the probe: every linearizable read appends a
   * barrier entry, so the State answer's index is already behind. */
  uint64_t leader_applied = st->last_applied;
  for (size_t i = 0; i < n_probes; i++)
    if (probes[i].answered && probes[i].is_leader) leader_applied = probes[i].last_applied;
  mf_ctl_table_row(&t, (const char *const[]){"ID", "RPC", "ROLE", "TERM", "APPLIED", "LAG"});
  for (size_t i = 0; i < n_probes; i++) {
    const probe_t *p = &probes[i];
    char id[24] = "-", term[24] = "", applied[24] = "", lag[24] = "";
    if (p->answered) {
      snprintf(id, sizeof(id), "%" PRIu64, p->id);
      snprintf(term, sizeof(term), "%" PRIu64, p->term);
      snprintf(applied, sizeof(applied), "%" PRIu64, p->last_applied);
      uint64_t behind = leader_applied > p->last_applied ? leader_applied - p->last_applied : 0;
      snprintf(lag, sizeof(lag), "%" PRIu64, behind);
    }
    mf_ctl_table_row(&t, (const char *const[]){id, p->addr, probe_role(p), term, applied, lag});
  }
  mf_ctl_table_print(&t, "  ");

  uint64_t workers = 0, active = 0, transports = 0, producers = 0, consumers = 0, reported = 0;
  mf_ctl_table_t nt = {.cols = 9};
  mf_ctl_table_align(&nt, "<<<>>>>>>");
  mf_ctl_table_row(&nt, (const char *const[]){"NODE", "STATE", "ADDRESS", "WRK", "LOAD", "TRANS",
                                              "PROD", "CONS", "UPTIME"});
  for (size_t i = 0; i < s->n_nodes; i++) {
    const Mafalda__Controller__Node *n = s->nodes[i];
    node_load_t l = node_load(r, n);
    workers += n->n_workers;
    active += n->state == MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE;
    reported += l.reported;
    transports += l.transports;
    producers += l.producers;
    consumers += l.consumers;
    char id[16], w[16], load[16] = "-", tr[24] = "-", pr[24] = "-", co[24] = "-", up[24];
    snprintf(w, sizeof(w), "%zu", n->n_workers);
    if (l.reported) {
      snprintf(load, sizeof(load), "%.0f%%%s", l.load_percent, l.stalled ? "!" : "");
      snprintf(tr, sizeof(tr), "%" PRIu64, l.transports);
      snprintf(pr, sizeof(pr), "%" PRIu64, l.producers);
      snprintf(co, sizeof(co), "%" PRIu64, l.consumers);
    }
    mf_ctl_table_row(&nt, (const char *const[]){
                              mf_ctl_short_id(n->id, id, sizeof(id)), mf_ctl_state_name(n->state),
                              n->rpc_address, w, load, tr, pr, co,
                              mf_ctl_duration(l.reported ? l.uptime_ms : 0, up, sizeof(up))});
  }
  printf("\nNodes: %zu (%" PRIu64 " active)\n", s->n_nodes, active);
  if (s->n_nodes)
    mf_ctl_table_print(&nt, "  ");
  else
    mf_ctl_table_free(&nt);

  printf("\nTotals: %zu %s (%" PRIu64 " active), %" PRIu64 " %s, %" PRIu64 " %s, %" PRIu64
         " %s, %" PRIu64 " %s\n",
         s->n_nodes, plural(s->n_nodes, "node", "nodes"), active, workers,
         plural(workers, "worker", "workers"), transports,
         plural(transports, "transport", "transports"), producers,
         plural(producers, "producer", "producers"), consumers,
         plural(consumers, "consumer", "consumers"));
  printf("State:  %zu %s, %zu %s, %zu %s, %zu %s (load reports: %" PRIu64 "/%zu nodes)\n",
         s->n_routers, plural(s->n_routers, "router", "routers"), s->n_shards,
         plural(s->n_shards, "shard", "shards"), s->n_producers,
         plural(s->n_producers, "producer", "producers"), s->n_pipes,
         plural(s->n_pipes, "pipe", "pipes"), reported, s->n_nodes);
}

static int status_once(bool compact) {
  int rc = MF_CTL_EXIT_OK;
  state_t *r = mf_ctl_fetch_state("status", &rc);
  if (!r) return rc;
  probe_t probes[MF_CTL_MAX_CONTROLLERS + 1];
  size_t n = probe_replicas(r, probes, sizeof(probes) / sizeof(probes[0]));
  if (mf_ctl_opts.json)
    rc = mf_ctl_print_json(status_json(r, probes, n), compact);
  else
    status_text(r, probes, n);
  mafalda__controller__state_response__free_unpacked(r, NULL);
  return rc;
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
  (void)sig;
  interrupted = 1;
}

/* Sleeps ms unless Ctrl-C comes first. */
static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (!interrupted && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int mf_ctl_cmd_status(void) {
  if (!mf_ctl_opts.watch) return status_once(false);
  /* No SA_RESTART: Ctrl-C must cut the sleep short. */
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  bool tty = isatty(STDOUT_FILENO);
  int rc = MF_CTL_EXIT_OK;
  for (int i = 0; !interrupted && (mf_ctl_opts.count == 0 || i < mf_ctl_opts.count); i++) {
    if (i > 0) pause_ms(1000);
    if (interrupted) break;
    if (tty && !mf_ctl_opts.json) fputs("\033[H\033[2J", stdout);
    if (!mf_ctl_opts.json) {
      char when[32];
      time_t now = time(NULL);
      struct tm tm;
      strftime(when, sizeof(when), "%H:%M:%S", localtime_r(&now, &tm));
      printf("%smafalda-ctl status, every 1 s (Ctrl-C to stop)  %s\n\n", i && !tty ? "\n" : "",
             when);
    }
    rc = status_once(true);
    fflush(stdout);
  }
  return interrupted ? MF_CTL_EXIT_OK : rc;
}

/* ---- workers ---- */

static size_t shards_on(const snapshot_t *s, const char *node_id, uint32_t worker) {
  size_t n = 0;
  for (size_t i = 0; i < s->n_shards; i++)
    n += strcmp(s->shards[i]->node_id, node_id) == 0 && s->shards[i]->worker == worker;
  return n;
}

int mf_ctl_cmd_workers(void) {
  int rc = MF_CTL_EXIT_OK;
  state_t *r = mf_ctl_fetch_state("workers", &rc);
  if (!r) return rc;
  const snapshot_t *s = r->state;
  json_t *a = mf_ctl_opts.json ? json_array() : NULL;
  mf_ctl_table_t t = {.cols = 11};
  mf_ctl_table_align(&t, "<>>>>>>>>><");
  mf_ctl_table_row(&t, (const char *const[]){"NODE", "W", "CPU", "LOAD", "PPS_IN", "PPS_OUT",
                                             "SHARDS", "TRANS", "PROD", "CONS", "STALLED"});
  for (size_t i = 0; i < s->n_nodes; i++) {
    const Mafalda__Controller__Node *n = s->nodes[i];
    const Mafalda__Cluster__LoadReport *rep = is_dead(n) ? NULL : mf_ctl_find_load(r, n->id);
    for (size_t k = 0; k < n->n_workers; k++) {
      const Mafalda__Controller__Worker *w = n->workers[k];
      const Mafalda__Cluster__WorkerLoad *wl = mf_ctl_find_worker_load(rep, w->index);
      size_t shards = shards_on(s, n->id, w->index);
      double cpu = wl && isfinite(wl->cpu) && wl->cpu > 0 ? wl->cpu * 100.0 : 0;
      double load = wl ? mf_ctl_worker_load_percent(n, w->index, wl) : 0;
      if (a) {
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:b}", "node_id", n->id,
                              "node_state", mf_ctl_state_name(n->state), "worker",
                              (json_int_t)w->index, "rtc_port", (json_int_t)w->rtc_port,
                              "capacity_pps", (json_int_t)w->capacity_pps, "shards",
                              (json_int_t)shards, "reported", (int)(wl != NULL));
        if (o) {
          json_object_set_new(o, "cpu_percent", wl ? json_real(round(cpu * 10) / 10) : json_null());
          json_object_set_new(o, "load_percent",
                              wl ? json_real(round(load * 10) / 10) : json_null());
          json_object_set_new(o, "packets_in_per_sec",
                              wl ? json_u64(wl->packets_in_per_sec) : json_null());
          json_object_set_new(o, "packets_out_per_sec",
                              wl ? json_u64(wl->packets_out_per_sec) : json_null());
          json_object_set_new(o, "bits_in_per_sec",
                              wl ? json_u64(wl->bits_in_per_sec) : json_null());
          json_object_set_new(o, "bits_out_per_sec",
                              wl ? json_u64(wl->bits_out_per_sec) : json_null());
          json_object_set_new(o, "routers", wl ? json_u64(wl->routers) : json_null());
          json_object_set_new(o, "transports", wl ? json_u64(wl->transports) : json_null());
          json_object_set_new(o, "producers", wl ? json_u64(wl->producers) : json_null());
          json_object_set_new(o, "consumers", wl ? json_u64(wl->consumers) : json_null());
          json_object_set_new(o, "stalled", wl ? json_boolean(wl->stalled) : json_null());
        }
        json_array_append_new(a, o);
        continue;
      }
      char id[16], idx[16], c[16] = "-", l[16] = "-", pin[24] = "-", pout[24] = "-", sh[16],
           tr[16] = "-", pr[16] = "-", co[16] = "-";
      snprintf(idx, sizeof(idx), "%u", w->index);
      snprintf(sh, sizeof(sh), "%zu", shards);
      if (wl) {
        snprintf(c, sizeof(c), "%.0f%%", cpu);
        snprintf(l, sizeof(l), "%.0f%%", load);
        snprintf(pin, sizeof(pin), "%" PRIu64, wl->packets_in_per_sec);
        snprintf(pout, sizeof(pout), "%" PRIu64, wl->packets_out_per_sec);
        snprintf(tr, sizeof(tr), "%u", wl->transports);
        snprintf(pr, sizeof(pr), "%u", wl->producers);
        snprintf(co, sizeof(co), "%u", wl->consumers);
      }
      mf_ctl_table_row(&t, (const char *const[]){mf_ctl_short_id(n->id, id, sizeof(id)), idx, c,
                                                 l, pin, pout, sh, tr, pr, co,
                                                 wl ? (wl->stalled ? "yes" : "no") : "-"});
    }
  }
  mafalda__controller__state_response__free_unpacked(r, NULL);
  if (a) {
    mf_ctl_table_free(&t);
    return mf_ctl_print_json(a, false);
  }
  mf_ctl_table_print(&t, NULL);
  return MF_CTL_EXIT_OK;
}

/* ---- one router ---- */

static const Mafalda__Controller__Router *find_router(const snapshot_t *s, const char *key,
                                                      bool *ambiguous) {
  *ambiguous = false;
  for (size_t i = 0; i < s->n_routers; i++)
    if (strcmp(s->routers[i]->id, key) == 0) return s->routers[i];
  for (size_t i = 0; i < s->n_routers; i++)
    if (strcmp(s->routers[i]->name, key) == 0) return s->routers[i];
  const Mafalda__Controller__Router *found = NULL;
  for (size_t i = 0; i < s->n_routers; i++)
    if (strncmp(s->routers[i]->id, key, strlen(key)) == 0) {
      if (found) *ambiguous = true;
      found = s->routers[i];
    }
  return *ambiguous ? NULL : found;
}

static const Mafalda__Controller__Producer *find_producer(const snapshot_t *s, const char *id) {
  for (size_t i = 0; i < s->n_producers; i++)
    if (strcmp(s->producers[i]->id, id) == 0) return s->producers[i];
  return NULL;
}

static const Mafalda__Controller__Node *find_node(const snapshot_t *s, const char *id) {
  for (size_t i = 0; i < s->n_nodes; i++)
    if (strcmp(s->nodes[i]->id, id) == 0) return s->nodes[i];
  return NULL;
}

typedef struct {
  size_t producers, pipes_in, pipes_out;
  bool exact;                 /* the worker holds no other router's shard */
  bool reported;
  uint64_t worker_transports; /* every router's transports on that worker */
} shard_info_t;

static shard_info_t shard_info(const state_t *r, const char *router_id,
                               const Mafalda__Controller__Shard *sh) {
  const snapshot_t *s = r->state;
  shard_info_t out = {0};
  for (size_t i = 0; i < s->n_producers; i++) {
    const Mafalda__Controller__Producer *p = s->producers[i];
    out.producers += strcmp(p->router_id, router_id) == 0 && strcmp(p->node_id, sh->node_id) == 0 &&
                     p->worker == sh->worker;
  }
  for (size_t i = 0; i < s->n_pipes; i++) {
    const Mafalda__Controller__Pipe *p = s->pipes[i];
    const Mafalda__Controller__Producer *prod = find_producer(s, p->producer_id);
    if (!prod || strcmp(prod->router_id, router_id) != 0) continue;
    out.pipes_in += strcmp(p->target_node_id, sh->node_id) == 0 && p->target_worker == sh->worker;
    out.pipes_out += strcmp(p->source_node_id, sh->node_id) == 0 && p->source_worker == sh->worker;
  }
  out.exact = shards_on(s, sh->node_id, sh->worker) == 1;
  const Mafalda__Controller__Node *n = find_node(s, sh->node_id);
  const Mafalda__Cluster__LoadReport *rep =
      n && !is_dead(n) ? mf_ctl_find_load(r, sh->node_id) : NULL;
  const Mafalda__Cluster__WorkerLoad *wl = mf_ctl_find_worker_load(rep, sh->worker);
  out.reported = wl != NULL;
  out.worker_transports = wl ? wl->transports : 0;
  return out;
}

static void node_worker(const char *node_id, uint32_t worker, char *out, size_t size) {
  char id[16];
  snprintf(out, size, "%s/%u", mf_ctl_short_id(node_id, id, sizeof(id)), worker);
}

static int router_json(const state_t *r, const Mafalda__Controller__Router *ro) {
  const snapshot_t *s = r->state;
  json_t *shards = json_array(), *producers = json_array(), *pipes = json_array();
  for (size_t i = 0; i < s->n_shards; i++) {
    const Mafalda__Controller__Shard *sh = s->shards[i];
    if (strcmp(sh->router_id, ro->id) != 0) continue;
    shard_info_t in = shard_info(r, ro->id, sh);
    const Mafalda__Controller__Node *n = find_node(s, sh->node_id);
    json_array_append_new(
        shards, json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:o, s:o}", "node_id", sh->node_id,
                          "worker", (json_int_t)sh->worker, "node_state",
                          n ? mf_ctl_state_name(n->state) : "unknown", "producers",
                          (json_int_t)in.producers, "pipes_in", (json_int_t)in.pipes_in,
                          "pipes_out", (json_int_t)in.pipes_out, "transports",
                          in.reported && in.exact ? json_u64(in.worker_transports) : json_null(),
                          "worker_transports",
                          in.reported ? json_u64(in.worker_transports) : json_null()));
  }
  for (size_t i = 0; i < s->n_producers; i++) {
    const Mafalda__Controller__Producer *p = s->producers[i];
    if (strcmp(p->router_id, ro->id) != 0) continue;
    json_array_append_new(producers, json_pack("{s:s, s:s, s:s, s:I}", "id", p->id, "kind",
                                               p->kind, "node_id", p->node_id, "worker",
                                               (json_int_t)p->worker));
  }
  for (size_t i = 0; i < s->n_pipes; i++) {
    const Mafalda__Controller__Pipe *p = s->pipes[i];
    const Mafalda__Controller__Producer *prod = find_producer(s, p->producer_id);
    if (!prod || strcmp(prod->router_id, ro->id) != 0) continue;
    json_array_append_new(
        pipes, json_pack("{s:s, s:s, s:s, s:I, s:s, s:I}", "producer_id", p->producer_id,
                         "kind", prod->kind, "source_node_id", p->source_node_id,
                         "source_worker", (json_int_t)p->source_worker, "target_node_id",
                         p->target_node_id, "target_worker", (json_int_t)p->target_worker));
  }
  return mf_ctl_print_json(
      json_pack("{s:s, s:s, s:o*, s:o*, s:o, s:o, s:o}", "id", ro->id, "name", ro->name,
                "codecs", mf_ctl_opaque_json(ro->codecs_json), "app_data",
                mf_ctl_opaque_json(ro->app_data_json), "shards", shards, "producers",
                producers, "pipes", pipes),
      false);
}

static void router_text(const state_t *r, const Mafalda__Controller__Router *ro) {
  const snapshot_t *s = r->state;
  printf("Router %s \"%s\"\n", ro->id, ro->name);
  mf_ctl_table_t t = {.cols = 7};
  mf_ctl_table_align(&t, "<><>>>>");
  mf_ctl_table_row(&t, (const char *const[]){"NODE", "WORKER", "STATE", "TRANSPORTS",
                                             "PRODUCERS", "PIPES_IN", "PIPES_OUT"});
  size_t n_shards = 0;
  for (size_t i = 0; i < s->n_shards; i++) {
    const Mafalda__Controller__Shard *sh = s->shards[i];
    if (strcmp(sh->router_id, ro->id) != 0) continue;
    n_shards++;
    shard_info_t in = shard_info(r, ro->id, sh);
    const Mafalda__Controller__Node *n = find_node(s, sh->node_id);
    char id[16], w[16], tr[32] = "-", pr[16], pi[16], po[16];
    snprintf(w, sizeof(w), "%u", sh->worker);
    if (in.reported)
      snprintf(tr, sizeof(tr), "%s%" PRIu64, in.exact ? "" : "<=", in.worker_transports);
    snprintf(pr, sizeof(pr), "%zu", in.producers);
    snprintf(pi, sizeof(pi), "%zu", in.pipes_in);
    snprintf(po, sizeof(po), "%zu", in.pipes_out);
    mf_ctl_table_row(&t, (const char *const[]){mf_ctl_short_id(sh->node_id, id, sizeof(id)), w,
                                               n ? mf_ctl_state_name(n->state) : "unknown", tr,
                                               pr, pi, po});
  }
  printf("\nShards: %zu\n", n_shards);
  if (n_shards)
    mf_ctl_table_print(&t, "  ");
  else
    mf_ctl_table_free(&t);

  mf_ctl_table_t pt = {.cols = 4};
  mf_ctl_table_row(&pt, (const char *const[]){"PRODUCER", "KIND", "SOURCE", "TARGET"});
  size_t n_pipes = 0;
  for (size_t i = 0; i < s->n_pipes; i++) {
    const Mafalda__Controller__Pipe *p = s->pipes[i];
    const Mafalda__Controller__Producer *prod = find_producer(s, p->producer_id);
    if (!prod || strcmp(prod->router_id, ro->id) != 0) continue;
    n_pipes++;
    char src[32], dst[40];
    node_worker(p->source_node_id, p->source_worker, src, sizeof(src));
    char tgt[32];
    node_worker(p->target_node_id, p->target_worker, tgt, sizeof(tgt));
    snprintf(dst, sizeof(dst), "-> %s", tgt);
    mf_ctl_table_row(&pt, (const char *const[]){p->producer_id, prod->kind, src, dst});
  }
  size_t n_prod = 0;
  for (size_t i = 0; i < s->n_producers; i++)
    n_prod += strcmp(s->producers[i]->router_id, ro->id) == 0;
  printf("\nProducers: %zu, pipes: %zu\n", n_prod, n_pipes);
  if (n_pipes)
    mf_ctl_table_print(&pt, "  ");
  else
    mf_ctl_table_free(&pt);
  if (n_shards)
    printf("\nTRANSPORTS: the worker's, from its load report (\"<=\": the worker also hosts\n"
           "other routers' shards); PRODUCERS: those originating on the shard.\n");
}

int mf_ctl_cmd_router(const char *key) {
  int rc = MF_CTL_EXIT_OK;
  state_t *r = mf_ctl_fetch_state("routers", &rc);
  if (!r) return rc;
  bool ambiguous;
  const Mafalda__Controller__Router *ro = find_router(r->state, key, &ambiguous);
  if (!ro) {
    char msg[600];
    snprintf(msg, sizeof(msg), "%s '%.500s'",
             ambiguous ? "several routers have ids starting with" : "no router named or with id",
             key);
    rc = mf_ctl_fail("routers", msg, MF_CTL_EXIT_FAIL);
  } else if (mf_ctl_opts.json) {
    rc = router_json(r, ro);
  } else {
    router_text(r, ro);
  }
  mafalda__controller__state_response__free_unpacked(r, NULL);
  return rc;
}
