#include "controller/raft_node.h"

#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MF_LOG_MODULE "raft"
#include "common/log.h"

/* ---- FSM glue ---- */

/* Every log entry and snapshot is framed as [u32 LE length][u32 LE format = 1][protobuf]
 * [zero padding to a multiple of 8]. libraft's TCP encoding sends entry payloads
 * back to back but its decoder steps over each one rounded up to 8 bytes (entry data
 * pointers are 8-byte aligned), so an entry whose length is not a multiple of 8 corrupts
 * every later entry of a batch (seen under ASan as a read past the receive buffer when a
 * restarted replica catches up). The length prefix lets protobuf ignore the padding. */
#define FRAME_HEADER 8u
#define FRAME_FORMAT 1u

static size_t frame_size(size_t len) { return (FRAME_HEADER + len + 7u) & ~(size_t)7u; }

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Writes the header and zeroes the padding; the caller fills frame + FRAME_HEADER. */
static void frame_header(uint8_t *frame, size_t len) {
  size_t total = frame_size(len);
  put_u32(frame, (uint32_t)len);
  put_u32(frame + 4, FRAME_FORMAT);
  memset(frame + FRAME_HEADER + len, 0, total - FRAME_HEADER - len);
}

static bool frame_open(const void *base, size_t size, const uint8_t **payload, size_t *len) {
  const uint8_t *p = base;
  if (size < FRAME_HEADER || get_u32(p + 4) != FRAME_FORMAT) return false;
  uint32_t n = get_u32(p);
  if (n > size - FRAME_HEADER) return false;
  *payload = p + FRAME_HEADER;
  *len = n;
  return true;
}

static int fsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result) {
  mf_raft_fsm_t *ctx = rf->data;
  const uint8_t *payload;
  size_t len;
  if (frame_open(buf->base, buf->len, &payload, &len)) {
    ctx->last_code = mf_fsm_apply(ctx->fsm, payload, len, ctx->last_message,
                                  sizeof(ctx->last_message));
  } else {
    ctx->last_code = MF_ERR_PARSE;
    snprintf(ctx->last_message, sizeof(ctx->last_message), "malformed log entry frame");
  }
  ctx->applied++;
  /* libraft hands this pointer to the submitter's callback right after this apply, on the
   * same loop turn, so pointing at our own slot needs no allocation. A rejected command
   * is a normal, deterministic outcome: returning non-zero here would be a Raft error. */
  *result = ctx;
  return 0;
}

static int fsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs) {
  mf_raft_fsm_t *ctx = rf->data;
  uint8_t *data;
  size_t len;
  if (mf_fsm_snapshot(ctx->fsm, &data, &len) != MF_OK) return RAFT_NOMEM;
  /* Version 1 FSM: libraft frees the buffers with raft_free, so they must come from it. */
  struct raft_buffer *b = raft_malloc(sizeof(*b));
  uint8_t *base = raft_malloc(frame_size(len));
  if (!b || !base) {
    raft_free(b);
    raft_free(base);
    free(data);
    return RAFT_NOMEM;
  }
  frame_header(base, len);
  if (len) memcpy(base + FRAME_HEADER, data, len);
  free(data);
  b->base = base;
  b->len = frame_size(len);
  *bufs = b;
  *n_bufs = 1;
  return 0;
}

static int fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf) {
  mf_raft_fsm_t *ctx = rf->data;
  const uint8_t *payload;
  size_t len;
  mf_err_t err = frame_open(buf->base, buf->len, &payload, &len)
                     ? mf_fsm_restore(ctx->fsm, payload, len)
                     : MF_ERR_PARSE;
  if (err != MF_OK) {
    MF_LOG_ERROR("snapshot restore failed: %s", mf_strerror(err));
    return RAFT_MALFORMED;
  }
  /* On success the FSM owns the snapshot buffer. */
  raft_free(buf->base);
  return 0;
}

mf_err_t mf_raft_fsm_init(mf_raft_fsm_t *ctx, struct raft_fsm *out) {
  memset(ctx, 0, sizeof(*ctx));
  mf_err_t err = mf_fsm_create(&ctx->fsm);
  if (err) return err;
  memset(out, 0, sizeof(*out));
  out->version = 1;
  out->data = ctx;
  out->apply = fsm_apply;
  out->snapshot = fsm_snapshot;
  out->restore = fsm_restore;
  return MF_OK;
}

