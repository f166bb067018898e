/* RTP parameter model: exact JSON round trips of what mediasoup-client sends and
 * mediasoup emits, value types kept, and one exact error message per malformed field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/rtp_parameters.h"

static json_t *load(const char *text) {
  json_error_t jerr;
  json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
  if (!j) fail_msg("bad test JSON at %d: %s\n%s", jerr.position, jerr.text, text);
  return j;
}

static void assert_json_equal(json_t *a, json_t *b) {
  if (!json_equal(a, b)) {
    char *sa = json_dumps(a, JSON_SORT_KEYS | JSON_COMPACT);
    char *sb = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);
    print_error("expected %s\n     got %s\n", sa, sb);
    free(sa);
    free(sb);
    fail();
  }
}

/* What mediasoup-client's produce() sends from Chrome for VP8 with rtx. */
static const char *const CLIENT_VP8 =
    "{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
    "\"parameters\":{},\"rtcpFeedback\":[{\"type\":\"goog-remb\",\"parameter\":\"\"},"
    "{\"type\":\"transport-cc\",\"parameter\":\"\"},{\"type\":\"ccm\",\"parameter\":\"fir\"},"
    "{\"type\":\"nack\",\"parameter\":\"\"},{\"type\":\"nack\",\"parameter\":\"pli\"}]},"
    "{\"mimeType\":\"video/rtx\",\"payloadType\":97,\"clockRate\":90000,"
    "\"parameters\":{\"apt\":96},\"rtcpFeedback\":[]}],"
    "\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"id\":4,"
    "\"encrypt\":false,\"parameters\":{}},{\"uri\":\"http://www.webrtc.org/experiments/"
    "rtp-hdrext/abs-send-time\",\"id\":2,\"encrypt\":false,\"parameters\":{}}],"
    "\"encodings\":[{\"ssrc\":1111111111,\"rtx\":{\"ssrc\":2222222222},\"dtx\":false}],"
    "\"rtcp\":{\"cname\":\"abcdEFGH\",\"reducedSize\":true},\"mid\":\"0\"}";

static const char *const CLIENT_SIMULCAST =
    "{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
    "\"parameters\":{},\"rtcpFeedback\":[{\"type\":\"nack\"}]}],\"headerExtensions\":[],"
    "\"encodings\":[{\"scaleResolutionDownBy\":4,\"maxBitrate\":100000,\"rid\":\"r0\","
    "\"scalabilityMode\":\"L1T3\",\"dtx\":false},{\"scaleResolutionDownBy\":2.5,"
    "\"maxBitrate\":300000,\"rid\":\"r1\",\"scalabilityMode\":\"L1T3\"},{\"rid\":\"r2\","
    "\"maxFramerate\":30,\"priority\":\"high\",\"networkPriority\":\"low\","
    "\"codecPayloadType\":96,\"adaptivePtime\":false}],"
    "\"rtcp\":{\"cname\":\"xyz\",\"reducedSize\":true,\"mux\":true},\"mid\":\"1\"}";

static const char *const CLIENT_OPUS_H264 =
    "{\"codecs\":[{\"mimeType\":\"audio/opus\",\"payloadType\":111,\"clockRate\":48000,"
    "\"channels\":2,\"parameters\":{\"minptime\":10,\"useinbandfec\":1,\"x\":0.5,"
    "\"sprop-stereo\":\"1\"},\"rtcpFeedback\":[]},{\"mimeType\":\"video/H264\","
    "\"payloadType\":102,\"clockRate\":90000,\"parameters\":{\"level-asymmetry-allowed\":1,"
    "\"packetization-mode\":1,\"profile-level-id\":\"42e01f\"},\"rtcpFeedback\":[]}],"
    "\"headerExtensions\":[],\"encodings\":[]}";

