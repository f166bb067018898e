#include "controller/fsm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/fsm_controllers.h"
#include "controller/fsm_internal.h"

typedef Mafalda__Controller__Node node_t;
typedef Mafalda__Controller__Router router_t;
typedef Mafalda__Controller__Shard shard_t;
typedef Mafalda__Controller__Producer producer_t;
typedef Mafalda__Controller__Pipe pipe_t;
typedef Mafalda__Controller__Command command_t;

/* Sorted vector of owned, unpacked protobuf messages. Sorted storage makes the snapshot
 * bytes and the dump a pure function of the state, whatever the order of inserts. */
typedef struct {
  void **items;
  size_t n, cap;
} vec_t;

typedef int (*cmp_fn)(const void *item, const void *key);

struct mf_fsm {
  vec_t nodes;     /* node_t, by id */
  vec_t routers;   /* router_t, by id */
  vec_t shards;    /* shard_t, by (router_id, node_id, worker) */
  vec_t producers; /* producer_t, by id */
  vec_t pipes;     /* pipe_t, by (producer_id, target_node_id, target_worker) */
  mf_fsm_controllers_t controllers; /* controller replicas' addresses, by raft id */
};

static const char *S(const char *s) { return s ? s : ""; }

static size_t vec_find(const vec_t *v, const void *key, cmp_fn cmp, bool *found) {
  size_t lo = 0, hi = v->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = cmp(v->items[mid], key);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

static mf_err_t vec_insert(vec_t *v, size_t pos, void *item) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 16;
    void **items = realloc(v->items, cap * sizeof(*items));
    if (!items) return MF_ERR_NO_MEMORY;
    v->items = items;
    v->cap = cap;
  }
  memmove(&v->items[pos + 1], &v->items[pos], (v->n - pos) * sizeof(*v->items));
  v->items[pos] = item;
  v->n++;
  return MF_OK;
}

static void msg_free(void *m) {
  if (m) protobuf_c_message_free_unpacked((ProtobufCMessage *)m, NULL);
}

static void vec_remove(vec_t *v, size_t pos) {
  msg_free(v->items[pos]);
  memmove(&v->items[pos], &v->items[pos + 1], (v->n - pos - 1) * sizeof(*v->items));
  v->n--;
}

static void vec_clear(vec_t *v) {
  for (size_t i = 0; i < v->n; i++) msg_free(v->items[i]);
  free(v->items);
  memset(v, 0, sizeof(*v));
}

/* Deep copy through the wire format: the copy is an independent unpacked message that
 * protobuf_c_message_free_unpacked releases, whatever the source's allocation was. */
static void *msg_dup(const void *m) {
  const ProtobufCMessage *pm = m;
  size_t len = protobuf_c_message_get_packed_size(pm);
  uint8_t stackbuf[512];
  uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);
  if (!buf) return NULL;
  protobuf_c_message_pack(pm, buf);
  void *copy = protobuf_c_message_unpack(pm->descriptor, NULL, len, buf);
  if (buf != stackbuf) free(buf);
  return copy;
}

/* ---- keys ---- */

static int cmp_by_id_node(const void *item, const void *key) {
  return strcmp(S(((const node_t *)item)->id), key);
}
static int cmp_by_id_router(const void *item, const void *key) {
  return strcmp(S(((const router_t *)item)->id), key);
}
static int cmp_by_id_producer(const void *item, const void *key) {
  return strcmp(S(((const producer_t *)item)->id), key);
}

typedef struct {
  const char *a, *b;
  uint32_t w;
} key3_t;

static int cmp_key3(const char *a, const char *b, uint32_t w, const key3_t *k) {
  int c = strcmp(a, k->a);
  if (c) return c;
  c = strcmp(b, k->b);
  if (c) return c;
  return w < k->w ? -1 : w > k->w ? 1 : 0;
}
static int cmp_shard(const void *item, const void *key) {
  const shard_t *s = item;
  return cmp_key3(S(s->router_id), S(s->node_id), s->worker, key);
}
static int cmp_pipe(const void *item, const void *key) {
  const pipe_t *p = item;
  return cmp_key3(S(p->producer_id), S(p->target_node_id), p->target_worker, key);
}

static node_t *find_node(const mf_fsm_t *f, const char *id) {
  bool found;
  size_t i = vec_find(&f->nodes, S(id), cmp_by_id_node, &found);
  return found ? f->nodes.items[i] : NULL;
}
static router_t *find_router(const mf_fsm_t *f, const char *id) {
  bool found;
  size_t i = vec_find(&f->routers, S(id), cmp_by_id_router, &found);
  return found ? f->routers.items[i] : NULL;
}
static producer_t *find_producer(const mf_fsm_t *f, const char *id) {
  bool found;
  size_t i = vec_find(&f->producers, S(id), cmp_by_id_producer, &found);
  return found ? f->producers.items[i] : NULL;
}
/* A linear scan: routers are created once per room and looked up by name once per room
 * open, so an index kept in step with CloseRouter and restore would not pay for itself.
 * NULL for an empty name (unnamed routers are not unique). */