void mf_raft_fsm_close(mf_raft_fsm_t *ctx) {
  mf_fsm_destroy(ctx->fsm);
  ctx->fsm = NULL;
}

typedef struct {
  struct raft_apply req; /* first: libraft gives back this pointer */
  mf_raft_submit_cb cb;
  void *ud;
} submit_t;

static mf_err_t from_raft(int rv) {
  switch (rv) {
    case 0: return MF_OK;
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST: return MF_ERR_STATE;
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED: return MF_ERR_CLOSED;
    case RAFT_NOMEM: return MF_ERR_NO_MEMORY;
    case RAFT_TOOBIG: return MF_ERR_LIMIT;
    default: return MF_ERR_IO;
  }
}

static void submit_done(struct raft_apply *req, int status, void *result) {
  submit_t *s = (submit_t *)req;
  if (status == 0 && result) {
    const mf_raft_fsm_t *ctx = result;
    s->cb(s->ud, MF_OK, ctx->last_code, ctx->last_message, req->index);
  } else {
    s->cb(s->ud, status ? from_raft(status) : MF_ERR_INTERNAL, MF_ERR_INTERNAL,
          status ? raft_strerror(status) : "no result", req->index);
  }
  free(s);
}

mf_err_t mf_raft_submit(struct raft *r, const Mafalda__Controller__Command *cmd,
                        mf_raft_submit_cb cb, void *ud) {
  size_t len = mafalda__controller__command__get_packed_size(cmd);
  if (len > MF_FSM_COMMAND_MAX) return MF_ERR_LIMIT;
  submit_t *s = calloc(1, sizeof(*s));
  struct raft_buffer buf = {raft_malloc(frame_size(len)), frame_size(len)};
  if (!s || !buf.base) {
    free(s);
    raft_free(buf.base);
    return MF_ERR_NO_MEMORY;
  }
  frame_header(buf.base, len);
  mafalda__controller__command__pack(cmd, (uint8_t *)buf.base + FRAME_HEADER);
  s->cb = cb;
  s->ud = ud;
  int rv = raft_apply(r, &s->req, &buf, 1, submit_done);
  if (rv != 0) {
    raft_free(buf.base); /* not taken over on failure */
    free(s);
    return from_raft(rv);
  }
  return MF_OK;
}

typedef struct {
  struct raft_change req; /* reused for the promotion once the add committed */
  struct raft *raft;
  uint64_t id;
  bool promoting;
  mf_raft_change_cb cb;
  void *ud;
} change_t;

static void change_done(struct raft_change *req, int status) {
  change_t *c = req->data;
  if (status == 0 && !c->promoting) {
    /* Added as a spare: now make it a voter. */
    c->promoting = true;
    int rv = raft_assign(c->raft, &c->req, c->id, RAFT_VOTER, change_done);
    if (rv == 0) return;
    status = rv;
  }
  if (c->cb) c->cb(c->ud, from_raft(status), status ? raft_strerror(status) : "ok");
  free(c);
}

static change_t *change_new(struct raft *r, uint64_t id, mf_raft_change_cb cb, void *ud) {
  change_t *c = calloc(1, sizeof(*c));
  if (!c) return NULL;
  c->req.data = c;
  c->raft = r;
  c->id = id;
  c->cb = cb;
  c->ud = ud;
  return c;
}

static mf_err_t from_raft_sync(int rv) {
  switch (rv) {
    case RAFT_BADID:
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
    case RAFT_BADROLE: return MF_ERR_INVALID_ARG;
    case RAFT_CANTCHANGE: return MF_ERR_FULL; /* another change is in progress */
    default: return from_raft(rv);
  }
}

mf_err_t mf_raft_add_voter(struct raft *r, uint64_t id, const char *raft_address,
                           mf_raft_change_cb cb, void *ud) {
  if (id == 0 || !raft_address || !*raft_address) return MF_ERR_INVALID_ARG;
  change_t *c = change_new(r, id, cb, ud);
  if (!c) return MF_ERR_NO_MEMORY;
  int rv = raft_add(r, &c->req, id, raft_address, change_done);
  if (rv != 0) {
    free(c);
    return from_raft_sync(rv);
  }
  return MF_OK;
}

