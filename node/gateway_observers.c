#define MF_LOG_MODULE "observer"
#include "node/gateway_observers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "node/rtp_observer.h"

typedef struct gw_observer {
  struct gw_observer *next;
  char id[MF_ID_LEN + 1];
  gw_room_t *room;
  mf_rtp_observer_t *obs;
  struct {
    char id[MF_ID_LEN + 1];
    uint32_t worker; /* where its levels are measured (its origin) */
  } prods[MF_RTP_OBSERVER_MAX_PRODUCERS];
  size_t prod_count;
} gw_observer_t;

/* A producer measured on a worker, and by how many observers. */
typedef struct {
  gw_room_t *room;
  char id[MF_ID_LEN + 1];
  uint32_t refs;
  mf_audio_level_summary_t last; /* the latest take, fed to the registry */
} gw_measured_t;

/* Worker-thread state of one worker (only that thread touches it). */
typedef struct {
  gw_observers_t *reg;
  uint32_t worker;
  uv_timer_t *timer; /* malloc'd (freed by its close callback); NULL when idle */
  bool stopped;
  gw_measured_t *items;
  size_t count, cap;
} gw_level_worker_t;

struct gw_observers {
  mf_gateway_t *gw;
  uv_mutex_t mu; /* list and every observer in it */
  gw_observer_t *list;
  gw_level_worker_t *workers; /* gw->worker_count entries */
};

mf_err_t mf_gw_observers_create(mf_gateway_t *gw, gw_observers_t **out) {
  gw_observers_t *o = calloc(1, sizeof *o);
  if (!o) return MF_ERR_NO_MEMORY;
  o->workers = calloc(gw->worker_count, sizeof *o->workers);
  if (!o->workers) {
    free(o);
    return MF_ERR_NO_MEMORY;
  }
  for (uint32_t w = 0; w < gw->worker_count; w++) {
    o->workers[w].reg = o;
    o->workers[w].worker = w;
  }
  o->gw = gw;
  uv_mutex_init(&o->mu);
  *out = o;
  return MF_OK;
}

void mf_gw_observers_destroy(gw_observers_t *o) {
  if (!o) return;
  while (o->list) {
    gw_observer_t *x = o->list;
    o->list = x->next;
    mf_rtp_observer_destroy(x->obs);
    free(x);
  }
  for (uint32_t w = 0; w < o->gw->worker_count; w++) free(o->workers[w].items);
  free(o->workers);
  uv_mutex_destroy(&o->mu);
  free(o);
}

/* ------------------------------------------------------------ notifications */

/* mu held (the lock order allows the gateway's mutex inside). */
static void gw_obs_emit(mf_gateway_t *gw, gw_observer_t *o, const mf_rtp_observer_event_t *ev) {
  json_t *data = NULL;
  const char *name = NULL;
  if (ev->kind == MF_RTP_OBSERVER_EV_VOLUMES) {
    name = "rtpObserver.volumes";
    data = json_array();
    for (size_t i = 0; i < ev->count; i++)
      json_array_append_new(data, json_pack("{s:s, s:i}", "producerId", ev->volumes[i].producer_id,
                                            "volume", ev->volumes[i].volume));
  } else if (ev->kind == MF_RTP_OBSERVER_EV_SILENCE) {
    name = "rtpObserver.silence";
    data = json_object();
  } else if (ev->kind == MF_RTP_OBSERVER_EV_DOMINANT) {
    name = "rtpObserver.dominantspeaker";
    data = json_pack("{s:s}", "producerId", ev->producer_id);
  }
  if (name) mf_gw_notify_room(gw, o->room, NULL, name, o->id, data);
}

/* Levels from one worker's report; every observer whose interval is due ends it. */
static void gw_obs_feed(gw_observers_t *reg, const gw_measured_t *items, size_t n, uint64_t now) {
  mf_rtp_observer_event_t *ev = malloc(sizeof *ev);
  if (!ev) return;
  uv_mutex_lock(&reg->mu);
  for (gw_observer_t *o = reg->list; o; o = o->next) {
    for (size_t i = 0; i < n; i++) mf_rtp_observer_on_levels(o->obs, items[i].id, &items[i].last);
    if (mf_rtp_observer_tick(o->obs, now, ev)) gw_obs_emit(reg->gw, o, ev);
  }
  uv_mutex_unlock(&reg->mu);
  free(ev);
}

/* ------------------------------------------------------------ worker side */

static void gw_level_timer_closed(uv_handle_t *h) { free(h); }

static void gw_level_stop_timer(gw_level_worker_t *lw) {
  if (!lw->timer) return;
  uv_timer_stop(lw->timer);
  uv_close((uv_handle_t *)lw->timer, gw_level_timer_closed);
  lw->timer = NULL;
}

