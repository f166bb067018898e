#define MF_LOG_MODULE "sctp"
#include "node/sctp_association.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <usrsctp.h>

#include "common/hashmap.h"
#include "common/log.h"

/* Something usrsctp produced for an association, queued under g_mu by its callbacks and
 * handed to the owner thread by mf_sctp_association_process. */
typedef enum { ITEM_PACKET, ITEM_MESSAGE, ITEM_STATE, ITEM_RESET, ITEM_RESET_DONE } item_kind_t;

typedef struct sctp_item {
  struct sctp_item *next;
  item_kind_t kind;
  mf_sctp_state_t state;
  uint16_t stream_id, os, mis;
  uint32_t ppid;
  size_t len;
  uint8_t data[];
} sctp_item_t;

typedef struct {
  sctp_item_t *head, *tail;
} sctp_queue_t;

struct mf_sctp_association {
  uintptr_t id; /* the AF_CONN address registered with usrsctp; key of g_table */
  uv_loop_t *loop;
  uv_timer_t timer;
  uv_async_t async;
  int handles_open;
  mf_sctp_callbacks_t cb;
  void *ud;
  mf_sctp_options_t opts;
  struct socket *sock;
  /* g_mu: filled by usrsctp's callbacks */
  sctp_queue_t packets, events;
  bool wake_pending;
  uint8_t *partial; /* a message usrsctp delivers in parts (partial delivery) */
  size_t partial_len;
  bool partial_discard;
  /* owner thread */
  mf_sctp_state_t state;
  uint16_t out_streams, in_streams;
  uint8_t *reset_sent; /* bitmap of our outgoing streams with a reset under way */
  bool processing, free_pending;
  mf_sctp_stats_t stats;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static mf_hashmap_t *g_table; /* uintptr_t id -> association (g_mu) */
static uintptr_t g_next_id = 1;
static _Atomic uint64_t g_last_tick_ms; /* written under g_mu; read first without it */
static bool g_ready;

static const char *const g_state_names[] = {"new", "connecting", "connected", "failed", "closed"};

const char *mf_sctp_state_name(mf_sctp_state_t s) {
  return (unsigned)s <= MF_SCTP_STATE_CLOSED ? g_state_names[s] : "?";
}

/* ------------------------------------------------------------ usrsctp callbacks (g_mu held) */

static mf_sctp_association_t *sctp_lookup(void *addr) {
  uintptr_t id = (uintptr_t)addr;
  return g_table ? mf_hashmap_get(g_table, &id) : NULL;
}

static void sctp_wake(mf_sctp_association_t *a) {
  if (a->wake_pending || !a->loop) return;
  a->wake_pending = true;
  uv_async_send(&a->async); /* thread-safe; coalesced */
}

static sctp_item_t *sctp_item_new(item_kind_t kind, const void *data, size_t len) {
  sctp_item_t *it = calloc(1, sizeof *it + len);
  if (!it) return NULL;
  it->kind = kind;
  it->len = len;
  if (len) memcpy(it->data, data, len);
  return it;
}

static void sctp_queue_push(sctp_queue_t *q, sctp_item_t *it) {
  if (q->tail)
    q->tail->next = it;
  else
    q->head = it;
  q->tail = it;
}

static void sctp_queue_free(sctp_queue_t *q) {
  while (q->head) {
    sctp_item_t *n = q->head->next;
    free(q->head);
    q->head = n;
  }
  q->tail = NULL;
}

static void sctp_push_event(mf_sctp_association_t *a, sctp_item_t *it) {
  if (!it) return;
  sctp_queue_push(&a->events, it);
  sctp_wake(a);
}

static void sctp_push_state(mf_sctp_association_t *a, mf_sctp_state_t s, uint16_t os,
                            uint16_t mis) {
  sctp_item_t *it = sctp_item_new(ITEM_STATE, NULL, 0);
  if (!it) return;
  it->state = s;
  it->os = os;
  it->mis = mis;
  sctp_push_event(a, it);
}

/* Never calls into usrsctp (it holds its own locks here): only queues. */
static int sctp_on_output(void *addr, void *buffer, size_t length, uint8_t tos, uint8_t set_df) {
  (void)tos;
  (void)set_df;
  mf_sctp_association_t *a = sctp_lookup(addr);
  if (!a || length == 0) return 0;
  sctp_item_t *it = sctp_item_new(ITEM_PACKET, buffer, length);
  if (!it) return 0;
  sctp_queue_push(&a->packets, it);
  sctp_wake(a);
  return 0;
}

static void sctp_on_notification(mf_sctp_association_t *a, const uint8_t *data, size_t len) {
  const union sctp_notification *n = (const void *)data;
  if (len < sizeof n->sn_header) return;
  switch (n->sn_header.sn_type) {
    case SCTP_ASSOC_CHANGE: {
      if (len < sizeof n->sn_assoc_change) return;
      const struct sctp_assoc_change *ac = &n->sn_assoc_change;
      switch (ac->sac_state) {
        case SCTP_COMM_UP:
        case SCTP_RESTART:
          sctp_push_state(a, MF_SCTP_STATE_CONNECTED, ac->sac_outbound_streams,
                          ac->sac_inbound_streams);
          break;
        case SCTP_COMM_LOST:
        case SCTP_CANT_STR_ASSOC:
          sctp_push_state(a, MF_SCTP_STATE_FAILED, 0, 0);
          break;
        case SCTP_SHUTDOWN_COMP:
          sctp_push_state(a, MF_SCTP_STATE_CLOSED, 0, 0);
          break;
        default:
          break;
      }
      break;
    }
    case SCTP_SHUTDOWN_EVENT:
      sctp_push_state(a, MF_SCTP_STATE_CLOSED, 0, 0);
      break;
    case SCTP_STREAM_RESET_EVENT: {
      const struct sctp_stream_reset_event *e = &n->sn_strreset_event;
      if (len < sizeof *e || e->strreset_length > len || e->strreset_length < sizeof *e) return;
      if (e->strreset_flags & (SCTP_STREAM_RESET_DENIED | SCTP_STREAM_RESET_FAILED)) return;
      size_t count = (e->strreset_length - sizeof *e) / sizeof(uint16_t);
      for (size_t i = 0; i < count; i++) {
        uint16_t sid;
        memcpy(&sid, data + sizeof *e + i * sizeof sid, sizeof sid);
        if (e->strreset_flags & SCTP_STREAM_RESET_INCOMING_SSN) {
          sctp_item_t *it = sctp_item_new(ITEM_RESET, NULL, 0);
          if (it) it->stream_id = sid;
          sctp_push_event(a, it);
        }
        if (e->strreset_flags & SCTP_STREAM_RESET_OUTGOING_SSN) {
          sctp_item_t *it = sctp_item_new(ITEM_RESET_DONE, NULL, 0);
          if (it) it->stream_id = sid;
          sctp_push_event(a, it);
        }
      }
      break;
    }
    default:
      break; /* send failures and the rest: usrsctp already dropped what it had to */
  }
}

static void sctp_push_message(mf_sctp_association_t *a, uint16_t sid, uint32_t ppid,
                              const uint8_t *data, size_t len) {
  sctp_item_t *it = sctp_item_new(ITEM_MESSAGE, data, len);
  if (!it) return;
  it->stream_id = sid;
  it->ppid = ppid;
  sctp_push_event(a, it);
}

static void sctp_on_data(mf_sctp_association_t *a, const uint8_t *data, size_t len,
                         const struct sctp_rcvinfo *rcv, int flags) {
  uint16_t sid = rcv->rcv_sid;
  uint32_t ppid = ntohl(rcv->rcv_ppid);
  bool eor = (flags & MSG_EOR) != 0;
  if (eor && a->partial_len == 0 && !a->partial_discard) {
    if (len > a->opts.max_message_size)
      a->stats.receive_dropped++;
    else
      sctp_push_message(a, sid, ppid, data, len);
    return;
  }
  /* a part: usrsctp does not interleave messages of several streams (fragment interleave
   * is off), so one buffer per association is enough */
  if (!a->partial_discard) {
    if (a->partial_len + len > a->opts.max_message_size) {
      a->partial_discard = true;
    } else {
      if (!a->partial) a->partial = malloc(a->opts.max_message_size);
      if (!a->partial) {
        a->partial_discard = true;
      } else {
        memcpy(a->partial + a->partial_len, data, len);
        a->partial_len += len;
      }
    }
  }
  if (!eor) return;
  if (a->partial_discard)
    a->stats.receive_dropped++;
  else
    sctp_push_message(a, sid, ppid, a->partial, a->partial_len);
  a->partial_len = 0;
  a->partial_discard = false;
}

static int sctp_on_receive(struct socket *sock, union sctp_sockstore addr, void *data,
                           size_t datalen, struct sctp_rcvinfo rcv, int flags, void *ulp_info) {
  (void)sock;
  (void)addr;
  mf_sctp_association_t *a = sctp_lookup(ulp_info);
  if (a && !data) {
    sctp_push_state(a, MF_SCTP_STATE_CLOSED, 0, 0); /* the socket reached EOF */
  } else if (a) {
    if (flags & MSG_NOTIFICATION)
      sctp_on_notification(a, data, datalen);
    else
      sctp_on_data(a, data, datalen, &rcv, flags);
  }
  free(data); /* usrsctp hands the buffer over */
  return 1;
}

/* ------------------------------------------------------------ process-wide state */

static void sctp_debug_printf(const char *format, ...) { (void)format; }

static void sctp_global_init(void) {
  if (mf_hashmap_create(sizeof(uintptr_t), 16, &g_table) != MF_OK) return;
  usrsctp_init_nothreads(0, sctp_on_output, sctp_debug_printf);
  usrsctp_sysctl_set_sctp_ecn_enable(0);
  g_ready = true;
  MF_LOG_INFO("usrsctp initialized (no threads, AF_CONN)");
}

void mf_sctp_handle_timers(uint32_t elapsed_ms) {
  pthread_once(&g_once, sctp_global_init);
  if (!g_ready) return;
  pthread_mutex_lock(&g_mu);
  usrsctp_handle_timers(elapsed_ms);
  pthread_mutex_unlock(&g_mu);
}

/* Advances usrsctp's clock by the real time since the last tick of any association: with
 * many associations (on any workers) most ticks find the clock fresh and take no lock. */
static void sctp_tick_clock(uint64_t now_ms) {
  uint64_t last = atomic_load(&g_last_tick_ms);
  if (last != 0 && now_ms >= last && now_ms - last < MF_SCTP_TIMER_MS) return;
  pthread_mutex_lock(&g_mu);
  last = atomic_load(&g_last_tick_ms);
  if (last == 0 || now_ms < last) last = now_ms;
  uint64_t elapsed = now_ms - last;
  atomic_store(&g_last_tick_ms, now_ms);
  if (elapsed > 0) usrsctp_handle_timers((uint32_t)(elapsed > UINT32_MAX ? UINT32_MAX : elapsed));
  pthread_mutex_unlock(&g_mu);
}

/* ------------------------------------------------------------ owner thread */

static void sctp_destroy(mf_sctp_association_t *a);

static void sctp_set_state(mf_sctp_association_t *a, mf_sctp_state_t s) {
  if (a->state == s) return;
  if (a->state == MF_SCTP_STATE_FAILED || a->state == MF_SCTP_STATE_CLOSED) return;
  MF_LOG_INFO("association %lu: %s -> %s", (unsigned long)a->id, mf_sctp_state_name(a->state),
              mf_sctp_state_name(s));
  a->state = s;
  if (a->cb.state) a->cb.state(a->ud, s);
}

static bool sctp_bit(const uint8_t *bits, uint16_t i) { return (bits[i / 8] >> (i % 8)) & 1u; }
static void sctp_bit_set(uint8_t *bits, uint16_t i, bool v) {
  if (v)
    bits[i / 8] |= (uint8_t)(1u << (i % 8));
  else
    bits[i / 8] &= (uint8_t)~(1u << (i % 8));
}

static void sctp_handle_event(mf_sctp_association_t *a, sctp_item_t *it) {
  switch (it->kind) {
    case ITEM_STATE:
      if (it->state == MF_SCTP_STATE_CONNECTED) {
        a->out_streams = it->os;
        a->in_streams = it->mis;
      }
      sctp_set_state(a, it->state);
      break;
    case ITEM_MESSAGE:
      a->stats.messages_received++;
      a->stats.bytes_received += it->len;
      if (a->cb.message) a->cb.message(a->ud, it->stream_id, it->ppid, it->data, it->len);
      break;
    case ITEM_RESET:
      /* The peer closed its side of the channel: close ours unless we started it. */
      if (it->stream_id < a->opts.os && sctp_bit(a->reset_sent, it->stream_id))
        sctp_bit_set(a->reset_sent, it->stream_id, false);
      else
        (void)mf_sctp_association_reset_stream(a, it->stream_id);
      if (a->cb.stream_reset) a->cb.stream_reset(a->ud, it->stream_id);
      break;
    case ITEM_RESET_DONE:
    case ITEM_PACKET:
      break;
  }
}

void mf_sctp_association_process(mf_sctp_association_t *a) {
  if (a->processing) return; /* the outer loop picks up what was queued meanwhile */
  a->processing = true;
  for (;;) {
    pthread_mutex_lock(&g_mu);
    sctp_item_t *packets = a->packets.head, *events = a->events.head;
    a->packets.head = a->packets.tail = NULL;
    a->events.head = a->events.tail = NULL;
    pthread_mutex_unlock(&g_mu);
    if (!packets && !events) break;
    while (packets) {
      sctp_item_t *n = packets->next;
      if (!a->free_pending) a->cb.send(a->ud, packets->data, packets->len);
      free(packets);
      packets = n;
    }
    while (events) {
      sctp_item_t *n = events->next;
      if (!a->free_pending) sctp_handle_event(a, events);
      free(events);
      events = n;
    }
    if (a->free_pending) break;
  }
  a->processing = false;
  if (a->free_pending) sctp_destroy(a);
}

static void sctp_on_async(uv_async_t *h) {
  mf_sctp_association_t *a = h->data;
  pthread_mutex_lock(&g_mu);
  a->wake_pending = false;
  pthread_mutex_unlock(&g_mu);
  mf_sctp_association_process(a);
}

/* What the tick makes usrsctp emit, for any association, reaches its owner through the
 * wake-up (sctp_wake), so the timer itself drains nothing. */
static void sctp_on_timer(uv_timer_t *h) {
  (void)h;
  sctp_tick_clock(uv_hrtime() / 1000000u);
}

static int sctp_setopt(struct socket *s, int level, int name, const void *v, socklen_t len,
                       const char *what) {
  if (usrsctp_setsockopt(s, level, name, v, len) == 0) return 0;
  MF_LOG_ERROR("usrsctp_setsockopt(%s) failed: %s", what, strerror(errno));
  return -1;
}

static struct sockaddr_conn sctp_addr(const mf_sctp_association_t *a) {
  struct sockaddr_conn sc;
  memset(&sc, 0, sizeof sc);
  sc.sconn_family = AF_CONN;
  sc.sconn_port = htons(MF_SCTP_PORT);
  sc.sconn_addr = (void *)a->id;
  return sc;
}

/* g_mu held. */
static int sctp_socket_setup(mf_sctp_association_t *a) {
  a->sock = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, sctp_on_receive, NULL, 0,
                           (void *)a->id);
  if (!a->sock) {
    MF_LOG_ERROR("usrsctp_socket failed: %s", strerror(errno));
    return -1;
  }
  struct socket *s = a->sock;
  if (usrsctp_set_non_blocking(s, 1) < 0) return -1;
  /* close() aborts at once instead of lingering on a transport that is going away */
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  if (sctp_setopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg, "SO_LINGER")) return -1;
  struct sctp_assoc_value av = {.assoc_id = SCTP_ALL_ASSOC,
                                .assoc_value = SCTP_ENABLE_RESET_STREAM_REQ};
  if (sctp_setopt(s, IPPROTO_SCTP, SCTP_ENABLE_STREAM_RESET, &av, sizeof av, "SCTP_ENABLE_STREAM_RESET"))
    return -1;
  int one = 1;
  if (sctp_setopt(s, IPPROTO_SCTP, SCTP_NODELAY, &one, sizeof one, "SCTP_NODELAY")) return -1;
  if (sctp_setopt(s, IPPROTO_SCTP, SCTP_RECVRCVINFO, &one, sizeof one, "SCTP_RECVRCVINFO"))
    return -1;
  static const uint16_t events[] = {SCTP_ASSOC_CHANGE, SCTP_PEER_ADDR_CHANGE, SCTP_REMOTE_ERROR,
                                    SCTP_SHUTDOWN_EVENT, SCTP_SEND_FAILED_EVENT,
                                    SCTP_STREAM_RESET_EVENT, SCTP_STREAM_CHANGE_EVENT};
  for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
    struct sctp_event ev = {.se_assoc_id = SCTP_ALL_ASSOC, .se_type = events[i], .se_on = 1};
    if (sctp_setopt(s, IPPROTO_SCTP, SCTP_EVENT, &ev, sizeof ev, "SCTP_EVENT")) return -1;
  }
  struct sctp_initmsg im = {.sinit_num_ostreams = a->opts.os, .sinit_max_instreams = a->opts.mis};
  if (sctp_setopt(s, IPPROTO_SCTP, SCTP_INITMSG, &im, sizeof im, "SCTP_INITMSG")) return -1;
  int sndbuf = (int)a->opts.send_buffer_size;
  if (sctp_setopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf, "SO_SNDBUF")) return -1;
  struct sockaddr_conn sc = sctp_addr(a);
  if (usrsctp_bind(s, (struct sockaddr *)&sc, sizeof sc) < 0) {
    MF_LOG_ERROR("usrsctp_bind failed: %s", strerror(errno));
    return -1;
  }
  return 0;
}

