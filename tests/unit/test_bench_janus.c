/* Tests for the pure parts of mafalda-bench's Janus side (issue 10, --sfu janus|both):
 * tests/bench/gen_janus_sdp.h (Janus's SDP parsed: a real Janus 1.1.2 answer, a subscriber
 * offer with RTX groups, LF-only lines, rejected and application m-sections; a table of
 * malformed input each refused with its error; the bench peer's offer and answer written
 * and parsed back; writer errors) and tests/bench/janus_sfu.h (the jcfg files' text, bad
 * configurations, the files on disk, the PATH lookup). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/bench/gen_janus_sdp.h"
#include "tests/bench/janus_sfu.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define FP "3D:7C:55:8E:7E:40:6D:EA:40:D2:11:A2:03:38:8F:99:2A:82:45:AF:49:18:AB:5A:89:60:96:CA:37:C8:4C:D8"

/* Janus 1.1.2's answer to a publisher offer, as captured on this machine. */
static const char janus_answer[] =
    "v=0\r\no=- 1 2 IN IP4 192.0.2.2\r\ns=VideoRoom 777\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "a=ice-options:trickle\r\na=fingerprint:sha-256 " FP "\r\n"
    "a=extmap-allow-mixed\r\na=msid-semantic: WMS *\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 192.0.2.2\r\na=recvonly\r\na=mid:0\r\n"
    "a=rtcp-mux\r\na=ice-ufrag:YX+N\r\na=ice-pwd:6FPg6khkgkKOAmFyiuiL5E\r\n"
    "a=ice-options:trickle\r\na=setup:passive\r\na=rtpmap:96 VP8/90000\r\n"
    "a=rtcp-fb:96 ccm fir\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n"
    "a=rtcp-fb:96 goog-remb\r\na=rtcp-fb:96 transport-cc\r\na=msid:janus janus0\r\n"
    "a=ssrc:186585871 cname:janus\r\na=candidate:1 1 udp 2015363583 127.0.0.1 41921 typ host\r\n"
    "a=end-of-candidates\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 192.0.2.2\r\n"
    "a=recvonly\r\na=mid:1\r\na=rtcp-mux\r\na=ice-ufrag:YX+N\r\na=ice-pwd:6FPg6khkgkKOAmFyiuiL5E\r\n"
    "a=ice-options:trickle\r\na=setup:passive\r\na=rtpmap:111 opus/48000/2\r\n"
    "a=msid:janus janus1\r\na=ssrc:119323235 cname:janus\r\n"
    "a=candidate:1 1 udp 2015363583 127.0.0.1 41921 typ host\r\na=end-of-candidates\r\n";

/* A subscriber offer: session-level ICE, RTX with an FID group, a TCP and an IPv6 candidate
 * before the usable one, a rejected video and a data channel. */
static const char sub_offer[] =
    "v=0\r\no=- 5 6 IN IP4 127.0.0.1\r\ns=VideoRoom 1000\r\nt=0 0\r\n"
    "a=group:BUNDLE 0 1 3\r\na=ice-ufrag:Ab12\r\na=ice-pwd:0123456789abcdefghijkl\r\n"
    "a=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33\r\n"
    "a=fingerprint:sha-256 " FP "\r\na=setup:actpass\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 100 101\r\nc=IN IP4 127.0.0.1\r\na=sendonly\r\na=mid:0\r\n"
    "a=rtpmap:100 VP8/90000\r\na=rtpmap:101 rtx/90000\r\na=fmtp:101 apt=100\r\n"
    "a=ssrc-group:FID 3000 3001\r\na=ssrc:3000 cname:janus\r\na=ssrc:3001 cname:janus\r\n"
    "a=candidate:1 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active\r\n"
    "a=candidate:2 1 udp 2015363583 ::1 40000 typ host\r\n"
    "a=candidate:3 1 udp 2015363583 127.0.0.1 40002 typ host\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 109\r\nc=IN IP4 127.0.0.1\r\na=sendonly\r\na=mid:1\r\n"
    "a=rtpmap:109 opus/48000/2\r\na=ssrc:4000 cname:janus\r\n"
    "m=video 0 UDP/TLS/RTP/SAVPF 0\r\na=mid:2\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:3\r\n";

