/* SRTP sessions over libsrtp2 2.5. See srtp.h for the contract. */
#include "node/srtp.h"

#include <arpa/inet.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <srtp2/srtp.h>

#define MF_LOG_MODULE "srtp"
#include "common/log.h"

/* srtp_protect writes at most the tag, srtp_protect_rtcp the tag plus the E||index word;
 * MKI is never configured. */
_Static_assert(MF_SRTP_MAX_TRAILER >= SRTP_MAX_TAG_LEN + 4, "trailer bound too small");

#define RTP_HEADER_MIN 12
#define RTCP_HEADER_MIN 8 /* common header + sender SSRC */
#define SRTCP_INDEX_LEN 4

struct mf_srtp_session {
  srtp_t ctx;
  mf_srtp_profile_t profile;
  bool inbound;
  size_t tag_len;
};

static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;
static mf_err_t g_init_result = MF_ERR_INTERNAL;

static void on_srtp_event(srtp_event_data_t *data) {
  /* Events are rare (key limits after ~2^48 packets, collisions): WARN is not per packet. */
  switch (data->event) {
    case event_ssrc_collision:
      MF_LOG_WARN("SSRC collision on ssrc %u", (unsigned)data->ssrc);
      break;
    case event_key_soft_limit:
      MF_LOG_WARN("ssrc %u reached the soft key usage limit", (unsigned)data->ssrc);
      break;
    case event_key_hard_limit:
      MF_LOG_WARN("ssrc %u reached the hard key usage limit (key expired)", (unsigned)data->ssrc);
      break;
    case event_packet_index_limit:
      MF_LOG_WARN("ssrc %u reached the packet index limit", (unsigned)data->ssrc);
      break;
  }
}

static void library_init_once(void) {
  srtp_err_status_t st = srtp_init();
  if (st != srtp_err_status_ok) {
    MF_LOG_ERROR("srtp_init failed (libsrtp status %d)", (int)st);
    g_init_result = MF_ERR_CRYPTO;
    return;
  }
  st = srtp_install_event_handler(on_srtp_event);
  if (st != srtp_err_status_ok) {
    MF_LOG_ERROR("srtp_install_event_handler failed (libsrtp status %d)", (int)st);
    g_init_result = MF_ERR_CRYPTO;
    return;
  }
  MF_LOG_DEBUG("%s initialised", srtp_get_version_string());
  g_init_result = MF_OK;
}

mf_err_t mf_srtp_library_init(void) {
  if (pthread_once(&g_init_once, library_init_once) != 0) return MF_ERR_INTERNAL;
  return g_init_result;
}

size_t mf_srtp_profile_master_len(mf_srtp_profile_t profile) {
  switch (profile) {
    case MF_SRTP_PROFILE_AES128_CM_SHA1_80:
      return 16 + 14;
    case MF_SRTP_PROFILE_AEAD_AES_128_GCM:
      return 16 + 12;
  }
  return 0;
}

const char *mf_srtp_profile_name(mf_srtp_profile_t profile) {
  switch (profile) {
    case MF_SRTP_PROFILE_AES128_CM_SHA1_80:
      return "AES_CM_128_HMAC_SHA1_80";
    case MF_SRTP_PROFILE_AEAD_AES_128_GCM:
      return "AEAD_AES_128_GCM";
  }
  return "unknown";
}

static mf_err_t map_status(srtp_err_status_t st, const char *what) {
  switch (st) {
    case srtp_err_status_ok:
      return MF_OK;
    case srtp_err_status_auth_fail:
      return MF_ERR_AUTH;
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old:
      return MF_ERR_STATE;
    default:
      MF_LOG_DEBUG("%s failed (libsrtp status %d)", what, (int)st);
      return MF_ERR_CRYPTO;
  }
}

mf_err_t mf_srtp_session_create(mf_srtp_profile_t profile, const uint8_t *master, size_t len,
                                bool inbound, mf_srtp_session_t **out) {
  if (out == NULL) return MF_ERR_INVALID_ARG;
  *out = NULL;
  size_t want = mf_srtp_profile_master_len(profile);
  if (master == NULL || want == 0 || len != want) return MF_ERR_INVALID_ARG;

  srtp_policy_t policy;
  memset(&policy, 0, sizeof policy);
  size_t tag_len;
  if (profile == MF_SRTP_PROFILE_AEAD_AES_128_GCM) {
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
    tag_len = 16;
  } else {
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
    tag_len = 10;
  }
  /* libsrtp reads the key through a non-const pointer while copying it into its own
   * context; keep a local copy so the caller's buffer stays const. */
  uint8_t key[MF_SRTP_MAX_MASTER_LEN];
  memcpy(key, master, len);
  policy.key = key;
  policy.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
  /* Outbound, libsrtp refuses to re-protect an index older than the window even with
   * allow_repeat_tx (replay_old), so the window must cover how far back NACKs reach. */
  policy.window_size = inbound ? MF_SRTP_INBOUND_WINDOW : MF_SRTP_OUTBOUND_WINDOW;
  policy.allow_repeat_tx = inbound ? 0 : 1;
  policy.next = NULL;

  mf_srtp_session_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    explicit_bzero(key, sizeof key);
    return MF_ERR_NO_MEMORY;
  }
  srtp_err_status_t st = srtp_create(&s->ctx, &policy);
  explicit_bzero(key, sizeof key);
  if (st != srtp_err_status_ok) {
    MF_LOG_ERROR("srtp_create failed (libsrtp status %d, profile %s)", (int)st,
                 mf_srtp_profile_name(profile));
    free(s);
    return st == srtp_err_status_alloc_fail ? MF_ERR_NO_MEMORY : MF_ERR_CRYPTO;
  }
  s->profile = profile;
  s->inbound = inbound;
  s->tag_len = tag_len;
  *out = s;
  return MF_OK;
}

