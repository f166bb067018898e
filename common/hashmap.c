#include "hashmap.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define MF_HASHMAP_MAX_KEY 64

/* Slot states live in the value pointer: NULL = never used, TOMBSTONE = deleted. */
static char mf_hashmap_tombstone_marker;
#define TOMBSTONE ((void *)&mf_hashmap_tombstone_marker)

struct mf_hashmap {
  size_t key_size;
  size_t capacity; /* power of two */
  size_t count;    /* live entries */
  size_t used;     /* live + tombstones: what probing has to walk over */
  uint64_t seed;
  void **values;
  uint8_t *keys;
};

/* A keyed mix in the style of wyhash's folding multiply: fast for 6..40-byte keys and,
 * with a secret seed, not predictable by whoever picks the keys. */
static uint64_t mf_hashmap_mix(uint64_t a, uint64_t b) {
  __uint128_t r = (__uint128_t)a * b;
  return (uint64_t)(r >> 64) ^ (uint64_t)r;
}

static uint64_t mf_hashmap_hash(const mf_hashmap_t *m, const uint8_t *key) {
  uint64_t h = m->seed ^ (m->key_size * 0x9e3779b97f4a7c15ULL);
  size_t i = 0;
  for (; i + 8 <= m->key_size; i += 8) {
    uint64_t w;
    memcpy(&w, key + i, 8);
    h = mf_hashmap_mix(h ^ w, 0xa0761d6478bd642fULL);
  }
  if (i < m->key_size) {
    uint64_t w = 0;
    memcpy(&w, key + i, m->key_size - i);
    h = mf_hashmap_mix(h ^ w, 0xe7037ed1a0b428dbULL);
  }
  return mf_hashmap_mix(h, 0x8ebc6af09c88c6e3ULL);
}

static mf_err_t mf_hashmap_alloc_table(mf_hashmap_t *m, size_t capacity) {
  m->values = calloc(capacity, sizeof *m->values);
  m->keys = malloc(capacity * m->key_size);
  if (!m->values || !m->keys) {
    free(m->values);
    free(m->keys);
    return MF_ERR_NO_MEMORY;
  }
  m->capacity = capacity;
  m->count = 0;
  m->used = 0;
  return MF_OK;
}

mf_err_t mf_hashmap_create(size_t key_size, size_t initial, mf_hashmap_t **out) {
  if (key_size == 0 || key_size > MF_HASHMAP_MAX_KEY) return MF_ERR_INVALID_ARG;
  mf_hashmap_t *m = calloc(1, sizeof *m);
  if (!m) return MF_ERR_NO_MEMORY;
  m->key_size = key_size;
  if (RAND_bytes((unsigned char *)&m->seed, sizeof m->seed) != 1) {
    free(m);
    return MF_ERR_CRYPTO;
  }
  size_t cap = 16;
  while (cap < initial * 2) cap <<= 1;
  mf_err_t err = mf_hashmap_alloc_table(m, cap);
  if (err) {
    free(m);
    return err;
  }
  *out = m;
  return MF_OK;
}

void mf_hashmap_destroy(mf_hashmap_t *map) {
  if (!map) return;
  free(map->values);
  free(map->keys);
  free(map);
}

/* Index of the slot holding key, or of the first free/tombstone slot where it would go
 * (*found tells which). The table always has an empty slot, so probing ends. */
static size_t mf_hashmap_find(const mf_hashmap_t *m, const void *key, int *found) {
  size_t mask = m->capacity - 1;
  size_t i = (size_t)mf_hashmap_hash(m, key) & mask;
  size_t first_free = SIZE_MAX;
  for (;;) {
    void *v = m->values[i];
    if (v == NULL) {
      *found = 0;
      return first_free != SIZE_MAX ? first_free : i;
    }
    if (v == TOMBSTONE) {
      if (first_free == SIZE_MAX) first_free = i;
    } else if (memcmp(m->keys + i * m->key_size, key, m->key_size) == 0) {
      *found = 1;
      return i;
    }
    i = (i + 1) & mask;
  }
}

static mf_err_t mf_hashmap_grow(mf_hashmap_t *m) {
  void **old_values = m->values;
  uint8_t *old_keys = m->keys;
  size_t old_cap = m->capacity;
  /* Rehash at the same size when tombstones, not live entries, filled the table. */
  size_t cap = m->count * 2 >= old_cap / 2 ? old_cap * 2 : old_cap;
  mf_err_t err = mf_hashmap_alloc_table(m, cap);
  if (err) {
    m->values = old_values;
    m->keys = old_keys;
    return err;
  }
  for (size_t i = 0; i < old_cap; i++) {
    if (old_values[i] == NULL || old_values[i] == TOMBSTONE) continue;
    int found;
    size_t slot = mf_hashmap_find(m, old_keys + i * m->key_size, &found);
    memcpy(m->keys + slot * m->key_size, old_keys + i * m->key_size, m->key_size);
    m->values[slot] = old_values[i];
    m->count++;
    m->used++;
  }
  free(old_values);
  free(old_keys);
  return MF_OK;
}

mf_err_t mf_hashmap_put(mf_hashmap_t *map, const void *key, void *value) {
  if (!value) return MF_ERR_INVALID_ARG;
  int found;
  size_t slot = mf_hashmap_find(map, key, &found);
  if (found) return MF_ERR_EXISTS;
  if ((map->used + 1) * 10 > map->capacity * 7) {
    mf_err_t err = mf_hashmap_grow(map);
    if (err) return err;
    slot = mf_hashmap_find(map, key, &found);
  }
  if (map->values[slot] == NULL) map->used++;
  memcpy(map->keys + slot * map->key_size, key, map->key_size);
  map->values[slot] = value;
  map->count++;
  return MF_OK;
}

void *mf_hashmap_get(const mf_hashmap_t *map, const void *key) {
  int found;
  size_t slot = mf_hashmap_find(map, key, &found);
  return found ? map->values[slot] : NULL;
}

void *mf_hashmap_remove(mf_hashmap_t *map, const void *key) {
  int found;
  size_t slot = mf_hashmap_find(map, key, &found);
  if (!found) return NULL;
  void *v = map->values[slot];
  map->values[slot] = TOMBSTONE;
  map->count--;
  return v;
}

size_t mf_hashmap_count(const mf_hashmap_t *map) { return map->count; }

void mf_hashmap_foreach(const mf_hashmap_t *map,
                        void (*fn)(const void *key, void *value, void *ud), void *ud) {
  for (size_t i = 0; i < map->capacity; i++) {
    void *v = map->values[i];
    if (v != NULL && v != TOMBSTONE) fn(map->keys + i * map->key_size, v, ud);
  }
}