static void sctp_on_handle_closed(uv_handle_t *h) {
  mf_sctp_association_t *a = h->data;
  if (--a->handles_open == 0) free(a);
}

mf_err_t mf_sctp_association_create(uv_loop_t *loop, const mf_sctp_options_t *options,
                                    const mf_sctp_callbacks_t *cb, void *ud,
                                    mf_sctp_association_t **out) {
  if (!cb || !cb->send || !out) return MF_ERR_INVALID_ARG;
  pthread_once(&g_once, sctp_global_init);
  if (!g_ready) return MF_ERR_NO_MEMORY;
  mf_sctp_association_t *a = calloc(1, sizeof *a);
  if (!a) return MF_ERR_NO_MEMORY;
  if (options) a->opts = *options;
  if (a->opts.os == 0) a->opts.os = MF_SCTP_DEFAULT_STREAMS;
  if (a->opts.mis == 0) a->opts.mis = MF_SCTP_DEFAULT_STREAMS;
  if (a->opts.max_message_size == 0) a->opts.max_message_size = MF_SCTP_DEFAULT_MAX_MESSAGE_SIZE;
  if (a->opts.send_buffer_size == 0) a->opts.send_buffer_size = MF_SCTP_DEFAULT_SEND_BUFFER;
  a->reset_sent = calloc((size_t)a->opts.os / 8 + 1, 1);
  if (!a->reset_sent) {
    free(a);
    return MF_ERR_NO_MEMORY;
  }
  a->cb = *cb;
  a->ud = ud;
  a->loop = loop;
  pthread_mutex_lock(&g_mu);
  a->id = g_next_id++;
  mf_err_t e = mf_hashmap_put(g_table, &a->id, a);
  if (!e) {
    usrsctp_register_address((void *)a->id);
    if (sctp_socket_setup(a) != 0) {
      if (a->sock) usrsctp_close(a->sock);
      usrsctp_deregister_address((void *)a->id);
      mf_hashmap_remove(g_table, &a->id);
      e = MF_ERR_IO;
    }
  }
  pthread_mutex_unlock(&g_mu);
  if (e) {
    free(a->reset_sent);
    free(a);
    return e;
  }
  if (loop) {
    uv_timer_init(loop, &a->timer);
    uv_async_init(loop, &a->async, sctp_on_async);
    a->timer.data = a->async.data = a;
    a->handles_open = 2;
  }
  *out = a;
  return MF_OK;
}