void mf_srtp_session_free(mf_srtp_session_t *s) {
  if (s == NULL) return;
  /* srtp_dealloc wipes the key material of every stream before freeing it. */
  srtp_err_status_t st = srtp_dealloc(s->ctx);
  if (st != srtp_err_status_ok) MF_LOG_ERROR("srtp_dealloc failed (libsrtp status %d)", (int)st);
  free(s);
}

mf_srtp_profile_t mf_srtp_session_profile(const mf_srtp_session_t *s) { return s->profile; }

/* Length of the RTP header including CSRCs and the header extension, or 0 if the header
 * does not fit in len. libsrtp validates too, but only partly and with its own codes. */
static size_t rtp_header_len(const uint8_t *b, size_t len) {
  if (len < RTP_HEADER_MIN || (b[0] >> 6) != 2) return 0;
  size_t h = RTP_HEADER_MIN + 4u * (size_t)(b[0] & 0x0f);
  if (h > len) return 0;
  if (b[0] & 0x10) {
    if (len - h < 4) return 0;
    size_t ext = 4u * (((size_t)b[h + 2] << 8) | b[h + 3]);
    h += 4;
    if (len - h < ext) return 0;
    h += ext;
  }
  return h;
}

static bool rtcp_header_ok(const uint8_t *b, size_t len) {
  return len >= RTCP_HEADER_MIN && (b[0] >> 6) == 2;
}

static mf_err_t check_protect_args(const mf_srtp_session_t *s, const uint8_t *buf,
                                   const size_t *len, size_t capacity) {
  if (s == NULL || buf == NULL || len == NULL) return MF_ERR_INVALID_ARG;
  if (s->inbound) return MF_ERR_STATE;
  if (*len > (size_t)INT_MAX - MF_SRTP_MAX_TRAILER) return MF_ERR_INVALID_ARG;
  if (capacity < *len || capacity - *len < MF_SRTP_MAX_TRAILER) return MF_ERR_INVALID_ARG;
  return MF_OK;
}

static mf_err_t check_unprotect_args(const mf_srtp_session_t *s, const uint8_t *buf,
                                     const size_t *len) {
  if (s == NULL || buf == NULL || len == NULL) return MF_ERR_INVALID_ARG;
  if (!s->inbound) return MF_ERR_STATE;
  if (*len > (size_t)INT_MAX) return MF_ERR_PARSE;
  return MF_OK;
}

mf_err_t mf_srtp_protect_rtp(mf_srtp_session_t *s, uint8_t *buf, size_t *len, size_t capacity) {
  mf_err_t err = check_protect_args(s, buf, len, capacity);
  if (err != MF_OK) return err;
  if (rtp_header_len(buf, *len) == 0) return MF_ERR_PARSE;
  int n = (int)*len;
  err = map_status(srtp_protect(s->ctx, buf, &n), "srtp_protect");
  if (err == MF_OK) *len = (size_t)n;
  return err;
}

mf_err_t mf_srtp_unprotect_rtp(mf_srtp_session_t *s, uint8_t *buf, size_t *len) {
  mf_err_t err = check_unprotect_args(s, buf, len);
  if (err != MF_OK) return err;
  size_t h = rtp_header_len(buf, *len);
  if (h == 0 || *len - h < s->tag_len) return MF_ERR_PARSE;
  int n = (int)*len;
  err = map_status(srtp_unprotect(s->ctx, buf, &n), "srtp_unprotect");
  if (err == MF_OK) *len = (size_t)n;
  return err;
}

mf_err_t mf_srtp_protect_rtcp(mf_srtp_session_t *s, uint8_t *buf, size_t *len, size_t capacity) {
  mf_err_t err = check_protect_args(s, buf, len, capacity);
  if (err != MF_OK) return err;
  if (!rtcp_header_ok(buf, *len)) return MF_ERR_PARSE;
  int n = (int)*len;
  err = map_status(srtp_protect_rtcp(s->ctx, buf, &n), "srtp_protect_rtcp");
  if (err == MF_OK) *len = (size_t)n;
  return err;
}

mf_err_t mf_srtp_unprotect_rtcp(mf_srtp_session_t *s, uint8_t *buf, size_t *len) {
  mf_err_t err = check_unprotect_args(s, buf, len);
  if (err != MF_OK) return err;
  if (!rtcp_header_ok(buf, *len) || *len < RTCP_HEADER_MIN + SRTCP_INDEX_LEN + s->tag_len)
    return MF_ERR_PARSE;
  int n = (int)*len;
  err = map_status(srtp_unprotect_rtcp(s->ctx, buf, &n), "srtp_unprotect_rtcp");
  if (err == MF_OK) *len = (size_t)n;
  return err;
}

mf_err_t mf_srtp_remove_stream(mf_srtp_session_t *s, uint32_t ssrc) {
  if (s == NULL) return MF_ERR_INVALID_ARG;
  /* libsrtp wants the SSRC in network byte order here (unlike its event data). */
  srtp_err_status_t st = srtp_remove_stream(s->ctx, htonl(ssrc));
  if (st == srtp_err_status_ok) return MF_OK;
  if (st == srtp_err_status_no_ctx) return MF_ERR_NOT_FOUND;
  return map_status(st, "srtp_remove_stream");
}
