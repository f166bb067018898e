#include "gst_driver.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void gst_peer_on_line(gst_peer_t *p, const char *line) {
  if (p->in_sdp) {
    if (strcmp(line, "END") == 0) {
      p->in_sdp = false;
      p->sdp_ready = true;
      return;
    }
    size_t n = strlen(line);
    if (p->sdp_len + n + 3 < sizeof p->sdp) {
      memcpy(p->sdp + p->sdp_len, line, n);
      memcpy(p->sdp + p->sdp_len + n, "\r\n", 3);
      p->sdp_len += n + 2;
    }
    return;
  }
  bool offer = strcmp(line, "SDP-OFFER") == 0;
  if (offer || strcmp(line, "SDP-ANSWER") == 0) {
    snprintf(p->sdp_tag, sizeof p->sdp_tag, "%s", offer ? "SDP-OFFER" : "SDP-ANSWER");
    p->in_sdp = true;
    p->sdp_len = 0;
    p->sdp[0] = '\0';
    return;
  }
  const char *v;
  if ((v = strstr(line, "frames_decoded="))) p->frames_decoded = strtol(v + 15, NULL, 10);
  if ((v = strstr(line, "audio_buffers="))) p->audio_buffers = strtol(v + 14, NULL, 10);
  if ((v = strstr(line, " packets_sent="))) p->packets_sent = strtol(v + 14, NULL, 10);
  if ((v = strstr(line, "frames_sent="))) p->frames_sent = strtol(v + 12, NULL, 10);
  if (strncmp(line, "ICE ", 4) == 0) snprintf(p->ice, sizeof p->ice, "%s", line + 4);
  if (strncmp(line, "DTLS ", 5) == 0) snprintf(p->dtls, sizeof p->dtls, "%s", line + 5);
  if (strncmp(line, "ERROR", 5) == 0) p->error = true;
  if (strncmp(line, "STATS", 5) != 0 && strncmp(line, "CANDIDATE", 9) != 0)
    fprintf(stderr, "%s: %s\n", p->name, line);
}

static void gst_peer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char storage[16384];
  *buf = uv_buf_init(storage, sizeof storage);
}

static void gst_peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  gst_peer_t *p = s->data;
  if (n < 0) {
    uv_read_stop(s);
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    char c = buf->base[i];
    if (c == '\n') {
      p->line[p->line_len] = '\0';
      if (p->line_len && p->line[p->line_len - 1] == '\r') p->line[p->line_len - 1] = '\0';
      gst_peer_on_line(p, p->line);
      p->line_len = 0;
    } else if (p->line_len + 1 < sizeof p->line) {
      p->line[p->line_len++] = c;
    }
  }
}

static void gst_peer_exited(uv_process_t *proc, int64_t status, int sig) {
  gst_peer_t *p = proc->data;
  p->running = false;
  p->exit_status = (int)status;
  fprintf(stderr, "%s exited: status %lld signal %d\n", p->name, (long long)status, sig);
}

int gst_peer_start(gst_peer_t *p, uv_loop_t *loop, const char *name, char *const args[]) {
  memset(p, 0, sizeof *p);
  p->name = name;
  p->loop = loop;
  uv_pipe_init(loop, &p->in, 0);
  uv_pipe_init(loop, &p->out, 0);
  p->out.data = p;
  p->proc.data = p;
  uv_timer_init(loop, &p->grace);
  p->grace.data = p;
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&p->in},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->out},
      {.flags = UV_INHERIT_FD, .data.fd = 2}};
  uv_process_options_t o = {.file = args[0], .args = (char **)args, .stdio = stdio,
                            .stdio_count = 3, .exit_cb = gst_peer_exited};
  int rc = uv_spawn(loop, &p->proc, &o);
  if (rc != 0) {
    uv_close((uv_handle_t *)&p->grace, NULL);
    uv_close((uv_handle_t *)&p->in, NULL);
    uv_close((uv_handle_t *)&p->out, NULL);
    return rc;
  }
  p->running = true;
  uv_read_start((uv_stream_t *)&p->out, gst_peer_alloc, gst_peer_read);
  return 0;
}

static void gst_peer_write(gst_peer_t *p, const char *text, size_t len) {
  while (len > 0 && p->running) {
    uv_buf_t b = uv_buf_init((char *)text, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&p->in, &b, 1);
    if (n == UV_EAGAIN) {
      uv_run(p->loop, UV_RUN_NOWAIT);
      continue;
    }
    if (n < 0) return;
    text += n;
    len -= (size_t)n;
  }
}

void gst_peer_send_sdp(gst_peer_t *p, const char *tag, const char *sdp) {
  gst_peer_write(p, tag, strlen(tag));
  gst_peer_write(p, "\n", 1);
  while (*sdp) {
    size_t n = strcspn(sdp, "\r\n");
    if (n > 0) {
      gst_peer_write(p, sdp, n);
      gst_peer_write(p, "\n", 1);
    }
    sdp += n;
    while (*sdp == '\r' || *sdp == '\n') sdp++;
  }
  gst_peer_write(p, "END\n", 4);
}

static void gst_peer_grace_over(uv_timer_t *t) { ((gst_peer_t *)t->data)->grace_over = true; }

void gst_peer_stop(gst_peer_t *p, unsigned grace_ms) {
  if (p->running) {
    gst_peer_write(p, "QUIT\n", 5);
    uv_timer_start(&p->grace, gst_peer_grace_over, grace_ms, 0);
    while (p->running && !p->grace_over) uv_run(p->loop, UV_RUN_ONCE);
    if (p->running) uv_process_kill(&p->proc, SIGKILL);
    while (p->running) uv_run(p->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&p->grace, NULL);
  uv_close((uv_handle_t *)&p->proc, NULL);
  uv_close((uv_handle_t *)&p->in, NULL);
  uv_close((uv_handle_t *)&p->out, NULL);
}
