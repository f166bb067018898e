#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/sdp.h"
#include "node/sdp_answer.h"

/* Chrome's unified-plan offer for getUserMedia audio+video plus a data channel (layout
 * and attribute order as Chrome writes them; candidates trimmed to loopback ones). */
static const char CHROME_OFFER[] =
    "v=0\r\n"
    "o=- 4215775240449105457 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1 2\r\n"
    "a=extmap-allow-mixed\r\n"
    "a=msid-semantic: WMS 6b5ec0d4-5f1b-4b6f-a4c5-a8e2c8b11a2b\r\n"
    "m=audio 54321 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=candidate:3432174538 1 udp 2122260223 127.0.0.1 54321 typ host generation 0 network-id 1\r\n"
    "a=candidate:2199032595 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0 "
    "network-id 1\r\n"
    "a=ice-ufrag:Xh3q\r\n"
    "a=ice-pwd:bYb9p1n3Gf8q0k5dDx6Q2Ywz\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 5B:3E:0F:11:B9:6C:2A:77:D4:19:8E:52:AF:03:C6:91:4D:E2:7A:58:0B:"
    "C4:16:9F:E3:22:71:8D:A0:5C:36:E9\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=sendonly\r\n"
    "a=msid:6b5ec0d4-5f1b-4b6f-a4c5-a8e2c8b11a2b 3c1e2f4a-8d7b-4e61-9a0f-2b5c7d9e1f03\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:63 red/48000/2\r\n"
    "a=fmtp:63 111/111\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:13 CN/8000\r\n"
    "a=rtpmap:110 telephone-event/48000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\n"
    "a=ssrc:3735928559 cname:dVDxX0ObQjF8Rw1o\r\n"
    "a=ssrc:3735928559 msid:6b5ec0d4-5f1b-4b6f-a4c5-a8e2c8b11a2b "
    "3c1e2f4a-8d7b-4e61-9a0f-2b5c7d9e1f03\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 108 109 127 125 39 40 45 46 98 "
    "99 100 101 112 113 116 117 118\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:Xh3q\r\n"
    "a=ice-pwd:bYb9p1n3Gf8q0k5dDx6Q2Ywz\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 5B:3E:0F:11:B9:6C:2A:77:D4:19:8E:52:AF:03:C6:91:4D:E2:7A:58:0B:"
    "C4:16:9F:E3:22:71:8D:A0:5C:36:E9\r\n"
    "a=setup:actpass\r\n"
    "a=mid:1\r\n"
    "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=extmap:13 urn:3gpp:video-orientation\r\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n"
    "a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type\r\n"
    "a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing\r\n"
    "a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n"
    "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n"
    "a=sendonly\r\n"
    "a=msid:6b5ec0d4-5f1b-4b6f-a4c5-a8e2c8b11a2b 9a7f3b21-66c4-4d2e-8f10-4c3b2a1d0e9f\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=rtcp-fb:96 goog-remb\r\n"
    "a=rtcp-fb:96 transport-cc\r\n"
    "a=rtcp-fb:96 ccm fir\r\n"
    "a=rtcp-fb:96 nack\r\n"
    "a=rtcp-fb:96 nack pli\r\n"
    "a=rtpmap:97 rtx/90000\r\n"
    "a=fmtp:97 apt=96\r\n"
    "a=rtpmap:102 H264/90000\r\n"
    "a=rtcp-fb:102 goog-remb\r\n"
    "a=rtcp-fb:102 transport-cc\r\n"
    "a=rtcp-fb:102 ccm fir\r\n"
    "a=rtcp-fb:102 nack\r\n"
    "a=rtcp-fb:102 nack pli\r\n"
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n"
    "a=rtpmap:103 rtx/90000\r\n"
    "a=fmtp:103 apt=102\r\n"
    "a=rtpmap:104 H264/90000\r\n"
    "a=rtcp-fb:104 goog-remb\r\n"
    "a=rtcp-fb:104 transport-cc\r\n"
    "a=rtcp-fb:104 ccm fir\r\n"
    "a=rtcp-fb:104 nack\r\n"
    "a=rtcp-fb:104 nack pli\r\n"
    "a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n"
    "a=rtpmap:105 rtx/90000\r\n"
    "a=fmtp:105 apt=104\r\n"
    "a=rtpmap:106 H264/90000\r\n"
    "a=rtcp-fb:106 goog-remb\r\n"
    "a=rtcp-fb:106 transport-cc\r\n"
    "a=rtcp-fb:106 ccm fir\r\n"
    "a=rtcp-fb:106 nack\r\n"
    "a=rtcp-fb:106 nack pli\r\n"
    "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
    "a=rtpmap:107 rtx/90000\r\n"
    "a=fmtp:107 apt=106\r\n"
    "a=rtpmap:108 H264/90000\r\n"
    "a=rtcp-fb:108 goog-remb\r\n"
    "a=rtcp-fb:108 transport-cc\r\n"
    "a=rtcp-fb:108 ccm fir\r\n"
    "a=rtcp-fb:108 nack\r\n"
    "a=rtcp-fb:108 nack pli\r\n"
    "a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n"
    "a=rtpmap:109 rtx/90000\r\n"
    "a=fmtp:109 apt=108\r\n"
    "a=rtpmap:127 H264/90000\r\n"
    "a=rtcp-fb:127 goog-remb\r\n"
    "a=rtcp-fb:127 transport-cc\r\n"
    "a=rtcp-fb:127 ccm fir\r\n"
    "a=rtcp-fb:127 nack\r\n"
    "a=rtcp-fb:127 nack pli\r\n"
    "a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\n"
    "a=rtpmap:125 rtx/90000\r\n"
    "a=fmtp:125 apt=127\r\n"
    "a=rtpmap:39 H264/90000\r\n"
    "a=rtcp-fb:39 goog-remb\r\n"
    "a=rtcp-fb:39 transport-cc\r\n"
    "a=rtcp-fb:39 ccm fir\r\n"
    "a=rtcp-fb:39 nack\r\n"
    "a=rtcp-fb:39 nack pli\r\n"
    "a=fmtp:39 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f\r\n"
    "a=rtpmap:40 rtx/90000\r\n"
    "a=fmtp:40 apt=39\r\n"
    "a=rtpmap:45 AV1/90000\r\n"
    "a=rtcp-fb:45 goog-remb\r\n"
    "a=rtcp-fb:45 transport-cc\r\n"
    "a=rtcp-fb:45 ccm fir\r\n"
    "a=rtcp-fb:45 nack\r\n"
    "a=rtcp-fb:45 nack pli\r\n"
    "a=fmtp:45 level-idx=5;profile=0;tier=0\r\n"
    "a=rtpmap:46 rtx/90000\r\n"
    "a=fmtp:46 apt=45\r\n"
    "a=rtpmap:98 VP9/90000\r\n"
    "a=rtcp-fb:98 goog-remb\r\n"
    "a=rtcp-fb:98 transport-cc\r\n"
    "a=rtcp-fb:98 ccm fir\r\n"
    "a=rtcp-fb:98 nack\r\n"
    "a=rtcp-fb:98 nack pli\r\n"
    "a=fmtp:98 profile-id=0\r\n"
    "a=rtpmap:99 rtx/90000\r\n"
    "a=fmtp:99 apt=98\r\n"
    "a=rtpmap:100 VP9/90000\r\n"
    "a=rtcp-fb:100 goog-remb\r\n"
    "a=rtcp-fb:100 transport-cc\r\n"
    "a=rtcp-fb:100 ccm fir\r\n"
    "a=rtcp-fb:100 nack\r\n"
    "a=rtcp-fb:100 nack pli\r\n"
    "a=fmtp:100 profile-id=2\r\n"
    "a=rtpmap:101 rtx/90000\r\n"
    "a=fmtp:101 apt=100\r\n"
    "a=rtpmap:112 H264/90000\r\n"
    "a=rtcp-fb:112 goog-remb\r\n"
    "a=rtcp-fb:112 transport-cc\r\n"
    "a=rtcp-fb:112 ccm fir\r\n"
    "a=rtcp-fb:112 nack\r\n"
    "a=rtcp-fb:112 nack pli\r\n"
    "a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f\r\n"
    "a=rtpmap:113 rtx/90000\r\n"
    "a=fmtp:113 apt=112\r\n"
    "a=rtpmap:116 red/90000\r\n"
    "a=rtpmap:117 rtx/90000\r\n"
    "a=fmtp:117 apt=116\r\n"
    "a=rtpmap:118 ulpfec/90000\r\n"
    "a=ssrc-group:FID 1591290226 2760135573\r\n"
    "a=ssrc:1591290226 cname:dVDxX0ObQjF8Rw1o\r\n"
    "a=ssrc:1591290226 msid:6b5ec0d4-5f1b-4b6f-a4c5-a8e2c8b11a2b "
    "9a7f3b21-66c4-4d2e-8f10-4c3b2a1d0e9f\r\n"
    "a=ssrc:2760135573 cname:dVDxX0ObQjF8Rw1o\r\n"
    "a=ssrc:2760135573 msid:6b5ec0d4-5f1b-4b6f-a4c5-a8e2c8b11a2b "
    "9a7f3b21-66c4-4d2e-8f10-4c3b2a1d0e9f\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:Xh3q\r\n"
    "a=ice-pwd:bYb9p1n3Gf8q0k5dDx6Q2Ywz\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 5B:3E:0F:11:B9:6C:2A:77:D4:19:8E:52:AF:03:C6:91:4D:E2:7A:58:0B:"
    "C4:16:9F:E3:22:71:8D:A0:5C:36:E9\r\n"
    "a=setup:actpass\r\n"
    "a=mid:2\r\n"
    "a=sctp-port:5000\r\n"
    "a=max-message-size:262144\r\n";

