/* ortc: router capabilities, producer mapping, consumable and consumer parameters, codec
 * matching, with inputs shaped as mediasoup-client sends them and outputs compared to
 * what mediasoup would answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/ortc.h"

static json_t *load(const char *text) {
  json_error_t jerr;
  json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
  if (!j) fail_msg("bad test JSON at %d: %s\n%s", jerr.position, jerr.text, text);
  return j;
}

static void assert_json_text(const char *want_text, json_t *got) {
  json_t *want = load(want_text);
  if (!json_equal(want, got)) {
    char *sa = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
    char *sb = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
    print_error("expected %s\n     got %s\n", sa, sb);
    free(sa);
    free(sb);
    fail();
  }
  json_decref(want);
}

static mf_rtp_parameters_t *params_from(const char *text) {
  mf_rtp_parameters_t *p = calloc(1, sizeof *p);
  json_t *j = load(text);
  char err[256] = "";
  if (mf_rtp_parameters_from_json(j, "rtpParameters", p, err, sizeof err) != MF_OK)
    fail_msg("parse: %s", err);
  if (mf_ortc_validate_rtp_parameters(p, err, sizeof err) != MF_OK) fail_msg("validate: %s", err);
  json_decref(j);
  return p;
}

static mf_rtp_capabilities_t *caps_from(const char *text) {
  mf_rtp_capabilities_t *c = calloc(1, sizeof *c);
  json_t *j = load(text);
  char err[256] = "";
  if (mf_rtp_capabilities_from_json(j, "rtpCapabilities", c, err, sizeof err) != MF_OK)
    fail_msg("parse: %s", err);
  if (mf_ortc_validate_rtp_capabilities(c, err, sizeof err) != MF_OK)
    fail_msg("validate: %s", err);
  json_decref(j);
  return c;
}

static mf_rtp_capabilities_t *default_router_caps(void) {
  mf_rtp_capabilities_t *c = calloc(1, sizeof *c);
  size_t n = 0;
  const mf_rtp_codec_capability_t *codecs = mf_ortc_default_media_codecs(&n);
  char err[256] = "";
  assert_int_equal(mf_ortc_generate_router_rtp_capabilities(codecs, n, c, err, sizeof err),
                   MF_OK);
  return c;
}

#define FB_VIDEO                                                                          \
  "[{\"type\":\"nack\",\"parameter\":\"\"},{\"type\":\"nack\",\"parameter\":\"pli\"},"   \
  "{\"type\":\"ccm\",\"parameter\":\"fir\"},{\"type\":\"goog-remb\",\"parameter\":\"\"}," \
  "{\"type\":\"transport-cc\",\"parameter\":\"\"}]"
#define RTX(pt, apt)                                                                   \
  "{\"kind\":\"video\",\"mimeType\":\"video/rtx\",\"preferredPayloadType\":" #pt      \
  ",\"clockRate\":90000,\"parameters\":{\"apt\":" #apt "},\"rtcpFeedback\":[]}"
#define EXT(kind, uri, id, dir)                                                            \
  "{\"kind\":\"" kind "\",\"uri\":\"" uri "\",\"preferredId\":" #id                       \
  ",\"preferredEncrypt\":false,\"direction\":\"" dir "\"}"

/* mediasoup's router.rtpCapabilities for the default media codecs. */
static const char *const DEFAULT_ROUTER_CAPS =
    "{\"codecs\":["
    "{\"kind\":\"audio\",\"mimeType\":\"audio/opus\",\"preferredPayloadType\":100,"
    "\"clockRate\":48000,\"channels\":2,\"parameters\":{},"
    "\"rtcpFeedback\":[{\"type\":\"transport-cc\",\"parameter\":\"\"}]},"
    "{\"kind\":\"video\",\"mimeType\":\"video/VP8\",\"preferredPayloadType\":101,"
    "\"clockRate\":90000,\"parameters\":{},\"rtcpFeedback\":" FB_VIDEO "}," RTX(102, 101) ","
    "{\"kind\":\"video\",\"mimeType\":\"video/VP9\",\"preferredPayloadType\":103,"
    "\"clockRate\":90000,\"parameters\":{\"profile-id\":0},\"rtcpFeedback\":" FB_VIDEO
    "}," RTX(104, 103) ","
    "{\"kind\":\"video\",\"mimeType\":\"video/H264\",\"preferredPayloadType\":105,"
    "\"clockRate\":90000,\"parameters\":{\"level-asymmetry-allowed\":1,"
    "\"packetization-mode\":1,\"profile-level-id\":\"42e01f\"},\"rtcpFeedback\":" FB_VIDEO
    "}," RTX(106, 105) ","
    "{\"kind\":\"video\",\"mimeType\":\"video/AV1\",\"preferredPayloadType\":107,"
    "\"clockRate\":90000,\"parameters\":{},\"rtcpFeedback\":" FB_VIDEO "}," RTX(108, 107)
    "],\"headerExtensions\":["
    EXT("audio", "urn:ietf:params:rtp-hdrext:sdes:mid", 1, "sendrecv") ","
    EXT("video", "urn:ietf:params:rtp-hdrext:sdes:mid", 1, "sendrecv") ","
    EXT("video", "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", 2, "recvonly") ","
    EXT("video", "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id", 3, "recvonly") ","
    EXT("audio", "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", 4,
        "sendrecv") ","
    EXT("video", "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", 4,
        "sendrecv") ","
    /* mediasoup's directions: the router sends transport-cc feedback. */
    EXT("audio", "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        5, "recvonly") ","
    EXT("video", "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        5, "sendrecv") ","
    EXT("audio", "urn:ietf:params:rtp-hdrext:ssrc-audio-level", 10, "sendrecv") ","
    EXT("video", "urn:3gpp:video-orientation", 11, "sendrecv") ","
    EXT("video", "urn:ietf:params:rtp-hdrext:toffset", 12, "sendrecv") "]}";

/* mediasoup-client (Chrome) produce(): VP8 + rtx, one encoding with ssrcs. */
static const char *const PRODUCE_VP8 =
    "{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
    "\"parameters\":{},\"rtcpFeedback\":[{\"type\":\"goog-remb\",\"parameter\":\"\"},"
    "{\"type\":\"transport-cc\",\"parameter\":\"\"},{\"type\":\"ccm\",\"parameter\":\"fir\"},"
    "{\"type\":\"nack\",\"parameter\":\"\"},{\"type\":\"nack\",\"parameter\":\"pli\"}]},"
    "{\"mimeType\":\"video/rtx\",\"payloadType\":97,\"clockRate\":90000,"
    "\"parameters\":{\"apt\":96},\"rtcpFeedback\":[]}],"
    "\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"id\":4,"
    "\"encrypt\":false,\"parameters\":{}},{\"uri\":\"http://www.webrtc.org/experiments/"
    "rtp-hdrext/abs-send-time\",\"id\":2,\"encrypt\":false,\"parameters\":{}},"
    "{\"uri\":\"http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\","
    "\"id\":3,\"encrypt\":false,\"parameters\":{}}],"
    "\"encodings\":[{\"ssrc\":1111111111,\"rtx\":{\"ssrc\":2222222222},\"dtx\":false}],"
    "\"rtcp\":{\"cname\":\"abcdEFGH\",\"reducedSize\":true},\"mid\":\"0\"}";

/* Simulcast: three encodings with rid and no ssrc. */
static const char *const PRODUCE_SIMULCAST =
    "{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
    "\"parameters\":{},\"rtcpFeedback\":[]},{\"mimeType\":\"video/rtx\",\"payloadType\":97,"
    "\"clockRate\":90000,\"parameters\":{\"apt\":96},\"rtcpFeedback\":[]}],"
    "\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"id\":4},"
    "{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\",\"id\":10},"
    "{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\",\"id\":11}],"
    "\"encodings\":[{\"active\":true,\"scaleResolutionDownBy\":4,\"maxBitrate\":100000,"
    "\"rid\":\"r0\",\"scalabilityMode\":\"L1T3\",\"dtx\":false},{\"active\":true,"
    "\"scaleResolutionDownBy\":2,\"maxBitrate\":300000,\"rid\":\"r1\","
    "\"scalabilityMode\":\"L1T3\",\"dtx\":false},{\"active\":true,"
    "\"scaleResolutionDownBy\":1,\"maxBitrate\":900000,\"rid\":\"r2\","
    "\"scalabilityMode\":\"L1T3\",\"dtx\":false}],"
    "\"rtcp\":{\"cname\":\"simCname\",\"reducedSize\":true},\"mid\":\"1\"}";

static const char *const PRODUCE_OPUS =
    "{\"codecs\":[{\"mimeType\":\"audio/opus\",\"payloadType\":111,\"clockRate\":48000,"
    "\"channels\":2,\"parameters\":{\"minptime\":10,\"useinbandfec\":1,\"sprop-stereo\":1},"
    "\"rtcpFeedback\":[{\"type\":\"transport-cc\",\"parameter\":\"\"}]}],"
    "\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"id\":4},"
    "{\"uri\":\"urn:ietf:params:rtp-hdrext:ssrc-audio-level\",\"id\":1}],"
    "\"encodings\":[{\"ssrc\":33333333,\"dtx\":false}],"
    "\"rtcp\":{\"cname\":\"audioCname\",\"reducedSize\":true},\"mid\":\"2\"}";

/* mediasoup-client's device.rtpCapabilities (recv side) for Chrome: router payload
 * types, header extensions listed for video only. */
#define DEVICE_EXT(uri, id) \
  "{\"kind\":\"video\",\"uri\":\"" uri "\",\"preferredId\":" #id ",\"direction\":\"sendrecv\"}"
#define DEV_MID DEVICE_EXT("urn:ietf:params:rtp-hdrext:sdes:mid", 1)
#define DEV_ABS DEVICE_EXT("http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", 4)
#define DEV_TCC \
  DEVICE_EXT("http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", 5)
#define DEV_VO DEVICE_EXT("urn:3gpp:video-orientation", 11)
#define DEV_OPUS                                                                         \
  "{\"kind\":\"audio\",\"mimeType\":\"audio/opus\",\"preferredPayloadType\":100,"       \
  "\"clockRate\":48000,\"channels\":2,\"rtcpFeedback\":[{\"type\":\"transport-cc\"}]}"
#define DEV_VP8                                                                            \
  "{\"kind\":\"video\",\"mimeType\":\"video/VP8\",\"preferredPayloadType\":101,"          \
  "\"clockRate\":90000,\"rtcpFeedback\":[{\"type\":\"goog-remb\"},{\"type\":"             \
  "\"transport-cc\"},{\"type\":\"ccm\",\"parameter\":\"fir\"},{\"type\":\"nack\"},"       \
  "{\"type\":\"nack\",\"parameter\":\"pli\"}]}"
#define DEV_RTX(pt, apt)                                                                  \
  "{\"kind\":\"video\",\"mimeType\":\"video/rtx\",\"preferredPayloadType\":" #pt         \
  ",\"clockRate\":90000,\"parameters\":{\"apt\":" #apt "}}"
#define DEV_H264                                                                         \
  "{\"kind\":\"video\",\"mimeType\":\"video/H264\",\"preferredPayloadType\":105,"       \
  "\"clockRate\":90000,\"parameters\":{\"level-asymmetry-allowed\":1,"                   \
  "\"packetization-mode\":1,\"profile-level-id\":\"42e01f\"},\"rtcpFeedback\":[{"        \
  "\"type\":\"nack\"}]}"

static const char *const DEVICE_FULL =
    "{\"codecs\":[" DEV_OPUS "," DEV_VP8 "," DEV_RTX(102, 101) "," DEV_H264 "," DEV_RTX(106, 105)
    "],\"headerExtensions\":[" DEV_MID "," DEV_ABS "," DEV_TCC "," DEV_VO "]}";

/* ---- router capabilities ---- */

static void test_default_router_capabilities(void **state) {
  (void)state;
  mf_rtp_capabilities_t *caps = default_router_caps();
  json_t *j = mf_rtp_capabilities_to_json(caps);
  assert_json_text(DEFAULT_ROUTER_CAPS, j);
  json_decref(j);
  free(caps);
}

static void test_supported_capabilities(void **state) {
  (void)state;
  const mf_rtp_capabilities_t *s = mf_ortc_supported_rtp_capabilities();
  assert_int_equal(s->header_extension_count, 11);
  /* opus, VP8, VP9 x2, H264 x3, AV1 */
  assert_int_equal(s->codec_count, 8);
  int h264 = 0;
  for (size_t i = 0; i < s->codec_count; i++) {
    if (strcmp(s->codecs[i].mime_type, "video/H264") == 0) {
      int64_t pm = 0;
      assert_true(mf_rtp_params_get_int(&s->codecs[i].parameters, "packetization-mode", &pm));
      assert_int_equal(pm, 1);
      h264++;
    }
  }
  assert_int_equal(h264, 3);
  assert_ptr_equal(s, mf_ortc_supported_rtp_capabilities()); /* static */
}

typedef struct {
  const char *media_codecs; /* JSON array */
  mf_err_t rc;
  const char *message; /* on error */
  const char *codecs;  /* on success: "mime:pt[:apt]" list */
} router_case_t;

static const router_case_t router_cases[] = {
    {"[]", MF_OK, NULL, ""},
    {"[{\"kind\":\"video\",\"mimeType\":\"video/VP8\",\"clockRate\":90000,"
     "\"preferredPayloadType\":96},{\"kind\":\"audio\",\"mimeType\":\"audio/opus\","
     "\"clockRate\":48000,\"channels\":2}]",
     MF_OK, NULL, "video/VP8:96 video/rtx:100:96 audio/opus:101"},
    /* mimeType is matched case-insensitively; a requested pt is kept */
    {"[{\"kind\":\"video\",\"mimeType\":\"video/vp8\",\"clockRate\":90000},"
     "{\"kind\":\"audio\",\"mimeType\":\"audio/opus\",\"clockRate\":48000,\"channels\":2,"
     "\"preferredPayloadType\":111}]",
     MF_OK, NULL, "video/VP8:100 video/rtx:101:100 audio/opus:111"},
    {"[{\"kind\":\"video\",\"mimeType\":\"video/VP9\",\"clockRate\":90000,"
     "\"parameters\":{\"profile-id\":2}},{\"kind\":\"video\",\"mimeType\":\"video/H264\","
     "\"clockRate\":90000,\"parameters\":{\"packetization-mode\":1,"
     "\"profile-level-id\":\"640032\"}}]",
     MF_OK, NULL, "video/VP9:100 video/rtx:101:100 video/H264:102 video/rtx:103:102"},
    {"[{\"kind\":\"video\",\"mimeType\":\"video/H265\",\"clockRate\":90000}]",
     MF_ERR_UNSUPPORTED, "media codec not supported [mimeType:video/H265]", NULL},
    /* opus without channels means 1 channel: not what we support */
    {"[{\"kind\":\"audio\",\"mimeType\":\"audio/opus\",\"clockRate\":48000}]",
     MF_ERR_UNSUPPORTED, "media codec not supported [mimeType:audio/opus]", NULL},
    {"[{\"kind\":\"video\",\"mimeType\":\"video/VP8\",\"clockRate\":48000}]",
     MF_ERR_UNSUPPORTED, "media codec not supported [mimeType:video/VP8]", NULL},
    {"[{\"kind\":\"video\",\"mimeType\":\"video/VP8\",\"clockRate\":90000,"
     "\"preferredPayloadType\":96},{\"kind\":\"video\",\"mimeType\":\"video/VP9\","
     "\"clockRate\":90000,\"preferredPayloadType\":96}]",
     MF_ERR_INVALID_ARG, "duplicated codec.preferredPayloadType [96, mimeType:video/VP9]", NULL},
    /* the automatic rtx pt of VP8 (101) is then requested by VP9 */
    {"[{\"kind\":\"video\",\"mimeType\":\"video/VP8\",\"clockRate\":90000},"
     "{\"kind\":\"video\",\"mimeType\":\"video/VP9\",\"clockRate\":90000,"
     "\"preferredPayloadType\":101}]",
     MF_ERR_INVALID_ARG, "duplicated codec.preferredPayloadType [101, mimeType:video/VP9]", NULL},
    {"[{\"kind\":\"video\",\"mimeType\":\"VP8\",\"clockRate\":90000}]", MF_ERR_INVALID_ARG,
     "mediaCodecs[0]: invalid codec.mimeType [VP8]", NULL},
};

static void describe_codecs(const mf_rtp_capabilities_t *caps, char *out, size_t n) {
  out[0] = '\0';
  for (size_t i = 0; i < caps->codec_count; i++) {
    char one[64];
    int64_t apt;
    if (mf_rtp_params_get_int(&caps->codecs[i].parameters, "apt", &apt)) {
      snprintf(one, sizeof one, "%s%s:%u:%lld", i ? " " : "", caps->codecs[i].mime_type,
               caps->codecs[i].preferred_payload_type, (long long)apt);
    } else {
      snprintf(one, sizeof one, "%s%s:%u", i ? " " : "", caps->codecs[i].mime_type,
               caps->codecs[i].preferred_payload_type);
    }
    strncat(out, one, n - strlen(out) - 1);
  }
}

static void test_router_capabilities_table(void **state) {
  (void)state;
  mf_rtp_capabilities_t *caps = calloc(1, sizeof *caps);
  mf_rtp_codec_capability_t media[8];
  for (size_t i = 0; i < sizeof router_cases / sizeof router_cases[0]; i++) {
    const router_case_t *tc = &router_cases[i];
    json_t *j = load(tc->media_codecs);
    size_t n = 8;
    char err[256] = "";
    assert_int_equal(
        mf_rtp_codec_capabilities_from_json_array(j, "mediaCodecs", media, &n, err, sizeof err),
        MF_OK);
    json_decref(j);
    mf_err_t rc = mf_ortc_generate_router_rtp_capabilities(media, n, caps, err, sizeof err);
    if (rc != tc->rc) fail_msg("case %zu: rc %d want %d (%s)", i, rc, tc->rc, err);
    if (rc != MF_OK) {
      if (strcmp(err, tc->message) != 0) fail_msg("case %zu: \"%s\" want \"%s\"", i, err,
                                                  tc->message);
      continue;
    }
    char got[512];
    describe_codecs(caps, got, sizeof got);
    if (strcmp(got, tc->codecs) != 0) fail_msg("case %zu: \"%s\" want \"%s\"", i, got, tc->codecs);
    assert_int_equal(caps->header_extension_count, 11);
  }
  free(caps);
}

static void test_router_capabilities_limits(void **state) {
  (void)state;
  mf_rtp_capabilities_t *caps = calloc(1, sizeof *caps);
  mf_rtp_codec_capability_t media[17];
  memset(media, 0, sizeof media);
  for (int i = 0; i < 17; i++) {
    media[i].kind = MF_MEDIA_KIND_VIDEO;
    strcpy(media[i].mime_type, "video/VP8");
    media[i].clock_rate = 90000;
  }
  char err[256] = "";
  /* 16 video codecs use every dynamic payload type (32, each with rtx) */
  assert_int_equal(mf_ortc_generate_router_rtp_capabilities(media, 16, caps, err, sizeof err),
                   MF_OK);
  assert_int_equal(caps->codec_count, 32);
  assert_int_equal(caps->codecs[31].preferred_payload_type, 99);
  assert_int_equal(mf_ortc_generate_router_rtp_capabilities(media, 17, caps, err, sizeof err),
                   MF_ERR_LIMIT);
  assert_string_equal(err, "too many media codecs (max 32 with rtx)");
  /* 32 audio codecs use every dynamic payload type too */
  mf_rtp_codec_capability_t *opus = calloc(33, sizeof *opus);
  for (int i = 0; i < 33; i++) {
    opus[i].kind = MF_MEDIA_KIND_AUDIO;
    strcpy(opus[i].mime_type, "audio/opus");
    opus[i].clock_rate = 48000;
    opus[i].channels = 2;
  }
  assert_int_equal(mf_ortc_generate_router_rtp_capabilities(opus, 32, caps, err, sizeof err),
                   MF_OK);
  free(opus);
  free(caps);
}

/* ---- validation ---- */

static void test_validate_fills_defaults(void **state) {
  (void)state;
  mf_rtp_parameters_t *p = calloc(1, sizeof *p);
  json_t *j = load("{\"codecs\":[{\"mimeType\":\"audio/opus\",\"payloadType\":111,"
                   "\"clockRate\":48000,\"rtcpFeedback\":[{\"type\":\"transport-cc\"}]},"
                   "{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
                   "\"channels\":2}],\"headerExtensions\":[{\"uri\":\"u\",\"id\":3}],"
                   "\"encodings\":[{\"ssrc\":1}],\"rtcp\":{\"reducedSize\":false}}");
  char err[256] = "";
  assert_int_equal(mf_rtp_parameters_from_json(j, "p", p, err, sizeof err), MF_OK);
  assert_int_equal(mf_ortc_validate_rtp_parameters(p, err, sizeof err), MF_OK);
  json_t *out = mf_rtp_parameters_to_json(p);
  /* channels 1 for audio, none for video, fb parameter "", dtx false, encrypt false,
   * parameters {}, reducedSize forced to true as mediasoup's `!rtcp.reducedSize` does */
  assert_json_text(
      "{\"codecs\":[{\"mimeType\":\"audio/opus\",\"payloadType\":111,\"clockRate\":48000,"
      "\"channels\":1,\"parameters\":{},\"rtcpFeedback\":[{\"type\":\"transport-cc\","
      "\"parameter\":\"\"}]},{\"mimeType\":\"video/VP8\",\"payloadType\":96,"
      "\"clockRate\":90000,\"parameters\":{},\"rtcpFeedback\":[]}],\"headerExtensions\":[{"
      "\"uri\":\"u\",\"id\":3,\"encrypt\":false,\"parameters\":{}}],\"encodings\":[{"
      "\"ssrc\":1,\"dtx\":false}],\"rtcp\":{\"reducedSize\":true}}",
      out);
  json_decref(out);
  json_decref(j);

  mf_rtp_capabilities_t *c = calloc(1, sizeof *c);
  j = load("{\"codecs\":[{\"kind\":\"video\",\"mimeType\":\"audio/opus\",\"clockRate\":48000}],"
           "\"headerExtensions\":[{\"kind\":\"audio\",\"uri\":\"u\",\"preferredId\":3}]}");
  assert_int_equal(mf_rtp_capabilities_from_json(j, "c", c, err, sizeof err), MF_OK);
  assert_int_equal(mf_ortc_validate_rtp_capabilities(c, err, sizeof err), MF_OK);
  out = mf_rtp_capabilities_to_json(c);
  assert_json_text("{\"codecs\":[{\"kind\":\"audio\",\"mimeType\":\"audio/opus\","
                   "\"clockRate\":48000,\"channels\":1,\"parameters\":{},\"rtcpFeedback\":[]}],"
                   "\"headerExtensions\":[{\"kind\":\"audio\",\"uri\":\"u\",\"preferredId\":3,"
                   "\"preferredEncrypt\":false,\"direction\":\"sendrecv\"}]}",
                   out);
  json_decref(out);
  json_decref(j);
  free(c);
  free(p);
}

static void test_validate_errors(void **state) {
  (void)state;
  static const struct {
    const char *json;
    const char *message;
  } cases[] = {
      {"{\"codecs\":[{\"mimeType\":\"VP8\",\"payloadType\":96,\"clockRate\":90000}]}",
       "codecs[0]: invalid codec.mimeType [VP8]"},
      {"{\"codecs\":[{\"mimeType\":\"video/\",\"payloadType\":96,\"clockRate\":90000}]}",
       "codecs[0]: invalid codec.mimeType [video/]"},
      {"{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000},"
       "{\"mimeType\":\"video/rtx\",\"payloadType\":97,\"clockRate\":90000}]}",
       "codecs[1]: rtx codec needs an apt parameter 0..127"},
      {"{\"codecs\":[{\"mimeType\":\"video/rtx\",\"payloadType\":97,\"clockRate\":90000,"
       "\"parameters\":{\"apt\":\"96\"}}]}",
       "codecs[0]: invalid codec apt parameter"},
  };
  mf_rtp_parameters_t *p = calloc(1, sizeof *p);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *j = load(cases[i].json);
    char err[256] = "";
    assert_int_equal(mf_rtp_parameters_from_json(j, "p", p, err, sizeof err), MF_OK);
    assert_int_equal(mf_ortc_validate_rtp_parameters(p, err, sizeof err), MF_ERR_INVALID_ARG);
    if (strcmp(err, cases[i].message) != 0) fail_msg("case %zu: \"%s\"", i, err);
    json_decref(j);
  }
  free(p);
}

/* ---- producer mapping ---- */

typedef struct {
  mf_rtp_capabilities_t *router;
  mf_rtp_parameters_t *params;
  mf_rtp_mapping_t mapping;
  mf_rtp_parameters_t *consumable;
  mf_rtp_parameters_t *consumer;
} flow_t;

static flow_t *flow_new(const char *produce, mf_media_kind_t kind) {
  flow_t *f = calloc(1, sizeof *f);
  f->router = default_router_caps();
  f->params = params_from(produce);
  f->consumable = calloc(1, sizeof *f->consumable);
  f->consumer = calloc(1, sizeof *f->consumer);
  char err[256] = "";
  if (mf_ortc_get_producer_rtp_parameters_mapping(f->params, f->router, &f->mapping, err,
                                                  sizeof err) != MF_OK)
    fail_msg("mapping: %s", err);
  if (mf_ortc_get_consumable_rtp_parameters(kind, f->params, f->router, &f->mapping,
                                            f->consumable, err, sizeof err) != MF_OK)
    fail_msg("consumable: %s", err);
  return f;
}

static void flow_free(flow_t *f) {
  free(f->router);
  free(f->params);
  free(f->consumable);
  free(f->consumer);
  free(f);
}

static void assert_ssrc_range(uint32_t ssrc) {
  assert_in_range(ssrc, 100000000u, 999999999u + 8u);
}

static void test_mapping_vp8_rtx(void **state) {
  (void)state;
  flow_t *f = flow_new(PRODUCE_VP8, MF_MEDIA_KIND_VIDEO);
  assert_int_equal(f->mapping.codec_count, 2);
  assert_int_equal(f->mapping.codecs[0].payload_type, 96);
  assert_int_equal(f->mapping.codecs[0].mapped_payload_type, 101);
  assert_int_equal(f->mapping.codecs[1].payload_type, 97);
  assert_int_equal(f->mapping.codecs[1].mapped_payload_type, 102);
  assert_int_equal(f->mapping.encoding_count, 1);
  assert_true(f->mapping.encodings[0].has_ssrc);
  assert_int_equal(f->mapping.encodings[0].ssrc, 1111111111u);
  assert_string_equal(f->mapping.encodings[0].rid, "");
  assert_ssrc_range(f->mapping.encodings[0].mapped_ssrc);
  flow_free(f);
}

static void test_mapping_simulcast(void **state) {
  (void)state;
  flow_t *f = flow_new(PRODUCE_SIMULCAST, MF_MEDIA_KIND_VIDEO);
  assert_int_equal(f->mapping.encoding_count, 3);
  static const char *const rids[] = {"r0", "r1", "r2"};
  for (size_t i = 0; i < 3; i++) {
    const mf_rtp_mapping_encoding_t *e = &f->mapping.encodings[i];
    assert_false(e->has_ssrc);
    assert_string_equal(e->rid, rids[i]);
    assert_string_equal(e->scalability_mode, "L1T3");
    assert_ssrc_range(e->mapped_ssrc);
    /* distinct: consecutive from one random base, as mediasoup */
    assert_int_equal(e->mapped_ssrc, f->mapping.encodings[0].mapped_ssrc + i);
  }
  flow_free(f);
}

static void test_mapping_opus(void **state) {
  (void)state;
  flow_t *f = flow_new(PRODUCE_OPUS, MF_MEDIA_KIND_AUDIO);
  assert_int_equal(f->mapping.codec_count, 1);
  assert_int_equal(f->mapping.codecs[0].payload_type, 111);
  assert_int_equal(f->mapping.codecs[0].mapped_payload_type, 100);
  assert_int_equal(f->mapping.encodings[0].ssrc, 33333333u);
  flow_free(f);
}

#define P_VP8(pt) \
  "{\"mimeType\":\"video/VP8\",\"payloadType\":" #pt ",\"clockRate\":90000}"
#define P_RTX(pt, apt)                                                                  \
  "{\"mimeType\":\"video/rtx\",\"payloadType\":" #pt ",\"clockRate\":90000,"           \
  "\"parameters\":{\"apt\":" #apt "}}"
#define P_H264(params) \
  "{\"mimeType\":\"video/H264\",\"payloadType\":102,\"clockRate\":90000,\"parameters\":" params "}"
#define ENC1 ",\"encodings\":[{\"ssrc\":1}]}"

static void test_mapping_errors(void **state) {
  (void)state;
  static const struct {
    const char *json;
    mf_err_t rc;
    const char *message;
  } cases[] = {
      {"{\"codecs\":[{\"mimeType\":\"video/H265\",\"payloadType\":98,\"clockRate\":90000}]" ENC1,
       MF_ERR_UNSUPPORTED, "unsupported codec [mimeType:video/H265, payloadType:98]"},
      {"{\"codecs\":[" P_VP8(96) "," P_RTX(97, 95) "]" ENC1, MF_ERR_INVALID_ARG,
       "missing media codec found for RTX PT 97"},
      {"{\"codecs\":[" P_VP8(96) "," P_RTX(97, 97) "]" ENC1, MF_ERR_INVALID_ARG,
       "missing media codec found for RTX PT 97"},
      {"{\"codecs\":[" P_H264("{\"packetization-mode\":1,\"profile-level-id\":\"4d001f\"}") "]" ENC1,
       MF_ERR_UNSUPPORTED, "unsupported codec [mimeType:video/H264, payloadType:102]"},
      {"{\"codecs\":[" P_H264("{\"profile-level-id\":\"42e01f\"}") "]" ENC1, MF_ERR_UNSUPPORTED,
       "unsupported codec [mimeType:video/H264, payloadType:102]"},
      {"{\"codecs\":[{\"mimeType\":\"video/VP9\",\"payloadType\":98,\"clockRate\":90000,"
       "\"parameters\":{\"profile-id\":2}}]" ENC1,
       MF_ERR_UNSUPPORTED, "unsupported codec [mimeType:video/VP9, payloadType:98]"},
      {"{\"codecs\":[" P_VP8(96) "," P_VP8(96) "]" ENC1, MF_ERR_INVALID_ARG,
       "duplicated codec payloadType 96"},
      {"{\"codecs\":[" P_VP8(96) "]}", MF_ERR_INVALID_ARG, "empty rtpParameters.encodings"},
      {"{\"codecs\":[]" ENC1, MF_ERR_INVALID_ARG, "empty rtpParameters.codecs"},
  };
  mf_rtp_capabilities_t *router = default_router_caps();
  mf_rtp_mapping_t mapping;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_rtp_parameters_t *p = params_from(cases[i].json);
    char err[256] = "";
    mf_err_t rc = mf_ortc_get_producer_rtp_parameters_mapping(p, router, &mapping, err, sizeof err);
    if (rc != cases[i].rc || strcmp(err, cases[i].message) != 0)
      fail_msg("case %zu: %d \"%s\"", i, rc, err);
    free(p);
  }
  /* a router whose VP8 has no rtx */
  mf_rtp_capabilities_t *no_rtx = calloc(1, sizeof *no_rtx);
  *no_rtx = *router;
  no_rtx->codecs[2] = no_rtx->codecs[3]; /* drop video/rtx apt 101 */
  mf_rtp_parameters_t *p = params_from("{\"codecs\":[" P_VP8(96) "," P_RTX(97, 96) "]" ENC1);
  char err[256] = "";
  assert_int_equal(mf_ortc_get_producer_rtp_parameters_mapping(p, no_rtx, &mapping, err, sizeof err),
                   MF_ERR_UNSUPPORTED);
  assert_string_equal(err, "no RTX codec for capability codec PT 101");
  free(p);
  free(no_rtx);
  free(router);
}