static mf_producer_t *gw_level_producer(gw_level_worker_t *lw, const gw_measured_t *m) {
  mf_router_t *r = m->room->shards[lw->worker].router;
  return r ? mf_router_find_producer(r, m->id) : NULL;
}

static void gw_level_remove(gw_level_worker_t *lw, size_t i) {
  lw->items[i] = lw->items[--lw->count];
}

static void gw_level_tick(uv_timer_t *t) {
  gw_level_worker_t *lw = t->data;
  for (size_t i = lw->count; i-- > 0;) {
    mf_producer_t *p = gw_level_producer(lw, &lw->items[i]);
    if (!p) { /* closed (with its shard, or by its owner) */
      gw_level_remove(lw, i);
      continue;
    }
    mf_producer_take_audio_level(p, &lw->items[i].last);
  }
  if (lw->count > 0) gw_obs_feed(lw->reg, lw->items, lw->count, mf_clock_now_ms());
  if (lw->count == 0) gw_level_stop_timer(lw);
}

void mf_gw_observers_run(gw_cmd_t *c, mf_worker_t *w) {
  gw_level_worker_t *lw = &c->gw->observers->workers[c->worker];
  size_t i = 0;
  while (i < lw->count && (lw->items[i].room != c->room || strcmp(lw->items[i].id, c->target) != 0))
    i++;
  gw_measured_t *m = i < lw->count ? &lw->items[i] : NULL;
  gw_measured_t probe = {.room = c->room};
  memcpy(probe.id, c->target, sizeof probe.id);
  mf_producer_t *p = gw_level_producer(lw, &probe);
  if (!c->flag) {
    if (!m) return;
    if (p) mf_producer_observe_audio_level(p, false);
    if (--m->refs == 0) gw_level_remove(lw, i);
    if (lw->count == 0) gw_level_stop_timer(lw);
    return;
  }
  if (lw->stopped || !p) return; /* stopping, or the producer closed meanwhile */
  if (!m) {
    if (lw->count == lw->cap) {
      size_t cap = lw->cap ? lw->cap * 2 : 8;
      gw_measured_t *items = realloc(lw->items, cap * sizeof *items);
      if (!items) return;
      lw->items = items;
      lw->cap = cap;
    }
    m = &lw->items[lw->count++];
    memset(m, 0, sizeof *m);
    m->room = c->room;
    memcpy(m->id, c->target, sizeof m->id);
  }
  if (mf_producer_observe_audio_level(p, true) != MF_OK) {
    if (m->refs == 0) gw_level_remove(lw, (size_t)(m - lw->items));
    return;
  }
  m->refs++;
  if (lw->timer) return;
  lw->timer = malloc(sizeof *lw->timer);
  if (!lw->timer) return;
  uv_timer_init(mf_worker_loop(w), lw->timer);
  lw->timer->data = lw;
  uv_timer_start(lw->timer, gw_level_tick, MF_GW_OBSERVER_REPORT_MS, MF_GW_OBSERVER_REPORT_MS);
}

void mf_gw_observers_quiesce(mf_gateway_t *gw, uint32_t worker) {
  if (!gw->observers || worker >= gw->worker_count) return;
  gw_level_worker_t *lw = &gw->observers->workers[worker];
  lw->stopped = true;
  gw_level_stop_timer(lw);
}

/* ------------------------------------------------------------ API */

static gw_room_t *gw_obs_room(mf_api_call_t *call) {
  gw_session_t *gs = mf_api_session_get_user(mf_api_call_session(call));
  if (!gs || !gs->room) mf_api_call_fail(call, MF_ERR_STATE, "call router.join first");
  return gs ? gs->room : NULL;
}

/* data.<field>: absent keeps *out; otherwise it must be an integer. */
static bool gw_obs_int(mf_api_call_t *call, const json_t *data, const char *field, long long *out) {
  json_t *v = json_object_get(data, field);
  if (!v) return true;
  if (!json_is_integer(v)) {
    mf_api_call_fail(call, MF_ERR_INVALID_ARG, "data.%s must be an integer", field);
    return false;
  }
  *out = json_integer_value(v);
  return true;
}

