/* SDP parse/write/answer. The parser walks the text as (pointer, length) spans and never
 * depends on a NUL terminator, so it can run directly on a network buffer; strings are
 * copied into the fixed arrays only after their length is checked. */
#define MF_LOG_MODULE "sdp"
#include "node/sdp.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

/* ---------------------------------------------------------------- spans */

typedef struct {
  const char *p;
  size_t n;
} span_t;

static bool is_ws(char c) { return c == ' ' || c == '\t'; }

static span_t span_trim(span_t s) {
  while (s.n > 0 && is_ws(s.p[0])) {
    s.p++;
    s.n--;
  }
  while (s.n > 0 && is_ws(s.p[s.n - 1])) s.n--;
  return s;
}

static bool span_eq(span_t s, const char *lit) {
  size_t n = strlen(lit);
  return s.n == n && memcmp(s.p, lit, n) == 0;
}

static bool span_ieq(span_t s, const char *lit) {
  size_t n = strlen(lit);
  return s.n == n && strncasecmp(s.p, lit, n) == 0;
}

/* Takes the next whitespace-separated token off the front of *s. */
static bool span_token(span_t *s, span_t *tok) {
  size_t i = 0;
  while (i < s->n && is_ws(s->p[i])) i++;
  size_t start = i;
  while (i < s->n && !is_ws(s->p[i])) i++;
  if (i == start) {
    s->p += s->n;
    s->n = 0;
    return false;
  }
  tok->p = s->p + start;
  tok->n = i - start;
  s->p += i;
  s->n -= i;
  return true;
}

/* Splits at the first c: *before gets the text before it, *after the rest. */
static bool span_split(span_t s, char c, span_t *before, span_t *after) {
  const char *hit = s.n ? memchr(s.p, c, s.n) : NULL;
  if (!hit) {
    *before = s;
    after->p = s.p + s.n;
    after->n = 0;
    return false;
  }
  before->p = s.p;
  before->n = (size_t)(hit - s.p);
  after->p = hit + 1;
  after->n = s.n - before->n - 1;
  return true;
}

