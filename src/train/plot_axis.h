// Axis ranges, 1-2-5 tick values and their labels ("0.5", "12k", "2e-4") for the plot writer.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace gdn2::plot {

// One tick: `pos` on the axis's own scale (log10 of the value on a log axis), and its label.
struct Tick {
  double pos = 0.0;
  std::string label;
};

// The displayed range [lo, hi] for data spanning [min, max] (finite, min <= max; on the axis's own scale): widened
// by `pad` (a fraction of the span) on each side; a span that is zero or below 1e-9 of the magnitude is widened
// around its centre instead (by 5% of it, or by 1 at 0; by 0.1 for a log axis, `log_scale`). Throws ValueError
// when the span or the padded range is not finite.
struct AxisRange {
  double lo = 0.0, hi = 1.0;
};
AxisRange padded_range(double min, double max, double pad, bool log_scale);

// The smallest value of the form {1, 2, 5} x 10^k at least `raw` (raw > 0 and finite).
double nice_step(double raw);

// Labels for ticks at multiples of `step`, one style for the whole axis: fixed decimals as many as the step needs
// ("0", "0.5", "1.0"); where the largest is 1e4 or more, each value with its own k/M/G/T suffix ("900k", "1.0M",
// "12k"); scientific for tiny or huge values, with one mantissa precision ("2e-4", "1.5e-6", "3e18"). Exact zero
// prints "0".
std::vector<std::string> format_ticks(const std::vector<double>& values, double step);

// Ticks inside [lo, hi] (the axis's own scale; lo < hi) for an axis `length` pixels long, at least `min_spacing`
// pixels apart, with labels that do not collide: for labels a and b at adjacent ticks, the pixel distance must be
// at least (extent(a) + extent(b)) / 2 + gap, where `extent` is a label's size along the axis.
//  - Linear: multiples of the densest 1-2-5 step that fits; when that leaves one tick, every k-th multiple of a
//    denser step instead (-4000, 0, 4000 where 2000 is too dense and 5000 leaves only 0).
//  - Log (values 10^pos): the densest of 1..9, 1-2-5 or 1 times each decade, or decades at a 1-2-5 stride, that
//    fits; when that gives fewer than five, linear ticks in value space if they are more.
//  - May return fewer than two ticks only when no more fit.
std::vector<Tick> choose_ticks(double lo, double hi, bool log_scale, double length, double min_spacing,
                               const std::function<double(const std::string&)>& extent, double gap);

}  // namespace gdn2::plot