static const char *const ROUTER_CAPS =
    "{\"codecs\":[{\"kind\":\"audio\",\"mimeType\":\"audio/opus\",\"preferredPayloadType\":100,"
    "\"clockRate\":48000,\"channels\":2,\"parameters\":{},\"rtcpFeedback\":[{\"type\":"
    "\"transport-cc\",\"parameter\":\"\"}]},{\"kind\":\"video\",\"mimeType\":\"video/rtx\","
    "\"preferredPayloadType\":102,\"clockRate\":90000,\"parameters\":{\"apt\":101},"
    "\"rtcpFeedback\":[]},{\"mimeType\":\"video/VP8\",\"clockRate\":90000,\"parameters\":{},"
    "\"rtcpFeedback\":[{\"type\":\"nack\"}]}],\"headerExtensions\":[{\"kind\":\"video\","
    "\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"preferredId\":1,"
    "\"preferredEncrypt\":false,\"direction\":\"sendrecv\"},{\"kind\":\"audio\",\"uri\":"
    "\"urn:ietf:params:rtp-hdrext:ssrc-audio-level\",\"preferredId\":10}]}";

static void test_round_trip_parameters(void **state) {
  (void)state;
  const char *const inputs[] = {CLIENT_VP8, CLIENT_SIMULCAST, CLIENT_OPUS_H264};
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    json_t *in = load(inputs[i]);
    mf_rtp_parameters_t *p = calloc(1, sizeof *p);
    char err[256] = "";
    assert_int_equal(mf_rtp_parameters_from_json(in, "rtpParameters", p, err, sizeof err),
                     MF_OK);
    json_t *out = mf_rtp_parameters_to_json(p);
    assert_non_null(out);
    assert_json_equal(in, out);
    json_decref(in);
    json_decref(out);
    free(p);
  }
}

static void test_round_trip_capabilities(void **state) {
  (void)state;
  json_t *in = load(ROUTER_CAPS);
  mf_rtp_capabilities_t *c = calloc(1, sizeof *c);
  char err[256] = "";
  assert_int_equal(mf_rtp_capabilities_from_json(in, "caps", c, err, sizeof err), MF_OK);
  assert_int_equal(c->codec_count, 3);
  assert_int_equal(c->codecs[2].kind, MF_MEDIA_KIND_NONE); /* kind optional in parse */
  assert_false(c->codecs[2].has_preferred_payload_type);
  assert_int_equal(c->header_extension_count, 2);
  assert_false(c->header_extensions[1].has_preferred_encrypt);
  assert_int_equal(c->header_extensions[1].direction, MF_RTP_DIRECTION_NONE);
  json_t *out = mf_rtp_capabilities_to_json(c);
  assert_json_equal(in, out);
  json_decref(in);
  json_decref(out);
  free(c);
}

static void test_parameter_value_types(void **state) {
  (void)state;
  json_t *in = load(CLIENT_OPUS_H264);
  mf_rtp_parameters_t *p = calloc(1, sizeof *p);
  char err[256];
  assert_int_equal(mf_rtp_parameters_from_json(in, "p", p, err, sizeof err), MF_OK);
  const mf_rtp_params_t *opus = &p->codecs[0].parameters;
  const mf_rtp_params_t *h264 = &p->codecs[1].parameters;
  const mf_rtp_param_t *plid = mf_rtp_params_find(h264, "profile-level-id");
  assert_non_null(plid);
  assert_int_equal(plid->type, MF_RTP_PARAM_STRING);
  assert_string_equal(plid->str_value, "42e01f");
  const mf_rtp_param_t *pm = mf_rtp_params_find(h264, "packetization-mode");
  assert_int_equal(pm->type, MF_RTP_PARAM_INT);
  assert_int_equal(pm->int_value, 1);
  assert_int_equal(mf_rtp_params_find(opus, "x")->type, MF_RTP_PARAM_REAL);
  /* get_int reads integers and decimal strings, not other strings or fractions */
  int64_t v = -1;
  assert_true(mf_rtp_params_get_int(opus, "minptime", &v));
  assert_int_equal(v, 10);
  assert_true(mf_rtp_params_get_int(opus, "sprop-stereo", &v));
  assert_int_equal(v, 1);
  assert_false(mf_rtp_params_get_int(opus, "x", &v));
  assert_false(mf_rtp_params_get_int(h264, "profile-level-id", &v));
  assert_false(mf_rtp_params_get_int(h264, "missing", &v));
  /* order of keys is kept: the SDP writer emits fmtp in this order */
  assert_string_equal(opus->items[0].name, "minptime");
  assert_string_equal(opus->items[3].name, "sprop-stereo");
  assert_int_equal(p->codecs[0].channels, 2);
  assert_int_equal(p->codecs[1].channels, 0);
  json_decref(in);
  free(p);
}

