#include "node/token_cmd.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/config.h"
#include "node/api/jwt.h"

typedef struct {
  char secret[256];
  char room[MF_JWT_ROOM_MAX + 1];
  char identity[MF_JWT_SUB_MAX + 1];
  int ttl;
  int grant; /* 0 join, 1 admin */
} mf_token_config_t;

static const char *const mf_token_grants[] = {"join", "admin", NULL};

static const mf_config_option_t mf_token_options[] = {
    {.name = "api-secret", .type = MF_OPT_STRING, .offset = offsetof(mf_token_config_t, secret),
     .size = 256, .default_value = "", .help = "The node's --api-secret (required)."},
    {.name = "room", .type = MF_OPT_STRING, .offset = offsetof(mf_token_config_t, room),
     .size = MF_JWT_ROOM_MAX + 1, .default_value = "",
     .help = "Room the token grants (required for join)."},
    {.name = "identity", .type = MF_OPT_STRING, .offset = offsetof(mf_token_config_t, identity),
     .size = MF_JWT_SUB_MAX + 1, .default_value = "", .help = "Who the token is for (sub)."},
    {.name = "ttl", .type = MF_OPT_INT, .offset = offsetof(mf_token_config_t, ttl), .min = 1,
     .max = 31 * 24 * 3600, .default_value = "3600", .help = "Seconds until it expires."},
    {.name = "grant", .type = MF_OPT_ENUM, .offset = offsetof(mf_token_config_t, grant),
     .choices = mf_token_grants, .default_value = "join",
     .help = "join: only --room; admin: any room."},
};
#define MF_TOKEN_OPTION_COUNT (sizeof mf_token_options / sizeof mf_token_options[0])

int mf_token_cmd_run(int argc, char *const *argv, char *const *envp) {
  mf_token_config_t c = {0};
  mf_config_result_t r;
  if (mf_config_parse(mf_token_options, MF_TOKEN_OPTION_COUNT, &c, argc, argv, envp, &r) != MF_OK) {
    fprintf(stderr, "mafalda-node token: %s\n", r.error);
    return 2;
  }
  if (r.help_requested) {
    mf_config_usage(mf_token_options, MF_TOKEN_OPTION_COUNT,
                    "mafalda-node token --room R --identity X [--grant join|admin]", stdout);
    return 0;
  }
  const char *missing = !c.secret[0] ? "--api-secret (or MAFALDA_API_SECRET)"
                        : !c.identity[0] ? "--identity"
                        : (c.grant == 0 && !c.room[0]) ? "--room"
                                                       : NULL;
  if (missing) {
    fprintf(stderr, "mafalda-node token: %s is required\n", missing);
    return 2;
  }
  mf_jwt_claims_t claims = {.exp = (int64_t)time(NULL) + c.ttl,
                            .grants = c.grant == 1 ? MF_JWT_GRANT_ADMIN : MF_JWT_GRANT_JOIN};
  memcpy(claims.sub, c.identity, sizeof claims.sub);
  memcpy(claims.room, c.room, sizeof claims.room);
  char token[MF_JWT_TOKEN_MAX + 1];
  size_t len = 0;
  mf_err_t e = mf_jwt_mint(&claims, (const uint8_t *)c.secret, strlen(c.secret), token,
                           sizeof token, &len);
  if (e != MF_OK) {
    fprintf(stderr, "mafalda-node token: cannot mint: %s\n", mf_strerror(e));
    return 1;
  }
  printf("%.*s\n", (int)len, token);
  return 0;
}
