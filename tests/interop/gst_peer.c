/* gst_peer: a GStreamer webrtcbin peer that interop tests drive over stdin/stdout.
 *
 *   gst_peer --mode send [--video] [--audio] [--duration SEC] [--gather]
 *       Sends VP8 (pt 96) and/or Opus (pt 111) test media. Prints an offer, reads an answer.
 *   gst_peer --mode recv [--video] [--audio] [--offer] [--duration SEC] [--gather]
 *       Decodes what arrives and counts it. Reads an offer and prints an answer, or with
 *       --offer creates a recvonly offer (one section per --video/--audio) and reads an
 *       answer.
 *
 * Protocol, one item per line, stdout flushed after every line:
 *   out: SDP-OFFER | SDP-ANSWER, the SDP lines, END
 *   out: CANDIDATE <mline> <candidate:...>      (local candidates as webrtcbin finds them)
 *   out: ICE <state>  PC <state>  DTLS <state>  GATHERING <state>  SIGNALING <state>
 *   out: STATS video_packets_sent=N audio_packets_sent=N frames_decoded=N audio_buffers=N
 *              frames_sent=N (VP8 frames out of the encoder)
 *   out: DONE frames_decoded=N audio_buffers=N packets_sent=N   (then exit 0)
 *   out: ERROR <text>                                             (then exit 1)
 *   in:  SDP-OFFER | SDP-ANSWER, the SDP lines, END
 *   in:  CANDIDATE <mline> <candidate:...>      (optional: a=candidate lines inside the
 *                                                remote SDP are applied by webrtcbin too)
 *   in:  QUIT                                   (same as closing stdin)
 * Exit after --duration seconds (default 10) or when stdin closes.
 * --nack enables NACK and RTX (do-nack) on every transceiver: a sender answers NACKs with
 * RTX, a receiver sends NACKs for lost packets.
 *
 * --gather prints our SDP only once ICE gathering completes, taken from the
 * local-description, which then holds webrtcbin's a=candidate lines (no trickle needed).
 *
 * Loopback: libnice gathers no 127.0.0.1 host candidate on its own (it skips loopback
 * interfaces whenever another interface is up). --loopback (default on; --no-loopback
 * turns it off) registers 127.0.0.1 as the agent's only local address through
 * GstWebRTCNice's "agent" property and nice_agent_add_local_address(), so all candidates
 * are on 127.0.0.1 and two peers (or a peer and an SFU) on this host connect over lo.
 *
 * What webrtcbin 1.22 does (seen with this program, for writing SFU interop tests):
 *  - Its offer has no a=candidate lines (trickle: they arrive as CANDIDATE output). With
 *    --gather the printed SDP is the local-description after gathering, which carries
 *    a=candidate lines in the first m= section (port stays 9, no a=end-of-candidates).
 *  - It applies a=candidate lines found in a remote SDP: offers and answers carrying
 *    them connect without any CANDIDATE input; ice-lite answers are accepted (it keeps
 *    the controlling role and sends Binding requests to the SDP candidates), and as the
 *    answerer to an ice-lite offer it takes the controlling role too.
 *  - With max-bundle the second section is offered with port 0 and a=bundle-only; every
 *    section carries ice-ufrag/pwd, fingerprint, setup:actpass and a=rtcp-mux-only.
 *  - The ssrc pinned in the caps appears as a=ssrc:<ssrc> cname/msid lines; there is no
 *    media-level a=msid. Opus is offered as "OPUS/48000/2".
 *  - get-stats labels every bundled outbound-rtp entry with the same "kind", so packets
 *    are attributed by ssrc here.
 *
 * Not Mafalda code: a test tool. It uses GLib's threads as webrtcbin requires; printing
 * is serialised by a mutex. */
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#define GST_USE_UNSTABLE_API
#include <gst/webrtc/webrtc.h>
#include <nice/agent.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIDEO_PT 96
#define AUDIO_PT 111
#define VIDEO_SSRC 0x11223344u
#define AUDIO_SSRC 0x55667788u

typedef enum { MODE_SEND, MODE_RECV } peer_mode_t;
typedef enum { READ_NONE, READ_OFFER, READ_ANSWER } read_state_t;

