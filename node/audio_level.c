#include "node/audio_level.h"

bool mf_audio_level_parse(const uint8_t *value, size_t len, uint8_t *dbov, bool *voice) {
  if (!value || len != 1) return false;
  *voice = (value[0] & 0x80u) != 0;
  *dbov = (uint8_t)(value[0] & 0x7fu);
  return true;
}

void mf_audio_level_add(mf_audio_level_t *a, uint8_t dbov, bool voice) {
  if (dbov > MF_AUDIO_LEVEL_SILENCE) dbov = MF_AUDIO_LEVEL_SILENCE;
  a->sum += dbov;
  a->count++;
  if (voice) a->voice++;
}

void mf_audio_level_on_rtp(mf_audio_level_t *a, const mf_rtp_packet_t *pkt, uint8_t ext_id) {
  const uint8_t *v;
  size_t n;
  if (ext_id == 0 || !mf_rtp_get_extension(pkt, ext_id, &v, &n)) return;
  uint8_t dbov;
  bool voice;
  if (!mf_audio_level_parse(v, n, &dbov, &voice)) {
    a->malformed++;
    return;
  }
  mf_audio_level_add(a, dbov, voice);
}

void mf_audio_level_take(mf_audio_level_t *a, mf_audio_level_summary_t *out) {
  out->sum = a->sum;
  out->count = a->count;
  out->voice = a->voice;
  a->sum = 0;
  a->count = 0;
  a->voice = 0;
}

uint8_t mf_audio_level_average(const mf_audio_level_summary_t *s) {
  if (s->count == 0) return MF_AUDIO_LEVEL_SILENCE;
  uint64_t avg = (s->sum + s->count / 2) / s->count;
  return avg > MF_AUDIO_LEVEL_SILENCE ? MF_AUDIO_LEVEL_SILENCE : (uint8_t)avg;
}
