/* The RTP parameter / capability serializers under allocation failure: jansson's allocator
 * is replaced by one that fails the k-th allocation, for every k until the output builds.
 * Each failure must give NULL (never a half-built object) and free what was built (ASan's
 * leak check fails the test otherwise); the final, unfailed result must equal the one built
 * with the ordinary allocator. Also the parsers' round trip for every optional field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "node/ortc.h"
#include "node/rtp_parameters.h"

static long g_fail_at = -1; /* allocation number that fails; -1: none */
static long g_count;

static void *failing_malloc(size_t n) {
  if (g_fail_at >= 0 && g_count++ == g_fail_at) return NULL;
  return malloc(n);
}

typedef json_t *(*build_fn)(const void *arg);

/* Fails allocation 0, 1, 2, ... of build(arg) until it succeeds; returns how many
 * allocations the successful build made. */
static long exercise(build_fn build, const void *arg) {
  json_t *want = build(arg);
  assert_non_null(want);
  json_set_alloc_funcs(failing_malloc, free);
  long k = 0;
  for (;; k++) {
    g_fail_at = k;
    g_count = 0;
    json_t *got = build(arg);
    bool failed = g_count > k; /* the k-th allocation happened, and failed */
    g_fail_at = -1;
    if (!failed) {
      assert_non_null(got);
      assert_true(json_equal(got, want));
      json_decref(got);
      break;
    }
    assert_null(got);
  }
  json_set_alloc_funcs(malloc, free);
  json_decref(want);
  return k;
}

static json_t *caps_json(const void *arg) { return mf_rtp_capabilities_to_json(arg); }
static json_t *params_json(const void *arg) { return mf_rtp_parameters_to_json(arg); }
static json_t *codec_cap_json(const void *arg) { return mf_rtp_codec_capability_to_json(arg); }
static json_t *ext_cap_json(const void *arg) { return mf_rtp_header_extension_to_json(arg); }

/* Every optional field of RtpParameters, so every branch of the serializer is taken. */
static const char *const rich =
    "{\"mid\":\"m0\",\"codecs\":[{\"mimeType\":\"audio/opus\",\"payloadType\":111,\"clockRate\":48000,"
    "\"channels\":2,\"parameters\":{\"useinbandfec\":1,\"x-real\":0.5,\"x-text\":\"on\"},"
    "\"rtcpFeedback\":[{\"type\":\"transport-cc\"},{\"type\":\"nack\",\"parameter\":\"\"}]}],"
    "\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:ssrc-audio-level\",\"id\":1,"
    "\"encrypt\":false,\"parameters\":{\"vad\":\"on\"}},"
    "{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"id\":2}],"
    "\"encodings\":[{\"ssrc\":11,\"rid\":\"q\",\"codecPayloadType\":111,\"rtx\":{\"ssrc\":12},"
    "\"dtx\":true,\"scalabilityMode\":\"L1T3\",\"scaleResolutionDownBy\":1.5,\"maxBitrate\":64000,"
    "\"maxFramerate\":30,\"adaptivePtime\":false,\"priority\":\"high\",\"networkPriority\":\"low\"},"
    "{\"ssrc\":13}],"
    "\"rtcp\":{\"cname\":\"c\",\"reducedSize\":true,\"mux\":true}}";

static void test_serializers_under_allocation_failure(void **state) {
  (void)state;
  static mf_rtp_capabilities_t caps;
  size_t n = 0;
  const mf_rtp_codec_capability_t *codecs = mf_ortc_default_media_codecs(&n);
  char err[256] = "";
  assert_int_equal(mf_ortc_generate_router_rtp_capabilities(codecs, n, &caps, err, sizeof err), MF_OK);
  /* the router's capabilities: every codec (with rtx) and header extension */
  assert_true(exercise(caps_json, &caps) > 100);
  assert_true(exercise(codec_cap_json, &caps.codecs[0]) > 0);
  assert_true(exercise(ext_cap_json, &caps.header_extensions[0]) > 0);

  json_t *j = json_loads(rich, 0, NULL);
  assert_non_null(j);
  static mf_rtp_parameters_t p;
  mf_err_t e = mf_rtp_parameters_from_json(j, "rtpParameters", &p, err, sizeof err);
  if (e) print_error("%s\n", err);
  assert_int_equal(e, MF_OK);
  /* what was read comes back out, mediasoup's number shapes included (30.0 -> 30) */
  json_t *out = mf_rtp_parameters_to_json(&p);
  json_t *enc = json_array_get(json_object_get(out, "encodings"), 0);
  assert_true(json_is_integer(json_object_get(enc, "maxFramerate")));
  assert_true(json_is_real(json_object_get(enc, "scaleResolutionDownBy")));
  assert_string_equal(json_string_value(json_object_get(enc, "networkPriority")), "low");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(enc, "rtx"), "ssrc")), 12);
  json_t *codec = json_array_get(json_object_get(out, "codecs"), 0);
  assert_true(json_is_real(json_object_get(json_object_get(codec, "parameters"), "x-real")));
  assert_true(json_equal(json_object_get(j, "rtcp"), json_object_get(out, "rtcp")));
  json_decref(out);
  json_decref(j);
  assert_true(exercise(params_json, &p) > 20);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_serializers_under_allocation_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