static router_t *find_router_by_name(const mf_fsm_t *f, const char *name) {
  if (!name || !name[0]) return NULL;
  for (size_t i = 0; i < f->routers.n; i++) {
    router_t *r = f->routers.items[i];
    if (strcmp(S(r->name), name) == 0) return r;
  }
  return NULL;
}
static bool has_shard(const mf_fsm_t *f, const char *r, const char *n, uint32_t w) {
  bool found;
  key3_t k = {S(r), S(n), w};
  vec_find(&f->shards, &k, cmp_shard, &found);
  return found;
}
static bool has_pipe(const mf_fsm_t *f, const char *p, const char *n, uint32_t w) {
  bool found;
  key3_t k = {S(p), S(n), w};
  vec_find(&f->pipes, &k, cmp_pipe, &found);
  return found;
}

/* ---- validation ---- */

mf_err_t mf_fsm_fail(char *msg, size_t size, mf_err_t err, const char *fmt, ...) {
  if (msg && size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
  }
  return err;
}

static mf_err_t check_id(const char *id) {
  size_t n = id ? strnlen(id, MF_FSM_ID_MAX + 1) : 0;
  if (n == 0) return MF_ERR_INVALID_ARG;
  if (n > MF_FSM_ID_MAX) return MF_ERR_LIMIT;
  for (size_t i = 0; i < n; i++)
    if (id[i] <= 0x20 || id[i] >= 0x7f) return MF_ERR_INVALID_ARG;
  return MF_OK;
}

mf_err_t mf_fsm_check_text(const char *s, size_t max) {
  size_t n = s ? strnlen(s, max + 1) : 0;
  if (n > max) return MF_ERR_LIMIT;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return MF_ERR_INVALID_ARG;
  return MF_OK;
}

/* Shortens ids quoted in messages so a long bad id cannot fill the message. */
#define QID(s) (int)(strnlen(S(s), 80)), S(s)

#define CHECK(expr, what, value)                                                               \
  do {                                                                                         \
    mf_err_t e_ = (expr);                                                                      \
    if (e_ != MF_OK) return mf_fsm_fail(msg, size, e_, "invalid %s '%.*s'", what, QID(value)); \
  } while (0)

static mf_err_t check_node(const node_t *n, char *msg, size_t size) {
  CHECK(check_id(n->id), "node id", n->id);
  CHECK(mf_fsm_check_text(n->name, MF_FSM_NAME_MAX), "node name", n->name);
  CHECK(mf_fsm_check_text(n->rpc_address, MF_FSM_NAME_MAX), "rpc address", n->rpc_address);
  CHECK(mf_fsm_check_text(n->gossip_address, MF_FSM_NAME_MAX), "gossip address", n->gossip_address);
  CHECK(mf_fsm_check_text(n->announced_ip, MF_FSM_NAME_MAX), "announced ip", n->announced_ip);
  if (n->n_workers > MF_FSM_WORKERS_MAX)
    return mf_fsm_fail(msg, size, MF_ERR_LIMIT, "too many workers (%zu)", n->n_workers);
  for (size_t i = 0; i < n->n_workers; i++) {
    const Mafalda__Controller__Worker *w = n->workers[i];
    if (!w || w->index != i)
      return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "workers must be listed as 0..n-1");
    if (w->rtc_port > 65535)
      return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "worker %zu: bad rtc port", i);
  }
  if (n->state < MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_UNSPECIFIED ||
      n->state > MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD)
    return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "bad node state %d", (int)n->state);
  return MF_OK;
}

static mf_err_t check_router(const router_t *r, char *msg, size_t size) {
  CHECK(check_id(r->id), "router id", r->id);
  CHECK(mf_fsm_check_text(r->name, MF_FSM_NAME_MAX), "router name", r->name);
  if (r->codecs_json && strnlen(r->codecs_json, MF_FSM_BLOB_MAX + 1) > MF_FSM_BLOB_MAX)
    return mf_fsm_fail(msg, size, MF_ERR_LIMIT, "codecs too large");
  if (r->app_data_json && strnlen(r->app_data_json, MF_FSM_BLOB_MAX + 1) > MF_FSM_BLOB_MAX)
    return mf_fsm_fail(msg, size, MF_ERR_LIMIT, "appData too large");
  return MF_OK;
}

/* A shard is valid when its router and node exist and the worker index exists. */
static mf_err_t check_shard_refs(const mf_fsm_t *f, const char *router_id, const char *node_id,
                                 uint32_t worker, char *msg, size_t size) {
  CHECK(check_id(router_id), "router id", router_id);
  CHECK(check_id(node_id), "node id", node_id);
  if (!find_router(f, router_id))
    return mf_fsm_fail(msg, size, MF_ERR_NOT_FOUND, "unknown router '%.*s'", QID(router_id));
  const node_t *n = find_node(f, node_id);
  if (!n) return mf_fsm_fail(msg, size, MF_ERR_NOT_FOUND, "unknown node '%.*s'", QID(node_id));
  if (worker >= n->n_workers)
    return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "node '%.*s' has no worker %u", QID(node_id),
                       worker);
  return MF_OK;
}

/* ---- cascade ---- */

