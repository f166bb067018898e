/* Wire encoding of SWIM packets (proto/gossip.proto) for common/swim.c: size-bounded
 * encoding with piggyback budgeting, and decoding that validates a whole packet before
 * the protocol sees any of it. Internal to the swim module (swim_udp also uses the address
 * parser); not a general API.
 *
 * Decoding never allocates from the heap: protobuf-c unpacks into a fixed arena owned by
 * the caller, so a hostile datagram costs at most the arena, and the decoded strings stay
 * valid until the next decode into the same arena.
 *
 * Thread affinity: none of its own; an arena or encoder belongs to one thread. */
#ifndef MF_SWIM_CODEC_H
#define MF_SWIM_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/swim.h"
#include "proto/gossip.pb-c.h"

/* Updates per packet, sent or accepted. 64 records of the smallest useful size already
 * fill most of MF_SWIM_PACKET_MAX, so a valid sender never needs more. */
#define MF_SWIM_CODEC_MAX_UPDATES 64

/* Enough for any packet that can be valid (64 updates, 1400 bytes of strings, unknown
 * fields); hostile packets that need more fail to unpack and count as invalid. */
#define MF_SWIM_CODEC_ARENA_SIZE (64 * 1024)

typedef enum {
  MF_SWIM_PACKET_PING = 1,
  MF_SWIM_PACKET_PING_REQ = 2,
  MF_SWIM_PACKET_ACK = 3,
  MF_SWIM_PACKET_SYNC = 4,
} mf_swim_packet_type_t;

/* One member record on the wire. Strings are never NULL ("" when absent). */
typedef struct {
  const char *id;
  const char *address;
  uint64_t incarnation;
  mf_swim_status_t status;
  const uint8_t *meta;
  size_t meta_len;
  const char *suspect_from; /* SUSPECT only; "" = unknown */
} mf_swim_wire_member_t;

typedef struct {
  mf_swim_packet_type_t type;
  mf_swim_wire_member_t sender; /* ALIVE or LEFT */
  uint64_t seq;
  const char *target_id;      /* "" when absent */
  const char *target_address; /* "" when absent */
  bool want_sync;            /* SYNC only: answer with our SYNC */
  size_t n_updates;
  mf_swim_wire_member_t updates[MF_SWIM_CODEC_MAX_UPDATES];
} mf_swim_packet_t;

typedef struct {
  size_t used;
  _Alignas(16) uint8_t buf[MF_SWIM_CODEC_ARENA_SIZE];
} mf_swim_arena_t;

/* 1..MF_SWIM_ID_MAX bytes, each printable ASCII other than space. NULL-safe. */
bool mf_swim_codec_valid_id(const char *id);

/* Canonical "a.b.c.d:port": decimal octets 0..255 without leading zeros, port 1..65535.
 * On success stores the address in host byte order (ip may be NULL, port may be NULL). */
bool mf_swim_codec_parse_address(const char *text, uint32_t *ip, uint16_t *port);

/* Decodes and validates data[0..len). Strings in *out point into the arena.
 * MF_ERR_LIMIT: empty or longer than MF_SWIM_PACKET_MAX, or too many updates;
 * MF_ERR_PARSE: not a Packet; MF_ERR_INVALID_ARG: a field out of its contract. */
mf_err_t mf_swim_codec_decode(mf_swim_arena_t *arena, const uint8_t *data, size_t len,
                              mf_swim_packet_t *out);

/* Builds one packet, adding updates only while the encoding stays within
 * MF_SWIM_PACKET_MAX. Strings given to it must outlive mf_swim_encoder_finish. */
typedef struct {
  Mafalda__Gossip__Packet packet;
  Mafalda__Gossip__Member sender;
  Mafalda__Gossip__Member members[MF_SWIM_CODEC_MAX_UPDATES];
  Mafalda__Gossip__Member *member_ptrs[MF_SWIM_CODEC_MAX_UPDATES];
  size_t size; /* encoded size so far */
} mf_swim_encoder_t;

void mf_swim_encoder_init(mf_swim_encoder_t *enc, mf_swim_packet_type_t type,
                          const mf_swim_wire_member_t *sender, uint64_t seq,
                          const char *target_id, const char *target_address);
/* Sets want_sync on a SYNC; call before adding updates. */
void mf_swim_encoder_want_sync(mf_swim_encoder_t *enc);
/* False (nothing added) when the update would not fit. */
bool mf_swim_encoder_add(mf_swim_encoder_t *enc, const mf_swim_wire_member_t *m);
size_t mf_swim_encoder_count(const mf_swim_encoder_t *enc);
/* Writes the packet; returns its length (<= MF_SWIM_PACKET_MAX). */
size_t mf_swim_encoder_finish(mf_swim_encoder_t *enc, uint8_t out[MF_SWIM_PACKET_MAX]);

#endif