static void test_mapping_h264_profile_level_id(void **state) {
  (void)state;
  /* the producer's profile-level-id becomes the answer's, as matchCodecs({modify:true}) */
  static const struct {
    const char *params;
    const char *result; /* NULL: removed */
  } cases[] = {
      {"{\"packetization-mode\":1,\"profile-level-id\":\"42e01f\",\"level-asymmetry-allowed\":1}",
       "42e01f"},
      {"{\"packetization-mode\":1,\"profile-level-id\":\"42e034\",\"level-asymmetry-allowed\":1}",
       "42e034"},
      {"{\"packetization-mode\":1,\"profile-level-id\":\"42e034\"}", "42e01f"},
      {"{\"packetization-mode\":1}", "42e01f"},
      {"{\"packetization-mode\":1,\"profile-level-id\":\"4de01f\"}", "42e01f"},
      {"{\"packetization-mode\":1,\"profile-level-id\":\"42f00b\"}", "42f00b"},
      {"{\"packetization-mode\":1,\"profile-level-id\":\"42e00b\",\"level-asymmetry-allowed\":1}",
       "42e00b"},
  };
  mf_rtp_capabilities_t *router = default_router_caps();
  mf_rtp_mapping_t mapping;
  char json[512];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(json, sizeof json, "{\"codecs\":[" P_H264("%s") "]" ENC1, cases[i].params);
    mf_rtp_parameters_t *p = params_from(json);
    char err[256] = "";
    if (mf_ortc_get_producer_rtp_parameters_mapping(p, router, &mapping, err, sizeof err) != MF_OK)
      fail_msg("case %zu: %s", i, err);
    assert_int_equal(mapping.codecs[0].mapped_payload_type, 105);
    const mf_rtp_param_t *plid = mf_rtp_params_find(&p->codecs[0].parameters, "profile-level-id");
    assert_non_null(plid);
    if (strcmp(plid->str_value, cases[i].result) != 0)
      fail_msg("case %zu: %s want %s", i, plid->str_value, cases[i].result);
    free(p);
  }
  /* a router with two H264 profiles: a High producer maps to the High one */
  json_t *j = load("[{\"kind\":\"video\",\"mimeType\":\"video/H264\",\"clockRate\":90000,"
                   "\"parameters\":{\"packetization-mode\":1,\"profile-level-id\":\"42e01f\"}},"
                   "{\"kind\":\"video\",\"mimeType\":\"video/H264\",\"clockRate\":90000,"
                   "\"parameters\":{\"packetization-mode\":1,\"profile-level-id\":\"640032\"}}]");
  mf_rtp_codec_capability_t media[2];
  size_t n = 2;
  char err[256] = "";
  assert_int_equal(mf_rtp_codec_capabilities_from_json_array(j, "m", media, &n, err, sizeof err),
                   MF_OK);
  json_decref(j);
  assert_int_equal(mf_ortc_generate_router_rtp_capabilities(media, n, router, err, sizeof err),
                   MF_OK);
  mf_rtp_parameters_t *p = params_from("{\"codecs\":[" P_H264(
      "{\"packetization-mode\":1,\"profile-level-id\":\"64001f\",\"level-asymmetry-allowed\":1}")
      "]" ENC1);
  assert_int_equal(mf_ortc_get_producer_rtp_parameters_mapping(p, router, &mapping, err, sizeof err),
                   MF_OK);
  assert_int_equal(mapping.codecs[0].mapped_payload_type, 102);
  assert_string_equal(mf_rtp_params_find(&p->codecs[0].parameters, "profile-level-id")->str_value,
                      "64001f");
  free(p);
  free(router);
}

