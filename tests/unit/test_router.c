/* Router, Producer, Consumer control paths on a real RTC server (no media): clear errors
 * for bad produce/consume input, consumer parameters in mediasoup's shape, per-transport
 * mids, pause events, and the close cascade. Media paths are in tests/interop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "tests/unit/router_fixture.h"
#include "common/log.h"
#include "node/router.h"

typedef struct {
  uv_loop_t loop;
  mf_bufpool_t *pool;
  mf_dtls_cert_t *cert;
  mf_rtc_server_t *server;
  mf_router_t *router;
  int producerclose, producerpause, producerresume, transportclose;
  char last_target[64];
} fx_t;

static void on_event(void *ud, const char *event, const char *target, json_t *data) {
  fx_t *f = ud;
  if (strcmp(event, "producerclose") == 0) f->producerclose++;
  if (strcmp(event, "producerpause") == 0) f->producerpause++;
  if (strcmp(event, "producerresume") == 0) f->producerresume++;
  if (strcmp(event, "transportclose") == 0) f->transportclose++;
  snprintf(f->last_target, sizeof f->last_target, "%s", target);
  json_decref(data);
}

static int setup(void **state) {
  static fx_t f;
  memset(&f, 0, sizeof f);
  if (mf_test_router_open(&f.loop, 256, &f.pool, &f.cert, &f.server, &f.router, on_event, &f))
    return -1;
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  if (mf_test_router_close(&f->loop, f->pool, f->cert, f->server, f->router)) return -1;
  return 0;
}

/* mediasoup-client's send parameters for a VP8 camera track with RTX. */
static const char *const vp8_params =
    "{\"mid\":\"0\",\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
    "\"parameters\":{},\"rtcpFeedback\":[{\"type\":\"nack\"},{\"type\":\"nack\",\"parameter\":\"pli\"},"
    "{\"type\":\"ccm\",\"parameter\":\"fir\"},{\"type\":\"transport-cc\"}]},"
    "{\"mimeType\":\"video/rtx\",\"payloadType\":97,\"clockRate\":90000,\"parameters\":{\"apt\":96}}],"
    "\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"id\":1},"
    "{\"uri\":\"http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\",\"id\":4}],"
    "\"encodings\":[{\"ssrc\":1111,\"rtx\":{\"ssrc\":2222}}],\"rtcp\":{\"cname\":\"abc\",\"reducedSize\":true}}";

static mf_rtp_parameters_t *params_from(const char *text) {
  static mf_rtp_parameters_t p;
  json_t *j = json_loads(text, 0, NULL);
  assert_non_null(j);
  char err[256];
  assert_int_equal(mf_rtp_parameters_from_json(j, "rtpParameters", &p, err, sizeof err), MF_OK);
  json_decref(j);
  return &p;
}

static mf_producer_t *produce_vp8(fx_t *f, mf_router_transport_t *t) {
  mf_producer_t *p = NULL;
  char err[256] = "";
  mf_err_t e = mf_router_produce(t, MF_MEDIA_KIND_VIDEO, params_from(vp8_params), false, err,
                                 sizeof err, &p);
  if (e) print_error("produce: %s\n", err);
  assert_int_equal(e, MF_OK);
  return p;
}

static void test_produce_errors_are_clear(void **state) {
  fx_t *f = *state;
  mf_router_transport_t *t;
  assert_int_equal(mf_router_create_webrtc_transport(f->router, &t), MF_OK);
  mf_producer_t *p = NULL;
  char err[256] = "";
  assert_int_equal(mf_router_produce(t, MF_MEDIA_KIND_NONE, params_from(vp8_params), false, err,
                                     sizeof err, &p), MF_ERR_INVALID_ARG);
  assert_non_null(strstr(err, "kind must be audio or video"));
  const char *h265 = "{\"codecs\":[{\"mimeType\":\"video/H265\",\"payloadType\":96,\"clockRate\":90000}],"
                     "\"encodings\":[{\"ssrc\":5}]}";
  err[0] = '\0';
  assert_int_not_equal(mf_router_produce(t, MF_MEDIA_KIND_VIDEO, params_from(h265), false, err,
                                         sizeof err, &p), MF_OK);
  assert_true(strlen(err) > 0);
  produce_vp8(f, t);
  err[0] = '\0';
  assert_int_equal(mf_router_produce(t, MF_MEDIA_KIND_VIDEO, params_from(vp8_params), false, err,
                                     sizeof err, &p), MF_ERR_EXISTS);
  assert_non_null(strstr(err, "ssrc 1111 already used"));
}