/* What GStreamer 1.22 webrtcbin (bundle-policy=max-bundle) offers for
 * videotestsrc ! vp8enc ! rtpvp8pay and audiotestsrc ! opusenc ! rtpopuspay with the ssrc
 * pinned in the caps, sendonly transceivers, read back after ICE gathering completed
 * (captured from tests/interop/gst_peer --mode send --gather). */
static const char GST_OFFER[] =
    "v=0\r\n"
    "o=- 1053277073567864582 0 IN IP4 0.0.0.0\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=ice-options:trickle\r\n"
    "a=group:BUNDLE video0 audio1\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=setup:actpass\r\n"
    "a=ice-ufrag:6RiofreBu8ShX5fH6FAxkM1R1y7Rydxe\r\n"
    "a=ice-pwd:kgwI/6jrisTAumT6r056o21oNqierPCF\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=sendonly\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=rtcp-fb:96 nack pli\r\n"
    "a=rtcp-fb:96 ccm fir\r\n"
    "a=rtcp-fb:96 transport-cc\r\n"
    "a=framerate:30\r\n"
    "a=ssrc:287454020 msid:user2372353173@host-7e812cd4 webrtctransceiver0\r\n"
    "a=ssrc:287454020 cname:user2372353173@host-7e812cd4\r\n"
    "a=mid:video0\r\n"
    "a=fingerprint:sha-256 F6:AC:47:0C:AE:CB:B1:A6:A5:FE:BC:94:F3:C1:22:D4:88:E5:8B:EC:18:97:9D:"
    "03:92:67:BA:F3:CE:41:09:51\r\n"
    "a=rtcp-mux-only\r\n"
    "a=candidate:1 1 UDP 2015364095 127.0.0.1 56822 typ host\r\n"
    "a=candidate:2 1 TCP 1015022591 127.0.0.1 9 typ host tcptype active\r\n"
    "a=candidate:3 1 TCP 1010828287 127.0.0.1 36409 typ host tcptype passive\r\n"
    "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=setup:actpass\r\n"
    "a=ice-ufrag:6RiofreBu8ShX5fH6FAxkM1R1y7Rydxe\r\n"
    "a=ice-pwd:kgwI/6jrisTAumT6r056o21oNqierPCF\r\n"
    "a=bundle-only\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=sendonly\r\n"
    "a=rtpmap:111 OPUS/48000/2\r\n"
    "a=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 sprop-stereo=0;sprop-maxcapturerate=48000\r\n"
    "a=ssrc:1432778632 msid:user2372353173@host-7e812cd4 webrtctransceiver1\r\n"
    "a=ssrc:1432778632 cname:user2372353173@host-7e812cd4\r\n"
    "a=mid:audio1\r\n"
    "a=fingerprint:sha-256 F6:AC:47:0C:AE:CB:B1:A6:A5:FE:BC:94:F3:C1:22:D4:88:E5:8B:EC:18:97:9D:"
    "03:92:67:BA:F3:CE:41:09:51\r\n"
    "a=rtcp-mux-only\r\n";

/* Chrome with sendEncodings (three rids), LF line ends, session-level ICE/DTLS. */
static const char SIMULCAST_OFFER[] =
    "v=0\n"
    "o=- 77 1 IN IP4 127.0.0.1\n"
    "s=-\n"
    "t=0 0\n"
    "a=ice-ufrag:sess\n"
    "a=ice-pwd:sessionpasswordsessionpw\n"
    "a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:"
    "11:22:33:44:55:66:77:88:99\n"
    "a=setup:actpass\n"
    "a=group:BUNDLE 0\n"
    "a=msid-semantic: WMS *\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\n"
    "c=IN IP4 0.0.0.0\n"
    "b=AS:2500\n"
    "a=mid:0\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\n"
    "a=extmap:10/sendonly urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\n"
    "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\n"
    "a=sendonly\n"
    "a=msid:- 5d3c8d1e-3c5e-4b7a-9a43-0b6f8d0e2c11\n"
    "a=rtcp-mux\n"
    "a=rtcp-rsize\n"
    "a=rtpmap:96 VP8/90000\n"
    "a=rtcp-fb:* nack\n"
    "a=rtcp-fb:96 nack pli\n"
    "a=rtpmap:97 rtx/90000\n"
    "a=fmtp:97 apt=96\n"
    "a=rid:f send\n"
    "a=rid:h send max-width=640;max-height=360\n"
    "a=rid:q send\n"
    "a=simulcast:send f;h;~q\n"
    "a=unknown-attribute:whatever\n";

static mf_sdp_t *new_sdp(void) {
  mf_sdp_t *s = calloc(1, sizeof *s);
  assert_non_null(s);
  return s;
}

static mf_sdp_t *parse_ok(const char *text) {
  mf_sdp_t *s = new_sdp();
  mf_err_t err = mf_sdp_parse(text, strlen(text), s);
  if (err != MF_OK) fail_msg("parse failed (%s): %s", mf_err_name(err), s->error);
  return s;
}

static const mf_sdp_payload_t *payload(const mf_sdp_media_t *m, unsigned pt) {
  for (size_t i = 0; i < m->payload_count; i++)
    if (m->payloads[i].pt == pt) return &m->payloads[i];
  return NULL;
}

/* Compares section by section so a failure says where. */
static void assert_sdp_equal(const mf_sdp_t *a, const mf_sdp_t *b) {
  assert_int_equal(a->media_count, b->media_count);
  for (size_t i = 0; i < a->media_count; i++) {
    const mf_sdp_media_t *ma = &a->media[i], *mb = &b->media[i];
    for (size_t k = 0; k < ma->payload_count; k++)
      assert_memory_equal(&ma->payloads[k], &mb->payloads[k], sizeof ma->payloads[k]);
    assert_memory_equal(&ma->transport, &mb->transport, sizeof ma->transport);
    assert_memory_equal(ma->candidates, mb->candidates, sizeof ma->candidates);
    assert_memory_equal(ma, mb, sizeof *ma);
  }
  assert_memory_equal(a, b, sizeof *a);
}

static char *write_ok(const mf_sdp_t *s, size_t *len_out) {
  size_t cap = 256 * 1024, len = 0;
  char *buf = malloc(cap);
  assert_non_null(buf);
  assert_int_equal(mf_sdp_write(s, buf, cap, &len), MF_OK);
  assert_int_equal(strlen(buf), len);
  if (len_out) *len_out = len;
  return buf;
}

/* ---------------------------------------------------------------- parsing real offers */

