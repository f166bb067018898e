/* SDP for WebRTC peers: parse an offer, build an answer, write either back as text.
 *
 * Covers what an SFU negotiating with browsers and GStreamer's webrtcbin needs: RFC 8866
 * syntax, JSEP (RFC 8829) media sections, ICE (RFC 8839), DTLS fingerprint and setup
 * (RFC 8122, RFC 5763), BUNDLE (RFC 8843), header extensions (RFC 8285), ssrc lines
 * (RFC 5576), rid/simulcast (RFC 8851/8853) and SCTP data channels (RFC 8841). Everything
 * else (b=, a=rtcp, a=ptime, ...) is skipped, so a parsed description is not a lossless
 * copy of the text.
 *
 * Memory: plain structs with fixed-size arrays; nothing here allocates. mf_sdp_t is large
 * (hundreds of KiB, see MF_SDP_MAX_*), so callers put it on the heap. The caller owns
 * every struct it passes in.
 *
 * Threads: no shared state; any one description is used by one thread at a time (the
 * worker or API thread that negotiates). Not per-packet code. */
#ifndef MF_SDP_H
#define MF_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Counts. A description exceeding one of them fails to parse with MF_ERR_LIMIT.
 * Payloads: Chrome's video offers already list ~30 payload types (VP8, VP9 and H264
 * profiles, AV1, each with RTX), so 64 leaves room without cutting real offers. */
#define MF_SDP_MAX_MEDIA 16
#define MF_SDP_MAX_PAYLOADS 64
#define MF_SDP_MAX_RTCP_FB 8 /* per payload type */
#define MF_SDP_MAX_EXTMAPS 24
#define MF_SDP_MAX_SSRCS 16
#define MF_SDP_MAX_SSRC_GROUPS 4
#define MF_SDP_MAX_GROUP_SSRCS 8
#define MF_SDP_MAX_RIDS 8
#define MF_SDP_MAX_CANDIDATES 16

/* String capacities including the terminating NUL. A longer value in the input fails
 * with MF_ERR_LIMIT. */
#define MF_SDP_TOKEN_LEN 64       /* mid, session id, semantics, cname */
#define MF_SDP_SHORT_LEN 32       /* encoding name, proto, transport, rid id */
#define MF_SDP_FB_LEN 24          /* rtcp-fb type and parameter */
#define MF_SDP_ICE_LEN 257        /* RFC 8839 allows 256 characters of ufrag/pwd */
#define MF_SDP_FINGERPRINT_LEN 192 /* sha-512: 64 hex pairs + 63 colons */
#define MF_SDP_FMTP_LEN 256
#define MF_SDP_URI_LEN 128
#define MF_SDP_ADDR_LEN 64        /* IPv6 text or an mDNS name (<uuid>.local) */
#define MF_SDP_MSID_LEN 128       /* "<stream id> <track id>" */
#define MF_SDP_SIMULCAST_LEN 128  /* "f;h;q" or "1,~2;3" */
#define MF_SDP_ERROR_LEN 128

typedef enum {
  MF_SDP_KIND_AUDIO = 0,
  MF_SDP_KIND_VIDEO,
  MF_SDP_KIND_APPLICATION,
  MF_SDP_KIND_OTHER, /* e.g. "text"; the name is in mf_sdp_media_t.kind_name */
} mf_sdp_kind_t;

/* UNSET only appears on extmaps without a direction; media sections default to
 * SENDRECV (RFC 8866 6.7). */
typedef enum {
  MF_SDP_DIR_UNSET = 0,
  MF_SDP_DIR_SENDRECV,
  MF_SDP_DIR_SENDONLY,
  MF_SDP_DIR_RECVONLY,
  MF_SDP_DIR_INACTIVE,
} mf_sdp_direction_t;

typedef enum {
  MF_SDP_SETUP_NONE = 0,
  MF_SDP_SETUP_ACTPASS,
  MF_SDP_SETUP_ACTIVE,
  MF_SDP_SETUP_PASSIVE,
  MF_SDP_SETUP_HOLDCONN,
} mf_sdp_setup_t;

typedef enum {
  MF_SDP_RID_SEND = 0,
  MF_SDP_RID_RECV,
} mf_sdp_rid_dir_t;