static void test_params_set(void **state) {
  (void)state;
  mf_rtp_params_t p;
  memset(&p, 0, sizeof p);
  assert_int_equal(mf_rtp_params_set_int(&p, "apt", 96), MF_OK);
  assert_int_equal(mf_rtp_params_set_str(&p, "apt", "x"), MF_OK); /* replaces */
  assert_int_equal(p.count, 1);
  assert_int_equal(p.items[0].type, MF_RTP_PARAM_STRING);
  char name[16];
  for (int i = 1; i < MF_RTP_MAX_CODEC_PARAMS; i++) {
    snprintf(name, sizeof name, "k%d", i);
    assert_int_equal(mf_rtp_params_set_int(&p, name, i), MF_OK);
  }
  assert_int_equal(mf_rtp_params_set_int(&p, "one-too-many", 1), MF_ERR_LIMIT);
  assert_int_equal(mf_rtp_params_set_int(&p, "k3", 33), MF_OK); /* replacing still works */
  char longname[64];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_int_equal(mf_rtp_params_set_int(&p, longname, 1), MF_ERR_INVALID_ARG);
}

typedef struct {
  const char *json;
  mf_err_t rc;
  const char *message;
} bad_case_t;

#define VP8 "{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000}"

static const bad_case_t bad_parameters[] = {
    {"[]", MF_ERR_PARSE, "rtpParameters must be an object"},
    {"{}", MF_ERR_PARSE, "rtpParameters.codecs must be an array"},
    {"{\"codecs\":{}}", MF_ERR_PARSE, "rtpParameters.codecs must be an array"},
    {"{\"codecs\":[1]}", MF_ERR_PARSE, "rtpParameters.codecs[0] must be an object"},
    {"{\"codecs\":[" VP8 ",{\"mimeType\":\"video/rtx\",\"payloadType\":128,"
     "\"clockRate\":90000}]}",
     MF_ERR_PARSE, "rtpParameters.codecs[1].payloadType must be an integer 0..127"},
    {"{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":\"96\",\"clockRate\":90000}]}",
     MF_ERR_PARSE, "rtpParameters.codecs[0].payloadType must be an integer 0..127"},
    {"{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96.5,\"clockRate\":90000}]}",
     MF_ERR_PARSE, "rtpParameters.codecs[0].payloadType must be an integer 0..127"},
    {"{\"codecs\":[{\"payloadType\":96,\"clockRate\":90000}]}", MF_ERR_PARSE,
     "rtpParameters.codecs[0].mimeType must be a non-empty string"},
    {"{\"codecs\":[{\"mimeType\":\"\",\"payloadType\":96,\"clockRate\":90000}]}", MF_ERR_PARSE,
     "rtpParameters.codecs[0].mimeType must be a non-empty string"},
    {"{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96}]}", MF_ERR_PARSE,
     "rtpParameters.codecs[0].clockRate must be an integer 1..4294967295"},
    {"{\"codecs\":[{\"mimeType\":\"audio/opus\",\"payloadType\":96,\"clockRate\":48000,"
     "\"channels\":0}]}",
     MF_ERR_PARSE, "rtpParameters.codecs[0].channels must be an integer 1..255"},
    {"{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
     "\"parameters\":[]}]}",
     MF_ERR_PARSE, "rtpParameters.codecs[0].parameters must be an object"},
    {"{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
     "\"parameters\":{\"a\":true}}]}",
     MF_ERR_PARSE, "rtpParameters.codecs[0].parameters.a must be a string or a number"},
    {"{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
     "\"rtcpFeedback\":[{\"parameter\":\"pli\"}]}]}",
     MF_ERR_PARSE, "rtpParameters.codecs[0].rtcpFeedback[0].type must be a non-empty string"},
    {"{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
     "\"rtcpFeedback\":[{\"type\":\"nack\",\"parameter\":1}]}]}",
     MF_ERR_PARSE, "rtpParameters.codecs[0].rtcpFeedback[0].parameter must be a string"},
    {"{\"codecs\":[],\"headerExtensions\":[{\"uri\":\"x\",\"id\":0}]}", MF_ERR_PARSE,
     "rtpParameters.headerExtensions[0].id must be an integer 1..255"},
    {"{\"codecs\":[],\"headerExtensions\":[{\"id\":1}]}", MF_ERR_PARSE,
     "rtpParameters.headerExtensions[0].uri must be a non-empty string"},
    {"{\"codecs\":[],\"headerExtensions\":[{\"uri\":\"x\",\"id\":1,\"encrypt\":0}]}",
     MF_ERR_PARSE, "rtpParameters.headerExtensions[0].encrypt must be a boolean"},
    {"{\"codecs\":[],\"encodings\":[{\"ssrc\":-1}]}", MF_ERR_PARSE,
     "rtpParameters.encodings[0].ssrc must be an integer 0..4294967295"},
    {"{\"codecs\":[],\"encodings\":[{},{\"ssrc\":4294967296}]}", MF_ERR_PARSE,
     "rtpParameters.encodings[1].ssrc must be an integer 0..4294967295"},
    {"{\"codecs\":[],\"encodings\":[{\"rid\":5}]}", MF_ERR_PARSE,
     "rtpParameters.encodings[0].rid must be a string"},
    {"{\"codecs\":[],\"encodings\":[{\"rtx\":{}}]}", MF_ERR_PARSE,
     "rtpParameters.encodings[0].rtx.ssrc must be an integer 0..4294967295"},
    {"{\"codecs\":[],\"encodings\":[{\"rtx\":7}]}", MF_ERR_PARSE,
     "rtpParameters.encodings[0].rtx must be an object"},
    {"{\"codecs\":[],\"encodings\":[{\"dtx\":\"yes\"}]}", MF_ERR_PARSE,
     "rtpParameters.encodings[0].dtx must be a boolean"},
    {"{\"codecs\":[],\"encodings\":[{\"maxBitrate\":-5}]}", MF_ERR_PARSE,
     "rtpParameters.encodings[0].maxBitrate must be a number >= 0"},
    {"{\"codecs\":[],\"encodings\":[{\"scaleResolutionDownBy\":0.5}]}", MF_ERR_PARSE,
     "rtpParameters.encodings[0].scaleResolutionDownBy must be a number >= 1"},
    {"{\"codecs\":[],\"encodings\":[{\"priority\":\"urgent\"}]}", MF_ERR_PARSE,
     "rtpParameters.encodings[0].priority must be very-low, low, medium or high"},
    {"{\"codecs\":[],\"encodings\":[{\"scalabilityMode\":\"L1T3_KEY_SHIFT_TOO_LONG\"}]}",
     MF_ERR_LIMIT, "rtpParameters.encodings[0].scalabilityMode is too long (max 15 chars)"},
    {"{\"codecs\":[],\"rtcp\":[]}", MF_ERR_PARSE, "rtpParameters.rtcp must be an object"},
    {"{\"codecs\":[],\"rtcp\":{\"cname\":7}}", MF_ERR_PARSE,
     "rtpParameters.rtcp.cname must be a string"},
    {"{\"codecs\":[],\"rtcp\":{\"reducedSize\":1}}", MF_ERR_PARSE,
     "rtpParameters.rtcp.reducedSize must be a boolean"},
    {"{\"codecs\":[],\"mid\":0}", MF_ERR_PARSE, "rtpParameters.mid must be a string"},
    {"{\"codecs\":[],\"mid\":\"0123456789012345678901234567890123456789\"}", MF_ERR_LIMIT,
     "rtpParameters.mid is too long (max 31 chars)"},
    {"{\"codecs\":[],\"encodings\":[{},{},{},{},{},{},{},{},{}]}", MF_ERR_LIMIT,
     "rtpParameters.encodings has too many entries (max 8)"},
};