/* ---- consumable ---- */

static void test_consumable_vp8(void **state) {
  (void)state;
  flow_t *f = flow_new(PRODUCE_VP8, MF_MEDIA_KIND_VIDEO);
  char want[4096];
  snprintf(want, sizeof want,
           "{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":101,\"clockRate\":90000,"
           "\"parameters\":{},\"rtcpFeedback\":" FB_VIDEO "},{\"mimeType\":\"video/rtx\","
           "\"payloadType\":102,\"clockRate\":90000,\"parameters\":{\"apt\":101},"
           "\"rtcpFeedback\":[]}],\"headerExtensions\":["
           "{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"id\":1,\"encrypt\":false,"
           "\"parameters\":{}},{\"uri\":\"http://www.webrtc.org/experiments/rtp-hdrext/"
           "abs-send-time\",\"id\":4,\"encrypt\":false,\"parameters\":{}},{\"uri\":\"http://"
           "www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\",\"id\":5,"
           "\"encrypt\":false,\"parameters\":{}},{\"uri\":\"urn:3gpp:video-orientation\","
           "\"id\":11,\"encrypt\":false,\"parameters\":{}},{\"uri\":\"urn:ietf:params:"
           "rtp-hdrext:toffset\",\"id\":12,\"encrypt\":false,\"parameters\":{}}],"
           "\"encodings\":[{\"ssrc\":%u,\"dtx\":false}],"
           "\"rtcp\":{\"cname\":\"abcdEFGH\",\"reducedSize\":true,\"mux\":true}}",
           f->mapping.encodings[0].mapped_ssrc);
  json_t *j = mf_rtp_parameters_to_json(f->consumable);
  assert_json_text(want, j);
  json_decref(j);
  flow_free(f);
}

