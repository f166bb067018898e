/* JSON <-> structs for mediasoup's RTP parameter model. Parsing checks shape, types and
 * our fixed limits; ortc.c checks semantics. Error texts name the full path of the
 * offending field so an API client can fix its request without reading our source. */
#include "node/rtp_parameters.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 192

typedef struct {
  char *err;
  size_t errsz;
} pctx_t;

__attribute__((format(printf, 3, 4))) static mf_err_t fail(const pctx_t *c, mf_err_t code,
                                                           const char *fmt, ...) {
  if (c->err && c->errsz > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errsz, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* Field paths may be cut when a caller's `what` is very long; that only shortens a
 * message. vsnprintf keeps -Wformat-truncation quiet about it. */
__attribute__((format(printf, 3, 4))) static void pathf(char *dst, size_t n, const char *fmt,
                                                        ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dst, n, fmt, ap);
  va_end(ap);
}

const char *mf_media_kind_str(mf_media_kind_t kind) {
  switch (kind) {
    case MF_MEDIA_KIND_AUDIO: return "audio";
    case MF_MEDIA_KIND_VIDEO: return "video";
    default: return "";
  }
}

mf_media_kind_t mf_media_kind_parse(const char *text) {
  if (!text) return MF_MEDIA_KIND_NONE;
  if (strcmp(text, "audio") == 0) return MF_MEDIA_KIND_AUDIO;
  if (strcmp(text, "video") == 0) return MF_MEDIA_KIND_VIDEO;
  return MF_MEDIA_KIND_NONE;
}

static const char *const direction_names[] = {"", "sendrecv", "sendonly", "recvonly",
                                              "inactive"};

const char *mf_rtp_direction_str(mf_rtp_direction_t dir) {
  if ((unsigned)dir >= sizeof direction_names / sizeof direction_names[0]) return "";
  return direction_names[dir];
}

/* A double that is a whole number a JS client could have meant as an integer (no libm:
 * mf_node_core does not link it). */
static bool is_integral(double d) {
  return d > -9e15 && d < 9e15 && (double)(int64_t)d == d;
}

/* ---- parameters map ---- */

const mf_rtp_param_t *mf_rtp_params_find(const mf_rtp_params_t *params, const char *name) {
  if (!params || !name) return NULL;
  for (size_t i = 0; i < params->count && i < MF_RTP_MAX_CODEC_PARAMS; i++) {
    if (strcmp(params->items[i].name, name) == 0) return &params->items[i];
  }
  return NULL;
}

bool mf_rtp_params_get_int(const mf_rtp_params_t *params, const char *name, int64_t *out) {
  const mf_rtp_param_t *p = mf_rtp_params_find(params, name);
  if (!p) return false;
  if (p->type == MF_RTP_PARAM_INT) {
    *out = p->int_value;
    return true;
  }
  if (p->type == MF_RTP_PARAM_REAL) {
    double d = p->real_value;
    if (!is_integral(d)) return false;
    *out = (int64_t)d;
    return true;
  }
  const char *s = p->str_value;
  if (*s == '\0') return false;
  char *end = NULL;
  long long v = strtoll(s, &end, 10);
  if (*end != '\0' || (*s != '-' && (*s < '0' || *s > '9'))) return false;
  *out = v;
  return true;
}

static mf_rtp_param_t *params_slot(mf_rtp_params_t *params, const char *name, mf_err_t *rc) {
  if (strlen(name) >= MF_RTP_PARAM_NAME_MAX) {
    *rc = MF_ERR_INVALID_ARG;
    return NULL;
  }
  for (size_t i = 0; i < params->count; i++) {
    if (strcmp(params->items[i].name, name) == 0) return &params->items[i];
  }
  if (params->count >= MF_RTP_MAX_CODEC_PARAMS) {
    *rc = MF_ERR_LIMIT;
    return NULL;
  }
  mf_rtp_param_t *p = &params->items[params->count++];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  return p;
}

mf_err_t mf_rtp_params_set_int(mf_rtp_params_t *params, const char *name, int64_t value) {
  mf_err_t rc = MF_OK;
  mf_rtp_param_t *p = params_slot(params, name, &rc);
  if (!p) return rc;
  p->type = MF_RTP_PARAM_INT;
  p->int_value = value;
  p->real_value = 0;
  p->str_value[0] = '\0';
  return MF_OK;
}

mf_err_t mf_rtp_params_set_str(mf_rtp_params_t *params, const char *name, const char *value) {
  if (strlen(value) >= MF_RTP_PARAM_VALUE_MAX) return MF_ERR_INVALID_ARG;
  mf_err_t rc = MF_OK;
  mf_rtp_param_t *p = params_slot(params, name, &rc);
  if (!p) return rc;
  p->type = MF_RTP_PARAM_STRING;
  p->int_value = 0;
  p->real_value = 0;
  snprintf(p->str_value, sizeof p->str_value, "%s", value);
  return MF_OK;
}

/* ---- field readers: absent and JSON null both mean "unset" for optional fields, as
 * mediasoup's falsy checks treat them ---- */

static const json_t *field(const json_t *obj, const char *key) {
  const json_t *v = json_object_get(obj, key);
  return (v && !json_is_null(v)) ? v : NULL;
}

static mf_err_t get_string(const pctx_t *c, const json_t *obj, const char *path,
                           const char *key, bool required, char *dst, size_t dstsz,
                           bool *present) {
  const json_t *v = field(obj, key);
  dst[0] = '\0';
  if (present) *present = false;
  if (!v) {
    if (required) return fail(c, MF_ERR_PARSE, "%s.%s must be a non-empty string", path, key);
    return MF_OK;
  }
  if (!json_is_string(v) || (required && json_string_length(v) == 0)) {
    return fail(c, MF_ERR_PARSE, "%s.%s must be a %sstring", path, key,
                required ? "non-empty " : "");
  }
  if (json_string_length(v) >= dstsz || strlen(json_string_value(v)) != json_string_length(v)) {
    return fail(c, MF_ERR_LIMIT, "%s.%s is too long (max %zu chars)", path, key, dstsz - 1);
  }
  memcpy(dst, json_string_value(v), json_string_length(v) + 1);
  if (present) *present = true;
  return MF_OK;
}

static mf_err_t get_uint(const pctx_t *c, const json_t *obj, const char *path, const char *key,
                         bool required, uint64_t min, uint64_t max, uint64_t *out,
                         bool *present) {
  const json_t *v = field(obj, key);
  if (present) *present = false;
  *out = 0;
  if (!v) {
    if (!required) return MF_OK;
  } else if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    if (i >= 0 && (uint64_t)i >= min && (uint64_t)i <= max) {
      *out = (uint64_t)i;
      if (present) *present = true;
      return MF_OK;
    }
  }
  return fail(c, MF_ERR_PARSE, "%s.%s must be an integer %" PRIu64 "..%" PRIu64, path, key,
              min, max);
}

