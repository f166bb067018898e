/* `mafalda-node token`: mints an API token (HS256 JWT) for a room and an identity, signed
 * with the same secret the node verifies with (--secret or MAFALDA_API_SECRET). */
#ifndef MF_TOKEN_CMD_H
#define MF_TOKEN_CMD_H

/* argv excludes "token". Prints the token on stdout; returns the exit status (0, 2 usage). */
int mf_token_cmd_run(int argc, char *const *argv, char *const *envp);

#endif
