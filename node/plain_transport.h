/* PlainTransport (mediasoup's): RTP and RTCP over plain UDP, or SRTP keyed through the API,
 * for ingest from and egress to ffmpeg/GStreamer (e.g. recording).
 *
 * Built on the plain PipeTransport object of webrtc_transport.h (no ICE, no DTLS, one
 * remote address) with external I/O: a plain transport has its OWN UDP socket on the
 * worker's loop, bound to the RTC server's listen IP on a port the kernel picks (one port
 * per transport, like mediasoup), so datagrams need no 5-tuple demultiplexing and comedia
 * works: the remote address is learnt from the first valid RTP/RTCP packet (after SRTP
 * authentication when SRTP is on). Once the remote is known, datagrams from any other
 * source are dropped (counted). Only rtcpMux=true is supported: RTCP travels on the RTP
 * port both ways.
 *
 * SRTP (enableSrtp): the transport draws its own key for srtpCryptoSuite
 * (AES_CM_128_HMAC_SHA1_80 or AEAD_AES_128_GCM) and protects what it sends with it
 * (srtpParameters in its JSON); connect({srtpParameters}) gives the key the remote sends
 * with. Same suite both ways.
 *
 * Thread affinity: the worker thread owning the RTC server, for every call and callback.
 * Ownership: the plain transport belongs to its mf_webrtc_transport_t: it is freed by
 * mf_webrtc_transport_close (which the router calls), never directly. */
#ifndef MF_PLAIN_TRANSPORT_H
#define MF_PLAIN_TRANSPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "node/rtc_server.h"
#include "node/srtp.h"
#include "node/webrtc_transport.h"

typedef struct mf_plain_transport mf_plain_transport_t;

typedef struct {
  bool comedia;
  bool rtcp_mux; /* always true after a successful parse (false is refused) */
  bool enable_srtp;
  mf_srtp_profile_t srtp_profile; /* when enable_srtp */
} mf_plain_options_t;

typedef struct {
  uint64_t dropped_not_rtp;        /* first byte outside RTP/RTCP (RFC 7983 128..191) */
  uint64_t dropped_unknown_source; /* not from the remote (or no remote yet, not comedia) */
  uint64_t dropped_no_key;         /* SRTP before connect() gave the remote's key */
  uint64_t srtp_failures;          /* authentication / replay / parse failures */
} mf_plain_transport_stats_t;

/* router.createPlainTransport's data {comedia?, rtcpMux?, enableSrtp?, srtpCryptoSuite?}
 * with mediasoup's defaults (false, true, false, AES_CM_128_HMAC_SHA1_80). data NULL: the
 * defaults. MF_ERR_INVALID_ARG (wrong types, unknown suite) or MF_ERR_UNSUPPORTED
 * (rtcpMux false), with err saying why. */
mf_err_t mf_plain_options_parse(const json_t *data, mf_plain_options_t *out, char *err,
                                size_t errsz);

/* "AES_CM_128_HMAC_SHA1_80" / "AEAD_AES_128_GCM" -> profile; MF_ERR_UNSUPPORTED else. */
mf_err_t mf_plain_crypto_suite_parse(const char *name, mf_srtp_profile_t *out);

/* mediasoup's srtpParameters {cryptoSuite, keyBase64}: the key must be exactly the suite's
 * key||salt length. MF_ERR_INVALID_ARG / MF_ERR_UNSUPPORTED with err saying why. */
mf_err_t mf_plain_srtp_parse(const json_t *j, mf_pipe_srtp_t *out, char *err, size_t errsz);
/* {cryptoSuite, keyBase64}. New reference. */
json_t *mf_plain_srtp_json(const mf_pipe_srtp_t *s);

/* Makes wt (a fresh mf_webrtc_transport_create_pipe(server, false, ...)) a plain transport:
 * opens its socket and draws the SRTP key. On failure wt is unchanged (the caller closes
 * it). */
mf_err_t mf_plain_transport_attach(mf_webrtc_transport_t *wt, mf_rtc_server_t *server,
                                   const mf_plain_options_t *options, char *err, size_t errsz);

/* The plain transport of wt, or NULL when wt is not one. */
mf_plain_transport_t *mf_plain_transport_of(const mf_webrtc_transport_t *wt);

/* transport.connect's data {ip?, port?, rtcpPort?, srtpParameters?}: ip+port are required
 * without comedia and refused with it; srtpParameters required iff SRTP is on. rtcpPort is
 * range-checked and otherwise ignored (rtcpMux). MF_ERR_STATE when called twice. */
mf_err_t mf_plain_transport_connect_json(mf_plain_transport_t *p, const json_t *data, char *err,
                                         size_t errsz);

/* {id, tuple:{localIp, localPort, protocol:"udp", remoteIp?, remotePort?}, comedia,
 * rtcpMux, srtpParameters?}. New reference. */
json_t *mf_plain_transport_to_json(const mf_plain_transport_t *p);

uint16_t mf_plain_transport_port(const mf_plain_transport_t *p);
/* false until connect() (not comedia) or the first packet (comedia) gave the remote. */
bool mf_plain_transport_remote(const mf_plain_transport_t *p, struct sockaddr_storage *out);
void mf_plain_transport_get_stats(const mf_plain_transport_t *p, mf_plain_transport_stats_t *out);

#endif