typedef struct {
  peer_mode_t mode;
  gboolean video, audio, recv_offers, gather, loopback;
  guint duration;

  GMainLoop *loop;
  GstElement *pipe;
  GstElement *webrtc;
  GMutex out_lock;
  int exit_code;
  gboolean offer_started;
  gboolean dtls_watched;
  gboolean sdp_printed;
  const char *pending_sdp_tag; /* printed once gathering completes (--gather) */

  read_state_t reading;
  GString *sdp_in;

  gint video_sent, audio_sent;     /* RTP packets handed to webrtcbin */
  gint frames_decoded, audio_buffers;
  gint frames_sent; /* VP8 frames out of the encoder (send mode) */
  gboolean nack;    /* --nack: NACK/RTX on every transceiver */
  guint64 stats_video_sent, stats_audio_sent; /* from get-stats outbound-rtp, if any */
} peer_t;

static peer_t g_peer;

/* Lets the sanitizer build run this GLib program: GStreamer keeps registry and type
 * allocations for the whole process life, which LeakSanitizer would report at exit. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_leaks=0"; }

static void out(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static void out(const char *fmt, ...) {
  va_list ap;
  g_mutex_lock(&g_peer.out_lock);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
  fflush(stdout);
  g_mutex_unlock(&g_peer.out_lock);
}

static gboolean quit_idle(gpointer data) {
  (void)data;
  g_main_loop_quit(g_peer.loop);
  return G_SOURCE_REMOVE;
}

/* Callable from any thread: the first error wins and ends the program with 1. */
static void fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gchar *text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  for (char *c = text; *c; c++)
    if (*c == '\n' || *c == '\r') *c = ' ';
  g_mutex_lock(&g_peer.out_lock);
  gboolean first = g_peer.exit_code == 0;
  g_peer.exit_code = 1;
  g_mutex_unlock(&g_peer.out_lock);
  if (first) out("ERROR %s", text);
  g_free(text);
  g_idle_add(quit_idle, NULL);
}

static const char *enum_nick(GType type, gint value) {
  GEnumClass *klass = g_type_class_ref(type);
  GEnumValue *v = g_enum_get_value(klass, value);
  const char *nick = v ? v->value_nick : "unknown";
  g_type_class_unref(klass); /* enum classes stay alive once created */
  return nick;
}

/* Prints SDP text as protocol lines (LF only, no blank lines). */
static void print_sdp(const char *tag, const GstSDPMessage *sdp) {
  gchar *text = gst_sdp_message_as_text(sdp);
  g_mutex_lock(&g_peer.out_lock);
  printf("%s\n", tag);
  gchar **lines = g_strsplit(text, "\n", -1);
  for (gchar **l = lines; *l; l++) {
    g_strchomp(*l);
    if (**l) printf("%s\n", *l);
  }
  printf("END\n");
  fflush(stdout);
  g_mutex_unlock(&g_peer.out_lock);
  g_strfreev(lines);
  g_free(text);
}

static void print_local_description(const char *tag) {
  GstWebRTCSessionDescription *desc = NULL;
  g_object_get(g_peer.webrtc, "local-description", &desc, NULL);
  if (!desc) {
    fail("no local description to print");
    return;
  }
  print_sdp(tag, desc->sdp);
  gst_webrtc_session_description_free(desc);
}

/* ---------------------------------------------------------------- state reporting */

static void on_dtls_state(GObject *obj, GParamSpec *pspec, gpointer data) {
  (void)pspec;
  (void)data;
  GstWebRTCDTLSTransportState state;
  g_object_get(obj, "state", &state, NULL);
  out("DTLS %s", enum_nick(GST_TYPE_WEBRTC_DTLS_TRANSPORT_STATE, state));
}

/* With max-bundle every transceiver shares transceiver 0's DTLS transport. */
static void watch_dtls(void) {
  if (g_peer.dtls_watched) return;
  GstWebRTCRTPTransceiver *trans = NULL;
  g_signal_emit_by_name(g_peer.webrtc, "get-transceiver", 0, &trans);
  if (!trans) return;
  GstWebRTCRTPSender *sender = NULL;
  GstWebRTCRTPReceiver *receiver = NULL;
  GstWebRTCDTLSTransport *dtls = NULL;
  g_object_get(trans, "sender", &sender, "receiver", &receiver, NULL);
  if (sender) g_object_get(sender, "transport", &dtls, NULL);
  if (!dtls && receiver) g_object_get(receiver, "transport", &dtls, NULL);
  if (dtls) {
    g_signal_connect(dtls, "notify::state", G_CALLBACK(on_dtls_state), NULL);
    g_peer.dtls_watched = TRUE;
    gst_object_unref(dtls);
  }
  if (sender) gst_object_unref(sender);
  if (receiver) gst_object_unref(receiver);
  gst_object_unref(trans);
}

