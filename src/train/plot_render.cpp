// Layout and drawing of a line plot (see plot_render.h): margins sized from the text, ticks, grid, curves, legend.
#include "train/plot_render.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "gdn2/error.h"
#include "train/bitmap_font.h"
#include "train/plot_axis.h"

namespace gdn2::plot {

namespace {

constexpr Rgb kText = {34, 34, 34};
constexpr Rgb kFrame = {90, 90, 90};
constexpr Rgb kGrid = {230, 230, 230};
constexpr Rgb kLegendEdge = {200, 200, 200};
constexpr int kMinSide = 160, kMaxSide = 4096;

bool usable(double x, double y, bool log_y) { return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0.0); }

// Ranges of the usable points; y on the axis scale (log10 when log_y). Checks the inputs.
struct DataBounds {
  double x_min = std::numeric_limits<double>::infinity(), x_max = -std::numeric_limits<double>::infinity();
  double y_min = std::numeric_limits<double>::infinity(), y_max = -std::numeric_limits<double>::infinity();
};

DataBounds check_and_bound(const std::vector<PlotSeries>& series, const PlotOptions& options) {
  GDN2_CHECK(!series.empty(), ValueError, "plot: no series to plot");
  GDN2_CHECK(options.width >= kMinSide && options.width <= kMaxSide && options.height >= kMinSide &&
                 options.height <= kMaxSide,
             ValueError, "plot: image size ", options.width, "x", options.height, " is outside [", kMinSide, ", ",
             kMaxSide, "] per side");
  DataBounds b;
  bool any = false;
  for (size_t i = 0; i < series.size(); ++i) {
    const PlotSeries& s = series[i];
    GDN2_CHECK(s.x.size() == s.y.size(), ShapeError, "plot: series ", i, " (\"", s.label, "\") has ", s.x.size(),
               " x values but ", s.y.size(), " y values");
    GDN2_CHECK(!s.x.empty(), ValueError, "plot: series ", i, " (\"", s.label, "\") has no points");
    for (size_t j = 0; j < s.x.size(); ++j) {
      if (!usable(s.x[j], s.y[j], options.log_y)) continue;
      const double y = options.log_y ? std::log10(s.y[j]) : s.y[j];
      b.x_min = std::min(b.x_min, s.x[j]);
      b.x_max = std::max(b.x_max, s.x[j]);
      b.y_min = std::min(b.y_min, y);
      b.y_max = std::max(b.y_max, y);
      any = true;
    }
  }
  GDN2_CHECK(any, ValueError, "plot: no point of any series has a finite x and a finite",
             options.log_y ? " positive y (log_y)" : " y");
  return b;
}

struct Layout {
  int s = 1;            // scale of the small text (tick labels, axis labels, legend)
  int title_scale = 2;  // scale of the title
  Rect area;            // the plot area: data maps onto it, the frame sits just outside it
  AxisRange x, y;       // y on the axis scale
  std::vector<Tick> x_ticks, y_ticks;
  std::string title, x_label, y_label;  // fitted to their room
  int x_tick_label_y = 0, x_label_y = 0, y_label_x = 0, title_y = 0, tick_len = 0;

