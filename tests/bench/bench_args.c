#include <errno.h>
#include <stdlib.h>

#include "tests/bench/bench.h"

bool mf_bench_parse_int(const char *s, int min, int max, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) return false;
  *out = (int)v;
  return true;
}