static mf_err_t get_bool(const pctx_t *c, const json_t *obj, const char *path, const char *key,
                         bool *out, bool *present) {
  const json_t *v = field(obj, key);
  *present = false;
  *out = false;
  if (!v) return MF_OK;
  if (!json_is_boolean(v)) return fail(c, MF_ERR_PARSE, "%s.%s must be a boolean", path, key);
  *out = json_is_true(v);
  *present = true;
  return MF_OK;
}

static mf_err_t get_number(const pctx_t *c, const json_t *obj, const char *path,
                           const char *key, double min, double *out, bool *present) {
  const json_t *v = field(obj, key);
  *present = false;
  *out = 0;
  if (!v) return MF_OK;
  if (!json_is_number(v) || !(json_number_value(v) >= min) || !isfinite(json_number_value(v))) {
    return fail(c, MF_ERR_PARSE, "%s.%s must be a number >= %g", path, key, min);
  }
  *out = json_number_value(v);
  *present = true;
  return MF_OK;
}

static mf_err_t get_array(const pctx_t *c, const json_t *obj, const char *path,
                          const char *key, bool required, size_t max, const json_t **out) {
  const json_t *v = field(obj, key);
  *out = NULL;
  if (!v) {
    if (required) return fail(c, MF_ERR_PARSE, "%s.%s must be an array", path, key);
    return MF_OK;
  }
  if (!json_is_array(v)) return fail(c, MF_ERR_PARSE, "%s.%s must be an array", path, key);
  if (json_array_size(v) > max) {
    return fail(c, MF_ERR_LIMIT, "%s.%s has too many entries (max %zu)", path, key, max);
  }
  *out = v;
  return MF_OK;
}