/* Removes everything whose references no longer hold, until nothing changes: shards of
 * missing routers/nodes/workers, producers without their origin shard, pipes without their
 * producer, target shard or source (the origin or another pipe's target). One rule for
 * every removal keeps the cascades consistent with what AddShard/AddProducer/AddPipe check. */
static void collect_garbage(mf_fsm_t *f) {
  for (size_t i = f->shards.n; i-- > 0;) {
    const shard_t *s = f->shards.items[i];
    const node_t *n = find_node(f, s->node_id);
    /* A dead node's row stays (until ForgetNode) but hosts nothing. */
    if (!find_router(f, s->router_id) || !n || s->worker >= n->n_workers ||
        n->state == MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD)
      vec_remove(&f->shards, i);
  }
  for (size_t i = f->producers.n; i-- > 0;) {
    const producer_t *p = f->producers.items[i];
    if (!has_shard(f, p->router_id, p->node_id, p->worker)) vec_remove(&f->producers, i);
  }
  bool changed = true;
  while (changed) {
    changed = false;
    for (size_t i = f->pipes.n; i-- > 0;) {
      const pipe_t *p = f->pipes.items[i];
      const producer_t *pr = find_producer(f, p->producer_id);
      bool ok = pr && has_shard(f, pr->router_id, p->target_node_id, p->target_worker) &&
                has_shard(f, pr->router_id, p->source_node_id, p->source_worker);
      if (ok) {
        bool from_origin =
            strcmp(S(p->source_node_id), S(pr->node_id)) == 0 && p->source_worker == pr->worker;
        ok = from_origin || has_pipe(f, p->producer_id, p->source_node_id, p->source_worker);
      }
      if (!ok) {
        vec_remove(&f->pipes, i);
        changed = true;
      }
    }
  }
}

/* ---- commands ---- */

static bool valid_transition(Mafalda__Controller__NodeState from,
                             Mafalda__Controller__NodeState to) {
  if (from == to) return true;
  switch (to) {
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE:
      /* A dead node comes back only by registering again (joining). */
      return from != MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD;
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DRAINING:
      return from != MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD;
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD:
      return true;
    default:
      return false; /* JOINING only through RegisterNode; UNSPECIFIED never */
  }
}

static mf_err_t do_register_node(mf_fsm_t *f, const Mafalda__Controller__RegisterNode *c,
                                 char *msg, size_t size) {
  if (!c->node) return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "missing node");
  mf_err_t err = check_node(c->node, msg, size);
  if (err) return err;
  bool found;
  size_t pos = vec_find(&f->nodes, c->node->id, cmp_by_id_node, &found);
  node_t *copy = msg_dup(c->node);
  if (!copy) return mf_fsm_fail(msg, size, MF_ERR_NO_MEMORY, "out of memory");
  if (found) {
    node_t *old = f->nodes.items[pos];
    /* Re-registration (agent restart, controller leader change): addresses and ports are
     * refreshed; workers cannot disappear under existing shards. */
    for (size_t i = 0; i < f->shards.n; i++) {
      const shard_t *s = f->shards.items[i];
      if (strcmp(S(s->node_id), old->id) == 0 && s->worker >= copy->n_workers) {
        msg_free(copy);
        return mf_fsm_fail(msg, size, MF_ERR_STATE, "worker %u of node '%.*s' still hosts shards",
                           s->worker, QID(old->id));
      }
    }
    copy->state = old->state == MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD
                      ? MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_JOINING
                      : old->state;
    msg_free(old);
    f->nodes.items[pos] = copy;
    mf_fsm_fail(msg, size, MF_OK, "node '%s' registered again", copy->id);
    return MF_OK;
  }
  if (copy->state == MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_UNSPECIFIED)
    copy->state = MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_JOINING;
  if (vec_insert(&f->nodes, pos, copy) != MF_OK) {
    msg_free(copy);
    return mf_fsm_fail(msg, size, MF_ERR_NO_MEMORY, "out of memory");
  }
  mf_fsm_fail(msg, size, MF_OK, "node '%s' registered", copy->id);
  return MF_OK;
}

static mf_err_t do_set_node_state(mf_fsm_t *f, const Mafalda__Controller__SetNodeState *c,
                                  char *msg, size_t size) {
  CHECK(check_id(c->node_id), "node id", c->node_id);
  node_t *n = find_node(f, c->node_id);
  if (!n) return mf_fsm_fail(msg, size, MF_ERR_NOT_FOUND, "unknown node '%.*s'", QID(c->node_id));
  if (!valid_transition(n->state, c->state))
    return mf_fsm_fail(msg, size, MF_ERR_STATE, "node '%s': %s -> %s not allowed", n->id,
                       mf_fsm_node_state_name(n->state), mf_fsm_node_state_name(c->state));
  n->state = c->state;
  if (n->state == MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD) collect_garbage(f);
  mf_fsm_fail(msg, size, MF_OK, "node '%s' is %s", n->id, mf_fsm_node_state_name(n->state));
  return MF_OK;
}

