/* Simulcast (VP8, three rid streams) and SVC (VP9 L2T2) consumers on plain transports over
 * loopback UDP, packets crafted by hand: streams learnt from their RID header extension,
 * the consumer forwarding one spatial stream and switching only at that stream's keyframe
 * (with "layerschange" events), temporal layers dropped above the preferred one with the VP8
 * picture id kept continuous, setPreferredLayers validation, the layers in to_json / stats,
 * and RTCP from the receiver: PLI, FIR, NACK (retransmission of the forwarded copy),
 * receiver reports and SR report blocks (score, round trip). For SVC: upper
 * spatial layers dropped after a preference change and the marker bit moved to the end of
 * the highest forwarded layer. Also the send-side bandwidth estimate capping layers, a
 * stream that stops being left for a lower one, 7-bit VP8 picture ids, H264 simulcast, and
 * RTCP the router cannot use. Producer-side paths: test_producer_streams.c; single-stream
 * paths: test_plain_transport.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/unit/router_fixture.h"
#include "tests/unit/udp_fixture.h"
#include "common/clock.h"
#include "common/log.h"
#include "node/plain_transport.h"
#include "node/router.h"
#include "node/rtp/rtcp.h"

typedef struct {
  uv_loop_t loop;
  mf_bufpool_t *pool;
  mf_dtls_cert_t *cert;
  mf_rtc_server_t *server;
  mf_router_t *router;
  int layerschange;
  int last_spatial, last_temporal; /* of the last layerschange, -1: {} (no layer) */
  int score_events, last_score;
} fx_t;

static void on_event(void *ud, const char *event, const char *target, json_t *data) {
  fx_t *f = ud;
  (void)target;
  if (strcmp(event, "layerschange") == 0) {
    f->layerschange++;
    json_t *s = json_object_get(data, "spatialLayer");
    f->last_spatial = s ? (int)json_integer_value(s) : -1;
    f->last_temporal = s ? (int)json_integer_value(json_object_get(data, "temporalLayer")) : -1;
  } else if (strcmp(event, "score") == 0) {
    f->score_events++;
    f->last_score = (int)json_integer_value(json_object_get(data, "score"));
  }
  json_decref(data);
}

static int setup(void **state) {
  static fx_t f;
  memset(&f, 0, sizeof f);
  if (mf_test_router_open(&f.loop, 256, &f.pool, &f.cert, &f.server, &f.router, on_event, &f))
    return -1;
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  if (mf_test_router_close(&f->loop, f->pool, f->cert, f->server, f->router)) return -1;
  return 0;
}

/* ------------------------------------------------------------ sockets and the chain */


/* Reads what fd holds now; counts RTCP PLIs (a compound may hold one after an SR). */
static int count_plis(int fd, uint32_t media_ssrc) {
  uint8_t b[1500];
  int plis = 0;
  for (;;) {
    ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
    if (n <= 0) break;
    if (!mf_rtp_is_rtcp(b, (size_t)n)) continue;
    mf_rtcp_iter_t it;
    mf_rtcp_header_t h;
    mf_rtcp_iter_init(&it, b, (size_t)n);
    while (mf_rtcp_iter_next(&it, &h) == MF_OK) {
      mf_rtcp_pli_t pli;
      if (h.type == MF_RTCP_PSFB && mf_rtcp_parse_pli(&h, &pli) == MF_OK &&
          pli.media_ssrc == media_ssrc)
        plis++;
    }
  }
  return plis;
}

static mf_router_transport_t *make_plain(fx_t *f, const char *options) {
  json_t *j = json_loads(options, 0, NULL);
  assert_non_null(j);
  mf_plain_options_t o;
  char err[160] = "";
  assert_int_equal(mf_plain_options_parse(j, &o, err, sizeof err), MF_OK);
  json_decref(j);
  mf_router_transport_t *t = NULL;
  assert_int_equal(mf_router_create_plain_transport(f->router, &o, err, sizeof err, &t), MF_OK);
  return t;
}

static mf_plain_transport_t *plain_of(mf_router_transport_t *t) {
  return mf_plain_transport_of(mf_router_transport_webrtc(t));
}

typedef struct {
  int sender, receiver;
  uint16_t send_port, recv_port;
  mf_router_transport_t *in, *out;
  mf_producer_t *producer;
  mf_consumer_t *consumer;
  uint32_t consumer_ssrc;
} chain_t;

/* in: comedia plain transport with a producer of `params`; out: plain transport connected
 * to the receiver socket, with a consumer of it. */
static void make_chain(fx_t *f, chain_t *c, const char *params) {
  memset(c, 0, sizeof *c);
  c->sender = mf_test_udp_open(&c->send_port);
  c->receiver = mf_test_udp_open(&c->recv_port);
  c->in = make_plain(f, "{\"comedia\":true}");
  c->out = make_plain(f, "{}");
  char text[128], err[256] = "";
  snprintf(text, sizeof text, "{\"ip\":\"127.0.0.1\",\"port\":%u}", c->recv_port);
  json_t *j = json_loads(text, 0, NULL);
  assert_int_equal(mf_plain_transport_connect_json(plain_of(c->out), j, err, sizeof err), MF_OK);
  json_decref(j);
  j = json_loads(params, 0, NULL);
  assert_non_null(j);
  static mf_rtp_parameters_t p;
  mf_err_t e = mf_rtp_parameters_from_json(j, "rtpParameters", &p, err, sizeof err);
  if (e) print_error("params: %s\n", err);
  assert_int_equal(e, MF_OK);
  json_decref(j);
  e = mf_router_produce(c->in, MF_MEDIA_KIND_VIDEO, &p, false, err, sizeof err, &c->producer);
  if (e) print_error("produce: %s\n", err);
  assert_int_equal(e, MF_OK);
  e = mf_router_consume(c->out, mf_producer_id(c->producer), mf_router_rtp_capabilities(f->router),
                        false, err, sizeof err, &c->consumer);
  if (e) print_error("consume: %s\n", err);
  assert_int_equal(e, MF_OK);
  mf_rtp_parameters_t *cp = mf_consumer_rtp_parameters_copy(c->consumer);
  assert_non_null(cp);
  c->consumer_ssrc = cp->encodings[0].ssrc;
  free(cp);
}

