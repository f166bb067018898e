/* PipeTransports between two "nodes" (two RTC servers, each with its own router shard of
 * one logical router) over real UDP on loopback, as the gateway wires them:
 *
 *   publisher U1 --plain pipe--> [A: producer P] --pipe consumer C_A--SRTP pipe--> relay R
 *   relay R --> [B: piped producer P' (same id, C_A's rtpParameters)] --C_B--> receiver U2
 *
 * The relay drops two of A's media packets once: B's copy must NACK them across the pipe
 * and get them back by RTX from C_A's store, so U2 sees every packet. A PLI from U2 must
 * reach the publisher through both hops. The relay also checks that the pipe is SRTP
 * (the payload pattern never shows). The second test covers the control path's errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <string.h>

#include "common/id.h"
#include "common/log.h"
#include "node/router.h"
#include "node/rtp/rtcp.h"
#include "node/rtp/rtp.h"
#include "node/udp_socket.h"

#define PACKETS 60
#define DROP_A 20 /* the relay drops A's media packets number DROP_A and DROP_A+1 (0-based) */
#define PATTERN 0xAB

typedef struct {
  uv_loop_t loop;
  mf_bufpool_t *pool;
  mf_dtls_cert_t *cert;
  mf_rtc_server_t *srv_a, *srv_b;
  mf_router_t *ra, *rb;
  mf_udp_socket_t *u1, *u2, *relay;
  struct sockaddr_in addr_a, addr_b, addr_u1, addr_u2, addr_relay;
  uv_timer_t send_timer, deadline;
  int sent;
  /* relay */
  uint8_t a_media_pt;
  int a_media_seen, relay_dropped, relay_rtx, plaintext_seen;
  /* receiver */
  uint32_t c_b_ssrc;
  uint8_t seen[65536 / 8];
  int distinct;
  bool pli_sent;
  int pli_at_publisher;
  bool timed_out;
} fx_t;

static void on_event(void *ud, const char *event, const char *target, json_t *data) {
  (void)ud, (void)event, (void)target;
  json_decref(data);
}

static void addr_of(struct sockaddr_in *a, uint16_t port) {
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
}

static bool has_pattern(const uint8_t *d, size_t n) {
  int run = 0;
  for (size_t i = 0; i < n; i++) {
    run = d[i] == PATTERN ? run + 1 : 0;
    if (run >= 16) return true;
  }
  return false;
}

/* The publisher: counts PLIs for its ssrc 1111. */
static void on_u1(void *ud, mf_udp_datagram_t *d, unsigned n) {
  fx_t *f = ud;
  for (unsigned i = 0; i < n; i++) {
    mf_rtcp_iter_t it;
    mf_rtcp_header_t h;
    if (mf_rtp_is_rtcp(d[i].buf->data, d[i].buf->len)) {
      mf_rtcp_iter_init(&it, d[i].buf->data, d[i].buf->len);
      while (mf_rtcp_iter_next(&it, &h) == MF_OK) {
        mf_rtcp_pli_t pli;
        if (h.type == MF_RTCP_PSFB && h.count == 1 && mf_rtcp_parse_pli(&h, &pli) == MF_OK &&
            pli.media_ssrc == 1111 && f->pli_sent)
          f->pli_at_publisher++;
      }
    }
    mf_buf_unref(d[i].buf);
  }
}

static void send_pli_from_u2(fx_t *f) {
  uint8_t b[64];
  mf_rtcp_compound_t c;
  mf_rtcp_compound_init(&c, b, sizeof b);
  mf_rtcp_compound_add_pli(&c, 4242, f->c_b_ssrc);
  assert_int_equal(c.err, MF_OK);
  assert_int_equal(mf_udp_socket_send_copy(f->u2, b, c.len, (struct sockaddr *)&f->addr_b), MF_OK);
  mf_udp_socket_flush(f->u2);
  f->pli_sent = true;
}

/* The receiver: distinct media sequence numbers of C_B. */
static void on_u2(void *ud, mf_udp_datagram_t *d, unsigned n) {
  fx_t *f = ud;
  for (unsigned i = 0; i < n; i++) {
    mf_rtp_packet_t p;
    if (!mf_rtp_is_rtcp(d[i].buf->data, d[i].buf->len) &&
        mf_rtp_parse(d[i].buf->data, d[i].buf->len, &p) == MF_OK && p.ssrc == f->c_b_ssrc) {
      if (!(f->seen[p.sequence / 8] & (1u << (p.sequence % 8)))) {
        f->seen[p.sequence / 8] |= (uint8_t)(1u << (p.sequence % 8));
        f->distinct++;
      }
    }
    mf_buf_unref(d[i].buf);
  }
  if (f->distinct >= PACKETS && !f->pli_sent) send_pli_from_u2(f);
}