static void test_parse_chrome_offer(void **state) {
  mf_sdp_t *s = parse_ok(CHROME_OFFER);
  assert_string_equal(s->session_id, "4215775240449105457");
  assert_int_equal(s->session_version, 2);
  assert_false(s->ice_lite);
  assert_true(s->extmap_allow_mixed);
  assert_string_equal(s->msid_semantic, "WMS 6b5ec0d4-5f1b-4b6f-a4c5-a8e2c8b11a2b");
  assert_int_equal(s->bundle_count, 3);
  assert_string_equal(s->bundle_mids[0], "0");
  assert_string_equal(s->bundle_mids[2], "2");
  assert_int_equal(s->media_count, 3);

  const mf_sdp_media_t *a = &s->media[0];
  assert_int_equal(a->kind, MF_SDP_KIND_AUDIO);
  assert_int_equal(a->port, 54321);
  assert_string_equal(a->proto, "UDP/TLS/RTP/SAVPF");
  assert_string_equal(a->connection, "127.0.0.1");
  assert_string_equal(a->mid, "0");
  assert_int_equal(a->direction, MF_SDP_DIR_SENDONLY);
  assert_true(a->rtcp_mux);
  assert_true(a->rtcp_rsize);
  assert_string_equal(a->transport.ice_ufrag, "Xh3q");
  assert_string_equal(a->transport.ice_pwd, "bYb9p1n3Gf8q0k5dDx6Q2Ywz");
  assert_string_equal(a->transport.ice_options, "trickle");
  assert_string_equal(a->transport.fingerprint_alg, "sha-256");
  assert_int_equal(strlen(a->transport.fingerprint), 95);
  assert_int_equal(a->transport.setup, MF_SDP_SETUP_ACTPASS);
  assert_string_equal(a->msid,
                      "6b5ec0d4-5f1b-4b6f-a4c5-a8e2c8b11a2b 3c1e2f4a-8d7b-4e61-9a0f-2b5c7d9e1f03");
  assert_int_equal(a->payload_count, 8);
  assert_int_equal(a->payloads[0].pt, 111);
  assert_string_equal(a->payloads[0].name, "opus");
  assert_int_equal(a->payloads[0].clock_rate, 48000);
  assert_int_equal(a->payloads[0].channels, 2);
  assert_string_equal(a->payloads[0].fmtp, "minptime=10;useinbandfec=1");
  assert_int_equal(a->payloads[0].fb_count, 1);
  assert_string_equal(a->payloads[0].fb[0].type, "transport-cc");
  assert_string_equal(a->payloads[0].fb[0].param, "");
  assert_string_equal(payload(a, 63)->fmtp, "111/111");
  assert_string_equal(payload(a, 0)->name, "PCMU");
  assert_int_equal(payload(a, 0)->channels, 0);
  assert_int_equal(a->extmap_count, 4);
  assert_int_equal(a->extmaps[3].id, 4);
  assert_string_equal(a->extmaps[3].uri, "urn:ietf:params:rtp-hdrext:sdes:mid");
  assert_int_equal(a->extmaps[3].direction, MF_SDP_DIR_UNSET);
  assert_int_equal(a->ssrc_count, 1);
  assert_int_equal(a->ssrcs[0].ssrc, 3735928559u);
  assert_string_equal(a->ssrcs[0].cname, "dVDxX0ObQjF8Rw1o");
  assert_int_equal(a->candidate_count, 2);
  assert_string_equal(a->candidates[0].foundation, "3432174538");
  assert_int_equal(a->candidates[0].component, 1);
  assert_string_equal(a->candidates[0].transport, "udp");
  assert_int_equal(a->candidates[0].priority, 2122260223u);
  assert_string_equal(a->candidates[0].address, "127.0.0.1");
  assert_int_equal(a->candidates[0].port, 54321);
  assert_string_equal(a->candidates[0].type, "host");
  assert_string_equal(a->candidates[0].tcptype, "");
  assert_string_equal(a->candidates[1].tcptype, "active");
  assert_false(a->end_of_candidates);

  const mf_sdp_media_t *v = &s->media[1];
  assert_int_equal(v->kind, MF_SDP_KIND_VIDEO);
  assert_int_equal(v->payload_count, 25);
  assert_int_equal(v->payloads[0].pt, 96);
  assert_string_equal(v->payloads[0].name, "VP8");
  assert_int_equal(v->payloads[0].fb_count, 5);
  assert_string_equal(v->payloads[0].fb[2].type, "ccm");
  assert_string_equal(v->payloads[0].fb[2].param, "fir");
  assert_string_equal(v->payloads[0].fb[4].param, "pli");
  char apt[8];
  assert_int_equal(mf_sdp_fmtp_param(payload(v, 97)->fmtp, "apt", apt, sizeof apt), MF_OK);
  assert_string_equal(apt, "96");
  assert_string_equal(payload(v, 45)->name, "AV1");
  assert_string_equal(payload(v, 118)->name, "ulpfec");
  assert_int_equal(v->extmap_count, 11);
  assert_int_equal(v->extmaps[0].id, 14);
  assert_int_equal(v->ssrc_group_count, 1);
  assert_string_equal(v->ssrc_groups[0].semantics, "FID");
  assert_int_equal(v->ssrc_groups[0].ssrc_count, 2);
  assert_int_equal(v->ssrc_groups[0].ssrcs[1], 2760135573u);
  assert_int_equal(v->ssrc_count, 2);
  assert_string_equal(v->ssrcs[1].msid,
                      "6b5ec0d4-5f1b-4b6f-a4c5-a8e2c8b11a2b 9a7f3b21-66c4-4d2e-8f10-4c3b2a1d0e9f");
  assert_int_equal(v->candidate_count, 0);
  assert_string_equal(v->connection, "0.0.0.0");

  const mf_sdp_media_t *d = &s->media[2];
  assert_int_equal(d->kind, MF_SDP_KIND_APPLICATION);
  assert_string_equal(d->proto, "UDP/DTLS/SCTP");
  assert_string_equal(d->fmt, "webrtc-datachannel");
  assert_int_equal(d->payload_count, 0);
  assert_int_equal(d->sctp_port, 5000);
  assert_int_equal(d->max_message_size, 262144);
  assert_string_equal(s->error, "");
  free(s);
}

static void test_parse_gst_offer(void **state) {
  mf_sdp_t *s = parse_ok(GST_OFFER);
  assert_int_equal(s->bundle_count, 2);
  assert_string_equal(s->bundle_mids[1], "audio1");
  assert_string_equal(s->transport.ice_options, "trickle");
  assert_int_equal(s->media_count, 2);
  const mf_sdp_media_t *v = &s->media[0], *a = &s->media[1];
  assert_string_equal(v->mid, "video0");
  assert_int_equal(v->port, 9);
  assert_int_equal(v->direction, MF_SDP_DIR_SENDONLY);
  /* ice-options came from session level; the rest is per section */
  assert_string_equal(v->transport.ice_options, "trickle");
  assert_string_equal(v->transport.ice_ufrag, "6RiofreBu8ShX5fH6FAxkM1R1y7Rydxe");
  assert_int_equal(v->transport.setup, MF_SDP_SETUP_ACTPASS);
  assert_int_equal(v->payloads[0].fb_count, 3);
  assert_string_equal(v->payloads[0].fb[0].type, "nack");
  assert_string_equal(v->payloads[0].fb[0].param, "pli");
  assert_int_equal(v->ssrc_count, 1);
  assert_int_equal(v->ssrcs[0].ssrc, 287454020u);
  assert_string_equal(v->ssrcs[0].cname, "user2372353173@host-7e812cd4");
  assert_string_equal(v->ssrcs[0].msid, "user2372353173@host-7e812cd4 webrtctransceiver0");
  assert_int_equal(v->candidate_count, 3);
  assert_string_equal(v->candidates[0].transport, "UDP");
  assert_int_equal(v->candidates[0].port, 56822);
  assert_string_equal(v->candidates[2].tcptype, "passive");

  assert_int_equal(a->port, 0);
  assert_true(a->bundle_only);
  assert_string_equal(a->payloads[0].name, "OPUS");
  assert_int_equal(a->payloads[0].channels, 2);
  assert_string_equal(a->payloads[0].fmtp, "sprop-stereo=0;sprop-maxcapturerate=48000");
  assert_int_equal(a->ssrcs[0].ssrc, 1432778632u);
  assert_int_equal(a->candidate_count, 0);
  free(s);
}

static void test_parse_simulcast_and_session_level(void **state) {
  mf_sdp_t *s = parse_ok(SIMULCAST_OFFER);
  const mf_sdp_media_t *v = &s->media[0];
  /* session-level ICE and DTLS apply to the section */
  assert_string_equal(s->transport.ice_ufrag, "sess");
  assert_string_equal(v->transport.ice_ufrag, "sess");
  assert_string_equal(v->transport.ice_pwd, "sessionpasswordsessionpw");
  assert_string_equal(v->transport.fingerprint_alg, "sha-256");
  assert_int_equal(v->transport.setup, MF_SDP_SETUP_ACTPASS);
  assert_string_equal(s->msid_semantic, "WMS *");
  assert_int_equal(v->rid_count, 3);
  assert_string_equal(v->rids[1].id, "h");
  assert_int_equal(v->rids[1].direction, MF_SDP_RID_SEND);
  assert_string_equal(v->rids[1].params, "max-width=640;max-height=360");
  assert_string_equal(v->rids[2].params, "");
  assert_string_equal(v->simulcast_send, "f;h;~q");
  assert_string_equal(v->simulcast_recv, "");
  assert_int_equal(v->extmaps[1].direction, MF_SDP_DIR_SENDONLY);
  assert_int_equal(v->extmaps[1].id, 10);
  /* a=rtcp-fb:* reaches every payload, after its own entries */
  assert_int_equal(payload(v, 96)->fb_count, 2);
  assert_string_equal(payload(v, 96)->fb[0].param, "pli");
  assert_string_equal(payload(v, 96)->fb[1].type, "nack");
  assert_int_equal(payload(v, 97)->fb_count, 1);
  free(s);
}