static void close_chain(chain_t *c) {
  mf_router_transport_close(c->in);
  mf_router_transport_close(c->out);
  close(c->sender);
  close(c->receiver);
}

/* ------------------------------------------------------------ packets */

static void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* RTP header (marker set: one packet per frame), with a one-byte-header extension holding
 * the two-character rid (id 2) when rid is given, then the payload. */
static size_t build_rtp(uint8_t *b, uint8_t pt, uint16_t seq, uint32_t ts, uint32_t ssrc,
                        const char *rid, bool marker, const uint8_t *payload, size_t plen) {
  b[0] = rid ? 0x90 : 0x80;
  b[1] = (uint8_t)((marker ? 0x80 : 0) | pt);
  b[2] = (uint8_t)(seq >> 8);
  b[3] = (uint8_t)seq;
  wr32(b + 4, ts);
  wr32(b + 8, ssrc);
  size_t n = 12;
  if (rid) {
    static const uint8_t ext[] = {0xbe, 0xde, 0x00, 0x01};
    memcpy(b + n, ext, sizeof ext);
    b[n + 4] = (2 << 4) | 1; /* id 2, 2 bytes */
    b[n + 5] = (uint8_t)rid[0];
    b[n + 6] = (uint8_t)rid[1];
    b[n + 7] = 0;
    n += 8;
  }
  memcpy(b + n, payload, plen);
  return n + plen;
}

/* RFC 7741 descriptor with a 15-bit picture id, TL0PICIDX and TID, then a VP8 payload
 * header (keyframe: P=0 and the start code) and a last byte `tag` naming the stream. */
static size_t vp8_payload(uint8_t *p, bool key, uint16_t pid, uint8_t tl0, uint8_t tid, bool sync,
                          uint8_t tag) {
  size_t n = 0;
  p[n++] = 0x90; /* X, S, PID 0 */
  p[n++] = 0xe0; /* I, L, T */
  p[n++] = (uint8_t)(0x80 | ((pid >> 8) & 0x7f));
  p[n++] = (uint8_t)pid;
  p[n++] = tl0;
  p[n++] = (uint8_t)((tid << 6) | (sync ? 0x20 : 0));
  static const uint8_t keyhdr[] = {0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01};
  static const uint8_t delta[] = {0x51, 0x01, 0x00, 0x11, 0x22, 0x33};
  if (key) {
    memcpy(p + n, keyhdr, sizeof keyhdr);
    n += sizeof keyhdr;
  } else {
    memcpy(p + n, delta, sizeof delta);
    n += sizeof delta;
  }
  p[n++] = tag;
  return n;
}

typedef struct {
  uint32_t ssrc;
  const char *rid;
  uint16_t seq;
  uint16_t pid;
  uint8_t tl0;
} stream_t;

/* Sends one VP8 frame of stream s (tag = 0x10 * layer + frame count low bits). */
static void send_vp8(chain_t *c, stream_t *s, bool key, uint8_t tid, bool sync, uint8_t tag) {
  uint8_t pl[64], pkt[128];
  s->seq++;
  s->pid++;
  if (tid == 0) s->tl0++;
  size_t pn = vp8_payload(pl, key, s->pid, s->tl0, tid, sync, tag);
  size_t n = build_rtp(pkt, 96, s->seq, 3000u * s->seq, s->ssrc, s->rid, true, pl, pn);
  mf_test_udp_send(c->sender, mf_plain_transport_port(plain_of(c->in)), pkt, n);
}

static void send_sr(chain_t *c, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts) {
  mf_rtcp_sr_t sr = {.ssrc = ssrc, .ntp = ntp, .rtp_ts = rtp_ts, .packet_count = 1, .octet_count = 10};
  uint8_t b[64];
  size_t n = 0;
  assert_int_equal(mf_rtcp_write_sr(b, sizeof b, &sr, &n), MF_OK);
  mf_test_udp_send(c->sender, mf_plain_transport_port(plain_of(c->in)), b, n);
}

/* The forwarded packet's payload: its last byte is the tag, its descriptor the ids. */
static uint8_t tag_of(const mf_test_pkt_t *p) { return p->data[p->len - 1]; }

static const uint8_t *payload_of(const mf_test_pkt_t *p) {
  size_t off = 12 + 4u * (p->data[0] & 0x0f);
  if (p->data[0] & 0x10) off += 4 + 4u * ((size_t)(p->data[off + 2] << 8 | p->data[off + 3]));
  return p->data + off;
}

static uint16_t vp8_pid_of(const mf_test_pkt_t *p) {
  const uint8_t *d = payload_of(p);
  return (uint16_t)(((d[2] & 0x7f) << 8) | d[3]);
}