static void test_parse_janus_answer(void **state) {
  (void)state;
  static mf_gen_janus_sdp_t s;
  assert_int_equal(mf_gen_janus_sdp_parse(janus_answer, strlen(janus_answer), &s), MF_OK);
  assert_string_equal(s.ufrag, "YX+N");
  assert_string_equal(s.pwd, "6FPg6khkgkKOAmFyiuiL5E");
  assert_string_equal(s.fingerprint, FP);
  assert_string_equal(s.setup, "passive");
  assert_string_equal(s.cand_ip, "127.0.0.1");
  assert_int_equal(s.cand_port, 41921);
  assert_int_equal(s.nmedia, 2);
  assert_int_equal(s.media[0].kind, MF_GEN_JANUS_MEDIA_VIDEO);
  assert_string_equal(s.media[0].mid, "0");
  assert_int_equal(s.media[0].pt, 96);
  assert_int_equal(s.media[0].clock, 90000);
  assert_int_equal(s.media[0].ssrc, 186585871u);
  assert_int_equal(s.media[0].rtx_ssrc, 0);
  assert_false(s.media[0].rejected);
  assert_int_equal(s.media[1].kind, MF_GEN_JANUS_MEDIA_AUDIO);
  assert_string_equal(s.media[1].mid, "1");
  assert_int_equal(s.media[1].pt, 111);
  assert_int_equal(s.media[1].clock, 48000);
  assert_int_equal(s.media[1].channels, 2);
  assert_int_equal(s.media[1].ssrc, 119323235u);
}

static void test_parse_subscriber_offer(void **state) {
  (void)state;
  static mf_gen_janus_sdp_t s;
  assert_int_equal(mf_gen_janus_sdp_parse(sub_offer, strlen(sub_offer), &s), MF_OK);
  assert_string_equal(s.ufrag, "Ab12");
  assert_string_equal(s.fingerprint, FP); /* the sha-1 one is skipped */
  assert_string_equal(s.setup, "actpass");
  assert_string_equal(s.cand_ip, "127.0.0.1");
  assert_int_equal(s.cand_port, 40002); /* not the TCP nor the IPv6 one */
  assert_int_equal(s.nmedia, 4);
  assert_int_equal(s.media[0].pt, 100);
  assert_int_equal(s.media[0].ssrc, 3000);
  assert_int_equal(s.media[0].rtx_ssrc, 3001);
  assert_int_equal(s.media[1].pt, 109);
  assert_int_equal(s.media[1].ssrc, 4000);
  assert_true(s.media[2].rejected);
  assert_int_equal(s.media[2].pt, -1);
  assert_int_equal(s.media[3].kind, MF_GEN_JANUS_MEDIA_OTHER);
  assert_string_equal(s.media[3].proto, "UDP/DTLS/SCTP");
}

static void test_parse_lf_only(void **state) {
  (void)state;
  static char lf[sizeof janus_answer];
  size_t n = 0;
  for (const char *p = janus_answer; *p; p++)
    if (*p != '\r') lf[n++] = *p;
  lf[n] = '\0';
  static mf_gen_janus_sdp_t s;
  assert_int_equal(mf_gen_janus_sdp_parse(lf, n, &s), MF_OK);
  assert_int_equal(s.nmedia, 2);
  assert_int_equal(s.cand_port, 41921);
  /* only the given length is read: a prefix without the m-sections is refused */
  assert_int_equal(mf_gen_janus_sdp_parse(lf, 40, &s), MF_ERR_PARSE);
}

/* A valid head, then one bad line. */
#define HEAD                                                                            \
  "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\n"           \
  "a=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:sha-256 " FP "\r\n"
#define CAND "a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n"
#define VIDEO "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n"

typedef struct {
  const char *name, *sdp;
  mf_err_t want;
} bad_case_t;

