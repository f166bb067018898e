/* mediasoup's ortc.ts behaviour in C. Where mediasoup would crash on inconsistent input
 * (a JS `!` on a failed find) we return an error instead; everything else, including
 * JS quirks the client relies on (rtcp.reducedSize forced to true, fb parameter ""), is
 * kept so that mediasoup-client sees exactly the shapes it would from mediasoup. */
#define MF_LOG_MODULE "ortc"
#include "node/ortc.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

__attribute__((format(printf, 4, 5))) static mf_err_t fail(char *err, size_t errsz,
                                                           mf_err_t code, const char *fmt,
                                                           ...) {
  if (err && errsz > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* ---- small helpers ---- */

bool mf_ortc_is_rtx_mime(const char *mime_type) {
  if (!mime_type) return false;
  size_t len = strlen(mime_type);
  /* mediasoup: /.+\/rtx$/i */
  return len > 4 && strcasecmp(mime_type + len - 4, "/rtx") == 0;
}

/* mediasoup's /^(audio|video)\/(.+)/i: the kind, or NONE when the mime type is invalid. */
static mf_media_kind_t mime_kind(const char *mime) {
  if (strncasecmp(mime, "audio/", 6) == 0 && mime[6] != '\0') return MF_MEDIA_KIND_AUDIO;
  if (strncasecmp(mime, "video/", 6) == 0 && mime[6] != '\0') return MF_MEDIA_KIND_VIDEO;
  return MF_MEDIA_KIND_NONE;
}

uint32_t mf_ortc_random_ssrc(void) {
  uint32_t r = 0;
  if (RAND_bytes((unsigned char *)&r, sizeof r) != 1) {
    /* Not security relevant: ssrcs only need to differ. */
    r = (uint32_t)random();
  }
  return 100000000u + r % 900000000u;
}

mf_scalability_mode_t mf_ortc_parse_scalability_mode(const char *mode) {
  /* mediasoup: /^[LS]([1-9]\d{0,1})T([1-9]\d{0,1})(_KEY)?/ (prefix match) */
  mf_scalability_mode_t res = {1, 1, false};
  if (!mode || (mode[0] != 'L' && mode[0] != 'S')) return res;
  const char *p = mode + 1;
  unsigned s = 0, t = 0;
  if (*p < '1' || *p > '9') return res;
  s = (unsigned)(*p++ - '0');
  if (*p >= '0' && *p <= '9') s = s * 10 + (unsigned)(*p++ - '0');
  if (*p++ != 'T') return res;
  if (*p < '1' || *p > '9') return res;
  t = (unsigned)(*p++ - '0');
  if (*p >= '0' && *p <= '9') t = t * 10 + (unsigned)(*p++ - '0');
  res.spatial_layers = s;
  res.temporal_layers = t;
  res.ksvc = strncmp(p, "_KEY", 4) == 0;
  return res;
}

/* ---- H264 profile-level-id (RFC 6184 section 8.1, as h264-profile-level-id) ---- */

typedef struct {
  uint8_t idc;
  const char *iop; /* bit pattern, 'x' = either */
  mf_h264_profile_t profile;
} profile_pattern_t;

static const profile_pattern_t profile_patterns[] = {
    {0x42, "x1xx0000", MF_H264_PROFILE_CONSTRAINED_BASELINE},
    {0x4d, "1xxx0000", MF_H264_PROFILE_CONSTRAINED_BASELINE},
    {0x58, "11xx0000", MF_H264_PROFILE_CONSTRAINED_BASELINE},
    {0x42, "x0xx0000", MF_H264_PROFILE_BASELINE},
    {0x58, "10xx0000", MF_H264_PROFILE_BASELINE},
    {0x4d, "0x0x0000", MF_H264_PROFILE_MAIN},
    {0x64, "00000000", MF_H264_PROFILE_HIGH},
    {0x64, "00001100", MF_H264_PROFILE_CONSTRAINED_HIGH},
    {0xf4, "00000000", MF_H264_PROFILE_PREDICTIVE_HIGH_444},
};

static bool pattern_match(const char *pattern, uint8_t value) {
  for (int bit = 0; bit < 8; bit++) {
    char c = pattern[bit];
    unsigned v = (value >> (7 - bit)) & 1u;
    if (c != 'x' && (unsigned)(c - '0') != v) return false;
  }
  return true;
}

#define H264_LEVEL_1B 0 /* h264-profile-level-id's Level.L1_b */

/* Parses into profile and level (level_idc, or H264_LEVEL_1B). false when invalid. */
static bool h264_parse(const char *str, mf_h264_profile_t *profile, int *level) {
  if (!str || strlen(str) != 6) return false;
  for (int i = 0; i < 6; i++) {
    if (!isxdigit((unsigned char)str[i])) return false;
  }
  unsigned long v = strtoul(str, NULL, 16);
  if (v == 0) return false;
  uint8_t level_idc = v & 0xff, iop = (v >> 8) & 0xff, idc = (v >> 16) & 0xff;
  switch (level_idc) {
    case 11: *level = (iop & 0x10) ? H264_LEVEL_1B : 11; break;
    case 10: case 12: case 13: case 20: case 21: case 22: case 30: case 31: case 32:
    case 40: case 41: case 42: case 50: case 51: case 52: *level = level_idc; break;
    default: return false;
  }
  for (size_t i = 0; i < sizeof profile_patterns / sizeof profile_patterns[0]; i++) {
    if (profile_patterns[i].idc == idc && pattern_match(profile_patterns[i].iop, iop)) {
      *profile = profile_patterns[i].profile;
      return true;
    }
  }
  return false;
}

mf_h264_profile_t mf_ortc_h264_profile(const char *profile_level_id) {
  mf_h264_profile_t profile = MF_H264_PROFILE_NONE;
  int level = 0;
  if (!h264_parse(profile_level_id, &profile, &level)) return MF_H264_PROFILE_NONE;
  return profile;
}

/* The profile-level-id text of params: NULL when missing (or ""), as JS's falsy check.
 * A number (a careless client turning "640032" into 640032) is read as its digits. */
static const char *plid_text(const mf_rtp_params_t *params, char buf[24]) {
  const mf_rtp_param_t *p = mf_rtp_params_find(params, "profile-level-id");
  if (!p) return NULL;
  if (p->type == MF_RTP_PARAM_STRING) return p->str_value[0] ? p->str_value : NULL;
  if (p->type == MF_RTP_PARAM_INT && p->int_value != 0) {
    snprintf(buf, 24, "%06lld", (long long)p->int_value);
    return buf;
  }
  return p->type == MF_RTP_PARAM_REAL ? "" : NULL; /* a real never parses */
}

/* parseSdpProfileLevelId: missing means constrained baseline 3.1. */
static bool h264_parse_params(const mf_rtp_params_t *params, mf_h264_profile_t *profile,
                              int *level) {
  char buf[24];
  const char *text = plid_text(params, buf);
  if (!text) {
    *profile = MF_H264_PROFILE_CONSTRAINED_BASELINE;
    *level = 31;
    return true;
  }
  return h264_parse(text, profile, level);
}

mf_h264_profile_t mf_ortc_h264_profile_from_params(const mf_rtp_params_t *params) {
  mf_h264_profile_t profile = MF_H264_PROFILE_NONE;
  int level = 0;
  if (!h264_parse_params(params, &profile, &level)) return MF_H264_PROFILE_NONE;
  return profile;
}

static bool level_asymmetry_allowed(const mf_rtp_params_t *params) {
  int64_t v;
  return mf_rtp_params_get_int(params, "level-asymmetry-allowed", &v) && v == 1;
}

static bool level_less(int a, int b) {
  if (a == H264_LEVEL_1B) return b != 10 && b != H264_LEVEL_1B;
  if (b == H264_LEVEL_1B) return a != 10;
  return a < b;
}

/* generateProfileLevelIdStringForAnswer for equal profiles. false: "no profile-level-id"
 * (both lack one, or the result has no canonical text). */
static bool h264_answer(const mf_rtp_params_t *local, const mf_rtp_params_t *remote,
                        char out[8]) {
  char b1[24], b2[24];
  if (!plid_text(local, b1) && !plid_text(remote, b2)) return false;
  mf_h264_profile_t lp, rp;
  int ll, rl;
  if (!h264_parse_params(local, &lp, &ll) || !h264_parse_params(remote, &rp, &rl)) return false;
  bool asym = level_asymmetry_allowed(local) && level_asymmetry_allowed(remote);
  int level = asym ? ll : (level_less(ll, rl) ? ll : rl);
  if (level == H264_LEVEL_1B) {
    switch (lp) {
      case MF_H264_PROFILE_CONSTRAINED_BASELINE: strcpy(out, "42f00b"); return true;
      case MF_H264_PROFILE_BASELINE: strcpy(out, "42100b"); return true;
      case MF_H264_PROFILE_MAIN: strcpy(out, "4d100b"); return true;
      default: return false;
    }
  }
  const char *prefix;
  switch (lp) {
    case MF_H264_PROFILE_CONSTRAINED_BASELINE: prefix = "42e0"; break;
    case MF_H264_PROFILE_BASELINE: prefix = "4200"; break;
    case MF_H264_PROFILE_MAIN: prefix = "4d00"; break;
    case MF_H264_PROFILE_CONSTRAINED_HIGH: prefix = "640c"; break;
    case MF_H264_PROFILE_HIGH: prefix = "6400"; break;
    case MF_H264_PROFILE_PREDICTIVE_HIGH_444: prefix = "f400"; break;
    default: return false;
  }
  snprintf(out, 8, "%s%02x", prefix, (unsigned)level & 0xffu);
  return true;
}

static void params_remove(mf_rtp_params_t *p, const char *name) {
  for (size_t k = 0; k < p->count; k++) {
    if (strcmp(p->items[k].name, name) == 0) {
      memmove(&p->items[k], &p->items[k + 1], (p->count - k - 1) * sizeof p->items[0]);
      p->count--;
      return;
    }
  }
}

/* ---- matchCodecs ---- */

/* JS `params[name] || 0` compared with !==: numbers by value, strings by text. */
static bool param_equal_default0(const mf_rtp_params_t *a, const mf_rtp_params_t *b,
                                 const char *name) {
  const mf_rtp_param_t *pa = mf_rtp_params_find(a, name);
  const mf_rtp_param_t *pb = mf_rtp_params_find(b, name);
  int64_t va = 0, vb = 0;
  bool na = !pa || (pa->type == MF_RTP_PARAM_STRING && pa->str_value[0] == '\0') ||
            mf_rtp_params_get_int(a, name, &va);
  bool nb = !pb || (pb->type == MF_RTP_PARAM_STRING && pb->str_value[0] == '\0') ||
            mf_rtp_params_get_int(b, name, &vb);
  if (na && nb) return va == vb;
  if (na != nb) return false;
  return pa->type == pb->type && strcmp(pa->str_value, pb->str_value) == 0 &&
         pa->real_value == pb->real_value;
}

/* Audio codecs without channels mean 1 (mediasoup's validation default); video ignores
 * channels (validation deletes them). */
static uint8_t effective_channels(const char *mime, uint8_t channels) {
  mf_media_kind_t kind = mime_kind(mime);
  if (kind == MF_MEDIA_KIND_AUDIO) return channels ? channels : 1;
  return 0;
}

bool mf_ortc_match_codecs(const char *mime_a, uint32_t clock_a, uint8_t channels_a,
                          const mf_rtp_params_t *params_a, const char *mime_b,
                          uint32_t clock_b, uint8_t channels_b,
                          const mf_rtp_params_t *params_b, bool strict) {
  if (strcasecmp(mime_a, mime_b) != 0) return false;
  if (clock_a != clock_b) return false;
  if (effective_channels(mime_a, channels_a) != effective_channels(mime_b, channels_b)) {
    return false;
  }
  if (strcasecmp(mime_a, "audio/multiopus") == 0) {
    return param_equal_default0(params_a, params_b, "num_streams") &&
           param_equal_default0(params_a, params_b, "coupled_streams");
  }
  if (strict && (strcasecmp(mime_a, "video/h264") == 0 ||
                 strcasecmp(mime_a, "video/h264-svc") == 0)) {
    if (!param_equal_default0(params_a, params_b, "packetization-mode")) return false;
    mf_h264_profile_t pa, pb;
    int la, lb;
    if (!h264_parse_params(params_a, &pa, &la) || !h264_parse_params(params_b, &pb, &lb)) {
      return false;
    }
    return pa == pb;
  }
  if (strict && strcasecmp(mime_a, "video/vp9") == 0) {
    return param_equal_default0(params_a, params_b, "profile-id");
  }
  return true;
}

/* ---- supported capabilities and default codecs ---- */

static mf_rtp_capabilities_t supported;
static mf_rtp_codec_capability_t default_codecs[5];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void add_fb(mf_rtcp_feedback_t *fb, size_t *count, const char *type, const char *param) {
  mf_rtcp_feedback_t *f = &fb[(*count)++];
  snprintf(f->type, sizeof f->type, "%s", type);
  f->has_parameter = true; /* validated shape: parameter "" when none */
  snprintf(f->parameter, sizeof f->parameter, "%s", param);
}

static mf_rtp_codec_capability_t *add_codec(mf_rtp_capabilities_t *caps, mf_media_kind_t kind,
                                            const char *mime, uint32_t clock,
                                            uint8_t channels) {
  mf_rtp_codec_capability_t *c = &caps->codecs[caps->codec_count++];
  memset(c, 0, sizeof *c);
  c->kind = kind;
  snprintf(c->mime_type, sizeof c->mime_type, "%s", mime);
  c->clock_rate = clock;
  c->channels = channels;
  if (kind == MF_MEDIA_KIND_VIDEO) {
    add_fb(c->rtcp_feedback, &c->rtcp_feedback_count, "nack", "");
    add_fb(c->rtcp_feedback, &c->rtcp_feedback_count, "nack", "pli");
    add_fb(c->rtcp_feedback, &c->rtcp_feedback_count, "ccm", "fir");
    add_fb(c->rtcp_feedback, &c->rtcp_feedback_count, "goog-remb", "");
  }
  add_fb(c->rtcp_feedback, &c->rtcp_feedback_count, "transport-cc", "");
  return c;
}

static void add_ext(mf_rtp_capabilities_t *caps, mf_media_kind_t kind, const char *uri,
                    uint8_t id, mf_rtp_direction_t dir) {
  mf_rtp_header_extension_t *e = &caps->header_extensions[caps->header_extension_count++];
  memset(e, 0, sizeof *e);
  e->kind = kind;
  snprintf(e->uri, sizeof e->uri, "%s", uri);
  e->preferred_id = id;
  e->has_preferred_encrypt = true;
  e->preferred_encrypt = false;
  e->direction = dir;
}

static void build_tables(void) {
  const mf_media_kind_t A = MF_MEDIA_KIND_AUDIO, V = MF_MEDIA_KIND_VIDEO;
  mf_rtp_capabilities_t *s = &supported;
  memset(s, 0, sizeof *s);
  add_codec(s, A, "audio/opus", 48000, 2);
  add_codec(s, V, "video/VP8", 90000, 0);
  mf_rtp_codec_capability_t *c = add_codec(s, V, "video/VP9", 90000, 0);
  mf_rtp_params_set_int(&c->parameters, "profile-id", 0);
  c = add_codec(s, V, "video/VP9", 90000, 0);
  mf_rtp_params_set_int(&c->parameters, "profile-id", 2);
  static const char *const h264_profiles[] = {"42e01f", "4d001f", "640032"};
  for (size_t i = 0; i < 3; i++) {
    c = add_codec(s, V, "video/H264", 90000, 0);
    mf_rtp_params_set_int(&c->parameters, "packetization-mode", 1);
    mf_rtp_params_set_str(&c->parameters, "profile-level-id", h264_profiles[i]);
    mf_rtp_params_set_int(&c->parameters, "level-asymmetry-allowed", 1);
  }
  add_codec(s, V, "video/AV1", 90000, 0);

  add_ext(s, A, MF_RTP_EXT_MID, 1, MF_RTP_DIRECTION_SENDRECV);
  add_ext(s, V, MF_RTP_EXT_MID, 1, MF_RTP_DIRECTION_SENDRECV);
  add_ext(s, V, MF_RTP_EXT_RID, 2, MF_RTP_DIRECTION_RECVONLY);
  add_ext(s, V, MF_RTP_EXT_RRID, 3, MF_RTP_DIRECTION_RECVONLY);
  add_ext(s, A, MF_RTP_EXT_ABS_SEND_TIME, 4, MF_RTP_DIRECTION_SENDRECV);
  add_ext(s, V, MF_RTP_EXT_ABS_SEND_TIME, 4, MF_RTP_DIRECTION_SENDRECV);
  /* As mediasoup: producers of both kinds stamp transport-wide sequence numbers and the
   * router answers with transport-cc feedback (node/bwe/transport_feedback.h), so browsers
   * run their send-side estimator on it; consumers get it for video only (audio recvonly).
   * (Consumers do not stamp the numbers yet: the send-side estimator is wired separately.) */
  add_ext(s, A, MF_RTP_EXT_TRANSPORT_CC, 5, MF_RTP_DIRECTION_RECVONLY);
  add_ext(s, V, MF_RTP_EXT_TRANSPORT_CC, 5, MF_RTP_DIRECTION_SENDRECV);
  add_ext(s, A, MF_RTP_EXT_AUDIO_LEVEL, 10, MF_RTP_DIRECTION_SENDRECV);
  add_ext(s, V, MF_RTP_EXT_VIDEO_ORIENTATION, 11, MF_RTP_DIRECTION_SENDRECV);
  add_ext(s, V, MF_RTP_EXT_TOFFSET, 12, MF_RTP_DIRECTION_SENDRECV);

  /* Default media codecs: what an application would pass to createRouter. */
  mf_rtp_codec_capability_t *d = default_codecs;
  memset(default_codecs, 0, sizeof default_codecs);
  static const struct {
    mf_media_kind_t kind;
    const char *mime;
    uint32_t clock;
    uint8_t channels;
  } defs[5] = {{A, "audio/opus", 48000, 2},
               {V, "video/VP8", 90000, 0},
               {V, "video/VP9", 90000, 0},
               {V, "video/H264", 90000, 0},
               {V, "video/AV1", 90000, 0}};
  for (size_t i = 0; i < 5; i++) {
    d[i].kind = defs[i].kind;
    snprintf(d[i].mime_type, sizeof d[i].mime_type, "%s", defs[i].mime);
    d[i].clock_rate = defs[i].clock;
    d[i].channels = defs[i].channels;
  }
  mf_rtp_params_set_int(&d[2].parameters, "profile-id", 0);
  mf_rtp_params_set_int(&d[3].parameters, "packetization-mode", 1);
  mf_rtp_params_set_str(&d[3].parameters, "profile-level-id", "42e01f");
  mf_rtp_params_set_int(&d[3].parameters, "level-asymmetry-allowed", 1);
}

const mf_rtp_capabilities_t *mf_ortc_supported_rtp_capabilities(void) {
  pthread_once(&tables_once, build_tables);
  return &supported;
}

const mf_rtp_codec_capability_t *mf_ortc_default_media_codecs(size_t *count) {
  pthread_once(&tables_once, build_tables);
  *count = sizeof default_codecs / sizeof default_codecs[0];
  return default_codecs;
}

/* ---- validation ---- */

static mf_err_t validate_codec_common(const char *what, const char *mime, uint8_t *channels,
                                      const mf_rtp_params_t *params, mf_rtcp_feedback_t *fb,
                                      size_t fb_count, mf_media_kind_t *kind_out, char *err,
                                      size_t errsz) {
  mf_media_kind_t kind = mime_kind(mime);
  if (kind == MF_MEDIA_KIND_NONE) {
    return fail(err, errsz, MF_ERR_INVALID_ARG, "%s: invalid codec.mimeType [%s]", what, mime);
  }
  if (kind_out) *kind_out = kind;
  if (kind == MF_MEDIA_KIND_AUDIO) {
    if (*channels == 0) *channels = 1;
  } else {
    *channels = 0;
  }
  const mf_rtp_param_t *apt = mf_rtp_params_find(params, "apt");
  if (apt && apt->type == MF_RTP_PARAM_STRING) {
    return fail(err, errsz, MF_ERR_INVALID_ARG, "%s: invalid codec apt parameter", what);
  }
  if (mf_ortc_is_rtx_mime(mime)) {
    int64_t v;
    if (!mf_rtp_params_get_int(params, "apt", &v) || v < 0 || v > 127) {
      return fail(err, errsz, MF_ERR_INVALID_ARG, "%s: rtx codec needs an apt parameter 0..127",
                  what);
    }
  }
  for (size_t i = 0; i < fb_count; i++) fb[i].has_parameter = true;
  return MF_OK;
}

mf_err_t mf_ortc_validate_rtp_capabilities(mf_rtp_capabilities_t *caps, char *err,
                                           size_t errsz) {
  char what[48];
  for (size_t i = 0; i < caps->codec_count; i++) {
    mf_rtp_codec_capability_t *c = &caps->codecs[i];
    snprintf(what, sizeof what, "codecs[%zu]", i);
    mf_err_t rc = validate_codec_common(what, c->mime_type, &c->channels, &c->parameters,
                                        c->rtcp_feedback, c->rtcp_feedback_count, &c->kind,
                                        err, errsz);
    if (rc != MF_OK) return rc;
  }
  for (size_t i = 0; i < caps->header_extension_count; i++) {
    mf_rtp_header_extension_t *e = &caps->header_extensions[i];
    if (e->kind != MF_MEDIA_KIND_AUDIO && e->kind != MF_MEDIA_KIND_VIDEO) {
      return fail(err, errsz, MF_ERR_INVALID_ARG, "headerExtensions[%zu]: invalid ext.kind", i);
    }
    if (e->uri[0] == '\0' || e->preferred_id == 0) {
      return fail(err, errsz, MF_ERR_INVALID_ARG, "headerExtensions[%zu]: missing ext.uri or id",
                  i);
    }
    if (!e->has_preferred_encrypt) {
      e->has_preferred_encrypt = true;
      e->preferred_encrypt = false;
    }
    if (e->direction == MF_RTP_DIRECTION_NONE) e->direction = MF_RTP_DIRECTION_SENDRECV;
  }
  return MF_OK;
}

mf_err_t mf_ortc_validate_rtp_parameters(mf_rtp_parameters_t *params, char *err,
                                         size_t errsz) {
  char what[48];
  for (size_t i = 0; i < params->codec_count; i++) {
    mf_rtp_codec_parameters_t *c = &params->codecs[i];
    snprintf(what, sizeof what, "codecs[%zu]", i);
    mf_err_t rc = validate_codec_common(what, c->mime_type, &c->channels, &c->parameters,
                                        c->rtcp_feedback, c->rtcp_feedback_count, NULL, err,
                                        errsz);
    if (rc != MF_OK) return rc;
  }
  for (size_t i = 0; i < params->header_extension_count; i++) {
    mf_rtp_header_extension_parameters_t *e = &params->header_extensions[i];
    if (e->uri[0] == '\0' || e->id == 0) {
      return fail(err, errsz, MF_ERR_INVALID_ARG, "headerExtensions[%zu]: missing ext.uri or id",
                  i);
    }
    if (!e->has_encrypt) {
      e->has_encrypt = true;
      e->encrypt = false;
    }
    e->has_parameters = true;
  }
  for (size_t i = 0; i < params->encoding_count; i++) {
    mf_rtp_encoding_parameters_t *e = &params->encodings[i];
    /* mediasoup: `if (!encoding.dtx || ...) encoding.dtx = false` */
    e->has_dtx = true;
  }
  params->has_rtcp = true;
  /* mediasoup: `if (!rtcp.reducedSize || ...) rtcp.reducedSize = true`, i.e. always true */
  params->rtcp.has_reduced_size = true;
  params->rtcp.reduced_size = true;
  return MF_OK;
}

/* ---- router ---- */

static const uint8_t dynamic_pts[] = {100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110,
                                      111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121,
                                      122, 123, 124, 125, 126, 127, 96,  97,  98,  99};

static bool caps_uses_pt(const mf_rtp_capabilities_t *caps, uint8_t pt) {
  for (size_t i = 0; i < caps->codec_count; i++) {
    if (caps->codecs[i].has_preferred_payload_type &&
        caps->codecs[i].preferred_payload_type == pt)
      return true;
  }
  return false;
}

static bool take_dynamic_pt(bool taken[128], uint8_t *pt) {
  for (size_t i = 0; i < sizeof dynamic_pts; i++) {
    if (!taken[dynamic_pts[i]]) {
      taken[dynamic_pts[i]] = true;
      *pt = dynamic_pts[i];
      return true;
    }
  }
  return false;
}

mf_err_t mf_ortc_generate_router_rtp_capabilities(const mf_rtp_codec_capability_t *media_codecs,
                                                  size_t n, mf_rtp_capabilities_t *out,
                                                  char *err, size_t errsz) {
  const mf_rtp_capabilities_t *sup = mf_ortc_supported_rtp_capabilities();
  memset(out, 0, sizeof *out);
  out->header_extension_count = sup->header_extension_count;
  memcpy(out->header_extensions, sup->header_extensions, sizeof out->header_extensions);
  bool taken[128] = {false};
  for (size_t i = 0; i < n; i++) {
    mf_rtp_codec_capability_t media = media_codecs[i];
    char what[48];
    snprintf(what, sizeof what, "mediaCodecs[%zu]", i);
    mf_err_t rc = validate_codec_common(what, media.mime_type, &media.channels,
                                        &media.parameters, media.rtcp_feedback,
                                        media.rtcp_feedback_count, &media.kind, err, errsz);
    if (rc != MF_OK) return rc;
    const mf_rtp_codec_capability_t *match = NULL;
    for (size_t j = 0; j < sup->codec_count && !match; j++) {
      const mf_rtp_codec_capability_t *s = &sup->codecs[j];
      if (mf_ortc_match_codecs(media.mime_type, media.clock_rate, media.channels,
                               &media.parameters, s->mime_type, s->clock_rate, s->channels,
                               &s->parameters, false))
        match = s;
    }
    if (!match) {
      return fail(err, errsz, MF_ERR_UNSUPPORTED, "media codec not supported [mimeType:%s]",
                  media.mime_type);
    }
    if (out->codec_count + (match->kind == MF_MEDIA_KIND_VIDEO ? 2 : 1) > MF_RTP_MAX_CODECS) {
      return fail(err, errsz, MF_ERR_LIMIT, "too many media codecs (max %d with rtx)",
                  MF_RTP_MAX_CODECS);
    }
    mf_rtp_codec_capability_t codec = *match;
    if (media.has_preferred_payload_type) {
      codec.has_preferred_payload_type = true;
      codec.preferred_payload_type = media.preferred_payload_type;
      taken[media.preferred_payload_type & 0x7f] = true;
    } else if (!codec.has_preferred_payload_type) {
      if (!take_dynamic_pt(taken, &codec.preferred_payload_type)) {
        return fail(err, errsz, MF_ERR_LIMIT, "cannot allocate more dynamic codec payload types");
      }
      codec.has_preferred_payload_type = true;
    }
    if (caps_uses_pt(out, codec.preferred_payload_type)) {
      return fail(err, errsz, MF_ERR_INVALID_ARG,
                  "duplicated codec.preferredPayloadType [%u, mimeType:%s]",
                  codec.preferred_payload_type, media.mime_type);
    }
    /* Our supported list spells out profiles (VP9 profile-id, H264 packetization-mode and
     * profile-level-id) where mediasoup's has one generic entry; drop those so the result
     * is mediasoup's { ...supported.parameters, ...mediaCodec.parameters }. */
    params_remove(&codec.parameters, "profile-id");
    params_remove(&codec.parameters, "packetization-mode");
    params_remove(&codec.parameters, "profile-level-id");
    for (size_t k = 0; k < media.parameters.count; k++) {
      const mf_rtp_param_t *p = &media.parameters.items[k];
      mf_err_t prc = MF_OK;
      const mf_rtp_param_t *existing = mf_rtp_params_find(&codec.parameters, p->name);
      if (existing) {
        *(mf_rtp_param_t *)existing = *p;
      } else if (codec.parameters.count < MF_RTP_MAX_CODEC_PARAMS) {
        codec.parameters.items[codec.parameters.count++] = *p;
      } else {
        prc = MF_ERR_LIMIT;
      }
      if (prc != MF_OK) {
        return fail(err, errsz, MF_ERR_LIMIT, "%s: too many parameters (max %d)", what,
                    MF_RTP_MAX_CODEC_PARAMS);
      }
    }
    out->codecs[out->codec_count++] = codec;
    if (codec.kind == MF_MEDIA_KIND_VIDEO) {
      mf_rtp_codec_capability_t *rtx = &out->codecs[out->codec_count];
      memset(rtx, 0, sizeof *rtx);
      if (!take_dynamic_pt(taken, &rtx->preferred_payload_type)) {
        return fail(err, errsz, MF_ERR_LIMIT, "cannot allocate more dynamic codec payload types");
      }
      out->codec_count++;
      rtx->kind = MF_MEDIA_KIND_VIDEO;
      snprintf(rtx->mime_type, sizeof rtx->mime_type, "video/rtx");
      rtx->has_preferred_payload_type = true;
      rtx->clock_rate = codec.clock_rate;
      mf_rtp_params_set_int(&rtx->parameters, "apt", codec.preferred_payload_type);
    }
  }
  return MF_OK;
}

/* ---- producer ---- */

static const mf_rtp_codec_capability_t *find_cap_rtx(const mf_rtp_capabilities_t *caps,
                                                     uint8_t apt) {
  for (size_t i = 0; i < caps->codec_count; i++) {
    int64_t v;
    if (mf_ortc_is_rtx_mime(caps->codecs[i].mime_type) &&
        mf_rtp_params_get_int(&caps->codecs[i].parameters, "apt", &v) && v == apt)
      return &caps->codecs[i];
  }
  return NULL;
}

mf_err_t mf_ortc_get_producer_rtp_parameters_mapping(mf_rtp_parameters_t *params,
                                                     const mf_rtp_capabilities_t *caps,
                                                     mf_rtp_mapping_t *out, char *err,
                                                     size_t errsz) {
  memset(out, 0, sizeof *out);
  /* Which router codec each params codec maps to (index into caps->codecs). */
  int cap_of[MF_RTP_MAX_CODECS];
  size_t ncodecs = params->codec_count < MF_RTP_MAX_CODECS ? params->codec_count
                                                           : MF_RTP_MAX_CODECS;
  if (ncodecs == 0) return fail(err, errsz, MF_ERR_INVALID_ARG, "empty rtpParameters.codecs");
  for (size_t i = 0; i < ncodecs; i++) {
    cap_of[i] = -1;
    for (size_t j = 0; j < i; j++) {
      if (params->codecs[j].payload_type == params->codecs[i].payload_type) {
        return fail(err, errsz, MF_ERR_INVALID_ARG, "duplicated codec payloadType %u",
                    params->codecs[i].payload_type);
      }
    }
  }
  for (size_t i = 0; i < ncodecs; i++) {
    mf_rtp_codec_parameters_t *codec = &params->codecs[i];
    if (mf_ortc_is_rtx_mime(codec->mime_type)) continue;
    for (size_t j = 0; j < caps->codec_count; j++) {
      const mf_rtp_codec_capability_t *cap = &caps->codecs[j];
      if (mf_ortc_match_codecs(codec->mime_type, codec->clock_rate, codec->channels,
                               &codec->parameters, cap->mime_type, cap->clock_rate,
                               cap->channels, &cap->parameters, true)) {
        cap_of[i] = (int)j;
        break;
      }
    }
    if (cap_of[i] < 0) {
      return fail(err, errsz, MF_ERR_UNSUPPORTED, "unsupported codec [mimeType:%s, payloadType:%u]",
                  codec->mime_type, codec->payload_type);
    }
    /* matchCodecs({modify: true}): the producer's H264 codec takes the answer's
     * profile-level-id (or loses it when neither side had one). */
    const mf_rtp_codec_capability_t *cap = &caps->codecs[cap_of[i]];
    if (strcasecmp(codec->mime_type, "video/h264") == 0 ||
        strcasecmp(codec->mime_type, "video/h264-svc") == 0) {
      char answer[8];
      mf_rtp_params_t *p = &codec->parameters;
      if (h264_answer(p, &cap->parameters, answer)) {
        mf_rtp_params_set_str(p, "profile-level-id", answer);
      } else {
        params_remove(p, "profile-level-id");
      }
    }
  }
  for (size_t i = 0; i < ncodecs; i++) {
    const mf_rtp_codec_parameters_t *codec = &params->codecs[i];
    if (!mf_ortc_is_rtx_mime(codec->mime_type)) continue;
    int64_t apt = -1;
    mf_rtp_params_get_int(&codec->parameters, "apt", &apt);
    int media = -1;
    for (size_t j = 0; j < ncodecs; j++) {
      if (params->codecs[j].payload_type == apt &&
          !mf_ortc_is_rtx_mime(params->codecs[j].mime_type))
        media = (int)j;
    }
    if (media < 0) {
      return fail(err, errsz, MF_ERR_INVALID_ARG, "missing media codec found for RTX PT %u",
                  codec->payload_type);
    }
    uint8_t cap_pt = caps->codecs[cap_of[media]].preferred_payload_type;
    const mf_rtp_codec_capability_t *rtx = find_cap_rtx(caps, cap_pt);
    if (!rtx) {
      return fail(err, errsz, MF_ERR_UNSUPPORTED, "no RTX codec for capability codec PT %u",
                  cap_pt);
    }
    cap_of[i] = (int)(rtx - caps->codecs);
  }
  /* mediasoup's Map keeps insertion order: media codecs first, then rtx. */
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < ncodecs; i++) {
      if (mf_ortc_is_rtx_mime(params->codecs[i].mime_type) != (pass == 1)) continue;
      mf_rtp_mapping_codec_t *m = &out->codecs[out->codec_count++];
      m->payload_type = params->codecs[i].payload_type;
      m->mapped_payload_type = caps->codecs[cap_of[i]].preferred_payload_type;
    }
  }
  if (params->encoding_count == 0) {
    return fail(err, errsz, MF_ERR_INVALID_ARG, "empty rtpParameters.encodings");
  }
  uint32_t mapped = mf_ortc_random_ssrc();
  for (size_t i = 0; i < params->encoding_count && i < MF_RTP_MAX_ENCODINGS; i++) {
    const mf_rtp_encoding_parameters_t *e = &params->encodings[i];
    mf_rtp_mapping_encoding_t *m = &out->encodings[out->encoding_count++];
    m->mapped_ssrc = mapped++;
    memcpy(m->rid, e->rid, sizeof m->rid);
    m->has_ssrc = e->has_ssrc;
    m->ssrc = e->ssrc;
    memcpy(m->scalability_mode, e->scalability_mode, sizeof m->scalability_mode);
  }
  return MF_OK;
}