mf_err_t mf_sctp_association_connect(mf_sctp_association_t *a) {
  if (a->state != MF_SCTP_STATE_NEW) return MF_ERR_STATE;
  struct sockaddr_conn sc = sctp_addr(a);
  pthread_mutex_lock(&g_mu);
  int r = usrsctp_connect(a->sock, (struct sockaddr *)&sc, sizeof sc);
  int err = errno;
  if (r == 0 || err == EINPROGRESS) {
    /* PMTU discovery cannot work through DTLS: a fixed path MTU */
    struct sctp_paddrparams pp;
    memset(&pp, 0, sizeof pp);
    memcpy(&pp.spp_address, &sc, sizeof sc);
    pp.spp_flags = SPP_PMTUD_DISABLE;
    pp.spp_pathmtu = MF_SCTP_MTU;
    (void)sctp_setopt(a->sock, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof pp,
                      "SCTP_PEER_ADDR_PARAMS");
  }
  pthread_mutex_unlock(&g_mu);
  if (r < 0 && err != EINPROGRESS) {
    MF_LOG_ERROR("association %lu: usrsctp_connect failed: %s", (unsigned long)a->id,
                 strerror(err));
    sctp_set_state(a, MF_SCTP_STATE_FAILED);
    return MF_ERR_IO;
  }
  sctp_set_state(a, MF_SCTP_STATE_CONNECTING);
  if (a->loop) uv_timer_start(&a->timer, sctp_on_timer, MF_SCTP_TIMER_MS, MF_SCTP_TIMER_MS);
  mf_sctp_association_process(a);
  return MF_OK;
}