static void test_parse_malformed(void **state) {
  (void)state;
  static const bad_case_t cases[] = {
      {"empty", "", MF_ERR_PARSE},
      {"only blank lines", "\r\n\r\n", MF_ERR_PARSE},
      {"not v=0 first", "o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n", MF_ERR_PARSE},
      {"v=1", "v=1\r\n" CAND VIDEO, MF_ERR_PARSE},
      {"the valid base itself parses", HEAD CAND VIDEO, MF_OK},
      {"no m-section", HEAD CAND, MF_ERR_PARSE},
      {"only an unknown kind (nothing to send or receive)",
       HEAD CAND "m=aduio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\n", MF_ERR_PARSE},
      {"only a rejected video section", HEAD CAND "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n",
       MF_ERR_PARSE},
      {"no candidate", HEAD VIDEO, MF_ERR_PARSE},
      {"no ufrag",
       "v=0\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:sha-256 " FP "\r\n" CAND VIDEO,
       MF_ERR_PARSE},
      {"no pwd", "v=0\r\na=ice-ufrag:abcd\r\na=fingerprint:sha-256 " FP "\r\n" CAND VIDEO,
       MF_ERR_PARSE},
      {"no fingerprint", "v=0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n" CAND VIDEO,
       MF_ERR_PARSE},
      {"sha-1 only",
       "v=0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n"
       "a=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33\r\n" CAND VIDEO,
       MF_ERR_PARSE},
      {"short fingerprint", "v=0\r\na=fingerprint:sha-256 AB:CD\r\n", MF_ERR_PARSE},
      {"fingerprint not hex",
       "v=0\r\na=fingerprint:sha-256 ZZ:7C:55:8E:7E:40:6D:EA:40:D2:11:A2:03:38:8F:99:2A:82:45:AF:"
       "49:18:AB:5A:89:60:96:CA:37:C8:4C:D8\r\n",
       MF_ERR_PARSE},
      {"fingerprint without value", "v=0\r\na=fingerprint:sha-256\r\n", MF_ERR_PARSE},
      {"ufrag with a space", "v=0\r\na=ice-ufrag:ab cd\r\n", MF_ERR_PARSE},
      {"ufrag with ';'", "v=0\r\na=ice-ufrag:ab;cd\r\n", MF_ERR_PARSE},
      {"empty pwd", "v=0\r\na=ice-pwd:\r\n", MF_ERR_PARSE},
      {"setup bogus", HEAD "a=setup:maybe\r\n" CAND VIDEO, MF_ERR_PARSE},
      {"only an IPv6 candidate", HEAD "a=candidate:1 1 udp 1 ::1 5000 typ host\r\n" VIDEO,
       MF_ERR_PARSE},
      {"only a relay candidate",
       HEAD "a=candidate:1 1 udp 1 127.0.0.1 5000 typ relay raddr 0.0.0.0 rport 0\r\n" VIDEO,
       MF_ERR_PARSE},
      {"candidate port 70000", HEAD "a=candidate:1 1 udp 1 127.0.0.1 70000 typ host\r\n" VIDEO,
       MF_ERR_PARSE},
      {"candidate port 0", HEAD "a=candidate:1 1 udp 1 127.0.0.1 0 typ host\r\n" VIDEO,
       MF_ERR_PARSE},
      {"candidate truncated", HEAD "a=candidate:1 1 udp\r\n" VIDEO, MF_ERR_PARSE},
      {"candidate without typ", HEAD "a=candidate:1 1 udp 1 127.0.0.1 5000 xx host\r\n" VIDEO,
       MF_ERR_PARSE},
      {"candidate priority overflow",
       HEAD "a=candidate:1 1 udp 99999999999 127.0.0.1 5000 typ host\r\n" VIDEO, MF_ERR_PARSE},
      {"candidate ip too long",
       HEAD "a=candidate:1 1 udp 1 127.000.000.0001 5000 typ host\r\n" VIDEO, MF_ERR_PARSE},
      {"m-line without formats", HEAD CAND "m=video 9 UDP/TLS/RTP/SAVPF\r\n", MF_ERR_PARSE},
      {"m-line port not a number", HEAD CAND "m=video x9 UDP/TLS/RTP/SAVPF 96\r\n", MF_ERR_PARSE},
      {"m-line port 65536", HEAD CAND "m=video 65536 UDP/TLS/RTP/SAVPF 96\r\n", MF_ERR_PARSE},
      {"video without VP8",
       HEAD CAND "m=video 9 UDP/TLS/RTP/SAVPF 98\r\na=mid:0\r\na=rtpmap:98 VP9/90000\r\n",
       MF_ERR_PARSE},
      {"audio without opus",
       HEAD CAND "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=rtpmap:0 PCMU/8000\r\n",
       MF_ERR_PARSE},
      {"accepted video without mid",
       HEAD CAND "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n", MF_ERR_PARSE},
      {"mid too long", HEAD CAND VIDEO "a=mid:0123456789012345678901234567890123456789\r\n",
       MF_ERR_PARSE},
      {"rtpmap pt 200", HEAD CAND VIDEO "a=rtpmap:200 VP8/90000\r\n", MF_ERR_PARSE},
      {"rtpmap without clock", HEAD CAND VIDEO "a=rtpmap:97 VP8\r\n", MF_ERR_PARSE},
      {"rtpmap clock 0", HEAD CAND VIDEO "a=rtpmap:97 VP8/0\r\n", MF_ERR_PARSE},
      {"rtpmap channels x", HEAD CAND VIDEO "a=rtpmap:97 opus/48000/x\r\n", MF_ERR_PARSE},
      {"ssrc 0", HEAD CAND VIDEO "a=ssrc:0 cname:x\r\n", MF_ERR_PARSE},
      {"ssrc over 32 bits", HEAD CAND VIDEO "a=ssrc:4294967296 cname:x\r\n", MF_ERR_PARSE},
      {"ssrc not a number", HEAD CAND VIDEO "a=ssrc:12a cname:x\r\n", MF_ERR_PARSE},
      {"FID with one ssrc", HEAD CAND VIDEO "a=ssrc-group:FID 5\r\n", MF_ERR_PARSE},
      {"line without =", HEAD CAND VIDEO "garbage\r\n", MF_ERR_PARSE},
      {"one-char line", HEAD CAND VIDEO "a\r\n", MF_ERR_PARSE},
      {"CR inside a line", HEAD CAND VIDEO "a=mid:1\r2\r\n", MF_ERR_PARSE},
  };
  static mf_gen_janus_sdp_t s;
  for (size_t i = 0; i < N(cases); i++) {
    mf_err_t e = mf_gen_janus_sdp_parse(cases[i].sdp, strlen(cases[i].sdp), &s);
    if (e != cases[i].want) fail_msg("case '%s': got %s", cases[i].name, mf_err_name(e));
  }
  /* a NUL inside the given length */
  static const char nul[] = HEAD CAND "a=mid:0\0x\r\n" VIDEO;
  assert_int_equal(mf_gen_janus_sdp_parse(nul, sizeof nul - 1, &s), MF_ERR_PARSE);
  assert_int_equal(mf_gen_janus_sdp_parse(NULL, 0, &s), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_gen_janus_sdp_parse("v=0", 3, NULL), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_gen_janus_sdp_parse(janus_answer, MF_GEN_JANUS_SDP_MAX + 1, &s),
                   MF_ERR_LIMIT);
}

