/* The load generator's Janus adapter (issue 10, `--sfu janus`): Janus's JSON API over its
 * HTTP transport on 127.0.0.1 (tests/support/http_client.h, one request per connection,
 * events by long-poll GET /janus/<session>), driving the videoroom plugin:
 *   session create -> per peer: attach janus.plugin.videoroom (one handle = one
 *   PeerConnection) -> room create (once per room name) ->
 *   publisher: "joinandconfigure" with the peer's JSEP offer -> Janus's answer;
 *   subscriber: "join" ptype subscriber with streams [{feed}...] -> Janus's offer ->
 *   "start" with the peer's answer.
 * The bench peers (tests/support/webrtc_peer.h) run full ICE against Janus: a publisher
 * offers and is the controlling agent, a subscriber answers and is controlled (Janus
 * nominates); both stay the DTLS client (a=setup:active).
 *
 * All generator peers share ONE Janus session (its handles are the peers); the session
 * never times out (janus_sfu.h configures session_timeout = 0), so nothing is said on
 * HTTP while media flows. Blocking calls; for the generator's thread only. */
#ifndef MF_BENCH_GEN_JANUS_H
#define MF_BENCH_GEN_JANUS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "node/dtls.h"
#include "tests/support/webrtc_peer.h"

typedef struct mf_gen_janus mf_gen_janus_t;

/* Creates the session on the Janus whose HTTP API is on 127.0.0.1:port. Errors printed. */
mf_err_t mf_gen_janus_create(uint16_t port, mf_gen_janus_t **out);
/* Destroys the session (best effort: Janus hangs up its handles). NULL ignored. */
void mf_gen_janus_free(mf_gen_janus_t *j);

/* A publisher in room (created on first use): a new handle, a new full-ICE peer (returned
 * in *peer, not yet connected: the caller runs mf_webrtc_peer_connect) sending VP8 on
 * video_pt / video_ssrc and opus on audio_pt / audio_ssrc, and Janus's feed id in *feed.
 * fingerprint is the sha-256 of the certificate behind dtls. */
mf_err_t mf_gen_janus_publish(mf_gen_janus_t *j, const char *room, mf_dtls_context_t *dtls,
                              const char *fingerprint, int video_pt, uint32_t video_ssrc,
                              int audio_pt, uint32_t audio_ssrc, mf_webrtc_peer_t **peer,
                              uint64_t *feed);

/* One stream Janus sends a subscriber, as its offer says. */
typedef struct {
  size_t feed_index; /* index into the feeds passed to mf_gen_janus_subscribe */
  bool video;
  uint32_t ssrc, rtx_ssrc; /* Janus's SSRCs for this subscriber (rtx 0: none) */
  int pt;
} mf_gen_janus_track_t;

/* A subscriber to the audio and video of the nfeeds feeds (from mf_gen_janus_publish) in
 * room: a new handle, Janus's offer answered and started, a controlled full-ICE peer in
 * *peer (not yet connected) and the streams in tracks[0..*ntracks) (cap entries).
 * MF_ERR_PARSE when Janus's offer or events do not make sense. */
mf_err_t mf_gen_janus_subscribe(mf_gen_janus_t *j, const char *room, mf_dtls_context_t *dtls,
                                const char *fingerprint, const uint64_t *feeds, size_t nfeeds,
                                uint32_t rtcp_ssrc, mf_webrtc_peer_t **peer,
                                mf_gen_janus_track_t *tracks, size_t cap, size_t *ntracks);

#endif