static void test_consumable_audio_extensions(void **state) {
  (void)state;
  flow_t *f = flow_new(PRODUCE_OPUS, MF_MEDIA_KIND_AUDIO);
  /* mid, abs-send-time, audio level; transport-cc is recvonly for audio */
  assert_int_equal(f->consumable->header_extension_count, 3);
  assert_string_equal(f->consumable->header_extensions[2].uri, MF_RTP_EXT_AUDIO_LEVEL);
  assert_int_equal(f->consumable->header_extensions[2].id, 10);
  /* the producer's codec parameters are kept */
  json_t *j = mf_rtp_codec_parameters_to_json(&f->consumable->codecs[0]);
  assert_json_text("{\"mimeType\":\"audio/opus\",\"payloadType\":100,\"clockRate\":48000,"
                   "\"channels\":2,\"parameters\":{\"minptime\":10,\"useinbandfec\":1,"
                   "\"sprop-stereo\":1},\"rtcpFeedback\":[{\"type\":\"transport-cc\","
                   "\"parameter\":\"\"}]}",
                   j);
  json_decref(j);
  flow_free(f);
}

static void test_consumable_bad_mapping(void **state) {
  (void)state;
  flow_t *f = flow_new(PRODUCE_VP8, MF_MEDIA_KIND_VIDEO);
  mf_rtp_mapping_t m = f->mapping;
  m.codecs[0].payload_type = 50;
  char err[256] = "";
  assert_int_equal(mf_ortc_get_consumable_rtp_parameters(MF_MEDIA_KIND_VIDEO, f->params, f->router,
                                                         &m, f->consumable, err, sizeof err),
                   MF_ERR_INVALID_ARG);
  assert_string_equal(err, "no mapped router codec for payloadType 96");
  m = f->mapping;
  m.encoding_count = 0;
  assert_int_equal(mf_ortc_get_consumable_rtp_parameters(MF_MEDIA_KIND_VIDEO, f->params, f->router,
                                                         &m, f->consumable, err, sizeof err),
                   MF_ERR_INVALID_ARG);
  assert_string_equal(err, "mapping has 0 encodings, parameters 1");
  flow_free(f);
}