static uint16_t seq_of(const mf_test_pkt_t *p) { return (uint16_t)(p->data[2] << 8 | p->data[3]); }

/* ------------------------------------------------------------ simulcast */

static const char *const simulcast_vp8 =
    "{\"mid\":\"0\",\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
    "\"rtcpFeedback\":[{\"type\":\"nack\"},{\"type\":\"nack\",\"parameter\":\"pli\"}]}],"
    "\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"id\":1},"
    "{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\",\"id\":2}],"
    "\"encodings\":[{\"rid\":\"r0\",\"scalabilityMode\":\"L1T2\"},{\"rid\":\"r1\",\"scalabilityMode\":\"L1T2\"},"
    "{\"rid\":\"r2\",\"scalabilityMode\":\"L1T2\"}],\"rtcp\":{\"cname\":\"sim\"}}";

static void expect_tag(fx_t *f, chain_t *c, uint8_t tag, mf_test_pkt_t *got) {
  size_t n = mf_test_pump_rtp(&f->loop, c->receiver, got, 50);
  if (n == 0) print_error("expected a packet tagged %02x, got none\n", tag);
  assert_true(n > 12);
  assert_int_equal(rd32(got->data + 8), c->consumer_ssrc);
  assert_int_equal(tag_of(got), tag);
}

static void expect_nothing(fx_t *f, chain_t *c) {
  mf_test_pkt_t got;
  size_t n = mf_test_pump_rtp(&f->loop, c->receiver, &got, 4);
  if (n) print_error("unexpected packet tagged %02x\n", tag_of(&got));
  assert_int_equal(n, 0);
}

