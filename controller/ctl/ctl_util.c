/* mafalda-ctl: RPC calls with operator-facing failure messages, text tables, JSON. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/ctl/ctl.h"
#include "controller/placement.h"
#include "controller/rpc_server.h"

mf_ctl_options_t mf_ctl_opts;
char mf_ctl_addrs[MF_CTL_MAX_CONTROLLERS][128];
const char *mf_ctl_urls[MF_CTL_MAX_CONTROLLERS];
size_t mf_ctl_n_urls;
static char url_buf[MF_CTL_MAX_CONTROLLERS][160];

int mf_ctl_usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "mafalda-ctl: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nTry 'mafalda-ctl --help'.\n");
  return MF_CTL_EXIT_USAGE;
}

int mf_ctl_fail(const char *what, const char *message, int code) {
  if (mf_ctl_opts.json) {
    json_t *o = json_pack("{s:b, s:s, s:s, s:i}", "ok", 0, "command", what, "error", message,
                          "exit_code", code);
    if (o) {
      char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
      if (s) printf("%s\n", s);
      free(s);
      json_decref(o);
    }
  }
  fprintf(stderr, "mafalda-ctl: %s: %s\n", what, message);
  return code;
}

bool mf_ctl_valid_hostport(const char *s) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || !colon[1]) return false;
  for (const char *p = s; p < colon; p++)
    if (*p <= ' ' || *p == ',' || *p == '/' || *p == 0x7f) return false;
  char *end;
  errno = 0;
  long port = strtol(colon + 1, &end, 10);
  return !errno && *end == '\0' && port >= 1 && port <= 65535;
}

bool mf_ctl_parse_controllers(const char *text) {
  mf_ctl_n_urls = 0;
  const char *p = text;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    char one[128];
    if (n == 0 || n >= sizeof(one) || mf_ctl_n_urls == MF_CTL_MAX_CONTROLLERS) return false;
    memcpy(one, p, n);
    one[n] = '\0';
    const char *hp = strncmp(one, "tcp://", 6) == 0       ? one + 6
                     : strncmp(one, "tls+tcp://", 10) == 0 ? one + 10
                                                           : one;
    if (!mf_ctl_valid_hostport(hp)) return false;
    snprintf(mf_ctl_addrs[mf_ctl_n_urls], sizeof(mf_ctl_addrs[0]), "%s", hp);
    snprintf(url_buf[mf_ctl_n_urls], sizeof(url_buf[0]), "tcp://%s", hp);
    mf_ctl_urls[mf_ctl_n_urls] = url_buf[mf_ctl_n_urls];
    mf_ctl_n_urls++;
    if (!end) break;
    p = end + 1;
    if (!*p) return false; /* trailing comma */
  }
  return mf_ctl_n_urls > 0;
}

static const char *status_name(Mafalda__Rpc__Status st) {
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&mafalda__rpc__status__descriptor, (int)st);
  return v ? v->name : "STATUS_?";
}

/* "a, b and c" of the --controller list, for messages. */
static void tried_list(char *out, size_t size) {
  size_t used = 0;
  out[0] = '\0';
  for (size_t i = 0; i < mf_ctl_n_urls && used < size; i++) {
    const char *sep = i == 0 ? "" : i + 1 == mf_ctl_n_urls ? " and " : ", ";
    int n = snprintf(out + used, size - used, "%s%s", sep, mf_ctl_addrs[i]);
    if (n < 0) break;
    used += (size_t)n;
  }
}