static void on_ice_state(GObject *obj, GParamSpec *pspec, gpointer data) {
  (void)pspec;
  (void)data;
  GstWebRTCICEConnectionState state;
  g_object_get(obj, "ice-connection-state", &state, NULL);
  out("ICE %s", enum_nick(GST_TYPE_WEBRTC_ICE_CONNECTION_STATE, state));
}

static void on_pc_state(GObject *obj, GParamSpec *pspec, gpointer data) {
  (void)pspec;
  (void)data;
  GstWebRTCPeerConnectionState state;
  g_object_get(obj, "connection-state", &state, NULL);
  out("PC %s", enum_nick(GST_TYPE_WEBRTC_PEER_CONNECTION_STATE, state));
}

static void on_signaling_state(GObject *obj, GParamSpec *pspec, gpointer data) {
  (void)pspec;
  (void)data;
  GstWebRTCSignalingState state;
  g_object_get(obj, "signaling-state", &state, NULL);
  out("SIGNALING %s", enum_nick(GST_TYPE_WEBRTC_SIGNALING_STATE, state));
}

static void on_gathering_state(GObject *obj, GParamSpec *pspec, gpointer data) {
  (void)pspec;
  (void)data;
  GstWebRTCICEGatheringState state;
  g_object_get(obj, "ice-gathering-state", &state, NULL);
  out("GATHERING %s", enum_nick(GST_TYPE_WEBRTC_ICE_GATHERING_STATE, state));
  if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE && g_peer.pending_sdp_tag &&
      !g_peer.sdp_printed) {
    g_peer.sdp_printed = TRUE;
    print_local_description(g_peer.pending_sdp_tag);
  }
}

static void on_ice_candidate(GstElement *webrtc, guint mline, gchar *candidate, gpointer data) {
  (void)webrtc;
  (void)data;
  out("CANDIDATE %u %s", mline, candidate);
}

/* ---------------------------------------------------------------- negotiation */

static GstWebRTCSessionDescription *promise_description(GstPromise *promise, const char *field,
                                                        const char *what) {
  GstWebRTCSessionDescription *desc = NULL;
  if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED) {
    fail("%s: promise not replied", what);
    return NULL;
  }
  const GstStructure *reply = gst_promise_get_reply(promise);
  GError *error = NULL;
  if (reply && gst_structure_get(reply, "error", G_TYPE_ERROR, &error, NULL) && error) {
    fail("%s: %s", what, error->message);
    g_error_free(error);
    return NULL;
  }
  if (!reply || !gst_structure_get(reply, field, GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc,
                                    NULL)) {
    fail("%s: no %s in reply", what, field);
    return NULL;
  }
  return desc;
}

typedef struct {
  GstWebRTCSessionDescription *desc;
  const char *tag;
} local_set_t;

static void local_set_free(gpointer data) {
  local_set_t *ls = data;
  gst_webrtc_session_description_free(ls->desc);
  g_free(ls);
}

/* Runs on webrtcbin's operation thread: must not wait on another webrtcbin promise. */
static void on_local_set(GstPromise *promise, gpointer data) {
  local_set_t *ls = data;
  const GstStructure *reply = gst_promise_get_reply(promise);
  GError *error = NULL;
  if (reply && gst_structure_get(reply, "error", G_TYPE_ERROR, &error, NULL) && error) {
    fail("set-local-description: %s", error->message);
    g_error_free(error);
    return;
  }
  watch_dtls();
  if (!g_peer.gather) {
    g_peer.sdp_printed = TRUE;
    print_sdp(ls->tag, ls->desc->sdp);
    return;
  }
  GstWebRTCICEGatheringState state;
  g_object_get(g_peer.webrtc, "ice-gathering-state", &state, NULL);
  g_peer.pending_sdp_tag = ls->tag;
  if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE && !g_peer.sdp_printed) {
    g_peer.sdp_printed = TRUE;
    print_local_description(ls->tag);
  }
}

/* Sets our description; prints it once set, or after gathering with --gather. */
static void set_local_and_print(GstWebRTCSessionDescription *desc, const char *tag) {
  local_set_t *ls = g_new0(local_set_t, 1);
  ls->desc = gst_webrtc_session_description_copy(desc);
  ls->tag = tag;
  GstPromise *promise = gst_promise_new_with_change_func(on_local_set, ls, local_set_free);
  g_signal_emit_by_name(g_peer.webrtc, "set-local-description", desc, promise);
  gst_promise_unref(promise);
}

