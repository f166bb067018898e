/* ICE-lite server: see ice.h. libnice's STUN library does the wire format, FINGERPRINT
 * and MESSAGE-INTEGRITY; this file decides what to answer and keeps the ICE state. */
#include "node/ice.h"

#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include <stun/stunagent.h>
#include <stun/stunmessage.h>
#include <stun/usages/ice.h>

#define MF_LOG_MODULE "ice"
#include "common/log.h"

#define STUN_HEADER_LEN 20
#define STUN_COOKIE 0x2112A442u
#define STUN_TYPE_BINDING_REQUEST 0x0001u
#define STUN_ATTR_USERNAME 0x0006u
#define STUN_ATTR_MESSAGE_INTEGRITY 0x0008u
/* RFC 5389 §15.3: USERNAME MUST be shorter than 513 bytes. Bounding it also bounds the
 * success response, which echoes it (MF_ICE_RESPONSE_MAX). */
#define STUN_USERNAME_MAX 512

/* Comprehension-required attributes (< 0x8000) outside this list make a request fail
 * with 420; comprehension-optional ones (GOOG-NETWORK-INFO, NOMINATION, ...) are
 * ignored whatever this list says. */
static const uint16_t known_attributes[] = {
    STUN_ATTRIBUTE_USERNAME,           STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
    STUN_ATTRIBUTE_ERROR_CODE,         STUN_ATTRIBUTE_UNKNOWN_ATTRIBUTES,
    STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS, STUN_ATTRIBUTE_PRIORITY,
    STUN_ATTRIBUTE_USE_CANDIDATE,      STUN_ATTRIBUTE_FINGERPRINT,
    STUN_ATTRIBUTE_ICE_CONTROLLED,     STUN_ATTRIBUTE_ICE_CONTROLLING,
    0};

/* Eviction always needs a slot that is not the selected tuple. */
_Static_assert(MF_ICE_MAX_TUPLES >= 2, "MF_ICE_MAX_TUPLES must leave a non-selected slot");

typedef struct {
  char ufrag[MF_ICE_CRED_MAX + 1];
  size_t ufrag_len;
  char pwd[MF_ICE_CRED_MAX + 1];
  size_t pwd_len;
} ice_creds_t;

typedef struct {
  struct sockaddr_storage addr;
  uint64_t last_ms; /* last valid check from this tuple */
} ice_tuple_t;

struct mf_ice {
  StunAgent agent; /* stateless for a server: only sent requests are remembered */
  ice_creds_t creds;
  ice_creds_t old_creds; /* valid while has_old_creds (after mf_ice_restart) */
  bool has_old_creds;
  /* Set by the validater for the request being handled: which credentials matched. */
  bool matched_old;
  mf_ice_state_t state;
  ice_tuple_t tuples[MF_ICE_MAX_TUPLES];
  size_t ntuples;
  int selected; /* index into tuples, -1 when none */
  uint64_t consent_ms; /* last valid check from the selected tuple */
};

const char *mf_ice_state_name(mf_ice_state_t state) {
  switch (state) {
    case MF_ICE_STATE_NEW: return "new";
    case MF_ICE_STATE_CONNECTED: return "connected";
    case MF_ICE_STATE_COMPLETED: return "completed";
    case MF_ICE_STATE_DISCONNECTED: return "disconnected";
    case MF_ICE_STATE_CLOSED: return "closed";
  }
  return "unknown";
}

static const char ice_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static bool is_ice_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '+' || c == '/';
}

static mf_err_t random_ice_string(char *out, size_t n) {
  unsigned char raw[MF_ICE_PWD_LEN];
  if (n > sizeof raw) return MF_ERR_INTERNAL;
  if (RAND_bytes(raw, (int)n) != 1) return MF_ERR_CRYPTO;
  /* 64 symbols divide 256 evenly, so masking keeps the distribution uniform. */
  for (size_t i = 0; i < n; i++) out[i] = ice_chars[raw[i] & 63];
  out[n] = '\0';
  return MF_OK;
}