static void test_simulcast_switches_at_keyframes(void **state) {
  fx_t *f = *state;
  chain_t c;
  make_chain(f, &c, simulcast_vp8);
  mf_consumer_t *con = c.consumer;
  json_t *j = mf_consumer_to_json(con);
  assert_string_equal(json_string_value(json_object_get(j, "type")), "simulcast");
  /* default preference: the highest layers; nothing forwarded yet */
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "preferredLayers"), "spatialLayer")), 2);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "preferredLayers"), "temporalLayer")), 1);
  assert_true(json_is_null(json_object_get(j, "currentLayers")));
  json_decref(j);

  stream_t s0 = {.ssrc = 0x1000, .rid = "r0", .seq = 100}, s1 = {.ssrc = 0x2000, .rid = "r1", .seq = 200},
           s2 = {.ssrc = 0x3000, .rid = "r2", .seq = 300};
  mf_test_pkt_t got;
  /* r0's keyframe, its stream learnt from the rid: the only active layer, forwarded */
  send_vp8(&c, &s0, true, 0, false, 0x01);
  expect_tag(f, &c, 0x01, &got);
  assert_int_equal(f->layerschange, 1);
  assert_int_equal(f->last_spatial, 0);
  uint16_t last_pid = vp8_pid_of(&got);
  send_sr(&c, s0.ssrc, (uint64_t)1000 << 32, 3000u * s0.seq);

  /* r1 becomes active: its delta frame is not forwarded (no keyframe of r1 yet) and the
   * consumer asks the sender for one */
  send_vp8(&c, &s1, false, 0, false, 0x11);
  expect_nothing(f, &c);
  /* r0 keeps flowing meanwhile */
  send_vp8(&c, &s0, false, 0, false, 0x02);
  expect_tag(f, &c, 0x02, &got);
  assert_int_equal(vp8_pid_of(&got), (uint16_t)(last_pid + 1));
  last_pid = vp8_pid_of(&got);
  send_sr(&c, s1.ssrc, (uint64_t)1001 << 32, 3000u * s1.seq);
  /* r1's keyframe: switch up, one layerschange, and picture ids continue across streams */
  send_vp8(&c, &s1, true, 0, false, 0x12);
  expect_tag(f, &c, 0x12, &got);
  assert_int_equal(f->layerschange, 2);
  assert_int_equal(f->last_spatial, 1);
  assert_int_equal(vp8_pid_of(&got), (uint16_t)(last_pid + 1));
  last_pid = vp8_pid_of(&got);
  /* r0 is no longer what this consumer gets */
  send_vp8(&c, &s0, false, 0, false, 0x03);
  expect_nothing(f, &c);

  /* r2 straight with a keyframe (no SR for it: switched without a timestamp hint) */
  send_vp8(&c, &s2, true, 0, false, 0x21);
  expect_tag(f, &c, 0x21, &got);
  assert_int_equal(f->layerschange, 3);
  assert_int_equal(f->last_spatial, 2);
  assert_int_equal(vp8_pid_of(&got), (uint16_t)(last_pid + 1));
  /* its temporal layer 1 is within the preference */
  send_vp8(&c, &s2, false, 1, true, 0x22);
  expect_tag(f, &c, 0x22, &got);
  j = mf_consumer_layers_json(con, true);
  assert_int_equal(json_integer_value(json_object_get(j, "spatialLayer")), 2);
  assert_int_equal(json_integer_value(json_object_get(j, "temporalLayer")), 1);
  json_decref(j);

  /* setPreferredLayers: negative spatial refused; a negative temporal means the highest */
  char err[256] = "";
  assert_int_equal(mf_consumer_set_preferred_layers(con, -1, 0, err, sizeof err), MF_ERR_INVALID_ARG);
  assert_non_null(strstr(err, "spatialLayer"));
  assert_int_equal(mf_consumer_set_preferred_layers(con, 1, -1, err, sizeof err), MF_OK);
  j = mf_consumer_layers_json(con, false);
  assert_int_equal(json_integer_value(json_object_get(j, "spatialLayer")), 1);
  assert_int_equal(json_integer_value(json_object_get(j, "temporalLayer")), 1);
  json_decref(j);
  /* down to 0/0: r2 keeps flowing until r0's keyframe, which the consumer asks for */
  assert_int_equal(mf_consumer_set_preferred_layers(con, 0, 0, err, sizeof err), MF_OK);
  send_vp8(&c, &s2, false, 0, false, 0x23);
  expect_tag(f, &c, 0x23, &got);
  send_vp8(&c, &s0, true, 0, false, 0x04);
  expect_tag(f, &c, 0x04, &got);
  assert_int_equal(f->last_spatial, 0);
  assert_int_equal(f->last_temporal, 0);
  last_pid = vp8_pid_of(&got);
  uint16_t last_seq = seq_of(&got);
  /* temporal layer 1 of r0 is above the preference: dropped, and out of the sequence and
   * picture id numbering the receiver sees */
  send_vp8(&c, &s0, false, 1, true, 0x05);
  expect_nothing(f, &c);
  send_vp8(&c, &s0, false, 0, false, 0x06);
  expect_tag(f, &c, 0x06, &got);
  assert_int_equal(seq_of(&got), (uint16_t)(last_seq + 1));
  assert_int_equal(vp8_pid_of(&got), (uint16_t)(last_pid + 1));
  last_seq = seq_of(&got);

  json_t *st = mf_consumer_stats_json(con);
  json_t *o = json_array_get(st, 0);
  assert_int_equal(json_integer_value(json_object_get(o, "layerSwitches")), 4);
  assert_int_equal(json_integer_value(json_object_get(o, "temporalLayerDrops")), 1);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "currentLayers"), "spatialLayer")), 0);
  json_decref(st);

  /* the receiver's RTCP: a NACK for the last packet resends the consumer's copy of it */
  mf_rtcp_nack_item_t item = {.pid = last_seq, .blp = 0};
  uint8_t rb[256];
  size_t rn = 0;
  assert_int_equal(mf_rtcp_write_nack(rb, sizeof rb, 1, c.consumer_ssrc, &item, 1, &rn), MF_OK);
  mf_test_udp_send(c.receiver, mf_plain_transport_port(plain_of(c.out)), rb, rn);
  /* as RTX (RFC 4588): the consumer's rtx ssrc, the original sequence number first */
  mf_rtp_parameters_t *con_params = mf_consumer_rtp_parameters_copy(con);
  assert_non_null(con_params);
  const mf_rtp_encoding_parameters_t enc0 = con_params->encodings[0], *enc = &enc0;
  free(con_params);
  assert_true(enc->has_rtx);
  assert_true(mf_test_pump_rtp(&f->loop, c.receiver, &got, 50) > 14);
  assert_int_equal(rd32(got.data + 8), enc->rtx_ssrc);
  assert_int_equal(tag_of(&got), 0x06);
  const uint8_t *osn = payload_of(&got);
  assert_int_equal((uint16_t)(osn[0] << 8 | osn[1]), last_seq);
  /* a PLI from the receiver becomes a PLI to the sender of the current stream */
  (void)count_plis(c.sender, s0.ssrc);
  assert_int_equal(mf_rtcp_write_pli(rb, sizeof rb, 1, c.consumer_ssrc, &rn), MF_OK);
  mf_test_udp_send(c.receiver, mf_plain_transport_port(plain_of(c.out)), rb, rn);
  /* a receiver report with half the packets lost: score 5 of 10 */
  mf_rtcp_rr_t rr = {.ssrc = 1, .report_count = 1,
                     .reports = {{.ssrc = c.consumer_ssrc, .fraction_lost = 128}}};
  size_t rrn = 0;
  assert_int_equal(mf_rtcp_write_rr(rb, sizeof rb, &rr, &rrn), MF_OK);
  mf_test_udp_send(c.receiver, mf_plain_transport_port(plain_of(c.out)), rb, rrn);
  for (int i = 0; i < 50 && f->score_events == 0; i++) uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(f->last_score, 5);
  /* then an SR whose report block shows no loss (score back to 10, with a round trip from
   * its LSR), and a FIR naming the consumer */
  uint64_t ntp = mf_clock_wall_ntp();
  mf_rtcp_sr_t rsr = {.ssrc = 1, .ntp = ntp, .report_count = 1,
                      .reports = {{.ssrc = c.consumer_ssrc, .fraction_lost = 0,
                                   .lsr = (uint32_t)(ntp >> 16), .dlsr = 0}}};
  mf_rtcp_fir_entry_t fe = {.ssrc = c.consumer_ssrc, .seq_nr = 1};
  mf_rtcp_compound_t cp;
  mf_rtcp_compound_init(&cp, rb, sizeof rb);
  mf_rtcp_compound_add_sr(&cp, &rsr);
  mf_rtcp_compound_add_fir(&cp, 1, &fe, 1);
  assert_int_equal(cp.err, MF_OK);
  mf_test_udp_send(c.receiver, mf_plain_transport_port(plain_of(c.out)), rb, cp.len);
  for (int i = 0; i < 50 && f->score_events < 2; i++) uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(f->last_score, 10);
  st = mf_consumer_stats_json(con);
  o = json_array_get(st, 0);
  assert_int_equal(json_integer_value(json_object_get(o, "nackCount")), 1);
  assert_int_equal(json_integer_value(json_object_get(o, "pliCount")), 1);
  assert_int_equal(json_integer_value(json_object_get(o, "fractionLost")), 0);
  assert_int_equal(json_integer_value(json_object_get(o, "firCount")), 1);
  json_int_t rtt = json_integer_value(json_object_get(o, "roundTripTime"));
  assert_true(rtt >= 0 && rtt < 10000);
  assert_true(json_integer_value(json_object_get(o, "packetsRetransmitted")) >= 1);
  json_decref(st);

  /* RTCP the router cannot use: packets of each handled type cut to a bare header, and
   * well-formed ones about ssrcs nobody here sends. Ignored: the counters stay. */
  {
    uint8_t junk[512];
    size_t jn = 0;
    static const uint8_t bare[][2] = {{0x80, MF_RTCP_SR}, {0x80, MF_RTCP_RR}, {0x81, MF_RTCP_RTPFB},
                                      {0x81, MF_RTCP_PSFB}, {0x84, MF_RTCP_PSFB}, {0x8f, MF_RTCP_RTPFB}};
    for (size_t k = 0; k < sizeof bare / sizeof bare[0]; k++) {
      junk[jn++] = bare[k][0];
      junk[jn++] = bare[k][1];
      junk[jn++] = 0;
      junk[jn++] = 0; /* length 0: a 4-byte packet */
    }
    mf_rtcp_compound_t jc;
    mf_rtcp_compound_init(&jc, junk + jn, sizeof junk - jn);
    mf_rtcp_sr_t usr = {.ssrc = 1, .report_count = 1, .reports = {{.ssrc = 0xdead}}};
    mf_rtcp_rr_t urr = {.ssrc = 1, .report_count = 1, .reports = {{.ssrc = 0xdead}}};
    mf_rtcp_nack_item_t ui = {.pid = 1};
    mf_rtcp_fir_entry_t uf = {.ssrc = 0xdead};
    mf_rtcp_compound_add_sr(&jc, &usr);
    mf_rtcp_compound_add_rr(&jc, &urr);
    mf_rtcp_compound_add_nack(&jc, 1, 0xdead, &ui, 1);
    mf_rtcp_compound_add_pli(&jc, 1, 0xdead);
    mf_rtcp_compound_add_fir(&jc, 1, &uf, 1);
    assert_int_equal(jc.err, MF_OK);
    mf_test_udp_send(c.receiver, mf_plain_transport_port(plain_of(c.out)), junk, jn + jc.len);
    for (int i = 0; i < 3; i++) uv_run(&f->loop, UV_RUN_ONCE);
    st = mf_consumer_stats_json(con);
    o = json_array_get(st, 0);
    assert_int_equal(json_integer_value(json_object_get(o, "nackCount")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "pliCount")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "firCount")), 1);
    json_decref(st);
  }

  /* paused: nothing forwarded; resumed: flowing again from a keyframe */
  mf_consumer_pause(con);
  send_vp8(&c, &s0, true, 0, false, 0x07);
  expect_nothing(f, &c);
  mf_consumer_resume(con);
  send_vp8(&c, &s0, true, 0, false, 0x08);
  expect_tag(f, &c, 0x08, &got);

  /* closing the producer takes the simulcast consumer with it */
  char cid[64];
  snprintf(cid, sizeof cid, "%s", mf_consumer_id(con));
  mf_producer_close(c.producer);
  assert_null(mf_router_find_consumer(f->router, cid));
  close_chain(&c);
}