mf_err_t mf_raft_remove_server(struct raft *r, uint64_t id, mf_raft_change_cb cb, void *ud) {
  change_t *c = change_new(r, id, cb, ud);
  if (!c) return MF_ERR_NO_MEMORY;
  c->promoting = true; /* nothing follows the removal */
  int rv = raft_remove(r, &c->req, id, change_done);
  if (rv != 0) {
    free(c);
    return from_raft_sync(rv);
  }
  return MF_OK;
}

/* ---- a complete replica ---- */

struct mf_raft_node {
  struct raft raft;
  struct raft_io io;
  struct raft_uv_transport transport;
  struct raft_fsm rfsm;
  mf_raft_fsm_t fsm;
  mf_raft_node_config_t config;
  void (*close_cb)(void *ud);
  void *close_ud;
  /* Publishing the peers' addresses into the FSM, once per leadership term. */
  uv_timer_t publish_timer;
  bool publish_open;     /* the timer handle is initialised (close it before freeing) */
  bool publish_busy;     /* a barrier is in flight */
  uint64_t publish_term; /* the term the barrier in flight was issued in */
  uint64_t published_term;
};

#define PUBLISH_INTERVAL_MS 200

static void publish_tick(uv_timer_t *t);

mf_err_t mf_raft_node_parse_peers(const char *text, mf_raft_node_config_t *config) {
  config->n_peers = 0;
  const char *p = text;
  while (p) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    char item[300];
    if (n == 0 || n >= sizeof(item) || config->n_peers == MF_RAFT_PEERS_MAX)
      return MF_ERR_INVALID_ARG;
    memcpy(item, p, n);
    item[n] = '\0';
    mf_raft_peer_t *peer = &config->peers[config->n_peers];
    memset(peer, 0, sizeof(*peer));
    char *at = strchr(item, '@');
    if (!at) return MF_ERR_INVALID_ARG;
    *at = '\0';
    char *idend;
    unsigned long long id = strtoull(item, &idend, 10);
    if (*item == '\0' || *idend != '\0' || id == 0) return MF_ERR_INVALID_ARG;
    char *raft_addr = at + 1;
    char *slash = strchr(raft_addr, '/');
    if (slash) {
      *slash = '\0';
      if (strlen(slash + 1) >= sizeof(peer->rpc_address)) return MF_ERR_INVALID_ARG;
      strcpy(peer->rpc_address, slash + 1);
    }
    if (*raft_addr == '\0' || !strchr(raft_addr, ':') ||
        strlen(raft_addr) >= sizeof(peer->raft_address))
      return MF_ERR_INVALID_ARG;
    strcpy(peer->raft_address, raft_addr);
    peer->id = id;
    for (unsigned i = 0; i < config->n_peers; i++)
      if (config->peers[i].id == id) return MF_ERR_INVALID_ARG;
    config->n_peers++;
    p = end ? end + 1 : NULL;
  }
  return config->n_peers ? MF_OK : MF_ERR_INVALID_ARG;
}

static const mf_raft_peer_t *find_peer(const mf_raft_node_t *n, uint64_t id) {
  for (unsigned i = 0; i < n->config.n_peers; i++)
    if (n->config.peers[i].id == id) return &n->config.peers[i];
  return NULL;
}

