/* Fuzz target for node/sctp_association.c, the usrsctp glue of DataChannels: inputs are
 * SCTP packets as they arrive decrypted from DTLS, fed to a real association with
 * mf_sctp_association_handle_packet, and every DCEP message it delivers goes through
 * mf_dcep_parse as the data router does.
 *
 * Input: one mode byte, then packets as [length: 2 bytes big-endian][bytes] (at most
 * MAX_PACKETS; a short last one takes what is left). Mode bits:
 *  0x01  the association is CONNECTED (a fresh pair, A and B, made the handshake with
 *        each other first; packets go to B, and what B answers is pumped through A);
 *        otherwise it is CONNECTING: it sent its INIT and waits for the peer's;
 *  0x02  the packet's CRC32c is recomputed (else almost every input dies at the checksum);
 *  0x04  ports become 5000/5000 and the verification tag the one the association expects
 *        (its own initiate tag), so the chunks reach the state machine;
 *  0x08  (connected) the TSN of each DATA chunk becomes the next TSN A would use plus its
 *        low byte, so the chunks land in the receive window and reach reassembly and the
 *        message callback (partial delivery, max message size, PPIDs).
 * Every input gets fresh associations; usrsctp's process-wide state is shared. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/dcep.h"
#include "node/sctp_association.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PACKETS 8
#define MAX_PACKET 1500
#define QUEUE 64

typedef struct {
  mf_sctp_association_t *a;
  uint8_t q[QUEUE][MAX_PACKET]; /* packets it sent, not yet delivered */
  size_t qlen[QUEUE];
  size_t count;
  uint32_t tag; /* initiate tag of its INIT (what packets to it carry) */
  bool have_tag;
  uint32_t next_tsn; /* after the last DATA chunk it sent */
  size_t messages;
} end_t;

static end_t g_a, g_b;

static uint32_t crc32c(const uint8_t *p, size_t n) {
  static uint32_t table[256];
  if (!table[1]) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      table[i] = c;
    }
  }
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

/* SCTP stores the CRC32c least significant byte first (RFC 9260 appendix A). */
static void fix_crc(uint8_t *p, size_t n) {
  memset(p + 8, 0, 4);
  uint32_t c = crc32c(p, n);
  p[8] = (uint8_t)c;
  p[9] = (uint8_t)(c >> 8);
  p[10] = (uint8_t)(c >> 16);
  p[11] = (uint8_t)(c >> 24);
}

