/* Leveled logging to a file descriptor (stderr by default), as text or JSON lines.
 *
 * Each .c file names its module before including this header:
 *     #define MF_LOG_MODULE "worker"
 *     #include "common/log.h"
 *     MF_LOG_INFO("worker %u ready", index);
 *
 * Thread affinity: any thread may log. One line is written with one write(2) call, so
 * lines from different threads never interleave. mf_log_configure is for the process
 * bootstrap (before threads start); mf_log_set_thread_name sets a thread-local label.
 * Logging allocates (JSON escaping) and formats: keep it off the per-packet path. */
#ifndef MF_LOG_H
#define MF_LOG_H

#include <stdbool.h>

#include "err.h"

typedef enum {
  MF_LOG_LEVEL_TRACE = 0,
  MF_LOG_LEVEL_DEBUG,
  MF_LOG_LEVEL_INFO,
  MF_LOG_LEVEL_WARN,
  MF_LOG_LEVEL_ERROR,
  MF_LOG_LEVEL_OFF,
} mf_log_level_t;

typedef enum {
  MF_LOG_FORMAT_TEXT = 0, /* "2026-11-24T21:30:00.123Z INFO  [worker/w0] message" */
  MF_LOG_FORMAT_JSON,     /* {"ts":...,"level":"info","module":"worker","thread":"w0","msg":...} */
} mf_log_format_t;

typedef struct {
  mf_log_level_t level;
  mf_log_format_t format;
  int fd; /* not owned: the caller keeps it open while logging is configured */
} mf_log_config_t;

/* Longest line written; a longer message is cut and ends with "...". */
#define MF_LOG_LINE_MAX 2048

/* Default before configuration: info, text, fd 2. */
void mf_log_configure(const mf_log_config_t *config);
void mf_log_get_config(mf_log_config_t *out);

/* Label for lines logged by the calling thread (copied, at most 15 chars). */
void mf_log_set_thread_name(const char *name);

bool mf_log_enabled(mf_log_level_t level);

void mf_log_write(mf_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "trace", "debug", "info", "warn", "error", "off" (also "warning"). */
mf_err_t mf_log_level_parse(const char *text, mf_log_level_t *out);
const char *mf_log_level_name(mf_log_level_t level);

#ifndef MF_LOG_MODULE
#define MF_LOG_MODULE "mafalda"
#endif

#define MF_LOG(level, ...)                                             \
  do {                                                                 \
    if (mf_log_enabled(level)) mf_log_write(level, MF_LOG_MODULE, __VA_ARGS__); \
  } while (0)
#define MF_LOG_TRACE(...) MF_LOG(MF_LOG_LEVEL_TRACE, __VA_ARGS__)
#define MF_LOG_DEBUG(...) MF_LOG(MF_LOG_LEVEL_DEBUG, __VA_ARGS__)
#define MF_LOG_INFO(...) MF_LOG(MF_LOG_LEVEL_INFO, __VA_ARGS__)
#define MF_LOG_WARN(...) MF_LOG(MF_LOG_LEVEL_WARN, __VA_ARGS__)
#define MF_LOG_ERROR(...) MF_LOG(MF_LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