static mf_err_t do_forget_node(mf_fsm_t *f, const Mafalda__Controller__ForgetNode *c, char *msg,
                               size_t size) {
  CHECK(check_id(c->node_id), "node id", c->node_id);
  bool found;
  size_t pos = vec_find(&f->nodes, c->node_id, cmp_by_id_node, &found);
  if (!found)
    return mf_fsm_fail(msg, size, MF_ERR_NOT_FOUND, "unknown node '%.*s'", QID(c->node_id));
  vec_remove(&f->nodes, pos);
  collect_garbage(f);
  mf_fsm_fail(msg, size, MF_OK, "node forgotten");
  return MF_OK;
}

static mf_err_t do_create_router(mf_fsm_t *f, const Mafalda__Controller__CreateRouter *c,
                                 char *msg, size_t size) {
  if (!c->router) return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "missing router");
  mf_err_t err = check_router(c->router, msg, size);
  if (err) return err;
  bool found;
  size_t pos = vec_find(&f->routers, c->router->id, cmp_by_id_router, &found);
  if (found) return mf_fsm_fail(msg, size, MF_ERR_EXISTS, "router '%s' exists", c->router->id);
  /* Names are how rooms find their router (controller.OpenRouter): two routers with one
   * name would split a room. Unnamed routers are exempt. */
  const router_t *named = find_router_by_name(f, c->router->name);
  if (named)
    return mf_fsm_fail(msg, size, MF_ERR_EXISTS, "router name '%.*s' is used by router '%s'",
                       (int)strnlen(c->router->name, 80), c->router->name, named->id);
  router_t *copy = msg_dup(c->router);
  if (!copy || vec_insert(&f->routers, pos, copy) != MF_OK) {
    msg_free(copy);
    return mf_fsm_fail(msg, size, MF_ERR_NO_MEMORY, "out of memory");
  }
  mf_fsm_fail(msg, size, MF_OK, "router '%s' created", copy->id);
  return MF_OK;
}

static mf_err_t do_close_router(mf_fsm_t *f, const Mafalda__Controller__CloseRouter *c,
                                char *msg, size_t size) {
  CHECK(check_id(c->router_id), "router id", c->router_id);
  bool found;
  size_t pos = vec_find(&f->routers, c->router_id, cmp_by_id_router, &found);
  if (!found)
    return mf_fsm_fail(msg, size, MF_ERR_NOT_FOUND, "unknown router '%.*s'", QID(c->router_id));
  vec_remove(&f->routers, pos);
  collect_garbage(f);
  mf_fsm_fail(msg, size, MF_OK, "router closed");
  return MF_OK;
}

static mf_err_t do_add_shard(mf_fsm_t *f, const shard_t *s, char *msg, size_t size) {
  if (!s) return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "missing shard");
  mf_err_t err = check_shard_refs(f, s->router_id, s->node_id, s->worker, msg, size);
  if (err) return err;
  bool found;
  key3_t k = {s->router_id, s->node_id, s->worker};
  size_t pos = vec_find(&f->shards, &k, cmp_shard, &found);
  if (found) return mf_fsm_fail(msg, size, MF_ERR_EXISTS, "shard exists");
  const node_t *n = find_node(f, s->node_id);
  if (n->state != MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE &&
      n->state != MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_JOINING)
    return mf_fsm_fail(msg, size, MF_ERR_STATE, "node '%s' is %s: no new shards", n->id,
                       mf_fsm_node_state_name(n->state));
  shard_t *copy = msg_dup(s);
  if (!copy || vec_insert(&f->shards, pos, copy) != MF_OK) {
    msg_free(copy);
    return mf_fsm_fail(msg, size, MF_ERR_NO_MEMORY, "out of memory");
  }
  mf_fsm_fail(msg, size, MF_OK, "shard added");
  return MF_OK;
}

static mf_err_t do_remove_shard(mf_fsm_t *f, const shard_t *s, char *msg, size_t size) {
  if (!s) return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "missing shard");
  CHECK(check_id(s->router_id), "router id", s->router_id);
  CHECK(check_id(s->node_id), "node id", s->node_id);
  bool found;
  key3_t k = {s->router_id, s->node_id, s->worker};
  size_t pos = vec_find(&f->shards, &k, cmp_shard, &found);
  if (!found) return mf_fsm_fail(msg, size, MF_ERR_NOT_FOUND, "unknown shard");
  vec_remove(&f->shards, pos);
  collect_garbage(f);
  mf_fsm_fail(msg, size, MF_OK, "shard removed");
  return MF_OK;
}

static mf_err_t do_add_producer(mf_fsm_t *f, const producer_t *p, char *msg, size_t size) {
  if (!p) return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "missing producer");
  CHECK(check_id(p->id), "producer id", p->id);
  if (strcmp(S(p->kind), "audio") != 0 && strcmp(S(p->kind), "video") != 0)
    return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "kind must be audio or video");
  if (p->rtp_parameters.len > MF_FSM_BLOB_MAX)
    return mf_fsm_fail(msg, size, MF_ERR_LIMIT, "rtpParameters too large");
  mf_err_t err = check_shard_refs(f, p->router_id, p->node_id, p->worker, msg, size);
  if (err) return err;
  if (!has_shard(f, p->router_id, p->node_id, p->worker))
    return mf_fsm_fail(msg, size, MF_ERR_NOT_FOUND, "origin shard does not exist");
  bool found;
  size_t pos = vec_find(&f->producers, p->id, cmp_by_id_producer, &found);
  if (found) return mf_fsm_fail(msg, size, MF_ERR_EXISTS, "producer '%s' exists", p->id);
  producer_t *copy = msg_dup(p);
  if (!copy || vec_insert(&f->producers, pos, copy) != MF_OK) {
    msg_free(copy);
    return mf_fsm_fail(msg, size, MF_ERR_NO_MEMORY, "out of memory");
  }
  mf_fsm_fail(msg, size, MF_OK, "producer '%s' added", copy->id);
  return MF_OK;
}