static mf_err_t parse_param_map(const pctx_t *c, const json_t *obj, const char *path,
                                const char *key, mf_rtp_param_t *items, size_t max,
                                size_t *count, bool *present) {
  const json_t *v = field(obj, key);
  *count = 0;
  if (present) *present = false;
  if (!v) return MF_OK;
  if (!json_is_object(v)) return fail(c, MF_ERR_PARSE, "%s.%s must be an object", path, key);
  if (json_object_size(v) > max) {
    return fail(c, MF_ERR_LIMIT, "%s.%s has too many entries (max %zu)", path, key, max);
  }
  const char *name;
  json_t *val;
  size_t n = 0;
  json_object_foreach((json_t *)v, name, val) {
    if (n >= max) break;
    mf_rtp_param_t *p = &items[n];
    memset(p, 0, sizeof *p);
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen >= MF_RTP_PARAM_NAME_MAX) {
      return fail(c, MF_ERR_LIMIT, "%s.%s has a name that is empty or too long (max %d chars)",
                  path, key, MF_RTP_PARAM_NAME_MAX - 1);
    }
    memcpy(p->name, name, nlen + 1);
    if (json_is_string(val)) {
      size_t len = json_string_length(val);
      if (len >= MF_RTP_PARAM_VALUE_MAX || strlen(json_string_value(val)) != len) {
        return fail(c, MF_ERR_LIMIT, "%s.%s.%s is too long (max %d chars)", path, key, name,
                    MF_RTP_PARAM_VALUE_MAX - 1);
      }
      p->type = MF_RTP_PARAM_STRING;
      memcpy(p->str_value, json_string_value(val), len + 1);
    } else if (json_is_integer(val)) {
      p->type = MF_RTP_PARAM_INT;
      p->int_value = json_integer_value(val);
    } else if (json_is_real(val)) {
      p->type = MF_RTP_PARAM_REAL;
      p->real_value = json_real_value(val);
    } else {
      return fail(c, MF_ERR_PARSE, "%s.%s.%s must be a string or a number", path, key, name);
    }
    n++;
  }
  *count = n;
  if (present) *present = true;
  return MF_OK;
}

static mf_err_t parse_feedback(const pctx_t *c, const json_t *obj, const char *path,
                               mf_rtcp_feedback_t *fb, size_t *count) {
  const json_t *arr;
  mf_err_t rc = get_array(c, obj, path, "rtcpFeedback", false, MF_RTP_MAX_RTCP_FEEDBACK, &arr);
  *count = 0;
  if (rc != MF_OK || !arr) return rc;
  for (size_t i = 0; i < json_array_size(arr); i++) {
    char p[PATH_MAX_LEN];
    pathf(p, sizeof p, "%s.rtcpFeedback[%zu]", path, i);
    const json_t *e = json_array_get(arr, i);
    if (!json_is_object(e)) return fail(c, MF_ERR_PARSE, "%s must be an object", p);
    memset(&fb[i], 0, sizeof fb[i]);
    rc = get_string(c, e, p, "type", true, fb[i].type, sizeof fb[i].type, NULL);
    if (rc == MF_OK) {
      rc = get_string(c, e, p, "parameter", false, fb[i].parameter, sizeof fb[i].parameter,
                      &fb[i].has_parameter);
    }
    if (rc != MF_OK) return rc;
  }
  *count = json_array_size(arr);
  return MF_OK;
}

static mf_err_t check_object(const pctx_t *c, const json_t *json, const char *path) {
  if (!json_is_object(json)) return fail(c, MF_ERR_PARSE, "%s must be an object", path);
  return MF_OK;
}

/* ---- capabilities ---- */

mf_err_t mf_rtp_codec_capability_from_json(const json_t *json, const char *what,
                                           mf_rtp_codec_capability_t *out, char *err,
                                           size_t errsz) {
  pctx_t c = {err, errsz};
  memset(out, 0, sizeof *out);
  mf_err_t rc = check_object(&c, json, what);
  if (rc != MF_OK) return rc;
  const json_t *kind = field(json, "kind");
  if (kind) {
    out->kind = mf_media_kind_parse(json_string_value(kind));
    if (out->kind == MF_MEDIA_KIND_NONE) {
      return fail(&c, MF_ERR_PARSE, "%s.kind must be \"audio\" or \"video\"", what);
    }
  }
  uint64_t u;
  bool present;
  if ((rc = get_string(&c, json, what, "mimeType", true, out->mime_type,
                       sizeof out->mime_type, NULL)) != MF_OK ||
      (rc = get_uint(&c, json, what, "preferredPayloadType", false, 0, 127, &u, &present)) !=
          MF_OK)
    return rc;
  out->has_preferred_payload_type = present;
  out->preferred_payload_type = (uint8_t)u;
  if ((rc = get_uint(&c, json, what, "clockRate", true, 1, UINT32_MAX, &u, NULL)) != MF_OK)
    return rc;
  out->clock_rate = (uint32_t)u;
  if ((rc = get_uint(&c, json, what, "channels", false, 1, 255, &u, NULL)) != MF_OK) return rc;
  out->channels = (uint8_t)u;
  if ((rc = parse_param_map(&c, json, what, "parameters", out->parameters.items,
                            MF_RTP_MAX_CODEC_PARAMS, &out->parameters.count, NULL)) != MF_OK)
    return rc;
  return parse_feedback(&c, json, what, out->rtcp_feedback, &out->rtcp_feedback_count);
}

