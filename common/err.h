/* Error codes shared by every Mafalda module.
 *
 * Functions that can fail return mf_err_t (MF_OK == 0). The name (mf_err_name) is the
 * stable machine-readable code used in API error responses; mf_strerror gives a
 * human sentence. Both return static strings: never free them. Thread-safe. */
#ifndef MF_ERR_H
#define MF_ERR_H

typedef enum {
  MF_OK = 0,
  MF_ERR_INVALID_ARG,  /* a caller or peer gave a value outside the contract */
  MF_ERR_NO_MEMORY,    /* allocation failed */
  MF_ERR_NOT_FOUND,    /* no object with that id/key */
  MF_ERR_EXISTS,       /* an object with that id/key already exists */
  MF_ERR_FULL,         /* a bounded container or pool has no room */
  MF_ERR_EMPTY,        /* nothing to take */
  MF_ERR_IO,           /* a system call failed (see errno in the log) */
  MF_ERR_TIMEOUT,      /* a deadline passed */
  MF_ERR_CLOSED,       /* the object is closed or shutting down */
  MF_ERR_STATE,        /* the operation is not valid in the object's current state */
  MF_ERR_PARSE,        /* malformed input (network packet, JSON, protobuf, flag) */
  MF_ERR_UNSUPPORTED,  /* valid but not implemented/negotiated */
  MF_ERR_AUTH,         /* authentication or integrity check failed */
  MF_ERR_CRYPTO,       /* a cryptographic library call failed */
  MF_ERR_LIMIT,        /* a documented limit was exceeded (size, count, rate) */
  MF_ERR_INTERNAL,     /* a bug: an invariant did not hold */
  MF_ERR_RATE,         /* too many requests in too little time: retry later */
  MF_ERR__COUNT
} mf_err_t;

/* Human-readable sentence, e.g. "invalid argument". Unknown values give "unknown error". */
const char *mf_strerror(mf_err_t err);

/* Stable snake_case code, e.g. "invalid_argument", for API responses and JSON logs. */
const char *mf_err_name(mf_err_t err);

/* The code whose mf_err_name is name (an API error relayed from another node);
 * MF_ERR_INTERNAL for an unknown or NULL name. */
mf_err_t mf_err_from_name(const char *name);

#endif