static void test_media_level_wins(void **state) {
  const char *text =
      "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nc=IN IP4 10.0.0.1\r\n"
      "a=ice-ufrag:S1\r\na=ice-pwd:session-password-xxxxxxxx\r\na=setup:active\r\n"
      "a=fingerprint:sha-1 00:11\r\na=inactive\r\n"
      "m=audio 9 RTP/SAVPF 0\r\na=ice-ufrag:M1\r\na=setup:passive\r\na=fingerprint:sha-256 AA:BB\r\n"
      "a=fingerprint:sha-512 CC:DD\r\na=recvonly\r\n"
      "m=audio 9 RTP/SAVPF 0\r\nc=IN IP6 ::1\r\n";
  mf_sdp_t *s = parse_ok(text);
  const mf_sdp_transport_t *t0 = &s->media[0].transport, *t1 = &s->media[1].transport;
  assert_string_equal(t0->ice_ufrag, "M1");
  assert_string_equal(t0->ice_pwd, "session-password-xxxxxxxx");
  assert_int_equal(t0->setup, MF_SDP_SETUP_PASSIVE);
  assert_string_equal(t0->fingerprint_alg, "sha-256"); /* the first one is kept */
  assert_string_equal(t0->fingerprint, "AA:BB");
  assert_string_equal(t1->ice_ufrag, "S1");
  assert_int_equal(t1->setup, MF_SDP_SETUP_ACTIVE);
  assert_string_equal(t1->fingerprint_alg, "sha-1");
  assert_int_equal(s->media[0].direction, MF_SDP_DIR_RECVONLY);
  assert_int_equal(s->media[1].direction, MF_SDP_DIR_INACTIVE);
  assert_string_equal(s->media[0].connection, "10.0.0.1");
  assert_string_equal(s->media[1].connection, "::1");
  assert_string_equal(s->media[0].payloads[0].name, "PCMU");
  free(s);
}

static void test_lf_equals_crlf_and_unknown_lines_ignored(void **state) {
  char *lf = strdup(CHROME_OFFER);
  size_t j = 0;
  for (size_t i = 0; lf[i]; i++)
    if (lf[i] != '\r') lf[j++] = lf[i];
  lf[j] = '\0';
  mf_sdp_t *a = parse_ok(CHROME_OFFER);
  mf_sdp_t *b = parse_ok(lf);
  assert_sdp_equal(a, b);
  free(lf);

  const char *extra =
      "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=x\r\ni=info\r\nu=http://x\r\nt=0 0\r\nr=1 2 3\r\n"
      "a=foo\r\na=bar:baz\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nb=AS:100\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
      "a=rtpmap:96 VP8/90000\r\na=rtpmap:100 H264/90000\r\na=fmtp:101 x=1\r\n"
      "a=rtcp-fb:102 nack\r\na=x-google-flag:conference\r\n\r\n";
  mf_sdp_t *c = parse_ok(extra);
  assert_int_equal(c->media_count, 1);
  assert_int_equal(c->media[0].payload_count, 1); /* rtpmap for an unlisted pt is ignored */
  free(a);
  free(b);
  free(c);
}

/* ---------------------------------------------------------------- round trip */

static void round_trip(const char *text) {
  mf_sdp_t *a = parse_ok(text);
  size_t len;
  char *out = write_ok(a, &len);
  assert_memory_equal(out, "v=0\r\n", 5);
  /* every line ends in CRLF, and no bare CR or LF appears */
  for (size_t i = 0; i < len; i++) {
    if (out[i] == '\n') assert_true(i > 0 && out[i - 1] == '\r');
    if (out[i] == '\r') assert_true(i + 1 < len && out[i + 1] == '\n');
  }
  assert_int_equal(out[len - 1], '\n');
  assert_non_null(strstr(out, "\r\ns=-\r\nt=0 0\r\n"));
  mf_sdp_t *b = new_sdp();
  mf_err_t err = mf_sdp_parse(out, len, b);
  if (err) fail_msg("reparse: %s\n%s", b->error, out);
  assert_sdp_equal(a, b);
  /* writing the reparsed description gives the same bytes */
  char *out2 = write_ok(b, NULL);
  assert_string_equal(out, out2);
  free(out);
  free(out2);
  free(a);
  free(b);
}

static void test_round_trip(void **state) {
  round_trip(CHROME_OFFER);
  round_trip(GST_OFFER);
  round_trip(SIMULCAST_OFFER);
}

