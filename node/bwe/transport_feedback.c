#define MF_LOG_MODULE "bwe"
#include "node/bwe/transport_feedback.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/ortc.h"
#include "node/rtp/rtp.h"

struct mf_transport_feedback {
  mf_transport_feedback_stats_t stats;
  mf_twcc_recorder_t twcc;
  mf_remb_estimator_t remb;
};

static uint8_t twcc_ext_id(const mf_rtp_parameters_t *p) {
  for (size_t i = 0; i < p->header_extension_count; i++)
    if (strcmp(p->header_extensions[i].uri, MF_RTP_EXT_TRANSPORT_CC) == 0)
      return p->header_extensions[i].id;
  return 0;
}

static bool has_remb(const mf_rtp_parameters_t *p) {
  for (size_t i = 0; i < p->codec_count; i++)
    for (size_t k = 0; k < p->codecs[i].rtcp_feedback_count; k++)
      if (strcmp(p->codecs[i].rtcp_feedback[k].type, "goog-remb") == 0) return true;
  return false;
}

mf_err_t mf_transport_feedback_attach(mf_transport_feedback_t **fb,
                                      const mf_rtp_parameters_t *params) {
  uint8_t id = twcc_ext_id(params);
  bool remb = !id && has_remb(params);
  if (!id && !remb) return MF_OK;
  if (!*fb) {
    mf_transport_feedback_t *f = calloc(1, sizeof *f);
    if (!f) return MF_ERR_NO_MEMORY;
    mf_twcc_recorder_init(&f->twcc);
    mf_remb_estimator_init(&f->remb, 0, 0);
    *fb = f;
  }
  mf_transport_feedback_t *f = *fb;
  if (id) {
    if (f->stats.twcc_ext_id != id)
      MF_LOG_DEBUG("transport-cc feedback on (extension id %u)", (unsigned)id);
    f->stats.twcc_ext_id = id;
    f->stats.remb = false;
  } else if (!f->stats.twcc_ext_id) {
    f->stats.remb = true;
  }
  return MF_OK;
}

void mf_transport_feedback_destroy(mf_transport_feedback_t *fb) { free(fb); }

static void flush_twcc(mf_transport_feedback_t *fb, uint32_t sender_ssrc, uint64_t now_us,
                       mf_transport_feedback_send_fn send, void *ud) {
  uint8_t buf[MF_TWCC_FEEDBACK_MAX_BYTES];
  size_t len = 0;
  while (mf_twcc_recorder_build(&fb->twcc, sender_ssrc, now_us, buf, sizeof buf, &len) ==
         MF_OK) {
    fb->stats.twcc_sent++;
    send(ud, buf, len);
  }
}

void mf_transport_feedback_on_rtp(mf_transport_feedback_t *fb, const uint8_t *data,
                                  size_t len, uint64_t now_us, uint32_t sender_ssrc,
                                  mf_transport_feedback_send_fn send, void *ud) {
  if (!fb) return;
  if (fb->stats.remb) mf_remb_estimator_on_packet(&fb->remb, (uint32_t)len, now_us / 1000);
  if (!fb->stats.twcc_ext_id) return;
  mf_rtp_packet_t pkt;
  if (mf_rtp_parse(data, len, &pkt) != MF_OK) return;
  const uint8_t *v = NULL;
  size_t n = 0;
  if (!mf_rtp_get_extension(&pkt, fb->stats.twcc_ext_id, &v, &n) || n != 2) {
    fb->stats.rtp_without_seq++;
    return;
  }
  fb->stats.rtp_with_seq++;
  uint16_t seq = (uint16_t)(v[0] << 8 | v[1]);
  if (mf_twcc_recorder_on_packet(&fb->twcc, seq, pkt.ssrc, now_us))
    flush_twcc(fb, sender_ssrc, now_us, send, ud);
}

void mf_transport_feedback_tick(mf_transport_feedback_t *fb, uint32_t sender_ssrc,
                                uint64_t now_us, mf_transport_feedback_send_fn send,
                                void *ud) {
  if (!fb || !fb->stats.twcc_ext_id) return;
  if (mf_twcc_recorder_due(&fb->twcc, now_us)) flush_twcc(fb, sender_ssrc, now_us, send, ud);
}

void mf_transport_feedback_add_remb(mf_transport_feedback_t *fb, mf_rtcp_compound_t *c,
                                    const mf_rtcp_rr_t *rr, uint64_t now_ms) {
  if (!fb || !fb->stats.remb || rr->report_count == 0) return;
  uint8_t worst = 0;
  mf_rtcp_remb_t remb = {.sender_ssrc = rr->ssrc, .media_ssrc = 0};
  for (size_t i = 0; i < rr->report_count; i++) {
    if (rr->reports[i].fraction_lost > worst) worst = rr->reports[i].fraction_lost;
    remb.ssrcs[remb.ssrc_count++] = rr->reports[i].ssrc;
  }
  remb.bitrate = mf_remb_estimator_update(&fb->remb, worst, now_ms);
  if (mf_rtcp_compound_add_remb(c, &remb) == MF_OK) {
    fb->stats.remb_sent++;
    fb->stats.remb_bps = (uint32_t)remb.bitrate;
  }
}

void mf_transport_feedback_get_stats(const mf_transport_feedback_t *fb,
                                     mf_transport_feedback_stats_t *out) {
  *out = fb->stats;
  out->twcc = fb->twcc.stats;
}