static void test_malformed_parameters(void **state) {
  (void)state;
  mf_rtp_parameters_t *p = calloc(1, sizeof *p);
  for (size_t i = 0; i < sizeof bad_parameters / sizeof bad_parameters[0]; i++) {
    json_t *in = load(bad_parameters[i].json);
    char err[256] = "";
    mf_err_t rc = mf_rtp_parameters_from_json(in, "rtpParameters", p, err, sizeof err);
    if (rc != bad_parameters[i].rc || strcmp(err, bad_parameters[i].message) != 0) {
      fail_msg("case %zu: %s\n  want %d \"%s\"\n  got  %d \"%s\"", i, bad_parameters[i].json,
               bad_parameters[i].rc, bad_parameters[i].message, rc, err);
    }
    json_decref(in);
  }
  free(p);
}

static const bad_case_t bad_capabilities[] = {
    {"7", MF_ERR_PARSE, "caps must be an object"},
    {"{\"codecs\":7}", MF_ERR_PARSE, "caps.codecs must be an array"},
    {"{\"codecs\":[{\"kind\":\"data\",\"mimeType\":\"video/VP8\",\"clockRate\":90000}]}",
     MF_ERR_PARSE, "caps.codecs[0].kind must be \"audio\" or \"video\""},
    {"{\"codecs\":[{\"mimeType\":\"video/VP8\",\"clockRate\":90000,"
     "\"preferredPayloadType\":200}]}",
     MF_ERR_PARSE, "caps.codecs[0].preferredPayloadType must be an integer 0..127"},
    {"{\"headerExtensions\":[{\"uri\":\"x\",\"preferredId\":1}]}", MF_ERR_PARSE,
     "caps.headerExtensions[0].kind must be \"audio\" or \"video\""},
    {"{\"headerExtensions\":[{\"kind\":\"video\",\"uri\":\"x\"}]}", MF_ERR_PARSE,
     "caps.headerExtensions[0].preferredId must be an integer 1..255"},
    {"{\"headerExtensions\":[{\"kind\":\"video\",\"uri\":\"x\",\"preferredId\":1,"
     "\"direction\":\"both\"}]}",
     MF_ERR_PARSE,
     "caps.headerExtensions[0].direction must be one of sendrecv, sendonly, recvonly, "
     "inactive"},
    {"{\"headerExtensions\":[{\"kind\":\"video\",\"uri\":\"x\",\"preferredId\":1,"
     "\"preferredEncrypt\":\"no\"}]}",
     MF_ERR_PARSE, "caps.headerExtensions[0].preferredEncrypt must be a boolean"},
};

