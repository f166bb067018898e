/* Shards the controller places on this node (node.OpenShard / node.CloseShard through the
 * agent), the fence after the controller declared this node dead, and the per-worker
 * object counts the agent reports. */
#define MF_LOG_MODULE "gateway"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/gateway_internal.h"
#include "node/ortc.h"

typedef struct {
  mf_gateway_counts_t *counts;
  uint32_t n;
} gw_count_t;

static void gw_count_fn(const void *key, void *value, void *ud) {
  gw_count_t *c = ud;
  gw_obj_t *o = value;
  if (o->worker >= c->n) return; /* remote producers have no worker here */
  mf_gateway_counts_t *w = &c->counts[o->worker];
  if (o->kind == GW_TRANSPORT) w->transports++;
  else if (o->kind == GW_PRODUCER) w->producers++;
  else if (o->kind == GW_PIPE_OUT) w->node_pipes_out++;
  else if (o->kind == GW_CONSUMER) w->consumers++;
}

static void gw_count_pipe_fn(const void *key, void *value, void *ud) {
  gw_count_t *c = ud;
  gw_pipe_t *p = value;
  if (p->remote) {
    if (p->ready && p->dst < c->n) c->counts[p->dst].node_pipes_in++;
    return;
  }
  if (p->dst < c->n) c->counts[p->dst].pipes_in++;
  if (p->src < c->n) c->counts[p->src].pipes_out++;
}

void mf_gateway_counts(mf_gateway_t *gw, mf_gateway_counts_t *out, uint32_t n) {
  memset(out, 0, sizeof *out * n);
  gw_count_t c = {.counts = out, .n = n};
  uv_mutex_lock(&gw->mu);
  mf_hashmap_foreach(gw->objs, gw_count_fn, &c);
  mf_hashmap_foreach(gw->pipes, gw_count_pipe_fn, &c);
  for (gw_room_t *r = gw->rooms; r; r = r->next)
    for (uint32_t w = 0; w < gw->worker_count && w < n; w++)
      if (r->shards[w].open) out[w].routers++;
  uv_mutex_unlock(&gw->mu);
}

mf_err_t mf_gateway_open_shard(mf_gateway_t *gw, const char *router_id, const char *name,
                               const char *codecs_json, uint32_t worker, char *err,
                               size_t errsz) {
  if (!router_id || !router_id[0] || strlen(router_id) > MF_ID_LEN) {
    snprintf(err, errsz, "router id must be 1..%d bytes", MF_ID_LEN);
    return MF_ERR_INVALID_ARG;
  }
  if (!name || !name[0] || strlen(name) > GW_ROOM_MAX) {
    snprintf(err, errsz, "router name must be 1..%d bytes", GW_ROOM_MAX);
    return MF_ERR_INVALID_ARG;
  }
  if (worker >= gw->worker_count) {
    snprintf(err, errsz, "no worker %u on this node (it has %u)", worker, gw->worker_count);
    return MF_ERR_INVALID_ARG;
  }
  mf_rtp_codec_capability_t *codecs = NULL;
  size_t count = 0;
  if (codecs_json && codecs_json[0]) {
    json_error_t je;
    json_t *jc = json_loads(codecs_json, 0, &je);
    if (!jc) {
      snprintf(err, errsz, "codecs are not JSON: %s", je.text);
      return MF_ERR_PARSE;
    }
    mf_err_t e = mf_ortc_parse_media_codecs(jc, "codecs", &codecs, &count, err, errsz);
    json_decref(jc);
    if (e) return e;
  }
  uv_mutex_lock(&gw->mu);
  gw_room_t *room = gw->rooms;
  while (room && strcmp(room->name, name) != 0) room = room->next;
  if (room && (room->state != GW_ROOM_READY || strcmp(room->router_id, router_id) != 0)) {
    snprintf(err, errsz, "room '%s' is already router %s here", name,
             room->router_id[0] ? room->router_id : "(opening)");
    uv_mutex_unlock(&gw->mu);
    free(codecs);
    return MF_ERR_EXISTS;
  }
  if (!room && (room = calloc(1, sizeof *room)) != NULL) {
    room->shards = calloc(gw->worker_count, sizeof *room->shards);
    if (!room->shards) {
      free(room);
      room = NULL;
    } else {
      snprintf(room->name, sizeof room->name, "%s", name);
      snprintf(room->router_id, sizeof room->router_id, "%s", router_id);
      room->home = worker;
      room->state = GW_ROOM_READY;
      room->placed_by_controller = true;
      room->codecs = codecs;
      room->codec_count = count;
      codecs = NULL;
      room->next = gw->rooms;
      gw->rooms = room;
    }
  }
  uv_mutex_unlock(&gw->mu);
  free(codecs); /* an existing room keeps the codecs it has */
  if (!room) {
    snprintf(err, errsz, "out of memory");
    return MF_ERR_NO_MEMORY;
  }
  uv_sem_t done;
  uv_sem_init(&done, 0);
  mf_err_t result = MF_ERR_CLOSED;
  gw_cmd_t *c = mf_gw_cmd(gw, room, OP_OPEN_SHARD, worker, NULL, NULL, NULL, NULL);
  if (c) {
    c->done = &done;
    c->result = &result;
    c->err = err;
    c->errsz = errsz;
    mf_gw_send(c); /* posts done itself when the worker is gone */
    uv_sem_wait(&done);
  } else {
    result = MF_ERR_NO_MEMORY;
  }
  uv_sem_destroy(&done);
  if (result == MF_ERR_CLOSED) snprintf(err, errsz, "the node is shutting down");
  if (result == MF_ERR_NO_MEMORY) snprintf(err, errsz, "out of memory");
  return result;
}

