/* Configuration from command-line flags and MAFALDA_* environment variables.
 *
 * A program describes its options once, in a table of mf_config_option_t, each bound to a
 * field of its own config struct (by offsetof). Precedence: built-in default < environment
 * < command line. The environment name of "rtc-port-base" is MAFALDA_RTC_PORT_BASE.
 * Flags are "--name value", "--name=value"; a bool flag alone ("--log-json") means true.
 *
 * Nothing is allocated: strings are copied into fixed char arrays of the target struct, so
 * the struct owns everything and can be copied. Not thread-safe by design: call it from the
 * process bootstrap. */
#ifndef MF_CONFIG_H
#define MF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"

typedef enum {
  MF_OPT_INT,    /* int field, checked against [min, max] */
  MF_OPT_BOOL,   /* bool field: true/false, 1/0, yes/no, on/off */
  MF_OPT_STRING, /* char[size] field; longer values are an error, not truncated */
  MF_OPT_ENUM,   /* int field: index of the value in choices (NULL-terminated) */
} mf_opt_type_t;

typedef struct {
  const char *name; /* long flag without dashes, lowercase with '-' */
  mf_opt_type_t type;
  size_t offset; /* offsetof(target struct, field) */
  size_t size;   /* MF_OPT_STRING: capacity of the char array including NUL */
  long min, max; /* MF_OPT_INT */
  const char *const *choices; /* MF_OPT_ENUM */
  const char *default_value;  /* parsed like user input; NULL: leave the field as it is */
  const char *help;
} mf_config_option_t;

#define MF_CONFIG_ERROR_MAX 256

typedef struct {
  bool help_requested;    /* --help or -h was given: print mf_config_usage and exit 0 */
  bool version_requested; /* --version */
  char error[MF_CONFIG_ERROR_MAX]; /* set when parse fails: names the flag or variable */
} mf_config_result_t;

/* Applies defaults, then envp ("KEY=VALUE" strings, NULL-terminated; may be NULL), then
 * argv[0..argc) (flags only: argv must not contain the program name). Returns MF_OK or
 * MF_ERR_INVALID_ARG with result->error describing the first problem. On error the target
 * may be partly filled: do not use it. */
mf_err_t mf_config_parse(const mf_config_option_t *options, size_t count, void *target,
                         int argc, char *const *argv, char *const *envp,
                         mf_config_result_t *result);

/* Writes "Usage: <usage_line>" and one line per option with its env name and default. */
void mf_config_usage(const mf_config_option_t *options, size_t count, const char *usage_line,
                     FILE *out);

/* Walks a comma-separated list option ("a,b,c"): copies the item at *cursor into item
 * (cut to size - 1 bytes), moves *cursor past it and its comma, and returns true; false at
 * the end of the list. Empty items ("a,,b") are returned as "". */
bool mf_config_list_next(const char **cursor, char *item, size_t size);

/* MAFALDA_ + upper-cased name with '-' -> '_'. Returns MF_ERR_LIMIT if it does not fit. */
mf_err_t mf_config_env_name(const char *option_name, char *out, size_t size);

#endif