static void test_parse_too_many_media(void **state) {
  (void)state;
  size_t cap = 64 * 1024;
  char *big = malloc(cap);
  assert_non_null(big);
  size_t n = (size_t)snprintf(big, cap, "%s%s", HEAD, CAND);
  for (int i = 0; i <= MF_GEN_JANUS_MAX_MEDIA; i++)
    n += (size_t)snprintf(big + n, cap - n, "m=video 0 UDP/TLS/RTP/SAVPF 0\r\n");
  static mf_gen_janus_sdp_t s;
  assert_int_equal(mf_gen_janus_sdp_parse(big, n, &s), MF_ERR_LIMIT);
  free(big);
}

static const mf_gen_janus_local_t local = {.ufrag = "mfu00001", .pwd = "mfpwd0123456789abcdef0",
                                           .fingerprint = FP, .ip = "127.0.0.1", .port = 40123};

static void test_offer_round_trip(void **state) {
  (void)state;
  char buf[4096];
  size_t len = 0;
  assert_int_equal(mf_gen_janus_sdp_write_offer(&local, 96, 0x10000, 111, 0x10001, buf, sizeof buf,
                                                &len),
                   MF_OK);
  assert_int_equal(len, strlen(buf));
  assert_non_null(strstr(buf, "a=setup:active\r\n"));
  assert_non_null(strstr(buf, "a=sendonly\r\n"));
  assert_non_null(strstr(buf, "a=ssrc:65536 cname:mfgen\r\n")); /* Janus drops media without */
  static mf_gen_janus_sdp_t s;
  assert_int_equal(mf_gen_janus_sdp_parse(buf, len, &s), MF_OK);
  assert_string_equal(s.ufrag, local.ufrag);
  assert_string_equal(s.pwd, local.pwd);
  assert_string_equal(s.fingerprint, FP);
  assert_string_equal(s.setup, "active");
  assert_string_equal(s.cand_ip, "127.0.0.1");
  assert_int_equal(s.cand_port, 40123);
  assert_int_equal(s.nmedia, 2);
  assert_int_equal(s.media[0].kind, MF_GEN_JANUS_MEDIA_VIDEO);
  assert_int_equal(s.media[0].pt, 96);
  assert_int_equal(s.media[0].ssrc, 0x10000);
  assert_int_equal(s.media[1].kind, MF_GEN_JANUS_MEDIA_AUDIO);
  assert_int_equal(s.media[1].pt, 111);
  assert_int_equal(s.media[1].ssrc, 0x10001);
  /* every shorter buffer is refused, never overrun */
  for (size_t cap = 1; cap <= len; cap += 37)
    assert_int_equal(mf_gen_janus_sdp_write_offer(&local, 96, 1, 111, 2, buf, cap, &len),
                     MF_ERR_FULL);
}