/* ---- consumer ---- */

static mf_err_t consume(flow_t *f, const char *device, bool pipe, bool enable_rtx, char *err) {
  mf_rtp_capabilities_t *caps = caps_from(device);
  mf_err_t rc = mf_ortc_get_consumer_rtp_parameters(f->consumable, caps, pipe, enable_rtx,
                                                    f->consumer, err, 256);
  free(caps);
  return rc;
}

static void test_consumer_vp8_full_device(void **state) {
  (void)state;
  flow_t *f = flow_new(PRODUCE_VP8, MF_MEDIA_KIND_VIDEO);
  char err[256] = "";
  mf_rtp_capabilities_t *caps = caps_from(DEVICE_FULL);
  assert_true(mf_ortc_can_consume(f->consumable, caps));
  free(caps);
  assert_int_equal(consume(f, DEVICE_FULL, false, true, err), MF_OK);
  uint32_t ssrc = f->consumer->encodings[0].ssrc;
  assert_ssrc_range(ssrc);
  char want[4096];
  /* transport-cc extension kept, so goog-remb is gone; the device's fb order */
  snprintf(want, sizeof want,
           "{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":101,\"clockRate\":90000,"
           "\"parameters\":{},\"rtcpFeedback\":[{\"type\":\"transport-cc\",\"parameter\":\"\"},"
           "{\"type\":\"ccm\",\"parameter\":\"fir\"},{\"type\":\"nack\",\"parameter\":\"\"},"
           "{\"type\":\"nack\",\"parameter\":\"pli\"}]},{\"mimeType\":\"video/rtx\","
           "\"payloadType\":102,\"clockRate\":90000,\"parameters\":{\"apt\":101},"
           "\"rtcpFeedback\":[]}],\"headerExtensions\":["
           "{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"id\":1,\"encrypt\":false,"
           "\"parameters\":{}},{\"uri\":\"http://www.webrtc.org/experiments/rtp-hdrext/"
           "abs-send-time\",\"id\":4,\"encrypt\":false,\"parameters\":{}},{\"uri\":\"http://"
           "www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\",\"id\":5,"
           "\"encrypt\":false,\"parameters\":{}},{\"uri\":\"urn:3gpp:video-orientation\","
           "\"id\":11,\"encrypt\":false,\"parameters\":{}}],"
           "\"encodings\":[{\"ssrc\":%u,\"rtx\":{\"ssrc\":%u}}],"
           "\"rtcp\":{\"cname\":\"abcdEFGH\",\"reducedSize\":true,\"mux\":true}}",
           ssrc, ssrc + 1);
  json_t *j = mf_rtp_parameters_to_json(f->consumer);
  assert_json_text(want, j);
  json_decref(j);
  assert_string_equal(f->consumer->mid, "");
  flow_free(f);
}