void mf_sctp_association_handle_packet(mf_sctp_association_t *a, const uint8_t *data,
                                       size_t len) {
  if (a->state != MF_SCTP_STATE_CONNECTING && a->state != MF_SCTP_STATE_CONNECTED) return;
  if (!data || len == 0) return;
  pthread_mutex_lock(&g_mu);
  usrsctp_conninput((void *)a->id, data, len, 0);
  pthread_mutex_unlock(&g_mu);
  mf_sctp_association_process(a);
}

mf_err_t mf_sctp_association_send(mf_sctp_association_t *a, uint16_t stream_id, uint32_t ppid,
                                  const mf_sctp_send_params_t *params, const uint8_t *data,
                                  size_t len) {
  if (a->state != MF_SCTP_STATE_CONNECTED) return MF_ERR_STATE;
  if (!data || len == 0 || stream_id >= a->out_streams) return MF_ERR_INVALID_ARG;
  if (len > a->opts.max_message_size) return MF_ERR_LIMIT;
  struct sctp_sendv_spa spa;
  memset(&spa, 0, sizeof spa);
  spa.sendv_flags = SCTP_SEND_SNDINFO_VALID;
  spa.sendv_sndinfo.snd_sid = stream_id;
  spa.sendv_sndinfo.snd_ppid = htonl(ppid);
  spa.sendv_sndinfo.snd_flags = SCTP_EOR;
  if (params && !params->ordered) spa.sendv_sndinfo.snd_flags |= SCTP_UNORDERED;
  if (params && params->max_packet_life_time >= 0) {
    spa.sendv_flags |= SCTP_SEND_PRINFO_VALID;
    spa.sendv_prinfo.pr_policy = SCTP_PR_SCTP_TTL;
    spa.sendv_prinfo.pr_value = (uint32_t)params->max_packet_life_time;
  } else if (params && params->max_retransmits >= 0) {
    spa.sendv_flags |= SCTP_SEND_PRINFO_VALID;
    spa.sendv_prinfo.pr_policy = SCTP_PR_SCTP_RTX;
    spa.sendv_prinfo.pr_value = (uint32_t)params->max_retransmits;
  }
  pthread_mutex_lock(&g_mu);
  ssize_t n = usrsctp_sendv(a->sock, data, len, NULL, 0, &spa, (socklen_t)sizeof spa,
                            SCTP_SENDV_SPA, 0);
  int err = errno;
  pthread_mutex_unlock(&g_mu);
  mf_sctp_association_process(a);
  if (n < 0) {
    a->stats.send_dropped++;
    if (err == EWOULDBLOCK || err == EAGAIN) {
      MF_LOG_DEBUG("association %lu: send buffer full, message dropped", (unsigned long)a->id);
      return MF_ERR_FULL;
    }
    MF_LOG_DEBUG("association %lu: usrsctp_sendv failed: %s", (unsigned long)a->id, strerror(err));
    return MF_ERR_IO;
  }
  a->stats.messages_sent++;
  a->stats.bytes_sent += len;
  return MF_OK;
}