static void on_offer_created(GstPromise *promise, gpointer data) {
  (void)data;
  GstWebRTCSessionDescription *offer = promise_description(promise, "offer", "create-offer");
  gst_promise_unref(promise);
  if (!offer) return;
  set_local_and_print(offer, "SDP-OFFER");
  gst_webrtc_session_description_free(offer);
}

static void create_offer(void) {
  if (g_peer.offer_started) return;
  g_peer.offer_started = TRUE;
  GstPromise *promise = gst_promise_new_with_change_func(on_offer_created, NULL, NULL);
  g_signal_emit_by_name(g_peer.webrtc, "create-offer", NULL, promise);
}

static void on_negotiation_needed(GstElement *webrtc, gpointer data) {
  (void)webrtc;
  (void)data;
  /* Recv mode answers a remote offer unless it was asked to offer itself. */
  if (g_peer.mode == MODE_SEND) {
    /* webrtcbin makes sendrecv transceivers for its sink pads; a publisher only sends. */
    GArray *all = NULL;
    g_signal_emit_by_name(g_peer.webrtc, "get-transceivers", &all);
    for (guint i = 0; all && i < all->len; i++)
      g_object_set(g_array_index(all, GstWebRTCRTPTransceiver *, i), "direction",
                   GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, "do-nack", g_peer.nack, NULL);
    if (all) g_array_unref(all);
  }
  if (g_peer.mode == MODE_SEND || g_peer.recv_offers) create_offer();
}

static void on_answer_created(GstPromise *promise, gpointer data) {
  (void)data;
  GstWebRTCSessionDescription *answer = promise_description(promise, "answer", "create-answer");
  gst_promise_unref(promise);
  if (!answer) return;
  set_local_and_print(answer, "SDP-ANSWER");
  gst_webrtc_session_description_free(answer);
}

static void on_remote_set(GstPromise *promise, gpointer data) {
  gboolean is_offer = GPOINTER_TO_INT(data);
  const GstStructure *reply = NULL;
  if (gst_promise_wait(promise) == GST_PROMISE_RESULT_REPLIED)
    reply = gst_promise_get_reply(promise);
  GError *error = NULL;
  if (reply && gst_structure_get(reply, "error", G_TYPE_ERROR, &error, NULL) && error) {
    fail("set-remote-description: %s", error->message);
    g_error_free(error);
    gst_promise_unref(promise);
    return;
  }
  gst_promise_unref(promise);
  watch_dtls();
  if (is_offer) {
    GstPromise *p = gst_promise_new_with_change_func(on_answer_created, NULL, NULL);
    g_signal_emit_by_name(g_peer.webrtc, "create-answer", NULL, p);
  }
}