mf_err_t mf_ortc_get_consumable_rtp_parameters(mf_media_kind_t kind,
                                               const mf_rtp_parameters_t *params,
                                               const mf_rtp_capabilities_t *caps,
                                               const mf_rtp_mapping_t *mapping,
                                               mf_rtp_parameters_t *out, char *err,
                                               size_t errsz) {
  memset(out, 0, sizeof *out);
  for (size_t i = 0; i < params->codec_count && i < MF_RTP_MAX_CODECS; i++) {
    const mf_rtp_codec_parameters_t *codec = &params->codecs[i];
    if (mf_ortc_is_rtx_mime(codec->mime_type)) continue;
    const mf_rtp_codec_capability_t *cap = NULL;
    for (size_t m = 0; m < mapping->codec_count && !cap; m++) {
      if (mapping->codecs[m].payload_type != codec->payload_type) continue;
      for (size_t j = 0; j < caps->codec_count; j++) {
        if (caps->codecs[j].preferred_payload_type == mapping->codecs[m].mapped_payload_type) {
          cap = &caps->codecs[j];
          break;
        }
      }
    }
    if (!cap) {
      return fail(err, errsz, MF_ERR_INVALID_ARG, "no mapped router codec for payloadType %u",
                  codec->payload_type);
    }
    const mf_rtp_codec_capability_t *rtx = find_cap_rtx(caps, cap->preferred_payload_type);
    if (out->codec_count + (rtx ? 2 : 1) > MF_RTP_MAX_CODECS) {
      return fail(err, errsz, MF_ERR_LIMIT, "too many codecs with rtx (max %d)",
                  MF_RTP_MAX_CODECS);
    }
    mf_rtp_codec_parameters_t *c = &out->codecs[out->codec_count++];
    memcpy(c->mime_type, cap->mime_type, sizeof c->mime_type);
    c->payload_type = cap->preferred_payload_type;
    c->clock_rate = cap->clock_rate;
    c->channels = cap->channels;
    c->parameters = codec->parameters; /* keep the producer's codec parameters */
    c->rtcp_feedback_count = cap->rtcp_feedback_count;
    memcpy(c->rtcp_feedback, cap->rtcp_feedback, sizeof c->rtcp_feedback);
    if (rtx) {
      mf_rtp_codec_parameters_t *r = &out->codecs[out->codec_count++];
      memcpy(r->mime_type, rtx->mime_type, sizeof r->mime_type);
      r->payload_type = rtx->preferred_payload_type;
      r->clock_rate = rtx->clock_rate;
      r->parameters = rtx->parameters;
      r->rtcp_feedback_count = rtx->rtcp_feedback_count;
      memcpy(r->rtcp_feedback, rtx->rtcp_feedback, sizeof r->rtcp_feedback);
    }
  }
  for (size_t i = 0; i < caps->header_extension_count; i++) {
    const mf_rtp_header_extension_t *ext = &caps->header_extensions[i];
    if (ext->kind != kind || (ext->direction != MF_RTP_DIRECTION_SENDRECV &&
                              ext->direction != MF_RTP_DIRECTION_SENDONLY))
      continue;
    mf_rtp_header_extension_parameters_t *e =
        &out->header_extensions[out->header_extension_count++];
    memcpy(e->uri, ext->uri, sizeof e->uri);
    e->id = ext->preferred_id;
    e->has_encrypt = true;
    e->encrypt = ext->preferred_encrypt;
    e->has_parameters = true;
  }
  if (mapping->encoding_count != params->encoding_count) {
    return fail(err, errsz, MF_ERR_INVALID_ARG, "mapping has %zu encodings, parameters %zu",
                mapping->encoding_count, params->encoding_count);
  }
  for (size_t i = 0; i < params->encoding_count && i < MF_RTP_MAX_ENCODINGS; i++) {
    mf_rtp_encoding_parameters_t *e = &out->encodings[out->encoding_count++];
    *e = params->encodings[i];
    e->rid[0] = '\0';
    e->has_rtx = false;
    e->rtx_ssrc = 0;
    e->has_codec_payload_type = false;
    e->codec_payload_type = 0;
    e->has_ssrc = true;
    e->ssrc = mapping->encodings[i].mapped_ssrc;
  }
  out->has_rtcp = true;
  memcpy(out->rtcp.cname, params->rtcp.cname, sizeof out->rtcp.cname);
  out->rtcp.has_reduced_size = true;
  out->rtcp.reduced_size = true;
  out->rtcp.has_mux = true;
  out->rtcp.mux = true;
  return MF_OK;
}

