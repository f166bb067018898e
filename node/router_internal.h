/* Struct layouts shared by router.c, producer.c and consumer.c only (one object family,
 * split in three files for size). Everything here runs on the owning worker thread. */
#ifndef MF_ROUTER_INTERNAL_H
#define MF_ROUTER_INTERNAL_H

#include <uv.h>

#include "common/hashmap.h"
#include "common/id.h"
#include "node/audio_level.h"
#include "node/bwe/transport_feedback.h"
#include "node/keyframe_requester.h"
#include "node/layer_selector.h"
#include "node/bwe/bitrate_allocator.h"
#include "node/send_bwe.h"
#include "node/nack_generator.h"
#include "node/pipe_hub.h"
#include "node/router.h"
#include "node/rtp/keyframe.h"
#include "node/rtp/recv_stats.h"
#include "node/rtp/rtcp.h"
#include "node/rtp/rtp.h"
#include "node/rtp_rewriter.h"
#include "node/rtx_store.h"

#define MF_PT_NONE 0xffu
/* How often a simulcast consumer re-checks which layers are active. */
#define MF_CONSUMER_LAYER_CHECK_MS 200

/* A growable array of pointers (control path only: creation and close). */
typedef struct {
  void **items;
  size_t count, cap;
} mf_ptr_list_t;

mf_err_t mf_ptr_list_add(mf_ptr_list_t *l, void *item);
void mf_ptr_list_remove(mf_ptr_list_t *l, void *item);
void mf_ptr_list_free(mf_ptr_list_t *l);

struct mf_router {
  char id[MF_ID_LEN + 1];
  mf_rtc_server_t *rtc;
  mf_rtp_capabilities_t caps;
  mf_hashmap_t *transports; /* id -> mf_router_transport_t */
  mf_hashmap_t *producers;  /* id -> mf_producer_t */
  mf_hashmap_t *consumers;  /* id -> mf_consumer_t */
  mf_ptr_list_t transport_list;
  uv_timer_t timer;
  uint64_t last_rtcp_ms;
  mf_router_event_fn on_event;
  void *ud;
  mf_pipe_hub_t *hub;      /* intra-node pipes; NULL until mf_router_set_pipe_hub */
  uint32_t worker;         /* this router's worker in the hub */
  mf_router_transport_t *pipe_transport; /* holds piped producers; NULL until the first */
  struct mf_data_router *data; /* DataChannels (sctp helper): data_router.c; NULL until used */
};

struct mf_router_transport {
  mf_router_t *router;
  mf_webrtc_transport_t *webrtc; /* NULL: the router's pipe transport (piped producers) */
  mf_ptr_list_t producers;
  mf_ptr_list_t consumers;
  mf_hashmap_t *by_ssrc;          /* uint32 media/rtx ssrc -> mf_producer_stream_t */
  mf_hashmap_t *consumer_by_ssrc; /* uint32 media/rtx ssrc -> mf_consumer_t */
  uint8_t mid_ext_id, rid_ext_id, rrid_ext_id; /* the client's ids, learnt at produce() */
  uint32_t next_mid;
  uint32_t rtcp_ssrc; /* sender SSRC of our RR / NACK / PLI */
  uint64_t dropped_unknown_ssrc; /* RTP no producer stream matched */
  uint32_t last_unknown_ssrc;    /* logged once per SSRC change */
  /* bwe: TWCC/REMB feedback to the publisher (node/bwe/transport_feedback.h); NULL until a
   * producer negotiates transport-cc or goog-remb. */
  mf_transport_feedback_t *feedback;
  /* downstream: estimate from the subscriber's TWCC feedback, layers per consumer
   * (send_bwe.h); NULL until a consumer negotiates transport-cc */
  mf_send_bwe_t *send_bwe;
  struct mf_data_transport *data; /* DataChannels (sctp helper): NULL without SCTP */
};

