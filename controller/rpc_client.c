#include "controller/rpc_client.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/pbnng.h"
#include "common/tls_config.h"
#include "controller/rpc_server.h"
#include "proto/controller.pb-c.h"

static uint64_t next_request_id(void) {
  static _Atomic uint64_t counter = 1;
  return counter++;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mf_rpc_reply_free(mf_rpc_reply_t *reply) {
  if (reply->envelope) mafalda__rpc__envelope__free_unpacked(reply->envelope, NULL);
  reply->envelope = NULL;
}

/* The request packed into a malloc'd buffer (*len bytes); NULL when out of memory. */
static uint8_t *pack_request(const ProtobufCMessage *request, size_t *len) {
  *len = request ? protobuf_c_message_get_packed_size(request) : 0;
  uint8_t *payload = malloc(*len ? *len : 1);
  if (payload && request) protobuf_c_message_pack(request, payload);
  return payload;
}

mf_err_t mf_rpc_call(const char *url, const char *method, const ProtobufCMessage *request,
                     int timeout_ms, mf_rpc_reply_t *reply) {
  size_t len;
  uint8_t *payload = pack_request(request, &len);
  if (!payload) return MF_ERR_NO_MEMORY;
  mf_err_t err = mf_rpc_call_bytes(url, method, payload, len, timeout_ms, reply);
  free(payload);
  return err;
}

mf_err_t mf_rpc_call_bytes(const char *url, const char *method, const uint8_t *payload,
                           size_t len, int timeout_ms, mf_rpc_reply_t *reply) {
  reply->envelope = NULL;
  snprintf(reply->url, sizeof(reply->url), "%s", url);
  Mafalda__Rpc__Envelope env = MAFALDA__RPC__ENVELOPE__INIT;
  env.version = 1;
  env.request_id = next_request_id();
  env.method = (char *)method;
  env.payload.data = (uint8_t *)payload;
  env.payload.len = len;
  nng_msg *msg = NULL;
  mf_err_t err = mf_pbnng_encode(&env.base, &msg);
  if (err) return err;

  nng_socket sock;
  if (nng_req0_open(&sock) != 0) {
    nng_msg_free(msg);
    return MF_ERR_IO;
  }
  nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, timeout_ms);
  nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, timeout_ms);
  nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
  int rv = 0;
  /* tcp:// or tls+tcp:// by the process's control-plane TLS (common/tls_config.h). */
  mf_err_t dial_err = mf_tls_dial(sock, url, &rv);
  if (rv == 0) rv = nng_sendmsg(sock, msg, 0);
  if (rv != 0) nng_msg_free(msg);
  nng_msg *answer = NULL;
  if (rv == 0) rv = nng_recvmsg(sock, &answer, 0);
  if (rv == 0) {
    ProtobufCMessage *out = NULL;
    err = mf_pbnng_decode(&mafalda__rpc__envelope__descriptor, answer, MF_PBNNG_MAX_MESSAGE,
                          &out);
    nng_msg_free(answer);
    if (err == MF_OK) reply->envelope = (Mafalda__Rpc__Envelope *)out;
  } else if (dial_err == MF_ERR_AUTH || dial_err == MF_ERR_INVALID_ARG) {
    err = dial_err; /* TLS handshake refused, or an address TLS settings rule out */
  } else {
    err = rv == NNG_ETIMEDOUT ? MF_ERR_TIMEOUT : MF_ERR_IO;
  }
  nng_close(sock);
  return err;
}

mf_err_t mf_rpc_call_leader(const char *const *urls, size_t n_urls, size_t *hint,
                            const char *method, const ProtobufCMessage *request,
                            int timeout_ms, mf_rpc_reply_t *reply) {
  size_t len;
  uint8_t *payload = pack_request(request, &len);
  if (!payload) return MF_ERR_NO_MEMORY;
  mf_err_t err =
      mf_rpc_call_leader_bytes(urls, n_urls, hint, method, payload, len, timeout_ms, reply);
  free(payload);
  return err;
}

mf_err_t mf_rpc_call_leader_bytes(const char *const *urls, size_t n_urls, size_t *hint,
                                  const char *method, const uint8_t *payload, size_t len,
                                  int timeout_ms, mf_rpc_reply_t *reply) {
  if (n_urls == 0) return MF_ERR_INVALID_ARG;
  int64_t deadline = now_ms() + timeout_ms;
  size_t i = hint && *hint < n_urls ? *hint : 0;
  char redirect[160] = "";
  mf_err_t last = MF_ERR_TIMEOUT;
  reply->envelope = NULL;
  while (now_ms() < deadline) {
    const char *url = redirect[0] ? redirect : urls[i];
    int left = (int)(deadline - now_ms());
    /* One slow replica must not eat the whole budget. */
    int attempt = left < 2000 ? left : 2000;
    if (attempt <= 0) break;
    last = mf_rpc_call_bytes(url, method, payload, len, attempt, reply);
    char via[160];
    snprintf(via, sizeof(via), "%s", url);
    redirect[0] = '\0';
    if (last == MF_OK) {
      Mafalda__Rpc__Status st = reply->envelope->status;
      if (st == MAFALDA__RPC__STATUS__STATUS_NOT_LEADER && reply->envelope->leader_address &&
          reply->envelope->leader_address[0]) {
        snprintf(redirect, sizeof(redirect), "tcp://%s", reply->envelope->leader_address);
        if (strcmp(redirect, via) == 0) redirect[0] = '\0';
      } else if (st != MAFALDA__RPC__STATUS__STATUS_UNAVAILABLE &&
                 st != MAFALDA__RPC__STATUS__STATUS_NOT_LEADER) {
        if (hint)
          for (size_t k = 0; k < n_urls; k++)
            if (strcmp(urls[k], via) == 0) *hint = k;
        return MF_OK;
      }
      mf_rpc_reply_free(reply);
      last = MF_ERR_STATE;
    }
    if (!redirect[0]) {
      /* Down, or no leader yet: next replica, after giving an election a moment. */
      i = (i + 1) % n_urls;
      struct timespec ts = {0, 20 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  return last == MF_OK ? MF_ERR_TIMEOUT : last;
}

bool mf_rpc_is_leader(const char *url, int timeout_ms) {
  Mafalda__Controller__StatusRequest req = MAFALDA__CONTROLLER__STATUS_REQUEST__INIT;
  mf_rpc_reply_t reply;
  if (mf_rpc_call(url, MF_RPC_METHOD_STATUS, &req.base, timeout_ms, &reply) != MF_OK) return false;
  bool leader = false;
  if (reply.envelope->status == MAFALDA__RPC__STATUS__STATUS_OK) {
    Mafalda__Controller__StatusResponse *r = mafalda__controller__status_response__unpack(
        NULL, reply.envelope->payload.len, reply.envelope->payload.data);
    leader = r && r->is_leader;
    if (r) mafalda__controller__status_response__free_unpacked(r, NULL);
  }
  mf_rpc_reply_free(&reply);
  return leader;
}