typedef struct {
  char type[MF_SDP_FB_LEN];  /* "nack", "ccm", "goog-remb", "transport-cc" */
  char param[MF_SDP_FB_LEN]; /* "pli", "fir" or "" */
} mf_sdp_rtcp_fb_t;

typedef struct {
  uint8_t pt;
  char name[MF_SDP_SHORT_LEN]; /* "VP8", "opus", "rtx"; "" when a dynamic pt has no rtpmap */
  uint32_t clock_rate;
  uint32_t channels;           /* 0 when the rtpmap has no channel count */
  char fmtp[MF_SDP_FMTP_LEN];  /* parameters as written, "minptime=10;useinbandfec=1" */
  mf_sdp_rtcp_fb_t fb[MF_SDP_MAX_RTCP_FB]; /* a=rtcp-fb:* entries are copied into each */
  size_t fb_count;
} mf_sdp_payload_t;

typedef struct {
  uint16_t id; /* 1..255 (1..14 one-byte header, up to 255 two-byte) */
  mf_sdp_direction_t direction; /* UNSET when the line has none */
  char uri[MF_SDP_URI_LEN];
} mf_sdp_extmap_t;

typedef struct {
  uint32_t ssrc;
  char cname[MF_SDP_TOKEN_LEN];
  char msid[MF_SDP_MSID_LEN];
} mf_sdp_ssrc_t;

typedef struct {
  char semantics[MF_SDP_SHORT_LEN]; /* "FID", "SIM", "FEC-FR" */
  uint32_t ssrcs[MF_SDP_MAX_GROUP_SSRCS];
  size_t ssrc_count;
} mf_sdp_ssrc_group_t;

typedef struct {
  char id[MF_SDP_SHORT_LEN];
  mf_sdp_rid_dir_t direction;
  char params[MF_SDP_FMTP_LEN]; /* restrictions as written, "pt=96;max-width=1280", or "" */
} mf_sdp_rid_t;

typedef struct {
  char foundation[MF_SDP_TOKEN_LEN];
  uint32_t component;
  char transport[MF_SDP_SHORT_LEN]; /* "udp" or "tcp" (case as written) */
  uint32_t priority;
  char address[MF_SDP_ADDR_LEN];
  uint16_t port;
  char type[MF_SDP_SHORT_LEN];      /* "host", "srflx", "prflx", "relay" */
  char raddr[MF_SDP_ADDR_LEN];      /* "" when absent */
  uint16_t rport;
  char tcptype[MF_SDP_SHORT_LEN];   /* "active", "passive", "so" or "" */
} mf_sdp_candidate_t;

/* ICE/DTLS parameters, at session level or per media section. */
typedef struct {
  char ice_ufrag[MF_SDP_ICE_LEN];
  char ice_pwd[MF_SDP_ICE_LEN];
  char ice_options[MF_SDP_TOKEN_LEN]; /* "trickle" ... */
  char fingerprint_alg[MF_SDP_SHORT_LEN]; /* "sha-256"; only the first a=fingerprint is kept */
  char fingerprint[MF_SDP_FINGERPRINT_LEN];
  mf_sdp_setup_t setup;
} mf_sdp_transport_t;

typedef struct {
  mf_sdp_kind_t kind;
  char kind_name[16];      /* set for every kind: "audio", "video", ... */
  uint16_t port;           /* 0: rejected, or bundle-only */
  char proto[MF_SDP_SHORT_LEN];
  char fmt[MF_SDP_TOKEN_LEN]; /* formats of a non-RTP proto ("webrtc-datachannel") */
  char connection[MF_SDP_ADDR_LEN]; /* c= address (session c= inherited), else "0.0.0.0" */
  char mid[MF_SDP_TOKEN_LEN];
  mf_sdp_direction_t direction;
  bool rtcp_mux;
  bool rtcp_rsize;
  bool bundle_only;
  bool extmap_allow_mixed;
  /* After parse: the effective values, inherited from session level when the media
   * section has none of its own (media level wins). */
  mf_sdp_transport_t transport;
  char msid[MF_SDP_MSID_LEN]; /* media-level a=msid */

  mf_sdp_payload_t payloads[MF_SDP_MAX_PAYLOADS]; /* in m= line order (preference) */
  size_t payload_count;
  mf_sdp_extmap_t extmaps[MF_SDP_MAX_EXTMAPS];
  size_t extmap_count;
  mf_sdp_ssrc_t ssrcs[MF_SDP_MAX_SSRCS];
  size_t ssrc_count;
  mf_sdp_ssrc_group_t ssrc_groups[MF_SDP_MAX_SSRC_GROUPS];
  size_t ssrc_group_count;
  mf_sdp_rid_t rids[MF_SDP_MAX_RIDS];
  size_t rid_count;
  char simulcast_send[MF_SDP_SIMULCAST_LEN]; /* rid list of a=simulcast "send", or "" */
  char simulcast_recv[MF_SDP_SIMULCAST_LEN];
  mf_sdp_candidate_t candidates[MF_SDP_MAX_CANDIDATES];
  size_t candidate_count;
  bool end_of_candidates;
  uint16_t sctp_port;        /* a=sctp-port (or legacy a=sctpmap); 0 when absent */
  uint32_t max_message_size; /* 0 when absent */
} mf_sdp_media_t;