/* A <-> B through one socket; drops two of A's media packets once. */
static void on_relay(void *ud, mf_udp_datagram_t *d, unsigned n) {
  fx_t *f = ud;
  for (unsigned i = 0; i < n; i++) {
    mf_buf_t *b = d[i].buf;
    const struct sockaddr_in *from = (const struct sockaddr_in *)&d[i].from;
    bool from_a = from->sin_port == f->addr_a.sin_port;
    if (has_pattern(b->data, b->len)) f->plaintext_seen++;
    if (from_a && !mf_rtp_is_rtcp(b->data, b->len) && b->len >= 12) {
      uint8_t pt = b->data[1] & 0x7f;
      if (pt == f->a_media_pt) {
        int k = f->a_media_seen++;
        if (k == DROP_A || k == DROP_A + 1) {
          f->relay_dropped++;
          mf_buf_unref(b);
          continue;
        }
      } else {
        f->relay_rtx++;
      }
    }
    mf_udp_socket_send(f->relay, b, (struct sockaddr *)(from_a ? &f->addr_b : &f->addr_a));
    mf_buf_unref(b);
  }
  mf_udp_socket_flush(f->relay);
}

static void on_send_timer(uv_timer_t *t) {
  fx_t *f = t->data;
  if (f->sent >= PACKETS) {
    uv_timer_stop(t);
    return;
  }
  uint8_t pkt[300], payload[200];
  memset(payload, PATTERN, sizeof payload);
  payload[0] = 0x10;                            /* VP8 descriptor: S=1, partition 0 */
  payload[1] = f->sent % 30 == 0 ? 0x00 : 0x01; /* P bit clear: a keyframe every 30 */
  mf_rtp_header_t h = {.marker = true, .payload_type = 96, .sequence = (uint16_t)(1000 + f->sent),
                       .timestamp = 3000u * (uint32_t)f->sent, .ssrc = 1111};
  size_t len = 0;
  assert_int_equal(mf_rtp_write_packet(pkt, sizeof pkt, &h, payload, sizeof payload, 0, &len), MF_OK);
  assert_int_equal(mf_udp_socket_send_copy(f->u1, pkt, len, (struct sockaddr *)&f->addr_a), MF_OK);
  mf_udp_socket_flush(f->u1);
  f->sent++;
}

static void on_deadline(uv_timer_t *t) {
  fx_t *f = t->data;
  f->timed_out = true;
  uv_stop(&f->loop);
}

static bool done(fx_t *f) { return f->distinct >= PACKETS && f->pli_at_publisher > 0; }

static int setup(void **state) {
  static fx_t f;
  memset(&f, 0, sizeof f);
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_WARN, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  if (mf_srtp_library_init() != MF_OK || uv_loop_init(&f.loop) != 0) return -1;
  if (mf_bufpool_create(1024, 2048, &f.pool) || mf_dtls_cert_generate(&f.cert)) return -1;
  mf_rtc_server_options_t o = {.listen_ip = "127.0.0.1", .announced_ip = "127.0.0.1",
                               .pool = f.pool, .cert = f.cert};
  if (mf_rtc_server_create(&f.loop, &o, &f.srv_a) || mf_rtc_server_create(&f.loop, &o, &f.srv_b))
    return -1;
  char id[MF_ID_LEN + 1], err[256];
  if (mf_id_generate(id)) return -1;
  /* one logical router: both shards carry its id */
  if (mf_router_create(f.srv_a, id, NULL, 0, on_event, &f, err, sizeof err, &f.ra) ||
      mf_router_create(f.srv_b, id, NULL, 0, on_event, &f, err, sizeof err, &f.rb))
    return -1;
  if (mf_udp_socket_open(&f.loop, f.pool, "127.0.0.1", 0, on_u1, &f, &f.u1) ||
      mf_udp_socket_open(&f.loop, f.pool, "127.0.0.1", 0, on_u2, &f, &f.u2) ||
      mf_udp_socket_open(&f.loop, f.pool, "127.0.0.1", 0, on_relay, &f, &f.relay))
    return -1;
  addr_of(&f.addr_a, mf_rtc_server_port(f.srv_a));
  addr_of(&f.addr_b, mf_rtc_server_port(f.srv_b));
  addr_of(&f.addr_u1, mf_udp_socket_port(f.u1));
  addr_of(&f.addr_u2, mf_udp_socket_port(f.u2));
  addr_of(&f.addr_relay, mf_udp_socket_port(f.relay));
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  mf_router_close(f->ra);
  mf_router_close(f->rb);
  mf_udp_socket_close(f->u1, NULL, NULL);
  mf_udp_socket_close(f->u2, NULL, NULL);
  mf_udp_socket_close(f->relay, NULL, NULL);
  mf_rtc_server_close(f->srv_a, NULL, NULL);
  mf_rtc_server_close(f->srv_b, NULL, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&f->loop) != 0) return -1;
  mf_dtls_cert_free(f->cert);
  mf_bufpool_destroy(f->pool);
  return 0;
}