typedef struct mf_producer_stream {
  mf_producer_t *producer;
  unsigned index;
  bool has_ssrc, has_rtx_ssrc;
  uint32_t ssrc, rtx_ssrc;
  char rid[MF_RTP_RID_MAX];
  uint32_t mapped_ssrc;
  bool stats_started;
  mf_rtp_recv_stats_t stats;
  mf_nack_generator_t *nack; /* video only */
  uint8_t fir_seq;
} mf_producer_stream_t;

struct mf_producer {
  char id[MF_ID_LEN + 1];
  mf_router_t *router;
  mf_router_transport_t *transport;
  mf_media_kind_t kind;
  mf_rtp_parameters_t params;
  mf_rtp_parameters_t consumable;
  mf_rtp_mapping_t mapping;
  uint8_t pt_map[128];       /* producer pt -> router pt (media codecs only) */
  uint8_t rtx_apt[128];      /* producer rtx pt -> producer media pt */
  mf_codec_t codec_by_pt[128];
  uint8_t ext_abs_send_time, ext_audio_level, ext_orientation, ext_toffset;
  bool pli_supported, fir_supported;
  mf_producer_stream_t streams[MF_RTP_MAX_ENCODINGS];
  size_t stream_count;
  mf_keyframe_requester_t *keyframes; /* video only */
  bool paused;
  mf_ptr_list_t consumers;
  uint64_t dropped_unknown_pt, rtx_unrecoverable;
  /* Pipes out: other workers' piped copies of this producer (see mf_producer_add_pipe). */
  struct {
    uint32_t worker, pipe_id;
  } pipes[MF_PRODUCER_MAX_PIPES];
  size_t pipe_count;
  uint64_t pipe_dropped;  /* ring full or target gone */
  /* A piped producer (fed by pipe_in from another worker): no upstream of its own. */
  uint32_t pipe_in;       /* 0: an ordinary producer */
  uint64_t pipe_packets;
  mf_audio_level_t audio_level; /* fed while RtpObservers measure it (observers > 0) */
};

struct mf_consumer {
  char id[MF_ID_LEN + 1];
  mf_router_t *router;
  mf_router_transport_t *transport;
  mf_producer_t *producer;
  mf_media_kind_t kind;
  /* The rtpParameters as compact JSON, for dumps: the parsed form (mf_rtp_parameters_t,
   * fixed arrays for 32 codecs) was 109 kB, half of what a consumer cost. What the media
   * path needs of them is copied out below. */
  char *params_text;
  char mid[MF_RTP_MID_MAX];
  uint8_t mid_len;
  char cname[MF_RTP_CNAME_MAX];
  char mime_type[MF_RTP_MIME_TYPE_MAX];
  uint32_t ssrc, rtx_ssrc;
  bool has_rtx;
  bool pt_ok[128];          /* router media pts the consumer receives */
  uint8_t rtx_pt_for[128];  /* router media pt -> consumer rtx pt */
  uint32_t clock_rate;
  uint8_t ext_mid, ext_abs_send_time, ext_audio_level, ext_orientation, ext_toffset;
  mf_rtp_rewriter_t *rewriter;
  mf_rtx_store_t *store;
  uint16_t rtx_seq;
  bool paused, producer_paused;
  uint64_t packets, bytes, rtx_packets, rtx_bytes;
  uint32_t nacks_received, nack_seqs_received, plis_received, firs_received;
  uint32_t rtt_ms;
  uint8_t fraction_lost;
  uint8_t score;
  uint64_t last_sent_ms;
  uint32_t last_sent_ts;
  /* Simulcast (the producer has several encodings): one spatial stream at a time. */
  bool simulcast;
  bool svc; /* VP9 with several layers in its one encoding: layers dropped in the stream */
  mf_codec_t codec;
  mf_layer_selector_t layers;
  int8_t reported_spatial, reported_temporal; /* last "layerschange" sent */
  uint64_t layers_checked_ms;
  uint64_t layer_switches, dropped_temporal;
  /* VP8 picture id / TL0PICIDX kept continuous across layer switches and dropped frames */
  bool vp8_started;
  uint16_t vp8_pid_offset, vp8_last_pid;
  uint8_t vp8_tl0_offset, vp8_last_tl0;
  /* Bandwidth control (send_bwe.c): transport-wide seq numbers when negotiated, the bytes
   * that arrived per layer in the current window, the allocator's state. */
  uint8_t ext_twcc;
  uint64_t layer_bytes[MF_LAYER_MAX_SPATIAL][MF_LAYER_MAX_TEMPORAL];
  uint64_t bwe_sent_mark;
  mf_bitrate_allocator_consumer_t alloc;
};

