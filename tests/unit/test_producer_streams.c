/* Producer-side media paths on plain transports over loopback UDP, packets crafted by hand:
 * a producer announced by MID only, its stream and then its RTX stream learnt from the MID
 * extension, a gap NACKed and repaired by RTX, a padding probe ignored, keyframe requests as
 * FIR for a codec without "nack pli"; an RTX ssrc learnt from the RTX payload type when no
 * MID/RID extension is there; and a producer piped between two workers of one node through a
 * pipe hub (its copy's consumer forwards it, the copy's keyframe requests become events,
 * pipe bookkeeping errors); audio levels measured only while observed and not paused.
 * Consumer-side (simulcast/SVC) paths: test_layered_consumer.c. */
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
#include "common/log.h"
#include "node/pipe_hub.h"
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
  int pipe_keyframe_requests;
} fx_t;

static void on_event(void *ud, const char *event, const char *target, json_t *data) {
  fx_t *f = ud;
  (void)target;
  if (strcmp(event, "layerschange") == 0) {
    f->layerschange++;
    json_t *s = json_object_get(data, "spatialLayer");
    f->last_spatial = s ? (int)json_integer_value(s) : -1;
    f->last_temporal = s ? (int)json_integer_value(json_object_get(data, "temporalLayer")) : -1;
  } else if (strcmp(event, "pipekeyframerequest") == 0) {
    f->pipe_keyframe_requests++;
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

/* in: comedia plain transport with a `kind` producer of `params`; out: plain transport connected
 * to the receiver socket, with a consumer of it. */
static void make_chain(fx_t *f, chain_t *c, const char *params, mf_media_kind_t kind) {
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
  e = mf_router_produce(c->in, kind, &p, false, err, sizeof err, &c->producer);
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

static uint8_t tag_of(const mf_test_pkt_t *p) { return p->data[p->len - 1]; }

static uint16_t seq_of(const mf_test_pkt_t *p) { return (uint16_t)(p->data[2] << 8 | p->data[3]); }

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

/* ------------------------------------------------------------ producer streams */

/* RTP with one one-byte-header extension element (id, value) when id != 0. */
static size_t build_rtp_ext(uint8_t *b, uint8_t pt, uint16_t seq, uint32_t ssrc, uint8_t id,
                            const char *value, const uint8_t *payload, size_t plen) {
  b[0] = id ? 0x90 : 0x80;
  b[1] = (uint8_t)(0x80 | pt);
  b[2] = (uint8_t)(seq >> 8);
  b[3] = (uint8_t)seq;
  wr32(b + 4, 3000u * seq);
  wr32(b + 8, ssrc);
  size_t n = 12;
  if (id) {
    size_t vl = strlen(value), words = (1 + vl + 3) / 4;
    b[n++] = 0xbe;
    b[n++] = 0xde;
    b[n++] = 0;
    b[n++] = (uint8_t)words;
    memset(b + n, 0, 4 * words);
    b[n] = (uint8_t)((id << 4) | (vl - 1));
    memcpy(b + n + 1, value, vl);
    n += 4 * words;
  }
  if (plen) memcpy(b + n, payload, plen);
  return n + plen;
}

/* Sends a VP8 frame (seq, tag), or with rtx_ssrc its RFC 4588 retransmission (pt 97, the
 * original sequence number first). */
static void send_frame(chain_t *c, uint32_t ssrc, uint16_t seq, bool key, uint8_t tag, uint8_t ext_id,
                       const char *ext, uint32_t rtx_ssrc, uint16_t rtx_seq) {
  uint8_t pl[64], pkt[160];
  size_t pn = 0;
  if (rtx_ssrc) {
    pl[0] = (uint8_t)(seq >> 8);
    pl[1] = (uint8_t)seq;
    pn = 2;
  }
  pn += vp8_payload(pl + pn, key, seq, (uint8_t)seq, 0, false, tag);
  size_t n = rtx_ssrc ? build_rtp_ext(pkt, 97, rtx_seq, rtx_ssrc, ext_id, ext, pl, pn)
                      : build_rtp_ext(pkt, 96, seq, ssrc, ext_id, ext, pl, pn);
  mf_test_udp_send(c->sender, mf_plain_transport_port(plain_of(c->in)), pkt, n);
}

/* Runs the loop until the sender gets RTCP of `type`/`fmt` about media_ssrc (NACKs must
 * name `nack_seq`), at most `rounds` iterations. */
static bool pump_feedback(fx_t *f, chain_t *c, uint8_t type, uint8_t fmt, uint32_t media_ssrc,
                          uint16_t nack_seq, int rounds) {
  uint8_t b[1500];
  for (int i = 0; i < rounds; i++) {
    uv_run(&f->loop, UV_RUN_ONCE);
    for (;;) {
      ssize_t n = recv(c->sender, b, sizeof b, MSG_DONTWAIT);
      if (n <= 0) break;
      if (!mf_rtp_is_rtcp(b, (size_t)n)) continue;
      mf_rtcp_iter_t it;
      mf_rtcp_header_t h;
      mf_rtcp_iter_init(&it, b, (size_t)n);
      while (mf_rtcp_iter_next(&it, &h) == MF_OK) {
        if (h.type != type || h.count != fmt) continue;
        mf_rtcp_nack_t nack;
        mf_rtcp_fir_t fir;
        if (type == MF_RTCP_RTPFB && mf_rtcp_parse_nack(&h, &nack) == MF_OK &&
            nack.media_ssrc == media_ssrc) {
          uint16_t seqs[17];
          for (size_t k = 0; k < nack.count; k++) {
            size_t m = mf_rtcp_nack_expand(mf_rtcp_nack_get(&nack, k), seqs);
            for (size_t q = 0; q < m; q++)
              if (seqs[q] == nack_seq) return true;
          }
        }
        if (type == MF_RTCP_PSFB && mf_rtcp_parse_fir(&h, &fir) == MF_OK)
          for (size_t k = 0; k < fir.count; k++)
            if (mf_rtcp_fir_get(&fir, k).ssrc == media_ssrc) return true;
      }
    }
  }
  return false;
}

/* A producer announced by MID only (no ssrc, no rid), whose codec asks for NACK and FIR but
 * not PLI: its stream and then its RTX stream are learnt from the MID extension; a gap is
 * NACKed, the RTX packet repairs it for the consumer; keyframe requests go out as FIR. */
static void test_producer_learns_by_mid_and_repairs(void **state) {
  fx_t *f = *state;
  chain_t c;
  make_chain(f, &c,
             "{\"mid\":\"v\",\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
             "\"rtcpFeedback\":[{\"type\":\"nack\"},{\"type\":\"ccm\",\"parameter\":\"fir\"}]},"
             "{\"mimeType\":\"video/rtx\",\"payloadType\":97,\"clockRate\":90000,\"parameters\":{\"apt\":96}}],"
             "\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"id\":1},"
             "{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\",\"id\":2},"
             "{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\",\"id\":3}],"
             "\"encodings\":[{}]}",
             MF_MEDIA_KIND_VIDEO);
  mf_test_pkt_t got;
  send_frame(&c, 5000, 1, true, 0x01, 1, "v", 0, 0);
  expect_tag(f, &c, 0x01, &got);
  uint16_t first = seq_of(&got);
  /* another mid: no producer of this transport, dropped (twice: warned once) */
  send_frame(&c, 5555, 1, true, 0x0e, 1, "x", 0, 0);
  send_frame(&c, 5555, 2, true, 0x0e, 1, "x", 0, 0);
  expect_nothing(f, &c);
  /* seq 2 lost on the way in */
  send_frame(&c, 5000, 3, false, 0x03, 1, "v", 0, 0);
  expect_tag(f, &c, 0x03, &got);
  assert_int_equal(seq_of(&got), (uint16_t)(first + 2));
  assert_true(pump_feedback(f, &c, MF_RTCP_RTPFB, MF_RTCP_RTPFB_NACK, 5000, 2, 150));
  /* its retransmission on a new ssrc with the MID: learnt as the RTX stream and unwrapped */
  send_frame(&c, 5000, 2, false, 0x02, 1, "v", 5001, 40);
  expect_tag(f, &c, 0x02, &got);
  assert_int_equal(seq_of(&got), (uint16_t)(first + 1));
  /* an RTX padding probe (no payload): nothing to recover */
  uint8_t probe[32];
  size_t pn = build_rtp_ext(probe, 97, 41, 5001, 0, NULL, NULL, 0);
  mf_test_udp_send(c.sender, mf_plain_transport_port(plain_of(c.in)), probe, pn);
  expect_nothing(f, &c);
  /* the receiver's PLI: the producer (no "nack pli") asks its sender with a FIR */
  uint8_t rb[64];
  size_t rn = 0;
  assert_int_equal(mf_rtcp_write_pli(rb, sizeof rb, 1, c.consumer_ssrc, &rn), MF_OK);
  mf_test_udp_send(c.receiver, mf_plain_transport_port(plain_of(c.out)), rb, rn);
  assert_true(pump_feedback(f, &c, MF_RTCP_PSFB, MF_RTCP_PSFB_FIR, 5000, 0, 150));
  json_t *st = mf_producer_stats_json(c.producer);
  json_t *o = json_array_get(st, 0);
  assert_int_equal(json_integer_value(json_object_get(o, "ssrc")), 5000);
  assert_true(json_integer_value(json_object_get(o, "firCount")) >= 1);
  assert_true(json_integer_value(json_object_get(o, "nackCount")) >= 1);
  json_decref(st);
  close_chain(&c);
}

/* No MID/RID extensions, an ssrc without its RTX ssrc: the RTX payload type names the
 * single stream, whose RTX ssrc is learnt from the first retransmission. */
static void test_producer_learns_rtx_from_payload_type(void **state) {
  fx_t *f = *state;
  chain_t c;
  make_chain(f, &c,
             "{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
             "\"rtcpFeedback\":[{\"type\":\"nack\"},{\"type\":\"nack\",\"parameter\":\"pli\"}]},"
             "{\"mimeType\":\"video/rtx\",\"payloadType\":97,\"clockRate\":90000,\"parameters\":{\"apt\":96}}],"
             "\"encodings\":[{\"ssrc\":6000}]}",
             MF_MEDIA_KIND_VIDEO);
  mf_test_pkt_t got;
  send_frame(&c, 6000, 1, true, 0x01, 0, NULL, 0, 0);
  expect_tag(f, &c, 0x01, &got);
  send_frame(&c, 6000, 3, false, 0x03, 0, NULL, 0, 0);
  expect_tag(f, &c, 0x03, &got);
  send_frame(&c, 6000, 2, false, 0x02, 0, NULL, 6001, 7);
  expect_tag(f, &c, 0x02, &got);
  /* a second unknown ssrc with the RTX payload type: the stream's RTX ssrc is taken */
  send_frame(&c, 6000, 4, false, 0x04, 0, NULL, 6002, 8);
  expect_nothing(f, &c);
  close_chain(&c);
}

/* ------------------------------------------------------------ intra-node pipe */

static mf_router_transport_t *make_plain_on(mf_router_t *r, const char *options) {
  json_t *j = json_loads(options, 0, NULL);
  mf_plain_options_t o;
  char err[160] = "";
  assert_int_equal(mf_plain_options_parse(j, &o, err, sizeof err), MF_OK);
  json_decref(j);
  mf_router_transport_t *t = NULL;
  assert_int_equal(mf_router_create_plain_transport(r, &o, err, sizeof err, &t), MF_OK);
  return t;
}

/* Two "workers" of one node on this thread's loop, joined by a pipe hub: a producer on
 * worker 0 piped to its copy on worker 1, whose consumer forwards it; the copy's keyframe
 * requests go out as events (its origin is elsewhere); pipe bookkeeping errors. */
static void test_pipe_between_workers(void **state) {
  fx_t *f = *state;
  mf_pipe_hub_t *hub;
  assert_int_equal(mf_pipe_hub_create(2, 0, &hub), MF_OK);
  assert_int_equal(mf_pipe_hub_attach(hub, 0, &f->loop), MF_OK);
  assert_int_equal(mf_pipe_hub_attach(hub, 1, &f->loop), MF_OK);
  mf_router_set_pipe_hub(f->router, hub, 0);
  char err[256] = "";
  mf_router_t *rb = NULL;
  assert_int_equal(mf_router_create(f->server, mf_router_id(f->router), NULL, 0, on_event, f, err,
                                    sizeof err, &rb), MF_OK);
  mf_router_set_pipe_hub(rb, hub, 1);

  uint16_t send_port, recv_port;
  int sender = mf_test_udp_open(&send_port), receiver = mf_test_udp_open(&recv_port);
  mf_router_transport_t *in = make_plain_on(f->router, "{\"comedia\":true}");
  mf_router_transport_t *out = make_plain_on(rb, "{}");
  char text[128];
  snprintf(text, sizeof text, "{\"ip\":\"127.0.0.1\",\"port\":%u}", recv_port);
  json_t *j = json_loads(text, 0, NULL);
  assert_int_equal(mf_plain_transport_connect_json(plain_of(out), j, err, sizeof err), MF_OK);
  json_decref(j);
  static const char *const params_text =
      "{\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
      "\"rtcpFeedback\":[{\"type\":\"nack\",\"parameter\":\"pli\"}]}],\"encodings\":[{\"ssrc\":1111}]}";
  static mf_rtp_parameters_t params, copy_params;
  j = json_loads(params_text, 0, NULL);
  assert_int_equal(mf_rtp_parameters_from_json(j, "rtpParameters", &params, err, sizeof err), MF_OK);
  copy_params = params;
  json_decref(j);
  mf_producer_t *p = NULL, *copy = NULL;
  assert_int_equal(mf_router_produce(in, MF_MEDIA_KIND_VIDEO, &params, false, err, sizeof err, &p), MF_OK);
  assert_false(mf_producer_is_piped(p));

  uint32_t pipe_id = mf_pipe_hub_new_id(hub);
  assert_int_equal(mf_router_pipe_produce(rb, "not-an-id", MF_MEDIA_KIND_VIDEO, &copy_params, false,
                                          pipe_id, err, sizeof err, &copy), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_router_pipe_produce(rb, mf_producer_id(p), MF_MEDIA_KIND_VIDEO, &copy_params, false,
                                          pipe_id, err, sizeof err, &copy), MF_OK);
  assert_true(mf_producer_is_piped(copy));
  assert_int_equal(mf_router_pipe_produce(rb, mf_producer_id(p), MF_MEDIA_KIND_VIDEO, &copy_params, false,
                                          pipe_id, err, sizeof err, &copy), MF_ERR_EXISTS);
  /* the source side: not to itself, not twice */
  assert_int_equal(mf_producer_add_pipe(p, 0, pipe_id), MF_ERR_STATE);
  assert_int_equal(mf_producer_add_pipe(p, 1, 0), MF_ERR_STATE);
  assert_int_equal(mf_producer_add_pipe(p, 1, pipe_id), MF_OK);
  assert_int_equal(mf_producer_add_pipe(p, 1, pipe_id), MF_ERR_EXISTS);
  assert_int_equal(mf_producer_pipe_count(p), 1);

  mf_consumer_t *c = NULL;
  assert_int_equal(mf_router_consume(out, mf_producer_id(copy), mf_router_rtp_capabilities(rb), false,
                                     err, sizeof err, &c), MF_OK);
  mf_rtp_parameters_t *cpar = mf_consumer_rtp_parameters_copy(c);
  assert_non_null(cpar);
  uint32_t cssrc = cpar->encodings[0].ssrc;
  free(cpar);
  chain_t ch = {.sender = sender, .receiver = receiver, .in = in, .out = out, .consumer = c,
                .consumer_ssrc = cssrc};
  mf_test_pkt_t got;
  send_frame(&ch, 1111, 1, true, 0x31, 0, NULL, 0, 0);
  expect_tag(f, &ch, 0x31, &got);
  send_frame(&ch, 1111, 2, false, 0x32, 0, NULL, 0, 0);
  expect_tag(f, &ch, 0x32, &got);
  mf_pipe_hub_stats_t hs;
  mf_pipe_hub_stats(hub, 1, &hs);
  assert_true(hs.delivered >= 2);

  /* the receiver asks for a keyframe: the copy cannot ask a client, it raises an event */
  int before = f->pipe_keyframe_requests;
  uint8_t rb_buf[64];
  size_t rn = 0;
  assert_int_equal(mf_rtcp_write_pli(rb_buf, sizeof rb_buf, 1, cssrc, &rn), MF_OK);
  mf_test_udp_send(receiver, mf_plain_transport_port(plain_of(out)), rb_buf, rn);
  for (int i = 0; i < 150 && f->pipe_keyframe_requests == before; i++) uv_run(&f->loop, UV_RUN_ONCE);
  assert_true(f->pipe_keyframe_requests > before);

  /* unpiped: nothing more reaches the copy */
  assert_true(mf_producer_remove_pipe(p, pipe_id));
  assert_false(mf_producer_remove_pipe(p, pipe_id));
  assert_int_equal(mf_producer_pipe_count(p), 0);
  send_frame(&ch, 1111, 3, false, 0x33, 0, NULL, 0, 0);
  expect_nothing(f, &ch);

  mf_router_transport_close(in);
  mf_router_transport_close(out);
  mf_router_close(rb);
  mf_router_close(f->router);
  f->router = NULL;
  mf_pipe_hub_quiesce(hub, 0);
  mf_pipe_hub_quiesce(hub, 1);
  mf_pipe_hub_detach(hub, 0);
  mf_pipe_hub_detach(hub, 1);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  mf_pipe_hub_destroy(hub);
  close(sender);
  close(receiver);
}

/* ------------------------------------------------------------ audio levels */

/* An opus producer with ssrc-audio-level (id 1): levels are accumulated only while an
 * observer measures it and it is not paused; a video producer cannot be observed. */
static void test_audio_levels_observed(void **state) {
  fx_t *f = *state;
  chain_t c;
  make_chain(f, &c,
             "{\"codecs\":[{\"mimeType\":\"audio/opus\",\"payloadType\":111,\"clockRate\":48000,\"channels\":2}],"
             "\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:ssrc-audio-level\",\"id\":1}],"
             "\"encodings\":[{\"ssrc\":7000}]}",
             MF_MEDIA_KIND_AUDIO);
  static const uint8_t opus[] = {0xfc, 0xff, 0xfe, 0x33};
  uint8_t pkt[64];
  uint16_t seq = 1;
  mf_test_pkt_t got;
  /* not observed: forwarded, nothing measured */
  size_t n = build_rtp_ext(pkt, 111, seq++, 7000, 1, "\x8a", opus, sizeof opus); /* V, 10 dBov */
  mf_test_udp_send(c.sender, mf_plain_transport_port(plain_of(c.in)), pkt, n);
  assert_true(mf_test_pump_rtp(&f->loop, c.receiver, &got, 50) > 12);
  mf_audio_level_summary_t sum;
  mf_producer_take_audio_level(c.producer, &sum);
  assert_int_equal(sum.count, 0);

  assert_int_equal(mf_producer_observe_audio_level(c.producer, true), MF_OK);
  assert_int_equal(mf_producer_observe_audio_level(c.producer, true), MF_OK); /* two observers */
  static const char *const levels[] = {"\x8a", "\x14", "\x14"};       /* 10 (voice), 20, 20 */
  for (size_t i = 0; i < 3; i++) {
    n = build_rtp_ext(pkt, 111, seq++, 7000, 1, levels[i], opus, sizeof opus);
    mf_test_udp_send(c.sender, mf_plain_transport_port(plain_of(c.in)), pkt, n);
    assert_true(mf_test_pump_rtp(&f->loop, c.receiver, &got, 50) > 12);
  }
  mf_producer_take_audio_level(c.producer, &sum);
  assert_int_equal(sum.count, 3);
  assert_int_equal(sum.sum, 50);
  assert_int_equal(sum.voice, 1);
  /* paused: not measured (and not forwarded) */
  mf_producer_pause(c.producer);
  n = build_rtp_ext(pkt, 111, seq++, 7000, 1, "\x8a", opus, sizeof opus);
  mf_test_udp_send(c.sender, mf_plain_transport_port(plain_of(c.in)), pkt, n);
  assert_int_equal(mf_test_pump_rtp(&f->loop, c.receiver, &got, 4), 0);
  mf_producer_take_audio_level(c.producer, &sum);
  assert_int_equal(sum.count, 0);
  mf_producer_resume(c.producer);
  /* one observer left still measures; none left drops what was pending */
  assert_int_equal(mf_producer_observe_audio_level(c.producer, false), MF_OK);
  n = build_rtp_ext(pkt, 111, seq++, 7000, 1, "\x1e", opus, sizeof opus);
  mf_test_udp_send(c.sender, mf_plain_transport_port(plain_of(c.in)), pkt, n);
  assert_true(mf_test_pump_rtp(&f->loop, c.receiver, &got, 50) > 12);
  assert_int_equal(mf_producer_observe_audio_level(c.producer, false), MF_OK);
  assert_int_equal(mf_producer_observe_audio_level(c.producer, false), MF_OK); /* none left: no-op */
  mf_producer_take_audio_level(c.producer, &sum);
  assert_int_equal(sum.count, 0);
  close_chain(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_producer_learns_by_mid_and_repairs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_producer_learns_rtx_from_payload_type, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pipe_between_workers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_audio_levels_observed, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
