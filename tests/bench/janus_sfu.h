/* Debian's Janus (1.1.x) as the SFU mafalda-bench compares with (issue 10, `--sfu janus`):
 * configuration files written into a temporary directory (only the videoroom plugin and
 * the HTTP transport; HTTP on 127.0.0.1; ICE on loopback only, no STUN/TURN, no IPv6; an
 * RTP port range of its own; no session timeout, since the generator is silent on HTTP
 * while media flows; the log in the directory), the process under
 * `timeout -s KILL <deadline>` with a loopback shim preloaded, and its end.
 *
 * Why the shim: Janus never gathers candidates on an interface flagged IFF_LOOPBACK, even
 * with ice_enforce_list = "lo"; the preloaded library (janus_loopback_shim.c) clears that
 * flag in getifaddrs() so 127.0.0.1 becomes a host candidate.
 *
 * For a benchmark's main thread (not thread-safe). */
#ifndef MF_BENCH_JANUS_SFU_H
#define MF_BENCH_JANUS_SFU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

typedef struct {
  const char *dir; /* where the files live (configs_folder, the log) */
  uint16_t http_port;
  uint16_t rtp_min, rtp_max;
  int debug_level; /* 0..7 */
} mf_janus_sfu_config_t;

/* The text of janus.jcfg / janus.transport.http.jcfg / janus.plugin.videoroom.jcfg for cfg
 * into buf (NUL-terminated, length in *len). MF_ERR_INVALID_ARG for a bad config (no dir,
 * a dir with '"' or '\\' or a newline, port 0, rtp_min > rtp_max, debug_level outside
 * 0..7), MF_ERR_FULL when cap is too small. Pure. */
mf_err_t mf_janus_sfu_format_main(const mf_janus_sfu_config_t *cfg, char *buf, size_t cap,
                                  size_t *len);
mf_err_t mf_janus_sfu_format_http(const mf_janus_sfu_config_t *cfg, char *buf, size_t cap,
                                  size_t *len);
mf_err_t mf_janus_sfu_format_videoroom(const mf_janus_sfu_config_t *cfg, char *buf, size_t cap,
                                       size_t *len);
/* The three files into cfg->dir (0600). MF_ERR_IO if one cannot be written. */
mf_err_t mf_janus_sfu_write_config(const mf_janus_sfu_config_t *cfg);

/* Whether bin (a path, or a name looked up in PATH) is an executable file. */
bool mf_janus_sfu_available(const char *bin);

typedef struct {
  char dir[64];
  pid_t wrapper, pid; /* the `timeout` wrapper and Janus itself */
  uint16_t http_port;
} mf_janus_sfu_t;

/* mkdtemp, the configuration, `timeout -s KILL deadline_s env LD_PRELOAD=<shim> janus -C
 * <dir>/janus.jcfg -F <dir>` (stderr to <dir>/stderr.log), then waits up to 30 s until
 * POST /janus {"janus":"info"} answers "server_info". janus_bin "janus" is looked up in
 * PATH; shim NULL = no preload. On failure everything started is stopped again (the dir
 * stays with MF_BENCH_KEEP set). MF_ERR_IO / MF_ERR_TIMEOUT. */
mf_err_t mf_janus_sfu_start(const char *janus_bin, const char *shim, int deadline_s,
                            mf_janus_sfu_t *out);
/* SIGTERM, a short grace, SIGKILL; removes the directory unless MF_BENCH_KEEP is set.
 * Harmless on a zeroed or already stopped struct. */
void mf_janus_sfu_stop(mf_janus_sfu_t *s);

#endif
