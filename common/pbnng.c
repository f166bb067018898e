#include "pbnng.h"

mf_err_t mf_pbnng_encode(const ProtobufCMessage *msg, nng_msg **out) {
  size_t size = protobuf_c_message_get_packed_size(msg);
  if (size > MF_PBNNG_MAX_MESSAGE) return MF_ERR_LIMIT;
  nng_msg *m = NULL;
  if (nng_msg_alloc(&m, size) != 0) return MF_ERR_NO_MEMORY;
  if (size > 0 && protobuf_c_message_pack(msg, nng_msg_body(m)) != size) {
    nng_msg_free(m);
    return MF_ERR_INTERNAL;
  }
  *out = m;
  return MF_OK;
}

mf_err_t mf_pbnng_decode(const ProtobufCMessageDescriptor *descriptor, nng_msg *msg,
                         size_t max_size, ProtobufCMessage **out) {
  size_t len = nng_msg_len(msg);
  if (len > max_size) return MF_ERR_LIMIT;
  ProtobufCMessage *m = protobuf_c_message_unpack(descriptor, NULL, len, nng_msg_body(msg));
  if (!m) return MF_ERR_PARSE;
  *out = m;
  return MF_OK;
}
