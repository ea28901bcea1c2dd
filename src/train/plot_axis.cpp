// Axis ranges, tick choice and tick labels for the plot writer (see plot_axis.h).
#include "train/plot_axis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "gdn2/error.h"

namespace gdn2::plot {

namespace {

// Decimals a tick step needs: 0.5 -> 1, 0.05 -> 2, 1 or more -> 0.
int decimals_for(double step) { return std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9))); }

std::string fixed(double v, int decimals) {
  if (v == 0.0) return "0";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  // A value that rounds to zero must not print as "-0.0".
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

// "2e-4", "1.5e-6", "3e18": `mantissa_digits` decimals, exponent without '+' or leading zeros.
std::string scientific(double v, int mantissa_digits) {
  if (v == 0.0) return "0";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*e", mantissa_digits, v);
  const std::string s = buf;
  const size_t at = s.find('e');
  return s.substr(0, at + 1) + std::to_string(std::atoi(s.c_str() + at + 1));
}

std::string general(double v, int significant) {
  if (v == 0.0) return "0";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", std::clamp(significant, 1, 17), v);
  return buf;
}

double next_step(double step) { return nice_step(step * 1.5); }

std::vector<double> multiples(double lo, double hi, double step) {
  std::vector<double> out;
  const double k0 = std::ceil(lo / step - 1e-9), k1 = std::floor(hi / step + 1e-9);
  if (!(k1 - k0 < 100000.0)) return out;  // far too dense (or not finite): never chosen
  for (double k = k0; k <= k1; k += 1.0) {
    const double v = k * step;
    out.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  }
  return out;
}

// Whether adjacent ticks are at least min_spacing apart and their labels do not collide.
bool fits(const std::vector<Tick>& ticks, double lo, double hi, double length, double min_spacing,
          const std::function<double(const std::string&)>& extent, double gap) {
  for (size_t i = 1; i < ticks.size(); ++i) {
    const double distance = (ticks[i].pos - ticks[i - 1].pos) / (hi - lo) * length;
    const double need = std::max(min_spacing, (extent(ticks[i].label) + extent(ticks[i - 1].label)) / 2 + gap);
    if (distance < need) return false;
  }
  return true;
}

// Linear 1-2-5 ticks in value space; `log_scale` places them at log10(value) and drops values <= 0.
std::vector<Tick> linear_ticks(double lo, double hi, bool log_scale, double length, double min_spacing,
                               const std::function<double(const std::string&)>& extent, double gap) {
  const double vlo = log_scale ? std::pow(10.0, lo) : lo, vhi = log_scale ? std::pow(10.0, hi) : hi;
  if (!(std::isfinite(vlo) && std::isfinite(vhi) && vhi > vlo)) return {};
  std::vector<Tick> denser;  // the last candidate with two or more ticks, which did not fit
  double step = nice_step((vhi - vlo) / std::max(1.0, length / 8.0));  // dense: the loop walks up from here
  for (int attempt = 0; attempt < 200 && std::isfinite(step); ++attempt, step = next_step(step)) {
    std::vector<double> values;
    for (double v : multiples(vlo, vhi, step)) {
      if (!log_scale || v > 0.0) values.push_back(v);
    }
    const std::vector<std::string> labels = format_ticks(values, step);
    std::vector<Tick> ticks;
    for (size_t i = 0; i < values.size(); ++i) {
      const double pos = log_scale ? std::log10(values[i]) : values[i];
      if (pos >= lo - 1e-12 * std::fabs(lo) && pos <= hi + 1e-12 * std::fabs(hi)) ticks.push_back({pos, labels[i]});
    }
    if (ticks.size() >= 2 && !fits(ticks, lo, hi, length, min_spacing, extent, gap)) {
      denser = std::move(ticks);
      continue;
    }
    if (ticks.size() >= 2 || denser.empty()) return ticks;
    // One tick at most (e.g. -4400..4400 on a short axis: steps of 2000 are too close, 5000 leaves only 0):
    // every k-th tick of the denser step instead (-4000, 0, 4000), still evenly spaced.
    for (size_t k = 2; (denser.size() + k - 1) / k >= 2; ++k) {
      std::vector<Tick> thinned;
      for (size_t i = 0; i < denser.size(); i += k) thinned.push_back(denser[i]);
      if (fits(thinned, lo, hi, length, min_spacing, extent, gap)) return thinned;
    }
    return ticks;
  }
  return {};
}

// Ticks at m x 10^e for the mantissas `m`, in decades e with e % stride == 0, each labelled on its own; nothing
// when there would be more than max_count (they could not be min_spacing apart).
std::optional<std::vector<Tick>> decade_ticks(double lo, double hi, const std::vector<int>& mantissas, int stride,
                                              size_t max_count) {
  std::vector<Tick> ticks;
  const int e0 = static_cast<int>(std::floor(lo)), e1 = static_cast<int>(std::ceil(hi));
  for (int e = e0; e <= e1; ++e) {
    if (e % stride != 0) continue;
    for (int m : mantissas) {
      const double pos = e + std::log10(static_cast<double>(m));
      if (pos < lo - 1e-9 || pos > hi + 1e-9) continue;
      if (ticks.size() == max_count) return std::nullopt;
      const double decade = std::pow(10.0, e);
      ticks.push_back({pos, format_ticks({m * decade}, decade)[0]});
    }
  }
  return ticks;
}

}  // namespace