/* mediasoup-client's send parameters for a VP8 camera track with RTX. */
static const char *const vp8_params =
    "{\"mid\":\"0\",\"codecs\":[{\"mimeType\":\"video/VP8\",\"payloadType\":96,\"clockRate\":90000,"
    "\"parameters\":{},\"rtcpFeedback\":[{\"type\":\"nack\"},{\"type\":\"nack\",\"parameter\":\"pli\"},"
    "{\"type\":\"ccm\",\"parameter\":\"fir\"}]},"
    "{\"mimeType\":\"video/rtx\",\"payloadType\":97,\"clockRate\":90000,\"parameters\":{\"apt\":96}}],"
    "\"headerExtensions\":[{\"uri\":\"urn:ietf:params:rtp-hdrext:sdes:mid\",\"id\":1}],"
    "\"encodings\":[{\"ssrc\":1111,\"rtx\":{\"ssrc\":2222}}],\"rtcp\":{\"cname\":\"abc\",\"reducedSize\":true}}";

static mf_rtp_parameters_t *params_from_json(const json_t *j) {
  static mf_rtp_parameters_t p;
  char err[256] = "";
  mf_err_t e = mf_rtp_parameters_from_json(j, "rtpParameters", &p, err, sizeof err);
  if (e) print_error("rtpParameters: %s\n", err);
  assert_int_equal(e, MF_OK);
  return &p;
}

static mf_router_transport_t *pipe_to(mf_router_t *r, bool srtp, const struct sockaddr_in *to,
                                      const mf_pipe_srtp_t *peer) {
  mf_router_transport_t *t = NULL;
  char err[256] = "";
  assert_int_equal(mf_router_create_pipe_transport(r, srtp, &t), MF_OK);
  assert_true(mf_router_transport_is_pipe(t));
  if (to) {
    mf_err_t e = mf_webrtc_transport_connect_pipe(mf_router_transport_webrtc(t),
                                                  (const struct sockaddr *)to, peer, NULL, err, sizeof err);
    if (e) print_error("connect_pipe: %s\n", err);
    assert_int_equal(e, MF_OK);
  }
  return t;
}