mf_err_t mf_raft_node_start(uv_loop_t *loop, const mf_raft_node_config_t *config,
                            mf_raft_node_t **out) {
  mf_raft_node_t *n = calloc(1, sizeof(*n));
  if (!n) return MF_ERR_NO_MEMORY;
  n->config = *config;
  const mf_raft_peer_t *self = find_peer(n, config->id);
  if (!self) {
    MF_LOG_ERROR("id %llu is not in the peer list", (unsigned long long)config->id);
    free(n);
    return MF_ERR_INVALID_ARG;
  }
  mf_err_t err = mf_raft_fsm_init(&n->fsm, &n->rfsm);
  if (err) {
    free(n);
    return err;
  }
  int rv = raft_uv_tcp_init(&n->transport, loop);
  if (rv) goto fail_fsm;
  rv = raft_uv_init(&n->io, loop, config->data_dir, &n->transport);
  if (rv) goto fail_transport;
  rv = raft_init(&n->raft, &n->io, &n->rfsm, config->id, self->raft_address);
  if (rv) goto fail_io;
  n->raft.data = n;

  struct raft_configuration conf;
  raft_configuration_init(&conf);
  for (unsigned i = 0; i < config->n_peers && !rv; i++)
    rv = raft_configuration_add(&conf, config->peers[i].id, config->peers[i].raft_address,
                                RAFT_VOTER);
  if (!rv && !config->join) rv = raft_bootstrap(&n->raft, &conf);
  raft_configuration_close(&conf);
  if (config->join) MF_LOG_INFO("joining: waiting for the leader to add id %llu",
                                (unsigned long long)config->id);
  if (rv == RAFT_CANTBOOTSTRAP) {
    MF_LOG_INFO("data directory %s has state: resuming", config->data_dir);
    rv = 0;
  } else if (rv == 0) {
    MF_LOG_INFO("bootstrapped with %u voters", config->n_peers);
  }
  if (rv) goto fail_raft;

  unsigned threshold = config->snapshot_threshold ? config->snapshot_threshold : 1024;
  raft_set_snapshot_threshold(&n->raft, threshold);
  raft_set_snapshot_trailing(&n->raft, threshold);
  raft_set_election_timeout(&n->raft,
                            config->election_timeout_ms ? config->election_timeout_ms : 1000);
  raft_set_heartbeat_timeout(&n->raft,
                             config->heartbeat_timeout_ms ? config->heartbeat_timeout_ms : 100);
  rv = raft_start(&n->raft);
  if (rv) goto fail_raft;
  uv_timer_init(loop, &n->publish_timer);
  n->publish_timer.data = n;
  n->publish_open = true;
  uv_timer_start(&n->publish_timer, publish_tick, PUBLISH_INTERVAL_MS, PUBLISH_INTERVAL_MS);
  MF_LOG_INFO("raft %llu started at %s (data %s, snapshot every %u entries)",
              (unsigned long long)config->id, self->raft_address, config->data_dir, threshold);
  *out = n;
  return MF_OK;

fail_raft:
  /* raft_init succeeded: only raft_close can release it, asynchronously. */
  MF_LOG_ERROR("raft start failed: %s%s%s (is %s in use, or %s not writable?)",
               raft_strerror(rv), raft_errmsg(&n->raft)[0] ? ": " : "",
               raft_errmsg(&n->raft), self->raft_address, config->data_dir);
  mf_raft_node_close(n, NULL, NULL);
  return MF_ERR_IO;
fail_io:
  MF_LOG_ERROR("raft init failed: %s", raft_strerror(rv));
  raft_uv_close(&n->io);
fail_transport:
  raft_uv_tcp_close(&n->transport);
fail_fsm:
  if (rv) MF_LOG_ERROR("raft I/O init failed: %s", raft_strerror(rv));
  mf_raft_fsm_close(&n->fsm);
  free(n);
  return MF_ERR_IO;
}

static void raft_closed(struct raft *r) {
  mf_raft_node_t *n = r->data;
  raft_uv_close(&n->io);
  raft_uv_tcp_close(&n->transport);
  mf_raft_fsm_close(&n->fsm);
  void (*cb)(void *) = n->close_cb;
  void *ud = n->close_ud;
  free(n);
  if (cb) cb(ud);
}

/* The timer is closed first so that raft_closed, which frees the node, runs after it. */
static void publish_timer_closed(uv_handle_t *h) {
  mf_raft_node_t *n = h->data;
  raft_close(&n->raft, raft_closed);
}

void mf_raft_node_close(mf_raft_node_t *n, void (*cb)(void *ud), void *ud) {
  n->close_cb = cb;
  n->close_ud = ud;
  if (n->publish_open) {
    n->publish_open = false;
    uv_close((uv_handle_t *)&n->publish_timer, publish_timer_closed);
    return;
  }
  raft_close(&n->raft, raft_closed);
}

