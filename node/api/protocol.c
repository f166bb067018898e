#include "node/api/protocol.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mf_err_t req_fail(mf_api_request_t *out, mf_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static mf_err_t req_fail(mf_api_request_t *out, mf_err_t err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out->error, sizeof out->error, fmt, ap);
  va_end(ap);
  return err;
}

static bool method_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

mf_err_t mf_api_request_parse(const char *text, size_t len, mf_api_request_t *out) {
  if (!out) return MF_ERR_INVALID_ARG;
  memset(out, 0, sizeof *out);
  if (!text && len) return req_fail(out, MF_ERR_INVALID_ARG, "no message");
  if (len > MF_API_MESSAGE_MAX)
    return req_fail(out, MF_ERR_LIMIT, "message of %zu bytes exceeds the limit of %d", len,
                    MF_API_MESSAGE_MAX);

  json_error_t jerr;
  /* jansson 2.14 caps nesting depth (2048), so hostile nesting cannot exhaust the stack. */
  json_t *root = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) return req_fail(out, MF_ERR_PARSE, "bad JSON at byte %d: %s", jerr.position, jerr.text);
  mf_err_t err = MF_OK;
  if (!json_is_object(root)) {
    err = req_fail(out, MF_ERR_PARSE, "message is not a JSON object");
    goto done;
  }

  json_t *id = json_object_get(root, "id");
  if (!id) {
    err = req_fail(out, MF_ERR_INVALID_ARG, "'id' is missing");
    goto done;
  }
  if (!json_is_integer(id) || json_integer_value(id) < 0 ||
      json_integer_value(id) > MF_API_ID_MAX) {
    err = req_fail(out, MF_ERR_INVALID_ARG, "'id' must be an integer from 0 to 2^53-1");
    goto done;
  }
  out->has_id = true;
  out->id = (int64_t)json_integer_value(id);

  json_t *method = json_object_get(root, "method");
  if (!json_is_string(method)) {
    err = req_fail(out, MF_ERR_INVALID_ARG, "'method' must be a string");
    goto done;
  }
  size_t mlen = json_string_length(method);
  const char *m = json_string_value(method);
  if (mlen == 0) {
    err = req_fail(out, MF_ERR_INVALID_ARG, "'method' is empty");
    goto done;
  }
  if (mlen > MF_API_METHOD_MAX) {
    err = req_fail(out, MF_ERR_LIMIT, "'method' is longer than %d bytes", MF_API_METHOD_MAX);
    goto done;
  }
  for (size_t i = 0; i < mlen; i++) {
    if (!method_char_ok(m[i])) {
      err = req_fail(out, MF_ERR_INVALID_ARG, "'method' has a character outside [A-Za-z0-9._-]");
      goto done;
    }
  }
  memcpy(out->method, m, mlen);
  out->method[mlen] = '\0';

  json_t *data = json_object_get(root, "data");
  if (data && json_is_null(data)) data = NULL;
  if (data && !json_is_object(data)) {
    err = req_fail(out, MF_ERR_INVALID_ARG, "'data' must be an object");
    goto done;
  }
  out->data = data ? json_incref(data) : json_object();
  if (!out->data) err = req_fail(out, MF_ERR_NO_MEMORY, "out of memory");

done:
  json_decref(root);
  return err;
}

void mf_api_request_clear(mf_api_request_t *req) {
  if (!req) return;
  json_decref(req->data);
  req->data = NULL;
}

static char *dump(json_t *obj, size_t *len) {
  if (!obj) return NULL;
  char *s = json_dumps(obj, JSON_COMPACT);
  json_decref(obj);
  if (s && len) *len = strlen(s);
  return s;
}

char *mf_api_response_ok(int64_t id, json_t *data, size_t *len) {
  if (!data) data = json_object();
  return dump(json_pack("{s:I, s:b, s:o}", "id", (json_int_t)id, "ok", 1, "data", data), len);
}

char *mf_api_response_error(bool has_id, int64_t id, mf_err_t code, const char *message,
                            size_t *len) {
  json_t *jid = has_id ? json_integer((json_int_t)id) : json_null();
  if (!message) message = mf_strerror(code);
  /* A message may quote peer input: keep only valid UTF-8 so the reply is valid JSON. */
  json_t *msg = json_string(message);
  if (!msg) msg = json_string(mf_strerror(code));
  return dump(json_pack("{s:o, s:b, s:{s:s, s:o}}", "id", jid, "ok", 0, "error", "code",
                        mf_err_name(code), "message", msg),
              len);
}

char *mf_api_notification(const char *event, const char *target, json_t *data, size_t *len) {
  if (!event) {
    json_decref(data);
    return NULL;
  }
  json_t *obj = json_pack("{s:s}", "event", event);
  if (obj && target) {
    json_t *t = json_string(target);
    if (!t || json_object_set_new(obj, "target", t) != 0) {
      json_decref(obj);
      obj = NULL;
    }
  }
  if (!obj) {
    json_decref(data);
    return NULL;
  }
  json_object_set_new(obj, "data", data ? data : json_object());
  return dump(obj, len);
}

const mf_api_method_t *mf_api_method_find(const mf_api_method_t *table, const char *name) {
  if (!table || !name) return NULL;
  for (; table->name; table++)
    if (strcmp(table->name, name) == 0) return table;
  return NULL;
}
