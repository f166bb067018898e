#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Process-wide logger settings: written by the bootstrap, read by every thread. Atomics
 * make a late reconfiguration (tests) well defined without a lock. */
static atomic_int mf_log_level = MF_LOG_LEVEL_INFO;
static atomic_int mf_log_format = MF_LOG_FORMAT_TEXT;
static atomic_int mf_log_fd = 2;

static _Thread_local char mf_log_thread[16] = "";

static const char *const mf_level_names[] = {"trace", "debug", "info", "warn", "error", "off"};
static const char *const mf_level_tags[] = {"TRACE", "DEBUG", "INFO ", "WARN ", "ERROR", "OFF  "};

void mf_log_configure(const mf_log_config_t *config) {
  atomic_store(&mf_log_level, (int)config->level);
  atomic_store(&mf_log_format, (int)config->format);
  atomic_store(&mf_log_fd, config->fd);
}

void mf_log_get_config(mf_log_config_t *out) {
  out->level = (mf_log_level_t)atomic_load(&mf_log_level);
  out->format = (mf_log_format_t)atomic_load(&mf_log_format);
  out->fd = atomic_load(&mf_log_fd);
}

void mf_log_set_thread_name(const char *name) {
  snprintf(mf_log_thread, sizeof mf_log_thread, "%s", name ? name : "");
}

bool mf_log_enabled(mf_log_level_t level) {
  return (int)level >= atomic_load_explicit(&mf_log_level, memory_order_relaxed) &&
         level < MF_LOG_LEVEL_OFF;
}

const char *mf_log_level_name(mf_log_level_t level) {
  if ((unsigned)level > MF_LOG_LEVEL_OFF) return "?";
  return mf_level_names[level];
}

mf_err_t mf_log_level_parse(const char *text, mf_log_level_t *out) {
  if (!text) return MF_ERR_INVALID_ARG;
  for (int i = 0; i <= MF_LOG_LEVEL_OFF; i++) {
    if (strcasecmp(text, mf_level_names[i]) == 0) {
      *out = (mf_log_level_t)i;
      return MF_OK;
    }
  }
  if (strcasecmp(text, "warning") == 0) {
    *out = MF_LOG_LEVEL_WARN;
    return MF_OK;
  }
  return MF_ERR_INVALID_ARG;
}

static void mf_log_timestamp(char *out, size_t size) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

static void mf_log_emit(int fd, const char *line, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, line, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return; /* nowhere left to report a failing log fd */
    }
    line += w;
    len -= (size_t)w;
  }
}

/* JSON strings must be UTF-8: replace bytes that would make jansson reject the message. */
static json_t *mf_log_json_string(char *msg) {
  json_t *s = json_string(msg);
  if (s) return s;
  for (char *p = msg; *p; p++) {
    if ((unsigned char)*p >= 0x80) *p = '?';
  }
  return json_string(msg);
}

void mf_log_write(mf_log_level_t level, const char *module, const char *fmt, ...) {
  if (!mf_log_enabled(level)) return;
  char msg[MF_LOG_LINE_MAX];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof msg) memcpy(msg + sizeof msg - 4, "...", 4);

  char ts[40];
  mf_log_timestamp(ts, sizeof ts);
  char line[MF_LOG_LINE_MAX + 256];
  size_t len = 0;
  int fd = atomic_load(&mf_log_fd);

  if (atomic_load(&mf_log_format) == MF_LOG_FORMAT_JSON) {
    json_t *obj = json_object();
    json_object_set_new(obj, "ts", json_string(ts));
    json_object_set_new(obj, "level", json_string(mf_level_names[level]));
    json_object_set_new(obj, "module", json_string(module));
    if (mf_log_thread[0]) json_object_set_new(obj, "thread", json_string(mf_log_thread));
    json_object_set_new(obj, "msg", mf_log_json_string(msg));
    size_t w = json_dumpb(obj, line, sizeof line - 1, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (w == 0 || w >= sizeof line - 1) return; /* cannot happen: msg is bounded */
    len = w;
  } else {
    int w = snprintf(line, sizeof line - 1, "%s %s [%s%s%s] %s", ts, mf_level_tags[level], module,
                     mf_log_thread[0] ? "/" : "", mf_log_thread, msg);
    if (w < 0) return;
    len = (size_t)w < sizeof line - 1 ? (size_t)w : sizeof line - 2;
  }
  line[len++] = '\n';
  mf_log_emit(fd, line, len);
}