static void apply_remote_sdp(read_state_t kind, const char *text) {
  GstSDPMessage *sdp = NULL;
  if (gst_sdp_message_new_from_text(text, &sdp) != GST_SDP_OK) {
    fail("cannot parse the remote SDP");
    return;
  }
  gboolean is_offer = kind == READ_OFFER;
  GstWebRTCSessionDescription *desc = gst_webrtc_session_description_new(
      is_offer ? GST_WEBRTC_SDP_TYPE_OFFER : GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
  GstPromise *promise =
      gst_promise_new_with_change_func(on_remote_set, GINT_TO_POINTER(is_offer), NULL);
  g_signal_emit_by_name(g_peer.webrtc, "set-remote-description", desc, promise);
  gst_webrtc_session_description_free(desc);
}

/* ---------------------------------------------------------------- stdin protocol */

static void handle_line(char *line) {
  g_strchomp(line);
  if (g_peer.reading != READ_NONE) {
    if (strcmp(line, "END") == 0) {
      read_state_t kind = g_peer.reading;
      g_peer.reading = READ_NONE;
      apply_remote_sdp(kind, g_peer.sdp_in->str);
      g_string_truncate(g_peer.sdp_in, 0);
    } else if (*line) {
      g_string_append(g_peer.sdp_in, line);
      g_string_append(g_peer.sdp_in, "\r\n");
    }
    return;
  }
  if (strcmp(line, "SDP-OFFER") == 0) {
    if (g_peer.mode == MODE_SEND || g_peer.recv_offers) {
      fail("this peer makes the offer; it cannot take one");
      return;
    }
    g_peer.reading = READ_OFFER;
  } else if (strcmp(line, "SDP-ANSWER") == 0) {
    g_peer.reading = READ_ANSWER;
  } else if (g_str_has_prefix(line, "CANDIDATE ")) {
    char *end = NULL;
    guint64 mline = g_ascii_strtoull(line + 10, &end, 10);
    if (end == line + 10 || *end != ' ') {
      fail("bad CANDIDATE line");
      return;
    }
    char *cand = end + 1;
    if (g_str_has_prefix(cand, "a=")) cand += 2;
    if (*cand) g_signal_emit_by_name(g_peer.webrtc, "add-ice-candidate", (guint)mline, cand);
  } else if (strcmp(line, "QUIT") == 0) {
    g_main_loop_quit(g_peer.loop);
  } else if (*line) {
    fail("unknown input line: %s", line);
  }
}

static gboolean on_stdin(GIOChannel *ch, GIOCondition cond, gpointer data) {
  (void)data;
  for (;;) {
    gchar *line = NULL;
    gsize len = 0;
    GError *error = NULL;
    GIOStatus st = g_io_channel_read_line(ch, &line, &len, NULL, &error);
    if (st == G_IO_STATUS_NORMAL) {
      handle_line(line);
      g_free(line);
      /* Keep reading while whole lines are buffered. */
      if (!(g_io_channel_get_buffer_condition(ch) & G_IO_IN)) break;
      continue;
    }
    if (error) g_error_free(error);
    if (st == G_IO_STATUS_AGAIN) break;
    /* EOF or error: stdin closed, finish normally. */
    g_main_loop_quit(g_peer.loop);
    return G_SOURCE_REMOVE;
  }
  if (cond & (G_IO_HUP | G_IO_ERR)) {
    g_main_loop_quit(g_peer.loop);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

/* ---------------------------------------------------------------- media */

static GstPadProbeReturn count_sent(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  (void)pad;
  gint *counter = data;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST)
    g_atomic_int_add(counter, (gint)gst_buffer_list_length(GST_PAD_PROBE_INFO_BUFFER_LIST(info)));
  else
    g_atomic_int_inc(counter);
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn count_decoded(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  (void)pad;
  (void)info;
  g_atomic_int_inc((gint *)data);
  return GST_PAD_PROBE_OK;
}

static void on_decoded_pad(GstElement *decodebin, GstPad *pad, gpointer data) {
  (void)data;
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, NULL);
  const char *name = gst_structure_get_name(gst_caps_get_structure(caps, 0));
  gint *counter = g_str_has_prefix(name, "video/")   ? &g_peer.frames_decoded
                  : g_str_has_prefix(name, "audio/") ? &g_peer.audio_buffers
                                                     : NULL;
  gst_caps_unref(caps);
  GstElement *sink = gst_element_factory_make("fakesink", NULL);
  g_object_set(sink, "sync", FALSE, "async", FALSE, NULL);
  gst_bin_add(GST_BIN(g_peer.pipe), sink);
  gst_element_sync_state_with_parent(sink);
  GstPad *sinkpad = gst_element_get_static_pad(sink, "sink");
  if (gst_pad_link(pad, sinkpad) != GST_PAD_LINK_OK)
    fail("cannot link decoded pad of %s", GST_ELEMENT_NAME(decodebin));
  else if (counter)
    gst_pad_add_probe(sinkpad, GST_PAD_PROBE_TYPE_BUFFER, count_decoded, counter, NULL);
  gst_object_unref(sinkpad);
}

static void on_incoming_pad(GstElement *webrtc, GstPad *pad, gpointer data) {
  (void)webrtc;
  (void)data;
  if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
  GstElement *decodebin = gst_element_factory_make("decodebin", NULL);
  g_signal_connect(decodebin, "pad-added", G_CALLBACK(on_decoded_pad), NULL);
  gst_bin_add(GST_BIN(g_peer.pipe), decodebin);
  gst_element_sync_state_with_parent(decodebin);
  GstPad *sinkpad = gst_element_get_static_pad(decodebin, "sink");
  if (gst_pad_link(pad, sinkpad) != GST_PAD_LINK_OK) fail("cannot link incoming webrtc pad");
  gst_object_unref(sinkpad);
}

static void add_recv_transceiver(const char *caps_text) {
  GstCaps *caps = gst_caps_from_string(caps_text);
  GstWebRTCRTPTransceiver *trans = NULL;
  g_signal_emit_by_name(g_peer.webrtc, "add-transceiver",
                        GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &trans);
  gst_caps_unref(caps);
  if (trans) gst_object_unref(trans);
}

static void probe_payloader(const char *name, gint *counter) {
  GstElement *pay = gst_bin_get_by_name(GST_BIN(g_peer.pipe), name);
  if (!pay) return;
  GstPad *src = gst_element_get_static_pad(pay, "src");
  gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST, count_sent,
                    counter, NULL);
  gst_object_unref(src);
  gst_object_unref(pay);
}

/* Restricts the agent to 127.0.0.1 (see the header comment). */
static void setup_loopback(void) {
  GObject *ice = NULL;
  g_object_get(g_peer.webrtc, "ice-agent", &ice, NULL);
  if (!ice) {
    fail("webrtcbin has no ice-agent");
    return;
  }
  if (!g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent")) {
    fail("ice-agent has no \"agent\" property; cannot enable loopback");
    g_object_unref(ice);
    return;
  }
  NiceAgent *agent = NULL;
  g_object_get(ice, "agent", &agent, NULL);
  NiceAddress addr;
  nice_address_init(&addr);
  if (!agent || !nice_address_set_from_string(&addr, "127.0.0.1") ||
      !nice_agent_add_local_address(agent, &addr))
    fail("cannot add 127.0.0.1 to the NiceAgent");
  /* RFC 7675: an ICE-lite SFU withdraws consent after 30 s without a Binding request, and
   * libnice keeps a pair alive with Binding indications unless told otherwise. Browsers
   * send consent checks; so must this peer. */
  if (agent && g_object_class_find_property(G_OBJECT_GET_CLASS(agent), "keepalive-conncheck"))
    g_object_set(agent, "keepalive-conncheck", TRUE, NULL);
  if (agent) g_object_unref(agent);
  g_object_unref(ice);
}

/* ---------------------------------------------------------------- stats */

static gboolean stats_field(GQuark field, const GValue *value, gpointer data) {
  (void)field;
  (void)data;
  if (!GST_VALUE_HOLDS_STRUCTURE(value)) return TRUE;
  const GstStructure *s = gst_value_get_structure(value);
  GstWebRTCStatsType type;
  if (!gst_structure_get(s, "type", GST_TYPE_WEBRTC_STATS_TYPE, &type, NULL)) return TRUE;
  if (type != GST_WEBRTC_STATS_OUTBOUND_RTP) return TRUE;
  guint ssrc = 0;
  guint64 packets = 0;
  gst_structure_get_uint(s, "ssrc", &ssrc);
  if (!gst_structure_get_uint64(s, "packets-sent", &packets)) return TRUE;
  /* Matched by ssrc: 1.22 labels every bundled outbound-rtp entry with one "kind". */
  g_mutex_lock(&g_peer.out_lock);
  if (ssrc == VIDEO_SSRC) g_peer.stats_video_sent = packets;
  if (ssrc == AUDIO_SSRC) g_peer.stats_audio_sent = packets;
  g_mutex_unlock(&g_peer.out_lock);
  return TRUE;
}

static void on_stats(GstPromise *promise, gpointer data) {
  (void)data;
  if (gst_promise_wait(promise) == GST_PROMISE_RESULT_REPLIED) {
    const GstStructure *reply = gst_promise_get_reply(promise);
    if (reply) gst_structure_foreach(reply, stats_field, NULL);
  }
  gst_promise_unref(promise);
}

/* rtpsession's count once get-stats has one; before that, what the payloader produced. */
static guint64 sent_count(gint probe, const guint64 *stats) {
  g_mutex_lock(&g_peer.out_lock);
  guint64 v = *stats;
  g_mutex_unlock(&g_peer.out_lock);
  return v ? v : (guint64)probe;
}

static gboolean on_tick(gpointer data) {
  (void)data;
  GstPromise *promise = gst_promise_new_with_change_func(on_stats, NULL, NULL);
  g_signal_emit_by_name(g_peer.webrtc, "get-stats", NULL, promise);
  out("STATS video_packets_sent=%" G_GUINT64_FORMAT " audio_packets_sent=%" G_GUINT64_FORMAT
      " frames_decoded=%d audio_buffers=%d frames_sent=%d",
      sent_count(g_atomic_int_get(&g_peer.video_sent), &g_peer.stats_video_sent),
      sent_count(g_atomic_int_get(&g_peer.audio_sent), &g_peer.stats_audio_sent),
      g_atomic_int_get(&g_peer.frames_decoded), g_atomic_int_get(&g_peer.audio_buffers),
      g_atomic_int_get(&g_peer.frames_sent));
  return G_SOURCE_CONTINUE;
}

static gboolean on_bus(GstBus *bus, GstMessage *msg, gpointer data) {
  (void)bus;
  (void)data;
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *error = NULL;
    gchar *debug = NULL;
    gst_message_parse_error(msg, &error, &debug);
    fail("%s: %s", GST_OBJECT_NAME(msg->src), error ? error->message : "unknown error");
    if (error) g_error_free(error);
    g_free(debug);
  }
  return G_SOURCE_CONTINUE;
}

