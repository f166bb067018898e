/* DCEP, the WebRTC Data Channel Establishment Protocol (RFC 8832): DATA_CHANNEL_OPEN and
 * DATA_CHANNEL_ACK, carried on the channel's own SCTP stream with PPID 50.
 *
 * mediasoup-client negotiates its channels out of band (negotiated: true, the stream id
 * comes from the server), so DCEP only matters for peers that open channels in band:
 * the node acknowledges their OPEN (see data_router.c). Pure functions, no state: any
 * thread. Parsing bounds-checks every length against the input and never reads past it;
 * label and protocol point INTO the parsed buffer (not NUL-terminated). */
#ifndef MF_DCEP_H
#define MF_DCEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "node/sctp_association.h"

#define MF_DCEP_MSG_ACK 0x02
#define MF_DCEP_MSG_OPEN 0x03
#define MF_DCEP_OPEN_HEADER 12 /* fixed part of DATA_CHANNEL_OPEN */

/* Channel types (RFC 8832 5.1); bit 0x80 = unordered. */
#define MF_DCEP_RELIABLE 0x00
#define MF_DCEP_PARTIAL_RELIABLE_REXMIT 0x01
#define MF_DCEP_PARTIAL_RELIABLE_TIMED 0x02
#define MF_DCEP_UNORDERED 0x80

typedef struct {
  uint8_t channel_type;
  uint16_t priority;
  uint32_t reliability; /* retransmissions or lifetime (ms), by channel type; else 0 */
  const uint8_t *label;
  uint16_t label_len;
  const uint8_t *protocol;
  uint16_t protocol_len;
} mf_dcep_open_t;

typedef struct {
  uint8_t type; /* MF_DCEP_MSG_OPEN or MF_DCEP_MSG_ACK */
  mf_dcep_open_t open; /* for OPEN */
} mf_dcep_message_t;

/* MF_ERR_PARSE for an empty or truncated message, an unknown message or channel type,
 * an ACK with trailing bytes, or label/protocol lengths that do not add up to exactly the
 * message's length. */
mf_err_t mf_dcep_parse(const uint8_t *data, size_t len, mf_dcep_message_t *out);

/* Writes a DATA_CHANNEL_OPEN; *out_len its size. MF_ERR_LIMIT if cap is too small,
 * MF_ERR_INVALID_ARG for an unknown channel type. */
mf_err_t mf_dcep_write_open(const mf_dcep_open_t *open, uint8_t *out, size_t cap, size_t *out_len);

/* Writes the one-byte DATA_CHANNEL_ACK. MF_ERR_LIMIT if cap is 0. */
mf_err_t mf_dcep_write_ack(uint8_t *out, size_t cap, size_t *out_len);

/* The send parameters an OPEN asks for (ordered, max_retransmits or lifetime). */
void mf_dcep_send_params(const mf_dcep_open_t *open, mf_sctp_send_params_t *out);

#endif
