/* Fuzzes the path a client's `produce` request takes: arbitrary bytes as JSON, then
 * rtpParameters parse -> validate -> mapping against the default router capabilities ->
 * consumable -> consumer parameters for the router's own capabilities. Also checks that
 * serializing what parsed gives JSON that parses back to the same serialization (the API
 * answers with what we serialize; a reply we could not read back would be a bug), and
 * runs the capabilities parser on the same input. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/ortc.h"
#include "node/rtp_parameters.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip_params(const mf_rtp_parameters_t *params) {
  static mf_rtp_parameters_t back;
  char err[256];
  json_t *j1 = mf_rtp_parameters_to_json(params);
  if (!j1) abort();
  if (mf_rtp_parameters_from_json(j1, "p", &back, err, sizeof err) != MF_OK) abort();
  json_t *j2 = mf_rtp_parameters_to_json(&back);
  if (!j2 || !json_equal(j1, j2)) abort();
  json_decref(j1);
  json_decref(j2);
}

static void check_round_trip_caps(const mf_rtp_capabilities_t *caps) {
  static mf_rtp_capabilities_t back;
  char err[256];
  json_t *j1 = mf_rtp_capabilities_to_json(caps);
  if (!j1) abort();
  if (mf_rtp_capabilities_from_json(j1, "c", &back, err, sizeof err) != MF_OK) abort();
  json_t *j2 = mf_rtp_capabilities_to_json(&back);
  if (!j2 || !json_equal(j1, j2)) abort();
  json_decref(j1);
  json_decref(j2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mf_rtp_capabilities_t router_caps, caps;
  static mf_rtp_parameters_t params, consumable, consumer;
  static mf_rtp_mapping_t mapping;
  static int ready;
  char err[256];
  if (!ready) {
    size_t n = 0;
    const mf_rtp_codec_capability_t *codecs = mf_ortc_default_media_codecs(&n);
    if (mf_ortc_generate_router_rtp_capabilities(codecs, n, &router_caps, err, sizeof err) !=
        MF_OK)
      abort();
    ready = 1;
  }
  json_error_t jerr;
  json_t *root = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
  if (!root) return 0;

  err[0] = '\0';
  if (mf_rtp_capabilities_from_json(root, "caps", &caps, err, sizeof err) == MF_OK) {
    check_round_trip_caps(&caps);
    if (mf_ortc_validate_rtp_capabilities(&caps, err, sizeof err) == MF_OK) {
      check_round_trip_caps(&caps);
    }
  } else if (err[0] == '\0') {
    abort(); /* every failure must explain itself */
  }

  err[0] = '\0';
  if (mf_rtp_parameters_from_json(root, "rtpParameters", &params, err, sizeof err) != MF_OK) {
    if (err[0] == '\0') abort();
    json_decref(root);
    return 0;
  }
  check_round_trip_params(&params);
  if (mf_ortc_validate_rtp_parameters(&params, err, sizeof err) == MF_OK &&
      mf_ortc_get_producer_rtp_parameters_mapping(&params, &router_caps, &mapping, err,
                                                  sizeof err) == MF_OK) {
    check_round_trip_params(&params);
    if (mapping.encoding_count != params.encoding_count) abort();
    for (size_t i = 0; i < mapping.codec_count; i++) {
      bool found = false;
      for (size_t j = 0; j < router_caps.codec_count; j++) {
        if (router_caps.codecs[j].preferred_payload_type == mapping.codecs[i].mapped_payload_type)
          found = true;
      }
      if (!found) abort();
    }
    mf_media_kind_t kind = strncmp(params.codecs[0].mime_type, "audio", 5) == 0
                               ? MF_MEDIA_KIND_AUDIO
                               : MF_MEDIA_KIND_VIDEO;
    if (mf_ortc_get_consumable_rtp_parameters(kind, &params, &router_caps, &mapping,
                                              &consumable, err, sizeof err) == MF_OK) {
      check_round_trip_params(&consumable);
      if (mf_ortc_can_consume(&consumable, &router_caps)) {
        if (mf_ortc_get_consumer_rtp_parameters(&consumable, &router_caps, false, true,
                                                &consumer, err, sizeof err) != MF_OK)
          abort(); /* can_consume promised a codec */
        check_round_trip_params(&consumer);
        if (consumer.encoding_count != 1) abort();
      }
      if (mf_ortc_get_consumer_rtp_parameters(&consumable, &router_caps, true, false, &consumer,
                                              err, sizeof err) == MF_OK) {
        check_round_trip_params(&consumer);
      }
    }
  }
  json_decref(root);
  return 0;
}