static void test_answer_round_trip(void **state) {
  (void)state;
  static mf_gen_janus_sdp_t offer, back;
  assert_int_equal(mf_gen_janus_sdp_parse(sub_offer, strlen(sub_offer), &offer), MF_OK);
  char buf[8192];
  size_t len = 0;
  assert_int_equal(mf_gen_janus_sdp_write_answer(&offer, &local, 0x5001, buf, sizeof buf, &len),
                   MF_OK);
  assert_non_null(strstr(buf, "a=group:BUNDLE 0 1\r\n"));
  assert_null(strstr(buf, "rtx")); /* RTX not accepted: the subscriber NACKs and counts */
  assert_int_equal(mf_gen_janus_sdp_parse(buf, len, &back), MF_OK);
  assert_int_equal(back.nmedia, offer.nmedia); /* same m-sections, same order */
  assert_string_equal(back.setup, "active");
  assert_int_equal(back.cand_port, 40123);
  for (size_t i = 0; i < offer.nmedia; i++) {
    assert_int_equal(back.media[i].kind, offer.media[i].kind);
    assert_string_equal(back.media[i].mid, offer.media[i].mid);
  }
  assert_int_equal(back.media[0].pt, 100);
  assert_false(back.media[0].rejected);
  assert_int_equal(back.media[1].pt, 109);
  assert_true(back.media[2].rejected);
  assert_true(back.media[3].rejected);
  for (size_t cap = 1; cap <= len; cap += 53)
    assert_int_equal(mf_gen_janus_sdp_write_answer(&offer, &local, 1, buf, cap, &len),
                     MF_ERR_FULL);
}