  double px(double x_value) const { return area.x0 + (x_value - x.lo) / (x.hi - x.lo) * area.width(); }
  double py(double y_pos) const { return area.y1 - (y_pos - y.lo) / (y.hi - y.lo) * area.height(); }
  int column(double pos) const { return std::clamp(static_cast<int>(std::floor(px(pos))), area.x0, area.x1 - 1); }
  int row(double pos) const { return std::clamp(static_cast<int>(std::floor(py(pos))), area.y0, area.y1 - 1); }
};

Layout make_layout(const DataBounds& b, const PlotOptions& o) {
  Layout L;
  const int w = o.width, h = o.height;
  const int s = std::max(1, static_cast<int>(std::lround(std::min(w / 900.0, h / 560.0))));
  L.s = s;
  L.title_scale = 2 * s;
  const int pad = 10 * s, text_h = kGlyphAscent * s, full_h = kGlyphHeight * s;
  L.tick_len = 4 * s;
  L.x = padded_range(b.x_min, b.x_max, 0.03, false);
  L.y = padded_range(b.y_min, b.y_max, 0.05, o.log_y);

  L.title = fit_text(o.title, L.title_scale, w - 2 * pad);
  L.x_label = o.x_label;
  L.y_label = o.y_label;
  L.title_y = pad;
  L.area.y0 = pad + (L.title.empty() ? 0 : kGlyphHeight * L.title_scale + 4 * s) + text_h / 2 + 2 * s;
  const int below = L.tick_len + 3 * s + text_h + (L.x_label.empty() ? 0 : 8 * s + full_h) + pad;
  L.area.y1 = h - below;
  GDN2_CHECK(L.area.height() >= 40, ValueError, "plot: a ", w, "x", h, " image leaves no room for the plot");
  L.x_tick_label_y = L.area.y1 + 1 + L.tick_len + 3 * s;
  L.x_label_y = L.x_tick_label_y + text_h + 8 * s;

  L.y_ticks = choose_ticks(L.y.lo, L.y.hi, o.log_y, L.area.height(), 36.0 * s,
                           [text_h](const std::string&) { return static_cast<double>(text_h); }, 6.0 * s);
  int y_tick_w = 0;
  for (const Tick& t : L.y_ticks) y_tick_w = std::max(y_tick_w, text_width(t.label, s));
  L.y_label_x = pad;
  L.area.x0 = pad + (L.y_label.empty() ? 0 : full_h + 6 * s) + y_tick_w + 3 * s + L.tick_len + 1;

  // The last x tick label may stick out to the right of the area: widen the right margin until it fits.
  int right = pad;
  const auto width_of = [s](const std::string& label) { return static_cast<double>(text_width(label, s)); };
  for (int attempt = 0; attempt < 4; ++attempt) {
    L.area.x1 = w - right;
    GDN2_CHECK(L.area.width() >= 40, ValueError, "plot: a ", w, "x", h, " image leaves no room for the plot");
    L.x_ticks = choose_ticks(L.x.lo, L.x.hi, false, L.area.width(), 70.0 * s, width_of, 12.0 * s);
    if (L.x_ticks.empty()) break;
    const double overhang = L.px(L.x_ticks.back().pos) + width_of(L.x_ticks.back().label) / 2 - (w - 2);
    if (overhang <= 0) break;
    right += static_cast<int>(std::ceil(overhang));
  }
  L.x_label = fit_text(o.x_label, s, L.area.width());
  L.y_label = fit_text(o.y_label, s, L.area.height());
  return L;
}

void draw_axes(Canvas& c, const Layout& L) {
  const Rect& a = L.area;
  c.fill({a.x0 - 1, a.y0 - 1, a.x1 + 1, a.y0}, kFrame);
  c.fill({a.x0 - 1, a.y1, a.x1 + 1, a.y1 + 1}, kFrame);
  c.fill({a.x0 - 1, a.y0 - 1, a.x0, a.y1 + 1}, kFrame);
  c.fill({a.x1, a.y0 - 1, a.x1 + 1, a.y1 + 1}, kFrame);
  const int s = L.s, text_h = kGlyphAscent * s;
  for (const Tick& t : L.x_ticks) {
    const int col = L.column(t.pos);
    c.fill({col, a.y1 + 1, col + 1, a.y1 + 1 + L.tick_len}, kFrame);
    c.text(col - text_width(t.label, s) / 2, L.x_tick_label_y, t.label, s, kText);
  }
  for (const Tick& t : L.y_ticks) {
    const int row = L.row(t.pos);
    c.fill({a.x0 - 1 - L.tick_len, row, a.x0 - 1, row + 1}, kFrame);
    c.text(a.x0 - 1 - L.tick_len - 3 * s - text_width(t.label, s), row - text_h / 2, t.label, s, kText);
  }
  if (!L.x_label.empty()) c.text(a.x0 + (a.width() - text_width(L.x_label, s)) / 2, L.x_label_y, L.x_label, s, kText);
  if (!L.y_label.empty()) {
    c.text_up(L.y_label_x, a.y1 - (a.height() - text_width(L.y_label, s)) / 2, L.y_label, s, kText);
  }
  if (!L.title.empty()) {
    const int tw = text_width(L.title, L.title_scale);
    int x = a.x0 + (a.width() - tw) / 2;  // centred over the plot area, or over the image when wider
    if (x + tw > c.width() - 2 || x < 2) x = std::max(2, (c.width() - tw) / 2);
    c.text(x, L.title_y, L.title, L.title_scale, kText);
  }
}

void draw_grid(Canvas& c, const Layout& L) {
  for (const Tick& t : L.x_ticks) {
    const int col = L.column(t.pos);
    c.fill({col, L.area.y0, col + 1, L.area.y1}, kGrid);
  }
  for (const Tick& t : L.y_ticks) {
    const int row = L.row(t.pos);
    c.fill({L.area.x0, row, L.area.x1, row + 1}, kGrid);
  }
}

double line_half_width(int s) { return 0.8 * s; }
double marker_radius(int s) { return 2.6 * s; }

struct Point {
  double x = 0.0, y = 0.0;
};

// The polyline through `run` (pixel coordinates) with each stretch of consecutive points in one pixel column cut
// down to its first, lowest, highest and last point, in their order: the line still spans the same heights in
// every column, and a million points cost about what the columns cost.
std::vector<Point> thin_columns(const std::vector<Point>& run) {
  std::vector<Point> out;
  for (size_t i = 0, j = 0; i < run.size(); i = j) {
    const double column = std::floor(run[i].x);
    for (j = i + 1; j < run.size() && std::floor(run[j].x) == column;) ++j;
    if (j - i <= 4) {
      out.insert(out.end(), run.begin() + static_cast<std::ptrdiff_t>(i), run.begin() + static_cast<std::ptrdiff_t>(j));
      continue;
    }
    size_t lowest = i, highest = i;
    for (size_t k = i; k < j; ++k) {
      if (run[k].y < run[lowest].y) lowest = k;
      if (run[k].y > run[highest].y) highest = k;
    }
    size_t keep[4] = {i, lowest, highest, j - 1};
    std::sort(keep, keep + 4);
    for (size_t k = 0; k < 4; ++k) {
      if (k == 0 || keep[k] != keep[k - 1]) out.push_back(run[keep[k]]);
    }
  }
  return out;
}

// Covers one series in `mask`: markers, or a line broken at unusable points with lone points as dots.
void cover_series(CoverageMask& mask, const PlotSeries& series, const Layout& L, bool log_y) {
  std::vector<Point> run;  // consecutive usable points
  const auto flush = [&] {
    if (run.size() == 1) mask.add_disc(run[0].x, run[0].y, 2.4 * L.s);
    const std::vector<Point> line = thin_columns(run);
    for (size_t k = 1; k < line.size(); ++k) {
      mask.add_segment(line[k - 1].x, line[k - 1].y, line[k].x, line[k].y, line_half_width(L.s));
    }
    run.clear();
  };
  for (size_t i = 0; i < series.x.size(); ++i) {
    if (!usable(series.x[i], series.y[i], log_y)) {
      flush();
      continue;
    }
    const Point p{L.px(series.x[i]), L.py(log_y ? std::log10(series.y[i]) : series.y[i])};
    if (series.points) mask.add_disc(p.x, p.y, marker_radius(L.s));
    else run.push_back(p);
  }
  flush();
}

// The legend box in the plot-area corner whose curves it covers least; rows beyond the area's height collapse
// into a last "(+N more)" row.
void draw_legend(Canvas& c, const Layout& L, const std::vector<PlotSeries>& series, const CoverageMask& occupied) {
  std::vector<size_t> entries;
  for (size_t i = 0; i < series.size(); ++i) {
    if (!series[i].label.empty()) entries.push_back(i);
  }
  if (entries.empty()) return;
  const int s = L.s, text_h = kGlyphAscent * s, row_h = 12 * s, inner = 6 * s, sample = 22 * s, inset = 8 * s;
  const int max_rows = std::max(1, (L.area.height() - 2 * inset - 2 * inner - text_h) / row_h + 1);
  size_t rows = entries.size();
  std::string more;
  if (static_cast<int>(rows) > max_rows) {
    rows = static_cast<size_t>(max_rows - 1);
    more = "(+" + std::to_string(entries.size() - rows) + " more)";
  }
  const int max_label = std::max(6 * s, L.area.width() * 45 / 100 - sample - 3 * inner);
  std::vector<std::string> labels;
  int label_w = text_width(more, s);
  for (size_t k = 0; k < rows; ++k) {
    labels.push_back(fit_text(series[entries[k]].label, s, max_label));
    label_w = std::max(label_w, text_width(labels.back(), s));
  }
  const int n_rows = static_cast<int>(rows) + (more.empty() ? 0 : 1);
  const int box_w = 3 * inner + sample + label_w, box_h = 2 * inner + (n_rows - 1) * row_h + text_h;
  const Rect& a = L.area;
  const Rect corners[] = {{a.x1 - inset - box_w, a.y0 + inset, a.x1 - inset, a.y0 + inset + box_h},
                          {a.x0 + inset, a.y0 + inset, a.x0 + inset + box_w, a.y0 + inset + box_h},
                          {a.x0 + inset, a.y1 - inset - box_h, a.x0 + inset + box_w, a.y1 - inset},
                          {a.x1 - inset - box_w, a.y1 - inset - box_h, a.x1 - inset, a.y1 - inset}};
  Rect box = corners[0];  // ties go to the first corner: top right, top left, bottom left, bottom right
  double least = occupied.sum(box);
  for (const Rect& r : corners) {
    const double covered = occupied.sum(r);
    if (covered < least) {
      least = covered;
      box = r;
    }
  }
  c.fill({box.x0 - 1, box.y0 - 1, box.x1 + 1, box.y1 + 1}, kLegendEdge);
  c.fill(box, kBackground);
  CoverageMask samples(box);
  for (size_t k = 0; k < rows; ++k) {
    const PlotSeries& ser = series[entries[k]];
    const int row_y = box.y0 + inner + static_cast<int>(k) * row_h;
    const double cy = row_y + text_h / 2.0, x0 = box.x0 + inner;
    samples.clear();
    if (ser.points) samples.add_disc(x0 + sample / 2.0, cy, marker_radius(s));
    else samples.add_segment(x0, cy, x0 + sample, cy, line_half_width(s));
    samples.paint(c, kSeriesColours[entries[k] % std::size(kSeriesColours)]);
    c.text(box.x0 + 2 * inner + sample, row_y, labels[k], s, kText);
  }
  if (!more.empty()) {
    c.text(box.x0 + 2 * inner + sample, box.y0 + inner + static_cast<int>(rows) * row_h, more, s, kText);
  }
}

}  // namespace

Canvas render_plot(const std::vector<PlotSeries>& series, const PlotOptions& options) {
  const DataBounds bounds = check_and_bound(series, options);
  const Layout L = make_layout(bounds, options);
  Canvas canvas(options.width, options.height, kBackground);
  draw_grid(canvas, L);
  CoverageMask mask(L.area), occupied(L.area);
  for (size_t i = 0; i < series.size(); ++i) {
    mask.clear();
    cover_series(mask, series[i], L, options.log_y);
    mask.paint(canvas, kSeriesColours[i % std::size(kSeriesColours)]);
    occupied.merge_max(mask);
  }
  draw_axes(canvas, L);
  draw_legend(canvas, L, series, occupied);
  return canvas;
}

}  // namespace gdn2::plot