mf_err_t mf_sctp_association_reset_stream(mf_sctp_association_t *a, uint16_t stream_id) {
  if (a->state != MF_SCTP_STATE_CONNECTED) return MF_ERR_STATE;
  if (stream_id >= a->opts.os) return MF_ERR_INVALID_ARG;
  uint8_t raw[sizeof(struct sctp_reset_streams) + sizeof(uint16_t)];
  memset(raw, 0, sizeof raw);
  struct sctp_reset_streams *srs = (struct sctp_reset_streams *)(void *)raw;
  srs->srs_flags = SCTP_STREAM_RESET_OUTGOING;
  srs->srs_number_streams = 1;
  memcpy(raw + sizeof *srs, &stream_id, sizeof stream_id);
  pthread_mutex_lock(&g_mu);
  int r = usrsctp_setsockopt(a->sock, IPPROTO_SCTP, SCTP_RESET_STREAMS, raw, (socklen_t)sizeof raw);
  int err = errno;
  pthread_mutex_unlock(&g_mu);
  if (r == 0) sctp_bit_set(a->reset_sent, stream_id, true);
  mf_sctp_association_process(a);
  if (r != 0) {
    MF_LOG_DEBUG("association %lu: reset of stream %u failed: %s", (unsigned long)a->id,
                 stream_id, strerror(err));
    return MF_ERR_IO;
  }
  return MF_OK;
}