mf_err_t mf_raft_node_submit(mf_raft_node_t *n, const Mafalda__Controller__Command *cmd,
                             mf_raft_submit_cb cb, void *ud) {
  return mf_raft_submit(&n->raft, cmd, cb, ud);
}

mf_err_t mf_raft_node_add_voter(mf_raft_node_t *n, uint64_t id, const char *raft_address,
                                const char *rpc_address, mf_raft_change_cb cb, void *ud) {
  mf_err_t err = mf_raft_add_voter(&n->raft, id, raft_address, cb, ud);
  /* Remember its RPC address here so that redirects to it work from this replica; others
   * learn it only from their own --peers (not replicated yet). */
  if (err == MF_OK && rpc_address && !find_peer(n, id) && n->config.n_peers < MF_RAFT_PEERS_MAX) {
    mf_raft_peer_t *p = &n->config.peers[n->config.n_peers++];
    memset(p, 0, sizeof(*p));
    p->id = id;
    snprintf(p->raft_address, sizeof(p->raft_address), "%s", raft_address);
    snprintf(p->rpc_address, sizeof(p->rpc_address), "%s", rpc_address);
  }
  return err;
}

mf_err_t mf_raft_node_remove_server(mf_raft_node_t *n, uint64_t id, mf_raft_change_cb cb,
                                    void *ud) {
  return mf_raft_remove_server(&n->raft, id, cb, ud);
}

typedef struct {
  struct raft_barrier req;
  void (*cb)(void *ud, mf_err_t status);
  void *ud;
} barrier_t;

static void barrier_done(struct raft_barrier *req, int status) {
  barrier_t *b = req->data;
  b->cb(b->ud, from_raft(status));
  free(b);
}

mf_err_t mf_raft_node_barrier(mf_raft_node_t *n, void (*cb)(void *ud, mf_err_t status),
                              void *ud) {
  barrier_t *b = calloc(1, sizeof(*b));
  if (!b) return MF_ERR_NO_MEMORY;
  b->req.data = b;
  b->cb = cb;
  b->ud = ud;
  int rv = raft_barrier(&n->raft, &b->req, barrier_done);
  if (rv != 0) {
    free(b);
    return from_raft(rv);
  }
  return MF_OK;
}

bool mf_raft_node_is_leader(mf_raft_node_t *n) { return raft_state(&n->raft) == RAFT_LEADER; }

uint64_t mf_raft_node_leader(mf_raft_node_t *n, const char **rpc_address) {
  raft_id id = 0;
  const char *addr = NULL;
  raft_leader(&n->raft, &id, &addr);
  const mf_raft_peer_t *peer = id ? find_peer(n, id) : NULL;
  if (rpc_address) {
    *rpc_address = peer ? peer->rpc_address : "";
    /* A leader added after this replica started (or forgotten by a restart) is known
     * only through the replicated table. */
    const Mafalda__Controller__ControllerAddress *row =
        id && !(*rpc_address)[0] ? mf_fsm_find_controller(n->fsm.fsm, id) : NULL;
    if (row) *rpc_address = row->rpc_address;
  }
  return id;
}

static const struct raft_server *member(const mf_raft_node_t *n, uint64_t id) {
  const struct raft_configuration *conf = &n->raft.configuration;
  for (unsigned i = 0; i < conf->n; i++)
    if (conf->servers[i].id == id) return &conf->servers[i];
  return NULL;
}

bool mf_raft_node_member(mf_raft_node_t *n, uint64_t id, const char **raft_address) {
  const struct raft_server *s = id ? member(n, id) : NULL;
  if (raft_address) *raft_address = s && s->address ? s->address : "";
  return s != NULL;
}

/* ---- the controllers' addresses, replicated ---- */

static void publish_done(void *ud, mf_err_t status, mf_err_t code, const char *message,
                         uint64_t index) {
  (void)ud;
  (void)index;
  if (status != MF_OK || code != MF_OK)
    MF_LOG_WARN("controller address not recorded: %s", message ? message : mf_strerror(status));
}