/* ---------------------------------------------------------------- main */

static void usage(void) {
  fprintf(stderr,
          "usage: gst_peer --mode send|recv [--video] [--audio] [--offer] [--gather]\n"
          "                [--duration SEC] [--no-loopback]\n");
}

static gboolean parse_args(int argc, char **argv) {
  g_peer.duration = 10;
  g_peer.loopback = TRUE;
  gboolean have_mode = FALSE;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--mode") == 0 && i + 1 < argc) {
      const char *m = argv[++i];
      if (strcmp(m, "send") == 0) g_peer.mode = MODE_SEND;
      else if (strcmp(m, "recv") == 0) g_peer.mode = MODE_RECV;
      else return FALSE;
      have_mode = TRUE;
    } else if (strcmp(a, "--video") == 0) {
      g_peer.video = TRUE;
    } else if (strcmp(a, "--audio") == 0) {
      g_peer.audio = TRUE;
    } else if (strcmp(a, "--offer") == 0) {
      g_peer.recv_offers = TRUE;
    } else if (strcmp(a, "--gather") == 0) {
      g_peer.gather = TRUE;
    } else if (strcmp(a, "--nack") == 0) {
      g_peer.nack = TRUE;
    } else if (strcmp(a, "--no-loopback") == 0) {
      g_peer.loopback = FALSE;
    } else if (strcmp(a, "--duration") == 0 && i + 1 < argc) {
      char *end = NULL;
      unsigned long d = strtoul(argv[++i], &end, 10);
      if (!end || *end || d == 0 || d > 86400) return FALSE;
      g_peer.duration = (guint)d;
    } else {
      return FALSE;
    }
  }
  if (!have_mode) return FALSE;
  if (!g_peer.video && !g_peer.audio) g_peer.video = g_peer.audio = TRUE;
  return TRUE;
}