/* Calls fn on each chunk of an SCTP packet (type, chunk start, chunk length). */
static void each_chunk(uint8_t *p, size_t n, void (*fn)(uint8_t *c, size_t len, void *ud),
                       void *ud) {
  size_t off = 12;
  while (off + 4 <= n) {
    size_t len = (size_t)p[off + 2] << 8 | p[off + 3];
    if (len < 4 || off + len > n) return;
    fn(p + off, len, ud);
    off += (len + 3) & ~(size_t)3;
  }
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void note_tsn(uint8_t *c, size_t len, void *ud) {
  end_t *e = ud;
  if (c[0] == 1 && len >= 20 && !e->next_tsn) e->next_tsn = be32(c + 16); /* INIT: initial TSN */
  if (c[0] == 0 && len >= 16 && be32(c + 4) + 1 - e->next_tsn < 0x80000000u)
    e->next_tsn = be32(c + 4) + 1; /* DATA */
}

static void set_tsn(uint8_t *c, size_t len, void *ud) {
  uint32_t base = *(const uint32_t *)ud;
  if (c[0] != 0 || len < 16) return;
  uint32_t tsn = base + c[7];
  c[4] = (uint8_t)(tsn >> 24);
  c[5] = (uint8_t)(tsn >> 16);
  c[6] = (uint8_t)(tsn >> 8);
  c[7] = (uint8_t)tsn;
}

static void on_send(void *ud, const uint8_t *d, size_t len) {
  end_t *e = ud;
  if (len <= MAX_PACKET) {
    uint8_t copy[MAX_PACKET];
    memcpy(copy, d, len);
    each_chunk(copy, len, note_tsn, e);
  }
  /* the first chunk of its first packet is its INIT: bytes 16..19 are the initiate tag */
  if (!e->have_tag && len >= 20 && d[12] == 1) {
    e->tag = (uint32_t)d[16] << 24 | (uint32_t)d[17] << 16 | (uint32_t)d[18] << 8 | d[19];
    e->have_tag = true;
    /* self-check of the checksum fix-up against a packet usrsctp made */
    uint8_t copy[MAX_PACKET];
    if (len <= sizeof copy) {
      memcpy(copy, d, len);
      fix_crc(copy, len);
      if (memcmp(copy, d, len) != 0) abort();
    }
  }
  if (e->count == QUEUE || len > MAX_PACKET) return; /* a lossy wire */
  memcpy(e->q[e->count], d, len);
  e->qlen[e->count++] = len;
}

static void on_message(void *ud, uint16_t sid, uint32_t ppid, const uint8_t *d, size_t len) {
  end_t *e = ud;
  e->messages++;
  (void)sid;
  if (ppid == MF_SCTP_PPID_DCEP) {
    mf_dcep_message_t m;
    if (mf_dcep_parse(d, len, &m) == MF_OK && m.type == MF_DCEP_MSG_OPEN) {
      mf_sctp_send_params_t p;
      mf_dcep_send_params(&m.open, &p);
    }
  }
}

static const mf_sctp_callbacks_t cb = {.send = on_send, .message = on_message};

/* Delivers what each end queued to the other (peer NULL: dropped). */
static void pump(end_t *x, end_t *y, unsigned rounds) {
  for (unsigned r = 0; r < rounds; r++) {
    bool moved = false;
    end_t *from[2] = {x, y}, *to[2] = {y, x};
    for (int i = 0; i < 2; i++) {
      if (!from[i]) continue;
      size_t n = from[i]->count;
      from[i]->count = 0;
      for (size_t k = 0; k < n; k++) {
        if (to[i] && to[i]->a)
          mf_sctp_association_handle_packet(to[i]->a, from[i]->q[k], from[i]->qlen[k]);
        moved = true;
      }
    }
    mf_sctp_handle_timers(50);
    if (x && x->a) mf_sctp_association_process(x->a);
    if (y && y->a) mf_sctp_association_process(y->a);
    if (!moved) break;
  }
}

static bool open_end(end_t *e) {
  memset(e, 0, sizeof *e);
  mf_sctp_options_t o = {.os = 16, .mis = 16, .max_message_size = 4096};
  if (mf_sctp_association_create(NULL, &o, &cb, e, &e->a) != MF_OK) return false;
  return mf_sctp_association_connect(e->a) == MF_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool quiet;
  if (!quiet) { /* state changes are logged at INFO: thousands of lines per second here */
    mf_log_config_t lc = {.level = MF_LOG_LEVEL_ERROR, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
    mf_log_configure(&lc);
    quiet = true;
  }
  if (size < 1) return 0;
  uint8_t mode = data[0];
  data++;
  size--;
  end_t *target = &g_b, *peer = NULL;
  if (!open_end(&g_b)) abort();
  if (mode & 0x01) {
    peer = &g_a;
    if (!open_end(&g_a)) abort();
    pump(&g_a, &g_b, 20);
    if (mf_sctp_association_state(g_b.a) != MF_SCTP_STATE_CONNECTED) abort();
    /* a message each way, so data chunks and SACKs are in flight around the inputs */
    static const uint8_t open[] = {0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                   0x00, 0x01, 0x00, 0x00, 'x'};
    mf_sctp_send_params_t rel = {.ordered = true, .max_retransmits = -1,
                                 .max_packet_life_time = -1};
    (void)mf_sctp_association_send(g_a.a, 1, MF_SCTP_PPID_DCEP, &rel, open, sizeof open);
    pump(&g_a, &g_b, 4);
  } else {
    g_b.count = 0; /* its INIT goes nowhere */
  }

  uint8_t pkt[MAX_PACKET];
  for (int n = 0; n < MAX_PACKETS && size > 0; n++) {
    size_t len = size;
    if (size >= 2) {
      len = (size_t)data[0] << 8 | data[1];
      data += 2;
      size -= 2;
      if (len > size) len = size;
    }
    if (len > sizeof pkt) len = sizeof pkt;
    memcpy(pkt, data, len);
    data += len;
    size -= len;
    if ((mode & 0x04) && len >= 12) {
      pkt[0] = pkt[2] = MF_SCTP_PORT >> 8;
      pkt[1] = pkt[3] = MF_SCTP_PORT & 0xff;
      pkt[4] = (uint8_t)(target->tag >> 24);
      pkt[5] = (uint8_t)(target->tag >> 16);
      pkt[6] = (uint8_t)(target->tag >> 8);
      pkt[7] = (uint8_t)target->tag;
    }
    if ((mode & 0x08) && peer) each_chunk(pkt, len, set_tsn, &peer->next_tsn);
    if ((mode & 0x02) && len >= 12) fix_crc(pkt, len);
    if (target->a) mf_sctp_association_handle_packet(target->a, pkt, len);
    pump(peer, target, 4);
  }
  mf_sctp_association_free(g_b.a);
  g_b.a = NULL;
  if (peer) {
    mf_sctp_association_free(g_a.a);
    g_a.a = NULL;
  }
  return 0;
}