mf_err_t mf_ice_generate_credentials(char ufrag[MF_ICE_UFRAG_LEN + 1],
                                     char pwd[MF_ICE_PWD_LEN + 1]) {
  if (!ufrag || !pwd) return MF_ERR_INVALID_ARG;
  mf_err_t err = random_ice_string(ufrag, MF_ICE_UFRAG_LEN);
  if (err == MF_OK) err = random_ice_string(pwd, MF_ICE_PWD_LEN);
  return err;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static uint32_t get32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

bool mf_ice_is_stun(const uint8_t *data, size_t len) {
  return data && len >= STUN_HEADER_LEN && data[0] <= 3 && get32(data + 4) == STUN_COOKIE;
}

mf_err_t mf_ice_peek_local_ufrag(const uint8_t *data, size_t len, char *out,
                                 size_t out_size) {
  if (!data || !out || out_size == 0) return MF_ERR_INVALID_ARG;
  out[0] = '\0';
  if (!mf_ice_is_stun(data, len)) return MF_ERR_PARSE;
  if (get16(data) != STUN_TYPE_BINDING_REQUEST) return MF_ERR_PARSE;
  size_t body = get16(data + 2);
  /* One datagram carries exactly one message; attributes are 32-bit aligned. */
  if ((body & 3) != 0 || STUN_HEADER_LEN + body != len) return MF_ERR_PARSE;

  size_t off = STUN_HEADER_LEN;
  while (off < len) {
    if (len - off < 4) return MF_ERR_PARSE;
    uint16_t type = get16(data + off);
    size_t alen = get16(data + off + 2);
    size_t padded = (alen + 3) & ~(size_t)3;
    if (padded > len - off - 4) return MF_ERR_PARSE;
    const uint8_t *value = data + off + 4;
    if (type == STUN_ATTR_USERNAME) {
      const uint8_t *colon = memchr(value, ':', alen);
      if (!colon || colon == value) return MF_ERR_PARSE;
      size_t ulen = (size_t)(colon - value);
      if (ulen >= out_size) return MF_ERR_LIMIT;
      memcpy(out, value, ulen);
      out[ulen] = '\0';
      return MF_OK;
    }
    /* RFC 5389 §15.4: everything after MESSAGE-INTEGRITY but FINGERPRINT is ignored. */
    if (type == STUN_ATTR_MESSAGE_INTEGRITY) break;
    off += 4 + padded;
  }
  return MF_ERR_PARSE;
}

static bool creds_valid(const char *s, size_t min, size_t *len_out) {
  if (!s) return false;
  size_t n = 0;
  while (n <= MF_ICE_CRED_MAX && s[n] != '\0') {
    if (!is_ice_char(s[n])) return false;
    n++;
  }
  if (n < min || n > MF_ICE_CRED_MAX) return false;
  *len_out = n;
  return true;
}

static mf_err_t creds_set(ice_creds_t *c, const char *ufrag, const char *pwd) {
  size_t ulen, plen;
  if (!creds_valid(ufrag, MF_ICE_UFRAG_MIN, &ulen) ||
      !creds_valid(pwd, MF_ICE_PWD_MIN, &plen))
    return MF_ERR_INVALID_ARG;
  memcpy(c->ufrag, ufrag, ulen + 1);
  c->ufrag_len = ulen;
  memcpy(c->pwd, pwd, plen + 1);
  c->pwd_len = plen;
  return MF_OK;
}

mf_err_t mf_ice_create(const char *ufrag, const char *pwd, mf_ice_t **out) {
  if (!out) return MF_ERR_INVALID_ARG;
  *out = NULL;
  mf_ice_t *ice = calloc(1, sizeof *ice);
  if (!ice) return MF_ERR_NO_MEMORY;
  mf_err_t err = creds_set(&ice->creds, ufrag, pwd);
  if (err != MF_OK) {
    free(ice);
    return err;
  }
  stun_agent_init(&ice->agent, known_attributes, STUN_COMPATIBILITY_RFC5389,
                  STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS |
                      STUN_AGENT_USAGE_USE_FINGERPRINT);
  ice->state = MF_ICE_STATE_NEW;
  ice->selected = -1;
  *out = ice;
  return MF_OK;
}

void mf_ice_free(mf_ice_t *ice) { free(ice); }

/* USERNAME must be "<ufrag>:<remote ufrag>" with a non-empty remote part. */
static bool username_matches(const ice_creds_t *c, const uint8_t *username, size_t len) {
  return len > c->ufrag_len + 1 && memcmp(username, c->ufrag, c->ufrag_len) == 0 &&
         username[c->ufrag_len] == ':';
}

/* libnice asks for the key of the USERNAME in the request: our local password, if the
 * local part of USERNAME is our ufrag (short-term credentials, RFC 8445 §7.2.2). */
static bool validater(StunAgent *agent, StunMessage *message, uint8_t *username,
                      uint16_t username_len, uint8_t **password, size_t *password_len,
                      void *user_data) {
  (void)agent;
  (void)message;
  mf_ice_t *ice = user_data;
  if (!username || username_len > STUN_USERNAME_MAX) return false;
  ice_creds_t *c = NULL;
  if (username_matches(&ice->creds, username, username_len)) {
    c = &ice->creds;
    ice->matched_old = false;
  } else if (ice->has_old_creds && username_matches(&ice->old_creds, username, username_len)) {
    c = &ice->old_creds;
    ice->matched_old = true;
  } else {
    return false;
  }
  *password = (uint8_t *)c->pwd;
  *password_len = c->pwd_len;
  return true;
}

static socklen_t sockaddr_len(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) return sizeof(struct sockaddr_in);
  if (sa->sa_family == AF_INET6) return sizeof(struct sockaddr_in6);
  return 0;
}