mf_err_t mf_rtp_header_extension_from_json(const json_t *json, const char *what,
                                           mf_rtp_header_extension_t *out, char *err,
                                           size_t errsz) {
  pctx_t c = {err, errsz};
  memset(out, 0, sizeof *out);
  mf_err_t rc = check_object(&c, json, what);
  if (rc != MF_OK) return rc;
  const json_t *kind = field(json, "kind");
  out->kind = mf_media_kind_parse(json_string_value(kind));
  if (out->kind == MF_MEDIA_KIND_NONE) {
    return fail(&c, MF_ERR_PARSE, "%s.kind must be \"audio\" or \"video\"", what);
  }
  uint64_t u;
  if ((rc = get_string(&c, json, what, "uri", true, out->uri, sizeof out->uri, NULL)) !=
          MF_OK ||
      (rc = get_uint(&c, json, what, "preferredId", true, 1, 255, &u, NULL)) != MF_OK ||
      (rc = get_bool(&c, json, what, "preferredEncrypt", &out->preferred_encrypt,
                     &out->has_preferred_encrypt)) != MF_OK)
    return rc;
  out->preferred_id = (uint8_t)u;
  const json_t *dir = field(json, "direction");
  if (dir) {
    const char *s = json_string_value(dir);
    for (size_t i = 1; s && i < sizeof direction_names / sizeof direction_names[0]; i++) {
      if (strcmp(s, direction_names[i]) == 0) out->direction = (mf_rtp_direction_t)i;
    }
    if (out->direction == MF_RTP_DIRECTION_NONE) {
      return fail(&c, MF_ERR_PARSE,
                  "%s.direction must be one of sendrecv, sendonly, recvonly, inactive", what);
    }
  }
  return MF_OK;
}

mf_err_t mf_rtp_capabilities_from_json(const json_t *json, const char *what,
                                       mf_rtp_capabilities_t *out, char *err, size_t errsz) {
  pctx_t c = {err, errsz};
  memset(out, 0, sizeof *out);
  mf_err_t rc = check_object(&c, json, what);
  if (rc != MF_OK) return rc;
  const json_t *arr;
  char p[PATH_MAX_LEN];
  if ((rc = get_array(&c, json, what, "codecs", false, MF_RTP_MAX_CODECS, &arr)) != MF_OK)
    return rc;
  for (size_t i = 0; arr && i < json_array_size(arr); i++) {
    pathf(p, sizeof p, "%s.codecs[%zu]", what, i);
    rc = mf_rtp_codec_capability_from_json(json_array_get(arr, i), p, &out->codecs[i], err,
                                           errsz);
    if (rc != MF_OK) return rc;
    out->codec_count = i + 1;
  }
  if ((rc = get_array(&c, json, what, "headerExtensions", false, MF_RTP_MAX_HEADER_EXTENSIONS,
                      &arr)) != MF_OK)
    return rc;
  for (size_t i = 0; arr && i < json_array_size(arr); i++) {
    pathf(p, sizeof p, "%s.headerExtensions[%zu]", what, i);
    rc = mf_rtp_header_extension_from_json(json_array_get(arr, i), p,
                                           &out->header_extensions[i], err, errsz);
    if (rc != MF_OK) return rc;
    out->header_extension_count = i + 1;
  }
  return MF_OK;
}

mf_err_t mf_rtp_codec_capabilities_from_json_array(const json_t *json, const char *what,
                                                   mf_rtp_codec_capability_t *out,
                                                   size_t *count, char *err, size_t errsz) {
  pctx_t c = {err, errsz};
  size_t max = *count;
  *count = 0;
  if (!json_is_array(json)) return fail(&c, MF_ERR_PARSE, "%s must be an array", what);
  if (json_array_size(json) > max) {
    return fail(&c, MF_ERR_LIMIT, "%s has too many entries (max %zu)", what, max);
  }
  for (size_t i = 0; i < json_array_size(json); i++) {
    char p[PATH_MAX_LEN];
    pathf(p, sizeof p, "%s[%zu]", what, i);
    mf_err_t rc = mf_rtp_codec_capability_from_json(json_array_get(json, i), p, &out[i], err,
                                                    errsz);
    if (rc != MF_OK) return rc;
    *count = i + 1;
  }
  return MF_OK;
}

/* ---- parameters ---- */