mf_err_t mf_gateway_close_shard(mf_gateway_t *gw, const char *router_id) {
  uv_mutex_lock(&gw->mu);
  gw_room_t *room = gw->rooms;
  while (room && !(router_id && router_id[0] && strcmp(room->router_id, router_id) == 0))
    room = room->next;
  uv_mutex_unlock(&gw->mu);
  if (!room) return MF_ERR_NOT_FOUND;
  mf_gw_close_shards(gw, room, false);
  return MF_OK;
}

/* ------------------------------------------------------------ fencing after a death */

size_t mf_gateway_fence(mf_gateway_t *gw) {
  if (!gw) return 0;
  /* Rooms leave the list only at stop, so the pointers stay valid after unlocking; the
   * closes must run unlocked (the workers take mu). */
  size_t n = 0, cap = 0, closed = 0;
  gw_room_t **placed = NULL;
  uv_mutex_lock(&gw->mu);
  for (gw_room_t *r = gw->rooms; r && !gw->stopping; r = r->next) {
    bool open = false;
    for (uint32_t w = 0; w < gw->worker_count; w++) open |= r->shards[w].open;
    if (!r->placed_by_controller || r->state != GW_ROOM_READY || !open) continue;
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      gw_room_t **grown = realloc(placed, ncap * sizeof *placed);
      if (!grown) break;
      placed = grown;
      cap = ncap;
    }
    placed[n++] = r;
  }
  uv_mutex_unlock(&gw->mu);
  for (size_t i = 0; i < n; i++) {
    gw_room_t *room = placed[i];
    MF_LOG_WARN("room '%s' (router %s): the controller dropped this node's shard while it "
                "was dead; closing it here (transports end with routerclose)", room->name,
                room->router_id);
    mf_gw_close_shards(gw, room, false);
    uv_mutex_lock(&gw->mu);
    /* The peers forgot this node when gossip declared it dead: the next placement must
     * sync with them again (node.RoomSync) so they hear of its producers. */
    room->synced = false;
    uv_mutex_unlock(&gw->mu);
    closed++;
  }
  free(placed);
  return closed;
}

/* ------------------------------------------------------------ idle shards */

typedef struct {
  const gw_room_t *room;
  uint32_t worker;
  size_t transports;
} gw_idle_count_t;

static void gw_idle_count_fn(const void *key, void *value, void *ud) {
  (void)key;
  gw_idle_count_t *c = ud;
  const gw_obj_t *o = value;
  if (o->kind == GW_TRANSPORT && o->room == c->room && o->worker == c->worker) c->transports++;
}

/* mu held. */
static size_t gw_shard_transports_locked(mf_gateway_t *gw, gw_room_t *room, uint32_t worker) {
  gw_idle_count_t c = {.room = room, .worker = worker};
  mf_hashmap_foreach(gw->objs, gw_idle_count_fn, &c);
  return c.transports;
}

void mf_gw_shard_check_idle(mf_gateway_t *gw, gw_room_t *room, uint32_t worker) {
  if (worker >= gw->worker_count) return;
  uv_mutex_lock(&gw->mu);
  bool idle = !gw->stopping && room->shards[worker].open &&
              gw_shard_transports_locked(gw, room, worker) == 0;
  uint32_t gen = idle ? ++room->shards[worker].idle_gen : 0;
  uv_mutex_unlock(&gw->mu);
  if (!idle) return;
  gw_cmd_t *c = mf_gw_cmd(gw, room, OP_SHARD_IDLE, worker, NULL, NULL, NULL, NULL);
  if (!c) return;
  c->gen = gen;
  mf_gw_send(c);
}

bool mf_gw_shard_idle_ok(mf_gateway_t *gw, gw_room_t *room, uint32_t worker, uint32_t gen) {
  uv_mutex_lock(&gw->mu);
  bool ok = room->shards[worker].open && room->shards[worker].idle_gen == gen &&
            gw_shard_transports_locked(gw, room, worker) == 0;
  uv_mutex_unlock(&gw->mu);
  return ok;
}

void mf_gw_shard_closed_idle(mf_gateway_t *gw, gw_room_t *room, uint32_t worker) {
  char node_id[65], router_id[MF_ID_LEN + 1];
  uv_mutex_lock(&gw->mu);
  bool placed = room->placed_by_controller;
  memcpy(router_id, room->router_id, sizeof router_id);
  uv_mutex_unlock(&gw->mu);
  MF_LOG_INFO("room '%s': shard on worker %u closed (no transports for %u ms)", room->name,
              worker, gw->linger_ms);
  if (!placed || !mf_gw_node_id(gw, node_id)) return;
  Mafalda__Controller__Shard sh = MAFALDA__CONTROLLER__SHARD__INIT;
  sh.router_id = router_id;
  sh.node_id = node_id;
  sh.worker = worker;
  Mafalda__Controller__RemoveShard rs = MAFALDA__CONTROLLER__REMOVE_SHARD__INIT;
  rs.shard = &sh;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_REMOVE_SHARD;
  cmd.remove_shard = &rs;
  mf_gw_tell_controller(gw, &cmd);
}
