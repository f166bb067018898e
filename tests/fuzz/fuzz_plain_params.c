/* Fuzzes what a client sends to router.createPlainTransport and a plain transport's
 * transport.connect: arbitrary bytes as JSON, then the options parser, and the
 * srtpParameters parser on the input and on its "srtpParameters" member. What parses must
 * serialize back to the same JSON (the API shows keys in that shape) and to a key of the
 * suite's exact length. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "node/plain_transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_srtp(const json_t *j) {
  mf_pipe_srtp_t s;
  char err[160];
  if (mf_plain_srtp_parse(j, &s, err, sizeof err) != MF_OK) {
    if (s.enabled) abort(); /* a refused key leaves nothing behind */
    return;
  }
  if (!s.enabled || s.key_len != mf_srtp_profile_master_len(s.profile)) abort();
  json_t *back = mf_plain_srtp_json(&s);
  mf_pipe_srtp_t again;
  if (!back || mf_plain_srtp_parse(back, &again, err, sizeof err) != MF_OK) abort();
  if (again.profile != s.profile || again.key_len != s.key_len) abort();
  for (size_t i = 0; i < s.key_len; i++)
    if (again.key[i] != s.key[i]) abort();
  json_decref(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
  if (!j) return 0;
  mf_plain_options_t o;
  char err[160];
  if (mf_plain_options_parse(j, &o, err, sizeof err) == MF_OK && !o.rtcp_mux) abort();
  check_srtp(j);
  if (json_is_object(j)) check_srtp(json_object_get(j, "srtpParameters"));
  json_decref(j);
  return 0;
}