static mf_err_t parse_codec_parameters(const pctx_t *c, const json_t *json, const char *path,
                                       mf_rtp_codec_parameters_t *out) {
  memset(out, 0, sizeof *out);
  mf_err_t rc = check_object(c, json, path);
  if (rc != MF_OK) return rc;
  uint64_t u;
  if ((rc = get_string(c, json, path, "mimeType", true, out->mime_type, sizeof out->mime_type,
                       NULL)) != MF_OK ||
      (rc = get_uint(c, json, path, "payloadType", true, 0, 127, &u, NULL)) != MF_OK)
    return rc;
  out->payload_type = (uint8_t)u;
  if ((rc = get_uint(c, json, path, "clockRate", true, 1, UINT32_MAX, &u, NULL)) != MF_OK)
    return rc;
  out->clock_rate = (uint32_t)u;
  if ((rc = get_uint(c, json, path, "channels", false, 1, 255, &u, NULL)) != MF_OK) return rc;
  out->channels = (uint8_t)u;
  if ((rc = parse_param_map(c, json, path, "parameters", out->parameters.items,
                            MF_RTP_MAX_CODEC_PARAMS, &out->parameters.count, NULL)) != MF_OK)
    return rc;
  return parse_feedback(c, json, path, out->rtcp_feedback, &out->rtcp_feedback_count);
}

static mf_err_t parse_ext_parameters(const pctx_t *c, const json_t *json, const char *path,
                                     mf_rtp_header_extension_parameters_t *out) {
  memset(out, 0, sizeof *out);
  mf_err_t rc = check_object(c, json, path);
  if (rc != MF_OK) return rc;
  uint64_t u;
  if ((rc = get_string(c, json, path, "uri", true, out->uri, sizeof out->uri, NULL)) !=
          MF_OK ||
      (rc = get_uint(c, json, path, "id", true, 1, 255, &u, NULL)) != MF_OK ||
      (rc = get_bool(c, json, path, "encrypt", &out->encrypt, &out->has_encrypt)) != MF_OK)
    return rc;
  out->id = (uint8_t)u;
  return parse_param_map(c, json, path, "parameters", out->parameters.items,
                         MF_RTP_MAX_EXT_PARAMS, &out->parameters.count, &out->has_parameters);
}

static mf_err_t get_priority(const pctx_t *c, const json_t *obj, const char *path,
                             const char *key, char out[16]) {
  mf_err_t rc = get_string(c, obj, path, key, false, out, 16, NULL);
  if (rc != MF_OK || out[0] == '\0') {
    if (rc == MF_ERR_LIMIT) rc = MF_ERR_PARSE;
    if (rc != MF_OK) fail(c, rc, "%s.%s must be very-low, low, medium or high", path, key);
    return rc;
  }
  if (strcmp(out, "very-low") && strcmp(out, "low") && strcmp(out, "medium") &&
      strcmp(out, "high")) {
    return fail(c, MF_ERR_PARSE, "%s.%s must be very-low, low, medium or high", path, key);
  }
  return MF_OK;
}

static mf_err_t parse_encoding(const pctx_t *c, const json_t *json, const char *path,
                               mf_rtp_encoding_parameters_t *out) {
  memset(out, 0, sizeof *out);
  mf_err_t rc = check_object(c, json, path);
  if (rc != MF_OK) return rc;
  uint64_t u;
  bool present;
  if ((rc = get_uint(c, json, path, "ssrc", false, 0, UINT32_MAX, &u, &out->has_ssrc)) != MF_OK)
    return rc;
  out->ssrc = (uint32_t)u;
  if ((rc = get_string(c, json, path, "rid", false, out->rid, sizeof out->rid, NULL)) != MF_OK ||
      (rc = get_uint(c, json, path, "codecPayloadType", false, 0, 127, &u,
                     &out->has_codec_payload_type)) != MF_OK)
    return rc;
  out->codec_payload_type = (uint8_t)u;
  const json_t *rtx = field(json, "rtx");
  if (rtx) {
    char p[PATH_MAX_LEN];
    pathf(p, sizeof p, "%s.rtx", path);
    if ((rc = check_object(c, rtx, p)) != MF_OK ||
        (rc = get_uint(c, rtx, p, "ssrc", true, 0, UINT32_MAX, &u, NULL)) != MF_OK)
      return rc;
    out->has_rtx = true;
    out->rtx_ssrc = (uint32_t)u;
  }
  if ((rc = get_bool(c, json, path, "dtx", &out->dtx, &out->has_dtx)) != MF_OK ||
      (rc = get_string(c, json, path, "scalabilityMode", false, out->scalability_mode,
                       sizeof out->scalability_mode, NULL)) != MF_OK ||
      (rc = get_number(c, json, path, "scaleResolutionDownBy", 1.0,
                       &out->scale_resolution_down_by, &out->has_scale_resolution_down_by)) !=
          MF_OK)
    return rc;
  /* Applications set maxBitrate from arithmetic, so an integral real is accepted too. */
  double d;
  if ((rc = get_number(c, json, path, "maxBitrate", 0, &d, &present)) != MF_OK) return rc;
  if (present) {
    if (d > UINT32_MAX) {
      return fail(c, MF_ERR_PARSE, "%s.maxBitrate must be a number >= 0 and <= %u", path,
                  UINT32_MAX);
    }
    out->has_max_bitrate = true;
    out->max_bitrate = (uint32_t)d;
  }
  if ((rc = get_number(c, json, path, "maxFramerate", 0, &out->max_framerate,
                       &out->has_max_framerate)) != MF_OK ||
      (rc = get_bool(c, json, path, "adaptivePtime", &out->adaptive_ptime,
                     &out->has_adaptive_ptime)) != MF_OK ||
      (rc = get_priority(c, json, path, "priority", out->priority)) != MF_OK)
    return rc;
  return get_priority(c, json, path, "networkPriority", out->network_priority);
}

