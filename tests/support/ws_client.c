#include "tests/support/ws_client.h"

#include <nng/supplemental/http/http.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

nng_stream *mf_test_ws_dial(const char *host, uint16_t port, const char *query, int timeout_ms) {
  char url[4096];
  snprintf(url, sizeof url, "ws://%s:%u/v1/ws%s", host, (unsigned)port, query ? query : "");
  nng_stream_dialer *d = NULL;
  if (nng_stream_dialer_alloc(&d, url) != 0) return NULL;
  nng_stream_dialer_set_bool(d, "ws:msgmode", true);
  nng_stream_dialer_set_bool(d, NNG_OPT_WS_SEND_TEXT, true);
  nng_stream_dialer_set_bool(d, NNG_OPT_WS_RECV_TEXT, true);
  nng_stream_dialer_set_size(d, NNG_OPT_WS_SENDMAXFRAME, 1 << 20);
  nng_aio *aio = NULL;
  if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
    nng_stream_dialer_free(d);
    return NULL;
  }
  nng_aio_set_timeout(aio, timeout_ms);
  nng_stream_dialer_dial(d, aio);
  nng_aio_wait(aio);
  nng_stream *s = nng_aio_result(aio) == 0 ? nng_aio_get_output(aio, 0) : NULL;
  nng_aio_free(aio);
  nng_stream_dialer_free(d); /* the stream outlives its dialer */
  return s;
}

int mf_test_ws_send(nng_stream *s, const char *text, size_t len, int timeout_ms) {
  nng_msg *msg = NULL;
  int rv = nng_msg_alloc(&msg, 0);
  if (rv == 0) rv = nng_msg_append(msg, text, len);
  nng_aio *aio = NULL;
  if (rv == 0) rv = nng_aio_alloc(&aio, NULL, NULL);
  if (rv != 0) {
    if (msg) nng_msg_free(msg);
    return rv;
  }
  nng_aio_set_timeout(aio, timeout_ms);
  nng_aio_set_msg(aio, msg);
  nng_stream_send(s, aio);
  nng_aio_wait(aio);
  rv = nng_aio_result(aio);
  if (rv != 0) nng_msg_free(nng_aio_get_msg(aio));
  nng_aio_free(aio);
  return rv;
}

json_t *mf_test_ws_recv(nng_stream *s, int timeout_ms) {
  nng_aio *aio = NULL;
  if (nng_aio_alloc(&aio, NULL, NULL) != 0) return NULL;
  nng_aio_set_timeout(aio, timeout_ms);
  nng_stream_recv(s, aio);
  nng_aio_wait(aio);
  json_t *j = NULL;
  if (nng_aio_result(aio) == 0) {
    nng_msg *msg = nng_aio_get_msg(aio);
    json_error_t e;
    j = json_loadb(nng_msg_body(msg), nng_msg_len(msg), 0, &e);
    nng_msg_free(msg);
  }
  nng_aio_free(aio);
  return j;
}

int mf_test_api_send(nng_stream *s, int id, const char *method, json_t *data, int timeout_ms) {
  json_t *req = json_pack("{s:i, s:s, s:o}", "id", id, "method", method,
                          "data", data ? data : json_object());
  char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
  json_decref(req);
  int rv = text && mf_test_ws_send(s, text, strlen(text), timeout_ms) == 0 ? 0 : -1;
  free(text);
  return rv;
}

json_t *mf_test_api_answer(nng_stream *s, int id, int timeout_ms, json_t *events) {
  for (;;) {
    json_t *m = mf_test_ws_recv(s, timeout_ms);
    if (!m) return NULL;
    if (json_object_get(m, "event")) {
      if (json_is_array(events)) json_array_append(events, m);
    } else if (json_object_get(m, "ok") && json_integer_value(json_object_get(m, "id")) == id) {
      return m;
    }
    json_decref(m);
  }
}

void mf_test_ws_free(nng_stream *s) {
  nng_stream_close(s);
  nng_stream_free(s);
}