static void test_media_nack_and_pli_cross_the_pipe(void **state) {
  fx_t *f = *state;
  char err[256] = "", pid[MF_ID_LEN + 1];
  assert_int_equal(mf_id_generate(pid), MF_OK);
  /* A: the publisher's producer, fed over a plain pipe from U1 */
  mf_router_transport_t *a_in = pipe_to(f->ra, false, &f->addr_u1, NULL);
  json_t *jp = json_loads(vp8_params, 0, NULL);
  mf_producer_t *p = NULL;
  assert_int_equal(mf_router_pipe_transport_produce(a_in, pid, MF_MEDIA_KIND_VIDEO,
                                                    params_from_json(jp), false, err, sizeof err, &p),
                   MF_OK);
  json_decref(jp);
  /* the SRTP pipe A <-> B, both through the relay; keys exchanged as the control plane does */
  mf_router_transport_t *a_out = pipe_to(f->ra, true, NULL, NULL);
  mf_router_transport_t *b_in = pipe_to(f->rb, true, NULL, NULL);
  /* B (the target) chooses both keys: its own (drawn at create) and A's */
  mf_pipe_srtp_t ka, kb;
  mf_webrtc_transport_pipe_local_srtp(mf_router_transport_webrtc(b_in), &kb);
  assert_int_equal(mf_pipe_srtp_generate(&ka), MF_OK);
  assert_true(ka.enabled && kb.enabled);
  assert_memory_not_equal(ka.key, kb.key, ka.key_len);
  assert_int_equal(mf_webrtc_transport_connect_pipe(mf_router_transport_webrtc(a_out),
                                                    (struct sockaddr *)&f->addr_relay, &kb, &ka, err,
                                                    sizeof err), MF_OK);
  assert_int_equal(mf_webrtc_transport_connect_pipe(mf_router_transport_webrtc(b_in),
                                                    (struct sockaddr *)&f->addr_relay, &ka, NULL, err,
                                                    sizeof err), MF_OK);
  mf_pipe_srtp_t a_now;
  mf_webrtc_transport_pipe_local_srtp(mf_router_transport_webrtc(a_out), &a_now);
  assert_memory_equal(a_now.key, ka.key, ka.key_len);
  /* the pipe consumer on A; its parameters make the copy on B (through JSON, as on the wire) */
  mf_consumer_t *ca = NULL;
  assert_int_equal(mf_router_consume(a_out, pid, mf_router_rtp_capabilities(f->ra), false, err,
                                     sizeof err, &ca), MF_OK);
  json_t *jc = json_loads(mf_consumer_rtp_parameters_text(ca), 0, NULL);
  f->a_media_pt = (uint8_t)json_integer_value(
      json_object_get(json_array_get(json_object_get(jc, "codecs"), 0), "payloadType"));
  mf_producer_t *pb = NULL;
  mf_err_t e = mf_router_pipe_transport_produce(b_in, pid, MF_MEDIA_KIND_VIDEO, params_from_json(jc),
                                                false, err, sizeof err, &pb);
  if (e) print_error("pipe produce on B: %s\n", err);
  assert_int_equal(e, MF_OK);
  json_decref(jc);
  assert_string_equal(mf_producer_id(pb), pid);
  /* the same id twice on one shard is refused */
  jc = json_loads(mf_consumer_rtp_parameters_text(ca), 0, NULL);
  mf_producer_t *dup = NULL;
  assert_int_equal(mf_router_pipe_transport_produce(b_in, pid, MF_MEDIA_KIND_VIDEO,
                                                    params_from_json(jc), false, err, sizeof err, &dup),
                   MF_ERR_EXISTS);
  json_decref(jc);
  /* B: the receiver's consumer over a plain pipe to U2 */
  mf_router_transport_t *b_out = pipe_to(f->rb, false, &f->addr_u2, NULL);
  mf_consumer_t *cb = NULL;
  assert_int_equal(mf_router_consume(b_out, pid, mf_router_rtp_capabilities(f->rb), false, err,
                                     sizeof err, &cb), MF_OK);
  jc = json_loads(mf_consumer_rtp_parameters_text(cb), 0, NULL);
  f->c_b_ssrc = (uint32_t)json_integer_value(
      json_object_get(json_array_get(json_object_get(jc, "encodings"), 0), "ssrc"));
  json_decref(jc);

  uv_timer_init(&f->loop, &f->send_timer);
  uv_timer_init(&f->loop, &f->deadline);
  f->send_timer.data = f->deadline.data = f;
  uv_timer_start(&f->send_timer, on_send_timer, 10, 10);
  uv_timer_start(&f->deadline, on_deadline, 15000, 0);
  while (!done(f) && !f->timed_out) uv_run(&f->loop, UV_RUN_ONCE);
  uv_timer_stop(&f->send_timer);
  uv_timer_stop(&f->deadline);
  uv_close((uv_handle_t *)&f->send_timer, NULL);
  uv_close((uv_handle_t *)&f->deadline, NULL);
  print_message("sent %d, relay dropped %d, relay forwarded %d RTX, receiver got %d distinct, "
                "PLIs at the publisher %d\n", f->sent, f->relay_dropped, f->relay_rtx, f->distinct,
                f->pli_at_publisher);
  assert_false(f->timed_out);
  assert_int_equal(f->relay_dropped, 2);
  assert_true(f->relay_rtx >= 2);          /* the two came back as RTX over the pipe */
  assert_int_equal(f->distinct, PACKETS);  /* and reached the receiver */
  assert_true(f->pli_at_publisher > 0);    /* U2's PLI went B -> A -> publisher */
  assert_int_equal(f->plaintext_seen, 0);  /* SRTP between the nodes */
  mf_webrtc_transport_stats_t st;
  mf_webrtc_transport_get_stats(mf_router_transport_webrtc(b_in), &st);
  assert_int_equal(st.srtp_unprotect_failures, 0);
  assert_true(st.rtp_packets_received >= PACKETS);
  mf_rtc_server_stats_t ss;
  mf_rtc_server_get_stats(f->srv_b, &ss);
  assert_true(ss.rtp_in >= PACKETS && ss.rtcp_in > 0); /* B got media and A's SRs */
  json_t *params = mf_webrtc_transport_parameters_json(mf_router_transport_webrtc(a_out));
  assert_int_equal(json_integer_value(json_object_get(json_object_get(params, "tuple"), "remotePort")),
                   ntohs(f->addr_relay.sin_port));
  assert_true(json_is_true(json_object_get(params, "srtp")));
  json_decref(params);
}