mf_err_t mf_rtp_parameters_from_json(const json_t *json, const char *what,
                                     mf_rtp_parameters_t *out, char *err, size_t errsz) {
  pctx_t c = {err, errsz};
  memset(out, 0, sizeof *out);
  mf_err_t rc = check_object(&c, json, what);
  if (rc != MF_OK) return rc;
  if ((rc = get_string(&c, json, what, "mid", false, out->mid, sizeof out->mid, NULL)) != MF_OK)
    return rc;
  const json_t *arr;
  char p[PATH_MAX_LEN];
  if ((rc = get_array(&c, json, what, "codecs", true, MF_RTP_MAX_CODECS, &arr)) != MF_OK)
    return rc;
  for (size_t i = 0; i < json_array_size(arr); i++) {
    pathf(p, sizeof p, "%s.codecs[%zu]", what, i);
    if ((rc = parse_codec_parameters(&c, json_array_get(arr, i), p, &out->codecs[i])) != MF_OK)
      return rc;
    out->codec_count = i + 1;
  }
  if ((rc = get_array(&c, json, what, "headerExtensions", false, MF_RTP_MAX_HEADER_EXTENSIONS,
                      &arr)) != MF_OK)
    return rc;
  for (size_t i = 0; arr && i < json_array_size(arr); i++) {
    pathf(p, sizeof p, "%s.headerExtensions[%zu]", what, i);
    if ((rc = parse_ext_parameters(&c, json_array_get(arr, i), p,
                                   &out->header_extensions[i])) != MF_OK)
      return rc;
    out->header_extension_count = i + 1;
  }
  if ((rc = get_array(&c, json, what, "encodings", false, MF_RTP_MAX_ENCODINGS, &arr)) != MF_OK)
    return rc;
  for (size_t i = 0; arr && i < json_array_size(arr); i++) {
    pathf(p, sizeof p, "%s.encodings[%zu]", what, i);
    if ((rc = parse_encoding(&c, json_array_get(arr, i), p, &out->encodings[i])) != MF_OK)
      return rc;
    out->encoding_count = i + 1;
  }
  const json_t *rtcp = field(json, "rtcp");
  if (rtcp) {
    pathf(p, sizeof p, "%s.rtcp", what);
    if ((rc = check_object(&c, rtcp, p)) != MF_OK ||
        (rc = get_string(&c, rtcp, p, "cname", false, out->rtcp.cname, sizeof out->rtcp.cname,
                         NULL)) != MF_OK ||
        (rc = get_bool(&c, rtcp, p, "reducedSize", &out->rtcp.reduced_size,
                       &out->rtcp.has_reduced_size)) != MF_OK ||
        (rc = get_bool(&c, rtcp, p, "mux", &out->rtcp.mux, &out->rtcp.has_mux)) != MF_OK)
      return rc;
    out->has_rtcp = true;
  }
  return MF_OK;
}

/* ---- JSON out ---- */

/* Accumulates failures so a serializer can build the whole object and check once. */
static bool put(json_t *obj, const char *key, json_t *value) {
  if (!value) return false;
  return json_object_set_new(obj, key, value) == 0;
}

static bool append(json_t *arr, json_t *value) {
  if (!value) return false;
  return json_array_append_new(arr, value) == 0;
}