typedef struct {
  char origin_user[MF_SDP_TOKEN_LEN]; /* o= username; "" writes "-" */
  char session_id[MF_SDP_TOKEN_LEN];  /* o= sess-id digits; "" writes "0" */
  uint64_t session_version;
  bool ice_lite;
  bool extmap_allow_mixed;
  mf_sdp_transport_t transport; /* session-level values only */
  char bundle_mids[MF_SDP_MAX_MEDIA][MF_SDP_TOKEN_LEN]; /* first a=group:BUNDLE */
  size_t bundle_count;
  char msid_semantic[MF_SDP_MSID_LEN]; /* "WMS *", "WMS", or "" */
  mf_sdp_media_t media[MF_SDP_MAX_MEDIA];
  size_t media_count;
  /* Set by mf_sdp_parse on failure: "line 7: bad m= line"; error_line 0 = not a line. */
  char error[MF_SDP_ERROR_LEN];
  unsigned error_line;
} mf_sdp_t;

/* Parses len bytes of text (no NUL needed; CRLF or LF line ends). Zeroes *out first.
 * Unknown attributes and line types are ignored. MF_ERR_PARSE for a malformed line we
 * use (bad m=, rtpmap, candidate, numbers out of range, control characters, missing
 * v=0 first), MF_ERR_LIMIT when a count or string exceeds the limits above; both fill
 * out->error and out->error_line. MF_ERR_INVALID_ARG on NULL arguments. */
mf_err_t mf_sdp_parse(const char *text, size_t len, mf_sdp_t *out);

/* Writes sdp as CRLF text into out (cap bytes, NUL-terminated); *len = bytes written
 * without the NUL (len may be NULL). MF_ERR_LIMIT when cap is too small, MF_ERR_INVALID_ARG
 * when a count exceeds its limit or a string would break a line (CR/LF). Every media
 * section carries its own ICE and DTLS attributes, which Chrome and webrtcbin accept with
 * BUNDLE. Strings are read only up to their array size, so a caller-built struct with an
 * unterminated string cannot make the writer read past it. */
mf_err_t mf_sdp_write(const mf_sdp_t *sdp, char *out, size_t cap, size_t *len);

/* True when every count of a caller-built media section is within its array (what the
 * writer and the answer builder check before reading the arrays). */
bool mf_sdp_media_counts_valid(const mf_sdp_media_t *m);


/* Value of key in an fmtp string ("apt=96;x=1", key "apt" -> "96"). MF_ERR_NOT_FOUND,
 * or MF_ERR_LIMIT when the value does not fit in cap (with its NUL). */
mf_err_t mf_sdp_fmtp_param(const char *fmtp, const char *key, char *out, size_t cap);

/* Index of the media section with that mid, or -1. */
int mf_sdp_find_mid(const mf_sdp_t *sdp, const char *mid);

const char *mf_sdp_direction_name(mf_sdp_direction_t dir); /* "sendrecv"...; "" for UNSET */
const char *mf_sdp_setup_name(mf_sdp_setup_t setup);       /* "actpass"...; "" for NONE */
mf_sdp_direction_t mf_sdp_direction_reverse(mf_sdp_direction_t dir);

#endif
