#include "tests/bench/gen_janus_sdp.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define LINE_MAX_LEN 4096

/* ---------------------------------------------------------------- parsing helpers */

/* A token of s[0..n) starting at *pos (after any spaces): its start and length; false
 * when none is left. */
static bool next_token(const char *s, size_t n, size_t *pos, const char **tok, size_t *tlen) {
  size_t i = *pos;
  while (i < n && s[i] == ' ') i++;
  size_t st = i;
  while (i < n && s[i] != ' ') i++;
  if (i == st) return false;
  *tok = s + st;
  *tlen = i - st;
  *pos = i;
  return true;
}

/* A decimal number of exactly the token's length, in [0, max]. */
static bool tok_uint(const char *t, size_t n, uint64_t max, uint64_t *out) {
  if (n == 0 || n > 20) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (t[i] < '0' || t[i] > '9') return false;
    uint64_t d = (uint64_t)(t[i] - '0');
    if (v > (max - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

/* Copies a token into dst (cap includes the NUL); false if it does not fit. */
static bool tok_copy(char *dst, size_t cap, const char *t, size_t n) {
  if (n + 1 > cap) return false;
  memcpy(dst, t, n);
  dst[n] = '\0';
  return true;
}

static bool is_ice_chars(const char *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = t[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '+' || c == '/'))
      return false;
  }
  return n > 0;
}

/* "AB:CD:..." with 32 bytes (sha-256). */
static bool is_sha256_fp(const char *t, size_t n) {
  if (n != 95) return false;
  for (size_t i = 0; i < n; i++) {
    char c = t[i];
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (i % 3 == 2 ? c != ':' : !hex) return false;
  }
  return true;
}

static bool has_prefix(const char *l, size_t n, const char *p) {
  size_t k = strlen(p);
  return n >= k && memcmp(l, p, k) == 0;
}

/* ---------------------------------------------------------------- one line */

typedef struct {
  mf_gen_janus_sdp_t *out;
  mf_gen_janus_media_t *m; /* the current m-section, NULL at session level */
  bool have_fp;
} parse_t;

static mf_err_t parse_m_line(parse_t *ps, const char *l, size_t n) {
  mf_gen_janus_sdp_t *o = ps->out;
  if (o->nmedia == MF_GEN_JANUS_MAX_MEDIA) return MF_ERR_LIMIT;
  mf_gen_janus_media_t *m = &o->media[o->nmedia];
  memset(m, 0, sizeof *m);
  m->pt = -1;
  size_t pos = 2;
  const char *t;
  size_t tl;
  uint64_t port;
  if (!next_token(l, n, &pos, &t, &tl)) return MF_ERR_PARSE;
  if (tl == 5 && memcmp(t, "audio", 5) == 0)
    m->kind = MF_GEN_JANUS_MEDIA_AUDIO;
  else if (tl == 5 && memcmp(t, "video", 5) == 0)
    m->kind = MF_GEN_JANUS_MEDIA_VIDEO;
  else
    m->kind = MF_GEN_JANUS_MEDIA_OTHER;
  if (!next_token(l, n, &pos, &t, &tl) || !tok_uint(t, tl, 65535, &port)) return MF_ERR_PARSE;
  m->rejected = port == 0;
  if (!next_token(l, n, &pos, &t, &tl) || !tok_copy(m->proto, sizeof m->proto, t, tl))
    return MF_ERR_PARSE;
  if (!next_token(l, n, &pos, &t, &tl)) return MF_ERR_PARSE; /* at least one format */
  o->nmedia++;
  ps->m = m;
  return MF_OK;
}

/* a=rtpmap:<pt> <name>/<clock>[/<channels>] */
static mf_err_t parse_rtpmap(mf_gen_janus_media_t *m, const char *v, size_t n) {
  size_t pos = 0;
  const char *t, *e;
  size_t tl, el;
  uint64_t pt, clock, ch = 0;
  if (!next_token(v, n, &pos, &t, &tl) || !tok_uint(t, tl, 127, &pt) ||
      !next_token(v, n, &pos, &e, &el))
    return MF_ERR_PARSE;
  const char *s1 = memchr(e, '/', el);
  if (!s1) return MF_ERR_PARSE;
  size_t name_len = (size_t)(s1 - e);
  const char *c = s1 + 1;
  size_t rest = el - name_len - 1;
  const char *s2 = memchr(c, '/', rest);
  size_t clen = s2 ? (size_t)(s2 - c) : rest;
  if (!tok_uint(c, clen, 10000000, &clock) || clock == 0) return MF_ERR_PARSE;
  if (s2 && !tok_uint(s2 + 1, rest - clen - 1, 8, &ch)) return MF_ERR_PARSE;
  if (m->pt >= 0) return MF_OK; /* the first matching codec wins */
  bool vp8 = name_len == 3 && strncasecmp(e, "VP8", 3) == 0;
  bool opus = name_len == 4 && strncasecmp(e, "opus", 4) == 0;
  if ((m->kind == MF_GEN_JANUS_MEDIA_VIDEO && vp8) || (m->kind == MF_GEN_JANUS_MEDIA_AUDIO && opus)) {
    m->pt = (int)pt;
    m->clock = (uint32_t)clock;
    m->channels = (int)ch;
  }
  return MF_OK;
}

/* a=candidate:<foundation> <component> <transport> <priority> <ip> <port> typ <type> ... */
static mf_err_t parse_candidate(mf_gen_janus_sdp_t *o, const char *v, size_t n) {
  size_t pos = 0;
  const char *f[8];
  size_t fl[8];
  for (int i = 0; i < 8; i++)
    if (!next_token(v, n, &pos, &f[i], &fl[i])) return MF_ERR_PARSE;
  uint64_t comp, prio, port;
  if (!tok_uint(f[1], fl[1], 256, &comp) || !tok_uint(f[3], fl[3], UINT32_MAX, &prio) ||
      !tok_uint(f[5], fl[5], 65535, &port) || port == 0 || fl[6] != 3 ||
      memcmp(f[6], "typ", 3) != 0)
    return MF_ERR_PARSE;
  if (o->cand_port) return MF_OK; /* the first usable one wins */
  bool udp = fl[2] == 3 && strncasecmp(f[2], "udp", 3) == 0;
  bool host = fl[7] == 4 && memcmp(f[7], "host", 4) == 0;
  char ip[16];
  struct in_addr a;
  if (!udp || !host || comp != 1 || !tok_copy(ip, sizeof ip, f[4], fl[4]) ||
      inet_pton(AF_INET, ip, &a) != 1)
    return MF_OK; /* IPv6, TCP, relayed...: valid, not for us */
  memcpy(o->cand_ip, ip, sizeof ip);
  o->cand_port = (uint16_t)port;
  return MF_OK;
}

static mf_err_t parse_attribute(parse_t *ps, const char *l, size_t n) {
  mf_gen_janus_sdp_t *o = ps->out;
  mf_gen_janus_media_t *m = ps->m;
  const char *v;
  size_t vl, pos = 0;
  const char *t;
  size_t tl;
  uint64_t x;
  if (has_prefix(l, n, "a=ice-ufrag:")) {
    v = l + 12;
    vl = n - 12;
    if (vl > 256 || !is_ice_chars(v, vl)) return MF_ERR_PARSE;
    if (!o->ufrag[0]) tok_copy(o->ufrag, sizeof o->ufrag, v, vl);
  } else if (has_prefix(l, n, "a=ice-pwd:")) {
    v = l + 10;
    vl = n - 10;
    if (vl > 256 || !is_ice_chars(v, vl)) return MF_ERR_PARSE;
    if (!o->pwd[0]) tok_copy(o->pwd, sizeof o->pwd, v, vl);
  } else if (has_prefix(l, n, "a=fingerprint:")) {
    v = l + 14;
    vl = n - 14;
    const char *h;
    size_t hl;
    if (!next_token(v, vl, &pos, &t, &tl) || !next_token(v, vl, &pos, &h, &hl))
      return MF_ERR_PARSE;
    if (tl == 7 && strncasecmp(t, "sha-256", 7) == 0) {
      if (!is_sha256_fp(h, hl)) return MF_ERR_PARSE;
      if (!ps->have_fp) tok_copy(o->fingerprint, sizeof o->fingerprint, h, hl);
      ps->have_fp = true;
    }
  } else if (has_prefix(l, n, "a=setup:")) {
    v = l + 8;
    vl = n - 8;
    if (!(vl == 7 && memcmp(v, "actpass", 7) == 0) && !(vl == 6 && memcmp(v, "active", 6) == 0) &&
        !(vl == 7 && memcmp(v, "passive", 7) == 0))
      return MF_ERR_PARSE;
    if (!o->setup[0]) tok_copy(o->setup, sizeof o->setup, v, vl);
  } else if (has_prefix(l, n, "a=candidate:")) {
    return parse_candidate(o, l + 12, n - 12);
  } else if (!m) {
    return MF_OK; /* other session attributes: group, msid-semantic, ... */
  } else if (has_prefix(l, n, "a=mid:")) {
    v = l + 6;
    vl = n - 6;
    if (vl == 0 || !tok_copy(m->mid, sizeof m->mid, v, vl) || memchr(v, ' ', vl))
      return MF_ERR_PARSE;
  } else if (has_prefix(l, n, "a=rtpmap:")) {
    return parse_rtpmap(m, l + 9, n - 9);
  } else if (has_prefix(l, n, "a=ssrc-group:FID ")) {
    v = l + 17;
    vl = n - 17;
    uint64_t a, b;
    if (!next_token(v, vl, &pos, &t, &tl) || !tok_uint(t, tl, UINT32_MAX, &a) || a == 0 ||
        !next_token(v, vl, &pos, &t, &tl) || !tok_uint(t, tl, UINT32_MAX, &b) || b == 0)
      return MF_ERR_PARSE;
    m->ssrc = (uint32_t)a;
    m->rtx_ssrc = (uint32_t)b;
  } else if (has_prefix(l, n, "a=ssrc:")) {
    v = l + 7;
    vl = n - 7;
    if (!next_token(v, vl, &pos, &t, &tl) || !tok_uint(t, tl, UINT32_MAX, &x) || x == 0)
      return MF_ERR_PARSE;
    if (!m->ssrc) m->ssrc = (uint32_t)x;
  }
  return MF_OK;
}

mf_err_t mf_gen_janus_sdp_parse(const char *sdp, size_t len, mf_gen_janus_sdp_t *out) {
  if (!sdp || !out) return MF_ERR_INVALID_ARG;
  memset(out, 0, sizeof *out);
  if (len > MF_GEN_JANUS_SDP_MAX) return MF_ERR_LIMIT;
  parse_t ps = {.out = out};
  size_t i = 0, lineno = 0;
  while (i < len) {
    const char *nl = memchr(sdp + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - sdp) : len;
    size_t n = end - i;
    const char *l = sdp + i;
    i = end + 1;
    if (n && l[n - 1] == '\r') n--;
    if (n == 0) continue;
    if (n > LINE_MAX_LEN || n < 2 || l[1] != '=' || memchr(l, '\0', n) || memchr(l, '\r', n))
      return MF_ERR_PARSE;
    if (lineno++ == 0 && !(n == 3 && memcmp(l, "v=0", 3) == 0)) return MF_ERR_PARSE;
    mf_err_t e = MF_OK;
    if (l[0] == 'm')
      e = parse_m_line(&ps, l, n);
    else if (l[0] == 'a')
      e = parse_attribute(&ps, l, n);
    if (e != MF_OK) return e;
  }
  if (lineno == 0 || !out->ufrag[0] || !out->pwd[0] || !ps.have_fp || !out->cand_port ||
      out->nmedia == 0)
    return MF_ERR_PARSE;
  bool usable = false; /* an SDP with nothing to send or receive is no answer or offer to us */
  for (size_t k = 0; k < out->nmedia; k++) {
    const mf_gen_janus_media_t *m = &out->media[k];
    if (m->kind != MF_GEN_JANUS_MEDIA_OTHER && !m->rejected && (m->pt < 0 || !m->mid[0]))
      return MF_ERR_PARSE;
    if (m->kind != MF_GEN_JANUS_MEDIA_OTHER && !m->rejected) usable = true;
  }
  return usable ? MF_OK : MF_ERR_PARSE;
}

/* ---------------------------------------------------------------- writing */

typedef struct {
  char *buf;
  size_t cap, len;
  bool full;
} wr_t;

__attribute__((format(printf, 2, 3))) static void wr(wr_t *w, const char *fmt, ...) {
  if (w->full) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(w->buf + w->len, w->cap - w->len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= w->cap - w->len) {
    w->full = true;
    w->buf[w->len] = '\0';
    return;
  }
  w->len += (size_t)n;
}

static bool local_ok(const mf_gen_janus_local_t *l) {
  struct in_addr a;
  return l && l->ufrag && l->pwd && l->fingerprint && l->ip && l->port &&
         is_ice_chars(l->ufrag, strlen(l->ufrag)) && strlen(l->ufrag) <= 256 &&
         is_ice_chars(l->pwd, strlen(l->pwd)) && strlen(l->pwd) <= 256 &&
         is_sha256_fp(l->fingerprint, strlen(l->fingerprint)) && inet_pton(AF_INET, l->ip, &a) == 1;
}

static void wr_transport(wr_t *w, const mf_gen_janus_local_t *l) {
  wr(w,
     "c=IN IP4 %s\r\na=rtcp-mux\r\na=ice-ufrag:%s\r\na=ice-pwd:%s\r\n"
     "a=fingerprint:sha-256 %s\r\na=setup:active\r\n",
     l->ip, l->ufrag, l->pwd, l->fingerprint);
}

static void wr_candidate(wr_t *w, const mf_gen_janus_local_t *l) {
  wr(w, "a=candidate:1 1 udp 2130706431 %s %u typ host\r\na=end-of-candidates\r\n", l->ip,
     (unsigned)l->port);
}

static mf_err_t wr_done(wr_t *w, size_t *len) {
  if (w->full) return MF_ERR_FULL;
  *len = w->len;
  return MF_OK;
}

mf_err_t mf_gen_janus_sdp_write_offer(const mf_gen_janus_local_t *local, int video_pt,
                                      uint32_t video_ssrc, int audio_pt, uint32_t audio_ssrc,
                                      char *buf, size_t cap, size_t *len) {
  if (!local_ok(local) || !buf || cap == 0 || !len || video_pt < 0 || video_pt > 127 ||
      audio_pt < 0 || audio_pt > 127 || video_pt == audio_pt || !video_ssrc || !audio_ssrc)
    return MF_ERR_INVALID_ARG;
  wr_t w = {.buf = buf, .cap = cap};
  buf[0] = '\0';
  wr(&w, "v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
         "a=msid-semantic: WMS mfgen\r\n", local->ip);
  wr(&w, "m=video 9 UDP/TLS/RTP/SAVPF %d\r\n", video_pt);
  wr_transport(&w, local);
  wr(&w,
     "a=mid:0\r\na=sendonly\r\na=rtpmap:%d VP8/90000\r\na=rtcp-fb:%d nack\r\n"
     "a=rtcp-fb:%d nack pli\r\na=rtcp-fb:%d ccm fir\r\na=ssrc:%u cname:mfgen\r\n"
     "a=ssrc:%u msid:mfgen v0\r\n",
     video_pt, video_pt, video_pt, video_pt, (unsigned)video_ssrc, (unsigned)video_ssrc);
  wr_candidate(&w, local);
  wr(&w, "m=audio 9 UDP/TLS/RTP/SAVPF %d\r\n", audio_pt);
  wr_transport(&w, local);
  wr(&w,
     "a=mid:1\r\na=sendonly\r\na=rtpmap:%d opus/48000/2\r\na=ssrc:%u cname:mfgen\r\n"
     "a=ssrc:%u msid:mfgen a0\r\n",
     audio_pt, (unsigned)audio_ssrc, (unsigned)audio_ssrc);
  wr_candidate(&w, local);
  return wr_done(&w, len);
}

mf_err_t mf_gen_janus_sdp_write_answer(const mf_gen_janus_sdp_t *offer,
                                       const mf_gen_janus_local_t *local, uint32_t rtcp_ssrc,
                                       char *buf, size_t cap, size_t *len) {
  if (!offer || !local_ok(local) || !buf || cap == 0 || !len || !rtcp_ssrc ||
      offer->nmedia == 0 || offer->nmedia > MF_GEN_JANUS_MAX_MEDIA)
    return MF_ERR_INVALID_ARG;
  wr_t w = {.buf = buf, .cap = cap};
  buf[0] = '\0';
  wr(&w, "v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nt=0 0\r\na=group:BUNDLE", local->ip);
  for (size_t i = 0; i < offer->nmedia; i++) {
    const mf_gen_janus_media_t *m = &offer->media[i];
    if (m->kind != MF_GEN_JANUS_MEDIA_OTHER && !m->rejected) wr(&w, " %s", m->mid);
  }
  wr(&w, "\r\n");
  for (size_t i = 0; i < offer->nmedia; i++) {
    const mf_gen_janus_media_t *m = &offer->media[i];
    const char *kind = m->kind == MF_GEN_JANUS_MEDIA_AUDIO   ? "audio"
                       : m->kind == MF_GEN_JANUS_MEDIA_VIDEO ? "video"
                                                             : "application";
    if (m->kind == MF_GEN_JANUS_MEDIA_OTHER || m->rejected || m->pt < 0) {
      /* rejected: port 0 with the offer's proto and a placeholder format */
      wr(&w, "m=%s 0 %s %s\r\nc=IN IP4 0.0.0.0\r\na=inactive\r\n", kind,
         m->proto[0] ? m->proto : "UDP/TLS/RTP/SAVPF",
         m->kind == MF_GEN_JANUS_MEDIA_OTHER ? "webrtc-datachannel" : "0");
      if (m->mid[0]) wr(&w, "a=mid:%s\r\n", m->mid);
      continue;
    }
    wr(&w, "m=%s 9 UDP/TLS/RTP/SAVPF %d\r\n", kind, m->pt);
    wr_transport(&w, local);
    wr(&w, "a=mid:%s\r\na=recvonly\r\n", m->mid);
    if (m->kind == MF_GEN_JANUS_MEDIA_VIDEO)
      wr(&w, "a=rtpmap:%d VP8/%u\r\na=rtcp-fb:%d nack\r\na=rtcp-fb:%d nack pli\r\n"
             "a=rtcp-fb:%d ccm fir\r\n", m->pt, (unsigned)m->clock, m->pt, m->pt, m->pt);
    else if (m->channels > 0)
      wr(&w, "a=rtpmap:%d opus/%u/%d\r\n", m->pt, (unsigned)m->clock, m->channels);
    else
      wr(&w, "a=rtpmap:%d opus/%u\r\n", m->pt, (unsigned)m->clock);
    wr(&w, "a=ssrc:%u cname:mfgen\r\n", (unsigned)rtcp_ssrc);
    wr_candidate(&w, local);
  }
  return wr_done(&w, len);
}