static json_t *finish(json_t *obj, bool ok) {
  if (ok) return obj;
  json_decref(obj);
  return NULL;
}

static json_t *param_map_to_json(const mf_rtp_param_t *items, size_t count) {
  json_t *o = json_object();
  bool ok = o != NULL;
  for (size_t i = 0; ok && i < count; i++) {
    const mf_rtp_param_t *p = &items[i];
    json_t *v;
    switch (p->type) {
      case MF_RTP_PARAM_INT: v = json_integer(p->int_value); break;
      case MF_RTP_PARAM_REAL: v = json_real(p->real_value); break;
      default: v = json_string(p->str_value); break;
    }
    ok = put(o, p->name, v);
  }
  return finish(o, ok);
}

static json_t *feedback_to_json(const mf_rtcp_feedback_t *fb, size_t count) {
  json_t *arr = json_array();
  bool ok = arr != NULL;
  for (size_t i = 0; ok && i < count; i++) {
    json_t *o = json_object();
    ok = o != NULL && put(o, "type", json_string(fb[i].type));
    if (ok && fb[i].has_parameter) ok = put(o, "parameter", json_string(fb[i].parameter));
    ok = append(arr, finish(o, ok)) && ok;
  }
  return finish(arr, ok);
}

json_t *mf_rtp_codec_capability_to_json(const mf_rtp_codec_capability_t *codec) {
  json_t *o = json_object();
  bool ok = o != NULL;
  if (ok && codec->kind != MF_MEDIA_KIND_NONE) {
    ok = put(o, "kind", json_string(mf_media_kind_str(codec->kind)));
  }
  ok = ok && put(o, "mimeType", json_string(codec->mime_type));
  if (ok && codec->has_preferred_payload_type) {
    ok = put(o, "preferredPayloadType", json_integer(codec->preferred_payload_type));
  }
  ok = ok && put(o, "clockRate", json_integer(codec->clock_rate));
  if (ok && codec->channels) ok = put(o, "channels", json_integer(codec->channels));
  ok = ok && put(o, "parameters",
                 param_map_to_json(codec->parameters.items, codec->parameters.count));
  ok = ok && put(o, "rtcpFeedback",
                 feedback_to_json(codec->rtcp_feedback, codec->rtcp_feedback_count));
  return finish(o, ok);
}

json_t *mf_rtp_header_extension_to_json(const mf_rtp_header_extension_t *ext) {
  json_t *o = json_object();
  bool ok = o != NULL && put(o, "kind", json_string(mf_media_kind_str(ext->kind))) &&
            put(o, "uri", json_string(ext->uri)) &&
            put(o, "preferredId", json_integer(ext->preferred_id));
  if (ok && ext->has_preferred_encrypt) {
    ok = put(o, "preferredEncrypt", json_boolean(ext->preferred_encrypt));
  }
  if (ok && ext->direction != MF_RTP_DIRECTION_NONE) {
    ok = put(o, "direction", json_string(mf_rtp_direction_str(ext->direction)));
  }
  return finish(o, ok);
}

json_t *mf_rtp_capabilities_to_json(const mf_rtp_capabilities_t *caps) {
  json_t *o = json_object();
  json_t *codecs = json_array();
  json_t *exts = json_array();
  bool ok = o && codecs && exts;
  for (size_t i = 0; ok && i < caps->codec_count && i < MF_RTP_MAX_CODECS; i++) {
    ok = append(codecs, mf_rtp_codec_capability_to_json(&caps->codecs[i]));
  }
  for (size_t i = 0;
       ok && i < caps->header_extension_count && i < MF_RTP_MAX_HEADER_EXTENSIONS; i++) {
    ok = append(exts, mf_rtp_header_extension_to_json(&caps->header_extensions[i]));
  }
  if (!o) {
    json_decref(codecs);
    json_decref(exts);
    return NULL;
  }
  ok = put(o, "codecs", codecs) && ok;
  ok = put(o, "headerExtensions", exts) && ok;
  return finish(o, ok);
}

json_t *mf_rtp_codec_parameters_to_json(const mf_rtp_codec_parameters_t *codec) {
  json_t *o = json_object();
  bool ok = o != NULL && put(o, "mimeType", json_string(codec->mime_type)) &&
            put(o, "payloadType", json_integer(codec->payload_type)) &&
            put(o, "clockRate", json_integer(codec->clock_rate));
  if (ok && codec->channels) ok = put(o, "channels", json_integer(codec->channels));
  ok = ok && put(o, "parameters",
                 param_map_to_json(codec->parameters.items, codec->parameters.count));
  ok = ok && put(o, "rtcpFeedback",
                 feedback_to_json(codec->rtcp_feedback, codec->rtcp_feedback_count));
  return finish(o, ok);
}

