/* bench_html.c: `hvrun bench --html FILE`, one self-contained page: CSS
 * inline, every chart an inline <svg> drawn here, no script and nothing
 * fetched, so it renders the same offline, in CI's headless browser and
 * when attached to a bug report.
 *
 * Charts: start-up distributions (every sample on a log axis, median and
 * p90 marked), one bar chart per figure (bar per mode, labelled with the
 * ratio to the host), and the isolation matrix (green = isolated from the
 * host, red = reaches the host, grey = not measured). */
#include "bench_internal.h"
#include <errno.h>
#include <math.h> /* isfinite, NAN, fabs: no libm symbols */
#include <string.h>

static void esc(FILE *f, const char *s) {
  for (; s && *s; s++)
    switch (*s) {
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '&': fputs("&amp;", f); break;
    case '"': fputs("&quot;", f); break;
    default: fputc(*s, f);
    }
}

static const char *mode_color(size_t i) {
  static const char *c[] = {"#555555", "#1f77b4", "#d62728", "#2ca02c",
                            "#9467bd", "#ff7f0e", "#8c564b", "#17becf"};
  return c[i % 8];
}

static const char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static void fmt(char *buf, size_t len, double v) {
  if (!isfinite(v))
    snprintf(buf, len, "-");
  else if (fabs(v) >= 1000)
    snprintf(buf, len, "%.0f", v);
  else if (fabs(v) >= 10)
    snprintf(buf, len, "%.1f", v);
  else
    snprintf(buf, len, "%.3g", v);
}

/* ---------------- start-up distributions ---------------- */

static void chart_startup(FILE *f, json_t *doc) {
  json_t *modes = json_object_get(doc, "modes"), *samples = json_object_get(doc, "samples"),
         *results = json_object_get(doc, "results");
  double lo = 1e300, hi = 0;
  size_t i, j, rows = 0;
  json_t *m, *v;
  json_array_foreach(modes, i, m) {
    json_t *a = json_object_get(json_object_get(samples, jstr(m, "name")), "startup_ms");
    if (json_array_size(a))
      rows++;
    json_array_foreach(a, j, v) {
      double x = json_number_value(v);
      if (x > 0 && x < lo)
        lo = x;
      if (x > hi)
        hi = x;
    }
  }
  if (!rows) {
    fprintf(f, "<p>No start-up samples.</p>\n");
    return;
  }
  double llo = bench_floor(bench_log10(lo)), lhi = bench_ceil(bench_log10(hi));
  if (lhi <= llo)
    lhi = llo + 1;
  const int W = 860, left = 110, right = 20, rowh = 34, top = 10;
  int H = top + (int)rows * rowh + 40;
  double pw = W - left - right;
#define XPOS(x) (left + (bench_log10(x) - llo) / (lhi - llo) * pw)
  fprintf(f, "<svg class=\"chart startup\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
             "xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"start-up "
             "distributions\">\n", W, H, W, H);
  for (double d = llo; d <= lhi; d++) {
    for (int k = 1; k < 10 && d + bench_log10(k) <= lhi; k++) {
      double x = left + (d + bench_log10(k) - llo) / (lhi - llo) * pw;
      fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\"/>\n", x, top, x,
              H - 30, k == 1 ? "#bbb" : "#eee");
      if (k == 1)
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%g ms</text>\n",
                x, H - 14, bench_pow10((int)d));
    }
  }
  size_t row = 0;
  json_array_foreach(modes, i, m) {
    const char *name = jstr(m, "name");
    json_t *a = json_object_get(json_object_get(samples, name), "startup_ms");
    if (!json_array_size(a))
      continue;
    int y = top + (int)row * rowh + rowh / 2;
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"13\" text-anchor=\"end\">", left - 8, y + 4);
    esc(f, name);
    fprintf(f, "</text>\n");
    json_array_foreach(a, j, v) {
      double x = json_number_value(v);
      if (x <= 0)
        continue;
      /* Deterministic jitter so overlapping samples stay visible. */
      double jy = ((double)((j * 7919) % 17) - 8) * 1.1;
      fprintf(f, "<circle class=\"sample\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\" "
                 "fill-opacity=\"0.45\"/>\n", XPOS(x), y + jy, mode_color(i));
    }
    json_t *s = json_object_get(json_object_get(results, name), "startup_ms");
    if (s) {
      double p50 = json_number_value(json_object_get(s, "p50"));
      double p90 = json_number_value(json_object_get(s, "p90"));
      fprintf(f, "<line class=\"median\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
                 "stroke=\"#000\" stroke-width=\"3\"/>\n", XPOS(p50), y - 13, XPOS(p50), y + 13);
      fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#000\" "
                 "stroke-dasharray=\"2,2\"/>\n", XPOS(p90), y - 10, XPOS(p90), y + 10);
    }
    row++;
  }
  fprintf(f, "</svg>\n<p class=\"note\">Each dot is one start-to-exit of <code>true</code>; "
             "solid bar: median, dashed: p90. Log scale.</p>\n");
