/* mafalda-bench's figures other than the controller's, one file each; main.c dispatches.
 * Each entry point takes the options after the figure's name, prints its figures to stdout
 * and returns the process exit code: 0, 1 when the setup itself failed, 2 for bad options.
 * Figures are printed, never asserted. Run on the calling (main) thread. */
#ifndef MF_BENCH_H
#define MF_BENCH_H

#include <stdbool.h>

#include "common/err.h"
#include "tests/bench/bench_more.h"

/* pipes-count [--publishers P] [--subscribers S] [--workers W] [--transport-pps X]:
 * the controller's scheduler on a simulated one-node cluster (bench_pipes_count.c). */
int mf_bench_pipes_count(int argc, char **argv);

/* pipes-cpu [--packets N] [--pps R] [--size B]: CPU per forwarded packet, direct consumer
 * vs consumer behind an intra-node pipe vs consumer behind an inter-node SRTP PipeTransport,
 * on two real worker threads (the inter-node case uses them as two nodes; bench_pipes.c). */
int mf_bench_pipes_cpu(int argc, char **argv);

/* bound [--packets N] [--size B] [--batch K] [--wall] [--json]: the most one core can forward:
 * SRTP unprotect + protect (libsrtp2 through mf_srtp, AEAD_AES_128_GCM and
 * AES_CM_128_HMAC_SHA1_80) plus the amortized recvmmsg/sendmmsg cost of batches of K on
 * loopback UDP, in ns per packet and packets/s (bench_bound.c). */
int mf_bench_bound(int argc, char **argv);

/* The bound's GCM per-packet costs, measured now on this thread over `packets` packets
 * (>= 100; 20000 takes ~0.1 s): what fanout/room/pipe print their "% of bound" against
 * (bench_bound.c; the arithmetic is in bench_more.h). MF_ERR_IO without loopback UDP,
 * MF_ERR_CRYPTO if the pipeline lost or garbled packets. */
mf_err_t mf_bench_bound_measure(int packets, mf_bench_bound_cost_t *out);

/* pipe [--node PATH] [--publishers P] [--subscribers S] [--mode workers|nodes|both]
 * [--seconds S] [--warmup-s W] [--bitrate-kbps B] [--fps F] [--keyframe-s K] [--json]
 * [--assert-no-loss]: P publishers and S subscribers each consuming every publisher, the
 * room split over 2 workers of one node (embedded controller, small worker capacity) and
 * over 2 nodes (a mafalda-controller, publishers on node 1, subscribers on node 2)
 * (gen_pipe.c). */
int mf_bench_pipe(int argc, char **argv);

/* churn [--node PATH] [--rate R] [--stay S] [--subscribers L] [--seconds S] [--warmup-s W]
 * [--json] [--assert-no-loss]: a steady publisher and L long-lived subscribers on one node
 * while R subscribers per second join (each for S seconds) and leave (gen_churn.c). */
int mf_bench_churn(int argc, char **argv);

/* fanout [--node PATH] [--subscribers N] [--seconds S] [--bitrate-kbps B] [--fps F]
 * [--keyframe-s K] [--warmup-s W] [--search] [--max-subscribers M] [--json]: the load
 * generator (gen.h), one publisher -> N subscribers on a mafalda-node of its own
 * (gen_fanout.c); --search doubles N until loss > 1 % or p99 > 100 ms. */
/* --sfu janus|both [--janus PATH]: the same on Debian's Janus (janus_sfu.h, gen_janus.h),
 * or each N on both with a comparison table (CPU per million packets, Janus / mafalda). */
int mf_bench_fanout(int argc, char **argv);
/* room [same options]: N peers each publishing and consuming the N - 1 others (N x N);
 * --subscribers is N (default 5), --search doubles it. */
int mf_bench_room(int argc, char **argv);

/* "--name VALUE" option parsing shared by the figures (bench_args.c): a decimal integer
 * in [min, max]; false for anything else. */
bool mf_bench_parse_int(const char *s, int min, int max, int *out);

#endif
