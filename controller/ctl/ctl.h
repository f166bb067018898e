/* mafalda-ctl internals shared by its files (main.c: flags, dispatch, list commands and
 * writes; ctl_util.c: RPC calls, text tables, JSON output; ctl_views.c: status, workers,
 * one router). Not a library: one process, one thread, except the parallel replica probes
 * in ctl_views.c, which only call mf_rpc_call (thread-safe) and fill their own slot. */
#ifndef MF_CONTROLLER_CTL_CTL_H
#define MF_CONTROLLER_CTL_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/tls_config.h"
#include "controller/rpc_client.h"
#include "proto/controller.pb-c.h"

/* Exit status (documented in --help and docs/controller.md). */
#define MF_CTL_EXIT_OK 0
#define MF_CTL_EXIT_FAIL 1        /* the controller refused, or an answer did not decode */
#define MF_CTL_EXIT_USAGE 2       /* bad command line */
#define MF_CTL_EXIT_UNREACHABLE 3 /* no controller answered, or no leader within --timeout */

#define MF_CTL_MAX_CONTROLLERS 16

typedef struct {
  char controller[1024];
  bool json;
  int timeout_ms;
  bool watch;
  int count; /* --watch refreshes; 0 = until Ctrl-C */
  mf_tls_options_t tls; /* issue 12 (tls): --tls-cert, --tls-key, --tls-ca, --tls-require */
} mf_ctl_options_t;

extern mf_ctl_options_t mf_ctl_opts;
/* The --controller list as "host:port" (display) and "tcp://host:port" (dialing). */
extern char mf_ctl_addrs[MF_CTL_MAX_CONTROLLERS][128];
extern const char *mf_ctl_urls[MF_CTL_MAX_CONTROLLERS];
extern size_t mf_ctl_n_urls;

/* Parses host:port[,host:port...] (an optional tcp:// or tls+tcp:// prefix per item; the
 * scheme dialed follows the --tls-* flags, common/tls_config.h) into the lists
 * above. False on any malformed item, an empty item or more than MF_CTL_MAX_CONTROLLERS. */
bool mf_ctl_parse_controllers(const char *text);
/* host:port with a non-empty host and a port 1..65535. */
bool mf_ctl_valid_hostport(const char *s);

/* Prints "mafalda-ctl: <fmt with arg>" and a hint to stderr; returns MF_CTL_EXIT_USAGE. */
int mf_ctl_usage_error(const char *fmt, const char *arg);
/* Prints "mafalda-ctl: what: message" to stderr (and with --json {"ok":false,...} to
 * stdout); returns code. */
int mf_ctl_fail(const char *what, const char *message, int code);

/* One call to whichever replica leads. MF_OK: reply->envelope has status OK. Otherwise
 * the failure was printed and *exit_code says how to exit (reply already freed). */
mf_err_t mf_ctl_call(const char *what, const char *method, const ProtobufCMessage *req,
                     mf_rpc_reply_t *reply, int *exit_code);

/* Linearizable controller.State from the leader; NULL after printing why (*exit_code set).
 * Free with mafalda__controller__state_response__free_unpacked. */
Mafalda__Controller__StateResponse *mf_ctl_fetch_state(const char *what, int *exit_code);

/* Prints v (consumed) as indented JSON, or one line when compact. */
int mf_ctl_print_json(json_t *v, bool compact);
/* Opaque JSON text: embedded as JSON when it parses, else as a string; "" -> null. */
json_t *mf_ctl_opaque_json(const char *text);

/* A text table: columns padded to their widest cell, two spaces apart; numeric columns
 * (set with mf_ctl_table_right) aligned right. Cells are copied. Exits on out of memory. */
#define MF_CTL_TABLE_COLS 12
typedef struct {
  size_t cols, rows, cap;
  bool right[MF_CTL_TABLE_COLS];
  char **cells; /* rows * cols, row 0 = headers */
} mf_ctl_table_t;

void mf_ctl_table_row(mf_ctl_table_t *t, const char *const *cells);
/* Marks columns right-aligned: a string of '<' / '>' per column, e.g. "<<>>". */
void mf_ctl_table_align(mf_ctl_table_t *t, const char *spec);
/* Prints (each line prefixed by indent) and frees the table. */
void mf_ctl_table_print(mf_ctl_table_t *t, const char *indent);
/* Frees the table without printing it. */
void mf_ctl_table_free(mf_ctl_table_t *t);

const char *mf_ctl_state_name(Mafalda__Controller__NodeState st);
/* A node id for an 80-column table: ids longer than 12 characters (UUIDs) are cut to their
 * first 8; commands that take a node id accept such a unique prefix. */
const char *mf_ctl_short_id(const char *id, char *out, size_t size);
/* "45s", "12m03s", "5h07m", "3d04h"; "-" for 0 (unknown). */
const char *mf_ctl_duration(uint64_t ms, char *out, size_t size);

/* The load report the state response holds for node_id, or NULL. */
const Mafalda__Cluster__LoadReport *mf_ctl_find_load(const Mafalda__Controller__StateResponse *r,
                                                     const char *node_id);
const Mafalda__Cluster__WorkerLoad *mf_ctl_find_worker_load(
    const Mafalda__Cluster__LoadReport *rep, uint32_t index);
/* A worker's load as placement sees it, in percent: max(cpu, (pps in + out) / capacity),
 * capacity from the node's registration or placement's default. */
double mf_ctl_worker_load_percent(const Mafalda__Controller__Node *n, uint32_t index,
                                  const Mafalda__Cluster__WorkerLoad *wl);

/* Commands in ctl_views.c; they return the exit status. */
int mf_ctl_cmd_status(void);
int mf_ctl_cmd_workers(void);
int mf_ctl_cmd_router(const char *name_or_id);

#endif