static void test_write_layout(void **state) {
  mf_sdp_t *s = parse_ok(GST_OFFER);
  char *out = write_ok(s, NULL);
  assert_non_null(strstr(out, "a=group:BUNDLE video0 audio1\r\n"));
  assert_non_null(strstr(out, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n"));
  assert_non_null(strstr(out, "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\n"));
  assert_non_null(strstr(out, "a=bundle-only\r\n"));
  assert_non_null(strstr(out, "a=rtpmap:111 OPUS/48000/2\r\n"));
  assert_non_null(strstr(out, "a=candidate:3 1 TCP 1010828287 127.0.0.1 36409 typ host tcptype passive\r\n"));
  assert_non_null(strstr(out, "a=ssrc:287454020 cname:user2372353173@host-7e812cd4\r\n"));
  assert_null(strstr(out, "framerate")); /* unknown attributes are not carried */
  free(out);
  free(s);

  s = parse_ok(CHROME_OFFER);
  out = write_ok(s, NULL);
  assert_non_null(strstr(out, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"));
  assert_non_null(strstr(out, "a=msid-semantic: WMS 6b5ec0d4"));
  assert_non_null(strstr(out, "a=sctp-port:5000\r\na=max-message-size:262144\r\n"));
  assert_non_null(strstr(out, "c=IN IP4 127.0.0.1\r\n"));
  assert_non_null(strstr(out, "a=ssrc-group:FID 1591290226 2760135573\r\n"));
  free(out);
  free(s);
}

static void test_write_errors(void **state) {
  mf_sdp_t *s = parse_ok(GST_OFFER);
  size_t need;
  char *full = write_ok(s, &need);
  char *buf = malloc(need + 1);
  size_t len = 99;
  /* every capacity short of len+1 fails cleanly with an empty string */
  for (size_t cap = 1; cap <= need; cap++) {
    assert_int_equal(mf_sdp_write(s, buf, cap, &len), MF_ERR_LIMIT);
    assert_int_equal(len, 0);
    assert_int_equal(buf[0], '\0');
  }
  assert_int_equal(mf_sdp_write(s, buf, need + 1, &len), MF_OK);
  assert_int_equal(len, need);
  assert_string_equal(buf, full);
  assert_int_equal(mf_sdp_write(s, buf, 0, &len), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sdp_write(NULL, buf, need, &len), MF_ERR_INVALID_ARG);
  free(buf);
  free(full);

  char out[8192];
  /* a value with CR/LF would inject lines: refused */
  snprintf(s->media[0].mid, sizeof s->media[0].mid, "x\r\na=evil");
  assert_int_equal(mf_sdp_write(s, out, sizeof out, NULL), MF_ERR_INVALID_ARG);
  snprintf(s->media[0].mid, sizeof s->media[0].mid, "video0");
  snprintf(s->media[1].ssrcs[0].cname, sizeof s->media[1].ssrcs[0].cname, "a\nb");
  assert_int_equal(mf_sdp_write(s, out, sizeof out, NULL), MF_ERR_INVALID_ARG);
  snprintf(s->media[1].ssrcs[0].cname, sizeof s->media[1].ssrcs[0].cname, "c");
  /* counts beyond the arrays are refused, not read */
  s->media[0].payload_count = MF_SDP_MAX_PAYLOADS + 1;
  assert_int_equal(mf_sdp_write(s, out, sizeof out, NULL), MF_ERR_INVALID_ARG);
  s->media[0].payload_count = 1;
  s->media[0].payloads[0].fb_count = MF_SDP_MAX_RTCP_FB + 1;
  assert_int_equal(mf_sdp_write(s, out, sizeof out, NULL), MF_ERR_INVALID_ARG);
  s->media[0].payloads[0].fb_count = 0;
  s->media_count = MF_SDP_MAX_MEDIA + 1;
  assert_int_equal(mf_sdp_write(s, out, sizeof out, NULL), MF_ERR_INVALID_ARG);
  s->media_count = 2;
  /* strings without a NUL are read only up to their array size */
  memset(s->media[0].mid, 'm', sizeof s->media[0].mid);
  memset(s->media[0].transport.ice_ufrag, 'u', sizeof s->media[0].transport.ice_ufrag);
  assert_int_equal(mf_sdp_write(s, out, sizeof out, NULL), MF_OK);
  char expect[MF_SDP_TOKEN_LEN + 16];
  snprintf(expect, sizeof expect, "a=mid:%.*s\r\n", MF_SDP_TOKEN_LEN,
           "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm");
  assert_non_null(strstr(out, expect));
  /* no payload and no fmt: no valid m= line */
  s->media[1].payload_count = 0;
  s->media[1].fmt[0] = '\0';
  assert_int_equal(mf_sdp_write(s, out, sizeof out, NULL), MF_ERR_INVALID_ARG);
  free(s);
}

/* ---------------------------------------------------------------- answers */

static const char *const CODECS[] = {"opus", "VP8", "rtx"};

static mf_sdp_candidate_t host_candidate(void) {
  mf_sdp_candidate_t c;
  memset(&c, 0, sizeof c);
  snprintf(c.foundation, sizeof c.foundation, "udpcandidate");
  c.component = 1;
  snprintf(c.transport, sizeof c.transport, "udp");
  c.priority = 2113937151u;
  snprintf(c.address, sizeof c.address, "127.0.0.1");
  c.port = 40000;
  snprintf(c.type, sizeof c.type, "host");
  return c;
}

static mf_sdp_local_t sfu_local(const mf_sdp_candidate_t *cand) {
  mf_sdp_local_t l;
  memset(&l, 0, sizeof l);
  l.ice_ufrag = "sfuufrag";
  l.ice_pwd = "sfupasswordsfupassword";
  l.ice_lite = true;
  l.fingerprint_alg = "sha-256";
  l.fingerprint = "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:"
                  "67:89:AB:CD:EF";
  l.setup = MF_SDP_SETUP_PASSIVE;
  l.candidates = cand;
  l.candidate_count = 1;
  l.codecs = CODECS;
  l.codec_count = 3;
  l.accept_data = true;
  l.session_id = 123456789;
  l.session_version = 2;
  return l;
}

static void check_answer_round_trip(const mf_sdp_t *answer) {
  size_t len;
  char *text = write_ok(answer, &len);
  mf_sdp_t *back = new_sdp();
  mf_err_t err = mf_sdp_parse(text, len, back);
  if (err) fail_msg("answer reparse: %s\n%s", back->error, text);
  assert_sdp_equal(answer, back);
  free(back);
  free(text);
}

static void test_answer_chrome(void **state) {
  mf_sdp_t *offer = parse_ok(CHROME_OFFER);
  mf_sdp_t *ans = new_sdp();
  mf_sdp_candidate_t cand = host_candidate();
  mf_sdp_local_t local = sfu_local(&cand);
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_OK);

  assert_true(ans->ice_lite);
  assert_string_equal(ans->session_id, "123456789");
  assert_int_equal(ans->media_count, 3);
  assert_int_equal(ans->bundle_count, 3);
  assert_string_equal(ans->bundle_mids[0], "0");
  assert_string_equal(ans->bundle_mids[2], "2");

  const mf_sdp_media_t *a = &ans->media[0];
  assert_int_equal(a->kind, MF_SDP_KIND_AUDIO);
  assert_string_equal(a->mid, "0");
  assert_int_equal(a->direction, MF_SDP_DIR_RECVONLY);
  assert_int_equal(a->payload_count, 1); /* red, G722, PCMU... not accepted */
  assert_int_equal(a->payloads[0].pt, 111);
  assert_string_equal(a->payloads[0].fmtp, "minptime=10;useinbandfec=1");
  assert_int_equal(a->payloads[0].fb_count, 1);
  assert_int_equal(a->extmap_count, 4);
  assert_true(a->rtcp_mux);
  assert_true(a->rtcp_rsize);
  assert_string_equal(a->transport.ice_ufrag, "sfuufrag");
  assert_string_equal(a->transport.fingerprint_alg, "sha-256");
  assert_int_equal(a->transport.setup, MF_SDP_SETUP_PASSIVE);
  assert_int_equal(a->candidate_count, 1);
  assert_string_equal(a->candidates[0].address, "127.0.0.1");
  assert_true(a->end_of_candidates);
  assert_int_equal(a->port, 40000);
  assert_string_equal(a->connection, "127.0.0.1");
  assert_int_equal(a->ssrc_count, 0);
  assert_string_equal(a->msid, "");

  const mf_sdp_media_t *v = &ans->media[1];
  assert_int_equal(v->direction, MF_SDP_DIR_RECVONLY);
  /* VP8 and its RTX only: the other rtx payloads point at rejected codecs */
  assert_int_equal(v->payload_count, 2);
  assert_int_equal(v->payloads[0].pt, 96);
  assert_int_equal(v->payloads[0].fb_count, 5);
  assert_int_equal(v->payloads[1].pt, 97);
  assert_string_equal(v->payloads[1].fmtp, "apt=96");
  assert_int_equal(v->extmap_count, 11);
  assert_int_equal(v->ssrc_group_count, 0);

  const mf_sdp_media_t *d = &ans->media[2];
  assert_int_equal(d->kind, MF_SDP_KIND_APPLICATION);
  assert_string_equal(d->fmt, "webrtc-datachannel");
  assert_int_equal(d->sctp_port, 5000);
  assert_int_equal(d->max_message_size, 262144);
  assert_int_equal(d->port, 40000);
  check_answer_round_trip(ans);

  size_t len;
  char *text = write_ok(ans, &len);
  assert_non_null(strstr(text, "a=ice-lite\r\n"));
  assert_non_null(strstr(text, "a=group:BUNDLE 0 1 2\r\n"));
  assert_non_null(strstr(text, "m=video 40000 UDP/TLS/RTP/SAVPF 96 97\r\n"));
  assert_non_null(strstr(text, "a=setup:passive\r\n"));
  assert_non_null(strstr(text, "a=candidate:udpcandidate 1 udp 2113937151 127.0.0.1 40000 typ host\r\n"));
  assert_non_null(strstr(text, "a=end-of-candidates\r\n"));
  free(text);

  /* active role; data refused; a narrower extmap list */
  static const char *const uris[] = {"urn:ietf:params:rtp-hdrext:sdes:mid"};
  local.setup = MF_SDP_SETUP_ACTIVE;
  local.accept_data = false;
  local.extmap_uris = uris;
  local.extmap_uri_count = 1;
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_OK);
  assert_int_equal(ans->media[0].transport.setup, MF_SDP_SETUP_ACTIVE);
  assert_int_equal(ans->media[0].extmap_count, 1);
  assert_int_equal(ans->media[0].extmaps[0].id, 4);
  assert_int_equal(ans->media[2].port, 0);
  assert_int_equal(ans->bundle_count, 2);
  assert_int_equal(ans->media[2].candidate_count, 0);
  assert_string_equal(ans->media[2].transport.ice_ufrag, "");
  check_answer_round_trip(ans);
  free(ans);
  free(offer);
}

static void test_answer_gst(void **state) {
  mf_sdp_t *offer = parse_ok(GST_OFFER);
  mf_sdp_t *ans = new_sdp();
  mf_sdp_candidate_t cand = host_candidate();
  mf_sdp_local_t local = sfu_local(&cand);
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_OK);
  /* bundle-only with port 0 is accepted */
  assert_int_equal(ans->bundle_count, 2);
  assert_string_equal(ans->bundle_mids[0], "video0");
  assert_int_equal(ans->media[1].port, 40000);
  assert_false(ans->media[1].bundle_only);
  assert_string_equal(ans->media[1].payloads[0].name, "OPUS"); /* names match case-blind */
  assert_int_equal(ans->media[0].direction, MF_SDP_DIR_RECVONLY);
  assert_int_equal(ans->media[1].direction, MF_SDP_DIR_RECVONLY);
  check_answer_round_trip(ans);
  free(ans);
  free(offer);
}

static mf_sdp_t *one_section_offer(const char *direction, const char *setup) {
  char text[1024];
  snprintf(text, sizeof text,
           "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE m\r\n"
           "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:m\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\n"
           "a=fingerprint:sha-256 AA\r\n%s%s%s%s%s\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n"
           "a=extmap:3/sendonly urn:x\r\n",
           setup[0] ? "a=setup:" : "", setup, setup[0] ? "\r\n" : "", direction[0] ? "a=" : "a=x-",
           direction[0] ? direction : "none");
  return parse_ok(text);
}

static void test_answer_direction_and_setup_table(void **state) {
  static const struct {
    const char *offered;
    mf_sdp_direction_t sendrecv_answer;
    mf_sdp_direction_t expect;
  } dirs[] = {
      {"sendonly", MF_SDP_DIR_UNSET, MF_SDP_DIR_RECVONLY},
      {"recvonly", MF_SDP_DIR_UNSET, MF_SDP_DIR_SENDONLY},
      {"sendrecv", MF_SDP_DIR_UNSET, MF_SDP_DIR_SENDRECV},
      {"sendrecv", MF_SDP_DIR_RECVONLY, MF_SDP_DIR_RECVONLY},
      {"inactive", MF_SDP_DIR_UNSET, MF_SDP_DIR_INACTIVE},
      {"", MF_SDP_DIR_UNSET, MF_SDP_DIR_SENDRECV}, /* none written: sendrecv */
  };
  mf_sdp_candidate_t cand = host_candidate();
  mf_sdp_t *ans = new_sdp();
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    mf_sdp_t *offer = one_section_offer(dirs[i].offered, "actpass");
    mf_sdp_local_t local = sfu_local(&cand);
    local.sendrecv_answer = dirs[i].sendrecv_answer;
    assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_OK);
    assert_int_equal(ans->media[0].direction, dirs[i].expect);
    /* extmap directions flip too */
    assert_int_equal(ans->media[0].extmaps[0].direction, MF_SDP_DIR_RECVONLY);
    free(offer);
  }
  static const struct {
    const char *offered;
    mf_sdp_setup_t ours;
    mf_sdp_setup_t expect; /* NONE: section rejected */
  } setups[] = {
      {"actpass", MF_SDP_SETUP_PASSIVE, MF_SDP_SETUP_PASSIVE},
      {"actpass", MF_SDP_SETUP_ACTIVE, MF_SDP_SETUP_ACTIVE},
      {"active", MF_SDP_SETUP_ACTIVE, MF_SDP_SETUP_PASSIVE},
      {"passive", MF_SDP_SETUP_PASSIVE, MF_SDP_SETUP_ACTIVE},
      {"", MF_SDP_SETUP_ACTIVE, MF_SDP_SETUP_PASSIVE},
      {"holdconn", MF_SDP_SETUP_PASSIVE, MF_SDP_SETUP_NONE},
  };
  for (size_t i = 0; i < sizeof setups / sizeof setups[0]; i++) {
    mf_sdp_t *offer = one_section_offer("sendonly", setups[i].offered);
    mf_sdp_local_t local = sfu_local(&cand);
    local.setup = setups[i].ours;
    assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_OK);
    assert_int_equal(ans->media[0].transport.setup, setups[i].expect);
    if (setups[i].expect == MF_SDP_SETUP_NONE) assert_int_equal(ans->media[0].port, 0);
    free(offer);
  }
  free(ans);
}

