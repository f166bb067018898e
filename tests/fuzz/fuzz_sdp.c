/* Fuzzes the SDP parser with untrusted offers (WHIP/WHEP bodies, signalling messages).
 * On a successful parse it also writes the description back and checks that the text
 * parses again to the same description: a writer emitting something its own parser
 * rejects, or reads differently, would break negotiation with real peers. The same holds
 * for an answer built from the parsed offer. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/sdp.h"
#include "node/sdp_answer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Written text can exceed the input: a=rtcp-fb:* lines expand to every payload type. */
#define OUT_CAP (1024 * 1024)

/* An answer to whatever parsed must also write and parse back. */
static void check_answer(const mf_sdp_t *offer, char *out, size_t cap) {
  static mf_sdp_t answer, back;
  static const char *const codecs[] = {"VP8", "opus", "rtx", "H264"};
  mf_sdp_candidate_t cand;
  memset(&cand, 0, sizeof cand);
  strcpy(cand.foundation, "1");
  cand.component = 1;
  strcpy(cand.transport, "udp");
  cand.priority = 2113937151u;
  strcpy(cand.address, "127.0.0.1");
  cand.port = 40000;
  strcpy(cand.type, "host");
  mf_sdp_local_t local = {
      .ice_ufrag = "ufrag", .ice_pwd = "passwordpasswordpassword", .ice_lite = true,
      .fingerprint_alg = "sha-256", .fingerprint = "AA:BB", .setup = MF_SDP_SETUP_PASSIVE,
      .candidates = &cand, .candidate_count = 1, .codecs = codecs, .codec_count = 4,
      .accept_data = true};
  if (mf_sdp_make_answer(offer, &local, &answer) != MF_OK) abort();
  size_t len = 0;
  if (mf_sdp_write(&answer, out, cap, &len) != MF_OK) abort();
  if (mf_sdp_parse(out, len, &back) != MF_OK || memcmp(&answer, &back, sizeof back) != 0) {
    fprintf(stderr, "answer does not round-trip: %s\n%s\n", back.error, out);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mf_sdp_t first, second;
  static char out[OUT_CAP];
  if (mf_sdp_parse((const char *)data, size, &first) != MF_OK) return 0;
  size_t len = 0;
  mf_err_t err = mf_sdp_write(&first, out, sizeof out, &len);
  if (err != MF_OK) {
    fprintf(stderr, "write failed after a good parse: %s\n", mf_err_name(err));
    abort();
  }
  if (mf_sdp_parse(out, len, &second) != MF_OK) {
    fprintf(stderr, "written SDP does not parse: %s\n%s\n", second.error, out);
    abort();
  }
  if (memcmp(&first, &second, sizeof first) != 0) {
    const unsigned char *a = (const void *)&first, *b = (const void *)&second;
    size_t at = 0;
    while (a[at] == b[at]) at++;
    size_t media = offsetof(mf_sdp_t, media);
    if (at >= media && at < media + sizeof first.media)
      fprintf(stderr, "round trip changed media %zu at byte %zu of the section\n",
              (at - media) / sizeof(mf_sdp_media_t), (at - media) % sizeof(mf_sdp_media_t));
    else
      fprintf(stderr, "round trip changed byte %zu of the session\n", at);
    fprintf(stderr, "input:\n%.*s\nwritten:\n%s\n", (int)size, (const char *)data, out);
    abort();
  }
  check_answer(&first, out, sizeof out);
  return 0;
}