mf_sctp_state_t mf_sctp_association_state(const mf_sctp_association_t *a) { return a->state; }

void mf_sctp_association_options(const mf_sctp_association_t *a, mf_sctp_options_t *out) {
  *out = a->opts;
}

uint16_t mf_sctp_association_out_streams(const mf_sctp_association_t *a) { return a->out_streams; }

void mf_sctp_association_get_stats(const mf_sctp_association_t *a, mf_sctp_stats_t *out) {
  pthread_mutex_lock(&g_mu); /* receive_dropped is counted inside usrsctp's callback */
  *out = a->stats;
  pthread_mutex_unlock(&g_mu);
}

static void sctp_destroy(mf_sctp_association_t *a) {
  pthread_mutex_lock(&g_mu);
  /* out of the table first: the ABORT usrsctp_close emits and any later timer of the
   * dying association find nothing to queue into */
  mf_hashmap_remove(g_table, &a->id);
  usrsctp_close(a->sock);
  usrsctp_deregister_address((void *)a->id);
  sctp_queue_free(&a->packets);
  sctp_queue_free(&a->events);
  pthread_mutex_unlock(&g_mu);
  /* usrsctp frees a deregistered address (its ifa and a work item, ~150 bytes) only when
   * its address-work timer fires, and its clock moves only when we tick it; associations
   * that never connected never ran a timer, so without this tick every transport created
   * with SCTP and closed unconnected stayed allocated (found by tests/integration/churn.c). */
  sctp_tick_clock(uv_hrtime() / 1000000u);
  free(a->partial);
  free(a->reset_sent);
  if (a->loop) {
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, sctp_on_handle_closed);
    uv_close((uv_handle_t *)&a->async, sctp_on_handle_closed);
  } else {
    free(a);
  }
}

void mf_sctp_association_free(mf_sctp_association_t *a) {
  if (!a) return;
  if (a->processing) {
    a->free_pending = true;
    return;
  }
  sctp_destroy(a);
}
