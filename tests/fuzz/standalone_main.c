/* Runs a libFuzzer target without libFuzzer: over every file in the given corpus
 * directories, then over deterministic mutations of those seeds (bit flips, truncations,
 * byte insertions) and purely random inputs. Same inputs every run, so a failure
 * reproduces; the sanitizers turn any out-of-bounds access into a test failure. */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT 4096
#define FUZZ_MAX_SEEDS 512

typedef struct {
  uint8_t *data;
  size_t size;
} seed_t;

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void) {
  /* xorshift64*: deterministic, good enough to pick mutations */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dULL;
}

static size_t load_dir(const char *path, seed_t *seeds, size_t count) {
  DIR *dir = opendir(path);
  if (!dir) {
    fprintf(stderr, "corpus %s: not found (only random inputs)\n", path);
    return count;
  }
  struct dirent *e;
  while ((e = readdir(dir)) != NULL && count < FUZZ_MAX_SEEDS) {
    if (e->d_name[0] == '.') continue;
    char file[1024];
    snprintf(file, sizeof file, "%s/%s", path, e->d_name);
    FILE *f = fopen(file, "rb");
    if (!f) continue;
    uint8_t *buf = malloc(FUZZ_MAX_INPUT);
    size_t n = fread(buf, 1, FUZZ_MAX_INPUT, f);
    fclose(f);
    seeds[count].data = buf;
    seeds[count].size = n;
    count++;
  }
  closedir(dir);
  return count;
}

int main(int argc, char **argv) {
  long iterations = 10000;
  static seed_t seeds[FUZZ_MAX_SEEDS];
  size_t nseeds = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
      iterations = strtol(argv[++i], NULL, 10);
    } else {
      nseeds = load_dir(argv[i], seeds, nseeds);
    }
  }
  for (size_t i = 0; i < nseeds; i++) LLVMFuzzerTestOneInput(seeds[i].data, seeds[i].size);

  uint8_t *buf = malloc(FUZZ_MAX_INPUT);
  for (long it = 0; it < iterations; it++) {
    size_t size;
    if (nseeds > 0 && (it % 4) != 3) {
      const seed_t *s = &seeds[rng_next() % nseeds];
      size = s->size;
      memcpy(buf, s->data, size);
      int edits = 1 + (int)(rng_next() % 4);
      for (int k = 0; k < edits; k++) {
        switch (rng_next() % 4) {
          case 0: /* flip a bit */
            if (size) buf[rng_next() % size] ^= (uint8_t)(1u << (rng_next() % 8));
            break;
          case 1: /* truncate */
            if (size) size = rng_next() % size;
            break;
          case 2: /* overwrite a byte with an interesting value */
            if (size) {
              static const uint8_t v[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe};
              buf[rng_next() % size] = v[rng_next() % sizeof v];
            }
            break;
          default: /* insert a random byte */
            if (size < FUZZ_MAX_INPUT) {
              size_t at = size ? rng_next() % (size + 1) : 0;
              memmove(buf + at + 1, buf + at, size - at);
              buf[at] = (uint8_t)rng_next();
              size++;
            }
        }
      }
    } else {
      size = rng_next() % 1500;
      for (size_t k = 0; k < size; k++) buf[k] = (uint8_t)rng_next();
    }
    /* Exact-size heap copy so ASan catches a read one byte past the input. */
    uint8_t *input = malloc(size ? size : 1);
    memcpy(input, buf, size);
    LLVMFuzzerTestOneInput(input, size);
    free(input);
  }
  free(buf);
  for (size_t i = 0; i < nseeds; i++) free(seeds[i].data);
  printf("fuzz regression: %zu seeds, %ld generated inputs, no crash\n", nseeds, iterations);
  return 0;
}
