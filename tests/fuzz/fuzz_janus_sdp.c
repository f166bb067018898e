/* Fuzzes mafalda-bench's parser of Janus's SDP (tests/bench/gen_janus_sdp.h: what a Janus
 * answer or offer says is network input to the generator). On a successful parse it also
 * writes the subscriber answer and checks that it parses back with the same m-sections:
 * an answer its own parser refuses would be one Janus may refuse too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/bench/gen_janus_sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FP "3D:7C:55:8E:7E:40:6D:EA:40:D2:11:A2:03:38:8F:99:2A:82:45:AF:49:18:AB:5A:89:60:96:CA:37:C8:4C:D8"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mf_gen_janus_sdp_t offer, back;
  static char out[256 * 1024];
  if (mf_gen_janus_sdp_parse((const char *)data, size, &offer) != MF_OK) return 0;
  static const mf_gen_janus_local_t local = {.ufrag = "mfu00001", .pwd = "mfpwd0123456789abcdef0",
                                             .fingerprint = FP, .ip = "127.0.0.1", .port = 9};
  size_t len = 0;
  mf_err_t e = mf_gen_janus_sdp_write_answer(&offer, &local, 1, out, sizeof out, &len);
  if (e != MF_OK) abort(); /* a parsed offer always fits 256 KiB of answer */
  if (mf_gen_janus_sdp_parse(out, len, &back) != MF_OK || back.nmedia != offer.nmedia) abort();
  for (size_t i = 0; i < offer.nmedia; i++)
    if (back.media[i].kind != offer.media[i].kind || strcmp(back.media[i].mid, offer.media[i].mid) != 0)
      abort();
  return 0;
}