mf_err_t mf_ctl_call(const char *what, const char *method, const ProtobufCMessage *req,
                     mf_rpc_reply_t *reply, int *exit_code) {
  size_t hint = 0;
  mf_err_t err = mf_rpc_call_leader(mf_ctl_urls, mf_ctl_n_urls, &hint, method, req,
                                    mf_ctl_opts.timeout_ms, reply);
  if (err != MF_OK) {
    char tried[1200], msg[2000];
    tried_list(tried, sizeof(tried));
    if (err == MF_ERR_AUTH)
      snprintf(msg, sizeof(msg),
               "TLS handshake refused by or for the controller at %s.\n"
               "  Check that its certificate is signed by --tls-ca, and that ours is signed\n"
               "  by the CA it trusts (--tls-cert, --tls-key; docs/controller.md, TLS).",
               tried);
    else if (err == MF_ERR_STATE)
      snprintf(msg, sizeof(msg),
               "no leader within %d ms: the controller%s at %s answered but none leads.\n"
               "  Check that a majority of the voters run and reach each other's Raft\n"
               "  addresses (an election may be in progress, or quorum is lost); if a\n"
               "  membership change is in progress, retry when it is done.",
               mf_ctl_opts.timeout_ms, mf_ctl_n_urls > 1 ? "s" : "", tried);
    else
      snprintf(msg, sizeof(msg),
               "no controller answered within %d ms; tried %s.\n"
               "  Check that mafalda-controller (or a mafalda-node with its embedded\n"
               "  controller) runs there, that each address is its RPC address (--rpc-listen,\n"
               "  or a node's --controller-rpc-listen; not the Raft --listen address), and\n"
               "  that no firewall drops the port. Addresses come from --controller or\n"
               "  MAFALDA_CONTROLLER=host:port[,host:port...] (default 127.0.0.1:7200).%s",
               mf_ctl_opts.timeout_ms, tried,
               mf_tls_control() ? "\n  With TLS: the controller must run with --tls-* too."
                                : "\n  A controller running with --tls-* needs them here too.");
    *exit_code = mf_ctl_fail(what, msg, MF_CTL_EXIT_UNREACHABLE);
    return err;
  }
  Mafalda__Rpc__Envelope *env = reply->envelope;
  if (env->status != MAFALDA__RPC__STATUS__STATUS_OK) {
    char msg[512];
    snprintf(msg, sizeof(msg), "%s (%s)",
             env->error_message && env->error_message[0] ? env->error_message : "refused",
             status_name(env->status));
    *exit_code = mf_ctl_fail(what, msg, MF_CTL_EXIT_FAIL);
    mf_rpc_reply_free(reply);
    return MF_ERR_STATE;
  }
  return MF_OK;
}

Mafalda__Controller__StateResponse *mf_ctl_fetch_state(const char *what, int *exit_code) {
  Mafalda__Controller__StatusRequest req = MAFALDA__CONTROLLER__STATUS_REQUEST__INIT;
  req.linearizable = true;
  mf_rpc_reply_t reply;
  if (mf_ctl_call(what, MF_RPC_METHOD_STATE, &req.base, &reply, exit_code) != MF_OK)
    return NULL;
  Mafalda__Controller__StateResponse *r = mafalda__controller__state_response__unpack(
      NULL, reply.envelope->payload.len, reply.envelope->payload.data);
  mf_rpc_reply_free(&reply);
  if (!r || !r->status || !r->state) {
    if (r) mafalda__controller__state_response__free_unpacked(r, NULL);
    *exit_code = mf_ctl_fail(what, "the controller's answer does not decode (version mismatch?)",
                             MF_CTL_EXIT_FAIL);
    return NULL;
  }
  return r;
}

int mf_ctl_print_json(json_t *v, bool compact) {
  if (!v) {
    fprintf(stderr, "mafalda-ctl: out of memory\n");
    return MF_CTL_EXIT_FAIL;
  }
  char *s = json_dumps(v, (compact ? JSON_COMPACT : JSON_INDENT(2)) | JSON_PRESERVE_ORDER);
  json_decref(v);
  if (!s) {
    fprintf(stderr, "mafalda-ctl: out of memory\n");
    return MF_CTL_EXIT_FAIL;
  }
  printf("%s\n", s);
  free(s);
  return MF_CTL_EXIT_OK;
}

json_t *mf_ctl_opaque_json(const char *text) {
  if (!text || !text[0]) return json_null();
  json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
  return v ? v : json_string(text);
}

static void out_of_memory(void) {
  fprintf(stderr, "mafalda-ctl: out of memory\n");
  exit(MF_CTL_EXIT_FAIL);
}

void mf_ctl_table_row(mf_ctl_table_t *t, const char *const *cells) {
  if (t->rows == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    char **c = realloc(t->cells, cap * t->cols * sizeof(char *));
    if (!c) out_of_memory();
    t->cells = c;
    t->cap = cap;
  }
  for (size_t i = 0; i < t->cols; i++) {
    char *s = strdup(cells[i] ? cells[i] : "");
    if (!s) out_of_memory();
    t->cells[t->rows * t->cols + i] = s;
  }
  t->rows++;
}