static void test_malformed_capabilities(void **state) {
  (void)state;
  mf_rtp_capabilities_t *c = calloc(1, sizeof *c);
  for (size_t i = 0; i < sizeof bad_capabilities / sizeof bad_capabilities[0]; i++) {
    json_t *in = load(bad_capabilities[i].json);
    char err[256] = "";
    mf_err_t rc = mf_rtp_capabilities_from_json(in, "caps", c, err, sizeof err);
    if (rc != bad_capabilities[i].rc || strcmp(err, bad_capabilities[i].message) != 0) {
      fail_msg("case %zu: %s\n  want %d \"%s\"\n  got  %d \"%s\"", i, bad_capabilities[i].json,
               bad_capabilities[i].rc, bad_capabilities[i].message, rc, err);
    }
    json_decref(in);
  }
  free(c);
}

static void test_limits(void **state) {
  (void)state;
  mf_rtp_parameters_t *p = calloc(1, sizeof *p);
  char err[256] = "";
  /* 33 codecs */
  json_t *codecs = json_array();
  for (int i = 0; i < MF_RTP_MAX_CODECS + 1; i++) json_array_append_new(codecs, load(VP8));
  json_t *in = json_pack("{s:o}", "codecs", codecs);
  assert_int_equal(mf_rtp_parameters_from_json(in, "rtpParameters", p, err, sizeof err),
                   MF_ERR_LIMIT);
  assert_string_equal(err, "rtpParameters.codecs has too many entries (max 32)");
  json_decref(in);
  /* exactly 32 is fine */
  codecs = json_array();
  for (int i = 0; i < MF_RTP_MAX_CODECS; i++) json_array_append_new(codecs, load(VP8));
  in = json_pack("{s:o}", "codecs", codecs);
  assert_int_equal(mf_rtp_parameters_from_json(in, "rtpParameters", p, err, sizeof err), MF_OK);
  assert_int_equal(p->codec_count, MF_RTP_MAX_CODECS);
  json_decref(in);
  /* 17 codec parameters */
  json_t *params = json_object();
  char key[16];
  for (int i = 0; i < MF_RTP_MAX_CODEC_PARAMS + 1; i++) {
    snprintf(key, sizeof key, "k%d", i);
    json_object_set_new(params, key, json_integer(i));
  }
  in = json_pack("{s:[{s:s,s:i,s:i,s:o}]}", "codecs", "mimeType", "video/VP8", "payloadType", 96,
                 "clockRate", 90000, "parameters", params);
  assert_int_equal(mf_rtp_parameters_from_json(in, "rtpParameters", p, err, sizeof err),
                   MF_ERR_LIMIT);
  assert_string_equal(err, "rtpParameters.codecs[0].parameters has too many entries (max 16)");
  json_decref(in);
  /* a long parameter value */
  char value[200];
  memset(value, 'x', sizeof value - 1);
  value[sizeof value - 1] = '\0';
  in = json_pack("{s:[{s:s,s:i,s:i,s:{s:s}}]}", "codecs", "mimeType", "video/H264",
                 "payloadType", 96, "clockRate", 90000, "parameters", "sprop-parameter-sets",
                 value);
  assert_int_equal(mf_rtp_parameters_from_json(in, "rtpParameters", p, err, sizeof err),
                   MF_ERR_LIMIT);
  assert_string_equal(
      err, "rtpParameters.codecs[0].parameters.sprop-parameter-sets is too long (max 95 chars)");
  json_decref(in);
  /* 9 feedback entries */
  in = load("{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
            "\"rtcpFeedback\":[{\"type\":\"a\"},{\"type\":\"a\"},{\"type\":\"a\"},{\"type\":"
            "\"a\"},{\"type\":\"a\"},{\"type\":\"a\"},{\"type\":\"a\"},{\"type\":\"a\"},"
            "{\"type\":\"a\"}]}]}");
  assert_int_equal(mf_rtp_parameters_from_json(in, "rtpParameters", p, err, sizeof err),
                   MF_ERR_LIMIT);
  assert_string_equal(err, "rtpParameters.codecs[0].rtcpFeedback has too many entries (max 8)");
  json_decref(in);
  free(p);
}

