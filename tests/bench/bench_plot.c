#include "tests/bench/bench_plot.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

typedef struct {
  char *buf;
  size_t cap, len;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out_t *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = o->len < o->cap ? o->cap - o->len : 0;
  int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0) o->len += (size_t)n;
}

/* Text that goes between double quotes in the script: no quote, backslash or newline. */
static bool safe(const char *s) { return s && !strpbrk(s, "\"\\\n\r"); }

size_t mf_bench_plot_script(char *buf, size_t cap, const char *png_path, const char *title,
                            const mf_bench_plot_series_t *series, size_t nseries) {
  if ((!buf && cap) || !safe(png_path) || !safe(title) || !series || nseries == 0) return 0;
  for (size_t s = 0; s < nseries; s++) {
    if (!safe(series[s].name) || (!series[s].points && series[s].count)) return 0;
    for (size_t i = 0; i < series[s].count; i++) {
      const mf_bench_plot_point_t *p = &series[s].points[i];
      if (!isfinite(p->n) || !isfinite(p->loss_percent) || !isfinite(p->cpu_s_per_mpkt)) return 0;
    }
  }
  out_t o = {buf, cap, 0};
  if (cap) buf[0] = '\0';
  /* one datablock per series: N, loss %, CPU s/Mpkt */
  for (size_t s = 0; s < nseries; s++) {
    put(&o, "$d%zu << EOD\n", s);
    for (size_t i = 0; i < series[s].count; i++) {
      const mf_bench_plot_point_t *p = &series[s].points[i];
      put(&o, "%.0f %.4f %.3f\n", p->n, p->loss_percent, p->cpu_s_per_mpkt);
    }
    put(&o, "EOD\n");
  }
  put(&o, "set terminal pngcairo size 1200,500 noenhanced\n");
  put(&o, "set output \"%s\"\n", png_path);
  put(&o, "set multiplot layout 1,2 title \"%s\"\n", title);
  put(&o, "set logscale x 2\nset grid\nset key top left\nset xlabel \"N (subscribers)\"\n");
  /* a flat 0 % line gets a -0.05..1 axis (the line shows above the x axis) instead of
   * gnuplot's "empty y range" */
  double max_loss = 0;
  for (size_t s = 0; s < nseries; s++)
    for (size_t i = 0; i < series[s].count; i++)
      if (series[s].points[i].loss_percent > max_loss) max_loss = series[s].points[i].loss_percent;
  put(&o, "set yrange [%s]\n", max_loss < 1 ? "-0.05:1" : "0:*");
  put(&o, "set ylabel \"loss %%\"\nset title \"packet loss\"\nplot ");
  for (size_t s = 0; s < nseries; s++)
    put(&o, "%s$d%zu using 1:2 with linespoints title \"%s\"", s ? ", " : "", s,
        series[s].name);
  put(&o, "\nset yrange [0:*]\nset ylabel \"SFU CPU s per million forwarded packets\"\n"
          "set title \"SFU CPU per forwarded packet\"\nplot ");
  for (size_t s = 0; s < nseries; s++)
    put(&o, "%s$d%zu using 1:3 with linespoints title \"%s\"", s ? ", " : "", s,
        series[s].name);
  put(&o, "\nunset multiplot\nset output\n");
  if (cap) buf[o.len < cap ? o.len : cap - 1] = '\0';
  return o.len;
}

mf_err_t mf_bench_plot_png(const char *png_path, const char *title,
                           const mf_bench_plot_series_t *series, size_t nseries) {
  size_t need = mf_bench_plot_script(NULL, 0, png_path, title, series, nseries);
  if (need == 0) return MF_ERR_INVALID_ARG;
  if (system("command -v gnuplot >/dev/null 2>&1") != 0) return MF_ERR_NOT_FOUND;
  char *script = malloc(need + 1);
  if (!script) return MF_ERR_NO_MEMORY;
  mf_bench_plot_script(script, need + 1, png_path, title, series, nseries);
  FILE *p = popen("gnuplot", "w");
  if (!p) {
    free(script);
    return MF_ERR_IO;
  }
  bool wrote = fwrite(script, 1, need, p) == need;
  free(script);
  int st = pclose(p);
  return wrote && st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? MF_OK : MF_ERR_IO;
}