void mf_gw_observer_create(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  mf_gateway_t *gw = ctx;
  gw_room_t *room = gw_obs_room(call);
  if (!room) return;
  bool audio = strcmp(req->method, "router.createAudioLevelObserver") == 0;
  mf_rtp_observer_config_t cfg;
  mf_rtp_observer_config_default(audio ? MF_RTP_OBSERVER_AUDIO_LEVEL : MF_RTP_OBSERVER_ACTIVE_SPEAKER,
                                 &cfg);
  long long max_entries = cfg.max_entries, threshold = cfg.threshold, interval = cfg.interval_ms;
  if (!gw_obs_int(call, req->data, "interval", &interval)) return;
  if (audio && (!gw_obs_int(call, req->data, "maxEntries", &max_entries) ||
                !gw_obs_int(call, req->data, "threshold", &threshold)))
    return;
  if (max_entries < 1 || max_entries > MF_RTP_OBSERVER_MAX_PRODUCERS || threshold < -127 ||
      threshold > 0 || interval < 0 || interval > 3600000)
    return (void)mf_api_call_fail(call, MF_ERR_INVALID_ARG,
                                  "maxEntries must be 1..%d, threshold -127..0 (dBov), interval "
                                  "a positive number of ms",
                                  MF_RTP_OBSERVER_MAX_PRODUCERS);
  cfg.max_entries = (uint32_t)max_entries;
  cfg.threshold = (int)threshold;
  cfg.interval_ms = (uint32_t)interval;
  gw_observer_t *o = calloc(1, sizeof *o);
  if (!o) return (void)mf_api_call_fail(call, MF_ERR_NO_MEMORY, "out of memory");
  o->room = room;
  mf_err_t e = mf_id_generate(o->id);
  if (!e) e = mf_rtp_observer_create(&cfg, mf_clock_now_ms(), &o->obs);
  if (e) {
    free(o);
    return (void)mf_api_call_fail(call, e, "cannot create the observer");
  }
  gw_observers_t *reg = gw->observers;
  uv_mutex_lock(&reg->mu);
  o->next = reg->list;
  reg->list = o;
  uv_mutex_unlock(&reg->mu);
  MF_LOG_INFO("room '%s': %s %s (interval %u ms)", room->name,
              audio ? "AudioLevelObserver" : "ActiveSpeakerObserver", o->id,
              mf_rtp_observer_config(o->obs)->interval_ms);
  mf_api_call_reply(call, json_pack("{s:s}", "id", o->id));
}

/* mu held. */
static gw_observer_t *gw_obs_find(gw_observers_t *reg, const char *id, const gw_room_t *room) {
  for (gw_observer_t *o = reg->list; o; o = o->next)
    if (o->room == room && strcmp(o->id, id) == 0) return o;
  return NULL;
}

/* mu held: forgets a producer of o; *worker gets where it was measured. */
static bool gw_obs_drop_producer(mf_gateway_t *gw, gw_observer_t *o, const char *pid,
                                 uint32_t *worker) {
  if (!mf_rtp_observer_remove_producer(o->obs, pid)) return false;
  for (size_t i = 0; i < o->prod_count; i++) {
    if (strcmp(o->prods[i].id, pid) != 0) continue;
    *worker = o->prods[i].worker;
    o->prods[i] = o->prods[--o->prod_count];
    break;
  }
  mf_rtp_observer_event_t *ev = malloc(sizeof *ev);
  if (ev && mf_rtp_observer_idle(o->obs, ev)) gw_obs_emit(gw, o, ev);
  free(ev);
  return true;
}

static void gw_obs_measure(mf_gateway_t *gw, gw_room_t *room, uint32_t worker, const char *pid,
                           bool on) {
  gw_cmd_t *c = mf_gw_cmd(gw, room, OP_AUDIO_LEVEL, worker, NULL, NULL, NULL, pid);
  if (!c) return;
  c->flag = on;
  mf_gw_send(c);
}

