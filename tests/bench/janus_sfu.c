#include "tests/bench/janus_sfu.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/http_client.h"
#include "tests/support/test_proc.h"

/* Debian's layout (dpkg -L janus) */
#define JANUS_LIB "/usr/lib/x86_64-linux-gnu/janus"

static bool config_ok(const mf_janus_sfu_config_t *c) {
  return c && c->dir && c->dir[0] && !strpbrk(c->dir, "\"\\\n\r") && strlen(c->dir) < 200 &&
         c->http_port && c->rtp_min && c->rtp_min <= c->rtp_max && c->debug_level >= 0 &&
         c->debug_level <= 7;
}

typedef struct {
  char *buf;
  size_t cap, len;
  bool full;
} out_t;

__attribute__((format(printf, 2, 3))) static void put(out_t *o, const char *fmt, ...) {
  if (o->full) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= o->cap - o->len) {
    o->full = true;
    o->buf[o->len] = '\0';
    return;
  }
  o->len += (size_t)n;
}

static mf_err_t done(out_t *o, size_t *len) {
  if (o->full) return MF_ERR_FULL;
  if (len) *len = o->len;
  return MF_OK;
}

mf_err_t mf_janus_sfu_format_main(const mf_janus_sfu_config_t *cfg, char *buf, size_t cap,
                                  size_t *len) {
  if (!config_ok(cfg) || !buf || cap == 0) return MF_ERR_INVALID_ARG;
  out_t o = {.buf = buf, .cap = cap};
  buf[0] = '\0';
  put(&o,
      "# written by mafalda-bench (tests/bench/janus_sfu.c)\n"
      "general: {\n"
      "\tconfigs_folder = \"%s\"\n"
      "\tplugins_folder = \"" JANUS_LIB "/plugins\"\n"
      "\ttransports_folder = \"" JANUS_LIB "/transports\"\n"
      "\tevents_folder = \"" JANUS_LIB "/events\"\n"
      "\tloggers_folder = \"" JANUS_LIB "/loggers\"\n"
      "\tdebug_level = %d\n"
      "\tlog_to_file = \"%s/janus.log\"\n"
      "\t# the generator says nothing on HTTP while media flows\n"
      "\tsession_timeout = 0\n"
      "}\n",
      cfg->dir, cfg->debug_level, cfg->dir);
  put(&o,
      "media: {\n"
      "\tipv6 = false\n"
      "\trtp_port_range = \"%u-%u\"\n"
      "}\n"
      "nat: {\n"
      "\tnice_debug = false\n"
      "\tice_enforce_list = \"lo\"\n"
      "\tfull_trickle = false\n"
      "\tice_lite = false\n"
      "}\n",
      (unsigned)cfg->rtp_min, (unsigned)cfg->rtp_max);
  put(&o,
      "plugins: {\n"
      "\tdisable = \"libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,"
      "libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,"
      "libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so\"\n"
      "}\n"
      "transports: {\n"
      "\tdisable = \"libjanus_websockets.so,libjanus_pfunix.so,libjanus_mqtt.so,"
      "libjanus_nanomsg.so,libjanus_rabbitmq.so\"\n"
      "}\n"
      "loggers: {\n"
      "\tdisable = \"libjanus_jsonlog.so\"\n"
      "}\n"
      "events: {\n"
      "\tbroadcast = false\n"
      "}\n");
  return done(&o, len);
}

mf_err_t mf_janus_sfu_format_http(const mf_janus_sfu_config_t *cfg, char *buf, size_t cap,
                                  size_t *len) {
  if (!config_ok(cfg) || !buf || cap == 0) return MF_ERR_INVALID_ARG;
  out_t o = {.buf = buf, .cap = cap};
  buf[0] = '\0';
  put(&o,
      "general: {\n"
      "\tjson = \"plain\"\n"
      "\tbase_path = \"/janus\"\n"
      "\thttp = true\n"
      "\tport = %u\n"
      "\tip = \"127.0.0.1\"\n"
      "\thttps = false\n"
      "}\n"
      "admin: {\n"
      "\tadmin_http = false\n"
      "\tadmin_https = false\n"
      "}\n",
      (unsigned)cfg->http_port);
  return done(&o, len);
}

mf_err_t mf_janus_sfu_format_videoroom(const mf_janus_sfu_config_t *cfg, char *buf, size_t cap,
                                       size_t *len) {
  if (!config_ok(cfg) || !buf || cap == 0) return MF_ERR_INVALID_ARG;
  out_t o = {.buf = buf, .cap = cap};
  buf[0] = '\0';
  /* no static rooms: the generator creates its own through the API */
  put(&o, "general: {\n}\n");
  return done(&o, len);
}

static mf_err_t write_file(const char *dir, const char *name, const char *text, size_t len) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return MF_ERR_IO;
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, text + off, len - off);
    if (w <= 0) {
      close(fd);
      return MF_ERR_IO;
    }
    off += (size_t)w;
  }
  return close(fd) == 0 ? MF_OK : MF_ERR_IO;
}