static void test_consume_parameters_and_errors(void **state) {
  fx_t *f = *state;
  mf_router_transport_t *send, *recv;
  assert_int_equal(mf_router_create_webrtc_transport(f->router, &send), MF_OK);
  assert_int_equal(mf_router_create_webrtc_transport(f->router, &recv), MF_OK);
  mf_producer_t *p = produce_vp8(f, send);
  const mf_rtp_capabilities_t *caps = mf_router_rtp_capabilities(f->router);
  mf_consumer_t *c = NULL;
  char err[256] = "";
  assert_int_equal(mf_router_consume(recv, "no-such-producer", caps, false, err, sizeof err, &c),
                   MF_ERR_NOT_FOUND);
  assert_non_null(strstr(err, "not found"));
  /* a device that only does opus cannot consume VP8 */
  static mf_rtp_capabilities_t audio_only;
  audio_only = *caps;
  size_t n = 0;
  for (size_t i = 0; i < caps->codec_count; i++)
    if (caps->codecs[i].kind == MF_MEDIA_KIND_AUDIO) audio_only.codecs[n++] = caps->codecs[i];
  audio_only.codec_count = n;
  assert_false(mf_router_can_consume(f->router, mf_producer_id(p), &audio_only));
  assert_true(mf_router_can_consume(f->router, mf_producer_id(p), caps));
  assert_int_equal(mf_router_consume(recv, mf_producer_id(p), &audio_only, false, err, sizeof err, &c),
                   MF_ERR_UNSUPPORTED);
  assert_non_null(strstr(err, "cannot consume"));

  mf_consumer_t *c1, *c2;
  assert_int_equal(mf_router_consume(recv, mf_producer_id(p), caps, false, err, sizeof err, &c1), MF_OK);
  assert_int_equal(mf_router_consume(recv, mf_producer_id(p), caps, true, err, sizeof err, &c2), MF_OK);
  json_t *j = mf_consumer_to_json(c1);
  assert_string_equal(json_string_value(json_object_get(j, "producerId")), mf_producer_id(p));
  assert_string_equal(json_string_value(json_object_get(j, "kind")), "video");
  assert_string_equal(json_string_value(json_object_get(j, "type")), "simple");
  json_t *rp = json_object_get(j, "rtpParameters");
  assert_string_equal(json_string_value(json_object_get(rp, "mid")), "0");
  json_t *codec = json_array_get(json_object_get(rp, "codecs"), 0);
  assert_string_equal(json_string_value(json_object_get(codec, "mimeType")), "video/VP8");
  /* the ROUTER's payload type, not the producer's 96 */
  uint8_t router_vp8 = 0;
  for (size_t i = 0; i < caps->codec_count; i++)
    if (strcmp(caps->codecs[i].mime_type, "video/VP8") == 0) router_vp8 = caps->codecs[i].preferred_payload_type;
  assert_int_equal(json_integer_value(json_object_get(codec, "payloadType")), router_vp8);
  json_t *enc = json_array_get(json_object_get(rp, "encodings"), 0);
  json_int_t ssrc = json_integer_value(json_object_get(enc, "ssrc"));
  assert_true(ssrc != 0 && ssrc != 1111);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(enc, "rtx"), "ssrc")), ssrc + 1);
  assert_string_equal(json_string_value(json_object_get(json_object_get(rp, "rtcp"), "cname")), "abc");
  json_decref(j);
  mf_rtp_parameters_t *cp2 = mf_consumer_rtp_parameters_copy(c2);
  assert_non_null(cp2);
  assert_string_equal(cp2->mid, "1"); /* per-transport counter */
  free(cp2);
  assert_true(mf_consumer_paused(c2));
  json_t *st = mf_consumer_stats_json(c1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(st, 0), "type")), "outbound-rtp");
  json_decref(st);
}

static void test_pause_events_and_close_cascade(void **state) {
  fx_t *f = *state;
  mf_router_transport_t *send, *recv;
  assert_int_equal(mf_router_create_webrtc_transport(f->router, &send), MF_OK);
  assert_int_equal(mf_router_create_webrtc_transport(f->router, &recv), MF_OK);
  mf_producer_t *p = produce_vp8(f, send);
  char err[256], pid[64], c1id[64], tid[64];
  snprintf(pid, sizeof pid, "%s", mf_producer_id(p));
  snprintf(tid, sizeof tid, "%s", mf_router_transport_id(send));
  mf_consumer_t *c1, *c2;
  const mf_rtp_capabilities_t *caps = mf_router_rtp_capabilities(f->router);
  assert_int_equal(mf_router_consume(recv, pid, caps, false, err, sizeof err, &c1), MF_OK);
  assert_int_equal(mf_router_consume(recv, pid, caps, false, err, sizeof err, &c2), MF_OK);
  snprintf(c1id, sizeof c1id, "%s", mf_consumer_id(c1));

  mf_producer_pause(p);
  mf_producer_pause(p); /* idempotent: no second event */
  assert_int_equal(f->producerpause, 2);
  assert_true(mf_consumer_producer_paused(c1));
  mf_producer_resume(p);
  assert_int_equal(f->producerresume, 2);
  assert_false(mf_consumer_producer_paused(c2));

  mf_consumer_close(c2);
  assert_int_equal(f->producerclose, 0);
  /* closing the producer's transport closes the producer, whose consumers get producerclose */
  assert_ptr_equal(mf_router_find_transport(f->router, tid), send);
  mf_router_transport_close(send);
  assert_int_equal(f->producerclose, 1);
  assert_string_equal(f->last_target, c1id);
  assert_null(mf_router_find_producer(f->router, pid));
  assert_null(mf_router_find_consumer(f->router, c1id));
  assert_null(mf_router_find_transport(f->router, tid));
  /* the router closes what is left, announcing each transport */
  mf_router_close(f->router);
  f->router = NULL;
  assert_int_equal(f->transportclose, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_produce_errors_are_clear, setup, teardown),
      cmocka_unit_test_setup_teardown(test_consume_parameters_and_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pause_events_and_close_cascade, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