static bool no_h264_mode0(const mf_sdp_media_t *m, const mf_sdp_payload_t *pl, void *ctx) {
  int *calls = ctx;
  (*calls)++;
  char mode[4];
  if (strcmp(pl->name, "H264") != 0) return true;
  return mf_sdp_fmtp_param(pl->fmtp, "packetization-mode", mode, sizeof mode) == MF_OK &&
         strcmp(mode, "1") == 0;
}

static void test_answer_filter_callback(void **state) {
  mf_sdp_t *offer = parse_ok(CHROME_OFFER);
  mf_sdp_t *ans = new_sdp();
  mf_sdp_candidate_t cand = host_candidate();
  mf_sdp_local_t local = sfu_local(&cand);
  static const char *const h264[] = {"H264", "rtx", "opus"};
  int calls = 0;
  local.codecs = h264;
  local.codec_count = 3;
  local.filter = no_h264_mode0;
  local.filter_ctx = &calls;
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_OK);
  assert_true(calls > 0);
  const mf_sdp_media_t *v = &ans->media[1];
  /* H264 packetization-mode=1: 102, 106, 127, 112 and their rtx 103, 107, 125, 113 */
  static const unsigned expect[] = {102, 103, 106, 107, 127, 125, 112, 113};
  assert_int_equal(v->payload_count, 8);
  for (size_t i = 0; i < 8; i++) assert_int_equal(v->payloads[i].pt, expect[i]);

  /* no name list: everything the filter allows, so all 25 */
  local.codecs = NULL;
  local.codec_count = 0;
  local.filter = NULL;
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_OK);
  assert_int_equal(ans->media[1].payload_count, 25);
  assert_int_equal(ans->media[0].payload_count, 8);
  free(ans);
  free(offer);
}

static void test_answer_simulcast(void **state) {
  mf_sdp_t *offer = parse_ok(SIMULCAST_OFFER);
  mf_sdp_t *ans = new_sdp();
  mf_sdp_candidate_t cand = host_candidate();
  mf_sdp_local_t local = sfu_local(&cand);
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_OK);
  const mf_sdp_media_t *v = &ans->media[0];
  assert_int_equal(v->rid_count, 3);
  assert_int_equal(v->rids[0].direction, MF_SDP_RID_RECV);
  assert_string_equal(v->rids[1].params, "max-width=640;max-height=360");
  assert_string_equal(v->simulcast_recv, "f;h;~q");
  assert_string_equal(v->simulcast_send, "");
  char *text = write_ok(ans, NULL);
  assert_non_null(strstr(text, "a=rid:h recv max-width=640;max-height=360\r\n"));
  assert_non_null(strstr(text, "a=simulcast:recv f;h;~q\r\n"));
  free(text);
  check_answer_round_trip(ans);
  free(ans);
  free(offer);
}

static void test_answer_rejections(void **state) {
  mf_sdp_candidate_t cand = host_candidate();
  mf_sdp_local_t local = sfu_local(&cand);
  mf_sdp_t *ans = new_sdp();
  const char *head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
  char text[2048];

  /* outside the BUNDLE group, port 0 without bundle-only, plain RTP/AVP, no codec, unknown kind */
  snprintf(text, sizeof text,
           "%sa=group:BUNDLE a b c d e\r\na=setup:actpass\r\n"
           "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a\r\na=rtpmap:111 opus/48000/2\r\n"
           "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:z\r\na=rtpmap:111 opus/48000/2\r\n"
           "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=mid:b\r\na=rtpmap:111 opus/48000/2\r\n"
           "m=audio 9 RTP/AVP 0\r\na=mid:c\r\n"
           "m=video 9 UDP/TLS/RTP/SAVPF 100 101\r\na=mid:d\r\na=rtpmap:100 H265/90000\r\n"
           "a=rtcp-fb:100 nack\r\na=fmtp:100 x=y\r\na=rtpmap:101 rtx/90000\r\na=fmtp:101 apt=100\r\n"
           "m=text 9 UDP/TLS/RTP/SAVPF 98\r\na=mid:e\r\na=rtpmap:98 t140/1000\r\n",
           head);
  mf_sdp_t *offer = parse_ok(text);
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_OK);
  assert_int_equal(ans->media_count, 6);
  assert_int_equal(ans->bundle_count, 1);
  assert_string_equal(ans->bundle_mids[0], "a");
  assert_int_equal(ans->media[0].port, 40000);
  for (size_t i = 1; i < 6; i++) {
    const mf_sdp_media_t *m = &ans->media[i];
    assert_int_equal(m->port, 0);
    assert_int_equal(m->direction, MF_SDP_DIR_INACTIVE);
    assert_int_equal(m->candidate_count, 0);
    assert_string_equal(m->transport.ice_ufrag, "");
    assert_string_equal(m->mid, offer->media[i].mid);
    assert_int_equal(m->payload_count, 1); /* an m= line needs a format */
    assert_int_equal(m->payloads[0].fb_count, 0);
    assert_string_equal(m->payloads[0].fmtp, "");
  }
  assert_string_equal(ans->media[5].kind_name, "text");
  assert_int_equal(ans->media[5].kind, MF_SDP_KIND_OTHER);
  char *out = write_ok(ans, NULL);
  assert_non_null(strstr(out, "m=text 0 UDP/TLS/RTP/SAVPF 98\r\n"));
  assert_non_null(strstr(out, "m=video 0 UDP/TLS/RTP/SAVPF 100\r\n"));
  free(out);
  check_answer_round_trip(ans);
  free(offer);

  /* no BUNDLE group: only the first section can share the one transport */
  snprintf(text, sizeof text,
           "%sm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
           "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n",
           head);
  offer = parse_ok(text);
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_OK);
  assert_int_equal(ans->bundle_count, 0);
  assert_int_equal(ans->media[0].port, 40000);
  assert_int_equal(ans->media[1].port, 0);
  out = write_ok(ans, NULL);
  assert_null(strstr(out, "a=group"));
  free(out);
  free(offer);

  /* without candidates: port 9 and 0.0.0.0 */
  offer = parse_ok(GST_OFFER);
  local.candidate_count = 0;
  local.candidates = NULL;
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_OK);
  assert_int_equal(ans->media[0].port, 9);
  assert_false(ans->media[0].end_of_candidates);
  out = write_ok(ans, NULL);
  assert_non_null(strstr(out, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n"));
  free(out);
  free(offer);
  free(ans);
}

static void test_answer_invalid_args(void **state) {
  mf_sdp_t *offer = parse_ok(GST_OFFER);
  mf_sdp_t *ans = new_sdp();
  mf_sdp_candidate_t cand = host_candidate();
  mf_sdp_local_t local = sfu_local(&cand);
  char long_pwd[400];
  memset(long_pwd, 'p', sizeof long_pwd - 1);
  long_pwd[sizeof long_pwd - 1] = '\0';

  local.ice_ufrag = NULL;
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_ERR_INVALID_ARG);
  local = sfu_local(&cand);
  local.ice_pwd = "";
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_ERR_INVALID_ARG);
  local = sfu_local(&cand);
  local.ice_pwd = long_pwd;
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_ERR_INVALID_ARG);
  local = sfu_local(&cand);
  local.fingerprint = NULL;
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_ERR_INVALID_ARG);
  local = sfu_local(&cand);
  local.setup = MF_SDP_SETUP_ACTPASS; /* an answer must pick a role */
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_ERR_INVALID_ARG);
  local = sfu_local(&cand);
  local.candidate_count = MF_SDP_MAX_CANDIDATES + 1;
  assert_int_equal(mf_sdp_make_answer(offer, &local, ans), MF_ERR_INVALID_ARG);
  local = sfu_local(&cand);
  assert_int_equal(mf_sdp_make_answer(offer, &local, offer), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sdp_make_answer(NULL, &local, ans), MF_ERR_INVALID_ARG);
  free(ans);
  free(offer);
}