static void test_media_codecs_array(void **state) {
  (void)state;
  mf_rtp_codec_capability_t codecs[4];
  size_t count = 4;
  char err[256] = "";
  json_t *in = load("[{\"kind\":\"audio\",\"mimeType\":\"audio/opus\",\"clockRate\":48000,"
                    "\"channels\":2},{\"kind\":\"video\",\"mimeType\":\"video/H264\","
                    "\"clockRate\":90000,\"parameters\":{\"packetization-mode\":1,"
                    "\"profile-level-id\":\"4d0032\"}}]");
  assert_int_equal(mf_rtp_codec_capabilities_from_json_array(in, "mediaCodecs", codecs, &count,
                                                             err, sizeof err),
                   MF_OK);
  assert_int_equal(count, 2);
  assert_int_equal(codecs[0].kind, MF_MEDIA_KIND_AUDIO);
  assert_int_equal(codecs[0].channels, 2);
  assert_string_equal(mf_rtp_params_find(&codecs[1].parameters, "profile-level-id")->str_value,
                      "4d0032");
  json_decref(in);
  count = 1;
  in = load("[{\"mimeType\":\"audio/opus\",\"clockRate\":48000},{\"mimeType\":\"x\"}]");
  assert_int_equal(mf_rtp_codec_capabilities_from_json_array(in, "mediaCodecs", codecs, &count,
                                                             err, sizeof err),
                   MF_ERR_LIMIT);
  assert_string_equal(err, "mediaCodecs has too many entries (max 1)");
  json_decref(in);
  count = 4;
  in = load("[{\"mimeType\":\"audio/opus\"}]");
  assert_int_equal(mf_rtp_codec_capabilities_from_json_array(in, "mediaCodecs", codecs, &count,
                                                             err, sizeof err),
                   MF_ERR_PARSE);
  assert_string_equal(err, "mediaCodecs[0].clockRate must be an integer 1..4294967295");
  json_decref(in);
}

