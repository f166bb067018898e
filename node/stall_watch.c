#include "node/stall_watch.h"

bool mf_stall_watch_check(mf_stall_watch_t *w, uint64_t now_ms, uint64_t late_ms) {
  uint64_t last = w->last_check_ms;
  w->last_check_ms = now_ms;
  if (last == 0 || now_ms < last || now_ms - last < late_ms) return false;
  w->resumed_ms = now_ms;
  w->last_gap_ms = now_ms - last;
  return true;
}

uint64_t mf_stall_watch_age(const mf_stall_watch_t *w, uint64_t heartbeat_ms, uint64_t now_ms) {
  uint64_t since = heartbeat_ms > w->resumed_ms ? heartbeat_ms : w->resumed_ms;
  return now_ms > since ? now_ms - since : 0;
}