static void test_write_bad_args(void **state) {
  (void)state;
  char buf[4096];
  size_t len;
  mf_gen_janus_local_t l = local;
  assert_int_equal(mf_gen_janus_sdp_write_offer(&l, 128, 1, 111, 2, buf, sizeof buf, &len),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_gen_janus_sdp_write_offer(&l, 96, 0, 111, 2, buf, sizeof buf, &len),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_gen_janus_sdp_write_offer(&l, 96, 1, 96, 2, buf, sizeof buf, &len),
                   MF_ERR_INVALID_ARG);
  l.fingerprint = "AB:CD";
  assert_int_equal(mf_gen_janus_sdp_write_offer(&l, 96, 1, 111, 2, buf, sizeof buf, &len),
                   MF_ERR_INVALID_ARG);
  l = local;
  l.ip = "localhost";
  assert_int_equal(mf_gen_janus_sdp_write_offer(&l, 96, 1, 111, 2, buf, sizeof buf, &len),
                   MF_ERR_INVALID_ARG);
  l = local;
  l.ufrag = "a b";
  assert_int_equal(mf_gen_janus_sdp_write_offer(&l, 96, 1, 111, 2, buf, sizeof buf, &len),
                   MF_ERR_INVALID_ARG);
  l = local;
  l.port = 0;
  assert_int_equal(mf_gen_janus_sdp_write_offer(&l, 96, 1, 111, 2, buf, sizeof buf, &len),
                   MF_ERR_INVALID_ARG);
  static mf_gen_janus_sdp_t empty;
  memset(&empty, 0, sizeof empty);
  assert_int_equal(mf_gen_janus_sdp_write_answer(&empty, &local, 1, buf, sizeof buf, &len),
                   MF_ERR_INVALID_ARG);
  assert_int_equal(mf_gen_janus_sdp_write_answer(NULL, &local, 1, buf, sizeof buf, &len),
                   MF_ERR_INVALID_ARG);
}

/* ---------------------------------------------------------------- jcfg */

static const mf_janus_sfu_config_t jcfg = {.dir = "/tmp/mf-x", .http_port = 18088,
                                           .rtp_min = 20000, .rtp_max = 21999, .debug_level = 4};

static void test_jcfg_main(void **state) {
  (void)state;
  char buf[4096];
  size_t len = 0;
  assert_int_equal(mf_janus_sfu_format_main(&jcfg, buf, sizeof buf, &len), MF_OK);
  assert_int_equal(len, strlen(buf));
  static const char *const want[] = {
      "configs_folder = \"/tmp/mf-x\"\n", "log_to_file = \"/tmp/mf-x/janus.log\"\n",
      "session_timeout = 0\n", "debug_level = 4\n", "ipv6 = false\n",
      "rtp_port_range = \"20000-21999\"\n", "ice_enforce_list = \"lo\"\n", "ice_lite = false\n",
      "libjanus_echotest.so", "libjanus_streaming.so", "libjanus_websockets.so",
      "plugins_folder = \"/usr/lib/x86_64-linux-gnu/janus/plugins\"\n"};
  for (size_t i = 0; i < N(want); i++)
    if (!strstr(buf, want[i])) fail_msg("janus.jcfg lacks %s", want[i]);
  /* the two enabled ones are not in a disable list; no STUN/TURN configured */
  assert_null(strstr(buf, "libjanus_videoroom.so"));
  assert_null(strstr(buf, "libjanus_http.so"));
  assert_null(strstr(buf, "stun_server"));
  assert_null(strstr(buf, "turn_server"));
  int depth = 0;
  for (const char *p = buf; *p; p++) {
    depth += *p == '{' ? 1 : *p == '}' ? -1 : 0;
    assert_true(depth >= 0);
  }
  assert_int_equal(depth, 0);
}

static void test_jcfg_http_videoroom(void **state) {
  (void)state;
  char buf[1024];
  size_t len = 0;
  assert_int_equal(mf_janus_sfu_format_http(&jcfg, buf, sizeof buf, &len), MF_OK);
  assert_non_null(strstr(buf, "port = 18088\n"));
  assert_non_null(strstr(buf, "ip = \"127.0.0.1\"\n"));
  assert_non_null(strstr(buf, "https = false\n"));
  assert_non_null(strstr(buf, "admin_http = false\n"));
  assert_int_equal(mf_janus_sfu_format_videoroom(&jcfg, buf, sizeof buf, &len), MF_OK);
  assert_string_equal(buf, "general: {\n}\n");
}

