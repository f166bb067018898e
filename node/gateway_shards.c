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
  if (o->room->worker >= c->n) return;
  mf_gateway_counts_t *w = &c->counts[o->room->worker];
  if (o->kind == GW_TRANSPORT) w->transports++;
  else if (o->kind == GW_PRODUCER) w->producers++;
  else w->consumers++;
}

void mf_gateway_counts(mf_gateway_t *gw, mf_gateway_counts_t *out, uint32_t n) {
  memset(out, 0, sizeof *out * n);
  gw_count_t c = {.counts = out, .n = n};
  uv_mutex_lock(&gw->mu);
  mf_hashmap_foreach(gw->objs, gw_count_fn, &c);
  for (gw_room_t *r = gw->rooms; r; r = r->next)
    if (r->router_id[0] && r->worker < n) out[r->worker].routers++;
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
  if (room) {
    bool same = strcmp(room->shard_id, router_id) == 0 && room->worker == worker;
    if (!same)
      snprintf(err, errsz, "room '%s' is already hosted on worker %u by router %s", name,
               room->worker, room->router_id[0] ? room->router_id : "(not open)");
    uv_mutex_unlock(&gw->mu);
    free(codecs);
    return same ? MF_OK : MF_ERR_EXISTS; /* a repeated command is not an error */
  }
  room = calloc(1, sizeof *room);
  if (room) {
    snprintf(room->name, sizeof room->name, "%s", name);
    snprintf(room->shard_id, sizeof room->shard_id, "%s", router_id);
    room->worker = worker;
    room->codecs = codecs;
    room->codec_count = count;
    room->next = gw->rooms;
    gw->rooms = room;
  }
  uv_mutex_unlock(&gw->mu);
  if (!room) {
    free(codecs);
    snprintf(err, errsz, "out of memory");
    return MF_ERR_NO_MEMORY;
  }
  uv_sem_t done;
  uv_sem_init(&done, 0);
  mf_err_t result = MF_ERR_CLOSED;
  gw_cmd_t *c = calloc(1, sizeof *c);
  if (!c) {
    result = MF_ERR_NO_MEMORY;
  } else {
    c->gw = gw;
    c->op = OP_OPEN_SHARD;
    c->room = room;
    c->done = &done;
    c->result = &result;
    c->err = err;
    c->errsz = errsz;
    if (mf_worker_post(gw->workers[worker], &c->link, mf_gateway_on_command) == MF_OK)
      uv_sem_wait(&done);
    else
      free(c);
  }
  uv_sem_destroy(&done);
  if (result == MF_ERR_CLOSED) snprintf(err, errsz, "the node is shutting down");
  if (result == MF_ERR_NO_MEMORY) snprintf(err, errsz, "out of memory");
  return result;
}

mf_err_t mf_gateway_close_shard(mf_gateway_t *gw, const char *router_id) {
  uv_mutex_lock(&gw->mu);
  gw_room_t *room = gw->rooms;
  while (room && !(router_id && router_id[0] && strcmp(room->shard_id, router_id) == 0))
    room = room->next;
  /* From now on a router.join makes a local router: the controller no longer places here. */
  if (room) room->shard_id[0] = '\0';
  uv_mutex_unlock(&gw->mu);
  if (!room) return MF_ERR_NOT_FOUND;
  uv_sem_t done;
  uv_sem_init(&done, 0);
  gw_cmd_t *c = calloc(1, sizeof *c);
  mf_err_t e = c ? MF_OK : MF_ERR_NO_MEMORY;
  if (c) {
    c->gw = gw;
    c->op = OP_CLOSE_ROUTER;
    c->room = room;
    c->done = &done;
    if (mf_worker_post(gw->workers[room->worker], &c->link, mf_gateway_on_command) == MF_OK) {
      uv_sem_wait(&done);
    } else {
      free(c);
      e = MF_ERR_CLOSED;
    }
  }
  uv_sem_destroy(&done);
  return e;
}

