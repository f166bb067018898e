#include "node/dcep.h"

#include <string.h>

static bool dcep_type_ok(uint8_t t) { return (t & 0x7f) <= MF_DCEP_PARTIAL_RELIABLE_TIMED; }

static uint16_t dcep_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static uint32_t dcep_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void dcep_put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void dcep_put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

mf_err_t mf_dcep_parse(const uint8_t *data, size_t len, mf_dcep_message_t *out) {
  if (!data || !out || len == 0) return MF_ERR_PARSE;
  memset(out, 0, sizeof *out);
  out->type = data[0];
  if (data[0] == MF_DCEP_MSG_ACK) return len == 1 ? MF_OK : MF_ERR_PARSE;
  if (data[0] != MF_DCEP_MSG_OPEN || len < MF_DCEP_OPEN_HEADER) return MF_ERR_PARSE;
  mf_dcep_open_t *o = &out->open;
  o->channel_type = data[1];
  if (!dcep_type_ok(o->channel_type)) return MF_ERR_PARSE;
  o->priority = dcep_be16(data + 2);
  o->reliability = dcep_be32(data + 4);
  o->label_len = dcep_be16(data + 8);
  o->protocol_len = dcep_be16(data + 10);
  /* size_t arithmetic: two 16-bit lengths cannot overflow it */
  if ((size_t)MF_DCEP_OPEN_HEADER + o->label_len + o->protocol_len != len) return MF_ERR_PARSE;
  o->label = data + MF_DCEP_OPEN_HEADER;
  o->protocol = o->label + o->label_len;
  return MF_OK;
}

mf_err_t mf_dcep_write_open(const mf_dcep_open_t *o, uint8_t *out, size_t cap, size_t *out_len) {
  if (!o || !out || !out_len || !dcep_type_ok(o->channel_type)) return MF_ERR_INVALID_ARG;
  if ((o->label_len && !o->label) || (o->protocol_len && !o->protocol)) return MF_ERR_INVALID_ARG;
  size_t need = (size_t)MF_DCEP_OPEN_HEADER + o->label_len + o->protocol_len;
  if (cap < need) return MF_ERR_LIMIT;
  out[0] = MF_DCEP_MSG_OPEN;
  out[1] = o->channel_type;
  dcep_put16(out + 2, o->priority);
  dcep_put32(out + 4, (o->channel_type & 0x7f) == MF_DCEP_RELIABLE ? 0 : o->reliability);
  dcep_put16(out + 8, o->label_len);
  dcep_put16(out + 10, o->protocol_len);
  if (o->label_len) memcpy(out + MF_DCEP_OPEN_HEADER, o->label, o->label_len);
  if (o->protocol_len) memcpy(out + MF_DCEP_OPEN_HEADER + o->label_len, o->protocol, o->protocol_len);
  *out_len = need;
  return MF_OK;
}

mf_err_t mf_dcep_write_ack(uint8_t *out, size_t cap, size_t *out_len) {
  if (!out || !out_len) return MF_ERR_INVALID_ARG;
  if (cap < 1) return MF_ERR_LIMIT;
  out[0] = MF_DCEP_MSG_ACK;
  *out_len = 1;
  return MF_OK;
}

void mf_dcep_send_params(const mf_dcep_open_t *o, mf_sctp_send_params_t *out) {
  out->ordered = (o->channel_type & MF_DCEP_UNORDERED) == 0;
  out->max_retransmits = -1;
  out->max_packet_life_time = -1;
  int32_t v = o->reliability > INT32_MAX ? INT32_MAX : (int32_t)o->reliability;
  if ((o->channel_type & 0x7f) == MF_DCEP_PARTIAL_RELIABLE_REXMIT) out->max_retransmits = v;
  if ((o->channel_type & 0x7f) == MF_DCEP_PARTIAL_RELIABLE_TIMED) out->max_packet_life_time = v;
}