/* producer.c. id NULL: a fresh UUID (a piped producer keeps its origin's id). */
mf_err_t mf_producer_create(mf_router_transport_t *t, const char *id, mf_media_kind_t kind,
                            mf_rtp_parameters_t *params, bool paused, char *err, size_t errsz,
                            mf_producer_t **out);
/* The pipe hub's input callback of a piped producer (ud: the producer). */
void mf_producer_on_pipe_packet(void *ud, const mf_pipe_packet_t *pkt);
void mf_producer_on_rtp(mf_router_transport_t *t, mf_buf_t *buf, uint64_t now_ms);
void mf_producer_on_sr(mf_router_transport_t *t, const mf_rtcp_sr_t *sr, uint64_t now_ms);
void mf_producer_request_keyframe(mf_producer_t *p, uint64_t now_ms);
/* Appends RR report blocks of this producer's streams (at most *room). */
void mf_producer_report_blocks(mf_producer_t *p, uint64_t now_ms, mf_rtcp_rr_t *rr);
void mf_producer_tick(mf_producer_t *p, uint64_t now_ms);
/* Once per RTCP interval: recomputes stream scores, emits "score" when one changed. */
void mf_producer_update_scores(mf_producer_t *p, uint64_t now_ms);
void mf_producer_detach_consumer(mf_producer_t *p, mf_consumer_t *c);

/* consumer.c */
mf_err_t mf_consumer_create(mf_router_transport_t *t, mf_producer_t *p,
                            const mf_rtp_capabilities_t *caps, bool paused, char *err,
                            size_t errsz, mf_consumer_t **out);
/* layer: the producer encoding the packet belongs to (simulcast spatial layer). */
void mf_consumer_forward(mf_consumer_t *c, mf_buf_t *orig, const mf_rtp_packet_t *pkt,
                         uint8_t router_pt, bool keyframe, uint32_t mapped_ssrc,
                         unsigned layer, uint64_t now_ms);
/* Layer activity and pending switches of a simulcast consumer (every router tick). */
void mf_consumer_tick(mf_consumer_t *c, uint64_t now_ms);
void mf_consumer_on_nack(mf_consumer_t *c, const mf_rtcp_nack_t *nack, uint64_t now_ms);
void mf_consumer_on_keyframe_request(mf_consumer_t *c, bool fir, uint64_t now_ms);
void mf_consumer_on_report(mf_consumer_t *c, const mf_rtcp_report_block_t *rb, uint64_t now_ms);
void mf_consumer_send_sr(mf_consumer_t *c, uint64_t now_ms);
void mf_consumer_set_producer_paused(mf_consumer_t *c, bool paused);
/* Frees a consumer whose producer is going away (no BYE if the transport is gone). */
void mf_consumer_destroy(mf_consumer_t *c, bool send_bye);

/* router.c */
void mf_router_emit(mf_router_t *r, const char *event, const char *target, json_t *data);
/* Encrypts and sends a compound RTCP packet built in a pool buffer. */
void mf_router_transport_send_rtcp(mf_router_transport_t *t, const uint8_t *data, size_t len);

#endif
