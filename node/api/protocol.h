/* JSON message framing of the public API (docs/api.md):
 *   request       {"id":N,"method":"router.join","data":{...}}       (data optional)
 *   response      {"id":N,"ok":true,"data":{...}}
 *   error         {"id":N|null,"ok":false,"error":{"code":"not_found","message":"..."}}
 *   notification  {"event":"producer.close","target":"<id>","data":{...}}
 * Error codes are mf_err_name() strings (common/err.h).
 *
 * Pure functions, no global state: safe from any thread. Builders return heap strings
 * (free with free()) and take ownership ("steal") of the json_t passed as data. */
#ifndef MF_API_PROTOCOL_H
#define MF_API_PROTOCOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define MF_API_MESSAGE_MAX (256 * 1024) /* longest accepted request, bytes */
#define MF_API_METHOD_MAX 64            /* longest method name, bytes */
#define MF_API_ID_MAX 9007199254740991LL /* 2^53-1: ids must survive a JavaScript number */
#define MF_API_ERROR_MAX 160

typedef struct {
  bool has_id;  /* false when id was missing or unusable: errors then carry "id":null */
  int64_t id;   /* 0 .. MF_API_ID_MAX */
  char method[MF_API_METHOD_MAX + 1];
  json_t *data; /* owned; always an object after a successful parse ({} when absent) */
  char error[MF_API_ERROR_MAX]; /* why the parse failed */
} mf_api_request_t;

/* Parses one request message (len bytes, need not be NUL-terminated). On success fills
 * *out (release with mf_api_request_clear). On failure out->error says why and
 * out->has_id/id are set when the id could still be read, so the error response can
 * name the request:
 *   MF_ERR_LIMIT        len > MF_API_MESSAGE_MAX (id not read), or method too long
 *   MF_ERR_PARSE        not JSON / not an object / nested too deep
 *   MF_ERR_INVALID_ARG  id missing, not an integer or out of range; method missing, not
 *                       a string or with characters outside [A-Za-z0-9._-]; data not an
 *                       object */
mf_err_t mf_api_request_parse(const char *text, size_t len, mf_api_request_t *out);
void mf_api_request_clear(mf_api_request_t *req);

/* {"id":id,"ok":true,"data":data}. data is stolen; NULL gives {}. NULL on ENOMEM. */
char *mf_api_response_ok(int64_t id, json_t *data, size_t *len);

/* {"id":id|null,"ok":false,"error":{"code":mf_err_name(code),"message":message}}.
 * message NULL gives mf_strerror(code). NULL on ENOMEM. */
char *mf_api_response_error(bool has_id, int64_t id, mf_err_t code, const char *message,
                            size_t *len);

/* {"event":event,"target":target,"data":data}. data is stolen; NULL gives {}. target NULL
 * omits the field (events about the session itself). NULL on ENOMEM or bad arguments. */
char *mf_api_notification(const char *event, const char *target, json_t *data, size_t *len);

/* Method dispatch. The transport defines mf_api_call_t (node/api/http_server.h): one
 * in-flight request that must be answered exactly once. A handler owns the call from the
 * moment it is invoked and answers it now or later, from any thread. `req` (and its
 * data) is valid only during the handler call: json_incref what you keep. */
typedef struct mf_api_call mf_api_call_t;
typedef void (*mf_api_handler_fn)(void *ctx, mf_api_call_t *call, const mf_api_request_t *req);

typedef struct {
  const char *name; /* exact method name, e.g. "router.join" */
  mf_api_handler_fn fn;
} mf_api_method_t;

/* Finds name in a table ended by an entry with name == NULL. NULL when absent. */
const mf_api_method_t *mf_api_method_find(const mf_api_method_t *table, const char *name);

#endif