/* ---- consumer ---- */

static const mf_rtp_codec_capability_t *find_remote_codec(const mf_rtp_capabilities_t *caps,
                                                          const mf_rtp_codec_parameters_t *c) {
  for (size_t j = 0; j < caps->codec_count; j++) {
    const mf_rtp_codec_capability_t *cap = &caps->codecs[j];
    if (mf_ortc_match_codecs(cap->mime_type, cap->clock_rate, cap->channels, &cap->parameters,
                             c->mime_type, c->clock_rate, c->channels, &c->parameters, true))
      return cap;
  }
  return NULL;
}

bool mf_ortc_can_consume(const mf_rtp_parameters_t *consumable,
                         const mf_rtp_capabilities_t *remote_caps) {
  /* mediasoup: the first matching codec must be a media codec. */
  for (size_t i = 0; i < consumable->codec_count && i < MF_RTP_MAX_CODECS; i++) {
    if (find_remote_codec(remote_caps, &consumable->codecs[i])) {
      return !mf_ortc_is_rtx_mime(consumable->codecs[i].mime_type);
    }
  }
  return false;
}

static void filter_fb(mf_rtp_codec_parameters_t *c, const char *drop1, const char *drop2) {
  size_t n = 0;
  for (size_t k = 0; k < c->rtcp_feedback_count; k++) {
    const char *t = c->rtcp_feedback[k].type;
    if ((drop1 && strcmp(t, drop1) == 0) || (drop2 && strcmp(t, drop2) == 0)) continue;
    c->rtcp_feedback[n++] = c->rtcp_feedback[k];
  }
  c->rtcp_feedback_count = n;
}