void mf_ctl_table_align(mf_ctl_table_t *t, const char *spec) {
  for (size_t i = 0; i < t->cols && spec[i]; i++) t->right[i] = spec[i] == '>';
}

void mf_ctl_table_print(mf_ctl_table_t *t, const char *indent) {
  size_t width[MF_CTL_TABLE_COLS] = {0}, line_len = 1;
  for (size_t r = 0; r < t->rows; r++)
    for (size_t c = 0; c < t->cols; c++) {
      size_t n = strlen(t->cells[r * t->cols + c]);
      if (n > width[c]) width[c] = n;
    }
  for (size_t c = 0; c < t->cols; c++) line_len += width[c] + 2;
  char *line = malloc(line_len);
  if (!line) out_of_memory();
  for (size_t r = 0; r < t->rows; r++) {
    size_t used = 0;
    for (size_t c = 0; c < t->cols; c++) {
      const char *s = t->cells[r * t->cols + c];
      int n = snprintf(line + used, line_len - used, t->right[c] ? "%*s  " : "%-*s  ",
                       (int)width[c], s);
      if (n > 0) used += (size_t)n;
    }
    /* Empty right-most cells would leave trailing blanks. */
    while (used > 0 && line[used - 1] == ' ') used--;
    line[used] = '\0';
    printf("%s%s\n", indent ? indent : "", line);
  }
  free(line);
  mf_ctl_table_free(t);
}

void mf_ctl_table_free(mf_ctl_table_t *t) {
  for (size_t i = 0; i < t->rows * t->cols; i++) free(t->cells[i]);
  free(t->cells);
  t->cells = NULL;
  t->rows = t->cap = 0;
}

const char *mf_ctl_state_name(Mafalda__Controller__NodeState st) {
  switch (st) {
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_JOINING: return "joining";
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_ACTIVE: return "active";
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DRAINING: return "draining";
    case MAFALDA__CONTROLLER__NODE_STATE__NODE_STATE_DEAD: return "dead";
    default: return "unspecified";
  }
}

const char *mf_ctl_short_id(const char *id, char *out, size_t size) {
  size_t n = strlen(id);
  snprintf(out, size, "%.*s", (int)(n > 12 ? 8 : n), id);
  return out;
}

const char *mf_ctl_duration(uint64_t ms, char *out, size_t size) {
  uint64_t s = ms / 1000;
  if (ms == 0)
    snprintf(out, size, "-");
  else if (s < 60)
    snprintf(out, size, "%" PRIu64 "s", s);
  else if (s < 3600)
    snprintf(out, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
  else if (s < 86400)
    snprintf(out, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
  else
    snprintf(out, size, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s / 3600 % 24);
  return out;
}

const Mafalda__Cluster__LoadReport *mf_ctl_find_load(const Mafalda__Controller__StateResponse *r,
                                                     const char *node_id) {
  for (size_t i = 0; i < r->n_loads; i++)
    if (r->loads[i]->node_id && strcmp(r->loads[i]->node_id, node_id) == 0) return r->loads[i];
  return NULL;
}

const Mafalda__Cluster__WorkerLoad *mf_ctl_find_worker_load(
    const Mafalda__Cluster__LoadReport *rep, uint32_t index) {
  for (size_t i = 0; rep && i < rep->n_workers; i++)
    if (rep->workers[i]->index == index) return rep->workers[i];
  return NULL;
}

double mf_ctl_worker_load_percent(const Mafalda__Controller__Node *n, uint32_t index,
                                  const Mafalda__Cluster__WorkerLoad *wl) {
  double cap = MF_PLACEMENT_DEFAULT_CAPACITY_PPS;
  for (size_t k = 0; k < n->n_workers; k++)
    if (n->workers[k]->index == index && n->workers[k]->capacity_pps)
      cap = (double)n->workers[k]->capacity_pps;
  double pps = (double)wl->packets_in_per_sec + (double)wl->packets_out_per_sec;
  double load = pps / cap;
  /* A report is network input: a NaN or negative cpu must not poison the table. */
  if (isfinite(wl->cpu) && wl->cpu > load) load = wl->cpu;
  return load * 100.0;
}
