/* Object ids: random UUIDv4 strings in canonical lowercase form, as mediasoup uses
 * ("8f0e7c9a-3b1d-4c2e-9f8a-1b2c3d4e5f60"). Global across the cluster: collisions are
 * as likely as for any 122-bit random value. Randomness comes from OpenSSL's CSPRNG.
 * Thread-safe. */
#ifndef MF_ID_H
#define MF_ID_H

#include <stdbool.h>

#include "err.h"

#define MF_ID_LEN 36 /* characters, without the terminating NUL */

/* Writes MF_ID_LEN chars + NUL into out. Fails only if the CSPRNG fails (MF_ERR_CRYPTO). */
mf_err_t mf_id_generate(char out[MF_ID_LEN + 1]);

/* True for a canonical lowercase UUIDv4 (version nibble 4, variant 8/9/a/b). NULL-safe. */
bool mf_id_is_valid(const char *text);

#endif