mf_err_t mf_ortc_get_consumer_rtp_parameters(const mf_rtp_parameters_t *consumable,
                                             const mf_rtp_capabilities_t *remote_caps,
                                             bool pipe, bool enable_rtx,
                                             mf_rtp_parameters_t *out, char *err,
                                             size_t errsz) {
  memset(out, 0, sizeof *out);
  for (size_t i = 0; i < consumable->codec_count && i < MF_RTP_MAX_CODECS; i++) {
    const mf_rtp_codec_parameters_t *codec = &consumable->codecs[i];
    if (!enable_rtx && mf_ortc_is_rtx_mime(codec->mime_type)) continue;
    const mf_rtp_codec_capability_t *cap = find_remote_codec(remote_caps, codec);
    if (!cap) continue;
    mf_rtp_codec_parameters_t *c = &out->codecs[out->codec_count++];
    *c = *codec;
    c->rtcp_feedback_count = 0;
    for (size_t k = 0; k < cap->rtcp_feedback_count && k < MF_RTP_MAX_RTCP_FEEDBACK; k++) {
      const mf_rtcp_feedback_t *fb = &cap->rtcp_feedback[k];
      /* without rtx, plain nack is useless; nack pli stays */
      if (!enable_rtx && strcmp(fb->type, "nack") == 0 && fb->parameter[0] == '\0') continue;
      mf_rtcp_feedback_t *dst = &c->rtcp_feedback[c->rtcp_feedback_count++];
      *dst = *fb;
      dst->has_parameter = true; /* remote caps pass through validation in mediasoup */
    }
  }
  /* Drop rtx codecs whose media codec did not survive. */
  bool rtx_supported = false;
  size_t n = 0;
  for (size_t i = 0; i < out->codec_count; i++) {
    const mf_rtp_codec_parameters_t *c = &out->codecs[i];
    if (mf_ortc_is_rtx_mime(c->mime_type)) {
      int64_t apt = -1;
      bool found = false;
      mf_rtp_params_get_int(&c->parameters, "apt", &apt);
      for (size_t j = 0; j < out->codec_count; j++) {
        if (out->codecs[j].payload_type == apt) found = true;
      }
      if (!found) continue;
      rtx_supported = true;
    }
    if (n != i) out->codecs[n] = *c;
    n++;
  }
  out->codec_count = n;
  if (n == 0 || mf_ortc_is_rtx_mime(out->codecs[0].mime_type)) {
    memset(out, 0, sizeof *out);
    return fail(err, errsz, MF_ERR_UNSUPPORTED, "no compatible media codecs");
  }
  bool has_tcc = false, has_abs = false;
  for (size_t i = 0; i < consumable->header_extension_count; i++) {
    const mf_rtp_header_extension_parameters_t *ext = &consumable->header_extensions[i];
    bool supported_by_remote = false;
    for (size_t j = 0; j < remote_caps->header_extension_count; j++) {
      const mf_rtp_header_extension_t *cap = &remote_caps->header_extensions[j];
      if (cap->preferred_id == ext->id && strcmp(cap->uri, ext->uri) == 0) {
        supported_by_remote = true;
        break;
      }
    }
    if (!supported_by_remote) continue;
    out->header_extensions[out->header_extension_count++] = *ext;
    if (strcmp(ext->uri, MF_RTP_EXT_TRANSPORT_CC) == 0) has_tcc = true;
    if (strcmp(ext->uri, MF_RTP_EXT_ABS_SEND_TIME) == 0) has_abs = true;
  }
  /* Transport-CC when available, REMB otherwise, neither without their extension. */
  for (size_t i = 0; i < out->codec_count; i++) {
    if (has_tcc) {
      filter_fb(&out->codecs[i], "goog-remb", NULL);
    } else if (has_abs) {
      filter_fb(&out->codecs[i], "transport-cc", NULL);
    } else {
      filter_fb(&out->codecs[i], "transport-cc", "goog-remb");
    }
  }
  if (!pipe) {
    mf_rtp_encoding_parameters_t *e = &out->encodings[0];
    out->encoding_count = 1;
    e->has_ssrc = true;
    e->ssrc = mf_ortc_random_ssrc();
    if (rtx_supported) {
      e->has_rtx = true;
      e->rtx_ssrc = e->ssrc + 1;
    }
    const char *mode = NULL;
    uint32_t max_bitrate = 0;
    for (size_t i = 0; i < consumable->encoding_count && i < MF_RTP_MAX_ENCODINGS; i++) {
      const mf_rtp_encoding_parameters_t *ce = &consumable->encodings[i];
      if (!mode && ce->scalability_mode[0]) mode = ce->scalability_mode;
      if (ce->has_max_bitrate && ce->max_bitrate > max_bitrate) max_bitrate = ce->max_bitrate;
    }
    if (consumable->encoding_count > 1) {
      /* simulcast: spatial layers are the encodings */
      mf_scalability_mode_t sm = mf_ortc_parse_scalability_mode(mode);
      unsigned spatial = (unsigned)(consumable->encoding_count & 0xff);
      snprintf(e->scalability_mode, sizeof e->scalability_mode, "L%uT%u", spatial,
               sm.temporal_layers % 100u);
    } else if (mode) {
      memcpy(e->scalability_mode, mode, sizeof e->scalability_mode);
    }
    if (max_bitrate) {
      e->has_max_bitrate = true;
      e->max_bitrate = max_bitrate;
    }
  } else {
    uint32_t base = mf_ortc_random_ssrc(), base_rtx = mf_ortc_random_ssrc();
    for (size_t i = 0; i < consumable->encoding_count && i < MF_RTP_MAX_ENCODINGS; i++) {
      mf_rtp_encoding_parameters_t *e = &out->encodings[out->encoding_count++];
      *e = consumable->encodings[i];
      e->has_ssrc = true;
      e->ssrc = base + (uint32_t)i;
      e->has_rtx = rtx_supported;
      e->rtx_ssrc = rtx_supported ? base_rtx + (uint32_t)i : 0;
    }
  }
  out->has_rtcp = consumable->has_rtcp;
  out->rtcp = consumable->rtcp;
  MF_LOG_DEBUG("consumer parameters: %zu codecs, %zu header extensions, rtx %s", out->codec_count,
               out->header_extension_count, rtx_supported ? "on" : "off");
  return MF_OK;
}

mf_err_t mf_ortc_parse_media_codecs(const json_t *json, const char *what,
                                    mf_rtp_codec_capability_t **out, size_t *count,
                                    char *err, size_t errsz) {
  *out = NULL;
  *count = 0;
  mf_rtp_codec_capability_t *codecs = calloc(MF_RTP_MAX_CODECS, sizeof *codecs);
  mf_rtp_capabilities_t *probe = malloc(sizeof *probe);
  size_t n = MF_RTP_MAX_CODECS; /* in: capacity, out: entries */
  mf_err_t e = codecs && probe ? MF_OK : MF_ERR_NO_MEMORY;
  if (e) snprintf(err, errsz, "out of memory");
  if (!e) e = mf_rtp_codec_capabilities_from_json_array(json, what, codecs, &n, err, errsz);
  if (!e) e = mf_ortc_generate_router_rtp_capabilities(codecs, n, probe, err, errsz);
  free(probe);
  if (e) {
    free(codecs);
    return e;
  }
  *out = codecs;
  *count = n;
  return MF_OK;
}