static void test_pipe_errors(void **state) {
  fx_t *f = *state;
  char err[256] = "", pid[MF_ID_LEN + 1];
  assert_int_equal(mf_id_generate(pid), MF_OK);
  mf_router_transport_t *s1 = pipe_to(f->ra, true, NULL, NULL);
  mf_router_transport_t *plain = pipe_to(f->ra, false, NULL, NULL);
  mf_pipe_srtp_t key, none = {.enabled = false};
  mf_webrtc_transport_pipe_local_srtp(mf_router_transport_webrtc(s1), &key);
  mf_webrtc_transport_t *w1 = mf_router_transport_webrtc(s1);
  /* SRTP on one side only */
  assert_int_equal(mf_webrtc_transport_connect_pipe(w1, (struct sockaddr *)&f->addr_u1, &none, NULL,
                                                    err, sizeof err), MF_ERR_INVALID_ARG);
  assert_non_null(strstr(err, "--pipe-srtp"));
  assert_int_equal(mf_webrtc_transport_connect_pipe(mf_router_transport_webrtc(plain),
                                                    (struct sockaddr *)&f->addr_u1, &key, NULL, err,
                                                    sizeof err), MF_ERR_INVALID_ARG);
  /* a key of the wrong length */
  mf_pipe_srtp_t bad = key;
  bad.key_len = 12;
  assert_int_equal(mf_webrtc_transport_connect_pipe(w1, (struct sockaddr *)&f->addr_u1, &bad, NULL,
                                                    err, sizeof err), MF_ERR_INVALID_ARG);
  /* a good connect, then a second one */
  assert_int_equal(mf_webrtc_transport_connect_pipe(w1, (struct sockaddr *)&f->addr_u1, &key, NULL,
                                                    err, sizeof err), MF_OK);
  assert_int_equal(mf_webrtc_transport_connect_pipe(w1, (struct sockaddr *)&f->addr_u1, &key, NULL,
                                                    err, sizeof err), MF_ERR_STATE);
  /* one transport per remote address per worker */
  mf_router_transport_t *s2 = pipe_to(f->ra, true, NULL, NULL);
  assert_int_equal(mf_webrtc_transport_connect_pipe(mf_router_transport_webrtc(s2),
                                                    (struct sockaddr *)&f->addr_u1, &key, NULL, err,
                                                    sizeof err), MF_ERR_EXISTS);
  /* a WebRTC transport takes no piped producer; a pipe producer needs a valid id */
  mf_router_transport_t *w = NULL;
  assert_int_equal(mf_router_create_webrtc_transport(f->ra, &w), MF_OK);
  assert_false(mf_router_transport_is_pipe(w));
  assert_int_equal(mf_webrtc_transport_connect_pipe(mf_router_transport_webrtc(w),
                                                    (struct sockaddr *)&f->addr_u1, NULL, NULL, err,
                                                    sizeof err), MF_ERR_STATE);
  json_t *jp = json_loads(vp8_params, 0, NULL);
  mf_producer_t *p = NULL;
  assert_int_equal(mf_router_pipe_transport_produce(w, pid, MF_MEDIA_KIND_VIDEO, params_from_json(jp),
                                                    false, err, sizeof err, &p), MF_ERR_STATE);
  assert_int_equal(mf_router_pipe_transport_produce(s1, "not an id", MF_MEDIA_KIND_VIDEO,
                                                    params_from_json(jp), false, err, sizeof err, &p),
                   MF_ERR_INVALID_ARG);
  json_decref(jp);
  /* closing a connected pipe frees its address for a new one */
  mf_router_transport_close(s1);
  assert_int_equal(mf_webrtc_transport_connect_pipe(mf_router_transport_webrtc(s2),
                                                    (struct sockaddr *)&f->addr_u1, &key, NULL, err,
                                                    sizeof err), MF_OK);
  /* garbage from the peer's address is dropped, never a crash */
  uint8_t junk[] = {0x80, 0x60, 0x00};
  assert_int_equal(mf_udp_socket_send_copy(f->u1, junk, sizeof junk, (struct sockaddr *)&f->addr_a),
                   MF_OK);
  mf_udp_socket_flush(f->u1);
  for (int i = 0; i < 20; i++) uv_run(&f->loop, UV_RUN_NOWAIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_media_nack_and_pli_cross_the_pipe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pipe_errors, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