static void test_jcfg_bad(void **state) {
  (void)state;
  char buf[4096];
  size_t len;
  mf_janus_sfu_config_t c[8];
  for (size_t i = 0; i < N(c); i++) c[i] = jcfg;
  c[0].dir = NULL;
  c[1].dir = "/tmp/a\"b";
  c[2].dir = "/tmp/a\nb";
  c[3].dir = "";
  c[4].http_port = 0;
  c[5].rtp_min = 30000; /* > rtp_max */
  c[6].debug_level = 8;
  c[7].dir = "/tmp/a\\b";
  for (size_t i = 0; i < N(c); i++) {
    assert_int_equal(mf_janus_sfu_format_main(&c[i], buf, sizeof buf, &len), MF_ERR_INVALID_ARG);
    assert_int_equal(mf_janus_sfu_format_http(&c[i], buf, sizeof buf, &len), MF_ERR_INVALID_ARG);
  }
  assert_int_equal(mf_janus_sfu_format_main(NULL, buf, sizeof buf, &len), MF_ERR_INVALID_ARG);
  assert_int_equal(mf_janus_sfu_format_main(&jcfg, buf, 100, &len), MF_ERR_FULL);
  assert_int_equal(mf_janus_sfu_format_http(&jcfg, buf, 10, &len), MF_ERR_FULL);
  assert_int_equal(mf_janus_sfu_format_videoroom(&jcfg, buf, 4, &len), MF_ERR_FULL);
}

static void test_jcfg_files(void **state) {
  (void)state;
  char dir[] = "/tmp/mf-test-jcfg-XXXXXX";
  assert_non_null(mkdtemp(dir));
  mf_janus_sfu_config_t c = jcfg;
  c.dir = dir;
  assert_int_equal(mf_janus_sfu_write_config(&c), MF_OK);
  static const char *const names[] = {"janus.jcfg", "janus.transport.http.jcfg",
                                      "janus.plugin.videoroom.jcfg"};
  for (size_t i = 0; i < N(names); i++) {
    char path[128], got[4096], want[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    fclose(f);
    got[n] = '\0';
    size_t wl = 0;
    mf_err_t e = i == 0   ? mf_janus_sfu_format_main(&c, want, sizeof want, &wl)
                 : i == 1 ? mf_janus_sfu_format_http(&c, want, sizeof want, &wl)
                          : mf_janus_sfu_format_videoroom(&c, want, sizeof want, &wl);
    assert_int_equal(e, MF_OK);
    assert_string_equal(got, want);
    unlink(path);
  }
  rmdir(dir);
  c.dir = "/nonexistent-mf-dir";
  assert_int_equal(mf_janus_sfu_write_config(&c), MF_ERR_IO);
}

static void test_available(void **state) {
  (void)state;
  assert_true(mf_janus_sfu_available("sh"));
  assert_true(mf_janus_sfu_available("/bin/sh"));
  assert_false(mf_janus_sfu_available("/nonexistent/janus"));
  assert_false(mf_janus_sfu_available("mf-no-such-program-here"));
  assert_false(mf_janus_sfu_available(""));
  assert_false(mf_janus_sfu_available(NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_janus_answer),   cmocka_unit_test(test_parse_subscriber_offer),
      cmocka_unit_test(test_parse_lf_only),        cmocka_unit_test(test_parse_malformed),
      cmocka_unit_test(test_parse_too_many_media), cmocka_unit_test(test_offer_round_trip),
      cmocka_unit_test(test_answer_round_trip),    cmocka_unit_test(test_write_bad_args),
      cmocka_unit_test(test_jcfg_main),            cmocka_unit_test(test_jcfg_http_videoroom),
      cmocka_unit_test(test_jcfg_bad),             cmocka_unit_test(test_jcfg_files),
      cmocka_unit_test(test_available),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
