/* The node RPC requests other nodes send (node.RoomSync, node.RoomEvent, node.PipeOpen,
 * node.PipeClose, and API forwarding: node.ApiForward, node.ApiDeliver, node.ApiForwardEnd,
 * whose deliveries go nowhere here: the gateway is not clustered): the first byte picks the method, the rest is its protobuf payload,
 * served by a real gateway with one worker and one room whose router id the seeds use
 * (so valid-looking requests get past the room lookup into the validation of producers,
 * addresses, rtpParameters and keys). Nothing here may crash or leak; errors are answers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/dtls.h"
#include "node/gateway.h"
#include "node/srtp.h"
#include "node/worker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROUTER_ID "6f1c2b4e-8a1d-4c3b-9e2f-0a1b2c3d4e5f"

static const char *const methods[] = {"node.RoomSync",   "node.RoomEvent", "node.PipeOpen",
                                      "node.PipeClose",  "node.ApiForward", "node.ApiDeliver",
                                      "node.ApiForwardEnd"};
#define N_METHODS (sizeof methods / sizeof methods[0])

/* One gateway for the whole run (test code: the process bootstrap owns it). */
static struct {
  mf_dtls_cert_t *cert;
  mf_worker_t *worker;
  mf_gateway_t *gw;
  int ready; /* 1 ok, -1 failed */
} fx;

static void fx_stop(void) {
  if (fx.gw) mf_gateway_stop(fx.gw);
  if (fx.worker) mf_worker_stop(fx.worker);
  mf_dtls_cert_free(fx.cert);
}

static int fx_start(void) {
  mf_log_config_t lc = {.level = MF_LOG_LEVEL_ERROR, .format = MF_LOG_FORMAT_TEXT, .fd = 2};
  mf_log_configure(&lc);
  if (mf_srtp_library_init() || mf_dtls_cert_generate(&fx.cert)) return -1;
  mf_worker_options_t o = {.index = 0, .cpu = -1, .rtc_listen_ip = "127.0.0.1",
                           .announced_ip = "127.0.0.1", .cert = fx.cert};
  if (mf_worker_start(&o, &fx.worker)) return -1;
  mf_gateway_options_t go = {.listen = "127.0.0.1:0", .secret = "", .static_dir = ""};
  if (mf_gateway_start(&go, &fx.worker, 1, &fx.gw)) return -1;
  char err[256];
  if (mf_gateway_open_shard(fx.gw, ROUTER_ID, "fuzz", "", 0, err, sizeof err)) return -1;
  atexit(fx_stop);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!fx.ready) fx.ready = fx_start();
  if (fx.ready < 0 || size == 0) return 0;
  const char *method = methods[data[0] % N_METHODS];
  uint8_t *reply = NULL;
  size_t reply_len = 0;
  const ProtobufCMessageDescriptor *type = NULL;
  char err[256];
  if (mf_gateway_serve(fx.gw, method, data + 1, size - 1, &reply, &reply_len, &type, err,
                       sizeof err) == MF_OK && type) {
    /* what we answer must decode as the method's response */
    ProtobufCMessage *m = protobuf_c_message_unpack(type, NULL, reply_len, reply);
    if (!m && reply_len) abort();
    if (m) protobuf_c_message_free_unpacked(m, NULL);
  }
  free(reply);
  return 0;
}