static mf_err_t do_remove_producer(mf_fsm_t *f, const Mafalda__Controller__RemoveProducer *c,
                                   char *msg, size_t size) {
  CHECK(check_id(c->producer_id), "producer id", c->producer_id);
  bool found;
  size_t pos = vec_find(&f->producers, c->producer_id, cmp_by_id_producer, &found);
  if (!found)
    return mf_fsm_fail(msg, size, MF_ERR_NOT_FOUND, "unknown producer '%.*s'", QID(c->producer_id));
  vec_remove(&f->producers, pos);
  collect_garbage(f);
  mf_fsm_fail(msg, size, MF_OK, "producer removed");
  return MF_OK;
}

static mf_err_t do_add_pipe(mf_fsm_t *f, const pipe_t *p, char *msg, size_t size) {
  if (!p) return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "missing pipe");
  CHECK(check_id(p->producer_id), "producer id", p->producer_id);
  CHECK(check_id(p->target_node_id), "node id", p->target_node_id);
  CHECK(check_id(p->source_node_id), "node id", p->source_node_id);
  const producer_t *pr = find_producer(f, p->producer_id);
  if (!pr)
    return mf_fsm_fail(msg, size, MF_ERR_NOT_FOUND, "unknown producer '%.*s'", QID(p->producer_id));
  if (!has_shard(f, pr->router_id, p->target_node_id, p->target_worker))
    return mf_fsm_fail(msg, size, MF_ERR_NOT_FOUND, "target shard does not exist");
  if (!has_shard(f, pr->router_id, p->source_node_id, p->source_worker))
    return mf_fsm_fail(msg, size, MF_ERR_NOT_FOUND, "source shard does not exist");
  bool target_is_origin =
      strcmp(p->target_node_id, pr->node_id) == 0 && p->target_worker == pr->worker;
  if (target_is_origin)
    return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "cannot pipe a producer to its origin shard");
  bool source_is_origin =
      strcmp(p->source_node_id, pr->node_id) == 0 && p->source_worker == pr->worker;
  if (!source_is_origin && !has_pipe(f, p->producer_id, p->source_node_id, p->source_worker))
    return mf_fsm_fail(msg, size, MF_ERR_STATE, "source shard does not carry the producer");
  bool found;
  key3_t k = {p->producer_id, p->target_node_id, p->target_worker};
  size_t pos = vec_find(&f->pipes, &k, cmp_pipe, &found);
  if (found) return mf_fsm_fail(msg, size, MF_ERR_EXISTS, "pipe exists");
  pipe_t *copy = msg_dup(p);
  if (!copy || vec_insert(&f->pipes, pos, copy) != MF_OK) {
    msg_free(copy);
    return mf_fsm_fail(msg, size, MF_ERR_NO_MEMORY, "out of memory");
  }
  mf_fsm_fail(msg, size, MF_OK, "pipe added");
  return MF_OK;
}

static mf_err_t do_remove_pipe(mf_fsm_t *f, const Mafalda__Controller__RemovePipe *c, char *msg,
                               size_t size) {
  CHECK(check_id(c->producer_id), "producer id", c->producer_id);
  CHECK(check_id(c->target_node_id), "node id", c->target_node_id);
  bool found;
  key3_t k = {c->producer_id, c->target_node_id, c->target_worker};
  size_t pos = vec_find(&f->pipes, &k, cmp_pipe, &found);
  if (!found) return mf_fsm_fail(msg, size, MF_ERR_NOT_FOUND, "unknown pipe");
  vec_remove(&f->pipes, pos);
  collect_garbage(f); /* pipes fed through the removed one go too */
  mf_fsm_fail(msg, size, MF_OK, "pipe removed");
  return MF_OK;
}

mf_err_t mf_fsm_apply_command(mf_fsm_t *f, const command_t *c, char *msg, size_t size) {
  if (msg && size) msg[0] = '\0';
  if (!f || !c) return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "no command");
