/* mafalda-bench's optional plot (fanout --search --plot out.png): packet loss and SFU CPU per
 * million forwarded packets against N, one line per SFU, drawn by gnuplot (Debian's
 * gnuplot-nox; deploy/install-deps.sh installs it) from a script piped to its stdin, the
 * data inline, so nothing is left behind but the PNG.
 *
 * mf_bench_plot_script() writes the script text (pure, unit-tested by
 * tests/unit/test_bench_more.c); mf_bench_plot_png() runs gnuplot on it. Main thread only. */
#ifndef MF_BENCH_PLOT_H
#define MF_BENCH_PLOT_H

#include <stddef.h>

#include "common/err.h"

typedef struct {
  double n;            /* subscribers */
  double loss_percent; /* 0..100 */
  double cpu_s_per_mpkt;
} mf_bench_plot_point_t;

typedef struct {
  const char *name; /* the legend: "mafalda", "janus"; no double quote or newline */
  const mf_bench_plot_point_t *points;
  size_t count;
} mf_bench_plot_series_t;

/* The gnuplot script that draws the series into png_path (two panels side by side: loss %
 * and CPU s/Mpkt, N on a log2 axis). Writes at most cap bytes, NUL-terminated, and returns
 * the length the whole script needs (as snprintf); 0 when an argument is invalid (NULL,
 * no series, a name or path holding a quote or a newline, a non-finite value). */
size_t mf_bench_plot_script(char *buf, size_t cap, const char *png_path, const char *title,
                            const mf_bench_plot_series_t *series, size_t nseries);

/* Runs `gnuplot` with that script. MF_ERR_NOT_FOUND when gnuplot is not installed,
 * MF_ERR_IO when it failed (its messages on stderr), MF_ERR_INVALID_ARG as above. */
mf_err_t mf_bench_plot_png(const char *png_path, const char *title,
                           const mf_bench_plot_series_t *series, size_t nseries);

#endif
