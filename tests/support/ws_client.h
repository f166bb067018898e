/* A WebSocket client for tests of the public API, on nng's stream API: text frames, whole
 * messages (ws:msgmode), JSON in and out. Blocking calls with a timeout; no assertions, so
 * any test framework can use them. */
#ifndef MF_TEST_WS_CLIENT_H
#define MF_TEST_WS_CLIENT_H

#include <jansson.h>
#include <nng/nng.h>
#include <stddef.h>
#include <stdint.h>

/* ws://host:port/v1/ws<query>; NULL when the connection failed. */
nng_stream *mf_test_ws_dial(const char *host, uint16_t port, const char *query, int timeout_ms);
/* 0 or an nng error. */
int mf_test_ws_send(nng_stream *s, const char *text, size_t len, int timeout_ms);
/* The next message parsed as JSON; NULL when the connection ended, timed out, or the
 * message was not JSON. */
json_t *mf_test_ws_recv(nng_stream *s, int timeout_ms);
void mf_test_ws_free(nng_stream *s);

/* The node's JSON API (docs/api.md) over such a stream. */
/* Sends {"id","method","data"}; data is stolen (NULL: {}). 0, or -1 when it could not. */
int mf_test_api_send(nng_stream *s, int id, const char *method, json_t *data, int timeout_ms);
/* The answer to request id (the whole message: "ok" and "data" or "error"; the caller
 * decrefs), or NULL when no message came within timeout_ms of the last one. Notifications
 * (messages with "event") that come first are appended to events when it is an array, else
 * dropped; other answers are dropped. */
json_t *mf_test_api_answer(nng_stream *s, int id, int timeout_ms, json_t *events);

#endif
