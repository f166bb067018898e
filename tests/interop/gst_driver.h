/* Drives a gst_peer child process from a test's libuv loop: spawns it with piped
 * stdin/stdout, splits its output into lines, collects the SDP it prints, tracks its
 * ICE/DTLS/statistics lines, and stops it (QUIT, then SIGKILL after a grace period). */
#ifndef MF_GST_DRIVER_H
#define MF_GST_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct {
  const char *name; /* prefix for its echoed lines */
  uv_loop_t *loop;
  uv_process_t proc;
  uv_pipe_t in, out;
  uv_timer_t grace; /* stop()'s deadline; closed with the other handles */
  bool grace_over;
  bool running;
  int exit_status;
  char line[8192];
  size_t line_len;
  bool in_sdp;
  char sdp_tag[16]; /* "SDP-OFFER" / "SDP-ANSWER" of the collected SDP */
  char sdp[65536];  /* CRLF-joined lines */
  size_t sdp_len;
  bool sdp_ready;   /* a whole SDP arrived; the test clears it after use */
  bool error;       /* the peer printed ERROR */
  long frames_decoded, audio_buffers, packets_sent, frames_sent;
  char ice[32], dtls[32];
} gst_peer_t;

/* args[0] is the gst_peer path; NULL-terminated. 0 or a libuv error. */
int gst_peer_start(gst_peer_t *p, uv_loop_t *loop, const char *name, char *const args[]);

/* Writes tag, every line of sdp (CRLF or LF separated) and END. */
void gst_peer_send_sdp(gst_peer_t *p, const char *tag, const char *sdp);

/* Asks the peer to quit, waits up to grace_ms, then kills it; closes its handles. */
void gst_peer_stop(gst_peer_t *p, unsigned grace_ms);

#endif