AxisRange padded_range(double min, double max, double pad, bool log_scale) {
  GDN2_CHECK(std::isfinite(min) && std::isfinite(max) && min <= max, ValueError, "axis data range [", min, ", ",
             max, "]");
  const double span = max - min;
  GDN2_CHECK(std::isfinite(span), ValueError, "data from ", min, " to ", max, " spans too far to plot");
  const double magnitude = std::max(std::fabs(min), std::fabs(max));
  AxisRange r;
  if (span == 0.0 || span <= 1e-9 * magnitude) {
    const double centre = min + span / 2;
    const double half = log_scale ? 0.1 : (std::fabs(centre) >= 1e-290 ? std::fabs(centre) * 0.05 : 1.0);
    r = {centre - half, centre + half};
  } else {
    r = {min - pad * span, max + pad * span};
  }
  GDN2_CHECK(std::isfinite(r.lo) && std::isfinite(r.hi) && r.lo < r.hi, ValueError, "data from ", min, " to ",
             max, " spans too far to plot");
  return r;
}

double nice_step(double raw) {
  GDN2_CHECK(std::isfinite(raw) && raw > 0.0, ValueError, "tick step ", raw);
  const double decade = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / decade;
  if (f <= 1.0 + 1e-9) return decade;
  if (f <= 2.0 + 1e-9) return 2.0 * decade;
  if (f <= 5.0 + 1e-9) return 5.0 * decade;
  return 10.0 * decade;
}

std::vector<std::string> format_ticks(const std::vector<double>& values, double step) {
  double max_abs = 0.0;
  for (double v : values) max_abs = std::max(max_abs, std::fabs(v));
  std::vector<std::string> out;
  out.reserve(values.size());
  if (max_abs >= 1e4 && max_abs < 1e15) {  // each value with its own suffix: "900k", "1.0M"
    bool fits = true;
    for (double v : values) {
      const int k = v == 0.0 ? 0 : std::clamp(static_cast<int>(std::floor(std::log10(std::fabs(v)) / 3 + 1e-9)), 0, 4);
      const double unit = std::pow(10.0, 3 * k);
      const int decimals = decimals_for(step / unit);
      fits = fits && decimals <= 2;
      out.push_back(fixed(v / unit, decimals) + (k == 0 ? "" : std::string(1, "kMGT"[k - 1])));
    }
    if (fits) return out;
    out.clear();
  } else if (max_abs < 1e4) {
    const int decimals = decimals_for(step);
    if (decimals <= 3 || (max_abs >= 0.1 && decimals <= 6)) {
      for (double v : values) out.push_back(fixed(v, decimals));
      return out;
    }
  }
  if (max_abs >= 1e15 || max_abs < 0.1) {  // one mantissa precision for all: the largest value down to the step
    const int digits = static_cast<int>(std::floor(std::log10(max_abs)) - std::floor(std::log10(step) + 1e-9));
    for (double v : values) out.push_back(scientific(v, std::clamp(digits, 0, 15)));
  } else {  // a narrow range far from zero, e.g. 1e9 + 0.1 k: every digit down to the step
    const int significant = static_cast<int>(std::floor(std::log10(max_abs)) - std::floor(std::log10(step))) + 1;
    for (double v : values) out.push_back(general(v, significant));
  }
  return out;
}

std::vector<Tick> choose_ticks(double lo, double hi, bool log_scale, double length, double min_spacing,
                               const std::function<double(const std::string&)>& extent, double gap) {
  GDN2_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi && length > 0.0, ValueError, "axis [", lo, ", ",
             hi, "] over ", length, " pixels");
  if (!log_scale) return linear_ticks(lo, hi, false, length, min_spacing, extent, gap);
  // Ticks min_spacing apart: at most this many.
  const auto max_count = static_cast<size_t>(std::min(1e6, length / std::max(min_spacing, 1e-3))) + 1;
  std::vector<Tick> best;
  const std::vector<std::vector<int>> mantissa_sets = {{1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 5}, {1}};
  for (const auto& mantissas : mantissa_sets) {
    auto ticks = decade_ticks(lo, hi, mantissas, 1, max_count);
    if (ticks && fits(*ticks, lo, hi, length, min_spacing, extent, gap)) {
      best = std::move(*ticks);
      break;
    }
  }
  for (int stride = 2; best.empty() && stride < 1000; stride = static_cast<int>(nice_step(stride * 1.5))) {
    auto ticks = decade_ticks(lo, hi, {1}, stride, max_count);
    if (ticks && (ticks->size() <= 1 || fits(*ticks, lo, hi, length, min_spacing, extent, gap))) best = *ticks;
  }
  if (best.size() >= 5) return best;
  std::vector<Tick> linear = linear_ticks(lo, hi, true, length, min_spacing, extent, gap);
  return linear.size() > best.size() ? linear : best;
}

}  // namespace gdn2::plot
