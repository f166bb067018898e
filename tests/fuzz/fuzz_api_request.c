/* Fuzzes the API request parser with untrusted WebSocket messages. Whatever it returns,
 * the response built from it (success or error) must be valid JSON, so a hostile message
 * can never make the server emit a broken reply. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "node/api/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must_be_json(char *text) {
  if (!text) abort();
  json_error_t e;
  json_t *j = json_loads(text, 0, &e);
  if (!j || !json_is_object(j) || !json_object_get(j, "ok")) abort();
  json_decref(j);
  free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mf_api_request_t req;
  mf_err_t err = mf_api_request_parse((const char *)data, size, &req);
  if (err == MF_OK) {
    if (!req.has_id || !json_is_object(req.data) || !req.method[0]) abort();
    must_be_json(mf_api_response_ok(req.id, json_incref(req.data), NULL));
    must_be_json(mf_api_response_error(true, req.id, MF_ERR_NOT_FOUND, req.method, NULL));
  } else {
    if (req.data) abort();
    must_be_json(mf_api_response_error(req.has_id, req.id, err, req.error, NULL));
  }
  mf_api_request_clear(&req);
  return 0;
}