/* Transceivers webrtcbin makes for a remote offer get NACK/RTX here (--nack). */
static void on_new_transceiver(GstElement *webrtc, GstWebRTCRTPTransceiver *trans, gpointer data) {
  (void)webrtc;
  (void)data;
  if (g_peer.nack) g_object_set(trans, "do-nack", TRUE, NULL);
}

static GstElement *build_pipeline(void) {
  GString *desc = g_string_new("webrtcbin name=webrtc bundle-policy=max-bundle ");
  if (g_peer.mode == MODE_SEND && g_peer.video)
    g_string_append_printf(desc,
                           "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,"
                           "framerate=30/1 ! videoconvert ! vp8enc name=venc deadline=1 ! "
                           "rtpvp8pay name=vpay pt=%d ssrc=%u picture-id-mode=15-bit ! "
                           "application/x-rtp,media=video,encoding-name=VP8,payload=%d,"
                           "clock-rate=90000,ssrc=(uint)%u ! webrtc. ",
                           VIDEO_PT, VIDEO_SSRC, VIDEO_PT, VIDEO_SSRC);
  if (g_peer.mode == MODE_SEND && g_peer.audio)
    g_string_append_printf(desc,
                           "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! "
                           "opusenc ! rtpopuspay name=apay pt=%d ssrc=%u ! "
                           "application/x-rtp,media=audio,encoding-name=OPUS,payload=%d,"
                           "clock-rate=48000,ssrc=(uint)%u ! webrtc. ",
                           AUDIO_PT, AUDIO_SSRC, AUDIO_PT, AUDIO_SSRC);
  GError *error = NULL;
  GstElement *pipe = gst_parse_launch(desc->str, &error);
  g_string_free(desc, TRUE);
  if (error) {
    out("ERROR pipeline: %s", error->message);
    g_error_free(error);
    if (pipe) gst_object_unref(pipe);
    return NULL;
  }
  if (!GST_IS_PIPELINE(pipe)) { /* a lone webrtcbin (recv mode) comes back unwrapped */
    GstElement *wrap = gst_pipeline_new(NULL);
    gst_bin_add(GST_BIN(wrap), pipe);
    pipe = wrap;
  }
  return pipe;
}

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  g_mutex_init(&g_peer.out_lock);
  if (!parse_args(argc, argv)) {
    usage();
    return 2;
  }
  g_peer.sdp_in = g_string_new(NULL);
  g_peer.loop = g_main_loop_new(NULL, FALSE);
  g_peer.pipe = build_pipeline();
  if (!g_peer.pipe) return 1;
  g_peer.webrtc = gst_bin_get_by_name(GST_BIN(g_peer.pipe), "webrtc");

  if (g_peer.loopback) setup_loopback();
  g_signal_connect(g_peer.webrtc, "on-new-transceiver", G_CALLBACK(on_new_transceiver), NULL);
  g_signal_connect(g_peer.webrtc, "on-negotiation-needed", G_CALLBACK(on_negotiation_needed), NULL);
  {
    GstElement *venc = gst_bin_get_by_name(GST_BIN(g_peer.pipe), "venc");
    if (venc) {
      GstPad *src = gst_element_get_static_pad(venc, "src");
      gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, count_decoded, &g_peer.frames_sent, NULL);
      gst_object_unref(src);
      gst_object_unref(venc);
    }
  }
  g_signal_connect(g_peer.webrtc, "on-ice-candidate", G_CALLBACK(on_ice_candidate), NULL);
  g_signal_connect(g_peer.webrtc, "pad-added", G_CALLBACK(on_incoming_pad), NULL);
  g_signal_connect(g_peer.webrtc, "notify::ice-connection-state", G_CALLBACK(on_ice_state), NULL);
  g_signal_connect(g_peer.webrtc, "notify::connection-state", G_CALLBACK(on_pc_state), NULL);
  g_signal_connect(g_peer.webrtc, "notify::signaling-state", G_CALLBACK(on_signaling_state), NULL);
  g_signal_connect(g_peer.webrtc, "notify::ice-gathering-state", G_CALLBACK(on_gathering_state),
                   NULL);
  if (g_peer.mode == MODE_RECV && g_peer.recv_offers) {
    if (g_peer.video)
      add_recv_transceiver("application/x-rtp,media=video,encoding-name=VP8,payload=96,"
                           "clock-rate=90000");
    if (g_peer.audio)
      add_recv_transceiver("application/x-rtp,media=audio,encoding-name=OPUS,payload=111,"
                           "clock-rate=48000,encoding-params=(string)2");
  }
  probe_payloader("vpay", &g_peer.video_sent);
  probe_payloader("apay", &g_peer.audio_sent);

  GstBus *bus = gst_pipeline_get_bus(GST_PIPELINE(g_peer.pipe));
  gst_bus_add_watch(bus, on_bus, NULL);
  gst_object_unref(bus);

  GIOChannel *in = g_io_channel_unix_new(0);
  /* A partial line then returns G_IO_STATUS_AGAIN instead of stalling the main loop. */
  g_io_channel_set_flags(in, G_IO_FLAG_NONBLOCK, NULL);
  g_io_add_watch(in, G_IO_IN | G_IO_HUP | G_IO_ERR, on_stdin, NULL);
  g_timeout_add_seconds(1, on_tick, NULL);
  g_timeout_add_seconds(g_peer.duration, quit_idle, NULL);

  if (gst_element_set_state(g_peer.pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
    fail("pipeline refused to play");
  else
    g_main_loop_run(g_peer.loop);

  gst_element_set_state(g_peer.pipe, GST_STATE_NULL);
  guint64 sent = sent_count(g_atomic_int_get(&g_peer.video_sent), &g_peer.stats_video_sent) +
                 sent_count(g_atomic_int_get(&g_peer.audio_sent), &g_peer.stats_audio_sent);
  out("DONE frames_decoded=%d audio_buffers=%d packets_sent=%" G_GUINT64_FORMAT,
      g_atomic_int_get(&g_peer.frames_decoded), g_atomic_int_get(&g_peer.audio_buffers), sent);
  g_io_channel_unref(in);
  gst_object_unref(g_peer.webrtc);
  gst_object_unref(g_peer.pipe);
  g_main_loop_unref(g_peer.loop);
  g_string_free(g_peer.sdp_in, TRUE);
  return g_peer.exit_code;
}