/* Unsigned decimal, digits only, at most max. */
static bool span_u64(span_t s, uint64_t max, uint64_t *out) {
  if (s.n == 0 || s.n > 20) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < s.n; i++) {
    if (s.p[i] < '0' || s.p[i] > '9') return false;
    unsigned d = (unsigned)(s.p[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (v > max) return false;
  *out = v;
  return true;
}

/* ---------------------------------------------------------------- parser state */

typedef struct {
  mf_sdp_t *sdp;
  unsigned line;
  mf_sdp_media_t *m; /* NULL while in the session section */
  mf_sdp_rtcp_fb_t wild_fb[MF_SDP_MAX_RTCP_FB]; /* a=rtcp-fb:* of the current section */
  size_t wild_fb_count;
  unsigned media_line; /* line of the current m= */
  char session_conn[MF_SDP_ADDR_LEN];
  mf_sdp_direction_t session_dir;
  bool media_dir_set[MF_SDP_MAX_MEDIA];
} parser_t;

static mf_err_t fail(parser_t *p, mf_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static mf_err_t fail(parser_t *p, mf_err_t err, const char *fmt, ...) {
  char *buf = p->sdp->error;
  size_t cap = sizeof p->sdp->error;
  int n = p->line ? snprintf(buf, cap, "line %u: ", p->line) : 0;
  if (n < 0 || (size_t)n >= cap) n = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + n, cap - (size_t)n, fmt, ap);
  va_end(ap);
  p->sdp->error_line = p->line;
  return err;
}

static mf_err_t copy_span(parser_t *p, span_t s, char *dst, size_t cap, const char *what) {
  if (s.n >= cap) return fail(p, MF_ERR_LIMIT, "%s longer than %zu bytes", what, cap - 1);
  memcpy(dst, s.p, s.n);
  /* Zero the whole tail: a repeated attribute overwrites a longer earlier value, and
   * descriptions must compare equal byte for byte after a round trip. */
  memset(dst + s.n, 0, cap - s.n);
  return MF_OK;
}

/* Copies a required value: trimmed, non-empty. */
static mf_err_t copy_value(parser_t *p, span_t s, char *dst, size_t cap, const char *what) {
  s = span_trim(s);
  if (s.n == 0) return fail(p, MF_ERR_PARSE, "empty %s", what);
  return copy_span(p, s, dst, cap, what);
}

static bool parse_direction(span_t s, mf_sdp_direction_t *out) {
  if (span_eq(s, "sendrecv")) *out = MF_SDP_DIR_SENDRECV;
  else if (span_eq(s, "sendonly")) *out = MF_SDP_DIR_SENDONLY;
  else if (span_eq(s, "recvonly")) *out = MF_SDP_DIR_RECVONLY;
  else if (span_eq(s, "inactive")) *out = MF_SDP_DIR_INACTIVE;
  else return false;
  return true;
}

static mf_sdp_payload_t *find_payload(mf_sdp_media_t *m, uint64_t pt) {
  for (size_t i = 0; i < m->payload_count; i++)
    if (m->payloads[i].pt == pt) return &m->payloads[i];
  return NULL;
}

/* Payload-type prefix of rtpmap/fmtp/rtcp-fb: "<pt> rest". */
static mf_err_t take_pt(parser_t *p, span_t *v, uint64_t *pt, const char *what) {
  span_t tok;
  if (!span_token(v, &tok) || !span_u64(tok, 127, pt))
    return fail(p, MF_ERR_PARSE, "bad payload type in a=%s", what);
  return MF_OK;
}

/* ---------------------------------------------------------------- line parsers */

static mf_err_t parse_origin(parser_t *p, span_t v) {
  span_t t[6];
  for (int i = 0; i < 6; i++)
    if (!span_token(&v, &t[i])) return fail(p, MF_ERR_PARSE, "o= needs 6 fields");
  mf_err_t err = copy_span(p, t[0], p->sdp->origin_user, sizeof p->sdp->origin_user, "o= username");
  if (!err) err = copy_span(p, t[1], p->sdp->session_id, sizeof p->sdp->session_id, "o= session id");
  if (err) return err;
  if (!span_u64(t[2], UINT64_MAX, &p->sdp->session_version))
    return fail(p, MF_ERR_PARSE, "bad o= session version");
  return MF_OK;
}

static mf_err_t parse_connection(parser_t *p, span_t v) {
  span_t net, type, addr, rest;
  if (!span_token(&v, &net) || !span_token(&v, &type) || !span_token(&v, &addr))
    return fail(p, MF_ERR_PARSE, "c= needs 3 fields");
  span_split(addr, '/', &addr, &rest); /* drop a multicast /ttl */
  char *dst = p->m ? p->m->connection : p->session_conn;
  return copy_span(p, addr, dst, MF_SDP_ADDR_LEN, "c= address");
}

static const struct {
  uint8_t pt;
  const char *name;
  uint32_t rate;
} static_pts[] = {{0, "PCMU", 8000}, {8, "PCMA", 8000}, {9, "G722", 8000}, {13, "CN", 8000}};

/* Applies a=rtcp-fb:* to every payload of the section that is ending. */
static mf_err_t finish_media(parser_t *p) {
  if (!p->m) return MF_OK;
  for (size_t i = 0; i < p->m->payload_count; i++) {
    mf_sdp_payload_t *pl = &p->m->payloads[i];
    if (pl->fb_count + p->wild_fb_count > MF_SDP_MAX_RTCP_FB) {
      p->line = p->media_line;
      return fail(p, MF_ERR_LIMIT, "more than %d rtcp-fb for payload %u", MF_SDP_MAX_RTCP_FB,
                  pl->pt);
    }
    for (size_t k = 0; k < p->wild_fb_count; k++) pl->fb[pl->fb_count++] = p->wild_fb[k];
  }
  p->wild_fb_count = 0;
  return MF_OK;
}

static mf_err_t parse_media(parser_t *p, span_t v) {
  mf_err_t err = finish_media(p);
  if (err) return err;
  mf_sdp_t *sdp = p->sdp;
  if (sdp->media_count >= MF_SDP_MAX_MEDIA)
    return fail(p, MF_ERR_LIMIT, "more than %d m= sections", MF_SDP_MAX_MEDIA);
  span_t kind, port, proto, count;
  if (!span_token(&v, &kind) || !span_token(&v, &port) || !span_token(&v, &proto))
    return fail(p, MF_ERR_PARSE, "m= needs media, port, proto and formats");
  span_t fmts = span_trim(v);
  if (fmts.n == 0) return fail(p, MF_ERR_PARSE, "m= has no formats");

  mf_sdp_media_t *m = &sdp->media[sdp->media_count];
  p->m = m;
  p->media_line = p->line;
  sdp->media_count++;
  if ((err = copy_span(p, kind, m->kind_name, sizeof m->kind_name, "m= media")) != MF_OK)
    return err;
  if (span_eq(kind, "audio")) m->kind = MF_SDP_KIND_AUDIO;
  else if (span_eq(kind, "video")) m->kind = MF_SDP_KIND_VIDEO;
  else if (span_eq(kind, "application")) m->kind = MF_SDP_KIND_APPLICATION;
  else m->kind = MF_SDP_KIND_OTHER;

  uint64_t u;
  span_split(port, '/', &port, &count); /* "port/number-of-ports" */
  if (!span_u64(port, 65535, &u)) return fail(p, MF_ERR_PARSE, "bad m= port");
  m->port = (uint16_t)u;
  if ((err = copy_span(p, proto, m->proto, sizeof m->proto, "m= proto")) != MF_OK) return err;
  m->direction = MF_SDP_DIR_SENDRECV;

  if (memmem(proto.p, proto.n, "RTP/", 4) == NULL) {
    return copy_span(p, fmts, m->fmt, sizeof m->fmt, "m= formats");
  }
  span_t tok;
  while (span_token(&fmts, &tok)) {
    if (!span_u64(tok, 127, &u)) return fail(p, MF_ERR_PARSE, "bad m= payload type");
    if (find_payload(m, u)) return fail(p, MF_ERR_PARSE, "payload type %" PRIu64 " twice", u);
    if (m->payload_count >= MF_SDP_MAX_PAYLOADS)
      return fail(p, MF_ERR_LIMIT, "more than %d payload types", MF_SDP_MAX_PAYLOADS);
    mf_sdp_payload_t *pl = &m->payloads[m->payload_count++];
    pl->pt = (uint8_t)u;
    for (size_t i = 0; i < sizeof static_pts / sizeof static_pts[0]; i++) {
      if (static_pts[i].pt == u) {
        snprintf(pl->name, sizeof pl->name, "%s", static_pts[i].name);
        pl->clock_rate = static_pts[i].rate;
      }
    }
  }
  return MF_OK;
}

/* Attributes valid at both levels: ICE and DTLS. *handled tells the caller to stop. */
static mf_err_t parse_transport_attr(parser_t *p, span_t name, span_t v, mf_sdp_transport_t *t,
                                     bool *handled) {
  *handled = true;
  if (span_eq(name, "ice-ufrag"))
    return copy_value(p, v, t->ice_ufrag, sizeof t->ice_ufrag, "ice-ufrag");
  if (span_eq(name, "ice-pwd"))
    return copy_value(p, v, t->ice_pwd, sizeof t->ice_pwd, "ice-pwd");
  if (span_eq(name, "ice-options"))
    return copy_value(p, v, t->ice_options, sizeof t->ice_options, "ice-options");
  if (span_eq(name, "fingerprint")) {
    span_t alg;
    if (!span_token(&v, &alg)) return fail(p, MF_ERR_PARSE, "empty fingerprint");
    v = span_trim(v);
    if (v.n == 0) return fail(p, MF_ERR_PARSE, "fingerprint without a value");
    if (t->fingerprint_alg[0]) return MF_OK; /* keep the first */
    mf_err_t err = copy_span(p, alg, t->fingerprint_alg, sizeof t->fingerprint_alg,
                             "fingerprint algorithm");
    if (!err) err = copy_span(p, v, t->fingerprint, sizeof t->fingerprint, "fingerprint");
    return err;
  }
  if (span_eq(name, "setup")) {
    v = span_trim(v);
    if (span_eq(v, "actpass")) t->setup = MF_SDP_SETUP_ACTPASS;
    else if (span_eq(v, "active")) t->setup = MF_SDP_SETUP_ACTIVE;
    else if (span_eq(v, "passive")) t->setup = MF_SDP_SETUP_PASSIVE;
    else if (span_eq(v, "holdconn")) t->setup = MF_SDP_SETUP_HOLDCONN;
    else return fail(p, MF_ERR_PARSE, "bad a=setup value");
    return MF_OK;
  }
  *handled = false;
  return MF_OK;
}

static mf_err_t parse_group(parser_t *p, span_t v) {
  span_t sem, mid;
  if (!span_token(&v, &sem)) return fail(p, MF_ERR_PARSE, "empty a=group");
  mf_sdp_t *sdp = p->sdp;
  if (!span_eq(sem, "BUNDLE") || sdp->bundle_count > 0) return MF_OK; /* first BUNDLE only */
  while (span_token(&v, &mid)) {
    if (sdp->bundle_count >= MF_SDP_MAX_MEDIA)
      return fail(p, MF_ERR_LIMIT, "more than %d BUNDLE mids", MF_SDP_MAX_MEDIA);
    mf_err_t err = copy_span(p, mid, sdp->bundle_mids[sdp->bundle_count], MF_SDP_TOKEN_LEN,
                             "BUNDLE mid");
    if (err) return err;
    sdp->bundle_count++;
  }
  return MF_OK;
}

static mf_err_t parse_rtpmap(parser_t *p, span_t v) {
  uint64_t pt, rate, channels = 0;
  mf_err_t err = take_pt(p, &v, &pt, "rtpmap");
  if (err) return err;
  span_t enc = span_trim(v), name, rest, rate_s, ch_s;
  if (!span_split(enc, '/', &name, &rest) || name.n == 0)
    return fail(p, MF_ERR_PARSE, "a=rtpmap needs name/clock-rate");
  bool has_ch = span_split(rest, '/', &rate_s, &ch_s);
  if (!span_u64(rate_s, UINT32_MAX, &rate)) return fail(p, MF_ERR_PARSE, "bad rtpmap clock rate");
  if (has_ch && !span_u64(ch_s, UINT32_MAX, &channels))
    return fail(p, MF_ERR_PARSE, "bad rtpmap channels");
  mf_sdp_payload_t *pl = find_payload(p->m, pt);
  if (!pl) return MF_OK; /* not offered on the m= line: meaningless */
  if ((err = copy_span(p, name, pl->name, sizeof pl->name, "encoding name")) != MF_OK) return err;
  pl->clock_rate = (uint32_t)rate;
  pl->channels = (uint32_t)channels;
  return MF_OK;
}

static mf_err_t parse_fmtp(parser_t *p, span_t v) {
  uint64_t pt;
  mf_err_t err = take_pt(p, &v, &pt, "fmtp");
  if (err) return err;
  mf_sdp_payload_t *pl = find_payload(p->m, pt);
  char tmp[MF_SDP_FMTP_LEN];
  if ((err = copy_value(p, v, tmp, sizeof tmp, "fmtp")) != MF_OK) return err;
  /* a later a=fmtp for the same payload replaces the earlier one; clear its tail */
  if (pl) strncpy(pl->fmtp, tmp, sizeof pl->fmtp);
  return MF_OK;
}

static mf_err_t parse_rtcp_fb(parser_t *p, span_t v) {
  span_t pt_s, type;
  uint64_t pt = 0;
  if (!span_token(&v, &pt_s)) return fail(p, MF_ERR_PARSE, "empty a=rtcp-fb");
  bool wild = span_eq(pt_s, "*");
  if (!wild && !span_u64(pt_s, 127, &pt))
    return fail(p, MF_ERR_PARSE, "bad payload type in a=rtcp-fb");
  if (!span_token(&v, &type)) return fail(p, MF_ERR_PARSE, "a=rtcp-fb without a type");
  mf_sdp_rtcp_fb_t fb;
  memset(&fb, 0, sizeof fb);
  mf_err_t err = copy_span(p, type, fb.type, sizeof fb.type, "rtcp-fb type");
  if (!err) err = copy_span(p, span_trim(v), fb.param, sizeof fb.param, "rtcp-fb parameter");
  if (err) return err;
  if (wild) {
    if (p->wild_fb_count >= MF_SDP_MAX_RTCP_FB)
      return fail(p, MF_ERR_LIMIT, "more than %d rtcp-fb:*", MF_SDP_MAX_RTCP_FB);
    p->wild_fb[p->wild_fb_count++] = fb;
    return MF_OK;
  }
  mf_sdp_payload_t *pl = find_payload(p->m, pt);
  if (!pl) return MF_OK;
  if (pl->fb_count >= MF_SDP_MAX_RTCP_FB)
    return fail(p, MF_ERR_LIMIT, "more than %d rtcp-fb for payload %u", MF_SDP_MAX_RTCP_FB,
                pl->pt);
  pl->fb[pl->fb_count++] = fb;
  return MF_OK;
}

static mf_err_t parse_extmap(parser_t *p, span_t v) {
  mf_sdp_media_t *m = p->m;
  span_t id_s, dir_s, uri;
  uint64_t id;
  if (!span_token(&v, &id_s) || !span_token(&v, &uri))
    return fail(p, MF_ERR_PARSE, "a=extmap needs id and uri");
  mf_sdp_direction_t dir = MF_SDP_DIR_UNSET;
  if (span_split(id_s, '/', &id_s, &dir_s) && !parse_direction(dir_s, &dir))
    return fail(p, MF_ERR_PARSE, "bad a=extmap direction");
  if (!span_u64(id_s, 255, &id) || id == 0) return fail(p, MF_ERR_PARSE, "bad a=extmap id");
  if (m->extmap_count >= MF_SDP_MAX_EXTMAPS)
    return fail(p, MF_ERR_LIMIT, "more than %d extmaps", MF_SDP_MAX_EXTMAPS);
  mf_sdp_extmap_t *e = &m->extmaps[m->extmap_count];
  mf_err_t err = copy_span(p, uri, e->uri, sizeof e->uri, "extmap uri");
  if (err) return err;
  e->id = (uint16_t)id;
  e->direction = dir;
  m->extmap_count++;
  return MF_OK; /* extension attributes after the uri are ignored */
}

static mf_err_t parse_ssrc(parser_t *p, span_t v) {
  mf_sdp_media_t *m = p->m;
  span_t ssrc_s, attr, name, value;
  uint64_t ssrc;
  if (!span_token(&v, &ssrc_s) || !span_u64(ssrc_s, UINT32_MAX, &ssrc))
    return fail(p, MF_ERR_PARSE, "bad a=ssrc number");
  attr = span_trim(v);
  if (attr.n == 0) return fail(p, MF_ERR_PARSE, "a=ssrc without an attribute");
  mf_sdp_ssrc_t *s = NULL;
  for (size_t i = 0; i < m->ssrc_count; i++)
    if (m->ssrcs[i].ssrc == ssrc) s = &m->ssrcs[i];
  if (!s) {
    if (m->ssrc_count >= MF_SDP_MAX_SSRCS)
      return fail(p, MF_ERR_LIMIT, "more than %d ssrcs", MF_SDP_MAX_SSRCS);
    s = &m->ssrcs[m->ssrc_count++];
    s->ssrc = (uint32_t)ssrc;
  }
  span_split(attr, ':', &name, &value);
  if (span_eq(name, "cname"))
    return copy_span(p, span_trim(value), s->cname, sizeof s->cname, "ssrc cname");
  if (span_eq(name, "msid"))
    return copy_span(p, span_trim(value), s->msid, sizeof s->msid, "ssrc msid");
  return MF_OK;
}

static mf_err_t parse_ssrc_group(parser_t *p, span_t v) {
  mf_sdp_media_t *m = p->m;
  span_t sem, tok;
  if (!span_token(&v, &sem)) return fail(p, MF_ERR_PARSE, "empty a=ssrc-group");
  if (m->ssrc_group_count >= MF_SDP_MAX_SSRC_GROUPS)
    return fail(p, MF_ERR_LIMIT, "more than %d ssrc-groups", MF_SDP_MAX_SSRC_GROUPS);
  mf_sdp_ssrc_group_t *g = &m->ssrc_groups[m->ssrc_group_count];
  mf_err_t err = copy_span(p, sem, g->semantics, sizeof g->semantics, "ssrc-group semantics");
  if (err) return err;
  while (span_token(&v, &tok)) {
    uint64_t ssrc;
    if (!span_u64(tok, UINT32_MAX, &ssrc)) return fail(p, MF_ERR_PARSE, "bad ssrc-group ssrc");
    if (g->ssrc_count >= MF_SDP_MAX_GROUP_SSRCS)
      return fail(p, MF_ERR_LIMIT, "more than %d ssrcs in a group", MF_SDP_MAX_GROUP_SSRCS);
    g->ssrcs[g->ssrc_count++] = (uint32_t)ssrc;
  }
  if (g->ssrc_count == 0) return fail(p, MF_ERR_PARSE, "a=ssrc-group without ssrcs");
  m->ssrc_group_count++;
  return MF_OK;
}

static mf_err_t parse_rid(parser_t *p, span_t v) {
  mf_sdp_media_t *m = p->m;
  span_t id, dir;
  if (!span_token(&v, &id) || !span_token(&v, &dir))
    return fail(p, MF_ERR_PARSE, "a=rid needs id and direction");
  if (m->rid_count >= MF_SDP_MAX_RIDS)
    return fail(p, MF_ERR_LIMIT, "more than %d rids", MF_SDP_MAX_RIDS);
  mf_sdp_rid_t *r = &m->rids[m->rid_count];
  if (span_eq(dir, "send")) r->direction = MF_SDP_RID_SEND;
  else if (span_eq(dir, "recv")) r->direction = MF_SDP_RID_RECV;
  else return fail(p, MF_ERR_PARSE, "bad a=rid direction");
  mf_err_t err = copy_span(p, id, r->id, sizeof r->id, "rid id");
  if (!err) err = copy_span(p, span_trim(v), r->params, sizeof r->params, "rid parameters");
  if (err) return err;
  m->rid_count++;
  return MF_OK;
}

static mf_err_t parse_simulcast(parser_t *p, span_t v) {
  mf_sdp_media_t *m = p->m;
  span_t dir, list;
  bool any = false;
  while (span_token(&v, &dir)) {
    char *dst;
    if (span_eq(dir, "send")) dst = m->simulcast_send;
    else if (span_eq(dir, "recv")) dst = m->simulcast_recv;
    else return fail(p, MF_ERR_PARSE, "bad a=simulcast direction");
    if (!span_token(&v, &list)) return fail(p, MF_ERR_PARSE, "a=simulcast direction without rids");
    mf_err_t err = copy_span(p, list, dst, MF_SDP_SIMULCAST_LEN, "simulcast list");
    if (err) return err;
    any = true;
  }
  if (!any) return fail(p, MF_ERR_PARSE, "empty a=simulcast");
  return MF_OK;
}

static mf_err_t parse_candidate(parser_t *p, span_t v) {
  mf_sdp_media_t *m = p->m;
  span_t t[8];
  for (int i = 0; i < 8; i++)
    if (!span_token(&v, &t[i])) return fail(p, MF_ERR_PARSE, "a=candidate is truncated");
  if (m->candidate_count >= MF_SDP_MAX_CANDIDATES)
    return fail(p, MF_ERR_LIMIT, "more than %d candidates", MF_SDP_MAX_CANDIDATES);
  mf_sdp_candidate_t *c = &m->candidates[m->candidate_count];
  uint64_t comp, prio, port;
  if (!span_u64(t[1], 256, &comp) || comp == 0)
    return fail(p, MF_ERR_PARSE, "bad candidate component");
  if (!span_u64(t[3], UINT32_MAX, &prio)) return fail(p, MF_ERR_PARSE, "bad candidate priority");
  if (!span_u64(t[5], 65535, &port)) return fail(p, MF_ERR_PARSE, "bad candidate port");
  if (!span_eq(t[6], "typ")) return fail(p, MF_ERR_PARSE, "candidate without typ");
  mf_err_t err = copy_span(p, t[0], c->foundation, sizeof c->foundation, "candidate foundation");
  if (!err) err = copy_span(p, t[2], c->transport, sizeof c->transport, "candidate transport");
  if (!err) err = copy_span(p, t[4], c->address, sizeof c->address, "candidate address");
  if (!err) err = copy_span(p, t[7], c->type, sizeof c->type, "candidate type");
  if (err) return err;
  c->component = (uint32_t)comp;
  c->priority = (uint32_t)prio;
  c->port = (uint16_t)port;
  span_t key, val;
  while (span_token(&v, &key) && span_token(&v, &val)) {
    if (span_eq(key, "raddr")) {
      err = copy_span(p, val, c->raddr, sizeof c->raddr, "candidate raddr");
    } else if (span_eq(key, "rport")) {
      if (!span_u64(val, 65535, &port)) return fail(p, MF_ERR_PARSE, "bad candidate rport");
      c->rport = (uint16_t)port;
    } else if (span_eq(key, "tcptype")) {
      err = copy_span(p, val, c->tcptype, sizeof c->tcptype, "candidate tcptype");
    }
    if (err) return err;
  }
  m->candidate_count++;
  return MF_OK;
}

static mf_err_t parse_number_attr(parser_t *p, span_t v, uint64_t max, uint64_t *out,
                                  const char *what) {
  span_t tok;
  if (!span_token(&v, &tok) || !span_u64(tok, max, out))
    return fail(p, MF_ERR_PARSE, "bad a=%s value", what);
  return MF_OK;
}

static mf_err_t parse_media_attr(parser_t *p, span_t name, span_t v) {
  mf_sdp_media_t *m = p->m;
  mf_sdp_direction_t dir;
  uint64_t u;
  mf_err_t err;
  if (span_eq(name, "mid")) return copy_value(p, v, m->mid, sizeof m->mid, "mid");
  if (parse_direction(name, &dir)) {
    m->direction = dir;
    p->media_dir_set[p->sdp->media_count - 1] = true;
    return MF_OK;
  }
  if (span_eq(name, "rtcp-mux")) m->rtcp_mux = true;
  else if (span_eq(name, "rtcp-rsize")) m->rtcp_rsize = true;
  else if (span_eq(name, "bundle-only")) m->bundle_only = true;
  else if (span_eq(name, "extmap-allow-mixed")) m->extmap_allow_mixed = true;
  else if (span_eq(name, "end-of-candidates")) m->end_of_candidates = true;
  else if (span_eq(name, "msid")) return copy_value(p, v, m->msid, sizeof m->msid, "msid");
  else if (span_eq(name, "rtpmap")) return parse_rtpmap(p, v);
  else if (span_eq(name, "fmtp")) return parse_fmtp(p, v);
  else if (span_eq(name, "rtcp-fb")) return parse_rtcp_fb(p, v);
  else if (span_eq(name, "extmap")) return parse_extmap(p, v);
  else if (span_eq(name, "ssrc")) return parse_ssrc(p, v);
  else if (span_eq(name, "ssrc-group")) return parse_ssrc_group(p, v);
  else if (span_eq(name, "rid")) return parse_rid(p, v);
  else if (span_eq(name, "simulcast")) return parse_simulcast(p, v);
  else if (span_eq(name, "candidate")) return parse_candidate(p, v);
  else if (span_eq(name, "sctp-port") || span_eq(name, "sctpmap")) {
    if ((err = parse_number_attr(p, v, 65535, &u, "sctp-port")) != MF_OK) return err;
    m->sctp_port = (uint16_t)u;
  } else if (span_eq(name, "max-message-size")) {
    if ((err = parse_number_attr(p, v, UINT32_MAX, &u, "max-message-size")) != MF_OK) return err;
    m->max_message_size = (uint32_t)u;
  }
  return MF_OK;
}

static mf_err_t parse_session_attr(parser_t *p, span_t name, span_t v) {
  mf_sdp_t *sdp = p->sdp;
  mf_sdp_direction_t dir;
  if (span_eq(name, "group")) return parse_group(p, v);
  if (span_eq(name, "msid-semantic"))
    return copy_value(p, v, sdp->msid_semantic, sizeof sdp->msid_semantic, "msid-semantic");
  if (span_eq(name, "ice-lite")) sdp->ice_lite = true;
  else if (span_eq(name, "extmap-allow-mixed")) sdp->extmap_allow_mixed = true;
  else if (parse_direction(name, &dir)) p->session_dir = dir;
  return MF_OK;
}

static mf_err_t parse_attribute(parser_t *p, span_t line) {
  span_t name, value;
  span_split(line, ':', &name, &value);
  bool handled;
  mf_sdp_transport_t *t = p->m ? &p->m->transport : &p->sdp->transport;
  mf_err_t err = parse_transport_attr(p, name, value, t, &handled);
  if (err || handled) return err;
  return p->m ? parse_media_attr(p, name, value) : parse_session_attr(p, name, value);
}

/* Session-level ICE/DTLS/c=/direction apply to sections that set none of their own. */
static mf_err_t finish_session(parser_t *p) {
  mf_sdp_t *sdp = p->sdp;
  /* Without an o= line, hold what the writer will put there. */
  if (!sdp->origin_user[0]) snprintf(sdp->origin_user, sizeof sdp->origin_user, "-");
  if (!sdp->session_id[0]) snprintf(sdp->session_id, sizeof sdp->session_id, "0");
  const mf_sdp_transport_t *st = &sdp->transport;
  for (size_t i = 0; i < sdp->media_count; i++) {
    mf_sdp_media_t *m = &sdp->media[i];
    mf_sdp_transport_t *mt = &m->transport;
    if (!mt->ice_ufrag[0]) memcpy(mt->ice_ufrag, st->ice_ufrag, sizeof mt->ice_ufrag);
    if (!mt->ice_pwd[0]) memcpy(mt->ice_pwd, st->ice_pwd, sizeof mt->ice_pwd);
    if (!mt->ice_options[0]) memcpy(mt->ice_options, st->ice_options, sizeof mt->ice_options);
    if (!mt->fingerprint_alg[0]) {
      memcpy(mt->fingerprint_alg, st->fingerprint_alg, sizeof mt->fingerprint_alg);
      memcpy(mt->fingerprint, st->fingerprint, sizeof mt->fingerprint);
    }
    if (mt->setup == MF_SDP_SETUP_NONE) mt->setup = st->setup;
    if (!m->connection[0]) memcpy(m->connection, p->session_conn, sizeof m->connection);
    if (!m->connection[0]) snprintf(m->connection, sizeof m->connection, "0.0.0.0");
    if (!p->media_dir_set[i] && p->session_dir != MF_SDP_DIR_UNSET) m->direction = p->session_dir;
    for (size_t k = 0; k < i; k++) {
      if (m->mid[0] && strcmp(m->mid, sdp->media[k].mid) == 0) {
        p->line = 0;
        return fail(p, MF_ERR_PARSE, "mid \"%s\" used twice", m->mid);
      }
    }
  }
  return MF_OK;
}

mf_err_t mf_sdp_parse(const char *text, size_t len, mf_sdp_t *out) {
  if (!out) return MF_ERR_INVALID_ARG;
  memset(out, 0, sizeof *out);
  parser_t p;
  memset(&p, 0, sizeof p);
  p.sdp = out;
  if (!text && len > 0) return fail(&p, MF_ERR_INVALID_ARG, "no text");
  bool seen_v = false;
  size_t pos = 0;
  mf_err_t err = MF_OK;
  while (pos < len && !err) {
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - text) : len;
    span_t line = {text + pos, end - pos};
    pos = nl ? end + 1 : len;
    p.line++;
    if (line.n > 0 && line.p[line.n - 1] == '\r') line.n--;
    if (line.n == 0) continue;
    for (size_t i = 0; i < line.n; i++) {
      unsigned char c = (unsigned char)line.p[i];
      if ((c < 0x20 && c != '\t') || c == 0x7f)
        return fail(&p, MF_ERR_PARSE, "control character 0x%02x", c);
    }
    if (line.n < 2 || line.p[1] != '=' || line.p[0] < 'a' || line.p[0] > 'z')
      return fail(&p, MF_ERR_PARSE, "expected <letter>=<value>");
    char type = line.p[0];
    span_t v = {line.p + 2, line.n - 2};
    if (!seen_v) {
      if (type != 'v' || !span_eq(span_trim(v), "0"))
        return fail(&p, MF_ERR_PARSE, "SDP must start with v=0");
      seen_v = true;
      continue;
    }
    switch (type) {
      case 'o': err = parse_origin(&p, v); break;
      case 'c': err = parse_connection(&p, v); break;
      case 'm': err = parse_media(&p, v); break;
      case 'a': err = parse_attribute(&p, v); break;
      default: break; /* s= t= b= i= ... carry nothing we use */
    }
  }
  if (err) return err;
  p.line = 0;
  if (!seen_v) return fail(&p, MF_ERR_PARSE, "SDP must start with v=0 (no lines)");
  if ((err = finish_media(&p)) != MF_OK) return err;
  return finish_session(&p);
}

/* ---------------------------------------------------------------- writer */

typedef struct {
  char *out;
  size_t cap;
  size_t len;
  mf_err_t err;
} writer_t;

/* Bounded "%.*s" arguments: never read past the array even if it lacks a NUL. */
#define S(field) (int)strnlen((field), sizeof(field)), (field)

static void wline(writer_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void wline(writer_t *w, const char *fmt, ...) {
  if (w->err) return;
  size_t avail = w->cap - w->len;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(w->out + w->len, avail, fmt, ap);
  va_end(ap);
  if (n < 0) {
    w->err = MF_ERR_INTERNAL;
    return;
  }
  if ((size_t)n + 3 > avail) { /* line + CRLF + NUL */
    w->err = MF_ERR_LIMIT;
    return;
  }
  /* A value holding CR or LF would smuggle extra lines into the description. */
  if (memchr(w->out + w->len, '\r', (size_t)n) || memchr(w->out + w->len, '\n', (size_t)n)) {
    w->err = MF_ERR_INVALID_ARG;
    return;
  }
  w->len += (size_t)n;
  memcpy(w->out + w->len, "\r\n", 3);
  w->len += 2;
}

static void write_transport(writer_t *w, const mf_sdp_transport_t *t) {
  if (t->ice_ufrag[0]) wline(w, "a=ice-ufrag:%.*s", S(t->ice_ufrag));
  if (t->ice_pwd[0]) wline(w, "a=ice-pwd:%.*s", S(t->ice_pwd));
  if (t->ice_options[0]) wline(w, "a=ice-options:%.*s", S(t->ice_options));
  if (t->fingerprint_alg[0])
    wline(w, "a=fingerprint:%.*s %.*s", S(t->fingerprint_alg), S(t->fingerprint));
  if (t->setup != MF_SDP_SETUP_NONE) wline(w, "a=setup:%s", mf_sdp_setup_name(t->setup));
}

static const char *kind_text(const mf_sdp_media_t *m) {
  switch (m->kind) {
    case MF_SDP_KIND_AUDIO: return "audio";
    case MF_SDP_KIND_VIDEO: return "video";
    case MF_SDP_KIND_APPLICATION: return "application";
    default: return NULL;
  }
}

bool mf_sdp_media_counts_valid(const mf_sdp_media_t *m) {
  if (m->payload_count > MF_SDP_MAX_PAYLOADS || m->extmap_count > MF_SDP_MAX_EXTMAPS ||
      m->ssrc_count > MF_SDP_MAX_SSRCS || m->ssrc_group_count > MF_SDP_MAX_SSRC_GROUPS ||
      m->rid_count > MF_SDP_MAX_RIDS || m->candidate_count > MF_SDP_MAX_CANDIDATES)
    return false;
  for (size_t i = 0; i < m->payload_count; i++)
    if (m->payloads[i].fb_count > MF_SDP_MAX_RTCP_FB) return false;
  for (size_t i = 0; i < m->ssrc_group_count; i++)
    if (m->ssrc_groups[i].ssrc_count > MF_SDP_MAX_GROUP_SSRCS) return false;
  return true;
}

static void write_mline(writer_t *w, const mf_sdp_media_t *m) {
  char fmts[MF_SDP_MAX_PAYLOADS * 4 + 1];
  size_t n = 0;
  for (size_t i = 0; i < m->payload_count; i++)
    n += (size_t)snprintf(fmts + n, sizeof fmts - n, " %u", m->payloads[i].pt);
  if (m->payload_count == 0) {
    if (!m->fmt[0]) {
      w->err = MF_ERR_INVALID_ARG;
      return;
    }
    snprintf(fmts, sizeof fmts, " %.*s", S(m->fmt));
  }
  const char *kind = kind_text(m);
  if (kind)
    wline(w, "m=%s %u %.*s%s", kind, m->port, S(m->proto), fmts);
  else
    wline(w, "m=%.*s %u %.*s%s", S(m->kind_name), m->port, S(m->proto), fmts);
  const char *addr = m->connection[0] ? m->connection : "0.0.0.0";
  bool v6 = memchr(addr, ':', strnlen(addr, MF_SDP_ADDR_LEN)) != NULL;
  wline(w, "c=IN %s %.*s", v6 ? "IP6" : "IP4", (int)strnlen(addr, MF_SDP_ADDR_LEN), addr);
}

static void write_payloads(writer_t *w, const mf_sdp_media_t *m) {
  for (size_t i = 0; i < m->payload_count; i++) {
    const mf_sdp_payload_t *pl = &m->payloads[i];
    if (pl->name[0] && pl->channels)
      wline(w, "a=rtpmap:%u %.*s/%" PRIu32 "/%" PRIu32, pl->pt, S(pl->name), pl->clock_rate,
            pl->channels);
    else if (pl->name[0])
      wline(w, "a=rtpmap:%u %.*s/%" PRIu32, pl->pt, S(pl->name), pl->clock_rate);
    for (size_t k = 0; k < pl->fb_count; k++) {
      const mf_sdp_rtcp_fb_t *fb = &pl->fb[k];
      if (fb->param[0])
        wline(w, "a=rtcp-fb:%u %.*s %.*s", pl->pt, S(fb->type), S(fb->param));
      else
        wline(w, "a=rtcp-fb:%u %.*s", pl->pt, S(fb->type));
    }
    if (pl->fmtp[0]) wline(w, "a=fmtp:%u %.*s", pl->pt, S(pl->fmtp));
  }
}

static void write_streams(writer_t *w, const mf_sdp_media_t *m) {
  for (size_t i = 0; i < m->rid_count; i++) {
    const mf_sdp_rid_t *r = &m->rids[i];
    const char *dir = r->direction == MF_SDP_RID_RECV ? "recv" : "send";
    if (r->params[0])
      wline(w, "a=rid:%.*s %s %.*s", S(r->id), dir, S(r->params));
    else
      wline(w, "a=rid:%.*s %s", S(r->id), dir);
  }
  if (m->simulcast_send[0] && m->simulcast_recv[0])
    wline(w, "a=simulcast:send %.*s recv %.*s", S(m->simulcast_send), S(m->simulcast_recv));
  else if (m->simulcast_send[0])
    wline(w, "a=simulcast:send %.*s", S(m->simulcast_send));
  else if (m->simulcast_recv[0])
    wline(w, "a=simulcast:recv %.*s", S(m->simulcast_recv));
  for (size_t i = 0; i < m->ssrc_group_count; i++) {
    const mf_sdp_ssrc_group_t *g = &m->ssrc_groups[i];
    char list[MF_SDP_MAX_GROUP_SSRCS * 11 + 1];
    size_t n = 0;
    for (size_t k = 0; k < g->ssrc_count; k++)
      n += (size_t)snprintf(list + n, sizeof list - n, " %" PRIu32, g->ssrcs[k]);
    list[n] = '\0';
    wline(w, "a=ssrc-group:%.*s%s", S(g->semantics), list);
  }
  for (size_t i = 0; i < m->ssrc_count; i++) {
    const mf_sdp_ssrc_t *s = &m->ssrcs[i];
    /* An ssrc with neither value still gets a line, so it survives a round trip. */
    if (s->cname[0] || !s->msid[0]) wline(w, "a=ssrc:%" PRIu32 " cname:%.*s", s->ssrc, S(s->cname));
    if (s->msid[0]) wline(w, "a=ssrc:%" PRIu32 " msid:%.*s", s->ssrc, S(s->msid));
  }
}

static void write_candidates(writer_t *w, const mf_sdp_media_t *m) {
  for (size_t i = 0; i < m->candidate_count; i++) {
    const mf_sdp_candidate_t *c = &m->candidates[i];
    char ext[MF_SDP_ADDR_LEN + MF_SDP_SHORT_LEN + 48];
    size_t n = 0;
    ext[0] = '\0';
    if (c->raddr[0]) n += (size_t)snprintf(ext + n, sizeof ext - n, " raddr %.*s", S(c->raddr));
    if (c->raddr[0] || c->rport) n += (size_t)snprintf(ext + n, sizeof ext - n, " rport %u", c->rport);
    if (c->tcptype[0]) snprintf(ext + n, sizeof ext - n, " tcptype %.*s", S(c->tcptype));
    wline(w, "a=candidate:%.*s %" PRIu32 " %.*s %" PRIu32 " %.*s %u typ %.*s%s", S(c->foundation),
          c->component, S(c->transport), c->priority, S(c->address), c->port, S(c->type), ext);
  }
  if (m->end_of_candidates) wline(w, "a=end-of-candidates");
}

static void write_media(writer_t *w, const mf_sdp_media_t *m) {
  write_mline(w, m);
  write_transport(w, &m->transport);
  if (m->mid[0]) wline(w, "a=mid:%.*s", S(m->mid));
  if (m->extmap_allow_mixed) wline(w, "a=extmap-allow-mixed");
  for (size_t i = 0; i < m->extmap_count; i++) {
    const mf_sdp_extmap_t *e = &m->extmaps[i];
    if (e->direction != MF_SDP_DIR_UNSET)
      wline(w, "a=extmap:%u/%s %.*s", e->id, mf_sdp_direction_name(e->direction), S(e->uri));
    else
      wline(w, "a=extmap:%u %.*s", e->id, S(e->uri));
  }
  /* Data sections carry no direction; sendrecv is the default a parser assumes. */
  bool default_dir = m->kind == MF_SDP_KIND_APPLICATION && m->direction == MF_SDP_DIR_SENDRECV;
  if (m->direction != MF_SDP_DIR_UNSET && !default_dir)
    wline(w, "a=%s", mf_sdp_direction_name(m->direction));
  if (m->msid[0]) wline(w, "a=msid:%.*s", S(m->msid));
  if (m->rtcp_mux) wline(w, "a=rtcp-mux");
  if (m->rtcp_rsize) wline(w, "a=rtcp-rsize");
  if (m->bundle_only) wline(w, "a=bundle-only");
  write_payloads(w, m);
  write_streams(w, m);
  write_candidates(w, m);
  if (m->sctp_port) wline(w, "a=sctp-port:%u", m->sctp_port);
  if (m->max_message_size) wline(w, "a=max-message-size:%" PRIu32, m->max_message_size);
}

mf_err_t mf_sdp_write(const mf_sdp_t *sdp, char *out, size_t cap, size_t *len) {
  if (len) *len = 0;
  if (!sdp || !out || cap == 0) return MF_ERR_INVALID_ARG;
  out[0] = '\0';
  if (sdp->media_count > MF_SDP_MAX_MEDIA || sdp->bundle_count > MF_SDP_MAX_MEDIA)
    return MF_ERR_INVALID_ARG;
  for (size_t i = 0; i < sdp->media_count; i++)
    if (!mf_sdp_media_counts_valid(&sdp->media[i])) return MF_ERR_INVALID_ARG;

  writer_t w = {out, cap, 0, MF_OK};
  wline(&w, "v=0");
  wline(&w, "o=%.*s %.*s %" PRIu64 " IN IP4 127.0.0.1",
        sdp->origin_user[0] ? (int)strnlen(sdp->origin_user, sizeof sdp->origin_user) : 1,
        sdp->origin_user[0] ? sdp->origin_user : "-",
        sdp->session_id[0] ? (int)strnlen(sdp->session_id, sizeof sdp->session_id) : 1,
        sdp->session_id[0] ? sdp->session_id : "0", sdp->session_version);
  wline(&w, "s=-");
  wline(&w, "t=0 0");
  if (sdp->ice_lite) wline(&w, "a=ice-lite");
  write_transport(&w, &sdp->transport);
  if (sdp->bundle_count > 0) {
    char group[MF_SDP_MAX_MEDIA * MF_SDP_TOKEN_LEN + 16];
    size_t n = (size_t)snprintf(group, sizeof group, "a=group:BUNDLE");
    for (size_t i = 0; i < sdp->bundle_count; i++)
      n += (size_t)snprintf(group + n, sizeof group - n, " %.*s", S(sdp->bundle_mids[i]));
    wline(&w, "%s", group);
  }
  if (sdp->extmap_allow_mixed) wline(&w, "a=extmap-allow-mixed");
  if (sdp->msid_semantic[0]) wline(&w, "a=msid-semantic: %.*s", S(sdp->msid_semantic));
  for (size_t i = 0; i < sdp->media_count && !w.err; i++) write_media(&w, &sdp->media[i]);
  if (w.err) {
    out[0] = '\0';
    return w.err;
  }
  if (len) *len = w.len;
  return MF_OK;
}

/* ---------------------------------------------------------------- helpers */

mf_err_t mf_sdp_fmtp_param(const char *fmtp, const char *key, char *out, size_t cap) {
  if (!fmtp || !key || !out || cap == 0) return MF_ERR_INVALID_ARG;
  span_t rest = {fmtp, strlen(fmtp)}, item;
  while (rest.n > 0) {
    span_split(rest, ';', &item, &rest);
    span_t k, v;
    if (!span_split(item, '=', &k, &v)) continue;
    if (!span_ieq(span_trim(k), key)) continue;
    v = span_trim(v);
    if (v.n >= cap) return MF_ERR_LIMIT;
    memcpy(out, v.p, v.n);
    out[v.n] = '\0';
    return MF_OK;
  }
  return MF_ERR_NOT_FOUND;
}

int mf_sdp_find_mid(const mf_sdp_t *sdp, const char *mid) {
  if (!sdp || !mid || !mid[0]) return -1;
  for (size_t i = 0; i < sdp->media_count && i < MF_SDP_MAX_MEDIA; i++)
    if (strncmp(sdp->media[i].mid, mid, MF_SDP_TOKEN_LEN) == 0) return (int)i;
  return -1;
}

const char *mf_sdp_direction_name(mf_sdp_direction_t dir) {
  switch (dir) {
    case MF_SDP_DIR_SENDRECV: return "sendrecv";
    case MF_SDP_DIR_SENDONLY: return "sendonly";
    case MF_SDP_DIR_RECVONLY: return "recvonly";
    case MF_SDP_DIR_INACTIVE: return "inactive";
    default: return "";
  }
}

const char *mf_sdp_setup_name(mf_sdp_setup_t setup) {
  switch (setup) {
    case MF_SDP_SETUP_ACTPASS: return "actpass";
    case MF_SDP_SETUP_ACTIVE: return "active";
    case MF_SDP_SETUP_PASSIVE: return "passive";
    case MF_SDP_SETUP_HOLDCONN: return "holdconn";
    default: return "";
  }
}

mf_sdp_direction_t mf_sdp_direction_reverse(mf_sdp_direction_t dir) {
  switch (dir) {
    case MF_SDP_DIR_SENDONLY: return MF_SDP_DIR_RECVONLY;
    case MF_SDP_DIR_RECVONLY: return MF_SDP_DIR_SENDONLY;
    default: return dir;
  }
}
