/* Glue between protobuf-c messages and nng messages, for every RPC in the cluster
 * (agent <-> controller, node <-> node). Encoding sizes the nng message exactly; decoding
 * enforces a size limit before protobuf-c sees the bytes, and reports malformed input as
 * MF_ERR_PARSE instead of failing later. Thread-safe (no shared state). */
#ifndef MF_PBNNG_H
#define MF_PBNNG_H

#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "err.h"

/* Default upper bound for one RPC message; larger ones are refused with MF_ERR_LIMIT. */
#define MF_PBNNG_MAX_MESSAGE (4u * 1024u * 1024u)

/* Packs msg into a new nng message (*out owned by the caller, or sent: nng_sendmsg). */
mf_err_t mf_pbnng_encode(const ProtobufCMessage *msg, nng_msg **out);

/* Unpacks the body of an nng message (not consumed). On MF_OK, *out is owned by the
 * caller: free it with protobuf_c_message_free_unpacked(*out, NULL). */
mf_err_t mf_pbnng_decode(const ProtobufCMessageDescriptor *descriptor, nng_msg *msg,
                         size_t max_size, ProtobufCMessage **out);

#endif