bool mf_ice_tuple_equal(const struct sockaddr *a, const struct sockaddr *b) {
  if (!a || !b || a->sa_family != b->sa_family) return false;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a;
    const struct sockaddr_in *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
  }
  return false;
}

/* The address the peer should see in XOR-MAPPED-ADDRESS: an IPv4 peer reaching a
 * dual-stack socket shows up as ::ffff:a.b.c.d, but its candidate is IPv4. */
static socklen_t mapped_address(const struct sockaddr_storage *src,
                                struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  if (src->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      struct sockaddr_in *s4 = (struct sockaddr_in *)out;
      s4->sin_family = AF_INET;
      s4->sin_port = s6->sin6_port;
      memcpy(&s4->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
      return sizeof *s4;
    }
    memcpy(out, s6, sizeof *s6);
    return sizeof *s6;
  }
  memcpy(out, src, sizeof(struct sockaddr_in));
  return sizeof(struct sockaddr_in);
}

/* Answers `req` with an error and no MESSAGE-INTEGRITY unless the request
 * authenticated (libnice then signs with the request's key). */
static size_t build_error(mf_ice_t *ice, const StunMessage *req, uint8_t *buf,
                          size_t cap, StunError code) {
  StunMessage msg;
  if (!stun_agent_init_error(&ice->agent, &msg, buf, cap, req, code)) return 0;
  return stun_agent_finish_message(&ice->agent, &msg, NULL, 0);
}

static int find_tuple(const mf_ice_t *ice, const struct sockaddr *addr) {
  for (size_t i = 0; i < ice->ntuples; i++)
    if (mf_ice_tuple_equal((const struct sockaddr *)&ice->tuples[i].addr, addr))
      return (int)i;
  return -1;
}

static void forget_tuples(mf_ice_t *ice) {
  ice->ntuples = 0;
  ice->selected = -1;
}

/* Returns the index of `from` among the known tuples, adding it (and evicting the least
 * recently validated non-selected tuple when full). */
static int remember_tuple(mf_ice_t *ice, const struct sockaddr_storage *from,
                          uint64_t now_ms, mf_ice_result_t *res) {
  int idx = find_tuple(ice, (const struct sockaddr *)from);
  if (idx < 0) {
    if (ice->ntuples < MF_ICE_MAX_TUPLES) {
      idx = (int)ice->ntuples++;
    } else {
      for (size_t i = 0; i < ice->ntuples; i++) {
        if ((int)i == ice->selected) continue;
        if (idx < 0 || ice->tuples[i].last_ms < ice->tuples[idx].last_ms) idx = (int)i;
      }
      res->tuple_removed = true;
      res->removed_tuple = ice->tuples[idx].addr;
    }
    ice->tuples[idx].addr = *from;
    res->tuple_added = true;
  }
  ice->tuples[idx].last_ms = now_ms;
  return idx;
}

static void select_tuple(mf_ice_t *ice, int idx, uint64_t now_ms, mf_ice_result_t *res) {
  if (ice->selected != idx) {
    ice->selected = idx;
    res->tuple_selected_changed = true;
  }
  ice->consent_ms = now_ms;
}

static void set_state(mf_ice_t *ice, mf_ice_state_t state, mf_ice_result_t *res) {
  if (ice->state == state) return;
  MF_LOG_DEBUG("ice %s: %s -> %s", ice->creds.ufrag, mf_ice_state_name(ice->state),
               mf_ice_state_name(state));
  ice->state = state;
  if (res) res->state_changed = true;
}

