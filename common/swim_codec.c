#include "common/swim_codec.h"

#include <string.h>

/* ---- validation ---------------------------------------------------------------------- */

bool mf_swim_codec_valid_id(const char *id) {
  if (!id) return false;
  size_t n = 0;
  for (; id[n]; n++) {
    if (n >= MF_SWIM_ID_MAX) return false;
    unsigned char c = (unsigned char)id[n];
    if (c < 0x21 || c > 0x7e) return false;
  }
  return n > 0;
}

/* Reads a decimal number of 1..max_digits digits with no leading zero (other than "0"
 * itself), so every address has exactly one spelling and string equality is identity. */
static bool read_decimal(const char **p, unsigned max_digits, uint32_t max_value,
                         uint32_t *out) {
  const char *s = *p;
  if (*s < '0' || *s > '9') return false;
  if (s[0] == '0' && s[1] >= '0' && s[1] <= '9') return false;
  uint32_t v = 0;
  unsigned n = 0;
  while (*s >= '0' && *s <= '9') {
    if (++n > max_digits) return false;
    v = v * 10 + (uint32_t)(*s - '0');
    s++;
  }
  if (v > max_value) return false;
  *p = s;
  *out = v;
  return true;
}

bool mf_swim_codec_parse_address(const char *text, uint32_t *ip, uint16_t *port) {
  if (!text || strlen(text) > MF_SWIM_ADDRESS_MAX) return false;
  const char *p = text;
  uint32_t addr = 0, v;
  for (int i = 0; i < 4; i++) {
    if (!read_decimal(&p, 3, 255, &v)) return false;
    addr = (addr << 8) | v;
    if (*p++ != (i < 3 ? '.' : ':')) return false;
  }
  if (!read_decimal(&p, 5, 65535, &v) || v == 0 || *p != '\0') return false;
  if (ip) *ip = addr;
  if (port) *port = (uint16_t)v;
  return true;
}

/* ---- decoding ------------------------------------------------------------------------ */

/* protobuf-c allocator over the caller's arena: bump allocation, free is a no-op, and
 * running out makes unpack fail cleanly (it checks every allocation). */
static void *arena_alloc(void *data, size_t size) {
  mf_swim_arena_t *a = data;
  size_t start = (a->used + 15) & ~(size_t)15;
  if (size > sizeof a->buf || start > sizeof a->buf - size) return NULL;
  a->used = start + size;
  return a->buf + start;
}

static void arena_free(void *data, void *ptr) {
  (void)data;
  (void)ptr;
}

static const char *str_or_empty(const char *s) { return s ? s : ""; }

static bool status_from_wire(Mafalda__Gossip__Status s, mf_swim_status_t *out) {
  switch (s) {
    case MAFALDA__GOSSIP__STATUS__STATUS_ALIVE: *out = MF_SWIM_ALIVE; return true;
    case MAFALDA__GOSSIP__STATUS__STATUS_SUSPECT: *out = MF_SWIM_SUSPECT; return true;
    case MAFALDA__GOSSIP__STATUS__STATUS_DEAD: *out = MF_SWIM_DEAD; return true;
    case MAFALDA__GOSSIP__STATUS__STATUS_LEFT: *out = MF_SWIM_LEFT; return true;
    default: return false; /* UNSPECIFIED or a value from the future */
  }
}

static Mafalda__Gossip__Status status_to_wire(mf_swim_status_t s) {
  switch (s) {
    case MF_SWIM_ALIVE: return MAFALDA__GOSSIP__STATUS__STATUS_ALIVE;
    case MF_SWIM_SUSPECT: return MAFALDA__GOSSIP__STATUS__STATUS_SUSPECT;
    case MF_SWIM_DEAD: return MAFALDA__GOSSIP__STATUS__STATUS_DEAD;
    case MF_SWIM_LEFT: return MAFALDA__GOSSIP__STATUS__STATUS_LEFT;
  }
  return MAFALDA__GOSSIP__STATUS__STATUS_UNSPECIFIED;
}

static bool member_from_wire(const Mafalda__Gossip__Member *w, mf_swim_wire_member_t *out) {
  if (!w) return false;
  out->id = str_or_empty(w->id);
  out->address = str_or_empty(w->address);
  out->suspect_from = str_or_empty(w->suspect_from);
  out->incarnation = w->incarnation;
  out->meta = w->meta.data;
  out->meta_len = w->meta.len;
  if (!mf_swim_codec_valid_id(out->id)) return false;
  if (!mf_swim_codec_parse_address(out->address, NULL, NULL)) return false;
  if (!status_from_wire(w->status, &out->status)) return false;
  if (out->meta_len > MF_SWIM_META_MAX) return false;
  if (out->meta_len == 0) out->meta = NULL;
  if (out->suspect_from[0] != '\0' &&
      (out->status != MF_SWIM_SUSPECT || !mf_swim_codec_valid_id(out->suspect_from)))
    return false;
  return true;
}