#define NEED(field)                                                                               \
  do {                                                                                            \
    if (!c->field) return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "empty " #field " command"); \
  } while (0)
  switch (c->cmd_case) {
    case MAFALDA__CONTROLLER__COMMAND__CMD_REGISTER_NODE:
      NEED(register_node);
      return do_register_node(f, c->register_node, msg, size);
    case MAFALDA__CONTROLLER__COMMAND__CMD_SET_NODE_STATE:
      NEED(set_node_state);
      return do_set_node_state(f, c->set_node_state, msg, size);
    case MAFALDA__CONTROLLER__COMMAND__CMD_FORGET_NODE:
      NEED(forget_node);
      return do_forget_node(f, c->forget_node, msg, size);
    case MAFALDA__CONTROLLER__COMMAND__CMD_CREATE_ROUTER:
      NEED(create_router);
      return do_create_router(f, c->create_router, msg, size);
    case MAFALDA__CONTROLLER__COMMAND__CMD_CLOSE_ROUTER:
      NEED(close_router);
      return do_close_router(f, c->close_router, msg, size);
    case MAFALDA__CONTROLLER__COMMAND__CMD_ADD_SHARD:
      NEED(add_shard);
      return do_add_shard(f, c->add_shard->shard, msg, size);
    case MAFALDA__CONTROLLER__COMMAND__CMD_REMOVE_SHARD:
      NEED(remove_shard);
      return do_remove_shard(f, c->remove_shard->shard, msg, size);
    case MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PRODUCER:
      NEED(add_producer);
      return do_add_producer(f, c->add_producer->producer, msg, size);
    case MAFALDA__CONTROLLER__COMMAND__CMD_REMOVE_PRODUCER:
      NEED(remove_producer);
      return do_remove_producer(f, c->remove_producer, msg, size);
    case MAFALDA__CONTROLLER__COMMAND__CMD_ADD_PIPE:
      NEED(add_pipe);
      return do_add_pipe(f, c->add_pipe->pipe, msg, size);
    case MAFALDA__CONTROLLER__COMMAND__CMD_REMOVE_PIPE:
      NEED(remove_pipe);
      return do_remove_pipe(f, c->remove_pipe, msg, size);
    case MAFALDA__CONTROLLER__COMMAND__CMD_SET_CONTROLLER_ADDRESS:
      NEED(set_controller_address);
      return mf_fsm_controllers_set(&f->controllers, c->set_controller_address, msg, size);
    default:
      return mf_fsm_fail(msg, size, MF_ERR_INVALID_ARG, "unknown or empty command");
  }
#undef NEED
}

mf_err_t mf_fsm_apply(mf_fsm_t *f, const uint8_t *data, size_t len, char *msg, size_t size) {
  if (msg && size) msg[0] = '\0';
  if (len > MF_FSM_COMMAND_MAX) return mf_fsm_fail(msg, size, MF_ERR_LIMIT, "command too large");
  command_t *c = mafalda__controller__command__unpack(NULL, len, data);
  if (!c) return mf_fsm_fail(msg, size, MF_ERR_PARSE, "malformed command");
  mf_err_t err = mf_fsm_apply_command(f, c, msg, size);
  mafalda__controller__command__free_unpacked(c, NULL);
  return err;
}

/* ---- lifecycle, snapshot, restore ---- */

mf_err_t mf_fsm_create(mf_fsm_t **out) {
  mf_fsm_t *f = calloc(1, sizeof(*f));
  if (!f) return MF_ERR_NO_MEMORY;
  *out = f;
  return MF_OK;
}

static void fsm_clear(mf_fsm_t *f) {
  vec_clear(&f->nodes);
  vec_clear(&f->routers);
  vec_clear(&f->shards);
  vec_clear(&f->producers);
  vec_clear(&f->pipes);
  mf_fsm_controllers_clear(&f->controllers);
}

void mf_fsm_destroy(mf_fsm_t *f) {
  if (!f) return;
  fsm_clear(f);
  free(f);
}

mf_err_t mf_fsm_snapshot(const mf_fsm_t *f, uint8_t **out, size_t *len) {
  Mafalda__Controller__Snapshot snap = MAFALDA__CONTROLLER__SNAPSHOT__INIT;
  snap.version = 1;
  /* The lists point at the stored messages: nothing is copied before packing. */
  snap.n_nodes = f->nodes.n;
  snap.nodes = (node_t **)f->nodes.items;
  snap.n_routers = f->routers.n;
  snap.routers = (router_t **)f->routers.items;
  snap.n_shards = f->shards.n;
  snap.shards = (shard_t **)f->shards.items;
  snap.n_producers = f->producers.n;
  snap.producers = (producer_t **)f->producers.items;
  snap.n_pipes = f->pipes.n;
  snap.pipes = (pipe_t **)f->pipes.items;
  snap.n_controllers = f->controllers.n;
  snap.controllers = f->controllers.rows;
  size_t n = mafalda__controller__snapshot__get_packed_size(&snap);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return MF_ERR_NO_MEMORY;
  mafalda__controller__snapshot__pack(&snap, buf);
  *out = buf;
  *len = n;
  return MF_OK;
}

/* Rebuilds a state by replaying the snapshot's objects as commands into a fresh FSM, so a
 * snapshot is held to exactly the rules that built it (a corrupt or hostile snapshot can
 * not smuggle in dangling references). */
