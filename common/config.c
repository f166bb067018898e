#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static mf_err_t mf_config_fail(mf_config_result_t *result, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static mf_err_t mf_config_fail(mf_config_result_t *result, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(result->error, sizeof result->error, fmt, ap);
  va_end(ap);
  return MF_ERR_INVALID_ARG;
}

mf_err_t mf_config_env_name(const char *option_name, char *out, size_t size) {
  static const char prefix[] = "MAFALDA_";
  size_t n = strlen(option_name);
  if (sizeof prefix + n > size) return MF_ERR_LIMIT;
  memcpy(out, prefix, sizeof prefix - 1);
  for (size_t i = 0; i < n; i++) {
    char c = option_name[i];
    out[sizeof prefix - 1 + i] = c == '-' ? '_' : (char)toupper((unsigned char)c);
  }
  out[sizeof prefix - 1 + n] = '\0';
  return MF_OK;
}

static bool mf_config_parse_bool(const char *text, bool *out) {
  static const char *const yes[] = {"true", "1", "yes", "on"};
  static const char *const no[] = {"false", "0", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(text, yes[i]) == 0) {
      *out = true;
      return true;
    }
    if (strcasecmp(text, no[i]) == 0) {
      *out = false;
      return true;
    }
  }
  return false;
}

/* Stores one value; `source` says where it came from ("--workers", "MAFALDA_WORKERS",
 * "default of --workers") so the error message points at the right place. */
static mf_err_t mf_config_set(const mf_config_option_t *opt, void *target, const char *value,
                              const char *source, mf_config_result_t *result) {
  char *field = (char *)target + opt->offset;
  switch (opt->type) {
    case MF_OPT_INT: {
      char *end = NULL;
      errno = 0;
      long v = strtol(value, &end, 10);
      if (value[0] == '\0' || *end != '\0' || errno == ERANGE)
        return mf_config_fail(result, "%s: '%s' is not an integer", source, value);
      if (v < opt->min || v > opt->max)
        return mf_config_fail(result, "%s: %ld is out of range [%ld, %ld]", source, v, opt->min,
                              opt->max);
      *(int *)field = (int)v;
      return MF_OK;
    }
    case MF_OPT_BOOL:
      if (!mf_config_parse_bool(value, (bool *)field))
        return mf_config_fail(result, "%s: '%s' is not a boolean (true/false)", source, value);
      return MF_OK;
    case MF_OPT_STRING: {
      size_t n = strlen(value);
      if (n + 1 > opt->size)
        return mf_config_fail(result, "%s: value is too long (%zu bytes, at most %zu)", source, n,
                              opt->size - 1);
      memcpy(field, value, n + 1);
      return MF_OK;
    }
    case MF_OPT_ENUM:
      for (int i = 0; opt->choices && opt->choices[i]; i++) {
        if (strcasecmp(value, opt->choices[i]) == 0) {
          *(int *)field = i;
          return MF_OK;
        }
      }
      {
        char list[128] = "";
        for (int i = 0; opt->choices && opt->choices[i]; i++) {
          size_t used = strlen(list);
          snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", opt->choices[i]);
        }
        return mf_config_fail(result, "%s: '%s' is not one of: %s", source, value, list);
      }
  }
  return mf_config_fail(result, "%s: option has an unknown type", source);
}

static const mf_config_option_t *mf_config_find(const mf_config_option_t *options, size_t count,
                                                const char *name, size_t name_len) {
  for (size_t i = 0; i < count; i++) {
    if (strlen(options[i].name) == name_len && strncmp(options[i].name, name, name_len) == 0)
      return &options[i];
  }
  return NULL;
}

static const char *mf_config_env_lookup(char *const *envp, const char *key) {
  if (!envp) return NULL;
  size_t n = strlen(key);
  for (size_t i = 0; envp[i]; i++) {
    if (strncmp(envp[i], key, n) == 0 && envp[i][n] == '=') return envp[i] + n + 1;
  }
  return NULL;
}

mf_err_t mf_config_parse(const mf_config_option_t *options, size_t count, void *target,
                         int argc, char *const *argv, char *const *envp,
                         mf_config_result_t *result) {
  memset(result, 0, sizeof *result);
  char source[160];

  for (size_t i = 0; i < count; i++) {
    if (!options[i].default_value) continue;
    snprintf(source, sizeof source, "default of --%s", options[i].name);
    mf_err_t err = mf_config_set(&options[i], target, options[i].default_value, source, result);
    if (err) return err;
  }

  for (size_t i = 0; i < count; i++) {
    char key[96];
    if (mf_config_env_name(options[i].name, key, sizeof key) != MF_OK) continue;
    const char *value = mf_config_env_lookup(envp, key);
    if (!value) continue;
    mf_err_t err = mf_config_set(&options[i], target, value, key, result);
    if (err) return err;
  }

  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      result->help_requested = true;
      return MF_OK;
    }
    if (strcmp(arg, "--version") == 0) {
      result->version_requested = true;
      return MF_OK;
    }
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
      return mf_config_fail(result, "unexpected argument '%s' (options start with --)", arg);

    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
    const mf_config_option_t *opt = mf_config_find(options, count, name, name_len);
    if (!opt)
      return mf_config_fail(result, "unknown option '--%.*s' (see --help)", (int)name_len, name);

    const char *value;
    if (eq) {
      value = eq + 1;
    } else if (opt->type == MF_OPT_BOOL &&
               (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
      value = "true";
    } else if (opt->type == MF_OPT_BOOL) {
      bool ignored;
      /* "--pin-workers false" takes the next word only if it is a boolean. */
      value = mf_config_parse_bool(argv[i + 1], &ignored) ? argv[++i] : "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return mf_config_fail(result, "option '--%s' needs a value", opt->name);
    }
    snprintf(source, sizeof source, "--%s", opt->name);
    mf_err_t err = mf_config_set(opt, target, value, source, result);
    if (err) return err;
  }
  return MF_OK;
}

void mf_config_usage(const mf_config_option_t *options, size_t count, const char *usage_line,
                     FILE *out) {
  fprintf(out, "Usage: %s\n\nOptions (environment variable in brackets):\n", usage_line);
  for (size_t i = 0; i < count; i++) {
    const mf_config_option_t *o = &options[i];
    char env[96] = "";
    mf_config_env_name(o->name, env, sizeof env);
    const char *meta = o->type == MF_OPT_INT      ? " N"
                       : o->type == MF_OPT_STRING ? " TEXT"
                       : o->type == MF_OPT_ENUM   ? " CHOICE"
                                                  : "";
    fprintf(out, "  --%s%s  [%s]\n      %s", o->name, meta, env, o->help ? o->help : "");
    if (o->type == MF_OPT_ENUM && o->choices) {
      fprintf(out, " (");
      for (int c = 0; o->choices[c]; c++) fprintf(out, "%s%s", c ? "|" : "", o->choices[c]);
      fprintf(out, ")");
    }
    if (o->type == MF_OPT_INT) fprintf(out, " [%ld..%ld]", o->min, o->max);
    if (o->default_value && o->default_value[0]) fprintf(out, " Default: %s.", o->default_value);
    fprintf(out, "\n");
  }
  fprintf(out, "  --help      Show this help and exit.\n  --version   Show the version and exit.\n");
}

bool mf_config_list_next(const char **cursor, char *item, size_t size) {
  const char *p = *cursor;
  if (!p || !*p) return false;
  size_t n = strcspn(p, ",");
  size_t keep = n < size ? n : size - 1;
  memcpy(item, p, keep);
  item[keep] = '\0';
  *cursor = p + n + (p[n] == ',');
  return true;
}
