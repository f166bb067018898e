/* Converting between SDP media sections (node/sdp.h) and mediasoup's RtpParameters
 * (node/rtp_parameters.h): what a WHIP/WHEP endpoint or an SDP-speaking test peer needs to
 * produce from an offer and to describe a consumer in an offer. Pure functions;
 * thread-safe. */
#ifndef MF_SDP_RTP_H
#define MF_SDP_RTP_H

#include "node/rtp_parameters.h"
#include "node/sdp.h"

/* The RtpParameters a peer will SEND with on this (sendonly/sendrecv) section: codecs
 * (rtpmap, fmtp as parameters, rtcp-fb), header extensions, one encoding per a=rid (else
 * one with the first SSRC and its FID RTX SSRC), mid, rtcp {cname, reducedSize, mux}.
 * MF_ERR_INVALID_ARG with err set when the section cannot carry RTP media. */
mf_err_t mf_sdp_rtp_parameters_from_media(const mf_sdp_media_t *m, mf_rtp_parameters_t *out,
                                          char *err, size_t errsz);

/* A media section that sends `params` (a consumer's): kind, mid, payload types with
 * rtpmap/fmtp/rtcp-fb, extmaps, a=ssrc with cname and msid, FID group for RTX, rtcp-mux,
 * rtcp-rsize, the given direction. ICE/DTLS attributes and candidates are the caller's.
 * `stream_id` names the msid stream ("-" if NULL). */
mf_err_t mf_sdp_media_from_rtp_parameters(const mf_rtp_parameters_t *params,
                                          mf_media_kind_t kind, mf_sdp_direction_t direction,
                                          const char *stream_id, mf_sdp_media_t *out);

#endif