#undef XPOS
}

/* ---------------- one bar chart per figure ---------------- */

static void chart_bars(FILE *f, json_t *doc, const struct bench_metric_info *mi) {
  json_t *modes = json_object_get(doc, "modes"), *results = json_object_get(doc, "results");
  double max = 0;
  size_t i, n = 0;
  json_t *m;
  json_array_foreach(modes, i, m) {
    json_t *s = json_object_get(json_object_get(results, jstr(m, "name")), mi->key);
    if (s) {
      n++;
      double v = json_number_value(json_object_get(s, "median"));
      if (v > max)
        max = v;
    }
  }
  if (!n || max <= 0)
    return;
  const int W = 420, left = 80, right = 120, barh = 16, gap = 6, top = 24;
  int H = top + (int)n * (barh + gap) + 6;
  fprintf(f, "<div class=\"bars\"><svg class=\"chart bar\" width=\"%d\" height=\"%d\" "
             "viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\">\n", W, H, W, H);
  fprintf(f, "<text x=\"0\" y=\"14\" font-size=\"13\" font-weight=\"bold\">");
  esc(f, mi->label);
  fprintf(f, " [%s, %s is better]</text>\n", mi->unit, mi->lower_better ? "lower" : "higher");
  size_t row = 0;
  json_array_foreach(modes, i, m) {
    const char *name = jstr(m, "name");
    json_t *s = json_object_get(json_object_get(results, name), mi->key);
    if (!s)
      continue;
    double v = json_number_value(json_object_get(s, "median"));
    int y = top + (int)row * (barh + gap);
    double w = v / max * (W - left - right);
    char a[32], b[32] = "";
    fmt(a, sizeof a, v);
    json_t *vh = json_object_get(s, "vs_host");
    if (vh)
      snprintf(b, sizeof b, " (%.2fx host)", json_number_value(vh));
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", left - 6,
            y + barh - 4);
    esc(f, name);
    fprintf(f, "</text><rect class=\"barrect\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
               "fill=\"%s\"/>\n<text x=\"%.1f\" y=\"%d\" font-size=\"11\">%s%s%s</text>\n",
            left, y, w < 1 ? 1 : w, barh, mode_color(i), left + (w < 1 ? 1 : w) + 4,
            y + barh - 4, a, json_is_true(json_object_get(s, "noisy")) ? "~" : "", b);
    row++;
  }
  fprintf(f, "</svg></div>\n");
}

/* ---------------- isolation matrix ---------------- */

struct iso_row { const char *label; int kind; const char *key; };

static void iso_cell(json_t *iso, const struct iso_row *r, const char *esc_key, char *txt,
                     size_t len, const char **color) {
  *color = "#ddd";
  snprintf(txt, len, "-");
  if (!iso)
    return;
  if (esc_key) {
    json_t *e = json_object_get(json_object_get(iso, "escapes"), esc_key);
    if (!e)
      return;
    bool reaches = json_is_true(json_object_get(e, "reaches_host"));
    const char *res = jstr(e, "result");
    snprintf(txt, len, "%s", !strncmp(res, "allowed", 7) ? (reaches ? "allowed" : "guest only")
                                                         : "blocked");
    *color = reaches ? "#f4a6a6" : "#a8e0a8";
    return;
  }
  json_t *v = json_object_get(iso, r->key);
  if (r->kind == 0) { /* boolean: true = exposed */
    if (!json_is_boolean(v))
      return;
    snprintf(txt, len, "%s", json_is_true(v) ? "yes" : "no");
    *color = json_is_true(v) ? "#f4a6a6" : "#a8e0a8";
  } else if (r->kind == 2) { /* VMM seccomp: "filtered" is the good answer */
    if (!json_is_string(v))
      return;
    snprintf(txt, len, "%s", json_string_value(v));
    *color = !strcmp(json_string_value(v), "filtered") ? "#a8e0a8" : "#f7d88f";
  } else { /* count: 0 = isolated */
    if (!json_is_integer(v))
      return;
    snprintf(txt, len, "%lld", (long long)json_integer_value(v));
    *color = json_integer_value(v) == 0 ? "#a8e0a8" : "#f7d88f";
  }
}