mf_err_t mf_janus_sfu_write_config(const mf_janus_sfu_config_t *cfg) {
  char buf[4096];
  size_t len = 0;
  mf_err_t e = mf_janus_sfu_format_main(cfg, buf, sizeof buf, &len);
  if (e == MF_OK) e = write_file(cfg->dir, "janus.jcfg", buf, len);
  if (e == MF_OK) e = mf_janus_sfu_format_http(cfg, buf, sizeof buf, &len);
  if (e == MF_OK) e = write_file(cfg->dir, "janus.transport.http.jcfg", buf, len);
  if (e == MF_OK) e = mf_janus_sfu_format_videoroom(cfg, buf, sizeof buf, &len);
  if (e == MF_OK) e = write_file(cfg->dir, "janus.plugin.videoroom.jcfg", buf, len);
  return e;
}

static bool info_answers(uint16_t port) {
  static const char req[] = "{\"janus\":\"info\",\"transaction\":\"mfbench-info\"}";
  static const char *const hdr[] = {"Content-Type: application/json", NULL};
  test_http_res_t res;
  if (test_http(port, "POST", "/janus", hdr, req, sizeof req - 1, 1000, &res) != 0) return false;
  bool ok = false;
  if (res.status == 200 && res.body) {
    json_t *j = json_loadb(res.body, res.body_len, 0, NULL);
    const char *kind = json_string_value(json_object_get(j, "janus"));
    ok = kind && strcmp(kind, "server_info") == 0;
    json_decref(j);
  }
  test_http_res_free(&res);
  return ok;
}

bool mf_janus_sfu_available(const char *bin) {
  if (!bin || !bin[0]) return false;
  if (strchr(bin, '/')) return access(bin, X_OK) == 0;
  const char *path = getenv("PATH");
  if (!path) path = "/usr/bin:/bin";
  while (*path) {
    size_t n = strcspn(path, ":");
    char full[1024];
    if (n > 0 && n + strlen(bin) + 2 <= sizeof full) {
      memcpy(full, path, n);
      snprintf(full + n, sizeof full - n, "/%s", bin);
      if (access(full, X_OK) == 0) return true;
    }
    path += n;
    if (*path == ':') path++;
  }
  return false;
}

void mf_janus_sfu_stop(mf_janus_sfu_t *s) {
  if (!s) return;
  if (s->wrapper > 0) {
    if (s->pid > 0) kill(s->pid, SIGTERM);
    for (int i = 0; i < 150; i++) {
      pid_t r = waitpid(s->wrapper, NULL, WNOHANG);
      if (r == s->wrapper || (r < 0 && errno == ECHILD)) {
        s->wrapper = 0;
        break;
      }
      mf_test_sleep_ms(20);
    }
    mf_test_stop_wrapped(&s->wrapper, 1);
  }
  s->wrapper = 0;
  s->pid = 0;
  if (s->dir[0] && !getenv("MF_BENCH_KEEP")) mf_test_remove_dir(s->dir);
  s->dir[0] = '\0';
}

mf_err_t mf_janus_sfu_start(const char *janus_bin, const char *shim, int deadline_s,
                            mf_janus_sfu_t *out) {
  if (!janus_bin || !out || deadline_s <= 0) return MF_ERR_INVALID_ARG;
  memset(out, 0, sizeof *out);
  snprintf(out->dir, sizeof out->dir, "/tmp/mf-bench-janus-XXXXXX");
  if (!mkdtemp(out->dir)) {
    perror("mkdtemp");
    out->dir[0] = '\0';
    return MF_ERR_IO;
  }
  out->http_port = (uint16_t)mf_test_free_port();
  /* a range of 2000 ports of its own, spread by pid so parallel runs rarely collide */
  uint16_t rtp_min = (uint16_t)(20000 + (getpid() % 20) * 2000);
  mf_janus_sfu_config_t cfg = {.dir = out->dir, .http_port = out->http_port,
                               .rtp_min = rtp_min, .rtp_max = (uint16_t)(rtp_min + 1999),
                               .debug_level = 4};
  if (mf_janus_sfu_write_config(&cfg) != MF_OK) {
    fprintf(stderr, "janus: cannot write the configuration into %s\n", out->dir);
    mf_janus_sfu_stop(out);
    return MF_ERR_IO;
  }
  char deadline[16], conf[128], preload[600], log[128];
  snprintf(deadline, sizeof deadline, "%d", deadline_s);
  snprintf(conf, sizeof conf, "%s/janus.jcfg", out->dir);
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", shim ? shim : "");
  snprintf(log, sizeof log, "%s/stderr.log", out->dir);
  char *argv[] = {"timeout", "-s", "KILL", deadline, "env", preload, (char *)janus_bin,
                  "-C", conf, "-F", out->dir, "--disable-colors", NULL};
  int rv = mf_test_spawn_logged(argv, log, &out->wrapper);
  if (rv != 0) {
    fprintf(stderr, "janus: cannot start %s: %s\n", janus_bin, strerror(rv));
    mf_janus_sfu_stop(out);
    return MF_ERR_IO;
  }
  /* env execs janus in place: the wrapper's child is Janus itself */
  out->pid = mf_test_wait_child_of(out->wrapper, 5000);
  double until = mf_test_now_s() + 30;
  while (out->pid > 0 && mf_test_now_s() < until) {
    if (info_answers(out->http_port)) return MF_OK;
    if (waitpid(out->wrapper, NULL, WNOHANG) == out->wrapper) {
      out->wrapper = 0;
      break;
    }
    mf_test_sleep_ms(50);
  }
  fprintf(stderr, "janus: the HTTP API on 127.0.0.1:%u did not come up (logs in %s)\n",
          (unsigned)out->http_port, out->dir);
  mf_janus_sfu_stop(out);
  return MF_ERR_TIMEOUT;
}