static json_t *ext_parameters_to_json(const mf_rtp_header_extension_parameters_t *ext) {
  json_t *o = json_object();
  bool ok = o != NULL && put(o, "uri", json_string(ext->uri)) &&
            put(o, "id", json_integer(ext->id));
  if (ok && ext->has_encrypt) ok = put(o, "encrypt", json_boolean(ext->encrypt));
  if (ok && ext->has_parameters) {
    ok = put(o, "parameters", param_map_to_json(ext->parameters.items, ext->parameters.count));
  }
  return finish(o, ok);
}

/* JavaScript has one number type: JSON.stringify(2.0) is "2". Emit what mediasoup would. */
static json_t *js_number(double d) {
  if (is_integral(d)) return json_integer((json_int_t)d);
  return json_real(d);
}

json_t *mf_rtp_encoding_parameters_to_json(const mf_rtp_encoding_parameters_t *enc) {
  json_t *o = json_object();
  bool ok = o != NULL;
  if (ok && enc->has_ssrc) ok = put(o, "ssrc", json_integer(enc->ssrc));
  if (ok && enc->rid[0]) ok = put(o, "rid", json_string(enc->rid));
  if (ok && enc->has_codec_payload_type) {
    ok = put(o, "codecPayloadType", json_integer(enc->codec_payload_type));
  }
  if (ok && enc->has_rtx) {
    json_t *rtx = json_object();
    ok = rtx != NULL && put(rtx, "ssrc", json_integer(enc->rtx_ssrc));
    ok = put(o, "rtx", finish(rtx, ok)) && ok;
  }
  if (ok && enc->has_dtx) ok = put(o, "dtx", json_boolean(enc->dtx));
  if (ok && enc->scalability_mode[0]) {
    ok = put(o, "scalabilityMode", json_string(enc->scalability_mode));
  }
  if (ok && enc->has_scale_resolution_down_by) {
    ok = put(o, "scaleResolutionDownBy", js_number(enc->scale_resolution_down_by));
  }
  if (ok && enc->has_max_bitrate) ok = put(o, "maxBitrate", json_integer(enc->max_bitrate));
  if (ok && enc->has_max_framerate) {
    ok = put(o, "maxFramerate", js_number(enc->max_framerate));
  }
  if (ok && enc->has_adaptive_ptime) {
    ok = put(o, "adaptivePtime", json_boolean(enc->adaptive_ptime));
  }
  if (ok && enc->priority[0]) ok = put(o, "priority", json_string(enc->priority));
  if (ok && enc->network_priority[0]) {
    ok = put(o, "networkPriority", json_string(enc->network_priority));
  }
  return finish(o, ok);
}

json_t *mf_rtp_parameters_to_json(const mf_rtp_parameters_t *params) {
  json_t *o = json_object();
  if (!o) return NULL;
  bool ok = true;
  if (params->mid[0]) ok = put(o, "mid", json_string(params->mid));
  json_t *codecs = json_array();
  for (size_t i = 0; ok && codecs && i < params->codec_count && i < MF_RTP_MAX_CODECS; i++) {
    ok = append(codecs, mf_rtp_codec_parameters_to_json(&params->codecs[i]));
  }
  ok = put(o, "codecs", codecs) && ok;
  json_t *exts = json_array();
  for (size_t i = 0;
       ok && exts && i < params->header_extension_count && i < MF_RTP_MAX_HEADER_EXTENSIONS;
       i++) {
    ok = append(exts, ext_parameters_to_json(&params->header_extensions[i]));
  }
  ok = put(o, "headerExtensions", exts) && ok;
  json_t *encs = json_array();
  for (size_t i = 0; ok && encs && i < params->encoding_count && i < MF_RTP_MAX_ENCODINGS;
       i++) {
    ok = append(encs, mf_rtp_encoding_parameters_to_json(&params->encodings[i]));
  }
  ok = put(o, "encodings", encs) && ok;
  if (ok && params->has_rtcp) {
    const mf_rtcp_parameters_t *r = &params->rtcp;
    json_t *rtcp = json_object();
    bool rok = rtcp != NULL;
    if (rok && r->cname[0]) rok = put(rtcp, "cname", json_string(r->cname));
    if (rok && r->has_reduced_size) rok = put(rtcp, "reducedSize", json_boolean(r->reduced_size));
    if (rok && r->has_mux) rok = put(rtcp, "mux", json_boolean(r->mux));
    ok = put(o, "rtcp", finish(rtcp, rok)) && rok;
  }
  return finish(o, ok);
}