static void chart_isolation(FILE *f, json_t *doc) {
  json_t *modes = json_object_get(doc, "modes"), *iso = json_object_get(doc, "isolation");
  static const struct iso_row fixed[] = {
      {"host kernel shared", 0, "kernel_shared"},
      {"host syscalls reachable directly", 1, "direct_host_syscalls"},
      {"host kernel log (dmesg) readable", 0, "host_dmesg_readable"},
      {"VMM process under seccomp", 2, "vmm_seccomp"},
  };
  /* Escape rows: the union of names seen in any mode. */
  const char *escs[32];
  size_t nesc = 0, i;
  json_t *m;
  json_array_foreach(modes, i, m) {
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(json_object_get(iso, jstr(m, "name")), "escapes"), k, v) {
      bool seen = false;
      for (size_t j = 0; j < nesc; j++)
        seen |= !strcmp(escs[j], k);
      if (!seen && nesc < 32)
        escs[nesc++] = k;
    }
  }
  size_t nfixed = sizeof fixed / sizeof fixed[0], nrows = nfixed + nesc, ncols = json_array_size(modes);
  const int left = 250, colw = 96, rowh = 24, top = 28;
  int W = left + (int)ncols * colw + 4, H = top + (int)nrows * rowh + 4;
  fprintf(f, "<svg class=\"chart isolation\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
             "xmlns=\"http://www.w3.org/2000/svg\">\n", W, H, W, H);
  json_array_foreach(modes, i, m) {
    fprintf(f, "<text x=\"%d\" y=\"18\" font-size=\"13\" font-weight=\"bold\" "
               "text-anchor=\"middle\">", left + (int)i * colw + colw / 2);
    esc(f, jstr(m, "name"));
    fprintf(f, "</text>\n");
  }
  for (size_t r = 0; r < nrows; r++) {
    int y = top + (int)r * rowh;
    const struct iso_row *row = r < nfixed ? &fixed[r] : NULL;
    const char *ek = r < nfixed ? NULL : escs[r - nfixed];
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", left - 8,
            y + 16);
    if (row)
      esc(f, row->label);
    else {
      fputs("escape: ", f);
      esc(f, ek);
    }
    fprintf(f, "</text>\n");
    json_array_foreach(modes, i, m) {
      char txt[32];
      const char *color;
      iso_cell(json_object_get(iso, jstr(m, "name")), row, ek, txt, sizeof txt, &color);
      int x = left + (int)i * colw;
      fprintf(f, "<rect class=\"cell\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                 "fill=\"%s\" stroke=\"#fff\"/><text x=\"%d\" y=\"%d\" font-size=\"11\" "
                 "text-anchor=\"middle\">", x, y, colw, rowh, color, x + colw / 2, y + 16);
      esc(f, txt);
      fprintf(f, "</text>\n");
    }
  }
  fprintf(f, "</svg>\n<p class=\"note\">Green: isolated from the host. Red: reaches the host "
             "kernel. Amber: a count of host syscalls the workload can make directly (after "
             "the sandbox's seccomp filter). \"guest only\": allowed, but against the guest "
             "kernel.</p>\n");
}

/* ---------------- the page ---------------- */

static void meta_row(FILE *f, const char *k, const char *v) {
  fprintf(f, "<tr><th>");
  esc(f, k);
  fprintf(f, "</th><td>");
  esc(f, v);
  fprintf(f, "</td></tr>\n");
}