/* A request authenticated from `from`: mediasoup's IceServer::HandleTuple. */
static void on_valid_check(mf_ice_t *ice, const struct sockaddr_storage *from,
                           bool use_candidate, uint64_t now_ms, mf_ice_result_t *res) {
  int idx = remember_tuple(ice, from, now_ms, res);
  switch (ice->state) {
    case MF_ICE_STATE_NEW:
    case MF_ICE_STATE_DISCONNECTED:
      select_tuple(ice, idx, now_ms, res);
      set_state(ice, use_candidate ? MF_ICE_STATE_COMPLETED : MF_ICE_STATE_CONNECTED, res);
      break;
    case MF_ICE_STATE_CONNECTED:
    case MF_ICE_STATE_COMPLETED:
      if (use_candidate) {
        select_tuple(ice, idx, now_ms, res);
        set_state(ice, MF_ICE_STATE_COMPLETED, res);
      } else if (idx == ice->selected) {
        ice->consent_ms = now_ms;
      }
      break;
    case MF_ICE_STATE_CLOSED:
      break;
  }
}

mf_err_t mf_ice_handle_request(mf_ice_t *ice, const uint8_t *req, size_t len,
                               const struct sockaddr *from, uint64_t now_ms, uint8_t *resp,
                               size_t *resp_len, mf_ice_result_t *res) {
  mf_ice_result_t scratch;
  if (!res) res = &scratch;
  memset(res, 0, sizeof *res);
  if (ice) res->state = ice->state;
  if (!ice || !req || !from || !resp || !resp_len) return MF_ERR_INVALID_ARG;
  size_t cap = *resp_len;
  *resp_len = 0;
  /* libnice's reply builder asserts when the buffer is too small: refuse up front. */
  if (cap < MF_ICE_RESPONSE_MAX) return MF_ERR_INVALID_ARG;
  socklen_t from_len = sockaddr_len(from);
  if (from_len == 0) return MF_ERR_INVALID_ARG;
  if (ice->state == MF_ICE_STATE_CLOSED) return MF_ERR_CLOSED;
  /* Copy only what the family says the caller's struct holds. */
  struct sockaddr_storage src;
  memset(&src, 0, sizeof src);
  memcpy(&src, from, from_len);

  /* Same classification as the worker's demux (RFC 7983), so nothing outside the STUN
   * range is ever answered, whatever libnice accepts. */
  if (!mf_ice_is_stun(req, len)) return MF_ERR_PARSE;

  StunMessage msg;
  ice->matched_old = false;
  StunValidationStatus vs = stun_agent_validate(&ice->agent, &msg, req, len, validater, ice);
  switch (vs) {
    case STUN_VALIDATION_NOT_STUN:
    case STUN_VALIDATION_INCOMPLETE_STUN:
    case STUN_VALIDATION_BAD_REQUEST: /* no cookie, no or wrong FINGERPRINT */
      return MF_ERR_PARSE;
    case STUN_VALIDATION_UNMATCHED_RESPONSE: /* a lite agent sends no requests */
      return MF_ERR_UNSUPPORTED;
    default:
      break;
  }
  /* From here msg is a structurally valid STUN message. Indications (keepalives) and
   * responses are never answered. */
  if (stun_message_get_class(&msg) != STUN_REQUEST) return MF_ERR_UNSUPPORTED;

  switch (vs) {
    case STUN_VALIDATION_SUCCESS:
      break;
    case STUN_VALIDATION_UNAUTHORIZED_BAD_REQUEST: /* RFC 5389 §10.1.2: 400 */
      *resp_len = build_error(ice, &msg, resp, cap, STUN_ERROR_BAD_REQUEST);
      return MF_ERR_AUTH;
    case STUN_VALIDATION_UNAUTHORIZED:
      /* Unknown ufrag or wrong HMAC: no answer at all (RFC 8489 would send 401). An
       * unauthenticated sender learns nothing (not even that the port is ours) and cannot
       * use the port to reflect packets at a third address. */
      *resp_len = 0;
      return MF_ERR_AUTH;
    case STUN_VALIDATION_UNKNOWN_REQUEST_ATTRIBUTE: {
      StunMessage err;
      *resp_len = stun_agent_build_unknown_attributes_error(&ice->agent, &err, resp, cap,
                                                            &msg);
      return MF_ERR_UNSUPPORTED;
    }
    default:
      return MF_ERR_PARSE;
  }

  if (stun_message_get_method(&msg) == STUN_BINDING) {
    /* RFC 8445 §7.1.1: every check carries PRIORITY (mediasoup answers 400 too). */
    uint32_t priority;
    if (stun_message_find32(&msg, STUN_ATTRIBUTE_PRIORITY, &priority) !=
        STUN_MESSAGE_RETURN_SUCCESS) {
      *resp_len = build_error(ice, &msg, resp, cap, STUN_ERROR_BAD_REQUEST);
      return MF_ERR_PARSE;
    }
    /* The peer claims controlled too. libnice (RFC 8445 §7.3.1.1) would switch us to
     * controlling when our tie-breaker wins, but a lite agent is always controlled
     * (§6.1.1): always 487, so the full agent switches instead. */
    uint64_t tie;
    if (stun_message_find64(&msg, STUN_ATTRIBUTE_ICE_CONTROLLED, &tie) ==
        STUN_MESSAGE_RETURN_SUCCESS) {
      *resp_len = build_error(ice, &msg, resp, cap, STUN_ERROR_ROLE_CONFLICT);
      return MF_ERR_STATE;
    }
  }

  struct sockaddr_storage mapped;
  socklen_t mapped_len = mapped_address(&src, &mapped);
  StunMessage reply;
  size_t out_len = cap;
  bool controlling = false;
  StunUsageIceReturn ir = stun_usage_ice_conncheck_create_reply(
      &ice->agent, &msg, &reply, resp, &out_len, &mapped, mapped_len, &controlling, 0,
      STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
  if (ir == STUN_USAGE_ICE_RETURN_INVALID_METHOD) {
    *resp_len = out_len; /* 400 */
    return MF_ERR_UNSUPPORTED;
  }
  if (ir != STUN_USAGE_ICE_RETURN_SUCCESS || out_len == 0 || controlling) {
    MF_LOG_DEBUG("ice %s: cannot build reply (%d)", ice->creds.ufrag, (int)ir);
    return MF_ERR_INTERNAL;
  }
  *resp_len = out_len;

  if (ice->has_old_creds && !ice->matched_old) {
    ice->has_old_creds = false;
    res->old_credentials_dropped = true;
  }
  res->nominated = stun_message_find_flag(&msg, STUN_ATTRIBUTE_USE_CANDIDATE) ==
                   STUN_MESSAGE_RETURN_SUCCESS;
  on_valid_check(ice, &src, res->nominated, now_ms, res);
  res->state = ice->state;
  return MF_OK;
}

bool mf_ice_tick(mf_ice_t *ice, uint64_t now_ms) {
  if (!ice) return false;
  if (ice->state != MF_ICE_STATE_CONNECTED && ice->state != MF_ICE_STATE_COMPLETED)
    return false;
  if (now_ms < ice->consent_ms || now_ms - ice->consent_ms < MF_ICE_CONSENT_TIMEOUT_MS)
    return false;
  MF_LOG_INFO("ice %s: consent expired (no valid check for %u ms)", ice->creds.ufrag,
              MF_ICE_CONSENT_TIMEOUT_MS);
  forget_tuples(ice);
  set_state(ice, MF_ICE_STATE_DISCONNECTED, NULL);
  return true;
}

mf_ice_state_t mf_ice_state(const mf_ice_t *ice) {
  return ice ? ice->state : MF_ICE_STATE_CLOSED;
}

const struct sockaddr *mf_ice_selected_tuple(const mf_ice_t *ice) {
  if (!ice || ice->selected < 0) return NULL;
  return (const struct sockaddr *)&ice->tuples[ice->selected].addr;
}

bool mf_ice_has_tuple(const mf_ice_t *ice, const struct sockaddr *addr) {
  return ice && addr && find_tuple(ice, addr) >= 0;
}

const char *mf_ice_local_ufrag(const mf_ice_t *ice) { return ice ? ice->creds.ufrag : NULL; }

const char *mf_ice_local_pwd(const mf_ice_t *ice) { return ice ? ice->creds.pwd : NULL; }

const char *mf_ice_old_ufrag(const mf_ice_t *ice) {
  return ice && ice->has_old_creds ? ice->old_creds.ufrag : NULL;
}

mf_err_t mf_ice_restart(mf_ice_t *ice, const char *ufrag, const char *pwd) {
  if (!ice) return MF_ERR_INVALID_ARG;
  if (ice->state == MF_ICE_STATE_CLOSED) return MF_ERR_CLOSED;
  ice_creds_t fresh;
  mf_err_t err = creds_set(&fresh, ufrag, pwd);
  if (err != MF_OK) return err;
  /* Restarting twice before the peer caught up keeps only the latest old pair, as
   * mediasoup does. */
  ice->old_creds = ice->creds;
  ice->has_old_creds = true;
  ice->creds = fresh;
  return MF_OK;
}

void mf_ice_close(mf_ice_t *ice) {
  if (!ice || ice->state == MF_ICE_STATE_CLOSED) return;
  forget_tuples(ice);
  ice->has_old_creds = false;
  set_state(ice, MF_ICE_STATE_CLOSED, NULL);
}
