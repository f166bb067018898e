/* Fuzz target for node/dcep.h: whatever parses must write back byte for byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/dcep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
  if (!cond) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mf_dcep_message_t m;
  if (mf_dcep_parse(data, size, &m) != MF_OK) return 0;
  static uint8_t out[12 + 2 * 65535];
  size_t n = 0;
  if (m.type == MF_DCEP_MSG_ACK) {
    check(mf_dcep_write_ack(out, sizeof out, &n) == MF_OK && n == size);
    return 0;
  }
  check(m.open.label + m.open.label_len <= data + size);
  check(m.open.protocol + m.open.protocol_len <= data + size);
  mf_sctp_send_params_t p;
  mf_dcep_send_params(&m.open, &p);
  check(mf_dcep_write_open(&m.open, out, sizeof out, &n) == MF_OK);
  check(n == size);
  /* reliability is written as 0 for reliable channels */
  if ((m.open.channel_type & 0x7f) != MF_DCEP_RELIABLE) check(memcmp(out, data, size) == 0);
  else check(memcmp(out, data, 4) == 0 && memcmp(out + 8, data + 8, size - 8) == 0);
  return 0;
}
