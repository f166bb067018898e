/* Open-addressing hash map from fixed-size byte keys to pointers.
 *
 * Used on the packet path (5-tuple -> transport, ufrag -> transport, ssrc -> stream), so
 * lookups never allocate; inserts allocate only when the table grows. Keys are copied in.
 * The hash is seeded from the CSPRNG per map, so peers who choose keys (ports, ufrags)
 * cannot aim collisions at a table. One thread owns a map: no internal locking. */
#ifndef MF_HASHMAP_H
#define MF_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct mf_hashmap mf_hashmap_t;

/* key_size: bytes per key (1..64). initial: expected entries (the table starts at twice
 * that, rounded to a power of two, and doubles when 70% full counting deleted slots). */
mf_err_t mf_hashmap_create(size_t key_size, size_t initial, mf_hashmap_t **out);
void mf_hashmap_destroy(mf_hashmap_t *map); /* values are not freed; NULL is ignored */

/* MF_ERR_EXISTS if the key is present (value unchanged); value must not be NULL. */
mf_err_t mf_hashmap_put(mf_hashmap_t *map, const void *key, void *value);
void *mf_hashmap_get(const mf_hashmap_t *map, const void *key); /* NULL if absent */
/* Returns the removed value, or NULL if absent. */
void *mf_hashmap_remove(mf_hashmap_t *map, const void *key);
size_t mf_hashmap_count(const mf_hashmap_t *map);

/* Calls fn for every entry; fn must not modify the map. */
void mf_hashmap_foreach(const mf_hashmap_t *map,
                        void (*fn)(const void *key, void *value, void *ud), void *ud);

#endif