static mf_err_t replay(mf_fsm_t *f, const Mafalda__Controller__Snapshot *s) {
  char msg[MF_FSM_MESSAGE_MAX];
  mf_err_t err = MF_OK;
  for (size_t i = 0; i < s->n_nodes && !err; i++) {
    Mafalda__Controller__RegisterNode c = MAFALDA__CONTROLLER__REGISTER_NODE__INIT;
    c.node = s->nodes[i];
    /* Shards are added below only on joining/active nodes; the final state is set after. */
    Mafalda__Controller__NodeState st = c.node ? c.node->state : 0;
    if (c.node) c.node->state = MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE;
    err = do_register_node(f, &c, msg, sizeof(msg));
    if (c.node) c.node->state = st;
    if (!err && f->nodes.n != i + 1) err = MF_ERR_EXISTS; /* listed twice */
  }
  for (size_t i = 0; i < s->n_routers && !err; i++) {
    Mafalda__Controller__CreateRouter c = MAFALDA__CONTROLLER__CREATE_ROUTER__INIT;
    c.router = s->routers[i];
    err = do_create_router(f, &c, msg, sizeof(msg));
  }
  for (size_t i = 0; i < s->n_shards && !err; i++)
    err = do_add_shard(f, s->shards[i], msg, sizeof(msg));
  for (size_t i = 0; i < s->n_producers && !err; i++)
    err = do_add_producer(f, s->producers[i], msg, sizeof(msg));
  /* Pipes may be listed before the pipe that feeds them: retry until no progress. */
  size_t left = s->n_pipes;
  bool *done = left ? calloc(left, sizeof(bool)) : NULL;
  if (left && !done) err = MF_ERR_NO_MEMORY;
  bool progress = true;
  while (!err && left && progress) {
    progress = false;
    for (size_t i = 0; i < s->n_pipes && !err; i++) {
      if (done[i]) continue;
      mf_err_t e = do_add_pipe(f, s->pipes[i], msg, sizeof(msg));
      if (e == MF_OK) {
        done[i] = true;
        left--;
        progress = true;
      } else if (e != MF_ERR_STATE) {
        err = e;
      }
    }
  }
  free(done);
  if (!err && left) err = MF_ERR_STATE;
  if (!err) err = mf_fsm_controllers_restore(&f->controllers, s->controllers, s->n_controllers);
  for (size_t i = 0; i < s->n_nodes && !err; i++) {
    node_t *n = find_node(f, s->nodes[i]->id);
    Mafalda__Controller__NodeState st = s->nodes[i]->state;
    if (st < MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_JOINING ||
        st > MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD)
      err = MF_ERR_INVALID_ARG;
    else
      n->state = st;
  }
  return err;
}

mf_err_t mf_fsm_restore(mf_fsm_t *f, const uint8_t *data, size_t len) {
  Mafalda__Controller__Snapshot *s = mafalda__controller__snapshot__unpack(NULL, len, data);
  if (!s) return MF_ERR_PARSE;
  mf_err_t err = s->version == 1 ? MF_OK : MF_ERR_UNSUPPORTED;
  mf_fsm_t fresh = {0};
  if (!err) err = replay(&fresh, s);
  mafalda__controller__snapshot__free_unpacked(s, NULL);
  if (err) {
    fsm_clear(&fresh);
    return err;
  }
  fsm_clear(f);
  *f = fresh;
  return MF_OK;
}

/* ---- queries ---- */

bool mf_fsm_equal(const mf_fsm_t *a, const mf_fsm_t *b) {
  uint8_t *x = NULL, *y = NULL;
  size_t nx = 0, ny = 0;
  bool eq = mf_fsm_snapshot(a, &x, &nx) == MF_OK && mf_fsm_snapshot(b, &y, &ny) == MF_OK &&
            nx == ny && memcmp(x, y, nx) == 0;
  free(x);
  free(y);
  return eq;
}

void mf_fsm_counts(const mf_fsm_t *f, mf_fsm_counts_t *out) {
  out->nodes = f->nodes.n;
  out->routers = f->routers.n;
  out->shards = f->shards.n;
  out->producers = f->producers.n;
  out->pipes = f->pipes.n;
  out->controllers = f->controllers.n;
}

const node_t *mf_fsm_find_node(const mf_fsm_t *f, const char *id) { return find_node(f, id); }
const router_t *mf_fsm_find_router(const mf_fsm_t *f, const char *id) {
  return find_router(f, id);
}
const producer_t *mf_fsm_find_producer(const mf_fsm_t *f, const char *id) {
  return find_producer(f, id);
}
const router_t *mf_fsm_find_router_by_name(const mf_fsm_t *f, const char *name) {
  return find_router_by_name(f, name);
}
bool mf_fsm_has_shard(const mf_fsm_t *f, const char *r, const char *n, uint32_t w) {
  return has_shard(f, r, n, w);
}
bool mf_fsm_has_pipe(const mf_fsm_t *f, const char *p, const char *n, uint32_t w) {
  return has_pipe(f, p, n, w);
}

mf_err_t mf_fsm_encode_command(const command_t *cmd, uint8_t **out, size_t *len) {
  size_t n = mafalda__controller__command__get_packed_size(cmd);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return MF_ERR_NO_MEMORY;
  mafalda__controller__command__pack(cmd, buf);
  *out = buf;
  *len = n;
  return MF_OK;
}

const char *mf_fsm_node_state_name(Mafalda__Controller__NodeState state) {
  switch (state) {
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_JOINING: return "joining";
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE: return "active";
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DRAINING: return "draining";
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD: return "dead";
    default: return "unspecified";
  }
}

/* ---- dump ---- */

typedef struct {
  char *buf;
  size_t len, cap;
  bool oom;
} sb_t;