int bench_write_html(json_t *doc, const char *path, hv_error_t *err) {
  cleanup_free char *tmp = hv_xasprintf("%s.tmp", path);
  FILE *f = fopen(tmp, "we");
  if (!f)
    return hv_error(err, errno, "--html %s", path);
  json_t *host = json_object_get(doc, "host");
  bool partial = json_is_true(json_object_get(doc, "partial"));
  fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
             "<title>hvrun bench</title>\n<style>\n"
             "body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}\n"
             "table{border-collapse:collapse;margin:8px 0}\n"
             "th,td{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}\n"
             ".bars{display:inline-block;vertical-align:top;margin:6px 12px 6px 0}\n"
             ".note{font-size:12px;color:#555}.partial{background:#fdd;padding:8px}\n"
             "</style></head><body>\n<h1>hvrun bench</h1>\n");
  if (partial)
    fprintf(f, "<p class=\"partial\">Partial results%s: see the modes table and errors.</p>\n",
            json_is_true(json_object_get(doc, "interrupted")) ? " (interrupted)" : "");
  fprintf(f, "<h2>Host</h2>\n<table>\n");
  meta_row(f, "started", jstr(doc, "started"));
  meta_row(f, "CPU", jstr(host, "cpu"));
  char buf[128];
  snprintf(buf, sizeof buf, "%lld CPUs, %lld MiB",
           (long long)json_integer_value(json_object_get(host, "cpus")),
           (long long)json_integer_value(json_object_get(host, "mem_kib")) / 1024);
  meta_row(f, "size", buf);
  meta_row(f, "kernel", jstr(host, "kernel"));
  meta_row(f, "OS", jstr(host, "os"));
  meta_row(f, "KVM", jstr(host, "kvm"));
  meta_row(f, "cgroups", jstr(host, "cgroup_layout"));
  json_t *la0 = json_object_get(host, "loadavg_start"), *la1 = json_object_get(host, "loadavg_end");
  snprintf(buf, sizeof buf, "%.2f at start, %.2f at end (1-minute)",
           json_number_value(json_array_get(la0, 0)), json_number_value(json_array_get(la1, 0)));
  meta_row(f, "load average", buf);
  snprintf(buf, sizeof buf, "%s%s", json_is_true(json_object_get(doc, "quick")) ? "--quick" : "full",
           partial ? ", partial" : "");
  meta_row(f, "run", buf);
  fprintf(f, "</table>\n<h2>Modes</h2>\n<table><tr><th>mode</th><th>status</th><th>version</th>"
             "<th>note</th></tr>\n");
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(doc, "modes"), i, m) {
    fprintf(f, "<tr><td>");
    esc(f, jstr(m, "name"));
    fprintf(f, "</td><td>");
    esc(f, jstr(m, "status"));
    fprintf(f, "</td><td>");
    esc(f, jstr(m, "version"));
    fprintf(f, "</td><td>");
    esc(f, jstr(m, "reason"));
    fprintf(f, "</td></tr>\n");
  }
  fprintf(f, "</table>\n<h2>Start-up</h2>\n");
  chart_startup(f, doc);
  fprintf(f, "<h2>Overhead</h2>\n<p class=\"note\">Medians; ~ marks a figure whose spread is "
             "too wide to trust.</p>\n");
  for (size_t k = 0; k < bench_nmetrics; k++)
    chart_bars(f, doc, &bench_metrics[k]);
  fprintf(f, "<h2>Isolation</h2>\n");
  chart_isolation(f, doc);
  json_t *errs = json_object_get(doc, "errors");
  if (json_array_size(errs)) {
    fprintf(f, "<h2>Errors</h2>\n<ul>\n");
    json_array_foreach(errs, i, m) {
      fprintf(f, "<li>");
      esc(f, jstr(m, "mode"));
      fprintf(f, " / ");
      esc(f, jstr(m, "workload"));
      fprintf(f, ": ");
      esc(f, jstr(m, "message"));
      if (*jstr(m, "output")) {
        fprintf(f, ": <code>");
        esc(f, jstr(m, "output"));
        fprintf(f, "</code>");
      }
      fprintf(f, "</li>\n");
    }
    fprintf(f, "</ul>\n");
  }
  fprintf(f, "</body></html>\n");
  if (fclose(f) != 0 || rename(tmp, path) < 0) {
    int e = errno;
    unlink(tmp);
    return hv_error(err, e, "--html %s", path);
  }
  return 0;
}
