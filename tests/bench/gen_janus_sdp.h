/* The SDP the load generator exchanges with Janus (issue 10, `--sfu janus`): Janus's
 * answers (to a publisher's offer) and offers (to a subscriber) are parsed for what the
 * bench peer needs (ICE credentials, DTLS fingerprint, one IPv4 UDP host candidate, and per
 * m-section the mid, the VP8 / Opus payload type and the SSRCs Janus sends with), and the
 * peer's own offer (publisher) and answer (subscriber) are written. Both written SDPs carry
 * a=setup:active, so the bench peer is always the DTLS client.
 *
 * Pure functions on caller buffers, no allocation; the parser never trusts its input
 * (every field bounded, malformed lines refused). Usable from any thread. */
#ifndef MF_BENCH_GEN_JANUS_SDP_H
#define MF_BENCH_GEN_JANUS_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* m-sections of one SDP: a subscriber of a 25 x 25 room has 48 */
#define MF_GEN_JANUS_MAX_MEDIA 256
/* the SDP itself */
#define MF_GEN_JANUS_SDP_MAX (256 * 1024)

typedef enum {
  MF_GEN_JANUS_MEDIA_AUDIO,
  MF_GEN_JANUS_MEDIA_VIDEO,
  MF_GEN_JANUS_MEDIA_OTHER, /* application, ...: answered rejected */
} mf_gen_janus_kind_t;

typedef struct {
  mf_gen_janus_kind_t kind;
  bool rejected;   /* port 0 */
  char mid[33];
  char proto[40];  /* e.g. UDP/TLS/RTP/SAVPF */
  int pt;          /* VP8 (video) / opus (audio) payload type; -1 if not offered */
  uint32_t clock;  /* its clock rate */
  int channels;    /* opus: 2 */
  uint32_t ssrc;     /* the first a=ssrc (the FID group's first when there is one); 0 = none */
  uint32_t rtx_ssrc; /* a=ssrc-group:FID's second; 0 = none */
} mf_gen_janus_media_t;

typedef struct {
  char ufrag[257], pwd[257];
  char fingerprint[100]; /* sha-256 "AB:CD:..." (95 chars) */
  char setup[10];        /* actpass / active / passive, "" if absent */
  char cand_ip[16];      /* dotted IPv4 */
  uint16_t cand_port;
  size_t nmedia;
  mf_gen_janus_media_t media[MF_GEN_JANUS_MAX_MEDIA];
} mf_gen_janus_sdp_t; /* large (about 30 kB): heap or static */

/* Parses sdp[0..len) ("\r\n" or "\n" lines). ICE / fingerprint / setup attributes may be at
 * session or media level (the first one seen wins). MF_ERR_PARSE when it is not
 * "v=0 ..." or lacks ice-ufrag, ice-pwd, a sha-256 fingerprint, an IPv4 UDP host
 * candidate or an accepted (port != 0) audio or video m-section, when an accepted one lacks its codec
 * (VP8 / opus), or when a line is malformed; MF_ERR_LIMIT over MF_GEN_JANUS_MAX_MEDIA
 * m-sections or MF_GEN_JANUS_SDP_MAX bytes; MF_ERR_INVALID_ARG for NULL arguments. */
mf_err_t mf_gen_janus_sdp_parse(const char *sdp, size_t len, mf_gen_janus_sdp_t *out);

/* The bench peer's side of the exchange. */
typedef struct {
  const char *ufrag, *pwd;
  const char *fingerprint; /* sha-256 */
  const char *ip;          /* its candidate (IPv4) */
  uint16_t port;
} mf_gen_janus_local_t;

/* A publisher's offer: BUNDLE of a sendonly VP8 video (mid 0, video_pt, video_ssrc) and a
 * sendonly opus audio (mid 1, audio_pt, audio_ssrc), NACK / PLI feedback, rtcp-mux, one
 * host candidate, a=setup:active. Writes a NUL-terminated SDP into buf and its length to
 * *len. MF_ERR_FULL if cap is too small, MF_ERR_INVALID_ARG for bad arguments (a pt
 * outside 0..127, an ssrc of 0, a missing field). */
mf_err_t mf_gen_janus_sdp_write_offer(const mf_gen_janus_local_t *local, int video_pt,
                                      uint32_t video_ssrc, int audio_pt, uint32_t audio_ssrc,
                                      char *buf, size_t cap, size_t *len);

/* A subscriber's answer to Janus's parsed offer: every audio/video m-section accepted
 * recvonly with the offered codec's payload type (same mid, same order, all bundled),
 * everything else (and what the offer rejected) rejected with port 0; one host candidate,
 * a=setup:active; RTCP from rtcp_ssrc. Same errors as the offer. */
mf_err_t mf_gen_janus_sdp_write_answer(const mf_gen_janus_sdp_t *offer,
                                       const mf_gen_janus_local_t *local, uint32_t rtcp_ssrc,
                                       char *buf, size_t cap, size_t *len);

#endif