static bool publish_one(mf_raft_node_t *n, uint64_t id, const char *raft_address,
                        const char *rpc_address) {
  Mafalda__Controller__SetControllerAddress set =
      MAFALDA__CONTROLLER__SET_CONTROLLER_ADDRESS__INIT;
  set.raft_id = id;
  set.raft_address = (char *)raft_address;
  set.rpc_address = (char *)rpc_address;
  Mafalda__Controller__Command cmd = MAFALDA__CONTROLLER__COMMAND__INIT;
  cmd.cmd_case = MAFALDA__CONTROLLER__COMMAND__CMD_SET_CONTROLLER_ADDRESS;
  cmd.set_controller_address = &set;
  mf_err_t err = mf_raft_submit(&n->raft, &cmd, publish_done, NULL);
  if (err == MF_OK)
    MF_LOG_INFO("recording controller %llu's address: %s", (unsigned long long)id,
                rpc_address[0] ? rpc_address : "(removed)");
  return err == MF_OK;
}

typedef struct {
  mf_raft_node_t *node;
  uint64_t stale[MF_FSM_CONTROLLERS_MAX];
  size_t n;
} stale_rows_t;

static void collect_stale(void *ud, const Mafalda__Controller__ControllerAddress *c) {
  stale_rows_t *s = ud;
  if (!member(s->node, c->raft_id) && s->n < MF_FSM_CONTROLLERS_MAX) s->stale[s->n++] = c->raft_id;
}

/* Leader, FSM caught up: rows for the members this replica knows an RPC address of (its
 * --peers and the voters it added) where the FSM lacks or differs, and removals of rows of
 * servers no longer in the configuration (a RemoveVoter whose cleanup did not commit).
 * False when a submission failed (retried on a later tick). */
static bool publish_addresses(mf_raft_node_t *n) {
  bool ok = true;
  const mf_fsm_t *fsm = n->fsm.fsm;
  for (unsigned i = 0; i < n->config.n_peers; i++) {
    const mf_raft_peer_t *p = &n->config.peers[i];
    const struct raft_server *s = member(n, p->id);
    if (!s || !p->rpc_address[0]) continue;
    const char *raft_address = s->address ? s->address : p->raft_address;
    const Mafalda__Controller__ControllerAddress *row = mf_fsm_find_controller(fsm, p->id);
    if (row && strcmp(row->raft_address, raft_address) == 0 &&
        strcmp(row->rpc_address, p->rpc_address) == 0)
      continue;
    ok = publish_one(n, p->id, raft_address, p->rpc_address) && ok;
  }
  stale_rows_t stale = {.node = n};
  mf_fsm_foreach_controller(fsm, collect_stale, &stale);
  for (size_t i = 0; i < stale.n; i++) ok = publish_one(n, stale.stale[i], "", "") && ok;
  return ok;
}

static void publish_barrier_done(void *ud, mf_err_t status) {
  mf_raft_node_t *n = ud;
  n->publish_busy = false;
  if (status != MF_OK || !n->publish_open || raft_state(&n->raft) != RAFT_LEADER ||
      n->raft.current_term != n->publish_term)
    return;
  if (publish_addresses(n)) n->published_term = n->publish_term;
}

/* libraft 0.15 has no leadership callback: a cheap poll notices a new term as leader. The
 * barrier makes the FSM hold every earlier entry before it is compared with the peers. */
static void publish_tick(uv_timer_t *t) {
  mf_raft_node_t *n = t->data;
  if (n->publish_busy || raft_state(&n->raft) != RAFT_LEADER ||
      n->raft.current_term == n->published_term)
    return;
  uint64_t term = n->raft.current_term;
  if (mf_raft_node_barrier(n, publish_barrier_done, n) == MF_OK) {
    n->publish_busy = true;
    n->publish_term = term;
  }
}

uint64_t mf_raft_node_id(const mf_raft_node_t *n) { return n->config.id; }
uint64_t mf_raft_node_last_applied(mf_raft_node_t *n) { return raft_last_applied(&n->raft); }
uint64_t mf_raft_node_term(mf_raft_node_t *n) { return n->raft.current_term; }
const mf_fsm_t *mf_raft_node_fsm(const mf_raft_node_t *n) { return n->fsm.fsm; }