static void sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb_t *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = true;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap + (size_t)n + 1) * 2;
    char *nb = realloc(b->buf, cap);
    if (!nb) {
      b->oom = true;
      return;
    }
    b->buf = nb;
    b->cap = cap;
  }
}

/* Opaque text is quoted with C-style escapes so one object stays on one line. */
static void sb_quoted(sb_t *b, const char *s) {
  sb_printf(b, "\"");
  for (const unsigned char *p = (const unsigned char *)S(s); *p; p++) {
    if (*p == '"' || *p == '\\')
      sb_printf(b, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      sb_printf(b, "\\x%02x", *p);
    else
      sb_printf(b, "%c", *p);
  }
  sb_printf(b, "\"");
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

char *mf_fsm_dump(const mf_fsm_t *f) {
  sb_t b = {malloc(1024), 0, 1024, false};
  if (!b.buf) return NULL;
  b.buf[0] = '\0';
  for (size_t i = 0; i < f->nodes.n; i++) {
    const node_t *n = f->nodes.items[i];
    sb_printf(&b, "node %s state=%s name=", n->id, mf_fsm_node_state_name(n->state));
    sb_quoted(&b, n->name);
    sb_printf(&b, " rpc=%s gossip=%s ip=%s workers=%zu ports=", S(n->rpc_address),
              S(n->gossip_address), S(n->announced_ip), n->n_workers);
    for (size_t w = 0; w < n->n_workers; w++)
      sb_printf(&b, "%s%u", w ? "," : "", n->workers[w]->rtc_port);
    sb_printf(&b, "\n");
  }
  for (size_t i = 0; i < f->routers.n; i++) {
    const router_t *r = f->routers.items[i];
    sb_printf(&b, "router %s name=", r->id);
    sb_quoted(&b, r->name);
    sb_printf(&b, " codecs=");
    sb_quoted(&b, r->codecs_json);
    sb_printf(&b, " appData=");
    sb_quoted(&b, r->app_data_json);
    sb_printf(&b, "\n");
  }
  for (size_t i = 0; i < f->shards.n; i++) {
    const shard_t *s = f->shards.items[i];
    sb_printf(&b, "shard %s %s/%u\n", s->router_id, s->node_id, s->worker);
  }
  for (size_t i = 0; i < f->producers.n; i++) {
    const producer_t *p = f->producers.items[i];
    sb_printf(&b, "producer %s router=%s origin=%s/%u kind=%s rtp=%zu:%016llx\n", p->id,
              p->router_id, p->node_id, p->worker, p->kind, p->rtp_parameters.len,
              (unsigned long long)fnv1a(p->rtp_parameters.data, p->rtp_parameters.len));
  }
  for (size_t i = 0; i < f->pipes.n; i++) {
    const pipe_t *p = f->pipes.items[i];
    sb_printf(&b, "pipe %s %s/%u <- %s/%u\n", p->producer_id, p->target_node_id,
              p->target_worker, p->source_node_id, p->source_worker);
  }
  for (size_t i = 0; i < f->controllers.n; i++) {
    const Mafalda__Controller__ControllerAddress *c = f->controllers.rows[i];
    sb_printf(&b, "controller %llu raft=%s rpc=%s\n", (unsigned long long)c->raft_id,
              S(c->raft_address), S(c->rpc_address));
  }
  if (b.oom) {
    free(b.buf);
    return NULL;
  }
  return b.buf;
}

void mf_fsm_foreach_node(const mf_fsm_t *f,
                         void (*fn)(void *ud, const Mafalda__Controller__Node *node), void *ud) {
  for (size_t i = 0; i < f->nodes.n; i++) fn(ud, f->nodes.items[i]);
}

void mf_fsm_foreach_router(const mf_fsm_t *f, void (*fn)(void *ud, const router_t *router),
                           void *ud) {
  for (size_t i = 0; i < f->routers.n; i++) fn(ud, f->routers.items[i]);
}

void mf_fsm_foreach_shard(const mf_fsm_t *f, void (*fn)(void *ud, const shard_t *shard),
                          void *ud) {
  for (size_t i = 0; i < f->shards.n; i++) fn(ud, f->shards.items[i]);
}

void mf_fsm_foreach_producer(const mf_fsm_t *f,
                             void (*fn)(void *ud, const producer_t *producer), void *ud) {
  for (size_t i = 0; i < f->producers.n; i++) fn(ud, f->producers.items[i]);
}

void mf_fsm_foreach_pipe(const mf_fsm_t *f, void (*fn)(void *ud, const pipe_t *pipe),
                         void *ud) {
  for (size_t i = 0; i < f->pipes.n; i++) fn(ud, f->pipes.items[i]);
}

const Mafalda__Controller__ControllerAddress *mf_fsm_find_controller(const mf_fsm_t *f,
                                                                    uint64_t raft_id) {
  return mf_fsm_controllers_find(&f->controllers, raft_id);
}

void mf_fsm_foreach_controller(
    const mf_fsm_t *f, void (*fn)(void *ud, const Mafalda__Controller__ControllerAddress *c),
    void *ud) {
  for (size_t i = 0; i < f->controllers.n; i++) fn(ud, f->controllers.rows[i]);
}