/* ---------------------------------------------------------------- malformed input */

#define HEAD "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
#define VIDEO "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"

static void test_malformed_table(void **state) {
  static const struct {
    const char *text;
    mf_err_t err;
    unsigned line;
  } cases[] = {
      {"", MF_ERR_PARSE, 0},
      {"\r\n\r\n", MF_ERR_PARSE, 0},
      {"o=- 1 1 IN IP4 0.0.0.0\r\nv=0\r\n", MF_ERR_PARSE, 1},
      {"v=1\r\n", MF_ERR_PARSE, 1},
      {"v=0\r\nhello\r\n", MF_ERR_PARSE, 2},
      {"v=0\r\nA=x\r\n", MF_ERR_PARSE, 2},
      {"v=0\r\n=x\r\n", MF_ERR_PARSE, 2},
      {"v=0\r\ns=a\x01" "b\r\n", MF_ERR_PARSE, 2},
      {"v=0\r\ns=a\rb\r\n", MF_ERR_PARSE, 2},
      {"v=0\r\no=- 1 1\r\n", MF_ERR_PARSE, 2},
      {"v=0\r\no=- 1 x IN IP4 0.0.0.0\r\n", MF_ERR_PARSE, 2},
      {"v=0\r\nc=IN IP4\r\n", MF_ERR_PARSE, 2},
      {HEAD "m=video\r\n", MF_ERR_PARSE, 5},
      {HEAD "m=video 9\r\n", MF_ERR_PARSE, 5},
      {HEAD "m=video 9 UDP/TLS/RTP/SAVPF\r\n", MF_ERR_PARSE, 5},
      {HEAD "m=video 9 UDP/TLS/RTP/SAVPF   \r\n", MF_ERR_PARSE, 5},
      {HEAD "m=video abc UDP/TLS/RTP/SAVPF 96\r\n", MF_ERR_PARSE, 5},
      {HEAD "m=video -1 UDP/TLS/RTP/SAVPF 96\r\n", MF_ERR_PARSE, 5},
      {HEAD "m=video 65536 UDP/TLS/RTP/SAVPF 96\r\n", MF_ERR_PARSE, 5},
      {HEAD "m=video 99999999999999999999999 UDP/TLS/RTP/SAVPF 96\r\n", MF_ERR_PARSE, 5},
      {HEAD "m=video 9 UDP/TLS/RTP/SAVPF x96\r\n", MF_ERR_PARSE, 5},
      {HEAD "m=video 9 UDP/TLS/RTP/SAVPF 96 128\r\n", MF_ERR_PARSE, 5},
      {HEAD "m=video 9 UDP/TLS/RTP/SAVPF 96 96\r\n", MF_ERR_PARSE, 5},
      {HEAD "m=video 9 UDP/TLS/RTP/SAVPF 9.6\r\n", MF_ERR_PARSE, 5},
      {HEAD VIDEO "a=rtpmap:96 VP8\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=rtpmap:96 VP8/\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=rtpmap:96 VP8/abc\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=rtpmap:96 /90000\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=rtpmap:96 opus/48000/x\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=rtpmap:x96 VP8/90000\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=rtpmap:\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=rtpmap\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=fmtp:96\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=fmtp:200 x=1\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=rtcp-fb:96\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=rtcp-fb:abc nack\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=extmap:1\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=extmap:0 urn:x\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=extmap:256 urn:x\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=extmap:1/sideways urn:x\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=extmap:a urn:x\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=setup:maybe\r\n", MF_ERR_PARSE, 6},
      {"v=0\r\na=setup:\r\n", MF_ERR_PARSE, 2},
      {HEAD VIDEO "a=fingerprint:sha-256\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=ice-ufrag:\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=mid:   \r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=ssrc:abc cname:x\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=ssrc:4294967296 cname:x\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=ssrc:1\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=ssrc-group:FID\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=ssrc-group:FID 1 x\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=rid:f\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=rid:f sideways\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=simulcast:\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=simulcast:up f\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=simulcast:send\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=candidate:1 1 udp 100 1.2.3.4\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=candidate:1 1 udp 100 1.2.3.4 99999 typ host\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=candidate:1 0 udp 100 1.2.3.4 5 typ host\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=candidate:1 1 udp x 1.2.3.4 5 typ host\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=candidate:1 1 udp 100 1.2.3.4 5 type host\r\n", MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=candidate:1 1 udp 100 1.2.3.4 5 typ srflx raddr 0.0.0.0 rport x\r\n",
       MF_ERR_PARSE, 6},
      {HEAD "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=sctp-port:x\r\n",
       MF_ERR_PARSE, 6},
      {HEAD "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=max-message-size:\r\n",
       MF_ERR_PARSE, 6},
      {HEAD VIDEO "a=mid:a\r\n" VIDEO "a=mid:a\r\n", MF_ERR_PARSE, 0},
  };
  mf_sdp_t *s = new_sdp();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mf_err_t err = mf_sdp_parse(cases[i].text, strlen(cases[i].text), s);
    if (err != cases[i].err || s->error_line != cases[i].line)
      fail_msg("case %zu (%s): got %s line %u \"%s\"", i, cases[i].text, mf_err_name(err),
               s->error_line, s->error);
    assert_true(s->error[0] != '\0');
    if (cases[i].line) {
      char prefix[32];
      snprintf(prefix, sizeof prefix, "line %u: ", cases[i].line);
      assert_memory_equal(s->error, prefix, strlen(prefix));
    }
  }
  /* embedded NUL inside the given length */
  static const char nul[] = "v=0\r\ns=a\0b\r\n";
  assert_int_equal(mf_sdp_parse(nul, sizeof nul - 1, s), MF_ERR_PARSE);
  assert_int_equal(s->error_line, 2);
  assert_int_equal(mf_sdp_parse(NULL, 0, s), MF_ERR_PARSE);
  assert_int_equal(mf_sdp_parse(NULL, 5, s), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sdp_parse("v=0", 3, NULL), MF_ERR_INVALID_ARG);
  /* the minimum: v=0 alone, no newline */
  assert_int_equal(mf_sdp_parse("v=0", 3, s), MF_OK);
  assert_int_equal(s->media_count, 0);
  free(s);
}

static char *repeat(const char *piece, size_t times, const char *prefix, const char *suffix) {
  size_t n = strlen(prefix) + strlen(piece) * times + strlen(suffix) + 1;
  char *out = malloc(n);
  strcpy(out, prefix);
  for (size_t i = 0; i < times; i++) strcat(out, piece);
  strcat(out, suffix);
  return out;
}

static void expect_limit(const char *text, unsigned line) {
  mf_sdp_t *s = new_sdp();
  mf_err_t err = mf_sdp_parse(text, strlen(text), s);
  if (err != MF_ERR_LIMIT || s->error_line != line)
    fail_msg("expected LIMIT at line %u, got %s line %u \"%s\"", line, mf_err_name(err),
             s->error_line, s->error);
  free(s);
}