static void fb_list(const mf_rtp_codec_parameters_t *c, char *out, size_t n) {
  out[0] = '\0';
  for (size_t i = 0; i < c->rtcp_feedback_count; i++) {
    char one[80];
    snprintf(one, sizeof one, "%s%s%s%s", i ? "," : "", c->rtcp_feedback[i].type,
             c->rtcp_feedback[i].parameter[0] ? " " : "", c->rtcp_feedback[i].parameter);
    strncat(out, one, n - strlen(out) - 1);
  }
}

static void test_consumer_feedback_filtering(void **state) {
  (void)state;
  static const struct {
    const char *device;
    const char *fb;
    size_t exts;
  } cases[] = {
      {"{\"codecs\":[" DEV_VP8 "],\"headerExtensions\":[" DEV_MID "," DEV_ABS "," DEV_TCC "]}",
       "transport-cc,ccm fir,nack,nack pli", 3},
      /* abs-send-time but no transport-cc: REMB, not transport-cc */
      {"{\"codecs\":[" DEV_VP8 "],\"headerExtensions\":[" DEV_MID "," DEV_ABS "]}",
       "goog-remb,ccm fir,nack,nack pli", 2},
      /* neither extension: neither feedback */
      {"{\"codecs\":[" DEV_VP8 "],\"headerExtensions\":[" DEV_MID "," DEV_VO "]}",
       "ccm fir,nack,nack pli", 2},
      /* extension with another id than the router's is not the same extension */
      {"{\"codecs\":[" DEV_VP8 "],\"headerExtensions\":[" DEVICE_EXT(
           "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", 3) "]}",
       "ccm fir,nack,nack pli", 0},
  };
  flow_t *f = flow_new(PRODUCE_VP8, MF_MEDIA_KIND_VIDEO);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char err[256] = "";
    assert_int_equal(consume(f, cases[i].device, false, true, err), MF_OK);
    char got[256];
    fb_list(&f->consumer->codecs[0], got, sizeof got);
    if (strcmp(got, cases[i].fb) != 0) fail_msg("case %zu: \"%s\" want \"%s\"", i, got, cases[i].fb);
    assert_int_equal(f->consumer->header_extension_count, cases[i].exts);
    /* device without rtx: no rtx codec, no rtx ssrc */
    assert_int_equal(f->consumer->codec_count, 1);
    assert_false(f->consumer->encodings[0].has_rtx);
  }
  flow_free(f);
}