static void test_serialize_omits_unset(void **state) {
  (void)state;
  mf_rtp_parameters_t *p = calloc(1, sizeof *p);
  p->codec_count = 1;
  strcpy(p->codecs[0].mime_type, "video/VP8");
  p->codecs[0].payload_type = 101;
  p->codecs[0].clock_rate = 90000;
  p->encoding_count = 1;
  p->encodings[0].has_ssrc = true;
  p->encodings[0].ssrc = 123456789;
  p->encodings[0].has_rtx = true;
  p->encodings[0].rtx_ssrc = 123456790;
  strcpy(p->encodings[0].scalability_mode, "L3T3");
  p->has_rtcp = true;
  strcpy(p->rtcp.cname, "cn");
  p->rtcp.has_reduced_size = p->rtcp.reduced_size = true;
  p->rtcp.has_mux = p->rtcp.mux = true;
  json_t *out = mf_rtp_parameters_to_json(p);
  json_t *want = load("{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":101,"
                      "\"clockRate\":90000,\"parameters\":{},\"rtcpFeedback\":[]}],"
                      "\"headerExtensions\":[],\"encodings\":[{\"ssrc\":123456789,"
                      "\"rtx\":{\"ssrc\":123456790},\"scalabilityMode\":\"L3T3\"}],"
                      "\"rtcp\":{\"cname\":\"cn\",\"reducedSize\":true,\"mux\":true}}");
  assert_json_equal(want, out);
  json_decref(out);
  json_decref(want);
  free(p);
}

static void test_kind_and_direction_names(void **state) {
  (void)state;
  assert_string_equal(mf_media_kind_str(MF_MEDIA_KIND_AUDIO), "audio");
  assert_string_equal(mf_media_kind_str(MF_MEDIA_KIND_VIDEO), "video");
  assert_string_equal(mf_media_kind_str(MF_MEDIA_KIND_NONE), "");
  assert_int_equal(mf_media_kind_parse("video"), MF_MEDIA_KIND_VIDEO);
  assert_int_equal(mf_media_kind_parse("Video"), MF_MEDIA_KIND_NONE);
  assert_int_equal(mf_media_kind_parse(NULL), MF_MEDIA_KIND_NONE);
  assert_string_equal(mf_rtp_direction_str(MF_RTP_DIRECTION_RECVONLY), "recvonly");
  assert_string_equal(mf_rtp_direction_str((mf_rtp_direction_t)99), "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_parameters),
      cmocka_unit_test(test_round_trip_capabilities),
      cmocka_unit_test(test_parameter_value_types),
      cmocka_unit_test(test_params_set),
      cmocka_unit_test(test_malformed_parameters),
      cmocka_unit_test(test_malformed_capabilities),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_media_codecs_array),
      cmocka_unit_test(test_serialize_omits_unset),
      cmocka_unit_test(test_kind_and_direction_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