static void test_limits(void **state) {
  char *t;
  /* 16 sections fit, the 17th does not */
  t = repeat("m=audio 9 RTP/SAVPF 0\r\n", MF_SDP_MAX_MEDIA, HEAD, "");
  mf_sdp_t *s = parse_ok(t);
  assert_int_equal(s->media_count, MF_SDP_MAX_MEDIA);
  free(s);
  free(t);
  t = repeat("m=audio 9 RTP/SAVPF 0\r\n", MF_SDP_MAX_MEDIA + 1, HEAD, "");
  expect_limit(t, 4 + MF_SDP_MAX_MEDIA + 1);
  free(t);

  char line[1024];
  size_t n = (size_t)snprintf(line, sizeof line, "m=video 9 UDP/TLS/RTP/SAVPF");
  for (int pt = 0; pt <= MF_SDP_MAX_PAYLOADS; pt++)
    n += (size_t)snprintf(line + n, sizeof line - n, " %d", pt);
  t = repeat("", 0, HEAD, line);
  expect_limit(t, 5);
  free(t);

  char big[600];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  static const char *const overlong[] = {
      HEAD VIDEO "a=ice-ufrag:%.257s\r\n",   HEAD VIDEO "a=ice-pwd:%.300s\r\n",
      HEAD VIDEO "a=mid:%.64s\r\n",          HEAD VIDEO "a=fmtp:96 %.256s\r\n",
      HEAD VIDEO "a=fingerprint:sha-256 %.192s\r\n", HEAD VIDEO "a=extmap:1 %.128s\r\n",
      HEAD VIDEO "a=msid:%.128s\r\n",        HEAD VIDEO "a=ssrc:1 cname:%.64s\r\n",
      HEAD VIDEO "a=rtpmap:96 %.32s/90000\r\n", HEAD VIDEO "a=rtcp-fb:96 %.24s\r\n",
      HEAD VIDEO "a=candidate:1 1 udp 1 %.64s 1 typ host\r\n",
      HEAD VIDEO "a=simulcast:send %.128s\r\n", HEAD VIDEO "a=rid:%.32s send\r\n",
  };
  for (size_t i = 0; i < sizeof overlong / sizeof overlong[0]; i++) {
    char text[2048];
    snprintf(text, sizeof text, overlong[i], big);
    expect_limit(text, 6);
  }
  /* one byte less fits */
  char text[2048];
  snprintf(text, sizeof text, HEAD VIDEO "a=ice-ufrag:%.256s\r\na=mid:%.63s\r\n", big, big);
  s = parse_ok(text);
  assert_int_equal(strlen(s->media[0].transport.ice_ufrag), 256);
  free(s);
  snprintf(text, sizeof text, "v=0\r\na=group:BUNDLE %.64s\r\n", big);
  expect_limit(text, 2);
  snprintf(text, sizeof text, "v=0\r\no=- %.64s 1 IN IP4 0.0.0.0\r\n", big);
  expect_limit(text, 2);
  t = repeat(" m", MF_SDP_MAX_MEDIA + 1, "v=0\r\na=group:BUNDLE", "\r\n");
  expect_limit(t, 2);
  free(t);

  t = repeat("a=extmap:1 urn:x\r\n", MF_SDP_MAX_EXTMAPS + 1, HEAD VIDEO, "");
  expect_limit(t, 6 + MF_SDP_MAX_EXTMAPS);
  free(t);
  t = repeat("a=candidate:1 1 udp 1 1.2.3.4 1 typ host\r\n", MF_SDP_MAX_CANDIDATES + 1, HEAD VIDEO,
             "");
  expect_limit(t, 6 + MF_SDP_MAX_CANDIDATES);
  free(t);
  t = repeat("a=rtcp-fb:96 nack\r\n", MF_SDP_MAX_RTCP_FB + 1, HEAD VIDEO, "");
  expect_limit(t, 6 + MF_SDP_MAX_RTCP_FB);
  free(t);
  t = repeat("a=rid:r send\r\n", MF_SDP_MAX_RIDS + 1, HEAD VIDEO, "");
  expect_limit(t, 6 + MF_SDP_MAX_RIDS);
  free(t);
  t = repeat("a=ssrc-group:FID 1\r\n", MF_SDP_MAX_SSRC_GROUPS + 1, HEAD VIDEO, "");
  expect_limit(t, 6 + MF_SDP_MAX_SSRC_GROUPS);
  free(t);
  t = repeat(" 1", MF_SDP_MAX_GROUP_SSRCS + 1, HEAD VIDEO "a=ssrc-group:SIM", "\r\n");
  expect_limit(t, 6);
  free(t);
  /* distinct ssrcs overflow; repeated lines for one ssrc merge */
  s = parse_ok(HEAD VIDEO "a=ssrc:1 cname:a\r\na=ssrc:1 msid:s t\r\na=ssrc:1 mslabel:s\r\n");
  assert_int_equal(s->media[0].ssrc_count, 1);
  assert_string_equal(s->media[0].ssrcs[0].msid, "s t");
  free(s);
  n = (size_t)snprintf(text, sizeof text, HEAD VIDEO);
  for (int i = 0; i <= MF_SDP_MAX_SSRCS; i++)
    n += (size_t)snprintf(text + n, sizeof text - n, "a=ssrc:%d cname:c\r\n", i + 1);
  expect_limit(text, 6 + MF_SDP_MAX_SSRCS);
  /* wildcard feedback that would overflow a payload is reported at its m= line */
  t = repeat("a=rtcp-fb:* nack\r\n", 4, HEAD VIDEO "a=rtcp-fb:96 a\r\na=rtcp-fb:96 b\r\n"
                                                  "a=rtcp-fb:96 c\r\na=rtcp-fb:96 d\r\na=rtcp-fb:96 e\r\n",
             "");
  expect_limit(t, 5);
  free(t);
}

/* Every prefix of real offers, as an exact-size heap copy: parse must return OK or an
 * error, never read past the end (ASan), and on success the writer must work. */
static void test_truncations_stay_in_bounds(void **state) {
  const char *texts[] = {CHROME_OFFER, GST_OFFER, SIMULCAST_OFFER};
  mf_sdp_t *s = new_sdp();
  size_t cap = 256 * 1024;
  char *out = malloc(cap);
  for (size_t t = 0; t < 3; t++) {
    size_t len = strlen(texts[t]);
    for (size_t cut = 0; cut <= len; cut++) {
      char *copy = malloc(cut ? cut : 1);
      memcpy(copy, texts[t], cut);
      mf_err_t err = mf_sdp_parse(copy, cut, s);
      assert_true(err == MF_OK || err == MF_ERR_PARSE || err == MF_ERR_LIMIT);
      if (err == MF_OK) assert_int_equal(mf_sdp_write(s, out, cap, NULL), MF_OK);
      free(copy);
    }
  }
  free(out);
  free(s);
}

static void test_fmtp_param(void **state) {
  static const struct {
    const char *fmtp, *key, *value;
    mf_err_t err;
  } cases[] = {
      {"apt=96", "apt", "96", MF_OK},
      {"minptime=10;useinbandfec=1", "useinbandfec", "1", MF_OK},
      {"a=1; b = 2 ;c=3", "b", "2", MF_OK},
      {"Profile-Level-Id=42e01f", "profile-level-id", "42e01f", MF_OK},
      {"x=1", "y", NULL, MF_ERR_NOT_FOUND},
      {"", "apt", NULL, MF_ERR_NOT_FOUND},
      {"apt", "apt", NULL, MF_ERR_NOT_FOUND},
      {";;apt=;", "apt", "", MF_OK},
      {"apt=1234567890", "apt", NULL, MF_ERR_LIMIT},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char out[8] = "unset";
    mf_err_t err = mf_sdp_fmtp_param(cases[i].fmtp, cases[i].key, out, sizeof out);
    assert_int_equal(err, cases[i].err);
    if (cases[i].value) assert_string_equal(out, cases[i].value);
  }
  char out[4];
  assert_int_equal(mf_sdp_fmtp_param(NULL, "a", out, sizeof out), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_sdp_fmtp_param("a=1", "a", out, 0), MF_ERR_INVALID_ARG);
}

static void test_helpers(void **state) {
  mf_sdp_t *s = parse_ok(CHROME_OFFER);
  assert_int_equal(mf_sdp_find_mid(s, "1"), 1);
  assert_int_equal(mf_sdp_find_mid(s, "7"), -1);
  assert_int_equal(mf_sdp_find_mid(s, ""), -1);
  free(s);
  assert_string_equal(mf_sdp_direction_name(MF_SDP_DIR_RECVONLY), "recvonly");
  assert_string_equal(mf_sdp_direction_name(MF_SDP_DIR_UNSET), "");
  assert_string_equal(mf_sdp_setup_name(MF_SDP_SETUP_HOLDCONN), "holdconn");
  assert_int_equal(mf_sdp_direction_reverse(MF_SDP_DIR_SENDONLY), MF_SDP_DIR_RECVONLY);
  assert_int_equal(mf_sdp_direction_reverse(MF_SDP_DIR_INACTIVE), MF_SDP_DIR_INACTIVE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_chrome_offer),
      cmocka_unit_test(test_parse_gst_offer),
      cmocka_unit_test(test_parse_simulcast_and_session_level),
      cmocka_unit_test(test_media_level_wins),
      cmocka_unit_test(test_lf_equals_crlf_and_unknown_lines_ignored),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_write_layout),
      cmocka_unit_test(test_write_errors),
      cmocka_unit_test(test_answer_chrome),
      cmocka_unit_test(test_answer_gst),
      cmocka_unit_test(test_answer_direction_and_setup_table),
      cmocka_unit_test(test_answer_filter_callback),
      cmocka_unit_test(test_answer_simulcast),
      cmocka_unit_test(test_answer_rejections),
      cmocka_unit_test(test_answer_invalid_args),
      cmocka_unit_test(test_malformed_table),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_truncations_stay_in_bounds),
      cmocka_unit_test(test_fmtp_param),
      cmocka_unit_test(test_helpers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