/* rtpObserver.addProducer: a local audio producer of the observer's room. */
static void gw_obs_add(mf_gateway_t *gw, mf_api_call_t *call, gw_room_t *room, const char *oid,
                       const char *pid) {
  char key[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  gw_obj_t *obj = mf_hashmap_get(gw->objs, mf_gw_key(pid, key));
  gw_kind_t kind = obj && obj->room == room ? obj->kind : GW_TRANSPORT;
  bool audio = obj && strcmp(obj->media_kind, "audio") == 0;
  uint32_t worker = obj ? obj->worker : 0;
  uv_mutex_unlock(&gw->mu);
  if (kind == GW_REMOTE_PRODUCER)
    return (void)mf_api_call_fail(call, MF_ERR_UNSUPPORTED,
                                  "producer %s lives on another node: not observable here", pid);
  if (kind != GW_PRODUCER)
    return (void)mf_api_call_fail(call, MF_ERR_NOT_FOUND, "producer %s not found in this room", pid);
  if (!audio)
    return (void)mf_api_call_fail(call, MF_ERR_INVALID_ARG, "producer %s is not an audio producer", pid);
  gw_observers_t *reg = gw->observers;
  uv_mutex_lock(&reg->mu);
  gw_observer_t *o = gw_obs_find(reg, oid, room);
  mf_err_t e = o ? mf_rtp_observer_add_producer(o->obs, pid) : MF_ERR_NOT_FOUND;
  if (!e) {
    memcpy(o->prods[o->prod_count].id, pid, strlen(pid) + 1);
    o->prods[o->prod_count++].worker = worker;
  }
  uv_mutex_unlock(&reg->mu);
  if (e == MF_ERR_NOT_FOUND)
    return (void)mf_api_call_fail(call, e, "rtpObserver %s not found in this room", oid);
  if (e == MF_ERR_EXISTS)
    return (void)mf_api_call_fail(call, e, "producer %s is already in rtpObserver %s", pid, oid);
  if (e)
    return (void)mf_api_call_fail(call, e, "rtpObserver %s: at most %d producers", oid,
                                  MF_RTP_OBSERVER_MAX_PRODUCERS);
  gw_obs_measure(gw, room, worker, pid, true);
  mf_api_call_reply(call, json_object());
}

void mf_gw_observer_method(void *ctx, mf_api_call_t *call, const mf_api_request_t *req) {
  mf_gateway_t *gw = ctx;
  gw_observers_t *reg = gw->observers;
  gw_room_t *room = gw_obs_room(call);
  if (!room) return;
  const char *oid = json_string_value(json_object_get(req->data, "rtpObserverId"));
  if (!oid || !mf_id_is_valid(oid))
    return (void)mf_api_call_fail(call, MF_ERR_INVALID_ARG,
                                  "data.rtpObserverId must be an id (UUIDv4 string)");
  const char *m = req->method;
  bool add = strcmp(m, "rtpObserver.addProducer") == 0;
  bool remove = strcmp(m, "rtpObserver.removeProducer") == 0;
  const char *pid = json_string_value(json_object_get(req->data, "producerId"));
  if ((add || remove) && (!pid || !mf_id_is_valid(pid)))
    return (void)mf_api_call_fail(call, MF_ERR_INVALID_ARG,
                                  "data.producerId must be an id (UUIDv4 string)");
  if (add) return gw_obs_add(gw, call, room, oid, pid);
  mf_rtp_observer_event_t *ev = malloc(sizeof *ev);
  if (!ev) return (void)mf_api_call_fail(call, MF_ERR_NO_MEMORY, "out of memory");
  uv_mutex_lock(&reg->mu);
  gw_observer_t *o = gw_obs_find(reg, oid, room);
  bool found = o != NULL;
  uint32_t worker = 0;
  bool removed = false;
  if (o && remove) {
    removed = gw_obs_drop_producer(gw, o, pid, &worker);
  } else if (o && strcmp(m, "rtpObserver.pause") == 0) {
    if (mf_rtp_observer_pause(o->obs, ev)) gw_obs_emit(gw, o, ev);
  } else if (o && strcmp(m, "rtpObserver.resume") == 0) {
    mf_rtp_observer_resume(o->obs, mf_clock_now_ms());
  } else if (o && strcmp(m, "rtpObserver.close") == 0) { /* out of the list: unmeasured below */
    for (gw_observer_t **pp = &reg->list; *pp; pp = &(*pp)->next) {
      if (*pp == o) {
        *pp = o->next;
        break;
      }
    }
  }
  uv_mutex_unlock(&reg->mu);
  free(ev);
  if (!found) return (void)mf_api_call_fail(call, MF_ERR_NOT_FOUND, "rtpObserver %s not found in this room", oid);
  if (remove && !removed)
    return (void)mf_api_call_fail(call, MF_ERR_NOT_FOUND, "producer %s is not in rtpObserver %s", pid, oid);
  if (remove) gw_obs_measure(gw, room, worker, pid, false);
  if (strcmp(m, "rtpObserver.close") == 0) {
    for (size_t i = 0; i < o->prod_count; i++)
      gw_obs_measure(gw, room, o->prods[i].worker, o->prods[i].id, false);
    MF_LOG_INFO("room '%s': rtpObserver %s closed", room->name, o->id);
    mf_rtp_observer_destroy(o->obs);
    free(o);
  }
  mf_api_call_reply(call, json_object());
}

void mf_gw_observers_producer_closed(mf_gateway_t *gw, const char *producer_id) {
  gw_observers_t *reg = gw->observers;
  if (!reg) return;
  uint32_t worker;
  uv_mutex_lock(&reg->mu);
  /* the worker already dropped its measurement with the producer */
  for (gw_observer_t *o = reg->list; o; o = o->next) gw_obs_drop_producer(gw, o, producer_id, &worker);
  uv_mutex_unlock(&reg->mu);
}
