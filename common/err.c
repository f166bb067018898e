#include "err.h"

#include <string.h>

static const struct {
  const char *name;
  const char *text;
} mf_err_table[MF_ERR__COUNT] = {
    [MF_OK] = {"ok", "success"},
    [MF_ERR_INVALID_ARG] = {"invalid_argument", "invalid argument"},
    [MF_ERR_NO_MEMORY] = {"no_memory", "out of memory"},
    [MF_ERR_NOT_FOUND] = {"not_found", "not found"},
    [MF_ERR_EXISTS] = {"already_exists", "already exists"},
    [MF_ERR_FULL] = {"full", "no room left"},
    [MF_ERR_EMPTY] = {"empty", "nothing available"},
    [MF_ERR_IO] = {"io_error", "input/output error"},
    [MF_ERR_TIMEOUT] = {"timeout", "timed out"},
    [MF_ERR_CLOSED] = {"closed", "closed"},
    [MF_ERR_STATE] = {"invalid_state", "not allowed in the current state"},
    [MF_ERR_PARSE] = {"parse_error", "malformed input"},
    [MF_ERR_UNSUPPORTED] = {"unsupported", "not supported"},
    [MF_ERR_AUTH] = {"unauthorized", "authentication failed"},
    [MF_ERR_CRYPTO] = {"crypto_error", "cryptographic operation failed"},
    [MF_ERR_LIMIT] = {"limit_exceeded", "limit exceeded"},
    [MF_ERR_INTERNAL] = {"internal_error", "internal error"},
    [MF_ERR_RATE] = {"rate_limited", "request rate limit exceeded"},
};

const char *mf_strerror(mf_err_t err) {
  if ((unsigned)err >= MF_ERR__COUNT) return "unknown error";
  return mf_err_table[err].text;
}

const char *mf_err_name(mf_err_t err) {
  if ((unsigned)err >= MF_ERR__COUNT) return "unknown";
  return mf_err_table[err].name;
}

mf_err_t mf_err_from_name(const char *name) {
  for (unsigned i = 0; name && i < MF_ERR__COUNT; i++)
    if (mf_err_table[i].name && strcmp(mf_err_table[i].name, name) == 0) return (mf_err_t)i;
  return MF_ERR_INTERNAL;
}