mf_err_t mf_swim_codec_decode(mf_swim_arena_t *arena, const uint8_t *data, size_t len,
                              mf_swim_packet_t *out) {
  if (!data || len == 0 || len > MF_SWIM_PACKET_MAX) return MF_ERR_LIMIT;
  arena->used = 0;
  ProtobufCAllocator alloc = {.alloc = arena_alloc, .free = arena_free, .allocator_data = arena};
  Mafalda__Gossip__Packet *p = mafalda__gossip__packet__unpack(&alloc, len, data);
  if (!p) return MF_ERR_PARSE;
  /* Everything below points into the arena; nothing is freed. */
  switch (p->type) {
    case MAFALDA__GOSSIP__PACKET_TYPE__PACKET_TYPE_PING: out->type = MF_SWIM_PACKET_PING; break;
    case MAFALDA__GOSSIP__PACKET_TYPE__PACKET_TYPE_PING_REQ:
      out->type = MF_SWIM_PACKET_PING_REQ;
      break;
    case MAFALDA__GOSSIP__PACKET_TYPE__PACKET_TYPE_ACK: out->type = MF_SWIM_PACKET_ACK; break;
    case MAFALDA__GOSSIP__PACKET_TYPE__PACKET_TYPE_SYNC: out->type = MF_SWIM_PACKET_SYNC; break;
    default: return MF_ERR_INVALID_ARG;
  }
  if (!member_from_wire(p->sender, &out->sender)) return MF_ERR_INVALID_ARG;
  if (out->sender.status != MF_SWIM_ALIVE && out->sender.status != MF_SWIM_LEFT)
    return MF_ERR_INVALID_ARG;
  out->seq = p->seq;
  out->target_id = str_or_empty(p->target_id);
  out->target_address = str_or_empty(p->target_address);
  bool has_tid = out->target_id[0] != '\0', has_taddr = out->target_address[0] != '\0';
  if (has_tid && !mf_swim_codec_valid_id(out->target_id)) return MF_ERR_INVALID_ARG;
  if (has_taddr && !mf_swim_codec_parse_address(out->target_address, NULL, NULL))
    return MF_ERR_INVALID_ARG;
  switch (out->type) {
    case MF_SWIM_PACKET_PING:
      if (has_taddr) return MF_ERR_INVALID_ARG;
      break;
    case MF_SWIM_PACKET_PING_REQ:
      if (!has_tid || !has_taddr) return MF_ERR_INVALID_ARG;
      break;
    case MF_SWIM_PACKET_ACK:
    case MF_SWIM_PACKET_SYNC:
      if (has_tid || has_taddr) return MF_ERR_INVALID_ARG;
      break;
  }
  out->want_sync = p->want_sync;
  if (out->want_sync && out->type != MF_SWIM_PACKET_SYNC) return MF_ERR_INVALID_ARG;
  if (p->n_updates > MF_SWIM_CODEC_MAX_UPDATES) return MF_ERR_LIMIT;
  out->n_updates = p->n_updates;
  for (size_t i = 0; i < p->n_updates; i++)
    if (!member_from_wire(p->updates[i], &out->updates[i])) return MF_ERR_INVALID_ARG;
  return MF_OK;
}

/* ---- encoding ------------------------------------------------------------------------ */

static size_t varint_size(size_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* protobuf-c never writes through these pointers when packing; the casts only satisfy
 * its non-const struct fields. */
static void member_to_wire(const mf_swim_wire_member_t *m, Mafalda__Gossip__Member *w) {
  mafalda__gossip__member__init(w);
  w->id = (char *)m->id;
  w->address = (char *)m->address;
  w->incarnation = m->incarnation;
  w->status = status_to_wire(m->status);
  w->meta.data = (uint8_t *)m->meta;
  w->meta.len = m->meta ? m->meta_len : 0;
  w->suspect_from = (char *)(m->status == MF_SWIM_SUSPECT && m->suspect_from ? m->suspect_from : "");
}

void mf_swim_encoder_init(mf_swim_encoder_t *enc, mf_swim_packet_type_t type,
                          const mf_swim_wire_member_t *sender, uint64_t seq,
                          const char *target_id, const char *target_address) {
  mafalda__gossip__packet__init(&enc->packet);
  member_to_wire(sender, &enc->sender);
  enc->packet.type = (Mafalda__Gossip__PacketType)type;
  enc->packet.sender = &enc->sender;
  enc->packet.seq = seq;
  enc->packet.target_id = (char *)(target_id ? target_id : "");
  enc->packet.target_address = (char *)(target_address ? target_address : "");
  enc->packet.n_updates = 0;
  enc->packet.updates = enc->member_ptrs;
  enc->size = mafalda__gossip__packet__get_packed_size(&enc->packet);
}

void mf_swim_encoder_want_sync(mf_swim_encoder_t *enc) {
  enc->packet.want_sync = true;
  enc->size = mafalda__gossip__packet__get_packed_size(&enc->packet);
}

bool mf_swim_encoder_add(mf_swim_encoder_t *enc, const mf_swim_wire_member_t *m) {
  size_t n = enc->packet.n_updates;
  if (n >= MF_SWIM_CODEC_MAX_UPDATES) return false;
  Mafalda__Gossip__Member *w = &enc->members[n];
  member_to_wire(m, w);
  size_t body = mafalda__gossip__member__get_packed_size(w);
  size_t cost = 1 /* tag of field 6 */ + varint_size(body) + body;
  if (enc->size + cost > MF_SWIM_PACKET_MAX) return false;
  enc->member_ptrs[n] = w;
  enc->packet.n_updates = n + 1;
  enc->size += cost;
  return true;
}

size_t mf_swim_encoder_count(const mf_swim_encoder_t *enc) { return enc->packet.n_updates; }

size_t mf_swim_encoder_finish(mf_swim_encoder_t *enc, uint8_t out[MF_SWIM_PACKET_MAX]) {
  /* enc->size follows protobuf-c's own arithmetic; checking again costs little and keeps
   * a mistake there from ever writing past out. */
  if (mafalda__gossip__packet__get_packed_size(&enc->packet) > MF_SWIM_PACKET_MAX) return 0;
  return mafalda__gossip__packet__pack(&enc->packet, out);
}