static void test_consumer_cannot_consume(void **state) {
  (void)state;
  flow_t *f = flow_new(PRODUCE_VP8, MF_MEDIA_KIND_VIDEO);
  static const char *const devices[] = {
      "{\"codecs\":[" DEV_OPUS "," DEV_H264 "," DEV_RTX(106, 105) "]}",
      /* rtx alone matches but is not a media codec */
      "{\"codecs\":[" DEV_RTX(102, 101) "]}",
      "{}",
  };
  for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
    mf_rtp_capabilities_t *caps = caps_from(devices[i]);
    assert_false(mf_ortc_can_consume(f->consumable, caps));
    free(caps);
    char err[256] = "";
    assert_int_equal(consume(f, devices[i], false, true, err), MF_ERR_UNSUPPORTED);
    assert_string_equal(err, "no compatible media codecs");
    assert_int_equal(f->consumer->codec_count, 0);
  }
  flow_free(f);
}

static void test_consumer_simulcast(void **state) {
  (void)state;
  flow_t *f = flow_new(PRODUCE_SIMULCAST, MF_MEDIA_KIND_VIDEO);
  char err[256] = "";
  assert_int_equal(consume(f, DEVICE_FULL, false, true, err), MF_OK);
  assert_int_equal(f->consumer->encoding_count, 1);
  const mf_rtp_encoding_parameters_t *e = &f->consumer->encodings[0];
  assert_string_equal(e->scalability_mode, "L3T3");
  assert_true(e->has_max_bitrate);
  assert_int_equal(e->max_bitrate, 900000);
  assert_true(e->has_rtx);
  assert_int_equal(e->rtx_ssrc, e->ssrc + 1);
  assert_string_equal(f->consumer->rtcp.cname, "simCname");

  /* pipe: every consumable encoding, consecutive ssrcs */
  assert_int_equal(consume(f, DEVICE_FULL, true, true, err), MF_OK);
  assert_int_equal(f->consumer->encoding_count, 3);
  for (size_t i = 0; i < 3; i++) {
    const mf_rtp_encoding_parameters_t *pe = &f->consumer->encodings[i];
    assert_int_equal(pe->ssrc, f->consumer->encodings[0].ssrc + i);
    assert_true(pe->has_rtx);
    assert_int_equal(pe->rtx_ssrc, f->consumer->encodings[0].rtx_ssrc + i);
    assert_string_equal(pe->scalability_mode, "L1T3");
    assert_string_equal(pe->rid, "");
  }
  flow_free(f);
}

static void test_consumer_single_encoding_scalability(void **state) {
  (void)state;
  flow_t *f = flow_new("{\"codecs\":[" P_VP8(96) "],\"encodings\":[{\"ssrc\":9,"
                       "\"scalabilityMode\":\"L1T3\",\"maxBitrate\":5000}]}",
                       MF_MEDIA_KIND_VIDEO);
  char err[256] = "";
  assert_int_equal(consume(f, DEVICE_FULL, false, true, err), MF_OK);
  assert_string_equal(f->consumer->encodings[0].scalability_mode, "L1T3");
  assert_int_equal(f->consumer->encodings[0].max_bitrate, 5000);
  /* the consumable has rtx (router's), the device too */
  assert_int_equal(f->consumer->codec_count, 2);
  flow_free(f);
}

static void test_consumer_without_rtx(void **state) {
  (void)state;
  flow_t *f = flow_new(PRODUCE_VP8, MF_MEDIA_KIND_VIDEO);
  char err[256] = "";
  assert_int_equal(consume(f, DEVICE_FULL, false, false, err), MF_OK);
  assert_int_equal(f->consumer->codec_count, 1);
  assert_false(f->consumer->encodings[0].has_rtx);
  char got[256];
  fb_list(&f->consumer->codecs[0], got, sizeof got);
  assert_string_equal(got, "transport-cc,ccm fir,nack pli"); /* plain nack is useless */
  flow_free(f);
}

static void test_consumer_opus(void **state) {
  (void)state;
  flow_t *f = flow_new(PRODUCE_OPUS, MF_MEDIA_KIND_AUDIO);
  char err[256] = "";
  assert_int_equal(consume(f, DEVICE_FULL, false, true, err), MF_OK);
  /* the device lists extensions for video only; mid and abs-send-time match by id+uri */
  assert_int_equal(f->consumer->header_extension_count, 2);
  assert_int_equal(f->consumer->codec_count, 1);
  assert_int_equal(f->consumer->codecs[0].payload_type, 100);
  assert_int_equal(f->consumer->codecs[0].channels, 2);
  assert_int_equal(f->consumer->codecs[0].rtcp_feedback_count, 0); /* abs-send-time: no tcc */
  assert_false(f->consumer->encodings[0].has_rtx);
  assert_string_equal(f->consumer->encodings[0].scalability_mode, "");
  flow_free(f);
}

/* ---- codec matching ---- */