/* A simple (single-stream) consumer has no layers to choose. */
static void test_simple_consumer_has_no_layers(void **state) {
  fx_t *f = *state;
  chain_t c;
  make_chain(f, &c,
             "{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000}],"
             "\"encodings\":[{\"ssrc\":1111}]}");
  char err[256] = "";
  assert_int_equal(mf_consumer_set_preferred_layers(c.consumer, 0, 0, err, sizeof err),
                   MF_ERR_UNSUPPORTED);
  assert_non_null(strstr(err, "neither simulcast nor SVC"));
  json_t *j = mf_consumer_layers_json(c.consumer, true);
  assert_true(json_is_null(j));
  json_decref(j);
  /* no pipe hub on this router: no piped producers, no pipes out */
  mf_rtp_parameters_t *cp = mf_consumer_rtp_parameters_copy(c.consumer);
  assert_non_null(cp);
  static mf_rtp_parameters_t params;
  params = *cp;
  free(cp);
  mf_producer_t *piped = NULL;
  assert_int_equal(mf_router_pipe_produce(f->router, mf_producer_id(c.producer), MF_MEDIA_KIND_VIDEO,
                                          &params, false, 7, err, sizeof err, &piped), MF_ERR_STATE);
  assert_non_null(strstr(err, "no pipe hub"));
  assert_int_equal(mf_producer_add_pipe(c.producer, 1, 7), MF_ERR_STATE);
  assert_false(mf_producer_remove_pipe(c.producer, 7));
  assert_int_equal(mf_producer_pipe_count(c.producer), 0);
  assert_false(mf_producer_is_piped(c.producer));
  /* a plain transport is not a pipe: no pipe_transport_produce on it */
  assert_int_equal(mf_router_pipe_transport_produce(c.in, mf_producer_id(c.producer), MF_MEDIA_KIND_VIDEO,
                                                    &params, false, err, sizeof err, &piped), MF_ERR_STATE);
  /* audio levels are for audio producers */
  assert_int_equal(mf_producer_observe_audio_level(c.producer, true), MF_ERR_UNSUPPORTED);
  /* router ids: 1..36 bytes */
  mf_router_t *r2 = NULL;
  char long_id[64];
  memset(long_id, 'a', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  assert_int_equal(mf_router_create(f->server, "", NULL, 0, NULL, NULL, err, sizeof err, &r2), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_router_create(f->server, long_id, NULL, 0, NULL, NULL, err, sizeof err, &r2),
                   MF_ERR_INVALID_ARG);
  assert_null(r2);
  close_chain(&c);
}

/* ------------------------------------------------------------ SVC */

static const char *const svc_vp9 =
    "{\"codecs\":[{\"mimeType\":\"video/VP9\",\"payloadType\":98,\"clockRate\":90000,"
    "\"parameters\":{\"profile-id\":0},"
    "\"rtcpFeedback\":[{\"type\":\"nack\"},{\"type\":\"nack\",\"parameter\":\"pli\"}]}],"
    "\"encodings\":[{\"ssrc\":4444,\"scalabilityMode\":\"L2T2\"}]}";

/* RFC 9628 non-flexible descriptor: I (15-bit id), L, B/E per the arguments, P unless a
 * keyframe; layer indices TID|U|SID|D and TL0PICIDX; then one data byte and the tag. */
static size_t vp9_payload(uint8_t *p, bool key, bool begin, bool end, uint16_t pid, uint8_t tid,
                          bool up, uint8_t sid, uint8_t tl0, uint8_t tag) {
  size_t n = 0;
  p[n++] = (uint8_t)(0x80 | (key ? 0 : 0x40) | 0x20 | (begin ? 0x08 : 0) | (end ? 0x04 : 0));
  p[n++] = (uint8_t)(0x80 | ((pid >> 8) & 0x7f));
  p[n++] = (uint8_t)pid;
  p[n++] = (uint8_t)((tid << 5) | (up ? 0x10 : 0) | (sid << 1) | (sid > 0 ? 1 : 0));
  p[n++] = tl0;
  p[n++] = 0x82;
  p[n++] = tag;
  return n;
}

typedef struct {
  uint16_t seq, pid;
  uint8_t tl0;
} svc_t;

/* One picture: spatial layers 0..1 of temporal layer tid, one packet each (B and E set). */
static void send_picture(chain_t *c, svc_t *s, bool key, uint8_t tid, uint8_t tag) {
  s->pid++;
  if (tid == 0) s->tl0++;
  for (uint8_t sid = 0; sid < 2; sid++) {
    uint8_t pl[32], pkt[96];
    size_t pn = vp9_payload(pl, key && sid == 0, true, true, s->pid, tid, tid > 0, sid, s->tl0,
                            (uint8_t)(tag + sid));
    s->seq++;
    size_t n = build_rtp(pkt, 98, s->seq, 3000u * s->pid, 4444, NULL, sid == 1, pl, pn);
    mf_test_udp_send(c->sender, mf_plain_transport_port(plain_of(c->in)), pkt, n);
  }
}

static void test_svc_drops_upper_layers(void **state) {
  fx_t *f = *state;
  chain_t c;
  make_chain(f, &c, svc_vp9);
  json_t *j = mf_consumer_to_json(c.consumer);
  assert_string_equal(json_string_value(json_object_get(j, "type")), "svc");
  json_decref(j);
  svc_t s = {.seq = 10};
  mf_test_pkt_t got;
  /* a keyframe while only spatial layer 0 is active: that layer alone, ending the picture
   * (marker); layer 1 seen from then on but not decodable before its keyframe */
  send_picture(&c, &s, true, 0, 0x10);
  expect_tag(f, &c, 0x10, &got);
  assert_int_equal(got.data[1] & 0x80, 0x80);
  assert_int_equal(f->last_spatial, 0);
  send_picture(&c, &s, false, 1, 0x20);
  expect_tag(f, &c, 0x20, &got);
  assert_int_equal(got.data[1] & 0x80, 0x80);
  expect_nothing(f, &c);
  /* the next keyframe brings layer 1: both forwarded, the marker on the top one */
  send_picture(&c, &s, true, 0, 0x30);
  expect_tag(f, &c, 0x30, &got);
  assert_int_equal(got.data[1] & 0x80, 0);
  expect_tag(f, &c, 0x31, &got);
  assert_int_equal(got.data[1] & 0x80, 0x80);
  assert_int_equal(f->last_spatial, 1);
  /* temporal layer 1 with the U bit: within the default (highest) preference */
  send_picture(&c, &s, false, 1, 0x60);
  expect_tag(f, &c, 0x60, &got);
  expect_tag(f, &c, 0x61, &got);

  char err[256] = "";
  assert_int_equal(mf_consumer_set_preferred_layers(c.consumer, 0, 0, err, sizeof err), MF_OK);
  /* the next picture start lowers the layers: spatial layer 1 dropped, and spatial layer 0
   * now ends the picture, so it carries the marker */
  send_picture(&c, &s, false, 0, 0x70);
  expect_tag(f, &c, 0x70, &got);
  assert_int_equal(got.data[1] & 0x80, 0x80);
  uint16_t last_seq = seq_of(&got);
  expect_nothing(f, &c);
  assert_int_equal(f->last_spatial, 0);
  assert_int_equal(f->last_temporal, 0);
  /* temporal layer 1 is above the preference now */
  send_picture(&c, &s, false, 1, 0x80);
  expect_nothing(f, &c);
  send_picture(&c, &s, false, 0, 0x90);
  expect_tag(f, &c, 0x90, &got);
  assert_int_equal(seq_of(&got), (uint16_t)(last_seq + 1)); /* no gap for what was dropped */
  expect_nothing(f, &c);

  json_t *st = mf_consumer_stats_json(c.consumer);
  assert_true(json_integer_value(json_object_get(json_array_get(st, 0), "temporalLayerDrops")) >= 3);
  json_decref(st);
  close_chain(&c);
}

/* ------------------------------------------------------------ bandwidth allocation */

/* One VP8 frame of `size` payload bytes on stream s. */
static void send_big(chain_t *c, stream_t *s, bool key, size_t size, uint8_t tag) {
  uint8_t pl[1400], pkt[1500];
  s->seq++;
  s->pid++;
  s->tl0++;
  size_t pn = vp8_payload(pl, key, s->pid, s->tl0, 0, false, tag);
  memset(pl + pn - 1, 0x5a, size - pn);
  pl[size - 1] = tag;
  size_t n = build_rtp(pkt, 96, s->seq, 3000u * s->seq, s->ssrc, s->rid, true, pl, size);
  mf_test_udp_send(c->sender, mf_plain_transport_port(plain_of(c->in)), pkt, n);
}

/* The subscriber negotiated transport-cc, so its transport has a send-side estimate (1 Mbit/s
 * before any feedback) that the allocator shares among layered consumers once a second: a
 * top stream of about 2 Mbit/s does not fit, so the consumer is capped below it and moves
 * down at the next keyframe of a lower stream. TWCC feedback (one malformed, one valid) is
 * taken without harm. */
static void test_bandwidth_caps_layers(void **state) {
  fx_t *f = *state;
  chain_t c;
  make_chain(f, &c, simulcast_vp8);
  bool twcc = false;
  mf_rtp_parameters_t *cp = mf_consumer_rtp_parameters_copy(c.consumer);
  assert_non_null(cp);
  for (size_t i = 0; i < cp->header_extension_count; i++)
    twcc |= strstr(cp->header_extensions[i].uri, "transport-wide-cc") != NULL;
  free(cp);
  assert_true(twcc);
  stream_t s0 = {.ssrc = 0x1000, .rid = "r0"}, s1 = {.ssrc = 0x2000, .rid = "r1"},
           s2 = {.ssrc = 0x3000, .rid = "r2"};
  send_big(&c, &s0, true, 100, 0x01);
  send_big(&c, &s1, true, 300, 0x11);
  send_big(&c, &s2, true, 1200, 0x21);
  uint8_t fb[64];
  static const uint8_t bare_twcc[] = {0x8f, MF_RTCP_RTPFB, 0, 0};
  mf_test_udp_send(c.receiver, mf_plain_transport_port(plain_of(c.out)), bare_twcc, sizeof bare_twcc);
  mf_rtcp_twcc_t hdr = {.sender_ssrc = 1, .media_ssrc = c.consumer_ssrc, .base_seq = 1, .fb_pkt_count = 0};
  mf_rtcp_twcc_packet_t tp[3] = {{1, MF_TWCC_SMALL_DELTA, 4}, {2, MF_TWCC_SMALL_DELTA, 4}, {3, MF_TWCC_NOT_RECEIVED, 0}};
  size_t fn = 0;
  assert_int_equal(mf_rtcp_write_twcc(fb, sizeof fb, &hdr, tp, 3, &fn), MF_OK);
  mf_test_udp_send(c.receiver, mf_plain_transport_port(plain_of(c.out)), fb, fn);
  /* every 20 ms of loop time: 4 x 1200 bytes of r2 (about 2 Mbit/s), a little of r0 and r1
   * with keyframes now and then; until the consumer has moved down (at most 6 s) */
  int lowest = 2;
  uv_update_time(&f->loop);
  uint64_t start = uv_now(&f->loop), last = 0;
  for (unsigned batch = 0; lowest == 2 && uv_now(&f->loop) - start < 6000;) {
    if (batch == 0 || uv_now(&f->loop) - last >= 20) {
      last = uv_now(&f->loop);
      for (int k = 0; k < 4; k++) send_big(&c, &s2, false, 1200, 0x22);
      send_big(&c, &s1, batch % 10 == 0, 300, 0x12);
      send_big(&c, &s0, batch % 10 == 5, 100, 0x02);
      batch++;
    }
    uv_run(&f->loop, UV_RUN_ONCE);
    char drain[1500];
    while (recv(c.receiver, drain, sizeof drain, MSG_DONTWAIT) > 0) {
    }
    if (f->last_spatial >= 0 && f->last_spatial < lowest) lowest = f->last_spatial;
  }
  assert_true(lowest < 2);
  json_t *j = mf_consumer_layers_json(c.consumer, true);
  assert_true(json_integer_value(json_object_get(j, "spatialLayer")) < 2);
  json_decref(j);
  close_chain(&c);
}

/* ------------------------------------------------------------ simulcast variants */

/* VP8 frame with the shortest descriptor that has a picture id: 7-bit id, no TL0PICIDX, no
 * TID. */
static void send_vp8_short(chain_t *c, stream_t *s, bool key, uint8_t tag) {
  uint8_t pl[32], pkt[96];
  size_t n = 0;
  s->seq++;
  s->pid = (uint16_t)((s->pid + 1) & 0x7f);
  pl[n++] = 0x90;
  pl[n++] = 0x80;
  pl[n++] = (uint8_t)s->pid;
  static const uint8_t keyhdr[] = {0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01};
  static const uint8_t delta[] = {0x51, 0x01, 0x00, 0x11};
  memcpy(pl + n, key ? keyhdr : delta, key ? sizeof keyhdr : sizeof delta);
  n += key ? sizeof keyhdr : sizeof delta;
  pl[n++] = tag;
  size_t len = build_rtp(pkt, 96, s->seq, 3000u * s->seq, s->ssrc, s->rid, true, pl, n);
  mf_test_udp_send(c->sender, mf_plain_transport_port(plain_of(c->in)), pkt, len);
}

/* 7-bit picture ids stay continuous (mod 128) across a switch, and a stream that stops
 * (here the upper one, as Chrome does under load) is left for the lower one at its next
 * keyframe once it counts as inactive. */
static void test_simulcast_short_ids_and_inactive_layer(void **state) {
  fx_t *f = *state;
  chain_t c;
  make_chain(f, &c, simulcast_vp8);
  stream_t s0 = {.ssrc = 0x1000, .rid = "r0", .pid = 120}, s1 = {.ssrc = 0x2000, .rid = "r1", .pid = 5};
  mf_test_pkt_t got;
  send_vp8_short(&c, &s0, true, 0x01);
  expect_tag(f, &c, 0x01, &got);
  uint8_t last = payload_of(&got)[2] & 0x7f;
  send_vp8_short(&c, &s0, false, 0x02);
  expect_tag(f, &c, 0x02, &got);
  assert_int_equal(payload_of(&got)[2] & 0x7f, (last + 1) & 0x7f);
  last = payload_of(&got)[2] & 0x7f;
  send_vp8_short(&c, &s1, true, 0x11);
  expect_tag(f, &c, 0x11, &got);
  assert_int_equal(f->last_spatial, 1);
  assert_int_equal(payload_of(&got)[2] & 0x7f, (last + 1) & 0x7f);
  /* r1 stops; r0 goes on (a keyframe every 10th frame) until the consumer is back on r0 */
  uv_update_time(&f->loop);
  uint64_t start = uv_now(&f->loop), last_sent = 0;
  unsigned n = 0;
  while (f->last_spatial != 0 && uv_now(&f->loop) - start < 6000) {
    if (uv_now(&f->loop) - last_sent >= 20) {
      last_sent = uv_now(&f->loop);
      send_vp8_short(&c, &s0, ++n % 10 == 0, 0x03);
    }
    uv_run(&f->loop, UV_RUN_ONCE);
  }
  assert_int_equal(f->last_spatial, 0);
  close_chain(&c);
}

static const char *const simulcast_h264 =
    "{\"mid\":\"0\",\"codecs\":[{\"mimeType\":\"video/H264\",\"payloadType\":102,\"clockRate\":90000,"
    "\"parameters\":{\"packetization-mode\":1,\"profile-level-id\":\"42e01f\",\"level-asymmetry-allowed\":1},"
    "\"rtcpFeedback\":[{\"type\":\"nack\",\"parameter\":\"pli\"}]}],"
    "\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\",\"id\":2}],"
    "\"encodings\":[{\"rid\":\"r0\"},{\"rid\":\"r1\"}]}";

static void send_h264(chain_t *c, stream_t *s, bool idr, uint8_t tag) {
  uint8_t pl[8] = {idr ? 0x65 : 0x41, 0x88, 0x80, tag};
  uint8_t pkt[64];
  s->seq++;
  size_t n = build_rtp(pkt, 102, s->seq, 3000u * s->seq, s->ssrc, s->rid, true, pl, 4);
  mf_test_udp_send(c->sender, mf_plain_transport_port(plain_of(c->in)), pkt, n);
}

/* Simulcast of a codec without VP8's descriptor: every packet starts a frame, switches at
 * IDR pictures, no picture id rewriting. */
static void test_simulcast_h264(void **state) {
  fx_t *f = *state;
  chain_t c;
  make_chain(f, &c, simulcast_h264);
  stream_t s0 = {.ssrc = 0x1000, .rid = "r0"}, s1 = {.ssrc = 0x2000, .rid = "r1"};
  mf_test_pkt_t got;
  send_h264(&c, &s0, true, 0x01);
  expect_tag(f, &c, 0x01, &got);
  send_h264(&c, &s1, false, 0x11); /* r1 active, but no IDR yet */
  expect_nothing(f, &c);
  send_h264(&c, &s0, false, 0x02);
  expect_tag(f, &c, 0x02, &got);
  send_h264(&c, &s1, true, 0x12);
  expect_tag(f, &c, 0x12, &got);
  assert_int_equal(f->last_spatial, 1);
  send_h264(&c, &s0, true, 0x03); /* not the current stream any more */
  expect_nothing(f, &c);
  close_chain(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_simulcast_switches_at_keyframes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_simple_consumer_has_no_layers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_svc_drops_upper_layers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bandwidth_caps_layers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_simulcast_short_ids_and_inactive_layer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_simulcast_h264, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