static void test_h264_profiles(void **state) {
  (void)state;
  static const struct {
    const char *plid;
    mf_h264_profile_t profile;
  } cases[] = {
      {"42e01f", MF_H264_PROFILE_CONSTRAINED_BASELINE},
      {"42E01F", MF_H264_PROFILE_CONSTRAINED_BASELINE},
      {"42f00b", MF_H264_PROFILE_CONSTRAINED_BASELINE},
      {"4de01f", MF_H264_PROFILE_CONSTRAINED_BASELINE},
      {"58c01f", MF_H264_PROFILE_CONSTRAINED_BASELINE},
      {"42001f", MF_H264_PROFILE_BASELINE}, {"58a01f", MF_H264_PROFILE_BASELINE},
      {"4d001f", MF_H264_PROFILE_MAIN}, {"4d0032", MF_H264_PROFILE_MAIN},
      {"640c1f", MF_H264_PROFILE_CONSTRAINED_HIGH}, {"64001f", MF_H264_PROFILE_HIGH},
      {"640032", MF_H264_PROFILE_HIGH}, {"f4001f", MF_H264_PROFILE_PREDICTIVE_HIGH_444},
      {"000000", MF_H264_PROFILE_NONE}, {"42e0", MF_H264_PROFILE_NONE},
      {"42e01f0", MF_H264_PROFILE_NONE}, {"42e0zz", MF_H264_PROFILE_NONE},
      {"42e0ff", MF_H264_PROFILE_NONE}, /* unknown level */
      {"ff001f", MF_H264_PROFILE_NONE}, /* unknown profile_idc */
      {"64ff1f", MF_H264_PROFILE_NONE}, /* high with constraint bits set */
      {"", MF_H264_PROFILE_NONE}, {NULL, MF_H264_PROFILE_NONE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (mf_ortc_h264_profile(cases[i].plid) != cases[i].profile)
      fail_msg("case %zu (%s): %d", i, cases[i].plid ? cases[i].plid : "NULL",
               mf_ortc_h264_profile(cases[i].plid));
  }
  mf_rtp_params_t p;
  memset(&p, 0, sizeof p);
  assert_int_equal(mf_ortc_h264_profile_from_params(&p), MF_H264_PROFILE_CONSTRAINED_BASELINE);
  mf_rtp_params_set_int(&p, "profile-level-id", 640032); /* a client that sent a number */
  assert_int_equal(mf_ortc_h264_profile_from_params(&p), MF_H264_PROFILE_HIGH);
  mf_rtp_params_set_str(&p, "profile-level-id", "bogus!");
  assert_int_equal(mf_ortc_h264_profile_from_params(&p), MF_H264_PROFILE_NONE);
}

static void test_match_codecs(void **state) {
  (void)state;
  static const struct {
    const char *a, *b; /* codec JSON (parameters style) */
    bool strict, match;
  } cases[] = {
      {P_H264("{\"packetization-mode\":1,\"profile-level-id\":\"42e01f\"}"),
       P_H264("{\"packetization-mode\":1,\"profile-level-id\":\"42e034\"}"), true, true},
      {P_H264("{\"packetization-mode\":1,\"profile-level-id\":\"42e01f\"}"),
       P_H264("{\"packetization-mode\":0,\"profile-level-id\":\"42e01f\"}"), true, false},
      {P_H264("{\"profile-level-id\":\"42e01f\"}"),
       P_H264("{\"packetization-mode\":0,\"profile-level-id\":\"42e01f\"}"), true, true},
      {P_H264("{\"packetization-mode\":1}"),
       P_H264("{\"packetization-mode\":1,\"profile-level-id\":\"42e01f\"}"), true, true},
      {P_H264("{\"packetization-mode\":1,\"profile-level-id\":\"42e01f\"}"),
       P_H264("{\"packetization-mode\":1,\"profile-level-id\":\"640c1f\"}"), true, false},
      {P_H264("{\"packetization-mode\":1,\"profile-level-id\":\"42e01f\"}"),
       P_H264("{\"packetization-mode\":1,\"profile-level-id\":\"640c1f\"}"), false, true},
      {P_H264("{\"packetization-mode\":1,\"profile-level-id\":\"zzzzzz\"}"),
       P_H264("{\"packetization-mode\":1,\"profile-level-id\":\"zzzzzz\"}"), true, false},
      {"{\"mimeType\":\"video/VP9\",\"payloadType\":1,\"clockRate\":90000,"
       "\"parameters\":{\"profile-id\":0}}",
       "{\"mimeType\":\"video/vp9\",\"payloadType\":1,\"clockRate\":90000}", true, true},
      {"{\"mimeType\":\"video/VP9\",\"payloadType\":1,\"clockRate\":90000,"
       "\"parameters\":{\"profile-id\":2}}",
       "{\"mimeType\":\"video/VP9\",\"payloadType\":1,\"clockRate\":90000}", true, false},
      {"{\"mimeType\":\"video/VP9\",\"payloadType\":1,\"clockRate\":90000,"
       "\"parameters\":{\"profile-id\":2}}",
       "{\"mimeType\":\"video/VP9\",\"payloadType\":1,\"clockRate\":90000}", false, true},
      {"{\"mimeType\":\"audio/opus\",\"payloadType\":1,\"clockRate\":48000,\"channels\":2}",
       "{\"mimeType\":\"audio/opus\",\"payloadType\":1,\"clockRate\":48000}", false, false},
      {"{\"mimeType\":\"audio/PCMU\",\"payloadType\":1,\"clockRate\":8000,\"channels\":1}",
       "{\"mimeType\":\"audio/pcmu\",\"payloadType\":1,\"clockRate\":8000}", true, true},
      {"{\"mimeType\":\"video/VP8\",\"payloadType\":1,\"clockRate\":90000,\"channels\":3}",
       "{\"mimeType\":\"video/VP8\",\"payloadType\":1,\"clockRate\":90000}", true, true},
      {P_VP8(1), "{\"mimeType\":\"video/VP8\",\"payloadType\":1,\"clockRate\":48000}", false,
       false},
      {P_VP8(1), P_RTX(1, 2), false, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char json[1024];
    snprintf(json, sizeof json, "{\"codecs\":[%s,%s]}", cases[i].a, cases[i].b);
    mf_rtp_parameters_t *p = calloc(1, sizeof *p);
    char err[256] = "";
    json_t *j = load(json);
    assert_int_equal(mf_rtp_parameters_from_json(j, "p", p, err, sizeof err), MF_OK);
    json_decref(j);
    const mf_rtp_codec_parameters_t *a = &p->codecs[0], *b = &p->codecs[1];
    bool got = mf_ortc_match_codecs(a->mime_type, a->clock_rate, a->channels, &a->parameters,
                                    b->mime_type, b->clock_rate, b->channels, &b->parameters,
                                    cases[i].strict);
    if (got != cases[i].match) fail_msg("case %zu: %d", i, got);
    free(p);
  }
  assert_true(mf_ortc_is_rtx_mime("video/RTX"));
  assert_true(mf_ortc_is_rtx_mime("audio/rtx"));
  assert_false(mf_ortc_is_rtx_mime("/rtx"));
  assert_false(mf_ortc_is_rtx_mime("video/rtxx"));
  assert_false(mf_ortc_is_rtx_mime(NULL));
}

static void test_scalability_mode(void **state) {
  (void)state;
  static const struct {
    const char *mode;
    unsigned s, t;
    bool ksvc;
  } cases[] = {
      {"L1T3", 1, 3, false},   {"L3T3_KEY", 3, 3, true}, {"S2T1", 2, 1, false},
      {"L10T2", 10, 2, false}, {"L1T3h", 1, 3, false},   {"", 1, 1, false},
      {"X1T1", 1, 1, false},   {"L0T1", 1, 1, false},    {"L1T0", 1, 1, false},
      {"L100T1", 1, 1, false}, {NULL, 1, 1, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_scalability_mode_t m = mf_ortc_parse_scalability_mode(cases[i].mode);
    if (m.spatial_layers != cases[i].s || m.temporal_layers != cases[i].t ||
        m.ksvc != cases[i].ksvc)
      fail_msg("case %zu: %u %u %d", i, m.spatial_layers, m.temporal_layers, m.ksvc);
  }
}

static void test_random_ssrc(void **state) {
  (void)state;
  uint32_t first = mf_ortc_random_ssrc();
  bool differs = false;
  for (int i = 0; i < 1000; i++) {
    uint32_t s = mf_ortc_random_ssrc();
    assert_in_range(s, 100000000u, 999999999u);
    differs |= s != first;
  }
  assert_true(differs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_router_capabilities),
      cmocka_unit_test(test_supported_capabilities),
      cmocka_unit_test(test_router_capabilities_table),
      cmocka_unit_test(test_router_capabilities_limits),
      cmocka_unit_test(test_validate_fills_defaults),
      cmocka_unit_test(test_validate_errors),
      cmocka_unit_test(test_mapping_vp8_rtx),
      cmocka_unit_test(test_mapping_simulcast),
      cmocka_unit_test(test_mapping_opus),
      cmocka_unit_test(test_mapping_errors),
      cmocka_unit_test(test_mapping_h264_profile_level_id),
      cmocka_unit_test(test_consumable_vp8),
      cmocka_unit_test(test_consumable_audio_extensions),
      cmocka_unit_test(test_consumable_bad_mapping),
      cmocka_unit_test(test_consumer_vp8_full_device),
      cmocka_unit_test(test_consumer_feedback_filtering),
      cmocka_unit_test(test_consumer_cannot_consume),
      cmocka_unit_test(test_consumer_simulcast),
      cmocka_unit_test(test_consumer_single_encoding_scalability),
      cmocka_unit_test(test_consumer_without_rtx),
      cmocka_unit_test(test_consumer_opus),
      cmocka_unit_test(test_h264_profiles),
      cmocka_unit_test(test_match_codecs),
      cmocka_unit_test(test_scalability_mode),
      cmocka_unit_test(test_random_ssrc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
